//! Real-time developer notifications and the Pub/Sub push subscription that carries them,
//! without HTTP.
//!
//! Every change Google Play reports becomes a [`Notice`]; publishing it makes a
//! `DeveloperNotification` (JSON, base64 in the Pub/Sub message's `data`), given a Pub/Sub
//! message id and publish time. With a push subscription configured ([`PushTarget`]), the
//! message is owed to its endpoint: attempted when due, settled by one of the status codes
//! Pub/Sub counts as an acknowledgement ([`is_acknowledgement`]), otherwise retried on the
//! host's clock ([`retry_delay`]) until the message's retention ([`RETENTION`]) runs out.
//! Without a subscription, Pub/Sub has no one to give a message to: it is logged as
//! `dropped`. Removing the subscription drops what it still owed; changing its endpoint
//! sends what it owes to the new one, as in Pub/Sub.
//!
//! Pending messages wait in a queue ordered by when they are due, so a round reads only
//! what is due. Settled messages (delivered, given up, dropped) are kept for the control
//! surface, the last [`SETTLED_KEPT`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use poem_openapi::{Enum, Object};
use serde::Serialize;
use serde_json::Value;

/// How many settled messages are kept for the control surface; older ones are forgotten.
pub const SETTLED_KEPT: usize = 10_000;

/// How long Pub/Sub keeps trying an unacknowledged message: its default message retention.
pub const RETENTION: TimeDelta = TimeDelta::days(7);

/// The first wait after a failed push (Pub/Sub's minimum backoff).
const MIN_BACKOFF: TimeDelta = TimeDelta::seconds(10);

/// The longest wait between two pushes (Pub/Sub's maximum backoff).
const MAX_BACKOFF: TimeDelta = TimeDelta::seconds(600);

/// How long to wait after the `failures`-th failed push in a row: ten seconds after the
/// first, doubling with each further failure, at most ten minutes.
pub fn retry_delay(failures: u32) -> TimeDelta {
    let doublings = failures.saturating_sub(1).min(16);
    (MIN_BACKOFF * (1_i32 << doublings)).min(MAX_BACKOFF)
}

/// The status codes by which a push endpoint acknowledges a message, as Pub/Sub counts them;
/// any other answer (or none) is a failure to be retried.
pub fn is_acknowledgement(status: u16) -> bool {
    matches!(status, 102 | 200 | 201 | 202 | 204)
}

/// `subscriptionNotification.notificationType`: what happened to a subscription. Only the
/// types this simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// 1: recovered from account hold or grace period, or resumed after a pause.
    Recovered = 1,
    /// 2: an active subscription renewed.
    Renewed = 2,
    /// 3: cancelled by the user or the developer (access continues to the expiry time).
    Canceled = 3,
    /// 4: a new subscription was bought.
    Purchased = 4,
    /// 5: the subscription entered account hold.
    OnHold = 5,
    /// 6: the subscription entered its grace period.
    InGracePeriod = 6,
    /// 7: the user restored a cancelled subscription before it expired.
    Restarted = 7,
    /// 10: the subscription was paused.
    Paused = 10,
    /// 11: a pause was scheduled.
    PauseScheduleChanged = 11,
    /// 12: the subscription was revoked before its expiry time.
    Revoked = 12,
    /// 13: the subscription expired.
    Expired = 13,
}

impl SubscriptionEvent {
    /// Google's name of the type, as in its documentation.
    pub fn name(self) -> &'static str {
        match self {
            Self::Recovered => "SUBSCRIPTION_RECOVERED",
            Self::Renewed => "SUBSCRIPTION_RENEWED",
            Self::Canceled => "SUBSCRIPTION_CANCELED",
            Self::Purchased => "SUBSCRIPTION_PURCHASED",
            Self::OnHold => "SUBSCRIPTION_ON_HOLD",
            Self::InGracePeriod => "SUBSCRIPTION_IN_GRACE_PERIOD",
            Self::Restarted => "SUBSCRIPTION_RESTARTED",
            Self::Paused => "SUBSCRIPTION_PAUSED",
            Self::PauseScheduleChanged => "SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED",
            Self::Revoked => "SUBSCRIPTION_REVOKED",
            Self::Expired => "SUBSCRIPTION_EXPIRED",
        }
    }
}

/// `voidedPurchaseNotification.productType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoidedProductType {
    Subscription = 1,
    OneTime = 2,
}

