//! The whole suite against an in-process simulator-mode server: through the library (all
//! passing, JUnit written and read back) and through the binary as QA runs it, including
//! the config-file path a deployment without simulators takes.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::TestServer;
use conformance::config::Capabilities;
use conformance::{ConfigSource, Outcome, Target, run_suite, scenarios};
use serde_json::{Value, json};

fn junit(path: &std::path::Path) -> quick_junit::Report {
    let xml = std::fs::read_to_string(path).expect("the JUnit file exists");
    quick_junit::Report::deserialize_from_str(&xml).expect("the JUnit file parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_against_simulator_mode() {
    let server = TestServer::start().await;
    let target = Target::discover(server.base_url(), None)
        .await
        .expect("the simulator describes itself");
    assert!(
        matches!(target.source, ConfigSource::Simulator(_)),
        "{:?}",
        target.source
    );
    assert_eq!(
        target.capabilities,
        Capabilities {
            sign_up: true,
            id_tokens: true,
            token_minting: true,
            clock: true,
            stripe_customer: true,
        }
    );

    let report = run_suite(target, None, |result| eprintln!("{}", result.human_line())).await;
    let problems: Vec<String> = report
        .results
        .iter()
        .filter(|result| result.outcome != Outcome::Passed)
        .map(|result| result.human_line())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(report.results.len(), scenarios::all().len());

    let path = server.scratch("junit.xml");
    report
        .write_junit(&path)
        .expect("the JUnit file is written");
    let parsed = junit(&path);
    assert_eq!(parsed.tests, scenarios::all().len());
    assert_eq!((parsed.failures, parsed.errors, parsed.skipped), (0, 0, 0));
    let names: BTreeSet<String> = parsed
        .test_suites
        .iter()
        .flat_map(|suite| suite.test_cases.iter())
        .map(|case| case.name.as_str().to_owned())
        .collect();
    let expected: BTreeSet<String> = scenarios::all()
        .iter()
        .map(|scenario| scenario.name.to_owned())
        .collect();
    assert_eq!(names, expected);
    server.stop().await;
}

fn run_binary(arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(arguments)
        .env_remove("CONFORMANCE_BASE_URL")
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

/// The binary blocks; run it off the runtime that serves the in-process server.
async fn run_binary_async(arguments: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        run_binary(&arguments)
    })
    .await
    .expect("the binary's thread finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_and_exits_by_outcome() {
    let server = TestServer::start().await;
    let junit_path = server.scratch("cli-junit.xml");
    let (code, stdout, stderr) = run_binary_async(vec![
        "--base-url".into(),
        server.base_url().into(),
        "--only".into(),
        "scripts.".into(),
        "--junit".into(),
        junit_path.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        last_line(&stdout),
        "1 passed, 0 failed, 0 skipped",
        "{stdout}"
    );
    assert_eq!(junit(&junit_path).tests, 1);

    // A name that matches nothing is a mistake, not a pass.
    let (code, stdout, _) = run_binary_async(vec![
        "--base-url".into(),
        server.base_url().into(),
        "--only".into(),
        "no-such-scenario".into(),
    ])
    .await;
    assert_eq!(code, 2);
    assert_eq!(last_line(&stdout), "0 passed, 0 failed, 0 skipped");

    // Nothing answers and no config file: the run cannot start.
    let (code, _, stderr) =
        run_binary_async(vec!["--base-url".into(), "http://127.0.0.1:9".into()]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("--config"), "{stderr}");
    server.stop().await;
}

/// A deployment's config file: what the simulator says, minus every simulator-only surface.
fn deployment_config(simulator: &Value) -> Value {
    json!({
        "mode": "deployment",
        "urls": { "cloudpay": simulator["urls"]["cloudpay"] },
        "deviceLimit": simulator["deviceLimit"],
        "testUsers": simulator["testUsers"],
        "fixtures": simulator["fixtures"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_config_skips_simulator_only_scenarios_and_passes_the_rest() {
    let server = TestServer::start().await;
    let simulator: Value = reqwest::get(format!("{}/sim/control/config", server.base_url()))
        .await
        .expect("config reachable")
        .json()
        .await
        .expect("config JSON");
    let config_path = server.scratch("deployment.json");
    std::fs::write(&config_path, deployment_config(&simulator).to_string()).expect("written");
    let junit_path = server.scratch("deployment-junit.xml");
    // A base URL under which /sim/control/config does not exist, as on a deployment; the
    // CloudPay URL comes from the file.
    let base = format!("{}/no-simulators-here", server.base_url());
    let (code, stdout, stderr) = run_binary_async(vec![
        "--base-url".into(),
        base,
        "--config".into(),
        config_path.display().to_string(),
        "--junit".into(),
        junit_path.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("configuration from {}", config_path.display())),
        "{stdout}"
    );

    let report = junit(&junit_path);
    assert_eq!(report.failures, 0, "{stdout}");
    let summary = format!(
        "{} passed, 0 failed, {} skipped",
        report.tests - report.skipped,
        report.skipped
    );
    assert_eq!(last_line(&stdout), summary, "{stdout}");
    let skipped: BTreeSet<String> = report
        .test_suites
        .iter()
        .flat_map(|suite| suite.test_cases.iter())
        .filter(|case| matches!(case.status, quick_junit::TestCaseStatus::Skipped { .. }))
        .map(|case| case.name.as_str().to_owned())
        .collect();
    for needs_simulator in [
        "device_lock.limit_refuses_the_next_start",
        "device_lock.idle_sessions_free_their_slots",
        "session.jwt_lifecycle",
        "auth.expired_token",
        "auth.foreign_issuer",
        "auth.tampered_jwt",
    ] {
        assert!(
            skipped.contains(needs_simulator),
            "{needs_simulator} should be skipped without simulators; {stdout}"
        );
    }
    for runs_anywhere in [
        "session.email_password_lifecycle",
        "account.update_names_and_custom_field",
        "geo.listing_follows_location",
        "ownership.customers_see_only_their_own",
    ] {
        assert!(
            !skipped.contains(runs_anywhere),
            "{runs_anywhere} needs no simulator; {stdout}"
        );
    }
    assert!(
        stdout.contains("SKIP  auth.foreign_issuer: needs"),
        "skips say why; {stdout}"
    );
    server.stop().await;
}
