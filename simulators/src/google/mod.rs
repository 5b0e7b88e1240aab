//! The Google Play simulator: a stateful, offline fake of the Google Play Developer API
//! (`androidpublisher` v3) for subscriptions and one-time products, of the OAuth token
//! endpoint a service account signs in at, and of the Pub/Sub push subscription that
//! carries Real-time developer notifications (RTDN).
//!
//! It is faithful enough that Google's own `google-api-python-client` works against it
//! unchanged but for `client_options={"api_endpoint": public_base_url}`, with
//! `google.oauth2.service_account.Credentials` built from the key file the control surface
//! hands out (its `token_uri` points here):
//! - auth: `POST /token` takes the service account's JWT bearer grant (RS256, signed with
//!   the key file's key, `aud` Google's token endpoint — google-auth sends
//!   `https://oauth2.googleapis.com/token` whatever the `token_uri` — `iat`/`exp` at most an
//!   hour apart and current on the host's clock) and answers a `ya29.` access token valid
//!   3599 seconds on the host's clock. API calls need `Authorization: Bearer` with such a
//!   token (401 with `WWW-Authenticate` otherwise, 403 without the `androidpublisher`
//!   scope);
//! - API: `purchases.subscriptionsv2` `get`, `cancel` and `revoke`, the v1
//!   `purchases.subscriptions` `get`, `acknowledge`, `cancel`, `refund` and `revoke` (the
//!   Python client's discovery document has only `acknowledge` and `cancel` of these any
//!   more), and `purchases.products` `get`, `acknowledge` and `consume`, at Google's paths
//!   (`/androidpublisher/v3/applications/{packageName}/purchases/…/tokens/{token}:verb`);
//! - errors: Google's JSON error (`error.code`, `message`, `errors[]` with `domain` and
//!   `reason`, `status`): 400 `Invalid Value` for a token that is malformed, unknown or of
//!   another product, 404 `applicationNotFound` for a package name not configured, 410
//!   `subscriptionPurchaseNoLongerAvailable` sixty days after a subscription expired, 400
//!   `invalidPurchaseState` for an operation its state does not allow. Never a 5xx for
//!   anything a client sends.
//!
//! Purchases are made on the control surface (the user in the Play Store), which answers
//! what the app's billing library would hand over (the purchase token and order id).
//! Subscriptions renew on the host's clock ([`purchases`]): the simulator settles what fell
//! due whenever it is called, and [`GoogleSimulator::settle_due`] does so at once and
//! pushes the notifications, for the host to call after moving its clock.
//!
//! Notifications go to the configured push endpoint as Pub/Sub pushes them
//! ([`GooglePushConfig`]): a JSON envelope whose `message.data` is the base64 of the
//! `DeveloperNotification`, with an OIDC token (`Authorization: Bearer`, RS256, `iss`
//! `https://accounts.google.com`, the configured audience and push service account) that
//! verifies against the keys at `/oauth2/v3/certs` (JWKS) and `/oauth2/v1/certs` (X.509 by
//! key id). A push not acknowledged (102, 200, 201, 202, 204) is retried with exponential
//! backoff from 10 seconds to 10 minutes on the host's clock for up to seven days. Pushes go
//! out when [`GoogleSimulator::deliver_due`] runs — every [`PUSH_POLL_INTERVAL`] under
//! [`GoogleSimulator::spawn_delivery_loop`], or on demand — and what the control surface
//! causes is pushed (first attempt) before it answers.
//!
//! Time is only the host's [`Now`]. Assertions signed by a client on the machine's clock
//! (google-auth) are therefore refused once the host's clock has been moved more than the
//! assertion's lifetime away from it.

mod api;
mod control;
mod delivery;
mod error;
mod keys;
mod notifications;
mod oauth;
mod purchases;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, Utc};
use poem::Route;
use poem_openapi::Object;
use serde::Serialize;

