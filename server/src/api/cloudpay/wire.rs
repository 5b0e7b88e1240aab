//! CloudPay's wire types, PascalCase as published, and their conversions from the core.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, Union};

use crate::api::strict::JsonString;
use crate::core::model::{BillingProfile, Subscription, SubscriptionStatus, Transaction};
use crate::core::model::{CustomFieldValue, Customer, Package, Period, PlaybackView, Session};
use crate::core::{AccountView, Presence, Standing, SubscriptionView};

const EXAMPLE_CUSTOMER_ID: &str = "c5d702fb-15f7-499b-90d5-cc36922e2ab2";
const EXAMPLE_SESSION_ID: &str = "9b1c6f0e2f5a4cf6a8c3d1e7b2a4f5c6";
const EXAMPLE_PACKAGE_ID: &str = "8488ee27-e87b-451b-bca8-abe4edea5be9";

/// Where the caller is, from the `location` header or the session's country.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct LocationFromIp {
    pub name: Option<String>,
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    pub state: Option<String>,
    pub city: Option<String>,
}

/// The customer and session behind a credential.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct CustomerSession {
    /// The session id; the same value as `AuthenticationToken`, usable as `apisessionid`.
    pub id: String,
    pub customer_id: String,
    pub customer_email_address: String,
    pub customer_first_name: String,
    pub customer_last_name: String,
    pub customer_billing_profile_created_at: Option<DateTime<Utc>>,
    pub customer_billing_profile_expires_at: Option<DateTime<Utc>>,
    pub customer_billing_profile_last_failed_at: Option<DateTime<Utc>>,
    /// `StripeCard` once a card is on file.
    pub customer_billing_profile_provider: Option<String>,
    /// `Visa XXXX-XXXX-XXXX-4242` once a card is on file.
    pub customer_billing_profile_reference: Option<String>,
    pub customer_deleted: bool,
    /// Comma-separated entitlements the customer holds now.
    pub customer_entitlements: String,
    /// Comma-separated ids of the packages the customer subscribes to.
    pub customer_packages: String,
    pub customer_full_access_until: Option<DateTime<Utc>>,
    pub customer_non_expiring_subscription_count: i64,
    pub customer_subscription_count: i64,
    pub requires_card_authentication_count: i64,
}

/// The session state returned by session start, presence, terminate and ksession.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct SessionModel {
    /// The server's time, in milliseconds since the Unix epoch.
    pub utc_now: i64,
    pub location_from_ip: LocationFromIp,
    /// `-1` when there is a live session, `0` when there is none.
    pub current_customer_session_status: i32,
    pub current_customer_session: Option<CustomerSession>,
    pub model_errors: BTreeMap<String, String>,
    /// Returned by session start only: pass it as `apisessionid` or in the `.auth` cookie.
    #[oai(skip_serializing_if_is_none)]
    pub authentication_token: Option<String>,
    pub page_url: Option<String>,
}

impl Example for SessionModel {
    fn example() -> Self {
        let mut model = SessionModel::from_presence(
            DateTime::<Utc>::from_timestamp_millis(1_592_915_757_873).unwrap_or_default(),
            "GB",
            &Presence {
                customer: Some(Customer {
                    id: EXAMPLE_CUSTOMER_ID.into(),
                    issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_BoxOffice"
                        .into(),
                    subject: "5f0a3b4c-1d2e-4f5a-8b9c-0d1e2f3a4b5c".into(),
                    email: "customer@email.com".into(),
                    first_name: "Lorem".into(),
                    last_name: "Ipsum".into(),
                    deleted: false,
                    created_at: DateTime::<Utc>::default(),
                }),
                session: Some(Session {
                    id: EXAMPLE_SESSION_ID.into(),
                    customer_id: EXAMPLE_CUSTOMER_ID.into(),
                    country_code: Some("GB".into()),
                    started_at: DateTime::<Utc>::default(),
                    last_seen_at: DateTime::<Utc>::default(),
                    expires_at: DateTime::<Utc>::default(),
                }),
                standing: Standing::default(),
            },
        );
        model.authentication_token = Some(EXAMPLE_SESSION_ID.into());
        model
    }
}

