//! The user pool itself: users, their codes and their sign-in sessions, and Cognito's rules
//! for them. Nothing here speaks HTTP or signs tokens; every operation takes `now` from the
//! caller, who reads it from the host's clock.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::{CognitoError, CognitoErrorType};

/// Cognito's sign-up confirmation codes are valid for 24 hours.
const SIGN_UP_CODE_VALIDITY: TimeDelta = TimeDelta::hours(24);
/// Cognito's forgot-password codes are valid for 1 hour.
const PASSWORD_RESET_CODE_VALIDITY: TimeDelta = TimeDelta::hours(1);
/// Cognito's default refresh token validity for an app client.
const REFRESH_TOKEN_VALIDITY: TimeDelta = TimeDelta::days(30);
/// Usernames (here: emails) are at most 128 characters in Cognito's API model.
const MAX_USERNAME_LENGTH: usize = 128;

/// Where a user stands in the sign-up flow (Cognito's `UserStatusType`, the values we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserStatus {
    Unconfirmed,
    Confirmed,
}

/// A code the pool "emailed" and expects back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingCode {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// A salted SHA-256 of the password: the pool never needs the password back, and a
/// listing or a debug print must not show it.
#[derive(Clone)]
struct PasswordHash {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl PasswordHash {
    fn new(password: &str) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self {
            salt,
            digest: Self::digest(&salt, password),
        }
    }

    fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn matches(&self, password: &str) -> bool {
        Self::digest(&self.salt, password) == self.digest
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A user of the pool. The pool signs users in by email, so (as in a Cognito pool whose
/// `UsernameAttributes` is `email`) the internal username is the user's `sub`, a UUID, and
/// the email is how clients name the user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub sub: String,
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email_verified: bool,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    password: PasswordHash,
    pub sign_up_code: Option<PendingCode>,
    pub password_reset_code: Option<PendingCode>,
}

impl User {
    /// Cognito's username for a pool that signs in by email: the `sub`.
    pub fn username(&self) -> &str {
        &self.sub
    }
}

/// What a new user brings: the sign-up request or the host's seed.
#[derive(Debug, Clone)]
pub(crate) struct NewUser {
    pub email: String,
    pub password: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

/// Where a code went, for `CodeDeliveryDetails`: always an email here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeDelivery {
    /// The masked address, as Cognito shows it (`j***@e***`).
    pub destination: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SignUpOutcome {
    pub sub: String,
    pub confirmed: bool,
    pub delivery: Option<CodeDelivery>,
}

/// One sign-in: every token issued from it (and from its refresh token) carries its
/// `origin_jti`, which is what a global sign-out revokes.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub sub: String,
    pub origin_jti: String,
    pub event_id: String,
    pub auth_time: DateTime<Utc>,
    pub refresh_token: Option<String>,
    pub refresh_expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// The pool's state. Callers hold it behind one lock, so each operation is atomic.
#[derive(Debug, Default)]
pub(crate) struct UserPool {
    users: HashMap<String, User>,
    sub_by_email: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    session_by_refresh_token: HashMap<String, String>,
    /// The app client's `PreventUserExistenceErrors`: when on, unknown users are answered
    /// as wrong passwords and as simulated code deliveries.
    pub prevent_user_existence_errors: bool,
}

impl UserPool {
    pub fn new(prevent_user_existence_errors: bool) -> Self {
        Self {
            prevent_user_existence_errors,
            ..Self::default()
        }
    }

    /// Users in sign-up order (the order a listing shows).
    pub fn users(&self) -> Vec<&User> {
        let mut users: Vec<&User> = self.users.values().collect();
        users.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.email.cmp(&b.email))
        });
        users
    }

    /// Finds a user by the name a client uses: the email (case-insensitively, as a pool
    /// with case-insensitive usernames does) or the internal username (`sub`).
    pub fn find(&self, username: &str) -> Option<&User> {
        let sub = self
            .sub_by_email
            .get(&username.to_lowercase())
            .map(String::as_str)
            .unwrap_or(username);
        self.users.get(sub)
    }

