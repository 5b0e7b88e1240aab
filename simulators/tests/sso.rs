//! The SSO simulator over real HTTP: the Cognito API as an SDK calls it, the JWKS as a
//! verifier fetches it, and the control surface as a test drives it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxoffice_simulators::clock::Now;
use boxoffice_simulators::sso::{
    SeedUser, SsoConfig, SsoError, SsoSigning, SsoSimulator, openapi_json,
};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server};
use poem_openapi::OpenApiService;
use serde_json::{Value, json};

const POOL_ID: &str = "eu-west-1_BoxOffice";
const CLIENT_ID: &str = "testclient0000000000000001";
const PASSWORD: &str = "Sup3rSecret";

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn at(rfc3339: &str) -> Self {
        let start = DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid time")
            .with_timezone(&Utc);
        Self(Arc::new(Mutex::new(start)))
    }

    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }

    fn advance(&self, by: TimeDelta) {
        *self.0.lock().expect("clock lock") += by;
    }

    fn as_now(&self) -> Now {
        let time = self.0.clone();
        Arc::new(move || *time.lock().expect("clock lock"))
    }
}

/// A simulator served on a random loopback port the way the host mounts it: the
/// simulator at `/sso`, its control surface in an OpenAPI service at `/sim`.
struct Harness {
    http: reqwest::Client,
    /// The simulator's base URL (`public_base_url`).
    base: String,
    /// Where `/sim/...` is.
    root: String,
    clock: TestClock,
    simulator: SsoSimulator,
}

async fn start(configure: impl FnOnce(&mut SsoConfig)) -> Harness {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    let root = format!("http://{address}");
    let base = format!("{root}/sso");
    let clock = TestClock::at("2030-01-01T00:00:00Z");
    let mut config = SsoConfig {
        user_pool_id: POOL_ID.into(),
        region: "eu-west-1".into(),
        app_client_id: CLIENT_ID.into(),
        public_base_url: base.clone(),
        auto_confirm: false,
        signing: SsoSigning::Rs256,
        signing_key_path: None,
        token_ttl: Duration::from_secs(3600),
    };
    configure(&mut config);
    let simulator = SsoSimulator::new(config, clock.as_now()).expect("simulator");
    let control = OpenApiService::new(simulator.control_api(), "control", "1");
    let app = Route::new()
        .nest("/sso", simulator.endpoint())
        .nest("/sim", control);
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    Harness {
        http: reqwest::Client::new(),
        base,
        root,
        clock,
        simulator,
    }
}

/// What came back from one Cognito call.
struct Reply {
    status: u16,
    error_type_header: Option<String>,
    content_type: Option<String>,
    body: Value,
}

