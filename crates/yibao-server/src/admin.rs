//! The admin API of the agency and its service stations: sign-in, staff, rosters, persons,
//! assessment, lists and the audit log. Every route checks the caller's role and scope.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use yibao_domain::roster::{parse_row, RosterColumn, RosterHeader};
use yibao_domain::{FeeYear, Household, IdNumber, Person, RegionCode, StationCode};
use yibao_roster_file::Limits;
use yibao_storage::records::{standing_name_zh, MAX_LIST_ROWS};
use yibao_storage::{AuditEntry, Role, StandingRow};

use crate::auth::{Admin, Staff};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::json::ApiJson;
use crate::services::assessment::{assess_region, AssessReport};
use crate::services::roster_import::{import_roster, template_csv, ImportReport, ImportScope};
use crate::services::staff::{create_staff, login, NewStaff, Password, Session};
use crate::AppState;

/// Largest roster upload over HTTP (64 MiB, about 500 000 rows); larger files go through
/// `yibao import roster` on the server.
pub const ROSTER_UPLOAD_LIMIT_BYTES: usize = 64 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(sign_in))
        .route("/api/v1/auth/logout", post(sign_out))
        .route("/api/v1/staff", post(add_staff))
        .route("/api/v1/rosters/template.csv", get(roster_template))
        .route(
            "/api/v1/regions/{region}/persons/{id_number}",
            get(get_person).put(put_person),
        )
        .route(
            "/api/v1/regions/{region}/persons/{id_number}/history",
            get(person_history),
        )
        .route(
            "/api/v1/regions/{region}/fee-years/{fee_year}/assessment",
            post(assess),
        )
        .route(
            "/api/v1/regions/{region}/fee-years/{fee_year}/persons/{id_number}/reassessment",
            post(reassess),
        )
        .route(
            "/api/v1/regions/{region}/fee-years/{fee_year}/standing",
            get(standing),
        )
        .route(
            "/api/v1/regions/{region}/fee-years/{fee_year}/paid-listing",
            get(paid_listing),
        )
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/regions/{region}", axum::routing::put(put_region))
        .route(
            "/api/v1/regions/{region}/fee-policies/{fee_year}",
            axum::routing::put(put_fee_policy),
        )
        .route(
            "/api/v1/regions/{region}/calendars/{year}",
            axum::routing::put(put_calendar),
        )
        .route("/api/v1/collection/overdue-refunds", get(overdue_refunds))
        .route("/api/v1/collection/unposted", get(unposted))
}

/// Staff who may see collection data of every region: administrators, auditors and tax collectors
/// (a tax collector's lists are limited to their region).
pub fn collection_reader(staff: &Staff) -> Result<Option<String>, ApiError> {
    match staff.role() {
        Role::Admin | Role::Auditor => Ok(None),
        Role::TaxCollector => Ok(staff.0.region.map(|r| r.to_string())),
        Role::StationOperator => Err(ApiError::of(ErrorCode::Forbidden)),
    }
}

/// Refunds owed past their due date (two working days after the payment), oldest first.
#[utoipa::path(get, path = "/api/v1/collection/overdue-refunds", summary = "逾期未退费清单", tag = "admin",
    responses((status = 200, body = [yibao_storage::collection::RefundState]), (status = 403, body = ErrorBody)))]
pub async fn overdue_refunds(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Json<Vec<yibao_storage::collection::RefundState>>, ApiError> {
    let region = collection_reader(&staff)?;
    Ok(Json(
        state
            .storage
            .overdue_refunds(state.clock.today(), region.as_deref(), MAX_LIST_ROWS)
            .await?,
    ))
}

/// Applied payments not posted to the agency (到帐) within two days.
#[utoipa::path(get, path = "/api/v1/collection/unposted", summary = "未到帐推送清单", tag = "admin",
    responses((status = 200, body = [yibao_storage::collection::OutboxEvent]), (status = 403, body = ErrorBody)))]
