//! Amazon's JSON: what the Receipt Verification Service answers (a receipt, or an error
//! body), the SNS message that carries a Real-time Notification, and the notification itself.
//! Every field Amazon may leave out or send as `null` is optional.

use serde::Deserialize;

/// `verifyReceiptId`'s answer for a valid receipt. Times are milliseconds since the epoch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RvsReceipt {
    pub receipt_id: String,
    /// The parent SKU of a subscription.
    pub product_id: String,
    /// `SUBSCRIPTION`, `ENTITLED` or `CONSUMABLE`.
    pub product_type: String,
    /// The initial purchase, not the latest renewal.
    pub purchase_date: Option<i64>,
    /// When the subscription next renews (the end of the term paid for).
    pub renewal_date: Option<i64>,
    /// When it stopped, or (auto-renewal off) will stop, being valid.
    pub cancel_date: Option<i64>,
    /// `0` unknown yet, `1` the customer, `2` Amazon's system, `4` replaced.
    pub cancel_reason: Option<i64>,
    pub auto_renewing: Option<bool>,
    pub free_trial_end_date: Option<i64>,
    pub grace_period_end_date: Option<i64>,
    /// e.g. `1 Month`.
    pub term: Option<String>,
    /// The term SKU bought.
    pub term_sku: Option<String>,
    /// Made in the RVS Cloud Sandbox (App Tester).
    #[serde(default)]
    pub test_transaction: Option<bool>,
    /// A Live App Testing purchase.
    #[serde(default)]
    pub beta_product: Option<bool>,
}

/// RVS's error body, when it has one.
#[derive(Debug, Clone, Deserialize)]
pub struct RvsError {
    pub message: Option<String>,
}

/// An SNS message as SNS POSTs it to an HTTP(S) subscriber.
#[derive(Debug, Clone, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub message_type: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "Token")]
    pub token: Option<String>,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    /// ISO 8601, e.g. `2020-09-21T15:19:35.686Z`.
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
}

impl SnsMessage {
    /// What SNS signs: `Name\nvalue\n` for each signed field, in byte order of the names.
    pub fn string_to_sign(&self) -> Option<String> {
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.message_type.as_str() {
            "Notification" => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref()?));
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("Token", self.token.as_deref()?));
            }
            _ => return None,
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", &self.message_type));
        Some(
            fields
                .into_iter()
                .map(|(name, value)| format!("{name}\n{value}\n"))
                .collect(),
        )
    }
}

/// A Real-time Notification: the JSON in an SNS notification's `Message`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtnMessage {
    pub app_package_name: String,
    pub notification_type: String,
    pub app_user_id: String,
    pub receipt_id: String,
    #[serde(default)]
    pub related_receipts: Option<RelatedReceipts>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub beta_product_transaction: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedReceipts {
    pub cancelled_receipt_id: Option<String>,
}
