//! Web purchases through CloudPay with the Stripe simulator: checkout, confirmation as the
//! customer, discounts, the account and transactions, renewals, failures and recovery on the
//! virtual clock, cancellation, and the bad input the payment operations must refuse.

mod common;

use boxoffice::clock::Clock;
use boxoffice::store::{JobScope, Store};
use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

struct Shopper {
    token: String,
}

impl Shopper {
    fn auth(&self) -> String {
        format!("apijwttoken={}", self.token)
    }
}

/// Signs Alice in with a fresh token and session: moving the clock expires both.
async fn alice(app: &TestApp) -> Shopper {
    test_user(app, 0).await
}

/// Signs in the simulator's test user `index` (0 is Alice, 1 Bob, 2 Carol).
async fn test_user(app: &TestApp, index: usize) -> Shopper {
    let user = &app.server.config.test_users[index];
    let token = app.id_token(&user.email, &user.password).await;
    let (status, _) = app.start_session(&token).await;
    assert_eq!(status, 200);
    Shopper { token }
}

async fn checkout(app: &TestApp, shopper: &Shopper, package_id: &str) -> Value {
    let (status, body) = app
        .post_json(
            &format!("/cloudpay/payment/stripe/checkout?{}", shopper.auth()),
            &json!({ "packageId": package_id }),
        )
        .await;
    assert_eq!(status, 201, "checkout: {body}");
    body
}

async fn confirm(app: &TestApp, intent: &str, payment_method: &str) -> (u16, Value) {
    app.post_json(
        &format!("/sim/control/stripe/intents/{intent}/confirm"),
        &json!({ "payment_method": payment_method }),
    )
    .await
}

async fn account(app: &TestApp, shopper: &Shopper) -> Value {
    let (status, body) = app
        .get(&format!("/cloudpay/api/v1/account?{}", shopper.auth()))
        .await;
    assert_eq!(status, 200, "account: {body}");
    body
}

async fn transactions(app: &TestApp, shopper: &Shopper) -> Vec<Value> {
    transactions_page(app, shopper, 1).await
}

/// A page of 100 transactions, oldest first.
async fn transactions_page(app: &TestApp, shopper: &Shopper, page: u32) -> Vec<Value> {
    let (status, body) = app
        .get(&format!(
            "/cloudpay/api/v1/account/transactions?order=asc&size=100&page={page}&{}",
            shopper.auth()
        ))
        .await;
    assert_eq!(status, 200, "transactions: {body}");
    body["transactions"].as_array().cloned().unwrap_or_default()
}

/// Buys the monthly pass with a card: checkout, the customer confirms, and the server
/// learns of it (here by the next checkout, which settles the paid basket).
async fn buy_monthly(app: &TestApp, shopper: &Shopper, card: &str) -> String {
    let monthly = app.server.config.fixtures.monthly_package_id.clone();
    let basket = checkout(app, shopper, &monthly).await;
    let intent = basket["basketId"].as_str().expect("basketId").to_owned();
    let (status, confirmed) = confirm(app, &intent, card).await;
    assert_eq!(status, 200, "confirm: {confirmed}");
    assert_eq!(confirmed["status"], "succeeded");
    let again = checkout(app, shopper, &monthly).await;
    assert_ne!(
        again["basketId"], basket["basketId"],
        "a paid basket is not reused"
    );
    intent
}

async fn stripe_customer(app: &TestApp, email: &str) -> String {
    let list = app
        .stripe(Method::GET, "customers", &[("email", email)])
        .await;
    list["data"][0]["id"].as_str().expect("customer").to_owned()
}

/// When the customer's newest subscription renews (or renewed, while it is retried).
async fn renewal_date(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    let shopper = alice(app).await;
    let view = account(app, &shopper).await;
    renewal_date_of(&view["Subscriptions"][0])
}

/// When a subscription of the account view renews.
fn renewal_date_of(subscription: &Value) -> chrono::DateTime<chrono::Utc> {
    let date = subscription["RenewalDate"]
        .as_str()
        .unwrap_or_else(|| panic!("no renewal date in {subscription}"));
    chrono::DateTime::parse_from_rfc3339(date)
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
}

