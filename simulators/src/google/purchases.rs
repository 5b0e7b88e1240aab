//! The developer account's purchases and their lifecycle on the host's clock, without HTTP.
//!
//! A subscription is paid period by period from a billing anchor (the purchase, or the day
//! it came back from account hold or a pause), so monthly renewals keep their day of the
//! month instead of drifting. When a period ends the subscription renews — a new order,
//! `GPA.…..0`, `..1`, … and `SUBSCRIPTION_RENEWED` — unless it was cancelled (it expires),
//! a pause was scheduled (it pauses), or its payments are declined: then it enters the
//! base plan's grace period (access continues), then account hold (no access), then
//! expires, each with its notification, unless the payment is fixed first (recovered).
//!
//! Google refunds and revokes a purchase that is not acknowledged within three days
//! ([`ACKNOWLEDGEMENT_WINDOW`]); with `enforce_acknowledgement` this does the same, for
//! subscriptions and one-time products alike (consuming a product acknowledges it).
//!
//! Nothing here reads a clock: operations are given the time, and [`Purchases::settle`]
//! runs every transition that fell due up to a time, in order, each at its own time, from a
//! queue of when each purchase next has something happen. What Google Play would report is
//! collected as [`Notice`]s for the caller to publish.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Months, TimeDelta, Utc};
use rand::Rng;

use super::notifications::{Notice, SubscriptionEvent, VoidedProductType};
use super::{GoogleApplication, GoogleBasePlan, GoogleBillingPeriod};

/// How long a purchase may stay unacknowledged before Google refunds and revokes it.
pub const ACKNOWLEDGEMENT_WINDOW: TimeDelta = TimeDelta::days(3);

/// How long after its expiry Google still answers for a subscription (then 410).
pub const QUERYABLE_AFTER_EXPIRY: TimeDelta = TimeDelta::days(60);

/// The longest pause Google Play offers, in billing months.
pub const MAX_PAUSE_MONTHS: u32 = 3;

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no application has the package name {0:?}")]
    UnknownApplication(String),
    #[error("no such purchase token")]
    UnknownPurchase,
    #[error("the purchase's state does not allow this")]
    InvalidState,
    #[error("the product purchase is not owned (consumed or refunded)")]
    NotOwned,
    #[error("{package} has no subscription {product_id:?}")]
    UnknownSubscription { package: String, product_id: String },
    #[error("the subscription {product_id:?} has no base plan {base_plan_id:?}")]
    UnknownBasePlan {
        product_id: String,
        base_plan_id: String,
    },
    #[error("{package} has no one-time product {product_id:?}")]
    UnknownProduct { package: String, product_id: String },
    #[error("{0}")]
    InvalidRequest(String),
}

/// Where a subscription is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Paid until the end of the current period.
    Active,
    /// The renewal failed; access continues until `grace_end`.
    InGracePeriod { grace_end: DateTime<Utc> },
    /// The renewal failed and any grace period is over: no access from `since` until the
    /// payment is fixed, or the subscription expires at `hold_end`.
    OnHold {
        since: DateTime<Utc>,
        hold_end: DateTime<Utc>,
    },
    /// Paused from `since`; resumes (and is charged) at `resume_at`.
    Paused {
        since: DateTime<Utc>,
        resume_at: DateTime<Utc>,
    },
    /// Ended at `at`.
    Expired { at: DateTime<Utc> },
}

/// Who ended the auto-renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelledBy {
    /// The user, in the Play Store, with the cancel survey's answer (Google's v1 numbers:
    /// 0 other, 1 does not use it enough, 2 technical issues, 3 cost, 4 found a better app).
    User { survey_reason: Option<u8> },
    /// Google, after the payment could not be taken.
    System,
    /// A newer purchase replaced it (upgrade, downgrade, resubscription).
    Replaced,
    /// The developer, through the API.
    Developer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancellation {
    pub by: CancelledBy,
    pub at: DateTime<Utc>,
}

/// How a revocation refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// The latest order in full: a voided purchase notification.
    Full,
    /// The unused part only: no voided purchase.
    Prorated,
}

/// A subscription purchase: one purchase token, renewed order by order.
#[derive(Debug, Clone)]
pub struct Subscription {
    seq: u64,
    pub token: String,
    pub package_name: String,
    pub product_id: String,
    pub plan: GoogleBasePlan,
    pub region_code: String,
    pub obfuscated_account_id: Option<String>,
    pub obfuscated_profile_id: Option<String>,
    /// Bought by a license tester.
    pub test_purchase: bool,
    /// The purchase this one replaced.
    pub linked_purchase_token: Option<String>,
    pub start_time: DateTime<Utc>,
    first_order_id: String,
    /// Successful renewal orders so far.
    renewals: u32,
    /// Where the current run of paid periods started.
    anchor: DateTime<Utc>,
    /// Paid periods since `anchor`.
    periods: u32,
    pub phase: Phase,
    pub auto_renew: bool,
    pub cancellation: Option<Cancellation>,
    /// Billing months of a pause that starts at the end of the current period.
    pub scheduled_pause: Option<u32>,
    pub acknowledged: bool,
    /// Renewals fail until the payment is fixed.
    pub payment_declined: bool,
    /// Orders refunded so far.
    refunded_orders: Vec<String>,
}

impl Subscription {
    /// The end of the paid periods.
    pub fn paid_until(&self) -> DateTime<Utc> {
        self.plan.billing_period.after(self.anchor, self.periods)
    }

