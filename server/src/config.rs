//! The configuration file of `boxoffice serve --config FILE` (TOML), and its translation
//! into the core's settings. Simulator mode builds the same structure in code.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::api::cloudpay::CloudPaySettings;
use crate::core::identity::{ClaimsMap, SigningKeys};
use crate::core::model::{
    Currency, CustomField, Discount, DiscountValue, IapProduct, MetadataItem, Money, Package,
    Period, PeriodUnit, SalesChannel, StorePlatform,
};
use crate::core::{
    CatalogueSeed, Country, IdentitySettings, PaymentSettings, PlaybackSettings, SessionSettings,
    StoreSettings,
};
use crate::providers::amazon::{
    AWS_SNS_URL_PREFIX, AmazonClient, AmazonSettings, DEFAULT_NOTIFICATION_MAX_AGE,
};
use crate::providers::apple::{AppleClient, AppleSettings};
use crate::providers::google::{GoogleClient, GoogleSettings};
use crate::providers::roku::{RokuClient, RokuSettings};
use crate::providers::sso::CognitoAppClient;
use crate::providers::store::StoreEnvironment;
use crate::providers::stripe::{StripeClient, StripeSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid configuration: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where clients reach this server, e.g. `https://payments.example.com`.
    pub public_url: String,
    #[serde(default)]
    pub sessions: SessionsConfig,
    pub identity: IdentityConfig,
    pub playback: PlaybackConfig,
    #[serde(default)]
    pub cloudpay: CloudPayConfig,
    #[serde(default)]
    pub catalogue: CatalogueConfig,
    /// Web payments; without this section checkout answers 503.
    pub stripe: Option<StripeConfig>,
    #[serde(default)]
    pub billing: BillingConfig,
    /// App Store purchases; without this section `ios` receipts are refused.
    pub apple: Option<AppleConfig>,
    /// Google Play purchases; without this section `android` receipts are refused.
    pub google: Option<GoogleConfig>,
    /// Roku Pay purchases; without this section `roku` receipts are refused.
    pub roku: Option<RokuConfig>,
    /// Amazon Appstore purchases; without this section `amazon` receipts are refused.
    pub amazon: Option<AmazonConfig>,
}

/// The app's Amazon Appstore details: RVS's shared secret and the SNS topic its
/// Real-time Notifications come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonConfig {
    pub app_package_name: String,
    pub shared_secret: String,
    /// `["Production"]`; add `"Sandbox"` to accept App Tester purchases (RVS Cloud Sandbox).
    #[serde(default = "default_apple_environments")]
    pub environments: Vec<String>,
    /// The SNS topic ARNs the Developer Console gave for Real-time Notifications.
    pub sns_topic_arns: Vec<String>,
    #[serde(default = "default_amazon_rvs_production")]
    pub rvs_base_production: String,
    #[serde(default = "default_amazon_rvs_sandbox")]
    pub rvs_base_sandbox: String,
}

fn default_amazon_rvs_production() -> String {
    crate::providers::amazon::AMAZON_RVS_PRODUCTION.into()
}

fn default_amazon_rvs_sandbox() -> String {
    crate::providers::amazon::AMAZON_RVS_SANDBOX.into()
}

/// The developer's Roku Pay web services key, and how pushes are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RokuConfig {
    pub partner_api_key: String,
    /// The channels whose purchases count; empty for any of the developer's.
    #[serde(default)]
    pub channel_ids: Vec<String>,
    #[serde(default = "default_roku_api_base")]
    pub api_base: String,
    /// The key set secured pushes are signed with (Roku's test key set while testing).
    #[serde(default = "default_roku_jwks_url")]
    pub push_jwks_url: String,
    /// Take Roku's unsecured (JSON, unsigned) pushes too. Off by default: anyone could
    /// send one.
    #[serde(default)]
    pub accept_unsigned_pushes: bool,
}

fn default_roku_api_base() -> String {
    crate::providers::roku::ROKU_API_BASE.into()
}

fn default_roku_jwks_url() -> String {
    crate::providers::roku::ROKU_PUSH_JWKS_URL.into()
}

