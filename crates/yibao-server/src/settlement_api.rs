//! The admin API of settlement: auto-debit agreements and runs, statement uploads in every format,
//! reconciliation differences and their resolution, refunds, and the staff reports (JSON or XLSX).
//!
//! Who may do what: the center administrator everything; a tax collector (税务征收) the collection
//! work of their own region; an auditor reads. Station operators have no part in collection. A
//! channel serving several regions sends one statement for all: the administrator uploads it, and a
//! tax collector sees and resolves their own region's differences of it only.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde_json::{json, Value};
use yibao_domain::settlement::RefundReason;
use yibao_domain::RegionCode;
use yibao_statement_file::StatementFormat;
use yibao_storage::collection::RefundState;
use yibao_storage::records::MAX_LIST_ROWS;
use yibao_storage::settlement::{AgreementRecord, DebitRunRecord, ReconciliationItem};
use yibao_storage::Role;

use crate::admin::{audit, collection_reader};
use crate::auth::Staff;
use crate::error::{ApiError, ErrorCode};
use crate::json::ApiJson;
use crate::services::{debit, reconciliation, refunds};
use crate::staff_answers::{
    ChannelOnlyPolicyAnswer, DailyCollectionReport, DebitRunDetail, ReconciledStatement,
    ReconciliationReport, RefundsReport, ResolutionAnswer,
};
use crate::AppState;

/// Longest period a report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 366;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/agreements",
            post(sign_agreement).get(list_agreements),
        )
        .route(
            "/api/v1/agreements/{agreement_no}/cancellation",
            post(cancel_agreement),
        )
        .route(
            "/api/v1/debit-runs",
            post(create_debit_run).get(list_debit_runs),
        )
        .route("/api/v1/debit-runs/{run_no}", get(get_debit_run))
        .route(
            "/api/v1/debit-runs/{run_no}/request-file",
            get(debit_request_file),
        )
        .route(
            "/api/v1/channels/{channel_id}/channel-only-policy",
            put(put_channel_only_policy),
        )
        .route("/api/v1/reconciliation/items", get(reconciliation_items))
        .route("/api/v1/reconciliation/resolutions", post(resolve_item))
        .route("/api/v1/payables/{payable_id}/refund", post(refund_payable))
        .route("/api/v1/refunds", get(list_refunds))
        .route("/api/v1/refunds/{refund_no}/retry", post(retry_refund))
        .route(
            "/api/v1/reports/daily-collection",
            get(report_daily_collection),
        )
        .route("/api/v1/reports/refunds", get(report_refunds))
        .route("/api/v1/reports/reconciliation", get(report_reconciliation))
}

/// Statement uploads: bodies up to [`reconciliation::MAX_STATEMENT_BYTES`].
pub fn statement_upload_router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/statements/{channel_id}/{date}",
        put(upload_statement),
    )
}

/// Bank result files: bodies up to [`debit::MAX_DEBIT_FILE_BYTES`].
pub fn debit_upload_router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/debit-runs/{run_no}/result",
        put(upload_debit_result),
    )
}

/// The region a collection clerk works in: every region for the administrator, their own for a
/// tax collector; nobody else changes collection data.
fn collection_writer(staff: &Staff) -> Result<Option<String>, ApiError> {
    match staff.role() {
        Role::Admin => Ok(None),
        Role::TaxCollector => Ok(staff.0.region.map(|r| r.to_string())),
        Role::StationOperator | Role::Auditor => Err(ApiError::of(ErrorCode::Forbidden)),
    }
}

fn within(scope: &Option<String>, region: &str) -> Result<(), ApiError> {
    match scope {
        Some(own) if own != region => Err(ApiError::of(ErrorCode::Forbidden)),
        _ => Ok(()),
    }
}

/// A business date: `YYYY-MM-DD` in the years a fee year can have (2000 to 2100).
fn date_of(text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "日期应为 2000 至 2100 年间的 YYYY-MM-DD",
            )
        })
}

