//! Metrics for operations at `/metrics`, in the OpenMetrics text format that Prometheus scrapes
//! (`prometheus-client`). docs/operations.md lists every metric and what its alert means.
//!
//! Requests are labelled by their route template (`/api/v1/persons/{id}`), never the raw path,
//! which may carry an ID number. Figures that need a database query (refunds, outbox, locks) are
//! refreshed by the background loop every [`REFRESH_EVERY_SECONDS`], never per scrape, so a
//! scraper cannot load the database; pool use is read from the pool itself at each scrape.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use yibao_storage::Storage;

use crate::AppState;

/// How often the background loop refreshes the figures that need a query, seconds.
pub const REFRESH_EVERY_SECONDS: i64 = 15;
/// The content type of the answer (OpenMetrics 1.0 text; Prometheus asks for it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Upper bounds of the latency buckets, seconds: from a cached answer to a statement upload.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route template, `(unmatched)` for none: bounded by the routing table.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// What a channel's payment report came to, as counted (a bounded set of label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentReportResult {
    /// Stored: every payable paid.
    Paid,
    /// Stored: some paid, the rest owed back.
    PartiallyRefunded,
    /// Stored: nothing could be applied, all of it owed back.
    RefundPending,
    /// The same request again: the first answer repeated.
    Replayed,
    /// The same transaction id with a different request.
    IdempotencyConflict,
    /// A reversal had come first.
    ReversedEarlier,
}

impl PaymentReportResult {
    pub fn label(self) -> &'static str {
        match self {
            PaymentReportResult::Paid => "paid",
            PaymentReportResult::PartiallyRefunded => "partially_refunded",
            PaymentReportResult::RefundPending => "refund_pending",
            PaymentReportResult::Replayed => "replayed",
            PaymentReportResult::IdempotencyConflict => "idempotency_conflict",
            PaymentReportResult::ReversedEarlier => "reversed_earlier",
        }
    }

    /// The result stored with a new payment (`PaymentOutcome::result`).
    pub fn of_stored(result: yibao_domain::PaymentStatus) -> PaymentReportResult {
        match result {
            yibao_domain::PaymentStatus::Paid => PaymentReportResult::Paid,
            yibao_domain::PaymentStatus::PartiallyRefunded => {
                PaymentReportResult::PartiallyRefunded
            }
            _ => PaymentReportResult::RefundPending,
        }
    }
}

