//! The App Store simulator's control surface: the customer's side (buying in the app,
//! turning auto-renew off and on) and the store's (failing the next renewal, recovering the
//! billing, letting billing retry run out, refunding, revoking), as a Rust API for the host
//! and tests and as HTTP operations under `/control/apple` for everyone else. It also reads
//! the records and the notifications, settles and delivers now, sets the notification URLs
//! and resets.
//!
//! What plays the customer or the store makes the first attempt of the notifications it
//! caused before it answers.

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::delivery::NotificationDeliveryReport;
use super::notifications::{NotificationRecord, NotificationState};
use super::receipt;
use super::state::{
    Environment, Event, Order, Phase, Refusal, RenewalFailure, RevocationReason, Store,
    Subscription, Transaction,
};
use super::{AppleSimulator, NotificationUrls, Shared, SubscriptionPeriod};

/// The most notifications one listing shows.
const MAX_NOTIFICATIONS_LISTED: u32 = 1000;

#[derive(Tags)]
enum AppleControlTag {
    /// The App Store simulator's control surface: play the customer and the store.
    AppleControl,
}

/// A purchase in the app.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ApplePurchaseRequest", rename_all = "camelCase")]
pub struct PurchaseRequest {
    /// A configured product.
    pub product_id: String,
    /// Default `Sandbox` (TestFlight and sandbox accounts).
    pub environment: Option<Environment>,
    /// The app; must be the configured bundle id when given.
    pub bundle_id: Option<String>,
    /// The Apple Account that buys (any name, e.g. the app user's email); default a new one.
    /// A customer has at most one subscription per subscription group.
    pub customer: Option<String>,
    /// The app's UUID for its user, carried in the transactions as `appAccountToken`.
    pub app_account_token: Option<String>,
}

/// What the app gets from StoreKit after a purchase, and the notifications it caused.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ApplePurchase", rename_all = "camelCase")]
pub struct Purchase {
    pub environment: Environment,
    pub customer: String,
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub web_order_line_item_id: String,
    pub product_id: String,
    pub purchase_date: DateTime<Utc>,
    pub expires_date: DateTime<Utc>,
    /// The signed transaction: StoreKit 2's `jwsRepresentation`.
    pub signed_transaction: String,
    pub signed_renewal_info: String,
    /// StoreKit 1's app receipt (base64), for `verifyReceipt`.
    pub app_receipt: String,
    /// `SUBSCRIBED`, with its first attempt.
    pub notifications: Vec<NotificationRecord>,
}

/// A transaction as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleTransaction", rename_all = "camelCase")]
pub struct TransactionView {
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub web_order_line_item_id: String,
    pub product_id: String,
    pub purchase_date: DateTime<Utc>,
    pub expires_date: DateTime<Utc>,
    /// `PURCHASE` or `RENEWAL`.
    pub transaction_reason: String,
    pub price_milliunits: i64,
    pub currency: String,
    pub revocation_date: Option<DateTime<Utc>>,
    pub revocation_reason: Option<RevocationReason>,
}

/// A subscription as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleSubscription", rename_all = "camelCase")]
pub struct SubscriptionView {
    pub original_transaction_id: String,
    pub environment: Environment,
    pub customer: String,
    pub subscription_group_identifier: String,
    /// What renews next.
    pub product_id: String,
    /// Apple's status: 1 active, 2 expired, 3 billing retry, 4 grace period, 5 revoked.
    pub status: u8,
    pub auto_renew: bool,
    /// The latest transaction's expiry.
    pub expires_date: DateTime<Utc>,
    pub grace_period_expires_date: Option<DateTime<Utc>>,
    /// When billing retry runs out, while it lasts.
    pub billing_retry_ends_at: Option<DateTime<Utc>>,
    /// How the next renewal will fail, when armed.
    pub fail_next_renewal: Option<RenewalFailure>,
    pub app_account_token: Option<String>,
    /// Oldest first.
    pub transactions: Vec<TransactionView>,
}

/// A subscription after a control operation, and the notifications it caused (with their
/// first attempts).
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleControlOutcome", rename_all = "camelCase")]
pub struct AppleControlOutcome {
    pub subscription: SubscriptionView,
    pub notifications: Vec<NotificationRecord>,
}