    /// The order of the latest successful payment: the first order, then `..0`, `..1`, …
    pub fn latest_order_id(&self) -> String {
        match self.renewals {
            0 => self.first_order_id.clone(),
            renewals => format!("{}..{}", self.first_order_id, renewals - 1),
        }
    }

    /// What Google reports as the expiry time: the end of the paid periods, of the grace
    /// period, or (on hold, paused, expired) when access ended.
    pub fn expiry_time(&self) -> DateTime<Utc> {
        match self.phase {
            Phase::Active => self.paid_until(),
            Phase::InGracePeriod { grace_end } => grace_end,
            Phase::OnHold { since, .. } | Phase::Paused { since, .. } => since,
            Phase::Expired { at } => at,
        }
    }

    /// Changes whenever anything `purchases.subscriptionsv2.get` shows does (Google's
    /// `etag`).
    pub fn etag(&self) -> String {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let version = format!(
            "{}|{}|{}|{}|{:?}|{}|{}|{:?}|{:?}",
            self.token,
            self.renewals,
            self.anchor.timestamp_millis(),
            self.periods,
            self.phase,
            self.auto_renew,
            self.acknowledged,
            self.cancellation,
            self.scheduled_pause,
        );
        let digest = Sha256::digest(version.as_bytes());
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..18])
    }

    pub fn expired(&self) -> bool {
        matches!(self.phase, Phase::Expired { .. })
    }

    /// Expired so long ago that Google no longer answers for it.
    pub fn gone(&self, now: DateTime<Utc>) -> bool {
        matches!(self.phase, Phase::Expired { at } if now - at > QUERYABLE_AFTER_EXPIRY)
    }

    /// When something next happens to it on its own.
    fn next_event(&self, enforce_acknowledgement: bool) -> Option<DateTime<Utc>> {
        let phase_ends = match self.phase {
            Phase::Active => Some(self.paid_until()),
            Phase::InGracePeriod { grace_end } => Some(grace_end),
            Phase::OnHold { hold_end, .. } => Some(hold_end),
            Phase::Paused { resume_at, .. } => Some(resume_at),
            Phase::Expired { .. } => None,
        };
        let deadline = (enforce_acknowledgement && !self.acknowledged && !self.expired())
            .then(|| self.start_time + ACKNOWLEDGEMENT_WINDOW);
        match (phase_ends, deadline) {
            (Some(ends), Some(deadline)) => Some(ends.min(deadline)),
            (ends, deadline) => ends.or(deadline),
        }
    }

    fn notice(&self, event: SubscriptionEvent, at: DateTime<Utc>) -> Notice {
        Notice::Subscription {
            package_name: self.package_name.clone(),
            at,
            event,
            purchase_token: self.token.clone(),
            subscription_id: self.product_id.clone(),
        }
    }

    /// Runs what is due at `at`.
    fn step(
        &mut self,
        at: DateTime<Utc>,
        enforce_acknowledgement: bool,
        notices: &mut Vec<Notice>,
    ) {
        if enforce_acknowledgement
            && !self.acknowledged
            && !self.expired()
            && at >= self.start_time + ACKNOWLEDGEMENT_WINDOW
        {
            self.revoke(Refund::Full, CancelledBy::System, at, notices);
            return;
        }
        match self.phase {
            Phase::Active if at >= self.paid_until() => {
                if !self.auto_renew {
                    self.end(at, CancelledBy::System, notices);
                } else if let Some(months) = self.scheduled_pause.take() {
                    let since = self.paid_until();
                    self.phase = Phase::Paused {
                        since,
                        resume_at: GoogleBillingPeriod::Months(months).after(since, 1),
                    };
                    notices.push(self.notice(SubscriptionEvent::Paused, at));
                } else if self.payment_declined {
                    self.payment_failed(at, true, notices);
                } else {
                    self.periods += 1;
                    self.renewals += 1;
                    notices.push(self.notice(SubscriptionEvent::Renewed, at));
                }
            }
            Phase::InGracePeriod { grace_end } if at >= grace_end => {
                if self.auto_renew {
                    self.payment_failed(at, false, notices);
                } else {
                    self.end(at, CancelledBy::System, notices);
                }
            }
            Phase::OnHold { hold_end, .. } if at >= hold_end => {
                self.end(at, CancelledBy::System, notices);
            }
            Phase::Paused { resume_at, .. } if at >= resume_at => {
                if self.payment_declined {
                    // A subscription that cannot be charged on resuming skips the grace
                    // period.
                    self.payment_failed(at, false, notices);
                } else {
                    self.charge_anew(at);
                    notices.push(self.notice(SubscriptionEvent::Recovered, at));
                }
            }
            _ => {}
        }
    }

    /// The payment at `at` failed: grace period (when `grace` and the plan has one), else
    /// account hold (when the plan has one), else the end.
    fn payment_failed(&mut self, at: DateTime<Utc>, grace: bool, notices: &mut Vec<Notice>) {
        if grace && self.plan.grace_period_days > 0 {
            self.phase = Phase::InGracePeriod {
                grace_end: at + TimeDelta::days(i64::from(self.plan.grace_period_days)),
            };
            notices.push(self.notice(SubscriptionEvent::InGracePeriod, at));
        } else if self.plan.account_hold_days > 0 {
            self.phase = Phase::OnHold {
                since: at,
                hold_end: at + TimeDelta::days(i64::from(self.plan.account_hold_days)),
            };
            notices.push(self.notice(SubscriptionEvent::OnHold, at));
        } else {
            self.end(at, CancelledBy::System, notices);
        }
    }

    /// A new run of paid periods from `at` (after account hold or a pause).
    fn charge_anew(&mut self, at: DateTime<Utc>) {
        self.anchor = at;
        self.periods = 1;
        self.renewals += 1;
        self.phase = Phase::Active;
    }

    /// Expires at `at`; `by` is recorded unless the subscription was already cancelled.
    fn end(&mut self, at: DateTime<Utc>, by: CancelledBy, notices: &mut Vec<Notice>) {
        self.phase = Phase::Expired { at };
        self.auto_renew = false;
        self.scheduled_pause = None;
        if self.cancellation.is_none() {
            self.cancellation = Some(Cancellation { by, at });
        }
        notices.push(self.notice(SubscriptionEvent::Expired, at));
    }

    /// Ends access now, refunding as told.
    fn revoke(
        &mut self,
        refund: Refund,
        by: CancelledBy,
        at: DateTime<Utc>,
        notices: &mut Vec<Notice>,
    ) {
        self.phase = Phase::Expired { at };
        self.auto_renew = false;
        self.scheduled_pause = None;
        if self.cancellation.is_none() {
            self.cancellation = Some(Cancellation { by, at });
        }
        notices.push(self.notice(SubscriptionEvent::Revoked, at));
        if refund == Refund::Full {
            self.refund_latest_order(at, notices);
        }
    }

    fn refund_latest_order(&mut self, at: DateTime<Utc>, notices: &mut Vec<Notice>) {
        let order_id = self.latest_order_id();
        if self.refunded_orders.contains(&order_id) {
            return;
        }
        self.refunded_orders.push(order_id.clone());
        notices.push(Notice::Voided {
            package_name: self.package_name.clone(),
            at,
            purchase_token: self.token.clone(),
            order_id,
            product_type: VoidedProductType::Subscription,
        });
    }
}

