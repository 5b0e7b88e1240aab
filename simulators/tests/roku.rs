//! The Roku Pay simulator over real HTTP, the way a publisher's backend sees it: Roku's web
//! services with their paths, JSON and failures, subscriptions that renew, fail and recover
//! on a clock the test moves, and push notifications signed as Roku signs them (verified
//! here against the published keys) or sent unsecured. The control surface plays the
//! customer on the device and Roku.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use boxoffice_simulators::clock::Now;
use boxoffice_simulators::roku::{
    ROKU_GRACE_PERIOD_DAYS, ROKU_ON_HOLD_DAYS, RokuBillingPeriod, RokuChannel, RokuConfig,
    RokuProduct, RokuSimulator, openapi_json,
};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "F05447A57F8DF275FC30EC835FCAD10A19B6";
const OLD_KEY: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F90A1B";
const MONTHLY: &str = "premium_monthly";
const TRIAL: &str = "premium_monthly_trial";
const CHANNEL: u64 = 251_682;
const START: &str = "2030-01-15T09:00:00Z";
const SERVICE: &str = "/listen/transaction-service.svc";

fn product(code: &str, trial: u32) -> RokuProduct {
    RokuProduct {
        code: code.into(),
        name: format!("{code} name"),
        billing_period: RokuBillingPeriod::Monthly,
        price_minor: 999,
        currency: "USD".into(),
        free_trial_days: trial,
        grace_period_days: ROKU_GRACE_PERIOD_DAYS,
        on_hold_days: ROKU_ON_HOLD_DAYS,
    }
}

fn config(public_base_url: String) -> RokuConfig {
    RokuConfig {
        public_base_url,
        partner_api_keys: vec![KEY.into(), OLD_KEY.into()],
        channels: vec![RokuChannel {
            channel_id: CHANNEL,
            name: "Boxoffice".into(),
            products: vec![product(MONTHLY, 0), product(TRIAL, 7)],
        }],
        push: None,
    }
}

/// A simulator alone at the root of a random loopback port, its control surface at
/// `/sim/control/roku`, on a clock the test moves.
struct Harness {
    http: reqwest::Client,
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: RokuSimulator,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    /// A Roku success: HTTP 200, `status` 0.
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.body["status"], 0, "{}", self.body);
        assert_eq!(self.body["errorMessage"], "", "{}", self.body);
        &self.body
    }

    /// A Roku refusal: this HTTP status, `status` 1, this message, `errorCode` null.
    #[track_caller]
    fn refused(&self, http_status: u16, message: &str) {
        assert_eq!(self.status, http_status, "{}", self.body);
        assert_eq!(self.body["status"], 1, "{}", self.body);
        assert_eq!(self.body["errorCode"], Value::Null, "{}", self.body);
        assert_eq!(self.body["errorDetails"], Value::Null, "{}", self.body);
        let text = self.body["errorMessage"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{text:?} lacks {message:?}");
    }

    /// A control surface success.
    #[track_caller]
    fn control_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "{}", self.body);
        &self.body
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// A WCF date's instant.
fn wcf(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().expect("a date");
    let inner = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix("+0000)/"))
        .unwrap_or_else(|| panic!("not a WCF date: {text}"));
    DateTime::from_timestamp_millis(inner.parse().expect("milliseconds")).expect("in range")
}

