//! The Stripe simulator: a stateful, offline fake of Stripe's API in test mode.
//!
//! It speaks Stripe's own wire format, so Stripe's official client libraries work against
//! it unchanged when pointed at its base URL (e.g. `stripe.api_base = "http://127.0.0.1:8080/sim/stripe"`):
//! - requests: `application/x-www-form-urlencoded` bodies (and query strings) with
//!   bracket notation (`metadata[plan]=gold`, `expand[]=latest_charge`); a parameter the
//!   operation does not know is refused (`Received unknown parameter: …`), as Stripe does;
//! - keys: `Authorization: Bearer sk_test_…` ([`StripeConfig::secret_key`]; basic auth with
//!   the key as user also works). The publishable key ([`StripeConfig::publishable_key`])
//!   may only retrieve and confirm intents, with their `client_secret`, and create payment
//!   methods — what Stripe.js does in a browser. `Stripe-Version` is accepted and echoed;
//! - `Idempotency-Key` on `POST`: the same key and parameters replay the stored answer
//!   (`Idempotent-Replayed: true`); other parameters or another endpoint get Stripe's
//!   `idempotency_error`. Keys live 24 hours on the host's clock. A request refused with
//!   400 is not remembered, as in Stripe;
//! - objects: customers, payment methods (Stripe's test card numbers and `pm_card_*`
//!   tokens), payment intents, setup intents, charges, refunds, events, webhook endpoints;
//!   Stripe's ids, `object`, `created` (unix seconds), `livemode: false`, `metadata`; lists
//!   are Stripe's list object, newest first, with `limit`, `starting_after`,
//!   `ending_before`;
//! - errors: Stripe's error object — 400 `invalid_request_error` (with `param` and
//!   `code`), 401, 402 `card_error` (`code`, `decline_code`, `message`, and the intent),
//!   404 `resource_missing`;
//! - time: only from the host's [`Now`], never the machine's clock.
//!
//! Every change worth telling is an event (`GET /v1/events`, [`EVENT_TYPES`]) with a
//! snapshot of its object and the request that caused it. Each event is owed to every
//! enabled webhook endpoint subscribed to its type (`POST /v1/webhook_endpoints`, or
//! [`StripeSimulator::register_webhook_endpoint`] for the host's own receiver): POSTed as
//! JSON, signed with `Stripe-Signature` exactly as Stripe signs it ([`signature_header`]),
//! settled by a 2xx, otherwise retried on the host's clock ([`retry_delay`]) until three
//! days after the first attempt ([`GIVE_UP_AFTER`]). Deliveries go out when
//! [`StripeSimulator::deliver_due`] runs — every [`DELIVERY_POLL_INTERVAL`] under
//! [`StripeSimulator::spawn_delivery_loop`], or on demand from the control surface.
//!
//! The hosted card form (`/elements/pay`, [`StripeSimulator::payment_form_url`]) is what a
//! browser sees in place of Stripe's Payment Element: card fields for a payment or setup
//! intent, declines shown as Stripe words them, a 3D Secure test page, and the redirect to
//! the merchant's `return_url` with Stripe's query parameters.
//!
//! The control surface ([`SimStripeControlApi`], `/control/stripe/...`) plays the customer
//! (confirming intents, completing 3D Secure) and the issuer (failing a customer's next
//! charge), reads the account's state, sends due webhooks now, lists deliveries with every
//! attempt, and resends an event. What plays the customer (the control confirmation, the
//! card form) attempts the webhooks it caused before it answers, so a client holding the
//! answer knows the merchant was told.

mod api;
mod cards;
mod compact;
mod control;
mod delivery;
mod details;
mod elements;
mod error;
mod events;
mod form;
mod idempotency;
mod state;
mod table;
mod webhook_api;
mod webhooks;

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

use chrono::{DateTime, Utc};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Route};

pub use self::api::DEFAULT_API_VERSION;
pub use self::control::SimStripeControlApi;
pub use self::delivery::{DELIVERY_POLL_INTERVAL, WebhookDeliveryReport};
pub use self::error::StripeError;
pub use self::events::EVENT_TYPES;
use self::idempotency::IdempotencyKeys;
use self::state::Account;
use self::webhooks::NewWebhookEndpoint;
pub use self::webhooks::{
    GIVE_UP_AFTER, WebhookAttempt, WebhookDelivery, WebhookDeliveryState, retry_delay,
    signature_header,
};
use crate::clock::Now;

/// How the simulated Stripe account is set up.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Where the simulator's endpoint is reachable, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080/sim/stripe`; the API is at `{public_base_url}/v1/...`.
    pub public_base_url: String,
    /// The account's secret key, `sk_test_…`.
    pub secret_key: String,
    /// The account's publishable key, `pk_test_…`.
    pub publishable_key: String,
    /// Webhook endpoints the host serves itself and can be reached at over a Unix socket.
    pub local_webhooks: Option<LocalWebhooks>,
}

