//! The simulator-mode control surface: what a frontend developer needs to know
//! (`/sim/control/config`) and the virtual clock (`/sim/clock`). Documented, with each
//! simulator's own control operations, in `openapi/sim-control.json`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use crate::clock::{Clock, ClockError, VirtualClock};
use crate::config::DiscountConfig;
use crate::core::Core;

#[derive(Tags)]
enum ControlTags {
    /// What simulator mode runs and how to reach it.
    Control,
    /// The virtual clock every part of simulator mode reads.
    Clock,
    /// The admin backend's side of CloudPay: discount codes.
    Admin,
}

/// A discount code to create: exactly one of `percentOff` and `amountOff` (minor units, with
/// `currency`).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct NewDiscount {
    pub code: String,
    pub percent_off: Option<u32>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    #[oai(default)]
    pub single_use: bool,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Package ids it applies to; empty for all.
    #[oai(default)]
    pub packages: Vec<String>,
}

impl Example for NewDiscount {
    fn example() -> Self {
        NewDiscount {
            code: "ONCE-ONLY-25".into(),
            percent_off: Some(25),
            amount_off: None,
            currency: None,
            single_use: true,
            valid_from: None,
            valid_until: None,
            packages: vec![],
        }
    }
}

/// The created discount.
#[derive(Debug, Clone, Object)]
pub struct CreatedDiscount {
    pub id: String,
    pub code: String,
}

#[derive(ApiResponse)]
enum DiscountCreated {
    #[oai(status = 201)]
    Created(Json<CreatedDiscount>),
    /// Not a valid definition, or the code exists already.
    #[oai(status = 400)]
    BadRequest(Json<ControlError>),
}

/// Every base URL of this simulator-mode process.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct BaseUrls {
    pub server: String,
    pub healthz: String,
    pub cloudpay: String,
    pub cloudpay_docs: String,
    pub sim_sso: String,
    /// The Stripe simulator: point a Stripe client's API base here.
    pub sim_stripe: String,
    /// The App Store simulator in production: the App Store Server API
    /// (`api.storekit.itunes.apple.com`) and `verifyReceipt` (`buy.itunes.apple.com`).
    pub sim_apple: String,
    /// The App Store simulator's sandbox (`api.storekit-sandbox.itunes.apple.com`,
    /// `sandbox.itunes.apple.com`).
    pub sim_apple_sandbox: String,
    /// The Google Play simulator: the Play Developer API (`androidpublisher.googleapis.com`),
    /// the service account's token endpoint and Google's OIDC keys.
    pub sim_google: String,
    /// The Roku Pay simulator: Roku's web services (`apipub.roku.com`) and the keys secured
    /// pushes are signed with.
    pub sim_roku: String,
    /// The Amazon Appstore simulator: RVS (`appstore-sdk.amazon.com`), its Cloud Sandbox at
    /// `/sandbox`, and SNS's certificate and actions at `/sns`.
    pub sim_amazon: String,
    pub sim_control: String,
    pub sim_control_docs: String,
    pub sim_clock: String,
}

/// The simulated Cognito user pool that CloudPay trusts.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct SsoDetails {
    pub region: String,
    pub user_pool_id: String,
    pub app_client_id: String,
    pub issuer: String,
    pub jwks_url: String,
    /// `RS256` or `HS256`.
    pub algorithm: String,
    /// Whether sign-ups are confirmed at once.
    pub auto_confirm: bool,
}

/// The simulated Stripe account's API keys.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct StripeDetails {
    /// For Stripe.js in the browser (`pk_test_…`).
    pub publishable_key: String,
    /// For server-side calls (`sk_test_…`).
    pub secret_key: String,
    /// The signing secret of the server's `/webhooks/stripe` endpoint at the simulator
    /// (`whsec_…`), to sign test events.
    pub webhook_secret: String,
}

