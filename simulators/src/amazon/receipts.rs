//! The Appstore's receipts and their lifecycle on the host's clock, without HTTP.
//!
//! A subscription is one receipt for as long as it runs: Amazon keeps the `receiptId` of a
//! continuous subscription across its renewals and only issues a new one when the customer
//! subscribes again after it ended. Each renewal moves `renewalDate` one term on, from a
//! billing anchor (the purchase, the end of the free trial, or the day billing came back
//! after a failed renewal was retried), so monthly renewals keep their day of the month
//! (January 31 → February 28 → March 31), as Amazon documents.
//!
//! When a term ends the subscription renews (`SUBSCRIPTION_RENEWED`, or
//! `SUBSCRIPTION_CONVERTED_FREE_TRIAL_TO_PAID` at the end of a free trial) unless the customer
//! turned auto-renewal off (it expires: `SUBSCRIPTION_EXPIRED`) or the renewal was made to
//! fail on the control surface:
//! - into the term SKU's grace period (`SUBSCRIPTION_IN_GRACE_PERIOD`, access continues,
//!   `gracePeriodEndDate` set); fixing the payment (`recover`) renews from the missed date
//!   (`SUBSCRIPTION_OUT_OF_GRACE_PERIOD`);
//! - or into billing retry without access, which Amazon does not document (it has no account
//!   hold): RVS then shows a `renewalDate` in the past with `autoRenewing` still true and no
//!   cancel date, and no notification is sent; fixing the payment starts a new term from
//!   then (`SUBSCRIPTION_RENEWED`).
//!
//! A failed renewal not recovered in time is cancelled by Amazon's system (`cancelReason` 2,
//! `SUBSCRIPTION_CANCELLED`). The customer may cancel the order (access ends now,
//! `cancelReason` 1) and Amazon's customer service may cancel and refund it (`cancelReason`
//! 2), both `SUBSCRIPTION_CANCELLED`; a revoked receipt is cancelled too and RVS answers 410
//! for it from then on.
//!
//! Turning auto-renewal off (`SUBSCRIPTION_AUTO_RENEWAL_OFF`) sets `cancelDate` to the end of
//! the term (`cancelReason` 1) and sends `SUBSCRIPTION_SCHEDULED_TO_END` ten days before the
//! end of a monthly to quarterly term and thirty days before the end of a semi-annual or
//! annual one, when the term is still that far from its end.
//!
//! Nothing here reads a clock: operations are given the time, and [`Store::settle`] runs
//! every transition that fell due up to a time, in order, each at its own time.

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::Enum;
use rand::Rng;

use super::wire::RvsReceipt;
use super::{AmazonPeriod, AmazonSubscriptionProduct, AmazonTerm, AmazonTermSku};

/// The environment a receipt was made in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[oai(rename = "AmazonEnvironment", rename_all = "lowercase")]
pub enum Environment {
    /// The live Appstore (Live App Testing included): RVS at `/version/...`.
    Production,
    /// App Tester: the RVS Cloud Sandbox at `/sandbox/version/...`.
    Sandbox,
}

/// How the next renewal fails.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AmazonRenewalFailure", rename_all = "camelCase")]
pub enum RenewalFailure {
    /// Into the term SKU's grace period: access continues until it ends (billing retry
    /// without access when the term has none).
    GracePeriod,
    /// Into billing retry without access ("on hold"), for the term SKU's billing retry days.
    BillingRetry,
}

/// `cancelReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// 1: the customer cancelled (or let it lapse by turning auto-renewal off).
    Customer = 1,
    /// 2: Amazon's system cancelled it (a payment not recovered; customer service at the
    /// customer's request).
    System = 2,
}

