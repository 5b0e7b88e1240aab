//! The Stripe simulator over real HTTP, the way Stripe's client libraries call it: form
//! bodies with brackets, bearer keys, idempotency keys; its events and signed webhooks; and
//! its control surface.

use std::sync::{Arc, Mutex};

use boxoffice_simulators::clock::Now;
use boxoffice_simulators::stripe::{StripeConfig, StripeSimulator, openapi_json};
use chrono::{DateTime, TimeDelta, Utc};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};

const SECRET: &str = "sk_test_51BoxOfficeSimulatorSecretKey0000";
const PUBLISHABLE: &str = "pk_test_51BoxOfficeSimulatorPublishable00";
const START: &str = "2030-01-01T00:00:00Z";

/// A simulator alone at the root of a random loopback port, its control surface at `/sim`,
/// on a clock the test moves.
struct Harness {
    http: reqwest::Client,
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: StripeSimulator,
}

/// What came back.
struct Reply {
    status: u16,
    replayed: bool,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.body);
        &self.body
    }

    #[track_caller]
    fn error(&self, status: u16, error_type: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"]["type"], error_type, "{}", self.body);
        &self.body["error"]
    }
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
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(START)
        .expect("time")
        .with_timezone(&Utc);
    let clock = Arc::new(Mutex::new(start));
    let time = clock.clone();
    let now: Now = Arc::new(move || *time.lock().expect("clock"));
    let simulator = StripeSimulator::new(
        StripeConfig {
            public_base_url: base.clone(),
            secret_key: SECRET.into(),
            publishable_key: PUBLISHABLE.into(),
            local_webhooks: None,
        },
        now,
    )
    .expect("simulator");
    let control = OpenApiService::new(simulator.control_api(), "control", "1");
    let app = Route::new()
        .nest("/sim", control)
        .nest("/", simulator.endpoint());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    Harness {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        base,
        clock,
        simulator,
    }
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    fn set_time(&self, time: DateTime<Utc>) {
        *self.clock.lock().expect("clock") = time;
    }

    fn advance(&self, by: TimeDelta) {
        let now = self.now();
        self.set_time(now + by);
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value == "true");
        let text = response.text().await.expect("body");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
        Reply {
            status,
            replayed,
            body,
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(SECRET)
                .header("Stripe-Version", "2025-03-31.basil")
                .form(form),
        )
        .await
    }

    async fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(SECRET)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned()),
        )
        .await
    }

    async fn post_idempotent(&self, path: &str, key: &str, form: &[(&str, &str)]) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(SECRET)
                .header("Idempotency-Key", key)
                .form(form),
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(SECRET),
        )
        .await
    }

    async fn control(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/stripe{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn customer(&self) -> String {
        let reply = self
            .post("/v1/customers", &[("email", "jane@example.com")])
            .await;
        reply.ok()["id"].as_str().expect("id").to_owned()
    }
}

#[tokio::test]
async fn keys_are_checked_like_stripe() {
    let h = start().await;
    let none = h.send(h.http.get(format!("{}/v1/customers", h.base))).await;
    let error = none.error(401, "invalid_request_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key.")
    );

    let wrong = h
        .send(
            h.http
                .get(format!("{}/v1/customers", h.base))
                .bearer_auth("sk_test_wrongwrongwrong1234"),
        )
        .await;
    assert_eq!(
        wrong.error(401, "invalid_request_error")["message"],
        "Invalid API Key provided: sk_test_***************1234"
    );

    let publishable = h
        .send(
            h.http
                .post(format!("{}/v1/customers", h.base))
                .bearer_auth(PUBLISHABLE)
                .form(&[("email", "x@example.com")]),
        )
        .await;
    assert!(
        publishable.error(401, "invalid_request_error")["message"]
            .as_str()
            .unwrap()
            .contains("publishable API key")
    );

    // curl's `-u sk_test_…:` works too.
    let basic = h
        .send(
            h.http
                .get(format!("{}/v1/customers", h.base))
                .basic_auth(SECRET, Some("")),
        )
        .await;
    basic.ok();
}

#[tokio::test]
async fn customers_are_created_read_updated_and_listed() {
    let h = start().await;
    let created = h
        .post(
            "/v1/customers",
            &[
                ("email", "jane@example.com"),
                ("name", "Jane Doe"),
                ("metadata[plan]", "gold"),
                ("metadata[user]", "42"),
            ],
        )
        .await;
    let customer = created.ok().clone();
    let id = customer["id"].as_str().unwrap();
    assert!(id.starts_with("cus_"));
    assert_eq!(customer["object"], "customer");
    assert_eq!(customer["livemode"], false);
    assert_eq!(customer["created"], 1_893_456_000);
    assert_eq!(customer["metadata"], json!({"plan": "gold", "user": "42"}));
    assert_eq!(
        customer["invoice_settings"]["default_payment_method"],
        Value::Null
    );

    let read = h.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(read.ok(), &customer);

    let updated = h
        .post(
            &format!("/v1/customers/{id}"),
            &[
                ("email", "jane.doe@example.com"),
                ("metadata[plan]", ""),
                ("metadata[tier]", "2"),
            ],
        )
        .await;
    let updated = updated.ok();
    assert_eq!(updated["email"], "jane.doe@example.com");
    assert_eq!(updated["name"], "Jane Doe");
    assert_eq!(updated["metadata"], json!({"user": "42", "tier": "2"}));

    let missing = h.get("/v1/customers/cus_missing").await;
    let error = missing.error(404, "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["message"], "No such customer: 'cus_missing'");

    h.customer().await;
    let newest = h.customer().await;
    let page = h.get("/v1/customers?limit=2").await;
    let page = page.ok();
    assert_eq!(page["object"], "list");
    assert_eq!(page["url"], "/v1/customers");
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["id"], newest.as_str());
    let last = page["data"][1]["id"].as_str().unwrap();
    let rest = h
        .get(&format!("/v1/customers?limit=2&starting_after={last}"))
        .await;
    let rest = rest.ok();
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["data"][0]["id"], id);
}

#[tokio::test]
async fn payment_methods_from_numbers_and_tokens_attach_and_detach() {
    let h = start().await;
    let customer = h.customer().await;
    let created = h
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    let pm = created.ok().clone();
    let pm_id = pm["id"].as_str().unwrap();
    assert!(pm_id.starts_with("pm_"));
    assert_eq!(pm["card"]["brand"], "visa");
    assert_eq!(pm["card"]["last4"], "4242");
    assert_eq!(pm["card"]["funding"], "credit");
    assert_eq!(pm["customer"], Value::Null);

    let token = h.get("/v1/payment_methods/pm_card_mastercard").await;
    assert_eq!(token.ok()["card"]["brand"], "mastercard");

    let attached = h
        .post(
            &format!("/v1/payment_methods/{pm_id}/attach"),
            &[("customer", &customer)],
        )
        .await;
    assert_eq!(attached.ok()["customer"], customer.as_str());
    let default = h
        .post(
            &format!("/v1/customers/{customer}"),
            &[("invoice_settings[default_payment_method]", pm_id)],
        )
        .await;
    assert_eq!(
        default.ok()["invoice_settings"]["default_payment_method"],
        pm_id
    );
    let expanded = h
        .get(&format!(
            "/v1/customers/{customer}?expand[]=invoice_settings.default_payment_method"
        ))
        .await;
    assert_eq!(
        expanded.ok()["invoice_settings"]["default_payment_method"]["card"]["last4"],
        "4242"
    );

    let list = h
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await;
    assert_eq!(list.ok()["data"].as_array().unwrap().len(), 1);

    let declined = h
        .post(
            "/v1/payment_methods/pm_card_chargeDeclined/attach",
            &[("customer", &customer)],
        )
        .await;
    let error = declined.error(402, "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "generic_decline");

    let bad_number = h
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424241"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
            ],
        )
        .await;
    assert_eq!(
        bad_number.error(402, "card_error")["code"],
        "incorrect_number"
    );

    let detached = h
        .post(&format!("/v1/payment_methods/{pm_id}/detach"), &[])
        .await;
    assert_eq!(detached.ok()["customer"], Value::Null);
    let list = h
        .get(&format!(
            "/v1/payment_methods?customer={customer}&type=card"
        ))
        .await;
    assert_eq!(list.ok()["data"], json!([]));
}