/// Moves the clock to just after the next renewal.
async fn through_next_renewal(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    let due = renewal_date(app).await;
    app.set_clock(due + chrono::Duration::minutes(1)).await;
    due
}

async fn fail_next_charge(app: &TestApp, decline_code: &str) {
    let customer = stripe_customer(app, &app.server.config.test_users[0].email).await;
    let (status, body) = app
        .post_json(
            &format!("/sim/control/stripe/customers/{customer}/fail_next_charge"),
            &json!({ "decline_code": decline_code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The server reaches its Stripe simulator, and the simulator the server's webhook
/// receiver, over a Unix socket the process serves beside its port; nothing answers on it
/// once the process stops.
#[cfg(unix)]
#[tokio::test]
async fn simulator_mode_serves_a_unix_socket_for_its_own_traffic_until_it_stops() {
    let app = TestApp::start().await;
    let socket = app
        .server
        .local_socket()
        .expect("a Unix socket beside the port")
        .to_owned();
    let over_socket = reqwest::Client::builder()
        .unix_socket(socket.as_path())
        .build()
        .expect("client");
    let response = over_socket
        .get("http://boxoffice.invalid/healthz")
        .send()
        .await
        .expect("the server answers on its socket");
    assert_eq!(response.status(), 200);

    app.stop().await;
    over_socket
        .get("http://boxoffice.invalid/healthz")
        .send()
        .await
        .expect_err("nothing listens on the socket any more");
    assert!(!socket.exists(), "{} is left behind", socket.display());
}

#[tokio::test]
async fn a_paid_monthly_purchase_shows_in_account_presence_and_transactions() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    let basket = checkout(
        &app,
        &shopper,
        &app.server.config.fixtures.monthly_package_id,
    )
    .await;
    assert!(basket["basketId"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(
        basket["publicKey"],
        app.server.config.stripe.publishable_key
    );
    assert_eq!(basket["authenticationRequired"], false);
    assert_eq!(basket["discountsEnabled"], true);

    let intent = buy_monthly(&app, &shopper, "pm_card_visa").await;
    assert_eq!(
        json!(intent),
        basket["basketId"],
        "the open basket is handed back"
    );
    let next = checkout(
        &app,
        &shopper,
        &app.server.config.fixtures.monthly_package_id,
    )
    .await;
    assert_ne!(
        next["basketId"], basket["basketId"],
        "a paid basket is not reused"
    );
    let view = account(&app, &shopper).await;
    assert_eq!(view["Entitlements"], json!(["live", "vod"]));
    let subscriptions = view["Subscriptions"].as_array().unwrap();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0]["Status"], "active");
    assert!(subscriptions[0]["RenewalDate"].is_string());
    assert_eq!(
        view["BillingDetails"]["CardDetails"]["Reference"],
        "Visa XXXX-XXXX-XXXX-4242"
    );
    let (_, presence) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?{}",
            shopper.auth()
        ))
        .await;
    let session = &presence["CurrentCustomerSession"];
    assert_eq!(session["CustomerSubscriptionCount"], 1);
    assert_eq!(session["CustomerEntitlements"], "live,vod");
    assert_eq!(
        session["CustomerPackages"],
        app.server.config.fixtures.monthly_package_id
    );
    assert_eq!(
        session["CustomerBillingProfileReference"],
        "Visa XXXX-XXXX-XXXX-4242"
    );
    let transactions = transactions(&app, &shopper).await;
    assert_eq!(transactions.len(), 1);
    assert_eq!(transactions[0]["Status"], 1);
    assert_eq!(transactions[0]["Amount"], 9.99);
    assert_eq!(transactions[0]["Reference"], intent);
    assert_eq!(transactions[0]["Provider"], "StripeCard");
    app.stop().await;
}

#[tokio::test]
async fn renewals_follow_the_clock_and_a_refused_renewal_is_retried_until_it_recovers() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    buy_monthly(&app, &shopper, "pm_card_visa").await;
    for _ in 0..3 {
        through_next_renewal(&app).await;
    }
    let shopper = alice(&app).await;
    assert_eq!(
        transactions(&app, &shopper).await.len(),
        4,
        "purchase + 3 renewals"
    );

    fail_next_charge(&app, "insufficient_funds").await;
    let due = through_next_renewal(&app).await;
    let shopper = alice(&app).await;
    let history = transactions(&app, &shopper).await;
    let failed = history.last().unwrap();
    assert_eq!(failed["Status"], -1);
    assert_eq!(
        failed["ProviderMessage"],
        "Your card has insufficient funds."
    );
    let view = account(&app, &shopper).await;
    assert_eq!(view["Subscriptions"][0]["Type"], "past_due");
    assert_eq!(
        view["Entitlements"],
        json!(["live", "vod"]),
        "access is kept while the renewal is retried"
    );

    app.set_clock(due + chrono::Duration::hours(23)).await;
    let shopper = alice(&app).await;
    assert_eq!(
        transactions(&app, &shopper).await.len(),
        5,
        "no retry before a day has passed"
    );
    app.set_clock(due + chrono::Duration::hours(25)).await;
    let shopper = alice(&app).await;
    let history = transactions(&app, &shopper).await;
    assert_eq!(history.last().unwrap()["Status"], 1, "the retry succeeds");
    assert_eq!(
        account(&app, &shopper).await["Subscriptions"][0]["Type"],
        "active"
    );
    let paid = history.iter().filter(|t| t["Status"] == 1).count();
    assert_eq!(paid, 5, "one successful charge per period");
    app.stop().await;
}

