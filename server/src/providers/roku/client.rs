//! Roku Pay's server side, as the core asks it about purchases: the Roku Pay web services
//! (`https://apipub.roku.com/listen/transaction-service.svc`: `validate-transaction`,
//! `cancel-subscription`, `refund-subscription`), called with the developer's Roku Pay API
//! key (in the path of a GET, as `partnerAPIKey` in the JSON body of a POST), and the push
//! notifications Roku Pay sends: secured ones (a JWS, RS256, verified against Roku's
//! published keys) and, when allowed, Roku's unsecured JSON ones.
//!
//! How the integrator uses it:
//! - a receipt (`POST /iap/verify` with platform roku): the app sends the `purchaseId`
//!   ChannelStore's `doOrder` gave it; [`RokuClient::subscription`] validates it and
//!   answers the subscription as Roku reports it now. The subscription's
//!   `subscription_ref` is Roku's `OriginalTransactionId` (the first transaction, the same
//!   across renewals), `latest_payment.transaction_id` its latest payment;
//! - a push (`POST /webhooks/roku`, the body as received): [`RokuClient::read_notification`]
//!   verifies and reads it; the core remembers it by [`RokuNotification::id`], finds the
//!   subscription by [`RokuNotification::subscription_ref`], and reads the subscription
//!   again with [`RokuClient::subscription`] of
//!   [`RokuNotification::transaction_to_validate`]. A secured push is acknowledged by a
//!   `200 OK`; an unsecured one by `200 OK` with [`RokuClient::acknowledgement`]'s header
//!   and body. Roku's `validate-transaction` says nothing of refunds: a `Refund` push
//!   carries the refund ([`RokuNotification::refund`]); Roku ends access after a refund
//!   only by cancelling (a `Cancellation` push, `cancelled` and not entitled).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};

use super::wire::{
    BaseResult, CancelRequest, PushClaims, PushMessage, RefundRequest, RefundResult,
    TransactionResult, minor_units, roku_date, succeeded,
};
use crate::core::model::Currency;
use crate::providers::ProviderError;
use crate::providers::jwks::JwksCache;
use crate::providers::store::{
    StoreEnvironment, StorePayment, StoreRefusal, StoreState, StoreSubscription,
};

/// Roku Pay's web services host.
pub const ROKU_API_BASE: &str = "https://apipub.roku.com";
/// Where the web services are, under the host.
const SERVICE_PATH: &str = "/listen/transaction-service.svc";
/// Roku's keys for secured push notifications (Roku: reject keys from anywhere else).
pub const ROKU_PUSH_JWKS_URL: &str = "https://assets.cs.roku.com/keys/partner-jwks.json";
/// Roku's keys for the test push notifications of a test endpoint.
pub const ROKU_TEST_PUSH_JWKS_URL: &str = "https://assets.cs.roku.com/keys/partner-jwks-test.json";
/// The `iss` of a secured push.
pub const ROKU_PUSH_ISSUER: &str = "Roku, Inc. urn:roku:apps:partner-service.roku.com";
/// The `x-Roku-message-type` of a Roku Pay push notification.
pub const ROKU_PUSH_MESSAGE_TYPE: &str = "roku.rpay.push";
/// Roku's grace period after a failed renewal: `validate-transaction` does not say when it
/// ends, Roku's subscription recovery documentation does.
pub const ROKU_GRACE_PERIOD_DAYS: u32 = 3;
/// The longest transaction id Roku issues.
const MAX_TRANSACTION_ID: usize = 1024;
/// The `errorMessage` Roku answers a key that is not the developer's with.
const UNAUTHORIZED: &str = "UNAUTHORIZED";
/// Push types that are payments `validate-transaction` knows.
const PAYMENT_TYPES: [&str; 5] = [
    "Sale",
    "GraceRecovered",
    "OnHoldRecovered",
    "UpgradeSale",
    "DowngradeSale",
];
/// Push types that take money back.
const REFUND_TYPES: [&str; 3] = ["Refund", "Chargeback", "SecondChargeback"];