/// What a settling round did.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleSettleReport", rename_all = "camelCase")]
pub struct AppleSettleReport {
    /// The notifications of what fell due (renewals, failures, expiries), in order.
    pub notifications: Vec<NotificationRecord>,
    /// Every delivery attempt made afterwards (these and earlier ones due).
    pub deliveries: NotificationDeliveryReport,
}

/// Sets (or, without `url`, removes) an environment's notification URL.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleNotificationUrlChange", rename_all = "camelCase")]
pub struct NotificationUrlChange {
    pub environment: Environment,
    pub url: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleFailNextRenewal", rename_all = "camelCase")]
pub struct FailNextRenewal {
    /// Default `billingRetry`.
    pub failure: Option<RenewalFailure>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleAutoRenew", rename_all = "camelCase")]
pub struct AutoRenew {
    pub enabled: bool,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleRefund", rename_all = "camelCase")]
pub struct Refund {
    /// Default `other`.
    pub reason: Option<RevocationReason>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleSubscriptions")]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleNotifications")]
pub struct NotificationList {
    /// Newest first.
    pub notifications: Vec<NotificationRecord>,
}

/// An in-app purchase key clients may sign tokens with.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleApiKey", rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub issuer_id: String,
    /// PKCS#8 PEM, when the simulator holds it.
    pub private_key_pem: Option<String>,
}

/// A product of the app.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleProduct", rename_all = "camelCase")]
pub struct ProductInfo {
    pub product_id: String,
    pub subscription_group_identifier: String,
    /// ISO 8601, e.g. `P1M`, `P7D`.
    pub period: String,
    pub price_milliunits: i64,
    pub currency: String,
}

/// How the simulated app is set up: what a client needs to talk to it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleAppInfo", rename_all = "camelCase")]
pub struct AppInfo {
    pub bundle_id: String,
    pub app_apple_id: i64,
    pub bundle_version: String,
    /// `verifyReceipt`'s `password`.
    pub shared_secret: String,
    pub api_keys: Vec<ApiKeyInfo>,
    pub products: Vec<ProductInfo>,
    /// The production App Store Server API and `verifyReceipt`.
    pub production_url: String,
    /// The sandbox's.
    pub sandbox_url: String,
    /// The root certificate (DER) to trust.
    pub root_certificate_url: String,
    pub root_certificate_pem_url: String,
    pub notification_urls: NotificationUrls,
}

/// Why the control surface refused.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AppleControlError")]
pub struct ControlError {
    /// `invalid_request`, `not_found` or `conflict`.
    pub error: String,
    pub message: String,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "unreadable_control_request")]
pub enum ControlAnswer<T: ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// The request is wrong: an unknown product, another bundle id, a malformed value.
    #[oai(status = 400)]
    BadRequest(Json<ControlError>),
    /// No such subscription or transaction.
    #[oai(status = 404)]
    NotFound(Json<ControlError>),
    /// The subscription's state does not allow it.
    #[oai(status = 409)]
    Conflict(Json<ControlError>),
}

fn unreadable_control_request<T: ToJSON>(error: poem::Error) -> ControlAnswer<T> {
    Err(Refusal::Invalid(error.to_string())).into()
}

impl<T: ToJSON> From<Result<T, Refusal>> for ControlAnswer<T> {
    fn from(result: Result<T, Refusal>) -> Self {
        let refusal = match result {
            Ok(value) => return Self::Ok(Json(value)),
            Err(refusal) => refusal,
        };
        let body = |error: &str| {
            Json(ControlError {
                error: error.to_owned(),
                message: refusal.to_string(),
            })
        };
        match refusal {
            Refusal::Invalid(_) | Refusal::NoSuchProduct(_) => {
                Self::BadRequest(body("invalid_request"))
            }
            Refusal::NoSuchSubscription(_) | Refusal::NoSuchTransaction(_) => {
                Self::NotFound(body("not_found"))
            }
            Refusal::AlreadySubscribed(_) | Refusal::WrongState(_) => {
                Self::Conflict(body("conflict"))
            }
        }
    }
}

fn transaction_view(transaction: &Transaction) -> TransactionView {
    TransactionView {
        transaction_id: transaction.id.clone(),
        original_transaction_id: transaction.original_id.clone(),
        web_order_line_item_id: transaction.web_order_line_item_id.clone(),
        product_id: transaction.product_id.clone(),
        purchase_date: transaction.purchase_date,
        expires_date: transaction.expires_date,
        transaction_reason: transaction.reason.as_str().to_owned(),
        price_milliunits: transaction.price_milliunits,
        currency: transaction.currency.clone(),
        revocation_date: transaction.revocation.map(|revocation| revocation.at),
        revocation_reason: transaction.revocation.map(|revocation| revocation.reason),
    }
}