#[tokio::test]
async fn a_payment_intent_succeeds_and_saves_the_card() {
    let h = start().await;
    let customer = h.customer().await;
    let created = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1999"),
                ("currency", "nok"),
                ("customer", &customer),
                ("setup_future_usage", "off_session"),
                ("payment_method_types[]", "card"),
                ("metadata[order]", "o-1"),
            ],
        )
        .await;
    let intent = created.ok().clone();
    let id = intent["id"].as_str().unwrap();
    assert_eq!(intent["status"], "requires_payment_method");
    assert!(
        intent["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{id}_secret_"))
    );

    let updated = h
        .post(&format!("/v1/payment_intents/{id}"), &[("amount", "2999")])
        .await;
    assert_eq!(updated.ok()["amount"], 2999);

    let confirmed = h
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            &[
                ("payment_method", "pm_card_visa"),
                ("expand[]", "latest_charge"),
            ],
        )
        .await;
    let confirmed = confirmed.ok().clone();
    assert_eq!(confirmed["status"], "succeeded");
    assert_eq!(confirmed["amount_received"], 2999);
    let charge = &confirmed["latest_charge"];
    assert!(charge["id"].as_str().unwrap().starts_with("ch_"));
    assert_eq!(charge["amount_captured"], 2999);
    assert_eq!(charge["payment_intent"], id);

    let pm = confirmed["payment_method"].as_str().unwrap();
    let saved = h.get(&format!("/v1/payment_methods/{pm}")).await;
    assert_eq!(saved.ok()["customer"], customer.as_str());

    let too_late = h
        .post(&format!("/v1/payment_intents/{id}"), &[("amount", "100")])
        .await;
    assert_eq!(
        too_late.error(400, "invalid_request_error")["code"],
        "payment_intent_unexpected_state"
    );
    let again = h
        .post(&format!("/v1/payment_intents/{id}/confirm"), &[])
        .await;
    again.error(400, "invalid_request_error");
    let cancel = h
        .post(&format!("/v1/payment_intents/{id}/cancel"), &[])
        .await;
    cancel.error(400, "invalid_request_error");

    // Off-session with the saved card.
    let renewal = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "2999"),
                ("currency", "nok"),
                ("customer", &customer),
                ("payment_method", pm),
                ("off_session", "true"),
                ("confirm", "true"),
            ],
        )
        .await;
    assert_eq!(renewal.ok()["status"], "succeeded");
}

#[tokio::test]
async fn declines_come_back_as_card_errors() {
    let h = start().await;
    let customer = h.customer().await;
    let declined = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("customer", &customer),
                ("payment_method", "pm_card_chargeDeclinedInsufficientFunds"),
                ("confirm", "true"),
            ],
        )
        .await;
    let error = declined.error(402, "card_error").clone();
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "insufficient_funds");
    assert_eq!(error["message"], "Your card has insufficient funds.");
    assert!(error["charge"].as_str().unwrap().starts_with("ch_"));
    let intent = &error["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );
    let id = intent["id"].as_str().unwrap();

    let expired = h
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            &[("payment_method", "pm_card_chargeDeclinedExpiredCard")],
        )
        .await;
    assert_eq!(expired.error(402, "card_error")["code"], "expired_card");

    let retried = h
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(retried.ok()["status"], "succeeded");

    // The control surface makes the next charge fail, once.
    h.control(
        &format!("/customers/{customer}/fail_next_charge"),
        json!({"decline_code": "insufficient_funds"}),
    )
    .await
    .ok();
    let form = [
        ("amount", "500"),
        ("currency", "usd"),
        ("customer", customer.as_str()),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
    ];
    let forced = h.post("/v1/payment_intents", &form).await;
    assert_eq!(
        forced.error(402, "card_error")["decline_code"],
        "insufficient_funds"
    );
    assert_eq!(
        h.post("/v1/payment_intents", &form).await.ok()["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn three_d_secure_needs_the_customer() {
    let h = start().await;
    let customer = h.customer().await;
    let created = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "eur"),
                ("customer", &customer),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
        )
        .await;
    let intent = created.ok().clone();
    assert_eq!(intent["status"], "requires_action");
    assert_eq!(intent["next_action"]["type"], "use_stripe_sdk");
    let id = intent["id"].as_str().unwrap();

    // Stripe.js retrieves the intent with the publishable key and the client secret.
    let secret = intent["client_secret"].as_str().unwrap();
    let by_browser = h
        .send(
            h.http
                .get(format!("{}/v1/payment_intents/{id}", h.base))
                .bearer_auth(PUBLISHABLE)
                .query(&[("client_secret", secret)]),
        )
        .await;
    assert_eq!(by_browser.ok()["status"], "requires_action");
    let wrong_secret = h
        .send(
            h.http
                .get(format!("{}/v1/payment_intents/{id}", h.base))
                .bearer_auth(PUBLISHABLE)
                .query(&[("client_secret", "pi_x_secret_y")]),
        )
        .await;
    wrong_secret.error(400, "invalid_request_error");

    let done = h
        .control(&format!("/intents/{id}/confirm"), json!({}))
        .await;
    let done = done.ok();
    assert_eq!(done["status"], "succeeded");
    assert!(done["latest_charge"].as_str().unwrap().starts_with("ch_"));

    // Off-session, the same card is declined with authentication_required.
    let off_session = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "eur"),
                ("customer", &customer),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
                ("off_session", "true"),
            ],
        )
        .await;
    let error = off_session.error(402, "card_error");
    assert_eq!(error["code"], "authentication_required");
    assert_eq!(error["payment_intent"]["status"], "requires_payment_method");
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_parameters() {
    let h = start().await;
    let form = [("email", "once@example.com")];
    let first = h.post_idempotent("/v1/customers", "key-1", &form).await;
    assert!(!first.replayed);
    let second = h.post_idempotent("/v1/customers", "key-1", &form).await;
    assert!(second.replayed);
    assert_eq!(first.ok(), second.ok());
    let list = h.get("/v1/customers").await;
    assert_eq!(list.ok()["data"].as_array().unwrap().len(), 1);

    let other = h
        .post_idempotent("/v1/customers", "key-1", &[("email", "twice@example.com")])
        .await;
    assert!(
        other.error(400, "idempotency_error")["message"]
            .as_str()
            .unwrap()
            .starts_with("Keys for idempotent requests can only be used with the same parameters")
    );
    let elsewhere = h
        .post_idempotent(
            "/v1/payment_intents",
            "key-1",
            &[("amount", "100"), ("currency", "usd")],
        )
        .await;
    assert!(
        elsewhere.error(400, "idempotency_error")["message"]
            .as_str()
            .unwrap()
            .contains("('/v1/customers' vs '/v1/payment_intents')")
    );

    // A declined payment is remembered too: the retry does not charge again.
    let customer = h.customer().await;
    let pay = [
        ("amount", "100"),
        ("currency", "usd"),
        ("customer", customer.as_str()),
        ("payment_method", "pm_card_chargeDeclined"),
        ("confirm", "true"),
    ];
    let first = h
        .post_idempotent("/v1/payment_intents", "pay-1", &pay)
        .await;
    let again = h
        .post_idempotent("/v1/payment_intents", "pay-1", &pay)
        .await;
    first.error(402, "card_error");
    assert!(again.replayed);
    assert_eq!(first.body, again.body);
}

