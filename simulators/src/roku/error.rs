//! The two kinds of failure: the host's ([`RokuError`], returned by the Rust API) and a web
//! service client's ([`ApiError`], returned on the wire in the shape every Roku Pay answer
//! has: `errorCode`, `errorDetails`, `errorMessage` and `status`).
//!
//! Roku documents that shape (its `BaseResponseData`: `status` `Success` or `Failure`, 0 or
//! 1 in JSON) but not its failures. What this simulator answers, and why:
//! - a key that is not the developer's: HTTP 200, `status` 1, `errorMessage`
//!   `UNAUTHORIZED` — what integrators report Roku answering;
//! - a transaction or refund id Roku does not know, an operation the subscription's state
//!   does not allow, a refund amount out of range: HTTP 200, `status` 1 and a message that
//!   says which (Roku's messages for these are not published; the shape and the HTTP 200
//!   are what a Roku client checks);
//! - a body that is not the operation's JSON, an id that is not up to 1024 printable ASCII
//!   characters: HTTP 400 with the same shape (Roku's WCF service refuses unreadable
//!   requests with a 400);
//! - a path the service does not have: HTTP 404 `Endpoint not found.`, WCF's words.
//!
//! `errorCode` and `errorDetails` are `null` throughout, as in every answer Roku shows.

use super::wire::RokuResult;

/// A failure of the Rust API the host uses: building the simulator, configuring pushes.
#[derive(Debug, thiserror::Error)]
pub enum RokuError {
    /// The configuration cannot describe a Roku developer account.
    #[error("invalid Roku Pay simulator configuration: {0}")]
    InvalidConfig(String),
    /// The push signing key could not be made.
    #[error("cannot make the Roku Pay simulator's key: {0}")]
    Keys(String),
}

/// `status` in JSON answers: Roku's `Success`.
pub const STATUS_SUCCESS: i32 = 0;
/// `status` in JSON answers: Roku's `Failure`.
pub const STATUS_FAILURE: i32 = 1;

/// What a wrong partner API key gets as `errorMessage`.
pub const UNAUTHORIZED: &str = "UNAUTHORIZED";

/// A refusal as the Roku Pay web services answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// 200 for a refusal Roku reports in the body, 400 or 404 otherwise.
    pub http_status: u16,
    pub message: String,
}

impl ApiError {
    fn new(http_status: u16, message: impl Into<String>) -> Self {
        Self {
            http_status,
            message: message.into(),
        }
    }

    /// A refusal in the body of a 200.
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(200, message)
    }

    /// The partner API key is not (or no longer) the developer's.
    pub fn unauthorized() -> Self {
        Self::failure(UNAUTHORIZED)
    }

    /// A request Roku cannot read: 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// A path the service does not have: 404.
    pub fn endpoint_not_found() -> Self {
        Self::new(404, "Endpoint not found.")
    }

    /// The body: Roku's base response with `status` 1.
    pub fn body(&self) -> RokuResult {
        RokuResult::failure(&self.message)
    }
}
