//! The account's objects and the rules that move them, without HTTP: customers, payment
//! methods, payment intents, setup intents, charges, refunds, and the event log.
//!
//! Objects serialize exactly as Stripe's API returns them (field names, `object`,
//! `livemode: false`, `created` in unix seconds from the host's clock).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use serde_json::{Value, json};

use super::cards::{Behavior, Decline, TestCard, card_for_number, token_number};
use super::compact::{CompactJson, Recorded};
use super::details::{
    AmountDetails, BillingDetails, CardChecks, CardNetworks, ChargeCard, FeatureStatus,
    FraudDetails, NetworkToken, Outcome, Overcapture, PaymentMethodDetails, PaymentMethodOptions,
    RefundDestination, RefundList, SetupMethodOptions, ThreeDSecureUsage,
};
use super::error::{ApiError, ErrorType};
pub use super::events::Event;
use super::events::Snapshot;
use super::table::{Index, Table};
use super::webhooks::Webhooks;

pub type Metadata = BTreeMap<String, String>;

/// A new Stripe-looking id: the prefix and 24 letters and digits, of which the first ten
/// count up, as Stripe's own ids begin with their time of creation. Ids made later sort
/// after earlier ones, so a client that indexes them (the server's transactions, by
/// charge) adds each at the end of its index instead of on a random page of it.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 25);
    id.push_str(prefix);
    id.push('_');
    push_base62(&mut id, next_id_sequence(), 10);
    id.extend(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(14)
            .map(char::from),
    );
    id
}