impl SessionModel {
    pub fn from_presence(now: DateTime<Utc>, fallback_country: &str, presence: &Presence) -> Self {
        let country = presence
            .session
            .as_ref()
            .and_then(|session| session.country_code.clone())
            .unwrap_or_else(|| fallback_country.to_owned());
        let current = match (&presence.customer, &presence.session) {
            (Some(customer), Some(session)) => {
                let standing = &presence.standing;
                let billing = standing.billing.as_ref();
                let card = billing.and_then(|profile| profile.card.as_ref());
                let live: Vec<&SubscriptionView> = standing.live(now).collect();
                Some(CustomerSession {
                    id: session.id.clone(),
                    customer_id: customer.id.clone(),
                    customer_email_address: customer.email.clone(),
                    customer_first_name: customer.first_name.clone(),
                    customer_last_name: customer.last_name.clone(),
                    customer_billing_profile_created_at: card
                        .and(billing.map(|profile| profile.created_at)),
                    customer_billing_profile_expires_at: card.and_then(|card| card.expires_at()),
                    customer_billing_profile_last_failed_at: billing
                        .and_then(|profile| profile.last_failed_at),
                    customer_billing_profile_provider: card
                        .and(billing.map(|profile| profile.provider.method_name().to_owned())),
                    customer_billing_profile_reference: card.map(|card| card.reference()),
                    customer_deleted: customer.deleted,
                    customer_entitlements: standing.entitlements.join(","),
                    customer_packages: standing.package_ids.join(","),
                    customer_full_access_until: standing.full_access_until(now),
                    customer_non_expiring_subscription_count: live
                        .iter()
                        .filter(|view| view.subscription.expires_at().is_none())
                        .count()
                        as i64,
                    customer_subscription_count: live.len() as i64,
                    requires_card_authentication_count: standing.requires_card_authentication,
                })
            }
            _ => None,
        };
        SessionModel {
            utc_now: now.timestamp_millis(),
            location_from_ip: LocationFromIp {
                name: None,
                country: None,
                country_code: country,
                state: None,
                city: None,
            },
            current_customer_session_status: if current.is_some() { -1 } else { 0 },
            current_customer_session: current,
            model_errors: BTreeMap::new(),
            authentication_token: None,
            page_url: None,
        }
    }
}

/// `SessionModel` plus the playback session.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct KSessionModel {
    #[oai(flatten)]
    pub session: SessionModel,
    /// `-1` granted; `0` not authenticated; `1` the customer has no subscriptions;
    /// `3` blocked after failed logins; `5` concurrency limit or entitlements do not allow it.
    pub status: i32,
    /// The signed playback session for the entry, when granted.
    #[oai(rename = "KSession")]
    pub ksession: Option<String>,
    pub error_message: Option<String>,
}

impl Example for KSessionModel {
    fn example() -> Self {
        let mut session = SessionModel::example();
        session.authentication_token = None;
        KSessionModel {
            session,
            status: 1,
            ksession: None,
            error_message: Some("Customer has no subscriptions".into()),
        }
    }
}

/// Email and password, as a JSON object.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct LoginRequest {
    pub emailaddress: JsonString,
    pub password: JsonString,
}

impl Example for LoginRequest {
    fn example() -> Self {
        LoginRequest {
            emailaddress: "alice@example.com".into(),
            password: "Alice-Passw0rd!".into(),
        }
    }
}

/// The session start body: a JSON object, or a string `"emailaddress: foo@bar.com, password: somePass"`.
#[derive(Debug, Clone, Union)]
pub enum LoginPayload {
    Object(LoginRequest),
    Text(String),
}

