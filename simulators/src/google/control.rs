//! The Google Play simulator's control surface: the user's side (buying in the Play Store,
//! cancelling, restoring, pausing, fixing the payment method), the payment side (declining
//! renewals), the Play Console's (refunds and revocations, the RTDN topic's push
//! subscription, test notifications), and the machinery's (the state, the notification log,
//! pushing now, reset, the service account's key file).
//!
//! Purchases are identified by their token alone (tokens are unique across apps). What an
//! operation causes is pushed (first attempt) before it answers, and the attempts come back
//! in its answer.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::api::refusal_error;
use super::delivery::GooglePushReport;
use super::error::{ApiError, GoogleErrorResponse};
use super::notifications::{Notice, NotificationMessage, PushAttempt, PushState};
use super::purchases::{
    CancelledBy, NewProductPurchase, NewSubscription, ProductPurchase, Refund, Refusal,
    Subscription,
};
use super::wire::{ProductPurchaseResource, SubscriptionPurchaseV2};
use super::{
    GoogleApplication, GoogleBillingPeriod, GooglePushConfig, GoogleServiceAccountKey,
    GoogleSimulator, State,
};

/// The most messages one listing shows.
const MAX_MESSAGES_LISTED: u32 = 1000;

/// The region a purchase is made in when the request names none.
const DEFAULT_REGION_CODE: &str = "US";

/// The subscription id of the push subscription when the request names none.
const DEFAULT_SUBSCRIPTION_ID: &str = "play-rtdn";

/// Play's limit on obfuscated account and profile ids.
const MAX_OBFUSCATED_ID_LENGTH: usize = 64;

#[derive(Tags)]
enum GoogleControlTag {
    /// The Google Play simulator's control surface: play the user, the Play Store and the
    /// Play Console.
    GoogleControl,
}

/// A subscription bought in the Play Store.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleSubscriptionPurchaseRequest", rename_all = "camelCase")]
pub struct SubscriptionPurchaseRequest {
    /// Default: the first configured app.
    pub package_name: Option<String>,
    /// The subscription's product id.
    pub product_id: String,
    /// Default: the subscription's first base plan.
    pub base_plan_id: Option<String>,
    /// The buyer's country, ISO 3166-1 alpha-2; default `US`.
    pub region_code: Option<String>,
    /// What the app passed to `setObfuscatedAccountId` (at most 64 characters).
    pub obfuscated_external_account_id: Option<String>,
    /// What the app passed to `setObfuscatedProfileId` (at most 64 characters).
    pub obfuscated_external_profile_id: Option<String>,
    /// Bought by a license tester (`testPurchase`, `purchaseType` 0).
    pub test_purchase: Option<bool>,
    /// The subscription this purchase replaces (upgrade, downgrade, resubscription): it
    /// ends now, cancelled as replaced.
    pub linked_purchase_token: Option<String>,
}

/// A one-time product bought in the Play Store.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleProductPurchaseRequest", rename_all = "camelCase")]
pub struct ProductPurchaseRequest {
    /// Default: the first configured app.
    pub package_name: Option<String>,
    pub product_id: String,
    /// Default 1.
    pub quantity: Option<u32>,
    /// ISO 3166-1 alpha-2; default `US`.
    pub region_code: Option<String>,
    pub obfuscated_external_account_id: Option<String>,
    pub obfuscated_external_profile_id: Option<String>,
    pub test_purchase: Option<bool>,
}

/// What the app's billing library hands over for a purchase (`Purchase`'s JSON), and what
/// was pushed because of it.
#[derive(Object, Debug, Clone)]
#[oai(
    rename = "GooglePlayPurchase",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct PlayPurchase {
    /// `GPA.1234-5678-9012-34567`.
    pub order_id: String,
    pub package_name: String,
    pub product_id: String,
    /// Milliseconds since the epoch.
    pub purchase_time: i64,
    /// 0: purchased.
    pub purchase_state: u8,
    /// What the server verifies with the Play Developer API.
    pub purchase_token: String,
    pub quantity: u32,
    /// Subscriptions only.
    pub auto_renewing: Option<bool>,
    pub acknowledged: bool,
    pub obfuscated_account_id: Option<String>,
    pub obfuscated_profile_id: Option<String>,
    /// The pushes the purchase caused (first attempts).
    pub pushes: Vec<PushAttempt>,
}

