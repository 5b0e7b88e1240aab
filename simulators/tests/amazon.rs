//! The Amazon Appstore simulator over real HTTP, the way a developer's server sees it: RVS
//! `verifyReceiptId` in production and the RVS Cloud Sandbox with Amazon's fields and
//! statuses, renewals on a clock the test moves, and Real-time Notifications delivered as SNS
//! messages whose signatures the test checks by SNS's rules with its own code. The control
//! surface plays the customer, the store and the Developer Console.

use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use boxoffice_simulators::amazon::{
    AmazonConfig, AmazonPeriod, AmazonSimulator, AmazonSubscriptionProduct, AmazonTerm,
    AmazonTermSku, EXAMPLE_TOPIC_ARN, SnsSignatureVersion, openapi_json,
};
use boxoffice_simulators::clock::Now;
use chrono::{DateTime, TimeDelta, Utc};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};
use x509_parser::prelude::{FromDer, X509Certificate};

const PACKAGE: &str = "com.boxoffice.app";
/// Shaped like the Developer Console's shared keys.
const SECRET: &str =
    "2:smXBjZkWCxDMSBvQ8HBGsUS1PK3jvVc8tuTjLNfPHfYAga6WaDzXJPoWpfemXaHg:iEzHzPjJ-XwRdZ4b4e7Hxw==";
const PARENT: &str = "com.boxoffice.premium";
const MONTHLY: &str = "com.boxoffice.premium.monthly";
const ANNUAL: &str = "com.boxoffice.premium.annual";
const START: &str = "2030-01-31T09:00:00Z";

fn config(
    public_base_url: String,
    endpoint: Option<String>,
    version: SnsSignatureVersion,
) -> AmazonConfig {
    AmazonConfig {
        public_base_url,
        app_package_name: PACKAGE.into(),
        shared_secret: SECRET.into(),
        products: vec![AmazonSubscriptionProduct {
            parent_sku: PARENT.into(),
            terms: vec![
                AmazonTermSku {
                    term_sku: MONTHLY.into(),
                    term: AmazonTerm::Monthly,
                    price_minor: 999,
                    currency: "USD".into(),
                    free_trial: None,
                    grace_period_days: 6,
                    billing_retry_days: 30,
                },
                AmazonTermSku {
                    term_sku: ANNUAL.into(),
                    term: AmazonTerm::Annually,
                    price_minor: 9999,
                    currency: "USD".into(),
                    free_trial: Some(AmazonPeriod::Days(7)),
                    grace_period_days: 0,
                    billing_retry_days: 0,
                },
            ],
        }],
        topic_arn: EXAMPLE_TOPIC_ARN.into(),
        notification_endpoint: endpoint,
        signature_version: version,
        data_dir: None,
    }
}

/// A simulator alone at the root of a random loopback port, its control surface at
/// `/sim/control/amazon`, on a clock the test moves, notifying `hook` (confirmed from the
/// start) when there is one.
struct Harness {
    http: reqwest::Client,
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: AmazonSimulator,
    hook: MockServer,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: Option<String>,
    text: String,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.text);
        &self.body
    }

    /// An RVS error: the status and `{"message", "status": false}`.
    #[track_caller]
    fn rvs_error(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["status"], false, "{}", self.text);
        self.body["message"].as_str().expect("message")
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

fn millis(text: &str) -> i64 {
    time(text).timestamp_millis()
}

async fn start_with(version: SnsSignatureVersion, subscribed: bool) -> Harness {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
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
    let endpoint = subscribed.then(|| format!("{}/rtn", hook.uri()));
    let simulator =
        AmazonSimulator::new(config(base.clone(), endpoint, version), now).expect("simulator");
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
        hook,
    }
}

