//! Playing the app stores against their simulators' control surfaces: buy as the customer
//! on the device (what the app then sends to CloudPay's Verify API), fail and recover
//! renewals, turn auto-renew off, refund, and hand the server a notification it has already
//! had or one nobody signed. Needs the control surface (`{simControl}/apple/...`,
//! `{simControl}/google/...`); against the real stores these scenarios are skipped.

use serde_json::{Value, json};
use url::Url;

use crate::config::join;
use crate::context::Context;
use crate::http::{Exchange, HttpClient};
use crate::step::{Step, fail, skip};

/// The app stores the scenarios play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Apple,
    Google,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Apple => "App Store",
            StoreKind::Google => "Google Play",
        }
    }

    /// The control surface's section for this store.
    fn section(self) -> &'static str {
        match self {
            StoreKind::Apple => "apple",
            StoreKind::Google => "google",
        }
    }

    /// A page of the section that every simulator of the store answers.
    fn probe(self) -> &'static str {
        match self {
            StoreKind::Apple => "/apple/app",
            StoreKind::Google => "/google/rtdn",
        }
    }

    /// The catalogue's `IAPData[].Platform`.
    fn platform(self) -> &'static str {
        match self {
            StoreKind::Apple => "Apple",
            StoreKind::Google => "Google",
        }
    }
}

/// A subscription bought at the store: what the app sends to `POST /iap/verify`, and the
/// store's name for the purchase (Apple's original transaction id, Google's purchase token).
#[derive(Debug, Clone)]
pub struct StorePurchase {
    pub verify_request: Value,
    pub purchase_ref: String,
    /// Apple: the first transaction's id.
    pub transaction_id: String,
}

#[derive(Clone)]
pub struct StorePlayer {
    kind: StoreKind,
    http: HttpClient,
    control: Url,
    webhooks: Url,
    /// The product the catalogue sells the IAP package as, at this store.
    product_id: String,
}

