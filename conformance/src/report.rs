//! What a run found: one line per scenario for people, JUnit XML for CI dashboards.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// How one scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// What broke the contract, with the exchange that showed it.
    Failed(String),
    /// Why it could not run against this target.
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub area: String,
    pub summary: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

impl ScenarioResult {
    /// `PASS  name (0.12 s)`, `FAIL  name (…)` followed by the reason, `SKIP  name: why`.
    pub fn human_line(&self) -> String {
        let seconds = self.duration.as_secs_f64();
        match &self.outcome {
            Outcome::Passed => format!("PASS  {} ({seconds:.2} s)", self.name),
            Outcome::Failed(message) => {
                format!("FAIL  {} ({seconds:.2} s)\n      {message}", self.name)
            }
            Outcome::Skipped(reason) => format!("SKIP  {}: {reason}", self.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Everything a run produced, in the order the scenarios ran.
#[derive(Debug, Clone, Default)]
pub struct SuiteReport {
    pub target: String,
    pub results: Vec<ScenarioResult>,
    pub duration: Duration,
}

impl SuiteReport {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for result in &self.results {
            match result.outcome {
                Outcome::Passed => counts.passed += 1,
                Outcome::Failed(_) => counts.failed += 1,
                Outcome::Skipped(_) => counts.skipped += 1,
            }
        }
        counts
    }

    pub fn succeeded(&self) -> bool {
        self.counts().failed == 0
    }

    /// `N passed, N failed, N skipped`: the runner's last line.
    pub fn summary_line(&self) -> String {
        let counts = self.counts();
        format!(
            "{} passed, {} failed, {} skipped",
            counts.passed, counts.failed, counts.skipped
        )
    }

    /// One JUnit test suite per area, one test case per scenario.
    pub fn to_junit(&self) -> Report {
        let mut report = Report::new("boxoffice-conformance");
        report.set_time(self.duration);
        let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
        for result in &self.results {
            let mut status = match &result.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed(message) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(first_line(message))
                        .set_description(message.as_str());
                    status
                }
                Outcome::Skipped(reason) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(reason.as_str());
                    status
                }
            };
            if let Outcome::Failed(_) = result.outcome {
                status.set_type("contract violation");
            }
            let mut case = TestCase::new(result.name.as_str(), status);
            case.set_classname(format!("conformance.{}", result.area))
                .set_time(result.duration)
                .set_system_out(result.summary.as_str());
            suites
                .entry(result.area.as_str())
                .or_insert_with(|| {
                    let mut suite = TestSuite::new(format!("conformance.{}", result.area));
                    suite.add_property(("target", self.target.as_str()));
                    suite
                })
                .add_test_case(case);
        }
        for (_, mut suite) in suites {
            let time = suite
                .test_cases
                .iter()
                .filter_map(|case| case.time)
                .sum::<Duration>();
            suite.set_time(time);
            report.add_test_suite(suite);
        }
        report
    }

    pub fn write_junit(&self, path: &Path) -> Result<(), JunitError> {
        let xml = self.to_junit().to_string().map_err(JunitError::Serialize)?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| JunitError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        std::fs::write(path, xml).map_err(|source| JunitError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("cannot serialise the JUnit report: {0}")]
    Serialize(quick_junit::SerializeError),
    #[error("cannot write the JUnit report to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            area: name.split('.').next().unwrap_or(name).into(),
            summary: "what it checks".into(),
            outcome,
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn junit_groups_by_area_and_counts_outcomes() {
        let report = SuiteReport {
            target: "http://127.0.0.1:1".into(),
            results: vec![
                result("session.a", Outcome::Passed),
                result("session.b", Outcome::Failed("broke; GET /x → 500".into())),
                result("geo.c", Outcome::Skipped("no fixture".into())),
            ],
            duration: Duration::from_millis(15),
        };
        assert_eq!(report.summary_line(), "1 passed, 1 failed, 1 skipped");
        let xml = report.to_junit().to_string().expect("serialises");
        let parsed = Report::deserialize_from_str(&xml).expect("parses back");
        assert_eq!(parsed.tests, 3);
        assert_eq!(parsed.failures, 1);
        assert_eq!(parsed.skipped, 1);
        assert_eq!(parsed.test_suites.len(), 2);
    }
}
