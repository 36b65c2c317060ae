//! 缴费查询: a person's payments (their receipts: one per payable paid) by ID number, for the
//! money readers (administrator, auditor, tax collector), through the services the API's handlers
//! call ([`yibao_server::services::receipts`]: as
//! `GET /api/v1/regions/{region}/persons/{id}/receipts`, audited `receipt.list`; the PDF as
//! `GET /api/v1/receipts/{no}.pdf`, audited `receipt.read`).
//!
//! The ID number is sent in a POST form, never in a URL; the list is masked; a receipt link
//! names the receipt number only.
//!
//! Also a channel's payments of one day (what reconciliation compares with the statement: no
//! personal data), read in transaction-number order [`CHANNEL_PAGE`] at a time; a tax collector
//! names a channel serving their region and sees their region's payments only.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_domain::{IdNumber, PersonName};
use yibao_server::services::receipts::{self, StaffReceipt};
use yibao_server::AppState;

use crate::pages::desk;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

pub struct PaymentLine {
    pub receipt_no: String,
    pub payment_no: String,
    pub name_masked: String,
    pub id_masked: String,
    pub fee_year: i32,
    pub amount: String,
    pub issued_on: String,
    pub voided: bool,
}

impl PaymentLine {
    fn of(r: &StaffReceipt) -> PaymentLine {
        PaymentLine {
            receipt_no: r.receipt_no.clone(),
            payment_no: r.payment_no.clone(),
            name_masked: PersonName::parse(&r.payer_name)
                .map_or_else(|_| "**".to_owned(), |n| n.masked()),
            id_masked: IdNumber::parse(&r.payer_id_number, chrono::NaiveDate::MAX)
                .map_or_else(|_| "******".to_owned(), |p| p.id_number.masked()),
            fee_year: r.fee_year,
            amount: yuan(r.amount),
            issued_on: r.issued_on.to_string(),
            voided: r.status == "voided",
        }
    }
}

#[derive(Template)]
#[template(path = "desk/payments.html")]
pub struct PaymentsPage {
    pub chrome: Chrome,
    pub region: String,
    pub regions: Vec<(String, String)>,
    pub may_choose_region: bool,
    pub id_error: Option<String>,
    pub searched: bool,
    pub rows: Vec<PaymentLine>,
    pub channels: crate::pages::statements::ChannelChoices,
    pub channel_id: String,
    pub day: String,
    pub channel_error: Option<String>,
    pub day_error: Option<String>,
    /// The channel's payments of the day, when asked.
    pub by_channel: Option<Vec<ChannelPaymentLine>>,
    /// The next page of them (keyset: after the last transaction number shown), and the first.
    pub next: Option<String>,
    pub first: String,
}

/// A channel's payment as reconciliation sees it.
pub struct ChannelPaymentLine {
    pub channel_txn_id: String,
    pub payment_no: String,
    pub amount: String,
    pub reversed: bool,
    pub region: String,
}

/// Payments of a channel's day on one page.
pub const CHANNEL_PAGE: usize = 50;
/// Payments read for one page at most (a tax collector's page skips other regions' payments).
const CHANNEL_READ_LIMIT: usize = desk::MAX_ROWS;

#[derive(Deserialize)]
pub struct RegionQuery {
    region: Option<String>,
    channel_id: Option<String>,
    day: Option<String>,
    after: Option<String>,
}

async fn page(
    state: &AppState,
    user: &ConsoleUser,
    asked: Option<&str>,
) -> Result<(PaymentsPage, String), PageError> {
    let own = desk::money_reader(user)?;
    let may_choose_region = own.is_none();
    let regions = desk::regions(state).await?;
    let region = match desk::chosen_region(own, asked)? {
        Some(r) => r,
        None => regions
            .first()
            .map(|(code, _)| code.clone())
            .ok_or_else(|| PageError::not_found("还没有登记统筹区"))?,
    };
    Ok((
        PaymentsPage {
            chrome: Chrome::new(user, "payments", "缴费查询"),
            region: region.clone(),
            regions: if may_choose_region {
                regions
            } else {
                Vec::new()
            },
            may_choose_region,
            id_error: None,
            searched: false,
            rows: Vec::new(),
            channels: crate::pages::statements::channels_of(state, own_region(user)?.as_deref())
                .await?,
            channel_id: String::new(),
            day: state.clock.today().to_string(),
            channel_error: None,
            day_error: None,
            by_channel: None,
            next: None,
            first: String::new(),
        },
        region,
    ))
}

fn own_region(user: &ConsoleUser) -> Result<Option<String>, PageError> {
    desk::money_reader(user)
}

