//! The billing clock: when a subscription period ends, charge the saved card off-session
//! for the next one, or expire the subscription. Driven by the durable `billing_jobs`
//! table, so a crash loses nothing and several replicas share the work.
//!
//! Invariant: at most one successful charge per subscription period. The charge's
//! idempotency key is derived from the subscription, the period and the number of failed
//! attempts recorded, so a worker that crashed after Stripe charged repeats the same
//! request and gets Stripe's stored answer; the database's unique index on
//! (subscription, period) for successful payments backs this up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use uuid::Uuid;

use super::subscriptions::add_period;
use super::{Core, CoreError};
use crate::core::model::{
    Money, PaymentProvider, Subscription, SubscriptionStatus, Transaction, TransactionKind,
};
use crate::providers::stripe::{
    OffSessionCharge, PaymentError, PaymentIntent, PaymentIntentStatus, StripeClientError,
};
use crate::store::{BillingJob, JobChange, SubscriptionChange};

/// How long a worker holds a claimed job before another may take it over.
const LEASE: Duration = Duration::from_secs(120);
const BATCH: i64 = 64;
/// Jobs of one batch settled at once: their provider calls overlap, their writes queue at
/// the database.
const CONCURRENCY: usize = 8;

/// What one run of the billing clock did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingReport {
    pub renewed: u64,
    pub failed: u64,
    pub expired: u64,
    /// Jobs given back because a provider could not be reached; tried again later.
    pub deferred: u64,
}

enum Outcome {
    Renewed,
    Failed,
    Expired,
    Skipped,
}

impl Core {
    /// Settles every billing job due at the Clock's now, including the ones that settling
    /// makes due (a clock moved a year ahead renews twelve times). Returns what it did.
    pub async fn run_due_billing(&self) -> Result<BillingReport, CoreError> {
        let mut report = BillingReport::default();
        loop {
            let now = self.now();
            let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            let jobs = self
                .store
                .claim_due_jobs(&self.worker_id, now, lease_until, BATCH)
                .await?;
            if jobs.is_empty() {
                return Ok(report);
            }
            let mut progressed = false;
            let mut settled = futures_util::stream::iter(jobs)
                .map(|job| async move {
                    let outcome = self.settle_job(&job).await;
                    (job, outcome)
                })
                .buffer_unordered(CONCURRENCY);
            while let Some((job, outcome)) = settled.next().await {
                match outcome {
                    Ok(Outcome::Renewed) => {
                        report.renewed += 1;
                        progressed = true;
                    }
                    Ok(Outcome::Failed) => {
                        report.failed += 1;
                        progressed = true;
                    }
                    Ok(Outcome::Expired) => {
                        report.expired += 1;
                        progressed = true;
                    }
                    Ok(Outcome::Skipped) => progressed = true,
                    Err(error) => {
                        tracing::warn!(subscription = %job.subscription_id, period = job.period, %error, "billing job deferred");
                        self.store.release_job(&job, &self.worker_id).await?;
                        report.deferred += 1;
                    }
                }
            }
            if !progressed {
                // Every job is waiting for a provider; the next tick tries again.
                return Ok(report);
            }
        }
    }

