//! In-app purchases through CloudPay's Verify API with the App Store and Google Play
//! simulators: the app buys at the store, forwards the receipt, and from then on the store's
//! notifications (sent when the virtual clock moves) drive the subscription — renewals,
//! grace periods, billing retry, auto-renew off, refunds and revocations — while replays,
//! forgeries and receipts of someone else's purchase change nothing.

mod common;

use boxoffice::providers::store::StoreEnvironment;
use chrono::{DateTime, Duration, Utc};
use common::TestApp;
use serde_json::{Value, json};

struct Shopper {
    token: String,
}

impl Shopper {
    fn auth(&self) -> String {
        format!("apijwttoken={}", self.token)
    }
}

/// Signs a seeded user in with a fresh token (moving the clock expires it).
async fn shopper(app: &TestApp, index: usize) -> Shopper {
    let user = &app.server.config.test_users[index];
    Shopper {
        token: app.id_token(&user.email, &user.password).await,
    }
}

async fn verify(app: &TestApp, shopper: &Shopper, request: &Value) -> (u16, Value) {
    app.post_json(&format!("/cloudpay/iap/verify?{}", shopper.auth()), request)
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
    let (status, body) = app
        .get(&format!(
            "/cloudpay/api/v1/account/transactions?order=asc&size=100&{}",
            shopper.auth()
        ))
        .await;
    assert_eq!(status, 200, "transactions: {body}");
    body["transactions"].as_array().cloned().unwrap_or_default()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// The id the app sends in its verify request: Apple's transaction id, Google's purchase
/// token, Roku's transaction id, Amazon's receipt id.
fn purchase_id(request: &Value) -> &str {
    request["receipt"]["purchaseIdentifier"]
        .as_str()
        .expect("purchaseIdentifier")
}

/// Plays the store on the subscription `request` verified:
/// `POST /sim/control/{store}/subscriptions/{id}/{action}`.
async fn control_subscription(
    app: &TestApp,
    store: &str,
    request: &Value,
    action: &str,
    body: Value,
) -> Value {
    let (status, answer) = app
        .post_json(
            &format!(
                "/sim/control/{store}/subscriptions/{}/{action}",
                purchase_id(request)
            ),
            &body,
        )
        .await;
    assert_eq!(status, 200, "{store} {action}: {answer}");
    answer
}

/// The stores' side of a test: buy as the customer, then play the store.
trait Store {
    /// Buys the monthly subscription at the store: the verify request the app sends.
    async fn buy(&self, app: &TestApp) -> Value;
    /// When the subscription bought by `request` renews next, as the store sees it.
    async fn expiry(&self, app: &TestApp, request: &Value) -> DateTime<Utc>;
}

struct Apple;

impl Apple {
    async fn subscription(app: &TestApp, request: &Value) -> Value {
        let (status, body) = app
            .get(&format!(
                "/sim/control/apple/subscriptions/{}",
                purchase_id(request)
            ))
            .await;
        assert_eq!(status, 200, "apple subscription: {body}");
        body
    }
}

impl Store for Apple {
    async fn buy(&self, app: &TestApp) -> Value {
        let (status, purchase) = app
            .post_json(
                "/sim/control/apple/purchases",
                &json!({ "productId": boxoffice::sim::APPLE_MONTHLY_PRODUCT_ID }),
            )
            .await;
        assert_eq!(status, 200, "apple purchase: {purchase}");
        json!({
            "platform": "ios",
            "receipt": {
                "purchaseIdentifier": purchase["transactionId"],
                "payment": { "countryCode": "GB", "currencyCode": "GBP", "amount": "7.99" }
            }
        })
    }

    async fn expiry(&self, app: &TestApp, request: &Value) -> DateTime<Utc> {
        time(&Self::subscription(app, request).await["expiresDate"])
    }
}

struct Google;

impl Store for Google {
    async fn buy(&self, app: &TestApp) -> Value {
        let (status, purchase) = app
            .post_json(
                "/sim/control/google/subscriptions",
                &json!({
                    "productId": boxoffice::sim::GOOGLE_MONTHLY_PRODUCT_ID,
                    "regionCode": "GB"
                }),
            )
            .await;
        assert_eq!(status, 200, "google purchase: {purchase}");
        json!({
            "platform": "android",
            "receipt": {
                "purchaseIdentifier": purchase["purchaseToken"],
                "packageName": purchase["packageName"],
                "productId": purchase["productId"],
                "payment": { "countryCode": "GB", "currencyCode": "GBP", "amount": "7.99" }
            }
        })
    }

    async fn expiry(&self, app: &TestApp, request: &Value) -> DateTime<Utc> {
        let (status, body) = app
            .get(&format!(
                "/sim/control/google/subscriptions/{}",
                purchase_id(request)
            ))
            .await;
        assert_eq!(status, 200, "google subscription: {body}");
        time(&body["subscription"]["lineItems"][0]["expiryTime"])
    }
}

struct Roku;

/// Roku's `/Date(1490000000000+0000)/`.
fn roku_date(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a Roku date: {value}"));
    let millis: i64 = text
        .trim_start_matches("/Date(")
        .split(['+', '-', ')'])
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("a Roku date: {text}"));
    DateTime::from_timestamp_millis(millis).expect("a time")
}

