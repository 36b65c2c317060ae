//! Bank auto-debit (委托扣款): agreements, runs, the request file and the bank's result.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::routes;
use yibao_storage::records::MAX_LIST_ROWS;
use yibao_storage::settlement::{AgreementRecord, DebitRunRecord};

use super::{date_of, within};
use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::{audit, debit};
use crate::staff_answers::DebitRunDetail;
use crate::AppState;

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(sign_agreement, list_agreements))
        .routes(routes!(cancel_agreement))
        .routes(routes!(create_debit_run, list_debit_runs))
        .routes(routes!(get_debit_run))
        .routes(routes!(debit_request_file))
}

/// Bank result files: bodies up to [`debit::MAX_DEBIT_FILE_BYTES`].
pub(crate) fn upload_routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(upload_debit_result))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AgreementRequest {
    agreement_no: String,
    region: String,
    /// The bank: a channel of kind `auto_debit`.
    channel_id: String,
    payer_id_number: String,
    payer_name: String,
    /// The account number, whole or already masked; only `6222****1234` is kept.
    account: String,
    /// ID numbers debited under the agreement; the payer alone when empty.
    #[serde(default)]
    members: Vec<String>,
}

/// Signs an auto-debit agreement (委托扣款协议) for a payer alone or a family.
#[utoipa::path(post, path = "/api/v1/agreements", summary = "签订委托扣款协议", tag = "settlement", request_body = AgreementRequest,
    responses((status = 200, body = AgreementRecord), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub async fn sign_agreement(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<AgreementRequest>,
) -> Result<Json<AgreementRecord>, ServiceError> {
    let scope = staff.collection_write_scope()?;
    within(&scope, req.region.as_str())?;
    let record = debit::sign_agreement(
        state.storage.as_ref(),
        &state.clock,
        debit::AgreementInput {
            agreement_no: &req.agreement_no,
            region: &req.region,
            channel_id: &req.channel_id,
            payer_id_number: &req.payer_id_number,
            payer_name: &req.payer_name,
            account: &req.account,
            members: &req.members,
        },
    )
    .await?;
    let region = Some(record.region);
    audit(
        &state,
        &staff,
        "agreement.sign",
        region,
        &record.agreement_no,
        json!({"channel_id": record.channel_id, "members": record.members.len()}),
    )
    .await?;
    Ok(Json(record))
}

#[derive(Deserialize)]
pub struct AgreementQuery {
    region: Option<String>,
    id_number: Option<String>,
}

/// Agreements of a region, or of one person (as payer or member).
#[utoipa::path(get, path = "/api/v1/agreements", summary = "委托扣款协议列表", tag = "settlement",
    params(("region" = Option<String>, Query), ("id_number" = Option<String>, Query)),
    responses((status = 200, body = [AgreementRecord]), (status = 403, body = crate::ErrorBody)))]
pub async fn list_agreements(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<AgreementQuery>,
) -> Result<Json<Vec<AgreementRecord>>, ServiceError> {
    let scope = staff.collection_read_scope()?;
    let region = scope.or(q.region);
    let list = state
        .storage
        .agreements(region.as_deref(), q.id_number.as_deref(), MAX_LIST_ROWS)
        .await?;
    // Payers' ID numbers and names: reading them is audited.
    crate::services::audit(
        &state,
        &staff,
        "read.agreements",
        None,
        region.as_deref().unwrap_or("all"),
        serde_json::json!({ "region": region, "by_id_number": q.id_number.is_some(), "rows": list.len() }),
    )
    .await?;
    Ok(Json(list))
}

/// Cancels (解约) an agreement from today; its members may sign another.
#[utoipa::path(post, path = "/api/v1/agreements/{agreement_no}/cancellation", summary = "解除委托扣款协议", tag = "settlement",
    params(("agreement_no" = String, Path)),
    responses((status = 200, body = AgreementRecord), (status = 404, body = crate::ErrorBody)))]