impl CancelReason {
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// How a receipt ended, for the control surface.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AmazonEnding", rename_all = "camelCase")]
pub enum Ending {
    /// Auto-renewal was off and the term ran out.
    Expired,
    /// A failed renewal was not recovered in time.
    PaymentFailed,
    /// The customer cancelled the order.
    CancelledByCustomer,
    /// Amazon's customer service cancelled and refunded it.
    Refunded,
    /// The receipt was revoked: RVS answers 410.
    Revoked,
}

/// Where a receipt is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Paid (or in its free trial) until [`Receipt::paid_until`].
    Active,
    /// The renewal due at `since` failed; access continues until `until`.
    GracePeriod {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// The renewal due at `since` failed; no access; Amazon retries until `until`.
    BillingRetry {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Over since `at`.
    Ended {
        at: DateTime<Utc>,
        reason: CancelReason,
        how: Ending,
    },
}

/// A Real-time Notification type Amazon sends for subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtnType {
    Purchased,
    Renewed,
    ConvertedFreeTrialToPaid,
    AutoRenewalOn,
    AutoRenewalOff,
    ScheduledToEnd,
    InGracePeriod,
    OutOfGracePeriod,
    Cancelled,
    Expired,
}

impl RtnType {
    /// Amazon's name, as in its documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchased => "SUBSCRIPTION_PURCHASED",
            Self::Renewed => "SUBSCRIPTION_RENEWED",
            Self::ConvertedFreeTrialToPaid => "SUBSCRIPTION_CONVERTED_FREE_TRIAL_TO_PAID",
            Self::AutoRenewalOn => "SUBSCRIPTION_AUTO_RENEWAL_ON",
            Self::AutoRenewalOff => "SUBSCRIPTION_AUTO_RENEWAL_OFF",
            Self::ScheduledToEnd => "SUBSCRIPTION_SCHEDULED_TO_END",
            Self::InGracePeriod => "SUBSCRIPTION_IN_GRACE_PERIOD",
            Self::OutOfGracePeriod => "SUBSCRIPTION_OUT_OF_GRACE_PERIOD",
            Self::Cancelled => "SUBSCRIPTION_CANCELLED",
            Self::Expired => "SUBSCRIPTION_EXPIRED",
        }
    }
}

/// Something Amazon tells the developer about, before it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub notification_type: RtnType,
    pub receipt_id: String,
    pub user_id: String,
    pub environment: Environment,
    pub beta_product: bool,
    /// When it happened (`timestamp`).
    pub at: DateTime<Utc>,
}

/// A term paid for (or given free).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Minor units; 0 for a free trial.
    pub amount_minor: i64,
    pub currency: String,
    pub free_trial: bool,
    pub refunded_at: Option<DateTime<Utc>>,
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Invalid(String),
    #[error("no term SKU {0:?} is configured")]
    NoSuchSku(String),
    #[error("no receipt {0:?}")]
    NoSuchReceipt(String),
    #[error("the customer already has a running subscription to {0}")]
    AlreadySubscribed(String),
    #[error("{0}")]
    WrongState(String),
}

/// A subscription receipt.
#[derive(Debug, Clone)]
pub struct Receipt {
    seq: u64,
    pub receipt_id: String,
    pub user_id: String,
    pub environment: Environment,
    /// A Live App Testing purchase (`betaProduct`).
    pub live_app_testing: bool,
    pub country_code: String,
    pub marketplace: String,
    pub parent_sku: String,
    pub term: AmazonTermSku,
    pub purchase_date: DateTime<Utc>,
    /// When the free trial ends, if the purchase had one.
    pub trial_end: Option<DateTime<Utc>>,
    /// Where the current run of terms started.
    anchor: DateTime<Utc>,
    /// Terms paid since `anchor`.
    periods: u32,
    pub phase: Phase,
    pub auto_renewing: bool,
    /// When auto-renewal was turned off.
    pub auto_renew_off_at: Option<DateTime<Utc>>,
    /// `SUBSCRIPTION_SCHEDULED_TO_END` was sent (or is not to be) for this term.
    scheduled_to_end_done: bool,
    pub fail_next_renewal: Option<RenewalFailure>,
    pub revoked: bool,
    pub payments: Vec<Payment>,
}

impl Receipt {
    /// The end of the terms paid (or of the free trial): `renewalDate`.
    pub fn paid_until(&self) -> DateTime<Utc> {
        self.term.term.period().after(self.anchor, self.periods)
    }

    pub fn in_free_trial(&self) -> bool {
        self.trial_end.is_some() && self.periods == 0
    }

