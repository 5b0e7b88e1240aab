//! OAuth 2.0 for the service account: the JWT bearer grant at the token endpoint
//! (RFC 7523, as Google's `https://oauth2.googleapis.com/token` takes it) and the access
//! tokens it issues, checked on every API call. Times are the host's.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::{ApiError, OAuthError};
use super::keys::RsaKey;

/// The scope the Play Developer API needs.
pub const ANDROIDPUBLISHER_SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";

/// `grant_type` of the service account flow.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The audiences Google's token endpoint accepts in an assertion, besides the simulator's
/// own token URI: google-auth always sends the first.
const TOKEN_AUDIENCES: [&str; 3] = [
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];

/// How long an access token lives; Google answers `expires_in: 3599`.
pub const ACCESS_TOKEN_LIFETIME: TimeDelta = TimeDelta::seconds(3599);

/// The longest an assertion may live (`exp - iat`).
const MAX_ASSERTION_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// How far the signer's clock may be from the host's.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

const BAD_TIMES: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a \
reasonable timeframe. Check your iat and exp values in the JWT claim.";

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    #[serde(default)]
    scope: Option<String>,
    aud: String,
    iat: i64,
    exp: i64,
}

/// Checks a token request (the form body of `POST /token`) from the service account
/// `email` whose key is `key`: the scopes it is granted.
pub fn exchange(
    form: &[u8],
    key: Option<&RsaKey>,
    email: &str,
    own_token_uri: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, OAuthError> {
    let mut grant_type = None;
    let mut assertion = None;
    for (name, value) in url::form_urlencoded::parse(form) {
        match name.as_ref() {
            "grant_type" => grant_type = Some(value.into_owned()),
            "assertion" => assertion = Some(value.into_owned()),
            _ => {}
        }
    }
    let grant_type = grant_type
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: grant_type"))?;
    if grant_type != JWT_BEARER {
        return Err(OAuthError::unsupported_grant_type(&grant_type));
    }
    let assertion = assertion
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: assertion"))?;
    let unverified: AssertionClaims = unverified_claims(&assertion)
        .ok_or_else(|| OAuthError::invalid_grant("Invalid JWT: the assertion is not a JWT."))?;
    let key = key
        .filter(|_| unverified.iss == email)
        .ok_or_else(|| OAuthError::invalid_grant("Invalid grant: account not found"))?;
    let claims: AssertionClaims = key
        .verify(&assertion)
        .ok_or_else(|| OAuthError::invalid_grant("Invalid JWT Signature."))?;
    if !TOKEN_AUDIENCES.contains(&claims.aud.as_str()) && claims.aud != own_token_uri {
        return Err(OAuthError::invalid_grant(&format!(
            "Invalid JWT: Failed audience check. The right audience is {}",
            TOKEN_AUDIENCES[0]
        )));
    }
    let (Some(issued), Some(expires)) = (
        DateTime::from_timestamp(claims.iat, 0),
        DateTime::from_timestamp(claims.exp, 0),
    ) else {
        return Err(OAuthError::invalid_grant(BAD_TIMES));
    };
    if expires <= issued
        || expires - issued > MAX_ASSERTION_LIFETIME
        || issued > now + CLOCK_SKEW
        || expires < now - CLOCK_SKEW
    {
        return Err(OAuthError::invalid_grant(BAD_TIMES));
    }
    let scopes: Vec<String> = claims
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope());
    }
    Ok(scopes)
}

/// The claims of a JWT without checking its signature, to find whose key checks it.
fn unverified_claims(token: &str) -> Option<AssertionClaims> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A stable, Google-looking numeric id (21 digits) for a service account: its `client_id`,
/// and the `sub` and `azp` of the OIDC tokens it is named in.
pub fn numeric_id(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let mut id = String::from("1");
    for byte in digest.iter() {
        if id.len() == 21 {
            break;
        }
        id.push(char::from(b'0' + byte % 10));
    }
    id
}

struct Grant {
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
}

/// The access tokens issued and not yet expired.
#[derive(Default)]
pub struct AccessTokens {
    grants: HashMap<String, Grant>,
    /// Tokens by expiry, to forget the expired ones.
    expiries: BTreeSet<(DateTime<Utc>, String)>,
}