/// A subscription as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(
    rename = "GoogleSubscriptionView",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct SubscriptionView {
    pub purchase_token: String,
    pub package_name: String,
    /// Renewals are declined until the payment is fixed (`/recover`).
    pub payments_declined: bool,
    /// Billing months of a pause that starts at the expiry time.
    pub scheduled_pause_months: Option<u32>,
    /// What `purchases.subscriptionsv2.get` answers.
    pub subscription: SubscriptionPurchaseV2,
    /// The pushes this operation caused (first attempts).
    pub pushes: Vec<PushAttempt>,
}

impl SubscriptionView {
    fn new(subscription: &Subscription) -> Self {
        Self {
            purchase_token: subscription.token.clone(),
            package_name: subscription.package_name.clone(),
            payments_declined: subscription.payment_declined,
            scheduled_pause_months: subscription.scheduled_pause,
            subscription: subscription.v2(),
            pushes: Vec::new(),
        }
    }
}

/// A one-time product purchase as the control surface shows it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleProductView", rename_all = "camelCase")]
pub struct ProductView {
    pub purchase_token: String,
    pub package_name: String,
    /// What `purchases.products.get` answers.
    pub purchase: ProductPurchaseResource,
    /// The pushes this operation caused (first attempts).
    pub pushes: Vec<PushAttempt>,
}

impl ProductView {
    fn new(product: &ProductPurchase) -> Self {
        Self {
            purchase_token: product.token.clone(),
            package_name: product.package_name.clone(),
            purchase: product.resource(),
            pushes: Vec::new(),
        }
    }
}

/// How the user cancels.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "GoogleUserCancellation", rename_all = "camelCase")]
pub struct UserCancellation {
    /// The cancel survey's answer: 0 other, 1 does not use it enough, 2 technical issues,
    /// 3 cost, 4 found a better app.
    #[oai(validator(maximum(value = "4")))]
    pub cancel_survey_reason: Option<u8>,
}

/// How long the user pauses.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GooglePause", rename_all = "camelCase")]
pub struct PauseRequest {
    /// Billing months, 1 to 3.
    pub months: u32,
}

/// The RTDN topic's push subscription.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "GoogleRtdnSettings",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct RtdnSettings {
    /// The push endpoint; absent: no subscription (notifications go to no one).
    pub endpoint: Option<String>,
    /// `projects/{project}/subscriptions/{id}`.
    pub subscription: Option<String>,
    /// Authenticated push: the service account named in the OIDC token.
    pub oidc_service_account_email: Option<String>,
    /// The OIDC token's `aud`.
    pub audience: Option<String>,
}

/// A new push subscription, or (no `endpoint`) none.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleRtdnSettingsRequest", rename_all = "camelCase")]
pub struct RtdnSettingsRequest {
    /// http(s); absent or null removes the subscription, dropping what it still owed.
    pub endpoint: Option<String>,
    /// Default `play-rtdn`.
    pub subscription_id: Option<String>,
    /// Authenticated push with an OIDC token naming this service account; absent: pushes
    /// carry no `Authorization`.
    pub oidc_service_account_email: Option<String>,
    /// The OIDC token's `aud`; default the endpoint.
    pub audience: Option<String>,
}

/// Which app a test notification is about.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "GoogleTestNotificationRequest", rename_all = "camelCase")]
pub struct TestNotificationRequest {
    /// Default: the first configured app.
    pub package_name: Option<String>,
}

/// Published messages, newest first.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleNotificationLog")]
pub struct NotificationLog {
    pub messages: Vec<NotificationMessage>,
}

/// A base plan as configured.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleBasePlanView", rename_all = "camelCase")]
pub struct BasePlanView {
    pub base_plan_id: String,
    /// ISO 8601, as the Play Console shows it: `P1M`, `P7D`.
    pub billing_period: String,
    pub price_micros: i64,
    pub currency_code: String,
    pub grace_period_days: u32,
    pub account_hold_days: u32,
}

/// A subscription product as configured.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleSubscriptionProductView", rename_all = "camelCase")]
pub struct SubscriptionProductView {
    pub product_id: String,
    pub base_plans: Vec<BasePlanView>,
}