pub async fn unposted(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Json<Vec<yibao_storage::collection::OutboxEvent>>, ApiError> {
    let region = collection_reader(&staff)?;
    let before = state.clock.now().timestamp() - 2 * 86400;
    Ok(Json(
        state
            .storage
            .unposted_events(before, region.as_deref(), MAX_LIST_ROWS)
            .await?,
    ))
}

/// Routes with their own, larger body limit.
pub fn upload_router() -> Router<AppState> {
    Router::new().route("/api/v1/rosters", post(upload_roster))
}

fn region_of(text: &str) -> Result<RegionCode, ApiError> {
    Ok(RegionCode::parse(text)?)
}

fn year_of(year: i64) -> Result<FeeYear, ApiError> {
    Ok(FeeYear::new(year)?)
}

fn id_of(text: &str, state: &AppState) -> Result<IdNumber, ApiError> {
    Ok(IdNumber::parse(text, state.clock.today())?.id_number)
}

pub async fn audit(
    state: &AppState,
    staff: &Staff,
    action: &str,
    region: Option<RegionCode>,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .storage
        .append_audit(&AuditEntry {
            actor: staff.username().to_owned(),
            action: action.to_owned(),
            region: region.map(|r| r.to_string()),
            target: target.to_owned(),
            detail,
        })
        .await?;
    Ok(())
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// Unix seconds.
    expires_at: i64,
    username: String,
    /// `admin`, `station_operator`, `tax_collector` or `auditor`.
    role: String,
}

impl From<Session> for LoginResponse {
    fn from(s: Session) -> Self {
        LoginResponse {
            token: s.token,
            expires_at: s.expires_at,
            username: s.username,
            role: s.role.code().to_owned(),
        }
    }
}

/// Staff sign-in: a bearer token valid for 8 hours.
#[utoipa::path(post, path = "/api/v1/auth/login", summary = "工作人员登录", tag = "admin", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "`INVALID_CREDENTIALS`", body = ErrorBody),
        (status = 429, description = "`LOGIN_THROTTLED`: 5 failures for the account or 20 from the address within 15 minutes; `Retry-After` says how long to wait", body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Response> {
    let address = crate::auth::client_address(
        peer.map(|p| (p.0).0),
        &headers,
        state.client_address_header.as_ref(),
    );
    if req.username.len() > 64 || req.password.len() > 256 {
        tracing::warn!(
            address,
            "staff sign-in refused: user name or password too long"
        );
        return Err(ApiError::of(ErrorCode::InvalidCredentials).into_response());
    }
    match login(
        state.storage.as_ref(),
        &req.username,
        &req.password,
        &address,
        state.clock.now().timestamp(),
    )
    .await
    {
        Ok(session) => Ok(Json(session.into())),
        // The message says how long to wait; Retry-After says it to programs.
        Err(refused) => match refused.retry_after_seconds {
            Some(wait) => {
                Err(([(header::RETRY_AFTER, wait.to_string())], refused.error).into_response())
            }
            None => Err(refused.error.into_response()),
        },
    }
}

/// Ends the session of the token presented.
#[utoipa::path(post, path = "/api/v1/auth/logout", summary = "退出登录", tag = "admin", responses((status = 204)))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::http::StatusCode, ApiError> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        state
            .storage
            .delete_session(&crate::services::staff::token_hash(token.trim()))
            .await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct NewStaffRequest {
    username: String,
    display_name: String,
    /// `admin`, `station_operator`, `tax_collector` or `auditor`.
    role: String,
    region: Option<String>,
    station: Option<String>,
    password: String,
}

/// Creates a staff account (center administrator only).
#[utoipa::path(post, path = "/api/v1/staff", summary = "新增工作人员", tag = "admin", request_body = NewStaffRequest,
    responses((status = 201), (status = 403, body = ErrorBody), (status = 404, description = "`NOT_FOUND`: the region is not registered", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "`INVALID_REGION` or `INVALID_PERSON`: the region or station code is malformed", body = ErrorBody)))]
