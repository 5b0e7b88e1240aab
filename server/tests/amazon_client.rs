//! The server's Amazon client against the Amazon Appstore simulator over real HTTP: RVS's
//! answers read as store subscriptions through renewals, grace, billing retry, auto-renewal,
//! cancellation, refunds and revocation, and SNS notifications verified (and forgeries,
//! other topics and stale ones refused), including the subscription confirmation.

use std::sync::{Arc, Mutex};

use boxoffice::providers::amazon::{
    AmazonClient, AmazonNotificationContent, AmazonNotificationError, AmazonSettings,
    DEFAULT_NOTIFICATION_MAX_AGE,
};
use boxoffice::providers::store::{StoreEnvironment, StoreRefusal, StoreState};
use boxoffice_simulators::amazon::{
    AmazonConfig, AmazonSimulator, AmazonSubscriptionProduct, AmazonTerm, AmazonTermSku,
    EXAMPLE_TOPIC_ARN, SnsSignatureVersion,
};
use boxoffice_simulators::clock::Now;
use chrono::{DateTime, TimeDelta, Utc};
use poem::http::HeaderMap;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PACKAGE: &str = "com.boxoffice.app";
const SECRET: &str = "2:boxoffice-shared-secret:xyz==";
const MONTHLY: &str = "com.boxoffice.premium.monthly";
const START: &str = "2030-01-31T09:00:00Z";

