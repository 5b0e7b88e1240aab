//! The billing clock under load: many monthly subscribers bought through CloudPay and the
//! Stripe simulator (checkout → the customer confirms → webhook → entitlement, which is
//! also the purchase-flow benchmark), then twelve months of renewals through the virtual
//! clock, every charge going to the Stripe simulator over HTTP.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

/// Buyers working at once; each is one customer buying its share one after another.
const BUYERS: u32 = 32;

struct Buyer {
    session: String,
}

async fn sign_up(
    client: &reqwest::Client,
    base: &str,
    config: &Value,
    index: u32,
) -> anyhow::Result<Buyer> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("bench-{index}-{}@bench.example.com", &run[..8]);
    let password = format!("Bench-{}-Pw9", &run[..8]);
    let response = client
        .post(format!("{base}/sim/sso/"))
        .header("X-Amz-Target", "AWSCognitoIdentityProviderService.SignUp")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(
            json!({
                "ClientId": config["sso"]["appClientId"],
                "Username": email,
                "Password": password,
                "UserAttributes": [
                    { "Name": "email", "Value": email },
                    { "Name": "given_name", "Value": "Bench" },
                    { "Name": "family_name", "Value": format!("Buyer{index}") }
                ]
            })
            .to_string(),
        )
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "sign-up: {}",
        response.text().await?
    );
    let session: Value = client
        .get(format!("{base}/cloudpay/api/v1/session/start"))
        .query(&[("emailaddress", &email), ("password", &password)])
        .send()
        .await?
        .json()
        .await?;
    let session = session["AuthenticationToken"]
        .as_str()
        .context("session start gave no AuthenticationToken")?
        .to_owned();
    Ok(Buyer { session })
}

async fn buy(
    client: &reqwest::Client,
    base: &str,
    buyer: &Buyer,
    package: &str,
) -> anyhow::Result<()> {
    let basket: Value = client
        .post(format!("{base}/cloudpay/payment/stripe/checkout"))
        .query(&[("apisessionid", &buyer.session)])
        .json(&json!({ "packageId": package }))
        .send()
        .await?
        .json()
        .await?;
    let intent = basket["basketId"]
        .as_str()
        .context("checkout gave no basketId")?;
    let response = client
        .post(format!(
            "{base}/sim/control/stripe/intents/{intent}/confirm"
        ))
        .json(&json!({ "payment_method": "pm_card_visa" }))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "confirm: {}",
        response.text().await?
    );
    Ok(())
}

/// Buys `subscribers` monthly passes, then moves the clock through twelve renewals.
pub async fn run(base: &str, subscribers: u32) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let config: Value = client
        .get(format!("{base}/sim/control/config"))
        .send()
        .await?
        .json()
        .await?;
    let package = config["fixtures"]["monthlyPackageId"]
        .as_str()
        .context("no monthly package")?
        .to_owned();
    let mut buyers = Vec::new();
    for index in 0..BUYERS.min(subscribers) {
        buyers.push(sign_up(&client, base, &config, index).await?);
    }
    let started = Instant::now();
    let mut purchases = tokio::task::JoinSet::new();
    let count = buyers.len() as u32;
    for (index, buyer) in buyers.into_iter().enumerate() {
        let share = subscribers / count + u32::from((index as u32) < subscribers % count);
        let (client, base, package) = (client.clone(), base.to_owned(), package.clone());
        purchases.spawn(async move {
            for _ in 0..share {
                buy(&client, &base, &buyer, &package).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = purchases.join_next().await {
        result??;
    }
    let buying = started.elapsed();
    println!(
        "{subscribers:>7} purchases (checkout → confirm → webhook → entitlement): {:>7.2} s, {:>7.0} flows/s",
        buying.as_secs_f64(),
        f64::from(subscribers) / buying.as_secs_f64()
    );

    let clock: Value = client
        .get(format!("{base}/sim/clock"))
        .send()
        .await?
        .json()
        .await?;
    let bought_at = chrono::DateTime::parse_from_rfc3339(clock["now"].as_str().context("clock")?)?
        .with_timezone(&chrono::Utc);
    let started = Instant::now();
    let mut renewed = 0;
    for month in 1..=12u32 {
        let to = bought_at
            .checked_add_months(chrono::Months::new(month))
            .context("date")?
            + chrono::Duration::hours(1);
        let reading: Value = client
            .post(format!("{base}/sim/clock"))
            .json(&json!({ "setTo": to }))
            .send()
            .await?
            .json()
            .await?;
        renewed += reading["billing"]["renewed"].as_u64().unwrap_or(0);
        if reading["billing"]["failed"].as_u64().unwrap_or(0) > 0 {
            bail!("renewals failed in month {month}: {reading}");
        }
    }
    let renewing = started.elapsed();
    let expected = u64::from(subscribers) * 12;
    println!(
        "{subscribers:>7} subscribers × 12 months: {renewed} renewals in {:>7.2} s, {:>7.0} renewals/s{}",
        renewing.as_secs_f64(),
        renewed as f64 / renewing.as_secs_f64(),
        if renewed == expected {
            String::new()
        } else {
            format!(" (expected {expected}; the rest by the background billing clock)")
        }
    );
    Ok(())
}
