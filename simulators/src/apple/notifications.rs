//! App Store Server Notifications V2 owed to the developer's server, without HTTP.
//!
//! Every notification is recorded with its signed payload. When its environment has a
//! notification URL it is owed a delivery, due at once: any answer from 200 to 206 settles
//! it; anything else schedules the next attempt on the host's clock, [`retry_delay`] after
//! the failed one, as Apple retries (1, 12, 24, 48 and 72 hours), and after the sixth failed
//! attempt the notification is given up. Each attempt goes to the environment's URL at the
//! time of the attempt. A notification being attempted is `in_flight` and is not handed out
//! again until its answer is recorded.
//!
//! Pending notifications wait in a queue ordered by when they are due, so a round of
//! deliveries reads only what is due. Settled ones are kept for the control surface and the
//! notification history, the last [`SETTLED_KEPT`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use super::state::Environment;

/// How many settled notifications are kept, newest.
pub const SETTLED_KEPT: usize = 10_000;

/// Apple retries a notification this long after each failed attempt, five times.
const RETRY_DELAYS_HOURS: [i64; 5] = [1, 12, 24, 48, 72];

/// How long to wait after the `failures`-th failed attempt, or `None` when Apple gives up.
pub fn retry_delay(failures: u32) -> Option<TimeDelta> {
    let index = usize::try_from(failures.checked_sub(1)?).ok()?;
    RETRY_DELAYS_HOURS.get(index).copied().map(TimeDelta::hours)
}

/// Where a notification's delivery stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AppleNotificationState", rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting for `nextAttemptAt` (after a failed attempt: retried then).
    Pending,
    /// Being attempted now.
    InFlight,
    /// The server answered 200–206.
    Delivered,
    /// Six attempts failed (or the environment's URL was removed).
    GaveUp,
    /// Its environment had no notification URL when it was made: never sent.
    Unsent,
}

/// Apple's `sendAttemptResult`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AppleSendAttemptResult", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SendAttemptResult {
    Success,
    TimedOut,
    NoResponse,
    SocketIssue,
    UnsuccessfulHttpResponseCode,
    Other,
}

/// One attempt to deliver a notification.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "AppleNotificationAttempt", rename_all = "camelCase")]
pub struct NotificationAttempt {
    pub notification_uuid: Uuid,
    pub notification_type: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// On the host's clock.
    pub attempted_at: DateTime<Utc>,
    pub url: String,
    /// The server's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (connection refused, timeout, …).
    pub error: Option<String>,
    /// The start of the server's answer (at most 1000 characters).
    pub response_body: Option<String>,
    /// Apple's classification of the attempt.
    pub send_attempt_result: SendAttemptResult,
    /// What the attempt left the notification in: `delivered`, `pending` (retried at
    /// `nextAttemptAt`) or `gave_up`.
    pub outcome: NotificationState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A notification and every attempt to deliver it.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "AppleNotification", rename_all = "camelCase")]
pub struct NotificationRecord {
    #[oai(rename = "notificationUUID")]
    pub notification_uuid: Uuid,
    pub environment: Environment,
    pub notification_type: String,
    pub subtype: Option<String>,
    /// The subscription it is about (none for `TEST`).
    pub original_transaction_id: Option<String>,
    /// The transaction it shows (none for `TEST`).
    pub transaction_id: Option<String>,
    /// Its `signedDate`.
    pub signed_date: DateTime<Utc>,
    pub state: NotificationState,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<NotificationAttempt>,
    /// The JWS POSTed as `{"signedPayload": …}`.
    pub signed_payload: String,
}

/// A notification handed out to be sent.
#[derive(Debug, Clone)]
pub struct OutgoingNotification {
    serial: u64,
    pub notification_uuid: Uuid,
    pub notification_type: String,
    pub url: String,
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    /// The exact body: `{"signedPayload": "…"}`.
    pub body: String,
}

/// What the server did with an attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub send_attempt_result: SendAttemptResult,
}

impl AttemptResult {
    fn delivered(&self) -> bool {
        self.status_code
            .is_some_and(|status| (200..=206).contains(&status))
    }
}

/// Which due notifications to hand out.
#[derive(Debug, Clone, Copy)]
pub enum Due<'a> {
    All,
    /// Only the first attempts of these: what whoever caused them waits for.
    FirstAttemptsOf(&'a [Uuid]),
}

/// Every notification kept, and the queue of those owed.
#[derive(Default)]
pub struct Notifications {
    /// By serial number: oldest first.
    records: BTreeMap<u64, NotificationRecord>,
    next_serial: u64,
    by_uuid: std::collections::HashMap<Uuid, u64>,
    /// Pending notifications by when they are due.
    due: BTreeSet<(DateTime<Utc>, u64)>,
    /// Settled ones, oldest first.
    settled: VecDeque<u64>,
}