/// Counts up from the host's clock in microseconds when the process made its first id,
/// so that ids stay in order across restarts of the simulator too.
fn next_id_sequence() -> u64 {
    static SEQUENCE: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    SEQUENCE
        .get_or_init(|| {
            let micros = Utc::now().timestamp_micros();
            std::sync::atomic::AtomicU64::new(u64::try_from(micros).unwrap_or_default())
        })
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `value` in `width` base-62 digits, in ASCII order (`0-9A-Za-z`) so that text order is
/// number order.
fn push_base62(out: &mut String, mut value: u64, width: usize) {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let start = out.len();
    for _ in 0..width {
        out.insert(start, char::from(DIGITS[(value % 62) as usize]));
        value /= 62;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceSettings {
    pub custom_fields: Option<Value>,
    pub default_payment_method: Option<String>,
    pub footer: Option<String>,
    pub rendering_options: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: String,
    pub object: &'static str,
    pub address: Option<Value>,
    pub balance: i64,
    pub created: i64,
    pub currency: Option<String>,
    pub default_source: Option<String>,
    pub delinquent: bool,
    pub description: Option<String>,
    pub discount: Option<Value>,
    pub email: Option<String>,
    pub invoice_prefix: String,
    pub invoice_settings: InvoiceSettings,
    pub livemode: bool,
    pub metadata: Metadata,
    pub name: Option<String>,
    pub next_invoice_sequence: i64,
    pub phone: Option<String>,
    pub preferred_locales: Vec<String>,
    pub shipping: Option<Value>,
    pub tax_exempt: &'static str,
    pub test_clock: Option<String>,
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardDetails {
    pub brand: &'static str,
    pub checks: CardChecks,
    pub country: &'static str,
    pub display_brand: &'static str,
    pub exp_month: i64,
    pub exp_year: i64,
    pub fingerprint: String,
    pub funding: &'static str,
    pub generated_from: Option<Value>,
    pub last4: String,
    pub networks: CardNetworks,
    pub regulated_status: Option<String>,
    pub three_d_secure_usage: ThreeDSecureUsage,
    pub wallet: Option<Value>,
    #[serde(skip)]
    pub behavior: Behavior,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethod {
    pub id: String,
    pub object: &'static str,
    pub allow_redisplay: &'static str,
    pub billing_details: BillingDetails,
    pub card: CardDetails,
    pub created: i64,
    pub customer: Option<String>,
    pub customer_account: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    #[serde(rename = "type")]
    pub method_type: &'static str,
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Succeeded,
    Canceled,
}

impl IntentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_details: AmountDetails,
    pub amount_received: i64,
    pub application: Option<String>,
    pub application_fee_amount: Option<i64>,
    pub automatic_payment_methods: Option<Value>,
    pub canceled_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub capture_method: &'static str,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub customer_account: Option<String>,
    pub description: Option<String>,
    pub excluded_payment_method_types: Option<Vec<String>>,
    pub last_payment_error: Option<Value>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub managed_payments: Option<Value>,
    pub next_action: Option<Value>,
    pub on_behalf_of: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_configuration_details: Option<Value>,
    pub payment_method_options: PaymentMethodOptions,
    pub payment_method_types: Vec<String>,
    pub processing: Option<Value>,
    pub receipt_email: Option<String>,
    pub review: Option<String>,
    pub setup_future_usage: Option<String>,
    pub shipping: Option<Value>,
    pub source: Option<String>,
    pub statement_descriptor: Option<String>,
    pub statement_descriptor_suffix: Option<String>,
    pub status: IntentStatus,
    pub transfer_data: Option<Value>,
    pub transfer_group: Option<String>,
    #[serde(skip)]
    pub seq: u64,
    /// The last confirmation was off-session.
    #[serde(skip)]
    pub off_session: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupIntent {
    pub id: String,
    pub object: &'static str,
    pub application: Option<String>,
    pub automatic_payment_methods: Option<Value>,
    pub cancellation_reason: Option<String>,
    pub client_secret: String,
    pub created: i64,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub excluded_payment_method_types: Option<Vec<String>>,
    pub flow_directions: Option<Value>,
    pub last_setup_error: Option<Value>,
    pub latest_attempt: Option<String>,
    pub livemode: bool,
    pub mandate: Option<String>,
    pub metadata: Metadata,
    pub next_action: Option<Value>,
    pub on_behalf_of: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_configuration_details: Option<Value>,
    pub payment_method_options: SetupMethodOptions,
    pub payment_method_types: Vec<String>,
    pub single_use_mandate: Option<String>,
    pub status: IntentStatus,
    pub usage: String,
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Charge {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub application: Option<String>,
    pub application_fee: Option<String>,
    pub application_fee_amount: Option<i64>,
    pub calculated_statement_descriptor: Option<String>,
    pub failure_balance_transaction: Option<String>,
    pub fraud_details: FraudDetails,
    pub on_behalf_of: Option<String>,
    pub receipt_email: Option<String>,
    pub receipt_number: Option<String>,
    pub receipt_url: Option<String>,
    pub review: Option<String>,
    pub shipping: Option<Value>,
    pub source: Option<Value>,
    pub source_transfer: Option<String>,
    pub statement_descriptor: Option<String>,
    pub statement_descriptor_suffix: Option<String>,
    pub transfer_data: Option<Value>,
    pub transfer_group: Option<String>,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub balance_transaction: Option<String>,
    pub billing_details: BillingDetails,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub disputed: bool,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub livemode: bool,
    pub metadata: Metadata,
    pub outcome: Outcome,
    pub paid: bool,
    pub payment_intent: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_details: PaymentMethodDetails,
    pub refunded: bool,
    /// The charge's refunds, newest first, as Stripe's list object.
    pub refunds: RefundList,
    pub status: &'static str,
    #[serde(skip)]
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub balance_transaction: Option<String>,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub customer_account: Option<String>,
    pub destination_details: RefundDestination,
    pub metadata: Metadata,
    pub payment_intent: Option<String>,
    pub payment_method: Option<String>,
    pub reason: Option<String>,
    pub receipt_number: Option<String>,
    pub source_transfer_reversal: Option<String>,
    pub status: &'static str,
    pub transfer_reversal: Option<String>,
    #[serde(skip)]
    pub seq: u64,
}

/// What a list is ordered by (newest first) and paged by.
pub trait Listed {
    fn id(&self) -> &str;
    fn seq(&self) -> u64;
}

macro_rules! listed {
    ($($ty:ty),*) => {$(
        impl Listed for $ty {
            fn id(&self) -> &str { &self.id }
            fn seq(&self) -> u64 { self.seq }
        }
    )*};
}
listed!(
    Customer,
    PaymentMethod,
    PaymentIntent,
    SetupIntent,
    Charge,
    Refund,
    Event
);

/// Fields of a new customer or a customer update; `Some("")` unsets.
#[derive(Debug, Default)]
pub struct CustomerFields {
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub metadata: Option<Metadata>,
    pub default_payment_method: Option<String>,
}

/// A new card payment method: a number or a `pm_card_*` token.
#[derive(Debug)]
pub struct NewCard {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub cvc: Option<String>,
}

#[derive(Debug, Default)]
pub struct NewPaymentIntent {
    pub amount: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub setup_future_usage: Option<String>,
    pub receipt_email: Option<String>,
    pub payment_method_types: Vec<String>,
}

#[derive(Debug, Default)]
pub struct PaymentIntentUpdate {
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Metadata>,
    pub setup_future_usage: Option<String>,
    pub receipt_email: Option<String>,
}

#[derive(Debug, Default)]
pub struct Confirmation {
    pub payment_method: Option<String>,
    pub off_session: bool,
    pub setup_future_usage: Option<String>,
    /// The customer completed 3D Secure (the control surface playing the customer).
    pub authenticated: bool,
}

#[derive(Debug, Default)]
pub struct NewSetupIntent {
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub usage: Option<String>,
    pub payment_method_types: Vec<String>,
}

#[derive(Debug, Default)]
pub struct NewRefund {
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: Metadata,
}

/// Everything in the simulated account.
#[derive(Default)]
pub struct Account {
    seq: u64,
    pub customers: Table<Customer>,
    pub payment_methods: Table<PaymentMethod>,
    pub payment_intents: Table<PaymentIntent>,
    pub setup_intents: Table<SetupIntent>,
    pub charges: Table<Charge>,
    pub refunds: Table<Refund>,
    /// The event log of the last 30 days on the host's clock ([`super::events::EVENT_RETENTION`]).
    pub events: Table<Event>,
    /// Events past retention that webhook deliveries still need.
    pub held_events: super::events::HeldEvents,
    /// What lists filter by.
    pub indexes: Indexes,
    pub webhooks: Webhooks,
    /// Declines the control surface queued for a customer's next charge.
    pub forced_declines: HashMap<String, Decline>,
}

/// The objects (by `seq`) with a given value of the fields lists filter by, kept up to
/// date as the objects change, so that a filtered list reads only what it shows.
#[derive(Default)]
pub struct Indexes {
    pub customers_by_email: Index,
    /// Attached payment methods only.
    pub payment_methods_by_customer: Index,
    pub payment_intents_by_customer: Index,
    pub setup_intents_by_customer: Index,
    pub setup_intents_by_payment_method: Index,
    pub charges_by_customer: Index,
    pub charges_by_payment_intent: Index,
    pub refunds_by_charge: Index,
    pub refunds_by_payment_intent: Index,
    pub events_by_type: Index,
    /// Events some webhook endpoint is still owed (`pending_webhooks > 0`).
    pub undelivered_events: BTreeSet<u64>,
}

/// The outcome of trying to charge or set up a card.
enum Attempt {
    Succeeded,
    RequiresAction,
    Declined(Decline),
}

fn unix(now: DateTime<Utc>) -> i64 {
    now.timestamp()
}

/// `length` random decimal digits, the first not zero.
fn random_digits(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length)
        .map(|index| {
            let low = u32::from(index == 0);
            char::from_digit(rng.random_range(low..10), 10).unwrap_or('0')
        })
        .collect()
}

fn empty_to_none(value: String) -> Option<String> {
    Some(value).filter(|value| !value.is_empty())
}

impl Account {
    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The `seq` of the newest object or event.
    pub(super) fn current_seq(&self) -> u64 {
        self.seq
    }

    /// Any object by its id, as JSON (for `expand[]`).
    pub fn object_json(&self, id: &str) -> Option<Value> {
        let value = match id.split_once('_').map(|(prefix, _)| prefix)? {
            "cus" => serde_json::to_value(self.customers.get(id)?),
            "pm" => serde_json::to_value(self.payment_methods.get(id)?),
            "pi" => serde_json::to_value(self.payment_intents.get(id)?),
            "seti" => serde_json::to_value(self.setup_intents.get(id)?),
            "ch" => serde_json::to_value(self.charges.get(id)?),
            "re" => serde_json::to_value(self.refunds.get(id)?),
            _ => return None,
        };
        value.ok()
    }

    // ---------------------------------------------------------------- customers

    pub fn customer(&self, id: &str) -> Result<&Customer, ApiError> {
        self.customers
            .get(id)
            .ok_or_else(|| ApiError::no_such("customer", id, "id"))
    }

    fn customer_exists(&self, id: &str, param: &str) -> Result<(), ApiError> {
        if self.customers.contains_key(id) {
            Ok(())
        } else {
            Err(ApiError::no_such("customer", id, param).referenced())
        }
    }

    /// A new customer, with `payment_method` attached to it (and made its default when
    /// `fields` name it so).
    pub fn create_customer(
        &mut self,
        fields: CustomerFields,
        payment_method: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Customer, ApiError> {
        if let Some(pm) = payment_method {
            self.check_attach(pm, None)?;
        }
        if let Some(default) = fields
            .default_payment_method
            .as_deref()
            .filter(|pm| !pm.is_empty())
            && Some(default) != payment_method
        {
            self.payment_method(default, "invoice_settings[default_payment_method]")
                .map_err(ApiError::referenced)?;
            return Err(not_the_customers_payment_method(default));
        }
        let seq = self.next_seq();
        let prefix: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .filter(u8::is_ascii_alphabetic)
            .take(8)
            .map(|byte| char::from(byte).to_ascii_uppercase())
            .collect();
        let customer = Customer {
            id: new_id("cus"),
            object: "customer",
            address: None,
            balance: 0,
            created: unix(now),
            currency: None,
            default_source: None,
            delinquent: false,
            description: None,
            discount: None,
            email: None,
            invoice_prefix: prefix,
            invoice_settings: InvoiceSettings {
                custom_fields: None,
                default_payment_method: None,
                footer: None,
                rendering_options: None,
            },
            livemode: false,
            metadata: Metadata::new(),
            name: None,
            next_invoice_sequence: 1,
            phone: None,
            preferred_locales: Vec::new(),
            shipping: None,
            tax_exempt: "none",
            test_clock: None,
            seq,
        };
        let id = customer.id.clone();
        self.customers.insert(customer);
        if let Some(pm) = payment_method {
            self.set_payment_method_customer(pm, Some(&id));
        }
        let customer = match self.apply_customer_fields(&id, fields) {
            Ok(customer) => customer,
            Err(error) => {
                self.indexes.customers_by_email.set(seq, None);
                self.customers.remove(&id);
                if let Some(pm) = payment_method {
                    self.set_payment_method_customer(pm, None);
                }
                return Err(error);
            }
        };
        self.record_event("customer.created", &customer, now);
        if let Some(pm) = payment_method {
            let method = json!(self.payment_methods.get(pm));
            self.record_event("payment_method.attached", &method, now);
        }
        Ok(customer)
    }

    pub fn update_customer(
        &mut self,
        id: &str,
        fields: CustomerFields,
        now: DateTime<Utc>,
    ) -> Result<Customer, ApiError> {
        let before = json!(self.customer(id)?);
        let customer = self.apply_customer_fields(id, fields)?;
        let after = json!(customer);
        if before != after {
            self.record_change("customer.updated", &before, after, now);
        }
        Ok(customer)
    }

    fn apply_customer_fields(
        &mut self,
        id: &str,
        fields: CustomerFields,
    ) -> Result<Customer, ApiError> {
        self.customer(id)?;
        if let Some(pm) = fields
            .default_payment_method
            .as_deref()
            .filter(|pm| !pm.is_empty())
        {
            let method = self
                .payment_method(pm, "invoice_settings[default_payment_method]")
                .map_err(ApiError::referenced)?;
            if method.customer.as_deref() != Some(id) {
                return Err(not_the_customers_payment_method(pm));
            }
        }
        let customer = self
            .customers
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
        if let Some(email) = fields.email {
            customer.email = empty_to_none(email);
        }
        if let Some(name) = fields.name {
            customer.name = empty_to_none(name);
        }
        if let Some(description) = fields.description {
            customer.description = empty_to_none(description);
        }
        if let Some(phone) = fields.phone {
            customer.phone = empty_to_none(phone);
        }
        if let Some(metadata) = fields.metadata {
            merge_metadata(&mut customer.metadata, metadata);
        }
        if let Some(pm) = fields.default_payment_method {
            customer.invoice_settings.default_payment_method = empty_to_none(pm);
        }
        let customer = customer.clone();
        self.indexes
            .customers_by_email
            .set(customer.seq, customer.email.as_deref());
        Ok(customer)
    }

    // ---------------------------------------------------------------- payment methods

    pub fn payment_method(&self, id: &str, param: &str) -> Result<&PaymentMethod, ApiError> {
        self.payment_methods
            .get(id)
            .ok_or_else(|| ApiError::no_such("PaymentMethod", id, param))
    }

    /// [`Account::payment_method`] as stored, to keep or hand on without copying it.
    pub fn shared_payment_method(
        &self,
        id: &str,
        param: &str,
    ) -> Result<Arc<PaymentMethod>, ApiError> {
        self.payment_methods
            .shared(id)
            .ok_or_else(|| ApiError::no_such("PaymentMethod", id, param))
    }

    /// A payment method by id; a `pm_card_*` token makes a fresh one, as Stripe does.
    pub fn resolve_payment_method(
        &mut self,
        id: &str,
        param: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        if let Some(number) = token_number(id) {
            let card = NewCard {
                number: number.to_owned(),
                exp_month: i64::from(now.month()),
                exp_year: i64::from(now.year()) + 1,
                cvc: None,
            };
            return self
                .create_payment_method(card, None, Metadata::new(), now)
                .map(|pm| pm.id);
        }
        self.payment_method(id, param).map(|pm| pm.id.clone())
    }

    pub fn create_payment_method(
        &mut self,
        card: NewCard,
        billing_details: Option<BillingDetails>,
        metadata: Metadata,
        now: DateTime<Utc>,
    ) -> Result<PaymentMethod, ApiError> {
        let test_card: TestCard = card_for_number(&card.number).ok_or_else(|| {
            card_error("incorrect_number", None, "Your card number is incorrect.")
                .with_param("card[number]")
        })?;
        if !(1..=12).contains(&card.exp_month) {
            return Err(card_error(
                "invalid_expiry_month",
                None,
                "Your card's expiration month is invalid.",
            )
            .with_param("card[exp_month]"));
        }
        let this_year = i64::from(now.year());
        if card.exp_year < this_year
            || card.exp_year > this_year + 50
            || (card.exp_year == this_year && card.exp_month < i64::from(now.month()))
        {
            return Err(card_error(
                "invalid_expiry_year",
                None,
                "Your card's expiration year is invalid.",
            )
            .with_param("card[exp_year]"));
        }
        let cvc_check = match card.cvc.as_deref() {
            None => None,
            Some(cvc)
                if (3..=4).contains(&cvc.len()) && cvc.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some("unchecked")
            }
            Some(_) => {
                return Err(card_error(
                    "invalid_cvc",
                    None,
                    "Your card's security code is invalid.",
                )
                .with_param("card[cvc]"));
            }
        };
        let seq = self.next_seq();
        let method = PaymentMethod {
            id: new_id("pm"),
            object: "payment_method",
            allow_redisplay: "unspecified",
            billing_details: billing_details.unwrap_or_default(),
            card: CardDetails {
                brand: test_card.brand,
                checks: CardChecks {
                    cvc_check,
                    ..CardChecks::default()
                },
                country: test_card.country,
                display_brand: test_card.brand,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
                fingerprint: test_card.fingerprint,
                funding: test_card.funding,
                generated_from: None,
                last4: test_card.last4,
                networks: CardNetworks {
                    available: vec![test_card.brand],
                    preferred: None,
                },
                // Stripe's test cards are credit cards, never a regulated debit card.
                regulated_status: Some("unregulated".to_owned()),
                three_d_secure_usage: ThreeDSecureUsage { supported: true },
                wallet: None,
                behavior: test_card.behavior,
            },
            created: unix(now),
            customer: None,
            customer_account: None,
            livemode: false,
            metadata,
            method_type: "card",
            seq,
        };
        self.payment_methods.insert(method.clone());
        Ok(method)
    }

    pub fn update_payment_method_metadata(
        &mut self,
        id: &str,
        metadata: Option<Metadata>,
    ) -> Result<PaymentMethod, ApiError> {
        let method = self
            .payment_methods
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("PaymentMethod", id, "payment_method"))?;
        if let Some(metadata) = metadata {
            merge_metadata(&mut method.metadata, metadata);
        }
        Ok(method.clone())
    }

    /// Whether a payment method may be attached to `customer` (`None`: a customer being
    /// created): `Ok(true)` when it already is. Cards that decline are refused, as Stripe
    /// checks a card when it is attached.
    fn check_attach(&self, pm: &str, customer: Option<&str>) -> Result<bool, ApiError> {
        let method = self.payment_method(pm, "payment_method")?;
        match method.customer.as_deref() {
            Some(owner) if Some(owner) == customer => return Ok(true),
            Some(_) => {
                return Err(ApiError::invalid(
                    "The payment method you provided has already been attached to a customer.",
                )
                .with_code("payment_method_unexpected_state"));
            }
            None => {}
        }
        if let Behavior::Declines(decline) = &method.card.behavior {
            return Err(decline_error(decline));
        }
        Ok(false)
    }

    /// Attaches a payment method to a customer.
    pub fn attach(
        &mut self,
        pm: &str,
        customer: &str,
        now: DateTime<Utc>,
    ) -> Result<PaymentMethod, ApiError> {
        self.customer_exists(customer, "customer")?;
        if self.check_attach(pm, Some(customer))? {
            return self.payment_method(pm, "payment_method").cloned();
        }
        self.save_payment_method(pm, customer, now);
        self.payment_method(pm, "payment_method").cloned()
    }

    /// Sets (or clears) the customer a payment method is attached to.
    fn set_payment_method_customer(&mut self, pm: &str, customer: Option<&str>) {
        let Some(method) = self.payment_methods.get_mut(pm) else {
            return;
        };
        method.customer = customer.map(str::to_owned);
        self.indexes
            .payment_methods_by_customer
            .set(method.seq, customer);
    }

    /// Attaches a payment method to a customer after a payment or setup that saves it
    /// (`payment_method.attached` unless it already was).
    fn save_payment_method(&mut self, pm: &str, customer: &str, now: DateTime<Utc>) {
        let Some(method) = self.payment_methods.get(pm) else {
            return;
        };
        if method.customer.as_deref() == Some(customer) {
            return;
        }
        self.set_payment_method_customer(pm, Some(customer));
        let method = json!(self.payment_methods.get(pm));
        self.record_event("payment_method.attached", &method, now);
    }

    pub fn detach(&mut self, pm: &str, now: DateTime<Utc>) -> Result<PaymentMethod, ApiError> {
        let method = self
            .payment_methods
            .get_mut(pm)
            .ok_or_else(|| ApiError::no_such("PaymentMethod", pm, "payment_method"))?;
        let Some(owner) = method.customer.take() else {
            return Err(ApiError::invalid(
                "The payment method you provided is not attached to a customer so detachment is impossible.",
            )
            .with_code("payment_method_unexpected_state"));
        };
        let detached = method.clone();
        self.indexes
            .payment_methods_by_customer
            .set(detached.seq, None);
        if let Some(customer) = self.customers.get_mut(&owner)
            && customer.invoice_settings.default_payment_method.as_deref() == Some(pm)
        {
            customer.invoice_settings.default_payment_method = None;
        }
        let mut before = json!(detached);
        before["customer"] = json!(owner);
        self.record_change("payment_method.detached", &before, json!(detached), now);
        Ok(detached)
    }

    // ---------------------------------------------------------------- payment intents

    /// Checks the customer a new intent names and resolves its payment method (a `pm_…` id
    /// or a test token), as payment and setup intents both do on create.
    fn intent_references(
        &mut self,
        customer: Option<&str>,
        payment_method: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, ApiError> {
        if let Some(customer) = customer {
            self.customer_exists(customer, "customer")?;
        }
        payment_method
            .map(|pm| {
                self.resolve_payment_method(pm, "payment_method", now)
                    .map_err(ApiError::referenced)
            })
            .transpose()
    }

    pub fn payment_intent(&self, id: &str) -> Result<&PaymentIntent, ApiError> {
        self.payment_intents
            .get(id)
            .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))
    }

    /// Creates a payment intent and answers its id.
    pub fn create_payment_intent(
        &mut self,
        new: NewPaymentIntent,
        now: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        let payment_method =
            self.intent_references(new.customer.as_deref(), new.payment_method.as_deref(), now)?;
        let seq = self.next_seq();
        let id = new_id("pi");
        let intent = PaymentIntent {
            client_secret: format!("{id}_secret_{}", random_string(25)),
            id,
            object: "payment_intent",
            amount: new.amount,
            amount_capturable: 0,
            amount_details: AmountDetails::default(),
            amount_received: 0,
            application: None,
            application_fee_amount: None,
            automatic_payment_methods: None,
            canceled_at: None,
            cancellation_reason: None,
            capture_method: "automatic",
            confirmation_method: "automatic",
            created: unix(now),
            currency: new.currency,
            customer: new.customer,
            customer_account: None,
            description: new.description,
            excluded_payment_method_types: None,
            last_payment_error: None,
            latest_charge: None,
            livemode: false,
            metadata: new.metadata,
            managed_payments: None,
            next_action: None,
            on_behalf_of: None,
            status: if payment_method.is_some() {
                IntentStatus::RequiresConfirmation
            } else {
                IntentStatus::RequiresPaymentMethod
            },
            payment_method,
            payment_method_configuration_details: None,
            payment_method_options: PaymentMethodOptions::default(),
            payment_method_types: if new.payment_method_types.is_empty() {
                vec!["card".to_owned()]
            } else {
                new.payment_method_types
            },
            processing: None,
            receipt_email: new.receipt_email,
            review: None,
            setup_future_usage: new.setup_future_usage,
            shipping: None,
            source: None,
            statement_descriptor: None,
            statement_descriptor_suffix: None,
            transfer_data: None,
            transfer_group: None,
            seq,
            off_session: false,
        };
        self.indexes
            .payment_intents_by_customer
            .set(intent.seq, intent.customer.as_deref());
        let id = intent.id.clone();
        let created = Snapshot::PaymentIntent(self.payment_intents.insert_shared(intent));
        self.record_snapshot("payment_intent.created", created, now);
        Ok(id)
    }

    pub fn update_payment_intent(
        &mut self,
        id: &str,
        update: PaymentIntentUpdate,
        now: DateTime<Utc>,
    ) -> Result<PaymentIntent, ApiError> {
        let status = self.payment_intent(id)?.status;
        let updatable = matches!(
            status,
            IntentStatus::RequiresPaymentMethod
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresAction
        );
        if !updatable
            && (update.amount.is_some()
                || update.currency.is_some()
                || update.payment_method.is_some())
        {
            return Err(ApiError::unexpected_state(
                "payment_intent_unexpected_state",
                format!(
                    "This PaymentIntent's amount could not be updated because it has a status of \
                     {}. You may only update the amount of a PaymentIntent with one of the \
                     following statuses: requires_payment_method, requires_confirmation, \
                     requires_action.",
                    status.as_str()
                ),
            ));
        }
        if let Some(customer) = update.customer.as_deref().filter(|c| !c.is_empty()) {
            self.customer_exists(customer, "customer")?;
        }
        let payment_method = match update.payment_method.as_deref() {
            Some(pm) if !pm.is_empty() => Some(
                self.resolve_payment_method(pm, "payment_method", now)
                    .map_err(ApiError::referenced)?,
            ),
            _ => None,
        };
        let intent = self
            .payment_intents
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
        if let Some(amount) = update.amount {
            intent.amount = amount;
        }
        if let Some(currency) = update.currency {
            intent.currency = currency;
        }
        if let Some(customer) = update.customer {
            intent.customer = empty_to_none(customer);
        }
        if let Some(description) = update.description {
            intent.description = empty_to_none(description);
        }
        if let Some(receipt_email) = update.receipt_email {
            intent.receipt_email = empty_to_none(receipt_email);
        }
        if let Some(usage) = update.setup_future_usage {
            intent.setup_future_usage = empty_to_none(usage);
        }
        if let Some(metadata) = update.metadata {
            merge_metadata(&mut intent.metadata, metadata);
        }
        if let Some(pm) = payment_method {
            intent.payment_method = Some(pm);
            intent.status = IntentStatus::RequiresConfirmation;
            intent.next_action = None;
        }
        let intent = intent.clone();
        self.indexes
            .payment_intents_by_customer
            .set(intent.seq, intent.customer.as_deref());
        Ok(intent)
    }

    /// Confirms a payment intent: charges its card, or asks for 3D Secure, or records the
    /// decline (402 with the intent in the error, the intent back to
    /// `requires_payment_method`).
    pub fn confirm_payment_intent(
        &mut self,
        id: &str,
        confirmation: Confirmation,
        now: DateTime<Utc>,
    ) -> Result<Recorded<Arc<PaymentIntent>>, ApiError> {
        let intent = self.payment_intent(id)?;
        match intent.status {
            IntentStatus::RequiresPaymentMethod
            | IntentStatus::RequiresConfirmation
            | IntentStatus::RequiresAction => {}
            IntentStatus::Succeeded => {
                return Err(ApiError::unexpected_state(
                    "payment_intent_unexpected_state",
                    "You cannot confirm this PaymentIntent because it has already succeeded \
                     after being previously confirmed.",
                )
                .with_extra("payment_intent", json!(intent)));
            }
            status => {
                return Err(ApiError::unexpected_state(
                    "payment_intent_unexpected_state",
                    format!(
                        "You cannot confirm this PaymentIntent because it has a status of {}. \
                         Only a PaymentIntent with one of the following statuses may be \
                         confirmed: requires_confirmation, requires_action, \
                         requires_payment_method.",
                        status.as_str()
                    ),
                )
                .with_extra("payment_intent", json!(intent)));
            }
        }
        let customer = intent.customer.clone();
        let pm = match confirmation.payment_method.as_deref() {
            Some(pm) => Some(
                self.resolve_payment_method(pm, "payment_method", now)
                    .map_err(ApiError::referenced)?,
            ),
            None => intent.payment_method.clone(),
        };
        let Some(pm) = pm else {
            let intent = self.payment_intent(id)?;
            return Err(ApiError::unexpected_state(
                "payment_intent_unexpected_state",
                "You cannot confirm this PaymentIntent because it's missing a payment method. \
                 You can either update the PaymentIntent with a payment method and then confirm \
                 it again, or confirm it again directly with a payment method.",
            )
            .with_extra("payment_intent", json!(intent)));
        };
        let method = self.shared_payment_method(&pm, "payment_method")?;
        if let (Some(owner), Some(customer)) = (&method.customer, &customer)
            && owner != customer
        {
            return Err(ApiError::invalid(
                "The provided PaymentMethod belongs to a different Customer. Please provide a \
                 PaymentMethod that belongs to the Customer on this PaymentIntent.",
            )
            .with_param("payment_method"));
        }
        if method.customer.is_some() && customer.is_none() {
            return Err(ApiError::invalid(
                "The provided PaymentMethod was previously used with a PaymentIntent without \
                 Customer attachment, shared with a connected account without Customer \
                 attachment, or was detached from a Customer. It may not be used again. To use \
                 a PaymentMethod multiple times, you must attach it to a Customer first.",
            )
            .with_param("payment_method"));
        }
        let intent = self
            .payment_intents
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
        intent.payment_method = Some(pm.clone());
        intent.off_session = confirmation.off_session;
        if let Some(usage) = confirmation.setup_future_usage {
            intent.setup_future_usage = empty_to_none(usage);
        }
        let save_card = intent.setup_future_usage.is_some() || confirmation.off_session;
        let (amount, currency, description) = (
            intent.amount,
            intent.currency.clone(),
            intent.description.clone(),
        );

        let attempt = self.attempt(
            &method,
            customer.as_deref(),
            confirmation.off_session,
            confirmation.authenticated,
            true,
        );
        match attempt {
            Attempt::RequiresAction => {
                let intent = self
                    .payment_intents
                    .update(id, |intent| {
                        intent.status = IntentStatus::RequiresAction;
                        intent.next_action = Some(three_d_secure_action());
                    })
                    .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
                Ok(self.record_answered("payment_intent.requires_action", intent, now))
            }
            Attempt::Succeeded => {
                let charge = self.new_charge(
                    id,
                    &method,
                    customer.as_deref(),
                    amount,
                    &currency,
                    description,
                    None,
                    now,
                );
                if save_card && let Some(customer) = &customer {
                    self.save_payment_method(&pm, customer, now);
                }
                let intent = self
                    .payment_intents
                    .update(id, |intent| {
                        intent.status = IntentStatus::Succeeded;
                        intent.amount_received = amount;
                        intent.latest_charge = Some(charge);
                        intent.next_action = None;
                        intent.last_payment_error = None;
                    })
                    .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
                Ok(self.record_answered("payment_intent.succeeded", intent, now))
            }
            Attempt::Declined(decline) => {
                let charge = self.new_charge(
                    id,
                    &method,
                    customer.as_deref(),
                    amount,
                    &currency,
                    description,
                    Some(&decline),
                    now,
                );
                let method_json = json!(self.payment_methods.get(&pm));
                let mut error = decline_error(&decline)
                    .with_extra("charge", json!(charge))
                    .with_extra("payment_method", method_json.clone());
                // Stripe's `last_payment_error` is the error object, the failed charge's id
                // included.
                let last_error = error.body()["error"].clone();
                let intent = self
                    .payment_intents
                    .get_mut(id)
                    .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.payment_method = None;
                intent.next_action = None;
                intent.latest_charge = Some(charge);
                intent.last_payment_error = Some(last_error);
                let intent = intent.clone();
                self.record_event("payment_intent.payment_failed", &intent, now);
                error = error.with_extra("payment_intent", json!(intent));
                Err(error)
            }
        }
    }

    pub fn cancel_payment_intent(
        &mut self,
        id: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<PaymentIntent, ApiError> {
        let intent = self
            .payment_intents
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
        if matches!(
            intent.status,
            IntentStatus::Succeeded | IntentStatus::Canceled
        ) {
            return Err(ApiError::unexpected_state(
                "payment_intent_unexpected_state",
                format!(
                    "You cannot cancel this PaymentIntent because it has a status of {}. Only a \
                     PaymentIntent with one of the following statuses may be canceled: \
                     requires_payment_method, requires_capture, requires_confirmation, \
                     requires_action, processing.",
                    intent.status.as_str()
                ),
            )
            .with_extra("payment_intent", json!(intent)));
        }
        intent.status = IntentStatus::Canceled;
        intent.canceled_at = Some(unix(now));
        intent.cancellation_reason = reason;
        intent.next_action = None;
        let intent = intent.clone();
        self.record_event("payment_intent.canceled", &intent, now);
        Ok(intent)
    }

    /// The customer failed 3D Secure on an intent in `requires_action`: it goes back to
    /// `requires_payment_method` with Stripe's authentication failure as its last error
    /// (`payment_intent.payment_failed` or `setup_intent.setup_failed`).
    pub fn fail_authentication(&mut self, id: &str, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let not_waiting = |noun: &str, code: &str, status: IntentStatus| {
            ApiError::unexpected_state(
                code,
                format!(
                    "This {noun} has a status of {}. Only a {noun} with a status of \
                     requires_action can fail authentication.",
                    status.as_str()
                ),
            )
        };
        if id.starts_with("seti_") {
            let intent = self.setup_intent(id)?;
            if intent.status != IntentStatus::RequiresAction {
                return Err(not_waiting(
                    "SetupIntent",
                    "setup_intent_unexpected_state",
                    intent.status,
                ));
            }
            let method = self.payment_method_json(intent.payment_method.as_deref());
            let error = ApiError::invalid(
                "The latest attempt to set up the payment method has failed authentication. \
                 Please provide a new payment method.",
            )
            .with_code("setup_intent_authentication_failure")
            .with_extra("payment_method", method);
            let intent = self
                .setup_intents
                .get_mut(id)
                .ok_or_else(|| ApiError::no_such("setupintent", id, "intent"))?;
            intent.status = IntentStatus::RequiresPaymentMethod;
            intent.payment_method = None;
            intent.next_action = None;
            intent.last_setup_error = Some(error.body()["error"].clone());
            let intent = json!(intent);
            self.reindex_setup_intent(id);
            self.record_event("setup_intent.setup_failed", &intent, now);
            Ok(intent)
        } else {
            let intent = self.payment_intent(id)?;
            if intent.status != IntentStatus::RequiresAction {
                return Err(not_waiting(
                    "PaymentIntent",
                    "payment_intent_unexpected_state",
                    intent.status,
                ));
            }
            let method = self.payment_method_json(intent.payment_method.as_deref());
            let error = ApiError::invalid(
                "The provided PaymentMethod has failed authentication. You can provide \
                 payment_method_data or a new PaymentMethod to attempt to fulfill this \
                 PaymentIntent again.",
            )
            .with_code("payment_intent_authentication_failure")
            .with_extra("payment_method", method);
            let intent = self
                .payment_intents
                .get_mut(id)
                .ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))?;
            intent.status = IntentStatus::RequiresPaymentMethod;
            intent.payment_method = None;
            intent.next_action = None;
            intent.last_payment_error = Some(error.body()["error"].clone());
            let intent = json!(intent);
            self.record_event("payment_intent.payment_failed", &intent, now);
            Ok(intent)
        }
    }

    fn payment_method_json(&self, id: Option<&str>) -> Value {
        id.and_then(|id| self.payment_methods.get(id))
            .map_or(Value::Null, |method| json!(method))
    }

    fn attempt(
        &mut self,
        method: &PaymentMethod,
        customer: Option<&str>,
        off_session: bool,
        authenticated: bool,
        charge: bool,
    ) -> Attempt {
        if method.card.behavior == Behavior::RequiresAuthentication && !authenticated {
            return if off_session {
                Attempt::Declined(Decline::authentication_required())
            } else {
                Attempt::RequiresAction
            };
        }
        if charge
            && let Some(customer) = customer
            && let Some(decline) = self.forced_declines.remove(customer)
        {
            return Attempt::Declined(decline);
        }
        match &method.card.behavior {
            Behavior::Declines(decline) => Attempt::Declined(decline.clone()),
            Behavior::DeclinesCharges if charge => Attempt::Declined(Decline::generic()),
            _ => Attempt::Succeeded,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_charge(
        &mut self,
        intent: &str,
        method: &PaymentMethod,
        customer: Option<&str>,
        amount: i64,
        currency: &str,
        description: Option<String>,
        decline: Option<&Decline>,
        now: DateTime<Utc>,
    ) -> String {
        let seq = self.next_seq();
        let succeeded = decline.is_none();
        let outcome = match decline {
            None => Outcome {
                advice_code: None,
                network_advice_code: None,
                network_decline_code: None,
                network_status: "approved_by_network",
                reason: None,
                risk_level: "normal",
                seller_message: "Payment complete.",
                outcome_type: "authorized",
            },
            Some(decline) => Outcome {
                advice_code: decline.advice_code,
                network_advice_code: None,
                network_decline_code: decline.network_decline_code,
                network_status: "declined_by_network",
                reason: Some(decline.decline_code.clone()),
                risk_level: "normal",
                seller_message: "The bank did not return any further details with this decline.",
                outcome_type: "issuer_declined",
            },
        };
        let charge_id = new_id("ch");
        let card = &method.card;
        let charge = Charge {
            refunds: RefundList::of_charge(&charge_id),
            id: charge_id,
            object: "charge",
            amount,
            application: None,
            application_fee: None,
            application_fee_amount: None,
            calculated_statement_descriptor: Some("BOXOFFICE".to_owned()),
            failure_balance_transaction: None,
            fraud_details: FraudDetails::new(),
            on_behalf_of: None,
            receipt_email: None,
            receipt_number: None,
            receipt_url: None,
            review: None,
            shipping: None,
            source: None,
            source_transfer: None,
            statement_descriptor: None,
            statement_descriptor_suffix: None,
            transfer_data: None,
            transfer_group: None,
            amount_captured: if succeeded { amount } else { 0 },
            amount_refunded: 0,
            balance_transaction: succeeded.then(|| new_id("txn")),
            billing_details: method.billing_details.clone(),
            captured: succeeded,
            created: unix(now),
            currency: currency.to_owned(),
            customer: customer.map(str::to_owned),
            description,
            disputed: false,
            failure_code: decline.map(|d| d.code.clone()),
            failure_message: decline.map(|d| d.message.clone()),
            livemode: false,
            metadata: Metadata::new(),
            outcome,
            paid: succeeded,
            payment_intent: Some(intent.to_owned()),
            payment_method: Some(method.id.clone()),
            // As Stripe's test mode reports a card payment sent to the network: an
            // authorization code and a network transaction id whether or not the issuer
            // approved it, the amount authorized only when it did, and none of the
            // authorization features (extended, incremental, multicapture, overcapture).
            payment_method_details: PaymentMethodDetails {
                card: ChargeCard {
                    amount_authorized: succeeded.then_some(amount),
                    authorization_code: random_digits(6),
                    brand: card.brand,
                    checks: card.checks.clone(),
                    country: card.country,
                    exp_month: card.exp_month,
                    exp_year: card.exp_year,
                    extended_authorization: FeatureStatus { status: "disabled" },
                    fingerprint: card.fingerprint.clone(),
                    funding: card.funding,
                    incremental_authorization: FeatureStatus {
                        status: "unavailable",
                    },
                    installments: None,
                    last4: card.last4.clone(),
                    mandate: None,
                    multicapture: FeatureStatus {
                        status: "unavailable",
                    },
                    network: card.brand,
                    network_token: NetworkToken { used: false },
                    network_transaction_id: random_digits(15),
                    overcapture: Overcapture {
                        maximum_amount_capturable: amount,
                        status: "unavailable",
                    },
                    regulated_status: card.regulated_status.clone(),
                    three_d_secure: None,
                    transaction_link_id: None,
                    wallet: None,
                },
                method_type: "card",
            },
            refunded: false,
            status: if succeeded { "succeeded" } else { "failed" },
            seq,
        };
        self.indexes
            .charges_by_customer
            .set(charge.seq, charge.customer.as_deref());
        self.indexes
            .charges_by_payment_intent
            .set(charge.seq, charge.payment_intent.as_deref());
        let id = charge.id.clone();
        let charge_snapshot = Snapshot::Charge(self.charges.insert_shared(charge));
        let event_type = if succeeded {
            "charge.succeeded"
        } else {
            "charge.failed"
        };
        self.record_snapshot(event_type, charge_snapshot, now);
        id
    }

    // ---------------------------------------------------------------- setup intents

    pub fn setup_intent(&self, id: &str) -> Result<&SetupIntent, ApiError> {
        self.setup_intents
            .get(id)
            .ok_or_else(|| ApiError::no_such("setupintent", id, "intent"))
    }

    /// Files a setup intent under its customer and payment method.
    fn reindex_setup_intent(&mut self, id: &str) {
        let Some(intent) = self.setup_intents.get(id) else {
            return;
        };
        let (seq, customer, pm) = (
            intent.seq,
            intent.customer.clone(),
            intent.payment_method.clone(),
        );
        self.indexes
            .setup_intents_by_customer
            .set(seq, customer.as_deref());
        self.indexes
            .setup_intents_by_payment_method
            .set(seq, pm.as_deref());
    }

    pub fn create_setup_intent(
        &mut self,
        new: NewSetupIntent,
        now: DateTime<Utc>,
    ) -> Result<SetupIntent, ApiError> {
        let payment_method =
            self.intent_references(new.customer.as_deref(), new.payment_method.as_deref(), now)?;
        let seq = self.next_seq();
        let id = new_id("seti");
        let intent = SetupIntent {
            client_secret: format!("{id}_secret_{}", random_string(25)),
            id,
            object: "setup_intent",
            application: None,
            automatic_payment_methods: None,
            cancellation_reason: None,
            created: unix(now),
            customer: new.customer,
            description: new.description,
            excluded_payment_method_types: None,
            flow_directions: None,
            last_setup_error: None,
            latest_attempt: None,
            livemode: false,
            mandate: None,
            metadata: new.metadata,
            next_action: None,
            on_behalf_of: None,
            status: if payment_method.is_some() {
                IntentStatus::RequiresConfirmation
            } else {
                IntentStatus::RequiresPaymentMethod
            },
            payment_method,
            payment_method_configuration_details: None,
            payment_method_options: SetupMethodOptions::default(),
            payment_method_types: if new.payment_method_types.is_empty() {
                vec!["card".to_owned()]
            } else {
                new.payment_method_types
            },
            single_use_mandate: None,
            usage: new.usage.unwrap_or_else(|| "off_session".to_owned()),
            seq,
        };
        self.setup_intents.insert(intent.clone());
        self.reindex_setup_intent(&intent.id);
        self.record_event("setup_intent.created", &intent, now);
        Ok(intent)
    }

    pub fn confirm_setup_intent(
        &mut self,
        id: &str,
        confirmation: Confirmation,
        now: DateTime<Utc>,
    ) -> Result<SetupIntent, ApiError> {
        let intent = self.setup_intent(id)?;
        if !matches!(
            intent.status,
            IntentStatus::RequiresPaymentMethod
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresAction
        ) {
            return Err(ApiError::unexpected_state(
                "setup_intent_unexpected_state",
                format!(
                    "You cannot confirm this SetupIntent because it has a status of {}. Only a \
                     SetupIntent with one of the following statuses may be confirmed: \
                     requires_confirmation, requires_action, requires_payment_method.",
                    intent.status.as_str()
                ),
            )
            .with_extra("setup_intent", json!(intent)));
        }
        let customer = intent.customer.clone();
        let pm = match confirmation.payment_method.as_deref() {
            Some(pm) => Some(
                self.resolve_payment_method(pm, "payment_method", now)
                    .map_err(ApiError::referenced)?,
            ),
            None => intent.payment_method.clone(),
        };
        let Some(pm) = pm else {
            let intent = self.setup_intent(id)?;
            return Err(ApiError::unexpected_state(
                "setup_intent_unexpected_state",
                "You cannot confirm this SetupIntent because it's missing a payment method. You \
                 can either update the SetupIntent with a payment method and then confirm it \
                 again, or confirm it again directly with a payment method.",
            )
            .with_extra("setup_intent", json!(intent)));
        };
        let method = self.payment_method(&pm, "payment_method")?.clone();
        if let (Some(owner), Some(customer)) = (&method.customer, &customer)
            && owner != customer
        {
            return Err(ApiError::invalid(
                "The provided PaymentMethod belongs to a different Customer. Please provide a \
                 PaymentMethod that belongs to the Customer on this SetupIntent.",
            )
            .with_param("payment_method"));
        }
        let attempt = self.attempt(&method, None, false, confirmation.authenticated, false);
        let intent = self
            .setup_intents
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("setupintent", id, "intent"))?;
        intent.payment_method = Some(pm.clone());
        intent.latest_attempt = Some(new_id("setatt"));
        self.reindex_setup_intent(id);
        let Some(intent) = self.setup_intents.get_mut(id) else {
            return Err(ApiError::no_such("setupintent", id, "intent"));
        };
        match attempt {
            Attempt::RequiresAction => {
                intent.status = IntentStatus::RequiresAction;
                intent.next_action = Some(three_d_secure_action());
                let intent = intent.clone();
                self.record_event("setup_intent.requires_action", &intent, now);
                Ok(intent)
            }
            Attempt::Succeeded => {
                intent.status = IntentStatus::Succeeded;
                intent.next_action = None;
                intent.last_setup_error = None;
                let intent = intent.clone();
                if let Some(customer) = &customer {
                    self.save_payment_method(&pm, customer, now);
                }
                self.record_event("setup_intent.succeeded", &intent, now);
                Ok(intent)
            }
            Attempt::Declined(decline) => {
                let method_json = json!(self.payment_methods.get(&pm));
                let error = decline_error(&decline).with_extra("payment_method", method_json);
                let intent = self
                    .setup_intents
                    .get_mut(id)
                    .ok_or_else(|| ApiError::no_such("setupintent", id, "intent"))?;
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.payment_method = None;
                intent.next_action = None;
                intent.last_setup_error = Some(error.body()["error"].clone());
                let intent = intent.clone();
                self.reindex_setup_intent(id);
                self.record_event("setup_intent.setup_failed", &intent, now);
                Err(error.with_extra("setup_intent", json!(intent)))
            }
        }
    }

    pub fn cancel_setup_intent(
        &mut self,
        id: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<SetupIntent, ApiError> {
        let intent = self
            .setup_intents
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("setupintent", id, "intent"))?;
        if matches!(
            intent.status,
            IntentStatus::Succeeded | IntentStatus::Canceled
        ) {
            return Err(ApiError::unexpected_state(
                "setup_intent_unexpected_state",
                format!(
                    "You cannot cancel this SetupIntent because it has a status of {}. Only a \
                     SetupIntent with one of the following statuses may be canceled: \
                     requires_payment_method, requires_confirmation, requires_action.",
                    intent.status.as_str()
                ),
            ));
        }
        intent.status = IntentStatus::Canceled;
        intent.cancellation_reason = reason;
        intent.next_action = None;
        let intent = intent.clone();
        self.record_event("setup_intent.canceled", &intent, now);
        Ok(intent)
    }

    // ---------------------------------------------------------------- refunds

    pub fn charge(&self, id: &str) -> Result<&Charge, ApiError> {
        self.charges
            .get(id)
            .ok_or_else(|| ApiError::no_such("charge", id, "charge"))
    }

    pub fn refund(&self, id: &str) -> Result<&Refund, ApiError> {
        self.refunds
            .get(id)
            .ok_or_else(|| ApiError::no_such("refund", id, "refund"))
    }

    pub fn create_refund(
        &mut self,
        new: NewRefund,
        now: DateTime<Utc>,
    ) -> Result<Refund, ApiError> {
        let charge_id = match (&new.charge, &new.payment_intent) {
            (Some(charge), _) => self
                .charge(charge)
                .map_err(ApiError::referenced)?
                .id
                .clone(),
            (None, Some(intent)) => {
                let intent = self.payment_intents.get(intent).ok_or_else(|| {
                    ApiError::no_such("payment_intent", intent, "payment_intent").referenced()
                })?;
                match (&intent.latest_charge, intent.status) {
                    (Some(charge), IntentStatus::Succeeded) => charge.clone(),
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "This PaymentIntent ({}) does not have a successful charge to refund.",
                            intent.id
                        ))
                        .with_param("payment_intent"));
                    }
                }
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "One of the following params should be provided for this request: \
                     payment_intent or charge.",
                ));
            }
        };
        let charge = self.charge(&charge_id)?;
        if charge.status != "succeeded" {
            return Err(ApiError::invalid(format!(
                "Charge {charge_id} has no successful payment to refund."
            ))
            .with_param("charge"));
        }
        if charge.refunded {
            return Err(ApiError::invalid(format!(
                "Charge {charge_id} has already been refunded."
            ))
            .with_code("charge_already_refunded"));
        }
        let remaining = charge.amount_captured - charge.amount_refunded;
        let amount = new.amount.unwrap_or(remaining);
        if amount < 1 {
            return Err(
                ApiError::invalid("Refund amount must be a positive integer.").with_param("amount"),
            );
        }
        if amount > remaining {
            let message = if charge.amount_refunded == 0 {
                format!(
                    "Refund amount ({}) is greater than charge amount ({})",
                    money(amount, &charge.currency),
                    money(charge.amount_captured, &charge.currency)
                )
            } else {
                format!(
                    "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                    money(amount, &charge.currency),
                    money(remaining, &charge.currency)
                )
            };
            return Err(ApiError::invalid(message).with_param("amount"));
        }
        let seq = self.next_seq();
        let charge = self
            .charges
            .get_mut(&charge_id)
            .ok_or_else(|| ApiError::no_such("charge", &charge_id, "charge"))?;
        charge.amount_refunded += amount;
        charge.refunded = charge.amount_refunded == charge.amount_captured;
        let refund = Refund {
            id: new_id("re"),
            object: "refund",
            amount,
            balance_transaction: Some(new_id("txn")),
            charge: charge_id,
            created: unix(now),
            currency: charge.currency.clone(),
            customer: charge.customer.clone(),
            customer_account: None,
            destination_details: RefundDestination::card(),
            metadata: new.metadata,
            payment_intent: charge.payment_intent.clone(),
            payment_method: charge.payment_method.clone(),
            reason: new.reason,
            receipt_number: None,
            source_transfer_reversal: None,
            status: "succeeded",
            transfer_reversal: None,
            seq,
        };
        charge.refunds.data.insert(0, refund.clone());
        let charge_snapshot = CompactJson::new(&charge);
        self.indexes
            .refunds_by_charge
            .set(refund.seq, Some(&refund.charge));
        self.indexes
            .refunds_by_payment_intent
            .set(refund.seq, refund.payment_intent.as_deref());
        self.refunds.insert(refund.clone());
        self.record_snapshot("charge.refunded", charge_snapshot, now);
        self.record_event("refund.created", &refund, now);
        Ok(refund)
    }
}