pub use self::control::SimGoogleControlApi;
pub use self::delivery::{GooglePushReport, PUSH_POLL_INTERVAL};
pub use self::error::GoogleError;
use self::keys::RsaKey;
use self::notifications::{Notice, Outbox, PushIdentity, PushTarget};
pub use self::notifications::{PushAttempt, PushState, RETENTION, retry_delay};
pub use self::oauth::ANDROIDPUBLISHER_SCOPE;
use self::oauth::AccessTokens;
use self::purchases::Purchases;
use crate::clock::Now;

/// How the simulated Play developer account is set up.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// Where the simulator's endpoint is reachable, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080/sim/google`: the API is at
    /// `{public_base_url}/androidpublisher/v3/...`, the token endpoint at
    /// `{public_base_url}/token`, Google's keys at `{public_base_url}/oauth2/v3/certs`.
    pub public_base_url: String,
    /// The Google Cloud project of the service account and the Pub/Sub subscription, e.g.
    /// `boxoffice-sim`.
    pub project_id: String,
    /// The service account the API is called as (`client_email` of its key file), e.g.
    /// `play-api@boxoffice-sim.iam.gserviceaccount.com`.
    pub service_account_email: String,
    /// The apps of the developer account and what they sell.
    pub applications: Vec<GoogleApplication>,
    /// Where notifications are pushed; `None` until set ([`GoogleSimulator::set_push`] or
    /// the control surface): until then, notifications are published to no one.
    pub push: Option<GooglePushConfig>,
    /// Refund and revoke purchases not acknowledged (or, for products, consumed) within
    /// three days, as Google does.
    pub enforce_acknowledgement: bool,
}

/// An app: its package name and its products.
#[derive(Debug, Clone)]
pub struct GoogleApplication {
    /// e.g. `com.boxoffice.app`.
    pub package_name: String,
    pub subscriptions: Vec<GoogleSubscription>,
    /// The product ids of one-time (in-app) products.
    pub one_time_products: Vec<String>,
}

/// A subscription product (`subscriptionId` / `productId`) and its base plans.
#[derive(Debug, Clone)]
pub struct GoogleSubscription {
    pub product_id: String,
    /// At least one; a purchase that names none gets the first.
    pub base_plans: Vec<GoogleBasePlan>,
}

/// How a base plan bills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleBasePlan {
    pub base_plan_id: String,
    pub billing_period: GoogleBillingPeriod,
    /// The recurring price in millionths of the currency unit (Google's micros).
    pub price_micros: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency_code: String,
    /// Days of access after a failed renewal while Google retries (0: none).
    pub grace_period_days: u32,
    /// Days of account hold (no access) after the grace period (0: none).
    pub account_hold_days: u32,
}

/// A base plan's billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleBillingPeriod {
    Days(u32),
    Months(u32),
}

/// The Pub/Sub push subscription on the RTDN topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GooglePushConfig {
    /// The push endpoint (http or https), e.g. `http://127.0.0.1:8080/webhooks/google`.
    pub endpoint: String,
    /// The subscription's id; its full name is `projects/{project_id}/subscriptions/{id}`.
    pub subscription_id: String,
    /// Authenticated push: the service account the OIDC token names (`email`). `None`
    /// pushes without an `Authorization` header.
    pub oidc_service_account_email: Option<String>,
    /// The OIDC token's `aud`; default the endpoint URL, as in Pub/Sub.
    pub audience: Option<String>,
}

/// A service account's JSON key file, as the Cloud console downloads it, with `token_uri`
/// pointing at the simulator.
#[derive(Object, Serialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleServiceAccountKey")]
pub struct GoogleServiceAccountKey {
    /// `service_account`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub key_type: String,
    pub project_id: String,
    pub private_key_id: String,
    /// PKCS#8, PEM.
    pub private_key: String,
    pub client_email: String,
    pub client_id: String,
    pub auth_uri: String,
    pub token_uri: String,
    pub auth_provider_x509_cert_url: String,
    pub client_x509_cert_url: String,
    pub universe_domain: String,
}

/// The simulated developer account. Cheap to clone: clones share one account.
#[derive(Clone)]
pub struct GoogleSimulator {
    inner: Arc<Inner>,
}

/// The keys: `None` only in the instance that describes the API for its document.
pub(crate) struct Keys {
    pub service_account: RsaKey,
    pub google: RsaKey,
    /// Google's key as a self-signed certificate (PEM).
    pub google_certificate: String,
}

