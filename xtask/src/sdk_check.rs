//! The official SDK checks themselves: Python scripts under `xtask/sdk-check/`, run with
//! an interpreter that has the pinned SDKs (`xtask/sdk-check/requirements.txt`) installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Where the check scripts are, whatever directory cargo was started from.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sdk-check")
        .join(name)
}

/// boto3's `cognito-idp` client against a Cognito user pool endpoint (the SSO simulator):
/// sign-up, confirmation, `USER_PASSWORD_AUTH`, `GetUser`, `REFRESH_TOKEN_AUTH`, the id
/// token's RS256 signature against the pool's JWKS, a wrong password surfacing as
/// `NotAuthorizedException`, and `GlobalSignOut`. The script's progress goes to this
/// process's output; a failed step fails with the script's message above it.
pub fn cognito(
    python: &Path,
    endpoint_url: &str,
    client_id: &str,
    user_pool_id: &str,
    region: &str,
) -> anyhow::Result<()> {
    let script = script("cognito_check.py");
    let status = Command::new(python)
        .arg(&script)
        .args(["--endpoint-url", endpoint_url])
        .args(["--client-id", client_id])
        .args(["--user-pool-id", user_pool_id])
        .args(["--region", region])
        .status()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    if !status.success() {
        bail!("the boto3 cognito-idp check against {endpoint_url} failed ({status})");
    }
    Ok(())
}

/// Stripe's `stripe` library (a `StripeClient` whose only difference from production is its
/// API base) against the Stripe simulator: customers, a payment intent confirmed with
/// `pm_card_visa`, declined cards raising `CardError`, a setup intent, partial and full
/// refunds, the field names of every object against the library's classes, and webhooks: an
/// endpoint on a local HTTP server, deliveries triggered through the control surface
/// (`{control_url}/stripe/webhooks/deliver`) and verified with
/// `stripe.Webhook.construct_event`, tampering refused. Progress goes to this process's
/// output; a failed step fails with the script's message above it.
pub fn stripe(
    python: &Path,
    api_base: &str,
    secret_key: &str,
    control_url: &str,
) -> anyhow::Result<()> {
    let script = script("stripe_check.py");
    let status = Command::new(python)
        .arg(&script)
        .args(["--api-base", api_base])
        .args(["--secret-key", secret_key])
        .args(["--control-url", control_url])
        .status()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    if !status.success() {
        bail!("the stripe library check against {api_base} failed ({status})");
    }
    Ok(())
}
