//! The App Store's records of one app, without HTTP or signatures: customers, their
//! auto-renewable subscriptions and transactions, and the rules that move a subscription
//! through Apple's statuses as the host's clock passes or as the control surface plays the
//! customer and the store.
//!
//! - A customer (an Apple Account, named by the host) has at most one subscription per
//!   subscription group and environment; its first transaction's id is the subscription's
//!   `originalTransactionId`, shared by every renewal and by a resubscription after it ended.
//! - A subscription renews when its period ends: a new transaction (`RENEWAL`, a new
//!   `webOrderLineItemId`) starting where the last one expired. Periods count from an anchor
//!   (the purchase, a resubscription, or a recovery from billing retry), so monthly renewals
//!   keep their day of the month.
//! - A renewal made to fail enters a grace period (the customer keeps access; status 4) or
//!   billing retry directly (status 3). A grace period ends into billing retry; billing retry
//!   ends, [`BILLING_RETRY_PERIOD`] after the expiry, in expiry (status 2), unless the
//!   billing recovers first.
//! - With auto-renew off, the subscription expires at the end of its period.
//! - A refund or revocation of the latest transaction revokes the subscription (status 5).
//!
//! Each change worth telling the developer is an [`Event`]; the simulator turns events into
//! signed App Store Server Notifications. Time is always the caller's `now`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Months, TimeDelta, Utc};
use poem_openapi::Enum;
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppleProduct, SubscriptionPeriod};

/// How long after an expiry the App Store keeps retrying a failed renewal.
pub const BILLING_RETRY_PERIOD: TimeDelta = TimeDelta::days(60);

/// A gap longer than this between two periods starts a new `recentSubscriptionStartDate`.
const RECENT_START_GAP: TimeDelta = TimeDelta::days(60);

/// Where a purchase was made: the App Store, or its sandbox (TestFlight and sandbox accounts).
#[derive(
    Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[oai(rename = "AppleEnvironment")]
pub enum Environment {
    Production,
    Sandbox,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "Production",
            Self::Sandbox => "Sandbox",
        }
    }

    /// The first digit of the environment's ids, so an id names its environment.
    fn id_digit(self) -> char {
        match self {
            Self::Production => '1',
            Self::Sandbox => '2',
        }
    }
}

/// Why a transaction was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionReason {
    /// The customer bought (or bought again after the subscription ended).
    Purchase,
    /// An automatic renewal.
    Renewal,
}

impl TransactionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "PURCHASE",
            Self::Renewal => "RENEWAL",
        }
    }
}

/// Why the App Store refunded or revoked a transaction (Apple's `revocationReason`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AppleRevocationReason", rename_all = "camelCase")]
pub enum RevocationReason {
    /// `0`: another reason, e.g. an accidental purchase.
    Other,
    /// `1`: an actual or perceived issue within the app.
    AppIssue,
}

impl RevocationReason {
    pub fn code(self) -> u8 {
        match self {
            Self::Other => 0,
            Self::AppIssue => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub at: DateTime<Utc>,
    pub reason: RevocationReason,
}

/// One purchase or renewal.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub original_id: String,
    pub web_order_line_item_id: String,
    pub environment: Environment,
    pub customer: String,
    pub product_id: String,
    pub subscription_group: String,
    pub purchase_date: DateTime<Utc>,
    pub original_purchase_date: DateTime<Utc>,
    pub expires_date: DateTime<Utc>,
    pub reason: TransactionReason,
    pub price_milliunits: i64,
    pub currency: String,
    pub app_account_token: Option<Uuid>,
    pub app_transaction_id: String,
    pub revocation: Option<Revocation>,
    /// Creation order.
    pub seq: u64,
}

/// How the next renewal fails, once armed by the control surface.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AppleRenewalFailure", rename_all = "camelCase")]
pub enum RenewalFailure {
    /// Into a grace period (the customer keeps access), then billing retry.
    GracePeriod,
    /// Into billing retry directly (access ends at the expiry).
    BillingRetry,
}

/// Why a subscription expired (Apple's `expirationIntent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirationIntent {
    /// `1`: the customer turned auto-renew off.
    Voluntary,
    /// `2`: billing failed until the retry period ended.
    BillingError,
}

