//! The key Roku signs secured push notifications with: an RSA-2048 key generated with
//! aws-lc-rs when the simulator starts, published as Roku publishes its keys (a JWKS, as at
//! `https://assets.cs.roku.com/keys/partner-jwks.json`), its id in the form of Roku's
//! (`ROKU-PARTNER-SERVICE-…`).
//!
//! Signing goes through jsonwebtoken, as the other simulators sign their tokens.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem_openapi::Object;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::RokuError;

/// One key of Roku's JWKS, in the fields of Roku's documented example.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "RokuJwk")]
pub struct Jwk {
    /// `RSA`.
    pub kty: String,
    /// The modulus, base64url.
    pub n: String,
    /// The public exponent, base64url.
    pub e: String,
    /// `RS256`.
    pub alg: String,
    /// The key id the JOSE header of a push names.
    pub kid: String,
}

/// Roku's key set.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "RokuJwkSet")]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// The signing key and its public half.
pub(crate) struct RsaKey {
    /// `ROKU-PARTNER-SERVICE-SIM-` and twelve hex digits of the public key's hash: Roku's
    /// key ids name the key's date (`ROKU-PARTNER-SERVICE-2021-04-29`); a simulator's key is
    /// new at every start, so its id is derived from the key instead, and a receiver that
    /// caches keys by id never confuses two of them.
    pub kid: String,
    encoding: EncodingKey,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl RsaKey {
    pub fn generate() -> Result<Self, RokuError> {
        let key_pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| RokuError::Keys("aws-lc-rs refused to generate an RSA key".into()))?;
        let pkcs8_der = AsDer::<Pkcs8V1Der>::as_der(&key_pair)
            .map_err(|_| RokuError::Keys("cannot encode the key as PKCS#8".into()))?
            .as_ref()
            .to_vec();
        // jsonwebtoken reads PKCS#8 only from PEM; its DER constructor wants PKCS#1.
        let encoding = EncodingKey::from_rsa_pem(pem_encode("PRIVATE KEY", &pkcs8_der).as_bytes())
            .map_err(|error| RokuError::Keys(format!("jsonwebtoken refused the key: {error}")))?;
        let public_key = key_pair.public_key();
        let components = PublicKeyComponents::<Vec<u8>>::from(public_key);
        let hash: String = Sha256::digest(public_key.as_ref())
            .iter()
            .take(6)
            .map(|byte| format!("{byte:02X}"))
            .collect();
        Ok(Self {
            kid: format!("ROKU-PARTNER-SERVICE-SIM-{hash}"),
            encoding,
            modulus: components.n,
            exponent: components.e,
        })
    }

    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA".into(),
            n: URL_SAFE_NO_PAD.encode(&self.modulus),
            e: URL_SAFE_NO_PAD.encode(&self.exponent),
            alg: "RS256".into(),
            kid: self.kid.clone(),
        }
    }

    /// A JWS (compact serialization) of `claims`, with Roku's JOSE header:
    /// `{"typ": "JWT", "alg": "RS256", "kid": …}`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Claims {
        iss: String,
    }

    #[test]
    fn a_signature_verifies_with_the_published_key() {
        let key = RsaKey::generate().unwrap();
        assert!(key.kid.starts_with("ROKU-PARTNER-SERVICE-SIM-"));
        let claims = Claims { iss: "me".into() };
        let token = key.sign(&claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let jwk = key.jwk();
        let decoding = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims, claims);
        let other = RsaKey::generate().unwrap().jwk();
        let decoding = DecodingKey::from_rsa_components(&other.n, &other.e).unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).is_err());
    }
}