pub async fn cancel_agreement(
    State(state): State<AppState>,
    staff: Staff,
    Path(agreement_no): Path<String>,
) -> Result<Json<AgreementRecord>, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let existing = state
        .storage
        .agreement(&agreement_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该委托扣款协议"))?;
    within(&scope, existing.region.as_str())?;
    let record = state
        .storage
        .cancel_agreement(&agreement_no, state.clock.today())
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该委托扣款协议"))?;
    audit(
        &state,
        &staff,
        "agreement.cancel",
        Some(record.region),
        &agreement_no,
        json!({}),
    )
    .await?;
    Ok(Json(record))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DebitRunRequest {
    channel_id: String,
    region: String,
    fee_year: i32,
    /// `YYYY-MM-DD`, today or later.
    debit_date: String,
}

/// Creates a debit run and locks its payables (other channels see 银行扣费进行中).
#[utoipa::path(post, path = "/api/v1/debit-runs", summary = "创建批量扣款", tag = "settlement", request_body = DebitRunRequest,
    responses((status = 200, body = DebitRunRecord), (status = 409, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn create_debit_run(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<DebitRunRequest>,
) -> Result<Json<DebitRunRecord>, ServiceError> {
    let scope = staff.collection_write_scope()?;
    within(&scope, req.region.as_str())?;
    let run = debit::create_run(
        state.storage.as_ref(),
        &state.clock,
        &req.channel_id,
        &req.region,
        req.fee_year,
        date_of(&req.debit_date)?,
    )
    .await?;
    audit(
        &state,
        &staff,
        "debit_run.create",
        Some(run.region),
        &run.run_no,
        json!({"items": run.item_count, "total": run.total_fen}),
    )
    .await?;
    Ok(Json(run))
}

#[derive(Deserialize)]
pub struct RegionQuery {
    region: Option<String>,
}

/// Debit runs, newest first.
#[utoipa::path(get, path = "/api/v1/debit-runs", summary = "批量扣款列表", tag = "settlement", params(("region" = Option<String>, Query)),
    responses((status = 200, body = [DebitRunRecord])))]
pub async fn list_debit_runs(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RegionQuery>,
) -> Result<Json<Vec<DebitRunRecord>>, ServiceError> {
    let region = staff.collection_read_scope()?.or(q.region);
    Ok(Json(
        state
            .storage
            .debit_runs(region.as_deref(), MAX_LIST_ROWS)
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct ItemsQuery {
    /// `pending`, `succeeded`, `failed` or `released`; all when absent.
    outcome: Option<String>,
}

/// A run with its items; `?outcome=failed` lists the people to notify.
#[utoipa::path(get, path = "/api/v1/debit-runs/{run_no}", summary = "批量扣款详情", tag = "settlement",
    params(("run_no" = String, Path), ("outcome" = Option<String>, Query)),
    responses((status = 200, body = DebitRunDetail), (status = 404, body = crate::ErrorBody)))]
pub async fn get_debit_run(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Result<Json<DebitRunDetail>, ServiceError> {
    let scope = staff.collection_read_scope()?;
    let run = state
        .storage
        .debit_run(&run_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(&scope, run.region.as_str())?;
    if let Some(o) = q.outcome.as_deref() {
        if !matches!(o, "pending" | "succeeded" | "failed" | "released") {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "outcome 应为 pending、succeeded、failed 或 released",
            ));
        }
    }
    let items = state
        .storage
        .debit_run_items(&run_no, q.outcome.as_deref(), MAX_LIST_ROWS)
        .await?;
    // The items carry payers' ID numbers and names: reading them is audited.
    crate::services::audit(
        &state,
        &staff,
        "read.debit_run",
        Some(run.region),
        &run_no,
        serde_json::json!({ "outcome": q.outcome, "rows": items.len() }),
    )
    .await?;
    Ok(Json(DebitRunDetail { run, items }))
}

/// The request file for the bank (layout in docs/bank-files.md).
#[utoipa::path(get, path = "/api/v1/debit-runs/{run_no}/request-file", summary = "下载扣款请求文件", tag = "settlement",
    params(("run_no" = String, Path)), responses((status = 200, description = "text/plain; charset=utf-8"), (status = 404, body = crate::ErrorBody)))]
pub async fn debit_request_file(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
) -> Result<Response, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let run = state
        .storage
        .debit_run(&run_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(&scope, run.region.as_str())?;
    let bytes = debit::request_file(state.storage.as_ref(), &run_no).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{run_no}.req.txt\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Imports the bank's result file for a run (layout in docs/bank-files.md).
#[utoipa::path(put, path = "/api/v1/debit-runs/{run_no}/result", summary = "导入银行扣款结果", tag = "settlement", request_body = String,
    params(("run_no" = String, Path)),
    responses((status = 200, body = debit::DebitResultSummary), (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn upload_debit_result(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
    body: Bytes,
) -> Result<Json<debit::DebitResultSummary>, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let run = state
        .storage
        .debit_run(&run_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(&scope, run.region.as_str())?;
    let summary =
        debit::import_result(state.storage.as_ref(), &state.clock, &run_no, &body).await?;
    audit(
        &state,
        &staff,
        "debit_run.result",
        Some(run.region),
        &run_no,
        json!(summary),
    )
    .await?;
    Ok(Json(summary))
}
