//! The Google endpoints on the wire: the Play Developer API (`/androidpublisher/v3/...`),
//! the OAuth token endpoint (`/token`) and Google's signing keys (`/oauth2/v3/certs`,
//! `/oauth2/v1/certs`), with Google's JSON errors.
//!
//! Google's custom methods put their verb after a colon in the token's segment
//! (`…/tokens/{token}:acknowledge`). poem's router matches whole segments only, so
//! [`routes`] moves the verb into a segment of its own before routing (the operations are
//! declared at `…/tokens/{token}/acknowledge`) and refuses any path that already has a
//! segment after the token; [`document`] writes the paths back in Google's form.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use poem::endpoint::make_sync;
use poem::http::{StatusCode, Uri};
use poem::web::Html;
use poem::{
    Endpoint, EndpointExt, FromRequest, IntoEndpoint, IntoResponse, Request, RequestBody, Response,
    Route,
};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, Enum, ExtractParamOptions, Object, OpenApi,
    OpenApiService, Tags,
};
use serde_json::Value;

use super::error::{ApiError, GoogleErrorResponse, OAuthError};
use super::keys::Jwk;
use super::oauth::{self, ACCESS_TOKEN_LIFETIME};
use super::purchases::{CancelledBy, Refund, Refusal};
use super::wire::{Empty, ProductPurchaseResource, SubscriptionPurchase, SubscriptionPurchaseV2};
use super::{GoogleSimulator, State};

const SERVICE_DESCRIPTION: &str = "A stateful, offline fake of the Google Play Developer API \
(androidpublisher v3) for subscriptions and one-time products, of Google's OAuth token endpoint \
for a service account's JWT bearer grant, and of Google's token-signing keys. API calls need \
`Authorization: Bearer <access token from POST /token>` with the \
`https://www.googleapis.com/auth/androidpublisher` scope. Custom methods are Google's \
`…/tokens/{token}:verb`. Errors are Google's JSON error. Purchases are made, and renewals \
failed, recovered, cancelled or refunded, on the simulator's control surface.";

/// The custom methods' verbs, as they follow `{token}` in Google's paths.
const VERBS: [&str; 5] = ["acknowledge", "cancel", "refund", "revoke", "consume"];

#[derive(Tags)]
enum GoogleTag {
    /// Subscription purchases (v2 and v1).
    Subscriptions,
    /// One-time product purchases.
    Products,
    /// OAuth 2.0 for the service account, and Google's signing keys.
    OAuth,
}

/// A JSON request body, read as bytes and parsed by the operation, so that a malformed body
/// is answered with Google's error. An empty body is no body.
pub struct JsonBody<T>(Vec<u8>, PhantomData<fn() -> T>);

impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for JsonBody<T> {
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
            required: false,
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

impl<T: ParseFromJSON> JsonBody<T> {
    /// The body's object, `None` for an empty body.
    fn parse(&self) -> Result<Option<T>, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: Value = serde_json::from_slice(&self.0)
            .map_err(|error| ApiError::invalid_json(&error.to_string()))?;
        T::parse_from_json(Some(value))
            .map(Some)
            .map_err(|error| ApiError::invalid_json(error.message()))
    }
}

/// The token endpoint's form body, read as bytes.
pub struct TokenForm(Vec<u8>);

impl<'a> ApiExtractor<'a> for TokenForm {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        TokenRequest::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/x-www-form-urlencoded",
                schema: TokenRequest::schema_ref(),
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
        ))
    }
}

/// What a service account posts to the token endpoint (form-encoded). Documentation only:
/// the body is read as a form.
#[derive(Object)]
#[oai(rename = "GoogleTokenRequest")]
struct TokenRequest {
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    grant_type: String,
    /// The RS256 JWT signed with the service account's key: `iss` the service account's
    /// email, `scope` (space-separated), `aud` `https://oauth2.googleapis.com/token`,
    /// `iat` and `exp` at most an hour apart.
    assertion: String,
}