#[derive(Debug, Clone)]
pub struct RokuSettings {
    /// [`ROKU_API_BASE`], or a simulator's base URL (the web services are at
    /// `{api_base}/listen/transaction-service.svc`).
    pub api_base: String,
    /// The developer's Roku Pay API key (Developer Dashboard → Roku Pay Web Services).
    pub partner_api_key: String,
    /// What every purchase is reported as. Roku has one web service for all purchases, test
    /// users' included (they are not charged), so the environment is a property of the
    /// deployment: `Production` against Roku, `Sandbox` against a simulator or for a
    /// channel sideloaded for billing testing.
    pub environment: StoreEnvironment,
    /// The channel ids whose pushes are accepted (Roku has one push URL per developer
    /// account); empty: any channel of the account.
    pub channel_ids: Vec<String>,
    /// [`ROKU_PUSH_JWKS_URL`] (or [`ROKU_TEST_PUSH_JWKS_URL`] for a test endpoint), or a
    /// simulator's `/keys/partner-jwks.json`.
    pub push_jwks_url: String,
    /// Roku's grace period, to say when a subscription in recovery stops being entitled:
    /// [`ROKU_GRACE_PERIOD_DAYS`].
    pub grace_period_days: u32,
    /// Whether Roku's unsecured JSON pushes (no signature: anyone can send one) are read.
    /// Off by default; turn it on only for an endpoint that does not have JWT signature
    /// authentication, and trust nothing in them but what `validate-transaction` confirms.
    pub accept_unsigned_pushes: bool,
}

impl RokuSettings {
    /// Roku's own hosts, for this key: production, any channel, secured pushes only.
    pub fn new(partner_api_key: impl Into<String>) -> Self {
        Self {
            api_base: ROKU_API_BASE.to_owned(),
            partner_api_key: partner_api_key.into(),
            environment: StoreEnvironment::Production,
            channel_ids: Vec::new(),
            push_jwks_url: ROKU_PUSH_JWKS_URL.to_owned(),
            grace_period_days: ROKU_GRACE_PERIOD_DAYS,
            accept_unsigned_pushes: false,
        }
    }
}

/// A refund (or chargeback) a push reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RokuRefund {
    /// The push's `transactionId`: the refund's id (for `validate-refund`).
    pub refund_id: String,
    /// How much went back, as a positive amount in minor units with its ISO 4217 code,
    /// when the push says.
    pub amount: Option<(i64, String)>,
    pub at: DateTime<Utc>,
}

/// A push notification, verified.
#[derive(Debug, Clone, PartialEq)]
pub struct RokuNotification {
    /// `x-Roku-message-key` (an unsecured push's `responseKey`): a redelivery carries the
    /// same one.
    pub id: String,
    /// `transactionType`: `Sale`, `GraceInitiated`, `GraceRecovered`, `OnHoldInitiated`,
    /// `OnHoldRecovered`, `Cancellation`, `Refund`, `Resubscribe`, `Credit`, `Chargeback`,
    /// … (Roku's names, for logs and for the core to decide what to do).
    pub kind: String,
    /// The payment, refund or event the push is about.
    pub transaction_id: String,
    /// The subscription's first transaction, when the push names it (every subscription
    /// push does; a `Credit` does not).
    pub original_transaction_id: Option<String>,
    /// `customerId`: the customer's Roku id.
    pub customer_id: Option<String>,
    pub channel_id: Option<String>,
    /// `productCode`.
    pub product_code: Option<String>,
    /// `eventDate`.
    pub happened_at: Option<DateTime<Utc>>,
    /// `expirationDate`: a `Cancellation`'s says whether access ends in the future
    /// (active), today (deactivation) or ended in the past (passive).
    pub expires_at: Option<DateTime<Utc>>,
    pub is_free_trial: bool,
    /// For `Refund`, `Chargeback` and `SecondChargeback`.
    pub refund: Option<RokuRefund>,
    /// What an unsecured push's acknowledgement echoes.
    pub response_key: Option<String>,
    /// Whether it came as a secured (JWT) push.
    pub signed: bool,
}

impl RokuNotification {
    /// The subscription it is about: the original transaction id (the
    /// [`StoreSubscription::subscription_ref`] of [`RokuClient::subscription`]).
    pub fn subscription_ref(&self) -> &str {
        self.original_transaction_id
            .as_deref()
            .unwrap_or(&self.transaction_id)
    }

