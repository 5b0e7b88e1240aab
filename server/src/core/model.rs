//! The domain's nouns, shared by the core's rules and the store that persists them.
//! No façade's wire type appears here.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub customer_id: String,
    pub country_code: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodUnit {
    Day,
    Week,
    Month,
    Year,
}

impl PeriodUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodUnit::Day => "day",
            PeriodUnit::Week => "week",
            PeriodUnit::Month => "month",
            PeriodUnit::Year => "year",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim_end_matches('s') {
            "day" => Some(PeriodUnit::Day),
            "week" => Some(PeriodUnit::Week),
            "month" => Some(PeriodUnit::Month),
            "year" => Some(PeriodUnit::Year),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u32,
    pub unit: PeriodUnit,
}

/// Where a package may be bought: on the web (Stripe checkout) or only in an app store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesChannel {
    Web,
    Iap,
}

impl SalesChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            SalesChannel::Web => "web",
            SalesChannel::Iap => "iap",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "web" => Some(SalesChannel::Web),
            "iap" => Some(SalesChannel::Iap),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StorePlatform {
    Amazon,
    Roku,
    Google,
    Apple,
}

impl StorePlatform {
    pub const ALL: [StorePlatform; 4] = [
        StorePlatform::Amazon,
        StorePlatform::Roku,
        StorePlatform::Google,
        StorePlatform::Apple,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StorePlatform::Amazon => "Amazon",
            StorePlatform::Roku => "Roku",
            StorePlatform::Google => "Google",
            StorePlatform::Apple => "Apple",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|platform| platform.as_str().eq_ignore_ascii_case(text))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IapProduct {
    pub platform: StorePlatform,
    pub product_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataItem {
    pub name: String,
    pub code: String,
    pub value: String,
}

/// Money is integer minor units with an ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor_units: i64,
    pub currency: Currency,
}

/// An ISO 4217 code the catalogue accepts, with its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: [u8; 3],
    pub exponent: u32,
    pub symbol: &'static str,
}

const CURRENCIES: &[(&str, u32, &str)] = &[
    ("GBP", 2, "£"),
    ("EUR", 2, "€"),
    ("USD", 2, "$"),
    ("NOK", 2, "kr "),
    ("SEK", 2, "kr "),
    ("DKK", 2, "kr "),
    ("CHF", 2, "CHF "),
    ("CAD", 2, "CA$"),
    ("AUD", 2, "A$"),
    ("JPY", 0, "¥"),
];

impl Currency {
    pub fn parse(code: &str) -> Option<Self> {
        let upper = code.to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(known, _, _)| *known == upper)
            .map(|(known, exponent, symbol)| {
                let bytes = known.as_bytes();
                Currency {
                    code: [bytes[0], bytes[1], bytes[2]],
                    exponent: *exponent,
                    symbol,
                }
            })
    }

    pub fn code(&self) -> &str {
        // Built only from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }
}

impl Money {
    /// The amount in major units, as CloudPay shows it (`59.99`).
    pub fn major_units(&self) -> f64 {
        self.minor_units as f64 / 10f64.powi(self.currency.exponent as i32)
    }

    /// `£59.99`, `kr 79.00`, `¥500`.
    pub fn formatted(&self) -> String {
        let divisor = 10i64.pow(self.currency.exponent);
        let whole = self.minor_units / divisor;
        let fraction = self.minor_units % divisor;
        if self.currency.exponent == 0 {
            format!("{}{}", self.currency.symbol, whole)
        } else {
            format!(
                "{}{}.{:0width$}",
                self.currency.symbol,
                whole,
                fraction,
                width = self.currency.exponent as usize
            )
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub id: String,
    pub title: String,
    pub body: String,
    pub style: Option<String>,
    pub price: Money,
    /// How often a recurring package bills; for a one-off pass, how long it lasts.
    pub interval: Period,
    /// A fixed overall length (e.g. a 12-month commitment); `None` runs until cancelled.
    pub duration: Option<Period>,
    pub recurring: bool,
    pub trial_days: Option<u32>,
    pub sales_channel: SalesChannel,
    pub display_order: i64,
    pub entitlements: Vec<String>,
    /// ISO 3166-1 alpha-2 codes; empty means sold everywhere.
    pub countries: Vec<String>,
    pub iap_products: Vec<IapProduct>,
    pub metadata: Vec<MetadataItem>,
}

impl Package {
    pub fn sold_in(&self, country: Option<&str>) -> bool {
        if self.countries.is_empty() {
            return true;
        }
        country.is_some_and(|country| self.countries.iter().any(|allowed| allowed == country))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub id: String,
    pub label: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldValue {
    pub field: CustomField,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackView {
    pub entry_id: String,
    pub position_seconds: i64,
    pub last_viewed_at: DateTime<Utc>,
}

/// Where a subscription stands. Access is granted while it is `Trialing`, `Active` or
/// `PastDue` (the provider is still retrying) and its `access_until`, if any, is ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PastDue,
    /// Ended early by the customer ("cancel now").
    Cancelled,
    /// Ran out: a one-off pass ended, a cancelled-at-period-end subscription reached it, or
    /// the last retry of a renewal failed.
    Expired,
    /// The payment was refunded; access ended with it.
    Refunded,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 6] = [
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Cancelled,
        SubscriptionStatus::Expired,
        SubscriptionStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Expired => "expired",
            SubscriptionStatus::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Not over: the subscription may still grant access and may still change.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Trialing | SubscriptionStatus::Active | SubscriptionStatus::PastDue
        )
    }
}

/// Who sold a subscription and settles its renewals: Stripe (web purchases, renewed by the
/// billing clock) or an app store (renewed by the store, mirrored from its notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentProvider {
    Stripe,
    Apple,
    Google,
    Roku,
    Amazon,
}

impl PaymentProvider {
    pub const ALL: [PaymentProvider; 5] = [
        PaymentProvider::Stripe,
        PaymentProvider::Apple,
        PaymentProvider::Google,
        PaymentProvider::Roku,
        PaymentProvider::Amazon,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentProvider::Stripe => "stripe",
            PaymentProvider::Apple => "apple",
            PaymentProvider::Google => "google",
            PaymentProvider::Roku => "roku",
            PaymentProvider::Amazon => "amazon",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.as_str() == text)
    }