impl LoginPayload {
    /// Email and password from either form; `None` if the string form does not name both.
    pub fn credentials(self) -> Option<(String, String)> {
        match self {
            LoginPayload::Object(request) => {
                Some((request.emailaddress.into(), request.password.into()))
            }
            LoginPayload::Text(text) => {
                let mut email = None;
                let mut password = None;
                // The password may itself contain ", " — everything after its key belongs to it.
                let (head, tail) = match text.find("password:") {
                    Some(at) => (&text[..at], Some(&text[at + "password:".len()..])),
                    None => (text.as_str(), None),
                };
                for part in head.split(',') {
                    if let Some((key, value)) = part.split_once(':')
                        && key.trim().eq_ignore_ascii_case("emailaddress")
                    {
                        email = Some(value.trim().to_owned());
                    }
                }
                if let Some(tail) = tail {
                    password = Some(tail.trim().to_owned());
                }
                Some((email?, password?))
            }
        }
    }
}

/// A store's product id for an in-app-purchase package.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct IapData {
    /// `Amazon`, `Roku`, `Google` or `Apple`.
    pub platform: String,
    #[oai(rename = "ProductID")]
    pub product_id: String,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct MetadataEntry {
    pub name: String,
    pub code: String,
    pub value: String,
}

/// A package (subscription plan option).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct Plan {
    /// Pass it to the checkout as `packageId`.
    pub id: String,
    pub title: String,
    /// HTML.
    pub body: String,
    pub style: Option<String>,
    /// In major units of `Currency` (`59.99`).
    pub amount: f64,
    pub display_order: i64,
    pub entitlements: Vec<String>,
    /// ISO 4217.
    pub currency: String,
    pub amount_formatted: String,
    pub has_free_trial: bool,
    /// `14days`, when there is a free trial.
    pub trial_duration: Option<String>,
    /// The hosted checkout page for this package.
    pub purchase_url: String,
    /// How often it bills (`1months`); for a one-off pass, how long it lasts.
    pub interval: String,
    /// A fixed overall length (`12months`); `null` runs until cancelled.
    pub duration: Option<String>,
    #[oai(rename = "IAPData")]
    pub iap_data: Vec<IapData>,
    pub metadata: Vec<MetadataEntry>,
}

/// `1month`, `12months`, `7days`: CloudPay's count-and-unit periods.
pub fn period_text(period: Period) -> String {
    let plural = if period.count == 1 { "" } else { "s" };
    format!("{}{}{plural}", period.count, period.unit.as_str())
}

impl Plan {
    pub fn from_package(package: &Package, purchase_url: String) -> Self {
        Plan {
            id: package.id.clone(),
            title: package.title.clone(),
            body: package.body.clone(),
            style: package.style.clone(),
            amount: package.price.major_units(),
            display_order: package.display_order,
            entitlements: package.entitlements.clone(),
            currency: package.price.currency.code().to_owned(),
            amount_formatted: package.price.formatted(),
            has_free_trial: package.trial_days.is_some(),
            trial_duration: package.trial_days.map(|days| format!("{days}days")),
            purchase_url,
            interval: period_text(package.interval),
            duration: match (package.duration, package.recurring) {
                (Some(duration), _) => Some(period_text(duration)),
                (None, false) => Some(period_text(package.interval)),
                (None, true) => None,
            },
            iap_data: package
                .iap_products
                .iter()
                .map(|product| IapData {
                    platform: product.platform.as_str().to_owned(),
                    product_id: product.product_id.clone(),
                })
                .collect(),
            metadata: package
                .metadata
                .iter()
                .map(|item| MetadataEntry {
                    name: item.name.clone(),
                    code: item.code.clone(),
                    value: item.value.clone(),
                })
                .collect(),
        }
    }
}

