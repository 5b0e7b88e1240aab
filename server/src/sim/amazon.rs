//! The Amazon Appstore simulator in simulator mode: the app and its subscription, SNS
//! notifications to `/webhooks/amazon`, and the server's Amazon client pointed at it.

use std::path::Path;
use std::sync::Arc;

use boxoffice_simulators::amazon::{
    AmazonConfig, AmazonSimulator, AmazonSubscriptionProduct, AmazonTerm, AmazonTermSku,
    EXAMPLE_TOPIC_ARN, SnsSignatureVersion,
};
use chrono::TimeDelta;
use poem::Route;
use poem_openapi::OpenApiService;
use tokio::task::JoinHandle;

use super::SimError;
use crate::providers::amazon::{AmazonClient, AmazonSettings};
use crate::providers::store::StoreEnvironment;

/// The app's package name on the Appstore.
pub const AMAZON_PACKAGE_NAME: &str = "com.boxoffice.app";
/// The developer's RVS shared secret.
pub const AMAZON_SHARED_SECRET: &str = "2:boxoffice-simulator-shared-secret:0000";
/// The subscription (parent SKU) and its monthly term SKU (the catalogue's Amazon product).
pub const AMAZON_PARENT_SKU: &str = "com.boxoffice.monthly";
pub const AMAZON_MONTHLY_SKU: &str = "com.boxoffice.monthly.amazon";

/// The simulated Appstore, its SNS signing certificate kept in `data_dir`, notifying
/// `endpoint` (confirmed from the start) when there is one.
pub(super) fn amazon_simulator(
    public_base_url: String,
    data_dir: Option<&Path>,
    endpoint: Option<String>,
    now: boxoffice_simulators::clock::Now,
) -> Result<AmazonSimulator, SimError> {
    AmazonSimulator::new(
        AmazonConfig {
            public_base_url,
            app_package_name: AMAZON_PACKAGE_NAME.into(),
            shared_secret: AMAZON_SHARED_SECRET.into(),
            products: vec![AmazonSubscriptionProduct {
                parent_sku: AMAZON_PARENT_SKU.into(),
                terms: vec![AmazonTermSku {
                    term_sku: AMAZON_MONTHLY_SKU.into(),
                    term: AmazonTerm::Monthly,
                    price_minor: 799,
                    currency: "GBP".into(),
                    free_trial: None,
                    grace_period_days: 3,
                    billing_retry_days: 30,
                }],
            }],
            topic_arn: EXAMPLE_TOPIC_ARN.into(),
            notification_endpoint: endpoint,
            signature_version: SnsSignatureVersion::V1,
            data_dir: data_dir.map(Path::to_owned),
        },
        now,
    )
    .map_err(|error| SimError::Amazon(error.to_string()))
}

/// The server's Amazon client: RVS and its Cloud Sandbox at the simulator, trusting SNS
/// messages whose certificate the simulator serves.
pub(super) fn amazon_client(
    amazon: &AmazonSimulator,
    environments: &[StoreEnvironment],
) -> Result<AmazonClient, SimError> {
    AmazonClient::new(AmazonSettings {
        rvs_base_production: amazon.rvs_production_url(),
        rvs_base_sandbox: amazon.rvs_sandbox_url(),
        shared_secret: AMAZON_SHARED_SECRET.into(),
        environments: environments.to_vec(),
        app_package_name: AMAZON_PACKAGE_NAME.into(),
        sns_topic_arns: vec![EXAMPLE_TOPIC_ARN.into()],
        sns_url_prefixes: vec![format!("{}/", amazon.sns_base_url())],
        notification_max_age: TimeDelta::hours(1),
    })
    .map_err(SimError::Amazon)
}

/// The Amazon Appstore simulator alone (for `boxoffice simulator amazon`), on the system
/// clock: RVS at the root of its port (the RVS Cloud Sandbox at `/sandbox`, SNS at `/sns`),
/// its controls under `/control/amazon`, no notification endpoint until one is set at
/// `/control/amazon/rtn`; with the task that delivers notifications (abort it to stop).
pub fn standalone_amazon(addr: &str, data_dir: &Path) -> Result<(Route, JoinHandle<()>), SimError> {
    let amazon = amazon_simulator(
        format!("http://{addr}"),
        Some(&data_dir.join("amazon")),
        None,
        Arc::new(chrono::Utc::now),
    )?;
    let deliveries = amazon.spawn_delivery_loop();
    let control = OpenApiService::new(
        amazon.control_api(),
        "Amazon Appstore simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("http://{addr}"));
    let routes = Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest_no_strip("/control/amazon", control)
        .nest("/", amazon.endpoint());
    Ok((routes, deliveries))
}
