//! The App Store's signed payloads, field for field as Apple documents them: the transaction
//! (`JWSTransactionDecodedPayload`), the renewal info (`JWSRenewalInfoDecodedPayload`) and
//! the notification (`ResponseBodyV2DecodedPayload`). Times are milliseconds since the epoch;
//! there is no `aud`, `exp`, `iat` or `nbf`. A payload is rendered from the records as they
//! are at `now`, which is also its `signedDate`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::AppleConfig;
use super::certs::SigningIdentity;
use super::state::{
    Environment, NotificationType, Phase, Store, Subscription, Subtype, Transaction,
};

/// `type` of every product the simulator sells.
const AUTO_RENEWABLE_SUBSCRIPTION: &str = "Auto-Renewable Subscription";

/// Notifications' `version`.
const NOTIFICATION_VERSION: &str = "2.0";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TransactionPayload<'a> {
    transaction_id: &'a str,
    original_transaction_id: &'a str,
    web_order_line_item_id: &'a str,
    bundle_id: &'a str,
    product_id: &'a str,
    subscription_group_identifier: &'a str,
    purchase_date: i64,
    original_purchase_date: i64,
    expires_date: i64,
    quantity: u32,
    #[serde(rename = "type")]
    product_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_account_token: Option<Uuid>,
    in_app_ownership_type: &'static str,
    signed_date: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_reason: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_date: Option<i64>,
    environment: Environment,
    transaction_reason: &'static str,
    storefront: &'a str,
    storefront_id: &'a str,
    price: i64,
    currency: &'a str,
    app_transaction_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfoPayload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_intent: Option<u8>,
    original_transaction_id: &'a str,
    auto_renew_product_id: &'a str,
    product_id: &'a str,
    auto_renew_status: u8,
    is_in_billing_retry_period: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    grace_period_expires_date: Option<i64>,
    signed_date: i64,
    environment: Environment,
    recent_subscription_start_date: i64,
    renewal_date: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    renewal_price: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_account_token: Option<Uuid>,
    app_transaction_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationData<'a> {
    /// Absent in the sandbox, as in Apple's notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    app_apple_id: Option<i64>,
    bundle_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle_version: Option<&'a str>,
    environment: Environment,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_transaction_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_renewal_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u8>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationPayload<'a> {
    notification_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtype: Option<&'static str>,
    #[serde(rename = "notificationUUID")]
    notification_uuid: Uuid,
    data: NotificationData<'a>,
    version: &'static str,
    signed_date: i64,
}

/// A notification, signed: what is POSTed as `{"signedPayload": …}`.
#[derive(Debug, Clone)]
pub(crate) struct SignedNotification {
    pub notification_uuid: Uuid,
    pub signed_payload: String,
}

/// Renders and signs what the App Store hands out about the app's records.
pub(crate) struct Renderer<'a> {
    pub config: &'a AppleConfig,
    pub identity: &'a SigningIdentity,
    pub now: DateTime<Utc>,
}

/// Absent in the sandbox, as in Apple's answers and notifications.
pub(crate) fn app_apple_id(config: &AppleConfig, environment: Environment) -> Option<i64> {
    (environment == Environment::Production).then_some(config.app_apple_id)
}

