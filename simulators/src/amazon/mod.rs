//! The Amazon Appstore simulator: an offline, stateful fake of what the Appstore tells a
//! developer's server about one app's subscriptions — the Receipt Verification Service (RVS)
//! and Real-time Notifications (RTN) delivered through Amazon SNS.
//!
//! Faithful to Amazon's documentation where it speaks:
//! - RVS `verifyReceiptId` at Amazon's paths: production
//!   `/version/1.0/verifyReceiptId/developer/{sharedSecret}/user/{userId}/receiptId/{receiptId}`
//!   (`appstore-sdk.amazon.com`), the RVS Cloud Sandbox at `/sandbox/version/1.0/…`, `GET`, a
//!   JSON receipt with every field Amazon lists (times in epoch milliseconds, `null` where
//!   they do not apply), and Amazon's statuses: 400 for a receipt id no transaction has in
//!   that environment, 496 for a shared secret that is not the developer's (production only:
//!   the sandbox takes any), 497 for a user id that is not the receipt's, 410 for a revoked
//!   receipt; 429 and 5xx only when the control surface asks for them, never for anything a
//!   client sends. The error body (Amazon documents only the statuses) is `{"message",
//!   "status": false}`, what Amazon's clients read;
//! - a subscription keeps one `receiptId` across its renewals, `purchaseDate` stays the
//!   initial purchase and `renewalDate` moves one term on with each renewal (see
//!   [`receipts`] for the lifecycle, the grace period, `cancelDate` and `cancelReason`).
//!   Amazon's prose says `renewalDate` is null when auto-renewal is off, but its own RVS Cloud
//!   Sandbox example shows it set with `autoRenewing: false`; here it always holds the end of
//!   the term paid for, the only place RVS states it (with auto-renewal off `cancelDate` says
//!   the same, as Amazon documents). RVS states no price: a developer who needs one per
//!   payment derives a payment per term;
//! - RTN as SNS HTTP(S) messages ([`notifications`]): the `Message` holds Amazon's JSON
//!   (`appPackageName`, `notificationType`, `appUserId`, `receiptId`, `relatedReceipts`,
//!   `timestamp`, `betaProductTransaction`), signed exactly as SNS signs
//!   (`SignatureVersion` 1, RSA-SHA1, as Amazon's examples, or 2, RSA-SHA256) with a
//!   certificate the simulator makes and serves at the `SigningCertURL`
//!   (`{public_base_url}/sns/SimpleNotificationService-{id}.pem`), POSTed as `text/plain`
//!   with SNS's `x-amz-sns-*` headers. Subscribing an endpoint sends a
//!   `SubscriptionConfirmation`; a GET of its `SubscribeURL`
//!   (`{public_base_url}/sns/?Action=ConfirmSubscription&TopicArn=…&Token=…`, SNS's XML
//!   answer) or the token given on the control surface (the Developer Console's
//!   "Confirmation token") confirms it; until then nothing is delivered there. Deliveries are
//!   retried as SNS's default HTTP(S) delivery policy retries, on the host's clock.
//!   Purchases made with App Tester (the sandbox) send no notifications, as at Amazon; Live
//!   App Testing purchases (production, `betaProduct`) do, with `betaProductTransaction`.
//!
//! Time is only the host's [`Now`]. Renewals, the ends of grace periods and billing retry,
//! and expiries happen on that clock whenever the simulator is called; after moving the
//! clock the host calls [`AmazonSimulator::settle_due`], which also delivers what they
//! caused, or runs [`AmazonSimulator::spawn_delivery_loop`].
//!
//! The control surface ([`AmazonControlApi`], `/control/amazon/...`) plays the customer on
//! the device (buy a term SKU: what the Appstore SDK's `PurchaseResponse` hands the app; turn
//! auto-renewal off and on; cancel the order), the store (fail the next renewal into the grace
//! period or billing retry, recover, refund through customer service, revoke) and the
//! Developer Console (register the RTN endpoint, paste its confirmation token), reads the
//! receipts and the messages with every attempt, settles and delivers now, and resets. What
//! it causes is delivered (first attempt) before it answers.

