//! Reading a JWT's claims, and forging the bad tokens an attacker would try: a changed
//! payload under the original signature, `alg: none`, and HS256 signed with the public RSA
//! key's bytes (the RS/HS confusion attack).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::step::{Step, fail};

/// The three segments of a compact JWS.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
}

fn segments(token: &str) -> Step<Segments<'_>> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(_signature), None) => Ok(Segments { header, payload }),
        _ => Err(fail(format!(
            "{} is not a compact JWT (three dot-separated parts)",
            crate::http::shorten_token(token)
        ))),
    }
}

fn decode_segment(segment: &str, what: &str) -> Step<Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|error| fail(format!("the JWT's {what} is not base64url: {error}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| fail(format!("the JWT's {what} is not JSON: {error}")))
}

fn encode_segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The token's header.
pub fn header(token: &str) -> Step<Value> {
    decode_segment(segments(token)?.header, "header")
}

/// The token's claims (unverified: the server verifies; the suite only reads).
pub fn claims(token: &str) -> Step<Value> {
    decode_segment(segments(token)?.payload, "payload")
}

/// The same token with one payload character changed (a different valid base64url
/// character, so the token still parses): the signature no longer matches.
pub fn flip_payload_character(token: &str) -> Step<String> {
    let parts = segments(token)?;
    if parts.payload.is_empty() {
        return Err(fail("the JWT has an empty payload"));
    }
    // The middle of the payload is claim text, never base64 padding bits at the end.
    let at = parts.payload.len() / 2;
    let mut payload: Vec<u8> = parts.payload.as_bytes().to_vec();
    payload[at] = if payload[at] == b'A' { b'B' } else { b'A' };
    let payload = String::from_utf8(payload).map_err(|_| fail("the JWT payload is not ASCII"))?;
    let signature = token.rsplit('.').next().unwrap_or_default();
    Ok(format!("{}.{payload}.{signature}", parts.header))
}

/// The same token claiming another identity (`sub` and `email` changed) under the original
/// signature: what a forger would send.
pub fn with_changed_identity(token: &str) -> Step<String> {
    let parts = segments(token)?;
    let mut claims = decode_segment(parts.payload, "payload")?;
    if let Some(map) = claims.as_object_mut() {
        map.insert("sub".into(), json!(uuid::Uuid::new_v4().to_string()));
        map.insert("email".into(), json!("someone.else@example.com"));
    }
    let signature = token.rsplit('.').next().unwrap_or_default();
    Ok(format!(
        "{}.{}.{signature}",
        parts.header,
        encode_segment(&claims)
    ))
}

/// The token's claims under `{"alg":"none"}` and no signature.
pub fn unsigned(token: &str) -> Step<String> {
    let parts = segments(token)?;
    Ok(format!(
        "{}.{}.",
        encode_segment(&json!({"alg": "none", "typ": "JWT"})),
        parts.payload
    ))
}

/// The token's claims signed HS256 with `secret`, keeping its `kid`: a verifier that takes
/// the algorithm from the token and the key bytes from its JWKS would accept it.
pub fn resigned_hs256(token: &str, secret: &[u8]) -> Step<String> {
    let parts = segments(token)?;
    let mut header = decode_segment(parts.header, "header")?;
    if let Some(map) = header.as_object_mut() {
        map.insert("alg".into(), json!("HS256"));
    }
    let signing_input = format!("{}.{}", encode_segment(&header), parts.payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|error| fail(format!("HMAC key: {error}")))?;
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// The modulus bytes of the JWKS key a token names (or the first RSA key).
pub fn rsa_modulus(jwks: &Value, kid: Option<&str>) -> Option<Vec<u8>> {
    let keys = jwks.get("keys")?.as_array()?;
    let key = keys
        .iter()
        .find(|key| kid.is_some() && key.get("kid").and_then(Value::as_str) == kid)
        .or_else(|| {
            keys.iter()
                .find(|key| key.get("kty").and_then(Value::as_str) == Some("RSA"))
        })?;
    let modulus = key.get("n")?.as_str()?;
    URL_SAFE_NO_PAD.decode(modulus.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        format!(
            "{}.{}.c2ln",
            encode_segment(&json!({"alg": "RS256", "kid": "k1"})),
            encode_segment(&json!({"sub": "s", "email": "a@example.com", "given_name": "Ann"}))
        )
    }

    #[test]
    fn claims_and_header_read_back() {
        let token = sample();
        assert_eq!(claims(&token).expect("claims")["given_name"], "Ann");
        assert_eq!(header(&token).expect("header")["kid"], "k1");
    }

    #[test]
    fn forgeries_change_what_they_say() {
        let token = sample();
        assert_ne!(flip_payload_character(&token).expect("flip"), token);
        let changed = with_changed_identity(&token).expect("changed");
        assert_eq!(
            claims(&changed).expect("claims")["email"],
            "someone.else@example.com"
        );
        assert!(changed.ends_with(".c2ln"));
        let none = unsigned(&token).expect("none");
        assert_eq!(header(&none).expect("header")["alg"], "none");
        assert!(none.ends_with('.'));
        let hs = resigned_hs256(&token, b"key").expect("hs256");
        assert_eq!(header(&hs).expect("header")["alg"], "HS256");
        assert_eq!(header(&hs).expect("header")["kid"], "k1");
    }

    #[test]
    fn modulus_comes_from_the_named_key() {
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": URL_SAFE_NO_PAD.encode([1u8, 2])},
            {"kty": "RSA", "kid": "b", "n": URL_SAFE_NO_PAD.encode([3u8, 4])}
        ]});
        assert_eq!(rsa_modulus(&jwks, Some("b")), Some(vec![3, 4]));
        assert_eq!(rsa_modulus(&jwks, Some("zz")), Some(vec![1, 2]));
    }
}
