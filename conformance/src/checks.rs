//! The wire shapes CloudPay documents, checked member by member: what must be there, what
//! must not, and the values the contract fixes. Each check fails with the exchange that
//! broke it.

use serde_json::{Map, Value};

use crate::context::Customer;
use crate::http::Exchange;
use crate::step::Step;

/// `SessionModel`'s members, besides `AuthenticationToken` (session start only).
pub const SESSION_MODEL_KEYS: [&str; 6] = [
    "UtcNow",
    "LocationFromIp",
    "CurrentCustomerSessionStatus",
    "CurrentCustomerSession",
    "ModelErrors",
    "PageUrl",
];

/// What ksession adds to `SessionModel`.
pub const KSESSION_KEYS: [&str; 3] = ["Status", "KSession", "ErrorMessage"];

const LOCATION_KEYS: [&str; 5] = ["Name", "Country", "CountryCode", "State", "City"];

const CUSTOMER_SESSION_KEYS: [&str; 17] = [
    "Id",
    "CustomerId",
    "CustomerEmailAddress",
    "CustomerFirstName",
    "CustomerLastName",
    "CustomerBillingProfileCreatedAt",
    "CustomerBillingProfileExpiresAt",
    "CustomerBillingProfileLastFailedAt",
    "CustomerBillingProfileProvider",
    "CustomerBillingProfileReference",
    "CustomerDeleted",
    "CustomerEntitlements",
    "CustomerPackages",
    "CustomerFullAccessUntil",
    "CustomerNonExpiringSubscriptionCount",
    "CustomerSubscriptionCount",
    "RequiresCardAuthenticationCount",
];

/// `Account`'s members in the answer to GET; PATCH answers without `Subscriptions`.
pub const ACCOUNT_KEYS: [&str; 7] = [
    "EmailAddress",
    "FirstName",
    "LastName",
    "CustomFields",
    "BillingDetails",
    "Subscriptions",
    "Entitlements",
];

const CUSTOM_FIELD_KEYS: [&str; 4] = ["Id", "Label", "Required", "Value"];

/// The object at `value`, or a failure naming `what`.
pub fn object<'a>(
    exchange: &Exchange,
    value: &'a Value,
    what: &str,
) -> Step<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| exchange.fail(format!("{what} is not an object")))
}

/// The object has exactly these members: none missing, none extra.
pub fn exact_keys(exchange: &Exchange, value: &Value, keys: &[&str], what: &str) -> Step {
    let map = object(exchange, value, what)?;
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|key| !map.contains_key(*key))
        .collect();
    let extra: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|key| !keys.contains(key))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(exchange.fail(format!(
            "{what} should have exactly {keys:?}; missing {missing:?}, unexpected {extra:?}"
        )))
    }
}

/// A non-empty string member.
pub fn text<'a>(exchange: &Exchange, value: &'a Value, pointer: &str) -> Step<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| exchange.fail(format!("{pointer} should be a non-empty string")))
}

/// A member equal to `expected`.
pub fn member(exchange: &Exchange, value: &Value, pointer: &str, expected: &Value) -> Step {
    match value.pointer(pointer) {
        Some(actual) if actual == expected => Ok(()),
        actual => Err(exchange.fail(format!(
            "{pointer} should be {expected}, not {}",
            actual.map_or("absent".to_owned(), Value::to_string)
        ))),
    }
}

/// CloudPay's error body, `{"statusCode": <status>, "body": {"status": "...", "message": "..."}}`,
/// with that HTTP status. Returns `(status name, message)`.
pub fn error_response(exchange: &Exchange, status: u16) -> Step<(String, String)> {
    let body = exchange.expect_json(status)?;
    exact_keys(exchange, &body, &["statusCode", "body"], "the error body")?;
    member(exchange, &body, "/statusCode", &Value::from(status))?;
    exact_keys(exchange, &body["body"], &["status", "message"], "body")?;
    let name = text(exchange, &body, "/body/status")?.to_owned();
    let message = text(exchange, &body, "/body/message")?.to_owned();
    Ok((name, message))
}

/// A 401 in the documented shape, with status `Unauthorized`. Returns the message.
pub fn unauthorized(exchange: &Exchange) -> Step<String> {
    let (name, message) = error_response(exchange, 401)?;
    if name != "Unauthorized" {
        return Err(exchange.fail(format!(
            "body.status should be \"Unauthorized\", not {name:?}"
        )));
    }
    Ok(message)
}

/// The package-by-id error body, `{"status": <status>, "message": "..."}`.
pub fn status_message(exchange: &Exchange, status: u16) -> Step<String> {
    let body = exchange.expect_json(status)?;
    exact_keys(exchange, &body, &["status", "message"], "the error body")?;
    member(exchange, &body, "/status", &Value::from(status))?;
    Ok(text(exchange, &body, "/message")?.to_owned())
}

/// The live session a `SessionModel` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// `CurrentCustomerSession.Id`, usable as `apisessionid`.
    pub id: String,
    pub customer_id: String,
}