    /// The transaction to validate to read the subscription as it is now: the payment a
    /// payment push reports, else the original transaction (events and refunds have ids
    /// `validate-transaction` does not know).
    pub fn transaction_to_validate(&self) -> &str {
        if PAYMENT_TYPES.contains(&self.kind.as_str()) {
            &self.transaction_id
        } else {
            self.subscription_ref()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RokuNotificationError {
    /// Not a push Roku signed (or, when unsecured pushes are accepted, not a push at all),
    /// or one whose token has expired or is not valid yet.
    #[error("{0}")]
    Unverified(String),
    /// Verified, but for a channel this server does not serve.
    #[error("{0}")]
    Foreign(String),
    /// Roku's keys could not be fetched.
    #[error("Roku's keys could not be fetched: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
pub struct RokuClient {
    settings: Arc<RokuSettings>,
    http: reqwest::Client,
    push_keys: Arc<JwksCache>,
}

fn unavailable(detail: impl std::fmt::Display) -> StoreRefusal {
    StoreRefusal::Unavailable(detail.to_string())
}

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A Roku refusal (`status` 1): a wrong key is our configuration, anything else the
/// store's answer about the transaction.
fn refusal(message: Option<String>) -> StoreRefusal {
    let message = message
        .filter(|message| !message.trim().is_empty())
        .unwrap_or_else(|| "Roku Pay refused the request".to_owned());
    if message.trim() == UNAUTHORIZED {
        unavailable(format!(
            "Roku Pay refused the partner API key ({UNAUTHORIZED}): check the configured key"
        ))
    } else {
        StoreRefusal::refused(None, message)
    }
}

impl RokuClient {
    pub fn new(settings: RokuSettings) -> Result<Self, String> {
        let key = settings.partner_api_key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) || key.contains('/') {
            return Err("the Roku Pay API key must be printable ASCII without '/'".into());
        }
        let base = url::Url::parse(&settings.api_base)
            .map_err(|error| format!("the Roku Pay API base is not a URL: {error}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err("the Roku Pay API base must be http(s)".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Ok(Self {
            settings: Arc::new(settings),
            http,
            push_keys: Arc::new(JwksCache::default()),
        })
    }

    pub fn settings(&self) -> &RokuSettings {
        &self.settings
    }

    fn service_url(&self, operation: &str) -> String {
        format!(
            "{}{SERVICE_PATH}/{operation}",
            self.settings.api_base.trim_end_matches('/')
        )
    }

    /// Sends a request asking for JSON: the body of a 200. Roku reports refusals in the
    /// body of a 200 (`status` 1); a 4xx is a request it could not read (its message the
    /// store's answer), anything else an outage.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<String, StoreRefusal> {
        let response = request
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|error| unavailable(format!("could not reach {url}: {error}")))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|error| unavailable(format!("could not read {url}: {error}")))?;
        match status {
            200 => Ok(body),
            400 | 404 => {
                let message = serde_json::from_str::<BaseResult>(&body)
                    .ok()
                    .and_then(|base| base.error_message)
                    .unwrap_or_else(|| format!("Roku Pay answered {status}"));
                Err(StoreRefusal::refused(i64::from(status), message))
            }
            _ => Err(unavailable(format!("{url} answered {status}: {body}"))),
        }
    }

