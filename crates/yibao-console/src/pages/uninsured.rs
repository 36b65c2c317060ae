//! 未参保名单上报: at the end of the campaign a service station submits its list of the
//! uninsured with their reasons (未参保名单及原因) for a fee year to the centre, once, by 31
//! December of the year before the fee year; the centre (and the tax office, auditors) sees which
//! stations have. Through `services::follow_ups::{submit_uninsured, submissions_of}`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use yibao_domain::unpaid::NoticeMethod;
use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_server::export::{column, mask_id, mask_name, Cell, XlsxReport};
use yibao_server::services::follow_ups::{
    submission_due, submissions_of, submit_uninsured, submitted_list, SubmittedPerson,
};
use yibao_server::{AppState, ErrorCode, ServiceError};

use crate::pages::desk::{self, Paged};
use crate::pages::persons::see_other;
use crate::progress::ProgressCache;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

/// The page's routes (merged into [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/uninsured", get(page))
        .route("/console/uninsured/submit", post(submit))
        .route("/console/uninsured/stations/{station}", get(submitted))
        .route(
            "/console/uninsured/stations/{station}/export",
            get(submitted_export),
        )
}

#[derive(Deserialize, Default)]
pub struct UninsuredQuery {
    region: Option<String>,
    fee_year: Option<String>,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct SubmitForm {
    fee_year: String,
}

/// One station's line.
pub struct StationLine {
    pub station: String,
    pub submitted: bool,
    pub submitted_at: String,
    pub submitted_by: String,
    pub persons: i64,
    pub with_reason: i64,
}

#[derive(Template)]
#[template(path = "uninsured/status.html")]
pub struct UninsuredPage {
    pub chrome: Chrome,
    pub regions: Vec<(String, String)>,
    pub may_choose: bool,
    pub region: String,
    pub fee_year: String,
    pub due: String,
    pub overdue: bool,
    /// A station operator: their own station's line and the submit form.
    pub own_station: bool,
    pub on_list_now: i64,
    pub lines: Vec<StationLine>,
    pub submitted_count: usize,
    pub notice: Option<String>,
    pub submit_error: Option<String>,
}

/// Unix seconds as Beijing time.
fn time_of(seconds: i64) -> String {
    crate::view::beijing_minute(seconds.saturating_mul(1000))
}

async fn build(
    state: &AppState,
    progress: &ProgressCache,
    user: &ConsoleUser,
    region_text: Option<&str>,
    year_text: Option<&str>,
) -> Result<UninsuredPage, PageError> {
    let regions: Vec<(String, String)> = state
        .storage
        .list_regions()
        .await?
        .iter()
        .map(|r| (r.code().to_string(), r.name().to_owned()))
        .collect();
    let account = user.account();
    let region = match (
        account.region,
        region_text.map(str::trim).filter(|r| !r.is_empty()),
    ) {
        (Some(own), _) => own,
        (None, Some(text)) => RegionCode::parse(text).map_err(ServiceError::from)?,
        (None, None) => match regions.first() {
            Some((code, _)) => RegionCode::parse(code).map_err(ServiceError::from)?,
            None => return Err(PageError::not_found("还没有登记统筹区")),
        },
    };
    let fee_year = match year_text.map(str::trim).filter(|y| !y.is_empty()) {
        Some(text) => text
            .parse::<i64>()
            .ok()
            .and_then(|y| FeeYear::new(y).ok())
            .ok_or_else(|| PageError::bad_form("缴费年度有误，请填写四位数的年度，如 2027"))?,
        None => state
            .storage
            .list_fee_policies(region)
            .await?
            .iter()
            .map(|p| p.fee_year())
            .max()
            .ok_or_else(|| PageError::not_found("本统筹区还没有设置缴费政策"))?,
    };
    let stations = submissions_of(state, &user.staff, region, fee_year).await?;
    let due = submission_due(fee_year);
    let lines: Vec<StationLine> = stations
        .into_iter()
        .map(|(station, found)| StationLine {
            station,
            submitted: found.is_some(),
            submitted_at: found
                .as_ref()
                .map(|s| time_of(s.submitted_at))
                .unwrap_or_default(),
            submitted_by: found
                .as_ref()
                .map(|s| s.submitted_by.clone())
                .unwrap_or_default(),
            persons: found.as_ref().map_or(0, |s| s.persons),
            with_reason: found.as_ref().map_or(0, |s| s.with_reason),
        })
        .collect();
    let own_station = account.station.is_some();
    // As the unpaid list counts them: from the progress the console keeps.
    let on_list_now = match &account.station {
        Some(station) => {
            progress
                .owing(state, region, fee_year, Some(station))
                .await?
                .persons
        }
        None => 0,
    };
    Ok(UninsuredPage {
        chrome: Chrome::new(user, "uninsured", "未参保名单上报"),
        regions,
        may_choose: account.region.is_none(),
        region: region.to_string(),
        fee_year: fee_year.to_string(),
        due: due.to_string(),
        overdue: state.clock.today() > due,
        own_station,
        on_list_now,
        submitted_count: lines.iter().filter(|l| l.submitted).count(),
        lines,
        notice: None,
        submit_error: None,
    })
}

/// `GET /console/uninsured?region=&fee_year=`: a station's own submission (and the form), or
/// for the centre, the tax office and auditors, every station of the region.
pub async fn page(
    State(state): State<AppState>,
    Extension(progress): Extension<ProgressCache>,
    user: ConsoleUser,
    Query(query): Query<UninsuredQuery>,
) -> Result<Response, PageError> {
    let mut page = build(
        &state,
        &progress,
        &user,
        query.region.as_deref(),
        query.fee_year.as_deref(),
    )
    .await?;
    if query.done.as_deref() == Some("submitted") {
        page.notice = Some("未参保名单及原因已提交中心。".into());
    }
    html(&page)
}

/// `POST /console/uninsured/submit` (`fee_year`): the station operator submits; a second
/// submission is refused with the message beside the button (409).
pub async fn submit(
    State(state): State<AppState>,
    Extension(progress): Extension<ProgressCache>,
    CsrfForm(user, form): CsrfForm<SubmitForm>,
) -> Result<Response, PageError> {
    let fee_year = form
        .fee_year
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|y| FeeYear::new(y).ok())
        .ok_or_else(|| PageError::bad_form("缴费年度有误，请刷新页面后重试"))?;
    match submit_uninsured(&state, &user.staff, fee_year).await {
        Ok(_) => Ok(see_other(&format!(
            "/console/uninsured?fee_year={fee_year}&done=submitted"
        ))),
        Err(e) if e.code == ErrorCode::AlreadyExists || e.code == ErrorCode::InvalidRequest => {
            let status = if e.code == ErrorCode::AlreadyExists {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let mut page =
                build(&state, &progress, &user, None, Some(&fee_year.to_string())).await?;
            page.submit_error = Some(e.message);
            render_with_status(&page, status)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct SubmittedQuery {
    region: Option<String>,
    fee_year: Option<String>,
    page: Option<String>,
}

/// One person of a submitted list as the page shows it (masked).
pub struct SubmittedLine {
    pub name: String,
    pub id_number: String,
    pub reason: String,
    pub told: String,
}

#[derive(Template)]
#[template(path = "uninsured/list.html")]
pub struct SubmittedPage {
    pub chrome: Chrome,
    pub region: String,
    pub fee_year: String,
    pub station: String,
    pub submitted_at: String,
    pub submitted_by: String,
    pub persons: i64,
    pub with_reason: i64,
    pub lines: Paged<SubmittedLine>,
    pub back: String,
    pub export: String,
}

/// How a person was told, in Chinese, from the submitted code.
fn told_of(p: &SubmittedPerson) -> String {
    let how = p
        .told_how
        .as_deref()
        .and_then(NoticeMethod::parse)
        .map_or("", |m| m.name_zh());
    match &p.told_on {
        Some(on) => format!("{on} {how}"),
        None => String::new(),
    }
}

/// The region, fee year and station a submitted list is asked for; a station operator's own
/// region whatever the address says (their station is checked by the service).
fn scope_of(
    user: &ConsoleUser,
    station: &str,
    query: &SubmittedQuery,
) -> Result<(RegionCode, FeeYear, StationCode), PageError> {
    let station =
        StationCode::parse(station.trim()).map_err(|_| PageError::not_found("没有这个服务站"))?;
    let region = match (user.account().region, query.region.as_deref()) {
        (Some(own), _) => own,
        (None, Some(text)) => RegionCode::parse(text.trim()).map_err(ServiceError::from)?,
        (None, None) => return Err(PageError::bad_form("请从未参保名单上报页选择统筹区")),
    };
    let fee_year = query
        .fee_year
        .as_deref()
        .and_then(|y| y.trim().parse::<i64>().ok())
        .and_then(|y| FeeYear::new(y).ok())
        .ok_or_else(|| PageError::bad_form("缴费年度有误，请从未参保名单上报页进入"))?;
    Ok((region, fee_year, station))
}

/// A station's submitted list as asked for (audited by the service); 404 when not submitted.
struct Submitted {
    region: RegionCode,
    fee_year: FeeYear,
    station: StationCode,
    submission: yibao_storage::records::UninsuredSubmission,
    people: Vec<SubmittedPerson>,
}

async fn load_submitted(
    state: &AppState,
    user: &ConsoleUser,
    station: &str,
    query: &SubmittedQuery,
) -> Result<Submitted, PageError> {
    let (region, fee_year, station) = scope_of(user, station, query)?;
    let Some((submission, people)) =
        submitted_list(state, &user.staff, region, fee_year, &station).await?
    else {
        return Err(PageError::not_found(&format!(
            "服务站 {} 还没有提交 {fee_year} 年度的未参保名单",
            station.as_str()
        )));
    };
    Ok(Submitted {
        region,
        fee_year,
        station,
        submission,
        people,
    })
}

/// `GET /console/uninsured/stations/{station}?region=&fee_year=&page=`: a station's submitted
/// 未参保名单及原因, masked, 50 a page, for the centre, the tax office, auditors and the station
/// itself; audited as `read.uninsured_list`.
pub async fn submitted(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(station): Path<String>,
    Query(query): Query<SubmittedQuery>,
) -> Result<Response, PageError> {
    let Submitted {
        region,
        fee_year,
        station,
        submission,
        people,
    } = load_submitted(&state, &user, &station, &query).await?;
    let filters = desk::query_of(&[
        ("region", region.as_str()),
        ("fee_year", &fee_year.to_string()),
    ]);
    let base = format!("/console/uninsured/stations/{}", station.as_str());
    let lines = people
        .iter()
        .map(|p| SubmittedLine {
            name: mask_name(&p.name),
            id_number: mask_id(&p.id_number),
            reason: p.reason.clone().unwrap_or_default(),
            told: told_of(p),
        })
        .collect();
    html(&SubmittedPage {
        chrome: Chrome::new(&user, "uninsured", "未参保名单及原因"),
        region: region.to_string(),
        fee_year: fee_year.to_string(),
        station: station.as_str().to_owned(),
        submitted_at: time_of(submission.submitted_at),
        submitted_by: submission.submitted_by,
        persons: submission.persons,
        with_reason: submission.with_reason,
        lines: Paged::cut(
            lines,
            desk::page_number(query.page.as_deref()),
            &base,
            &filters,
        ),
        back: format!("/console/uninsured?{filters}"),
        export: format!("{base}/export?{filters}"),
    })
}

/// `GET /console/uninsured/stations/{station}/export?region=&fee_year=`: the submitted list as
/// XLSX with full names and ID numbers (for the centre's follow-up), audited as
/// `read.uninsured_list`.
pub async fn submitted_export(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(station): Path<String>,
    Query(query): Query<SubmittedQuery>,
) -> Result<Response, PageError> {
    let Submitted {
        region,
        fee_year,
        station,
        submission,
        people,
    } = load_submitted(&state, &user, &station, &query).await?;
    let report = XlsxReport {
        file_stem: format!("uninsured-{region}-{fee_year}-{}", station.as_str()),
        file_title: format!("{region}{fee_year}年度未参保名单-{}", station.as_str()),
        sheet_name: "未参保名单".into(),
        title: format!(
            "{region} 服务站 {} {fee_year}年度未参保名单及原因（{} 于 {} 提交）",
            station.as_str(),
            submission.submitted_by,
            time_of(submission.submitted_at)
        ),
        columns: vec![
            column("姓名", 12),
            column("身份证号码", 22),
            column("未参保原因", 24),
            column("告知情况", 20),
        ],
        rows: people
            .iter()
            .map(|p| {
                vec![
                    Cell::text(&p.name),
                    Cell::text(&p.id_number),
                    Cell::text(p.reason.clone().unwrap_or_default()),
                    Cell::text(told_of(p)),
                ]
            })
            .collect(),
        totals_label: format!("合计（{} 人）", people.len()),
        notes: vec!["本表含完整身份证号码和姓名，下载已记入审计日志。".to_owned()],
    };
    Ok(report.into_response()?)
}
