//! 对账: the channels' statements by day and the differences found, through the service the API's
//! handler calls (as `GET /api/v1/reports/reconciliation`: a tax collector names a channel that
//! serves their region and sees their region's differences only, and no summary of a channel
//! shared with other regions). Days with differences and differences still open are highlighted.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use serde_json::Value;
use yibao_domain::reconciliation::DifferenceClass;
use yibao_domain::ReconciliationItemStatus;
use yibao_server::services::reconciliation::{
    reconciliation_report, resolve_difference, ResolveRequest,
};
use yibao_server::services::settlement_scope::PeriodQuery;
use yibao_server::AppState;

use crate::pages::desk::{self, Paged, Pager};
use crate::pages::statements::{channels_of, ChannelChoices, UploadForm};
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// Longest period the page shows, days (the API's reports reach a year).
pub const MAX_PAGE_DAYS: i64 = 31;
/// Days shown when none are asked for: the last week.
const DEFAULT_DAYS: i64 = 7;

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
    /// The form to close it by hand, for those who may.
    pub resolve_href: Option<String>,
}

#[derive(Template)]
#[template(path = "desk/reconciliation.html")]
pub struct ReconciliationPage {
    pub chrome: Chrome,
    pub channels: ChannelChoices,
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
    /// The statement upload form, for those who may upload.
    pub upload: Option<UploadForm>,
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

/// The API's reconciliation report (as its JSON) for these query parameters, with its scope
/// checks.
pub(crate) async fn report(
    state: &AppState,
    user: &ConsoleUser,
    query: &str,
) -> Result<Value, PageError> {
    let uri: Uri = format!("/api/v1/reports/reconciliation?{query}")
        .parse()
        .map_err(|_| PageError::bad_form("请求有误"))?;
    let Query(params): Query<PeriodQuery> =
        Query::try_from_uri(&uri).map_err(|_| PageError::bad_form("请求有误"))?;
    let findings = reconciliation_report(state, &user.staff, &params).await?;
    let json = serde_json::to_value(&findings.report).unwrap_or(Value::Null);
    Ok(json)
}

/// Who closes a difference by hand, as the API's `POST /api/v1/reconciliation/resolutions`
/// allows: the administrator and tax collectors (in their scope, checked there); auditors read.
pub(crate) fn may_resolve(user: &ConsoleUser) -> bool {
    matches!(
        user.account().role,
        yibao_storage::Role::Admin | yibao_storage::Role::TaxCollector
    )
}

/// `GET /console/reconciliation?channel_id=&from=&to=&unresolved=&page=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<ReconciliationQuery>,
) -> Result<Response, PageError> {
    let own = desk::money_reader(&user)?;
    let channels = channels_of(&state, own.as_deref()).await?;
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
        upload: UploadForm::for_user(&user, &channels, today),
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
    let report = report(&state, &user, &query).await?;
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
        .map(|i| difference_line(i, may_resolve(&user)))
        .collect();
    view.pager = paged.pager;
    html(&view)
}

/// One difference of the report as a line of the page, with the link to close it when `writer`.
pub(crate) fn difference_line(i: &Value, writer: bool) -> DifferenceLine {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or_default();

    let class = text(i, "class");
    let status = text(i, "status");
    let resolve_href = (writer && status != "resolved").then(|| {
        format!(
            "/console/reconciliation/resolve?{}",
            desk::query_of(&[
                ("channel_id", &text(i, "channel_id")),
                ("statement_date", &text(i, "statement_date")),
                ("channel_txn_id", &text(i, "channel_txn_id")),
                ("class", &class),
            ])
        )
    });
    DifferenceLine {
        resolve_href,
        date: text(i, "statement_date"),
        channel_id: text(i, "channel_id"),
        txn: text(i, "channel_txn_id"),
        class: DifferenceClass::from_code(&class).map_or(class, |c| c.name_zh().to_owned()),
        region: text(i, "region"),
        platform: yuan(int(i, "platform_fen")),
        channel: yuan(int(i, "channel_fen")),
        status: ReconciliationItemStatus::from_code(&status).map_or("未知", |s| s.name_zh()),
        open: status != "resolved",
        resolution: resolution_in_words(&text(i, "resolution")),
    }
}

/// A difference's stored resolution in words a clerk reads: the console's own choices
/// ([`RESOLUTIONS`]) by their labels, what booking a statement's line did (`applied:PM…`,
/// `refund_owed:RF…`, `applied_part:PM…:RF…`, written by the reconciliation service) with its
/// numbers; anything else (what a channel wrote through the API) as it was written.
fn resolution_in_words(resolution: &str) -> String {
    if let Some((_, label)) = RESOLUTIONS.iter().find(|(code, _)| *code == resolution) {
        return (*label).to_owned();
    }
    let parts: Vec<&str> = resolution.split(':').collect();
    match parts.as_slice() {
        ["applied", payment] => format!("已按对账单补记入账（缴费流水号 {payment}）"),
        ["refund_owed", refund] => format!("无可入账的应缴费，转为待退款（退费编号 {refund}）"),
        ["applied_part", payment, refund] => {
            format!("部分补记入账（缴费流水号 {payment}），余款待退（退费编号 {refund}）")
        }
        _ => resolution.to_owned(),
    }
}

/// Every difference of a report, in its order.
pub(crate) fn difference_lines(report: &Value, writer: bool) -> Vec<DifferenceLine> {
    report["differences"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|i| difference_line(i, writer))
        .collect()
}

