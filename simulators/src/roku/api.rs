//! The Roku Pay web services on the wire (`/listen/transaction-service.svc/...`) and the
//! push signing keys (`/keys/partner-jwks.json`), with Roku's answers and failures.
//!
//! POST bodies are read as bytes and parsed here, leniently where Roku's clients differ (an
//! `amount` as a number or a numeric string), so that an unreadable body is answered in
//! Roku's shape rather than poem's.

use std::marker::PhantomData;

use chrono::{DateTime, NaiveDateTime, Utc};
use poem::endpoint::make_sync;
use poem::http::StatusCode;
use poem::web::Html;
use poem::{
    Endpoint, EndpointExt, FromRequest, IntoEndpoint, IntoResponse, Request, RequestBody, Response,
    Route,
};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi, OpenApiService, Tags,
};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::keys::JwkSet;
use super::state::Refusal;
use super::wire::{
    BillCycleUpdate, CancelRequest, RefundRequest, RefundResult, RokuResult, TransactionResult,
    minor_units,
};
use super::{RokuSimulator, State};

const SERVICE_DESCRIPTION: &str = "A stateful, offline fake of the Roku Pay web services \
(https://apipub.roku.com/listen/transaction-service.svc): validate-transaction, validate-refund, \
cancel-subscription, refund-subscription and update-bill-cycle at Roku's paths, with the \
developer's Roku Pay API key in the path of a GET and as `partnerAPIKey` in the JSON body of a \
POST. Answers are Roku's JSON: `status` 0 for success, 1 with an `errorMessage` for a refusal \
(`UNAUTHORIZED` for a key that is not the developer's), HTTP 400 for a request that cannot be \
read. Dates are `/Date(milliseconds+0000)/`. Also serves the keys secured push notifications \
are signed with, as Roku publishes its own at https://assets.cs.roku.com/keys/partner-jwks.json. \
Purchases are made, and renewals failed, recovered, cancelled or refunded, on the simulator's \
control surface.";

/// The longest transaction or refund id Roku issues: 1024 ASCII bytes.
const MAX_ID_LENGTH: usize = 1024;

#[derive(Tags)]
enum RokuTag {
    /// Checking purchases and refunds.
    Validation,
    /// Managing subscriptions.
    Subscriptions,
    /// The keys secured push notifications are signed with.
    Keys,
}

/// A JSON request body, read as bytes and parsed by the operation, so that a malformed body
/// is answered in Roku's shape. `T` documents it.
pub struct RokuBody<T>(Vec<u8>, PhantomData<fn() -> T>);

impl<'a, T: Type> ApiExtractor<'a> for RokuBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(
            <Vec<u8> as FromRequest>::from_request(request, body).await?,
            PhantomData,
        ))
    }
}

/// The members of a JSON object body.
struct Fields(Map<String, Value>);

impl<T> RokuBody<T> {
    fn fields(&self) -> Result<Fields, ApiError> {
        let value: Value = serde_json::from_slice(&self.0).map_err(|error| {
            ApiError::bad_request(format!("The request body is not valid JSON: {error}"))
        })?;
        match value {
            Value::Object(members) => Ok(Fields(members)),
            _ => Err(ApiError::bad_request(
                "The request body must be a JSON object",
            )),
        }
    }
}

impl Fields {
    /// A string member; `null` or absent is `None`.
    fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
        }
    }

    fn required_string(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(ApiError::bad_request(format!(
                "{name} must be true or false"
            ))),
        }
    }

    /// A decimal amount: a number, or a string holding one.
    fn amount(&self, name: &str) -> Result<f64, ApiError> {
        let amount = match self.0.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(number)) => number.as_f64(),
            Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        amount
            .filter(|amount| amount.is_finite())
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a decimal amount")))
    }

    /// The developer's key, which must be one of the account's.
    fn check_key(&self, simulator: &RokuSimulator) -> Result<(), ApiError> {
        match self.0.get("partnerAPIKey") {
            Some(Value::String(key)) if simulator.authorizes(key) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// A transaction or refund id as Roku issues them: 1 to 1024 printable ASCII characters.
fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID_LENGTH || !id.bytes().all(|b| b.is_ascii_graphic()) {
        Err(ApiError::bad_request("Invalid URI format."))
    } else {
        Ok(())
    }
}

/// A date as Roku's requests give them (`2020-02-12T08:17:09`, with or without fractions
/// of a second), in UTC; an RFC 3339 time is read with its offset.
fn request_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|time| time.and_utc())
}

fn refusal_error(refusal: &Refusal) -> ApiError {
    ApiError::failure(refusal.to_string())
}

