//! Playing the app stores against their simulators' control surfaces: buy as the customer
//! on the device (what the app then sends to CloudPay's Verify API), fail and recover
//! renewals, turn auto-renew off, refund, and hand the server a notification it has already
//! had or one nobody signed. Needs the control surface (`{simControl}/apple/...`,
//! `{simControl}/google/...`, `{simControl}/roku/...`, `{simControl}/amazon/...`); against
//! the real stores these scenarios are skipped.

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
    Roku,
    Amazon,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Apple => "App Store",
            StoreKind::Google => "Google Play",
            StoreKind::Roku => "Roku Pay",
            StoreKind::Amazon => "Amazon Appstore",
        }
    }

    /// The control surface's section for this store.
    fn section(self) -> &'static str {
        match self {
            StoreKind::Apple => "apple",
            StoreKind::Google => "google",
            StoreKind::Roku => "roku",
            StoreKind::Amazon => "amazon",
        }
    }

    /// A page of the section that every simulator of the store answers.
    fn probe(self) -> &'static str {
        match self {
            StoreKind::Apple => "/apple/app",
            StoreKind::Google => "/google/rtdn",
            StoreKind::Roku => "/roku/account",
            StoreKind::Amazon => "/amazon/app",
        }
    }

    /// The catalogue's `IAPData[].Platform`.
    fn platform(self) -> &'static str {
        match self {
            StoreKind::Apple => "Apple",
            StoreKind::Google => "Google",
            StoreKind::Roku => "Roku",
            StoreKind::Amazon => "Amazon",
        }
    }
}