/// More rows than one statement of the store reads or writes on SQLite (48).
const MORE_THAN_ONE_STATEMENT: usize = 60;

/// Alice, having bought `passes` monthly passes with a card that pays.
async fn alice_with_monthly_passes(app: &TestApp, passes: usize) {
    let shopper = alice(app).await;
    for _ in 0..passes {
        buy_monthly(app, &shopper, "pm_card_visa").await;
    }
}

/// More subscriptions fall due at once than one statement of a billing batch reads or
/// writes: every one renews exactly once, and the clock move answers only once all have.
#[tokio::test]
async fn a_billing_batch_larger_than_one_statement_renews_every_subscription_once() {
    let app = TestApp::start().await;
    alice_with_monthly_passes(&app, MORE_THAN_ONE_STATEMENT).await;
    let due = through_next_renewal(&app).await;

    let shopper = alice(&app).await;
    let view = account(&app, &shopper).await;
    let subscriptions = view["Subscriptions"].as_array().expect("subscriptions");
    assert_eq!(subscriptions.len(), MORE_THAN_ONE_STATEMENT);
    for subscription in subscriptions {
        assert!(
            renewal_date_of(subscription) > due + chrono::Duration::days(27),
            "not renewed: {subscription}"
        );
    }
    let mut history = transactions_page(&app, &shopper, 1).await;
    history.extend(transactions_page(&app, &shopper, 2).await);
    assert_eq!(
        history.len(),
        2 * MORE_THAN_ONE_STATEMENT,
        "each purchase and one renewal of it"
    );
    assert!(history.iter().all(|entry| entry["Status"] == 1));
    app.stop().await;
}

