//! The server's Roku Pay client against the Roku Pay simulator over real HTTP: both sides
//! agree on Roku's paths, JSON, dates and failures, and on how secured push notifications
//! are signed and verified.

use std::sync::{Arc, Mutex};

use boxoffice::providers::roku::{
    ROKU_GRACE_PERIOD_DAYS, RokuClient, RokuNotificationError, RokuSettings,
};
use boxoffice::providers::store::{StoreEnvironment, StoreRefusal, StoreState};
use boxoffice_simulators::clock::Now;
use boxoffice_simulators::roku::{
    ROKU_ON_HOLD_DAYS, RokuBillingPeriod, RokuChannel, RokuConfig, RokuProduct, RokuPushConfig,
    RokuSimulator,
};
use chrono::{DateTime, TimeDelta, Utc};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "F05447A57F8DF275FC30EC835FCAD10A19B6";
const MONTHLY: &str = "premium_monthly";
const CHANNEL: u64 = 251_682;

struct Harness {
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: RokuSimulator,
    client: RokuClient,
    http: reqwest::Client,
    pushes: MockServer,
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
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
    let base = format!("http://{address}/sim/roku");
    let clock = Arc::new(Mutex::new(time("2030-01-15T09:00:00Z")));
    let read = clock.clone();
    let now: Now = Arc::new(move || *read.lock().expect("clock"));
    let pushes = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&pushes)
        .await;
    let simulator = RokuSimulator::new(
        RokuConfig {
            public_base_url: base.clone(),
            partner_api_keys: vec![KEY.into()],
            channels: vec![RokuChannel {
                channel_id: CHANNEL,
                name: "Boxoffice".into(),
                products: vec![RokuProduct {
                    code: MONTHLY.into(),
                    name: "Premium".into(),
                    billing_period: RokuBillingPeriod::Monthly,
                    price_minor: 999,
                    currency: "USD".into(),
                    free_trial_days: 0,
                    grace_period_days: 3,
                    on_hold_days: ROKU_ON_HOLD_DAYS,
                }],
            }],
            push: Some(RokuPushConfig {
                url: format!("{}/webhooks/roku", pushes.uri()),
                signed: true,
            }),
        },
        now,
    )
    .expect("simulator");
    let control = OpenApiService::new(simulator.control_api(), "control", "1");
    let app = Route::new()
        .nest("/sim/roku", simulator.endpoint())
        .nest("/sim", control);
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    let client = RokuClient::new(settings(&simulator, KEY)).expect("client");
    Harness {
        base: format!("http://{address}"),
        clock,
        simulator,
        client,
        http: reqwest::Client::new(),
        pushes,
    }
}

