//! CloudPay's four credential carriers. Any one of them authorises a request.

use poem_openapi::SecurityScheme;
use poem_openapi::auth::ApiKey;

use super::error::CloudPayError;
use crate::core::Credential;

/// The third-party (SSO) JWT, in the query.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "apijwttoken", key_in = "query")]
pub struct ApiJwtToken(ApiKey);

/// The CloudPay session (`AuthenticationToken` from session start), in the query.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "apisessionid", key_in = "query")]
pub struct ApiSessionId(ApiKey);

/// The CloudPay session in the `.auth` cookie (set by `/api/v1/session/setcookie`).
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = ".auth", key_in = "cookie")]
pub struct AuthCookie(ApiKey);

/// The third-party JWT in the cookie `/sso/start` sets, spelled as it is set.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "ThirdPartyAuthentication",
    key_in = "cookie"
)]
pub struct ThirdPartyCookie(ApiKey);

/// The same cookie, spelled as CloudPay's reference lists it.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "thirdpartyauthentication",
    key_in = "cookie"
)]
pub struct ThirdPartyCookieLowercase(ApiKey);

/// Any one of the carriers; the first present is used.
#[derive(SecurityScheme)]
pub enum CloudPayAuth {
    SessionId(ApiSessionId),
    JwtToken(ApiJwtToken),
    AuthCookie(AuthCookie),
    ThirdPartyCookie(ThirdPartyCookie),
    ThirdPartyCookieLowercase(ThirdPartyCookieLowercase),
}

/// As [`CloudPayAuth`], for operations that also answer anonymous callers.
#[derive(SecurityScheme)]
pub enum OptionalCloudPayAuth {
    SessionId(ApiSessionId),
    JwtToken(ApiJwtToken),
    AuthCookie(AuthCookie),
    ThirdPartyCookie(ThirdPartyCookie),
    ThirdPartyCookieLowercase(ThirdPartyCookieLowercase),
    #[oai(fallback)]
    Anonymous,
}

fn credential(key: String, session: bool) -> Result<Credential, CloudPayError> {
    let key = key.trim().to_owned();
    if key.is_empty() {
        return Err(CloudPayError::unauthorized("The credential is empty"));
    }
    Ok(if session {
        Credential::SessionToken(key)
    } else {
        Credential::ThirdPartyToken(key)
    })
}

impl CloudPayAuth {
    pub fn credential(self) -> Result<Credential, CloudPayError> {
        match self {
            CloudPayAuth::SessionId(ApiSessionId(key))
            | CloudPayAuth::AuthCookie(AuthCookie(key)) => credential(key.key, true),
            CloudPayAuth::JwtToken(ApiJwtToken(key))
            | CloudPayAuth::ThirdPartyCookie(ThirdPartyCookie(key))
            | CloudPayAuth::ThirdPartyCookieLowercase(ThirdPartyCookieLowercase(key)) => {
                credential(key.key, false)
            }
        }
    }
}

impl OptionalCloudPayAuth {
    pub fn credential(self) -> Result<Option<Credential>, CloudPayError> {
        let required = match self {
            OptionalCloudPayAuth::SessionId(key) => CloudPayAuth::SessionId(key),
            OptionalCloudPayAuth::JwtToken(key) => CloudPayAuth::JwtToken(key),
            OptionalCloudPayAuth::AuthCookie(key) => CloudPayAuth::AuthCookie(key),
            OptionalCloudPayAuth::ThirdPartyCookie(key) => CloudPayAuth::ThirdPartyCookie(key),
            OptionalCloudPayAuth::ThirdPartyCookieLowercase(key) => {
                CloudPayAuth::ThirdPartyCookieLowercase(key)
            }
            OptionalCloudPayAuth::Anonymous => return Ok(None),
        };
        required.credential().map(Some)
    }

    /// The query parameter to carry into links (PurchaseUrl), as CloudPay does.
    pub fn link_parameter(&self) -> Option<(&'static str, &str)> {
        match self {
            OptionalCloudPayAuth::SessionId(ApiSessionId(key)) => Some(("apisessionid", &key.key)),
            OptionalCloudPayAuth::JwtToken(ApiJwtToken(key)) => Some(("apijwttoken", &key.key)),
            _ => None,
        }
    }
}
