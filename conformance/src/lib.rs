//! boxoffice's conformance suite: end-to-end CloudPay flows over real HTTP against any base
//! URL — a simulator-mode server on a laptop or a deployed environment.
//!
//! Layers, bottom up:
//! - [`config`]: what the target is and offers, from `GET /sim/control/config` or a file;
//! - [`http`], [`cloudpay`], [`sso`], [`clock`], [`jwt`], [`stripe`]: clients for the façade
//!   (with its four credential carriers), the identity provider, the virtual clock, token
//!   forgery, and the Stripe customer's side;
//! - [`checks`]: the documented wire shapes, member by member;
//! - [`context`], [`scenario`], [`scenarios`]: the flows, one module per area;
//! - [`runner`], [`report`]: running them one by one, the human summary and JUnit XML.
//!
//! A scenario passes, fails with the exchange that broke the contract, or is skipped with
//! the reason (a simulator-only surface the target lacks); it is never silently passed.

pub mod checks;
pub mod clock;
pub mod cloudpay;
pub mod config;
pub mod context;
pub mod http;
pub mod jwt;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scenarios;
pub mod sso;
pub mod step;
pub mod stores;
pub mod stripe;

pub use config::{ConfigError, ConfigSource, Target, TargetConfig};
pub use context::Context;
pub use report::{Outcome, ScenarioResult, SuiteReport};

/// Runs every scenario whose name contains `only` (all without it) against the target,
/// calling `on_result` as each one ends.
pub async fn run_suite(
    target: Target,
    only: Option<&str>,
    on_result: impl FnMut(&ScenarioResult),
) -> SuiteReport {
    let scenarios = scenarios::all();
    let selected = runner::select(&scenarios, only);
    let context = Context::new(target);
    runner::run(&context, &selected, on_result).await
}
