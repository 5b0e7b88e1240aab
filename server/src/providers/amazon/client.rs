//! The Amazon Appstore's server side, as the core asks it about purchases: the Receipt
//! Verification Service (`verifyReceiptId`, production and the RVS Cloud Sandbox, the
//! developer's shared secret in the path) and the Real-time Notifications Amazon publishes
//! through SNS, whose signatures are checked before anything in them is believed.
//!
//! How RVS's answer reads as a [`StoreSubscription`]:
//! - a subscription keeps one `receiptId` across its renewals, so the receipt id is the
//!   subscription's `subscription_ref`, and each paid term is told apart by the end of the
//!   term, `renewalDate` (or, when Amazon leaves it out, `cancelDate`): the payment of a term
//!   is `{receiptId}:{renewalDate in epoch milliseconds}` — the same id however often the
//!   term is read, a new one when the subscription renews. RVS reports no price, and no start
//!   of the current term: `period_start` is the initial purchase (`purchaseDate`), the
//!   payment's date the renewal date less one `term`;
//! - `product_id` is the term SKU bought (`termSku`), which tells a monthly plan from an
//!   annual one; the parent SKU (`productId`) when RVS gives no term SKU;
//! - the environment is the sandbox for a receipt found in the RVS Cloud Sandbox, or one
//!   marked `testTransaction` or `betaProduct` (Live App Testing), production otherwise;
//! - the state: a `cancelDate` still ahead is auto-renewal turned off (active, not renewing,
//!   until then); a `cancelDate` passed ends it — refunded at `cancelDate` when Amazon (or
//!   the customer, `cancelReason` 1 or 2) cancelled it before the term paid for ended, expired
//!   otherwise (auto-renewal off, a failed renewal not recovered, a replaced subscription); a
//!   `gracePeriodEndDate` ahead is a grace period; a `renewalDate` passed on a subscription
//!   still auto-renewing is billing retry; a receipt RVS answers 410 for ("no longer valid")
//!   is refused with code 410, for the core to end the subscription.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Months, TimeDelta, Utc};

use super::sns::{CertificateCache, SnsError, url_allowed};
use super::wire::{RtnMessage, RvsError, RvsReceipt, SnsMessage};
use crate::providers::store::{
    StoreEnvironment, StorePayment, StoreRefusal, StoreState, StoreSubscription,
};

/// Amazon's RVS production server.
pub const AMAZON_RVS_PRODUCTION: &str = "https://appstore-sdk.amazon.com";
/// Amazon's RVS Cloud Sandbox.
pub const AMAZON_RVS_SANDBOX: &str = "https://appstore-sdk.amazon.com/sandbox";
/// Where SNS's signing certificates and subscription URLs are: any region's SNS host.
pub const AWS_SNS_URL_PREFIX: &str = "https://sns.*.amazonaws.com/";
/// How old a notification may be when it arrives (SNS's retries end within minutes).
pub const DEFAULT_NOTIFICATION_MAX_AGE: TimeDelta = TimeDelta::hours(1);
/// How far ahead of `now` a notification's `Timestamp` may be (clock skew).
const FUTURE_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Clone)]
pub struct AmazonSettings {
    /// RVS production: [`AMAZON_RVS_PRODUCTION`], or a simulator's base URL.
    pub rvs_base_production: String,
    /// The RVS Cloud Sandbox: [`AMAZON_RVS_SANDBOX`], or a simulator's `{base}/sandbox`.
    pub rvs_base_sandbox: String,
    /// The developer's shared secret (the Developer Console's Shared Key page). It travels in
    /// RVS's path; this client never writes it into an error or a log.
    pub shared_secret: String,
    /// Whose purchases count, asked in this order: `Production` (real buyers) and/or
    /// `Sandbox` (App Tester receipts, Live App Testing, Amazon's testers). A receipt one
    /// environment does not know (400) is looked for in the next.
    pub environments: Vec<StoreEnvironment>,
    /// The app's package name: notifications for another app are refused.
    pub app_package_name: String,
    /// The SNS topics notifications may come from (Amazon names the topic when the endpoint
    /// is registered; the simulator's is in its configuration).
    pub sns_topic_arns: Vec<String>,
    /// What a `SigningCertURL` and a `SubscribeURL` must start with: [`AWS_SNS_URL_PREFIX`]
    /// for Amazon, `{simulator base}/sns/` for the simulator. A `*` stands for one DNS label.
    pub sns_url_prefixes: Vec<String>,
    /// How old a notification's `Timestamp` may be: [`DEFAULT_NOTIFICATION_MAX_AGE`].
    pub notification_max_age: TimeDelta,
}

