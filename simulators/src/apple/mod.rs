//! The Apple App Store simulator: an offline, stateful fake of what the App Store tells a
//! developer's server about one app's auto-renewable subscriptions.
//!
//! It is faithful enough that Apple's official server libraries (e.g. Python's
//! `app-store-server-library`) work against it unchanged but for the base URL:
//! - signed data: every transaction, renewal info and notification is a JWS signed ES256
//!   (raw `r‖s`) with header `{"alg":"ES256","x5c":[leaf, intermediate, root]}` by a
//!   certificate chain the simulator mints on first start and keeps in its data directory
//!   ([`AppleConfig::data_dir`]); clients trust its root (`GET /root.cer`, `/root.pem`) in
//!   place of Apple's. Payloads carry Apple's fields, times in milliseconds, no `aud`, `exp`,
//!   `iat` or `nbf`;
//! - the App Store Server API (`api.storekit.itunes.apple.com` at `/`, the sandbox's
//!   `api.storekit-sandbox.itunes.apple.com` at `/sandbox`, the same routes under each): Get
//!   Transaction Info, Get All Subscription Statuses, Get Transaction History (v1 and v2,
//!   20 per page), Request a Test Notification, Get Test Notification Status and Get
//!   Notification History, authorised with ES256 bearer tokens signed with a configured
//!   in-app purchase key ([`InAppPurchaseKey`]), errors as Apple's
//!   `{"errorCode", "errorMessage"}` under `Content-Type: application/json` (a refused token is
//!   a plain 401). A transaction of the other environment is not found;
//! - the legacy `POST /verifyReceipt` (production at `/verifyReceipt`, sandbox at
//!   `/sandbox/verifyReceipt`) with StoreKit 1 app receipts the simulator issues and signs;
//! - App Store Server Notifications V2, POSTed as `{"signedPayload": …}` to each
//!   environment's notification URL ([`AppleConfig::notification_urls`], or the control
//!   surface), settled by 200–206, retried on the host's clock 1, 12, 24, 48 and 72 hours
//!   after each failure;
//! - time: only from the host's [`Now`], never the machine's clock. Renewals, grace periods
//!   and billing retry happen on that clock when the host calls
//!   [`AppleSimulator::settle_due`] (or [`AppleSimulator::settle`], which also sends the
//!   notifications due) after moving it, or under [`AppleSimulator::spawn_background_loop`].
//!
//! The control surface ([`AppleControlApi`], `/control/apple/...`) plays the customer (buy,
//! turn auto-renew off and on) and the store (fail the next renewal into a grace period or
//! billing retry, recover, let billing retry run out, refund, revoke), reads the records and
//! the notifications with every attempt, settles and delivers now, sets the notification
//! URLs, and resets. What plays the customer or the store attempts the notifications it
//! caused before it answers, so a client holding the answer knows the server was told.

mod api;
mod certs;
mod control;
mod delivery;
mod error;
mod keys;
mod notifications;
mod payloads;
mod receipt;
mod state;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use poem::endpoint::make_sync;
use poem::{IntoEndpoint, Response, Route, get};
use poem_openapi::Object;
use uuid::Uuid;

use self::certs::SigningIdentity;
pub use self::control::{
    AppInfo, AppleControlApi, AppleControlOutcome, AppleSettleReport, NotificationUrlChange,
    Purchase, PurchaseRequest, SubscriptionView, TransactionView,
};
pub use self::delivery::{BACKGROUND_POLL_INTERVAL, NotificationDeliveryReport};
pub use self::error::AppleError;
use self::keys::TokenVerifier;
pub use self::keys::{InAppPurchaseKey, TOKEN_AUDIENCE};
use self::notifications::{NewNotification, Notifications};
pub use self::notifications::{
    NotificationAttempt, NotificationRecord, NotificationState, SendAttemptResult, retry_delay,
};
use self::payloads::Renderer;
pub use self::state::{
    BILLING_RETRY_PERIOD, Environment, Refusal, RenewalFailure, RevocationReason,
};
use self::state::{Event, Store};
use crate::clock::Now;

/// Apple's grace period for monthly subscriptions.
pub const DEFAULT_GRACE_PERIOD: TimeDelta = TimeDelta::days(16);

/// How long one subscription period lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionPeriod {
    Days(u32),
    Months(u32),
}

/// An auto-renewable subscription product of the app, as set up in App Store Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleProduct {
    /// e.g. `com.boxoffice.app.monthly`.
    pub product_id: String,
    /// The subscription group (`subscriptionGroupIdentifier`): a customer has at most one
    /// subscription per group.
    pub subscription_group: String,
    pub period: SubscriptionPeriod,
    /// Apple's unit, thousandths of the currency's unit: 9.99 GBP is 9990.
    pub price_milliunits: i64,
    /// ISO 4217, e.g. `GBP`.
    pub currency: String,
}

