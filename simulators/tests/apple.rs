//! The App Store simulator over real HTTP, the way an App Store server library calls it:
//! ES256 bearer tokens, signed transactions whose `x5c` chains to the simulator's root, the
//! statuses of a subscription through renewals, failures, grace, recovery, expiry, refunds
//! and revocations on a clock the test moves, history pages, `verifyReceipt`, and
//! notifications delivered and retried.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use boxoffice_simulators::apple::{
    AppleConfig, AppleProduct, AppleSimulator, DEFAULT_GRACE_PERIOD, InAppPurchaseKey,
    NotificationUrls, SubscriptionPeriod, TOKEN_AUDIENCE,
};
use boxoffice_simulators::clock::Now;
use chrono::{DateTime, Months, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUNDLE: &str = "com.example.app";
const APP_APPLE_ID: i64 = 1_234_567_890;
const SHARED_SECRET: &str = "0123456789abcdef0123456789abcdef";
const KEY_ID: &str = "TESTKEY123";
const ISSUER: &str = "57246542-96fe-1a63-e053-0824d011072a";
const MONTHLY: &str = "com.example.app.monthly";
const START: &str = "2030-01-31T10:00:00Z";

/// A simulator alone at the root of a random loopback port, its control surface at `/sim`,
/// on a clock the test moves, sending notifications to a mock server.
struct Harness {
    http: reqwest::Client,
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: AppleSimulator,
    key: InAppPurchaseKey,
    hook: MockServer,
}

/// What came back.
struct Reply {
    status: u16,
    content_type: Option<String>,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.body);
        &self.body
    }

    #[track_caller]
    fn apple_error(&self, status: u16, code: u64) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        assert_eq!(self.body["errorCode"], code, "{}", self.body);
        assert!(self.body["errorMessage"].is_string());
    }
}

fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START)
        .expect("time")
        .with_timezone(&Utc)
}

