//! Web purchases with Stripe, end to end: checkout, the customer confirming in the browser
//! (the Stripe simulator plays them), webhooks, discounts, the account and transactions,
//! renewals and failures on the virtual clock, cancellation and refunds.

use reqwest::Method;
use serde_json::{Value, json};

use crate::cloudpay::Credential;
use crate::context::{Context, Customer, Session};
use crate::scenario::Scenario;
use crate::step::{Step, fail};
use crate::stripe::StripePlayer;
use crate::{ensure, ensure_eq, scenario};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(
            "payments.monthly_purchase",
            "Checkout of the monthly package gives a payment intent; once the customer pays \
             with a Visa, the account and presence show the subscription, its entitlements, \
             the package and the card, and one successful transaction",
            monthly_purchase
        ),
        scenario!(
            "payments.free_trial_converts_to_paid",
            "A free-trial package gives a setup intent; the trial grants access without a \
             transaction, and its end takes the first payment",
            free_trial_converts
        ),
        scenario!(
            "payments.discount_half_and_full",
            "A 50 % code halves the basket's amount at Stripe; a 100 % code completes the \
             purchase at once with the entitlement and no transaction",
            discounts
        ),
        scenario!(
            "payments.single_use_code_twice",
            "A single-use code works once; a second basket is refused it with 400",
            single_use_code
        ),
        scenario!(
            "payments.insufficient_funds",
            "A card with insufficient funds records a transaction with Status -1 and Stripe's \
             message, and grants nothing",
            insufficient_funds
        ),
        scenario!(
            "payments.authentication_required",
            "A card that needs 3D Secure leaves the basket waiting: checkout again shows \
             authenticationRequired",
            authentication_required
        ),
        scenario!(
            "payments.twelve_renewals",
            "Twelve monthly renewals through the clock record twelve successful renewal \
             transactions, one per period",
            twelve_renewals
        ),
        scenario!(
            "payments.failed_renewal_recovered_by_billing_update",
            "A refused renewal makes the subscription past due (access kept); saving a new card \
             with the billing update charges it at once and recovers",
            recovered_by_billing_update
        ),
        scenario!(
            "payments.retries_exhausted_expire",
            "When the renewal and every retry are refused, the subscription expires and its \
             entitlement is gone",
            retries_exhausted
        ),
        scenario!(
            "payments.cancel_at_period_end",
            "Cancelling at period end keeps access until the period ends, then it expires and \
             nothing is charged",
            cancel_at_period_end
        ),
        scenario!(
            "payments.cancel_immediately",
            "An immediate cancellation ends access at once",
            cancel_immediately
        ),
        scenario!(
            "payments.refund_revokes",
            "A full refund in Stripe ends access now and records a negative transaction",
            refund_revokes
        ),
        scenario!(
            "payments.replayed_webhook_changes_nothing",
            "Stripe resending a payment_intent.succeeded grants nothing twice",
            replayed_webhook
        ),
        scenario!(
            "payments.forged_or_stale_webhook_refused",
            "A webhook signed with another secret, or older than the tolerance, is refused with \
             400",
            forged_or_stale_webhook
        ),
        scenario!(
            "payments.cannot_cancel_anothers_subscription",
            "Cancelling another customer's subscription is refused with 403 and changes nothing",
            cannot_cancel_anothers
        ),
    ]
}

/// A signed-in customer; after the clock moves, sign in again (sessions and tokens expire).
pub(super) struct Shopper {
    pub(super) customer: Customer,
    pub(super) session: Session,
}

impl Shopper {
    pub(super) fn credential(&self) -> Credential {
        self.session.by_query()
    }
}

pub(super) async fn shopper(ctx: &Context) -> Step<Shopper> {
    let customer = ctx.fresh_customer().await?;
    let session = ctx.start_session(&customer).await?;
    Ok(Shopper { customer, session })
}

pub(super) async fn again(ctx: &Context, shopper: Shopper) -> Step<Shopper> {
    // Signed up for this scenario, but no longer without purchases: the session checks for
    // a customer who has bought nothing no longer apply.
    let customer = Customer {
        fresh: false,
        ..shopper.customer
    };
    let session = ctx.start_session(&customer).await?;
    Ok(Shopper { customer, session })
}

