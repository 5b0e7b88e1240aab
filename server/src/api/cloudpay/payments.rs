//! Web purchases: checkout, discount codes, billing updates, discount sync, and the HTML
//! checkout page behind `PurchaseUrl`.

use std::sync::Arc;

use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Html, Json};
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::CloudPay;
use super::auth::CloudPayAuth;
use super::error::{CloudPayError, PaymentError};
use super::wire::{
    BillingUpdateResponse, CheckoutRequest, CheckoutResponse, DiscountRequest, DiscountResponse,
    DiscountSyncRequest, DiscountSyncResponse, ResponseMetadata, SendMessageResponse,
};
use crate::core::CheckoutView;

#[derive(Tags)]
enum PaymentTags {
    /// Buying a package on the web with Stripe.
    Checkout,
    /// Internal operations for the admin backend.
    Internal,
}

#[derive(ApiResponse)]
enum CheckoutCreated {
    /// The basket to confirm with Stripe.js.
    #[oai(status = 201)]
    Created(Json<CheckoutResponse>),
}

#[derive(ApiResponse)]
enum CheckoutPage {
    /// The checkout page.
    #[oai(status = 200)]
    Page(Html<String>),
}

pub(crate) struct PaymentApi(pub(crate) Arc<CloudPay>);

fn checkout_response(view: CheckoutView) -> CheckoutResponse {
    CheckoutResponse {
        basket_id: view.basket_id,
        client_secret: view.client_secret,
        authentication_required: view.authentication_required,
        public_key: view.publishable_key,
        discounts_enabled: view.discounts_enabled,
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[OpenApi]
impl PaymentApi {
    /// Checkout a package
    ///
    /// Creates the basket for a package (`SubscriptionPlanOptions[].Id`): a Stripe setup
    /// intent for free-trial packages (the card is saved and charged when the trial ends),
    /// a payment intent for every other one (recurring packages save the card for
    /// renewals). Confirm it in the browser with Stripe.js and `publicKey`; the purchase
    /// completes when Stripe reports the payment. Asking again for the same package while
    /// its basket is open returns that basket, with `authenticationRequired` set when it
    /// waits for 3D Secure.
    #[oai(
        path = "/payment/stripe/checkout",
        method = "post",
        tag = "PaymentTags::Checkout",
        operation_id = "post-payment-request"
    )]
    async fn checkout(
        &self,
        auth: CloudPayAuth,
        body: Json<CheckoutRequest>,
    ) -> Result<CheckoutCreated, PaymentError> {
        let view = self
            .0
            .core
            .checkout(&auth.credential()?, body.0.package_id.as_ref())
            .await?;
        Ok(CheckoutCreated::Created(Json(checkout_response(view))))
    }

    /// Apply a discount code
    ///
    /// Lowers the amount of the caller's open basket (a payment intent) by the code's
    /// percentage or amount. Codes may be single- or multi-use, limited in time and to some
    /// packages; they cannot be used on free trials. A code that takes the amount to zero
    /// completes the purchase at once (`completed: true`): the subscription starts and no
    /// transaction is recorded.
    #[oai(
        path = "/payment/stripe/discount",
        method = "post",
        tag = "PaymentTags::Checkout",
        operation_id = "discount-voucher-redeem"
    )]
    async fn discount(
        &self,
        auth: CloudPayAuth,
        body: Json<DiscountRequest>,
    ) -> Result<Json<DiscountResponse>, PaymentError> {
        let discounted = self
            .0
            .core
            .apply_discount(
                &auth.credential()?,
                body.0.basket_id.as_ref(),
                body.0.code.as_ref(),
            )
            .await?;
        Ok(Json(DiscountResponse {
            client_secret: discounted.client_secret,
            amount: discounted.price.major_units(),
            currency: discounted.price.currency.code().to_owned(),
            completed: discounted.completed,
        }))
    }

    /// Update billing details
    ///
    /// A new Stripe setup intent for the customer to save another card with Stripe.js. The
    /// card pays the next charge, and a renewal that failed is retried with it at once.
    #[oai(
        path = "/billing/stripe/update",
        method = "post",
        tag = "PaymentTags::Checkout",
        operation_id = "billing-update"
    )]
    async fn billing_update(
        &self,
        auth: CloudPayAuth,
    ) -> Result<Json<BillingUpdateResponse>, PaymentError> {
        let view = self.0.core.billing_update(&auth.credential()?).await?;
        Ok(Json(BillingUpdateResponse {
            client_secret: view.client_secret,
            public_key: view.publishable_key,
        }))
    }

    /// Update billing details (PUT)
    ///
    /// The same as `POST /billing/stripe/update`; CloudPay's current reference uses PUT.
    #[oai(
        path = "/billing/stripe/update",
        method = "put",
        tag = "PaymentTags::Checkout",
        operation_id = "billing-update-put"
    )]
    async fn billing_update_put(
        &self,
        auth: CloudPayAuth,
    ) -> Result<Json<BillingUpdateResponse>, PaymentError> {
        self.billing_update(auth).await
    }

    /// Sync a discount
    ///
    /// For the admin backend: a discount (or its vouchers) changed; re-read its definition
    /// from the server's configuration. Authorised by the `x-api-key` header.
    #[oai(
        path = "/discount/streamamg/sync",
        method = "post",
        tag = "PaymentTags::Internal",
        operation_id = "discount-sync"
    )]
    async fn discount_sync(
        &self,
        #[oai(name = "x-api-key")] api_key: Header<Option<String>>,
        body: Json<DiscountSyncRequest>,
    ) -> Result<Json<DiscountSyncResponse>, PaymentError> {
        self.0
            .core
            .sync_discount(api_key.0.as_deref(), body.0.discount_id.as_ref())
            .await?;
        Ok(Json(DiscountSyncResponse {
            send_message_response: SendMessageResponse {
                response_metadata: ResponseMetadata {
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
            },
        }))
    }

    /// Checkout page
    ///
    /// The HTML page `PurchaseUrl` points at: the package, its price and a card form. Against
    /// Stripe it mounts Stripe's Payment Element; in simulator mode it embeds the Stripe
    /// simulator's card form. When the payment succeeds the browser goes to `success_url`.
    #[oai(
        path = "/sso/startbasket/:subscriptionPlanId",
        method = "get",
        tag = "PaymentTags::Checkout",
        operation_id = "get-sso-startbasket"
    )]
    async fn start_basket(
        &self,
        auth: CloudPayAuth,
        #[oai(name = "subscriptionPlanId")] plan_id: Path<String>,
        /// Where the browser goes after a successful payment: a path on this host or an
        /// allowed host.
        success_url: Query<Option<String>>,
    ) -> Result<CheckoutPage, CloudPayError> {
        let success_url = match success_url.0.as_deref() {
            Some(url) => self.0.safe_redirect(url)?,
            None => format!("{}/api/v1/account", self.0.settings.public_url),
        };
        let success_url = if success_url.starts_with('/') {
            let base = url::Url::parse(&self.0.settings.public_url)
                .map_err(|_| CloudPayError::bad_request("the server's public URL is not valid"))?;
            base.join(&success_url)
                .map_err(|_| CloudPayError::bad_request("success_url is not valid"))?
                .to_string()
        } else {
            success_url
        };
        let credential = auth.credential()?;
        let package = self.0.core.package(&plan_id.0, None).await?;
        let view = self.0.core.checkout(&credential, &package.id).await?;
        let price = view.price.unwrap_or(package.price);
        let summary = match package.trial_days {
            Some(days) => format!(
                "Free for {days} days, then {} every {}",
                package.price.formatted(),
                super::wire::period_text(package.interval)
            ),
            None if package.recurring => format!(
                "{} every {}",
                price.formatted(),
                super::wire::period_text(package.interval)
            ),
            None => price.formatted(),
        };
        let form = match &view.hosted_form_url {
            Some(form_url) => {
                let mut url = url::Url::parse(form_url)
                    .map_err(|_| CloudPayError::bad_request("the card form URL is not valid"))?;
                url.query_pairs_mut()
                    .append_pair("client_secret", &view.client_secret)
                    .append_pair("key", &view.publishable_key)
                    .append_pair("return_url", &success_url);
                format!(
                    "<iframe title=\"Card details\" src=\"{}\" style=\"width:100%;height:560px;border:0\"></iframe>",
                    escape(url.as_str())
                )
            }
            None => format!(
                "<div id=\"payment-element\"></div><button id=\"pay\">Pay</button><p id=\"error\" role=\"alert\"></p>\
                 <script src=\"https://js.stripe.com/v3/\"></script>\
                 <script>\
                 const stripe = Stripe({key});\
                 const elements = stripe.elements({{clientSecret: {secret}}});\
                 elements.create('payment').mount('#payment-element');\
                 document.getElementById('pay').addEventListener('click', async () => {{\
                   const confirm = {setup} ? stripe.confirmSetup : stripe.confirmPayment;\
                   const {{error}} = await confirm({{elements, confirmParams: {{return_url: {ret}}}}});\
                   if (error) document.getElementById('error').textContent = error.message;\
                 }});\
                 </script>",
                key = serde_json::Value::from(view.publishable_key.clone()),
                secret = serde_json::Value::from(view.client_secret.clone()),
                setup = view.basket_id.starts_with("seti_"),
                ret = serde_json::Value::from(success_url.clone()),
            ),
        };
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Checkout: {title}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}</style>\
             </head><body><h1>{title}</h1><div>{body}</div><p><strong>{summary}</strong></p>\
             <p data-basket-id=\"{basket}\">Basket {basket}</p>{form}</body></html>",
            title = escape(&package.title),
            body = package.body,
            summary = escape(&summary),
            basket = escape(&view.basket_id),
        );
        Ok(CheckoutPage::Page(Html(page)))
    }
}
