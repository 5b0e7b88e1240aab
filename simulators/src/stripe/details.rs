//! The nested parts of Stripe's objects, typed: a payment method's billing details and
//! card, a charge's outcome and card details and its refunds list, an intent's amount
//! details and card options, a refund's destination.
//!
//! Typed rather than kept as `serde_json::Value` trees because the account keeps every
//! charge and intent it ever made, as Stripe does: a tree costs about ten times the memory
//! of its struct, which at a million renewals is the difference between gigabytes and a few
//! hundred megabytes. Fields are declared in the order Stripe's API reference lists them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::state::Refund;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Address {
    pub city: Option<String>,
    pub country: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    pub state: Option<String>,
}

/// `billing_details` of a payment method and of the charges made with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BillingDetails {
    pub address: Address,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub tax_id: Option<String>,
}

/// `card.checks` of a payment method: `cvc_check` is `unchecked` when a CVC was given.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CardChecks {
    pub address_line1_check: Option<&'static str>,
    pub address_postal_code_check: Option<&'static str>,
    pub cvc_check: Option<&'static str>,
}

/// `card.networks` of a payment method.
#[derive(Debug, Clone, Serialize)]
pub struct CardNetworks {
    pub available: Vec<&'static str>,
    pub preferred: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreeDSecureUsage {
    pub supported: bool,
}

/// A charge's `outcome`: what the network and Stripe's risk checks said.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub advice_code: Option<&'static str>,
    pub network_advice_code: Option<String>,
    pub network_decline_code: Option<&'static str>,
    pub network_status: &'static str,
    pub reason: Option<String>,
    pub risk_level: &'static str,
    pub seller_message: &'static str,
    #[serde(rename = "type")]
    pub outcome_type: &'static str,
}

/// `{"status": …}`, as the authorization features of a card charge report themselves.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureStatus {
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkToken {
    pub used: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overcapture {
    pub maximum_amount_capturable: i64,
    pub status: &'static str,
}

/// `payment_method_details.card` of a charge.
#[derive(Debug, Clone, Serialize)]
pub struct ChargeCard {
    pub amount_authorized: Option<i64>,
    pub authorization_code: String,
    pub brand: &'static str,
    pub checks: CardChecks,
    pub country: &'static str,
    pub exp_month: i64,
    pub exp_year: i64,
    pub extended_authorization: FeatureStatus,
    pub fingerprint: String,
    pub funding: &'static str,
    pub incremental_authorization: FeatureStatus,
    pub installments: Option<Value>,
    pub last4: String,
    pub mandate: Option<String>,
    pub multicapture: FeatureStatus,
    pub network: &'static str,
    pub network_token: NetworkToken,
    pub network_transaction_id: String,
    pub overcapture: Overcapture,
    pub regulated_status: Option<String>,
    pub three_d_secure: Option<Value>,
    pub transaction_link_id: Option<String>,
    pub wallet: Option<Value>,
}

/// A charge's `payment_method_details`: always a card here.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethodDetails {
    pub card: ChargeCard,
    #[serde(rename = "type")]
    pub method_type: &'static str,
}

/// A charge's `refunds`: Stripe's list object, newest first, all of them (`has_more` false).
#[derive(Debug, Clone, Serialize)]
pub struct RefundList {
    pub object: &'static str,
    pub data: Vec<Refund>,
    pub has_more: bool,
    pub url: String,
}

impl RefundList {
    pub fn of_charge(charge: &str) -> Self {
        Self {
            object: "list",
            data: Vec::new(),
            has_more: false,
            url: format!("/v1/charges/{charge}/refunds"),
        }
    }
}

/// A charge's `fraud_details`: the reports of Stripe and the user, none here.
pub type FraudDetails = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tip {}

/// A payment intent's `amount_details`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AmountDetails {
    pub tip: Tip,
}

/// A payment intent's `payment_method_options.card`.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentCardOptions {
    pub installments: Option<Value>,
    pub mandate_options: Option<Value>,
    pub network: Option<String>,
    pub request_three_d_secure: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethodOptions {
    pub card: PaymentCardOptions,
}

impl Default for PaymentMethodOptions {
    fn default() -> Self {
        Self {
            card: PaymentCardOptions {
                installments: None,
                mandate_options: None,
                network: None,
                request_three_d_secure: "automatic",
            },
        }
    }
}

/// A setup intent's `payment_method_options.card`: no `installments` (those are a
/// payment's).
#[derive(Debug, Clone, Serialize)]
pub struct SetupCardOptions {
    pub mandate_options: Option<Value>,
    pub network: Option<String>,
    pub request_three_d_secure: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupMethodOptions {
    pub card: SetupCardOptions,
}

impl Default for SetupMethodOptions {
    fn default() -> Self {
        Self {
            card: SetupCardOptions {
                mandate_options: None,
                network: None,
                request_three_d_secure: "automatic",
            },
        }
    }
}

/// `destination_details.card` of a refund to a card.
#[derive(Debug, Clone, Serialize)]
pub struct RefundCardDestination {
    pub reference: Option<String>,
    pub reference_status: &'static str,
    pub reference_type: &'static str,
    #[serde(rename = "type")]
    pub destination_type: &'static str,
}

/// A refund's `destination_details`: back to the card, its reference still pending.
#[derive(Debug, Clone, Serialize)]
pub struct RefundDestination {
    pub card: RefundCardDestination,
    #[serde(rename = "type")]
    pub destination_type: &'static str,
}

impl RefundDestination {
    pub fn card() -> Self {
        Self {
            card: RefundCardDestination {
                reference: None,
                reference_status: "pending",
                reference_type: "acquirer_reference_number",
                destination_type: "refund",
            },
            destination_type: "card",
        }
    }
}
