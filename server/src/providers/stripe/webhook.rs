//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`,
//! keyed with the endpoint's `whsec_…` secret over `"<t>.<raw body>"`. Several `v1` entries
//! may be present (while a secret is being rolled); one match is enough.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp and v1 signature")]
    Malformed,
    #[error("no v1 signature matches the payload")]
    Mismatch,
    #[error("the signature is {age_seconds} s old, more than the {tolerance_seconds} s tolerated")]
    Stale {
        age_seconds: i64,
        tolerance_seconds: i64,
    },
}

/// Checks a webhook as Stripe's libraries do: the signature first, then that its timestamp
/// is no older than `tolerance_seconds` at `now` (the server's Clock).
pub fn verify_signature(
    header: Option<&str>,
    payload: &[u8],
    secret: &str,
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse().ok(),
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = signatures.iter().any(|signature| {
        let mut mac = signer(secret);
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.verify_slice(signature).is_ok()
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    let age_seconds = now.timestamp() - timestamp;
    if age_seconds > tolerance_seconds {
        return Err(SignatureError::Stale {
            age_seconds,
            tolerance_seconds,
        });
    }
    Ok(())
}

fn signer(secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

/// The header Stripe would send for `payload` at `timestamp`; for tests and tools that
/// play Stripe.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = signer(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("valid time")
    }

    #[test]
    fn accepts_its_own_signature_within_tolerance() {
        let header = sign(b"{\"id\":\"evt_1\"}", SECRET, 1_700_000_000);
        assert_eq!(
            verify_signature(
                Some(&header),
                b"{\"id\":\"evt_1\"}",
                SECRET,
                at(1_700_000_100),
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampering_other_secrets_staleness_and_garbage() {
        let header = sign(b"{\"id\":\"evt_1\"}", SECRET, 1_700_000_000);
        let now = at(1_700_000_010);
        assert_eq!(
            verify_signature(Some(&header), b"{\"id\":\"evt_2\"}", SECRET, now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(
                Some(&header),
                b"{\"id\":\"evt_1\"}",
                "whsec_other",
                now,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(
                Some(&header),
                b"{\"id\":\"evt_1\"}",
                SECRET,
                at(1_700_000_301),
                300
            ),
            Err(SignatureError::Stale {
                age_seconds: 301,
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            verify_signature(None, b"{}", SECRET, now, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(Some("v1=abc"), b"{}", SECRET, now, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(Some("t=1700000000"), b"{}", SECRET, now, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let good = sign(b"{}", SECRET, 1_700_000_000);
        let v1 = good
            .split_once("v1=")
            .map(|(_, sig)| sig)
            .unwrap_or_default();
        let header = format!("t=1700000000,v1={},v1={v1},v0=deadbeef", "00".repeat(32));
        assert_eq!(
            verify_signature(Some(&header), b"{}", SECRET, at(1_700_000_000), 300),
            Ok(())
        );
    }
}
