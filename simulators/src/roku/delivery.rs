//! Pushing notifications over HTTP: what [`super::notifications`] hands out as due is
//! POSTed as Roku Pay sends it — a secured push as a JWS signed with the simulator's key
//! (Roku's claims, the message base64 in `x-Roku-message`), an unsecured one as the
//! message's JSON — and each answer recorded, without ever holding the state's lock across
//! a request.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::Object;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::RokuSimulator;
use super::notifications::{Due, OutgoingPush, PushAttempt, PushResult};
use crate::delivery::{error_chain, outbox_client, read_answer};

/// How often, in real time, the delivery loop looks for pushes that are due.
pub const PUSH_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The `iss` of a secured push, as Roku's receiver sample requires it.
pub const PUSH_ISSUER: &str = "Roku, Inc. urn:roku:apps:partner-service.roku.com";

/// The `x-Roku-message-type` of a Roku Pay push notification.
pub const PUSH_MESSAGE_TYPE: &str = "roku.rpay.push";

/// The `x-Roku-message-encoding` of every push: the message's UTF-8 JSON in base64.
pub const PUSH_MESSAGE_ENCODING: &str = "base64-utf8";

/// A secured push's token expires this long after it is made (Roku: 24 hours)…
pub const PUSH_TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(24);

/// …and is valid from this long before (Roku: one hour).
pub const PUSH_TOKEN_NOT_BEFORE: TimeDelta = TimeDelta::hours(1);

/// How long an endpoint has to answer (Roku: requests time out after 10 seconds).
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for someone else's push of a message we need pushed; past the push
/// timeout, so only a lost push is given up on.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);

/// The attempts one round of pushes made.
#[derive(Object, Debug, Clone, Default, PartialEq)]
#[oai(rename = "RokuPushReport")]
pub struct RokuPushReport {
    /// In the order the messages were published.
    pub attempts: Vec<PushAttempt>,
}

/// The JWT claims of a secured push, as Roku documents them.
#[derive(Serialize)]
struct PushClaims<'a> {
    iss: &'static str,
    exp: i64,
    nbf: i64,
    #[serde(rename = "x-Roku-message")]
    message: String,
    #[serde(rename = "x-Roku-message-encoding")]
    encoding: &'static str,
    #[serde(rename = "x-Roku-message-key")]
    key: &'a str,
    #[serde(rename = "x-Roku-message-type")]
    message_type: &'static str,
}

/// The client pushes are sent with: no proxy (endpoints are local more often than not), no
/// redirects (Roku: a redirect fails the request), Roku's timeout.
fn http_client() -> Result<reqwest::Client, String> {
    outbox_client(reqwest::Client::builder(), PUSH_TIMEOUT, None)
}

fn failed(error: String) -> PushResult {
    PushResult {
        error: Some(error),
        ..PushResult::default()
    }
}

async fn post(client: &reqwest::Client, url: &str, content_type: &str, body: String) -> PushResult {
    let request = client
        .post(url)
        .header("content-type", content_type)
        .body(body);
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(error_chain(&error)),
    };
    let status_code = Some(response.status().as_u16());
    let answer = read_answer(&mut response).await;
    PushResult {
        status_code,
        error: answer.error,
        response_body: answer.body,
    }
}

impl RokuSimulator {
    /// Settles what fell due by the host's `Now`, then pushes every message due and records
    /// each answer: the attempts made. A message already being pushed (by a concurrent
    /// call) is left to that call.
    pub async fn deliver_due(&self) -> RokuPushReport {
        let ((), _) = self.with_state(|_, _| ());
        let now = self.now();
        let due = self.lock().outbox.claim_due(now, Due::All);
        RokuPushReport {
            attempts: self.start_pushing(due).await.unwrap_or_default(),
        }
    }

