//! The Appstore simulator's control surface: the customer's side (buying on the device,
//! turning auto-renewal off and on, cancelling the order), the store's (failing the next
//! renewal, recovering the payment, refunding through customer service, revoking), the
//! Developer Console's (the Real-time Notifications endpoint and its confirmation token), and
//! the machinery's (the receipts, the SNS messages with every attempt, settling and
//! delivering now, RVS failures, reset), as a Rust API for the host and tests and as HTTP
//! operations under `/control/amazon` for everyone else.
//!
//! What an operation causes is delivered (first attempt) before it answers, and comes back in
//! its answer.

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::delivery::AmazonDeliveryReport;
use super::notifications::{DeliveryState, MessageRecord};
use super::receipts::{
    CancelReason, Ending, Environment, Order, Payment, Phase, Receipt, Refusal, RenewalFailure,
    Store, new_id,
};
use super::wire::RvsReceipt;
use super::{AmazonPeriod, AmazonSimulator, State};

/// The most messages one listing shows.
const MAX_MESSAGES_LISTED: u32 = 1000;

#[derive(Tags)]
enum AmazonControlTag {
    /// The Amazon Appstore simulator's control surface: play the customer, the store and the
    /// Developer Console.
    AmazonControl,
}

/// A purchase on the device.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonPurchaseRequest", rename_all = "camelCase")]
pub struct PurchaseRequest {
    /// The term SKU bought.
    pub sku: String,
    /// The customer's user id in the app; default a new customer.
    pub user_id: Option<String>,
    /// Bought with App Tester (RVS Cloud Sandbox receipts, no notifications); default false.
    pub sandbox: Option<bool>,
    /// Bought through Live App Testing (production, `betaProduct`); default false.
    pub live_app_testing: Option<bool>,
    /// ISO 3166-1 alpha-2; default `US`.
    pub country_code: Option<String>,
    /// The Amazon marketplace; default the country code.
    pub marketplace: Option<String>,
}

/// `PurchaseResponse.getUserData()`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonUserData", rename_all = "camelCase")]
pub struct UserData {
    pub user_id: String,
    pub marketplace: String,
}

/// `PurchaseResponse.getReceipt()`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonSdkReceipt", rename_all = "camelCase")]
pub struct SdkReceipt {
    pub receipt_id: String,
    /// The parent SKU (Amazon reports it, not the term SKU, for a subscription).
    pub sku: String,
    /// `SUBSCRIPTION`.
    pub product_type: String,
    /// Milliseconds since the epoch.
    pub purchase_date: i64,
    pub cancel_date: Option<i64>,
    pub term_sku: String,
}

/// What the Appstore SDK's `PurchaseResponse` hands the app, and the notifications the
/// purchase caused.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonPurchaseResponse", rename_all = "camelCase")]
pub struct AmazonPurchase {
    pub request_id: String,
    /// `SUCCESSFUL`.
    pub request_status: String,
    pub user_data: UserData,
    pub receipt: SdkReceipt,
    /// Made with App Tester: verify it with the RVS Cloud Sandbox.
    pub sandbox: bool,
    /// `SUBSCRIPTION_PURCHASED` (none in the sandbox), with its first attempt.
    pub notifications: Vec<MessageRecord>,
}

/// Where a receipt is.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AmazonReceiptState", rename_all = "camelCase")]
pub enum ReceiptState {
    Active,
    GracePeriod,
    BillingRetry,
    Ended,
}

/// A term paid for (or a free trial).
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonPayment", rename_all = "camelCase")]
pub struct PaymentView {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub amount_minor: i64,
    pub currency: String,
    pub free_trial: bool,
    pub refunded_at: Option<DateTime<Utc>>,
}

impl From<&Payment> for PaymentView {
    fn from(payment: &Payment) -> Self {
        Self {
            period_start: payment.period_start,
            period_end: payment.period_end,
            amount_minor: payment.amount_minor,
            currency: payment.currency.clone(),
            free_trial: payment.free_trial,
            refunded_at: payment.refunded_at,
        }
    }
}

