//! Loads the production build (`--profile production`, the build to deploy) of simulator
//! mode on loopback with wrk and reports req/s and p99.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{run_command, workspace_root};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// wrk's `--latency` table: `99%    1.23ms`.
fn percentile(output: &str, label: &str) -> Option<String> {
    output
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with(label))
        .and_then(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
}

fn requests_per_second(output: &str) -> Option<String> {
    output
        .lines()
        .find(|line| line.starts_with("Requests/sec:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
}

/// CPU time (user and system, all threads) the process has used so far; Linux only, from
/// `/proc`, whose counts are in USER_HZ (100 a second on every Linux architecture).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    // utime and stime: fields 14 and 15 of proc(5), 12 and 13 after the name.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Cargo's profile for the build that is measured: the one to deploy.
const PROFILE: &str = "production";

/// A fresh production-build simulator-mode process on a free loopback port, healthy.
async fn start_simulator() -> anyhow::Result<(Server, String, std::path::PathBuf)> {
    let root = workspace_root();
    run_command(Command::new(env!("CARGO")).current_dir(&root).args([
        "build",
        "--profile",
        PROFILE,
        "--quiet",
        "-p",
        "boxoffice-server",
        "--bin",
        "boxoffice",
    ]))?;
    // Where cargo put the build: CARGO_TARGET_DIR when set, else target/ in the workspace.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let port = free_port()?;
    let data =
        std::env::temp_dir().join(format!("boxoffice-bench-{}", uuid::Uuid::new_v4().simple()));
    let started = Instant::now();
    let server = Server(
        Command::new(target_dir.join(PROFILE).join("boxoffice"))
            .args(["sim", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("start the production build of boxoffice")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    loop {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("simulator mode did not become healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "simulator mode healthy {} ms after start",
        started.elapsed().as_millis()
    );
    Ok((server, base, data))
}

pub async fn run(
    seconds: u32,
    connections: u32,
    subscribers: &[u32],
    iap_purchases: u32,
) -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("the benchmark needs wrk on the PATH (Debian/Ubuntu: apt-get install wrk)");
    }
    let (server, base, data) = start_simulator().await?;
    let targets = [
        (
            "GET /cloudpay/api/v1/package",
            format!("{base}/cloudpay/api/v1/package"),
        ),
        ("GET /healthz", format!("{base}/healthz")),
    ];
    println!("wrk: {connections} connections, 2 threads, {seconds} s per endpoint, loopback");
    for (name, url) in targets {
        let output = Command::new("wrk")
            .args([
                "--latency",
                "-t2",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                "-H",
                "location: GB",
            ])
            .arg(&url)
            .output()
            .context("run wrk")?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || text.contains("Non-2xx") {
            bail!("wrk against {url} failed or saw errors:\n{text}");
        }
        println!(
            "{name:32} {:>10} req/s   p50 {:>9}   p99 {:>9}",
            requests_per_second(&text).unwrap_or_else(|| "?".into()),
            percentile(&text, "50%").unwrap_or_else(|| "?".into()),
            percentile(&text, "99%").unwrap_or_else(|| "?".into()),
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    if iap_purchases > 0 {
        let (server, base, data) = start_simulator().await?;
        crate::bench_iap::run(&base, iap_purchases).await?;
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
    }
    for &count in subscribers {
        // A fresh process and database for each size, so one run does not slow the next.
        let (server, base, data) = start_simulator().await?;
        crate::bench_renewals::run(&base, count, server.0.id()).await?;
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}
