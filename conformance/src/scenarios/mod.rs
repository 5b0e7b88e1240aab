//! Every scenario, by area, in the order a run takes them: sessions first, since everything
//! else builds on them.

pub mod account;
pub mod auth;
pub mod device_lock;
pub mod geo;
pub mod iap;
pub mod ownership;
pub mod packages;
pub mod payments;
pub mod playback;
pub mod scripts;
pub mod session;

use crate::scenario::Scenario;

/// The whole suite.
pub fn all() -> Vec<Scenario> {
    [
        session::scenarios(),
        device_lock::scenarios(),
        geo::scenarios(),
        packages::scenarios(),
        account::scenarios(),
        auth::scenarios(),
        playback::scenarios(),
        scripts::scenarios(),
        ownership::scenarios(),
        payments::scenarios(),
        iap::scenarios(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