    async fn settle_job(&self, job: &BillingJob) -> Result<Outcome, CoreError> {
        let subscription = self
            .store
            .subscription(&job.subscription_id)
            .await?
            .ok_or(CoreError::NotFound("subscription"))?;
        if !subscription.status.is_live() || subscription.current_period >= job.period {
            // Ended meanwhile, or the period was already paid (its webhook came first).
            self.store.finish_job(job).await?;
            return Ok(Outcome::Skipped);
        }
        let package = self
            .store
            .package(&subscription.package_id)
            .await?
            .ok_or(CoreError::NotFound("package"))?;
        let next_start = subscription.current_period_end;
        let past_duration = package
            .duration
            .is_some_and(|duration| next_start >= add_period(subscription.created_at, duration, 1));
        if !subscription.recurring
            || !subscription.auto_renew
            || subscription.cancel_at_period_end
            || past_duration
        {
            return self
                .expire(&subscription, job, subscription.current_period_end)
                .await;
        }
        let profile = self
            .store
            .billing_profile(&subscription.customer_id)
            .await?;
        let card = profile.as_ref().and_then(|profile| {
            Some((
                profile.provider_customer_id.as_str(),
                profile.payment_method_id.as_deref()?,
            ))
        });
        let Some((stripe_customer, payment_method)) = card else {
            let error = PaymentError {
                code: Some("no_payment_method".into()),
                message: Some("There is no card on file to renew with.".into()),
                ..PaymentError::default()
            };
            return self.renewal_failed(&subscription, job, &error, None).await;
        };
        let stripe = self.stripe()?;
        let key = format!(
            "renewal-{}-{}-{}",
            subscription.id, job.period, job.failed_attempts
        );
        let period = job.period.to_string();
        let metadata = [
            (
                crate::providers::stripe::metadata::SUBSCRIPTION,
                subscription.id.as_str(),
            ),
            (crate::providers::stripe::metadata::PERIOD, period.as_str()),
            (
                crate::providers::stripe::metadata::CUSTOMER,
                subscription.customer_id.as_str(),
            ),
        ];
        let description = format!("{} (renewal)", package.title);
        let result = stripe
            .charge_off_session(&OffSessionCharge {
                amount: subscription.price.minor_units,
                currency: subscription.price.currency.code(),
                customer: stripe_customer,
                payment_method,
                description: &description,
                metadata: &metadata,
                idempotency_key: &key,
            })
            .await;
        match result {
            Ok(intent) if intent.status == PaymentIntentStatus::Succeeded => {
                self.renewal_succeeded(&subscription, job.period, &intent, &description)
                    .await
            }
            Ok(intent) => {
                let error = intent.last_payment_error.clone().unwrap_or(PaymentError {
                    code: Some("authentication_required".into()),
                    message: Some(
                        "Your card was declined. This transaction requires authentication.".into(),
                    ),
                    ..PaymentError::default()
                });
                self.renewal_failed(&subscription, job, &error, Some(&intent))
                    .await
            }
            Err(StripeClientError::Declined {
                error,
                payment_intent,
            }) => {
                self.renewal_failed(&subscription, job, &error, payment_intent.as_deref())
                    .await
            }
            Err(error) => Err(CoreError::ProviderUnavailable {
                provider: "Stripe",
                detail: error.to_string(),
            }),
        }
    }

    /// The renewal for `period` was paid: the subscription moves into it.
    async fn renewal_succeeded(
        &self,
        subscription: &Subscription,
        period: i64,
        intent: &PaymentIntent,
        description: &str,
    ) -> Result<Outcome, CoreError> {
        let now = self.now();
        let package = self
            .store
            .package(&subscription.package_id)
            .await?
            .ok_or(CoreError::NotFound("package"))?;
        let start = subscription.current_period_end;
        let end = add_period(start, package.interval, 1);
        let transaction = Transaction {
            id: Uuid::new_v4().to_string(),
            customer_id: subscription.customer_id.clone(),
            subscription_id: Some(subscription.id.clone()),
            basket_id: None,
            kind: TransactionKind::Payment,
            provider: PaymentProvider::Stripe,
            external_id: intent.charge_id().unwrap_or_else(|| intent.id.clone()),
            reference: intent.id.clone(),
            description: description.to_owned(),
            amount: Money {
                minor_units: intent.amount,
                currency: subscription.price.currency,
            },
            succeeded: true,
            provider_message: None,
            period: Some(period),
            created_at: now,
        };
        let mut change = SubscriptionChange::from(subscription);
        change.status = SubscriptionStatus::Active;
        change.current_period = period;
        change.current_period_start = start;
        change.current_period_end = end;
        change.access_until = None;
        change.last_failure_code = None;
        let applied = self
            .store
            .change_subscription(
                &change,
                Some(&transaction),
                &JobChange::Settle {
                    period,
                    next: Some((period + 1, end)),
                },
                now,
            )
            .await?;
        Ok(if applied {
            Outcome::Renewed
        } else {
            Outcome::Skipped
        })
    }