/// `validate-transaction`'s and `validate-refund`'s answer.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_transaction")]
pub enum TransactionResponse {
    /// `status` 0 and the transaction; or `status` 1 and an `errorMessage` (`UNAUTHORIZED`,
    /// an unknown id), every transaction field `null`.
    #[oai(status = 200)]
    Ok(Json<Box<TransactionResult>>),
    /// The id is not 1 to 1024 printable ASCII characters.
    #[oai(status = 400)]
    BadRequest(Json<RokuResult>),
}

impl From<Result<TransactionResult, ApiError>> for TransactionResponse {
    fn from(result: Result<TransactionResult, ApiError>) -> Self {
        match result {
            Ok(body) => Self::Ok(Json(Box::new(body))),
            Err(error) if error.http_status == 200 => {
                Self::Ok(Json(Box::new(TransactionResult::failure(&error.message))))
            }
            Err(error) => Self::BadRequest(Json(error.body())),
        }
    }
}

fn refused_transaction(error: poem::Error) -> TransactionResponse {
    Err(ApiError::bad_request(error.to_string())).into()
}

/// `cancel-subscription`'s and `update-bill-cycle`'s answer.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_result")]
pub enum ResultResponse {
    /// `status` 0; or `status` 1 and an `errorMessage`.
    #[oai(status = 200)]
    Ok(Json<RokuResult>),
    /// The body is not the operation's JSON.
    #[oai(status = 400)]
    BadRequest(Json<RokuResult>),
}

impl From<Result<(), ApiError>> for ResultResponse {
    fn from(result: Result<(), ApiError>) -> Self {
        match result {
            Ok(()) => Self::Ok(Json(RokuResult::success())),
            Err(error) if error.http_status == 200 => Self::Ok(Json(error.body())),
            Err(error) => Self::BadRequest(Json(error.body())),
        }
    }
}

fn refused_result(error: poem::Error) -> ResultResponse {
    Err(ApiError::bad_request(error.to_string())).into()
}

/// `refund-subscription`'s answer.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_refund")]
pub enum RefundResponse {
    /// `status` 0 and the `RefundId`; or `status` 1 and an `errorMessage`.
    #[oai(status = 200)]
    Ok(Json<RefundResult>),
    /// The body is not the operation's JSON, or `amount` is not a decimal amount.
    #[oai(status = 400)]
    BadRequest(Json<RokuResult>),
}

impl From<Result<String, ApiError>> for RefundResponse {
    fn from(result: Result<String, ApiError>) -> Self {
        let answer = |base: RokuResult, refund_id: Option<String>| RefundResult {
            error_code: base.error_code,
            error_details: base.error_details,
            error_message: base.error_message,
            status: base.status,
            refund_id,
        };
        match result {
            Ok(refund_id) => Self::Ok(Json(answer(RokuResult::success(), Some(refund_id)))),
            Err(error) if error.http_status == 200 => Self::Ok(Json(answer(error.body(), None))),
            Err(error) => Self::BadRequest(Json(error.body())),
        }
    }
}

fn refused_refund(error: poem::Error) -> RefundResponse {
    Err(ApiError::bad_request(error.to_string())).into()
}

pub(crate) struct TransactionServiceApi {
    simulator: RokuSimulator,
}

