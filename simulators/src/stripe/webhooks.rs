//! Webhook endpoints and the deliveries owed to them, without HTTP.
//!
//! When an event is recorded, every enabled endpoint subscribed to its type is owed one
//! delivery. A delivery is attempted when due; a 2xx answer settles it, anything else
//! schedules the next attempt on the host's clock ([`retry_delay`]) until
//! [`GIVE_UP_AFTER`] has passed since the first attempt. A delivery being attempted is
//! `in_flight` and is not handed out again until its answer is recorded.
//!
//! The body of a delivery is the event as `GET /v1/events/{id}` shows it at the time of the
//! attempt (rendered with the endpoint's `api_version`), signed as Stripe signs it
//! ([`signature_header`]) when it is sent, not when it was handed out: a receiver judges a
//! signature's age by its own clock, and the host's clock may move in between.
//!
//! Pending deliveries wait in a queue ordered by when they are due, so a round of
//! deliveries reads only what is due; each event knows its deliveries. Settled deliveries
//! (delivered or given up) are kept for the control surface to show, the last
//! [`SETTLED_KEPT_PER_ENDPOINT`] of each endpoint.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use foldhash::HashMap;
use hmac::{Hmac, Mac};
use poem_openapi::{Enum, Object};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

use super::error::ApiError;
use super::events::{EVENT_TYPES, Owed};
use super::state::{Account, Listed, Metadata, new_id};

/// Stripe allows this many webhook endpoints per account (and mode).
const MAX_ENDPOINTS: usize = 16;

/// How many settled deliveries (delivered or given up) are kept per endpoint, newest; older
/// ones are forgotten.
pub const SETTLED_KEPT_PER_ENDPOINT: usize = 1000;

/// Deliveries stop once the next attempt would come this long after the first.
pub const GIVE_UP_AFTER: TimeDelta = TimeDelta::days(3);

/// The longest wait between two attempts.
const MAX_RETRY_DELAY: TimeDelta = TimeDelta::hours(12);

/// How long to wait after the `failures`-th failed attempt in a row: one minute after the
/// first, doubling with each further failure, at most twelve hours. With [`GIVE_UP_AFTER`]
/// that makes attempts at 0, 1, 3, 7, 15, 31, 63, 127, 255, 511 and 1023 minutes (about
/// 17 hours), then every 12 hours until about 65 hours; the next would fall after three
/// days, so the delivery is given up after its fifteenth failed attempt.
pub fn retry_delay(failures: u32) -> TimeDelta {
    let doublings = failures.saturating_sub(1).min(20);
    TimeDelta::minutes(1_i64 << doublings).min(MAX_RETRY_DELAY)
}

/// `Stripe-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`, keyed
/// with the whole `whsec_…` string, exactly as Stripe's libraries verify it.
pub fn signature_header(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let signature = hex::encode(mac.finalize().into_bytes());
    format!("t={timestamp},v1={signature}")
}

/// What a delivery sends: the event pretty-printed, as Stripe sends it, with the
/// endpoint's pinned API version when it has one. The object's snapshot is written out as
/// stored, not parsed and printed again.
fn delivery_payload(event: &super::events::Event, pinned_version: Option<&str>) -> String {
    let printed = match pinned_version {
        Some(version) if version != event.api_version => {
            let mut pinned = event.clone();
            pinned.api_version = version.to_owned().into();
            serde_json::to_string_pretty(&pinned)
        }
        _ => serde_json::to_string_pretty(event),
    };
    printed.unwrap_or_default()
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub object: &'static str,
    pub api_version: Option<String>,
    pub application: Option<String>,
    pub created: i64,
    pub description: Option<String>,
    pub enabled_events: Vec<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub status: &'static str,
    pub url: String,
    /// `url`, parsed once for every delivery to it.
    #[serde(skip)]
    pub target: url::Url,
    /// Shown once, in the answer to the endpoint's creation.
    #[serde(skip)]
    pub secret: String,
    #[serde(skip)]
    pub seq: u64,
}

