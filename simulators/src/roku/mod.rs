//! The Roku Pay simulator: a stateful, offline fake of the Roku Pay web services
//! (`https://apipub.roku.com/listen/transaction-service.svc`) and of the push notifications
//! Roku Pay sends a publisher's backend.
//!
//! What follows Roku's published reference (the Roku Pay web services and push
//! notifications references, the Enhanced Subscription Recovery guide, and Roku's
//! notification receiver sample):
//! - paths: `GET /listen/transaction-service.svc/validate-transaction/{partnerAPIKey}/{transactionId}`,
//!   `GET …/validate-refund/{partnerAPIKey}/{refundId}`, `POST …/cancel-subscription`,
//!   `POST …/refund-subscription`, `POST …/update-bill-cycle`, the key in the path of a
//!   GET and in the JSON body (`partnerAPIKey`) of a POST;
//! - answers: Roku's JSON, field for field (`OriginalTransactionId`, `isEntitled`,
//!   `cancelled`, `purchaseStatus`, `RefundId`, …), `status` 0 for success and 1 for
//!   failure, WCF's dates (`/Date(1581033062000+0000)/`), lower-case currencies, decimal
//!   amounts;
//! - subscription states as `validate-transaction` reports them: current (`isEntitled`,
//!   future `expirationDate`), in the grace period (`isEntitled`, past `expirationDate`),
//!   on hold (not entitled, not cancelled), cancelled (`cancelled`, entitled until the
//!   expiration date, then not);
//! - push notifications: the types (`Sale`, `GraceInitiated`, `GraceRecovered`,
//!   `OnHoldInitiated`, `OnHoldRecovered`, `Cancellation`, `Refund`, `Resubscribe`), their
//!   fields and comments; secured pushes as a JWS (RS256, `kid` in the JOSE header, `iss`
//!   `Roku, Inc. urn:roku:apps:partner-service.roku.com`, `exp` 24 hours after and `nbf` an
//!   hour before it is made, `x-Roku-message` the message in base64, `x-Roku-message-key`,
//!   `x-Roku-message-type` `roku.rpay.push`) in a `text/plain` body, acknowledged by 200;
//!   unsecured ones as the message's JSON, acknowledged by 200 with the message's
//!   `responseKey` as the body. Roku's public keys are a JWKS at
//!   `https://assets.cs.roku.com/keys/partner-jwks.json`; the simulator publishes its own
//!   at `{public_base_url}/keys/partner-jwks.json`.
//!
//! Where Roku's reference is silent, the simulator chooses, and says so where it does:
//! failures other than a wrong key (see [`error`] for the status codes and messages); that
//! `validate-transaction` answers any payment of a subscription with the subscription as it
//! is now and its latest payment; the push retry schedule ([`notifications`]);
//! `x-Roku-message` in standard base64 (Roku's reference says base64url while its encoding
//! name, `base64-utf8`, and its Java receiver sample's decoder are standard base64). It
//! answers JSON whatever the `Accept` header asks (Roku also speaks XML), and has no
//! `issue-service-credit`, coupons, upgrades or downgrades. Roku has one web service for
//! every purchase, test users' included (they are simply not charged), so there are no
//! environments to choose.
//!
//! Purchases are made on the control surface (the customer on the device), which answers
//! what the channel's ChannelStore `doOrder` gives the app (the `purchaseId`: the
//! transaction id). Subscriptions renew on the host's clock ([`state`]): the simulator
//! settles what fell due whenever it is called, and [`RokuSimulator::settle_due`] does so
//! at once and pushes the notifications, for the host to call after moving its clock.
//! Pushes go out when [`RokuSimulator::deliver_due`] runs — every [`PUSH_POLL_INTERVAL`]
//! under [`RokuSimulator::spawn_delivery_loop`], or on demand — and what the control
//! surface causes is pushed (first attempt) before it answers.
//!
//! Time is only the host's [`Now`].

mod api;
mod control;
mod delivery;
pub mod error;
mod keys;
pub mod notifications;
pub mod state;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, Utc};
use poem::Route;

