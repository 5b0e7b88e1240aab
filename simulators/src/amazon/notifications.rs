//! The SNS topic Amazon publishes Real-time Notifications to, its HTTP(S) subscription, and
//! every message owed to it, without HTTP.
//!
//! Registering an endpoint (the Developer Console's "Add an Endpoint") subscribes it to the
//! topic *pending confirmation* and sends it a `SubscriptionConfirmation` with a `Token` and a
//! `SubscribeURL`. Until it is confirmed — a GET of the `SubscribeURL` (SNS's
//! `ConfirmSubscription`), or the token pasted in the console (the control surface) — SNS
//! delivers no notification to it; a confirmed endpoint that is being replaced keeps getting
//! them until the new one is confirmed, as Amazon documents. A confirmation token is good for
//! three days. Unsubscribing (the `UnsubscribeURL` of any notification, or removing the
//! endpoint) sends an `UnsubscribeConfirmation` whose `SubscribeURL` restores the
//! subscription.
//!
//! Each message is owed to its endpoint at once; SNS's default HTTP(S) delivery policy
//! decides what happens to an attempt ([`is_delivered`], [`retry_delay`]): any status from
//! 200 to 499 ends it (2xx delivered, 3xx/4xx refused by the endpoint, not retried), while a
//! 5xx, no answer within 15 seconds or no connection is retried 20 seconds later, three times,
//! then given up. A notification published with no confirmed subscription is `dropped`, as is
//! anything still owed to a subscription that is gone. Messages due together are delivered
//! concurrently, so they may arrive in any order, as SNS's do (Amazon says to order them by
//! the notification's `timestamp`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::{Enum, Object};

use super::wire::RtnMessage;

/// How many settled messages are kept for the control surface; older ones are forgotten.
pub const SETTLED_KEPT: usize = 10_000;

/// How long a `SubscriptionConfirmation`'s token can confirm the subscription.
pub const CONFIRMATION_TOKEN_LIFETIME: TimeDelta = TimeDelta::days(3);

/// SNS's default delivery policy for HTTP(S): three retries...
const RETRIES: u32 = 3;
/// ...20 seconds apart (`minDelayTarget` = `maxDelayTarget` = 20, linear).
const RETRY_DELAY: TimeDelta = TimeDelta::seconds(20);

/// How long to wait after the `failures`-th failed attempt, or `None` when SNS gives up.
pub fn retry_delay(failures: u32) -> Option<TimeDelta> {
    (1..=RETRIES).contains(&failures).then_some(RETRY_DELAY)
}

/// Whether SNS counts an answer as the end of the delivery (no retry): 200 to 499.
pub fn is_delivered(status: u16) -> bool {
    (200..500).contains(&status)
}

/// Where a message's delivery stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AmazonDeliveryState", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for `nextAttemptAt` (after a failed attempt: retried then).
    Pending,
    /// Being attempted now.
    InFlight,
    /// The endpoint answered 2xx.
    Delivered,
    /// The endpoint answered 3xx or 4xx: SNS does not retry that.
    Refused,
    /// Four attempts failed.
    GaveUp,
    /// No subscription (confirmed, for a notification) was there to take it.
    Dropped,
}

/// One attempt to deliver a message.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "AmazonDeliveryAttempt", rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub message_id: String,
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    pub message_type: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// On the host's clock.
    pub attempted_at: DateTime<Utc>,
    pub endpoint: String,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (connection refused, timeout, …).
    pub error: Option<String>,
    /// The start of the endpoint's answer (at most 1000 characters).
    pub response_body: Option<String>,
    /// What the attempt left the message in.
    pub outcome: DeliveryState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A message published to the topic and every attempt to deliver it.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "AmazonSnsMessage", rename_all = "camelCase")]
pub struct MessageRecord {
    /// SNS's `MessageId`: a retry carries the same.
    pub message_id: String,
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    pub message_type: String,
    /// The Real-time Notification a `Notification` carries.
    pub rtn: Option<RtnMessage>,
    /// The subscription it is for.
    pub subscription_arn: Option<String>,
    pub endpoint: Option<String>,
    /// Its `Timestamp`.
    pub timestamp: DateTime<Utc>,
    pub state: DeliveryState,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// The exact body POSTed: SNS's JSON, signed.
    pub body: String,
}

