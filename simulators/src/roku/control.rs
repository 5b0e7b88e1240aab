//! The Roku Pay simulator's control surface: the customer's side (buying on the device,
//! cancelling and resubscribing in their Roku account, paying after a failed renewal), the
//! payment side (failing the next renewal, letting recovery run out), Roku's (renewing now,
//! deactivating, refunding, revoking), and the machinery's (the account, the state, the
//! notification log, pushing now, the push endpoint, reset).
//!
//! Subscriptions are named by any of their payment transaction ids (the original one is
//! what the purchase answers). What an operation causes is pushed (first attempt) before it
//! answers, and the attempts come back in its answer.

use chrono::{DateTime, Utc};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::delivery::RokuPushReport;
use super::notifications::{NotificationMessage, PushAttempt, PushState, Redelivery};
use super::state::{NewPurchase, Phase, Refund, Refusal, RenewalFailure, Store, Subscription};
use super::wire::{RokuResult, TransactionResult, decimal};
use super::{
    JWKS_PATH, RokuBillingPeriod, RokuChannel, RokuPushConfig, RokuSimulator, SERVICE_PATH, State,
};

/// The most messages one listing shows.
const MAX_MESSAGES_LISTED: u32 = 1000;

#[derive(Tags)]
enum RokuControlTag {
    /// The Roku Pay simulator's control surface: play the customer, the device and Roku.
    RokuControl,
}

/// A subscription bought on the device.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuPurchaseRequest", rename_all = "camelCase")]
pub struct PurchaseRequest {
    /// The product code.
    pub product_id: String,
    /// Default: the channel that sells the product.
    pub channel_id: Option<u64>,
    /// The buyer's `rokuCustomerId` (1 to 64 printable ASCII characters); default a new
    /// customer. A customer has one live subscription per product, and one free trial.
    pub customer_id: Option<String>,
    /// Bought by a test user: nothing is charged (amounts 0).
    pub test_user: Option<bool>,
}

/// What ChannelStore's `doOrder` gives the channel app (its `orderStatus` item: `code`,
/// `purchaseId`, `qty`, `amount`, `total`), with what the simulator knows besides, and what
/// was pushed because of it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuOrder", rename_all = "camelCase")]
pub struct Order {
    /// The product code.
    pub code: String,
    /// The transaction id: what the app sends its backend, which validates it with
    /// `validate-transaction`.
    pub purchase_id: String,
    pub qty: u32,
    /// The price, before tax, in the currency's unit (`9.99`).
    pub amount: String,
    /// What was charged, tax included (`0.00` for a free trial or a test user).
    pub total: String,
    /// ISO 4217, lower case.
    pub currency: String,
    pub channel_id: u64,
    pub roku_customer_id: String,
    /// The same as `purchaseId` for a new subscription.
    pub original_transaction_id: String,
    pub is_free_trial: bool,
    pub expiration_date: DateTime<Utc>,
    /// The `Sale` push (first attempt).
    pub pushes: Vec<PushAttempt>,
}

/// Where a subscription is.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "RokuSubscriptionPhase", rename_all = "camelCase")]
pub enum PhaseView {
    Active,
    GracePeriod,
    OnHold,
    Ended,
}

/// A payment as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuPaymentView", rename_all = "camelCase")]
pub struct PaymentView {
    pub transaction_id: String,
    pub purchase_date: DateTime<Utc>,
    /// Before tax, in minor units.
    pub amount_minor: i64,
    pub free_trial: bool,
    pub refunded_minor: i64,
}

/// A refund as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuRefundView", rename_all = "camelCase")]
pub struct RefundView {
    /// For `validate-refund`.
    pub refund_id: String,
    /// The payment refunded.
    pub transaction_id: String,
    pub original_transaction_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub refunded_at: DateTime<Utc>,
    pub partner_reference_id: Option<String>,
    pub comments: Option<String>,
    /// The pushes this operation caused (first attempts).
    pub pushes: Vec<PushAttempt>,
}