impl Store for Roku {
    async fn buy(&self, app: &TestApp) -> Value {
        let (status, order) = app
            .post_json(
                "/sim/control/roku/purchases",
                &json!({ "productId": boxoffice::sim::ROKU_MONTHLY_PRODUCT_CODE }),
            )
            .await;
        assert_eq!(status, 200, "roku purchase: {order}");
        json!({
            "platform": "roku",
            "receipt": {
                "purchaseIdentifier": order["purchaseId"],
                "payment": { "countryCode": "GB", "currencyCode": "GBP", "amount": "7.99" }
            }
        })
    }

    async fn expiry(&self, app: &TestApp, request: &Value) -> DateTime<Utc> {
        let (status, body) = app
            .get(&format!(
                "/sim/control/roku/subscriptions/{}",
                purchase_id(request)
            ))
            .await;
        assert_eq!(status, 200, "roku subscription: {body}");
        roku_date(&body["validateTransaction"]["expirationDate"])
    }
}

struct Amazon;

impl Store for Amazon {
    async fn buy(&self, app: &TestApp) -> Value {
        let (status, purchase) = app
            .post_json(
                "/sim/control/amazon/purchases",
                &json!({ "sku": boxoffice::sim::AMAZON_MONTHLY_SKU }),
            )
            .await;
        assert_eq!(status, 200, "amazon purchase: {purchase}");
        json!({
            "platform": "amazon",
            "receipt": {
                "purchaseIdentifier": purchase["receipt"]["receiptId"],
                "userId": purchase["userData"]["userId"],
                "payment": { "countryCode": "GB", "currencyCode": "GBP", "amount": "7.99" }
            }
        })
    }

    async fn expiry(&self, app: &TestApp, request: &Value) -> DateTime<Utc> {
        let id = purchase_id(request);
        let (status, body) = app.get(&format!("/sim/control/amazon/receipts/{id}")).await;
        assert_eq!(status, 200, "amazon receipt: {body}");
        time(&body["paidUntil"])
    }
}

/// Buys and verifies as Alice: the verify request, after checking the answer's envelope.
async fn bought_and_verified(app: &TestApp, store: &impl Store) -> Value {
    let request = store.buy(app).await;
    let alice = shopper(app, 0).await;
    let (status, body) = verify(app, &alice, &request).await;
    assert_eq!(status, 200, "verify: {body}");
    assert_eq!(body["statusCode"], 200);
    assert_eq!(body["body"]["isVerified"], true);
    assert_eq!(body["headers"]["Content-Type"], "application/json");
    request
}

/// Moves the clock to a minute after the store's current period ends.
async fn past_expiry(app: &TestApp, store: &impl Store, request: &Value) {
    let expiry = store.expiry(app, request).await;
    app.set_clock(expiry + Duration::minutes(1)).await;
}

async fn entitlements(app: &TestApp) -> Value {
    let alice = shopper(app, 0).await;
    account(app, &alice).await["Entitlements"].clone()
}

async fn subscription_type(app: &TestApp) -> Value {
    let alice = shopper(app, 0).await;
    account(app, &alice).await["Subscriptions"][0]["Type"].clone()
}

async fn paid_transactions(app: &TestApp) -> Vec<Value> {
    let alice = shopper(app, 0).await;
    transactions(app, &alice)
        .await
        .into_iter()
        .filter(|entry| entry["Status"] == 1)
        .collect()
}

