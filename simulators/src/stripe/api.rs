//! Stripe's API over HTTP (`/v1/...`): form bodies with brackets, API keys, idempotency
//! keys, `expand[]`, Stripe's error object. Each operation reads its parameters, refuses
//! unknown ones, and calls one rule of the account.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::param::Path;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi, OpenApiService, Tags,
};
use serde_json::{Value, json};

use super::cards::Decline;
use super::compact::CompactJson;
use super::details::{Address, BillingDetails};
use super::error::ApiError;
use super::form::Form;
use super::idempotency::Parameters;
use super::state::{
    Account, Confirmation, CustomerFields, Metadata, NewCard, NewPaymentIntent, NewRefund,
    NewSetupIntent, PaymentIntentUpdate, check_metadata, new_id,
};
use super::table::{Candidates, Page, list_table};
use super::webhook_api::StripeWebhooksApi;
use super::{Shared, StripeSimulator};

/// The API version answered when a request names none.
pub const DEFAULT_API_VERSION: &str = "2025-03-31.basil";

const SERVICE_DESCRIPTION: &str = "A stateful, offline fake of Stripe's API (test mode) for \
the objects boxoffice uses: customers, payment methods (Stripe's test cards and `pm_card_*` \
tokens), payment intents, setup intents, charges, refunds, events and webhook endpoints. \
Requests are form-encoded with bracket notation and authenticated with `Authorization: Bearer \
sk_test_…` (a publishable key with the intent's `client_secret` may retrieve and confirm \
intents, as Stripe.js does); `Idempotency-Key` and `expand[]` work as in Stripe. Errors are \
Stripe's error object. Events are sent to webhook endpoints signed with `Stripe-Signature` as \
Stripe signs them, retried with backoff on the simulator's clock.";

#[derive(Tags)]
enum StripeTag {
    Customers,
    PaymentMethods,
    PaymentIntents,
    SetupIntents,
    Refunds,
    Charges,
}

/// The parameters of a `POST`, `application/x-www-form-urlencoded` with Stripe's bracket
/// notation. Read as bytes and parsed by the operation, so a malformed body is answered
/// with Stripe's error object.
pub struct FormBody(Vec<u8>);

impl<'a> ApiExtractor<'a> for FormBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        Value::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(
                "The operation's parameters, form-encoded with brackets (`metadata[plan]=gold`, \
                 `expand[]=latest_charge`).",
            ),
            content: vec![MetaMediaType {
                content_type: "application/x-www-form-urlencoded",
                schema: Value::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(
            <Vec<u8> as FromRequest>::from_request(request, body).await?,
        ))
    }
}