impl ExpirationIntent {
    pub fn code(self) -> u8 {
        match self {
            Self::Voluntary => 1,
            Self::BillingError => 2,
        }
    }
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Active,
    /// The renewal failed; the customer keeps access until `grace_until`.
    GracePeriod {
        grace_until: DateTime<Utc>,
        retry_until: DateTime<Utc>,
    },
    /// The renewal failed; the App Store retries until `retry_until`.
    BillingRetry {
        retry_until: DateTime<Utc>,
    },
    Expired {
        intent: ExpirationIntent,
    },
    /// The latest transaction was refunded or revoked.
    Revoked,
}

impl Phase {
    /// Apple's subscription status: 1 active, 2 expired, 3 billing retry, 4 grace period,
    /// 5 revoked.
    pub fn status(self) -> u8 {
        match self {
            Self::Active => 1,
            Self::Expired { .. } => 2,
            Self::BillingRetry { .. } => 3,
            Self::GracePeriod { .. } => 4,
            Self::Revoked => 5,
        }
    }

    fn in_billing_retry(self) -> bool {
        matches!(self, Self::GracePeriod { .. } | Self::BillingRetry { .. })
    }
}

/// An auto-renewable subscription: one customer, one subscription group, one environment.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub original_transaction_id: String,
    pub environment: Environment,
    pub customer: String,
    pub subscription_group: String,
    /// What renews next (`autoRenewProductId`).
    pub product_id: String,
    pub auto_renew: bool,
    pub app_account_token: Option<Uuid>,
    pub app_transaction_id: String,
    pub original_purchase_date: DateTime<Utc>,
    /// The start of the current run of periods without a long gap.
    pub recent_start: DateTime<Utc>,
    pub phase: Phase,
    pub fail_next_renewal: Option<RenewalFailure>,
    /// Oldest first; never empty.
    pub transactions: Vec<String>,
    /// Periods count from here…
    anchor: DateTime<Utc>,
    /// …and the latest transaction ends this many periods after it.
    periods: u32,
    /// When [`Store::settle_due`] next has something to do, as filed in the store's queue.
    next_due: Option<DateTime<Utc>>,
}

impl Subscription {
    pub fn latest_transaction_id(&self) -> &str {
        self.transactions
            .last()
            .map_or(self.original_transaction_id.as_str(), String::as_str)
    }

    /// When the phase ends on its own: the renewal, the end of the grace period, the end of
    /// billing retry.
    fn due_at(&self, expires: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::Active => Some(expires),
            Phase::GracePeriod { grace_until, .. } => Some(grace_until),
            Phase::BillingRetry { retry_until } => Some(retry_until),
            Phase::Expired { .. } | Phase::Revoked => None,
        }
    }
}

/// The notification types the simulator sends (Apple's `notificationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationType {
    Subscribed,
    DidRenew,
    DidFailToRenew,
    GracePeriodExpired,
    Expired,
    DidChangeRenewalStatus,
    Refund,
    Revoke,
    Test,
}

impl NotificationType {
    pub const ALL: [Self; 9] = [
        Self::Subscribed,
        Self::DidRenew,
        Self::DidFailToRenew,
        Self::GracePeriodExpired,
        Self::Expired,
        Self::DidChangeRenewalStatus,
        Self::Refund,
        Self::Revoke,
        Self::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribed => "SUBSCRIBED",
            Self::DidRenew => "DID_RENEW",
            Self::DidFailToRenew => "DID_FAIL_TO_RENEW",
            Self::GracePeriodExpired => "GRACE_PERIOD_EXPIRED",
            Self::Expired => "EXPIRED",
            Self::DidChangeRenewalStatus => "DID_CHANGE_RENEWAL_STATUS",
            Self::Refund => "REFUND",
            Self::Revoke => "REVOKE",
            Self::Test => "TEST",
        }
    }
}

/// Apple's notification `subtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subtype {
    InitialBuy,
    Resubscribe,
    BillingRecovery,
    GracePeriod,
    Voluntary,
    BillingRetry,
    AutoRenewEnabled,
    AutoRenewDisabled,
}

impl Subtype {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitialBuy => "INITIAL_BUY",
            Self::Resubscribe => "RESUBSCRIBE",
            Self::BillingRecovery => "BILLING_RECOVERY",
            Self::GracePeriod => "GRACE_PERIOD",
            Self::Voluntary => "VOLUNTARY",
            Self::BillingRetry => "BILLING_RETRY",
            Self::AutoRenewEnabled => "AUTO_RENEW_ENABLED",
            Self::AutoRenewDisabled => "AUTO_RENEW_DISABLED",
        }
    }
}

