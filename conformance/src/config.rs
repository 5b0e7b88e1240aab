//! What the scenarios need to know about the target, and where it comes from.
//!
//! A simulator-mode server describes itself at `GET {base}/sim/control/config`. A deployed
//! environment has no such endpoint, so QA writes the same JSON shape into a file
//! (`--config FILE`) with what that environment has: test users, fixture package ids and,
//! when an SSO endpoint is reachable, its app client. Everything simulator-only is optional;
//! what is missing decides which scenarios are skipped (see [`Capabilities`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// The device lock CloudPay documents when nothing else is configured.
const DEFAULT_DEVICE_LIMIT: u32 = 3;

/// The JSON of `GET /sim/control/config`, read leniently: unknown members are ignored and
/// simulator-only members may be absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetConfig {
    /// `simulator` for simulator mode; anything else (or nothing) for a deployment.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub urls: ConfiguredUrls,
    #[serde(default)]
    pub sso: Option<SsoDetails>,
    /// Concurrent sessions allowed per customer.
    #[serde(default = "default_device_limit")]
    pub device_limit: u32,
    /// Existing customers, used when fresh ones cannot be signed up.
    #[serde(default)]
    pub test_users: Vec<TestUser>,
    #[serde(default)]
    pub fixtures: Fixtures,
    /// The Stripe account the server uses, when its simulator is reachable.
    #[serde(default)]
    pub stripe: Option<StripeDetails>,
}

/// The Stripe (simulator) account's keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeDetails {
    pub publishable_key: String,
    pub secret_key: String,
    /// The signing secret of the server's `/webhooks/stripe` endpoint.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

fn default_device_limit() -> u32 {
    DEFAULT_DEVICE_LIMIT
}

/// Base URLs. `cloudpay` defaults to `{base}/cloudpay`; the `sim*` ones exist only where
/// simulators run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfiguredUrls {
    /// The address the server believes it has; URLs under it are reached under --base-url.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub cloudpay: Option<String>,
    /// A Cognito-compatible endpoint (`POST /` with `X-Amz-Target`).
    #[serde(default)]
    pub sim_sso: Option<String>,
    /// The control surface; the SSO simulator's token minting is at `{simControl}/sso/tokens`.
    #[serde(default)]
    pub sim_control: Option<String>,
    /// The virtual clock (`GET`/`POST`).
    #[serde(default)]
    pub sim_clock: Option<String>,
    /// The Stripe simulator's API base (`{simStripe}/v1/...`).
    #[serde(default)]
    pub sim_stripe: Option<String>,
}

/// The user pool CloudPay trusts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SsoDetails {
    #[serde(default)]
    pub user_pool_id: Option<String>,
    /// The app client that signs users up and in; the `aud` of id tokens.
    pub app_client_id: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// `RS256` or `HS256`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Whether `SignUp` confirms at once; only then can a scenario sign a fresh user up.
    #[serde(default)]
    pub auto_confirm: bool,
}

/// An existing customer and how to sign in as them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

/// Catalogue entries with a known role. A scenario that needs one that is not named is
/// skipped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fixtures {
    /// A recurring web package without a trial.
    #[serde(default)]
    pub monthly_package_id: Option<String>,
    /// A web package with a free trial of 7 days.
    #[serde(default)]
    pub trial_package_id: Option<String>,
    /// A one-off (non-recurring) web package.
    #[serde(default)]
    pub one_off_package_id: Option<String>,
    /// An app-store package with product ids for Apple, Google, Roku and Amazon.
    #[serde(default)]
    pub iap_package_id: Option<String>,
    /// A web package sold only in `geoAllowedCountries`.
    #[serde(default)]
    pub geo_restricted_package_id: Option<String>,
    #[serde(default)]
    pub geo_allowed_countries: Vec<String>,
    #[serde(default)]
    pub geo_denied_country: Option<String>,
    /// A multi-use code for 50 % off any web package.
    #[serde(default)]
    pub discount_half_code: Option<String>,
    /// A multi-use code for 100 % off the monthly package.
    #[serde(default)]
    pub discount_full_code: Option<String>,
}

/// Where the configuration was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The simulator-mode server's own `GET /sim/control/config`.
    Simulator(String),
    /// A file given with `--config`.
    File(PathBuf),
    /// Built in code (tests).
    Given,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Simulator(url) => write!(f, "{url}"),
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Given => f.write_str("the caller"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0:?} is not an http(s) base URL")]
    BaseUrl(String),
    #[error("cannot read the config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config in {source_name} is not valid: {error}")]
    Parse {
        source_name: String,
        error: serde_json::Error,
    },
    #[error(
        "{url} did not answer with a simulator configuration ({detail}) and no --config FILE \
         was given; a deployment needs a config file (see the conformance README)"
    )]
    NotFound { url: String, detail: String },
    #[error("the configured URL {what} = {url:?} is not an http(s) URL")]
    BadUrl { what: &'static str, url: String },
}

