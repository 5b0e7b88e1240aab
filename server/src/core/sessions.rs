//! Sessions and the device lock.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Core, CoreError, Country, Standing, VerifiedIdentity};
use crate::core::model::{Customer, Session};
use crate::store::SessionStart;

/// What a caller presents on a request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The SSO provider's JWT (query `apijwttoken`, cookie `ThirdPartyAuthentication`).
    ThirdPartyToken(String),
    /// A session id handed out at session start (query `apisessionid`, cookie `.auth`).
    SessionToken(String),
}

/// What a caller presents to start a session.
#[derive(Debug, Clone)]
pub enum LoginCredential {
    ThirdPartyToken(String),
    Password { email: String, password: String },
}

#[derive(Debug, Clone)]
pub struct StartedSession {
    pub customer: Customer,
    pub session: Session,
    pub standing: Standing,
}

/// Who the caller is, and their session if one is live. A session token that ended or
/// expired is not an error here: it simply shows no session.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    pub customer: Option<Customer>,
    pub session: Option<Session>,
    /// The customer's subscriptions and what they may watch; empty without a live session.
    pub standing: Standing,
}

impl Core {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn session_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.sessions.idle_timeout)
            .unwrap_or(chrono::Duration::hours(2))
    }

    /// The customer a verified token names, created on first sight from the token's claims.
    pub(crate) async fn customer_for(
        &self,
        identity: &VerifiedIdentity,
    ) -> Result<Customer, CoreError> {
        let candidate = Customer {
            id: Uuid::new_v4().to_string(),
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            first_name: identity.first_name.clone(),
            last_name: identity.last_name.clone(),
            deleted: false,
            created_at: self.now(),
        };
        let customer = self.store.customer_for_identity(&candidate).await?;
        if customer.deleted {
            return Err(CoreError::Forbidden(
                "The customer account has been deleted".into(),
            ));
        }
        Ok(customer)
    }

    /// Starts a session that counts toward the customer's device lock.
    pub async fn start_session(
        &self,
        login: LoginCredential,
        country: Option<&Country>,
    ) -> Result<StartedSession, CoreError> {
        let now = self.now();
        let token = match login {
            LoginCredential::ThirdPartyToken(token) => token.trim().to_owned(),
            LoginCredential::Password { email, password } => {
                if email.trim().is_empty() || password.is_empty() {
                    return Err(CoreError::Invalid(
                        "emailaddress and password are required".into(),
                    ));
                }
                self.identity.sign_in(email.trim(), &password).await?
            }
        };
        let identity = self.identity.verify(&token, now).await?;
        let customer = self.customer_for(&identity).await?;
        let session_id = Uuid::new_v4().simple().to_string();
        let started = self
            .store
            .start_session(&SessionStart {
                session_id: &session_id,
                customer_id: &customer.id,
                token_fingerprint: Some(&identity.token_fingerprint),
                country_code: country.map(Country::code),
                now,
                expires_at: self.session_expiry(now),
                device_limit: self.sessions.device_limit,
            })
            .await?;
        match started {
            Some(session) => {
                let standing = self.standing(&customer).await?;
                Ok(StartedSession {
                    customer,
                    session,
                    standing,
                })
            }
            None => Err(CoreError::DeviceLimitReached),
        }
    }

    /// Resolves a credential without touching anything.
    pub(crate) async fn presence_of(&self, credential: &Credential) -> Result<Presence, CoreError> {
        let now = self.now();
        match credential {
            Credential::ThirdPartyToken(token) => {
                let identity = self.identity.verify(token, now).await?;
                let customer = self.customer_for(&identity).await?;
                let session = self
                    .store
                    .live_session_for_token(&customer.id, &identity.token_fingerprint, now)
                    .await?;
                Ok(Presence {
                    customer: Some(customer),
                    session,
                    standing: Standing::default(),
                })
            }
            Credential::SessionToken(id) => {
                let Some(session) = self.store.live_session(id, now).await? else {
                    return Ok(Presence::default());
                };
                let customer = self.store.customer(&session.customer_id).await?;
                match customer {
                    Some(customer) if !customer.deleted => Ok(Presence {
                        customer: Some(customer),
                        session: Some(session),
                        standing: Standing::default(),
                    }),
                    _ => Ok(Presence::default()),
                }
            }
        }
    }

    /// "Is this caller logged in?" A live session's idle timer restarts.
    pub async fn presence(&self, credential: Option<&Credential>) -> Result<Presence, CoreError> {
        let Some(credential) = credential else {
            return Ok(Presence::default());
        };
        let mut presence = self.presence_of(credential).await?;
        if let Some(session) = presence.session.as_mut() {
            let now = self.now();
            let expires_at = self.session_expiry(now);
            if self
                .store
                .touch_session(&session.id, now, expires_at)
                .await?
            {
                session.last_seen_at = now;
                session.expires_at = expires_at;
            } else {
                presence.session = None;
            }
        }
        if let (Some(customer), Some(_)) = (&presence.customer, &presence.session) {
            presence.standing = self.standing(customer).await?;
        }
        Ok(presence)
    }

    /// The customer behind a credential, for operations that need one but not a session.
    pub async fn authenticated_customer(
        &self,
        credential: &Credential,
    ) -> Result<Customer, CoreError> {
        self.presence_of(credential)
            .await?
            .customer
            .ok_or_else(|| CoreError::Unauthenticated("The session has ended or expired".into()))
    }

    /// Ends the caller's session, freeing a slot of the device lock.
    pub async fn terminate(&self, credential: &Credential) -> Result<Customer, CoreError> {
        let presence = self.presence_of(credential).await?;
        let (Some(customer), Some(session)) = (presence.customer, presence.session) else {
            return Err(CoreError::Unauthenticated(
                "There is no active session to terminate".into(),
            ));
        };
        if !self
            .store
            .end_session(&session.id, self.now(), "terminated")
            .await?
        {
            return Err(CoreError::Unauthenticated(
                "There is no active session to terminate".into(),
            ));
        }
        Ok(customer)
    }

    /// Checks a session token before it is put in a cookie.
    pub async fn live_session(&self, session_id: &str) -> Result<Session, CoreError> {
        self.store
            .live_session(session_id, self.now())
            .await?
            .ok_or_else(|| CoreError::Unauthenticated("The session has ended or expired".into()))
    }

    pub async fn live_session_count(&self, customer_id: &str) -> Result<u32, CoreError> {
        Ok(self
            .store
            .live_session_count(customer_id, self.now())
            .await?)
    }
}
