//! The SSO simulator's control surface: the administrator's and the mailbox's side of the
//! pool (as LocalStack and moto offer). Tests use it to create users, read the codes the
//! pool "emailed", and mint tokens that are expired, not yet valid, from a foreign issuer,
//! for another audience or signed another way.

use chrono::{DateTime, TimeDelta, Utc};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::SsoSimulator;
use super::pool::{AdminCreateError, NewUser, PendingCode, User, UserStatus};
use super::tokens::{SignWith, TokenGrant};

/// Minted lifetimes and offsets are limited to ten years either way, which covers every
/// test and keeps time arithmetic far from overflow.
const MAX_OFFSET_SECONDS: i64 = 10 * 366 * 24 * 60 * 60;

const EXAMPLE_EMAIL: &str = "jane.doe@example.com";

#[derive(Tags)]
enum SsoControlTag {
    /// The SSO simulator's control surface: users, their codes, and hand-made tokens.
    SsoControl,
}

/// A user's status in the pool (Cognito's `UserStatusType`, the values this pool uses).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "SsoUserStatus")]
pub enum SsoUserStatus {
    /// Signed up, not yet confirmed.
    #[oai(rename = "UNCONFIRMED")]
    Unconfirmed,
    /// Confirmed: may sign in.
    #[oai(rename = "CONFIRMED")]
    Confirmed,
}

impl From<UserStatus> for SsoUserStatus {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Unconfirmed => Self::Unconfirmed,
            UserStatus::Confirmed => Self::Confirmed,
        }
    }
}

/// A user of the pool (never its password).
#[derive(Object, Debug, Clone)]
#[oai(rename = "SsoUser", rename_all = "camelCase", example)]
pub struct SsoUser {
    /// The internal username: the `sub` (the pool signs in by email).
    pub username: String,
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    #[oai(skip_serializing_if_is_none)]
    pub given_name: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub family_name: Option<String>,
    pub status: SsoUserStatus,
    /// When the user signed up or was created, on the host's clock.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for SsoUser {
    fn from(user: &User) -> Self {
        Self {
            username: user.username().to_owned(),
            sub: user.sub.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            status: user.status.into(),
            created_at: user.created_at,
        }
    }
}

impl Example for SsoUser {
    fn example() -> Self {
        Self {
            username: "4f1b7c3e-9a52-4c7e-8d5e-1f0f3f6a2b11".into(),
            sub: "4f1b7c3e-9a52-4c7e-8d5e-1f0f3f6a2b11".into(),
            email: EXAMPLE_EMAIL.into(),
            email_verified: true,
            given_name: Some("Jane".into()),
            family_name: Some("Doe".into()),
            status: SsoUserStatus::Confirmed,
            created_at: example_time(),
        }
    }
}