impl RefundView {
    fn new(refund: &Refund, currency: &str) -> Self {
        Self {
            refund_id: refund.id.clone(),
            transaction_id: refund.transaction_id.clone(),
            original_transaction_id: refund.subscription.clone(),
            amount_minor: refund.amount_minor,
            currency: currency.to_owned(),
            refunded_at: refund.at,
            partner_reference_id: refund.partner_reference_id.clone(),
            comments: refund.comments.clone(),
            pushes: Vec::new(),
        }
    }
}

/// A subscription as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuSubscriptionView", rename_all = "camelCase")]
pub struct SubscriptionView {
    pub original_transaction_id: String,
    pub roku_customer_id: String,
    pub channel_id: u64,
    pub product_id: String,
    pub test_user: bool,
    pub phase: PhaseView,
    /// Off once the customer or the publisher cancelled.
    pub auto_renew: bool,
    /// When the grace period or the hold ends, while in one.
    pub recovery_ends_at: Option<DateTime<Utc>>,
    /// How the next renewal fails, when armed.
    pub fail_next_renewal: Option<RenewalFailure>,
    /// Oldest first.
    pub payments: Vec<PaymentView>,
    /// Oldest first.
    pub refunds: Vec<RefundView>,
    /// What `validate-transaction` answers for it now.
    pub validate_transaction: TransactionResult,
    /// The pushes this operation caused (first attempts).
    pub pushes: Vec<PushAttempt>,
}

impl SubscriptionView {
    fn new(store: &Store, subscription: &Subscription, now: DateTime<Utc>) -> Self {
        let (phase, recovery_ends_at) = match subscription.phase {
            Phase::Active => (PhaseView::Active, None),
            Phase::Grace { until, .. } => (PhaseView::GracePeriod, Some(until)),
            Phase::OnHold { until, .. } => (PhaseView::OnHold, Some(until)),
            Phase::Ended { .. } => (PhaseView::Ended, None),
        };
        let payments: Vec<PaymentView> = subscription
            .transactions
            .iter()
            .filter_map(|id| store.payment(id).ok())
            .map(|payment| PaymentView {
                transaction_id: payment.id.clone(),
                purchase_date: payment.purchased_at,
                amount_minor: payment.amount_minor,
                free_trial: payment.free_trial,
                refunded_minor: payment.refunded_minor,
            })
            .collect();
        let validate_transaction = store
            .payment(subscription.latest_transaction())
            .map(|latest| TransactionResult::subscription(subscription, latest, now))
            .unwrap_or_else(|refusal| TransactionResult::failure(&refusal.to_string()));
        Self {
            original_transaction_id: subscription.original_transaction_id.clone(),
            roku_customer_id: subscription.customer_id.clone(),
            channel_id: subscription.channel_id,
            product_id: subscription.product.code.clone(),
            test_user: subscription.test_user,
            phase,
            auto_renew: subscription.auto_renew,
            recovery_ends_at,
            fail_next_renewal: subscription.fail_next,
            payments,
            refunds: store
                .refunds_of(&subscription.original_transaction_id)
                .into_iter()
                .map(|refund| RefundView::new(refund, &subscription.product.currency))
                .collect(),
            validate_transaction,
            pushes: Vec::new(),
        }
    }
}

/// How the next renewal fails.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "RokuFailNextRenewal", rename_all = "camelCase")]
pub struct FailNextRenewal {
    /// Default `gracePeriod`.
    pub failure: Option<RenewalFailure>,
}

/// Auto-renewal, as the customer sets it in their Roku account.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuAutoRenew", rename_all = "camelCase")]
pub struct AutoRenew {
    /// `false`: the customer cancels (`Cancellation`; entitled to the expiration date);
    /// `true`: the customer keeps a cancelled subscription within its period
    /// (`Resubscribe`).
    pub auto_renew: bool,
}