async fn start() -> Harness {
    start_with(SnsSignatureVersion::V1, true).await
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    /// Moves the clock and settles, as the host does after a move.
    async fn advance(&self, by: TimeDelta) {
        let now = self.now();
        *self.clock.lock().expect("clock") = now + by;
        self.simulator.settle_due().await;
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
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            text,
            body,
        }
    }

    async fn rvs_at(&self, prefix: &str, secret: &str, user: &str, receipt: &str) -> Reply {
        self.send(self.http.get(format!(
            "{}{prefix}/version/1.0/verifyReceiptId/developer/{secret}/user/{user}/receiptId/{receipt}",
            self.base
        )))
        .await
    }

    async fn rvs(&self, user: &str, receipt: &str) -> Reply {
        self.rvs_at("", SECRET, user, receipt).await
    }

    async fn control(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/amazon{path}", self.base))
                .json(&body),
        )
        .await
    }

    /// Buys a term SKU: (user id, receipt id).
    async fn buy(&self, body: Value) -> (String, String) {
        let purchase = self.control("/purchases", body).await;
        let purchase = purchase.ok();
        (
            purchase["userData"]["userId"]
                .as_str()
                .expect("user")
                .to_owned(),
            purchase["receipt"]["receiptId"]
                .as_str()
                .expect("receipt")
                .to_owned(),
        )
    }

    async fn on_receipt(&self, receipt: &str, verb: &str, body: Value) -> Reply {
        self.control(&format!("/receipts/{receipt}/{verb}"), body)
            .await
    }

    /// The SNS messages the hook received, oldest first: (headers, body).
    async fn received(&self) -> Vec<(wiremock::http::HeaderMap, Value)> {
        self.hook
            .received_requests()
            .await
            .expect("recording")
            .into_iter()
            .map(|request| {
                let body = serde_json::from_slice(&request.body).expect("SNS JSON");
                (request.headers, body)
            })
            .collect()
    }

    /// The Real-time Notifications received, each verified, in the order of their
    /// `timestamp`: SNS does not keep the order of messages sent at once, and Amazon says to
    /// order them by it.
    async fn notifications(&self) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for (_, body) in self.received().await {
            verify_sns(&self.http, &body).await;
            if body["Type"] == "Notification" {
                out.push(
                    serde_json::from_str(body["Message"].as_str().expect("Message"))
                        .expect("RTN JSON"),
                );
            }
        }
        out.sort_by_key(|message| message["timestamp"].as_i64());
        out
    }

    async fn notification_types(&self) -> Vec<String> {
        self.notifications()
            .await
            .iter()
            .map(|message| message["notificationType"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// SNS's string to sign, written from AWS's documentation here rather than taken from the
/// simulator.
fn string_to_sign(message: &Value) -> String {
    let names: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut text = String::new();
    for name in names {
        if let Some(value) = message[*name].as_str() {
            text.push_str(&format!("{name}\n{value}\n"));
        }
    }
    text
}

/// Checks a message's signature as a subscriber must: the certificate fetched from
/// `SigningCertURL`, RSA with SHA1 (`SignatureVersion` 1) or SHA256 (2) over the string to
/// sign. Panics if it does not verify.
async fn verify_sns(http: &reqwest::Client, message: &Value) {
    let pem_text = http
        .get(message["SigningCertURL"].as_str().expect("SigningCertURL"))
        .send()
        .await
        .expect("certificate")
        .text()
        .await
        .expect("PEM");
    let der = pem::parse(pem_text).expect("PEM").into_contents();
    let (_, certificate) = X509Certificate::from_der(&der).expect("X.509");
    assert!(
        certificate
            .subject()
            .to_string()
            .contains("CN=sns.amazonaws.com"),
        "{}",
        certificate.subject()
    );
    let algorithm = match message["SignatureVersion"].as_str() {
        Some("1") => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Some("2") => &RSA_PKCS1_2048_8192_SHA256,
        other => panic!("SignatureVersion {other:?}"),
    };
    let signature = STANDARD
        .decode(message["Signature"].as_str().expect("Signature"))
        .expect("base64");
    UnparsedPublicKey::new(
        algorithm,
        certificate.public_key().subject_public_key.data.as_ref(),
    )
    .verify(string_to_sign(message).as_bytes(), &signature)
    .expect("the SNS signature verifies");
}

// ------------------------------------------------------------------ RVS

#[tokio::test]
async fn a_purchase_is_what_the_sdk_hands_the_app_and_rvs_verifies_it() {
    let h = start().await;
    let purchase = h
        .control("/purchases", json!({"sku": MONTHLY, "countryCode": "DE"}))
        .await;
    let purchase = purchase.ok();
    assert_eq!(purchase["requestStatus"], "SUCCESSFUL");
    assert_eq!(purchase["userData"]["marketplace"], "DE");
    assert_eq!(purchase["receipt"]["sku"], PARENT);
    assert_eq!(purchase["receipt"]["termSku"], MONTHLY);
    assert_eq!(purchase["receipt"]["productType"], "SUBSCRIPTION");
    assert_eq!(purchase["sandbox"], false);
    let user = purchase["userData"]["userId"].as_str().unwrap();
    let receipt = purchase["receipt"]["receiptId"].as_str().unwrap();
    assert!(receipt.ends_with("=:3:11"), "{receipt}");
    assert_eq!(purchase["notifications"][0]["state"], "delivered");

    let verified = h.rvs(user, receipt).await;
    assert_eq!(
        verified.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        verified.ok(),
        &json!({
            "autoRenewing": true,
            "betaProduct": false,
            "cancelDate": null,
            "cancelReason": null,
            "countryCode": "DE",
            "deferredDate": null,
            "deferredSku": null,
            "freeTrialEndDate": null,
            "fulfillmentDate": null,
            "fulfillmentResult": null,
            "gracePeriodEndDate": null,
            "parentProductId": null,
            "productId": PARENT,
            "productType": "SUBSCRIPTION",
            "promotions": null,
            "purchaseDate": millis(START),
            "quantity": 1,
            "receiptId": receipt,
            "renewalDate": millis("2030-02-28T09:00:00Z"),
            "term": "1 Month",
            "termSku": MONTHLY,
            "testTransaction": false,
        })
    );
    // Amazon's key order.
    assert!(verified.text.find("\"autoRenewing\"") < verified.text.find("\"testTransaction\""));

    assert_eq!(
        h.notifications().await,
        [json!({
            "appPackageName": PACKAGE,
            "notificationType": "SUBSCRIPTION_PURCHASED",
            "appUserId": user,
            "receiptId": receipt,
            "relatedReceipts": {},
            "timestamp": millis(START),
            "betaProductTransaction": false,
        })]
    );
}

#[tokio::test]
async fn rvs_answers_amazons_error_statuses() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;

    let bad_secret = h.rvs_at("", "not-the-secret", &user, &receipt).await;
    assert_eq!(bad_secret.rvs_error(496), "Invalid sharedSecret");
    h.rvs(&user, "no-such-receipt").await.rvs_error(400);
    h.rvs("someone-else", &receipt).await.rvs_error(497);
    let other_version = h
        .send(h.http.get(format!(
            "{}/version/2.0/verifyReceiptId/developer/{SECRET}/user/{user}/receiptId/{receipt}",
            h.base
        )))
        .await;
    other_version.rvs_error(400);
    // A receipt id with characters that must be encoded in a path.
    h.rvs(&user, "a%20b%3Cc").await.rvs_error(400);
    // Missing segments: not an operation; never a 5xx.
    let truncated = h
        .send(h.http.get(format!(
            "{}/version/1.0/verifyReceiptId/developer/{SECRET}/user/{user}",
            h.base
        )))
        .await;
    assert_eq!(truncated.status, 404);

    h.control("/rvs/fail_next", json!({"status": 429}))
        .await
        .ok();
    h.rvs(&user, &receipt).await.rvs_error(429);
    h.control("/rvs/fail_next", json!({"status": 500}))
        .await
        .ok();
    h.rvs(&user, &receipt).await.rvs_error(500);
    assert_eq!(
        h.control("/rvs/fail_next", json!({"status": 404}))
            .await
            .status,
        400
    );
    h.rvs(&user, &receipt).await.ok();

    h.on_receipt(&receipt, "revoke", json!({})).await.ok();
    h.rvs(&user, &receipt).await.rvs_error(410);
    assert_eq!(
        h.on_receipt(&receipt, "revoke", json!({})).await.status,
        409
    );
    assert_eq!(
        h.notification_types().await,
        ["SUBSCRIPTION_PURCHASED", "SUBSCRIPTION_CANCELLED"]
    );
}

#[tokio::test]
async fn app_tester_receipts_live_in_the_sandbox_only_and_notify_no_one() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": MONTHLY, "sandbox": true})).await;
    // Production does not know it; the sandbox takes any shared secret.
    h.rvs(&user, &receipt).await.rvs_error(400);
    let sandbox = h.rvs_at("/sandbox", "anything", &user, &receipt).await;
    assert_eq!(sandbox.ok()["testTransaction"], true);
    h.rvs_at("/sandbox", "anything", "someone-else", &receipt)
        .await
        .rvs_error(497);
    // A production receipt is not in the sandbox.
    let (live_user, live) = h.buy(json!({"sku": MONTHLY, "liveAppTesting": true})).await;
    h.rvs_at("/sandbox", "anything", &live_user, &live)
        .await
        .rvs_error(400);
    assert_eq!(h.rvs(&live_user, &live).await.ok()["betaProduct"], true);

    h.advance(TimeDelta::days(40)).await;
    let renewed = h.rvs_at("/sandbox", "x", &user, &receipt).await;
    assert_eq!(renewed.ok()["renewalDate"], millis("2030-03-31T09:00:00Z"));
    let notifications = h.notifications().await;
    assert!(
        notifications
            .iter()
            .all(|message| message["receiptId"] == live.as_str()),
        "{notifications:?}"
    );
    assert!(
        notifications
            .iter()
            .all(|message| message["betaProductTransaction"] == true)
    );
}

// ------------------------------------------------------------------ renewals and RTN

#[tokio::test]
async fn renewals_keep_the_receipt_move_the_renewal_date_and_notify_signed() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;
    h.advance(TimeDelta::days(29)).await;
    let renewed = h.rvs(&user, &receipt).await;
    let renewed = renewed.ok();
    assert_eq!(renewed["receiptId"], receipt.as_str());
    assert_eq!(renewed["purchaseDate"], millis(START));
    // January 31 → February 28 → March 31.
    assert_eq!(renewed["renewalDate"], millis("2030-03-31T09:00:00Z"));

    let received = h.received().await;
    let (headers, renewal) = &received[1];
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(
        headers["x-amz-sns-message-id"],
        renewal["MessageId"].as_str().unwrap()
    );
    assert_eq!(headers["x-amz-sns-topic-arn"], EXAMPLE_TOPIC_ARN);
    assert!(
        headers["x-amz-sns-subscription-arn"]
            .to_str()
            .unwrap()
            .starts_with(&format!("{EXAMPLE_TOPIC_ARN}:"))
    );
    assert_eq!(headers["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(renewal["SignatureVersion"], "1");
    assert_eq!(renewal["TopicArn"], EXAMPLE_TOPIC_ARN);
    assert!(
        renewal["SigningCertURL"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/sns/SimpleNotificationService-", h.base))
    );
    assert!(
        renewal["UnsubscribeURL"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{}/sns/?Action=Unsubscribe&SubscriptionArn=",
                h.base
            ))
    );
    assert_eq!(renewal["Timestamp"], "2030-03-01T09:00:00.000Z");
    verify_sns(&h.http, renewal).await;

    // A tampered message does not verify.
    let mut tampered = renewal.clone();
    tampered["Message"] = Value::String(
        renewal["Message"]
            .as_str()
            .unwrap()
            .replace("SUBSCRIPTION_RENEWED", "SUBSCRIPTION_PURCHASED"),
    );
    let outcome = tokio::spawn(async move {
        verify_sns(&reqwest::Client::new(), &tampered).await;
    })
    .await;
    assert!(outcome.is_err(), "a tampered message verified");

    let rtn: Value = serde_json::from_str(renewal["Message"].as_str().unwrap()).unwrap();
    assert_eq!(rtn["notificationType"], "SUBSCRIPTION_RENEWED");
    assert_eq!(rtn["timestamp"], millis("2030-02-28T09:00:00Z"));
    assert_eq!(
        h.notification_types().await,
        ["SUBSCRIPTION_PURCHASED", "SUBSCRIPTION_RENEWED"]
    );
}

#[tokio::test]
async fn signature_version_2_signs_with_sha256() {
    let h = start_with(SnsSignatureVersion::V2, true).await;
    h.buy(json!({"sku": MONTHLY})).await;
    let received = h.received().await;
    assert_eq!(received[0].1["SignatureVersion"], "2");
    verify_sns(&h.http, &received[0].1).await;
}

#[tokio::test]
async fn a_failed_renewal_goes_through_grace_and_recovers() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;
    h.on_receipt(
        &receipt,
        "fail_next_renewal",
        json!({"failure": "gracePeriod"}),
    )
    .await
    .ok();
    h.advance(TimeDelta::days(29)).await;
    let in_grace = h.rvs(&user, &receipt).await;
    let in_grace = in_grace.ok();
    assert_eq!(
        in_grace["gracePeriodEndDate"],
        millis("2030-03-06T09:00:00Z")
    );
    assert_eq!(in_grace["renewalDate"], millis("2030-02-28T09:00:00Z"));
    assert_eq!(in_grace["cancelDate"], Value::Null);
    assert_eq!(in_grace["autoRenewing"], true);

    let recovered = h.on_receipt(&receipt, "recover", json!({})).await;
    let recovered = recovered.ok();
    assert_eq!(recovered["receipt"]["state"], "active");
    assert_eq!(
        recovered["notifications"][0]["rtn"]["notificationType"],
        "SUBSCRIPTION_OUT_OF_GRACE_PERIOD"
    );
    let after = h.rvs(&user, &receipt).await;
    assert_eq!(after.ok()["renewalDate"], millis("2030-03-31T09:00:00Z"));
    assert_eq!(after.body["gracePeriodEndDate"], Value::Null);

    // A grace period not recovered: Amazon's system cancels it when the grace ends.
    h.on_receipt(&receipt, "fail_next_renewal", json!({}))
        .await
        .ok();
    h.advance(TimeDelta::days(40)).await;
    let cancelled = h.rvs(&user, &receipt).await;
    let cancelled = cancelled.ok();
    assert_eq!(cancelled["cancelReason"], 2);
    assert_eq!(cancelled["cancelDate"], millis("2030-04-06T09:00:00Z"));
    assert_eq!(cancelled["autoRenewing"], false);
    assert_eq!(
        h.notification_types().await,
        [
            "SUBSCRIPTION_PURCHASED",
            "SUBSCRIPTION_IN_GRACE_PERIOD",
            "SUBSCRIPTION_OUT_OF_GRACE_PERIOD",
            "SUBSCRIPTION_IN_GRACE_PERIOD",
            "SUBSCRIPTION_CANCELLED",
        ]
    );
}

#[tokio::test]
async fn billing_retry_holds_access_until_the_payment_is_fixed() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;
    h.on_receipt(
        &receipt,
        "fail_next_renewal",
        json!({"failure": "billingRetry"}),
    )
    .await
    .ok();
    h.advance(TimeDelta::days(30)).await;
    let view = h
        .send(
            h.http
                .get(format!("{}/sim/control/amazon/receipts/{receipt}", h.base)),
        )
        .await;
    assert_eq!(view.ok()["state"], "billingRetry");
    assert_eq!(view.body["hasAccess"], false);
    let on_hold = h.rvs(&user, &receipt).await;
    let on_hold = on_hold.ok();
    assert_eq!(on_hold["renewalDate"], millis("2030-02-28T09:00:00Z"));
    assert_eq!(on_hold["autoRenewing"], true);
    assert_eq!(on_hold["cancelDate"], Value::Null);
    assert_eq!(on_hold["gracePeriodEndDate"], Value::Null);

    h.on_receipt(&receipt, "recover", json!({})).await.ok();
    let renewed = h.rvs(&user, &receipt).await;
    assert_eq!(renewed.ok()["renewalDate"], millis("2030-04-02T09:00:00Z"));
    assert_eq!(
        h.notification_types().await,
        ["SUBSCRIPTION_PURCHASED", "SUBSCRIPTION_RENEWED"]
    );
    assert_eq!(
        h.on_receipt(&receipt, "recover", json!({})).await.status,
        409
    );
}