/// The resolved URLs of everything the scenarios talk to.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The CloudPay façade, without a trailing slash (`http://host/cloudpay`).
    pub cloudpay: Url,
    /// The Cognito-compatible endpoint, when configured.
    pub sso: Option<Url>,
    /// `POST` here mints tokens with overrides (SSO simulator control).
    pub sso_token_minting: Option<Url>,
    /// The virtual clock.
    pub clock: Option<Url>,
    /// The SSO pool's public keys.
    pub jwks: Option<Url>,
    /// The control surface (`{simControl}/stripe/...`, `{simControl}/discounts`).
    pub control: Option<Url>,
    /// The Stripe simulator's API base.
    pub stripe: Option<Url>,
    /// The server's provider notification receivers (`{base}/webhooks`).
    pub webhooks: Url,
}

/// What this target lets the scenarios do beyond CloudPay itself. Scenarios that need a
/// missing capability are reported as skipped, naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Fresh customers can be signed up (a Cognito endpoint that confirms at once).
    pub sign_up: bool,
    /// Id tokens can be had from the SSO endpoint (`InitiateAuth`), for `apijwttoken`.
    pub id_tokens: bool,
    /// Tokens with chosen expiry, issuer, audience or algorithm can be minted.
    pub token_minting: bool,
    /// Time can be moved forward.
    pub clock: bool,
    /// The Stripe customer can be played: intents confirmed, charges failed, refunds made
    /// (the Stripe simulator and its control surface, with the account's keys).
    pub stripe_customer: bool,
}

impl Capabilities {
    /// One line per capability, for the runner's header.
    pub fn describe(&self) -> Vec<String> {
        let line = |present: bool, what: &str, needs: &str| {
            if present {
                format!("yes  {what}")
            } else {
                format!("no   {what} (needs {needs})")
            }
        };
        vec![
            line(
                self.sign_up,
                "sign up fresh customers",
                "urls.simSso, sso.appClientId and sso.autoConfirm",
            ),
            line(
                self.id_tokens,
                "SSO id tokens (apijwttoken)",
                "urls.simSso and sso.appClientId",
            ),
            line(
                self.token_minting,
                "mint tokens with overrides",
                "urls.simControl",
            ),
            line(self.clock, "move the virtual clock", "urls.simClock"),
            line(
                self.stripe_customer,
                "play the Stripe customer",
                "urls.simStripe, urls.simControl and stripe.secretKey",
            ),
        ]
    }
}

/// The target: its base URL, configuration, and what follows from them.
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: Url,
    pub config: TargetConfig,
    pub source: ConfigSource,
    pub endpoints: Endpoints,
    pub capabilities: Capabilities,
}

fn http_url(what: &'static str, text: &str) -> Result<Url, ConfigError> {
    let trimmed = text.trim().trim_end_matches('/');
    Url::parse(trimmed)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| ConfigError::BadUrl {
            what,
            url: text.to_owned(),
        })
}

/// The base URL as given on the command line, without a trailing slash.
pub fn parse_base_url(text: &str) -> Result<Url, ConfigError> {
    http_url("--base-url", text).map_err(|_| ConfigError::BaseUrl(text.to_owned()))
}

/// `base` + `/path`, keeping any path prefix the base URL has.
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url
}

impl Target {
    /// Resolves URLs and capabilities from a configuration.
    pub fn new(
        base_url: Url,
        config: TargetConfig,
        source: ConfigSource,
    ) -> Result<Self, ConfigError> {
        // A server describes itself by the address it bound (`http://0.0.0.0:8080`, a
        // container's name); the suite reaches it at --base-url, so URLs under the server's
        // own address are moved under the base URL.
        let server = config
            .urls
            .server
            .as_deref()
            .map(|server| server.trim_end_matches('/'))
            .filter(|server| !server.is_empty());
        let base = base_url.as_str().trim_end_matches('/').to_owned();
        let rebased = |url: &str| {
            let below_server = server.and_then(|server| url.strip_prefix(server));
            match below_server {
                Some(path) if path.is_empty() || path.starts_with('/') => format!("{base}{path}"),
                _ => url.to_owned(),
            }
        };
        let optional = |what: &'static str, url: &Option<String>| {
            url.as_deref()
                .filter(|url| !url.trim().is_empty())
                .map(|url| http_url(what, &rebased(url)))
                .transpose()
        };
        let cloudpay = match optional("urls.cloudpay", &config.urls.cloudpay)? {
            Some(url) => url,
            None => join(&base_url, "/cloudpay"),
        };
        let sso = optional("urls.simSso", &config.urls.sim_sso)?;
        let control = optional("urls.simControl", &config.urls.sim_control)?;
        let clock = optional("urls.simClock", &config.urls.sim_clock)?;
        let stripe = optional("urls.simStripe", &config.urls.sim_stripe)?;
        let webhooks = join(&base_url, "/webhooks");
        let jwks = optional(
            "sso.jwksUrl",
            &config.sso.as_ref().and_then(|sso| sso.jwks_url.clone()),
        )?;
        let app_client = config
            .sso
            .as_ref()
            .is_some_and(|sso| !sso.app_client_id.is_empty());
        let auto_confirm = config.sso.as_ref().is_some_and(|sso| sso.auto_confirm);
        let capabilities = Capabilities {
            sign_up: sso.is_some() && app_client && auto_confirm,
            id_tokens: sso.is_some() && app_client,
            token_minting: control.is_some(),
            clock: clock.is_some(),
            stripe_customer: stripe.is_some() && control.is_some() && config.stripe.is_some(),
        };
        Ok(Target {
            base_url,
            endpoints: Endpoints {
                cloudpay,
                sso,
                sso_token_minting: control.as_ref().map(|control| join(control, "/sso/tokens")),
                clock,
                jwks,
                control,
                stripe,
                webhooks,
            },
            config,
            source,
            capabilities,
        })
    }

    /// The configuration from the simulator-mode server if it answers, else from the file.
    pub async fn discover(base_url: &str, config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let base_url = parse_base_url(base_url)?;
        let config_url = join(&base_url, "/sim/control/config");
        let simulator_detail = match fetch_simulator_config(&config_url).await {
            Ok(config) => {
                return Target::new(
                    base_url,
                    config,
                    ConfigSource::Simulator(config_url.to_string()),
                );
            }
            Err(detail) => detail,
        };
        let Some(path) = config_file else {
            return Err(ConfigError::NotFound {
                url: config_url.to_string(),
                detail: simulator_detail,
            });
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let config = serde_json::from_str(&text).map_err(|error| ConfigError::Parse {
            source_name: path.display().to_string(),
            error,
        })?;
        Target::new(base_url, config, ConfigSource::File(path.to_owned()))
    }
}

