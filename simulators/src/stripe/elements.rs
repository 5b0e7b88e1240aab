//! A hosted card form standing in for Stripe's Payment Element: what the customer's browser
//! sees, server-rendered, no JavaScript.
//!
//! `GET /elements/pay?client_secret=…&key=pk_test_…&return_url=…` shows a card form for a
//! payment intent (`pi_…_secret_…`) or a setup intent (`seti_…_secret_…`), checked with the
//! publishable key and the client secret as Stripe.js calls are. Submitting it
//! (`POST /elements/pay`) confirms the intent with the card, as `payment_method_data` would:
//! - succeeded: `303` to `return_url` with Stripe's query (`payment_intent`,
//!   `payment_intent_client_secret`, `redirect_status=succeeded`, or the `setup_intent`
//!   ones);
//! - declined or refused: the form again, with Stripe's message;
//! - 3D Secure needed: a test page whose Complete and Fail buttons
//!   (`POST /elements/three_d_secure`) finish it, then the redirect
//!   (`redirect_status=failed` when it failed).
//!
//! The forms target `_top`: the page may sit in an iframe of the merchant's checkout, and
//! the customer's journey continues in the whole window. The webhooks the customer's
//! actions cause are attempted before the answer.

use chrono::{DateTime, Datelike, Utc};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, EndpointExt, Request, Response, Route, handler};
use url::Url;

use super::StripeSimulator;
use super::cards::card_for_number;
use super::details::{Address, BillingDetails};
use super::error::ApiError;
use super::state::{Account, Confirmation, IntentStatus, Metadata, NewCard, money, new_id};

/// The most a form post may weigh; a card form is a few hundred bytes.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The test cards offered on the form, and what each does.
const TEST_CARDS: &[(&str, &str)] = &[
    ("4242 4242 4242 4242", "Succeeds"),
    ("4000 0027 6000 3184", "Asks for 3D Secure"),
    ("4000 0000 0000 9995", "Declined: insufficient funds"),
    ("4000 0000 0000 0002", "Declined: generic decline"),
    ("4000 0000 0000 0069", "Declined: expired card"),
    ("4000 0000 0000 0341", "Saves, but every charge is declined"),
];

/// The form's routes, to mount at `/elements`.
pub(super) fn routes(simulator: StripeSimulator) -> impl poem::Endpoint {
    Route::new()
        .at("/pay", poem::get(show_form).post(submit_card))
        .at("/three_d_secure", poem::post(finish_three_d_secure))
        .data(simulator)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntentKind {
    Payment,
    Setup,
}

impl IntentKind {
    /// `payment_intent` / `setup_intent`, as in the redirect's query.
    fn param(self) -> &'static str {
        match self {
            Self::Payment => "payment_intent",
            Self::Setup => "setup_intent",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Payment => "PaymentIntent",
            Self::Setup => "SetupIntent",
        }
    }
}

/// A checked request for an intent: the publishable key, the intent's own client secret,
/// and where to send the customer back.
struct Checkout {
    kind: IntentKind,
    intent: String,
    key: String,
    client_secret: String,
    return_url: Url,
}

impl Checkout {
    /// `return_url` with Stripe's redirect parameters added to its query.
    fn redirect(&self, status: &str) -> Response {
        let mut url = self.return_url.clone();
        url.query_pairs_mut()
            .append_pair(self.kind.param(), &self.intent)
            .append_pair(
                &format!("{}_client_secret", self.kind.param()),
                &self.client_secret,
            )
            .append_pair("redirect_status", status);
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header("location", url.as_str())
            .header("cache-control", "no-store")
            .finish()
    }

    fn hidden_fields(&self) -> String {
        format!(
            r#"<input type="hidden" name="key" value="{}">
<input type="hidden" name="client_secret" value="{}">
<input type="hidden" name="return_url" value="{}">"#,
            escape(&self.key),
            escape(&self.client_secret),
            escape(self.return_url.as_str()),
        )
    }
}

/// The form's parameters, as sent (the first of a repeated name counts).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(input: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(input)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

