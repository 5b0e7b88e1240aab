//! The billing clock: when a subscription period ends, charge the saved card off-session
//! for the next one, or expire the subscription. Driven by the durable `billing_jobs`
//! table, so a crash loses nothing and several replicas share the work.
//!
//! Invariant: at most one successful charge per subscription period. The charge's
//! idempotency key is derived from the subscription, the period and the number of failed
//! attempts recorded, so a worker that crashed after Stripe charged repeats the same
//! request and gets Stripe's stored answer; the database's unique index on
//! (subscription, period) for successful payments backs this up.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::subscriptions::add_period;
use super::{Core, CoreError};
use crate::core::model::{
    BillingProfile, Money, Package, PaymentProvider, Subscription, SubscriptionStatus, Transaction,
    TransactionKind,
};
use crate::providers::stripe::{
    OffSessionCharge, PaymentError, PaymentIntent, PaymentIntentStatus, StripeClient,
    StripeClientError, metadata,
};
use crate::store::{BillingJob, JobChange, JobScope, Settlement, SubscriptionChange};

/// How long a worker holds a claimed job before another may take it over.
const LEASE: Duration = Duration::from_secs(120);
/// Jobs claimed, read, charged and written back together: one claim, a few reads and one
/// database transaction per batch.
const BATCH: i64 = 1024;
/// Charges of one batch in flight at once: enough that the charges' round trips, not
/// their number, set the pace while the other batches read and write.
const CONCURRENCY: usize = 96;
/// Batches one run of the billing clock works on at once.
const PARALLEL_BATCHES: usize = 4;

/// Renewals paid this process remembers, beyond those it is charging: about the last few
/// batches' worth, enough for the webhooks that arrive after their batch was recorded.
const PAID_REMEMBERED: usize = 8 * BATCH as usize;

/// The renewals (subscription, period) this process has in hand: those it is charging now,
/// under its own live lease on their jobs, and the last ones it recorded as paid. What a
/// renewal's webhook needs to know to be acknowledged without reading the database.
///
/// Invariant: a renewal is here only while this process holds its job's lease and has not
/// recorded its outcome, or after this process recorded its period as paid (a paid period
/// stays paid: nothing moves a subscription's period back). Whatever else is true of it is
/// read from the database.
#[derive(Default)]
pub(crate) struct RenewalsInHand(std::sync::Mutex<InHand>);

#[derive(Default)]
struct InHand {
    charging: HashSet<(String, i64)>,
    paid: HashSet<(String, i64)>,
    /// `paid`, oldest first, so that the oldest is forgotten first.
    paid_order: VecDeque<(String, i64)>,
}

impl RenewalsInHand {
    pub(crate) fn contains(&self, subscription_id: &str, period: i64) -> bool {
        let key = (subscription_id.to_owned(), period);
        let in_hand = self.in_hand();
        in_hand.charging.contains(&key) || in_hand.paid.contains(&key)
    }

    /// Marks the renewals charging until the returned guard is dropped: after their
    /// outcome is recorded, or on any way out of the batch.
    fn mark_charging<'k>(
        &self,
        renewals: impl IntoIterator<Item = (&'k str, i64)>,
    ) -> ChargingGuard<'_> {
        let keys: Vec<(String, i64)> = renewals
            .into_iter()
            .map(|(subscription_id, period)| (subscription_id.to_owned(), period))
            .collect();
        self.in_hand().charging.extend(keys.iter().cloned());
        ChargingGuard {
            renewals: self,
            keys,
        }
    }

    /// Remembers renewals whose periods this process has just recorded as paid.
    fn record_paid<'k>(&self, renewals: impl IntoIterator<Item = (&'k str, i64)>) {
        let mut in_hand = self.in_hand();
        for (subscription_id, period) in renewals {
            let key = (subscription_id.to_owned(), period);
            if in_hand.paid.insert(key.clone()) {
                in_hand.paid_order.push_back(key);
            }
        }
        while in_hand.paid_order.len() > PAID_REMEMBERED {
            if let Some(oldest) = in_hand.paid_order.pop_front() {
                in_hand.paid.remove(&oldest);
            }
        }
    }

    fn in_hand(&self) -> std::sync::MutexGuard<'_, InHand> {
        // A panic elsewhere while it was held leaves sets that are still whole.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct ChargingGuard<'c> {
    renewals: &'c RenewalsInHand,
    keys: Vec<(String, i64)>,
}

impl Drop for ChargingGuard<'_> {
    fn drop(&mut self) {
        let mut in_hand = self.renewals.in_hand();
        for key in &self.keys {
            in_hand.charging.remove(key);
        }
    }
}

