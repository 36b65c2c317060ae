//! The audit log as administrators and auditors read it: newest first, filtered over every
//! entry.

use serde::Deserialize;
use utoipa::IntoParams;
use yibao_storage::{AuditFilter, AuditRecord};

use crate::auth::Staff;
use crate::{AppState, ErrorCode, ServiceError};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many, newest first (1 to 1000; default 100).
    pub limit: Option<usize>,
    /// Only this actor (user name), exactly.
    pub actor: Option<String>,
    /// Only actions beginning with this, e.g. `read.` (at most 64 characters).
    pub action: Option<String>,
    /// Only entries of this day (UTC) or later, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Only entries of this day (UTC) or earlier, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Keyset paging: only entries older than this `audit_id`.
    pub before: Option<i64>,
}

/// Longest actor or action filter.
pub const MAX_AUDIT_FILTER_CHARS: usize = 64;

/// The audit log, newest first, filtered over every entry. Administrators and auditors only.
pub async fn read_audit_log(
    state: &AppState,
    staff: &Staff,
    query: AuditQuery,
) -> Result<Vec<AuditRecord>, ServiceError> {
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
    let filter = AuditFilter {
        actor: text(query.actor, "actor")?,
        action_prefix: text(query.action, "action")?,
        from_day: day(query.from, "from")?,
        to_day: day(query.to, "to")?,
        before_id: query.before,
    };
    Ok(state.storage.audit_entries(&filter, limit).await?)
}
