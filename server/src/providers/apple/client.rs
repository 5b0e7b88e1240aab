//! The App Store's server side, as the core asks it about purchases: the App Store Server
//! API (a transaction's subscription and its status, bearer JWT signed with the team's
//! in-app purchase key), the legacy `verifyReceipt` (app receipts, with the app's shared
//! secret), and the Server Notifications V2 it pushes. Everything Apple signs is checked
//! against the configured root certificates before it is believed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::jws::{self, JwsError};
use super::wire::{
    ErrorPayload, NotificationBody, NotificationPayload, RenewalInfoPayload, StatusResponse,
    TransactionInfoResponse, TransactionPayload, VerifyReceiptRequest, VerifyReceiptResponse,
    receipt_status_message,
};
use crate::core::model::Currency;
use crate::providers::store::{
    StoreEnvironment, StorePayment, StoreRefusal, StoreState, StoreSubscription,
};

/// Apple's code for a transaction id it does not know in the environment asked.
const TRANSACTION_NOT_FOUND: i64 = 4_040_010;
/// `verifyReceipt`: a sandbox receipt sent to production, and the reverse.
const SANDBOX_RECEIPT_IN_PRODUCTION: i64 = 21_007;
const PRODUCTION_RECEIPT_IN_SANDBOX: i64 = 21_008;

#[derive(Debug, Clone)]
pub struct AppleSettings {
    /// The app's bundle id: signed data for another app is refused.
    pub bundle_id: String,
    /// The app's Apple id, which production notifications carry.
    pub app_apple_id: Option<i64>,
    /// The environments whose purchases count, asked in this order. Production alone in
    /// production; Sandbox for test devices.
    pub environments: Vec<StoreEnvironment>,
    /// `https://api.storekit.itunes.apple.com`, or a simulator's.
    pub api_base_production: String,
    /// `https://api.storekit-sandbox.itunes.apple.com`, or a simulator's.
    pub api_base_sandbox: String,
    /// `https://buy.itunes.apple.com/verifyReceipt`, or a simulator's.
    pub verify_receipt_production: String,
    /// `https://sandbox.itunes.apple.com/verifyReceipt`, or a simulator's.
    pub verify_receipt_sandbox: String,
    /// The App Store Connect issuer id, key id and private key (PKCS#8 PEM) of the in-app
    /// purchase key the App Store Server API is called with.
    pub issuer_id: String,
    pub key_id: String,
    pub private_key_pem: String,
    /// The app-specific shared secret `verifyReceipt` wants.
    pub shared_secret: Option<String>,
    /// DER of the root certificates Apple's signed data must chain to.
    pub root_certificates: Vec<Vec<u8>>,
}