async fn start() -> Harness {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    let base = format!("http://{address}");
    let clock = Arc::new(Mutex::new(time(START)));
    let read = clock.clone();
    let now: Now = Arc::new(move || *read.lock().expect("clock"));
    let simulator = RokuSimulator::new(config(base.clone()), now).expect("simulator");
    let control = OpenApiService::new(simulator.control_api(), "control", "1");
    let app = Route::new()
        .nest("/sim", control)
        .nest("/", simulator.endpoint());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    Harness {
        http: reqwest::Client::new(),
        base,
        clock,
        simulator,
    }
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    /// Moves the clock and settles, as the host does after a move: the keys of the messages
    /// pushed.
    async fn advance(&self, by: TimeDelta) -> Vec<String> {
        let now = self.now();
        *self.clock.lock().expect("clock") = now + by;
        let report = self.simulator.settle_due().await;
        report
            .attempts
            .into_iter()
            .map(|attempt| attempt.message_key)
            .collect()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"))
        };
        Reply { status, body }
    }

    async fn validate(&self, transaction_id: &str) -> Reply {
        self.validate_with(KEY, transaction_id).await
    }

    async fn validate_with(&self, key: &str, transaction_id: &str) -> Reply {
        self.send(
            self.http
                .get(format!(
                    "{}{SERVICE}/validate-transaction/{key}/{transaction_id}",
                    self.base
                ))
                .header("accept", "application/json"),
        )
        .await
    }

    async fn post(&self, operation: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}{SERVICE}/{operation}", self.base))
                .header("accept", "application/json")
                .json(&body),
        )
        .await
    }

    async fn control(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/roku{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn control_get(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}/sim/control/roku{path}", self.base)),
        )
        .await
    }

    /// Buys the monthly product: the order.
    async fn buy(&self, body: Value) -> Value {
        self.control("/purchases", body).await.control_ok().clone()
    }

    async fn subscribed(&self) -> String {
        let order = self.buy(json!({"productId": MONTHLY})).await;
        order["purchaseId"].as_str().expect("purchaseId").to_owned()
    }

    async fn push_to(&self, server: &MockServer, signed: bool) {
        let reply = self
            .send(
                self.http
                    .put(format!("{}/sim/control/roku/push", self.base))
                    .json(&json!({"url": format!("{}/roku", server.uri()), "signed": signed})),
            )
            .await;
        assert_eq!(reply.control_ok()["signed"], signed);
    }
}

// ------------------------------------------------------------------ the web services