impl Reply {
    fn error_type(&self) -> &str {
        self.body["__type"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    #[track_caller]
    fn expect_ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success, got {}", self.body);
        &self.body
    }

    #[track_caller]
    fn expect_error(&self, error_type: &str) -> &str {
        assert_eq!(
            self.status, 400,
            "expected {error_type}, got {} {}",
            self.status, self.body
        );
        assert_eq!(self.error_type(), error_type, "{}", self.body);
        assert_eq!(
            self.error_type_header.as_deref(),
            Some(format!("{error_type}:").as_str())
        );
        self.message()
    }
}

impl Harness {
    async fn raw(&self, target: Option<&str>, content_type: Option<&str>, body: &str) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/", self.base))
            .body(body.to_owned());
        if let Some(target) = target {
            request = request.header("X-Amz-Target", target);
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.expect("request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let error_type_header = header("x-amzn-ErrorType");
        let content_type = header("content-type");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        Reply {
            status,
            error_type_header,
            content_type,
            body,
        }
    }

    async fn call(&self, operation: &str, body: Value) -> Reply {
        let target = format!("AWSCognitoIdentityProviderService.{operation}");
        self.raw(
            Some(&target),
            Some("application/x-amz-json-1.1"),
            &body.to_string(),
        )
        .await
    }

    async fn sign_up(&self, email: &str, password: &str) -> Reply {
        self.call(
            "SignUp",
            json!({
                "ClientId": CLIENT_ID,
                "Username": email,
                "Password": password,
                "UserAttributes": [
                    {"Name": "email", "Value": email},
                    {"Name": "given_name", "Value": "Jane"},
                    {"Name": "family_name", "Value": "Doe"}
                ]
            }),
        )
        .await
    }

    async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.call(
            "InitiateAuth",
            json!({
                "AuthFlow": "USER_PASSWORD_AUTH",
                "ClientId": CLIENT_ID,
                "AuthParameters": {"USERNAME": email, "PASSWORD": password}
            }),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Reply {
        self.call(
            "InitiateAuth",
            json!({
                "AuthFlow": "REFRESH_TOKEN_AUTH",
                "ClientId": CLIENT_ID,
                "AuthParameters": {"REFRESH_TOKEN": refresh_token}
            }),
        )
        .await
    }

    async fn get_user(&self, access_token: &str) -> Reply {
        self.call("GetUser", json!({"AccessToken": access_token}))
            .await
    }

    async fn control_get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/sim/control/sso{path}", self.root))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    async fn control_post(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/sim/control/sso{path}", self.root))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    async fn codes(&self, email: &str) -> Value {
        let (status, body) = self.control_get(&format!("/users/{email}/codes")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn mint(&self, request: Value) -> (u16, Value) {
        self.control_post("/tokens", &request.to_string()).await
    }

    async fn jwks(&self) -> Value {
        let response = self
            .http
            .get(self.simulator.jwks_url())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("JSON")
    }

    fn seed(&self, email: &str) {
        self.simulator
            .seed_user(SeedUser {
                email: email.into(),
                password: PASSWORD.into(),
                given_name: "Jane".into(),
                family_name: "Doe".into(),
            })
            .expect("seed");
    }
}

fn token_field<'a>(reply: &'a Reply, field: &str) -> &'a str {
    reply.expect_ok()["AuthenticationResult"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {}", reply.body))
}

/// The claims of a token, verified with the JWKS the way a relying party verifies them
/// (signature, algorithm, `kid`, issuer, audience); expiry is compared by the caller
/// against the test's clock.
async fn verify_with_jwks(harness: &Harness, token: &str, audience: Option<&str>) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ, None, "Cognito's header is only kid and alg");
    let kid = header.kid.expect("kid");
    let jwks = harness.jwks().await;
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("the token's kid is in the JWKS");
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    let decoding = DecodingKey::from_rsa_components(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    )
    .expect("RSA key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[harness.simulator.issuer()]);
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .expect("verifies with the JWKS")
        .claims
}

#[tokio::test]
async fn sign_up_confirm_sign_in_refresh_and_global_sign_out() {
    let harness = start(|_| {}).await;
    let email = "jane.doe@example.com";

    let signed_up = harness.sign_up(email, PASSWORD).await;
    let body = signed_up.expect_ok();
    assert_eq!(
        signed_up.content_type.as_deref(),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(body["UserConfirmed"], false);
    let sub = body["UserSub"].as_str().expect("UserSub").to_owned();
    assert_eq!(
        body["CodeDeliveryDetails"],
        json!({"Destination": "j***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"})
    );

    let message = harness
        .sign_in(email, PASSWORD)
        .await
        .expect_error("UserNotConfirmedException")
        .to_owned();
    assert_eq!(message, "User is not confirmed.");

    // A resent code replaces the first one.
    let resent = harness
        .call(
            "ResendConfirmationCode",
            json!({"ClientId": CLIENT_ID, "Username": email}),
        )
        .await;
    assert_eq!(
        resent.expect_ok()["CodeDeliveryDetails"]["Destination"],
        "j***@e***"
    );

    let codes = harness.codes(email).await;
    assert_eq!(codes["status"], "UNCONFIRMED");
    let code = codes["confirmationCode"]["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm = |code: String| {
        harness.call(
            "ConfirmSignUp",
            json!({"ClientId": CLIENT_ID, "Username": email, "ConfirmationCode": code}),
        )
    };
    confirm(wrong.into())
        .await
        .expect_error("CodeMismatchException");
    assert_eq!(confirm(code.clone()).await.expect_ok(), &json!({}));
    assert_eq!(
        confirm(code).await.expect_error("NotAuthorizedException"),
        "User cannot be confirmed. Current status is CONFIRMED"
    );

    // The email is the username, case-insensitively.
    let signed_in = harness.sign_in("Jane.Doe@Example.com", PASSWORD).await;
    let result = &signed_in.expect_ok()["AuthenticationResult"];
    assert_eq!(result["TokenType"], "Bearer");
    assert_eq!(result["ExpiresIn"], 3600);
    assert_eq!(signed_in.body["ChallengeParameters"], json!({}));
    let access_token = token_field(&signed_in, "AccessToken").to_owned();
    let refresh_token = token_field(&signed_in, "RefreshToken").to_owned();

    let user = harness.get_user(&access_token).await;
    let user = user.expect_ok();
    assert_eq!(user["Username"], sub.as_str());
    assert_eq!(
        user["UserAttributes"],
        json!([
            {"Name": "sub", "Value": sub},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "given_name", "Value": "Jane"},
            {"Name": "family_name", "Value": "Doe"},
            {"Name": "email", "Value": email}
        ])
    );

    let refreshed = harness.refresh(&refresh_token).await;
    let refreshed_result = &refreshed.expect_ok()["AuthenticationResult"];
    assert!(
        refreshed_result.get("RefreshToken").is_none(),
        "a refresh returns no refresh token"
    );
    let refreshed_access = token_field(&refreshed, "AccessToken").to_owned();
    harness.get_user(&refreshed_access).await.expect_ok();

    assert_eq!(
        harness
            .call("GlobalSignOut", json!({"AccessToken": access_token}))
            .await
            .expect_ok(),
        &json!({})
    );
    for token in [&access_token, &refreshed_access] {
        assert_eq!(
            harness
                .get_user(token)
                .await
                .expect_error("NotAuthorizedException"),
            "Access Token has been revoked"
        );
    }
    assert_eq!(
        harness
            .refresh(&refresh_token)
            .await
            .expect_error("NotAuthorizedException"),
        "Refresh Token has been revoked"
    );

    // A new sign-in after the sign-out is a new session, unaffected.
    let again = harness.sign_in(email, PASSWORD).await;
    harness
        .get_user(token_field(&again, "AccessToken"))
        .await
        .expect_ok();
}

#[tokio::test]
async fn refusals_are_cognitos() {
    let harness = start(|_| {}).await;
    harness.seed("known@example.com");

    assert_eq!(
        harness
            .sign_in("known@example.com", "Wr0ngPassword")
            .await
            .expect_error("NotAuthorizedException"),
        "Incorrect username or password."
    );
    // PreventUserExistenceErrors is ENABLED: an unknown user looks like a wrong password.
    assert_eq!(
        harness
            .sign_in("nobody@example.com", PASSWORD)
            .await
            .expect_error("NotAuthorizedException"),
        "Incorrect username or password."
    );
    harness.simulator.set_prevent_user_existence_errors(false);
    assert_eq!(
        harness
            .sign_in("nobody@example.com", PASSWORD)
            .await
            .expect_error("UserNotFoundException"),
        "User does not exist."
    );

    assert_eq!(
        harness
            .sign_up("known@example.com", PASSWORD)
            .await
            .expect_error("UsernameExistsException"),
        "An account with the given email already exists."
    );
    assert_eq!(
        harness
            .sign_up("new@example.com", "weak")
            .await
            .expect_error("InvalidPasswordException"),
        "Password did not conform with policy: Password not long enough"
    );
    assert_eq!(
        harness
            .sign_up("new@example.com", "nouppercase1")
            .await
            .expect_error("InvalidPasswordException"),
        "Password did not conform with policy: Password must have uppercase characters"
    );
    assert_eq!(
        harness
            .sign_up("not-an-email", PASSWORD)
            .await
            .expect_error("InvalidParameterException"),
        "Username should be an email."
    );

    let unknown_client = harness
        .call(
            "InitiateAuth",
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "nosuchclient",
                   "AuthParameters": {"USERNAME": "known@example.com", "PASSWORD": PASSWORD}}),
        )
        .await;
    assert_eq!(
        unknown_client.expect_error("ResourceNotFoundException"),
        "User pool client nosuchclient does not exist."
    );
    let srp = harness
        .call(
            "InitiateAuth",
            json!({"AuthFlow": "USER_SRP_AUTH", "ClientId": CLIENT_ID, "AuthParameters": {}}),
        )
        .await;
    assert_eq!(
        srp.expect_error("InvalidParameterException"),
        "USER_SRP_AUTH flow not enabled for this client"
    );
    let missing_password = harness
        .call(
            "InitiateAuth",
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": CLIENT_ID, "AuthParameters": {"USERNAME": "x@y.z"}}),
        )
        .await;
    assert_eq!(
        missing_password.expect_error("InvalidParameterException"),
        "Missing required parameter PASSWORD"
    );
    assert_eq!(
        harness
            .refresh("not-a-refresh-token")
            .await
            .expect_error("NotAuthorizedException"),
        "Invalid Refresh Token"
    );
    assert_eq!(
        harness
            .get_user("not.a.jwt")
            .await
            .expect_error("NotAuthorizedException"),
        "Invalid Access Token"
    );
}

