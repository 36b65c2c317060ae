//! 退费: refunds owed back through the channels, by state, with those past their due date
//! highlighted; the administrator owes a failed refund again (the API's retry).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use yibao_domain::settlement::RefundReason;
use yibao_domain::RefundStatus;
use yibao_server::AppState;
use yibao_storage::collection::RefundState;

use crate::pages::desk::{self, Paged, Pager};
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{yuan, Chrome};
use crate::{html, PageError};

/// The states one can filter by: the domain's, and 逾期 (owed, sent or failed past the due date).
pub const FILTERS: [(&str, &str); 7] = [
    ("", "全部"),
    ("overdue", "已逾期"),
    ("owed", "待退"),
    ("sent", "已发起"),
    ("failed", "退费失败"),
    ("succeeded", "退费成功"),
    ("cancelled", "已撤销"),
];

/// A refund as the list shows it (no personal data: a refund is of a channel's transaction).
pub struct RefundLine {
    pub refund_no: String,
    pub channel_txn_id: String,
    pub amount: String,
    pub reason: String,
    pub due: String,
    pub status: &'static str,
    pub overdue: bool,
    pub due_unchecked: bool,
    pub failed: bool,
}

impl RefundLine {
    fn of(r: &RefundState, today: chrono::NaiveDate) -> RefundLine {
        let status = r.status;
        RefundLine {
            refund_no: r.refund_no.clone(),
            channel_txn_id: r.channel_txn_id.clone(),
            amount: yuan(r.amount_fen.as_fen()),
            reason: RefundReason::from_code(&r.reason)
                .map_or_else(|| r.reason.clone(), |x| x.name_zh().to_owned()),
            due: r.due.to_string(),
            status: status.name_zh(),
            overdue: r.due < today
                && matches!(
                    status,
                    RefundStatus::Owed | RefundStatus::Sent | RefundStatus::Failed
                ),
            due_unchecked: r.due_without_calendar,
            failed: status == RefundStatus::Failed,
        }
    }
}

#[derive(Template)]
#[template(path = "desk/refunds.html")]
pub struct RefundsPage {
    pub chrome: Chrome,
    pub filters: &'static [(&'static str, &'static str)],
    pub status: String,
    pub region: String,
    pub regions: Vec<(String, String)>,
    pub may_choose_region: bool,
    pub is_admin: bool,
    pub notice: Option<String>,
    pub rows: Vec<RefundLine>,
    pub pager: Pager,
}

#[derive(Deserialize)]
pub struct RefundsQuery {
    status: Option<String>,
    region: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

/// `GET /console/refunds?status=&region=&page=`: administrators, auditors (every region) and tax
/// collectors (their own), as `GET /api/v1/refunds`; 50 a page, at most 10 000 rows deep.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<RefundsQuery>,
) -> Result<Response, PageError> {
    let own = desk::money_reader(&user)?;
    let may_choose_region = own.is_none();
    let region = desk::chosen_region(own, q.region.as_deref())?;
    let status = q.status.unwrap_or_default();
    if !FILTERS.iter().any(|(code, _)| *code == status) {
        return Err(PageError::bad_form("退费状态只能从列表中选择"));
    }
    let page = desk::page_number(q.page.as_deref());
    let today = state.clock.today();
    let rows = if status == "overdue" {
        state
            .storage
            .overdue_refunds(today, region.as_deref(), desk::rows_for(page))
            .await?
    } else {
        state
            .storage
            .refunds(
                Some(status.as_str()).filter(|s| !s.is_empty()),
                region.as_deref(),
                desk::rows_for(page),
            )
            .await?
    };
    let region_text = region.clone().unwrap_or_default();
    let query = desk::query_of(&[("status", &status), ("region", &region_text)]);
    let paged = Paged::cut(rows, page, "/console/refunds", &query);
    html(&RefundsPage {
        chrome: Chrome::new(&user, "refunds", "退费"),
        filters: &FILTERS,
        status,
        region: region_text,
        regions: if may_choose_region {
            desk::regions(&state).await?
        } else {
            Vec::new()
        },
        may_choose_region,
        is_admin: desk::is_admin(&user),
        notice: q
            .done
            // Said only of a refund the page lists as owed again, not of any text in the address.
            .filter(|no| {
                paged
                    .rows
                    .iter()
                    .any(|r| r.refund_no == *no && r.status == RefundStatus::Owed)
            })
            .map(|no| format!("退费 {no} 已重新发起，渠道将再次收到该笔退费")),
        rows: paged
            .rows
            .iter()
            .map(|r| RefundLine::of(r, today))
            .collect(),
        pager: paged.pager,
    })
}

#[derive(Deserialize)]
pub struct RetryForm {}

/// `POST /console/refunds/{refund_no}/retry`: owes a failed refund again, through the service the
/// API's handler calls (administrator only, audited as `refund.retry`).
pub async fn retry(
    State(state): State<AppState>,
    Path(refund_no): Path<String>,
    CsrfForm(user, _): CsrfForm<RetryForm>,
) -> Result<Response, PageError> {
    let admin = desk::admin_of(&user)?;
    let done =
        yibao_server::services::refunds::retry_failed_refund(&state, &admin.0, &refund_no).await?;
    Ok(desk::see_other(&format!(
        "/console/refunds?status=owed&done={}",
        done.refund_no
    )))
}