/// Where each environment's App Store Server Notifications go.
#[derive(Object, Debug, Clone, Default, PartialEq, Eq)]
#[oai(rename = "AppleNotificationUrls")]
pub struct NotificationUrls {
    pub production: Option<String>,
    pub sandbox: Option<String>,
}

impl NotificationUrls {
    pub fn get(&self, environment: Environment) -> Option<&str> {
        match environment {
            Environment::Production => self.production.as_deref(),
            Environment::Sandbox => self.sandbox.as_deref(),
        }
    }

    fn set(&mut self, environment: Environment, url: Option<String>) {
        match environment {
            Environment::Production => self.production = url,
            Environment::Sandbox => self.sandbox = url,
        }
    }
}

/// How the simulated app is set up in the App Store.
#[derive(Debug, Clone)]
pub struct AppleConfig {
    /// Where the simulator's endpoint is reachable, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080/sim/apple`: the production API there, the sandbox's at
    /// `{public_base_url}/sandbox`.
    pub public_base_url: String,
    /// The app's bundle id, e.g. `com.boxoffice.app`: `bundleId` of everything signed, the
    /// `bid` tokens must name.
    pub bundle_id: String,
    /// The app's Apple id (`appAppleId`; production only, as in the App Store).
    pub app_apple_id: i64,
    /// `bundleVersion` of notifications and the receipt's application version.
    pub bundle_version: String,
    /// The app-specific shared secret `verifyReceipt` wants as `password`.
    pub shared_secret: String,
    /// The keys App Store Server API tokens may be signed with.
    pub api_keys: Vec<InAppPurchaseKey>,
    /// The auto-renewable subscriptions the app sells.
    pub products: Vec<AppleProduct>,
    /// Where notifications go at start (the control surface can change them).
    pub notification_urls: NotificationUrls,
    /// How long a renewal made to fail into a grace period keeps access.
    pub grace_period: TimeDelta,
    /// The storefront of every purchase (ISO 3166-1 alpha-3), e.g. `GBR`.
    pub storefront: String,
    /// Apple's id of that storefront, e.g. `143444` for the United Kingdom.
    pub storefront_id: String,
    /// Where the certificate chain is kept (PEM files, created on first start). `None`: a
    /// new chain for each start, so clients must fetch the root again.
    pub data_dir: Option<PathBuf>,
}

/// The simulated App Store of one app. Cheap to clone: clones share one store.
#[derive(Clone)]
pub struct AppleSimulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: AppleConfig,
    now: Now,
    identity: SigningIdentity,
    tokens: TokenVerifier,
    shared: Mutex<Shared>,
    /// What notifications are sent with, built on first use.
    http: OnceLock<Result<reqwest::Client, String>>,
    /// Woken whenever attempts have been recorded.
    delivery_finished: tokio::sync::Notify,
}

/// Everything that changes, under one lock.
pub(crate) struct Shared {
    pub store: Store,
    pub notifications: Notifications,
    pub notification_urls: NotificationUrls,
    /// Test notifications by their token.
    pub test_notifications: HashMap<String, Uuid>,
}

fn check_url(what: &str, url: &str) -> Result<(), AppleError> {
    let usable = url::Url::parse(url).ok().is_some_and(|parsed| {
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some()
    });
    if usable {
        Ok(())
    } else {
        Err(AppleError::InvalidConfig(format!(
            "{what} must be an absolute http(s) URL, not {url:?}"
        )))
    }
}

