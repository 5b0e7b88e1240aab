//! `/webhooks/<provider>`: the notifications payment providers send. Each receiver hands
//! the raw body and its signature to the core, which verifies, de-duplicates and applies.
//! Its document is `openapi/webhooks.json`.

use std::sync::Arc;

use poem::{Request, RequestBody, Route};
use poem_openapi::param::Header;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService, Tags};

use crate::core::{
    Core, CoreError, StoreNotificationError, StoreNotificationOutcome, WebhookError, WebhookOutcome,
};

#[derive(Tags)]
enum WebhookTags {
    /// Stripe's webhook events.
    Stripe,
    /// The app stores' server notifications.
    Stores,
}

/// A provider's JSON body, kept byte for byte: the signature covers the exact bytes.
pub struct SignedJson(pub Vec<u8>);

impl Payload for SignedJson {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("The provider's event object, exactly as sent."),
            ..MetaSchema::new("object")
        }))
    }
}

impl ParsePayload for SignedJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(
            <Vec<u8> as poem::FromRequest>::from_request(request, body).await?,
        ))
    }
}

// The two-argument form: the one-argument form expands to an unqualified call that only
// resolves inside poem-openapi.
poem_openapi::impl_apirequest_for_payload!(SignedJson,);

/// A store's notification sent as text, kept byte for byte: a secured Roku push (a JWS) or
/// an Amazon SNS message (JSON), both `text/plain`; an unsecured Roku push as JSON.
pub struct TextBody(pub Vec<u8>);

impl Payload for TextBody {
    const CONTENT_TYPE: &'static str = "text/plain";

    fn check_content_type(content_type: &str) -> bool {
        content_type.split(';').next().is_some_and(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("text/plain")
                || essence.eq_ignore_ascii_case("application/json")
        })
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some(
                "The notification exactly as sent: Roku's JWS, or SNS's or Roku's JSON.",
            ),
            ..MetaSchema::new("string")
        }))
    }
}

impl ParsePayload for TextBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(
            <Vec<u8> as poem::FromRequest>::from_request(request, body).await?,
        ))
    }
}

poem_openapi::impl_apirequest_for_payload!(TextBody,);

/// The notification was taken.
#[derive(Debug, Clone, Object)]
pub struct WebhookReceipt {
    pub received: bool,
    /// `applied` (also for a renewal the billing clock has in hand, however often it comes),
    /// `replayed` (its id was seen before; nothing changed) or `ignored` (a type the server
    /// does not act on).
    pub outcome: String,
}

/// Why a notification was refused.
#[derive(Debug, Clone, Object)]
pub struct WebhookRefusal {
    pub error: String,
}

#[derive(ApiResponse)]
enum WebhookResponse {
    /// Taken (applied, a replay, or ignored).
    #[oai(status = 200)]
    Received(Json<WebhookReceipt>),
    /// The signature is missing, wrong or too old, or the body is not an event.
    #[oai(status = 400)]
    Refused(Json<WebhookRefusal>),
    /// About a purchase no customer has verified yet; the store retries, by which time
    /// the app has usually sent its receipt.
    #[oai(status = 404)]
    UnknownPurchase(Json<WebhookRefusal>),
    /// The server could not apply it now (a provider or the database is unavailable);
    /// the provider retries.
    #[oai(status = 503)]
    Unavailable(Json<WebhookRefusal>),
}

fn received(outcome: &str) -> WebhookResponse {
    WebhookResponse::Received(Json(WebhookReceipt {
        received: true,
        outcome: outcome.into(),
    }))
}

fn store_notification(
    result: Result<StoreNotificationOutcome, StoreNotificationError>,
) -> WebhookResponse {
    match result {
        Ok(StoreNotificationOutcome::Applied) => received("applied"),
        Ok(StoreNotificationOutcome::Replayed) => received("replayed"),
        Ok(StoreNotificationOutcome::Ignored) => received("ignored"),
        Err(StoreNotificationError::Unverified(error)) => {
            WebhookResponse::Refused(Json(WebhookRefusal { error }))
        }
        Err(error @ StoreNotificationError::UnknownPurchase) => {
            WebhookResponse::UnknownPurchase(Json(WebhookRefusal {
                error: error.to_string(),
            }))
        }
        Err(StoreNotificationError::Core(error)) => refusal(error),
    }
}