#[tokio::test]
async fn auto_renewal_off_sets_the_cancel_date_then_expires() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;
    h.advance(TimeDelta::days(2)).await;
    h.on_receipt(&receipt, "auto_renew", json!({"enabled": false}))
        .await
        .ok();
    let off = h.rvs(&user, &receipt).await;
    let off = off.ok();
    assert_eq!(off["autoRenewing"], false);
    assert_eq!(off["cancelDate"], millis("2030-02-28T09:00:00Z"));
    assert_eq!(off["cancelReason"], 1);
    assert_eq!(
        h.on_receipt(&receipt, "auto_renew", json!({"enabled": false}))
            .await
            .status,
        409
    );
    h.advance(TimeDelta::days(40)).await;
    let expired = h.rvs(&user, &receipt).await;
    assert_eq!(expired.ok()["cancelDate"], millis("2030-02-28T09:00:00Z"));
    assert_eq!(
        h.notification_types().await,
        [
            "SUBSCRIPTION_PURCHASED",
            "SUBSCRIPTION_AUTO_RENEWAL_OFF",
            "SUBSCRIPTION_SCHEDULED_TO_END",
            "SUBSCRIPTION_EXPIRED",
        ]
    );
    // A new purchase after it ended is a new receipt.
    let (_, again) = h.buy(json!({"sku": MONTHLY, "userId": user})).await;
    assert_ne!(again, receipt);
}