#[tokio::test]
async fn setup_intents_save_cards_or_decline() {
    let h = start().await;
    let customer = h.customer().await;
    let created = h
        .post(
            "/v1/setup_intents",
            &[("customer", &customer), ("usage", "off_session")],
        )
        .await;
    let intent = created.ok().clone();
    let id = intent["id"].as_str().unwrap();
    assert!(id.starts_with("seti_"));
    assert_eq!(intent["status"], "requires_payment_method");

    let declined = h
        .post(
            &format!("/v1/setup_intents/{id}/confirm"),
            &[("payment_method", "pm_card_chargeDeclined")],
        )
        .await;
    let error = declined.error(402, "card_error");
    assert_eq!(error["setup_intent"]["status"], "requires_payment_method");

    let confirmed = h
        .post(
            &format!("/v1/setup_intents/{id}/confirm"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    let confirmed = confirmed.ok();
    assert_eq!(confirmed["status"], "succeeded");
    let pm = confirmed["payment_method"].as_str().unwrap();
    let saved = h.get(&format!("/v1/payment_methods/{pm}")).await;
    assert_eq!(saved.ok()["customer"], customer.as_str());
    let read = h.get(&format!("/v1/setup_intents/{id}")).await;
    assert_eq!(read.ok()["status"], "succeeded");
}

#[tokio::test]
async fn refunds_full_and_partial() {
    let h = start().await;
    let paid = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
            ],
        )
        .await;
    let paid = paid.ok().clone();
    let id = paid["id"].as_str().unwrap();
    let charge = paid["latest_charge"].as_str().unwrap();

    let partial = h
        .post("/v1/refunds", &[("payment_intent", id), ("amount", "400")])
        .await;
    let refund = partial.ok();
    assert!(refund["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(refund["amount"], 400);
    assert_eq!(refund["charge"], charge);
    assert_eq!(refund["status"], "succeeded");

    let too_much = h
        .post("/v1/refunds", &[("charge", charge), ("amount", "700")])
        .await;
    assert_eq!(
        too_much.error(400, "invalid_request_error")["message"],
        "Refund amount ($7.00) is greater than unrefunded amount on charge ($6.00)"
    );

    let rest = h.post("/v1/refunds", &[("charge", charge)]).await;
    assert_eq!(rest.ok()["amount"], 600);
    let read = h.get(&format!("/v1/charges/{charge}")).await;
    let read = read.ok();
    assert_eq!(read["amount_refunded"], 1000);
    assert_eq!(read["refunded"], true);
    assert_eq!(read["refunds"]["data"].as_array().unwrap().len(), 2);
    let listed = h.get(&format!("/v1/refunds?payment_intent={id}")).await;
    assert_eq!(listed.ok()["data"].as_array().unwrap().len(), 2);
    let charges = h.get(&format!("/v1/charges?payment_intent={id}")).await;
    assert_eq!(charges.ok()["data"][0]["id"], charge);

    let again = h.post("/v1/refunds", &[("charge", charge)]).await;
    assert_eq!(
        again.error(400, "invalid_request_error")["code"],
        "charge_already_refunded"
    );
}

#[tokio::test]
async fn malformed_requests_are_400_never_500() {
    let h = start().await;
    for body in [
        "metadata[plan=gold",
        "email=a&email[x]=b",
        "[x]=1",
        "unknown=1",
        "metadata[a][b]=c",
        "%ff%fe=%00",
    ] {
        let reply = h.post_raw("/v1/customers", body).await;
        reply.error(400, "invalid_request_error");
    }
    let unknown = h.post_raw("/v1/customers", "unknown=1").await;
    assert_eq!(
        unknown.body["error"]["message"],
        "Received unknown parameter: unknown"
    );
    let not_a_number = h
        .post_raw("/v1/payment_intents", "amount=abc&currency=usd")
        .await;
    assert_eq!(not_a_number.body["error"]["param"], "amount");
    let missing = h.post_raw("/v1/payment_intents", "currency=usd").await;
    assert_eq!(
        missing.error(400, "invalid_request_error")["message"],
        "Missing required param: amount."
    );
    let json_body = h
        .send(
            h.http
                .post(format!("{}/v1/customers", h.base))
                .bearer_auth(SECRET)
                .json(&json!({"email": "x@example.com"})),
        )
        .await;
    json_body.error(400, "invalid_request_error");
    let expand = h.get("/v1/customers?expand[]=nope").await;
    expand.error(400, "invalid_request_error");
    let no_customer = h
        .post_raw(
            "/v1/payment_intents",
            "amount=100&currency=usd&customer=cus_nope",
        )
        .await;
    let error = no_customer.error(400, "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["param"], "customer");
    let unknown_url = h.get("/v1/nothing_here").await;
    assert!(
        unknown_url.error(404, "invalid_request_error")["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL (GET: /v1/nothing_here).")
    );
}

#[tokio::test]
async fn control_state_lists_the_account() {
    let h = start().await;
    h.customer().await;
    let state = h
        .send(h.http.get(format!("{}/sim/control/stripe/state", h.base)))
        .await;
    assert_eq!(state.ok()["customers"].as_array().unwrap().len(), 1);
    let document = h
        .http
        .get(format!("{}/openapi.json", h.base))
        .send()
        .await
        .expect("document");
    assert_eq!(document.status(), 200);
    let docs = h
        .http
        .get(format!("{}/docs", h.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), 200);
}

#[test]
fn the_document_is_deterministic_and_describes_v1() {
    let first = openapi_json("http://127.0.0.1:8080/sim/stripe");
    assert_eq!(first, openapi_json("http://127.0.0.1:8080/sim/stripe"));
    let document: Value = serde_json::from_str(&first).expect("JSON");
    assert!(document["paths"]["/v1/payment_intents/{intent}/confirm"]["post"].is_object());
    assert_eq!(
        document["servers"][0]["url"],
        "http://127.0.0.1:8080/sim/stripe"
    );
}

#[tokio::test]
async fn stripe_js_confirms_with_the_publishable_key_in_the_body() {
    let h = start().await;
    let created = h
        .post(
            "/v1/payment_intents",
            &[("amount", "1200"), ("currency", "usd")],
        )
        .await;
    let intent = created.ok().clone();
    let id = intent["id"].as_str().unwrap();
    let secret = intent["client_secret"].as_str().unwrap();
    // What Stripe.js sends: the key, its telemetry, and the card as payment_method_data.
    let confirmed = h
        .send(
            h.http
                .post(format!("{}/v1/payment_intents/{id}/confirm", h.base))
                .form(&[
                    ("key", PUBLISHABLE),
                    ("client_secret", secret),
                    ("payment_user_agent", "stripe.js/abc"),
                    ("_stripe_version", "2025-03-31.basil"),
                    ("payment_method_data[type]", "card"),
                    ("payment_method_data[card][number]", "4242424242424242"),
                    ("payment_method_data[card][exp_month]", "4"),
                    ("payment_method_data[card][exp_year]", "44"),
                    ("payment_method_data[card][cvc]", "424"),
                    ("return_url", "https://example.com/done"),
                ]),
        )
        .await;
    assert_eq!(confirmed.ok()["status"], "succeeded");

    // The publishable key cannot list or create what the server does.
    let refused = h
        .send(
            h.http
                .get(format!("{}/v1/payment_intents", h.base))
                .bearer_auth(PUBLISHABLE),
        )
        .await;
    refused.error(401, "invalid_request_error");
}

#[tokio::test]
async fn headers_and_unsupported_methods() {
    let h = start().await;
    let response = h
        .http
        .get(format!("{}/v1/customers", h.base))
        .bearer_auth(SECRET)
        .header("Stripe-Version", "2024-06-20")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["stripe-version"], "2024-06-20");
    assert!(
        response.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let delete = h
        .send(
            h.http
                .delete(format!("{}/v1/payment_intents", h.base))
                .bearer_auth(SECRET),
        )
        .await;
    delete.error(404, "invalid_request_error");
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_object() {
    let h = Arc::new(start().await);
    let customer = h.customer().await;
    let attempts: Vec<_> = (0..16)
        .map(|_| {
            let h = h.clone();
            let customer = customer.clone();
            tokio::spawn(async move {
                h.post_idempotent(
                    "/v1/payment_intents",
                    "renewal-cus-period-1",
                    &[
                        ("amount", "999"),
                        ("currency", "nok"),
                        ("customer", &customer),
                        ("payment_method", "pm_card_visa"),
                        ("confirm", "true"),
                    ],
                )
                .await
                .body
            })
        })
        .collect();
    let mut ids = Vec::new();
    for attempt in attempts {
        ids.push(attempt.await.expect("task")["id"].clone());
    }
    assert!(ids.iter().all(|id| id == &ids[0]));
    let list = h
        .get(&format!("/v1/payment_intents?customer={customer}"))
        .await;
    assert_eq!(list.ok()["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_setup_intent_needing_authentication_succeeds_after_the_customer_confirms() {
    let h = start().await;
    let customer = h.customer().await;
    let created = h
        .post(
            "/v1/setup_intents",
            &[
                ("customer", &customer),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
        )
        .await;
    let intent = created.ok().clone();
    assert_eq!(intent["status"], "requires_action");
    let id = intent["id"].as_str().unwrap();
    let secret = intent["client_secret"].as_str().unwrap();
    let by_browser = h
        .send(
            h.http
                .get(format!("{}/v1/setup_intents/{id}", h.base))
                .query(&[("client_secret", secret), ("key", PUBLISHABLE)]),
        )
        .await;
    assert_eq!(by_browser.ok()["status"], "requires_action");
    let done = h
        .control(&format!("/intents/{id}/confirm"), json!({}))
        .await;
    assert_eq!(done.ok()["status"], "succeeded");
    let methods = h
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await;
    assert_eq!(methods.ok()["data"][0]["card"]["last4"], "3184");
    let missing = h.control("/intents/pi_missing/confirm", json!({})).await;
    missing.error(404, "invalid_request_error");
}

// ------------------------------------------------------------------ events and webhooks

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

impl Harness {
    /// A control operation that takes no body.
    async fn control_post(&self, path: &str) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/stripe{path}", self.base)),
        )
        .await
    }

    async fn control_get(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}/sim/control/stripe{path}", self.base)),
        )
        .await
    }

    /// `POST /webhooks/deliver`: the attempts made.
    async fn deliver(&self) -> Vec<Value> {
        let report = self.control_post("/webhooks/deliver").await;
        report.ok()["attempts"]
            .as_array()
            .expect("attempts")
            .clone()
    }

    /// A webhook endpoint created over the API: its id and secret.
    async fn webhook_endpoint(&self, url: &str, events: &[&str]) -> (String, String) {
        let mut form = vec![("url", url)];
        form.extend(events.iter().map(|event| ("enabled_events[]", *event)));
        let created = self.post("/v1/webhook_endpoints", &form).await;
        let created = created.ok();
        (
            created["id"].as_str().expect("id").to_owned(),
            created["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// The types of the events listed by this query, newest first.
    async fn event_types(&self, query: &str) -> Vec<String> {
        let list = self.get(&format!("/v1/events?limit=100&{query}")).await;
        list.ok()["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|event| event["type"].as_str().expect("type").to_owned())
            .collect()
    }

    async fn paid_intent(&self, customer: &str) -> Value {
        self.post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("customer", customer),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
            ],
        )
        .await
        .ok()
        .clone()
    }
}

/// Checks `Stripe-Signature` as Stripe's libraries do; its timestamp.
#[track_caller]
fn verify_signature(header: &str, body: &[u8], secret: &str) -> i64 {
    signed_with(header, body, secret)
        .unwrap_or_else(|| panic!("{header} is not a signature of the body with {secret}"))
}

/// The timestamp of `Stripe-Signature` when it is exactly one `v1` signature of the body
/// with `secret`.
fn signed_with(header: &str, body: &[u8], secret: &str) -> Option<i64> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = Some(value.to_owned()),
            Some(("v1", value)) => signatures.push(value.to_owned()),
            _ => return None,
        }
    }
    let timestamp = timestamp?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    (signatures == [expected]).then(|| timestamp.parse().ok())?
}

/// The events a mock webhook receiver got, as JSON, in order.
async fn received_events(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .map(|request| serde_json::from_slice(&request.body).expect("JSON body"))
        .collect()
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn events_are_listed_filtered_and_paged_newest_first() {
    let h = start().await;
    let customer = h.customer().await;
    h.advance(TimeDelta::seconds(10));
    let intent = h.paid_intent(&customer).await;
    h.advance(TimeDelta::seconds(10));
    h.post(
        "/v1/refunds",
        &[("payment_intent", intent["id"].as_str().unwrap())],
    )
    .await
    .ok();

    let all = h.event_types("").await;
    assert_eq!(
        all,
        [
            "refund.created",
            "charge.refunded",
            "payment_intent.succeeded",
            "charge.succeeded",
            "payment_intent.created",
            "customer.created",
        ]
    );
    assert_eq!(
        h.event_types("type=payment_intent.*").await,
        ["payment_intent.succeeded", "payment_intent.created"]
    );
    assert_eq!(
        h.event_types("type=charge.succeeded").await,
        ["charge.succeeded"]
    );
    assert_eq!(
        h.event_types("types[]=customer.created&types[]=refund.created")
            .await,
        ["refund.created", "customer.created"]
    );
    let start = 1_893_456_000;
    assert_eq!(
        h.event_types(&format!("created[gt]={start}&created[lt]={}", start + 20))
            .await,
        [
            "payment_intent.succeeded",
            "charge.succeeded",
            "payment_intent.created"
        ]
    );
    assert_eq!(
        h.event_types(&format!("created={start}")).await,
        ["customer.created"]
    );
    h.get("/v1/events?type=a&types[]=b")
        .await
        .error(400, "invalid_request_error");
    assert_eq!(
        h.get("/v1/events?created[soon]=1")
            .await
            .error(400, "invalid_request_error")["param"],
        "created[soon]"
    );

    let page = h.get("/v1/events?limit=3").await;
    let page = page.ok().clone();
    assert_eq!(page["object"], "list");
    assert_eq!(page["url"], "/v1/events");
    assert_eq!(page["has_more"], true);
    let third = page["data"][2]["id"].as_str().unwrap();
    let next = h
        .get(&format!("/v1/events?limit=3&starting_after={third}"))
        .await;
    assert_eq!(next.ok()["data"][0]["type"], "charge.succeeded");
    let back = h
        .get(&format!("/v1/events?limit=2&ending_before={third}"))
        .await;
    let back = back.ok();
    assert_eq!(back["data"][0]["type"], "refund.created");
    assert_eq!(back["data"][1]["type"], "charge.refunded");

    let newest = &page["data"][0];
    let read = h
        .get(&format!("/v1/events/{}", newest["id"].as_str().unwrap()))
        .await;
    let read = read.ok();
    assert_eq!(read, newest);
    assert!(read["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(read["object"], "event");
    assert_eq!(read["api_version"], "2025-03-31.basil");
    assert_eq!(read["created"], start + 20);
    assert_eq!(read["livemode"], false);
    assert_eq!(read["pending_webhooks"], 0);
    assert_eq!(read["data"]["object"]["object"], "refund");
    assert!(read["request"]["id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(read["request"]["idempotency_key"], Value::Null);

    let missing = h.get("/v1/events/evt_missing").await;
    assert_eq!(
        missing.error(404, "invalid_request_error")["message"],
        "No such event: 'evt_missing'"
    );
}

#[tokio::test]
async fn events_name_the_request_that_caused_them() {
    let h = start().await;
    let response = h
        .http
        .post(format!("{}/v1/customers", h.base))
        .bearer_auth(SECRET)
        .header("Idempotency-Key", "signup-42")
        .form(&[("email", "jane@example.com")])
        .send()
        .await
        .expect("request");
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let customer: Value = response.json().await.expect("JSON");
    let list = h.get("/v1/events?type=customer.created").await;
    let event = &list.ok()["data"][0];
    assert_eq!(event["request"]["id"], request_id.as_str());
    assert_eq!(event["request"]["idempotency_key"], "signup-42");
    assert_eq!(event["data"]["object"], customer);

    let updated = h
        .post(
            &format!("/v1/customers/{}", customer["id"].as_str().unwrap()),
            &[("name", "Jane"), ("metadata[plan]", "gold")],
        )
        .await;
    updated.ok();
    let list = h.get("/v1/events?type=customer.updated").await;
    let event = &list.ok()["data"][0];
    assert_eq!(event["data"]["object"]["name"], "Jane");
    assert_eq!(
        event["data"]["previous_attributes"],
        json!({"name": null, "metadata": {"plan": null}})
    );

    // The control surface is no API request.
    let intent = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "500"),
                ("currency", "eur"),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
        )
        .await;
    let id = intent.ok()["id"].as_str().unwrap().to_owned();
    h.control(&format!("/intents/{id}/confirm"), json!({}))
        .await
        .ok();
    let list = h.get("/v1/events?type=payment_intent.*").await;
    let list = list.ok();
    assert_eq!(list["data"][0]["type"], "payment_intent.succeeded");
    assert_eq!(
        list["data"][0]["request"],
        json!({"id": null, "idempotency_key": null})
    );
    assert_eq!(list["data"][1]["type"], "payment_intent.requires_action");
    assert!(list["data"][1]["request"]["id"].is_string());
}

#[tokio::test]
async fn failures_and_saved_cards_emit_full_objects() {
    let h = start().await;
    let customer = h.customer().await;
    h.post(
        "/v1/payment_intents",
        &[
            ("amount", "1000"),
            ("currency", "usd"),
            ("customer", &customer),
            ("payment_method", "pm_card_chargeDeclinedInsufficientFunds"),
            ("confirm", "true"),
        ],
    )
    .await
    .error(402, "card_error");
    let failed = h.get("/v1/events?type=payment_intent.payment_failed").await;
    let intent = failed.ok()["data"][0]["data"]["object"].clone();
    assert_eq!(intent["status"], "requires_payment_method");
    let error = &intent["last_payment_error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "insufficient_funds");
    assert_eq!(error["message"], "Your card has insufficient funds.");
    assert_eq!(error["payment_method"]["card"]["last4"], "9995");
    assert_eq!(error["charge"], intent["latest_charge"]);
    let charge = h.get("/v1/events?type=charge.failed").await;
    let charge = &charge.ok()["data"][0]["data"]["object"];
    assert_eq!(charge["status"], "failed");
    assert_eq!(charge["failure_code"], "card_declined");

    let setup = h
        .post(
            "/v1/setup_intents",
            &[
                ("customer", &customer),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
            ],
        )
        .await;
    let pm = setup.ok()["payment_method"].as_str().unwrap().to_owned();
    let succeeded = h.get("/v1/events?type=setup_intent.succeeded").await;
    let intent = &succeeded.ok()["data"][0]["data"]["object"];
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["payment_method"], pm.as_str());
    let attached = h.get("/v1/events?type=payment_method.attached").await;
    let method = &attached.ok()["data"][0]["data"]["object"];
    assert_eq!(method["id"], pm.as_str());
    assert_eq!(method["customer"], customer.as_str());

    h.post(&format!("/v1/payment_methods/{pm}/detach"), &[])
        .await
        .ok();
    let detached = h.get("/v1/events?type=payment_method.detached").await;
    let event = &detached.ok()["data"][0]["data"];
    assert_eq!(event["object"]["customer"], Value::Null);
    assert_eq!(event["previous_attributes"], json!({"customer": customer}));
}

#[tokio::test]
async fn webhook_endpoints_are_created_read_updated_and_deleted() {
    let h = start().await;
    let created = h
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", "https://example.com/hooks"),
                ("enabled_events[]", "payment_intent.succeeded"),
                ("enabled_events[]", "charge.refunded"),
                ("description", "boxoffice"),
                ("metadata[env]", "qa"),
                ("api_version", "2024-06-20"),
            ],
        )
        .await;
    let created = created.ok().clone();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("we_"));
    assert_eq!(created["object"], "webhook_endpoint");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["url"], "https://example.com/hooks");
    assert_eq!(
        created["enabled_events"],
        json!(["payment_intent.succeeded", "charge.refunded"])
    );
    assert_eq!(created["api_version"], "2024-06-20");
    assert_eq!(created["application"], Value::Null);
    assert_eq!(created["livemode"], false);
    assert_eq!(created["created"], 1_893_456_000);
    assert_eq!(created["metadata"], json!({"env": "qa"}));
    assert_eq!(created["description"], "boxoffice");

    let read = h.get(&format!("/v1/webhook_endpoints/{id}")).await;
    let read = read.ok();
    assert!(read.get("secret").is_none(), "{read}");
    let mut without_secret = created.clone();
    without_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(read, &without_secret);

    let updated = h
        .post(
            &format!("/v1/webhook_endpoints/{id}"),
            &[
                ("url", "http://127.0.0.1:9/other"),
                ("enabled_events[]", "*"),
                ("disabled", "true"),
                ("description", ""),
            ],
        )
        .await;
    let updated = updated.ok();
    assert_eq!(updated["status"], "disabled");
    assert_eq!(updated["url"], "http://127.0.0.1:9/other");
    assert_eq!(updated["enabled_events"], json!(["*"]));
    assert_eq!(updated["description"], Value::Null);
    assert!(updated.get("secret").is_none());

    h.webhook_endpoint("https://example.com/second", &["*"])
        .await;
    let list = h.get("/v1/webhook_endpoints?limit=1").await;
    let list = list.ok();
    assert_eq!(list["url"], "/v1/webhook_endpoints");
    assert_eq!(list["has_more"], true);
    assert_eq!(list["data"][0]["url"], "https://example.com/second");

    let deleted = h
        .send(
            h.http
                .delete(format!("{}/v1/webhook_endpoints/{id}", h.base))
                .bearer_auth(SECRET),
        )
        .await;
    assert_eq!(
        deleted.ok(),
        &json!({"id": id, "object": "webhook_endpoint", "deleted": true})
    );
    let gone = h.get(&format!("/v1/webhook_endpoints/{id}")).await;
    assert_eq!(
        gone.error(404, "invalid_request_error")["message"],
        format!("No such webhook endpoint: '{id}'")
    );
}

#[tokio::test]
async fn webhook_endpoints_are_refused_like_stripe_refuses_them() {
    let h = start().await;
    let unknown = h
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", "https://example.com/hooks"),
                ("enabled_events[]", "charge.succeeded"),
                ("enabled_events[]", "invoice.paid"),
            ],
        )
        .await;
    let error = unknown.error(400, "invalid_request_error");
    assert_eq!(error["param"], "enabled_events[1]");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid enabled_events[1]: must be one of")
    );
    let missing = h
        .post("/v1/webhook_endpoints", &[("url", "https://example.com/h")])
        .await;
    assert_eq!(
        missing.error(400, "invalid_request_error")["message"],
        "Missing required param: enabled_events."
    );
    for url in ["ftp://example.com/h", "example.com/h", "https://"] {
        let bad = h
            .post(
                "/v1/webhook_endpoints",
                &[("url", url), ("enabled_events[]", "*")],
            )
            .await;
        assert_eq!(bad.error(400, "invalid_request_error")["param"], "url");
    }
    for body in [
        "url=https://example.com/h&enabled_events=*",
        "url=https://example.com/h&enabled_events[]=*&api_version=latest",
        "url=https://example.com/h&enabled_events[]=*&secret=whsec_mine",
        "url[a]=b&enabled_events[]=*",
    ] {
        h.post_raw("/v1/webhook_endpoints", body)
            .await
            .error(400, "invalid_request_error");
    }
    let registered = h
        .simulator
        .register_webhook_endpoint("https://example.com/x", &["charge.nope"]);
    assert!(registered.is_err());
    let list = h.get("/v1/webhook_endpoints").await;
    assert_eq!(list.ok()["data"], json!([]));
}