impl TransactionServiceApi {
    /// Runs an operation on the state brought up to the host's `Now`. What it causes is
    /// pushed by the next delivery round ([`RokuSimulator::deliver_due`], the delivery
    /// loop), as Roku pushes on its own schedule.
    fn call<T>(
        &self,
        operation: impl FnOnce(&mut State, DateTime<Utc>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let (result, _) = self.simulator.with_state(operation);
        result
    }
}

pub(crate) fn service(simulator: RokuSimulator) -> OpenApiService<TransactionServiceApi, ()> {
    let server = simulator.config().public_base_url.clone();
    OpenApiService::new(
        TransactionServiceApi { simulator },
        "Roku Pay simulator (Roku Pay web services)",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SERVICE_DESCRIPTION)
    .server(server)
}

/// The OpenAPI document.
pub(crate) fn document(simulator: &RokuSimulator) -> String {
    service(simulator.clone()).spec()
}

fn refused(error: ApiError, status: StatusCode) -> Response {
    Json(error.body()).with_status(status).into_response()
}

/// The routes [`RokuSimulator::endpoint`] serves.
pub(crate) fn routes(simulator: RokuSimulator) -> Route {
    let document = document(&simulator);
    let service = service(simulator);
    let docs = service.swagger_ui_html();
    let api = service
        .into_endpoint()
        .around(|endpoint, request| async move {
            match endpoint.call(request).await {
                Ok(response) => {
                    let response = response.into_response();
                    match response.status() {
                        StatusCode::NOT_FOUND if response.content_type().is_none() => Ok(refused(
                            ApiError::endpoint_not_found(),
                            StatusCode::NOT_FOUND,
                        )),
                        StatusCode::METHOD_NOT_ALLOWED => Ok(refused(
                            ApiError::bad_request("Method not allowed."),
                            StatusCode::METHOD_NOT_ALLOWED,
                        )),
                        _ => Ok(response),
                    }
                }
                Err(error) if error.is::<poem::error::NotFoundError>() => Ok(refused(
                    ApiError::endpoint_not_found(),
                    StatusCode::NOT_FOUND,
                )),
                Err(error) if error.is::<poem::error::MethodNotAllowedError>() => Ok(refused(
                    ApiError::bad_request("Method not allowed."),
                    StatusCode::METHOD_NOT_ALLOWED,
                )),
                Err(error) => Ok(refused(
                    ApiError::bad_request(error.to_string()),
                    StatusCode::BAD_REQUEST,
                )),
            }
        });
    Route::new()
        .at(
            "/openapi.json",
            make_sync(move |_| {
                document
                    .clone()
                    .with_content_type("application/json; charset=utf-8")
            }),
        )
        .at("/docs", make_sync(move |_| Html(docs.clone())))
        .nest("/", api)
}

#[OpenApi]
impl TransactionServiceApi {
    /// Validate a transaction
    ///
    /// Whether the customer is entitled to the subscription the transaction (any of its
    /// payments) belongs to, as it is now: `isEntitled`, `cancelled`, `expirationDate`,
    /// `purchaseStatus`, and its latest payment as `transactionId`, `purchaseDate`,
    /// `amount`, `total`. In the grace period the customer is entitled with a past
    /// `expirationDate`; on hold, not entitled and not cancelled.
    #[oai(
        path = "/listen/transaction-service.svc/validate-transaction/:partnerAPIKey/:transactionId",
        method = "get",
        operation_id = "validateTransaction",
        tag = "RokuTag::Validation"
    )]
    async fn validate_transaction(
        &self,
        /// The developer's Roku Pay API key.
        #[oai(name = "partnerAPIKey")]
        partner_api_key: Path<String>,
        /// The transaction id: ChannelStore's `purchaseId`, or a push notification's.
        #[oai(name = "transactionId")]
        transaction_id: Path<String>,
    ) -> TransactionResponse {
        self.call(|state, now| {
            check_id(&transaction_id)?;
            if !self.simulator.authorizes(&partner_api_key) {
                return Err(ApiError::unauthorized());
            }
            let subscription = state
                .store
                .subscription_of(&transaction_id)
                .map_err(|refusal| refusal_error(&refusal))?;
            let latest = state
                .store
                .payment(subscription.latest_transaction())
                .map_err(|refusal| refusal_error(&refusal))?;
            Ok(TransactionResult::subscription(subscription, latest, now))
        })
        .into()
    }

    /// Validate a refund
    ///
    /// Whether a refund was issued: the refund (negative amounts) as a transaction whose id
    /// is the refund's.
    #[oai(
        path = "/listen/transaction-service.svc/validate-refund/:partnerAPIKey/:refundId",
        method = "get",
        operation_id = "validateRefund",
        tag = "RokuTag::Validation"
    )]
    async fn validate_refund(
        &self,
        #[oai(name = "partnerAPIKey")] partner_api_key: Path<String>,
        /// The `RefundId` `refund-subscription` answered, or a `Refund` push's
        /// `transactionId`.
        #[oai(name = "refundId")]
        refund_id: Path<String>,
    ) -> TransactionResponse {
        self.call(|state, _| {
            check_id(&refund_id)?;
            if !self.simulator.authorizes(&partner_api_key) {
                return Err(ApiError::unauthorized());
            }
            let refused = |refusal: Refusal| refusal_error(&refusal);
            let refund = state.store.refund(&refund_id).map_err(refused)?;
            let subscription = state
                .store
                .subscription(&refund.subscription)
                .map_err(refused)?;
            let refunded = state
                .store
                .payment(&refund.transaction_id)
                .map_err(refused)?;
            Ok(TransactionResult::refund(refund, subscription, refunded))
        })
        .into()
    }

    /// Cancel a subscription
    ///
    /// Auto-renewal stops: a current subscription stays entitled to its `expirationDate`
    /// (a `Cancellation` push with that date); one in recovery ends now. Cancelling again,
    /// or a subscription that already ended, succeeds and changes nothing.
    #[oai(
        path = "/listen/transaction-service.svc/cancel-subscription",
        method = "post",
        operation_id = "cancelSubscription",
        tag = "RokuTag::Subscriptions"
    )]
    async fn cancel_subscription(&self, body: RokuBody<CancelRequest>) -> ResultResponse {
        self.call(|state, now| {
            let fields = body.fields()?;
            let transaction_id = fields.required_string("transactionId")?;
            let reference = fields.string("partnerReferenceId")?;
            fields.string("cancellationDate")?;
            fields.bool("dontNotifyUser")?;
            fields.check_key(&self.simulator)?;
            let original = state
                .store
                .original_of(&transaction_id)
                .map_err(|refusal| refusal_error(&refusal))?;
            state
                .store
                .cancel(&original, reference, now)
                .map_err(|refusal| refusal_error(&refusal))?;
            Ok(())
        })
        .into()
    }

    /// Refund a subscription
    ///
    /// Refunds `amount` (before tax, more than 0, at most what is left of the transaction's
    /// pre-tax price) of a payment: a `Refund` push. The subscription goes on.
    #[oai(
        path = "/listen/transaction-service.svc/refund-subscription",
        method = "post",
        operation_id = "refundSubscription",
        tag = "RokuTag::Subscriptions"
    )]
    async fn refund_subscription(&self, body: RokuBody<RefundRequest>) -> RefundResponse {
        self.call(|state, now| {
            let fields = body.fields()?;
            let transaction_id = fields.required_string("transactionId")?;
            let amount = fields.amount("amount")?;
            let reference = fields.string("partnerReferenceId")?;
            let comments = fields.string("comments")?;
            fields.check_key(&self.simulator)?;
            let refused = |refusal: Refusal| refusal_error(&refusal);
            let currency = state
                .store
                .subscription_of(&transaction_id)
                .map_err(refused)?
                .product
                .currency
                .clone();
            let minor = minor_units(amount, &currency).ok_or_else(|| {
                ApiError::failure(format!(
                    "The refund amount has more decimals than {} allows",
                    currency.to_ascii_uppercase()
                ))
            })?;
            let refund = state
                .store
                .refund_payment(&transaction_id, Some(minor), reference, comments, now)
                .map_err(refused)?;
            Ok(refund.id.clone())
        })
        .into()
    }

    /// Update a billing cycle
    ///
    /// The subscription's current period ends, and its next charge falls, at
    /// `newBillCycleDate` (after now, at most one billing period after the current
    /// `expirationDate`); later renewals follow from it.
    #[oai(
        path = "/listen/transaction-service.svc/update-bill-cycle",
        method = "post",
        operation_id = "updateBillCycle",
        tag = "RokuTag::Subscriptions"
    )]
    async fn update_bill_cycle(&self, body: RokuBody<BillCycleUpdate>) -> ResultResponse {
        self.call(|state, now| {
            let fields = body.fields()?;
            let transaction_id = fields.required_string("transactionId")?;
            let text = fields.required_string("newBillCycleDate")?;
            let date = request_date(&text).ok_or_else(|| {
                ApiError::bad_request("newBillCycleDate must be a date, e.g. 2020-02-12T08:17:09")
            })?;
            fields.check_key(&self.simulator)?;
            let refused = |refusal: Refusal| refusal_error(&refusal);
            let original = state.store.original_of(&transaction_id).map_err(refused)?;
            state
                .store
                .update_bill_cycle(&original, date, now)
                .map_err(refused)?;
            Ok(())
        })
        .into()
    }

    /// The push signing keys
    ///
    /// The JWKS secured push notifications verify against (Roku's:
    /// https://assets.cs.roku.com/keys/partner-jwks.json); the key is the one a push's JOSE
    /// header names as `kid`.
    #[oai(
        path = "/keys/partner-jwks.json",
        method = "get",
        operation_id = "getPushSigningKeys",
        tag = "RokuTag::Keys"
    )]
    async fn jwks(&self) -> Json<JwkSet> {
        Json(self.simulator.jwks())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_dates_are_read_as_roku_writes_them() {
        assert!(check_id("09898ffd7d2a49bc94b1aafd0189a6fa").is_ok());
        assert!(check_id("6ccb40bf-bd7a-49dc-9846-aafd01890ba5").is_ok());
        assert_eq!(check_id("").unwrap_err().http_status, 400);
        assert_eq!(check_id("a b").unwrap_err().http_status, 400);
        assert_eq!(check_id(&"a".repeat(1025)).unwrap_err().http_status, 400);
        let expected = DateTime::parse_from_rfc3339("2020-02-12T08:17:09Z").unwrap();
        assert_eq!(request_date("2020-02-12T08:17:09"), Some(expected.into()));
        assert_eq!(
            request_date("2020-02-12T08:17:09.000000"),
            Some(expected.into())
        );
        assert_eq!(
            request_date("2020-02-12T09:17:09+01:00"),
            Some(expected.into())
        );
        assert_eq!(request_date("tomorrow"), None);
    }
}