/// A notification received from SNS, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonNotification {
    /// SNS's `MessageId`: a redelivery carries the same one.
    pub id: String,
    /// What it is, for logs: the Real-time Notification's `notificationType`
    /// (`SUBSCRIPTION_RENEWED`, …), or SNS's `Type` for the confirmations.
    pub kind: String,
    /// When SNS sent it (`Timestamp`).
    pub sent_at: DateTime<Utc>,
    pub content: AmazonNotificationContent,
}

/// What a verified SNS message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmazonNotificationContent {
    /// A Real-time Notification about a receipt: read it again with
    /// [`AmazonClient::subscription`] (Amazon recommends it; the notification says only that
    /// something changed).
    Receipt(AmazonReceiptEvent),
    /// The topic wants to deliver to this endpoint: confirm with
    /// [`AmazonClient::confirm_subscription`], or nothing will be delivered.
    SubscriptionConfirmation(SnsConfirmation),
    /// This endpoint was unsubscribed; confirming the token restores it.
    UnsubscribeConfirmation(SnsConfirmation),
}

/// The receipt a Real-time Notification is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonReceiptEvent {
    pub receipt_id: String,
    /// `appUserId`: the user id RVS wants with the receipt.
    pub user_id: String,
    pub notification_type: String,
    /// When it happened (`timestamp`), when Amazon says.
    pub happened_at: Option<DateTime<Utc>>,
    /// A Live App Testing purchase.
    pub beta_product_transaction: bool,
    /// The receipt an immediate plan change cancelled (`relatedReceipts.cancelledReceiptId`).
    pub cancelled_receipt_id: Option<String>,
}

/// A subscription (or unsubscription) confirmation's URL and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsConfirmation {
    /// Checked to be SNS's (one of [`AmazonSettings::sns_url_prefixes`]).
    pub subscribe_url: String,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AmazonNotificationError {
    /// Not an SNS message (answer 400).
    #[error("not an Amazon SNS message: {0}")]
    Malformed(String),
    /// Forged, tampered with, or with a certificate that is not SNS's (answer 400/403).
    #[error("{0}")]
    Unverified(String),
    /// From a topic or for an app this server does not serve (answer 400/403).
    #[error("{0}")]
    Foreign(String),
    /// Sent too long ago (or in the future): a replay (answer 400).
    #[error("{0}")]
    Stale(String),
    /// SNS's certificate could not be fetched: answer 5xx so that SNS retries.
    #[error("{0}")]
    Unavailable(String),
}

impl From<SnsError> for AmazonNotificationError {
    fn from(error: SnsError) -> Self {
        match error {
            SnsError::Unverified(detail) => Self::Unverified(detail),
            SnsError::Unavailable(detail) => Self::Unavailable(detail),
        }
    }
}

#[derive(Clone)]
pub struct AmazonClient {
    settings: Arc<AmazonSettings>,
    http: reqwest::Client,
    certificates: Arc<CertificateCache>,
}

fn unavailable(detail: impl std::fmt::Display) -> StoreRefusal {
    StoreRefusal::Unavailable(detail.to_string())
}

fn millis(value: i64) -> Result<DateTime<Utc>, StoreRefusal> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| unavailable(format!("RVS answered an unreadable time {value}")))
}

/// `term` (`1 Week`, `2 Weeks`, `1 Month`, `3 Months`, `1 Year`) before `end`.
fn term_before(term: Option<&str>, end: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (count, unit) = term?.trim().split_once(' ')?;
    let count: u32 = count.parse().ok()?;
    match unit.trim_end_matches('s') {
        "Day" => end.checked_sub_signed(TimeDelta::days(i64::from(count))),
        "Week" => end.checked_sub_signed(TimeDelta::weeks(i64::from(count))),
        "Month" => end.checked_sub_months(Months::new(count)),
        "Year" => end.checked_sub_months(Months::new(count.checked_mul(12)?)),
        _ => None,
    }
}