/// A customer's own retry (a billing update) claims that customer's due renewals and no
/// one else's, however many fall due: the rest are the billing clock's.
#[tokio::test]
async fn a_claim_for_one_customer_takes_only_that_customers_due_jobs() {
    let app = TestApp::start().await;
    let (alice, bob) = (alice(&app).await, test_user(&app, 1).await);
    buy_monthly(&app, &alice, "pm_card_visa").await;
    buy_monthly(&app, &alice, "pm_card_visa").await;
    buy_monthly(&app, &bob, "pm_card_visa").await;
    let alice_id = customer_id(&app, &app.server.config.test_users[0].email).await;
    let store = Store::open(&app.database_url).await.expect("the database");
    // Far enough ahead that every renewal is due; the billing clock, on the virtual
    // clock's now, leaves them alone meanwhile.
    let later = app.server.clock.now() + chrono::Duration::days(40);
    let lease = later + chrono::Duration::minutes(2);
    assert_eq!(
        store
            .due_job_count(JobScope::All, later)
            .await
            .expect("count"),
        3
    );
    assert_eq!(
        store
            .due_job_count(JobScope::Customer(&alice_id), later)
            .await
            .expect("count"),
        2
    );

    let claimed = store
        .claim_due_jobs(JobScope::Customer(&alice_id), "retry", later, lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2, "Alice's two renewals: {claimed:?}");
    let view = account(&app, &alice).await;
    let mut alices: Vec<&str> = view["Subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .filter_map(|subscription| subscription["Id"].as_str())
        .collect();
    let mut claimed_ids: Vec<&str> = claimed
        .iter()
        .map(|job| job.subscription_id.as_str())
        .collect();
    alices.sort_unstable();
    claimed_ids.sort_unstable();
    assert_eq!(claimed_ids, alices);
    assert!(
        store
            .claim_due_jobs(JobScope::Customer(&alice_id), "retry", later, lease, 10)
            .await
            .expect("claim")
            .is_empty(),
        "hers are leased now"
    );
    let rest = store
        .claim_due_jobs(JobScope::All, "clock", later, lease, 10)
        .await
        .expect("claim");
    assert_eq!(rest.len(), 1, "Bob's renewal is still the clock's to claim");
    assert!(!claimed_ids.contains(&rest[0].subscription_id.as_str()));
    app.stop().await;
}

/// A claim longer than one statement's result (on SQLite) is made of several, each
/// starting where the last stopped: every due job is claimed once, by one claim or the
/// next, the earliest due first, and a job claimed is not claimed again.
#[tokio::test]
async fn a_claim_longer_than_one_statement_takes_each_due_job_once() {
    let app = TestApp::start().await;
    alice_with_monthly_passes(&app, MORE_THAN_ONE_STATEMENT).await;
    let store = Store::open(&app.database_url).await.expect("the database");
    let later = app.server.clock.now() + chrono::Duration::days(40);
    let lease = later + chrono::Duration::minutes(2);
    let claim = |limit| store.claim_due_jobs(JobScope::All, "clock", later, lease, limit);

    let first = claim(50).await.expect("claim");
    let second = claim(50).await.expect("claim");
    assert_eq!(
        (first.len(), second.len()),
        (50, MORE_THAN_ONE_STATEMENT - 50)
    );
    assert!(claim(50).await.expect("claim").is_empty(), "all leased now");
    let latest_first = first.iter().map(|job| job.due_at).max();
    let earliest_second = second.iter().map(|job| job.due_at).min();
    assert!(latest_first <= earliest_second, "the earliest due first");
    let mut claimed: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|job| job.subscription_id.as_str())
        .collect();
    claimed.sort_unstable();
    claimed.dedup();
    assert_eq!(claimed.len(), MORE_THAN_ONE_STATEMENT, "each job once");
    app.stop().await;
}

/// The boxoffice customer id of the account with `email`.
async fn customer_id(app: &TestApp, email: &str) -> String {
    let mut database = app.database().await;
    sqlx::query_scalar("SELECT id FROM customers WHERE email = $1")
        .bind(email)
        .fetch_one(&mut database)
        .await
        .expect("the customer")
}

#[tokio::test]
async fn retries_exhausted_expire_the_subscription_and_its_entitlements() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    buy_monthly(&app, &shopper, "pm_card_visa").await;
    // The renewal, then the retries one, three and seven days after it.
    let due = renewal_date(&app).await;
    for days_after in [0, 1, 3, 7] {
        fail_next_charge(&app, "generic_decline").await;
        app.set_clock(due + chrono::Duration::days(days_after) + chrono::Duration::minutes(1))
            .await;
    }
    let shopper = alice(&app).await;
    let view = account(&app, &shopper).await;
    assert_eq!(view["Subscriptions"][0]["Type"], "expired");
    assert_eq!(view["Entitlements"], json!([]));
    let failures = transactions(&app, &shopper)
        .await
        .iter()
        .filter(|t| t["Status"] == -1)
        .count();
    assert_eq!(failures, 4, "the first attempt and three retries");
    app.stop().await;
}

