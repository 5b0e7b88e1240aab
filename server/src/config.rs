//! The configuration file of `boxoffice serve --config FILE` (TOML), and its translation
//! into the core's settings. Simulator mode builds the same structure in code.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::api::cloudpay::CloudPaySettings;
use crate::core::identity::{ClaimsMap, SigningKeys};
use crate::core::model::{
    Currency, CustomField, IapProduct, MetadataItem, Money, Package, Period, PeriodUnit,
    SalesChannel, StorePlatform,
};
use crate::core::{CatalogueSeed, Country, IdentitySettings, PlaybackSettings, SessionSettings};
use crate::providers::sso::CognitoAppClient;

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
