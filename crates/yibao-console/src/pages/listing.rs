//! 缴费公示: the printable public listing of who has paid, per region or station and fee year,
//! names and ID numbers masked, laid out on numbered A4 sheets (the print stylesheet hides the
//! console around them). The same scope rule (`Staff::station_filter`) and the same audit entry
//! (`read.paid_listing`) as the API's `GET /api/v1/regions/{region}/fee-years/{fee_year}/paid-listing`.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_server::export::mask_name;
use yibao_server::AppState;
use yibao_storage::records::MAX_LIST_ROWS;

use crate::session::ConsoleUser;
use crate::view::Chrome;
use crate::{html, PageError};

/// Rows on one printed A4 sheet (portrait, 10.5 pt, with the heading and the footer).
pub const ROWS_PER_SHEET: usize = 30;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/listing", get(page))
}

#[derive(Deserialize)]
pub struct ListingQuery {
    region: Option<String>,
    station: Option<String>,
    year: Option<String>,
}

/// One line of the listing.
pub struct ListingLine {
    pub number: usize,
    pub name: String,
    pub id_number: String,
    pub station: String,
}

/// One printed page.
pub struct Sheet {
    pub number: usize,
    pub lines: Vec<ListingLine>,
}

/// What the form shows beside its fields.
#[derive(Default)]
pub struct FieldErrors {
    pub region: Option<String>,
    pub station: Option<String>,
    pub year: Option<String>,
}

#[derive(Template)]
#[template(path = "listing/page.html")]
pub struct ListingPage {
    pub chrome: Chrome,
    pub regions: Vec<(String, String)>,
    pub may_choose_region: bool,
    pub may_choose_station: bool,
    pub region: String,
    pub region_name: String,
    pub station: String,
    pub year: String,
    pub errors: FieldErrors,
    /// Empty until a listing was asked for.
    pub sheets: Vec<Sheet>,
    pub sheet_count: usize,
    pub paid: usize,
    pub asked: bool,
    pub truncated: bool,
    pub today: String,
    pub max_rows: usize,
}

/// `GET /console/listing`: the form, and the listing once a fee year is given.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<ListingQuery>,
) -> Result<Response, PageError> {
    let account = user.account();
    let regions = state.storage.list_regions().await?;
    let may_choose_region = account.region.is_none();
    let may_choose_station = account.station.is_none();
    let mut errors = FieldErrors::default();
    let region_text = match account.region {
        Some(own) => own.to_string(),
        None => query
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| regions.first().map(|r| r.code().to_string()))
            .unwrap_or_default(),
    };
    let region = match RegionCode::parse(&region_text) {
        Ok(r) if regions.iter().any(|x| x.code() == r) => Some(r),
        _ => {
            errors.region = Some("请选择已登记的统筹区".into());
            None
        }
    };
    let station_text = match &account.station {
        Some(own) => own.as_str().to_owned(),
        None => query.station.clone().unwrap_or_default().trim().to_owned(),
    };
    let requested_station = if station_text.is_empty() {
        None
    } else {
        match StationCode::parse(&station_text) {
            Ok(s) => Some(s),
            Err(_) => {
                errors.station = Some("服务站代码格式不正确（字母、数字和“-”）".into());
                None
            }
        }
    };
    let year_text = query.year.clone().unwrap_or_default().trim().to_owned();
    let asked = !year_text.is_empty();
    let fee_year = if asked {
        match year_text.parse::<i64>().ok().map(FeeYear::new) {
            Some(Ok(y)) => Some(y),
            _ => {
                errors.year = Some("请输入四位数的缴费年度，例如 2027".into());
                None
            }
        }
    } else {
        None
    };
    let region_name = region
        .and_then(|r| regions.iter().find(|x| x.code() == r))
        .map(|r| r.name().to_owned())
        .unwrap_or_default();
    let today = state.clock.today();
    let mut view = ListingPage {
        chrome: Chrome::new(&user, "listing", "缴费公示"),
        regions: regions
            .iter()
            .map(|r| (r.code().to_string(), r.name().to_owned()))
            .collect(),
        may_choose_region,
        may_choose_station,
        region: region_text,
        region_name,
        station: station_text,
        year: year_text,
        errors,
        sheets: Vec::new(),
        sheet_count: 0,
        paid: 0,
        asked,
        truncated: false,
        today: today.format("%Y年%m月%d日").to_string(),
        max_rows: MAX_LIST_ROWS,
    };
    let (Some(region), Some(fee_year)) = (region, fee_year) else {
        return html(&view);
    };
    if view.errors.station.is_some() {
        return html(&view);
    }
    let station = user.staff.station_filter(region, requested_station)?;
    let rows = state
        .storage
        .standing(region, fee_year, station.as_ref(), MAX_LIST_ROWS)
        .await?;
    view.truncated = rows.len() >= MAX_LIST_ROWS;
    let lines: Vec<ListingLine> = rows
        .iter()
        .filter(|r| r.standing == "paid")
        .enumerate()
        .map(|(i, r)| ListingLine {
            number: i + 1,
            name: mask_name(&r.name),
            id_number: r.id_number.masked(),
            station: r.station_code.clone().unwrap_or_default(),
        })
        .collect();
    view.paid = lines.len();
    yibao_server::services::audit(
        &state,
        &user.staff,
        "read.paid_listing",
        Some(region),
        &fee_year.to_string(),
        serde_json::json!({
            "station": station.as_ref().map(StationCode::as_str),
            "rows": view.paid,
            "masked": true,
            "via": "console",
        }),
    )
    .await?;
    let mut sheets = Vec::new();
    let mut lines = lines.into_iter().peekable();
    while lines.peek().is_some() {
        sheets.push(Sheet {
            number: sheets.len() + 1,
            lines: lines.by_ref().take(ROWS_PER_SHEET).collect(),
        });
    }
    view.sheet_count = sheets.len();
    view.sheets = sheets;
    html(&view)
}