/// What a `SessionModel` should say.
pub struct SessionExpectation<'a> {
    /// `Some`: a live session of this customer (`CurrentCustomerSessionStatus` -1);
    /// `None`: no session (0, `CurrentCustomerSession` null).
    pub customer: Option<&'a Customer>,
    /// Session start also answers `AuthenticationToken`; nothing else does.
    pub authentication_token: bool,
    /// The `LocationFromIp.CountryCode` the request's `location` header asked for.
    pub country: Option<&'a str>,
    /// Members beyond `SessionModel`'s (ksession's).
    pub extra_keys: &'a [&'a str],
}

impl<'a> SessionExpectation<'a> {
    pub fn live(customer: &'a Customer) -> Self {
        Self {
            customer: Some(customer),
            authentication_token: false,
            country: None,
            extra_keys: &[],
        }
    }

    pub fn none() -> Self {
        Self {
            customer: None,
            authentication_token: false,
            country: None,
            extra_keys: &[],
        }
    }

    /// As session start answers.
    pub fn started(customer: &'a Customer) -> Self {
        Self {
            authentication_token: true,
            ..Self::live(customer)
        }
    }

    pub fn in_country(mut self, country: &'a str) -> Self {
        self.country = Some(country);
        self
    }

    pub fn with_extra_keys(mut self, keys: &'a [&'a str]) -> Self {
        self.extra_keys = keys;
        self
    }
}

/// Checks a `SessionModel` member by member; returns the live session, if any.
pub fn session_model(
    exchange: &Exchange,
    body: &Value,
    expected: &SessionExpectation<'_>,
) -> Step<Option<LiveSession>> {
    let mut keys: Vec<&str> = SESSION_MODEL_KEYS.to_vec();
    if expected.authentication_token {
        keys.push("AuthenticationToken");
    }
    keys.extend_from_slice(expected.extra_keys);
    exact_keys(exchange, body, &keys, "the SessionModel")?;

    if body["UtcNow"].as_i64().is_none_or(|millis| millis <= 0) {
        return Err(exchange.fail("UtcNow should be milliseconds since the epoch"));
    }
    exact_keys(
        exchange,
        &body["LocationFromIp"],
        &LOCATION_KEYS,
        "LocationFromIp",
    )?;
    let country = text(exchange, body, "/LocationFromIp/CountryCode")?;
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(exchange.fail("LocationFromIp.CountryCode should be ISO 3166-1 alpha-2"));
    }
    if let Some(expected_country) = expected.country {
        member(
            exchange,
            body,
            "/LocationFromIp/CountryCode",
            &Value::from(expected_country),
        )?;
    }
    member(exchange, body, "/ModelErrors", &Value::Object(Map::new()))?;
    member(exchange, body, "/PageUrl", &Value::Null)?;

    let Some(customer) = expected.customer else {
        member(
            exchange,
            body,
            "/CurrentCustomerSessionStatus",
            &Value::from(0),
        )?;
        member(exchange, body, "/CurrentCustomerSession", &Value::Null)?;
        return Ok(None);
    };
    member(
        exchange,
        body,
        "/CurrentCustomerSessionStatus",
        &Value::from(-1),
    )?;
    let session = &body["CurrentCustomerSession"];
    exact_keys(
        exchange,
        session,
        &CUSTOMER_SESSION_KEYS,
        "CurrentCustomerSession",
    )?;
    let live = LiveSession {
        id: text(exchange, body, "/CurrentCustomerSession/Id")?.to_owned(),
        customer_id: text(exchange, body, "/CurrentCustomerSession/CustomerId")?.to_owned(),
    };
    member(
        exchange,
        body,
        "/CurrentCustomerSession/CustomerEmailAddress",
        &Value::from(customer.email.as_str()),
    )?;
    if let Some(first_name) = &customer.first_name {
        member(
            exchange,
            body,
            "/CurrentCustomerSession/CustomerFirstName",
            &Value::from(first_name.as_str()),
        )?;
    }
    if let Some(last_name) = &customer.last_name {
        member(
            exchange,
            body,
            "/CurrentCustomerSession/CustomerLastName",
            &Value::from(last_name.as_str()),
        )?;
    }
    member(
        exchange,
        body,
        "/CurrentCustomerSession/CustomerDeleted",
        &Value::Bool(false),
    )?;
    for name in ["CustomerEntitlements", "CustomerPackages"] {
        if !session[name].is_string() {
            return Err(exchange.fail(format!("CurrentCustomerSession.{name} should be a string")));
        }
    }
    for name in [
        "CustomerNonExpiringSubscriptionCount",
        "CustomerSubscriptionCount",
        "RequiresCardAuthenticationCount",
    ] {
        if !session[name].is_i64() {
            return Err(exchange.fail(format!(
                "CurrentCustomerSession.{name} should be an integer"
            )));
        }
    }
    if customer.fresh {
        // A customer signed up for this scenario has bought nothing: no billing profile, no
        // entitlements, no subscriptions.
        for name in [
            "CustomerBillingProfileCreatedAt",
            "CustomerBillingProfileExpiresAt",
            "CustomerBillingProfileLastFailedAt",
            "CustomerBillingProfileProvider",
            "CustomerBillingProfileReference",
            "CustomerFullAccessUntil",
        ] {
            member(
                exchange,
                body,
                &format!("/CurrentCustomerSession/{name}"),
                &Value::Null,
            )?;
        }
        for name in ["CustomerEntitlements", "CustomerPackages"] {
            member(
                exchange,
                body,
                &format!("/CurrentCustomerSession/{name}"),
                &Value::from(""),
            )?;
        }
        for name in [
            "CustomerNonExpiringSubscriptionCount",
            "CustomerSubscriptionCount",
            "RequiresCardAuthenticationCount",
        ] {
            member(
                exchange,
                body,
                &format!("/CurrentCustomerSession/{name}"),
                &Value::from(0),
            )?;
        }
    }
    if expected.authentication_token {
        member(
            exchange,
            body,
            "/AuthenticationToken",
            &Value::from(live.id.as_str()),
        )?;
    }
    Ok(Some(live))
}