#[tokio::test]
async fn a_purchase_validates_as_roku_answers_it() {
    let h = start().await;
    let order = h
        .buy(json!({"productId": MONTHLY, "customerId": "1f529e15cb15426be4ddb23a4933be2d"}))
        .await;
    let purchase_id = order["purchaseId"].as_str().unwrap().to_owned();
    assert_eq!(purchase_id.len(), 32);
    assert!(purchase_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(order["code"], MONTHLY);
    assert_eq!(order["qty"], 1);
    assert_eq!(order["amount"], "9.99");
    assert_eq!(order["total"], "9.99");
    assert_eq!(order["originalTransactionId"], purchase_id.as_str());

    let reply = h.validate(&purchase_id).await;
    let answer = reply.ok();
    assert_eq!(answer["errorCode"], Value::Null);
    assert_eq!(answer["errorDetails"], Value::Null);
    assert_eq!(answer["OriginalTransactionId"], purchase_id.as_str());
    assert_eq!(answer["transactionId"], purchase_id.as_str());
    assert_eq!(answer["amount"], 9.99);
    assert_eq!(answer["total"], 9.99);
    assert_eq!(answer["tax"], 0.0);
    assert_eq!(answer["currency"], "usd");
    assert_eq!(answer["cancelled"], false);
    assert_eq!(answer["isEntitled"], true);
    assert_eq!(answer["purchaseStatus"], "Active");
    assert_eq!(answer["channelId"], CHANNEL);
    assert_eq!(answer["channelName"], "Boxoffice");
    assert_eq!(answer["productId"], MONTHLY);
    assert_eq!(answer["quantity"], 1);
    assert_eq!(answer["purchaseChannel"], "device");
    assert_eq!(answer["purchaseContext"], "iap");
    assert_eq!(answer["rokuCustomerId"], "1f529e15cb15426be4ddb23a4933be2d");
    assert_eq!(answer["couponCode"], Value::Null);
    assert_eq!(answer["partnerReferenceId"], Value::Null);
    assert_eq!(wcf(&answer["purchaseDate"]), time(START));
    assert_eq!(wcf(&answer["originalPurchaseDate"]), time(START));
    assert_eq!(wcf(&answer["expirationDate"]), time("2030-02-15T09:00:00Z"));
    // The old key still works while it is being rotated out.
    h.validate_with(OLD_KEY, &purchase_id).await.ok();

    // The same customer cannot buy the same subscription twice.
    let again = h
        .control(
            "/purchases",
            json!({"productId": MONTHLY, "customerId": "1f529e15cb15426be4ddb23a4933be2d"}),
        )
        .await;
    again.refused(400, "already has an active subscription");
}

#[tokio::test]
async fn a_free_trial_costs_nothing_and_its_first_charge_is_a_renewal() {
    let h = start().await;
    let order = h.buy(json!({"productId": TRIAL})).await;
    assert_eq!(order["isFreeTrial"], true);
    assert_eq!(order["total"], "0.00");
    let id = order["purchaseId"].as_str().unwrap().to_owned();
    let answer = h.validate(&id).await.ok().clone();
    assert_eq!(answer["amount"], 0.0);
    assert_eq!(wcf(&answer["expirationDate"]), time("2030-01-22T09:00:00Z"));
    h.advance(TimeDelta::days(8)).await;
    let renewed = h.validate(&id).await.ok().clone();
    assert_ne!(renewed["transactionId"], id.as_str());
    assert_eq!(renewed["amount"], 9.99);
    assert_eq!(
        wcf(&renewed["expirationDate"]),
        time("2030-02-22T09:00:00Z")
    );

    let tester = h.buy(json!({"productId": MONTHLY, "testUser": true})).await;
    assert_eq!(tester["amount"], "9.99");
    assert_eq!(tester["total"], "0.00");
}

#[tokio::test]
async fn renewals_on_the_clock_make_new_transactions() {
    let h = start().await;
    let original = h.subscribed().await;
    h.advance(TimeDelta::days(31)).await;
    let first_renewal = h.validate(&original).await.ok().clone();
    let renewal_id = first_renewal["transactionId"].as_str().unwrap().to_owned();
    assert_ne!(renewal_id, original);
    assert_eq!(first_renewal["OriginalTransactionId"], original.as_str());
    assert_eq!(
        wcf(&first_renewal["purchaseDate"]),
        time("2030-02-15T09:00:00Z")
    );
    assert_eq!(
        wcf(&first_renewal["expirationDate"]),
        time("2030-03-15T09:00:00Z")
    );
    // The renewal validates to the same subscription.
    let by_renewal = h.validate(&renewal_id).await.ok().clone();
    assert_eq!(by_renewal, first_renewal);
    h.advance(TimeDelta::days(60)).await;
    let view = h.control_get(&format!("/subscriptions/{renewal_id}")).await;
    assert_eq!(view.control_ok()["payments"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_failed_renewal_keeps_access_in_grace_blocks_it_on_hold_and_recovers() {
    let h = start().await;
    let original = h.subscribed().await;
    h.control(
        &format!("/subscriptions/{original}/fail_next_renewal"),
        json!({}),
    )
    .await
    .control_ok();
    h.advance(TimeDelta::days(32)).await;
    let grace = h.validate(&original).await.ok().clone();
    assert_eq!(grace["isEntitled"], true);
    assert_eq!(grace["cancelled"], false);
    assert_eq!(wcf(&grace["expirationDate"]), time("2030-02-15T09:00:00Z"));
    assert_eq!(grace["transactionId"], original.as_str());

    h.advance(TimeDelta::days(3)).await;
    let hold = h.validate(&original).await.ok().clone();
    assert_eq!(hold["isEntitled"], false);
    assert_eq!(hold["cancelled"], false);
    assert_eq!(hold["purchaseStatus"], "Inactive");

    let recovered = h
        .control(&format!("/subscriptions/{original}/recover"), json!({}))
        .await;
    let recovered = recovered.control_ok();
    assert_eq!(recovered["phase"], "active");
    let answer = h.validate(&original).await.ok().clone();
    assert_eq!(answer["isEntitled"], true);
    assert_ne!(answer["transactionId"], original.as_str());
    // Recovered from hold: billed from the day of payment.
    assert_eq!(h.now(), time("2030-02-19T09:00:00Z"));
    assert_eq!(wcf(&answer["expirationDate"]), time("2030-03-19T09:00:00Z"));

    // Failing again and letting recovery run out: a passive cancellation.
    h.control(
        &format!("/subscriptions/{original}/fail_next_renewal"),
        json!({"failure": "onHold"}),
    )
    .await
    .control_ok();
    h.advance(TimeDelta::days(29)).await;
    assert_eq!(h.validate(&original).await.ok()["isEntitled"], false);
    h.control(&format!("/subscriptions/{original}/expire"), json!({}))
        .await
        .control_ok();
    let ended = h.validate(&original).await.ok().clone();
    assert_eq!(ended["cancelled"], true);
    assert_eq!(ended["isEntitled"], false);
    assert!(wcf(&ended["expirationDate"]) < h.now());
    h.control(&format!("/subscriptions/{original}/recover"), json!({}))
        .await
        .refused(400, "has ended");
}

#[tokio::test]
async fn cancelling_turns_auto_renew_off_and_access_ends_with_the_period() {
    let h = start().await;
    let original = h.subscribed().await;
    let cancelled = h
        .post(
            "cancel-subscription",
            json!({
                "cancellationDate": "2030-01-20T18:44:01.034020",
                "dontNotifyUser": false,
                "partnerAPIKey": KEY,
                "partnerReferenceId": "7s9d8w0n6z",
                "transactionId": original,
            }),
        )
        .await;
    assert_eq!(
        cancelled.ok(),
        &json!({"errorCode": null, "errorDetails": null, "errorMessage": "", "status": 0})
    );
    let answer = h.validate(&original).await.ok().clone();
    assert_eq!(answer["cancelled"], true);
    assert_eq!(answer["isEntitled"], true);
    assert_eq!(answer["partnerReferenceId"], "7s9d8w0n6z");
    // Cancelling again changes nothing and succeeds.
    h.post(
        "cancel-subscription",
        json!({"partnerAPIKey": KEY, "transactionId": original}),
    )
    .await
    .ok();
    h.advance(TimeDelta::days(31)).await;
    let ended = h.validate(&original).await.ok().clone();
    assert_eq!(ended["isEntitled"], false);
    assert_eq!(ended["transactionId"], original.as_str());
    assert_eq!(wcf(&ended["expirationDate"]), time("2030-02-15T09:00:00Z"));

    // The customer cancels in their account, then keeps it.
    let other = h.subscribed().await;
    let off = h
        .control(
            &format!("/subscriptions/{other}/auto_renew"),
            json!({"autoRenew": false}),
        )
        .await;
    assert_eq!(off.control_ok()["autoRenew"], false);
    let on = h
        .control(
            &format!("/subscriptions/{other}/auto_renew"),
            json!({"autoRenew": true}),
        )
        .await;
    assert_eq!(on.control_ok()["validateTransaction"]["cancelled"], false);
    let deactivated = h
        .control(&format!("/subscriptions/{other}/cancel"), json!({}))
        .await;
    let view = deactivated.control_ok()["validateTransaction"].clone();
    assert_eq!(view["isEntitled"], false);
    assert_eq!(wcf(&view["expirationDate"]), h.now());
}

#[tokio::test]
async fn refunds_are_issued_validated_and_bounded() {
    let h = start().await;
    let original = h.subscribed().await;
    let refund = h
        .post(
            "refund-subscription",
            json!({
                "amount": 4.99,
                "comments": "Customer was not impressed",
                "partnerAPIKey": KEY,
                "partnerReferenceId": "4l2v9t0015",
                "transactionId": original,
            }),
        )
        .await;
    let refund_id = refund.ok()["RefundId"].as_str().unwrap().to_owned();
    let validated = h
        .send(h.http.get(format!(
            "{}{SERVICE}/validate-refund/{KEY}/{refund_id}",
            h.base
        )))
        .await;
    let validated = validated.ok();
    assert_eq!(validated["transactionId"], refund_id.as_str());
    assert_eq!(validated["amount"], -4.99);
    assert_eq!(validated["total"], -4.99);
    assert_eq!(validated["OriginalTransactionId"], Value::Null);
    assert_eq!(validated["expirationDate"], Value::Null);
    assert_eq!(validated["isEntitled"], false);
    assert_eq!(validated["partnerReferenceId"], "4l2v9t0015");
    assert_eq!(wcf(&validated["originalPurchaseDate"]), time(START));

    // A string amount, as some clients send it; more than is left is refused.
    let too_much = h
        .post(
            "refund-subscription",
            json!({"amount": "5.01", "partnerAPIKey": KEY, "transactionId": original}),
        )
        .await;
    too_much.refused(200, "refund amount");
    assert_eq!(too_much.body["RefundId"], Value::Null);
    h.post(
        "refund-subscription",
        json!({"amount": 0, "partnerAPIKey": KEY, "transactionId": original}),
    )
    .await
    .refused(200, "refund amount");
    h.post(
        "refund-subscription",
        json!({"amount": "5.00", "partnerAPIKey": KEY, "transactionId": original}),
    )
    .await
    .ok();
    // The subscription goes on; a revocation ends it.
    assert_eq!(h.validate(&original).await.ok()["isEntitled"], true);
    let revoked = h
        .control(&format!("/subscriptions/{original}/revoke"), json!({}))
        .await;
    assert_eq!(revoked.control_ok()["phase"], "ended");
    h.control(&format!("/subscriptions/{original}/revoke"), json!({}))
        .await
        .refused(400, "ended");
    let renewed_elsewhere = h.subscribed().await;
    let partial = h
        .control(
            &format!("/transactions/{renewed_elsewhere}/refund"),
            json!({"amountMinor": 100}),
        )
        .await;
    assert_eq!(partial.control_ok()["amountMinor"], 100);
}

#[tokio::test]
async fn the_billing_cycle_can_be_moved_within_the_next_period() {
    let h = start().await;
    let original = h.subscribed().await;
    h.post(
        "update-bill-cycle",
        json!({"partnerAPIKey": KEY, "newBillCycleDate": "2030-02-22T09:00:00", "transactionId": original}),
    )
    .await
    .ok();
    let answer = h.validate(&original).await.ok().clone();
    assert_eq!(wcf(&answer["expirationDate"]), time("2030-02-22T09:00:00Z"));
    h.post(
        "update-bill-cycle",
        json!({"partnerAPIKey": KEY, "newBillCycleDate": "2030-05-01T00:00:00", "transactionId": original}),
    )
    .await
    .refused(200, "newBillCycleDate");
    h.post(
        "update-bill-cycle",
        json!({"partnerAPIKey": KEY, "newBillCycleDate": "soon", "transactionId": original}),
    )
    .await
    .refused(400, "newBillCycleDate");
}

#[tokio::test]
async fn unknown_ids_and_wrong_keys_get_rokus_failures() {
    let h = start().await;
    let original = h.subscribed().await;
    let unknown = h.validate("0123456789abcdef0123456789abcdef").await;
    unknown.refused(200, "Invalid transaction id");
    assert_eq!(unknown.body["transactionId"], Value::Null);
    assert_eq!(unknown.body["isEntitled"], Value::Null);

    h.validate_with("NOT-THE-KEY", &original)
        .await
        .refused(200, "UNAUTHORIZED");
    h.send(h.http.get(format!(
        "{}{SERVICE}/validate-refund/{KEY}/0123456789abcdef0123456789abcdef",
        h.base
    )))
    .await
    .refused(200, "Invalid refund id");
    for operation in [
        "cancel-subscription",
        "refund-subscription",
        "update-bill-cycle",
    ] {
        h.post(
            operation,
            json!({"partnerAPIKey": "NOT-THE-KEY", "transactionId": original, "amount": 1, "newBillCycleDate": "2030-02-20T00:00:00"}),
        )
        .await
        .refused(200, "UNAUTHORIZED");
        h.post(
            operation,
            json!({"transactionId": original, "amount": 1, "newBillCycleDate": "2030-02-20T00:00:00"}),
        )
        .await
        .refused(200, "UNAUTHORIZED");
    }
    h.post(
        "cancel-subscription",
        json!({"partnerAPIKey": KEY, "transactionId": "0123456789abcdef0123456789abcdef"}),
    )
    .await
    .refused(200, "Invalid transaction id");
    // The key is checked before anything is revealed about the transaction.
    h.validate_with("NOT-THE-KEY", "0123456789abcdef0123456789abcdef")
        .await
        .refused(200, "UNAUTHORIZED");
}

#[tokio::test]
async fn malformed_requests_get_4xx_in_rokus_shape_never_a_5xx() {
    let h = start().await;
    let original = h.subscribed().await;
    let long = "a".repeat(1025);
    h.validate(&long).await.refused(400, "Invalid URI format.");
    h.validate("caf%C3%A9")
        .await
        .refused(400, "Invalid URI format.");
    for operation in [
        "cancel-subscription",
        "refund-subscription",
        "update-bill-cycle",
    ] {
        let url = format!("{}{SERVICE}/{operation}", h.base);
        for body in [
            "",
            "not json",
            "[1,2]",
            "{\"transactionId\": 5}",
            "<cancel/>",
        ] {
            let reply = h
                .send(
                    h.http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body),
                )
                .await;
            reply.refused(400, "");
        }
        h.post(operation, json!({"partnerAPIKey": KEY}))
            .await
            .refused(400, "transactionId is required");
    }
    h.post(
        "refund-subscription",
        json!({"partnerAPIKey": KEY, "transactionId": original, "amount": "lots"}),
    )
    .await
    .refused(400, "amount");
    h.post(
        "cancel-subscription",
        json!({"partnerAPIKey": KEY, "transactionId": original, "dontNotifyUser": "no"}),
    )
    .await
    .refused(400, "dontNotifyUser");
    let missing = h
        .send(
            h.http
                .get(format!("{}{SERVICE}/validate-everything", h.base)),
        )
        .await;
    missing.refused(404, "Endpoint not found.");
    let wrong_method = h
        .send(
            h.http
                .get(format!("{}{SERVICE}/cancel-subscription", h.base)),
        )
        .await;
    assert!(
        (400..500).contains(&wrong_method.status),
        "{wrong_method:?}"
    );
    assert_eq!(wrong_method.body["status"], 1);
    // The control surface refuses in Roku's shape too.
    h.control("/purchases", json!({"productId": "nope"}))
        .await
        .refused(400, "No channel sells");
    h.control("/purchases", json!({"productId": MONTHLY, "channelId": 7}))
        .await
        .refused(400, "No channel has the id 7");
    h.control_get("/subscriptions/unknown")
        .await
        .refused(404, "Invalid transaction id");
    h.control(
        &format!("/subscriptions/{original}/fail_next_renewal"),
        json!({"failure": "sometimes"}),
    )
    .await
    .refused(400, "RokuRenewalFailure");
    h.control_get("/notifications?state=lost")
        .await
        .refused(400, "RokuPushState");
}

// ------------------------------------------------------------------ notifications

/// Answers 503 to the first push, then acknowledges unsecured pushes by echoing their
/// `responseKey` and secured ones with a bare 200.
struct Receiver {
    calls: Arc<Mutex<u32>>,
}

impl Respond for Receiver {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        if *calls == 1 {
            return ResponseTemplate::new(503).set_body_string("busy");
        }
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(message) => ResponseTemplate::new(200)
                .insert_header("ApiKey", KEY)
                .set_body_string(message["responseKey"].as_str().unwrap_or_default()),
            Err(_) => ResponseTemplate::new(200),
        }
    }
}

/// The claims and message of a secured push, once its signature verifies against the
/// simulator's published keys.
async fn verified(h: &Harness, request: &Request) -> (Value, Value) {
    assert_eq!(
        request
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "text/plain"
    );
    let token = std::str::from_utf8(&request.body).expect("text");
    let header = jsonwebtoken::decode_header(token).expect("a JWS");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwks = h
        .send(h.http.get(format!("{}/keys/partner-jwks.json", h.base)))
        .await;
    let jwk = jwks.control_ok()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"].as_str() == header.kid.as_deref())
        .expect("the key the push names")
        .clone();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    let decoding =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .expect("JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["Roku, Inc. urn:roku:apps:partner-service.roku.com"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .expect("the signature verifies")
        .claims;
    let message = STANDARD
        .decode(claims["x-Roku-message"].as_str().expect("x-Roku-message"))
        .expect("base64");
    (
        claims,
        serde_json::from_slice(&message).expect("JSON message"),
    )
}

#[tokio::test]
async fn secured_pushes_verify_against_the_published_keys_and_are_retried() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Receiver {
            calls: Arc::new(Mutex::new(0)),
        })
        .mount(&server)
        .await;
    h.push_to(&server, true).await;

    let order = h.buy(json!({"productId": MONTHLY})).await;
    let original = order["purchaseId"].as_str().unwrap().to_owned();
    let first = &order["pushes"][0];
    assert_eq!(first["statusCode"], 503);
    assert_eq!(first["outcome"], "pending");
    assert_eq!(
        time(first["nextAttemptAt"].as_str().unwrap()),
        time(START) + TimeDelta::minutes(1)
    );
    assert!(h.advance(TimeDelta::seconds(59)).await.is_empty());
    assert_eq!(h.advance(TimeDelta::seconds(1)).await.len(), 1);

    // The renewal a month later: a new transaction and its Sale.
    let pushed = h.advance(TimeDelta::days(31)).await;
    assert_eq!(pushed.len(), 1);
    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 3);

    let (claims, sale) = verified(&h, &requests[1]).await;
    let pushed_at = time(START) + TimeDelta::minutes(1);
    assert_eq!(
        claims["exp"],
        (pushed_at + TimeDelta::hours(24)).timestamp()
    );
    assert_eq!(claims["nbf"], (pushed_at - TimeDelta::hours(1)).timestamp());
    assert_eq!(claims["x-Roku-message-encoding"], "base64-utf8");
    assert_eq!(claims["x-Roku-message-type"], "roku.rpay.push");
    assert_eq!(claims["x-Roku-message-key"], sale["responseKey"]);
    assert_eq!(sale["transactionType"], "Sale");
    assert_eq!(sale["transactionId"], original.as_str());
    assert_eq!(sale["originalTransactionId"], original.as_str());
    assert_eq!(sale["channelId"], CHANNEL.to_string());
    assert_eq!(sale["channelName"], "Boxoffice");
    assert_eq!(sale["productCode"], MONTHLY);
    assert_eq!(sale["price"], 9.99);
    assert_eq!(sale["total"], 9.99);
    assert_eq!(sale["currency"], "usd");
    assert_eq!(sale["comments"], "New order processed.");
    assert_eq!(sale["eventDate"], "2030-01-15T09:00:00Z");
    assert_eq!(sale["expirationDate"], "2030-02-15T09:00:00Z");
    assert_eq!(sale["purchaseChannel"], "DEVICE");
    assert_eq!(sale["purchaseContext"], "IAP");
    assert_eq!(sale["isFreeTrial"], false);

    let (_, renewal) = verified(&h, &requests[2]).await;
    assert_eq!(renewal["transactionType"], "Sale");
    assert_eq!(renewal["comments"], "Recurring subscription processed");
    assert_ne!(renewal["transactionId"], original.as_str());
    assert_eq!(renewal["originalTransactionId"], original.as_str());
    assert_eq!(renewal["originalPurchaseDate"], "2030-01-15T09:00:00Z");
    assert_eq!(renewal["expirationDate"], "2030-03-15T09:00:00Z");
    let validated = h.validate(renewal["transactionId"].as_str().unwrap()).await;
    assert_eq!(validated.ok()["transactionId"], renewal["transactionId"]);

    let log = h.control_get("/notifications?state=delivered").await;
    let messages = log.control_ok()["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unsecured_pushes_are_acknowledged_by_their_response_key() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("thanks"))
        .mount(&server)
        .await;
    h.push_to(&server, false).await;
    let order = h.buy(json!({"productId": MONTHLY})).await;
    let attempt = &order["pushes"][0];
    assert_eq!(attempt["statusCode"], 200);
    assert_eq!(
        attempt["outcome"], "pending",
        "the body is not the responseKey"
    );
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(Receiver {
            calls: Arc::new(Mutex::new(1)),
        })
        .mount(&server)
        .await;
    assert_eq!(h.advance(TimeDelta::minutes(1)).await.len(), 1);
    let requests = server.received_requests().await.expect("recording");
    let message: Value = serde_json::from_slice(&requests[0].body).expect("a JSON push");
    assert_eq!(message["transactionType"], "Sale");
    let log = h.control_get("/notifications").await;
    assert_eq!(log.control_ok()["messages"][0]["state"], "delivered");
}

