//! Reconciliation (对账): statements uploaded in every format, the channel-only policy, the
//! differences and their resolution.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use crate::channel::answers::StatementSummary;
use utoipa_axum::routes;
use yibao_storage::records::MAX_LIST_ROWS;
use yibao_storage::settlement::ReconciliationItem;

use super::PeriodQuery;
use crate::auth::Staff;
use crate::error::ServiceError;
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::reconciliation;
use crate::services::settlement_scope::channel_filter;
use crate::staff_answers::{ChannelOnlyPolicyAnswer, ResolutionAnswer};
use crate::AppState;

pub use crate::services::reconciliation::ResolveRequest;

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(put_channel_only_policy))
        .routes(routes!(reconciliation_items))
        .routes(routes!(resolve_item))
}

/// Statement uploads: bodies up to [`reconciliation::MAX_STATEMENT_BYTES`].
pub(crate) fn upload_routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(upload_statement))
}

#[derive(Deserialize)]
pub struct StatementQuery {
    /// `protocol` (default), `wechat` or `alipay`.
    format: Option<String>,
}

/// Uploads a channel's statement of a day in any format and reconciles it (re-uploading replaces).
#[utoipa::path(put, path = "/api/v1/statements/{channel_id}/{date}", summary = "上传渠道对账单", tag = "settlement", request_body = String,
    params(("channel_id" = String, Path), ("date" = String, Path), ("format" = Option<String>, Query)),
    responses((status = 200, description = "the reconciliation summary", body = crate::channel::answers::StatementSummary), (status = 422, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody)))]
pub async fn upload_statement(
    State(state): State<AppState>,
    staff: Staff,
    Path((channel_id, date)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
    body: Bytes,
) -> Result<Json<StatementSummary>, ServiceError> {
    let summary = reconciliation::upload_statement(
        &state,
        &staff,
        &channel_id,
        &date,
        q.format.as_deref(),
        &body,
    )
    .await?;
    Ok(Json(summary))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PolicyRequest {
    /// `refund` (owe it back) or `apply` (apply it to the order it was taken for, when found; else owe it back).
    policy: String,
}

/// What becomes of a channel's unreported money (长款): refunded, or applied to its order.
#[utoipa::path(put, path = "/api/v1/channels/{channel_id}/channel-only-policy", summary = "设置长款处理方式", tag = "settlement", request_body = PolicyRequest,
    params(("channel_id" = String, Path)), responses((status = 200, body = ChannelOnlyPolicyAnswer), (status = 404, body = crate::ErrorBody)))]
pub async fn put_channel_only_policy(
    State(state): State<AppState>,
    admin: crate::auth::Admin,
    Path(channel_id): Path<String>,
    ApiJson(req): ApiJson<PolicyRequest>,
) -> Result<Json<ChannelOnlyPolicyAnswer>, ServiceError> {
    let answer =
        reconciliation::set_channel_only_policy(&state, &admin.0, &channel_id, &req.policy).await?;
    Ok(Json(answer))
}

/// Differences found by reconciliation (short, long, mismatched, duplicated, carried, escalated).
#[utoipa::path(get, path = "/api/v1/reconciliation/items", summary = "对账差异清单", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("channel_id" = Option<String>, Query, description = "one channel; without it every channel but test channels (the sandbox's)"), ("unresolved" = Option<bool>, Query)),
    responses((status = 200, body = [ReconciliationItem]), (status = 404, body = crate::ErrorBody)))]
pub async fn reconciliation_items(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<Vec<ReconciliationItem>>, ServiceError> {
    let view = channel_filter(&state, &staff, q.channel_id.as_deref()).await?;
    let (from, to) = q.period(state.clock.today())?;
    let items = state
        .storage
        .reconciliation_items_of_region(
            q.channel_id.as_deref(),
            view.region(),
            from,
            to,
            q.unresolved,
            MAX_LIST_ROWS,
        )
        .await?;
    Ok(Json(items))
}

/// Staff close a difference by hand, saying what was done.
#[utoipa::path(post, path = "/api/v1/reconciliation/resolutions", summary = "处理对账差异", tag = "settlement", request_body = ResolveRequest,
    responses((status = 200, body = ResolutionAnswer), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody)))]
pub async fn resolve_item(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<ResolutionAnswer>, ServiceError> {
    Ok(Json(
        reconciliation::resolve_difference(&state, &staff, &req).await?,
    ))
}
