//! Outbound HTTP clients, one folder per provider: `client.rs` (URLs, auth, calls) and
//! `wire.rs` (the provider's JSON and its conversions). Base URLs come from configuration,
//! so the same client talks to the real provider or to its simulator.

pub mod amazon;
pub mod apple;
pub mod google;
pub mod jwks;
pub mod roku;
pub mod sso;
pub mod store;
pub mod stripe;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("could not reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} answered with a body we cannot read: {detail}")]
    Decode { url: String, detail: String },
}