/// An access token.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleAccessToken")]
pub struct AccessTokenResponse {
    pub access_token: String,
    /// Seconds: 3599.
    pub expires_in: i64,
    /// `Bearer`.
    pub token_type: String,
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    #[oai(status = 200)]
    Ok(Json<AccessTokenResponse>),
    /// `invalid_request`, `unsupported_grant_type`, `invalid_grant`, `invalid_scope`.
    #[oai(status = 400)]
    BadRequest(Json<OAuthError>),
}

/// A JWKS.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleJwkSet")]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// `purchases.subscriptions.acknowledge`'s body.
#[derive(Object)]
#[oai(
    rename = "SubscriptionPurchasesAcknowledgeRequest",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct SubscriptionPurchasesAcknowledgeRequest {
    developer_payload: Option<String>,
}

/// `purchases.products.acknowledge`'s body.
#[derive(Object)]
#[oai(
    rename = "ProductPurchasesAcknowledgeRequest",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct ProductPurchasesAcknowledgeRequest {
    developer_payload: Option<String>,
}

/// `revocationContext.itemBasedRefund`.
#[derive(Object)]
#[oai(
    rename = "RevocationContextItemBasedRefund",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct ItemBasedRefund {
    product_id: Option<String>,
}

/// How the revocation refunds: exactly one of these.
#[derive(Object)]
#[oai(
    rename = "RevocationContext",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct RevocationContext {
    /// Refund the unused part of the current period.
    prorated_refund: Option<Empty>,
    /// Refund the latest order in full.
    full_refund: Option<Empty>,
    /// Refund the item (of a one-item subscription: in full).
    item_based_refund: Option<ItemBasedRefund>,
}

/// `purchases.subscriptionsv2.revoke`'s body.
#[derive(Object)]
#[oai(
    rename = "RevokeSubscriptionPurchaseRequest",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct RevokeSubscriptionPurchaseRequest {
    revocation_context: Option<RevocationContext>,
}

/// `cancellationContext.cancellationType`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "CancellationType")]
enum CancellationType {
    /// Refused: a cancellation must say who asked for it.
    #[oai(rename = "CANCELLATION_TYPE_UNSPECIFIED")]
    Unspecified,
    /// As the user: stops the next renewal; the user can restore the subscription.
    #[oai(rename = "USER_REQUESTED_STOP_RENEWALS")]
    UserRequestedStopRenewals,
    /// As the developer: stops the next payment; it cannot be restored.
    #[oai(rename = "DEVELOPER_REQUESTED_STOP_PAYMENTS")]
    DeveloperRequestedStopPayments,
}

#[derive(Object)]
#[oai(
    rename = "CancellationContext",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct CancellationContext {
    cancellation_type: Option<CancellationType>,
}

/// `purchases.subscriptionsv2.cancel`'s body.
#[derive(Object)]
#[oai(
    rename = "CancelSubscriptionPurchaseRequest",
    rename_all = "camelCase",
    deny_unknown_fields
)]
struct CancelSubscriptionPurchaseRequest {
    cancellation_context: Option<CancellationContext>,
}

/// An answer with a body, or Google's error.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_before_dispatch")]
pub enum GoogleResponse<T: ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// `invalid` (the token is malformed, unknown or of another product), `parseError`,
    /// `invalidPurchaseState`, `productNotOwnedByUser`.
    #[oai(status = 400)]
    BadRequest(Json<GoogleErrorResponse>),
    /// No bearer token, or one the token endpoint did not issue or that has expired.
    #[oai(status = 401)]
    Unauthorized(
        Json<GoogleErrorResponse>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    /// The token lacks the `androidpublisher` scope.
    #[oai(status = 403)]
    Forbidden(
        Json<GoogleErrorResponse>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    /// `applicationNotFound`.
    #[oai(status = 404)]
    NotFound(Json<GoogleErrorResponse>),
    /// `subscriptionPurchaseNoLongerAvailable`: expired more than 60 days ago.
    #[oai(status = 410)]
    Gone(Json<GoogleErrorResponse>),
}

impl<T: ToJSON> From<Result<T, ApiError>> for GoogleResponse<T> {
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(body) => Self::Ok(Json(body)),
            Err(error) => Self::error(error),
        }
    }
}