/// Checks the key, the client secret and the return URL as Stripe.js would.
fn checkout(
    simulator: &StripeSimulator,
    account: &Account,
    params: &Params,
) -> Result<Checkout, ApiError> {
    let key = params.get("key").ok_or_else(ApiError::no_api_key)?;
    if key != simulator.config().publishable_key {
        return Err(ApiError::invalid_api_key(key));
    }
    let client_secret = params
        .get("client_secret")
        .ok_or_else(|| ApiError::missing("client_secret"))?;
    let malformed = || {
        ApiError::invalid(format!(
            "Invalid value for client_secret: {client_secret}. It should be a PaymentIntent or \
             SetupIntent client secret, like pi_…_secret_… or seti_…_secret_…."
        ))
        .with_param("client_secret")
    };
    let (intent, _) = client_secret.split_once("_secret_").ok_or_else(malformed)?;
    let (kind, expected) = if intent.starts_with("pi_") {
        let found = account.payment_intent(intent)?;
        (IntentKind::Payment, &found.client_secret)
    } else if intent.starts_with("seti_") {
        let found = account.setup_intent(intent)?;
        (IntentKind::Setup, &found.client_secret)
    } else {
        return Err(malformed());
    };
    if client_secret != expected {
        let noun = kind.noun();
        return Err(ApiError::invalid(format!(
            "The client_secret provided does not match any associated {noun} on this account. \
             Ensure the publishable key used belongs to the same account that created the {noun}."
        ))
        .with_param("client_secret"));
    }
    let raw_return_url = params
        .get("return_url")
        .ok_or_else(|| ApiError::missing("return_url"))?;
    let return_url = Url::parse(raw_return_url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| {
            ApiError::invalid("return_url must be an absolute http:// or https:// URL.")
                .with_code("url_invalid")
                .with_param("return_url")
        })?;
    Ok(Checkout {
        kind,
        intent: intent.to_owned(),
        key: key.to_owned(),
        client_secret: client_secret.to_owned(),
        return_url,
    })
}

/// What the form shows about the intent: its status, and the button's words.
fn intent_summary(
    account: &Account,
    checkout: &Checkout,
) -> Result<(IntentStatus, String), ApiError> {
    Ok(match checkout.kind {
        IntentKind::Payment => {
            let intent = account.payment_intent(&checkout.intent)?;
            (
                intent.status,
                format!("Pay {}", money(intent.amount, &intent.currency)),
            )
        }
        IntentKind::Setup => {
            let intent = account.setup_intent(&checkout.intent)?;
            (intent.status, "Save card".to_owned())
        }
    })
}

/// The card as typed, kept to show it again next to an error.
#[derive(Default)]
struct Typed {
    number: String,
    expiry: String,
    postal_code: String,
}

impl Typed {
    fn from(params: &Params) -> Self {
        Self {
            number: params.text("card_number").to_owned(),
            expiry: params.text("card_expiry").to_owned(),
            postal_code: params.text("postal_code").to_owned(),
        }
    }
}

/// Reads the card fields, with the messages Stripe's card element shows.
fn read_card(params: &Params, now: DateTime<Utc>) -> Result<(NewCard, String), ApiError> {
    let incomplete = |message: &str, param: &str| {
        ApiError::new(402, super::error::ErrorType::Card, message)
            .with_code("incomplete")
            .with_param(param)
    };
    let number: String = params
        .text("card_number")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if number.is_empty() || (number.len() < 13 && number.bytes().all(|b| b.is_ascii_digit())) {
        return Err(incomplete(
            "Your card number is incomplete.",
            "card[number]",
        ));
    }
    if card_for_number(&number).is_none() {
        return Err(
            incomplete("Your card number is invalid.", "card[number]").with_code("invalid_number")
        );
    }
    let (exp_month, exp_year) = parse_expiry(params.text("card_expiry")).ok_or_else(|| {
        incomplete(
            "Your card's expiration date is incomplete.",
            "card[exp_month]",
        )
    })?;
    if !(1..=12).contains(&exp_month) {
        return Err(
            incomplete("Your card's expiration date is invalid.", "card[exp_month]")
                .with_code("invalid_expiry_month"),
        );
    }
    let (this_year, this_month) = (i64::from(now.year()), i64::from(now.month()));
    if exp_year < this_year || (exp_year == this_year && exp_month < this_month) {
        return Err(incomplete(
            "Your card's expiration year is in the past.",
            "card[exp_year]",
        )
        .with_code("invalid_expiry_year_past"));
    }
    let cvc = params.text("card_cvc").trim().to_owned();
    if cvc.len() < 3 {
        return Err(incomplete(
            "Your card's security code is incomplete.",
            "card[cvc]",
        ));
    }
    let postal_code = params.text("postal_code").trim().to_owned();
    if postal_code.is_empty() {
        return Err(incomplete(
            "Your postal code is incomplete.",
            "billing_details[address][postal_code]",
        ));
    }
    let card = NewCard {
        number,
        exp_month,
        exp_year,
        cvc: Some(cvc),
    };
    Ok((card, postal_code))
}