/// An app and what it sells.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleApplicationView", rename_all = "camelCase")]
pub struct ApplicationView {
    pub package_name: String,
    pub subscriptions: Vec<SubscriptionProductView>,
    pub one_time_products: Vec<String>,
}

impl From<&GoogleApplication> for ApplicationView {
    fn from(application: &GoogleApplication) -> Self {
        Self {
            package_name: application.package_name.clone(),
            subscriptions: application
                .subscriptions
                .iter()
                .map(|subscription| SubscriptionProductView {
                    product_id: subscription.product_id.clone(),
                    base_plans: subscription
                        .base_plans
                        .iter()
                        .map(|plan| BasePlanView {
                            base_plan_id: plan.base_plan_id.clone(),
                            billing_period: match plan.billing_period {
                                GoogleBillingPeriod::Days(days) => format!("P{days}D"),
                                GoogleBillingPeriod::Months(months) => format!("P{months}M"),
                            },
                            price_micros: plan.price_micros,
                            currency_code: plan.currency_code.clone(),
                            grace_period_days: plan.grace_period_days,
                            account_hold_days: plan.account_hold_days,
                        })
                        .collect(),
                })
                .collect(),
            one_time_products: application.one_time_products.clone(),
        }
    }
}

/// Everything the account holds.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GoogleState")]
pub struct GoogleState {
    /// The configured apps and their products.
    pub applications: Vec<ApplicationView>,
    /// Oldest first.
    pub subscriptions: Vec<SubscriptionView>,
    /// Oldest first.
    pub products: Vec<ProductView>,
    pub push: RtdnSettings,
}

#[derive(ApiResponse)]
pub enum ControlResponse<T: poem_openapi::types::ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>),
    /// Google's error: a state that does not allow it, or a malformed request.
    #[oai(status = 400)]
    BadRequest(Json<GoogleErrorResponse>),
    /// No purchase has this token, or no app this package name.
    #[oai(status = 404)]
    NotFound(Json<GoogleErrorResponse>),
}

impl<T: poem_openapi::types::ToJSON> From<Result<T, Refusal>> for ControlResponse<T> {
    fn from(result: Result<T, Refusal>) -> Self {
        match result {
            Ok(body) => Self::Ok(Json(body)),
            Err(Refusal::UnknownPurchase) => {
                Self::NotFound(Json(ApiError::no_such_purchase().body))
            }
            Err(refusal) => {
                let error = refusal_error(&refusal);
                if error.code() == 404 {
                    Self::NotFound(Json(error.body))
                } else {
                    Self::BadRequest(Json(error.body))
                }
            }
        }
    }
}

#[derive(ApiResponse)]
pub enum ResetResponse {
    /// Every purchase and notification is forgotten.
    #[oai(status = 204)]
    Reset,
}

#[derive(ApiResponse)]
pub enum KeyResponse {
    #[oai(status = 200)]
    Ok(Json<Box<GoogleServiceAccountKey>>),
    /// The simulator has no keys (never the case when built by `GoogleSimulator::new`).
    #[oai(status = 404)]
    NotFound,
}

/// The control surface, mounted by the host in its control OpenAPI service.
pub struct SimGoogleControlApi {
    simulator: GoogleSimulator,
}

impl SimGoogleControlApi {
    pub(crate) fn new(simulator: GoogleSimulator) -> Self {
        Self { simulator }
    }

