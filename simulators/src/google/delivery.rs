//! Pushing notifications over HTTP: what [`super::notifications`] hands out as due is
//! POSTed as Pub/Sub pushes it (with an OIDC token signed by Google's key for authenticated
//! push), and each answer recorded, without ever holding the state's lock across a request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::GoogleSimulator;
use super::notifications::{Due, OutgoingPush, PushAttempt, PushIdentity, PushResult};
use super::oauth::numeric_id;
use crate::delivery::{error_chain, outbox_client, read_answer};

/// How often, in real time, the delivery loop looks for pushes that are due.
pub const PUSH_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long an endpoint has to answer a push before it counts as failed (Pub/Sub's
/// default acknowledgement deadline).
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for someone else's push of a message we need pushed; past the push
/// timeout, so only a lost push is given up on.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);

/// How long the OIDC token of a push is valid.
const ID_TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(1);

const USER_AGENT: &str =
    "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)";

/// The attempts one round of pushes made.
#[derive(Object, Debug, Clone, Default, PartialEq)]
#[oai(rename = "GooglePushReport")]
pub struct GooglePushReport {
    /// In the order the messages were published.
    pub attempts: Vec<PushAttempt>,
}

/// The claims of the OIDC token Pub/Sub sends with an authenticated push, in Google's
/// order.
#[derive(Serialize)]
struct PushIdTokenClaims<'a> {
    aud: &'a str,
    azp: String,
    email: &'a str,
    email_verified: bool,
    exp: i64,
    iat: i64,
    iss: &'static str,
    sub: String,
}

/// The client pushes are sent with: no proxy (endpoints are local more often than not), no
/// redirects (Pub/Sub counts a 3xx as a failure), a timeout per push.
fn http_client() -> Result<reqwest::Client, String> {
    outbox_client(reqwest::Client::builder(), PUSH_TIMEOUT, Some(USER_AGENT))
}

fn failed(error: String) -> PushResult {
    PushResult {
        error: Some(error),
        ..PushResult::default()
    }
}

async fn post(
    client: &reqwest::Client,
    push: &OutgoingPush,
    id_token: Option<String>,
) -> PushResult {
    let mut request = client
        .post(&push.endpoint)
        .header("content-type", "application/json")
        .body(push.body.clone());
    if let Some(id_token) = id_token {
        request = request.bearer_auth(id_token);
    }
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

impl GoogleSimulator {
    /// Pushes every message due at the host's `Now` and records each answer: the attempts
    /// made. A message already being pushed (by a concurrent call) is left to that call.
    pub async fn deliver_due(&self) -> GooglePushReport {
        let ((), _) = self.with_state(|_, _| ());
        let now = self.now();
        let due = self.lock().outbox.claim_due(now, Due::All);
        GooglePushReport {
            attempts: self.start_pushing(due).await.unwrap_or_default(),
        }
    }

    /// Runs [`GoogleSimulator::deliver_due`] every [`super::PUSH_POLL_INTERVAL`] of real
    /// time until the task is aborted, each round in its own task so that a slow endpoint
    /// does not hold up the next. Aborting stops new rounds; pushes under way finish and are
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
    pub(crate) async fn deliver_caused(&self, message_ids: &[String]) -> Vec<PushAttempt> {
        let mut attempts = Vec::new();
        if message_ids.is_empty() {
            return attempts;
        }
        loop {
            let finished = self.inner.push_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let (due, in_flight) = {
                let now = self.now();
                let mut state = self.lock();
                let due = state.outbox.claim_due(now, Due::FirstPushesOf(message_ids));
                (due, state.outbox.any_in_flight(message_ids))
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

    /// The OIDC token of a push sent at `now`.
    fn id_token(&self, identity: &PushIdentity, now: DateTime<Utc>) -> Result<String, String> {
        let keys = self
            .keys()
            .ok_or_else(|| "the simulator has no key to sign the OIDC token with".to_owned())?;
        let subject = numeric_id(&identity.service_account_email);
        let claims = PushIdTokenClaims {
            aud: &identity.audience,
            azp: subject.clone(),
            email: &identity.service_account_email,
            email_verified: true,
            exp: (now + ID_TOKEN_LIFETIME).timestamp(),
            iat: now.timestamp(),
            iss: "https://accounts.google.com",
            sub: subject,
        };
        keys.google
            .sign(&claims)
            .map_err(|error| format!("cannot sign the OIDC token: {error}"))
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
                        // Minted as it is sent, not when it was handed out: the receiver
                        // checks `exp` against a clock that may have moved in between.
                        let id_token = push
                            .oidc
                            .as_ref()
                            .map(|identity| simulator.id_token(identity, simulator.now()))
                            .transpose();
                        match (client, id_token) {
                            (Err(error), _) => failed(format!("no HTTP client: {error}")),
                            (_, Err(error)) => failed(error),
                            (Ok(client), Ok(id_token)) => post(&client, &push, id_token).await,
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
