//! Stripe's REST API as boxoffice uses it: form-encoded requests with bracket notation,
//! the secret key as a bearer token, an `Idempotency-Key` on every creating call, and
//! Stripe's error object read back into [`StripeClientError`].

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::wire::{
    self, Charge, Customer, ErrorBody, PaymentError, PaymentIntent, Refund, SetupIntent,
};
use crate::providers::ProviderError;

/// The API version boxoffice is written against, sent with every request.
pub const API_VERSION: &str = "2025-03-31.basil";

/// Where Stripe is and the account's keys.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `https://api.stripe.com`, or a simulator's base such as
    /// `http://127.0.0.1:8080/sim/stripe`; requests go to `{api_base}/v1/...`.
    pub api_base: String,
    pub secret_key: String,
    /// Handed to browsers for Stripe.js.
    pub publishable_key: String,
    /// The `whsec_…` secret of the webhook endpoint registered for `/webhooks/stripe`.
    pub webhook_secret: String,
    /// How old a webhook's signature may be, by the server's clock (Stripe's libraries use
    /// 300 s).
    pub webhook_tolerance_seconds: i64,
    /// Where Stripe's hosted card form is, for the checkout page; `None` for real Stripe,
    /// whose page loads Stripe.js instead.
    pub hosted_form_url: Option<String>,
    /// Requests this process has in flight to Stripe at most (at least 1, and `usize::MAX`
    /// for no limit); the rest wait their turn. Stripe limits an account's requests (beyond
    /// its rate limit it answers 429), and a billing run would otherwise send a whole
    /// batch's charges at once.
    pub max_concurrent_requests: usize,
    /// Reach `api_base` over this Unix socket instead of TCP (simulator mode: the built-in
    /// simulator, on the socket the process also listens on). Ignored where there are no
    /// Unix sockets.
    pub unix_socket: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeClientError {
    /// The card was refused (`card_error`, 402). `payment_intent` is the intent as it stands
    /// after the attempt, when Stripe returned one.
    #[error("{}", .error.message.as_deref().unwrap_or("Your card was declined."))]
    Declined {
        error: PaymentError,
        payment_intent: Option<Box<PaymentIntent>>,
    },
    /// Stripe refused the request itself (400/404): a bug or a stale id on our side.
    #[error("Stripe refused the request: {message}")]
    Refused { status: u16, message: String },
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// A payment taken now, in the browser (a checkout).
#[derive(Debug, Clone)]
pub struct NewPaymentIntent<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub customer: &'a str,
    pub description: &'a str,
    /// Keep the card for off-session renewals.
    pub save_card: bool,
    pub metadata: &'a [(&'a str, &'a str)],
    pub idempotency_key: &'a str,
}

/// A card saved now and charged later (free trials, billing updates).
#[derive(Debug, Clone)]
pub struct NewSetupIntent<'a> {
    pub customer: &'a str,
    pub description: &'a str,
    pub metadata: &'a [(&'a str, &'a str)],
    pub idempotency_key: &'a str,
}

/// A renewal: the saved card charged without the customer.
#[derive(Debug, Clone)]
pub struct OffSessionCharge<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub customer: &'a str,
    pub payment_method: &'a str,
    pub description: &'a str,
    pub metadata: &'a [(&'a str, &'a str)],
    /// Derived from the subscription, the period and the attempt: a retried call after a
    /// crash replays Stripe's stored answer instead of charging again.
    pub idempotency_key: &'a str,
}

#[derive(Clone)]
pub struct StripeClient {
    settings: StripeSettings,
    http: reqwest::Client,
    /// `{api_base}/v1/`, parsed once; the text if it does not parse (each request is then
    /// refused as reqwest refuses the text).
    api_v1: Result<reqwest::Url, String>,
    /// One permit per request in flight: [`StripeSettings::max_concurrent_requests`].
    in_flight: Arc<Semaphore>,
}

type Form = Vec<(String, String)>;

fn metadata_fields(form: &mut Form, metadata: &[(&str, &str)]) {
    for (key, value) in metadata {
        form.push((format!("metadata[{key}]"), (*value).to_owned()));
    }
}

impl StripeClient {
    pub fn new(settings: StripeSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            // reqwest retries only HTTP/2 and HTTP/3 refusals, which HTTP/1.1 never sees,
            // yet by default copies every request's headers in case it retries.
            .retry(reqwest::retry::never().max_retries_per_request(0));
        #[cfg(unix)]
        let http = match &settings.unix_socket {
            Some(socket) => http.unix_socket(socket.as_path()),
            None => http,
        };
        let http = http.build().unwrap_or_default();
        let in_flight = Arc::new(Semaphore::new(
            settings
                .max_concurrent_requests
                .clamp(1, Semaphore::MAX_PERMITS),
        ));
        let api_v1_text = format!("{}/v1/", settings.api_base.trim_end_matches('/'));
        let api_v1 = reqwest::Url::parse(&api_v1_text)
            .ok()
            .filter(|url| !url.cannot_be_a_base())
            .ok_or(api_v1_text);
        Self {
            settings,
            http,
            api_v1,
            in_flight,
        }
    }