/// The simulated App Store app: what the server (or an App Store client library) needs to
/// call the App Store Server API and verify what it signs.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct AppleDetails {
    pub bundle_id: String,
    /// `appAppleId` (production only).
    pub app_apple_id: i64,
    /// The in-app purchase key's id: the `kid` of App Store Server API tokens.
    pub key_id: String,
    /// The `iss` of App Store Server API tokens.
    pub issuer_id: String,
    /// The in-app purchase key (PKCS#8 PEM, what App Store Connect's `.p8` file holds), to
    /// sign App Store Server API tokens with.
    pub private_key_pem: String,
    /// `verifyReceipt`'s `password`.
    pub shared_secret: String,
    /// The App Store Server API in production.
    pub production_url: String,
    /// The App Store Server API in the sandbox.
    pub sandbox_url: String,
    pub verify_receipt_url: String,
    pub sandbox_verify_receipt_url: String,
    /// The root certificate (DER) that the simulator's signed data chains to: trust it in
    /// place of Apple's root CA.
    pub root_certificate_url: String,
    pub root_certificate_pem_url: String,
    /// Where production notifications go.
    pub notification_url: String,
    /// Where sandbox notifications go.
    pub sandbox_notification_url: String,
    /// The auto-renewable subscriptions the app sells.
    pub product_ids: Vec<String>,
}

/// The simulated Google Play app and developer account: what the server (or
/// `google-api-python-client`) needs to read its purchases, and what its notifications
/// arrive with.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct GoogleDetails {
    pub package_name: String,
    /// The Play Developer API: a client's `api_endpoint` / root URL.
    pub api_url: String,
    /// Where the service account trades its signed JWT for an access token.
    pub token_uri: String,
    pub service_account_email: String,
    /// The service account's JSON key file (its `token_uri` points at the simulator).
    pub service_account_key_url: String,
    /// Google's OIDC keys (JWKS), which push tokens are signed with.
    pub oidc_certs_url: String,
    /// Where Real-time developer notifications are pushed.
    pub push_endpoint: String,
    /// The `aud` of the pushes' OIDC tokens.
    pub push_audience: String,
    /// The `email` of the pushes' OIDC tokens.
    pub push_service_account: String,
    /// The app's subscription products.
    pub product_ids: Vec<String>,
}

/// A seeded user, ready to sign in.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

/// Seeded catalogue entries with a known role, for tests and demos.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct Fixtures {
    pub monthly_package_id: String,
    pub trial_package_id: String,
    pub one_off_package_id: String,
    pub iap_package_id: String,
    pub geo_restricted_package_id: String,
    /// Countries where the geo-restricted package is sold.
    pub geo_allowed_countries: Vec<String>,
    /// A country where it is not.
    pub geo_denied_country: String,
    /// A multi-use code for 50 % off any web package.
    pub discount_half_code: String,
    /// A multi-use code for 100 % off the monthly package.
    pub discount_full_code: String,
}

/// Everything a frontend developer or a test runner needs to use simulator mode.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct SimulatorConfig {
    /// Always `simulator`.
    pub mode: String,
    pub urls: BaseUrls,
    pub sso: SsoDetails,
    pub stripe: StripeDetails,
    pub apple: AppleDetails,
    pub google: GoogleDetails,
    /// Concurrent sessions allowed per customer.
    pub device_limit: u32,
    pub test_users: Vec<TestUser>,
    pub fixtures: Fixtures,
}

