//! The HTTP application: the audiences' routes put together with their body limits and the
//! layers every request passes (request id, error bodies, read-your-writes), and the errors'
//! HTTP form ([`error`]). The OpenAPI document is made from the same routes ([`openapi`]).

pub mod error;
pub(crate) mod explorer;
pub mod openapi;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::{admin, channel, metrics, middleware, public, services, settlement, AppState};

/// Routes declared once, for the router and the OpenAPI document together (`utoipa_axum::routes!`
/// over each handler's `#[utoipa::path]`).
pub type ApiRouter = OpenApiRouter<AppState>;

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

/// Every route of the API by how it is reached: who may call it (the layer that authenticates
/// them) and how large a body it takes. The app and the OpenAPI document are both made from this.
struct Api {
    /// Open to anyone, the default body limit: health, this document, teller checks, regions.
    open: ApiRouter,
    /// Open to anyone behind one shared rate limit: receipt verification, paid status.
    public: ApiRouter,
    /// Staff with a session (each handler checks the role in [`crate::auth`]), the default limit.
    staff: ApiRouter,
    /// Staff uploads, each with a body limit of its own.
    staff_uploads: [(ApiRouter, usize); 3],
    /// Signed channel requests, up to [`channel::auth::MAX_CHANNEL_BODY_BYTES`].
    channel: ApiRouter,
    /// `/metrics`, served here or on a listener of its own.
    metrics: ApiRouter,
}

impl Api {
    fn new() -> Api {
        Api {
            open: public::routes().merge(explorer::routes()),
            public: public::rate_limited_routes(),
            staff: admin::routes().merge(settlement::routes()),
            staff_uploads: [
                (
                    admin::rosters::upload_routes(),
                    admin::ROSTER_UPLOAD_LIMIT_BYTES,
                ),
                (
                    settlement::reconciliation::upload_routes(),
                    services::reconciliation::MAX_STATEMENT_BYTES,
                ),
                (
                    settlement::debit::upload_routes(),
                    services::debit::MAX_DEBIT_FILE_BYTES,
                ),
            ],
            channel: channel::routes(),
            metrics: metrics::routes(),
        }
    }

    /// All the routes' operations, for [`openapi::openapi_document`].
    fn into_openapi(self) -> utoipa::openapi::OpenApi {
        let Api {
            open,
            public,
            staff,
            staff_uploads,
            channel,
            metrics,
        } = self;
        let mut all = open
            .merge(public)
            .merge(staff)
            .merge(channel)
            .merge(metrics);
        for (uploads, _) in staff_uploads {
            all = all.merge(uploads);
        }
        all.into_openapi()
    }
}

/// A router with a body limit: larger bodies get 413 `PAYLOAD_TOO_LARGE`.
fn limited(routes: ApiRouter, bytes: usize) -> Router<AppState> {
    routes
        .split_for_parts()
        .0
        .layer(DefaultBodyLimit::max(bytes))
        .layer(RequestBodyLimitLayer::new(bytes))
}

/// Builds the whole application.
pub fn app(state: AppState, settings: &ServerSettings) -> Router {
    app_with(state, settings, Router::new())
}

/// The application with more routes served beside the API (the staff console): they get the
/// request id and the request log; the API's JSON error bodies leave their responses alone when
/// they are marked [`middleware::RenderedError`]. `extra` sets its own body limits.
pub fn app_with(state: AppState, settings: &ServerSettings, extra: Router<AppState>) -> Router {
    let api = Api::new();
    let default_limit = settings.body_limit_bytes;
    let mut router = limited(api.open, default_limit)
        .merge(limited(api.staff, default_limit))
        .merge(limited(api.public, default_limit).route_layer(
            axum::middleware::from_fn_with_state(state.clone(), public::rate_limit),
        ))
        .merge(
            limited(api.channel, channel::auth::MAX_CHANNEL_BODY_BYTES).route_layer(
                axum::middleware::from_fn_with_state(state.clone(), channel::auth::channel_auth),
            ),
        );
    for (uploads, bytes) in api.staff_uploads {
        router = router.merge(limited(uploads, bytes));
    }
    if settings.metrics_on_main_listener {
        router = router.merge(limited(api.metrics, default_limit));
    }
    with_request_layers(
        router
            .fallback(|| async { crate::ServiceError::of(crate::ErrorCode::NotFound) })
            .merge(extra),
        state,
    )
}

/// Routes served on a listener of their own (the staff console on the internal network), with
/// the request id and log of the main application and nothing of its API.
pub fn standalone(state: AppState, routes: Router<AppState>) -> Router {
    with_request_layers(routes, state)
}

/// The layers every request passes, outermost first: the request id, the request log and the JSON
/// error bodies ([`middleware::request_id_and_errors`]), then read-your-writes.
fn with_request_layers(routes: Router<AppState>, state: AppState) -> Router {
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
