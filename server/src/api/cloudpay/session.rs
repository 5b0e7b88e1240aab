//! Session start (SSO and email/password), presence, cookies, terminate, ksession.

use std::sync::Arc;

use base64::Engine;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::CloudPay;
use super::auth::{CloudPayAuth, OptionalCloudPayAuth};
use super::error::CloudPayError;
use super::wire::{KSessionModel, LoginPayload, SessionModel};
use crate::core::{KSessionOutcome, LoginCredential, Presence, StartedSession};

#[derive(Tags)]
enum SessionTags {
    /// Single sign-on with the third-party (SSO) JWT.
    #[oai(rename = "SSO")]
    Sso,
    /// CloudPay sessions: start, presence, terminate; each live session counts toward the
    /// device lock.
    Session,
}

/// How long the `ThirdPartyAuthentication` and `.auth` cookies last, as CloudPay sets them.
const COOKIE_MAX_AGE_SECONDS: u32 = 2 * 60 * 60;

fn cookie(name: &str, value: &str) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={COOKIE_MAX_AGE_SECONDS}; SameSite=None; Secure; HttpOnly"
    )
}

#[derive(ApiResponse)]
enum SsoStartResponse {
    /// The session started; the cookie carries the JWT for later calls.
    #[oai(status = 200)]
    Started(#[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
enum RedirectResponse {
    /// Redirect to the target, with the cookie set.
    #[oai(status = 302)]
    Found(
        #[oai(header = "Location")] String,
        #[oai(header = "Set-Cookie")] String,
    ),
}

pub(crate) struct SessionApi(pub(crate) Arc<CloudPay>);

impl SessionApi {
    fn started_model(&self, started: StartedSession) -> SessionModel {
        let presence = Presence {
            customer: Some(started.customer),
            session: Some(started.session),
            standing: started.standing,
        };
        let mut model = self.model(&presence);
        model.authentication_token = presence.session.map(|session| session.id);
        model
    }

    fn model(&self, presence: &Presence) -> SessionModel {
        SessionModel::from_presence(
            self.0.core.clock().now(),
            self.0.settings.default_country.code(),
            presence,
        )
    }

    async fn sso_start(
        &self,
        token: Option<String>,
        alias: Option<String>,
        location: Option<String>,
    ) -> Result<String, CloudPayError> {
        let present = |token: Option<String>| {
            token
                .map(|token| token.trim().to_owned())
                .filter(|token| !token.is_empty())
        };
        let token = present(token).or_else(|| present(alias)).ok_or_else(|| {
            CloudPayError::bad_request("token is required: the third-party SSO JWT")
        })?;
        let country = self.0.country(location.as_deref())?;
        self.0
            .core
            .start_session(
                LoginCredential::ThirdPartyToken(token.clone()),
                country.as_ref(),
            )
            .await?;
        Ok(cookie("ThirdPartyAuthentication", &token))
    }
}

fn decode_redirect(redirect: &str) -> Option<String> {
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let bytes = engines
        .iter()
        .find_map(|engine| engine.decode(redirect).ok())?;
    let text = String::from_utf8(bytes).ok()?;
    let (key, target) = text.split_once(':')?;
    key.eq_ignore_ascii_case("returnurl")
        .then(|| target.trim().to_owned())
}

#[OpenApi]
impl SessionApi {
    /// Start a SSO session
    ///
    /// Verifies the third-party JWT (signature, issuer, audience, `exp`, `nbf`), creates the
    /// customer on first sight from the token's claims, starts a CloudPay session that counts
    /// toward the device lock, and sets the `ThirdPartyAuthentication` cookie (2 hours).
    /// The fourth concurrent session of a customer (by default) is refused with 403.
    #[oai(
        path = "/sso/start",
        method = "get",
        tag = "SessionTags::Sso",
        operation_id = "generate-sso-session"
    )]
    async fn generate_sso_session(
        &self,
        /// The third-party SSO token.
        token: Query<Option<String>>,
        /// The same token under the name the integration guide uses.
        apijwttoken: Query<Option<String>>,
        /// The caller's country (ISO 3166-1 alpha-2).
        location: Header<Option<String>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<SsoStartResponse, CloudPayError> {
        let cookie = self.sso_start(token.0, apijwttoken.0, location.0).await?;
        Ok(SsoStartResponse::Started(cookie))
    }

    /// Start a SSO session and redirect
    ///
    /// As `/sso/start`, then redirects to the return URL encoded in `redirect`: base64 of
    /// `returnurl:<path or URL>` (e.g. `cmV0dXJudXJsOi9hY2NvdW50` for `/account`). Only
    /// paths on this host and configured hosts are allowed.
    #[oai(
        path = "/sso/start/:redirect",
        method = "get",
        tag = "SessionTags::Sso",
        operation_id = "generate-sso-session-redirect"
    )]
    async fn generate_sso_session_redirect(
        &self,
        /// Base64 of `returnurl:<target>`.
        redirect: Path<String>,
        /// The third-party SSO token.
        token: Query<Option<String>>,
        /// The same token under the name the integration guide uses.
        apijwttoken: Query<Option<String>>,
        /// The caller's country (ISO 3166-1 alpha-2).
        location: Header<Option<String>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<RedirectResponse, CloudPayError> {
        let target = decode_redirect(&redirect.0).ok_or_else(|| {
            CloudPayError::bad_request("redirect must be base64 of \"returnurl:<target>\"")
        })?;
        let target = self.0.safe_redirect(&target)?;
        let cookie = self.sso_start(token.0, apijwttoken.0, location.0).await?;
        Ok(RedirectResponse::Found(target, cookie))
    }

    /// Generate session using email and password
    ///
    /// Signs the customer in at the SSO provider (Cognito `USER_PASSWORD_AUTH`) and starts a
    /// CloudPay session; or, with `apijwttoken`, starts one for that third-party JWT. Keep
    /// `AuthenticationToken` from the answer: it is the `apisessionid` of later calls.
    #[oai(
        path = "/api/v1/session/start",
        method = "get",
        tag = "SessionTags::Session",
        operation_id = "generate-session-email-password"
    )]
    async fn generate_session_email_password(
        &self,
        /// The customer's email address.
        emailaddress: Query<Option<String>>,
        /// The customer's password.
        password: Query<Option<String>>,
        /// Instead of email and password: the third-party SSO JWT.
        apijwttoken: Query<Option<String>>,
        /// The caller's country (ISO 3166-1 alpha-2).
        location: Header<Option<String>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<SessionModel>, CloudPayError> {
        let login = match (apijwttoken.0, emailaddress.0, password.0) {
            (Some(token), _, _) => LoginCredential::ThirdPartyToken(token),
            (None, Some(email), Some(password)) => LoginCredential::Password { email, password },
            _ => {
                return Err(CloudPayError::bad_request(
                    "emailaddress and password (or apijwttoken) are required",
                ));
            }
        };
        let country = self.0.country(location.0.as_deref())?;
        let started = self.0.core.start_session(login, country.as_ref()).await?;
        Ok(Json(self.started_model(started)))
    }

    /// Generate session using payload
    ///
    /// As the GET form, with the credentials in the body: a JSON object
    /// `{"emailaddress": …, "password": …}` or the string form
    /// `"emailaddress: foo@bar.com, password: somePass"`.
    #[oai(
        path = "/api/v1/session/start",
        method = "post",
        tag = "SessionTags::Session",
        operation_id = "generate-session-payload"
    )]
    async fn generate_session_payload(
        &self,
        body: Json<LoginPayload>,
        /// The caller's country (ISO 3166-1 alpha-2).
        location: Header<Option<String>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<SessionModel>, CloudPayError> {
        let (email, password) = body.0.credentials().ok_or_else(|| {
            CloudPayError::bad_request("the body must name emailaddress and password")
        })?;
        let country = self.0.country(location.0.as_deref())?;
        let started = self
            .0
            .core
            .start_session(
                LoginCredential::Password { email, password },
                country.as_ref(),
            )
            .await?;
        Ok(Json(self.started_model(started)))
    }

    /// Validate an active session (Prescence API)
    ///
    /// Tells whether the caller has a live session (`CurrentCustomerSessionStatus` -1) or not
    /// (0, `CurrentCustomerSession` null), and what it entitles to. Each call restarts the
    /// session's idle timer. Without any credential the answer is "no session"; a tampered
    /// or expired JWT is refused with 401. The path keeps CloudPay's spelling.
    #[oai(
        path = "/api/v1/session/prescence",
        method = "get",
        tag = "SessionTags::Session",
        operation_id = "validate-active-session"
    )]
    async fn validate_active_session(
        &self,
        auth: OptionalCloudPayAuth,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<SessionModel>, CloudPayError> {
        let credential = auth.credential()?;
        let presence = self.0.core.presence(credential.as_ref()).await?;
        Ok(Json(self.model(&presence)))
    }

    /// Set the authentication cookie
    ///
    /// Puts a live session's `AuthenticationToken` in the `.auth` cookie and redirects to
    /// `callbackurl` (a path on this host or an allowed host; `/` when absent).
    #[oai(
        path = "/api/v1/session/setcookie/:authenticationToken",
        method = "get",
        tag = "SessionTags::Session",
        operation_id = "set-authentication-cookie"
    )]
    async fn set_authentication_cookie(
        &self,
        /// The `AuthenticationToken` from session start.
        #[oai(name = "authenticationToken")]
        authentication_token: Path<String>,
        /// Where to send the browser afterwards.
        callbackurl: Query<Option<String>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<RedirectResponse, CloudPayError> {
        let target = self
            .0
            .safe_redirect(callbackurl.0.as_deref().unwrap_or("/"))?;
        let session = self
            .0
            .core
            .live_session(authentication_token.0.trim())
            .await?;
        Ok(RedirectResponse::Found(
            target,
            cookie(".auth", &session.id),
        ))
    }

    /// Terminate a session
    ///
    /// Ends the caller's session and frees its slot in the device lock. Answers the session
    /// state afterwards: status 0, no session.
    #[oai(
        path = "/api/v1/session/terminate",
        method = "get",
        tag = "SessionTags::Session",
        operation_id = "terminate-session"
    )]
    async fn terminate_session(
        &self,
        auth: CloudPayAuth,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<SessionModel>, CloudPayError> {
        let credential = auth.credential()?;
        self.0.core.terminate(&credential).await?;
        Ok(Json(self.model(&Presence::default())))
    }

    /// Generate a playback session (ksession)
    ///
    /// A signed, short-lived playback session for one entry when the caller has a live
    /// session and an entitlement. `Status`: -1 granted, 0 not authenticated, 1 no
    /// subscriptions. A grant is remembered for `/api/v1/resume`.
    #[oai(
        path = "/api/v1/session/ksession",
        method = "get",
        tag = "SessionTags::Session",
        operation_id = "generate-ksession"
    )]
    async fn generate_ksession(
        &self,
        auth: OptionalCloudPayAuth,
        /// The media entry to play.
        entryid: Query<String>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<KSessionModel>, CloudPayError> {
        let credential = auth.credential()?;
        let grant = self
            .0
            .core
            .ksession(credential.as_ref(), &entryid.0)
            .await?;
        let (status, error_message) = match grant.outcome {
            KSessionOutcome::Granted => (-1, None),
            KSessionOutcome::NotAuthenticated => (0, Some("Customer is not authenticated")),
            KSessionOutcome::NoSubscriptions => (1, Some("Customer has no subscriptions")),
        };
        Ok(Json(KSessionModel {
            session: self.model(&grant.presence),
            status,
            ksession: grant.ksession,
            error_message: error_message.map(str::to_owned),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::decode_redirect;

    #[test]
    fn redirect_is_base64_of_a_returnurl() {
        assert_eq!(
            decode_redirect("cmV0dXJudXJsOi9hY2NvdW50").as_deref(),
            Some("/account")
        );
        assert_eq!(decode_redirect("not base64!"), None);
        assert_eq!(decode_redirect("aGVsbG8="), None);
    }
}