impl Example for SimulatorConfig {
    fn example() -> Self {
        let base = "http://127.0.0.1:8080";
        SimulatorConfig {
            mode: "simulator".into(),
            urls: BaseUrls {
                server: base.into(),
                healthz: format!("{base}/healthz"),
                cloudpay: format!("{base}/cloudpay"),
                cloudpay_docs: format!("{base}/cloudpay/docs"),
                sim_sso: format!("{base}/sim/sso"),
                sim_stripe: format!("{base}/sim/stripe"),
                sim_apple: format!("{base}/sim/apple"),
                sim_apple_sandbox: format!("{base}/sim/apple/sandbox"),
                sim_google: format!("{base}/sim/google"),
                sim_roku: format!("{base}/sim/roku"),
                sim_amazon: format!("{base}/sim/amazon"),
                sim_control: format!("{base}/sim/control"),
                sim_control_docs: format!("{base}/sim/control/docs"),
                sim_clock: format!("{base}/sim/clock"),
            },
            sso: SsoDetails {
                region: "eu-west-1".into(),
                user_pool_id: "eu-west-1_BoxOffice".into(),
                app_client_id: "4c2b9s1d7f0g3h5j6k8l9m0n1p".into(),
                issuer: format!("{base}/sim/sso/eu-west-1_BoxOffice"),
                jwks_url: format!("{base}/sim/sso/eu-west-1_BoxOffice/.well-known/jwks.json"),
                algorithm: "RS256".into(),
                auto_confirm: true,
            },
            stripe: StripeDetails {
                publishable_key: "pk_test_boxofficesimulator".into(),
                secret_key: "sk_test_boxofficesimulator".into(),
                webhook_secret: "whsec_boxofficesimulator".into(),
            },
            apple: AppleDetails {
                bundle_id: "com.boxoffice.app".into(),
                app_apple_id: 6_450_000_001,
                key_id: "BOXOFFICE1".into(),
                issuer_id: "6f5b1c3e-8a2d-4e7f-9b10-2c4d6e8f0a1b".into(),
                private_key_pem: "-----BEGIN PRIVATE KEY-----\n…\n-----END PRIVATE KEY-----\n"
                    .into(),
                shared_secret: "b0c5a1e8f3d24a7c9e6b1f0d8a3c5e72".into(),
                production_url: format!("{base}/sim/apple"),
                sandbox_url: format!("{base}/sim/apple/sandbox"),
                verify_receipt_url: format!("{base}/sim/apple/verifyReceipt"),
                sandbox_verify_receipt_url: format!("{base}/sim/apple/sandbox/verifyReceipt"),
                root_certificate_url: format!("{base}/sim/apple/root.cer"),
                root_certificate_pem_url: format!("{base}/sim/apple/root.pem"),
                notification_url: format!("{base}/webhooks/apple"),
                sandbox_notification_url: format!("{base}/webhooks/apple"),
                product_ids: vec![
                    "com.boxoffice.app.mobile.monthly".into(),
                    "com.boxoffice.app.mobile.annual".into(),
                ],
            },
            google: GoogleDetails {
                package_name: "com.boxoffice.app".into(),
                api_url: format!("{base}/sim/google"),
                token_uri: format!("{base}/sim/google/token"),
                service_account_email: "play-api@boxoffice-sim.iam.gserviceaccount.com".into(),
                service_account_key_url: format!("{base}/sim/control/google/service_account_key"),
                oidc_certs_url: format!("{base}/sim/google/oauth2/v3/certs"),
                push_endpoint: format!("{base}/webhooks/google"),
                push_audience: format!("{base}/webhooks/google"),
                push_service_account: "rtdn-push@boxoffice-sim.iam.gserviceaccount.com".into(),
                product_ids: vec!["boxoffice_monthly".into()],
            },
            device_limit: 3,
            test_users: vec![TestUser {
                email: "alice@example.com".into(),
                password: "Alice-Passw0rd!".into(),
                first_name: "Alice".into(),
                last_name: "Archer".into(),
            }],
            fixtures: Fixtures {
                monthly_package_id: "pkg-monthly".into(),
                trial_package_id: "pkg-trial".into(),
                one_off_package_id: "pkg-day-pass".into(),
                iap_package_id: "pkg-mobile".into(),
                geo_restricted_package_id: "pkg-uk-ireland".into(),
                geo_allowed_countries: vec!["GB".into(), "IE".into()],
                geo_denied_country: "US".into(),
                discount_half_code: "50OFF".into(),
                discount_full_code: "FREEMONTH".into(),
            },
        }
    }
}

/// The clock's reading.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct ClockReading {
    pub now: DateTime<Utc>,
    pub epoch_millis: i64,
    /// After a move: what the billing clock settled in the time skipped.
    #[oai(skip_serializing_if_is_none)]
    pub billing: Option<BillingRun>,
    /// On a read: the renewals, retries and expiries due by now that the billing clock has
    /// not settled yet (it works through them in the background); 0 once it caught up.
    #[oai(skip_serializing_if_is_none)]
    pub due_billing_jobs: Option<i64>,
}