fn subscription_view(store: &Store, subscription: &Subscription) -> SubscriptionView {
    let (grace_until, retry_until) = match subscription.phase {
        Phase::GracePeriod {
            grace_until,
            retry_until,
        } => (Some(grace_until), Some(retry_until)),
        Phase::BillingRetry { retry_until } => (None, Some(retry_until)),
        Phase::Active | Phase::Expired { .. } | Phase::Revoked => (None, None),
    };
    SubscriptionView {
        original_transaction_id: subscription.original_transaction_id.clone(),
        environment: subscription.environment,
        customer: subscription.customer.clone(),
        subscription_group_identifier: subscription.subscription_group.clone(),
        product_id: subscription.product_id.clone(),
        status: subscription.phase.status(),
        auto_renew: subscription.auto_renew,
        expires_date: store.expires(subscription),
        grace_period_expires_date: grace_until,
        billing_retry_ends_at: retry_until,
        fail_next_renewal: subscription.fail_next_renewal,
        app_account_token: subscription
            .app_account_token
            .map(|token| token.to_string()),
        transactions: subscription
            .transactions
            .iter()
            .filter_map(|id| store.transaction(subscription.environment, id))
            .map(transaction_view)
            .collect(),
    }
}

fn period_text(period: SubscriptionPeriod) -> String {
    match period {
        SubscriptionPeriod::Days(days) => format!("P{days}D"),
        SubscriptionPeriod::Months(months) => format!("P{months}M"),
    }
}

impl AppleSimulator {
    /// Signs and records the notification of `event` (if any) and views the subscription;
    /// the caller delivers.
    fn after_change(
        &self,
        shared: &mut Shared,
        original: &str,
        event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> Result<(SubscriptionView, Option<Uuid>), Refusal> {
        let Shared {
            store,
            notifications,
            notification_urls,
            ..
        } = shared;
        let made = event.and_then(|event| {
            self.record_event(notifications, notification_urls, store, event, now)
        });
        let subscription = store
            .subscription(original)
            .ok_or_else(|| Refusal::NoSuchSubscription(original.to_owned()))?;
        Ok((
            subscription_view(store, subscription),
            made.map(|record| record.notification_uuid),
        ))
    }

    /// The notifications, as they are now.
    fn notifications_by_uuid(&self, uuids: &[Uuid]) -> Vec<NotificationRecord> {
        let shared = self.lock();
        uuids
            .iter()
            .filter_map(|uuid| shared.notifications.get(*uuid).cloned())
            .collect()
    }

    /// Applies a change to a subscription, tells the developer, and answers with the
    /// subscription and the notification (after its first attempt).
    async fn change(
        &self,
        original: impl FnOnce(&Store) -> Result<String, Refusal>,
        apply: impl FnOnce(&mut Store, DateTime<Utc>) -> Result<Option<Event>, Refusal>,
    ) -> Result<AppleControlOutcome, Refusal> {
        let now = self.now();
        let (subscription, made) = {
            let mut shared = self.lock();
            let original = original(&shared.store)?;
            let event = apply(&mut shared.store, now)?;
            self.after_change(&mut shared, &original, event.as_ref(), now)?
        };
        let made: Vec<Uuid> = made.into_iter().collect();
        self.deliver_caused(&made).await;
        Ok(AppleControlOutcome {
            subscription,
            notifications: self.notifications_by_uuid(&made),
        })
    }

    /// The customer buys a subscription in the app: a new one (`SUBSCRIBED`/`INITIAL_BUY`)
    /// or, once the group's has ended, the same one again (`SUBSCRIBED`/`RESUBSCRIBE`).
    pub async fn purchase(&self, request: PurchaseRequest) -> Result<Purchase, Refusal> {
        let config = self.config();
        if let Some(bundle_id) = &request.bundle_id
            && *bundle_id != config.bundle_id
        {
            return Err(Refusal::Invalid(format!(
                "the simulated App Store sells only {}'s products, not {bundle_id}'s",
                config.bundle_id
            )));
        }
        let app_account_token = request
            .app_account_token
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| Refusal::Invalid("appAccountToken must be a UUID".into()))?;
        let customer = request
            .customer
            .unwrap_or_else(|| format!("customer-{}", Uuid::new_v4().simple()));
        if customer.trim().is_empty() {
            return Err(Refusal::Invalid("customer must not be empty".into()));
        }
        let order = Order {
            environment: request.environment.unwrap_or(Environment::Sandbox),
            customer,
            product_id: request.product_id,
            app_account_token,
        };
        let now = self.now();
        let (mut purchase, made) = {
            let mut shared = self.lock();
            let (transaction_id, event) = shared.store.purchase(&order, now)?;
            let (subscription, made) = self.after_change(
                &mut shared,
                &event.original_transaction_id,
                Some(&event),
                now,
            )?;
            let store = &shared.store;
            let transaction = store
                .transaction(order.environment, &transaction_id)
                .ok_or_else(|| Refusal::NoSuchTransaction(transaction_id.clone()))?;
            let stored = store
                .subscription(&event.original_transaction_id)
                .ok_or_else(|| {
                    Refusal::NoSuchSubscription(event.original_transaction_id.clone())
                })?;
            let renderer = self.renderer(now);
            (
                Purchase {
                    environment: order.environment,
                    customer: subscription.customer,
                    transaction_id: transaction.id.clone(),
                    original_transaction_id: transaction.original_id.clone(),
                    web_order_line_item_id: transaction.web_order_line_item_id.clone(),
                    product_id: transaction.product_id.clone(),
                    purchase_date: transaction.purchase_date,
                    expires_date: transaction.expires_date,
                    signed_transaction: renderer.transaction(transaction),
                    signed_renewal_info: renderer.renewal_info(store, stored),
                    app_receipt: receipt::issue(self.identity(), config, transaction, now),
                    notifications: Vec::new(),
                },
                made,
            )
        };
        let made: Vec<Uuid> = made.into_iter().collect();
        self.deliver_caused(&made).await;
        purchase.notifications = self.notifications_by_uuid(&made);
        Ok(purchase)
    }