/// Where a host that serves its own webhook receivers also listens on a Unix socket:
/// deliveries to an endpoint under `origin` go over `socket` instead of TCP. The bytes
/// sent are the same; loopback TCP costs both ends several times the CPU. Ignored where
/// there are no Unix sockets.
#[derive(Debug, Clone)]
pub struct LocalWebhooks {
    /// Scheme, host and port, e.g. `http://127.0.0.1:8080`.
    pub origin: String,
    pub socket: std::path::PathBuf,
}

/// A webhook endpoint the host registered ([`StripeSimulator::register_webhook_endpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredWebhookEndpoint {
    /// `we_…`.
    pub id: String,
    /// `whsec_…`: what the receiver verifies `Stripe-Signature` with.
    pub secret: String,
}

/// The simulated account. Cheap to clone: clones share one account.
#[derive(Clone)]
pub struct StripeSimulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: StripeConfig,
    now: Now,
    shared: Mutex<Shared>,
    /// What webhooks are sent with, built on first use.
    http: OnceLock<Result<delivery::WebhookClients, String>>,
    /// Woken whenever attempts have been recorded.
    delivery_finished: tokio::sync::Notify,
    /// Woken whenever `shared` is released.
    released: tokio::sync::Notify,
}

/// The account and the answers kept for idempotency keys, under one lock so that a
/// request and the storing of its answer are one step.
pub(crate) struct Shared {
    pub account: Account,
    pub idempotency: IdempotencyKeys,
}

/// The account's lock, held. Dropping it releases the lock, then wakes the requests
/// waiting for it ([`StripeSimulator::lock_for_request`]).
///
/// Invariant: every hold of `shared` is a `SharedGuard`, so no release goes unannounced.
pub(crate) struct SharedGuard<'s> {
    // Fields drop in declaration order: the lock is released before the waiters are woken,
    // or a waiter woken while it was still held would find it taken and wait again for a
    // release that had already happened.
    guard: MutexGuard<'s, Shared>,
    _announce: AnnounceRelease<'s>,
}

struct AnnounceRelease<'s>(&'s tokio::sync::Notify);

impl Drop for AnnounceRelease<'_> {
    fn drop(&mut self) {
        self.0.notify_waiters();
    }
}

impl Deref for SharedGuard<'_> {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.guard
    }
}

impl DerefMut for SharedGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.guard
    }
}

impl StripeSimulator {
    /// Builds an empty account after checking the configuration.
    pub fn new(mut config: StripeConfig, now: Now) -> Result<Self, StripeError> {
        config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
        if !(config.public_base_url.starts_with("http://")
            || config.public_base_url.starts_with("https://"))
        {
            return Err(StripeError::InvalidConfig(
                "public_base_url must be an http(s) URL".into(),
            ));
        }
        if !config.secret_key.starts_with("sk_test_") || config.secret_key.len() <= 8 {
            return Err(StripeError::InvalidConfig(
                "secret_key must be a test-mode secret key (sk_test_…)".into(),
            ));
        }
        if !config.publishable_key.starts_with("pk_test_") || config.publishable_key.len() <= 8 {
            return Err(StripeError::InvalidConfig(
                "publishable_key must be a test-mode publishable key (pk_test_…)".into(),
            ));
        }
        Ok(Self::from_parts(config, now))
    }