/// What a new notification is about.
pub struct NewNotification {
    pub notification_uuid: Uuid,
    pub environment: Environment,
    pub notification_type: String,
    pub subtype: Option<String>,
    pub original_transaction_id: Option<String>,
    pub transaction_id: Option<String>,
    pub signed_payload: String,
}

impl Notifications {
    /// Records a notification; owed (due now) when its environment has a URL.
    pub fn record(
        &mut self,
        new: NewNotification,
        has_url: bool,
        now: DateTime<Utc>,
    ) -> &NotificationRecord {
        self.next_serial += 1;
        let serial = self.next_serial;
        let state = if has_url {
            self.due.insert((now, serial));
            NotificationState::Pending
        } else {
            self.settled.push_back(serial);
            NotificationState::Unsent
        };
        self.by_uuid.insert(new.notification_uuid, serial);
        self.records.insert(
            serial,
            NotificationRecord {
                notification_uuid: new.notification_uuid,
                environment: new.environment,
                notification_type: new.notification_type,
                subtype: new.subtype,
                original_transaction_id: new.original_transaction_id,
                transaction_id: new.transaction_id,
                signed_date: now,
                state,
                next_attempt_at: has_url.then_some(now),
                attempts: Vec::new(),
                signed_payload: new.signed_payload,
            },
        );
        self.forget_oldest_settled();
        &self.records[&serial]
    }

    pub fn get(&self, notification_uuid: Uuid) -> Option<&NotificationRecord> {
        self.records.get(self.by_uuid.get(&notification_uuid)?)
    }

    /// Oldest first.
    pub fn oldest_first(&self) -> impl DoubleEndedIterator<Item = &NotificationRecord> {
        self.records.values()
    }

    /// Forgets every notification.
    pub fn clear(&mut self) {
        *self = Self {
            next_serial: self.next_serial,
            ..Self::default()
        };
    }

    fn forget_oldest_settled(&mut self) {
        while self.settled.len() > SETTLED_KEPT {
            if let Some(serial) = self.settled.pop_front()
                && let Some(record) = self.records.remove(&serial)
            {
                self.by_uuid.remove(&record.notification_uuid);
            }
        }
    }