/// `MM / YY`, `MM/YYYY` or `MMYY`.
fn parse_expiry(raw: &str) -> Option<(i64, i64)> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let (month, year) = match compact.split_once('/') {
        Some(parts) => parts,
        None if compact.len() == 4 => compact.split_at(2),
        None => return None,
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(month) || !digits(year) || month.len() > 2 || !matches!(year.len(), 2 | 4) {
        return None;
    }
    let month: i64 = month.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    Some((month, if year < 100 { year + 2000 } else { year }))
}

/// What confirming with the card came to.
enum Outcome {
    Succeeded,
    RequiresAction,
    Refused(ApiError),
}

/// Creates the card's payment method and confirms the intent with it.
fn confirm_with_card(
    account: &mut Account,
    checkout: &Checkout,
    card: NewCard,
    postal_code: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, ApiError> {
    let billing_details = BillingDetails {
        address: Address {
            postal_code: Some(postal_code.to_owned()),
            ..Address::default()
        },
        ..BillingDetails::default()
    };
    let method =
        account.create_payment_method(card, Some(billing_details), Metadata::new(), now)?;
    let confirmation = Confirmation {
        payment_method: Some(method.id),
        ..Confirmation::default()
    };
    let status = match checkout.kind {
        IntentKind::Payment => account
            .confirm_payment_intent(&checkout.intent, confirmation, now)
            .map(|intent| intent.status),
        IntentKind::Setup => account
            .confirm_setup_intent(&checkout.intent, confirmation, now)
            .map(|intent| intent.status),
    };
    Ok(match status {
        Ok(IntentStatus::Succeeded) => Outcome::Succeeded,
        Ok(IntentStatus::RequiresAction) => Outcome::RequiresAction,
        Ok(other) => Outcome::Refused(ApiError::invalid(format!(
            "The {} could not be completed (status {}).",
            checkout.kind.noun(),
            other.as_str()
        ))),
        Err(error) => Outcome::Refused(error),
    })
}

#[handler]
async fn show_form(Data(simulator): Data<&StripeSimulator>, request: &Request) -> Response {
    let params = Params::parse(request.uri().query().unwrap_or_default().as_bytes());
    let shared = simulator.lock();
    let checkout = match checkout(simulator, &shared.account, &params) {
        Ok(checkout) => checkout,
        Err(error) => return error_page(&error),
    };
    let (status, action) = match intent_summary(&shared.account, &checkout) {
        Ok(summary) => summary,
        Err(error) => return error_page(&error),
    };
    if matches!(status, IntentStatus::Succeeded | IntentStatus::Canceled) {
        let noun = checkout.kind.noun();
        return error_page(&ApiError::unexpected_state(
            &format!("{}_unexpected_state", checkout.kind.param()),
            format!(
                "This {noun} has a status of {}; it cannot be confirmed again.",
                status.as_str()
            ),
        ));
    }
    form_page(StatusCode::OK, &checkout, &action, None, &Typed::default())
}

#[handler]
async fn submit_card(Data(simulator): Data<&StripeSimulator>, body: Body) -> Response {
    let Ok(bytes) = body.into_bytes_limit(MAX_FORM_BYTES).await else {
        return error_page(&ApiError::invalid(format!(
            "The form could not be read (at most {MAX_FORM_BYTES} bytes)."
        )));
    };
    let params = Params::parse(&bytes);
    let now = simulator.now();
    let (checkout, action, outcome, caused) = {
        let mut shared = simulator.lock();
        let checkout = match checkout(simulator, &shared.account, &params) {
            Ok(checkout) => checkout,
            Err(error) => return error_page(&error),
        };
        let action = match intent_summary(&shared.account, &checkout) {
            Ok((_, action)) => action,
            Err(error) => return error_page(&error),
        };
        let events_before = shared.account.event_mark();
        let outcome = read_card(&params, now).and_then(|(card, postal_code)| {
            confirm_with_card(&mut shared.account, &checkout, card, &postal_code, now)
        });
        let outcome = outcome.unwrap_or_else(Outcome::Refused);
        shared
            .account
            .attribute_events_to_request(events_before, &new_id("req"), None);
        let caused = shared.account.event_ids_since(events_before);
        (checkout, action, outcome, caused)
    };
    simulator.deliver_caused(&caused).await;
    match outcome {
        Outcome::Succeeded => checkout.redirect("succeeded"),
        Outcome::RequiresAction => three_d_secure_page(&checkout, &action),
        Outcome::Refused(error) => form_page(
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            &checkout,
            &action,
            Some(&error.message),
            &Typed::from(&params),
        ),
    }
}

#[handler]
async fn finish_three_d_secure(Data(simulator): Data<&StripeSimulator>, body: Body) -> Response {
    let Ok(bytes) = body.into_bytes_limit(MAX_FORM_BYTES).await else {
        return error_page(&ApiError::invalid(format!(
            "The form could not be read (at most {MAX_FORM_BYTES} bytes)."
        )));
    };
    let params = Params::parse(&bytes);
    let now = simulator.now();
    let (checkout, redirect_status, caused) = {
        let mut shared = simulator.lock();
        let checkout = match checkout(simulator, &shared.account, &params) {
            Ok(checkout) => checkout,
            Err(error) => return error_page(&error),
        };
        match intent_summary(&shared.account, &checkout) {
            Ok((IntentStatus::RequiresAction, _)) => {}
            Ok((status, _)) => {
                return error_page(&ApiError::unexpected_state(
                    &format!("{}_unexpected_state", checkout.kind.param()),
                    format!(
                        "This {} has a status of {}; there is no 3D Secure to finish.",
                        checkout.kind.noun(),
                        status.as_str()
                    ),
                ));
            }
            Err(error) => return error_page(&error),
        }
        let events_before = shared.account.event_mark();
        let redirect_status = match params.get("outcome") {
            Some("complete") => {
                match super::api::customer_confirms(&mut shared, &checkout.intent, None, now) {
                    Ok(intent) if intent["status"] == "succeeded" => "succeeded",
                    _ => "failed",
                }
            }
            Some("fail") => match shared.account.fail_authentication(&checkout.intent, now) {
                Ok(_) => "failed",
                Err(error) => return error_page(&error),
            },
            _ => {
                return error_page(
                    &ApiError::invalid("outcome must be complete or fail.").with_param("outcome"),
                );
            }
        };
        shared
            .account
            .attribute_events_to_request(events_before, &new_id("req"), None);
        (
            checkout,
            redirect_status,
            shared.account.event_ids_since(events_before),
        )
    };
    simulator.deliver_caused(&caused).await;
    checkout.redirect(redirect_status)
}

/// Text safe inside HTML elements and quoted attributes.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
color:#30313d;margin:0;padding:24px;background:#fff}\
main{max-width:420px;margin:0 auto}h1{font-size:20px;margin:0 0 16px}\
label{display:block;font-size:14px;margin:12px 0 4px}\
input{box-sizing:border-box;width:100%;padding:10px 12px;font-size:16px;\
border:1px solid #e6e6e6;border-radius:5px}\
.row{display:flex;gap:12px}.row>div{flex:1}\
button{width:100%;margin-top:20px;padding:12px;font-size:16px;border:0;border-radius:5px;\
background:#0570de;color:#fff;cursor:pointer}button.secondary{background:#df1b41}\
.error{color:#df1b41;font-size:14px;margin:12px 0}\
.test{margin-top:24px;font-size:13px;color:#6d6e78}.test td{padding:2px 8px 2px 0}\
.badge{display:inline-block;font-size:12px;background:#ffde92;color:#a82c00;\
padding:2px 6px;border-radius:4px;margin-bottom:12px}";

fn page(status: StatusCode, title: &str, content: &str) -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<span class="badge">TEST MODE</span>
{content}
</main>
</body>
</html>
"#,
        title = escape(title),
    );
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("cache-control", "no-store")
        // The page's URL carries the client secret.
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .body(html)
}

fn error_page(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let code = error
        .code
        .as_deref()
        .map(|code| format!("<p><code>{}</code></p>", escape(code)))
        .unwrap_or_default();
    let content = format!(
        r#"<h1>This payment page cannot be used</h1>
<p class="error" role="alert">{}</p>
{code}"#,
        escape(&error.message)
    );
    page(status, "Payment error", &content)
}

fn form_page(
    status: StatusCode,
    checkout: &Checkout,
    action: &str,
    error: Option<&str>,
    typed: &Typed,
) -> Response {
    let error = error
        .map(|message| format!(r#"<p class="error" role="alert">{}</p>"#, escape(message)))
        .unwrap_or_default();
    let cards: String = TEST_CARDS
        .iter()
        .map(|(number, what)| format!("<tr><td><code>{number}</code></td><td>{what}</td></tr>"))
        .collect();
    let content = format!(
        r#"<h1>{action}</h1>
{error}
<form method="post" action="pay" target="_top" autocomplete="on">
{hidden}
<label for="card_number">Card number</label>
<input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" value="{number}" required>
<div class="row">
<div><label for="card_expiry">Expiration date</label>
<input id="card_expiry" name="card_expiry" inputmode="numeric" autocomplete="cc-exp" placeholder="MM / YY" value="{expiry}" required></div>
<div><label for="card_cvc">Security code</label>
<input id="card_cvc" name="card_cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC" required></div>
</div>
<label for="postal_code">Postal code</label>
<input id="postal_code" name="postal_code" autocomplete="postal-code" placeholder="90210" value="{postal_code}" required>
<button type="submit">{action}</button>
</form>
<table class="test"><caption>Test cards (any future date, any CVC)</caption>{cards}</table>"#,
        action = escape(action),
        hidden = checkout.hidden_fields(),
        number = escape(&typed.number),
        expiry = escape(&typed.expiry),
        postal_code = escape(&typed.postal_code),
    );
    page(status, action, &content)
}

fn three_d_secure_page(checkout: &Checkout, action: &str) -> Response {
    let content = format!(
        r#"<h1>3D Secure test page</h1>
<p>The card asks the customer to authenticate: {action}.</p>
<p>Complete the authentication, or fail it as a customer who cannot would.</p>
<form method="post" action="three_d_secure" target="_top">
{hidden}
<input type="hidden" name="outcome" value="complete">
<button type="submit">Complete</button>
</form>
<form method="post" action="three_d_secure" target="_top">
{hidden}
<input type="hidden" name="outcome" value="fail">
<button type="submit" class="secondary">Fail</button>
</form>"#,
        action = escape(action),
        hidden = checkout.hidden_fields(),
    );
    page(StatusCode::OK, "3D Secure test page", &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_echoed_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn expiry_dates_take_the_usual_shapes() {
        assert_eq!(parse_expiry("04 / 34"), Some((4, 2034)));
        assert_eq!(parse_expiry("12/2031"), Some((12, 2031)));
        assert_eq!(parse_expiry("0434"), Some((4, 2034)));
        assert_eq!(parse_expiry("4/"), None);
        assert_eq!(parse_expiry("ab/cd"), None);
        assert_eq!(parse_expiry("123/45"), None);
        assert_eq!(parse_expiry(""), None);
    }
}
