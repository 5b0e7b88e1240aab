//! The package catalogue: web and in-app-purchase listings, and what each plan says about
//! its price, billing interval, trial and length.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::checks;
use crate::context::Context;
use crate::http::Exchange;
use crate::scenario::Scenario;
use crate::step::Step;
use crate::{ensure, ensure_eq, scenario};

/// `Plan`'s members.
const PLAN_KEYS: [&str; 16] = [
    "Id",
    "Title",
    "Body",
    "Style",
    "Amount",
    "DisplayOrder",
    "Entitlements",
    "Currency",
    "AmountFormatted",
    "HasFreeTrial",
    "TrialDuration",
    "PurchaseUrl",
    "Interval",
    "Duration",
    "IAPData",
    "Metadata",
];

/// The stores an in-app-purchase package names its products for.
const IAP_PLATFORMS: [&str; 4] = ["Amazon", "Apple", "Google", "Roku"];

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "packages.iap_only_with_type_iap",
            "type=iap lists only app-store packages, the IAP fixture among them with IAPData \
             for Apple, Google, Roku and Amazon; the default listing never holds an IAP \
             package and type=iap never a web one; type=bogus is 400",
            iap_only_with_type_iap
        ),
        scenario!(
            "packages.plan_fields_are_consistent",
            "Every plan has exactly Plan's members; Amount matches AmountFormatted and \
             Currency; Interval and Duration read as periods; HasFreeTrial goes with \
             TrialDuration (the trial fixture: true, \"7days\"); a one-off's Duration equals \
             its Interval; PurchaseUrl points at the startbasket of its Id; plans come in \
             DisplayOrder",
            plan_fields_are_consistent
        ),
        scenario!(
            "packages.package_by_id",
            "/api/v1/package/{id} answers {SubscriptionPlanOptions: Plan} equal to the listing's \
             plan; an unknown id is 404 {status:404, message}",
            package_by_id
        ),
    ]
}

/// `GET /api/v1/package`, checked down to the list: `{SubscriptionPlanOptions: [Plan]}`.
pub(crate) async fn list(
    ctx: &Context,
    location: Option<&str>,
    package_type: Option<&str>,
) -> Step<(Exchange, Vec<Value>)> {
    let mut request = ctx.cloudpay.get("/api/v1/package");
    if let Some(location) = location {
        request = request.location(location);
    }
    if let Some(package_type) = package_type {
        request = request.query("type", package_type);
    }
    let exchange = request.send().await?;
    let body = exchange.expect_json(200)?;
    checks::exact_keys(
        &exchange,
        &body,
        &["SubscriptionPlanOptions"],
        "the package list",
    )?;
    let plans = body["SubscriptionPlanOptions"]
        .as_array()
        .cloned()
        .ok_or_else(|| exchange.fail("SubscriptionPlanOptions should be an array"))?;
    Ok((exchange, plans))
}

pub(crate) fn ids(plans: &[Value]) -> BTreeSet<String> {
    plans
        .iter()
        .filter_map(|plan| plan["Id"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) fn find<'a>(plans: &'a [Value], id: &str) -> Option<&'a Value> {
    plans.iter().find(|plan| plan["Id"] == id)
}

async fn iap_only_with_type_iap(ctx: &Context) -> Step {
    let fixtures = &ctx.config().fixtures;
    let iap_id = ctx.fixture("iapPackageId", &fixtures.iap_package_id)?;
    let (exchange, iap_plans) = list(ctx, None, Some("iap")).await?;
    let plan = find(&iap_plans, iap_id)
        .ok_or_else(|| exchange.fail(format!("type=iap should list the IAP fixture {iap_id}")))?;
    let platforms = iap_platforms(&exchange, plan)?;
    ensure_eq!(
        platforms,
        IAP_PLATFORMS
            .iter()
            .map(|platform| platform.to_string())
            .collect::<BTreeSet<_>>(),
        "IAPData platforms of the IAP fixture"
    );
    for plan in &iap_plans {
        let platforms = iap_platforms(&exchange, plan)?;
        ensure!(
            !platforms.is_empty(),
            "type=iap lists {} without IAPData; {}",
            plan["Id"],
            exchange.evidence()
        );
    }
    let iap_ids = ids(&iap_plans);

    // Where the web listing differs by country, none of its variants may hold IAP packages.
    let mut locations: Vec<Option<&str>> = vec![None];
    locations.extend(
        fixtures
            .geo_allowed_countries
            .iter()
            .map(|country| Some(country.as_str())),
    );
    for location in locations {
        let (exchange, web_plans) = list(ctx, location, None).await?;
        let web_ids = ids(&web_plans);
        let both: Vec<&String> = web_ids.intersection(&iap_ids).collect();
        ensure!(
            both.is_empty(),
            "packages {both:?} appear both with and without type=iap (location {location:?}); {}",
            exchange.evidence()
        );
        for id in [
            &fixtures.monthly_package_id,
            &fixtures.trial_package_id,
            &fixtures.one_off_package_id,
        ]
        .into_iter()
        .flatten()
        {
            ensure!(
                web_ids.contains(id),
                "the web fixture {id} is missing from the default listing (location \
                 {location:?}); {}",
                exchange.evidence()
            );
        }
    }

    let exchange = ctx
        .cloudpay
        .get("/api/v1/package")
        .query("type", "bogus")
        .send()
        .await?;
    checks::error_response(&exchange, 400)?;
    Ok(())
}