/// A one-time product purchase.
#[derive(Debug, Clone)]
pub struct ProductPurchase {
    seq: u64,
    pub token: String,
    pub package_name: String,
    pub product_id: String,
    pub order_id: String,
    pub purchase_time: DateTime<Utc>,
    pub quantity: u32,
    pub region_code: String,
    pub obfuscated_account_id: Option<String>,
    pub obfuscated_profile_id: Option<String>,
    pub test_purchase: bool,
    pub acknowledged: bool,
    pub consumed: bool,
    /// Refunded (purchase state "canceled") at.
    pub refunded_at: Option<DateTime<Utc>>,
}

impl ProductPurchase {
    fn next_event(&self, enforce_acknowledgement: bool) -> Option<DateTime<Utc>> {
        (enforce_acknowledgement && !self.acknowledged && self.refunded_at.is_none())
            .then(|| self.purchase_time + ACKNOWLEDGEMENT_WINDOW)
    }

    fn refund(&mut self, at: DateTime<Utc>, notices: &mut Vec<Notice>) {
        self.refunded_at = Some(at);
        notices.push(Notice::Voided {
            package_name: self.package_name.clone(),
            at,
            purchase_token: self.token.clone(),
            order_id: self.order_id.clone(),
            product_type: VoidedProductType::OneTime,
        });
    }
}

/// A subscription bought in the Play Store.
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub package_name: String,
    pub product_id: String,
    /// Default: the subscription's first base plan.
    pub base_plan_id: Option<String>,
    pub region_code: String,
    pub obfuscated_account_id: Option<String>,
    pub obfuscated_profile_id: Option<String>,
    pub test_purchase: bool,
    /// The purchase this one replaces (upgrade, downgrade, resubscription): it ends now.
    pub linked_purchase_token: Option<String>,
}

/// A one-time product bought in the Play Store.
#[derive(Debug, Clone, Default)]
pub struct NewProductPurchase {
    pub package_name: String,
    pub product_id: String,
    pub quantity: u32,
    pub region_code: String,
    pub obfuscated_account_id: Option<String>,
    pub obfuscated_profile_id: Option<String>,
    pub test_purchase: bool,
}

/// What an application sells.
struct Catalogue {
    subscriptions: HashMap<String, Vec<GoogleBasePlan>>,
    one_time_products: HashSet<String>,
}

/// Every purchase of the developer account's applications.
pub struct Purchases {
    applications: HashMap<String, Catalogue>,
    enforce_acknowledgement: bool,
    subscriptions: HashMap<String, Subscription>,
    products: HashMap<String, ProductPurchase>,
    /// When each purchase (by token) next has something happen.
    schedule: BTreeSet<(DateTime<Utc>, String)>,
    /// The time each token is filed under in `schedule`.
    scheduled: HashMap<String, DateTime<Utc>>,
    order_ids: HashSet<String>,
    next_seq: u64,
    /// What happened since the caller last took them.
    notices: Vec<Notice>,
}

impl Purchases {
    pub fn new(applications: &[GoogleApplication], enforce_acknowledgement: bool) -> Self {
        Self {
            applications: applications
                .iter()
                .map(|application| {
                    (
                        application.package_name.clone(),
                        Catalogue {
                            subscriptions: application
                                .subscriptions
                                .iter()
                                .map(|subscription| {
                                    (
                                        subscription.product_id.clone(),
                                        subscription.base_plans.clone(),
                                    )
                                })
                                .collect(),
                            one_time_products: application
                                .one_time_products
                                .iter()
                                .cloned()
                                .collect(),
                        },
                    )
                })
                .collect(),
            enforce_acknowledgement,
            subscriptions: HashMap::new(),
            products: HashMap::new(),
            schedule: BTreeSet::new(),
            scheduled: HashMap::new(),
            order_ids: HashSet::new(),
            next_seq: 0,
            notices: Vec::new(),
        }
    }

