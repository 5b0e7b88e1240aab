//! Simulator mode: the server, every simulator and the control surface in one process, on
//! an embedded SQLite file, with a seeded catalogue, test users and the virtual clock.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use boxoffice_simulators::apple::{
    AppleConfig, AppleProduct, AppleSimulator, DEFAULT_GRACE_PERIOD, InAppPurchaseKey,
    NotificationUrls, SubscriptionPeriod,
};
use boxoffice_simulators::sso::{SeedUser, SsoConfig, SsoSigning, SsoSimulator};
use boxoffice_simulators::stripe::{StripeConfig, StripeSimulator};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server};
use poem_openapi::OpenApiService;
use rand::Rng;
use tokio::task::JoinHandle;

use crate::api::cloudpay::CloudPaySettings;
use crate::api::sim_control::{
    AppleDetails, BaseUrls, ClockMoveHook, ControlApi, Fixtures, SimulatorConfig, SsoDetails,
    StripeDetails, TestUser,
};
use crate::app;
use crate::clock::{Clock, VirtualClock};
use crate::config::{CatalogueConfig, DiscountConfig};
use crate::core::identity::{ClaimsMap, SigningKeys};
use crate::core::{
    Core, Country, IdentitySettings, IdentityVerifier, PaymentSettings, PlaybackSettings,
    SessionSettings, default_renewal_retries,
};
use crate::providers::sso::{CognitoAppClient, SsoClient};
use crate::providers::stripe::{StripeClient, StripeSettings};
use crate::store::Store;

const CATALOGUE: &str = include_str!("catalogue.toml");
pub const USER_POOL_ID: &str = "eu-west-1_BoxOffice";
pub const REGION: &str = "eu-west-1";
pub const APP_CLIENT_ID: &str = "4c2b9s1d7f0g3h5j6k8l9m0n1p";
pub const STRIPE_SECRET_KEY: &str = "sk_test_boxofficesimulator";
pub const STRIPE_PUBLISHABLE_KEY: &str = "pk_test_boxofficesimulator";
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
/// The `x-api-key` of discount sync in simulator mode.
pub const DISCOUNT_SYNC_API_KEY: &str = "sim-discount-sync-key";

/// The seeded users: (email, password, first name, last name).
const TEST_USERS: [(&str, &str, &str, &str); 3] = [
    ("alice@example.com", "Alice-Passw0rd!", "Alice", "Archer"),
    ("bob@example.com", "Bob-Passw0rd!", "Bob", "Baker"),
    ("carol@example.com", "Carol-Passw0rd!", "Carol", "Carter"),
];

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Core(#[from] crate::core::CoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("SSO simulator: {0}")]
    Sso(String),
    #[error("Stripe simulator: {0}")]
    Stripe(String),
    #[error("Apple simulator: {0}")]
    Apple(String),
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub addr: String,
    /// Where the SQLite file and the simulators' keys live.
    pub data_dir: PathBuf,
    /// Another database instead of the SQLite file (tests use a fresh PostgreSQL schema).
    pub database_url: Option<String>,
    pub device_limit: u32,
    /// Sign SSO tokens with this shared secret (HS256) instead of the pool's RSA key, for
    /// partners whose SSO shares a secret.
    pub sso_shared_secret: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            device_limit: SessionSettings::default().device_limit,
            sso_shared_secret: None,
        }
    }
}

