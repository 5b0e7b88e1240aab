//! Simulator mode: the server, every simulator and the control surface in one process, on
//! an embedded SQLite file, with a seeded catalogue, test users and the virtual clock.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

mod amazon;
mod apple;
mod google;
mod roku;

use boxoffice_simulators::amazon::AmazonSimulator;
use boxoffice_simulators::apple::{AppleSimulator, NotificationUrls};
use boxoffice_simulators::google::GoogleSimulator;
use boxoffice_simulators::roku::RokuSimulator;
use boxoffice_simulators::sso::{SeedUser, SsoConfig, SsoSigning, SsoSimulator};
use boxoffice_simulators::stripe::{LocalWebhooks, StripeConfig, StripeSimulator};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, Server};
use poem_openapi::OpenApiService;
use rand::Rng;
use tokio::task::JoinHandle;

use crate::api::cloudpay::CloudPaySettings;
use crate::api::sim_control::{
    BaseUrls, ClockMoveHook, ControlApi, Fixtures, SimulatorConfig, SsoDetails, StripeDetails,
    TestUser,
};
use crate::app;
use crate::clock::{Clock, VirtualClock};
use crate::config::{CatalogueConfig, DiscountConfig};
use crate::core::identity::{ClaimsMap, SigningKeys};
use crate::core::{
    Core, Country, IdentitySettings, IdentityVerifier, PaymentSettings, PlaybackSettings,
    SessionSettings, StoreSettings, default_renewal_retries,
};
use crate::providers::sso::{CognitoAppClient, SsoClient};
use crate::providers::store::StoreEnvironment;
use crate::providers::stripe::{StripeClient, StripeSettings};
use crate::store::Store;

pub use self::amazon::{
    AMAZON_MONTHLY_SKU, AMAZON_PACKAGE_NAME, AMAZON_PARENT_SKU, AMAZON_SHARED_SECRET,
    standalone_amazon,
};
pub use self::apple::{
    APPLE_ANNUAL_PRODUCT_ID, APPLE_APP_APPLE_ID, APPLE_BUNDLE_ID, APPLE_ISSUER_ID, APPLE_KEY_ID,
    APPLE_MONTHLY_PRODUCT_ID, APPLE_SHARED_SECRET, standalone_apple,
};
pub use self::google::{
    GOOGLE_MONTHLY_BASE_PLAN_ID, GOOGLE_MONTHLY_PRODUCT_ID, GOOGLE_PACKAGE_NAME, GOOGLE_PROJECT_ID,
    GOOGLE_PUSH_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT, standalone_google,
};
pub use self::roku::{
    ROKU_CHANNEL_ID, ROKU_MONTHLY_PRODUCT_CODE, ROKU_PARTNER_API_KEY, standalone_roku,
};

const CATALOGUE: &str = include_str!("catalogue.toml");
pub const USER_POOL_ID: &str = "eu-west-1_BoxOffice";
pub const REGION: &str = "eu-west-1";
pub const APP_CLIENT_ID: &str = "4c2b9s1d7f0g3h5j6k8l9m0n1p";
pub const STRIPE_SECRET_KEY: &str = "sk_test_boxofficesimulator";
pub const STRIPE_PUBLISHABLE_KEY: &str = "pk_test_boxofficesimulator";
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
    #[error("Google Play simulator: {0}")]
    Google(String),
    #[error("Roku Pay simulator: {0}")]
    Roku(String),
    #[error("Amazon Appstore simulator: {0}")]
    Amazon(String),
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
    /// Whose store purchases the server accepts: both environments by default, as a test
    /// build does; `[Production]` to see sandbox purchases refused as in production.
    pub store_environments: Vec<StoreEnvironment>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            device_limit: SessionSettings::default().device_limit,
            sso_shared_secret: None,
            store_environments: vec![StoreEnvironment::Production, StoreEnvironment::Sandbox],
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
    /// Dropped last: the server no longer listens on it then.
    local_socket: Option<LocalSocket>,
}

