//! The CloudPay façade as a client sees it: paths under the façade's base URL, and the four
//! ways a request carries who the caller is.

use reqwest::Method;
use serde_json::Value;
use url::Url;

use crate::config::join;
use crate::http::{Exchange, HttpClient, Request};
use crate::step::Step;

/// The `.auth` cookie (`/api/v1/session/setcookie`).
pub const AUTH_COOKIE: &str = ".auth";
/// The cookie `/sso/start` sets, as it sets it.
pub const THIRD_PARTY_COOKIE: &str = "ThirdPartyAuthentication";
/// The same cookie as CloudPay's reference spells it.
pub const THIRD_PARTY_COOKIE_LOWERCASE: &str = "thirdpartyauthentication";

/// A credential in one of CloudPay's carriers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Query `apisessionid`: the `AuthenticationToken` of session start.
    SessionId(String),
    /// Query `apijwttoken`: the SSO provider's id token.
    JwtToken(String),
    /// Cookie `.auth`: a session id.
    AuthCookie(String),
    /// Cookie `ThirdPartyAuthentication` (or its lower-case spelling): an SSO id token.
    ThirdPartyCookie { name: &'static str, token: String },
}

impl Credential {
    fn apply(&self, request: Request) -> Request {
        match self {
            Credential::SessionId(id) => request.query("apisessionid", id),
            Credential::JwtToken(token) => request.query("apijwttoken", token),
            Credential::AuthCookie(id) => request.cookie(AUTH_COOKIE, id),
            Credential::ThirdPartyCookie { name, token } => request.cookie(name, token),
        }
    }

    /// How it travels, for messages.
    pub fn carrier(&self) -> &'static str {
        match self {
            Credential::SessionId(_) => "query apisessionid",
            Credential::JwtToken(_) => "query apijwttoken",
            Credential::AuthCookie(_) => "cookie .auth",
            Credential::ThirdPartyCookie { name, .. } => {
                if *name == THIRD_PARTY_COOKIE {
                    "cookie ThirdPartyAuthentication"
                } else {
                    "cookie thirdpartyauthentication"
                }
            }
        }
    }
}

/// Session start with email and password, or with an SSO id token.
#[derive(Debug, Clone)]
pub enum Login<'a> {
    Password { email: &'a str, password: &'a str },
    IdToken(&'a str),
}

#[derive(Clone)]
pub struct CloudPayClient {
    http: HttpClient,
    base: Url,
}

/// A CloudPay request: the façade's path, optionally a credential, a `location` header.
pub struct CloudPayRequest {
    request: Request,
}

impl CloudPayRequest {
    pub fn credential(mut self, credential: &Credential) -> Self {
        self.request = credential.apply(self.request);
        self
    }

    pub fn maybe_credential(self, credential: Option<&Credential>) -> Self {
        match credential {
            Some(credential) => self.credential(credential),
            None => self,
        }
    }

    /// The caller's country, as CloudPay reads it.
    pub fn location(mut self, country: &str) -> Self {
        self.request = self.request.header("location", country);
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.query(name, value);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.cookie(name, value);
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.request = self.request.json(body);
        self
    }

    pub fn body(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.request = self.request.body(content_type, bytes);
        self
    }

    pub async fn send(self) -> Step<Exchange> {
        self.request.send().await
    }
}

impl CloudPayClient {
    pub fn new(http: HttpClient, base: Url) -> Self {
        Self { http, base }
    }

    /// The façade's base URL (`http://host/cloudpay`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn url(&self, path: &str) -> Url {
        join(&self.base, path)
    }

    pub fn request(&self, method: Method, path: &str) -> CloudPayRequest {
        CloudPayRequest {
            request: self.http.request(method, self.url(path)),
        }
    }

    pub fn get(&self, path: &str) -> CloudPayRequest {
        self.request(Method::GET, path)
    }

    /// `GET /api/v1/session/start` with email and password or `apijwttoken`.
    pub fn start_session(&self, login: &Login<'_>) -> CloudPayRequest {
        let request = self.get("/api/v1/session/start");
        match login {
            Login::Password { email, password } => request
                .query("emailaddress", email)
                .query("password", password),
            Login::IdToken(token) => request.query("apijwttoken", token),
        }
    }

    /// `GET /api/v1/session/prescence` (CloudPay's spelling).
    pub async fn presence(&self, credential: Option<&Credential>) -> Step<Exchange> {
        self.get("/api/v1/session/prescence")
            .maybe_credential(credential)
            .send()
            .await
    }

    pub async fn terminate(&self, credential: &Credential) -> Step<Exchange> {
        self.get("/api/v1/session/terminate")
            .credential(credential)
            .send()
            .await
    }

    pub async fn account(&self, credential: Option<&Credential>) -> Step<Exchange> {
        self.get("/api/v1/account")
            .maybe_credential(credential)
            .send()
            .await
    }

    pub async fn patch_account(&self, credential: &Credential, body: &Value) -> Step<Exchange> {
        self.request(Method::PATCH, "/api/v1/account")
            .credential(credential)
            .json(body)
            .send()
            .await
    }
}

/// One `Set-Cookie` header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// `(name, value)` of each attribute; names as sent (compare case-insensitively).
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let attributes = parts
            .map(|part| match part.split_once('=') {
                Some((name, value)) => (name.trim().to_owned(), Some(value.trim().to_owned())),
                None => (part.trim().to_owned(), None),
            })
            .filter(|(name, _)| !name.is_empty())
            .collect();
        Some(SetCookie {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        })
    }

    /// `Some(value)` when the attribute is there (`Some(None)` for flags like `HttpOnly`).
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|(attribute, _)| attribute.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::SetCookie;

    #[test]
    fn set_cookie_reads_name_value_and_attributes() {
        let cookie =
            SetCookie::parse(".auth=abc123; Path=/; Max-Age=7200; SameSite=None; Secure; HttpOnly")
                .expect("parses");
        assert_eq!(cookie.name, ".auth");
        assert_eq!(cookie.value, "abc123");
        assert_eq!(cookie.attribute("path"), Some(Some("/")));
        assert_eq!(cookie.attribute("httponly"), Some(None));
        assert_eq!(cookie.attribute("Domain"), None);
    }
}