/// The platforms of a plan's `IAPData`, each entry checked.
fn iap_platforms(exchange: &Exchange, plan: &Value) -> Step<BTreeSet<String>> {
    let entries = plan["IAPData"]
        .as_array()
        .ok_or_else(|| exchange.fail(format!("IAPData of {} should be an array", plan["Id"])))?;
    let mut platforms = BTreeSet::new();
    for entry in entries {
        checks::exact_keys(
            exchange,
            entry,
            &["Platform", "ProductID"],
            "an IAPData entry",
        )?;
        let platform = checks::text(exchange, entry, "/Platform")?;
        checks::text(exchange, entry, "/ProductID")?;
        ensure!(
            IAP_PLATFORMS.contains(&platform),
            "IAPData platform {platform:?} is not one of {IAP_PLATFORMS:?}; {}",
            exchange.evidence()
        );
        ensure!(
            platforms.insert(platform.to_owned()),
            "IAPData names {platform} twice for {}; {}",
            plan["Id"],
            exchange.evidence()
        );
    }
    Ok(platforms)
}

/// `<count><unit>` with unit day, week, month or year, singular or plural (`1month`,
/// `1months`, `12months`, `7days`).
fn is_period(text: &str, units: &[&str]) -> bool {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let unit = &text[digits..];
    digits > 0
        && text[..digits].parse::<u32>().is_ok_and(|count| count > 0)
        && units
            .iter()
            .any(|allowed| unit == *allowed || unit.strip_suffix('s') == Some(allowed))
}

const PERIOD_UNITS: [&str; 4] = ["day", "week", "month", "year"];

/// The digits of a formatted price (`£9.99` → `999`).
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

fn check_plan(exchange: &Exchange, plan: &Value, base: &str) -> Step {
    let id = checks::text(exchange, plan, "/Id")?;
    let context = |what: &str| exchange.fail(format!("plan {id}: {what}"));
    checks::exact_keys(exchange, plan, &PLAN_KEYS, &format!("plan {id}"))?;
    checks::text(exchange, plan, "/Title")?;
    checks::text(exchange, plan, "/Body")?;
    if !(plan["Style"].is_null() || plan["Style"].is_string()) {
        return Err(context("Style should be a string or null"));
    }
    if !plan["DisplayOrder"].is_i64() {
        return Err(context("DisplayOrder should be an integer"));
    }

    let amount = plan["Amount"]
        .as_f64()
        .filter(|amount| *amount >= 0.0)
        .ok_or_else(|| context("Amount should be a number ≥ 0 (major units)"))?;
    let currency = checks::text(exchange, plan, "/Currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(context("Currency should be an ISO 4217 code"));
    }
    let formatted = checks::text(exchange, plan, "/AmountFormatted")?;
    // Major units with two decimals (`9.99`) or none (`500` yen): the digits agree either way.
    let minor_units = format!("{:.0}", (amount * 100.0).round());
    let major_units = format!("{:.0}", amount.round());
    let shown = digits(formatted);
    if shown != minor_units && !(amount.fract() == 0.0 && shown == major_units) {
        return Err(context(&format!(
            "AmountFormatted {formatted:?} does not show Amount {amount}"
        )));
    }

    let interval = checks::text(exchange, plan, "/Interval")?;
    if !is_period(interval, &PERIOD_UNITS) {
        return Err(context(&format!("Interval {interval:?} is not a period")));
    }
    match &plan["Duration"] {
        Value::Null => {}
        Value::String(duration) if is_period(duration, &PERIOD_UNITS) => {}
        other => {
            return Err(context(&format!(
                "Duration {other} is not a period or null"
            )));
        }
    }
    match (&plan["HasFreeTrial"], &plan["TrialDuration"]) {
        (Value::Bool(false), Value::Null) => {}
        (Value::Bool(true), Value::String(trial)) if is_period(trial, &["day"]) => {}
        (has, trial) => {
            return Err(context(&format!(
                "HasFreeTrial {has} and TrialDuration {trial} disagree (a trial needs \
                 \"<n>days\", no trial needs null)"
            )));
        }
    }

    let purchase_url = checks::text(exchange, plan, "/PurchaseUrl")?;
    let expected_path = format!("{base}/sso/startbasket/{id}");
    if purchase_url.split('?').next() != Some(expected_path.as_str()) {
        return Err(context(&format!(
            "PurchaseUrl {purchase_url:?} should be {expected_path}"
        )));
    }
    let entitlements = plan["Entitlements"]
        .as_array()
        .ok_or_else(|| context("Entitlements should be an array"))?;
    if !entitlements.iter().all(Value::is_string) {
        return Err(context("Entitlements should be strings"));
    }
    let metadata = plan["Metadata"]
        .as_array()
        .ok_or_else(|| context("Metadata should be an array"))?;
    for entry in metadata {
        checks::exact_keys(
            exchange,
            entry,
            &["Name", "Code", "Value"],
            "a Metadata entry",
        )?;
    }
    Ok(())
}