/// Every answer: Stripe's object (or list) or Stripe's error object.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_before_dispatch")]
pub enum StripeResponse {
    /// The object, or `{"object": "list", ...}`.
    #[oai(status = 200)]
    Ok(
        CompactJson,
        /// This request's id.
        #[oai(header = "Request-Id")]
        String,
        /// The API version the response follows (the request's `Stripe-Version`).
        #[oai(header = "Stripe-Version")]
        String,
        /// `true` when this is the stored response of an earlier request with the same
        /// `Idempotency-Key`.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
    /// `invalid_request_error` (missing, unknown or malformed parameters; a state that
    /// does not allow the operation) or `idempotency_error`.
    #[oai(status = 400)]
    BadRequest(
        CompactJson,
        #[oai(header = "Request-Id")] String,
        #[oai(header = "Stripe-Version")] String,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// No API key, an unknown one, or a publishable key where a secret key is needed.
    #[oai(status = 401)]
    Unauthorized(
        CompactJson,
        #[oai(header = "Request-Id")] String,
        #[oai(header = "Stripe-Version")] String,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// `card_error`: the card was declined (`code`, `decline_code`, `message`, and the
    /// `payment_intent` or `setup_intent` when there is one).
    #[oai(status = 402)]
    PaymentRequired(
        CompactJson,
        #[oai(header = "Request-Id")] String,
        #[oai(header = "Stripe-Version")] String,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// `resource_missing`: no such object.
    #[oai(status = 404)]
    NotFound(
        CompactJson,
        #[oai(header = "Request-Id")] String,
        #[oai(header = "Stripe-Version")] String,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
    /// `api_error`: the simulator failed on its own side.
    #[oai(status = 500)]
    Failed(
        CompactJson,
        #[oai(header = "Request-Id")] String,
        #[oai(header = "Stripe-Version")] String,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
}

impl StripeResponse {
    fn new(
        status: u16,
        body: CompactJson,
        version: String,
        replayed: bool,
        request_id: String,
    ) -> Self {
        let replayed = replayed.then(|| "true".to_owned());
        match status {
            200 => Self::Ok(body, request_id, version, replayed),
            400 => Self::BadRequest(body, request_id, version, replayed),
            401 => Self::Unauthorized(body, request_id, version, replayed),
            402 => Self::PaymentRequired(body, request_id, version, replayed),
            404 => Self::NotFound(body, request_id, version, replayed),
            _ => Self::Failed(body, request_id, version, replayed),
        }
    }

    fn error(error: &ApiError, version: String, request_id: String) -> Self {
        Self::new(
            error.status,
            CompactJson::new(&error.body()),
            version,
            false,
            request_id,
        )
    }
}

/// Failures before an operation runs (a path parameter that cannot be read).
fn refused_before_dispatch(error: poem::Error) -> StripeResponse {
    StripeResponse::error(
        &ApiError::invalid(error.to_string()),
        DEFAULT_API_VERSION.to_owned(),
        new_id("req"),
    )
}

/// Which keys may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// The secret key only.
    Secret,
    /// The secret key, or the publishable key with the intent's `client_secret`.
    ClientSecret,
}

/// What an operation knows about its call.
pub(super) struct Ctx {
    pub now: DateTime<Utc>,
    publishable: bool,
}

/// Which key the request carries.
fn authenticate(
    request: &Request,
    body_key: Option<&str>,
    simulator: &StripeSimulator,
) -> Result<bool, ApiError> {
    let header = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let key = if let Some(token) = header.strip_prefix("Bearer ") {
        token.trim().to_owned()
    } else if let Some(encoded) = header.strip_prefix("Basic ") {
        // `curl -u sk_test_…:` sends the key as the basic-auth user.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        decoded.split(':').next().unwrap_or_default().to_owned()
    } else {
        body_key.unwrap_or_default().to_owned()
    };
    if key.is_empty() {
        return Err(ApiError::no_api_key());
    }
    let config = simulator.config();
    if key == config.secret_key {
        Ok(false)
    } else if key == config.publishable_key {
        Ok(true)
    } else {
        Err(ApiError::invalid_api_key(&key))
    }
}

/// Replaces ids named by `expand[]` with their objects (`data.` reaches into lists).
fn expand(account: &Account, value: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if *first == "data"
        && let Some(items) = value.get_mut("data").and_then(Value::as_array_mut)
    {
        for item in items {
            expand(account, item, rest);
        }
        return;
    }
    let Some(field) = value.get_mut(*first) else {
        return;
    };
    if let Some(id) = field.as_str()
        && let Some(object) = account.object_json(id)
    {
        *field = object;
    }
    expand(account, field, rest);
}

impl StripeSimulator {
    /// Runs one operation: authenticates, parses, checks `expand[]`, replays or refuses a
    /// reused `Idempotency-Key`, runs the rule under the account's lock, names this request
    /// in the events it caused, and stores the answer for the key. The answer is written as
    /// JSON once, and that text is what is stored and sent.
    pub(super) async fn run<R: serde::Serialize>(
        &self,
        request: &Request,
        body: Option<FormBody>,
        access: Access,
        expandable: &[&str],
        operation: impl FnOnce(&mut Account, Form, &Ctx) -> Result<R, ApiError>,
    ) -> StripeResponse {
        let request_id = new_id("req");
        let version = request
            .headers()
            .get("stripe-version")
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .unwrap_or(DEFAULT_API_VERSION)
            .to_owned();
        let idempotency_key = request
            .headers()
            .get("idempotency-key")
            .and_then(|value| value.to_str().ok())
            .filter(|_| body.is_some())
            .map(str::to_owned);
        // Parsed and checked before the account is locked; the rest runs under its lock.
        let prepared = (|| {
            let raw = match &body {
                Some(FormBody(bytes)) => bytes.as_slice(),
                None => request.uri().query().unwrap_or_default().as_bytes(),
            };
            let parsed = Form::parse(raw);
            // Stripe.js sends the publishable key as the `key` parameter.
            let body_key = parsed
                .as_ref()
                .ok()
                .and_then(|form| form.peek_string("key"))
                .map(str::to_owned);
            let publishable = authenticate(request, body_key.as_deref(), self)?;
            if publishable && access == Access::Secret {
                return Err(ApiError::publishable_key_not_allowed());
            }
            if idempotency_key.as_ref().is_some_and(|key| key.len() > 255) {
                return Err(ApiError::invalid(
                    "Idempotency-Key must be at most 255 characters long.",
                ));
            }
            let mut form = parsed?;
            // Only a request with a key is compared with another.
            let parameters = idempotency_key.as_ref().map(|_| Parameters::of(&form));
            if publishable || body_key.is_some() {
                form.discard(STRIPE_JS_PARAMS);
            }
            let expand_paths = form.string_list("expand")?.unwrap_or_default();
            for path in &expand_paths {
                if !expandable.contains(&path.as_str()) {
                    return Err(ApiError::invalid(format!(
                        "This property cannot be expanded ({path})."
                    ))
                    .with_param("expand"));
                }
            }
            Ok((publishable, parameters, form, expand_paths))
        })();
        let (publishable, parameters, form, expand_paths) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return StripeResponse::error(&error, version, request_id),
        };
        let mut shared = self.lock_for_request().await;
        let result = (|| {
            let now = self.now();
            let endpoint = format!("{} {}", request.method(), request.uri().path());
            let scoped_key = idempotency_key.as_ref().map(|key| {
                let scope = if publishable { "pk" } else { "sk" };
                format!("{scope}:{key}")
            });
            if let (Some(scoped), Some(key), Some(parameters)) =
                (&scoped_key, &idempotency_key, &parameters)
                && let Some(stored) = shared.idempotency.get(scoped, now)
            {
                if stored.endpoint != endpoint {
                    return Err(ApiError::new(
                        400,
                        super::error::ErrorType::Idempotency,
                        format!(
                            "Keys for idempotent requests can only be used for the same \
                             endpoint they were first used for ('{}' vs '{}'). Try using a \
                             key other than '{key}' if you meant to execute a different \
                             request.",
                            stored.path(),
                            request.uri().path()
                        ),
                    ));
                }
                if !stored.same_parameters(parameters) {
                    return Err(ApiError::new(
                        400,
                        super::error::ErrorType::Idempotency,
                        format!(
                            "Keys for idempotent requests can only be used with the same \
                             parameters they were first used with. Try using a key other \
                             than '{key}' if you meant to execute a different request."
                        ),
                    ));
                }
                return Ok((stored.status, stored.body(), true));
            }
            let ctx = Ctx { now, publishable };
            let events_before = shared.account.event_mark();
            let outcome = operation(&mut shared.account, form, &ctx);
            shared.account.attribute_events_to_request(
                events_before,
                &request_id,
                idempotency_key.as_deref(),
            );
            let (status, body) = match outcome {
                Ok(answer) if expand_paths.is_empty() => (200, compact(&answer)?),
                Ok(answer) => {
                    let mut value = to_json(answer)?;
                    for path in &expand_paths {
                        let segments: Vec<&str> = path.split('.').collect();
                        expand(&shared.account, &mut value, &segments);
                    }
                    (200, compact(&value)?)
                }
                Err(error) => (error.status, CompactJson::new(&error.body())),
            };
            // As in Stripe, a request refused before it ran (400) is not remembered.
            if let (Some(scoped), Some(parameters)) = (scoped_key, parameters)
                && status != 400
            {
                shared
                    .idempotency
                    .insert(scoped, endpoint, parameters, status, body.clone(), now);
            }
            Ok((status, body, false))
        })();
        match result {
            Ok((status, body, replayed)) => {
                StripeResponse::new(status, body, version, replayed, request_id)
            }
            Err(error) => StripeResponse::error(&error, version, request_id),
        }
    }
}

pub(super) fn metadata(form: &mut Form) -> Result<Option<Metadata>, ApiError> {
    let Some(hash) = form.hash("metadata")? else {
        return Ok(None);
    };
    let metadata = hash.into_string_map()?;
    check_metadata(&metadata)?;
    Ok(Some(metadata))
}

pub(super) fn list_params(
    form: &mut Form,
) -> Result<(i64, Option<String>, Option<String>), ApiError> {
    let limit = form.integer("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "This value must be between 1 and 100 (it currently is {limit})."
        ))
        .with_code("parameter_invalid_integer")
        .with_param("limit"));
    }
    let starting_after = form.string("starting_after")?;
    let ending_before = form.string("ending_before")?;
    Ok((limit, starting_after, ending_before))
}

fn amount(form: &mut Form, required: bool) -> Result<Option<i64>, ApiError> {
    let amount = form.integer("amount")?;
    match amount {
        None if required => Err(ApiError::missing("amount")),
        Some(value) if value < 1 => Err(ApiError::invalid(
            "This value must be greater than or equal to 1.",
        )
        .with_code("parameter_invalid_integer")
        .with_param("amount")),
        Some(value) if value > 99_999_999 => {
            Err(ApiError::invalid("Amount must be no more than $999,999.99")
                .with_code("amount_too_large")
                .with_param("amount"))
        }
        other => Ok(other),
    }
}

fn currency(form: &mut Form, required: bool) -> Result<Option<String>, ApiError> {
    match form.string("currency")? {
        None if required => Err(ApiError::missing("currency")),
        None => Ok(None),
        Some(currency) => {
            let lower = currency.to_ascii_lowercase();
            if lower.len() == 3 && lower.bytes().all(|b| b.is_ascii_lowercase()) {
                Ok(Some(lower))
            } else {
                Err(ApiError::invalid(format!("Invalid currency: {currency}."))
                    .with_code("parameter_invalid_string")
                    .with_param("currency"))
            }
        }
    }
}

fn check_client_secret(
    form: &mut Form,
    ctx: &Ctx,
    expected: &str,
    noun: &str,
) -> Result<(), ApiError> {
    let given = form.string("client_secret")?;
    if ctx.publishable && given.as_deref() != Some(expected) {
        return Err(ApiError::invalid(format!(
            "The client_secret provided does not match any associated {noun} on this account. \
             Ensure the publishable key used belongs to the same account that created the {noun}."
        ))
        .with_param("client_secret"));
    }
    Ok(())
}

fn confirmation(form: &mut Form) -> Result<Confirmation, ApiError> {
    let payment_method = form.string("payment_method")?;
    let off_session = match form.string("off_session")?.as_deref() {
        None | Some("false") => false,
        Some("true" | "one_off" | "recurring") => true,
        Some(other) => {
            return Err(
                ApiError::invalid(format!("Invalid boolean: {other}")).with_param("off_session")
            );
        }
    };
    let setup_future_usage =
        form.one_of("setup_future_usage", &["off_session", "on_session", ""])?;
    // Accepted and not used: the simulator has no redirects.
    let _ = form.string("return_url")?;
    let _ = form.hash("payment_method_options")?;
    let _ = form.boolean("use_stripe_sdk")?;
    let _ = form.string("mandate")?;
    Ok(Confirmation {
        payment_method,
        off_session,
        setup_future_usage,
        authenticated: false,
    })
}

/// A payment method from its parameters (`type=card&card[...]`, or `card[token]`), as
/// `POST /v1/payment_methods` and `payment_method_data` take them. Reads the whole form.
fn new_payment_method(
    account: &mut Account,
    mut form: Form,
    ctx: &Ctx,
) -> Result<super::state::PaymentMethod, ApiError> {
    let kind = form.string("type")?;
    let card = form.hash("card")?;
    let billing_details = form.hash("billing_details")?;
    let metadata = metadata(&mut form)?.unwrap_or_default();
    let _ = form.string("allow_redisplay")?;
    form.finish()?;
    match kind.as_deref() {
        Some("card") => {}
        None => return Err(ApiError::missing("type")),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "The payment method type provided: {other} is invalid. This simulator supports: card."
            ))
            .with_param("type"));
        }
    }
    let Some(mut card) = card else {
        return Err(ApiError::missing("card"));
    };
    let billing = match billing_details {
        Some(mut details) => {
            let email = details.string("email")?;
            let name = details.string("name")?;
            let phone = details.string("phone")?;
            let tax_id = details.string("tax_id")?;
            let address = match details.hash("address")? {
                Some(address) => address.into_string_map()?,
                None => Metadata::new(),
            };
            details.finish()?;
            let field = |key: &str| address.get(key).cloned();
            Some(BillingDetails {
                address: Address {
                    city: field("city"),
                    country: field("country"),
                    line1: field("line1"),
                    line2: field("line2"),
                    postal_code: field("postal_code"),
                    state: field("state"),
                },
                email,
                name,
                phone,
                tax_id,
            })
        }
        None => None,
    };
    if let Some(token) = card.string("token")? {
        card.finish()?;
        let id = account
            .resolve_payment_method(&token, "card[token]", ctx.now)
            .map_err(ApiError::referenced)?;
        return account.payment_method(&id, "card[token]").cloned();
    }
    let number = card.required_string("number")?;
    let exp_month = card
        .integer("exp_month")?
        .ok_or_else(|| ApiError::missing("card[exp_month]"))?;
    let exp_year = card
        .integer("exp_year")?
        .ok_or_else(|| ApiError::missing("card[exp_year]"))?;
    let cvc = card.string("cvc")?;
    card.finish()?;
    let exp_year = if exp_year < 100 {
        exp_year + 2000
    } else {
        exp_year
    };
    let new = NewCard {
        number: number.replace([' ', '-'], ""),
        exp_month,
        exp_year,
        cvc,
    };
    account.create_payment_method(new, billing, metadata, ctx.now)
}