#[tokio::test]
async fn cancelling_and_refunding_end_the_receipt_now_with_amazons_reasons() {
    let h = start().await;
    let (user, cancelled) = h.buy(json!({"sku": MONTHLY})).await;
    let (other, refunded) = h.buy(json!({"sku": MONTHLY})).await;
    // One running subscription per customer and parent SKU.
    assert_eq!(
        h.control("/purchases", json!({"sku": MONTHLY, "userId": user}))
            .await
            .status,
        409
    );
    h.advance(TimeDelta::days(3)).await;
    let now = h.now().timestamp_millis();
    h.on_receipt(&cancelled, "cancel", json!({})).await.ok();
    h.on_receipt(&refunded, "refund", json!({})).await.ok();
    let by_customer = h.rvs(&user, &cancelled).await;
    assert_eq!(by_customer.ok()["cancelReason"], 1);
    assert_eq!(by_customer.body["cancelDate"], now);
    assert_eq!(
        by_customer.body["renewalDate"],
        millis("2030-02-28T09:00:00Z")
    );
    let by_amazon = h.rvs(&other, &refunded).await;
    assert_eq!(by_amazon.ok()["cancelReason"], 2);
    assert_eq!(by_amazon.body["cancelDate"], now);
    assert_eq!(by_amazon.body["autoRenewing"], false);
    assert_eq!(
        h.on_receipt(&refunded, "cancel", json!({})).await.status,
        409
    );
    let view = h
        .send(
            h.http
                .get(format!("{}/sim/control/amazon/receipts/{refunded}", h.base)),
        )
        .await;
    assert_eq!(view.ok()["ending"], "refunded");
    assert!(view.body["payments"][0]["refundedAt"].is_string());
}

