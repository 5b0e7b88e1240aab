//! Pinned response bodies and published documents. Ids, tokens, times and the server's
//! random port are redacted, so a snapshot changes only when the contract does.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test -p boxoffice-conformance
//! --test snapshots`, review the diff of `tests/snapshots/`, commit it. CI runs with
//! `CI=true`, where a missing or different snapshot fails.

mod common;

use common::TestServer;
use conformance::cloudpay::Credential;
use conformance::context::Customer;
use conformance::http::Exchange;
use conformance::{Context, Target};
use reqwest::Method;
use serde_json::{Value, json};

const ENTRY_ID: &str = "0_snapshot";

struct Fixture {
    server: TestServer,
    ctx: Context,
}

impl Fixture {
    async fn start() -> Self {
        let server = TestServer::start().await;
        let target = Target::discover(server.base_url(), None)
            .await
            .expect("the simulator describes itself");
        Fixture {
            ctx: Context::new(target),
            server,
        }
    }

    /// The first seeded test user: the same email and names on every run.
    fn alice(&self) -> Customer {
        let user = &self.ctx.config().test_users[0];
        Customer {
            email: user.email.clone(),
            password: user.password.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            fresh: false,
        }
    }

    /// The body as JSON, with this server's address made portable.
    fn body(&self, exchange: &Exchange) -> Value {
        let text = exchange
            .body
            .replace(self.server.base_url(), "http://[server]");
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: not JSON: {error}", exchange.evidence()))
    }

