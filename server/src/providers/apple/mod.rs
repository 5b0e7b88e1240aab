//! The App Store: the client the core verifies purchases and reads notifications with
//! (`client.rs`), Apple's JSON (`wire.rs`), and the checking of what Apple signs
//! (`jws.rs`).

mod client;
mod jws;
mod wire;

pub use client::{AppleClient, AppleNotification, AppleNotificationError, AppleSettings};
pub use jws::JwsError;