impl Listed for WebhookEndpoint {
    fn id(&self) -> &str {
        &self.id
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl WebhookEndpoint {
    fn enabled(&self) -> bool {
        self.status == "enabled"
    }

    fn subscribed_to(&self, event_type: &str) -> bool {
        self.enabled_events
            .iter()
            .any(|enabled| enabled == "*" || enabled == event_type)
    }
}

#[derive(Debug, Default)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub api_version: Option<String>,
}

/// Fields of an endpoint update; `Some("")` unsets the description.
#[derive(Debug, Default)]
pub struct WebhookEndpointUpdate {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub description: Option<String>,
    pub metadata: Option<Metadata>,
    pub disabled: Option<bool>,
}

/// Where a delivery stands, or what an attempt left it in.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "StripeWebhookDeliveryState", rename_all = "snake_case")]
pub enum WebhookDeliveryState {
    /// Waiting for `next_attempt_at` (after a failed attempt: will be retried then).
    Pending,
    /// Being attempted now.
    InFlight,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed and the retry schedule is over (or the endpoint was deleted).
    GaveUp,
}

/// One attempt to deliver an event to an endpoint.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "StripeWebhookAttempt")]
pub struct WebhookAttempt {
    /// The delivery this attempt belongs to.
    pub delivery: String,
    /// The event sent, `evt_…`.
    pub event: String,
    pub event_type: String,
    /// The endpoint, `we_…`.
    pub webhook_endpoint: String,
    /// Where it was sent.
    pub url: String,
    /// 1 for the first attempt of the delivery.
    pub attempt: u32,
    /// When, on the host's clock; also the `t` of its `Stripe-Signature`.
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (connection refused, timeout, …).
    pub error: Option<String>,
    /// The start of the endpoint's answer (at most 1000 characters).
    pub response_body: Option<String>,
    /// What the attempt left the delivery in: `delivered`, `pending` (retried at
    /// `next_attempt_at`) or `gave_up`.
    pub outcome: WebhookDeliveryState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// An event owed to an endpoint, and every attempt made to deliver it.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "StripeWebhookDelivery")]
pub struct WebhookDelivery {
    pub id: String,
    /// The event, `evt_…`.
    pub event: String,
    pub event_type: String,
    /// The endpoint, `we_…`.
    pub webhook_endpoint: String,
    pub state: WebhookDeliveryState,
    /// When the event was queued for the endpoint (or queued again by a resend).
    pub queued_at: DateTime<Utc>,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<WebhookAttempt>,
}

/// The endpoints and the deliveries owed to them.
#[derive(Default)]
pub struct Webhooks {
    pub endpoints: HashMap<String, WebhookEndpoint>,
    /// The deliveries kept, by serial number: oldest first.
    deliveries: BTreeMap<u64, WebhookDelivery>,
    next_serial: u64,
    /// Pending deliveries by when they are due.
    due: BTreeSet<(DateTime<Utc>, u64)>,
    /// Pending deliveries that came due while their endpoint was disabled, by endpoint.
    parked: HashMap<String, BTreeSet<u64>>,
    /// Each event's deliveries.
    by_event: HashMap<String, Vec<u64>>,
    /// Each endpoint's settled deliveries, oldest first.
    settled: HashMap<String, VecDeque<u64>>,
}

impl Webhooks {
    /// Queues the event for every enabled endpoint subscribed to its type, due now; the
    /// endpoints it was queued for.
    pub fn enqueue(&mut self, event: &str, event_type: &str, now: DateTime<Utc>) -> Vec<String> {
        let mut targets: Vec<&WebhookEndpoint> = self
            .endpoints
            .values()
            .filter(|endpoint| endpoint.enabled() && endpoint.subscribed_to(event_type))
            .collect();
        targets.sort_by_key(|endpoint| endpoint.seq);
        let targets: Vec<String> = targets
            .into_iter()
            .map(|endpoint| endpoint.id.clone())
            .collect();
        for endpoint in &targets {
            self.queue(event, event_type, endpoint, now);
        }
        targets
    }

    /// A new delivery, due now.
    fn queue(
        &mut self,
        event: &str,
        event_type: &str,
        endpoint: &str,
        now: DateTime<Utc>,
    ) -> &WebhookDelivery {
        self.next_serial += 1;
        let serial = self.next_serial;
        self.due.insert((now, serial));
        self.by_event
            .entry(event.to_owned())
            .or_default()
            .push(serial);
        self.deliveries
            .entry(serial)
            .or_insert_with(|| new_delivery(event, event_type, endpoint, now))
    }

    /// The deliveries kept, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &WebhookDelivery> {
        self.deliveries.values().rev()
    }