/// A default payment method that is not attached to the customer.
fn not_the_customers_payment_method(pm: &str) -> ApiError {
    ApiError::invalid(format!(
        "No such PaymentMethod: '{pm}'; It's possible this PaymentMethod exists on one of your \
         connected accounts, in which case you should retry this request on that connected \
         account."
    ))
    .with_code("resource_missing")
    .with_param("invoice_settings[default_payment_method]")
}

/// Stripe merges metadata: a key set to `""` is removed; an empty hash clears all.
pub(super) fn merge_metadata(target: &mut Metadata, update: Metadata) {
    if update.is_empty() {
        target.clear();
        return;
    }
    for (key, value) in update {
        if value.is_empty() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

fn random_string(length: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

fn card_error(code: &str, decline_code: Option<&str>, message: &str) -> ApiError {
    let mut error = ApiError::new(402, ErrorType::Card, message).with_code(code);
    error.decline_code = decline_code.map(Into::into);
    error
}

/// A decline as a 402 `card_error`.
pub fn decline_error(decline: &Decline) -> ApiError {
    card_error(&decline.code, Some(&decline.decline_code), &decline.message)
}

/// What Stripe.js is asked to do for 3D Secure.
fn three_d_secure_action() -> Value {
    json!({
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "source": new_id("src"),
            "stripe_js": null
        }
    })
}

/// `$10.00`, `€5.50`, or `10.00 nok`.
pub(super) fn money(amount: i64, currency: &str) -> String {
    let major = format!("{}.{:02}", amount / 100, amount % 100);
    match currency {
        "usd" => format!("${major}"),
        "eur" => format!("€{major}"),
        "gbp" => format!("£{major}"),
        other => format!("{major} {other}"),
    }
}

/// Metadata limits as Stripe enforces them.
pub fn check_metadata(metadata: &Metadata) -> Result<(), ApiError> {
    if metadata.len() > 50 {
        return Err(ApiError::invalid(
            "You can specify up to 50 keys, with key names up to 40 characters long and values \
             up to 500 characters long.",
        )
        .with_param("metadata"));
    }
    for (key, value) in metadata {
        if key.chars().count() > 40 || value.chars().count() > 500 {
            return Err(ApiError::invalid(
                "You can specify up to 50 keys, with key names up to 40 characters long and \
                 values up to 500 characters long.",
            )
            .with_param(&format!("metadata[{key}]")));
        }
    }
    Ok(())
}

/// One page of a list, newest first: `{object: "list", data, has_more, url}`.
pub fn list_page<T: Listed + Serialize>(
    mut items: Vec<&T>,
    limit: i64,
    starting_after: Option<&str>,
    ending_before: Option<&str>,
    url: &str,
    param_noun: &str,
) -> Result<Value, ApiError> {
    items.sort_by_key(|item| std::cmp::Reverse(item.seq()));
    let limit = usize::try_from(limit).unwrap_or(0);
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|item| item.id() == id)
            .ok_or_else(|| ApiError::no_such(param_noun, id, param))
    };
    let (page, has_more): (Vec<&T>, bool) = if let Some(before) = ending_before {
        let end = position(before, "ending_before")?;
        let start = end.saturating_sub(limit);
        (items[start..end].to_vec(), start > 0)
    } else {
        let start = match starting_after {
            Some(after) => position(after, "starting_after")? + 1,
            None => 0,
        };
        let rest = &items[start..];
        (
            rest.iter().take(limit).copied().collect(),
            rest.len() > limit,
        )
    };
    Ok(json!({
        "object": "list",
        "data": page,
        "has_more": has_more,
        "url": url,
    }))
}

