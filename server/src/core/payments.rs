//! Web purchases: checkout (a basket backed by a Stripe payment or setup intent), discount
//! codes, billing updates, the customer's transactions, and settling what Stripe reports
//! back (by webhook, or when a basket is looked at again).

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::subscriptions::add_period;
use super::{Core, CoreError, Credential};
use crate::core::model::{
    Basket, BasketKind, BasketPurpose, BasketStatus, CardSummary, Customer, Discount,
    DiscountValue, Money, Package, PaymentProvider, SalesChannel, SortOrder, Subscription,
    SubscriptionStatus, Transaction, TransactionKind,
};
use crate::providers::stripe::{
    NewPaymentIntent, NewSetupIntent, PaymentIntent, PaymentIntentStatus, SetupIntent,
    SetupIntentStatus, StripeClient, StripeClientError,
};
use crate::store::{BillingProfileUpdate, StoreError};

const MAX_PAGE_SIZE: u64 = 100;

/// How the core takes money.
#[derive(Clone)]
pub struct PaymentSettings {
    /// Stripe, for web purchases; `None` where the deployment sells through stores only.
    pub stripe: Option<StripeClient>,
    /// After a failed renewal, wait this long past the period end before each retry; when
    /// the last retry fails the subscription expires.
    pub renewal_retries: Vec<Duration>,
    /// The discount definitions the deployment is configured with; `discount sync` re-reads
    /// one of them into the database.
    pub discounts: Vec<Discount>,
    /// The `x-api-key` that authorises discount sync; without one, sync is refused.
    pub discount_sync_api_key: Option<String>,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            stripe: None,
            renewal_retries: default_renewal_retries(),
            discounts: Vec::new(),
            discount_sync_api_key: None,
        }
    }
}

/// One day, three days and a week after the period end: Stripe's recommended cadence.
pub fn default_renewal_retries() -> Vec<Duration> {
    [1, 3, 7]
        .into_iter()
        .map(|days| Duration::from_secs(days * 24 * 60 * 60))
        .collect()
}

/// What the browser needs to pay for a basket with Stripe.js (or the hosted form).
#[derive(Debug, Clone)]
pub struct CheckoutView {
    pub basket_id: String,
    pub client_secret: String,
    /// The intent waits for the customer to authenticate the card (3D Secure).
    pub authentication_required: bool,
    pub publishable_key: String,
    /// Whether a discount code may be applied to this basket.
    pub discounts_enabled: bool,
    pub price: Option<Money>,
    /// Where a card form for this basket is served without Stripe.js (the simulator's
    /// hosted form); `None` against real Stripe.
    pub hosted_form_url: Option<String>,
}

/// A basket after a discount code.
#[derive(Debug, Clone)]
pub struct DiscountedBasket {
    pub client_secret: String,
    pub price: Money,
    /// A 100 % discount completes the purchase at once, with no payment.
    pub completed: bool,
}

#[derive(Debug, Clone)]
pub struct TransactionPage {
    pub page: u64,
    pub size: u64,
    pub order: SortOrder,
    pub transactions: Vec<Transaction>,
}

fn stripe_error(error: StripeClientError) -> CoreError {
    match error {
        StripeClientError::Declined { error, .. } => CoreError::Invalid(
            error
                .message
                .unwrap_or_else(|| "Your card was declined.".into()),
        ),
        StripeClientError::Refused { message, .. } => CoreError::ProviderUnavailable {
            provider: "Stripe",
            detail: message,
        },
        StripeClientError::Provider(error) => CoreError::ProviderUnavailable {
            provider: "Stripe",
            detail: error.to_string(),
        },
    }
}

fn card_of_payment_intent(intent: &PaymentIntent) -> Option<(String, Option<CardSummary>)> {
    let method = intent.payment_method.as_ref()?;
    let card = method
        .object()
        .and_then(|method| method.card.as_ref())
        .map(CardSummary::from);
    Some((method.id().to_owned(), card))
}

fn card_of_setup_intent(intent: &SetupIntent) -> Option<(String, Option<CardSummary>)> {
    let method = intent.payment_method.as_ref()?;
    let card = method
        .object()
        .and_then(|method| method.card.as_ref())
        .map(CardSummary::from);
    Some((method.id().to_owned(), card))
}

impl Core {
    pub(super) fn stripe(&self) -> Result<&StripeClient, CoreError> {
        self.payments
            .stripe
            .as_ref()
            .ok_or_else(|| CoreError::ProviderUnavailable {
                provider: "Stripe",
                detail: "web payments are not configured on this server".into(),
            })
    }

