//! Roku Pay's JSON as Roku renders it: the web services' answers (the base response every
//! answer has, `validate-transaction`'s and `validate-refund`'s transaction, the refund's
//! `RefundId`), their request bodies, and the push notification's message, built from the
//! account's state at a given time.
//!
//! Dates in web service answers are WCF's JSON dates, `/Date(1581033062000+0000)/`
//! (milliseconds since the epoch and an offset, always `+0000` here); dates in push
//! notifications are ISO 8601 in UTC, `2022-07-11T19:50:18Z`. Amounts are decimal numbers
//! in the currency's unit (`1.99`); currencies are lower-case ISO 4217 codes (`usd`). Field
//! names are Roku's, `OriginalTransactionId` and `RefundId` with their capitals.

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::Object;
use serde::Serialize;

use super::error::{STATUS_FAILURE, STATUS_SUCCESS};
use super::state::{Refund, Subscription, Transaction};

/// `purchaseChannel` and `purchaseContext` of an on-device purchase, as `validate-transaction`
/// spells them (Instant Signup's are `web` and `isu`).
pub const PURCHASE_CHANNEL: &str = "device";
pub const PURCHASE_CONTEXT: &str = "iap";

/// The same, as push notifications spell them.
pub const PUSH_PURCHASE_CHANNEL: &str = "DEVICE";
pub const PUSH_PURCHASE_CONTEXT: &str = "IAP";

/// WCF's JSON date: `/Date(<milliseconds>+0000)/`.
pub fn wcf_date(time: DateTime<Utc>) -> String {
    format!("/Date({}+0000)/", time.timestamp_millis())
}

