//! Public keys a provider publishes as a JWKS document (an SSO provider's token keys,
//! Google's OIDC keys for Pub/Sub pushes), fetched on first need and fetched again when a
//! token names a key id not seen yet, so key rotation needs no restart.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::ProviderError;

/// How often an unknown `kid` may trigger a fresh fetch. Providers rotate keys rarely;
/// without a floor, tokens with made-up kids would turn every request into a fetch.
const REFRESH_FLOOR: Duration = Duration::from_secs(60);

/// A key and the algorithm it verifies.
pub type VerificationKey = Arc<(Algorithm, DecodingKey)>;

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, VerificationKey>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
pub struct JwksCache {
    keys: RwLock<Keys>,
    /// Held while a fetch is in flight, so concurrent misses wait for one fetch.
    refresh: Mutex<()>,
}

impl JwksCache {
    /// The key `kid`: `Ok(None)` when the provider does not publish it. An error only when
    /// the document could not be fetched and no key is known yet.
    pub async fn key<F, Fut>(
        &self,
        kid: &str,
        fetch: F,
    ) -> Result<Option<VerificationKey>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<JwkSet, ProviderError>>,
    {
        if let Some(key) = self.keys.read().await.by_id.get(kid) {
            return Ok(Some(key.clone()));
        }
        let _one_fetch_at_a_time = self.refresh.lock().await;
        {
            let keys = self.keys.read().await;
            if let Some(key) = keys.by_id.get(kid) {
                return Ok(Some(key.clone()));
            }
            if keys
                .fetched_at
                .is_some_and(|at| at.elapsed() < REFRESH_FLOOR)
            {
                return Ok(None);
            }
        }
        let fetched = fetch().await;
        let mut keys = self.keys.write().await;
        keys.fetched_at = Some(Instant::now());
        let jwks = match fetched {
            Ok(jwks) => jwks,
            // Keys already held stay valid; without any, nothing can be verified.
            Err(_) if !keys.by_id.is_empty() => return Ok(None),
            Err(error) => return Err(error),
        };
        keys.by_id = jwks
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                let key_id = jwk.common.key_id.clone()?;
                let algorithm = match jwk.common.key_algorithm {
                    Some(algorithm) => algorithm.to_string().parse().ok()?,
                    None => Algorithm::RS256,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((key_id, Arc::new((algorithm, key))))
            })
            .collect();
        Ok(keys.by_id.get(kid).cloned())
    }
}
