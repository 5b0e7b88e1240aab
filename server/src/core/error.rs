use crate::store::StoreError;

/// Everything a core operation can refuse. Each façade maps these once to its own
/// documented error body and status.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The token or session presented does not prove who the caller is.
    #[error("{0}")]
    Unauthenticated(String),
    /// Email and password were not accepted by the identity provider.
    #[error("Invalid Login Request")]
    InvalidLogin,
    #[error("The customer account is blocked due to concurrency limit")]
    DeviceLimitReached,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed but breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// An app store answered and did not vouch for a purchase: its own code and words.
    #[error("{message}")]
    StoreRefused { code: Option<i64>, message: String },
    /// An outside party (identity provider, payment provider) could not be reached.
    #[error("{provider} is unavailable: {detail}")]
    ProviderUnavailable {
        provider: &'static str,
        detail: String,
    },
    /// Concurrent changes kept overtaking this one; the caller may retry.
    #[error("the {0} kept changing while this change was decided; retry")]
    Contended(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    /// A failure of something outside the request (the database or a provider is down):
    /// worth retrying, unlike a bug.
    pub fn is_outage(&self) -> bool {
        match self {
            CoreError::ProviderUnavailable { .. } => true,
            CoreError::Store(error) => error.is_outage(),
            _ => false,
        }
    }
}