    pub fn ended(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. })
    }

    /// Whether the customer may use the subscription at `now`.
    pub fn has_access(&self, now: DateTime<Utc>) -> bool {
        match self.phase {
            Phase::Active => now < self.paid_until(),
            Phase::GracePeriod { until, .. } => now < until,
            Phase::BillingRetry { .. } | Phase::Ended { .. } => false,
        }
    }

    /// What RVS answers for it (a revoked receipt is answered 410 instead).
    pub fn rvs(&self) -> RvsReceipt {
        let millis = |time: DateTime<Utc>| time.timestamp_millis();
        let (cancel_date, cancel_reason) = match self.phase {
            Phase::Ended { at, reason, .. } => (Some(millis(at)), Some(reason.code())),
            Phase::Active if !self.auto_renewing => (
                Some(millis(self.paid_until())),
                Some(CancelReason::Customer.code()),
            ),
            _ => (None, None),
        };
        RvsReceipt {
            auto_renewing: Some(self.auto_renewing),
            beta_product: self.live_app_testing,
            cancel_date,
            cancel_reason,
            country_code: Some(self.country_code.clone()),
            deferred_date: None,
            deferred_sku: None,
            free_trial_end_date: self
                .trial_end
                .filter(|_| self.in_free_trial() && self.phase == Phase::Active)
                .map(millis),
            fulfillment_date: None,
            fulfillment_result: None,
            grace_period_end_date: match self.phase {
                Phase::GracePeriod { until, .. } => Some(millis(until)),
                _ => None,
            },
            parent_product_id: None,
            product_id: self.parent_sku.clone(),
            product_type: "SUBSCRIPTION".into(),
            promotions: None,
            purchase_date: millis(self.purchase_date),
            quantity: Some(1),
            receipt_id: self.receipt_id.clone(),
            renewal_date: Some(millis(self.paid_until())),
            term: Some(self.term.term.text().into()),
            term_sku: Some(self.term.term_sku.clone()),
            test_transaction: self.environment == Environment::Sandbox,
        }
    }

    fn notice(&self, notification_type: RtnType, at: DateTime<Utc>) -> Notice {
        Notice {
            notification_type,
            receipt_id: self.receipt_id.clone(),
            user_id: self.user_id.clone(),
            environment: self.environment,
            beta_product: self.live_app_testing,
            at,
        }
    }

    /// When `SUBSCRIPTION_SCHEDULED_TO_END` is due, if it still is.
    fn scheduled_to_end_at(&self) -> Option<DateTime<Utc>> {
        if self.auto_renewing || self.scheduled_to_end_done || self.phase != Phase::Active {
            return None;
        }
        let lead = self.term.term.scheduled_to_end_lead()?;
        Some(self.paid_until() - lead)
    }

    /// When something next happens to it on its own.
    fn next_event(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::Active => Some(
                self.scheduled_to_end_at()
                    .map_or(self.paid_until(), |at| at.min(self.paid_until())),
            ),
            Phase::GracePeriod { until, .. } | Phase::BillingRetry { until, .. } => Some(until),
            Phase::Ended { .. } => None,
        }
    }

    /// Runs what is due at `at`.
    fn step(&mut self, at: DateTime<Utc>, notices: &mut Vec<Notice>) {
        match self.phase {
            Phase::Active if at >= self.paid_until() => self.term_ends(notices),
            Phase::Active if self.scheduled_to_end_at().is_some_and(|due| at >= due) => {
                self.scheduled_to_end_done = true;
                notices.push(self.notice(RtnType::ScheduledToEnd, at));
            }
            Phase::GracePeriod { until, .. } | Phase::BillingRetry { until, .. } if at >= until => {
                self.end(until, CancelReason::System, Ending::PaymentFailed);
                notices.push(self.notice(RtnType::Cancelled, until));
            }
            _ => {}
        }
    }

    /// The term paid for ends (at [`Receipt::paid_until`]): it renews, fails to, or expires.
    fn term_ends(&mut self, notices: &mut Vec<Notice>) {
        let due = self.paid_until();
        if !self.auto_renewing {
            self.end(due, CancelReason::Customer, Ending::Expired);
            notices.push(self.notice(RtnType::Expired, due));
            return;
        }
        match self.fail_next_renewal.take() {
            Some(RenewalFailure::GracePeriod) if self.term.grace_period_days > 0 => {
                self.phase = Phase::GracePeriod {
                    since: due,
                    until: due + TimeDelta::days(i64::from(self.term.grace_period_days)),
                };
                notices.push(self.notice(RtnType::InGracePeriod, due));
            }
            Some(_) if self.term.billing_retry_days > 0 => {
                self.phase = Phase::BillingRetry {
                    since: due,
                    until: due + TimeDelta::days(i64::from(self.term.billing_retry_days)),
                };
            }
            Some(_) => {
                self.end(due, CancelReason::System, Ending::PaymentFailed);
                notices.push(self.notice(RtnType::Cancelled, due));
            }
            None => {
                let converted = self.in_free_trial();
                self.pay_next_term();
                notices.push(self.notice(
                    if converted {
                        RtnType::ConvertedFreeTrialToPaid
                    } else {
                        RtnType::Renewed
                    },
                    due,
                ));
            }
        }
    }

    /// One more term, charged from the current end of the paid terms.
    fn pay_next_term(&mut self) {
        let start = self.paid_until();
        self.periods += 1;
        self.phase = Phase::Active;
        self.scheduled_to_end_done = false;
        self.record_payment(start);
    }

    fn record_payment(&mut self, start: DateTime<Utc>) {
        self.payments.push(Payment {
            period_start: start,
            period_end: self.paid_until(),
            amount_minor: self.term.price_minor,
            currency: self.term.currency.clone(),
            free_trial: false,
            refunded_at: None,
        });
    }

    fn end(&mut self, at: DateTime<Utc>, reason: CancelReason, how: Ending) {
        self.phase = Phase::Ended { at, reason, how };
        self.auto_renewing = false;
        self.fail_next_renewal = None;
    }

    fn refund_latest_payment(&mut self, at: DateTime<Utc>) {
        if let Some(payment) = self
            .payments
            .iter_mut()
            .rev()
            .find(|payment| !payment.free_trial)
            && payment.refunded_at.is_none()
        {
            payment.refunded_at = Some(at);
        }
    }
}