pub struct WebhookApi(Arc<Core>);

pub struct StoreWebhookApi(Arc<Core>);

pub struct RokuWebhookApi(Arc<Core>);

#[OpenApi]
impl WebhookApi {
    /// Stripe webhook
    ///
    /// Stripe's events for the webhook endpoint registered for this server. The
    /// `Stripe-Signature` header (`t=…,v1=…`, HMAC-SHA256 with the endpoint's `whsec_…`
    /// secret over `"<t>.<body>"`) must match and be at most the configured tolerance old
    /// by the server's clock. An event id seen before changes nothing (`replayed`); so does
    /// the event of a renewal the billing clock is charging or has recorded, which is
    /// answered `applied` on every delivery, its paid period being the record. Acts on
    /// `payment_intent.succeeded`, `payment_intent.payment_failed`,
    /// `payment_intent.canceled`, `setup_intent.succeeded` and `charge.refunded`, always
    /// re-reading the object from Stripe.
    #[oai(
        path = "/stripe",
        method = "post",
        tag = "WebhookTags::Stripe",
        operation_id = "stripe-webhook"
    )]
    async fn stripe(
        &self,
        #[oai(name = "Stripe-Signature")] signature: Header<Option<String>>,
        body: SignedJson,
    ) -> WebhookResponse {
        match self.0.stripe_webhook(signature.0.as_deref(), &body.0).await {
            Ok(outcome) => WebhookResponse::Received(Json(WebhookReceipt {
                received: true,
                outcome: match outcome {
                    WebhookOutcome::Applied => "applied",
                    WebhookOutcome::Replayed => "replayed",
                    WebhookOutcome::Ignored => "ignored",
                }
                .into(),
            })),
            Err(WebhookError::Signature(error)) => WebhookResponse::Refused(Json(WebhookRefusal {
                error: error.to_string(),
            })),
            Err(WebhookError::Malformed(message)) => {
                WebhookResponse::Refused(Json(WebhookRefusal { error: message }))
            }
            Err(WebhookError::Core(error)) => refusal(error),
        }
    }
}

#[OpenApi]
impl StoreWebhookApi {
    /// App Store Server Notifications V2
    ///
    /// Apple's `{"signedPayload": "…"}`: a JWS (ES256) whose `x5c` chain must end in a
    /// configured Apple root, for this app's bundle id and an environment this server
    /// serves. A `notificationUUID` seen before changes nothing. The subscription it names
    /// is then read again from the App Store Server API and mirrored: renewals (recorded as
    /// transactions), billing retry and grace period (access kept through grace), recovery,
    /// auto-renew turned off (access until expiry) or on, expiry, refund and revocation
    /// (access ends, the refund recorded).
    #[oai(
        path = "/apple",
        method = "post",
        tag = "WebhookTags::Stores",
        operation_id = "apple-notification"
    )]
    async fn apple(&self, body: SignedJson) -> WebhookResponse {
        store_notification(self.0.apple_notification(&body.0).await)
    }

    /// Google Play Real-time developer notifications
    ///
    /// A Pub/Sub push (`{"message": {"data": base64, "messageId": …}, "subscription": …}`)
    /// whose `data` is a `DeveloperNotification`. The push subscription must authenticate:
    /// `Authorization: Bearer` an OIDC token signed by Google (RS256, issuer
    /// `https://accounts.google.com`, the configured audience and, when configured, service
    /// account), unexpired by the server's clock. A message id seen before changes nothing.
    /// The purchase it names is read again with `purchases.subscriptionsv2.get` and
    /// mirrored; a voided purchase records the refund, and ends access when the store
    /// revoked it.
    #[oai(
        path = "/google",
        method = "post",
        tag = "WebhookTags::Stores",
        operation_id = "google-notification"
    )]
    async fn google(
        &self,
        #[oai(name = "Authorization")] authorization: Header<Option<String>>,
        body: SignedJson,
    ) -> WebhookResponse {
        store_notification(
            self.0
                .google_notification(authorization.0.as_deref(), &body.0)
                .await,
        )
    }
}

