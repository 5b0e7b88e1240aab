//! The Google Play simulator over real HTTP, the way Google's client libraries and a push
//! receiver see it: the service account's token flow, the Play Developer API with Google's
//! paths and errors, renewals on a clock the test moves, and RTDN pushes with their OIDC
//! tokens. The control surface plays the user and the Play Console.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use boxoffice_simulators::clock::Now;
use boxoffice_simulators::google::{
    ANDROIDPUBLISHER_SCOPE, GoogleApplication, GoogleBasePlan, GoogleBillingPeriod, GoogleConfig,
    GoogleSimulator, GoogleSubscription, openapi_json,
};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PACKAGE: &str = "com.boxoffice.app";
const MONTHLY: &str = "premium_monthly";
const MOVIE: &str = "movie_rental";
const START: &str = "2030-01-15T09:00:00Z";
const PUSH_ACCOUNT: &str = "rtdn-push@boxoffice-sim.iam.gserviceaccount.com";

fn config(public_base_url: String) -> GoogleConfig {
    GoogleConfig {
        public_base_url,
        project_id: "boxoffice-sim".into(),
        service_account_email: "play-api@boxoffice-sim.iam.gserviceaccount.com".into(),
        applications: vec![GoogleApplication {
            package_name: PACKAGE.into(),
            subscriptions: vec![GoogleSubscription {
                product_id: MONTHLY.into(),
                base_plans: vec![
                    GoogleBasePlan {
                        base_plan_id: "p1m".into(),
                        billing_period: GoogleBillingPeriod::Months(1),
                        price_micros: 9_990_000,
                        currency_code: "EUR".into(),
                        grace_period_days: 7,
                        account_hold_days: 30,
                    },
                    GoogleBasePlan {
                        base_plan_id: "p1w-no-grace".into(),
                        billing_period: GoogleBillingPeriod::Days(7),
                        price_micros: 2_500_000,
                        currency_code: "EUR".into(),
                        grace_period_days: 0,
                        account_hold_days: 0,
                    },
                ],
            }],
            one_time_products: vec![MOVIE.into()],
        }],
        push: None,
        enforce_acknowledgement: true,
    }
}

/// A simulator alone at the root of a random loopback port, its control surface at
/// `/sim/control/google`, on a clock the test moves.
struct Harness {
    http: reqwest::Client,
    base: String,
    clock: Arc<Mutex<DateTime<Utc>>>,
    simulator: GoogleSimulator,
    /// The service account's key file, from the control surface.
    key: Value,
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.body);
        &self.body
    }

    /// Google's error: its status, and the first detail's reason.
    #[track_caller]
    fn google_error(&self, status: u16, reason: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"]["code"], status, "{}", self.body);
        assert_eq!(
            self.body["error"]["errors"][0]["reason"], reason,
            "{}",
            self.body
        );
        &self.body["error"]
    }
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
    let base = format!("http://{address}");
    let clock = Arc::new(Mutex::new(time(START)));
    let read = clock.clone();
    let now: Now = Arc::new(move || *read.lock().expect("clock"));
    let simulator = GoogleSimulator::new(config(base.clone()), now).expect("simulator");
    let control = OpenApiService::new(simulator.control_api(), "control", "1");
    let app = Route::new()
        .nest("/sim", control)
        .nest("/", simulator.endpoint());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    let http = reqwest::Client::new();
    let key = http
        .get(format!("{base}/sim/control/google/service_account_key"))
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("key JSON");
    Harness {
        http,
        base,
        clock,
        simulator,
        key,
    }
}

/// A service account's JWT bearer assertion, as google-auth signs it.
fn assertion(key: &Value, scope: &str, issued: DateTime<Utc>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key["private_key_id"].as_str().map(str::to_owned);
    let claims = json!({
        "iat": issued.timestamp(),
        "exp": issued.timestamp() + 3600,
        "iss": key["client_email"],
        "aud": "https://oauth2.googleapis.com/token",
        "scope": scope,
    });
    let pem = key["private_key"].as_str().expect("private_key");
    let signing_key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("PEM");
    jsonwebtoken::encode(&header, &claims, &signing_key).expect("signed")
}

