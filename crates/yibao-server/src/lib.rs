//! The yibao server: the services (use cases shared by the HTTP API, the console and the command
//! line, [`services`]), the HTTP API by audience ([`public`], [`admin`], [`settlement`],
//! [`channel`]), assembled by [`http::app`] over any [`Storage`]; [`serve`] runs it on a listener
//! handed in, so tests and benchmarks bind `127.0.0.1:0`.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use yibao_storage::Storage;

pub mod admin;
pub mod assets;
pub mod auth;
pub mod background;
pub mod channel;
pub mod clock;
pub mod error;
pub mod export;
pub mod http;
pub mod json;
pub mod metrics;
pub mod middleware;
pub mod public;
pub mod receipts;
pub mod services;
pub mod settlement;
pub mod staff_answers;

pub use clock::Clock;
pub use error::{ErrorCode, ServiceError};
pub use http::error::ErrorBody;
pub use http::openapi::openapi_document;
pub use http::{app, app_with, standalone, ServerSettings, DEFAULT_BODY_LIMIT_BYTES};

/// What every handler can reach ([`AppStateInner`]'s fields, through `Deref`). axum clones the
/// state for every middleware and extractor of every request, so a clone is one reference count
/// (it was a copy of every field: a score of reference counts and an allocation, about 4 % of
/// the server's CPU per search). Setting a field (`DerefMut`) changes this handle's copy only,
/// as it did when each clone was a copy: set them before the state is handed out.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateInner {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct AppStateInner {
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
    pub fee_policies: Arc<
        yibao_storage::memo::MemoCache<
            (yibao_domain::RegionCode, yibao_domain::FeeYear),
            Option<yibao_domain::FeePolicy>,
        >,
    >,
    /// Regions' working calendars as payment reports and reversals count refunds' due dates by
    /// them, kept for [`yibao_storage::memo::CALENDAR_CACHE_TTL`] and forgotten when changed
    /// through this server.
    pub calendars: Arc<
        yibao_storage::memo::MemoCache<yibao_domain::RegionCode, yibao_domain::WorkingCalendar>,
    >,
    /// Group commit of channel nonces; `None` commits each nonce on its own.
    pub nonce_writer: Option<channel::nonces::NonceWriter>,
    /// Payment reports' reads gathered into rounds; `None` reads each report's on its own.
    pub payable_reader: Option<channel::reads::PayableReader>,
    /// Channels' searches gathered into rounds; `None` reads each search on its own.
    pub search_reader: Option<channel::reads::SearchReader>,
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
        AppState(Arc::new(AppStateInner {
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
            payable_reader: None,
            search_reader: None,
            fee_policies: Arc::new(yibao_storage::memo::MemoCache::new(
                yibao_storage::memo::FEE_POLICY_CACHE_TTL,
                yibao_storage::memo::FEE_POLICY_CACHE_MAX_ENTRIES,
            )),
            calendars: Arc::new(yibao_storage::memo::MemoCache::new(
                yibao_storage::memo::CALENDAR_CACHE_TTL,
                yibao_storage::memo::CALENDAR_CACHE_MAX_ENTRIES,
            )),
            public_base_url: receipts::PublicBaseUrl::default(),
            client_address_header: None,
            metrics: Arc::new(metrics::Metrics::new()),
        }))
    }
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
