//! The yibao HTTP server. [`app`] builds the axum router over any [`Storage`]; [`serve`] runs it on
//! a listener handed in, so tests and benchmarks bind `127.0.0.1:0`.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use yibao_storage::Storage;

pub mod accounts_api;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod background;
pub mod channel;
pub mod clock;
pub mod error;
mod explorer;
pub mod export;
pub mod json;
pub mod metrics;
pub mod middleware;
mod openapi;
pub mod receipts;
pub mod routes;
pub mod services;
pub mod settlement_api;
pub mod staff_answers;

pub use clock::Clock;
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use openapi::openapi_document;

/// Largest request body accepted unless configured otherwise (1 MiB): well above any protocol
/// request; statement uploads get their own, larger limit on their own route.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest request body, in bytes; larger requests get 413 `PAYLOAD_TOO_LARGE`.
    pub body_limit_bytes: usize,
    /// Whether `/metrics` is served on this listener (`false`: not at all, or on a listener of
    /// its own, [`metrics::app`]).
    pub metrics_on_main_listener: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            metrics_on_main_listener: true,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub clock: Clock,
    /// Seals channel secrets at rest; `None` stores them marked plain (demo only).
    pub master_key: Option<channel::secrets::MasterKey>,
    pub rate_limiter: channel::auth::RateLimiter,
    /// How long an order holds its payables.
    pub order_hold_seconds: i64,
    /// How long delivered outbox events are kept before housekeeping prunes them, seconds.
    pub delivered_events_kept_seconds: i64,
    /// The CJK font for receipt PDFs, loaded at start; `None` answers PDFs with a clear error.
    pub receipt_font: Option<Arc<yibao_receipt_pdf::ReceiptFonts>>,
    /// Fallback fonts for characters the main font lacks (rare characters of names), read from
    /// disk only for a receipt that needs them: together about 100 MB, which the server does not
    /// keep in memory for the few receipts that use them.
    pub receipt_fallback_fonts: Arc<Vec<std::path::PathBuf>>,
    /// Group commit of payment reports; `None` commits each report on its own.
    pub payment_batcher: Option<channel::batcher::PaymentBatcher>,
    /// The fee policies whose windows searches show, by region and fee year, kept for
    /// [`yibao_storage::memo::FEE_POLICY_CACHE_TTL`] and forgotten when changed through this server.
    pub fee_policies:
        Arc<yibao_storage::memo::MemoCache<(String, i32), Option<yibao_domain::FeePolicy>>>,
    /// Group commit of channel nonces; `None` commits each nonce on its own.
    pub nonce_writer: Option<channel::nonces::NonceWriter>,
    /// Where the public reaches this server: receipts print their verification URL under it.
    pub public_base_url: receipts::PublicBaseUrl,
    /// A header set by a trusted reverse proxy naming the client's address (e.g.
    /// `X-Forwarded-For`); `None` takes the socket's peer address. See [`auth::client_address`].
    pub client_address_header: Option<axum::http::HeaderName>,
    /// The metrics served at `/metrics` (and counted by the middleware and handlers).
    pub metrics: metrics::SharedMetrics,
}

impl AppState {
    /// State with defaults for everything but storage and clock.
    pub fn new(storage: Arc<dyn Storage>, clock: Clock) -> AppState {
        AppState {
            storage,
            clock,
            master_key: None,
            rate_limiter: channel::auth::RateLimiter::default(),
            order_hold_seconds: channel::DEFAULT_ORDER_HOLD_SECONDS,
            delivered_events_kept_seconds: background::DEFAULT_DELIVERED_EVENTS_KEPT_DAYS * 86_400,
            receipt_font: None,
            receipt_fallback_fonts: Arc::new(Vec::new()),
            payment_batcher: None,
            nonce_writer: None,
            fee_policies: Arc::new(yibao_storage::memo::MemoCache::new(
                yibao_storage::memo::FEE_POLICY_CACHE_TTL,
                yibao_storage::memo::FEE_POLICY_CACHE_MAX_ENTRIES,
            )),
            public_base_url: receipts::PublicBaseUrl::default(),
            client_address_header: None,
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

/// Builds the whole application.
pub fn app(state: AppState, settings: &ServerSettings) -> Router {
    app_with(state, settings, Router::new())
}

/// The application with more routes served beside the API (the staff console): they get the
/// request id and the request log; the API's JSON error bodies leave their responses alone when
/// they are marked [`middleware::RenderedError`]. `extra` sets its own body limits.
pub fn app_with(state: AppState, settings: &ServerSettings, extra: Router<AppState>) -> Router {
    let limit = settings.body_limit_bytes;
    let small = routes::router()
        .merge(admin::router())
        .merge(accounts_api::router())
        .merge(settlement_api::router())
        .merge(receipts::router())
        .merge(explorer::router())
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit));
    let channel = channel::router(state.clone())
        .merge(channel::public_router(state.clone()))
        .layer(DefaultBodyLimit::max(channel::auth::MAX_CHANNEL_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(
            channel::auth::MAX_CHANNEL_BODY_BYTES,
        ));
    let uploads = admin::upload_router()
        .layer(DefaultBodyLimit::max(admin::ROSTER_UPLOAD_LIMIT_BYTES))
        .layer(RequestBodyLimitLayer::new(admin::ROSTER_UPLOAD_LIMIT_BYTES));
    let settlement_uploads = settlement_api::statement_upload_router()
        .layer(DefaultBodyLimit::max(
            services::reconciliation::MAX_STATEMENT_BYTES,
        ))
        .layer(RequestBodyLimitLayer::new(
            services::reconciliation::MAX_STATEMENT_BYTES,
        ))
        .merge(
            settlement_api::debit_upload_router()
                .layer(DefaultBodyLimit::max(services::debit::MAX_DEBIT_FILE_BYTES))
                .layer(RequestBodyLimitLayer::new(
                    services::debit::MAX_DEBIT_FILE_BYTES,
                )),
        );
    let small = if settings.metrics_on_main_listener {
        small.merge(metrics::router())
    } else {
        small
    };
    let metrics = state.metrics.clone();
    small
        .merge(uploads)
        .merge(settlement_uploads)
        .merge(channel)
        .merge(extra)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::read_your_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::request_id_and_errors,
        ))
}

/// Routes served on a listener of their own (the staff console on the internal network), with
/// the request id and log of the main application and nothing of its API.
pub fn standalone(state: AppState, routes: Router<AppState>) -> Router {
    let metrics = state.metrics.clone();
    routes
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::read_your_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::request_id_and_errors,
        ))
}

/// Serves `app` on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address reaches handlers as `ConnectInfo` (sign-in throttling, audit).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
