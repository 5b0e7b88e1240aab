//! The two kinds of failure: the host's ([`SsoError`], returned by the Rust API) and the
//! client's ([`CognitoError`], returned on the wire exactly as Cognito returns it).

use std::path::PathBuf;

use poem_openapi::Enum;

/// A failure of the Rust API the host uses: building the simulator or seeding users.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The configuration cannot describe a Cognito user pool.
    #[error("invalid SSO simulator configuration: {0}")]
    InvalidConfig(String),

    /// The signing key file exists but cannot be read or is not an RSA private key.
    #[error("cannot use the SSO signing key at {path}: {reason}")]
    SigningKeyFile { path: PathBuf, reason: String },

    /// The RSA key could not be generated.
    #[error("cannot generate the SSO signing key: {0}")]
    KeyGeneration(String),

    /// A seeded user's email is not an email address.
    #[error("cannot seed {email}: not an email address")]
    InvalidEmail { email: String },

    /// A seeded user's password breaks the pool's password policy.
    #[error("cannot seed {email}: {reason}")]
    InvalidPassword { email: String, reason: String },

    /// A user with this email already exists in the pool.
    #[error("cannot seed {email}: a user with this email already exists")]
    UserExists { email: String },
}

/// The `__type` of a Cognito error response, spelled as the service spells it (and as the
/// AWS SDKs map it to exception classes, e.g. boto3's `client.exceptions.NotAuthorizedException`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "CognitoErrorType")]
pub enum CognitoErrorType {
    /// Wrong password, unknown user when the pool prevents user-existence errors, and
    /// invalid, expired or revoked tokens.
    #[oai(rename = "NotAuthorizedException")]
    NotAuthorized,
    /// No user by that name (only when the app client does not prevent user-existence errors).
    #[oai(rename = "UserNotFoundException")]
    UserNotFound,
    /// Sign-up with an email that already has an account.
    #[oai(rename = "UsernameExistsException")]
    UsernameExists,
    /// Sign-in before the sign-up was confirmed.
    #[oai(rename = "UserNotConfirmedException")]
    UserNotConfirmed,
    /// The confirmation or reset code is not the one sent.
    #[oai(rename = "CodeMismatchException")]
    CodeMismatch,
    /// The confirmation or reset code is past its validity, or was already used.
    #[oai(rename = "ExpiredCodeException")]
    ExpiredCode,
    /// The password breaks the pool's password policy.
    #[oai(rename = "InvalidPasswordException")]
    InvalidPassword,
    /// A parameter is missing, malformed or not allowed for this app client.
    #[oai(rename = "InvalidParameterException")]
    InvalidParameter,
    /// The app client (`ClientId`) or the user pool does not exist.
    #[oai(rename = "ResourceNotFoundException")]
    ResourceNotFound,
    /// `X-Amz-Target` names no operation this user pool serves.
    #[oai(rename = "UnknownOperationException")]
    UnknownOperation,
    /// The body is not a JSON object of the operation's request shape.
    #[oai(rename = "SerializationException")]
    Serialization,
    /// The simulator failed on its own side (signing); never caused by the request.
    #[oai(rename = "InternalErrorException")]
    InternalError,
}

impl CognitoErrorType {
    /// The `__type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAuthorized => "NotAuthorizedException",
            Self::UserNotFound => "UserNotFoundException",
            Self::UsernameExists => "UsernameExistsException",
            Self::UserNotConfirmed => "UserNotConfirmedException",
            Self::CodeMismatch => "CodeMismatchException",
            Self::ExpiredCode => "ExpiredCodeException",
            Self::InvalidPassword => "InvalidPasswordException",
            Self::InvalidParameter => "InvalidParameterException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::Serialization => "SerializationException",
            Self::InternalError => "InternalErrorException",
        }
    }
}

/// An error as a Cognito user pool reports it: a `__type` and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoError {
    pub error_type: CognitoErrorType,
    pub message: String,
}

impl CognitoError {
    pub fn new(error_type: CognitoErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }

    /// Cognito's one answer to a wrong password, so that it tells nothing else.
    pub fn incorrect_credentials() -> Self {
        Self::new(
            CognitoErrorType::NotAuthorized,
            "Incorrect username or password.",
        )
    }

    pub fn code_mismatch() -> Self {
        Self::new(
            CognitoErrorType::CodeMismatch,
            "Invalid verification code provided, please try again.",
        )
    }

    pub fn expired_code() -> Self {
        Self::new(
            CognitoErrorType::ExpiredCode,
            "Invalid code provided, please request a code again.",
        )
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(CognitoErrorType::InvalidParameter, message)
    }

    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(CognitoErrorType::NotAuthorized, message)
    }

    /// AWS's request-validation message for missing members, e.g.
    /// `1 validation error detected: Value null at 'clientId' failed to satisfy constraint: Member must not be null`.
    pub fn missing_members(members: &[&str]) -> Self {
        let violations: Vec<String> = members
            .iter()
            .map(|member| {
                format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    lower_camel(member)
                )
            })
            .collect();
        let count = violations.len();
        let noun = if count == 1 { "error" } else { "errors" };
        Self::invalid_parameter(format!(
            "{count} validation {noun} detected: {}",
            violations.join("; ")
        ))
    }
}

/// AWS names members in validation messages in lowerCamelCase (`ClientId` → `clientId`).
fn lower_camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_members_reads_like_aws_validation() {
        assert_eq!(
            CognitoError::missing_members(&["ClientId"]).message,
            "1 validation error detected: Value null at 'clientId' failed to satisfy constraint: Member must not be null"
        );
        assert!(
            CognitoError::missing_members(&["ClientId", "Username"])
                .message
                .starts_with("2 validation errors detected: ")
        );
    }
}