impl<T: Listed> Listed for &T {
    fn id(&self) -> &str {
        (*self).id()
    }
    fn seq(&self) -> u64 {
        (*self).seq()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn ids_look_like_stripes_and_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..1000).map(|_| new_id("ch")).collect();
        for id in &ids {
            let tail = id.strip_prefix("ch_").unwrap();
            assert_eq!(tail.len(), 24, "{id}");
            assert!(
                tail.bytes().all(|byte| byte.is_ascii_alphanumeric()),
                "{id}"
            );
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
    }

    #[test]
    fn metadata_merges_like_stripe() {
        let mut target = Metadata::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        merge_metadata(
            &mut target,
            Metadata::from([("a".into(), String::new()), ("c".into(), "3".into())]),
        );
        assert_eq!(
            target,
            Metadata::from([("b".into(), "2".into()), ("c".into(), "3".into())])
        );
        merge_metadata(&mut target, Metadata::new());
        assert!(target.is_empty());
    }

    #[test]
    fn lists_page_newest_first_both_ways() {
        let mut account = Account::default();
        let ids: Vec<String> = (0..5)
            .map(|_| {
                account
                    .create_customer(CustomerFields::default(), None, now())
                    .unwrap()
                    .id
            })
            .collect();
        let page = list_page(
            account.customers.values().collect(),
            2,
            None,
            None,
            "/v1/customers",
            "customer",
        )
        .unwrap();
        assert_eq!(page["data"][0]["id"], ids[4].as_str());
        assert_eq!(page["has_more"], true);
        let before = list_page(
            account.customers.values().collect(),
            2,
            None,
            Some(&ids[1]),
            "/v1/customers",
            "customer",
        )
        .unwrap();
        assert_eq!(before["data"][0]["id"], ids[3].as_str());
        assert_eq!(before["data"][1]["id"], ids[2].as_str());
        assert_eq!(before["has_more"], true);
        assert!(
            list_page(
                account.customers.values().collect(),
                2,
                Some("cus_x"),
                None,
                "/",
                "customer"
            )
            .is_err()
        );
    }