#[tokio::test]
async fn webhooks_are_signed_as_stripe_signs_them() {
    let h = start().await;
    let server = receiver(200).await;
    let registered = h
        .simulator
        .register_webhook_endpoint(&format!("{}/hook", server.uri()), &["*"])
        .expect("registered");
    assert!(registered.id.starts_with("we_"));
    assert!(registered.secret.starts_with("whsec_"));
    let customer = h.customer().await;

    h.advance(TimeDelta::seconds(5));
    let attempts = h.deliver().await;
    assert_eq!(attempts.len(), 1);
    let attempt = &attempts[0];
    assert_eq!(attempt["event_type"], "customer.created");
    assert_eq!(attempt["webhook_endpoint"], registered.id.as_str());
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["outcome"], "delivered");
    assert_eq!(attempt["attempt"], 1);
    assert_eq!(attempt["next_attempt_at"], Value::Null);
    assert!(h.deliver().await.is_empty(), "delivered once");

    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.url.path(), "/hook");
    assert_eq!(
        request.headers["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        request.headers["user-agent"],
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    );
    let signature = request.headers["stripe-signature"].to_str().unwrap();
    let timestamp = verify_signature(signature, &request.body, &registered.secret);
    assert_eq!(timestamp, h.now().timestamp());

    let event: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(event["type"], "customer.created");
    assert_eq!(event["data"]["object"]["id"], customer.as_str());
    assert_eq!(event["pending_webhooks"], 1);
    let id = event["id"].as_str().unwrap();
    let read = h.get(&format!("/v1/events/{id}")).await;
    let read = read.ok().clone();
    assert_eq!(read["pending_webhooks"], 0);
    let mut sent = event.clone();
    sent["pending_webhooks"] = json!(0);
    assert_eq!(sent, read);

    // An endpoint pinned to an API version gets events rendered with it.
    let pinned = h
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", &format!("{}/hook", server.uri())),
                ("enabled_events[]", "customer.created"),
                ("api_version", "2024-06-20"),
            ],
        )
        .await;
    let secret = pinned.ok()["secret"].as_str().unwrap().to_owned();
    h.customer().await;
    assert_eq!(h.deliver().await.len(), 2);
    let requests = server.received_requests().await.expect("recording");
    let pinned_request = requests
        .iter()
        .skip(1)
        .find(|request| {
            let header = request.headers["stripe-signature"].to_str().unwrap();
            signed_with(header, &request.body, &secret).is_some()
        })
        .expect("a delivery signed with the pinned endpoint's secret");
    let event: Value = serde_json::from_slice(&pinned_request.body).unwrap();
    assert_eq!(event["api_version"], "2024-06-20");
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_when_the_clock_reaches_the_backoff() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("try later"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    h.webhook_endpoint(&format!("{}/hook", server.uri()), &["customer.created"])
        .await;
    h.customer().await;
    let first_at = h.now();

    let attempts = h.deliver().await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["response_body"], "try later");
    assert_eq!(attempts[0]["outcome"], "pending");
    let next: DateTime<Utc> =
        serde_json::from_value(attempts[0]["next_attempt_at"].clone()).unwrap();
    assert_eq!(next, first_at + TimeDelta::minutes(1));
    let pending = h.get("/v1/events?delivery_success=false").await;
    let pending = pending.ok();
    assert_eq!(pending["data"][0]["pending_webhooks"], 1);
    assert_eq!(
        h.event_types("delivery_success=true").await,
        Vec::<String>::new()
    );

    assert!(h.deliver().await.is_empty(), "not before the backoff");
    h.advance(TimeDelta::seconds(59));
    assert!(h.deliver().await.is_empty(), "not before the backoff");
    h.advance(TimeDelta::seconds(1));
    let second = h.deliver().await;
    assert_eq!(second[0]["attempt"], 2);
    assert_eq!(second[0]["outcome"], "pending");
    let next: DateTime<Utc> = serde_json::from_value(second[0]["next_attempt_at"].clone()).unwrap();
    assert_eq!(next, h.now() + TimeDelta::minutes(2));

    h.set_time(next);
    let third = h.deliver().await;
    assert_eq!(third[0]["status_code"], 204);
    assert_eq!(third[0]["outcome"], "delivered");
    assert_eq!(
        h.event_types("delivery_success=true").await,
        ["customer.created"]
    );
    let event = h.get("/v1/events").await;
    assert_eq!(event.ok()["data"][0]["pending_webhooks"], 0);
    let deliveries = h.control_get("/webhooks/deliveries").await;
    let delivery = &deliveries.ok()["deliveries"][0];
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn deliveries_are_given_up_after_three_days() {
    let h = start().await;
    // Nothing can listen on port 0: every attempt fails to connect, whatever else the
    // tests running alongside bind.
    h.webhook_endpoint("http://127.0.0.1:0/hook", &["customer.created"])
        .await;
    h.customer().await;
    let first_at = h.now();

    let mut attempts = Vec::new();
    loop {
        let round = h.deliver().await;
        assert_eq!(round.len(), 1, "one attempt per due time");
        let attempt = round[0].clone();
        assert_eq!(attempt["status_code"], Value::Null);
        assert!(attempt["error"].as_str().is_some_and(|e| !e.is_empty()));
        attempts.push(attempt.clone());
        match attempt["next_attempt_at"].as_str() {
            Some(next) => {
                let next: DateTime<Utc> = next.parse().unwrap();
                h.set_time(next - TimeDelta::seconds(1));
                assert!(h.deliver().await.is_empty(), "early");
                h.set_time(next);
            }
            None => break,
        }
    }
    assert_eq!(attempts.len(), 15);
    assert_eq!(attempts.last().unwrap()["outcome"], "gave_up");
    let last: DateTime<Utc> = attempts.last().unwrap()["attempted_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last - first_at <= TimeDelta::days(3));
    assert!(last - first_at > TimeDelta::days(2));
    h.advance(TimeDelta::days(30));
    assert!(h.deliver().await.is_empty(), "given up");
    let given_up = h.control_get("/webhooks/deliveries?state=gave_up").await;
    let given_up = given_up.ok();
    assert_eq!(
        given_up["deliveries"][0]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        15
    );
    assert_eq!(
        h.event_types("delivery_success=false").await,
        ["customer.created"]
    );
}

#[tokio::test]
async fn events_are_resent_on_request() {
    let h = start().await;
    let server = receiver(200).await;
    let (endpoint, _) = h
        .webhook_endpoint(&format!("{}/hook", server.uri()), &["customer.created"])
        .await;
    h.customer().await;
    assert_eq!(h.deliver().await.len(), 1);
    let event = h.get("/v1/events").await;
    let event = event.ok()["data"][0]["id"].as_str().unwrap().to_owned();

    let resent = h.control_post(&format!("/events/{event}/resend")).await;
    let resent = resent.ok();
    assert_eq!(resent["deliveries"][0]["state"], "pending");
    assert_eq!(
        resent["deliveries"][0]["webhook_endpoint"],
        endpoint.as_str()
    );
    let attempts = h.deliver().await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "delivered");
    let received = received_events(&server).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[0]["id"], received[1]["id"]);

    let one = h
        .control_post(&format!(
            "/events/{event}/resend?webhook_endpoint={endpoint}"
        ))
        .await;
    assert_eq!(one.ok()["deliveries"].as_array().unwrap().len(), 1);
    h.control_post(&format!("/events/{event}/resend?webhook_endpoint=we_nope"))
        .await
        .error(400, "invalid_request_error");
    h.control_post("/events/evt_nope/resend")
        .await
        .error(404, "invalid_request_error");
    let other = h
        .webhook_endpoint(&format!("{}/hook", server.uri()), &["refund.created"])
        .await;
    h.control_post(&format!(
        "/events/{event}/resend?webhook_endpoint={}",
        other.0
    ))
    .await
    .error(400, "invalid_request_error");
}