    /// Makes the subscription's next renewal fail, into a grace period or straight into
    /// billing retry. Nothing is told until the renewal is due.
    pub async fn fail_next_renewal(
        &self,
        original_transaction_id: &str,
        failure: RenewalFailure,
    ) -> Result<AppleControlOutcome, Refusal> {
        self.change(
            |_| Ok(original_transaction_id.to_owned()),
            |store, _| {
                store
                    .fail_next_renewal(original_transaction_id, failure)
                    .map(|()| None)
            },
        )
        .await
    }

    /// The billing recovers during a grace period or billing retry: a renewal now
    /// (`DID_RENEW`/`BILLING_RECOVERY`).
    pub async fn recover(
        &self,
        original_transaction_id: &str,
    ) -> Result<AppleControlOutcome, Refusal> {
        self.change(
            |_| Ok(original_transaction_id.to_owned()),
            |store, now| store.recover(original_transaction_id, now).map(Some),
        )
        .await
    }

    /// Billing retry runs out now (`EXPIRED`/`BILLING_RETRY`).
    pub async fn end_billing_retry(
        &self,
        original_transaction_id: &str,
    ) -> Result<AppleControlOutcome, Refusal> {
        self.change(
            |_| Ok(original_transaction_id.to_owned()),
            |store, _| store.end_billing_retry(original_transaction_id).map(Some),
        )
        .await
    }

    /// The customer turns auto-renew on or off (`DID_CHANGE_RENEWAL_STATUS`); with it off the
    /// subscription expires at the end of its period (`EXPIRED`/`VOLUNTARY`).
    pub async fn set_auto_renew(
        &self,
        original_transaction_id: &str,
        enabled: bool,
    ) -> Result<AppleControlOutcome, Refusal> {
        self.change(
            |_| Ok(original_transaction_id.to_owned()),
            |store, _| {
                store
                    .set_auto_renew(original_transaction_id, enabled)
                    .map(Some)
            },
        )
        .await
    }

    /// The App Store refunds a transaction (`REFUND`); refunding the latest revokes the
    /// subscription (status 5).
    pub async fn refund(
        &self,
        transaction_id: &str,
        reason: RevocationReason,
    ) -> Result<AppleControlOutcome, Refusal> {
        self.revoke_transaction(transaction_id, reason, true).await
    }