fn example_plan() -> Plan {
    Plan {
        id: EXAMPLE_PACKAGE_ID.into(),
        title: "Monthly Pass".into(),
        body: "<p>Every match, live and on demand.</p>".into(),
        style: None,
        amount: 9.99,
        display_order: 1,
        entitlements: vec!["live".into(), "vod".into()],
        currency: "GBP".into(),
        amount_formatted: "£9.99".into(),
        has_free_trial: false,
        trial_duration: None,
        purchase_url: format!(
            "http://127.0.0.1:8080/cloudpay/sso/startbasket/{EXAMPLE_PACKAGE_ID}"
        ),
        interval: "1months".into(),
        duration: None,
        iap_data: vec![],
        metadata: vec![MetadataEntry {
            name: "Badge".into(),
            code: "badge".into(),
            value: "Most popular".into(),
        }],
    }
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct PackageList {
    pub subscription_plan_options: Vec<Plan>,
}

impl Example for PackageList {
    fn example() -> Self {
        PackageList {
            subscription_plan_options: vec![example_plan()],
        }
    }
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct SinglePackage {
    pub subscription_plan_options: Plan,
}

impl Example for SinglePackage {
    fn example() -> Self {
        SinglePackage {
            subscription_plan_options: example_plan(),
        }
    }
}

/// `type=iap` returns only packages sold through app stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PackageType {
    Iap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

/// The package 404 body of `/api/v1/package/{packageId}`, as documented.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct StatusMessage {
    pub status: u16,
    pub message: String,
}

impl Example for StatusMessage {
    fn example() -> Self {
        StatusMessage {
            status: 404,
            message: "package not found".into(),
        }
    }
}

/// A custom account field and the customer's value.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct CustomField {
    /// The field's UUID, to reference it in a PATCH.
    pub id: String,
    pub label: String,
    pub required: bool,
    pub value: Option<String>,
}