#[tokio::test]
async fn pending_webhooks_counts_the_endpoints_still_owed_the_event() {
    let h = start().await;
    let healthy = receiver(200).await;
    let flaky = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&flaky)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&flaky)
        .await;
    h.webhook_endpoint(&format!("{}/hook", healthy.uri()), &["*"])
        .await;
    let (flaky_endpoint, _) = h
        .webhook_endpoint(&format!("{}/hook", flaky.uri()), &["customer.created"])
        .await;
    h.customer().await;
    let event = h.get("/v1/events").await;
    let event = event.ok()["data"][0].clone();
    assert_eq!(event["pending_webhooks"], 2);
    let id = event["id"].as_str().unwrap().to_owned();

    assert_eq!(h.deliver().await.len(), 2);
    let event = h.get(&format!("/v1/events/{id}")).await;
    assert_eq!(
        event.ok()["pending_webhooks"],
        1,
        "the flaky endpoint failed"
    );

    // Resent before its retry is due, the event reaches the flaky endpoint, which settles
    // what it was owed.
    h.control_post(&format!(
        "/events/{id}/resend?webhook_endpoint={flaky_endpoint}"
    ))
    .await
    .ok();
    let attempts = h.deliver().await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "delivered");
    let event = h.get(&format!("/v1/events/{id}")).await;
    assert_eq!(event.ok()["pending_webhooks"], 0);
    assert_eq!(
        h.event_types("delivery_success=true").await,
        ["customer.created"]
    );
}