/// A running simulator-mode process.
pub struct SimServer {
    pub base_url: String,
    pub config: SimulatorConfig,
    pub clock: Arc<VirtualClock>,
    pub core: Arc<Core>,
    server: JoinHandle<std::io::Result<()>>,
    /// The Stripe simulator's webhook deliveries, the App Store simulator's renewals and
    /// notifications, and the server's billing clock.
    background: Vec<JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Assembly {
    routes: Route,
    config: SimulatorConfig,
    core: Arc<Core>,
    stripe: StripeSimulator,
    apple: AppleSimulator,
    control_document: String,
}

fn simulator_config(
    base_url: &str,
    sso: &SsoSimulator,
    apple: &AppleSimulator,
    options: &SimOptions,
    catalogue: &CatalogueConfig,
    webhook_secret: &str,
) -> SimulatorConfig {
    let package = |title_part: &str| {
        catalogue
            .packages
            .iter()
            .find(|package| package.title.contains(title_part))
            .map(|package| package.id.clone())
            .unwrap_or_default()
    };
    let geo = catalogue
        .packages
        .iter()
        .find(|package| !package.countries.is_empty());
    SimulatorConfig {
        mode: "simulator".into(),
        urls: BaseUrls {
            server: base_url.to_owned(),
            healthz: format!("{base_url}/healthz"),
            cloudpay: format!("{base_url}/cloudpay"),
            cloudpay_docs: format!("{base_url}/cloudpay/docs"),
            sim_sso: format!("{base_url}/sim/sso"),
            sim_stripe: format!("{base_url}/sim/stripe"),
            sim_apple: format!("{base_url}/sim/apple"),
            sim_apple_sandbox: format!("{base_url}/sim/apple/sandbox"),
            sim_control: format!("{base_url}/sim/control"),
            sim_control_docs: format!("{base_url}/sim/control/docs"),
            sim_clock: format!("{base_url}/sim/clock"),
        },
        sso: SsoDetails {
            region: REGION.into(),
            user_pool_id: USER_POOL_ID.into(),
            app_client_id: APP_CLIENT_ID.into(),
            issuer: sso.issuer(),
            jwks_url: sso.jwks_url(),
            algorithm: if options.sso_shared_secret.is_some() {
                "HS256"
            } else {
                "RS256"
            }
            .into(),
            auto_confirm: true,
        },
        stripe: StripeDetails {
            publishable_key: STRIPE_PUBLISHABLE_KEY.into(),
            secret_key: STRIPE_SECRET_KEY.into(),
            webhook_secret: webhook_secret.to_owned(),
        },
        apple: apple_details(apple),
        device_limit: options.device_limit,
        test_users: TEST_USERS
            .iter()
            .map(|(email, password, first, last)| TestUser {
                email: (*email).into(),
                password: (*password).into(),
                first_name: (*first).into(),
                last_name: (*last).into(),
            })
            .collect(),
        fixtures: Fixtures {
            monthly_package_id: package("Monthly Pass"),
            trial_package_id: package("free trial"),
            one_off_package_id: package("Day Pass"),
            iap_package_id: package("Mobile"),
            geo_restricted_package_id: geo.map(|package| package.id.clone()).unwrap_or_default(),
            geo_allowed_countries: geo
                .map(|package| package.countries.clone())
                .unwrap_or_default(),
            geo_denied_country: "US".into(),
            discount_half_code: "50OFF".into(),
            discount_full_code: "FREEMONTH".into(),
        },
    }
}

async fn assemble(
    base_url: &str,
    options: &SimOptions,
    clock: Arc<VirtualClock>,
) -> Result<Assembly, SimError> {
    std::fs::create_dir_all(&options.data_dir).map_err(|source| SimError::DataDir {
        path: options.data_dir.display().to_string(),
        source,
    })?;
    let now_clock = clock.clone();
    let sso = sso_simulator(
        format!("{base_url}/sim/sso"),
        &options.data_dir,
        match &options.sso_shared_secret {
            Some(secret) => SsoSigning::Hs256 {
                secret: secret.clone(),
            },
            None => SsoSigning::Rs256,
        },
        Arc::new(move || now_clock.now()),
    )?;

    let database_url = match &options.database_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}",
            options.data_dir.join("boxoffice.sqlite").display()
        ),
    };
    let store = Store::open(&database_url).await?;
    let identity = IdentityVerifier::new(
        IdentitySettings {
            issuer: sso.issuer(),
            audiences: vec![APP_CLIENT_ID.into()],
            keys: match &options.sso_shared_secret {
                Some(secret) => SigningKeys::SharedSecret {
                    secret: secret.clone(),
                },
                None => SigningKeys::Jwks {
                    url: sso.jwks_url(),
                },
            },
            claims: ClaimsMap::default(),
            leeway_seconds: 0,
            password_login: Some(CognitoAppClient {
                endpoint: format!("{base_url}/sim/sso"),
                client_id: APP_CLIENT_ID.into(),
                client_secret: None,
            }),
        },
        SsoClient::new(),
    );
    let stripe_clock = clock.clone();
    let stripe = stripe_simulator(
        format!("{base_url}/sim/stripe"),
        Arc::new(move || stripe_clock.now()),
    )?;
    let webhook_secret = stripe
        .register_webhook_endpoint(
            &format!("{base_url}/webhooks/stripe"),
            &crate::providers::stripe::HANDLED_EVENTS,
        )
        .map_err(|error| SimError::Stripe(error.to_string()))?
        .secret;
    let apple_clock = clock.clone();
    let apple = apple_simulator(
        format!("{base_url}/sim/apple"),
        &options.data_dir.join("apple"),
        NotificationUrls {
            production: Some(format!("{base_url}/webhooks/apple")),
            sandbox: Some(format!("{base_url}/webhooks/apple")),
        },
        Arc::new(move || apple_clock.now()),
    )?;
    let catalogue = CatalogueConfig::parse(CATALOGUE, "the built-in simulator catalogue")?;
    let payments = PaymentSettings {
        stripe: Some(StripeClient::new(StripeSettings {
            api_base: format!("{base_url}/sim/stripe"),
            secret_key: STRIPE_SECRET_KEY.into(),
            publishable_key: STRIPE_PUBLISHABLE_KEY.into(),
            webhook_secret: webhook_secret.clone(),
            webhook_tolerance_seconds: 300,
            hosted_form_url: Some(format!("{base_url}/sim/stripe/elements/pay")),
        })),
        renewal_retries: default_renewal_retries(),
        discounts: catalogue
            .discounts
            .iter()
            .map(DiscountConfig::to_discount)
            .collect::<Result<_, _>>()?,
        discount_sync_api_key: Some(DISCOUNT_SYNC_API_KEY.into()),
    };
    let ksession_secret: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let core = Arc::new(Core::new(
        store,
        clock.clone(),
        identity,
        SessionSettings {
            device_limit: options.device_limit,
            ..SessionSettings::default()
        },
        PlaybackSettings {
            ksession_secret,
            ksession_ttl: Duration::from_secs(60 * 60),
        },
        payments,
    ));
    core.seed_catalogue(&catalogue.to_seed()?).await?;
    core.seed_discounts().await?;

    let config = simulator_config(base_url, &sso, &apple, options, &catalogue, &webhook_secret);
    let cloudpay = CloudPaySettings {
        public_url: format!("{base_url}/cloudpay"),
        redirect_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        default_country: Country::parse("GB").expect("GB is a country"),
    };
    let settling_apple = apple.clone();
    let settle_apple: ClockMoveHook = Arc::new(move || {
        let apple = settling_apple.clone();
        Box::pin(async move {
            apple.settle().await;
        }) as Pin<Box<dyn Future<Output = ()> + Send>>
    });
    let control = OpenApiService::new(
        (
            ControlApi::new(clock, config.clone(), core.clone()).on_clock_move(settle_apple),
            sso.control_api(),
            stripe.control_api(),
            apple.control_api(),
        ),
        "boxoffice simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Simulator mode's control surface: its configuration (base URLs, SSO pool and client, \
         test users, the App Store app and its keys), the virtual clock, and each simulator's \
         controls to play the customer, the store or the identity provider.",
    )
    .server(format!("{base_url}/sim"));
    let control_document = control.spec();
    let control_routes = Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest("/", control);
    let routes = app::server_routes(core.clone(), base_url, cloudpay)
        .nest("/sim/sso", sso.endpoint())
        .nest("/sim/stripe", stripe.endpoint())
        .nest("/sim/apple", apple.endpoint())
        .nest("/sim", control_routes);
    Ok(Assembly {
        routes,
        config,
        core,
        stripe,
        apple,
        control_document,
    })
}

