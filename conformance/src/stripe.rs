//! Playing the Stripe customer and the card issuer against the Stripe simulator: confirm
//! an intent in the "browser", make a charge fail, refund, read events, resend one, and
//! deliver the webhooks due. Needs the simulator's API and control surface and the account's
//! keys; against real Stripe these scenarios are skipped.

use serde_json::{Value, json};
use url::Url;

use crate::config::join;
use crate::http::{Exchange, HttpClient};
use crate::step::{Step, skip};

#[derive(Clone)]
pub struct StripePlayer {
    http: HttpClient,
    api: Url,
    control: Url,
    secret_key: String,
    publishable_key: String,
    webhook_secret: Option<String>,
    webhooks: Url,
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

impl StripePlayer {
    pub fn new(
        http: HttpClient,
        api: Url,
        control: Url,
        details: &crate::config::StripeDetails,
        webhooks: Url,
    ) -> Self {
        Self {
            http,
            api,
            control,
            secret_key: details.secret_key.clone(),
            publishable_key: details.publishable_key.clone(),
            webhook_secret: details.webhook_secret.clone(),
            webhooks,
        }
    }

    async fn api_call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        pairs: &[(&str, &str)],
    ) -> Step<Exchange> {
        let url = join(&self.api, &format!("/v1/{path}"));
        let request = self
            .http
            .request(method.clone(), url)
            .header("Authorization", &format!("Bearer {key}"));
        if method == reqwest::Method::GET {
            pairs
                .iter()
                .fold(request, |request, (name, value)| request.query(name, value))
                .send()
                .await
        } else {
            request
                .body("application/x-www-form-urlencoded", form(pairs))
                .send()
                .await
        }
    }

    /// A Stripe API read with the secret key.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Step<Value> {
        self.api_call(reqwest::Method::GET, path, &self.secret_key.clone(), query)
            .await?
            .expect_json(200)
    }

    /// The customer confirms the intent in the browser with a test card, completing 3D
    /// Secure; the simulator delivers the resulting webhooks before it answers.
    pub async fn confirm(&self, intent: &str, payment_method: &str) -> Step<Exchange> {
        self.http
            .post(join(
                &self.control,
                &format!("/stripe/intents/{intent}/confirm"),
            ))
            .json(&json!({ "payment_method": payment_method }))
            .send()
            .await
    }

    /// What Stripe.js does with the publishable key and the client secret, without
    /// completing 3D Secure.
    pub async fn confirm_with_publishable_key(
        &self,
        intent: &str,
        client_secret: &str,
        payment_method: &str,
    ) -> Step<Value> {
        self.api_call(
            reqwest::Method::POST,
            &format!("payment_intents/{intent}/confirm"),
            &self.publishable_key.clone(),
            &[
                ("client_secret", client_secret),
                ("payment_method", payment_method),
            ],
        )
        .await?
        .json()
    }

    /// The Stripe customer the server made for this email.
    pub async fn customer_id(&self, email: &str) -> Step<String> {
        let list = self.get("customers", &[("email", email)]).await?;
        list["data"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| crate::step::fail(format!("Stripe has no customer {email}")))
    }

    /// The card issuer refuses the customer's next charge.
    pub async fn fail_next_charge(&self, email: &str, decline_code: &str) -> Step {
        let customer = self.customer_id(email).await?;
        self.http
            .post(join(
                &self.control,
                &format!("/stripe/customers/{customer}/fail_next_charge"),
            ))
            .json(&json!({ "decline_code": decline_code }))
            .send()
            .await?
            .expect_json(200)?;
        Ok(())
    }

    /// Refunds a charge in full (what the merchant does in Stripe's dashboard).
    pub async fn refund(&self, charge: &str) -> Step<Value> {
        self.api_call(
            reqwest::Method::POST,
            "refunds",
            &self.secret_key.clone(),
            &[("charge", charge)],
        )
        .await?
        .expect_json(200)
    }

    /// Sends every webhook due now.
    pub async fn deliver_webhooks(&self) -> Step {
        self.http
            .post(join(&self.control, "/stripe/webhooks/deliver"))
            .json(&json!({}))
            .send()
            .await?
            .expect_json(200)?;
        Ok(())
    }

    /// Queues an event again to every endpoint, as `stripe events resend` does.
    pub async fn resend(&self, event: &str) -> Step {
        self.http
            .post(join(
                &self.control,
                &format!("/stripe/events/{event}/resend"),
            ))
            .json(&json!({}))
            .send()
            .await?
            .expect_json(200)?;
        Ok(())
    }

    /// Posts a body to the server's Stripe receiver with a signature header.
    pub async fn post_webhook(&self, body: &str, signature: &str) -> Step<Exchange> {
        self.http
            .post(join(&self.webhooks, "/stripe"))
            .header("Stripe-Signature", signature)
            .body("application/json; charset=utf-8", body.as_bytes().to_vec())
            .send()
            .await
    }

    /// `Stripe-Signature` for a body at a time, with the server's webhook secret.
    pub fn sign(&self, body: &str, timestamp: i64) -> Step<String> {
        let secret = self
            .webhook_secret
            .as_deref()
            .ok_or_else(|| skip("needs stripe.webhookSecret in the config"))?;
        Ok(signature(body, secret, timestamp))
    }
}

/// Stripe's scheme: `t=<unix>,v1=<hex HMAC-SHA256 over "<t>.<body>">`.
pub fn signature(body: &str, secret: &str, timestamp: i64) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}
