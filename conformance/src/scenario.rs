//! A scenario: one named end-to-end flow with a one-line summary of what it proves.

use std::future::Future;
use std::pin::Pin;

use crate::context::Context;
use crate::step::Step;

pub type ScenarioFuture<'a> = Pin<Box<dyn Future<Output = Step> + Send + 'a>>;
pub type ScenarioFn = for<'a> fn(&'a Context) -> ScenarioFuture<'a>;

#[derive(Clone, Copy)]
pub struct Scenario {
    /// `area.what`, e.g. `session.email_password_lifecycle`; `--only` matches on it.
    pub name: &'static str,
    /// What it checks, for people reading the report.
    pub summary: &'static str,
    pub run: ScenarioFn,
}

impl Scenario {
    /// The part of the name before the first dot: the JUnit test suite it belongs to.
    pub fn area(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `scenario!("area.name", "summary", async_fn)`: a [`Scenario`] running `async_fn(ctx)`.
#[macro_export]
macro_rules! scenario {
    ($name:literal, $summary:literal, $run:path) => {
        $crate::scenario::Scenario {
            name: $name,
            summary: $summary,
            run: |context| Box::pin($run(context)),
        }
    };
}