#[tokio::test]
async fn disabled_and_deleted_endpoints_are_not_sent_to() {
    let h = start().await;
    let server = receiver(200).await;
    let (endpoint, _) = h
        .webhook_endpoint(&format!("{}/hook", server.uri()), &["customer.created"])
        .await;
    h.customer().await;
    h.post(
        &format!("/v1/webhook_endpoints/{endpoint}"),
        &[("disabled", "true")],
    )
    .await
    .ok();
    h.customer().await;
    assert!(h.deliver().await.is_empty(), "held while disabled");
    h.post(
        &format!("/v1/webhook_endpoints/{endpoint}"),
        &[("disabled", "false")],
    )
    .await
    .ok();
    let attempts = h.deliver().await;
    assert_eq!(
        attempts.len(),
        1,
        "only what was owed before it was disabled"
    );

    h.customer().await;
    h.send(
        h.http
            .delete(format!("{}/v1/webhook_endpoints/{endpoint}", h.base))
            .bearer_auth(SECRET),
    )
    .await
    .ok();
    assert!(h.deliver().await.is_empty());
    assert_eq!(
        h.event_types("delivery_success=false").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_control_confirmation_delivers_before_it_answers() {
    let h = start().await;
    let server = receiver(200).await;
    h.webhook_endpoint(
        &format!("{}/hook", server.uri()),
        &["payment_intent.succeeded"],
    )
    .await;
    let failing = receiver(503).await;
    h.webhook_endpoint(
        &format!("{}/hook", failing.uri()),
        &["payment_intent.succeeded"],
    )
    .await;
    let created = h
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1000"),
                ("currency", "eur"),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
        )
        .await;
    let id = created.ok()["id"].as_str().unwrap().to_owned();
    assert!(received_events(&server).await.is_empty());

    h.control(&format!("/intents/{id}/confirm"), json!({}))
        .await
        .ok();
    let received = received_events(&server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["type"], "payment_intent.succeeded");
    assert_eq!(received[0]["data"]["object"]["id"], id.as_str());
    // A failed first attempt does not hold the answer: the retry waits for its time.
    assert_eq!(received_events(&failing).await.len(), 1);
    let pending = h.control_get("/webhooks/deliveries?state=pending").await;
    let pending = pending.ok()["deliveries"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["attempts"][0]["status_code"], 503);
    assert!(h.deliver().await.is_empty());
}

#[tokio::test]
async fn the_delivery_loop_sends_without_being_asked() {
    let h = start().await;
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let hook = poem::post(poem::endpoint::make(move |request: poem::Request| {
        let sender = sender.clone();
        async move {
            let body = request.into_body().into_vec().await.unwrap_or_default();
            let _ = sender.send(body);
            poem::http::StatusCode::OK
        }
    }));
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    tokio::spawn(Server::new_with_acceptor(acceptor).run(Route::new().at("/hook", hook)));
    let registered = h
        .simulator
        .register_webhook_endpoint(&format!("http://{address}/hook"), &["customer.created"])
        .expect("registered");

    let delivery_loop = h.simulator.spawn_delivery_loop();
    let customer = h.customer().await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await
        .expect("delivered by the loop")
        .expect("a body");
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["data"]["object"]["id"], customer.as_str());
    delivery_loop.abort();
    assert!(delivery_loop.await.unwrap_err().is_cancelled());
    assert!(registered.secret.starts_with("whsec_"));
}

