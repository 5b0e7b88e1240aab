//! `POST /iap/verify`: an app forwards the receipt of an in-app purchase. CloudPay answers
//! in the envelope of the AWS Lambda behind it (`statusCode`, `headers`,
//! `multiValueHeaders`, `body`), errors included, with the store's own code in
//! `body.sourceErrorCode` when the store refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::CloudPay;
use super::auth::CloudPayAuth;
use super::error::CloudPayError;
use crate::core::model::{Currency, Money, StorePlatform};
use crate::core::{CoreError, StoreReceipt};

#[derive(Tags)]
enum IapTags {
    /// Purchases made in the Apple, Google, Roku and Amazon stores.
    Iap,
}

/// The store the app bought through.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum IapPlatform {
    Ios,
    Android,
    Roku,
    Amazon,
}

/// What the customer paid, as the app reports it.
#[derive(Debug, Clone, Object)]
pub struct IapPayment {
    #[oai(rename = "countryCode")]
    pub country_code: String,
    /// ISO 4217.
    #[oai(rename = "currencyCode")]
    pub currency_code: String,
    /// In major units, as a decimal string (`"9.99"`).
    pub amount: String,
    /// The discount the store applied, in major units.
    pub discount: Option<String>,
}

/// The receipt, as the store gave it to the app. Which members are needed depends on the
/// platform.
#[derive(Debug, Clone, Object)]
pub struct IapReceipt {
    /// ios: the transaction id (or send `raw`); android: the purchase token; roku: the
    /// transaction id; amazon: the receipt id.
    #[oai(rename = "purchaseIdentifier")]
    pub purchase_identifier: Option<String>,
    /// android: the app's package name.
    #[oai(rename = "packageName")]
    pub package_name: Option<String>,
    /// android: the subscription's product id.
    #[oai(rename = "productId")]
    pub product_id: Option<String>,
    #[oai(rename = "autoRenewing")]
    pub auto_renewing: Option<bool>,
    /// amazon: the Appstore user id.
    #[oai(rename = "userId")]
    pub user_id: Option<String>,
    /// ios: the base64 app receipt (StoreKit's `appStoreReceiptURL` contents).
    pub raw: Option<String>,
    pub payment: Option<IapPayment>,
}

#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct VerifyRequest {
    pub platform: IapPlatform,
    pub receipt: IapReceipt,
}

impl Example for VerifyRequest {
    fn example() -> Self {
        VerifyRequest {
            platform: IapPlatform::Ios,
            receipt: IapReceipt {
                purchase_identifier: Some("2000000123456789".into()),
                package_name: None,
                product_id: None,
                auto_renewing: None,
                user_id: None,
                raw: None,
                payment: Some(IapPayment {
                    country_code: "GB".into(),
                    currency_code: "GBP".into(),
                    amount: "7.99".into(),
                    discount: None,
                }),
            },
        }
    }
}

/// The Lambda's headers, repeated in the body.
#[derive(Debug, Clone, Object)]
pub struct EnvelopeHeaders {
    #[oai(rename = "Access-Control-Allow-Credentials")]
    pub allow_credentials: bool,
    #[oai(rename = "Access-Control-Allow-Origin")]
    pub allow_origin: String,
    #[oai(rename = "Content-Type")]
    pub content_type: String,
}

