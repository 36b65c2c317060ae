//! Persons: read, registered or changed, their history, and their re-assessment.

use axum::extract::{Path, State};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use yibao_domain::roster::{parse_row, RosterColumn, RosterHeader};
use yibao_domain::{Household, Person, StationCode};

use super::{id_of, region_of, year_of};
use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::audit;
use crate::{AppState, ErrorBody, ErrorCode, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(get_person, put_person))
        .routes(routes!(person_history))
        .routes(routes!(reassess))
        .routes(routes!(buy_back))
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
) -> Result<Person, ServiceError> {
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
        ServiceError::new(code, message)
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
            // The household is changed on its own (the console's 家庭户 form).
            RosterColumn::HouseholdNumber | RosterColumn::Relation => String::new(),
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
    /// 参保编号: the insured number the person holds in the region.
    insured_number: Option<String>,
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
) -> Result<Json<PersonDetail>, ServiceError> {
    let region = region_of(&region)?;
    let id = id_of(&id_number, &state)?;
    let record = crate::services::persons::read_person(&state, &staff, region, &id).await?;
    Ok(Json(PersonDetail {
        person: PersonView::of(&record.person, record.version),
        insured_number: record.insured_number.map(|n| n.to_string()),
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
) -> Result<Json<PutPersonResponse>, ServiceError> {
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
) -> Result<Json<Vec<yibao_storage::HistoryEntry>>, ServiceError> {
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

/// Re-assesses one person after a change: a new payable from tomorrow supersedes the current one.
/// A paid payable must be refunded first (409 `PAID_MUST_BE_REFUNDED`).
#[utoipa::path(post, path = "/api/v1/regions/{region}/fee-years/{fee_year}/persons/{id_number}/reassessment", summary = "个人重新核定", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path), ("id_number" = String, Path)),
    responses((status = 200, body = yibao_storage::PayableRecord, description = "the new payable"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reassess(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year, id_number)): Path<(String, i64, String)>,
) -> Result<Json<yibao_storage::PayableRecord>, ServiceError> {
    let region = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let id = id_of(&id_number, &state)?;
    let record = crate::services::persons::reassess(&state, &staff, region, fee_year, &id).await?;
    Ok(Json(record))
}

/// The gap years to buy back; none named: every year that still shortens the wait.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyBackRequest {
    #[serde(default)]
    pub years: Vec<u16>,
}

/// Creates a person's back-payments (补缴修复) for a benefit year: one payable per gap year, at
/// the year's individual standard without subsidy, payable through every channel
/// (docs/rules-2025.md). 422 `BACK_PAYMENT_REFUSED` names the year and why: not a gap year,
/// already bought, past the floor (`BACK_PAYMENT_SHORTENS_NOTHING`), nothing left to buy, or the
/// year's contribution already paid. Asking again for a year already open creates nothing.
#[utoipa::path(post, path = "/api/v1/regions/{region}/fee-years/{fee_year}/persons/{id_number}/back-payments", summary = "核定补缴（补缴修复）", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path), ("id_number" = String, Path)),
    request_body = BuyBackRequest,
    responses((status = 200, body = crate::services::cover::BackPayments, description = "the back-payments open for the person and year"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn buy_back(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year, id_number)): Path<(String, i64, String)>,
    ApiJson(request): ApiJson<BuyBackRequest>,
) -> Result<Json<crate::services::cover::BackPayments>, ServiceError> {
    let region = region_of(&region)?;
    let fee_year = year_of(fee_year)?;
    let id = id_of(&id_number, &state)?;
    let made =
        crate::services::persons::buy_back(&state, &staff, region, fee_year, &id, &request.years)
            .await?;
    Ok(Json(made))
}