/// A purchase made on a device.
#[derive(Debug, Clone)]
pub struct Order {
    pub term_sku: String,
    pub user_id: String,
    pub environment: Environment,
    pub live_app_testing: bool,
    pub country_code: String,
    pub marketplace: String,
}

/// Every receipt of the app.
pub struct Store {
    /// Term SKU → its parent SKU and configuration.
    skus: HashMap<String, (String, AmazonTermSku)>,
    receipts: HashMap<String, Receipt>,
    /// Customers (and parent SKUs) that had their free trial.
    trials_used: HashSet<(String, String)>,
    /// When each receipt next has something happen.
    schedule: BTreeSet<(DateTime<Utc>, String)>,
    /// The time each receipt is filed under in `schedule`.
    scheduled: HashMap<String, DateTime<Utc>>,
    next_seq: u64,
    notices: Vec<Notice>,
}

impl Store {
    pub fn new(products: &[AmazonSubscriptionProduct]) -> Self {
        Self {
            skus: products
                .iter()
                .flat_map(|product| {
                    product.terms.iter().map(|term| {
                        (
                            term.term_sku.clone(),
                            (product.parent_sku.clone(), term.clone()),
                        )
                    })
                })
                .collect(),
            receipts: HashMap::new(),
            trials_used: HashSet::new(),
            schedule: BTreeSet::new(),
            scheduled: HashMap::new(),
            next_seq: 0,
            notices: Vec::new(),
        }
    }

    /// Forgets every receipt and customer.
    pub fn clear(&mut self) {
        self.receipts.clear();
        self.trials_used.clear();
        self.schedule.clear();
        self.scheduled.clear();
        self.notices.clear();
    }

