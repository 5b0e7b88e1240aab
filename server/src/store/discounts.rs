//! Discount codes: defined from configuration (and re-synced on request), redeemed per
//! basket. Single use is enforced by a unique key in `discount_redemptions`.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, classify, from_millis, to_millis};
use crate::core::model::{Currency, Discount, DiscountValue, Money};

fn discount_from_row(row: &AnyRow, package_ids: Vec<String>) -> Result<Discount, StoreError> {
    let kind: String = row.try_get("kind")?;
    let value: i64 = row.try_get("value")?;
    let value = match kind.as_str() {
        "percent" => DiscountValue::Percent(
            u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("percent {value}")))?,
        ),
        "fixed" => {
            let currency: Option<String> = row.try_get("currency")?;
            let currency = currency
                .as_deref()
                .and_then(Currency::parse)
                .ok_or_else(|| StoreError::Corrupt("fixed discount without currency".into()))?;
            DiscountValue::Fixed(Money {
                minor_units: value,
                currency,
            })
        }
        other => return Err(StoreError::Corrupt(format!("discount kind {other}"))),
    };
    let time = |column: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        row.try_get::<Option<i64>, _>(column)?
            .map(from_millis)
            .transpose()
    };
    Ok(Discount {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        value,
        single_use: row.try_get::<i64, _>("single_use")? != 0,
        valid_from: time("valid_from")?,
        valid_until: time("valid_until")?,
        active: row.try_get::<i64, _>("active")? != 0,
        package_ids,
    })
}

impl Store {
    /// Creates or replaces a discount's definition (its redemptions stay).
    pub async fn upsert_discount(
        &self,
        discount: &Discount,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (kind, value, currency) = match discount.value {
            DiscountValue::Percent(percent) => ("percent", i64::from(percent), None),
            DiscountValue::Fixed(amount) => (
                "fixed",
                amount.minor_units,
                Some(amount.currency.code().to_owned()),
            ),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO discounts (id, code, kind, value, currency, single_use, valid_from, \
             valid_until, active, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, kind = excluded.kind, \
             value = excluded.value, currency = excluded.currency, \
             single_use = excluded.single_use, valid_from = excluded.valid_from, \
             valid_until = excluded.valid_until, active = excluded.active, \
             updated_at = excluded.updated_at",
        )
        .bind(&discount.id)
        .bind(discount.code.to_ascii_uppercase())
        .bind(kind)
        .bind(value)
        .bind(currency)
        .bind(i64::from(discount.single_use))
        .bind(discount.valid_from.map(to_millis))
        .bind(discount.valid_until.map(to_millis))
        .bind(i64::from(discount.active))
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        sqlx::query("DELETE FROM discount_packages WHERE discount_id = $1")
            .bind(&discount.id)
            .execute(&mut *tx)
            .await?;
        for package_id in &discount.package_ids {
            sqlx::query("INSERT INTO discount_packages (discount_id, package_id) VALUES ($1, $2)")
                .bind(&discount.id)
                .bind(package_id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn discount_by_code(&self, code: &str) -> Result<Option<Discount>, StoreError> {
        let row = sqlx::query(
            "SELECT id, code, kind, value, currency, single_use, valid_from, valid_until, active \
             FROM discounts WHERE code = $1",
        )
        .bind(code.trim().to_ascii_uppercase())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let package_ids: Vec<String> = sqlx::query_scalar(
            "SELECT package_id FROM discount_packages WHERE discount_id = $1 ORDER BY package_id",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        discount_from_row(&row, package_ids).map(Some)
    }

    /// Whether a single-use discount has been redeemed.
    pub async fn discount_redeemed(&self, discount_id: &str) -> Result<bool, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM discount_redemptions WHERE discount_id = $1")
                .bind(discount_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(count > 0)
    }
}
