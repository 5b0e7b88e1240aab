//! Sending notifications over HTTP: what [`super::notifications`] hands out as due is POSTed
//! as `{"signedPayload": …}`, and each answer recorded, without ever holding the simulator's
//! lock across a request.

use std::time::Duration;

use poem_openapi::Object;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use super::AppleSimulator;
use super::notifications::{
    AttemptResult, Due, NotificationAttempt, OutgoingNotification, SendAttemptResult,
};
use crate::delivery::{error_chain, outbox_client, read_answer};

/// How often, in real time, the background loop settles what fell due and sends what is owed.
pub const BACKGROUND_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long the server has to answer an attempt before it counts as timed out.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for someone else's attempt at a notification we need attempted; past
/// the attempt timeout, so only a lost attempt is given up on.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);

const USER_AGENT: &str = "App Store Server Notifications (boxoffice simulator)";

/// The attempts one round of deliveries made.
#[derive(Object, Debug, Clone, Default, PartialEq)]
#[oai(rename = "AppleNotificationDeliveryReport")]
pub struct NotificationDeliveryReport {
    /// In the order the notifications were made.
    pub attempts: Vec<NotificationAttempt>,
}

/// The client notifications are sent with: no proxy (servers are local more often than
/// not), no redirects (a 3xx is an unsuccessful answer), a timeout per attempt.
fn http_client() -> Result<reqwest::Client, String> {
    outbox_client(
        reqwest::Client::builder(),
        ATTEMPT_TIMEOUT,
        Some(USER_AGENT),
    )
}

fn no_answer(error: String, send_attempt_result: SendAttemptResult) -> AttemptResult {
    AttemptResult {
        status_code: None,
        error: Some(error),
        response_body: None,
        send_attempt_result,
    }
}

async fn post(
    client: Result<reqwest::Client, String>,
    notification: &OutgoingNotification,
) -> AttemptResult {
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            return no_answer(format!("no HTTP client: {error}"), SendAttemptResult::Other);
        }
    };
    let sent = client
        .post(&notification.url)
        .header("content-type", "application/json")
        .body(notification.body.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            let result = if error.is_timeout() {
                SendAttemptResult::TimedOut
            } else if error.is_connect() {
                SendAttemptResult::SocketIssue
            } else {
                SendAttemptResult::NoResponse
            };
            return no_answer(error_chain(&error), result);
        }
    };
    let status = response.status().as_u16();
    let answer = read_answer(&mut response).await;
    AttemptResult {
        status_code: Some(status),
        error: answer.error,
        response_body: answer.body,
        send_attempt_result: if (200..=206).contains(&status) {
            SendAttemptResult::Success
        } else {
            SendAttemptResult::UnsuccessfulHttpResponseCode
        },
    }
}

impl AppleSimulator {
    /// Sends every notification due at the host's `Now` and records each answer; what was
    /// attempted. A notification already being sent (by a concurrent call) is left to that
    /// call.
    pub async fn deliver_due(&self) -> NotificationDeliveryReport {
        let due = self.claim(Due::All);
        NotificationDeliveryReport {
            attempts: self.start_sending(due).await.unwrap_or_default(),
        }
    }

    /// Every [`BACKGROUND_POLL_INTERVAL`] of real time, until the task is aborted: settles
    /// what fell due on the host's clock ([`AppleSimulator::settle_due`]) and sends the
    /// notifications due, each round's sending in its own task so that a slow server does not
    /// hold up the rounds. Call it within a Tokio runtime; the task keeps the simulator alive
    /// until aborted.
    pub fn spawn_background_loop(&self) -> JoinHandle<()> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(BACKGROUND_POLL_INTERVAL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                simulator.settle_due();
                let due = simulator.claim(Due::All);
                if !due.is_empty() {
                    drop(simulator.start_sending(due));
                }
            }
        })
    }

    /// Waits, at most [`IN_FLIGHT_WAIT`], until no delivery is under way.
    pub(crate) async fn deliveries_under_way_finished(&self) {
        crate::delivery::until_idle(&self.inner.delivery_finished, IN_FLIGHT_WAIT, || {
            self.lock().notifications.in_flight(Due::All)
        })
        .await;
    }

    /// Makes the first attempt of each of these notifications (or waits for one being made
    /// elsewhere), so that whoever caused them can answer knowing the server was told.
    pub(crate) async fn deliver_caused(&self, notifications: &[Uuid]) {
        if notifications.is_empty() {
            return;
        }
        let wanted = Due::FirstAttemptsOf(notifications);
        loop {
            let finished = self.inner.delivery_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let due = self.claim(wanted);
            let in_flight = self.lock().notifications.in_flight(wanted);
            if !due.is_empty() {
                // Recorded by the sending task whatever becomes of this wait.
                let _ = self.start_sending(due).await;
            } else if !in_flight
                || tokio::time::timeout(IN_FLIGHT_WAIT, finished)
                    .await
                    .is_err()
            {
                return;
            }
        }
    }

    fn claim(&self, wanted: Due<'_>) -> Vec<OutgoingNotification> {
        let now = self.now();
        let mut shared = self.lock();
        let urls = shared.notification_urls.clone();
        shared.notifications.claim_due(now, wanted, |environment| {
            urls.get(environment).map(str::to_owned)
        })
    }

    /// Sends claimed notifications ([`crate::delivery::send_all`]) in a task of their own,
    /// so that they are recorded even if whoever waits for them goes away.
    fn start_sending(
        &self,
        due: Vec<OutgoingNotification>,
    ) -> JoinHandle<Vec<NotificationAttempt>> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let client = simulator.inner.http.get_or_init(http_client).clone();
            let sends: Vec<_> = due
                .iter()
                .cloned()
                .map(|notification| {
                    let client = client.clone();
                    async move { post(client, &notification).await }
                })
                .collect();
            let results = crate::delivery::send_all(sends).await;
            let attempts: Vec<NotificationAttempt> = {
                let mut shared = simulator.lock();
                due.iter()
                    .zip(results)
                    .map(|(notification, result)| {
                        let result = result.unwrap_or_else(|| {
                            no_answer("the attempt's task failed".into(), SendAttemptResult::Other)
                        });
                        shared.notifications.complete(notification, result)
                    })
                    .collect()
            };
            simulator.inner.delivery_finished.notify_waiters();
            attempts
        })
    }
}
