//! 未缴名单: the enrolled who still owe in a fee year, per service station, through the same
//! storage list and scope check as `GET /api/v1/regions/{r}/fee-years/{y}/standing?only_unpaid=true`
//! ([`yibao_server::auth::Staff::station_filter`]: a station operator sees only their own
//! station, asking for another is 403; the centre chooses region and station).
//!
//! The page reads [`PAGE_SIZE`] people a page from storage (`Storage::unpaid_page`, one
//! statement), names, ID numbers and phones masked, with each person's latest follow-up and
//! reason, each linked to the record and to the follow-up form (告知记录) by this session's
//! sealed reference. The export is the API's XLSX (full names, ID
//! numbers and phones, for the station to call), at most [`MAX_EXPORT_ROWS`] rows, audited as
//! `read.unpaid_list` like the API's.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use yibao_domain::unpaid::{NoticeMethod, DEFAULT_UNPAID_REASONS};
use yibao_domain::{FeeYear, IdNumber, PersonName, Phone, RegionCode, StationCode};
use yibao_server::export::{
    standing_cells, standing_report_shell, standing_totals_label, XlsxReport, XlsxStream,
};
use yibao_server::services::audit;
use yibao_server::services::follow_ups::{
    follow_ups_of, record_follow_up, FollowUpInput, MAX_NOTE_CHARS,
};
use yibao_server::{AppState, ErrorCode, ServiceError};
use yibao_storage::console_reads::{UnpaidBatchQuery, UnpaidCursor, MAX_UNPAID_BATCH_ROWS};
use yibao_storage::records::{standing_name_zh, UnpaidRow};
use yibao_storage::StandingRow;

use crate::pages::persons::{parse_key, see_other};
use crate::progress::ProgressCache;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{beijing_second, yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// People listed on one page.
pub const PAGE_SIZE: usize = 50;

/// Most rows one export holds; a larger list is exported station by station. The export is
/// written a row at a time (BENCHMARKS.md: 200 000 rows with the server under 100 MB).
pub const MAX_EXPORT_ROWS: usize = 200_000;

/// The export's row limit, when a deployment (or a test) sets another than [`MAX_EXPORT_ROWS`]
/// with `router(…).layer(Extension(ExportLimit(n)))`.
#[derive(Debug, Clone, Copy)]
pub struct ExportLimit(pub usize);

/// The reasons a resident may give for not paying (未参保原因): the deployment's
/// `unpaid_reasons`, set with `router(…).layer(Extension(UnpaidReasons(…)))`; without it the
/// national default list ([`DEFAULT_UNPAID_REASONS`]).
#[derive(Debug, Clone)]
pub struct UnpaidReasons(pub Arc<Vec<String>>);

fn reasons_of(reasons: Option<&Extension<UnpaidReasons>>) -> Vec<String> {
    match reasons {
        Some(Extension(r)) => r.0.as_ref().clone(),
        None => DEFAULT_UNPAID_REASONS
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
    }
}

/// The page's routes (merged into [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/unpaid", get(page))
        .route("/console/unpaid/export", get(export))
        .route(
            "/console/unpaid/follow-up/{region}/{id}",
            get(follow_up_form).post(follow_up_save),
        )
}