async fn purchase_grants_the_package(store: impl Store) {
    let app = TestApp::start().await;
    bought_and_verified(&app, &store).await;
    let alice = shopper(&app, 0).await;
    let view = account(&app, &alice).await;
    assert_eq!(view["Entitlements"], json!(["live", "vod"]), "{view}");
    assert_eq!(view["Subscriptions"][0]["Type"], "active");
    assert_eq!(view["Subscriptions"][0]["IsIAP"], true, "{view}");
    let (status, _) = app.start_session(&alice.token).await;
    assert_eq!(status, 200);
    let (_, presence) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?{}",
            alice.auth()
        ))
        .await;
    let session = &presence["CurrentCustomerSession"];
    assert_eq!(session["CustomerEntitlements"], "live,vod", "{presence}");
    assert_eq!(
        session["CustomerPackages"],
        app.server.config.fixtures.iap_package_id
    );
    let history = transactions(&app, &alice).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["Amount"], 7.99);
    assert_eq!(history[0]["CurrencyCode"], "GBP");
    app.stop().await;
}

#[tokio::test]
async fn apple_purchase_grants_the_package() {
    purchase_grants_the_package(Apple).await;
}

#[tokio::test]
async fn google_purchase_grants_the_package() {
    purchase_grants_the_package(Google).await;
}

#[tokio::test]
async fn roku_purchase_grants_the_package() {
    purchase_grants_the_package(Roku).await;
}

async fn twelve_renewals_are_twelve_payments(store: impl Store) {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &store).await;
    for month in 1..=12 {
        past_expiry(&app, &store, &request).await;
        assert_eq!(
            paid_transactions(&app).await.len(),
            1 + month,
            "after renewal {month}"
        );
    }
    assert_eq!(subscription_type(&app).await, "active");
    assert_eq!(entitlements(&app).await, json!(["live", "vod"]));
    app.stop().await;
}

#[tokio::test]
async fn apple_renewals_through_the_clock_are_recorded_once_each() {
    twelve_renewals_are_twelve_payments(Apple).await;
}

#[tokio::test]
async fn google_renewals_through_the_clock_are_recorded_once_each() {
    twelve_renewals_are_twelve_payments(Google).await;
}

#[tokio::test]
async fn roku_renewals_through_the_clock_are_recorded_once_each() {
    twelve_renewals_are_twelve_payments(Roku).await;
}

#[tokio::test]
async fn a_roku_partial_refund_keeps_access_and_a_revocation_refunds_the_rest() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Roku).await;
    let id = purchase_id(&request).to_owned();
    let (status, body) = app
        .post_json(
            &format!("/sim/control/roku/transactions/{id}/refund"),
            &json!({ "amountMinor": 300 }),
        )
        .await;
    assert_eq!(status, 200, "refund: {body}");
    let alice = shopper(&app, 0).await;
    let refunds = |history: Vec<Value>| -> Vec<Value> {
        history
            .into_iter()
            .filter(|entry| entry["Amount"].as_f64().is_some_and(|amount| amount < 0.0))
            .map(|entry| entry["Amount"].clone())
            .collect()
    };
    assert_eq!(
        refunds(transactions(&app, &alice).await),
        [json!(-3.0)],
        "the amount Roku's push says"
    );
    assert_eq!(subscription_type(&app).await, "active", "Roku goes on");
    assert_eq!(entitlements(&app).await, json!(["live", "vod"]));

    control_subscription(&app, "roku", &request, "revoke", json!({})).await;
    assert_eq!(subscription_type(&app).await, "refunded");
    assert_eq!(entitlements(&app).await, json!([]));
    let mut amounts = refunds(transactions(&app, &alice).await);
    amounts.sort_by(|a, b| a.as_f64().partial_cmp(&b.as_f64()).expect("numbers"));
    assert_eq!(amounts, [json!(-4.99), json!(-3.0)], "the rest, once");
    app.stop().await;
}

