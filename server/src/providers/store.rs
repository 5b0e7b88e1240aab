//! What an app store says about one subscription, in the same words for Apple, Google, Roku
//! and Amazon: each store's client reads its own wire format and answers with a
//! [`StoreSubscription`], so the core runs one engine over all four.

use chrono::{DateTime, Utc};

/// Which of a store's environments a purchase was made in. A sandbox purchase (a tester's
/// device, the store's sandbox) never grants anything in a production configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEnvironment {
    Sandbox,
    Production,
}

impl StoreEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreEnvironment::Sandbox => "Sandbox",
            StoreEnvironment::Production => "Production",
        }
    }
}

/// Where the subscription stands at the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// Paid through [`StoreSubscription::expires_at`].
    Active,
    /// A renewal is failing and the store keeps access open until `until` while it retries.
    GracePeriod { until: DateTime<Utc> },
    /// A renewal is failing and the store retries without giving access (Apple's billing
    /// retry, Google's account hold).
    BillingRetry,
    /// Over: not renewed, or the retries ran out.
    Expired,
    /// The store refunded the purchase (or revoked it) at `at`; access ends then.
    Refunded { at: DateTime<Utc> },
}

/// A payment the store took for one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePayment {
    /// The store's id of this payment (Apple's transaction id, Google's order id, …):
    /// recording it twice is a no-op.
    pub transaction_id: String,
    pub purchased_at: DateTime<Utc>,
    /// The price the store charged, in minor units with its ISO 4217 code, when the store
    /// says.
    pub price: Option<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSubscription {
    pub environment: StoreEnvironment,
    /// The store's name for the subscription across its renewals (Apple's original
    /// transaction id, Google's purchase token, …): one boxoffice subscription each.
    pub subscription_ref: String,
    pub product_id: String,
    /// The payment for the current period.
    pub latest_payment: StorePayment,
    /// When the current period started, where the store says; otherwise when the purchase
    /// started.
    pub period_start: DateTime<Utc>,
    /// When the period paid for ends.
    pub expires_at: DateTime<Utc>,
    /// Whether the store will try to renew it at `expires_at`.
    pub auto_renew: bool,
    pub state: StoreState,
}

/// Why a store did not vouch for a purchase.
#[derive(Debug, thiserror::Error)]
pub enum StoreRefusal {
    /// The store answered, and refused: its own code (Apple's `21003`, Google's `410`, …)
    /// and message.
    #[error("{message}")]
    Refused { code: Option<i64>, message: String },
    /// The store could not be asked or its answer could not be read.
    #[error("{0}")]
    Unavailable(String),
}

impl StoreRefusal {
    pub fn refused(code: impl Into<Option<i64>>, message: impl Into<String>) -> Self {
        StoreRefusal::Refused {
            code: code.into(),
            message: message.into(),
        }
    }
}