#[tokio::test]
async fn malformed_requests_never_fail_the_server() {
    let harness = start(|_| {}).await;
    let json = Some("application/x-amz-json-1.1");
    let sign_up = Some("AWSCognitoIdentityProviderService.SignUp");

    harness
        .raw(
            Some("AWSCognitoIdentityProviderService.DeleteUserPool"),
            json,
            "{}",
        )
        .await
        .expect_error("UnknownOperationException");
    harness
        .raw(None, json, "{}")
        .await
        .expect_error("UnknownOperationException");
    harness
        .raw(sign_up, json, "{not json")
        .await
        .expect_error("SerializationException");
    harness
        .raw(sign_up, json, "[1, 2]")
        .await
        .expect_error("SerializationException");
    harness
        .raw(
            sign_up,
            json,
            r#"{"ClientId": {"id": 5}, "Username": "a@b.c", "Password": "x"}"#,
        )
        .await
        .expect_error("SerializationException");
    harness
        .raw(sign_up, Some("text/plain"), "{}")
        .await
        .expect_error("SerializationException");
    assert_eq!(
        harness
            .raw(sign_up, json, "")
            .await
            .expect_error("InvalidParameterException"),
        "2 validation errors detected: Value null at 'clientId' failed to satisfy constraint: Member must not be null; \
         Value null at 'username' failed to satisfy constraint: Member must not be null"
    );
    // A null member is an absent member.
    harness
        .raw(sign_up, json, r#"{"ClientId": null, "Username": "a@b.c"}"#)
        .await
        .expect_error("InvalidParameterException");
    // Plain JSON content type and no content type are accepted.
    harness
        .raw(
            Some("AWSCognitoIdentityProviderService.GetUser"),
            Some("application/json"),
            r#"{"AccessToken": "x"}"#,
        )
        .await
        .expect_error("NotAuthorizedException");
    harness
        .raw(
            Some("AWSCognitoIdentityProviderService.GetUser"),
            None,
            r#"{"AccessToken": "x"}"#,
        )
        .await
        .expect_error("NotAuthorizedException");
    let unicode = harness
        .call(
            "SignUp",
            json!({"ClientId": CLIENT_ID, "Username": "ü@ß.例", "Password": PASSWORD,
                   "UserAttributes": [{"Name": "nickname\u{0}", "Value": "x"}]}),
        )
        .await;
    unicode.expect_error("InvalidParameterException");
    let unauthorized_attribute = harness
        .call(
            "SignUp",
            json!({"ClientId": CLIENT_ID, "Username": "a@example.com", "Password": PASSWORD,
                   "UserAttributes": [{"Name": "sub", "Value": "mine"}]}),
        )
        .await;
    assert_eq!(
        unauthorized_attribute.expect_error("NotAuthorizedException"),
        "A client attempted to write unauthorized attribute"
    );
}

#[tokio::test]
async fn the_jwks_verifies_the_id_token_and_claims_are_cognitos() {
    let harness = start(|_| {}).await;
    harness.seed("jane@example.com");
    let signed_in = harness.sign_in("jane@example.com", PASSWORD).await;
    let now = harness.clock.now().timestamp();

    let id = verify_with_jwks(
        &harness,
        token_field(&signed_in, "IdToken"),
        Some(CLIENT_ID),
    )
    .await;
    let sub = id["sub"].as_str().expect("sub");
    assert_eq!(id["iss"], format!("{}/{POOL_ID}", harness.base));
    assert_eq!(id["aud"], CLIENT_ID);
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["cognito:username"], sub);
    assert_eq!(id["email"], "jane@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["given_name"], "Jane");
    assert_eq!(id["family_name"], "Doe");
    assert_eq!(id["iat"], now);
    assert_eq!(id["auth_time"], now);
    assert_eq!(id["exp"], now + 3600);
    for claim in ["origin_jti", "event_id", "jti"] {
        assert!(id[claim].is_string(), "{claim} in {id}");
    }

    let access = verify_with_jwks(&harness, token_field(&signed_in, "AccessToken"), None).await;
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["client_id"], CLIENT_ID);
    assert_eq!(access["scope"], "aws.cognito.signin.user.admin");
    assert_eq!(access["username"], sub);
    assert_eq!(access["origin_jti"], id["origin_jti"]);
    assert!(access.get("aud").is_none());

    // The issuer is where the keys are, exactly as with Cognito.
    assert_eq!(
        harness.simulator.jwks_url(),
        format!("{}/.well-known/jwks.json", id["iss"].as_str().unwrap_or(""))
    );
    let discovery: Value = harness
        .http
        .get(format!(
            "{}/.well-known/openid-configuration",
            harness.simulator.issuer()
        ))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(discovery["jwks_uri"], harness.simulator.jwks_url());
    let unknown_pool = harness
        .http
        .get(format!(
            "{}/eu-west-1_Other/.well-known/jwks.json",
            harness.base
        ))
        .send()
        .await;
    assert_eq!(unknown_pool.expect("request").status().as_u16(), 404);
}