async fn start() -> Harness {
    let hook = MockServer::start().await;
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    let base = format!("http://{address}");
    let clock = Arc::new(Mutex::new(start_time()));
    let time = clock.clone();
    let now: Now = Arc::new(move || *time.lock().expect("clock"));
    let key = InAppPurchaseKey::generate(KEY_ID, ISSUER).expect("key");
    let simulator = AppleSimulator::new(
        AppleConfig {
            public_base_url: base.clone(),
            bundle_id: BUNDLE.into(),
            app_apple_id: APP_APPLE_ID,
            bundle_version: "1.0".into(),
            shared_secret: SHARED_SECRET.into(),
            api_keys: vec![key.clone()],
            products: vec![AppleProduct {
                product_id: MONTHLY.into(),
                subscription_group: "premium".into(),
                period: SubscriptionPeriod::Months(1),
                price_milliunits: 9_990,
                currency: "USD".into(),
            }],
            notification_urls: NotificationUrls {
                production: Some(format!("{}/production", hook.uri())),
                sandbox: Some(format!("{}/sandbox", hook.uri())),
            },
            grace_period: DEFAULT_GRACE_PERIOD,
            storefront: "USA".into(),
            storefront_id: "143441".into(),
            data_dir: None,
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
        clock,
        simulator,
        key,
        hook,
    }
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    fn advance(&self, by: TimeDelta) {
        let mut clock = self.clock.lock().expect("clock");
        *clock += by;
    }

    /// An App Store Server API token as Apple's libraries make it (no `iat`).
    fn token_with(&self, kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let private = self.key.private_key_pem.as_deref().expect("private key");
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_pem(private.as_bytes()).expect("PEM"),
        )
        .expect("token")
    }

    fn token(&self) -> String {
        self.token_with(
            KEY_ID,
            json!({
                "bid": BUNDLE,
                "iss": ISSUER,
                "aud": TOKEN_AUDIENCE,
                "exp": self.now().timestamp() + 300,
            }),
        )
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"))
        };
        Reply {
            status,
            content_type,
            body,
        }
    }

    async fn api(&self, path: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(self.token()),
        )
        .await
    }

    async fn control(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/apple{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn purchase(&self, customer: &str, environment: &str) -> Value {
        self.control(
            "/purchases",
            json!({"productId": MONTHLY, "customer": customer, "environment": environment}),
        )
        .await
        .ok()
        .clone()
    }

    async fn settle(&self) -> Value {
        self.control("/settle", json!({})).await.ok().clone()
    }

    async fn verify_receipt(&self, path: &str, body: Value) -> Value {
        self.send(
            self.http
                .post(format!("{}{path}/verifyReceipt", self.base))
                .json(&body),
        )
        .await
        .ok()
        .clone()
    }

    /// The latest status of the customer's only subscription, with its decoded latest
    /// transaction and renewal info.
    async fn status_of(&self, transaction_id: &str) -> (u64, Value, Value) {
        let reply = self
            .api(&format!(
                "/sandbox/inApps/v1/subscriptions/{transaction_id}"
            ))
            .await;
        let last = &reply.ok()["data"][0]["lastTransactions"][0];
        let root = self.simulator.root_certificate_der();
        (
            last["status"].as_u64().expect("status"),
            verify_jws(root, last["signedTransactionInfo"].as_str().expect("JWS")),
            verify_jws(root, last["signedRenewalInfo"].as_str().expect("JWS")),
        )
    }
}

/// Verifies a JWS as Apple's libraries do: three certificates in `x5c`, the chain valid (as
/// of the payload's `signedDate`) up to `root`, the signature by the leaf. The payload.
fn verify_jws(root: &[u8], jws: &str) -> Value {
    let header = jsonwebtoken::decode_header(jws).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ, None, "Apple's header has no typ");
    let chain = header.x5c_der().expect("x5c base64").expect("x5c");
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(chain[2], root, "the chain ends with the trusted root");
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jws.split('.').nth(1).expect("payload"))
            .expect("base64url"),
    )
    .expect("JSON");
    let signed_millis = payload["signedDate"]
        .as_i64()
        .or_else(|| payload["receiptCreationDate"].as_i64())
        .expect("signedDate");
    let root = CertificateDer::from(root.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&root).expect("a trust anchor");
    let leaf_der = CertificateDer::from(chain[0].clone());
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).expect("a leaf certificate");
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[CertificateDer::from(chain[1].clone())],
        UnixTime::since_unix_epoch(std::time::Duration::from_millis(
            u64::try_from(signed_millis).expect("after 1970"),
        )),
        webpki::KeyUsage::required_if_present(&[]),
        None,
        None,
    )
    .expect("the chain verifies to the root");
    let spki = leaf.subject_public_key_info();
    let public = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        jws,
        &DecodingKey::from_ec_pem(public.as_bytes()).expect("leaf key"),
        &validation,
    )
    .expect("signed by the leaf")
    .claims;
    for absent in ["aud", "exp", "iat", "nbf"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }
    claims
}

fn decode_notification(root: &[u8], notification: &Value) -> Value {
    verify_jws(
        root,
        notification["signedPayload"]
            .as_str()
            .expect("signedPayload"),
    )
}

