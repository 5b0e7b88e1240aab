//! The billing clock under load: many monthly subscribers bought through CloudPay and the
//! Stripe simulator (checkout → the customer confirms → webhook → entitlement, which is
//! also the purchase-flow benchmark), then twelve months of renewals through the virtual
//! clock, every charge going to the Stripe simulator over HTTP.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

/// Buyers working at once; each is one customer buying its share one after another.
pub(crate) const BUYERS: u32 = 32;

pub(crate) struct Buyer {
    pub email: String,
    pub password: String,
    /// A CloudPay session id.
    pub session: String,
    /// How many purchases this buyer makes.
    pub share: u32,
}

pub(crate) async fn session_for(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let session: Value = client
        .get(format!("{base}/cloudpay/api/v1/session/start"))
        .query(&[("emailaddress", email), ("password", password)])
        .send()
        .await?
        .json()
        .await?;
    Ok(session["AuthenticationToken"]
        .as_str()
        .context("session start gave no AuthenticationToken")?
        .to_owned())
}

/// The buyer's successful transactions, all pages.
pub(crate) async fn paid_transactions(
    client: &reqwest::Client,
    base: &str,
    buyer: &Buyer,
) -> anyhow::Result<usize> {
    let session = session_for(client, base, &buyer.email, &buyer.password).await?;
    let mut paid = 0;
    for page in 1.. {
        let body: Value = client
            .get(format!("{base}/cloudpay/api/v1/account/transactions"))
            .query(&[
                ("apisessionid", session.as_str()),
                ("size", "100"),
                ("page", &page.to_string()),
            ])
            .send()
            .await?
            .json()
            .await?;
        let list = body["transactions"].as_array().context("no transactions")?;
        paid += list
            .iter()
            .filter(|entry| entry["Status"] == json!(1))
            .count();
        if list.len() < 100 {
            break;
        }
    }
    Ok(paid)
}

pub(crate) async fn sign_up(
    client: &reqwest::Client,
    base: &str,
    config: &Value,
    index: u32,
    share: u32,
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
    let session = session_for(client, base, &email, &password).await?;
    Ok(Buyer {
        email,
        password,
        session,
        share,
    })
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

/// Buys `subscribers` monthly passes, then moves the clock through twelve renewals; with
/// the CPU time the server (process `server_pid`) spent on them, a figure that, unlike the
/// wall time, does not depend on what else the machine is doing.
pub async fn run(base: &str, subscribers: u32, server_pid: u32) -> anyhow::Result<()> {
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
    let count = BUYERS.min(subscribers);
    let mut buyers = Vec::new();
    for index in 0..count {
        let share = subscribers / count + u32::from(index < subscribers % count);
        buyers.push(std::sync::Arc::new(
            sign_up(&client, base, &config, index, share).await?,
        ));
    }
    let started = Instant::now();
    let mut purchases = tokio::task::JoinSet::new();
    for buyer in &buyers {
        let (client, base, package, buyer) = (
            client.clone(),
            base.to_owned(),
            package.clone(),
            buyer.clone(),
        );
        purchases.spawn(async move {
            for _ in 0..buyer.share {
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
    let cpu_before = crate::bench::cpu_seconds(server_pid);
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
    // The background billing clock may still be settling jobs it claimed: the run ends
    // when none is due any more.
    loop {
        let reading: Value = client
            .get(format!("{base}/sim/clock"))
            .send()
            .await?
            .json()
            .await?;
        match reading["dueBillingJobs"].as_i64() {
            Some(0) => break,
            Some(_) => {}
            None => bail!("the clock reading does not count the due billing jobs: {reading}"),
        }
        ensure!(
            started.elapsed().as_secs() < 3600,
            "renewals did not finish within an hour"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let renewing = started.elapsed();
    let cpu_used = crate::bench::cpu_seconds(server_pid)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    // Then, outside the timing: every buyer has its purchase and twelve renewals paid.
    for buyer in &buyers {
        let expected = buyer.share as usize * 13;
        let paid = paid_transactions(&client, base, buyer).await?;
        ensure!(
            paid == expected,
            "{} has {paid} payments for {expected} periods",
            buyer.email
        );
    }
    let expected = u64::from(subscribers) * 12;
    // Cores busy: how much of the machine the server kept working, so that a wall time is
    // read as CPU a renewal over what the server could use of the cores.
    let cpu = cpu_used.map_or_else(String::new, |seconds| {
        format!(
            ", server CPU {seconds:.2} s = {:.0} µs a renewal, {:.2} cores busy",
            seconds * 1e6 / expected as f64,
            seconds / renewing.as_secs_f64()
        )
    });
    println!(
        "{subscribers:>7} subscribers × 12 months: {expected} renewals in {:>7.2} s, {:>7.0} renewals/s{cpu} ({renewed} settled by the clock moves themselves, the rest by the background billing clock)",
        renewing.as_secs_f64(),
        expected as f64 / renewing.as_secs_f64(),
    );
    Ok(())
}