fn validate_config(config: &mut AppleConfig) -> Result<(), AppleError> {
    let invalid = |message: String| Err(AppleError::InvalidConfig(message));
    config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
    check_url("public_base_url", &config.public_base_url)?;
    if config.bundle_id.is_empty() || config.bundle_id.contains(char::is_whitespace) {
        return invalid("bundle_id must be a bundle id such as com.example.app".into());
    }
    if config.app_apple_id <= 0 {
        return invalid("app_apple_id must be a positive number".into());
    }
    if config.bundle_version.is_empty() {
        return invalid("bundle_version must not be empty".into());
    }
    if config.shared_secret.is_empty() {
        return invalid("shared_secret must not be empty".into());
    }
    if config.grace_period <= TimeDelta::zero() || config.grace_period >= BILLING_RETRY_PERIOD {
        return invalid("grace_period must be longer than nothing and shorter than 60 days".into());
    }
    if config.storefront.len() != 3 || !config.storefront.chars().all(|c| c.is_ascii_uppercase()) {
        return invalid("storefront must be three capital letters (ISO 3166-1 alpha-3)".into());
    }
    if config.storefront_id.is_empty() || !config.storefront_id.chars().all(|c| c.is_ascii_digit())
    {
        return invalid("storefront_id must be digits".into());
    }
    let mut product_ids = HashSet::new();
    for product in &config.products {
        if product.product_id.is_empty() || !product_ids.insert(product.product_id.as_str()) {
            return invalid(format!(
                "product ids must be present and unique ({:?})",
                product.product_id
            ));
        }
        if product.subscription_group.is_empty() {
            return invalid(format!("{} needs a subscription group", product.product_id));
        }
        if matches!(
            product.period,
            SubscriptionPeriod::Days(0) | SubscriptionPeriod::Months(0)
        ) {
            return invalid(format!(
                "{} needs a period longer than nothing",
                product.product_id
            ));
        }
        if product.price_milliunits < 0 {
            return invalid(format!("{} has a negative price", product.product_id));
        }
        if product.currency.len() != 3 || !product.currency.chars().all(|c| c.is_ascii_uppercase())
        {
            return invalid(format!(
                "{} needs an ISO 4217 currency such as GBP",
                product.product_id
            ));
        }
    }
    for (environment, url) in [
        (
            "notification_urls.production",
            &config.notification_urls.production,
        ),
        (
            "notification_urls.sandbox",
            &config.notification_urls.sandbox,
        ),
    ] {
        if let Some(url) = url {
            check_url(environment, url)?;
        }
    }
    Ok(())
}

impl AppleSimulator {
    /// Builds the app's empty store after checking the configuration, and loads (or mints)
    /// the certificate chain.
    pub fn new(mut config: AppleConfig, now: Now) -> Result<Self, AppleError> {
        validate_config(&mut config)?;
        let tokens = TokenVerifier::new(&config.api_keys, &config.bundle_id)
            .map_err(AppleError::InvalidConfig)?;
        let identity = SigningIdentity::load_or_create(config.data_dir.as_deref())?;
        Ok(Self::from_parts(config, now, identity, tokens))
    }