// ------------------------------------------------------------------ the hosted card form

/// An answer from the card form: HTML or a redirect.
struct Page {
    status: u16,
    location: Option<String>,
    html: String,
    headers: reqwest::header::HeaderMap,
}

impl Page {
    #[track_caller]
    fn redirect(&self) -> url::Url {
        assert_eq!(self.status, 303, "{}", self.html);
        url::Url::parse(self.location.as_deref().expect("Location")).expect("URL")
    }
}

fn query_of(url: &url::Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

impl Harness {
    async fn page(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|value| value.to_str().expect("ASCII").to_owned());
        let html = response.text().await.expect("body");
        Page {
            status,
            location,
            html,
            headers,
        }
    }

    async fn form(&self, client_secret: &str, return_url: &str) -> Page {
        let url = self.simulator.payment_form_url(client_secret, return_url);
        assert!(url.starts_with(&format!("{}/elements/pay?", self.base)));
        self.page(self.http.get(url)).await
    }

    async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.page(
            self.http
                .post(format!("{}/elements/{path}", self.base))
                .form(fields),
        )
        .await
    }

    /// Submits the card form for an intent with a card number.
    async fn pay(&self, client_secret: &str, number: &str, postal_code: &str) -> Page {
        self.submit(
            "pay",
            &[
                ("key", PUBLISHABLE),
                ("client_secret", client_secret),
                ("return_url", "https://shop.example.com/done?order=7"),
                ("card_number", number),
                ("card_expiry", "04 / 34"),
                ("card_cvc", "424"),
                ("postal_code", postal_code),
            ],
        )
        .await
    }

    async fn three_d_secure(&self, client_secret: &str, outcome: &str) -> Page {
        self.submit(
            "three_d_secure",
            &[
                ("key", PUBLISHABLE),
                ("client_secret", client_secret),
                ("return_url", "https://shop.example.com/done?order=7"),
                ("outcome", outcome),
            ],
        )
        .await
    }

    /// A payment intent for a customer that saves the card: its id and client secret.
    async fn intent_to_pay(&self, customer: &str) -> (String, String) {
        let created = self
            .post(
                "/v1/payment_intents",
                &[
                    ("amount", "1999"),
                    ("currency", "usd"),
                    ("customer", customer),
                    ("setup_future_usage", "off_session"),
                ],
            )
            .await;
        let created = created.ok();
        (
            created["id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test]
async fn the_card_form_pays_and_redirects_with_stripes_query() {
    let h = start().await;
    let server = receiver(200).await;
    h.webhook_endpoint(
        &format!("{}/hook", server.uri()),
        &["payment_intent.succeeded"],
    )
    .await;
    let customer = h.customer().await;
    let (id, secret) = h.intent_to_pay(&customer).await;

    let form = h
        .form(&secret, "https://shop.example.com/done?order=7")
        .await;
    assert_eq!(form.status, 200);
    assert!(
        form.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(form.headers.get("x-frame-options").is_none(), "embeddable");
    assert!(
        form.html
            .contains(r#"<form method="post" action="pay" target="_top""#)
    );
    assert!(form.html.contains("Pay $19.99"));
    assert!(form.html.contains("4242 4242 4242 4242"));
    assert!(form.html.contains("4000 0027 6000 3184"));

    let paid = h.pay(&secret, "4242 4242 4242 4242", "90210").await;
    let back = paid.redirect();
    assert_eq!(back.host_str(), Some("shop.example.com"));
    assert_eq!(back.path(), "/done");
    assert_eq!(
        query_of(&back),
        [
            ("order".to_owned(), "7".to_owned()),
            ("payment_intent".to_owned(), id.clone()),
            ("payment_intent_client_secret".to_owned(), secret.clone()),
            ("redirect_status".to_owned(), "succeeded".to_owned()),
        ]
    );
    // The merchant's webhook was attempted before the browser was sent back.
    let received = received_events(&server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["data"]["object"]["id"], id.as_str());
    assert!(
        received[0]["request"]["id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );

    let intent = h.get(&format!("/v1/payment_intents/{id}")).await;
    let intent = intent.ok();
    assert_eq!(intent["status"], "succeeded");
    let pm = intent["payment_method"].as_str().unwrap();
    let method = h.get(&format!("/v1/payment_methods/{pm}")).await;
    let method = method.ok();
    assert_eq!(
        method["customer"],
        customer.as_str(),
        "setup_future_usage saves it"
    );
    assert_eq!(method["billing_details"]["address"]["postal_code"], "90210");
    assert_eq!(method["card"]["exp_year"], 2034);

    let again = h.form(&secret, "https://shop.example.com/done").await;
    assert_eq!(again.status, 400, "{}", again.html);
}

#[tokio::test]
async fn the_card_form_shows_declines_and_escapes_what_it_echoes() {
    let h = start().await;
    let customer = h.customer().await;
    let (id, secret) = h.intent_to_pay(&customer).await;
    let declined = h
        .pay(&secret, "4000000000009995", "<script>alert(1)</script>")
        .await;
    assert_eq!(declined.status, 402);
    assert!(declined.html.contains("Your card has insufficient funds."));
    assert!(
        declined
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!declined.html.contains("<script>"));
    assert!(declined.html.contains(r#"target="_top""#));
    let intent = h.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(
        intent.ok()["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );

    let incomplete = h.pay(&secret, "4242", "1").await;
    assert_eq!(incomplete.status, 402);
    assert!(incomplete.html.contains("Your card number is incomplete."));
    let invalid = h.pay(&secret, "4242424242424241", "1").await;
    assert!(invalid.html.contains("Your card number is invalid."));
    let past = h
        .submit(
            "pay",
            &[
                ("key", PUBLISHABLE),
                ("client_secret", &secret),
                ("return_url", "https://shop.example.com/done"),
                ("card_number", "4242424242424242"),
                ("card_expiry", "01/20"),
                ("card_cvc", "123"),
                ("postal_code", "1"),
            ],
        )
        .await;
    assert!(
        past.html
            .contains("Your card&#39;s expiration year is in the past.")
    );

    // A new card after a decline succeeds.
    let paid = h.pay(&secret, "4242424242424242", "90210").await;
    assert_eq!(query_of(&paid.redirect())[3].1, "succeeded");
}

#[tokio::test]
async fn the_card_form_checks_the_key_the_client_secret_and_the_return_url() {
    let h = start().await;
    let customer = h.customer().await;
    let (id, secret) = h.intent_to_pay(&customer).await;
    let form = |query: String| {
        let h = &h;
        async move {
            h.page(h.http.get(format!("{}/elements/pay?{query}", h.base)))
                .await
        }
    };
    let return_url = "return_url=https%3A%2F%2Fshop.example.com%2F";
    let wrong_secret = form(format!(
        "key={PUBLISHABLE}&client_secret={id}_secret_wrong&{return_url}"
    ))
    .await;
    assert_eq!(wrong_secret.status, 400);
    assert!(
        wrong_secret
            .html
            .contains("does not match any associated PaymentIntent")
    );
    let wrong_key = form(format!(
        "key=pk_test_someoneelse123456789&client_secret={secret}&{return_url}"
    ))
    .await;
    assert_eq!(wrong_key.status, 401);
    let secret_key = form(format!("key={SECRET}&client_secret={secret}&{return_url}")).await;
    assert_eq!(secret_key.status, 401);
    let no_key = form(format!("client_secret={secret}&{return_url}")).await;
    assert_eq!(no_key.status, 401);
    let unknown = form(format!(
        "key={PUBLISHABLE}&client_secret=pi_%3Cb%3Ebold%3C%2Fb%3E_secret_x&{return_url}"
    ))
    .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.html.contains("pi_&lt;b&gt;bold&lt;/b&gt;"));
    assert!(!unknown.html.contains("<b>"));
    let not_a_secret = form(format!(
        "key={PUBLISHABLE}&client_secret=cus_123&{return_url}"
    ))
    .await;
    assert_eq!(not_a_secret.status, 400);
    for bad in [
        "javascript%3Aalert(1)",
        "%2Fdone",
        "ftp%3A%2F%2Fexample.com%2F",
        "",
    ] {
        let page = form(format!(
            "key={PUBLISHABLE}&client_secret={secret}&return_url={bad}"
        ))
        .await;
        assert_eq!(page.status, 400, "return_url={bad}");
    }

    // Posting the form is checked the same way, and charges nothing.
    let forged = h
        .submit(
            "pay",
            &[
                ("key", PUBLISHABLE),
                ("client_secret", &format!("{id}_secret_wrong")),
                ("return_url", "https://shop.example.com/"),
                ("card_number", "4242424242424242"),
                ("card_expiry", "04/34"),
                ("card_cvc", "424"),
                ("postal_code", "1"),
            ],
        )
        .await;
    assert_eq!(forged.status, 400);
    let intent = h.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(intent.ok()["status"], "requires_payment_method");
}

#[tokio::test]
async fn the_card_form_runs_3d_secure_to_success_or_failure() {
    let h = start().await;
    let server = receiver(200).await;
    h.webhook_endpoint(&format!("{}/hook", server.uri()), &["*"])
        .await;
    let customer = h.customer().await;
    let (id, secret) = h.intent_to_pay(&customer).await;
    let challenge = h.pay(&secret, "4000 0027 6000 3184", "10115").await;
    assert_eq!(challenge.status, 200);
    assert!(challenge.html.contains("3D Secure test page"));
    assert_eq!(challenge.html.matches(r#"target="_top""#).count(), 2);
    assert!(
        challenge
            .html
            .contains(r#"name="outcome" value="complete""#)
    );
    assert!(challenge.html.contains(r#"name="outcome" value="fail""#));

    let failed = h.three_d_secure(&secret, "fail").await;
    let back = failed.redirect();
    assert_eq!(
        query_of(&back)[1],
        ("payment_intent".to_owned(), id.clone())
    );
    assert_eq!(query_of(&back)[3].1, "failed");
    let intent = h.get(&format!("/v1/payment_intents/{id}")).await;
    let intent = intent.ok().clone();
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["code"],
        "payment_intent_authentication_failure"
    );
    let types = |received: &[Value]| -> Vec<String> {
        received
            .iter()
            .map(|event| event["type"].as_str().unwrap().to_owned())
            .collect()
    };
    // Deliveries go out side by side, so they may arrive in any order.
    let received = received_events(&server).await;
    let received_by_failure = received.len();
    assert!(types(&received).contains(&"payment_intent.payment_failed".to_owned()));
    let nothing_to_finish = h.three_d_secure(&secret, "complete").await;
    assert_eq!(nothing_to_finish.status, 400);

    let challenge = h.pay(&secret, "4000002760003184", "10115").await;
    assert!(challenge.html.contains("3D Secure test page"));
    let unknown_outcome = h.three_d_secure(&secret, "maybe").await;
    assert_eq!(unknown_outcome.status, 400, "an unknown outcome is refused");
    let completed = h.three_d_secure(&secret, "complete").await;
    assert_eq!(query_of(&completed.redirect())[3].1, "succeeded");
    let received = received_events(&server).await;
    assert!(
        types(&received[received_by_failure..]).contains(&"payment_intent.succeeded".to_owned())
    );
    let intent = h.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(intent.ok()["status"], "succeeded");
}

#[tokio::test]
async fn the_card_form_saves_a_card_for_a_setup_intent() {
    let h = start().await;
    let customer = h.customer().await;
    let created = h
        .post("/v1/setup_intents", &[("customer", &customer)])
        .await;
    let created = created.ok().clone();
    let id = created["id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let form = h.form(secret, "http://127.0.0.1:8080/account/cards").await;
    assert!(form.html.contains("Save card"));
    let saved = h.pay(secret, "5555 5555 5555 4444", "SW1A 1AA").await;
    assert_eq!(
        query_of(&saved.redirect())[1..],
        [
            ("setup_intent".to_owned(), id.to_owned()),
            ("setup_intent_client_secret".to_owned(), secret.to_owned()),
            ("redirect_status".to_owned(), "succeeded".to_owned()),
        ]
    );
    let methods = h
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await;
    assert_eq!(methods.ok()["data"][0]["card"]["brand"], "mastercard");

    let declining = h
        .post("/v1/setup_intents", &[("customer", &customer)])
        .await;
    let declining = declining.ok()["client_secret"].as_str().unwrap().to_owned();
    let declined = h.pay(&declining, "4000000000000002", "1").await;
    assert_eq!(declined.status, 402);
    assert!(declined.html.contains("Your card was declined."));
}

#[tokio::test]
async fn malformed_form_posts_are_4xx_never_5xx() {
    let h = start().await;
    let customer = h.customer().await;
    let (_, secret) = h.intent_to_pay(&customer).await;
    let huge = "a".repeat(100_000);
    for body in [
        String::new(),
        "%ff%fe=%00".to_owned(),
        "key&client_secret&return_url".to_owned(),
        format!(
            "key={PUBLISHABLE}&client_secret={secret}&return_url=https://x.example/&card_number={huge}"
        ),
        format!(
            "key={PUBLISHABLE}&client_secret={secret}&return_url=https://x.example/&card_number=%E2%82%AC%E2%82%AC&card_expiry=%00"
        ),
        format!(
            "key={PUBLISHABLE}&client_secret={secret}&return_url=https://x.example/&card_number=4242424242424242&card_expiry=99/99&card_cvc=1&postal_code=1"
        ),
    ] {
        for path in ["pay", "three_d_secure"] {
            let page = h
                .page(
                    h.http
                        .post(format!("{}/elements/{path}", h.base))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone()),
                )
                .await;
            assert!(
                (400..500).contains(&page.status),
                "{path} {}: {}",
                page.status,
                &body[..body.len().min(80)]
            );
        }
    }
}
