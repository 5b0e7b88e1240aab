//! `boxoffice serve` from a configuration file: an SSO provider that signs with a shared
//! secret (HS256), on the system clock.

use std::time::Duration;

use boxoffice::config::ConfigFile;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Server};
use serde_json::{Value, json};

const SECRET: &str = "the-secret-shared-with-the-partner-sso";

fn config() -> ConfigFile {
    let text = include_str!("../boxoffice.example.toml")
        .replace(
            "jwks_url = \"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE/.well-known/jwks.json\"",
            &format!("shared_secret = \"{SECRET}\""),
        );
    toml::from_str(&text).expect("the example configuration parses")
}

#[test]
fn the_example_configuration_is_valid() {
    let example: ConfigFile = toml::from_str(include_str!("../boxoffice.example.toml")).unwrap();
    assert!(example.identity_settings().is_ok());
    assert!(example.cloudpay_settings().is_ok());
    let seed = example.catalogue.to_seed().unwrap();
    assert_eq!(seed.packages.len(), 3);
    assert!(seed.validate().is_ok());
}

#[test]
fn a_stripe_section_allowing_no_request_in_flight_is_refused() {
    let text = include_str!("../boxoffice.example.toml").replace(
        "max_concurrent_requests = 25",
        "max_concurrent_requests = 0",
    );
    let config: ConfigFile = toml::from_str(&text).expect("parses");
    let refused = config.payment_settings().err().expect("refused");
    assert!(
        refused.to_string().contains("max_concurrent_requests"),
        "{refused}"
    );
    assert!(
        self::config().payment_settings().is_ok(),
        "the example's 25 is fine"
    );
}

#[tokio::test]
async fn serve_accepts_shared_secret_tokens_and_refuses_others() {
    let config = config();
    let data =
        std::env::temp_dir().join(format!("boxoffice-serve-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data).unwrap();
    let database_url = format!("sqlite://{}", data.join("serve.sqlite").display());
    let (routes, core) = boxoffice::serve::assemble(&config, &database_url)
        .await
        .unwrap();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let server = tokio::spawn(Server::new_with_acceptor(acceptor).run(routes.map_to_response()));
    let base = format!("http://{addr}/cloudpay");

    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": "partner-user-42", "iss": config.identity.issuer, "aud": "example-app-client-id",
        "exp": now + 600, "iat": now, "email": "grace@example.com",
        "given_name": "Grace", "family_name": "Hopper",
    });
    let token = |secret: &str| {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = |token: String| {
        let http = http.clone();
        let url = format!("{base}/api/v1/session/start?apijwttoken={token}");
        async move {
            let response = http.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };

    let (status, body) = start(token(SECRET)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["CurrentCustomerSession"]["CustomerEmailAddress"],
        "grace@example.com"
    );
    assert_eq!(body["CurrentCustomerSession"]["CustomerFirstName"], "Grace");
    let (status, body) = start(token("a-guessed-secret")).await;
    assert_eq!(
        (status, body["statusCode"].as_u64()),
        (401, Some(401)),
        "{body}"
    );

    let packages: Value = http
        .get(format!("{base}/api/v1/package"))
        .header("location", "IE")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        packages["SubscriptionPlanOptions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        packages["SubscriptionPlanOptions"][0]["PurchaseUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://payments.example.com/cloudpay/sso/startbasket/")
    );

    server.abort();
    core.close().await;
    let _ = std::fs::remove_dir_all(data);
}
