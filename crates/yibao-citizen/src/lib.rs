//! The citizen site (居民自助): server-rendered pages in Chinese at `/`, phone first (from 360 px
//! wide), for residents and whoever pays for them. Without signing in a resident can look up what
//! a person owes and has paid ([`lookup`]) and verify an electronic receipt ([`verify`]).
//!
//! The pages go through the same storage and the same rules as the channel protocol's public
//! routes: names and ID numbers are shown masked, an unknown person and a wrong name get the same
//! answer, and every lookup counts against its address ([`limiter`]). No script runs at all
//! (the Content-Security-Policy allows none); the only asset is our own stylesheet.

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

use axum::{Extension, Router};
use yibao_server::AppState;

pub mod account;
pub mod enrol;
pub mod limiter;
pub mod lookup;
pub mod messages;
pub mod pay;
pub mod verify;

/// The Content-Security-Policy of every page: our stylesheet and favicon only, no script at all.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Lookups and receipt checks a second from all addresses together: a ceiling against probing
/// from many addresses at once (each lookup costs three statements).
pub const LOOKUPS_PER_SECOND: i64 = 50;

/// What the site is served with: its payment provider, where its text messages go, and how its
/// cookie is marked.
#[derive(Clone, Default)]
pub struct Site {
    pub provider: pay::Provider,
    /// Sends the outbox's text messages; `None`: sign-in codes wait in the outbox (the sign-in
    /// page says that codes cannot be sent now).
    pub sender: Option<Arc<dyn messages::MessageSender>>,
    /// The demo mailbox: when set, it is also the sender and `/demo/mailbox` shows it.
    pub mailbox: Option<Arc<messages::DemoMailbox>>,
    /// Mark the session cookie `Secure` (the site is reached over HTTPS).
    pub secure_cookie: bool,
}

impl Site {
    /// The demo's and the tests' site: the simulated cashier and the demo mailbox.
    pub fn demo() -> Site {
        let mailbox = Arc::new(messages::DemoMailbox::default());
        Site {
            provider: pay::Provider::default(),
            sender: Some(mailbox.clone()),
            mailbox: Some(mailbox),
            secure_cookie: false,
        }
    }

    /// Starts the site's background work: text messages every two seconds, refunds owed handed
    /// to the payment provider every minute.
    pub fn spawn_background(&self, state: &AppState) {
        pay::spawn_refund_hand_over(state.clone(), self.provider.clone());
        if let Some(sender) = &self.sender {
            messages::spawn_delivery(state.clone(), sender.clone());
        }
    }
}

/// The site's routes (merged into the application beside the API, [`yibao_server::app_with`]),
/// as the demo serves them ([`Site::demo`]).
pub fn router() -> Router<AppState> {
    router_with(Site::demo())
}

/// The same with the site's settings given (a test holds the simulated cashier to sign
/// notifications of its own, and the mailbox to read the codes).
pub fn router_with(site: Site) -> Router<AppState> {
    let mut routes = Router::new()
        .route("/", get(lookup::form))
        .route("/lookup", get(lookup::form).post(lookup::submit))
        .route("/receipts/verify", get(verify::page))
        .route("/receipts/pdf", post(verify::payer_copy))
        .route("/pay", post(pay::start))
        .route("/cashier", get(pay::cashier).post(pay::confirm))
        .route("/cashier/renotify", post(pay::renotify))
        .route("/pay/notify/simulated", post(pay::notify))
        .route("/pay/result", get(pay::result))
        .route(
            "/signin",
            get(account::sign_in_form).post(account::request_code),
        )
        .route("/signin/verify", post(account::verify_code))
        .route("/signout", post(account::sign_out))
        .route("/account", get(account::home))
        .route("/account/family", post(account::add_member))
        .route("/account/family/remove", post(account::remove_member))
        .route("/account/pay", post(account::pay_selected))
        .route("/account/back-payments", post(account::buy_back))
        .route("/account/receipts/pdf", get(account::receipt_pdf))
        .route("/account/reminders", post(account::set_reminders))
        .route("/account/enrol", get(enrol::form).post(enrol::submit))
        .route("/assets/citizen.css", get(stylesheet))
        .route("/assets/favicon.svg", get(favicon));
    if let Some(mailbox) = &site.mailbox {
        routes = routes
            .route("/demo/mailbox", get(messages::mailbox))
            .route("/demo/mailbox/deliver", post(messages::deliver_now))
            .layer(Extension(mailbox.clone()));
    }
    routes
        .layer(Extension(limiter::AddressLimiter::default()))
        .layer(Extension(site.provider.clone()))
        .layer(Extension(site))
        .layer(axum::middleware::from_fn(security_headers))
}

