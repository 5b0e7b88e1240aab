//! `cargo xtask sdk-check …`: the providers' official client libraries, installed from PyPI
//! into a virtualenv under target/ (and, for Amazon, from npm beside the check script),
//! pointed at a fresh simulator-mode server.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run_command, sdk_check, start_simulator_mode, workspace_root};

const KNOWN: [&str; 5] = ["cognito", "stripe", "google", "apple", "amazon"];

/// Creates (once) the virtualenv with the pinned SDKs and returns its interpreter.
fn virtualenv() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join("target/sdk-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run_command(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "python3 with the venv module is needed (Debian: apt-get install python3-venv)",
        )?;
    }
    run_command(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(root.join("xtask/sdk-check/requirements.txt")),
    )?;
    Ok(python)
}

pub async fn run(which: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = which.iter().find(|name| !KNOWN.contains(&name.as_str())) {
        bail!("no SDK check named {unknown}; known: {}", KNOWN.join(", "));
    }
    let python = tokio::task::spawn_blocking(virtualenv).await??;
    let server = start_simulator_mode().await?;
    let config = server.config.clone();
    let wanted = which.to_vec();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if wanted.iter().any(|name| name == "cognito") {
            sdk_check::cognito(
                &python,
                &config.urls.sim_sso,
                &config.sso.app_client_id,
                &config.sso.user_pool_id,
                &config.sso.region,
            )
            .context("sdk-check cognito")?;
            println!("sdk-check cognito: ok");
        }
        if wanted.iter().any(|name| name == "stripe") {
            sdk_check::stripe(
                &python,
                &config.urls.sim_stripe,
                &config.stripe.secret_key,
                &config.urls.sim_control,
            )
            .context("sdk-check stripe")?;
            println!("sdk-check stripe: ok");
        }
        // Before the App Store check, which moves the virtual clock: google-auth signs its
        // assertions with the machine's clock, which the simulator holds them to.
        if wanted.iter().any(|name| name == "google") {
            sdk_check::google(
                &python,
                &config.urls.sim_google,
                &format!("{}/google", config.urls.sim_control),
            )
            .context("sdk-check google")?;
            println!("sdk-check google: ok");
        }
        if wanted.iter().any(|name| name == "apple") {
            sdk_check::apple(
                &python,
                &config.urls.sim_apple,
                &config.urls.sim_control,
                &config.urls.sim_clock,
            )
            .context("sdk-check apple")?;
            println!("sdk-check apple: ok");
        }
        if wanted.iter().any(|name| name == "amazon") {
            sdk_check::amazon(
                &config.urls.sim_amazon,
                &format!("{}/amazon", config.urls.sim_control),
            )
            .context("sdk-check amazon")?;
            println!("sdk-check amazon: ok");
        }
        Ok(())
    })
    .await?;
    server.stop().await;
    outcome
}