#[tokio::test]
async fn hs256_mode_signs_with_the_shared_secret() {
    let secret = "a-secret-shared-with-the-server";
    let harness = start(|config| {
        config.signing = SsoSigning::Hs256 {
            secret: secret.into(),
        }
    })
    .await;
    harness.seed("jane@example.com");
    let signed_in = harness.sign_in("jane@example.com", PASSWORD).await;
    let id_token = token_field(&signed_in, "IdToken");

    let header = jsonwebtoken::decode_header(id_token).expect("header");
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid, None);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        id_token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("verifies with the secret")
    .claims;
    assert_eq!(claims["email"], "jane@example.com");
    // The pool's own API accepts its HS256 access tokens.
    harness
        .get_user(token_field(&signed_in, "AccessToken"))
        .await
        .expect_ok();
}

#[tokio::test]
async fn time_comes_from_the_injected_clock() {
    let harness = start(|_| {}).await;
    harness.seed("jane@example.com");
    let signed_in_at = harness.clock.now();
    let signed_in = harness.sign_in("jane@example.com", PASSWORD).await;
    let id = verify_with_jwks(
        &harness,
        token_field(&signed_in, "IdToken"),
        Some(CLIENT_ID),
    )
    .await;
    assert_eq!(id["iat"], signed_in_at.timestamp());

    harness.clock.advance(TimeDelta::hours(2));
    assert_eq!(
        harness
            .get_user(token_field(&signed_in, "AccessToken"))
            .await
            .expect_error("NotAuthorizedException"),
        "Access Token has expired"
    );
    let refreshed = harness
        .refresh(token_field(&signed_in, "RefreshToken"))
        .await;
    let refreshed_id = verify_with_jwks(
        &harness,
        token_field(&refreshed, "IdToken"),
        Some(CLIENT_ID),
    )
    .await;
    assert_eq!(
        refreshed_id["iat"],
        (signed_in_at + TimeDelta::hours(2)).timestamp()
    );
    assert_eq!(
        refreshed_id["auth_time"],
        signed_in_at.timestamp(),
        "a refresh keeps the authentication time"
    );

    harness.clock.advance(TimeDelta::days(31));
    assert_eq!(
        harness
            .refresh(token_field(&signed_in, "RefreshToken"))
            .await
            .expect_error("NotAuthorizedException"),
        "Refresh Token has expired"
    );
}