impl SimServer {
    /// Binds, assembles and serves; returns once `/healthz` would answer.
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        let acceptor = TcpListener::bind(options.addr.clone())
            .into_acceptor()
            .await
            .map_err(|source| SimError::Listen {
                addr: options.addr.clone(),
                source,
            })?;
        let local: SocketAddr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .ok_or_else(|| SimError::Listen {
                addr: options.addr.clone(),
                source: std::io::Error::other("no local address"),
            })?;
        let base_url = format!("http://{local}");
        let clock = Arc::new(VirtualClock::new());
        let assembly = assemble(&base_url, &options, clock.clone()).await?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let endpoint = app::with_middleware(assembly.routes);
        let server = tokio::spawn(async move {
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    endpoint.map_to_response(),
                    async move {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(5)),
                )
                .await
        });
        let background = vec![
            assembly.stripe.spawn_delivery_loop(),
            assembly.apple.spawn_background_loop(),
            crate::core::spawn_billing_loop(assembly.core.clone(), Duration::from_secs(1)),
        ];
        Ok(SimServer {
            base_url,
            config: assembly.config,
            clock,
            core: assembly.core,
            server,
            background,
            shutdown: Some(shutdown),
        })
    }

    /// Serves until the server stops (Ctrl-C or an error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let shutdown = self.shutdown.take();
        tokio::select! {
            result = &mut self.server => result.unwrap_or_else(|error| Err(std::io::Error::other(error))),
            _ = tokio::signal::ctrl_c() => {
                if let Some(shutdown) = shutdown {
                    let _ = shutdown.send(());
                }
                (&mut self.server).await.unwrap_or_else(|error| Err(std::io::Error::other(error)))
            }
        }
    }

    pub async fn stop(mut self) {
        for task in &self.background {
            task.abort();
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.server).await;
        self.core.close().await;
    }
}

