use serde::{Deserialize, Serialize};

pub const INITIATE_AUTH_TARGET: &str = "AWSCognitoIdentityProviderService.InitiateAuth";
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InitiateAuthRequest<'a> {
    pub auth_flow: &'a str,
    pub client_id: &'a str,
    pub auth_parameters: AuthParameters<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct AuthParameters<'a> {
    pub username: &'a str,
    pub password: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InitiateAuthResponse {
    pub authentication_result: Option<AuthenticationResult>,
    pub challenge_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthenticationResult {
    pub id_token: String,
}

/// Cognito's error body: `{"__type": "NotAuthorizedException", "message": "…"}`.
#[derive(Deserialize)]
pub struct AwsError {
    #[serde(rename = "__type")]
    pub kind: String,
    #[serde(default, alias = "Message")]
    pub message: String,
}

impl AwsError {
    /// `__type` may carry a namespace prefix (`com.amazonaws…#NotAuthorizedException`).
    pub fn short_kind(&self) -> &str {
        self.kind.rsplit('#').next().unwrap_or(&self.kind)
    }
}
