//! Roku Pay push notifications and the publisher's push notification endpoint, without HTTP.
//!
//! Every change Roku reports becomes a [`Notice`]; publishing it gives it a message key (32
//! hex digits: the message's `responseKey`, and `x-Roku-message-key` in a secured push, the
//! same on every retry so that a receiver can de-duplicate). With an endpoint configured
//! ([`PushTarget`]) the message is owed to it: attempted when due, settled by the answer
//! Roku wants ([`PushTarget::acknowledges`]), otherwise retried on the host's clock
//! ([`retry_delay`]) until [`RETENTION`] runs out. Without an endpoint it is logged as
//! `dropped`. Removing the endpoint drops what was still owed; changing it sends what is
//! owed to the new one.
//!
//! Roku documents neither its retry schedule nor how long it keeps trying (only that a push
//! times out after 10 seconds and is never redirected, and that an endpoint failing again
//! and again gets its notifications paused); the schedule here — a minute, doubling up to an
//! hour, for three days — is what a publisher can rely on from the simulator.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::{Enum, Object};
use serde_json::Value;

use super::state::{Notice, new_id};

/// How many settled messages are kept for the control surface; older ones are forgotten.
pub const SETTLED_KEPT: usize = 10_000;

/// How long an unacknowledged message is retried.
pub const RETENTION: TimeDelta = TimeDelta::days(3);

const MIN_BACKOFF: TimeDelta = TimeDelta::minutes(1);
const MAX_BACKOFF: TimeDelta = TimeDelta::hours(1);

/// How long to wait after the `failures`-th failed push in a row: a minute after the first,
/// doubling with each further failure, at most an hour.
pub fn retry_delay(failures: u32) -> TimeDelta {
    let doublings = failures.saturating_sub(1).min(16);
    (MIN_BACKOFF * (1_i32 << doublings)).min(MAX_BACKOFF)
}

/// Where pushes go and how they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub url: String,
    /// A secured push (JWT signature authentication on): a JWS in a `text/plain` body,
    /// acknowledged by `200 OK`. Otherwise the message's JSON, acknowledged by `200 OK`
    /// whose body is the message's `responseKey`.
    pub signed: bool,
}

impl PushTarget {
    /// Whether an answer acknowledges the push of a message with this `responseKey`.
    pub fn acknowledges(
        &self,
        status: Option<u16>,
        body: Option<&str>,
        response_key: &str,
    ) -> bool {
        status == Some(200) && (self.signed || body.map(str::trim) == Some(response_key))
    }
}

/// Where a message stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "RokuPushState", rename_all = "snake_case")]
pub enum PushState {
    /// Waiting for `nextAttemptAt` (after a failed push: will be retried then).
    Pending,
    /// Being pushed now.
    InFlight,
    /// The endpoint acknowledged it.
    Delivered,
    /// Retention ran out before the endpoint acknowledged it.
    GaveUp,
    /// No endpoint when it was published, or the endpoint was removed.
    Dropped,
}

/// One push of a message.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "RokuPushAttempt", rename_all = "camelCase")]
pub struct PushAttempt {
    /// The message's key (its `responseKey`).
    pub message_key: String,
    /// 1 for the first push.
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub url: String,
    /// Whether it went as a secured (JWT) push.
    pub signed: bool,
    /// The endpoint's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why there is no status code (connection refused, timeout), or why the answer is
    /// not an acknowledgement.
    pub error: Option<String>,
    /// The start of the endpoint's answer.
    pub response_body: Option<String>,
    /// What the attempt left the message in.
    pub outcome: PushState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A published message and what became of it.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "RokuNotificationMessage", rename_all = "camelCase")]
pub struct NotificationMessage {
    /// The message's key: its `responseKey`, and `x-Roku-message-key` in a secured push.
    pub message_key: String,
    pub published_at: DateTime<Utc>,
    /// `Sale`, `GraceInitiated`, `GraceRecovered`, `OnHoldInitiated`, `OnHoldRecovered`,
    /// `Cancellation`, `Refund`, `Resubscribe`.
    pub transaction_type: String,
    pub transaction_id: String,
    pub original_transaction_id: String,
    /// The message, as its JSON goes out.
    pub message: Value,
    pub state: PushState,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<PushAttempt>,
    /// The message's JSON, as sent.
    #[oai(skip)]
    json: String,
}