/// A refund Roku (or the publisher) issues.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "RokuRefundRequestControl", rename_all = "camelCase")]
pub struct RefundPayment {
    /// Before tax, in minor units; default what is left of the payment.
    pub amount_minor: Option<i64>,
    pub comments: Option<String>,
    pub partner_reference_id: Option<String>,
}

/// The push notification endpoint.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "RokuPushSettings", rename_all = "camelCase")]
pub struct PushSettings {
    /// Absent: notifications go to no one.
    pub url: Option<String>,
    /// Secured pushes (JWT signature authentication).
    pub signed: bool,
}

/// A new push notification endpoint, or (no `url`) none.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuPushSettingsRequest", rename_all = "camelCase")]
pub struct PushSettingsRequest {
    /// http(s); absent or null removes the endpoint, dropping what it was still owed.
    pub url: Option<String>,
    /// Secured pushes (a JWS signed with the key at `/keys/partner-jwks.json`); default
    /// true. False: Roku's unsecured JSON pushes, acknowledged by echoing `responseKey`.
    pub signed: Option<bool>,
}

/// A product as configured.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuProductView", rename_all = "camelCase")]
pub struct ProductView {
    pub code: String,
    pub name: String,
    /// `monthly` or `yearly`.
    pub billing_period: String,
    pub price_minor: i64,
    pub currency: String,
    pub free_trial_days: u32,
    pub grace_period_days: u32,
    pub on_hold_days: u32,
}

/// A channel as configured.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuChannelView", rename_all = "camelCase")]
pub struct ChannelView {
    pub channel_id: u64,
    pub name: String,
    pub products: Vec<ProductView>,
}

impl From<&RokuChannel> for ChannelView {
    fn from(channel: &RokuChannel) -> Self {
        Self {
            channel_id: channel.channel_id,
            name: channel.name.clone(),
            products: channel
                .products
                .iter()
                .map(|product| ProductView {
                    code: product.code.clone(),
                    name: product.name.clone(),
                    billing_period: match product.billing_period {
                        RokuBillingPeriod::Monthly => "monthly".into(),
                        RokuBillingPeriod::Yearly => "yearly".into(),
                    },
                    price_minor: product.price_minor,
                    currency: product.currency.clone(),
                    free_trial_days: product.free_trial_days,
                    grace_period_days: product.grace_period_days,
                    on_hold_days: product.on_hold_days,
                })
                .collect(),
        }
    }
}

/// The simulated developer account: what a publisher's backend is configured with.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuAccount", rename_all = "camelCase")]
pub struct AccountView {
    /// What a Roku client takes in place of `https://apipub.roku.com`.
    pub api_base: String,
    /// `{apiBase}/listen/transaction-service.svc`.
    pub service_url: String,
    /// The developer's Roku Pay API keys, the active one first.
    pub partner_api_keys: Vec<String>,
    /// Where secured pushes' keys are (in place of
    /// `https://assets.cs.roku.com/keys/partner-jwks.json`).
    pub jwks_url: String,
    /// The `kid` secured pushes carry.
    pub key_id: Option<String>,
    pub channels: Vec<ChannelView>,
    pub push: PushSettings,
}

/// Published messages, newest first.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuNotificationLog")]
pub struct NotificationLog {
    pub messages: Vec<NotificationMessage>,
}

/// Subscriptions, oldest first.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuSubscriptionList")]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

/// Everything the account holds.
#[derive(Object, Debug, Clone)]
#[oai(rename = "RokuState")]
pub struct RokuState {
    pub account: AccountView,
    /// Oldest first.
    pub subscriptions: Vec<SubscriptionView>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "unreadable_request")]
pub enum ControlResponse<T: ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Refused in Roku's shape (`status` 1): a state that does not allow it, or a request
    /// that does not fit the account.
    #[oai(status = 400)]
    BadRequest(Json<RokuResult>),
    /// No payment has this transaction id.
    #[oai(status = 404)]
    NotFound(Json<RokuResult>),
}