/// The registry and every metric in it. One per [`AppState`].
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    payment_reports: Family<ResultLabels, Counter>,
    refunds_owed: Gauge,
    refunds_owed_fen: Gauge,
    refunds_overdue: Gauge,
    outbox_backlog: Gauge,
    outbox_dead_letters: Gauge,
    payables_locked_by_debit_runs: Gauge,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    replica_configured: Gauge,
    replica_usable: Gauge,
    replica_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    replica_pool_connections: Family<PoolLabels, Gauge>,
    sqlite_wal_bytes: Gauge,
    refreshed_at: Gauge,
    refresh_failures: Counter,
    /// When the database figures were last refreshed (unix seconds), for the background loop.
    last_refresh: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("yibao");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to the response head), by method and route template",
            Unit::Seconds,
            latency.clone(),
        );
        let payment_reports = Family::<ResultLabels, Counter>::default();
        registry.register(
            "payment_reports",
            "Channel payment reports (POST /channel/v1/payments) by result",
            payment_reports.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let refunds_owed = gauge(
            &mut registry,
            "refunds_owed",
            "Refunds not settled yet (owed, sent or failed)",
        );
        let refunds_owed_fen = gauge(
            &mut registry,
            "refunds_owed_fen",
            "Amount of the refunds not settled yet, fen",
        );
        let refunds_overdue = gauge(
            &mut registry,
            "refunds_overdue",
            "Refunds past their due date (two working days after the payment)",
        );
        let outbox_backlog = gauge(
            &mut registry,
            "outbox_backlog",
            "Applied payments not yet posted to the agency (outbox events being retried)",
        );
        let outbox_dead_letters = gauge(
            &mut registry,
            "outbox_dead_letters",
            "Outbox events that ran out of posting attempts",
        );
        let payables_locked_by_debit_runs = gauge(
            &mut registry,
            "payables_locked_by_debit_runs",
            "Payables held by bank auto-debit runs awaiting their result",
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections open in this process's pool, by state (idle or in_use)",
            pool_connections.clone(),
        );
        let pool_max = gauge(
            &mut registry,
            "db_pool_max_connections",
            "The pool's bound on connections",
        );
        let replica_configured = gauge(
            &mut registry,
            "db_replica_configured",
            "1 when a read replica is configured (read_database_url), else 0",
        );
        let replica_usable = gauge(
            &mut registry,
            "db_replica_usable",
            "1 while searches, lists and reports read the replica; 0 while they read the primary \
             (no replica, or it is unreachable, promoted or lagging past max_replica_lag_seconds)",
        );
        let replica_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "db_replica_lag",
            "How far the read replica's replay was behind the primary at the last check (every 5 s); \
             -1 when it did not answer",
            Unit::Seconds,
            replica_lag.clone(),
        );
        let replica_pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_replica_pool_connections",
            "Connections open in this process's pool to the read replica, by state (idle or in_use)",
            replica_pool_connections.clone(),
        );
        let sqlite_wal_bytes = Gauge::default();
        registry.register_with_unit(
            "sqlite_wal",
            "Size of the SQLite write-ahead log after the last housekeeping (0 on PostgreSQL)",
            Unit::Bytes,
            sqlite_wal_bytes.clone(),
        );
        let refreshed_at = Gauge::default();
        registry.register_with_unit(
            "metrics_refreshed_timestamp",
            "When the figures read from the database were last refreshed, unix time",
            Unit::Seconds,
            refreshed_at.clone(),
        );
        let refresh_failures = Counter::default();
        registry.register(
            "metrics_refresh_failures",
            "Refreshes of the database figures that failed (the database unreachable)",
            refresh_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            payment_reports,
            refunds_owed,
            refunds_owed_fen,
            refunds_overdue,
            outbox_backlog,
            outbox_dead_letters,
            payables_locked_by_debit_runs,
            pool_connections,
            pool_max,
            replica_configured,
            replica_usable,
            replica_lag,
            replica_pool_connections,
            sqlite_wal_bytes,
            refreshed_at,
            refresh_failures,
            last_refresh: AtomicI64::new(0),
        }
    }

    /// Counts one answered request. `route` is the route template, never the raw path.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_payment_report(&self, result: PaymentReportResult) {
        self.payment_reports
            .get_or_create(&ResultLabels {
                result: result.label(),
            })
            .inc();
    }

    /// The write-ahead log's size as housekeeping left it.
    pub fn set_wal_bytes(&self, bytes: u64) {
        self.sqlite_wal_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets the figures read from the database.
    pub fn set_snapshot(&self, snapshot: &yibao_storage::OperationsSnapshot, now: i64) {
        self.refunds_owed.set(snapshot.refunds_owed);
        self.refunds_owed_fen.set(snapshot.refunds_owed_fen);
        self.refunds_overdue.set(snapshot.refunds_overdue);
        self.outbox_backlog.set(snapshot.outbox_backlog);
        self.outbox_dead_letters.set(snapshot.outbox_dead_letters);
        self.payables_locked_by_debit_runs
            .set(snapshot.payables_locked_by_debit_runs);
        self.refreshed_at.set(now);
    }

    /// The pool's use, read from the pool (no query).
    fn set_pool(&self, storage: &dyn Storage) {
        let pool = storage.pool_status();
        let idle = pool.idle.min(pool.open);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(idle));
        self.pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(pool.open - idle));
        self.pool_max.set(i64::from(pool.max));
        if let Some(replica) = storage.replica_pool_status() {
            let idle = replica.idle.min(replica.open);
            self.replica_pool_connections
                .get_or_create(&PoolLabels { state: "idle" })
                .set(i64::from(idle));
            self.replica_pool_connections
                .get_or_create(&PoolLabels { state: "in_use" })
                .set(i64::from(replica.open - idle));
        }
        let replica = storage.replica_state();
        self.replica_configured.set(i64::from(replica.is_some()));
        self.replica_usable
            .set(i64::from(replica.is_some_and(|r| r.usable)));
        if let Some(replica) = replica {
            self.replica_lag
                .set(replica.lag.map_or(-1.0, |lag| lag.as_secs_f64()));
        }
    }

    /// The exposition text.
    pub fn encode(&self, storage: &dyn Storage) -> String {
        self.set_pool(storage);
        let mut text = String::with_capacity(16 * 1024);
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%err, "encoding the metrics failed");
        }
        text
    }
}

/// Refreshes the figures that need a query, at most once per [`REFRESH_EVERY_SECONDS`] (the
/// background loop calls it every tick). Returns whether it ran.
pub async fn refresh_if_due(state: &AppState, now: i64) -> bool {
    let metrics = &state.metrics;
    let last = metrics.last_refresh.load(Ordering::Relaxed);
    if now - last < REFRESH_EVERY_SECONDS
        || metrics
            .last_refresh
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return false;
    }
    refresh(state, now).await;
    true
}

/// Reads the figures from the database now.
pub async fn refresh(state: &AppState, now: i64) {
    match state.storage.operations_snapshot(state.clock.today()).await {
        Ok(snapshot) => state.metrics.set_snapshot(&snapshot, now),
        Err(err) => {
            state.metrics.refresh_failures.inc();
            tracing::warn!(%err, "refreshing the metrics failed");
        }
    }
}

/// `GET /metrics`, on the main listener or a listener of its own (configuration `metrics_listen`).
pub(crate) fn routes() -> crate::http::ApiRouter {
    crate::http::ApiRouter::new().routes(utoipa_axum::routes!(scrape))
}

/// The metrics for Prometheus.
#[utoipa::path(get, path = "/metrics", summary = "运行指标（Prometheus）", tag = "ops",
    description = "OpenMetrics text for Prometheus: requests by route and status, latency, payment reports, \
        refunds owed and overdue, the outbox, debit-run locks, the database pool and the SQLite WAL. \
        Served here unless `metrics_listen` names a listener of its own, or `off` (docs/operations.md).",
    responses((status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String)))]
pub async fn scrape(State(state): State<AppState>) -> Response {
    let text = state.metrics.encode(state.storage.as_ref());
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// The metrics alone, for a listener of their own.
pub fn app(state: AppState) -> Router {
    routes()
        .split_for_parts()
        .0
        .fallback(|| async { crate::ServiceError::of(crate::ErrorCode::NotFound) })
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::middleware::request_id_and_errors,
        ))
}

/// Shared handle.
pub type SharedMetrics = Arc<Metrics>;
