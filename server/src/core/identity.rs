//! Who is calling: third-party SSO tokens verified against the configured issuer, and
//! email/password logins exchanged for such a token at the identity provider.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::CoreError;
use crate::providers::jwks::{JwksCache, VerificationKey};
use crate::providers::sso::{CognitoAppClient, SignInError, SsoClient};

/// Where the keys that sign SSO tokens come from.
#[derive(Debug, Clone)]
pub enum SigningKeys {
    /// Asymmetric keys published as a JWKS document (Cognito and most OIDC providers).
    Jwks { url: String },
    /// A secret shared with the SSO provider (HS256).
    SharedSecret { secret: String },
}

/// Which token claims carry the customer's details.
#[derive(Debug, Clone)]
pub struct ClaimsMap {
    pub subject: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

impl Default for ClaimsMap {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            first_name: "given_name".into(),
            last_name: "family_name".into(),
            email: "email".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub issuer: String,
    /// Accepted `aud` (id tokens) or `client_id` (access tokens) values.
    pub audiences: Vec<String>,
    pub keys: SigningKeys,
    pub claims: ClaimsMap,
    pub leeway_seconds: i64,
    /// For email/password session starts; `None` when the SSO provider is not Cognito.
    pub password_login: Option<CognitoAppClient>,
}

/// The verified facts a token states about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// SHA-256 of the token, to find the session this token started.
    pub token_fingerprint: String,
}

pub struct IdentityVerifier {
    settings: IdentitySettings,
    sso: SsoClient,
    jwks: JwksCache,
}

fn refuse(reason: impl Into<String>) -> CoreError {
    CoreError::Unauthenticated(reason.into())
}