/// A path segment, percent-encoded as googleapiclient encodes it.
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Harness {
    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    /// Moves the clock and settles, as the host does after a move: the ids of the messages
    /// pushed.
    async fn advance(&self, by: TimeDelta) -> Vec<String> {
        let now = self.now();
        *self.clock.lock().expect("clock") = now + by;
        let report = self.simulator.settle_due().await;
        report
            .attempts
            .into_iter()
            .map(|attempt| attempt.message_id)
            .collect()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
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
            www_authenticate,
            body,
        }
    }

    async fn token_reply(&self, assertion: &str) -> Reply {
        self.send(self.http.post(format!("{}/token", self.base)).form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ]))
        .await
    }

    async fn access_token(&self) -> String {
        let reply = self
            .token_reply(&assertion(&self.key, ANDROIDPUBLISHER_SCOPE, self.now()))
            .await;
        reply.ok()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn api(&self, method: reqwest::Method, path: &str) -> Reply {
        let token = self.access_token().await;
        self.send(
            self.http
                .request(
                    method,
                    format!("{}/androidpublisher/v3/applications{path}", self.base),
                )
                .query(&[("alt", "json")])
                .bearer_auth(token),
        )
        .await
    }

    async fn v2(&self, token: &str) -> Reply {
        self.api(
            reqwest::Method::GET,
            &format!(
                "/{PACKAGE}/purchases/subscriptionsv2/tokens/{}",
                segment(token)
            ),
        )
        .await
    }

    async fn v1(&self, token: &str) -> Reply {
        self.api(
            reqwest::Method::GET,
            &format!(
                "/{PACKAGE}/purchases/subscriptions/{MONTHLY}/tokens/{}",
                segment(token)
            ),
        )
        .await
    }

    /// A v1 custom method: `…/subscriptions/{id}/tokens/{token}:{verb}`.
    async fn v1_method(&self, token: &str, verb: &str) -> Reply {
        self.api(
            reqwest::Method::POST,
            &format!(
                "/{PACKAGE}/purchases/subscriptions/{MONTHLY}/tokens/{}:{verb}",
                segment(token)
            ),
        )
        .await
    }

    async fn control(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}/sim/control/google{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn buy(&self, body: Value) -> Value {
        self.control("/subscriptions", body).await.ok().clone()
    }

    /// A monthly subscription, acknowledged: its token.
    async fn subscribed(&self) -> String {
        let purchase = self.buy(json!({"productId": MONTHLY})).await;
        let token = purchase["purchaseToken"]
            .as_str()
            .expect("token")
            .to_owned();
        let acknowledged = self.v1_method(&token, "acknowledge").await;
        assert_eq!(acknowledged.status, 200, "{:?}", acknowledged);
        token
    }

    async fn state_of(&self, token: &str) -> String {
        self.v2(token).await.ok()["subscriptionState"]
            .as_str()
            .expect("state")
            .to_owned()
    }

    /// Pushes go to `server`'s `/rtdn`, authenticated, with this audience.
    async fn push_to(&self, server: &MockServer) {
        let settings = self
            .send(
                self.http
                    .put(format!("{}/sim/control/google/rtdn", self.base))
                    .json(&json!({
                        "endpoint": format!("{}/rtdn", server.uri()),
                        "subscriptionId": "play-rtdn",
                        "oidcServiceAccountEmail": PUSH_ACCOUNT,
                        "audience": "boxoffice-rtdn",
                    })),
            )
            .await;
        assert_eq!(
            settings.ok()["subscription"],
            "projects/boxoffice-sim/subscriptions/play-rtdn"
        );
    }
}

// ------------------------------------------------------------------ auth

#[tokio::test]
async fn the_token_endpoint_exchanges_a_signed_grant_and_refuses_a_bad_one() {
    let h = start().await;
    assert_eq!(h.key["type"], "service_account");
    assert_eq!(h.key["token_uri"], format!("{}/token", h.base));
    assert!(
        h.key["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    let granted = h
        .token_reply(&assertion(&h.key, ANDROIDPUBLISHER_SCOPE, h.now()))
        .await;
    let granted = granted.ok();
    assert!(
        granted["access_token"]
            .as_str()
            .unwrap()
            .starts_with("ya29.")
    );
    assert_eq!(granted["expires_in"], 3599);
    assert_eq!(granted["token_type"], "Bearer");

    // Signed with another service account's key.
    let stranger = start().await;
    let forged = h
        .token_reply(&assertion(
            &json!({
                "private_key_id": h.key["private_key_id"],
                "client_email": h.key["client_email"],
                "private_key": stranger.key["private_key"],
            }),
            ANDROIDPUBLISHER_SCOPE,
            h.now(),
        ))
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.body["error"], "invalid_grant");
    assert_eq!(forged.body["error_description"], "Invalid JWT Signature.");

    // Signed two hours before the simulator's clock.
    let stale = h
        .token_reply(&assertion(
            &h.key,
            ANDROIDPUBLISHER_SCOPE,
            h.now() - TimeDelta::hours(2),
        ))
        .await;
    assert_eq!(stale.body["error"], "invalid_grant");

    let wrong_grant = h
        .send(
            h.http
                .post(format!("{}/token", h.base))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(wrong_grant.status, 400);
    assert_eq!(wrong_grant.body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn api_calls_need_a_live_token_with_the_scope() {
    let h = start().await;
    let token = h.subscribed().await;
    let url = format!(
        "{}/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptionsv2/tokens/{token}",
        h.base
    );

    let anonymous = h.send(h.http.get(&url)).await;
    let error = anonymous.google_error(401, "required");
    assert_eq!(error["status"], "UNAUTHENTICATED");
    assert!(
        anonymous
            .www_authenticate
            .as_deref()
            .unwrap()
            .starts_with("Bearer realm=")
    );

    let forged = h.send(h.http.get(&url).bearer_auth("ya29.forged")).await;
    forged.google_error(401, "authError");

    let access = h.access_token().await;
    assert_eq!(
        h.send(h.http.get(&url).bearer_auth(&access)).await.status,
        200
    );
    h.advance(TimeDelta::seconds(3599)).await;
    let expired = h.send(h.http.get(&url).bearer_auth(&access)).await;
    expired.google_error(401, "authError");

    let narrow = h
        .token_reply(&assertion(
            &h.key,
            "https://www.googleapis.com/auth/cloud-platform",
            h.now(),
        ))
        .await;
    let narrow = narrow.ok()["access_token"].as_str().unwrap().to_owned();
    let forbidden = h.send(h.http.get(&url).bearer_auth(narrow)).await;
    forbidden.google_error(403, "insufficientPermissions");
    assert!(
        forbidden
            .www_authenticate
            .as_deref()
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn bad_requests_get_googles_errors_never_a_5xx() {
    let h = start().await;
    let token = h.subscribed().await;

    h.v2("not a token").await.google_error(400, "invalid");
    h.v2("abcdefghijklmnopqrstuvwx.AO-J1Ounknown")
        .await
        .google_error(400, "invalid");

    let unknown_package = h
        .api(
            reqwest::Method::GET,
            &format!("/com.unknown.app/purchases/subscriptionsv2/tokens/{token}"),
        )
        .await;
    let error = unknown_package.google_error(404, "applicationNotFound");
    assert_eq!(
        error["message"],
        "No application was found for the given package name."
    );
    assert_eq!(error["errors"][0]["domain"], "androidpublisher");

    // The token of another product.
    let other_product = h
        .api(
            reqwest::Method::GET,
            &format!("/{PACKAGE}/purchases/subscriptions/another_product/tokens/{token}"),
        )
        .await;
    other_product.google_error(400, "invalid");

    let bad_json = h
        .send(
            h.http
                .post(format!(
                    "{}/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptions/{MONTHLY}/tokens/{token}:acknowledge",
                    h.base
                ))
                .bearer_auth(h.access_token().await)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    bad_json.google_error(400, "parseError");

    let no_context = h
        .send(
            h.http
                .post(format!(
                    "{}/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptionsv2/tokens/{token}:revoke",
                    h.base
                ))
                .bearer_auth(h.access_token().await)
                .json(&json!({})),
        )
        .await;
    no_context.google_error(400, "badRequest");

    // Google's paths only: the verb after a colon, nothing after the token.
    let slash_verb = h
        .api(
            reqwest::Method::POST,
            &format!("/{PACKAGE}/purchases/subscriptions/{MONTHLY}/tokens/{token}/acknowledge"),
        )
        .await;
    slash_verb.google_error(404, "notFound");
    let unknown_verb = h.v1_method(&token, "explode").await;
    unknown_verb.google_error(404, "notFound");

    let unknown_product = h
        .control("/subscriptions", json!({"productId": "nope"}))
        .await;
    unknown_product.google_error(400, "badRequest");
    let bad_region = h
        .control(
            "/subscriptions",
            json!({"productId": MONTHLY, "regionCode": "germany"}),
        )
        .await;
    bad_region.google_error(400, "badRequest");
    let unknown_token = h.control("/subscriptions/nope/cancel", json!({})).await;
    unknown_token.google_error(404, "notFound");
}

// ------------------------------------------------------------------ reading purchases

#[tokio::test]
async fn a_purchase_reads_back_through_v2_and_v1() {
    let h = start().await;
    let purchase = h
        .buy(json!({
            "productId": MONTHLY,
            "regionCode": "DE",
            "obfuscatedExternalAccountId": "customer-42",
            "testPurchase": true,
        }))
        .await;
    let token = purchase["purchaseToken"].as_str().unwrap().to_owned();
    let order_id = purchase["orderId"].as_str().unwrap().to_owned();
    assert_eq!(purchase["packageName"], PACKAGE);
    assert_eq!(purchase["purchaseTime"], time(START).timestamp_millis());
    assert_eq!(purchase["acknowledged"], false);
    assert!(token.contains(".AO-J1O"), "{token}");
    assert!(order_id.starts_with("GPA."), "{order_id}");

    let v2 = h.v2(&token).await;
    let v2 = v2.ok();
    assert_eq!(v2["kind"], "androidpublisher#subscriptionPurchaseV2");
    assert_eq!(v2["regionCode"], "DE");
    assert_eq!(v2["startTime"], "2030-01-15T09:00:00.000Z");
    assert_eq!(v2["subscriptionState"], "SUBSCRIPTION_STATE_ACTIVE");
    assert_eq!(v2["latestOrderId"], order_id);
    assert_eq!(v2["acknowledgementState"], "ACKNOWLEDGEMENT_STATE_PENDING");
    assert_eq!(v2["testPurchase"], json!({}));
    assert_eq!(
        v2["externalAccountIdentifiers"]["obfuscatedExternalAccountId"],
        "customer-42"
    );
    let item = &v2["lineItems"][0];
    assert_eq!(item["productId"], MONTHLY);
    assert_eq!(item["expiryTime"], "2030-02-15T09:00:00.000Z");
    assert_eq!(item["autoRenewingPlan"]["autoRenewEnabled"], true);
    assert_eq!(
        item["autoRenewingPlan"]["recurringPrice"],
        json!({"currencyCode": "EUR", "units": "9", "nanos": 990_000_000})
    );
    assert_eq!(item["offerDetails"]["basePlanId"], "p1m");
    assert_eq!(item["latestSuccessfulOrderId"], order_id);
    assert!(v2.get("canceledStateContext").is_none());

    let v1 = h.v1(&token).await;
    let v1 = v1.ok();
    assert_eq!(v1["kind"], "androidpublisher#subscriptionPurchase");
    assert_eq!(
        v1["startTimeMillis"],
        time(START).timestamp_millis().to_string()
    );
    assert_eq!(
        v1["expiryTimeMillis"],
        time("2030-02-15T09:00:00Z").timestamp_millis().to_string()
    );
    assert_eq!(v1["autoRenewing"], true);
    assert_eq!(v1["priceCurrencyCode"], "EUR");
    assert_eq!(v1["priceAmountMicros"], "9990000");
    assert_eq!(v1["countryCode"], "DE");
    assert_eq!(v1["paymentState"], 1);
    assert_eq!(v1["orderId"], order_id);
    assert_eq!(v1["purchaseType"], 0);
    assert_eq!(v1["acknowledgementState"], 0);
    assert_eq!(v1["obfuscatedExternalAccountId"], "customer-42");

    let acknowledged = h.v1_method(&token, "acknowledge").await;
    assert_eq!(acknowledged.status, 200);
    assert_eq!(acknowledged.body, Value::Null, "an empty body, as Google's");
    assert_eq!(
        h.v2(&token).await.ok()["acknowledgementState"],
        "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED"
    );
    assert_eq!(h.v1(&token).await.ok()["acknowledgementState"], 1);
    assert_eq!(h.v1_method(&token, "acknowledge").await.status, 200);
}

#[tokio::test]
async fn one_time_products_are_read_acknowledged_consumed_and_refunded() {
    let h = start().await;
    let purchase = h
        .control("/products", json!({"productId": MOVIE, "quantity": 2}))
        .await;
    let purchase = purchase.ok();
    let token = purchase["purchaseToken"].as_str().unwrap().to_owned();
    let path = format!(
        "/{PACKAGE}/purchases/products/{MOVIE}/tokens/{}",
        segment(&token)
    );
    let read = h.api(reqwest::Method::GET, &path).await;
    let read = read.ok();
    assert_eq!(read["kind"], "androidpublisher#productPurchase");
    assert_eq!(read["purchaseState"], 0);
    assert_eq!(read["consumptionState"], 0);
    assert_eq!(read["acknowledgementState"], 0);
    assert_eq!(read["orderId"], purchase["orderId"]);
    assert_eq!(read["productId"], MOVIE);
    assert_eq!(read["purchaseToken"], token.as_str());
    assert_eq!(read["quantity"], 2);
    assert_eq!(read["regionCode"], "US");
    assert_eq!(read["refundableQuantity"], 2);

    let acknowledged = h
        .api(reqwest::Method::POST, &format!("{path}:acknowledge"))
        .await;
    assert_eq!(acknowledged.status, 200);
    assert_eq!(
        h.api(reqwest::Method::GET, &path).await.ok()["acknowledgementState"],
        1
    );
    assert_eq!(
        h.api(reqwest::Method::POST, &format!("{path}:consume"))
            .await
            .status,
        200
    );
    assert_eq!(
        h.api(reqwest::Method::GET, &path).await.ok()["consumptionState"],
        1
    );
    h.api(reqwest::Method::POST, &format!("{path}:consume"))
        .await
        .google_error(400, "productNotOwnedByUser");

    let refunded = h
        .control(&format!("/products/{token}/refund"), json!({}))
        .await;
    assert_eq!(refunded.ok()["purchase"]["purchaseState"], 1);
    assert_eq!(refunded.ok()["purchase"]["refundableQuantity"], 0);
    assert_eq!(
        h.api(reqwest::Method::GET, &path).await.ok()["purchaseState"],
        1
    );
}

// ------------------------------------------------------------------ the lifecycle

#[tokio::test]
async fn renewals_number_their_orders_on_the_clock() {
    let h = start().await;
    let token = h.subscribed().await;
    let first_order = h.v2(&token).await.ok()["latestOrderId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.advance(TimeDelta::days(31)).await;
    let renewed = h.v2(&token).await;
    let renewed = renewed.ok();
    assert_eq!(renewed["subscriptionState"], "SUBSCRIPTION_STATE_ACTIVE");
    assert_eq!(renewed["latestOrderId"], format!("{first_order}..0"));
    assert_eq!(
        renewed["lineItems"][0]["expiryTime"],
        "2030-03-15T09:00:00.000Z"
    );
    h.advance(TimeDelta::days(60)).await;
    let v1 = h.v1(&token).await;
    assert_eq!(v1.ok()["orderId"], format!("{first_order}..2"));
}

#[tokio::test]
async fn a_declined_renewal_goes_through_grace_and_hold_and_recovers() {
    let h = start().await;
    let token = h.subscribed().await;
    let declined = h
        .control(
            &format!("/subscriptions/{token}/decline_payments"),
            json!({}),
        )
        .await;
    assert_eq!(declined.ok()["paymentsDeclined"], true);

    h.advance(TimeDelta::days(32)).await;
    assert_eq!(
        h.state_of(&token).await,
        "SUBSCRIPTION_STATE_IN_GRACE_PERIOD"
    );
    let in_grace = h.v2(&token).await;
    assert_eq!(
        in_grace.ok()["lineItems"][0]["expiryTime"],
        "2030-02-22T09:00:00.000Z",
        "access to the end of the grace period"
    );
    assert_eq!(
        in_grace.ok()["inGracePeriodStateContext"],
        json!({"renewalDeclined": {}})
    );
    assert_eq!(h.v1(&token).await.ok()["paymentState"], 0);

    h.advance(TimeDelta::days(7)).await;
    let on_hold = h.v2(&token).await;
    let on_hold = on_hold.ok();
    assert_eq!(on_hold["subscriptionState"], "SUBSCRIPTION_STATE_ON_HOLD");
    assert_eq!(
        on_hold["onHoldStateContext"],
        json!({"renewalDeclined": {}})
    );
    assert_eq!(
        on_hold["lineItems"][0]["expiryTime"], "2030-02-22T09:00:00.000Z",
        "no access since the grace period ended"
    );
    assert_ne!(on_hold["etag"], in_grace.ok()["etag"]);

    let recovered = h
        .control(&format!("/subscriptions/{token}/recover"), json!({}))
        .await;
    let recovered = recovered.ok();
    assert_eq!(
        recovered["subscription"]["subscriptionState"],
        "SUBSCRIPTION_STATE_ACTIVE"
    );
    assert_eq!(
        recovered["subscription"]["lineItems"][0]["expiryTime"], "2030-03-23T09:00:00.000Z",
        "billed from the recovery on"
    );
    assert!(
        recovered["subscription"]["latestOrderId"]
            .as_str()
            .unwrap()
            .ends_with("..0")
    );
}

#[tokio::test]
async fn without_grace_or_hold_a_declined_renewal_expires() {
    let h = start().await;
    let purchase = h
        .buy(json!({"productId": MONTHLY, "basePlanId": "p1w-no-grace"}))
        .await;
    let token = purchase["purchaseToken"].as_str().unwrap().to_owned();
    assert_eq!(h.v1_method(&token, "acknowledge").await.status, 200);
    h.control(
        &format!("/subscriptions/{token}/decline_payments"),
        json!({}),
    )
    .await
    .ok();
    h.advance(TimeDelta::days(8)).await;
    let expired = h.v2(&token).await;
    let expired = expired.ok();
    assert_eq!(expired["subscriptionState"], "SUBSCRIPTION_STATE_EXPIRED");
    assert_eq!(
        expired["canceledStateContext"],
        json!({"systemInitiatedCancellation": {}})
    );
    assert_eq!(h.v1(&token).await.ok()["cancelReason"], 1);
}

#[tokio::test]
async fn a_cancelled_subscription_keeps_access_to_its_expiry_then_goes_away() {
    let h = start().await;
    let token = h.subscribed().await;
    h.advance(TimeDelta::days(3)).await;
    let cancelled = h
        .control(
            &format!("/subscriptions/{token}/cancel"),
            json!({"cancelSurveyReason": 3}),
        )
        .await;
    let cancelled = cancelled.ok();
    assert_eq!(
        cancelled["subscription"]["subscriptionState"],
        "SUBSCRIPTION_STATE_CANCELED"
    );
    let context = &cancelled["subscription"]["canceledStateContext"]["userInitiatedCancellation"];
    assert_eq!(
        context["cancelSurveyResult"]["reason"],
        "CANCEL_SURVEY_REASON_COST_RELATED"
    );
    assert_eq!(context["cancelTime"], "2030-01-18T09:00:00.000Z");
    let v1 = h.v1(&token).await;
    let v1 = v1.ok();
    assert_eq!(v1["autoRenewing"], false);
    assert_eq!(v1["cancelReason"], 0);
    assert_eq!(v1["cancelSurveyResult"]["cancelSurveyReason"], 3);
    assert_eq!(
        v1["userCancellationTimeMillis"],
        time("2030-01-18T09:00:00Z").timestamp_millis().to_string()
    );

    h.advance(TimeDelta::days(30)).await;
    let expired = h.v2(&token).await;
    let expired = expired.ok();
    assert_eq!(expired["subscriptionState"], "SUBSCRIPTION_STATE_EXPIRED");
    assert_eq!(
        expired["lineItems"][0]["expiryTime"],
        "2030-02-15T09:00:00.000Z"
    );

    h.advance(TimeDelta::days(61)).await;
    h.v2(&token)
        .await
        .google_error(410, "subscriptionPurchaseNoLongerAvailable");
    h.v1(&token)
        .await
        .google_error(410, "subscriptionPurchaseNoLongerAvailable");
}

#[tokio::test]
async fn revocation_ends_access_now_through_the_api_and_the_console() {
    let h = start().await;
    let by_api = h.subscribed().await;
    let revoked = h
        .send(
            h.http
                .post(format!(
                    "{}/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptionsv2/tokens/{by_api}:revoke",
                    h.base
                ))
                .bearer_auth(h.access_token().await)
                .json(&json!({"revocationContext": {"fullRefund": {}}})),
        )
        .await;
    assert_eq!(revoked.ok(), &json!({}));
    let read = h.v2(&by_api).await;
    let read = read.ok();
    assert_eq!(read["subscriptionState"], "SUBSCRIPTION_STATE_EXPIRED");
    assert_eq!(
        read["lineItems"][0]["expiryTime"],
        "2030-01-15T09:00:00.000Z"
    );
    assert_eq!(
        read["canceledStateContext"],
        json!({"developerInitiatedCancellation": {}})
    );
    h.v1_method(&by_api, "cancel")
        .await
        .google_error(400, "invalidPurchaseState");

    let by_console = h.subscribed().await;
    let revoked = h
        .control(&format!("/subscriptions/{by_console}/revoke"), json!({}))
        .await;
    assert_eq!(
        revoked.ok()["subscription"]["subscriptionState"],
        "SUBSCRIPTION_STATE_EXPIRED"
    );

    let by_user = h.subscribed().await;
    let cancelled = h
        .send(
            h.http
                .post(format!(
                    "{}/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptionsv2/tokens/{by_user}:cancel",
                    h.base
                ))
                .bearer_auth(h.access_token().await)
                .json(&json!({"cancellationContext": {"cancellationType": "USER_REQUESTED_STOP_RENEWALS"}})),
        )
        .await;
    assert_eq!(cancelled.ok(), &json!({}));
    assert_eq!(h.state_of(&by_user).await, "SUBSCRIPTION_STATE_CANCELED");
    let restored = h
        .control(&format!("/subscriptions/{by_user}/restart"), json!({}))
        .await;
    assert_eq!(
        restored.ok()["subscription"]["subscriptionState"],
        "SUBSCRIPTION_STATE_ACTIVE"
    );

    let by_developer = h.subscribed().await;
    assert_eq!(h.v1_method(&by_developer, "cancel").await.status, 200);
    assert_eq!(h.v1(&by_developer).await.ok()["cancelReason"], 3);
    h.control(&format!("/subscriptions/{by_developer}/restart"), json!({}))
        .await
        .google_error(400, "invalidPurchaseState");
    assert_eq!(h.v1_method(&by_developer, "refund").await.status, 200);
    assert_eq!(
        h.state_of(&by_developer).await,
        "SUBSCRIPTION_STATE_CANCELED",
        "a refund alone leaves the subscription be"
    );
}

#[tokio::test]
async fn an_unacknowledged_purchase_is_refunded_and_revoked_after_three_days() {
    let h = start().await;
    let purchase = h.buy(json!({"productId": MONTHLY})).await;
    let token = purchase["purchaseToken"].as_str().unwrap().to_owned();
    h.advance(TimeDelta::days(3)).await;
    assert_eq!(h.state_of(&token).await, "SUBSCRIPTION_STATE_EXPIRED");
    h.v1_method(&token, "acknowledge")
        .await
        .google_error(400, "invalidPurchaseState");
}

#[tokio::test]
async fn a_pause_and_a_restart_follow_the_play_store() {
    let h = start().await;
    let token = h.subscribed().await;
    let paused = h
        .control(
            &format!("/subscriptions/{token}/pause"),
            json!({"months": 1}),
        )
        .await;
    assert_eq!(paused.ok()["scheduledPauseMonths"], 1);
    h.advance(TimeDelta::days(32)).await;
    let read = h.v2(&token).await;
    let read = read.ok();
    assert_eq!(read["subscriptionState"], "SUBSCRIPTION_STATE_PAUSED");
    assert_eq!(
        read["pausedStateContext"]["autoResumeTime"],
        "2030-03-15T09:00:00.000Z"
    );
    h.advance(TimeDelta::days(30)).await;
    assert_eq!(h.state_of(&token).await, "SUBSCRIPTION_STATE_ACTIVE");

    h.control(&format!("/subscriptions/{token}/cancel"), json!({}))
        .await
        .ok();
    let restarted = h
        .control(&format!("/subscriptions/{token}/restart"), json!({}))
        .await;
    assert_eq!(
        restarted.ok()["subscription"]["subscriptionState"],
        "SUBSCRIPTION_STATE_ACTIVE"
    );
    h.control(
        &format!("/subscriptions/{token}/pause"),
        json!({"months": 4}),
    )
    .await
    .google_error(400, "badRequest");
}

// ------------------------------------------------------------------ notifications

/// The notification a push carried, decoded, and the push's `Authorization`.
fn pushed(request: &wiremock::Request) -> (Value, Value, Option<String>) {
    let envelope: Value = serde_json::from_slice(&request.body).expect("JSON push");
    let data = STANDARD
        .decode(envelope["message"]["data"].as_str().expect("data"))
        .expect("base64");
    let notification = serde_json::from_slice(&data).expect("JSON notification");
    let authorization = request
        .headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (envelope, notification, authorization)
}

#[tokio::test]
async fn notifications_are_pushed_with_an_oidc_token_that_verifies_and_retried() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    h.push_to(&server).await;

    let purchase = h.buy(json!({"productId": MONTHLY})).await;
    let token = purchase["purchaseToken"].as_str().unwrap().to_owned();
    let first = &purchase["pushes"][0];
    assert_eq!(first["statusCode"], 503);
    assert_eq!(first["responseBody"], "busy");
    assert_eq!(first["outcome"], "pending");
    assert_eq!(
        time(first["nextAttemptAt"].as_str().unwrap()),
        time(START) + TimeDelta::seconds(10)
    );

    assert!(
        h.advance(TimeDelta::seconds(9)).await.is_empty(),
        "not before the backoff"
    );
    let retried = h.advance(TimeDelta::seconds(1)).await;
    assert_eq!(retried.len(), 1);

    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2);
    let (envelope, notification, authorization) = pushed(&requests[1]);
    assert_eq!(
        envelope["subscription"],
        "projects/boxoffice-sim/subscriptions/play-rtdn"
    );
    assert_eq!(
        envelope["message"]["messageId"],
        envelope["message"]["message_id"]
    );
    assert_eq!(
        envelope["message"]["publishTime"],
        "2030-01-15T09:00:00.000Z"
    );
    assert_eq!(notification["version"], "1.0");
    assert_eq!(notification["packageName"], PACKAGE);
    assert_eq!(
        notification["eventTimeMillis"],
        time(START).timestamp_millis().to_string()
    );
    assert_eq!(
        notification["subscriptionNotification"],
        json!({
            "version": "1.0",
            "notificationType": 4,
            "purchaseToken": token,
            "subscriptionId": MONTHLY,
        })
    );

    // The OIDC token verifies against Google's JWKS.
    let bearer = authorization.expect("authenticated push");
    let id_token = bearer.strip_prefix("Bearer ").expect("a bearer token");
    let header = jsonwebtoken::decode_header(id_token).expect("JWT");
    let jwks = h
        .send(h.http.get(format!("{}/oauth2/v3/certs", h.base)))
        .await;
    let jwk = jwks.ok()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"].as_str() == header.kid.as_deref())
        .expect("the key the token names")
        .clone();
    let decoding =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .expect("JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["boxoffice-rtdn"]);
    validation.set_issuer(&["https://accounts.google.com"]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(id_token, &decoding, &validation)
        .expect("verifies")
        .claims;
    assert_eq!(claims["email"], PUSH_ACCOUNT);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["iat"], time(START).timestamp() + 10);
    assert_eq!(claims["exp"], time(START).timestamp() + 10 + 3600);

    let certificates = h
        .send(h.http.get(format!("{}/oauth2/v1/certs", h.base)))
        .await;
    let certificate = certificates.ok()[header.kid.as_deref().unwrap()]
        .as_str()
        .expect("a certificate under the token's kid");
    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));

    let log = h
        .send(h.http.get(format!(
            "{}/sim/control/google/notifications?state=delivered",
            h.base
        )))
        .await;
    let message = &log.ok()["messages"][0];
    assert_eq!(message["kind"], "SUBSCRIPTION_PURCHASED");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn settling_waits_for_a_push_a_concurrent_round_claimed() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_millis(300)))
        .mount(&server)
        .await;
    h.push_to(&server).await;
    h.subscribed().await;
    let newest_state = || async {
        let log = h
            .send(
                h.http
                    .get(format!("{}/sim/control/google/notifications", h.base)),
            )
            .await;
        log.ok()["messages"][0]["state"].clone()
    };
    // The renewal falls due; a round other than the host's (the delivery loop's) claims
    // its push first and is still waiting for the slow endpoint when the host settles.
    let now = h.now();
    *h.clock.lock().expect("clock") = now + TimeDelta::days(31);
    let concurrent = tokio::spawn({
        let simulator = h.simulator.clone();
        async move { simulator.deliver_due().await }
    });
    while newest_state().await != "in_flight" {
        tokio::task::yield_now().await;
    }
    let report = h.simulator.settle_due().await;
    assert!(report.attempts.is_empty(), "the push was the other round's");
    assert_eq!(
        newest_state().await,
        "delivered",
        "settled only once the claimed push was answered"
    );
    assert_eq!(concurrent.await.expect("the other round").attempts.len(), 1);
}

#[tokio::test]
async fn every_change_is_notified_with_its_type() {
    let h = start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    h.push_to(&server).await;
    let token = h.subscribed().await;
    h.advance(TimeDelta::days(31)).await;
    h.control(
        &format!("/subscriptions/{token}/decline_payments"),
        json!({}),
    )
    .await
    .ok();
    h.advance(TimeDelta::days(29)).await;
    h.advance(TimeDelta::days(7)).await;
    h.control(&format!("/subscriptions/{token}/recover"), json!({}))
        .await
        .ok();
    h.control(&format!("/subscriptions/{token}/cancel"), json!({}))
        .await
        .ok();
    h.control(&format!("/subscriptions/{token}/revoke"), json!({}))
        .await
        .ok();
    let product = h.control("/products", json!({"productId": MOVIE})).await;
    let product_token = product.ok()["purchaseToken"].as_str().unwrap().to_owned();
    let test = h.control("/rtdn/test", json!({})).await;
    assert_eq!(test.ok()["state"], "delivered");

    let requests = server.received_requests().await.expect("recording");
    let notifications: Vec<Value> = requests.iter().map(|request| pushed(request).1).collect();
    let types: Vec<Value> = notifications
        .iter()
        .filter_map(|notification| {
            notification
                .get("subscriptionNotification")
                .map(|inner| inner["notificationType"].clone())
        })
        .collect();
    // Purchased, renewed, in grace, on hold, recovered, cancelled, revoked.
    assert_eq!(types, [4, 2, 6, 5, 1, 3, 12]);
    let voided = notifications
        .iter()
        .find_map(|notification| notification.get("voidedPurchaseNotification"))
        .expect("a voided purchase");
    assert_eq!(voided["purchaseToken"], token.as_str());
    assert_eq!(voided["productType"], 1);
    assert_eq!(voided["refundType"], 1);
    assert!(voided["orderId"].as_str().unwrap().ends_with("..1"));
    let one_time = notifications
        .iter()
        .find_map(|notification| notification.get("oneTimeProductNotification"))
        .expect("a one-time product notification");
    assert_eq!(one_time["notificationType"], 1);
    assert_eq!(one_time["purchaseToken"], product_token.as_str());
    assert_eq!(one_time["sku"], MOVIE);
    assert_eq!(
        notifications.last().unwrap()["testNotification"],
        json!({"version": "1.0"})
    );
}

#[tokio::test]
async fn the_document_has_googles_paths() {
    let document: Value =
        serde_json::from_str(&openapi_json("http://127.0.0.1:8080/sim/google")).unwrap();
    let paths = document["paths"].as_object().unwrap();
    let prefix = "/androidpublisher/v3/applications/{packageName}/purchases";
    assert!(paths.contains_key(&format!(
        "{prefix}/subscriptions/{{subscriptionId}}/tokens/{{token}}:acknowledge"
    )));
    assert!(paths.contains_key(&format!("{prefix}/subscriptionsv2/tokens/{{token}}:revoke")));
    assert!(paths.keys().all(|path| !path.contains("}/acknowledge")));
    assert_eq!(
        document["servers"][0]["url"],
        "http://127.0.0.1:8080/sim/google"
    );
}