/// A receipt as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonReceipt", rename_all = "camelCase")]
pub struct ReceiptView {
    pub receipt_id: String,
    pub user_id: String,
    pub environment: Environment,
    pub live_app_testing: bool,
    /// The parent SKU.
    pub sku: String,
    pub term_sku: String,
    pub marketplace: String,
    pub state: ReceiptState,
    /// How it ended, once it has.
    pub ending: Option<Ending>,
    /// Whether the customer may use the subscription now.
    pub has_access: bool,
    pub auto_renewing: bool,
    pub auto_renew_off_at: Option<DateTime<Utc>>,
    /// How the next renewal will fail, when armed.
    pub fail_next_renewal: Option<RenewalFailure>,
    /// The end of the terms paid for (`renewalDate`).
    pub paid_until: DateTime<Utc>,
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub billing_retry_ends_at: Option<DateTime<Utc>>,
    /// RVS answers 410 for it.
    pub revoked: bool,
    /// What RVS answers for it; absent once revoked.
    pub rvs: Option<RvsReceipt>,
    /// Oldest first.
    pub payments: Vec<PaymentView>,
}

impl ReceiptView {
    fn new(receipt: &Receipt, now: DateTime<Utc>) -> Self {
        let (state, ending, grace, retry) = match receipt.phase {
            Phase::Active => (ReceiptState::Active, None, None, None),
            Phase::GracePeriod { until, .. } => {
                (ReceiptState::GracePeriod, None, Some(until), None)
            }
            Phase::BillingRetry { until, .. } => {
                (ReceiptState::BillingRetry, None, None, Some(until))
            }
            Phase::Ended { how, .. } => (ReceiptState::Ended, Some(how), None, None),
        };
        Self {
            receipt_id: receipt.receipt_id.clone(),
            user_id: receipt.user_id.clone(),
            environment: receipt.environment,
            live_app_testing: receipt.live_app_testing,
            sku: receipt.parent_sku.clone(),
            term_sku: receipt.term.term_sku.clone(),
            marketplace: receipt.marketplace.clone(),
            state,
            ending,
            has_access: receipt.has_access(now),
            auto_renewing: receipt.auto_renewing,
            auto_renew_off_at: receipt.auto_renew_off_at,
            fail_next_renewal: receipt.fail_next_renewal,
            paid_until: receipt.paid_until(),
            grace_period_ends_at: grace,
            billing_retry_ends_at: retry,
            revoked: receipt.revoked,
            rvs: (!receipt.revoked).then(|| receipt.rvs()),
            payments: receipt.payments.iter().map(PaymentView::from).collect(),
        }
    }
}