/// What of a channel's reconciliation a clerk sees and acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChannelView {
    /// All of it: the administrator (or an auditor reading), or a tax collector of the one region
    /// the channel serves.
    Whole,
    /// A tax collector of one of several regions a channel serves: that region's items only. The
    /// statement itself (its funds, its 长款 that belong to no region yet) is the administrator's.
    Region(String),
}

impl ChannelView {
    fn region(&self) -> Option<&str> {
        match self {
            ChannelView::Whole => None,
            ChannelView::Region(r) => Some(r),
        }
    }
}

/// A tax collector works on the channels that serve their region (403 otherwise); on a channel
/// that serves other regions too, on their own region's items only.
async fn channel_view(
    state: &AppState,
    scope: &Option<String>,
    channel_id: &str,
) -> Result<ChannelView, ApiError> {
    let Some(region) = scope else {
        return Ok(ChannelView::Whole);
    };
    let channel = state
        .storage
        .get_channel(channel_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "未找到该渠道"))?;
    if !channel.regions.iter().any(|r| r == region) {
        return Err(ApiError::of(ErrorCode::Forbidden));
    }
    if channel.regions.iter().all(|r| r == region) {
        Ok(ChannelView::Whole)
    } else {
        Ok(ChannelView::Region(region.clone()))
    }
}

