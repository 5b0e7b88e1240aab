//! In-app purchases: an app sends the receipt of a store purchase (Apple, Google, Roku,
//! Amazon), the store vouches for it, and the subscription engine takes it from there; from
//! then on the store's notifications move it. The store renews and retries, never the
//! billing clock: boxoffice only mirrors what the store says.
//!
//! Both routes end in [`Core::mirror_store_subscription`], which reads the store's view of
//! one subscription ([`StoreSubscription`]) onto the boxoffice subscription the purchase
//! started. It is idempotent and never goes back in time: a view older than the period
//! already recorded changes nothing, so a replayed or reordered notification is harmless.
//!
//! Invariant: one store purchase (`subscription_ref`) is one boxoffice subscription of one
//! customer (`subscriptions_origin_unique`); a receipt verified by a second customer is
//! refused, never moved.

use chrono::{DateTime, Utc};

use super::{Core, CoreError, Credential};
use crate::core::model::{
    Currency, Customer, Money, Package, PaymentProvider, StorePlatform, Subscription,
    SubscriptionStatus, Transaction, TransactionKind,
};
use crate::providers::amazon::{AmazonClient, AmazonNotificationContent, AmazonNotificationError};
use crate::providers::apple::{AppleClient, AppleNotificationError};
use crate::providers::google::{GoogleClient, GooglePushError};
use crate::providers::roku::{RokuClient, RokuNotificationError};
use crate::providers::store::{StoreRefusal, StoreState, StoreSubscription};
use crate::store::{JobChange, SubscriptionChange};

/// The store clients purchases are verified with; a store left out is not sold through.
#[derive(Clone, Default)]
pub struct StoreSettings {
    pub apple: Option<AppleClient>,
    pub google: Option<GoogleClient>,
    pub roku: Option<RokuClient>,
    pub amazon: Option<AmazonClient>,
}

/// The receipt an app forwards after a store purchase, as the app has it.
#[derive(Debug, Clone)]
pub struct StoreReceipt {
    pub platform: StorePlatform,
    /// Apple's transaction id, Google's purchase token, Roku's transaction id, Amazon's
    /// receipt id.
    pub purchase_identifier: Option<String>,
    /// Google: the app's package name.
    pub package_name: Option<String>,
    /// Google: the subscription's product id.
    pub product_id: Option<String>,
    /// Amazon: the Appstore user id.
    pub user_id: Option<String>,
    /// Apple: the base64 app receipt.
    pub raw: Option<String>,
    /// What the customer paid, as the app reports it; recorded as the purchase's
    /// transaction.
    pub payment: Option<Money>,
}

/// What became of a store notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreNotificationOutcome {
    Applied,
    /// Its id was seen before; nothing changed.
    Replayed,
    /// About nothing boxoffice mirrors (a test notification, a one-time product).
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreNotificationError {
    /// The signature, token or body does not check out.
    #[error("{0}")]
    Unverified(String),
    /// Verified, but about a purchase no customer has verified.
    #[error("no subscription is known for this purchase")]
    UnknownPurchase,
    #[error(transparent)]
    Core(#[from] CoreError),
}

fn provider_of(platform: StorePlatform) -> PaymentProvider {
    match platform {
        StorePlatform::Apple => PaymentProvider::Apple,
        StorePlatform::Google => PaymentProvider::Google,
        StorePlatform::Roku => PaymentProvider::Roku,
        StorePlatform::Amazon => PaymentProvider::Amazon,
    }
}

fn store_error(provider: PaymentProvider, refusal: StoreRefusal) -> CoreError {
    match refusal {
        StoreRefusal::Refused { code, message } => CoreError::StoreRefused { code, message },
        StoreRefusal::Unavailable(detail) => CoreError::ProviderUnavailable {
            provider: provider.store_name(),
            detail,
        },
    }
}

fn provider_unavailable(provider: &'static str, detail: String) -> StoreNotificationError {
    StoreNotificationError::Core(CoreError::ProviderUnavailable { provider, detail })
}

/// How a subscription stands once it mirrors the store: its status, when access ends, and
/// when (if) it ended.
fn mirrored_standing(
    view: &StoreSubscription,
) -> (
    SubscriptionStatus,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
) {
    match view.state {
        StoreState::Active => (SubscriptionStatus::Active, Some(view.expires_at), None),
        StoreState::GracePeriod { until } => (SubscriptionStatus::PastDue, Some(until), None),
        StoreState::BillingRetry => (SubscriptionStatus::PastDue, Some(view.expires_at), None),
        StoreState::Expired => (
            SubscriptionStatus::Expired,
            Some(view.expires_at),
            Some(view.expires_at),
        ),
        StoreState::Refunded { at } => (SubscriptionStatus::Refunded, Some(at), Some(at)),
    }
}

/// The price the store says it charged for the current period, in a currency sold here.
fn store_price(view: &StoreSubscription) -> Option<Money> {
    let (minor_units, code) = view.latest_payment.price.as_ref()?;
    Some(Money {
        minor_units: *minor_units,
        currency: Currency::parse(code)?,
    })
}

/// A refund a store reported in a notification.
struct ReportedRefund<'a> {
    at: DateTime<Utc>,
    /// The store's id of the refund, when it has one.
    id: Option<&'a str>,
    /// What went back (minor units, ISO 4217 code), when the store says; else the payment.
    amount: Option<&'a (i64, String)>,
}

