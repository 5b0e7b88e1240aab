//! StoreKit 1's app receipt and the legacy `verifyReceipt` endpoint
//! (`buy.itunes.apple.com/verifyReceipt`, `sandbox.itunes.apple.com/verifyReceipt`).
//!
//! The receipt the simulator issues is as opaque to the app as Apple's PKCS#7 receipt:
//! standard base64 of a JWS the simulator signs with its App Store key, naming the
//! environment (`receiptType`), the bundle id, the transaction it was issued with and when.
//! Changing it breaks the signature, so another valid receipt cannot be made from it without
//! the simulator's key.
//!
//! `verifyReceipt` answers HTTP 200 with `{"status": …}` whatever happens, as Apple does:
//! 21000 the body is not the JSON object it expects, 21002 the receipt data is malformed,
//! 21003 the receipt is not one the simulator signed, 21007 a sandbox receipt was sent to
//! production, 21008 a production receipt to the sandbox, 21004 the shared secret is missing
//! or wrong, 21010 the receipt's customer is unknown (e.g. after a reset), 0 valid: the
//! receipt (`in_app`: the customer's transactions when it was issued), every transaction of
//! the customer's subscriptions newest first (`latest_receipt_info`, or only each
//! subscription's latest with `exclude-old-transactions`), a fresh receipt
//! (`latest_receipt`) and each subscription's `pending_renewal_info`, with Apple's string
//! field names and values. The `_pst` variants of dates are not given.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::{Deserialize, Serialize};

use super::AppleConfig;
use super::certs::SigningIdentity;
use super::state::{Environment, Phase, Store, Subscription, Transaction};

/// `verifyReceipt`'s `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Valid,
    UnreadableRequest,
    MalformedReceipt,
    NotAuthenticated,
    WrongSharedSecret,
    SandboxReceiptInProduction,
    ProductionReceiptInSandbox,
    UnknownCustomer,
}

impl ReceiptStatus {
    pub fn code(self) -> u32 {
        match self {
            Self::Valid => 0,
            Self::UnreadableRequest => 21_000,
            Self::MalformedReceipt => 21_002,
            Self::NotAuthenticated => 21_003,
            Self::WrongSharedSecret => 21_004,
            Self::SandboxReceiptInProduction => 21_007,
            Self::ProductionReceiptInSandbox => 21_008,
            Self::UnknownCustomer => 21_010,
        }
    }
}

/// What an app receipt says, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptClaims {
    /// `Production` or `ProductionSandbox`, as Apple's `receipt_type`.
    receipt_type: String,
    bundle_id: String,
    transaction_id: String,
    receipt_creation_date: i64,
}

fn receipt_type(environment: Environment) -> &'static str {
    match environment {
        Environment::Production => "Production",
        Environment::Sandbox => "ProductionSandbox",
    }
}

/// A new app receipt, issued with `transaction_id`.
pub(crate) fn issue(
    identity: &SigningIdentity,
    config: &AppleConfig,
    transaction: &Transaction,
    now: DateTime<Utc>,
) -> String {
    let jws = identity.sign(&ReceiptClaims {
        receipt_type: receipt_type(transaction.environment).to_owned(),
        bundle_id: config.bundle_id.clone(),
        transaction_id: transaction.id.clone(),
        receipt_creation_date: now.timestamp_millis(),
    });
    STANDARD.encode(jws)
}

/// The body of `POST /verifyReceipt`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleVerifyReceiptRequest")]
pub struct VerifyReceiptRequest {
    /// The app receipt, base64.
    #[oai(rename = "receipt-data")]
    pub receipt_data: Option<String>,
    /// The app's shared secret (required: every receipt holds auto-renewable subscriptions).
    pub password: Option<String>,
    /// Only each subscription's latest transaction in `latest_receipt_info`.
    #[oai(rename = "exclude-old-transactions")]
    pub exclude_old_transactions: Option<bool>,
}

/// A transaction as `in_app` and `latest_receipt_info` show it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleReceiptTransaction")]
pub struct ReceiptTransaction {
    pub quantity: String,
    pub product_id: String,
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub purchase_date: String,
    pub purchase_date_ms: String,
    pub original_purchase_date: String,
    pub original_purchase_date_ms: String,
    pub expires_date: String,
    pub expires_date_ms: String,
    pub web_order_line_item_id: String,
    pub is_trial_period: String,
    pub is_in_intro_offer_period: String,
    pub in_app_ownership_type: String,
    pub subscription_group_identifier: String,
    #[oai(skip_serializing_if_is_none)]
    pub app_account_token: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub cancellation_date: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub cancellation_date_ms: Option<String>,
    /// `1` for an issue with the app, `0` otherwise.
    #[oai(skip_serializing_if_is_none)]
    pub cancellation_reason: Option<String>,
}