impl<T: ToJSON> GoogleResponse<T> {
    fn error(error: ApiError) -> Self {
        let code = error.code();
        let body = Json(error.body);
        match code {
            401 => Self::Unauthorized(body, error.www_authenticate),
            403 => Self::Forbidden(body, error.www_authenticate),
            404 => Self::NotFound(body),
            410 => Self::Gone(body),
            _ => Self::BadRequest(body),
        }
    }
}

/// An answer with an empty body (what Google answers to the v1 custom methods), or
/// Google's error.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_before_dispatch_empty")]
pub enum GoogleEmptyResponse {
    /// Done; no body.
    #[oai(status = 200)]
    Ok,
    #[oai(status = 400)]
    BadRequest(Json<GoogleErrorResponse>),
    #[oai(status = 401)]
    Unauthorized(
        Json<GoogleErrorResponse>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    #[oai(status = 403)]
    Forbidden(
        Json<GoogleErrorResponse>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    #[oai(status = 404)]
    NotFound(Json<GoogleErrorResponse>),
}

impl From<Result<(), ApiError>> for GoogleEmptyResponse {
    fn from(result: Result<(), ApiError>) -> Self {
        let Err(error) = result else {
            return Self::Ok;
        };
        let code = error.code();
        let body = Json(error.body);
        match code {
            401 => Self::Unauthorized(body, error.www_authenticate),
            403 => Self::Forbidden(body, error.www_authenticate),
            404 => Self::NotFound(body),
            _ => Self::BadRequest(body),
        }
    }
}

/// Failures before an operation runs (a path parameter that cannot be read).
fn refused_before_dispatch<T: ToJSON>(error: poem::Error) -> GoogleResponse<T> {
    GoogleResponse::error(ApiError::bad_request(&error.to_string()))
}

fn refused_before_dispatch_empty(error: poem::Error) -> GoogleEmptyResponse {
    Err(ApiError::bad_request(&error.to_string())).into()
}

/// What a refusal looks like on the wire.
pub(crate) fn refusal_error(refusal: &Refusal) -> ApiError {
    match refusal {
        Refusal::UnknownApplication(_) => ApiError::application_not_found(),
        Refusal::UnknownPurchase => ApiError::invalid_value(),
        Refusal::InvalidState => ApiError::invalid_purchase_state(),
        Refusal::NotOwned => ApiError::product_not_owned(),
        other => ApiError::bad_request(&other.to_string()),
    }
}

pub(crate) struct AndroidPublisherApi {
    simulator: GoogleSimulator,
}

impl AndroidPublisherApi {
    /// Runs an operation for the bearer of the request's access token on the state brought
    /// up to the host's `Now`. Refusals become Google's errors.
    fn call<T>(
        &self,
        request: &Request,
        operation: impl FnOnce(&mut State, DateTime<Utc>) -> Result<T, Refusal>,
    ) -> Result<T, ApiError> {
        let authorization = request.header("authorization");
        let (result, _) = self.simulator.with_state(|state, now| {
            state.access_tokens.authorize(authorization, now)?;
            operation(state, now).map_err(|refusal| refusal_error(&refusal))
        });
        result
    }

    /// The subscription with this token, of this package and subscription id.
    fn check_subscription_id(
        state: &State,
        package_name: &str,
        subscription_id: &str,
        token: &str,
    ) -> Result<(), Refusal> {
        let subscription = state.purchases.subscription(package_name, token)?;
        if subscription.product_id == subscription_id {
            Ok(())
        } else {
            Err(Refusal::UnknownPurchase)
        }
    }
}

pub(crate) fn service(simulator: GoogleSimulator) -> OpenApiService<AndroidPublisherApi, ()> {
    let server = simulator.config().public_base_url.clone();
    OpenApiService::new(
        AndroidPublisherApi { simulator },
        "Google Play simulator (Google Play Developer API)",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SERVICE_DESCRIPTION)
    .server(server)
}

/// Google's form of a text that names the operations' internal paths.
fn with_google_paths(text: &str) -> String {
    VERBS.iter().fold(text.to_owned(), |text, verb| {
        text.replace(
            &format!("{{token}}/{verb}\""),
            &format!("{{token}}:{verb}\""),
        )
    })
}

/// The OpenAPI document, with Google's paths.
pub(crate) fn document(simulator: &GoogleSimulator) -> String {
    with_google_paths(&service(simulator.clone()).spec())
}

/// Where a request is routed: a custom method's verb moves from after the colon to a
/// segment of its own; `None` for a path with anything after the token's segment.
fn internal_path(path: &str) -> Option<String> {
    const TOKENS: &str = "/tokens/";
    let Some(index) = path.rfind(TOKENS) else {
        return Some(path.to_owned());
    };
    let (head, last) = path.split_at(index + TOKENS.len());
    if last.contains('/') {
        return None;
    }
    Some(match last.rsplit_once(':') {
        Some((token, verb)) => format!("{head}{token}/{verb}"),
        None => path.to_owned(),
    })
}

fn method_not_found() -> Response {
    Json(ApiError::method_not_found().body)
        .with_status(StatusCode::NOT_FOUND)
        .into_response()
}

/// The routes [`GoogleSimulator::endpoint`] serves.
pub(crate) fn routes(simulator: GoogleSimulator) -> Route {
    let document = document(&simulator);
    let service = service(simulator);
    let docs = with_google_paths(&service.swagger_ui_html());
    let api = service
        .into_endpoint()
        .around(|endpoint, mut request| async move {
            let Some(path) = internal_path(request.uri().path()) else {
                return Ok(method_not_found());
            };
            if path != request.uri().path() {
                let path_and_query = match request.uri().query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path,
                };
                match Uri::builder().path_and_query(path_and_query).build() {
                    Ok(uri) => *request.uri_mut() = uri,
                    Err(_) => return Ok(method_not_found()),
                }
            }
            match endpoint.call(request).await {
                Ok(response) => {
                    let response = response.into_response();
                    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                        Ok(method_not_found())
                    } else {
                        Ok(response)
                    }
                }
                Err(error)
                    if error.is::<poem::error::NotFoundError>()
                        || error.is::<poem::error::MethodNotAllowedError>() =>
                {
                    Ok(method_not_found())
                }
                Err(error) => Err(error),
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
impl AndroidPublisherApi {
    /// Get a subscription purchase (v2)
    ///
    /// `purchases.subscriptionsv2.get`: the subscription's state, line items (expiry,
    /// auto-renewal, price, base plan, latest order), acknowledgement, cancellation and
    /// pause context, external account ids.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptionsv2/tokens/:token",
        method = "get",
        operation_id = "androidpublisher.purchases.subscriptionsv2.get",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_v2_get(
        &self,
        request: &Request,
        /// The app's package name, e.g. `com.boxoffice.app`.
        #[oai(name = "packageName")]
        package_name: Path<String>,
        /// The purchase token the app got.
        token: Path<String>,
    ) -> GoogleResponse<SubscriptionPurchaseV2> {
        self.call(request, |state, now| {
            let subscription = state.purchases.subscription(&package_name, &token)?;
            if subscription.gone(now) {
                return Ok(Err(ApiError::no_longer_available()));
            }
            Ok(Ok(subscription.v2()))
        })
        .and_then(|answer| answer)
        .into()
    }

    /// Revoke a subscription purchase (v2)
    ///
    /// `purchases.subscriptionsv2.revoke`: access ends now (`SUBSCRIPTION_REVOKED`); with
    /// `fullRefund` or `itemBasedRefund` the latest order is refunded (a voided purchase
    /// notification), with `proratedRefund` only its unused part.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptionsv2/tokens/:token/revoke",
        method = "post",
        operation_id = "androidpublisher.purchases.subscriptionsv2.revoke",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_v2_revoke(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        token: Path<String>,
        body: JsonBody<RevokeSubscriptionPurchaseRequest>,
    ) -> GoogleResponse<Empty> {
        let refund = match body.parse() {
            Ok(Some(RevokeSubscriptionPurchaseRequest {
                revocation_context: Some(context),
            })) => match (
                context.prorated_refund,
                context.full_refund,
                context.item_based_refund,
            ) {
                (Some(_), None, None) => Refund::Prorated,
                (None, Some(_), None) | (None, None, Some(_)) => Refund::Full,
                _ => {
                    return Err(ApiError::bad_request(
                        "revocationContext must have exactly one of proratedRefund, \
                         fullRefund, itemBasedRefund.",
                    ))
                    .into();
                }
            },
            Ok(_) => {
                return Err(ApiError::bad_request("revocationContext is required.")).into();
            }
            Err(error) => return Err(error).into(),
        };
        self.call(request, |state, now| {
            state
                .purchases
                .revoke_subscription(&package_name, &token, refund, now)?;
            Ok(Empty {})
        })
        .into()
    }

    /// Cancel a subscription purchase (v2)
    ///
    /// `purchases.subscriptionsv2.cancel`: auto-renewal stops (`SUBSCRIPTION_CANCELED`);
    /// access continues until the expiry time. `USER_REQUESTED_STOP_RENEWALS` cancels as
    /// the user would (the user can restore it), `DEVELOPER_REQUESTED_STOP_PAYMENTS` as the
    /// developer (it cannot be restored).
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptionsv2/tokens/:token/cancel",
        method = "post",
        operation_id = "androidpublisher.purchases.subscriptionsv2.cancel",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_v2_cancel(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        token: Path<String>,
        body: JsonBody<CancelSubscriptionPurchaseRequest>,
    ) -> GoogleResponse<Empty> {
        let cancellation_type = match body.parse() {
            Ok(body) => body
                .and_then(|body| body.cancellation_context)
                .and_then(|context| context.cancellation_type),
            Err(error) => return Err(error).into(),
        };
        let by = match cancellation_type {
            Some(CancellationType::UserRequestedStopRenewals) => CancelledBy::User {
                survey_reason: None,
            },
            Some(CancellationType::DeveloperRequestedStopPayments) => CancelledBy::Developer,
            Some(CancellationType::Unspecified) | None => {
                return Err(ApiError::bad_request(
                    "cancellationContext.cancellationType is required.",
                ))
                .into();
            }
        };
        self.call(request, |state, now| {
            state.purchases.cancel(&package_name, &token, by, now)?;
            Ok(Empty {})
        })
        .into()
    }

    /// Get a subscription purchase (v1)
    ///
    /// `purchases.subscriptions.get`: times in milliseconds, the price in micros, payment
    /// state, cancel reason, latest order id. The token must be of `subscriptionId`.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptions/:subscriptionId/tokens/:token",
        method = "get",
        operation_id = "androidpublisher.purchases.subscriptions.get",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_get(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        /// The subscription's product id.
        #[oai(name = "subscriptionId")]
        subscription_id: Path<String>,
        token: Path<String>,
    ) -> GoogleResponse<SubscriptionPurchase> {
        self.call(request, |state, now| {
            Self::check_subscription_id(state, &package_name, &subscription_id, &token)?;
            let subscription = state.purchases.subscription(&package_name, &token)?;
            if subscription.gone(now) {
                return Ok(Err(ApiError::no_longer_available()));
            }
            Ok(Ok(subscription.v1()))
        })
        .and_then(|answer| answer)
        .into()
    }

    /// Acknowledge a subscription purchase
    ///
    /// `purchases.subscriptions.acknowledge`. Unacknowledged purchases are refunded and
    /// revoked after three days. Acknowledging again changes nothing.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptions/:subscriptionId/tokens/:token/acknowledge",
        method = "post",
        operation_id = "androidpublisher.purchases.subscriptions.acknowledge",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_acknowledge(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        #[oai(name = "subscriptionId")] subscription_id: Path<String>,
        token: Path<String>,
        body: JsonBody<SubscriptionPurchasesAcknowledgeRequest>,
    ) -> GoogleEmptyResponse {
        if let Err(error) = body.parse() {
            return Err(error).into();
        }
        self.call(request, |state, _| {
            state
                .purchases
                .acknowledge_subscription(&package_name, &subscription_id, &token)
        })
        .into()
    }

    /// Cancel a subscription purchase
    ///
    /// `purchases.subscriptions.cancel`: auto-renewal stops (`SUBSCRIPTION_CANCELED`,
    /// cancel reason 3, developer); access continues until the expiry time.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptions/:subscriptionId/tokens/:token/cancel",
        method = "post",
        operation_id = "androidpublisher.purchases.subscriptions.cancel",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_cancel(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        #[oai(name = "subscriptionId")] subscription_id: Path<String>,
        token: Path<String>,
    ) -> GoogleEmptyResponse {
        self.call(request, |state, now| {
            Self::check_subscription_id(state, &package_name, &subscription_id, &token)?;
            state
                .purchases
                .cancel(&package_name, &token, CancelledBy::Developer, now)?;
            Ok(())
        })
        .into()
    }

    /// Refund a subscription purchase
    ///
    /// `purchases.subscriptions.refund`: the latest order is refunded (a voided purchase
    /// notification); the subscription stays valid and keeps renewing.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptions/:subscriptionId/tokens/:token/refund",
        method = "post",
        operation_id = "androidpublisher.purchases.subscriptions.refund",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_refund(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        #[oai(name = "subscriptionId")] subscription_id: Path<String>,
        token: Path<String>,
    ) -> GoogleEmptyResponse {
        self.call(request, |state, now| {
            Self::check_subscription_id(state, &package_name, &subscription_id, &token)?;
            state
                .purchases
                .refund_subscription(&package_name, &token, now)?;
            Ok(())
        })
        .into()
    }

    /// Revoke a subscription purchase (v1)
    ///
    /// `purchases.subscriptions.revoke`: the latest order is refunded and access ends now
    /// (`SUBSCRIPTION_REVOKED` and a voided purchase notification).
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/subscriptions/:subscriptionId/tokens/:token/revoke",
        method = "post",
        operation_id = "androidpublisher.purchases.subscriptions.revoke",
        tag = "GoogleTag::Subscriptions"
    )]
    async fn subscriptions_revoke(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        #[oai(name = "subscriptionId")] subscription_id: Path<String>,
        token: Path<String>,
    ) -> GoogleEmptyResponse {
        self.call(request, |state, now| {
            Self::check_subscription_id(state, &package_name, &subscription_id, &token)?;
            state
                .purchases
                .revoke_subscription(&package_name, &token, Refund::Full, now)?;
            Ok(())
        })
        .into()
    }

    /// Get a product purchase
    ///
    /// `purchases.products.get`: purchase, consumption and acknowledgement state, order id,
    /// quantity. The token must be of `productId`.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/products/:productId/tokens/:token",
        method = "get",
        operation_id = "androidpublisher.purchases.products.get",
        tag = "GoogleTag::Products"
    )]
    async fn products_get(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        /// The one-time product's id.
        #[oai(name = "productId")]
        product_id: Path<String>,
        token: Path<String>,
    ) -> GoogleResponse<ProductPurchaseResource> {
        self.call(request, |state, _| {
            let product = state.purchases.product(&package_name, &token)?;
            if product.product_id != *product_id {
                return Err(Refusal::UnknownPurchase);
            }
            Ok(product.resource())
        })
        .into()
    }

