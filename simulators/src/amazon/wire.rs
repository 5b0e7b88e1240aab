//! Amazon's JSON, as it goes over the wire: the Receipt Verification Service's receipt and
//! error bodies, the Real-time Notification (the `Message` an SNS notification carries), and
//! the SNS HTTP(S) envelope around it. No logic beyond rendering.

use poem_openapi::Object;
use serde::Serialize;

/// What `verifyReceiptId` answers for a valid receipt (200), field for field and in the
/// order of Amazon's examples (alphabetical). Times are milliseconds since the epoch. Every
/// field is always present; those that do not apply are `null`, as RVS sends them.
#[derive(Object, Serialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AmazonRvsReceipt", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RvsReceipt {
    /// Whether the subscription renews at `renewalDate`.
    pub auto_renewing: Option<bool>,
    /// A Live App Testing purchase.
    pub beta_product: bool,
    /// When the receipt stopped (or, auto-renewal being off, will stop) being valid: the
    /// subscription expired, was cancelled, or ends then because the customer turned
    /// auto-renewal off. `null` while it is valid and renewing.
    pub cancel_date: Option<i64>,
    /// Why it was cancelled: `0` not known yet, `1` the customer cancelled (or turned
    /// auto-renewal off), `2` Amazon's system cancelled it (a payment not recovered, or
    /// customer service at the customer's request), `4` replaced by another subscription.
    /// `null` while it is not cancelled.
    pub cancel_reason: Option<i64>,
    /// The customer's country of residence, ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
    /// A deferred tier or term change's date and SKU; never set here (no tiers).
    pub deferred_date: Option<i64>,
    pub deferred_sku: Option<String>,
    /// When the free trial ends, while the subscription is in it.
    pub free_trial_end_date: Option<i64>,
    /// What the app reported with `notifyFulfillment`; never set here.
    pub fulfillment_date: Option<i64>,
    pub fulfillment_result: Option<String>,
    /// When the grace period ends, while a failed renewal is in it.
    pub grace_period_end_date: Option<i64>,
    /// Reserved by Amazon: always `null`.
    pub parent_product_id: Option<String>,
    /// The parent SKU of a subscription.
    pub product_id: String,
    /// `SUBSCRIPTION`.
    pub product_type: String,
    /// Introductory prices and retention offers; never set here.
    pub promotions: Option<Vec<String>>,
    /// The initial purchase (not the latest renewal).
    pub purchase_date: i64,
    /// `1` for a subscription.
    pub quantity: Option<i64>,
    pub receipt_id: String,
    /// When the subscription next renews; the end of the term paid for.
    pub renewal_date: Option<i64>,
    /// The term, e.g. `1 Month`, `1 Year`.
    pub term: Option<String>,
    /// The term SKU bought.
    pub term_sku: Option<String>,
    /// Made in the RVS Cloud Sandbox (App Tester).
    pub test_transaction: bool,
}

/// What RVS answers with an error status (`400`, `410`, `429`, `496`, `497`, `500`).
/// Amazon documents only the statuses; the body is what its clients read (`message`, and
/// `status` always `false`).
#[derive(Object, Serialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AmazonRvsError")]
pub struct RvsErrorBody {
    pub message: String,
    pub status: bool,
}

/// The Real-time Notification: the JSON SNS carries, escaped, as an SNS notification's
/// `Message`, in the order of Amazon's example.
#[derive(Object, Serialize, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AmazonRtnMessage", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RtnMessage {
    pub app_package_name: String,
    /// e.g. `SUBSCRIPTION_PURCHASED`, `SUBSCRIPTION_RENEWED`.
    pub notification_type: String,
    /// The customer's id in the app (`PurchaseResponse.getUserData().getUserId()`).
    pub app_user_id: String,
    pub receipt_id: String,
    /// Other receipts the notification is about: `cancelledReceiptId` for an immediate
    /// plan change; empty otherwise.
    pub related_receipts: RelatedReceipts,
    /// When it happened, milliseconds since the epoch.
    pub timestamp: i64,
    /// A Live App Testing purchase.
    pub beta_product_transaction: bool,
}