    /// Forgets every purchase.
    pub fn clear(&mut self) {
        self.subscriptions.clear();
        self.products.clear();
        self.schedule.clear();
        self.scheduled.clear();
        self.order_ids.clear();
        self.notices.clear();
    }

    /// What happened since the last call, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Runs every transition due up to `now`, in time order, each at its own time.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        while let Some((at, token)) = self.schedule.first().cloned() {
            if at > now {
                break;
            }
            self.schedule.remove(&(at, token.clone()));
            self.scheduled.remove(&token);
            if let Some(subscription) = self.subscriptions.get_mut(&token) {
                subscription.step(at, self.enforce_acknowledgement, &mut self.notices);
            } else if let Some(product) = self.products.get_mut(&token)
                && !product.acknowledged
                && product.refunded_at.is_none()
            {
                product.refund(at, &mut self.notices);
            }
            self.reschedule(&token);
        }
    }

    fn reschedule(&mut self, token: &str) {
        if let Some(old) = self.scheduled.remove(token) {
            self.schedule.remove(&(old, token.to_owned()));
        }
        let next = match self.subscriptions.get(token) {
            Some(subscription) => subscription.next_event(self.enforce_acknowledgement),
            None => self
                .products
                .get(token)
                .and_then(|product| product.next_event(self.enforce_acknowledgement)),
        };
        if let Some(next) = next {
            self.schedule.insert((next, token.to_owned()));
            self.scheduled.insert(token.to_owned(), next);
        }
    }

    pub fn has_application(&self, package_name: &str) -> bool {
        self.applications.contains_key(package_name)
    }

    fn check_application(&self, package_name: &str) -> Result<&Catalogue, Refusal> {
        self.applications
            .get(package_name)
            .ok_or_else(|| Refusal::UnknownApplication(package_name.to_owned()))
    }

    /// The package's subscription purchase with this token.
    pub fn subscription(&self, package_name: &str, token: &str) -> Result<&Subscription, Refusal> {
        self.check_application(package_name)?;
        self.subscriptions
            .get(token)
            .filter(|subscription| subscription.package_name == package_name)
            .ok_or(Refusal::UnknownPurchase)
    }

    fn subscription_mut(
        &mut self,
        package_name: &str,
        token: &str,
    ) -> Result<&mut Subscription, Refusal> {
        self.check_application(package_name)?;
        self.subscriptions
            .get_mut(token)
            .filter(|subscription| subscription.package_name == package_name)
            .ok_or(Refusal::UnknownPurchase)
    }

    /// The package's one-time product purchase with this token.
    pub fn product(&self, package_name: &str, token: &str) -> Result<&ProductPurchase, Refusal> {
        self.check_application(package_name)?;
        self.products
            .get(token)
            .filter(|product| product.package_name == package_name)
            .ok_or(Refusal::UnknownPurchase)
    }

    fn product_mut(
        &mut self,
        package_name: &str,
        token: &str,
    ) -> Result<&mut ProductPurchase, Refusal> {
        self.check_application(package_name)?;
        self.products
            .get_mut(token)
            .filter(|product| product.package_name == package_name)
            .ok_or(Refusal::UnknownPurchase)
    }

    /// The package of the subscription with this token.
    pub fn subscription_package(&self, token: &str) -> Result<String, Refusal> {
        self.subscriptions
            .get(token)
            .map(|subscription| subscription.package_name.clone())
            .ok_or(Refusal::UnknownPurchase)
    }

    /// The package of the one-time product purchase with this token.
    pub fn product_package(&self, token: &str) -> Result<String, Refusal> {
        self.products
            .get(token)
            .map(|product| product.package_name.clone())
            .ok_or(Refusal::UnknownPurchase)
    }

    /// Subscriptions, oldest first.
    pub fn subscriptions(&self) -> Vec<&Subscription> {
        let mut all: Vec<&Subscription> = self.subscriptions.values().collect();
        all.sort_by_key(|subscription| subscription.seq);
        all
    }

    /// One-time product purchases, oldest first.
    pub fn products(&self) -> Vec<&ProductPurchase> {
        let mut all: Vec<&ProductPurchase> = self.products.values().collect();
        all.sort_by_key(|product| product.seq);
        all
    }

    fn new_order_id(&mut self) -> String {
        let mut rng = rand::rng();
        loop {
            let digits: String = (0..17)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            let order_id = format!(
                "GPA.{}-{}-{}-{}",
                &digits[0..4],
                &digits[4..8],
                &digits[8..12],
                &digits[12..17]
            );
            if self.order_ids.insert(order_id.clone()) {
                return order_id;
            }
        }
    }

    fn new_token(&self) -> String {
        loop {
            let token = new_purchase_token();
            if !self.subscriptions.contains_key(&token) && !self.products.contains_key(&token) {
                return token;
            }
        }
    }

    /// A subscription bought at `now`: active, paid for its first period, unacknowledged.
    pub fn buy_subscription(
        &mut self,
        new: NewSubscription,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let catalogue = self.check_application(&new.package_name)?;
        let base_plans = catalogue
            .subscriptions
            .get(&new.product_id)
            .ok_or_else(|| Refusal::UnknownSubscription {
                package: new.package_name.clone(),
                product_id: new.product_id.clone(),
            })?;
        let plan = match &new.base_plan_id {
            Some(wanted) => base_plans
                .iter()
                .find(|plan| &plan.base_plan_id == wanted)
                .ok_or_else(|| Refusal::UnknownBasePlan {
                    product_id: new.product_id.clone(),
                    base_plan_id: wanted.clone(),
                })?,
            None => base_plans.first().ok_or_else(|| Refusal::UnknownBasePlan {
                product_id: new.product_id.clone(),
                base_plan_id: String::new(),
            })?,
        }
        .clone();
        if let Some(replaced) = &new.linked_purchase_token {
            let old = self
                .subscription_mut(&new.package_name, replaced)
                .map_err(|_| {
                    Refusal::InvalidRequest(format!(
                        "linkedPurchaseToken {replaced:?} is no subscription of {}",
                        new.package_name
                    ))
                })?;
            if !old.expired() {
                old.phase = Phase::Expired { at: now };
                old.auto_renew = false;
                old.scheduled_pause = None;
                old.cancellation = Some(Cancellation {
                    by: CancelledBy::Replaced,
                    at: now,
                });
            }
            self.reschedule(replaced);
        }
        let token = self.new_token();
        let first_order_id = self.new_order_id();
        self.next_seq += 1;
        let subscription = Subscription {
            seq: self.next_seq,
            token: token.clone(),
            package_name: new.package_name,
            product_id: new.product_id,
            plan,
            region_code: new.region_code,
            obfuscated_account_id: new.obfuscated_account_id,
            obfuscated_profile_id: new.obfuscated_profile_id,
            test_purchase: new.test_purchase,
            linked_purchase_token: new.linked_purchase_token,
            start_time: now,
            first_order_id,
            renewals: 0,
            anchor: now,
            periods: 1,
            phase: Phase::Active,
            auto_renew: true,
            cancellation: None,
            scheduled_pause: None,
            acknowledged: false,
            payment_declined: false,
            refunded_orders: Vec::new(),
        };
        self.notices
            .push(subscription.notice(SubscriptionEvent::Purchased, now));
        self.subscriptions.insert(token.clone(), subscription);
        self.reschedule(&token);
        self.subscription_of(&token)
    }

    fn subscription_of(&self, token: &str) -> Result<&Subscription, Refusal> {
        self.subscriptions
            .get(token)
            .ok_or(Refusal::UnknownPurchase)
    }

    /// A one-time product bought at `now`.
    pub fn buy_product(
        &mut self,
        new: NewProductPurchase,
        now: DateTime<Utc>,
    ) -> Result<&ProductPurchase, Refusal> {
        let catalogue = self.check_application(&new.package_name)?;
        if !catalogue.one_time_products.contains(&new.product_id) {
            return Err(Refusal::UnknownProduct {
                package: new.package_name,
                product_id: new.product_id,
            });
        }
        if new.quantity == 0 {
            return Err(Refusal::InvalidRequest(
                "quantity must be at least 1".into(),
            ));
        }
        let token = self.new_token();
        let order_id = self.new_order_id();
        self.next_seq += 1;
        let product = ProductPurchase {
            seq: self.next_seq,
            token: token.clone(),
            package_name: new.package_name,
            product_id: new.product_id,
            order_id,
            purchase_time: now,
            quantity: new.quantity,
            region_code: new.region_code,
            obfuscated_account_id: new.obfuscated_account_id,
            obfuscated_profile_id: new.obfuscated_profile_id,
            test_purchase: new.test_purchase,
            acknowledged: false,
            consumed: false,
            refunded_at: None,
        };
        self.notices.push(Notice::OneTimeProductPurchased {
            package_name: product.package_name.clone(),
            at: now,
            purchase_token: token.clone(),
            sku: product.product_id.clone(),
        });
        self.products.insert(token.clone(), product);
        self.reschedule(&token);
        self.products.get(&token).ok_or(Refusal::UnknownPurchase)
    }

    /// `purchases.subscriptions.acknowledge`. Acknowledging again changes nothing.
    pub fn acknowledge_subscription(
        &mut self,
        package_name: &str,
        product_id: &str,
        token: &str,
    ) -> Result<(), Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription.product_id != product_id {
            return Err(Refusal::UnknownPurchase);
        }
        if subscription.expired() {
            return Err(Refusal::InvalidState);
        }
        subscription.acknowledged = true;
        self.reschedule(token);
        Ok(())
    }

    /// The user (in the Play Store) or the developer (`purchases.subscriptions.cancel`)
    /// turns auto-renewal off: access continues to the end of the paid time, except on
    /// hold or paused, where there is none and the subscription ends now.
    pub fn cancel(
        &mut self,
        package_name: &str,
        token: &str,
        by: CancelledBy,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription.expired() {
            return Err(Refusal::InvalidState);
        }
        if subscription.auto_renew {
            subscription.auto_renew = false;
            subscription.scheduled_pause = None;
            subscription.cancellation = Some(Cancellation { by, at: now });
            let mut notices = vec![subscription.notice(SubscriptionEvent::Canceled, now)];
            if matches!(
                subscription.phase,
                Phase::OnHold { .. } | Phase::Paused { .. }
            ) {
                subscription.end(now, by, &mut notices);
            }
            self.notices.append(&mut notices);
        }
        self.reschedule(token);
        self.subscription_of(token)
    }

    /// The user restores a subscription they cancelled, before it expires (a developer's
    /// cancellation cannot be undone).
    pub fn restart(
        &mut self,
        package_name: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        let cancelled_by_user = matches!(
            subscription.cancellation,
            Some(Cancellation {
                by: CancelledBy::User { .. },
                ..
            })
        );
        if subscription.expired() || !cancelled_by_user {
            return Err(Refusal::InvalidState);
        }
        subscription.auto_renew = true;
        subscription.cancellation = None;
        let notice = subscription.notice(SubscriptionEvent::Restarted, now);
        self.notices.push(notice);
        self.reschedule(token);
        self.subscription_of(token)
    }

    /// From now on every charge of this subscription is declined, until [`Self::recover`].
    pub fn decline_payments(
        &mut self,
        package_name: &str,
        token: &str,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription.expired() {
            return Err(Refusal::InvalidState);
        }
        subscription.payment_declined = true;
        self.subscription_of(token)
    }

    /// The user fixes the payment method: charges stop being declined, and a subscription
    /// in its grace period (keeping its billing date) or on account hold (billed from now
    /// on) is charged now and recovered.
    pub fn recover(
        &mut self,
        package_name: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription.expired() {
            return Err(Refusal::InvalidState);
        }
        subscription.payment_declined = false;
        let recovered = match subscription.phase {
            Phase::InGracePeriod { .. } => {
                subscription.phase = Phase::Active;
                subscription.periods += 1;
                subscription.renewals += 1;
                true
            }
            Phase::OnHold { .. } => {
                subscription.charge_anew(now);
                true
            }
            _ => false,
        };
        if recovered {
            let notice = subscription.notice(SubscriptionEvent::Recovered, now);
            self.notices.push(notice);
        }
        self.reschedule(token);
        self.subscription_of(token)
    }

    /// The user pauses for `months` billing months from the end of the current period.
    pub fn schedule_pause(
        &mut self,
        package_name: &str,
        token: &str,
        months: u32,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        if !(1..=MAX_PAUSE_MONTHS).contains(&months) {
            return Err(Refusal::InvalidRequest(format!(
                "a pause lasts 1 to {MAX_PAUSE_MONTHS} months"
            )));
        }
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription.phase != Phase::Active || !subscription.auto_renew {
            return Err(Refusal::InvalidState);
        }
        subscription.scheduled_pause = Some(months);
        let notice = subscription.notice(SubscriptionEvent::PauseScheduleChanged, now);
        self.notices.push(notice);
        self.subscription_of(token)
    }

    /// Refunds the latest order in full (a voided purchase); the subscription goes on.
    pub fn refund_subscription(
        &mut self,
        package_name: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription
            .refunded_orders
            .contains(&subscription.latest_order_id())
        {
            return Err(Refusal::InvalidState);
        }
        let mut notices = Vec::new();
        subscription.refund_latest_order(now, &mut notices);
        self.notices.append(&mut notices);
        self.subscription_of(token)
    }

    /// Ends access now (`SUBSCRIPTION_REVOKED`), refunding as told.
    pub fn revoke_subscription(
        &mut self,
        package_name: &str,
        token: &str,
        refund: Refund,
        now: DateTime<Utc>,
    ) -> Result<&Subscription, Refusal> {
        let subscription = self.subscription_mut(package_name, token)?;
        if subscription.expired() {
            return Err(Refusal::InvalidState);
        }
        let mut notices = Vec::new();
        subscription.revoke(refund, CancelledBy::Developer, now, &mut notices);
        self.notices.append(&mut notices);
        self.reschedule(token);
        self.subscription_of(token)
    }

    /// `purchases.products.acknowledge`. Acknowledging again changes nothing.
    pub fn acknowledge_product(
        &mut self,
        package_name: &str,
        product_id: &str,
        token: &str,
    ) -> Result<(), Refusal> {
        let product = self.product_mut(package_name, token)?;
        if product.product_id != product_id {
            return Err(Refusal::UnknownPurchase);
        }
        if product.refunded_at.is_some() {
            return Err(Refusal::InvalidState);
        }
        product.acknowledged = true;
        self.reschedule(token);
        Ok(())
    }

    /// `purchases.products.consume`: the product can be bought again. Consuming
    /// acknowledges.
    pub fn consume_product(
        &mut self,
        package_name: &str,
        product_id: &str,
        token: &str,
    ) -> Result<(), Refusal> {
        let product = self.product_mut(package_name, token)?;
        if product.product_id != product_id {
            return Err(Refusal::UnknownPurchase);
        }
        if product.consumed || product.refunded_at.is_some() {
            return Err(Refusal::NotOwned);
        }
        product.consumed = true;
        product.acknowledged = true;
        self.reschedule(token);
        Ok(())
    }

    /// Refunds a one-time purchase (purchase state "canceled", a voided purchase).
    pub fn refund_product(
        &mut self,
        package_name: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&ProductPurchase, Refusal> {
        let product = self.product_mut(package_name, token)?;
        if product.refunded_at.is_some() {
            return Err(Refusal::InvalidState);
        }
        let mut notices = Vec::new();
        product.refund(now, &mut notices);
        self.notices.append(&mut notices);
        self.reschedule(token);
        self.products.get(token).ok_or(Refusal::UnknownPurchase)
    }
}