    #[test]
    fn a_refused_confirmation_leaves_no_charge_for_unknown_methods() {
        let mut account = Account::default();
        let intent = new_intent(&mut account, 100, "usd");
        let error = confirm_with(&mut account, &intent, "pm_missing").unwrap_err();
        assert_eq!(error.status, 400);
        assert!(account.charges.is_empty());
        assert_eq!(
            account.payment_intent(&intent).unwrap().status,
            IntentStatus::RequiresPaymentMethod
        );
    }

    /// A new intent of `amount` in `currency` with nothing else set: its id.
    fn new_intent(account: &mut Account, amount: i64, currency: &str) -> String {
        account
            .create_payment_intent(
                NewPaymentIntent {
                    amount,
                    currency: currency.into(),
                    ..NewPaymentIntent::default()
                },
                now(),
            )
            .unwrap()
    }

    /// Confirms the intent with the payment method `pm`, as a customer on the page would.
    fn confirm_with(
        account: &mut Account,
        intent: &str,
        pm: &str,
    ) -> Result<Recorded<Arc<PaymentIntent>>, ApiError> {
        account.confirm_payment_intent(
            intent,
            Confirmation {
                payment_method: Some(pm.into()),
                ..Confirmation::default()
            },
            now(),
        )
    }

    /// Events keep their objects as they were when they happened, however the objects
    /// change afterwards: the intent as created, the charge before its refund.
    #[test]
    fn an_events_object_is_the_object_as_it_was_then() {
        let mut account = Account::default();
        let intent = new_intent(&mut account, 1200, "gbp");
        confirm_with(&mut account, &intent, "pm_card_visa").unwrap();
        account
            .create_refund(
                NewRefund {
                    payment_intent: Some(intent.clone()),
                    ..NewRefund::default()
                },
                now(),
            )
            .unwrap();
        let object_of = |event_type: &str| {
            let event = account
                .events
                .values()
                .find(|event| event.event_type == event_type)
                .unwrap_or_else(|| panic!("no {event_type} event"));
            serde_json::to_value(&event.data.object).unwrap()
        };
        let created = object_of("payment_intent.created");
        assert_eq!(created["id"], intent.as_str());
        assert_eq!(created["status"], "requires_payment_method");
        assert_eq!(created["latest_charge"], Value::Null);
        let charged = object_of("charge.succeeded");
        assert_eq!(charged["refunded"], false);
        assert_eq!(charged["amount_refunded"], 0);
        let refunded = object_of("charge.refunded");
        assert_eq!(refunded["id"], charged["id"]);
        assert_eq!(refunded["refunded"], true);
        assert_eq!(
            account.payment_intent(&intent).unwrap().status,
            IntentStatus::Succeeded
        );
    }