impl AmazonClient {
    pub fn new(settings: AmazonSettings) -> Result<Self, String> {
        if settings.environments.is_empty() {
            return Err("no Amazon Appstore environment is configured".into());
        }
        if settings.shared_secret.trim().is_empty() {
            return Err("the Amazon shared secret is empty".into());
        }
        for base in [&settings.rvs_base_production, &settings.rvs_base_sandbox] {
            let usable = url::Url::parse(base).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base()
            });
            if !usable {
                return Err(format!("{base:?} is not an RVS base URL"));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Ok(Self {
            settings: Arc::new(settings),
            http,
            certificates: Arc::new(CertificateCache::new()),
        })
    }

    pub fn settings(&self) -> &AmazonSettings {
        &self.settings
    }

    fn rvs_base(&self, environment: StoreEnvironment) -> &str {
        match environment {
            StoreEnvironment::Production => &self.settings.rvs_base_production,
            StoreEnvironment::Sandbox => &self.settings.rvs_base_sandbox,
        }
    }

    /// `verifyReceiptId`'s URL in an environment, each segment percent-encoded as a path
    /// segment; and the same with the shared secret masked, for messages.
    fn rvs_url(
        &self,
        environment: StoreEnvironment,
        user_id: &str,
        receipt_id: &str,
    ) -> Result<(url::Url, String), StoreRefusal> {
        let base = self.rvs_base(environment);
        let build = |secret: &str| {
            let mut url =
                url::Url::parse(base).map_err(|error| unavailable(format!("{base}: {error}")))?;
            url.path_segments_mut()
                .map_err(|()| unavailable(format!("{base} cannot be a base URL")))?
                .pop_if_empty()
                .extend([
                    "version",
                    "1.0",
                    "verifyReceiptId",
                    "developer",
                    secret,
                    "user",
                    user_id,
                    "receiptId",
                    receipt_id,
                ]);
            Ok::<_, StoreRefusal>(url)
        };
        Ok((
            build(&self.settings.shared_secret)?,
            build("***")?.to_string(),
        ))
    }