pub use self::control::SimRokuControlApi;
pub use self::delivery::{
    PUSH_ISSUER, PUSH_MESSAGE_ENCODING, PUSH_MESSAGE_TYPE, PUSH_POLL_INTERVAL, PUSH_TOKEN_LIFETIME,
    PUSH_TOKEN_NOT_BEFORE, RokuPushReport,
};
pub use self::error::RokuError;
use self::keys::RsaKey;
pub use self::keys::{Jwk as RokuJwk, JwkSet as RokuJwkSet};
use self::notifications::{Outbox, PushTarget};
pub use self::notifications::{PushAttempt, PushState, RETENTION, retry_delay};
use self::state::{Notice, Store};
use crate::clock::Now;

/// Where Roku Pay's web services live, relative to the API's base URL.
pub const SERVICE_PATH: &str = "/listen/transaction-service.svc";

/// Where the simulator publishes its push signing keys, relative to its base URL (Roku's
/// are at `https://assets.cs.roku.com/keys/partner-jwks.json`).
pub const JWKS_PATH: &str = "/keys/partner-jwks.json";

/// Roku's grace period after a failed renewal, in days.
pub const ROKU_GRACE_PERIOD_DAYS: u32 = 3;

/// How long Enhanced Subscription Recovery keeps a subscription on hold after the grace
/// period, in days (60 days of recovery in all).
pub const ROKU_ON_HOLD_DAYS: u32 = 57;

/// How the simulated Roku developer account is set up.
#[derive(Debug, Clone)]
pub struct RokuConfig {
    /// Where the simulator's endpoint is reachable, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080/sim/roku`: the web services are at
    /// `{public_base_url}/listen/transaction-service.svc/...` (what a Roku client takes as
    /// `https://apipub.roku.com`), the signing keys at
    /// `{public_base_url}/keys/partner-jwks.json`.
    pub public_base_url: String,
    /// The developer's Roku Pay API keys: the active one and, while it is being rotated
    /// out, the old one (Roku allows two). Every request must carry one.
    pub partner_api_keys: Vec<String>,
    /// The developer's channels and what they sell.
    pub channels: Vec<RokuChannel>,
    /// The push notification endpoint; `None` until set ([`RokuSimulator::set_push`] or
    /// the control surface): until then, notifications go to no one.
    pub push: Option<RokuPushConfig>,
}

/// A channel (app) and its in-channel products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RokuChannel {
    /// Roku's numeric channel id, e.g. `251682`.
    pub channel_id: u64,
    pub name: String,
    pub products: Vec<RokuProduct>,
}

/// A subscription product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RokuProduct {
    /// The product code (`productId` in `validate-transaction`, `productCode` in pushes),
    /// e.g. `premium_monthly`; unique across the developer's channels.
    pub code: String,
    pub name: String,
    pub billing_period: RokuBillingPeriod,
    /// The price before tax, in minor units of `currency`.
    pub price_minor: i64,
    /// ISO 4217, e.g. `USD` (lower case on the wire).
    pub currency: String,
    /// Days of free trial a customer gets with a first purchase (0: none).
    pub free_trial_days: u32,
    /// Days of access after a failed renewal while Roku retries ([`ROKU_GRACE_PERIOD_DAYS`]).
    pub grace_period_days: u32,
    /// Days on hold (no access) after the grace period ([`ROKU_ON_HOLD_DAYS`] with
    /// Enhanced Subscription Recovery, 0 with Basic Recovery: cancelled when the grace
    /// period ends).
    pub on_hold_days: u32,
}

/// A subscription's billing period (Roku sells monthly and yearly subscriptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RokuBillingPeriod {
    Monthly,
    Yearly,
}

/// The push notification endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RokuPushConfig {
    /// http(s), e.g. `http://127.0.0.1:8080/webhooks/roku`.
    pub url: String,
    /// JWT signature authentication (secured pushes); off: Roku's unsecured JSON pushes.
    pub signed: bool,
}

/// The simulated developer account. Cheap to clone: clones share one account.
#[derive(Clone)]
pub struct RokuSimulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: RokuConfig,
    now: Now,
    /// `None` only in the instance that describes the API for its document.
    key: Option<RsaKey>,
    state: Mutex<State>,
    /// What pushes are sent with, built on first use.
    http: OnceLock<Result<reqwest::Client, String>>,
    /// Woken whenever push attempts have been recorded.
    push_finished: tokio::sync::Notify,
}

/// Everything that changes, under one lock.
pub(crate) struct State {
    pub store: Store,
    pub outbox: Outbox,
}

