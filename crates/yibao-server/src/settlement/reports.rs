//! The staff reports, JSON or XLSX: daily collection, refunds, reconciliation.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use utoipa_axum::routes;
use yibao_storage::records::MAX_LIST_ROWS;

use super::PeriodQuery;
use crate::auth::Staff;
use crate::error::ServiceError;
use crate::http::ApiRouter;
use crate::services::reconciliation::{reconciliation_report, ReconciliationFindings};
use crate::staff_answers::{DailyCollectionReport, ReconciliationReport, RefundsReport};
use crate::AppState;

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(report_daily_collection))
        .routes(routes!(report_refunds))
        .routes(routes!(report_reconciliation))
}

/// Region names by code, for reports.
async fn region_names(
    state: &AppState,
) -> Result<std::collections::HashMap<String, String>, ServiceError> {
    Ok(state
        .storage
        .list_regions()
        .await?
        .into_iter()
        .map(|r| (r.code().to_string(), r.name().to_owned()))
        .collect())
}

/// Channel kinds in Chinese by channel id, for the channels named.
async fn channel_kinds(
    state: &AppState,
    ids: Vec<String>,
) -> Result<std::collections::HashMap<String, &'static str>, ServiceError> {
    let mut kinds = std::collections::HashMap::new();
    for id in ids {
        if kinds.contains_key(&id) {
            continue;
        }
        let kind = state
            .storage
            .get_channel(&id)
            .await?
            .map_or("", |c| crate::export::channel_kind_zh(&c.kind));
        kinds.insert(id, kind);
    }
    Ok(kinds)
}

/// The scope of a report for its title and file name: `南通市（320600）` or `全部统筹区`.
fn scope_label(
    region: Option<&str>,
    names: &std::collections::HashMap<String, String>,
) -> (String, String) {
    match region {
        Some(code) => (
            crate::export::region_label(code, names.get(code).map(String::as_str)),
            code.to_owned(),
        ),
        None => ("全部统筹区".to_owned(), "all".to_owned()),
    }
}

fn period_label(from: NaiveDate, to: NaiveDate) -> String {
    if from == to {
        from.to_string()
    } else {
        format!("{from} 至 {to}")
    }
}

fn period_stem(from: NaiveDate, to: NaiveDate) -> String {
    if from == to {
        from.format("%Y%m%d").to_string()
    } else {
        format!("{}-{}", from.format("%Y%m%d"), to.format("%Y%m%d"))
    }
}

/// Warnings for staff about missing holiday calendars in the scope of a report.
async fn calendar_notes(
    state: &AppState,
    region: Option<&str>,
) -> Result<Vec<crate::services::setup::CalendarWarning>, ServiceError> {
    crate::services::setup::calendar_warnings(state.storage.as_ref(), region, state.clock.today())
        .await
}

/// Collection per day, channel and region (what payments applied): `{"rows": [...], "warnings":
/// [...]}`, the warnings naming collection windows that reach into a year without a holiday calendar.
#[utoipa::path(get, path = "/api/v1/reports/daily-collection", summary = "征收日报", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("region" = Option<String>, Query), ("format" = Option<String>, Query)),
    responses((status = 200, body = DailyCollectionReport, description = "JSON, or the XLSX workbook when `format=xlsx`")))]
pub async fn report_daily_collection(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ServiceError> {
    use crate::export::{column, Cell, XlsxReport};
    let region = staff.collection_read_scope()?.or(q.region.clone());
    let (from, to) = q.period(state.clock.today())?;
    let xlsx = q.xlsx()?;
    let rows = state
        .storage
        .daily_collection(from, to, region.as_deref())
        .await?;
    let warnings = calendar_notes(&state, region.as_deref()).await?;
    if !xlsx {
        return Ok(Json(DailyCollectionReport { rows, warnings }).into_response());
    }
    let names = region_names(&state).await?;
    let kinds = channel_kinds(&state, rows.iter().map(|r| r.channel_id.clone()).collect()).await?;
    let (scope, scope_code) = scope_label(region.as_deref(), &names);
    let table = rows
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.day.to_string()),
                Cell::text(&r.channel_id),
                Cell::text(kinds.get(&r.channel_id).copied().unwrap_or_default()),
                Cell::text(r.region.as_str()),
                Cell::text(names.get(r.region.as_str()).cloned().unwrap_or_default()),
                Cell::Count(r.payables),
                Cell::Yuan(r.applied_fen),
            ]
        })
        .collect();
    XlsxReport {
        file_stem: format!("daily-collection-{scope_code}-{}", period_stem(from, to)),
        file_title: format!("{scope}每日征收报表-{}", period_label(from, to)),
        sheet_name: "每日征收".to_owned(),
        title: format!("{scope} 每日征收报表 {}", period_label(from, to)),
        columns: vec![
            column("日期", 12),
            column("渠道", 16),
            column("渠道类型", 12),
            column("统筹区代码", 11),
            column("统筹区", 12),
            column("缴费笔数", 10),
            column("金额（元）", 16),
        ],
        rows: table,
        totals_label: "合计".to_owned(),
        notes: warnings
            .into_iter()
            .map(|w| format!("注意：{}", w.message))
            .collect(),
    }
    .into_response()
}

/// Refunds per day and channel (due, succeeded), with those owed and overdue now.
#[utoipa::path(get, path = "/api/v1/reports/refunds", summary = "退费报表", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("format" = Option<String>, Query)),
    responses((status = 200, body = RefundsReport, description = "JSON, or the XLSX workbook when `format=xlsx`")))]