#[tokio::test]
async fn cancelling_at_period_end_keeps_access_until_then_and_immediately_ends_it() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    buy_monthly(&app, &shopper, "pm_card_visa").await;
    let id = account(&app, &shopper).await["Subscriptions"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .post_json(
            &format!("/cloudpay/api/v1/account/cancellation?{}", shopper.auth()),
            &json!({ "customerSubscriptionId": id, "reason": "Too expensive" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let view = account(&app, &shopper).await;
    assert_eq!(view["Subscriptions"][0]["Status"], "cancelled");
    assert!(view["Subscriptions"][0]["RenewalDate"].is_null());
    assert_eq!(view["Entitlements"], json!(["live", "vod"]));
    app.advance_clock("32d").await;
    let shopper = alice(&app).await;
    let view = account(&app, &shopper).await;
    assert_eq!(view["Entitlements"], json!([]));
    assert_eq!(view["Subscriptions"][0]["Type"], "expired");
    assert_eq!(
        transactions(&app, &shopper).await.len(),
        1,
        "nothing renewed"
    );

    buy_monthly(&app, &shopper, "pm_card_visa").await;
    let view = account(&app, &shopper).await;
    let newest = view["Subscriptions"][0]["Id"].as_str().unwrap().to_owned();
    assert_ne!(newest, id, "a new purchase is a new customer subscription");
    let (status, _) = app
        .post_json(
            &format!("/cloudpay/api/v1/account/cancellation?{}", shopper.auth()),
            &json!({ "customerSubscriptionId": newest, "reason": "Moving", "immediate": true }),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(account(&app, &shopper).await["Entitlements"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn discounts_lower_the_basket_and_a_full_discount_completes_without_a_transaction() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    let fixtures = &app.server.config.fixtures;
    let basket = checkout(&app, &shopper, &fixtures.one_off_package_id).await;
    let discount_path = format!("/cloudpay/payment/stripe/discount?{}", shopper.auth());
    let (status, body) = app
        .post_json(
            &discount_path,
            &json!({ "basketId": basket["basketId"], "code": "50off" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["amount"], 2.49);
    assert_eq!(body["completed"], false);
    let intent = app
        .stripe(
            Method::GET,
            &format!("payment_intents/{}", basket["basketId"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(intent["amount"], 249);
    let (status, body) = app
        .post_json(
            &discount_path,
            &json!({ "basketId": basket["basketId"], "code": "2POUNDSOFF" }),
        )
        .await;
    assert_eq!(status, 400, "one discount per basket: {body}");
    assert_eq!(body["statusCode"], "400");

    let monthly = checkout(&app, &shopper, &fixtures.monthly_package_id).await;
    let (status, body) = app
        .post_json(
            &discount_path,
            &json!({ "basketId": monthly["basketId"], "code": "FREEMONTH" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["completed"], true);
    let view = account(&app, &shopper).await;
    assert_eq!(view["Entitlements"], json!(["live", "vod"]));
    assert!(
        transactions(&app, &shopper).await.is_empty(),
        "a free purchase records nothing"
    );

    let (status, body) = app
        .post_json(
            &discount_path,
            &json!({ "basketId": "pi_unknown", "code": "50OFF" }),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("Not Found")));
    let trial = checkout(&app, &shopper, &fixtures.trial_package_id).await;
    assert!(trial["basketId"].as_str().unwrap().starts_with("seti_"));
    assert_eq!(trial["discountsEnabled"], false);
    let (status, _) = app
        .post_json(
            &discount_path,
            &json!({ "basketId": trial["basketId"], "code": "50OFF" }),
        )
        .await;
    assert_eq!(status, 400, "no discount on a free trial");
    let fresh = checkout(&app, &shopper, &fixtures.one_off_package_id).await;
    for (code, reason) in [("SUMMER2020", "expired"), ("NOPE", "unknown")] {
        let (status, body) = app
            .post_json(
                &discount_path,
                &json!({ "basketId": fresh["basketId"], "code": code }),
            )
            .await;
        assert_eq!(status, 400, "{reason} code: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn payment_operations_refuse_bad_input_with_their_error_shape() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    let (status, body) = app
        .post_json(
            &format!("/cloudpay/payment/stripe/checkout?{}", shopper.auth()),
            &json!({ "packageId": "no-such-package" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["statusCode"], "404");
    let (status, _) = app
        .post_json(
            &format!("/cloudpay/payment/stripe/checkout?{}", shopper.auth()),
            &json!({ "packageId": app.server.config.fixtures.iap_package_id }),
        )
        .await;
    assert_eq!(status, 400, "app-store packages are not sold on the web");
    let (status, _) = app
        .post_json(
            "/cloudpay/payment/stripe/checkout",
            &json!({ "packageId": app.server.config.fixtures.monthly_package_id }),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_json(
            "/cloudpay/discount/streamamg/sync",
            &json!({ "site": "x", "event": "DiscountCreatedOrUpdatedEvent", "discountId": "3c2a7e5d-8f14-4b9a-a6d0-2e1f9c7b4a83" }),
        )
        .await;
    assert_eq!(status, 401, "sync needs the API key");

    // Refused before a handler runs: still the payment operations' shape.
    let malformed = app
        .http
        .post(app.url(&format!(
            "/cloudpay/payment/stripe/checkout?{}",
            shopper.auth()
        )))
        .header("content-type", "application/json")
        .body("{\"packageId\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["statusCode"], "400", "{body}");
    assert_eq!(body["error"], "Bad Request", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body.get("body").is_none(), "{body}");
    let (status, body) = app
        .post_json("/cloudpay/billing/stripe/update", &json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "Unauthorized", "{body}");
    // The other operations keep CloudPay's `{statusCode, body}`.
    let (status, body) = app
        .post_json("/cloudpay/api/v1/account/cancellation", &json!({}))
        .await;
    assert_eq!(status, 401);
    assert!(body["body"]["message"].is_string(), "{body}");

    let forged = json!({ "id": "evt_forged", "type": "payment_intent.succeeded", "created": 1, "data": { "object": { "id": "pi_x" } } });
    let response = app
        .http
        .post(app.url("/webhooks/stripe"))
        .header("Stripe-Signature", "t=1,v1=00")
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, body) = app
        .post_json(
            &format!("/cloudpay/api/v1/account/cancellation?{}", shopper.auth()),
            &json!({ "customerSubscriptionId": "not-mine", "reason": "x" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_single_use_code_is_redeemed_exactly_once_under_concurrent_requests() {
    let app = TestApp::start().await;
    let (status, created) = app
        .post_json(
            "/sim/control/discounts",
            &json!({ "code": "once-only", "percentOff": 30, "singleUse": true }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["code"], "ONCE-ONLY");
    let (status, _) = app
        .post_json(
            "/sim/control/discounts",
            &json!({ "code": "ONCE-ONLY", "percentOff": 10 }),
        )
        .await;
    assert_eq!(status, 400, "codes are unique");

    // Three customers with three open baskets each: nine redemptions racing.
    let fixtures = &app.server.config.fixtures;
    let packages = [
        fixtures.monthly_package_id.clone(),
        fixtures.one_off_package_id.clone(),
        "0b7f3c1e-6d2a-4e58-9a41-7c5d2e8f9b30".to_owned(),
    ];
    let mut attempts = Vec::new();
    for user in &app.server.config.test_users {
        let token = app.id_token(&user.email, &user.password).await;
        assert_eq!(app.start_session(&token).await.0, 200);
        let shopper = Shopper { token };
        for package in &packages {
            let basket = checkout(&app, &shopper, package).await;
            attempts.push((shopper.auth(), basket["basketId"].clone()));
        }
    }
    let mut racing = tokio::task::JoinSet::new();
    for (auth, basket) in attempts {
        let http = app.http.clone();
        let url = app.url(&format!("/cloudpay/payment/stripe/discount?{auth}"));
        racing.spawn(async move {
            let response = http
                .post(url)
                .json(&json!({ "basketId": basket, "code": "ONCE-ONLY" }))
                .send()
                .await
                .expect("server reachable");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        });
    }
    let results = racing.join_all().await;
    let accepted = results.iter().filter(|(status, _)| *status == 200).count();
    let refused = results
        .iter()
        .filter(|(status, body)| {
            *status == 400
                && body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("already been used"))
        })
        .count();
    assert_eq!((accepted, refused), (1, 8), "{results:?}");
    app.stop().await;
}

async fn post_webhook(app: &TestApp, signature: &str, body: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_owned())
        .send()
        .await
        .expect("server reachable");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Stripe's `payment_intent.succeeded` events, newest first.
async fn intents_succeeded(app: &TestApp) -> Value {
    app.stripe(
        Method::GET,
        "events",
        &[("type", "payment_intent.succeeded")],
    )
    .await
}

/// Posts an event to the Stripe webhook, signed now with the endpoint's secret.
async fn post_signed_event(app: &TestApp, event: &Value) -> (u16, Value) {
    let body = event.to_string();
    let now = boxoffice::clock::Clock::now(app.server.clock.as_ref()).timestamp();
    let secret = &app.server.config.stripe.webhook_secret;
    let signature = boxoffice::providers::stripe::sign(body.as_bytes(), secret, now);
    post_webhook(app, &signature, &body).await
}

#[tokio::test]
async fn replayed_webhooks_change_nothing_and_forged_or_stale_ones_are_refused() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    buy_monthly(&app, &shopper, "pm_card_visa").await;
    let events = intents_succeeded(&app).await;
    let event = events["data"][0].clone();
    let event_id = event["id"].as_str().expect("event id");
    let (status, _) = app
        .post_json(
            &format!("/sim/control/stripe/events/{event_id}/resend"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, delivered) = app
        .post_json("/sim/control/stripe/webhooks/deliver", &json!({}))
        .await;
    assert_eq!(status, 200, "{delivered}");
    assert_eq!(
        transactions(&app, &shopper).await.len(),
        1,
        "no second payment"
    );
    assert_eq!(
        account(&app, &shopper).await["Subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (status, receipt) = post_signed_event(&app, &event).await;
    assert_eq!(
        (status, receipt["outcome"].as_str()),
        (200, Some("replayed"))
    );
    let secret = &app.server.config.stripe.webhook_secret;
    let body = event.to_string();
    let now = boxoffice::clock::Clock::now(app.server.clock.as_ref()).timestamp();
    let (status, refusal) = post_webhook(
        &app,
        &boxoffice::providers::stripe::sign(body.as_bytes(), "whsec_forged", now),
        &body,
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    let stale = now - 301;
    let (status, refusal) = post_webhook(
        &app,
        &boxoffice::providers::stripe::sign(body.as_bytes(), secret, stale),
        &body,
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal["error"].as_str().unwrap().contains("old"),
        "{refusal}"
    );
    let (status, _) = post_webhook(
        &app,
        &boxoffice::providers::stripe::sign(b"not json", secret, now),
        "not json",
    )
    .await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[tokio::test]
async fn a_renewals_webhook_is_acknowledged_as_applied_however_often_it_comes() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    buy_monthly(&app, &shopper, "pm_card_visa").await;
    through_next_renewal(&app).await;
    let events = intents_succeeded(&app).await;
    let renewal = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["data"]["object"]["metadata"]["boxoffice_period"] == "1")
        .unwrap_or_else(|| panic!("no renewal event in {events}"))
        .clone();

    for delivery in ["first", "replayed"] {
        let (status, receipt) = post_signed_event(&app, &renewal).await;
        assert_eq!(
            (status, receipt["outcome"].as_str()),
            (200, Some("applied")),
            "{delivery} delivery: {receipt}"
        );
    }
    let shopper = alice(&app).await;
    let paid = transactions(&app, &shopper)
        .await
        .iter()
        .filter(|transaction| transaction["Status"] == 1)
        .count();
    assert_eq!(
        paid, 2,
        "the purchase and one renewal, however often it is notified"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_declined_card_records_a_failed_transaction_with_stripes_message() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    let basket = checkout(
        &app,
        &shopper,
        &app.server.config.fixtures.monthly_package_id,
    )
    .await;
    let intent = basket["basketId"].as_str().unwrap();
    let (status, _) = confirm(&app, intent, "pm_card_chargeDeclinedInsufficientFunds").await;
    assert_eq!(status, 402);
    let history = transactions(&app, &shopper).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["Status"], -1);
    assert_eq!(
        history[0]["ProviderMessage"],
        "Your card has insufficient funds."
    );
    assert_eq!(account(&app, &shopper).await["Entitlements"], json!([]));
    let (status, _) = confirm(&app, intent, "pm_card_visa").await;
    assert_eq!(status, 200, "the same basket pays with another card");
    assert_eq!(
        account(&app, &shopper).await["Entitlements"],
        json!(["live", "vod"])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_card_needing_authentication_shows_as_authentication_required() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    let monthly = &app.server.config.fixtures.monthly_package_id;
    let basket = checkout(&app, &shopper, monthly).await;
    let intent = basket["basketId"].as_str().unwrap();
    let response = app
        .http
        .post(app.url(&format!("/sim/stripe/v1/payment_intents/{intent}/confirm")))
        .bearer_auth(&app.server.config.stripe.publishable_key)
        .form(&[
            ("client_secret", basket["clientSecret"].as_str().unwrap()),
            ("payment_method", "pm_card_authenticationRequired"),
        ])
        .send()
        .await
        .unwrap();
    let confirmed: Value = response.json().await.unwrap();
    assert_eq!(confirmed["status"], "requires_action", "{confirmed}");
    let again = checkout(&app, &shopper, monthly).await;
    assert_eq!(again["basketId"], basket["basketId"]);
    assert_eq!(again["authenticationRequired"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_free_trial_converts_to_paid_and_a_full_refund_revokes_access() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    let trial = checkout(&app, &shopper, &app.server.config.fixtures.trial_package_id).await;
    let (status, body) = confirm(&app, trial["basketId"].as_str().unwrap(), "pm_card_visa").await;
    assert_eq!(status, 200, "{body}");
    let view = account(&app, &shopper).await;
    assert_eq!(view["Subscriptions"][0]["Type"], "trialing");
    assert_eq!(view["Entitlements"], json!(["live", "vod"]));
    assert!(
        transactions(&app, &shopper).await.is_empty(),
        "a trial takes no money"
    );

    app.advance_clock("8d").await;
    let shopper = alice(&app).await;
    let history = transactions(&app, &shopper).await;
    assert_eq!(history.len(), 1, "the first charge after the trial");
    assert_eq!(history[0]["Amount"], 12.99);
    assert_eq!(
        account(&app, &shopper).await["Subscriptions"][0]["Type"],
        "active"
    );

    let charge = app
        .stripe(
            Method::GET,
            &format!(
                "payment_intents/{}",
                history[0]["Reference"].as_str().unwrap()
            ),
            &[],
        )
        .await["latest_charge"]
        .as_str()
        .unwrap()
        .to_owned();
    let refund = app
        .stripe(Method::POST, "refunds", &[("charge", charge.as_str())])
        .await;
    assert_eq!(refund["status"], "succeeded", "{refund}");
    app.post_json("/sim/control/stripe/webhooks/deliver", &json!({}))
        .await;
    let view = account(&app, &shopper).await;
    assert_eq!(view["Subscriptions"][0]["Type"], "refunded");
    assert_eq!(view["Entitlements"], json!([]));
    let history = transactions(&app, &shopper).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["Amount"], -12.99);
    app.stop().await;
}

#[tokio::test]
async fn a_billing_update_recovers_a_past_due_subscription_at_once() {
    let app = TestApp::start().await;
    let shopper = alice(&app).await;
    buy_monthly(&app, &shopper, "pm_card_visa").await;
    fail_next_charge(&app, "expired_card").await;
    through_next_renewal(&app).await;
    let shopper = alice(&app).await;
    assert_eq!(
        account(&app, &shopper).await["Subscriptions"][0]["Type"],
        "past_due"
    );
    let (_, presence) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?{}",
            shopper.auth()
        ))
        .await;
    assert!(presence["CurrentCustomerSession"]["CustomerBillingProfileLastFailedAt"].is_string());

    let response = app
        .http
        .put(app.url(&format!(
            "/cloudpay/billing/stripe/update?{}",
            shopper.auth()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let update: Value = response.json().await.unwrap();
    let secret = update["clientSecret"].as_str().unwrap();
    let setup_intent = secret.split("_secret_").next().unwrap();
    let (status, body) = confirm(&app, setup_intent, "pm_card_mastercard").await;
    assert_eq!(status, 200, "{body}");
    let view = account(&app, &shopper).await;
    assert_eq!(view["Subscriptions"][0]["Type"], "active");
    assert_eq!(
        view["BillingDetails"]["CardDetails"]["Reference"],
        "Mastercard XXXX-XXXX-XXXX-4444"
    );
    assert_eq!(
        transactions(&app, &shopper).await.last().unwrap()["Status"],
        1
    );
    app.stop().await;
}