#[OpenApi]
impl RokuWebhookApi {
    /// Roku Pay push notifications
    ///
    /// Roku's transaction notifications (sale, renewal, cancellation, refund, grace period,
    /// on hold, …). A secured push is a JWS (RS256) signed with a key from Roku's key set,
    /// Roku's issuer, not expired and not before its time by the server's clock; unsecured
    /// JSON pushes are refused unless configured. A notification id seen before changes
    /// nothing. The subscription is validated again with Roku (`validate-transaction`) and
    /// mirrored; a reported refund is recorded.
    #[oai(
        path = "/roku",
        method = "post",
        tag = "WebhookTags::Stores",
        operation_id = "roku-notification"
    )]
    async fn roku(&self, body: TextBody) -> WebhookResponse {
        store_notification(self.0.roku_notification(&body.0).await)
    }

    /// Amazon Appstore Real-time Notifications
    ///
    /// Amazon SNS's HTTP(S) delivery (`x-amz-sns-message-type` `Notification`,
    /// `SubscriptionConfirmation` or `UnsubscribeConfirmation`; a JSON body sent as
    /// `text/plain`). The signature (SignatureVersion 1, SHA1, or 2, SHA256, over SNS's
    /// string to sign) must verify with the certificate at `SigningCertURL`, which must be
    /// on SNS's host for a configured topic, and the message must be recent by the server's
    /// clock. A subscription confirmation is confirmed. A message id seen before changes
    /// nothing; otherwise the receipt is read again from RVS and mirrored.
    #[oai(
        path = "/amazon",
        method = "post",
        tag = "WebhookTags::Stores",
        operation_id = "amazon-notification"
    )]
    async fn amazon(&self, request: &poem::Request, body: TextBody) -> WebhookResponse {
        let declared_type = request
            .headers()
            .get("x-amz-sns-message-type")
            .map(|value| value.as_bytes());
        store_notification(self.0.amazon_notification(declared_type, &body.0).await)
    }
}

/// A core error while applying: the provider should retry, unless the event can never
/// apply (then it is acknowledged, so that Stripe stops sending it).
fn refusal(error: CoreError) -> WebhookResponse {
    match error {
        CoreError::Invalid(message) => {
            tracing::warn!(%message, "webhook event cannot be applied; acknowledged");
            WebhookResponse::Received(Json(WebhookReceipt {
                received: true,
                outcome: "ignored".into(),
            }))
        }
        error => {
            tracing::warn!(%error, "webhook not applied now");
            WebhookResponse::Unavailable(Json(WebhookRefusal {
                error: "The notification could not be applied now; retry later".into(),
            }))
        }
    }
}

fn service(
    core: Arc<Core>,
    server_url: &str,
) -> OpenApiService<(WebhookApi, StoreWebhookApi, RokuWebhookApi), ()> {
    OpenApiService::new(
        (
            WebhookApi(core.clone()),
            StoreWebhookApi(core.clone()),
            RokuWebhookApi(core),
        ),
        "boxoffice webhooks",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The notifications payment providers send to boxoffice. Register these URLs with \
             each provider; every receiver verifies the provider's signature, ignores a \
             notification it has seen, and answers 2xx once the notification is applied or \
             known, so that the provider stops retrying.",
    )
    .server(server_url)
}

/// The receivers, their document at `/openapi.json` and Swagger UI at `/docs`.
pub fn routes(core: Arc<Core>, server_url: &str) -> Route {
    let service = service(core, server_url);
    Route::new()
        .nest("/docs", service.swagger_ui())
        .at("/openapi.json", service.spec_endpoint())
        .nest("/", service)
}

/// The document, as committed under `openapi/webhooks.json`.
pub fn document(core: Arc<Core>, server_url: &str) -> String {
    service(core, server_url).spec()
}
