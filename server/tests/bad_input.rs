//! Bad input gets a 4xx in CloudPay's error shape, never a 5xx, and changes nothing.

mod common;

use common::{TestApp, assert_error_shape};
use serde_json::{Value, json};

/// A CloudPay session id for the test user Alice.
async fn alice_session(app: &TestApp) -> String {
    let (_, started) = app.start_session(&app.alice_token().await).await;
    started["AuthenticationToken"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, session: &str, body: String) -> (u16, Value) {
    let response = app
        .http
        .patch(app.url(&format!("/cloudpay/api/v1/account?apisessionid={session}")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn refused_account_updates_change_nothing() {
    let app = TestApp::start().await;
    let session = alice_session(&app).await;
    let (_, before) = app
        .get(&format!("/cloudpay/api/v1/account?apisessionid={session}"))
        .await;
    let postcode = before["CustomFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|field| field["Label"] == "Postcode")
        .unwrap()["Id"]
        .clone();

    let refused = [
        ("malformed JSON", "{\"FirstName\": ".to_owned(), 400),
        ("wrong type", json!({ "FirstName": 5 }).to_string(), 400),
        ("email change", json!({ "FirstName": "Eve", "EmailAddress": "eve@example.com" }).to_string(), 400),
        (
            "unknown custom field",
            json!({ "FirstName": "Eve", "CustomFields": [{ "Id": "nope", "Label": "x", "Required": false, "Value": "1" }] })
                .to_string(),
            400,
        ),
        (
            "required custom field emptied",
            json!({ "FirstName": "Eve", "CustomFields": [{ "Id": postcode, "Label": "Postcode", "Required": true, "Value": "" }] })
                .to_string(),
            400,
        ),
        ("blank name", json!({ "FirstName": "   " }).to_string(), 400),
        ("oversize body", json!({ "FirstName": "a".repeat(300 * 1024) }).to_string(), 413),
    ];
    for (case, body, expected) in refused {
        let (status, error) = patch(&app, &session, body).await;
        assert_eq!(status, expected, "{case}: {error}");
        assert_error_shape(expected, &error);
    }
    let (_, after) = app
        .get(&format!("/cloudpay/api/v1/account?apisessionid={session}"))
        .await;
    assert_eq!(before, after, "refused updates left the account as it was");

    let (status, updated) = patch(
        &app,
        &session,
        json!({ "FirstName": "Alicia", "CustomFields": [{ "Id": postcode, "Label": "Postcode", "Required": true, "Value": "SW1A 1AA" }] })
            .to_string(),
    )
    .await;
    assert_eq!(status, 202, "{updated}");
    assert_eq!(updated["FirstName"], "Alicia");
    assert!(
        updated.get("Subscriptions").is_none(),
        "a PATCH answers without subscriptions"
    );
    let (_, account) = app
        .get(&format!("/cloudpay/api/v1/account?apisessionid={session}"))
        .await;
    assert_eq!(account["FirstName"], "Alicia");
    assert_eq!(account["Subscriptions"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_documented_client_errors() {
    let app = TestApp::start().await;
    let cases = [
        ("/cloudpay/api/v1/account", 401),
        ("/cloudpay/api/v1/account?apijwttoken=not.a.jwt", 401),
        ("/cloudpay/api/v1/account?apisessionid=unknown-session", 401),
        ("/cloudpay/api/v1/session/terminate", 401),
        ("/cloudpay/api/v1/package?type=web", 400),
        ("/cloudpay/api/v1/session/start", 400),
        (
            "/cloudpay/api/v1/session/start?emailaddress=alice@example.com&password=wrong",
            401,
        ),
        (
            "/cloudpay/api/v1/session/start?emailaddress=nobody@example.com&password=Whatever-1",
            401,
        ),
        ("/cloudpay/sso/start", 400),
        ("/cloudpay/sso/start/bm90LWEtcmV0dXJudXJs?token=x", 400),
        ("/cloudpay/api/v1/session/ksession", 400),
        ("/cloudpay/api/v1/resume?apisessionid=x&size=1000", 400),
        ("/cloudpay/js/9.9.9/stream-payments.js", 404),
        ("/cloudpay/no/such/path", 404),
    ];
    for (path, expected) in cases {
        let (status, body) = app.get(path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert_error_shape(expected, &body);
    }
    let response = app
        .http
        .get(app.url("/cloudpay/api/v1/package"))
        .header("location", "GBR")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_error_shape(400, &response.json().await.unwrap());

    let response = app
        .http
        .post(app.url("/cloudpay/api/v1/session/start"))
        .header("content-type", "application/json")
        .body("[1, 2]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_error_shape(400, &response.json().await.unwrap());

    let (status, body) = app.get("/cloudpay/api/v1/package/no-such-package").await;
    assert_eq!((status, &body["status"]), (404, &json!(404)), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn geo_restricted_packages_need_a_listed_location() {
    let app = TestApp::start().await;
    let fixtures = app.server.config.fixtures.clone();
    let listed = |location: Option<&str>| {
        let request = app.http.get(app.url("/cloudpay/api/v1/package"));
        let request = match location {
            Some(code) => request.header("location", code),
            None => request,
        };
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["SubscriptionPlanOptions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|plan| plan["Id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let geo = fixtures.geo_restricted_package_id.clone();
    assert!(listed(Some("ie")).await.contains(&geo));
    assert!(!listed(Some("US")).await.contains(&geo));
    assert!(!listed(None).await.contains(&geo));
    assert!(
        listed(Some("US"))
            .await
            .contains(&fixtures.monthly_package_id)
    );
    assert!(
        !listed(Some("GB")).await.contains(&fixtures.iap_package_id),
        "IAP packages need type=iap"
    );

    let (status, body) = app.get("/cloudpay/api/v1/package?type=iap").await;
    assert_eq!(status, 200);
    let plans = body["SubscriptionPlanOptions"].as_array().unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0]["Id"], json!(fixtures.iap_package_id));
    assert_eq!(plans[0]["IAPData"].as_array().unwrap().len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn redirects_stay_on_this_host_or_an_allowed_one() {
    let app = TestApp::start().await;
    let session = alice_session(&app).await;
    let set_cookie = |callback: &str| {
        format!("/cloudpay/api/v1/session/setcookie/{session}?callbackurl={callback}")
    };
    for refused in [
        "%2F%09%2Fevil.com",
        "%2F%0A%2Fevil.com",
        "%2F%2Fevil.com",
        "%2F%5Cevil.com",
        "https%3A%2F%2Fevil.com%2F",
        "javascript%3Aalert(1)",
    ] {
        let (status, body) = app.get(&set_cookie(refused)).await;
        assert_eq!(status, 400, "{refused}: {body}");
        assert_error_shape(400, &body);
    }
    for (allowed, location) in [
        ("%2Faccount%3Ftab%3D1", "/account?tab=1"),
        (
            "http%3A%2F%2Flocalhost%3A3000%2Fdone",
            "http://localhost:3000/done",
        ),
    ] {
        let response = app
            .http
            .get(app.url(&set_cookie(allowed)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "{allowed}");
        assert_eq!(response.headers()["location"], location);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        assert!(cookie.starts_with(&format!(".auth={session};")), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("Secure"),
            "{cookie}"
        );
    }
    let (status, body) = app
        .get(&set_cookie("%2Fx").replace(&session, "not-a-session"))
        .await;
    assert_eq!(status, 401, "{body}");
    app.stop().await;
}

/// A PATCH of the account whose body is sent in these chunks (`Transfer-Encoding: chunked`,
/// so no length is announced), over a raw connection: the status and the JSON answer.
async fn patch_in_chunks(app: &TestApp, session: &str, chunks: Vec<Vec<u8>>) -> (u16, Value) {
    let address = app.server.base_url.trim_start_matches("http://").to_owned();
    let path = format!("/cloudpay/api/v1/account?apisessionid={session}");
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).expect("reachable");
        let mut request = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for chunk in chunks {
            request.extend(format!("{:x}\r\n", chunk.len()).bytes());
            request.extend(chunk);
            request.extend(b"\r\n");
        }
        request.extend(b"0\r\n\r\n");
        // The server may answer and close before it has read an oversize body whole.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null);
        (status, body)
    })
    .await
    .expect("the request ran")
}

#[tokio::test]
async fn a_body_without_a_length_is_read_whole_and_limited_as_it_arrives() {
    let app = TestApp::start().await;
    let session = alice_session(&app).await;

    let (status, error) = patch_in_chunks(&app, &session, vec![vec![b' '; 64 * 1024]; 5]).await;
    assert_eq!(status, 413, "{error}");
    assert_error_shape(413, &error);

    let body = json!({ "FirstName": "Chunked" }).to_string().into_bytes();
    let chunks = body.chunks(5).map(<[u8]>::to_vec).collect();
    let (status, updated) = patch_in_chunks(&app, &session, chunks).await;
    assert_eq!(status, 202, "{updated}");
    assert_eq!(updated["FirstName"], "Chunked", "every chunk was read");
    app.stop().await;
}

#[tokio::test]
async fn an_unread_oversize_body_closes_the_connection() {
    let app = TestApp::start().await;
    let response = app
        .http
        .post(app.url("/cloudpay/api/v1/session/start"))
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["connection"], "close");
    assert_error_shape(413, &response.json().await.unwrap());
    // The client opens a fresh connection and carries on.
    assert_eq!(app.get("/cloudpay/api/v1/package").await.0, 200);
    app.stop().await;
}