/// Renewals charged, renewals refused (and scheduled for retry), subscriptions expired, and
/// jobs left for later because a provider was unreachable.
#[derive(Debug, Clone, Object)]
pub struct BillingRun {
    pub renewed: u64,
    pub failed: u64,
    pub expired: u64,
    pub deferred: u64,
}

impl Example for ClockReading {
    fn example() -> Self {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        ClockReading {
            now,
            epoch_millis: now.timestamp_millis(),
            billing: None,
            due_billing_jobs: Some(0),
        }
    }
}

/// Move the clock: either `advance` by a duration (`90s`, `15m`, `2h`, `31d`, `1w`, or
/// seconds as a number string) or `setTo` an instant. Time only moves forward.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct ClockMove {
    pub advance: Option<String>,
    pub set_to: Option<DateTime<Utc>>,
}

impl Example for ClockMove {
    fn example() -> Self {
        ClockMove {
            advance: Some("31d".into()),
            set_to: None,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ControlError {
    pub error: String,
    pub message: String,
}

#[derive(ApiResponse)]
enum ClockMoveResponse {
    /// The clock after the move.
    #[oai(status = 200)]
    Moved(Json<ClockReading>),
    /// Neither or both of `advance` and `setTo`, an unreadable duration, or a move backwards.
    #[oai(status = 400)]
    BadRequest(Json<ControlError>),
}

/// `90s`, `15m`, `2h`, `31d`, `1w`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Option<chrono::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let amount: i64 = text[..split].parse().ok()?;
    let seconds = match text[split..].trim() {
        "" | "s" => amount,
        "m" => amount.checked_mul(60)?,
        "h" => amount.checked_mul(3600)?,
        "d" => amount.checked_mul(86_400)?,
        "w" => amount.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    // Past this the clock would leave chrono's range; nobody needs to jump 1000 years.
    (seconds <= 1000 * 366 * 86_400).then(|| chrono::Duration::seconds(seconds))
}

/// What a simulator does when the virtual clock moves (e.g. the App Store's renewals that
/// fell due, and their notifications), awaited before the move is answered.
pub type ClockMoveHook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub struct ControlApi {
    clock: Arc<VirtualClock>,
    config: SimulatorConfig,
    core: Arc<Core>,
    clock_move_hooks: Vec<ClockMoveHook>,
}

impl ControlApi {
    pub fn new(clock: Arc<VirtualClock>, config: SimulatorConfig, core: Arc<Core>) -> Self {
        Self {
            clock,
            config,
            core,
            clock_move_hooks: Vec::new(),
        }
    }

    /// Runs `hook` after every move of the clock, before the server's own billing.
    pub fn on_clock_move(mut self, hook: ClockMoveHook) -> Self {
        self.clock_move_hooks.push(hook);
        self
    }

    fn reading(&self) -> ClockReading {
        let now = self.clock.now();
        ClockReading {
            now,
            epoch_millis: now.timestamp_millis(),
            billing: None,
            due_billing_jobs: None,
        }
    }
}

fn bad_clock_request(message: impl Into<String>) -> ClockMoveResponse {
    ClockMoveResponse::BadRequest(Json(ControlError {
        error: "invalid_clock_move".into(),
        message: message.into(),
    }))
}

#[OpenApi]
impl ControlApi {
    /// Simulator-mode configuration
    ///
    /// Every base URL, the SSO user pool and app client, the device limit, the seeded test
    /// users with their passwords, and catalogue fixtures with known roles.
    #[oai(path = "/control/config", method = "get", tag = "ControlTags::Control")]
    async fn config(&self) -> Json<SimulatorConfig> {
        Json(self.config.clone())
    }

    /// Create a discount code
    ///
    /// What CloudPay's admin backend does: a percent or fixed-amount code, single- or
    /// multi-use, optionally limited in time and to some packages. Codes are matched
    /// case-insensitively.
    #[oai(
        path = "/control/discounts",
        method = "post",
        tag = "ControlTags::Admin"
    )]
    async fn create_discount(&self, body: Json<NewDiscount>) -> DiscountCreated {
        let request = body.0;
        let definition = DiscountConfig {
            id: uuid::Uuid::new_v4().to_string(),
            code: request.code,
            percent_off: request.percent_off,
            amount_off: request.amount_off,
            currency: request.currency,
            single_use: request.single_use,
            valid_from: request.valid_from.map(|time| time.to_rfc3339()),
            valid_until: request.valid_until.map(|time| time.to_rfc3339()),
            packages: request.packages,
            active: true,
        };
        let refused = |message: String| {
            DiscountCreated::BadRequest(Json(ControlError {
                error: "invalid_discount".into(),
                message,
            }))
        };
        let discount = match definition.to_discount() {
            Ok(discount) => discount,
            Err(error) => return refused(error.to_string()),
        };
        match self.core.define_discount(&discount).await {
            Ok(()) => DiscountCreated::Created(Json(CreatedDiscount {
                id: discount.id,
                code: discount.code,
            })),
            Err(error) => refused(error.to_string()),
        }
    }

    /// Read the virtual clock
    ///
    /// The time every part of simulator mode (server and simulators) reads.
    #[oai(path = "/clock", method = "get", tag = "ControlTags::Clock")]
    async fn read_clock(&self) -> Json<ClockReading> {
        let mut reading = self.reading();
        match self.core.billing_backlog().await {
            Ok(due) => reading.due_billing_jobs = Some(due),
            Err(error) => tracing::warn!(%error, "cannot count the due billing jobs"),
        }
        Json(reading)
    }

    /// Move the virtual clock
    ///
    /// Advances the clock by a duration or sets it to a later instant; sessions and tokens
    /// expire, and (with the payment flows) renewals fall due, as if that time had passed.
    #[oai(path = "/clock", method = "post", tag = "ControlTags::Clock")]
    async fn move_clock(&self, body: Json<ClockMove>) -> ClockMoveResponse {
        let moved = match (body.0.advance, body.0.set_to) {
            (Some(advance), None) => match parse_duration(&advance) {
                Some(by) => self.clock.advance(by),
                None => {
                    return bad_clock_request(format!(
                        "cannot read the duration {advance:?}; use 90s, 15m, 2h, 31d or 1w"
                    ));
                }
            },
            (None, Some(instant)) if instant.year() > 9999 => {
                return bad_clock_request("setTo must be before the year 10000");
            }
            (None, Some(instant)) => self.clock.set(instant),
            _ => return bad_clock_request("give exactly one of advance and setTo"),
        };
        match moved {
            Ok(_) => {
                // Whatever fell due in the skipped time is settled before answering, so the
                // caller sees renewals, retries and expiries at once: the simulators' first
                // (a store's renewal is told to the server), then the server's billing.
                for hook in &self.clock_move_hooks {
                    hook().await;
                }
                let mut reading = self.reading();
                match self.core.run_due_billing().await {
                    Ok(report) => {
                        reading.billing = Some(BillingRun {
                            renewed: report.renewed,
                            failed: report.failed,
                            expired: report.expired,
                            deferred: report.deferred,
                        });
                        ClockMoveResponse::Moved(Json(reading))
                    }
                    Err(error) => {
                        tracing::error!(%error, "billing after a clock move failed");
                        ClockMoveResponse::Moved(Json(reading))
                    }
                }
            }
            Err(error @ ClockError::Backwards { .. }) => bad_clock_request(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("90"), Some(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration("15m"), Some(chrono::Duration::minutes(15)));
        assert_eq!(parse_duration("2h"), Some(chrono::Duration::hours(2)));
        assert_eq!(parse_duration("31d"), Some(chrono::Duration::days(31)));
        assert_eq!(parse_duration("1w"), Some(chrono::Duration::weeks(1)));
        assert_eq!(parse_duration("-1h"), None);
        assert_eq!(parse_duration("1y"), None);
        assert_eq!(parse_duration("99999999999999d"), None);
    }
}
