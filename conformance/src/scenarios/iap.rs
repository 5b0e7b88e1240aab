//! In-app purchases, end to end, for each store the target simulates: the customer buys on
//! their device, the app sends the receipt to `POST /iap/verify`, and the store's
//! notifications (sent as the clock moves) drive the subscription from then on.

use serde_json::{Value, json};

use super::payments::{
    Shopper, account_of, again, entitlements, newest_subscription, shopper, transactions,
};
use crate::context::Context;
use crate::scenario::{Scenario, ScenarioFuture};
use crate::step::{Step, fail};
use crate::stores::{StoreKind, StorePlayer, StorePurchase};
use crate::{ensure, ensure_eq};

/// One store's scenarios: `iap.<store>.<what>`.
macro_rules! store_scenarios {
    ($kind:expr, $store:literal) => {
        vec![
            Scenario {
                name: concat!("iap.", $store, ".purchase_verified"),
                summary: "A purchase verified with the receipt shows the subscription, its \
                          entitlements and package in account and presence, and the \
                          payment the app reported as a transaction",
                run: |ctx| run(ctx, $kind, purchase_verified),
            },
            Scenario {
                name: concat!("iap.", $store, ".twelve_renewals"),
                summary: "Twelve renewals by the store through the clock record twelve \
                          payments, one per period",
                run: |ctx| run(ctx, $kind, twelve_renewals),
            },
            Scenario {
                name: concat!("iap.", $store, ".grace_period_recovered"),
                summary: "A failed renewal in the store's grace period keeps access (past \
                          due); the recovered payment makes it active with one more payment",
                run: |ctx| run(ctx, $kind, grace_period_recovered),
            },
            Scenario {
                name: concat!("iap.", $store, ".failed_renewal_expires"),
                summary: "A renewal that keeps failing ends access and, once the store \
                          gives up, expires the subscription",
                run: |ctx| run(ctx, $kind, failed_renewal_expires),
            },
            Scenario {
                name: concat!("iap.", $store, ".auto_renew_off"),
                summary: "Auto-renew turned off in the store keeps access until the period \
                          ends, then it expires with no further payment",
                run: |ctx| run(ctx, $kind, auto_renew_off),
            },
            Scenario {
                name: concat!("iap.", $store, ".refund_ends_access"),
                summary: "A refund by the store ends access now and records a negative \
                          transaction",
                run: |ctx| run(ctx, $kind, refund_ends_access),
            },
            Scenario {
                name: concat!("iap.", $store, ".replayed_notification"),
                summary: "A notification the store sends again is acknowledged and grants \
                          nothing twice",
                run: |ctx| run(ctx, $kind, replayed_notification),
            },
            Scenario {
                name: concat!("iap.", $store, ".forged_notification_refused"),
                summary: "A notification the store did not sign is refused with 400 and \
                          changes nothing",
                run: |ctx| run(ctx, $kind, forged_notification),
            },
            Scenario {
                name: concat!("iap.", $store, ".second_customer_refused"),
                summary: "The same receipt verified by another customer is refused with \
                          403 in the Lambda envelope and grants them nothing",
                run: |ctx| run(ctx, $kind, second_customer_refused),
            },
        ]
    };
}

pub fn scenarios() -> Vec<Scenario> {
    [
        store_scenarios!(StoreKind::Apple, "apple"),
        store_scenarios!(StoreKind::Google, "google"),
        store_scenarios!(StoreKind::Roku, "roku"),
        store_scenarios!(StoreKind::Amazon, "amazon"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

type StoreScenario = for<'a> fn(&'a Context, StorePlayer) -> ScenarioFuture<'a>;

fn run(ctx: &Context, kind: StoreKind, scenario: StoreScenario) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let store = StorePlayer::find(ctx, kind).await?;
        scenario(ctx, store).await
    })
}

/// `verify` as the app calls it: the status and the Lambda envelope.
async fn verify(ctx: &Context, shopper: &Shopper, request: &Value) -> Step<(u16, Value)> {
    let exchange = ctx
        .cloudpay
        .request(reqwest::Method::POST, "/iap/verify")
        .credential(&shopper.credential())
        .json(request)
        .send()
        .await?;
    let body = exchange.json()?;
    ensure_eq!(
        body["statusCode"],
        json!(exchange.status),
        "the envelope's statusCode"
    );
    ensure!(
        body["headers"].is_object() && body["multiValueHeaders"].is_object(),
        "the envelope has headers and multiValueHeaders: {}",
        exchange.evidence()
    );
    Ok((exchange.status, body))
}