/// The channel a tax collector's reconciliation read is limited to: they must name one that
/// serves their region; others may leave it out.
async fn channel_filter(
    state: &AppState,
    staff: &Staff,
    channel_id: Option<&str>,
) -> Result<ChannelView, ApiError> {
    let scope = collection_reader(staff)?;
    match (&scope, channel_id) {
        (Some(_), None) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "请用 channel_id 指定本统筹区的渠道",
        )),
        (_, Some(channel)) => channel_view(state, &scope, channel).await,
        (None, None) => Ok(ChannelView::Whole),
    }
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
    responses((status = 200, body = AgreementRecord), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn sign_agreement(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<AgreementRequest>,
) -> Result<Json<AgreementRecord>, ApiError> {
    let scope = collection_writer(&staff)?;
    within(&scope, &req.region)?;
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
    let region = RegionCode::parse(&record.region).ok();
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
    responses((status = 200, body = [AgreementRecord]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_agreements(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<AgreementQuery>,
) -> Result<Json<Vec<AgreementRecord>>, ApiError> {
    let scope = collection_reader(&staff)?;
    let region = scope.or(q.region);
    let list = state
        .storage
        .agreements(region.as_deref(), q.id_number.as_deref(), MAX_LIST_ROWS)
        .await?;
    // Payers' ID numbers and names: reading them is audited.
    crate::admin::audit(
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
    responses((status = 200, body = AgreementRecord), (status = 404, body = crate::error::ErrorBody)))]
pub async fn cancel_agreement(
    State(state): State<AppState>,
    staff: Staff,
    Path(agreement_no): Path<String>,
) -> Result<Json<AgreementRecord>, ApiError> {
    let scope = collection_writer(&staff)?;
    let existing = state
        .storage
        .agreement(&agreement_no)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "未找到该委托扣款协议"))?;
    within(&scope, &existing.region)?;
    let record = state
        .storage
        .cancel_agreement(&agreement_no, state.clock.today())
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "未找到该委托扣款协议"))?;
    audit(
        &state,
        &staff,
        "agreement.cancel",
        RegionCode::parse(&record.region).ok(),
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
    responses((status = 200, body = DebitRunRecord), (status = 409, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn create_debit_run(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<DebitRunRequest>,
) -> Result<Json<DebitRunRecord>, ApiError> {
    let scope = collection_writer(&staff)?;
    within(&scope, &req.region)?;
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
        RegionCode::parse(&run.region).ok(),
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
) -> Result<Json<Vec<DebitRunRecord>>, ApiError> {
    let region = collection_reader(&staff)?.or(q.region);
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
    responses((status = 200, body = DebitRunDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_debit_run(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Result<Json<DebitRunDetail>, ApiError> {
    let scope = collection_reader(&staff)?;
    let run = state
        .storage
        .debit_run(&run_no)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(&scope, &run.region)?;
    if let Some(o) = q.outcome.as_deref() {
        if !matches!(o, "pending" | "succeeded" | "failed" | "released") {
            return Err(ApiError::new(
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
    crate::admin::audit(
        &state,
        &staff,
        "read.debit_run",
        yibao_domain::RegionCode::parse(&run.region).ok(),
        &run_no,
        serde_json::json!({ "outcome": q.outcome, "rows": items.len() }),
    )
    .await?;
    Ok(Json(DebitRunDetail { run, items }))
}

/// The request file for the bank (layout in docs/bank-files.md).
#[utoipa::path(get, path = "/api/v1/debit-runs/{run_no}/request-file", summary = "下载扣款请求文件", tag = "settlement",
    params(("run_no" = String, Path)), responses((status = 200, description = "text/plain; charset=utf-8"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn debit_request_file(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
) -> Result<Response, ApiError> {
    let scope = collection_writer(&staff)?;
    let run = state
        .storage
        .debit_run(&run_no)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(&scope, &run.region)?;
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
    responses((status = 200, body = debit::DebitResultSummary), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn upload_debit_result(
    State(state): State<AppState>,
    staff: Staff,
    Path(run_no): Path<String>,
    body: Bytes,
) -> Result<Json<debit::DebitResultSummary>, ApiError> {
    let scope = collection_writer(&staff)?;
    let run = state
        .storage
        .debit_run(&run_no)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(&scope, &run.region)?;
    let summary =
        debit::import_result(state.storage.as_ref(), &state.clock, &run_no, &body).await?;
    audit(
        &state,
        &staff,
        "debit_run.result",
        RegionCode::parse(&run.region).ok(),
        &run_no,
        json!(summary),
    )
    .await?;
    Ok(Json(summary))
}

#[derive(Deserialize)]
pub struct StatementQuery {
    /// `protocol` (default), `wechat` or `alipay`.
    format: Option<String>,
}

/// Uploads a channel's statement of a day in any format and reconciles it (re-uploading replaces).
#[utoipa::path(put, path = "/api/v1/statements/{channel_id}/{date}", summary = "上传渠道对账单", tag = "settlement", request_body = String,
    params(("channel_id" = String, Path), ("date" = String, Path), ("format" = Option<String>, Query)),
    responses((status = 200, description = "the reconciliation summary", body = crate::channel::answers::StatementSummary), (status = 422, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn upload_statement(
    State(state): State<AppState>,
    staff: Staff,
    Path((channel_id, date)): Path<(String, String)>,
    Query(q): Query<StatementQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let scope = collection_writer(&staff)?;
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
        return Err(ApiError::new(
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
            return Err(ApiError::new(
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
        json!({"format": format.as_str(), "lines": summary["lines"], "superseded": summary["superseded"]}),
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
    params(("channel_id" = String, Path)), responses((status = 200, body = ChannelOnlyPolicyAnswer), (status = 404, body = crate::error::ErrorBody)))]
pub async fn put_channel_only_policy(
    State(state): State<AppState>,
    admin: crate::auth::Admin,
    Path(channel_id): Path<String>,
    ApiJson(req): ApiJson<PolicyRequest>,
) -> Result<Json<ChannelOnlyPolicyAnswer>, ApiError> {
    if !matches!(req.policy.as_str(), "refund" | "apply") {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "policy 应为 refund 或 apply",
        ));
    }
    if !state
        .storage
        .set_channel_only_policy(&channel_id, &req.policy)
        .await?
    {
        return Err(ApiError::new(ErrorCode::NotFound, "未找到该渠道"));
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

#[derive(Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    channel_id: Option<String>,
    region: Option<String>,
    /// `json` (default) or `xlsx`.
    format: Option<String>,
    /// Reconciliation items: only those not resolved yet.
    #[serde(default)]
    unresolved: bool,
}

impl PeriodQuery {
    /// The period asked for, today alone by default, at most [`MAX_REPORT_DAYS`].
    fn period(&self, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ApiError> {
        let to = self
            .to
            .as_deref()
            .map(date_of)
            .transpose()?
            .unwrap_or(today);
        let from = self.from.as_deref().map(date_of).transpose()?.unwrap_or(to);
        if from > to || to - from > Duration::days(MAX_REPORT_DAYS) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("起止日期应先后有序，且最长 {MAX_REPORT_DAYS} 天"),
            ));
        }
        Ok((from, to))
    }

    fn xlsx(&self) -> Result<bool, ApiError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("xlsx") => Ok(true),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "format 只能是 json 或 xlsx",
            )),
        }
    }
}

/// Differences found by reconciliation (short, long, mismatched, duplicated, carried, escalated).
#[utoipa::path(get, path = "/api/v1/reconciliation/items", summary = "对账差异清单", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("channel_id" = Option<String>, Query), ("unresolved" = Option<bool>, Query)),
    responses((status = 200, body = [ReconciliationItem]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn reconciliation_items(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<Vec<ReconciliationItem>>, ApiError> {
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
    responses((status = 200, body = ResolutionAnswer), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn resolve_item(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<ResolutionAnswer>, ApiError> {
    let scope = collection_writer(&staff)?;
    let view = channel_view(&state, &scope, &req.channel_id).await?;
    let day = date_of(&req.statement_date)?;
    if req.resolution.trim().is_empty()
        || req.resolution.chars().count() > 64
        || req.note.chars().count() > 500
    {
        return Err(ApiError::new(
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
        return Err(ApiError::new(
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

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PayableRefundRequest {
    /// `REASSESSED`, `EMPLOYEE_INSURANCE` or `REVERSED_AFTER_SETTLEMENT`.
    reason: String,
}

/// Refunds a paid payable through the channel that took the money (voids its receipt).
#[utoipa::path(post, path = "/api/v1/payables/{payable_id}/refund", summary = "已缴费退费", tag = "settlement", request_body = PayableRefundRequest,
    params(("payable_id" = String, Path)),
    responses((status = 200, body = RefundState), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn refund_payable(
    State(state): State<AppState>,
    admin: crate::auth::Admin,
    Path(payable_id): Path<String>,
    ApiJson(req): ApiJson<PayableRefundRequest>,
) -> Result<Json<RefundState>, ApiError> {
    let reason = RefundReason::from_code(&req.reason).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "退费原因应为 REASSESSED、EMPLOYEE_INSURANCE 或 REVERSED_AFTER_SETTLEMENT",
        )
    })?;
    let refund =
        refunds::refund_paid_payable(state.storage.as_ref(), &state.clock, &payable_id, reason)
            .await?;
    audit(&state, &admin.0, "payable.refund", None, &payable_id,
        json!({"refund_no": refund.refund_no, "reason": reason.code(), "amount": refund.amount_fen})).await?;
    Ok(Json(refund))
}

#[derive(Deserialize)]
pub struct RefundsQuery {
    /// `owed`, `sent`, `succeeded`, `failed`, `cancelled`; all when absent.
    status: Option<String>,
    region: Option<String>,
}

/// Refunds by state, oldest due first.
#[utoipa::path(get, path = "/api/v1/refunds", summary = "退费清单", tag = "settlement",
    params(("status" = Option<String>, Query), ("region" = Option<String>, Query)), responses((status = 200, body = [RefundState])))]
pub async fn list_refunds(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RefundsQuery>,
) -> Result<Json<Vec<RefundState>>, ApiError> {
    let region = collection_reader(&staff)?.or(q.region);
    let list = state
        .storage
        .refunds(q.status.as_deref(), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    Ok(Json(list))
}

/// Owes a failed refund again (the channel lists it again, with fresh attempts).
#[utoipa::path(post, path = "/api/v1/refunds/{refund_no}/retry", summary = "重新发起退费", tag = "settlement",
    params(("refund_no" = String, Path)), responses((status = 200, body = RefundState), (status = 409, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retry_refund(
    State(state): State<AppState>,
    admin: crate::auth::Admin,
    Path(refund_no): Path<String>,
) -> Result<Json<RefundState>, ApiError> {
    let staff = admin.0;
    match state.storage.rearm_refund(&refund_no).await? {
        yibao_storage::settlement::RefundRetryOutcome::Rearmed(r) => {
            audit(&state, &staff, "refund.retry", None, &refund_no, json!({})).await?;
            Ok(Json(r))
        }
        yibao_storage::settlement::RefundRetryOutcome::NotFound => {
            Err(ApiError::new(ErrorCode::NotFound, "未找到该退费"))
        }
        yibao_storage::settlement::RefundRetryOutcome::NotFailed(status) => Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            format!("只有退费失败的才能重新发起，该退费当前为“{status}”"),
        )),
    }
}

/// Region names by code, for reports.
async fn region_names(
    state: &AppState,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    Ok(state
        .storage
        .list_regions()
        .await?
        .into_iter()
        .map(|r| (r.code().to_string(), r.name().to_owned()))
        .collect())
}

/// Channel kinds in Chinese by channel id, for the channels named.
async fn channel_kinds(
    state: &AppState,
    ids: Vec<String>,
) -> Result<std::collections::HashMap<String, &'static str>, ApiError> {
    let mut kinds = std::collections::HashMap::new();
    for id in ids {
        if kinds.contains_key(&id) {
            continue;
        }
        let kind = state
            .storage
            .get_channel(&id)
            .await?
            .map_or("", |c| crate::export::channel_kind_zh(&c.kind));
        kinds.insert(id, kind);
    }
    Ok(kinds)
}

/// The scope of a report for its title and file name: `南通市（320600）` or `全部统筹区`.
fn scope_label(
    region: Option<&str>,
    names: &std::collections::HashMap<String, String>,
) -> (String, String) {
    match region {
        Some(code) => (
            crate::export::region_label(code, names.get(code).map(String::as_str)),
            code.to_owned(),
        ),
        None => ("全部统筹区".to_owned(), "all".to_owned()),
    }
}

fn period_label(from: NaiveDate, to: NaiveDate) -> String {
    if from == to {
        from.to_string()
    } else {
        format!("{from} 至 {to}")
    }
}

fn period_stem(from: NaiveDate, to: NaiveDate) -> String {
    if from == to {
        from.format("%Y%m%d").to_string()
    } else {
        format!("{}-{}", from.format("%Y%m%d"), to.format("%Y%m%d"))
    }
}

/// Warnings for staff about missing holiday calendars in the scope of a report.
async fn calendar_notes(
    state: &AppState,
    region: Option<&str>,
) -> Result<Vec<crate::services::setup::CalendarWarning>, ApiError> {
    crate::services::setup::calendar_warnings(state.storage.as_ref(), region, state.clock.today())
        .await
}

/// Collection per day, channel and region (what payments applied): `{"rows": [...], "warnings":
/// [...]}`, the warnings naming collection windows that reach into a year without a holiday calendar.
#[utoipa::path(get, path = "/api/v1/reports/daily-collection", summary = "征收日报", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("region" = Option<String>, Query), ("format" = Option<String>, Query)),
    responses((status = 200, body = DailyCollectionReport, description = "JSON, or the XLSX workbook when `format=xlsx`")))]
pub async fn report_daily_collection(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    use crate::export::{column, Cell, XlsxReport};
    let region = collection_reader(&staff)?.or(q.region.clone());
    let (from, to) = q.period(state.clock.today())?;
    let xlsx = q.xlsx()?;
    let rows = state
        .storage
        .daily_collection(from, to, region.as_deref())
        .await?;
    let warnings = calendar_notes(&state, region.as_deref()).await?;
    if !xlsx {
        return Ok(Json(DailyCollectionReport { rows, warnings }).into_response());
    }
    let names = region_names(&state).await?;
    let kinds = channel_kinds(&state, rows.iter().map(|r| r.channel_id.clone()).collect()).await?;
    let (scope, scope_code) = scope_label(region.as_deref(), &names);
    let table = rows
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.day.to_string()),
                Cell::text(&r.channel_id),
                Cell::text(kinds.get(&r.channel_id).copied().unwrap_or_default()),
                Cell::text(&r.region),
                Cell::text(names.get(&r.region).cloned().unwrap_or_default()),
                Cell::Count(r.payables),
                Cell::Yuan(r.applied_fen),
            ]
        })
        .collect();
    XlsxReport {
        file_stem: format!("daily-collection-{scope_code}-{}", period_stem(from, to)),
        file_title: format!("{scope}每日征收报表-{}", period_label(from, to)),
        sheet_name: "每日征收".to_owned(),
        title: format!("{scope} 每日征收报表 {}", period_label(from, to)),
        columns: vec![
            column("日期", 12),
            column("渠道", 16),
            column("渠道类型", 12),
            column("统筹区代码", 11),
            column("统筹区", 12),
            column("缴费笔数", 10),
            column("金额（元）", 16),
        ],
        rows: table,
        totals_label: "合计".to_owned(),
        notes: warnings
            .into_iter()
            .map(|w| format!("注意：{}", w.message))
            .collect(),
    }
    .into_response()
}

/// Refunds per day and channel (due, succeeded), with those owed and overdue now.
#[utoipa::path(get, path = "/api/v1/reports/refunds", summary = "退费报表", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("format" = Option<String>, Query)),
    responses((status = 200, body = RefundsReport, description = "JSON, or the XLSX workbook when `format=xlsx`")))]
pub async fn report_refunds(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    use crate::export::{column, Cell, XlsxReport};
    let region = collection_reader(&staff)?.or(q.region.clone());
    let (from, to) = q.period(state.clock.today())?;
    let days = state
        .storage
        .refund_days(from, to, region.as_deref())
        .await?;
    let overdue = state
        .storage
        .overdue_refunds(state.clock.today(), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    let owed = state
        .storage
        .refunds(Some("owed"), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    let failed = state
        .storage
        .refunds(Some("failed"), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    let warnings = calendar_notes(&state, region.as_deref()).await?;
    if !q.xlsx()? {
        return Ok(Json(RefundsReport {
            days,
            owed,
            failed,
            overdue,
            warnings,
        })
        .into_response());
    }
    let names = region_names(&state).await?;
    let kinds = channel_kinds(&state, days.iter().map(|r| r.channel_id.clone()).collect()).await?;
    let (scope, scope_code) = scope_label(region.as_deref(), &names);
    let table = days
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.day.to_string()),
                Cell::text(&r.channel_id),
                Cell::text(kinds.get(&r.channel_id).copied().unwrap_or_default()),
                Cell::Count(r.due),
                Cell::Yuan(r.due_fen),
                Cell::Count(r.succeeded),
                Cell::Yuan(r.succeeded_fen),
            ]
        })
        .collect();
    let mut notes: Vec<String> = warnings
        .into_iter()
        .map(|w| format!("注意：{}", w.message))
        .collect();
    let unchecked = owed
        .iter()
        .chain(&failed)
        .filter(|r| r.due_without_calendar)
        .count();
    if unchecked > 0 {
        notes.push(format!(
            "注意：{unchecked} 笔未完成的退费，到期日是在缺少节假日日历的年份里只按周末算出的，可能早于实际，请人工核对（接口中 due_without_calendar 为 true）。"
        ));
    }
    notes.push(format!(
        "当前待退费 {} 笔，退费失败 {} 笔，已逾期 {} 笔。",
        owed.len(),
        failed.len(),
        overdue.len()
    ));
    XlsxReport {
        file_stem: format!("refunds-{scope_code}-{}", period_stem(from, to)),
        file_title: format!("{scope}退费报表-{}", period_label(from, to)),
        sheet_name: "退费".to_owned(),
        title: format!("{scope} 退费报表 {}", period_label(from, to)),
        columns: vec![
            column("日期", 12),
            column("渠道", 16),
            column("渠道类型", 12),
            column("当日到期笔数", 12),
            column("到期金额（元）", 16),
            column("当日退费成功笔数", 16),
            column("成功金额（元）", 16),
        ],
        rows: table,
        totals_label: "合计".to_owned(),
        notes,
    }
    .into_response()
}

/// Statements reconciled and the differences found, with what became of them.
#[utoipa::path(get, path = "/api/v1/reports/reconciliation", summary = "对账报表", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("channel_id" = Option<String>, Query), ("format" = Option<String>, Query)),
    responses((status = 200, body = ReconciliationReport, description = "JSON, or the XLSX workbook when `format=xlsx`"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn report_reconciliation(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    use crate::export::{column, Cell, XlsxReport};
    let view = channel_filter(&state, &staff, q.channel_id.as_deref()).await?;
    let (from, to) = q.period(state.clock.today())?;
    let statements = state
        .storage
        .statements(q.channel_id.as_deref(), from, to, MAX_LIST_ROWS)
        .await?;
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
    if !q.xlsx()? {
        return Ok(Json(ReconciliationReport {
            // A shared channel's summary counts and sums every region's payments: the
            // administrator's alone.
            statements: statements
                .iter()
                .map(|s| ReconciledStatement::of(s, matches!(view, ChannelView::Whole)))
                .collect(),
            differences: items,
        })
        .into_response());
    }
    let names = region_names(&state).await?;
    let kinds = channel_kinds(&state, items.iter().map(|i| i.channel_id.clone()).collect()).await?;
    let (scope, scope_code) = match q.channel_id.as_deref() {
        Some(id) => {
            let kind = channel_kinds(&state, vec![id.to_owned()]).await?;
            (
                format!("渠道 {id}（{}）", kind.get(id).copied().unwrap_or_default()),
                id.to_owned(),
            )
        }
        None => ("全部渠道".to_owned(), "all".to_owned()),
    };
    let table = items
        .iter()
        .map(|i| {
            let class = yibao_domain::reconciliation::DifferenceClass::from_code(&i.class)
                .map_or(i.class.as_str(), |c| c.name_zh());
            let region = i.region.as_deref().unwrap_or_default();
            vec![
                Cell::text(i.statement_date.to_string()),
                Cell::text(&i.channel_id),
                Cell::text(kinds.get(&i.channel_id).copied().unwrap_or_default()),
                Cell::text(crate::export::region_label(
                    region,
                    names.get(region).map(String::as_str),
                )),
                Cell::text(&i.channel_txn_id),
                Cell::text(class),
                Cell::Yuan(i.platform_fen),
                Cell::Yuan(i.channel_fen),
                Cell::text(crate::export::item_status_zh(&i.status)),
                Cell::text(i.resolution.clone().unwrap_or_default()),
                Cell::text(i.note.clone().unwrap_or_default()),
            ]
        })
        .collect();
    XlsxReport {
        file_stem: format!("reconciliation-{scope_code}-{}", period_stem(from, to)),
        file_title: format!("{scope}对账差异报表-{}", period_label(from, to)),
        sheet_name: "对账差异".to_owned(),
        title: format!(
            "{scope} 对账差异报表 {}（对账文件 {} 份）",
            period_label(from, to),
            statements.len()
        ),
        columns: vec![
            column("对账日期", 12),
            column("渠道", 16),
            column("渠道类型", 12),
            column("统筹区", 16),
            column("交易号", 28),
            column("差异类别", 14),
            column("平台金额（元）", 14),
            column("渠道金额（元）", 14),
            column("状态", 16),
            column("处理结果", 16),
            column("说明", 30),
        ],
        rows: table,
        totals_label: format!("合计（{} 项差异）", items.len()),
        notes: Vec::new(),
    }
    .into_response()
}
