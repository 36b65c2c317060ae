//! The public API: no authentication. Health and this API's document, checks for tellers, the
//! pooling regions with their fee policies and calendars, and, behind one shared rate limit,
//! receipt verification and citizens' paid status.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use yibao_domain::{FeePolicy, FeeYear, IdNumber, InputKind, RegionCode, Sex};

use crate::channel::answers::{PaidStatusAnswer, PaidYear, VerifyAnswer};
use crate::channel::handlers::{not_found_person, wants_html};
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::receipts::masked_name;
use crate::services::collection::{payables_under_name, public_receipt_checked};
use crate::{AppState, ErrorBody, ErrorCode, ServiceError};

/// The public routes that need no rate limit of their own.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(parse_id_number))
        .routes(routes!(list_regions))
        .routes(routes!(list_fee_policies))
        .routes(routes!(working_days_after))
}

/// Requests a second to the rate-limited public routes together: enough for citizens checking one
/// at a time, too few to probe ID numbers and names or guess check codes at scale.
pub const PUBLIC_RATE_PER_SECOND: i64 = 50;

/// The routes for the public at large, behind one shared rate limit ([`rate_limit`]).
pub(crate) fn rate_limited_routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(public_verify))
        .routes(routes!(paid_status))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
    /// `sqlite` or `postgresql`.
    backend: &'static str,
    version: &'static str,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", summary = "健康检查", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ServiceError> {
    state.storage.health().await.map_err(|err| {
        tracing::warn!(%err, "health check failed");
        ServiceError::new(
            ErrorCode::ServiceUnavailable,
            "数据库暂时无法访问，请稍后重试",
        )
    })?;
    Ok(Json(Health {
        status: "ok",
        backend: state.storage.backend().name(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", summary = "接口文档（OpenAPI）", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(crate::http::openapi::served_document())
}

#[derive(Deserialize, ToSchema)]
pub struct ParseIdRequest {
    /// 18 characters (check digit or `X`/`x`), 15-digit legacy, or 17 digits typed without the `X`.
    id_number: String,
}

/// The same object `yibao id parse` prints.
#[derive(Serialize, ToSchema)]
pub struct ParsedId {
    /// 18 characters, upper-case `X`.
    pub id_number: String,
    /// `18`, `15` or `17`: the shape the input had.
    #[schema(value_type = String)]
    pub input_kind: InputKind,
    pub birth_date: NaiveDate,
    /// `male` or `female`.
    #[schema(value_type = String)]
    pub sex: Sex,
    /// The 6-digit address code where the number was issued.
    pub region_code: String,
}

impl ParsedId {
    pub fn from_parsed(parsed: yibao_domain::ParsedIdNumber) -> Self {
        let id = parsed.id_number;
        ParsedId {
            id_number: id.as_str().to_owned(),
            input_kind: parsed.input_kind,
            birth_date: id.birth_date(),
            sex: id.sex(),
            region_code: id.address_code().to_owned(),
        }
    }
}

/// Checks an ID number as a teller typed it (GB 11643-1999) and tells what it encodes.
#[utoipa::path(post, path = "/api/v1/id-numbers/parse", summary = "身份证号码校验", tag = "tools", request_body = ParseIdRequest,
    responses((status = 200, body = ParsedId),
              (status = 422, description = "`INVALID_ID_NUMBER`", body = ErrorBody)))]
pub async fn parse_id_number(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ParseIdRequest>,
) -> Result<Json<ParsedId>, ServiceError> {
    let parsed = IdNumber::parse(&request.id_number, state.clock.today())?;
    Ok(Json(ParsedId::from_parsed(parsed)))
}

#[derive(Serialize, ToSchema)]
pub struct RegionView {
    /// 6-digit GB/T 2260 code.
    code: String,
    name: String,
}

/// The pooling regions (统筹区) this installation serves.
#[utoipa::path(get, path = "/api/v1/regions", summary = "统筹区列表", tag = "regions",
    responses((status = 200, body = [RegionView])))]
pub async fn list_regions(
    State(state): State<AppState>,
) -> Result<Json<Vec<RegionView>>, ServiceError> {
    let regions = state.storage.list_regions().await?;
    Ok(Json(
        regions
            .iter()
            .map(|r| RegionView {
                code: r.code().to_string(),
                name: r.name().to_owned(),
            })
            .collect(),
    ))
}