/// Why a message cannot be pushed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Redelivery {
    #[error("No message has this key")]
    UnknownMessage,
    #[error("No push notification endpoint is set")]
    NoEndpoint,
    #[error("The message is being pushed now")]
    InFlight,
}

/// A push handed out to be sent.
#[derive(Debug, Clone)]
pub struct OutgoingPush {
    serial: u64,
    pub message_key: String,
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub target: PushTarget,
    /// The message's JSON: the body of an unsecured push, `x-Roku-message` of a secured one.
    pub json: String,
}

/// What came of a push.
#[derive(Debug, Clone, Default)]
pub struct PushResult {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// Which due messages a round claims.
#[derive(Debug, Clone, Copy)]
pub enum Due<'a> {
    All,
    /// Only these messages (by key), and only for their first push.
    FirstPushesOf(&'a [String]),
}

/// The messages and the endpoint they go to.
#[derive(Default)]
pub struct Outbox {
    target: Option<PushTarget>,
    messages: BTreeMap<u64, NotificationMessage>,
    /// Pending messages by when they are due.
    due: BTreeSet<(DateTime<Utc>, u64)>,
    /// Settled messages, oldest first, to forget the oldest past [`SETTLED_KEPT`].
    settled: VecDeque<u64>,
    by_key: BTreeMap<String, u64>,
    next_serial: u64,
}

impl Outbox {
    pub fn target(&self) -> Option<&PushTarget> {
        self.target.as_ref()
    }

    /// Sets, changes or (with `None`) removes the endpoint. Removing it drops what it was
    /// still owed.
    pub fn set_target(&mut self, target: Option<PushTarget>) {
        if target.is_none() {
            let pending: Vec<u64> = self.due.iter().map(|(_, serial)| *serial).collect();
            self.due.clear();
            for serial in pending {
                if let Some(message) = self.messages.get_mut(&serial) {
                    message.state = PushState::Dropped;
                    message.next_attempt_at = None;
                }
                self.settle(serial);
            }
        }
        self.target = target;
    }

    /// Publishes a notice at `now`: its message key.
    pub fn publish(&mut self, notice: &Notice, now: DateTime<Utc>) -> String {
        self.next_serial += 1;
        let serial = self.next_serial;
        let key = new_id();
        let mut message = notice.message.clone();
        message.response_key = key.clone();
        let json = serde_json::to_string(&message).unwrap_or_default();
        let routed = self.target.is_some();
        let record = NotificationMessage {
            message_key: key.clone(),
            published_at: now,
            transaction_type: notice.transaction_type.name().to_owned(),
            transaction_id: message.transaction_id.clone(),
            original_transaction_id: message.original_transaction_id.clone(),
            message: serde_json::from_str(&json).unwrap_or(Value::Null),
            state: if routed {
                PushState::Pending
            } else {
                PushState::Dropped
            },
            next_attempt_at: routed.then_some(now),
            attempts: Vec::new(),
            json,
        };
        self.messages.insert(serial, record);
        self.by_key.insert(key.clone(), serial);
        if routed {
            self.due.insert((now, serial));
        } else {
            self.settle(serial);
        }
        key
    }

