//! The staff console (征缴管理台): server-rendered pages for the agency centre, its service
//! stations, the tax office and auditors, at `/console/`.
//!
//! Every page goes through the same services and the same scope checks as the JSON API
//! ([`yibao_server::auth::Staff`]); this crate only reads forms and renders templates. Templates are
//! checked at compile time (askama); htmx and ECharts are vendored and embedded ([`assets`]); no
//! inline script runs (the Content-Security-Policy forbids it). Whether the console is served, and
//! on which listener, is the binary's configuration.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use yibao_server::AppState;

pub mod assets;
pub mod error;
pub mod jobs;
pub mod nav;
pub mod pages;
pub mod progress;
pub mod session;
pub mod view;

pub use error::PageError;
pub use session::{ConsoleUser, CookiePolicy, CsrfForm};

/// The Content-Security-Policy of every console response: our own files only, no inline script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Largest roster or statement file the console accepts (the JSON API's limits apply too).
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

/// The console's routes, all under `/console/`, to be merged into the application
/// ([`yibao_server::app_with`]).
pub fn router(policy: CookiePolicy) -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { redirect("/console/") }))
        .route("/console/", get(pages::dashboard::page))
        .route(
            "/console/login",
            get(pages::login::form).post(pages::login::submit),
        )
        .route("/console/logout", post(pages::login::logout))
        .route(
            "/console/password",
            get(pages::login::password_form).post(pages::login::password_submit),
        )
        .route("/console/persons", get(pages::persons::search))
        .route(
            "/console/persons/{region}/{id}",
            get(pages::persons::record).post(pages::persons::save),
        )
        .route(
            "/console/persons/{region}/{id}/reveal",
            post(pages::persons::reveal),
        )
        .route(
            "/console/persons/{region}/{id}/exemption",
            post(pages::persons::exemption),
        )
        .route(
            "/console/persons/{region}/{id}/reassess",
            post(pages::persons::reassess),
        )
        .route(
            "/console/persons/{region}/{id}/buy-back",
            post(pages::persons::buy_back),
        )
        .route(
            "/console/persons/{region}/{id}/family-bindings",
            post(pages::persons::family_binding),
        )
        .route(
            "/console/persons/{region}/{id}/refund",
            post(pages::persons::refund),
        )
        .route(
            "/console/persons/{region}/{id}/household",
            post(pages::households::place),
        )
        .route("/console/households", get(pages::households::page))
        .route("/console/sandbox", get(pages::sandbox::page))
        .route(
            "/console/village-agents",
            get(pages::village_agents::page).post(pages::village_agents::register),
        )
        .route(
            "/console/village-agents/hand-in",
            post(pages::village_agents::hand_in),
        )
        .route(
            "/console/village-agents/{channel}/{code}",
            get(pages::village_agents::day),
        )
        // Campaign pages (名册导入, 核定, 未缴名单): each module has its routes.
        .merge(pages::roster::routes())
        .merge(pages::assessment::routes())
        .merge(pages::unpaid::routes())
        .merge(pages::listing::routes())
        .merge(pages::desk::routes())
        .merge(pages::uninsured::routes())
        .merge(pages::applications::routes())
        .route("/console/assets/{*path}", get(assets::serve))
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(Extension(policy))
        .layer(Extension(progress::ProgressCache::default()))
        .layer(Extension(pages::roster::RosterJobs::default()))
        .layer(Extension(pages::assessment::AssessmentJobs::default()))
        .layer(axum::middleware::from_fn(finish))
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

async fn not_found() -> PageError {
    PageError::not_found("没有这个页面，请从左侧菜单进入")
}

/// Renders errors as pages or fragments, and sets the security headers of every response.
pub async fn finish(request: Request, next: Next) -> Response {
    let htmx = request.headers().contains_key("hx-request");
    let path = request
        .uri()
        .path_and_query()
        .map_or("/console/", |p| p.as_str())
        .to_owned();
    let request_id = request
        .extensions()
        .get::<yibao_server::middleware::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let is_asset = path.starts_with("/console/assets/");
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions().get::<PageError>().cloned() {
        if let PageError::Api(api) = &error {
            if api.code == yibao_server::ErrorCode::InternalError {
                tracing::warn!(request_id, code = api.code.as_str(), "console page failed");
            }
        }
        response = error::render(&error, htmx, &request_id, &path);
    } else if (response.status().is_client_error() || response.status().is_server_error())
        && !is_asset
        && response.extensions().get::<PageRendered>().is_none()
    {
        // A rejection that did not come from our handlers (a path that did not parse …).
        let error = match response.status() {
            StatusCode::NOT_FOUND => PageError::not_found("没有这个页面"),
            StatusCode::PAYLOAD_TOO_LARGE => PageError::Api(yibao_server::ServiceError::new(
                yibao_server::ErrorCode::PayloadTooLarge,
                "上传的文件过大",
            )),
            StatusCode::METHOD_NOT_ALLOWED => PageError::bad_form("不支持这种操作方式"),
            s if s.is_server_error() => PageError::Api(yibao_server::ServiceError::of(
                yibao_server::ErrorCode::InternalError,
            )),
            _ => PageError::bad_form("请求内容有误，请刷新页面后重试"),
        };
        response = error::render(&error, htmx, &request_id, &path);
    }
    yibao_server::middleware::PageHeaders {
        content_security_policy: CONTENT_SECURITY_POLICY,
        referrer_policy: "same-origin",
        no_store: !is_asset,
    }
    .apply(&mut response);
    response
}

/// Marks a page a handler rendered itself (a form shown again with its errors, with 422 or
/// 401): [`finish`] leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct PageRendered;

/// An askama template as an HTML response; a template that fails to render is an internal error.
pub fn html<T: askama::Template>(template: &T) -> Result<Response, PageError> {
    render_with_status(template, StatusCode::OK)
}

/// The same with another status (422 for a form shown again with its errors).
pub fn render_with_status<T: askama::Template>(
    template: &T,
    status: StatusCode,
) -> Result<Response, PageError> {
    match template.render() {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            response.extensions_mut().insert(PageRendered);
            Ok(response)
        }
        Err(err) => {
            tracing::warn!(%err, "console template failed to render");
            Err(PageError::Api(yibao_server::ServiceError::of(
                yibao_server::ErrorCode::InternalError,
            )))
        }
    }
}
