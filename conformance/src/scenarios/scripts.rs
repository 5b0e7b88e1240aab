//! `stream-payments.js`, the browser client library: the unversioned URL redirects to the
//! current version, versions are served as JavaScript, unknown ones are not found.

use crate::checks;
use crate::context::Context;
use crate::http::Exchange;
use crate::scenario::Scenario;
use crate::step::Step;
use crate::{ensure, scenario};

pub fn scenarios() -> Vec<Scenario> {
    vec![scenario!(
        "scripts.stream_payments",
        "/js/stream-payments.js redirects (302) to a versioned script that is served 200 as \
         JavaScript, minified on request; an unknown version is 404 in the error shape",
        stream_payments
    )]
}

/// Follows one redirect the way a browser would, relative to the URL asked.
async fn follow(ctx: &Context, redirect: &Exchange) -> Step<Exchange> {
    redirect.expect_status(302)?;
    let location = redirect
        .header("location")
        .ok_or_else(|| redirect.fail("a 302 without Location"))?;
    let target = redirect
        .url
        .join(location)
        .map_err(|error| redirect.fail(format!("Location {location:?} is not a URL: {error}")))?;
    ctx.http.get(target).send().await
}

fn expect_javascript(exchange: &Exchange) -> Step {
    exchange.expect_status(200)?;
    let content_type = exchange.header("content-type").unwrap_or_default();
    ensure!(
        content_type.starts_with("application/javascript")
            || content_type.starts_with("text/javascript"),
        "the script should be served as JavaScript, not {content_type:?}; {}",
        exchange.request
    );
    ensure!(
        !exchange.body.trim().is_empty(),
        "the script is empty; {}",
        exchange.request
    );
    Ok(())
}

async fn stream_payments(ctx: &Context) -> Step {
    let redirect = ctx.cloudpay.get("/js/stream-payments.js").send().await?;
    let script = follow(ctx, &redirect).await?;
    expect_javascript(&script)?;
    ensure!(
        script.url.path().ends_with("/stream-payments.js") && script.url.path().contains("/js/"),
        "the redirect should lead to /js/{{version}}/stream-payments.js, not {}",
        script.url
    );

    let redirect = ctx
        .cloudpay
        .get("/js/stream-payments.js")
        .query("minified", "true")
        .send()
        .await?;
    let minified = follow(ctx, &redirect).await?;
    expect_javascript(&minified)?;
    ensure!(
        minified.body.len() <= script.body.len(),
        "the minified script ({} bytes) is larger than the full one ({} bytes)",
        minified.body.len(),
        script.body.len()
    );

    let exchange = ctx
        .cloudpay
        .get("/js/0.0.0-no-such-version/stream-payments.js")
        .send()
        .await?;
    checks::error_response(&exchange, 404)?;
    Ok(())
}