    /// Runs an operation on one subscription (by token, in whichever app), pushes what it
    /// caused, and answers the subscription after it.
    async fn on_subscription(
        &self,
        token: &str,
        operation: impl FnOnce(&mut State, &str, chrono::DateTime<chrono::Utc>) -> Result<(), Refusal>,
    ) -> ControlResponse<SubscriptionView> {
        let (result, published) = self.simulator.with_state(|state, now| {
            let package = state.purchases.subscription_package(token)?;
            operation(state, &package, now)?;
            state
                .purchases
                .subscription(&package, token)
                .map(SubscriptionView::new)
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut view| {
                view.pushes = pushes;
                view
            })
            .into()
    }

    /// The package a request names, or the first configured one.
    fn package_or_default(&self, package_name: Option<String>) -> Result<String, Refusal> {
        package_name
            .or_else(|| {
                self.simulator
                    .config()
                    .applications
                    .first()
                    .map(|application| application.package_name.clone())
            })
            .ok_or_else(|| Refusal::InvalidRequest("no app is configured".into()))
    }
}

/// The push subscription as the control surface shows it.
fn push_settings(state: &State) -> RtdnSettings {
    let target = state.outbox.target();
    let oidc = target.and_then(|target| target.oidc.as_ref());
    RtdnSettings {
        endpoint: target.map(|target| target.endpoint.clone()),
        subscription: target.map(|target| target.subscription.clone()),
        oidc_service_account_email: oidc.map(|oidc| oidc.service_account_email.clone()),
        audience: oidc.map(|oidc| oidc.audience.clone()),
    }
}

/// Checks what the app passes on to a purchase.
fn check_purchase_fields(
    region_code: Option<String>,
    obfuscated_ids: [&Option<String>; 2],
) -> Result<String, Refusal> {
    let region_code = region_code.unwrap_or_else(|| DEFAULT_REGION_CODE.to_owned());
    if region_code.len() != 2 || !region_code.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Refusal::InvalidRequest(
            "regionCode must be an ISO 3166-1 alpha-2 code, e.g. DE".into(),
        ));
    }
    if obfuscated_ids.iter().any(|id| {
        id.as_ref()
            .is_some_and(|id| id.len() > MAX_OBFUSCATED_ID_LENGTH)
    }) {
        return Err(Refusal::InvalidRequest(format!(
            "obfuscated ids are at most {MAX_OBFUSCATED_ID_LENGTH} characters"
        )));
    }
    Ok(region_code)
}