impl AccessTokens {
    /// A new `ya29.` token for these scopes, valid [`ACCESS_TOKEN_LIFETIME`] from `now`.
    pub fn issue(&mut self, scopes: Vec<String>, now: DateTime<Utc>) -> String {
        while let Some((expires_at, token)) = self.expiries.first().cloned() {
            if expires_at > now {
                break;
            }
            self.expiries.remove(&(expires_at, token.clone()));
            self.grants.remove(&token);
        }
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = rand::rng();
        let random: String = (0..180)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let token = format!("ya29.c.{random}");
        let expires_at = now + ACCESS_TOKEN_LIFETIME;
        self.expiries.insert((expires_at, token.clone()));
        self.grants
            .insert(token.clone(), Grant { scopes, expires_at });
        token
    }

    /// Checks `Authorization: Bearer <token>` for a live token with the Play Developer
    /// API's scope.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let Some(authorization) = authorization
            .map(str::trim)
            .filter(|value| !value.is_empty())
        else {
            return Err(ApiError::login_required());
        };
        let token = authorization
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(ApiError::invalid_credentials)?;
        let grant = self
            .grants
            .get(token)
            .filter(|grant| grant.expires_at > now)
            .ok_or_else(ApiError::invalid_credentials)?;
        if !grant
            .scopes
            .iter()
            .any(|scope| scope == ANDROIDPUBLISHER_SCOPE)
        {
            return Err(ApiError::insufficient_scope(ANDROIDPUBLISHER_SCOPE));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    const EMAIL: &str = "play@project.iam.gserviceaccount.com";

    #[derive(Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        scope: &'a str,
        aud: &'a str,
        iat: i64,
        exp: i64,
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap()
    }

    fn form(assertion: &str) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", assertion)
            .finish()
            .into_bytes()
    }

    fn assertion(key: &RsaKey, iss: &str, aud: &str, iat: i64, exp: i64) -> String {
        key.sign(&Claims {
            iss,
            scope: ANDROIDPUBLISHER_SCOPE,
            aud,
            iat,
            exp,
        })
        .unwrap()
    }

    #[test]
    fn a_signed_grant_is_exchanged_and_anything_else_refused() {
        let key = RsaKey::generate().unwrap();
        let other = RsaKey::generate().unwrap();
        let t = now().timestamp();
        let own = "http://127.0.0.1/sim/google/token";
        let check = |assertion: String| exchange(&form(&assertion), Some(&key), EMAIL, own, now());
        let google = TOKEN_AUDIENCES[0];
        assert_eq!(
            check(assertion(&key, EMAIL, google, t, t + 3600)).unwrap(),
            [ANDROIDPUBLISHER_SCOPE]
        );
        assert!(check(assertion(&key, EMAIL, own, t, t + 3600)).is_ok());
        let refusal = |assertion: String| check(assertion).unwrap_err().error_description;
        assert_eq!(
            refusal(assertion(&other, EMAIL, google, t, t + 3600)),
            "Invalid JWT Signature."
        );
        assert_eq!(
            refusal(assertion(&key, "someone@else.com", google, t, t + 3600)),
            "Invalid grant: account not found"
        );
        assert!(
            refusal(assertion(&key, EMAIL, "https://example.com", t, t + 3600))
                .contains("audience")
        );
        assert_eq!(
            refusal(assertion(&key, EMAIL, google, t, t + 7200)),
            BAD_TIMES
        );
        assert_eq!(
            refusal(assertion(&key, EMAIL, google, t - 7200, t - 3600)),
            BAD_TIMES
        );
        let wrong_grant = exchange(b"grant_type=password", Some(&key), EMAIL, own, now());
        assert_eq!(wrong_grant.unwrap_err().error, "unsupported_grant_type");
    }

    #[test]
    fn tokens_need_the_scope_and_expire() {
        let mut tokens = AccessTokens::default();
        let token = tokens.issue(vec![ANDROIDPUBLISHER_SCOPE.into()], now());
        let bearer = format!("Bearer {token}");
        assert!(tokens.authorize(Some(&bearer), now()).is_ok());
        assert_eq!(tokens.authorize(None, now()).unwrap_err().code(), 401);
        assert_eq!(
            tokens
                .authorize(Some("Bearer ya29.unknown"), now())
                .unwrap_err()
                .code(),
            401
        );
        assert_eq!(
            tokens
                .authorize(Some(&bearer), now() + ACCESS_TOKEN_LIFETIME)
                .unwrap_err()
                .code(),
            401
        );
        let narrow = tokens.issue(
            vec!["https://www.googleapis.com/auth/cloud-platform".into()],
            now(),
        );
        assert_eq!(
            tokens
                .authorize(Some(&format!("Bearer {narrow}")), now())
                .unwrap_err()
                .code(),
            403
        );
        assert_eq!(numeric_id(EMAIL).len(), 21);
    }
}