#[tokio::test]
async fn a_free_trial_converts_to_paid() {
    let h = start().await;
    let (user, receipt) = h.buy(json!({"sku": ANNUAL})).await;
    let trial = h.rvs(&user, &receipt).await;
    assert_eq!(
        trial.ok()["freeTrialEndDate"],
        millis("2030-02-07T09:00:00Z")
    );
    assert_eq!(trial.body["renewalDate"], millis("2030-02-07T09:00:00Z"));
    assert_eq!(trial.body["term"], "1 Year");
    h.advance(TimeDelta::days(8)).await;
    let paid = h.rvs(&user, &receipt).await;
    assert_eq!(paid.ok()["freeTrialEndDate"], Value::Null);
    assert_eq!(paid.body["renewalDate"], millis("2031-02-07T09:00:00Z"));
    assert_eq!(
        h.notification_types().await,
        [
            "SUBSCRIPTION_PURCHASED",
            "SUBSCRIPTION_CONVERTED_FREE_TRIAL_TO_PAID"
        ]
    );
}

// ------------------------------------------------------------------ SNS subscription

#[tokio::test]
async fn a_new_endpoint_gets_nothing_until_it_confirms_its_subscription() {
    let h = start_with(SnsSignatureVersion::V1, false).await;
    let (_, dropped) = h.buy(json!({"sku": MONTHLY})).await;
    let messages = h
        .send(
            h.http
                .get(format!("{}/sim/control/amazon/notifications", h.base)),
        )
        .await;
    assert_eq!(messages.ok()["messages"][0]["state"], "dropped");

    let endpoint = format!("{}/rtn", h.hook.uri());
    let change = h
        .send(
            h.http
                .put(format!("{}/sim/control/amazon/rtn", h.base))
                .json(&json!({"endpoint": endpoint})),
        )
        .await;
    let change = change.ok();
    assert_eq!(change["settings"]["confirmed"], Value::Null);
    assert_eq!(
        change["settings"]["pendingConfirmation"]["endpoint"],
        endpoint.as_str()
    );
    let received = h.received().await;
    assert_eq!(received.len(), 1);
    let (headers, confirmation) = &received[0];
    assert_eq!(
        headers["x-amz-sns-message-type"],
        "SubscriptionConfirmation"
    );
    assert!(headers.get("x-amz-sns-subscription-arn").is_none());
    assert_eq!(confirmation["Type"], "SubscriptionConfirmation");
    verify_sns(&h.http, confirmation).await;
    let subscribe_url = confirmation["SubscribeURL"].as_str().unwrap();
    assert!(subscribe_url.starts_with(&format!("{}/sns/?Action=ConfirmSubscription", h.base)));

    // Not confirmed yet: the cancellation goes to no one.
    h.on_receipt(&dropped, "cancel", json!({})).await.ok();
    assert_eq!(h.received().await.len(), 1);

    // A wrong token is SNS's InvalidParameter.
    let wrong = h
        .send(h.http.get(format!(
            "{}/sns/?Action=ConfirmSubscription&TopicArn={EXAMPLE_TOPIC_ARN}&Token=nope",
            h.base
        )))
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    assert!(
        wrong.text.contains("<Code>InvalidParameter</Code>"),
        "{}",
        wrong.text
    );
    let unknown_action = h
        .send(h.http.get(format!("{}/sns/?Action=Publish", h.base)))
        .await;
    assert_eq!(unknown_action.status, 400);

    let confirmed = h.send(h.http.get(subscribe_url)).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.content_type.as_deref(), Some("text/xml"));
    let arn = h
        .simulator
        .rtn_settings()
        .confirmed
        .expect("confirmed")
        .subscription_arn;
    assert!(
        confirmed
            .text
            .contains(&format!("<SubscriptionArn>{arn}</SubscriptionArn>")),
        "{}",
        confirmed.text
    );

    h.buy(json!({"sku": MONTHLY})).await;
    assert_eq!(h.notification_types().await, ["SUBSCRIPTION_PURCHASED"]);

    // The UnsubscribeURL of a notification removes the subscription.
    let received = h.received().await;
    let unsubscribe = received[1].1["UnsubscribeURL"].as_str().unwrap().to_owned();
    let unsubscribed = h.send(h.http.get(&unsubscribe)).await;
    assert_eq!(unsubscribed.status, 200, "{}", unsubscribed.text);
    assert!(unsubscribed.text.starts_with("<UnsubscribeResponse"));
    assert_eq!(h.send(h.http.get(&unsubscribe)).await.status, 404);
    let mut confirmation = None;
    for _ in 0..100 {
        confirmation = h
            .received()
            .await
            .into_iter()
            .find(|(_, body)| body["Type"] == "UnsubscribeConfirmation");
        if confirmation.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, confirmation) = confirmation.expect("an UnsubscribeConfirmation");
    verify_sns(&h.http, &confirmation).await;
    assert_eq!(h.simulator.rtn_settings().confirmed, None);
}

