//! Google Play: the client the core verifies purchase tokens and reads Real-time developer
//! notifications with (`client.rs`), and Google's JSON (`wire.rs`).

mod client;
mod wire;

pub use client::{GoogleClient, GooglePush, GooglePushError, GoogleSettings};
