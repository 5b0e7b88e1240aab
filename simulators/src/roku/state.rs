//! The developer account's Roku Pay subscriptions and their lifecycle on the host's clock,
//! without HTTP.
//!
//! A subscription is paid period by period from a billing anchor (the purchase, the end of
//! a free trial, the day it came back from hold, a new bill cycle date), so monthly
//! renewals keep their day of the month. When a period ends the subscription renews — a new
//! payment transaction and a `Sale` ("Recurring subscription processed") — unless the
//! customer turned auto-renewal off (it ends, without a notification: Roku sent the
//! `Cancellation` when the customer cancelled), or the renewal was made to fail: then, as
//! Roku's subscription recovery goes, a grace period (`GraceInitiated`; three days by
//! default, access continues, the billing date stays), then on hold (`OnHoldInitiated`;
//! Enhanced Subscription Recovery, 57 days by default, no access; a recovery then moves the
//! billing date to the day of payment), then a passive `Cancellation`, unless the customer
//! pays first (`GraceRecovered`, `OnHoldRecovered`). A free trial whose first charge fails
//! skips the grace period, as Roku does. A product with no hold days is Basic Recovery: the
//! grace period ends in the cancellation.
//!
//! Every transaction id is 32 lower-case hex digits, as in Roku's examples. Payments (the
//! purchase, renewals, recoveries) are transactions `validate-transaction` answers for;
//! each answers with the subscription as it is now and its latest payment. Events
//! (`GraceInitiated`, `OnHoldInitiated`, `Cancellation`, `Resubscribe`) get ids of their
//! own in their notifications, as in Roku's examples, but are not payments.
//!
//! Nothing here reads a clock: operations are given the time, and [`Store::settle`] runs
//! every transition that fell due up to a time, in order, each at its own time. What Roku
//! would push is collected as [`Notice`]s for the caller to publish.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Months, TimeDelta, Utc};
use poem_openapi::Enum;
use uuid::Uuid;

use super::wire::{PUSH_PURCHASE_CHANNEL, PUSH_PURCHASE_CONTEXT, PushMessage, decimal, iso_date};
use super::{RokuBillingPeriod, RokuChannel, RokuProduct};

/// Why an operation was refused, in words a Roku client can show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Invalid transaction id")]
    UnknownTransaction,
    #[error("Invalid refund id")]
    UnknownRefund,
    #[error("No channel sells the product {0:?}")]
    UnknownProduct(String),
    #[error("The channel {channel_id} does not sell the product {product:?}")]
    NotInChannel { channel_id: u64, product: String },
    #[error("The customer already has an active subscription to {0}")]
    AlreadySubscribed(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidRequest(String),
}

fn invalid_state(message: &str) -> Refusal {
    Refusal::InvalidState(message.to_owned())
}

/// How the next renewal fails.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "RokuRenewalFailure", rename_all = "camelCase")]
pub enum RenewalFailure {
    /// The charge is declined: the grace period (access continues), then on hold, then
    /// cancelled, unless the customer pays. After a free trial there is no grace period.
    GracePeriod,
    /// The charge is declined and the subscription goes on hold at once (no access), as
    /// after a free trial.
    OnHold,
}

/// Where a subscription is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Paid until the end of the current period.
    Active,
    /// The renewal at `since` failed; access continues until `until` while Roku retries.
    Grace {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// The renewal failed and any grace period is over: no access from `since` until the
    /// customer pays, or the subscription is cancelled at `until`.
    OnHold {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Over since `at`; `expiration` is what `expirationDate` shows (the end of the paid
    /// period, or `at` for a deactivation).
    Ended {
        at: DateTime<Utc>,
        expiration: DateTime<Utc>,
    },
}

/// Roku's push notification types this simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionType {
    Sale,
    GraceInitiated,
    GraceRecovered,
    OnHoldInitiated,
    OnHoldRecovered,
    Cancellation,
    Refund,
    Resubscribe,
}

impl TransactionType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sale => "Sale",
            Self::GraceInitiated => "GraceInitiated",
            Self::GraceRecovered => "GraceRecovered",
            Self::OnHoldInitiated => "OnHoldInitiated",
            Self::OnHoldRecovered => "OnHoldRecovered",
            Self::Cancellation => "Cancellation",
            Self::Refund => "Refund",
            Self::Resubscribe => "Resubscribe",
        }
    }
}

/// Something Roku pushes, before it is published.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub transaction_type: TransactionType,
    /// Everything but the `responseKey`, which publishing sets.
    pub message: PushMessage,
}

/// A payment: the purchase, a renewal, a recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: String,
    /// The subscription's original transaction id.
    pub subscription: String,
    pub purchased_at: DateTime<Utc>,
    /// Before tax, in minor units: 0 for a free trial or a test user's purchase.
    pub amount_minor: i64,
    pub free_trial: bool,
    /// Refunded so far, in minor units.
    pub refunded_minor: i64,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    seq: u64,
    pub id: String,
    pub transaction_id: String,
    pub subscription: String,
    pub amount_minor: i64,
    pub at: DateTime<Utc>,
    pub partner_reference_id: Option<String>,
    pub comments: Option<String>,
}