/// A change to tell the developer about: what happened, to which subscription, and the
/// transaction the notification shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub notification_type: NotificationType,
    pub subtype: Option<Subtype>,
    pub original_transaction_id: String,
    pub transaction_id: String,
}

/// Why an operation of the control surface was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request itself is wrong (the message says what).
    #[error("{0}")]
    Invalid(String),
    #[error("no product {0} is configured")]
    NoSuchProduct(String),
    #[error("no subscription has the original transaction id {0}")]
    NoSuchSubscription(String),
    #[error("no transaction has the id {0}")]
    NoSuchTransaction(String),
    #[error(
        "the customer already subscribes to this group (original transaction {0}); it can be \
         bought again once it has expired or been revoked"
    )]
    AlreadySubscribed(String),
    #[error("{0}")]
    WrongState(String),
}

/// A purchase the customer makes in the app.
#[derive(Debug, Clone)]
pub struct Order {
    pub environment: Environment,
    pub customer: String,
    pub product_id: String,
    pub app_account_token: Option<Uuid>,
}

/// A customer's records in one environment.
#[derive(Debug, Default)]
struct Customer {
    app_transaction_id: String,
    /// Subscription group → original transaction id.
    subscriptions: BTreeMap<String, String>,
    /// Oldest first.
    transactions: Vec<String>,
}

/// Every record of the app, both environments.
pub struct Store {
    products: HashMap<String, AppleProduct>,
    grace_period: TimeDelta,
    transactions: HashMap<String, Transaction>,
    subscriptions: HashMap<String, Subscription>,
    customers: HashMap<(Environment, String), Customer>,
    /// App transaction id → customer.
    app_transactions: HashMap<String, (Environment, String)>,
    /// Subscriptions by when something next happens to them on their own.
    due: BTreeSet<(DateTime<Utc>, String)>,
    /// Counters of the numeric ids; they start at random, so ids from before a restart are
    /// not handed out again.
    next_transaction: u64,
    next_web_order: u64,
    next_app_transaction: u64,
    next_seq: u64,
}

/// A random start for an id counter, leaving room for a billion ids in 15 digits.
fn random_counter_start() -> u64 {
    rand::rng().random_range(1..=899_999u64) * 1_000_000_000
}

impl Store {
    pub fn new(products: &[AppleProduct], grace_period: TimeDelta) -> Self {
        Self {
            products: products
                .iter()
                .map(|product| (product.product_id.clone(), product.clone()))
                .collect(),
            grace_period,
            transactions: HashMap::new(),
            subscriptions: HashMap::new(),
            customers: HashMap::new(),
            app_transactions: HashMap::new(),
            due: BTreeSet::new(),
            next_transaction: random_counter_start(),
            next_web_order: random_counter_start(),
            next_app_transaction: random_counter_start(),
            next_seq: 0,
        }
    }

    /// Forgets every customer, subscription and transaction; ids keep counting.
    pub fn clear(&mut self) {
        self.transactions.clear();
        self.subscriptions.clear();
        self.customers.clear();
        self.app_transactions.clear();
        self.due.clear();
    }

    pub fn product(&self, product_id: &str) -> Option<&AppleProduct> {
        self.products.get(product_id)
    }

    /// A transaction of this environment (a transaction of the other one is not found).
    pub fn transaction(&self, environment: Environment, id: &str) -> Option<&Transaction> {
        self.transactions
            .get(id)
            .filter(|transaction| transaction.environment == environment)
    }

    pub fn subscription(&self, original_transaction_id: &str) -> Option<&Subscription> {
        self.subscriptions.get(original_transaction_id)
    }

    /// Every subscription, oldest first.
    pub fn subscriptions(&self) -> Vec<&Subscription> {
        let mut all: Vec<&Subscription> = self.subscriptions.values().collect();
        all.sort_by_key(|subscription| self.seq_of(&subscription.original_transaction_id));
        all
    }

    fn seq_of(&self, transaction_id: &str) -> u64 {
        self.transactions
            .get(transaction_id)
            .map_or(0, |transaction| transaction.seq)
    }

    /// The latest transaction's expiry.
    pub fn expires(&self, subscription: &Subscription) -> DateTime<Utc> {
        self.transactions
            .get(subscription.latest_transaction_id())
            .map_or(subscription.original_purchase_date, |transaction| {
                transaction.expires_date
            })
    }