impl EnvelopeHeaders {
    fn new() -> Self {
        Self {
            allow_credentials: true,
            allow_origin: "*".into(),
            content_type: "application/json".into(),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct VerifiedBody {
    #[oai(rename = "isVerified")]
    pub is_verified: bool,
}

#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct VerifyEnvelope {
    #[oai(rename = "statusCode")]
    pub status_code: u16,
    pub headers: EnvelopeHeaders,
    #[oai(rename = "multiValueHeaders")]
    pub multi_value_headers: BTreeMap<String, Vec<String>>,
    pub body: VerifiedBody,
}

impl Example for VerifyEnvelope {
    fn example() -> Self {
        VerifyEnvelope {
            status_code: 200,
            headers: EnvelopeHeaders::new(),
            multi_value_headers: BTreeMap::new(),
            body: VerifiedBody { is_verified: true },
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct VerifyErrorBody {
    /// The store's own code when the store refused (Apple's `21003`, `4040010`, …).
    #[oai(rename = "sourceErrorCode")]
    pub source_error_code: Option<i64>,
    #[oai(rename = "errorMessage")]
    pub error_message: String,
}

#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct VerifyErrorEnvelope {
    #[oai(rename = "statusCode")]
    pub status_code: u16,
    pub headers: EnvelopeHeaders,
    #[oai(rename = "multiValueHeaders")]
    pub multi_value_headers: BTreeMap<String, Vec<String>>,
    pub body: VerifyErrorBody,
}

impl Example for VerifyErrorEnvelope {
    fn example() -> Self {
        VerifyErrorEnvelope::new(
            400,
            Some(21_003),
            "The receipt could not be authenticated.".into(),
        )
    }
}

impl VerifyErrorEnvelope {
    pub fn new(status_code: u16, source_error_code: Option<i64>, error_message: String) -> Self {
        Self {
            status_code,
            headers: EnvelopeHeaders::new(),
            multi_value_headers: BTreeMap::new(),
            body: VerifyErrorBody {
                source_error_code,
                error_message,
            },
        }
    }
}

#[derive(ApiResponse)]
enum VerifyResponse {
    /// The store vouched for the purchase: the subscription and its entitlements are
    /// granted.
    #[oai(status = 200)]
    Verified(Json<VerifyEnvelope>),
}

#[derive(Debug, ApiResponse)]
pub enum VerifyError {
    /// The store refused the receipt (its code in `sourceErrorCode`), or the request is
    /// malformed or names no package sold here.
    #[oai(status = 400)]
    BadRequest(Json<Box<VerifyErrorEnvelope>>),
    /// No credential, or one that is not valid.
    #[oai(status = 401)]
    Unauthorized(Json<Box<VerifyErrorEnvelope>>),
    /// The purchase is already linked to another account.
    #[oai(status = 403)]
    Forbidden(Json<Box<VerifyErrorEnvelope>>),
    /// A fault on the server's side (a bug), logged for the operators.
    #[oai(status = 500)]
    Internal(Json<Box<VerifyErrorEnvelope>>),
    /// The store or the database could not be reached; retry later.
    #[oai(status = 503)]
    Unavailable(Json<Box<VerifyErrorEnvelope>>),
}

impl From<CloudPayError> for VerifyError {
    fn from(error: CloudPayError) -> Self {
        let envelope = |status: u16, message: String| {
            Json(Box::new(VerifyErrorEnvelope::new(status, None, message)))
        };
        match error {
            CloudPayError::BadRequest(Json(body)) | CloudPayError::NotFound(Json(body)) => {
                VerifyError::BadRequest(envelope(400, body.body.message))
            }
            CloudPayError::Unauthorized(Json(body)) => {
                VerifyError::Unauthorized(envelope(401, body.body.message))
            }
            CloudPayError::Forbidden(Json(body)) => {
                VerifyError::Forbidden(envelope(403, body.body.message))
            }
            CloudPayError::Internal(Json(body)) => {
                VerifyError::Internal(envelope(500, body.body.message))
            }
            CloudPayError::Unavailable(Json(body)) => {
                VerifyError::Unavailable(envelope(503, body.body.message))
            }
        }
    }
}

impl From<CoreError> for VerifyError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::StoreRefused { code, message } => VerifyError::BadRequest(Json(Box::new(
                VerifyErrorEnvelope::new(400, code, message),
            ))),
            error => CloudPayError::from(error).into(),
        }
    }
}

fn bad_request(message: impl Into<String>) -> VerifyError {
    VerifyError::BadRequest(Json(Box::new(VerifyErrorEnvelope::new(
        400,
        None,
        message.into(),
    ))))
}

/// `"7.99"` in `currency`'s minor units; `None` when it is not a plain non-negative decimal
/// with at most the currency's digits after the point.
fn minor_units(amount: &str, currency: Currency) -> Option<i64> {
    let amount = amount.trim();
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = currency.exponent as usize;
    if whole.is_empty()
        || fraction.len() > digits
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<digits$}").parse().ok()?
    };
    whole
        .checked_mul(10i64.checked_pow(currency.exponent)?)?
        .checked_add(fraction)
}