/// A receipt after a control operation, and the notifications it caused (with their first
/// attempts).
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonReceiptOutcome", rename_all = "camelCase")]
pub struct ReceiptOutcome {
    pub receipt: ReceiptView,
    pub notifications: Vec<MessageRecord>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonReceipts")]
pub struct ReceiptList {
    /// Oldest first.
    pub receipts: Vec<ReceiptView>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonFailNextRenewal", rename_all = "camelCase")]
pub struct FailNextRenewal {
    /// Default `gracePeriod`.
    pub failure: Option<RenewalFailure>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonAutoRenew", rename_all = "camelCase")]
pub struct AutoRenew {
    pub enabled: bool,
}

/// The confirmed subscription of the Real-time Notifications topic.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AmazonConfirmedSubscription", rename_all = "camelCase")]
pub struct ConfirmedSubscription {
    pub subscription_arn: String,
    pub endpoint: String,
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// A subscription awaiting confirmation.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AmazonPendingSubscription", rename_all = "camelCase")]
pub struct PendingSubscription {
    pub subscription_arn: String,
    pub endpoint: String,
    /// What the Developer Console's "Confirmation token" field takes.
    pub token: String,
    /// What a GET confirms it with.
    pub subscribe_url: String,
    pub requested_at: DateTime<Utc>,
}

/// The Real-time Notifications topic and its subscription.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AmazonRtnSettings", rename_all = "camelCase")]
pub struct AmazonRtnSettings {
    pub topic_arn: String,
    /// Where notifications go now; absent: nowhere (they are dropped).
    pub confirmed: Option<ConfirmedSubscription>,
    /// An endpoint registered and not confirmed yet: nothing is delivered to it.
    pub pending_confirmation: Option<PendingSubscription>,
    /// `1` (RSA-SHA1) or `2` (RSA-SHA256).
    pub signature_version: String,
    pub signing_cert_url: String,
}

/// A new endpoint (pending confirmation), or (no `endpoint`) none.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonRtnEndpointRequest", rename_all = "camelCase")]
pub struct RtnEndpointRequest {
    /// http(s); absent or null removes every subscription.
    pub endpoint: Option<String>,
}

/// The settings after a change, and the confirmation messages sent (first attempts).
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonRtnChange", rename_all = "camelCase")]
pub struct RtnChange {
    pub settings: AmazonRtnSettings,
    pub messages: Vec<MessageRecord>,
}

/// The token of a `SubscriptionConfirmation`, as pasted in the Developer Console.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonRtnConfirmation", rename_all = "camelCase")]
pub struct RtnConfirmation {
    pub token: String,
}

/// What RVS answers its next request with.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonRvsFailure", rename_all = "camelCase")]
pub struct RvsFailure {
    /// 429, or 500 to 599.
    pub status: u16,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonMessages")]
pub struct MessageList {
    /// Newest first.
    pub messages: Vec<MessageRecord>,
}

/// A term SKU as configured.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonTermSku", rename_all = "camelCase")]
pub struct TermSkuInfo {
    pub term_sku: String,
    /// As RVS writes it, e.g. `1 Month`.
    pub term: String,
    pub price_minor: i64,
    pub currency: String,
    /// ISO 8601, e.g. `P7D`.
    pub free_trial: Option<String>,
    pub grace_period_days: u32,
    pub billing_retry_days: u32,
}

/// A subscription as configured.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonSubscriptionProduct", rename_all = "camelCase")]
pub struct ProductInfo {
    pub parent_sku: String,
    pub terms: Vec<TermSkuInfo>,
}

/// How the simulated app is set up: what a client needs to talk to it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonAppInfo", rename_all = "camelCase")]
pub struct AmazonAppInfo {
    pub app_package_name: String,
    pub shared_secret: String,
    pub products: Vec<ProductInfo>,
    /// RVS production's base (Amazon's `https://appstore-sdk.amazon.com`).
    pub rvs_production_url: String,
    /// The RVS Cloud Sandbox's base (`https://appstore-sdk.amazon.com/sandbox`).
    pub rvs_sandbox_url: String,
    /// SNS's base: every `SigningCertURL`, `SubscribeURL` and `UnsubscribeURL` starts with it.
    pub sns_url: String,
    pub signing_cert_url: String,
    pub topic_arn: String,
}

/// Everything the simulated Appstore holds.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonState", rename_all = "camelCase")]
pub struct AmazonState {
    pub app: AmazonAppInfo,
    /// Oldest first.
    pub receipts: Vec<ReceiptView>,
    pub rtn: AmazonRtnSettings,
}

/// Why the control surface refused.
#[derive(Object, Debug, Clone)]
#[oai(rename = "AmazonControlError")]
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
    /// The request is wrong: an unknown SKU, a malformed value.
    #[oai(status = 400)]
    BadRequest(Json<ControlError>),
    /// No such receipt.
    #[oai(status = 404)]
    NotFound(Json<ControlError>),
    /// The receipt's state does not allow it, or the customer has the subscription already.
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
            Refusal::Invalid(_) | Refusal::NoSuchSku(_) => {
                Self::BadRequest(body("invalid_request"))
            }
            Refusal::NoSuchReceipt(_) => Self::NotFound(body("not_found")),
            Refusal::AlreadySubscribed(_) | Refusal::WrongState(_) => {
                Self::Conflict(body("conflict"))
            }
        }
    }
}

fn period_text(period: AmazonPeriod) -> String {
    match period {
        AmazonPeriod::Days(days) => format!("P{days}D"),
        AmazonPeriod::Months(months) => format!("P{months}M"),
    }
}

/// A user id usable in RVS's path: 1 to 128 printable ASCII characters, none of `/?#%`.
fn check_user_id(user_id: &str) -> Result<(), Refusal> {
    let usable = (1..=128).contains(&user_id.len())
        && user_id
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '?' | '#' | '%'));
    if usable {
        Ok(())
    } else {
        Err(Refusal::Invalid(
            "userId must be 1 to 128 printable ASCII characters without / ? # %".into(),
        ))
    }
}