    /// The customer that any of their transaction ids, original transaction ids or app
    /// transaction id names, in this environment.
    pub fn customer_named_by(&self, environment: Environment, id: &str) -> Option<&str> {
        if let Some(transaction) = self.transaction(environment, id) {
            return Some(&transaction.customer);
        }
        self.app_transactions
            .get(id)
            .filter(|(owner_environment, _)| *owner_environment == environment)
            .map(|(_, customer)| customer.as_str())
    }

    /// A customer's transactions, oldest first.
    pub fn customer_transactions(
        &self,
        environment: Environment,
        customer: &str,
    ) -> impl Iterator<Item = &Transaction> {
        self.customers
            .get(&(environment, customer.to_owned()))
            .into_iter()
            .flat_map(|records| records.transactions.iter())
            .filter_map(|id| self.transactions.get(id))
    }

    /// A customer's subscriptions, by subscription group.
    pub fn customer_subscriptions(
        &self,
        environment: Environment,
        customer: &str,
    ) -> impl Iterator<Item = &Subscription> {
        self.customers
            .get(&(environment, customer.to_owned()))
            .into_iter()
            .flat_map(|records| records.subscriptions.values())
            .filter_map(|id| self.subscriptions.get(id))
    }

    fn new_id(counter: &mut u64, environment: Environment) -> String {
        *counter += 1;
        format!("{}{:015}", environment.id_digit(), *counter)
    }

