//! The simulator's two RSA-2048 keys, generated with aws-lc-rs at start as the SSO simulator
//! generates its own:
//! - the service account's, whose PKCS#8 PEM goes into the JSON key file the control surface
//!   hands out, and whose public half verifies the JWTs the token endpoint is sent;
//! - Google's, which signs the OIDC tokens of authenticated Pub/Sub pushes and is published
//!   as Google publishes its keys: a JWKS at `/oauth2/v3/certs` and self-signed X.509
//!   certificates by key id at `/oauth2/v1/certs` (what `google.oauth2.id_token` reads).
//!
//! Signing and verification go through jsonwebtoken; its own time checks, which read the
//! machine's clock, are switched off and callers check times against the host's clock.

use std::collections::HashSet;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem_openapi::Object;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::GoogleError;

/// How long the certificates at `/oauth2/v1/certs` say they are valid, in years from the
/// simulator's start.
const CERTIFICATE_YEARS: i32 = 10;

/// One key of a JWKS, in the fields and order of Google's `/oauth2/v3/certs`.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleJwk")]
pub struct Jwk {
    /// The public exponent, base64url.
    pub e: String,
    /// `RSA`.
    pub kty: String,
    /// `RS256`.
    pub alg: String,
    /// The modulus, base64url.
    pub n: String,
    pub kid: String,
    /// `sig`.
    #[oai(rename = "use")]
    pub key_use: String,
}

/// An RSA key pair and what is derived from it.
pub(crate) struct RsaKey {
    /// 40 lowercase hex digits, like Google's key ids and a service account's
    /// `private_key_id`; stable for a given key.
    pub kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    pkcs8_der: Vec<u8>,
}

impl RsaKey {
    pub fn generate() -> Result<Self, GoogleError> {
        let key_pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| GoogleError::Keys("aws-lc-rs refused to generate an RSA key".into()))?;
        let pkcs8_der = AsDer::<Pkcs8V1Der>::as_der(&key_pair)
            .map_err(|_| GoogleError::Keys("cannot encode the key as PKCS#8".into()))?
            .as_ref()
            .to_vec();
        // jsonwebtoken reads PKCS#8 only from PEM; its DER constructor wants PKCS#1.
        let encoding = EncodingKey::from_rsa_pem(pem_encode("PRIVATE KEY", &pkcs8_der).as_bytes())
            .map_err(|error| GoogleError::Keys(format!("jsonwebtoken refused the key: {error}")))?;
        let public_key = key_pair.public_key();
        let components = PublicKeyComponents::<Vec<u8>>::from(public_key);
        let decoding = DecodingKey::from_rsa_raw_components(&components.n, &components.e);
        let kid = Sha256::digest(public_key.as_ref())
            .iter()
            .take(20)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Self {
            kid,
            encoding,
            decoding,
            modulus: components.n,
            exponent: components.e,
            pkcs8_der,
        })
    }

    /// The private key as PEM-armoured PKCS#8 (`-----BEGIN PRIVATE KEY-----`), the form of
    /// `private_key` in a service account's JSON key file.
    pub fn private_key_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8_der)
    }

    pub fn jwk(&self) -> Jwk {
        Jwk {
            e: URL_SAFE_NO_PAD.encode(&self.exponent),
            kty: "RSA".into(),
            alg: "RS256".into(),
            n: URL_SAFE_NO_PAD.encode(&self.modulus),
            kid: self.kid.clone(),
            key_use: "sig".into(),
        }
    }

    /// A self-signed X.509 certificate of the public key (PEM), valid from `issued` for
    /// [`CERTIFICATE_YEARS`], as Google publishes its token-signing keys at
    /// `/oauth2/v1/certs`.
    pub fn certificate_pem(&self, issued: DateTime<Utc>) -> Result<String, GoogleError> {
        let failed = |error: rcgen::Error| GoogleError::Keys(format!("certificate: {error}"));
        let key_pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
            &self.private_key_pem(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(failed)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        let mut name = rcgen::DistinguishedName::new();
        name.push(
            rcgen::DnType::CommonName,
            "federated-signon.system.gserviceaccount.com",
        );
        params.distinguished_name = name;
        let month = u8::try_from(issued.month()).unwrap_or(1);
        let day = u8::try_from(issued.day()).unwrap_or(1).min(28);
        params.not_before = rcgen::date_time_ymd(issued.year(), month, day);
        params.not_after = rcgen::date_time_ymd(issued.year() + CERTIFICATE_YEARS, month, day);
        Ok(params.self_signed(&key_pair).map_err(failed)?.pem())
    }

    /// A JWT of `claims`, RS256, with `{"alg", "kid", "typ": "JWT"}` as Google's headers.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The claims of `token` when it is an RS256 JWT signed with this key (times are not
    /// checked here); `None` for anything else, `alg: none` and HS256 included.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::RS256 {
            return None;
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        jsonwebtoken::decode::<T>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
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
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Claims {
        iss: String,
    }

    #[test]
    fn a_key_verifies_only_its_own_signatures() {
        let key = RsaKey::generate().unwrap();
        let other = RsaKey::generate().unwrap();
        assert_eq!(key.kid.len(), 40);
        let claims = Claims { iss: "me".into() };
        let token = key.sign(&claims).unwrap();
        assert_eq!(key.verify::<Claims>(&token), Some(claims));
        assert_eq!(other.verify::<Claims>(&token), None);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
    }

    #[test]
    fn the_pem_and_the_certificate_are_well_formed() {
        let key = RsaKey::generate().unwrap();
        let pem = key.private_key_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64));
        let issued = DateTime::parse_from_rfc3339("2030-01-31T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let certificate = key.certificate_pem(issued).unwrap();
        assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