/// A change Google Play reports, before it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Subscription {
        package_name: String,
        /// When it happened (`eventTimeMillis`).
        at: DateTime<Utc>,
        event: SubscriptionEvent,
        purchase_token: String,
        subscription_id: String,
    },
    /// `ONE_TIME_PRODUCT_PURCHASED` (1).
    OneTimeProductPurchased {
        package_name: String,
        at: DateTime<Utc>,
        purchase_token: String,
        sku: String,
    },
    /// A refunded (voided) order, always in full (`refundType` 1).
    Voided {
        package_name: String,
        at: DateTime<Utc>,
        purchase_token: String,
        order_id: String,
        product_type: VoidedProductType,
    },
    /// What the Play Console's "Send test notification" sends.
    Test {
        package_name: String,
        at: DateTime<Utc>,
    },
}

impl Notice {
    /// What the control surface calls it: the notification type's name.
    fn kind(&self) -> &'static str {
        match self {
            Self::Subscription { event, .. } => event.name(),
            Self::OneTimeProductPurchased { .. } => "ONE_TIME_PRODUCT_PURCHASED",
            Self::Voided { .. } => "VOIDED_PURCHASE",
            Self::Test { .. } => "TEST_NOTIFICATION",
        }
    }

    fn purchase_token(&self) -> Option<&str> {
        match self {
            Self::Subscription { purchase_token, .. }
            | Self::OneTimeProductPurchased { purchase_token, .. }
            | Self::Voided { purchase_token, .. } => Some(purchase_token),
            Self::Test { .. } => None,
        }
    }

    /// The `DeveloperNotification`, in Google's field order.
    fn developer_notification(&self) -> DeveloperNotification {
        let (package_name, at) = match self {
            Self::Subscription {
                package_name, at, ..
            }
            | Self::OneTimeProductPurchased {
                package_name, at, ..
            }
            | Self::Voided {
                package_name, at, ..
            }
            | Self::Test { package_name, at } => (package_name.clone(), *at),
        };
        let mut notification = DeveloperNotification {
            version: VERSION,
            package_name,
            event_time_millis: at.timestamp_millis().to_string(),
            subscription_notification: None,
            one_time_product_notification: None,
            voided_purchase_notification: None,
            test_notification: None,
        };
        match self {
            Self::Subscription {
                event,
                purchase_token,
                subscription_id,
                ..
            } => {
                notification.subscription_notification = Some(SubscriptionNotification {
                    version: VERSION,
                    notification_type: *event as u8,
                    purchase_token: purchase_token.clone(),
                    subscription_id: subscription_id.clone(),
                });
            }
            Self::OneTimeProductPurchased {
                purchase_token,
                sku,
                ..
            } => {
                notification.one_time_product_notification = Some(OneTimeProductNotification {
                    version: VERSION,
                    notification_type: 1,
                    purchase_token: purchase_token.clone(),
                    sku: sku.clone(),
                });
            }
            Self::Voided {
                purchase_token,
                order_id,
                product_type,
                ..
            } => {
                notification.voided_purchase_notification = Some(VoidedPurchaseNotification {
                    purchase_token: purchase_token.clone(),
                    order_id: order_id.clone(),
                    product_type: *product_type as u8,
                    refund_type: 1,
                });
            }
            Self::Test { .. } => {
                notification.test_notification = Some(TestNotification { version: VERSION });
            }
        }
        notification
    }
}

