//! The pool's tokens: the RSA signing key (generated with aws-lc-rs, optionally kept in a
//! PKCS#8 file so a restart keeps it), Cognito's id and access token claims, signing and
//! verification (jsonwebtoken), and the public key as a JWKS entry.
//!
//! Token times come from the caller (the host's clock); jsonwebtoken's own expiry checks,
//! which read the machine's clock, are switched off and done here instead.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::SsoSigning;
use super::error::SsoError;
use super::pool::{Session, User};

/// The only scope Cognito puts in access tokens from the user-pool API (no OAuth scopes).
pub(crate) const ACCESS_TOKEN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// The pool's RSA key pair and everything derived from it.
pub(crate) struct RsaSigningKey {
    /// Stable for a given key, so tokens signed before a restart still find their key.
    pub kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    pkcs8_der: Vec<u8>,
}

impl RsaSigningKey {
    pub fn generate() -> Result<Self, SsoError> {
        let key_pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| {
            SsoError::KeyGeneration("aws-lc-rs refused to generate an RSA-2048 key".into())
        })?;
        Self::from_key_pair(&key_pair).map_err(SsoError::KeyGeneration)
    }

    /// Loads the key at `path`, or generates one and writes it there (PEM-armoured PKCS#8,
    /// readable by the owner only), so the pool keeps its key across restarts.
    pub fn load_or_create(path: &Path) -> Result<Self, SsoError> {
        let file_error = |reason: String| SsoError::SigningKeyFile {
            path: path.to_owned(),
            reason,
        };
        if path.exists() {
            let bytes = fs::read(path).map_err(|error| file_error(error.to_string()))?;
            let key_pair = parse_private_key(&bytes).map_err(file_error)?;
            return Self::from_key_pair(&key_pair).map_err(file_error);
        }
        let key = Self::generate()?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            fs::create_dir_all(parent).map_err(|error| file_error(error.to_string()))?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|error| file_error(error.to_string()))?;
        file.write_all(pem_encode("PRIVATE KEY", &key.pkcs8_der).as_bytes())
            .map_err(|error| file_error(error.to_string()))?;
        Ok(key)
    }

    fn from_key_pair(key_pair: &KeyPair) -> Result<Self, String> {
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(key_pair)
            .map_err(|_| "cannot encode the key as PKCS#8".to_owned())?;
        let pkcs8_der = pkcs8.as_ref().to_vec();
        // jsonwebtoken reads PKCS#8 only from PEM; its DER constructor wants PKCS#1.
        let encoding = EncodingKey::from_rsa_pem(pem_encode("PRIVATE KEY", &pkcs8_der).as_bytes())
            .map_err(|error| format!("jsonwebtoken refused the key: {error}"))?;
        let public_key = key_pair.public_key();
        let components = PublicKeyComponents::<Vec<u8>>::from(public_key);
        let decoding = DecodingKey::from_rsa_raw_components(&components.n, &components.e);
        let kid = STANDARD.encode(Sha256::digest(public_key.as_ref()));
        Ok(Self {
            kid,
            encoding,
            decoding,
            modulus: components.n,
            exponent: components.e,
            pkcs8_der,
        })
    }

    /// The public key as a JWKS entry: `(kid, n, e)` with `n` and `e` base64url.
    pub fn jwk_parts(&self) -> (String, String, String) {
        (
            self.kid.clone(),
            URL_SAFE_NO_PAD.encode(&self.modulus),
            URL_SAFE_NO_PAD.encode(&self.exponent),
        )
    }
}

/// Accepts PEM (`PRIVATE KEY` = PKCS#8, `RSA PRIVATE KEY` = PKCS#1) or raw DER of either.
fn parse_private_key(bytes: &[u8]) -> Result<KeyPair, String> {
    let der = match std::str::from_utf8(bytes)
        .ok()
        .filter(|text| text.contains("-----BEGIN"))
    {
        Some(text) => pem_decode(text).ok_or_else(|| "the PEM armour is malformed".to_owned())?,
        None => bytes.to_vec(),
    };
    KeyPair::from_pkcs8(&der)
        .or_else(|_| KeyPair::from_der(&der))
        .map_err(|error| format!("not an RSA private key in PKCS#8 or PKCS#1: {error}"))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).ok()
}

/// The claims of a Cognito id token, in Cognito's order. `nbf` is never set by the
/// Cognito API; the control surface adds it to mint not-yet-valid tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdTokenClaims {
    pub sub: String,
    pub email_verified: bool,
    pub iss: String,
    #[serde(rename = "cognito:username")]
    pub cognito_username: String,
    pub origin_jti: String,
    pub aud: String,
    pub event_id: String,
    pub token_use: String,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

/// The claims of a Cognito access token, in Cognito's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessTokenClaims {
    pub sub: String,
    pub iss: String,
    pub client_id: String,
    pub origin_jti: String,
    pub event_id: String,
    pub token_use: String,
    pub scope: String,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub username: String,
}

/// What a token is issued for: who, from which session, by whom, to whom, and when.
pub(crate) struct TokenGrant<'a> {
    pub user: &'a User,
    pub session: &'a Session,
    pub issuer: &'a str,
    /// The app client id: `aud` of id tokens, `client_id` of access tokens.
    pub audience: &'a str,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub not_before: Option<DateTime<Utc>>,
}

