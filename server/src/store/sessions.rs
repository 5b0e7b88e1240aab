use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, classify, from_millis, to_millis};
use crate::core::model::Session;

macro_rules! session_columns {
    () => {
        "id, customer_id, country_code, started_at, last_seen_at, expires_at"
    };
}

fn session_from_row(row: &AnyRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        country_code: row.try_get("country_code")?,
        started_at: from_millis(row.try_get("started_at")?)?,
        last_seen_at: from_millis(row.try_get("last_seen_at")?)?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
    })
}

pub struct SessionStart<'a> {
    pub session_id: &'a str,
    pub customer_id: &'a str,
    pub token_fingerprint: Option<&'a str>,
    pub country_code: Option<&'a str>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub device_limit: u32,
}

impl Store {
    /// Starts a session unless the customer already has `device_limit` live ones; `None`
    /// means the lock is full. A token that already started a live session gets that
    /// session back (its idle timer restarted), so a reload does not take a second slot.
    ///
    /// Invariant: a customer never has more than `device_limit` live sessions, on any number
    /// of replicas. The first statement bumps the customer's `session_guard`, which takes the
    /// row lock on PostgreSQL and the write lock on SQLite, so the count and the insert that
    /// follow run one customer at a time.
    pub async fn start_session(
        &self,
        start: &SessionStart<'_>,
    ) -> Result<Option<Session>, StoreError> {
        let now = to_millis(start.now);
        let mut tx = self.begin_write().await?;
        let guarded =
            sqlx::query("UPDATE customers SET session_guard = session_guard + 1 WHERE id = $1")
                .bind(start.customer_id)
                .execute(&mut *tx)
                .await?;
        if guarded.rows_affected() == 0 {
            return Err(StoreError::NotFound("customer"));
        }
        sqlx::query(
            "UPDATE sessions SET ended_at = expires_at, end_reason = 'expired' \
             WHERE customer_id = $1 AND ended_at IS NULL AND expires_at <= $2",
        )
        .bind(start.customer_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(fingerprint) = start.token_fingerprint {
            let existing = sqlx::query(concat!(
                "SELECT ",
                session_columns!(),
                " FROM sessions WHERE customer_id = $1 AND token_fingerprint = $2 \
                 AND ended_at IS NULL ORDER BY started_at DESC LIMIT 1"
            ))
            .bind(start.customer_id)
            .bind(fingerprint)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = existing {
                let mut session = session_from_row(&row)?;
                sqlx::query("UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE id = $1")
                    .bind(&session.id)
                    .bind(now)
                    .bind(to_millis(start.expires_at))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                session.last_seen_at = start.now;
                session.expires_at = start.expires_at;
                return Ok(Some(session));
            }
        }
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) AS live FROM sessions WHERE customer_id = $1 AND ended_at IS NULL",
        )
        .bind(start.customer_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("live")?;
        if live >= i64::from(start.device_limit) {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO sessions (id, customer_id, token_fingerprint, country_code, started_at, \
             last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(start.session_id)
        .bind(start.customer_id)
        .bind(start.token_fingerprint)
        .bind(start.country_code)
        .bind(now)
        .bind(to_millis(start.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await?;
        Ok(Some(Session {
            id: start.session_id.to_owned(),
            customer_id: start.customer_id.to_owned(),
            country_code: start.country_code.map(str::to_owned),
            started_at: start.now,
            last_seen_at: start.now,
            expires_at: start.expires_at,
        }))
    }

    pub async fn live_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1 AND ended_at IS NULL AND expires_at > $2"
        ))
        .bind(id)
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// The newest live session that this third-party token started.
    pub async fn live_session_for_token(
        &self,
        customer_id: &str,
        token_fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE customer_id = $1 AND token_fingerprint = $2 \
             AND ended_at IS NULL AND expires_at > $3 ORDER BY started_at DESC LIMIT 1"
        ))
        .bind(customer_id)
        .bind(token_fingerprint)
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Slides a live session's expiry forward; `false` if it ended or expired meanwhile.
    pub async fn touch_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let touched = sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, expires_at = $3 \
             WHERE id = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .execute(&self.writer)
        .await?;
        Ok(touched.rows_affected() == 1)
    }

    /// Ends a live session; `false` if it had already ended or expired.
    pub async fn end_session(
        &self,
        id: &str,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let ended = sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = $3 \
             WHERE id = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(to_millis(now))
        .bind(reason)
        .execute(&self.writer)
        .await?;
        Ok(ended.rows_affected() == 1)
    }

    pub async fn live_session_count(
        &self,
        customer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let live: i64 = sqlx::query(
            "SELECT COUNT(*) AS live FROM sessions \
             WHERE customer_id = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(customer_id)
        .bind(to_millis(now))
        .fetch_one(&self.pool)
        .await?
        .try_get("live")?;
        u32::try_from(live).map_err(|_| StoreError::Corrupt(format!("session count {live}")))
    }
}
