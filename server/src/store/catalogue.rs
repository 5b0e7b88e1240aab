use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreError, classify, to_millis};
use crate::core::model::{
    Currency, IapProduct, MetadataItem, Money, Package, Period, PeriodUnit, SalesChannel,
    StorePlatform,
};

macro_rules! package_columns {
    () => {
        "id, title, body, style, amount_minor, currency, interval_count, interval_unit, \
         duration_count, duration_unit, recurring, trial_days, sales_channel, display_order"
    };
}

/// Every detail row of every package, one kind per branch, for one round trip.
macro_rules! package_details {
    () => {
        "SELECT * FROM (\
         SELECT 'entitlement' AS kind, package_id, entitlement AS first, \
         CAST(NULL AS TEXT) AS second, CAST(NULL AS TEXT) AS third, CAST(0 AS BIGINT) AS position \
         FROM package_entitlements \
         UNION ALL SELECT 'country', package_id, country_code, NULL, NULL, 0 FROM package_countries \
         UNION ALL SELECT 'store', package_id, platform, product_id, NULL, 0 FROM package_iap_products \
         UNION ALL SELECT 'metadata', package_id, name, code, value, position FROM package_metadata\
         ) AS details"
    };
}

fn period(count: i64, unit: &str) -> Result<Period, StoreError> {
    let unit = PeriodUnit::parse(unit)
        .ok_or_else(|| StoreError::Corrupt(format!("period unit {unit}")))?;
    let count =
        u32::try_from(count).map_err(|_| StoreError::Corrupt(format!("period count {count}")))?;
    Ok(Period { count, unit })
}

fn package_from_row(row: &AnyRow) -> Result<Package, StoreError> {
    let currency: String = row.try_get("currency")?;
    let currency = Currency::parse(&currency)
        .ok_or_else(|| StoreError::Corrupt(format!("currency {currency}")))?;
    let sales_channel: String = row.try_get("sales_channel")?;
    let duration_count: Option<i64> = row.try_get("duration_count")?;
    let duration_unit: Option<String> = row.try_get("duration_unit")?;
    let trial_days: Option<i64> = row.try_get("trial_days")?;
    Ok(Package {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        style: row.try_get("style")?,
        price: Money {
            minor_units: row.try_get("amount_minor")?,
            currency,
        },
        interval: period(
            row.try_get("interval_count")?,
            &row.try_get::<String, _>("interval_unit")?,
        )?,
        duration: match (duration_count, duration_unit) {
            (Some(count), Some(unit)) => Some(period(count, &unit)?),
            _ => None,
        },
        recurring: row.try_get::<i64, _>("recurring")? != 0,
        trial_days: trial_days
            .map(|days| {
                u32::try_from(days).map_err(|_| StoreError::Corrupt(format!("trial days {days}")))
            })
            .transpose()?,
        sales_channel: SalesChannel::parse(&sales_channel)
            .ok_or_else(|| StoreError::Corrupt(format!("sales channel {sales_channel}")))?,
        display_order: row.try_get("display_order")?,
        entitlements: Vec::new(),
        countries: Vec::new(),
        iap_products: Vec::new(),
        metadata: Vec::new(),
    })
}

impl Store {
    /// Active packages in display order, each with its entitlements, countries, store
    /// products and metadata.
    pub async fn packages(&self) -> Result<Vec<Package>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            package_columns!(),
            " FROM packages WHERE active = 1 ORDER BY display_order, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut packages = rows
            .iter()
            .map(package_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.attach_package_details(&mut packages, None).await?;
        Ok(packages)
    }