    /// Marks what is due at `now` (and `wanted`) as in flight and hands it out, oldest
    /// first. Nothing without an endpoint.
    pub fn claim_due(&mut self, now: DateTime<Utc>, wanted: Due<'_>) -> Vec<OutgoingPush> {
        let Some(target) = self.target.clone() else {
            return Vec::new();
        };
        let candidates: Vec<(DateTime<Utc>, u64)> = match wanted {
            Due::All => self.due.range(..=(now, u64::MAX)).copied().collect(),
            Due::FirstPushesOf(keys) => keys
                .iter()
                .filter_map(|key| self.by_key.get(key))
                .filter_map(|serial| {
                    let message = self.messages.get(serial)?;
                    let at = message.next_attempt_at?;
                    (message.attempts.is_empty() && at <= now).then_some((at, *serial))
                })
                .collect(),
        };
        let mut claimed = Vec::new();
        for key in candidates {
            if !self.due.remove(&key) {
                continue;
            }
            let serial = key.1;
            let Some(message) = self.messages.get_mut(&serial) else {
                continue;
            };
            message.state = PushState::InFlight;
            claimed.push(OutgoingPush {
                serial,
                message_key: message.message_key.clone(),
                attempt: u32::try_from(message.attempts.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(1),
                attempted_at: now,
                target: target.clone(),
                json: message.json.clone(),
            });
        }
        claimed
    }

    /// Makes a kept message due again now, as a push Roku is unsure arrived: the same
    /// message key, a fresh attempt. Refused without an endpoint or while it is in flight.
    pub fn redeliver(&mut self, key: &str, now: DateTime<Utc>) -> Result<(), Redelivery> {
        if self.target.is_none() {
            return Err(Redelivery::NoEndpoint);
        }
        let serial = *self.by_key.get(key).ok_or(Redelivery::UnknownMessage)?;
        let message = self
            .messages
            .get_mut(&serial)
            .ok_or(Redelivery::UnknownMessage)?;
        if message.state == PushState::InFlight {
            return Err(Redelivery::InFlight);
        }
        if let Some(at) = message.next_attempt_at {
            self.due.remove(&(at, serial));
        }
        message.state = PushState::Pending;
        message.next_attempt_at = Some(now);
        self.due.insert((now, serial));
        self.settled.retain(|settled| *settled != serial);
        Ok(())
    }

    /// Whether any message is being pushed.
    pub fn anything_in_flight(&self) -> bool {
        self.messages
            .values()
            .any(|message| message.state == PushState::InFlight)
    }

    /// Whether any of these messages is being pushed.
    pub fn any_in_flight(&self, keys: &[String]) -> bool {
        keys.iter()
            .filter_map(|key| self.by_key.get(key))
            .filter_map(|serial| self.messages.get(serial))
            .any(|message| message.state == PushState::InFlight)
    }

    /// Records what came of a push and schedules the next one if it was not acknowledged.
    pub fn complete(&mut self, push: &OutgoingPush, result: PushResult) -> PushAttempt {
        let acknowledged = push.target.acknowledges(
            result.status_code,
            result.response_body.as_deref(),
            &push.message_key,
        );
        let error = match (&result.error, result.status_code, acknowledged) {
            (Some(error), _, _) => Some(error.clone()),
            (None, Some(200), false) => {
                Some("the answer's body is not the message's responseKey".to_owned())
            }
            _ => None,
        };
        let mut attempt = PushAttempt {
            message_key: push.message_key.clone(),
            attempt: push.attempt,
            attempted_at: push.attempted_at,
            url: push.target.url.clone(),
            signed: push.target.signed,
            status_code: result.status_code,
            error,
            response_body: result.response_body,
            outcome: PushState::Delivered,
            next_attempt_at: None,
        };
        let routed = self.target.is_some();
        let Some(message) = self.messages.get_mut(&push.serial) else {
            if !acknowledged {
                attempt.outcome = PushState::GaveUp;
            }
            return attempt;
        };
        if !acknowledged {
            let next = push.attempted_at + retry_delay(push.attempt);
            if routed && next - message.published_at <= RETENTION {
                attempt.outcome = PushState::Pending;
                attempt.next_attempt_at = Some(next);
            } else {
                attempt.outcome = if routed {
                    PushState::GaveUp
                } else {
                    PushState::Dropped
                };
            }
        }
        message.state = attempt.outcome;
        message.next_attempt_at = attempt.next_attempt_at;
        message.attempts.push(attempt.clone());
        match attempt.next_attempt_at {
            Some(next) => {
                self.due.insert((next, push.serial));
            }
            None => self.settle(push.serial),
        }
        attempt
    }

    /// The message with this key, while it is kept.
    pub fn message(&self, key: &str) -> Option<&NotificationMessage> {
        self.messages.get(self.by_key.get(key)?)
    }

    /// Messages, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &NotificationMessage> {
        self.messages.values().rev()
    }

    /// Forgets every message (the endpoint stays).
    pub fn clear(&mut self) {
        self.messages.clear();
        self.due.clear();
        self.settled.clear();
        self.by_key.clear();
    }

