//! The business rules, once, for every façade: customers, sessions and the device lock,
//! the catalogue, accounts and playback. A façade calls one operation here per request.

mod account;
mod catalogue;
mod country;
mod error;
pub mod identity;
pub mod model;
mod playback;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

pub use account::{AccountChanges, AccountView, CustomFieldChange};
pub use catalogue::{CatalogueSeed, PackageFilter};
pub use country::Country;
pub use error::CoreError;
pub use identity::{IdentitySettings, IdentityVerifier, VerifiedIdentity};
pub use playback::{DrmDecision, KSessionGrant, KSessionOutcome, ResumePage};
pub use sessions::{Credential, LoginCredential, Presence, StartedSession};

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
}

impl Core {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        identity: IdentityVerifier,
        sessions: SessionSettings,
        playback: PlaybackSettings,
    ) -> Self {
        Self {
            store,
            clock,
            identity,
            sessions,
            playback,
        }
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