/// The Unix socket simulator mode listens on beside its TCP address, so that the server
/// reaches its own Stripe simulator, and that simulator the server's webhook receiver,
/// without loopback TCP: the same HTTP for a fraction of the kernel's work, which on a
/// renewal run is a tenth of the process's CPU. A fresh name: on Linux in the abstract
/// namespace (nothing on disk, gone with the process however it ends), on other Unixes a
/// file in the temporary directory, removed on drop.
struct LocalSocket(PathBuf);

impl LocalSocket {
    /// `None` where there are no Unix sockets.
    fn new() -> Option<Self> {
        let name = format!(
            "boxoffice-sim-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        if cfg!(any(target_os = "linux", target_os = "android")) {
            Some(Self(PathBuf::from(format!("\0{name}"))))
        } else if cfg!(unix) {
            Some(Self(std::env::temp_dir().join(format!("{name}.sock"))))
        } else {
            None
        }
    }

    /// The name after the NUL byte that marks an abstract socket, if this is one.
    fn abstract_name(&self) -> Option<&str> {
        self.0.to_str()?.strip_prefix('\0')
    }

    /// The path, or an abstract name as `@name`, as `ss` shows it.
    fn describe(&self) -> String {
        match self.abstract_name() {
            Some(name) => format!("@{name}"),
            None => self.0.display().to_string(),
        }
    }
}