/// A subscription: its original transaction and the payments after it.
#[derive(Debug, Clone)]
pub struct Subscription {
    seq: u64,
    pub original_transaction_id: String,
    /// `rokuCustomerId`.
    pub customer_id: String,
    pub channel_id: u64,
    pub channel_name: String,
    pub product: RokuProduct,
    /// Bought by a test user: every charge is 0.
    pub test_user: bool,
    pub started_at: DateTime<Utc>,
    /// Where the current run of paid periods started.
    anchor: DateTime<Utc>,
    /// Paid periods since `anchor` (0 during a free trial, whose end is the anchor).
    periods: u32,
    pub phase: Phase,
    /// False once the customer (or the publisher) cancelled: `cancelled` on the wire.
    pub auto_renew: bool,
    /// How the next renewal fails, when armed.
    pub fail_next: Option<RenewalFailure>,
    /// Payment transaction ids, oldest first.
    pub transactions: Vec<String>,
    /// What the publisher passed with its last cancel or refund.
    pub partner_reference_id: Option<String>,
}

impl Subscription {
    /// The end of the paid periods (of the free trial, during one).
    pub fn paid_until(&self) -> DateTime<Utc> {
        self.product.billing_period.after(self.anchor, self.periods)
    }

    /// What `expirationDate` shows.
    pub fn expiration(&self) -> DateTime<Utc> {
        match self.phase {
            Phase::Ended { expiration, .. } => expiration,
            _ => self.paid_until(),
        }
    }

    pub fn ended(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. })
    }

    /// `cancelled`: auto-renewal is off, or the subscription is over.
    pub fn cancelled(&self) -> bool {
        !self.auto_renew || self.ended()
    }

    /// `isEntitled`: current (cancelled or not) until the paid period ends, and in the
    /// grace period.
    pub fn is_entitled(&self, now: DateTime<Utc>) -> bool {
        match self.phase {
            Phase::Active => now < self.paid_until(),
            Phase::Grace { until, .. } => now < until,
            Phase::OnHold { .. } | Phase::Ended { .. } => false,
        }
    }

    pub fn latest_transaction(&self) -> &str {
        self.transactions
            .last()
            .map_or(&self.original_transaction_id, String::as_str)
    }

    /// Whether the latest payment was a free trial.
    fn in_free_trial(&self) -> bool {
        self.periods == 0
    }

    fn next_event(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::Active => Some(self.paid_until()),
            Phase::Grace { until, .. } | Phase::OnHold { until, .. } => Some(until),
            Phase::Ended { .. } => None,
        }
    }

    /// The charge of one period: the price, or nothing for a test user.
    fn charge(&self) -> i64 {
        if self.test_user {
            0
        } else {
            self.product.price_minor
        }
    }

    /// A notification's message about this subscription, with the fields every type has.
    fn message(
        &self,
        transaction_type: TransactionType,
        transaction_id: &str,
        at: DateTime<Utc>,
        comments: String,
    ) -> PushMessage {
        PushMessage {
            customer_id: self.customer_id.clone(),
            transaction_type: transaction_type.name().to_owned(),
            transaction_id: transaction_id.to_owned(),
            channel_id: self.channel_id.to_string(),
            channel_name: None,
            product_code: self.product.code.clone(),
            product_name: self.product.name.clone(),
            price: None,
            total: None,
            tax: None,
            currency: None,
            partner_reference_id: None,
            original_transaction_id: self.original_transaction_id.clone(),
            original_purchase_date: Some(iso_date(self.started_at)),
            event_date: iso_date(at),
            expiration_date: Some(iso_date(self.expiration())),
            comments,
            response_key: String::new(),
            purchase_channel: None,
            purchase_context: None,
            is_free_trial: false,
        }
    }

    /// The message of a payment notification (`Sale`, `GraceRecovered`, `OnHoldRecovered`):
    /// the amounts, and for a sale the channel's name and where it was bought.
    fn payment_message(
        &self,
        transaction_type: TransactionType,
        payment: &Transaction,
        comments: &str,
    ) -> PushMessage {
        let currency = &self.product.currency;
        let amount = decimal(payment.amount_minor, currency);
        let mut message = self.message(
            transaction_type,
            &payment.id,
            payment.purchased_at,
            comments.to_owned(),
        );
        message.price = Some(amount);
        message.total = Some(amount);
        message.tax = Some(0.0);
        message.currency = Some(currency.to_ascii_lowercase());
        message.is_free_trial = payment.free_trial;
        if transaction_type == TransactionType::Sale {
            message.channel_name = Some(self.channel_name.clone());
            message.purchase_channel = Some(PUSH_PURCHASE_CHANNEL.into());
            message.purchase_context = Some(PUSH_PURCHASE_CONTEXT.into());
            if payment.id == self.original_transaction_id {
                // A new order's notification has no original purchase date in Roku's
                // example.
                message.original_purchase_date = None;
            }
        }
        message
    }

    fn cancellation_message(&self, at: DateTime<Utc>) -> Notice {
        Notice {
            transaction_type: TransactionType::Cancellation,
            message: self.message(
                TransactionType::Cancellation,
                &new_id(),
                at,
                format!("Cancellation for {}", self.product.name),
            ),
        }
    }
}