    /// What happened since the last call, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Runs every transition due up to `now`, in time order, each at its own time.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        while let Some((at, receipt_id)) = self.schedule.first().cloned() {
            if at > now {
                break;
            }
            self.schedule.remove(&(at, receipt_id.clone()));
            self.scheduled.remove(&receipt_id);
            if let Some(receipt) = self.receipts.get_mut(&receipt_id) {
                receipt.step(at, &mut self.notices);
            }
            self.reschedule(&receipt_id);
        }
    }

    fn reschedule(&mut self, receipt_id: &str) {
        if let Some(old) = self.scheduled.remove(receipt_id) {
            self.schedule.remove(&(old, receipt_id.to_owned()));
        }
        if let Some(next) = self.receipts.get(receipt_id).and_then(Receipt::next_event) {
            self.schedule.insert((next, receipt_id.to_owned()));
            self.scheduled.insert(receipt_id.to_owned(), next);
        }
    }

    pub fn receipt(&self, receipt_id: &str) -> Result<&Receipt, Refusal> {
        self.receipts
            .get(receipt_id)
            .ok_or_else(|| Refusal::NoSuchReceipt(receipt_id.to_owned()))
    }

    /// Every receipt, oldest first.
    pub fn receipts(&self) -> Vec<&Receipt> {
        let mut receipts: Vec<&Receipt> = self.receipts.values().collect();
        receipts.sort_by_key(|receipt| receipt.seq);
        receipts
    }

    /// Applies `change` to a receipt, then files it under its next event.
    fn change<T>(
        &mut self,
        receipt_id: &str,
        change: impl FnOnce(&mut Receipt, &mut Vec<Notice>) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        let receipt = self
            .receipts
            .get_mut(receipt_id)
            .ok_or_else(|| Refusal::NoSuchReceipt(receipt_id.to_owned()))?;
        let mut notices = Vec::new();
        let result = change(receipt, &mut notices)?;
        self.notices.append(&mut notices);
        self.reschedule(receipt_id);
        Ok(result)
    }

    /// The customer buys a term SKU on their device: a new receipt (`SUBSCRIPTION_PURCHASED`),
    /// with the term's free trial if the customer never had one for the subscription.
    pub fn purchase(&mut self, order: &Order, now: DateTime<Utc>) -> Result<&Receipt, Refusal> {
        let (parent_sku, term) = self
            .skus
            .get(&order.term_sku)
            .cloned()
            .ok_or_else(|| Refusal::NoSuchSku(order.term_sku.clone()))?;
        let running = self.receipts.values().any(|receipt| {
            receipt.user_id == order.user_id
                && receipt.parent_sku == parent_sku
                && receipt.environment == order.environment
                && !receipt.ended()
        });
        if running {
            return Err(Refusal::AlreadySubscribed(parent_sku));
        }
        let trial_key = (order.user_id.clone(), parent_sku.clone());
        let trial_end = term
            .free_trial
            .filter(|_| !self.trials_used.contains(&trial_key))
            .map(|trial| trial.after(now, 1));
        if trial_end.is_some() {
            self.trials_used.insert(trial_key);
        }
        let receipt_id = loop {
            let candidate = new_id(":3:11");
            if !self.receipts.contains_key(&candidate) {
                break candidate;
            }
        };
        self.next_seq += 1;
        let mut receipt = Receipt {
            seq: self.next_seq,
            receipt_id: receipt_id.clone(),
            user_id: order.user_id.clone(),
            environment: order.environment,
            live_app_testing: order.live_app_testing,
            country_code: order.country_code.clone(),
            marketplace: order.marketplace.clone(),
            parent_sku,
            term,
            purchase_date: now,
            trial_end,
            anchor: trial_end.unwrap_or(now),
            periods: u32::from(trial_end.is_none()),
            phase: Phase::Active,
            auto_renewing: true,
            auto_renew_off_at: None,
            scheduled_to_end_done: false,
            fail_next_renewal: None,
            revoked: false,
            payments: Vec::new(),
        };
        match trial_end {
            Some(end) => receipt.payments.push(Payment {
                period_start: now,
                period_end: end,
                amount_minor: 0,
                currency: receipt.term.currency.clone(),
                free_trial: true,
                refunded_at: None,
            }),
            None => receipt.record_payment(now),
        }
        self.notices.push(receipt.notice(RtnType::Purchased, now));
        self.receipts.insert(receipt_id.clone(), receipt);
        self.reschedule(&receipt_id);
        self.receipt(&receipt_id)
    }

    /// Makes the receipt's next renewal fail. Nothing is told until it is due.
    pub fn fail_next_renewal(
        &mut self,
        receipt_id: &str,
        failure: RenewalFailure,
    ) -> Result<(), Refusal> {
        self.change(receipt_id, |receipt, _| {
            if receipt.phase != Phase::Active || !receipt.auto_renewing {
                return Err(Refusal::WrongState(
                    "only an active, auto-renewing subscription has a next renewal to fail".into(),
                ));
            }
            receipt.fail_next_renewal = Some(failure);
            Ok(())
        })
    }

    /// The customer fixes the payment: a renewal in its grace period is charged from the
    /// missed date (`SUBSCRIPTION_OUT_OF_GRACE_PERIOD`), one in billing retry starts a new
    /// term now (`SUBSCRIPTION_RENEWED`), and a failure armed for the next renewal is
    /// disarmed.
    pub fn recover(&mut self, receipt_id: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.change(receipt_id, |receipt, notices| match receipt.phase {
            Phase::GracePeriod { .. } => {
                receipt.pay_next_term();
                notices.push(receipt.notice(RtnType::OutOfGracePeriod, now));
                Ok(())
            }
            Phase::BillingRetry { .. } => {
                receipt.anchor = now;
                receipt.periods = 1;
                receipt.phase = Phase::Active;
                receipt.scheduled_to_end_done = false;
                receipt.record_payment(now);
                notices.push(receipt.notice(RtnType::Renewed, now));
                Ok(())
            }
            Phase::Active if receipt.fail_next_renewal.is_some() => {
                receipt.fail_next_renewal = None;
                Ok(())
            }
            _ => Err(Refusal::WrongState(
                "the subscription has no failed or failing renewal to recover".into(),
            )),
        })
    }

    /// The customer turns auto-renewal on or off (`SUBSCRIPTION_AUTO_RENEWAL_ON`/`_OFF`).
    /// With it off the subscription expires at the end of the term.
    pub fn set_auto_renew(
        &mut self,
        receipt_id: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.change(receipt_id, |receipt, notices| {
            if receipt.phase != Phase::Active {
                return Err(Refusal::WrongState(
                    "auto-renewal can only be changed on an active subscription".into(),
                ));
            }
            if receipt.auto_renewing == enabled {
                return Err(Refusal::WrongState(format!(
                    "auto-renewal is already {}",
                    if enabled { "on" } else { "off" }
                )));
            }
            receipt.auto_renewing = enabled;
            if enabled {
                receipt.auto_renew_off_at = None;
                receipt.scheduled_to_end_done = false;
                notices.push(receipt.notice(RtnType::AutoRenewalOn, now));
            } else {
                receipt.auto_renew_off_at = Some(now);
                receipt.fail_next_renewal = None;
                // Sent only when the term is still at least the lead time from its end.
                receipt.scheduled_to_end_done = receipt
                    .term
                    .term
                    .scheduled_to_end_lead()
                    .is_none_or(|lead| now >= receipt.paid_until() - lead);
                notices.push(receipt.notice(RtnType::AutoRenewalOff, now));
            }
            Ok(())
        })
    }

    /// Ends the receipt now (`SUBSCRIPTION_CANCELLED`), refunding its latest payment: the
    /// customer cancelling the order (`cancelReason` 1) or customer service refunding it
    /// (`cancelReason` 2).
    pub fn cancel(
        &mut self,
        receipt_id: &str,
        reason: CancelReason,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.change(receipt_id, |receipt, notices| {
            if receipt.ended() {
                return Err(Refusal::WrongState("the subscription has ended".into()));
            }
            let how = match reason {
                CancelReason::Customer => Ending::CancelledByCustomer,
                CancelReason::System => Ending::Refunded,
            };
            receipt.end(now, reason, how);
            receipt.refund_latest_payment(now);
            notices.push(receipt.notice(RtnType::Cancelled, now));
            Ok(())
        })
    }

    /// Revokes the receipt: RVS answers 410 for it from now on (`SUBSCRIPTION_CANCELLED`); a
    /// running subscription ends now and its latest payment is refunded.
    pub fn revoke(&mut self, receipt_id: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.change(receipt_id, |receipt, notices| {
            if receipt.revoked {
                return Err(Refusal::WrongState("the receipt is already revoked".into()));
            }
            receipt.revoked = true;
            if !receipt.ended() {
                receipt.end(now, CancelReason::System, Ending::Revoked);
                receipt.refund_latest_payment(now);
            }
            notices.push(receipt.notice(RtnType::Cancelled, now));
            Ok(())
        })
    }
}