/// Stripe.js's own parameters on publishable-key calls, accepted and not used.
const STRIPE_JS_PARAMS: &[&str] = &[
    "key",
    "_stripe_version",
    "_stripe_account",
    "payment_user_agent",
    "time_on_page",
    "referrer",
    "guid",
    "muid",
    "sid",
    "expected_payment_method_type",
];

pub(super) fn to_json<T: serde::Serialize>(value: T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(unwritable)
}

fn compact<T: serde::Serialize>(value: &T) -> Result<CompactJson, ApiError> {
    CompactJson::try_new(value).map_err(unwritable)
}

fn unwritable(error: serde_json::Error) -> ApiError {
    ApiError::new(500, super::error::ErrorType::Api, error.to_string())
}

/// Stripe's API, as far as boxoffice uses it.
pub struct StripeApi {
    simulator: StripeSimulator,
}

pub(crate) fn service(
    simulator: StripeSimulator,
) -> OpenApiService<(StripeApi, StripeWebhooksApi), ()> {
    let server = simulator.config().public_base_url.clone();
    OpenApiService::new(
        (
            StripeApi {
                simulator: simulator.clone(),
            },
            StripeWebhooksApi::new(simulator),
        ),
        "Stripe simulator",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SERVICE_DESCRIPTION)
    .server(server)
}

