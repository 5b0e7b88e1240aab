//! Google Play's server side, as the core asks it about purchases: the Play Developer API
//! (`purchases.subscriptionsv2.get`, `purchases.subscriptions.acknowledge`) called with an
//! access token the service account obtains by signing a JWT bearer grant, and the
//! Real-time developer notifications Pub/Sub pushes, each with an OIDC token Google signs.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use tokio::sync::Mutex;

use super::wire::{
    AssertionClaims, DeveloperNotification, ErrorResponse, PushEnvelope, PushTokenClaims,
    SubscriptionPurchaseV2, TokenResponse,
};
use crate::core::model::Currency;
use crate::providers::ProviderError;
use crate::providers::jwks::JwksCache;
use crate::providers::store::{
    StoreEnvironment, StorePayment, StoreRefusal, StoreState, StoreSubscription,
};

const ANDROIDPUBLISHER_SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
/// The audience google-auth puts in every service-account assertion.
const TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
const PUSH_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    /// The app's package name: purchases of other apps are refused.
    pub package_name: String,
    /// Whose purchases count: `Production` (real buyers) and/or `Sandbox` (license
    /// testers, whose purchases carry `testPurchase`).
    pub environments: Vec<StoreEnvironment>,
    /// `https://androidpublisher.googleapis.com`, or a simulator's.
    pub api_base: String,
    /// The service account's `client_email` and `private_key` (PKCS#8 PEM), from its key
    /// file.
    pub client_email: String,
    pub private_key_pem: String,
    /// The key file's `token_uri`: `https://oauth2.googleapis.com/token`, or a simulator's.
    pub token_uri: String,
    /// The audience the Pub/Sub push subscription puts in its OIDC tokens.
    pub push_audience: String,
    /// The service account the push subscription authenticates as, when it is pinned.
    pub push_service_account: Option<String>,
    /// Google's OIDC keys: `https://www.googleapis.com/oauth2/v3/certs`, or a simulator's.
    pub push_certs_url: String,
}

/// A Real-time developer notification, verified.
#[derive(Debug, Clone)]
pub struct GooglePush {
    /// The Pub/Sub message id: a redelivery carries the same one.
    pub id: String,
    /// What happened, for logs (`subscription/2`, `voided`, `test`).
    pub kind: String,
    /// The subscription purchase it is about, with when the store voided it if it did.
    pub purchase: Option<(String, Option<DateTime<Utc>>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum GooglePushError {
    #[error("{0}")]
    Unverified(String),
    #[error("Google's keys could not be fetched: {0}")]
    Unavailable(String),
}

/// An access token and when it stops being used.
struct AccessToken {
    token: String,
    until: DateTime<Utc>,
}

#[derive(Clone)]
pub struct GoogleClient {
    settings: Arc<GoogleSettings>,
    signing_key: Arc<EncodingKey>,
    http: reqwest::Client,
    token: Arc<Mutex<Option<AccessToken>>>,
    push_keys: Arc<JwksCache>,
}

fn unavailable(detail: impl std::fmt::Display) -> StoreRefusal {
    StoreRefusal::Unavailable(detail.to_string())
}

fn rfc3339(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

impl GoogleClient {
    pub fn new(settings: GoogleSettings) -> Result<Self, String> {
        let signing_key = EncodingKey::from_rsa_pem(settings.private_key_pem.as_bytes())
            .map_err(|error| format!("the service account key is not an RSA PEM: {error}"))?;
        if settings.environments.is_empty() {
            return Err("no Google Play environment is configured".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Ok(Self {
            settings: Arc::new(settings),
            signing_key: Arc::new(signing_key),
            http,
            token: Arc::new(Mutex::new(None)),
            push_keys: Arc::new(JwksCache::default()),
        })
    }

    pub fn settings(&self) -> &GoogleSettings {
        &self.settings
    }

    /// An access token for the Play Developer API, kept until a minute before it expires.
    async fn access_token(&self, now: DateTime<Utc>) -> Result<String, StoreRefusal> {
        let mut cached = self.token.lock().await;
        if let Some(cached) = cached.as_ref()
            && cached.until > now
        {
            return Ok(cached.token.clone());
        }
        let claims = AssertionClaims {
            iss: &self.settings.client_email,
            scope: ANDROIDPUBLISHER_SCOPE,
            aud: TOKEN_AUDIENCE,
            iat: now.timestamp(),
            exp: (now + TimeDelta::hours(1)).timestamp(),
        };
        let assertion =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.signing_key)
                .map_err(unavailable)?;
        let url = &self.settings.token_uri;
        let response = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|error| unavailable(format!("could not reach {url}: {error}")))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| unavailable(format!("could not read {url}: {error}")))?;
        if !status.is_success() {
            return Err(unavailable(format!(
                "{url} refused the service account ({status}): {body}"
            )));
        }
        let answer: TokenResponse = serde_json::from_str(&body)
            .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")))?;
        let until = now + TimeDelta::seconds((answer.expires_in - 60).max(0));
        *cached = Some(AccessToken {
            token: answer.access_token.clone(),
            until,
        });
        Ok(answer.access_token)
    }

    fn purchase_url(&self, path: &str) -> String {
        let segment =
            |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        format!(
            "{}/androidpublisher/v3/applications/{}/purchases/{path}",
            self.settings.api_base.trim_end_matches('/'),
            segment(&self.settings.package_name)
        )
    }

    /// Sends an API request; Google's refusals (4xx) are the store's answer, anything else
    /// an outage.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreRefusal> {
        let response = request
            .bearer_auth(self.access_token(now).await?)
            .send()
            .await
            .map_err(|error| unavailable(format!("could not reach {url}: {error}")))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|error| unavailable(format!("could not read {url}: {error}")))?;
        match status {
            200..=299 => Ok(body),
            400 | 404 | 410 => {
                let detail = serde_json::from_str::<ErrorResponse>(&body).ok();
                Err(StoreRefusal::refused(
                    detail
                        .as_ref()
                        .and_then(|detail| detail.error.code)
                        .or(Some(i64::from(status))),
                    detail
                        .and_then(|detail| detail.error.message)
                        .unwrap_or_else(|| format!("Google Play answered {status}")),
                ))
            }
            _ => Err(unavailable(format!("{url} answered {status}: {body}"))),
        }
    }

