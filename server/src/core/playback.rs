//! What players ask: a playback session for an entry, DRM licence checks, and where the
//! customer left off.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{Core, CoreError, Credential, Presence};
use crate::core::model::{PlaybackView, SortOrder};

pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KSessionOutcome {
    Granted,
    NotAuthenticated,
    NoSubscriptions,
}

#[derive(Debug, Clone)]
pub struct KSessionGrant {
    pub outcome: KSessionOutcome,
    pub presence: Presence,
    pub ksession: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmDecision {
    pub granted: bool,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct ResumePage {
    pub page: u64,
    pub size: u64,
    pub order: SortOrder,
    pub views: Vec<PlaybackView>,
}

fn deny(reason: &str) -> DrmDecision {
    DrmDecision {
        granted: false,
        reason: reason.to_owned(),
    }
}

impl Core {
    /// A signed, short-lived playback session for one entry, if the caller has a live session
    /// and an entitlement. A grant is also recorded as a view, for "continue watching".
    pub async fn ksession(
        &self,
        credential: Option<&Credential>,
        entry_id: &str,
    ) -> Result<KSessionGrant, CoreError> {
        let entry_id = entry_id.trim();
        if entry_id.is_empty() {
            return Err(CoreError::Invalid("entryid is required".into()));
        }
        let presence = self.presence(credential).await?;
        let (Some(customer), Some(_)) = (&presence.customer, &presence.session) else {
            return Ok(KSessionGrant {
                outcome: KSessionOutcome::NotAuthenticated,
                presence,
                ksession: None,
            });
        };
        if presence.standing.entitlements.is_empty() {
            return Ok(KSessionGrant {
                outcome: KSessionOutcome::NoSubscriptions,
                presence,
                ksession: None,
            });
        }
        let now = self.now();
        let expires = now
            + chrono::Duration::from_std(self.playback.ksession_ttl)
                .unwrap_or(chrono::Duration::hours(1));
        let claims = json!({
            "entryId": entry_id,
            "customerId": customer.id,
            "privileges": presence.standing.entitlements,
            "expiresAt": expires.timestamp(),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(self.playback.ksession_secret.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        self.store.record_view(&customer.id, entry_id, now).await?;
        Ok(KSessionGrant {
            outcome: KSessionOutcome::Granted,
            presence,
            ksession: Some(format!("{payload}.{signature}")),
        })
    }

    /// May this customer get a DRM licence for this entry now?
    pub async fn validate_drm(
        &self,
        entry_id: &str,
        customer_id: &str,
    ) -> Result<DrmDecision, CoreError> {
        if entry_id.trim().is_empty() {
            return Err(CoreError::Invalid("entryId is required".into()));
        }
        let Some(customer) = self.store.customer(customer_id).await? else {
            return Ok(deny("Customer not found"));
        };
        if customer.deleted {
            return Ok(deny("Customer account deleted"));
        }
        if self.live_session_count(&customer.id).await? == 0 {
            return Ok(deny("Customer has no active session"));
        }
        if self.standing(&customer).await?.entitlements.is_empty() {
            return Ok(deny("Customer has no subscriptions"));
        }
        Ok(DrmDecision {
            granted: true,
            reason: "Customer is entitled".into(),
        })
    }

    pub async fn resume(
        &self,
        credential: &Credential,
        order: SortOrder,
        page: u64,
        size: u64,
    ) -> Result<ResumePage, CoreError> {
        if page == 0 {
            return Err(CoreError::Invalid("page starts at 1".into()));
        }
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(CoreError::Invalid(format!(
                "size must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        let customer = self.authenticated_customer(credential).await?;
        let offset = (page - 1).saturating_mul(size);
        let views = self.store.views(&customer.id, order, offset, size).await?;
        Ok(ResumePage {
            page,
            size,
            order,
            views,
        })
    }
}