    /// The App Store revokes a transaction (`REVOKE`, as when Family Sharing ends); revoking
    /// the latest revokes the subscription (status 5).
    pub async fn revoke(&self, transaction_id: &str) -> Result<AppleControlOutcome, Refusal> {
        self.revoke_transaction(transaction_id, RevocationReason::Other, false)
            .await
    }

    async fn revoke_transaction(
        &self,
        transaction_id: &str,
        reason: RevocationReason,
        refunded: bool,
    ) -> Result<AppleControlOutcome, Refusal> {
        let original_of = |store: &Store| {
            [Environment::Production, Environment::Sandbox]
                .into_iter()
                .find_map(|environment| store.transaction(environment, transaction_id))
                .map(|transaction| transaction.original_id.clone())
                .ok_or_else(|| Refusal::NoSuchTransaction(transaction_id.to_owned()))
        };
        self.change(original_of, |store, now| {
            store
                .revoke(transaction_id, reason, refunded, now)
                .map(Some)
        })
        .await
    }

    /// One subscription, by its original transaction id.
    pub fn subscription(&self, original_transaction_id: &str) -> Option<SubscriptionView> {
        let shared = self.lock();
        shared
            .store
            .subscription(original_transaction_id)
            .map(|subscription| subscription_view(&shared.store, subscription))
    }

    /// Every subscription, oldest first.
    pub fn subscriptions(&self) -> Vec<SubscriptionView> {
        let shared = self.lock();
        shared
            .store
            .subscriptions()
            .into_iter()
            .map(|subscription| subscription_view(&shared.store, subscription))
            .collect()
    }

    /// Every notification kept, newest first, with every attempt.
    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.lock()
            .notifications
            .oldest_first()
            .rev()
            .cloned()
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) an environment's notification URL: where its
    /// notifications go from now on, retries included.
    pub fn set_notification_url(
        &self,
        environment: Environment,
        url: Option<String>,
    ) -> Result<NotificationUrls, Refusal> {
        if let Some(url) = &url {
            super::check_url("url", url).map_err(|error| Refusal::Invalid(error.to_string()))?;
        }
        let mut shared = self.lock();
        shared.notification_urls.set(environment, url);
        Ok(shared.notification_urls.clone())
    }

    pub fn notification_urls(&self) -> NotificationUrls {
        self.lock().notification_urls.clone()
    }

    /// Forgets every customer, subscription, transaction and notification, and sets the
    /// notification URLs back to the configured ones. Certificates, keys and ids (which keep
    /// counting) stay.
    pub fn reset(&self) {
        let mut shared = self.lock();
        shared.store.clear();
        shared.notifications.clear();
        shared.test_notifications.clear();
        shared.notification_urls = self.config().notification_urls.clone();
    }

    /// What a client needs to talk to the simulated app.
    pub fn app_info(&self) -> AppInfo {
        let config = self.config();
        let base = &config.public_base_url;
        AppInfo {
            bundle_id: config.bundle_id.clone(),
            app_apple_id: config.app_apple_id,
            bundle_version: config.bundle_version.clone(),
            shared_secret: config.shared_secret.clone(),
            api_keys: config
                .api_keys
                .iter()
                .map(|key| ApiKeyInfo {
                    key_id: key.key_id.clone(),
                    issuer_id: key.issuer_id.clone(),
                    private_key_pem: key.private_key_pem.clone(),
                })
                .collect(),
            products: config
                .products
                .iter()
                .map(|product| ProductInfo {
                    product_id: product.product_id.clone(),
                    subscription_group_identifier: product.subscription_group.clone(),
                    period: period_text(product.period),
                    price_milliunits: product.price_milliunits,
                    currency: product.currency.clone(),
                })
                .collect(),
            production_url: base.clone(),
            sandbox_url: format!("{base}/sandbox"),
            root_certificate_url: format!("{base}/root.cer"),
            root_certificate_pem_url: format!("{base}/root.pem"),
            notification_urls: self.notification_urls(),
        }
    }
}

/// The control surface, mounted by the host in its control OpenAPI service.
pub struct AppleControlApi {
    simulator: AppleSimulator,
}

impl AppleControlApi {
    pub(crate) fn new(simulator: AppleSimulator) -> Self {
        Self { simulator }
    }
}

