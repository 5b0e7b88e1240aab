//! The App Store Server API's credentials: in-app purchase keys, as App Store Connect issues
//! them (a key id, the team's issuer id, and a P-256 private key in a PKCS#8 `.p8` file that
//! only the developer keeps), and the ES256 bearer tokens clients sign with them.
//!
//! A token is accepted as Apple accepts it: header `alg` ES256 and the `kid` of a configured
//! key; claims `iss` (that key's issuer id), `aud` `appstoreconnect-v1`, `bid` (the app's
//! bundle id) and `exp` — in the future and at most 60 minutes ahead (Apple's client
//! libraries send no `iat`; when one is sent, `exp` may be at most 60 minutes after it).
//! Expiry is read on the host's clock: a client that signs on the machine's clock sees its
//! tokens expire once the host's clock has been moved past their `exp`.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::Deserialize;

use super::certs::write_new;
use super::error::AppleError;

/// The `aud` of every App Store Server API token.
pub const TOKEN_AUDIENCE: &str = "appstoreconnect-v1";

/// The longest a token may live, in seconds.
const MAX_TOKEN_LIFETIME_SECONDS: i64 = 60 * 60;

/// An in-app purchase key: what the App Store Server API accepts tokens from.
#[derive(Clone)]
pub struct InAppPurchaseKey {
    /// The `kid` of tokens signed with it, e.g. `2X9R4HXF34`.
    pub key_id: String,
    /// The team's issuer id (a UUID): the `iss` of tokens.
    pub issuer_id: String,
    /// The public key, PEM (`PUBLIC KEY`, SubjectPublicKeyInfo).
    pub public_key_pem: String,
    /// The private key, PEM (`PRIVATE KEY`, PKCS#8, what App Store Connect's `.p8` file
    /// holds), when the simulator generated it: shown by the control surface so that clients
    /// can sign. `None` for a key whose private half only the client holds.
    pub private_key_pem: Option<String>,
}

impl fmt::Debug for InAppPurchaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InAppPurchaseKey")
            .field("key_id", &self.key_id)
            .field("issuer_id", &self.issuer_id)
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| ".."),
            )
            .finish_non_exhaustive()
    }
}

impl InAppPurchaseKey {
    /// A new key, as App Store Connect generates one.
    pub fn generate(key_id: &str, issuer_id: &str) -> Result<Self, AppleError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|error| AppleError::KeyGeneration(error.to_string()))?;
        Ok(Self::from_key_pair(key_id, issuer_id, &key))
    }

    /// The key whose private half is at `path` (a `.p8` file), or a new one written there,
    /// readable by the owner only, so a restart keeps the credentials clients were given.
    pub fn load_or_generate(
        path: &Path,
        key_id: &str,
        issuer_id: &str,
    ) -> Result<Self, AppleError> {
        let file_error = |reason: String| AppleError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        if path.exists() {
            let pem = fs::read_to_string(path).map_err(|error| file_error(error.to_string()))?;
            let key = KeyPair::from_pem(&pem)
                .map_err(|error| file_error(format!("not a P-256 private key: {error}")))?;
            return Ok(Self::from_key_pair(key_id, issuer_id, &key));
        }
        let key = Self::generate(key_id, issuer_id)?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            fs::create_dir_all(parent).map_err(|error| file_error(error.to_string()))?;
        }
        let private_key_pem = key.private_key_pem.as_deref().unwrap_or_default();
        write_new(path, private_key_pem, 0o600).map_err(file_error)?;
        Ok(key)
    }

    fn from_key_pair(key_id: &str, issuer_id: &str, key: &KeyPair) -> Self {
        Self {
            key_id: key_id.to_owned(),
            issuer_id: issuer_id.to_owned(),
            public_key_pem: key.public_key_pem(),
            private_key_pem: Some(key.serialize_pem()),
        }
    }
}

/// The claims of an App Store Server API token that are checked.
#[derive(Debug, Deserialize)]
struct TokenClaims {
    bid: String,
    exp: i64,
    iat: Option<i64>,
}

/// The keys tokens are accepted from, and the app they must name.
pub(crate) struct TokenVerifier {
    /// By key id: the issuer id and the public key.
    keys: HashMap<String, (String, DecodingKey)>,
    bundle_id: String,
}