    /// The customer's Stripe customer, created on first need.
    async fn stripe_customer(&self, customer: &Customer) -> Result<String, CoreError> {
        if let Some(profile) = self.store.billing_profile(&customer.id).await?
            && profile.provider == PaymentProvider::Stripe
        {
            return Ok(profile.provider_customer_id);
        }
        let name = format!("{} {}", customer.first_name, customer.last_name);
        let stripe_id = self
            .stripe()?
            .create_customer(&customer.id, &customer.email, name.trim())
            .await
            .map_err(stripe_error)?;
        self.store
            .save_billing_profile(
                &BillingProfileUpdate {
                    customer_id: &customer.id,
                    provider: PaymentProvider::Stripe,
                    provider_customer_id: &stripe_id,
                    payment_method_id: None,
                    card: None,
                },
                self.now(),
            )
            .await?;
        Ok(stripe_id)
    }

    /// Starts (or resumes) buying a package on the web. Free-trial packages get a setup
    /// intent (the card is saved, charged when the trial ends); every other package a
    /// payment intent, recurring ones saving the card for off-session renewals. An open
    /// basket for the same package is handed back rather than a second one made, showing
    /// whether it now waits for 3D Secure.
    pub async fn checkout(
        &self,
        credential: &Credential,
        package_id: &str,
    ) -> Result<CheckoutView, CoreError> {
        let presence = self.presence_of(credential).await?;
        let customer = presence
            .customer
            .ok_or_else(|| CoreError::Unauthenticated("The session has ended or expired".into()))?;
        let country = presence
            .session
            .as_ref()
            .and_then(|session| session.country_code.as_deref())
            .and_then(super::Country::parse);
        let package = self.package(package_id, country.as_ref()).await?;
        if package.sales_channel != SalesChannel::Web {
            return Err(CoreError::Invalid(format!(
                "The package {} is sold in the app stores only",
                package.id
            )));
        }
        let stripe = self.stripe()?;
        if let Some(basket) = self
            .store
            .open_basket_for(&customer.id, &package.id)
            .await?
            && let Some(view) = self.resume_basket(&basket).await?
        {
            return Ok(view);
        }
        let stripe_customer = self.stripe_customer(&customer).await?;
        let now = self.now();
        let idempotency_key = format!("checkout-{}", Uuid::new_v4().simple());
        let metadata = [
            (
                crate::providers::stripe::metadata::CUSTOMER,
                customer.id.as_str(),
            ),
            (
                crate::providers::stripe::metadata::PACKAGE,
                package.id.as_str(),
            ),
        ];
        let (basket_id, client_secret, kind, price) = if package.trial_days.is_some() {
            let intent = stripe
                .create_setup_intent(&NewSetupIntent {
                    customer: &stripe_customer,
                    description: &package.title,
                    metadata: &metadata,
                    idempotency_key: &idempotency_key,
                })
                .await
                .map_err(stripe_error)?;
            let secret = intent.client_secret.clone().unwrap_or_default();
            (intent.id, secret, BasketKind::Setup, None)
        } else {
            let intent = stripe
                .create_payment_intent(&NewPaymentIntent {
                    amount: package.price.minor_units,
                    currency: package.price.currency.code(),
                    customer: &stripe_customer,
                    description: &package.title,
                    save_card: package.recurring,
                    metadata: &metadata,
                    idempotency_key: &idempotency_key,
                })
                .await
                .map_err(stripe_error)?;
            let secret = intent.client_secret.clone().unwrap_or_default();
            (intent.id, secret, BasketKind::Payment, Some(package.price))
        };
        let basket = Basket {
            id: basket_id,
            customer_id: customer.id.clone(),
            kind,
            purpose: BasketPurpose::Purchase,
            package_id: Some(package.id.clone()),
            list_price: price,
            price,
            discount_id: None,
            client_secret,
            status: BasketStatus::Open,
            subscription_id: None,
            created_at: now,
        };
        self.store.insert_basket(&basket).await?;
        Ok(self.checkout_view(&basket, false))
    }

