//! The SSO simulator: a stateful fake of an AWS Cognito user pool.
//!
//! It speaks the user pool's own API (the AWS JSON 1.1 protocol: `POST /` with
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`), so the official AWS SDKs
//! work against it unchanged when pointed at it by endpoint URL, e.g.
//! `boto3.client("cognito-idp", endpoint_url="http://127.0.0.1:8080/sim/sso")`. Request
//! signatures (SigV4) are accepted and ignored.
//!
//! What the pool does, and how it is configured:
//! - operations: `SignUp`, `ConfirmSignUp`, `ResendConfirmationCode`, `InitiateAuth`
//!   (`USER_PASSWORD_AUTH`, `REFRESH_TOKEN_AUTH` / `REFRESH_TOKEN`), `GetUser`,
//!   `ForgotPassword`, `ConfirmForgotPassword`, `GlobalSignOut`;
//! - one app client ([`SsoConfig::app_client_id`]), public (no client secret: a `SecretHash`
//!   sent anyway is ignored), with `PreventUserExistenceErrors` **ENABLED**, the default of
//!   app clients created in the Cognito console: an unknown user signing in gets
//!   `NotAuthorizedException` ("Incorrect username or password."), `ForgotPassword` and
//!   `ResendConfirmationCode` for an unknown user answer with a simulated delivery, and
//!   the confirmations answer `CodeMismatchException`. (Clients created through the API
//!   default to `LEGACY`, which answers `UserNotFoundException`; see
//!   [`SsoSimulator::set_prevent_user_existence_errors`].) `SignUp` always reports an
//!   existing email (`UsernameExistsException`), as Cognito does;
//! - users sign in with their email (the pool's `UsernameAttributes` is `email`, case
//!   insensitive), so each user's internal username is its `sub`, as in Cognito; the schema
//!   has `email`, `given_name` and `family_name` (optional), and `sub`;
//! - password policy: at least 8 characters, with upper-case, lower-case and a digit
//!   (Cognito's default also requires a symbol; this pool does not);
//! - codes: 6 digits, sign-up codes valid 24 hours, reset codes 1 hour; nothing is sent,
//!   the control surface reads them (`GET /control/sso/users/{email}/codes`);
//! - tokens: RS256 with the pool's RSA-2048 key (header `kid`, published at
//!   `{issuer}/.well-known/jwks.json`) or, with [`SsoSigning::Hs256`], HS256 with a shared
//!   secret; Cognito's claims; `iss` is `{public_base_url}/{user_pool_id}`; id and access
//!   tokens live [`SsoConfig::token_ttl`], refresh tokens 30 days;
//! - time: only from the host's [`Now`], never the machine's clock.

mod cognito_api;
mod control;
mod error;
mod pool;
mod tokens;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use poem::Route;

pub use self::control::SsoControlApi;
pub use self::error::SsoError;
use self::pool::{AdminCreateError, NewUser, Session, User, UserPool};
use self::tokens::{RsaSigningKey, SignError, Signer, TokenGrant};
use crate::clock::Now;

/// Cognito lets an app client's id and access tokens live at most one day.
const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How the simulated user pool is set up.
#[derive(Debug, Clone)]
pub struct SsoConfig {
    /// The pool's id, `<region>_<id>` as in Cognito, e.g. `eu-west-1_BoxOffice`.
    pub user_pool_id: String,
    /// The AWS region clients name (boto3's `region_name`); informational.
    pub region: String,
    /// The one app client's id (`ClientId` in requests, `aud` of id tokens).
    pub app_client_id: String,
    /// Where the simulator's endpoint is reachable, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080/sim/sso`. Tokens' `iss` is `{public_base_url}/{user_pool_id}`.
    pub public_base_url: String,
    /// Confirm sign-ups at once (no confirmation code), as a pre-sign-up Lambda would.
    pub auto_confirm: bool,
    /// How tokens from the Cognito API are signed.
    pub signing: SsoSigning,
    /// Where the RSA signing key is kept (PEM PKCS#8). When set, an existing key is loaded
    /// and a missing one is generated and written, so a restart keeps the key (and the
    /// tokens signed before it stay verifiable). When unset, each start has a new key.
    pub signing_key_path: Option<PathBuf>,
    /// Lifetime of id and access tokens (`ExpiresIn`); Cognito's default is one hour.
    /// At most one day, as in Cognito.
    pub token_ttl: Duration,
}