/// A push notification's date: `2022-07-11T19:50:18Z`.
pub fn iso_date(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Digits after the decimal point of an ISO 4217 currency.
pub fn currency_exponent(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Minor units as the decimal amount Roku puts on the wire.
pub fn decimal(minor: i64, currency: &str) -> f64 {
    // Amounts are far below 2^53 minor units; the quotient is the nearest double to the
    // decimal amount, which serde_json prints in its shortest form (`4.99`).
    minor as f64 / 10f64.powi(currency_exponent(currency) as i32)
}

/// A decimal amount in minor units, when it has no more digits than the currency allows.
pub fn minor_units(amount: f64, currency: &str) -> Option<i64> {
    let scaled = amount * 10f64.powi(currency_exponent(currency) as i32);
    let rounded = scaled.round();
    ((scaled - rounded).abs() < 1e-6 && rounded.abs() < 9e15).then_some(rounded as i64)
}

/// The part every Roku Pay answer has (Roku's `BaseResponseData`), and the whole answer of
/// `cancel-subscription` and `update-bill-cycle`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "RokuResult", rename_all = "camelCase")]
pub struct RokuResult {
    /// Always `null`.
    pub error_code: Option<String>,
    /// Always `null`.
    pub error_details: Option<String>,
    /// Empty on success; what went wrong otherwise (`UNAUTHORIZED` for a key that is not
    /// the developer's).
    pub error_message: String,
    /// 0 success, 1 failure.
    pub status: i32,
}

impl RokuResult {
    pub fn success() -> Self {
        Self {
            error_code: None,
            error_details: None,
            error_message: String::new(),
            status: STATUS_SUCCESS,
        }
    }

    pub fn failure(message: &str) -> Self {
        Self {
            error_code: None,
            error_details: None,
            error_message: message.to_owned(),
            status: STATUS_FAILURE,
        }
    }
}

/// `validate-transaction`'s and `validate-refund`'s answer, in Roku's field order. On
/// failure only the first four fields are set; the others are `null`.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "RokuTransactionResult", rename_all = "camelCase")]
pub struct TransactionResult {
    pub error_code: Option<String>,
    pub error_details: Option<String>,
    pub error_message: String,
    /// 0 success, 1 failure.
    pub status: i32,
    /// The subscription's first transaction: the same across its renewals. `null` for a
    /// refund.
    #[oai(rename = "OriginalTransactionId")]
    pub original_transaction_id: Option<String>,
    /// The transaction's price before tax (negative for a refund).
    pub amount: Option<f64>,
    /// The customer turned auto-renewal off, or the subscription ended.
    pub cancelled: Option<bool>,
    pub channel_id: Option<u64>,
    pub channel_name: Option<String>,
    /// Always `null`: the simulator has no coupons.
    pub coupon_code: Option<String>,
    /// Always `null`: the simulator has no service credits.
    pub credits_applied: Option<f64>,
    /// Lower case, e.g. `usd`.
    pub currency: Option<String>,
    /// The end of the paid period (`/Date(…)/`): in the future while current, today or
    /// past while in recovery (grace period or on hold) or ended. `null` for a refund.
    pub expiration_date: Option<String>,
    /// Whether to grant access: true while current, in the grace period, and cancelled
    /// but not yet expired.
    pub is_entitled: Option<bool>,
    /// When the subscription was first bought.
    pub original_purchase_date: Option<String>,
    /// What the publisher passed with its last cancel or refund request, if anything.
    pub partner_reference_id: Option<String>,
    /// The product code.
    pub product_id: Option<String>,
    pub product_name: Option<String>,
    /// `device` (on-device purchase).
    pub purchase_channel: Option<String>,
    /// `iap` (in-app purchase).
    pub purchase_context: Option<String>,
    /// When this transaction was made.
    pub purchase_date: Option<String>,
    /// `Active` while entitled, `Inactive` otherwise. `null` for a refund.
    pub purchase_status: Option<String>,
    pub quantity: Option<u32>,
    /// The customer's Roku id, anonymized per developer.
    pub roku_customer_id: Option<String>,
    /// Always 0: the simulator charges no tax.
    pub tax: Option<f64>,
    /// What the customer paid: the amount plus tax.
    pub total: Option<f64>,
    /// The transaction (for a subscription, its latest payment; for a refund, the refund
    /// id).
    pub transaction_id: Option<String>,
}

impl TransactionResult {
    /// `status` 1 with this message, every transaction field `null`.
    pub fn failure(message: &str) -> Self {
        Self {
            error_code: None,
            error_details: None,
            error_message: message.to_owned(),
            status: STATUS_FAILURE,
            original_transaction_id: None,
            amount: None,
            cancelled: None,
            channel_id: None,
            channel_name: None,
            coupon_code: None,
            credits_applied: None,
            currency: None,
            expiration_date: None,
            is_entitled: None,
            original_purchase_date: None,
            partner_reference_id: None,
            product_id: None,
            product_name: None,
            purchase_channel: None,
            purchase_context: None,
            purchase_date: None,
            purchase_status: None,
            quantity: None,
            roku_customer_id: None,
            tax: None,
            total: None,
            transaction_id: None,
        }
    }

    /// A subscription as `validate-transaction` reports it at `now`: its state, and its
    /// latest payment as the transaction.
    pub fn subscription(
        subscription: &Subscription,
        latest: &Transaction,
        now: DateTime<Utc>,
    ) -> Self {
        let currency = &subscription.product.currency;
        let entitled = subscription.is_entitled(now);
        let amount = decimal(latest.amount_minor, currency);
        Self {
            status: STATUS_SUCCESS,
            error_message: String::new(),
            original_transaction_id: Some(subscription.original_transaction_id.clone()),
            amount: Some(amount),
            cancelled: Some(subscription.cancelled()),
            channel_id: Some(subscription.channel_id),
            channel_name: Some(subscription.channel_name.clone()),
            currency: Some(currency.to_ascii_lowercase()),
            expiration_date: Some(wcf_date(subscription.expiration())),
            is_entitled: Some(entitled),
            original_purchase_date: Some(wcf_date(subscription.started_at)),
            partner_reference_id: subscription.partner_reference_id.clone(),
            product_id: Some(subscription.product.code.clone()),
            product_name: Some(subscription.product.name.clone()),
            purchase_channel: Some(PURCHASE_CHANNEL.into()),
            purchase_context: Some(PURCHASE_CONTEXT.into()),
            purchase_date: Some(wcf_date(latest.purchased_at)),
            purchase_status: Some(if entitled { "Active" } else { "Inactive" }.into()),
            quantity: Some(1),
            roku_customer_id: Some(subscription.customer_id.clone()),
            tax: Some(0.0),
            total: Some(amount),
            transaction_id: Some(latest.id.clone()),
            ..Self::failure("")
        }
    }

    /// A refund as `validate-refund` reports it, as in Roku's example: negative amounts,
    /// the refund id as the transaction, no original transaction, expiry or status.
    pub fn refund(refund: &Refund, subscription: &Subscription, refunded: &Transaction) -> Self {
        let currency = &subscription.product.currency;
        let amount = -decimal(refund.amount_minor, currency);
        Self {
            status: STATUS_SUCCESS,
            error_message: String::new(),
            amount: Some(amount),
            cancelled: Some(false),
            channel_id: Some(subscription.channel_id),
            channel_name: Some(subscription.channel_name.clone()),
            currency: Some(currency.to_ascii_lowercase()),
            is_entitled: Some(false),
            original_purchase_date: Some(wcf_date(refunded.purchased_at)),
            partner_reference_id: refund.partner_reference_id.clone(),
            product_id: Some(subscription.product.code.clone()),
            product_name: Some(subscription.product.name.clone()),
            purchase_date: Some(wcf_date(refund.at)),
            quantity: Some(1),
            roku_customer_id: Some(subscription.customer_id.clone()),
            tax: Some(0.0),
            total: Some(amount),
            transaction_id: Some(refund.id.clone()),
            ..Self::failure("")
        }
    }
}

/// `refund-subscription`'s answer.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(rename = "RokuRefundResult", rename_all = "camelCase")]
pub struct RefundResult {
    pub error_code: Option<String>,
    pub error_details: Option<String>,
    pub error_message: String,
    /// 0 success, 1 failure.
    pub status: i32,
    /// The refund's id, for `validate-refund`; `null` on failure.
    #[oai(rename = "RefundId")]
    pub refund_id: Option<String>,
}

/// `cancel-subscription`'s body. Documentation: the body is read leniently (see the
/// operation).
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuCancelRequest", rename_all = "camelCase")]
pub struct CancelRequest {
    /// When the publisher cancelled, e.g. `2020-01-10T18:44:01.034020`; recorded only.
    pub cancellation_date: Option<String>,
    /// Whether Roku should not e-mail the customer; recorded only.
    pub dont_notify_user: Option<bool>,
    /// The developer's Roku Pay API key.
    #[oai(rename = "partnerAPIKey")]
    pub partner_api_key: String,
    /// The publisher's own reference, shown back by `validate-transaction`.
    pub partner_reference_id: Option<String>,
    /// Any payment transaction of the subscription.
    pub transaction_id: String,
}

/// `refund-subscription`'s body.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuRefundRequest", rename_all = "camelCase")]
pub struct RefundRequest {
    /// Before tax, more than 0 and at most what is left of the transaction's pre-tax
    /// price: a number (`0.99`) or a numeric string (`"0.99"`).
    pub amount: f64,
    pub comments: Option<String>,
    #[oai(rename = "partnerAPIKey")]
    pub partner_api_key: String,
    pub partner_reference_id: Option<String>,
    /// The payment transaction to refund.
    pub transaction_id: String,
}

/// `update-bill-cycle`'s body.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuBillCycleUpdate", rename_all = "camelCase")]
pub struct BillCycleUpdate {
    #[oai(rename = "partnerAPIKey")]
    pub partner_api_key: String,
    /// The new billing date, in UTC, e.g. `2020-02-12T08:17:09`: after now and at most one
    /// billing period after the current expiration date.
    pub new_bill_cycle_date: String,
    /// Any payment transaction of the subscription.
    pub transaction_id: String,
}

/// A push notification's message: what `x-Roku-message` carries (base64 of its JSON) in a
/// secured push, and the whole body of an unsecured one. Fields a notification type does
/// not have are left out, as in Roku's examples.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    pub customer_id: String,
    /// `Sale`, `GraceInitiated`, `GraceRecovered`, `OnHoldInitiated`, `OnHoldRecovered`,
    /// `Cancellation`, `Refund`, `Resubscribe`.
    pub transaction_type: String,
    /// The payment (`Sale`, `…Recovered`), the refund (`Refund`), or the event.
    pub transaction_id: String,
    /// A string here, unlike in `validate-transaction`.
    pub channel_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    pub product_code: String,
    pub product_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_reference_id: Option<String>,
    pub original_transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_purchase_date: Option<String>,
    pub event_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    pub comments: String,
    /// What an unsecured push's receiver echoes back; set when the message is published.
    pub response_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_context: Option<String>,
    pub is_free_trial: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_amounts_are_in_rokus_forms() {
        let time = DateTime::from_timestamp_millis(1_581_033_062_000).unwrap();
        assert_eq!(wcf_date(time), "/Date(1581033062000+0000)/");
        assert_eq!(iso_date(time), "2020-02-06T23:51:02Z");
        assert_eq!(decimal(499, "USD"), 4.99);
        assert_eq!(serde_json::to_string(&decimal(199, "usd")).unwrap(), "1.99");
        assert_eq!(decimal(500, "JPY"), 500.0);
        assert_eq!(minor_units(0.99, "usd"), Some(99));
        assert_eq!(minor_units(0.999, "usd"), None);
        assert_eq!(minor_units(1.005, "kwd"), Some(1005));
    }
}