fn check_country(code: &str) -> Result<(), Refusal> {
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Refusal::Invalid(
            "countryCode must be ISO 3166-1 alpha-2, e.g. US".into(),
        ))
    }
}

impl AmazonSimulator {
    /// Applies a change to a receipt, delivers what it caused, and answers with the receipt
    /// and the notifications (after their first attempts).
    async fn change_receipt(
        &self,
        receipt_id: &str,
        apply: impl FnOnce(&mut Store, DateTime<Utc>) -> Result<(), Refusal>,
    ) -> Result<ReceiptOutcome, Refusal> {
        let (result, published) = self.with_state(|state, now| {
            apply(&mut state.store, now)?;
            state
                .store
                .receipt(receipt_id)
                .map(|receipt| ReceiptView::new(receipt, now))
        });
        let notifications = self.deliver_and_read(&published).await;
        result.map(|receipt| ReceiptOutcome {
            receipt,
            notifications,
        })
    }

    /// The customer buys a term SKU on the device: what the Appstore SDK's
    /// `PurchaseResponse` hands the app (`SUBSCRIPTION_PURCHASED`, first attempt made, in
    /// production).
    pub async fn purchase(&self, request: PurchaseRequest) -> Result<AmazonPurchase, Refusal> {
        let user_id = match request.user_id {
            Some(user_id) => {
                check_user_id(&user_id)?;
                user_id
            }
            None => new_id(""),
        };
        let country_code = request.country_code.unwrap_or_else(|| "US".into());
        check_country(&country_code)?;
        let marketplace = request.marketplace.unwrap_or_else(|| country_code.clone());
        check_country(&marketplace)?;
        let sandbox = request.sandbox.unwrap_or(false);
        let live_app_testing = request.live_app_testing.unwrap_or(false);
        if sandbox && live_app_testing {
            return Err(Refusal::Invalid(
                "a purchase is made either with App Tester (sandbox) or through Live App Testing"
                    .into(),
            ));
        }
        let order = Order {
            term_sku: request.sku,
            user_id,
            environment: if sandbox {
                Environment::Sandbox
            } else {
                Environment::Production
            },
            live_app_testing,
            country_code,
            marketplace,
        };
        let (result, published) = self.with_state(|state, now| {
            state
                .store
                .purchase(&order, now)
                .map(|receipt| AmazonPurchase {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    request_status: "SUCCESSFUL".into(),
                    user_data: UserData {
                        user_id: receipt.user_id.clone(),
                        marketplace: receipt.marketplace.clone(),
                    },
                    receipt: SdkReceipt {
                        receipt_id: receipt.receipt_id.clone(),
                        sku: receipt.parent_sku.clone(),
                        product_type: "SUBSCRIPTION".into(),
                        purchase_date: receipt.purchase_date.timestamp_millis(),
                        cancel_date: None,
                        term_sku: receipt.term.term_sku.clone(),
                    },
                    sandbox,
                    notifications: Vec::new(),
                })
        });
        let notifications = self.deliver_and_read(&published).await;
        result.map(|mut purchase| {
            purchase.notifications = notifications;
            purchase
        })
    }

    /// Makes the receipt's next renewal fail. Nothing is told until the renewal is due.
    pub async fn fail_next_renewal(
        &self,
        receipt_id: &str,
        failure: RenewalFailure,
    ) -> Result<ReceiptOutcome, Refusal> {
        self.change_receipt(receipt_id, |store, _| {
            store.fail_next_renewal(receipt_id, failure)
        })
        .await
    }

    /// The customer fixes the payment (see [`Store::recover`]).
    pub async fn recover(&self, receipt_id: &str) -> Result<ReceiptOutcome, Refusal> {
        self.change_receipt(receipt_id, |store, now| store.recover(receipt_id, now))
            .await
    }

    /// The customer turns auto-renewal on or off.
    pub async fn set_auto_renew(
        &self,
        receipt_id: &str,
        enabled: bool,
    ) -> Result<ReceiptOutcome, Refusal> {
        self.change_receipt(receipt_id, |store, now| {
            store.set_auto_renew(receipt_id, enabled, now)
        })
        .await
    }