/// A subscription bought at the store: what the app sends to `POST /iap/verify`, and the
/// store's name for the purchase (Apple's original transaction id, Google's purchase token,
/// Roku's original transaction id, Amazon's receipt id).
#[derive(Debug, Clone)]
pub struct StorePurchase {
    pub verify_request: Value,
    pub purchase_ref: String,
    /// The first payment's id (Apple's and Roku's transaction id).
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
            StoreKind::Roku => {
                let order = self
                    .control_call("/purchases", json!({ "productId": self.product_id }))
                    .await?;
                let text = |member: &str| {
                    order[member]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| fail(format!("the Roku order has no {member}: {order}")))
                };
                let purchase_id = text("purchaseId")?;
                Ok(StorePurchase {
                    verify_request: json!({
                        "platform": "roku",
                        "receipt": { "purchaseIdentifier": purchase_id, "payment": payment }
                    }),
                    purchase_ref: text("originalTransactionId")?,
                    transaction_id: purchase_id,
                })
            }
            StoreKind::Amazon => {
                let bought = self
                    .control_call(
                        "/purchases",
                        json!({ "sku": self.product_id, "countryCode": "GB" }),
                    )
                    .await?;
                let receipt_id = bought["receipt"]["receiptId"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| fail(format!("the Amazon purchase has no receipt: {bought}")))?;
                Ok(StorePurchase {
                    verify_request: json!({
                        "platform": "amazon",
                        "receipt": {
                            "purchaseIdentifier": receipt_id,
                            "userId": bought["userData"]["userId"],
                            "payment": payment
                        }
                    }),
                    purchase_ref: receipt_id.clone(),
                    transaction_id: receipt_id,
                })
            }
        }
    }

    /// The path of the purchase at the control surface: Amazon's receipt, the others'
    /// subscription.
    fn purchase_path(&self, purchase: &StorePurchase) -> String {
        match self.kind {
            StoreKind::Amazon => format!("/receipts/{}", purchase.purchase_ref),
            _ => format!("/subscriptions/{}", purchase.purchase_ref),
        }
    }

    async fn subscription(&self, purchase: &StorePurchase) -> Step<Value> {
        self.control_read(&self.purchase_path(purchase)).await
    }

    /// When the period the store last charged for ends (milliseconds since the epoch).
    pub async fn expiry(&self, purchase: &StorePurchase) -> Step<i64> {
        let subscription = self.subscription(purchase).await?;
        let expiry = match self.kind {
            StoreKind::Apple => &subscription["expiresDate"],
            StoreKind::Google => &subscription["subscription"]["lineItems"][0]["expiryTime"],
            StoreKind::Roku => {
                return roku_date(&subscription["validateTransaction"]["expirationDate"])
                    .ok_or_else(|| fail(format!("Roku shows no expiry: {subscription}")));
            }
            StoreKind::Amazon => &subscription["paidUntil"],
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
    /// cancelled but not yet expired; Roku's `isEntitled`; Amazon's access.
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
            StoreKind::Roku => subscription["validateTransaction"]["isEntitled"] == json!(true),
            StoreKind::Amazon => subscription["hasAccess"] == json!(true),
        })
    }

    /// The customer's payment method stops working: the next renewal fails into the
    /// store's grace period (access kept while the store retries).
    pub async fn fail_renewals_with_grace(&self, purchase: &StorePurchase) -> Step {
        let path = self.purchase_path(purchase);
        match self.kind {
            StoreKind::Apple | StoreKind::Roku | StoreKind::Amazon => {
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
            &format!("{}/recover", self.purchase_path(purchase)),
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// The customer turns auto-renew off in the store (Google calls it cancelling).
    pub async fn turn_auto_renew_off(&self, purchase: &StorePurchase) -> Step {
        let path = self.purchase_path(purchase);
        match self.kind {
            StoreKind::Apple | StoreKind::Amazon => {
                self.control_call(&format!("{path}/auto_renew"), json!({ "enabled": false }))
                    .await?
            }
            StoreKind::Google => {
                self.control_call(&format!("{path}/cancel"), json!({}))
                    .await?
            }
            StoreKind::Roku => {
                self.control_call(&format!("{path}/auto_renew"), json!({ "autoRenew": false }))
                    .await?
            }
        };
        Ok(())
    }

    /// The store refunds the purchase and takes access away (Apple's refund, Google's
    /// "refund and revoke", Roku's refund of the latest payment with the subscription
    /// deactivated now, Amazon's refund through customer service).
    pub async fn refund(&self, purchase: &StorePurchase) -> Step {
        match self.kind {
            StoreKind::Apple => {
                self.control_call(
                    &format!("/transactions/{}/refund", purchase.transaction_id),
                    json!({}),
                )
                .await?
            }
            StoreKind::Google | StoreKind::Roku => {
                self.control_call(
                    &format!("{}/revoke", self.purchase_path(purchase)),
                    json!({}),
                )
                .await?
            }
            StoreKind::Amazon => {
                self.control_call(
                    &format!("{}/refund", self.purchase_path(purchase)),
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
                self.redeliver(&message_id).await
            }
            StoreKind::Roku => {
                let sent = self.control_read("/notifications").await?;
                let message_key = sent["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|message| {
                        message["originalTransactionId"].as_str()
                            == Some(purchase.purchase_ref.as_str())
                    })
                    .and_then(|message| message["messageKey"].as_str())
                    .ok_or_else(|| fail("Roku pushed nothing about the purchase"))?
                    .to_owned();
                self.redeliver(&message_key).await
            }
            StoreKind::Amazon => {
                let sent = self.control_read("/notifications").await?;
                let body = sent["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|message| {
                        message["rtn"]["receiptId"].as_str() == Some(purchase.purchase_ref.as_str())
                    })
                    .and_then(|message| message["body"].as_str())
                    .ok_or_else(|| fail("Amazon sent no notification about the purchase"))?
                    .to_owned();
                let exchange = self.post_sns(body).await?;
                Ok((exchange.status, exchange.body))
            }
        }
    }

    /// Has the simulator push a message again (Google: by message id, Roku: by message
    /// key): the status and body the server answered that push with.
    async fn redeliver(&self, message: &str) -> Step<(u16, String)> {
        let redelivered = self
            .control_call(&format!("/notifications/{message}/redeliver"), json!({}))
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

    /// POSTs an SNS message to the Amazon receiver as SNS does.
    async fn post_sns(&self, body: String) -> Step<Exchange> {
        self.http
            .post(join(&self.webhooks, "/amazon"))
            .header("x-amz-sns-message-type", "Notification")
            .body("text/plain; charset=UTF-8", body.into_bytes())
            .send()
            .await
    }

    /// Posts a notification about the purchase that the store did not sign (Apple: a
    /// payload changed under its signature; Google: a push without Pub/Sub's token; Roku: a
    /// push signed by a key Roku never published; Amazon: an SNS message whose signing
    /// certificate is not SNS's): the server's answer.
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
            StoreKind::Roku => {
                use base64::Engine;
                let encode = |value: Value| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(value.to_string().as_bytes())
                };
                let message = json!({
                    "transactionType": "Sale",
                    "transactionId": purchase.transaction_id,
                    "originalTransactionId": purchase.purchase_ref,
                    "responseKey": "00000000000000000000000000000000"
                });
                let claims = json!({
                    "iss": "Roku, Inc. urn:roku:apps:partner-service.roku.com",
                    "x-Roku-message": base64::engine::general_purpose::STANDARD
                        .encode(message.to_string().as_bytes()),
                    "x-Roku-message-key": "00000000000000000000000000000000"
                });
                let token = format!(
                    "{}.{}.{}",
                    encode(json!({ "alg": "RS256", "typ": "JWT", "kid": "forged" })),
                    encode(claims),
                    encode(json!("not a signature"))
                );
                self.http
                    .post(join(&self.webhooks, "/roku"))
                    .body("text/plain", token.into_bytes())
                    .send()
                    .await
            }
            StoreKind::Amazon => {
                let rtn = json!({
                    "appPackageName": "com.boxoffice.app",
                    "notificationType": "SUBSCRIPTION_RENEWED",
                    "receiptId": purchase.purchase_ref,
                    "timestamp": 1_700_000_000_000_i64
                });
                let forged = json!({
                    "Type": "Notification",
                    "MessageId": "7f0e4c4e-0000-0000-0000-000000000000",
                    "TopicArn": "arn:aws:sns:us-east-1:000000000000:forged",
                    "Message": rtn.to_string(),
                    "Timestamp": "2026-01-01T00:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "c2lnbmF0dXJl",
                    "SigningCertURL": "https://attacker.example.com/cert.pem"
                });
                self.post_sns(forged.to_string()).await
            }
        }
    }
}

/// Roku's `/Date(1490000000000+0000)/`, in milliseconds since the epoch.
fn roku_date(value: &Value) -> Option<i64> {
    value
        .as_str()?
        .strip_prefix("/Date(")?
        .split(['+', '-', ')'])
        .next()?
        .parse()
        .ok()
}