mod api;
mod control;
mod delivery;
mod error;
mod notifications;
mod receipts;
mod sns;
mod wire;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use poem::Route;
use rand::Rng;

pub use self::control::{
    AmazonAppInfo, AmazonControlApi, AmazonPurchase, AmazonRtnSettings, AmazonState,
    ConfirmedSubscription, PaymentView, PendingSubscription, PurchaseRequest, ReceiptOutcome,
    ReceiptState, ReceiptView, SdkReceipt, UserData,
};
pub use self::delivery::{AmazonDeliveryReport, DELIVERY_POLL_INTERVAL};
pub use self::error::{AmazonError, RvsError};
pub use self::notifications::{
    CONFIRMATION_TOKEN_LIFETIME, DeliveryAttempt, DeliveryState, MessageRecord, is_delivered,
    retry_delay,
};
use self::notifications::{NewMessage, SnsSubscription, Target, Topic};
pub use self::receipts::{Ending, Environment, Refusal, RenewalFailure};
use self::receipts::{Notice, Store};
use self::sns::SigningIdentity;
pub use self::sns::{SNS_CERTIFICATE_SUBJECT, SnsSignatureVersion};
use self::wire::SnsEnvelope;
pub use self::wire::{RelatedReceipts, RtnMessage, RvsReceipt};
use crate::clock::Now;

/// The one operation version of `verifyReceiptId`.
pub const RVS_OPERATION_VERSION: &str = "1.0";

/// The SNS topic Amazon's example notifications come from; a configuration may name any.
pub const EXAMPLE_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:033616359524:LT0XA";

/// A length of time: a free trial's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmazonPeriod {
    Days(u32),
    Months(u32),
}

/// The billing periods Amazon offers for a term SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmazonTerm {
    Weekly,
    BiWeekly,
    Monthly,
    BiMonthly,
    Quarterly,
    SemiAnnually,
    Annually,
}

/// A term SKU: what the customer buys, one term at a price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonTermSku {
    /// e.g. `com.boxoffice.premium.monthly`.
    pub term_sku: String,
    pub term: AmazonTerm,
    /// The price in minor units of `currency` (RVS does not report it).
    pub price_minor: i64,
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
    /// A free trial before the first term (Amazon offers 7 and 14 days, 1, 2 and 3 months),
    /// once per customer and subscription.
    pub free_trial: Option<AmazonPeriod>,
    /// Days of access after a renewal made to fail into the grace period (0: none).
    pub grace_period_days: u32,
    /// Days Amazon retries a renewal made to fail into billing retry, without access (0: it
    /// is cancelled at once).
    pub billing_retry_days: u32,
}

/// A subscription: its parent SKU (`productId` in RVS) and its term SKUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonSubscriptionProduct {
    /// e.g. `com.boxoffice.premium`.
    pub parent_sku: String,
    /// At least one.
    pub terms: Vec<AmazonTermSku>,
}

/// How the simulated Appstore developer account and app are set up.
#[derive(Debug, Clone)]
pub struct AmazonConfig {
    /// Where the simulator's endpoint is reachable, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080/sim/amazon`: RVS production there (Amazon's
    /// `https://appstore-sdk.amazon.com`), the RVS Cloud Sandbox at `{public_base_url}/sandbox`,
    /// SNS (certificate, `ConfirmSubscription`, `Unsubscribe`) at `{public_base_url}/sns`.
    pub public_base_url: String,
    /// The app's package name (`appPackageName` of notifications), e.g. `com.boxoffice.app`.
    pub app_package_name: String,
    /// The developer's shared secret, which production RVS requires in its path.
    pub shared_secret: String,
    /// The subscriptions the app sells.
    pub products: Vec<AmazonSubscriptionProduct>,
    /// The SNS topic notifications are published to, `arn:aws:sns:{region}:{account}:{name}`.
    pub topic_arn: String,
    /// An endpoint subscribed (and confirmed) from the start, as one verified earlier in the
    /// Developer Console; the control surface sets another (pending confirmation).
    pub notification_endpoint: Option<String>,
    pub signature_version: SnsSignatureVersion,
    /// Where the SNS signing key and certificate are kept (PEM files, made on first start).
    /// `None`: new ones each start, so verifiers must fetch the certificate again.
    pub data_dir: Option<PathBuf>,
}