impl AmazonTerm {
    /// How Amazon writes the term in RVS (`term`).
    pub fn text(self) -> &'static str {
        match self {
            Self::Weekly => "1 Week",
            Self::BiWeekly => "2 Weeks",
            Self::Monthly => "1 Month",
            Self::BiMonthly => "2 Months",
            Self::Quarterly => "3 Months",
            Self::SemiAnnually => "6 Months",
            Self::Annually => "1 Year",
        }
    }

    pub fn period(self) -> AmazonPeriod {
        match self {
            Self::Weekly => AmazonPeriod::Days(7),
            Self::BiWeekly => AmazonPeriod::Days(14),
            Self::Monthly => AmazonPeriod::Months(1),
            Self::BiMonthly => AmazonPeriod::Months(2),
            Self::Quarterly => AmazonPeriod::Months(3),
            Self::SemiAnnually => AmazonPeriod::Months(6),
            Self::Annually => AmazonPeriod::Months(12),
        }
    }

    /// How long before the end of a term that will not renew Amazon sends
    /// `SUBSCRIPTION_SCHEDULED_TO_END`: 10 days (monthly), 30 days (semi-annual and annual);
    /// Amazon says nothing of weekly terms, which get none here.
    pub fn scheduled_to_end_lead(self) -> Option<TimeDelta> {
        match self {
            Self::Weekly | Self::BiWeekly => None,
            Self::Monthly | Self::BiMonthly | Self::Quarterly => Some(TimeDelta::days(10)),
            Self::SemiAnnually | Self::Annually => Some(TimeDelta::days(30)),
        }
    }
}

