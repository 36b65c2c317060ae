//! Lists: who paid and who has not (per station), the published paid list, refunds overdue and
//! payments not posted.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use yibao_domain::StationCode;
use yibao_storage::records::{standing_name_zh, MAX_LIST_ROWS};
use yibao_storage::StandingRow;

use super::{region_of, year_of};
use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::services::audit;
use crate::{AppState, ErrorBody, ErrorCode, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(standing))
        .routes(routes!(paid_listing))
        .routes(routes!(overdue_refunds))
        .routes(routes!(unposted))
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
            id_number: r.id_number.as_str().to_owned(),
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
) -> Result<Response, ServiceError> {
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
            return Err(ServiceError::new(
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
) -> Result<Html<String>, ServiceError> {
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

/// Refunds owed past their due date (two working days after the payment), oldest first.
#[utoipa::path(get, path = "/api/v1/collection/overdue-refunds", summary = "逾期未退费清单", tag = "admin",
    responses((status = 200, body = [yibao_storage::collection::RefundState]), (status = 403, body = ErrorBody)))]
pub async fn overdue_refunds(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Json<Vec<yibao_storage::collection::RefundState>>, ServiceError> {
    let region = staff.collection_read_scope()?;
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
) -> Result<Json<Vec<yibao_storage::collection::OutboxEvent>>, ServiceError> {
    let region = staff.collection_read_scope()?;
    let before = state.clock.now().timestamp() - 2 * 86400;
    Ok(Json(
        state
            .storage
            .unposted_events(before, region.as_deref(), MAX_LIST_ROWS)
            .await?,
    ))
}
