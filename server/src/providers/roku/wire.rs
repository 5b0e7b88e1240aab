//! Roku Pay's JSON: `validate-transaction`'s answer and the base response of the other
//! web services, the request bodies the client sends, and a push notification (the
//! secured push's JWT claims and the message they carry).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `status` in a JSON answer: 0 (`Success`) or 1 (`Failure`). XML answers spell them out,
/// so the words are read too.
pub fn succeeded(status: &Value) -> bool {
    match status {
        Value::Number(number) => number.as_i64() == Some(0),
        Value::String(text) => text.eq_ignore_ascii_case("success") || text == "0",
        _ => false,
    }
}

/// The part every Roku Pay answer has.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseResult {
    #[serde(default)]
    pub status: Value,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// `validate-transaction`'s answer (the fields the client reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionResult {
    #[serde(default)]
    pub status: Value,
    #[serde(default)]
    pub error_message: Option<String>,
    /// With Roku's capital O.
    #[serde(rename = "OriginalTransactionId")]
    pub original_transaction_id: Option<String>,
    pub transaction_id: Option<String>,
    pub product_id: Option<String>,
    /// Before tax, in the currency's unit.
    pub amount: Option<f64>,
    /// Lower case, e.g. `usd`.
    pub currency: Option<String>,
    pub cancelled: Option<bool>,
    pub is_entitled: Option<bool>,
    /// `Active`, `Inactive`, `Pending_Active` (also `PendingActive`), `Pending_Inactive`.
    pub purchase_status: Option<String>,
    /// WCF JSON dates.
    pub purchase_date: Option<String>,
    pub original_purchase_date: Option<String>,
    pub expiration_date: Option<String>,
}

/// `cancel-subscription`'s body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest<'a> {
    pub cancellation_date: String,
    #[serde(rename = "partnerAPIKey")]
    pub partner_api_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_reference_id: Option<&'a str>,
    pub transaction_id: &'a str,
}

/// `refund-subscription`'s body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest<'a> {
    /// Before tax, in the currency's unit.
    pub amount: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<&'a str>,
    #[serde(rename = "partnerAPIKey")]
    pub partner_api_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_reference_id: Option<&'a str>,
    pub transaction_id: &'a str,
}

/// `refund-subscription`'s answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundResult {
    #[serde(default)]
    pub status: Value,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(rename = "RefundId")]
    pub refund_id: Option<String>,
}

/// The JWT claims of a secured push.
#[derive(Debug, Clone, Deserialize)]
pub struct PushClaims {
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    #[serde(rename = "x-Roku-message")]
    pub message: Option<String>,
    #[serde(rename = "x-Roku-message-encoding")]
    pub encoding: Option<String>,
    #[serde(rename = "x-Roku-message-key")]
    pub key: Option<String>,
    #[serde(rename = "x-Roku-message-type")]
    pub message_type: Option<String>,
}

/// A push notification's message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    pub transaction_type: String,
    pub transaction_id: String,
    pub original_transaction_id: Option<String>,
    pub customer_id: Option<String>,
    /// A string in Roku's examples; a number is read too.
    pub channel_id: Option<Value>,
    pub product_code: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    /// ISO 8601.
    pub event_date: Option<String>,
    pub expiration_date: Option<String>,
    #[serde(default)]
    pub is_free_trial: bool,
    pub response_key: Option<String>,
}

/// A WCF JSON date (`/Date(1581033062000+0000)/`, `/Date(1483242628000-0800)/`: the
/// milliseconds are UTC, the offset only says where the writer was), or the ISO form XML
/// answers and push notifications use (`2020-02-06T23:51:02`, `2022-07-11T19:50:18Z`,
/// read as UTC without an offset).
pub fn roku_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix(")/"))
    {
        let end = inner
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '+' || *c == '-')
            .map_or(inner.len(), |(index, _)| index);
        return DateTime::from_timestamp_millis(inner[..end].parse().ok()?);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|time| time.and_utc())
}

/// A decimal amount in minor units of a currency with `exponent` digits, when it has no
/// more digits than that.
pub fn minor_units(amount: f64, exponent: u32) -> Option<i64> {
    let scaled = amount * 10f64.powi(i32::try_from(exponent).ok()?);
    let rounded = scaled.round();
    // Amounts are far below 2^53 minor units, so the cast is exact.
    ((scaled - rounded).abs() < 1e-6 && rounded.abs() < 9e15).then_some(rounded as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rokus_dates_are_read_in_all_their_forms() {
        let expected = DateTime::from_timestamp_millis(1_581_033_062_000).unwrap();
        assert_eq!(roku_date("/Date(1581033062000+0000)/"), Some(expected));
        assert_eq!(roku_date("/Date(1581033062000-0800)/"), Some(expected));
        assert_eq!(roku_date("/Date(1581033062000)/"), Some(expected));
        assert_eq!(roku_date("2020-02-06T23:51:02"), Some(expected));
        assert_eq!(roku_date("2020-02-06T23:51:02Z"), Some(expected));
        assert_eq!(
            roku_date("2020-04-05T18:45:04.3142198Z").map(|time| time.timestamp()),
            Some(1_586_112_304)
        );
        assert_eq!(
            roku_date("/Date(-1000+0000)/").map(|t| t.timestamp()),
            Some(-1)
        );
        assert_eq!(roku_date("yesterday"), None);
        assert_eq!(roku_date("/Date(abc)/"), None);
    }

    #[test]
    fn statuses_and_amounts_are_read_as_roku_writes_them() {
        assert!(succeeded(&Value::from(0)));
        assert!(succeeded(&Value::from("Success")));
        assert!(!succeeded(&Value::from(1)));
        assert!(!succeeded(&Value::from("Failure")));
        assert!(!succeeded(&Value::Null));
        assert_eq!(minor_units(9.99, 2), Some(999));
        assert_eq!(minor_units(-1.99, 2), Some(-199));
        assert_eq!(minor_units(500.0, 0), Some(500));
        assert_eq!(minor_units(0.999, 2), None);
    }
}