/// The generated documents, keyed by file name under `openapi/`. Built for the canonical
/// address `http://127.0.0.1:8080` on a throwaway database, so they never depend on the
/// machine that generates them.
pub async fn documents() -> Result<Vec<(&'static str, String)>, SimError> {
    let base_url = "http://127.0.0.1:8080";
    let scratch = std::env::temp_dir().join(format!("boxoffice-openapi-{}", uuid::Uuid::new_v4()));
    let options = SimOptions {
        addr: "127.0.0.1:8080".into(),
        data_dir: scratch.clone(),
        ..SimOptions::default()
    };
    let assembly = assemble(base_url, &options, Arc::new(VirtualClock::new())).await?;
    let cloudpay = crate::api::cloudpay::document(
        assembly.core.clone(),
        CloudPaySettings {
            public_url: format!("{base_url}/cloudpay"),
            redirect_hosts: vec![],
            default_country: Country::parse("GB").expect("GB is a country"),
        },
    );
    let documents = vec![
        ("cloudpay.json", cloudpay),
        (
            "sim-sso.json",
            boxoffice_simulators::sso::openapi_json(&format!("{base_url}/sim/sso")),
        ),
        (
            "sim-stripe.json",
            boxoffice_simulators::stripe::openapi_json(&format!("{base_url}/sim/stripe")),
        ),
        (
            "sim-apple.json",
            boxoffice_simulators::apple::openapi_json(&format!("{base_url}/sim/apple"))
                .map_err(|error| SimError::Apple(error.to_string()))?,
        ),
        ("sim-control.json", assembly.control_document),
        (
            "webhooks.json",
            crate::api::webhooks::document(assembly.core.clone(), &format!("{base_url}/webhooks")),
        ),
    ];
    assembly.core.close().await;
    let _ = std::fs::remove_dir_all(scratch);
    Ok(documents)
}

/// The simulated Stripe account.
fn stripe_simulator(
    public_base_url: String,
    now: boxoffice_simulators::clock::Now,
) -> Result<StripeSimulator, SimError> {
    StripeSimulator::new(
        StripeConfig {
            public_base_url,
            secret_key: STRIPE_SECRET_KEY.into(),
            publishable_key: STRIPE_PUBLISHABLE_KEY.into(),
        },
        now,
    )
    .map_err(|error| SimError::Stripe(error.to_string()))
}

