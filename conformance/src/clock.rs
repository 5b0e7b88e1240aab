//! The virtual clock of simulator mode: the server, its simulators and therefore session
//! and token expiry all read it, so moving it is how scenarios let hours pass at once.

use serde_json::json;
use url::Url;

use crate::http::HttpClient;
use crate::step::Step;

/// The virtual clock (`GET`/`POST /sim/clock`).
#[derive(Clone)]
pub struct ClockClient {
    http: HttpClient,
    url: Url,
}

impl ClockClient {
    pub fn new(http: HttpClient, url: Url) -> Self {
        Self { http, url }
    }

    /// Moves time forward: `90s`, `15m`, `2h`, `31d`, `1w` or seconds. Returns the new
    /// reading in milliseconds since the epoch.
    pub async fn advance(&self, by: &str) -> Step<i64> {
        let exchange = self
            .http
            .post(self.url.clone())
            .json(&json!({ "advance": by }))
            .send()
            .await?;
        let reading = exchange.expect_json(200)?;
        reading["epochMillis"]
            .as_i64()
            .ok_or_else(|| exchange.fail("the clock reading has no epochMillis"))
    }

    /// Sets the clock to a later instant (milliseconds since the epoch).
    pub async fn set_to(&self, epoch_millis: i64) -> Step<i64> {
        let instant = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(epoch_millis)
            .ok_or_else(|| crate::step::fail(format!("{epoch_millis} ms is not a time")))?;
        let exchange = self
            .http
            .post(self.url.clone())
            .json(&json!({ "setTo": instant }))
            .send()
            .await?;
        let reading = exchange.expect_json(200)?;
        reading["epochMillis"]
            .as_i64()
            .ok_or_else(|| exchange.fail("the clock reading has no epochMillis"))
    }

    /// The clock's reading in milliseconds since the epoch.
    pub async fn now(&self) -> Step<i64> {
        let exchange = self.http.get(self.url.clone()).send().await?;
        let reading = exchange.expect_json(200)?;
        reading["epochMillis"]
            .as_i64()
            .ok_or_else(|| exchange.fail("the clock reading has no epochMillis"))
    }
}