async fn checkout(ctx: &Context, shopper: &Shopper, package_id: &str) -> Step<Value> {
    let exchange = ctx
        .cloudpay
        .request(Method::POST, "/payment/stripe/checkout")
        .credential(&shopper.credential())
        .json(&json!({ "packageId": package_id }))
        .send()
        .await?;
    let body = exchange.expect_json(201)?;
    for member in ["basketId", "clientSecret", "publicKey"] {
        ensure!(
            body[member].as_str().is_some_and(|value| !value.is_empty()),
            "checkout answered without {member}: {}",
            exchange.evidence()
        );
    }
    ensure!(
        body["authenticationRequired"].is_boolean() && body["discountsEnabled"].is_boolean(),
        "checkout answered without authenticationRequired/discountsEnabled: {}",
        exchange.evidence()
    );
    Ok(body)
}

fn basket_id(basket: &Value) -> Step<&str> {
    basket["basketId"]
        .as_str()
        .ok_or_else(|| fail("the basket has no basketId"))
}

async fn discount(
    ctx: &Context,
    shopper: &Shopper,
    basket: &str,
    code: &str,
) -> Step<(u16, Value)> {
    let exchange = ctx
        .cloudpay
        .request(Method::POST, "/payment/stripe/discount")
        .credential(&shopper.credential())
        .json(&json!({ "basketId": basket, "code": code }))
        .send()
        .await?;
    Ok((exchange.status, exchange.json().unwrap_or(Value::Null)))
}

pub(super) async fn account_of(ctx: &Context, shopper: &Shopper) -> Step<Value> {
    ctx.cloudpay
        .account(Some(&shopper.credential()))
        .await?
        .expect_json(200)
}

pub(super) async fn transactions(ctx: &Context, shopper: &Shopper) -> Step<Vec<Value>> {
    let exchange = ctx
        .cloudpay
        .get("/api/v1/account/transactions")
        .credential(&shopper.credential())
        .query("order", "asc")
        .query("size", "100")
        .send()
        .await?;
    let body = exchange.expect_json(200)?;
    ensure_eq!(body["sort"], json!("asc"), "transactions sort");
    body["transactions"]
        .as_array()
        .cloned()
        .ok_or_else(|| exchange.fail("no transactions array"))
}