/// Checks an `Account` (GET: with `Subscriptions`; PATCH: without) and the customer's
/// identity in it.
pub fn account(
    exchange: &Exchange,
    body: &Value,
    customer: &Customer,
    with_subscriptions: bool,
) -> Step {
    let keys: Vec<&str> = ACCOUNT_KEYS
        .iter()
        .copied()
        .filter(|key| with_subscriptions || *key != "Subscriptions")
        .collect();
    exact_keys(exchange, body, &keys, "the Account")?;
    member(
        exchange,
        body,
        "/EmailAddress",
        &Value::from(customer.email.as_str()),
    )?;
    for name in ["FirstName", "LastName"] {
        if !body[name].is_string() {
            return Err(exchange.fail(format!("{name} should be a string")));
        }
    }
    let fields = body["CustomFields"]
        .as_array()
        .ok_or_else(|| exchange.fail("CustomFields should be an array"))?;
    for (index, field) in fields.iter().enumerate() {
        exact_keys(
            exchange,
            field,
            &CUSTOM_FIELD_KEYS,
            &format!("CustomFields[{index}]"),
        )?;
        text(exchange, field, "/Id")?;
        text(exchange, field, "/Label")?;
        if !field["Required"].is_boolean() {
            return Err(exchange.fail(format!(
                "CustomFields[{index}].Required should be a boolean"
            )));
        }
        if !(field["Value"].is_string() || field["Value"].is_null()) {
            return Err(exchange.fail(format!(
                "CustomFields[{index}].Value should be a string or null"
            )));
        }
    }
    if !body["Entitlements"].is_array() {
        return Err(exchange.fail("Entitlements should be an array"));
    }
    if with_subscriptions && !body["Subscriptions"].is_array() {
        return Err(exchange.fail("Subscriptions should be an array"));
    }
    if customer.fresh {
        member(exchange, body, "/Entitlements", &Value::Array(vec![]))?;
        member(exchange, body, "/BillingDetails", &Value::Null)?;
        if with_subscriptions {
            member(exchange, body, "/Subscriptions", &Value::Array(vec![]))?;
        }
    }
    Ok(())
}

/// How long CloudPay's session cookies live.
const SESSION_COOKIE_SECONDS: &str = "7200";

/// The response sets cookie `name` the way CloudPay sets its session cookies: for the whole
/// site, HTTP only, secure, usable cross-site (`SameSite=None`), two hours when it says how
/// long. Returns the cookie.
pub fn session_cookie(exchange: &Exchange, name: &str) -> Step<crate::cloudpay::SetCookie> {
    let cookie = exchange
        .set_cookies()
        .into_iter()
        .filter_map(crate::cloudpay::SetCookie::parse)
        .find(|cookie| cookie.name == name)
        .ok_or_else(|| exchange.fail(format!("no Set-Cookie for {name}")))?;
    let problem = if cookie.value.is_empty() {
        Some("has an empty value".to_owned())
    } else if cookie.attribute("Path") != Some(Some("/")) {
        Some("lacks Path=/".to_owned())
    } else if cookie.attribute("HttpOnly").is_none() {
        Some("lacks HttpOnly".to_owned())
    } else if cookie.attribute("Secure").is_none() {
        Some("lacks Secure".to_owned())
    } else if !cookie
        .attribute("SameSite")
        .flatten()
        .is_some_and(|value| value.eq_ignore_ascii_case("None"))
    {
        Some("lacks SameSite=None".to_owned())
    } else {
        match cookie.attribute("Max-Age") {
            Some(max_age) if max_age != Some(SESSION_COOKIE_SECONDS) => Some(format!(
                "has Max-Age {max_age:?}, not {SESSION_COOKIE_SECONDS} (2 hours)"
            )),
            _ => None,
        }
    };
    match problem {
        Some(problem) => Err(exchange.fail(format!("the {name} cookie {problem}"))),
        None => Ok(cookie),
    }
}