/// What was done, as staff usually say it (the API takes any text up to 64 characters).
pub const RESOLUTIONS: [(&str, &str); 4] = [
    ("refunded_by_channel", "渠道已退还缴费人"),
    ("applied_by_staff", "已人工入账"),
    ("channel_corrected", "渠道已更正对账单"),
    ("other", "其他（见说明）"),
];
/// Longest note (the API's bound).
pub const MAX_NOTE_CHARS: usize = 500;

#[derive(Default, Deserialize)]
pub struct ResolveFields {
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub statement_date: String,
    #[serde(default)]
    pub channel_txn_id: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub resolution: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Template)]
#[template(path = "desk/resolve.html")]
pub struct ResolvePage {
    pub chrome: Chrome,
    pub fields: ResolveFields,
    pub item: DifferenceLine,
    pub resolutions: &'static [(&'static str, &'static str)],
    pub errors: Vec<(&'static str, String)>,
}

impl ResolvePage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// The difference named by the fields, as the reader's report shows it (404 when it is not there).
async fn find_item(
    state: &AppState,
    user: &ConsoleUser,
    f: &ResolveFields,
) -> Result<DifferenceLine, PageError> {
    let query = desk::query_of(&[
        ("channel_id", &f.channel_id),
        ("from", &f.statement_date),
        ("to", &f.statement_date),
    ]);
    let report = report(state, user, &query).await?;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or_default();
    report["differences"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .find(|i| text(i, "channel_txn_id") == f.channel_txn_id && text(i, "class") == f.class)
        .map(|i| {
            let status = text(i, "status");
            DifferenceLine {
                date: text(i, "statement_date"),
                channel_id: text(i, "channel_id"),
                txn: text(i, "channel_txn_id"),
                class: DifferenceClass::from_code(&f.class)
                    .map_or_else(|| f.class.clone(), |c| c.name_zh().to_owned()),
                region: text(i, "region"),
                platform: yuan(int(i, "platform_fen")),
                channel: yuan(int(i, "channel_fen")),
                status: ReconciliationItemStatus::from_code(&status)
                    .map_or("未知", |s| s.name_zh()),
                open: status != "resolved",
                resolution: text(i, "resolution"),
                resolve_href: None,
            }
        })
        .ok_or_else(|| PageError::not_found("未找到该对账差异"))
}

/// `GET /console/reconciliation/resolve?channel_id=&statement_date=&channel_txn_id=&class=`: the
/// form to close one difference by hand.
pub async fn resolve_form(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(fields): Query<ResolveFields>,
) -> Result<Response, PageError> {
    if !may_resolve(&user) {
        return Err(yibao_server::ServiceError::of(yibao_server::ErrorCode::Forbidden).into());
    }
    let item = find_item(&state, &user, &fields).await?;
    html(&ResolvePage {
        chrome: Chrome::new(&user, "reconciliation", "处理对账差异"),
        fields,
        item,
        resolutions: &RESOLUTIONS,
        errors: Vec::new(),
    })
}

/// `POST /console/reconciliation/resolve`: closes the difference through the API's service
/// (scope checked there, audited `reconciliation.resolve`).
pub async fn resolve(
    State(state): State<AppState>,
    CsrfForm(user, fields): CsrfForm<ResolveFields>,
) -> Result<Response, PageError> {
    if !may_resolve(&user) {
        return Err(yibao_server::ServiceError::of(yibao_server::ErrorCode::Forbidden).into());
    }
    let item = find_item(&state, &user, &fields).await?;
    let mut errors = Vec::new();
    if !RESOLUTIONS
        .iter()
        .any(|(code, _)| *code == fields.resolution)
    {
        errors.push(("resolution", "请选择处理结果".to_owned()));
    }
    let note = fields.note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        errors.push(("note", format!("说明不超过{MAX_NOTE_CHARS}个字")));
    } else if fields.resolution == "other" && note.is_empty() {
        errors.push(("note", "选择“其他”时请写明如何处理".to_owned()));
    }
    if !errors.is_empty() {
        let view = ResolvePage {
            chrome: Chrome::new(&user, "reconciliation", "处理对账差异"),
            fields,
            item,
            resolutions: &RESOLUTIONS,
            errors,
        };
        return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let request = ResolveRequest {
        channel_id: fields.channel_id.clone(),
        statement_date: fields.statement_date.clone(),
        channel_txn_id: fields.channel_txn_id.clone(),
        class: fields.class.clone(),
        resolution: fields.resolution.clone(),
        note: note.to_owned(),
    };
    let _resolved = resolve_difference(&state, &user.staff, &request).await?;
    Ok(desk::see_other(&format!(
        "/console/reconciliation?{}",
        desk::query_of(&[
            ("channel_id", &fields.channel_id),
            ("from", &fields.statement_date),
            ("to", &fields.statement_date),
        ])
    )))
}

#[cfg(test)]
mod tests {
    use super::resolution_in_words;

    #[test]
    fn a_resolution_reads_in_words_not_codes() {
        assert_eq!(
            resolution_in_words("refunded_by_channel"),
            "渠道已退还缴费人"
        );
        assert_eq!(
            resolution_in_words("applied:PM320600X1"),
            "已按对账单补记入账（缴费流水号 PM320600X1）"
        );
        assert_eq!(
            resolution_in_words("refund_owed:RF320600X2"),
            "无可入账的应缴费，转为待退款（退费编号 RF320600X2）"
        );
        assert_eq!(
            resolution_in_words("applied_part:PM1:RF2"),
            "部分补记入账（缴费流水号 PM1），余款待退（退费编号 RF2）"
        );
        // A channel's own words through the API, and the unresolved, as they are.
        assert_eq!(resolution_in_words("已电话核实"), "已电话核实");
        assert_eq!(resolution_in_words(""), "");
    }
}