/// A confirmed user to create.
#[derive(Object, Debug, Clone)]
#[oai(rename = "CreateSsoUser", rename_all = "camelCase", example)]
pub struct CreateSsoUser {
    pub email: String,
    /// Must satisfy the pool's policy: 8+ characters, upper-case, lower-case, digit.
    pub password: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

impl Example for CreateSsoUser {
    fn example() -> Self {
        Self {
            email: EXAMPLE_EMAIL.into(),
            password: "Correct-Horse-9".into(),
            given_name: Some("Jane".into()),
            family_name: Some("Doe".into()),
        }
    }
}

/// A code the pool sent and expects back.
#[derive(Object, Debug, Clone)]
#[oai(rename = "SsoPendingCode", rename_all = "camelCase")]
pub struct SsoPendingCode {
    /// The 6-digit code.
    pub code: String,
    /// After this instant (host's clock) the code is refused with `ExpiredCodeException`.
    pub expires_at: DateTime<Utc>,
}

impl From<&PendingCode> for SsoPendingCode {
    fn from(pending: &PendingCode) -> Self {
        Self {
            code: pending.code.clone(),
            expires_at: pending.expires_at,
        }
    }
}

/// The codes the pool "emailed" a user and still expects.
#[derive(Object, Debug, Clone)]
#[oai(rename = "SsoUserCodes", rename_all = "camelCase", example)]
pub struct SsoUserCodes {
    pub email: String,
    pub status: SsoUserStatus,
    /// For `ConfirmSignUp`; absent once confirmed.
    #[oai(skip_serializing_if_is_none)]
    pub confirmation_code: Option<SsoPendingCode>,
    /// For `ConfirmForgotPassword`; present after `ForgotPassword` until used.
    #[oai(skip_serializing_if_is_none)]
    pub password_reset_code: Option<SsoPendingCode>,
}

impl Example for SsoUserCodes {
    fn example() -> Self {
        Self {
            email: EXAMPLE_EMAIL.into(),
            status: SsoUserStatus::Unconfirmed,
            confirmation_code: Some(SsoPendingCode {
                code: "123456".into(),
                expires_at: example_time() + TimeDelta::hours(24),
            }),
            password_reset_code: None,
        }
    }
}

/// Which token to mint.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[oai(rename = "SsoTokenUse", rename_all = "lowercase")]
pub enum SsoTokenUse {
    /// An id token (`aud` = audience; the user's email and names).
    #[default]
    Id,
    /// An access token (`client_id` = audience).
    Access,
}

/// How to sign a minted token.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "SsoTokenAlgorithm")]
pub enum SsoTokenAlgorithm {
    /// The pool's RSA key (`kid` in the header; verifiable with the JWKS).
    #[oai(rename = "RS256")]
    Rs256,
    /// A shared secret: `secret`, or the pool's own when it signs HS256.
    #[oai(rename = "HS256")]
    Hs256,
}

/// A token to mint for an existing user. Every override is optional; without any, the
/// token is the one a sign-in would give.
#[derive(Object, Debug, Clone)]
#[oai(rename = "MintSsoToken", rename_all = "camelCase", example)]
pub struct MintSsoToken {
    /// The user's email.
    pub email: String,
    /// `id` (default) or `access`.
    pub token_use: Option<SsoTokenUse>,
    /// `iss`; default the pool's issuer. Set another to get a foreign-issuer token.
    pub issuer: Option<String>,
    /// `aud` (id token) or `client_id` (access token); default the pool's app client id.
    pub audience: Option<String>,
    /// `exp` relative to now (host's clock); default the pool's token lifetime. Zero or
    /// negative gives an already expired token.
    pub expires_in_seconds: Option<i64>,
    /// Adds `nbf` = now + this many seconds (Cognito's tokens have no `nbf`); positive
    /// gives a not-yet-valid token.
    pub not_before_in_seconds: Option<i64>,
    /// Default: how the pool signs (RS256, or HS256 when it uses a shared secret).
    pub algorithm: Option<SsoTokenAlgorithm>,
    /// The HS256 secret; default the pool's own (required when the pool signs RS256).
    pub secret: Option<String>,
}

impl Example for MintSsoToken {
    fn example() -> Self {
        Self {
            email: EXAMPLE_EMAIL.into(),
            token_use: Some(SsoTokenUse::Id),
            issuer: None,
            audience: None,
            expires_in_seconds: Some(-60),
            not_before_in_seconds: None,
            algorithm: Some(SsoTokenAlgorithm::Rs256),
            secret: None,
        }
    }
}

/// A minted token and what it says.
#[derive(Object, Debug, Clone)]
#[oai(rename = "MintedSsoToken", rename_all = "camelCase", example)]
pub struct MintedSsoToken {
    /// The signed JWT.
    pub token: String,
    pub token_use: SsoTokenUse,
    pub algorithm: SsoTokenAlgorithm,
    pub issuer: String,
    pub audience: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub not_before: Option<DateTime<Utc>>,
}

impl Example for MintedSsoToken {
    fn example() -> Self {
        Self {
            token: "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJzdWIiOiI0ZjFiN2MzZSJ9.c2lnbmF0dXJl"
                .into(),
            token_use: SsoTokenUse::Id,
            algorithm: SsoTokenAlgorithm::Rs256,
            issuer: "http://127.0.0.1:8080/sim/sso/eu-west-1_BoxOffice".into(),
            audience: "3n4b5urk1ft4fl3mg5e62d9ado".into(),
            issued_at: example_time(),
            expires_at: example_time() - TimeDelta::seconds(60),
            not_before: None,
        }
    }
}

/// Why a control request was refused.
#[derive(Object, Debug, Clone)]
#[oai(rename = "SsoControlError", example)]
pub struct SsoControlError {
    /// A stable code: `invalid_request`, `invalid_email`, `invalid_password`, `user_exists`,
    /// `user_not_found`, `secret_required`, `out_of_range`, `signing_failed`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

impl SsoControlError {
    fn new(error: &str, message: impl Into<String>) -> Json<Self> {
        Json(Self {
            error: error.to_owned(),
            message: message.into(),
        })
    }
}

impl Example for SsoControlError {
    fn example() -> Self {
        Self {
            error: "user_not_found".into(),
            message: format!("No user with email {EXAMPLE_EMAIL}"),
        }
    }
}

/// A request body poem-openapi could not parse, in this surface's error format.
fn invalid_request(error: poem::Error) -> Json<SsoControlError> {
    SsoControlError::new("invalid_request", error.to_string())
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "create_user_bad_request")]
pub enum CreateSsoUserResponse {
    /// The user exists, confirmed, with a verified email.
    #[oai(status = 201)]
    Created(Json<SsoUser>),
    /// `invalid_request`, `invalid_email` or `invalid_password` (the pool's policy).
    #[oai(status = 400)]
    BadRequest(Json<SsoControlError>),
    /// `user_exists`: a user already has this email.
    #[oai(status = 409)]
    Conflict(Json<SsoControlError>),
}

fn create_user_bad_request(error: poem::Error) -> CreateSsoUserResponse {
    CreateSsoUserResponse::BadRequest(invalid_request(error))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "user_codes_bad_request")]
