//! Amazon SNS's signing identity: an RSA-2048 key and a self-signed X.509 certificate for it
//! (subject `CN=sns.amazonaws.com`, as SNS's own), served as PEM at the message's
//! `SigningCertURL` (`{base}/sns/SimpleNotificationService-{id}.pem`, `id` 32 hex digits as
//! in SNS's file names).
//!
//! Every message is signed as SNS signs: RSA PKCS#1 v1.5 over [`SnsEnvelope::string_to_sign`]
//! with SHA1 (`SignatureVersion` 1) or SHA256 (`SignatureVersion` 2), base64. The key is made
//! with aws-lc-rs and the signatures with the `rsa` crate (aws-lc-rs makes no SHA1
//! signatures); the certificate with rcgen.
//!
//! Verifiers check the certificate at the message's `Timestamp`, which follows the host's
//! clock — and that clock may be moved years ahead — so the certificate is valid from 2020
//! to the end of 2049. With a data directory the key and the certificate are kept there as
//! PEM files and loaded on the next start, so a verifier's cache stays right across
//! restarts.
//!
//! [`SnsEnvelope::string_to_sign`]: super::wire::SnsEnvelope::string_to_sign

use std::fs;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::{Digest, Sha256};

use super::error::AmazonError;

const KEY_FILE: &str = "sns-signing-key.pem";
const CERTIFICATE_FILE: &str = "sns-signing-certificate.pem";

/// The subject of SNS's signing certificates.
pub const SNS_CERTIFICATE_SUBJECT: &str = "sns.amazonaws.com";

/// Which signature SNS puts on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnsSignatureVersion {
    /// RSA with SHA1: what SNS topics sign with unless told otherwise, and what Amazon's
    /// Real-time Notifications carry.
    #[default]
    V1,
    /// RSA with SHA256 (`SignatureVersion` 2).
    V2,
}

impl SnsSignatureVersion {
    /// `1` or `2`, as in the message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1",
            Self::V2 => "2",
        }
    }
}

pub(crate) struct SigningIdentity {
    key: RsaPrivateKey,
    certificate_pem: String,
    /// `SimpleNotificationService-{id}.pem`.
    file_name: String,
}

impl SigningIdentity {
    /// Loads the key and certificate from `dir`, or makes them (and writes them there);
    /// without a directory, makes them for this process only.
    pub fn load_or_create(dir: Option<&Path>) -> Result<Self, AmazonError> {
        let (key_pem, certificate_pem) = match dir {
            Some(dir) => load_or_make(dir)?,
            None => make()?,
        };
        Self::from_pems(&key_pem, certificate_pem)
    }

    fn from_pems(key_pem: &str, certificate_pem: String) -> Result<Self, AmazonError> {
        let key = pem::parse(key_pem)
            .map_err(|error| error.to_string())
            .and_then(|key| {
                RsaPrivateKey::from_pkcs8_der(key.contents()).map_err(|error| error.to_string())
            })
            .map_err(|error| AmazonError::Keys(format!("the SNS signing key: {error}")))?;
        let certificate = pem::parse(&certificate_pem)
            .map_err(|error| AmazonError::Keys(format!("the SNS certificate: {error}")))?;
        if certificate.tag() != "CERTIFICATE" {
            return Err(AmazonError::Keys(
                "the SNS certificate file holds no certificate".into(),
            ));
        }
        let digest = Sha256::digest(certificate.contents());
        let id: String = digest
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Self {
            key,
            certificate_pem,
            file_name: format!("SimpleNotificationService-{id}.pem"),
        })
    }

    /// The certificate, PEM: what `SigningCertURL` serves.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// `SimpleNotificationService-{id}.pem`.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The base64 signature of `string_to_sign`.
    pub fn sign(&self, version: SnsSignatureVersion, string_to_sign: &str) -> String {
        let signature = match version {
            SnsSignatureVersion::V1 => SigningKey::<sha1::Sha1>::new(self.key.clone())
                .sign(string_to_sign.as_bytes())
                .to_vec(),
            SnsSignatureVersion::V2 => SigningKey::<Sha256>::new(self.key.clone())
                .sign(string_to_sign.as_bytes())
                .to_vec(),
        };
        STANDARD.encode(signature)
    }
}