struct Inner {
    config: GoogleConfig,
    now: Now,
    keys: Option<Keys>,
    state: Mutex<State>,
    /// What pushes are sent with, built on first use.
    http: OnceLock<Result<reqwest::Client, String>>,
    /// Woken whenever push attempts have been recorded.
    push_finished: tokio::sync::Notify,
}

/// Everything that changes, under one lock.
pub(crate) struct State {
    pub purchases: Purchases,
    pub outbox: Outbox,
    pub access_tokens: AccessTokens,
}

impl GoogleSimulator {
    /// Builds the account after checking the configuration, and generates the service
    /// account's key and Google's token-signing key.
    pub fn new(mut config: GoogleConfig, now: Now) -> Result<Self, GoogleError> {
        validate_config(&mut config)?;
        let started = now();
        let google = RsaKey::generate()?;
        let keys = Keys {
            service_account: RsaKey::generate()?,
            google_certificate: google.certificate_pem(started)?,
            google,
        };
        let push = match &config.push {
            Some(push) => Some(push_target(&config.project_id, push)?),
            None => None,
        };
        let simulator = Self::from_parts(config, now, Some(keys));
        simulator.lock().outbox.set_target(push);
        Ok(simulator)
    }

    fn from_parts(config: GoogleConfig, now: Now, keys: Option<Keys>) -> Self {
        let purchases = Purchases::new(&config.applications, config.enforce_acknowledgement);
        Self {
            inner: Arc::new(Inner {
                config,
                now,
                keys,
                state: Mutex::new(State {
                    purchases,
                    outbox: Outbox::default(),
                    access_tokens: AccessTokens::default(),
                }),
                http: OnceLock::new(),
                push_finished: tokio::sync::Notify::new(),
            }),
        }
    }

    /// An account that only describes itself: no keys, no apps. For the OpenAPI document.
    fn for_documentation(public_base_url: &str) -> Self {
        Self::from_parts(
            GoogleConfig {
                public_base_url: public_base_url.trim_end_matches('/').to_owned(),
                project_id: "boxoffice-sim".into(),
                service_account_email: "play-api@boxoffice-sim.iam.gserviceaccount.com".into(),
                applications: Vec::new(),
                push: None,
                enforce_acknowledgement: true,
            },
            Arc::new(|| DateTime::UNIX_EPOCH),
            None,
        )
    }

    /// The simulator's HTTP surface, to mount at the path [`GoogleConfig::public_base_url`]
    /// names: the Play Developer API at `/androidpublisher/v3/...`, the token endpoint at
    /// `POST /token`, Google's keys at `/oauth2/v3/certs` and `/oauth2/v1/certs`, this
    /// API's OpenAPI document at `/openapi.json` and Swagger UI at `/docs`. Other paths get
    /// Google's 404. The control surface is separate ([`GoogleSimulator::control_api`]).
    pub fn endpoint(&self) -> Route {
        api::routes(self.clone())
    }

    /// The control surface (`/control/google/...`), for the host to mount in its control
    /// OpenAPI service (at `/sim`).
    pub fn control_api(&self) -> SimGoogleControlApi {
        SimGoogleControlApi::new(self.clone())
    }

    /// The service account's JSON key file: what the server's Google client (or
    /// `google.oauth2.service_account.Credentials.from_service_account_info`) signs in
    /// with. `None` only for a simulator without keys, which [`GoogleSimulator::new`]
    /// never builds.
    pub fn service_account_key(&self) -> Option<GoogleServiceAccountKey> {
        let keys = self.keys()?;
        let config = self.config();
        let client_id = oauth::numeric_id(&config.service_account_email);
        Some(GoogleServiceAccountKey {
            key_type: "service_account".into(),
            project_id: config.project_id.clone(),
            private_key_id: keys.service_account.kid.clone(),
            private_key: keys.service_account.private_key_pem(),
            client_email: config.service_account_email.clone(),
            client_id,
            auth_uri: "https://accounts.google.com/o/oauth2/auth".into(),
            token_uri: self.token_uri(),
            auth_provider_x509_cert_url: format!("{}/oauth2/v1/certs", config.public_base_url),
            client_x509_cert_url: format!(
                "{}/robot/v1/metadata/x509/{}",
                config.public_base_url,
                config.service_account_email.replace('@', "%40")
            ),
            universe_domain: "googleapis.com".into(),
        })
    }

