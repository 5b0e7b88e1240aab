//! Sending webhook deliveries over HTTP: what [`super::webhooks`] hands out as due is
//! POSTed, and each answer recorded, without ever holding the account's lock across a
//! request.

use std::sync::Arc;
use std::time::Duration;

use poem_openapi::Object;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::webhooks::{AttemptResult, Due, OutgoingDelivery, WebhookAttempt};
use super::{LocalWebhooks, StripeSimulator};
use crate::delivery::{error_chain, outbox_client, read_answer};

/// How often, in real time, the delivery loop looks for deliveries that are due.
pub const DELIVERY_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long an endpoint has to answer an attempt before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for someone else's attempt at a delivery we need attempted; past the
/// attempt timeout, so only a lost attempt is given up on.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);

const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";

/// The attempts one round of deliveries made.
#[derive(Object, Debug, Clone, Default, PartialEq)]
#[oai(rename = "StripeWebhookDeliveryReport")]
pub struct WebhookDeliveryReport {
    /// In the order the deliveries were queued.
    pub attempts: Vec<WebhookAttempt>,
}

/// What webhooks are sent with ([`outbox_client`]s; Stripe counts a 3xx as a failure):
/// over TCP, or over the host's Unix socket to the endpoints it serves itself.
#[derive(Clone)]
pub(super) struct WebhookClients {
    tcp: reqwest::Client,
    /// The origin the host serves, and the client that reaches it over its socket.
    local: Option<(String, reqwest::Client)>,
}

impl WebhookClients {
    pub(super) fn new(local: Option<&LocalWebhooks>) -> Result<Self, String> {
        let build = |builder| outbox_client(builder, ATTEMPT_TIMEOUT, Some(USER_AGENT));
        #[cfg(unix)]
        let local = match local {
            Some(local) => Some((
                local.origin.trim_end_matches('/').to_owned(),
                build(reqwest::Client::builder().unix_socket(local.socket.as_path()))?,
            )),
            None => None,
        };
        #[cfg(not(unix))]
        let local = {
            let _without_unix_sockets = local;
            None
        };
        Ok(Self {
            tcp: build(reqwest::Client::builder())?,
            local,
        })
    }

    fn for_url(&self, url: &str) -> &reqwest::Client {
        match &self.local {
            Some((origin, client)) if is_under_origin(url, origin) => client,
            _ => &self.tcp,
        }
    }
}

/// Whether `url` is at `origin` (`http://127.0.0.1:8080`), not merely sharing its prefix
/// (`http://127.0.0.1:80801/...`).
fn is_under_origin(url: &str, origin: &str) -> bool {
    url.strip_prefix(origin)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
}

async fn post(
    client: Result<reqwest::Client, String>,
    delivery: &OutgoingDelivery,
) -> AttemptResult {
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            return AttemptResult {
                error: Some(format!("no HTTP client: {error}")),
                ..AttemptResult::default()
            };
        }
    };
    let sent = client
        .post(delivery.target.clone())
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", &delivery.signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            return AttemptResult {
                error: Some(error_chain(&error)),
                ..AttemptResult::default()
            };
        }
    };
    let status_code = Some(response.status().as_u16());
    let answer = read_answer(&mut response).await;
    AttemptResult {
        status_code,
        error: answer.error,
        response_body: answer.body,
    }
}

impl StripeSimulator {
    /// Sends every webhook delivery due at the host's `Now` and records each answer; what
    /// was attempted. A delivery already being sent (by a concurrent call) is left to that
    /// call.
    pub async fn deliver_due(&self) -> WebhookDeliveryReport {
        let now = self.now();
        let due = self.lock().account.claim_due_deliveries(now, Due::All);
        WebhookDeliveryReport {
            attempts: self.start_sending(due).await.unwrap_or_default(),
        }
    }

    /// Runs [`StripeSimulator::deliver_due`] every [`DELIVERY_POLL_INTERVAL`] of real time
    /// until the task is aborted, each round in its own task so that a slow endpoint
    /// does not hold up the others. Aborting stops new rounds; attempts under way finish
    /// and are recorded. Call it within a Tokio runtime; the task keeps the simulator
    /// alive until aborted.
    pub fn spawn_delivery_loop(&self) -> JoinHandle<()> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(DELIVERY_POLL_INTERVAL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let now = simulator.now();
                let due = simulator.lock().account.claim_due_deliveries(now, Due::All);
                if !due.is_empty() {
                    drop(simulator.start_sending(due));
                }
            }
        })
    }

    /// Makes the first attempt of every delivery of these events (or waits for one being
    /// made elsewhere), so that whoever caused them can answer knowing the webhooks were
    /// tried.
    pub(crate) async fn deliver_caused(&self, events: &[String]) {
        if events.is_empty() {
            return;
        }
        let wanted = Due::FirstAttemptsOf(events);
        loop {
            let finished = self.inner.delivery_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let (due, in_flight) = {
                let now = self.now();
                let mut shared = self.lock();
                let due = shared.account.claim_due_deliveries(now, wanted);
                let in_flight = shared.account.deliveries_in_flight(wanted);
                (due, in_flight)
            };
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

    /// Sends claimed deliveries concurrently (a few dozen at a time) in a task of their
    /// own, so that they are recorded even if whoever waits for them goes away.
    fn start_sending(&self, due: Vec<OutgoingDelivery>) -> JoinHandle<Vec<WebhookAttempt>> {
        let simulator = self.clone();
        tokio::spawn(async move {
            let clients = simulator
                .inner
                .http
                .get_or_init(|| WebhookClients::new(simulator.config().local_webhooks.as_ref()))
                .clone();
            let due: Vec<Arc<OutgoingDelivery>> = due.into_iter().map(Arc::new).collect();
            let sends: Vec<_> = due
                .iter()
                .map(|delivery| {
                    let client = clients
                        .as_ref()
                        .map(|clients| clients.for_url(&delivery.url).clone())
                        .map_err(Clone::clone);
                    let delivery = delivery.clone();
                    async move { post(client, &delivery).await }
                })
                .collect();
            let results = crate::delivery::send_all(sends).await;
            let attempts: Vec<WebhookAttempt> = {
                let mut shared = simulator.lock();
                due.iter()
                    .zip(results)
                    .map(|(delivery, result)| {
                        let result = result.unwrap_or_else(|| AttemptResult {
                            error: Some("the attempt's task failed".into()),
                            ..AttemptResult::default()
                        });
                        shared.account.complete_delivery(delivery, result)
                    })
                    .collect()
            };
            simulator.inner.delivery_finished.notify_waiters();
            attempts
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_under_origin;

    #[test]
    fn only_the_hosts_own_origin_goes_over_its_socket() {
        let origin = "http://127.0.0.1:8080";
        assert!(is_under_origin(
            "http://127.0.0.1:8080/webhooks/stripe",
            origin
        ));
        assert!(is_under_origin("http://127.0.0.1:8080", origin));
        assert!(is_under_origin("http://127.0.0.1:8080?x=1", origin));
        assert!(!is_under_origin("http://127.0.0.1:80801/webhooks", origin));
        assert!(!is_under_origin(
            "http://127.0.0.1:8080.example.com/",
            origin
        ));
        assert!(!is_under_origin(
            "http://localhost:8080/webhooks/stripe",
            origin
        ));
        assert!(!is_under_origin(
            "https://127.0.0.1:8080/webhooks/stripe",
            origin
        ));
    }
}
