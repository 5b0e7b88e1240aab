//! Stripe: the HTTP client the core charges cards with (`client.rs`), Stripe's JSON objects
//! and their conversions (`wire.rs`), and the verification of the webhooks Stripe signs
//! (`webhook.rs`).

mod client;

/// The Stripe events boxoffice acts on: what its webhook endpoint should subscribe to.
pub const HANDLED_EVENTS: [&str; 5] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "setup_intent.succeeded",
    "charge.refunded",
];
pub use client::metadata;
mod webhook;
mod wire;

pub use client::{
    API_VERSION, NewPaymentIntent, NewSetupIntent, OffSessionCharge, StripeClient,
    StripeClientError, StripeSettings,
};
pub use webhook::{SignatureError, sign, verify_signature};
pub use wire::{
    Card, Charge, Event, EventObject, ObjectReference, PaymentError, PaymentIntent,
    PaymentIntentStatus, PaymentMethod, SetupIntent, SetupIntentStatus,
};