    pub fn settings(&self) -> &StripeSettings {
        &self.settings
    }

    /// `{api_base}/v1/{path}`: the parsed base with the path's segments added, instead of
    /// the whole text parsed again for every request (7 % of the client's own work for a
    /// renewal's charge); the text where the base does not parse.
    fn url(&self, path: &str) -> Result<reqwest::Url, String> {
        match &self.api_v1 {
            Ok(base) => {
                let mut url = base.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop_if_empty().extend(path.split('/'));
                }
                Ok(url)
            }
            Err(base) => Err(format!("{base}{path}")),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        form: Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeClientError> {
        let (mut request, url) = match self.url(path) {
            Ok(url) => (self.http.request(method.clone(), url.clone()), url.into()),
            Err(text) => (self.http.request(method.clone(), &text), text),
        };
        request = request
            .bearer_auth(&self.settings.secret_key)
            .header("Stripe-Version", API_VERSION);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request = if method == reqwest::Method::GET {
            request.query(&form)
        } else {
            // What `RequestBuilder::form` sends, without serde between the pairs and the
            // encoder.
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish();
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
        };
        let transport = |source| ProviderError::Transport {
            url: url.clone(),
            source,
        };
        // Held until the answer is read. The semaphore is never closed, so a permit always
        // comes.
        let permit = self.in_flight.acquire().await;
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        // Read as bytes: a Stripe answer is UTF-8 JSON, and only an error needs it as text.
        let body = response.bytes().await.map_err(transport)?;
        drop(permit);
        if (200..300).contains(&status) {
            return wire::decode(&body).map_err(|error| {
                ProviderError::Decode {
                    url: url.clone(),
                    detail: error.to_string(),
                }
                .into()
            });
        }
        let detail = wire::decode::<ErrorBody>(&body).ok();
        let body = String::from_utf8_lossy(&body).into_owned();
        match (status, detail) {
            (402, Some(ErrorBody { error })) => Err(StripeClientError::Declined {
                payment_intent: error.payment_intent.map(Box::new),
                error: PaymentError {
                    kind: error.kind,
                    code: error.code,
                    decline_code: error.decline_code,
                    message: error.message,
                    charge: None,
                },
            }),
            (400 | 404, Some(ErrorBody { error })) => Err(StripeClientError::Refused {
                status,
                message: match (error.message, error.param) {
                    (Some(message), Some(param)) => format!("{message} (param {param})"),
                    (Some(message), None) => message,
                    (None, _) => body.clone(),
                },
            }),
            _ => Err(ProviderError::Status { url, status, body }.into()),
        }
    }

    /// The Stripe customer for a boxoffice customer; created once per customer, whatever
    /// the number of calls, thanks to the idempotency key.
    pub async fn create_customer(
        &self,
        customer_id: &str,
        email: &str,
        name: &str,
    ) -> Result<String, StripeClientError> {
        let form = vec![
            ("email".to_owned(), email.to_owned()),
            ("name".to_owned(), name.to_owned()),
            (
                "metadata[boxoffice_customer_id]".to_owned(),
                customer_id.to_owned(),
            ),
        ];
        let customer: Customer = self
            .call(
                reqwest::Method::POST,
                "customers",
                form,
                Some(&format!("boxoffice-customer-{customer_id}")),
            )
            .await?;
        Ok(customer.id)
    }

    pub async fn create_payment_intent(
        &self,
        new: &NewPaymentIntent<'_>,
    ) -> Result<PaymentIntent, StripeClientError> {
        let mut form = vec![
            ("amount".to_owned(), new.amount.to_string()),
            ("currency".to_owned(), new.currency.to_ascii_lowercase()),
            ("customer".to_owned(), new.customer.to_owned()),
            ("description".to_owned(), new.description.to_owned()),
            ("payment_method_types[]".to_owned(), "card".to_owned()),
        ];
        if new.save_card {
            form.push(("setup_future_usage".to_owned(), "off_session".to_owned()));
        }
        metadata_fields(&mut form, new.metadata);
        self.call(
            reqwest::Method::POST,
            "payment_intents",
            form,
            Some(new.idempotency_key),
        )
        .await
    }

    pub async fn update_payment_intent_amount(
        &self,
        id: &str,
        amount: i64,
        metadata: &[(&str, &str)],
    ) -> Result<PaymentIntent, StripeClientError> {
        let mut form = vec![("amount".to_owned(), amount.to_string())];
        metadata_fields(&mut form, metadata);
        self.call(
            reqwest::Method::POST,
            &format!("payment_intents/{id}"),
            form,
            None,
        )
        .await
    }

    pub async fn cancel_payment_intent(
        &self,
        id: &str,
    ) -> Result<PaymentIntent, StripeClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("payment_intents/{id}/cancel"),
            Vec::new(),
            None,
        )
        .await
    }

    /// The intent with its payment method and latest charge expanded.
    pub async fn payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("payment_intents/{id}"),
            vec![
                ("expand[]".to_owned(), "payment_method".to_owned()),
                ("expand[]".to_owned(), "latest_charge".to_owned()),
            ],
            None,
        )
        .await
    }

    pub async fn create_setup_intent(
        &self,
        new: &NewSetupIntent<'_>,
    ) -> Result<SetupIntent, StripeClientError> {
        let mut form = vec![
            ("customer".to_owned(), new.customer.to_owned()),
            ("description".to_owned(), new.description.to_owned()),
            ("usage".to_owned(), "off_session".to_owned()),
            ("payment_method_types[]".to_owned(), "card".to_owned()),
        ];
        metadata_fields(&mut form, new.metadata);
        self.call(
            reqwest::Method::POST,
            "setup_intents",
            form,
            Some(new.idempotency_key),
        )
        .await
    }

    /// The intent with its payment method expanded.
    pub async fn setup_intent(&self, id: &str) -> Result<SetupIntent, StripeClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("setup_intents/{id}"),
            vec![("expand[]".to_owned(), "payment_method".to_owned())],
            None,
        )
        .await
    }

    /// Charges a saved card without the customer. A decline is
    /// [`StripeClientError::Declined`] carrying the failed intent.
    pub async fn charge_off_session(
        &self,
        charge: &OffSessionCharge<'_>,
    ) -> Result<PaymentIntent, StripeClientError> {
        let mut form = vec![
            ("amount".to_owned(), charge.amount.to_string()),
            ("currency".to_owned(), charge.currency.to_ascii_lowercase()),
            ("customer".to_owned(), charge.customer.to_owned()),
            (
                "payment_method".to_owned(),
                charge.payment_method.to_owned(),
            ),
            ("description".to_owned(), charge.description.to_owned()),
            ("confirm".to_owned(), "true".to_owned()),
            ("off_session".to_owned(), "true".to_owned()),
            ("payment_method_types[]".to_owned(), "card".to_owned()),
        ];
        metadata_fields(&mut form, charge.metadata);
        self.call(
            reqwest::Method::POST,
            "payment_intents",
            form,
            Some(charge.idempotency_key),
        )
        .await
    }

    pub async fn charge(&self, id: &str) -> Result<Charge, StripeClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("charges/{id}"),
            Vec::new(),
            None,
        )
        .await
    }

    /// Every refund of a charge, newest first.
    pub async fn refunds_of_charge(&self, charge: &str) -> Result<Vec<Refund>, StripeClientError> {
        #[derive(serde::Deserialize)]
        struct RefundPage {
            data: Vec<Refund>,
        }
        let page: RefundPage = self
            .call(
                reqwest::Method::GET,
                "refunds",
                vec![
                    ("charge".to_owned(), charge.to_owned()),
                    ("limit".to_owned(), "100".to_owned()),
                ],
                None,
            )
            .await?;
        Ok(page.data)
    }
}