/// The app's Google Play details and the service account that reads its purchases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    pub package_name: String,
    /// `["Production"]` for real buyers; add `"Sandbox"` to accept license testers.
    #[serde(default = "default_apple_environments")]
    pub environments: Vec<String>,
    /// The service account's JSON key file, as Google Cloud hands it out.
    pub service_account_key_file: String,
    #[serde(default = "default_google_api_base")]
    pub api_base: String,
    /// The audience the RTDN push subscription puts in its OIDC token (by default Pub/Sub
    /// uses the push endpoint's URL, `{public_url}/webhooks/google`).
    pub push_audience: String,
    /// The service account the push subscription authenticates as.
    pub push_service_account: Option<String>,
    #[serde(default = "default_google_certs_url")]
    pub push_certs_url: String,
}

fn default_google_api_base() -> String {
    "https://androidpublisher.googleapis.com".into()
}

fn default_google_certs_url() -> String {
    "https://www.googleapis.com/oauth2/v3/certs".into()
}

/// The members of a service account key file the client needs.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

fn environments_named(
    names: &[String],
    section: &str,
) -> Result<Vec<StoreEnvironment>, ConfigError> {
    names
        .iter()
        .map(|name| match name.as_str() {
            "Production" => Ok(StoreEnvironment::Production),
            "Sandbox" => Ok(StoreEnvironment::Sandbox),
            other => Err(ConfigError::Invalid(format!(
                "{section}.environments: {other:?} is neither \"Production\" nor \"Sandbox\""
            ))),
        })
        .collect()
}

impl GoogleConfig {
    pub fn to_settings(&self) -> Result<GoogleSettings, ConfigError> {
        let key: ServiceAccountKey = serde_json::from_slice(&read_file(
            &self.service_account_key_file,
        )?)
        .map_err(|error| {
            ConfigError::Invalid(format!(
                "{} is not a service account key file: {error}",
                self.service_account_key_file
            ))
        })?;
        Ok(GoogleSettings {
            package_name: self.package_name.clone(),
            environments: environments_named(&self.environments, "google")?,
            api_base: self.api_base.clone(),
            client_email: key.client_email,
            private_key_pem: key.private_key,
            token_uri: key.token_uri,
            push_audience: self.push_audience.clone(),
            push_service_account: self.push_service_account.clone(),
            push_certs_url: self.push_certs_url.clone(),
        })
    }
}

/// The app's App Store details, as App Store Connect shows them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleConfig {
    pub bundle_id: String,
    /// The app's Apple id; production notifications must carry it.
    pub app_apple_id: Option<i64>,
    /// Whose purchases count, asked in this order: `["Production"]` in production
    /// (`["Production", "Sandbox"]` while App Review tests), `["Sandbox"]` for test devices.
    #[serde(default = "default_apple_environments")]
    pub environments: Vec<String>,
    /// The in-app purchase key the App Store Server API is called with.
    pub issuer_id: String,
    pub key_id: String,
    /// The key's `.p8` file (PKCS#8 PEM).
    pub private_key_file: String,
    /// The app-specific shared secret, for `verifyReceipt`.
    pub shared_secret: Option<String>,
    /// Apple's root certificates (DER `.cer` or PEM), e.g. `AppleRootCA-G3.cer`.
    pub root_certificate_files: Vec<String>,
    #[serde(default = "default_apple_api_production")]
    pub api_base_production: String,
    #[serde(default = "default_apple_api_sandbox")]
    pub api_base_sandbox: String,
    #[serde(default = "default_verify_receipt_production")]
    pub verify_receipt_production: String,
    #[serde(default = "default_verify_receipt_sandbox")]
    pub verify_receipt_sandbox: String,
}

fn default_apple_environments() -> Vec<String> {
    vec!["Production".into()]
}

fn default_apple_api_production() -> String {
    "https://api.storekit.itunes.apple.com".into()
}

fn default_apple_api_sandbox() -> String {
    "https://api.storekit-sandbox.itunes.apple.com".into()
}

fn default_verify_receipt_production() -> String {
    "https://buy.itunes.apple.com/verifyReceipt".into()
}

fn default_verify_receipt_sandbox() -> String {
    "https://sandbox.itunes.apple.com/verifyReceipt".into()
}