    /// Acknowledge a product purchase
    ///
    /// `purchases.products.acknowledge`. Unacknowledged (and unconsumed) purchases are
    /// refunded after three days. Acknowledging again changes nothing.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/products/:productId/tokens/:token/acknowledge",
        method = "post",
        operation_id = "androidpublisher.purchases.products.acknowledge",
        tag = "GoogleTag::Products"
    )]
    async fn products_acknowledge(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        #[oai(name = "productId")] product_id: Path<String>,
        token: Path<String>,
        body: JsonBody<ProductPurchasesAcknowledgeRequest>,
    ) -> GoogleEmptyResponse {
        if let Err(error) = body.parse() {
            return Err(error).into();
        }
        self.call(request, |state, _| {
            state
                .purchases
                .acknowledge_product(&package_name, &product_id, &token)
        })
        .into()
    }

    /// Consume a product purchase
    ///
    /// `purchases.products.consume`: the product can be bought again; consuming
    /// acknowledges. A consumed or refunded purchase is `productNotOwnedByUser`.
    #[oai(
        path = "/androidpublisher/v3/applications/:packageName/purchases/products/:productId/tokens/:token/consume",
        method = "post",
        operation_id = "androidpublisher.purchases.products.consume",
        tag = "GoogleTag::Products"
    )]
    async fn products_consume(
        &self,
        request: &Request,
        #[oai(name = "packageName")] package_name: Path<String>,
        #[oai(name = "productId")] product_id: Path<String>,
        token: Path<String>,
    ) -> GoogleEmptyResponse {
        self.call(request, |state, _| {
            state
                .purchases
                .consume_product(&package_name, &product_id, &token)
        })
        .into()
    }

    /// Get an access token
    ///
    /// Google's `https://oauth2.googleapis.com/token` for a service account: the JWT bearer
    /// grant, its assertion signed with the key of the service account's key file (from the
    /// control surface). Answers an access token for the assertion's scopes, valid 3599
    /// seconds on the simulator's clock.
    #[oai(
        path = "/token",
        method = "post",
        operation_id = "getGoogleAccessToken",
        tag = "GoogleTag::OAuth"
    )]
    async fn token(&self, body: TokenForm) -> TokenResponse {
        let keys = self.simulator.keys().map(|keys| &keys.service_account);
        let email = &self.simulator.config().service_account_email;
        let own_token_uri = self.simulator.token_uri();
        let (result, _) = self.simulator.with_state(|state, now| {
            oauth::exchange(&body.0, keys, email, &own_token_uri, now)
                .map(|scopes| state.access_tokens.issue(scopes, now))
        });
        match result {
            Ok(access_token) => TokenResponse::Ok(Json(AccessTokenResponse {
                access_token,
                expires_in: ACCESS_TOKEN_LIFETIME.num_seconds(),
                token_type: "Bearer".into(),
            })),
            Err(error) => TokenResponse::BadRequest(Json(error)),
        }
    }

    /// Google's signing keys (JWKS)
    ///
    /// `https://www.googleapis.com/oauth2/v3/certs`: the keys that sign the OIDC tokens of
    /// authenticated pushes.
    #[oai(
        path = "/oauth2/v3/certs",
        method = "get",
        operation_id = "getGoogleJwks",
        tag = "GoogleTag::OAuth"
    )]
    async fn jwks(&self) -> Json<JwkSet> {
        Json(JwkSet {
            keys: self
                .simulator
                .keys()
                .map(|keys| vec![keys.google.jwk()])
                .unwrap_or_default(),
        })
    }

    /// Google's signing keys (certificates)
    ///
    /// `https://www.googleapis.com/oauth2/v1/certs`: the same keys as self-signed X.509
    /// certificates (PEM) by key id, what `google.oauth2.id_token` verifies with.
    #[oai(
        path = "/oauth2/v1/certs",
        method = "get",
        operation_id = "getGoogleCertificates",
        tag = "GoogleTag::OAuth"
    )]
    async fn certificates(&self) -> Json<BTreeMap<String, String>> {
        Json(
            self.simulator
                .keys()
                .map(|keys| {
                    BTreeMap::from([(keys.google.kid.clone(), keys.google_certificate.clone())])
                })
                .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_methods_are_routed_by_their_verb_segment() {
        let base = "/androidpublisher/v3/applications/com.a.b/purchases/subscriptions/monthly";
        assert_eq!(
            internal_path(&format!("{base}/tokens/abc:acknowledge")).unwrap(),
            format!("{base}/tokens/abc/acknowledge")
        );
        assert_eq!(
            internal_path(&format!("{base}/tokens/abc")).unwrap(),
            format!("{base}/tokens/abc")
        );
        assert_eq!(
            internal_path(&format!("{base}/tokens/abc/acknowledge")),
            None
        );
        assert_eq!(internal_path("/token").unwrap(), "/token");
        assert_eq!(
            with_google_paths("\"/x/tokens/{token}/revoke\": {"),
            "\"/x/tokens/{token}:revoke\": {"
        );
    }
}