#[tokio::test]
async fn forged_roku_pushes_are_refused() {
    let app = TestApp::start().await;
    bought_and_verified(&app, &Roku).await;
    for (content_type, body) in [
        (
            "text/plain",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.e30.c2ln".to_owned(),
        ),
        (
            "application/json",
            json!({ "transactionType": "Sale" }).to_string(),
        ),
        ("text/plain", "not a token".to_owned()),
    ] {
        let response = app
            .http
            .post(app.url("/webhooks/roku"))
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("server reachable");
        assert_eq!(response.status(), 400, "{body}");
    }
    assert_eq!(paid_transactions(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn apple_grace_period_keeps_access_until_the_payment_recovers() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Apple).await;
    control_subscription(
        &app,
        "apple",
        &request,
        "fail_next_renewal",
        json!({ "failure": "gracePeriod" }),
    )
    .await;
    past_expiry(&app, &Apple, &request).await;
    assert_eq!(subscription_type(&app).await, "past_due");
    assert_eq!(
        entitlements(&app).await,
        json!(["live", "vod"]),
        "access is kept through the grace period"
    );
    assert_eq!(paid_transactions(&app).await.len(), 1);
    control_subscription(&app, "apple", &request, "recover", json!({})).await;
    assert_eq!(subscription_type(&app).await, "active");
    assert_eq!(
        paid_transactions(&app).await.len(),
        2,
        "the recovery is paid"
    );
    app.stop().await;
}

#[tokio::test]
async fn google_grace_period_keeps_access_until_the_payment_recovers() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Google).await;
    control_subscription(&app, "google", &request, "decline_payments", json!({})).await;
    past_expiry(&app, &Google, &request).await;
    assert_eq!(subscription_type(&app).await, "past_due");
    assert_eq!(entitlements(&app).await, json!(["live", "vod"]));
    control_subscription(&app, "google", &request, "recover", json!({})).await;
    assert_eq!(subscription_type(&app).await, "active");
    assert_eq!(
        paid_transactions(&app).await.len(),
        2,
        "the recovery is paid"
    );
    app.stop().await;
}

#[tokio::test]
async fn apple_billing_retry_ends_access_and_expires() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Apple).await;
    control_subscription(
        &app,
        "apple",
        &request,
        "fail_next_renewal",
        json!({ "failure": "billingRetry" }),
    )
    .await;
    past_expiry(&app, &Apple, &request).await;
    assert_eq!(subscription_type(&app).await, "past_due");
    assert_eq!(
        entitlements(&app).await,
        json!([]),
        "no access in billing retry"
    );
    control_subscription(&app, "apple", &request, "expire", json!({})).await;
    assert_eq!(subscription_type(&app).await, "expired");
    assert_eq!(entitlements(&app).await, json!([]));
    assert_eq!(paid_transactions(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn google_declined_renewals_end_in_expiry() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Google).await;
    control_subscription(&app, "google", &request, "decline_payments", json!({})).await;
    // Past the grace period (7 days) and the account hold (30 days).
    let expiry = Google.expiry(&app, &request).await;
    app.set_clock(expiry + Duration::days(8)).await;
    assert_eq!(subscription_type(&app).await, "past_due");
    assert_eq!(entitlements(&app).await, json!([]), "no access on hold");
    app.set_clock(expiry + Duration::days(40)).await;
    assert_eq!(subscription_type(&app).await, "expired");
    assert_eq!(entitlements(&app).await, json!([]));
    assert_eq!(paid_transactions(&app).await.len(), 1);
    app.stop().await;
}