    /// The serial numbers of an event's deliveries.
    fn of_event(&self, event: &str) -> &[u64] {
        self.by_event.get(event).map_or(&[], Vec::as_slice)
    }

    /// Forgets a delivery altogether.
    fn forget(&mut self, serial: u64) {
        let Some(delivery) = self.deliveries.remove(&serial) else {
            return;
        };
        if let Some(at) = delivery.next_attempt_at {
            self.due.remove(&(at, serial));
        }
        if let Some(parked) = self.parked.get_mut(&delivery.webhook_endpoint) {
            parked.remove(&serial);
        }
        if let Some(serials) = self.by_event.get_mut(&delivery.event) {
            serials.retain(|other| *other != serial);
            if serials.is_empty() {
                self.by_event.remove(&delivery.event);
            }
        }
    }

    /// Files a delivery that has just been settled, forgetting its endpoint's oldest
    /// settled ones past [`SETTLED_KEPT_PER_ENDPOINT`].
    fn keep_settled(&mut self, serial: u64, endpoint: &str) {
        let settled = self.settled.entry(endpoint.to_owned()).or_default();
        settled.push_back(serial);
        let mut forgotten = Vec::new();
        while settled.len() > SETTLED_KEPT_PER_ENDPOINT {
            forgotten.extend(settled.pop_front());
        }
        for serial in forgotten {
            self.forget(serial);
        }
    }
}

fn new_delivery(
    event: &str,
    event_type: &str,
    endpoint: &str,
    now: DateTime<Utc>,
) -> WebhookDelivery {
    WebhookDelivery {
        id: new_id("whdel"),
        event: event.to_owned(),
        event_type: event_type.to_owned(),
        webhook_endpoint: endpoint.to_owned(),
        state: WebhookDeliveryState::Pending,
        queued_at: now,
        next_attempt_at: Some(now),
        attempts: Vec::new(),
    }
}

/// Which due deliveries to hand out.
#[derive(Debug, Clone, Copy)]
pub enum Due<'a> {
    All,
    /// Only the first attempts of these events' deliveries: what whoever caused them waits
    /// for.
    FirstAttemptsOf(&'a [String]),
}

impl Due<'_> {
    fn wants(self, delivery: &WebhookDelivery) -> bool {
        match self {
            Self::All => true,
            Self::FirstAttemptsOf(events) => {
                delivery.attempts.is_empty() && events.contains(&delivery.event)
            }
        }
    }
}

/// A delivery handed out to be sent: where, what, and the key it is signed with.
#[derive(Debug, Clone)]
pub struct OutgoingDelivery {
    /// Where the account keeps it.
    serial: u64,
    pub delivery: String,
    pub event: String,
    pub event_type: String,
    pub webhook_endpoint: String,
    pub url: String,
    pub target: url::Url,
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    /// The exact bytes signed.
    pub payload: bytes::Bytes,
    /// The endpoint's `whsec_…`.
    secret: String,
}

impl OutgoingDelivery {
    /// `Stripe-Signature` for sending this attempt at `now`.
    pub fn signature_at(&self, now: DateTime<Utc>) -> String {
        signature_header(&self.secret, now.timestamp(), &self.payload)
    }
}

/// What the endpoint did with an attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// `url` parsed, if it is one deliveries can go to.
fn check_url(url: &str) -> Result<url::Url, ApiError> {
    url::Url::parse(url)
        .ok()
        .filter(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid URL: {url}. The URL must be an absolute http:// or https:// URL."
            ))
            .with_code("url_invalid")
            .with_param("url")
        })
}

fn check_enabled_events(events: &[String]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Err(ApiError::missing("enabled_events"));
    }
    for (index, event) in events.iter().enumerate() {
        if event != "*" && !EVENT_TYPES.contains(&event.as_str()) {
            let name = format!("enabled_events[{index}]");
            return Err(ApiError::invalid(format!(
                "Invalid {name}: must be one of *, {}",
                EVENT_TYPES.join(", ")
            ))
            .with_code("parameter_invalid_string")
            .with_param(&name)
            .with_extra("value", json!(event)));
        }
    }
    Ok(())
}

/// `2025-03-31.basil` or `2024-06-20`.
fn check_api_version(version: &str) -> Result<(), ApiError> {
    let (date, name) = version.split_once('.').unwrap_or((version, "x"));
    let date_ok = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10;
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase());
    if date_ok && name_ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("Invalid API version: {version}")).with_param("api_version"))
    }
}