    fn find_mut(&mut self, username: &str) -> Option<&mut User> {
        let sub = self
            .sub_by_email
            .get(&username.to_lowercase())
            .cloned()
            .unwrap_or_else(|| username.to_owned());
        self.users.get_mut(&sub)
    }

    /// The answer to a request naming a user that does not exist, in the operations where
    /// `PreventUserExistenceErrors` does not substitute a simulated success.
    fn unknown_user(&self, legacy_message: &str) -> CognitoError {
        if self.prevent_user_existence_errors {
            CognitoError::code_mismatch()
        } else {
            CognitoError::new(CognitoErrorType::UserNotFound, legacy_message)
        }
    }

    /// `SignUp`. With `auto_confirm` the user is confirmed (and the email verified) at once,
    /// as a pre-sign-up Lambda that sets `autoConfirmUser` and `autoVerifyEmail` would.
    pub fn sign_up(
        &mut self,
        new_user: NewUser,
        auto_confirm: bool,
        now: DateTime<Utc>,
    ) -> Result<SignUpOutcome, CognitoError> {
        if !is_email(&new_user.email) {
            return Err(CognitoError::invalid_parameter(
                "Username should be an email.",
            ));
        }
        check_password_policy(&new_user.password)
            .map_err(|reason| CognitoError::new(CognitoErrorType::InvalidPassword, reason))?;
        if self.find(&new_user.email).is_some() {
            return Err(CognitoError::new(
                CognitoErrorType::UsernameExists,
                "An account with the given email already exists.",
            ));
        }
        let email = new_user.email.clone();
        let user = self.insert(new_user, auto_confirm, now);
        let delivery = user.sign_up_code.as_ref().map(|_| CodeDelivery {
            destination: mask_email(&email),
        });
        Ok(SignUpOutcome {
            sub: user.sub.clone(),
            confirmed: user.status == UserStatus::Confirmed,
            delivery,
        })
    }

    /// A confirmed user with a verified email, as an administrator creates one. The caller
    /// has checked the email, the password and that the email is free.
    fn insert(&mut self, new_user: NewUser, confirmed: bool, now: DateTime<Utc>) -> &User {
        let sub = Uuid::new_v4().to_string();
        let sign_up_code = (!confirmed).then(|| PendingCode {
            code: six_digit_code(),
            expires_at: now + SIGN_UP_CODE_VALIDITY,
        });
        let user = User {
            sub: sub.clone(),
            email: new_user.email.clone(),
            given_name: new_user.given_name,
            family_name: new_user.family_name,
            email_verified: confirmed,
            status: if confirmed {
                UserStatus::Confirmed
            } else {
                UserStatus::Unconfirmed
            },
            created_at: now,
            password: PasswordHash::new(&new_user.password),
            sign_up_code,
            password_reset_code: None,
        };
        self.sub_by_email
            .insert(new_user.email.to_lowercase(), sub.clone());
        self.users.entry(sub).or_insert(user)
    }

    /// Creates a confirmed user (the host's seeds and the control surface).
    pub fn create_confirmed(
        &mut self,
        new_user: NewUser,
        now: DateTime<Utc>,
    ) -> Result<&User, AdminCreateError> {
        if !is_email(&new_user.email) {
            return Err(AdminCreateError::InvalidEmail);
        }
        check_password_policy(&new_user.password).map_err(AdminCreateError::InvalidPassword)?;
        if self.find(&new_user.email).is_some() {
            return Err(AdminCreateError::Exists);
        }
        Ok(self.insert(new_user, true, now))
    }