    /// Hands out the notifications `wanted` that are due at `now`, marking them in flight,
    /// in the order they were made; `url_of` gives each environment's URL now (a notification
    /// whose environment has none any more is given up).
    pub fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        wanted: Due<'_>,
        url_of: impl Fn(Environment) -> Option<String>,
    ) -> Vec<OutgoingNotification> {
        let serials: Vec<u64> = match wanted {
            Due::All => self
                .due
                .range(..=(now, u64::MAX))
                .map(|(_, serial)| *serial)
                .collect(),
            Due::FirstAttemptsOf(uuids) => uuids
                .iter()
                .filter_map(|uuid| self.by_uuid.get(uuid).copied())
                .filter(|serial| {
                    self.records.get(serial).is_some_and(|record| {
                        record.attempts.is_empty()
                            && record.next_attempt_at.is_some_and(|at| at <= now)
                    })
                })
                .collect(),
        };
        let mut outgoing = Vec::new();
        for serial in serials {
            let Some(record) = self.records.get_mut(&serial) else {
                continue;
            };
            let Some(due_at) = record.next_attempt_at else {
                continue;
            };
            self.due.remove(&(due_at, serial));
            let Some(url) = url_of(record.environment) else {
                record.state = NotificationState::GaveUp;
                record.next_attempt_at = None;
                self.settled.push_back(serial);
                continue;
            };
            record.state = NotificationState::InFlight;
            record.next_attempt_at = None;
            outgoing.push(OutgoingNotification {
                serial,
                notification_uuid: record.notification_uuid,
                notification_type: record.notification_type.clone(),
                url,
                attempt: u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX),
                attempted_at: now,
                body: serde_json::json!({ "signedPayload": record.signed_payload }).to_string(),
            });
        }
        outgoing.sort_by_key(|notification| notification.serial);
        self.forget_oldest_settled();
        outgoing
    }

    /// Whether any of `wanted` is being attempted.
    pub fn in_flight(&self, wanted: Due<'_>) -> bool {
        let in_flight = |record: &NotificationRecord| record.state == NotificationState::InFlight;
        match wanted {
            Due::All => self.records.values().any(in_flight),
            Due::FirstAttemptsOf(uuids) => uuids
                .iter()
                .filter_map(|uuid| self.get(*uuid))
                .any(in_flight),
        }
    }

    /// Records what came of an attempt and schedules the next one if it failed.
    pub fn complete(
        &mut self,
        sent: &OutgoingNotification,
        result: AttemptResult,
    ) -> NotificationAttempt {
        let delivered = result.delivered();
        let failures = sent.attempt;
        let next_attempt_at = if delivered {
            None
        } else {
            retry_delay(failures).map(|delay| sent.attempted_at + delay)
        };
        let outcome = match (delivered, next_attempt_at) {
            (true, _) => NotificationState::Delivered,
            (false, Some(_)) => NotificationState::Pending,
            (false, None) => NotificationState::GaveUp,
        };
        let attempt = NotificationAttempt {
            notification_uuid: sent.notification_uuid,
            notification_type: sent.notification_type.clone(),
            attempt: sent.attempt,
            attempted_at: sent.attempted_at,
            url: sent.url.clone(),
            status_code: result.status_code,
            error: result.error,
            response_body: result.response_body,
            send_attempt_result: result.send_attempt_result,
            outcome,
            next_attempt_at,
        };
        let Some(record) = self
            .records
            .get_mut(&sent.serial)
            .filter(|record| record.notification_uuid == sent.notification_uuid)
        else {
            // Forgotten (reset) while it was being sent.
            return attempt;
        };
        record.state = outcome;
        record.next_attempt_at = next_attempt_at;
        record.attempts.push(attempt.clone());
        match next_attempt_at {
            Some(at) => {
                self.due.insert((at, sent.serial));
            }
            None => {
                self.settled.push_back(sent.serial);
                self.forget_oldest_settled();
            }
        }
        attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(environment: Environment) -> NewNotification {
        NewNotification {
            notification_uuid: Uuid::new_v4(),
            environment,
            notification_type: "DID_RENEW".into(),
            subtype: None,
            original_transaction_id: Some("2000000000000001".into()),
            transaction_id: Some("2000000000000002".into()),
            signed_payload: "header.payload.signature".into(),
        }
    }

    fn failed(status_code: u16) -> AttemptResult {
        AttemptResult {
            status_code: Some(status_code),
            error: None,
            response_body: None,
            send_attempt_result: SendAttemptResult::UnsuccessfulHttpResponseCode,
        }
    }

    #[test]
    fn apple_retries_five_times_then_gives_up() {
        assert_eq!(retry_delay(1), Some(TimeDelta::hours(1)));
        assert_eq!(retry_delay(5), Some(TimeDelta::hours(72)));
        assert_eq!(retry_delay(6), None);
        assert_eq!(retry_delay(0), None);

        let url = |_| Some("http://127.0.0.1:9/hook".to_owned());
        let mut notifications = Notifications::default();
        let start = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        let uuid = notifications
            .record(new(Environment::Sandbox), true, start)
            .notification_uuid;
        let mut now = start;
        for attempt in 1..=6 {
            let due = notifications.claim_due(now, Due::All, url);
            assert_eq!(due.len(), 1, "attempt {attempt}");
            assert_eq!(due[0].attempt, attempt);
            assert!(due[0].body.starts_with("{\"signedPayload\":"));
            assert!(notifications.claim_due(now, Due::All, url).is_empty());
            let recorded = notifications.complete(&due[0], failed(500));
            match recorded.next_attempt_at {
                Some(next) => now = next,
                None => assert_eq!(attempt, 6),
            }
        }
        let record = notifications.get(uuid).unwrap();
        assert_eq!(record.state, NotificationState::GaveUp);
        assert_eq!(record.attempts.len(), 6);
        assert_eq!(
            record.attempts[5].attempted_at - start,
            TimeDelta::hours(1 + 12 + 24 + 48 + 72)
        );
    }

    #[test]
    fn a_success_settles_and_a_missing_url_leaves_it_unsent() {
        let url = |environment| {
            (environment == Environment::Sandbox).then(|| "http://127.0.0.1:9/hook".to_owned())
        };
        let mut notifications = Notifications::default();
        let now = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        let unsent = notifications
            .record(new(Environment::Production), false, now)
            .notification_uuid;
        assert_eq!(
            notifications.get(unsent).unwrap().state,
            NotificationState::Unsent
        );
        let owed = notifications
            .record(new(Environment::Sandbox), true, now)
            .notification_uuid;
        let due = notifications.claim_due(now, Due::FirstAttemptsOf(&[owed, unsent]), url);
        assert_eq!(due.len(), 1);
        assert!(notifications.in_flight(Due::FirstAttemptsOf(&[owed])));
        let attempt = notifications.complete(
            &due[0],
            AttemptResult {
                status_code: Some(206),
                error: None,
                response_body: None,
                send_attempt_result: SendAttemptResult::Success,
            },
        );
        assert_eq!(attempt.outcome, NotificationState::Delivered);
        assert!(!notifications.in_flight(Due::All));
        assert!(
            notifications
                .claim_due(now + TimeDelta::days(10), Due::All, url)
                .is_empty()
        );
    }
}