const CUSTOMER_EXPAND: &[&str] = &["invoice_settings.default_payment_method"];
const CUSTOMER_LIST_EXPAND: &[&str] = &["data.invoice_settings.default_payment_method"];
const PM_EXPAND: &[&str] = &["customer"];
const PM_LIST_EXPAND: &[&str] = &["data.customer"];
const PI_EXPAND: &[&str] = &["customer", "payment_method", "latest_charge"];
const PI_LIST_EXPAND: &[&str] = &["data.customer", "data.payment_method", "data.latest_charge"];
const SI_EXPAND: &[&str] = &["customer", "payment_method"];
const REFUND_EXPAND: &[&str] = &["charge", "payment_intent"];
const CHARGE_EXPAND: &[&str] = &["customer", "payment_intent", "payment_method"];

fn customer_fields(form: &mut Form) -> Result<CustomerFields, ApiError> {
    let mut fields = CustomerFields {
        email: form.string("email")?,
        name: form.string("name")?,
        description: form.string("description")?,
        phone: form.string("phone")?,
        metadata: metadata(form)?,
        default_payment_method: None,
    };
    if let Some(mut settings) = form.hash("invoice_settings")? {
        fields.default_payment_method = settings.string("default_payment_method")?;
        settings.finish()?;
    }
    if let Some(email) = fields.email.as_deref()
        && email.len() > 512
    {
        return Err(ApiError::invalid("Invalid email address: too long").with_param("email"));
    }
    Ok(fields)
}