/// How many billing batches this process has begun to claim and not yet settled, so that a
/// run can wait for the ones other runs hold.
pub(crate) struct BatchesInFlight(tokio::sync::watch::Sender<usize>);

impl Default for BatchesInFlight {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(0))
    }
}

impl BatchesInFlight {
    /// Counts a batch from before its claim until the guard drops.
    fn begin(&self) -> BatchGuard<'_> {
        self.0.send_modify(|batches| *batches += 1);
        BatchGuard(self)
    }

    /// Returns once no batch is in flight.
    async fn all_settled(&self) {
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = self.0.subscribe().wait_for(|batches| *batches == 0).await;
    }
}

struct BatchGuard<'b>(&'b BatchesInFlight);

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        self.0.0.send_modify(|batches| *batches -= 1);
    }
}

/// What one run of the billing clock did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingReport {
    pub renewed: u64,
    pub failed: u64,
    pub expired: u64,
    /// Jobs given back because a provider could not be reached; tried again later.
    pub deferred: u64,
}

impl std::ops::AddAssign for BillingReport {
    fn add_assign(&mut self, other: Self) {
        self.renewed += other.renewed;
        self.failed += other.failed;
        self.expired += other.expired;
        self.deferred += other.deferred;
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Renewed,
    Failed,
    Expired,
    Skipped,
}

/// What a claimed job needs: decided from what is stored, or a charge first.
enum Plan<'a> {
    Settle(Box<Settlement<'a>>, Outcome),
    Charge(Renewal<'a>),
}

/// An off-session charge for the next period of a subscription.
struct Renewal<'a> {
    job: &'a BillingJob,
    subscription: &'a Subscription,
    package: &'a Package,
    stripe_customer: &'a str,
    payment_method: &'a str,
}

impl Core {
    /// How many renewals, retries and expiries are due at the Clock's now and not settled
    /// yet: 0 once the billing clock has caught up.
    pub async fn billing_backlog(&self) -> Result<i64, CoreError> {
        Ok(self.store.due_job_count(JobScope::All, self.now()).await?)
    }

    /// Settles every billing job due at the Clock's now, including the ones that settling
    /// makes due (a clock moved a year ahead renews twelve times), and returns once the
    /// batches other runs of this process claimed are settled too. Returns what it did.
    pub async fn run_due_billing(&self) -> Result<BillingReport, CoreError> {
        // Several claimers, so that one batch's reads and write (the single writer, on
        // SQLite) happen while the others' charges are in flight. Polled together in this
        // task: a claimer waiting for the write turn never starves the one holding it.
        let claimers = (0..PARALLEL_BATCHES).map(|_| self.claim_and_settle(JobScope::All));
        let mut report = BillingReport::default();
        for claimed in futures_util::future::join_all(claimers).await {
            report += claimed?;
        }
        // Another run (the background loop's, say) may have claimed jobs just before ours
        // looked: this run found them leased, not settled. A caller that moved the clock
        // expects them settled when this returns.
        self.batches_in_flight.all_settled().await;
        Ok(report)
    }

    /// Settles the billing jobs of one customer due at the Clock's now (the retries a new
    /// card made due), leaving everyone else's to the billing clock, so that the
    /// customer's request waits for their own charges only.
    pub(crate) async fn run_due_billing_of(
        &self,
        customer_id: &str,
    ) -> Result<BillingReport, CoreError> {
        let scope = JobScope::Customer(customer_id);
        let report = self.claim_and_settle(scope).await?;
        // Jobs of theirs still due are held by another run of this process (the background
        // loop's, say) or by another replica, whose lease lets nobody else charge them.
        // Waiting for this process's batches covers the first; a replica's outcome shows
        // when it records it, as it would had that replica been asked.
        if self.store.due_job_count(scope, self.now()).await? > 0 {
            self.batches_in_flight.all_settled().await;
        }
        Ok(report)
    }

    /// Claims and settles batch after batch of `scope` until none is due.
    async fn claim_and_settle(&self, scope: JobScope<'_>) -> Result<BillingReport, CoreError> {
        let mut report = BillingReport::default();
        loop {
            let now = self.now();
            let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
            // Counted before the claim commits, so no run can see the jobs leased and this
            // batch not yet in flight.
            let _in_flight = self.batches_in_flight.begin();
            let jobs = self
                .store
                .claim_due_jobs(scope, &self.worker_id, now, lease_until, BATCH)
                .await?;
            if jobs.is_empty() {
                return Ok(report);
            }
            let claimed = jobs.len() as u64;
            let batch = self.settle_batch(&jobs).await?;
            let all_deferred = batch.deferred == claimed;
            report += batch;
            if all_deferred {
                // Every job is waiting for a provider; the next tick tries again.
                return Ok(report);
            }
        }
    }