fn types(notifications: &Value) -> Vec<(String, Option<String>)> {
    notifications
        .as_array()
        .expect("notifications")
        .iter()
        .map(|notification| {
            (
                notification["notificationType"]
                    .as_str()
                    .expect("type")
                    .to_owned(),
                notification["subtype"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn kind(notification_type: &str, subtype: Option<&str>) -> (String, Option<String>) {
    (notification_type.to_owned(), subtype.map(str::to_owned))
}

async fn accept_notifications(hook: &MockServer) {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(hook)
        .await;
}

#[tokio::test]
async fn a_purchase_is_signed_as_the_app_store_signs_and_chains_to_the_root() {
    let harness = start().await;
    accept_notifications(&harness.hook).await;
    let token = uuid::Uuid::new_v4().to_string();
    let purchase = harness
        .control(
            "/purchases",
            json!({"productId": MONTHLY, "customer": "alice", "bundleId": BUNDLE,
                   "appAccountToken": token}),
        )
        .await
        .ok()
        .clone();
    let transaction_id = purchase["transactionId"].as_str().expect("id").to_owned();
    assert_eq!(purchase["originalTransactionId"], transaction_id);
    assert_eq!(purchase["environment"], "Sandbox");

    let root_der = harness
        .http
        .get(format!("{}/root.cer", harness.base))
        .send()
        .await
        .expect("root.cer");
    assert_eq!(root_der.headers()["content-type"], "application/pkix-cert");
    let root_der = root_der.bytes().await.expect("DER").to_vec();
    assert_eq!(root_der, harness.simulator.root_certificate_der());
    let root_pem = harness
        .http
        .get(format!("{}/root.pem", harness.base))
        .send()
        .await
        .expect("root.pem")
        .text()
        .await
        .expect("PEM");
    assert_eq!(pem::parse(root_pem).expect("PEM").contents(), root_der);

    let reply = harness
        .api(&format!("/sandbox/inApps/v1/transactions/{transaction_id}"))
        .await;
    let jws = reply.ok()["signedTransactionInfo"].as_str().expect("JWS");
    let transaction = verify_jws(&root_der, jws);
    let start = start_time();
    let expected = json!({
        "transactionId": transaction_id,
        "originalTransactionId": transaction_id,
        "webOrderLineItemId": purchase["webOrderLineItemId"],
        "bundleId": BUNDLE,
        "productId": MONTHLY,
        "subscriptionGroupIdentifier": "premium",
        "purchaseDate": start.timestamp_millis(),
        "originalPurchaseDate": start.timestamp_millis(),
        "expiresDate": (start + Months::new(1)).timestamp_millis(),
        "quantity": 1,
        "type": "Auto-Renewable Subscription",
        "appAccountToken": token,
        "inAppOwnershipType": "PURCHASED",
        "signedDate": start.timestamp_millis(),
        "environment": "Sandbox",
        "transactionReason": "PURCHASE",
        "storefront": "USA",
        "storefrontId": "143441",
        "price": 9990,
        "currency": "USD",
        "appTransactionId": transaction["appTransactionId"],
    });
    assert_eq!(transaction, expected);
    assert!(transaction["appTransactionId"].is_string());
    // What the app got from StoreKit is the same transaction.
    assert_eq!(
        verify_jws(
            &root_der,
            purchase["signedTransaction"].as_str().expect("JWS")
        ),
        expected
    );
    let renewal = verify_jws(
        &root_der,
        purchase["signedRenewalInfo"].as_str().expect("JWS"),
    );
    assert_eq!(renewal["autoRenewStatus"], 1);
    assert_eq!(renewal["autoRenewProductId"], MONTHLY);
    assert_eq!(renewal["renewalDate"], expected["expiresDate"]);
    assert_eq!(renewal["renewalPrice"], 9990);

    // A sandbox transaction does not exist in production.
    harness
        .api(&format!("/inApps/v1/transactions/{transaction_id}"))
        .await
        .apple_error(404, 4_040_010);
    // The SUBSCRIBED notification was attempted before the purchase answered.
    let notification = &purchase["notifications"][0];
    assert_eq!(notification["notificationType"], "SUBSCRIBED");
    assert_eq!(notification["state"], "delivered");
    let decoded = decode_notification(&root_der, notification);
    assert_eq!(decoded["subtype"], "INITIAL_BUY");
    assert_eq!(decoded["version"], "2.0");
    assert_eq!(decoded["data"]["bundleId"], BUNDLE);
    assert_eq!(decoded["data"]["environment"], "Sandbox");
    assert_eq!(decoded["data"]["status"], 1);
    assert!(
        decoded["data"].get("appAppleId").is_none(),
        "no appAppleId in the sandbox"
    );
    // In production, the app's Apple id is there.
    let production = harness.purchase("alice", "Production").await;
    let decoded = decode_notification(&root_der, &production["notifications"][0]);
    assert_eq!(decoded["data"]["appAppleId"], APP_APPLE_ID);
    assert_eq!(decoded["data"]["environment"], "Production");
    let statuses = harness
        .api(&format!(
            "/inApps/v1/subscriptions/{}",
            production["transactionId"].as_str().expect("id")
        ))
        .await;
    assert_eq!(statuses.ok()["appAppleId"], APP_APPLE_ID);
    assert_eq!(statuses.ok()["environment"], "Production");
}

#[tokio::test]
async fn statuses_follow_renewals_failures_grace_recovery_expiry_refunds_and_revocations() {
    let harness = start().await;
    accept_notifications(&harness.hook).await;
    let root = harness.simulator.root_certificate_der().to_vec();
    let purchase = harness.purchase("bob", "Sandbox").await;
    let first = purchase["transactionId"].as_str().expect("id").to_owned();
    let subscription = format!("/subscriptions/{first}");

    // Renewal at the expiry.
    harness.advance(TimeDelta::days(31));
    let settled = harness.settle().await;
    assert_eq!(types(&settled["notifications"]), [kind("DID_RENEW", None)]);
    assert_eq!(settled["deliveries"]["attempts"][0]["statusCode"], 200);
    let (status, latest, _) = harness.status_of(&first).await;
    assert_eq!(status, 1);
    assert_eq!(latest["originalTransactionId"], first);
    assert_ne!(latest["transactionId"], first);
    assert_eq!(latest["transactionReason"], "RENEWAL");
    assert_ne!(latest["webOrderLineItemId"], purchase["webOrderLineItemId"]);
    assert_eq!(
        latest["purchaseDate"],
        (start_time() + Months::new(1)).timestamp_millis(),
        "renewed where the purchase expired"
    );

    // A failed renewal with a grace period, which then expires into billing retry.
    harness
        .control(
            &format!("{subscription}/fail_next_renewal"),
            json!({"failure": "gracePeriod"}),
        )
        .await
        .ok();
    harness.advance(TimeDelta::days(29));
    let settled = harness.settle().await;
    assert_eq!(
        types(&settled["notifications"]),
        [kind("DID_FAIL_TO_RENEW", Some("GRACE_PERIOD"))]
    );
    let (status, _, renewal) = harness.status_of(&first).await;
    assert_eq!(status, 4);
    assert_eq!(renewal["isInBillingRetryPeriod"], true);
    assert!(renewal["gracePeriodExpiresDate"].is_i64());
    harness.advance(TimeDelta::days(16));
    let settled = harness.settle().await;
    assert_eq!(
        types(&settled["notifications"]),
        [kind("GRACE_PERIOD_EXPIRED", None)]
    );
    assert_eq!(harness.status_of(&first).await.0, 3);

    // The billing recovers.
    let recovered = harness
        .control(&format!("{subscription}/recover"), json!({}))
        .await;
    let recovered = recovered.ok();
    assert_eq!(
        types(&recovered["notifications"]),
        [kind("DID_RENEW", Some("BILLING_RECOVERY"))]
    );
    assert_eq!(recovered["subscription"]["status"], 1);
    assert_eq!(harness.status_of(&first).await.0, 1);

    // Auto-renew off, then the period ends.
    let disabled = harness
        .control(
            &format!("{subscription}/auto_renew"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(
        types(&disabled.ok()["notifications"]),
        [kind(
            "DID_CHANGE_RENEWAL_STATUS",
            Some("AUTO_RENEW_DISABLED")
        )]
    );
    let unchanged = harness
        .control(
            &format!("{subscription}/auto_renew"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(unchanged.status, 409);
    assert_eq!(unchanged.body["error"], "conflict");
    harness.advance(TimeDelta::days(32));
    let settled = harness.settle().await;
    assert_eq!(
        types(&settled["notifications"]),
        [kind("EXPIRED", Some("VOLUNTARY"))]
    );
    let (status, _, renewal) = harness.status_of(&first).await;
    assert_eq!(status, 2);
    assert_eq!(renewal["expirationIntent"], 1);
    assert_eq!(renewal["autoRenewStatus"], 0);

    // Bought again: the same subscription, resubscribed; then refunded.
    let again = harness.purchase("bob", "Sandbox").await;
    assert_eq!(again["originalTransactionId"], first);
    let decoded = decode_notification(&root, &again["notifications"][0]);
    assert_eq!(decoded["subtype"], "RESUBSCRIBE");
    let latest = again["transactionId"].as_str().expect("id");
    let refunded = harness
        .control(
            &format!("/transactions/{latest}/refund"),
            json!({"reason": "appIssue"}),
        )
        .await;
    assert_eq!(
        types(&refunded.ok()["notifications"]),
        [kind("REFUND", None)]
    );
    let (status, transaction, _) = harness.status_of(&first).await;
    assert_eq!(status, 5);
    assert_eq!(transaction["revocationReason"], 1);
    assert_eq!(
        transaction["revocationDate"],
        harness.now().timestamp_millis()
    );

    // Billing retry without a grace period, run out by the store.
    let carol = harness.purchase("carol", "Sandbox").await;
    let carol_id = carol["transactionId"].as_str().expect("id").to_owned();
    harness
        .control(
            &format!("/subscriptions/{carol_id}/fail_next_renewal"),
            json!({}),
        )
        .await
        .ok();
    harness.advance(TimeDelta::days(31));
    let settled = harness.settle().await;
    assert_eq!(
        types(&settled["notifications"]),
        [kind("DID_FAIL_TO_RENEW", None)]
    );
    assert_eq!(harness.status_of(&carol_id).await.0, 3);
    let expired = harness
        .control(&format!("/subscriptions/{carol_id}/expire"), json!({}))
        .await;
    assert_eq!(
        types(&expired.ok()["notifications"]),
        [kind("EXPIRED", Some("BILLING_RETRY"))]
    );
    let (status, _, renewal) = harness.status_of(&carol_id).await;
    assert_eq!(status, 2);
    assert_eq!(renewal["expirationIntent"], 2);

    // Revoked.
    let dave = harness.purchase("dave", "Sandbox").await;
    let dave_id = dave["transactionId"].as_str().expect("id");
    let revoked = harness
        .control(&format!("/transactions/{dave_id}/revoke"), json!({}))
        .await;
    assert_eq!(
        types(&revoked.ok()["notifications"]),
        [kind("REVOKE", None)]
    );
    assert_eq!(harness.status_of(dave_id).await.0, 5);

    // Control refusals are 4xx.
    assert_eq!(
        harness
            .control("/subscriptions/2999/recover", json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        harness
            .control("/purchases", json!({"productId": "nope"}))
            .await
            .status,
        400
    );
    assert_eq!(
        harness
            .control(
                "/purchases",
                json!({"productId": MONTHLY, "bundleId": "com.other"})
            )
            .await
            .status,
        400
    );
    assert_eq!(
        harness
            .control("/purchases", json!({"bad": 1}))
            .await
            .status,
        400
    );
    assert_eq!(
        harness
            .control(&format!("/subscriptions/{dave_id}/recover"), json!({}))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn history_pages_twenty_transactions_at_a_time() {
    let harness = start().await;
    accept_notifications(&harness.hook).await;
    let purchase = harness.purchase("erin", "Sandbox").await;
    let id = purchase["transactionId"].as_str().expect("id").to_owned();
    harness.advance(TimeDelta::days(45 * 31));
    let settled = harness.settle().await;
    assert_eq!(settled["notifications"].as_array().expect("made").len(), 45);
    let root = harness.simulator.root_certificate_der().to_vec();

    let mut seen = Vec::new();
    let mut revision: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let path = match &revision {
            Some(revision) => format!("/sandbox/inApps/v2/history/{id}?revision={revision}"),
            None => format!("/sandbox/inApps/v2/history/{id}"),
        };
        let reply = harness.api(&path).await;
        let page = reply.ok();
        assert_eq!(page["bundleId"], BUNDLE);
        assert_eq!(page["environment"], "Sandbox");
        let signed = page["signedTransactions"].as_array().expect("page");
        pages.push(signed.len());
        for jws in signed {
            let transaction = verify_jws(&root, jws.as_str().expect("JWS"));
            assert_eq!(transaction["originalTransactionId"], id);
            seen.push(transaction["purchaseDate"].as_i64().expect("date"));
        }
        revision = Some(page["revision"].as_str().expect("revision").to_owned());
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(pages, [20, 20, 6]);
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "oldest first, no repeats"
    );

    let newest = harness
        .api(&format!(
            "/sandbox/inApps/v1/history/{id}?sort=DESCENDING&revoked=False"
        ))
        .await;
    let first = verify_jws(
        &root,
        newest.ok()["signedTransactions"][0].as_str().expect("JWS"),
    );
    assert_eq!(first["purchaseDate"].as_i64(), seen.last().copied());
    let revoked = harness
        .api(&format!("/sandbox/inApps/v2/history/{id}?revoked=True"))
        .await;
    assert_eq!(revoked.ok()["signedTransactions"], json!([]));
    harness
        .api(&format!(
            "/sandbox/inApps/v2/history/{id}?productType=BOGUS"
        ))
        .await
        .apple_error(400, 4_000_022);
    harness
        .api(&format!("/sandbox/inApps/v2/history/{id}?revision=garbage"))
        .await
        .apple_error(400, 4_000_005);
    harness
        .api(&format!(
            "/sandbox/inApps/v2/history/{id}?startDate=yesterday"
        ))
        .await
        .apple_error(400, 4_000_015);
}

#[tokio::test]
async fn verify_receipt_answers_with_apples_statuses() {
    let harness = start().await;
    accept_notifications(&harness.hook).await;
    let purchase = harness.purchase("frank", "Sandbox").await;
    let receipt = purchase["appReceipt"].as_str().expect("receipt").to_owned();
    let id = purchase["transactionId"].as_str().expect("id");
    let body =
        |receipt: &str, password: &str| json!({"receipt-data": receipt, "password": password});

    let valid = harness
        .verify_receipt("/sandbox", body(&receipt, SHARED_SECRET))
        .await;
    assert_eq!(valid["status"], 0);
    assert_eq!(valid["environment"], "Sandbox");
    assert_eq!(valid["receipt"]["bundle_id"], BUNDLE);
    assert_eq!(valid["receipt"]["receipt_type"], "ProductionSandbox");
    assert_eq!(valid["receipt"]["in_app"][0]["transaction_id"], id);
    let latest = &valid["latest_receipt_info"][0];
    assert_eq!(latest["transaction_id"], id);
    assert_eq!(latest["original_transaction_id"], id);
    assert_eq!(latest["product_id"], MONTHLY);
    assert_eq!(
        latest["purchase_date_ms"],
        start_time().timestamp_millis().to_string()
    );
    assert_eq!(
        latest["expires_date_ms"],
        (start_time() + Months::new(1))
            .timestamp_millis()
            .to_string()
    );
    assert_eq!(latest["is_trial_period"], "false");
    assert_eq!(latest["purchase_date"], "2030-01-31 10:00:00 Etc/GMT");
    assert_eq!(valid["pending_renewal_info"][0]["auto_renew_status"], "1");
    assert!(valid["latest_receipt"].is_string());

    // After a renewal the receipt shows both, or only the latest when asked.
    harness.advance(TimeDelta::days(31));
    harness.settle().await;
    let all = harness
        .verify_receipt("/sandbox", body(&receipt, SHARED_SECRET))
        .await;
    assert_eq!(all["latest_receipt_info"].as_array().expect("all").len(), 2);
    assert_eq!(
        all["receipt"]["in_app"].as_array().expect("in_app").len(),
        1
    );
    let newest = harness
        .verify_receipt(
            "/sandbox",
            json!({"receipt-data": receipt, "password": SHARED_SECRET,
                   "exclude-old-transactions": true}),
        )
        .await;
    let newest = newest["latest_receipt_info"].as_array().expect("latest");
    assert_eq!(newest.len(), 1);
    assert_ne!(newest[0]["transaction_id"], id);

    let status = |answer: Value| answer["status"].as_u64().expect("status");
    assert_eq!(
        status(
            harness
                .verify_receipt("/sandbox", body(&receipt, "wrong"))
                .await
        ),
        21_004
    );
    assert_eq!(
        status(
            harness
                .verify_receipt("", body(&receipt, SHARED_SECRET))
                .await
        ),
        21_007
    );
    let production = harness.purchase("frank", "Production").await;
    let production_receipt = production["appReceipt"].as_str().expect("receipt");
    assert_eq!(
        status(
            harness
                .verify_receipt("/sandbox", body(production_receipt, SHARED_SECRET))
                .await
        ),
        21_008
    );
    assert_eq!(
        status(
            harness
                .verify_receipt("", body(production_receipt, SHARED_SECRET))
                .await
        ),
        0
    );
    assert_eq!(
        status(
            harness
                .verify_receipt("/sandbox", body("not base64 at all!", SHARED_SECRET))
                .await
        ),
        21_002
    );
    // Changing the receipt breaks its signature.
    let jws = String::from_utf8(STANDARD.decode(&receipt).expect("base64")).expect("text");
    let (signed, _) = jws.rsplit_once('.').expect("JWS");
    let forged = STANDARD.encode(format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 64])));
    assert_eq!(
        status(
            harness
                .verify_receipt("/sandbox", body(&forged, SHARED_SECRET))
                .await
        ),
        21_003
    );
    let unreadable = harness
        .send(
            harness
                .http
                .post(format!("{}/sandbox/verifyReceipt", harness.base))
                .body("{not json"),
        )
        .await;
    assert_eq!(unreadable.ok()["status"], 21_000);
}

#[tokio::test]
async fn tokens_are_checked_and_errors_have_apples_shape() {
    let harness = start().await;
    accept_notifications(&harness.hook).await;
    let purchase = harness.purchase("grace", "Sandbox").await;
    let id = purchase["transactionId"].as_str().expect("id");
    let path = format!("{}/sandbox/inApps/v1/transactions/{id}", harness.base);

    let missing = harness.send(harness.http.get(&path)).await;
    assert_eq!(missing.status, 401);
    let claims =
        |exp: i64, bid: &str| json!({"bid": bid, "iss": ISSUER, "aud": TOKEN_AUDIENCE, "exp": exp});
    let now = harness.now().timestamp();
    for (kid, claims) in [
        ("OTHERKEY12", claims(now + 300, BUNDLE)),
        (KEY_ID, claims(now - 1, BUNDLE)),
        (KEY_ID, claims(now + 2 * 3600, BUNDLE)),
        (KEY_ID, claims(now + 300, "com.example.other")),
    ] {
        let token = harness.token_with(kid, claims.clone());
        let refused = harness
            .send(harness.http.get(&path).bearer_auth(token))
            .await;
        assert_eq!(refused.status, 401, "{kid} {claims}");
        assert_eq!(refused.body, Value::Null, "a plain 401");
    }
    assert_eq!(
        harness
            .send(harness.http.get(&path).bearer_auth(harness.token()))
            .await
            .status,
        200
    );
    // A token expires on the simulator's clock.
    let token = harness.token();
    harness.advance(TimeDelta::minutes(6));
    assert_eq!(
        harness
            .send(harness.http.get(&path).bearer_auth(token))
            .await
            .status,
        401
    );

    harness
        .api("/sandbox/inApps/v1/transactions/2999999999999999")
        .await
        .apple_error(404, 4_040_010);
    harness
        .api("/sandbox/inApps/v1/subscriptions/2999999999999999")
        .await
        .apple_error(404, 4_040_010);
    harness
        .api("/sandbox/inApps/v1/transactions/not-an-id")
        .await
        .apple_error(400, 4_000_006);
    harness
        .api(&format!("/sandbox/inApps/v1/subscriptions/{id}?status=9"))
        .await
        .apple_error(400, 4_000_031);
}

#[tokio::test]
async fn notifications_have_unique_uuids_and_are_retried_on_the_clock() {
    let harness = start().await;
    // The first attempt fails, later ones succeed.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&harness.hook)
        .await;
    accept_notifications(&harness.hook).await;
    let root = harness.simulator.root_certificate_der().to_vec();

    let purchase = harness.purchase("heidi", "Sandbox").await;
    let attempt = &purchase["notifications"][0]["attempts"][0];
    assert_eq!(attempt["statusCode"], 500);
    assert_eq!(attempt["outcome"], "pending");
    assert_eq!(
        attempt["sendAttemptResult"],
        "UNSUCCESSFUL_HTTP_RESPONSE_CODE"
    );
    let retry_at = (harness.now() + TimeDelta::hours(1)).to_rfc3339();
    let next: DateTime<Utc> = attempt["nextAttemptAt"]
        .as_str()
        .expect("a retry")
        .parse()
        .expect("time");
    assert_eq!(next.to_rfc3339(), retry_at);

    // Not due yet; then due an hour later.
    let early = harness.control("/notifications/deliver", json!({})).await;
    assert_eq!(early.ok()["attempts"], json!([]));
    harness.advance(TimeDelta::hours(1));
    let retried = harness.control("/notifications/deliver", json!({})).await;
    let retried = &retried.ok()["attempts"][0];
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["outcome"], "delivered");

    let id = purchase["originalTransactionId"].as_str().expect("id");
    for enabled in [false, true] {
        harness
            .control(
                &format!("/subscriptions/{id}/auto_renew"),
                json!({"enabled": enabled}),
            )
            .await
            .ok();
    }
    // Apple's test notification, through the API.
    let test = harness
        .send(
            harness
                .http
                .post(format!(
                    "{}/sandbox/inApps/v1/notifications/test",
                    harness.base
                ))
                .bearer_auth(harness.token()),
        )
        .await;
    let token = test.ok()["testNotificationToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let status = harness
        .api(&format!("/sandbox/inApps/v1/notifications/test/{token}"))
        .await;
    assert_eq!(
        status.ok()["sendAttempts"][0]["sendAttemptResult"],
        "SUCCESS"
    );

    let received = harness.hook.received_requests().await.expect("recorded");
    let mut uuids = Vec::new();
    let mut kinds = Vec::new();
    for request in &received {
        assert_eq!(request.url.path(), "/sandbox");
        assert_eq!(
            request
                .headers
                .get("content-type")
                .map(|value| value.as_bytes()),
            Some(&b"application/json"[..])
        );
        let body: Value = serde_json::from_slice(&request.body).expect("JSON");
        let decoded = decode_notification(&root, &body);
        uuids.push(
            decoded["notificationUUID"]
                .as_str()
                .expect("uuid")
                .to_owned(),
        );
        kinds.push(
            decoded["notificationType"]
                .as_str()
                .expect("type")
                .to_owned(),
        );
    }
    assert_eq!(
        kinds,
        [
            "SUBSCRIBED",
            "SUBSCRIBED",
            "DID_CHANGE_RENEWAL_STATUS",
            "DID_CHANGE_RENEWAL_STATUS",
            "TEST"
        ]
    );
    assert_eq!(uuids[0], uuids[1], "a retry sends the same notification");
    let mut distinct = uuids[1..].to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "each notification has its own UUID");

    // The delivery log and Apple's notification history tell the same.
    let log = harness
        .send(
            harness
                .http
                .get(format!("{}/sim/control/apple/notifications", harness.base)),
        )
        .await;
    let log = log.ok()["notifications"].as_array().expect("log").clone();
    assert_eq!(log.len(), 4);
    assert_eq!(log[3]["attempts"].as_array().expect("attempts").len(), 2);
    let history = harness
        .send(
            harness
                .http
                .post(format!(
                    "{}/sandbox/inApps/v1/notifications/history",
                    harness.base
                ))
                .bearer_auth(harness.token())
                .json(&json!({
                    "startDate": start_time().timestamp_millis(),
                    "endDate": harness.now().timestamp_millis() + 1,
                    "transactionId": id,
                })),
        )
        .await;
    let history = history.ok()["notificationHistory"]
        .as_array()
        .expect("history")
        .clone();
    assert_eq!(
        history.len(),
        3,
        "the customer's notifications, not the test's"
    );
    assert_eq!(
        history[0]["sendAttempts"]
            .as_array()
            .expect("attempts")
            .len(),
        2
    );
}