impl From<&CustomFieldValue> for CustomField {
    fn from(value: &CustomFieldValue) -> Self {
        CustomField {
            id: value.field.id.clone(),
            label: value.field.label.clone(),
            required: value.field.required,
            value: value.value.clone(),
        }
    }
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct CardDetails {
    /// `StripeCard` or `PayPal`.
    pub provider: String,
    pub reference: String,
    pub country: Option<String>,
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct BillingDetails {
    pub address_country: Option<String>,
    pub address_city: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address_state: Option<String>,
    pub address_zip: Option<String>,
    pub card_details: Option<CardDetails>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct SubscriptionPackage {
    pub id: String,
    pub name: String,
    pub title: String,
    pub description: String,
    /// `recurring` or `non-recurring`.
    #[oai(rename = "Type")]
    pub kind: String,
    pub amount: f64,
    pub currency_code: String,
    pub has_free_trial: bool,
    pub trial_duration: Option<String>,
    pub interval: String,
    pub duration: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct AccountSubscription {
    /// The customer subscription id (not the package id): pass it to the cancellation.
    pub id: String,
    /// `active` or `cancelled`.
    pub status: String,
    #[oai(rename = "Type")]
    pub kind: Option<String>,
    pub currency_code: Option<String>,
    pub expiry_date: Option<DateTime<Utc>>,
    pub renewal_date: Option<DateTime<Utc>>,
    #[oai(rename = "IsIAP")]
    pub is_iap: bool,
    pub package: SubscriptionPackage,
}

/// The customer's account.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct Account {
    pub email_address: String,
    pub first_name: String,
    pub last_name: String,
    pub custom_fields: Vec<CustomField>,
    pub billing_details: Option<BillingDetails>,
    /// Absent in the answer to a PATCH.
    #[oai(skip_serializing_if_is_none)]
    pub subscriptions: Option<Vec<AccountSubscription>>,
    pub entitlements: Vec<String>,
}

impl Account {
    pub fn from_view(view: &AccountView, with_subscriptions: bool) -> Self {
        let standing = &view.standing;
        Account {
            email_address: view.customer.email.clone(),
            first_name: view.customer.first_name.clone(),
            last_name: view.customer.last_name.clone(),
            custom_fields: view.custom_fields.iter().map(CustomField::from).collect(),
            billing_details: standing
                .billing
                .as_ref()
                .and_then(BillingDetails::from_profile),
            subscriptions: with_subscriptions.then(|| {
                standing
                    .subscriptions
                    .iter()
                    .map(AccountSubscription::from)
                    .collect()
            }),
            entitlements: standing.entitlements.clone(),
        }
    }
}

impl BillingDetails {
    /// The card on file; `None` until one is saved.
    fn from_profile(profile: &BillingProfile) -> Option<Self> {
        let card = profile.card.as_ref()?;
        Some(BillingDetails {
            address_country: card.country.clone(),
            address_city: None,
            address_line1: None,
            address_line2: None,
            address_state: None,
            address_zip: None,
            card_details: Some(CardDetails {
                provider: profile.provider.method_name().to_owned(),
                reference: card.reference(),
                country: card.country.clone(),
                expires: Some(format!("{:02}/{}", card.exp_month, card.exp_year)),
            }),
        })
    }
}

impl From<&Package> for SubscriptionPackage {
    fn from(package: &Package) -> Self {
        let plan = Plan::from_package(package, String::new());
        SubscriptionPackage {
            id: plan.id,
            name: plan.title.clone(),
            title: plan.title,
            description: plan.body,
            kind: if package.recurring {
                "recurring"
            } else {
                "non-recurring"
            }
            .into(),
            amount: plan.amount,
            currency_code: plan.currency,
            has_free_trial: plan.has_free_trial,
            trial_duration: plan.trial_duration,
            interval: plan.interval,
            duration: plan.duration,
        }
    }
}

/// CloudPay shows two states: a subscription that still runs (`active`, including a trial
/// and a renewal being retried) and one that will not renew or has ended (`cancelled`).
fn cloudpay_status(subscription: &Subscription) -> &'static str {
    match subscription.status {
        SubscriptionStatus::Trialing | SubscriptionStatus::Active | SubscriptionStatus::PastDue
            if !subscription.cancel_at_period_end =>
        {
            "active"
        }
        _ => "cancelled",
    }
}

impl From<&SubscriptionView> for AccountSubscription {
    fn from(view: &SubscriptionView) -> Self {
        let subscription = &view.subscription;
        AccountSubscription {
            id: subscription.id.clone(),
            status: cloudpay_status(subscription).into(),
            kind: Some(subscription.status.as_str().into()),
            currency_code: Some(subscription.price.currency.code().into()),
            expiry_date: subscription
                .access_until
                .or((!subscription.status.is_live()).then_some(subscription.current_period_end)),
            renewal_date: subscription.renews_at(),
            is_iap: subscription.provider.is_store(),
            package: SubscriptionPackage::from(&view.package),
        }
    }
}

impl Example for Account {
    fn example() -> Self {
        Account {
            email_address: "customer@email.com".into(),
            first_name: "Lorem".into(),
            last_name: "Ipsum".into(),
            custom_fields: vec![CustomField {
                id: "3f1e7c52-9a0b-4d8e-bc61-5a2f0d9e4c17".into(),
                label: "Favourite team".into(),
                required: false,
                value: Some("Rovers".into()),
            }],
            billing_details: None,
            subscriptions: Some(vec![]),
            entitlements: vec![],
        }
    }
}

/// A custom field value to set; `Id` is the field's UUID from the account.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct CustomFieldUpdate {
    pub id: JsonString,
    pub label: JsonString,
    pub required: bool,
    pub value: Option<JsonString>,
}

/// The fields to change; omitted fields stay as they are.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct AccountPatch {
    pub first_name: Option<JsonString>,
    pub last_name: Option<JsonString>,
    /// Not updatable: the email belongs to the identity provider. A different value is refused.
    pub email_address: Option<JsonString>,
    pub custom_fields: Option<Vec<CustomFieldUpdate>>,
}