#[tokio::test]
async fn the_developer_console_token_confirms_too_and_the_old_endpoint_serves_until_then() {
    let h = start().await;
    let second = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&second)
        .await;
    let change = h
        .send(
            h.http
                .put(format!("{}/sim/control/amazon/rtn", h.base))
                .json(&json!({"endpoint": format!("{}/new", second.uri())})),
        )
        .await;
    let token = change.ok()["settings"]["pendingConfirmation"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 128);
    h.buy(json!({"sku": MONTHLY})).await;
    assert_eq!(h.notification_types().await, ["SUBSCRIPTION_PURCHASED"]);

    assert_eq!(
        h.control("/rtn/confirm", json!({"token": "wrong"}))
            .await
            .status,
        400
    );
    let settings = h.control("/rtn/confirm", json!({"token": token})).await;
    assert_eq!(
        settings.ok()["confirmed"]["endpoint"],
        format!("{}/new", second.uri())
    );
    h.buy(json!({"sku": MONTHLY})).await;
    let at_second = second.received_requests().await.unwrap();
    // The confirmation, then the second purchase.
    assert_eq!(at_second.len(), 2);
    assert_eq!(h.notification_types().await.len(), 1);
}

#[tokio::test]
async fn failed_deliveries_are_retried_as_sns_retries() {
    let h = start().await;
    h.hook.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&h.hook)
        .await;
    let purchase = h.control("/purchases", json!({"sku": MONTHLY})).await;
    let first = &purchase.ok()["notifications"][0];
    assert_eq!(first["state"], "pending");
    assert_eq!(first["attempts"][0]["statusCode"], 503);
    let next = time(first["nextAttemptAt"].as_str().unwrap());
    assert_eq!(next - h.now(), TimeDelta::seconds(20));
    for _ in 0..3 {
        h.advance(TimeDelta::seconds(20)).await;
    }
    let messages = h
        .send(
            h.http
                .get(format!("{}/sim/control/amazon/notifications", h.base)),
        )
        .await;
    let message = &messages.ok()["messages"][0];
    assert_eq!(message["state"], "gave_up");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 4);
    assert_eq!(h.hook.received_requests().await.unwrap().len(), 4);
    // A 4xx is an answer SNS does not retry.
    h.hook.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&h.hook)
        .await;
    let refused = h.control("/purchases", json!({"sku": MONTHLY})).await;
    assert_eq!(refused.ok()["notifications"][0]["state"], "refused");
    h.advance(TimeDelta::minutes(5)).await;
    assert_eq!(h.hook.received_requests().await.unwrap().len(), 1);
}