pub(super) fn entitlements(account: &Value) -> Vec<String> {
    account["Entitlements"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn newest_subscription(account: &Value) -> Step<&Value> {
    account["Subscriptions"]
        .get(0)
        .ok_or_else(|| fail(format!("the account has no subscription: {account}")))
}

/// Buys the monthly package with a card and checks it went through.
async fn buy_monthly(
    ctx: &Context,
    stripe: &StripePlayer,
    shopper: &Shopper,
    card: &str,
) -> Step<String> {
    let monthly = ctx.fixture(
        "monthlyPackageId",
        &ctx.config().fixtures.monthly_package_id,
    )?;
    let basket = checkout(ctx, shopper, monthly).await?;
    let intent = basket_id(&basket)?.to_owned();
    ensure!(
        intent.starts_with("pi_"),
        "a paid package's basket is a payment intent, not {intent}"
    );
    let confirmed = stripe.confirm(&intent, card).await?.expect_json(200)?;
    ensure_eq!(
        confirmed["status"],
        json!("succeeded"),
        "the payment intent after paying"
    );
    Ok(intent)
}

async fn renewal_date(ctx: &Context, shopper: &Shopper) -> Step<i64> {
    let account = account_of(ctx, shopper).await?;
    let date = newest_subscription(&account)?["RenewalDate"]
        .as_str()
        .ok_or_else(|| fail(format!("no RenewalDate in {account}")))?
        .to_owned();
    chrono::DateTime::parse_from_rfc3339(&date)
        .map(|time| time.timestamp_millis())
        .map_err(|error| fail(format!("RenewalDate {date} is not RFC 3339: {error}")))
}

/// Moves the clock a minute past the next renewal and signs the shopper in again.
async fn through_next_renewal(ctx: &Context, shopper: Shopper) -> Step<(Shopper, i64)> {
    let due = renewal_date(ctx, &shopper).await?;
    ctx.clock()?.set_to(due + 60_000).await?;
    Ok((again(ctx, shopper).await?, due))
}

async fn monthly_purchase(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let shopper = shopper(ctx).await?;
    let intent = buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        entitlements(&account),
        vec!["live".to_owned(), "vod".to_owned()],
        "entitlements"
    );
    let subscription = newest_subscription(&account)?;
    ensure_eq!(
        subscription["Status"],
        json!("active"),
        "subscription status"
    );
    ensure!(
        subscription["RenewalDate"].is_string(),
        "an active monthly subscription has a RenewalDate"
    );
    ensure_eq!(
        account["BillingDetails"]["CardDetails"]["Reference"],
        json!("Visa XXXX-XXXX-XXXX-4242"),
        "the card on file"
    );
    let presence = ctx
        .cloudpay
        .presence(Some(&shopper.credential()))
        .await?
        .expect_json(200)?;
    let session = &presence["CurrentCustomerSession"];
    ensure_eq!(
        session["CustomerSubscriptionCount"],
        json!(1),
        "CustomerSubscriptionCount"
    );
    ensure_eq!(
        session["CustomerEntitlements"],
        json!("live,vod"),
        "CustomerEntitlements"
    );
    ensure_eq!(
        session["CustomerPackages"],
        json!(ctx.config().fixtures.monthly_package_id),
        "CustomerPackages"
    );
    ensure_eq!(
        session["CustomerBillingProfileReference"],
        json!("Visa XXXX-XXXX-XXXX-4242"),
        "CustomerBillingProfileReference"
    );
    let history = transactions(ctx, &shopper).await?;
    ensure_eq!(history.len(), 1, "transactions after one purchase");
    ensure_eq!(history[0]["Status"], json!(1), "the payment's Status");
    ensure_eq!(
        history[0]["Reference"],
        json!(intent),
        "the payment's Reference"
    );
    ensure_eq!(
        history[0]["Provider"],
        json!("StripeCard"),
        "the payment's Provider"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn free_trial_converts(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    ctx.clock()?;
    let trial = ctx.fixture("trialPackageId", &ctx.config().fixtures.trial_package_id)?;
    let shopper = shopper(ctx).await?;
    let basket = checkout(ctx, &shopper, trial).await?;
    let setup = basket_id(&basket)?;
    ensure!(
        setup.starts_with("seti_"),
        "a free trial's basket is a setup intent, not {setup}"
    );
    ensure_eq!(
        basket["discountsEnabled"],
        json!(false),
        "discounts on a free trial"
    );
    stripe
        .confirm(setup, "pm_card_visa")
        .await?
        .expect_json(200)?;
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        newest_subscription(&account)?["Type"],
        json!("trialing"),
        "the subscription's state"
    );
    ensure!(
        !entitlements(&account).is_empty(),
        "a trial grants its entitlements"
    );
    ensure!(
        transactions(ctx, &shopper).await?.is_empty(),
        "a trial takes no money"
    );
    let (shopper, _) = through_next_renewal(ctx, shopper).await?;
    let history = transactions(ctx, &shopper).await?;
    ensure_eq!(history.len(), 1, "transactions after the trial");
    ensure_eq!(history[0]["Status"], json!(1), "the first charge's Status");
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        newest_subscription(&account)?["Type"],
        json!("active"),
        "the subscription's state"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn discounts(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let fixtures = &ctx.config().fixtures;
    let half = ctx.fixture("discountHalfCode", &fixtures.discount_half_code)?;
    let full = ctx.fixture("discountFullCode", &fixtures.discount_full_code)?;
    let one_off = ctx.fixture("oneOffPackageId", &fixtures.one_off_package_id)?;
    let monthly = ctx.fixture("monthlyPackageId", &fixtures.monthly_package_id)?;
    let shopper = shopper(ctx).await?;
    let basket = checkout(ctx, &shopper, one_off).await?;
    let intent = basket_id(&basket)?;
    let before = stripe
        .get(&format!("payment_intents/{intent}"), &[])
        .await?["amount"]
        .as_i64()
        .ok_or_else(|| fail("the intent has no amount"))?;
    let (status, body) = discount(ctx, &shopper, intent, half).await?;
    ensure_eq!(status, 200, "applying {half}: {body}");
    let after = stripe
        .get(&format!("payment_intents/{intent}"), &[])
        .await?["amount"]
        .as_i64()
        .ok_or_else(|| fail("the intent has no amount"))?;
    ensure_eq!(
        after,
        before - (before + 1) / 2,
        "the intent's amount after 50 % off"
    );
    ensure_eq!(
        body["completed"],
        json!(false),
        "a 50 % discount leaves something to pay"
    );

    let basket = checkout(ctx, &shopper, monthly).await?;
    let (status, body) = discount(ctx, &shopper, basket_id(&basket)?, full).await?;
    ensure_eq!(status, 200, "applying {full}: {body}");
    ensure_eq!(
        body["completed"],
        json!(true),
        "a 100 % discount completes the purchase"
    );
    let account = account_of(ctx, &shopper).await?;
    ensure!(
        !entitlements(&account).is_empty(),
        "a free purchase grants its entitlements"
    );
    ensure!(
        transactions(ctx, &shopper).await?.is_empty(),
        "a 100 % discount records no transaction"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn single_use_code(ctx: &Context) -> Step {
    ctx.stripe()?;
    let control = ctx.control()?;
    let one_off = ctx.fixture("oneOffPackageId", &ctx.config().fixtures.one_off_package_id)?;
    let code = format!("ONCE-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]).to_uppercase();
    ctx.http
        .post(crate::config::join(control, "/discounts"))
        .json(&json!({ "code": code, "percentOff": 25, "singleUse": true }))
        .send()
        .await?
        .expect_json(201)?;
    let first = shopper(ctx).await?;
    let second = shopper(ctx).await?;
    let first_basket = checkout(ctx, &first, one_off).await?;
    let second_basket = checkout(ctx, &second, one_off).await?;
    let (status, body) = discount(ctx, &first, basket_id(&first_basket)?, &code).await?;
    ensure_eq!(status, 200, "the first use of {code}: {body}");
    let (status, body) = discount(ctx, &second, basket_id(&second_basket)?, &code).await?;
    ensure_eq!(status, 400, "the second use of {code}: {body}");
    ensure_eq!(
        body["statusCode"],
        json!("400"),
        "the payment error's statusCode"
    );
    ctx.end_quietly(&first.session).await;
    ctx.end_quietly(&second.session).await;
    Ok(())
}

async fn insufficient_funds(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let monthly = ctx.fixture(
        "monthlyPackageId",
        &ctx.config().fixtures.monthly_package_id,
    )?;
    let shopper = shopper(ctx).await?;
    let basket = checkout(ctx, &shopper, monthly).await?;
    let declined = stripe
        .confirm(
            basket_id(&basket)?,
            "pm_card_chargeDeclinedInsufficientFunds",
        )
        .await?;
    declined.expect_status(402)?;
    let history = transactions(ctx, &shopper).await?;
    ensure_eq!(history.len(), 1, "transactions after a declined card");
    ensure_eq!(
        history[0]["Status"],
        json!(-1),
        "a declined payment's Status"
    );
    ensure_eq!(
        history[0]["ProviderMessage"],
        json!("Your card has insufficient funds."),
        "a declined payment's ProviderMessage"
    );
    ensure!(
        entitlements(&account_of(ctx, &shopper).await?).is_empty(),
        "a declined card grants nothing"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn authentication_required(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let monthly = ctx.fixture(
        "monthlyPackageId",
        &ctx.config().fixtures.monthly_package_id,
    )?;
    let shopper = shopper(ctx).await?;
    let basket = checkout(ctx, &shopper, monthly).await?;
    let secret = basket["clientSecret"].as_str().unwrap_or_default();
    let intent = stripe
        .confirm_with_publishable_key(
            basket_id(&basket)?,
            secret,
            "pm_card_authenticationRequired",
        )
        .await?;
    ensure_eq!(
        intent["status"],
        json!("requires_action"),
        "a 3D Secure card's intent"
    );
    let again = checkout(ctx, &shopper, monthly).await?;
    ensure_eq!(
        again["basketId"],
        basket["basketId"],
        "the open basket handed back"
    );
    ensure_eq!(
        again["authenticationRequired"],
        json!(true),
        "authenticationRequired"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn twelve_renewals(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    ctx.clock()?;
    let mut shopper = shopper(ctx).await?;
    buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    for _ in 0..12 {
        shopper = through_next_renewal(ctx, shopper).await?.0;
    }
    let history = transactions(ctx, &shopper).await?;
    let paid = history
        .iter()
        .filter(|entry| entry["Status"] == json!(1))
        .count();
    ensure_eq!(
        paid,
        13,
        "successful transactions: the purchase and twelve renewals"
    );
    ensure_eq!(history.len(), 13, "transactions in all");
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn recovered_by_billing_update(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    ctx.clock()?;
    let shopper = shopper(ctx).await?;
    buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    stripe
        .fail_next_charge(&shopper.customer.email, "expired_card")
        .await?;
    let (shopper, _) = through_next_renewal(ctx, shopper).await?;
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        newest_subscription(&account)?["Type"],
        json!("past_due"),
        "after a refused renewal"
    );
    ensure!(
        !entitlements(&account).is_empty(),
        "access is kept while the renewal is retried"
    );
    let update = ctx
        .cloudpay
        .request(Method::PUT, "/billing/stripe/update")
        .credential(&shopper.credential())
        .send()
        .await?
        .expect_json(200)?;
    let secret = update["clientSecret"].as_str().unwrap_or_default();
    let setup = secret.split("_secret_").next().unwrap_or_default();
    ensure!(
        setup.starts_with("seti_"),
        "the billing update is a setup intent, not {secret}"
    );
    stripe
        .confirm(setup, "pm_card_mastercard")
        .await?
        .expect_json(200)?;
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        newest_subscription(&account)?["Type"],
        json!("active"),
        "after the billing update"
    );
    ensure_eq!(
        account["BillingDetails"]["CardDetails"]["Reference"],
        json!("Mastercard XXXX-XXXX-XXXX-4444"),
        "the new card on file"
    );
    let history = transactions(ctx, &shopper).await?;
    ensure_eq!(
        history.last().map(|entry| entry["Status"].clone()),
        Some(json!(1)),
        "the recovering charge"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn retries_exhausted(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let clock = ctx.clock()?;
    let shopper = shopper(ctx).await?;
    buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    let due = renewal_date(ctx, &shopper).await?;
    // The renewal and the retries one, three and seven days after it (the server's
    // default schedule); each one refused.
    for days in [0, 1, 3, 7] {
        stripe
            .fail_next_charge(&shopper.customer.email, "generic_decline")
            .await?;
        clock.set_to(due + days * 86_400_000 + 60_000).await?;
    }
    let shopper = again(ctx, shopper).await?;
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        newest_subscription(&account)?["Type"],
        json!("expired"),
        "after the last retry"
    );
    ensure!(
        entitlements(&account).is_empty(),
        "an expired subscription grants nothing"
    );
    let failures = transactions(ctx, &shopper)
        .await?
        .iter()
        .filter(|entry| entry["Status"] == json!(-1))
        .count();
    ensure_eq!(failures, 4, "refused attempts recorded");
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn cancel(ctx: &Context, shopper: &Shopper, id: &str, immediate: bool) -> Step<u16> {
    let exchange = ctx
        .cloudpay
        .request(Method::POST, "/api/v1/account/cancellation")
        .credential(&shopper.credential())
        .json(&json!({ "customerSubscriptionId": id, "reason": "conformance", "sendEmail": false, "immediate": immediate }))
        .send()
        .await?;
    Ok(exchange.status)
}

async fn cancel_at_period_end(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    ctx.clock()?;
    let shopper = shopper(ctx).await?;
    buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    let account = account_of(ctx, &shopper).await?;
    let id = newest_subscription(&account)?["Id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let due = renewal_date(ctx, &shopper).await?;
    ensure_eq!(
        cancel(ctx, &shopper, &id, false).await?,
        202,
        "cancelling at period end"
    );
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        newest_subscription(&account)?["Status"],
        json!("cancelled"),
        "the subscription's Status"
    );
    ensure!(
        !entitlements(&account).is_empty(),
        "access continues until the period ends"
    );
    ctx.clock()?.set_to(due + 60_000).await?;
    let shopper = again(ctx, shopper).await?;
    let account = account_of(ctx, &shopper).await?;
    ensure!(
        entitlements(&account).is_empty(),
        "access ends with the period"
    );
    ensure_eq!(
        transactions(ctx, &shopper).await?.len(),
        1,
        "nothing renewed"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn cancel_immediately(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let shopper = shopper(ctx).await?;
    buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    let account = account_of(ctx, &shopper).await?;
    let id = newest_subscription(&account)?["Id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure_eq!(
        cancel(ctx, &shopper, &id, true).await?,
        202,
        "cancelling now"
    );
    let account = account_of(ctx, &shopper).await?;
    ensure!(
        entitlements(&account).is_empty(),
        "an immediate cancellation ends access"
    );
    ensure_eq!(
        newest_subscription(&account)?["Status"],
        json!("cancelled"),
        "the subscription's Status"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn refund_revokes(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let shopper = shopper(ctx).await?;
    let intent = buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    let charge = stripe
        .get(&format!("payment_intents/{intent}"), &[])
        .await?["latest_charge"]
        .as_str()
        .ok_or_else(|| fail("the paid intent has no latest_charge"))?
        .to_owned();
    stripe.refund(&charge).await?;
    stripe.deliver_webhooks().await?;
    let account = account_of(ctx, &shopper).await?;
    ensure!(
        entitlements(&account).is_empty(),
        "a refunded subscription grants nothing"
    );
    let history = transactions(ctx, &shopper).await?;
    ensure_eq!(history.len(), 2, "the payment and its refund");
    ensure!(
        history[1]["Amount"]
            .as_f64()
            .is_some_and(|amount| amount < 0.0),
        "a refund is a negative Amount: {}",
        history[1]
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn replayed_webhook(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let shopper = shopper(ctx).await?;
    let intent = buy_monthly(ctx, &stripe, &shopper, "pm_card_visa").await?;
    let events = stripe
        .get(
            "events",
            &[("type", "payment_intent.succeeded"), ("limit", "100")],
        )
        .await?;
    let event = events["data"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|event| event["data"]["object"]["id"] == json!(intent))
        })
        .ok_or_else(|| fail(format!("no payment_intent.succeeded event for {intent}")))?;
    stripe
        .resend(event["id"].as_str().unwrap_or_default())
        .await?;
    stripe.deliver_webhooks().await?;
    let account = account_of(ctx, &shopper).await?;
    ensure_eq!(
        account["Subscriptions"].as_array().map(Vec::len),
        Some(1),
        "subscriptions after the replay"
    );
    ensure_eq!(
        transactions(ctx, &shopper).await?.len(),
        1,
        "transactions after the replay"
    );
    ctx.end_quietly(&shopper.session).await;
    Ok(())
}

async fn forged_or_stale_webhook(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let now_seconds = match ctx.clock() {
        Ok(clock) => clock.now().await? / 1000,
        Err(_) => {
            return Err(crate::step::skip(
                "needs the virtual clock to date a signature",
            ));
        }
    };
    let body = json!({
        "id": format!("evt_conformance_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": now_seconds,
        "data": { "object": { "id": "pi_conformance", "object": "payment_intent" } }
    })
    .to_string();
    let forged = crate::stripe::signature(&body, "whsec_forged", now_seconds);
    stripe
        .post_webhook(&body, &forged)
        .await?
        .expect_status(400)?;
    let stale = stripe.sign(&body, now_seconds - 3600)?;
    stripe
        .post_webhook(&body, &stale)
        .await?
        .expect_status(400)?;
    stripe
        .post_webhook(&body, "t=1")
        .await?
        .expect_status(400)?;
    Ok(())
}

async fn cannot_cancel_anothers(ctx: &Context) -> Step {
    let stripe = ctx.stripe()?;
    let owner = shopper(ctx).await?;
    buy_monthly(ctx, &stripe, &owner, "pm_card_visa").await?;
    let account = account_of(ctx, &owner).await?;
    let id = newest_subscription(&account)?["Id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let other = shopper(ctx).await?;
    let exchange = ctx
        .cloudpay
        .request(Method::POST, "/api/v1/account/cancellation")
        .credential(&other.credential())
        .json(&json!({ "customerSubscriptionId": id, "reason": "not mine" }))
        .send()
        .await?;
    let body = exchange.expect_json(403)?;
    ensure_eq!(body["statusCode"], json!(403), "the error's statusCode");
    let account = account_of(ctx, &owner).await?;
    ensure!(!entitlements(&account).is_empty(), "the owner keeps access");
    ctx.end_quietly(&owner.session).await;
    ctx.end_quietly(&other.session).await;
    Ok(())
}