/// How the pool signs the tokens its Cognito API issues.
#[derive(Clone, PartialEq, Eq)]
pub enum SsoSigning {
    /// RS256 with the pool's RSA key, as Cognito does; verifiers use the JWKS.
    Rs256,
    /// HS256 with a secret shared with the verifier (no `kid`), for clients whose SSO
    /// provider signs that way. The RSA key still exists, for the control surface.
    Hs256 { secret: String },
}

impl std::fmt::Debug for SsoSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rs256 => f.write_str("Rs256"),
            Self::Hs256 { .. } => f.write_str("Hs256 { secret: .. }"),
        }
    }
}

/// A confirmed user (verified email) the host puts in the pool, e.g. simulator mode's
/// test users.
#[derive(Debug, Clone)]
pub struct SeedUser {
    pub email: String,
    /// Must satisfy the pool's password policy.
    pub password: String,
    /// Empty means "not set".
    pub given_name: String,
    /// Empty means "not set".
    pub family_name: String,
}

/// The simulated user pool. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct SsoSimulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: SsoConfig,
    token_ttl: TimeDelta,
    now: Now,
    signer: Signer,
    pool: Mutex<UserPool>,
}

/// Id and access token for one grant.
pub(crate) struct IssuedTokens {
    pub id_token: String,
    pub access_token: String,
}

impl SsoSimulator {
    /// Builds the pool: checks the configuration and generates (or loads, see
    /// [`SsoConfig::signing_key_path`]) its RSA key.
    pub fn new(mut config: SsoConfig, now: Now) -> Result<Self, SsoError> {
        validate_config(&mut config)?;
        let token_ttl = TimeDelta::from_std(config.token_ttl)
            .map_err(|_| SsoError::InvalidConfig("token_ttl is out of range".into()))?;
        let rsa_key = match &config.signing_key_path {
            Some(path) => RsaSigningKey::load_or_create(path)?,
            None => RsaSigningKey::generate()?,
        };
        Ok(Self::from_parts(config, token_ttl, now, Some(rsa_key)))
    }

    fn from_parts(
        config: SsoConfig,
        token_ttl: TimeDelta,
        now: Now,
        rsa_key: Option<RsaSigningKey>,
    ) -> Self {
        let signer = Signer::new(rsa_key, config.signing.clone());
        Self {
            inner: Arc::new(Inner {
                config,
                token_ttl,
                now,
                signer,
                pool: Mutex::new(UserPool::new(true)),
            }),
        }
    }

    /// A pool that only describes itself: no key, no users. For the OpenAPI document.
    fn for_documentation(public_base_url: &str) -> Self {
        let config = SsoConfig {
            user_pool_id: "eu-west-1_BoxOffice".into(),
            region: "eu-west-1".into(),
            app_client_id: cognito_api::EXAMPLE_CLIENT_ID.into(),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            auto_confirm: false,
            signing: SsoSigning::Rs256,
            signing_key_path: None,
            token_ttl: Duration::from_secs(3600),
        };
        Self::from_parts(
            config,
            TimeDelta::hours(1),
            Arc::new(|| DateTime::UNIX_EPOCH),
            None,
        )
    }

    /// Adds a confirmed user with a verified email.
    pub fn seed_user(&self, user: SeedUser) -> Result<(), SsoError> {
        let email = user.email.clone();
        let new_user = NewUser {
            email: user.email,
            password: user.password,
            given_name: Some(user.given_name).filter(|name| !name.is_empty()),
            family_name: Some(user.family_name).filter(|name| !name.is_empty()),
        };
        let now = self.now();
        self.lock_pool()
            .create_confirmed(new_user, now)
            .map(|_| ())
            .map_err(|error| match error {
                AdminCreateError::InvalidEmail => SsoError::InvalidEmail { email },
                AdminCreateError::InvalidPassword(reason) => {
                    SsoError::InvalidPassword { email, reason }
                }
                AdminCreateError::Exists => SsoError::UserExists { email },
            })
    }

    /// The `iss` of the pool's tokens: `{public_base_url}/{user_pool_id}`, as Cognito's
    /// `https://cognito-idp.{region}.amazonaws.com/{user_pool_id}`.
    pub fn issuer(&self) -> String {
        format!(
            "{}/{}",
            self.inner.config.public_base_url, self.inner.config.user_pool_id
        )
    }