/// The simulated Appstore of one app. Cheap to clone: clones share one store.
#[derive(Clone)]
pub struct AmazonSimulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: AmazonConfig,
    now: Now,
    identity: SigningIdentity,
    state: Mutex<State>,
    /// What messages are delivered with, built on first use.
    http: OnceLock<Result<reqwest::Client, String>>,
    /// Woken whenever attempts have been recorded.
    delivery_finished: tokio::sync::Notify,
}

/// Everything that changes, under one lock.
pub(crate) struct State {
    pub store: Store,
    pub topic: Topic,
    /// The status RVS answers the next request with, when the control surface asked.
    pub fail_next_rvs: Option<u16>,
}

impl AmazonSimulator {
    /// Builds the app's empty store after checking the configuration, and loads (or makes)
    /// the SNS signing key and certificate.
    pub fn new(mut config: AmazonConfig, now: Now) -> Result<Self, AmazonError> {
        validate_config(&mut config)?;
        let identity = SigningIdentity::load_or_create(config.data_dir.as_deref())?;
        let simulator = Self::from_parts(config, now, identity);
        if let Some(endpoint) = simulator.config().notification_endpoint.clone() {
            let started = simulator.now();
            let mut subscription = simulator.new_subscription(endpoint, started);
            subscription.confirmed_at = Some(started);
            simulator.lock().topic.subscribe_confirmed(subscription);
        }
        Ok(simulator)
    }

