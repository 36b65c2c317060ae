//! The channel protocol, version 1 (`shared/spec/channel-protocol.md`): what banks, payment
//! companies and agents call to look payables up, take money and report it.

pub mod answers;
pub mod auth;
pub mod batcher;
pub mod gathering;
pub mod handlers;
pub mod nonces;
pub mod reads;
pub mod secrets;

use utoipa_axum::routes;

use crate::http::ApiRouter;

/// Hold time of an order unless configured otherwise (protocol § 2).
pub const DEFAULT_ORDER_HOLD_SECONDS: i64 = 900;
/// Longest identifier a channel may send (`channel_order_no`, `channel_txn_id`, `refund_no` …).
pub const MAX_CHANNEL_ID_CHARS: usize = 64;
/// Refunds listed at once.
pub const MAX_REFUNDS_LISTED: usize = 1000;

/// The signed `/channel/v1` routes; every request passes [`auth::channel_auth`] first (put on in
/// [`crate::http`]).
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(handlers::search))
        .routes(routes!(handlers::open_order))
        .routes(routes!(handlers::cancel_order))
        .routes(routes!(handlers::report_payment))
        .routes(routes!(handlers::payment_status))
        .routes(routes!(handlers::reverse))
        .routes(routes!(handlers::pending_refunds))
        .routes(routes!(handlers::refund_result))
        .routes(routes!(handlers::statement))
        .routes(routes!(handlers::search_receipts))
        .routes(routes!(handlers::get_receipt))
        .routes(routes!(handlers::payer_copy))
        .routes(routes!(handlers::agent_day))
}