    /// `ConfirmSignUp`.
    pub fn confirm_sign_up(
        &mut self,
        username: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CognitoError> {
        let unknown = self.unknown_user("Username/client id combination not found.");
        let user = self.find_mut(username).ok_or(unknown)?;
        if user.status == UserStatus::Confirmed {
            return Err(CognitoError::not_authorized(
                "User cannot be confirmed. Current status is CONFIRMED",
            ));
        }
        let pending = user
            .sign_up_code
            .as_ref()
            .ok_or_else(CognitoError::expired_code)?;
        check_code(pending, code, now)?;
        user.status = UserStatus::Confirmed;
        user.email_verified = true;
        user.sign_up_code = None;
        Ok(())
    }

    /// `ResendConfirmationCode`: a fresh code replaces the old one.
    pub fn resend_confirmation_code(
        &mut self,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeDelivery, CognitoError> {
        if self.prevent_user_existence_errors && self.find(username).is_none() {
            return Ok(CodeDelivery {
                destination: mask_email(username),
            });
        }
        let user = self.find_mut(username).ok_or_else(|| {
            CognitoError::new(
                CognitoErrorType::UserNotFound,
                "Username/client id combination not found.",
            )
        })?;
        if user.status == UserStatus::Confirmed {
            return Err(CognitoError::invalid_parameter(
                "User is already confirmed.",
            ));
        }
        user.sign_up_code = Some(PendingCode {
            code: six_digit_code(),
            expires_at: now + SIGN_UP_CODE_VALIDITY,
        });
        Ok(CodeDelivery {
            destination: mask_email(&user.email),
        })
    }

    /// The password check of `USER_PASSWORD_AUTH`, then a new session.
    pub fn sign_in(
        &mut self,
        username: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(User, Session), CognitoError> {
        let Some(user) = self.find(username) else {
            return Err(if self.prevent_user_existence_errors {
                CognitoError::incorrect_credentials()
            } else {
                CognitoError::new(CognitoErrorType::UserNotFound, "User does not exist.")
            });
        };
        // The password is checked before the status, so an unconfirmed account is only
        // revealed to someone who knows its password (as Cognito does).
        if !user.password.matches(password) {
            return Err(CognitoError::incorrect_credentials());
        }
        if user.status == UserStatus::Unconfirmed {
            return Err(CognitoError::new(
                CognitoErrorType::UserNotConfirmed,
                "User is not confirmed.",
            ));
        }
        let user = user.clone();
        let session = self.start_session(&user.sub, now, true);
        Ok((user, session))
    }

    /// Opens a session for `sub`; with `with_refresh_token` it also gets a refresh token
    /// (sign-ins do; tokens minted by the control surface do not).
    pub fn start_session(
        &mut self,
        sub: &str,
        now: DateTime<Utc>,
        with_refresh_token: bool,
    ) -> Session {
        let refresh_token = with_refresh_token.then(opaque_refresh_token);
        let session = Session {
            sub: sub.to_owned(),
            origin_jti: Uuid::new_v4().to_string(),
            event_id: Uuid::new_v4().to_string(),
            auth_time: now,
            refresh_token: refresh_token.clone(),
            refresh_expires_at: now + REFRESH_TOKEN_VALIDITY,
            revoked: false,
        };
        if let Some(token) = refresh_token {
            self.session_by_refresh_token
                .insert(token, session.origin_jti.clone());
        }
        self.sessions
            .insert(session.origin_jti.clone(), session.clone());
        session
    }

    /// `REFRESH_TOKEN_AUTH`: the session the refresh token belongs to, if it may still
    /// issue tokens.
    pub fn refresh(
        &self,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<(User, Session), CognitoError> {
        let invalid = || CognitoError::not_authorized("Invalid Refresh Token");
        let session = self
            .session_by_refresh_token
            .get(refresh_token)
            .and_then(|origin_jti| self.sessions.get(origin_jti))
            .ok_or_else(invalid)?;
        if session.revoked {
            return Err(CognitoError::not_authorized(
                "Refresh Token has been revoked",
            ));
        }
        if now >= session.refresh_expires_at {
            return Err(CognitoError::not_authorized("Refresh Token has expired"));
        }
        let user = self.users.get(&session.sub).ok_or_else(invalid)?;
        Ok((user.clone(), session.clone()))
    }

    /// The user an unexpired, correctly signed access token speaks for, unless its session
    /// was signed out. A session the pool does not know (a token from before a restart)
    /// is accepted as Cognito accepts any token it signed and did not revoke.
    pub fn access_token_user(&self, sub: &str, origin_jti: &str) -> Result<&User, CognitoError> {
        if self
            .sessions
            .get(origin_jti)
            .is_some_and(|session| session.revoked)
        {
            return Err(CognitoError::not_authorized(
                "Access Token has been revoked",
            ));
        }
        self.users.get(sub).ok_or_else(|| {
            CognitoError::new(CognitoErrorType::UserNotFound, "User does not exist.")
        })
    }

    /// `GlobalSignOut`: every session of the user is revoked, with its refresh token and
    /// every access token it issued. Revoked sessions are kept, so a later use of one of
    /// their tokens is told it was revoked rather than that it is unknown.
    pub fn global_sign_out(&mut self, sub: &str) {
        for session in self
            .sessions
            .values_mut()
            .filter(|session| session.sub == sub)
        {
            session.revoked = true;
        }
    }

    /// `ForgotPassword`: a reset code goes to the user's verified email.
    pub fn forgot_password(
        &mut self,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeDelivery, CognitoError> {
        if self.prevent_user_existence_errors && self.find(username).is_none() {
            return Ok(CodeDelivery {
                destination: mask_email(username),
            });
        }
        let user = self.find_mut(username).ok_or_else(|| {
            CognitoError::new(
                CognitoErrorType::UserNotFound,
                "Username/client id combination not found.",
            )
        })?;
        if !user.email_verified {
            return Err(CognitoError::invalid_parameter(
                "Cannot reset password for the user as there is no registered/verified email or phone_number",
            ));
        }
        user.password_reset_code = Some(PendingCode {
            code: six_digit_code(),
            expires_at: now + PASSWORD_RESET_CODE_VALIDITY,
        });
        Ok(CodeDelivery {
            destination: mask_email(&user.email),
        })
    }

    /// `ConfirmForgotPassword`. The code is checked first and kept when the new password
    /// is refused, so the user can retry with a better password.
    pub fn confirm_forgot_password(
        &mut self,
        username: &str,
        code: &str,
        new_password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CognitoError> {
        let unknown = self.unknown_user("Username/client id combination not found.");
        let user = self.find_mut(username).ok_or(unknown)?;
        let pending = user
            .password_reset_code
            .as_ref()
            .ok_or_else(CognitoError::expired_code)?;
        check_code(pending, code, now)?;
        check_password_policy(new_password)
            .map_err(|reason| CognitoError::new(CognitoErrorType::InvalidPassword, reason))?;
        user.password = PasswordHash::new(new_password);
        user.password_reset_code = None;
        Ok(())
    }
}

/// Why the host could not create a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminCreateError {
    InvalidEmail,
    InvalidPassword(String),
    Exists,
}

fn check_code(pending: &PendingCode, code: &str, now: DateTime<Utc>) -> Result<(), CognitoError> {
    if now >= pending.expires_at {
        return Err(CognitoError::expired_code());
    }
    if pending.code != code.trim() {
        return Err(CognitoError::code_mismatch());
    }
    Ok(())
}

/// The pool's password policy: at least 8 characters with an upper-case letter, a
/// lower-case letter and a digit. (Cognito's own default also requires a symbol; this pool
/// is configured with `RequireSymbols: false`.) The messages are Cognito's.
pub(crate) fn check_password_policy(password: &str) -> Result<(), String> {
    const PREFIX: &str = "Password did not conform with policy: ";
    if password.chars().count() < 8 {
        return Err(format!("{PREFIX}Password not long enough"));
    }
    if !password.chars().any(char::is_lowercase) {
        return Err(format!("{PREFIX}Password must have lowercase characters"));
    }
    if !password.chars().any(char::is_uppercase) {
        return Err(format!("{PREFIX}Password must have uppercase characters"));
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("{PREFIX}Password must have numeric characters"));
    }
    Ok(())
}

/// A deliberately plain check (one `@`, something on both sides, a dot in the domain, no
/// spaces), as lenient as Cognito's own.
pub(crate) fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && email.chars().count() <= MAX_USERNAME_LENGTH
}

/// Cognito shows where a code went without showing the address: `jane@example.com` →
/// `j***@e***`.
pub(crate) fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first = |part: &str| part.chars().next().map(String::from).unwrap_or_default();
    format!("{}***@{}***", first(local), first(domain))
}

fn six_digit_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// Opaque to clients, as Cognito's (encrypted) refresh tokens are.
fn opaque_refresh_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default()
    }