impl StorePlayer {
    /// The store's simulator, or a skip when the target has none.
    pub async fn find(ctx: &Context, kind: StoreKind) -> Step<Self> {
        let control = ctx.control()?.clone();
        let probe = ctx.http.get(join(&control, kind.probe())).send().await?;
        if probe.status != 200 {
            return Err(skip(format!(
                "needs the {} simulator's control surface ({} answered {})",
                kind.name(),
                kind.probe(),
                probe.status
            )));
        }
        // The product the IAP package is sold as at this store, as the app reads it from
        // the catalogue.
        let package_id = ctx.fixture("iapPackageId", &ctx.config().fixtures.iap_package_id)?;
        let packages = ctx
            .cloudpay
            .get("/api/v1/package")
            .query("type", "iap")
            .send()
            .await?
            .expect_json(200)?;
        let product_id = packages["SubscriptionPlanOptions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|package| package["Id"].as_str() == Some(package_id))
            .and_then(|package| package["IAPData"].as_array())
            .and_then(|products| {
                products.iter().find_map(|product| {
                    (product["Platform"].as_str() == Some(kind.platform()))
                        .then(|| product["ProductID"].as_str().map(str::to_owned))
                        .flatten()
                })
            })
            .ok_or_else(|| {
                fail(format!(
                    "the package {package_id} is not sold at the {}",
                    kind.name()
                ))
            })?;
        Ok(Self {
            kind,
            http: ctx.http.clone(),
            control,
            webhooks: ctx.target.endpoints.webhooks.clone(),
            product_id,
        })
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    async fn control_call(&self, path: &str, body: Value) -> Step<Value> {
        self.http
            .post(join(
                &self.control,
                &format!("/{}{path}", self.kind.section()),
            ))
            .json(&body)
            .send()
            .await?
            .expect_json(200)
    }

    async fn control_read(&self, path: &str) -> Step<Value> {
        self.http
            .get(join(
                &self.control,
                &format!("/{}{path}", self.kind.section()),
            ))
            .send()
            .await?
            .expect_json(200)
    }

    /// The customer buys the monthly subscription on their device; the app reports what it
    /// paid (7.99 GBP) along with the receipt.
    pub async fn buy(&self) -> Step<StorePurchase> {
        let payment = json!({ "countryCode": "GB", "currencyCode": "GBP", "amount": "7.99" });
        match self.kind {
            StoreKind::Apple => {
                let bought = self
                    .control_call("/purchases", json!({ "productId": self.product_id }))
                    .await?;
                let text = |member: &str| {
                    bought[member].as_str().map(str::to_owned).ok_or_else(|| {
                        fail(format!("the App Store purchase has no {member}: {bought}"))
                    })
                };
                let transaction_id = text("transactionId")?;
                Ok(StorePurchase {
                    verify_request: json!({
                        "platform": "ios",
                        "receipt": { "purchaseIdentifier": transaction_id, "payment": payment }
                    }),
                    purchase_ref: text("originalTransactionId")?,
                    transaction_id,
                })
            }
            StoreKind::Google => {
                let bought = self
                    .control_call(
                        "/subscriptions",
                        json!({ "productId": self.product_id, "regionCode": "GB" }),
                    )
                    .await?;
                let token = bought["purchaseToken"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| fail(format!("the Play purchase has no token: {bought}")))?;
                Ok(StorePurchase {
                    verify_request: json!({
                        "platform": "android",
                        "receipt": {
                            "purchaseIdentifier": token,
                            "packageName": bought["packageName"],
                            "productId": bought["productId"],
                            "payment": payment
                        }
                    }),
                    purchase_ref: token.clone(),
                    transaction_id: token,
                })
            }
        }
    }

    async fn subscription(&self, purchase: &StorePurchase) -> Step<Value> {
        self.control_read(&format!("/subscriptions/{}", purchase.purchase_ref))
            .await
    }

    /// When the period the store last charged for ends (milliseconds since the epoch).
    pub async fn expiry(&self, purchase: &StorePurchase) -> Step<i64> {
        let subscription = self.subscription(purchase).await?;
        let expiry = match self.kind {
            StoreKind::Apple => &subscription["expiresDate"],
            StoreKind::Google => &subscription["subscription"]["lineItems"][0]["expiryTime"],
        };
        let text = expiry
            .as_str()
            .ok_or_else(|| fail(format!("the store shows no expiry: {subscription}")))?;
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| time.timestamp_millis())
            .map_err(|error| fail(format!("expiry {text} is not RFC 3339: {error}")))
    }

    /// Whether the store, as it stands now, gives the customer access: Apple's status
    /// active (1) or in grace (4); Google's subscription state active, in grace, or
    /// cancelled but not yet expired.
    pub async fn grants_access(&self, purchase: &StorePurchase) -> Step<bool> {
        let subscription = self.subscription(purchase).await?;
        Ok(match self.kind {
            StoreKind::Apple => matches!(subscription["status"].as_u64(), Some(1 | 4)),
            StoreKind::Google => matches!(
                subscription["subscription"]["subscriptionState"].as_str(),
                Some(
                    "SUBSCRIPTION_STATE_ACTIVE"
                        | "SUBSCRIPTION_STATE_IN_GRACE_PERIOD"
                        | "SUBSCRIPTION_STATE_CANCELED"
                )
            ),
        })
    }

    /// The customer's payment method stops working: the next renewal fails into the
    /// store's grace period (access kept while the store retries).
    pub async fn fail_renewals_with_grace(&self, purchase: &StorePurchase) -> Step {
        let path = format!("/subscriptions/{}", purchase.purchase_ref);
        match self.kind {
            StoreKind::Apple => {
                self.control_call(
                    &format!("{path}/fail_next_renewal"),
                    json!({ "failure": "gracePeriod" }),
                )
                .await?
            }
            StoreKind::Google => {
                self.control_call(&format!("{path}/decline_payments"), json!({}))
                    .await?
            }
        };
        Ok(())
    }

    /// The customer fixes their payment method: the store charges and renews.
    pub async fn recover(&self, purchase: &StorePurchase) -> Step {
        self.control_call(
            &format!("/subscriptions/{}/recover", purchase.purchase_ref),
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// The customer turns auto-renew off in the store (Google calls it cancelling).
    pub async fn turn_auto_renew_off(&self, purchase: &StorePurchase) -> Step {
        let path = format!("/subscriptions/{}", purchase.purchase_ref);
        match self.kind {
            StoreKind::Apple => {
                self.control_call(&format!("{path}/auto_renew"), json!({ "enabled": false }))
                    .await?
            }
            StoreKind::Google => {
                self.control_call(&format!("{path}/cancel"), json!({}))
                    .await?
            }
        };
        Ok(())
    }

    /// The store refunds the purchase and takes access away (Apple's refund, Google's
    /// "refund and revoke").
    pub async fn refund(&self, purchase: &StorePurchase) -> Step {
        match self.kind {
            StoreKind::Apple => {
                self.control_call(
                    &format!("/transactions/{}/refund", purchase.transaction_id),
                    json!({}),
                )
                .await?
            }
            StoreKind::Google => {
                self.control_call(
                    &format!("/subscriptions/{}/revoke", purchase.purchase_ref),
                    json!({}),
                )
                .await?
            }
        };
        Ok(())
    }

    /// Sends the newest notification about the purchase to the server again, as the store
    /// does when unsure it arrived: the server's status and body.
    pub async fn resend_latest_notification(
        &self,
        purchase: &StorePurchase,
    ) -> Step<(u16, String)> {
        match self.kind {
            StoreKind::Apple => {
                let sent = self.control_read("/notifications").await?;
                let signed = sent["notifications"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|notification| {
                        notification["originalTransactionId"].as_str()
                            == Some(purchase.purchase_ref.as_str())
                    })
                    .filter_map(|notification| notification["signedPayload"].as_str())
                    .next_back()
                    .ok_or_else(|| fail("the App Store sent no notification about the purchase"))?
                    .to_owned();
                let exchange = self
                    .http
                    .post(join(&self.webhooks, "/apple"))
                    .json(&json!({ "signedPayload": signed }))
                    .send()
                    .await?;
                Ok((exchange.status, exchange.body))
            }
            StoreKind::Google => {
                let sent = self.control_read("/notifications").await?;
                let message_id = sent["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|message| {
                        message["purchaseToken"].as_str() == Some(purchase.purchase_ref.as_str())
                    })
                    .and_then(|message| message["messageId"].as_str())
                    .ok_or_else(|| fail("Google Play pushed nothing about the purchase"))?
                    .to_owned();
                let redelivered = self
                    .control_call(&format!("/notifications/{message_id}/redeliver"), json!({}))
                    .await?;
                let attempt = redelivered["attempts"]
                    .as_array()
                    .and_then(|attempts| attempts.last())
                    .ok_or_else(|| fail(format!("the redelivery made no attempt: {redelivered}")))?
                    .clone();
                let status = attempt["statusCode"]
                    .as_u64()
                    .and_then(|status| u16::try_from(status).ok())
                    .ok_or_else(|| fail(format!("the redelivery got no answer: {attempt}")))?;
                Ok((
                    status,
                    attempt["responseBody"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ))
            }
        }
    }

    /// Posts a notification about the purchase that the store did not sign (Apple: a
    /// payload changed under its signature; Google: a push without Pub/Sub's token): the
    /// server's answer.
    pub async fn post_forged_notification(&self, purchase: &StorePurchase) -> Step<Exchange> {
        match self.kind {
            StoreKind::Apple => {
                let sent = self.control_read("/notifications").await?;
                let signed = sent["notifications"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|notification| notification["signedPayload"].as_str())
                    .next()
                    .ok_or_else(|| fail("the App Store has sent no notification"))?;
                let mut parts: Vec<&str> = signed.split('.').collect();
                let reversed: String = parts.get(1).copied().unwrap_or("").chars().rev().collect();
                if parts.len() == 3 {
                    parts[1] = &reversed;
                }
                self.http
                    .post(join(&self.webhooks, "/apple"))
                    .json(&json!({ "signedPayload": parts.join(".") }))
                    .send()
                    .await
            }
            StoreKind::Google => {
                use base64::Engine;
                let notification = json!({
                    "version": "1.0",
                    "packageName": "com.boxoffice.app",
                    "eventTimeMillis": "1700000000000",
                    "subscriptionNotification": {
                        "version": "1.0",
                        "notificationType": 2,
                        "purchaseToken": purchase.purchase_ref
                    }
                });
                let data = base64::engine::general_purpose::STANDARD
                    .encode(notification.to_string().as_bytes());
                self.http
                    .post(join(&self.webhooks, "/google"))
                    .header(
                        "Authorization",
                        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl",
                    )
                    .json(&json!({
                        "message": {
                            "data": data,
                            "messageId": "9999999999999999",
                            "publishTime": "2026-01-01T00:00:00.000Z"
                        },
                        "subscription": "projects/forged/subscriptions/forged"
                    }))
                    .send()
                    .await
            }
        }
    }
}
