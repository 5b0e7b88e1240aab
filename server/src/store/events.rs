//! Provider notifications already applied, remembered by id so that a replay is cheap to
//! recognise.
//!
//! Remembering is group-committed: notifications arrive many at once (a provider sends one
//! per renewal) and each must be stored before it is acknowledged, but on SQLite one write
//! each would queue them all behind the single writer. Each caller adds its row to a
//! pending list; whoever gets the write turn first stores every pending row in one
//! statement and tells the others, so a burst costs a few writes, not one per
//! notification.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::placeholders::ROWS_PER_STATEMENT;
use super::{Store, StoreError, to_millis};
use crate::core::model::PaymentProvider;

/// Rows waiting to be remembered, each with whom to tell when it is.
#[derive(Default)]
pub(super) struct PendingEvents(Mutex<Vec<PendingEvent>>);

struct PendingEvent {
    provider: PaymentProvider,
    event_id: String,
    event_type: String,
    received_at: DateTime<Utc>,
    stored: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

impl PendingEvents {
    fn push(&self, event: PendingEvent) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    fn take(&self) -> Vec<PendingEvent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Store {
    /// Whether a provider's notification was applied before.
    pub async fn event_seen(
        &self,
        provider: PaymentProvider,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        let seen: Option<String> = sqlx::query_scalar(
            "SELECT event_id FROM provider_events WHERE provider = $1 AND event_id = $2",
        )
        .bind(provider.as_str())
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(seen.is_some())
    }

    /// Remembers a notification as applied; returns once it is stored. Its effects are
    /// idempotent on their own; this makes a replay cheap and visible.
    pub async fn remember_event(
        &self,
        provider: PaymentProvider,
        event_id: &str,
        event_type: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (stored, mut outcome) = oneshot::channel();
        self.pending_events.push(PendingEvent {
            provider,
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            received_at: now,
            stored,
        });
        let turn = tokio::select! {
            biased;
            result = &mut outcome => return settled(result),
            turn = self.write_turn() => turn,
        };
        // Another caller may have stored this row while the turn was being handed over.
        if let Ok(result) = outcome.try_recv() {
            return result.map_err(StoreError::Shared);
        }
        // In a task of its own, so that a caller going away (its client hung up) does not
        // leave the others' rows unwritten.
        let store = self.clone();
        tokio::spawn(async move {
            let batch = store.pending_events.take();
            let result = insert_events(&store, &batch).await.map_err(Arc::new);
            drop(turn);
            for event in batch {
                let _ = event.stored.send(result.clone());
            }
        });
        settled(outcome.await)
    }
}

fn settled(
    result: Result<Result<(), Arc<StoreError>>, oneshot::error::RecvError>,
) -> Result<(), StoreError> {
    match result {
        Ok(stored) => stored.map_err(StoreError::Shared),
        Err(_) => Err(StoreError::Corrupt(
            "a notification was dropped before it was stored".into(),
        )),
    }
}

async fn insert_events(store: &Store, events: &[PendingEvent]) -> Result<(), StoreError> {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO provider_events (provider, event_id, event_type, received_at) \
             VALUES {} ON CONFLICT (provider, event_id) DO NOTHING",
            store.placeholders().rows(chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            query = query
                .bind(event.provider.as_str())
                .bind(event.event_id.as_str())
                .bind(event.event_type.as_str())
                .bind(to_millis(event.received_at));
        }
        query.execute(&store.writer).await?;
    }
    Ok(())
}
