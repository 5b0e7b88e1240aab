//! The App Store simulator in simulator mode: the app it sells for, its keys, and the
//! server's App Store client pointed at it.

use std::path::Path;
use std::sync::Arc;

use boxoffice_simulators::apple::{
    AppleConfig, AppleError, AppleProduct, AppleSimulator, DEFAULT_GRACE_PERIOD, InAppPurchaseKey,
    NotificationUrls, SubscriptionPeriod,
};
use poem::Route;
use poem_openapi::OpenApiService;
use tokio::task::JoinHandle;

use super::SimError;
use crate::api::sim_control::AppleDetails;
use crate::providers::apple::{AppleClient, AppleSettings};
use crate::providers::store::StoreEnvironment;

/// The simulated App Store app.
pub const APPLE_BUNDLE_ID: &str = "com.boxoffice.app";
pub const APPLE_APP_APPLE_ID: i64 = 6_450_000_001;
/// The in-app purchase key of the App Store Server API: its id (`kid`) and the team's
/// issuer id (`iss`). The key itself is generated once and kept in the data directory.
pub const APPLE_KEY_ID: &str = "BOXOFFICE1";
pub const APPLE_ISSUER_ID: &str = "6f5b1c3e-8a2d-4e7f-9b10-2c4d6e8f0a1b";
/// `verifyReceipt`'s shared secret.
pub const APPLE_SHARED_SECRET: &str = "b0c5a1e8f3d24a7c9e6b1f0d8a3c5e72";
/// The app's auto-renewable subscriptions (one subscription group).
pub const APPLE_MONTHLY_PRODUCT_ID: &str = "com.boxoffice.app.mobile.monthly";
pub const APPLE_ANNUAL_PRODUCT_ID: &str = "com.boxoffice.app.mobile.annual";
/// The App Store simulator's app: its subscriptions, in one group.
fn apple_products() -> Vec<AppleProduct> {
    vec![
        AppleProduct {
            product_id: APPLE_MONTHLY_PRODUCT_ID.into(),
            subscription_group: "boxoffice.mobile".into(),
            period: SubscriptionPeriod::Months(1),
            price_milliunits: 7_990,
            currency: "GBP".into(),
        },
        AppleProduct {
            product_id: APPLE_ANNUAL_PRODUCT_ID.into(),
            subscription_group: "boxoffice.mobile".into(),
            period: SubscriptionPeriod::Months(12),
            price_milliunits: 79_990,
            currency: "GBP".into(),
        },
    ]
}

/// The simulated App Store, its certificates and in-app purchase key kept in `data_dir`
/// (so the root certificate and the key clients were given survive a restart).
pub(super) fn apple_simulator(
    public_base_url: String,
    data_dir: &Path,
    notification_urls: NotificationUrls,
    now: boxoffice_simulators::clock::Now,
) -> Result<AppleSimulator, SimError> {
    let failed = |error: AppleError| SimError::Apple(error.to_string());
    let key = InAppPurchaseKey::load_or_generate(
        &data_dir.join(format!("SubscriptionKey_{APPLE_KEY_ID}.p8")),
        APPLE_KEY_ID,
        APPLE_ISSUER_ID,
    )
    .map_err(failed)?;
    AppleSimulator::new(
        AppleConfig {
            public_base_url,
            bundle_id: APPLE_BUNDLE_ID.into(),
            app_apple_id: APPLE_APP_APPLE_ID,
            bundle_version: "1.0".into(),
            shared_secret: APPLE_SHARED_SECRET.into(),
            api_keys: vec![key],
            products: apple_products(),
            notification_urls,
            grace_period: DEFAULT_GRACE_PERIOD,
            storefront: "GBR".into(),
            storefront_id: "143444".into(),
            data_dir: Some(data_dir.to_owned()),
        },
        now,
    )
    .map_err(failed)
}

/// What `/sim/control/config` says about the simulated App Store.
pub(super) fn apple_details(apple: &AppleSimulator) -> AppleDetails {
    let config = apple.config();
    let base = &config.public_base_url;
    let key = config.api_keys.first();
    AppleDetails {
        bundle_id: config.bundle_id.clone(),
        app_apple_id: config.app_apple_id,
        key_id: key.map(|key| key.key_id.clone()).unwrap_or_default(),
        issuer_id: key.map(|key| key.issuer_id.clone()).unwrap_or_default(),
        private_key_pem: key
            .and_then(|key| key.private_key_pem.clone())
            .unwrap_or_default(),
        shared_secret: config.shared_secret.clone(),
        production_url: base.clone(),
        sandbox_url: format!("{base}/sandbox"),
        verify_receipt_url: format!("{base}/verifyReceipt"),
        sandbox_verify_receipt_url: format!("{base}/sandbox/verifyReceipt"),
        root_certificate_url: format!("{base}/root.cer"),
        root_certificate_pem_url: format!("{base}/root.pem"),
        notification_url: config
            .notification_urls
            .production
            .clone()
            .unwrap_or_default(),
        sandbox_notification_url: config.notification_urls.sandbox.clone().unwrap_or_default(),
        product_ids: config
            .products
            .iter()
            .map(|product| product.product_id.clone())
            .collect(),
    }
}

/// The App Store simulator alone (for `boxoffice simulator apple`), on the system clock:
/// production at the root of its port, the sandbox at `/sandbox`, its controls under
/// `/control/apple` (the app, its key and products at `/control/apple/app`), no notification
/// URL until one is set there; with the task that renews and sends notifications (abort it
/// to stop).
pub fn standalone_apple(addr: &str, data_dir: &Path) -> Result<(Route, JoinHandle<()>), SimError> {
    let apple = apple_simulator(
        format!("http://{addr}"),
        &data_dir.join("apple"),
        NotificationUrls::default(),
        Arc::new(chrono::Utc::now),
    )?;
    let background = apple.spawn_background_loop();
    let control = OpenApiService::new(
        apple.control_api(),
        "App Store simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("http://{addr}"));
    let routes = Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest_no_strip("/control/apple", control)
        .nest("/", apple.endpoint());
    Ok((routes, background))
}

/// The server's App Store client, pointed at the simulator (production at its base URL, the
/// sandbox under `/sandbox`) with the app's in-app purchase key, trusting only the
/// simulator's root certificate.
pub(super) fn apple_client(
    apple: &AppleSimulator,
    environments: &[StoreEnvironment],
) -> Result<AppleClient, SimError> {
    let config = apple.config();
    let base = &config.public_base_url;
    let key = config
        .api_keys
        .first()
        .ok_or_else(|| SimError::Apple("the simulated app has no in-app purchase key".into()))?;
    AppleClient::new(AppleSettings {
        bundle_id: config.bundle_id.clone(),
        app_apple_id: Some(config.app_apple_id),
        environments: environments.to_vec(),
        api_base_production: base.clone(),
        api_base_sandbox: format!("{base}/sandbox"),
        verify_receipt_production: format!("{base}/verifyReceipt"),
        verify_receipt_sandbox: format!("{base}/sandbox/verifyReceipt"),
        issuer_id: key.issuer_id.clone(),
        key_id: key.key_id.clone(),
        private_key_pem: key.private_key_pem.clone().ok_or_else(|| {
            SimError::Apple("the in-app purchase key's private half is not known".into())
        })?,
        shared_secret: Some(config.shared_secret.clone()),
        root_certificates: vec![apple.root_certificate_der().to_vec()],
    })
    .map_err(SimError::Apple)
}