#[OpenApi(
    prefix_path = "/control/google",
    tag = "GoogleControlTag::GoogleControl"
)]
impl SimGoogleControlApi {
    /// Buy a subscription
    ///
    /// What the user does in the Play Store: the subscription starts now, active and paid
    /// for its first period, not yet acknowledged (`SUBSCRIPTION_PURCHASED`). Answers what
    /// the app's billing library would hand over: the purchase token and order id.
    #[oai(
        path = "/subscriptions",
        method = "post",
        operation_id = "buyGoogleSubscription"
    )]
    async fn buy_subscription(
        &self,
        body: Json<SubscriptionPurchaseRequest>,
    ) -> ControlResponse<PlayPurchase> {
        let request = body.0;
        let (result, published) = self.simulator.with_state(|state, now| {
            let region_code = check_purchase_fields(
                request.region_code,
                [
                    &request.obfuscated_external_account_id,
                    &request.obfuscated_external_profile_id,
                ],
            )?;
            let subscription = state.purchases.buy_subscription(
                NewSubscription {
                    package_name: self.package_or_default(request.package_name)?,
                    product_id: request.product_id,
                    base_plan_id: request.base_plan_id,
                    region_code,
                    obfuscated_account_id: request.obfuscated_external_account_id,
                    obfuscated_profile_id: request.obfuscated_external_profile_id,
                    test_purchase: request.test_purchase.unwrap_or(false),
                    linked_purchase_token: request.linked_purchase_token,
                },
                now,
            )?;
            Ok(PlayPurchase {
                order_id: subscription.latest_order_id(),
                package_name: subscription.package_name.clone(),
                product_id: subscription.product_id.clone(),
                purchase_time: subscription.start_time.timestamp_millis(),
                purchase_state: 0,
                purchase_token: subscription.token.clone(),
                quantity: 1,
                auto_renewing: Some(true),
                acknowledged: false,
                obfuscated_account_id: subscription.obfuscated_account_id.clone(),
                obfuscated_profile_id: subscription.obfuscated_profile_id.clone(),
                pushes: Vec::new(),
            })
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut purchase| {
                purchase.pushes = pushes;
                purchase
            })
            .into()
    }

    /// Buy a one-time product
    ///
    /// What the user does in the Play Store: purchased now, neither acknowledged nor
    /// consumed (`ONE_TIME_PRODUCT_PURCHASED`).
    #[oai(path = "/products", method = "post", operation_id = "buyGoogleProduct")]
    async fn buy_product(
        &self,
        body: Json<ProductPurchaseRequest>,
    ) -> ControlResponse<PlayPurchase> {
        let request = body.0;
        let (result, published) = self.simulator.with_state(|state, now| {
            let region_code = check_purchase_fields(
                request.region_code,
                [
                    &request.obfuscated_external_account_id,
                    &request.obfuscated_external_profile_id,
                ],
            )?;
            let product = state.purchases.buy_product(
                NewProductPurchase {
                    package_name: self.package_or_default(request.package_name)?,
                    product_id: request.product_id,
                    quantity: request.quantity.unwrap_or(1),
                    region_code,
                    obfuscated_account_id: request.obfuscated_external_account_id,
                    obfuscated_profile_id: request.obfuscated_external_profile_id,
                    test_purchase: request.test_purchase.unwrap_or(false),
                },
                now,
            )?;
            Ok(PlayPurchase {
                order_id: product.order_id.clone(),
                package_name: product.package_name.clone(),
                product_id: product.product_id.clone(),
                purchase_time: product.purchase_time.timestamp_millis(),
                purchase_state: 0,
                purchase_token: product.token.clone(),
                quantity: product.quantity,
                auto_renewing: None,
                acknowledged: false,
                obfuscated_account_id: product.obfuscated_account_id.clone(),
                obfuscated_profile_id: product.obfuscated_profile_id.clone(),
                pushes: Vec::new(),
            })
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut purchase| {
                purchase.pushes = pushes;
                purchase
            })
            .into()
    }

    /// A subscription
    #[oai(
        path = "/subscriptions/:token",
        method = "get",
        operation_id = "getGoogleSubscription"
    )]
    async fn subscription(&self, token: Path<String>) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |_, _, _| Ok(())).await
    }

    /// Decline the subscription's renewals
    ///
    /// From now on every charge is declined (the card expired): the next renewal fails, and
    /// the subscription goes through the base plan's grace period and account hold to its
    /// expiry unless recovered.
    #[oai(
        path = "/subscriptions/:token/decline_payments",
        method = "post",
        operation_id = "declineGoogleSubscriptionPayments"
    )]
    async fn decline_payments(&self, token: Path<String>) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |state, package, _| {
            state
                .purchases
                .decline_payments(package, &token)
                .map(|_| ())
        })
        .await
    }

    /// Fix the payment method
    ///
    /// Charges stop being declined. A subscription in its grace period (keeping its billing
    /// date) or on account hold (billed from now on) is charged now:
    /// `SUBSCRIPTION_RECOVERED`.
    #[oai(
        path = "/subscriptions/:token/recover",
        method = "post",
        operation_id = "recoverGoogleSubscription"
    )]
    async fn recover(&self, token: Path<String>) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |state, package, now| {
            state.purchases.recover(package, &token, now).map(|_| ())
        })
        .await
    }

    /// Cancel as the user
    ///
    /// What the user does in the Play Store: auto-renewal stops (`SUBSCRIPTION_CANCELED`,
    /// cancel reason 0), access continues to the expiry time, then
    /// `SUBSCRIPTION_EXPIRED`. On hold or paused there is no access left: it expires now.
    #[oai(
        path = "/subscriptions/:token/cancel",
        method = "post",
        operation_id = "cancelGoogleSubscriptionAsUser"
    )]
    async fn cancel(
        &self,
        token: Path<String>,
        body: Json<UserCancellation>,
    ) -> ControlResponse<SubscriptionView> {
        let by = CancelledBy::User {
            survey_reason: body.0.cancel_survey_reason,
        };
        self.on_subscription(&token, |state, package, now| {
            state.purchases.cancel(package, &token, by, now).map(|_| ())
        })
        .await
    }

    /// Restore as the user
    ///
    /// The user resubscribes to a cancelled subscription before it expires: auto-renewal is
    /// back on (`SUBSCRIPTION_RESTARTED`).
    #[oai(
        path = "/subscriptions/:token/restart",
        method = "post",
        operation_id = "restartGoogleSubscription"
    )]
    async fn restart(&self, token: Path<String>) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |state, package, now| {
            state.purchases.restart(package, &token, now).map(|_| ())
        })
        .await
    }

    /// Pause as the user
    ///
    /// A pause of 1 to 3 billing months from the end of the current period
    /// (`SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED`); it starts then (`SUBSCRIPTION_PAUSED`) and
    /// resumes with a charge (`SUBSCRIPTION_RECOVERED`, or account hold if declined).
    #[oai(
        path = "/subscriptions/:token/pause",
        method = "post",
        operation_id = "pauseGoogleSubscription"
    )]
    async fn pause(
        &self,
        token: Path<String>,
        body: Json<PauseRequest>,
    ) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |state, package, now| {
            state
                .purchases
                .schedule_pause(package, &token, body.0.months, now)
                .map(|_| ())
        })
        .await
    }

    /// Refund the latest order
    ///
    /// What the Play Console's refund does: the latest order is refunded (a voided purchase
    /// notification); the subscription goes on.
    #[oai(
        path = "/subscriptions/:token/refund",
        method = "post",
        operation_id = "refundGoogleSubscription"
    )]
    async fn refund_subscription(&self, token: Path<String>) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |state, package, now| {
            state
                .purchases
                .refund_subscription(package, &token, now)
                .map(|_| ())
        })
        .await
    }

    /// Refund and revoke
    ///
    /// What the Play Console's "refund and remove entitlement" does: access ends now
    /// (`SUBSCRIPTION_REVOKED`) and the latest order is refunded (a voided purchase
    /// notification).
    #[oai(
        path = "/subscriptions/:token/revoke",
        method = "post",
        operation_id = "revokeGoogleSubscription"
    )]
    async fn revoke_subscription(&self, token: Path<String>) -> ControlResponse<SubscriptionView> {
        self.on_subscription(&token, |state, package, now| {
            state
                .purchases
                .revoke_subscription(package, &token, Refund::Full, now)
                .map(|_| ())
        })
        .await
    }

    /// Refund a one-time product
    ///
    /// The purchase becomes "canceled" (purchase state 1) and a voided purchase
    /// notification is sent.
    #[oai(
        path = "/products/:token/refund",
        method = "post",
        operation_id = "refundGoogleProduct"
    )]
    async fn refund_product(&self, token: Path<String>) -> ControlResponse<ProductView> {
        let (result, published) = self.simulator.with_state(|state, now| {
            let package = state.purchases.product_package(&token)?;
            state
                .purchases
                .refund_product(&package, &token, now)
                .map(ProductView::new)
        });
        let pushes = self.simulator.deliver_caused(&published).await;
        result
            .map(|mut view| {
                view.pushes = pushes;
                view
            })
            .into()
    }

    /// The push subscription
    #[oai(path = "/rtdn", method = "get", operation_id = "getGoogleRtdnSettings")]
    async fn rtdn(&self) -> Json<RtdnSettings> {
        Json(push_settings(&self.simulator.lock()))
    }

    /// Set the push subscription
    ///
    /// Where the RTDN topic's messages are pushed, and how (authenticated push with an OIDC
    /// token for `oidcServiceAccountEmail` and `audience`). Without `endpoint`, the
    /// subscription is removed and what it still owed is dropped.
    #[oai(path = "/rtdn", method = "put", operation_id = "setGoogleRtdnSettings")]
    async fn set_rtdn(&self, body: Json<RtdnSettingsRequest>) -> ControlResponse<RtdnSettings> {
        let request = body.0;
        let push = request.endpoint.map(|endpoint| GooglePushConfig {
            endpoint,
            subscription_id: request
                .subscription_id
                .unwrap_or_else(|| DEFAULT_SUBSCRIPTION_ID.to_owned()),
            oidc_service_account_email: request.oidc_service_account_email,
            audience: request.audience,
        });
        match self.simulator.set_push(push) {
            Ok(()) => ControlResponse::Ok(Json(push_settings(&self.simulator.lock()))),
            Err(error) => {
                ControlResponse::BadRequest(Json(ApiError::bad_request(&error.to_string()).body))
            }
        }
    }

    /// Send a test notification
    ///
    /// What the Play Console's "Send test notification" does: a `testNotification`,
    /// pushed (first attempt) before the answer, which is the message as logged.
    #[oai(
        path = "/rtdn/test",
        method = "post",
        operation_id = "sendGoogleTestNotification"
    )]
    async fn test_notification(
        &self,
        body: Json<TestNotificationRequest>,
    ) -> ControlResponse<NotificationMessage> {
        let (published_test, published) = self.simulator.with_state(|state, now| {
            let package = self.package_or_default(body.0.package_name)?;
            if !state.purchases.has_application(&package) {
                return Err(Refusal::UnknownApplication(package));
            }
            let notice = Notice::Test {
                package_name: package,
                at: now,
            };
            Ok(state.outbox.publish(&notice, now))
        });
        let message_id = match published_test {
            Ok(message_id) => message_id,
            Err(refusal) => return Err(refusal).into(),
        };
        let mut ids = published;
        ids.push(message_id.clone());
        self.simulator.deliver_caused(&ids).await;
        let state = self.simulator.lock();
        state
            .outbox
            .message(&message_id)
            .cloned()
            .ok_or(Refusal::UnknownPurchase)
            .into()
    }

    /// Notifications
    ///
    /// Published messages, newest first, each with its `DeveloperNotification` and every
    /// push attempt. `state` keeps one kind (`pending` for what is still owed), `limit`
    /// (default 100, at most 1000) how many.
    #[oai(
        path = "/notifications",
        method = "get",
        operation_id = "listGoogleNotifications"
    )]
    async fn notifications(
        &self,
        state: Query<Option<PushState>>,
        limit: Query<Option<u32>>,
    ) -> Json<NotificationLog> {
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
        Json(NotificationLog { messages })
    }

    /// Push a notification again
    ///
    /// What Pub/Sub does when it is not sure a push was received: the same message (same
    /// `messageId`, same data) is pushed again now, whatever became of it before. For
    /// checking that a receiver ignores what it has already processed. 404 for a message
    /// the simulator does not have (or no longer keeps), or when there is no push
    /// subscription.
    #[oai(
        path = "/notifications/:messageId/redeliver",
        method = "post",
        operation_id = "redeliverGoogleNotification"
    )]
    async fn redeliver(
        &self,
        #[oai(name = "messageId")] message_id: Path<String>,
    ) -> ControlResponse<NotificationMessage> {
        let now = self.simulator.now();
        if !self.simulator.lock().outbox.redeliver(&message_id, now) {
            return Err(Refusal::UnknownPurchase).into();
        }
        self.simulator.deliver_due().await;
        let state = self.simulator.lock();
        state
            .outbox
            .message(&message_id)
            .cloned()
            .ok_or(Refusal::UnknownPurchase)
            .into()
    }

    /// Push the notifications due now
    ///
    /// Settles what fell due on the simulator's clock, then pushes every message due (new
    /// ones, and retries whose time has come) and answers with the attempts, without
    /// waiting for the delivery loop.
    #[oai(
        path = "/notifications/deliver",
        method = "post",
        operation_id = "deliverGoogleNotifications"
    )]
    async fn deliver(&self) -> Json<GooglePushReport> {
        Json(self.simulator.deliver_due().await)
    }

    /// The account's state
    ///
    /// The apps, every subscription and product purchase (as the API shows them, oldest
    /// first), and the push subscription.
    #[oai(path = "/state", method = "get", operation_id = "getGoogleState")]
    async fn state(&self) -> Json<GoogleState> {
        let (state, _) = self.simulator.with_state(|state, _| GoogleState {
            applications: self
                .simulator
                .config()
                .applications
                .iter()
                .map(ApplicationView::from)
                .collect(),
            subscriptions: state
                .purchases
                .subscriptions()
                .into_iter()
                .map(SubscriptionView::new)
                .collect(),
            products: state
                .purchases
                .products()
                .into_iter()
                .map(ProductView::new)
                .collect(),
            push: push_settings(state),
        });
        Json(state)
    }

    /// Forget everything
    ///
    /// Every purchase and notification is forgotten; the apps, the keys, the access tokens
    /// and the push subscription stay.
    #[oai(path = "/reset", method = "post", operation_id = "resetGoogle")]
    async fn reset(&self) -> ResetResponse {
        let mut state = self.simulator.lock();
        state.purchases.clear();
        state.outbox.clear();
        ResetResponse::Reset
    }

    /// The service account's key file
    ///
    /// The JSON key file of the service account the API is called as, its `token_uri`
    /// pointing at the simulator: what `google.oauth2.service_account.Credentials` or the
    /// server's Google client signs in with.
    #[oai(
        path = "/service_account_key",
        method = "get",
        operation_id = "getGoogleServiceAccountKey"
    )]
    async fn service_account_key(&self) -> KeyResponse {
        match self.simulator.service_account_key() {
            Some(key) => KeyResponse::Ok(Json(Box::new(key))),
            None => KeyResponse::NotFound,
        }
    }
}
