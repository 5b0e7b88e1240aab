use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreError, from_millis, to_millis};
use crate::core::model::{PlaybackView, SortOrder};

impl Store {
    pub async fn record_view(
        &self,
        customer_id: &str,
        entry_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO playback_views (customer_id, entry_id, position_seconds, last_viewed_at) \
             VALUES ($1, $2, 0, $3) ON CONFLICT (customer_id, entry_id) \
             DO UPDATE SET last_viewed_at = excluded.last_viewed_at",
        )
        .bind(customer_id)
        .bind(entry_id)
        .bind(to_millis(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// One page of a customer's viewing history, newest or oldest first.
    pub async fn views(
        &self,
        customer_id: &str,
        order: SortOrder,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<PlaybackView>, StoreError> {
        let direction = match order {
            SortOrder::Ascending => "ASC",
            SortOrder::Descending => "DESC",
        };
        // `direction` is one of two literals.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT entry_id, position_seconds, last_viewed_at FROM playback_views \
             WHERE customer_id = $1 ORDER BY last_viewed_at {direction}, entry_id {direction} \
             LIMIT $2 OFFSET $3"
        )))
        .bind(customer_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PlaybackView {
                    entry_id: row.try_get("entry_id")?,
                    position_seconds: row.try_get("position_seconds")?,
                    last_viewed_at: from_millis(row.try_get("last_viewed_at")?)?,
                })
            })
            .collect()
    }
}