/// The channel's payments of the day after `after`, in the reader's region: one page, and
/// where the next begins.
async fn channel_day(
    state: &AppState,
    own: Option<&str>,
    channel_id: &str,
    day: NaiveDate,
    after: Option<String>,
) -> Result<(Vec<ChannelPaymentLine>, Option<String>), PageError> {
    let mut lines = Vec::new();
    let mut cursor = after;
    let mut read = 0;
    while read < CHANNEL_READ_LIMIT {
        let batch = state
            .storage
            .payments_page(channel_id, day, cursor.as_deref(), CHANNEL_PAGE)
            .await?;
        read += batch.len();
        let full = batch.len() == CHANNEL_PAGE;
        for p in batch {
            cursor = Some(p.channel_txn_id.clone());
            if own.is_some_and(|r| p.region.as_deref() != Some(r)) {
                continue;
            }
            lines.push(ChannelPaymentLine {
                channel_txn_id: p.channel_txn_id,
                payment_no: p.payment_no,
                amount: yuan(p.amount_fen),
                reversed: p.reversed,
                region: p.region.unwrap_or_default(),
            });
            if lines.len() == CHANNEL_PAGE {
                return Ok((lines, cursor));
            }
        }
        if !full {
            return Ok((lines, None));
        }
    }
    // Read as far as one page may: go on from here.
    Ok((lines, cursor))
}

/// `GET /console/payments`: the lookup form.
pub async fn form(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<RegionQuery>,
) -> Result<Response, PageError> {
    let (mut view, _) = page(&state, &user, q.region.as_deref()).await?;
    let channel_id = q.channel_id.unwrap_or_default().trim().to_owned();
    if channel_id.is_empty() {
        return html(&view);
    }
    let day_text = q.day.unwrap_or_default().trim().to_owned();
    let day = NaiveDate::parse_from_str(&day_text, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)));
    view.day = day_text;
    if !view.channels.contains(&channel_id) {
        view.channel_error = Some("请从列表中选择渠道".into());
    }
    if day.is_none() {
        view.day_error = Some("日期应为 2000 至 2100 年间的 YYYY-MM-DD".into());
    }
    view.channel_id = channel_id;
    let Some(day) = day.filter(|_| view.channel_error.is_none()) else {
        return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let after = q.after.filter(|a| !a.is_empty() && a.len() <= 128);
    let own = own_region(&user)?;
    let (lines, next) = channel_day(&state, own.as_deref(), &view.channel_id, day, after).await?;
    view.next = next.map(|after| {
        format!(
            "/console/payments?{}",
            desk::query_of(&[
                ("channel_id", &view.channel_id),
                ("day", &view.day),
                ("after", &after)
            ])
        )
    });
    view.first = format!(
        "/console/payments?{}",
        desk::query_of(&[("channel_id", &view.channel_id), ("day", &view.day)])
    );
    view.by_channel = Some(lines);
    html(&view)
}

#[derive(Deserialize)]
pub struct LookupForm {
    #[serde(default)]
    id_number: String,
    region: Option<String>,
}

/// `POST /console/payments`: the payments of the person with this ID number in the region.
pub async fn lookup(
    State(state): State<AppState>,
    CsrfForm(user, form): CsrfForm<LookupForm>,
) -> Result<Response, PageError> {
    let (mut view, region) = page(&state, &user, form.region.as_deref()).await?;
    let typed = form.id_number.trim();
    let id = match IdNumber::parse(typed, state.clock.today()) {
        Ok(p) if typed.chars().count() <= 20 => p.id_number,
        Ok(_) => {
            view.id_error = Some("身份证号码过长".into());
            return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => {
            view.id_error = Some(e.to_string());
            return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let receipts = receipts::person_receipts(&state, &user.staff, &region, id.as_str()).await?;
    view.searched = true;
    view.rows = receipts.iter().map(PaymentLine::of).collect();
    html(&view)
}

/// `GET /console/receipts/{receipt_code-number}.pdf`: the receipt to reprint (补打), through the
/// API's service (scoped, audited `receipt.read`); money readers only, like the list.
pub async fn receipt_pdf(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(receipt_no): Path<String>,
) -> Result<Response, PageError> {
    desk::money_reader(&user)?;
    if !receipt_no.ends_with(".pdf") || receipt_no.len() > 40 {
        return Err(PageError::not_found("没有这个票据"));
    }
    let copy = receipts::reprint_receipt(&state, &user.staff, &receipt_no).await?;
    Ok(copy.into_response())
}
