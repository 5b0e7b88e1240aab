//! `stream-payments.js`, the browser client library, by version.

use std::sync::LazyLock;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::PlainText;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::error::CloudPayError;

const CURRENT_VERSION: &str = "1.0.0";
const SOURCE: &str = include_str!("stream-payments.js");

/// The same script without comment lines and indentation.
static MINIFIED: LazyLock<String> = LazyLock::new(|| {
    SOURCE
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
});

#[derive(Tags)]
enum ScriptTags {
    /// The browser client library.
    Scripts,
}

#[derive(ApiResponse)]
enum LatestScript {
    /// Redirect to the current version.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum Script {
    #[oai(status = 200, content_type = "application/javascript; charset=utf-8")]
    Ok(PlainText<String>, #[oai(header = "Cache-Control")] String),
}

fn wants_minified(minified: Option<&str>) -> bool {
    minified.is_some_and(|value| !matches!(value, "false" | "0" | ""))
}

pub(crate) struct ScriptApi;

#[OpenApi]
impl ScriptApi {
    /// Load stream-payments.js
    ///
    /// Redirects to the current version of the script.
    #[oai(
        path = "/js/stream-payments.js",
        method = "get",
        tag = "ScriptTags::Scripts",
        operation_id = "stream-payments-script"
    )]
    async fn latest(
        &self,
        /// `true` for the minified script.
        minified: Query<Option<String>>,
    ) -> LatestScript {
        let suffix = if wants_minified(minified.0.as_deref()) {
            "?minified=true"
        } else {
            ""
        };
        LatestScript::Found(format!("{CURRENT_VERSION}/stream-payments.js{suffix}"))
    }

    /// Load a version of stream-payments.js
    ///
    /// The script of one version; versions are immutable, so it may be cached for a year.
    #[oai(
        path = "/js/:version/stream-payments.js",
        method = "get",
        tag = "ScriptTags::Scripts",
        operation_id = "stream-payments-v-script"
    )]
    async fn versioned(
        &self,
        /// The script version, e.g. `1.0.0`.
        version: Path<String>,
        /// `true` for the minified script.
        minified: Query<Option<String>>,
    ) -> Result<Script, CloudPayError> {
        if version.0 != CURRENT_VERSION {
            return Err(CloudPayError::NotFound(poem_openapi::payload::Json(
                super::ErrorResponse::new(
                    404,
                    "NotFound",
                    format!(
                        "stream-payments.js has no version {}; the current one is {CURRENT_VERSION}",
                        version.0
                    ),
                ),
            )));
        }
        let body = if wants_minified(minified.0.as_deref()) {
            MINIFIED.clone()
        } else {
            SOURCE.to_owned()
        };
        Ok(Script::Ok(
            PlainText(body),
            "public, max-age=31536000, immutable".into(),
        ))
    }
}