    fn settle(&mut self, serial: u64) {
        self.settled.push_back(serial);
        while self.settled.len() > SETTLED_KEPT {
            if let Some(oldest) = self.settled.pop_front()
                && let Some(message) = self.messages.remove(&oldest)
            {
                self.by_key.remove(&message.message_key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roku::state::TransactionType;
    use crate::roku::wire::PushMessage;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn sale() -> Notice {
        Notice {
            transaction_type: TransactionType::Sale,
            message: PushMessage {
                customer_id: "c".into(),
                transaction_type: "Sale".into(),
                transaction_id: "t".into(),
                channel_id: "1".into(),
                channel_name: None,
                product_code: "p".into(),
                product_name: "P".into(),
                price: Some(1.99),
                total: Some(1.99),
                tax: Some(0.0),
                currency: Some("usd".into()),
                partner_reference_id: None,
                original_transaction_id: "t".into(),
                original_purchase_date: None,
                event_date: "2030-01-01T00:00:00Z".into(),
                expiration_date: None,
                comments: "New order processed.".into(),
                response_key: String::new(),
                purchase_channel: None,
                purchase_context: None,
                is_free_trial: false,
            },
        }
    }

    fn target(signed: bool) -> PushTarget {
        PushTarget {
            url: "http://127.0.0.1:9/roku".into(),
            signed,
        }
    }

    #[test]
    fn the_backoff_doubles_from_a_minute_up_to_an_hour() {
        assert_eq!(retry_delay(1), TimeDelta::minutes(1));
        assert_eq!(retry_delay(2), TimeDelta::minutes(2));
        assert_eq!(retry_delay(6), TimeDelta::minutes(32));
        assert_eq!(retry_delay(7), TimeDelta::hours(1));
        assert_eq!(retry_delay(u32::MAX), TimeDelta::hours(1));
    }

    #[test]
    fn an_unsecured_push_is_acknowledged_only_by_its_response_key() {
        let time = at("2030-01-01T00:00:00Z");
        let mut outbox = Outbox::default();
        outbox.set_target(Some(target(false)));
        let key = outbox.publish(&sale(), time);
        let push = outbox.claim_due(time, Due::All).remove(0);
        let message: Value = serde_json::from_str(&push.json).unwrap();
        assert_eq!(message["responseKey"], key.as_str());
        let attempt = outbox.complete(
            &push,
            PushResult {
                status_code: Some(200),
                response_body: Some("ok".into()),
                error: None,
            },
        );
        assert_eq!(attempt.outcome, PushState::Pending);
        assert!(attempt.error.is_some());
        let push = outbox
            .claim_due(attempt.next_attempt_at.unwrap(), Due::All)
            .remove(0);
        let attempt = outbox.complete(
            &push,
            PushResult {
                status_code: Some(200),
                response_body: Some(format!("{key}\n")),
                error: None,
            },
        );
        assert_eq!(attempt.outcome, PushState::Delivered);
        assert!(target(true).acknowledges(Some(200), None, &key));
        assert!(!target(true).acknowledges(Some(204), None, &key));
    }

    #[test]
    fn failed_pushes_are_retried_until_retention_runs_out() {
        let start = at("2030-01-01T00:00:00Z");
        let mut outbox = Outbox::default();
        outbox.set_target(Some(target(true)));
        outbox.publish(&sale(), start);
        let mut now = start;
        loop {
            let mut due = outbox.claim_due(now, Due::All);
            assert_eq!(due.len(), 1, "one push due at {now}");
            let attempt = outbox.complete(
                &due.remove(0),
                PushResult {
                    status_code: Some(503),
                    ..PushResult::default()
                },
            );
            match attempt.next_attempt_at {
                Some(next) => now = next,
                None => {
                    assert_eq!(attempt.outcome, PushState::GaveUp);
                    break;
                }
            }
        }
        assert!(now - start <= RETENTION);
        assert!(now - start > RETENTION - TimeDelta::hours(1));
    }

    #[test]
    fn without_an_endpoint_messages_are_dropped() {
        let time = at("2030-01-01T00:00:00Z");
        let mut outbox = Outbox::default();
        outbox.publish(&sale(), time);
        assert!(outbox.claim_due(time, Due::All).is_empty());
        outbox.set_target(Some(target(true)));
        outbox.publish(&sale(), time);
        outbox.set_target(None);
        assert!(
            outbox
                .newest_first()
                .all(|message| message.state == PushState::Dropped)
        );
    }
}