    /// Records a new transaction `id` of the subscription (its current product, from
    /// `purchase` to `expires`).
    fn add_transaction(
        &mut self,
        id: &str,
        original_transaction_id: &str,
        reason: TransactionReason,
        purchase: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Option<()> {
        let subscription = self.subscriptions.get_mut(original_transaction_id)?;
        let product = self.products.get(&subscription.product_id)?;
        self.next_seq += 1;
        let transaction = Transaction {
            id: id.to_owned(),
            original_id: subscription.original_transaction_id.clone(),
            web_order_line_item_id: Self::new_id(
                &mut self.next_web_order,
                subscription.environment,
            ),
            environment: subscription.environment,
            customer: subscription.customer.clone(),
            product_id: product.product_id.clone(),
            subscription_group: subscription.subscription_group.clone(),
            purchase_date: purchase,
            original_purchase_date: subscription.original_purchase_date,
            expires_date: expires,
            reason,
            price_milliunits: product.price_milliunits,
            currency: product.currency.clone(),
            app_account_token: subscription.app_account_token,
            app_transaction_id: subscription.app_transaction_id.clone(),
            revocation: None,
            seq: self.next_seq,
        };
        subscription.transactions.push(id.to_owned());
        self.customers
            .entry((subscription.environment, subscription.customer.clone()))
            .or_default()
            .transactions
            .push(id.to_owned());
        self.transactions.insert(id.to_owned(), transaction);
        Some(())
    }

    /// A renewal of the subscription now ending at `expires`; its id.
    fn renew(
        &mut self,
        original_transaction_id: &str,
        purchase: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Option<String> {
        let environment = self.subscriptions.get(original_transaction_id)?.environment;
        let id = Self::new_id(&mut self.next_transaction, environment);
        self.add_transaction(
            &id,
            original_transaction_id,
            TransactionReason::Renewal,
            purchase,
            expires,
        )?;
        Some(id)
    }

    /// Files the subscription under when it is next due (or nowhere), wherever it was.
    fn reschedule(&mut self, original_transaction_id: &str) {
        let Some(subscription) = self.subscriptions.get(original_transaction_id) else {
            return;
        };
        let next = subscription.due_at(self.expires(subscription));
        let previous = subscription.next_due;
        if let Some(previous) = previous {
            self.due
                .remove(&(previous, original_transaction_id.to_owned()));
        }
        if let Some(next) = next {
            self.due.insert((next, original_transaction_id.to_owned()));
        }
        if let Some(subscription) = self.subscriptions.get_mut(original_transaction_id) {
            subscription.next_due = next;
        }
    }

    fn event(
        notification_type: NotificationType,
        subtype: Option<Subtype>,
        original_transaction_id: &str,
        transaction_id: &str,
    ) -> Event {
        Event {
            notification_type,
            subtype,
            original_transaction_id: original_transaction_id.to_owned(),
            transaction_id: transaction_id.to_owned(),
        }
    }

    /// The customer buys a subscription: a new one (`SUBSCRIBED`/`INITIAL_BUY`), or the
    /// group's ended one again (`SUBSCRIBED`/`RESUBSCRIBE`). The new transaction's id.
    pub fn purchase(
        &mut self,
        order: &Order,
        now: DateTime<Utc>,
    ) -> Result<(String, Event), Refusal> {
        let product = self
            .products
            .get(&order.product_id)
            .cloned()
            .ok_or_else(|| Refusal::NoSuchProduct(order.product_id.clone()))?;
        let key = (order.environment, order.customer.clone());
        if !self.customers.contains_key(&key) {
            let app_transaction_id = format!("70{:016}", {
                self.next_app_transaction += 1;
                self.next_app_transaction
            });
            self.app_transactions
                .insert(app_transaction_id.clone(), key.clone());
            self.customers.insert(
                key.clone(),
                Customer {
                    app_transaction_id,
                    ..Customer::default()
                },
            );
        }
        let customer = self.customers.get(&key).ok_or_else(|| {
            Refusal::WrongState("the customer's records could not be created".into())
        })?;
        let app_transaction_id = customer.app_transaction_id.clone();
        let existing = customer
            .subscriptions
            .get(&product.subscription_group)
            .cloned();
        let expires = product.period.after(now, 1);
        let transaction_id = Self::new_id(&mut self.next_transaction, order.environment);
        let (original_transaction_id, subtype) = match existing {
            Some(original) => {
                let subscription = self
                    .subscriptions
                    .get_mut(&original)
                    .ok_or_else(|| Refusal::NoSuchSubscription(original.clone()))?;
                if !matches!(subscription.phase, Phase::Expired { .. } | Phase::Revoked) {
                    return Err(Refusal::AlreadySubscribed(original));
                }
                let ended = self
                    .transactions
                    .get(subscription.latest_transaction_id())
                    .map_or(now, |transaction| transaction.expires_date);
                if now - ended > RECENT_START_GAP {
                    subscription.recent_start = now;
                }
                subscription.product_id = product.product_id.clone();
                subscription.auto_renew = true;
                subscription.app_account_token = order.app_account_token;
                subscription.phase = Phase::Active;
                subscription.fail_next_renewal = None;
                subscription.anchor = now;
                subscription.periods = 1;
                (original, Subtype::Resubscribe)
            }
            None => {
                // The first transaction's id is the one the subscription is known by.
                let original = transaction_id.clone();
                self.subscriptions.insert(
                    original.clone(),
                    Subscription {
                        original_transaction_id: original.clone(),
                        environment: order.environment,
                        customer: order.customer.clone(),
                        subscription_group: product.subscription_group.clone(),
                        product_id: product.product_id.clone(),
                        auto_renew: true,
                        app_account_token: order.app_account_token,
                        app_transaction_id,
                        original_purchase_date: now,
                        recent_start: now,
                        phase: Phase::Active,
                        fail_next_renewal: None,
                        transactions: Vec::new(),
                        anchor: now,
                        periods: 1,
                        next_due: None,
                    },
                );
                if let Some(customer) = self.customers.get_mut(&key) {
                    customer
                        .subscriptions
                        .insert(product.subscription_group.clone(), original.clone());
                }
                (original, Subtype::InitialBuy)
            }
        };
        self.add_transaction(
            &transaction_id,
            &original_transaction_id,
            TransactionReason::Purchase,
            now,
            expires,
        )
        .ok_or_else(|| Refusal::NoSuchSubscription(original_transaction_id.clone()))?;
        self.reschedule(&original_transaction_id);
        let event = Self::event(
            NotificationType::Subscribed,
            Some(subtype),
            &original_transaction_id,
            &transaction_id,
        );
        Ok((transaction_id, event))
    }

    /// Does what fell due by `now`, in order of time: renewals (or their failures, or
    /// expiries with auto-renew off), ends of grace periods, ends of billing retry. Each
    /// event is handed to `on_event` with the records as they are right after it, so that
    /// what is told about it shows that moment.
    pub fn settle_due(&mut self, now: DateTime<Utc>, mut on_event: impl FnMut(&Self, &Event)) {
        while let Some((at, original)) = self.due.first().cloned() {
            if at > now {
                break;
            }
            self.due.pop_first();
            if let Some(subscription) = self.subscriptions.get_mut(&original) {
                subscription.next_due = None;
            }
            let event = self.settle_one(&original, at);
            self.reschedule(&original);
            if let Some(event) = event {
                on_event(self, &event);
            }
        }
    }

    /// What happens to one subscription at `at`, when its phase ends on its own.
    fn settle_one(&mut self, original: &str, at: DateTime<Utc>) -> Option<Event> {
        let grace_period = self.grace_period;
        let subscription = self.subscriptions.get_mut(original)?;
        let latest = subscription.latest_transaction_id().to_owned();
        let event = |notification_type, subtype| {
            Some(Self::event(notification_type, subtype, original, &latest))
        };
        match subscription.phase {
            Phase::Active if !subscription.auto_renew => {
                subscription.phase = Phase::Expired {
                    intent: ExpirationIntent::Voluntary,
                };
                event(NotificationType::Expired, Some(Subtype::Voluntary))
            }
            Phase::Active => match subscription.fail_next_renewal.take() {
                Some(RenewalFailure::GracePeriod) => {
                    subscription.phase = Phase::GracePeriod {
                        grace_until: at + grace_period,
                        retry_until: at + BILLING_RETRY_PERIOD,
                    };
                    event(NotificationType::DidFailToRenew, Some(Subtype::GracePeriod))
                }
                Some(RenewalFailure::BillingRetry) => {
                    subscription.phase = Phase::BillingRetry {
                        retry_until: at + BILLING_RETRY_PERIOD,
                    };
                    event(NotificationType::DidFailToRenew, None)
                }
                None => {
                    let period = self.products.get(&subscription.product_id)?.period;
                    subscription.periods += 1;
                    let expires = period.after(subscription.anchor, subscription.periods);
                    let renewal = self.renew(original, at, expires)?;
                    Some(Self::event(
                        NotificationType::DidRenew,
                        None,
                        original,
                        &renewal,
                    ))
                }
            },
            Phase::GracePeriod { retry_until, .. } => {
                subscription.phase = Phase::BillingRetry { retry_until };
                event(NotificationType::GracePeriodExpired, None)
            }
            Phase::BillingRetry { .. } => {
                subscription.phase = Phase::Expired {
                    intent: ExpirationIntent::BillingError,
                };
                event(NotificationType::Expired, Some(Subtype::BillingRetry))
            }
            Phase::Expired { .. } | Phase::Revoked => None,
        }
    }

    fn subscription_mut(&mut self, original: &str) -> Result<&mut Subscription, Refusal> {
        self.subscriptions
            .get_mut(original)
            .ok_or_else(|| Refusal::NoSuchSubscription(original.to_owned()))
    }

    /// Arms the next renewal to fail. No notification: nothing has happened yet.
    pub fn fail_next_renewal(
        &mut self,
        original: &str,
        failure: RenewalFailure,
    ) -> Result<(), Refusal> {
        let subscription = self.subscription_mut(original)?;
        if subscription.phase != Phase::Active {
            return Err(Refusal::WrongState(
                "only an active subscription has a next renewal".into(),
            ));
        }
        subscription.fail_next_renewal = Some(failure);
        Ok(())
    }

    /// The billing succeeds during a grace period or billing retry: a renewal now
    /// (`DID_RENEW`/`BILLING_RECOVERY`). Recovered in a grace period, the subscription keeps
    /// its renewal dates; recovered in billing retry, its new period starts now.
    pub fn recover(&mut self, original: &str, now: DateTime<Utc>) -> Result<Event, Refusal> {
        let product_id = self.subscription_mut(original)?.product_id.clone();
        let period = self
            .products
            .get(&product_id)
            .map(|product| product.period)
            .ok_or(Refusal::NoSuchProduct(product_id))?;
        let subscription = self.subscription_mut(original)?;
        if !subscription.phase.in_billing_retry() {
            return Err(Refusal::WrongState(
                "only a subscription in a grace period or billing retry can recover".into(),
            ));
        }
        let keeps_dates = matches!(subscription.phase, Phase::GracePeriod { .. })
            && period.after(subscription.anchor, subscription.periods + 1) > now;
        if keeps_dates {
            subscription.periods += 1;
        } else {
            subscription.anchor = now;
            subscription.periods = 1;
        }
        let expires = period.after(subscription.anchor, subscription.periods);
        subscription.phase = Phase::Active;
        subscription.fail_next_renewal = None;
        let renewal = self
            .renew(original, now, expires)
            .ok_or_else(|| Refusal::NoSuchSubscription(original.to_owned()))?;
        self.reschedule(original);
        Ok(Self::event(
            NotificationType::DidRenew,
            Some(Subtype::BillingRecovery),
            original,
            &renewal,
        ))
    }

    /// Billing retry runs out now (`EXPIRED`/`BILLING_RETRY`), without waiting for its end.
    pub fn end_billing_retry(&mut self, original: &str) -> Result<Event, Refusal> {
        let subscription = self.subscription_mut(original)?;
        if !subscription.phase.in_billing_retry() {
            return Err(Refusal::WrongState(
                "only a subscription in a grace period or billing retry can run out of retries"
                    .into(),
            ));
        }
        subscription.phase = Phase::Expired {
            intent: ExpirationIntent::BillingError,
        };
        let latest = subscription.latest_transaction_id().to_owned();
        self.reschedule(original);
        Ok(Self::event(
            NotificationType::Expired,
            Some(Subtype::BillingRetry),
            original,
            &latest,
        ))
    }

    /// The customer turns auto-renew on or off (`DID_CHANGE_RENEWAL_STATUS`).
    pub fn set_auto_renew(&mut self, original: &str, enabled: bool) -> Result<Event, Refusal> {
        let subscription = self.subscription_mut(original)?;
        if matches!(subscription.phase, Phase::Expired { .. } | Phase::Revoked) {
            return Err(Refusal::WrongState(
                "the subscription has ended; the customer buys it again instead".into(),
            ));
        }
        if subscription.auto_renew == enabled {
            return Err(Refusal::WrongState(format!(
                "auto-renew is already {}",
                if enabled { "on" } else { "off" }
            )));
        }
        subscription.auto_renew = enabled;
        let subtype = if enabled {
            Subtype::AutoRenewEnabled
        } else {
            Subtype::AutoRenewDisabled
        };
        Ok(Self::event(
            NotificationType::DidChangeRenewalStatus,
            Some(subtype),
            original,
            subscription.latest_transaction_id(),
        ))
    }

    /// The App Store refunds a transaction (`REFUND`) or revokes it (`REVOKE`, Family
    /// Sharing). When it is the subscription's latest, the subscription is revoked.
    pub fn revoke(
        &mut self,
        transaction_id: &str,
        reason: RevocationReason,
        refunded: bool,
        now: DateTime<Utc>,
    ) -> Result<Event, Refusal> {
        let transaction = self
            .transactions
            .get_mut(transaction_id)
            .ok_or_else(|| Refusal::NoSuchTransaction(transaction_id.to_owned()))?;
        if transaction.revocation.is_some() {
            return Err(Refusal::WrongState(
                "the transaction was already refunded or revoked".into(),
            ));
        }
        transaction.revocation = Some(Revocation { at: now, reason });
        let original = transaction.original_id.clone();
        let subscription = self.subscription_mut(&original)?;
        if subscription.latest_transaction_id() == transaction_id {
            subscription.phase = Phase::Revoked;
            subscription.auto_renew = false;
            subscription.fail_next_renewal = None;
        }
        self.reschedule(&original);
        let notification_type = if refunded {
            NotificationType::Refund
        } else {
            NotificationType::Revoke
        };
        Ok(Self::event(
            notification_type,
            None,
            &original,
            transaction_id,
        ))
    }
}

impl SubscriptionPeriod {
    /// The end of `count` periods from `anchor` (months keep the anchor's day, or the
    /// month's last day when it is shorter).
    pub fn after(self, anchor: DateTime<Utc>, count: u32) -> DateTime<Utc> {
        match self {
            Self::Days(days) => anchor + TimeDelta::days(i64::from(days) * i64::from(count)),
            Self::Months(months) => anchor
                .checked_add_months(Months::new(months.saturating_mul(count)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn store() -> Store {
        Store::new(
            &[AppleProduct {
                product_id: "monthly".into(),
                subscription_group: "group".into(),
                period: SubscriptionPeriod::Months(1),
                price_milliunits: 9_990,
                currency: "USD".into(),
            }],
            TimeDelta::days(16),
        )
    }

    fn order(customer: &str) -> Order {
        Order {
            environment: Environment::Sandbox,
            customer: customer.into(),
            product_id: "monthly".into(),
            app_account_token: None,
        }
    }

    fn settle(store: &mut Store, now: &str) -> Vec<Event> {
        let mut events = Vec::new();
        store.settle_due(at(now), |_, event| events.push(event.clone()));
        events
    }

    fn kinds(events: &[Event]) -> Vec<(&str, Option<&str>)> {
        events
            .iter()
            .map(|event| {
                (
                    event.notification_type.as_str(),
                    event.subtype.map(Subtype::as_str),
                )
            })
            .collect()
    }

    #[test]
    fn monthly_renewals_keep_the_day_and_the_original_id() {
        let mut store = store();
        let (first, event) = store
            .purchase(&order("alice"), at("2030-01-31T10:00:00Z"))
            .unwrap();
        assert_eq!(event.original_transaction_id, first);
        assert!(first.starts_with('2') && first.len() == 16);
        let events = settle(&mut store, "2030-04-01T00:00:00Z");
        assert_eq!(kinds(&events), [("DID_RENEW", None), ("DID_RENEW", None)]);
        let subscription = store.subscription(&first).unwrap();
        assert_eq!(subscription.transactions.len(), 3);
        assert_eq!(
            store.expires(subscription),
            at("2030-04-30T10:00:00Z"),
            "anchored on January 31st, not drifting to the 28th"
        );
        let renewal = store
            .transaction(Environment::Sandbox, &subscription.transactions[2])
            .unwrap();
        assert_eq!(renewal.original_id, first);
        assert_eq!(renewal.purchase_date, at("2030-03-31T10:00:00Z"));
        assert_eq!(renewal.reason, TransactionReason::Renewal);
        assert!(store.transaction(Environment::Production, &first).is_none());
    }

    #[test]
    fn a_failed_renewal_goes_through_grace_and_retry_to_expiry() {
        let mut store = store();
        let (first, _) = store
            .purchase(&order("bob"), at("2030-01-01T00:00:00Z"))
            .unwrap();
        store
            .fail_next_renewal(&first, RenewalFailure::GracePeriod)
            .unwrap();
        let events = settle(&mut store, "2030-02-01T00:00:00Z");
        assert_eq!(
            kinds(&events),
            [("DID_FAIL_TO_RENEW", Some("GRACE_PERIOD"))]
        );
        assert_eq!(store.subscription(&first).unwrap().phase.status(), 4);
        let events = settle(&mut store, "2030-02-17T00:00:00Z");
        assert_eq!(kinds(&events), [("GRACE_PERIOD_EXPIRED", None)]);
        assert_eq!(store.subscription(&first).unwrap().phase.status(), 3);
        let events = settle(&mut store, "2030-04-02T00:00:00Z");
        assert_eq!(kinds(&events), [("EXPIRED", Some("BILLING_RETRY"))]);
        assert_eq!(store.subscription(&first).unwrap().phase.status(), 2);
        assert!(settle(&mut store, "2031-01-01T00:00:00Z").is_empty());
        let (again, event) = store
            .purchase(&order("bob"), at("2031-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(event.subtype, Some(Subtype::Resubscribe));
        assert_eq!(event.original_transaction_id, first);
        assert_ne!(again, first);
        assert_eq!(
            store.subscription(&first).unwrap().recent_start,
            at("2031-01-01T00:00:00Z")
        );
    }

    #[test]
    fn recovery_auto_renew_and_refunds() {
        let mut store = store();
        let (first, _) = store
            .purchase(&order("carol"), at("2030-01-01T00:00:00Z"))
            .unwrap();
        assert!(matches!(
            store.purchase(&order("carol"), at("2030-01-02T00:00:00Z")),
            Err(Refusal::AlreadySubscribed(_))
        ));
        store
            .fail_next_renewal(&first, RenewalFailure::BillingRetry)
            .unwrap();
        settle(&mut store, "2030-02-01T00:00:00Z");
        let recovered = store.recover(&first, at("2030-02-05T00:00:00Z")).unwrap();
        assert_eq!(recovered.subtype, Some(Subtype::BillingRecovery));
        let subscription = store.subscription(&first).unwrap();
        assert_eq!(store.expires(subscription), at("2030-03-05T00:00:00Z"));
        let disabled = store.set_auto_renew(&first, false).unwrap();
        assert_eq!(disabled.subtype, Some(Subtype::AutoRenewDisabled));
        assert!(store.set_auto_renew(&first, false).is_err());
        let events = settle(&mut store, "2030-03-05T00:00:00Z");
        assert_eq!(kinds(&events), [("EXPIRED", Some("VOLUNTARY"))]);
        let latest = store
            .subscription(&first)
            .unwrap()
            .latest_transaction_id()
            .to_owned();
        let refund = store
            .revoke(
                &latest,
                RevocationReason::AppIssue,
                true,
                at("2030-03-06T00:00:00Z"),
            )
            .unwrap();
        assert_eq!(refund.notification_type, NotificationType::Refund);
        assert_eq!(store.subscription(&first).unwrap().phase.status(), 5);
        assert!(
            store
                .revoke(
                    &latest,
                    RevocationReason::Other,
                    false,
                    at("2030-03-07T00:00:00Z")
                )
                .is_err()
        );
    }
}