fn new_secret() -> String {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("whsec_{random}")
}

impl Account {
    pub fn webhook_endpoint(&self, id: &str) -> Result<&WebhookEndpoint, ApiError> {
        self.webhooks
            .endpoints
            .get(id)
            .ok_or_else(|| ApiError::no_such("webhook endpoint", id, "id"))
    }

    /// A new endpoint, enabled; its signing secret is in the endpoint (and shown once).
    pub fn create_webhook_endpoint(
        &mut self,
        new: NewWebhookEndpoint,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpoint, ApiError> {
        let target = check_url(&new.url)?;
        check_enabled_events(&new.enabled_events)?;
        if let Some(version) = &new.api_version {
            check_api_version(version)?;
        }
        if self.webhooks.endpoints.len() >= MAX_ENDPOINTS {
            return Err(ApiError::invalid(format!(
                "You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints."
            )));
        }
        let seq = self.next_seq();
        let endpoint = WebhookEndpoint {
            id: new_id("we"),
            object: "webhook_endpoint",
            api_version: new.api_version,
            application: None,
            created: now.timestamp(),
            description: new.description.filter(|d| !d.is_empty()),
            enabled_events: new.enabled_events,
            livemode: false,
            metadata: new.metadata,
            status: "enabled",
            url: new.url,
            target,
            secret: new_secret(),
            seq,
        };
        self.webhooks
            .endpoints
            .insert(endpoint.id.clone(), endpoint.clone());
        Ok(endpoint)
    }

    pub fn update_webhook_endpoint(
        &mut self,
        id: &str,
        update: WebhookEndpointUpdate,
    ) -> Result<WebhookEndpoint, ApiError> {
        self.webhook_endpoint(id)?;
        let target = update.url.as_deref().map(check_url).transpose()?;
        if let Some(events) = &update.enabled_events {
            check_enabled_events(events)?;
        }
        let endpoint = self
            .webhooks
            .endpoints
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("webhook endpoint", id, "id"))?;
        if let (Some(url), Some(target)) = (update.url, target) {
            endpoint.url = url;
            endpoint.target = target;
        }
        if let Some(events) = update.enabled_events {
            endpoint.enabled_events = events;
        }
        if let Some(description) = update.description {
            endpoint.description = Some(description).filter(|d| !d.is_empty());
        }
        if let Some(metadata) = update.metadata {
            super::state::merge_metadata(&mut endpoint.metadata, metadata);
        }
        if let Some(disabled) = update.disabled {
            endpoint.status = if disabled { "disabled" } else { "enabled" };
        }
        let endpoint = endpoint.clone();
        if endpoint.enabled() {
            // What came due while it was disabled is due now.
            for serial in self.webhooks.parked.remove(id).unwrap_or_default() {
                if let Some(at) = self
                    .webhooks
                    .deliveries
                    .get(&serial)
                    .and_then(|delivery| delivery.next_attempt_at)
                {
                    self.webhooks.due.insert((at, serial));
                }
            }
        }
        Ok(endpoint)
    }

    /// Deletes an endpoint. What was still owed to it is dropped (a delivery in flight
    /// finishes, and is not retried).
    pub fn delete_webhook_endpoint(&mut self, id: &str) -> Result<WebhookEndpoint, ApiError> {
        let endpoint = self
            .webhooks
            .endpoints
            .remove(id)
            .ok_or_else(|| ApiError::no_such("webhook endpoint", id, "id"))?;
        let dropped: Vec<(u64, String)> = self
            .webhooks
            .deliveries
            .iter()
            .filter(|(_, delivery)| {
                delivery.webhook_endpoint == endpoint.id
                    && delivery.state == WebhookDeliveryState::Pending
            })
            .map(|(serial, delivery)| (*serial, delivery.event.clone()))
            .collect();
        for (serial, event) in dropped {
            self.webhooks.forget(serial);
            self.delivery_settled(&event);
        }
        self.webhooks.parked.remove(id);
        // The events still owed to it are owed to one endpoint fewer.
        let owing: Vec<String> = self
            .indexes
            .undelivered_events
            .iter()
            .filter_map(|seq| self.events.by_seq(*seq))
            .chain(self.held_events.values())
            .filter(|event| event.owed.iter().any(|owed| owed.endpoint == endpoint.id))
            .map(|event| event.id.clone())
            .collect();
        for event in owing {
            self.refresh_pending_webhooks(&event);
        }
        Ok(endpoint)
    }

