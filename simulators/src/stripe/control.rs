//! The Stripe simulator's control surface: the customer's and the card issuer's side, and
//! the webhook machinery's. Tests and the simulator-mode control page use it to confirm an
//! intent as the customer would in the browser (completing 3D Secure), to make a customer's
//! next charge fail, to read the account's state, to send due webhooks now instead of
//! waiting for the delivery loop, to inspect deliveries, and to resend an event.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::{Value, json};

use super::StripeSimulator;
use super::api::{customer_confirms, fail_next_charge};
use super::delivery::WebhookDeliveryReport;
use super::error::ApiError;
use super::webhooks::{WebhookDelivery, WebhookDeliveryState};

/// The most deliveries one listing shows.
const MAX_DELIVERIES_LISTED: u32 = 1000;

#[derive(Tags)]
enum StripeControlTag {
    /// The Stripe simulator's control surface: play the customer and the card issuer.
    StripeControl,
}

/// How the customer confirms.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "StripeCustomerConfirmation")]
pub struct StripeCustomerConfirmation {
    /// A payment method id or test token (`pm_card_visa`) to pay with; default the one
    /// already on the intent.
    pub payment_method: Option<String>,
}

/// How the next charge fails.
#[derive(Object, Debug, Clone)]
#[oai(rename = "StripeChargeFailure")]
pub struct StripeChargeFailure {
    /// Stripe's `decline_code`, e.g. `insufficient_funds`, `generic_decline`,
    /// `expired_card`, `authentication_required`; default `generic_decline`.
    pub decline_code: Option<String>,
}

#[derive(ApiResponse)]
pub enum StripeControlResponse {
    /// The object after the operation.
    #[oai(status = 200)]
    Ok(Json<Value>),
    /// Stripe's error object (a state that does not allow it).
    #[oai(status = 400)]
    BadRequest(Json<Value>),
    /// Stripe's `card_error`: the card was declined.
    #[oai(status = 402)]
    Declined(Json<Value>),
    /// No such object.
    #[oai(status = 404)]
    NotFound(Json<Value>),
}

impl From<Result<Value, ApiError>> for StripeControlResponse {
    fn from(result: Result<Value, ApiError>) -> Self {
        match result {
            Ok(value) => Self::Ok(Json(value)),
            Err(error) => match error.status {
                402 => Self::Declined(Json(error.body())),
                404 => Self::NotFound(Json(error.body())),
                _ => Self::BadRequest(Json(error.body())),
            },
        }
    }
}

/// Deliveries, newest first.
#[derive(Object, Debug, Clone)]
#[oai(rename = "StripeWebhookDeliveries")]
pub struct StripeWebhookDeliveries {
    pub deliveries: Vec<WebhookDelivery>,
}

#[derive(ApiResponse)]
pub enum StripeResendResponse {
    /// The deliveries queued, due now.
    #[oai(status = 200)]
    Ok(Json<StripeWebhookDeliveries>),
    /// Stripe's error object: the endpoint is not subscribed to the event's type, or does
    /// not exist.
    #[oai(status = 400)]
    BadRequest(Json<Value>),
    /// No such event.
    #[oai(status = 404)]
    NotFound(Json<Value>),
}

/// The control surface, mounted by the host in its control OpenAPI service.
pub struct SimStripeControlApi {
    simulator: StripeSimulator,
}

impl SimStripeControlApi {
    pub(crate) fn new(simulator: StripeSimulator) -> Self {
        Self { simulator }
    }
}

