//! Google's JSON: the OAuth token answer, `androidpublisher` v3's `SubscriptionPurchaseV2`
//! and error body, and the Pub/Sub push that carries Real-time developer notifications.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct AssertionClaims<'a> {
    pub iss: &'a str,
    pub scope: &'static str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    pub code: Option<i64>,
    pub message: Option<String>,
}

/// `purchases.subscriptionsv2.get`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPurchaseV2 {
    pub subscription_state: String,
    /// RFC 3339.
    pub start_time: Option<String>,
    pub latest_order_id: Option<String>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    /// Present (an empty object) for a license tester's purchase.
    pub test_purchase: Option<serde_json::Value>,
    /// `ACKNOWLEDGEMENT_STATE_PENDING` until the developer acknowledges the purchase.
    pub acknowledgement_state: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub product_id: String,
    /// RFC 3339.
    pub expiry_time: Option<String>,
    pub auto_renewing_plan: Option<AutoRenewingPlan>,
    pub latest_successful_order_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoRenewingPlan {
    pub auto_renew_enabled: Option<bool>,
    pub recurring_price: Option<GoogleMoney>,
}

/// `google.type.Money`: whole `units` (a string) and `nanos`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleMoney {
    pub currency_code: String,
    pub units: Option<String>,
    pub nanos: Option<i64>,
}

/// A Pub/Sub push: the message whose `data` is the base64 of a [`DeveloperNotification`].
#[derive(Debug, Clone, Deserialize)]
pub struct PushEnvelope {
    pub message: PushMessage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    pub data: String,
    pub message_id: Option<String>,
    #[serde(rename = "message_id")]
    pub message_id_snake: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperNotification {
    pub package_name: String,
    /// Milliseconds since the epoch, as a string.
    pub event_time_millis: String,
    pub subscription_notification: Option<SubscriptionNotification>,
    pub voided_purchase_notification: Option<VoidedPurchaseNotification>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionNotification {
    pub notification_type: i64,
    pub purchase_token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoidedPurchaseNotification {
    pub purchase_token: String,
    /// 1 a subscription, 2 a one-time product.
    pub product_type: Option<i64>,
}

/// The claims of the OIDC token Pub/Sub signs a push with.
#[derive(Debug, Clone, Deserialize)]
pub struct PushTokenClaims {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}
