//! The one subscription engine every provider drives: a purchase starts a subscription
//! (trialing or active), the billing clock renews it (active), a failed renewal makes it
//! past_due until a retry or a billing update recovers it (active) or the last retry fails
//! (expired); the customer cancels it now (cancelled) or at period end (expired then); a
//! refund ends it (refunded). Entitlements are derived from what is live, never stored.
//!
//! Invariant: a customer's entitlements are exactly the union of the entitlements of the
//! packages of their subscriptions that grant access now ([`Subscription::grants_access`]).

use chrono::{DateTime, Utc};

use super::{Core, CoreError, Credential};
use crate::core::model::{
    BillingProfile, Customer, Package, Period, PeriodUnit, Subscription, SubscriptionStatus,
};
use crate::store::{JobChange, SubscriptionChange};

/// A subscription with its package, for showing.
#[derive(Debug, Clone)]
pub struct SubscriptionView {
    pub subscription: Subscription,
    pub package: Package,
}

/// Where a customer stands: subscriptions, what they grant now, and how they pay.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// Every subscription, newest first.
    pub subscriptions: Vec<SubscriptionView>,
    /// What the customer may watch now, sorted, without duplicates.
    pub entitlements: Vec<String>,
    /// The packages of the subscriptions that grant access now.
    pub package_ids: Vec<String>,
    pub billing: Option<BillingProfile>,
    /// Live subscriptions whose last renewal was refused until the customer authenticates
    /// (3D Secure) their card.
    pub requires_card_authentication: i64,
}

impl Standing {
    pub fn live(&self, now: DateTime<Utc>) -> impl Iterator<Item = &SubscriptionView> {
        self.subscriptions
            .iter()
            .filter(move |view| view.subscription.grants_access(now))
    }

    /// When the last of the live subscriptions ends, if all of them end by themselves.
    pub fn full_access_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut until: Option<DateTime<Utc>> = None;
        for view in self.live(now) {
            let end = view.subscription.expires_at()?;
            until = Some(until.map_or(end, |current| current.max(end)));
        }
        until
    }
}

/// `start` moved on by `count` periods, month ends clamped (Jan 31 + 1 month = Feb 28).
pub fn add_period(start: DateTime<Utc>, period: Period, count: i64) -> DateTime<Utc> {
    let count = count.clamp(0, 100_000);
    let units = i64::from(period.count) * count;
    match period.unit {
        PeriodUnit::Day => start + chrono::Duration::days(units),
        PeriodUnit::Week => start + chrono::Duration::weeks(units),
        PeriodUnit::Month | PeriodUnit::Year => {
            let months = if period.unit == PeriodUnit::Year {
                units * 12
            } else {
                units
            };
            u32::try_from(months)
                .ok()
                .and_then(|months| start.checked_add_months(chrono::Months::new(months)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        }
    }
}

impl Core {
    /// The customer's standing at the Clock's now.
    pub(crate) async fn standing(&self, customer: &Customer) -> Result<Standing, CoreError> {
        let now = self.now();
        let subscriptions = self.store.subscriptions_of(&customer.id).await?;
        let mut views = Vec::with_capacity(subscriptions.len());
        for subscription in subscriptions {
            let Some(package) = self.store.package(&subscription.package_id).await? else {
                return Err(CoreError::NotFound("package"));
            };
            views.push(SubscriptionView {
                subscription,
                package,
            });
        }
        let mut entitlements: Vec<String> = Vec::new();
        let mut package_ids: Vec<String> = Vec::new();
        for view in views
            .iter()
            .filter(|view| view.subscription.grants_access(now))
        {
            entitlements.extend(view.package.entitlements.iter().cloned());
            if !package_ids.contains(&view.package.id) {
                package_ids.push(view.package.id.clone());
            }
        }
        entitlements.sort();
        entitlements.dedup();
        let billing = self.store.billing_profile(&customer.id).await?;
        let requires_card_authentication = self.store.awaiting_authentication(&customer.id).await?;
        Ok(Standing {
            subscriptions: views,
            entitlements,
            package_ids,
            billing,
            requires_card_authentication,
        })
    }

    /// The customer cancels one of their subscriptions: now (access ends at once) or at the
    /// end of the period already paid for (access continues until then, nothing renews).
    pub async fn cancel_subscription(
        &self,
        credential: &Credential,
        subscription_id: &str,
        reason: &str,
        immediate: bool,
    ) -> Result<(), CoreError> {
        let customer = self.authenticated_customer(credential).await?;
        let subscription = self
            .store
            .subscription(subscription_id)
            .await?
            .ok_or(CoreError::NotFound("subscription"))?;
        if subscription.customer_id != customer.id {
            return Err(CoreError::Forbidden(
                "The subscription belongs to another customer".into(),
            ));
        }
        if subscription.provider.is_store() {
            return Err(CoreError::Invalid(format!(
                "The subscription was bought through {} and is cancelled in that store",
                subscription.provider.store_name()
            )));
        }
        let now = self.now();
        let mut subscription = subscription;
        // A renewal or a notification may change the subscription between our read and our
        // write; the guarded write then changes nothing and we decide again from what it is.
        for _ in 0..3 {
            if !subscription.status.is_live() {
                return Err(CoreError::Invalid(format!(
                    "The subscription has already ended ({})",
                    subscription.status.as_str()
                )));
            }
            let mut change = SubscriptionChange::from(&subscription);
            change.cancelled_at = Some(now);
            change.cancel_reason = Some(reason);
            let jobs = if immediate || !subscription.recurring {
                change.status = SubscriptionStatus::Cancelled;
                change.access_until = Some(now);
                change.ended_at = Some(now);
                JobChange::AbandonAll
            } else {
                if subscription.cancel_at_period_end {
                    return Err(CoreError::Invalid(
                        "The subscription is already cancelled at the end of its period".into(),
                    ));
                }
                change.cancel_at_period_end = true;
                change.access_until = Some(subscription.current_period_end.max(now));
                JobChange::None
            };
            if self
                .store
                .change_subscription(&change, None, &jobs, now)
                .await?
            {
                return Ok(());
            }
            subscription = self
                .store
                .subscription(subscription_id)
                .await?
                .ok_or(CoreError::NotFound("subscription"))?;
        }
        Err(CoreError::ProviderUnavailable {
            provider: "the database",
            detail: "the subscription kept changing while it was being cancelled".into(),
        })
    }

    /// A refund of the subscription's payment ends its access now.
    pub(crate) async fn refund_subscription(
        &self,
        subscription: &Subscription,
    ) -> Result<(), CoreError> {
        let now = self.now();
        if !subscription.status.is_live() {
            return Ok(());
        }
        let mut change = SubscriptionChange::from(subscription);
        change.status = SubscriptionStatus::Refunded;
        change.access_until = Some(now);
        change.ended_at = Some(now);
        if !self
            .store
            .change_subscription(&change, None, &JobChange::AbandonAll, now)
            .await?
        {
            // Changed meanwhile: read again and apply to what it is now.
            let current = self
                .store
                .subscription(&subscription.id)
                .await?
                .ok_or(CoreError::NotFound("subscription"))?;
            return Box::pin(self.refund_subscription(&current)).await;
        }
        Ok(())
    }
}
