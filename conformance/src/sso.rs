//! The identity provider as the suite uses it: Cognito's own JSON 1.1 API (`SignUp`,
//! `InitiateAuth`) at the configured SSO endpoint, the JWKS, and, in simulator mode, the
//! SSO simulator's control that mints tokens with chosen flaws.

use serde::Serialize;
use serde_json::{Value, json};
use url::Url;

use crate::http::{Exchange, HttpClient};
use crate::step::{Step, fail};

const AMZ_JSON: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";

/// What `InitiateAuth` (`USER_PASSWORD_AUTH`) gives.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub id_token: String,
    pub access_token: String,
    /// Seconds until both tokens expire.
    pub expires_in: i64,
}

#[derive(Clone)]
pub struct SsoClient {
    http: HttpClient,
    endpoint: Url,
    app_client_id: String,
    jwks_url: Option<Url>,
}

impl SsoClient {
    pub fn new(
        http: HttpClient,
        endpoint: Url,
        app_client_id: String,
        jwks_url: Option<Url>,
    ) -> Self {
        Self {
            http,
            endpoint,
            app_client_id,
            jwks_url,
        }
    }

    async fn call(&self, operation: &str, body: &Value) -> Step<Exchange> {
        // Cognito's endpoint is the root path: `POST /`, never the bare base without slash.
        let mut url = self.endpoint.clone();
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        self.http
            .post(url)
            .header("X-Amz-Target", &format!("{TARGET_PREFIX}{operation}"))
            .body(AMZ_JSON, body.to_string().into_bytes())
            .send()
            .await
    }

    /// Registers a user; the pool must confirm at once (`UserConfirmed: true`), or the user
    /// could not sign in without reading a mailbox.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        given_name: &str,
        family_name: &str,
    ) -> Step<()> {
        let exchange = self
            .call(
                "SignUp",
                &json!({
                    "ClientId": self.app_client_id,
                    "Username": email,
                    "Password": password,
                    "UserAttributes": [
                        {"Name": "email", "Value": email},
                        {"Name": "given_name", "Value": given_name},
                        {"Name": "family_name", "Value": family_name},
                    ],
                }),
            )
            .await?;
        let body = exchange.expect_json(200)?;
        if body["UserConfirmed"] != json!(true) {
            return Err(exchange.fail(
                "SignUp did not confirm the user at once, though sso.autoConfirm says it would",
            ));
        }
        Ok(())
    }

    /// Signs in with email and password.
    pub async fn sign_in(&self, email: &str, password: &str) -> Step<SignedIn> {
        let exchange = self
            .call(
                "InitiateAuth",
                &json!({
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "ClientId": self.app_client_id,
                    "AuthParameters": {"USERNAME": email, "PASSWORD": password},
                }),
            )
            .await?;
        let body = exchange.expect_json(200)?;
        let result = &body["AuthenticationResult"];
        let text = |name: &str| {
            result[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| exchange.fail(format!("AuthenticationResult.{name} is missing")))
        };
        Ok(SignedIn {
            id_token: text("IdToken")?,
            access_token: text("AccessToken")?,
            expires_in: result["ExpiresIn"].as_i64().unwrap_or(3600),
        })
    }

    /// The pool's public keys, when the configuration names them.
    pub async fn jwks(&self) -> Step<Option<Value>> {
        let Some(url) = &self.jwks_url else {
            return Ok(None);
        };
        let exchange = self.http.get(url.clone()).send().await?;
        exchange.expect_json(200).map(Some)
    }
}

/// A token to mint: the SSO simulator's `MintSsoToken`. Unset members take the pool's
/// defaults, so `TokenRequest::for_user(email)` is the token a sign-in would give.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before_in_seconds: Option<i64>,
    /// `RS256` or `HS256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl TokenRequest {
    pub fn for_user(email: &str) -> Self {
        Self {
            email: email.to_owned(),
            ..Self::default()
        }
    }
}

/// The SSO simulator's `POST /sim/control/sso/tokens`.
#[derive(Clone)]
pub struct TokenMinter {
    http: HttpClient,
    url: Url,
}

impl TokenMinter {
    pub fn new(http: HttpClient, url: Url) -> Self {
        Self { http, url }
    }

    pub async fn mint(&self, request: &TokenRequest) -> Step<String> {
        let body = serde_json::to_value(request)
            .map_err(|error| fail(format!("cannot encode the token request: {error}")))?;
        let exchange = self.http.post(self.url.clone()).json(&body).send().await?;
        let minted = exchange.expect_json(201)?;
        minted["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| exchange.fail("the minted token is missing"))
    }
}