    fn from_parts(
        config: AppleConfig,
        now: Now,
        identity: SigningIdentity,
        tokens: TokenVerifier,
    ) -> Self {
        let shared = Shared {
            store: Store::new(&config.products, config.grace_period),
            notifications: Notifications::default(),
            notification_urls: config.notification_urls.clone(),
            test_notifications: HashMap::new(),
        };
        Self {
            inner: Arc::new(Inner {
                config,
                now,
                identity,
                tokens,
                shared: Mutex::new(shared),
                http: OnceLock::new(),
                delivery_finished: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A store that only describes itself. For the OpenAPI document.
    fn for_documentation(public_base_url: &str) -> Result<Self, AppleError> {
        let config = AppleConfig {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            bundle_id: "com.example.app".into(),
            app_apple_id: 1,
            bundle_version: "1".into(),
            shared_secret: "documentation".into(),
            api_keys: Vec::new(),
            products: Vec::new(),
            notification_urls: NotificationUrls::default(),
            grace_period: DEFAULT_GRACE_PERIOD,
            storefront: "USA".into(),
            storefront_id: "143441".into(),
            data_dir: None,
        };
        let tokens =
            TokenVerifier::new(&[], &config.bundle_id).map_err(AppleError::InvalidConfig)?;
        let identity = SigningIdentity::load_or_create(None)?;
        Ok(Self::from_parts(
            config,
            Arc::new(|| DateTime::UNIX_EPOCH),
            identity,
            tokens,
        ))
    }

    /// The simulator's HTTP surface, to mount at the path [`AppleConfig::public_base_url`]
    /// names: the production App Store Server API and `verifyReceipt` at `/`, the sandbox's
    /// at `/sandbox`, the root certificate at `/root.cer` (DER) and `/root.pem`, this API's
    /// OpenAPI document at `/openapi.json` and Swagger UI at `/docs`. The control surface is
    /// separate ([`AppleSimulator::control_api`]).
    pub fn endpoint(&self) -> Route {
        let production = api::service(self.clone(), Environment::Production);
        let sandbox = api::service(self.clone(), Environment::Sandbox);
        let spec = production.spec_endpoint();
        let docs = production.swagger_ui();
        let root_der = self.root_certificate_der().to_vec();
        let root_pem = self.root_certificate_pem();
        Route::new()
            .at("/openapi.json", spec)
            .nest("/docs", docs)
            .at(
                "/root.cer",
                get(make_sync(move |_| {
                    Response::builder()
                        .content_type("application/pkix-cert")
                        .body(root_der.clone())
                })),
            )
            .at(
                "/root.pem",
                get(make_sync(move |_| {
                    Response::builder()
                        .content_type("application/x-pem-file")
                        .body(root_pem.clone())
                })),
            )
            .nest("/sandbox", sandbox.into_endpoint())
            .nest("/", production.into_endpoint())
    }

    /// The control surface (`/control/apple/...`), for the host to mount in its control
    /// OpenAPI service (at `/sim`).
    pub fn control_api(&self) -> AppleControlApi {
        AppleControlApi::new(self.clone())
    }

    /// The root CA certificate (DER) that everything the simulator signs chains to: what a
    /// verifier trusts in place of Apple's root.
    pub fn root_certificate_der(&self) -> &[u8] {
        self.inner.identity.root_der()
    }

    /// The root CA certificate, PEM.
    pub fn root_certificate_pem(&self) -> String {
        self.inner.identity.root_pem()
    }

    pub fn config(&self) -> &AppleConfig {
        &self.inner.config
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.now)()
    }

    /// The store. A panic while it was held cannot leave it half-updated in a way that
    /// matters to a simulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.inner
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn renderer(&self, now: DateTime<Utc>) -> Renderer<'_> {
        Renderer {
            config: &self.inner.config,
            identity: &self.inner.identity,
            now,
        }
    }

    pub(crate) fn identity(&self) -> &SigningIdentity {
        &self.inner.identity
    }

    /// Whether the App Store Server API accepts a bearer token now; why not when it does not.
    pub(crate) fn check_token(&self, token: &str) -> Result<(), String> {
        self.inner.tokens.check(token, self.now())
    }

    /// Signs and records the notification of an event, with the records as they are now;
    /// owed to the environment's URL if it has one.
    pub(crate) fn record_event(
        &self,
        notifications: &mut Notifications,
        urls: &NotificationUrls,
        store: &Store,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Option<NotificationRecord> {
        let subscription = store.subscription(&event.original_transaction_id)?;
        let transaction = store.transaction(subscription.environment, &event.transaction_id)?;
        let signed = self.renderer(now).notification(
            store,
            event.notification_type,
            event.subtype,
            subscription,
            transaction,
        );
        let record = notifications.record(
            NewNotification {
                notification_uuid: signed.notification_uuid,
                environment: subscription.environment,
                notification_type: event.notification_type.as_str().to_owned(),
                subtype: event.subtype.map(|subtype| subtype.as_str().to_owned()),
                original_transaction_id: Some(subscription.original_transaction_id.clone()),
                transaction_id: Some(transaction.id.clone()),
                signed_payload: signed.signed_payload,
            },
            urls.get(subscription.environment).is_some(),
            now,
        );
        Some(record.clone())
    }

    /// Does what fell due on the host's clock: renewals, failed renewals, ends of grace
    /// periods and of billing retry, expiries with auto-renew off. Each is recorded as a
    /// notification (due now); the notifications made. Call it after moving the clock, then
    /// [`AppleSimulator::deliver_due`] — or call [`AppleSimulator::settle`].
    pub fn settle_due(&self) -> Vec<NotificationRecord> {
        let now = self.now();
        let mut shared = self.lock();
        let Shared {
            store,
            notifications,
            notification_urls,
            ..
        } = &mut *shared;
        let mut made = Vec::new();
        store.settle_due(now, |store, event| {
            made.extend(self.record_event(notifications, notification_urls, store, event, now));
        });
        made
    }

    /// [`AppleSimulator::settle_due`], then sends every notification due
    /// ([`AppleSimulator::deliver_due`]) and waits for the answers.
    pub async fn settle(&self) -> AppleSettleReport {
        let notifications = self.settle_due();
        let deliveries = self.deliver_due().await;
        // The background loop may have claimed some of what fell due before this round did.
        self.deliveries_under_way_finished().await;
        AppleSettleReport {
            notifications,
            deliveries,
        }
    }
}

/// The OpenAPI document of the simulator's App Store API (the content of
/// `openapi/sim-apple.json`), with `public_base_url` as its production server and
/// `{public_base_url}/sandbox` as its sandbox. Deterministic: the same input gives the same
/// bytes.
pub fn openapi_json(public_base_url: &str) -> Result<String, AppleError> {
    let simulator = AppleSimulator::for_documentation(public_base_url)?;
    Ok(api::service(simulator, Environment::Production).spec())
}