#[OpenApi]
impl StripeApi {
    /// Create a customer
    #[oai(
        path = "/v1/customers",
        method = "post",
        operation_id = "PostCustomers",
        tag = "StripeTag::Customers"
    )]
    async fn create_customer(&self, request: &Request, body: FormBody) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                CUSTOMER_EXPAND,
                |account, mut form, ctx| {
                    let fields = customer_fields(&mut form)?;
                    let payment_method = form.string("payment_method")?;
                    form.finish()?;
                    let payment_method = match payment_method {
                        Some(pm) => Some(
                            account
                                .resolve_payment_method(&pm, "payment_method", ctx.now)
                                .map_err(ApiError::referenced)?,
                        ),
                        None => None,
                    };
                    account.create_customer(fields, payment_method.as_deref(), ctx.now)
                },
            )
            .await
    }

    /// List customers
    #[oai(
        path = "/v1/customers",
        method = "get",
        operation_id = "GetCustomers",
        tag = "StripeTag::Customers"
    )]
    async fn list_customers(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                CUSTOMER_LIST_EXPAND,
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let email = form.string("email")?;
                    form.finish()?;
                    let candidates = match &email {
                        Some(email) => account.indexes.customers_by_email.get(email),
                        None => Candidates::All,
                    };
                    list_table(
                        &account.customers,
                        &candidates,
                        |customer| email.is_none() || customer.email == email,
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/customers",
                            noun: "customer",
                        },
                    )
                },
            )
            .await
    }

    /// Retrieve a customer
    #[oai(
        path = "/v1/customers/:customer",
        method = "get",
        operation_id = "GetCustomersCustomer",
        tag = "StripeTag::Customers"
    )]
    async fn retrieve_customer(&self, request: &Request, customer: Path<String>) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                CUSTOMER_EXPAND,
                |account, form, _| {
                    form.finish()?;
                    Ok(account.customer(&customer)?.clone())
                },
            )
            .await
    }

    /// Update a customer
    #[oai(
        path = "/v1/customers/:customer",
        method = "post",
        operation_id = "PostCustomersCustomer",
        tag = "StripeTag::Customers"
    )]
    async fn update_customer(
        &self,
        request: &Request,
        customer: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                CUSTOMER_EXPAND,
                |account, mut form, ctx| {
                    let fields = customer_fields(&mut form)?;
                    form.finish()?;
                    account.update_customer(&customer, fields, ctx.now)
                },
            )
            .await
    }

    /// List a customer's payment methods
    #[oai(
        path = "/v1/customers/:customer/payment_methods",
        method = "get",
        operation_id = "GetCustomersCustomerPaymentMethods",
        tag = "StripeTag::Customers"
    )]
    async fn list_customer_payment_methods(
        &self,
        request: &Request,
        customer: Path<String>,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                PM_LIST_EXPAND,
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let _ = form.one_of("type", &["card"])?;
                    form.finish()?;
                    account.customer(&customer)?;
                    let url = format!("/v1/customers/{}/payment_methods", customer.0);
                    list_table(
                        &account.payment_methods,
                        &account.indexes.payment_methods_by_customer.get(&customer),
                        |pm| pm.customer.as_deref() == Some(customer.as_str()),
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: &url,
                            noun: "PaymentMethod",
                        },
                    )
                },
            )
            .await
    }

    /// Create a payment method
    ///
    /// `type=card` with `card[number]`, `card[exp_month]`, `card[exp_year]`, `card[cvc]`
    /// (Stripe's test numbers), or `card[token]=pm_card_visa`-style test tokens are used
    /// directly as `payment_method` elsewhere.
    #[oai(
        path = "/v1/payment_methods",
        method = "post",
        operation_id = "PostPaymentMethods",
        tag = "StripeTag::PaymentMethods"
    )]
    async fn create_payment_method(&self, request: &Request, body: FormBody) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::ClientSecret,
                PM_EXPAND,
                new_payment_method,
            )
            .await
    }

    /// List payment methods (of a customer)
    #[oai(
        path = "/v1/payment_methods",
        method = "get",
        operation_id = "GetPaymentMethods",
        tag = "StripeTag::PaymentMethods"
    )]
    async fn list_payment_methods(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                PM_LIST_EXPAND,
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let customer = form.string("customer")?;
                    let _ = form.one_of("type", &["card"])?;
                    form.finish()?;
                    if let Some(customer) = &customer {
                        account
                            .customer(customer)
                            .map_err(|e| e.with_param("customer").referenced())?;
                    }
                    let index = &account.indexes.payment_methods_by_customer;
                    let candidates = match &customer {
                        Some(customer) => index.get(customer),
                        None => index.any(),
                    };
                    list_table(
                        &account.payment_methods,
                        &candidates,
                        |pm| {
                            pm.customer.is_some() && (customer.is_none() || pm.customer == customer)
                        },
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/payment_methods",
                            noun: "PaymentMethod",
                        },
                    )
                },
            )
            .await
    }

    /// Retrieve a payment method
    #[oai(
        path = "/v1/payment_methods/:payment_method",
        method = "get",
        operation_id = "GetPaymentMethodsPaymentMethod",
        tag = "StripeTag::PaymentMethods"
    )]
    async fn retrieve_payment_method(
        &self,
        request: &Request,
        payment_method: Path<String>,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                PM_EXPAND,
                |account, form, ctx| {
                    form.finish()?;
                    let id = account.resolve_payment_method(
                        &payment_method,
                        "payment_method",
                        ctx.now,
                    )?;
                    Ok(account.payment_method(&id, "payment_method")?.clone())
                },
            )
            .await
    }

    /// Update a payment method (metadata)
    #[oai(
        path = "/v1/payment_methods/:payment_method",
        method = "post",
        operation_id = "PostPaymentMethodsPaymentMethod",
        tag = "StripeTag::PaymentMethods"
    )]
    async fn update_payment_method(
        &self,
        request: &Request,
        payment_method: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                PM_EXPAND,
                |account, mut form, _| {
                    let metadata = metadata(&mut form)?;
                    form.finish()?;
                    account.update_payment_method_metadata(&payment_method, metadata)
                },
            )
            .await
    }

    /// Attach a payment method to a customer
    #[oai(
        path = "/v1/payment_methods/:payment_method/attach",
        method = "post",
        operation_id = "PostPaymentMethodsPaymentMethodAttach",
        tag = "StripeTag::PaymentMethods"
    )]
    async fn attach_payment_method(
        &self,
        request: &Request,
        payment_method: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                PM_EXPAND,
                |account, mut form, ctx| {
                    let customer = form.required_string("customer")?;
                    form.finish()?;
                    account
                        .customer(&customer)
                        .map_err(|e| e.with_param("customer").referenced())?;
                    let id = account.resolve_payment_method(
                        &payment_method,
                        "payment_method",
                        ctx.now,
                    )?;
                    account.attach(&id, &customer, ctx.now)
                },
            )
            .await
    }

    /// Detach a payment method from its customer
    #[oai(
        path = "/v1/payment_methods/:payment_method/detach",
        method = "post",
        operation_id = "PostPaymentMethodsPaymentMethodDetach",
        tag = "StripeTag::PaymentMethods"
    )]
    async fn detach_payment_method(
        &self,
        request: &Request,
        payment_method: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                PM_EXPAND,
                |account, form, ctx| {
                    form.finish()?;
                    account.detach(&payment_method, ctx.now)
                },
            )
            .await
    }

    /// Create a payment intent
    #[oai(
        path = "/v1/payment_intents",
        method = "post",
        operation_id = "PostPaymentIntents",
        tag = "StripeTag::PaymentIntents"
    )]
    async fn create_payment_intent(&self, request: &Request, body: FormBody) -> StripeResponse {
        self.simulator.run(request, Some(body), Access::Secret, PI_EXPAND, |account, mut form, ctx| {
            let amount = amount(&mut form, true)?.unwrap_or_default();
            let currency = currency(&mut form, true)?.unwrap_or_default();
            let confirm = form.boolean("confirm")?.unwrap_or(false);
            let new = NewPaymentIntent {
                amount,
                currency,
                customer: form.string("customer")?.filter(|c| !c.is_empty()),
                payment_method: form.string("payment_method")?.filter(|p| !p.is_empty()),
                description: form.string("description")?.filter(|d| !d.is_empty()),
                metadata: metadata(&mut form)?.unwrap_or_default(),
                setup_future_usage: form.one_of("setup_future_usage", &["off_session", "on_session"])?,
                receipt_email: form.string("receipt_email")?,
                payment_method_types: form.string_list("payment_method_types")?.unwrap_or_default(),
            };
            if let Some(kind) = new.payment_method_types.iter().find(|kind| *kind != "card") {
                return Err(ApiError::invalid(format!(
                    "The payment method type provided: {kind} is invalid. This simulator supports: card."
                ))
                .with_param("payment_method_types"));
            }
            let _ = form.hash("automatic_payment_methods")?;
            let _ = form.one_of("capture_method", &["automatic", "automatic_async"])?;
            let _ = form.one_of("confirmation_method", &["automatic"])?;
            let _ = form.string("statement_descriptor")?;
            let _ = form.string("statement_descriptor_suffix")?;
            let confirm_params = confirmation(&mut form)?;
            form.finish()?;
            if !confirm && confirm_params.off_session {
                return Err(ApiError::invalid(
                    "You can only set `off_session` when `confirm` is set to `true`.",
                )
                .with_param("off_session"));
            }
            let intent = account.create_payment_intent(new, ctx.now)?;
            if !confirm {
                return compact(account.payment_intent(&intent)?);
            }
            Ok(account.confirm_payment_intent(&intent, confirm_params, ctx.now)?.snapshot())
        })
        .await
    }

    /// List payment intents
    #[oai(
        path = "/v1/payment_intents",
        method = "get",
        operation_id = "GetPaymentIntents",
        tag = "StripeTag::PaymentIntents"
    )]
    async fn list_payment_intents(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                PI_LIST_EXPAND,
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let customer = form.string("customer")?;
                    form.finish()?;
                    let candidates = match &customer {
                        Some(customer) => account.indexes.payment_intents_by_customer.get(customer),
                        None => Candidates::All,
                    };
                    list_table(
                        &account.payment_intents,
                        &candidates,
                        |intent| customer.is_none() || intent.customer == customer,
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/payment_intents",
                            noun: "payment_intent",
                        },
                    )
                },
            )
            .await
    }

    /// Retrieve a payment intent
    ///
    /// With a publishable key, `client_secret` must be the intent's.
    #[oai(
        path = "/v1/payment_intents/:intent",
        method = "get",
        operation_id = "GetPaymentIntentsIntent",
        tag = "StripeTag::PaymentIntents"
    )]
    async fn retrieve_payment_intent(
        &self,
        request: &Request,
        intent: Path<String>,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::ClientSecret,
                PI_EXPAND,
                |account, mut form, ctx| {
                    let found = account.payment_intent(&intent)?;
                    check_client_secret(&mut form, ctx, &found.client_secret, "PaymentIntent")?;
                    form.finish()?;
                    Ok(found.clone())
                },
            )
            .await
    }

    /// Update a payment intent
    #[oai(
        path = "/v1/payment_intents/:intent",
        method = "post",
        operation_id = "PostPaymentIntentsIntent",
        tag = "StripeTag::PaymentIntents"
    )]
    async fn update_payment_intent(
        &self,
        request: &Request,
        intent: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                PI_EXPAND,
                |account, mut form, ctx| {
                    let update = PaymentIntentUpdate {
                        amount: amount(&mut form, false)?,
                        currency: currency(&mut form, false)?,
                        customer: form.string("customer")?,
                        payment_method: form.string("payment_method")?,
                        description: form.string("description")?,
                        metadata: metadata(&mut form)?,
                        setup_future_usage: form
                            .one_of("setup_future_usage", &["off_session", "on_session", ""])?,
                        receipt_email: form.string("receipt_email")?,
                    };
                    form.finish()?;
                    account.update_payment_intent(&intent, update, ctx.now)
                },
            )
            .await
    }

    /// Confirm a payment intent
    ///
    /// With a publishable key, `client_secret` must be the intent's (what Stripe.js does).
    #[oai(
        path = "/v1/payment_intents/:intent/confirm",
        method = "post",
        operation_id = "PostPaymentIntentsIntentConfirm",
        tag = "StripeTag::PaymentIntents"
    )]
    async fn confirm_payment_intent(
        &self,
        request: &Request,
        intent: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::ClientSecret,
                PI_EXPAND,
                |account, mut form, ctx| {
                    let secret = account.payment_intent(&intent)?.client_secret.clone();
                    check_client_secret(&mut form, ctx, &secret, "PaymentIntent")?;
                    let mut confirmation = confirmation(&mut form)?;
                    let data = form.hash("payment_method_data")?;
                    let _ = form.string("receipt_email")?;
                    form.finish()?;
                    if let Some(data) = data {
                        confirmation.payment_method =
                            Some(new_payment_method(account, data, ctx)?.id);
                    }
                    account.confirm_payment_intent(&intent, confirmation, ctx.now)
                },
            )
            .await
    }

    /// Cancel a payment intent
    #[oai(
        path = "/v1/payment_intents/:intent/cancel",
        method = "post",
        operation_id = "PostPaymentIntentsIntentCancel",
        tag = "StripeTag::PaymentIntents"
    )]
    async fn cancel_payment_intent(
        &self,
        request: &Request,
        intent: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                PI_EXPAND,
                |account, mut form, ctx| {
                    let reason = form.one_of(
                        "cancellation_reason",
                        &[
                            "duplicate",
                            "fraudulent",
                            "requested_by_customer",
                            "abandoned",
                        ],
                    )?;
                    form.finish()?;
                    account.cancel_payment_intent(&intent, reason, ctx.now)
                },
            )
            .await
    }

    /// Create a setup intent
    #[oai(
        path = "/v1/setup_intents",
        method = "post",
        operation_id = "PostSetupIntents",
        tag = "StripeTag::SetupIntents"
    )]
    async fn create_setup_intent(&self, request: &Request, body: FormBody) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                SI_EXPAND,
                |account, mut form, ctx| {
                    let confirm = form.boolean("confirm")?.unwrap_or(false);
                    let new = NewSetupIntent {
                        customer: form.string("customer")?.filter(|c| !c.is_empty()),
                        payment_method: form.string("payment_method")?.filter(|p| !p.is_empty()),
                        description: form.string("description")?.filter(|d| !d.is_empty()),
                        metadata: metadata(&mut form)?.unwrap_or_default(),
                        usage: form.one_of("usage", &["off_session", "on_session"])?,
                        payment_method_types: form
                            .string_list("payment_method_types")?
                            .unwrap_or_default(),
                    };
                    let _ = form.hash("automatic_payment_methods")?;
                    let _ = form.string("return_url")?;
                    let _ = form.hash("payment_method_options")?;
                    form.finish()?;
                    let intent = account.create_setup_intent(new, ctx.now)?;
                    if !confirm {
                        return Ok(intent);
                    }
                    account.confirm_setup_intent(&intent.id, Confirmation::default(), ctx.now)
                },
            )
            .await
    }

    /// Retrieve a setup intent
    #[oai(
        path = "/v1/setup_intents/:intent",
        method = "get",
        operation_id = "GetSetupIntentsIntent",
        tag = "StripeTag::SetupIntents"
    )]
    async fn retrieve_setup_intent(
        &self,
        request: &Request,
        intent: Path<String>,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::ClientSecret,
                SI_EXPAND,
                |account, mut form, ctx| {
                    let found = account.setup_intent(&intent)?;
                    check_client_secret(&mut form, ctx, &found.client_secret, "SetupIntent")?;
                    form.finish()?;
                    Ok(found.clone())
                },
            )
            .await
    }

    /// Confirm a setup intent
    #[oai(
        path = "/v1/setup_intents/:intent/confirm",
        method = "post",
        operation_id = "PostSetupIntentsIntentConfirm",
        tag = "StripeTag::SetupIntents"
    )]
    async fn confirm_setup_intent(
        &self,
        request: &Request,
        intent: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::ClientSecret,
                SI_EXPAND,
                |account, mut form, ctx| {
                    let secret = account.setup_intent(&intent)?.client_secret.clone();
                    check_client_secret(&mut form, ctx, &secret, "SetupIntent")?;
                    let mut payment_method = form.string("payment_method")?;
                    let data = form.hash("payment_method_data")?;
                    let _ = form.string("return_url")?;
                    let _ = form.hash("payment_method_options")?;
                    let _ = form.boolean("use_stripe_sdk")?;
                    form.finish()?;
                    if let Some(data) = data {
                        payment_method = Some(new_payment_method(account, data, ctx)?.id);
                    }
                    let confirmation = Confirmation {
                        payment_method,
                        ..Confirmation::default()
                    };
                    account.confirm_setup_intent(&intent, confirmation, ctx.now)
                },
            )
            .await
    }

    /// Cancel a setup intent
    #[oai(
        path = "/v1/setup_intents/:intent/cancel",
        method = "post",
        operation_id = "PostSetupIntentsIntentCancel",
        tag = "StripeTag::SetupIntents"
    )]
    async fn cancel_setup_intent(
        &self,
        request: &Request,
        intent: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                SI_EXPAND,
                |account, mut form, ctx| {
                    let reason = form.one_of(
                        "cancellation_reason",
                        &["abandoned", "duplicate", "requested_by_customer"],
                    )?;
                    form.finish()?;
                    account.cancel_setup_intent(&intent, reason, ctx.now)
                },
            )
            .await
    }

    /// Create a refund
    ///
    /// Of a payment intent's charge (`payment_intent`) or a charge (`charge`); all that is
    /// left of it, or `amount`.
    #[oai(
        path = "/v1/refunds",
        method = "post",
        operation_id = "PostRefunds",
        tag = "StripeTag::Refunds"
    )]
    async fn create_refund(&self, request: &Request, body: FormBody) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                REFUND_EXPAND,
                |account, mut form, ctx| {
                    let new = NewRefund {
                        amount: amount(&mut form, false)?,
                        payment_intent: form.string("payment_intent")?,
                        charge: form.string("charge")?,
                        reason: form.one_of(
                            "reason",
                            &["duplicate", "fraudulent", "requested_by_customer"],
                        )?,
                        metadata: metadata(&mut form)?.unwrap_or_default(),
                    };
                    form.finish()?;
                    account.create_refund(new, ctx.now)
                },
            )
            .await
    }

    /// List setup intents
    #[oai(
        path = "/v1/setup_intents",
        method = "get",
        operation_id = "GetSetupIntents",
        tag = "StripeTag::SetupIntents"
    )]
    async fn list_setup_intents(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                &["data.customer", "data.payment_method"],
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let customer = form.string("customer")?;
                    let payment_method = form.string("payment_method")?;
                    form.finish()?;
                    let indexes = &account.indexes;
                    let candidates = match (&customer, &payment_method) {
                        (Some(customer), _) => indexes.setup_intents_by_customer.get(customer),
                        (None, Some(pm)) => indexes.setup_intents_by_payment_method.get(pm),
                        (None, None) => Candidates::All,
                    };
                    list_table(
                        &account.setup_intents,
                        &candidates,
                        |intent| {
                            (customer.is_none() || intent.customer == customer)
                                && (payment_method.is_none()
                                    || intent.payment_method == payment_method)
                        },
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/setup_intents",
                            noun: "setupintent",
                        },
                    )
                },
            )
            .await
    }

    /// List refunds
    #[oai(
        path = "/v1/refunds",
        method = "get",
        operation_id = "GetRefunds",
        tag = "StripeTag::Refunds"
    )]
    async fn list_refunds(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                &["data.charge", "data.payment_intent"],
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let charge = form.string("charge")?;
                    let payment_intent = form.string("payment_intent")?;
                    form.finish()?;
                    let indexes = &account.indexes;
                    let candidates = match (&charge, &payment_intent) {
                        (Some(charge), _) => indexes.refunds_by_charge.get(charge),
                        (None, Some(intent)) => indexes.refunds_by_payment_intent.get(intent),
                        (None, None) => Candidates::All,
                    };
                    list_table(
                        &account.refunds,
                        &candidates,
                        |refund| {
                            (charge.is_none() || Some(&refund.charge) == charge.as_ref())
                                && (payment_intent.is_none()
                                    || refund.payment_intent == payment_intent)
                        },
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/refunds",
                            noun: "refund",
                        },
                    )
                },
            )
            .await
    }

    /// List charges
    #[oai(
        path = "/v1/charges",
        method = "get",
        operation_id = "GetCharges",
        tag = "StripeTag::Charges"
    )]
    async fn list_charges(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                &["data.customer", "data.payment_intent"],
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let customer = form.string("customer")?;
                    let payment_intent = form.string("payment_intent")?;
                    form.finish()?;
                    let indexes = &account.indexes;
                    let candidates = match (&customer, &payment_intent) {
                        (_, Some(intent)) => indexes.charges_by_payment_intent.get(intent),
                        (Some(customer), None) => indexes.charges_by_customer.get(customer),
                        (None, None) => Candidates::All,
                    };
                    list_table(
                        &account.charges,
                        &candidates,
                        |charge| {
                            (customer.is_none() || charge.customer == customer)
                                && (payment_intent.is_none()
                                    || charge.payment_intent == payment_intent)
                        },
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/charges",
                            noun: "charge",
                        },
                    )
                },
            )
            .await
    }

    /// Retrieve a refund
    #[oai(
        path = "/v1/refunds/:refund",
        method = "get",
        operation_id = "GetRefundsRefund",
        tag = "StripeTag::Refunds"
    )]
    async fn retrieve_refund(&self, request: &Request, refund: Path<String>) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                REFUND_EXPAND,
                |account, form, _| {
                    form.finish()?;
                    Ok(account.refund(&refund)?.clone())
                },
            )
            .await
    }

    /// Retrieve a charge
    #[oai(
        path = "/v1/charges/:charge",
        method = "get",
        operation_id = "GetChargesCharge",
        tag = "StripeTag::Charges"
    )]
    async fn retrieve_charge(&self, request: &Request, charge: Path<String>) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                CHARGE_EXPAND,
                |account, form, _| {
                    form.finish()?;
                    Ok(account.charge(&charge)?.clone())
                },
            )
            .await
    }
}