    /// The subscription a receipt stands for, as RVS reports it now, asked of each configured
    /// environment in turn until one knows the receipt.
    ///
    /// Refusals are Amazon's: `400` (no environment knows the receipt), `497` (the receipt is
    /// not this user's), `410` (no longer valid: revoked), or a receipt that is not a
    /// subscription or is of an environment not served (`code: None`). A shared secret RVS
    /// refuses (496), throttling (429) and RVS's failures are [`StoreRefusal::Unavailable`].
    pub async fn subscription(
        &self,
        user_id: &str,
        receipt_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        let (user_id, receipt_id) = (user_id.trim(), receipt_id.trim());
        if user_id.is_empty() {
            return Err(StoreRefusal::refused(497, "Invalid User ID"));
        }
        if receipt_id.is_empty() {
            return Err(StoreRefusal::refused(400, "Invalid receiptId"));
        }
        for &environment in &self.settings.environments {
            let (url, shown) = self.rvs_url(environment, user_id, receipt_id)?;
            let response = self
                .http
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|error| {
                    unavailable(format!("could not reach {shown}: {}", error.without_url()))
                })?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|error| {
                unavailable(format!("could not read {shown}: {}", error.without_url()))
            })?;
            let message = || {
                serde_json::from_str::<RvsError>(&body)
                    .ok()
                    .and_then(|error| error.message)
                    .unwrap_or_else(|| format!("RVS answered {status}"))
            };
            match status {
                200 => {
                    let receipt: RvsReceipt = serde_json::from_str(&body).map_err(|error| {
                        unavailable(format!("{shown} answered unreadably: {error}"))
                    })?;
                    return self.subscription_from(receipt, environment, now);
                }
                400 => continue,
                410 | 497 => return Err(StoreRefusal::refused(i64::from(status), message())),
                496 => {
                    return Err(unavailable(format!(
                        "RVS refused the shared secret (496) at {shown}"
                    )));
                }
                _ => {
                    return Err(unavailable(format!(
                        "{shown} answered {status}: {}",
                        message()
                    )));
                }
            }
        }
        Err(StoreRefusal::refused(
            400,
            "The transaction represented by this receiptId is invalid, or no transaction was found for this receiptId.",
        ))
    }

    fn subscription_from(
        &self,
        receipt: RvsReceipt,
        found_in: StoreEnvironment,
        now: DateTime<Utc>,
    ) -> Result<StoreSubscription, StoreRefusal> {
        if receipt.product_type != "SUBSCRIPTION" {
            return Err(StoreRefusal::refused(
                None,
                "The receipt is not a subscription.",
            ));
        }
        let environment = if found_in == StoreEnvironment::Sandbox
            || receipt.test_transaction == Some(true)
            || receipt.beta_product == Some(true)
        {
            StoreEnvironment::Sandbox
        } else {
            StoreEnvironment::Production
        };
        if !self.settings.environments.contains(&environment) {
            return Err(StoreRefusal::refused(
                None,
                match environment {
                    StoreEnvironment::Sandbox => {
                        "A test purchase (App Tester or Live App Testing) is not accepted by this server."
                    }
                    StoreEnvironment::Production => {
                        "A real purchase is not accepted by this test server."
                    }
                },
            ));
        }
        let paid_until = receipt
            .renewal_date
            .or(receipt.cancel_date)
            .ok_or_else(|| unavailable("RVS reported neither renewalDate nor cancelDate"))?;
        let expires_at = millis(paid_until)?;
        let purchased = match receipt.purchase_date {
            Some(value) => millis(value)?,
            None => expires_at,
        };
        let cancelled = receipt.cancel_date.map(millis).transpose()?;
        let grace_until = receipt.grace_period_end_date.map(millis).transpose()?;
        let auto_renewing = receipt.auto_renewing.unwrap_or(false);
        let state = match cancelled {
            Some(at) if at <= now => {
                if matches!(receipt.cancel_reason, Some(1 | 2)) && at < expires_at {
                    StoreState::Refunded { at }
                } else {
                    StoreState::Expired
                }
            }
            Some(_) => StoreState::Active,
            None => match grace_until {
                Some(until) if until > now => StoreState::GracePeriod { until },
                _ if expires_at > now => StoreState::Active,
                _ if auto_renewing => StoreState::BillingRetry,
                _ => StoreState::Expired,
            },
        };
        let term_started = if receipt.free_trial_end_date.is_some() {
            purchased
        } else {
            term_before(receipt.term.as_deref(), expires_at)
                .map_or(purchased, |start| start.max(purchased))
        };
        Ok(StoreSubscription {
            environment,
            subscription_ref: receipt.receipt_id.clone(),
            product_id: receipt.term_sku.clone().unwrap_or(receipt.product_id),
            latest_payment: StorePayment {
                transaction_id: format!("{}:{paid_until}", receipt.receipt_id),
                purchased_at: term_started,
                price: None,
            },
            period_start: purchased,
            expires_at,
            auto_renew: auto_renewing && cancelled.is_none(),
            state,
        })
    }

    /// An SNS message POSTed to the notification endpoint, verified and read: the
    /// `x-amz-sns-message-type` header (`declared_type`, when sent) must match the body, the topic must be one
    /// of [`AmazonSettings::sns_topic_arns`], the `SigningCertURL` (and a `SubscribeURL`) one
    /// of SNS's, the signature SNS's, the `Timestamp` no older than
    /// [`AmazonSettings::notification_max_age`], and a notification must be for the app.
    pub async fn read_notification(
        &self,
        declared_type: Option<&[u8]>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<AmazonNotification, AmazonNotificationError> {
        let message: SnsMessage = serde_json::from_slice(body)
            .map_err(|error| AmazonNotificationError::Malformed(error.to_string()))?;
        if let Some(declared) = declared_type
            && declared != message.message_type.as_bytes()
        {
            return Err(AmazonNotificationError::Malformed(
                "x-amz-sns-message-type does not match the message's Type".into(),
            ));
        }
        if !self.settings.sns_topic_arns.contains(&message.topic_arn) {
            return Err(AmazonNotificationError::Foreign(format!(
                "the message comes from the topic {}, which this server does not subscribe to",
                message.topic_arn
            )));
        }
        if !url_allowed(&message.signing_cert_url, &self.settings.sns_url_prefixes) {
            return Err(AmazonNotificationError::Unverified(
                "the SigningCertURL is not Amazon SNS's".into(),
            ));
        }
        let sent_at = DateTime::parse_from_rfc3339(&message.timestamp)
            .map_err(|_| AmazonNotificationError::Malformed("unreadable Timestamp".into()))?
            .with_timezone(&Utc);
        if now - sent_at > self.settings.notification_max_age {
            return Err(AmazonNotificationError::Stale(format!(
                "the message was sent at {}, too long ago",
                message.timestamp
            )));
        }
        if sent_at - now > FUTURE_TOLERANCE {
            return Err(AmazonNotificationError::Stale(format!(
                "the message claims to be sent at {}, in the future",
                message.timestamp
            )));
        }
        self.certificates.verify(&message, sent_at).await?;
        let content = match message.message_type.as_str() {
            "Notification" => {
                let rtn: RtnMessage = serde_json::from_str(&message.message).map_err(|error| {
                    AmazonNotificationError::Malformed(format!(
                        "the Message is not a Real-time Notification: {error}"
                    ))
                })?;
                if rtn.app_package_name != self.settings.app_package_name {
                    return Err(AmazonNotificationError::Foreign(
                        "the notification is for another app".into(),
                    ));
                }
                AmazonNotificationContent::Receipt(AmazonReceiptEvent {
                    receipt_id: rtn.receipt_id,
                    user_id: rtn.app_user_id,
                    notification_type: rtn.notification_type,
                    happened_at: rtn.timestamp.and_then(DateTime::from_timestamp_millis),
                    beta_product_transaction: rtn.beta_product_transaction.unwrap_or(false),
                    cancelled_receipt_id: rtn
                        .related_receipts
                        .and_then(|related| related.cancelled_receipt_id),
                })
            }
            kind => {
                let confirmation = SnsConfirmation {
                    subscribe_url: message.subscribe_url.clone().unwrap_or_default(),
                    token: message.token.clone().unwrap_or_default(),
                };
                if !url_allowed(&confirmation.subscribe_url, &self.settings.sns_url_prefixes) {
                    return Err(AmazonNotificationError::Unverified(
                        "the SubscribeURL is not Amazon SNS's".into(),
                    ));
                }
                if kind == "SubscriptionConfirmation" {
                    AmazonNotificationContent::SubscriptionConfirmation(confirmation)
                } else {
                    AmazonNotificationContent::UnsubscribeConfirmation(confirmation)
                }
            }
        };
        let kind = match &content {
            AmazonNotificationContent::Receipt(event) => event.notification_type.clone(),
            _ => message.message_type.clone(),
        };
        Ok(AmazonNotification {
            id: message.message_id,
            kind,
            sent_at,
            content,
        })
    }

    /// Confirms an SNS subscription: a GET of its `SubscribeURL` (checked again to be SNS's),
    /// as SNS asks. The subscription's ARN, from SNS's answer.
    pub async fn confirm_subscription(
        &self,
        confirmation: &SnsConfirmation,
    ) -> Result<String, AmazonNotificationError> {
        let url = &confirmation.subscribe_url;
        if !url_allowed(url, &self.settings.sns_url_prefixes) {
            return Err(AmazonNotificationError::Unverified(
                "the SubscribeURL is not Amazon SNS's".into(),
            ));
        }
        let unavailable = |detail: String| AmazonNotificationError::Unavailable(detail);
        let response =
            self.http.get(url).send().await.map_err(|error| {
                unavailable(format!("could not confirm the subscription: {error}"))
            })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| unavailable(format!("could not read SNS's answer: {error}")))?;
        if !status.is_success() {
            return Err(unavailable(format!(
                "SNS refused the confirmation ({status}): {body}"
            )));
        }
        body.split_once("<SubscriptionArn>")
            .and_then(|(_, rest)| rest.split_once("</SubscriptionArn>"))
            .map(|(arn, _)| arn.trim().to_owned())
            .ok_or_else(|| unavailable("SNS's answer names no subscription".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn terms_are_read_as_amazon_writes_them() {
        let end = at("2030-03-31T00:00:00Z");
        assert_eq!(
            term_before(Some("1 Month"), end),
            Some(at("2030-02-28T00:00:00Z"))
        );
        assert_eq!(
            term_before(Some("2 Weeks"), end),
            Some(at("2030-03-17T00:00:00Z"))
        );
        assert_eq!(
            term_before(Some("1 Year"), end),
            Some(at("2029-03-31T00:00:00Z"))
        );
        assert_eq!(term_before(Some("forever"), end), None);
        assert_eq!(term_before(None, end), None);
    }
}