#[OpenApi(prefix_path = "/control/apple", tag = "AppleControlTag::AppleControl")]
impl AppleControlApi {
    /// The simulated app
    ///
    /// Bundle id, app Apple id, shared secret, the in-app purchase keys (with the private
    /// key the simulator generated), the products, the base URLs, the root certificate's URL
    /// and the notification URLs.
    #[oai(path = "/app", method = "get", operation_id = "getAppleApp")]
    async fn app(&self) -> Json<AppInfo> {
        Json(self.simulator.app_info())
    }

    /// Buy a subscription as the customer
    ///
    /// What the app gets from StoreKit: the transaction ids, the signed transaction
    /// (`jwsRepresentation`), the renewal info and the app receipt; and the `SUBSCRIBED`
    /// notification after its first attempt.
    #[oai(
        path = "/purchases",
        method = "post",
        operation_id = "purchaseAppleSubscription"
    )]
    async fn purchase(&self, body: Json<PurchaseRequest>) -> ControlAnswer<Purchase> {
        self.simulator.purchase(body.0).await.into()
    }

    /// Subscriptions
    ///
    /// Oldest first; `environment` and `customer` keep some.
    #[oai(
        path = "/subscriptions",
        method = "get",
        operation_id = "listAppleSubscriptions"
    )]
    async fn subscriptions(
        &self,
        environment: Query<Option<Environment>>,
        customer: Query<Option<String>>,
    ) -> ControlAnswer<SubscriptionList> {
        let subscriptions = self
            .simulator
            .subscriptions()
            .into_iter()
            .filter(|subscription| {
                environment
                    .0
                    .is_none_or(|wanted| subscription.environment == wanted)
            })
            .filter(|subscription| {
                customer
                    .0
                    .as_ref()
                    .is_none_or(|wanted| &subscription.customer == wanted)
            })
            .collect();
        Ok(SubscriptionList { subscriptions }).into()
    }

    /// A subscription
    #[oai(
        path = "/subscriptions/:originalTransactionId",
        method = "get",
        operation_id = "getAppleSubscription"
    )]
    async fn subscription(
        &self,
        #[oai(name = "originalTransactionId")] original_transaction_id: Path<String>,
    ) -> ControlAnswer<SubscriptionView> {
        self.simulator
            .subscription(&original_transaction_id)
            .ok_or_else(|| Refusal::NoSuchSubscription(original_transaction_id.0.clone()))
            .into()
    }

    /// Make the next renewal fail
    ///
    /// `gracePeriod`: the customer keeps access through the grace period (status 4), then
    /// billing retry (status 3); `billingRetry` (default): billing retry at once. The
    /// notification comes when the renewal is due.
    #[oai(
        path = "/subscriptions/:originalTransactionId/fail_next_renewal",
        method = "post",
        operation_id = "failNextAppleRenewal"
    )]
    async fn fail_next_renewal(
        &self,
        #[oai(name = "originalTransactionId")] original_transaction_id: Path<String>,
        body: Json<FailNextRenewal>,
    ) -> ControlAnswer<AppleControlOutcome> {
        let failure = body.0.failure.unwrap_or(RenewalFailure::BillingRetry);
        self.simulator
            .fail_next_renewal(&original_transaction_id, failure)
            .await
            .into()
    }

    /// Recover the billing
    ///
    /// During a grace period or billing retry: renews now (`DID_RENEW`/`BILLING_RECOVERY`).
    #[oai(
        path = "/subscriptions/:originalTransactionId/recover",
        method = "post",
        operation_id = "recoverAppleSubscription"
    )]
    async fn recover(
        &self,
        #[oai(name = "originalTransactionId")] original_transaction_id: Path<String>,
    ) -> ControlAnswer<AppleControlOutcome> {
        self.simulator
            .recover(&original_transaction_id)
            .await
            .into()
    }

    /// Let billing retry run out now
    ///
    /// During a grace period or billing retry: expires now (`EXPIRED`/`BILLING_RETRY`).
    #[oai(
        path = "/subscriptions/:originalTransactionId/expire",
        method = "post",
        operation_id = "expireAppleSubscription"
    )]
    async fn expire(
        &self,
        #[oai(name = "originalTransactionId")] original_transaction_id: Path<String>,
    ) -> ControlAnswer<AppleControlOutcome> {
        self.simulator
            .end_billing_retry(&original_transaction_id)
            .await
            .into()
    }

    /// Turn auto-renew on or off as the customer
    ///
    /// `DID_CHANGE_RENEWAL_STATUS`; with auto-renew off the subscription expires at the end
    /// of its period (`EXPIRED`/`VOLUNTARY`).
    #[oai(
        path = "/subscriptions/:originalTransactionId/auto_renew",
        method = "post",
        operation_id = "setAppleAutoRenew"
    )]
    async fn auto_renew(
        &self,
        #[oai(name = "originalTransactionId")] original_transaction_id: Path<String>,
        body: Json<AutoRenew>,
    ) -> ControlAnswer<AppleControlOutcome> {
        self.simulator
            .set_auto_renew(&original_transaction_id, body.0.enabled)
            .await
            .into()
    }

    /// Refund a transaction
    ///
    /// `REFUND`; refunding the subscription's latest transaction revokes it (status 5).
    #[oai(
        path = "/transactions/:transactionId/refund",
        method = "post",
        operation_id = "refundAppleTransaction"
    )]
    async fn refund(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        body: Json<Refund>,
    ) -> ControlAnswer<AppleControlOutcome> {
        let reason = body.0.reason.unwrap_or(RevocationReason::Other);
        self.simulator.refund(&transaction_id, reason).await.into()
    }

    /// Revoke a transaction
    ///
    /// `REVOKE` (as when Family Sharing ends); revoking the latest transaction revokes the
    /// subscription (status 5).
    #[oai(
        path = "/transactions/:transactionId/revoke",
        method = "post",
        operation_id = "revokeAppleTransaction"
    )]
    async fn revoke(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlAnswer<AppleControlOutcome> {
        self.simulator.revoke(&transaction_id).await.into()
    }

    /// Notifications
    ///
    /// Newest first, each with its signed payload and every attempt. `state`, `environment`
    /// and `notificationType` keep some; `limit` (default 100, at most 1000) how many.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "listAppleNotifications"
    )]
    async fn notifications(
        &self,
        state: Query<Option<NotificationState>>,
        environment: Query<Option<Environment>>,
        #[oai(name = "notificationType")] notification_type: Query<Option<String>>,
        limit: Query<Option<u32>>,
    ) -> ControlAnswer<NotificationList> {
        let limit = limit.0.unwrap_or(100).clamp(1, MAX_NOTIFICATIONS_LISTED);
        let shared = self.simulator.lock();
        let notifications = shared
            .notifications
            .oldest_first()
            .rev()
            .filter(|record| state.0.is_none_or(|wanted| record.state == wanted))
            .filter(|record| {
                environment
                    .0
                    .is_none_or(|wanted| record.environment == wanted)
            })
            .filter(|record| {
                notification_type
                    .0
                    .as_ref()
                    .is_none_or(|wanted| &record.notification_type == wanted)
            })
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(NotificationList { notifications }).into()
    }

    /// Send the notifications due now
    ///
    /// Attempts every notification due at the simulator's current time (new ones, and
    /// retries whose time has come) and answers with the attempts made.
    #[oai(
        path = "/notifications/deliver",
        method = "post",
        operation_id = "deliverAppleNotifications"
    )]
    async fn deliver(&self) -> ControlAnswer<NotificationDeliveryReport> {
        Ok(self.simulator.deliver_due().await).into()
    }

    /// Set a notification URL
    ///
    /// Where an environment's notifications go from now on (retries included); without
    /// `url`, they are no longer sent.
    #[oai(
        path = "/notification_urls",
        method = "post",
        operation_id = "setAppleNotificationUrl"
    )]
    async fn set_notification_url(
        &self,
        body: Json<NotificationUrlChange>,
    ) -> ControlAnswer<NotificationUrls> {
        self.simulator
            .set_notification_url(body.0.environment, body.0.url)
            .into()
    }

    /// Settle what fell due
    ///
    /// After the clock moved: renewals, failed renewals, ends of grace periods and billing
    /// retry, expiries; then sends every notification due and answers with what was made and
    /// every attempt.
    #[oai(path = "/settle", method = "post", operation_id = "settleApple")]
    async fn settle(&self) -> ControlAnswer<AppleSettleReport> {
        Ok(self.simulator.settle().await).into()
    }

    /// Reset
    ///
    /// Forgets every customer, subscription, transaction and notification, and sets the
    /// notification URLs back to the configured ones.
    #[oai(path = "/reset", method = "post", operation_id = "resetApple")]
    async fn reset(&self) -> ControlAnswer<NotificationUrls> {
        self.simulator.reset();
        Ok(self.simulator.notification_urls()).into()
    }
}
