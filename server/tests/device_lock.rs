//! The device lock, over HTTP, on SQLite or (with BOXOFFICE_TEST_DATABASE_URL) PostgreSQL.

mod common;

use common::{TestApp, assert_error_shape};

/// Starts one session per token, all at once; each answer's status and customer id.
async fn start_concurrently(app: &TestApp, tokens: &[String]) -> Vec<(u16, Option<String>)> {
    let attempts: Vec<_> = tokens
        .iter()
        .map(|token| {
            let http = app.http.clone();
            let url = app.url(&format!(
                "/cloudpay/api/v1/session/start?apijwttoken={token}"
            ));
            tokio::spawn(async move {
                let response = http.get(url).send().await.expect("reachable");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("json");
                let customer = body["CurrentCustomerSession"]["CustomerId"]
                    .as_str()
                    .map(str::to_owned);
                (status, customer)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in attempts {
        answers.push(attempt.await.expect("task"));
    }
    answers
}

/// Each call signs in again, as a separate device would: a new token.
async fn new_device_token(app: &TestApp) -> String {
    app.alice_token().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_starts_for_one_customer_admit_exactly_the_limit() {
    let app = TestApp::start().await;
    let mut tokens = Vec::new();
    for _ in 0..50 {
        tokens.push(new_device_token(&app).await);
    }
    // Create the customer first, so the race is about sessions, not the first sighting.
    let (status, presence) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?apijwttoken={}",
            tokens[0]
        ))
        .await;
    assert_eq!(status, 200, "{presence}");

    let statuses: Vec<u16> = start_concurrently(&app, &tokens)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    let refused = statuses.iter().filter(|status| **status == 403).count();
    assert_eq!((admitted, refused), (3, 47), "statuses: {statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_fourth_session_is_refused_until_one_is_terminated() {
    let app = TestApp::start().await;
    let mut session_ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = app.start_session(&new_device_token(&app).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["CurrentCustomerSessionStatus"], -1);
        assert_eq!(
            body["AuthenticationToken"],
            body["CurrentCustomerSession"]["Id"]
        );
        session_ids.push(body["AuthenticationToken"].as_str().unwrap().to_owned());
    }
    let fourth = new_device_token(&app).await;
    let (status, body) = app.start_session(&fourth).await;
    assert_eq!(status, 403, "{body}");
    let message = assert_error_shape(403, &body);
    assert_eq!(
        message,
        "The customer account is blocked due to concurrency limit"
    );

    let (status, body) = app
        .get(&format!(
            "/cloudpay/api/v1/session/terminate?apisessionid={}",
            session_ids[0]
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["CurrentCustomerSessionStatus"], 0);
    assert!(body["CurrentCustomerSession"].is_null());

    let (status, body) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?apisessionid={}",
            session_ids[0]
        ))
        .await;
    assert_eq!(
        (status, &body["CurrentCustomerSessionStatus"]),
        (200, &serde_json::json!(0))
    );
    let (status, body) = app.start_session(&fourth).await;
    assert_eq!(status, 200, "a terminated session frees its slot: {body}");
    let (status, _) = app.start_session(&new_device_token(&app).await).await;
    assert_eq!(status, 403);
    app.stop().await;
}

#[tokio::test]
async fn starting_again_with_the_same_token_resumes_its_session() {
    let app = TestApp::start().await;
    let token = new_device_token(&app).await;
    let (_, first) = app.start_session(&token).await;
    for _ in 0..5 {
        let (status, again) = app.start_session(&token).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(
            again["AuthenticationToken"], first["AuthenticationToken"],
            "a reload takes no new slot"
        );
    }
    assert_eq!(
        app.start_session(&new_device_token(&app).await).await.0,
        200
    );
    assert_eq!(
        app.start_session(&new_device_token(&app).await).await.0,
        200
    );
    assert_eq!(
        app.start_session(&new_device_token(&app).await).await.0,
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn idle_sessions_expire_on_the_virtual_clock_and_free_their_slots() {
    let app = TestApp::start_with_limit(2).await;
    let (_, first) = app.start_session(&new_device_token(&app).await).await;
    let first_id = first["AuthenticationToken"].as_str().unwrap().to_owned();
    assert_eq!(
        app.start_session(&new_device_token(&app).await).await.0,
        200
    );
    assert_eq!(
        app.start_session(&new_device_token(&app).await).await.0,
        403
    );

    // Presence restarts the first session's idle timer; the second one stays idle.
    app.advance_clock("90m").await;
    let (_, presence) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?apisessionid={first_id}"
        ))
        .await;
    assert_eq!(presence["CurrentCustomerSessionStatus"], -1);
    app.advance_clock("45m").await;

    let (status, body) = app.start_session(&new_device_token(&app).await).await;
    assert_eq!(
        status, 200,
        "the idle session expired and freed a slot: {body}"
    );
    assert_eq!(
        app.start_session(&new_device_token(&app).await).await.0,
        403,
        "the touched session is still live"
    );
    let (_, presence) = app
        .get(&format!(
            "/cloudpay/api/v1/session/prescence?apisessionid={first_id}"
        ))
        .await;
    assert_eq!(presence["CurrentCustomerSessionStatus"], -1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_first_logins_create_one_customer_and_respect_the_lock() {
    let app = TestApp::start().await;
    let email = format!("racer-{}@example.com", uuid::Uuid::new_v4().simple());
    let response = app
        .http
        .post(app.url("/sim/control/sso/users"))
        .json(&serde_json::json!({
            "email": email, "password": "Racer-Passw0rd!", "givenName": "Ray", "familyName": "Racer"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.id_token(&email, "Racer-Passw0rd!").await);
    }
    let mut admitted_customers = Vec::new();
    let mut refused = 0;
    for answer in start_concurrently(&app, &tokens).await {
        match answer {
            (200, Some(customer)) => admitted_customers.push(customer),
            (403, _) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((admitted_customers.len(), refused), (3, 17));
    admitted_customers.dedup();
    assert_eq!(admitted_customers.len(), 1, "one customer for one identity");
    app.stop().await;
}

#[tokio::test]
async fn simulator_mode_can_sign_with_a_shared_secret() {
    let data_dir =
        std::env::temp_dir().join(format!("boxoffice-test-{}", uuid::Uuid::new_v4().simple()));
    let server = boxoffice::sim::SimServer::start(boxoffice::sim::SimOptions {
        addr: "127.0.0.1:0".into(),
        data_dir: data_dir.clone(),
        sso_shared_secret: Some("partner-shared-secret".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(server.config.sso.algorithm, "HS256");
    let http = reqwest::Client::new();
    let alice = &server.config.test_users[0];
    let response = http
        .get(format!(
            "{}/cloudpay/api/v1/session/start?emailaddress={}&password={}",
            server.base_url, alice.email, alice.password
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
}