    /// The token endpoint: `{public_base_url}/token`.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.config().public_base_url)
    }

    /// Google's token-signing keys as a JWKS (`{public_base_url}/oauth2/v3/certs`): what a
    /// push receiver verifies the OIDC token with.
    pub fn jwks_url(&self) -> String {
        format!("{}/oauth2/v3/certs", self.config().public_base_url)
    }

    /// Creates, changes or (with `None`) removes the push subscription, as the control
    /// surface does. Removing it drops the notifications it still owed.
    pub fn set_push(&self, push: Option<GooglePushConfig>) -> Result<(), GoogleError> {
        let target = match &push {
            Some(push) => Some(push_target(&self.config().project_id, push)?),
            None => None,
        };
        self.lock().outbox.set_target(target);
        Ok(())
    }

    /// Runs every renewal, grace period, account hold, expiry and resumption that fell due
    /// by the host's `Now`, then pushes (first attempt) every notification that caused and
    /// anything else due: for the host to call after moving its clock, so that the push
    /// endpoint has been told before the move answers.
    pub async fn settle_due(&self) -> GooglePushReport {
        // Every call brings the state up to `Now` first; a delivery round is such a call.
        let report = self.deliver_due().await;
        // The delivery loop may have claimed some of what fell due before this round did.
        self.pushes_under_way_finished().await;
        report
    }

    pub(crate) fn config(&self) -> &GoogleConfig {
        &self.inner.config
    }

    pub(crate) fn keys(&self) -> Option<&Keys> {
        self.inner.keys.as_ref()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.now)()
    }

    /// The state. A panic while it was held cannot leave it half-updated in a way that
    /// matters to a simulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `operation` on the state brought up to the host's `Now` (what fell due settled
    /// first), then publishes what both caused: the operation's answer and the ids of the
    /// messages published.
    pub(crate) fn with_state<T>(
        &self,
        operation: impl FnOnce(&mut State, DateTime<Utc>) -> T,
    ) -> (T, Vec<String>) {
        let now = self.now();
        let mut state = self.lock();
        state.purchases.settle(now);
        let result = operation(&mut state, now);
        let notices = state.purchases.take_notices();
        let published = publish(&mut state, &notices, now);
        (result, published)
    }
}

/// Publishes notices in order: their message ids.
fn publish(state: &mut State, notices: &[Notice], now: DateTime<Utc>) -> Vec<String> {
    notices
        .iter()
        .map(|notice| state.outbox.publish(notice, now))
        .collect()
}

/// The OpenAPI document of the simulator's Google API (the content of
/// `openapi/sim-google.json`), with `public_base_url` as its server. Deterministic: the
/// same input gives the same bytes.
pub fn openapi_json(public_base_url: &str) -> String {
    api::document(&GoogleSimulator::for_documentation(public_base_url))
}

