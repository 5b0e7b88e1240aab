//! Delivering SNS messages over HTTP: what [`super::notifications`] hands out as due is
//! POSTed as SNS POSTs to an HTTP(S) subscriber — the signed JSON as `text/plain;
//! charset=UTF-8`, with `x-amz-sns-message-type`, `x-amz-sns-message-id`,
//! `x-amz-sns-topic-arn` and (but for a `SubscriptionConfirmation`)
//! `x-amz-sns-subscription-arn` — and each answer recorded, without ever holding the state's
//! lock across a request.

use std::time::Duration;

use poem_openapi::Object;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::AmazonSimulator;
use super::notifications::{AttemptResult, DeliveryAttempt, Due, Outgoing};
use crate::delivery::{error_chain, outbox_client, read_answer};

/// How often, in real time, the delivery loop settles what fell due and delivers what is
/// owed.
pub const DELIVERY_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long an endpoint has to answer before SNS counts the attempt as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long to wait for someone else's attempt at a message we need attempted; past the
/// attempt timeout, so only a lost attempt is given up on.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(20);

const USER_AGENT: &str = "Amazon Simple Notification Service Agent";

/// The attempts one round of deliveries made.
#[derive(Object, Debug, Clone, Default, PartialEq)]
#[oai(rename = "AmazonDeliveryReport")]
pub struct AmazonDeliveryReport {
    /// In the order the messages were published.
    pub attempts: Vec<DeliveryAttempt>,
}

/// The client messages are sent with: no proxy (endpoints are local more often than not),
/// no redirects (SNS follows none), a timeout per attempt.
fn http_client() -> Result<reqwest::Client, String> {
    outbox_client(
        reqwest::Client::builder(),
        ATTEMPT_TIMEOUT,
        Some(USER_AGENT),
    )
}

fn failed(error: String) -> AttemptResult {
    AttemptResult {
        error: Some(error),
        ..AttemptResult::default()
    }
}

async fn post(client: &reqwest::Client, message: &Outgoing) -> AttemptResult {
    let mut request = client
        .post(&message.endpoint)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", &message.message_type)
        .header("x-amz-sns-message-id", &message.message_id)
        .header("x-amz-sns-topic-arn", &message.topic_arn)
        .body(message.body.clone());
    if message.message_type != "SubscriptionConfirmation" {
        request = request.header("x-amz-sns-subscription-arn", &message.subscription_arn);
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(error_chain(&error)),
    };
    let status_code = Some(response.status().as_u16());
    let answer = read_answer(&mut response).await;
    AttemptResult {
        status_code,
        error: answer.error,
        response_body: answer.body,
    }
}

impl AmazonSimulator {
    /// Settles what fell due by the host's `Now`, then delivers every message due and
    /// records each answer: the attempts made. A message already being delivered (by a
    /// concurrent call) is left to that call.
    pub async fn deliver_due(&self) -> AmazonDeliveryReport {
        let ((), _) = self.with_state(|_, _| ());
        let due = self.claim(Due::All);
        AmazonDeliveryReport {
            attempts: self.start_delivering(due).await.unwrap_or_default(),
        }
    }

    /// Runs [`AmazonSimulator::deliver_due`] every [`DELIVERY_POLL_INTERVAL`] of real time
    /// until the task is aborted, each round's deliveries in a task of their own so that a
    /// slow endpoint does not hold up the next. Aborting stops new rounds; deliveries under
    /// way finish and are recorded. Call it within a Tokio runtime; the task keeps the
    /// simulator alive until aborted.
    pub fn spawn_delivery_loop(&self) -> JoinHandle<()> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(DELIVERY_POLL_INTERVAL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let ((), _) = simulator.with_state(|_, _| ());
                let due = simulator.claim(Due::All);
                if !due.is_empty() {
                    drop(simulator.start_delivering(due));
                }
            }
        })
    }

    /// Waits, at most [`IN_FLIGHT_WAIT`], until no delivery is under way.
    pub(crate) async fn deliveries_under_way_finished(&self) {
        crate::delivery::until_idle(&self.inner.delivery_finished, IN_FLIGHT_WAIT, || {
            self.lock().topic.anything_in_flight()
        })
        .await;
    }

    /// Makes the first attempt of these messages (or waits for one being made elsewhere), so
    /// that whoever caused them can answer knowing the endpoint was tried: the attempts this
    /// call made.
    pub(crate) async fn deliver_caused(&self, message_ids: &[String]) -> Vec<DeliveryAttempt> {
        let mut attempts = Vec::new();
        if message_ids.is_empty() {
            return attempts;
        }
        loop {
            let finished = self.inner.delivery_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let due = self.claim(Due::FirstAttemptsOf(message_ids));
            let in_flight = self.lock().topic.any_in_flight(message_ids);
            if !due.is_empty() {
                attempts.extend(self.start_delivering(due).await.unwrap_or_default());
            } else if !in_flight
                || tokio::time::timeout(IN_FLIGHT_WAIT, finished)
                    .await
                    .is_err()
            {
                return attempts;
            }
        }
    }

    fn claim(&self, wanted: Due<'_>) -> Vec<Outgoing> {
        let now = self.now();
        self.lock().topic.claim_due(now, wanted)
    }

    /// Sends claimed messages ([`crate::delivery::send_all`]) in a task of their own, so that
    /// they are recorded even if whoever waits for them goes away.
    fn start_delivering(&self, due: Vec<Outgoing>) -> JoinHandle<Vec<DeliveryAttempt>> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let client = simulator.inner.http.get_or_init(http_client).clone();
            let sends: Vec<_> = due
                .iter()
                .cloned()
                .map(|message| {
                    let client = client.clone();
                    async move {
                        match client {
                            Ok(client) => post(&client, &message).await,
                            Err(error) => failed(format!("no HTTP client: {error}")),
                        }
                    }
                })
                .collect();
            let results = crate::delivery::send_all(sends).await;
            let attempts: Vec<DeliveryAttempt> = {
                let mut state = simulator.lock();
                due.iter()
                    .zip(results)
                    .map(|(message, result)| {
                        let result =
                            result.unwrap_or_else(|| failed("the attempt's task failed".into()));
                        state.topic.complete(message, result)
                    })
                    .collect()
            };
            simulator.inner.delivery_finished.notify_waiters();
            attempts
        })
    }
}
