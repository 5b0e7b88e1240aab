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