/// An HTTP(S) subscription to the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsSubscription {
    /// `{topic ARN}:{uuid}`.
    pub arn: String,
    pub endpoint: String,
    /// What confirms it (or, after it was unsubscribed, restores it).
    pub token: String,
    /// When the token was sent.
    pub requested_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// What a message is delivered to, and on what condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A notification: the subscription must still be the confirmed one.
    Confirmed,
    /// A `SubscriptionConfirmation`: the subscription must still await confirmation.
    AwaitingConfirmation,
    /// An `UnsubscribeConfirmation`: always, to the endpoint it names.
    Endpoint,
}

/// A message to record.
pub struct NewMessage {
    pub message_id: String,
    pub message_type: String,
    pub rtn: Option<RtnMessage>,
    /// The subscription and how it must stand for the message to be delivered; `None`: no
    /// one to deliver to (dropped).
    pub subscription: Option<(SnsSubscription, Target)>,
    pub timestamp: DateTime<Utc>,
    pub body: String,
}

/// A message handed out to be sent.
#[derive(Debug, Clone)]
pub struct Outgoing {
    serial: u64,
    pub message_id: String,
    pub message_type: String,
    pub topic_arn: String,
    pub subscription_arn: String,
    pub endpoint: String,
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub body: String,
}

/// What the endpoint did with an attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// Which due messages to hand out.
#[derive(Debug, Clone, Copy)]
pub enum Due<'a> {
    All,
    /// Only the first attempts of these: what whoever caused them waits for.
    FirstAttemptsOf(&'a [String]),
}

/// Why SNS refused a subscription action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsRefusal {
    /// `InvalidParameter` (400).
    #[error("{0}")]
    InvalidParameter(String),
    /// `NotFound` (404).
    #[error("{0}")]
    NotFound(String),
}

/// The topic, its subscriptions, and every message kept.
pub struct Topic {
    pub arn: String,
    confirmed: Option<SnsSubscription>,
    awaiting: Option<SnsSubscription>,
    /// Unsubscribed subscriptions by the token that restores them.
    restorable: HashMap<String, SnsSubscription>,
    records: BTreeMap<u64, MessageRecord>,
    targets: HashMap<u64, (SnsSubscription, Target)>,
    by_id: HashMap<String, u64>,
    due: BTreeSet<(DateTime<Utc>, u64)>,
    settled: VecDeque<u64>,
    next_serial: u64,
}

impl Topic {
    pub fn new(arn: String) -> Self {
        Self {
            arn,
            confirmed: None,
            awaiting: None,
            restorable: HashMap::new(),
            records: BTreeMap::new(),
            targets: HashMap::new(),
            by_id: HashMap::new(),
            due: BTreeSet::new(),
            settled: VecDeque::new(),
            next_serial: 0,
        }
    }

    pub fn confirmed(&self) -> Option<&SnsSubscription> {
        self.confirmed.as_ref()
    }

    pub fn awaiting(&self) -> Option<&SnsSubscription> {
        self.awaiting.as_ref()
    }

    /// Subscribes an endpoint that is confirmed already (configured at start).
    pub fn subscribe_confirmed(&mut self, subscription: SnsSubscription) {
        self.confirmed = Some(subscription);
    }

    /// Subscribes an endpoint pending confirmation, replacing any other pending one.
    pub fn subscribe(&mut self, subscription: SnsSubscription) {
        self.awaiting = Some(subscription);
    }

    /// Removes every subscription: those removed, for their `UnsubscribeConfirmation`s.
    pub fn unsubscribe_all(&mut self) -> Vec<SnsSubscription> {
        let removed: Vec<SnsSubscription> = self
            .confirmed
            .take()
            .into_iter()
            .chain(self.awaiting.take())
            .collect();
        for subscription in &removed {
            self.restorable
                .insert(subscription.token.clone(), subscription.clone());
        }
        removed
    }