/// The Stripe simulator alone (for `boxoffice simulator stripe`), on the system clock: the
/// API at the root of its port (`/v1/...`) and its controls under `/control/stripe`, with
/// the task that sends its webhooks (abort it to stop).
pub fn standalone_stripe(addr: &str) -> Result<(Route, JoinHandle<()>), SimError> {
    let stripe = stripe_simulator(format!("http://{addr}"), Arc::new(chrono::Utc::now))?;
    let deliveries = stripe.spawn_delivery_loop();
    let control = OpenApiService::new(
        stripe.control_api(),
        "Stripe simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("http://{addr}"));
    let routes = Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest_no_strip("/control/stripe", control)
        .nest("/", stripe.endpoint());
    Ok((routes, deliveries))
}

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
fn apple_simulator(
    public_base_url: String,
    data_dir: &std::path::Path,
    notification_urls: NotificationUrls,
    now: boxoffice_simulators::clock::Now,
) -> Result<AppleSimulator, SimError> {
    let failed =
        |error: boxoffice_simulators::apple::AppleError| SimError::Apple(error.to_string());
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
fn apple_details(apple: &AppleSimulator) -> AppleDetails {
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
pub fn standalone_apple(
    addr: &str,
    data_dir: &std::path::Path,
) -> Result<(Route, JoinHandle<()>), SimError> {
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

/// The simulated Cognito user pool with the test users in it.
fn sso_simulator(
    public_base_url: String,
    data_dir: &std::path::Path,
    signing: SsoSigning,
    now: boxoffice_simulators::clock::Now,
) -> Result<SsoSimulator, SimError> {
    let sso = SsoSimulator::new(
        SsoConfig {
            user_pool_id: USER_POOL_ID.into(),
            region: REGION.into(),
            app_client_id: APP_CLIENT_ID.into(),
            public_base_url,
            auto_confirm: true,
            signing,
            signing_key_path: Some(data_dir.join("sso-signing-key.pk8")),
            token_ttl: Duration::from_secs(60 * 60),
        },
        now,
    )
    .map_err(|error| SimError::Sso(error.to_string()))?;
    for (email, password, first, last) in TEST_USERS {
        sso.seed_user(SeedUser {
            email: email.into(),
            password: password.into(),
            given_name: first.into(),
            family_name: last.into(),
        })
        .map_err(|error| SimError::Sso(error.to_string()))?;
    }
    Ok(sso)
}

/// The SSO simulator alone (for `boxoffice simulator sso`), on the system clock: the
/// Cognito API at the root of its port and its controls under `/control/sso`.
pub fn standalone_sso(addr: &str, data_dir: &std::path::Path) -> Result<Route, SimError> {
    std::fs::create_dir_all(data_dir).map_err(|source| SimError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let sso = sso_simulator(
        format!("http://{addr}"),
        data_dir,
        SsoSigning::Rs256,
        Arc::new(chrono::Utc::now),
    )?;
    let control = OpenApiService::new(
        sso.control_api(),
        "SSO simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("http://{addr}"));
    Ok(Route::new()
        .at("/control/openapi.json", control.spec_endpoint())
        .nest("/control/docs", control.swagger_ui())
        .nest_no_strip("/control/sso", control)
        .nest("/", sso.endpoint()))
}

/// What `boxoffice sim` prints at start: where everything is and how to sign in.
pub fn banner(config: &SimulatorConfig) -> String {
    let users = config
        .test_users
        .iter()
        .map(|user| format!("    {} / {}", user.email, user.password))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "boxoffice simulator mode at {server}\n\
         \n  CloudPay API       {cloudpay}   (docs: {cloudpay_docs})\
         \n  SSO (Cognito)      {sso}   user pool {pool}, app client {client}, region {region}\
         \n  Stripe             {stripe}   keys {publishable} / {secret}\
         \n  App Store          {apple}   bundle {bundle}, API key {key_id} (issuer {issuer}), sandbox at {apple_sandbox}\
         \n  control surface    {control}   (docs: {control_docs})\
         \n  virtual clock      {clock}\
         \n  health             {healthz}\
         \n\n  test users (email / password):\n{users}\
         \n\n  everything above as JSON: {control}/config\n",
        server = config.urls.server,
        cloudpay = config.urls.cloudpay,
        cloudpay_docs = config.urls.cloudpay_docs,
        sso = config.urls.sim_sso,
        pool = config.sso.user_pool_id,
        client = config.sso.app_client_id,
        region = config.sso.region,
        stripe = config.urls.sim_stripe,
        publishable = config.stripe.publishable_key,
        secret = config.stripe.secret_key,
        apple = config.urls.sim_apple,
        apple_sandbox = config.urls.sim_apple_sandbox,
        bundle = config.apple.bundle_id,
        key_id = config.apple.key_id,
        issuer = config.apple.issuer_id,
        control = config.urls.sim_control,
        control_docs = config.urls.sim_control_docs,
        clock = config.urls.sim_clock,
        healthz = config.urls.healthz,
    )
}