    fn from_parts(config: StripeConfig, now: Now) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                now,
                shared: Mutex::new(Shared {
                    account: Account::default(),
                    idempotency: IdempotencyKeys::default(),
                }),
                http: OnceLock::new(),
                delivery_finished: tokio::sync::Notify::new(),
                released: tokio::sync::Notify::new(),
            }),
        }
    }

    /// An account that only describes itself. For the OpenAPI document.
    fn for_documentation(public_base_url: &str) -> Self {
        Self::from_parts(
            StripeConfig {
                public_base_url: public_base_url.trim_end_matches('/').to_owned(),
                secret_key: "sk_test_documentation".into(),
                publishable_key: "pk_test_documentation".into(),
                local_webhooks: None,
            },
            Arc::new(|| DateTime::UNIX_EPOCH),
        )
    }

    /// The simulator's HTTP surface, to mount at the path [`StripeConfig::public_base_url`]
    /// names: Stripe's API at `/v1/...`, this API's OpenAPI document at `/openapi.json`
    /// and Swagger UI at `/docs`, the hosted card form at `/elements/pay` (see
    /// [`StripeSimulator::payment_form_url`]). Other paths and methods get Stripe's
    /// "Unrecognized request URL" 404.
    /// The control surface is separate ([`StripeSimulator::control_api`]).
    pub fn endpoint(&self) -> Route {
        let service = api::service(self.clone());
        let spec = service.spec_endpoint();
        let docs = service.swagger_ui();
        let api = service
            .into_endpoint()
            .around(|endpoint, request| async move {
                let method = request.method().to_string();
                let path = request.uri().path().to_owned();
                let unrecognized = || {
                    poem::web::Json(api::unrecognized_url(&method, &path))
                        .with_status(poem::http::StatusCode::NOT_FOUND)
                        .into_response()
                };
                match endpoint.call(request).await {
                    Ok(response) => {
                        let response = response.into_response();
                        if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
                            Ok(unrecognized())
                        } else {
                            Ok(response)
                        }
                    }
                    Err(error)
                        if error.is::<poem::error::NotFoundError>()
                            || error.is::<poem::error::MethodNotAllowedError>() =>
                    {
                        Ok(unrecognized())
                    }
                    Err(error) => Err(error),
                }
            });
        Route::new()
            .at("/openapi.json", spec)
            .nest("/docs", docs)
            .nest("/elements", elements::routes(self.clone()))
            .nest("/", api)
    }

    /// Registers a webhook endpoint, as `POST /v1/webhook_endpoints` does (same checks):
    /// from now on, every event whose type is in `enabled_events` (or all, with `"*"`) is
    /// sent to `url`, signed with the returned secret. For the host to subscribe its own
    /// webhook receiver.
    pub fn register_webhook_endpoint(
        &self,
        url: &str,
        enabled_events: &[&str],
    ) -> Result<RegisteredWebhookEndpoint, StripeError> {
        let new = NewWebhookEndpoint {
            url: url.to_owned(),
            enabled_events: enabled_events
                .iter()
                .map(|&event| event.to_owned())
                .collect(),
            ..NewWebhookEndpoint::default()
        };
        let now = self.now();
        let endpoint = self
            .lock()
            .account
            .create_webhook_endpoint(new, now)
            .map_err(|error| StripeError::WebhookEndpointRefused(error.message))?;
        Ok(RegisteredWebhookEndpoint {
            id: endpoint.id,
            secret: endpoint.secret,
        })
    }

    /// Where a browser pays or saves a card for an intent on the hosted card form: the
    /// intent's `client_secret`, and the merchant page to come back to (http or https),
    /// which gets Stripe's redirect parameters (`payment_intent` or `setup_intent`, its
    /// `…_client_secret`, `redirect_status`). Embeddable in an iframe: the form navigates
    /// the top window.
    pub fn payment_form_url(&self, client_secret: &str, return_url: &str) -> String {
        let mut url = format!("{}/elements/pay?", self.config().public_base_url);
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("client_secret", client_secret)
                .append_pair("key", &self.config().publishable_key)
                .append_pair("return_url", return_url)
                .finish(),
        );
        url
    }

    /// The control surface (`/control/stripe/...`), for the host to mount in its control
    /// OpenAPI service (at `/sim`).
    pub fn control_api(&self) -> SimStripeControlApi {
        SimStripeControlApi::new(self.clone())
    }

    pub(crate) fn config(&self) -> &StripeConfig {
        &self.inner.config
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.now)()
    }

    /// The account, blocking the thread until it is free. A panic while it was held cannot
    /// leave it half-updated in a way that matters to a simulator, so a poisoned lock is
    /// simply taken over.
    pub(crate) fn lock(&self) -> SharedGuard<'_> {
        self.guard(
            self.inner
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The account, for a request: while another holds it, the request waits for its
    /// release as a task, leaving its worker thread to the other requests in flight
    /// (a blocked worker is a core idle under load).
    pub(crate) async fn lock_for_request(&self) -> SharedGuard<'_> {
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            // Registered before trying, so a release between the try and the wait wakes it.
            released.as_mut().enable();
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            released.await;
        }
    }

    fn try_lock(&self) -> Option<SharedGuard<'_>> {
        match self.inner.shared.try_lock() {
            Ok(guard) => Some(self.guard(guard)),
            Err(TryLockError::Poisoned(poisoned)) => Some(self.guard(poisoned.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn guard<'s>(&'s self, guard: MutexGuard<'s, Shared>) -> SharedGuard<'s> {
        SharedGuard {
            guard,
            _announce: AnnounceRelease(&self.inner.released),
        }
    }
}

/// The OpenAPI document of the simulator's Stripe API (the content of
/// `openapi/sim-stripe.json`), with `public_base_url` as its server. Deterministic: the
/// same input gives the same bytes.
pub fn openapi_json(public_base_url: &str) -> String {
    api::service(StripeSimulator::for_documentation(public_base_url)).spec()
}
