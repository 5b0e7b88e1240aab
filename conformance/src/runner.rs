//! Runs scenarios one after another against one target.
//!
//! One at a time, on purpose: some scenarios move the target's virtual clock, which every
//! other scenario's sessions and tokens would feel if they ran alongside.

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::report::{Outcome, ScenarioResult, SuiteReport};
use crate::scenario::Scenario;
use crate::step::Abort;

/// A scenario that takes longer than this is failed, so a hung target cannot hang CI.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// The scenarios whose name contains `only` (all of them without a filter).
pub fn select<'a>(scenarios: &'a [Scenario], only: Option<&str>) -> Vec<&'a Scenario> {
    scenarios
        .iter()
        .filter(|scenario| only.is_none_or(|only| scenario.name.contains(only)))
        .collect()
}

/// Runs each scenario, calling `on_result` as each ends (for progress output).
pub async fn run(
    context: &Context,
    scenarios: &[&Scenario],
    mut on_result: impl FnMut(&ScenarioResult),
) -> SuiteReport {
    let started = Instant::now();
    let mut results = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let began = Instant::now();
        let outcome = match tokio::time::timeout(SCENARIO_TIMEOUT, (scenario.run)(context)).await {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(Abort::Fail(message))) => Outcome::Failed(message),
            Ok(Err(Abort::Skip(reason))) => Outcome::Skipped(reason),
            Err(_) => Outcome::Failed(format!(
                "did not finish within {} s",
                SCENARIO_TIMEOUT.as_secs()
            )),
        };
        let result = ScenarioResult {
            name: scenario.name.to_owned(),
            area: scenario.area().to_owned(),
            summary: scenario.summary.to_owned(),
            outcome,
            duration: began.elapsed(),
        };
        on_result(&result);
        results.push(result);
    }
    SuiteReport {
        target: context.target.base_url.to_string(),
        results,
        duration: started.elapsed(),
    }
}