    /// The subscription a purchase token stands for, as Google Play reports it now, after
    /// acknowledging it if it still needs it (Google refunds purchases not acknowledged
    /// within three days).
    pub async fn subscription(
        &self,
        purchase_token: &str,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let token = purchase_token.trim();
        if token.is_empty() {
            return Err(StoreRefusal::refused(400, "Invalid Value"));
        }
        let encoded = url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>();
        let url = self.purchase_url(&format!("subscriptionsv2/tokens/{encoded}"));
        let body = self.call(self.http.get(&url), &url, now).await?;
        let purchase: SubscriptionPurchaseV2 = serde_json::from_str(&body)
            .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")))?;
        let view = self.subscription_from(token, &purchase)?;
        if purchase.acknowledgement_state.as_deref() == Some("ACKNOWLEDGEMENT_STATE_PENDING") {
            let product = url::form_urlencoded::byte_serialize(view.product_id.as_bytes())
                .collect::<String>();
            let url = self.purchase_url(&format!(
                "subscriptions/{product}/tokens/{encoded}:acknowledge"
            ));
            self.call(self.http.post(&url).json(&serde_json::json!({})), &url, now)
                .await?;
        }
        Ok(view)
    }

    fn subscription_from(
        &self,
        token: &str,
        purchase: &SubscriptionPurchaseV2,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let environment = if purchase.test_purchase.is_some() {
            StoreEnvironment::Sandbox
        } else {
            StoreEnvironment::Production
        };
        if !self.settings.environments.contains(&environment) {
            return Err(StoreRefusal::refused(
                None,
                match environment {
                    StoreEnvironment::Sandbox => {
                        "A license tester's purchase is not accepted by this server."
                    }
                    StoreEnvironment::Production => {
                        "A real purchase is not accepted by this test server."
                    }
                },
            ));
        }
        let item = purchase
            .line_items
            .first()
            .ok_or_else(|| StoreRefusal::refused(None, "The purchase holds no subscription."))?;
        let expires_at = rfc3339(item.expiry_time.as_deref())
            .ok_or_else(|| unavailable("Google Play reported no expiry time"))?;
        let plan = item.auto_renewing_plan.as_ref();
        let state = match purchase.subscription_state.as_str() {
            "SUBSCRIPTION_STATE_ACTIVE" | "SUBSCRIPTION_STATE_CANCELED" => StoreState::Active,
            "SUBSCRIPTION_STATE_IN_GRACE_PERIOD" => StoreState::GracePeriod { until: expires_at },
            "SUBSCRIPTION_STATE_ON_HOLD" | "SUBSCRIPTION_STATE_PAUSED" => StoreState::BillingRetry,
            "SUBSCRIPTION_STATE_EXPIRED" => StoreState::Expired,
            "SUBSCRIPTION_STATE_PENDING" => {
                return Err(StoreRefusal::refused(
                    None,
                    "The purchase is waiting for its payment.",
                ));
            }
            other => {
                return Err(StoreRefusal::refused(
                    None,
                    format!("The purchase is not a live subscription ({other})."),
                ));
            }
        };
        let price = plan
            .and_then(|plan| plan.recurring_price.as_ref())
            .and_then(|money| {
                let currency = Currency::parse(&money.currency_code)?;
                let units: i64 = money.units.as_deref().unwrap_or("0").parse().ok()?;
                let scale = 10i64.pow(currency.exponent);
                let nanos_per_minor = 1_000_000_000 / scale;
                Some((
                    units.checked_mul(scale)? + money.nanos.unwrap_or(0) / nanos_per_minor,
                    currency.code().to_owned(),
                ))
            });
        let started = rfc3339(purchase.start_time.as_deref()).unwrap_or(expires_at);
        let order = item
            .latest_successful_order_id
            .clone()
            .or_else(|| purchase.latest_order_id.clone())
            .unwrap_or_else(|| token.to_owned());
        Ok(StoreSubscription {
            environment,
            subscription_ref: token.to_owned(),
            product_id: item.product_id.clone(),
            latest_payment: StorePayment {
                transaction_id: order,
                purchased_at: started,
                price,
            },
            period_start: started,
            expires_at,
            auto_renew: purchase.subscription_state == "SUBSCRIPTION_STATE_ACTIVE"
                && plan.and_then(|plan| plan.auto_renew_enabled) != Some(false),
            state,
        })
    }