    /// The customer cancels the order: access ends now, `cancelReason` 1.
    pub async fn cancel(&self, receipt_id: &str) -> Result<ReceiptOutcome, Refusal> {
        self.change_receipt(receipt_id, |store, now| {
            store.cancel(receipt_id, CancelReason::Customer, now)
        })
        .await
    }

    /// Amazon's customer service cancels and refunds: access ends now, `cancelReason` 2.
    pub async fn refund(&self, receipt_id: &str) -> Result<ReceiptOutcome, Refusal> {
        self.change_receipt(receipt_id, |store, now| {
            store.cancel(receipt_id, CancelReason::System, now)
        })
        .await
    }

    /// The receipt is revoked: RVS answers 410 for it.
    pub async fn revoke(&self, receipt_id: &str) -> Result<ReceiptOutcome, Refusal> {
        self.change_receipt(receipt_id, |store, now| store.revoke(receipt_id, now))
            .await
    }

    /// One receipt, brought up to the host's `Now`.
    pub fn receipt(&self, receipt_id: &str) -> Option<ReceiptView> {
        let (view, _) = self.with_state(|state, now| {
            state
                .store
                .receipt(receipt_id)
                .ok()
                .map(|receipt| ReceiptView::new(receipt, now))
        });
        view
    }

    /// Every receipt, oldest first.
    pub fn receipts(&self) -> Vec<ReceiptView> {
        let (views, _) = self.with_state(|state, now| {
            state
                .store
                .receipts()
                .into_iter()
                .map(|receipt| ReceiptView::new(receipt, now))
                .collect()
        });
        views
    }

    /// Every message kept, newest first, with every attempt.
    pub fn messages(&self) -> Vec<MessageRecord> {
        self.lock().topic.oldest_first().rev().cloned().collect()
    }

    /// The topic and its subscriptions.
    pub fn rtn_settings(&self) -> AmazonRtnSettings {
        let state = self.lock();
        self.settings_of(&state)
    }

    fn settings_of(&self, state: &State) -> AmazonRtnSettings {
        AmazonRtnSettings {
            topic_arn: state.topic.arn.clone(),
            confirmed: state
                .topic
                .confirmed()
                .map(|subscription| ConfirmedSubscription {
                    subscription_arn: subscription.arn.clone(),
                    endpoint: subscription.endpoint.clone(),
                    confirmed_at: subscription.confirmed_at,
                }),
            pending_confirmation: state
                .topic
                .awaiting()
                .map(|subscription| PendingSubscription {
                    subscription_arn: subscription.arn.clone(),
                    endpoint: subscription.endpoint.clone(),
                    token: subscription.token.clone(),
                    subscribe_url: self.subscribe_url(&subscription.token),
                    requested_at: subscription.requested_at,
                }),
            signature_version: self.config().signature_version.as_str().into(),
            signing_cert_url: self.signing_certificate_url(),
        }
    }

    /// Confirms the subscription awaiting `token`, as the Developer Console's confirmation
    /// token field does.
    pub fn confirm_subscription(&self, token: &str) -> Result<AmazonRtnSettings, Refusal> {
        let topic_arn = self.config().topic_arn.clone();
        let (result, _) = self.with_state(|state, now| {
            state
                .topic
                .confirm(&topic_arn, token, now)
                .map(|_| ())
                .map_err(|refusal| Refusal::Invalid(refusal.to_string()))?;
            Ok(self.settings_of(state))
        });
        result
    }

    /// Makes RVS answer its next request with `status` (429, or 500 to 599).
    pub fn fail_next_rvs_request(&self, status: u16) -> Result<(), Refusal> {
        if status != 429 && !(500..=599).contains(&status) {
            return Err(Refusal::Invalid("status must be 429 or 500 to 599".into()));
        }
        self.lock().fail_next_rvs = Some(status);
        Ok(())
    }