async fn auto_renew_off_keeps_access_until_expiry(store: impl Store, turn_off: Value) {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &store).await;
    let (action, body) = (
        turn_off["action"].as_str().expect("action").to_owned(),
        turn_off["body"].clone(),
    );
    let section = if request["platform"] == "ios" {
        "apple"
    } else {
        "google"
    };
    control_subscription(&app, section, &request, &action, body).await;
    let alice = shopper(&app, 0).await;
    let view = account(&app, &alice).await;
    assert_eq!(view["Entitlements"], json!(["live", "vod"]), "{view}");
    assert!(
        view["Subscriptions"][0]["RenewalDate"].is_null(),
        "no renewal once auto-renew is off: {view}"
    );
    past_expiry(&app, &store, &request).await;
    assert_eq!(subscription_type(&app).await, "expired");
    assert_eq!(entitlements(&app).await, json!([]));
    assert_eq!(paid_transactions(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn apple_auto_renew_off_keeps_access_until_expiry() {
    auto_renew_off_keeps_access_until_expiry(
        Apple,
        json!({ "action": "auto_renew", "body": { "enabled": false } }),
    )
    .await;
}

#[tokio::test]
async fn google_cancellation_keeps_access_until_expiry() {
    auto_renew_off_keeps_access_until_expiry(Google, json!({ "action": "cancel", "body": {} }))
        .await;
}

#[tokio::test]
async fn apple_refund_ends_access_now_and_records_the_refund() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Apple).await;
    let (status, body) = app
        .post_json(
            &format!(
                "/sim/control/apple/transactions/{}/refund",
                purchase_id(&request)
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "refund: {body}");
    assert_eq!(subscription_type(&app).await, "refunded");
    assert_eq!(entitlements(&app).await, json!([]));
    let alice = shopper(&app, 0).await;
    let history = transactions(&app, &alice).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(
        history.iter().any(|entry| entry["Amount"] == -7.99),
        "a refund of 7.99: {history:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn google_revocation_ends_access_now_and_records_the_refund() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Google).await;
    control_subscription(&app, "google", &request, "revoke", json!({})).await;
    assert_eq!(subscription_type(&app).await, "refunded");
    assert_eq!(entitlements(&app).await, json!([]));
    let alice = shopper(&app, 0).await;
    let history = transactions(&app, &alice).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(
        history.iter().any(|entry| entry["Amount"] == -7.99),
        "a refund of 7.99: {history:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_apple_notification_grants_nothing_twice() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Apple).await;
    past_expiry(&app, &Apple, &request).await;
    assert_eq!(paid_transactions(&app).await.len(), 2);
    let (status, sent) = app
        .get("/sim/control/apple/notifications?notificationType=DID_RENEW")
        .await;
    assert_eq!(status, 200, "{sent}");
    let renewal = sent["notifications"]
        .as_array()
        .and_then(|list| list.last())
        .unwrap_or_else(|| panic!("a DID_RENEW notification: {sent}"))
        .clone();
    let (status, answer) = app
        .post_json(
            "/webhooks/apple",
            &json!({ "signedPayload": renewal["signedPayload"] }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "replayed");
    assert_eq!(paid_transactions(&app).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn forged_apple_notifications_are_refused() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Apple).await;
    past_expiry(&app, &Apple, &request).await;
    let (_, sent) = app.get("/sim/control/apple/notifications").await;
    let signed = sent["notifications"][0]["signedPayload"]
        .as_str()
        .expect("a signed payload")
        .to_owned();
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    // Another payload under the same signature.
    parts[1] = parts[1].chars().rev().collect();
    for forged in [parts.join("."), signed[..signed.len() / 2].to_owned()] {
        let (status, answer) = app
            .post_json("/webhooks/apple", &json!({ "signedPayload": forged }))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(paid_transactions(&app).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn forged_google_pushes_are_refused() {
    let app = TestApp::start().await;
    bought_and_verified(&app, &Google).await;
    let message = json!({
        "message": {
            "data": "eyJ2ZXJzaW9uIjoiMS4wIn0=",
            "messageId": "1",
            "publishTime": "2026-01-01T00:00:00Z"
        },
        "subscription": "projects/boxoffice-sim/subscriptions/boxoffice-rtdn-push"
    });
    for authorization in [None, Some("Bearer not-a-token")] {
        let mut call = app.http.post(app.url("/webhooks/google")).json(&message);
        if let Some(value) = authorization {
            call = call.header("Authorization", value);
        }
        let response = call.send().await.expect("server reachable");
        assert_eq!(response.status(), 400, "{authorization:?}");
    }
    app.stop().await;
}

async fn a_second_customer_cannot_take_the_purchase(store: impl Store) {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &store).await;
    let bob = shopper(&app, 1).await;
    let (status, body) = verify(&app, &bob, &request).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["statusCode"], 403);
    assert!(body["body"]["errorMessage"].is_string(), "{body}");
    assert_eq!(account(&app, &bob).await["Entitlements"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn an_apple_receipt_verified_by_a_second_customer_is_refused() {
    a_second_customer_cannot_take_the_purchase(Apple).await;
}

#[tokio::test]
async fn a_google_purchase_verified_by_a_second_customer_is_refused() {
    a_second_customer_cannot_take_the_purchase(Google).await;
}

#[tokio::test]
async fn a_roku_purchase_verified_by_a_second_customer_is_refused() {
    a_second_customer_cannot_take_the_purchase(Roku).await;
}

#[tokio::test]
async fn a_sandbox_purchase_is_refused_by_a_production_configuration() {
    let app = TestApp::start_with(|options| {
        options.store_environments = vec![StoreEnvironment::Production]
    })
    .await;
    let alice = shopper(&app, 0).await;
    let apple = Apple.buy(&app).await;
    let (status, body) = verify(&app, &alice, &apple).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["body"]["sourceErrorCode"].is_i64(), "{body}");
    let (status, purchase) = app
        .post_json(
            "/sim/control/google/subscriptions",
            &json!({
                "productId": boxoffice::sim::GOOGLE_MONTHLY_PRODUCT_ID,
                "testPurchase": true
            }),
        )
        .await;
    assert_eq!(status, 200, "{purchase}");
    let (status, body) = verify(
        &app,
        &alice,
        &json!({
            "platform": "android",
            "receipt": { "purchaseIdentifier": purchase["purchaseToken"] }
        }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(account(&app, &alice).await["Entitlements"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn bad_receipts_are_refused_in_the_envelope_and_change_nothing() {
    let app = TestApp::start().await;
    let alice = shopper(&app, 0).await;
    let requests = [
        json!({ "platform": "ios", "receipt": { "purchaseIdentifier": "2000000000000000" } }),
        json!({ "platform": "ios", "receipt": { "raw": "bm90IGEgcmVjZWlwdA==" } }),
        json!({ "platform": "ios", "receipt": { "raw": "%%% not base64 %%%" } }),
        json!({ "platform": "ios", "receipt": {} }),
        json!({ "platform": "android", "receipt": { "purchaseIdentifier": "garbage" } }),
        json!({ "platform": "android", "receipt": {
            "purchaseIdentifier": "token", "packageName": "com.someone.else" } }),
        json!({ "platform": "ios", "receipt": {
            "purchaseIdentifier": "1", "payment": { "countryCode": "GB",
            "currencyCode": "GBP", "amount": "seven" } } }),
    ];
    for request in &requests {
        let (status, body) = verify(&app, &alice, request).await;
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(body["statusCode"], 400, "{body}");
        assert!(body["body"]["errorMessage"].is_string(), "{body}");
    }
    for request in [
        json!({ "platform": "windows", "receipt": {} }),
        json!({ "platform": "ios" }),
        json!("not an object"),
    ] {
        let (status, body) = verify(&app, &alice, &request).await;
        assert_eq!(status, 400, "{request}: {body}");
    }
    assert_eq!(account(&app, &alice).await["Entitlements"], json!([]));
    assert!(transactions(&app, &alice).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn bad_notifications_get_4xx_and_change_nothing() {
    let app = TestApp::start().await;
    bought_and_verified(&app, &Apple).await;
    let cases = [
        json!({ "signedPayload": "eyJhbGciOiJFUzI1NiJ9.e30" }),
        json!({ "signedPayload": "not a jws" }),
        json!({ "somethingElse": true }),
    ];
    for body in &cases {
        let (status, answer) = app.post_json("/webhooks/apple", body).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let oversize = format!("{{\"signedPayload\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let response = app
        .http
        .post(app.url("/webhooks/apple"))
        .header("Content-Type", "application/json")
        .body(oversize)
        .send()
        .await
        .expect("server reachable");
    assert_eq!(response.status(), 413);
    assert_eq!(paid_transactions(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_notification_about_a_purchase_nobody_verified_is_not_found() {
    let app = TestApp::start().await;
    Apple.buy(&app).await;
    let (_, sent) = app
        .get("/sim/control/apple/notifications?notificationType=SUBSCRIBED")
        .await;
    let subscribed = &sent["notifications"][0];
    let (status, answer) = app
        .post_json(
            "/webhooks/apple",
            &json!({ "signedPayload": subscribed["signedPayload"] }),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let alice = shopper(&app, 0).await;
    assert_eq!(account(&app, &alice).await["Subscriptions"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn without_the_apps_payment_the_stores_price_is_recorded() {
    let app = TestApp::start().await;
    let alice = shopper(&app, 0).await;
    for mut request in [Apple.buy(&app).await, Google.buy(&app).await] {
        request["receipt"]
            .as_object_mut()
            .expect("a receipt")
            .remove("payment");
        let (status, body) = verify(&app, &alice, &request).await;
        assert_eq!(status, 200, "{body}");
    }
    let history = transactions(&app, &alice).await;
    assert_eq!(history.len(), 2, "{history:?}");
    for entry in &history {
        assert_eq!(entry["Amount"], 7.99, "the store's price: {entry}");
        assert_eq!(entry["CurrencyCode"], "GBP");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_notification_signed_under_another_root_is_refused() {
    let app = TestApp::start().await;
    bought_and_verified(&app, &Apple).await;
    // Another simulator mints another root: its App Store is not the one this server trusts.
    let elsewhere = TestApp::start().await;
    Apple.buy(&elsewhere).await;
    let (_, sent) = elsewhere.get("/sim/control/apple/notifications").await;
    let foreign = sent["notifications"][0]["signedPayload"].clone();
    assert!(foreign.is_string(), "{sent}");
    let (status, answer) = app
        .post_json("/webhooks/apple", &json!({ "signedPayload": foreign }))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(paid_transactions(&app).await.len(), 1);
    elsewhere.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn concurrent_verifications_of_one_receipt_bind_it_to_one_customer() {
    let app = TestApp::start().await;
    let request = Apple.buy(&app).await;
    let (alice, bob) = (shopper(&app, 0).await, shopper(&app, 1).await);
    let attempts = (0..8).map(|index| {
        let who = if index % 2 == 0 { &alice } else { &bob };
        verify(&app, who, &request)
    });
    let answers = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    let alice_won = statuses[0] == 200;
    for (index, status) in statuses.iter().enumerate() {
        let is_winner = (index % 2 == 0) == alice_won;
        assert_eq!(*status, if is_winner { 200 } else { 403 }, "{statuses:?}");
    }
    let (winner, loser) = if alice_won {
        (&alice, &bob)
    } else {
        (&bob, &alice)
    };
    assert_eq!(
        account(&app, winner).await["Subscriptions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(account(&app, loser).await["Subscriptions"], json!([]));
    assert_eq!(transactions(&app, winner).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_google_refund_without_revocation_records_the_refund_and_keeps_access() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Google).await;
    control_subscription(&app, "google", &request, "refund", json!({})).await;
    assert_eq!(subscription_type(&app).await, "active");
    assert_eq!(entitlements(&app).await, json!(["live", "vod"]));
    let alice = shopper(&app, 0).await;
    let history = transactions(&app, &alice).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(
        history.iter().any(|entry| entry["Amount"] == -7.99),
        "a refund of 7.99: {history:?}"
    );
    past_expiry(&app, &Google, &request).await;
    assert_eq!(
        paid_transactions(&app).await.len(),
        3,
        "it renews as before"
    );
    app.stop().await;
}

#[tokio::test]
async fn amazon_purchase_grants_the_package() {
    purchase_grants_the_package(Amazon).await;
}

#[tokio::test]
async fn amazon_renewals_through_the_clock_are_recorded_once_each() {
    twelve_renewals_are_twelve_payments(Amazon).await;
}

#[tokio::test]
async fn an_amazon_receipt_verified_by_a_second_customer_is_refused() {
    a_second_customer_cannot_take_the_purchase(Amazon).await;
}

#[tokio::test]
async fn an_amazon_refund_ends_access() {
    let app = TestApp::start().await;
    let request = bought_and_verified(&app, &Amazon).await;
    let id = purchase_id(&request).to_owned();
    let (status, body) = app
        .post_json(
            &format!("/sim/control/amazon/receipts/{id}/refund"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "refund: {body}");
    assert_eq!(subscription_type(&app).await, "refunded");
    assert_eq!(entitlements(&app).await, json!([]));
    let alice = shopper(&app, 0).await;
    let history = transactions(&app, &alice).await;
    assert!(
        history.iter().any(|entry| entry["Amount"] == -7.99),
        "a refund of 7.99: {history:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn forged_amazon_notifications_are_refused() {
    let app = TestApp::start().await;
    bought_and_verified(&app, &Amazon).await;
    let forged = json!({
        "Type": "Notification",
        "MessageId": "7f0e4c4e-0000-0000-0000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:033616359524:LT0XA",
        "Message": "{}",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertURL": "https://attacker.example.com/cert.pem"
    });
    for body in [forged.to_string(), "not json".to_owned()] {
        let response = app
            .http
            .post(app.url("/webhooks/amazon"))
            .header("Content-Type", "text/plain; charset=UTF-8")
            .header("x-amz-sns-message-type", "Notification")
            .body(body.clone())
            .send()
            .await
            .expect("server reachable");
        assert_eq!(response.status(), 400, "{body}");
    }
    assert_eq!(paid_transactions(&app).await.len(), 1);
    app.stop().await;
}