/// What the customer paid after the store's discount.
fn paid(payment: &IapPayment) -> Result<Money, VerifyError> {
    let currency = Currency::parse(payment.currency_code.trim()).ok_or_else(|| {
        bad_request(format!(
            "payment.currencyCode {} is not a currency this service sells in",
            payment.currency_code
        ))
    })?;
    let amount = minor_units(&payment.amount, currency).ok_or_else(|| {
        bad_request(format!(
            "payment.amount {:?} is not an amount in {}",
            payment.amount,
            currency.code()
        ))
    })?;
    let discount = match payment
        .discount
        .as_deref()
        .filter(|text| !text.trim().is_empty())
    {
        Some(text) => minor_units(text, currency).ok_or_else(|| {
            bad_request(format!(
                "payment.discount {text:?} is not an amount in {}",
                currency.code()
            ))
        })?,
        None => 0,
    };
    if discount > amount {
        return Err(bad_request("payment.discount is more than payment.amount"));
    }
    Ok(Money {
        minor_units: amount - discount,
        currency,
    })
}

pub(crate) struct IapApi(pub(crate) Arc<CloudPay>);

#[OpenApi]
impl IapApi {
    /// Verify In-App-Purchase
    ///
    /// Checks the purchase with the store it was made in (ios: the App Store Server API for
    /// a transaction id, `verifyReceipt` for a `raw` app receipt; android: Google Play's
    /// `purchases.subscriptionsv2`; roku: Roku Pay's validate-transaction; amazon: the
    /// Receipt Verification Service) and, when the store vouches for it, grants the
    /// subscription to the package sold as the store's product, with its entitlements. From
    /// then on the store's notifications keep it up to date. `payment` records what the
    /// customer paid (less `discount`) as the purchase's transaction. Verifying the same
    /// receipt again brings the subscription up to date; a receipt another customer
    /// verified is refused, as is a sandbox purchase on a production configuration.
    #[oai(
        path = "/iap/verify",
        method = "post",
        tag = "IapTags::Iap",
        operation_id = "post-iap-verifyReceipt"
    )]
    async fn verify(
        &self,
        auth: CloudPayAuth,
        body: Json<VerifyRequest>,
    ) -> Result<VerifyResponse, VerifyError> {
        let credential = auth.credential()?;
        let VerifyRequest { platform, receipt } = body.0;
        let payment = receipt.payment.as_ref().map(paid).transpose()?;
        let receipt = StoreReceipt {
            platform: match platform {
                IapPlatform::Ios => StorePlatform::Apple,
                IapPlatform::Android => StorePlatform::Google,
                IapPlatform::Roku => StorePlatform::Roku,
                IapPlatform::Amazon => StorePlatform::Amazon,
            },
            purchase_identifier: receipt.purchase_identifier,
            package_name: receipt.package_name,
            product_id: receipt.product_id,
            user_id: receipt.user_id,
            raw: receipt.raw,
            payment,
        };
        self.0
            .core
            .verify_store_purchase(&credential, receipt)
            .await?;
        Ok(VerifyResponse::Verified(Json(VerifyEnvelope::example())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_the_currencys_minor_units() {
        let gbp = Currency::parse("GBP").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(minor_units("9.99", gbp), Some(999));
        assert_eq!(minor_units("9.9", gbp), Some(990));
        assert_eq!(minor_units("10", gbp), Some(1000));
        assert_eq!(minor_units("500", jpy), Some(500));
        assert_eq!(minor_units("9.999", gbp), None);
        assert_eq!(minor_units("5.5", jpy), None);
        assert_eq!(minor_units("-1", gbp), None);
        assert_eq!(minor_units("1e3", gbp), None);
        assert_eq!(minor_units("", gbp), None);
        assert_eq!(minor_units("99999999999999999999", gbp), None);
    }
}