    /// A renewal attempt was refused: retried later while retries remain (past_due, access
    /// kept), else the subscription expires.
    async fn renewal_failed(
        &self,
        subscription: &Subscription,
        job: &BillingJob,
        error: &PaymentError,
        intent: Option<&PaymentIntent>,
    ) -> Result<Outcome, CoreError> {
        let now = self.now();
        let attempt = job.failed_attempts + 1;
        let reference = intent.map_or_else(
            || {
                format!(
                    "renewal-{}-{}-{}",
                    subscription.id, job.period, job.failed_attempts
                )
            },
            |intent| intent.id.clone(),
        );
        let transaction = Transaction {
            id: Uuid::new_v4().to_string(),
            customer_id: subscription.customer_id.clone(),
            subscription_id: Some(subscription.id.clone()),
            basket_id: None,
            kind: TransactionKind::Payment,
            provider: PaymentProvider::Stripe,
            external_id: intent
                .and_then(PaymentIntent::charge_id)
                .unwrap_or_else(|| reference.clone()),
            reference,
            description: "Renewal".into(),
            amount: subscription.price,
            succeeded: false,
            provider_message: error.message.clone(),
            period: Some(job.period),
            created_at: now,
        };
        let code = error.decline_code.as_deref().or(error.code.as_deref());
        let retry_delay = usize::try_from(job.failed_attempts)
            .ok()
            .and_then(|index| self.payments.renewal_retries.get(index));
        let mut change = SubscriptionChange::from(subscription);
        change.last_failure_code = code;
        let (jobs, outcome) = match retry_delay {
            Some(delay) => {
                change.status = SubscriptionStatus::PastDue;
                let due_at = subscription.current_period_end
                    + chrono::Duration::from_std(*delay).unwrap_or_default();
                (
                    JobChange::Retry {
                        period: job.period,
                        due_at: due_at.max(now),
                    },
                    Outcome::Failed,
                )
            }
            None => {
                change.status = SubscriptionStatus::Expired;
                change.access_until = Some(now);
                change.ended_at = Some(now);
                (
                    JobChange::Settle {
                        period: job.period,
                        next: None,
                    },
                    Outcome::Expired,
                )
            }
        };
        tracing::info!(subscription = %subscription.id, period = job.period, attempt, code, "renewal refused");
        self.store
            .mark_billing_failed(&subscription.customer_id, now)
            .await?;
        self.store
            .change_subscription(&change, Some(&transaction), &jobs, now)
            .await?;
        Ok(outcome)
    }

    async fn expire(
        &self,
        subscription: &Subscription,
        job: &BillingJob,
        at: DateTime<Utc>,
    ) -> Result<Outcome, CoreError> {
        let now = self.now();
        let mut change = SubscriptionChange::from(subscription);
        change.status = SubscriptionStatus::Expired;
        change.access_until = Some(at.min(now));
        change.ended_at = Some(at.min(now));
        self.store
            .change_subscription(
                &change,
                None,
                &JobChange::Settle {
                    period: job.period,
                    next: None,
                },
                now,
            )
            .await?;
        Ok(Outcome::Expired)
    }

    /// Stripe's word on a renewal intent (by webhook): a success the worker has not
    /// recorded yet (it crashed, or the webhook won the race) moves the subscription on;
    /// a failure is recorded by the worker itself.
    pub(crate) async fn settle_renewal_intent(
        &self,
        intent: &PaymentIntent,
        subscription_id: &str,
    ) -> Result<(), CoreError> {
        let Some(period) = intent
            .metadata
            .get(crate::providers::stripe::metadata::PERIOD)
            .and_then(|period| period.parse::<i64>().ok())
        else {
            return Ok(());
        };
        let Some(subscription) = self.store.subscription(subscription_id).await? else {
            return Ok(());
        };
        if intent.status == PaymentIntentStatus::Succeeded
            && subscription.status.is_live()
            && subscription.current_period == period - 1
        {
            let description = intent
                .description
                .clone()
                .unwrap_or_else(|| "Renewal".into());
            self.renewal_succeeded(&subscription, period, intent, &description)
                .await?;
        }
        Ok(())
    }
}

/// Runs the billing clock every `every` until the task is aborted.
pub fn spawn_billing_loop(
    core: std::sync::Arc<Core>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = core.run_due_billing().await {
                tracing::warn!(%error, "billing clock run failed");
            }
        }
    })
}
