//! 审计日志: the append-only audit log, newest first, for administrators and auditors, through
//! the API's own handler (`GET /api/v1/audit`, the same role check).
//!
//! Storage lists the newest entries only (no filter by actor, action or date): the page reads the
//! newest [`AUDIT_WINDOW`] (the API's largest `limit`) and filters and pages among them, and says so.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_server::AppState;
use yibao_storage::AuditRecord;

use crate::pages::desk::{self, Paged, Pager};
use crate::session::ConsoleUser;
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

/// Newest entries the page filters among: the API's largest `limit`.
pub const AUDIT_WINDOW: usize = 1000;
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
            at: r.at.chars().take(19).collect(),
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
    pub window: usize,
    pub rows: Vec<AuditLine>,
    pub pager: Pager,
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
    page: Option<String>,
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

/// `GET /console/audit?actor=&action=&from=&to=&page=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let uri: Uri = format!("/api/v1/audit?limit={AUDIT_WINDOW}")
        .parse()
        .map_err(|_| PageError::bad_form("请求有误"))?;
    let query =
        axum::extract::Query::try_from_uri(&uri).map_err(|_| PageError::bad_form("请求有误"))?;
    let entries = yibao_server::admin::audit_log(State(state), user.staff.clone(), query)
        .await?
        .0;
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
    let page = desk::page_number(q.page.as_deref());
    let kept: Vec<&AuditRecord> = if errors.is_empty() {
        entries
            .iter()
            .filter(|r| actor.is_empty() || r.entry.actor == actor)
            .filter(|r| action.is_empty() || r.entry.action.starts_with(action.as_str()))
            .filter(|r| {
                let day =
                    r.at.get(..10)
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                match day {
                    Some(day) => {
                        from_date.is_none_or(|f| day >= f) && to_date.is_none_or(|t| day <= t)
                    }
                    None => from_date.is_none() && to_date.is_none(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let query = desk::query_of(&[
        ("actor", &actor),
        ("action", &action),
        ("from", &from),
        ("to", &to),
    ]);
    let paged = Paged::cut(kept, page, "/console/audit", &query);
    let failed = !errors.is_empty();
    let view = AuditPage {
        chrome: Chrome::new(&user, "audit", "审计日志"),
        actor,
        action,
        from,
        to,
        errors,
        window: AUDIT_WINDOW,
        rows: paged.rows.iter().map(|r| AuditLine::of(r)).collect(),
        pager: paged.pager,
    };
    if failed {
        render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        html(&view)
    }
}