impl Renderer<'_> {
    /// `signedTransactionInfo`.
    pub fn transaction(&self, transaction: &Transaction) -> String {
        self.identity.sign(&TransactionPayload {
            transaction_id: &transaction.id,
            original_transaction_id: &transaction.original_id,
            web_order_line_item_id: &transaction.web_order_line_item_id,
            bundle_id: &self.config.bundle_id,
            product_id: &transaction.product_id,
            subscription_group_identifier: &transaction.subscription_group,
            purchase_date: transaction.purchase_date.timestamp_millis(),
            original_purchase_date: transaction.original_purchase_date.timestamp_millis(),
            expires_date: transaction.expires_date.timestamp_millis(),
            quantity: 1,
            product_type: AUTO_RENEWABLE_SUBSCRIPTION,
            app_account_token: transaction.app_account_token,
            in_app_ownership_type: "PURCHASED",
            signed_date: self.now.timestamp_millis(),
            revocation_reason: transaction
                .revocation
                .map(|revocation| revocation.reason.code()),
            revocation_date: transaction
                .revocation
                .map(|revocation| revocation.at.timestamp_millis()),
            environment: transaction.environment,
            transaction_reason: transaction.reason.as_str(),
            storefront: &self.config.storefront,
            storefront_id: &self.config.storefront_id,
            price: transaction.price_milliunits,
            currency: &transaction.currency,
            app_transaction_id: &transaction.app_transaction_id,
        })
    }

    /// `signedRenewalInfo`.
    pub fn renewal_info(&self, store: &Store, subscription: &Subscription) -> String {
        let renewal_product = store.product(&subscription.product_id);
        let (expiration_intent, grace_period_expires) = match subscription.phase {
            Phase::Expired { intent } => (Some(intent.code()), None),
            Phase::GracePeriod { grace_until, .. } => (Some(2), Some(grace_until)),
            Phase::BillingRetry { .. } => (Some(2), None),
            Phase::Active | Phase::Revoked => (None, None),
        };
        self.identity.sign(&RenewalInfoPayload {
            expiration_intent,
            original_transaction_id: &subscription.original_transaction_id,
            auto_renew_product_id: &subscription.product_id,
            product_id: store
                .transaction(
                    subscription.environment,
                    subscription.latest_transaction_id(),
                )
                .map_or(subscription.product_id.as_str(), |latest| {
                    latest.product_id.as_str()
                }),
            auto_renew_status: u8::from(subscription.auto_renew),
            is_in_billing_retry_period: matches!(
                subscription.phase,
                Phase::GracePeriod { .. } | Phase::BillingRetry { .. }
            ),
            grace_period_expires_date: grace_period_expires.map(|at| at.timestamp_millis()),
            signed_date: self.now.timestamp_millis(),
            environment: subscription.environment,
            recent_subscription_start_date: subscription.recent_start.timestamp_millis(),
            renewal_date: store.expires(subscription).timestamp_millis(),
            renewal_price: renewal_product.map(|product| product.price_milliunits),
            currency: renewal_product.map(|product| product.currency.as_str()),
            app_account_token: subscription.app_account_token,
            app_transaction_id: &subscription.app_transaction_id,
        })
    }

    /// A notification about a subscription, showing `transaction` and the subscription's
    /// renewal info and status as they are now.
    pub fn notification(
        &self,
        store: &Store,
        notification_type: NotificationType,
        subtype: Option<Subtype>,
        subscription: &Subscription,
        transaction: &Transaction,
    ) -> SignedNotification {
        let data = NotificationData {
            app_apple_id: app_apple_id(self.config, subscription.environment),
            bundle_id: &self.config.bundle_id,
            bundle_version: Some(&self.config.bundle_version),
            environment: subscription.environment,
            signed_transaction_info: Some(self.transaction(transaction)),
            signed_renewal_info: Some(self.renewal_info(store, subscription)),
            status: Some(subscription.phase.status()),
        };
        self.sign_notification(notification_type, subtype, data)
    }

    /// Apple's `TEST` notification: only the app and the environment.
    pub fn test_notification(&self, environment: Environment) -> SignedNotification {
        let data = NotificationData {
            app_apple_id: app_apple_id(self.config, environment),
            bundle_id: &self.config.bundle_id,
            bundle_version: None,
            environment,
            signed_transaction_info: None,
            signed_renewal_info: None,
            status: None,
        };
        self.sign_notification(NotificationType::Test, None, data)
    }

    fn sign_notification(
        &self,
        notification_type: NotificationType,
        subtype: Option<Subtype>,
        data: NotificationData<'_>,
    ) -> SignedNotification {
        let notification_uuid = Uuid::new_v4();
        let signed_payload = self.identity.sign(&NotificationPayload {
            notification_type: notification_type.as_str(),
            subtype: subtype.map(Subtype::as_str),
            notification_uuid,
            data,
            version: NOTIFICATION_VERSION,
            signed_date: self.now.timestamp_millis(),
        });
        SignedNotification {
            notification_uuid,
            signed_payload,
        }
    }
}
