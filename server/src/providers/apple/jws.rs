//! Apple's signed data: a JWS (ES256) whose `x5c` header carries the signing certificate,
//! Apple's intermediate and Apple's root, as the App Store signs transactions, renewal
//! information and notifications.
//!
//! Trust comes from the configured root certificates alone: the chain in the header must
//! end in one of them byte for byte, each certificate must be signed by the next, the leaf
//! and the intermediate must carry Apple's marker extensions, and the signature over the
//! JWS must verify with the leaf's key. The chain is checked as of the payload's
//! `signedDate`, as Apple's own library does when it does not check revocation online.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

/// The extension Apple puts on the certificates that sign App Store data.
const SIGNING_CERTIFICATE_MARKER: &str = "1.2.840.113635.100.6.11.1";
/// The extension on Apple's intermediate certificate for that signing.
const INTERMEDIATE_MARKER: &str = "1.2.840.113635.100.6.2.1";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
const CURVE_P256: &str = "1.2.840.10045.3.1.7";
const CURVE_P384: &str = "1.3.132.0.34";

#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("malformed signed data: {0}")]
    Malformed(String),
    #[error("signed data not trusted: {0}")]
    Untrusted(String),
}

fn malformed(detail: impl std::fmt::Display) -> JwsError {
    JwsError::Malformed(detail.to_string())
}

fn untrusted(detail: impl std::fmt::Display) -> JwsError {
    JwsError::Untrusted(detail.to_string())
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

/// The part of every signed payload the chain is checked against.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Signed {
    signed_date: Option<i64>,
}

/// The payload of `token` once its signature and chain check out against `roots` (DER).
/// Without a `signedDate` in the payload, the chain is checked as of `now`.
pub fn verify(token: &str, roots: &[Vec<u8>], now: DateTime<Utc>) -> Result<Vec<u8>, JwsError> {
    let mut parts = token.trim().split('.');
    let (Some(header_part), Some(payload_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWS has three dot-separated parts"));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_part)
        .map_err(malformed)
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(malformed))?;
    if header.alg != "ES256" {
        return Err(untrusted(format!("algorithm {} is not ES256", header.alg)));
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_part).map_err(malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature_part).map_err(malformed)?;
    let signed: Signed = serde_json::from_slice(&payload).map_err(malformed)?;
    let [leaf, intermediate, root] = header.x5c.as_slice() else {
        return Err(untrusted(
            "x5c must hold the leaf, intermediate and root certificates",
        ));
    };
    let decode = |text: &String| STANDARD.decode(text).map_err(malformed);
    let (leaf_der, intermediate_der, root_der) =
        (decode(leaf)?, decode(intermediate)?, decode(root)?);
    if !roots.contains(&root_der) {
        return Err(untrusted("the chain does not end in a trusted root"));
    }
    let (leaf, intermediate, root) = (
        parse(&leaf_der)?,
        parse(&intermediate_der)?,
        parse(&root_der)?,
    );
    signed_by(&intermediate, &root)?;
    signed_by(&leaf, &intermediate)?;
    if !has_extension(&intermediate, INTERMEDIATE_MARKER) || !is_ca(&intermediate) {
        return Err(untrusted(
            "the intermediate is not an App Store signing authority",
        ));
    }
    if !has_extension(&leaf, SIGNING_CERTIFICATE_MARKER) {
        return Err(untrusted(
            "the leaf is not an App Store signing certificate",
        ));
    }
    let at_millis = signed.signed_date.unwrap_or_else(|| now.timestamp_millis());
    let at = ASN1Time::from_timestamp(at_millis.div_euclid(1000)).map_err(malformed)?;
    for certificate in [&leaf, &intermediate, &root] {
        if !certificate.validity().is_valid_at(at) {
            return Err(untrusted(
                "a certificate of the chain was not valid when it signed",
            ));
        }
    }
    let signing_input = format!("{header_part}.{payload_part}");
    UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_FIXED,
        leaf.public_key().subject_public_key.data.as_ref(),
    )
    .verify(signing_input.as_bytes(), &signature)
    .map_err(|_| untrusted("the signature does not match the signing certificate"))?;
    Ok(payload)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, JwsError> {
    X509Certificate::from_der(der)
        .map(|(_, certificate)| certificate)
        .map_err(malformed)
}

fn has_extension(certificate: &X509Certificate<'_>, oid: &str) -> bool {
    certificate
        .extensions()
        .iter()
        .any(|extension| extension.oid.to_id_string() == oid)
}

fn is_ca(certificate: &X509Certificate<'_>) -> bool {
    matches!(certificate.basic_constraints(), Ok(Some(constraints)) if constraints.value.ca)
}

/// Checks that `issuer`'s key signed `child` (ECDSA on P-256 or P-384, as Apple's chains).
fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), JwsError> {
    let curve = issuer
        .public_key()
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.as_oid().ok())
        .map(|oid| oid.to_id_string())
        .unwrap_or_default();
    let digest = child.signature_algorithm.algorithm.to_id_string();
    let algorithm: &'static dyn VerificationAlgorithm = match (curve.as_str(), digest.as_str()) {
        (CURVE_P256, ECDSA_WITH_SHA256) => &signature::ECDSA_P256_SHA256_ASN1,
        (CURVE_P256, ECDSA_WITH_SHA384) => &signature::ECDSA_P256_SHA384_ASN1,
        (CURVE_P384, ECDSA_WITH_SHA256) => &signature::ECDSA_P384_SHA256_ASN1,
        (CURVE_P384, ECDSA_WITH_SHA384) => &signature::ECDSA_P384_SHA384_ASN1,
        _ => {
            return Err(untrusted(
                "a certificate is signed with an algorithm Apple does not use",
            ));
        }
    };
    UnparsedPublicKey::new(
        algorithm,
        issuer.public_key().subject_public_key.data.as_ref(),
    )
    .verify(
        child.tbs_certificate.as_ref(),
        child.signature_value.data.as_ref(),
    )
    .map_err(|_| untrusted("a certificate of the chain is not signed by the next one"))
}
