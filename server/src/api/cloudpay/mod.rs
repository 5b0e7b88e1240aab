//! The CloudPay façade (StreamAMG's consumer API): wire ↔ core, nothing else.
//! Mounted at `/cloudpay`; its document is `openapi/cloudpay.json`.

mod account;
mod auth;
mod error;
mod iap;
mod packages;
mod payments;
mod scripts;
mod session;
mod wire;

use std::sync::Arc;

use poem::Route;
use poem_openapi::OpenApiService;

use crate::core::{Core, Country};
pub use error::{ErrorResponse, framework_errors};

#[derive(Debug, Clone)]
pub struct CloudPaySettings {
    /// Where partners reach this façade, e.g. `http://127.0.0.1:8080/cloudpay`; used in links.
    pub public_url: String,
    /// Hosts that redirects (`/sso/start/{redirect}`, `setcookie?callbackurl=`) may point at,
    /// besides relative paths on this host.
    pub redirect_hosts: Vec<String>,
    /// The country `LocationFromIp` shows when the caller's is unknown. Geo restriction never
    /// assumes it: without a `location` header, restricted packages stay hidden.
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
    payments::PaymentApi,
    iap::IapApi,
    scripts::ScriptApi,
);

fn apis(core: Arc<Core>, settings: CloudPaySettings) -> Apis {
    let context = Arc::new(CloudPay { core, settings });
    (
        session::SessionApi(context.clone()),
        packages::PackageApi(context.clone()),
        account::AccountApi(context.clone()),
        payments::PaymentApi(context.clone()),
        iap::IapApi(context.clone()),
        scripts::ScriptApi,
    )
}

fn service(apis: Apis, server_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis, "CloudPay API", env!("CARGO_PKG_VERSION"))
        .description(
            "StreamAMG CloudPay's consumer API as served by boxoffice: SSO session start with a \
             third-party JWT or email and password, the device lock (concurrent sessions per \
             customer), presence, packages with geo restriction and in-app-purchase product ids, \
             the customer's account, viewing history and playback checks, web purchases with \
             Stripe (checkout, discount codes, billing updates), transactions and cancellation.\n\n\
             Authorise user operations with any one of: query `apijwttoken` (the SSO provider's \
             JWT), query `apisessionid` (the `AuthenticationToken` from session start), cookie \
             `ThirdPartyAuthentication` (set by `/sso/start`) or cookie `.auth` (set by \
             `/api/v1/session/setcookie`). Every error has the body \
             `{\"statusCode\": 401, \"body\": {\"status\": \"Unauthorized\", \"message\": \"…\"}}`. \
             Where StreamAMG's reference answers a refused login, cookie or termination with \
             500 `{\"ErrorMessage\": …}`, this server answers the 4xx that fits (401 or 400) in \
             that error shape: a 5xx always means a fault on the server's side.",
        )
        .server(server_url)
}

/// The façade's routes: the API, its document at `/openapi.json`, Swagger UI at `/docs`
/// and Redoc at `/redoc`. Wrap them with [`framework_errors`] so that errors raised
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
    /// The country a request says it is in: its `location` header, validated.
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

    /// A redirect target that stays on this host or goes to an allowed one. Control
    /// characters and backslashes are refused outright: browsers drop or rewrite them, which
    /// turns `/\t/evil.com` into `//evil.com`.
    fn safe_redirect(&self, target: &str) -> Result<String, error::CloudPayError> {
        let refuse = || {
            error::CloudPayError::bad_request(format!(
                "redirects to {target:?} are not allowed; use a path on this host or an allowed host"
            ))
        };
        let target = target.trim();
        if target.is_empty()
            || target
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(refuse());
        }
        let base = url::Url::parse(&self.settings.public_url).map_err(|_| refuse())?;
        let resolved = base.join(target).map_err(|_| refuse())?;
        if resolved.origin() == base.origin() {
            return Ok(if target.starts_with('/') {
                target.to_owned()
            } else {
                resolved.to_string()
            });
        }
        let allowed = matches!(resolved.scheme(), "http" | "https")
            && resolved.host_str().is_some_and(|host| {
                self.settings
                    .redirect_hosts
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(host))
            });
        if allowed {
            Ok(resolved.to_string())
        } else {
            Err(refuse())
        }
    }
}