fn settings(simulator: &RokuSimulator, key: &str) -> RokuSettings {
    RokuSettings {
        api_base: simulator.api_base().to_owned(),
        environment: StoreEnvironment::Sandbox,
        channel_ids: vec![CHANNEL.to_string()],
        push_jwks_url: simulator.jwks_url(),
        ..RokuSettings::new(key)
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

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/sim/control/roku{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    async fn buy(&self) -> String {
        let order = self
            .control("/purchases", json!({"productId": MONTHLY}))
            .await;
        order["purchaseId"].as_str().expect("purchaseId").to_owned()
    }

    /// The bodies of every push received so far.
    async fn pushed(&self) -> Vec<Vec<u8>> {
        self.pushes
            .received_requests()
            .await
            .expect("recording")
            .into_iter()
            .map(|request| request.body)
            .collect()
    }
}

#[tokio::test]
async fn a_purchase_is_validated_into_the_stores_words() {
    let h = start().await;
    let purchase = h.buy().await;
    let view = h
        .client
        .subscription(&purchase, h.now())
        .await
        .expect("valid");
    assert_eq!(view.environment, StoreEnvironment::Sandbox);
    assert_eq!(view.subscription_ref, purchase);
    assert_eq!(view.product_id, MONTHLY);
    assert_eq!(view.latest_payment.transaction_id, purchase);
    assert_eq!(view.latest_payment.purchased_at, h.now());
    assert_eq!(view.latest_payment.price, Some((999, "USD".into())));
    assert_eq!(view.period_start, h.now());
    assert_eq!(view.expires_at, time("2030-02-15T09:00:00Z"));
    assert!(view.auto_renew);
    assert_eq!(view.state, StoreState::Active);

    match h
        .client
        .subscription("0123456789abcdef0123456789abcdef", h.now())
        .await
    {
        Err(StoreRefusal::Refused { message, .. }) => assert_eq!(message, "Invalid transaction id"),
        other => panic!("{other:?}"),
    }
    match h.client.subscription(&"x".repeat(2000), h.now()).await {
        Err(StoreRefusal::Refused { .. }) => {}
        other => panic!("{other:?}"),
    }
    let stranger = RokuClient::new(settings(&h.simulator, "NOT-THE-KEY")).unwrap();
    match stranger.subscription(&purchase, h.now()).await {
        Err(StoreRefusal::Unavailable(detail)) => assert!(detail.contains("UNAUTHORIZED")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_renewal_push_verifies_and_leads_to_the_new_transaction() {
    let h = start().await;
    let purchase = h.buy().await;
    h.advance(TimeDelta::days(31)).await;
    let bodies = h.pushed().await;
    assert_eq!(bodies.len(), 2);
    let notification = h
        .client
        .read_notification(&bodies[1], h.now())
        .await
        .expect("a verified push");
    assert!(notification.signed);
    assert_eq!(notification.kind, "Sale");
    assert_eq!(notification.subscription_ref(), purchase);
    assert_ne!(notification.transaction_to_validate(), purchase);
    assert_eq!(notification.channel_id.as_deref(), Some("251682"));
    assert_eq!(notification.expires_at, Some(time("2030-03-15T09:00:00Z")));
    assert_eq!(h.client.acknowledgement(&notification), None);
    let view = h
        .client
        .subscription(notification.transaction_to_validate(), h.now())
        .await
        .expect("valid");
    assert_eq!(view.subscription_ref, purchase);
    assert_eq!(
        view.latest_payment.transaction_id,
        notification.transaction_to_validate()
    );
    assert_eq!(
        view.latest_payment.purchased_at,
        time("2030-02-15T09:00:00Z")
    );
    assert_eq!(view.expires_at, time("2030-03-15T09:00:00Z"));

    // The same push again carries the same id.
    let again = h
        .client
        .read_notification(&bodies[1], h.now())
        .await
        .unwrap();
    assert_eq!(again.id, notification.id);
    // A day later the token has expired: stale.
    let stale = h
        .client
        .read_notification(&bodies[1], h.now() + TimeDelta::hours(25))
        .await;
    assert!(
        matches!(stale, Err(RokuNotificationError::Unverified(_))),
        "{stale:?}"
    );
    // A push from before it was made is not valid yet.
    let early = h
        .client
        .read_notification(&bodies[1], time("2030-02-15T07:00:00Z"))
        .await;
    assert!(
        matches!(early, Err(RokuNotificationError::Unverified(_))),
        "{early:?}"
    );
    // Tampering breaks the signature.
    let mut tampered = String::from_utf8(bodies[1].clone()).unwrap();
    let middle = tampered.find('.').unwrap() + 5;
    let replaced = if &tampered[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(middle..=middle, replaced);
    assert!(matches!(
        h.client
            .read_notification(tampered.as_bytes(), h.now())
            .await,
        Err(RokuNotificationError::Unverified(_))
    ));
    // Another channel's server refuses it.
    let elsewhere = RokuClient::new(RokuSettings {
        channel_ids: vec!["999".into()],
        ..settings(&h.simulator, KEY)
    })
    .unwrap();
    assert!(matches!(
        elsewhere.read_notification(&bodies[1], h.now()).await,
        Err(RokuNotificationError::Foreign(_))
    ));
    // Unsecured pushes are refused unless allowed.
    let unsigned = br#"{"transactionType":"Sale","transactionId":"t","originalTransactionId":"o","channelId":"251682","responseKey":"k"}"#;
    assert!(matches!(
        h.client.read_notification(unsigned, h.now()).await,
        Err(RokuNotificationError::Unverified(_))
    ));
    let lenient = RokuClient::new(RokuSettings {
        accept_unsigned_pushes: true,
        ..settings(&h.simulator, KEY)
    })
    .unwrap();
    let read = lenient.read_notification(unsigned, h.now()).await.unwrap();
    assert_eq!(read.id, "k");
    assert_eq!(
        lenient.acknowledgement(&read),
        Some((KEY.to_owned(), "k".to_owned()))
    );
}

#[tokio::test]
async fn grace_hold_recovery_cancellation_and_refunds_read_as_the_store_says() {
    let h = start().await;
    let purchase = h.buy().await;
    h.control(
        &format!("/subscriptions/{purchase}/fail_next_renewal"),
        json!({"failure": "gracePeriod"}),
    )
    .await;
    h.advance(TimeDelta::days(31) + TimeDelta::hours(1)).await;
    let grace = h.client.subscription(&purchase, h.now()).await.unwrap();
    assert_eq!(
        grace.state,
        StoreState::GracePeriod {
            until: time("2030-02-15T09:00:00Z")
                + TimeDelta::days(i64::from(ROKU_GRACE_PERIOD_DAYS))
        }
    );
    assert!(grace.auto_renew);
    h.advance(TimeDelta::days(3)).await;
    let hold = h.client.subscription(&purchase, h.now()).await.unwrap();
    assert_eq!(hold.state, StoreState::BillingRetry);
    // Each push was fresh when it was made; read now, the older ones are stale.
    let bodies = h.pushed().await;
    let latest = h
        .client
        .read_notification(bodies.last().unwrap(), h.now())
        .await
        .unwrap();
    assert_eq!(latest.kind, "OnHoldInitiated");
    assert!(matches!(
        h.client.read_notification(&bodies[1], h.now()).await,
        Err(RokuNotificationError::Unverified(_))
    ));
    let log: Value = h
        .http
        .get(format!("{}/sim/control/roku/notifications", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = log["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|message| message["transactionType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Sale", "GraceInitiated", "OnHoldInitiated"]);

    h.control(&format!("/subscriptions/{purchase}/recover"), json!({}))
        .await;
    let recovered = h.client.subscription(&purchase, h.now()).await.unwrap();
    assert_eq!(recovered.state, StoreState::Active);
    assert_ne!(recovered.latest_payment.transaction_id, purchase);
    assert_eq!(recovered.expires_at, h.now() + chrono::Months::new(1));

    h.client
        .cancel_subscription(&purchase, Some("boxoffice-42"), h.now())
        .await
        .expect("cancelled");
    let cancelled = h.client.subscription(&purchase, h.now()).await.unwrap();
    assert_eq!(cancelled.state, StoreState::Active);
    assert!(!cancelled.auto_renew);
    // Pushes due together go out concurrently and may arrive in any order, as Roku's may;
    // deliver the cancellation before the refund so that each can be read as the latest.
    h.simulator.deliver_due().await;
    let bodies = h.pushed().await;
    let cancellation = h
        .client
        .read_notification(bodies.last().unwrap(), h.now())
        .await
        .unwrap();
    assert_eq!(cancellation.kind, "Cancellation");

    let refund_id = h
        .client
        .refund(
            &recovered.latest_payment.transaction_id,
            500,
            "USD",
            Some("r-1"),
            None,
        )
        .await
        .expect("refunded");
    assert_eq!(refund_id.len(), 32);
    match h.client.refund(&purchase, 5000, "USD", None, None).await {
        Err(StoreRefusal::Refused { message, .. }) => assert!(message.contains("refund amount")),
        other => panic!("{other:?}"),
    }
    h.simulator.deliver_due().await;
    let bodies = h.pushed().await;
    let refund = h
        .client
        .read_notification(bodies.last().unwrap(), h.now())
        .await
        .unwrap();
    assert_eq!(refund.kind, "Refund");
    let details = refund.refund.clone().expect("the refund");
    assert_eq!(details.refund_id, refund_id);
    assert_eq!(details.amount, Some((500, "USD".into())));
    assert_eq!(refund.transaction_to_validate(), purchase);

    h.advance(TimeDelta::days(40)).await;
    let ended = h.client.subscription(&purchase, h.now()).await.unwrap();
    assert_eq!(ended.state, StoreState::Expired);
    assert!(!ended.auto_renew);
}