    fn checkout_view(&self, basket: &Basket, authentication_required: bool) -> CheckoutView {
        CheckoutView {
            basket_id: basket.id.clone(),
            client_secret: basket.client_secret.clone(),
            authentication_required,
            publishable_key: self
                .payments
                .stripe
                .as_ref()
                .map(|stripe| stripe.settings().publishable_key.clone())
                .unwrap_or_default(),
            discounts_enabled: basket.kind == BasketKind::Payment && basket.discount_id.is_none(),
            price: basket.price,
            hosted_form_url: self
                .payments
                .stripe
                .as_ref()
                .and_then(|stripe| stripe.settings().hosted_form_url.clone()),
        }
    }

    /// An open basket as Stripe sees it now: still payable (returned), or settled meanwhile
    /// (settled here, and `None` so that a new basket is made).
    async fn resume_basket(&self, basket: &Basket) -> Result<Option<CheckoutView>, CoreError> {
        let stripe = self.stripe()?;
        match basket.kind {
            BasketKind::Payment => {
                let intent = stripe
                    .payment_intent(&basket.id)
                    .await
                    .map_err(stripe_error)?;
                match intent.status {
                    PaymentIntentStatus::RequiresPaymentMethod
                    | PaymentIntentStatus::RequiresConfirmation
                    | PaymentIntentStatus::RequiresAction => Ok(Some(self.checkout_view(
                        basket,
                        intent.status == PaymentIntentStatus::RequiresAction,
                    ))),
                    _ => {
                        self.settle_payment_intent(&intent, None).await?;
                        Ok(None)
                    }
                }
            }
            BasketKind::Setup => {
                let intent = stripe
                    .setup_intent(&basket.id)
                    .await
                    .map_err(stripe_error)?;
                match intent.status {
                    SetupIntentStatus::RequiresPaymentMethod
                    | SetupIntentStatus::RequiresConfirmation
                    | SetupIntentStatus::RequiresAction => Ok(Some(self.checkout_view(
                        basket,
                        intent.status == SetupIntentStatus::RequiresAction,
                    ))),
                    _ => {
                        self.settle_setup_intent(&intent).await?;
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Applies a discount code to the customer's own open payment basket. A code that
    /// takes the price to zero completes the purchase at once: the subscription and its
    /// entitlements start, and no transaction is recorded.
    pub async fn apply_discount(
        &self,
        credential: &Credential,
        basket_id: &str,
        code: &str,
    ) -> Result<DiscountedBasket, CoreError> {
        let customer = self.authenticated_customer(credential).await?;
        let basket = self
            .store
            .basket(basket_id)
            .await?
            .filter(|basket| basket.customer_id == customer.id)
            .ok_or(CoreError::NotFound("basket"))?;
        if basket.purpose != BasketPurpose::Purchase || basket.kind != BasketKind::Payment {
            return Err(CoreError::Invalid(
                "Discounts cannot be used on a free trial: its setup intent takes no payment now"
                    .into(),
            ));
        }
        if basket.status != BasketStatus::Open {
            return Err(CoreError::Invalid("The basket is no longer open".into()));
        }
        if basket.discount_id.is_some() {
            return Err(CoreError::Invalid(
                "A discount is already applied to this basket".into(),
            ));
        }
        let (Some(package_id), Some(list_price)) = (&basket.package_id, basket.list_price) else {
            return Err(CoreError::Invalid(
                "The basket has no package to discount".into(),
            ));
        };
        let now = self.now();
        let discount = self.store.discount_by_code(code).await?.ok_or_else(|| {
            CoreError::Invalid(format!("The discount code {code:?} is not valid"))
        })?;
        check_discount(&discount, package_id, list_price, now)?;
        if discount.single_use && self.store.discount_redeemed(&discount.id).await? {
            return Err(CoreError::Invalid(format!(
                "The discount code {code:?} has already been used"
            )));
        }
        let price = discount.apply(list_price);
        match self
            .store
            .redeem_discount(&basket, &discount.id, discount.single_use, price, now)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Constraint(constraint)) if constraint.contains("single_use") => {
                return Err(CoreError::Invalid(format!(
                    "The discount code {code:?} has already been used"
                )));
            }
            Err(StoreError::Constraint(_)) => {
                return Err(CoreError::Invalid(
                    "A discount is already applied to this basket".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        let stripe = self.stripe()?;
        if price.minor_units == 0 {
            // Nothing left to pay: the intent is dropped and the purchase completes here.
            if let Err(error) = stripe.cancel_payment_intent(&basket.id).await {
                self.store.release_discount(&basket, now).await?;
                return Err(stripe_error(error));
            }
            let basket = Basket {
                price: Some(price),
                discount_id: Some(discount.id.clone()),
                ..basket
            };
            self.complete_basket(&basket, None, None).await?;
            return Ok(DiscountedBasket {
                client_secret: basket.client_secret,
                price,
                completed: true,
            });
        }
        let metadata = [(
            crate::providers::stripe::metadata::DISCOUNT,
            discount.code.as_str(),
        )];
        if let Err(error) = stripe
            .update_payment_intent_amount(&basket.id, price.minor_units, &metadata)
            .await
        {
            self.store.release_discount(&basket, now).await?;
            return Err(stripe_error(error));
        }
        Ok(DiscountedBasket {
            client_secret: basket.client_secret,
            price,
            completed: false,
        })
    }

    /// A new setup intent for the customer to save another card; it pays the next charge,
    /// and recovers a subscription whose renewal failed.
    pub async fn billing_update(&self, credential: &Credential) -> Result<CheckoutView, CoreError> {
        let customer = self.authenticated_customer(credential).await?;
        let stripe_customer = self.stripe_customer(&customer).await?;
        let intent = self
            .stripe()?
            .create_setup_intent(&NewSetupIntent {
                customer: &stripe_customer,
                description: "Billing details update",
                metadata: &[(
                    crate::providers::stripe::metadata::CUSTOMER,
                    customer.id.as_str(),
                )],
                idempotency_key: &format!("billing-update-{}", Uuid::new_v4().simple()),
            })
            .await
            .map_err(stripe_error)?;
        let basket = Basket {
            id: intent.id.clone(),
            customer_id: customer.id.clone(),
            kind: BasketKind::Setup,
            purpose: BasketPurpose::BillingUpdate,
            package_id: None,
            list_price: None,
            price: None,
            discount_id: None,
            client_secret: intent.client_secret.clone().unwrap_or_default(),
            status: BasketStatus::Open,
            subscription_id: None,
            created_at: self.now(),
        };
        self.store.insert_basket(&basket).await?;
        Ok(self.checkout_view(&basket, false))
    }

    /// The customer's payments, failed attempts and refunds, one page (`page` from 1,
    /// `size` 1 to 100).
    pub async fn transactions(
        &self,
        credential: &Credential,
        order: SortOrder,
        page: u64,
        size: u64,
    ) -> Result<TransactionPage, CoreError> {
        if page == 0 {
            return Err(CoreError::Invalid("page starts at 1".into()));
        }
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(CoreError::Invalid(format!(
                "size must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        let customer = self.authenticated_customer(credential).await?;
        let offset = i64::try_from((page - 1).saturating_mul(size)).unwrap_or(i64::MAX);
        let transactions = self
            .store
            .transactions_of(
                &customer.id,
                order == SortOrder::Ascending,
                offset,
                size as i64,
            )
            .await?;
        Ok(TransactionPage {
            page,
            size,
            order,
            transactions,
        })
    }

    /// Re-reads one configured discount into the database (the admin backend's "created or
    /// updated" and "vouchers updated" events). Authorised by the sync API key.
    pub async fn sync_discount(
        &self,
        api_key: Option<&str>,
        discount_id: &str,
    ) -> Result<(), CoreError> {
        let expected = self
            .payments
            .discount_sync_api_key
            .as_deref()
            .ok_or_else(|| {
                CoreError::Unauthenticated("Discount sync is not enabled on this server".into())
            })?;
        if api_key != Some(expected) {
            return Err(CoreError::Unauthenticated(
                "The x-api-key is not valid".into(),
            ));
        }
        let discount = self
            .payments
            .discounts
            .iter()
            .find(|discount| discount.id == discount_id)
            .ok_or_else(|| {
                CoreError::Invalid(format!("There is no configured discount {discount_id}"))
            })?;
        self.store.upsert_discount(discount, self.now()).await?;
        Ok(())
    }

    /// Defines a new discount code (the admin backend's job; simulator mode's control
    /// surface offers it). A code that exists already is refused.
    pub async fn define_discount(&self, discount: &Discount) -> Result<(), CoreError> {
        if self.store.discount_by_code(&discount.code).await?.is_some() {
            return Err(CoreError::Invalid(format!(
                "The discount code {:?} exists already",
                discount.code
            )));
        }
        match self.store.upsert_discount(discount, self.now()).await {
            Err(StoreError::Constraint(_)) => Err(CoreError::Invalid(format!(
                "The discount code {:?} exists already",
                discount.code
            ))),
            other => Ok(other?),
        }
    }

    /// Writes every configured discount; at start, like the catalogue.
    pub async fn seed_discounts(&self) -> Result<(), CoreError> {
        let now = self.now();
        for discount in &self.payments.discounts {
            self.store.upsert_discount(discount, now).await?;
        }
        Ok(())
    }

    /// Applies what Stripe says about a payment intent: a purchase paid, a failed attempt,
    /// an abandoned basket, or a renewal settled. Safe to repeat. `attempt_key` names the
    /// failed attempt when the intent does not (the webhook's event id).
    pub(crate) async fn settle_payment_intent(
        &self,
        intent: &PaymentIntent,
        attempt_key: Option<&str>,
    ) -> Result<(), CoreError> {
        if let Some(subscription_id) = intent
            .metadata
            .get(crate::providers::stripe::metadata::SUBSCRIPTION)
        {
            return self.settle_renewal_intent(intent, subscription_id).await;
        }
        let Some(basket) = self.store.basket(&intent.id).await? else {
            // Not a basket of ours (another integration on the same Stripe account).
            return Ok(());
        };
        match intent.status {
            PaymentIntentStatus::Succeeded => {
                self.complete_basket(&basket, Some(intent), None).await
            }
            PaymentIntentStatus::Canceled => {
                // Only an open basket is marked abandoned: a 100 % discount cancels its intent
                // after completing the basket.
                self.store.cancel_basket(&basket.id, self.now()).await?;
                Ok(())
            }
            _ => {
                let Some(error) = &intent.last_payment_error else {
                    return Ok(());
                };
                let Some(external_id) = intent
                    .charge_id()
                    .or_else(|| attempt_key.map(str::to_owned))
                else {
                    return Ok(());
                };
                let package = match &basket.package_id {
                    Some(id) => self.store.package(id).await?,
                    None => None,
                };
                let transaction = Transaction {
                    id: Transaction::new_id(),
                    customer_id: basket.customer_id.clone(),
                    subscription_id: None,
                    basket_id: Some(basket.id.clone()),
                    kind: TransactionKind::Payment,
                    provider: PaymentProvider::Stripe,
                    external_id,
                    reference: intent.id.clone(),
                    description: package.map_or_else(|| "Payment".into(), |package| package.title),
                    amount: basket.price.unwrap_or(Money {
                        minor_units: intent.amount,
                        currency: crate::core::model::Currency::parse(&intent.currency)
                            .ok_or_else(|| CoreError::Invalid("unknown currency".into()))?,
                    }),
                    succeeded: false,
                    provider_message: error.message.clone(),
                    period: None,
                    created_at: self.now(),
                };
                self.store.record_transaction(&transaction).await?;
                Ok(())
            }
        }
    }

    /// Applies what Stripe says about a setup intent: a free trial started, or a new card
    /// saved (which retries any renewal that failed).
    pub(crate) async fn settle_setup_intent(&self, intent: &SetupIntent) -> Result<(), CoreError> {
        if intent.status != SetupIntentStatus::Succeeded {
            return Ok(());
        }
        let Some(basket) = self.store.basket(&intent.id).await? else {
            return Ok(());
        };
        match basket.purpose {
            BasketPurpose::Purchase => self.complete_basket(&basket, None, Some(intent)).await,
            BasketPurpose::BillingUpdate => {
                let Some((method, card)) = card_of_setup_intent(intent) else {
                    return Ok(());
                };
                let Some(stripe_customer) = intent.customer.as_deref() else {
                    return Ok(());
                };
                let now = self.now();
                self.store
                    .save_billing_profile(
                        &BillingProfileUpdate {
                            customer_id: &basket.customer_id,
                            provider: PaymentProvider::Stripe,
                            provider_customer_id: stripe_customer,
                            payment_method_id: Some(&method),
                            card: card.as_ref(),
                        },
                        now,
                    )
                    .await?;
                self.store.close_basket(&basket.id, now).await?;
                self.store
                    .retry_past_due_now(&basket.customer_id, now)
                    .await?;
                self.run_due_billing_of(&basket.customer_id).await?;
                Ok(())
            }
        }
    }

    /// The purchase in `basket` is paid (or needs no payment): its subscription starts.
    /// A basket completed before is left as it is.
    async fn complete_basket(
        &self,
        basket: &Basket,
        payment: Option<&PaymentIntent>,
        setup: Option<&SetupIntent>,
    ) -> Result<(), CoreError> {
        if basket.status == BasketStatus::Completed {
            return Ok(());
        }
        let package_id = basket
            .package_id
            .as_deref()
            .ok_or_else(|| CoreError::Invalid("The basket has no package".into()))?;
        let package = self
            .store
            .package(package_id)
            .await?
            .ok_or(CoreError::NotFound("package"))?;
        let now = self.now();
        let subscription = new_subscription(basket, &package, now);
        let transaction = payment
            .filter(|intent| intent.amount > 0)
            .map(|intent| Transaction {
                id: Transaction::new_id(),
                customer_id: basket.customer_id.clone(),
                subscription_id: Some(subscription.id.clone()),
                basket_id: Some(basket.id.clone()),
                kind: TransactionKind::Payment,
                provider: PaymentProvider::Stripe,
                external_id: intent.charge_id().unwrap_or_else(|| intent.id.clone()),
                reference: intent.id.clone(),
                description: package.title.clone(),
                amount: Money {
                    minor_units: intent.amount,
                    currency: package.price.currency,
                },
                succeeded: true,
                provider_message: None,
                period: Some(0),
                created_at: now,
            });
        let saved_card = match (payment, setup) {
            (Some(intent), _) if package.recurring => card_of_payment_intent(intent),
            (_, Some(intent)) => card_of_setup_intent(intent),
            _ => None,
        };
        let stripe_customer = payment
            .and_then(|intent| intent.customer.clone())
            .or_else(|| setup.and_then(|intent| intent.customer.clone()));
        let billing = match (&saved_card, &stripe_customer) {
            (Some((method, card)), Some(stripe_customer)) => Some(BillingProfileUpdate {
                customer_id: &basket.customer_id,
                provider: PaymentProvider::Stripe,
                provider_customer_id: stripe_customer,
                payment_method_id: Some(method),
                card: card.as_ref(),
            }),
            _ => None,
        };
        self.store
            .complete_purchase(
                &basket.id,
                &subscription,
                transaction.as_ref(),
                billing.as_ref(),
                Some((1, subscription.current_period_end)),
                now,
            )
            .await?;
        Ok(())
    }
}

/// The subscription a completed basket starts: a trial first when the package has one,
/// else a paid first period.
fn new_subscription(basket: &Basket, package: &Package, now: DateTime<Utc>) -> Subscription {
    let trial = basket.kind == BasketKind::Setup;
    let period_end = match (trial, package.trial_days) {
        (true, Some(days)) => now + chrono::Duration::days(i64::from(days)),
        _ => add_period(now, package.interval, 1),
    };
    Subscription {
        id: Subscription::new_id(),
        customer_id: basket.customer_id.clone(),
        package_id: package.id.clone(),
        provider: PaymentProvider::Stripe,
        origin_reference: basket.id.clone(),
        status: if trial {
            SubscriptionStatus::Trialing
        } else {
            SubscriptionStatus::Active
        },
        recurring: package.recurring,
        auto_renew: package.recurring,
        price: package.price,
        current_period: 0,
        current_period_start: now,
        current_period_end: period_end,
        access_until: (!package.recurring).then_some(period_end),
        cancel_at_period_end: false,
        cancelled_at: None,
        ended_at: None,
        last_failure_code: None,
        created_at: now,
    }
}

/// Whether `discount` may be used now on `package_id` at `price`.
fn check_discount(
    discount: &Discount,
    package_id: &str,
    price: Money,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let code = &discount.code;
    if !discount.active {
        return Err(CoreError::Invalid(format!(
            "The discount code {code:?} is not valid"
        )));
    }
    if discount.valid_from.is_some_and(|from| now < from) {
        return Err(CoreError::Invalid(format!(
            "The discount code {code:?} is not valid yet"
        )));
    }
    if discount.valid_until.is_some_and(|until| now >= until) {
        return Err(CoreError::Invalid(format!(
            "The discount code {code:?} has expired"
        )));
    }
    if !discount.package_ids.is_empty() && !discount.package_ids.iter().any(|id| id == package_id) {
        return Err(CoreError::Invalid(format!(
            "The discount code {code:?} does not apply to this package"
        )));
    }
    if let DiscountValue::Fixed(amount) = discount.value
        && amount.currency != price.currency
    {
        return Err(CoreError::Invalid(format!(
            "The discount code {code:?} is in {}, the package in {}",
            amount.currency.code(),
            price.currency.code()
        )));
    }
    Ok(())
}
