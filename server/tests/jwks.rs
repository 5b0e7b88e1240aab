//! The JWKS is fetched from the SSO provider over HTTP; made-up key ids must not turn every
//! request into a fetch.

use boxoffice::core::identity::{ClaimsMap, SigningKeys};
use boxoffice::core::{CoreError, IdentitySettings, IdentityVerifier};
use boxoffice::providers::sso::SsoClient;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn forged_token(kid: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = json!({ "sub": "x", "iss": "https://sso.example.com", "aud": "app", "exp": 4_000_000_000u64 });
    format!(
        "{}.{}.c2lnbmF0dXJl",
        engine.encode(serde_json::to_string(&header).unwrap()),
        engine.encode(claims.to_string())
    )
}

fn verifier(jwks_url: String) -> IdentityVerifier {
    IdentityVerifier::new(
        IdentitySettings {
            issuer: "https://sso.example.com".into(),
            audiences: vec!["app".into()],
            keys: SigningKeys::Jwks { url: jwks_url },
            claims: ClaimsMap::default(),
            leeway_seconds: 0,
            password_login: None,
        },
        SsoClient::new(),
    )
}

#[tokio::test]
async fn unknown_key_ids_fetch_the_jwks_at_most_once_per_interval() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": [] })))
        .expect(1)
        .mount(&provider)
        .await;
    let verifier = verifier(format!("{}/.well-known/jwks.json", provider.uri()));
    for attempt in 0..25 {
        match verifier
            .verify(
                &forged_token(&format!("made-up-{attempt}")),
                chrono::Utc::now(),
            )
            .await
        {
            Err(CoreError::Unauthenticated(reason)) => {
                assert_eq!(reason, "The token is signed by an unknown key")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    provider.verify().await;
}

#[tokio::test]
async fn an_unreachable_provider_without_cached_keys_is_an_outage_not_a_refusal() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&provider)
        .await;
    let verifier = verifier(format!("{}/.well-known/jwks.json", provider.uri()));
    assert!(matches!(
        verifier
            .verify(&forged_token("k1"), chrono::Utc::now())
            .await,
        Err(CoreError::ProviderUnavailable { .. })
    ));
    // Within the refresh floor the provider is not asked again.
    assert!(matches!(
        verifier
            .verify(&forged_token("k2"), chrono::Utc::now())
            .await,
        Err(CoreError::Unauthenticated(_))
    ));
}
