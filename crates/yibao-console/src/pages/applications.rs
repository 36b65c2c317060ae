//! 网上参保登记: the applications residents submitted on the citizen site (issue 11), in the queue
//! of the service station they chose. A station operator sees their station's, the administrator
//! every region's; each opens an application (its personal data in full, the reading audited) and
//! approves it, which registers and enrols the person as the 参保人员 page does, or refuses it with
//! a reason the resident reads. Through `services::applications`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use yibao_domain::{PersonName, RegionCode};
use yibao_server::services::applications::{self, kind_zh};
use yibao_server::{AppState, ServiceError};
use yibao_storage::enrolment_applications::{ApplicationQuery, EnrolmentApplication};

use crate::pages::desk::see_other;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

/// The statuses one can list.
pub const FILTERS: [(&str, &str); 3] = [
    ("submitted", "待审核"),
    ("approved", "已通过"),
    ("refused", "未通过"),
];

/// The page's routes (merged into [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/applications", get(list))
        .route("/console/applications/{region}/{no}", get(detail))
        .route("/console/applications/{region}/{no}/approve", post(approve))
        .route("/console/applications/{region}/{no}/refuse", post(refuse))
}

/// An application as the queue lists it: the person masked.
pub struct Line {
    pub href: String,
    pub application_no: String,
    pub kind: &'static str,
    pub name: String,
    pub id_number: String,
    pub region: String,
    pub station: String,
    pub submitted_at: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "applications/list.html")]
pub struct ListPage {
    pub chrome: Chrome,
    pub filters: &'static [(&'static str, &'static str)],
    pub status: String,
    pub lines: Vec<Line>,
    pub notice: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    done: Option<String>,
}

