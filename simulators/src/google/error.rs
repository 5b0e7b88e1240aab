//! The three kinds of failure: the host's ([`GoogleError`], returned by the Rust API), an
//! API client's ([`ApiError`], returned on the wire as Google's JSON error, which
//! `googleapiclient.errors.HttpError` reads), and the OAuth token endpoint's
//! ([`OAuthError`], RFC 6749's `{"error", "error_description"}` as Google words it).

use poem_openapi::Object;

/// A failure of the Rust API the host uses: building the simulator, configuring pushes.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// The configuration cannot describe a Play developer account.
    #[error("invalid Google Play simulator configuration: {0}")]
    InvalidConfig(String),
    /// An RSA key or its certificate could not be made.
    #[error("cannot make the Google Play simulator's keys: {0}")]
    Keys(String),
}

/// One entry of `error.errors`: Google's older, per-cause detail.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleErrorDetail", skip_serializing_if_is_none)]
pub struct GoogleErrorDetail {
    pub message: String,
    /// `global` for errors any Google API gives, `androidpublisher` for the Play API's own.
    pub domain: String,
    /// e.g. `invalid`, `required`, `authError`, `applicationNotFound`,
    /// `subscriptionPurchaseNoLongerAvailable`.
    pub reason: String,
    /// Where the cause is, e.g. `Authorization`.
    pub location: Option<String>,
    /// e.g. `header`.
    #[oai(rename = "locationType")]
    pub location_type: Option<String>,
}

/// `error`: the status code, a message, the details, and the canonical status.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleErrorStatus", skip_serializing_if_is_none)]
pub struct GoogleErrorStatus {
    /// The HTTP status code.
    pub code: u16,
    pub message: String,
    pub errors: Vec<GoogleErrorDetail>,
    /// The canonical status: `INVALID_ARGUMENT`, `UNAUTHENTICATED`, `PERMISSION_DENIED`,
    /// `NOT_FOUND`; absent for 410, which has none.
    pub status: Option<String>,
}

/// Google's JSON error body.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleErrorResponse")]
pub struct GoogleErrorResponse {
    pub error: GoogleErrorStatus,
}

/// What Google's message for a missing or unusable bearer token says after its first
/// sentence.
const EXPECTED_CREDENTIAL: &str = "Expected OAuth 2 access token, login cookie or other valid \
authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// An error as the Play Developer API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub body: GoogleErrorResponse,
    /// `WWW-Authenticate` for 401 and 403, as Google sends it.
    pub www_authenticate: Option<String>,
}

impl ApiError {
    fn new(code: u16, message: &str, domain: &str, reason: &str, status: Option<&str>) -> Self {
        Self {
            body: GoogleErrorResponse {
                error: GoogleErrorStatus {
                    code,
                    message: message.to_owned(),
                    errors: vec![GoogleErrorDetail {
                        message: message.to_owned(),
                        domain: domain.to_owned(),
                        reason: reason.to_owned(),
                        location: None,
                        location_type: None,
                    }],
                    status: status.map(str::to_owned),
                },
            },
            www_authenticate: None,
        }
    }

    pub fn code(&self) -> u16 {
        self.body.error.code
    }

    /// 400 `Invalid Value`: a purchase token that is malformed, unknown, or not of this
    /// product — Google tells these apart no further.
    pub fn invalid_value() -> Self {
        Self::new(
            400,
            "Invalid Value",
            "global",
            "invalid",
            Some("INVALID_ARGUMENT"),
        )
    }

    /// 400 for a request body that is not the operation's JSON.
    pub fn invalid_json(detail: &str) -> Self {
        Self::new(
            400,
            &format!("Invalid JSON payload received. {detail}"),
            "global",
            "parseError",
            Some("INVALID_ARGUMENT"),
        )
    }

    /// 400 for a request that is missing something or asks for something that does not
    /// exist (the message says what).
    pub fn bad_request(message: &str) -> Self {
        Self::new(
            400,
            message,
            "global",
            "badRequest",
            Some("INVALID_ARGUMENT"),
        )
    }

