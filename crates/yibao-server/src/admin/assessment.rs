//! Assessment (核定) of a region and fee year.

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::routes;

use super::{region_of, year_of};
use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::services::assessment::{assess_region, AssessReport};
use crate::services::audit;
use crate::{AppState, ErrorBody, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(assess))
}

/// Assesses a region's fee year in bulk (核定), center administrator only. Idempotent.
#[utoipa::path(post, path = "/api/v1/regions/{region}/fee-years/{fee_year}/assessment", summary = "年度核定", tag = "admin",
    params(("region" = String, Path), ("fee_year" = i64, Path)),
    responses((status = 200, body = AssessReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn assess(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, fee_year)): Path<(String, i64)>,
) -> Result<Json<AssessReport>, ServiceError> {
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