#[tokio::test]
async fn forgot_password_resets_with_the_code() {
    let harness = start(|_| {}).await;
    harness.seed("jane@example.com");
    let forgot = harness
        .call(
            "ForgotPassword",
            json!({"ClientId": CLIENT_ID, "Username": "jane@example.com"}),
        )
        .await;
    assert_eq!(
        forgot.expect_ok()["CodeDeliveryDetails"]["Destination"],
        "j***@e***"
    );
    let code = harness.codes("jane@example.com").await["passwordResetCode"]["code"]
        .as_str()
        .expect("reset code")
        .to_owned();
    let confirm = |code: &str, password: &str| {
        harness.call(
            "ConfirmForgotPassword",
            json!({"ClientId": CLIENT_ID, "Username": "jane@example.com", "ConfirmationCode": code, "Password": password}),
        )
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    confirm(wrong, "N3wPassword")
        .await
        .expect_error("CodeMismatchException");
    confirm(&code, "weak")
        .await
        .expect_error("InvalidPasswordException");
    confirm(&code, "N3wPassword").await.expect_ok();
    confirm(&code, "N3wPassword")
        .await
        .expect_error("ExpiredCodeException");
    harness
        .sign_in("jane@example.com", PASSWORD)
        .await
        .expect_error("NotAuthorizedException");
    harness
        .sign_in("jane@example.com", "N3wPassword")
        .await
        .expect_ok();

    // An unknown user gets a simulated delivery, so the answer reveals nothing.
    let unknown = harness
        .call(
            "ForgotPassword",
            json!({"ClientId": CLIENT_ID, "Username": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        unknown.expect_ok()["CodeDeliveryDetails"]["Destination"],
        "n***@e***"
    );

    // Codes expire on the host's clock.
    harness
        .call(
            "ForgotPassword",
            json!({"ClientId": CLIENT_ID, "Username": "jane@example.com"}),
        )
        .await
        .expect_ok();
    let code = harness.codes("jane@example.com").await["passwordResetCode"]["code"]
        .as_str()
        .expect("reset code")
        .to_owned();
    harness.clock.advance(TimeDelta::minutes(61));
    confirm(&code, "An0therPassword")
        .await
        .expect_error("ExpiredCodeException");
}

#[tokio::test]
async fn auto_confirm_skips_the_code() {
    let harness = start(|config| config.auto_confirm = true).await;
    let signed_up = harness.sign_up("jane@example.com", PASSWORD).await;
    assert_eq!(signed_up.expect_ok()["UserConfirmed"], true);
    assert!(signed_up.body.get("CodeDeliveryDetails").is_none());
    harness
        .sign_in("jane@example.com", PASSWORD)
        .await
        .expect_ok();
}

#[tokio::test]
async fn the_control_surface_manages_users_and_mints_tokens() {
    let harness = start(|_| {}).await;

    let create =
        json!({"email": "ops@example.com", "password": PASSWORD, "givenName": "Olga"}).to_string();
    let (status, created) = harness.control_post("/users", &create).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "CONFIRMED");
    assert_eq!(created["emailVerified"], true);
    let (status, duplicate) = harness.control_post("/users", &create).await;
    assert_eq!(
        (status, duplicate["error"].as_str()),
        (409, Some("user_exists"))
    );
    let weak = json!({"email": "weak@example.com", "password": "weak"}).to_string();
    let (status, refused) = harness.control_post("/users", &weak).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_password"))
    );
    let (status, malformed) = harness.control_post("/users", "{oops").await;
    assert_eq!(
        (status, malformed["error"].as_str()),
        (400, Some("invalid_request"))
    );

    harness
        .sign_in("ops@example.com", PASSWORD)
        .await
        .expect_ok();
    let (status, users) = harness.control_get("/users").await;
    assert_eq!(status, 200);
    assert_eq!(users.as_array().map(Vec::len), Some(1));
    assert!(
        !users.to_string().contains(PASSWORD),
        "passwords are never listed"
    );
    let (status, missing) = harness.control_get("/users/nobody@example.com/codes").await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (404, Some("user_not_found"))
    );

    // Expired: verifies, but `exp` is before the clock.
    let (status, expired) = harness
        .mint(json!({"email": "ops@example.com", "expiresInSeconds": -60}))
        .await;
    assert_eq!(status, 201, "{expired}");
    let claims = verify_with_jwks(
        &harness,
        expired["token"].as_str().expect("token"),
        Some(CLIENT_ID),
    )
    .await;
    assert_eq!(claims["exp"], harness.clock.now().timestamp() - 60);

    // Not yet valid.
    let (_, early) = harness
        .mint(json!({"email": "ops@example.com", "notBeforeInSeconds": 300}))
        .await;
    let claims = verify_with_jwks(
        &harness,
        early["token"].as_str().expect("token"),
        Some(CLIENT_ID),
    )
    .await;
    assert_eq!(claims["nbf"], harness.clock.now().timestamp() + 300);

    // Foreign issuer and wrong audience: signed by the pool's key, refused by its API.
    let (_, foreign) = harness
        .mint(json!({"email": "ops@example.com", "tokenUse": "access", "issuer": "https://evil.example.com/pool"}))
        .await;
    assert_eq!(foreign["issuer"], "https://evil.example.com/pool");
    harness
        .get_user(foreign["token"].as_str().expect("token"))
        .await
        .expect_error("NotAuthorizedException");
    let (_, wrong_audience) = harness
        .mint(json!({"email": "ops@example.com", "audience": "someone-else"}))
        .await;
    let header = jsonwebtoken::decode_header(wrong_audience["token"].as_str().expect("token"))
        .expect("header");
    assert_eq!(header.alg, Algorithm::RS256);
    let (_, good_access) = harness
        .mint(json!({"email": "ops@example.com", "tokenUse": "access"}))
        .await;
    harness
        .get_user(good_access["token"].as_str().expect("token"))
        .await
        .expect_ok();

    // HS256 with a given secret; without one an RS256 pool cannot.
    let (status, hs) = harness
        .mint(json!({"email": "ops@example.com", "algorithm": "HS256", "secret": "shared"}))
        .await;
    assert_eq!(status, 201);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        hs["token"].as_str().expect("token"),
        &DecodingKey::from_secret(b"shared"),
        &validation,
    )
    .expect("verifies with the given secret");
    let (status, no_secret) = harness
        .mint(json!({"email": "ops@example.com", "algorithm": "HS256"}))
        .await;
    assert_eq!(
        (status, no_secret["error"].as_str()),
        (400, Some("secret_required"))
    );
    let (status, huge) = harness
        .mint(json!({"email": "ops@example.com", "expiresInSeconds": i64::MAX}))
        .await;
    assert_eq!(
        (status, huge["error"].as_str()),
        (400, Some("out_of_range"))
    );
    let (status, nobody) = harness.mint(json!({"email": "nobody@example.com"})).await;
    assert_eq!(
        (status, nobody["error"].as_str()),
        (404, Some("user_not_found"))
    );
}