    /// SNS's `Unsubscribe`: removes the subscription with this ARN.
    pub fn unsubscribe(&mut self, subscription_arn: &str) -> Result<SnsSubscription, SnsRefusal> {
        let removed = if self
            .confirmed
            .as_ref()
            .is_some_and(|subscription| subscription.arn == subscription_arn)
        {
            self.confirmed.take()
        } else if self
            .awaiting
            .as_ref()
            .is_some_and(|subscription| subscription.arn == subscription_arn)
        {
            self.awaiting.take()
        } else {
            None
        };
        let removed =
            removed.ok_or_else(|| SnsRefusal::NotFound("Subscription does not exist".into()))?;
        self.restorable
            .insert(removed.token.clone(), removed.clone());
        Ok(removed)
    }

    /// SNS's `ConfirmSubscription`: the subscription awaiting this token becomes the
    /// confirmed one (the one it replaces gets nothing more); an unsubscribed one is
    /// restored. Confirming again answers the same subscription.
    pub fn confirm(
        &mut self,
        topic_arn: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<&SnsSubscription, SnsRefusal> {
        if topic_arn != self.arn {
            return Err(SnsRefusal::NotFound("Topic does not exist".into()));
        }
        if self
            .confirmed
            .as_ref()
            .is_some_and(|subscription| subscription.token == token)
        {
            return self
                .confirmed
                .as_ref()
                .ok_or_else(|| SnsRefusal::InvalidParameter("Invalid token".into()));
        }
        let candidate = if self
            .awaiting
            .as_ref()
            .is_some_and(|subscription| subscription.token == token)
        {
            self.awaiting.take()
        } else {
            self.restorable.remove(token)
        };
        let Some(mut subscription) = candidate else {
            return Err(SnsRefusal::InvalidParameter("Invalid token".into()));
        };
        if now - subscription.requested_at > CONFIRMATION_TOKEN_LIFETIME {
            return Err(SnsRefusal::InvalidParameter(
                "Invalid token: the confirmation token has expired".into(),
            ));
        }
        subscription.confirmed_at = Some(now);
        self.confirmed = Some(subscription);
        self.confirmed
            .as_ref()
            .ok_or_else(|| SnsRefusal::InvalidParameter("Invalid token".into()))
    }

    /// Records a message; owed (due now) when it has a subscription to go to.
    pub fn record(&mut self, new: NewMessage) -> &MessageRecord {
        self.next_serial += 1;
        let serial = self.next_serial;
        let state = if new.subscription.is_some() {
            self.due.insert((new.timestamp, serial));
            DeliveryState::Pending
        } else {
            self.settled.push_back(serial);
            DeliveryState::Dropped
        };
        self.by_id.insert(new.message_id.clone(), serial);
        let (subscription_arn, endpoint) = match &new.subscription {
            Some((subscription, _)) => (
                Some(subscription.arn.clone()),
                Some(subscription.endpoint.clone()),
            ),
            None => (None, None),
        };
        if let Some(target) = new.subscription {
            self.targets.insert(serial, target);
        }
        self.records.insert(
            serial,
            MessageRecord {
                message_id: new.message_id,
                message_type: new.message_type,
                rtn: new.rtn,
                subscription_arn,
                endpoint,
                timestamp: new.timestamp,
                state,
                next_attempt_at: (state == DeliveryState::Pending).then_some(new.timestamp),
                attempts: Vec::new(),
                body: new.body,
            },
        );
        self.forget_oldest_settled();
        &self.records[&serial]
    }

    pub fn message(&self, message_id: &str) -> Option<&MessageRecord> {
        self.records.get(self.by_id.get(message_id)?)
    }

    /// Oldest first.
    pub fn oldest_first(&self) -> impl DoubleEndedIterator<Item = &MessageRecord> {
        self.records.values()
    }

    /// Forgets every message (the subscriptions stay).
    pub fn clear_messages(&mut self) {
        self.records.clear();
        self.targets.clear();
        self.by_id.clear();
        self.due.clear();
        self.settled.clear();
    }

    /// Whether the message's subscription still stands as it must for it to be delivered.
    fn still_wanted(&self, subscription: &SnsSubscription, target: Target) -> bool {
        let same = |current: &Option<SnsSubscription>| {
            current
                .as_ref()
                .is_some_and(|current| current.arn == subscription.arn)
        };
        match target {
            Target::Confirmed => same(&self.confirmed),
            Target::AwaitingConfirmation => same(&self.awaiting),
            Target::Endpoint => true,
        }
    }

    /// Hands out the messages `wanted` that are due at `now`, marking them in flight, in the
    /// order they were published; what is owed to a subscription that is gone is dropped.
    pub fn claim_due(&mut self, now: DateTime<Utc>, wanted: Due<'_>) -> Vec<Outgoing> {
        let serials: Vec<u64> = match wanted {
            Due::All => self
                .due
                .range(..=(now, u64::MAX))
                .map(|(_, serial)| *serial)
                .collect(),
            Due::FirstAttemptsOf(ids) => ids
                .iter()
                .filter_map(|id| self.by_id.get(id).copied())
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
            let Some((subscription, target)) = self.targets.get(&serial).cloned() else {
                continue;
            };
            let wanted = self.still_wanted(&subscription, target);
            let Some(record) = self.records.get_mut(&serial) else {
                continue;
            };
            let Some(due_at) = record.next_attempt_at else {
                continue;
            };
            self.due.remove(&(due_at, serial));
            record.next_attempt_at = None;
            if !wanted {
                record.state = DeliveryState::Dropped;
                self.targets.remove(&serial);
                self.settled.push_back(serial);
                continue;
            }
            record.state = DeliveryState::InFlight;
            outgoing.push(Outgoing {
                serial,
                message_id: record.message_id.clone(),
                message_type: record.message_type.clone(),
                topic_arn: self.arn.clone(),
                subscription_arn: subscription.arn.clone(),
                endpoint: subscription.endpoint.clone(),
                attempt: u32::try_from(record.attempts.len() + 1).unwrap_or(u32::MAX),
                attempted_at: now,
                body: record.body.clone(),
            });
        }
        outgoing.sort_by_key(|message| message.serial);
        self.forget_oldest_settled();
        outgoing
    }

    /// Whether any message is being attempted.
    pub fn anything_in_flight(&self) -> bool {
        self.records
            .values()
            .any(|record| record.state == DeliveryState::InFlight)
    }

    /// Whether any of these messages is being attempted.
    pub fn any_in_flight(&self, message_ids: &[String]) -> bool {
        message_ids.iter().any(|id| {
            self.message(id)
                .is_some_and(|record| record.state == DeliveryState::InFlight)
        })
    }

    /// Records what came of an attempt and schedules the next one if it failed.
    pub fn complete(&mut self, sent: &Outgoing, result: AttemptResult) -> DeliveryAttempt {
        let ended = result.status_code.filter(|status| is_delivered(*status));
        let next_attempt_at = match ended {
            Some(_) => None,
            None => retry_delay(sent.attempt).map(|delay| sent.attempted_at + delay),
        };
        let outcome = match (ended, next_attempt_at) {
            (Some(200..=299), _) => DeliveryState::Delivered,
            (Some(_), _) => DeliveryState::Refused,
            (None, Some(_)) => DeliveryState::Pending,
            (None, None) => DeliveryState::GaveUp,
        };
        let attempt = DeliveryAttempt {
            message_id: sent.message_id.clone(),
            message_type: sent.message_type.clone(),
            attempt: sent.attempt,
            attempted_at: sent.attempted_at,
            endpoint: sent.endpoint.clone(),
            status_code: result.status_code,
            error: result.error,
            response_body: result.response_body,
            outcome,
            next_attempt_at,
        };
        let Some(record) = self
            .records
            .get_mut(&sent.serial)
            .filter(|record| record.message_id == sent.message_id)
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
                self.targets.remove(&sent.serial);
                self.settled.push_back(sent.serial);
                self.forget_oldest_settled();
            }
        }
        attempt
    }

    fn forget_oldest_settled(&mut self) {
        while self.settled.len() > SETTLED_KEPT {
            if let Some(serial) = self.settled.pop_front()
                && let Some(record) = self.records.remove(&serial)
            {
                self.by_id.remove(&record.message_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(2_000_000_000 + seconds, 0).unwrap()
    }

    fn subscription(name: &str) -> SnsSubscription {
        SnsSubscription {
            arn: format!("arn:aws:sns:us-east-1:1:topic:{name}"),
            endpoint: format!("http://127.0.0.1:9/{name}"),
            token: format!("token-{name}"),
            requested_at: at(0),
            confirmed_at: None,
        }
    }

    fn notification(topic: &Topic, id: &str) -> NewMessage {
        NewMessage {
            message_id: id.into(),
            message_type: "Notification".into(),
            rtn: None,
            subscription: topic
                .confirmed()
                .cloned()
                .map(|subscription| (subscription, Target::Confirmed)),
            timestamp: at(0),
            body: "{}".into(),
        }
    }

    fn answered(status: u16) -> AttemptResult {
        AttemptResult {
            status_code: Some(status),
            ..AttemptResult::default()
        }
    }

    #[test]
    fn sns_retries_three_times_twenty_seconds_apart() {
        let mut topic = Topic::new("arn:aws:sns:us-east-1:1:topic".into());
        topic.subscribe_confirmed(subscription("a"));
        topic.record(notification(&topic, "m"));
        let mut now = at(0);
        for attempt in 1..=4 {
            let due = topic.claim_due(now, Due::All);
            assert_eq!(due.len(), 1, "attempt {attempt}");
            let recorded = topic.complete(&due[0], answered(503));
            match recorded.next_attempt_at {
                Some(next) => {
                    assert_eq!(next - now, TimeDelta::seconds(20));
                    assert!(
                        topic
                            .claim_due(next - TimeDelta::seconds(1), Due::All)
                            .is_empty()
                    );
                    now = next;
                }
                None => {
                    assert_eq!(attempt, 4);
                    assert_eq!(recorded.outcome, DeliveryState::GaveUp);
                }
            }
        }
    }

    #[test]
    fn a_4xx_is_not_retried_and_a_2xx_is_delivered() {
        let mut topic = Topic::new("arn:aws:sns:us-east-1:1:topic".into());
        topic.subscribe_confirmed(subscription("a"));
        topic.record(notification(&topic, "refused"));
        topic.record(notification(&topic, "delivered"));
        let due = topic.claim_due(at(0), Due::All);
        assert_eq!(
            topic.complete(&due[0], answered(403)).outcome,
            DeliveryState::Refused
        );
        assert_eq!(
            topic.complete(&due[1], answered(204)).outcome,
            DeliveryState::Delivered
        );
        assert!(topic.claim_due(at(3600), Due::All).is_empty());
    }

    #[test]
    fn notifications_go_to_the_confirmed_endpoint_until_the_new_one_is_confirmed() {
        let mut topic = Topic::new("arn:aws:sns:us-east-1:1:topic".into());
        topic.record(notification(&topic, "nobody"));
        assert_eq!(
            topic.message("nobody").unwrap().state,
            DeliveryState::Dropped
        );
        topic.subscribe_confirmed(subscription("old"));
        topic.subscribe(subscription("new"));
        topic.record(notification(&topic, "to-old"));
        assert_eq!(
            topic.message("to-old").unwrap().endpoint.as_deref(),
            Some("http://127.0.0.1:9/old")
        );
        assert_eq!(
            topic.confirm(&topic.arn.clone(), "wrong", at(1)),
            Err(SnsRefusal::InvalidParameter("Invalid token".into()))
        );
        let arn = topic.arn.clone();
        let confirmed = topic.confirm(&arn, "token-new", at(1)).unwrap();
        assert_eq!(confirmed.endpoint, "http://127.0.0.1:9/new");
        // What the old subscription still owed is dropped.
        assert!(topic.claim_due(at(1), Due::All).is_empty());
        assert_eq!(
            topic.message("to-old").unwrap().state,
            DeliveryState::Dropped
        );
        // A token is good for three days.
        topic.subscribe(subscription("late"));
        assert!(
            topic
                .confirm(&arn, "token-late", at(0) + TimeDelta::days(4))
                .is_err()
        );
    }
}
