//! The parts of Stripe's objects boxoffice reads. Unknown fields are ignored, so newer API
//! versions keep working.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::core::model::CardSummary;

/// Decodes a Stripe body. The body is checked as UTF-8 once, in one pass, so that the
/// decoder takes each string as it is: reading from bytes, serde_json would check every key
/// and string again on its own, and a PaymentIntent has some fifty keys.
pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        // Decoded as bytes only to have serde_json say where the body goes wrong.
        Err(_) => serde_json::from_slice(body),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentIntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
}

/// Why the last attempt failed (`last_payment_error`, or the `error` of a 402).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentError {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub charge: Option<String>,
}

/// A field that Stripe returns as an id or, when expanded, as the object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: HasId> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }

    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(object) => Some(object),
        }
    }
}

pub trait HasId {
    fn id(&self) -> &str;
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentIntentStatus,
    pub client_secret: Option<String>,
    pub customer: Option<String>,
    pub payment_method: Option<Expandable<PaymentMethod>>,
    pub latest_charge: Option<Expandable<Charge>>,
    pub last_payment_error: Option<PaymentError>,
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl PaymentIntent {
    /// The id of the intent's latest attempt (its charge), failed or not, when Stripe
    /// names one.
    pub fn charge_id(&self) -> Option<String> {
        self.latest_charge
            .as_ref()
            .map(|charge| charge.id().to_owned())
            .or_else(|| {
                self.last_payment_error
                    .as_ref()
                    .and_then(|error| error.charge.clone())
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupIntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    Canceled,
    Succeeded,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SetupIntent {
    pub id: String,
    pub status: SetupIntentStatus,
    pub client_secret: Option<String>,
    pub customer: Option<String>,
    pub payment_method: Option<Expandable<PaymentMethod>>,
    pub last_setup_error: Option<PaymentError>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub card: Option<Card>,
    pub customer: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
    pub country: Option<String>,
}

impl From<&Card> for CardSummary {
    fn from(card: &Card) -> Self {
        CardSummary {
            brand: card.brand.clone(),
            last4: card.last4.clone(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            country: card.country.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_refunded: i64,
    pub currency: String,
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub refunded: bool,
    pub status: String,
    pub failure_message: Option<String>,
    pub refunds: Option<RefundList>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundList {
    pub data: Vec<Refund>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: Option<String>,
}

impl HasId for PaymentMethod {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Charge {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A webhook event: its id, its type and the object it names.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub object: EventObject,
}

#[derive(Debug, Clone)]
pub enum EventObject {
    PaymentIntent(ObjectReference),
    SetupIntent(ObjectReference),
    Charge(ObjectReference),
    /// A type boxoffice does not act on; acknowledged and ignored.
    Other,
}

/// What boxoffice reads of an event's object: which one it is, and its metadata (a
/// renewal's intent says there which subscription and period it pays for). The rest is read
/// again from Stripe, so an old or reordered event never rolls state back; decoding only
/// this reads the body once and keeps no more of it than these strings.
#[derive(Debug, Clone)]
pub struct ObjectReference {
    pub id: String,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: RawEventData,
}

#[derive(Deserialize)]
struct RawEventData {
    object: RawObject,
}

/// Some objects have no id (a `balance.available` event's balance, say).
#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl Event {
    /// Reads a webhook body; an error says why it is not a Stripe event.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: RawEvent = decode(body).map_err(|error| format!("not a Stripe event: {error}"))?;
        let RawObject { id, metadata } = raw.data.object;
        let reference = || match id {
            Some(id) => Ok(ObjectReference { id, metadata }),
            None => Err(format!("event {} names an object without an id", raw.id)),
        };
        let object = match raw.event_type.split_once('.').map(|(kind, _)| kind) {
            Some("payment_intent") => EventObject::PaymentIntent(reference()?),
            Some("setup_intent") => EventObject::SetupIntent(reference()?),
            Some("charge") => EventObject::Charge(reference()?),
            _ => EventObject::Other,
        };
        Ok(Event {
            id: raw.id,
            event_type: raw.event_type,
            object,
        })
    }
}

/// Stripe's error body: `{"error": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub param: Option<String>,
    pub payment_intent: Option<PaymentIntent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_decodes_with_its_non_ascii_text_and_bytes_that_are_not_utf8_are_refused() {
        let body = r#"{"id":"pi_1","amount":999,"currency":"nok","status":"succeeded",
            "description":"Månedspass \u00e9 Zoë","metadata":{"navn":"Åse"}}"#;
        let intent: PaymentIntent = decode(body.as_bytes()).unwrap();
        assert_eq!(intent.description.as_deref(), Some("Månedspass é Zoë"));
        assert_eq!(intent.metadata["navn"], "Åse");
        let error = decode::<Customer>(b"{\"id\":\"cus_\xff\"}").unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
        assert!(Event::parse(b"{\"id\":\"evt_\xc3\"}").is_err());
    }

    #[test]
    fn an_event_names_its_object_and_the_metadata_it_carries() {
        let body = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded",
            "created":1700000000,"data":{"object":{"id":"pi_1","object":"payment_intent",
            "amount":999,"status":"succeeded","latest_charge":{"id":"ch_1","amount":999},
            "metadata":{"boxoffice_subscription_id":"sub_1","boxoffice_period":"3"}}}}"#;
        let event = Event::parse(body).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.event_type, "payment_intent.succeeded");
        let EventObject::PaymentIntent(intent) = event.object else {
            panic!("not a payment intent: {:?}", event.object);
        };
        assert_eq!(intent.id, "pi_1");
        assert_eq!(intent.metadata["boxoffice_period"], "3");
    }

    #[test]
    fn an_object_without_an_id_is_refused_only_where_boxoffice_acts_on_it() {
        let balance = br#"{"id":"evt_2","type":"balance.available",
            "data":{"object":{"object":"balance","available":[]}}}"#;
        assert!(matches!(
            Event::parse(balance).unwrap().object,
            EventObject::Other
        ));
        let charge = br#"{"id":"evt_3","type":"charge.refunded",
            "data":{"object":{"object":"charge"}}}"#;
        assert_eq!(
            Event::parse(charge).unwrap_err(),
            "event evt_3 names an object without an id"
        );
        assert!(
            Event::parse(b"id=evt_4")
                .unwrap_err()
                .starts_with("not a Stripe event")
        );
    }
}