    /// One claimed batch: read together, charged concurrently, written back in one
    /// transaction. Jobs whose provider could not be reached are released.
    async fn settle_batch(&self, jobs: &[BillingJob]) -> Result<BillingReport, CoreError> {
        let subscription_ids: Vec<&str> = jobs
            .iter()
            .map(|job| job.subscription_id.as_str())
            .collect();
        let subscriptions = keyed(
            self.store.subscriptions_with_ids(&subscription_ids).await?,
            |subscription| &subscription.id,
        );
        let customer_ids: Vec<&str> = subscriptions
            .values()
            .map(|subscription| subscription.customer_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let profiles = keyed(
            self.store.billing_profiles_of(&customer_ids).await?,
            |profile| &profile.customer_id,
        );
        let mut packages: HashMap<&str, Option<Package>> = HashMap::new();
        for subscription in subscriptions.values() {
            if !packages.contains_key(subscription.package_id.as_str()) {
                let package = self.store.package(&subscription.package_id).await?;
                packages.insert(&subscription.package_id, package);
            }
        }

        let now = self.now();
        let mut settlements = Vec::with_capacity(jobs.len());
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut renewals = Vec::new();
        let mut deferred = Vec::new();
        for job in jobs {
            let found = subscriptions
                .get(&job.subscription_id)
                .and_then(|subscription| {
                    let package = packages.get(subscription.package_id.as_str())?.as_ref()?;
                    Some((subscription, package))
                });
            let Some((subscription, package)) = found else {
                // Nothing to decide from; left for an operator, without holding up the rest.
                tracing::warn!(subscription = %job.subscription_id, period = job.period, "billing job deferred: its subscription or package is gone");
                deferred.push(job);
                continue;
            };
            let profile = profiles.get(&subscription.customer_id);
            match self.plan(job, subscription, package, profile, now) {
                Plan::Settle(settlement, outcome) => {
                    settlements.push(*settlement);
                    outcomes.push(outcome);
                }
                Plan::Charge(renewal) => renewals.push(renewal),
            }
        }

        // Held until the outcomes are recorded below.
        let _charging = self.renewals_in_hand.mark_charging(
            renewals
                .iter()
                .map(|renewal| (renewal.subscription.id.as_str(), renewal.job.period)),
        );
        if !renewals.is_empty() {
            let stripe = self.stripe()?;
            let charges: Vec<_> = renewals
                .iter()
                .map(|renewal| charge_renewal(stripe, renewal))
                .collect();
            let mut charged = futures_util::stream::iter(charges).buffer_unordered(CONCURRENCY);
            while let Some((renewal, description, result)) = charged.next().await {
                let now = self.now();
                let decided = match result {
                    Ok(intent) if intent.status == PaymentIntentStatus::Succeeded => Some((
                        renewal_paid(
                            renewal.subscription,
                            renewal.package,
                            renewal.job.period,
                            &intent,
                            &description,
                            now,
                        ),
                        Outcome::Renewed,
                    )),
                    Ok(intent) => {
                        let error = intent.last_payment_error.clone().unwrap_or(PaymentError {
                            code: Some("authentication_required".into()),
                            message: Some(
                                "Your card was declined. This transaction requires authentication."
                                    .into(),
                            ),
                            ..PaymentError::default()
                        });
                        Some(self.renewal_refused(
                            renewal.subscription,
                            renewal.job,
                            &error,
                            Some(&intent),
                            now,
                        ))
                    }
                    Err(StripeClientError::Declined {
                        error,
                        payment_intent,
                    }) => Some(self.renewal_refused(
                        renewal.subscription,
                        renewal.job,
                        &error,
                        payment_intent.as_deref(),
                        now,
                    )),
                    Err(error) => {
                        tracing::warn!(subscription = %renewal.subscription.id, period = renewal.job.period, %error, "billing job deferred");
                        deferred.push(renewal.job);
                        None
                    }
                };
                if let Some((settlement, outcome)) = decided {
                    settlements.push(settlement);
                    outcomes.push(outcome);
                }
            }
        }

        let mut report = BillingReport::default();
        let applied = self.store.settle_billing(&settlements, self.now()).await?;
        let mut paid = Vec::new();
        for ((applied, outcome), settlement) in applied.into_iter().zip(outcomes).zip(&settlements)
        {
            match (applied, outcome) {
                (true, Outcome::Renewed) => {
                    report.renewed += 1;
                    if let JobChange::Settle { period, .. } = settlement.jobs {
                        paid.push((settlement.subscription_id, period));
                    }
                }
                (true, Outcome::Failed) => report.failed += 1,
                (true, Outcome::Expired) => report.expired += 1,
                _ => {}
            }
        }
        self.renewals_in_hand.record_paid(paid);
        for job in deferred {
            self.store.release_job(job, &self.worker_id).await?;
            report.deferred += 1;
        }
        Ok(report)
    }

    /// What a due job needs, decided from what is stored.
    fn plan<'a>(
        &self,
        job: &'a BillingJob,
        subscription: &'a Subscription,
        package: &'a Package,
        profile: Option<&'a BillingProfile>,
        now: DateTime<Utc>,
    ) -> Plan<'a> {
        if !subscription.status.is_live() || subscription.current_period >= job.period {
            // Ended meanwhile, or the period was already paid (its webhook came first).
            return Plan::Settle(
                Box::new(Settlement {
                    subscription_id: &subscription.id,
                    change: None,
                    transaction: None,
                    jobs: JobChange::Settle {
                        period: job.period,
                        next: None,
                    },
                    billing_failed_for: None,
                }),
                Outcome::Skipped,
            );
        }
        let next_start = subscription.current_period_end;
        let past_duration = package
            .duration
            .is_some_and(|duration| next_start >= add_period(subscription.created_at, duration, 1));
        if !subscription.recurring
            || !subscription.auto_renew
            || subscription.cancel_at_period_end
            || past_duration
        {
            return Plan::Settle(
                Box::new(expiry(
                    subscription,
                    job,
                    subscription.current_period_end,
                    now,
                )),
                Outcome::Expired,
            );
        }
        let card = profile.and_then(|profile| {
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
            let (settlement, outcome) = self.renewal_refused(subscription, job, &error, None, now);
            return Plan::Settle(Box::new(settlement), outcome);
        };
        Plan::Charge(Renewal {
            job,
            subscription,
            package,
            stripe_customer,
            payment_method,
        })
    }