/// A Server Notification V2, verified.
#[derive(Debug, Clone)]
pub struct AppleNotification {
    /// `notificationUUID`: the same notification sent again carries the same one.
    pub id: String,
    /// `notificationType`, with `/subtype` when there is one.
    pub kind: String,
    /// The subscription as the notification leaves it; `None` for notifications about no
    /// subscription (`TEST`, consumption requests).
    pub subscription: Option<StoreSubscription>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppleNotificationError {
    #[error("not a Server Notifications V2 body: {0}")]
    Malformed(String),
    #[error(transparent)]
    Signature(#[from] JwsError),
    #[error("{0}")]
    Foreign(String),
}

#[derive(Clone)]
pub struct AppleClient {
    settings: Arc<AppleSettings>,
    signing_key: Arc<EncodingKey>,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct ApiClaims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'static str,
    bid: &'a str,
}

fn unavailable(detail: impl std::fmt::Display) -> StoreRefusal {
    StoreRefusal::Unavailable(detail.to_string())
}

impl AppleClient {
    pub fn new(settings: AppleSettings) -> Result<Self, String> {
        let signing_key = EncodingKey::from_ec_pem(settings.private_key_pem.as_bytes())
            .map_err(|error| format!("the App Store Server API key is not an EC PEM: {error}"))?;
        if settings.root_certificates.is_empty() {
            return Err("no Apple root certificate is configured".into());
        }
        if settings.environments.is_empty() {
            return Err("no App Store environment is configured".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Ok(Self {
            settings: Arc::new(settings),
            signing_key: Arc::new(signing_key),
            http,
        })
    }

    pub fn settings(&self) -> &AppleSettings {
        &self.settings
    }

    fn api_base(&self, environment: StoreEnvironment) -> &str {
        match environment {
            StoreEnvironment::Production => &self.settings.api_base_production,
            StoreEnvironment::Sandbox => &self.settings.api_base_sandbox,
        }
        .trim_end_matches('/')
    }

    fn bearer_token(&self, now: DateTime<Utc>) -> Result<String, StoreRefusal> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.settings.key_id.clone());
        header.typ = Some("JWT".into());
        let claims = ApiClaims {
            iss: &self.settings.issuer_id,
            iat: now.timestamp(),
            exp: (now + TimeDelta::minutes(5)).timestamp(),
            aud: "appstoreconnect-v1",
            bid: &self.settings.bundle_id,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key).map_err(unavailable)
    }

    /// `GET` on the App Store Server API; `Ok(None)` when Apple does not know the
    /// transaction in that environment.
    async fn api_get<T: DeserializeOwned>(
        &self,
        environment: StoreEnvironment,
        path: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<T>, StoreRefusal> {
        let url = format!("{}{path}", self.api_base(environment));
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.bearer_token(now)?)
            .send()
            .await
            .map_err(|error| unavailable(format!("could not reach {url}: {error}")))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|error| unavailable(format!("could not read {url}: {error}")))?;
        if status == 200 {
            return serde_json::from_str(&body)
                .map(Some)
                .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")));
        }
        let error = serde_json::from_str::<ErrorPayload>(&body).ok();
        let code = error.as_ref().and_then(|error| error.error_code);
        let message = error
            .and_then(|error| error.error_message)
            .unwrap_or_else(|| format!("{url} answered {status}"));
        match (status, code) {
            (404, _) => Ok(None),
            (400, _) => Err(StoreRefusal::refused(code, message)),
            _ => Err(unavailable(format!("{url} answered {status}: {message}"))),
        }
    }

    /// The subscription a transaction belongs to, as the App Store Server API reports it
    /// now: the transaction's original transaction, its latest renewal and its status.
    pub async fn subscription_of_transaction(
        &self,
        transaction_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let transaction_id = transaction_id.trim();
        if transaction_id.is_empty() || !transaction_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreRefusal::refused(
                4_000_006,
                "Invalid transaction id provided.",
            ));
        }
        for &environment in &self.settings.environments {
            let Some(info) = self
                .api_get::<TransactionInfoResponse>(
                    environment,
                    &format!("/inApps/v1/transactions/{transaction_id}"),
                    now,
                )
                .await?
            else {
                continue;
            };
            let transaction: TransactionPayload =
                self.decode(&info.signed_transaction_info, now)?;
            let Some(statuses) = self
                .api_get::<StatusResponse>(
                    environment,
                    &format!("/inApps/v1/subscriptions/{transaction_id}"),
                    now,
                )
                .await?
            else {
                continue;
            };
            let latest = statuses
                .data
                .iter()
                .flat_map(|group| &group.last_transactions)
                .find(|last| last.original_transaction_id == transaction.original_transaction_id)
                .ok_or_else(|| {
                    StoreRefusal::refused(
                        None,
                        "The transaction is not an auto-renewable subscription.",
                    )
                })?;
            let latest_transaction: TransactionPayload =
                self.decode(&latest.signed_transaction_info, now)?;
            let renewal = latest
                .signed_renewal_info
                .as_deref()
                .map(|signed| self.decode::<RenewalInfoPayload>(signed, now))
                .transpose()?;
            return self.subscription_from(latest_transaction, renewal, Some(latest.status));
        }
        Err(StoreRefusal::refused(
            TRANSACTION_NOT_FOUND,
            "Transaction id not found.",
        ))
    }

    /// The newest subscription in an app receipt (base64), through `verifyReceipt`.
    pub async fn subscription_in_receipt(
        &self,
        receipt: &str,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let Some(secret) = self.settings.shared_secret.as_deref() else {
            return Err(unavailable("no App Store shared secret is configured"));
        };
        let request = VerifyReceiptRequest {
            receipt_data: receipt.trim(),
            password: secret,
            exclude_old_transactions: true,
        };
        let mut refusal = None;
        for &environment in &self.settings.environments {
            let url = match environment {
                StoreEnvironment::Production => &self.settings.verify_receipt_production,
                StoreEnvironment::Sandbox => &self.settings.verify_receipt_sandbox,
            };
            let response: VerifyReceiptResponse = self
                .http
                .post(url)
                .json(&request)
                .send()
                .await
                .map_err(|error| unavailable(format!("could not reach {url}: {error}")))?
                .json()
                .await
                .map_err(|error| unavailable(format!("{url} answered unreadably: {error}")))?;
            match response.status {
                0 => return self.subscription_from_receipt(response, now),
                SANDBOX_RECEIPT_IN_PRODUCTION | PRODUCTION_RECEIPT_IN_SANDBOX => {
                    refusal = Some(response.status);
                }
                21_005 | 21_009 | 21_100..=21_199 => {
                    return Err(unavailable(receipt_status_message(response.status)));
                }
                status => {
                    return Err(StoreRefusal::refused(
                        status,
                        receipt_status_message(status),
                    ));
                }
            }
        }
        let status = refusal.unwrap_or(21_003);
        Err(StoreRefusal::refused(
            status,
            receipt_status_message(status),
        ))
    }

    fn subscription_from_receipt(
        &self,
        response: VerifyReceiptResponse,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let receipt = response.receipt.as_ref();
        if let Some(bundle) = receipt.and_then(|receipt| receipt.bundle_id.as_deref())
            && bundle != self.settings.bundle_id
        {
            return Err(StoreRefusal::refused(
                21_003,
                "The receipt belongs to another app.",
            ));
        }
        let millis = |text: &str| -> Result<DateTime<Utc>, StoreRefusal> {
            text.parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| unavailable(format!("unreadable time {text:?} in a receipt")))
        };
        let candidates = if response.latest_receipt_info.is_empty() {
            receipt
                .map(|receipt| receipt.in_app.clone())
                .unwrap_or_default()
        } else {
            response.latest_receipt_info.clone()
        };
        let latest = candidates
            .into_iter()
            .filter(|transaction| transaction.expires_date_ms.is_some())
            .max_by_key(|transaction| transaction.purchase_date_ms.parse::<i64>().unwrap_or(0))
            .ok_or_else(|| {
                StoreRefusal::refused(None, "The receipt holds no auto-renewable subscription.")
            })?;
        let renewal = response.pending_renewal_info.iter().find(|renewal| {
            renewal.original_transaction_id.as_deref()
                == Some(latest.original_transaction_id.as_str())
        });
        let purchased_at = millis(&latest.purchase_date_ms)?;
        let expires_at = millis(latest.expires_date_ms.as_deref().unwrap_or_default())?;
        let grace_until = renewal
            .and_then(|renewal| renewal.grace_period_expires_date_ms.as_deref())
            .map(millis)
            .transpose()?;
        let in_retry =
            renewal.and_then(|renewal| renewal.is_in_billing_retry_period.as_deref()) == Some("1");
        let state = match latest.cancellation_date_ms.as_deref() {
            Some(cancelled) => StoreState::Refunded {
                at: millis(cancelled)?,
            },
            None if expires_at > now => StoreState::Active,
            None => match grace_until {
                Some(until) if until > now => StoreState::GracePeriod { until },
                _ if in_retry => StoreState::BillingRetry,
                _ => StoreState::Expired,
            },
        };
        Ok(StoreSubscription {
            environment: environment_named(response.environment.as_deref()),
            subscription_ref: latest.original_transaction_id,
            product_id: latest.product_id,
            latest_payment: StorePayment {
                transaction_id: latest.transaction_id,
                purchased_at,
                price: None,
            },
            period_start: purchased_at,
            expires_at,
            auto_renew: renewal.and_then(|renewal| renewal.auto_renew_status.as_deref())
                == Some("1"),
            state,
        })
    }

    /// A Server Notification V2 body, verified and read.
    pub fn read_notification(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<AppleNotification, AppleNotificationError> {
        let body: NotificationBody = serde_json::from_slice(body)
            .map_err(|error| AppleNotificationError::Malformed(error.to_string()))?;
        let payload = jws::verify(&body.signed_payload, &self.settings.root_certificates, now)?;
        let payload: NotificationPayload = serde_json::from_slice(&payload)
            .map_err(|error| AppleNotificationError::Malformed(error.to_string()))?;
        let kind = match &payload.subtype {
            Some(subtype) => format!("{}/{subtype}", payload.notification_type),
            None => payload.notification_type.clone(),
        };
        let Some(data) = payload.data else {
            return Ok(AppleNotification {
                id: payload.notification_uuid,
                kind,
                subscription: None,
            });
        };
        if data.bundle_id.as_deref() != Some(self.settings.bundle_id.as_str()) {
            return Err(AppleNotificationError::Foreign(
                "the notification is for another app".into(),
            ));
        }
        let environment = environment_named(data.environment.as_deref());
        if !self.settings.environments.contains(&environment) {
            return Err(AppleNotificationError::Foreign(format!(
                "the notification is from the {} environment, which this server does not serve",
                environment.as_str()
            )));
        }
        if environment == StoreEnvironment::Production
            && let Some(expected) = self.settings.app_apple_id
            && data.app_apple_id != Some(expected)
        {
            return Err(AppleNotificationError::Foreign(
                "the notification is for another app id".into(),
            ));
        }
        let Some(signed_transaction) = data.signed_transaction_info.as_deref() else {
            return Ok(AppleNotification {
                id: payload.notification_uuid,
                kind,
                subscription: None,
            });
        };
        let transaction: TransactionPayload =
            decode_verified(signed_transaction, &self.settings, now)?;
        let renewal = data
            .signed_renewal_info
            .as_deref()
            .map(|signed| decode_verified::<RenewalInfoPayload>(signed, &self.settings, now))
            .transpose()?;
        let status = data.status.or_else(|| {
            Some(match payload.notification_type.as_str() {
                "EXPIRED" | "GRACE_PERIOD_EXPIRED" => 2,
                "DID_FAIL_TO_RENEW" if payload.subtype.as_deref() == Some("GRACE_PERIOD") => 4,
                "DID_FAIL_TO_RENEW" => 3,
                "REFUND" | "REVOKE" => 5,
                _ => 1,
            })
        });
        let subscription = self
            .subscription_from(transaction, renewal, status)
            .map_err(|refusal| AppleNotificationError::Foreign(refusal.to_string()))?;
        Ok(AppleNotification {
            id: payload.notification_uuid,
            kind,
            subscription: Some(subscription),
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        signed: &str,
        now: DateTime<Utc>,
    ) -> Result<T, StoreRefusal> {
        decode_verified(signed, &self.settings, now)
            .map_err(|error| unavailable(format!("the App Store's signed data: {error}")))
    }

    fn subscription_from(
        &self,
        transaction: TransactionPayload,
        renewal: Option<RenewalInfoPayload>,
        status: Option<i64>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        if transaction.bundle_id != self.settings.bundle_id {
            return Err(StoreRefusal::refused(
                None,
                "The transaction belongs to another app.",
            ));
        }
        let time = |millis: i64| {
            DateTime::from_timestamp_millis(millis)
                .ok_or_else(|| unavailable(format!("unreadable time {millis} from the App Store")))
        };
        let purchased_at = time(transaction.purchase_date)?;
        let Some(expires) = transaction.expires_date else {
            return Err(StoreRefusal::refused(
                None,
                "The transaction is not an auto-renewable subscription.",
            ));
        };
        let expires_at = time(expires)?;
        let renewal = renewal.filter(|renewal| {
            renewal.original_transaction_id == transaction.original_transaction_id
        });
        let state = match (transaction.revocation_date, status) {
            (Some(revoked), _) => StoreState::Refunded { at: time(revoked)? },
            (None, Some(5)) => StoreState::Refunded { at: purchased_at },
            (None, Some(2)) => StoreState::Expired,
            (None, Some(3)) => StoreState::BillingRetry,
            (None, Some(4)) => StoreState::GracePeriod {
                until: renewal
                    .as_ref()
                    .and_then(|renewal| renewal.grace_period_expires_date)
                    .map(time)
                    .transpose()?
                    .unwrap_or(expires_at),
            },
            (None, _) => StoreState::Active,
        };
        let price = match (transaction.price, transaction.currency.as_deref()) {
            (Some(milliunits), Some(code)) => Currency::parse(code).map(|currency| {
                let divisor = 10i64.pow(3u32.saturating_sub(currency.exponent));
                (milliunits / divisor, currency.code().to_owned())
            }),
            _ => None,
        };
        Ok(StoreSubscription {
            environment: environment_named(Some(&transaction.environment)),
            subscription_ref: transaction.original_transaction_id,
            product_id: transaction.product_id,
            latest_payment: StorePayment {
                transaction_id: transaction.transaction_id,
                purchased_at,
                price,
            },
            period_start: purchased_at,
            expires_at,
            auto_renew: renewal.and_then(|renewal| renewal.auto_renew_status) == Some(1),
            state,
        })
    }
}

fn decode_verified<T: DeserializeOwned>(
    signed: &str,
    settings: &AppleSettings,
    now: DateTime<Utc>,
) -> Result<T, JwsError> {
    let payload = jws::verify(signed, &settings.root_certificates, now)?;
    serde_json::from_slice(&payload).map_err(|error| JwsError::Malformed(error.to_string()))
}

/// Apple names its environments `Sandbox` and `Production`; anything else is treated as
/// the sandbox, which never counts in a production configuration.
fn environment_named(name: Option<&str>) -> StoreEnvironment {
    match name {
        Some("Production") => StoreEnvironment::Production,
        _ => StoreEnvironment::Sandbox,
    }
}