#[tokio::test]
async fn seeding_follows_the_pool_rules() {
    let harness = start(|_| {}).await;
    harness.seed("jane@example.com");
    harness
        .sign_in("jane@example.com", PASSWORD)
        .await
        .expect_ok();
    let seed = |email: &str, password: &str| {
        harness.simulator.seed_user(SeedUser {
            email: email.into(),
            password: password.into(),
            given_name: String::new(),
            family_name: String::new(),
        })
    };
    assert!(matches!(
        seed("JANE@example.com", PASSWORD),
        Err(SsoError::UserExists { .. })
    ));
    assert!(matches!(
        seed("other@example.com", "weak"),
        Err(SsoError::InvalidPassword { .. })
    ));
    assert!(matches!(
        seed("not an email", PASSWORD),
        Err(SsoError::InvalidEmail { .. })
    ));
}

#[tokio::test]
async fn a_key_file_keeps_the_key_across_restarts() {
    let dir = std::env::temp_dir().join(format!("boxoffice-sso-test-{}", uuid::Uuid::new_v4()));
    let path = dir.join("sso-key.pem");
    let first = start(|config| config.signing_key_path = Some(path.clone())).await;
    let second = start(|config| config.signing_key_path = Some(path.clone())).await;
    assert_eq!(first.jwks().await["keys"], second.jwks().await["keys"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_simulator_publishes_its_own_document() {
    let harness = start(|_| {}).await;
    let served: Value = harness
        .http
        .get(format!("{}/openapi.json", harness.base))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(served["servers"][0]["url"], harness.base.as_str());
    assert!(served["paths"]["/"]["post"].is_object());
    let docs = harness
        .http
        .get(format!("{}/docs", harness.base))
        .send()
        .await
        .expect("request");
    assert_eq!(docs.status().as_u16(), 200);

    let document = openapi_json("http://127.0.0.1:8080/sim/sso");
    assert_eq!(
        document,
        openapi_json("http://127.0.0.1:8080/sim/sso"),
        "deterministic"
    );
    let document: Value = serde_json::from_str(&document).expect("JSON");
    let targets = document["components"]["schemas"]["CognitoTarget"]["enum"].clone();
    assert!(targets.as_array().is_some_and(|targets| {
        targets.contains(&json!("AWSCognitoIdentityProviderService.InitiateAuth"))
    }));
    assert!(document["paths"]["/{user_pool_id}/.well-known/jwks.json"]["get"].is_object());
}

#[tokio::test]
async fn the_endpoint_also_serves_at_the_root_of_a_port() {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let address = acceptor.local_addr()[0]
        .as_socket_addr()
        .cloned()
        .expect("a TCP address");
    let base = format!("http://{address}");
    let clock = TestClock::at("2030-01-01T00:00:00Z");
    let config = SsoConfig {
        user_pool_id: POOL_ID.into(),
        region: "eu-west-1".into(),
        app_client_id: CLIENT_ID.into(),
        public_base_url: base.clone(),
        auto_confirm: true,
        signing: SsoSigning::Rs256,
        signing_key_path: None,
        token_ttl: Duration::from_secs(3600),
    };
    let simulator = SsoSimulator::new(config, clock.as_now()).expect("simulator");
    tokio::spawn(Server::new_with_acceptor(acceptor).run(simulator.endpoint()));
    let http = reqwest::Client::new();
    for path in [
        "/openapi.json",
        "/docs",
        &format!("/{POOL_ID}/.well-known/jwks.json"),
    ] {
        let response = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let response = http
        .post(format!("{base}/"))
        .header("X-Amz-Target", "AWSCognitoIdentityProviderService.SignUp")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(
            json!({"ClientId": CLIENT_ID, "Username": "root@example.com", "Password": PASSWORD})
                .to_string(),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn invalid_configurations_are_refused() {
    let clock = TestClock::at("2030-01-01T00:00:00Z");
    let base = SsoConfig {
        user_pool_id: POOL_ID.into(),
        region: "eu-west-1".into(),
        app_client_id: CLIENT_ID.into(),
        public_base_url: "http://127.0.0.1:1/sso/".into(),
        auto_confirm: false,
        signing: SsoSigning::Rs256,
        signing_key_path: None,
        token_ttl: Duration::from_secs(3600),
    };
    let refused = |change: fn(&mut SsoConfig)| {
        let mut config = base.clone();
        change(&mut config);
        matches!(
            SsoSimulator::new(config, clock.as_now()),
            Err(SsoError::InvalidConfig(_))
        )
    };
    assert!(refused(
        |config| config.user_pool_id = "no-underscore".into()
    ));
    assert!(refused(|config| config.app_client_id = "has space".into()));
    assert!(refused(|config| config.public_base_url = "ftp://x".into()));
    assert!(refused(
        |config| config.token_ttl = Duration::from_secs(2 * 24 * 3600)
    ));
    assert!(refused(|config| config.signing = SsoSigning::Hs256 {
        secret: String::new()
    }));
    let simulator = SsoSimulator::new(base.clone(), clock.as_now()).expect("valid");
    assert_eq!(
        simulator.issuer(),
        format!("http://127.0.0.1:1/sso/{POOL_ID}"),
        "trailing slash trimmed"
    );
}