/// What a purchase asks for.
#[derive(Debug, Clone, Default)]
pub struct NewPurchase {
    pub product_code: String,
    pub channel_id: Option<u64>,
    /// The customer's `rokuCustomerId`; default a new customer.
    pub customer_id: Option<String>,
    pub test_user: bool,
}

/// Every subscription, payment and refund of the developer account.
#[derive(Default)]
pub struct Store {
    channels: Vec<RokuChannel>,
    subscriptions: HashMap<String, Subscription>,
    /// Payment transaction id → original transaction id.
    payments: HashMap<String, Transaction>,
    refunds: HashMap<String, Refund>,
    /// When each subscription next has something happen, earliest first.
    queue: BTreeSet<(DateTime<Utc>, String)>,
    scheduled: HashMap<String, DateTime<Utc>>,
    /// (customer, product) pairs that had a free trial.
    trials_used: HashSet<(String, String)>,
    next_seq: u64,
    notices: Vec<Notice>,
}

/// A new transaction, refund or customer id: 32 lower-case hex digits.
pub fn new_id() -> String {
    Uuid::new_v4().simple().to_string()
}

impl Store {
    pub fn new(channels: &[RokuChannel]) -> Self {
        Self {
            channels: channels.to_vec(),
            ..Self::default()
        }
    }

    /// Forgets every subscription, payment, refund and notice.
    pub fn clear(&mut self) {
        *self = Self::new(&self.channels);
    }

    /// What happened since the last call, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Subscriptions, oldest first.
    pub fn subscriptions(&self) -> Vec<&Subscription> {
        let mut all: Vec<&Subscription> = self.subscriptions.values().collect();
        all.sort_by_key(|subscription| subscription.seq);
        all
    }

    /// Refunds of a subscription, oldest first.
    pub fn refunds_of(&self, original_transaction_id: &str) -> Vec<&Refund> {
        let mut refunds: Vec<&Refund> = self
            .refunds
            .values()
            .filter(|refund| refund.subscription == original_transaction_id)
            .collect();
        refunds.sort_by_key(|refund| refund.seq);
        refunds
    }

    pub fn subscription(&self, original_transaction_id: &str) -> Result<&Subscription, Refusal> {
        self.subscriptions
            .get(original_transaction_id)
            .ok_or(Refusal::UnknownTransaction)
    }

    pub fn payment(&self, transaction_id: &str) -> Result<&Transaction, Refusal> {
        self.payments
            .get(transaction_id)
            .ok_or(Refusal::UnknownTransaction)
    }

    /// The subscription a payment belongs to.
    pub fn subscription_of(&self, transaction_id: &str) -> Result<&Subscription, Refusal> {
        let payment = self.payment(transaction_id)?;
        self.subscription(&payment.subscription)
    }

    /// The original transaction id of the subscription a payment belongs to.
    pub fn original_of(&self, transaction_id: &str) -> Result<String, Refusal> {
        Ok(self.payment(transaction_id)?.subscription.clone())
    }

    pub fn refund(&self, refund_id: &str) -> Result<&Refund, Refusal> {
        self.refunds.get(refund_id).ok_or(Refusal::UnknownRefund)
    }

    fn subscription_mut(&mut self, original: &str) -> Result<&mut Subscription, Refusal> {
        self.subscriptions
            .get_mut(original)
            .ok_or(Refusal::UnknownTransaction)
    }

    /// The channel and product a purchase names.
    fn product(
        &self,
        code: &str,
        channel_id: Option<u64>,
    ) -> Result<(&RokuChannel, &RokuProduct), Refusal> {
        let mut selling = self.channels.iter().filter_map(|channel| {
            channel
                .products
                .iter()
                .find(|product| product.code == code)
                .map(|product| (channel, product))
        });
        match channel_id {
            None => selling
                .next()
                .ok_or_else(|| Refusal::UnknownProduct(code.to_owned())),
            Some(channel_id) => {
                let found = selling.find(|(channel, _)| channel.channel_id == channel_id);
                match found {
                    Some(found) => Ok(found),
                    None if self.channels.iter().any(|c| c.channel_id == channel_id) => {
                        Err(Refusal::NotInChannel {
                            channel_id,
                            product: code.to_owned(),
                        })
                    }
                    None => Err(Refusal::InvalidRequest(format!(
                        "No channel has the id {channel_id}"
                    ))),
                }
            }
        }
    }

    /// Records a payment of a subscription.
    fn pay(
        &mut self,
        subscription: &str,
        at: DateTime<Utc>,
        amount_minor: i64,
        free_trial: bool,
        id: Option<String>,
    ) -> Transaction {
        let payment = Transaction {
            id: id.unwrap_or_else(new_id),
            subscription: subscription.to_owned(),
            purchased_at: at,
            amount_minor,
            free_trial,
            refunded_minor: 0,
        };
        self.payments.insert(payment.id.clone(), payment.clone());
        if let Some(subscription) = self.subscriptions.get_mut(subscription) {
            subscription.transactions.push(payment.id.clone());
        }
        payment
    }