impl<T: ToJSON> From<Result<T, Refusal>> for ControlResponse<T> {
    fn from(result: Result<T, Refusal>) -> Self {
        match result {
            Ok(body) => Self::Ok(Json(body)),
            Err(refusal @ Refusal::UnknownTransaction) => {
                Self::NotFound(Json(RokuResult::failure(&refusal.to_string())))
            }
            Err(refusal) => Self::BadRequest(Json(RokuResult::failure(&refusal.to_string()))),
        }
    }
}

/// A body or parameter poem cannot read, answered in Roku's shape.
fn unreadable_request<T: ToJSON>(error: poem::Error) -> ControlResponse<T> {
    ControlResponse::BadRequest(Json(RokuResult::failure(&error.to_string())))
}

#[derive(ApiResponse)]
pub enum ResetResponse {
    /// Every subscription, payment, refund and notification is forgotten.
    #[oai(status = 204)]
    Reset,
}

/// The control surface, mounted by the host in its control OpenAPI service.
pub struct SimRokuControlApi {
    simulator: RokuSimulator,
}

impl SimRokuControlApi {
    pub(crate) fn new(simulator: RokuSimulator) -> Self {
        Self { simulator }
    }

    /// Runs an operation on the subscription a payment belongs to, pushes what it caused,
    /// and answers the subscription after it.
    async fn on_subscription(
        &self,
        transaction_id: &str,
        operation: impl FnOnce(&mut State, &str, DateTime<Utc>) -> Result<(), Refusal>,
    ) -> ControlResponse<SubscriptionView> {
        let (result, published) = self.simulator.with_state(|state, now| {
            let original = state.store.original_of(transaction_id)?;
            operation(state, &original, now)?;
            let subscription = state.store.subscription(&original)?;
            Ok(SubscriptionView::new(&state.store, subscription, now))
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut view| {
                view.pushes = pushes;
                view
            })
            .into()
    }

    fn account(&self, state: &State) -> AccountView {
        let config = self.simulator.config();
        AccountView {
            api_base: config.public_base_url.clone(),
            service_url: format!("{}{SERVICE_PATH}", config.public_base_url),
            partner_api_keys: config.partner_api_keys.clone(),
            jwks_url: format!("{}{JWKS_PATH}", config.public_base_url),
            key_id: self.simulator.key().map(|key| key.kid.clone()),
            channels: config.channels.iter().map(ChannelView::from).collect(),
            push: push_settings(state),
        }
    }
}

fn push_settings(state: &State) -> PushSettings {
    let target = state.outbox.target();
    PushSettings {
        url: target.map(|target| target.url.clone()),
        signed: target.is_none_or(|target| target.signed),
    }
}

/// Minor units as the decimal `doOrder` shows (`9.99`).
fn amount_text(minor: i64, currency: &str) -> String {
    let exponent = super::wire::currency_exponent(currency) as usize;
    format!("{:.*}", exponent, decimal(minor, currency))
}

#[OpenApi(prefix_path = "/control/roku", tag = "RokuControlTag::RokuControl")]
impl SimRokuControlApi {
    /// The developer account
    ///
    /// The base URL, the Roku Pay API keys, where the push signing keys are and their
    /// `kid`, the channels and their products, and the push endpoint.
    #[oai(path = "/account", method = "get", operation_id = "getRokuAccount")]
    async fn get_account(&self) -> Json<AccountView> {
        Json(self.account(&self.simulator.lock()))
    }