pub async fn add_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
    ApiJson(req): ApiJson<NewStaffRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    staff.require_admin()?;
    let role = Role::from_code(&req.role).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "角色应为 admin、station_operator、tax_collector 或 auditor",
        )
    })?;
    let new = NewStaff {
        temporary_password: true,
        username: req.username,
        display_name: req.display_name,
        role,
        region: req.region.as_deref().map(region_of).transpose()?,
        station: req.station.as_deref().map(StationCode::parse).transpose()?,
        password: Password::new(req.password)?,
    };
    create_staff(state.storage.as_ref(), new, staff.username()).await?;
    Ok(axum::http::StatusCode::CREATED)
}

/// The roster template (花名册模板): every column, one example row, UTF-8 with BOM for Excel.
#[utoipa::path(get, path = "/api/v1/rosters/template.csv", summary = "下载花名册模板", tag = "admin",
    responses((status = 200, content_type = "text/csv")))]
pub async fn roster_template(_staff: Staff) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"roster-template.csv\"",
            ),
        ],
        template_csv(),
    )
        .into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name; its extension (`.csv` or `.xlsx`) says how to read it.
    file_name: String,
    /// Enrol in this fee year instead of the earliest one whose window is open.
    fee_year: Option<i64>,
}

/// Imports a roster (花名册) sent as the request body (CSV in UTF-8 or GB18030, or XLSX), at most 64 MiB.
/// Answers the summary and every rejected row with its column and reason.
#[utoipa::path(post, path = "/api/v1/rosters", summary = "上传花名册", tag = "admin", params(UploadQuery),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn upload_roster(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    // A row may create a person or change one the uploader may change (Staff::may_change).
    let scope = ImportScope::of_staff(&staff)?;
    let fee_year = query.fee_year.map(year_of).transpose()?;
    let name = std::path::Path::new(&query.file_name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = std::path::Path::new(&name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let dir = tempfile::tempdir().map_err(|e| ApiError::internal("upload temp dir", e))?;
    let path = dir.path().join(format!("upload.{extension}"));
    std::fs::write(&path, &body).map_err(|e| ApiError::internal("upload write", e))?;
    let report = import_roster(
        state.storage.as_ref(),
        &path,
        &name,
        &scope,
        state.clock.today(),
        fee_year,
        Limits::default(),
        &|_| {},
    )
    .await?;
    Ok(Json(report))
}

#[derive(Deserialize, Serialize, ToSchema, Default)]
pub struct PersonInput {
    /// 预留姓名.
    pub name: String,
    /// `居民` (default) or `在校学生`.
    pub person_kind: Option<String>,
    /// `本地户籍` (default) or `居住证`.
    pub household: Option<String>,
    /// `YYYY-MM-DD`, with `居住证`.
    pub permit_since: Option<String>,
    pub school: Option<String>,
    pub phone: Option<String>,
    pub station: Option<String>,
    pub employee_insured: Option<bool>,
    /// `低保`, `特困`, … `资助`.
    pub relief_kind: Option<String>,
    pub certificate_name: Option<String>,
    pub certificate_number: Option<String>,
    /// `YYYY-MM-DD`.
    pub certificate_valid_until: Option<String>,
    /// Yuan with up to two decimals, only with `资助`.
    pub subsidy_yuan: Option<String>,
}

/// Validates through the same rules, and with the same messages, as a roster row.
pub(crate) fn person_from_input(
    region: &str,
    id_number: &str,
    input: &PersonInput,
    today: NaiveDate,
) -> Result<Person, ApiError> {
    person_or_problems(region, id_number, input, today).map_err(|problems| {
        let message = problems
            .iter()
            .map(|p| format!("{}：{}", p.column, p.reason))
            .collect::<Vec<_>>()
            .join("；");
        // The ID number's own code wins so tellers see the familiar one.
        let code = if problems
            .iter()
            .any(|p| p.column == RosterColumn::IdNumber.header())
        {
            ErrorCode::InvalidIdNumber
        } else {
            ErrorCode::InvalidPerson
        };
        ApiError::new(code, message)
    })
}

/// The person a form describes, or each problem by its roster column (the console shows each
/// beside its field).
pub fn person_or_problems(
    region: &str,
    id_number: &str,
    input: &PersonInput,
    today: NaiveDate,
) -> Result<Person, Vec<yibao_domain::roster::RowProblem>> {
    let columns: Vec<String> = RosterColumn::ALL
        .iter()
        .map(|c| c.header().to_owned())
        .collect();
    let header = RosterHeader::parse(&columns).map_err(|e| {
        vec![yibao_domain::roster::RowProblem {
            column: "表头",
            code: "BAD_ROSTER_HEADER",
            reason: e.to_string(),
        }]
    })?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells: Vec<String> = RosterColumn::ALL
        .iter()
        .map(|c| match c {
            RosterColumn::Name => input.name.clone(),
            RosterColumn::IdNumber => id_number.to_owned(),
            RosterColumn::Region => region.to_owned(),
            RosterColumn::PersonKind => text(&input.person_kind),
            RosterColumn::Household => text(&input.household),
            RosterColumn::PermitSince => text(&input.permit_since),
            RosterColumn::School => text(&input.school),
            RosterColumn::Phone => text(&input.phone),
            RosterColumn::Station => text(&input.station),
            RosterColumn::EmployeeInsured => {
                if input.employee_insured == Some(true) {
                    "是".into()
                } else {
                    String::new()
                }
            }
            RosterColumn::ReliefKind => text(&input.relief_kind),
            RosterColumn::CertificateName => text(&input.certificate_name),
            RosterColumn::CertificateNumber => text(&input.certificate_number),
            RosterColumn::CertificateValidUntil => text(&input.certificate_valid_until),
            RosterColumn::Subsidy => text(&input.subsidy_yuan),
        })
        .collect();
    parse_row(&header, &cells, today)
}

#[derive(Serialize, ToSchema)]
pub struct PersonView {
    region: String,
    id_number: String,
    name: String,
    household: String,
    permit_since: Option<NaiveDate>,
    school: Option<String>,
    phone: Option<String>,
    station: Option<String>,
    employee_insured: bool,
    relief_kind: Option<String>,
    certificate_valid_until: Option<NaiveDate>,
    subsidy_fen: Option<i64>,
    /// The record's version: 1 when created, +1 at every change.
    version: i64,
}

impl PersonView {
    pub fn of(p: &Person, version: i64) -> Self {
        let (household, permit_since) = match p.household {
            Household::LocalRegistration => ("本地户籍", None),
            Household::ResidencePermit { since } => ("居住证", Some(since)),
        };
        PersonView {
            region: p.region.to_string(),
            id_number: p.id_number.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            household: household.to_owned(),
            permit_since,
            school: p.school.clone(),
            phone: p.phone.as_ref().map(|x| x.as_str().to_owned()),
            station: p.station.as_ref().map(|s| s.as_str().to_owned()),
            employee_insured: p.employee_insured,
            relief_kind: p.relief.as_ref().map(|r| r.kind.name_zh().to_owned()),
            certificate_valid_until: p.relief.as_ref().map(|r| r.valid_until),
            subsidy_fen: p
                .relief
                .as_ref()
                .and_then(|r| r.subsidy)
                .map(|f| f.as_fen()),
            version,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PersonDetail {
    person: PersonView,
    /// This person's payables in every fee year, superseded ones included.
    payables: Vec<yibao_storage::PayableRecord>,
}

/// A person as the agency holds them, with their payables.
#[utoipa::path(get, path = "/api/v1/regions/{region}/persons/{id_number}", summary = "查询参保人员", tag = "admin",
    params(("region" = String, Path), ("id_number" = String, Path)),
    responses((status = 200, body = PersonDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_person(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, id_number)): Path<(String, String)>,
) -> Result<Json<PersonDetail>, ApiError> {
    let region = region_of(&region)?;
    let id = id_of(&id_number, &state)?;
    let record = crate::services::persons::read_person(&state, &staff, region, &id).await?;
    Ok(Json(PersonDetail {
        person: PersonView::of(&record.person, record.version),
        payables: record.payables,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PutPersonResponse {
    person: PersonView,
    /// `created`, `updated` or `unchanged`.
    change: String,
    /// `enrolled`, `already_enrolled`, `refused`, `kept_because_assessed` or `not_attempted`.
    enrolment: String,
    enrolment_message: Option<String>,
}

/// Registers or changes a person (with history), and enrols them in the open fee year when eligible.
#[utoipa::path(put, path = "/api/v1/regions/{region}/persons/{id_number}", summary = "登记或修改参保人员", tag = "admin", request_body = PersonInput,
    params(("region" = String, Path), ("id_number" = String, Path)),
    responses((status = 200, body = PutPersonResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_person(
    State(state): State<AppState>,
    staff: Staff,
    Path((region_text, id_number)): Path<(String, String)>,
    ApiJson(input): ApiJson<PersonInput>,
) -> Result<Json<PutPersonResponse>, ApiError> {
    let region = region_of(&region_text)?;
    let person = person_from_input(region.as_str(), &id_number, &input, state.clock.today())?;
    let saved = crate::services::persons::save_person(&state, &staff, person, "api").await?;
    Ok(Json(PutPersonResponse {
        person: PersonView::of(&saved.person, saved.version),
        change: saved.change.to_owned(),
        enrolment: saved.enrolment.to_owned(),
        enrolment_message: saved.enrolment_message,
    }))
}

/// Every version of a person's record: who changed it, when, from where, and what it became.
#[utoipa::path(get, path = "/api/v1/regions/{region}/persons/{id_number}/history", summary = "参保人员变更记录", tag = "admin",
    params(("region" = String, Path), ("id_number" = String, Path)),
    responses((status = 200, body = [yibao_storage::HistoryEntry]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn person_history(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, id_number)): Path<(String, String)>,
) -> Result<Json<Vec<yibao_storage::HistoryEntry>>, ApiError> {
    let region = region_of(&region)?;
    let id = id_of(&id_number, &state)?;
    let (person, _) = crate::services::persons::load_person(&state, &staff, region, &id).await?;
    let history = state.storage.person_history(region, &id).await?;
    audit(
        &state,
        &staff,
        "read.person_history",
        Some(region),
        &id.masked(),
        serde_json::json!({ "station": person.station.as_ref().map(StationCode::as_str), "rows": history.len() }),
    )
    .await?;
    Ok(Json(history))
}

/// Assesses a region's fee year in bulk (核定), center administrator only. Idempotent.
#[utoipa::path(post, path = "/api/v1/regions/{region}/fee-years/{fee_year}/assessment", summary = "年度核定", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path)),
    responses((status = 200, body = AssessReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn assess(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year)): Path<(String, i64)>,
) -> Result<Json<AssessReport>, ApiError> {
    staff.require_admin()?;
    let region = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let report = assess_region(
        state.storage.as_ref(),
        region,
        fee_year,
        staff.username(),
        state.clock.today(),
        &|_| {},
    )
    .await?;
    audit(
        &state,
        &staff,
        "assessment.run",
        Some(region),
        &fee_year.to_string(),
        serde_json::to_value(&report).unwrap_or_default(),
    )
    .await?;
    Ok(Json(report))
}

/// Re-assesses one person after a change: a new payable from tomorrow supersedes the current one.
/// A paid payable must be refunded first (409 `PAID_MUST_BE_REFUNDED`).
#[utoipa::path(post, path = "/api/v1/regions/{region}/fee-years/{fee_year}/persons/{id_number}/reassessment", summary = "个人重新核定", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path), ("id_number" = String, Path)),
    responses((status = 200, body = yibao_storage::PayableRecord, description = "the new payable"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reassess(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year, id_number)): Path<(String, i64, String)>,
) -> Result<Json<yibao_storage::PayableRecord>, ApiError> {
    let region = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let id = id_of(&id_number, &state)?;
    let record = crate::services::persons::reassess(&state, &staff, region, fee_year, &id).await?;
    Ok(Json(record))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StandingQuery {
    /// Limit to one service station (a station operator always sees only their own).
    station: Option<String>,
    /// `true`: the unpaid list (未缴费名单): only those enrolled and owing (`unpaid`,
    /// `not_assessed`); the paid, exempt, refused and not enrolled are left out.
    only_unpaid: Option<bool>,
    /// `json` (default) or `xlsx`.
    format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StandingView {
    station: Option<String>,
    id_number: String,
    name: String,
    /// `paid`, `unpaid`, `exempt`, `not_assessed`, `enrolment_refused`, `not_enrolled`.
    standing: String,
    /// The standing in Chinese, with the refusal reason where there is one.
    reason: String,
    amount_fen: Option<i64>,
    /// The contact phone, in full: the station calls the unpaid (reading this list is audited).
    phone: Option<String>,
}

impl From<&StandingRow> for StandingView {
    fn from(r: &StandingRow) -> Self {
        let mut reason = standing_name_zh(&r.standing).to_owned();
        if let Some(detail) = &r.detail {
            reason.push('：');
            reason.push_str(detail);
        }
        StandingView {
            station: r.station_code.clone(),
            id_number: r.id_number.clone(),
            name: r.name.clone(),
            standing: r.standing.clone(),
            reason,
            amount_fen: r.amount_fen,
            phone: r.phone.clone(),
        }
    }
}

/// Everyone of a region (or one station) with their standing in the fee year and the reason:
/// the unpaid list per station (未缴费名单), as JSON or XLSX.
#[utoipa::path(get, path = "/api/v1/regions/{region}/fee-years/{fee_year}/standing", summary = "缴费情况清单（含未缴费名单）", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path), StandingQuery),
    responses((status = 200, body = [StandingView]), (status = 403, body = ErrorBody)))]
pub async fn standing(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year)): Path<(String, i64)>,
    Query(query): Query<StandingQuery>,
) -> Result<Response, ApiError> {
    let region = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let requested = query
        .station
        .as_deref()
        .map(StationCode::parse)
        .transpose()?;
    let station = staff.station_filter(region, requested)?;
    let rows = state
        .storage
        .standing(region, fee_year, station.as_ref(), MAX_LIST_ROWS)
        .await?;
    let only_unpaid = query.only_unpaid == Some(true);
    let xlsx = match query.format.as_deref() {
        None | Some("json") => false,
        Some("xlsx") => true,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "format 只能是 json 或 xlsx",
            ))
        }
    };
    let rows: Vec<StandingRow> = rows
        .into_iter()
        .filter(|r| !only_unpaid || yibao_storage::records::standing_owes(&r.standing))
        .collect();
    // Full names, ID numbers and phones: reading them is audited (who, what, scope, how many).
    audit(
        &state,
        &staff,
        if only_unpaid {
            "read.unpaid_list"
        } else {
            "read.standing"
        },
        Some(region),
        &fee_year.to_string(),
        serde_json::json!({
            "station": station.as_ref().map(StationCode::as_str),
            "format": if xlsx { "xlsx" } else { "json" },
            "rows": rows.len(),
        }),
    )
    .await?;
    if xlsx {
        let region_name = state
            .storage
            .get_region(region)
            .await?
            .map(|r| r.name().to_owned());
        return crate::export::standing_report(
            &rows,
            region.as_str(),
            region_name.as_deref(),
            fee_year,
            station.as_ref(),
            only_unpaid,
            state.clock.today(),
        )
        .into_response();
    }
    let views: Vec<StandingView> = rows.iter().map(StandingView::from).collect();
    Ok(Json(views).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListingQuery {
    station: Option<String>,
}

/// A printable public listing of the paid (缴费公示) per community, names and ID numbers masked.
#[utoipa::path(get, path = "/api/v1/regions/{region}/fee-years/{fee_year}/paid-listing", summary = "已缴费公示名单", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path), ListingQuery),
    responses((status = 200, content_type = "text/html"), (status = 403, body = ErrorBody)))]
pub async fn paid_listing(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year)): Path<(String, i64)>,
    Query(query): Query<ListingQuery>,
) -> Result<Html<String>, ApiError> {
    let region = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let requested = query
        .station
        .as_deref()
        .map(StationCode::parse)
        .transpose()?;
    let station = staff.station_filter(region, requested)?;
    let region_name = state
        .storage
        .get_region(region)
        .await?
        .map(|r| r.name().to_owned())
        .unwrap_or_else(|| region.to_string());
    let rows = state
        .storage
        .standing(region, fee_year, station.as_ref(), MAX_LIST_ROWS)
        .await?;
    let today = state.clock.today();
    audit(
        &state,
        &staff,
        "read.paid_listing",
        Some(region),
        &fee_year.to_string(),
        serde_json::json!({
            "station": station.as_ref().map(StationCode::as_str),
            "rows": rows.iter().filter(|r| r.standing == "paid").count(),
            "masked": true,
        }),
    )
    .await?;
    Ok(Html(crate::export::paid_listing_html(
        &region_name,
        fee_year,
        station.as_ref(),
        &rows,
        today,
    )))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many, newest first (1 to 1000; default 100).
    limit: Option<usize>,
    /// Only this actor (user name), exactly.
    actor: Option<String>,
    /// Only actions beginning with this, e.g. `read.` (at most 64 characters).
    action: Option<String>,
    /// Only entries of this day (UTC) or later, `YYYY-MM-DD`.
    from: Option<String>,
    /// Only entries of this day (UTC) or earlier, `YYYY-MM-DD`.
    to: Option<String>,
    /// Keyset paging: only entries older than this `audit_id`.
    before: Option<i64>,
}

/// Longest actor or action filter.
pub const MAX_AUDIT_FILTER_CHARS: usize = 64;

/// The audit log, newest first, filtered over every entry: administrators and auditors.
#[utoipa::path(get, path = "/api/v1/audit", summary = "审计日志", tag = "admin", params(AuditQuery),
    responses((status = 200, body = [yibao_storage::AuditRecord]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<yibao_storage::AuditRecord>>, ApiError> {
    if !matches!(staff.role(), Role::Admin | Role::Auditor) {
        return Err(ApiError::of(ErrorCode::Forbidden));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let text = |v: Option<String>, name: &str| -> Result<Option<String>, ApiError> {
        match v.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
            Some(t) if t.chars().count() > MAX_AUDIT_FILTER_CHARS => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("{name} 不超过{MAX_AUDIT_FILTER_CHARS}个字符"),
            )),
            other => Ok(other),
        }
    };
    let day = |v: Option<String>, name: &str| -> Result<Option<chrono::NaiveDate>, ApiError> {
        v.filter(|t| !t.trim().is_empty())
            .map(|t| {
                chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| {
                    ApiError::new(ErrorCode::InvalidRequest, format!("{name} 应为 YYYY-MM-DD"))
                })
            })
            .transpose()
    };
    let filter = yibao_storage::AuditFilter {
        actor: text(query.actor, "actor")?,
        action_prefix: text(query.action, "action")?,
        from_day: day(query.from, "from")?,
        to_day: day(query.to, "to")?,
        before_id: query.before,
    };
    Ok(Json(state.storage.audit_entries(&filter, limit).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct RegionInput {
    /// The pooling region's name, e.g. 南通市.
    name: String,
}

/// Registers or renames a pooling region (统筹区). Center administrator only.
#[utoipa::path(put, path = "/api/v1/regions/{region}", summary = "设置统筹区", tag = "admin", request_body = RegionInput,
    params(("region" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_region(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(region): Path<String>,
    ApiJson(input): ApiJson<RegionInput>,
) -> Result<axum::http::StatusCode, ApiError> {
    staff.require_admin()?;
    let code = region_of(&region)?;
    let pooling =
        crate::services::setup::put_region(state.storage.as_ref(), code, &input.name).await?;
    audit(
        &state,
        &staff,
        "region.put",
        Some(code),
        code.as_str(),
        serde_json::json!({"name": pooling.name()}),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

pub use crate::services::setup::{CategoryAmountInput, FeePolicyInputBody, WindowInput};

/// Sets a region's fee policy for a fee year (amounts in fen; the basic part is the total less the
/// other components). Payables already assessed keep their amounts. Center administrator only.
#[utoipa::path(put, path = "/api/v1/regions/{region}/fee-policies/{fee_year}", summary = "设置缴费政策", tag = "admin", request_body = FeePolicyInputBody,
    params(("region" = String, Path), ("fee_year" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_fee_policy(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path((region, fee_year)): Path<(String, i64)>,
    ApiJson(input): ApiJson<FeePolicyInputBody>,
) -> Result<axum::http::StatusCode, ApiError> {
    staff.require_admin()?;
    let code = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let policy =
        crate::services::setup::put_fee_policy(state.storage.as_ref(), code, fee_year, &input)
            .await?;
    state
        .fee_policies
        .forget(&(code.to_string(), i32::from(fee_year.get())));
    audit(
        &state,
        &staff,
        "fee_policy.put",
        Some(code),
        &fee_year.to_string(),
        serde_json::to_value(&policy).unwrap_or_default(),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct CalendarInput {
    /// Weekdays off (法定节假日 and days in lieu).
    #[serde(default)]
    holidays: Vec<NaiveDate>,
    /// Weekends worked (调休).
    #[serde(default)]
    working_days: Vec<NaiveDate>,
}

/// Replaces a region's holiday calendar for a year, as the State Council's notice lists it.
#[utoipa::path(put, path = "/api/v1/regions/{region}/calendars/{year}", summary = "设置节假日日历", tag = "admin", request_body = CalendarInput,
    params(("region" = String, Path), ("year" = i32, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_calendar(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path((region, year)): Path<(String, i32)>,
    ApiJson(input): ApiJson<CalendarInput>,
) -> Result<axum::http::StatusCode, ApiError> {
    use yibao_domain::{CalendarYear, DayKind};
    staff.require_admin()?;
    let code = region_of(&region)?;
    if !(2000..=2100).contains(&year) || input.holidays.len() + input.working_days.len() > 366 {
        return Err(ApiError::new(
            ErrorCode::InvalidCalendar,
            "年份应在2000至2100之间，且每年最多366天",
        ));
    }
    if state.storage.get_region(code).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("统筹区 {code} 未在本系统登记"),
        ));
    }
    let days = input
        .holidays
        .iter()
        .map(|d| (*d, DayKind::Holiday))
        .chain(input.working_days.iter().map(|d| (*d, DayKind::Working)));
    let calendar = CalendarYear::new(year, days)?;
    state.storage.put_calendar_year(code, &calendar).await?;
    audit(
        &state,
        &staff,
        "calendar.put",
        Some(code),
        &year.to_string(),
        serde_json::json!({"holidays": input.holidays, "working_days": input.working_days}),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
