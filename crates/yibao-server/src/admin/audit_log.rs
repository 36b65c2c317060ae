//! The audit log: who did what, read by administrators and auditors.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::{AppState, ErrorBody, ErrorCode, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new().routes(routes!(audit_log))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many, newest first (1 to 1000; default 100).
    limit: Option<usize>,
    /// Only this actor (user name), exactly.
    actor: Option<String>,
    /// Only actions beginning with this, e.g. `read.` (at most 64 characters).
    action: Option<String>,
    /// Only entries of this day (UTC) or later, `YYYY-MM-DD`.
    from: Option<String>,
    /// Only entries of this day (UTC) or earlier, `YYYY-MM-DD`.
    to: Option<String>,
    /// Keyset paging: only entries older than this `audit_id`.
    before: Option<i64>,
}

/// Longest actor or action filter.
pub const MAX_AUDIT_FILTER_CHARS: usize = 64;

/// The audit log, newest first, filtered over every entry: administrators and auditors.
#[utoipa::path(get, path = "/api/v1/audit", summary = "审计日志", tag = "admin", params(AuditQuery),
    responses((status = 200, body = [yibao_storage::AuditRecord]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<yibao_storage::AuditRecord>>, ServiceError> {
    staff.may_read_audit_log()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let text = |v: Option<String>, name: &str| -> Result<Option<String>, ServiceError> {
        match v.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
            Some(t) if t.chars().count() > MAX_AUDIT_FILTER_CHARS => Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("{name} 不超过{MAX_AUDIT_FILTER_CHARS}个字符"),
            )),
            other => Ok(other),
        }
    };
    let day = |v: Option<String>, name: &str| -> Result<Option<chrono::NaiveDate>, ServiceError> {
        v.filter(|t| !t.trim().is_empty())
            .map(|t| {
                chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| {
                    ServiceError::new(ErrorCode::InvalidRequest, format!("{name} 应为 YYYY-MM-DD"))
                })
            })
            .transpose()
    };
    let filter = yibao_storage::AuditFilter {
        actor: text(query.actor, "actor")?,
        action_prefix: text(query.action, "action")?,
        from_day: day(query.from, "from")?,
        to_day: day(query.to, "to")?,
        before_id: query.before,
    };
    Ok(Json(state.storage.audit_entries(&filter, limit).await?))
}