/// `relatedReceipts`: `{}` unless a receipt was cancelled by the change notified.
#[derive(Object, Serialize, Debug, Clone, Default, PartialEq, Eq)]
#[oai(rename = "AmazonRelatedReceipts", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RelatedReceipts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_receipt_id: Option<String>,
}

/// An SNS message as SNS POSTs it to an HTTP(S) subscriber, in SNS's field order. A
/// `Notification` has `Message`, `UnsubscribeURL` and (optionally) `Subject`; a
/// `SubscriptionConfirmation` or `UnsubscribeConfirmation` has `Token` and `SubscribeURL`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct SnsEnvelope {
    #[serde(rename = "Type")]
    pub message_type: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "Token", skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    #[serde(rename = "Subject", skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "SubscribeURL", skip_serializing_if = "Option::is_none")]
    pub subscribe_url: Option<String>,
    /// ISO 8601 in UTC with milliseconds, e.g. `2020-09-21T15:19:35.686Z`.
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    /// `1` (RSA with SHA1) or `2` (RSA with SHA256).
    #[serde(rename = "SignatureVersion")]
    pub signature_version: String,
    /// Base64 of the RSA PKCS#1 v1.5 signature of [`SnsEnvelope::string_to_sign`].
    #[serde(rename = "Signature")]
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "UnsubscribeURL", skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

impl SnsEnvelope {
    /// What SNS signs: `Name\nvalue\n` for each signed field in byte order of the names —
    /// `Message`, `MessageId`, `Subject` (if present), `Timestamp`, `TopicArn`, `Type` for a
    /// notification; `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`,
    /// `TopicArn`, `Type` for the confirmations.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        if self.message_type == "Notification" {
            if let Some(subject) = &self.subject {
                fields.push(("Subject", subject));
            }
        } else if let Some(subscribe_url) = &self.subscribe_url {
            fields.push(("SubscribeURL", subscribe_url));
        }
        fields.push(("Timestamp", &self.timestamp));
        if self.message_type != "Notification"
            && let Some(token) = &self.token
        {
            fields.push(("Token", token));
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", &self.message_type));
        fields
            .into_iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(message_type: &str) -> SnsEnvelope {
        SnsEnvelope {
            message_type: message_type.into(),
            message_id: "id".into(),
            token: Some("token".into()),
            topic_arn: "arn".into(),
            subject: None,
            message: "hello".into(),
            subscribe_url: Some("https://sns/?Action=ConfirmSubscription".into()),
            timestamp: "2030-01-01T00:00:00.000Z".into(),
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url: "https://sns/cert.pem".into(),
            unsubscribe_url: None,
        }
    }

    #[test]
    fn the_string_to_sign_follows_the_message_type() {
        assert_eq!(
            envelope("Notification").string_to_sign(),
            "Message\nhello\nMessageId\nid\nTimestamp\n2030-01-01T00:00:00.000Z\nTopicArn\narn\nType\nNotification\n"
        );
        assert_eq!(
            envelope("SubscriptionConfirmation").string_to_sign(),
            "Message\nhello\nMessageId\nid\nSubscribeURL\nhttps://sns/?Action=ConfirmSubscription\n\
             Timestamp\n2030-01-01T00:00:00.000Z\nToken\ntoken\nTopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn a_receipt_renders_every_field_with_nulls() {
        let receipt = RvsReceipt {
            auto_renewing: Some(true),
            beta_product: false,
            cancel_date: None,
            cancel_reason: None,
            country_code: Some("US".into()),
            deferred_date: None,
            deferred_sku: None,
            free_trial_end_date: None,
            fulfillment_date: None,
            fulfillment_result: None,
            grace_period_end_date: None,
            parent_product_id: None,
            product_id: "sub".into(),
            product_type: "SUBSCRIPTION".into(),
            promotions: None,
            purchase_date: 1,
            quantity: Some(1),
            receipt_id: "r".into(),
            renewal_date: Some(2),
            term: Some("1 Month".into()),
            term_sku: Some("sub.monthly".into()),
            test_transaction: false,
        };
        let json = serde_json::to_value(&receipt).unwrap();
        assert_eq!(json["cancelDate"], serde_json::Value::Null);
        assert_eq!(json.as_object().unwrap().len(), 22);
    }
}
