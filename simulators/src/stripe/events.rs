//! Events: what happened in the account, as Stripe's event object, for `GET /v1/events`
//! and for webhook deliveries.
//!
//! Each event carries a snapshot of its object as it was when the event happened, the
//! request that caused it (none for the control surface), and `pending_webhooks`, kept up to
//! date as deliveries to webhook endpoints succeed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::api::DEFAULT_API_VERSION;
use super::error::ApiError;
use super::state::{Account, new_id};

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
    pub api_version: String,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    /// Webhook endpoints this event was sent to that have not yet answered it with a 2xx.
    pub pending_webhooks: u32,
    pub request: EventRequest,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub object: Value,
    /// On `*.updated`-like events: the changed fields as they were before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<Value>,
}

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
    pub(super) fn record_event(&mut self, event_type: &str, object: Value, now: DateTime<Utc>) {
        self.record(event_type, object, None, now);
    }

    /// An event about a change: the object after it and what the change replaced.
    pub(super) fn record_change(
        &mut self,
        event_type: &str,
        before: &Value,
        after: Value,
        now: DateTime<Utc>,
    ) {
        let previous = previous_attributes(before, &after);
        self.record(event_type, after, previous, now);
    }

    fn record(
        &mut self,
        event_type: &str,
        object: Value,
        previous_attributes: Option<Value>,
        now: DateTime<Utc>,
    ) {
        let seq = self.next_seq();
        let id = new_id("evt");
        let pending_webhooks = self.webhooks.enqueue(&id, event_type, now);
        self.event_positions.insert(id.clone(), self.events.len());
        self.events.push(Event {
            id,
            object: "event",
            api_version: DEFAULT_API_VERSION.to_owned(),
            created: now.timestamp(),
            data: EventData {
                object,
                previous_attributes,
            },
            livemode: false,
            pending_webhooks,
            request: EventRequest::default(),
            event_type: event_type.to_owned(),
            seq,
        });
    }

    pub fn event(&self, id: &str) -> Result<&Event, ApiError> {
        self.event_positions
            .get(id)
            .and_then(|position| self.events.get(*position))
            .ok_or_else(|| ApiError::no_such("event", id, "id"))
    }

    pub(super) fn event_mut(&mut self, id: &str) -> Option<&mut Event> {
        let position = *self.event_positions.get(id)?;
        self.events.get_mut(position)
    }

    /// The ids of the events recorded since the log had `since` entries.
    pub fn event_ids_since(&self, since: usize) -> Vec<String> {
        self.events
            .get(since..)
            .unwrap_or_default()
            .iter()
            .map(|event| event.id.clone())
            .collect()
    }

    /// Names the API request that caused the events recorded since the log had `since`
    /// entries.
    pub fn attribute_events_to_request(
        &mut self,
        since: usize,
        request_id: &str,
        idempotency_key: Option<&str>,
    ) {
        for event in self.events.iter_mut().skip(since) {
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
