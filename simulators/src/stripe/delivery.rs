//! Sending webhook deliveries over HTTP: what [`super::webhooks`] hands out as due is
//! POSTed, and each answer recorded, without ever holding the account's lock across a
//! request.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
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

/// POSTs one attempt, signed at `now`: the moment it is sent.
async fn post(
    client: Result<reqwest::Client, String>,
    delivery: &OutgoingDelivery,
    now: DateTime<Utc>,
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
        .header("stripe-signature", delivery.signature_at(now))
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
                    let (delivery, simulator) = (delivery.clone(), simulator.clone());
                    async move { post(client, &delivery, simulator.now()).await }
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
    use std::sync::{Arc, Mutex};

    use chrono::{DateTime, TimeDelta, Utc};
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::is_under_origin;
    use crate::stripe::webhooks::{Due, signature_header};
    use crate::stripe::{StripeConfig, StripeSimulator};

    #[tokio::test]
    async fn an_attempt_is_signed_when_it_is_sent_not_when_it_was_handed_out() {
        // A receiver judges a signature's age by its own clock: a delivery handed out
        // before the clock moved a month and sent after it must carry the later time.
        let handed_out_at = DateTime::parse_from_rfc3339("2026-01-31T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let clock = Arc::new(Mutex::new(handed_out_at));
        let time = clock.clone();
        let simulator = StripeSimulator::new(
            StripeConfig {
                public_base_url: "http://127.0.0.1:9/sim/stripe".into(),
                secret_key: "sk_test_signed_when_sent".into(),
                publishable_key: "pk_test_signed_when_sent".into(),
                local_webhooks: None,
            },
            Arc::new(move || *time.lock().expect("clock")),
        )
        .expect("simulator");
        let receiver = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&receiver)
            .await;
        let endpoint = simulator
            .register_webhook_endpoint(&format!("{}/hook", receiver.uri()), &["*"])
            .expect("endpoint");
        let due = {
            let mut shared = simulator.lock();
            shared.account.record_event(
                "customer.created",
                &serde_json::json!({ "id": "cus_signed_when_sent", "object": "customer" }),
                handed_out_at,
            );
            shared.account.claim_due_deliveries(handed_out_at, Due::All)
        };
        assert_eq!(due.len(), 1);

        let sent_at = handed_out_at + TimeDelta::days(31);
        *clock.lock().expect("clock") = sent_at;
        let attempts = simulator.start_sending(due).await.expect("sent");
        assert_eq!(attempts[0].status_code, Some(200));

        let requests = receiver.received_requests().await.expect("recording");
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].headers["stripe-signature"],
            signature_header(&endpoint.secret, sent_at.timestamp(), &requests[0].body).as_str()
        );
    }

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
