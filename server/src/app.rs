//! Assembles the one process: façades under their prefixes, `/healthz`, and the
//! middleware every request passes through.

use std::sync::Arc;

use http_body_util::BodyExt;
use poem::http::StatusCode;
use poem::middleware::{RequestId, ReuseId};
use poem::web::Json;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, handler};
use serde_json::json;

use crate::api::cloudpay::{self, CloudPaySettings};
use crate::api::webhooks;
use crate::core::Core;

/// Request bodies larger than this are refused with 413 before any handler reads them.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[handler]
async fn healthz(core: poem::web::Data<&Arc<Core>>) -> Response {
    match core.ready().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => {
            tracing::error!(%error, "health check: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

/// Reads the body up to [`MAX_BODY_BYTES`], so an oversize upload is a 413 whatever its
/// transfer encoding.
async fn limit_body<E: Endpoint>(next: E, mut request: Request) -> poem::Result<Response> {
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(poem::Error::from_string(
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ));
    }
    // Collected as the chunks it came in (a webhook's one chunk is kept as it is), where
    // poem's `into_bytes_limit` copies it through a 4 KiB buffer that every layer above
    // this one would then carry and copy in its own state.
    let body: http_body_util::combinators::BoxBody<_, _> = request.take_body().into();
    let bytes = http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| {
            poem::Error::from_string(
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        })?;
    request.set_body(bytes.to_bytes());
    Ok(next.call(request).await?.into_response())
}

/// An oversize body is refused without being read, so the connection cannot carry another
/// request: tell the client instead of letting its next request fail.
async fn close_after_unread_body(response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .with_header(poem::http::header::CONNECTION, "close")
            .into_response()
    } else {
        response
    }
}

/// The server's own routes (`/healthz`, `/cloudpay`, `/webhooks`), ready to nest more
/// beside them. `public_url` is where clients reach this server.
pub fn server_routes(
    core: Arc<Core>,
    public_url: &str,
    cloudpay_settings: CloudPaySettings,
) -> Route {
    let webhooks_url = format!("{}/webhooks", public_url.trim_end_matches('/'));
    Route::new()
        .at("/healthz", healthz.data(core.clone()))
        .nest(
            "/webhooks",
            webhooks::routes(core.clone(), &webhooks_url).around(limit_body),
        )
        .nest(
            "/cloudpay",
            cloudpay::routes(core, cloudpay_settings)
                .around(limit_body)
                .around(cloudpay::framework_errors)
                .map(close_after_unread_body),
        )
}

/// One log line per request: method, path, status and time. Never the query string: it
/// carries passwords and tokens (`password=`, `apijwttoken=`, `apisessionid=`).
async fn log_request<E: Endpoint>(next: E, request: Request) -> poem::Result<Response> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let outcome = next.call(request).await.map(IntoResponse::into_response);
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(error) => error.status(),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), elapsed_ms, "request");
    } else {
        tracing::info!(%method, %path, status = status.as_u16(), elapsed_ms, "request");
    }
    outcome
}

/// Request ids (reusing the caller's `x-request-id`, echoed in the response and attached
/// to every log line of the request) and the request log.
pub fn with_middleware(routes: Route) -> impl Endpoint {
    routes
        .around(log_request)
        .with(RequestId::default().reuse_id(ReuseId::Use))
}
