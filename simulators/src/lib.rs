//! Offline, stateful fakes of the outside parties boxoffice talks to.
//!
//! Each simulator speaks its provider's own wire protocol closely enough that the
//! provider's official SDK works against it unchanged, keeps what it is told in memory,
//! reads time only from the host's clock ([`clock::Now`]), and has a small control
//! surface that plays the human or the store.

pub mod amazon;
pub mod apple;
pub mod clock;
mod delivery;
pub mod google;
pub mod roku;
pub mod sso;
pub mod stripe;