    /// The pool's JWKS: `{issuer}/.well-known/jwks.json`, as with Cognito.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer())
    }

    /// The simulator's HTTP surface, to mount at the path [`SsoConfig::public_base_url`]
    /// names: the Cognito API at `POST /`, the JWKS at `GET /{userPoolId}/.well-known/jwks.json`
    /// (and the OpenID configuration beside it), this API's OpenAPI document at
    /// `/openapi.json` and Swagger UI at `/docs`. The control surface is separate
    /// ([`SsoSimulator::control_api`]).
    pub fn endpoint(&self) -> Route {
        let service = cognito_api::service(self.clone());
        let spec = service.spec_endpoint();
        let docs = service.swagger_ui();
        Route::new()
            .at("/openapi.json", spec)
            .nest("/docs", docs)
            .nest("/", service)
    }

    /// The control surface (`/control/sso/...`), for the host to mount in its control
    /// OpenAPI service (at `/sim`).
    pub fn control_api(&self) -> SsoControlApi {
        SsoControlApi::new(self.clone())
    }

    /// Sets the app client's `PreventUserExistenceErrors`: `true` (the default here, and
    /// the console's) hides whether a user exists; `false` is Cognito's `LEGACY`, which
    /// answers `UserNotFoundException`.
    pub fn set_prevent_user_existence_errors(&self, enabled: bool) {
        self.lock_pool().prevent_user_existence_errors = enabled;
    }

    pub(crate) fn config(&self) -> &SsoConfig {
        &self.inner.config
    }

    pub(crate) fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    pub(crate) fn token_ttl(&self) -> TimeDelta {
        self.inner.token_ttl
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.now)()
    }

    /// The pool's state. A panic while it was held cannot leave it half-updated in a way
    /// that matters to a simulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock_pool(&self) -> MutexGuard<'_, UserPool> {
        self.inner
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Signs the id and access token of a sign-in or refresh, the way the pool signs.
    pub(crate) fn issue_tokens(
        &self,
        user: &User,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, SignError> {
        let issuer = self.issuer();
        let grant = TokenGrant {
            user,
            session,
            issuer: &issuer,
            audience: &self.inner.config.app_client_id,
            issued_at: now,
            expires_at: now + self.inner.token_ttl,
            not_before: None,
        };
        let signer = &self.inner.signer;
        Ok(IssuedTokens {
            id_token: signer.sign(&grant.id_claims(), signer.pool_default())?,
            access_token: signer.sign(&grant.access_claims(), signer.pool_default())?,
        })
    }
}

/// The OpenAPI document of the simulator's Cognito API (the content of
/// `openapi/sim-sso.json`), with `public_base_url` as its server. Deterministic: the same
/// input gives the same bytes.
pub fn openapi_json(public_base_url: &str) -> String {
    cognito_api::service(SsoSimulator::for_documentation(public_base_url)).spec()
}

fn validate_config(config: &mut SsoConfig) -> Result<(), SsoError> {
    let invalid = |message: &str| Err(SsoError::InvalidConfig(message.to_owned()));
    // Cognito's pool id pattern is `[\w-]+_[0-9a-zA-Z]+`; it also appears in URL paths.
    let pool_id_ok = config
        .user_pool_id
        .split_once('_')
        .is_some_and(|(region, id)| {
            !region.is_empty()
                && !id.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && id.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if !pool_id_ok {
        return invalid("user_pool_id must look like <region>_<id>, e.g. eu-west-1_BoxOffice");
    }
    // Cognito's client id pattern is `[\w+]+`.
    let client_id_ok = !config.app_client_id.is_empty()
        && config.app_client_id.len() <= 128
        && config
            .app_client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+');
    if !client_id_ok {
        return invalid("app_client_id must be 1 to 128 letters, digits, '_' or '+'");
    }
    config.public_base_url = config.public_base_url.trim_end_matches('/').to_owned();
    if !(config.public_base_url.starts_with("http://")
        || config.public_base_url.starts_with("https://"))
    {
        return invalid("public_base_url must be an http(s) URL");
    }
    if config.token_ttl < Duration::from_secs(1) || config.token_ttl > MAX_TOKEN_TTL {
        return invalid("token_ttl must be between one second and one day");
    }
    if matches!(&config.signing, SsoSigning::Hs256 { secret } if secret.is_empty()) {
        return invalid("the HS256 secret must not be empty");
    }
    Ok(())
}