    /// The charge of a confirmation with `pm`: its card details and outcome.
    fn charge_of(pm: &str) -> (Value, Value) {
        let mut account = Account::default();
        let intent = new_intent(&mut account, 2500, "usd");
        let _ = confirm_with(&mut account, &intent, pm);
        let charge = account.charges.values().next().expect("a charge");
        (
            json!(charge.payment_method_details)["card"].clone(),
            json!(charge.outcome),
        )
    }

    #[test]
    fn charges_report_the_card_authorization_as_stripe_test_mode_does() {
        let (card, outcome) = charge_of("pm_card_visa");
        assert_eq!(card["amount_authorized"], 2500);
        assert_eq!(card["authorization_code"].as_str().unwrap().len(), 6);
        assert_eq!(card["network_transaction_id"].as_str().unwrap().len(), 15);
        assert_eq!(
            card["extended_authorization"],
            json!({"status": "disabled"})
        );
        assert_eq!(
            card["incremental_authorization"],
            json!({"status": "unavailable"})
        );
        assert_eq!(card["multicapture"], json!({"status": "unavailable"}));
        assert_eq!(card["network_token"], json!({"used": false}));
        assert_eq!(
            card["overcapture"],
            json!({"maximum_amount_capturable": 2500, "status": "unavailable"})
        );
        assert_eq!(card["regulated_status"], "unregulated");
        assert!(card["transaction_link_id"].is_null() && card["installments"].is_null());
        assert!(outcome["advice_code"].is_null() && outcome["network_decline_code"].is_null());

        let (card, outcome) = charge_of("pm_card_chargeDeclined");
        assert!(card["amount_authorized"].is_null());
        assert_eq!(outcome["advice_code"], "try_again_later");
        assert_eq!(outcome["network_decline_code"], "01");
        assert!(outcome["network_advice_code"].is_null());
    }
}
