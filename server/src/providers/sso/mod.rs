//! The SSO provider: its signing keys (a JWKS document) and, for email/password logins, an
//! AWS Cognito user pool's `InitiateAuth` (JSON 1.1 protocol).

mod client;
mod wire;

pub use client::{CognitoAppClient, SignInError, SsoClient};