pub enum SsoUserCodesResponse {
    /// The user's pending codes.
    #[oai(status = 200)]
    Ok(Json<SsoUserCodes>),
    /// `invalid_request`.
    #[oai(status = 400)]
    BadRequest(Json<SsoControlError>),
    /// `user_not_found`: no user with this email.
    #[oai(status = 404)]
    NotFound(Json<SsoControlError>),
}

fn user_codes_bad_request(error: poem::Error) -> SsoUserCodesResponse {
    SsoUserCodesResponse::BadRequest(invalid_request(error))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "mint_bad_request")]
pub enum MintSsoTokenResponse {
    /// The token.
    #[oai(status = 201)]
    Created(Json<MintedSsoToken>),
    /// `invalid_request`, `secret_required` (HS256 asked of an RS256 pool without a
    /// secret) or `out_of_range` (an offset beyond ten years).
    #[oai(status = 400)]
    BadRequest(Json<SsoControlError>),
    /// `user_not_found`: no user with this email.
    #[oai(status = 404)]
    NotFound(Json<SsoControlError>),
    /// `signing_failed`: the simulator could not sign (never caused by the request).
    #[oai(status = 500)]
    Failed(Json<SsoControlError>),
}

fn mint_bad_request(error: poem::Error) -> MintSsoTokenResponse {
    MintSsoTokenResponse::BadRequest(invalid_request(error))
}

/// The SSO simulator's control surface, for the host's control OpenAPI service (which
/// mounts it at `/sim`, so its paths are `/sim/control/sso/...`).
pub struct SsoControlApi {
    simulator: SsoSimulator,
}

impl SsoControlApi {
    pub(crate) fn new(simulator: SsoSimulator) -> Self {
        Self { simulator }
    }
}

#[OpenApi(prefix_path = "/control/sso", tag = "SsoControlTag::SsoControl")]
impl SsoControlApi {
    /// List the pool's users
    ///
    /// Every user of the simulated Cognito pool, in sign-up order, with status and
    /// attributes (never passwords).
    #[oai(path = "/users", method = "get", operation_id = "listSsoUsers")]
    async fn list_users(&self) -> Json<Vec<SsoUser>> {
        Json(
            self.simulator
                .lock_pool()
                .users()
                .into_iter()
                .map(SsoUser::from)
                .collect(),
        )
    }

    /// Create a confirmed user
    ///
    /// As an administrator would: the user is confirmed and its email verified, so it can
    /// sign in at once with `InitiateAuth`. The password must satisfy the pool's policy.
    #[oai(path = "/users", method = "post", operation_id = "createSsoUser")]
    async fn create_user(&self, body: Json<CreateSsoUser>) -> CreateSsoUserResponse {
        let request = body.0;
        let email = request.email.clone();
        let new_user = NewUser {
            email: request.email,
            password: request.password,
            given_name: request.given_name.filter(|name| !name.is_empty()),
            family_name: request.family_name.filter(|name| !name.is_empty()),
        };
        let now = self.simulator.now();
        let mut pool = self.simulator.lock_pool();
        match pool.create_confirmed(new_user, now) {
            Ok(user) => CreateSsoUserResponse::Created(Json(SsoUser::from(user))),
            Err(AdminCreateError::InvalidEmail) => CreateSsoUserResponse::BadRequest(
                SsoControlError::new("invalid_email", format!("{email} is not an email address")),
            ),
            Err(AdminCreateError::InvalidPassword(reason)) => {
                CreateSsoUserResponse::BadRequest(SsoControlError::new("invalid_password", reason))
            }
            Err(AdminCreateError::Exists) => CreateSsoUserResponse::Conflict(SsoControlError::new(
                "user_exists",
                format!("A user with email {email} already exists"),
            )),
        }
    }