const STYLESHEET: &str = include_str!("../assets/citizen.css");
const FAVICON: &str = include_str!("../assets/favicon.svg");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every response; pages (which may hold what a resident typed and what they
/// owe) are never stored by the browser or a proxy.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<SitePage>().is_none()
    {
        // A rejection of the framework's (a form or a query that did not parse, a wrong method):
        // its English text never reaches a resident.
        let message = match status {
            StatusCode::NOT_FOUND => "没有这个页面",
            StatusCode::METHOD_NOT_ALLOWED => "不支持这种操作方式，请回到页面重新操作",
            s if s.is_server_error() => "系统出错了，请稍后再试",
            _ => "请求内容有误，请回到页面重新填写",
        };
        let code = match status {
            StatusCode::NOT_FOUND => yibao_server::ErrorCode::NotFound,
            s if s.is_server_error() => yibao_server::ErrorCode::InternalError,
            _ => yibao_server::ErrorCode::InvalidRequest,
        };
        let mut page = error_page(&yibao_server::ServiceError::new(code, message));
        *page.status_mut() = status;
        response = page;
    }
    yibao_server::middleware::PageHeaders {
        content_security_policy: CONTENT_SECURITY_POLICY,
        // Not `no-referrer`: with it a browser sends `Origin: null` on our own form posts.
        referrer_policy: "same-origin",
        no_store: !is_asset,
    }
    .apply(&mut response);
    response
}

/// Marks a response the site rendered itself (a page, an error page, an asset, a redirect is not
/// an error): [`security_headers`] leaves it as it is.
#[derive(Debug, Clone, Copy)]
struct SitePage;

pub(crate) fn ours(mut response: Response) -> Response {
    response.extensions_mut().insert(SitePage);
    response
}

/// An askama template as an HTML response with `status`; a template that fails to render is
/// the error page.
pub fn render<T: askama::Template>(template: &T, status: StatusCode) -> Response {
    match template.render() {
        Ok(body) => ours((status, Html(body)).into_response()),
        Err(err) => {
            tracing::warn!(%err, "citizen site template failed to render");
            error_page(&yibao_server::ServiceError::of(
                yibao_server::ErrorCode::InternalError,
            ))
        }
    }
}

/// Fen as the site shows money: `420.00元`.
pub fn yuan(fen: i64) -> String {
    yibao_domain::Fen::new(fen).map_or_else(|_| format!("{fen}分"), |f| f.to_string())
}

/// A day as the site shows it: `2026年12月3日`.
pub fn date_zh(date: chrono::NaiveDate) -> String {
    date.format("%Y年%-m月%-d日").to_string()
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    heading: &'static str,
    message: String,
}

/// A refusal or failure of the services as a page: the Chinese message, never a JSON body.
pub fn error_page(error: &yibao_server::ServiceError) -> Response {
    let heading = match error.code {
        yibao_server::ErrorCode::RateLimited => "查询过于频繁",
        yibao_server::ErrorCode::ServiceUnavailable => "服务暂时不可用",
        yibao_server::ErrorCode::InternalError => "系统出错了",
        _ => "无法办理",
    };
    let page = ErrorPage {
        heading,
        message: error.message.clone(),
    };
    let status = error.code.status();
    ours(match askama::Template::render(&page) {
        Ok(body) => (status, Html(body)).into_response(),
        Err(_) => (status, Html("<!DOCTYPE html><title>出错</title>系统出错了")).into_response(),
    })
}

/// The client's address as the rest of yibao takes it ([`yibao_server::auth::client_address`]).
pub fn client_address(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: &HeaderMap,
) -> String {
    yibao_server::auth::client_address(
        peer.map(|p| (p.0).0),
        headers,
        state.client_address_header.as_ref(),
    )
}

/// Counts one lookup of `address` and one against all addresses together: the refusal as a page
/// when either is over its limit, `None` when the lookup may go ahead.
pub fn refusal_over_limit(
    state: &AppState,
    limiter: &limiter::AddressLimiter,
    address: &str,
) -> Option<Response> {
    let message = match limiter.take(address, state.clock.now().timestamp()) {
        limiter::Verdict::Allowed
            if state.rate_limiter.allow("\u{0}citizen", LOOKUPS_PER_SECOND) =>
        {
            return None
        }
        limiter::Verdict::TooMany => "查询过于频繁，请1分钟后再试",
        _ => "查询的人较多，请稍后再试",
    };
    Some(error_page(&yibao_server::ServiceError::new(
        yibao_server::ErrorCode::RateLimited,
        message,
    )))
}