impl TokenVerifier {
    pub fn new(keys: &[InAppPurchaseKey], bundle_id: &str) -> Result<Self, String> {
        let mut verifier = Self {
            keys: HashMap::new(),
            bundle_id: bundle_id.to_owned(),
        };
        for key in keys {
            let decoding =
                DecodingKey::from_ec_pem(key.public_key_pem.as_bytes()).map_err(|error| {
                    format!("the public key of {} is not an EC key: {error}", key.key_id)
                })?;
            if key.key_id.is_empty() || key.issuer_id.is_empty() {
                return Err("an in-app purchase key needs a key id and an issuer id".into());
            }
            if verifier
                .keys
                .insert(key.key_id.clone(), (key.issuer_id.clone(), decoding))
                .is_some()
            {
                return Err(format!("the key id {} is configured twice", key.key_id));
            }
        }
        Ok(verifier)
    }

    /// Whether the API accepts a bearer token at `now`; why not when it does not.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| format!("unreadable token header: {error}"))?;
        if header.alg != Algorithm::ES256 {
            return Err(format!("alg {:?} instead of ES256", header.alg));
        }
        let key_id = header.kid.ok_or("no kid")?;
        let (issuer_id, key) = self
            .keys
            .get(&key_id)
            .ok_or_else(|| format!("unknown kid {key_id}"))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = false;
        validation.set_audience(&[TOKEN_AUDIENCE]);
        validation.set_issuer(&[issuer_id]);
        let claims = jsonwebtoken::decode::<TokenClaims>(token, key, &validation)
            .map_err(|error| format!("refused token: {error}"))?
            .claims;
        if claims.bid != self.bundle_id {
            return Err(format!("bid {} is not this app", claims.bid));
        }
        let now = now.timestamp();
        if claims.exp <= now {
            return Err("expired".into());
        }
        let lifetime_from = claims.iat.unwrap_or(now);
        if claims.exp - lifetime_from > MAX_TOKEN_LIFETIME_SECONDS {
            return Err("exp is more than 60 minutes ahead".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const BUNDLE: &str = "com.example.app";

    fn token(key: &InAppPurchaseKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let private = key.private_key_pem.as_deref().unwrap();
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn tokens_are_checked_as_apple_checks_them() {
        let key = InAppPurchaseKey::generate("KEY1", "issuer-1").unwrap();
        let other = InAppPurchaseKey::generate("KEY1", "issuer-1").unwrap();
        let verifier = TokenVerifier::new(std::slice::from_ref(&key), BUNDLE).unwrap();
        let now = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        let exp = now.timestamp() + 300;
        let good = json!({"iss": "issuer-1", "aud": TOKEN_AUDIENCE, "bid": BUNDLE, "exp": exp});
        assert_eq!(
            verifier.check(&token(&key, "KEY1", good.clone()), now),
            Ok(())
        );
        let refused = |claims: serde_json::Value, kid: &str, signer: &InAppPurchaseKey| {
            verifier.check(&token(signer, kid, claims), now).is_err()
        };
        assert!(refused(good.clone(), "KEY2", &key));
        assert!(refused(good.clone(), "KEY1", &other));
        let mut claims = good.clone();
        claims["iss"] = json!("someone-else");
        assert!(refused(claims, "KEY1", &key));
        let mut claims = good.clone();
        claims["aud"] = json!("appstoreconnect-v2");
        assert!(refused(claims, "KEY1", &key));
        let mut claims = good.clone();
        claims["bid"] = json!("com.example.other");
        assert!(refused(claims, "KEY1", &key));
        let mut claims = good.clone();
        claims["exp"] = json!(now.timestamp() - 1);
        assert!(refused(claims, "KEY1", &key));
        let mut claims = good.clone();
        claims["exp"] = json!(now.timestamp() + 3601);
        assert!(refused(claims, "KEY1", &key));
        let mut claims = good;
        claims["iat"] = json!(now.timestamp() - 600);
        claims["exp"] = json!(now.timestamp() + 3300);
        assert!(refused(claims, "KEY1", &key));
        assert!(verifier.check("nonsense", now).is_err());
    }

    #[test]
    fn a_key_file_is_kept() {
        let path = std::env::temp_dir()
            .join(format!("apple-key-{}", uuid::Uuid::new_v4()))
            .join("SubscriptionKey_KEY1.p8");
        let first = InAppPurchaseKey::load_or_generate(&path, "KEY1", "issuer").unwrap();
        let second = InAppPurchaseKey::load_or_generate(&path, "KEY1", "issuer").unwrap();
        assert_eq!(first.public_key_pem, second.public_key_pem);
        assert!(
            second
                .private_key_pem
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