impl AmazonPeriod {
    /// `periods` periods after `from`. Months keep the day of the month where the month has
    /// it (else its last day), counted from `from` each time so that they do not drift.
    pub fn after(self, from: DateTime<Utc>, periods: u32) -> DateTime<Utc> {
        match self {
            Self::Days(days) => from + TimeDelta::days(i64::from(days) * i64::from(periods)),
            Self::Months(months) => from
                .checked_add_months(chrono::Months::new(months.saturating_mul(periods)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// An id shaped like Amazon's user and receipt ids: URL-safe base64 of 32 random bytes
/// (with its `=`), then `suffix` (`:3:11` for a subscription receipt).
pub fn new_id(suffix: &str) -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{}{suffix}", URL_SAFE.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn store(free_trial: Option<AmazonPeriod>) -> Store {
        Store::new(&[AmazonSubscriptionProduct {
            parent_sku: "premium".into(),
            terms: vec![AmazonTermSku {
                term_sku: "premium.monthly".into(),
                term: AmazonTerm::Monthly,
                price_minor: 999,
                currency: "USD".into(),
                free_trial,
                grace_period_days: 6,
                billing_retry_days: 30,
            }],
        }])
    }

    fn order(user: &str) -> Order {
        Order {
            term_sku: "premium.monthly".into(),
            user_id: user.into(),
            environment: Environment::Production,
            live_app_testing: false,
            country_code: "US".into(),
            marketplace: "US".into(),
        }
    }

    fn kinds(store: &mut Store) -> Vec<&'static str> {
        store
            .take_notices()
            .into_iter()
            .map(|notice| notice.notification_type.as_str())
            .collect()
    }

    #[test]
    fn renewals_keep_the_receipt_and_the_day_of_the_month() {
        let mut store = store(None);
        let id = store
            .purchase(&order("u"), at("2030-01-31T10:00:00Z"))
            .unwrap()
            .receipt_id
            .clone();
        assert!(id.ends_with("=:3:11"), "{id}");
        store.settle(at("2030-05-01T00:00:00Z"));
        let receipt = store.receipt(&id).unwrap();
        assert_eq!(receipt.paid_until(), at("2030-05-31T10:00:00Z"));
        let rvs = receipt.rvs();
        assert_eq!(
            rvs.purchase_date,
            at("2030-01-31T10:00:00Z").timestamp_millis()
        );
        assert_eq!(
            rvs.renewal_date,
            Some(at("2030-05-31T10:00:00Z").timestamp_millis())
        );
        assert_eq!(
            receipt
                .payments
                .iter()
                .map(|payment| payment.period_start)
                .collect::<Vec<_>>(),
            [
                at("2030-01-31T10:00:00Z"),
                at("2030-02-28T10:00:00Z"),
                at("2030-03-31T10:00:00Z"),
                at("2030-04-30T10:00:00Z"),
            ]
        );
        assert_eq!(
            kinds(&mut store),
            [
                "SUBSCRIPTION_PURCHASED",
                "SUBSCRIPTION_RENEWED",
                "SUBSCRIPTION_RENEWED",
                "SUBSCRIPTION_RENEWED"
            ]
        );
    }

    #[test]
    fn a_grace_period_not_recovered_ends_in_a_system_cancellation() {
        let mut store = store(None);
        let id = store
            .purchase(&order("u"), at("2030-01-01T00:00:00Z"))
            .unwrap()
            .receipt_id
            .clone();
        store
            .fail_next_renewal(&id, RenewalFailure::GracePeriod)
            .unwrap();
        store.settle(at("2030-02-03T00:00:00Z"));
        let rvs = store.receipt(&id).unwrap().rvs();
        assert_eq!(
            rvs.grace_period_end_date,
            Some(at("2030-02-07T00:00:00Z").timestamp_millis())
        );
        assert_eq!(rvs.cancel_date, None);
        store.settle(at("2030-03-01T00:00:00Z"));
        let rvs = store.receipt(&id).unwrap().rvs();
        assert_eq!(rvs.cancel_reason, Some(2));
        assert_eq!(
            rvs.cancel_date,
            Some(at("2030-02-07T00:00:00Z").timestamp_millis())
        );
        assert_eq!(rvs.auto_renewing, Some(false));
        assert_eq!(
            kinds(&mut store),
            [
                "SUBSCRIPTION_PURCHASED",
                "SUBSCRIPTION_IN_GRACE_PERIOD",
                "SUBSCRIPTION_CANCELLED"
            ]
        );
    }

    #[test]
    fn recovery_from_grace_keeps_the_date_and_from_billing_retry_starts_anew() {
        let mut store = store(None);
        let id = store
            .purchase(&order("u"), at("2030-01-01T00:00:00Z"))
            .unwrap()
            .receipt_id
            .clone();
        store
            .fail_next_renewal(&id, RenewalFailure::GracePeriod)
            .unwrap();
        store.settle(at("2030-02-03T00:00:00Z"));
        store.recover(&id, at("2030-02-03T00:00:00Z")).unwrap();
        assert_eq!(
            store.receipt(&id).unwrap().paid_until(),
            at("2030-03-01T00:00:00Z")
        );
        store
            .fail_next_renewal(&id, RenewalFailure::BillingRetry)
            .unwrap();
        store.settle(at("2030-03-10T00:00:00Z"));
        let receipt = store.receipt(&id).unwrap();
        assert!(!receipt.has_access(at("2030-03-10T00:00:00Z")));
        assert_eq!(receipt.rvs().cancel_date, None);
        assert_eq!(receipt.rvs().auto_renewing, Some(true));
        store.recover(&id, at("2030-03-10T00:00:00Z")).unwrap();
        assert_eq!(
            store.receipt(&id).unwrap().paid_until(),
            at("2030-04-10T00:00:00Z")
        );
        assert_eq!(
            kinds(&mut store),
            [
                "SUBSCRIPTION_PURCHASED",
                "SUBSCRIPTION_IN_GRACE_PERIOD",
                "SUBSCRIPTION_OUT_OF_GRACE_PERIOD",
                "SUBSCRIPTION_RENEWED"
            ]
        );
    }

    #[test]
    fn auto_renewal_off_schedules_the_end_and_expires() {
        let mut store = store(None);
        let id = store
            .purchase(&order("u"), at("2030-01-01T00:00:00Z"))
            .unwrap()
            .receipt_id
            .clone();
        store
            .set_auto_renew(&id, false, at("2030-01-05T00:00:00Z"))
            .unwrap();
        let rvs = store.receipt(&id).unwrap().rvs();
        assert_eq!(
            rvs.cancel_date,
            Some(at("2030-02-01T00:00:00Z").timestamp_millis())
        );
        assert_eq!(rvs.cancel_reason, Some(1));
        store.settle(at("2030-03-01T00:00:00Z"));
        let notices = store.take_notices();
        let times: Vec<(&str, DateTime<Utc>)> = notices
            .iter()
            .map(|notice| (notice.notification_type.as_str(), notice.at))
            .collect();
        assert_eq!(
            times,
            [
                ("SUBSCRIPTION_PURCHASED", at("2030-01-01T00:00:00Z")),
                ("SUBSCRIPTION_AUTO_RENEWAL_OFF", at("2030-01-05T00:00:00Z")),
                ("SUBSCRIPTION_SCHEDULED_TO_END", at("2030-01-22T00:00:00Z")),
                ("SUBSCRIPTION_EXPIRED", at("2030-02-01T00:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_free_trial_is_given_once_and_converts() {
        let mut store = store(Some(AmazonPeriod::Days(7)));
        let id = store
            .purchase(&order("u"), at("2030-01-01T00:00:00Z"))
            .unwrap()
            .receipt_id
            .clone();
        let rvs = store.receipt(&id).unwrap().rvs();
        assert_eq!(
            rvs.free_trial_end_date,
            Some(at("2030-01-08T00:00:00Z").timestamp_millis())
        );
        store.settle(at("2030-01-09T00:00:00Z"));
        let receipt = store.receipt(&id).unwrap();
        assert_eq!(receipt.rvs().free_trial_end_date, None);
        assert_eq!(receipt.paid_until(), at("2030-02-08T00:00:00Z"));
        store
            .cancel(&id, CancelReason::Customer, at("2030-01-10T00:00:00Z"))
            .unwrap();
        let again = store
            .purchase(&order("u"), at("2030-01-11T00:00:00Z"))
            .unwrap();
        assert_eq!(again.trial_end, None);
        assert_eq!(
            kinds(&mut store),
            [
                "SUBSCRIPTION_PURCHASED",
                "SUBSCRIPTION_CONVERTED_FREE_TRIAL_TO_PAID",
                "SUBSCRIPTION_CANCELLED",
                "SUBSCRIPTION_PURCHASED"
            ]
        );
    }

    #[test]
    fn one_running_subscription_per_customer_and_product() {
        let mut store = store(None);
        store
            .purchase(&order("u"), at("2030-01-01T00:00:00Z"))
            .unwrap();
        assert_eq!(
            store
                .purchase(&order("u"), at("2030-01-02T00:00:00Z"))
                .unwrap_err(),
            Refusal::AlreadySubscribed("premium".into())
        );
        store
            .purchase(&order("v"), at("2030-01-02T00:00:00Z"))
            .unwrap();
    }
}