    /// The customer buys a subscription on the device (ChannelStore `doOrder`): paid (or a
    /// free trial, once per customer and product) for its first period from now; a `Sale`.
    pub fn purchase(
        &mut self,
        request: NewPurchase,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let (channel, product) = self.product(&request.product_code, request.channel_id)?;
        let (channel_id, channel_name, product) =
            (channel.channel_id, channel.name.clone(), product.clone());
        let customer_id = match request.customer_id {
            Some(id) => {
                let id = id.trim().to_owned();
                if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(Refusal::InvalidRequest(
                        "customerId must be 1 to 64 printable ASCII characters".into(),
                    ));
                }
                id
            }
            None => new_id(),
        };
        if self.subscriptions.values().any(|subscription| {
            subscription.customer_id == customer_id
                && subscription.product.code == product.code
                && !subscription.ended()
        }) {
            return Err(Refusal::AlreadySubscribed(product.code.clone()));
        }
        let trial = product.free_trial_days > 0
            && self
                .trials_used
                .insert((customer_id.clone(), product.code.clone()));
        let original = new_id();
        let (anchor, periods) = if trial {
            (now + TimeDelta::days(i64::from(product.free_trial_days)), 0)
        } else {
            (now, 1)
        };
        self.next_seq += 1;
        let subscription = Subscription {
            seq: self.next_seq,
            original_transaction_id: original.clone(),
            customer_id,
            channel_id,
            channel_name,
            test_user: request.test_user,
            started_at: now,
            anchor,
            periods,
            phase: Phase::Active,
            auto_renew: true,
            fail_next: None,
            transactions: Vec::new(),
            partner_reference_id: None,
            product,
        };
        let amount = if trial { 0 } else { subscription.charge() };
        self.subscriptions.insert(original.clone(), subscription);
        let payment = self.pay(&original, now, amount, trial, Some(original.clone()));
        let subscription = self.subscription(&original)?;
        let notice = Notice {
            transaction_type: TransactionType::Sale,
            message: subscription.payment_message(
                TransactionType::Sale,
                &payment,
                "New order processed.",
            ),
        };
        self.notices.push(notice);
        self.reschedule(&original);
        self.subscription(&original)
    }

    /// Runs every transition due up to `now`, in order, each at its own time.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        while let Some((at, original)) = self.queue.first().cloned() {
            if at > now {
                break;
            }
            self.queue.remove(&(at, original.clone()));
            self.scheduled.remove(&original);
            self.step(&original, at);
            self.reschedule(&original);
        }
    }

    fn reschedule(&mut self, original: &str) {
        if let Some(previous) = self.scheduled.remove(original) {
            self.queue.remove(&(previous, original.to_owned()));
        }
        if let Some(next) = self
            .subscriptions
            .get(original)
            .and_then(Subscription::next_event)
        {
            self.queue.insert((next, original.to_owned()));
            self.scheduled.insert(original.to_owned(), next);
        }
    }

    /// What is due for one subscription at `at`.
    fn step(&mut self, original: &str, at: DateTime<Utc>) {
        enum Due {
            End(DateTime<Utc>),
            Fail(RenewalFailure),
            Renew,
            Hold(DateTime<Utc>),
            EndPassively,
            Nothing,
        }
        let Some(subscription) = self.subscriptions.get_mut(original) else {
            return;
        };
        let due = match subscription.phase {
            Phase::Active if at >= subscription.paid_until() => {
                if !subscription.auto_renew {
                    Due::End(subscription.paid_until())
                } else if let Some(failure) = subscription.fail_next.take() {
                    Due::Fail(failure)
                } else {
                    Due::Renew
                }
            }
            Phase::Grace { until, .. } if at >= until => {
                if subscription.product.on_hold_days > 0 {
                    Due::Hold(until)
                } else {
                    Due::EndPassively
                }
            }
            Phase::OnHold { until, .. } if at >= until => Due::EndPassively,
            _ => Due::Nothing,
        };
        match due {
            Due::End(expiration) => subscription.phase = Phase::Ended { at, expiration },
            Due::Fail(failure) => self.renewal_failed(original, failure, at),
            Due::Renew => self.renew(original, at),
            Due::Hold(since) => self.hold(original, since),
            Due::EndPassively => self.end_passively(original, at),
            Due::Nothing => {}
        }
    }

    /// A successful renewal at `at`: one more paid period and a `Sale`.
    fn renew(&mut self, original: &str, at: DateTime<Utc>) {
        let Some(subscription) = self.subscriptions.get_mut(original) else {
            return;
        };
        subscription.periods += 1;
        let amount = subscription.charge();
        let payment = self.pay(original, at, amount, false, None);
        if let Some(subscription) = self.subscriptions.get(original) {
            let message = subscription.payment_message(
                TransactionType::Sale,
                &payment,
                "Recurring subscription processed",
            );
            self.notices.push(Notice {
                transaction_type: TransactionType::Sale,
                message,
            });
        }
    }

    /// The renewal at `at` was declined.
    fn renewal_failed(&mut self, original: &str, failure: RenewalFailure, at: DateTime<Utc>) {
        let Some(subscription) = self.subscriptions.get_mut(original) else {
            return;
        };
        let grace = failure == RenewalFailure::GracePeriod
            && subscription.product.grace_period_days > 0
            && !subscription.in_free_trial();
        if grace {
            subscription.phase = Phase::Grace {
                since: at,
                until: at + TimeDelta::days(i64::from(subscription.product.grace_period_days)),
            };
            let message = subscription.message(
                TransactionType::GraceInitiated,
                &new_id(),
                at,
                "Subscription is in dunning state".into(),
            );
            self.notices.push(Notice {
                transaction_type: TransactionType::GraceInitiated,
                message,
            });
        } else if subscription.product.on_hold_days > 0 {
            self.hold(original, at);
        } else {
            self.end_passively(original, at);
        }
    }

    /// Goes on hold at `since`.
    fn hold(&mut self, original: &str, since: DateTime<Utc>) {
        let Some(subscription) = self.subscriptions.get_mut(original) else {
            return;
        };
        subscription.phase = Phase::OnHold {
            since,
            until: since + TimeDelta::days(i64::from(subscription.product.on_hold_days)),
        };
        let message = subscription.message(
            TransactionType::OnHoldInitiated,
            &new_id(),
            since,
            "Subscription is in Passive OnHold state".into(),
        );
        self.notices.push(Notice {
            transaction_type: TransactionType::OnHoldInitiated,
            message,
        });
    }

    /// Recovery ran out (or the customer gave up during it) at `at`: a passive
    /// cancellation, its `expirationDate` the past end of the paid period.
    fn end_passively(&mut self, original: &str, at: DateTime<Utc>) {
        let Some(subscription) = self.subscriptions.get_mut(original) else {
            return;
        };
        let expiration = subscription.paid_until();
        subscription.phase = Phase::Ended { at, expiration };
        subscription.auto_renew = false;
        subscription.fail_next = None;
        let notice = subscription.cancellation_message(at);
        self.notices.push(notice);
    }

    /// Ends access now (a deactivation): `expirationDate` is `at`.
    fn deactivate(&mut self, original: &str, at: DateTime<Utc>) {
        let Some(subscription) = self.subscriptions.get_mut(original) else {
            return;
        };
        subscription.phase = Phase::Ended { at, expiration: at };
        subscription.auto_renew = false;
        subscription.fail_next = None;
        let notice = subscription.cancellation_message(at);
        self.notices.push(notice);
    }

    /// Arms the next renewal to fail as told.
    pub fn fail_next_renewal(
        &mut self,
        original: &str,
        failure: RenewalFailure,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(original)?;
        if subscription.phase != Phase::Active || !subscription.auto_renew {
            return Err(invalid_state(
                "Only an active subscription that renews can have its renewal fail",
            ));
        }
        subscription.fail_next = Some(failure);
        self.subscription(original)
    }

    /// The current period ends now and the renewal runs now (as armed, if armed).
    pub fn renew_now(
        &mut self,
        original: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(original)?;
        if subscription.phase != Phase::Active || !subscription.auto_renew {
            return Err(invalid_state(
                "Only an active subscription that renews can be renewed",
            ));
        }
        subscription.anchor = now;
        subscription.periods = 0;
        self.step(original, now);
        self.reschedule(original);
        self.subscription(original)
    }

    /// The customer pays (updates the method of payment): in the grace period the billing
    /// date stays (`GraceRecovered`), on hold it moves to now (`OnHoldRecovered`); an armed
    /// failure is disarmed.
    pub fn recover(
        &mut self,
        original: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(original)?;
        subscription.fail_next = None;
        let (transaction_type, comments) = match subscription.phase {
            Phase::Active => return self.subscription(original),
            Phase::Ended { .. } => {
                return Err(invalid_state(
                    "The subscription has ended; the customer buys it again",
                ));
            }
            Phase::Grace { .. } => {
                subscription.periods += 1;
                (
                    TransactionType::GraceRecovered,
                    "Subscription recovered from dunning state.",
                )
            }
            Phase::OnHold { .. } => {
                subscription.anchor = now;
                subscription.periods = 1;
                (
                    TransactionType::OnHoldRecovered,
                    "Subscription recovered from Passive OnHold state.",
                )
            }
        };
        subscription.phase = Phase::Active;
        let amount = subscription.charge();
        let payment = self.pay(original, now, amount, false, None);
        let subscription = self.subscription(original)?;
        let message = subscription.payment_message(transaction_type, &payment, comments);
        self.notices.push(Notice {
            transaction_type,
            message,
        });
        self.reschedule(original);
        self.subscription(original)
    }

    /// Recovery runs out now: a passive cancellation.
    pub fn expire(&mut self, original: &str, now: DateTime<Utc>) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription(original)?;
        if !matches!(
            subscription.phase,
            Phase::Grace { .. } | Phase::OnHold { .. }
        ) {
            return Err(invalid_state(
                "Only a subscription in its grace period or on hold can run out of recovery",
            ));
        }
        self.end_passively(original, now);
        self.reschedule(original);
        self.subscription(original)
    }

    /// Auto-renewal off (the customer cancels in their Roku account, or the publisher calls
    /// `cancel-subscription`): a current subscription keeps access to the end of its period
    /// (`Cancellation` with that future `expirationDate`); one in recovery ends now. Nothing
    /// changes for one already cancelled or ended.
    pub fn cancel(
        &mut self,
        original: &str,
        partner_reference_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(original)?;
        if partner_reference_id.is_some() {
            subscription.partner_reference_id = partner_reference_id;
        }
        match subscription.phase {
            Phase::Active if subscription.auto_renew => {
                subscription.auto_renew = false;
                subscription.fail_next = None;
                let notice = subscription.cancellation_message(now);
                self.notices.push(notice);
            }
            Phase::Grace { .. } | Phase::OnHold { .. } => self.end_passively(original, now),
            Phase::Active | Phase::Ended { .. } => {}
        }
        self.reschedule(original);
        self.subscription(original)
    }

    /// Auto-renewal back on within the current period: `Resubscribe`.
    pub fn resubscribe(
        &mut self,
        original: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(original)?;
        match subscription.phase {
            Phase::Active if !subscription.auto_renew => {
                subscription.auto_renew = true;
                let mut message = subscription.message(
                    TransactionType::Resubscribe,
                    &new_id(),
                    now,
                    "Resubscription processed.".into(),
                );
                let currency = &subscription.product.currency;
                message.price = Some(0.0);
                message.total = Some(0.0);
                message.tax = Some(0.0);
                message.currency = Some(currency.to_ascii_lowercase());
                self.notices.push(Notice {
                    transaction_type: TransactionType::Resubscribe,
                    message,
                });
            }
            Phase::Active => {}
            _ => {
                return Err(invalid_state(
                    "Only a subscription still in its paid period can be resubscribed",
                ));
            }
        }
        self.reschedule(original);
        self.subscription(original)
    }

    /// Ends access now (Roku deactivates it): `Cancellation` with `expirationDate` now.
    pub fn deactivate_now(
        &mut self,
        original: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        if self.subscription(original)?.ended() {
            return Err(invalid_state("The subscription has already ended"));
        }
        self.deactivate(original, now);
        self.reschedule(original);
        self.subscription(original)
    }

    /// Refunds `amount_minor` of a payment (default: what is left of it): a `Refund`. The
    /// subscription goes on.
    pub fn refund_payment(
        &mut self,
        transaction_id: &str,
        amount_minor: Option<i64>,
        partner_reference_id: Option<String>,
        comments: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<&Refund, Refusal> {
        let payment = self.payment(transaction_id)?.clone();
        let left = payment.amount_minor - payment.refunded_minor;
        let amount = amount_minor.unwrap_or(left);
        if amount <= 0 || amount > left {
            return Err(Refusal::InvalidRequest(format!(
                "The refund amount must be more than 0 and at most {} (what is left of the \
                 transaction's price before tax)",
                decimal(
                    left.max(0),
                    &self.subscription(&payment.subscription)?.product.currency
                )
            )));
        }
        if let Some(stored) = self.payments.get_mut(transaction_id) {
            stored.refunded_minor += amount;
        }
        self.next_seq += 1;
        let refund = Refund {
            seq: self.next_seq,
            id: new_id(),
            transaction_id: transaction_id.to_owned(),
            subscription: payment.subscription.clone(),
            amount_minor: amount,
            at: now,
            partner_reference_id: partner_reference_id.clone(),
            comments,
        };
        let subscription = self.subscription_mut(&payment.subscription)?;
        if partner_reference_id.is_some() {
            subscription.partner_reference_id = partner_reference_id.clone();
        }
        let currency = subscription.product.currency.clone();
        let mut message = subscription.message(
            TransactionType::Refund,
            &refund.id,
            now,
            format!("Refund for {}", subscription.product.name),
        );
        message.price = Some(-decimal(amount, &currency));
        message.total = Some(-decimal(amount, &currency));
        message.tax = Some(-0.0);
        message.currency = Some(currency.to_ascii_lowercase());
        message.partner_reference_id = Some(partner_reference_id.unwrap_or_default());
        message.original_purchase_date = Some(iso_date(payment.purchased_at));
        message.expiration_date = None;
        self.notices.push(Notice {
            transaction_type: TransactionType::Refund,
            message,
        });
        let id = refund.id.clone();
        self.refunds.insert(id.clone(), refund);
        self.refund(&id)
    }

    /// As for an unauthorized purchase: the latest payment refunded in full (when anything
    /// is left of it), then the subscription deactivated now.
    pub fn revoke(&mut self, original: &str, now: DateTime<Utc>) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription(original)?;
        let latest = subscription.latest_transaction().to_owned();
        let ended = subscription.ended();
        let payment = self.payment(&latest)?;
        let refundable = payment.amount_minor > payment.refunded_minor;
        if ended && !refundable {
            return Err(invalid_state(
                "The subscription has ended and its latest payment is refunded",
            ));
        }
        if refundable {
            self.refund_payment(&latest, None, None, None, now)?;
        }
        if !ended {
            self.deactivate(original, now);
        }
        self.reschedule(original);
        self.subscription(original)
    }

    /// `update-bill-cycle`: the current period ends (and the next charge falls) at
    /// `new_date`, after now and at most one billing period after the current expiration.
    pub fn update_bill_cycle(
        &mut self,
        original: &str,
        new_date: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(original)?;
        if subscription.phase != Phase::Active {
            return Err(invalid_state(
                "Only a current subscription can change its billing cycle",
            ));
        }
        let latest_allowed = subscription
            .product
            .billing_period
            .after(subscription.paid_until(), 1);
        if new_date <= now || new_date > latest_allowed {
            return Err(Refusal::InvalidRequest(
                "newBillCycleDate must be after now and within the next billing period".into(),
            ));
        }
        subscription.anchor = new_date;
        subscription.periods = 0;
        self.reschedule(original);
        self.subscription(original)
    }
}