impl Example for AccountPatch {
    fn example() -> Self {
        AccountPatch {
            first_name: Some("Alicia".into()),
            last_name: None,
            email_address: None,
            custom_fields: Some(vec![CustomFieldUpdate {
                id: "3f1e7c52-9a0b-4d8e-bc61-5a2f0d9e4c17".into(),
                label: "Favourite team".into(),
                required: false,
                value: Some("United".into()),
            }]),
        }
    }
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct ResumeEntry {
    pub entry_id: String,
    /// Playback position, in seconds.
    pub timestamp: i64,
    pub last_viewed_at: DateTime<Utc>,
}

impl From<&PlaybackView> for ResumeEntry {
    fn from(view: &PlaybackView) -> Self {
        ResumeEntry {
            entry_id: view.entry_id.clone(),
            timestamp: view.position_seconds,
            last_viewed_at: view.last_viewed_at,
        }
    }
}

/// What the customer watched, newest first by default.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ResumeList {
    pub page: u64,
    pub size: u64,
    pub order: Order,
    pub entries: Vec<ResumeEntry>,
}

impl Example for ResumeList {
    fn example() -> Self {
        ResumeList {
            page: 1,
            size: 20,
            order: Order::Desc,
            entries: vec![ResumeEntry {
                entry_id: "0_abcd1234".into(),
                timestamp: 0,
                last_viewed_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0)
                    .unwrap_or_default(),
            }],
        }
    }
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase", example)]
pub struct DrmValidation {
    pub granted: bool,
    pub reason: String,
}

impl Example for DrmValidation {
    fn example() -> Self {
        DrmValidation {
            granted: false,
            reason: "Customer has no subscriptions".into(),
        }
    }
}

/// The checkout request: the package (`SubscriptionPlanOptions[].Id`) to buy.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct CheckoutRequest {
    #[oai(rename = "packageId")]
    pub package_id: JsonString,
}

impl Example for CheckoutRequest {
    fn example() -> Self {
        CheckoutRequest {
            package_id: EXAMPLE_PACKAGE_ID.into(),
        }
    }
}

/// A basket: the Stripe payment intent (`pi_…`) or, for free trials, setup intent
/// (`seti_…`) to confirm with Stripe.js and the publishable key.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct CheckoutResponse {
    #[oai(rename = "basketId")]
    pub basket_id: String,
    #[oai(rename = "clientSecret")]
    pub client_secret: String,
    /// The intent waits for the customer to authenticate the card (3D Secure): call
    /// Stripe.js `handleNextAction` with the client secret.
    #[oai(rename = "authenticationRequired")]
    pub authentication_required: bool,
    #[oai(rename = "publicKey")]
    pub public_key: String,
    /// Whether a discount code can be applied to this basket (not to free trials).
    #[oai(rename = "discountsEnabled")]
    pub discounts_enabled: bool,
}

impl Example for CheckoutResponse {
    fn example() -> Self {
        CheckoutResponse {
            basket_id: "pi_3Q1a2b3C4d5E6f7G".into(),
            client_secret: "pi_3Q1a2b3C4d5E6f7G_secret_abc123".into(),
            authentication_required: false,
            public_key: "pk_test_boxofficesimulator".into(),
            discounts_enabled: true,
        }
    }
}

/// A discount code for a basket.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct DiscountRequest {
    #[oai(rename = "basketId")]
    pub basket_id: JsonString,
    pub code: JsonString,
}

impl Example for DiscountRequest {
    fn example() -> Self {
        DiscountRequest {
            basket_id: "pi_3Q1a2b3C4d5E6f7G".into(),
            code: "50OFF".into(),
        }
    }
}

/// The basket after the discount: confirm it with the same client secret.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct DiscountResponse {
    #[oai(rename = "clientSecret")]
    pub client_secret: String,
    /// What is left to pay, in major units.
    pub amount: f64,
    pub currency: String,
    /// A 100 % discount: the purchase is complete, there is nothing to confirm.
    pub completed: bool,
}

impl Example for DiscountResponse {
    fn example() -> Self {
        DiscountResponse {
            client_secret: "pi_3Q1a2b3C4d5E6f7G_secret_abc123".into(),
            amount: 5.0,
            currency: "GBP".into(),
            completed: false,
        }
    }
}

/// A setup intent to save a new card with Stripe.js.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct BillingUpdateResponse {
    #[oai(rename = "clientSecret")]
    pub client_secret: String,
    #[oai(rename = "publicKey")]
    pub public_key: String,
}

