//! 对账: the channels' statements by day and the differences found, through the API's own handler
//! (`GET /api/v1/reports/reconciliation`: a tax collector names a channel that serves their region
//! and sees their region's differences only, and no summary of a channel shared with other
//! regions). Days with differences and differences still open are highlighted.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde_json::Value;
use yibao_domain::reconciliation::DifferenceClass;
use yibao_server::AppState;

use crate::pages::desk::{self, Paged, Pager};
use crate::session::ConsoleUser;
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// Longest period the page shows, days (the API's reports reach a year).
pub const MAX_PAGE_DAYS: i64 = 31;
/// Days shown when none are asked for: the last week.
const DEFAULT_DAYS: i64 = 7;
/// Largest answer read from the report handler.
const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

pub struct StatementLine {
    pub channel_id: String,
    pub date: String,
    pub format: String,
    pub lines: i64,
    /// None: the summary is not this reader's (a shared channel) or could not be read.
    pub counts: Option<[i64; 5]>,
    pub differs: bool,
}

pub struct DifferenceLine {
    pub date: String,
    pub channel_id: String,
    pub txn: String,
    pub class: String,
    pub region: String,
    pub platform: String,
    pub channel: String,
    pub status: &'static str,
    pub open: bool,
    pub resolution: String,
}

#[derive(Template)]
#[template(path = "desk/reconciliation.html")]
pub struct ReconciliationPage {
    pub chrome: Chrome,
    pub channels: Vec<String>,
    pub all_channels: bool,
    pub channel_id: String,
    pub from: String,
    pub to: String,
    pub unresolved: bool,
    pub errors: Vec<(&'static str, String)>,
    pub asked: bool,
    pub statements: Vec<StatementLine>,
    pub differences: Vec<DifferenceLine>,
    pub pager: Pager,
}

impl ReconciliationPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Deserialize)]
pub struct ReconciliationQuery {
    channel_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    unresolved: Option<String>,
    page: Option<String>,
}

fn status_zh(status: &str) -> &'static str {
    match status {
        "open" => "待处理",
        "carried" => "结转次日核对",
        "escalated" => "已上报待人工处理",
        "resolved" => "已处理",
        _ => "未知",
    }
}

fn date_in(
    text: &str,
    default: NaiveDate,
    field: &'static str,
    errors: &mut Vec<(&'static str, String)>,
) -> NaiveDate {
    if text.is_empty() {
        return default;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
        .unwrap_or_else(|| {
            errors.push((field, "日期应为 2000 至 2100 年间的 YYYY-MM-DD".to_owned()));
            default
        })
}

/// `GET /console/reconciliation?channel_id=&from=&to=&unresolved=&page=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ReconciliationQuery>,
) -> Result<Response, PageError> {
    let own = desk::money_reader(&user)?;
    let mut channels: Vec<String> = state
        .storage
        .list_channels()
        .await?
        .into_iter()
        .filter(|c| own.as_ref().is_none_or(|r| c.regions.contains(r)))
        .map(|c| c.channel_id)
        .collect();
    channels.sort();
    let clean = |v: Option<String>| v.unwrap_or_default().trim().to_owned();
    let (channel_id, from_text, to_text) = (clean(q.channel_id), clean(q.from), clean(q.to));
    let unresolved = q.unresolved.is_some_and(|v| !v.is_empty());
    let today = state.clock.today();
    let mut errors = Vec::new();
    let to = date_in(&to_text, today, "to", &mut errors);
    let from = date_in(
        &from_text,
        to - Duration::days(DEFAULT_DAYS - 1),
        "from",
        &mut errors,
    );
    if errors.is_empty() && (from > to || to - from >= Duration::days(MAX_PAGE_DAYS)) {
        errors.push((
            "to",
            format!("结束日期不能早于开始日期，且一次最多查看{MAX_PAGE_DAYS}天"),
        ));
    }
    if !channel_id.is_empty() && !channels.contains(&channel_id) {
        errors.push(("channel_id", "请从列表中选择渠道".to_owned()));
    }
    let page = desk::page_number(q.page.as_deref());
    let mut view = ReconciliationPage {
        chrome: Chrome::new(&user, "reconciliation", "对账"),
        all_channels: own.is_none(),
        channels,
        channel_id: channel_id.clone(),
        from: from.to_string(),
        to: to.to_string(),
        unresolved,
        errors,
        // A tax collector names a channel (the API asks for one).
        asked: own.is_none() || !channel_id.is_empty(),
        statements: Vec::new(),
        differences: Vec::new(),
        pager: Paged::<()>::cut(Vec::new(), 1, "", "").pager,
    };
    if !view.errors.is_empty() {
        return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if !view.asked {
        return html(&view);
    }
    let query = desk::query_of(&[
        ("channel_id", &channel_id),
        ("from", &view.from),
        ("to", &view.to),
        ("unresolved", if unresolved { "true" } else { "" }),
    ]);
    let uri: Uri = format!("/api/v1/reports/reconciliation?{query}")
        .parse()
        .map_err(|_| PageError::bad_form("请求有误"))?;
    let params =
        axum::extract::Query::try_from_uri(&uri).map_err(|_| PageError::bad_form("请求有误"))?;
    let answer = yibao_server::settlement_api::report_reconciliation(
        State(state),
        user.staff.clone(),
        params,
    )
    .await?;
    let bytes = axum::body::to_bytes(answer.into_body(), MAX_REPORT_BYTES)
        .await
        .map_err(|_| PageError::bad_form("对账记录过多，请缩短日期范围或选择渠道"))?;
    let report: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or_default();
    view.statements = report["statements"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let summary = &s["summary"];
            let counts = summary.is_object().then(|| {
                [
                    int(summary, "matched"),
                    int(summary, "channel_only"),
                    int(summary, "platform_only"),
                    int(summary, "amount_mismatch"),
                    int(summary, "duplicate"),
                ]
            });
            StatementLine {
                channel_id: text(s, "channel_id"),
                date: text(s, "date"),
                format: text(s, "format"),
                lines: int(s, "lines"),
                differs: counts.is_some_and(|c| c[1..].iter().any(|n| *n > 0)),
                counts,
            }
        })
        .collect();
    let items: Vec<Value> = report["differences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let paged = Paged::cut(items, page, "/console/reconciliation", &query);
    view.differences = paged
        .rows
        .iter()
        .map(|i| {
            let class = text(i, "class");
            let status = text(i, "status");
            DifferenceLine {
                date: text(i, "statement_date"),
                channel_id: text(i, "channel_id"),
                txn: text(i, "channel_txn_id"),
                class: DifferenceClass::from_code(&class).map_or(class, |c| c.name_zh().to_owned()),
                region: text(i, "region"),
                platform: yuan(int(i, "platform_fen")),
                channel: yuan(int(i, "channel_fen")),
                status: status_zh(&status),
                open: status != "resolved",
                resolution: text(i, "resolution"),
            }
        })
        .collect();
    view.pager = paged.pager;
    html(&view)
}