/// A fresh customer who bought the monthly subscription at the store and verified it.
async fn bought(ctx: &Context, store: &StorePlayer) -> Step<(Shopper, StorePurchase)> {
    let shopper = shopper(ctx).await?;
    let purchase = store.buy().await?;
    let (status, body) = verify(ctx, &shopper, &purchase.verify_request).await?;
    ensure_eq!(
        status,
        200,
        "verify of a fresh {} purchase: {body}",
        store.kind().name()
    );
    ensure_eq!(body["body"]["isVerified"], json!(true), "isVerified");
    Ok((shopper, purchase))
}

/// Moves the clock a minute past the end of the period the store charged for, and signs
/// the shopper in again.
async fn past_expiry(
    ctx: &Context,
    store: &StorePlayer,
    purchase: &StorePurchase,
    shopper: Shopper,
) -> Step<Shopper> {
    let expiry = store.expiry(purchase).await?;
    ctx.clock()?.set_to(expiry + 60_000).await?;
    again(ctx, shopper).await
}

async fn paid(ctx: &Context, shopper: &Shopper) -> Step<usize> {
    Ok(transactions(ctx, shopper)
        .await?
        .iter()
        .filter(|entry| entry["Status"] == json!(1) && entry["Amount"].as_f64() > Some(0.0))
        .count())
}

fn both() -> Vec<String> {
    vec!["live".to_owned(), "vod".to_owned()]
}

async fn standing(ctx: &Context, shopper: &Shopper) -> Step<(Value, Vec<String>)> {
    let account = account_of(ctx, shopper).await?;
    Ok((
        newest_subscription(&account)?["Type"].clone(),
        entitlements(&account),
    ))
}