#[tokio::test]
async fn a_delivered_push_is_pushed_again_on_request_with_its_key() {
    let h = start().await;
    let key = "c0ffee00c0ffee00c0ffee00c0ffee00";
    let refused = h
        .control(&format!("/notifications/{key}/redeliver"), json!({}))
        .await;
    assert_eq!(refused.status, 400, "no endpoint yet: {}", refused.body);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    h.push_to(&server, true).await;
    let order = h.buy(json!({"productId": MONTHLY})).await;
    assert_eq!(order["pushes"][0]["outcome"], "delivered");
    let message_key = order["pushes"][0]["messageKey"]
        .as_str()
        .unwrap()
        .to_owned();

    let again = h
        .control(
            &format!("/notifications/{message_key}/redeliver"),
            json!({}),
        )
        .await;
    let message = again.control_ok();
    assert_eq!(message["state"], "delivered");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 2);
    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2);
    let (first, _) = verified(&h, &requests[0]).await;
    let (second, sale) = verified(&h, &requests[1]).await;
    assert_eq!(second["x-Roku-message-key"], first["x-Roku-message-key"]);
    assert_eq!(sale["responseKey"], message_key.as_str());
    assert_eq!(sale["transactionType"], "Sale");

    let unknown = h
        .control(&format!("/notifications/{key}/redeliver"), json!({}))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.body["status"], 1);
}

