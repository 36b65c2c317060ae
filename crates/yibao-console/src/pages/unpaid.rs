//! 未缴名单: the enrolled who still owe in a fee year, per service station, through the same
//! storage list and scope check as `GET /api/v1/regions/{r}/fee-years/{y}/standing?only_unpaid=true`
//! ([`yibao_server::auth::Staff::station_filter`]: a station operator sees only their own
//! station, asking for another is 403; the centre chooses region and station).
//!
//! The page lists [`PAGE_SIZE`] people a page, names and ID numbers masked, each linked to the
//! record by this session's sealed reference. The export is the API's XLSX (full names, ID
//! numbers and phones, for the station to call), at most [`MAX_EXPORT_ROWS`] rows, audited as
//! `read.unpaid_list` like the API's.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use yibao_domain::{FeeYear, IdNumber, PersonName, RegionCode, StationCode};
use yibao_server::admin::audit;
use yibao_server::{ApiError, AppState, ErrorCode};
use yibao_storage::records::{standing_name_zh, standing_owes, MAX_LIST_ROWS};
use yibao_storage::StandingRow;

use crate::session::ConsoleUser;
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// People listed on one page.
pub const PAGE_SIZE: usize = 50;

/// Most rows one export holds; a larger list is exported station by station.
pub const MAX_EXPORT_ROWS: usize = 20_000;

/// The export's row limit, when a deployment (or a test) sets another than [`MAX_EXPORT_ROWS`]
/// with `router(…).layer(Extension(ExportLimit(n)))`.
#[derive(Debug, Clone, Copy)]
pub struct ExportLimit(pub usize);

/// The page's routes (merged into [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/unpaid", get(page))
        .route("/console/unpaid/export", get(export))
}

#[derive(Deserialize, Default)]
pub struct UnpaidQuery {
    region: Option<String>,
    station: Option<String>,
    fee_year: Option<String>,
    page: Option<String>,
}

/// One person of the list, masked.
pub struct Line {
    pub link: String,
    pub region: String,
    pub name_masked: String,
    pub id_masked: String,
    pub station: String,
    pub standing: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "unpaid/list.html")]
pub struct UnpaidPage {
    pub chrome: Chrome,
    pub regions: Vec<(String, String)>,
    /// Roles not bound to a region choose it.
    pub may_choose: bool,
    /// Roles other than a station operator choose the station (or all).
    pub may_choose_station: bool,
    pub region: String,
    pub station: String,
    pub fee_year: String,
    pub station_error: Option<String>,
    pub fee_year_error: Option<String>,
    pub listed: bool,
    pub lines: Vec<Line>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub total_owed: String,
    /// Query string of the current filters, for the pager and the export link.
    pub filters: String,
    pub page_size: usize,
    pub export_limit: usize,
    pub truncated: bool,
}

/// The scope a list is asked for, checked.
struct Scope {
    region: RegionCode,
    region_name: Option<String>,
    station: Option<StationCode>,
    fee_year: FeeYear,
}

/// The checked scope with the page to fill, or the page with a field to correct.
type Asked = Result<(Scope, UnpaidPage), Box<UnpaidPage>>;

fn limit_of(limit: Option<&Extension<ExportLimit>>) -> usize {
    limit.map_or(MAX_EXPORT_ROWS, |e| e.0 .0)
}

async fn asked(
    state: &AppState,
    user: &ConsoleUser,
    query: &UnpaidQuery,
    export_limit: usize,
) -> Result<Asked, PageError> {
    let regions: Vec<(String, String)> = state
        .storage
        .list_regions()
        .await?
        .iter()
        .map(|r| (r.code().to_string(), r.name().to_owned()))
        .collect();
    let account = user.account();
    let requested_region = query
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let region = match (account.region, requested_region) {
        (Some(own), _) => own,
        (None, Some(text)) => RegionCode::parse(text).map_err(ApiError::from)?,
        (None, None) => match regions.first() {
            Some((code, _)) => RegionCode::parse(code).map_err(ApiError::from)?,
            None => return Err(PageError::not_found("还没有登记统筹区")),
        },
    };
    let region_name = regions
        .iter()
        .find(|(code, _)| *code == region.to_string())
        .map(|(_, name)| name.clone());
    let station_text: String = query
        .station
        .as_deref()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(40)
        .collect();
    let mut page = UnpaidPage {
        chrome: Chrome::new(user, "unpaid", "未缴名单"),
        regions,
        may_choose: account.region.is_none(),
        may_choose_station: account.role != yibao_storage::Role::StationOperator,
        region: region.to_string(),
        station: station_text.clone(),
        fee_year: String::new(),
        station_error: None,
        fee_year_error: None,
        listed: false,
        lines: Vec::new(),
        total: 0,
        page: 1,
        pages: 1,
        total_owed: yuan(0),
        filters: String::new(),
        page_size: PAGE_SIZE,
        export_limit,
        truncated: false,
    };
    let requested_station = if station_text.is_empty() {
        None
    } else {
        match StationCode::parse(&station_text) {
            Ok(code) => Some(code),
            // A station operator's list is their own station's: anything else is refused.
            Err(_) if !page.may_choose_station => {
                return Err(ApiError::of(ErrorCode::Forbidden).into())
            }
            Err(e) => {
                page.station_error = Some(format!("服务站代码有误：{e}"));
                None
            }
        }
    };
    // The API's scope rule: a station operator only their own station (another is 403).
    let station = user.staff.station_filter(region, requested_station)?;
    if let Some(own) = &station {
        page.station = own.as_str().to_owned();
    }
    let year_text = query.fee_year.as_deref().unwrap_or_default().trim();
    let fee_year = if year_text.is_empty() {
        // The region's newest fee year with a policy.
        state
            .storage
            .list_fee_policies(region)
            .await?
            .iter()
            .map(|p| p.fee_year())
            .max()
    } else {
        match year_text.parse::<i64>().ok().map(FeeYear::new) {
            Some(Ok(year)) => Some(year),
            _ => {
                page.fee_year = year_text.chars().take(10).collect();
                page.fee_year_error = Some("请填写四位数的缴费年度，如 2027".into());
                None
            }
        }
    };
    if let Some(year) = fee_year {
        page.fee_year = year.to_string();
    } else if page.fee_year_error.is_none() {
        page.fee_year_error = Some(format!(
            "统筹区 {region} 还没有设置缴费政策，请填写缴费年度"
        ));
    }
    match fee_year {
        Some(fee_year) if page.station_error.is_none() && page.fee_year_error.is_none() => {
            page.filters = filters_of(&page);
            Ok(Ok((
                Scope {
                    region,
                    region_name,
                    station,
                    fee_year,
                },
                page,
            )))
        }
        _ => Ok(Err(Box::new(page))),
    }
}