    /// Buy a subscription as the customer
    ///
    /// What the customer does on the device (ChannelStore `doOrder`): the subscription
    /// starts now, paid (or a free trial) for its first period; a `Sale` push. Answers what
    /// `doOrder` gives the app: the `purchaseId` its backend validates.
    #[oai(
        path = "/purchases",
        method = "post",
        operation_id = "purchaseRokuSubscription"
    )]
    async fn purchase(&self, body: Json<PurchaseRequest>) -> ControlResponse<Order> {
        let request = body.0;
        let (result, published) = self.simulator.with_state(|state, now| {
            let original = state
                .store
                .purchase(
                    NewPurchase {
                        product_code: request.product_id,
                        channel_id: request.channel_id,
                        customer_id: request.customer_id,
                        test_user: request.test_user.unwrap_or(false),
                    },
                    now,
                )?
                .original_transaction_id
                .clone();
            let subscription = state.store.subscription(&original)?;
            let payment = state.store.payment(&original)?;
            let currency = &subscription.product.currency;
            Ok(Order {
                code: subscription.product.code.clone(),
                purchase_id: payment.id.clone(),
                qty: 1,
                amount: amount_text(subscription.product.price_minor, currency),
                total: amount_text(payment.amount_minor, currency),
                currency: currency.to_ascii_lowercase(),
                channel_id: subscription.channel_id,
                roku_customer_id: subscription.customer_id.clone(),
                original_transaction_id: subscription.original_transaction_id.clone(),
                is_free_trial: payment.free_trial,
                expiration_date: subscription.expiration(),
                pushes: Vec::new(),
            })
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut order| {
                order.pushes = pushes;
                order
            })
            .into()
    }

    /// Subscriptions
    ///
    /// Oldest first; `customer` keeps one customer's.
    #[oai(
        path = "/subscriptions",
        method = "get",
        operation_id = "listRokuSubscriptions"
    )]
    async fn subscriptions(
        &self,
        customer: Query<Option<String>>,
    ) -> ControlResponse<SubscriptionList> {
        let (subscriptions, _) = self.simulator.with_state(|state, now| {
            state
                .store
                .subscriptions()
                .into_iter()
                .filter(|subscription| {
                    customer
                        .0
                        .as_ref()
                        .is_none_or(|wanted| &subscription.customer_id == wanted)
                })
                .map(|subscription| SubscriptionView::new(&state.store, subscription, now))
                .collect()
        });
        Ok(SubscriptionList { subscriptions }).into()
    }

    /// A subscription
    ///
    /// Named by any of its payments' transaction ids.
    #[oai(
        path = "/subscriptions/:transactionId",
        method = "get",
        operation_id = "getRokuSubscription"
    )]
    async fn subscription(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&transaction_id, |_, _, _| Ok(()))
            .await
    }

    /// Renew now
    ///
    /// The current period ends now and the renewal runs now: a new payment and a `Sale`
    /// (or, when armed, the failure), the next period counted from now.
    #[oai(
        path = "/subscriptions/:transactionId/renew",
        method = "post",
        operation_id = "renewRokuSubscription"
    )]
    async fn renew(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&transaction_id, |state, original, now| {
            state.store.renew_now(original, now).map(|_| ())
        })
        .await
    }

    /// Make the next renewal fail
    ///
    /// `gracePeriod` (default): the charge is declined; the customer stays entitled through
    /// the grace period (`GraceInitiated`), then goes on hold (`OnHoldInitiated`), then is
    /// cancelled (`Cancellation`), unless they pay (`/recover`). After a free trial there is
    /// no grace period. `onHold`: on hold at once. The push comes when the renewal is due.
    #[oai(
        path = "/subscriptions/:transactionId/fail_next_renewal",
        method = "post",
        operation_id = "failNextRokuRenewal"
    )]
    async fn fail_next_renewal(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        body: Json<FailNextRenewal>,
    ) -> ControlResponse<SubscriptionView> {
        let failure = body.0.failure.unwrap_or(RenewalFailure::GracePeriod);
        self.on_subscription(&transaction_id, |state, original, _| {
            state.store.fail_next_renewal(original, failure).map(|_| ())
        })
        .await
    }

    /// The customer pays
    ///
    /// The customer updates their method of payment. In the grace period: charged now,
    /// billing date kept (`GraceRecovered`); on hold: charged now, billed from now on
    /// (`OnHoldRecovered`); current with a failure armed: the failure is disarmed.
    #[oai(
        path = "/subscriptions/:transactionId/recover",
        method = "post",
        operation_id = "recoverRokuSubscription"
    )]
    async fn recover(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&transaction_id, |state, original, now| {
            state.store.recover(original, now).map(|_| ())
        })
        .await
    }

    /// Let recovery run out now
    ///
    /// In the grace period or on hold: cancelled now, passively (`Cancellation` with the
    /// past `expirationDate`).
    #[oai(
        path = "/subscriptions/:transactionId/expire",
        method = "post",
        operation_id = "expireRokuSubscription"
    )]
    async fn expire(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&transaction_id, |state, original, now| {
            state.store.expire(original, now).map(|_| ())
        })
        .await
    }

    /// Turn auto-renewal off or on as the customer
    ///
    /// Off: the customer cancels in their Roku account (`Cancellation` with the future
    /// `expirationDate`; entitled until then; during recovery it ends now). On: the
    /// customer keeps the subscription they cancelled, within its period (`Resubscribe`).
    #[oai(
        path = "/subscriptions/:transactionId/auto_renew",
        method = "post",
        operation_id = "setRokuAutoRenew"
    )]
    async fn auto_renew(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        body: Json<AutoRenew>,
    ) -> ControlResponse<SubscriptionView> {
        let on = body.0.auto_renew;
        self.on_subscription(&transaction_id, |state, original, now| {
            if on {
                state.store.resubscribe(original, now).map(|_| ())
            } else {
                state.store.cancel(original, None, now).map(|_| ())
            }
        })
        .await
    }

    /// Deactivate now
    ///
    /// Roku ends the subscription now: not entitled, `cancelled`, `expirationDate` now (a
    /// `Cancellation` with today's date).
    #[oai(
        path = "/subscriptions/:transactionId/cancel",
        method = "post",
        operation_id = "cancelRokuSubscription"
    )]
    async fn cancel(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&transaction_id, |state, original, now| {
            state.store.deactivate_now(original, now).map(|_| ())
        })
        .await
    }

    /// Revoke
    ///
    /// As for an unauthorized purchase: the latest payment refunded in full (`Refund`),
    /// then the subscription deactivated now (`Cancellation`).
    #[oai(
        path = "/subscriptions/:transactionId/revoke",
        method = "post",
        operation_id = "revokeRokuSubscription"
    )]
    async fn revoke(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&transaction_id, |state, original, now| {
            state.store.revoke(original, now).map(|_| ())
        })
        .await
    }

    /// Refund a payment
    ///
    /// What Roku Pay (or `refund-subscription`) does: part or all of a payment refunded
    /// (`Refund`); the subscription goes on.
    #[oai(
        path = "/transactions/:transactionId/refund",
        method = "post",
        operation_id = "refundRokuPayment"
    )]
    async fn refund(
        &self,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        body: Json<RefundPayment>,
    ) -> ControlResponse<RefundView> {
        let request = body.0;
        let (result, published) = self.simulator.with_state(|state, now| {
            let currency = state
                .store
                .subscription_of(&transaction_id)?
                .product
                .currency
                .clone();
            let refund = state.store.refund_payment(
                &transaction_id,
                request.amount_minor,
                request.partner_reference_id,
                request.comments,
                now,
            )?;
            Ok(RefundView::new(refund, &currency))
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut view| {
                view.pushes = pushes;
                view
            })
            .into()
    }

    /// Notifications
    ///
    /// Published messages, newest first, each with its message and every push attempt.
    /// `state` keeps one kind (`pending` for what is still owed), `limit` (default 100, at
    /// most 1000) how many.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "listRokuNotifications"
    )]
    async fn notifications(
        &self,
        state: Query<Option<PushState>>,
        limit: Query<Option<u32>>,
    ) -> ControlResponse<NotificationLog> {
        let limit = limit.0.unwrap_or(100).clamp(1, MAX_MESSAGES_LISTED);
        let (messages, _) = self.simulator.with_state(|shared, _| {
            shared
                .outbox
                .newest_first()
                .filter(|message| state.0.is_none_or(|state| message.state == state))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .cloned()
                .collect()
        });
        Ok(NotificationLog { messages }).into()
    }

    /// Push a message again
    ///
    /// As Roku does when unsure the endpoint got it: the same message, with the same
    /// `responseKey` (and `x-Roku-message-key`, freshly signed), pushed now; the attempt is
    /// recorded with the others. Answers the message after the push.
    #[oai(
        path = "/notifications/:messageKey/redeliver",
        method = "post",
        operation_id = "redeliverRokuNotification"
    )]
    async fn redeliver(
        &self,
        #[oai(name = "messageKey")] message_key: Path<String>,
    ) -> ControlResponse<NotificationMessage> {
        let now = self.simulator.now();
        let queued = self.simulator.lock().outbox.redeliver(&message_key, now);
        if let Err(refusal) = queued {
            let body = Json(RokuResult::failure(&refusal.to_string()));
            return match refusal {
                Redelivery::UnknownMessage => ControlResponse::NotFound(body),
                Redelivery::NoEndpoint | Redelivery::InFlight => ControlResponse::BadRequest(body),
            };
        }
        self.simulator.deliver_due().await;
        match self.simulator.lock().outbox.message(&message_key) {
            Some(message) => ControlResponse::Ok(Json(message.clone())),
            None => ControlResponse::NotFound(Json(RokuResult::failure(
                &Redelivery::UnknownMessage.to_string(),
            ))),
        }
    }

    /// Push the notifications due now
    ///
    /// Settles what fell due on the simulator's clock, then pushes every message due (new
    /// ones, and retries whose time has come) and answers with the attempts, without
    /// waiting for the delivery loop.
    #[oai(
        path = "/notifications/deliver",
        method = "post",
        operation_id = "deliverRokuNotifications"
    )]
    async fn deliver(&self) -> Json<RokuPushReport> {
        Json(self.simulator.deliver_due().await)
    }

    /// The push notification endpoint
    #[oai(path = "/push", method = "get", operation_id = "getRokuPushSettings")]
    async fn push(&self) -> Json<PushSettings> {
        Json(push_settings(&self.simulator.lock()))
    }

    /// Set the push notification endpoint
    ///
    /// Where notifications go from now on (retries included), secured (`signed`, default)
    /// or not. Without `url`, the endpoint is removed and what it was still owed is
    /// dropped.
    #[oai(path = "/push", method = "put", operation_id = "setRokuPushSettings")]
    async fn set_push(&self, body: Json<PushSettingsRequest>) -> ControlResponse<PushSettings> {
        let request = body.0;
        let push = request.url.map(|url| RokuPushConfig {
            url,
            signed: request.signed.unwrap_or(true),
        });
        match self.simulator.set_push(push) {
            Ok(()) => ControlResponse::Ok(Json(push_settings(&self.simulator.lock()))),
            Err(error) => {
                ControlResponse::BadRequest(Json(RokuResult::failure(&error.to_string())))
            }
        }
    }

    /// The account's state
    ///
    /// The account and every subscription (with its payments, refunds and what
    /// `validate-transaction` answers for it), oldest first.
    #[oai(path = "/state", method = "get", operation_id = "getRokuState")]
    async fn state(&self) -> Json<RokuState> {
        let (state, _) = self.simulator.with_state(|state, now| RokuState {
            account: self.account(state),
            subscriptions: state
                .store
                .subscriptions()
                .into_iter()
                .map(|subscription| SubscriptionView::new(&state.store, subscription, now))
                .collect(),
        });
        Json(state)
    }

    /// Forget everything
    ///
    /// Every subscription, payment, refund and notification is forgotten; the account, its
    /// key and the push endpoint stay.
    #[oai(path = "/reset", method = "post", operation_id = "resetRoku")]
    async fn reset(&self) -> ResetResponse {
        let mut state = self.simulator.lock();
        state.store.clear();
        state.outbox.clear();
        ResetResponse::Reset
    }
}