impl TokenGrant<'_> {
    pub fn id_claims(&self) -> IdTokenClaims {
        IdTokenClaims {
            sub: self.user.sub.clone(),
            email_verified: self.user.email_verified,
            iss: self.issuer.to_owned(),
            cognito_username: self.user.username().to_owned(),
            origin_jti: self.session.origin_jti.clone(),
            aud: self.audience.to_owned(),
            event_id: self.session.event_id.clone(),
            token_use: "id".into(),
            auth_time: self.session.auth_time.timestamp(),
            nbf: self.not_before.map(|at| at.timestamp()),
            exp: self.expires_at.timestamp(),
            iat: self.issued_at.timestamp(),
            jti: Uuid::new_v4().to_string(),
            email: self.user.email.clone(),
            given_name: self.user.given_name.clone(),
            family_name: self.user.family_name.clone(),
        }
    }

    pub fn access_claims(&self) -> AccessTokenClaims {
        AccessTokenClaims {
            sub: self.user.sub.clone(),
            iss: self.issuer.to_owned(),
            client_id: self.audience.to_owned(),
            origin_jti: self.session.origin_jti.clone(),
            event_id: self.session.event_id.clone(),
            token_use: "access".into(),
            scope: ACCESS_TOKEN_SCOPE.into(),
            auth_time: self.session.auth_time.timestamp(),
            nbf: self.not_before.map(|at| at.timestamp()),
            exp: self.expires_at.timestamp(),
            iat: self.issued_at.timestamp(),
            jti: Uuid::new_v4().to_string(),
            username: self.user.username().to_owned(),
        }
    }
}

/// How one token is signed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignWith<'a> {
    /// The pool's RSA key, with its `kid` in the header.
    Rs256,
    /// A shared secret; no `kid`.
    Hs256 { secret: &'a str },
}

/// A token the simulator could not sign: never the client's fault.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignError {
    #[error("this pool has no RSA key")]
    NoRsaKey,
    #[error("signing failed: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// The pool's signing keys and its default way of signing.
pub(crate) struct Signer {
    rsa: Option<RsaSigningKey>,
    signing: SsoSigning,
}

impl Signer {
    pub fn new(rsa: Option<RsaSigningKey>, signing: SsoSigning) -> Self {
        Self { rsa, signing }
    }

    /// How tokens from the Cognito API are signed.
    pub fn pool_default(&self) -> SignWith<'_> {
        match &self.signing {
            SsoSigning::Rs256 => SignWith::Rs256,
            SsoSigning::Hs256 { secret } => SignWith::Hs256 { secret },
        }
    }

    /// The pool's shared secret, when it signs with one.
    pub fn shared_secret(&self) -> Option<&str> {
        match &self.signing {
            SsoSigning::Rs256 => None,
            SsoSigning::Hs256 { secret } => Some(secret),
        }
    }

    pub fn rsa_key(&self) -> Option<&RsaSigningKey> {
        self.rsa.as_ref()
    }

    pub fn sign<T: Serialize>(&self, claims: &T, with: SignWith<'_>) -> Result<String, SignError> {
        match with {
            SignWith::Rs256 => {
                let key = self.rsa.as_ref().ok_or(SignError::NoRsaKey)?;
                let mut header = Header::new(Algorithm::RS256);
                // Cognito's header is exactly {"kid", "alg"}.
                header.typ = None;
                header.kid = Some(key.kid.clone());
                Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
            }
            SignWith::Hs256 { secret } => {
                let mut header = Header::new(Algorithm::HS256);
                header.typ = None;
                Ok(jsonwebtoken::encode(
                    &header,
                    claims,
                    &EncodingKey::from_secret(secret.as_bytes()),
                )?)
            }
        }
    }

    /// Checks that `token` was signed by this pool the way the pool signs, and decodes its
    /// claims. Times are not checked here (the caller checks them against its clock).
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let decoded = match self.pool_default() {
            SignWith::Rs256 => {
                let key = self.rsa.as_ref()?;
                if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(key.kid.as_str())
                {
                    return None;
                }
                jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            }
            SignWith::Hs256 { secret } => {
                if header.alg != Algorithm::HS256 {
                    return None;
                }
                jsonwebtoken::decode::<T>(
                    token,
                    &DecodingKey::from_secret(secret.as_bytes()),
                    &validation,
                )
            }
        };
        decoded.ok().map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip() {
        let der = (0u8..=200).collect::<Vec<_>>();
        let pem = pem_encode("PRIVATE KEY", &der);
        assert!(pem.lines().all(|line| line.len() <= 64));
        assert_eq!(pem_decode(&pem), Some(der));
    }

    #[test]
    fn a_persisted_key_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("boxoffice-sso-key-{}", Uuid::new_v4()));
        let path = dir.join("nested").join("sso-signing-key.pem");
        let first = RsaSigningKey::load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        let second = RsaSigningKey::load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.jwk_parts(), second.jwk_parts());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("boxoffice-sso-key-{}", Uuid::new_v4()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("not-a-key.pem");
        let _ = fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        assert!(matches!(
            RsaSigningKey::load_or_create(&path),
            Err(SsoError::SigningKeyFile { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
