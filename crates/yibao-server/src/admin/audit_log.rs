//! The audit log: who did what, read by administrators and auditors.

use axum::extract::{Query, State};
use axum::Json;
use utoipa_axum::routes;

use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::services::audit_log;
use crate::{AppState, ErrorBody, ServiceError};

pub use crate::services::audit_log::{AuditQuery, MAX_AUDIT_FILTER_CHARS};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(audit_log))
}

/// The audit log, newest first, filtered over every entry: administrators and auditors.
#[utoipa::path(get, path = "/api/v1/audit", summary = "审计日志", tag = "admin", params(AuditQuery),
    responses((status = 200, body = [yibao_storage::AuditRecord]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<yibao_storage::AuditRecord>>, ServiceError> {
    let rows = audit_log::read_audit_log(&state, &staff, query).await?;
    Ok(Json(rows))
}
