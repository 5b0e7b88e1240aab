//! The Stripe simulator over real HTTP, the way Stripe's client libraries call it: form
//! bodies with brackets, bearer keys, idempotency keys; and its control surface.

use std::sync::{Arc, Mutex};

use boxoffice_simulators::clock::Now;
use boxoffice_simulators::stripe::{StripeConfig, StripeSimulator, openapi_json};
use chrono::{DateTime, Utc};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};

const SECRET: &str = "sk_test_51BoxOfficeSimulatorSecretKey0000";
const PUBLISHABLE: &str = "pk_test_51BoxOfficeSimulatorPublishable00";
const START: &str = "2030-01-01T00:00:00Z";

/// A simulator alone at the root of a random loopback port, its control surface at `/sim`.
struct Harness {
    http: reqwest::Client,
    base: String,
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
    let time = Arc::new(Mutex::new(start));
    let now: Now = Arc::new(move || *time.lock().expect("clock"));
    let simulator = StripeSimulator::new(
        StripeConfig {
            public_base_url: base.clone(),
            secret_key: SECRET.into(),
            publishable_key: PUBLISHABLE.into(),
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
        http: reqwest::Client::new(),
        base,
    }
}

impl Harness {
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
