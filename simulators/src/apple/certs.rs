//! The App Store's signing identity: a root CA, an intermediate CA and a leaf (all P-256),
//! minted with rcgen on first start, and the JWS signer that names the three in `x5c`.
//!
//! Apple's libraries verify signed data against a root they were given (Apple's root CA G3;
//! here the simulator's, from `GET /root.cer`) with OpenSSL's strict checks, so the chain
//! carries what those checks want: authority key identifiers on the intermediate and the
//! leaf, subject key identifiers, `keyCertSign`/`cRLSign` and critical basic constraints on
//! both CAs, `digitalSignature` only on the leaf, and Apple's marker extensions (the leaf's
//! `1.2.840.113635.100.6.11.1`, the intermediate's `1.2.840.113635.100.6.2.1`, non-critical,
//! with DER NULL as content).
//!
//! Verifiers check the chain as of the payload's `signedDate`, which follows the host's
//! clock — and that clock may be moved years ahead — so every certificate is valid from
//! 2020 to the end of 2049.
//!
//! With a data directory the chain and the leaf's private key are kept there as PEM files
//! and loaded on the next start, so the root a client trusts stays the same across restarts.
//! The CAs' private keys are not kept: nothing is signed with them after minting.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::AppleError;

/// Apple's marker of a receipt-signing (leaf) certificate.
const LEAF_MARKER_OID: &[u64] = &[1, 2, 840, 113_635, 100, 6, 11, 1];
/// Apple's marker of the Worldwide Developer Relations (intermediate) CA.
const INTERMEDIATE_MARKER_OID: &[u64] = &[1, 2, 840, 113_635, 100, 6, 2, 1];
/// DER NULL: the content of both marker extensions.
const DER_NULL: [u8; 2] = [0x05, 0x00];

const ROOT_FILE: &str = "root-ca.pem";
const INTERMEDIATE_FILE: &str = "intermediate-ca.pem";
const LEAF_FILE: &str = "signing-certificate.pem";
const LEAF_KEY_FILE: &str = "signing-key.pem";

/// The certificate chain and the leaf's key: what every signature of the simulator uses.
pub(crate) struct SigningIdentity {
    root_der: Vec<u8>,
    /// Leaf, intermediate, root: standard base64 of DER, as Apple's `x5c`.
    x5c: Vec<String>,
    encoding: EncodingKey,
    /// The leaf's public key, to verify what the simulator signed itself (app receipts).
    decoding: DecodingKey,
}

/// The DER of the three certificates and the leaf's PKCS#8 key.
struct Chain {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    leaf: Vec<u8>,
    leaf_key_pem: String,
}

impl SigningIdentity {
    /// Loads the chain from `dir`, or mints one (and writes it there); without a directory,
    /// mints one for this process only.
    pub fn load_or_create(dir: Option<&Path>) -> Result<Self, AppleError> {
        let chain = match dir {
            Some(dir) => load_or_mint(dir)?,
            None => mint()?,
        };
        Self::from_chain(chain).map_err(AppleError::Certificates)
    }

    fn from_chain(chain: Chain) -> Result<Self, String> {
        let key = KeyPair::from_pem(&chain.leaf_key_pem)
            .map_err(|error| format!("the signing key is not a P-256 key: {error}"))?;
        let encoding = EncodingKey::from_ec_pem(chain.leaf_key_pem.as_bytes())
            .map_err(|error| format!("jsonwebtoken refused the signing key: {error}"))?;
        let decoding = DecodingKey::from_ec_der(key.public_key_raw());
        let identity = Self {
            x5c: [&chain.leaf, &chain.intermediate, &chain.root]
                .iter()
                .map(|der| STANDARD.encode(der))
                .collect(),
            root_der: chain.root,
            encoding,
            decoding,
        };
        // Signing can then only fail for reasons this check would have met.
        let probe = identity.try_sign(&serde_json::json!({ "probe": true }))?;
        identity
            .verify::<serde_json::Value>(&probe)
            .ok_or("the signing key does not verify its own signature")?;
        Ok(identity)
    }

    /// The root CA certificate (DER): what clients trust.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root CA certificate, PEM-armoured.
    pub fn root_pem(&self) -> String {
        certificate_pem(&self.root_der)
    }

    /// A compact JWS of `payload` as the App Store signs: ES256 (raw `r‖s`), header
    /// `{"alg":"ES256","x5c":[leaf, intermediate, root]}`.
    pub fn sign(&self, payload: &impl Serialize) -> String {
        self.try_sign(payload)
            .expect("the signing key was checked with a probe signature when it was loaded")
    }

    fn try_sign(&self, payload: &impl Serialize) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.x5c = Some(self.x5c.clone());
        jsonwebtoken::encode(&header, payload, &self.encoding)
            .map_err(|error| format!("cannot sign: {error}"))
    }

    /// The payload of a JWS this identity signed, or `None` when it did not sign it (or it is
    /// not a JWS).
    pub fn verify<T: DeserializeOwned>(&self, jws: &str) -> Option<T> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<T>(jws, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(
        DnType::OrganizationalUnitName,
        "boxoffice simulated App Store",
    );
    name.push(DnType::OrganizationName, "boxoffice simulator");
    name.push(DnType::CountryName, "US");
    name
}

fn validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2049, 12, 31);
}

fn ca_params(common_name: &str, constraint: BasicConstraints) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name);
    params.is_ca = IsCa::Ca(constraint);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params);
    params
}

fn marker(oid: &[u64]) -> CustomExtension {
    // Non-critical, as `from_oid_content` makes it.
    CustomExtension::from_oid_content(oid, DER_NULL.to_vec())
}