    /// A renewal attempt was refused: retried later while retries remain (past_due, access
    /// kept), else the subscription expires. The attempt is recorded as a transaction.
    fn renewal_refused<'a>(
        &self,
        subscription: &'a Subscription,
        job: &BillingJob,
        error: &PaymentError,
        intent: Option<&PaymentIntent>,
        now: DateTime<Utc>,
    ) -> (Settlement<'a>, Outcome) {
        let reference = intent.map_or_else(
            || idempotency_key(subscription, job),
            |intent| intent.id.clone(),
        );
        let transaction = Transaction {
            id: Transaction::new_id(),
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
        let code = error
            .decline_code
            .as_deref()
            .or(error.code.as_deref())
            .map(str::to_owned);
        let retry_delay = usize::try_from(job.failed_attempts)
            .ok()
            .and_then(|index| self.payments.renewal_retries.get(index));
        let mut change = SubscriptionChange::from(subscription);
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
        tracing::info!(subscription = %subscription.id, period = job.period, attempt = job.failed_attempts + 1, code, "renewal refused");
        change.last_failure_code = code;
        (
            Settlement {
                subscription_id: &subscription.id,
                change: Some(change),
                transaction: Some(transaction),
                jobs,
                billing_failed_for: Some(&subscription.customer_id),
            },
            outcome,
        )
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
            .get(metadata::PERIOD)
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
            let package = self
                .store
                .package(&subscription.package_id)
                .await?
                .ok_or(CoreError::NotFound("package"))?;
            let description = intent
                .description
                .clone()
                .unwrap_or_else(|| "Renewal".into());
            let now = self.now();
            let settlement =
                renewal_paid(&subscription, &package, period, intent, &description, now);
            self.store.settle_billing(&[settlement], now).await?;
        }
        Ok(())
    }
}

/// Charges the saved card for the renewal; the description is the transaction's.
async fn charge_renewal<'r>(
    stripe: &StripeClient,
    renewal: &'r Renewal<'r>,
) -> (
    &'r Renewal<'r>,
    String,
    Result<PaymentIntent, StripeClientError>,
) {
    let description = format!("{} (renewal)", renewal.package.title);
    let key = idempotency_key(renewal.subscription, renewal.job);
    let period = renewal.job.period.to_string();
    let metadata = [
        (metadata::SUBSCRIPTION, renewal.subscription.id.as_str()),
        (metadata::PERIOD, period.as_str()),
        (
            metadata::CUSTOMER,
            renewal.subscription.customer_id.as_str(),
        ),
    ];
    let result = stripe
        .charge_off_session(&OffSessionCharge {
            amount: renewal.subscription.price.minor_units,
            currency: renewal.subscription.price.currency.code(),
            customer: renewal.stripe_customer,
            payment_method: renewal.payment_method,
            description: &description,
            metadata: &metadata,
            idempotency_key: &key,
        })
        .await;
    (renewal, description, result)
}

