//! The two kinds of failure: the host's ([`StripeError`], returned by the Rust API) and the
//! client's ([`ApiError`], returned on the wire as Stripe's error object).

use serde_json::{Map, Value, json};

/// A failure of the Rust API the host uses: building the simulator, registering a webhook
/// endpoint.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// The configuration cannot describe a Stripe test-mode account.
    #[error("invalid Stripe simulator configuration: {0}")]
    InvalidConfig(String),
    /// A webhook endpoint Stripe would refuse (Stripe's message).
    #[error("webhook endpoint refused: {0}")]
    WebhookEndpointRefused(String),
}

/// Stripe's error `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request is malformed, names something missing, or is not allowed.
    InvalidRequest,
    /// The card was declined or could not be used.
    Card,
    /// An `Idempotency-Key` was reused for another request.
    Idempotency,
    /// The simulator failed on its own side; never caused by the request.
    Api,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Card => "card_error",
            Self::Idempotency => "idempotency_error",
            Self::Api => "api_error",
        }
    }
}

/// An error as Stripe reports it: an HTTP status and the `error` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub error_type: ErrorType,
    pub message: String,
    pub code: Option<Box<str>>,
    pub decline_code: Option<Box<str>>,
    pub param: Option<Box<str>>,
    /// Further members of the error object: `payment_intent`, `setup_intent`,
    /// `payment_method`, `charge`. (Boxed, like the strings, to keep `Result`s small.)
    pub extra: Box<Map<String, Value>>,
}

impl ApiError {
    pub fn new(status: u16, error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
            code: None,
            decline_code: None,
            param: None,
            extra: Box::default(),
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, ErrorType::InvalidRequest, message)
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// `Missing required param: amount.`
    pub fn missing(param: &str) -> Self {
        Self::invalid(format!("Missing required param: {param}."))
            .with_code("parameter_missing")
            .with_param(param)
    }

    /// `Received unknown parameter: foo`
    pub fn unknown_parameter(param: &str) -> Self {
        Self::invalid(format!("Received unknown parameter: {param}"))
            .with_code("parameter_unknown")
            .with_param(param)
    }

    /// 404 `resource_missing`, e.g. `No such customer: 'cus_123'`.
    pub fn no_such(noun: &str, id: &str, param: &str) -> Self {
        Self::new(
            404,
            ErrorType::InvalidRequest,
            format!("No such {noun}: '{id}'"),
        )
        .with_code("resource_missing")
        .with_param(param)
    }

    /// A missing object named by a parameter (not by the URL) is a 400, as in Stripe.
    pub fn referenced(mut self) -> Self {
        if self.status == 404 {
            self.status = 400;
        }
        self
    }

    /// 400 `payment_intent_unexpected_state` (and its SetupIntent twin).
    pub fn unexpected_state(code: &str, message: impl Into<String>) -> Self {
        Self::invalid(message).with_code(code)
    }

    /// 401 without a key.
    pub fn no_api_key() -> Self {
        Self::new(
            401,
            ErrorType::InvalidRequest,
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, \
             or we can help at https://support.stripe.com/.",
        )
    }

    /// 401 with a key that is not this account's, shown redacted as Stripe shows it.
    pub fn invalid_api_key(key: &str) -> Self {
        Self::new(
            401,
            ErrorType::InvalidRequest,
            format!("Invalid API Key provided: {}", redact_key(key)),
        )
        .with_code("api_key_invalid")
    }

    /// 401: a publishable key used where only a secret key may be.
    pub fn publishable_key_not_allowed() -> Self {
        Self::new(
            401,
            ErrorType::InvalidRequest,
            "This API call cannot be made with a publishable API key. Please use a secret API \
             key. You can find a list of your API keys at \
             https://dashboard.stripe.com/account/apikeys.",
        )
    }

    /// The wire body: `{"error": {...}}`.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        if let Some(decline_code) = &self.decline_code {
            error.insert("decline_code".into(), json!(decline_code));
        }
        error.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        for (key, value) in self.extra.iter() {
            error.insert(key.clone(), value.clone());
        }
        error.insert("type".into(), json!(self.error_type.as_str()));
        json!({ "error": error })
    }
}

/// Stripe shows an unknown key as its prefix, stars, and its last four characters.
fn redact_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return key.to_owned();
    }
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map(|(index, _)| index + 1)
        .unwrap_or(0)
        .min(chars.len() - 4);
    let prefix: String = chars[..prefix_len].iter().collect();
    let suffix: String = chars[chars.len() - 4..].iter().collect();
    format!(
        "{prefix}{}{suffix}",
        "*".repeat(chars.len() - prefix_len - 4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_like_stripe() {
        assert_eq!(
            redact_key("sk_test_abcdefghijklmnop1234"),
            "sk_test_****************1234"
        );
        assert_eq!(redact_key("short"), "short");
    }

    #[test]
    fn body_has_stripe_members() {
        let body = ApiError::missing("amount").body();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "amount");
        assert_eq!(body["error"]["code"], "parameter_missing");
    }
}
