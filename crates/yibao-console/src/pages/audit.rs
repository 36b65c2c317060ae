//! 审计日志: the append-only audit log, newest first, for administrators and auditors, through
//! the service the API's handler calls (as `GET /api/v1/audit`, the same role check). The filters
//! (actor, action prefix, days) are a storage query over every entry; pages are keyset pages
//! (`before`, the last entry's id), 50 a page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_server::AppState;
use yibao_storage::AuditRecord;

use crate::pages::desk;
use crate::session::ConsoleUser;
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

/// Longest filter text.
const MAX_FILTER_CHARS: usize = 64;
/// Longest detail shown in a row (the rest is cut with "…").
const MAX_DETAIL_CHARS: usize = 200;

pub struct AuditLine {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub region: String,
    pub target: String,
    pub detail: String,
}

impl AuditLine {
    fn of(r: &AuditRecord) -> AuditLine {
        let detail = r.entry.detail.to_string();
        let detail = if detail == "{}" || detail == "null" {
            String::new()
        } else if detail.chars().count() > MAX_DETAIL_CHARS {
            let cut: String = detail.chars().take(MAX_DETAIL_CHARS).collect();
            format!("{cut}…")
        } else {
            detail
        };
        AuditLine {
            at: crate::view::beijing_of_stored(&r.at),
            actor: r.entry.actor.clone(),
            action: r.entry.action.clone(),
            region: r.entry.region.clone().unwrap_or_default(),
            target: r.entry.target.clone(),
            detail,
        }
    }
}

#[derive(Template)]
#[template(path = "desk/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub actor: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub errors: Vec<(&'static str, String)>,
    pub rows: Vec<AuditLine>,
    /// The first page, when this is a later one.
    pub first: Option<String>,
    /// The next (older) page.
    pub next: Option<String>,
}

impl AuditPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
}

fn date_field(
    text: &str,
    errors: &mut Vec<(&'static str, String)>,
    field: &'static str,
) -> Option<NaiveDate> {
    if text.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push((field, "日期应为 YYYY-MM-DD，如 2026-11-02".to_owned()));
            None
        }
    }
}

/// `GET /console/audit?actor=&action=&from=&to=&before=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let clean = |v: Option<String>| v.unwrap_or_default().trim().to_owned();
    let (actor, action, from, to) = (clean(q.actor), clean(q.action), clean(q.from), clean(q.to));
    let mut errors = Vec::new();
    for (field, value) in [("actor", &actor), ("action", &action)] {
        if value.chars().count() > MAX_FILTER_CHARS {
            errors.push((field, format!("不超过{MAX_FILTER_CHARS}个字符")));
        }
    }
    let from_date = date_field(&from, &mut errors, "from");
    let to_date = date_field(&to, &mut errors, "to");
    if let (Some(f), Some(t)) = (from_date, to_date) {
        if f > t {
            errors.push(("to", "结束日期不能早于开始日期".to_owned()));
        }
    }
    let before = q
        .before
        .as_deref()
        .and_then(|b| b.trim().parse::<i64>().ok())
        .filter(|b| *b > 0);
    let query = desk::query_of(&[
        ("actor", &actor),
        ("action", &action),
        ("from", &from),
        ("to", &to),
    ]);
    let mut rows = Vec::new();
    if errors.is_empty() {
        // As the API's query string names them: an empty filter is left out.
        let filled = |text: &str| Some(text.to_owned()).filter(|t| !t.is_empty());
        let filter = yibao_server::services::audit_log::AuditQuery {
            limit: Some(desk::PAGE_SIZE + 1),
            actor: filled(actor.as_str()),
            action: filled(action.as_str()),
            from: filled(from.as_str()),
            to: filled(to.as_str()),
            before,
        };
        rows =
            yibao_server::services::audit_log::read_audit_log(&state, &user.staff, filter).await?;
    } else {
        // The role is checked whatever the filters, as the API checks it.
        if !matches!(
            user.account().role,
            yibao_storage::Role::Admin | yibao_storage::Role::Auditor
        ) {
            return Err(yibao_server::ServiceError::of(yibao_server::ErrorCode::Forbidden).into());
        }
    }
    let more = rows.len() > desk::PAGE_SIZE;
    rows.truncate(desk::PAGE_SIZE);
    let link = |extra: String| {
        if query.is_empty() {
            format!("/console/audit?{extra}")
        } else {
            format!("/console/audit?{query}&{extra}")
        }
    };
    let next = more
        .then(|| rows.last().map(|r| link(format!("before={}", r.audit_id))))
        .flatten();
    let first = before.map(|_| {
        if query.is_empty() {
            "/console/audit".to_owned()
        } else {
            format!("/console/audit?{query}")
        }
    });
    let failed = !errors.is_empty();
    let view = AuditPage {
        chrome: Chrome::new(&user, "audit", "审计日志"),
        actor,
        action,
        from,
        to,
        errors,
        rows: rows.iter().map(AuditLine::of).collect(),
        first,
        next,
    };
    if failed {
        render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        html(&view)
    }
}