    fn jane() -> NewUser {
        NewUser {
            email: "Jane@Example.com".into(),
            password: "Passw0rdOk".into(),
            given_name: Some("Jane".into()),
            family_name: None,
        }
    }

    #[test]
    fn password_policy_names_the_first_missing_rule() {
        assert!(
            check_password_policy("Short1")
                .unwrap_err()
                .ends_with("Password not long enough")
        );
        assert!(
            check_password_policy("ALLUPPER123")
                .unwrap_err()
                .ends_with("lowercase characters")
        );
        assert!(
            check_password_policy("alllower123")
                .unwrap_err()
                .ends_with("uppercase characters")
        );
        assert!(
            check_password_policy("NoDigitsHere")
                .unwrap_err()
                .ends_with("numeric characters")
        );
        assert!(check_password_policy("Passw0rdOk").is_ok());
    }

    #[test]
    fn masks_like_cognito() {
        assert_eq!(mask_email("jane@example.com"), "j***@e***");
        assert_eq!(mask_email("nobody"), "n***@***");
    }

    #[test]
    fn emails_are_case_insensitive_usernames() {
        let mut pool = UserPool::new(true);
        let outcome = pool
            .sign_up(jane(), false, at(0))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!outcome.confirmed);
        assert!(pool.find("jane@example.com").is_some());
        assert!(pool.find(&outcome.sub).is_some());
        let again = pool.sign_up(jane(), false, at(1)).unwrap_err();
        assert_eq!(again.error_type, CognitoErrorType::UsernameExists);
    }

    #[test]
    fn codes_expire_on_the_callers_clock() {
        let mut pool = UserPool::new(true);
        pool.sign_up(jane(), false, at(0))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let code = pool
            .find("jane@example.com")
            .and_then(|u| u.sign_up_code.clone())
            .map(|c| c.code);
        let code = code.unwrap_or_default();
        let late = at(SIGN_UP_CODE_VALIDITY.num_seconds());
        assert_eq!(
            pool.confirm_sign_up("jane@example.com", &code, late)
                .unwrap_err()
                .error_type,
            CognitoErrorType::ExpiredCode
        );
        assert!(
            pool.confirm_sign_up("jane@example.com", &code, at(60))
                .is_ok()
        );
    }

    #[test]
    fn global_sign_out_revokes_every_session_of_the_user() {
        let mut pool = UserPool::new(true);
        pool.sign_up(jane(), true, at(0))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (user, first) = pool
            .sign_in("jane@example.com", "Passw0rdOk", at(1))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (_, second) = pool
            .sign_in("jane@example.com", "Passw0rdOk", at(2))
            .unwrap_or_else(|e| panic!("{e:?}"));
        pool.global_sign_out(&user.sub);
        for session in [first, second] {
            let token = session.refresh_token.unwrap_or_default();
            assert_eq!(
                pool.refresh(&token, at(3)).unwrap_err().message,
                "Refresh Token has been revoked"
            );
            assert_eq!(
                pool.access_token_user(&user.sub, &session.origin_jti)
                    .unwrap_err()
                    .message,
                "Access Token has been revoked"
            );
        }
        let (_, fresh) = pool
            .sign_in("jane@example.com", "Passw0rdOk", at(3))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(pool.access_token_user(&user.sub, &fresh.origin_jti).is_ok());
    }
}