/// `pending_renewal_info`: one per subscription.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ApplePendingRenewalInfo")]
pub struct PendingRenewalInfo {
    pub auto_renew_product_id: String,
    pub product_id: String,
    pub original_transaction_id: String,
    /// `1` on, `0` off.
    pub auto_renew_status: String,
    /// `1` the customer turned auto-renew off, `2` billing failed.
    #[oai(skip_serializing_if_is_none)]
    pub expiration_intent: Option<String>,
    /// `1` while the App Store retries a failed renewal, else `0`.
    pub is_in_billing_retry_period: String,
    #[oai(skip_serializing_if_is_none)]
    pub grace_period_expires_date: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub grace_period_expires_date_ms: Option<String>,
}

/// The decoded receipt.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleReceipt")]
pub struct ReceiptInfo {
    pub receipt_type: String,
    /// The app's Apple id (0 in the sandbox).
    pub adam_id: i64,
    pub app_item_id: i64,
    pub bundle_id: String,
    pub application_version: String,
    pub download_id: i64,
    pub version_external_identifier: i64,
    pub receipt_creation_date: String,
    pub receipt_creation_date_ms: String,
    pub request_date: String,
    pub request_date_ms: String,
    pub original_purchase_date: String,
    pub original_purchase_date_ms: String,
    pub original_application_version: String,
    pub in_app: Vec<ReceiptTransaction>,
}

/// `verifyReceipt`'s answer.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleVerifyReceiptResponse")]
pub struct VerifyReceiptResponse {
    /// 0 for a valid receipt, else Apple's error status (21000–21010).
    pub status: u32,
    #[oai(skip_serializing_if_is_none)]
    pub environment: Option<Environment>,
    #[oai(skip_serializing_if_is_none)]
    pub receipt: Option<ReceiptInfo>,
    #[oai(skip_serializing_if_is_none)]
    pub latest_receipt_info: Option<Vec<ReceiptTransaction>>,
    #[oai(skip_serializing_if_is_none)]
    pub latest_receipt: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub pending_renewal_info: Option<Vec<PendingRenewalInfo>>,
}

impl VerifyReceiptResponse {
    pub fn status(status: ReceiptStatus) -> Self {
        Self {
            status: status.code(),
            environment: None,
            receipt: None,
            latest_receipt_info: None,
            latest_receipt: None,
            pending_renewal_info: None,
        }
    }
}

/// Apple's receipt date: `2030-01-31 10:00:00 Etc/GMT`.
fn receipt_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S Etc/GMT").to_string()
}

