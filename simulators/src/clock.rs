//! Where simulators read the time.
//!
//! A simulator never asks the machine for the time: the host hands it a [`Now`] closure.
//! In simulator mode and in tests that closure reads the host's virtual clock, so moving
//! that clock forward expires tokens, confirmation codes and sessions in the simulators
//! exactly as it expires them in the server. The server and the simulators share no code,
//! only this closure type.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The current time, as the host's clock sees it.
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;