struct Harness {
    http: reqwest::Client,
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: AmazonSimulator,
    hook: MockServer,
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

async fn start(version: SnsSignatureVersion, subscribed: bool) -> Harness {
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
    let simulator = AmazonSimulator::new(
        AmazonConfig {
            public_base_url: base.clone(),
            app_package_name: PACKAGE.into(),
            shared_secret: SECRET.into(),
            products: vec![AmazonSubscriptionProduct {
                parent_sku: "com.boxoffice.premium".into(),
                terms: vec![AmazonTermSku {
                    term_sku: MONTHLY.into(),
                    term: AmazonTerm::Monthly,
                    price_minor: 999,
                    currency: "USD".into(),
                    free_trial: None,
                    grace_period_days: 6,
                    billing_retry_days: 30,
                }],
            }],
            topic_arn: EXAMPLE_TOPIC_ARN.into(),
            notification_endpoint: subscribed.then(|| format!("{}/webhooks/amazon", hook.uri())),
            signature_version: version,
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
        hook,
    }
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    async fn advance(&self, by: TimeDelta) {
        let now = self.now();
        *self.clock.lock().expect("clock") = now + by;
        self.simulator.settle_due().await;
    }

    fn settings(&self, environments: Vec<StoreEnvironment>) -> AmazonSettings {
        AmazonSettings {
            rvs_base_production: self.simulator.rvs_production_url(),
            rvs_base_sandbox: self.simulator.rvs_sandbox_url(),
            shared_secret: SECRET.into(),
            environments,
            app_package_name: PACKAGE.into(),
            sns_topic_arns: vec![EXAMPLE_TOPIC_ARN.into()],
            sns_url_prefixes: vec![format!("{}/", self.simulator.sns_base_url())],
            notification_max_age: DEFAULT_NOTIFICATION_MAX_AGE,
        }
    }

    fn client(&self) -> AmazonClient {
        AmazonClient::new(self.settings(vec![
            StoreEnvironment::Production,
            StoreEnvironment::Sandbox,
        ]))
        .expect("client")
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/sim/control/amazon{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    /// Buys the monthly term: (user id, receipt id).
    async fn buy(&self, body: Value) -> (String, String) {
        let purchase = self.control("/purchases", body).await;
        (
            purchase["userData"]["userId"].as_str().unwrap().to_owned(),
            purchase["receipt"]["receiptId"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// What the notification endpoint received: (headers, body), oldest first.
    async fn received(&self) -> Vec<(HeaderMap, Vec<u8>)> {
        self.hook
            .received_requests()
            .await
            .expect("recording")
            .into_iter()
            .map(|request| {
                let mut headers = HeaderMap::new();
                for (name, value) in &request.headers {
                    headers.insert(
                        poem::http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                        poem::http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                    );
                }
                (headers, request.body)
            })
            .collect()
    }
}

/// The `x-amz-sns-message-type` header of a received request, as the receiver passes it on.
fn declared_type(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get("x-amz-sns-message-type")
        .map(|value| value.as_bytes())
}

#[tokio::test]
async fn rvs_reads_as_a_store_subscription_through_its_renewals() {
    let h = start(SnsSignatureVersion::V1, true).await;
    let client = h.client();
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;

    let bought = client.subscription(&user, &receipt, h.now()).await.unwrap();
    assert_eq!(bought.environment, StoreEnvironment::Production);
    assert_eq!(bought.subscription_ref, receipt);
    assert_eq!(bought.product_id, MONTHLY);
    assert_eq!(bought.state, StoreState::Active);
    assert!(bought.auto_renew);
    assert_eq!(bought.period_start, time(START));
    assert_eq!(bought.expires_at, time("2030-02-28T09:00:00Z"));
    assert_eq!(
        bought.latest_payment.transaction_id,
        format!(
            "{receipt}:{}",
            time("2030-02-28T09:00:00Z").timestamp_millis()
        )
    );
    assert_eq!(bought.latest_payment.purchased_at, time(START));
    assert_eq!(bought.latest_payment.price, None);

    // Read again: the same payment.
    let again = client.subscription(&user, &receipt, h.now()).await.unwrap();
    assert_eq!(again.latest_payment, bought.latest_payment);

    h.advance(TimeDelta::days(29)).await;
    let renewed = client.subscription(&user, &receipt, h.now()).await.unwrap();
    assert_eq!(renewed.subscription_ref, receipt);
    assert_eq!(renewed.expires_at, time("2030-03-31T09:00:00Z"));
    assert_ne!(
        renewed.latest_payment.transaction_id,
        bought.latest_payment.transaction_id
    );
    assert_eq!(
        renewed.latest_payment.purchased_at,
        time("2030-02-28T09:00:00Z")
    );
}

#[tokio::test]
async fn failures_auto_renewal_cancellation_refund_and_revocation_map_to_store_states() {
    let h = start(SnsSignatureVersion::V1, true).await;
    let client = h.client();
    let (grace_user, grace) = h.buy(json!({"sku": MONTHLY})).await;
    let (hold_user, hold) = h.buy(json!({"sku": MONTHLY})).await;
    let (off_user, off) = h.buy(json!({"sku": MONTHLY})).await;
    let (cancel_user, cancelled) = h.buy(json!({"sku": MONTHLY})).await;
    let (refund_user, refunded) = h.buy(json!({"sku": MONTHLY})).await;
    let (revoke_user, revoked) = h.buy(json!({"sku": MONTHLY})).await;
    h.control(
        &format!("/receipts/{grace}/fail_next_renewal"),
        json!({"failure": "gracePeriod"}),
    )
    .await;
    h.control(
        &format!("/receipts/{hold}/fail_next_renewal"),
        json!({"failure": "billingRetry"}),
    )
    .await;
    h.control(
        &format!("/receipts/{off}/auto_renew"),
        json!({"enabled": false}),
    )
    .await;

    let turned_off = client.subscription(&off_user, &off, h.now()).await.unwrap();
    assert_eq!(turned_off.state, StoreState::Active);
    assert!(!turned_off.auto_renew);
    assert_eq!(turned_off.expires_at, time("2030-02-28T09:00:00Z"));

    h.advance(TimeDelta::days(2)).await;
    let cancel_at = h.now();
    h.control(&format!("/receipts/{cancelled}/cancel"), json!({}))
        .await;
    h.control(&format!("/receipts/{refunded}/refund"), json!({}))
        .await;
    h.control(&format!("/receipts/{revoked}/revoke"), json!({}))
        .await;
    for (user, receipt) in [(&cancel_user, &cancelled), (&refund_user, &refunded)] {
        let view = client.subscription(user, receipt, h.now()).await.unwrap();
        assert_eq!(view.state, StoreState::Refunded { at: cancel_at });
        // The term paid for, not the cancellation, is when it would have ended.
        assert_eq!(view.expires_at, time("2030-02-28T09:00:00Z"));
        assert!(!view.auto_renew);
    }
    let refusal = client
        .subscription(&revoke_user, &revoked, h.now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refusal,
            StoreRefusal::Refused {
                code: Some(410),
                ..
            }
        ),
        "{refusal:?}"
    );

    h.advance(TimeDelta::days(28)).await;
    let in_grace = client
        .subscription(&grace_user, &grace, h.now())
        .await
        .unwrap();
    assert_eq!(
        in_grace.state,
        StoreState::GracePeriod {
            until: time("2030-03-06T09:00:00Z")
        }
    );
    let on_hold = client
        .subscription(&hold_user, &hold, h.now())
        .await
        .unwrap();
    assert_eq!(on_hold.state, StoreState::BillingRetry);
    assert!(on_hold.auto_renew);
    let lapsed = client.subscription(&off_user, &off, h.now()).await.unwrap();
    assert_eq!(lapsed.state, StoreState::Expired);
    assert_eq!(lapsed.expires_at, time("2030-02-28T09:00:00Z"));

    h.control(&format!("/receipts/{hold}/recover"), json!({}))
        .await;
    let recovered = client
        .subscription(&hold_user, &hold, h.now())
        .await
        .unwrap();
    assert_eq!(recovered.state, StoreState::Active);
    assert_ne!(recovered.latest_payment, on_hold.latest_payment);

    h.advance(TimeDelta::days(10)).await;
    let cancelled_by_amazon = client
        .subscription(&grace_user, &grace, h.now())
        .await
        .unwrap();
    assert_eq!(cancelled_by_amazon.state, StoreState::Expired);
}

#[tokio::test]
async fn rvs_refusals_and_environments() {
    let h = start(SnsSignatureVersion::V1, true).await;
    let client = h.client();
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;
    let code = |refusal: StoreRefusal| match refusal {
        StoreRefusal::Refused { code, .. } => code,
        StoreRefusal::Unavailable(detail) => panic!("unavailable: {detail}"),
    };
    assert_eq!(
        code(
            client
                .subscription("someone-else", &receipt, h.now())
                .await
                .unwrap_err()
        ),
        Some(497)
    );
    assert_eq!(
        code(
            client
                .subscription(&user, "nope", h.now())
                .await
                .unwrap_err()
        ),
        Some(400)
    );
    assert_eq!(
        code(
            client
                .subscription(&user, "   ", h.now())
                .await
                .unwrap_err()
        ),
        Some(400)
    );

    // An App Tester receipt is found in the sandbox; a production-only server refuses it.
    let (tester, sandbox) = h.buy(json!({"sku": MONTHLY, "sandbox": true})).await;
    let found = client
        .subscription(&tester, &sandbox, h.now())
        .await
        .unwrap();
    assert_eq!(found.environment, StoreEnvironment::Sandbox);
    let production_only =
        AmazonClient::new(h.settings(vec![StoreEnvironment::Production])).unwrap();
    assert_eq!(
        code(
            production_only
                .subscription(&tester, &sandbox, h.now())
                .await
                .unwrap_err()
        ),
        Some(400)
    );
    let (beta_user, beta) = h.buy(json!({"sku": MONTHLY, "liveAppTesting": true})).await;
    assert_eq!(
        code(
            production_only
                .subscription(&beta_user, &beta, h.now())
                .await
                .unwrap_err()
        ),
        None
    );

    // A shared secret RVS refuses is the server's fault: unavailable, and never shown.
    let mut wrong = h.settings(vec![StoreEnvironment::Production]);
    wrong.shared_secret = "not-the-secret".into();
    let wrong = AmazonClient::new(wrong).unwrap();
    match wrong
        .subscription(&user, &receipt, h.now())
        .await
        .unwrap_err()
    {
        StoreRefusal::Unavailable(detail) => {
            assert!(detail.contains("496"), "{detail}");
            assert!(!detail.contains("not-the-secret"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    h.control("/rvs/fail_next", json!({"status": 503})).await;
    assert!(matches!(
        client
            .subscription(&user, &receipt, h.now())
            .await
            .unwrap_err(),
        StoreRefusal::Unavailable(_)
    ));
}

#[tokio::test]
async fn a_real_notification_verifies_and_forgeries_do_not() {
    let h = start(SnsSignatureVersion::V1, true).await;
    let client = h.client();
    let (user, receipt) = h.buy(json!({"sku": MONTHLY})).await;
    h.advance(TimeDelta::days(29)).await;
    let received = h.received().await;
    assert_eq!(received.len(), 2);
    let (headers, body) = &received[1];

    let notification = client
        .read_notification(declared_type(headers), body, h.now())
        .await
        .unwrap();
    assert_eq!(notification.kind, "SUBSCRIPTION_RENEWED");
    let Value::String(message_id) =
        serde_json::from_slice::<Value>(body).unwrap()["MessageId"].clone()
    else {
        panic!("MessageId");
    };
    assert_eq!(notification.id, message_id);
    let AmazonNotificationContent::Receipt(event) = &notification.content else {
        panic!("{notification:?}");
    };
    assert_eq!(event.receipt_id, receipt);
    assert_eq!(event.user_id, user);
    assert_eq!(event.happened_at, Some(time("2030-02-28T09:00:00Z")));
    assert!(!event.beta_product_transaction);
    // The receipt it names reads through RVS.
    let view = client
        .subscription(&event.user_id, &event.receipt_id, h.now())
        .await
        .unwrap();
    assert_eq!(view.expires_at, time("2030-03-31T09:00:00Z"));

    let original: Value = serde_json::from_slice(body).unwrap();
    let forge = |change: &dyn Fn(&mut Value)| {
        let mut forged = original.clone();
        change(&mut forged);
        serde_json::to_vec(&forged).unwrap()
    };
    let tampered = forge(&|message| {
        message["Message"] = Value::String(
            message["Message"]
                .as_str()
                .unwrap()
                .replace(&receipt, "another-receipt"),
        );
    });
    assert!(matches!(
        client
            .read_notification(declared_type(headers), &tampered, h.now())
            .await,
        Err(AmazonNotificationError::Unverified(_))
    ));
    let elsewhere = forge(&|message| {
        message["SigningCertURL"] = json!("https://evil.example/SimpleNotificationService-1.pem");
    });
    assert!(matches!(
        client
            .read_notification(declared_type(headers), &elsewhere, h.now())
            .await,
        Err(AmazonNotificationError::Unverified(_))
    ));
    let missing = forge(&|message| {
        message["SigningCertURL"] =
            json!(format!("{}/sns/SimpleNotificationService-0.pem", h.base));
    });
    assert!(matches!(
        client
            .read_notification(declared_type(headers), &missing, h.now())
            .await,
        Err(AmazonNotificationError::Unavailable(_))
    ));
    let other_topic = forge(&|message| {
        message["TopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:other");
    });
    assert!(matches!(
        client.read_notification(None, &other_topic, h.now()).await,
        Err(AmazonNotificationError::Foreign(_))
    ));
    assert!(matches!(
        client
            .read_notification(Some(b"SubscriptionConfirmation"), body, h.now())
            .await,
        Err(AmazonNotificationError::Malformed(_))
    ));
    assert!(matches!(
        client
            .read_notification(declared_type(headers), b"{not json", h.now())
            .await,
        Err(AmazonNotificationError::Malformed(_))
    ));
    // A replay two hours later.
    assert!(matches!(
        client
            .read_notification(declared_type(headers), body, h.now() + TimeDelta::hours(2))
            .await,
        Err(AmazonNotificationError::Stale(_))
    ));
    // Another app's.
    let mut other_app = h.settings(vec![StoreEnvironment::Production]);
    other_app.app_package_name = "com.other.app".into();
    assert!(matches!(
        AmazonClient::new(other_app)
            .unwrap()
            .read_notification(declared_type(headers), body, h.now())
            .await,
        Err(AmazonNotificationError::Foreign(_))
    ));
    // A server that trusts only Amazon's SNS hosts refuses the simulator's certificate.
    let mut aws_only = h.settings(vec![StoreEnvironment::Production]);
    aws_only.sns_url_prefixes = vec![boxoffice::providers::amazon::AWS_SNS_URL_PREFIX.into()];
    assert!(matches!(
        AmazonClient::new(aws_only)
            .unwrap()
            .read_notification(declared_type(headers), body, h.now())
            .await,
        Err(AmazonNotificationError::Unverified(_))
    ));
}

#[tokio::test]
async fn signature_version_2_verifies() {
    let h = start(SnsSignatureVersion::V2, true).await;
    let client = h.client();
    h.buy(json!({"sku": MONTHLY})).await;
    let received = h.received().await;
    let (headers, body) = &received[0];
    let notification = client
        .read_notification(declared_type(headers), body, h.now())
        .await
        .unwrap();
    assert_eq!(notification.kind, "SUBSCRIPTION_PURCHASED");
}

#[tokio::test]
async fn the_client_confirms_the_subscription_sns_asks_it_to() {
    let h = start(SnsSignatureVersion::V1, false).await;
    let client = h.client();
    let response = h
        .http
        .put(format!("{}/sim/control/amazon/rtn", h.base))
        .json(&json!({"endpoint": format!("{}/webhooks/amazon", h.hook.uri())}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = h.received().await;
    let (headers, body) = &received[0];
    let notification = client
        .read_notification(declared_type(headers), body, h.now())
        .await
        .unwrap();
    assert_eq!(notification.kind, "SubscriptionConfirmation");
    let AmazonNotificationContent::SubscriptionConfirmation(confirmation) = &notification.content
    else {
        panic!("{notification:?}");
    };
    assert!(h.simulator.rtn_settings().confirmed.is_none());
    let arn = client.confirm_subscription(confirmation).await.unwrap();
    let confirmed = h.simulator.rtn_settings().confirmed.expect("confirmed");
    assert_eq!(arn, confirmed.subscription_arn);

    // Now notifications arrive, and read.
    h.buy(json!({"sku": MONTHLY})).await;
    let received = h.received().await;
    assert_eq!(received.len(), 2);
    let (headers, body) = &received[1];
    let notification = client
        .read_notification(declared_type(headers), body, h.now())
        .await
        .unwrap();
    assert_eq!(notification.kind, "SUBSCRIPTION_PURCHASED");

    // A SubscribeURL elsewhere is not followed.
    let mut elsewhere = confirmation.clone();
    elsewhere.subscribe_url = "https://evil.example/?Action=ConfirmSubscription".into();
    assert!(matches!(
        client.confirm_subscription(&elsewhere).await,
        Err(AmazonNotificationError::Unverified(_))
    ));
}