    /// `{"status": 403, "body": …}`: the status pinned with the body.
    fn answer(&self, exchange: &Exchange) -> Value {
        json!({"status": exchange.status, "body": self.body(exchange)})
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

async fn send(request: conformance::cloudpay::CloudPayRequest) -> Exchange {
    request.send().await.expect("the server answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_models() {
    let fixture = Fixture::start().await;
    let ctx = &fixture.ctx;
    let alice = fixture.alice();
    let started = send(ctx.cloudpay.start_session(&alice.login()).location("IE")).await;
    let session = ctx.start_session(&alice).await.expect("a second session");
    let by_query = Credential::SessionId(
        fixture.body(&started)["AuthenticationToken"]
            .as_str()
            .expect("AuthenticationToken")
            .to_owned(),
    );
    let presence = ctx
        .cloudpay
        .presence(Some(&by_query))
        .await
        .expect("presence");
    let ksession = send(
        ctx.cloudpay
            .get("/api/v1/session/ksession")
            .query("entryid", ENTRY_ID)
            .credential(&by_query),
    )
    .await;
    let terminated = ctx.cloudpay.terminate(&by_query).await.expect("terminate");
    let anonymous = ctx.cloudpay.presence(None).await.expect("presence");
    ctx.end_quietly(&session).await;

    let answers = json!({
        "start (location IE)": fixture.answer(&started),
        "presence": fixture.answer(&presence),
        "ksession without subscription": fixture.answer(&ksession),
        "terminate": fixture.answer(&terminated),
        "presence without credential": fixture.answer(&anonymous),
    });
    insta::assert_json_snapshot!("session", answers, {
        ".**.UtcNow" => "[utc-now millis]",
        ".**.AuthenticationToken" => "[session id]",
        ".**.CurrentCustomerSession.Id" => "[session id]",
        ".**.CurrentCustomerSession.CustomerId" => "[customer id]",
    });
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_lists() {
    let fixture = Fixture::start().await;
    let ctx = &fixture.ctx;
    let fixtures = &ctx.config().fixtures;
    let geo = fixtures
        .geo_restricted_package_id
        .as_deref()
        .expect("a geo fixture");
    let web = send(ctx.cloudpay.get("/api/v1/package").location("GB")).await;
    let iap = send(ctx.cloudpay.get("/api/v1/package").query("type", "iap")).await;
    let one = send(
        ctx.cloudpay
            .get(&format!("/api/v1/package/{geo}"))
            .location("IE"),
    )
    .await;
    let denied = send(
        ctx.cloudpay
            .get(&format!("/api/v1/package/{geo}"))
            .location("US"),
    )
    .await;
    let answers = json!({
        "web (location GB)": fixture.answer(&web),
        "iap": fixture.answer(&iap),
        "geo-restricted by id (location IE)": fixture.answer(&one),
        "geo-restricted by id (location US)": fixture.answer(&denied),
    });
    insta::assert_json_snapshot!("packages", answers);
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_bodies() {
    let fixture = Fixture::start().await;
    let ctx = &fixture.ctx;
    let alice = fixture.alice();
    let session = ctx.start_session(&alice).await.expect("a session");
    let credential = session.by_query();
    let read = ctx
        .cloudpay
        .account(Some(&credential))
        .await
        .expect("account");
    let fields = fixture.body(&read)["CustomFields"].clone();
    let favourite = fields
        .as_array()
        .and_then(|fields| fields.iter().find(|field| field["Required"] == false))
        .cloned()
        .expect("an optional custom field");
    let patched = ctx
        .cloudpay
        .patch_account(
            &credential,
            &json!({
                "FirstName": "Alicia",
                "CustomFields": [{
                    "Id": favourite["Id"],
                    "Label": favourite["Label"],
                    "Required": false,
                    "Value": "Rovers",
                }],
            }),
        )
        .await
        .expect("patch");
    let resume = send(ctx.cloudpay.get("/api/v1/resume").credential(&credential)).await;
    let drm = send(ctx.cloudpay.get(&format!(
        "/api/v1/validatedrm/{ENTRY_ID}/{}",
        session.customer_id
    )))
    .await;
    ctx.end_quietly(&session).await;
    let answers = json!({
        "account": fixture.answer(&read),
        "patch FirstName and a custom field": fixture.answer(&patched),
        "resume": fixture.answer(&resume),
        "validatedrm (no subscription)": fixture.answer(&drm),
    });
    insta::assert_json_snapshot!("account", answers);
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies() {
    let fixture = Fixture::start().await;
    let ctx = &fixture.ctx;
    let alice = fixture.alice();
    let no_credential = ctx.cloudpay.account(None).await.expect("account");
    let garbage = ctx
        .cloudpay
        .account(Some(&Credential::JwtToken("not-a-jwt".into())))
        .await
        .expect("account");
    let wrong_password = send(ctx.cloudpay.start_session(
        &conformance::cloudpay::Login::Password {
            email: &alice.email,
            password: "Wrong-Passw0rd!",
        },
    ))
    .await;
    let mut sessions = Vec::new();
    for _ in 0..ctx.config().device_limit {
        sessions.push(ctx.start_session(&alice).await.expect("a session"));
    }
    let locked = send(ctx.cloudpay.start_session(&alice.login())).await;
    let credential = sessions[0].by_query();
    let malformed = send(
        ctx.cloudpay
            .request(Method::PATCH, "/api/v1/account")
            .credential(&credential)
            .body("application/json", b"{\"FirstName\": ".to_vec()),
    )
    .await;
    let email_change = ctx
        .cloudpay
        .patch_account(&credential, &json!({"EmailAddress": "someone@example.com"}))
        .await
        .expect("patch");
    let oversize = send(
        ctx.cloudpay
            .request(Method::PATCH, "/api/v1/account")
            .credential(&credential)
            .header("connection", "close")
            .body("application/json", vec![b' '; 300 * 1024]),
    )
    .await;
    for session in &sessions {
        ctx.end_quietly(session).await;
    }
    let bad_location = send(ctx.cloudpay.get("/api/v1/package").location("UK")).await;
    let bad_type = send(ctx.cloudpay.get("/api/v1/package").query("type", "bogus")).await;
    let unknown_package = send(ctx.cloudpay.get("/api/v1/package/no-such-package")).await;
    let unknown_script = send(ctx.cloudpay.get("/js/0.0.0/stream-payments.js")).await;
    let answers = json!({
        "account without credential": fixture.answer(&no_credential),
        "account with a garbage apijwttoken": fixture.answer(&garbage),
        "session start with a wrong password": fixture.answer(&wrong_password),
        "session start beyond the device limit": fixture.answer(&locked),
        "account PATCH with malformed JSON": fixture.answer(&malformed),
        "account PATCH changing the email": fixture.answer(&email_change),
        "account PATCH over 256 KiB": fixture.answer(&oversize),
        "packages with location UK": fixture.answer(&bad_location),
        "packages with type bogus": fixture.answer(&bad_type),
        "unknown package": fixture.answer(&unknown_package),
        "unknown script version": fixture.answer(&unknown_script),
    });
    insta::assert_json_snapshot!("errors", answers);
    fixture.stop().await;
}

#[tokio::test]
async fn openapi_documents() {
    let documents = boxoffice::sim::documents()
        .await
        .expect("the documents generate");
    assert!(!documents.is_empty());
    for (file, document) in documents {
        let name = format!("openapi-{}", file.trim_end_matches(".json"));
        insta::assert_snapshot!(name, document);
    }
}
