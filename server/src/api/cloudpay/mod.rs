//! The CloudPay façade (StreamAMG's consumer API): wire ↔ core, nothing else.
//! Mounted at `/cloudpay`; its document is `openapi/cloudpay.json`.

mod account;
mod auth;
mod error;
mod packages;
mod scripts;
mod session;
mod wire;

use std::sync::Arc;

use poem::Route;
use poem_openapi::OpenApiService;

use crate::core::{Core, Country};
pub use error::{ErrorResponse, render_framework_error};

#[derive(Debug, Clone)]
pub struct CloudPaySettings {
    /// Where partners reach this façade, e.g. `http://127.0.0.1:8080/cloudpay`; used in links.
    pub public_url: String,
    /// Hosts that redirects (`/sso/start/{redirect}`, `setcookie?callbackurl=`) may point at,
    /// besides relative paths on this host.
    pub redirect_hosts: Vec<String>,
    /// The country assumed when the caller sends no `location` header.
    pub default_country: Country,
}

pub(crate) struct CloudPay {
    core: Arc<Core>,
    settings: CloudPaySettings,
}

type Apis = (
    session::SessionApi,
    packages::PackageApi,
    account::AccountApi,
    scripts::ScriptApi,
);

fn apis(core: Arc<Core>, settings: CloudPaySettings) -> Apis {
    let context = Arc::new(CloudPay { core, settings });
    (
        session::SessionApi(context.clone()),
        packages::PackageApi(context.clone()),
        account::AccountApi(context.clone()),
        scripts::ScriptApi,
    )
}

fn service(apis: Apis, server_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis, "CloudPay API", env!("CARGO_PKG_VERSION"))
        .description(
            "StreamAMG CloudPay's consumer API as served by boxoffice: SSO session start with a \
             third-party JWT or email and password, the device lock (concurrent sessions per \
             customer), presence, packages with geo restriction and in-app-purchase product ids, \
             the customer's account, viewing history and playback checks.\n\n\
             Authorise user operations with any one of: query `apijwttoken` (the SSO provider's \
             JWT), query `apisessionid` (the `AuthenticationToken` from session start), cookie \
             `ThirdPartyAuthentication` (set by `/sso/start`) or cookie `.auth` (set by \
             `/api/v1/session/setcookie`). Every error has the body \
             `{\"statusCode\": 401, \"body\": {\"status\": \"Unauthorized\", \"message\": \"…\"}}`.",
        )
        .server(server_url)
}

/// The façade's routes: the API, its document at `/openapi.json`, Swagger UI at `/docs`
/// and Redoc at `/redoc`. Wrap them with [`render_framework_error`] so that errors raised
/// before a handler runs keep CloudPay's error shape.
pub fn routes(core: Arc<Core>, settings: CloudPaySettings) -> Route {
    let server_url = settings.public_url.clone();
    let service = service(apis(core, settings), &server_url);
    Route::new()
        .nest("/docs", service.swagger_ui())
        .nest("/redoc", service.redoc())
        .at("/openapi.json", service.spec_endpoint())
        .nest("/", service)
}

/// The document, as committed under `openapi/cloudpay.json`.
pub fn document(core: Arc<Core>, settings: CloudPaySettings) -> String {
    let server_url = settings.public_url.clone();
    service(apis(core, settings), &server_url).spec()
}

impl CloudPay {
    /// The country a request is in: its `location` header, validated, or the default.
    fn country(&self, location: Option<&str>) -> Result<Option<Country>, error::CloudPayError> {
        match location {
            None => Ok(None),
            Some(code) => Country::parse(code).map(Some).ok_or_else(|| {
                error::CloudPayError::bad_request(format!(
                    "location must be an ISO 3166-1 alpha-2 country code, not {code:?}"
                ))
            }),
        }
    }

    /// A redirect target that stays on this host or on an allowed one.
    fn safe_redirect(&self, target: &str) -> Result<String, error::CloudPayError> {
        let target = target.trim();
        if target.starts_with('/') && !target.starts_with("//") && !target.contains('\\') {
            return Ok(target.to_owned());
        }
        let parsed = url::Url::parse(target).map_err(|_| {
            error::CloudPayError::bad_request(format!("{target:?} is not a URL or a path"))
        })?;
        let allowed = matches!(parsed.scheme(), "http" | "https")
            && parsed.host_str().is_some_and(|host| {
                self.settings
                    .redirect_hosts
                    .iter()
                    .any(|allowed| allowed == host)
            });
        if allowed {
            Ok(parsed.to_string())
        } else {
            Err(error::CloudPayError::bad_request(format!(
                "redirects to {target:?} are not allowed; use a path on this host or an allowed host"
            )))
        }
    }
}
