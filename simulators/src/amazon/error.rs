//! The two kinds of failure: the host's ([`AmazonError`], returned by the Rust API) and a
//! client's of RVS ([`RvsError`], answered with Amazon's status code and `{"message",
//! "status": false}`).

use std::path::PathBuf;

use super::wire::RvsErrorBody;

/// A failure of the Rust API the host uses: building the simulator, configuring it.
#[derive(Debug, thiserror::Error)]
pub enum AmazonError {
    /// The configuration cannot describe an Appstore developer account.
    #[error("invalid Amazon Appstore simulator configuration: {0}")]
    InvalidConfig(String),
    /// The SNS signing key or its certificate could not be made or read.
    #[error("cannot make the Amazon SNS signing key: {0}")]
    Keys(String),
    /// The data directory holds an unusable key or certificate.
    #[error("the SNS signing key files in {path}: {reason}")]
    KeyFiles { path: PathBuf, reason: String },
}

/// An error as the Receipt Verification Service answers it: one of Amazon's statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct RvsError {
    pub status: u16,
    pub message: String,
}

impl RvsError {
    fn new(status: u16, message: &str) -> Self {
        Self {
            status,
            message: message.to_owned(),
        }
    }

    /// 400: the receipt id is malformed, or no transaction has it (in this environment).
    pub fn invalid_receipt_id() -> Self {
        Self::new(
            400,
            "The transaction represented by this receiptId is invalid, or no transaction was found for this receiptId.",
        )
    }

    /// 400 for a request RVS cannot read at all (an operation version it does not have).
    pub fn bad_request(message: &str) -> Self {
        Self::new(400, message)
    }

    /// 410: the receipt is no longer valid (revoked); treat it as cancelled.
    pub fn no_longer_valid() -> Self {
        Self::new(
            410,
            "The transaction represented by this receiptId is no longer valid. Treat it as a cancelled receipt.",
        )
    }

    /// 429: too many requests; try again later.
    pub fn throttled() -> Self {
        Self::new(429, "The request was throttled. Try again later.")
    }

    /// 496: the shared secret is not the developer's.
    pub fn invalid_shared_secret() -> Self {
        Self::new(496, "Invalid sharedSecret")
    }

    /// 497: the user id is not a customer of the app, or not the one the receipt belongs to.
    pub fn invalid_user_id() -> Self {
        Self::new(497, "Invalid User ID")
    }

    /// 500 (or another 5xx): RVS failed. Only ever answered when the control surface asked
    /// for it, never for anything a client sent.
    pub fn internal(status: u16) -> Self {
        Self::new(status, "There was an Internal Server Error")
    }

    pub fn body(&self) -> RvsErrorBody {
        RvsErrorBody {
            message: self.message.clone(),
            status: false,
        }
    }
}