impl RokuBillingPeriod {
    /// `periods` periods after `from`, keeping the day of the month where the month has it
    /// (else its last day), counted from `from` each time so that they do not drift.
    pub fn after(self, from: DateTime<Utc>, periods: u32) -> DateTime<Utc> {
        let months = match self {
            Self::Monthly => 1,
            Self::Yearly => 12,
        };
        from.checked_add_months(Months::new(months * periods))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
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

    fn product(trial: u32, grace: u32, hold: u32) -> RokuProduct {
        RokuProduct {
            code: "monthly".into(),
            name: "Monthly".into(),
            billing_period: RokuBillingPeriod::Monthly,
            price_minor: 999,
            currency: "USD".into(),
            free_trial_days: trial,
            grace_period_days: grace,
            on_hold_days: hold,
        }
    }

    fn store(product: RokuProduct) -> Store {
        Store::new(&[RokuChannel {
            channel_id: 251_682,
            name: "Channel".into(),
            products: vec![product],
        }])
    }

    fn buy(store: &mut Store, now: DateTime<Utc>) -> String {
        store
            .purchase(
                NewPurchase {
                    product_code: "monthly".into(),
                    customer_id: Some("customer".into()),
                    ..NewPurchase::default()
                },
                now,
            )
            .unwrap()
            .original_transaction_id
            .clone()
    }

    fn kinds(store: &mut Store) -> Vec<TransactionType> {
        store
            .take_notices()
            .into_iter()
            .map(|notice| notice.transaction_type)
            .collect()
    }

    #[test]
    fn renewals_keep_the_day_and_make_new_payments() {
        let mut store = store(product(0, 3, 57));
        let original = buy(&mut store, at("2030-01-31T10:00:00Z"));
        store.settle(at("2030-04-01T00:00:00Z"));
        let subscription = store.subscription(&original).unwrap();
        assert_eq!(subscription.transactions.len(), 3);
        assert_eq!(subscription.transactions[0], original);
        assert_eq!(subscription.paid_until(), at("2030-04-30T10:00:00Z"));
        let latest = store.payment(subscription.latest_transaction()).unwrap();
        assert_eq!(latest.purchased_at, at("2030-03-31T10:00:00Z"));
        assert_eq!(latest.amount_minor, 999);
        assert_eq!(
            kinds(&mut store),
            [
                TransactionType::Sale,
                TransactionType::Sale,
                TransactionType::Sale
            ]
        );
    }

    #[test]
    fn a_failed_renewal_goes_through_grace_and_hold_to_a_passive_cancellation() {
        let mut store = store(product(0, 3, 57));
        let original = buy(&mut store, at("2030-01-01T00:00:00Z"));
        store
            .fail_next_renewal(&original, RenewalFailure::GracePeriod)
            .unwrap();
        store.settle(at("2030-02-02T00:00:00Z"));
        let subscription = store.subscription(&original).unwrap();
        assert!(matches!(subscription.phase, Phase::Grace { .. }));
        assert!(subscription.is_entitled(at("2030-02-02T00:00:00Z")));
        assert!(!subscription.cancelled());
        assert_eq!(subscription.expiration(), at("2030-02-01T00:00:00Z"));
        store.settle(at("2030-02-05T00:00:00Z"));
        let subscription = store.subscription(&original).unwrap();
        assert!(matches!(subscription.phase, Phase::OnHold { .. }));
        assert!(!subscription.is_entitled(at("2030-02-05T00:00:00Z")));
        store.settle(at("2030-05-01T00:00:00Z"));
        let subscription = store.subscription(&original).unwrap();
        assert_eq!(
            subscription.phase,
            Phase::Ended {
                at: at("2030-04-02T00:00:00Z"),
                expiration: at("2030-02-01T00:00:00Z")
            }
        );
        assert!(subscription.cancelled());
        assert_eq!(
            kinds(&mut store),
            [
                TransactionType::Sale,
                TransactionType::GraceInitiated,
                TransactionType::OnHoldInitiated,
                TransactionType::Cancellation
            ]
        );
    }

    #[test]
    fn recovery_keeps_the_billing_date_in_grace_and_moves_it_on_hold() {
        let mut store = store(product(0, 3, 57));
        let original = buy(&mut store, at("2030-01-01T00:00:00Z"));
        store
            .fail_next_renewal(&original, RenewalFailure::GracePeriod)
            .unwrap();
        store.settle(at("2030-02-02T00:00:00Z"));
        let recovered = store
            .recover(&original, at("2030-02-02T00:00:00Z"))
            .unwrap();
        assert_eq!(recovered.phase, Phase::Active);
        assert_eq!(recovered.paid_until(), at("2030-03-01T00:00:00Z"));
        assert_eq!(recovered.transactions.len(), 2);

        store
            .fail_next_renewal(&original, RenewalFailure::OnHold)
            .unwrap();
        store.settle(at("2030-03-10T00:00:00Z"));
        assert!(matches!(
            store.subscription(&original).unwrap().phase,
            Phase::OnHold { .. }
        ));
        let recovered = store
            .recover(&original, at("2030-03-10T00:00:00Z"))
            .unwrap();
        assert_eq!(recovered.paid_until(), at("2030-04-10T00:00:00Z"));
        let kinds = kinds(&mut store);
        assert_eq!(
            kinds[1..],
            [
                TransactionType::GraceInitiated,
                TransactionType::GraceRecovered,
                TransactionType::OnHoldInitiated,
                TransactionType::OnHoldRecovered
            ]
        );
    }

    #[test]
    fn a_free_trial_is_free_once_and_a_failed_first_charge_skips_the_grace_period() {
        let mut store = store(product(7, 3, 0));
        let start = at("2030-01-01T00:00:00Z");
        let original = buy(&mut store, start);
        let subscription = store.subscription(&original).unwrap();
        assert_eq!(subscription.paid_until(), at("2030-01-08T00:00:00Z"));
        assert_eq!(store.payment(&original).unwrap().amount_minor, 0);
        assert!(store.payment(&original).unwrap().free_trial);
        store
            .fail_next_renewal(&original, RenewalFailure::GracePeriod)
            .unwrap();
        store.settle(at("2030-01-09T00:00:00Z"));
        // No hold days (Basic Recovery) and no grace after a trial: cancelled at once.
        assert!(store.subscription(&original).unwrap().ended());
        let again = buy(&mut store, at("2030-01-10T00:00:00Z"));
        assert_eq!(store.payment(&again).unwrap().amount_minor, 999);
    }

    #[test]
    fn cancelling_keeps_access_to_the_end_of_the_period_and_can_be_undone() {
        let mut store = store(product(0, 3, 57));
        let original = buy(&mut store, at("2030-01-01T00:00:00Z"));
        let cancelled = store
            .cancel(&original, Some("ref-1".into()), at("2030-01-10T00:00:00Z"))
            .unwrap();
        assert!(cancelled.cancelled());
        assert!(cancelled.is_entitled(at("2030-01-10T00:00:00Z")));
        store
            .resubscribe(&original, at("2030-01-11T00:00:00Z"))
            .unwrap();
        store
            .cancel(&original, None, at("2030-01-12T00:00:00Z"))
            .unwrap();
        store.settle(at("2030-03-01T00:00:00Z"));
        let subscription = store.subscription(&original).unwrap();
        assert_eq!(
            subscription.phase,
            Phase::Ended {
                at: at("2030-02-01T00:00:00Z"),
                expiration: at("2030-02-01T00:00:00Z")
            }
        );
        assert_eq!(subscription.partner_reference_id.as_deref(), Some("ref-1"));
        assert_eq!(
            kinds(&mut store),
            [
                TransactionType::Sale,
                TransactionType::Cancellation,
                TransactionType::Resubscribe,
                TransactionType::Cancellation
            ]
        );
    }

    #[test]
    fn refunds_are_bounded_by_the_price_and_revocation_ends_access() {
        let mut store = store(product(0, 3, 57));
        let now = at("2030-01-05T00:00:00Z");
        let original = buy(&mut store, at("2030-01-01T00:00:00Z"));
        store
            .refund_payment(&original, Some(500), None, None, now)
            .unwrap();
        assert!(matches!(
            store.refund_payment(&original, Some(500), None, None, now),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(!store.subscription(&original).unwrap().ended());
        let revoked = store.revoke(&original, now).unwrap();
        assert_eq!(
            revoked.phase,
            Phase::Ended {
                at: now,
                expiration: now
            }
        );
        assert_eq!(store.refunds_of(&original).len(), 2);
        assert_eq!(store.refunds_of(&original)[1].amount_minor, 499);
    }

    #[test]
    fn a_new_bill_cycle_date_moves_the_next_charge() {
        let mut store = store(product(0, 3, 57));
        let original = buy(&mut store, at("2030-01-01T00:00:00Z"));
        let now = at("2030-01-10T00:00:00Z");
        assert!(
            store
                .update_bill_cycle(&original, at("2030-03-02T00:00:00Z"), now)
                .is_err()
        );
        let moved = store
            .update_bill_cycle(&original, at("2030-02-08T00:00:00Z"), now)
            .unwrap();
        assert_eq!(moved.paid_until(), at("2030-02-08T00:00:00Z"));
        store.settle(at("2030-02-09T00:00:00Z"));
        assert_eq!(
            store.subscription(&original).unwrap().paid_until(),
            at("2030-03-08T00:00:00Z")
        );
    }
}