/// Metadata keys boxoffice puts on its intents, to recognise them in webhooks.
pub mod metadata {
    pub const CUSTOMER: &str = "boxoffice_customer_id";
    pub const SUBSCRIPTION: &str = "boxoffice_subscription_id";
    pub const PERIOD: &str = "boxoffice_period";
    pub const PACKAGE: &str = "boxoffice_package_id";
    pub const DISCOUNT: &str = "boxoffice_discount_code";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(api_base: &str) -> StripeClient {
        StripeClient::new(StripeSettings {
            api_base: api_base.to_owned(),
            secret_key: "sk_test_1".into(),
            publishable_key: "pk_test_1".into(),
            webhook_secret: "whsec_1".into(),
            webhook_tolerance_seconds: 300,
            hosted_form_url: None,
            max_concurrent_requests: 1,
            unix_socket: None,
        })
    }

    #[test]
    fn a_request_goes_to_the_path_under_the_bases_v1() {
        for base in [
            "http://127.0.0.1:8080/sim/stripe",
            "http://127.0.0.1:8080/sim/stripe/",
        ] {
            let url = client(base).url("payment_intents/pi_1/confirm").unwrap();
            assert_eq!(
                url.as_str(),
                "http://127.0.0.1:8080/sim/stripe/v1/payment_intents/pi_1/confirm"
            );
        }
        let url = client("https://api.stripe.com").url("customers").unwrap();
        assert_eq!(url.as_str(), "https://api.stripe.com/v1/customers");
        // An id is one segment, whatever it holds.
        let url = client("https://api.stripe.com")
            .url("charges/ch_1?x")
            .unwrap();
        assert_eq!(url.as_str(), "https://api.stripe.com/v1/charges/ch_1%3Fx");
    }

    #[test]
    fn a_base_that_does_not_parse_is_left_for_reqwest_to_refuse() {
        assert_eq!(
            client("not a url").url("customers").unwrap_err(),
            "not a url/v1/customers"
        );
    }
}