    /// Queues an event again, now, for every enabled endpoint subscribed to its type, or
    /// for one endpoint (which must be subscribed to it). The deliveries queued.
    pub fn resend_event(
        &mut self,
        event: &str,
        endpoint: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookDelivery>, ApiError> {
        let event_type = self.event(event)?.event_type;
        let mut targets: Vec<&WebhookEndpoint> = match endpoint {
            Some(id) => {
                let endpoint = self
                    .webhook_endpoint(id)
                    .map_err(|error| error.with_param("webhook_endpoint").referenced())?;
                if !endpoint.subscribed_to(event_type) {
                    return Err(ApiError::invalid(format!(
                        "The webhook endpoint {id} is not subscribed to {event_type} events."
                    ))
                    .with_param("webhook_endpoint"));
                }
                vec![endpoint]
            }
            None => self
                .webhooks
                .endpoints
                .values()
                .filter(|endpoint| endpoint.enabled() && endpoint.subscribed_to(event_type))
                .collect(),
        };
        targets.sort_by_key(|endpoint| endpoint.seq);
        let targets: Vec<String> = targets.iter().map(|target| target.id.clone()).collect();
        let queued: Vec<WebhookDelivery> = targets
            .iter()
            .map(|target| self.webhooks.queue(event, event_type, target, now).clone())
            .collect();
        if let Some(resent) = self.event_for_delivery_mut(event) {
            resent.unsettled = resent
                .unsettled
                .saturating_add(u32::try_from(targets.len()).unwrap_or(u32::MAX));
            for target in targets {
                if !resent.owed.iter().any(|owed| owed.endpoint == target) {
                    resent.owed.push(Owed {
                        endpoint: target,
                        delivered: false,
                    });
                }
            }
        }
        self.refresh_pending_webhooks(event);
        Ok(queued)
    }

    /// Hands out the deliveries `wanted` that are due at `now` to enabled endpoints,
    /// marking them in flight, in the order they were queued.
    pub fn claim_due_deliveries(
        &mut self,
        now: DateTime<Utc>,
        wanted: Due<'_>,
    ) -> Vec<OutgoingDelivery> {
        let mut serials: Vec<u64> = match wanted {
            Due::All => {
                let due: Vec<(DateTime<Utc>, u64)> = self
                    .webhooks
                    .due
                    .range(..=(now, u64::MAX))
                    .copied()
                    .collect();
                due.into_iter()
                    .map(|key| {
                        self.webhooks.due.remove(&key);
                        key.1
                    })
                    .collect()
            }
            Due::FirstAttemptsOf(events) => {
                let mut serials = Vec::new();
                for event in events {
                    for &serial in self.webhooks.of_event(event) {
                        let Some(delivery) = self.webhooks.deliveries.get(&serial) else {
                            continue;
                        };
                        if let Some(at) = delivery.next_attempt_at
                            && at <= now
                            && delivery.attempts.is_empty()
                            && self.webhooks.due.contains(&(at, serial))
                        {
                            serials.push(serial);
                        }
                    }
                }
                for serial in &serials {
                    if let Some(at) = self.webhooks.deliveries[serial].next_attempt_at {
                        self.webhooks.due.remove(&(at, *serial));
                    }
                }
                serials
            }
        };
        serials.sort_unstable();
        serials.dedup();
        let mut outgoing = Vec::new();
        for serial in serials {
            let Some(delivery) = self.webhooks.deliveries.get(&serial) else {
                continue;
            };
            let endpoint = self.webhooks.endpoints.get(&delivery.webhook_endpoint);
            let event = self.event_for_delivery(&delivery.event);
            let (Some(endpoint), Some(event)) = (endpoint, event) else {
                // Nowhere to send it, or nothing to send: it cannot be delivered.
                let event = delivery.event.clone();
                let endpoint = delivery.webhook_endpoint.clone();
                if let Some(delivery) = self.webhooks.deliveries.get_mut(&serial) {
                    delivery.state = WebhookDeliveryState::GaveUp;
                    delivery.next_attempt_at = None;
                }
                self.webhooks.keep_settled(serial, &endpoint);
                self.delivery_settled(&event);
                continue;
            };
            if !endpoint.enabled() {
                self.webhooks
                    .parked
                    .entry(endpoint.id.clone())
                    .or_default()
                    .insert(serial);
                continue;
            }
            let payload = delivery_payload(event, endpoint.api_version.as_deref());
            outgoing.push(OutgoingDelivery {
                serial,
                delivery: delivery.id.clone(),
                event: delivery.event.clone(),
                event_type: delivery.event_type.clone(),
                webhook_endpoint: endpoint.id.clone(),
                url: endpoint.url.clone(),
                target: endpoint.target.clone(),
                attempt: u32::try_from(delivery.attempts.len() + 1).unwrap_or(u32::MAX),
                attempted_at: now,
                payload: payload.into(),
                secret: endpoint.secret.clone(),
            });
            if let Some(delivery) = self.webhooks.deliveries.get_mut(&serial) {
                delivery.state = WebhookDeliveryState::InFlight;
                delivery.next_attempt_at = None;
            }
        }
        outgoing
    }

    /// Whether any delivery `wanted` is being attempted.
    pub fn deliveries_in_flight(&self, wanted: Due<'_>) -> bool {
        let in_flight = |delivery: &WebhookDelivery| {
            delivery.state == WebhookDeliveryState::InFlight && wanted.wants(delivery)
        };
        match wanted {
            Due::All => self.webhooks.deliveries.values().any(in_flight),
            Due::FirstAttemptsOf(events) => events.iter().any(|event| {
                self.webhooks
                    .of_event(event)
                    .iter()
                    .filter_map(|serial| self.webhooks.deliveries.get(serial))
                    .any(in_flight)
            }),
        }
    }

    /// Records what came of an attempt and schedules the next one if it failed.
    pub fn complete_delivery(
        &mut self,
        sent: &OutgoingDelivery,
        result: AttemptResult,
    ) -> WebhookAttempt {
        let delivered = result
            .status_code
            .is_some_and(|status| (200..300).contains(&status));
        let endpoint_exists = self.webhooks.endpoints.contains_key(&sent.webhook_endpoint);
        let mut attempt = WebhookAttempt {
            delivery: sent.delivery.clone(),
            event: sent.event.clone(),
            event_type: sent.event_type.clone(),
            webhook_endpoint: sent.webhook_endpoint.clone(),
            url: sent.url.clone(),
            attempt: sent.attempt,
            attempted_at: sent.attempted_at,
            status_code: result.status_code,
            error: result.error,
            response_body: result.response_body,
            outcome: WebhookDeliveryState::Delivered,
            next_attempt_at: None,
        };
        let Some(delivery) = self
            .webhooks
            .deliveries
            .get_mut(&sent.serial)
            .filter(|delivery| delivery.id == sent.delivery)
        else {
            if !delivered {
                attempt.outcome = WebhookDeliveryState::GaveUp;
            }
            return attempt;
        };
        if !delivered {
            let first = delivery
                .attempts
                .first()
                .map_or(sent.attempted_at, |first| first.attempted_at);
            let next = sent.attempted_at + retry_delay(sent.attempt);
            if endpoint_exists && next - first <= GIVE_UP_AFTER {
                attempt.outcome = WebhookDeliveryState::Pending;
                attempt.next_attempt_at = Some(next);
            } else {
                attempt.outcome = WebhookDeliveryState::GaveUp;
            }
        }
        delivery.state = attempt.outcome;
        delivery.next_attempt_at = attempt.next_attempt_at;
        delivery.attempts.push(attempt.clone());
        let event = delivery.event.clone();
        match attempt.next_attempt_at {
            Some(next) => {
                self.webhooks.due.insert((next, sent.serial));
            }
            None => {
                self.webhooks
                    .keep_settled(sent.serial, &sent.webhook_endpoint);
                if delivered
                    && let Some(event) = self.event_for_delivery_mut(&event)
                    && let Some(owed) = event
                        .owed
                        .iter_mut()
                        .find(|owed| owed.endpoint == sent.webhook_endpoint)
                {
                    owed.delivered = true;
                }
                self.delivery_settled(&event);
            }
        }
        self.refresh_pending_webhooks(&event);
        attempt
    }

    /// One of the event's deliveries is settled (or dropped): an event held only for its
    /// deliveries is let go with the last.
    fn delivery_settled(&mut self, event: &str) {
        let Some(settled) = self.event_for_delivery_mut(event) else {
            return;
        };
        settled.unsettled = settled.unsettled.saturating_sub(1);
        if settled.unsettled == 0 {
            self.held_events.remove(event);
        }
    }

    /// `pending_webhooks`: the existing endpoints the event was queued for that have not
    /// answered any delivery of it with a 2xx.
    fn refresh_pending_webhooks(&mut self, event: &str) {
        let endpoints = &self.webhooks.endpoints;
        let Some(refreshed) = self
            .events
            .get_mut(event)
            .or_else(|| self.held_events.get_mut(event))
        else {
            return;
        };
        let pending = refreshed
            .owed
            .iter()
            .filter(|owed| !owed.delivered && endpoints.contains_key(&owed.endpoint))
            .count();
        refreshed.pending_webhooks = u32::try_from(pending).unwrap_or(u32::MAX);
        let (seq, pending) = (refreshed.seq, refreshed.pending_webhooks);
        if self.events.contains_key(event) {
            if pending > 0 {
                self.indexes.undelivered_events.insert(seq);
            } else {
                self.indexes.undelivered_events.remove(&seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_doubles_from_a_minute_up_to_twelve_hours() {
        assert_eq!(retry_delay(1), TimeDelta::minutes(1));
        assert_eq!(retry_delay(2), TimeDelta::minutes(2));
        assert_eq!(retry_delay(10), TimeDelta::minutes(512));
        assert_eq!(retry_delay(11), TimeDelta::hours(12));
        assert_eq!(retry_delay(u32::MAX), TimeDelta::hours(12));
    }

    #[test]
    fn signatures_follow_stripes_scheme() {
        // Computed with Python's hmac module over "1700000000.{\"id\":\"evt_1\"}".
        assert_eq!(
            signature_header("whsec_test", 1_700_000_000, br#"{"id":"evt_1"}"#),
            "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
    }

    #[test]
    fn urls_events_and_versions_are_checked() {
        assert!(check_url("https://example.com/hook").is_ok());
        assert!(check_url("http://127.0.0.1:8080/webhooks/stripe").is_ok());
        assert_eq!(
            check_url("ftp://example.com").unwrap_err().param.as_deref(),
            Some("url")
        );
        assert!(check_url("not a url").is_err());
        assert!(check_enabled_events(&["*".into()]).is_ok());
        let error =
            check_enabled_events(&["charge.succeeded".into(), "invoice.paid".into()]).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("enabled_events[1]"));
        assert!(check_enabled_events(&[]).is_err());
        assert!(check_api_version("2025-03-31.basil").is_ok());
        assert!(check_api_version("2024-06-20").is_ok());
        assert!(check_api_version("yesterday").is_err());
        assert!(check_api_version("2024-06-20.").is_err());
    }

    #[test]
    fn a_delivery_is_the_event_as_listed_at_the_endpoints_version() {
        use super::super::compact::CompactJson;
        use super::super::events::{Event, EventData, EventRequest};
        let intent = json!({ "id": "pi_1", "object": "payment_intent", "amount": 999 });
        let event = Event {
            id: "evt_1".into(),
            object: "event",
            api_version: super::super::api::DEFAULT_API_VERSION.into(),
            created: 1_700_000_000,
            data: EventData {
                object: CompactJson::new(&intent).into(),
                previous_attributes: None,
            },
            livemode: false,
            pending_webhooks: 1,
            request: EventRequest::default(),
            event_type: "payment_intent.succeeded",
            seq: 1,
            owed: Vec::new(),
            unsettled: 1,
        };
        let listed = serde_json::to_value(&event).unwrap();

        let unpinned = delivery_payload(&event, None);
        assert!(
            unpinned.contains("\n  \"id\": \"evt_1\""),
            "pretty-printed: {unpinned}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&unpinned).unwrap(),
            listed
        );

        let pinned: serde_json::Value =
            serde_json::from_str(&delivery_payload(&event, Some("2024-06-20"))).unwrap();
        assert_eq!(pinned["api_version"], "2024-06-20");
        assert_eq!(pinned["data"]["object"], intent);
        assert_eq!(pinned["id"], listed["id"]);
    }
}