impl Example for BillingUpdateResponse {
    fn example() -> Self {
        BillingUpdateResponse {
            client_secret: "seti_1Q1a2b3C4d5E6f7G_secret_abc123".into(),
            public_key: "pk_test_boxofficesimulator".into(),
        }
    }
}

/// One payment attempt or refund.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct TransactionEntry {
    pub created_at: DateTime<Utc>,
    pub description: String,
    /// `StripeCard`.
    pub provider: String,
    /// The payment intent or refund id at the provider.
    pub reference: String,
    pub currency_code: String,
    /// Major units; refunds are negative.
    pub amount: f64,
    /// `1` succeeded, `-1` failed.
    pub status: i32,
    /// Why it failed, in the provider's words (`Your card has insufficient funds.`).
    pub provider_message: Option<String>,
}

impl From<&Transaction> for TransactionEntry {
    fn from(transaction: &Transaction) -> Self {
        TransactionEntry {
            created_at: transaction.created_at,
            description: transaction.description.clone(),
            provider: transaction.provider.method_name().to_owned(),
            reference: transaction.reference.clone(),
            currency_code: transaction.amount.currency.code().to_owned(),
            amount: transaction.amount.major_units(),
            status: if transaction.succeeded { 1 } else { -1 },
            provider_message: transaction.provider_message.clone(),
        }
    }
}

/// The customer's transactions, one page.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct TransactionList {
    pub page: u64,
    pub size: u64,
    pub sort: Order,
    pub transactions: Vec<TransactionEntry>,
}

impl Example for TransactionList {
    fn example() -> Self {
        TransactionList {
            page: 1,
            size: 20,
            sort: Order::Desc,
            transactions: vec![TransactionEntry {
                created_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
                description: "Monthly Pass".into(),
                provider: "StripeCard".into(),
                reference: "pi_3Q1a2b3C4d5E6f7G".into(),
                currency_code: "GBP".into(),
                amount: 9.99,
                status: -1,
                provider_message: Some("Your card has insufficient funds.".into()),
            }],
        }
    }
}

/// Which subscription to cancel, and how.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct CancellationRequest {
    /// The customer subscription id (`Account.Subscriptions[].Id`), not the package id.
    #[oai(rename = "customerSubscriptionId")]
    pub customer_subscription_id: JsonString,
    pub reason: JsonString,
    #[oai(rename = "sendEmail")]
    pub send_email: Option<bool>,
    /// Cancel now (access ends at once) instead of at the end of the paid period.
    pub immediate: Option<bool>,
}

impl Example for CancellationRequest {
    fn example() -> Self {
        CancellationRequest {
            customer_subscription_id: "f8a32af7-5b37-41d1-a97c-0174fe380e9a".into(),
            reason: "Too expensive".into(),
            send_email: Some(false),
            immediate: Some(false),
        }
    }
}

/// The admin backend's discount events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum DiscountSyncEvent {
    DiscountCreatedOrUpdatedEvent,
    DiscountVouchersUpdatedEvent,
}

/// A discount changed in the admin backend; re-read it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct DiscountSyncRequest {
    pub site: JsonString,
    pub event: DiscountSyncEvent,
    #[oai(rename = "discountId")]
    pub discount_id: JsonString,
}

impl Example for DiscountSyncRequest {
    fn example() -> Self {
        DiscountSyncRequest {
            site: "boxoffice".into(),
            event: DiscountSyncEvent::DiscountCreatedOrUpdatedEvent,
            discount_id: "3c2a7e5d-8f14-4b9a-a6d0-2e1f9c7b4a83".into(),
        }
    }
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct ResponseMetadata {
    pub request_id: String,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct SendMessageResponse {
    pub response_metadata: ResponseMetadata,
}

/// The sync was accepted (the shape of the queue's answer, as CloudPay returns it).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "PascalCase")]
pub struct DiscountSyncResponse {
    pub send_message_response: SendMessageResponse,
}