fn purchase_verified(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, _) = bought(ctx, &store).await?;
        let account = account_of(ctx, &shopper).await?;
        ensure_eq!(entitlements(&account), both(), "entitlements");
        let subscription = newest_subscription(&account)?;
        ensure_eq!(subscription["Type"], json!("active"), "the subscription");
        ensure_eq!(subscription["IsIAP"], json!(true), "IsIAP");
        let presence = ctx
            .cloudpay
            .presence(Some(&shopper.credential()))
            .await?
            .expect_json(200)?;
        let session = &presence["CurrentCustomerSession"];
        ensure_eq!(
            session["CustomerEntitlements"],
            json!("live,vod"),
            "CustomerEntitlements"
        );
        ensure_eq!(
            session["CustomerPackages"],
            json!(ctx.config().fixtures.iap_package_id),
            "CustomerPackages"
        );
        let history = transactions(ctx, &shopper).await?;
        ensure_eq!(history.len(), 1, "transactions after the purchase");
        ensure_eq!(
            history[0]["Amount"],
            json!(7.99),
            "the amount the app reported"
        );
        ensure_eq!(history[0]["CurrencyCode"], json!("GBP"), "its currency");
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn twelve_renewals(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (mut shopper, purchase) = bought(ctx, &store).await?;
        for month in 1..=12 {
            shopper = past_expiry(ctx, &store, &purchase, shopper).await?;
            ensure_eq!(
                paid(ctx, &shopper).await?,
                1 + month,
                "payments after renewal {month}"
            );
        }
        ensure_eq!(
            standing(ctx, &shopper).await?,
            (json!("active"), both()),
            "after a year"
        );
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn grace_period_recovered(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, purchase) = bought(ctx, &store).await?;
        store.fail_renewals_with_grace(&purchase).await?;
        let shopper = past_expiry(ctx, &store, &purchase, shopper).await?;
        ensure_eq!(
            standing(ctx, &shopper).await?,
            (json!("past_due"), both()),
            "in the grace period (access kept)"
        );
        store.recover(&purchase).await?;
        ensure_eq!(
            standing(ctx, &shopper).await?,
            (json!("active"), both()),
            "after the payment recovered"
        );
        ensure_eq!(
            paid(ctx, &shopper).await?,
            2,
            "payments: purchase and recovery"
        );
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn failed_renewal_expires(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, purchase) = bought(ctx, &store).await?;
        store.fail_renewals_with_grace(&purchase).await?;
        let expiry = store.expiry(&purchase).await?;
        // Past every store's grace period and retries (Apple: 60 days; Google: 7 days of
        // grace and 30 of account hold; Roku: 3 days of grace and 57 on hold; Amazon: 3
        // days of grace).
        let clock = ctx.clock()?;
        clock.set_to(expiry + 61 * 86_400_000).await?;
        let shopper = again(ctx, shopper).await?;
        ensure_eq!(
            standing(ctx, &shopper).await?,
            (json!("expired"), Vec::<String>::new()),
            "once the store gave up"
        );
        ensure_eq!(paid(ctx, &shopper).await?, 1, "payments: the purchase only");
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn auto_renew_off(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, purchase) = bought(ctx, &store).await?;
        store.turn_auto_renew_off(&purchase).await?;
        let account = account_of(ctx, &shopper).await?;
        ensure_eq!(
            entitlements(&account),
            both(),
            "access until the period ends"
        );
        ensure!(
            newest_subscription(&account)?["RenewalDate"].is_null(),
            "no RenewalDate once auto-renew is off: {account}"
        );
        let shopper = past_expiry(ctx, &store, &purchase, shopper).await?;
        ensure_eq!(
            standing(ctx, &shopper).await?,
            (json!("expired"), Vec::<String>::new()),
            "after the period"
        );
        ensure_eq!(paid(ctx, &shopper).await?, 1, "payments: the purchase only");
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn refund_ends_access(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, purchase) = bought(ctx, &store).await?;
        store.refund(&purchase).await?;
        ensure_eq!(
            standing(ctx, &shopper).await?,
            (json!("refunded"), Vec::<String>::new()),
            "after the refund"
        );
        let history = transactions(ctx, &shopper).await?;
        let refunds: Vec<&Value> = history
            .iter()
            .filter(|entry| entry["Amount"].as_f64().is_some_and(|amount| amount < 0.0))
            .collect();
        ensure_eq!(refunds.len(), 1, "refund transactions");
        ensure_eq!(refunds[0]["Amount"], json!(-7.99), "the refund's amount");
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn replayed_notification(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, purchase) = bought(ctx, &store).await?;
        let shopper = past_expiry(ctx, &store, &purchase, shopper).await?;
        ensure_eq!(paid(ctx, &shopper).await?, 2, "payments after one renewal");
        let (status, body) = store.resend_latest_notification(&purchase).await?;
        ensure_eq!(status, 200, "the resent notification's answer: {body}");
        ensure!(
            body.contains("replayed"),
            "the server says it had the notification already: {body}"
        );
        ensure_eq!(paid(ctx, &shopper).await?, 2, "payments after the replay");
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn forged_notification(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (shopper, purchase) = bought(ctx, &store).await?;
        let before = standing(ctx, &shopper).await?;
        let exchange = store.post_forged_notification(&purchase).await?;
        exchange.expect_status(400)?;
        ensure_eq!(standing(ctx, &shopper).await?, before, "after the forgery");
        ensure_eq!(paid(ctx, &shopper).await?, 1, "payments");
        ctx.end_quietly(&shopper.session).await;
        Ok(())
    })
}

fn second_customer_refused(ctx: &Context, store: StorePlayer) -> ScenarioFuture<'_> {
    Box::pin(async move {
        let (first, purchase) = bought(ctx, &store).await?;
        let second = shopper(ctx).await?;
        let (status, body) = verify(ctx, &second, &purchase.verify_request).await?;
        ensure_eq!(status, 403, "verify of someone else's purchase: {body}");
        ensure!(
            body["body"]["errorMessage"].is_string(),
            "the refusal says why: {body}"
        );
        let account = account_of(ctx, &second).await?;
        if !entitlements(&account).is_empty() {
            return Err(fail(format!("the second customer was granted {account}")));
        }
        ensure_eq!(
            standing(ctx, &first).await?,
            (json!("active"), both()),
            "the buyer keeps the subscription"
        );
        ctx.end_quietly(&first.session).await;
        ctx.end_quietly(&second.session).await;
        Ok(())
    })
}
