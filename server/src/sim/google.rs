//! The Google Play simulator in simulator mode: the app it sells for, the service account
//! the server calls it as, the Pub/Sub push subscription that carries its notifications to
//! `/webhooks/google`, and the server's Google Play client pointed at it.

use std::sync::Arc;

use boxoffice_simulators::google::{
    GoogleApplication, GoogleBasePlan, GoogleBillingPeriod, GoogleConfig, GoogleError,
    GooglePushConfig, GoogleSimulator, GoogleSubscription,
};
use poem::Route;
use poem_openapi::OpenApiService;
use tokio::task::JoinHandle;

use super::SimError;
use crate::api::sim_control::GoogleDetails;
use crate::providers::google::{GoogleClient, GoogleSettings};
use crate::providers::store::StoreEnvironment;

/// The simulated app's package name (the same app as on the App Store).
pub const GOOGLE_PACKAGE_NAME: &str = "com.boxoffice.app";
/// The Google Cloud project of the service account and the RTDN topic.
pub const GOOGLE_PROJECT_ID: &str = "boxoffice-sim";
/// The service account the server calls the Play Developer API as.
pub const GOOGLE_SERVICE_ACCOUNT: &str = "play-api@boxoffice-sim.iam.gserviceaccount.com";
/// The service account Pub/Sub's push subscription signs its OIDC tokens as.
pub const GOOGLE_PUSH_SERVICE_ACCOUNT: &str = "rtdn-push@boxoffice-sim.iam.gserviceaccount.com";
/// The push subscription on the RTDN topic.
pub const GOOGLE_PUSH_SUBSCRIPTION: &str = "boxoffice-rtdn-push";
/// The app's subscription product and its one base plan.
pub const GOOGLE_MONTHLY_PRODUCT_ID: &str = "boxoffice_monthly";
pub const GOOGLE_MONTHLY_BASE_PLAN_ID: &str = "monthly";

/// The simulated Play developer account, pushing notifications to `push_endpoint` (with
/// itself as the OIDC audience) when there is one.
pub(super) fn google_simulator(
    public_base_url: String,
    push_endpoint: Option<String>,
    now: boxoffice_simulators::clock::Now,
) -> Result<GoogleSimulator, SimError> {
    GoogleSimulator::new(
        GoogleConfig {
            public_base_url,
            project_id: GOOGLE_PROJECT_ID.into(),
            service_account_email: GOOGLE_SERVICE_ACCOUNT.into(),
            applications: vec![GoogleApplication {
                package_name: GOOGLE_PACKAGE_NAME.into(),
                subscriptions: vec![GoogleSubscription {
                    product_id: GOOGLE_MONTHLY_PRODUCT_ID.into(),
                    base_plans: vec![GoogleBasePlan {
                        base_plan_id: GOOGLE_MONTHLY_BASE_PLAN_ID.into(),
                        billing_period: GoogleBillingPeriod::Months(1),
                        price_micros: 7_990_000,
                        currency_code: "GBP".into(),
                        // Play Console's defaults for a monthly plan.
                        grace_period_days: 7,
                        account_hold_days: 30,
                    }],
                }],
                one_time_products: Vec::new(),
            }],
            push: push_endpoint.map(|endpoint| GooglePushConfig {
                audience: Some(endpoint.clone()),
                endpoint,
                subscription_id: GOOGLE_PUSH_SUBSCRIPTION.into(),
                oidc_service_account_email: Some(GOOGLE_PUSH_SERVICE_ACCOUNT.into()),
            }),
            enforce_acknowledgement: true,
        },
        now,
    )
    .map_err(|error: GoogleError| SimError::Google(error.to_string()))
}

/// The server's Google Play client, signed in as the simulator's service account and
/// trusting the simulator's OIDC keys for pushes addressed to `push_audience`.
pub(super) fn google_client(
    google: &GoogleSimulator,
    public_base_url: &str,
    push_audience: &str,
    environments: &[StoreEnvironment],
) -> Result<GoogleClient, SimError> {
    let key = google
        .service_account_key()
        .ok_or_else(|| SimError::Google("the simulated service account has no key".into()))?;
    GoogleClient::new(GoogleSettings {
        package_name: GOOGLE_PACKAGE_NAME.into(),
        environments: environments.to_vec(),
        api_base: public_base_url.to_owned(),
        client_email: key.client_email,
        private_key_pem: key.private_key,
        token_uri: key.token_uri,
        push_audience: push_audience.to_owned(),
        push_service_account: Some(GOOGLE_PUSH_SERVICE_ACCOUNT.into()),
        push_certs_url: google.jwks_url(),
    })
    .map_err(SimError::Google)
}

/// What `/sim/control/config` says about the simulated Play developer account.
pub(super) fn google_details(
    google: &GoogleSimulator,
    public_base_url: &str,
    control_url: &str,
    push_endpoint: &str,
) -> GoogleDetails {
    GoogleDetails {
        package_name: GOOGLE_PACKAGE_NAME.into(),
        api_url: public_base_url.to_owned(),
        token_uri: google.token_uri(),
        service_account_email: GOOGLE_SERVICE_ACCOUNT.into(),
        service_account_key_url: format!("{control_url}/google/service_account_key"),
        oidc_certs_url: google.jwks_url(),
        push_endpoint: push_endpoint.to_owned(),
        push_audience: push_endpoint.to_owned(),
        push_service_account: GOOGLE_PUSH_SERVICE_ACCOUNT.into(),
        product_ids: vec![GOOGLE_MONTHLY_PRODUCT_ID.into()],
    }
}

/// The Google Play simulator alone (for `boxoffice simulator google`), on the system clock:
/// the Play Developer API, the token endpoint and Google's keys at the root of its port, its
/// controls under `/control/google` (the service account's key file at
/// `/control/google/service_account_key`), no push subscription until one is set at
/// `/control/google/rtdn`; with the task that pushes notifications (abort it to stop).
pub fn standalone_google(addr: &str) -> Result<(Route, JoinHandle<()>), SimError> {
    let google = google_simulator(format!("http://{addr}"), None, Arc::new(chrono::Utc::now))?;
    let deliveries = google.spawn_delivery_loop();
    let control = OpenApiService::new(
        google.control_api(),
        "Google Play simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("http://{addr}"));
    let routes = Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest_no_strip("/control/google", control)
        .nest("/", google.endpoint());
    Ok((routes, deliveries))
}