#[tokio::test]
async fn every_change_is_pushed_with_its_type() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    h.push_to(&server, true).await;
    let original = h.subscribed().await;
    h.control(
        &format!("/subscriptions/{original}/fail_next_renewal"),
        json!({}),
    )
    .await
    .control_ok();
    h.advance(TimeDelta::days(32)).await; // GraceInitiated
    h.control(&format!("/subscriptions/{original}/recover"), json!({}))
        .await
        .control_ok(); // GraceRecovered
    h.control(
        &format!("/subscriptions/{original}/fail_next_renewal"),
        json!({"failure": "onHold"}),
    )
    .await
    .control_ok();
    h.advance(TimeDelta::days(28)).await; // OnHoldInitiated
    h.control(&format!("/subscriptions/{original}/recover"), json!({}))
        .await
        .control_ok(); // OnHoldRecovered
    h.control(
        &format!("/subscriptions/{original}/auto_renew"),
        json!({"autoRenew": false}),
    )
    .await
    .control_ok(); // Cancellation
    h.control(
        &format!("/subscriptions/{original}/auto_renew"),
        json!({"autoRenew": true}),
    )
    .await
    .control_ok(); // Resubscribe
    h.control(&format!("/subscriptions/{original}/renew"), json!({}))
        .await
        .control_ok(); // Sale
    h.control(&format!("/subscriptions/{original}/revoke"), json!({}))
        .await
        .control_ok(); // Refund, Cancellation
    h.simulator.deliver_due().await;

    let requests = server.received_requests().await.expect("recording");
    let mut types = Vec::new();
    for request in &requests {
        let (_, message) = verified(&h, request).await;
        assert_eq!(message["originalTransactionId"], original.as_str());
        types.push(message["transactionType"].as_str().unwrap().to_owned());
        if message["transactionType"] == "Refund" {
            assert_eq!(message["price"], -9.99);
            assert_eq!(message["expirationDate"], Value::Null);
        }
    }
    // The revocation's two messages are pushed together, so they may arrive in either order.
    let revocation = types.split_off(types.len().saturating_sub(2));
    assert_eq!(
        types,
        [
            "Sale",
            "GraceInitiated",
            "GraceRecovered",
            "OnHoldInitiated",
            "OnHoldRecovered",
            "Cancellation",
            "Resubscribe",
            "Sale",
        ]
    );
    assert!(
        revocation.contains(&"Refund".to_owned())
            && revocation.contains(&"Cancellation".to_owned()),
        "{revocation:?}"
    );
}

#[tokio::test]
async fn the_document_has_rokus_paths() {
    let document: Value =
        serde_json::from_str(&openapi_json("http://127.0.0.1:8080/sim/roku")).unwrap();
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/listen/transaction-service.svc/validate-transaction/{partnerAPIKey}/{transactionId}",
        "/listen/transaction-service.svc/validate-refund/{partnerAPIKey}/{refundId}",
        "/listen/transaction-service.svc/cancel-subscription",
        "/listen/transaction-service.svc/refund-subscription",
        "/listen/transaction-service.svc/update-bill-cycle",
        "/keys/partner-jwks.json",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert_eq!(
        document["servers"][0]["url"],
        "http://127.0.0.1:8080/sim/roku"
    );
    assert_eq!(
        openapi_json("http://127.0.0.1:8080/sim/roku"),
        openapi_json("http://127.0.0.1:8080/sim/roku")
    );
}
