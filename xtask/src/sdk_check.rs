//! The official SDK checks themselves: Python scripts under `xtask/sdk-check/`, run with
//! an interpreter that has the pinned SDKs (`xtask/sdk-check/requirements.txt`) installed,
//! and a Node.js script for the one library AWS publishes only for Node.js (pinned in
//! `xtask/sdk-check/package-lock.json`).

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

/// Apple's `app-store-server-library` against the App Store simulator, unchanged but for the
/// API client's base URL: a purchase made through the control surface
/// (`{control_url}/apple/purchases`), its signed transaction and renewal info verified by a
/// `SignedDataVerifier` that trusts only the simulator's root (`enable_online_checks=False`),
/// then read back with an `AppStoreServerAPIClient` signing with the simulator's in-app
/// purchase key (`get_transaction_info`, `get_all_subscription_statuses`,
/// `get_transaction_history` v1 and v2, a test notification and its status) and verified
/// again; an unknown transaction raising `APIException` 4040010, a malformed one 4000006, a
/// foreign key 401; a tampered JWS refused; a production purchase accepted by a production
/// verifier (with `app_apple_id`) and refused by a sandbox one; `verifyReceipt` statuses; and
/// notifications received by a local HTTP server (`SUBSCRIBED`, `TEST`, and `DID_RENEW`
/// after moving the clock at `clock_url`) verified with `verify_and_decode_notification`.
/// Progress goes to this process's output; a failed step fails with the script's message
/// above it.
pub fn apple(
    python: &Path,
    apple_url: &str,
    control_url: &str,
    clock_url: &str,
) -> anyhow::Result<()> {
    let script = script("apple_check.py");
    let status = Command::new(python)
        .arg(&script)
        .args(["--apple-url", apple_url])
        .args(["--control-url", control_url])
        .args(["--clock-url", clock_url])
        .status()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    if !status.success() {
        bail!("the app-store-server-library check against {apple_url} failed ({status})");
    }
    Ok(())
}

/// Google's `google-api-python-client` (`androidpublisher` v3, `api_endpoint` pointed at the
/// Google Play simulator) signed in with `google-auth` as the service account whose key file
/// the control surface hands out (`{control_url}/service_account_key`): a subscription bought
/// on the control surface read with `purchases.subscriptionsv2.get`, acknowledged and read
/// with the v1 calls, a one-time product read, consumed and acknowledged, Google's errors for
/// an unknown token and package raised as `HttpError`, and an RTDN test message pushed to a
/// local HTTP server whose OIDC token `google.oauth2.id_token` verifies against the
/// simulator's certificates. Progress goes to this process's output; a failed step fails with
/// the script's message above it.
pub fn google(python: &Path, api_endpoint: &str, control_url: &str) -> anyhow::Result<()> {
    let script = script("google_check.py");
    let status = Command::new(python)
        .arg(&script)
        .args(["--api-endpoint", api_endpoint])
        .args(["--control-url", control_url])
        .status()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    if !status.success() {
        bail!("the google-api-python-client check against {api_endpoint} failed ({status})");
    }
    Ok(())
}

/// AWS's SNS message validator for Node.js (`sns-validator`, installed with `npm ci` from
/// the committed lock file): the Amazon simulator's `SubscriptionConfirmation` and a
/// Real-time Notification verify (SignatureVersion 1, RSA-SHA1, the certificate fetched from
/// the simulator), a tampered one does not, and RVS answers a purchase's receipt and
/// Amazon's error statuses. The check subscribes its own endpoint to the topic, so it runs
/// last. Progress goes to this process's output; a failed step fails with the script's
/// message above it.
pub fn amazon(api_endpoint: &str, control_url: &str) -> anyhow::Result<()> {
    let directory = script("");
    let installed = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&directory)
        .status()
        .context("npm is needed for sdk-check amazon (Debian: apt-get install nodejs npm)")?;
    if !installed.success() {
        bail!("npm ci in {} failed ({installed})", directory.display());
    }
    let script = script("amazon_check.js");
    let status = Command::new("node")
        .arg(&script)
        .args(["--api-endpoint", api_endpoint])
        .args(["--control-url", control_url])
        .status()
        .with_context(|| format!("cannot run node {}", script.display()))?;
    if !status.success() {
        bail!("the sns-validator check against {api_endpoint} failed ({status})");
    }
    Ok(())
}