fn keyed<T>(items: Vec<T>, key: impl Fn(&T) -> &String) -> HashMap<String, T> {
    items
        .into_iter()
        .map(|item| (key(&item).clone(), item))
        .collect()
}

/// The key Stripe deduplicates a renewal attempt by: a worker that crashed after Stripe
/// charged repeats the same request and gets Stripe's stored answer.
fn idempotency_key(subscription: &Subscription, job: &BillingJob) -> String {
    format!(
        "renewal-{}-{}-{}",
        subscription.id, job.period, job.failed_attempts
    )
}

/// The renewal for `period` was paid: the subscription moves into it and the next
/// period's job is created.
fn renewal_paid<'a>(
    subscription: &'a Subscription,
    package: &Package,
    period: i64,
    intent: &PaymentIntent,
    description: &str,
    now: DateTime<Utc>,
) -> Settlement<'a> {
    let start = subscription.current_period_end;
    let end = add_period(start, package.interval, 1);
    let transaction = Transaction {
        id: Transaction::new_id(),
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
    Settlement {
        subscription_id: &subscription.id,
        change: Some(change),
        transaction: Some(transaction),
        jobs: JobChange::Settle {
            period,
            next: Some((period + 1, end)),
        },
        billing_failed_for: None,
    }
}

/// The subscription ends at `at` (or now, if that is earlier) without another charge.
fn expiry<'a>(
    subscription: &'a Subscription,
    job: &BillingJob,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Settlement<'a> {
    let mut change = SubscriptionChange::from(subscription);
    change.status = SubscriptionStatus::Expired;
    change.access_until = Some(at.min(now));
    change.ended_at = Some(at.min(now));
    Settlement {
        subscription_id: &subscription.id,
        change: Some(change),
        transaction: None,
        jobs: JobChange::Settle {
            period: job.period,
            next: None,
        },
        billing_failed_for: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_waits_until_no_batch_is_in_flight() {
        use futures_util::FutureExt;

        let in_flight = BatchesInFlight::default();
        let first = in_flight.begin();
        let second = in_flight.begin();
        let mut settled = std::pin::pin!(in_flight.all_settled());
        assert!((&mut settled).now_or_never().is_none());
        drop(first);
        assert!((&mut settled).now_or_never().is_none(), "one batch is left");
        drop(second);
        assert!(settled.now_or_never().is_some());
        assert!(
            in_flight.all_settled().now_or_never().is_some(),
            "nothing in flight: no wait"
        );
    }

    #[test]
    fn a_renewal_is_charging_only_while_its_batch_holds_it() {
        let in_hand = RenewalsInHand::default();
        let batch = in_hand.mark_charging([("sub-a", 2), ("sub-b", 5)]);
        assert!(in_hand.contains("sub-a", 2));
        assert!(in_hand.contains("sub-b", 5));
        assert!(
            !in_hand.contains("sub-a", 3),
            "another period of the same subscription"
        );
        let other = in_hand.mark_charging([("sub-c", 1)]);
        drop(batch);
        assert!(!in_hand.contains("sub-a", 2));
        assert!(!in_hand.contains("sub-b", 5));
        assert!(
            in_hand.contains("sub-c", 1),
            "another batch's renewal stays"
        );
        drop(other);
        assert!(!in_hand.contains("sub-c", 1));
    }

    #[test]
    fn a_paid_renewal_stays_in_hand_until_enough_newer_ones_were_paid() {
        let in_hand = RenewalsInHand::default();
        let batch = in_hand.mark_charging([("sub-a", 2)]);
        in_hand.record_paid([("sub-a", 2)]);
        drop(batch);
        assert!(in_hand.contains("sub-a", 2), "recorded as paid");
        assert!(!in_hand.contains("sub-a", 3), "the next period is not");
        let newer: Vec<String> = (0..PAID_REMEMBERED).map(|n| format!("sub-{n}")).collect();
        in_hand.record_paid(newer.iter().map(|id| (id.as_str(), 1)));
        assert!(
            !in_hand.contains("sub-a", 2),
            "forgotten: its webhook reads the database"
        );
        assert!(in_hand.contains(&newer[0], 1));
        assert!(in_hand.contains(&newer[PAID_REMEMBERED - 1], 1));
    }
}
