//! The API explorer for integrators and staff at `/docs`: RapiDoc (vendored, embedded, see
//! `assets/vendor/rapidoc-9.3.8/VENDORED.md`) reading the document served at `/openapi.json`.
//! The page loads the script from this server only and has no inline script; its
//! Content-Security-Policy says so, and keeps the browser from fetching anything elsewhere (the
//! library's web fonts are turned off; the system's fonts are used).

use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::assets::{EmbeddedAsset, HTML, IMMUTABLE, JAVASCRIPT, REVALIDATE};

/// Where the page loads the library from (versioned: cached for good).
pub const RAPIDOC_PATH: &str = "/docs/rapidoc-9.3.8/rapidoc-min.js";

/// Scripts from this server only, none inline; styles may be inline (the library sets `style`
/// attributes); data from this server only (the document, and "try it" requests).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static PAGE: EmbeddedAsset =
    EmbeddedAsset::new(include_bytes!("../../assets/docs.html"), HTML, REVALIDATE).with_headers(&[
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("referrer-policy", "no-referrer"),
    ]);

static RAPIDOC: EmbeddedAsset = EmbeddedAsset::new(
    include_bytes!("../../assets/vendor/rapidoc-9.3.8/rapidoc-min.js"),
    JAVASCRIPT,
    IMMUTABLE,
);

pub(crate) fn routes() -> super::ApiRouter {
    super::ApiRouter::new()
        .routes(utoipa_axum::routes!(page))
        .route(RAPIDOC_PATH, get(rapidoc))
}

/// The explorer's page.
#[utoipa::path(get, path = "/docs", summary = "接口文档浏览（RapiDoc）", tag = "ops",
    description = "An HTML page that shows /openapi.json with RapiDoc, served from this server (nothing fetched elsewhere).",
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
              (status = 304, description = "Unchanged since the `ETag` in `If-None-Match`")))]
pub async fn page(headers: HeaderMap) -> Response {
    PAGE.response(&headers)
}

async fn rapidoc(headers: HeaderMap) -> Response {
    RAPIDOC.response(&headers)
}
