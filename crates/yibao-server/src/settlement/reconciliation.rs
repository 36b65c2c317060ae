//! Reconciliation (对账): statements uploaded in every format, the channel-only policy, the
//! differences and their resolution.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::channel::answers::StatementSummary;
use utoipa_axum::routes;
use yibao_statement_file::StatementFormat;
use yibao_storage::records::MAX_LIST_ROWS;
use yibao_storage::settlement::ReconciliationItem;

use super::{channel_filter, channel_view, date_of, ChannelView, PeriodQuery};
use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::{audit, reconciliation};
use crate::staff_answers::{ChannelOnlyPolicyAnswer, ResolutionAnswer};
use crate::AppState;

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
    let scope = staff.collection_write_scope()?;
    // A channel serving several regions sends one statement for all of them: its funds are settled
    // whole, and its 长款 belong to no region until acted on. A tax office reconciles what it
    // collects; the statement of a shared channel is the administrator's (the center that holds
    // the channel's contract), not one region's collector's, who would see and act on the others.
    if let ChannelView::Region(own) = channel_view(&state, &scope, &channel_id).await? {
        let regions = state
            .storage
            .get_channel(&channel_id)
            .await?
            .map(|c| c.regions.join("、"))
            .unwrap_or_default();
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            format!(
                "渠道 {channel_id} 同时服务多个统筹区（{regions}），其对账单涉及各统筹区的缴费和尚无归属的长款，                 须由系统管理员上传对账；统筹区 {own} 的税务征收人员可查看和处理本统筹区的对账差异"
            ),
        ));
    }
    let format = match q.format.as_deref().unwrap_or("protocol") {
        "protocol" => StatementFormat::Protocol,
        "wechat" => StatementFormat::WechatTradeBill,
        "alipay" => StatementFormat::AlipayBill,
        _ => {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "format 应为 protocol、wechat 或 alipay",
            ))
        }
    };
    let day = date_of(&date)?;
    let summary = reconciliation::reconcile(
        state.storage.as_ref(),
        &state.clock,
        reconciliation::StatementUpload {
            channel_id: &channel_id,
            day,
            format,
            bytes: &body,
        },
    )
    .await?;
    audit(
        &state,
        &staff,
        "statement.upload",
        None,
        &format!("{channel_id}/{day}"),
        json!({"format": format.as_str(), "lines": summary.lines, "superseded": summary.superseded}),
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
    if !matches!(req.policy.as_str(), "refund" | "apply") {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "policy 应为 refund 或 apply",
        ));
    }
    if !state
        .storage
        .set_channel_only_policy(&channel_id, &req.policy)
        .await?
    {
        return Err(ServiceError::new(ErrorCode::NotFound, "未找到该渠道"));
    }
    audit(
        &state,
        &admin.0,
        "channel.channel_only_policy",
        None,
        &channel_id,
        json!({"policy": req.policy}),
    )
    .await?;
    Ok(Json(ChannelOnlyPolicyAnswer {
        channel_id,
        policy: req.policy,
    }))
}

/// Differences found by reconciliation (short, long, mismatched, duplicated, carried, escalated).
#[utoipa::path(get, path = "/api/v1/reconciliation/items", summary = "对账差异清单", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("channel_id" = Option<String>, Query), ("unresolved" = Option<bool>, Query)),
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResolveRequest {
    channel_id: String,
    statement_date: String,
    channel_txn_id: String,
    class: String,
    /// What was done, e.g. `refunded_by_channel`, `applied_by_staff`, `channel_corrected`.
    resolution: String,
    note: String,
}

/// Staff close a difference by hand, saying what was done.
#[utoipa::path(post, path = "/api/v1/reconciliation/resolutions", summary = "处理对账差异", tag = "settlement", request_body = ResolveRequest,
    responses((status = 200, body = ResolutionAnswer), (status = 404, body = crate::ErrorBody), (status = 409, body = crate::ErrorBody)))]
pub async fn resolve_item(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<ResolutionAnswer>, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let view = channel_view(&state, &scope, &req.channel_id).await?;
    let day = date_of(&req.statement_date)?;
    if req.resolution.trim().is_empty()
        || req.resolution.chars().count() > 64
        || req.note.chars().count() > 500
    {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "请填写处理结果（64 字以内）和说明（500 字以内）",
        ));
    }
    let done = state
        .storage
        .resolve_reconciliation_item(
            &req.channel_id,
            view.region(),
            day,
            &req.channel_txn_id,
            &req.class,
            req.resolution.trim(),
            &req.note,
            staff.username(),
            state.clock.now().timestamp(),
        )
        .await?;
    if !done {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "未找到该未处理的对账差异",
        ));
    }
    audit(
        &state,
        &staff,
        "reconciliation.resolve",
        None,
        &format!("{}/{}/{}", req.channel_id, day, req.channel_txn_id),
        json!({"class": req.class, "resolution": req.resolution}),
    )
    .await?;
    Ok(Json(ResolutionAnswer { resolved: true }))
}
