//! Spawns the real simulator-mode app on a random loopback port, on a fresh database: a
//! SQLite file by default, or a fresh PostgreSQL schema when `BOXOFFICE_TEST_DATABASE_URL`
//! names a server (CI sets it; so can you).

#![allow(dead_code)]

use std::path::PathBuf;

use boxoffice::sim::{SimOptions, SimServer};
use serde_json::{Value, json};
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "BOXOFFICE_TEST_DATABASE_URL";

pub struct TestApp {
    pub server: SimServer,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    /// The database the server runs on, for a second replica or a direct look.
    pub database_url: String,
}

fn scratch_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("boxoffice-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A fresh schema on the PostgreSQL server named by the environment, if any.
async fn fresh_postgres_database() -> Option<String> {
    let url = std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.is_empty())?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|error| {
            panic!("{POSTGRES_ENV}={url} is set but PostgreSQL is unreachable: {error}")
        });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with_limit(3).await
    }

    pub async fn start_with_limit(device_limit: u32) -> Self {
        Self::start_with(|options| options.device_limit = device_limit).await
    }

    /// Starts with simulator options changed by `customize` (the address, data directory
    /// and database are the test's own).
    pub async fn start_with(customize: impl FnOnce(&mut SimOptions)) -> Self {
        let data_dir = scratch_dir();
        let postgres = fresh_postgres_database().await;
        let database_url = postgres
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("boxoffice.sqlite").display()));
        let mut options = SimOptions::default();
        customize(&mut options);
        let server = SimServer::start(SimOptions {
            addr: "127.0.0.1:0".into(),
            data_dir: data_dir.clone(),
            database_url: postgres,
            ..options
        })
        .await
        .expect("simulator mode starts");
        TestApp {
            server,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            data_dir,
            database_url,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// Signs a seeded user in at the SSO simulator (Cognito InitiateAuth) and returns the
    /// id token.
    pub async fn id_token(&self, email: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/sim/sso/"))
            .header(
                "X-Amz-Target",
                "AWSCognitoIdentityProviderService.InitiateAuth",
            )
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(
                json!({
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "ClientId": self.server.config.sso.app_client_id,
                    "AuthParameters": { "USERNAME": email, "PASSWORD": password }
                })
                .to_string(),
            )
            .send()
            .await
            .expect("sso reachable");
        assert_eq!(response.status(), 200, "sign-in of {email}");
        let body: Value = response.json().await.expect("json");
        body["AuthenticationResult"]["IdToken"]
            .as_str()
            .expect("IdToken")
            .to_owned()
    }

    pub async fn alice_token(&self) -> String {
        let alice = &self.server.config.test_users[0];
        self.id_token(&alice.email, &alice.password).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("server reachable");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let response = self
            .http
            .request(method, self.url(path))
            .json(body)
            .send()
            .await
            .expect("server reachable");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// A call to the Stripe simulator's API with the account's secret key.
    pub async fn stripe(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> Value {
        let request = self
            .http
            .request(method.clone(), self.url(&format!("/sim/stripe/v1/{path}")))
            .bearer_auth(&self.server.config.stripe.secret_key);
        let request = if method == reqwest::Method::GET {
            request.query(form)
        } else {
            request.form(form)
        };
        let response = request.send().await.expect("stripe simulator reachable");
        response.json().await.expect("stripe json")
    }

    pub async fn start_session(&self, token: &str) -> (u16, Value) {
        self.get(&format!(
            "/cloudpay/api/v1/session/start?apijwttoken={token}"
        ))
        .await
    }

    pub async fn advance_clock(&self, by: &str) {
        let response = self
            .http
            .post(self.url("/sim/clock"))
            .json(&json!({ "advance": by }))
            .send()
            .await
            .expect("clock reachable");
        assert_eq!(response.status(), 200);
    }

    pub async fn set_clock(&self, to: chrono::DateTime<chrono::Utc>) {
        let response = self
            .http
            .post(self.url("/sim/clock"))
            .json(&json!({ "setTo": to }))
            .send()
            .await
            .expect("clock reachable");
        assert_eq!(response.status(), 200);
    }

    /// A connection of its own to the app's database, to look at or arrange what the API
    /// does not show.
    pub async fn database(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.database_url)
            .await
            .expect("the app's database")
    }

    pub async fn stop(self) {
        self.server.stop().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Asserts CloudPay's documented error shape and returns the message.
pub fn assert_error_shape(status: u16, body: &Value) -> String {
    assert_eq!(body["statusCode"], json!(status), "statusCode in {body}");
    assert!(body["body"]["status"].is_string(), "body.status in {body}");
    body["body"]["message"]
        .as_str()
        .expect("body.message")
        .to_owned()
}
