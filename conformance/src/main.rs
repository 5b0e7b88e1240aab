//! `conformance --base-url URL [--junit FILE] [--config FILE] [--only SUBSTRING]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use conformance::{Target, run_suite, runner, scenarios};

/// Runs boxoffice's CloudPay conformance scenarios against a server over HTTP.
#[derive(Parser)]
#[command(name = "conformance", version)]
struct Cli {
    /// The server's base URL, e.g. http://127.0.0.1:8080 (CloudPay is under /cloudpay).
    #[arg(long, env = "CONFORMANCE_BASE_URL")]
    base_url: String,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// The target's configuration, used when the server has no /sim/control/config
    /// (a deployment without simulators); same JSON shape.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run only the scenarios whose name contains this text (e.g. `auth.` or `device_lock`).
    #[arg(long)]
    only: Option<String>,
}

/// Exit codes: 0 all ran passed (skips allowed), 1 a scenario failed, 2 the run could not
/// start.
const SETUP_FAILED: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = match Target::discover(&cli.base_url, cli.config.as_deref()).await {
        Ok(target) => target,
        Err(error) => {
            eprintln!("conformance: {error}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    let all = scenarios::all();
    let selected = runner::select(&all, cli.only.as_deref()).len();
    println!("conformance against {}", target.base_url);
    println!("configuration from {}", target.source);
    for line in target.capabilities.describe() {
        println!("  {line}");
    }
    if selected == 0 {
        eprintln!(
            "conformance: no scenario name contains {:?}",
            cli.only.as_deref().unwrap_or_default()
        );
        println!("0 passed, 0 failed, 0 skipped");
        return ExitCode::from(SETUP_FAILED);
    }
    println!("running {selected} scenarios\n");

    let report = run_suite(target, cli.only.as_deref(), |result| {
        println!("{}", result.human_line());
    })
    .await;

    println!("\nfinished in {:.1} s", report.duration.as_secs_f64());
    let mut exit = if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if let Some(path) = &cli.junit {
        match report.write_junit(path) {
            Ok(()) => println!("JUnit report: {}", path.display()),
            Err(error) => {
                eprintln!("conformance: {error}");
                exit = ExitCode::from(SETUP_FAILED);
            }
        }
    }
    println!("{}", report.summary_line());
    exit
}