/// A new key (PKCS#8 PEM) and its self-signed certificate (PEM).
fn make() -> Result<(String, String), AmazonError> {
    let key_pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| AmazonError::Keys("aws-lc-rs refused to generate an RSA key".into()))?;
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&key_pair)
        .map_err(|_| AmazonError::Keys("cannot encode the key as PKCS#8".into()))?;
    let key_pem = pem_encode("PRIVATE KEY", pkcs8.as_ref());
    let failed = |error: rcgen::Error| AmazonError::Keys(format!("the SNS certificate: {error}"));
    let signer = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, SNS_CERTIFICATE_SUBJECT);
    name.push(
        rcgen::DnType::OrganizationName,
        "boxoffice simulated Amazon SNS",
    );
    params.distinguished_name = name;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let certificate = params.self_signed(&signer).map_err(failed)?;
    Ok((key_pem, certificate.pem()))
}

/// The key and certificate in `dir` if both are there; new ones written there if neither is.
fn load_or_make(dir: &Path) -> Result<(String, String), AmazonError> {
    let file_error = |reason: String| AmazonError::KeyFiles {
        path: dir.to_owned(),
        reason,
    };
    let key_path = dir.join(KEY_FILE);
    let certificate_path = dir.join(CERTIFICATE_FILE);
    match (key_path.exists(), certificate_path.exists()) {
        (true, true) => {
            let read = |path: &Path| {
                fs::read_to_string(path)
                    .map_err(|error| file_error(format!("{}: {error}", path.display())))
            };
            Ok((read(&key_path)?, read(&certificate_path)?))
        }
        (false, false) => {
            let (key_pem, certificate_pem) = make()?;
            fs::create_dir_all(dir).map_err(|error| file_error(error.to_string()))?;
            write_new(&key_path, &key_pem, 0o600).map_err(file_error)?;
            write_new(&certificate_path, &certificate_pem, 0o644).map_err(file_error)?;
            Ok((key_pem, certificate_pem))
        }
        _ => Err(file_error(format!(
            "one of {KEY_FILE} and {CERTIFICATE_FILE} is missing; remove the other to make new ones"
        ))),
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Writes a file that must not exist yet, with `mode` on Unix.
fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{
        RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
    };
    use rsa::pkcs1::EncodeRsaPublicKey;

    use super::*;

    #[test]
    fn signatures_of_both_versions_verify_with_another_library() {
        let identity = SigningIdentity::load_or_create(None).unwrap();
        assert!(
            identity
                .file_name()
                .starts_with("SimpleNotificationService-")
        );
        assert_eq!(
            identity.file_name().len(),
            "SimpleNotificationService-".len() + 36
        );
        let public = identity
            .key
            .to_public_key()
            .to_pkcs1_der()
            .unwrap()
            .into_vec();
        let message = "Message\nhi\nType\nNotification\n";
        for (version, algorithm) in [
            (
                SnsSignatureVersion::V1,
                &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            ),
            (SnsSignatureVersion::V2, &RSA_PKCS1_2048_8192_SHA256),
        ] {
            let signature = STANDARD.decode(identity.sign(version, message)).unwrap();
            let key = UnparsedPublicKey::new(algorithm, &public);
            key.verify(message.as_bytes(), &signature).unwrap();
            assert!(key.verify(b"tampered", &signature).is_err());
        }
    }

    #[test]
    fn a_data_directory_keeps_the_certificate() {
        let dir = std::env::temp_dir().join(format!("amazon-sns-{}", uuid::Uuid::new_v4()));
        let first = SigningIdentity::load_or_create(Some(&dir)).unwrap();
        let second = SigningIdentity::load_or_create(Some(&dir)).unwrap();
        assert_eq!(first.certificate_pem(), second.certificate_pem());
        assert_eq!(first.file_name(), second.file_name());
        fs::remove_file(dir.join(KEY_FILE)).unwrap();
        assert!(matches!(
            SigningIdentity::load_or_create(Some(&dir)),
            Err(AmazonError::KeyFiles { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
