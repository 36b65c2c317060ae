//! Rosters (花名册): the template, and uploads imported into enrolment.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;
use yibao_roster_file::Limits;

use super::year_of;
use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::services::roster_import::{import_roster, template_csv, ImportReport, ImportScope};
use crate::{AppState, ErrorBody, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(roster_template))
}

/// Roster uploads: bodies up to [`ROSTER_UPLOAD_LIMIT_BYTES`].
pub(crate) fn upload_routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(upload_roster))
}

/// Largest roster upload over HTTP (64 MiB, about 500 000 rows); larger files go through
/// `yibao import roster` on the server.
pub const ROSTER_UPLOAD_LIMIT_BYTES: usize = 64 * 1024 * 1024;

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
) -> Result<Json<ImportReport>, ServiceError> {
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
    let dir = tempfile::tempdir().map_err(|e| ServiceError::internal("upload temp dir", e))?;
    let path = dir.path().join(format!("upload.{extension}"));
    std::fs::write(&path, &body).map_err(|e| ServiceError::internal("upload write", e))?;
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
