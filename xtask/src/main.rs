//! Project automation: `cargo xtask <command>`.

mod bench;
mod bench_iap;
mod bench_renewals;
mod openapi;
mod sdk;
mod sdk_check;
mod stripe_schemas;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Regenerate the OpenAPI documents under openapi/ (or, with --check, fail if they differ
    /// from what the code generates).
    Openapi {
        #[arg(long)]
        check: bool,
    },
    /// Run the conformance suite against a base URL, or against a fresh simulator-mode
    /// server started for the run.
    Conformance {
        #[arg(long)]
        base_url: Option<String>,
        #[arg(long, default_value = "target/conformance-junit.xml")]
        junit: PathBuf,
    },
    /// Load-test the production build on loopback and print throughput and latency.
    Bench {
        /// Seconds per measured run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Subscriber counts for the renewal benchmark (comma-separated); each buys a
        /// monthly pass and renews twelve times.
        #[arg(long, value_delimiter = ',', default_values_t = [1000, 10000])]
        subscribers: Vec<u32>,
        /// In-app purchases per store for the IAP benchmark (0 skips it): each is verified,
        /// then renewed once with the store's notification.
        #[arg(long, default_value_t = 1000)]
        iap: u32,
    },
    /// Extract from Stripe's published OpenAPI document the schemas the Stripe simulator's
    /// fidelity test checks against (simulators/tests/fixtures/stripe-openapi-subset.json).
    /// Where to get the spec: see xtask/src/stripe_schemas.rs.
    StripeSchemas {
        /// The spec: a downloaded spec3.json/spec3.yaml (with --commit), or
        /// git:<git-dir>@<revision>:<path> to read it from a clone of stripe/openapi.
        #[arg(long)]
        spec: String,
        /// The stripe/openapi commit a downloaded spec came from (40 hex digits).
        #[arg(long)]
        commit: Option<String>,
        /// The downloaded spec's path in stripe/openapi [default: openapi/spec3.json].
        #[arg(long)]
        path: Option<String>,
        /// Stripe's fixtures3.json, in the same two forms, to note the fields Stripe's objects
        /// have beyond the spec (when the fixtures are newer).
        #[arg(long)]
        fixtures: Option<String>,
        /// The stripe/openapi commit downloaded fixtures came from.
        #[arg(long)]
        fixtures_commit: Option<String>,
        /// The downloaded fixtures' path [default: openapi/fixtures3.json].
        #[arg(long)]
        fixtures_path: Option<String>,
        /// Fail if the committed subset differs from what the inputs give, instead of writing.
        #[arg(long)]
        check: bool,
    },
    /// Drive the simulators with the providers' official client libraries.
    SdkCheck {
        /// Which: cognito, stripe.
        #[arg(required = true)]
        which: Vec<String>,
    },
}

/// The workspace root, whatever directory cargo was started from.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

pub fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// A fresh simulator-mode server on a random loopback port, for one xtask run.
pub async fn start_simulator_mode() -> anyhow::Result<boxoffice::sim::SimServer> {
    let data_dir =
        std::env::temp_dir().join(format!("boxoffice-xtask-{}", uuid::Uuid::new_v4().simple()));
    let server = boxoffice::sim::SimServer::start(boxoffice::sim::SimOptions {
        addr: "127.0.0.1:0".into(),
        data_dir,
        ..Default::default()
    })
    .await?;
    Ok(server)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Openapi { check } => openapi::run(check).await,
        Task::Conformance { base_url, junit } => {
            let server = match base_url {
                Some(_) => None,
                None => Some(start_simulator_mode().await?),
            };
            let base_url = base_url
                .or_else(|| server.as_ref().map(|server| server.base_url.clone()))
                .context("no base URL")?;
            let junit = workspace_root().join(junit);
            let outcome = tokio::task::spawn_blocking(move || {
                run_command(
                    Command::new(env!("CARGO"))
                        .current_dir(workspace_root())
                        .args([
                            "run",
                            "--quiet",
                            "-p",
                            "boxoffice-conformance",
                            "--bin",
                            "conformance",
                            "--",
                        ])
                        .arg("--base-url")
                        .arg(&base_url)
                        .arg("--junit")
                        .arg(&junit),
                )
            })
            .await?;
            if let Some(server) = server {
                server.stop().await;
            }
            outcome
        }
        Task::Bench {
            seconds,
            connections,
            subscribers,
            iap,
        } => bench::run(seconds, connections, &subscribers, iap).await,
        Task::StripeSchemas {
            spec,
            commit,
            path,
            fixtures,
            fixtures_commit,
            fixtures_path,
            check,
        } => stripe_schemas::run(
            stripe_schemas::Input {
                source: &spec,
                commit: commit.as_deref(),
                path: path.as_deref(),
                default_path: "openapi/spec3.json",
            },
            fixtures.as_deref().map(|source| stripe_schemas::Input {
                source,
                commit: fixtures_commit.as_deref(),
                path: fixtures_path.as_deref(),
                default_path: "openapi/fixtures3.json",
            }),
            check,
        ),
        Task::SdkCheck { which } => sdk::run(&which).await,
    }
}