/// A new root → intermediate → leaf chain.
fn mint() -> Result<Chain, AppleError> {
    let failed = |error: rcgen::Error| AppleError::Certificates(error.to_string());
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let root_params = ca_params(
        "boxoffice Simulated Apple Root CA - G3",
        BasicConstraints::Unconstrained,
    );
    let root = root_params.self_signed(&root_key).map_err(failed)?;
    let root_issuer = Issuer::from_params(&root_params, &root_key);

    let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let mut intermediate_params = ca_params(
        "boxoffice Simulated Apple Worldwide Developer Relations Certification Authority",
        BasicConstraints::Constrained(0),
    );
    intermediate_params.use_authority_key_identifier_extension = true;
    intermediate_params.custom_extensions = vec![marker(INTERMEDIATE_MARKER_OID)];
    let intermediate = intermediate_params
        .signed_by(&intermediate_key, &root_issuer)
        .map_err(failed)?;
    let intermediate_issuer = Issuer::from_params(&intermediate_params, &intermediate_key);

    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let mut leaf_params = CertificateParams::default();
    leaf_params.distinguished_name =
        distinguished_name("boxoffice Simulated Mac App Store and iTunes Store Receipt Signing");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.custom_extensions = vec![marker(LEAF_MARKER_OID)];
    validity(&mut leaf_params);
    let leaf = leaf_params
        .signed_by(&leaf_key, &intermediate_issuer)
        .map_err(failed)?;

    Ok(Chain {
        root: root.der().to_vec(),
        intermediate: intermediate.der().to_vec(),
        leaf: leaf.der().to_vec(),
        leaf_key_pem: leaf_key.serialize_pem(),
    })
}

/// The chain in `dir` if its four files are there; a new one written there if none is.
fn load_or_mint(dir: &Path) -> Result<Chain, AppleError> {
    let file_error = |reason: String| AppleError::CertificateFiles {
        path: dir.to_owned(),
        reason,
    };
    let files = [ROOT_FILE, INTERMEDIATE_FILE, LEAF_FILE, LEAF_KEY_FILE];
    let present = files.iter().filter(|file| dir.join(file).exists()).count();
    if present == files.len() {
        let read = |file: &str| {
            fs::read_to_string(dir.join(file))
                .map_err(|error| file_error(format!("{file}: {error}")))
        };
        let certificate = |file: &str| -> Result<Vec<u8>, AppleError> {
            let parsed =
                pem::parse(read(file)?).map_err(|error| file_error(format!("{file}: {error}")))?;
            if parsed.tag() != "CERTIFICATE" {
                return Err(file_error(format!("{file} does not hold a certificate")));
            }
            Ok(parsed.into_contents())
        };
        return Ok(Chain {
            root: certificate(ROOT_FILE)?,
            intermediate: certificate(INTERMEDIATE_FILE)?,
            leaf: certificate(LEAF_FILE)?,
            leaf_key_pem: read(LEAF_KEY_FILE)?,
        });
    }
    if present > 0 {
        return Err(file_error(format!(
            "some of {} are missing; remove the others to mint a new chain",
            files.join(", ")
        )));
    }
    let chain = mint()?;
    fs::create_dir_all(dir).map_err(|error| file_error(error.to_string()))?;
    write_new(&dir.join(ROOT_FILE), &certificate_pem(&chain.root), 0o644).map_err(file_error)?;
    write_new(
        &dir.join(INTERMEDIATE_FILE),
        &certificate_pem(&chain.intermediate),
        0o644,
    )
    .map_err(file_error)?;
    write_new(&dir.join(LEAF_FILE), &certificate_pem(&chain.leaf), 0o644).map_err(file_error)?;
    write_new(&dir.join(LEAF_KEY_FILE), &chain.leaf_key_pem, 0o600).map_err(file_error)?;
    Ok(chain)
}

/// A certificate PEM-armoured, with `\n` line ends.
fn certificate_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Writes a file that must not exist yet, with `mode` on Unix.
pub(crate) fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
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
    use super::*;

    #[test]
    fn signatures_carry_the_chain_and_verify() {
        let identity = SigningIdentity::load_or_create(None).unwrap();
        let jws = identity.sign(&serde_json::json!({ "transactionId": "1" }));
        let header = jsonwebtoken::decode_header(&jws).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ, None);
        let chain = header.x5c_der().unwrap().unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[2], identity.root_der());
        let claims: serde_json::Value = identity.verify(&jws).unwrap();
        assert_eq!(claims["transactionId"], "1");
        // The signature is JWS's raw r‖s, not DER.
        let signature = jws.rsplit('.').next().unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap();
        assert_eq!(raw.len(), 64);
        assert!(identity.verify::<serde_json::Value>("not.a.jws").is_none());
    }

    #[test]
    fn a_data_directory_keeps_the_root() {
        let dir = std::env::temp_dir().join(format!("apple-certs-{}", uuid::Uuid::new_v4()));
        let first = SigningIdentity::load_or_create(Some(&dir)).unwrap();
        let second = SigningIdentity::load_or_create(Some(&dir)).unwrap();
        assert_eq!(first.root_der(), second.root_der());
        let jws = first.sign(&serde_json::json!({ "a": 1 }));
        assert!(second.verify::<serde_json::Value>(&jws).is_some());
        fs::remove_file(dir.join(LEAF_FILE)).unwrap();
        assert!(matches!(
            SigningIdentity::load_or_create(Some(&dir)),
            Err(AppleError::CertificateFiles { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
