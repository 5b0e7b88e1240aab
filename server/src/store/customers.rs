use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, classify, from_millis, to_millis};
use crate::core::model::{CustomField, CustomFieldValue, Customer};

macro_rules! customer_columns {
    () => {
        "id, issuer, subject, email, first_name, last_name, deleted, created_at"
    };
}

fn customer_from_row(row: &AnyRow) -> Result<Customer, StoreError> {
    Ok(Customer {
        id: row.try_get("id")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// What an account update writes, all in one transaction.
pub struct AccountUpdate<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub custom_values: &'a [(String, String)],
}

impl Store {
    /// Returns the customer for this identity, creating it on first sight and following an
    /// email change at the identity provider. Two first logins racing each other get the
    /// same row: the (issuer, subject) constraint decides. A returning customer costs one read.
    pub async fn customer_for_identity(
        &self,
        candidate: &Customer,
    ) -> Result<Customer, StoreError> {
        if let Some(mut known) = self.customer_by_identity(candidate).await? {
            if !candidate.email.is_empty() && candidate.email != known.email {
                let _turn = self.write_turn().await;
                sqlx::query("UPDATE customers SET email = $2, updated_at = $3 WHERE id = $1")
                    .bind(&known.id)
                    .bind(&candidate.email)
                    .bind(to_millis(candidate.created_at))
                    .execute(&self.writer)
                    .await
                    .map_err(classify)?;
                known.email = candidate.email.clone();
            }
            return Ok(known);
        }
        let now = to_millis(candidate.created_at);
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO customers (id, issuer, subject, email, first_name, last_name, deleted, \
             session_guard, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7) \
             ON CONFLICT (issuer, subject) DO NOTHING",
        )
        .bind(&candidate.id)
        .bind(&candidate.issuer)
        .bind(&candidate.subject)
        .bind(&candidate.email)
        .bind(&candidate.first_name)
        .bind(&candidate.last_name)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        self.customer_by_identity(candidate)
            .await?
            .ok_or(StoreError::NotFound("customer"))
    }

    async fn customer_by_identity(
        &self,
        identity: &Customer,
    ) -> Result<Option<Customer>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            customer_columns!(),
            " FROM customers WHERE issuer = $1 AND subject = $2"
        ))
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(customer_from_row).transpose()
    }

    pub async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            customer_columns!(),
            " FROM customers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(customer_from_row).transpose()
    }

    pub async fn update_account(
        &self,
        customer_id: &str,
        update: &AccountUpdate<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE customers SET first_name = COALESCE($2, first_name), \
             last_name = COALESCE($3, last_name), updated_at = $4 WHERE id = $1",
        )
        .bind(customer_id)
        .bind(update.first_name)
        .bind(update.last_name)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound("customer"));
        }
        for (field_id, value) in update.custom_values {
            sqlx::query(
                "INSERT INTO customer_custom_values (customer_id, field_id, value) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (customer_id, field_id) DO UPDATE SET value = excluded.value",
            )
            .bind(customer_id)
            .bind(field_id)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn custom_fields(&self) -> Result<Vec<CustomField>, StoreError> {
        let rows =
            sqlx::query("SELECT id, label, required FROM custom_fields ORDER BY display_order, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(CustomField {
                    id: row.try_get("id")?,
                    label: row.try_get("label")?,
                    required: row.try_get::<i64, _>("required")? != 0,
                })
            })
            .collect()
    }

    pub async fn upsert_custom_field(
        &self,
        field: &CustomField,
        display_order: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO custom_fields (id, label, required, display_order) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET label = excluded.label, required = excluded.required, \
             display_order = excluded.display_order",
        )
        .bind(&field.id)
        .bind(&field.label)
        .bind(i64::from(field.required))
        .bind(display_order)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    /// Every defined field with this customer's value, if any.
    pub async fn custom_values(
        &self,
        customer_id: &str,
    ) -> Result<Vec<CustomFieldValue>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.id, f.label, f.required, v.value FROM custom_fields f \
             LEFT JOIN customer_custom_values v ON v.field_id = f.id AND v.customer_id = $1 \
             ORDER BY f.display_order, f.id",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CustomFieldValue {
                    field: CustomField {
                        id: row.try_get("id")?,
                        label: row.try_get("label")?,
                        required: row.try_get::<i64, _>("required")? != 0,
                    },
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }
}