#[OpenApi(
    prefix_path = "/control/stripe",
    tag = "StripeControlTag::StripeControl"
)]
impl SimStripeControlApi {
    /// Confirm an intent as the customer
    ///
    /// What the customer does in the browser: confirms a payment intent (`pi_…`) or setup
    /// intent (`seti_…`) with a card, completing 3D Secure when the card asks for it (so an
    /// intent in `requires_action` succeeds). Declines are answered as Stripe answers them.
    /// The events this causes are sent to the webhook endpoints (first attempt) before the
    /// answer.
    #[oai(
        path = "/intents/:intent/confirm",
        method = "post",
        operation_id = "confirmStripeIntentAsCustomer"
    )]
    async fn confirm_as_customer(
        &self,
        intent: Path<String>,
        body: Json<StripeCustomerConfirmation>,
    ) -> StripeControlResponse {
        let now = self.simulator.now();
        let (result, caused) = {
            let mut shared = self.simulator.lock();
            let events_before = shared.account.event_mark();
            let result = customer_confirms(&mut shared, &intent, body.0.payment_method, now);
            (result, shared.account.event_ids_since(events_before))
        };
        self.simulator.deliver_caused(&caused).await;
        result.into()
    }

    /// Make a customer's next charge fail
    ///
    /// The next payment intent confirmed for this customer is declined with the given
    /// `decline_code`, whatever the card (once).
    #[oai(
        path = "/customers/:customer/fail_next_charge",
        method = "post",
        operation_id = "failNextStripeCharge"
    )]
    async fn fail_next_charge(
        &self,
        customer: Path<String>,
        body: Json<StripeChargeFailure>,
    ) -> StripeControlResponse {
        let decline_code = body
            .0
            .decline_code
            .unwrap_or_else(|| "generic_decline".to_owned());
        let mut shared = self.simulator.lock();
        fail_next_charge(&mut shared, &customer, &decline_code).into()
    }

    /// The account's state
    ///
    /// Every customer, payment method, payment intent, setup intent, charge and refund, in
    /// Stripe's format, oldest first, and the number of events recorded.
    #[oai(path = "/state", method = "get", operation_id = "getStripeState")]
    async fn state(&self) -> Json<Value> {
        let shared = self.simulator.lock();
        let account = &shared.account;
        fn sorted<T: serde::Serialize + super::state::Listed>(
            items: impl Iterator<Item = T>,
        ) -> Vec<Value> {
            let mut items: Vec<T> = items.collect();
            items.sort_by_key(|item| item.seq());
            items
                .iter()
                .map(|item| serde_json::to_value(item).unwrap_or(Value::Null))
                .collect()
        }
        Json(json!({
            "customers": sorted(account.customers.values()),
            "payment_methods": sorted(account.payment_methods.values()),
            "payment_intents": sorted(account.payment_intents.values()),
            "setup_intents": sorted(account.setup_intents.values()),
            "charges": sorted(account.charges.values()),
            "refunds": sorted(account.refunds.values()),
            "events": account.events.len(),
        }))
    }

    /// Send the webhooks due now
    ///
    /// Attempts every delivery due at the simulator's current time (new events, and
    /// retries whose time has come) and answers with the attempts made, without waiting for
    /// the delivery loop.
    #[oai(
        path = "/webhooks/deliver",
        method = "post",
        operation_id = "deliverStripeWebhooks"
    )]
    async fn deliver(&self) -> Json<WebhookDeliveryReport> {
        Json(self.simulator.deliver_due().await)
    }

    /// Webhook deliveries
    ///
    /// Newest first, each with every attempt (time, status code or error, the start of the
    /// answer, next attempt). `state` keeps one kind (`pending` for what is still owed),
    /// `limit` (default 100, at most 1000) how many.
    #[oai(
        path = "/webhooks/deliveries",
        method = "get",
        operation_id = "listStripeWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        state: Query<Option<WebhookDeliveryState>>,
        limit: Query<Option<u32>>,
    ) -> Json<StripeWebhookDeliveries> {
        let limit = limit.0.unwrap_or(100).clamp(1, MAX_DELIVERIES_LISTED);
        let shared = self.simulator.lock();
        let deliveries = shared
            .account
            .webhooks
            .newest_first()
            .filter(|delivery| state.0.is_none_or(|state| delivery.state == state))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Json(StripeWebhookDeliveries { deliveries })
    }

    /// Resend an event
    ///
    /// Queues the event again, due now, for every enabled webhook endpoint subscribed to
    /// its type, or only for `webhook_endpoint` (like `stripe events resend`). The
    /// deliveries go out with the next round (`/webhooks/deliver` or the delivery loop).
    #[oai(
        path = "/events/:event/resend",
        method = "post",
        operation_id = "resendStripeEvent"
    )]
    async fn resend(
        &self,
        event: Path<String>,
        webhook_endpoint: Query<Option<String>>,
    ) -> StripeResendResponse {
        let now = self.simulator.now();
        let resent =
            self.simulator
                .lock()
                .account
                .resend_event(&event, webhook_endpoint.0.as_deref(), now);
        match resent {
            Ok(deliveries) => {
                StripeResendResponse::Ok(Json(StripeWebhookDeliveries { deliveries }))
            }
            Err(error) if error.status == 404 => StripeResendResponse::NotFound(Json(error.body())),
            Err(error) => StripeResendResponse::BadRequest(Json(error.body())),
        }
    }
}