/// Unknown paths, answered as Stripe answers them.
pub(crate) fn unrecognized_url(method: &str, path: &str) -> Value {
    ApiError::new(
        404,
        super::error::ErrorType::InvalidRequest,
        format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or \
             we can help at https://support.stripe.com/."
        ),
    )
    .body()
}

/// The control surface plays the customer: confirms as Stripe.js would after 3D Secure.
pub(crate) fn customer_confirms(
    shared: &mut Shared,
    intent: &str,
    payment_method: Option<String>,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let confirmation = Confirmation {
        payment_method,
        off_session: false,
        setup_future_usage: None,
        authenticated: true,
    };
    if intent.starts_with("seti_") {
        to_json(
            shared
                .account
                .confirm_setup_intent(intent, confirmation, now)?,
        )
    } else {
        to_json(
            shared
                .account
                .confirm_payment_intent(intent, confirmation, now)?,
        )
    }
}

/// Queues a decline for the customer's next charge.
pub(crate) fn fail_next_charge(
    shared: &mut Shared,
    customer: &str,
    decline_code: &str,
) -> Result<Value, ApiError> {
    shared.account.customer(customer)?;
    let decline = Decline::from_decline_code(decline_code);
    let body = json!({"customer": customer, "code": decline.code, "decline_code": decline.decline_code, "message": decline.message});
    shared
        .account
        .forced_declines
        .insert(customer.to_owned(), decline);
    Ok(body)
}
