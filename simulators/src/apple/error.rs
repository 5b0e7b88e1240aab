//! The two kinds of failure: the host's ([`AppleError`], returned by the Rust API) and the
//! client's ([`ApiError`], returned on the wire as Apple's `{"errorCode", "errorMessage"}`).

use std::path::PathBuf;

/// A failure of the Rust API the host uses: building the simulator, its certificates and its
/// in-app purchase keys.
#[derive(Debug, thiserror::Error)]
pub enum AppleError {
    /// The configuration cannot describe an app in the App Store.
    #[error("invalid Apple simulator configuration: {0}")]
    InvalidConfig(String),

    /// The certificate files in the data directory exist but cannot be used.
    #[error("cannot use the Apple simulator's certificates in {path}: {reason}")]
    CertificateFiles { path: PathBuf, reason: String },

    /// The certificate chain could not be minted.
    #[error("cannot create the Apple simulator's certificates: {0}")]
    Certificates(String),

    /// An in-app purchase key file exists but cannot be read, or cannot be written.
    #[error("cannot use the in-app purchase key at {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    /// An in-app purchase key could not be generated.
    #[error("cannot generate an in-app purchase key: {0}")]
    KeyGeneration(String),
}

/// The `errorCode`s of the App Store Server API this simulator answers, with Apple's HTTP
/// status for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A request the API cannot read (a malformed parameter it has no specific error for).
    GeneralBadRequest,
    /// `revision` is not a revision this API handed out.
    InvalidRequestRevision,
    /// The transaction id is not a transaction id (digits).
    InvalidTransactionId,
    /// `startDate` is after `endDate`, or equal to it.
    StartDateAfterEndDate,
    /// `paginationToken` is not one this API handed out.
    InvalidPaginationToken,
    /// `startDate` is not milliseconds since the epoch.
    InvalidStartDate,
    /// `endDate` is not milliseconds since the epoch.
    InvalidEndDate,
    /// `notificationType` is not a notification type.
    InvalidNotificationType,
    /// A test notification token is not one (`{uuid}_{milliseconds}`).
    InvalidTestNotificationToken,
    /// `sort` is neither `ASCENDING` nor `DESCENDING`.
    InvalidSort,
    /// `productType` is not a product type.
    InvalidProductType,
    /// `inAppOwnershipType` is neither `PURCHASED` nor `FAMILY_SHARED`.
    InvalidInAppOwnershipType,
    /// `revoked` is neither `true` nor `false`.
    InvalidRevoked,
    /// `status` is not a subscription status (1 to 5).
    InvalidStatus,
    /// No notification URL is set for the environment.
    ServerNotificationUrlNotFound,
    /// No test notification has this token.
    TestNotificationNotFound,
    /// No transaction has this id in this environment.
    TransactionIdNotFound,
}

impl ErrorCode {
    pub fn number(self) -> u32 {
        match self {
            Self::GeneralBadRequest => 4_000_000,
            Self::InvalidRequestRevision => 4_000_005,
            Self::InvalidTransactionId => 4_000_006,
            Self::StartDateAfterEndDate => 4_000_013,
            Self::InvalidPaginationToken => 4_000_014,
            Self::InvalidStartDate => 4_000_015,
            Self::InvalidEndDate => 4_000_016,
            Self::InvalidNotificationType => 4_000_018,
            Self::InvalidTestNotificationToken => 4_000_020,
            Self::InvalidSort => 4_000_021,
            Self::InvalidProductType => 4_000_022,
            Self::InvalidInAppOwnershipType => 4_000_026,
            Self::InvalidRevoked => 4_000_030,
            Self::InvalidStatus => 4_000_031,
            Self::ServerNotificationUrlNotFound => 4_040_007,
            Self::TestNotificationNotFound => 4_040_008,
            Self::TransactionIdNotFound => 4_040_010,
        }
    }

    /// The HTTP status Apple answers with: the code's first three digits.
    pub fn status(self) -> u16 {
        u16::try_from(self.number() / 10_000).unwrap_or(400)
    }

    fn message(self) -> &'static str {
        match self {
            Self::GeneralBadRequest => "Bad request.",
            Self::InvalidRequestRevision => "Invalid request revision.",
            Self::InvalidTransactionId => "Invalid transaction id.",
            Self::StartDateAfterEndDate => "Start date after end date.",
            Self::InvalidPaginationToken => "Invalid pagination token.",
            Self::InvalidStartDate => "Invalid start date.",
            Self::InvalidEndDate => "Invalid end date.",
            Self::InvalidNotificationType => "Invalid notification type.",
            Self::InvalidTestNotificationToken => "Invalid test notification token.",
            Self::InvalidSort => "Invalid sort.",
            Self::InvalidProductType => "Invalid product type.",
            Self::InvalidInAppOwnershipType => "Invalid in-app ownership type.",
            Self::InvalidRevoked => "Invalid revoked.",
            Self::InvalidStatus => "Invalid status.",
            Self::ServerNotificationUrlNotFound => "No App Store Server Notification URL found.",
            Self::TestNotificationNotFound => "Test notification not found.",
            Self::TransactionIdNotFound => "Transaction id not found.",
        }
    }
}

/// An error as the App Store Server API reports it: an HTTP status and
/// `{"errorCode": …, "errorMessage": …}`; or a plain 401 for a missing or refused token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No bearer token, or one the API does not accept: a 401 without a body, as Apple.
    Unauthenticated,
    /// One of Apple's error codes.
    Coded(ErrorCode),
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        Self::Coded(code)
    }
}

impl ErrorCode {
    /// `(errorCode, errorMessage)`.
    pub fn body(self) -> (u32, &'static str) {
        (self.number(), self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_first_three_digits() {
        assert_eq!(ErrorCode::TransactionIdNotFound.status(), 404);
        assert_eq!(ErrorCode::InvalidTransactionId.status(), 400);
        assert_eq!(
            ErrorCode::TransactionIdNotFound.body(),
            (4_040_010, "Transaction id not found.")
        );
    }
}