async fn known_region(state: &AppState, region: &str) -> Result<RegionCode, ServiceError> {
    let code = RegionCode::parse(region)?;
    match state.storage.get_region(code).await? {
        Some(_) => Ok(code),
        None => Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("统筹区 {code} 未在本系统登记"),
        )),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ComponentView {
    /// `basic`, `critical_illness` or `long_term_care`.
    code: &'static str,
    name: &'static str,
    /// Fen.
    amount: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryAmountView {
    /// `adult`, `minor_not_in_school`, `student` or `newborn`.
    category: &'static str,
    category_name: &'static str,
    /// Fen: the sum of the components.
    amount: i64,
    components: Vec<ComponentView>,
}

#[derive(Serialize, ToSchema)]
pub struct WindowView {
    opens: NaiveDate,
    closes: NaiveDate,
    /// The last day of the window's extension (延长期), where the region sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    extension_until: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct FeePolicyView {
    region: String,
    fee_year: u16,
    item: &'static str,
    item_name: &'static str,
    /// The date on which age is taken to tell adults (`adult_age` and over) from minors.
    age_reference_date: NaiveDate,
    adult_age: u32,
    window: WindowView,
    late_payment_allowed: bool,
    amounts: Vec<CategoryAmountView>,
}

impl From<&FeePolicy> for FeePolicyView {
    fn from(p: &FeePolicy) -> Self {
        let item = yibao_domain::InsuranceItem::ResidentMedical;
        FeePolicyView {
            region: p.region().to_string(),
            fee_year: p.fee_year().get(),
            item: item.code(),
            item_name: item.name_zh(),
            age_reference_date: p.age_reference_date(),
            adult_age: p.adult_age(),
            window: WindowView {
                opens: p.window().opens(),
                closes: p.window().closes(),
                extension_until: p.cover_rules().waiting.extension_until,
            },
            late_payment_allowed: p.late_payment_allowed(),
            amounts: p
                .amounts()
                .map(|(category, amount)| CategoryAmountView {
                    category: category.code(),
                    category_name: category.name_zh(),
                    amount: amount.total().as_fen(),
                    components: amount
                        .components()
                        .map(|(c, a)| ComponentView {
                            code: c.code(),
                            name: c.name_zh(),
                            amount: a.as_fen(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A region's fee policies (缴费政策), one per fee year, amounts in fen.
#[utoipa::path(get, path = "/api/v1/regions/{region}/fee-policies", summary = "缴费政策列表", tag = "regions",
    params(("region" = String, Path, description = "6-digit region code")),
    responses((status = 200, body = [FeePolicyView]),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_fee_policies(
    State(state): State<AppState>,
    Path(region): Path<String>,
) -> Result<Json<Vec<FeePolicyView>>, ServiceError> {
    let code = known_region(&state, &region).await?;
    let policies = state.storage.list_fee_policies(code).await?;
    Ok(Json(policies.iter().map(FeePolicyView::from).collect()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkingDaysQuery {
    /// The start date, `YYYY-MM-DD`; it never counts itself.
    from: String,
    /// How many working days after `from` (0 to 200).
    days: u32,
}

#[derive(Serialize, ToSchema)]
pub struct WorkingDaysView {
    from: NaiveDate,
    days: u32,
    date: NaiveDate,
    /// Every year crossed had a holiday calendar. `false`: some year counted weekends alone (see
    /// `years_without_calendar`), so the date may be too early.
    calendar_complete: bool,
    years_without_calendar: Vec<i32>,
}

/// The date `days` working days after `from` by the region's holiday calendar (法定节假日 and 调休):
/// how refund due dates are set.
#[utoipa::path(get, path = "/api/v1/regions/{region}/working-days", summary = "计算工作日", tag = "regions",
    params(("region" = String, Path, description = "6-digit region code"), WorkingDaysQuery),
    responses((status = 200, body = WorkingDaysView),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn working_days_after(
    State(state): State<AppState>,
    Path(region): Path<String>,
    Query(query): Query<WorkingDaysQuery>,
) -> Result<Json<WorkingDaysView>, ServiceError> {
    let code = known_region(&state, &region).await?;
    let from = NaiveDate::parse_from_str(&query.from, "%Y-%m-%d").map_err(|_| {
        ServiceError::new(
            ErrorCode::InvalidRequest,
            "日期格式应为 YYYY-MM-DD，如 2020-11-02",
        )
    })?;
    let calendar = state.storage.working_calendar(code).await?;
    let due = calendar.add_working_days(from, query.days)?;
    Ok(Json(WorkingDaysView {
        from,
        days: query.days,
        date: due.date,
        calendar_complete: due.calendar_complete(),
        years_without_calendar: due.years_without_calendar,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    code: String,
    number: String,
    check_code: String,
}

/// § 8 Public verification, no authentication.
#[utoipa::path(get, path = "/public/receipts/verify", tag = "public", summary = "票据真伪查验", params(VerifyQuery), description = "§8 Public receipt verification. No authentication.",
    responses((status = 200, description = "valid or voided, with the masked payer", body = VerifyAnswer), (status = 303, description = "a browser (`Accept` naming `text/html` before any JSON) is sent to the citizen site's page `/receipts/verify` with the same query: the receipt's QR code prints this URL"), (status = 404, description = "`NOT_FOUND`: no such receipt, or the check code is wrong", body = crate::ErrorBody), (status = 422, description = "a malformed parameter", body = crate::ErrorBody)))]
pub async fn public_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, ServiceError> {
    if wants_html(&headers) {
        // People scanning the QR code get the page; the query is passed on as it came.
        let to = match uri.query() {
            Some(query) => format!("/receipts/verify?{query}"),
            None => "/receipts/verify".to_owned(),
        };
        return Ok((axum::http::StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response());
    }
    let receipt = public_receipt_checked(&state, &q.code, &q.number, Some(&q.check_code)).await?;
    Ok(Json(VerifyAnswer {
        payer_name_masked: masked_name(&receipt.payer_name),
        status: receipt.status.code().to_owned(),
        receipt_code: receipt.receipt_code,
        receipt_number: receipt.receipt_number,
        amount: receipt.amount_fen.as_fen(),
        date: receipt.issued_on,
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaidStatusQuery {
    id_number: String,
    name: String,
    fee_year: Option<i64>,
}

/// For citizens: have I paid? Works with 15-digit numbers too; the name must match the record.
#[utoipa::path(get, path = "/public/paid-status", tag = "public", summary = "居民缴费状态查询", params(PaidStatusQuery), description = "Citizens: have I paid? No authentication.",
    responses((status = 200, description = "the person's fee years and whether each is paid", body = PaidStatusAnswer), (status = 404, description = "`NOT_FOUND`: no such person on record under that name", body = crate::ErrorBody), (status = 422, description = "`INVALID_ID_NUMBER`, `INVALID_NAME` or another field refused", body = crate::ErrorBody)))]
pub async fn paid_status(
    State(state): State<AppState>,
    Query(q): Query<PaidStatusQuery>,
) -> Result<Json<PaidStatusAnswer>, ServiceError> {
    let id = IdNumber::parse(&q.id_number, state.clock.today())?.id_number;
    let fee_year = q
        .fee_year
        .map(FeeYear::new)
        .transpose()?
        .map(|y| i32::from(y.get()));
    let views = payables_under_name(&state, &id, &q.name, fee_year).await?;
    let Some(first) = views.first() else {
        return Err(not_found_person());
    };
    let now = state.clock.now().timestamp();
    let years: Vec<PaidYear> = views
        .iter()
        .map(|v| {
            let status = v.payable.channel_status(now);
            let status_name = match status {
                "paid" => "已缴费",
                "exempt" => "免缴",
                _ => "未缴费",
            };
            PaidYear {
                fee_year: i32::from(v.payable.fee_year.get()),
                region_name: v.region_name.clone(),
                status: if status == "locked" { "unpaid" } else { status }.to_owned(),
                status_name: status_name.to_owned(),
                amount: v.payable.amount_fen.as_fen(),
            }
        })
        .collect();
    Ok(Json(PaidStatusAnswer {
        name_masked: masked_name(&first.name),
        id_number_masked: id.masked(),
        payables: years,
    }))
}

/// The one rate limit of [`rate_limited_routes`], shared by every caller.
pub(crate) async fn rate_limit(
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
        ServiceError::new(ErrorCode::RateLimited, "查询过于频繁，请稍后再试").into_response()
    }
}
