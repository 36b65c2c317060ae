//! 缴费查询: a person's payments (their receipts: one per payable paid) by ID number, for the
//! money readers (administrator, auditor, tax collector), through the API's own handlers
//! (`GET /api/v1/regions/{region}/persons/{id}/receipts`, audited `receipt.list`; the PDF through
//! `GET /api/v1/receipts/{no}.pdf`, audited `receipt.read`).
//!
//! The ID number is sent in a POST form, never in a URL; the list is masked; a receipt link
//! names the receipt number only.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use yibao_domain::{IdNumber, PersonName};
use yibao_server::receipts::StaffReceipt;
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
}

#[derive(Deserialize)]
pub struct RegionQuery {
    region: Option<String>,
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
        },
        region,
    ))
}

/// `GET /console/payments`: the lookup form.
pub async fn form(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<RegionQuery>,
) -> Result<Response, PageError> {
    html(&page(&state, &user, q.region.as_deref()).await?.0)
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
    let receipts = yibao_server::receipts::staff_person_receipts(
        State(state),
        user.staff.clone(),
        Path((region, id.as_str().to_owned())),
    )
    .await?
    .0;
    view.searched = true;
    view.rows = receipts.iter().map(PaymentLine::of).collect();
    html(&view)
}

/// `GET /console/receipts/{receipt_code-number}.pdf`: the receipt to reprint (补打), through the
/// API's handler (scoped, audited `receipt.read`); money readers only, like the list.
pub async fn receipt_pdf(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(receipt_no): Path<String>,
) -> Result<Response, PageError> {
    desk::money_reader(&user)?;
    if !receipt_no.ends_with(".pdf") || receipt_no.len() > 40 {
        return Err(PageError::not_found("没有这个票据"));
    }
    Ok(
        yibao_server::receipts::staff_receipt(State(state), user.staff.clone(), Path(receipt_no))
            .await?,
    )
}
