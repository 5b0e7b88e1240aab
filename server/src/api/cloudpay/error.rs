//! CloudPay's documented error shape, `{"statusCode": 401, "body": {"status": …, "message": …}}`,
//! and the one mapping from core errors to it.

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object};

use crate::core::CoreError;

#[derive(Debug, Clone, Object)]
#[oai(rename = "ErrorBody")]
pub struct ErrorBody {
    /// A short, stable name for the failure (`Unauthorized`, `ValidationError`, …).
    pub status: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// The error body of every CloudPay operation.
#[derive(Debug, Clone, Object)]
#[oai(rename = "ErrorResponse", example)]
pub struct ErrorResponse {
    /// The HTTP status, repeated in the body.
    #[oai(rename = "statusCode")]
    pub status_code: u16,
    pub body: ErrorBody,
}

impl Example for ErrorResponse {
    fn example() -> Self {
        ErrorResponse::new(401, "Unauthorized", "The token has expired")
    }
}

impl ErrorResponse {
    pub fn new(status_code: u16, status: &str, message: impl Into<String>) -> Self {
        Self {
            status_code,
            body: ErrorBody {
                status: status.to_owned(),
                message: message.into(),
            },
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum CloudPayError {
    /// The request is malformed or breaks a rule (the message says which).
    #[oai(status = 400)]
    BadRequest(Json<ErrorResponse>),
    /// No credential, or one that is tampered, expired, from another issuer or audience.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorResponse>),
    /// Authenticated, but not allowed: the device lock is full, or the account is deleted.
    #[oai(status = 403)]
    Forbidden(Json<ErrorResponse>),
    /// The thing asked for does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorResponse>),
    /// A fault on the server's side (a bug), logged for the operators.
    #[oai(status = 500)]
    Internal(Json<ErrorResponse>),
    /// The database, the identity provider or a payment provider could not be reached;
    /// retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorResponse>),
}

impl CloudPayError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        CloudPayError::BadRequest(Json(ErrorResponse::new(400, "ValidationError", message)))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        CloudPayError::Unauthorized(Json(ErrorResponse::new(401, "Unauthorized", message)))
    }
}

impl From<CoreError> for CloudPayError {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        match error {
            CoreError::Unauthenticated(_) | CoreError::InvalidLogin => {
                CloudPayError::unauthorized(message)
            }
            CoreError::DeviceLimitReached => {
                CloudPayError::Forbidden(Json(ErrorResponse::new(403, "ConcurrencyLimit", message)))
            }
            CoreError::Forbidden(_) => {
                CloudPayError::Forbidden(Json(ErrorResponse::new(403, "Forbidden", message)))
            }
            CoreError::NotFound(_) => {
                CloudPayError::NotFound(Json(ErrorResponse::new(404, "NotFound", message)))
            }
            CoreError::Invalid(_) | CoreError::StoreRefused { .. } => {
                CloudPayError::bad_request(message)
            }
            CoreError::Contended(_) => CloudPayError::Unavailable(Json(ErrorResponse::new(
                503,
                "Busy",
                "The subscription is changing; please retry",
            ))),
            CoreError::ProviderUnavailable { .. } => {
                tracing::warn!(%message, "provider unavailable");
                CloudPayError::Unavailable(Json(ErrorResponse::new(
                    503,
                    "ProviderUnavailable",
                    "An outside service is unavailable; please retry",
                )))
            }
            error @ CoreError::Store(_) if error.is_outage() => {
                tracing::error!(%error, "database unavailable");
                CloudPayError::Unavailable(Json(ErrorResponse::new(
                    503,
                    "StoreUnavailable",
                    "The service is temporarily unavailable; please retry",
                )))
            }
            CoreError::Store(error) => {
                tracing::error!(%error, "store failure");
                CloudPayError::Internal(Json(ErrorResponse::new(
                    500,
                    "InternalError",
                    "Something went wrong on our side; it has been logged",
                )))
            }
        }
    }
}

/// Errors poem raises before a handler runs (unparsable JSON, a missing parameter, a body
/// over the limit) get the documented shape of the operation that was called, with their
/// own 4xx status: the payment operations' `{statusCode, message, error}`, everything
/// else's `{statusCode, body}`.
pub async fn framework_errors<E: Endpoint>(next: E, request: Request) -> poem::Result<Response> {
    let payment_operation = is_payment_operation(request.uri().path());
    match next.call(request).await {
        Ok(response) => Ok(response.into_response()),
        // Our own error responses travel as errors too; they already have the shape.
        Err(error) if error.is_from_response() => Ok(error.into_response()),
        Err(error) => {
            let (status, name, message) = describe(&error);
            let json = if payment_operation {
                serde_json::json!({
                    "statusCode": status.as_u16().to_string(),
                    "message": message,
                    "error": status.canonical_reason().unwrap_or("Error"),
                })
            } else {
                let body = ErrorResponse::new(status.as_u16(), name, message);
                serde_json::json!({
                    "statusCode": body.status_code,
                    "body": { "status": body.body.status, "message": body.body.message },
                })
            };
            Ok(Response::builder()
                .status(status)
                .content_type("application/json; charset=utf-8")
                .body(json.to_string()))
        }
    }
}

/// The operations documented with [`PaymentErrorResponse`], by path under `/cloudpay`.
fn is_payment_operation(path: &str) -> bool {
    ["/payment/", "/billing/", "/discount/"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// Status, CloudPay error name and message of an error poem raised.
fn describe(error: &poem::Error) -> (StatusCode, &'static str, String) {
    let status = error.status();
    let name = match status.as_u16() {
        400 => "ValidationError",
        401 => "Unauthorized",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let message = if let Some(parameter) =
        error.downcast_ref::<poem_openapi::error::ParseParamError>()
    {
        // poem-openapi appends its internal type names; the caller needs the parameter.
        let reason = parameter
            .reason
            .split(" (occurred while parsing")
            .next()
            .unwrap_or_default();
        format!("the parameter `{}` is not valid: {reason}", parameter.name)
    } else if status.as_u16() == 401 {
        "Authentication required: pass apijwttoken, apisessionid, or the ThirdPartyAuthentication or .auth cookie"
            .to_owned()
    } else {
        error.to_string()
    };
    (status, name, message)
}

/// The error body of the payment operations (checkout, discount, billing update, discount
/// sync), as CloudPay publishes it: `{"statusCode": "400", "message": …, "error": "Bad Request"}`.
#[derive(Debug, Clone, Object)]
#[oai(rename = "PaymentErrorResponse", example)]
pub struct PaymentErrorResponse {
    /// The HTTP status, as a string.
    #[oai(rename = "statusCode")]
    pub status_code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The status's reason phrase.
    pub error: String,
}

impl Example for PaymentErrorResponse {
    fn example() -> Self {
        PaymentErrorResponse {
            status_code: "400".into(),
            message: "The discount code \"50OFF\" has expired".into(),
            error: "Bad Request".into(),
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum PaymentError {
    /// The request is malformed or breaks a rule (the message says which).
    #[oai(status = 400)]
    BadRequest(Json<PaymentErrorResponse>),
    /// No credential, or one that is not valid.
    #[oai(status = 401)]
    Unauthorized(Json<PaymentErrorResponse>),
    /// Authenticated, but not allowed.
    #[oai(status = 403)]
    Forbidden(Json<PaymentErrorResponse>),
    /// The package or basket does not exist (or is not the caller's).
    #[oai(status = 404)]
    NotFound(Json<PaymentErrorResponse>),
    /// A fault on the server's side (a bug), logged for the operators.
    #[oai(status = 500)]
    Internal(Json<PaymentErrorResponse>),
    /// Stripe or the database could not be reached; retry later.
    #[oai(status = 503)]
    Unavailable(Json<PaymentErrorResponse>),
}

impl PaymentError {
    fn body(status: u16, reason: &str, message: String) -> Json<PaymentErrorResponse> {
        Json(PaymentErrorResponse {
            status_code: status.to_string(),
            message,
            error: reason.to_owned(),
        })
    }
}

/// One mapping: the same status CloudPay's other operations give, in this shape.
impl From<CloudPayError> for PaymentError {
    fn from(error: CloudPayError) -> Self {
        match error {
            CloudPayError::BadRequest(Json(body)) => {
                PaymentError::BadRequest(Self::body(400, "Bad Request", body.body.message))
            }
            CloudPayError::Unauthorized(Json(body)) => {
                PaymentError::Unauthorized(Self::body(401, "Unauthorized", body.body.message))
            }
            CloudPayError::Forbidden(Json(body)) => {
                PaymentError::Forbidden(Self::body(403, "Forbidden", body.body.message))
            }
            CloudPayError::NotFound(Json(body)) => {
                PaymentError::NotFound(Self::body(404, "Not Found", body.body.message))
            }
            CloudPayError::Internal(Json(body)) => {
                PaymentError::Internal(Self::body(500, "Internal Server Error", body.body.message))
            }
            CloudPayError::Unavailable(Json(body)) => {
                PaymentError::Unavailable(Self::body(503, "Service Unavailable", body.body.message))
            }
        }
    }
}

impl From<CoreError> for PaymentError {
    fn from(error: CoreError) -> Self {
        CloudPayError::from(error).into()
    }
}
