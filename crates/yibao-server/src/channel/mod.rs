//! The channel protocol, version 1 (`shared/spec/channel-protocol.md`): what banks, payment
//! companies and agents call to look payables up, take money and report it.

pub mod answers;
pub mod auth;
pub mod batcher;
pub mod handlers;
pub mod nonces;
pub mod secrets;

use axum::routing::{get, post, put};
use axum::Router;

use crate::AppState;

/// Hold time of an order unless configured otherwise (protocol § 2).
pub const DEFAULT_ORDER_HOLD_SECONDS: i64 = 900;
/// Longest identifier a channel may send (`channel_order_no`, `channel_txn_id`, `refund_no` …).
pub const MAX_CHANNEL_ID_CHARS: usize = 64;
/// Refunds listed at once.
pub const MAX_REFUNDS_LISTED: usize = 1000;

/// The signed `/channel/v1` routes.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/channel/v1/payables/search", post(handlers::search))
        .route("/channel/v1/orders", post(handlers::open_order))
        .route(
            "/channel/v1/orders/{order_no}/cancel",
            post(handlers::cancel_order),
        )
        .route("/channel/v1/payments", post(handlers::report_payment))
        .route(
            "/channel/v1/payments/{channel_txn_id}",
            get(handlers::payment_status),
        )
        .route(
            "/channel/v1/payments/{channel_txn_id}/reversal",
            post(handlers::reverse),
        )
        .route("/channel/v1/refunds", get(handlers::pending_refunds))
        .route(
            "/channel/v1/refunds/{refund_no}/result",
            post(handlers::refund_result),
        )
        .route("/channel/v1/statements/{date}", put(handlers::statement))
        .route(
            "/channel/v1/receipts/search",
            post(handlers::search_receipts),
        )
        .route(
            "/channel/v1/receipts/{receipt_code}/{receipt_number}",
            get(handlers::get_receipt),
        )
        .route(
            "/channel/v1/receipts/{receipt_code}/{receipt_number}/payer-copy",
            post(handlers::payer_copy),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::channel_auth,
        ))
}

/// Requests a second to all unauthenticated routes together: enough for citizens checking one at a
/// time, too few to probe ID numbers and names or guess check codes at scale.
pub const PUBLIC_RATE_PER_SECOND: i64 = 50;

/// Unauthenticated routes for the public, behind one shared rate limit.
pub fn public_router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/public/receipts/verify", get(handlers::public_verify))
        .route("/public/paid-status", get(handlers::paid_status))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            public_rate_limit,
        ))
}

async fn public_rate_limit(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state
        .rate_limiter
        .allow("\u{0}public", PUBLIC_RATE_PER_SECOND)
    {
        next.run(request).await
    } else {
        crate::error::ApiError::new(
            crate::error::ErrorCode::RateLimited,
            "查询过于频繁，请稍后再试",
        )
        .into_response()
    }
}
