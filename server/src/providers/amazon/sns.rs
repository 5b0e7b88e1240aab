//! Amazon SNS's signed messages, checked as AWS says a subscriber must: the signing
//! certificate is fetched only from a URL of SNS's own (a configured prefix, by default
//! `https://sns.{region}.amazonaws.com/`), must be SNS's (`CN=sns.amazonaws.com`) and valid
//! when the message was sent, and its key must verify the RSA PKCS#1 v1.5 signature — SHA1
//! for `SignatureVersion` 1, SHA256 for 2 — over SNS's string to sign.
//!
//! Certificates are kept by URL once fetched (SNS names a new file when it changes its key),
//! so a burst of notifications costs one fetch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, RsaParameters,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, RwLock};
use x509_parser::prelude::ASN1Time;

use super::wire::SnsMessage;

/// SNS's signing certificates are issued to this name.
pub const SNS_CERTIFICATE_NAME: &str = "sns.amazonaws.com";

/// How many certificates are kept; SNS uses very few.
const CACHED_CERTIFICATES: usize = 16;

/// Why a message does not check out.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// Forged, tampered with, or signed in a way SNS does not sign.
    #[error("{0}")]
    Unverified(String),
    /// The certificate could not be fetched or read: try again later.
    #[error("{0}")]
    Unavailable(String),
}

/// A signing certificate's key and validity.
struct Certificate {
    /// The RSA public key (PKCS#1 `RSAPublicKey`).
    public_key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

/// Whether `url` starts with one of `prefixes`; a `*` in a prefix stands for one DNS label
/// (`https://sns.*.amazonaws.com/` takes `https://sns.us-east-1.amazonaws.com/…`).
pub fn url_allowed(url: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|prefix| match prefix.split_once('*') {
        None => url.starts_with(prefix.as_str()),
        Some((head, tail)) => url.strip_prefix(head).is_some_and(|rest| {
            let label = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            label > 0 && rest[label..].starts_with(tail)
        }),
    })
}

/// The certificates fetched so far, by URL.
pub struct CertificateCache {
    http: reqwest::Client,
    certificates: RwLock<HashMap<String, Arc<Certificate>>>,
    /// Held while a fetch is in flight, so concurrent misses wait for one fetch.
    fetching: Mutex<()>,
}

impl CertificateCache {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            certificates: RwLock::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    async fn certificate(&self, url: &str) -> Result<Arc<Certificate>, SnsError> {
        if let Some(certificate) = self.certificates.read().await.get(url) {
            return Ok(certificate.clone());
        }
        let _one_fetch_at_a_time = self.fetching.lock().await;
        if let Some(certificate) = self.certificates.read().await.get(url) {
            return Ok(certificate.clone());
        }
        let unavailable = |detail: String| SnsError::Unavailable(detail);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| unavailable(format!("could not fetch {url}: {error}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("{url} answered {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| unavailable(format!("could not read {url}: {error}")))?;
        let certificate = Arc::new(parse_certificate(&body).map_err(|detail| {
            SnsError::Unverified(format!("the signing certificate at {url}: {detail}"))
        })?);
        let mut certificates = self.certificates.write().await;
        if certificates.len() >= CACHED_CERTIFICATES {
            certificates.clear();
        }
        certificates.insert(url.to_owned(), certificate.clone());
        Ok(certificate)
    }

    /// Checks `message`'s signature with the certificate at its `SigningCertURL`, which the
    /// caller has checked is SNS's; `sent_at` is its `Timestamp`.
    pub async fn verify(
        &self,
        message: &SnsMessage,
        sent_at: DateTime<Utc>,
    ) -> Result<(), SnsError> {
        let unverified = |detail: &str| SnsError::Unverified(detail.to_owned());
        let algorithm: &'static RsaParameters = match message.signature_version.as_str() {
            "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &RSA_PKCS1_2048_8192_SHA256,
            _ => return Err(unverified("the message has an unknown SignatureVersion")),
        };
        let string_to_sign = message
            .string_to_sign()
            .ok_or_else(|| unverified("the message lacks a field SNS signs"))?;
        let signature = STANDARD
            .decode(message.signature.trim())
            .map_err(|_| unverified("the signature is not base64"))?;
        let certificate = self.certificate(&message.signing_cert_url).await?;
        let at = sent_at.timestamp();
        if at < certificate.not_before || at > certificate.not_after {
            return Err(unverified(
                "the signing certificate was not valid when the message was sent",
            ));
        }
        UnparsedPublicKey::new(algorithm, &certificate.public_key)
            .verify(string_to_sign.as_bytes(), &signature)
            .map_err(|_| unverified("the signature does not match SNS's certificate"))
    }
}

impl Default for CertificateCache {
    fn default() -> Self {
        Self::new()
    }
}

/// An SNS signing certificate from its PEM.
fn parse_certificate(pem: &[u8]) -> Result<Certificate, String> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|error| format!("not PEM: {error}"))?;
    let certificate = pem
        .parse_x509()
        .map_err(|error| format!("not an X.509 certificate: {error}"))?;
    let issued_to_sns = certificate
        .subject()
        .iter_common_name()
        .filter_map(|name| name.as_str().ok())
        .any(|name| name == SNS_CERTIFICATE_NAME);
    if !issued_to_sns {
        return Err(format!("it is not issued to {SNS_CERTIFICATE_NAME}"));
    }
    let validity = certificate.validity();
    let seconds = |time: ASN1Time| time.timestamp();
    Ok(Certificate {
        public_key: certificate.public_key().subject_public_key.data.to_vec(),
        not_before: seconds(validity.not_before),
        not_after: seconds(validity.not_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_urls_must_be_snss() {
        let aws = vec!["https://sns.*.amazonaws.com/".to_owned()];
        assert!(url_allowed(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a86cb10b4e1f29c941702d737128f7b6.pem",
            &aws
        ));
        assert!(!url_allowed(
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            &aws
        ));
        assert!(!url_allowed("https://sns..amazonaws.com/x.pem", &aws));
        assert!(!url_allowed(
            "http://sns.us-east-1.amazonaws.com/x.pem",
            &aws
        ));
        assert!(!url_allowed(
            "https://evil.example/sns.us-east-1.amazonaws.com/",
            &aws
        ));
        let simulator = vec!["http://127.0.0.1:8080/sim/amazon/sns/".to_owned()];
        assert!(url_allowed(
            "http://127.0.0.1:8080/sim/amazon/sns/SimpleNotificationService-1.pem",
            &simulator
        ));
        assert!(!url_allowed(
            "http://127.0.0.1:8080/sim/amazon/snsx",
            &simulator
        ));
    }
}
