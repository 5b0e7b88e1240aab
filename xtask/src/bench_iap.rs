//! In-app purchases under load, per store: purchases made at the store simulator (untimed),
//! then every receipt verified through `POST /cloudpay/iap/verify` by concurrent customers
//! (the server asks the store simulator over HTTP for each: verifications/s), then one
//! month passes on the virtual clock so that every subscription renews and the store
//! notifies the server, which asks the store again for each (notifications/s; the clock
//! move answers once every notification has been delivered and answered).

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::bench_renewals::{BUYERS, Buyer, paid_transactions, sign_up};

#[derive(Debug, Clone, Copy)]
enum Store {
    Apple,
    Google,
    Roku,
    Amazon,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Apple => "App Store",
            Store::Google => "Google Play",
            Store::Roku => "Roku Pay",
            Store::Amazon => "Amazon",
        }
    }

    /// The catalogue's `IAPData[].Platform`.
    fn platform(self) -> &'static str {
        match self {
            Store::Apple => "Apple",
            Store::Google => "Google",
            Store::Roku => "Roku",
            Store::Amazon => "Amazon",
        }
    }
}

/// Buys at the store: the `verify` request the app would send.
async fn buy(
    client: &reqwest::Client,
    base: &str,
    store: Store,
    product: &str,
) -> anyhow::Result<Value> {
    let (path, body) = match store {
        Store::Apple => ("apple/purchases", json!({ "productId": product })),
        Store::Google => ("google/subscriptions", json!({ "productId": product })),
        Store::Roku => ("roku/purchases", json!({ "productId": product })),
        Store::Amazon => ("amazon/purchases", json!({ "sku": product })),
    };
    let response = client
        .post(format!("{base}/sim/control/{path}"))
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "{} purchase: {}",
        store.name(),
        response.text().await?
    );
    let bought: Value = response.json().await?;
    Ok(match store {
        Store::Apple => json!({
            "platform": "ios",
            "receipt": { "purchaseIdentifier": bought["transactionId"] }
        }),
        Store::Google => json!({
            "platform": "android",
            "receipt": {
                "purchaseIdentifier": bought["purchaseToken"],
                "packageName": bought["packageName"],
                "productId": bought["productId"]
            }
        }),
        Store::Roku => json!({
            "platform": "roku",
            "receipt": { "purchaseIdentifier": bought["purchaseId"] }
        }),
        Store::Amazon => json!({
            "platform": "amazon",
            "receipt": {
                "purchaseIdentifier": bought["receipt"]["receiptId"],
                "userId": bought["userData"]["userId"]
            }
        }),
    })
}

/// The product the catalogue's IAP package is sold as at `store`.
async fn product_of(
    client: &reqwest::Client,
    base: &str,
    config: &Value,
    store: Store,
) -> anyhow::Result<String> {
    let package_id = config["fixtures"]["iapPackageId"]
        .as_str()
        .context("the simulator names no IAP package")?;
    let packages: Value = client
        .get(format!("{base}/cloudpay/api/v1/package"))
        .query(&[("type", "iap")])
        .send()
        .await?
        .json()
        .await?;
    packages["SubscriptionPlanOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| package["Id"].as_str() == Some(package_id))
        .flat_map(|package| package["IAPData"].as_array().cloned().unwrap_or_default())
        .find(|product| product["Platform"].as_str() == Some(store.platform()))
        .and_then(|product| product["ProductID"].as_str().map(str::to_owned))
        .with_context(|| format!("{package_id} is not sold at {}", store.name()))
}

async fn run_store(
    client: &reqwest::Client,
    base: &str,
    config: &Value,
    store: Store,
    purchases: u32,
) -> anyhow::Result<()> {
    let product = product_of(client, base, config, store).await?;
    let count = BUYERS.min(purchases);
    let mut buyers = Vec::new();
    for index in 0..count {
        let share = purchases / count + u32::from(index < purchases % count);
        let buyer: std::sync::Arc<Buyer> =
            std::sync::Arc::new(sign_up(client, base, config, index, share).await?);
        let mut receipts = Vec::new();
        for _ in 0..share {
            receipts.push(buy(client, base, store, &product).await?);
        }
        buyers.push((buyer, receipts));
    }
    let started = Instant::now();
    let mut verifying = tokio::task::JoinSet::new();
    for (buyer, receipts) in &buyers {
        let (client, base, buyer, receipts) = (
            client.clone(),
            base.to_owned(),
            buyer.clone(),
            receipts.clone(),
        );
        verifying.spawn(async move {
            for receipt in receipts {
                let response = client
                    .post(format!("{base}/cloudpay/iap/verify"))
                    .query(&[("apisessionid", &buyer.session)])
                    .json(&receipt)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "verify: {}",
                    response.text().await?
                );
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = verifying.join_next().await {
        result??;
    }
    let verifying = started.elapsed();
    println!(
        "{:<12} {purchases:>6} verifications (app → CloudPay → store API → entitlement): {:>7.2} s, {:>7.0} /s",
        store.name(),
        verifying.as_secs_f64(),
        f64::from(purchases) / verifying.as_secs_f64()
    );

    let started = Instant::now();
    let response = client
        .post(format!("{base}/sim/clock"))
        .json(&json!({ "advance": "32d" }))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "clock: {}",
        response.text().await?
    );
    let renewing = started.elapsed();
    // Untimed: every purchase and every renewal is a payment on its buyer's account.
    for (buyer, _) in &buyers {
        let paid = paid_transactions(client, base, buyer).await?;
        if paid != 2 * buyer.share as usize {
            bail!(
                "{}: {} has {paid} payments after {} purchases renewed once",
                store.name(),
                buyer.email,
                buyer.share
            );
        }
    }
    println!(
        "{:<12} {purchases:>6} renewal notifications (store → webhook → store API → transaction): {:>7.2} s, {:>7.0} /s",
        store.name(),
        renewing.as_secs_f64(),
        f64::from(purchases) / renewing.as_secs_f64()
    );
    Ok(())
}

/// Runs the benchmark for each store on the simulator-mode server at `base`.
pub async fn run(base: &str, purchases: u32) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let config: Value = client
        .get(format!("{base}/sim/control/config"))
        .send()
        .await?
        .json()
        .await?;
    for store in [Store::Apple, Store::Google, Store::Roku, Store::Amazon] {
        run_store(&client, base, &config, store, purchases).await?;
    }
    Ok(())
}
