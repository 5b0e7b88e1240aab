//! Events: what happened in the account, as Stripe's event object, for `GET /v1/events`
//! and for webhook deliveries.
//!
//! Each event carries a snapshot of its object as it was when the event happened, the
//! request that caused it (none for the control surface), and `pending_webhooks`, kept up to
//! date as deliveries to webhook endpoints succeed.
//!
//! As Stripe does, the account keeps the events of the last 30 days ([`EVENT_RETENTION`],
//! on the host's clock); an older event that a webhook delivery still needs is kept aside
//! for it until the delivery is settled, and is no longer listed or retrievable.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::api::DEFAULT_API_VERSION;
use super::compact::{CompactJson, Recorded};
use super::error::ApiError;
use super::state::{Account, Charge, PaymentIntent, new_id};

/// How long events are listed and retrievable.
pub const EVENT_RETENTION: TimeDelta = TimeDelta::days(30);

/// Every event type the simulator emits: what a webhook endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "charge.failed",
    "charge.refunded",
    "charge.succeeded",
    "customer.created",
    "customer.updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.detached",
    "refund.created",
    "setup_intent.canceled",
    "setup_intent.created",
    "setup_intent.requires_action",
    "setup_intent.setup_failed",
    "setup_intent.succeeded",
];

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub object: &'static str,
    /// The account's default; a delivery to an endpoint that pins another shows that one.
    pub api_version: Cow<'static, str>,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    /// Webhook endpoints this event was sent to that have not yet answered it with a 2xx.
    pub pending_webhooks: u32,
    pub request: EventRequest,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    #[serde(skip)]
    pub seq: u64,
    /// The endpoints the event was queued for (or resent to), each once, and whether one
    /// of its deliveries there was answered with a 2xx: what `pending_webhooks` counts.
    #[serde(skip)]
    pub owed: Vec<Owed>,
    /// Its deliveries not yet settled (pending or in flight).
    #[serde(skip)]
    pub unsettled: u32,
}

/// An endpoint an event was queued for.
#[derive(Debug, Clone)]
pub struct Owed {
    pub endpoint: String,
    pub delivered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub object: Snapshot,
    /// On `*.updated`-like events: the changed fields as they were before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<Value>,
}

/// An event's object as it was when the event happened. The two objects every payment
/// records (the intent as created, the charge) are kept as copies and written out only when
/// the event is listed, retrieved or sent, which for most of them is never; the rest as
/// their JSON.
#[derive(Debug, Clone)]
pub enum Snapshot {
    Json(CompactJson),
    PaymentIntent(Arc<PaymentIntent>),
    Charge(Arc<Charge>),
}

impl Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Snapshot::Json(json) => json.serialize(serializer),
            Snapshot::PaymentIntent(intent) => intent.serialize(serializer),
            Snapshot::Charge(charge) => charge.serialize(serializer),
        }
    }
}

impl From<CompactJson> for Snapshot {
    fn from(json: CompactJson) -> Self {
        Snapshot::Json(json)
    }
}

/// Events past [`EVENT_RETENTION`] that webhook deliveries still need, by id.
pub type HeldEvents = HashMap<String, Event>;

/// The API request that caused an event; both `null` when no API request did (the
/// control surface playing the customer or the issuer).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// `type=payment_intent.*` matches every `payment_intent.` event, as in Stripe's list filter.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

/// The fields of `before` that `after` changed, nested objects compared key by key (a key
/// `after` added is `null` before), as Stripe reports `previous_attributes`.
pub fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    if before == after {
        return None;
    }
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Some(before.clone());
    };
    let mut changed = Map::new();
    for (key, old) in before {
        let new = after.get(key).unwrap_or(&Value::Null);
        if let Some(previous) = previous_attributes(old, new) {
            changed.insert(key.clone(), previous);
        }
    }
    for key in after.keys().filter(|key| !before.contains_key(*key)) {
        changed.insert(key.clone(), Value::Null);
    }
    Some(Value::Object(changed))
}

impl Account {
    pub(super) fn record_event<T: Serialize + ?Sized>(
        &mut self,
        event_type: &'static str,
        object: &T,
        now: DateTime<Utc>,
    ) {
        self.record_snapshot(event_type, CompactJson::new(object), now);
    }

    /// An event about `object`, whose snapshot is also the answer to the request that
    /// caused it: the object is written out once for both.
    pub(super) fn record_answered<T: Serialize>(
        &mut self,
        event_type: &'static str,
        object: T,
        now: DateTime<Utc>,
    ) -> Recorded<T> {
        let recorded = Recorded::new(object);
        self.record_snapshot(event_type, recorded.snapshot(), now);
        recorded
    }