impl GoogleBillingPeriod {
    /// `periods` periods after `from`. Months keep the day of the month where the month
    /// has it (else its last day), counted from `from` each time so that they do not
    /// drift.
    pub fn after(self, from: DateTime<Utc>, periods: u32) -> DateTime<Utc> {
        match self {
            Self::Days(days) => from + TimeDelta::days(i64::from(days) * i64::from(periods)),
            Self::Months(months) => from
                .checked_add_months(Months::new(months.saturating_mul(periods)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// A token shaped like Google's: 24 lower-case letters, a dot, and a long `AO-J1O…` tail of
/// URL-safe characters.
fn new_purchase_token() -> String {
    const TAIL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let head: String = (0..24)
        .map(|_| char::from(rng.random_range(b'a'..=b'z')))
        .collect();
    let tail: String = (0..130)
        .map(|_| char::from(TAIL[rng.random_range(0..TAIL.len())]))
        .collect();
    format!("{head}.AO-J1O{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::{GoogleSubscription, notifications::Notice};

    const PACKAGE: &str = "com.example.app";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn purchases(grace: u32, hold: u32, enforce: bool) -> Purchases {
        Purchases::new(
            &[GoogleApplication {
                package_name: PACKAGE.into(),
                subscriptions: vec![GoogleSubscription {
                    product_id: "monthly".into(),
                    base_plans: vec![GoogleBasePlan {
                        base_plan_id: "p1m".into(),
                        billing_period: GoogleBillingPeriod::Months(1),
                        price_micros: 4_990_000,
                        currency_code: "EUR".into(),
                        grace_period_days: grace,
                        account_hold_days: hold,
                    }],
                }],
                one_time_products: vec!["movie".into()],
            }],
            enforce,
        )
    }

    fn buy(purchases: &mut Purchases, now: DateTime<Utc>) -> String {
        let token = purchases
            .buy_subscription(
                NewSubscription {
                    package_name: PACKAGE.into(),
                    product_id: "monthly".into(),
                    region_code: "DE".into(),
                    ..NewSubscription::default()
                },
                now,
            )
            .unwrap()
            .token
            .clone();
        purchases
            .acknowledge_subscription(PACKAGE, "monthly", &token)
            .unwrap();
        token
    }

    fn events(purchases: &mut Purchases) -> Vec<(SubscriptionEvent, DateTime<Utc>)> {
        purchases
            .take_notices()
            .into_iter()
            .filter_map(|notice| match notice {
                Notice::Subscription { event, at, .. } => Some((event, at)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn monthly_renewals_keep_the_day_and_number_their_orders() {
        let mut purchases = purchases(0, 0, true);
        let start = at("2030-01-31T10:00:00Z");
        let token = buy(&mut purchases, start);
        let first_order = purchases
            .subscription(PACKAGE, &token)
            .unwrap()
            .latest_order_id();
        assert!(first_order.starts_with("GPA."));
        assert_eq!(first_order.len(), "GPA.1234-5678-9012-34567".len());
        purchases.settle(at("2030-05-01T00:00:00Z"));
        let subscription = purchases.subscription(PACKAGE, &token).unwrap();
        assert_eq!(subscription.latest_order_id(), format!("{first_order}..2"));
        assert_eq!(subscription.expiry_time(), at("2030-05-31T10:00:00Z"));
        assert_eq!(
            events(&mut purchases),
            [
                (SubscriptionEvent::Purchased, start),
                (SubscriptionEvent::Renewed, at("2030-02-28T10:00:00Z")),
                (SubscriptionEvent::Renewed, at("2030-03-31T10:00:00Z")),
                (SubscriptionEvent::Renewed, at("2030-04-30T10:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_declined_renewal_goes_through_grace_and_hold_to_expiry() {
        let mut purchases = purchases(7, 30, true);
        let start = at("2030-01-01T00:00:00Z");
        let token = buy(&mut purchases, start);
        purchases.decline_payments(PACKAGE, &token).unwrap();
        purchases.settle(at("2030-02-03T00:00:00Z"));
        let subscription = purchases.subscription(PACKAGE, &token).unwrap();
        assert_eq!(
            subscription.phase,
            Phase::InGracePeriod {
                grace_end: at("2030-02-08T00:00:00Z")
            }
        );
        assert_eq!(subscription.expiry_time(), at("2030-02-08T00:00:00Z"));
        purchases.settle(at("2030-03-01T00:00:00Z"));
        assert!(matches!(
            purchases.subscription(PACKAGE, &token).unwrap().phase,
            Phase::OnHold { .. }
        ));
        purchases.settle(at("2030-04-01T00:00:00Z"));
        let subscription = purchases.subscription(PACKAGE, &token).unwrap();
        assert_eq!(
            subscription.phase,
            Phase::Expired {
                at: at("2030-03-10T00:00:00Z")
            }
        );
        assert_eq!(subscription.cancellation.unwrap().by, CancelledBy::System);
        assert!(!subscription.gone(at("2030-05-09T00:00:00Z")));
        assert!(subscription.gone(at("2030-05-10T00:00:00Z")));
        let kinds: Vec<SubscriptionEvent> = events(&mut purchases)
            .into_iter()
            .map(|(event, _)| event)
            .collect();
        assert_eq!(
            kinds,
            [
                SubscriptionEvent::Purchased,
                SubscriptionEvent::InGracePeriod,
                SubscriptionEvent::OnHold,
                SubscriptionEvent::Expired,
            ]
        );
    }

    #[test]
    fn recovery_keeps_the_billing_date_in_grace_and_moves_it_on_hold() {
        let mut purchases = purchases(7, 30, true);
        let token = buy(&mut purchases, at("2030-01-01T00:00:00Z"));
        purchases.decline_payments(PACKAGE, &token).unwrap();
        purchases.settle(at("2030-02-03T00:00:00Z"));
        let recovered = purchases
            .recover(PACKAGE, &token, at("2030-02-03T00:00:00Z"))
            .unwrap();
        assert_eq!(recovered.phase, Phase::Active);
        assert_eq!(recovered.expiry_time(), at("2030-03-01T00:00:00Z"));
        assert!(recovered.latest_order_id().ends_with("..0"));

        purchases.decline_payments(PACKAGE, &token).unwrap();
        purchases.settle(at("2030-03-10T00:00:00Z"));
        let recovered = purchases
            .recover(PACKAGE, &token, at("2030-03-10T00:00:00Z"))
            .unwrap();
        assert_eq!(recovered.expiry_time(), at("2030-04-10T00:00:00Z"));
        assert!(recovered.latest_order_id().ends_with("..1"));
    }

    #[test]
    fn a_cancelled_subscription_expires_at_the_end_of_its_period() {
        let mut purchases = purchases(7, 30, true);
        let token = buy(&mut purchases, at("2030-01-01T00:00:00Z"));
        let cancelled = purchases
            .cancel(
                PACKAGE,
                &token,
                CancelledBy::User {
                    survey_reason: Some(3),
                },
                at("2030-01-10T00:00:00Z"),
            )
            .unwrap();
        assert!(!cancelled.auto_renew);
        purchases.settle(at("2030-03-01T00:00:00Z"));
        let subscription = purchases.subscription(PACKAGE, &token).unwrap();
        assert_eq!(
            subscription.phase,
            Phase::Expired {
                at: at("2030-02-01T00:00:00Z")
            }
        );
        assert!(matches!(
            subscription.cancellation.unwrap().by,
            CancelledBy::User { .. }
        ));
    }

    #[test]
    fn an_unacknowledged_purchase_is_refunded_and_revoked_after_three_days() {
        let mut purchases = purchases(0, 0, true);
        let start = at("2030-01-01T00:00:00Z");
        let token = purchases
            .buy_subscription(
                NewSubscription {
                    package_name: PACKAGE.into(),
                    product_id: "monthly".into(),
                    ..NewSubscription::default()
                },
                start,
            )
            .unwrap()
            .token
            .clone();
        purchases.settle(at("2030-01-05T00:00:00Z"));
        assert_eq!(
            purchases.subscription(PACKAGE, &token).unwrap().phase,
            Phase::Expired {
                at: start + ACKNOWLEDGEMENT_WINDOW
            }
        );
        let notices = purchases.take_notices();
        assert!(matches!(notices.last(), Some(Notice::Voided { .. })));

        let mut lenient = self::purchases(0, 0, false);
        let token = lenient
            .buy_subscription(
                NewSubscription {
                    package_name: PACKAGE.into(),
                    product_id: "monthly".into(),
                    ..NewSubscription::default()
                },
                start,
            )
            .unwrap()
            .token
            .clone();
        lenient.settle(at("2030-01-05T00:00:00Z"));
        assert_eq!(
            lenient.subscription(PACKAGE, &token).unwrap().phase,
            Phase::Active
        );
    }

    #[test]
    fn a_pause_starts_at_the_period_end_and_resumes_with_a_charge() {
        let mut purchases = purchases(7, 30, true);
        let token = buy(&mut purchases, at("2030-01-01T00:00:00Z"));
        purchases
            .schedule_pause(PACKAGE, &token, 2, at("2030-01-05T00:00:00Z"))
            .unwrap();
        purchases.settle(at("2030-02-10T00:00:00Z"));
        assert_eq!(
            purchases.subscription(PACKAGE, &token).unwrap().phase,
            Phase::Paused {
                since: at("2030-02-01T00:00:00Z"),
                resume_at: at("2030-04-01T00:00:00Z")
            }
        );
        purchases.settle(at("2030-04-02T00:00:00Z"));
        let subscription = purchases.subscription(PACKAGE, &token).unwrap();
        assert_eq!(subscription.phase, Phase::Active);
        assert_eq!(subscription.expiry_time(), at("2030-05-01T00:00:00Z"));
        let kinds: Vec<SubscriptionEvent> = events(&mut purchases)
            .into_iter()
            .map(|(event, _)| event)
            .collect();
        assert_eq!(
            kinds,
            [
                SubscriptionEvent::Purchased,
                SubscriptionEvent::PauseScheduleChanged,
                SubscriptionEvent::Paused,
                SubscriptionEvent::Recovered,
            ]
        );
    }

    #[test]
    fn products_are_consumed_once_and_refunds_void_them() {
        let mut purchases = purchases(0, 0, true);
        let now = at("2030-01-01T00:00:00Z");
        let token = purchases
            .buy_product(
                NewProductPurchase {
                    package_name: PACKAGE.into(),
                    product_id: "movie".into(),
                    quantity: 1,
                    ..NewProductPurchase::default()
                },
                now,
            )
            .unwrap()
            .token
            .clone();
        assert_eq!(
            purchases.consume_product(PACKAGE, "other", &token),
            Err(Refusal::UnknownPurchase)
        );
        purchases.consume_product(PACKAGE, "movie", &token).unwrap();
        assert_eq!(
            purchases.consume_product(PACKAGE, "movie", &token),
            Err(Refusal::NotOwned)
        );
        purchases.refund_product(PACKAGE, &token, now).unwrap();
        assert_eq!(
            purchases.refund_product(PACKAGE, &token, now).unwrap_err(),
            Refusal::InvalidState
        );
        assert_eq!(
            purchases.product("com.other", &token).unwrap_err(),
            Refusal::UnknownApplication("com.other".into())
        );
    }
}