fn push_target(project_id: &str, push: &GooglePushConfig) -> Result<PushTarget, GoogleError> {
    if !is_http_url(&push.endpoint) {
        return Err(GoogleError::InvalidConfig(
            "the push endpoint must be an http(s) URL".into(),
        ));
    }
    if !is_resource_id(&push.subscription_id) {
        return Err(GoogleError::InvalidConfig(
            "the subscription id must be 3 to 255 letters, digits, '-', '_' or '.', starting with a letter".into(),
        ));
    }
    let oidc = match &push.oidc_service_account_email {
        Some(email) if email.contains('@') => Some(PushIdentity {
            service_account_email: email.clone(),
            audience: push
                .audience
                .clone()
                .unwrap_or_else(|| push.endpoint.clone()),
        }),
        Some(_) => {
            return Err(GoogleError::InvalidConfig(
                "the push service account must be an email address".into(),
            ));
        }
        None => None,
    };
    Ok(PushTarget {
        endpoint: push.endpoint.clone(),
        subscription: format!(
            "projects/{project_id}/subscriptions/{}",
            push.subscription_id
        ),
        oidc,
    })
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// Pub/Sub's resource id rule: a letter, then letters, digits, `-_.~+%`, 3 to 255 in all.
fn is_resource_id(id: &str) -> bool {
    (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
}

/// Android's package name rule: dot-separated segments of letters, digits and `_`, each
/// starting with a letter, at least two.
fn is_package_name(name: &str) -> bool {
    let segments: Vec<&str> = name.split('.').collect();
    segments.len() >= 2
        && segments.iter().all(|segment| {
            segment.starts_with(|c: char| c.is_ascii_alphabetic())
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Play's product id rule: lower-case letters, digits, `_` and `.`, starting with a letter
/// or digit.
fn is_product_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 139
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

/// Play's base plan id rule: lower-case letters, digits and `-`, starting with a letter or
/// digit, at most 63.
fn is_base_plan_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn validate_config(config: &mut GoogleConfig) -> Result<(), GoogleError> {
    let invalid = |message: String| Err(GoogleError::InvalidConfig(message));
    config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
    if !is_http_url(&config.public_base_url) {
        return invalid("public_base_url must be an http(s) URL".into());
    }
    if !is_resource_id(&config.project_id) {
        return invalid("project_id must be a Google Cloud project id, e.g. boxoffice-sim".into());
    }
    if !config.service_account_email.contains('@') {
        return invalid("service_account_email must be an email address".into());
    }
    let mut packages = std::collections::HashSet::new();
    for application in &config.applications {
        let package = &application.package_name;
        if !is_package_name(package) {
            return invalid(format!("{package:?} is not an Android package name"));
        }
        if !packages.insert(package) {
            return invalid(format!("{package} is configured twice"));
        }
        let mut products = std::collections::HashSet::new();
        let subscription_ids = application.subscriptions.iter().map(|s| &s.product_id);
        for product_id in subscription_ids.chain(&application.one_time_products) {
            if !is_product_id(product_id) {
                return invalid(format!("{package}: {product_id:?} is not a product id"));
            }
            if !products.insert(product_id) {
                return invalid(format!(
                    "{package}: product {product_id} is configured twice"
                ));
            }
        }
        for subscription in &application.subscriptions {
            if subscription.base_plans.is_empty() {
                return invalid(format!(
                    "{package}: {} has no base plan",
                    subscription.product_id
                ));
            }
            for plan in &subscription.base_plans {
                let name = format!(
                    "{package}: {}/{}",
                    subscription.product_id, plan.base_plan_id
                );
                if !is_base_plan_id(&plan.base_plan_id) {
                    return invalid(format!("{name}: not a base plan id"));
                }
                if matches!(
                    plan.billing_period,
                    GoogleBillingPeriod::Days(0) | GoogleBillingPeriod::Months(0)
                ) {
                    return invalid(format!("{name}: the billing period is empty"));
                }
                if plan.price_micros < 0 {
                    return invalid(format!("{name}: the price is negative"));
                }
                if plan.currency_code.len() != 3
                    || !plan.currency_code.chars().all(|c| c.is_ascii_uppercase())
                {
                    return invalid(format!("{name}: the currency must be ISO 4217, e.g. EUR"));
                }
                if plan.grace_period_days > 30 || plan.account_hold_days > 60 {
                    return invalid(format!(
                        "{name}: Play allows at most 30 days of grace and 60 of account hold"
                    ));
                }
            }
        }
    }
    if let Some(push) = &config.push {
        push_target(&config.project_id, push)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_googles_rules() {
        assert!(is_package_name("com.boxoffice.app"));
        assert!(!is_package_name("boxoffice"));
        assert!(!is_package_name("com.1box"));
        assert!(is_product_id("premium_monthly"));
        assert!(!is_product_id("Premium"));
        assert!(is_base_plan_id("p1m-eur"));
        assert!(!is_base_plan_id("p1m_eur"));
        assert!(is_resource_id("play-rtdn"));
        assert!(!is_resource_id("1rtdn"));
    }
}