    /// Runs [`RokuSimulator::deliver_due`] every [`PUSH_POLL_INTERVAL`] of real time until
    /// the task is aborted, each round in its own task so that a slow endpoint does not
    /// hold up the next. Aborting stops new rounds; pushes under way finish and are
    /// recorded. Call it within a Tokio runtime; the task keeps the simulator alive until
    /// aborted.
    pub fn spawn_delivery_loop(&self) -> JoinHandle<()> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PUSH_POLL_INTERVAL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let ((), _) = simulator.with_state(|_, _| ());
                let now = simulator.now();
                let due = simulator.lock().outbox.claim_due(now, Due::All);
                if !due.is_empty() {
                    drop(simulator.start_pushing(due));
                }
            }
        })
    }

    /// Waits, at most [`IN_FLIGHT_WAIT`], until no push is under way.
    pub(crate) async fn pushes_under_way_finished(&self) {
        crate::delivery::until_idle(&self.inner.push_finished, IN_FLIGHT_WAIT, || {
            self.lock().outbox.anything_in_flight()
        })
        .await;
    }

    /// Makes the first push of these messages (or waits for one being made elsewhere), so
    /// that whoever caused them can answer knowing the endpoint was tried: the attempts
    /// this call made.
    pub(crate) async fn deliver_caused(&self, keys: &[String]) -> Vec<PushAttempt> {
        let mut attempts = Vec::new();
        if keys.is_empty() {
            return attempts;
        }
        loop {
            let finished = self.inner.push_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let (due, in_flight) = {
                let now = self.now();
                let mut state = self.lock();
                let due = state.outbox.claim_due(now, Due::FirstPushesOf(keys));
                (due, state.outbox.any_in_flight(keys))
            };
            if !due.is_empty() {
                attempts.extend(self.start_pushing(due).await.unwrap_or_default());
            } else if !in_flight
                || tokio::time::timeout(IN_FLIGHT_WAIT, finished)
                    .await
                    .is_err()
            {
                return attempts;
            }
        }
    }

    /// The body of a secured push made at `at`: the JWS.
    fn signed_body(&self, push: &OutgoingPush, at: DateTime<Utc>) -> Result<String, String> {
        let key = self
            .key()
            .ok_or_else(|| "the simulator has no key to sign the push with".to_owned())?;
        let claims = PushClaims {
            iss: PUSH_ISSUER,
            exp: (at + PUSH_TOKEN_LIFETIME).timestamp(),
            nbf: (at - PUSH_TOKEN_NOT_BEFORE).timestamp(),
            message: STANDARD.encode(push.json.as_bytes()),
            encoding: PUSH_MESSAGE_ENCODING,
            key: &push.message_key,
            message_type: PUSH_MESSAGE_TYPE,
        };
        key.sign(&claims)
            .map_err(|error| format!("cannot sign the push: {error}"))
    }

    /// Sends claimed pushes ([`crate::delivery::send_all`]) in a task of their own, so that
    /// they are recorded even if whoever waits for them goes away.
    fn start_pushing(&self, due: Vec<OutgoingPush>) -> JoinHandle<Vec<PushAttempt>> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let client = simulator.inner.http.get_or_init(http_client).clone();
            let sends: Vec<_> = due
                .iter()
                .cloned()
                .map(|push| {
                    let (client, simulator) = (client.clone(), simulator.clone());
                    async move {
                        // Signed as it is sent, not when it was handed out: the receiver
                        // checks `exp` against a clock that may have moved in between.
                        let body = if push.target.signed {
                            simulator
                                .signed_body(&push, simulator.now())
                                .map(|jws| ("text/plain", jws))
                        } else {
                            Ok(("application/json", push.json.clone()))
                        };
                        match (client, body) {
                            (Err(error), _) => failed(format!("no HTTP client: {error}")),
                            (_, Err(error)) => failed(error),
                            (Ok(client), Ok((content_type, body))) => {
                                post(&client, &push.target.url, content_type, body).await
                            }
                        }
                    }
                })
                .collect();
            let results = crate::delivery::send_all(sends).await;
            let attempts: Vec<PushAttempt> = {
                let mut state = simulator.lock();
                due.iter()
                    .zip(results)
                    .map(|(push, result)| {
                        let result =
                            result.unwrap_or_else(|| failed("the push's task failed".into()));
                        state.outbox.complete(push, result)
                    })
                    .collect()
            };
            simulator.inner.push_finished.notify_waiters();
            attempts
        })
    }
}
