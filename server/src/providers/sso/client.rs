use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::JwkSet;
use sha2::Sha256;

use super::wire::{
    AMZ_JSON, AuthParameters, AwsError, INITIATE_AUTH_TARGET, InitiateAuthRequest,
    InitiateAuthResponse,
};
use crate::providers::ProviderError;

/// A Cognito app client: where the pool's API is and which client signs users in.
#[derive(Debug, Clone)]
pub struct CognitoAppClient {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("credentials refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

#[derive(Clone)]
pub struct SsoClient {
    http: reqwest::Client,
}

impl Default for SsoClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SsoClient {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { http }
    }

    /// Sends a request and reads the whole answer; only transport failures are errors here.
    async fn exchange(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, String), ProviderError> {
        let transport = |source| ProviderError::Transport {
            url: url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(transport)?;
        Ok((status, body))
    }

    pub async fn fetch_jwks(&self, url: &str) -> Result<JwkSet, ProviderError> {
        let (status, body) = self.exchange(url, self.http.get(url)).await?;
        if !(200..300).contains(&status) {
            return Err(ProviderError::Status {
                url: url.to_owned(),
                status,
                body,
            });
        }
        serde_json::from_str(&body).map_err(|error| ProviderError::Decode {
            url: url.to_owned(),
            detail: error.to_string(),
        })
    }

    /// `InitiateAuth` with `USER_PASSWORD_AUTH`; returns the id token.
    pub async fn sign_in(
        &self,
        app: &CognitoAppClient,
        username: &str,
        password: &str,
    ) -> Result<String, SignInError> {
        let request = InitiateAuthRequest {
            auth_flow: "USER_PASSWORD_AUTH",
            client_id: &app.client_id,
            auth_parameters: AuthParameters {
                username,
                password,
                secret_hash: app
                    .client_secret
                    .as_deref()
                    .map(|secret| secret_hash(secret, username, &app.client_id)),
            },
        };
        let url = app.endpoint.clone();
        let body = serde_json::to_vec(&request).map_err(|error| ProviderError::Decode {
            url: url.clone(),
            detail: error.to_string(),
        })?;
        let (status, text) = self
            .exchange(
                &url,
                self.http
                    .post(&url)
                    .header("X-Amz-Target", INITIATE_AUTH_TARGET)
                    .header(reqwest::header::CONTENT_TYPE, AMZ_JSON)
                    .body(body),
            )
            .await?;
        if status == 400
            && let Ok(error) = serde_json::from_str::<AwsError>(&text)
        {
            return match error.short_kind() {
                "NotAuthorizedException"
                | "UserNotFoundException"
                | "UserNotConfirmedException"
                | "PasswordResetRequiredException"
                | "InvalidParameterException" => Err(SignInError::Refused(error.message)),
                _ => Err(ProviderError::Status {
                    url,
                    status: 400,
                    body: text,
                }
                .into()),
            };
        }
        if !(200..300).contains(&status) {
            return Err(ProviderError::Status {
                url,
                status,
                body: text,
            }
            .into());
        }
        let parsed: InitiateAuthResponse =
            serde_json::from_str(&text).map_err(|error| ProviderError::Decode {
                url: url.clone(),
                detail: error.to_string(),
            })?;
        match (parsed.authentication_result, parsed.challenge_name) {
            (Some(result), _) => Ok(result.id_token),
            (None, Some(challenge)) => Err(SignInError::Refused(format!(
                "the identity provider asks for the {challenge} challenge, which this login does not support"
            ))),
            (None, None) => Err(ProviderError::Decode {
                url,
                detail: "neither AuthenticationResult nor ChallengeName".into(),
            }
            .into()),
        }
    }
}

/// Cognito's `SECRET_HASH`: Base64(HMAC-SHA256(client secret, username + client id)).
fn secret_hash(secret: &str, username: &str, client_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