fn read_file(path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A certificate file's DER, whether the file holds DER or PEM.
fn certificate_der(path: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine;
    let bytes = read_file(path)?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(bytes);
    };
    let Some(body) = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
    else {
        return Ok(bytes);
    };
    let body: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|error| ConfigError::Invalid(format!("{path} is not a PEM certificate: {error}")))
}

impl AppleConfig {
    pub fn to_settings(&self) -> Result<AppleSettings, ConfigError> {
        let environments = environments_named(&self.environments, "apple")?;
        let private_key_pem =
            String::from_utf8(read_file(&self.private_key_file)?).map_err(|_| {
                ConfigError::Invalid(format!("{} is not a PEM key", self.private_key_file))
            })?;
        Ok(AppleSettings {
            bundle_id: self.bundle_id.clone(),
            app_apple_id: self.app_apple_id,
            environments,
            api_base_production: self.api_base_production.clone(),
            api_base_sandbox: self.api_base_sandbox.clone(),
            verify_receipt_production: self.verify_receipt_production.clone(),
            verify_receipt_sandbox: self.verify_receipt_sandbox.clone(),
            issuer_id: self.issuer_id.clone(),
            key_id: self.key_id.clone(),
            private_key_pem,
            shared_secret: self.shared_secret.clone(),
            root_certificates: self
                .root_certificate_files
                .iter()
                .map(|path| certificate_der(path))
                .collect::<Result<_, _>>()?,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a Stripe simulator's base URL.
    #[serde(default = "default_stripe_api_base")]
    pub api_base: String,
    pub secret_key: String,
    pub publishable_key: String,
    /// The signing secret (`whsec_…`) of the webhook endpoint registered for
    /// `{public_url}/webhooks/stripe`.
    pub webhook_secret: String,
    #[serde(default = "default_webhook_tolerance")]
    pub webhook_tolerance_seconds: i64,
    /// Requests in flight to Stripe at most, renewals and customers' checkouts together.
    #[serde(default = "default_stripe_concurrency")]
    pub max_concurrent_requests: usize,
}

fn default_stripe_api_base() -> String {
    "https://api.stripe.com".into()
}

/// Stripe's test mode allows 25 requests a second, its live mode 100; an off-session charge
/// takes a good part of a second, so 25 in flight stays near the test-mode rate.
fn default_stripe_concurrency() -> usize {
    25
}

fn default_webhook_tolerance() -> i64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Days after a period end at which a failed renewal is retried; after the last one
    /// fails the subscription expires.
    pub renewal_retry_days: Vec<u32>,
    /// The `x-api-key` of `POST /cloudpay/discount/streamamg/sync`.
    pub discount_sync_api_key: Option<String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            renewal_retry_days: vec![1, 3, 7],
            discount_sync_api_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    pub device_limit: u32,
    pub idle_timeout_minutes: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            device_limit: 3,
            idle_timeout_minutes: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// RS256 keys from the provider's JWKS document…
    pub jwks_url: Option<String>,
    /// …or an HS256 secret shared with it.
    pub shared_secret: Option<String>,
    #[serde(default)]
    pub claims: ClaimsConfig,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: i64,
    /// A Cognito app client, to accept email and password at session start.
    pub cognito: Option<CognitoConfig>,
}

fn default_leeway() -> i64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    pub subject: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        let defaults = ClaimsMap::default();
        Self {
            subject: defaults.subject,
            first_name: defaults.first_name,
            last_name: defaults.last_name,
            email: defaults.email,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CognitoConfig {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackConfig {
    pub ksession_secret: String,
    #[serde(default = "default_ksession_minutes")]
    pub ksession_ttl_minutes: u64,
}

fn default_ksession_minutes() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudPayConfig {
    /// Hosts that `/sso/start/{redirect}` and `setcookie?callbackurl=` may send browsers to.
    pub redirect_hosts: Vec<String>,
    /// The country `LocationFromIp` shows when the caller's is unknown.
    pub default_country: String,
}

impl Default for CloudPayConfig {
    fn default() -> Self {
        Self {
            redirect_hosts: Vec::new(),
            default_country: "GB".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    pub custom_fields: Vec<CustomFieldConfig>,
    pub packages: Vec<PackageConfig>,
    pub discounts: Vec<DiscountConfig>,
}

/// A discount code: exactly one of `percent_off` and `amount_off` (minor units, with
/// `currency`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountConfig {
    pub id: String,
    pub code: String,
    pub percent_off: Option<u32>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    #[serde(default)]
    pub single_use: bool,
    /// RFC 3339, e.g. `2026-01-01T00:00:00Z`.
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// Package ids the code applies to; empty for all.
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default = "default_active")]
    pub active: bool,
}

fn default_active() -> bool {
    true
}

impl DiscountConfig {
    pub fn to_discount(&self) -> Result<Discount, ConfigError> {
        let invalid = |what: String| ConfigError::Invalid(format!("discount {}: {what}", self.id));
        let value = match (self.percent_off, self.amount_off) {
            (Some(percent), None) if (1..=100).contains(&percent) => {
                DiscountValue::Percent(percent)
            }
            (Some(percent), None) => {
                return Err(invalid(format!("percent_off {percent} is not 1 to 100")));
            }
            (None, Some(amount)) if amount > 0 => {
                let code = self
                    .currency
                    .as_deref()
                    .ok_or_else(|| invalid("amount_off needs a currency".into()))?;
                DiscountValue::Fixed(Money {
                    minor_units: amount,
                    currency: Currency::parse(code)
                        .ok_or_else(|| invalid(format!("unknown currency {code}")))?,
                })
            }
            (None, Some(amount)) => {
                return Err(invalid(format!("amount_off {amount} is not positive")));
            }
            _ => {
                return Err(invalid(
                    "needs exactly one of percent_off and amount_off".into(),
                ));
            }
        };
        let time =
            |text: &Option<String>| -> Result<Option<chrono::DateTime<chrono::Utc>>, ConfigError> {
                text.as_deref()
                    .map(|text| {
                        chrono::DateTime::parse_from_rfc3339(text)
                            .map(|time| time.with_timezone(&chrono::Utc))
                            .map_err(|error| {
                                invalid(format!("{text} is not an RFC 3339 time: {error}"))
                            })
                    })
                    .transpose()
            };
        if self.code.trim().is_empty() {
            return Err(invalid("the code is empty".into()));
        }
        Ok(Discount {
            id: self.id.clone(),
            code: self.code.trim().to_ascii_uppercase(),
            value,
            single_use: self.single_use,
            valid_from: time(&self.valid_from)?,
            valid_until: time(&self.valid_until)?,
            active: self.active,
            package_ids: self.packages.clone(),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldConfig {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageConfig {
    pub id: String,
    pub title: String,
    pub body: String,
    pub style: Option<String>,
    /// Minor units (pence, cents, øre).
    pub amount: i64,
    pub currency: String,
    /// `1month`, `7days`, `1year`.
    pub interval: String,
    pub duration: Option<String>,
    pub recurring: bool,
    pub trial_days: Option<u32>,
    /// `web` (default) or `iap`.
    #[serde(default = "default_channel")]
    pub channel: String,
    #[serde(default)]
    pub display_order: i64,
    #[serde(default)]
    pub entitlements: Vec<String>,
    #[serde(default)]
    pub countries: Vec<String>,
    /// Store product ids by platform: `Apple`, `Google`, `Roku`, `Amazon`.
    #[serde(default)]
    pub iap: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: Vec<MetadataConfig>,
}

fn default_channel() -> String {
    "web".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    pub name: String,
    pub code: String,
    pub value: String,
}

/// `1month`, `12months`, `7 days` → a period.
pub fn parse_period(text: &str) -> Option<Period> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit())?;
    let count: u32 = text[..digits].parse().ok().filter(|count| *count > 0)?;
    let unit = PeriodUnit::parse(text[digits..].trim())?;
    Some(Period { count, unit })
}

impl PackageConfig {
    fn to_package(&self) -> Result<Package, ConfigError> {
        let invalid = |what: String| ConfigError::Invalid(format!("package {}: {what}", self.id));
        let currency = Currency::parse(&self.currency)
            .ok_or_else(|| invalid(format!("unknown currency {}", self.currency)))?;
        let interval = parse_period(&self.interval)
            .ok_or_else(|| invalid(format!("bad interval {}", self.interval)))?;
        let duration = self
            .duration
            .as_deref()
            .map(|d| parse_period(d).ok_or_else(|| invalid(format!("bad duration {d}"))))
            .transpose()?;
        let sales_channel = SalesChannel::parse(&self.channel)
            .ok_or_else(|| invalid(format!("channel must be web or iap, not {}", self.channel)))?;
        let iap_products = self
            .iap
            .iter()
            .map(|(platform, product_id)| {
                Ok(IapProduct {
                    platform: StorePlatform::parse(platform)
                        .ok_or_else(|| invalid(format!("unknown store platform {platform}")))?,
                    product_id: product_id.clone(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Package {
            id: self.id.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            style: self.style.clone(),
            price: Money {
                minor_units: self.amount,
                currency,
            },
            interval,
            duration,
            recurring: self.recurring,
            trial_days: self.trial_days,
            sales_channel,
            display_order: self.display_order,
            entitlements: self.entitlements.clone(),
            countries: self
                .countries
                .iter()
                .map(|c| c.to_ascii_uppercase())
                .collect(),
            iap_products,
            metadata: self
                .metadata
                .iter()
                .map(|m| MetadataItem {
                    name: m.name.clone(),
                    code: m.code.clone(),
                    value: m.value.clone(),
                })
                .collect(),
        })
    }
}

impl CatalogueConfig {
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn to_seed(&self) -> Result<CatalogueSeed, ConfigError> {
        Ok(CatalogueSeed {
            packages: self
                .packages
                .iter()
                .map(PackageConfig::to_package)
                .collect::<Result<_, _>>()?,
            custom_fields: self
                .custom_fields
                .iter()
                .map(|field| CustomField {
                    id: field.id.clone(),
                    label: field.label.clone(),
                    required: field.required,
                })
                .collect(),
        })
    }
}

impl BillingConfig {
    pub fn renewal_retries(&self) -> Vec<Duration> {
        self.renewal_retry_days
            .iter()
            .map(|days| Duration::from_secs(u64::from(*days) * 24 * 60 * 60))
            .collect()
    }
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: shown,
            source,
        })
    }

    pub fn session_settings(&self) -> SessionSettings {
        SessionSettings {
            device_limit: self.sessions.device_limit,
            idle_timeout: Duration::from_secs(self.sessions.idle_timeout_minutes * 60),
        }
    }

    pub fn playback_settings(&self) -> PlaybackSettings {
        PlaybackSettings {
            ksession_secret: self.playback.ksession_secret.clone(),
            ksession_ttl: Duration::from_secs(self.playback.ksession_ttl_minutes * 60),
        }
    }

    pub fn identity_settings(&self) -> Result<IdentitySettings, ConfigError> {
        let identity = &self.identity;
        let keys = match (&identity.jwks_url, &identity.shared_secret) {
            (Some(url), None) => SigningKeys::Jwks { url: url.clone() },
            (None, Some(secret)) => SigningKeys::SharedSecret {
                secret: secret.clone(),
            },
            _ => {
                return Err(ConfigError::Invalid(
                    "identity needs exactly one of jwks_url (RS256) and shared_secret (HS256)"
                        .into(),
                ));
            }
        };
        if identity.audiences.is_empty() {
            return Err(ConfigError::Invalid(
                "identity.audiences must name at least one client".into(),
            ));
        }
        Ok(IdentitySettings {
            issuer: identity.issuer.clone(),
            audiences: identity.audiences.clone(),
            keys,
            claims: ClaimsMap {
                subject: identity.claims.subject.clone(),
                first_name: identity.claims.first_name.clone(),
                last_name: identity.claims.last_name.clone(),
                email: identity.claims.email.clone(),
            },
            leeway_seconds: identity.leeway_seconds,
            password_login: identity.cognito.as_ref().map(|cognito| CognitoAppClient {
                endpoint: cognito.endpoint.clone(),
                client_id: cognito.client_id.clone(),
                client_secret: cognito.client_secret.clone(),
            }),
        })
    }

    pub fn payment_settings(&self) -> Result<PaymentSettings, ConfigError> {
        if self
            .stripe
            .as_ref()
            .is_some_and(|stripe| stripe.max_concurrent_requests == 0)
        {
            return Err(ConfigError::Invalid(
                "stripe.max_concurrent_requests must be at least 1".into(),
            ));
        }
        Ok(PaymentSettings {
            stripe: self.stripe.as_ref().map(|stripe| {
                StripeClient::new(StripeSettings {
                    api_base: stripe.api_base.clone(),
                    secret_key: stripe.secret_key.clone(),
                    publishable_key: stripe.publishable_key.clone(),
                    webhook_secret: stripe.webhook_secret.clone(),
                    webhook_tolerance_seconds: stripe.webhook_tolerance_seconds,
                    hosted_form_url: None,
                    max_concurrent_requests: stripe.max_concurrent_requests,
                    unix_socket: None,
                })
            }),
            renewal_retries: self.billing.renewal_retries(),
            discounts: self
                .catalogue
                .discounts
                .iter()
                .map(DiscountConfig::to_discount)
                .collect::<Result<_, _>>()?,
            discount_sync_api_key: self.billing.discount_sync_api_key.clone(),
        })
    }

    pub fn store_settings(&self) -> Result<StoreSettings, ConfigError> {
        Ok(StoreSettings {
            apple: match &self.apple {
                Some(apple) => Some(
                    AppleClient::new(apple.to_settings()?)
                        .map_err(|error| ConfigError::Invalid(format!("apple: {error}")))?,
                ),
                None => None,
            },
            google: match &self.google {
                Some(google) => Some(
                    GoogleClient::new(google.to_settings()?)
                        .map_err(|error| ConfigError::Invalid(format!("google: {error}")))?,
                ),
                None => None,
            },
            amazon: match &self.amazon {
                Some(amazon) => Some(
                    AmazonClient::new(AmazonSettings {
                        rvs_base_production: amazon.rvs_base_production.clone(),
                        rvs_base_sandbox: amazon.rvs_base_sandbox.clone(),
                        shared_secret: amazon.shared_secret.clone(),
                        environments: environments_named(&amazon.environments, "amazon")?,
                        app_package_name: amazon.app_package_name.clone(),
                        sns_topic_arns: amazon.sns_topic_arns.clone(),
                        sns_url_prefixes: vec![AWS_SNS_URL_PREFIX.into()],
                        notification_max_age: DEFAULT_NOTIFICATION_MAX_AGE,
                    })
                    .map_err(|error| ConfigError::Invalid(format!("amazon: {error}")))?,
                ),
                None => None,
            },
            roku: match &self.roku {
                Some(roku) => Some(
                    RokuClient::new(RokuSettings {
                        api_base: roku.api_base.clone(),
                        channel_ids: roku.channel_ids.clone(),
                        push_jwks_url: roku.push_jwks_url.clone(),
                        accept_unsigned_pushes: roku.accept_unsigned_pushes,
                        ..RokuSettings::new(roku.partner_api_key.clone())
                    })
                    .map_err(|error| ConfigError::Invalid(format!("roku: {error}")))?,
                ),
                None => None,
            },
        })
    }

    pub fn cloudpay_settings(&self) -> Result<CloudPaySettings, ConfigError> {
        url::Url::parse(&self.public_url).map_err(|error| {
            ConfigError::Invalid(format!(
                "public_url {:?} is not a URL: {error}",
                self.public_url
            ))
        })?;
        Ok(CloudPaySettings {
            public_url: format!("{}/cloudpay", self.public_url.trim_end_matches('/')),
            redirect_hosts: self.cloudpay.redirect_hosts.clone(),
            default_country: Country::parse(&self.cloudpay.default_country).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "cloudpay.default_country {} is not an ISO 3166-1 alpha-2 code",
                    self.cloudpay.default_country
                ))
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_cloudpay_writes_them() {
        assert_eq!(
            parse_period("1month"),
            Some(Period {
                count: 1,
                unit: PeriodUnit::Month
            })
        );
        assert_eq!(
            parse_period("12months"),
            Some(Period {
                count: 12,
                unit: PeriodUnit::Month
            })
        );
        assert_eq!(
            parse_period("7 days"),
            Some(Period {
                count: 7,
                unit: PeriodUnit::Day
            })
        );
        assert_eq!(parse_period("0days"), None);
        assert_eq!(parse_period("month"), None);
        assert_eq!(parse_period("3fortnights"), None);
    }
}
