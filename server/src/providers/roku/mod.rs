//! Roku Pay: the client the core validates Roku transactions and reads Roku's push
//! notifications with (`client.rs`), and Roku's JSON (`wire.rs`).

mod client;
mod wire;

pub use client::{
    ROKU_API_BASE, ROKU_GRACE_PERIOD_DAYS, ROKU_PUSH_ISSUER, ROKU_PUSH_JWKS_URL,
    ROKU_PUSH_MESSAGE_TYPE, ROKU_TEST_PUSH_JWKS_URL, RokuClient, RokuNotification,
    RokuNotificationError, RokuRefund, RokuSettings,
};