    /// The subscription a Roku transaction (the `purchaseId` of a purchase, or any payment
    /// of the subscription) belongs to, as `validate-transaction` reports it at `now`.
    pub async fn subscription(
        &self,
        transaction_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let id = transaction_id.trim();
        if id.is_empty()
            || id.len() > MAX_TRANSACTION_ID
            || !id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StoreRefusal::refused(None, "Invalid transaction id"));
        }
        let url = self.service_url(&format!(
            "validate-transaction/{}/{}",
            segment(self.settings.partner_api_key.trim()),
            segment(id)
        ));
        let body = self.call(self.http.get(&url), &url).await?;
        let answer: TransactionResult = serde_json::from_str(&body)
            .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")))?;
        subscription_from(&answer, id, &self.settings, now)
    }

    /// `cancel-subscription`: auto-renewal stops; Roku keeps the customer entitled to the
    /// end of the paid period. `partner_reference_id` is shown back by
    /// `validate-transaction`.
    pub async fn cancel_subscription(
        &self,
        transaction_id: &str,
        partner_reference_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreRefusal> {
        let url = self.service_url("cancel-subscription");
        let body = CancelRequest {
            cancellation_date: now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            partner_api_key: self.settings.partner_api_key.trim(),
            partner_reference_id,
            transaction_id: transaction_id.trim(),
        };
        let answer = self.call(self.http.post(&url).json(&body), &url).await?;
        let base: BaseResult = serde_json::from_str(&answer)
            .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")))?;
        if succeeded(&base.status) {
            Ok(())
        } else {
            Err(refusal(base.error_message))
        }
    }

    /// `refund-subscription`: refunds `amount_minor` (before tax; Roku adds the tax) of a
    /// payment in its `currency`. Answers Roku's `RefundId`.
    pub async fn refund(
        &self,
        transaction_id: &str,
        amount_minor: i64,
        currency: &str,
        partner_reference_id: Option<&str>,
        comments: Option<&str>,
    ) -> Result<String, StoreRefusal> {
        let exponent = Currency::parse(currency)
            .ok_or_else(|| StoreRefusal::refused(None, format!("Unknown currency {currency}")))?
            .exponent;
        let url = self.service_url("refund-subscription");
        let body = RefundRequest {
            // Amounts are far below 2^53 minor units: the quotient is the nearest double to
            // the decimal amount.
            amount: amount_minor as f64 / 10f64.powi(i32::try_from(exponent).unwrap_or(2)),
            comments,
            partner_api_key: self.settings.partner_api_key.trim(),
            partner_reference_id,
            transaction_id: transaction_id.trim(),
        };
        let answer = self.call(self.http.post(&url).json(&body), &url).await?;
        let result: RefundResult = serde_json::from_str(&answer)
            .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")))?;
        match (succeeded(&result.status), result.refund_id) {
            (true, Some(refund_id)) => Ok(refund_id),
            (true, None) => Err(unavailable(format!("{url} answered no RefundId"))),
            (false, _) => Err(refusal(result.error_message)),
        }
    }

    async fn fetch_push_keys(&self) -> Result<JwkSet, ProviderError> {
        let url = &self.settings.push_jwks_url;
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

    /// A push notification's body, as received: a secured push's JWS verified (Roku's key
    /// by `kid`, RS256, Roku's issuer, `nbf` and `exp` by `now`, the Roku Pay message
    /// type) and its message read; an unsecured push's JSON read only when
    /// [`RokuSettings::accept_unsigned_pushes`].
    pub async fn read_notification(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<RokuNotification, RokuNotificationError> {
        let refuse = |reason: &str| RokuNotificationError::Unverified(reason.to_owned());
        let text = std::str::from_utf8(body)
            .map_err(|_| refuse("the push is not UTF-8 text"))?
            .trim();
        let (message, key, signed) = if text.starts_with('{') {
            if !self.settings.accept_unsigned_pushes {
                return Err(refuse(
                    "an unsecured push: this server accepts only secured (JWT) pushes",
                ));
            }
            let message: PushMessage = serde_json::from_str(text).map_err(|error| {
                RokuNotificationError::Unverified(format!("not a Roku Pay push: {error}"))
            })?;
            (message, None, false)
        } else {
            let claims = self.verified_claims(text, now).await?;
            let encoded = claims
                .message
                .ok_or_else(|| refuse("the push carries no x-Roku-message"))?;
            let json =
                decode_base64(&encoded).ok_or_else(|| refuse("x-Roku-message is not base64"))?;
            let message: PushMessage = serde_json::from_slice(&json).map_err(|error| {
                RokuNotificationError::Unverified(format!("not a Roku Pay message: {error}"))
            })?;
            (message, claims.key, true)
        };
        let notification = notification_from(message, key, signed, now);
        if !self.settings.channel_ids.is_empty()
            && !notification
                .channel_id
                .as_ref()
                .is_some_and(|channel| self.settings.channel_ids.contains(channel))
        {
            return Err(RokuNotificationError::Foreign(
                "the push is for a channel this server does not serve".into(),
            ));
        }
        Ok(notification)
    }

    /// The claims of a secured push's JWS, once it verifies.
    async fn verified_claims(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<PushClaims, RokuNotificationError> {
        let refuse = |reason: &str| RokuNotificationError::Unverified(reason.to_owned());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| refuse("the push is not a JWS"))?;
        if header.alg != Algorithm::RS256 {
            return Err(refuse("the push is not signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| refuse("the push's header names no key"))?;
        let key = self
            .push_keys
            .key(&kid, || self.fetch_push_keys())
            .await
            .map_err(|error| RokuNotificationError::Unavailable(error.to_string()))?
            .ok_or_else(|| refuse("the push is signed by a key Roku does not publish"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[ROKU_PUSH_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let claims = jsonwebtoken::decode::<PushClaims>(token, &key.1, &validation)
            .map_err(|error| RokuNotificationError::Unverified(format!("the push: {error}")))?
            .claims;
        if claims.exp.is_none_or(|exp| exp <= now.timestamp()) {
            return Err(refuse("the push has expired: it is stale"));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.timestamp()) {
            return Err(refuse("the push is not valid yet"));
        }
        if claims.message_type.as_deref() != Some(ROKU_PUSH_MESSAGE_TYPE) {
            return Err(refuse("the push is not a Roku Pay push notification"));
        }
        if claims
            .encoding
            .as_deref()
            .is_some_and(|encoding| encoding != "base64-utf8")
        {
            return Err(refuse("the push's message encoding is not base64-utf8"));
        }
        Ok(claims)
    }

    /// What acknowledges a push, besides `200 OK`: for an unsecured push the `ApiKey`
    /// header (the developer's key) and the `responseKey` as the body; nothing for a
    /// secured one.
    pub fn acknowledgement(&self, notification: &RokuNotification) -> Option<(String, String)> {
        if notification.signed {
            return None;
        }
        Some((
            self.settings.partner_api_key.trim().to_owned(),
            notification.response_key.clone().unwrap_or_default(),
        ))
    }
}

/// base64 in any of its alphabets, padded or not (Roku's reference says base64url, its
/// receiver sample decodes standard base64).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn notification_from(
    message: PushMessage,
    key: Option<String>,
    signed: bool,
    now: DateTime<Utc>,
) -> RokuNotification {
    let happened_at = message.event_date.as_deref().and_then(roku_date);
    let refund = REFUND_TYPES
        .contains(&message.transaction_type.as_str())
        .then(|| RokuRefund {
            refund_id: message.transaction_id.clone(),
            amount: message
                .price
                .zip(message.currency.as_deref())
                .and_then(|(price, code)| {
                    let currency = Currency::parse(code)?;
                    Some((
                        minor_units(price.abs(), currency.exponent)?,
                        currency.code().to_owned(),
                    ))
                }),
            at: happened_at.unwrap_or(now),
        });
    let channel_id = message.channel_id.and_then(|channel| match channel {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    });
    RokuNotification {
        id: key
            .or_else(|| message.response_key.clone())
            .unwrap_or_else(|| format!("{}:{}", message.transaction_type, message.transaction_id)),
        kind: message.transaction_type,
        transaction_id: message.transaction_id,
        original_transaction_id: message.original_transaction_id,
        customer_id: message.customer_id,
        channel_id,
        product_code: message.product_code,
        happened_at,
        expires_at: message.expiration_date.as_deref().and_then(roku_date),
        is_free_trial: message.is_free_trial,
        refund,
        response_key: message.response_key,
        signed,
    }
}

/// What `validate-transaction` says of a subscription, in the store's words.
///
/// Roku's subscription states: current (entitled, `expirationDate` ahead); in the grace
/// period (entitled, `expirationDate` today or past: access continues for Roku's grace
/// period after it, and Roku asks publishers to check again the next day); on hold
/// (neither entitled nor cancelled, `expirationDate` past: Roku retries without access);
/// cancelled (`cancelled`: entitled until `expirationDate`, which is then the end).
fn subscription_from(
    answer: &TransactionResult,
    asked: &str,
    settings: &RokuSettings,
    now: DateTime<Utc>,
) -> Result<StoreSubscription, StoreRefusal> {
    if !succeeded(&answer.status) {
        return Err(refusal(answer.error_message.clone()));
    }
    let status = answer
        .purchase_status
        .as_deref()
        .unwrap_or_default()
        .replace('_', "")
        .to_ascii_lowercase();
    if status == "pendingactive" {
        return Err(StoreRefusal::refused(
            None,
            "The subscription starts later (a downgrade waiting for the current one to end).",
        ));
    }
    let expires_at = answer
        .expiration_date
        .as_deref()
        .and_then(roku_date)
        .ok_or_else(|| {
            StoreRefusal::refused(
                None,
                "The transaction is not a subscription (no expiration).",
            )
        })?;
    let product_id = answer
        .product_id
        .clone()
        .ok_or_else(|| unavailable("Roku Pay reported no productId"))?;
    let entitled = answer.is_entitled.unwrap_or(false);
    let cancelled = answer.cancelled.unwrap_or(false);
    let state = if entitled && expires_at > now {
        StoreState::Active
    } else if entitled {
        let grace_end = expires_at + TimeDelta::days(i64::from(settings.grace_period_days));
        StoreState::GracePeriod {
            until: if grace_end > now {
                grace_end
            } else {
                now + TimeDelta::days(1)
            },
        }
    } else if !cancelled && expires_at <= now {
        StoreState::BillingRetry
    } else {
        StoreState::Expired
    };
    let purchased_at = answer
        .purchase_date
        .as_deref()
        .and_then(roku_date)
        .or_else(|| answer.original_purchase_date.as_deref().and_then(roku_date))
        .unwrap_or(expires_at);
    let price = answer
        .amount
        .zip(answer.currency.as_deref())
        .and_then(|(amount, code)| {
            let currency = Currency::parse(code)?;
            Some((
                minor_units(amount, currency.exponent)?,
                currency.code().to_owned(),
            ))
        });
    Ok(StoreSubscription {
        environment: settings.environment,
        subscription_ref: answer
            .original_transaction_id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| asked.to_owned()),
        product_id,
        latest_payment: StorePayment {
            transaction_id: answer
                .transaction_id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| asked.to_owned()),
            purchased_at,
            price,
        },
        period_start: purchased_at,
        expires_at,
        auto_renew: !cancelled && state != StoreState::Expired,
        state,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn settings() -> RokuSettings {
        RokuSettings::new("F05447A57F8DF275FC30EC835FCAD10A19B6")
    }

    /// Roku's documented example, entitled and current.
    fn documented() -> serde_json::Value {
        json!({
            "errorCode": null,
            "errorDetails": null,
            "errorMessage": "",
            "status": 0,
            "OriginalTransactionId": "6ccb40bfbd7a49dc9846aafd01890ba5",
            "amount": 1.99,
            "cancelled": false,
            "channelId": 251682,
            "channelName": "Pizzazzy Channel",
            "couponCode": null,
            "creditsApplied": null,
            "currency": "usd",
            "expirationDate": "/Date(1581033062000+0000)/",
            "isEntitled": true,
            "originalPurchaseDate": "/Date(1573084262000+0000)/",
            "partnerReferenceId": null,
            "purchaseChannel": "web",
            "purchaseContext": "isu",
            "productId": "CAkJPWMldSfISZbs2sE3_MonthlySub",
            "productName": "Pizzazzy",
            "purchaseDate": "/Date(1573084394000+0000)/",
            "purchaseStatus": "Active",
            "quantity": 1,
            "rokuCustomerId": "1f529e15cb15426be4ddb23a4933be2d",
            "tax": 0,
            "total": 0.13,
            "transactionId": "09898ffd7d2a49bc94b1aafd0189a6fa"
        })
    }

    fn view(answer: serde_json::Value, now: &str) -> Result<StoreSubscription, StoreRefusal> {
        let answer: TransactionResult = serde_json::from_value(answer).unwrap();
        subscription_from(&answer, "asked", &settings(), at(now))
    }

    #[test]
    fn rokus_documented_answer_is_a_current_subscription() {
        let view = view(documented(), "2020-01-01T00:00:00Z").unwrap();
        assert_eq!(view.subscription_ref, "6ccb40bfbd7a49dc9846aafd01890ba5");
        assert_eq!(view.product_id, "CAkJPWMldSfISZbs2sE3_MonthlySub");
        assert_eq!(
            view.latest_payment,
            StorePayment {
                transaction_id: "09898ffd7d2a49bc94b1aafd0189a6fa".into(),
                purchased_at: DateTime::from_timestamp_millis(1_573_084_394_000).unwrap(),
                price: Some((199, "USD".into())),
            }
        );
        assert_eq!(
            view.expires_at,
            DateTime::from_timestamp_millis(1_581_033_062_000).unwrap()
        );
        assert_eq!(view.state, StoreState::Active);
        assert!(view.auto_renew);
        assert_eq!(view.environment, StoreEnvironment::Production);
    }

    #[test]
    fn recovery_cancellation_and_failures_are_told_apart() {
        // Entitled past the expiration date: the grace period, for Roku's three days.
        let grace = view(documented(), "2020-02-07T00:00:00Z").unwrap();
        assert_eq!(
            grace.state,
            StoreState::GracePeriod {
                until: at("2020-02-09T23:51:02Z")
            }
        );
        // Roku still entitles after three days: until tomorrow, then ask again.
        let late = view(documented(), "2020-02-15T00:00:00Z").unwrap();
        assert_eq!(
            late.state,
            StoreState::GracePeriod {
                until: at("2020-02-16T00:00:00Z")
            }
        );
        let mut on_hold = documented();
        on_hold["isEntitled"] = json!(false);
        on_hold["purchaseStatus"] = json!("Inactive");
        let hold = view(on_hold.clone(), "2020-02-10T00:00:00Z").unwrap();
        assert_eq!(hold.state, StoreState::BillingRetry);
        assert!(hold.auto_renew);
        let mut ended = on_hold;
        ended["cancelled"] = json!(true);
        let ended = view(ended, "2020-02-10T00:00:00Z").unwrap();
        assert_eq!(ended.state, StoreState::Expired);
        assert!(!ended.auto_renew);
        let mut pending = documented();
        pending["cancelled"] = json!(true);
        let pending = view(pending, "2020-01-01T00:00:00Z").unwrap();
        assert_eq!(pending.state, StoreState::Active);
        assert!(!pending.auto_renew);

        let mut downgrade = documented();
        downgrade["purchaseStatus"] = json!("PendingActive");
        assert!(matches!(
            view(downgrade, "2020-01-01T00:00:00Z"),
            Err(StoreRefusal::Refused { .. })
        ));
        let unknown = json!({"errorCode": null, "errorDetails": null, "errorMessage": "Invalid transaction id", "status": 1});
        match view(unknown, "2020-01-01T00:00:00Z") {
            Err(StoreRefusal::Refused { code, message }) => {
                assert_eq!(code, None);
                assert_eq!(message, "Invalid transaction id");
            }
            other => panic!("{other:?}"),
        }
        let wrong_key = json!({"errorMessage": "UNAUTHORIZED", "status": 1});
        assert!(matches!(
            view(wrong_key, "2020-01-01T00:00:00Z"),
            Err(StoreRefusal::Unavailable(_))
        ));
        let xml_words = json!({"errorMessage": "nope", "status": "Failure"});
        assert!(matches!(
            view(xml_words, "2020-01-01T00:00:00Z"),
            Err(StoreRefusal::Refused { .. })
        ));
        let mut one_time = documented();
        one_time["expirationDate"] = json!(null);
        assert!(matches!(
            view(one_time, "2020-01-01T00:00:00Z"),
            Err(StoreRefusal::Refused { .. })
        ));
    }

    fn push(value: serde_json::Value) -> RokuNotification {
        let message: PushMessage = serde_json::from_value(value).unwrap();
        notification_from(
            message,
            Some("key".into()),
            true,
            at("2030-01-01T00:00:00Z"),
        )
    }

    #[test]
    fn rokus_documented_pushes_are_read() {
        let renewal = push(json!({
            "customerId": "2df58f54b4f7540ca3aa31ce8bec1fe7",
            "transactionType": "Sale",
            "transactionId": "037w1nn4nyzum28gkyj0poqqv7n4cb5q",
            "channelId": "1143791",
            "channelName": "1p6d9g0o7k7w9a1m",
            "productCode": "UQcEYh2fVuKqS6cTuR3X_MonthlySub",
            "productName": "UQcEYh2fVuKqS6cTuR3X_MonthlySub_name",
            "price": 0.99,
            "total": 0.99,
            "tax": 0.0,
            "currency": "usd",
            "originalTransactionId": "447a43489c354b129dbe64e5ed79cd9e",
            "originalPurchaseDate": "2022-03-03T02:51:33Z",
            "eventDate": "2024-02-03T11:27:16Z",
            "expirationDate": "2024-03-03T02:51:33Z",
            "comments": "Recurring subscription processed",
            "responseKey": "abcb0b53015211edb4490a58a9feac0c",
            "purchaseChannel": "DEVICE",
            "purchaseContext": "IAP",
            "isFreeTrial": false
        }));
        assert_eq!(renewal.id, "key");
        assert_eq!(renewal.kind, "Sale");
        assert_eq!(
            renewal.subscription_ref(),
            "447a43489c354b129dbe64e5ed79cd9e"
        );
        assert_eq!(
            renewal.transaction_to_validate(),
            "037w1nn4nyzum28gkyj0poqqv7n4cb5q"
        );
        assert_eq!(renewal.channel_id.as_deref(), Some("1143791"));
        assert_eq!(renewal.happened_at, Some(at("2024-02-03T11:27:16Z")));
        assert_eq!(renewal.expires_at, Some(at("2024-03-03T02:51:33Z")));
        assert_eq!(renewal.refund, None);

        let refund = push(json!({
            "customerId": "cb570816d25c547ca881cfae77dc4068",
            "transactionType": "Refund",
            "transactionId": "a062b93cdecf5a35bff9b2425ccaff7c",
            "channelId": "1143791",
            "productCode": "UQcEYh2fVuKqS6cTuR3X_MonthlySub",
            "price": -0.99,
            "total": -1.06,
            "tax": -0.07,
            "currency": "usd",
            "partnerReferenceId": "1657569338",
            "originalTransactionId": "675cc6c9015311edb4490a58a9feac0c",
            "originalPurchaseDate": "2022-07-11T19:55:32Z",
            "eventDate": "2022-07-11T19:55:34Z",
            "comments": "Refund for UQcEYh2fVuKqS6cTuR3X_MonthlySub_name",
            "responseKey": "a062b93cdecf5a35bff9b2425ccaff7c",
            "isFreeTrial": false
        }));
        assert_eq!(
            refund.refund,
            Some(RokuRefund {
                refund_id: "a062b93cdecf5a35bff9b2425ccaff7c".into(),
                amount: Some((99, "USD".into())),
                at: at("2022-07-11T19:55:34Z"),
            })
        );
        assert_eq!(
            refund.transaction_to_validate(),
            "675cc6c9015311edb4490a58a9feac0c"
        );

        let cancellation = push(json!({
            "customerId": "493d0c919a9d547086baaccd2a80daf0",
            "transactionType": "Cancellation",
            "transactionId": "f4abd057015211edb4490a58a9feac0c",
            "channelId": 1143791,
            "originalTransactionId": "e875704d015211edb4490a58a9feac0c",
            "eventDate": "2022-07-11T19:52:12Z",
            "expirationDate": "2022-08-11T19:51:57Z",
            "responseKey": "f4abd057015211edb4490a58a9feac0c"
        }));
        assert_eq!(cancellation.channel_id.as_deref(), Some("1143791"));
        assert_eq!(
            cancellation.transaction_to_validate(),
            "e875704d015211edb4490a58a9feac0c"
        );
    }

    #[test]
    fn base64_is_read_in_every_alphabet() {
        let bytes = b"{\"a\":\"\xff\xfe?>\"}";
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            assert_eq!(
                decode_base64(&engine.encode(bytes)).as_deref(),
                Some(&bytes[..])
            );
        }
        assert_eq!(decode_base64("not base64!"), None);
    }
}