    /// Read a user's pending codes
    ///
    /// The codes the pool would have emailed: the sign-up confirmation code (for
    /// `ConfirmSignUp`) and the password reset code (for `ConfirmForgotPassword`), with
    /// their expiry on the host's clock. Lets a test confirm without a mailbox.
    #[oai(
        path = "/users/:email/codes",
        method = "get",
        operation_id = "getSsoUserCodes"
    )]
    async fn user_codes(
        &self,
        /// The user's email (case-insensitive).
        email: Path<String>,
    ) -> SsoUserCodesResponse {
        let pool = self.simulator.lock_pool();
        match pool.find(&email.0) {
            Some(user) => SsoUserCodesResponse::Ok(Json(SsoUserCodes {
                email: user.email.clone(),
                status: user.status.into(),
                confirmation_code: user.sign_up_code.as_ref().map(SsoPendingCode::from),
                password_reset_code: user.password_reset_code.as_ref().map(SsoPendingCode::from),
            })),
            None => SsoUserCodesResponse::NotFound(user_not_found(&email.0)),
        }
    }

    /// Mint a token for a user
    ///
    /// Signs an id or access token for an existing user, with Cognito's claims and
    /// optional overrides: `issuer`, `audience`, `expiresInSeconds` (zero or negative: already
    /// expired), `notBeforeInSeconds` (adds `nbf`), `algorithm` (`RS256` with the pool's
    /// key, `HS256` with `secret`). Tests use it for expired, not-yet-valid,
    /// foreign-issuer, wrong-audience and wrongly signed tokens. The token starts a
    /// session of its own, which `GlobalSignOut` revokes like any other.
    #[oai(path = "/tokens", method = "post", operation_id = "mintSsoToken")]
    async fn mint_token(&self, body: Json<MintSsoToken>) -> MintSsoTokenResponse {
        let request = body.0;
        let now = self.simulator.now();
        let offset = |seconds: i64, what: &str| {
            TimeDelta::try_seconds(seconds)
                .filter(|_| seconds.abs() <= MAX_OFFSET_SECONDS)
                .and_then(|delta| now.checked_add_signed(delta))
                .ok_or_else(|| {
                    MintSsoTokenResponse::BadRequest(SsoControlError::new(
                        "out_of_range",
                        format!("{what} must be within ten years ({MAX_OFFSET_SECONDS} seconds) either way"),
                    ))
                })
        };
        let expires_at = match request.expires_in_seconds {
            Some(seconds) => match offset(seconds, "expiresInSeconds") {
                Ok(at) => at,
                Err(response) => return response,
            },
            None => now + self.simulator.token_ttl(),
        };
        let not_before = match request
            .not_before_in_seconds
            .map(|seconds| offset(seconds, "notBeforeInSeconds"))
        {
            Some(Ok(at)) => Some(at),
            Some(Err(response)) => return response,
            None => None,
        };
        let signer = self.simulator.signer();
        let (algorithm, sign_with) = match request.algorithm {
            None => match signer.pool_default() {
                SignWith::Rs256 => (SsoTokenAlgorithm::Rs256, SignWith::Rs256),
                hs256 @ SignWith::Hs256 { .. } => (SsoTokenAlgorithm::Hs256, hs256),
            },
            Some(SsoTokenAlgorithm::Rs256) => (SsoTokenAlgorithm::Rs256, SignWith::Rs256),
            Some(SsoTokenAlgorithm::Hs256) => {
                match request.secret.as_deref().or(signer.shared_secret()) {
                    Some(secret) if !secret.is_empty() => {
                        (SsoTokenAlgorithm::Hs256, SignWith::Hs256 { secret })
                    }
                    _ => {
                        return MintSsoTokenResponse::BadRequest(SsoControlError::new(
                            "secret_required",
                            "HS256 needs a secret: this pool signs with RS256 and has none",
                        ));
                    }
                }
            }
        };
        let issuer = request.issuer.unwrap_or_else(|| self.simulator.issuer());
        let audience = request
            .audience
            .unwrap_or_else(|| self.simulator.config().app_client_id.clone());
        let token_use = request.token_use.unwrap_or_default();

        let mut pool = self.simulator.lock_pool();
        let Some(user) = pool.find(&request.email).cloned() else {
            return MintSsoTokenResponse::NotFound(user_not_found(&request.email));
        };
        let session = pool.start_session(&user.sub, now, false);
        drop(pool);
        let grant = TokenGrant {
            user: &user,
            session: &session,
            issuer: &issuer,
            audience: &audience,
            issued_at: now,
            expires_at,
            not_before,
        };
        let signed = match token_use {
            SsoTokenUse::Id => signer.sign(&grant.id_claims(), sign_with),
            SsoTokenUse::Access => signer.sign(&grant.access_claims(), sign_with),
        };
        match signed {
            Ok(token) => MintSsoTokenResponse::Created(Json(MintedSsoToken {
                token,
                token_use,
                algorithm,
                issuer,
                audience,
                issued_at: now,
                expires_at,
                not_before,
            })),
            Err(error) => MintSsoTokenResponse::Failed(SsoControlError::new(
                "signing_failed",
                error.to_string(),
            )),
        }
    }
}

fn user_not_found(email: &str) -> Json<SsoControlError> {
    SsoControlError::new("user_not_found", format!("No user with email {email}"))
}

/// A fixed instant for examples, so the published document never changes by itself.
fn example_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}