    /// Forgets every receipt, customer and message. The subscriptions, the signing
    /// certificate and the configuration stay.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.store.clear();
        state.topic.clear_messages();
        state.fail_next_rvs = None;
    }

    /// What a client needs to talk to the simulated app.
    pub fn app_info(&self) -> AmazonAppInfo {
        let config = self.config();
        AmazonAppInfo {
            app_package_name: config.app_package_name.clone(),
            shared_secret: config.shared_secret.clone(),
            products: config
                .products
                .iter()
                .map(|product| ProductInfo {
                    parent_sku: product.parent_sku.clone(),
                    terms: product
                        .terms
                        .iter()
                        .map(|term| TermSkuInfo {
                            term_sku: term.term_sku.clone(),
                            term: term.term.text().into(),
                            price_minor: term.price_minor,
                            currency: term.currency.clone(),
                            free_trial: term.free_trial.map(period_text),
                            grace_period_days: term.grace_period_days,
                            billing_retry_days: term.billing_retry_days,
                        })
                        .collect(),
                })
                .collect(),
            rvs_production_url: self.rvs_production_url(),
            rvs_sandbox_url: self.rvs_sandbox_url(),
            sns_url: self.sns_base_url(),
            signing_cert_url: self.signing_certificate_url(),
            topic_arn: config.topic_arn.clone(),
        }
    }
}

/// The control surface, mounted by the host in its control OpenAPI service.
pub struct AmazonControlApi {
    simulator: AmazonSimulator,
}

impl AmazonControlApi {
    pub(crate) fn new(simulator: AmazonSimulator) -> Self {
        Self { simulator }
    }
}

#[OpenApi(
    prefix_path = "/control/amazon",
    tag = "AmazonControlTag::AmazonControl"
)]
impl AmazonControlApi {
    /// The simulated app
    ///
    /// Package name, shared secret, the subscriptions and their term SKUs, the RVS base URLs
    /// (production and sandbox), SNS's base URL, the signing certificate's URL and the topic.
    #[oai(path = "/app", method = "get", operation_id = "getAmazonApp")]
    async fn app(&self) -> Json<AmazonAppInfo> {
        Json(self.simulator.app_info())
    }