/// A phone as lists show it: `138****5678`; a number of another shape keeps its last four.
pub fn mask_phone(text: &str) -> String {
    match Phone::parse(text) {
        Ok(phone) => phone.masked(),
        Err(_) => {
            let chars: Vec<char> = text.trim().chars().collect();
            let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
            if chars.len() > 4 {
                format!("****{tail}")
            } else {
                "****".to_owned()
            }
        }
    }
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
    pub phone_masked: String,
    /// The latest reason recorded, or empty.
    pub reason: String,
    /// How and when they were last told, or empty.
    pub told: String,
    /// The follow-up form of this person.
    pub follow_up: String,
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
    /// How many owe and how much (the kept progress's, [`ProgressCache::owing`]), and when
    /// that was counted.
    pub total: usize,
    pub total_owed: String,
    pub counted_at: String,
    pub page: usize,
    pub pages: usize,
    /// Whether another page follows this one.
    pub more: bool,
    /// Query string of the current filters, for the pager and the export link.
    pub filters: String,
    pub page_size: usize,
    pub export_limit: usize,
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
        (None, Some(text)) => RegionCode::parse(text).map_err(ServiceError::from)?,
        (None, None) => match regions.first() {
            Some((code, _)) => RegionCode::parse(code).map_err(ServiceError::from)?,
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
        total_owed: yuan(0),
        counted_at: String::new(),
        page: 1,
        pages: 1,
        more: false,
        filters: String::new(),
        page_size: PAGE_SIZE,
        export_limit,
    };
    let requested_station = if station_text.is_empty() {
        None
    } else {
        match StationCode::parse(&station_text) {
            Ok(code) => Some(code),
            // A station operator's list is their own station's: anything else is refused.
            Err(_) if !page.may_choose_station => {
                return Err(ServiceError::of(ErrorCode::Forbidden).into())
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

/// An unpaid person as the export's row: the latest recorded reason and how they were told in
/// the row's detail (the export's 原因 column).
fn with_latest_reason(r: UnpaidRow) -> StandingRow {
    let mut row = r.row;
    if let Some(l) = r.latest {
        row.detail = Some(format!(
            "{}（{} {}告知{}）",
            l.reason,
            l.told_on,
            l.told_how.name_zh(),
            if l.signed_scanned {
                "，回执已扫描"
            } else {
                ""
            }
        ));
    }
    row
}

/// The unpaid of a scope as XLSX, read from storage in batches
/// ([`yibao_storage::console_reads::unpaid_after`]) and written a row at a time
/// ([`XlsxStream`]): neither the list nor the workbook is ever whole in memory. A list longer
/// than `limit` is refused once its `limit + 1`-th person is read (counting the list first would
/// cost a read of the whole list of its own: seconds at a million residents). Answers the
/// workbook's bytes and how many rows it holds.
async fn unpaid_workbook(
    state: &AppState,
    scope: &Scope,
    limit: usize,
    shell: &XlsxReport,
) -> Result<(Vec<u8>, usize), PageError> {
    let mut stream = XlsxStream::begin(shell)?;
    let mut cursor = UnpaidCursor::default();
    loop {
        let batch = state
            .storage
            .unpaid_after(&UnpaidBatchQuery {
                region: scope.region.as_str(),
                fee_year: i32::from(scope.fee_year.get()),
                station: scope.station.as_ref().map(StationCode::as_str),
                cursor: &cursor,
                limit: MAX_UNPAID_BATCH_ROWS,
            })
            .await?;
        let last_batch = batch.len() < MAX_UNPAID_BATCH_ROWS;
        if let Some(last) = batch.last() {
            cursor = UnpaidCursor::after(last);
        }
        for r in batch {
            if stream.rows() >= limit {
                return Err(PageError::Api(ServiceError::new(
                    ErrorCode::InvalidRequest,
                    format!("未缴名单超过一次导出的上限 {limit} 人，请按服务站分别导出"),
                )));
            }
            stream.row(&standing_cells(&with_latest_reason(r)))?;
        }
        if last_batch {
            break;
        }
    }
    let rows = stream.rows();
    let (label, notes) = (standing_totals_label(rows), shell.notes.clone());
    // Compressing the sheet is a second or so of CPU at 100 000 rows: off the async workers.
    let bytes = tokio::task::spawn_blocking(move || stream.finish(&label, &notes))
        .await
        .map_err(|e| PageError::Api(ServiceError::internal("xlsx export", e)))??;
    Ok((bytes, rows))
}

fn line_of(user: &ConsoleUser, row: &UnpaidRow, fee_year: FeeYear) -> Line {
    let latest = row.latest.as_ref();
    let row = &row.row;
    let mut standing = standing_name_zh(&row.standing).to_owned();
    if let Some(detail) = &row.detail {
        standing.push('：');
        standing.push_str(detail);
    }
    let link = user.person_ref(row.id_number.as_str());
    Line {
        follow_up: format!(
            "/console/unpaid/follow-up/{}/{link}?fee_year={fee_year}",
            row.region
        ),
        link,
        region: row.region.to_string(),
        name_masked: PersonName::parse(&row.name).map_or_else(|_| "**".to_owned(), |n| n.masked()),
        id_masked: row.id_number.masked(),
        station: row.station_code.clone().unwrap_or_default(),
        standing,
        amount: row.amount_fen.map(yuan).unwrap_or_default(),
        phone_masked: row.phone.as_deref().map(mask_phone).unwrap_or_default(),
        reason: latest.map(|l| l.reason.clone()).unwrap_or_default(),
        told: latest
            .map(|l| {
                format!(
                    "{} {}{}",
                    l.told_on,
                    l.told_how.name_zh(),
                    if l.signed_scanned {
                        "，回执已扫描"
                    } else {
                        ""
                    }
                )
            })
            .unwrap_or_default(),
    }
}

/// Pages beyond this are not offered (50 000 people at 50 a page, twice `MAX_EXPORT_ROWS`).
const MAX_PAGE: usize = 1_000;

/// `GET /console/unpaid?region=&station=&fee_year=&page=`: one page of the list, masked, read
/// as one page from storage (`Storage::unpaid_page`), with each person's phone (masked) and
/// latest recorded reason; how many owe and how much from the progress the console keeps,
/// read beside it.
pub async fn page(
    State(state): State<AppState>,
    Extension(progress): Extension<ProgressCache>,
    user: ConsoleUser,
    limit: Option<Extension<ExportLimit>>,
    Query(query): Query<UnpaidQuery>,
) -> Result<Response, PageError> {
    let (scope, mut page) = match asked(&state, &user, &query, limit_of(limit.as_ref())).await? {
        Ok(found) => found,
        Err(page) => return render_with_status(&*page, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let mut wanted = query
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);
    let read = |number: usize| {
        state.storage.unpaid_page(
            scope.region,
            scope.fee_year,
            scope.station.as_ref(),
            (number - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )
    };
    let (found, totals) = tokio::join!(
        read(wanted),
        progress.owing(&state, scope.region, scope.fee_year, scope.station.as_ref())
    );
    let (mut found, totals) = (found?, totals?);
    if found.rows.is_empty() && wanted > 1 {
        // Past the end (the list shrank, or a typed number): the first page.
        wanted = 1;
        found = read(1).await?;
    }
    let total = usize::try_from(totals.persons).unwrap_or(0);
    page.listed = true;
    page.total = total;
    page.total_owed = yuan(totals.owed_fen);
    page.counted_at = beijing_second(totals.computed_at);
    page.page = wanted;
    page.more = found.more && wanted < MAX_PAGE;
    // The totals may be a minute old: the pages the list has now decide the last one.
    page.pages = if page.more {
        total.div_ceil(PAGE_SIZE).max(wanted + 1).min(MAX_PAGE)
    } else {
        wanted
    };
    page.lines = found
        .rows
        .iter()
        .map(|r| line_of(&user, r, scope.fee_year))
        .collect();
    html(&page)
}

/// `GET /console/unpaid/export?region=&station=&fee_year=`: the list as the API's XLSX (full
/// names, ID numbers, phones, and in 原因 each person's latest recorded reason and how they were
/// told), at most [`MAX_EXPORT_ROWS`] rows, audited as `read.unpaid_list`.
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
    let shell = standing_report_shell(
        scope.region.as_str(),
        scope.region_name.as_deref(),
        scope.fee_year,
        scope.station.as_ref(),
        true,
        state.clock.today(),
    );
    let (bytes, rows) = unpaid_workbook(&state, &scope, limit, &shell).await?;
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
            "rows": rows,
            "via": "console",
        }),
    )
    .await?;
    Ok(shell.attachment(bytes))
}

#[derive(Deserialize, Default)]
pub struct FollowUpQuery {
    fee_year: Option<String>,
    done: Option<String>,
}

/// The follow-up form's fields as sent.
#[derive(Deserialize, Default, Clone)]
pub struct FollowUpFields {
    #[serde(default)]
    fee_year: String,
    #[serde(default)]
    told_on: String,
    #[serde(default)]
    told_how: String,
    #[serde(default)]
    signed_scanned: Option<String>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

/// One earlier record as the page lists it.
pub struct FollowUpLine {
    pub seq: i64,
    pub told_on: String,
    pub told_how: &'static str,
    pub signed_scanned: bool,
    pub reason: String,
    pub note: String,
    pub recorded_by: String,
}

/// A field with its message, beside it.
#[derive(Default)]
pub struct FieldErrors {
    pub told_on: Option<String>,
    pub told_how: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.told_on.is_some()
            || self.told_how.is_some()
            || self.reason.is_some()
            || self.note.is_some()
    }
}

#[derive(Template)]
#[template(path = "unpaid/follow_up.html")]
pub struct FollowUpPage {
    pub chrome: Chrome,
    pub action: String,
    pub back: String,
    pub fee_year: String,
    pub name_masked: String,
    pub id_masked: String,
    pub phone_masked: String,
    pub station: String,
    pub methods: Vec<(&'static str, &'static str)>,
    pub reasons: Vec<String>,
    pub fields: FollowUpFields,
    pub errors: FieldErrors,
    pub history: Vec<FollowUpLine>,
    pub notice: Option<String>,
    pub note_limit: usize,
}

fn fee_year_of(text: Option<&str>) -> Result<FeeYear, PageError> {
    text.and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(|y| FeeYear::new(y).ok())
        .ok_or_else(|| PageError::bad_form("缴费年度有误，请从未缴名单重新进入"))
}

async fn follow_up_page(
    state: &AppState,
    user: &ConsoleUser,
    region: RegionCode,
    id: &IdNumber,
    fee_year: FeeYear,
    reasons: Vec<String>,
    fields: FollowUpFields,
) -> Result<FollowUpPage, PageError> {
    let (person, records) = follow_ups_of(state, &user.staff, region, fee_year, id).await?;
    let link = user.person_ref(id.as_str());
    Ok(FollowUpPage {
        chrome: Chrome::new(user, "unpaid", "未缴人员告知记录"),
        action: format!("/console/unpaid/follow-up/{region}/{link}"),
        back: format!("/console/unpaid?region={region}&fee_year={fee_year}"),
        fee_year: fee_year.to_string(),
        name_masked: person.name.masked(),
        id_masked: id.masked(),
        phone_masked: person
            .phone
            .as_ref()
            .map(|p| p.masked())
            .unwrap_or_else(|| "（未登记）".to_owned()),
        station: person
            .station
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        methods: NoticeMethod::ALL
            .iter()
            .map(|m| (m.code(), m.name_zh()))
            .collect(),
        reasons,
        fields,
        errors: FieldErrors::default(),
        history: records
            .into_iter()
            .map(|r| FollowUpLine {
                seq: r.seq,
                told_on: r.follow_up.told_on.to_string(),
                told_how: r.follow_up.told_how.name_zh(),
                signed_scanned: r.follow_up.signed_scanned,
                reason: r.follow_up.reason,
                note: r.follow_up.note.unwrap_or_default(),
                recorded_by: r.follow_up.recorded_by,
            })
            .collect(),
        notice: None,
        note_limit: MAX_NOTE_CHARS,
    })
}

/// `GET /console/unpaid/follow-up/{region}/{ref}?fee_year=`: a person's follow-ups in the fee
/// year and the form to record one (who may change the person: the station, the centre).
pub async fn follow_up_form(
    State(state): State<AppState>,
    user: ConsoleUser,
    reasons: Option<Extension<UnpaidReasons>>,
    Path((region, id)): Path<(String, String)>,
    Query(query): Query<FollowUpQuery>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let fee_year = fee_year_of(query.fee_year.as_deref())?;
    let fields = FollowUpFields {
        fee_year: fee_year.to_string(),
        told_on: state.clock.today().to_string(),
        ..FollowUpFields::default()
    };
    let (person, _) =
        yibao_server::services::persons::load_person(&state, &user.staff, region, &id).await?;
    user.staff.may_change(region, person.station.as_ref())?;
    let mut page = follow_up_page(
        &state,
        &user,
        region,
        &id,
        fee_year,
        reasons_of(reasons.as_ref()),
        fields,
    )
    .await?;
    if query.done.as_deref() == Some("saved") {
        page.notice = Some("告知记录已保存。".into());
    }
    html(&page)
}

/// `POST /console/unpaid/follow-up/{region}/{ref}`: records a follow-up; each field's problem
/// is shown beside it (422), nothing stored.
pub async fn follow_up_save(
    State(state): State<AppState>,
    reasons: Option<Extension<UnpaidReasons>>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, fields): CsrfForm<FollowUpFields>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let fee_year = fee_year_of(Some(&fields.fee_year))?;
    let reasons = reasons_of(reasons.as_ref());
    let today = state.clock.today();
    let mut errors = FieldErrors::default();
    let told_on = match chrono::NaiveDate::parse_from_str(fields.told_on.trim(), "%Y-%m-%d") {
        Ok(day) if day > today => {
            errors.told_on = Some("告知日期不能晚于今天".into());
            None
        }
        Ok(day) if day < today - chrono::Days::new(2 * 366) => {
            errors.told_on = Some("告知日期过早，请填写本次征缴期内的日期".into());
            None
        }
        Ok(day) => Some(day),
        Err(_) => {
            errors.told_on = Some("请填写告知日期，格式如 2026-11-05".into());
            None
        }
    };
    let told_how = NoticeMethod::parse(fields.told_how.trim());
    if told_how.is_none() {
        errors.told_how = Some("请选择告知方式".into());
    }
    let reason = fields.reason.trim().to_owned();
    if !reasons.contains(&reason) {
        errors.reason = Some("请从列表中选择未缴费原因".into());
    }
    let note = fields.note.trim().to_owned();
    if note.chars().count() > MAX_NOTE_CHARS {
        errors.note = Some(format!("备注不能超过 {MAX_NOTE_CHARS} 个字"));
    }
    match (told_on, told_how) {
        (Some(told_on), Some(told_how)) if !errors.any() => {
            record_follow_up(
                &state,
                &user.staff,
                region,
                fee_year,
                &id,
                FollowUpInput {
                    told_on,
                    told_how,
                    signed_scanned: fields.signed_scanned.is_some(),
                    reason,
                    note: (!note.is_empty()).then_some(note),
                },
            )
            .await?;
            Ok(see_other(&format!(
                "/console/unpaid/follow-up/{region}/{}?fee_year={fee_year}&done=saved",
                user.person_ref(id.as_str())
            )))
        }
        _ => {
            let (person, _) =
                yibao_server::services::persons::load_person(&state, &user.staff, region, &id)
                    .await?;
            user.staff.may_change(region, person.station.as_ref())?;
            let mut page =
                follow_up_page(&state, &user, region, &id, fee_year, reasons, fields).await?;
            page.errors = errors;
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}