    /// Whether an app store sold it (CloudPay's `IsIAP`).
    pub fn is_store(self) -> bool {
        self != PaymentProvider::Stripe
    }

    /// The store's name, as the catalogue's `IAPData` names the platforms.
    pub fn store_name(self) -> &'static str {
        match self {
            PaymentProvider::Stripe => "Stripe",
            PaymentProvider::Apple => "Apple",
            PaymentProvider::Google => "Google",
            PaymentProvider::Roku => "Roku",
            PaymentProvider::Amazon => "Amazon",
        }
    }

    /// How CloudPay names the way the customer paid (`Provider` in transactions and cards).
    pub fn method_name(self) -> &'static str {
        match self {
            PaymentProvider::Stripe => "StripeCard",
            store => store.store_name(),
        }
    }
}

/// One customer's subscription to one package, from purchase to its end. A new purchase of
/// the same package is a new subscription with a new id.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub customer_id: String,
    pub package_id: String,
    pub provider: PaymentProvider,
    pub origin_reference: String,
    pub status: SubscriptionStatus,
    pub recurring: bool,
    pub auto_renew: bool,
    /// What each renewal charges.
    pub price: Money,
    pub current_period: i64,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub access_until: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The provider's code for why the last renewal attempt failed (`insufficient_funds`,
    /// `authentication_required`); cleared by a successful charge.
    pub last_failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Subscription {
    /// A new subscription's id: a time-ordered UUID (version 7). The billing clock settles
    /// subscriptions in the order their periods end, which is mostly the order they were
    /// bought, so the indexes keyed by subscription (its jobs, its paid periods) are
    /// written a few neighbouring pages per batch instead of a random page per renewal.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// Whether it grants its package's entitlements at `now`.
    pub fn grants_access(&self, now: DateTime<Utc>) -> bool {
        self.status.is_live() && self.access_until.is_none_or(|until| until > now)
    }

    /// When access ends if nothing changes: `None` while it renews by itself.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.access_until
    }

    /// When the next charge is due, if one will be attempted.
    pub fn renews_at(&self) -> Option<DateTime<Utc>> {
        (self.status.is_live() && self.recurring && self.auto_renew && !self.cancel_at_period_end)
            .then_some(self.current_period_end)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Payment,
    Refund,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Payment => "payment",
            TransactionKind::Refund => "refund",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "payment" => Some(TransactionKind::Payment),
            "refund" => Some(TransactionKind::Refund),
            _ => None,
        }
    }
}

/// One attempt to take money, or one refund (a negative amount).
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: String,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    pub basket_id: Option<String>,
    pub kind: TransactionKind,
    pub provider: PaymentProvider,
    /// The provider's id of the attempt (a charge or a refund).
    pub external_id: String,
    /// What the customer can quote to support (the payment intent or refund id).
    pub reference: String,
    pub description: String,
    pub amount: Money,
    pub succeeded: bool,
    /// Why it failed, in the provider's words.
    pub provider_message: Option<String>,
    pub period: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl Transaction {
    /// A new transaction's id: a time-ordered UUID (version 7), so that the table that
    /// gains a row per renewal adds each at the end of its primary key's index instead of
    /// on a random page of it, which would cost more the larger the table grew.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }
}

/// The saved way a customer pays.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingProfile {
    pub customer_id: String,
    pub provider: PaymentProvider,
    pub provider_customer_id: String,
    pub payment_method_id: Option<String>,
    pub card: Option<CardSummary>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    /// Stripe's brand name, e.g. `visa`.
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
    pub country: Option<String>,
}