    pub async fn package(&self, id: &str) -> Result<Option<Package>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            package_columns!(),
            " FROM packages WHERE active = 1 AND id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut packages = vec![package_from_row(&row)?];
        self.attach_package_details(&mut packages, Some(id)).await?;
        Ok(packages.pop())
    }

    /// The active package an app store sells as `product_id`.
    pub async fn package_for_store_product(
        &self,
        platform: StorePlatform,
        product_id: &str,
    ) -> Result<Option<Package>, StoreError> {
        let package_id: Option<String> = sqlx::query_scalar(
            "SELECT package_id FROM package_iap_products WHERE platform = $1 AND product_id = $2",
        )
        .bind(platform.as_str())
        .bind(product_id)
        .fetch_optional(&self.pool)
        .await?;
        match package_id {
            Some(id) => self.package(&id).await,
            None => Ok(None),
        }
    }

    /// Fills in entitlements, countries, store products and metadata with one query: the
    /// package list is the busiest read, so it costs two round trips, not five.
    async fn attach_package_details(
        &self,
        packages: &mut [Package],
        only: Option<&str>,
    ) -> Result<(), StoreError> {
        let index: HashMap<String, usize> = packages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let rows = match only {
            Some(id) => {
                sqlx::query(concat!(
                    package_details!(),
                    " WHERE package_id = $1 ORDER BY kind, package_id, position, first"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    package_details!(),
                    " ORDER BY kind, package_id, position, first"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        for row in &rows {
            let Some(&i) = index.get(&row.try_get::<String, _>("package_id")?) else {
                continue;
            };
            let kind: String = row.try_get("kind")?;
            let first: String = row.try_get("first")?;
            let second = || -> Result<String, StoreError> {
                row.try_get::<Option<String>, _>("second")?
                    .ok_or_else(|| StoreError::Corrupt(format!("{kind} detail without a value")))
            };
            let package = &mut packages[i];
            match kind.as_str() {
                "entitlement" => package.entitlements.push(first),
                "country" => package.countries.push(first),
                "store" => package.iap_products.push(IapProduct {
                    platform: StorePlatform::parse(&first)
                        .ok_or_else(|| StoreError::Corrupt(format!("store platform {first}")))?,
                    product_id: second()?,
                }),
                "metadata" => package.metadata.push(MetadataItem {
                    name: first,
                    code: second()?,
                    value: row
                        .try_get::<Option<String>, _>("third")?
                        .unwrap_or_default(),
                }),
                other => return Err(StoreError::Corrupt(format!("package detail kind {other}"))),
            }
        }
        for package in packages.iter_mut() {
            package.iap_products.sort_by_key(|product| product.platform);
        }
        Ok(())
    }

    /// Writes a package and replaces its details, all or nothing.
    pub async fn upsert_package(
        &self,
        package: &Package,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO packages (id, title, body, style, amount_minor, currency, interval_count, \
             interval_unit, duration_count, duration_unit, recurring, trial_days, sales_channel, \
             display_order, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, \
             style = excluded.style, amount_minor = excluded.amount_minor, \
             currency = excluded.currency, interval_count = excluded.interval_count, \
             interval_unit = excluded.interval_unit, duration_count = excluded.duration_count, \
             duration_unit = excluded.duration_unit, recurring = excluded.recurring, \
             trial_days = excluded.trial_days, sales_channel = excluded.sales_channel, \
             display_order = excluded.display_order, active = 1",
        )
        .bind(&package.id)
        .bind(&package.title)
        .bind(&package.body)
        .bind(package.style.as_deref())
        .bind(package.price.minor_units)
        .bind(package.price.currency.code())
        .bind(i64::from(package.interval.count))
        .bind(package.interval.unit.as_str())
        .bind(package.duration.map(|d| i64::from(d.count)))
        .bind(package.duration.map(|d| d.unit.as_str()))
        .bind(i64::from(package.recurring))
        .bind(package.trial_days.map(i64::from))
        .bind(package.sales_channel.as_str())
        .bind(package.display_order)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        for table in [
            "package_entitlements",
            "package_countries",
            "package_iap_products",
            "package_metadata",
        ] {
            // `table` comes from the fixed list above.
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE package_id = $1"
            )))
            .bind(&package.id)
            .execute(&mut *tx)
            .await?;
        }
        for entitlement in &package.entitlements {
            sqlx::query(
                "INSERT INTO package_entitlements (package_id, entitlement) VALUES ($1, $2)",
            )
            .bind(&package.id)
            .bind(entitlement)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        for country in &package.countries {
            sqlx::query("INSERT INTO package_countries (package_id, country_code) VALUES ($1, $2)")
                .bind(&package.id)
                .bind(country)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        for product in &package.iap_products {
            sqlx::query(
                "INSERT INTO package_iap_products (package_id, platform, product_id) VALUES ($1, $2, $3)",
            )
            .bind(&package.id)
            .bind(product.platform.as_str())
            .bind(&product.product_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        for (position, item) in package.metadata.iter().enumerate() {
            sqlx::query(
                "INSERT INTO package_metadata (package_id, position, name, code, value) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&package.id)
            .bind(position as i64)
            .bind(&item.name)
            .bind(&item.code)
            .bind(&item.value)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        tx.commit().await?;
        Ok(())
    }
}