impl RokuSimulator {
    /// Builds the account after checking the configuration, and generates the key pushes
    /// are signed with.
    pub fn new(mut config: RokuConfig, now: Now) -> Result<Self, RokuError> {
        validate_config(&mut config)?;
        let key = RsaKey::generate()?;
        let target = config.push.as_ref().map(push_target).transpose()?;
        let simulator = Self::from_parts(config, now, Some(key));
        simulator.lock().outbox.set_target(target);
        Ok(simulator)
    }

    fn from_parts(config: RokuConfig, now: Now, key: Option<RsaKey>) -> Self {
        let store = Store::new(&config.channels);
        Self {
            inner: Arc::new(Inner {
                config,
                now,
                key,
                state: Mutex::new(State {
                    store,
                    outbox: Outbox::default(),
                }),
                http: OnceLock::new(),
                push_finished: tokio::sync::Notify::new(),
            }),
        }
    }

    /// An account that only describes itself: no key, no channels. For the OpenAPI
    /// document.
    fn for_documentation(public_base_url: &str) -> Self {
        Self::from_parts(
            RokuConfig {
                public_base_url: public_base_url.trim_end_matches('/').to_owned(),
                partner_api_keys: Vec::new(),
                channels: Vec::new(),
                push: None,
            },
            Arc::new(|| DateTime::UNIX_EPOCH),
            None,
        )
    }

    /// The simulator's HTTP surface, to mount at the path [`RokuConfig::public_base_url`]
    /// names: the web services at `/listen/transaction-service.svc/...`, the push signing
    /// keys at `/keys/partner-jwks.json`, this API's OpenAPI document at `/openapi.json` and
    /// Swagger UI at `/docs`. Other paths get WCF's 404 in Roku's shape. The control
    /// surface is separate ([`RokuSimulator::control_api`]).
    pub fn endpoint(&self) -> Route {
        api::routes(self.clone())
    }

    /// The control surface (`/control/roku/...`), for the host to mount in its control
    /// OpenAPI service (at `/sim`).
    pub fn control_api(&self) -> SimRokuControlApi {
        SimRokuControlApi::new(self.clone())
    }

    /// The base URL a Roku client takes in place of `https://apipub.roku.com`.
    pub fn api_base(&self) -> &str {
        &self.config().public_base_url
    }

    /// Where the push signing keys are published (what a receiver takes in place of
    /// `https://assets.cs.roku.com/keys/partner-jwks.json`).
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.config().public_base_url)
    }

    /// The push signing keys (one), as published at [`RokuSimulator::jwks_url`].
    pub fn jwks(&self) -> RokuJwkSet {
        RokuJwkSet {
            keys: self.key().map(RsaKey::jwk).into_iter().collect(),
        }
    }

    /// The developer's active Roku Pay API key (the first configured).
    pub fn partner_api_key(&self) -> &str {
        self.config()
            .partner_api_keys
            .first()
            .map_or("", String::as_str)
    }

    /// Sets, changes or (with `None`) removes the push notification endpoint. Removing it
    /// drops the notifications it was still owed.
    pub fn set_push(&self, push: Option<RokuPushConfig>) -> Result<(), RokuError> {
        let target = push.as_ref().map(push_target).transpose()?;
        self.lock().outbox.set_target(target);
        Ok(())
    }

    /// The push notification endpoint, if any.
    pub fn push(&self) -> Option<RokuPushConfig> {
        self.lock().outbox.target().map(|target| RokuPushConfig {
            url: target.url.clone(),
            signed: target.signed,
        })
    }

    /// Runs every renewal, failed renewal, end of grace period or hold and expiry that fell
    /// due by the host's `Now`, then pushes (first attempt) every notification that caused
    /// and anything else due: for the host to call after moving its clock, so that the
    /// endpoint has been told before the move answers.
    pub async fn settle_due(&self) -> RokuPushReport {
        let report = self.deliver_due().await;
        // The delivery loop may have claimed some of what fell due before this round did.
        self.pushes_under_way_finished().await;
        report
    }

    pub(crate) fn config(&self) -> &RokuConfig {
        &self.inner.config
    }

    pub(crate) fn key(&self) -> Option<&RsaKey> {
        self.inner.key.as_ref()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.now)()
    }

    /// Whether `key` is one of the developer's Roku Pay API keys.
    pub(crate) fn authorizes(&self, key: &str) -> bool {
        self.config()
            .partner_api_keys
            .iter()
            .any(|known| known == key)
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
    /// first), then publishes what both caused: the operation's answer and the keys of the
    /// messages published.
    pub(crate) fn with_state<T>(
        &self,
        operation: impl FnOnce(&mut State, DateTime<Utc>) -> T,
    ) -> (T, Vec<String>) {
        let now = self.now();
        let mut state = self.lock();
        state.store.settle(now);
        let result = operation(&mut state, now);
        let notices = state.store.take_notices();
        let published = publish(&mut state, &notices, now);
        (result, published)
    }
}

