//! Setting up a region: its name, fee policies and holiday calendars (the administrator).

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::region_of;
use crate::auth::Admin;
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::{audit, setup};
use crate::{AppState, ErrorBody, ServiceError};

pub use crate::services::setup::{
    CalendarInput, CategoryAmountInput, FeePolicyInputBody, WindowInput,
};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(put_region))
        .routes(routes!(put_fee_policy))
        .routes(routes!(put_calendar))
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
) -> Result<axum::http::StatusCode, ServiceError> {
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
) -> Result<axum::http::StatusCode, ServiceError> {
    setup::save_fee_policy(&state, &staff, &region, fee_year, &input).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
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
) -> Result<axum::http::StatusCode, ServiceError> {
    setup::replace_calendar_year(&state, &staff, &region, year, &input).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
