//! The OpenAPI document served at `/openapi.json`.

use utoipa::OpenApi;

use crate::{admin, channel, routes, settlement_api};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "yibao",
        description = "城乡居民基本医疗保险费征缴平台 (urban-rural resident basic medical insurance contributions). \
            Amounts are integers in fen. Every response carries `Yibao-Request-Id`; every error is \
            `{\"code\", \"message\", \"request_id\"}` with a stable code and a Chinese message.",
    ),
    paths(
        routes::healthz,
        routes::openapi_json,
        routes::parse_id_number,
        routes::list_regions,
        routes::list_fee_policies,
        routes::working_days_after,
        admin::sign_in,
        admin::sign_out,
        admin::add_staff,
        admin::roster_template,
        admin::upload_roster,
        admin::get_person,
        admin::put_person,
        admin::person_history,
        admin::assess,
        admin::reassess,
        admin::standing,
        admin::paid_listing,
        admin::audit_log,
        admin::put_region,
        admin::put_fee_policy,
        admin::put_calendar,
        admin::overdue_refunds,
        admin::unposted,
        settlement_api::sign_agreement,
        settlement_api::list_agreements,
        settlement_api::cancel_agreement,
        settlement_api::create_debit_run,
        settlement_api::list_debit_runs,
        settlement_api::get_debit_run,
        settlement_api::debit_request_file,
        settlement_api::upload_debit_result,
        settlement_api::upload_statement,
        settlement_api::put_channel_only_policy,
        settlement_api::reconciliation_items,
        settlement_api::resolve_item,
        settlement_api::refund_payable,
        settlement_api::list_refunds,
        settlement_api::retry_refund,
        settlement_api::report_daily_collection,
        settlement_api::report_refunds,
        settlement_api::report_reconciliation,
        channel::handlers::search,
        channel::handlers::open_order,
        channel::handlers::cancel_order,
        channel::handlers::report_payment,
        channel::handlers::payment_status,
        channel::handlers::reverse,
        channel::handlers::pending_refunds,
        channel::handlers::refund_result,
        channel::handlers::statement,
        channel::handlers::search_receipts,
        channel::handlers::get_receipt,
        channel::handlers::public_verify,
        channel::handlers::paid_status,
    ),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "ops", description = "Health and this document"),
        (name = "tools", description = "Checks for tellers and clerks"),
        (name = "regions", description = "Pooling regions (统筹区), fee policies and working-day calendars"),
        (name = "channel", description = "Channel protocol v1 (shared/spec/channel-protocol.md): every request signed with \
            Yibao-Channel, Yibao-Timestamp, Yibao-Nonce and Yibao-Signature (HMAC-SHA256); responses signed the same way."),
        (name = "settlement", description = "Bank auto-debit agreements and runs (委托扣款), statement reconciliation (对账) in the \
            protocol, WeChat and Alipay formats, refunds, and staff reports (JSON or XLSX)."),
        (name = "public", description = "No authentication: receipt verification and citizens' paid status"),
        (name = "admin", description = "The agency and its service stations: staff, rosters (花名册), persons, assessment (核定), lists. \
            Bearer token from /api/v1/auth/login; station operators reach their own station only."),
    )
)]
struct ApiDoc;

pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