// ------------------------------------------------------------------ control and documents

#[tokio::test]
async fn the_control_surface_refuses_bad_input_with_4xx() {
    let h = start().await;
    assert_eq!(
        h.control("/purchases", json!({"sku": "nope"})).await.status,
        400
    );
    assert_eq!(
        h.control("/purchases", json!({"sku": MONTHLY, "userId": "a/b"}))
            .await
            .status,
        400
    );
    assert_eq!(
        h.control("/purchases", json!({"sku": MONTHLY, "countryCode": "usa"}))
            .await
            .status,
        400
    );
    let malformed = h
        .send(
            h.http
                .post(format!("{}/sim/control/amazon/purchases", h.base))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error"], "invalid_request");
    assert_eq!(h.on_receipt("nope", "recover", json!({})).await.status, 404);
    assert_eq!(
        h.on_receipt("nope", "fail_next_renewal", json!({"failure": "later"}))
            .await
            .status,
        400
    );
    let bad_endpoint = h
        .send(
            h.http
                .put(format!("{}/sim/control/amazon/rtn", h.base))
                .json(&json!({"endpoint": "ftp://example"})),
        )
        .await;
    assert_eq!(bad_endpoint.status, 400);
    h.buy(json!({"sku": MONTHLY})).await;
    let state = h
        .send(h.http.get(format!("{}/sim/control/amazon/state", h.base)))
        .await;
    assert_eq!(state.ok()["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(state.body["receipts"][0]["rvs"]["productId"], PARENT);
    assert!(state.body["rtn"]["confirmed"]["endpoint"].is_string());
    let app = &state.body["app"];
    assert_eq!(app["rvsSandboxUrl"], format!("{}/sandbox", h.base));
    assert_eq!(app["signingCertUrl"], h.simulator.signing_certificate_url());
    let certificate = h
        .send(h.http.get(h.simulator.signing_certificate_url()))
        .await;
    assert_eq!(certificate.text, h.simulator.signing_certificate_pem());
    assert_eq!(
        h.send(
            h.http
                .get(format!("{}/sns/SimpleNotificationService-0.pem", h.base))
        )
        .await
        .status,
        404
    );
    // Reset forgets the receipts and messages; the subscription stays.
    let reset = h.control("/reset", json!({})).await;
    assert!(reset.ok()["confirmed"].is_object());
    assert!(h.simulator.receipts().is_empty());
    assert!(h.simulator.messages().is_empty());
}

#[test]
fn the_openapi_document_is_deterministic_and_has_amazons_paths() {
    let document = openapi_json("http://127.0.0.1:8080/sim/amazon").unwrap();
    assert_eq!(
        document,
        openapi_json("http://127.0.0.1:8080/sim/amazon").unwrap()
    );
    let document: Value = serde_json::from_str(&document).unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key(
        "/version/{version}/verifyReceiptId/developer/{sharedSecret}/user/{userId}/receiptId/{receiptId}"
    ));
    assert!(paths.contains_key(
        "/sandbox/version/{version}/verifyReceiptId/developer/{sharedSecret}/user/{userId}/receiptId/{receiptId}"
    ));
    let responses = paths[
        "/version/{version}/verifyReceiptId/developer/{sharedSecret}/user/{userId}/receiptId/{receiptId}"
    ]["get"]["responses"]
        .as_object()
        .unwrap();
    for status in ["200", "400", "410", "429", "496", "497", "500"] {
        assert!(responses.contains_key(status), "{status}");
    }
}
