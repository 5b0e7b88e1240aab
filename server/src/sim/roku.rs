//! The Roku Pay simulator in simulator mode: the channel it sells for, secured pushes to
//! `/webhooks/roku`, and the server's Roku client pointed at it.

use std::sync::Arc;

use boxoffice_simulators::roku::{
    ROKU_GRACE_PERIOD_DAYS, ROKU_ON_HOLD_DAYS, RokuBillingPeriod, RokuChannel, RokuConfig,
    RokuProduct, RokuPushConfig, RokuSimulator,
};
use poem::Route;
use poem_openapi::OpenApiService;
use tokio::task::JoinHandle;

use super::SimError;
use crate::providers::roku::{RokuClient, RokuSettings};
use crate::providers::store::StoreEnvironment;

/// The developer's Roku Pay web services API key.
pub const ROKU_PARTNER_API_KEY: &str = "B0X0FF1CE5IMULAT0R0000000000ROKU";
/// The channel and its monthly subscription (the catalogue's Roku product).
pub const ROKU_CHANNEL_ID: u64 = 251_682;
pub const ROKU_MONTHLY_PRODUCT_CODE: &str = "boxoffice-monthly";

/// The simulated Roku developer account, pushing secured notifications to `push_url` when
/// there is one.
pub(super) fn roku_simulator(
    public_base_url: String,
    push_url: Option<String>,
    now: boxoffice_simulators::clock::Now,
) -> Result<RokuSimulator, SimError> {
    RokuSimulator::new(
        RokuConfig {
            public_base_url,
            partner_api_keys: vec![ROKU_PARTNER_API_KEY.into()],
            channels: vec![RokuChannel {
                channel_id: ROKU_CHANNEL_ID,
                name: "boxoffice".into(),
                products: vec![RokuProduct {
                    code: ROKU_MONTHLY_PRODUCT_CODE.into(),
                    name: "Mobile Monthly".into(),
                    billing_period: RokuBillingPeriod::Monthly,
                    price_minor: 799,
                    currency: "GBP".into(),
                    free_trial_days: 0,
                    grace_period_days: ROKU_GRACE_PERIOD_DAYS,
                    on_hold_days: ROKU_ON_HOLD_DAYS,
                }],
            }],
            push: push_url.map(|url| RokuPushConfig { url, signed: true }),
        },
        now,
    )
    .map_err(|error| SimError::Roku(error.to_string()))
}

/// The server's Roku client: the simulator's web services and signing keys. Roku has no
/// sandbox (test users are simply not charged), so what the simulator sells is reported
/// as the sandbox's.
pub(super) fn roku_client(roku: &RokuSimulator) -> Result<RokuClient, SimError> {
    RokuClient::new(RokuSettings {
        api_base: roku.api_base().to_owned(),
        partner_api_key: ROKU_PARTNER_API_KEY.into(),
        environment: StoreEnvironment::Sandbox,
        channel_ids: vec![ROKU_CHANNEL_ID.to_string()],
        push_jwks_url: roku.jwks_url(),
        grace_period_days: ROKU_GRACE_PERIOD_DAYS,
        accept_unsigned_pushes: false,
    })
    .map_err(SimError::Roku)
}

/// The Roku Pay simulator alone (for `boxoffice simulator roku`), on the system clock: the
/// web services at the root of its port, its controls under `/control/roku`, no push URL
/// until one is set at `/control/roku/push`; with the task that sends pushes (abort it to
/// stop).
pub fn standalone_roku(addr: &str) -> Result<(Route, JoinHandle<()>), SimError> {
    let roku = roku_simulator(format!("http://{addr}"), None, Arc::new(chrono::Utc::now))?;
    let deliveries = roku.spawn_delivery_loop();
    let control = OpenApiService::new(
        roku.control_api(),
        "Roku Pay simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("http://{addr}"));
    let routes = Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest_no_strip("/control/roku", control)
        .nest("/", roku.endpoint());
    Ok((routes, deliveries))
}