/// The store's code for why the subscription is not in good standing.
fn failure_code(state: StoreState) -> Option<String> {
    match state {
        StoreState::GracePeriod { .. } => Some("grace_period".into()),
        StoreState::BillingRetry => Some("billing_retry".into()),
        _ => None,
    }
}

impl Core {
    pub(super) fn apple(&self) -> Result<&AppleClient, CoreError> {
        self.stores
            .apple
            .as_ref()
            .ok_or_else(|| CoreError::Invalid("App Store purchases are not accepted here".into()))
    }

    pub(super) fn google(&self) -> Result<&GoogleClient, CoreError> {
        self.stores
            .google
            .as_ref()
            .ok_or_else(|| CoreError::Invalid("Google Play purchases are not accepted here".into()))
    }

    pub(super) fn amazon(&self) -> Result<&AmazonClient, CoreError> {
        self.stores.amazon.as_ref().ok_or_else(|| {
            CoreError::Invalid("Amazon Appstore purchases are not accepted here".into())
        })
    }

    pub(super) fn roku(&self) -> Result<&RokuClient, CoreError> {
        self.stores
            .roku
            .as_ref()
            .ok_or_else(|| CoreError::Invalid("Roku Pay purchases are not accepted here".into()))
    }

    /// `POST /iap/verify`: asks the store about the receipt and, when it vouches, starts
    /// (or brings up to date) the customer's subscription to the package the store's
    /// product is sold as.
    pub async fn verify_store_purchase(
        &self,
        credential: &Credential,
        receipt: StoreReceipt,
    ) -> Result<(), CoreError> {
        let customer = self.authenticated_customer(credential).await?;
        let provider = provider_of(receipt.platform);
        let now = self.now();
        let view = match receipt.platform {
            StorePlatform::Apple => {
                let apple = self.apple()?;
                match (
                    receipt.purchase_identifier.as_deref().map(str::trim),
                    receipt.raw.as_deref().map(str::trim),
                ) {
                    (Some(id), _) if !id.is_empty() => {
                        apple.subscription_of_transaction(id, now).await
                    }
                    (_, Some(raw)) if !raw.is_empty() => {
                        apple.subscription_in_receipt(raw, now).await
                    }
                    _ => {
                        return Err(CoreError::Invalid(
                            "An ios receipt needs raw (the app receipt) or purchaseIdentifier \
                             (the transaction id)"
                                .into(),
                        ));
                    }
                }
            }
            StorePlatform::Google => {
                let google = self.google()?;
                let token = receipt
                    .purchase_identifier
                    .as_deref()
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .ok_or_else(|| {
                        CoreError::Invalid(
                            "An android receipt needs purchaseIdentifier (the purchase token)"
                                .into(),
                        )
                    })?;
                if let Some(package) = receipt.package_name.as_deref()
                    && package != google.settings().package_name
                {
                    return Err(CoreError::Invalid(format!(
                        "The purchase is for the app {package}, not this one"
                    )));
                }
                google.subscription(token, now).await
            }
            StorePlatform::Roku => {
                let roku = self.roku()?;
                let transaction = receipt
                    .purchase_identifier
                    .as_deref()
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        CoreError::Invalid(
                            "A roku receipt needs purchaseIdentifier (the transaction id)".into(),
                        )
                    })?;
                roku.subscription(transaction, now).await
            }
            StorePlatform::Amazon => {
                let amazon = self.amazon()?;
                let present = |value: &Option<String>| {
                    value
                        .as_deref()
                        .map(str::trim)
                        .filter(|text| !text.is_empty())
                        .map(str::to_owned)
                };
                let (Some(receipt_id), Some(user_id)) = (
                    present(&receipt.purchase_identifier),
                    present(&receipt.user_id),
                ) else {
                    return Err(CoreError::Invalid(
                        "An amazon receipt needs purchaseIdentifier (the receipt id) and userId"
                            .into(),
                    ));
                };
                amazon.subscription(&user_id, &receipt_id, now).await
            }
        }
        .map_err(|refusal| store_error(provider, refusal))?;
        if let Some(product) = receipt.product_id.as_deref()
            && receipt.platform == StorePlatform::Google
            && product != view.product_id
        {
            return Err(CoreError::Invalid(format!(
                "The purchase token is for the product {}, not {product}",
                view.product_id
            )));
        }
        let package = self
            .store
            .package_for_store_product(receipt.platform, &view.product_id)
            .await?
            .ok_or_else(|| {
                CoreError::Invalid(format!(
                    "No package is sold as the {} product {}",
                    receipt.platform.as_str(),
                    view.product_id
                ))
            })?;
        self.mirror_store_subscription(
            provider,
            &view,
            Some((&customer, &package, receipt.payment)),
        )
        .await
        .map_err(|error| match error {
            StoreNotificationError::Core(error) => error,
            other => CoreError::Invalid(other.to_string()),
        })
    }

    /// An App Store Server Notification V2: verified against Apple's roots, remembered by
    /// its UUID, and applied by asking the App Store for the subscription as it is now.
    pub async fn apple_notification(
        &self,
        body: &[u8],
    ) -> Result<StoreNotificationOutcome, StoreNotificationError> {
        let apple = self.apple()?;
        let now = self.now();
        let notification = apple
            .read_notification(body, now)
            .map_err(|error| match error {
                AppleNotificationError::Malformed(detail) => {
                    StoreNotificationError::Unverified(format!("malformed notification: {detail}"))
                }
                error => StoreNotificationError::Unverified(error.to_string()),
            })?;
        let told = notification.subscription.as_ref();
        if let Some(outcome) = self
            .screen_store_notice(
                PaymentProvider::Apple,
                &notification.id,
                &notification.kind,
                told.map(|told| told.subscription_ref.as_str()),
                now,
            )
            .await?
        {
            return Ok(outcome);
        }
        let Some(told) = told else {
            return Ok(StoreNotificationOutcome::Ignored);
        };
        let view = apple
            .subscription_of_transaction(&told.latest_payment.transaction_id, now)
            .await
            .map_err(|refusal| store_error(PaymentProvider::Apple, refusal))?;
        self.mirror_store_subscription(PaymentProvider::Apple, &view, None)
            .await?;
        self.store_notice_applied(
            PaymentProvider::Apple,
            &notification.id,
            &notification.kind,
            &view,
            now,
        )
        .await
    }

    /// A Google Play Real-time developer notification, pushed by Pub/Sub: its OIDC token
    /// verified, remembered by its message id, and applied by asking Google Play for the
    /// purchase as it is now.
    pub async fn google_notification(
        &self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<StoreNotificationOutcome, StoreNotificationError> {
        let google = self.google()?;
        let now = self.now();
        let push =
            google
                .read_push(authorization, body, now)
                .await
                .map_err(|error| match error {
                    GooglePushError::Unverified(reason) => {
                        StoreNotificationError::Unverified(reason)
                    }
                    GooglePushError::Unavailable(detail) => provider_unavailable("Google", detail),
                })?;
        if let Some(outcome) = self
            .screen_store_notice(
                PaymentProvider::Google,
                &push.id,
                &push.kind,
                push.purchase.as_ref().map(|(token, _)| token.as_str()),
                now,
            )
            .await?
        {
            return Ok(outcome);
        }
        let Some((token, voided_at)) = push.purchase.clone() else {
            return Ok(StoreNotificationOutcome::Ignored);
        };
        let view = google
            .subscription(&token, now)
            .await
            .map_err(|refusal| store_error(PaymentProvider::Google, refusal))?;
        self.mirror_store_subscription(PaymentProvider::Google, &view, None)
            .await?;
        if let Some(at) = voided_at {
            let refund = ReportedRefund {
                at,
                id: None,
                amount: None,
            };
            self.record_store_refund(PaymentProvider::Google, &view, refund)
                .await?;
        }
        self.store_notice_applied(PaymentProvider::Google, &push.id, &push.kind, &view, now)
            .await
    }

    /// A Roku Pay push notification: a secured push's JWS verified against Roku's keys,
    /// remembered by its id, and applied by validating the subscription's transaction with
    /// Roku as it is now; a refund it reports is recorded (Roku ends access only by
    /// cancelling, which is a push of its own).
    pub async fn roku_notification(
        &self,
        body: &[u8],
    ) -> Result<StoreNotificationOutcome, StoreNotificationError> {
        let roku = self.roku()?;
        let now = self.now();
        let notification =
            roku.read_notification(body, now)
                .await
                .map_err(|error| match error {
                    RokuNotificationError::Unavailable(detail) => {
                        provider_unavailable("Roku", detail)
                    }
                    error => StoreNotificationError::Unverified(error.to_string()),
                })?;
        if let Some(outcome) = self
            .screen_store_notice(
                PaymentProvider::Roku,
                &notification.id,
                &notification.kind,
                Some(notification.subscription_ref()),
                now,
            )
            .await?
        {
            return Ok(outcome);
        }
        let view = roku
            .subscription(notification.transaction_to_validate(), now)
            .await
            .map_err(|refusal| store_error(PaymentProvider::Roku, refusal))?;
        self.mirror_store_subscription(PaymentProvider::Roku, &view, None)
            .await?;
        if let Some(refund) = &notification.refund {
            let refund = ReportedRefund {
                at: refund.at,
                id: Some(&refund.refund_id),
                amount: refund.amount.as_ref(),
            };
            self.record_store_refund(PaymentProvider::Roku, &view, refund)
                .await?;
        }
        self.store_notice_applied(
            PaymentProvider::Roku,
            &notification.id,
            &notification.kind,
            &view,
            now,
        )
        .await
    }

    /// An Amazon Real-time Notification, delivered by SNS: its signature checked against the
    /// certificate SNS names (from a trusted host), remembered by its message id, and
    /// applied by reading the receipt again from RVS. A subscription confirmation is
    /// confirmed, so that SNS starts delivering.
    pub async fn amazon_notification(
        &self,
        declared_type: Option<&[u8]>,
        body: &[u8],
    ) -> Result<StoreNotificationOutcome, StoreNotificationError> {
        let amazon = self.amazon()?;
        let now = self.now();
        let notification = amazon
            .read_notification(declared_type, body, now)
            .await
            .map_err(|error| match error {
                AmazonNotificationError::Unavailable(detail) => {
                    provider_unavailable("Amazon", detail)
                }
                error => StoreNotificationError::Unverified(error.to_string()),
            })?;
        let event = match &notification.content {
            AmazonNotificationContent::Receipt(event) => event,
            AmazonNotificationContent::SubscriptionConfirmation(confirmation) => {
                amazon
                    .confirm_subscription(confirmation)
                    .await
                    .map_err(|error| match error {
                        AmazonNotificationError::Unavailable(detail) => {
                            provider_unavailable("Amazon", detail)
                        }
                        error => StoreNotificationError::Unverified(error.to_string()),
                    })?;
                return Ok(StoreNotificationOutcome::Applied);
            }
            _ => return Ok(StoreNotificationOutcome::Ignored),
        };
        if let Some(outcome) = self
            .screen_store_notice(
                PaymentProvider::Amazon,
                &notification.id,
                &event.notification_type,
                Some(&event.receipt_id),
                now,
            )
            .await?
        {
            return Ok(outcome);
        }
        let view = amazon
            .subscription(&event.user_id, &event.receipt_id, now)
            .await
            .map_err(|refusal| store_error(PaymentProvider::Amazon, refusal))?;
        self.mirror_store_subscription(PaymentProvider::Amazon, &view, None)
            .await?;
        self.store_notice_applied(
            PaymentProvider::Amazon,
            &notification.id,
            &event.notification_type,
            &view,
            now,
        )
        .await
    }

    /// What every store's verified notification goes through before the store is asked
    /// again: `Some` outcome when it is already settled — its id was seen before
    /// ([`StoreNotificationOutcome::Replayed`]) or it is about no subscription (`purchase`
    /// `None`: remembered and [`StoreNotificationOutcome::Ignored`]) — and
    /// [`StoreNotificationError::UnknownPurchase`] when no customer verified the purchase.
    async fn screen_store_notice(
        &self,
        provider: PaymentProvider,
        id: &str,
        kind: &str,
        purchase: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<StoreNotificationOutcome>, StoreNotificationError> {
        if self
            .store
            .event_seen(provider, id)
            .await
            .map_err(CoreError::from)?
        {
            return Ok(Some(StoreNotificationOutcome::Replayed));
        }
        let Some(purchase) = purchase else {
            self.store
                .remember_event(provider, id, kind, now)
                .await
                .map_err(CoreError::from)?;
            return Ok(Some(StoreNotificationOutcome::Ignored));
        };
        if self
            .store
            .subscription_by_origin(provider, purchase)
            .await
            .map_err(CoreError::from)?
            .is_none()
        {
            return Err(StoreNotificationError::UnknownPurchase);
        }
        Ok(None)
    }

    /// Remembers a notification once its effects are stored, so that it is applied once.
    async fn store_notice_applied(
        &self,
        provider: PaymentProvider,
        id: &str,
        kind: &str,
        view: &StoreSubscription,
        now: DateTime<Utc>,
    ) -> Result<StoreNotificationOutcome, StoreNotificationError> {
        self.store
            .remember_event(provider, id, kind, now)
            .await
            .map_err(CoreError::from)?;
        tracing::info!(store = provider.store_name(), %kind, purchase = %view.subscription_ref, "store notification applied");
        Ok(StoreNotificationOutcome::Applied)
    }

    /// Brings the subscription a store purchase started in line with the store's `view`.
    /// `buyer` (from a verification) starts it when there is none yet; a notification
    /// (`None`) about a purchase nobody verified is [`StoreNotificationError::UnknownPurchase`].
    async fn mirror_store_subscription(
        &self,
        provider: PaymentProvider,
        view: &StoreSubscription,
        buyer: Option<(&Customer, &Package, Option<Money>)>,
    ) -> Result<(), StoreNotificationError> {
        // A write loses to a concurrent one only when the subscription moved meanwhile; a
        // few rounds of reading again settle it.
        for _ in 0..4 {
            let existing = self
                .store
                .subscription_by_origin(provider, &view.subscription_ref)
                .await
                .map_err(CoreError::from)?;
            match (existing, buyer) {
                (None, None) => return Err(StoreNotificationError::UnknownPurchase),
                (None, Some((customer, package, payment))) => {
                    let (subscription, transaction) =
                        self.new_store_subscription(provider, view, customer, package, payment)?;
                    if self
                        .store
                        .start_store_subscription(&subscription, &transaction)
                        .await
                        .map_err(CoreError::from)?
                    {
                        return Ok(());
                    }
                }
                (Some(subscription), buyer) => {
                    if let Some((customer, _, _)) = buyer
                        && subscription.customer_id != customer.id
                    {
                        return Err(CoreError::Forbidden(
                            "This purchase is already linked to another account".into(),
                        )
                        .into());
                    }
                    if self.follow_store(&subscription, view).await? {
                        return Ok(());
                    }
                }
            }
        }
        Err(CoreError::Contended("subscription").into())
    }

    fn new_store_subscription(
        &self,
        provider: PaymentProvider,
        view: &StoreSubscription,
        customer: &Customer,
        package: &Package,
        payment: Option<Money>,
    ) -> Result<(Subscription, Transaction), CoreError> {
        let now = self.now();
        let (status, access_until, ended_at) = mirrored_standing(view);
        // What the app reports the customer paid; else the store's price; else the
        // catalogue's.
        let paid = payment
            .or_else(|| store_price(view))
            .unwrap_or(package.price);
        let subscription = Subscription {
            id: Subscription::new_id(),
            customer_id: customer.id.clone(),
            package_id: package.id.clone(),
            provider,
            origin_reference: view.subscription_ref.clone(),
            status,
            recurring: true,
            auto_renew: view.auto_renew,
            price: paid,
            current_period: 0,
            current_period_start: view.period_start,
            current_period_end: view.expires_at,
            access_until,
            cancel_at_period_end: !view.auto_renew,
            cancelled_at: None,
            ended_at,
            last_failure_code: failure_code(view.state),
            created_at: now,
        };
        let transaction = Transaction {
            id: Transaction::new_id(),
            customer_id: customer.id.clone(),
            subscription_id: Some(subscription.id.clone()),
            basket_id: None,
            kind: TransactionKind::Payment,
            provider,
            external_id: view.latest_payment.transaction_id.clone(),
            reference: view.latest_payment.transaction_id.clone(),
            description: package.title.clone(),
            amount: paid,
            succeeded: true,
            provider_message: None,
            period: Some(0),
            created_at: now,
        };
        Ok((subscription, transaction))
    }

    /// Moves `subscription` to what the store says. Returns `false` when it changed under
    /// us (decide again from a fresh read).
    async fn follow_store(
        &self,
        subscription: &Subscription,
        view: &StoreSubscription,
    ) -> Result<bool, CoreError> {
        // Refunded is final, but for a new period the store took a payment for (the customer
        // subscribed again): pushes about one revocation may arrive in any order, and the
        // expiry one must not turn a refund back into a plain expiry.
        if subscription.status == SubscriptionStatus::Refunded
            && !(view.state == StoreState::Active
                && view.expires_at > subscription.current_period_end)
        {
            return Ok(true);
        }
        let ends_early = matches!(
            view.state,
            StoreState::Expired | StoreState::Refunded { .. }
        );
        if view.expires_at < subscription.current_period_end && !ends_early {
            // An older view than the one already mirrored. (A revocation or refund moves the
            // expiry back to when it happened: that is news, not history.)
            return Ok(true);
        }
        let now = self.now();
        // A renewal: the store took a payment boxoffice has not recorded, and the paid-for
        // time reaches past the period mirrored so far. (A grace period extends access
        // without a payment; a refund or a repeat of the same view adds none.)
        let renewed = view.state == StoreState::Active
            && view.expires_at > subscription.current_period_end
            && self
                .store
                .payment_by_external_id(subscription.provider, &view.latest_payment.transaction_id)
                .await?
                .is_none();
        let (status, access_until, ended_at) = mirrored_standing(view);
        let mut change = SubscriptionChange::from(subscription);
        change.status = status;
        change.access_until = access_until;
        change.ended_at = ended_at;
        change.cancel_at_period_end = !view.auto_renew;
        change.last_failure_code = failure_code(view.state);
        let mut transaction = None;
        if renewed {
            change.current_period = subscription.current_period + 1;
            // Stores that do not date each period's payment report the purchase's start.
            change.current_period_start = if view.period_start > subscription.current_period_start {
                view.period_start
            } else {
                subscription.current_period_end
            };
            change.current_period_end = view.expires_at;
            transaction = Some(self.store_payment(subscription, view, change.current_period)?);
        }
        if let StoreState::Refunded { at } = view.state {
            change.cancelled_at = subscription.cancelled_at.or(Some(at));
            change.cancel_reason = Some("refunded by the store");
            if subscription.status != SubscriptionStatus::Refunded {
                transaction = self.store_refund(subscription, view, at).await?;
            }
        }
        if !renewed
            && transaction.is_none()
            && change.status == subscription.status
            && change.access_until == subscription.access_until
            && change.ended_at == subscription.ended_at
            && change.cancel_at_period_end == subscription.cancel_at_period_end
            && change.last_failure_code == subscription.last_failure_code
        {
            return Ok(true);
        }
        Ok(self
            .store
            .change_subscription(&change, transaction.as_ref(), &JobChange::None, now)
            .await?)
    }

    /// Records a refund the store reported of its latest payment. Of a subscription the
    /// store has ended (revoked), the refund ends it as refunded; of one the store still
    /// honours (Google Play's refund without revocation, Roku's refund of a payment), the
    /// subscription goes on. Recording it again is a no-op (refunds are unique per provider
    /// id).
    async fn record_store_refund(
        &self,
        provider: PaymentProvider,
        view: &StoreSubscription,
        reported: ReportedRefund<'_>,
    ) -> Result<(), CoreError> {
        for _ in 0..4 {
            let Some(subscription) = self
                .store
                .subscription_by_origin(provider, &view.subscription_ref)
                .await?
            else {
                return Ok(());
            };
            let Some(mut refund) = self.store_refund(&subscription, view, reported.at).await?
            else {
                return Ok(());
            };
            // A store that names its refunds (Roku) may refund part of a payment, more
            // than once: each refund is its own transaction, of the amount it says.
            if let Some(id) = reported.id {
                refund.external_id = format!("refund:{id}");
            }
            if let Some((minor_units, code)) = reported.amount
                && let Some(currency) = Currency::parse(code)
            {
                let paid = -refund.amount.minor_units;
                let returned = if currency == refund.amount.currency {
                    (*minor_units).min(paid).max(0)
                } else {
                    (*minor_units).max(0)
                };
                refund.amount = Money {
                    minor_units: -returned,
                    currency,
                };
            }
            let mut change = SubscriptionChange::from(&subscription);
            if matches!(
                view.state,
                StoreState::Expired | StoreState::Refunded { .. }
            ) {
                change.status = SubscriptionStatus::Refunded;
                change.access_until = Some(reported.at);
                change.ended_at = Some(reported.at);
                change.cancelled_at = subscription.cancelled_at.or(Some(reported.at));
                change.cancel_reason = Some("refunded by the store");
            }
            if self
                .store
                .change_subscription(&change, Some(&refund), &JobChange::None, self.now())
                .await?
            {
                return Ok(());
            }
        }
        Err(CoreError::Contended("subscription"))
    }

    /// The payment for a period the store renewed.
    fn store_payment(
        &self,
        subscription: &Subscription,
        view: &StoreSubscription,
        period: i64,
    ) -> Result<Transaction, CoreError> {
        let amount = store_price(view).unwrap_or(subscription.price);
        Ok(Transaction {
            id: Transaction::new_id(),
            customer_id: subscription.customer_id.clone(),
            subscription_id: Some(subscription.id.clone()),
            basket_id: None,
            kind: TransactionKind::Payment,
            provider: subscription.provider,
            external_id: view.latest_payment.transaction_id.clone(),
            reference: view.latest_payment.transaction_id.clone(),
            description: "Renewal".into(),
            amount,
            succeeded: true,
            provider_message: None,
            period: Some(period),
            created_at: self.now(),
        })
    }

    /// The refund of the store's latest payment, when boxoffice recorded that payment.
    async fn store_refund(
        &self,
        subscription: &Subscription,
        view: &StoreSubscription,
        at: DateTime<Utc>,
    ) -> Result<Option<Transaction>, CoreError> {
        let Some(payment) = self
            .store
            .payment_by_external_id(subscription.provider, &view.latest_payment.transaction_id)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Transaction {
            id: Transaction::new_id(),
            customer_id: subscription.customer_id.clone(),
            subscription_id: Some(subscription.id.clone()),
            basket_id: None,
            kind: TransactionKind::Refund,
            provider: subscription.provider,
            external_id: format!("refund:{}", payment.external_id),
            reference: payment.reference.clone(),
            description: "Refund".into(),
            amount: Money {
                minor_units: -payment.amount.minor_units,
                currency: payment.amount.currency,
            },
            succeeded: true,
            provider_message: None,
            period: payment.period,
            created_at: at.max(payment.created_at),
        }))
    }
}
