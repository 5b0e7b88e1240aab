//! One HTTP exchange at a time, kept whole (status, headers, body) so that a failed check
//! can show exactly what the target answered.
//!
//! Redirects are never followed and cookies are never stored: scenarios assert on the 302s
//! and `Set-Cookie`s themselves and choose which cookie each request carries.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::step::{Step, fail};

/// Query parameters whose values never appear in reports.
const SECRET_PARAMETERS: [&str; 1] = ["password"];
/// Tokens are shown by their start only: enough to tell them apart, no more.
const SHOWN_TOKEN_CHARS: usize = 12;
/// How much of a response body a failure message quotes.
const QUOTED_BODY_CHARS: usize = 2000;

#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Self {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            // Building fails only when the TLS backend cannot initialise, which no scenario
            // can work around; say so plainly at startup.
            .expect("the HTTP client (rustls) initialises");
        Self { inner }
    }

    pub fn request(&self, method: Method, url: Url) -> Request {
        Request {
            client: self.inner.clone(),
            method,
            url,
            headers: Vec::new(),
            cookies: Vec::new(),
            body: None,
        }
    }

    pub fn get(&self, url: Url) -> Request {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: Url) -> Request {
        self.request(Method::POST, url)
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// A request being put together.
pub struct Request {
    client: reqwest::Client,
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl Request {
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(name, value);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string().into_bytes())
    }

    pub fn body(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.body = Some((content_type.to_owned(), bytes));
        self
    }

    /// Sends it; a transport failure (refused, timed out) fails the scenario.
    pub async fn send(self) -> Step<Exchange> {
        let described = describe_request(&self.method, &self.url);
        let mut builder = self.client.request(self.method.clone(), self.url.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            builder = builder.header(reqwest::header::COOKIE, cookie);
        }
        if let Some((content_type, bytes)) = self.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let response = builder
            .send()
            .await
            .map_err(|error| fail(format!("{described}: no answer: {error}")))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|error| fail(format!("{described} → {status}: unreadable body: {error}")))?;
        Ok(Exchange {
            request: described,
            url: self.url,
            status,
            headers,
            body,
        })
    }
}

/// A request and its response.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `GET /path?query`, with secrets hidden and tokens shortened.
    pub request: String,
    /// The URL asked, to resolve relative `Location`s against.
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Exchange {
    /// `GET /path → 401 {body}`: the evidence every failure message carries.
    pub fn evidence(&self) -> String {
        let mut body: String = self.body.chars().take(QUOTED_BODY_CHARS).collect();
        if body.len() < self.body.len() {
            body.push_str(" …");
        }
        if body.is_empty() {
            body = "(empty body)".into();
        }
        format!("{} → {} {}", self.request, self.status, body)
    }

    /// Fails with `what` and the evidence.
    pub fn fail(&self, what: impl std::fmt::Display) -> crate::step::Abort {
        fail(format!("{what}; {}", self.evidence()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    }

    pub fn expect_status(&self, status: u16) -> Step<&Self> {
        if self.status == status {
            Ok(self)
        } else {
            Err(self.fail(format!("expected status {status}")))
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Step<Value> {
        serde_json::from_str(&self.body)
            .map_err(|error| self.fail(format!("the body is not JSON ({error})")))
    }

    /// The status, then the body as JSON.
    pub fn expect_json(&self, status: u16) -> Step<Value> {
        self.expect_status(status)?.json()
    }
}

fn describe_request(method: &Method, url: &Url) -> String {
    let mut shown = url.path().to_owned();
    let pairs: Vec<String> = url
        .query_pairs()
        .map(|(name, value)| {
            let value = if SECRET_PARAMETERS.contains(&name.as_ref()) {
                "***".to_owned()
            } else {
                shorten_token(&value)
            };
            format!("{name}={value}")
        })
        .collect();
    if !pairs.is_empty() {
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    format!("{method} {shown}")
}

/// Long opaque values (JWTs, session ids) shortened for reports.
pub fn shorten_token(value: &str) -> String {
    if value.chars().count() > SHOWN_TOKEN_CHARS * 2 {
        let start: String = value.chars().take(SHOWN_TOKEN_CHARS).collect();
        format!("{start}…")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_hide_passwords_and_shorten_tokens() {
        let mut url = Url::parse("http://h/cloudpay/api/v1/session/start").expect("url");
        url.query_pairs_mut()
            .append_pair("emailaddress", "a@b.c")
            .append_pair("password", "hunter2")
            .append_pair("apijwttoken", &"x".repeat(100));
        let shown = describe_request(&Method::GET, &url);
        assert_eq!(
            shown,
            "GET /cloudpay/api/v1/session/start?emailaddress=a@b.c&password=***&apijwttoken=xxxxxxxxxxxx…"
        );
    }
}