/// The `version` of every notification.
const VERSION: &str = "1.0";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeveloperNotification {
    version: &'static str,
    package_name: String,
    /// Milliseconds since the epoch, as a string.
    event_time_millis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_notification: Option<SubscriptionNotification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    one_time_product_notification: Option<OneTimeProductNotification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voided_purchase_notification: Option<VoidedPurchaseNotification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_notification: Option<TestNotification>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionNotification {
    version: &'static str,
    notification_type: u8,
    purchase_token: String,
    subscription_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OneTimeProductNotification {
    version: &'static str,
    notification_type: u8,
    purchase_token: String,
    sku: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VoidedPurchaseNotification {
    purchase_token: String,
    order_id: String,
    product_type: u8,
    refund_type: u8,
}

#[derive(Serialize)]
struct TestNotification {
    version: &'static str,
}

/// The push body: Pub/Sub's `PubsubMessage` (both spellings of its fields, as Pub/Sub
/// sends them) and the subscription's full name.
#[derive(Serialize)]
struct PushBody<'a> {
    message: PushMessage<'a>,
    subscription: &'a str,
}

#[derive(Serialize)]
struct PushMessage<'a> {
    attributes: BTreeMap<String, String>,
    data: &'a str,
    #[serde(rename = "messageId")]
    message_id_camel: &'a str,
    message_id: &'a str,
    #[serde(rename = "publishTime")]
    publish_time_camel: &'a str,
    publish_time: &'a str,
}

/// Where the push subscription sends, and how it authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub endpoint: String,
    /// `projects/{project}/subscriptions/{name}`.
    pub subscription: String,
    /// `Some` for authenticated push: the OIDC token's service account and audience.
    pub oidc: Option<PushIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushIdentity {
    pub service_account_email: String,
    pub audience: String,
}

/// Where a message stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "GooglePushState", rename_all = "snake_case")]
pub enum PushState {
    /// Waiting for `nextAttemptAt` (after a failed push: will be retried then).
    Pending,
    /// Being pushed now.
    InFlight,
    /// The endpoint acknowledged it.
    Delivered,
    /// Retention ran out before the endpoint acknowledged it.
    GaveUp,
    /// No push subscription when it was published, or the subscription was removed.
    Dropped,
}

/// One push of a message.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "GooglePushAttempt", rename_all = "camelCase")]
pub struct PushAttempt {
    pub message_id: String,
    /// 1 for the first push.
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub endpoint: String,
    /// The endpoint's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why there is no status code (connection refused, timeout).
    pub error: Option<String>,
    /// The start of the endpoint's answer.
    pub response_body: Option<String>,
    /// What the attempt left the message in.
    pub outcome: PushState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A published message and what became of it.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "GoogleNotificationMessage", rename_all = "camelCase")]
pub struct NotificationMessage {
    /// Pub/Sub's message id.
    pub message_id: String,
    pub publish_time: DateTime<Utc>,
    /// The notification type's name, e.g. `SUBSCRIPTION_RENEWED`, `VOIDED_PURCHASE`.
    pub kind: String,
    pub purchase_token: Option<String>,
    /// The `DeveloperNotification`, decoded.
    pub notification: Value,
    pub state: PushState,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<PushAttempt>,
    /// The notification as sent: base64 of its JSON.
    #[oai(skip)]
    data: String,
}

/// A push handed out to be sent.
#[derive(Debug, Clone)]
pub struct OutgoingPush {
    serial: u64,
    pub message_id: String,
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub endpoint: String,
    pub oidc: Option<PushIdentity>,
    /// The JSON body.
    pub body: String,
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
    /// Only these messages (by id), and only for their first push.
    FirstPushesOf(&'a [String]),
}

/// The topic's messages and the push subscription.
#[derive(Default)]
pub struct Outbox {
    target: Option<PushTarget>,
    messages: BTreeMap<u64, NotificationMessage>,
    /// Pending messages by when they are due.
    due: BTreeSet<(DateTime<Utc>, u64)>,
    /// Settled messages, oldest first, to forget the oldest past [`SETTLED_KEPT`].
    settled: VecDeque<u64>,
    /// Message serials by message id.
    by_id: BTreeMap<String, u64>,
    next_serial: u64,
}

impl Outbox {
    pub fn target(&self) -> Option<&PushTarget> {
        self.target.as_ref()
    }

    /// Creates, changes or (with `None`) removes the push subscription. Removing it drops
    /// what it still owed.
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

    /// Publishes a notice at `now`: its message id.
    pub fn publish(&mut self, notice: &Notice, now: DateTime<Utc>) -> String {
        self.next_serial += 1;
        let serial = self.next_serial;
        // Pub/Sub's message ids are decimal numbers of about sixteen digits.
        let message_id = (4_000_000_000_000_000 + serial).to_string();
        let notification = notice.developer_notification();
        let json = serde_json::to_string(&notification).unwrap_or_default();
        let routed = self.target.is_some();
        let message = NotificationMessage {
            message_id: message_id.clone(),
            publish_time: now,
            kind: notice.kind().to_owned(),
            purchase_token: notice.purchase_token().map(str::to_owned),
            notification: serde_json::from_str(&json).unwrap_or(Value::Null),
            state: if routed {
                PushState::Pending
            } else {
                PushState::Dropped
            },
            next_attempt_at: routed.then_some(now),
            attempts: Vec::new(),
            data: STANDARD.encode(json.as_bytes()),
        };
        self.messages.insert(serial, message);
        self.by_id.insert(message_id.clone(), serial);
        if routed {
            self.due.insert((now, serial));
        } else {
            self.settle(serial);
        }
        message_id
    }