impl Drop for LocalSocket {
    fn drop(&mut self) {
        if self.abstract_name().is_none() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

struct Assembly {
    routes: Route,
    config: SimulatorConfig,
    core: Arc<Core>,
    stripe: StripeSimulator,
    apple: AppleSimulator,
    google: GoogleSimulator,
    roku: RokuSimulator,
    amazon: AmazonSimulator,
    control_document: String,
}

fn simulator_config(
    base_url: &str,
    sso: &SsoSimulator,
    apple: &AppleSimulator,
    google: &GoogleSimulator,
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
            sim_google: format!("{base_url}/sim/google"),
            sim_roku: format!("{base_url}/sim/roku"),
            sim_amazon: format!("{base_url}/sim/amazon"),
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
        apple: apple::apple_details(apple),
        google: google::google_details(
            google,
            &format!("{base_url}/sim/google"),
            &format!("{base_url}/sim/control"),
            &format!("{base_url}/webhooks/google"),
        ),
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

/// `local_socket` is where the process also listens, if it does (see [`LocalSocket`]).
async fn assemble(
    base_url: &str,
    options: &SimOptions,
    clock: Arc<VirtualClock>,
    local_socket: Option<&Path>,
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
        local_socket.map(|socket| LocalWebhooks {
            origin: base_url.to_owned(),
            socket: socket.to_owned(),
        }),
    )?;
    let webhook_secret = stripe
        .register_webhook_endpoint(
            &format!("{base_url}/webhooks/stripe"),
            &crate::providers::stripe::HANDLED_EVENTS,
        )
        .map_err(|error| SimError::Stripe(error.to_string()))?
        .secret;
    let apple_clock = clock.clone();
    let apple = apple::apple_simulator(
        format!("{base_url}/sim/apple"),
        &options.data_dir.join("apple"),
        NotificationUrls {
            production: Some(format!("{base_url}/webhooks/apple")),
            sandbox: Some(format!("{base_url}/webhooks/apple")),
        },
        Arc::new(move || apple_clock.now()),
    )?;
    let google_clock = clock.clone();
    let google_push_endpoint = format!("{base_url}/webhooks/google");
    let google = google::google_simulator(
        format!("{base_url}/sim/google"),
        Some(google_push_endpoint.clone()),
        Arc::new(move || google_clock.now()),
    )?;
    let roku_clock = clock.clone();
    let roku = roku::roku_simulator(
        format!("{base_url}/sim/roku"),
        Some(format!("{base_url}/webhooks/roku")),
        Arc::new(move || roku_clock.now()),
    )?;
    let amazon_clock = clock.clone();
    let amazon = amazon::amazon_simulator(
        format!("{base_url}/sim/amazon"),
        Some(&options.data_dir.join("amazon")),
        Some(format!("{base_url}/webhooks/amazon")),
        Arc::new(move || amazon_clock.now()),
    )?;
    let stores = StoreSettings {
        amazon: Some(amazon::amazon_client(&amazon, &options.store_environments)?),
        roku: Some(roku::roku_client(&roku)?),
        apple: Some(apple::apple_client(&apple, &options.store_environments)?),
        google: Some(google::google_client(
            &google,
            &format!("{base_url}/sim/google"),
            &google_push_endpoint,
            &options.store_environments,
        )?),
    };
    let catalogue = CatalogueConfig::parse(CATALOGUE, "the built-in simulator catalogue")?;
    let payments = PaymentSettings {
        stripe: Some(StripeClient::new(StripeSettings {
            api_base: format!("{base_url}/sim/stripe"),
            secret_key: STRIPE_SECRET_KEY.into(),
            publishable_key: STRIPE_PUBLISHABLE_KEY.into(),
            webhook_secret: webhook_secret.clone(),
            webhook_tolerance_seconds: 300,
            hosted_form_url: Some(format!("{base_url}/sim/stripe/elements/pay")),
            // The simulator has no rate limit to keep under.
            max_concurrent_requests: usize::MAX,
            unix_socket: local_socket.map(Path::to_owned),
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
    let core = Arc::new(
        Core::new(
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
        )
        .with_stores(stores),
    );
    core.seed_catalogue(&catalogue.to_seed()?).await?;
    core.seed_discounts().await?;

    let config = simulator_config(
        base_url,
        &sso,
        &apple,
        &google,
        options,
        &catalogue,
        &webhook_secret,
    );
    let cloudpay = CloudPaySettings {
        public_url: format!("{base_url}/cloudpay"),
        redirect_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        default_country: Country::parse("GB").expect("GB is a country"),
    };
    let control = OpenApiService::new(
        (
            ControlApi::new(clock, config.clone(), core.clone())
                .on_clock_move(settled_on_clock_move(apple.clone(), |apple| async move {
                    apple.settle().await;
                }))
                .on_clock_move(settled_on_clock_move(google.clone(), |google| async move {
                    google.settle_due().await;
                }))
                .on_clock_move(settled_on_clock_move(roku.clone(), |roku| async move {
                    roku.settle_due().await;
                }))
                .on_clock_move(settled_on_clock_move(amazon.clone(), |amazon| async move {
                    amazon.settle_due().await;
                })),
            sso.control_api(),
            stripe.control_api(),
            apple.control_api(),
            google.control_api(),
            roku.control_api(),
            amazon.control_api(),
        ),
        "boxoffice simulator control",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Simulator mode's control surface: its configuration (base URLs, SSO pool and client, \
         test users, the App Store app and its keys, the Google Play app and its service account), the virtual clock, and each simulator's \
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
        .nest("/sim/google", google.endpoint())
        .nest("/sim/roku", roku.endpoint())
        .nest("/sim/amazon", amazon.endpoint())
        .nest("/sim", control_routes);
    Ok(Assembly {
        routes,
        config,
        core,
        stripe,
        apple,
        google,
        roku,
        amazon,
        control_document,
    })
}

/// A clock-move hook that runs `settle` on (a clone of) `simulator`: its renewals and
/// notifications that fell due, sent and answered before the move answers.
fn settled_on_clock_move<S, F, Done>(simulator: S, settle: F) -> ClockMoveHook
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S) -> Done + Send + Sync + 'static,
    Done: Future<Output = ()> + Send + 'static,
{
    Arc::new(move || {
        Box::pin(settle(simulator.clone())) as Pin<Box<dyn Future<Output = ()> + Send>>
    })
}

impl SimServer {
    /// Binds, assembles and serves; returns once `/healthz` would answer.
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        let local_socket = LocalSocket::new();
        let listener = TcpListener::bind(options.addr.clone());
        #[cfg(unix)]
        let listener = match &local_socket {
            Some(socket) => listener
                .combine(poem::listener::UnixListener::bind(socket.0.clone()))
                .boxed(),
            None => listener.boxed(),
        };
        #[cfg(not(unix))]
        let listener = listener.boxed();
        let listening_at = || match &local_socket {
            Some(socket) => format!("{} and {}", options.addr, socket.describe()),
            None => options.addr.clone(),
        };
        let acceptor = listener
            .into_acceptor()
            .await
            .map_err(|source| SimError::Listen {
                addr: listening_at(),
                source,
            })?;
        let local: SocketAddr = acceptor
            .local_addr()
            .iter()
            .find_map(|addr| addr.as_socket_addr().copied())
            .ok_or_else(|| SimError::Listen {
                addr: listening_at(),
                source: std::io::Error::other("no local address"),
            })?;
        let base_url = format!("http://{local}");
        let clock = Arc::new(VirtualClock::new());
        if let Some(socket) = &local_socket {
            tracing::info!(socket = %socket.describe(), "also serving on a Unix socket: the server and its Stripe simulator reach each other over it");
        }
        let socket_path = local_socket.as_ref().map(|socket| socket.0.as_path());
        let assembly = assemble(&base_url, &options, clock.clone(), socket_path).await?;
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
            assembly.google.spawn_delivery_loop(),
            assembly.roku.spawn_delivery_loop(),
            assembly.amazon.spawn_delivery_loop(),
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
            local_socket,
        })
    }

    /// The Unix socket the process also listens on, for its own simulators' traffic, as
    /// tokio and reqwest take it (an abstract name starts with a NUL byte). Any client may
    /// use it.
    pub fn local_socket(&self) -> Option<&Path> {
        self.local_socket.as_ref().map(|socket| socket.0.as_path())
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
    let assembly = assemble(base_url, &options, Arc::new(VirtualClock::new()), None).await?;
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
        (
            "sim-google.json",
            boxoffice_simulators::google::openapi_json(&format!("{base_url}/sim/google")),
        ),
        (
            "sim-roku.json",
            boxoffice_simulators::roku::openapi_json(&format!("{base_url}/sim/roku")),
        ),
        (
            "sim-amazon.json",
            boxoffice_simulators::amazon::openapi_json(&format!("{base_url}/sim/amazon"))
                .map_err(|error| SimError::Amazon(error.to_string()))?,
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
    local_webhooks: Option<LocalWebhooks>,
) -> Result<StripeSimulator, SimError> {
    StripeSimulator::new(
        StripeConfig {
            public_base_url,
            secret_key: STRIPE_SECRET_KEY.into(),
            publishable_key: STRIPE_PUBLISHABLE_KEY.into(),
            local_webhooks,
        },
        now,
    )
    .map_err(|error| SimError::Stripe(error.to_string()))
}

/// The Stripe simulator alone (for `boxoffice simulator stripe`), on the system clock: the
/// API at the root of its port (`/v1/...`) and its controls under `/control/stripe`, with
/// the task that sends its webhooks (abort it to stop).
pub fn standalone_stripe(addr: &str) -> Result<(Route, JoinHandle<()>), SimError> {
    let stripe = stripe_simulator(format!("http://{addr}"), Arc::new(chrono::Utc::now), None)?;
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
         \n  Google Play        {google}   package {package}, service account {google_account} (key file: {google_key})\
         \n  Roku Pay           {roku}   channel {roku_channel}, pushes to {server}/webhooks/roku\
         \n  Amazon Appstore    {amazon}   package {amazon_package}, SNS notifications to {server}/webhooks/amazon\
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
        google = config.urls.sim_google,
        package = config.google.package_name,
        google_account = config.google.service_account_email,
        google_key = config.google.service_account_key_url,
        roku = config.urls.sim_roku,
        roku_channel = ROKU_CHANNEL_ID,
        amazon = config.urls.sim_amazon,
        amazon_package = AMAZON_PACKAGE_NAME,
        control = config.urls.sim_control,
        control_docs = config.urls.sim_control_docs,
        clock = config.urls.sim_clock,
        healthz = config.urls.healthz,
    )
}