/// Publishes notices in order: their message keys.
fn publish(state: &mut State, notices: &[Notice], now: DateTime<Utc>) -> Vec<String> {
    notices
        .iter()
        .map(|notice| state.outbox.publish(notice, now))
        .collect()
}

/// The OpenAPI document of the simulator's Roku Pay web services (the content of
/// `openapi/sim-roku.json`), with `public_base_url` as its server. Deterministic: the same
/// input gives the same bytes.
pub fn openapi_json(public_base_url: &str) -> String {
    api::document(&RokuSimulator::for_documentation(public_base_url))
}

fn push_target(push: &RokuPushConfig) -> Result<PushTarget, RokuError> {
    if !is_http_url(&push.url) {
        return Err(RokuError::InvalidConfig(
            "the push notification URL must be an http(s) URL".into(),
        ));
    }
    Ok(PushTarget {
        url: push.url.clone(),
        signed: push.signed,
    })
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// A Roku Pay API key: printable ASCII without `/` (it is a path segment), at most 64
/// characters. Roku's are 36 upper-case hex digits.
fn is_api_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_graphic() && !"/?#%".contains(c))
}

/// A product code: letters, digits, `_`, `-` and `.`, at most 100 characters.
fn is_product_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 100
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn validate_config(config: &mut RokuConfig) -> Result<(), RokuError> {
    let invalid = |message: String| Err(RokuError::InvalidConfig(message));
    config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
    if !is_http_url(&config.public_base_url) {
        return invalid("public_base_url must be an http(s) URL".into());
    }
    if config.partner_api_keys.is_empty() || config.partner_api_keys.len() > 2 {
        return invalid("a developer has one Roku Pay API key, or two while rotating it".into());
    }
    if let Some(key) = config.partner_api_keys.iter().find(|key| !is_api_key(key)) {
        return invalid(format!(
            "{key:?} is not a Roku Pay API key (printable ASCII without /?#%, at most 64)"
        ));
    }
    let mut channels = std::collections::HashSet::new();
    let mut codes = std::collections::HashSet::new();
    for channel in &config.channels {
        if channel.channel_id == 0 || !channels.insert(channel.channel_id) {
            return invalid(format!(
                "channel id {} is zero or configured twice",
                channel.channel_id
            ));
        }
        for product in &channel.products {
            let name = format!("channel {}: {}", channel.channel_id, product.code);
            if !is_product_code(&product.code) {
                return invalid(format!("{name}: not a product code"));
            }
            if !codes.insert(product.code.clone()) {
                return invalid(format!("{name}: the product code is configured twice"));
            }
            if product.price_minor < 0 {
                return invalid(format!("{name}: the price is negative"));
            }
            if product.currency.len() != 3
                || !product.currency.chars().all(|c| c.is_ascii_alphabetic())
            {
                return invalid(format!("{name}: the currency must be ISO 4217, e.g. USD"));
            }
            if product.free_trial_days > 366
                || product.grace_period_days > 30
                || product.on_hold_days > 90
            {
                return invalid(format!(
                    "{name}: at most a year of free trial, 30 days of grace and 90 on hold"
                ));
            }
        }
    }
    if let Some(push) = &config.push {
        push_target(push)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_codes_follow_the_rules() {
        assert!(is_api_key("F05447A57F8DF275FC30EC835FCAD10A19B6"));
        assert!(!is_api_key("a/b"));
        assert!(!is_api_key(""));
        assert!(is_product_code("CAkJPWMldSfISZbs2sE3_MonthlySub"));
        assert!(!is_product_code("monthly sub"));
    }
}
