//! Baskets, subscriptions, transactions, billing profiles, the billing clock's jobs and
//! the provider events already applied.
//!
//! Invariant: every change of a subscription is guarded by the state it was decided from
//! (`status` and `current_period`), so two replicas or a replayed notification racing on
//! one subscription cannot both apply; the loser sees zero rows changed.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::placeholders::{ROWS_PER_RESULT, ROWS_PER_STATEMENT};
use super::{Backend, Store, StoreError, WriteTransaction, classify, from_millis, to_millis};
use crate::core::model::{
    Basket, BasketKind, BasketPurpose, BasketStatus, BillingProfile, CardSummary, Currency, Money,
    PaymentProvider, Subscription, SubscriptionStatus, Transaction, TransactionKind,
};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn money(minor: i64, currency: &str) -> Result<Money, StoreError> {
    Ok(Money {
        minor_units: minor,
        currency: Currency::parse(currency).ok_or_else(|| corrupt("currency", currency))?,
    })
}

fn optional_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_millis)
        .transpose()
}

macro_rules! basket_columns {
    () => {
        "id, customer_id, kind, purpose, package_id, list_amount_minor, amount_minor, currency, \
         discount_id, client_secret, status, subscription_id, created_at"
    };
}

fn basket_from_row(row: &AnyRow) -> Result<Basket, StoreError> {
    let kind: String = row.try_get("kind")?;
    let purpose: String = row.try_get("purpose")?;
    let status: String = row.try_get("status")?;
    let currency: Option<String> = row.try_get("currency")?;
    let price = |column: &str| -> Result<Option<Money>, StoreError> {
        match (row.try_get::<Option<i64>, _>(column)?, &currency) {
            (Some(minor), Some(currency)) => Ok(Some(money(minor, currency)?)),
            _ => Ok(None),
        }
    };
    Ok(Basket {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        kind: BasketKind::parse(&kind).ok_or_else(|| corrupt("basket kind", &kind))?,
        purpose: BasketPurpose::parse(&purpose)
            .ok_or_else(|| corrupt("basket purpose", &purpose))?,
        package_id: row.try_get("package_id")?,
        list_price: price("list_amount_minor")?,
        price: price("amount_minor")?,
        discount_id: row.try_get("discount_id")?,
        client_secret: row.try_get("client_secret")?,
        status: BasketStatus::parse(&status).ok_or_else(|| corrupt("basket status", &status))?,
        subscription_id: row.try_get("subscription_id")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

macro_rules! subscription_columns {
    () => {
        "id, customer_id, package_id, provider, origin_reference, status, recurring, auto_renew, \
         amount_minor, currency, current_period, current_period_start, current_period_end, \
         access_until, cancel_at_period_end, cancelled_at, ended_at, last_failure_code, created_at"
    };
}

fn subscription_from_row(row: &AnyRow) -> Result<Subscription, StoreError> {
    let provider: String = row.try_get("provider")?;
    let status: String = row.try_get("status")?;
    let currency: String = row.try_get("currency")?;
    Ok(Subscription {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        package_id: row.try_get("package_id")?,
        provider: PaymentProvider::parse(&provider)
            .ok_or_else(|| corrupt("provider", &provider))?,
        origin_reference: row.try_get("origin_reference")?,
        status: SubscriptionStatus::parse(&status)
            .ok_or_else(|| corrupt("subscription status", &status))?,
        recurring: row.try_get::<i64, _>("recurring")? != 0,
        auto_renew: row.try_get::<i64, _>("auto_renew")? != 0,
        price: money(row.try_get("amount_minor")?, &currency)?,
        current_period: row.try_get("current_period")?,
        current_period_start: from_millis(row.try_get("current_period_start")?)?,
        current_period_end: from_millis(row.try_get("current_period_end")?)?,
        access_until: optional_time(row, "access_until")?,
        cancel_at_period_end: row.try_get::<i64, _>("cancel_at_period_end")? != 0,
        cancelled_at: optional_time(row, "cancelled_at")?,
        ended_at: optional_time(row, "ended_at")?,
        last_failure_code: row.try_get("last_failure_code")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

macro_rules! transaction_columns {
    () => {
        "id, customer_id, subscription_id, basket_id, kind, provider, external_id, reference, \
         description, amount_minor, currency, succeeded, provider_message, period, created_at"
    };
}

fn transaction_from_row(row: &AnyRow) -> Result<Transaction, StoreError> {
    let kind: String = row.try_get("kind")?;
    let provider: String = row.try_get("provider")?;
    let currency: String = row.try_get("currency")?;
    Ok(Transaction {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        subscription_id: row.try_get("subscription_id")?,
        basket_id: row.try_get("basket_id")?,
        kind: TransactionKind::parse(&kind).ok_or_else(|| corrupt("transaction kind", &kind))?,
        provider: PaymentProvider::parse(&provider)
            .ok_or_else(|| corrupt("provider", &provider))?,
        external_id: row.try_get("external_id")?,
        reference: row.try_get("reference")?,
        description: row.try_get("description")?,
        amount: money(row.try_get("amount_minor")?, &currency)?,
        succeeded: row.try_get::<i64, _>("succeeded")? != 0,
        provider_message: row.try_get("provider_message")?,
        period: row.try_get("period")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

macro_rules! billing_profile_columns {
    () => {
        "customer_id, provider, provider_customer_id, payment_method_id, card_brand, card_last4, \
         card_exp_month, card_exp_year, card_country, last_failed_at, created_at"
    };
}

fn billing_profile_from_row(row: &AnyRow) -> Result<BillingProfile, StoreError> {
    let provider: String = row.try_get("provider")?;
    let card = match (
        row.try_get::<Option<String>, _>("card_brand")?,
        row.try_get::<Option<String>, _>("card_last4")?,
        row.try_get::<Option<i64>, _>("card_exp_month")?,
        row.try_get::<Option<i64>, _>("card_exp_year")?,
    ) {
        (Some(brand), Some(last4), Some(exp_month), Some(exp_year)) => Some(CardSummary {
            brand,
            last4,
            exp_month: u32::try_from(exp_month).map_err(|_| corrupt("card month", "?"))?,
            exp_year: i32::try_from(exp_year).map_err(|_| corrupt("card year", "?"))?,
            country: row.try_get("card_country")?,
        }),
        _ => None,
    };
    Ok(BillingProfile {
        customer_id: row.try_get("customer_id")?,
        provider: PaymentProvider::parse(&provider)
            .ok_or_else(|| corrupt("provider", &provider))?,
        provider_customer_id: row.try_get("provider_customer_id")?,
        payment_method_id: row.try_get("payment_method_id")?,
        card,
        last_failed_at: optional_time(row, "last_failed_at")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// What a provider's notification about a renewal finds stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalNotice {
    /// The notification was applied before.
    pub seen: bool,
    /// The renewal's period is recorded, or a worker is charging for it.
    pub in_hand: bool,
}

/// A period of a subscription whose end needs settling, as claimed by one worker.
#[derive(Debug, Clone)]
pub struct BillingJob {
    pub subscription_id: String,
    /// The period that starts when the job is due (the one to charge for).
    pub period: i64,
    pub due_at: DateTime<Utc>,
    pub failed_attempts: i64,
}

/// Whose billing jobs a claim or a count covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobScope<'a> {
    /// Every customer's: the billing clock.
    All,
    /// One customer's (by boxoffice customer id): a retry the customer asked for.
    Customer(&'a str),
}

impl JobScope<'_> {
    /// The condition on `billing_jobs` that keeps to the scope, its customer bound as
    /// parameter `$n`.
    fn condition(self, n: usize) -> String {
        match self {
            JobScope::All => String::new(),
            JobScope::Customer(_) => format!(
                " AND subscription_id IN (SELECT id FROM subscriptions WHERE customer_id = ${n})"
            ),
        }
    }
}

/// How a subscription changes, guarded by the state it was decided from.
#[derive(Debug, Clone)]
pub struct SubscriptionChange<'a> {
    pub id: &'a str,
    pub expected_status: SubscriptionStatus,
    pub expected_period: i64,
    pub status: SubscriptionStatus,
    pub current_period: i64,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub access_until: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<&'a str>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_failure_code: Option<String>,
}

impl<'a> SubscriptionChange<'a> {
    /// Starts from the subscription as read: change the fields that move.
    pub fn from(subscription: &'a Subscription) -> Self {
        SubscriptionChange {
            id: &subscription.id,
            expected_status: subscription.status,
            expected_period: subscription.current_period,
            status: subscription.status,
            current_period: subscription.current_period,
            current_period_start: subscription.current_period_start,
            current_period_end: subscription.current_period_end,
            access_until: subscription.access_until,
            cancel_at_period_end: subscription.cancel_at_period_end,
            cancelled_at: subscription.cancelled_at,
            cancel_reason: None,
            ended_at: subscription.ended_at,
            last_failure_code: subscription.last_failure_code.clone(),
        }
    }
}

/// What happens to the billing clock along with a subscription change.
#[derive(Debug, Clone)]
pub enum JobChange {
    /// Leave the jobs as they are.
    None,
    /// The claimed job is settled; optionally the next period's job is created.
    Settle {
        period: i64,
        next: Option<(i64, DateTime<Utc>)>,
    },
    /// The job stays pending, due again at this time, one more failure recorded.
    Retry { period: i64, due_at: DateTime<Utc> },
    /// Every pending job of the subscription is dropped (cancelled, refunded, expired).
    AbandonAll,
}

/// How the billing clock settles one claimed job.
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    pub subscription_id: &'a str,
    /// `None` settles the job alone (the subscription had moved on already).
    pub change: Option<SubscriptionChange<'a>>,
    pub transaction: Option<Transaction>,
    pub jobs: JobChange,
    /// A refused renewal: this customer's billing profile records the failure.
    pub billing_failed_for: Option<&'a str>,
}

/// A card and customer at the provider, to save on the customer's billing profile.
#[derive(Debug, Clone)]
pub struct BillingProfileUpdate<'a> {
    pub customer_id: &'a str,
    pub provider: PaymentProvider,
    pub provider_customer_id: &'a str,
    pub payment_method_id: Option<&'a str>,
    pub card: Option<&'a CardSummary>,
}

/// Inserts a new subscription; a second one for the same provider purchase
/// (`subscriptions_origin_unique`) is refused with [`StoreError::Constraint`].
async fn insert_subscription(
    tx: &mut sqlx::AnyConnection,
    subscription: &Subscription,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO subscriptions (",
        subscription_columns!(),
        ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $19)"
    ))
    .bind(&subscription.id)
    .bind(&subscription.customer_id)
    .bind(&subscription.package_id)
    .bind(subscription.provider.as_str())
    .bind(&subscription.origin_reference)
    .bind(subscription.status.as_str())
    .bind(i64::from(subscription.recurring))
    .bind(i64::from(subscription.auto_renew))
    .bind(subscription.price.minor_units)
    .bind(subscription.price.currency.code())
    .bind(subscription.current_period)
    .bind(to_millis(subscription.current_period_start))
    .bind(to_millis(subscription.current_period_end))
    .bind(subscription.access_until.map(to_millis))
    .bind(i64::from(subscription.cancel_at_period_end))
    .bind(subscription.cancelled_at.map(to_millis))
    .bind(subscription.ended_at.map(to_millis))
    .bind(subscription.last_failure_code.as_deref())
    .bind(to_millis(subscription.created_at))
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    Ok(())
}

impl Store {
    pub async fn insert_basket(&self, basket: &Basket) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(concat!(
            "INSERT INTO baskets (",
            basket_columns!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
        ))
        .bind(&basket.id)
        .bind(&basket.customer_id)
        .bind(basket.kind.as_str())
        .bind(basket.purpose.as_str())
        .bind(basket.package_id.as_deref())
        .bind(basket.list_price.map(|price| price.minor_units))
        .bind(basket.price.map(|price| price.minor_units))
        .bind(basket.price.map(|price| price.currency.code().to_owned()))
        .bind(basket.discount_id.as_deref())
        .bind(&basket.client_secret)
        .bind(basket.status.as_str())
        .bind(basket.subscription_id.as_deref())
        .bind(to_millis(basket.created_at))
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    pub async fn basket(&self, id: &str) -> Result<Option<Basket>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            basket_columns!(),
            " FROM baskets WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(basket_from_row).transpose()
    }

    /// Redeems the discount for the basket and lowers its price, in one transaction. A
    /// single-use code already redeemed, or a basket that already has a discount, is
    /// refused by the database (`StoreError::Constraint`) and nothing changes.
    pub async fn redeem_discount(
        &self,
        basket: &Basket,
        discount_id: &str,
        single_use: bool,
        price: Money,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO discount_redemptions (basket_id, discount_id, customer_id, \
             single_use_key, redeemed_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&basket.id)
        .bind(discount_id)
        .bind(&basket.customer_id)
        .bind(single_use.then_some(discount_id))
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let updated = sqlx::query(
            "UPDATE baskets SET amount_minor = $2, discount_id = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'open' AND discount_id IS NULL",
        )
        .bind(&basket.id)
        .bind(price.minor_units)
        .bind(discount_id)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Constraint(
                "baskets_open_without_discount".into(),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Undoes [`Store::redeem_discount`] when the provider refused the new amount.
    pub async fn release_discount(
        &self,
        basket: &Basket,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM discount_redemptions WHERE basket_id = $1")
            .bind(&basket.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE baskets SET amount_minor = list_amount_minor, discount_id = NULL, \
             updated_at = $2 WHERE id = $1",
        )
        .bind(&basket.id)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn billing_profile(
        &self,
        customer_id: &str,
    ) -> Result<Option<BillingProfile>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            billing_profile_columns!(),
            " FROM billing_profiles WHERE customer_id = $1"
        ))
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(billing_profile_from_row).transpose()
    }

    /// Creates the profile, or updates its provider customer and (when given) its card.
    pub async fn save_billing_profile(
        &self,
        update: &BillingProfileUpdate<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        upsert_billing_profile(&mut tx, update, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    /// The subscription a provider's purchase started (its `origin_reference`).
    pub async fn subscription_by_origin(
        &self,
        provider: PaymentProvider,
        origin_reference: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions WHERE provider = $1 AND origin_reference = $2"
        ))
        .bind(provider.as_str())
        .bind(origin_reference)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    /// A subscription an app store sold starts, with its first payment. Returns `false`,
    /// changing nothing, when the store's purchase already has its subscription (two
    /// verifications of one receipt racing).
    pub async fn start_store_subscription(
        &self,
        subscription: &Subscription,
        payment: &Transaction,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        match insert_subscription(&mut tx, subscription).await {
            Ok(()) => {}
            Err(StoreError::Constraint(constraint)) if constraint.contains("origin") => {
                tx.rollback().await?;
                return Ok(false);
            }
            Err(error) => return Err(error),
        }
        insert_transaction(&mut tx, payment).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The subscriptions with these ids (a billing batch's), in no particular order.
    pub async fn subscriptions_with_ids(
        &self,
        ids: &[&str],
    ) -> Result<Vec<Subscription>, StoreError> {
        let select = concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions WHERE id IN"
        );
        let rows = self.rows_with_keys(select, ids).await?;
        rows.iter().map(subscription_from_row).collect()
    }

    /// The billing profiles of these customers, those that have one.
    pub async fn billing_profiles_of(
        &self,
        customer_ids: &[&str],
    ) -> Result<Vec<BillingProfile>, StoreError> {
        let select = concat!(
            "SELECT ",
            billing_profile_columns!(),
            " FROM billing_profiles WHERE customer_id IN"
        );
        let rows = self.rows_with_keys(select, customer_ids).await?;
        rows.iter().map(billing_profile_from_row).collect()
    }

    /// The rows `select` (ending in `IN`) finds for these keys.
    async fn rows_with_keys(&self, select: &str, keys: &[&str]) -> Result<Vec<AnyRow>, StoreError> {
        let mut rows = Vec::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(rows);
        }
        // One connection for every chunk: sqlx tests a connection each time it goes back to
        // the pool, which on SQLite is a round trip to the connection's thread.
        let mut connection = self.pool.acquire().await?;
        for chunk in keys.chunks(ROWS_PER_RESULT) {
            let keys = self.placeholders().list(chunk.len());
            let sql = format!("{select} ({keys})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for key in chunk {
                query = query.bind(*key);
            }
            rows.extend(query.fetch_all(&mut *connection).await?);
        }
        Ok(rows)
    }

    /// The customer's subscriptions, newest first.
    pub async fn subscriptions_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM subscriptions WHERE customer_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    /// The purchase completes: the basket closes, the subscription starts, the payment (if
    /// money was taken) is recorded, the card is saved and the billing clock set. Returns
    /// `false`, changing nothing, when the basket was already completed (a replayed
    /// notification, or the webhook and the browser racing).
    pub async fn complete_purchase(
        &self,
        basket_id: &str,
        subscription: &Subscription,
        payment: Option<&Transaction>,
        billing: Option<&BillingProfileUpdate<'_>>,
        first_job_due: Option<(i64, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let closed = sqlx::query(
            "UPDATE baskets SET status = 'completed', subscription_id = $2, updated_at = $3 \
             WHERE id = $1 AND status = 'open'",
        )
        .bind(basket_id)
        .bind(&subscription.id)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if closed.rows_affected() != 1 {
            return Ok(false);
        }
        insert_subscription(&mut tx, subscription).await?;
        if let Some(payment) = payment {
            insert_transaction(&mut tx, payment).await?;
        }
        if let Some(billing) = billing {
            upsert_billing_profile(&mut tx, billing, now).await?;
        }
        if let Some((period, due_at)) = first_job_due {
            insert_jobs(&mut tx, &[(&subscription.id, period, due_at)], now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The customer's newest open purchase basket for a package.
    pub async fn open_basket_for(
        &self,
        customer_id: &str,
        package_id: &str,
    ) -> Result<Option<Basket>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            basket_columns!(),
            " FROM baskets WHERE customer_id = $1 AND package_id = $2 AND status = 'open' \
             AND purpose = 'purchase' ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(customer_id)
        .bind(package_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(basket_from_row).transpose()
    }

    /// Marks a billing-update basket done.
    pub async fn close_basket(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE baskets SET status = 'completed', updated_at = $2 WHERE id = $1 \
             AND status = 'open'",
        )
        .bind(id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Makes the pending renewal of every past-due subscription of the customer due now
    /// (a new card was saved).
    pub async fn retry_past_due_now(
        &self,
        customer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE billing_jobs SET due_at = $2, claimed_by = NULL, claimed_until = NULL, \
             updated_at = $2 WHERE status = 'pending' AND subscription_id IN \
             (SELECT id FROM subscriptions WHERE customer_id = $1 AND status = 'past_due')",
        )
        .bind(customer_id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Marks a basket abandoned (its intent was cancelled at the provider).
    pub async fn cancel_basket(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE baskets SET status = 'canceled', updated_at = $2 WHERE id = $1 \
             AND status = 'open'",
        )
        .bind(id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records an attempt or a refund; the same provider id twice is recorded once.
    /// Returns whether it was new.
    pub async fn record_transaction(&self, transaction: &Transaction) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let new = insert_transaction(&mut tx, transaction).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Applies a subscription change with what comes with it, in one transaction: the
    /// transaction to record (if any) and the billing clock's change. Returns `false`,
    /// changing nothing, when the subscription is no longer in the state the change was
    /// decided from.
    pub async fn change_subscription(
        &self,
        change: &SubscriptionChange<'_>,
        transaction: Option<&Transaction>,
        jobs: &JobChange,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let settlement = Settlement {
            subscription_id: change.id,
            change: Some(change.clone()),
            transaction: transaction.cloned(),
            jobs: jobs.clone(),
            billing_failed_for: None,
        };
        let applied = self
            .settle_billing(std::slice::from_ref(&settlement), now)
            .await?;
        Ok(applied.first().copied().unwrap_or(false))
    }

    /// Applies settlements (a billing batch's, or one change) in one transaction, with a
    /// handful of statements whatever their number: one guarded update of the
    /// subscriptions, then, for those that applied, their transactions, jobs and billing
    /// profiles. Each is guarded as [`Store::change_subscription`] says. Returns, in order,
    /// whether each applied.
    pub async fn settle_billing(
        &self,
        settlements: &[Settlement<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        if settlements.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let changes: Vec<&SubscriptionChange<'_>> = settlements
            .iter()
            .filter_map(|settlement| settlement.change.as_ref())
            .collect();
        let updated = update_subscriptions(&mut tx, &changes, now).await?;
        let applied: Vec<bool> = settlements
            .iter()
            .map(|settlement| {
                settlement
                    .change
                    .as_ref()
                    .is_none_or(|change| updated.contains(change.id))
            })
            .collect();
        let settled = || {
            settlements
                .iter()
                .zip(&applied)
                .filter(|(_, applied)| **applied)
                .map(|(settlement, _)| settlement)
        };
        let transactions: Vec<&Transaction> = settled()
            .filter_map(|settlement| settlement.transaction.as_ref())
            .collect();
        insert_transactions(&mut tx, &transactions).await?;
        apply_job_changes(&mut tx, settled(), now).await?;
        let failed_customers: Vec<&str> = settled()
            .filter_map(|settlement| settlement.billing_failed_for)
            .collect();
        for customers in failed_customers.chunks(ROWS_PER_STATEMENT) {
            let mut placeholders = tx.placeholders();
            let failed_at = placeholders.next();
            let keys = placeholders.list(customers.len());
            let sql = format!(
                "UPDATE billing_profiles SET last_failed_at = {failed_at} WHERE customer_id IN ({keys})"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_millis(now));
            for customer in customers {
                query = query.bind(*customer);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// How many jobs of `scope` are due at `now` and not settled yet.
    pub async fn due_job_count(
        &self,
        scope: JobScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM billing_jobs WHERE status = 'pending' AND due_at <= $1{}",
            scope.condition(2)
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(to_millis(now));
        if let JobScope::Customer(customer_id) = scope {
            query = query.bind(customer_id);
        }
        Ok(query.fetch_one(&self.pool).await?)
    }

    /// Claims up to `limit` jobs of `scope` due at `now` for `worker` until `lease_until`,
    /// the earliest due first. On PostgreSQL the candidates are locked with `FOR UPDATE
    /// SKIP LOCKED`, so replicas claiming at once take disjoint sets; SQLite has one
    /// writer, which serialises claims. A job whose lease ran out (its worker died) is
    /// claimable again.
    pub async fn claim_due_jobs(
        &self,
        scope: JobScope<'_>,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<BillingJob>, StoreError> {
        // On SQLite a result longer than `ROWS_PER_RESULT` costs two thread switches a row,
        // so a claim is made of statements that short, in one write transaction. The rows
        // of PostgreSQL come over its socket: one statement claims them all.
        let (per_statement, lock) = match self.backend {
            Backend::Sqlite => (ROWS_PER_RESULT as i64, ""),
            Backend::Postgres => (limit, " FOR UPDATE SKIP LOCKED"),
        };
        let mut tx = self.begin_write().await?;
        let mut jobs: Vec<BillingJob> = Vec::new();
        // Each statement takes the earliest unclaimed jobs, so every job of the scope due
        // before the last one claimed is claimed now: the next statement starts after it
        // rather than stepping over them again.
        let mut last_claimed: Option<(i64, String)> = None;
        let in_scope = scope.condition(5);
        // The continuation's two parameters come after the scope's customer, if any.
        let (due, subscription) = match scope {
            JobScope::All => (5, 6),
            JobScope::Customer(_) => (6, 7),
        };
        let after_last = format!(
            " AND due_at >= ${due} AND (due_at > ${due} OR subscription_id > ${subscription})"
        );
        loop {
            let wanted = (limit - jobs.len() as i64).min(per_statement);
            if wanted <= 0 {
                break;
            }
            let after_last = if last_claimed.is_some() {
                after_last.as_str()
            } else {
                ""
            };
            let sql = format!(
                "UPDATE billing_jobs SET claimed_by = $1, claimed_until = $3, updated_at = $2 \
                 WHERE (subscription_id, period) IN (SELECT subscription_id, period FROM billing_jobs \
                 WHERE status = 'pending' AND due_at <= $2 \
                 AND (claimed_until IS NULL OR claimed_until < $2){in_scope}{after_last} \
                 ORDER BY due_at, subscription_id LIMIT $4{lock}) \
                 RETURNING subscription_id, period, due_at, failed_attempts",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(worker)
                .bind(to_millis(now))
                .bind(to_millis(lease_until))
                .bind(wanted);
            if let JobScope::Customer(customer_id) = scope {
                query = query.bind(customer_id);
            }
            if let Some((due, subscription)) = last_claimed.take() {
                query = query.bind(due).bind(subscription);
            }
            let rows = query.fetch_all(&mut *tx).await?;
            let claimed = rows.len() as i64;
            for row in &rows {
                let job = BillingJob {
                    subscription_id: row.try_get("subscription_id")?,
                    period: row.try_get("period")?,
                    due_at: from_millis(row.try_get("due_at")?)?,
                    failed_attempts: row.try_get("failed_attempts")?,
                };
                // RETURNING keeps no order: the last is the latest (due, subscription).
                let key = (to_millis(job.due_at), job.subscription_id.as_str());
                if last_claimed
                    .as_ref()
                    .is_none_or(|(due, subscription)| key > (*due, subscription.as_str()))
                {
                    last_claimed = Some((key.0, key.1.to_owned()));
                }
                jobs.push(job);
            }
            if claimed < wanted {
                break;
            }
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// What is known of a renewal a provider notifies about, in one read (a renewal's
    /// notification is the most frequent write-free request there is): whether the
    /// notification was applied before, and whether the renewal is in hand — its period
    /// recorded already, or a worker holding its job under a live lease, charging for it
    /// now and recording what the provider answers (or its lease runs out and another
    /// worker repeats the charge, with the same idempotency key).
    pub async fn renewal_notice(
        &self,
        provider: PaymentProvider,
        event_id: &str,
        subscription_id: &str,
        period: i64,
        now: DateTime<Utc>,
    ) -> Result<RenewalNotice, StoreError> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM provider_events WHERE provider = $1 AND event_id = $2) AS seen, \
             (SELECT COUNT(*) FROM subscriptions WHERE id = $3 AND current_period >= $4) AS recorded, \
             (SELECT COUNT(*) FROM billing_jobs WHERE subscription_id = $3 AND period = $4 \
              AND status = 'pending' AND claimed_until > $5) AS charging",
        )
        .bind(provider.as_str())
        .bind(event_id)
        .bind(subscription_id)
        .bind(period)
        .bind(to_millis(now))
        .fetch_one(&self.pool)
        .await?;
        let count =
            |column: &str| -> Result<bool, StoreError> { Ok(row.try_get::<i64, _>(column)? > 0) };
        Ok(RenewalNotice {
            seen: count("seen")?,
            in_hand: count("recorded")? || count("charging")?,
        })
    }

    /// Gives a claimed job back without settling it (the provider could not be reached).
    pub async fn release_job(&self, job: &BillingJob, worker: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE billing_jobs SET claimed_by = NULL, claimed_until = NULL \
             WHERE subscription_id = $1 AND period = $2 AND claimed_by = $3",
        )
        .bind(&job.subscription_id)
        .bind(job.period)
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The customer's transactions, one page.
    pub async fn transactions_of(
        &self,
        customer_id: &str,
        ascending: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError> {
        let sql = format!(
            concat!(
                "SELECT ",
                transaction_columns!(),
                " FROM transactions WHERE customer_id = $1 ORDER BY created_at {0}, id {0} \
                 LIMIT $2 OFFSET $3"
            ),
            if ascending { "ASC" } else { "DESC" }
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(customer_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(transaction_from_row).collect()
    }

    /// The successful payment recorded for a provider's charge, if any.
    pub async fn payment_by_external_id(
        &self,
        provider: PaymentProvider,
        external_id: &str,
    ) -> Result<Option<Transaction>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE provider = $1 AND external_id = $2 AND kind = 'payment'"
        ))
        .bind(provider.as_str())
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(transaction_from_row).transpose()
    }

    /// How many of the customer's live subscriptions wait for the customer to authenticate
    /// their card before a renewal can succeed.
    pub async fn awaiting_authentication(&self, customer_id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscriptions WHERE customer_id = $1 AND status = 'past_due' \
             AND last_failure_code = 'authentication_required'",
        )
        .bind(customer_id)
        .fetch_one(&self.pool)
        .await?)
    }
}

async fn insert_transaction(
    tx: &mut WriteTransaction,
    transaction: &Transaction,
) -> Result<bool, StoreError> {
    Ok(insert_transactions(tx, &[transaction]).await? == 1)
}

/// Records transactions; returns how many were new. No conflict target: a second record of
/// the same provider attempt and a second successful charge for one period are both
/// dropped, whichever constraint sees it.
async fn insert_transactions(
    tx: &mut WriteTransaction,
    transactions: &[&Transaction],
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in transactions.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            concat!(
                "INSERT INTO transactions (",
                transaction_columns!(),
                ") VALUES {} ON CONFLICT DO NOTHING"
            ),
            tx.placeholders().rows(chunk.len(), 15)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for transaction in chunk {
            query = query
                .bind(transaction.id.as_str())
                .bind(transaction.customer_id.as_str())
                .bind(transaction.subscription_id.as_deref())
                .bind(transaction.basket_id.as_deref())
                .bind(transaction.kind.as_str())
                .bind(transaction.provider.as_str())
                .bind(transaction.external_id.as_str())
                .bind(transaction.reference.as_str())
                .bind(transaction.description.as_str())
                .bind(transaction.amount.minor_units)
                .bind(transaction.amount.currency.code())
                .bind(i64::from(transaction.succeeded))
                .bind(transaction.provider_message.as_deref())
                .bind(transaction.period)
                .bind(to_millis(transaction.created_at));
        }
        inserted += query
            .execute(&mut **tx)
            .await
            .map_err(classify)?
            .rows_affected();
    }
    Ok(inserted)
}

/// Creates pending jobs (subscription, period, due at); one already there is kept.
async fn insert_jobs(
    tx: &mut WriteTransaction,
    jobs: &[(&str, i64, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO billing_jobs (subscription_id, period, due_at, updated_at, \
             failed_attempts, status) VALUES {} \
             ON CONFLICT (subscription_id, period) DO NOTHING",
            tx.placeholders().rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (subscription_id, period, due_at) in chunk {
            query = query
                .bind(*subscription_id)
                .bind(*period)
                .bind(to_millis(*due_at))
                .bind(to_millis(now))
                .bind(0_i64)
                .bind("pending");
        }
        query.execute(&mut **tx).await.map_err(classify)?;
    }
    Ok(())
}

async fn upsert_billing_profile(
    tx: &mut WriteTransaction,
    update: &BillingProfileUpdate<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let card = update.card;
    sqlx::query(
        "INSERT INTO billing_profiles (customer_id, provider, provider_customer_id, \
         payment_method_id, card_brand, card_last4, card_exp_month, card_exp_year, card_country, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (customer_id) DO UPDATE SET provider = excluded.provider, \
         provider_customer_id = excluded.provider_customer_id, \
         payment_method_id = COALESCE(excluded.payment_method_id, billing_profiles.payment_method_id), \
         card_brand = COALESCE(excluded.card_brand, billing_profiles.card_brand), \
         card_last4 = COALESCE(excluded.card_last4, billing_profiles.card_last4), \
         card_exp_month = COALESCE(excluded.card_exp_month, billing_profiles.card_exp_month), \
         card_exp_year = COALESCE(excluded.card_exp_year, billing_profiles.card_exp_year), \
         card_country = CASE WHEN excluded.card_brand IS NULL THEN billing_profiles.card_country \
         ELSE excluded.card_country END, \
         last_failed_at = CASE WHEN excluded.payment_method_id IS NULL \
         THEN billing_profiles.last_failed_at ELSE NULL END, \
         updated_at = excluded.updated_at",
    )
    .bind(update.customer_id)
    .bind(update.provider.as_str())
    .bind(update.provider_customer_id)
    .bind(update.payment_method_id)
    .bind(card.map(|card| card.brand.clone()))
    .bind(card.map(|card| card.last4.clone()))
    .bind(card.map(|card| i64::from(card.exp_month)))
    .bind(card.map(|card| i64::from(card.exp_year)))
    .bind(card.and_then(|card| card.country.clone()))
    .bind(to_millis(now))
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    Ok(())
}

/// The guarded updates: each subscription changes only if it is still in the state its
/// change was decided from. Returns the ids of those that changed.
async fn update_subscriptions(
    tx: &mut WriteTransaction,
    changes: &[&SubscriptionChange<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError> {
    let mut updated = HashSet::new();
    for chunk in changes.chunks(ROWS_PER_RESULT) {
        let mut placeholders = tx.placeholders();
        let rows = placeholders.rows(chunk.len(), 13);
        let updated_at = placeholders.next();
        let sql = format!(
            "WITH incoming (change_id, expected_status, expected_period, new_status, new_period, \
             new_start, new_end, new_access_until, new_cancel_at_period_end, new_cancelled_at, \
             new_cancel_reason, new_ended_at, new_failure_code) AS (VALUES {rows}) \
             UPDATE subscriptions SET status = incoming.new_status, \
             current_period = incoming.new_period, current_period_start = incoming.new_start, \
             current_period_end = incoming.new_end, access_until = incoming.new_access_until, \
             cancel_at_period_end = incoming.new_cancel_at_period_end, \
             cancelled_at = incoming.new_cancelled_at, \
             cancel_reason = COALESCE(incoming.new_cancel_reason, subscriptions.cancel_reason), \
             ended_at = incoming.new_ended_at, last_failure_code = incoming.new_failure_code, \
             updated_at = {updated_at} FROM incoming WHERE subscriptions.id = incoming.change_id \
             AND subscriptions.status = incoming.expected_status \
             AND subscriptions.current_period = incoming.expected_period RETURNING id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for change in chunk {
            query = query
                .bind(change.id)
                .bind(change.expected_status.as_str())
                .bind(change.expected_period)
                .bind(change.status.as_str())
                .bind(change.current_period)
                .bind(to_millis(change.current_period_start))
                .bind(to_millis(change.current_period_end))
                .bind(change.access_until.map(to_millis))
                .bind(i64::from(change.cancel_at_period_end))
                .bind(change.cancelled_at.map(to_millis))
                .bind(change.cancel_reason)
                .bind(change.ended_at.map(to_millis))
                .bind(change.last_failure_code.as_deref());
        }
        query = query.bind(to_millis(now));
        for row in query.fetch_all(&mut **tx).await.map_err(classify)? {
            updated.insert(row.try_get::<String, _>("id")?);
        }
    }
    Ok(updated)
}

/// The billing clock's side of settlements that applied.
async fn apply_job_changes<'s>(
    tx: &mut WriteTransaction,
    settlements: impl Iterator<Item = &'s Settlement<'s>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut done = Vec::new();
    let mut next = Vec::new();
    let mut abandoned = Vec::new();
    for settlement in settlements {
        let subscription_id = settlement.subscription_id;
        match &settlement.jobs {
            JobChange::None => {}
            JobChange::Settle { period, next: then } => {
                done.push((subscription_id, *period));
                if let Some((next_period, due_at)) = then {
                    next.push((subscription_id, *next_period, *due_at));
                }
            }
            JobChange::Retry { period, due_at } => {
                // Refused renewals are few; one statement each.
                sqlx::query(
                    "UPDATE billing_jobs SET due_at = $3, failed_attempts = failed_attempts + 1, \
                     claimed_by = NULL, claimed_until = NULL, updated_at = $4 \
                     WHERE subscription_id = $1 AND period = $2 AND status = 'pending'",
                )
                .bind(subscription_id)
                .bind(period)
                .bind(to_millis(*due_at))
                .bind(to_millis(now))
                .execute(&mut **tx)
                .await?;
            }
            JobChange::AbandonAll => abandoned.push(subscription_id),
        }
    }
    for chunk in done.chunks(ROWS_PER_STATEMENT) {
        let mut placeholders = tx.placeholders();
        let rows = placeholders.rows(chunk.len(), 2);
        let updated_at = placeholders.next();
        let sql = format!(
            // Joined with the list rather than `(subscription_id, period) IN (VALUES …)`,
            // which SQLite answers by scanning every job ever settled.
            "WITH settled (job_subscription, job_period) AS (VALUES {rows}) \
             UPDATE billing_jobs SET status = 'done', claimed_by = NULL, claimed_until = NULL, \
             updated_at = {updated_at} FROM settled WHERE billing_jobs.subscription_id = \
             settled.job_subscription AND billing_jobs.period = settled.job_period"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (subscription_id, period) in chunk {
            query = query.bind(*subscription_id).bind(*period);
        }
        query.bind(to_millis(now)).execute(&mut **tx).await?;
    }
    insert_jobs(tx, &next, now).await?;
    for chunk in abandoned.chunks(ROWS_PER_STATEMENT) {
        let mut placeholders = tx.placeholders();
        let updated_at = placeholders.next();
        let keys = placeholders.list(chunk.len());
        let sql = format!(
            "UPDATE billing_jobs SET status = 'abandoned', claimed_by = NULL, \
             claimed_until = NULL, updated_at = {updated_at} \
             WHERE status = 'pending' AND subscription_id IN ({keys})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_millis(now));
        for subscription_id in chunk {
            query = query.bind(*subscription_id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