/// Unix seconds as Beijing time.
fn time_of(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| {
            t.with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// `GET /console/applications?status=`: the administrator's (every region) or a station
/// operator's (their station) queue, oldest first.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    user.staff.may_change_anyone()?;
    let status = q.status.unwrap_or_else(|| "submitted".into());
    if !FILTERS.iter().any(|(code, _)| *code == status) {
        return Err(PageError::bad_form("状态只能从列表中选择"));
    }
    let account = user.account();
    let region = account.region.map(|r| r.to_string());
    let station = account.station.as_ref().map(|s| s.as_str().to_owned());
    let found = state
        .storage
        .enrolment_applications()
        .applications(&ApplicationQuery {
            region: region.as_deref(),
            station: station.as_deref(),
            status: &status,
            limit: yibao_storage::enrolment_applications::MAX_APPLICATIONS_LISTED,
        })
        .await?;
    let lines = found
        .iter()
        .map(|a| Line {
            href: format!("/console/applications/{}/{}", a.region, a.application_no),
            application_no: a.application_no.clone(),
            kind: kind_zh(&a.kind),
            name: PersonName::parse(&a.name).map_or_else(|_| String::new(), |n| n.masked()),
            id_number: a.id_number.masked(),
            region: a.region.to_string(),
            station: a.station.clone(),
            submitted_at: time_of(a.submitted_at),
            status: a.status.name_zh(),
        })
        .collect();
    html(&ListPage {
        chrome: Chrome::new(&user, "applications", "网上参保登记"),
        filters: &FILTERS,
        status,
        lines,
        notice: match q.done.as_deref() {
            Some("approved") => Some("已通过：人员已登记并参保，年度核定后即可缴费。".into()),
            Some("refused") => Some("已不予通过，居民会在网上看到原因。".into()),
            _ => None,
        },
    })
}

#[derive(Template)]
#[template(path = "applications/detail.html")]
pub struct DetailPage {
    pub chrome: Chrome,
    pub action: String,
    pub application_no: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub open: bool,
    pub name: String,
    pub id_number: String,
    pub household: &'static str,
    pub permit_since: String,
    pub phone: String,
    pub guardian: String,
    pub region: String,
    pub station: String,
    pub submitted_at: String,
    pub decided: String,
    pub reason: String,
    pub reason_error: Option<String>,
    pub approve_error: Option<String>,
    /// Other regions where the person is on record already.
    pub elsewhere: Vec<String>,
}

/// The application, if `user` may decide it (their region and station), its reading audited.
async fn load(
    state: &AppState,
    user: &ConsoleUser,
    region: &str,
    no: &str,
) -> Result<(RegionCode, EnrolmentApplication), PageError> {
    let region = RegionCode::parse(region).map_err(ServiceError::from)?;
    let a = state
        .storage
        .enrolment_applications()
        .application(region.as_str(), no)
        .await?
        .ok_or_else(|| PageError::not_found("没有这份参保登记申请"))?;
    let station = yibao_domain::StationCode::parse(&a.station).map_err(ServiceError::from)?;
    user.staff.may_change(region, Some(&station))?;
    yibao_server::services::audit(
        state,
        &user.staff,
        "application.read",
        Some(region),
        no,
        serde_json::json!({ "kind": a.kind }),
    )
    .await?;
    Ok((region, a))
}

fn detail_page(user: &ConsoleUser, a: &EnrolmentApplication) -> DetailPage {
    DetailPage {
        chrome: Chrome::new(user, "applications", "参保登记申请"),
        action: format!("/console/applications/{}/{}", a.region, a.application_no),
        application_no: a.application_no.clone(),
        kind: kind_zh(&a.kind),
        status: a.status.name_zh(),
        open: a.status == yibao_domain::ApplicationStatus::Submitted,
        name: a.name.clone(),
        id_number: a.id_number.as_str().to_owned(),
        household: if a.household == "residence_permit" {
            "居住证"
        } else {
            "本地户籍"
        },
        permit_since: a.permit_since.map(|d| d.to_string()).unwrap_or_default(),
        phone: a.phone.clone().unwrap_or_default(),
        guardian: match (&a.guardian_name, &a.guardian_id_number) {
            (Some(name), Some(id)) => format!("{name}（{id}）"),
            _ => String::new(),
        },
        region: a.region.to_string(),
        station: a.station.clone(),
        submitted_at: time_of(a.submitted_at),
        decided: match (&a.decided_by, a.decided_at) {
            (Some(by), Some(at)) => format!("{} 由 {by} 审核", time_of(at)),
            _ => String::new(),
        },
        reason: a.reason.clone().unwrap_or_default(),
        reason_error: None,
        approve_error: None,
        elsewhere: Vec::new(),
    }
}

/// The page of `a` with the other regions the person is on record in.
async fn full_page(
    state: &AppState,
    user: &ConsoleUser,
    a: &EnrolmentApplication,
) -> Result<DetailPage, PageError> {
    let mut page = detail_page(user, a);
    if page.open {
        page.elsewhere = applications::on_record_elsewhere(state, a).await?;
    }
    Ok(page)
}

/// `GET /console/applications/{region}/{no}`.
pub async fn detail(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((region, no)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (_, a) = load(&state, &user, &region, &no).await?;
    html(&full_page(&state, &user, &a).await?)
}

#[derive(Deserialize)]
pub struct ApproveForm {}

/// `POST /console/applications/{region}/{no}/approve`: registers and enrols the person; a
/// refusal (not eligible now, on record already) is shown beside the button.
pub async fn approve(
    State(state): State<AppState>,
    Path((region, no)): Path<(String, String)>,
    CsrfForm(user, _): CsrfForm<ApproveForm>,
) -> Result<Response, PageError> {
    let (region, _) = load(&state, &user, &region, &no).await?;
    match applications::approve(&state, &user.staff, region, &no).await {
        Ok(()) => Ok(see_other("/console/applications?done=approved")),
        Err(err)
            if err.code.status().is_client_error()
                && err.code.status() != StatusCode::FORBIDDEN =>
        {
            // As it stands now (somebody may have decided it meanwhile).
            let (_, a) = load(&state, &user, region.as_str(), &no).await?;
            let mut page = full_page(&state, &user, &a).await?;
            page.approve_error = Some(if page.open {
                format!("{}。不能通过的，请在下方填写原因后不予通过。", err.message)
            } else {
                err.message
            });
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub struct RefuseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /console/applications/{region}/{no}/refuse`: the reason is required (said beside the
/// field) and at most 200 characters.
pub async fn refuse(
    State(state): State<AppState>,
    Path((region, no)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<RefuseForm>,
) -> Result<Response, PageError> {
    let (region, a) = load(&state, &user, &region, &no).await?;
    match applications::refuse(&state, &user.staff, region, &no, &form.reason).await {
        Ok(()) => Ok(see_other("/console/applications?done=refused")),
        Err(err) if err.code == yibao_server::ErrorCode::InvalidRequest => {
            let mut page = full_page(&state, &user, &a).await?;
            page.reason = form.reason.chars().take(400).collect();
            page.reason_error = Some(err.message);
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(err) => Err(err.into()),
    }
}