    /// Buy a term SKU as the customer
    ///
    /// What the app gets from the Appstore SDK (`PurchaseResponse`: user id, marketplace,
    /// receipt id, parent SKU and term SKU), and the `SUBSCRIPTION_PURCHASED` notification
    /// after its first attempt (none for an App Tester purchase). A customer has one running
    /// subscription per parent SKU; a free trial is given once per customer and subscription.
    #[oai(
        path = "/purchases",
        method = "post",
        operation_id = "purchaseAmazonSubscription"
    )]
    async fn purchase(&self, body: Json<PurchaseRequest>) -> ControlAnswer<AmazonPurchase> {
        self.simulator.purchase(body.0).await.into()
    }

    /// Receipts
    ///
    /// Oldest first; `userId` keeps one customer's.
    #[oai(
        path = "/receipts",
        method = "get",
        operation_id = "listAmazonReceipts"
    )]
    async fn receipts(
        &self,
        #[oai(name = "userId")] user_id: Query<Option<String>>,
    ) -> ControlAnswer<ReceiptList> {
        let receipts = self
            .simulator
            .receipts()
            .into_iter()
            .filter(|receipt| {
                user_id
                    .0
                    .as_ref()
                    .is_none_or(|user| &receipt.user_id == user)
            })
            .collect();
        Ok(ReceiptList { receipts }).into()
    }

    /// A receipt
    ///
    /// With what RVS answers for it, and every term paid.
    #[oai(
        path = "/receipts/:receiptId",
        method = "get",
        operation_id = "getAmazonReceipt"
    )]
    async fn receipt(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
    ) -> ControlAnswer<ReceiptView> {
        self.simulator
            .receipt(&receipt_id)
            .ok_or_else(|| Refusal::NoSuchReceipt(receipt_id.0.clone()))
            .into()
    }

    /// Make the next renewal fail
    ///
    /// `gracePeriod` (default): the customer keeps access through the term SKU's grace period
    /// (`SUBSCRIPTION_IN_GRACE_PERIOD`), then Amazon cancels it (`SUBSCRIPTION_CANCELLED`,
    /// `cancelReason` 2) unless recovered; `billingRetry`: no access while Amazon retries for
    /// the term's billing retry days (no notification; Amazon documents no account hold),
    /// then the same cancellation. Nothing is told until the renewal is due.
    #[oai(
        path = "/receipts/:receiptId/fail_next_renewal",
        method = "post",
        operation_id = "failNextAmazonRenewal"
    )]
    async fn fail_next_renewal(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
        body: Json<FailNextRenewal>,
    ) -> ControlAnswer<ReceiptOutcome> {
        let failure = body.0.failure.unwrap_or(RenewalFailure::GracePeriod);
        self.simulator
            .fail_next_renewal(&receipt_id, failure)
            .await
            .into()
    }

    /// Recover the payment
    ///
    /// In the grace period: renewed from the missed date (`SUBSCRIPTION_OUT_OF_GRACE_PERIOD`);
    /// in billing retry: a new term from now (`SUBSCRIPTION_RENEWED`); before the failure:
    /// the armed failure is disarmed.
    #[oai(
        path = "/receipts/:receiptId/recover",
        method = "post",
        operation_id = "recoverAmazonSubscription"
    )]
    async fn recover(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
    ) -> ControlAnswer<ReceiptOutcome> {
        self.simulator.recover(&receipt_id).await.into()
    }

    /// Turn auto-renewal on or off as the customer
    ///
    /// `SUBSCRIPTION_AUTO_RENEWAL_OFF`: `cancelDate` becomes the end of the term
    /// (`cancelReason` 1), `SUBSCRIPTION_SCHEDULED_TO_END` comes 10 (monthly) or 30 (annual)
    /// days before it, then `SUBSCRIPTION_EXPIRED`. `SUBSCRIPTION_AUTO_RENEWAL_ON` undoes it.
    #[oai(
        path = "/receipts/:receiptId/auto_renew",
        method = "post",
        operation_id = "setAmazonAutoRenew"
    )]
    async fn auto_renew(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
        body: Json<AutoRenew>,
    ) -> ControlAnswer<ReceiptOutcome> {
        self.simulator
            .set_auto_renew(&receipt_id, body.0.enabled)
            .await
            .into()
    }

    /// Cancel the order as the customer
    ///
    /// Access ends now and the latest term is refunded: `cancelDate` now, `cancelReason` 1,
    /// `SUBSCRIPTION_CANCELLED`.
    #[oai(
        path = "/receipts/:receiptId/cancel",
        method = "post",
        operation_id = "cancelAmazonSubscription"
    )]
    async fn cancel(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
    ) -> ControlAnswer<ReceiptOutcome> {
        self.simulator.cancel(&receipt_id).await.into()
    }

    /// Refund through customer service
    ///
    /// Amazon's customer service cancels and refunds at the customer's request: access ends
    /// now, `cancelDate` now, `cancelReason` 2, `SUBSCRIPTION_CANCELLED`.
    #[oai(
        path = "/receipts/:receiptId/refund",
        method = "post",
        operation_id = "refundAmazonSubscription"
    )]
    async fn refund(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
    ) -> ControlAnswer<ReceiptOutcome> {
        self.simulator.refund(&receipt_id).await.into()
    }

    /// Revoke the receipt
    ///
    /// RVS answers 410 ("no longer valid") for it from now on; a running subscription ends
    /// now and is refunded (`SUBSCRIPTION_CANCELLED`).
    #[oai(
        path = "/receipts/:receiptId/revoke",
        method = "post",
        operation_id = "revokeAmazonReceipt"
    )]
    async fn revoke(
        &self,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
    ) -> ControlAnswer<ReceiptOutcome> {
        self.simulator.revoke(&receipt_id).await.into()
    }

    /// SNS messages
    ///
    /// Newest first, each with its Real-time Notification, its signed body and every
    /// attempt. `state` keeps one kind (`pending` for what is still owed), `limit` (default
    /// 100, at most 1000) how many.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "listAmazonNotifications"
    )]
    async fn notifications(
        &self,
        state: Query<Option<DeliveryState>>,
        limit: Query<Option<u32>>,
    ) -> ControlAnswer<MessageList> {
        let limit = limit.0.unwrap_or(100).clamp(1, MAX_MESSAGES_LISTED);
        let messages = self
            .simulator
            .messages()
            .into_iter()
            .filter(|message| state.0.is_none_or(|wanted| message.state == wanted))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        Ok(MessageList { messages }).into()
    }

    /// Deliver the messages due now
    ///
    /// Settles what fell due on the simulator's clock, then attempts every message due (new
    /// ones, and retries whose time has come) and answers with the attempts.
    #[oai(
        path = "/notifications/deliver",
        method = "post",
        operation_id = "deliverAmazonNotifications"
    )]
    async fn deliver(&self) -> ControlAnswer<AmazonDeliveryReport> {
        Ok(self.simulator.deliver_due().await).into()
    }

    /// Settle what fell due
    ///
    /// After the clock moved: renewals, failed renewals, ends of grace periods and billing
    /// retry, expiries; then delivers every message due and answers with the attempts.
    #[oai(path = "/settle", method = "post", operation_id = "settleAmazon")]
    async fn settle(&self) -> ControlAnswer<AmazonDeliveryReport> {
        Ok(self.simulator.settle_due().await).into()
    }

    /// The Real-time Notifications endpoint
    #[oai(path = "/rtn", method = "get", operation_id = "getAmazonRtnSettings")]
    async fn rtn(&self) -> Json<AmazonRtnSettings> {
        Json(self.simulator.rtn_settings())
    }

    /// Set the Real-time Notifications endpoint
    ///
    /// What the Developer Console's "Add an Endpoint" does: the endpoint is subscribed
    /// pending confirmation and sent a `SubscriptionConfirmation` (first attempt before this
    /// answers); notifications keep going to the confirmed endpoint, if any, until it is
    /// confirmed. Without `endpoint`, every subscription is removed (each is sent an
    /// `UnsubscribeConfirmation`).
    #[oai(path = "/rtn", method = "put", operation_id = "setAmazonRtnEndpoint")]
    async fn set_rtn(&self, body: Json<RtnEndpointRequest>) -> ControlAnswer<RtnChange> {
        match self
            .simulator
            .set_notification_endpoint(body.0.endpoint)
            .await
        {
            Ok(messages) => Ok(RtnChange {
                settings: self.simulator.rtn_settings(),
                messages,
            })
            .into(),
            Err(error) => Err(Refusal::Invalid(error.to_string())).into(),
        }
    }

    /// Confirm the endpoint with its token
    ///
    /// What pasting the `SubscriptionConfirmation`'s `Token` in the Developer Console does;
    /// the same as a GET of its `SubscribeURL`.
    #[oai(
        path = "/rtn/confirm",
        method = "post",
        operation_id = "confirmAmazonRtnEndpoint"
    )]
    async fn confirm_rtn(&self, body: Json<RtnConfirmation>) -> ControlAnswer<AmazonRtnSettings> {
        self.simulator.confirm_subscription(&body.0.token).into()
    }

    /// Make RVS fail its next request
    ///
    /// The next `verifyReceiptId` (production or sandbox) is answered with `status` (429, or
    /// 500 to 599) whatever it asks.
    #[oai(
        path = "/rvs/fail_next",
        method = "post",
        operation_id = "failNextAmazonRvsRequest"
    )]
    async fn fail_next_rvs(&self, body: Json<RvsFailure>) -> ControlAnswer<RvsFailure> {
        self.simulator
            .fail_next_rvs_request(body.0.status)
            .map(|()| body.0)
            .into()
    }

    /// The store's state
    ///
    /// The app, every receipt (with what RVS answers for it, oldest first) and the Real-time
    /// Notifications subscription.
    #[oai(path = "/state", method = "get", operation_id = "getAmazonState")]
    async fn state(&self) -> Json<AmazonState> {
        Json(AmazonState {
            app: self.simulator.app_info(),
            receipts: self.simulator.receipts(),
            rtn: self.simulator.rtn_settings(),
        })
    }

    /// Reset
    ///
    /// Forgets every receipt, customer and message; the notification subscriptions and the
    /// signing certificate stay.
    #[oai(path = "/reset", method = "post", operation_id = "resetAmazon")]
    async fn reset(&self) -> ControlAnswer<AmazonRtnSettings> {
        self.simulator.reset();
        Ok(self.simulator.rtn_settings()).into()
    }
}