pub async fn report_refunds(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ServiceError> {
    use crate::export::{column, Cell, XlsxReport};
    let region = staff.collection_read_scope()?.or(q.region.clone());
    let (from, to) = q.period(state.clock.today())?;
    let days = state
        .storage
        .refund_days(from, to, region.as_deref())
        .await?;
    let overdue = state
        .storage
        .overdue_refunds(state.clock.today(), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    let owed = state
        .storage
        .refunds(Some("owed"), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    let failed = state
        .storage
        .refunds(Some("failed"), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    let warnings = calendar_notes(&state, region.as_deref()).await?;
    if !q.xlsx()? {
        return Ok(Json(RefundsReport {
            days,
            owed,
            failed,
            overdue,
            warnings,
        })
        .into_response());
    }
    let names = region_names(&state).await?;
    let kinds = channel_kinds(&state, days.iter().map(|r| r.channel_id.clone()).collect()).await?;
    let (scope, scope_code) = scope_label(region.as_deref(), &names);
    let table = days
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.day.to_string()),
                Cell::text(&r.channel_id),
                Cell::text(kinds.get(&r.channel_id).copied().unwrap_or_default()),
                Cell::Count(r.due),
                Cell::Yuan(r.due_fen),
                Cell::Count(r.succeeded),
                Cell::Yuan(r.succeeded_fen),
            ]
        })
        .collect();
    let mut notes: Vec<String> = warnings
        .into_iter()
        .map(|w| format!("注意：{}", w.message))
        .collect();
    let unchecked = owed
        .iter()
        .chain(&failed)
        .filter(|r| r.due_without_calendar)
        .count();
    if unchecked > 0 {
        notes.push(format!(
            "注意：{unchecked} 笔未完成的退费，到期日是在缺少节假日日历的年份里只按周末算出的，可能早于实际，请人工核对（接口中 due_without_calendar 为 true）。"
        ));
    }
    notes.push(format!(
        "当前待退费 {} 笔，退费失败 {} 笔，已逾期 {} 笔。",
        owed.len(),
        failed.len(),
        overdue.len()
    ));
    XlsxReport {
        file_stem: format!("refunds-{scope_code}-{}", period_stem(from, to)),
        file_title: format!("{scope}退费报表-{}", period_label(from, to)),
        sheet_name: "退费".to_owned(),
        title: format!("{scope} 退费报表 {}", period_label(from, to)),
        columns: vec![
            column("日期", 12),
            column("渠道", 16),
            column("渠道类型", 12),
            column("当日到期笔数", 12),
            column("到期金额（元）", 16),
            column("当日退费成功笔数", 16),
            column("成功金额（元）", 16),
        ],
        rows: table,
        totals_label: "合计".to_owned(),
        notes,
    }
    .into_response()
}

/// Statements reconciled and the differences found, with what became of them.
#[utoipa::path(get, path = "/api/v1/reports/reconciliation", summary = "对账报表", tag = "settlement",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("channel_id" = Option<String>, Query, description = "one channel; without it every channel but test channels (the sandbox's)"), ("format" = Option<String>, Query)),
    responses((status = 200, body = ReconciliationReport, description = "JSON, or the XLSX workbook when `format=xlsx`"), (status = 404, body = crate::ErrorBody)))]
pub async fn report_reconciliation(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ServiceError> {
    use crate::export::{column, Cell, XlsxReport};
    let ReconciliationFindings { from, to, report } =
        reconciliation_report(&state, &staff, &q).await?;
    if !q.xlsx()? {
        return Ok(Json(report).into_response());
    }
    let ReconciliationReport {
        statements,
        differences: items,
    } = report;
    let names = region_names(&state).await?;
    let kinds = channel_kinds(&state, items.iter().map(|i| i.channel_id.clone()).collect()).await?;
    let (scope, scope_code) = match q.channel_id.as_deref() {
        Some(id) => {
            let kind = channel_kinds(&state, vec![id.to_owned()]).await?;
            (
                format!("渠道 {id}（{}）", kind.get(id).copied().unwrap_or_default()),
                id.to_owned(),
            )
        }
        None => ("全部渠道（不含测试渠道）".to_owned(), "all".to_owned()),
    };
    let table = items
        .iter()
        .map(|i| {
            let class = yibao_domain::reconciliation::DifferenceClass::from_code(&i.class)
                .map_or(i.class.as_str(), |c| c.name_zh());
            let region = i.region.as_deref().unwrap_or_default();
            vec![
                Cell::text(i.statement_date.to_string()),
                Cell::text(&i.channel_id),
                Cell::text(kinds.get(&i.channel_id).copied().unwrap_or_default()),
                Cell::text(crate::export::region_label(
                    region,
                    names.get(region).map(String::as_str),
                )),
                Cell::text(&i.channel_txn_id),
                Cell::text(class),
                Cell::Yuan(i.platform_fen),
                Cell::Yuan(i.channel_fen),
                Cell::text(i.status.name_zh()),
                Cell::text(i.resolution.clone().unwrap_or_default()),
                Cell::text(i.note.clone().unwrap_or_default()),
            ]
        })
        .collect();
    XlsxReport {
        file_stem: format!("reconciliation-{scope_code}-{}", period_stem(from, to)),
        file_title: format!("{scope}对账差异报表-{}", period_label(from, to)),
        sheet_name: "对账差异".to_owned(),
        title: format!(
            "{scope} 对账差异报表 {}（对账文件 {} 份）",
            period_label(from, to),
            statements.len()
        ),
        columns: vec![
            column("对账日期", 12),
            column("渠道", 16),
            column("渠道类型", 12),
            column("统筹区", 16),
            column("交易号", 28),
            column("差异类别", 14),
            column("平台金额（元）", 14),
            column("渠道金额（元）", 14),
            column("状态", 16),
            column("处理结果", 16),
            column("说明", 30),
        ],
        rows: table,
        totals_label: format!("合计（{} 项差异）", items.len()),
        notes: Vec::new(),
    }
    .into_response()
}
