//! The façades: each folder translates one published API's wire format to core calls.
//!
//! Invariant: a façade never reaches into another façade, and no SQL or provider call
//! happens in a handler.

mod strict;

pub mod cloudpay;
pub mod sim_control;
pub mod webhooks;