/// `Ok` only for a 200 with a readable configuration; otherwise what was seen, so the final
/// error can say why the simulator path was not taken.
async fn fetch_simulator_config(url: &Url) -> Result<TargetConfig, String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|error| error.to_string())?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|error| format!("unreachable: {error}"))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("status {status}"));
    }
    let text = response
        .text()
        .await
        .map_err(|error| format!("unreadable body: {error}"))?;
    serde_json::from_str(&text).map_err(|error| format!("not a simulator configuration: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_deployment_config_reads_with_defaults() {
        let config: TargetConfig = serde_json::from_str(
            r#"{"testUsers":[{"email":"qa1@example.com","password":"Secret-1"}],
                "fixtures":{"monthlyPackageId":"p1"}}"#,
        )
        .expect("parses");
        assert_eq!(config.device_limit, 3);
        let target = Target::new(
            parse_base_url("https://staging.example.com/").expect("url"),
            config,
            ConfigSource::Given,
        )
        .expect("resolves");
        assert_eq!(
            target.endpoints.cloudpay.as_str(),
            "https://staging.example.com/cloudpay"
        );
        assert_eq!(
            target.capabilities,
            Capabilities {
                sign_up: false,
                id_tokens: false,
                token_minting: false,
                clock: false,
                stripe_customer: false,
            }
        );
    }

    #[test]
    fn urls_under_the_servers_own_address_move_under_the_base_url() {
        let config: TargetConfig = serde_json::from_str(
            r#"{"urls":{"server":"http://0.0.0.0:8080","cloudpay":"http://0.0.0.0:8080/cloudpay",
                        "simClock":"http://0.0.0.0:8080/sim/clock",
                        "simSso":"https://cognito-idp.eu-west-1.amazonaws.com/"}}"#,
        )
        .expect("parses");
        let target = Target::new(
            parse_base_url("http://sim.internal:9000").expect("url"),
            config,
            ConfigSource::Given,
        )
        .expect("resolves");
        let endpoints = &target.endpoints;
        assert_eq!(
            endpoints.cloudpay.as_str(),
            "http://sim.internal:9000/cloudpay"
        );
        assert_eq!(
            endpoints.clock.as_ref().map(Url::as_str),
            Some("http://sim.internal:9000/sim/clock")
        );
        assert_eq!(
            endpoints.sso.as_ref().map(Url::as_str),
            Some("https://cognito-idp.eu-west-1.amazonaws.com/")
        );
    }

    #[test]
    fn the_documented_example_config_reads() {
        let config: TargetConfig =
            serde_json::from_str(include_str!("../config.example.json")).expect("parses");
        let target = Target::new(
            parse_base_url("https://staging.example.com").expect("url"),
            config,
            ConfigSource::Given,
        )
        .expect("resolves");
        assert_eq!(target.config.test_users.len(), 2);
        assert!(target.endpoints.jwks.is_some());
        assert_eq!(
            target.capabilities,
            Capabilities {
                sign_up: false,
                id_tokens: false,
                token_minting: false,
                clock: false,
                stripe_customer: false,
            }
        );
    }

    #[test]
    fn joining_keeps_a_path_prefix() {
        let base = parse_base_url("http://host:1/prefix/").expect("url");
        assert_eq!(
            join(&base, "/sim/clock").as_str(),
            "http://host:1/prefix/sim/clock"
        );
    }
}