fn millis(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

fn receipt_transaction(transaction: &Transaction) -> ReceiptTransaction {
    let revocation = transaction.revocation;
    ReceiptTransaction {
        quantity: "1".into(),
        product_id: transaction.product_id.clone(),
        transaction_id: transaction.id.clone(),
        original_transaction_id: transaction.original_id.clone(),
        purchase_date: receipt_date(transaction.purchase_date),
        purchase_date_ms: millis(transaction.purchase_date),
        original_purchase_date: receipt_date(transaction.original_purchase_date),
        original_purchase_date_ms: millis(transaction.original_purchase_date),
        expires_date: receipt_date(transaction.expires_date),
        expires_date_ms: millis(transaction.expires_date),
        web_order_line_item_id: transaction.web_order_line_item_id.clone(),
        is_trial_period: "false".into(),
        is_in_intro_offer_period: "false".into(),
        in_app_ownership_type: "PURCHASED".into(),
        subscription_group_identifier: transaction.subscription_group.clone(),
        app_account_token: transaction.app_account_token.map(|token| token.to_string()),
        cancellation_date: revocation.map(|revocation| receipt_date(revocation.at)),
        cancellation_date_ms: revocation.map(|revocation| millis(revocation.at)),
        cancellation_reason: revocation.map(|revocation| revocation.reason.code().to_string()),
    }
}

fn pending_renewal(store: &Store, subscription: &Subscription) -> PendingRenewalInfo {
    let (expiration_intent, grace_until) = match subscription.phase {
        Phase::Expired { intent } => (Some(intent.code()), None),
        Phase::GracePeriod { grace_until, .. } => (Some(2), Some(grace_until)),
        Phase::BillingRetry { .. } => (Some(2), None),
        Phase::Active | Phase::Revoked => (None, None),
    };
    PendingRenewalInfo {
        auto_renew_product_id: subscription.product_id.clone(),
        product_id: store
            .transaction(
                subscription.environment,
                subscription.latest_transaction_id(),
            )
            .map_or_else(
                || subscription.product_id.clone(),
                |latest| latest.product_id.clone(),
            ),
        original_transaction_id: subscription.original_transaction_id.clone(),
        auto_renew_status: u8::from(subscription.auto_renew).to_string(),
        expiration_intent: expiration_intent.map(|code| code.to_string()),
        is_in_billing_retry_period: u8::from(matches!(
            subscription.phase,
            Phase::GracePeriod { .. } | Phase::BillingRetry { .. }
        ))
        .to_string(),
        grace_period_expires_date: grace_until.map(receipt_date),
        grace_period_expires_date_ms: grace_until.map(millis),
    }
}

/// What `verifyReceipt` at `environment`'s endpoint answers.
pub(crate) fn verify(
    identity: &SigningIdentity,
    config: &AppleConfig,
    store: &Store,
    environment: Environment,
    request: &VerifyReceiptRequest,
    now: DateTime<Utc>,
) -> VerifyReceiptResponse {
    match verified(identity, config, store, environment, request, now) {
        Ok(response) => response,
        Err(status) => VerifyReceiptResponse::status(status),
    }
}

fn verified(
    identity: &SigningIdentity,
    config: &AppleConfig,
    store: &Store,
    environment: Environment,
    request: &VerifyReceiptRequest,
    now: DateTime<Utc>,
) -> Result<VerifyReceiptResponse, ReceiptStatus> {
    let data: String = request
        .receipt_data
        .as_deref()
        .ok_or(ReceiptStatus::MalformedReceipt)?
        .chars()
        .filter(|character| !character.is_whitespace())
        .collect();
    let jws = STANDARD
        .decode(data)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|jws| jws.split('.').count() == 3)
        .ok_or(ReceiptStatus::MalformedReceipt)?;
    let claims: ReceiptClaims = identity
        .verify(&jws)
        .filter(|claims: &ReceiptClaims| claims.bundle_id == config.bundle_id)
        .ok_or(ReceiptStatus::NotAuthenticated)?;
    let receipt_environment = if claims.receipt_type == receipt_type(Environment::Production) {
        Environment::Production
    } else {
        Environment::Sandbox
    };
    match (environment, receipt_environment) {
        (Environment::Production, Environment::Sandbox) => {
            return Err(ReceiptStatus::SandboxReceiptInProduction);
        }
        (Environment::Sandbox, Environment::Production) => {
            return Err(ReceiptStatus::ProductionReceiptInSandbox);
        }
        _ => {}
    }
    if request.password.as_deref() != Some(config.shared_secret.as_str()) {
        return Err(ReceiptStatus::WrongSharedSecret);
    }
    let issued_with = store
        .transaction(environment, &claims.transaction_id)
        .ok_or(ReceiptStatus::UnknownCustomer)?;
    let customer = &issued_with.customer;
    let transactions: Vec<&Transaction> =
        store.customer_transactions(environment, customer).collect();
    let subscriptions: Vec<&Subscription> = store
        .customer_subscriptions(environment, customer)
        .collect();
    let mut latest: Vec<&Transaction> = if request.exclude_old_transactions == Some(true) {
        subscriptions
            .iter()
            .filter_map(|subscription| {
                store.transaction(environment, subscription.latest_transaction_id())
            })
            .collect()
    } else {
        transactions.clone()
    };
    latest
        .sort_by_key(|transaction| std::cmp::Reverse((transaction.purchase_date, transaction.seq)));
    let newest = transactions
        .iter()
        .max_by_key(|transaction| transaction.seq)
        .copied()
        .unwrap_or(issued_with);
    let created = DateTime::from_timestamp_millis(claims.receipt_creation_date).unwrap_or(now);
    let first_purchase = transactions
        .first()
        .map_or(issued_with.original_purchase_date, |first| {
            first.purchase_date
        });
    let adam_id = super::payloads::app_apple_id(config, environment).unwrap_or(0);
    Ok(VerifyReceiptResponse {
        status: ReceiptStatus::Valid.code(),
        environment: Some(environment),
        receipt: Some(ReceiptInfo {
            receipt_type: claims.receipt_type.clone(),
            adam_id,
            app_item_id: adam_id,
            bundle_id: config.bundle_id.clone(),
            application_version: config.bundle_version.clone(),
            download_id: 0,
            version_external_identifier: 0,
            receipt_creation_date: receipt_date(created),
            receipt_creation_date_ms: millis(created),
            request_date: receipt_date(now),
            request_date_ms: millis(now),
            original_purchase_date: receipt_date(first_purchase),
            original_purchase_date_ms: millis(first_purchase),
            original_application_version: config.bundle_version.clone(),
            in_app: transactions
                .iter()
                .filter(|transaction| transaction.seq <= issued_with.seq)
                .map(|transaction| receipt_transaction(transaction))
                .collect(),
        }),
        latest_receipt_info: Some(latest.into_iter().map(receipt_transaction).collect()),
        latest_receipt: Some(issue(identity, config, newest, now)),
        pending_renewal_info: Some(
            subscriptions
                .iter()
                .map(|subscription| pending_renewal(store, subscription))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_apples() {
        let at = DateTime::from_timestamp_millis(1_900_000_000_123).unwrap();
        assert_eq!(receipt_date(at), "2030-03-17 17:46:40 Etc/GMT");
        assert_eq!(millis(at), "1900000000123");
    }
}
