//! The business rules, once, for every façade: customers, sessions and the device lock,
//! the catalogue, accounts and playback, purchases, the subscription engine and its billing
//! clock. A façade calls one operation here per request.

mod account;
mod billing;
mod catalogue;
mod country;
mod error;
mod iap;
pub mod identity;
pub mod model;
mod payments;
mod playback;
mod sessions;
mod subscriptions;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

pub use account::{AccountChanges, AccountView, CustomFieldChange};
pub use billing::{BillingReport, spawn_billing_loop};
pub use catalogue::{CatalogueSeed, PackageFilter};
pub use country::Country;
pub use error::CoreError;
pub use iap::{StoreNotificationError, StoreNotificationOutcome, StoreReceipt, StoreSettings};
pub use identity::{IdentitySettings, IdentityVerifier, VerifiedIdentity};
pub use payments::{
    CheckoutView, DiscountedBasket, PaymentSettings, TransactionPage, default_renewal_retries,
};
pub use playback::{DrmDecision, KSessionGrant, KSessionOutcome, ResumePage};
pub use sessions::{Credential, LoginCredential, Presence, StartedSession};
pub use subscriptions::{Standing, SubscriptionView, add_period};
pub use webhooks::{WebhookError, WebhookOutcome};

use crate::clock::Clock;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Concurrent live sessions per customer (CloudPay's device lock; default 3).
    pub device_limit: u32,
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            device_limit: 3,
            idle_timeout: Duration::from_secs(2 * 60 * 60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlaybackSettings {
    /// Signs the playback sessions (KSession) handed to players.
    pub ksession_secret: String,
    pub ksession_ttl: Duration,
}

pub struct Core {
    store: Store,
    clock: Arc<dyn Clock>,
    identity: IdentityVerifier,
    sessions: SessionSettings,
    playback: PlaybackSettings,
    payments: PaymentSettings,
    stores: StoreSettings,
    /// Names this process's claims on billing jobs.
    worker_id: String,
    /// The renewals this process's billing clock is charging now or has just recorded.
    renewals_in_hand: billing::RenewalsInHand,
    batches_in_flight: billing::BatchesInFlight,
}

impl Core {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        identity: IdentityVerifier,
        sessions: SessionSettings,
        playback: PlaybackSettings,
        payments: PaymentSettings,
    ) -> Self {
        Self {
            store,
            clock,
            identity,
            sessions,
            playback,
            payments,
            stores: StoreSettings::default(),
            worker_id: uuid::Uuid::new_v4().simple().to_string(),
            renewals_in_hand: billing::RenewalsInHand::default(),
            batches_in_flight: billing::BatchesInFlight::default(),
        }
    }

    /// The app stores purchases may be verified with.
    pub fn with_stores(mut self, stores: StoreSettings) -> Self {
        self.stores = stores;
        self
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Whether the core can serve: the database answers.
    pub async fn ready(&self) -> Result<(), CoreError> {
        Ok(self.store.ping().await?)
    }

    /// Closes the database pool; for an orderly shutdown.
    pub async fn close(&self) {
        self.store.close().await;
    }
}