fn filters_of(page: &UnpaidPage) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("region", &page.region)];
    if !page.station.is_empty() {
        pairs.push(("station", &page.station));
    }
    pairs.push(("fee_year", &page.fee_year));
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The unpaid of a scope: the enrolled who owe, from at most [`MAX_LIST_ROWS`] people.
async fn unpaid_rows(
    state: &AppState,
    scope: &Scope,
) -> Result<(Vec<StandingRow>, bool), PageError> {
    let rows = state
        .storage
        .standing(
            scope.region,
            scope.fee_year,
            scope.station.as_ref(),
            MAX_LIST_ROWS,
        )
        .await?;
    let truncated = rows.len() >= MAX_LIST_ROWS;
    Ok((
        rows.into_iter()
            .filter(|r| standing_owes(&r.standing))
            .collect(),
        truncated,
    ))
}

fn line_of(user: &ConsoleUser, row: &StandingRow, today: chrono::NaiveDate) -> Line {
    let mut standing = standing_name_zh(&row.standing).to_owned();
    if let Some(detail) = &row.detail {
        standing.push('：');
        standing.push_str(detail);
    }
    Line {
        link: user.person_ref(&row.id_number),
        region: row.region.clone(),
        name_masked: PersonName::parse(&row.name).map_or_else(|_| "**".to_owned(), |n| n.masked()),
        id_masked: IdNumber::parse(&row.id_number, today)
            .map_or_else(|_| "******".to_owned(), |p| p.id_number.masked()),
        station: row.station_code.clone().unwrap_or_default(),
        standing,
        amount: row.amount_fen.map(yuan).unwrap_or_default(),
    }
}

/// `GET /console/unpaid?region=&station=&fee_year=&page=`: one page of the list, masked.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    limit: Option<Extension<ExportLimit>>,
    Query(query): Query<UnpaidQuery>,
) -> Result<Response, PageError> {
    let (scope, mut page) = match asked(&state, &user, &query, limit_of(limit.as_ref())).await? {
        Ok(found) => found,
        Err(page) => return render_with_status(&*page, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let (rows, truncated) = unpaid_rows(&state, &scope).await?;
    page.listed = true;
    page.truncated = truncated;
    page.total = rows.len();
    page.pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    page.page = query
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, page.pages);
    page.total_owed = yuan(rows.iter().filter_map(|r| r.amount_fen).sum());
    let today = state.clock.today();
    page.lines = rows
        .iter()
        .skip((page.page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|r| line_of(&user, r, today))
        .collect();
    html(&page)
}

/// `GET /console/unpaid/export?region=&station=&fee_year=`: the list as the API's XLSX, at most
/// [`MAX_EXPORT_ROWS`] rows, audited as `read.unpaid_list`.
pub async fn export(
    State(state): State<AppState>,
    user: ConsoleUser,
    limit: Option<Extension<ExportLimit>>,
    Query(query): Query<UnpaidQuery>,
) -> Result<Response, PageError> {
    let limit = limit_of(limit.as_ref());
    let scope = match asked(&state, &user, &query, limit).await? {
        Ok((scope, _)) => scope,
        Err(page) => return render_with_status(&*page, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let (rows, _) = unpaid_rows(&state, &scope).await?;
    if rows.len() > limit {
        return Err(PageError::Api(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "未缴名单共 {} 人，超过一次导出的上限 {limit} 人，请按服务站分别导出",
                rows.len()
            ),
        )));
    }
    // Full names, ID numbers and phones: reading them is audited as the API's export is.
    audit(
        &state,
        &user.staff,
        "read.unpaid_list",
        Some(scope.region),
        &scope.fee_year.to_string(),
        serde_json::json!({
            "station": scope.station.as_ref().map(StationCode::as_str),
            "format": "xlsx",
            "rows": rows.len(),
            "via": "console",
        }),
    )
    .await?;
    let report = yibao_server::export::standing_report(
        &rows,
        scope.region.as_str(),
        scope.region_name.as_deref(),
        scope.fee_year,
        scope.station.as_ref(),
        true,
        state.clock.today(),
    );
    Ok(report.into_response()?)
}