    /// Marks what is due at `now` (and `wanted`) as in flight and hands it out, oldest
    /// first. Nothing without a push subscription.
    pub fn claim_due(&mut self, now: DateTime<Utc>, wanted: Due<'_>) -> Vec<OutgoingPush> {
        let Some(target) = self.target.clone() else {
            return Vec::new();
        };
        let candidates: Vec<(DateTime<Utc>, u64)> = match wanted {
            Due::All => self.due.range(..=(now, u64::MAX)).copied().collect(),
            Due::FirstPushesOf(ids) => ids
                .iter()
                .filter_map(|id| self.by_id.get(id))
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
            let publish_time = message
                .publish_time
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            let body = PushBody {
                message: PushMessage {
                    attributes: BTreeMap::new(),
                    data: &message.data,
                    message_id_camel: &message.message_id,
                    message_id: &message.message_id,
                    publish_time_camel: &publish_time,
                    publish_time: &publish_time,
                },
                subscription: &target.subscription,
            };
            claimed.push(OutgoingPush {
                serial,
                message_id: message.message_id.clone(),
                attempt: u32::try_from(message.attempts.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(1),
                attempted_at: now,
                endpoint: target.endpoint.clone(),
                oidc: target.oidc.clone(),
                body: serde_json::to_string(&body).unwrap_or_default(),
            });
        }
        claimed
    }

    /// Makes a message due again now, as Pub/Sub redelivers what it is not sure was
    /// received: the same message id and body. `false` when there is no such message (or it
    /// was forgotten), no push subscription, or it is being pushed right now.
    pub fn redeliver(&mut self, message_id: &str, now: DateTime<Utc>) -> bool {
        if self.target.is_none() {
            return false;
        }
        let Some(&serial) = self.by_id.get(message_id) else {
            return false;
        };
        let Some(message) = self.messages.get_mut(&serial) else {
            return false;
        };
        if message.state == PushState::InFlight {
            return false;
        }
        if let Some(at) = message.next_attempt_at {
            self.due.remove(&(at, serial));
        }
        message.state = PushState::Pending;
        message.next_attempt_at = Some(now);
        self.due.insert((now, serial));
        self.settled.retain(|settled| *settled != serial);
        true
    }

    /// Whether any message is being pushed.
    pub fn anything_in_flight(&self) -> bool {
        self.messages
            .values()
            .any(|message| message.state == PushState::InFlight)
    }

    /// Whether any of these messages is being pushed.
    pub fn any_in_flight(&self, ids: &[String]) -> bool {
        ids.iter()
            .filter_map(|id| self.by_id.get(id))
            .filter_map(|serial| self.messages.get(serial))
            .any(|message| message.state == PushState::InFlight)
    }

    /// Records what came of a push and schedules the next one if it failed.
    pub fn complete(&mut self, push: &OutgoingPush, result: PushResult) -> PushAttempt {
        let acknowledged = result.status_code.is_some_and(is_acknowledgement);
        let mut attempt = PushAttempt {
            message_id: push.message_id.clone(),
            attempt: push.attempt,
            attempted_at: push.attempted_at,
            endpoint: push.endpoint.clone(),
            status_code: result.status_code,
            error: result.error,
            response_body: result.response_body,
            outcome: PushState::Delivered,
            next_attempt_at: None,
        };
        let subscribed = self.target.is_some();
        let Some(message) = self.messages.get_mut(&push.serial) else {
            if !acknowledged {
                attempt.outcome = PushState::GaveUp;
            }
            return attempt;
        };
        if !acknowledged {
            let next = push.attempted_at + retry_delay(push.attempt);
            if subscribed && next - message.publish_time <= RETENTION {
                attempt.outcome = PushState::Pending;
                attempt.next_attempt_at = Some(next);
            } else {
                attempt.outcome = if subscribed {
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

    /// The message with this id, while it is kept.
    pub fn message(&self, message_id: &str) -> Option<&NotificationMessage> {
        self.messages.get(self.by_id.get(message_id)?)
    }

    /// Messages, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &NotificationMessage> {
        self.messages.values().rev()
    }

    /// Forgets every message (the subscription stays).
    pub fn clear(&mut self) {
        self.messages.clear();
        self.due.clear();
        self.settled.clear();
        self.by_id.clear();
    }

    fn settle(&mut self, serial: u64) {
        self.settled.push_back(serial);
        while self.settled.len() > SETTLED_KEPT {
            if let Some(oldest) = self.settled.pop_front()
                && let Some(message) = self.messages.remove(&oldest)
            {
                self.by_id.remove(&message.message_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn renewed(time: DateTime<Utc>) -> Notice {
        Notice::Subscription {
            package_name: "com.example.app".into(),
            at: time,
            event: SubscriptionEvent::Renewed,
            purchase_token: "token".into(),
            subscription_id: "monthly".into(),
        }
    }

    fn target() -> PushTarget {
        PushTarget {
            endpoint: "http://127.0.0.1:9/push".into(),
            subscription: "projects/p/subscriptions/s".into(),
            oidc: None,
        }
    }

    #[test]
    fn the_backoff_doubles_from_ten_seconds_up_to_ten_minutes() {
        assert_eq!(retry_delay(1), TimeDelta::seconds(10));
        assert_eq!(retry_delay(2), TimeDelta::seconds(20));
        assert_eq!(retry_delay(6), TimeDelta::seconds(320));
        assert_eq!(retry_delay(7), TimeDelta::seconds(600));
        assert_eq!(retry_delay(u32::MAX), TimeDelta::seconds(600));
    }

    #[test]
    fn the_notification_is_googles_json_in_base64() {
        let time = at("2030-01-01T00:00:00.123Z");
        let mut outbox = Outbox::default();
        outbox.set_target(Some(target()));
        let id = outbox.publish(&renewed(time), time);
        let push = outbox.claim_due(time, Due::All).remove(0);
        assert_eq!(push.message_id, id);
        let body: Value = serde_json::from_str(&push.body).unwrap();
        assert_eq!(body["subscription"], "projects/p/subscriptions/s");
        assert_eq!(body["message"]["messageId"], id);
        assert_eq!(body["message"]["message_id"], id);
        assert_eq!(body["message"]["publishTime"], "2030-01-01T00:00:00.123Z");
        let data = STANDARD
            .decode(body["message"]["data"].as_str().unwrap())
            .unwrap();
        let notification: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(
            notification,
            serde_json::json!({
                "version": "1.0",
                "packageName": "com.example.app",
                "eventTimeMillis": "1893456000123",
                "subscriptionNotification": {
                    "version": "1.0",
                    "notificationType": 2,
                    "purchaseToken": "token",
                    "subscriptionId": "monthly",
                },
            })
        );
    }

    #[test]
    fn failed_pushes_are_retried_until_retention_runs_out() {
        let start = at("2030-01-01T00:00:00Z");
        let mut outbox = Outbox::default();
        outbox.set_target(Some(target()));
        outbox.publish(&renewed(start), start);
        let mut now = start;
        let mut attempts = 0;
        loop {
            let mut due = outbox.claim_due(now, Due::All);
            assert_eq!(due.len(), 1, "one push due at {now}");
            let push = due.remove(0);
            attempts += 1;
            let attempt = outbox.complete(
                &push,
                PushResult {
                    status_code: Some(503),
                    ..PushResult::default()
                },
            );
            match attempt.next_attempt_at {
                Some(next) => {
                    assert!(
                        outbox
                            .claim_due(next - TimeDelta::seconds(1), Due::All)
                            .is_empty()
                    );
                    now = next;
                }
                None => {
                    assert_eq!(attempt.outcome, PushState::GaveUp);
                    break;
                }
            }
        }
        assert!(now - start <= RETENTION);
        // 10 s .. 600 s, then every ten minutes for the rest of the seven days.
        assert!(attempts > 1000, "{attempts} attempts");
    }

    #[test]
    fn without_a_subscription_messages_are_dropped() {
        let time = at("2030-01-01T00:00:00Z");
        let mut outbox = Outbox::default();
        outbox.publish(&renewed(time), time);
        assert!(outbox.claim_due(time, Due::All).is_empty());
        assert_eq!(
            outbox.newest_first().next().unwrap().state,
            PushState::Dropped
        );

        outbox.set_target(Some(target()));
        outbox.publish(&renewed(time), time);
        outbox.set_target(None);
        assert!(
            outbox
                .newest_first()
                .all(|message| message.state == PushState::Dropped)
        );
    }
}
