//! Bank auto-debit (委托扣款): agreements, runs, the request file and the bank's result.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::routes;
use yibao_storage::settlement::{AgreementRecord, DebitRunRecord};

use crate::auth::Staff;
use crate::error::ServiceError;
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::debit;
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
    let record = debit::sign_agreement_as_staff(
        &state,
        &staff,
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
    Ok(Json(record))
}

#[derive(Deserialize)]
pub struct AgreementQuery {
    region: Option<String>,
    id_number: Option<String>,
}

/// Agreements of a region, or of one person (as payer or member).
#[utoipa::path(get, path = "/api/v1/agreements", summary = "委托扣款协议列表", tag = "settlement",
    params(("region" = Option<String>, Query, description = "统筹区代码；不填为全部统筹区（不含接入测试区）"), ("id_number" = Option<String>, Query)),
    responses((status = 200, body = [AgreementRecord]), (status = 403, body = crate::ErrorBody)))]
pub async fn list_agreements(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<AgreementQuery>,
) -> Result<Json<Vec<AgreementRecord>>, ServiceError> {
    let list = debit::list_agreements(&state, &staff, q.region, q.id_number.as_deref()).await?;
    Ok(Json(list))
}

#[derive(Deserialize)]
pub struct CancellationQuery {
    region: Option<String>,
}

/// Cancels (解约) an agreement from today; its members may sign another. A number is the
/// bank's, unique within its region only: where several regions have it, name the region.
#[utoipa::path(post, path = "/api/v1/agreements/{agreement_no}/cancellation", summary = "解除委托扣款协议", tag = "settlement",
    params(("agreement_no" = String, Path),
        ("region" = Option<String>, Query, description = "统筹区代码；不填时为本人所属统筹区，或唯一有此协议号的统筹区")),
    responses((status = 200, body = AgreementRecord), (status = 400, body = crate::ErrorBody),
        (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
        (status = 422, body = crate::ErrorBody, description = "统筹区代码不正确（INVALID_REGION）")))]
pub async fn cancel_agreement(
    State(state): State<AppState>,
    staff: Staff,
    Path(agreement_no): Path<String>,
    Query(q): Query<CancellationQuery>,
) -> Result<Json<AgreementRecord>, ServiceError> {
    let record =
        debit::cancel_agreement(&state, &staff, q.region.as_deref(), &agreement_no).await?;
    Ok(Json(record))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DebitRunRequest {
    channel_id: String,
    region: String,
    fee_year: i32,
    /// `YYYY-MM-DD`, today or later (a year at most), inside the fee year's collection window
    /// or its extension (延长期), or after them where the region accepts late payment (else 422
    /// `WINDOW_CLOSED`), and not past the year's last date (else 422 `YEAR_CLOSED`).
    debit_date: String,
}

/// Creates a debit run and locks its payables (other channels see 银行扣费进行中).
#[utoipa::path(post, path = "/api/v1/debit-runs", summary = "创建批量扣款", tag = "settlement", request_body = DebitRunRequest,
    responses((status = 200, description = "the run, and `left_out`: how many under agreement the 2025 rules keep out of it (a wait past the year's end)", body = debit::CreatedRun), (status = 409, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn create_debit_run(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<DebitRunRequest>,
) -> Result<Json<debit::CreatedRun>, ServiceError> {
    let run = debit::create_run_as_staff(
        &state,
        &staff,
        &req.channel_id,
        &req.region,
        req.fee_year,
        &req.debit_date,
    )
    .await?;
    Ok(Json(run))
}

#[derive(Deserialize)]
pub struct RegionQuery {
    region: Option<String>,
}

/// Debit runs, newest first.
#[utoipa::path(get, path = "/api/v1/debit-runs", summary = "批量扣款列表", tag = "settlement", params(("region" = Option<String>, Query, description = "统筹区代码；不填为全部统筹区（不含接入测试区）")),
    responses((status = 200, body = [DebitRunRecord])))]
pub async fn list_debit_runs(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RegionQuery>,
) -> Result<Json<Vec<DebitRunRecord>>, ServiceError> {
    Ok(Json(debit::list_runs(&state, &staff, q.region).await?))
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
    let detail = debit::run_detail(&state, &staff, &run_no, q.outcome.as_deref()).await?;
    Ok(Json(detail))
}

/// The request file for the bank (layout in docs/bank-files.md).
#[utoipa::path(get, path = "/api/v1/debit-runs/{run_no}/request-file", summary = "下载扣款请求文件", tag = "settlement",
    params(("run_no" = String, Path)), responses((status = 200, description = "text/plain; charset=utf-8"), (status = 404, body = crate::ErrorBody)))]
pub async fn debit_request_file(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
) -> Result<Response, ServiceError> {
    let file = debit::request_file_as_staff(&state, &staff, &run_no).await?;
    Ok(file.into_response())
}

/// The request file as a download named after its run (`<run_no>.req.txt`).
impl IntoResponse for debit::DebitRequestFile {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}.req.txt\"", self.run_no),
                ),
            ],
            self.bytes,
        )
            .into_response()
    }
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
    let summary = debit::import_result_as_staff(&state, &staff, &run_no, &body).await?;
    Ok(Json(summary))
}
