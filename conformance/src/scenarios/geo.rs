//! Geo restriction: the `location` header decides which packages a caller may see and buy.

use crate::checks;
use crate::context::Context;
use crate::scenario::Scenario;
use crate::scenarios::packages::{ids, list};
use crate::step::Step;
use crate::{ensure, scenario};

/// Not countries: an unassigned code, the UK's common but non-ISO code, an alpha-3 code.
const NOT_COUNTRIES: [&str; 3] = ["XX", "UK", "GBR"];

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "geo.listing_follows_location",
            "The geo-restricted fixture is listed for each allowed country's location header, \
             and not for the denied country nor without a location",
            listing_follows_location
        ),
        scenario!(
            "geo.invalid_location_is_400",
            "location XX, UK or GBR is 400 in the error shape on the listing, and 400 \
             {status:400, message} on /api/v1/package/{id}",
            invalid_location_is_400
        ),
        scenario!(
            "geo.package_by_id_follows_location",
            "/api/v1/package/{id} of the geo-restricted fixture is 200 for an allowed country \
             and 404 {status:404, message} for the denied one",
            package_by_id_follows_location
        ),
    ]
}

async fn listing_follows_location(ctx: &Context) -> Step {
    let (package, allowed, denied) = ctx.geo_fixture()?;
    for country in allowed {
        let (exchange, plans) = list(ctx, Some(country), None).await?;
        ensure!(
            ids(&plans).contains(package),
            "{package} should be listed for location {country}; {}",
            exchange.evidence()
        );
    }
    for location in [Some(denied), None] {
        let (exchange, plans) = list(ctx, location, None).await?;
        ensure!(
            !ids(&plans).contains(package),
            "{package} should not be listed for location {location:?}; {}",
            exchange.evidence()
        );
    }
    Ok(())
}

async fn invalid_location_is_400(ctx: &Context) -> Step {
    let package = ctx
        .geo_fixture()
        .map(|(package, _, _)| package.to_owned())
        .or_else(|_| {
            let fixtures = &ctx.config().fixtures;
            ctx.fixture("monthlyPackageId", &fixtures.monthly_package_id)
                .map(str::to_owned)
        })?;
    for location in NOT_COUNTRIES {
        let exchange = ctx
            .cloudpay
            .get("/api/v1/package")
            .location(location)
            .send()
            .await?;
        checks::error_response(&exchange, 400)?;
        let exchange = ctx
            .cloudpay
            .get(&format!("/api/v1/package/{package}"))
            .location(location)
            .send()
            .await?;
        checks::status_message(&exchange, 400)?;
    }
    Ok(())
}

async fn package_by_id_follows_location(ctx: &Context) -> Step {
    let (package, allowed, denied) = ctx.geo_fixture()?;
    for country in allowed {
        let exchange = ctx
            .cloudpay
            .get(&format!("/api/v1/package/{package}"))
            .location(country)
            .send()
            .await?;
        let body = exchange.expect_json(200)?;
        checks::member(
            &exchange,
            &body,
            "/SubscriptionPlanOptions/Id",
            &serde_json::Value::from(package),
        )?;
    }
    let exchange = ctx
        .cloudpay
        .get(&format!("/api/v1/package/{package}"))
        .location(denied)
        .send()
        .await?;
    checks::status_message(&exchange, 404)?;
    Ok(())
}