    /// 400 `invalidPurchaseState`: the purchase's state does not allow the operation
    /// (cancelling an expired subscription, consuming a refunded product).
    pub fn invalid_purchase_state() -> Self {
        Self::new(
            400,
            "The purchase is not in a valid state to perform the desired operation.",
            "androidpublisher",
            "invalidPurchaseState",
            Some("INVALID_ARGUMENT"),
        )
    }

    /// 400 `productNotOwnedByUser`: consuming a product purchase that is not owned (already
    /// consumed, refunded).
    pub fn product_not_owned() -> Self {
        Self::new(
            400,
            "The product purchase is not owned by the user.",
            "androidpublisher",
            "productNotOwnedByUser",
            Some("INVALID_ARGUMENT"),
        )
    }

    /// 401: no `Authorization: Bearer` at all.
    pub fn login_required() -> Self {
        let mut error = Self::new(
            401,
            &format!(
                "Request is missing required authentication credential. {EXPECTED_CREDENTIAL}"
            ),
            "global",
            "required",
            Some("UNAUTHENTICATED"),
        );
        let detail = &mut error.body.error.errors[0];
        detail.message = "Login Required.".into();
        detail.location = Some("Authorization".into());
        detail.location_type = Some("header".into());
        error.www_authenticate = Some(r#"Bearer realm="https://accounts.google.com/""#.into());
        error
    }

    /// 401: a bearer token the token endpoint did not issue, or one past its expiry.
    pub fn invalid_credentials() -> Self {
        let mut error = Self::new(
            401,
            &format!("Request had invalid authentication credentials. {EXPECTED_CREDENTIAL}"),
            "global",
            "authError",
            Some("UNAUTHENTICATED"),
        );
        let detail = &mut error.body.error.errors[0];
        detail.message = "Invalid Credentials".into();
        detail.location = Some("Authorization".into());
        detail.location_type = Some("header".into());
        error.www_authenticate =
            Some(r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#.into());
        error
    }

    /// 403: a valid token whose scopes do not include the Play Developer API's.
    pub fn insufficient_scope(scope: &str) -> Self {
        let mut error = Self::new(
            403,
            "Request had insufficient authentication scopes.",
            "global",
            "insufficientPermissions",
            Some("PERMISSION_DENIED"),
        );
        error.body.error.errors[0].message = "Insufficient Permission".into();
        error.www_authenticate = Some(format!(
            r#"Bearer realm="https://accounts.google.com/", error="insufficient_scope", scope="{scope}""#
        ));
        error
    }

    /// 404 `applicationNotFound`: the package name is not an app of this developer account.
    pub fn application_not_found() -> Self {
        Self::new(
            404,
            "No application was found for the given package name.",
            "androidpublisher",
            "applicationNotFound",
            Some("NOT_FOUND"),
        )
    }

    /// 404 for a purchase token the control surface does not know.
    pub fn no_such_purchase() -> Self {
        Self::new(
            404,
            "No purchase has this token.",
            "global",
            "notFound",
            Some("NOT_FOUND"),
        )
    }

    /// 404 for a path or method the API does not have.
    pub fn method_not_found() -> Self {
        Self::new(
            404,
            "Method not found.",
            "global",
            "notFound",
            Some("NOT_FOUND"),
        )
    }

    /// 410 `subscriptionPurchaseNoLongerAvailable`: the subscription expired more than 60
    /// days ago, so Google no longer answers for it.
    pub fn no_longer_available() -> Self {
        Self::new(
            410,
            "The subscription purchase is no longer available for query because it has been \
             expired for too long.",
            "androidpublisher",
            "subscriptionPurchaseNoLongerAvailable",
            None,
        )
    }
}

/// A refusal from the token endpoint, `{"error", "error_description"}`, always 400.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleOAuthError")]
pub struct OAuthError {
    /// `invalid_request`, `unsupported_grant_type`, `invalid_grant` or `invalid_scope`.
    pub error: String,
    pub error_description: String,
}

impl OAuthError {
    fn new(error: &str, description: &str) -> Self {
        Self {
            error: error.to_owned(),
            error_description: description.to_owned(),
        }
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn unsupported_grant_type(grant_type: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant_type}"),
        )
    }

    pub fn invalid_grant(description: &str) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_scope() -> Self {
        Self::new(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        )
    }
}