    async fn fetch_push_keys(&self) -> Result<JwkSet, ProviderError> {
        let url = &self.settings.push_certs_url;
        let response =
            self.http
                .get(url)
                .send()
                .await
                .map_err(|source| ProviderError::Transport {
                    url: url.clone(),
                    source,
                })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|source| ProviderError::Transport {
                url: url.clone(),
                source,
            })?;
        if status != 200 {
            return Err(ProviderError::Status {
                url: url.clone(),
                status,
                body,
            });
        }
        serde_json::from_str(&body).map_err(|error| ProviderError::Decode {
            url: url.clone(),
            detail: error.to_string(),
        })
    }

    /// A Pub/Sub push of a Real-time developer notification: its OIDC token checked
    /// (Google's key, issuer, audience, service account, expiry by `now`), then read.
    pub async fn read_push(
        &self,
        authorization: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<GooglePush, GooglePushError> {
        let refuse = |reason: &str| GooglePushError::Unverified(reason.to_owned());
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| refuse("the push carries no bearer token"))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refuse("the push token is malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(refuse("the push token is not signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| refuse("the push token names no key"))?;
        let key = self
            .push_keys
            .key(&kid, || self.fetch_push_keys())
            .await
            .map_err(|error| GooglePushError::Unavailable(error.to_string()))?
            .ok_or_else(|| refuse("the push token is signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_issuer(&PUSH_ISSUERS);
        validation.set_audience(&[&self.settings.push_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.1, &validation)
            .map_err(|error| GooglePushError::Unverified(format!("the push token: {error}")))?
            .claims;
        let expires = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| refuse("the push token has no expiry"))?;
        if expires <= now.timestamp() {
            return Err(refuse("the push token has expired"));
        }
        let identity: PushTokenClaims = serde_json::from_value(claims)
            .map_err(|_| refuse("the push token's claims are malformed"))?;
        if let Some(expected) = &self.settings.push_service_account
            && (identity.email.as_deref() != Some(expected.as_str())
                || identity.email_verified != Some(true))
        {
            return Err(refuse("the push comes from another service account"));
        }
        let envelope: PushEnvelope = serde_json::from_slice(body)
            .map_err(|error| GooglePushError::Unverified(format!("not a Pub/Sub push: {error}")))?;
        let id = envelope
            .message
            .message_id
            .or(envelope.message.message_id_snake)
            .ok_or_else(|| refuse("the push message has no id"))?;
        let data = STANDARD
            .decode(envelope.message.data.trim())
            .map_err(|_| refuse("the push message's data is not base64"))?;
        let notification: DeveloperNotification =
            serde_json::from_slice(&data).map_err(|error| {
                GooglePushError::Unverified(format!("not a developer notification: {error}"))
            })?;
        if notification.package_name != self.settings.package_name {
            return Err(refuse("the notification is for another app"));
        }
        let happened_at = notification
            .event_time_millis
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now);
        let (kind, purchase) = match (
            notification.subscription_notification,
            notification.voided_purchase_notification,
        ) {
            (Some(subscription), _) => (
                format!("subscription/{}", subscription.notification_type),
                Some((subscription.purchase_token, None)),
            ),
            (None, Some(voided)) if voided.product_type.unwrap_or(1) == 1 => (
                "voided".to_owned(),
                Some((voided.purchase_token, Some(happened_at))),
            ),
            _ => ("other".to_owned(), None),
        };
        Ok(GooglePush { id, kind, purchase })
    }
}
