//! Apple's JSON: the App Store Server API's answers and decoded JWS payloads, Server
//! Notifications V2, and the legacy `verifyReceipt` exchange. Times are milliseconds since
//! the epoch, as Apple sends them; unknown fields are ignored, as Apple adds fields.

use serde::{Deserialize, Serialize};

/// `JWSTransactionDecodedPayload`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionPayload {
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub bundle_id: String,
    pub product_id: String,
    pub purchase_date: i64,
    pub expires_date: Option<i64>,
    pub environment: String,
    /// The price in milliunits of `currency` (`7990` for 7.99).
    pub price: Option<i64>,
    pub currency: Option<String>,
    pub revocation_date: Option<i64>,
}

/// `JWSRenewalInfoDecodedPayload`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfoPayload {
    pub original_transaction_id: String,
    /// 1 renews at expiry, 0 does not.
    pub auto_renew_status: Option<i64>,
    pub grace_period_expires_date: Option<i64>,
}

/// `StatusResponse` of Get All Subscription Statuses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    #[serde(default)]
    pub data: Vec<SubscriptionGroupStatus>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupStatus {
    #[serde(default)]
    pub last_transactions: Vec<LastTransaction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastTransaction {
    pub original_transaction_id: String,
    /// 1 active, 2 expired, 3 billing retry, 4 grace period, 5 revoked.
    pub status: i64,
    pub signed_transaction_info: String,
    pub signed_renewal_info: Option<String>,
}

/// `TransactionInfoResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInfoResponse {
    pub signed_transaction_info: String,
}

/// The App Store Server API's error body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
}

/// `ResponseBodyV2`: what Server Notifications V2 POSTs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationBody {
    pub signed_payload: String,
}

/// `ResponseBodyV2DecodedPayload`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPayload {
    pub notification_type: String,
    pub subtype: Option<String>,
    #[serde(rename = "notificationUUID")]
    pub notification_uuid: String,
    pub data: Option<NotificationData>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    pub app_apple_id: Option<i64>,
    pub bundle_id: Option<String>,
    pub environment: Option<String>,
    pub signed_transaction_info: Option<String>,
    pub signed_renewal_info: Option<String>,
    /// As in [`LastTransaction::status`].
    pub status: Option<i64>,
}

/// The legacy `verifyReceipt` request.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReceiptRequest<'a> {
    #[serde(rename = "receipt-data")]
    pub receipt_data: &'a str,
    pub password: &'a str,
    #[serde(rename = "exclude-old-transactions")]
    pub exclude_old_transactions: bool,
}

/// The legacy `verifyReceipt` answer; always HTTP 200, `status` says how it went.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifyReceiptResponse {
    pub status: i64,
    pub environment: Option<String>,
    pub receipt: Option<ReceiptBody>,
    #[serde(default)]
    pub latest_receipt_info: Vec<ReceiptTransaction>,
    #[serde(default)]
    pub pending_renewal_info: Vec<PendingRenewal>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReceiptBody {
    pub bundle_id: Option<String>,
    #[serde(default)]
    pub in_app: Vec<ReceiptTransaction>,
}

/// One purchase in a receipt; Apple sends every number as a string.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceiptTransaction {
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub product_id: String,
    pub purchase_date_ms: String,
    pub expires_date_ms: Option<String>,
    pub cancellation_date_ms: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PendingRenewal {
    pub original_transaction_id: Option<String>,
    pub auto_renew_status: Option<String>,
    pub is_in_billing_retry_period: Option<String>,
    pub grace_period_expires_date_ms: Option<String>,
}

/// What each `verifyReceipt` status means, in Apple's words.
pub fn receipt_status_message(status: i64) -> &'static str {
    match status {
        21000 => "The request to the App Store was not made using the HTTP POST request method.",
        21002 => {
            "The data in the receipt-data property was malformed or the service experienced a temporary issue."
        }
        21003 => "The receipt could not be authenticated.",
        21004 => {
            "The shared secret you provided does not match the shared secret on file for your account."
        }
        21005 => "The receipt server is not currently available.",
        21006 => "This receipt is valid but the subscription has expired.",
        21007 => {
            "This receipt is from the test environment, but it was sent to the production environment for verification."
        }
        21008 => {
            "This receipt is from the production environment, but it was sent to the test environment for verification."
        }
        21009 => "Internal data access error.",
        21010 => "The user account cannot be found or has been deleted.",
        _ => "The App Store could not verify the receipt.",
    }
}
