//! Request ids, error rendering and access logs.
//!
//! Every response carries `Yibao-Request-Id`. Every error response, whether a handler's
//! [`ServiceError`] or a rejection from axum or tower (404 route, 405, 413 body limit, bad JSON), gets
//! the same JSON body with a stable code. Access logs name the route template, never the raw path,
//! because paths and queries may carry personal data.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::json::translate_rejection;
use crate::metrics::SharedMetrics;
use crate::{ErrorBody, ErrorCode, ServiceError};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "yibao-request-id";

/// With a read replica, the browser's cookie that sends its reads to the primary until the unix
/// second it holds: set on every write a browser makes, so a clerk's next pages show their change.
pub const READ_PRIMARY_COOKIE: &str = "yibao_read_primary_until";
/// A request header with which an API client asks for every read on the primary
/// (`Yibao-Read: primary`), e.g. to list what it has just written.
pub const READ_HEADER: &str = "yibao-read";

/// The request id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives the request its id, runs it inside a `request` span carrying that id (so every log line
/// the request causes names it), renders errors, logs the access line and counts the request in
/// the metrics by route template and status.
pub async fn request_id_and_errors(
    State(metrics): State<SharedMetrics>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %id);

    async move {
        let response = next.run(request).await;
        let mut response = render_error(response, &id).await;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        // u64, so JSON logs write a number (tracing writes a u128 as a string).
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        metrics.observe_request(method.as_str(), &route, status, elapsed);
        if status >= 500 {
            tracing::warn!(%method, route, status, elapsed_ms, "request failed");
        } else {
            tracing::info!(%method, route, status, elapsed_ms, "request");
        }
        response
    }
    .instrument(span)
    .await
}

/// Marks a response whose error body is already rendered (by the channel layer, before signing).
#[derive(Debug, Clone, Copy)]
pub struct RenderedError;

/// What a server-rendered page (the staff console, the citizen site) sends with every response.
pub struct PageHeaders {
    pub content_security_policy: &'static str,
    pub referrer_policy: &'static str,
    /// Pages hold personal data: never kept by the browser or a proxy (`no-store`); embedded
    /// files set their own caching.
    pub no_store: bool,
}

impl PageHeaders {
    /// Sets the page's security headers and marks it [`RenderedError`], so that the API's error
    /// middleware leaves it (an error page included) as it is.
    pub fn apply(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(self.content_security_policy),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static(self.referrer_policy),
        );
        if self.no_store {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response.extensions_mut().insert(RenderedError);
    }
}

/// Largest rejection text read to translate it (axum's are a line or two).
const MAX_REJECTION_TEXT_BYTES: usize = 16 * 1024;

/// Turns any error response into the coded JSON body; leaves successes and rendered errors alone.
/// An axum rejection (a body, query or path that did not deserialize) carries only an English
/// text: it is translated into a Chinese message naming the field ([`translate_rejection`]).
pub async fn render_error(response: Response, request_id: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<RenderedError>().is_some()
    {
        return response;
    }
    let (response, error) = match response.extensions().get::<ServiceError>() {
        Some(error) => {
            let error = error.clone();
            (response, error)
        }
        None if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY => {
            let code = code_for_status(status);
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT_BYTES)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let message =
                translate_rejection(&text).unwrap_or_else(|| code.default_message().to_owned());
            (
                Response::from_parts(parts, Body::empty()),
                ServiceError::new(code, message),
            )
        }
        None => (response, ServiceError::of(code_for_status(status))),
    };
    let body = ErrorBody {
        code: error.code.as_str().to_owned(),
        message: error.message,
        request_id: request_id.to_owned(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let rendered = Json(body).into_response();
    let (rendered_parts, rendered_body) = rendered.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        rendered_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    parts.extensions.insert(RenderedError);
    Response::from_parts(parts, Body::new(rendered_body))
}

/// Rejections that did not come from our handlers carry only a status.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::InvalidRequest,
    }
}

/// Read-your-writes with a read replica (yibao_storage::read_routing): a request that writes,
/// carries [`READ_PRIMARY_COOKIE`] still valid, or asks with [`READ_HEADER`], reads the primary
/// only. A browser's write (a request with cookies) sets the cookie for the replica's lag bound
/// plus one check interval: by then the replica has the change, or is not read at all. Without a
/// replica this does nothing.
pub async fn read_your_writes(
    State(state): State<crate::AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(replica) = state.storage.replica_state() else {
        return next.run(request).await;
    };
    let now = state.clock.now().timestamp();
    let headers = request.headers();
    let writes = !request.method().is_safe();
    let browser = headers.contains_key(header::COOKIE);
    let recent = cookie(headers, READ_PRIMARY_COOKIE)
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|until| until >= now);
    let asked = headers
        .get(READ_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"primary"));
    if !(writes || recent || asked) {
        return next.run(request).await;
    }
    let mut response = yibao_storage::read_routing::on_primary(next.run(request)).await;
    if writes && browser {
        let window = replica.max_lag.as_secs() + crate::background::TICK.as_secs() + 1;
        let until = now.saturating_add(i64::try_from(window).unwrap_or(i64::MAX));
        let value = format!(
            "{READ_PRIMARY_COOKIE}={until}; Path=/; Max-Age={window}; HttpOnly; SameSite=Strict"
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}