    fn from_parts(config: AmazonConfig, now: Now, identity: SigningIdentity) -> Self {
        let state = State {
            store: Store::new(&config.products),
            topic: Topic::new(config.topic_arn.clone()),
            fail_next_rvs: None,
        };
        Self {
            inner: Arc::new(Inner {
                config,
                now,
                identity,
                state: Mutex::new(state),
                http: OnceLock::new(),
                delivery_finished: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A store that only describes itself. For the OpenAPI document.
    fn for_documentation(public_base_url: &str) -> Result<Self, AmazonError> {
        let config = AmazonConfig {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            app_package_name: "com.example.app".into(),
            shared_secret: "documentation".into(),
            products: Vec::new(),
            topic_arn: EXAMPLE_TOPIC_ARN.into(),
            notification_endpoint: None,
            signature_version: SnsSignatureVersion::V1,
            data_dir: None,
        };
        let identity = SigningIdentity::load_or_create(None)?;
        Ok(Self::from_parts(
            config,
            Arc::new(|| DateTime::UNIX_EPOCH),
            identity,
        ))
    }

    /// The simulator's HTTP surface, to mount at the path [`AmazonConfig::public_base_url`]
    /// names: RVS production at `/version/...`, the RVS Cloud Sandbox at `/sandbox/version/...`,
    /// SNS at `/sns/` (`?Action=ConfirmSubscription`, `?Action=Unsubscribe`) and its signing
    /// certificate at `/sns/SimpleNotificationService-{id}.pem`, this API's OpenAPI document at
    /// `/openapi.json` and Swagger UI at `/docs`. The control surface is separate
    /// ([`AmazonSimulator::control_api`]).
    pub fn endpoint(&self) -> Route {
        api::routes(self.clone())
    }

    /// The control surface (`/control/amazon/...`), for the host to mount in its control
    /// OpenAPI service (at `/sim`).
    pub fn control_api(&self) -> AmazonControlApi {
        AmazonControlApi::new(self.clone())
    }

    pub fn config(&self) -> &AmazonConfig {
        &self.inner.config
    }

    /// RVS production's base: `{public_base_url}` (Amazon's `https://appstore-sdk.amazon.com`).
    pub fn rvs_production_url(&self) -> String {
        self.config().public_base_url.clone()
    }

    /// The RVS Cloud Sandbox's base: `{public_base_url}/sandbox`.
    pub fn rvs_sandbox_url(&self) -> String {
        format!("{}/sandbox", self.config().public_base_url)
    }

    /// Where SNS is: `{public_base_url}/sns` (Amazon's `https://sns.{region}.amazonaws.com`).
    /// Every `SigningCertURL`, `SubscribeURL` and `UnsubscribeURL` starts with it and `/`.
    pub fn sns_base_url(&self) -> String {
        format!("{}/sns", self.config().public_base_url)
    }

    /// The `SigningCertURL` of every message.
    pub fn signing_certificate_url(&self) -> String {
        format!(
            "{}/{}",
            self.sns_base_url(),
            self.inner.identity.file_name()
        )
    }

    /// The SNS signing certificate (PEM) served at [`AmazonSimulator::signing_certificate_url`].
    pub fn signing_certificate_pem(&self) -> &str {
        self.inner.identity.certificate_pem()
    }

    pub(crate) fn identity(&self) -> &SigningIdentity {
        &self.inner.identity
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
        state.store.settle(now);
        let result = operation(&mut state, now);
        let notices = state.store.take_notices();
        let published = notices
            .iter()
            .filter_map(|notice| self.publish_notice(&mut state.topic, notice, now))
            .collect();
        (result, published)
    }

    /// Renews, fails, ends and expires whatever fell due by the host's `Now`, then delivers
    /// (first attempt) every message that caused and anything else due: for the host to call
    /// after moving its clock, so that the endpoint has been told before the move answers.
    pub async fn settle_due(&self) -> AmazonDeliveryReport {
        // Every call brings the state up to `Now` first; a delivery round is such a call.
        let report = self.deliver_due().await;
        // The delivery loop may have claimed some of what fell due before this round did.
        self.deliveries_under_way_finished().await;
        report
    }

    /// Subscribes `endpoint` to the topic pending confirmation (a `SubscriptionConfirmation`
    /// is delivered to it, first attempt, before this answers), or with `None` removes every
    /// subscription (each gets an `UnsubscribeConfirmation`): the messages sent.
    pub async fn set_notification_endpoint(
        &self,
        endpoint: Option<String>,
    ) -> Result<Vec<MessageRecord>, AmazonError> {
        if let Some(endpoint) = &endpoint {
            check_url("the notification endpoint", endpoint)?;
        }
        let (sent, _) = self.with_state(|state, now| match endpoint {
            Some(endpoint) => {
                let subscription = self.new_subscription(endpoint, now);
                state.topic.subscribe(subscription.clone());
                vec![self.publish_confirmation(
                    &mut state.topic,
                    "SubscriptionConfirmation",
                    &subscription,
                    Target::AwaitingConfirmation,
                    now,
                )]
            }
            None => state
                .topic
                .unsubscribe_all()
                .iter()
                .map(|subscription| {
                    self.publish_confirmation(
                        &mut state.topic,
                        "UnsubscribeConfirmation",
                        subscription,
                        Target::Endpoint,
                        now,
                    )
                })
                .collect(),
        });
        Ok(self.deliver_and_read(&sent).await)
    }

    /// Makes the first attempt of these messages, then reads them back.
    pub(crate) async fn deliver_and_read(&self, message_ids: &[String]) -> Vec<MessageRecord> {
        self.deliver_caused(message_ids).await;
        let state = self.lock();
        message_ids
            .iter()
            .filter_map(|id| state.topic.message(id).cloned())
            .collect()
    }

    fn new_subscription(&self, endpoint: String, now: DateTime<Utc>) -> SnsSubscription {
        let token: String = (0..64)
            .map(|_| format!("{:02x}", rand::rng().random::<u8>()))
            .collect();
        SnsSubscription {
            arn: format!("{}:{}", self.config().topic_arn, uuid::Uuid::new_v4()),
            endpoint,
            token,
            requested_at: now,
            confirmed_at: None,
        }
    }

    /// SNS's `ConfirmSubscription` URL for a token.
    fn subscribe_url(&self, token: &str) -> String {
        format!(
            "{}/?Action=ConfirmSubscription&TopicArn={}&Token={token}",
            self.sns_base_url(),
            self.config().topic_arn
        )
    }

    /// SNS's `Unsubscribe` URL for a subscription.
    fn unsubscribe_url(&self, subscription_arn: &str) -> String {
        format!(
            "{}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}",
            self.sns_base_url()
        )
    }

    /// An SNS message, signed.
    fn signed(&self, mut envelope: SnsEnvelope) -> String {
        let version = self.config().signature_version;
        envelope.signature_version = version.as_str().to_owned();
        envelope.signing_cert_url = self.signing_certificate_url();
        envelope.signature = self
            .inner
            .identity
            .sign(version, &envelope.string_to_sign());
        serde_json::to_string_pretty(&envelope).unwrap_or_default()
    }

    /// Publishes a `SubscriptionConfirmation` or `UnsubscribeConfirmation` for a
    /// subscription: its message id.
    fn publish_confirmation(
        &self,
        topic: &mut Topic,
        message_type: &str,
        subscription: &SnsSubscription,
        target: Target,
        now: DateTime<Utc>,
    ) -> String {
        let message_id = uuid::Uuid::new_v4().to_string();
        let message = if message_type == "SubscriptionConfirmation" {
            format!(
                "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                topic.arn
            )
        } else {
            format!(
                "You have chosen to deactivate subscription {}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
                subscription.arn
            )
        };
        let body = self.signed(SnsEnvelope {
            message_type: message_type.to_owned(),
            message_id: message_id.clone(),
            token: Some(subscription.token.clone()),
            topic_arn: topic.arn.clone(),
            subject: None,
            message,
            subscribe_url: Some(self.subscribe_url(&subscription.token)),
            timestamp: sns_timestamp(now),
            signature_version: String::new(),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: None,
        });
        topic.record(NewMessage {
            message_id: message_id.clone(),
            message_type: message_type.to_owned(),
            rtn: None,
            subscription: Some((subscription.clone(), target)),
            timestamp: now,
            body,
        });
        message_id
    }

    /// Publishes the Real-time Notification of a notice as an SNS notification: its message
    /// id. Sandbox (App Tester) receipts notify no one, as at Amazon.
    fn publish_notice(
        &self,
        topic: &mut Topic,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> Option<String> {
        if notice.environment == Environment::Sandbox {
            return None;
        }
        let rtn = RtnMessage {
            app_package_name: self.config().app_package_name.clone(),
            notification_type: notice.notification_type.as_str().to_owned(),
            app_user_id: notice.user_id.clone(),
            receipt_id: notice.receipt_id.clone(),
            related_receipts: RelatedReceipts::default(),
            timestamp: notice.at.timestamp_millis(),
            beta_product_transaction: notice.beta_product,
        };
        let message_id = uuid::Uuid::new_v4().to_string();
        let subscription = topic.confirmed().cloned();
        let body = self.signed(SnsEnvelope {
            message_type: "Notification".into(),
            message_id: message_id.clone(),
            token: None,
            topic_arn: topic.arn.clone(),
            subject: None,
            message: serde_json::to_string(&rtn).unwrap_or_default(),
            subscribe_url: None,
            timestamp: sns_timestamp(now),
            signature_version: String::new(),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: Some(match &subscription {
                Some(subscription) => self.unsubscribe_url(&subscription.arn),
                None => self.unsubscribe_url(&format!("{}:none", topic.arn)),
            }),
        });
        topic.record(NewMessage {
            message_id: message_id.clone(),
            message_type: "Notification".into(),
            rtn: Some(rtn),
            subscription: subscription.map(|subscription| (subscription, Target::Confirmed)),
            timestamp: now,
            body,
        });
        Some(message_id)
    }
}

/// SNS's `Timestamp`: ISO 8601 in UTC with milliseconds.
fn sns_timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The OpenAPI document of the simulator's Amazon API — RVS and SNS (the content of
/// `openapi/sim-amazon.json`) — with `public_base_url` as its server. Deterministic: the same
/// input gives the same bytes.
pub fn openapi_json(public_base_url: &str) -> Result<String, AmazonError> {
    let simulator = AmazonSimulator::for_documentation(public_base_url)?;
    Ok(api::service(simulator).spec())
}

fn check_url(what: &str, url: &str) -> Result<(), AmazonError> {
    let usable = url::Url::parse(url).ok().is_some_and(|parsed| {
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some()
    });
    if usable {
        Ok(())
    } else {
        Err(AmazonError::InvalidConfig(format!(
            "{what} must be an absolute http(s) URL, not {url:?}"
        )))
    }
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

/// The Appstore's SKU rule: 1 to 150 letters, digits, `.`, `_` and `-`.
fn is_sku(sku: &str) -> bool {
    (1..=150).contains(&sku.len())
        && sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `arn:aws:sns:{region}:{12-digit account}:{topic name}`.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(), ["arn", "aws", "sns", region, account, name]
        if !region.is_empty()
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
}

fn validate_config(config: &mut AmazonConfig) -> Result<(), AmazonError> {
    let invalid = |message: String| Err(AmazonError::InvalidConfig(message));
    config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
    check_url("public_base_url", &config.public_base_url)?;
    if !is_package_name(&config.app_package_name) {
        return invalid(format!(
            "{:?} is not an Android package name",
            config.app_package_name
        ));
    }
    if config.shared_secret.is_empty()
        || config
            .shared_secret
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%'))
    {
        return invalid(
            "the shared secret must be non-empty and usable as a path segment (no /, ?, #, %)"
                .into(),
        );
    }
    if !is_topic_arn(&config.topic_arn) {
        return invalid(format!(
            "{:?} is not an SNS topic ARN (arn:aws:sns:region:account:name)",
            config.topic_arn
        ));
    }
    let mut parents = std::collections::HashSet::new();
    let mut terms = std::collections::HashSet::new();
    for product in &config.products {
        let parent = &product.parent_sku;
        if !is_sku(parent) || !parents.insert(parent.clone()) {
            return invalid(format!(
                "parent SKU {parent:?} is malformed or configured twice"
            ));
        }
        if product.terms.is_empty() {
            return invalid(format!("{parent} has no term SKU"));
        }
        for term in &product.terms {
            let sku = &term.term_sku;
            if !is_sku(sku) || parents.contains(sku) || !terms.insert(sku.clone()) {
                return invalid(format!("term SKU {sku:?} is malformed or configured twice"));
            }
            if term.price_minor < 0 {
                return invalid(format!("{sku} has a negative price"));
            }
            if term.currency.len() != 3 || !term.currency.chars().all(|c| c.is_ascii_uppercase()) {
                return invalid(format!("{sku} needs an ISO 4217 currency such as USD"));
            }
            if matches!(
                term.free_trial,
                Some(AmazonPeriod::Days(0) | AmazonPeriod::Months(0))
            ) {
                return invalid(format!("{sku} has an empty free trial"));
            }
        }
    }
    if parents.iter().any(|parent| terms.contains(parent)) {
        return invalid("a SKU is both a parent and a term SKU".into());
    }
    if let Some(endpoint) = &config.notification_endpoint {
        check_url("notification_endpoint", endpoint)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_amazons_rules() {
        assert!(is_topic_arn(EXAMPLE_TOPIC_ARN));
        assert!(!is_topic_arn("arn:aws:sns:us-east-1:123:topic"));
        assert!(is_sku("com.boxoffice.premium.monthly"));
        assert!(!is_sku("premium monthly"));
        assert!(is_package_name("com.boxoffice.app"));
        assert_eq!(
            sns_timestamp(DateTime::from_timestamp_millis(1_600_701_575_686).unwrap()),
            "2020-09-21T15:19:35.686Z"
        );
    }
}