pub fn fingerprint(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl IdentityVerifier {
    pub fn new(settings: IdentitySettings, sso: SsoClient) -> Self {
        Self {
            settings,
            sso,
            jwks: JwksCache::default(),
        }
    }

    /// Verifies signature, algorithm, issuer, audience, `exp` and `nbf` (against `now`, the
    /// Clock's time, never the machine's).
    ///
    /// Invariant: a token is accepted only if signed with the configured kind of key: an
    /// HS256 token is refused when keys come from a JWKS (the HS/RS confusion attack), an
    /// RS256 token when a shared secret is configured, and `alg: none` always.
    pub async fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, CoreError> {
        let header = decode_header(token).map_err(|_| refuse("The token is not a valid JWT"))?;
        let (algorithm, key) = match &self.settings.keys {
            SigningKeys::SharedSecret { secret } => {
                if !matches!(
                    header.alg,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(refuse("The token's algorithm is not accepted"));
                }
                (
                    header.alg,
                    Arc::new((header.alg, DecodingKey::from_secret(secret.as_bytes()))),
                )
            }
            SigningKeys::Jwks { url } => {
                if !matches!(
                    header.alg,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::ES256
                        | Algorithm::ES384
                ) {
                    return Err(refuse("The token's algorithm is not accepted"));
                }
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| refuse("The token names no signing key"))?;
                let key = self.jwks_key(url, kid).await?;
                if key.0 != header.alg {
                    return Err(refuse("The token's algorithm does not match its key"));
                }
                (header.alg, key)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&self.settings.issuer]);
        let claims = decode::<Map<String, Value>>(token, &key.1, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    refuse("The token was issued by an unknown issuer")
                }
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => {
                    refuse(format!("The token lacks the {claim} claim"))
                }
                _ => refuse("The token's signature is not valid"),
            })?
            .claims;
        self.check_times(&claims, now)?;
        self.check_audience(&claims)?;
        // Cognito marks its tokens; only id tokens carry the customer's email and names.
        if let Some(token_use) = claims.get("token_use").and_then(Value::as_str)
            && token_use != "id"
        {
            return Err(refuse("Use the id token, not the access token"));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text(&self.settings.claims.subject)
            .filter(|subject| !subject.is_empty())
            .ok_or_else(|| refuse("The token lacks the subject claim"))?;
        Ok(VerifiedIdentity {
            issuer: self.settings.issuer.clone(),
            subject,
            email: text(&self.settings.claims.email).unwrap_or_default(),
            first_name: text(&self.settings.claims.first_name).unwrap_or_default(),
            last_name: text(&self.settings.claims.last_name).unwrap_or_default(),
            token_fingerprint: fingerprint(token),
        })
    }

    fn check_times(
        &self,
        claims: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let now = now.timestamp();
        let leeway = self.settings.leeway_seconds;
        let seconds = |name: &str| claims.get(name).and_then(Value::as_f64).map(|s| s as i64);
        let expires =
            seconds("exp").ok_or_else(|| refuse("The token's exp claim is not a number"))?;
        if expires.saturating_add(leeway) <= now {
            return Err(refuse("The token has expired"));
        }
        if let Some(not_before) = seconds("nbf")
            && not_before.saturating_sub(leeway) > now
        {
            return Err(refuse("The token is not valid yet"));
        }
        Ok(())
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), CoreError> {
        let accepted = |value: &str| {
            self.settings
                .audiences
                .iter()
                .any(|audience| audience == value)
        };
        let matches = match (claims.get("aud"), claims.get("client_id")) {
            (Some(Value::String(aud)), _) => accepted(aud),
            (Some(Value::Array(auds)), _) => auds.iter().filter_map(Value::as_str).any(accepted),
            (None, Some(Value::String(client_id))) => accepted(client_id),
            _ => false,
        };
        if matches {
            Ok(())
        } else {
            Err(refuse("The token was issued for another audience"))
        }
    }

    async fn jwks_key(&self, url: &str, kid: &str) -> Result<VerificationKey, CoreError> {
        match self.jwks.key(kid, || self.sso.fetch_jwks(url)).await {
            Ok(Some(key)) => Ok(key),
            Ok(None) => Err(refuse("The token is signed by an unknown key")),
            Err(error) => Err(CoreError::ProviderUnavailable {
                provider: "the SSO provider",
                detail: error.to_string(),
            }),
        }
    }

    /// Exchanges email and password for an SSO token at the identity provider.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<String, CoreError> {
        let app = self.settings.password_login.as_ref().ok_or_else(|| {
            CoreError::Invalid(
                "Email and password login is not enabled; start the session with apijwttoken"
                    .into(),
            )
        })?;
        self.sso
            .sign_in(app, email, password)
            .await
            .map_err(|error| match error {
                SignInError::Refused(_) => CoreError::InvalidLogin,
                SignInError::Provider(error) => CoreError::ProviderUnavailable {
                    provider: "the SSO provider",
                    detail: error.to_string(),
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "a-secret-shared-with-the-sso-provider";
    const ISSUER: &str = "https://sso.example.com";

    fn verifier() -> IdentityVerifier {
        IdentityVerifier::new(
            IdentitySettings {
                issuer: ISSUER.into(),
                audiences: vec!["partner-app".into()],
                keys: SigningKeys::SharedSecret {
                    secret: SECRET.into(),
                },
                claims: ClaimsMap::default(),
                leeway_seconds: 0,
                password_login: None,
            },
            SsoClient::new(),
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn token(claims: Value, algorithm: Algorithm, secret: &str) -> String {
        encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn claims() -> Value {
        json!({
            "sub": "user-1", "iss": ISSUER, "aud": "partner-app",
            "exp": now().timestamp() + 600, "iat": now().timestamp(),
            "email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace",
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    async fn refusal(token: &str) -> String {
        match verifier().verify(token, now()).await {
            Err(CoreError::Unauthenticated(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_valid_token_maps_its_claims() {
        let identity = verifier()
            .verify(&token(claims(), Algorithm::HS256, SECRET), now())
            .await
            .unwrap();
        assert_eq!(identity.subject, "user-1");
        assert_eq!(identity.email, "ada@example.com");
        assert_eq!(
            (identity.first_name.as_str(), identity.last_name.as_str()),
            ("Ada", "Lovelace")
        );
        assert_eq!(identity.token_fingerprint.len(), 64);
    }

    #[tokio::test]
    async fn access_tokens_prove_their_audience_with_client_id() {
        let mut access = claims();
        access.as_object_mut().unwrap().remove("aud");
        access["client_id"] = json!("partner-app");
        assert!(
            verifier()
                .verify(&token(access, Algorithm::HS256, SECRET), now())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn expiry_and_not_before_are_read_against_the_given_clock() {
        let expired = with(claims(), "exp", json!(now().timestamp() - 1));
        assert_eq!(
            refusal(&token(expired, Algorithm::HS256, SECRET)).await,
            "The token has expired"
        );
        let early = with(claims(), "nbf", json!(now().timestamp() + 60));
        assert_eq!(
            refusal(&token(early, Algorithm::HS256, SECRET)).await,
            "The token is not valid yet"
        );
        let no_expiry = {
            let mut c = claims();
            c.as_object_mut().unwrap().remove("exp");
            c
        };
        assert_eq!(
            refusal(&token(no_expiry, Algorithm::HS256, SECRET)).await,
            "The token lacks the exp claim"
        );
    }

    #[tokio::test]
    async fn foreign_issuers_audiences_and_secrets_are_refused() {
        let foreign = with(claims(), "iss", json!("https://evil.example.com"));
        assert_eq!(
            refusal(&token(foreign, Algorithm::HS256, SECRET)).await,
            "The token was issued by an unknown issuer"
        );
        let other_app = with(claims(), "aud", json!("another-app"));
        assert_eq!(
            refusal(&token(other_app, Algorithm::HS256, SECRET)).await,
            "The token was issued for another audience"
        );
        assert_eq!(
            refusal(&token(claims(), Algorithm::HS256, "guessed")).await,
            "The token's signature is not valid"
        );
    }

    #[tokio::test]
    async fn unsigned_and_tampered_tokens_are_refused() {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let unsigned = format!(
            "{}.{}.",
            engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
            engine.encode(claims().to_string())
        );
        assert_eq!(refusal(&unsigned).await, "The token is not a valid JWT");

        let genuine = token(claims(), Algorithm::HS256, SECRET);
        let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
        parts[1] = engine.encode(with(claims(), "sub", json!("someone-else")).to_string());
        assert_eq!(
            refusal(&parts.join(".")).await,
            "The token's signature is not valid"
        );
        assert_eq!(refusal("not-a-jwt").await, "The token is not a valid JWT");
    }

    #[tokio::test]
    async fn a_shared_secret_configuration_refuses_asymmetric_algorithms() {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let forged = format!(
            "{}.{}.c2lnbmF0dXJl",
            engine.encode(serde_json::to_string(&header).unwrap()),
            engine.encode(claims().to_string())
        );
        assert_eq!(
            refusal(&forged).await,
            "The token's algorithm is not accepted"
        );
    }

    #[tokio::test]
    async fn a_jwks_configuration_refuses_symmetric_algorithms_before_any_key_lookup() {
        let verifier = IdentityVerifier::new(
            IdentitySettings {
                issuer: ISSUER.into(),
                audiences: vec!["partner-app".into()],
                keys: SigningKeys::Jwks {
                    url: "http://127.0.0.1:9/unreachable".into(),
                },
                claims: ClaimsMap::default(),
                leeway_seconds: 0,
                password_login: None,
            },
            SsoClient::new(),
        );
        let confused = token(claims(), Algorithm::HS256, "the-rsa-public-key-as-a-secret");
        match verifier.verify(&confused, now()).await {
            Err(CoreError::Unauthenticated(reason)) => {
                assert_eq!(reason, "The token's algorithm is not accepted")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