    /// An event with a snapshot the caller took before the object moved on.
    pub(super) fn record_snapshot(
        &mut self,
        event_type: &'static str,
        snapshot: impl Into<Snapshot>,
        now: DateTime<Utc>,
    ) {
        self.record(event_type, snapshot.into(), None, now);
    }

    /// An event about a change: the object after it and what the change replaced.
    pub(super) fn record_change(
        &mut self,
        event_type: &'static str,
        before: &Value,
        after: Value,
        now: DateTime<Utc>,
    ) {
        let previous = previous_attributes(before, &after);
        self.record(event_type, CompactJson::new(&after).into(), previous, now);
    }

    fn record(
        &mut self,
        event_type: &'static str,
        object: Snapshot,
        previous_attributes: Option<Value>,
        now: DateTime<Utc>,
    ) {
        self.prune_events(now);
        let seq = self.next_seq();
        let id = new_id("evt");
        let owed: Vec<Owed> = self
            .webhooks
            .enqueue(&id, event_type, now)
            .into_iter()
            .map(|endpoint| Owed {
                endpoint,
                delivered: false,
            })
            .collect();
        let pending_webhooks = u32::try_from(owed.len()).unwrap_or(u32::MAX);
        self.indexes.events_by_type.set(seq, Some(event_type));
        if pending_webhooks > 0 {
            self.indexes.undelivered_events.insert(seq);
        }
        self.events.insert(Event {
            id,
            object: "event",
            api_version: Cow::Borrowed(DEFAULT_API_VERSION),
            created: now.timestamp(),
            data: EventData {
                object,
                previous_attributes,
            },
            livemode: false,
            pending_webhooks,
            request: EventRequest::default(),
            event_type,
            seq,
            unsettled: pending_webhooks,
            owed,
        });
    }

    /// Drops the events older than [`EVENT_RETENTION`]; those with deliveries still
    /// unsettled are held for them.
    fn prune_events(&mut self, now: DateTime<Utc>) {
        let cutoff = (now - EVENT_RETENTION).timestamp();
        while let Some(oldest) = self.events.first()
            && oldest.created < cutoff
        {
            let id = oldest.id.clone();
            let Some(event) = self.events.remove(&id) else {
                break;
            };
            self.indexes.events_by_type.set(event.seq, None);
            self.indexes.undelivered_events.remove(&event.seq);
            if event.unsettled > 0 {
                self.held_events.insert(id, event);
            }
        }
    }

    pub fn event(&self, id: &str) -> Result<&Event, ApiError> {
        self.events
            .get(id)
            .ok_or_else(|| ApiError::no_such("event", id, "id"))
    }

    /// An event, listed or held for its deliveries.
    pub(super) fn event_for_delivery(&self, id: &str) -> Option<&Event> {
        self.events.get(id).or_else(|| self.held_events.get(id))
    }

    pub(super) fn event_for_delivery_mut(&mut self, id: &str) -> Option<&mut Event> {
        match self.events.get_mut(id) {
            Some(event) => Some(event),
            None => self.held_events.get_mut(id),
        }
    }

    /// Where the event log is now: what [`Account::event_ids_since`] and
    /// [`Account::attribute_events_to_request`] count from.
    pub fn event_mark(&self) -> u64 {
        self.current_seq()
    }

    /// The ids of the events recorded since `mark` ([`Account::event_mark`]).
    pub fn event_ids_since(&self, mark: u64) -> Vec<String> {
        self.events
            .after(mark)
            .map(|event| event.id.clone())
            .collect()
    }

    /// Names the API request that caused the events recorded since `mark`
    /// ([`Account::event_mark`]).
    pub fn attribute_events_to_request(
        &mut self,
        mark: u64,
        request_id: &str,
        idempotency_key: Option<&str>,
    ) {
        for event in self.events.after_mut(mark) {
            event.request = EventRequest {
                id: Some(request_id.to_owned()),
                idempotency_key: idempotency_key.map(str::to_owned),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wildcards_match_a_prefix_only_at_the_end() {
        assert!(type_matches("payment_intent.*", "payment_intent.succeeded"));
        assert!(type_matches("*", "charge.refunded"));
        assert!(!type_matches("payment_intent.*", "payment_method.attached"));
        assert!(!type_matches("payment_intent", "payment_intent.succeeded"));
        assert!(type_matches("charge.refunded", "charge.refunded"));
    }

    #[test]
    fn previous_attributes_name_only_what_changed() {
        let before =
            json!({"email": "a@example.com", "name": "A", "metadata": {"plan": "gold", "x": "1"}});
        let after =
            json!({"email": "b@example.com", "name": "A", "metadata": {"x": "1", "tier": "2"}});
        assert_eq!(
            previous_attributes(&before, &after),
            Some(json!({"email": "a@example.com", "metadata": {"plan": "gold", "tier": null}}))
        );
        assert_eq!(previous_attributes(&before, &before), None);
    }
}