fn check_listing(exchange: &Exchange, plans: &[Value], base: &str) -> Step {
    for plan in plans {
        check_plan(exchange, plan, base)?;
    }
    let orders: Vec<i64> = plans
        .iter()
        .filter_map(|plan| plan["DisplayOrder"].as_i64())
        .collect();
    ensure!(
        orders.windows(2).all(|pair| pair[0] <= pair[1]),
        "plans should come in DisplayOrder, not {orders:?}; {}",
        exchange.evidence()
    );
    Ok(())
}

async fn plan_fields_are_consistent(ctx: &Context) -> Step {
    let base = ctx
        .cloudpay
        .base()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let fixtures = &ctx.config().fixtures;
    let allowed = fixtures.geo_allowed_countries.first().map(String::as_str);
    let (exchange, web) = list(ctx, allowed, None).await?;
    check_listing(&exchange, &web, &base)?;
    let (iap_exchange, iap) = list(ctx, None, Some("iap")).await?;
    check_listing(&iap_exchange, &iap, &base)?;

    let plan = |id: &str| {
        find(&web, id).ok_or_else(|| exchange.fail(format!("the fixture {id} is not listed")))
    };
    if let Some(id) = &fixtures.trial_package_id {
        let trial = plan(id)?;
        checks::member(&exchange, trial, "/HasFreeTrial", &Value::Bool(true))?;
        checks::member(&exchange, trial, "/TrialDuration", &Value::from("7days"))?;
    }
    if let Some(id) = &fixtures.one_off_package_id {
        let one_off = plan(id)?;
        ensure_eq!(
            one_off["Duration"],
            one_off["Interval"],
            "a one-off package lasts its Interval, so Duration should equal it; {}",
            exchange.evidence()
        );
    }
    if let Some(id) = &fixtures.monthly_package_id {
        let monthly = plan(id)?;
        checks::member(&exchange, monthly, "/HasFreeTrial", &Value::Bool(false))?;
        checks::member(&exchange, monthly, "/TrialDuration", &Value::Null)?;
        let interval = monthly["Interval"].as_str().unwrap_or_default();
        ensure!(
            is_period(interval, &["month"]) && interval.starts_with("1m"),
            "the monthly fixture's Interval should be one month, not {interval:?}"
        );
    }
    Ok(())
}

async fn package_by_id(ctx: &Context) -> Step {
    let fixtures = &ctx.config().fixtures;
    let id = ctx.fixture("monthlyPackageId", &fixtures.monthly_package_id)?;
    let (list_exchange, plans) = list(ctx, None, None).await?;
    let listed = find(&plans, id)
        .ok_or_else(|| list_exchange.fail(format!("the fixture {id} is not listed")))?;
    let exchange = ctx
        .cloudpay
        .get(&format!("/api/v1/package/{id}"))
        .send()
        .await?;
    let body = exchange.expect_json(200)?;
    checks::exact_keys(
        &exchange,
        &body,
        &["SubscriptionPlanOptions"],
        "the package",
    )?;
    ensure_eq!(
        &body["SubscriptionPlanOptions"],
        listed,
        "the package by id should equal its listing; {}",
        exchange.evidence()
    );
    let unknown = format!("no-such-package-{}", uuid::Uuid::new_v4().simple());
    let exchange = ctx
        .cloudpay
        .get(&format!("/api/v1/package/{unknown}"))
        .send()
        .await?;
    checks::status_message(&exchange, 404)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_in_either_number() {
        assert!(is_period("1month", &PERIOD_UNITS));
        assert!(is_period("1months", &PERIOD_UNITS));
        assert!(is_period("12months", &PERIOD_UNITS));
        assert!(is_period("7days", &["day"]));
        assert!(!is_period("7weeks", &["day"]));
        assert!(!is_period("month", &PERIOD_UNITS));
        assert!(!is_period("0days", &PERIOD_UNITS));
        assert!(!is_period("1fortnight", &PERIOD_UNITS));
    }

    #[test]
    fn formatted_prices_show_their_digits() {
        assert_eq!(digits("£9.99"), "999");
        assert_eq!(digits("12,99 kr"), "1299");
    }
}