impl CardSummary {
    /// `Visa XXXX-XXXX-XXXX-4242`, as CloudPay shows a card.
    pub fn reference(&self) -> String {
        let brand = match self.brand.as_str() {
            "amex" => "American Express".to_owned(),
            "mastercard" => "Mastercard".to_owned(),
            "diners" => "Diners Club".to_owned(),
            "unionpay" => "UnionPay".to_owned(),
            "jcb" => "JCB".to_owned(),
            other => {
                let mut chars = other.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect()
                })
            }
        };
        format!("{brand} XXXX-XXXX-XXXX-{}", self.last4)
    }

    /// The first instant the card no longer works: the start of the month after expiry.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        use chrono::TimeZone;
        let (year, month) = if self.exp_month >= 12 {
            (self.exp_year + 1, 1)
        } else {
            (self.exp_year, self.exp_month + 1)
        };
        Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasketKind {
    /// A payment intent: money is taken now.
    Payment,
    /// A setup intent: the card is saved for later charges (free trials, billing updates).
    Setup,
}

impl BasketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BasketKind::Payment => "payment",
            BasketKind::Setup => "setup",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "payment" => Some(BasketKind::Payment),
            "setup" => Some(BasketKind::Setup),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasketPurpose {
    Purchase,
    BillingUpdate,
}

impl BasketPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            BasketPurpose::Purchase => "purchase",
            BasketPurpose::BillingUpdate => "billing_update",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "purchase" => Some(BasketPurpose::Purchase),
            "billing_update" => Some(BasketPurpose::BillingUpdate),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasketStatus {
    Open,
    Completed,
    Canceled,
}

impl BasketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BasketStatus::Open => "open",
            BasketStatus::Completed => "completed",
            BasketStatus::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(BasketStatus::Open),
            "completed" => Some(BasketStatus::Completed),
            "canceled" => Some(BasketStatus::Canceled),
            _ => None,
        }
    }
}

/// A checkout in progress; its id is the provider's intent id.
#[derive(Debug, Clone, PartialEq)]
pub struct Basket {
    pub id: String,
    pub customer_id: String,
    pub kind: BasketKind,
    pub purpose: BasketPurpose,
    pub package_id: Option<String>,
    /// The package's price before any discount.
    pub list_price: Option<Money>,
    /// What the customer pays now.
    pub price: Option<Money>,
    pub discount_id: Option<String>,
    pub client_secret: String,
    pub status: BasketStatus,
    pub subscription_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountValue {
    /// 1 to 100 percent off.
    Percent(u32),
    /// A fixed amount off, in the basket's currency.
    Fixed(Money),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Discount {
    pub id: String,
    /// Matched case-insensitively; stored upper-case.
    pub code: String,
    pub value: DiscountValue,
    pub single_use: bool,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub active: bool,
    /// Empty means every package.
    pub package_ids: Vec<String>,
}

impl Discount {
    /// The price after this discount, never below zero.
    pub fn apply(&self, price: Money) -> Money {
        let off = match self.value {
            DiscountValue::Percent(percent) => {
                // Rounded half up, in minor units, so 50 % of 999 is 500 off.
                (price.minor_units * i64::from(percent) + 50) / 100
            }
            DiscountValue::Fixed(amount) => amount.minor_units,
        };
        Money {
            minor_units: (price.minor_units - off).max(0),
            currency: price.currency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formats_in_major_units_with_the_currency_exponent() {
        let gbp = Currency::parse("gbp").unwrap();
        let price = Money {
            minor_units: 5999,
            currency: gbp,
        };
        assert_eq!(price.formatted(), "£59.99");
        assert!((price.major_units() - 59.99).abs() < 1e-9);
        let yen = Money {
            minor_units: 500,
            currency: Currency::parse("JPY").unwrap(),
        };
        assert_eq!(yen.formatted(), "¥500");
        assert_eq!(
            Money {
                minor_units: 5,
                currency: gbp
            }
            .formatted(),
            "£0.05"
        );
    }

    #[test]
    fn geo_restriction_needs_a_listed_country() {
        let mut package = Package {
            id: "p".into(),
            title: "t".into(),
            body: "b".into(),
            style: None,
            price: Money {
                minor_units: 100,
                currency: Currency::parse("GBP").unwrap(),
            },
            interval: Period {
                count: 1,
                unit: PeriodUnit::Month,
            },
            duration: None,
            recurring: true,
            trial_days: None,
            sales_channel: SalesChannel::Web,
            display_order: 0,
            entitlements: vec![],
            countries: vec![],
            iap_products: vec![],
            metadata: vec![],
        };
        assert!(package.sold_in(None));
        package.countries = vec!["GB".into(), "IE".into()];
        assert!(package.sold_in(Some("IE")));
        assert!(!package.sold_in(Some("US")));
        assert!(!package.sold_in(None));
    }
}
