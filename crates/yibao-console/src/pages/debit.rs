//! 银行扣费 (委托扣款): agreements (sign, cancel) and debit runs (create, download the request
//! file for the bank, upload the bank's result, the failures to notify), through the services the
//! API's handlers call ([`yibao_server::services::debit`], as `/api/v1/agreements` and
//! `/api/v1/debit-runs`): the same scope (the administrator every region, a tax collector their
//! own; auditors read; station operators have no part), the same audit entries (reading
//! agreements and a run's items is audited). Names and ID numbers are masked in every list.

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use yibao_domain::PersonName;
use yibao_server::services::debit::{self, AgreementInput, MAX_DEBIT_FILE_BYTES};
use yibao_server::{AppState, ErrorCode};
use yibao_storage::settlement::{AgreementRecord, DebitRunRecord};
use yibao_storage::Role;

use crate::pages::desk::{self, Paged};
use crate::pages::staff::EmptyForm;
use crate::pages::statements::{receive_file, small_text};
use crate::session::{verify_csrf, ConsoleUser, CsrfForm, CSRF_FIELD};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// The whole result form's body: the file and room for the token.
pub const MAX_RESULT_BODY_BYTES: usize = MAX_DEBIT_FILE_BYTES + 64 * 1024;
/// Longest members list typed.
const MAX_MEMBERS_TEXT: usize = 4 * 1024;

fn mask_name(name: &str) -> String {
    PersonName::parse(name).map_or_else(|_| "**".to_owned(), |n| n.masked())
}

fn status_zh(status: &str) -> &'static str {
    match status {
        "active" => "有效",
        "cancelled" => "已解约",
        "created" | "pending" => "待扣款",
        "sent" => "已发送银行",
        "completed" | "done" => "已完成",
        "succeeded" => "扣款成功",
        "failed" => "扣款失败",
        "released" => "已释放",
        "abandoned" => "已放弃",
        _ => "其他",
    }
}

/// Who changes collection data (the API's writers): the administrator and tax collectors.
fn writer(user: &ConsoleUser) -> bool {
    matches!(user.account().role, Role::Admin | Role::TaxCollector)
}

fn forbidden() -> PageError {
    yibao_server::ServiceError::of(ErrorCode::Forbidden).into()
}

pub struct AgreementLine {
    pub agreement_no: String,
    pub region: String,
    pub channel_id: String,
    pub payer: String,
    pub payer_id: String,
    pub account: String,
    pub members: usize,
    pub status: &'static str,
    pub active: bool,
    pub signed_on: String,
}

pub struct RunLine {
    pub run_no: String,
    pub channel_id: String,
    pub region: String,
    pub fee_year: i32,
    pub debit_date: String,
    pub status: &'static str,
    pub items: i64,
    pub total: String,
}

/// The agreement form's fields, by the names its page gives them (`sign_region`: the run form
/// on the same page has a region too).
#[derive(Default, Deserialize)]
pub struct AgreementFields {
    #[serde(default)]
    pub agreement_no: String,
    #[serde(default, rename = "sign_region")]
    pub region: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub payer_id_number: String,
    #[serde(default)]
    pub payer_name: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub members: String,
}

/// The run form's fields, by the names its page gives them (`run_` before those the agreement
/// form on the same page also has).
#[derive(Default, Deserialize)]
pub struct RunFields {
    #[serde(default, rename = "run_channel_id")]
    pub channel_id: String,
    #[serde(default, rename = "run_region")]
    pub region: String,
    #[serde(default)]
    pub fee_year: String,
    #[serde(default)]
    pub debit_date: String,
}

/// A bank the forms offer: an enabled auto-debit channel (委托扣款) serving a region the staff
/// member works in (not a test channel).
pub struct BankChoice {
    pub channel_id: String,
    pub regions: String,
}

#[derive(Template)]
#[template(path = "desk/debit.html")]
pub struct DebitPage {
    pub chrome: Chrome,
    pub writer: bool,
    pub own_region: Option<String>,
    /// The banks to choose from, offered beside both forms' bank fields (their IDs are still
    /// typed: a bank added meanwhile is refused or accepted by the service, as over the API).
    pub banks: Vec<BankChoice>,
    pub agreements: Paged<AgreementLine>,
    pub runs: Paged<RunLine>,
    pub sign: AgreementFields,
    pub run: RunFields,
    pub errors: Vec<(&'static str, String)>,
    pub notice: Option<String>,
}

impl DebitPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn agreement_line(a: &AgreementRecord) -> AgreementLine {
    AgreementLine {
        agreement_no: a.agreement_no.clone(),
        region: a.region.to_string(),
        channel_id: a.channel_id.clone(),
        payer: mask_name(&a.payer_name),
        payer_id: a.payer_id_number.masked(),
        account: a.account_masked.clone(),
        members: a.members.len(),
        status: a.status.name_zh(),
        active: a.status == yibao_domain::AgreementStatus::Active,
        signed_on: a.signed_on.to_string(),
    }
}

fn run_line(r: &DebitRunRecord) -> RunLine {
    RunLine {
        run_no: r.run_no.clone(),
        channel_id: r.channel_id.clone(),
        region: r.region.to_string(),
        fee_year: i32::from(r.fee_year.get()),
        debit_date: r.debit_date.to_string(),
        status: r.status.name_zh(),
        items: r.item_count,
        total: yuan(r.total_fen.as_fen()),
    }
}

/// Which page of each list of the debit page is shown (`apage`, `rpage`; 1 unless asked).
#[derive(Deserialize, Default)]
pub struct ListPages {
    apage: Option<String>,
    rpage: Option<String>,
}

async fn page(
    state: &AppState,
    user: &ConsoleUser,
    pages: &ListPages,
) -> Result<DebitPage, PageError> {
    let own = desk::money_reader(user)?;
    let agreements = debit::list_agreements(state, &user.staff, None, None).await?;
    let runs = debit::list_runs(state, &user.staff, None).await?;
    // Only writers see the forms the banks are named beside: no read for an auditor.
    let channels = if writer(user) {
        state.storage.list_channels().await?
    } else {
        Vec::new()
    };
    let banks = channels
        .into_iter()
        .filter(|c| {
            c.kind == debit::AUTO_DEBIT
                && c.enabled
                && !c.test_mode
                && own
                    .as_deref()
                    .is_none_or(|own| c.regions.iter().any(|r| r == own))
        })
        .map(|c| BankChoice {
            channel_id: c.channel_id,
            regions: c.regions.join("、"),
        })
        .collect();
    Ok(DebitPage {
        chrome: Chrome::new(user, "debit", "银行扣费"),
        writer: writer(user),
        banks,
        sign: AgreementFields {
            region: own.clone().unwrap_or_default(),
            ..AgreementFields::default()
        },
        run: RunFields {
            region: own.clone().unwrap_or_default(),
            ..RunFields::default()
        },
        own_region: own,
        agreements: Paged::cut_as(
            agreements.iter().map(agreement_line).collect(),
            desk::page_number(pages.apage.as_deref()),
            "/console/debit",
            &desk::query_of(&[("rpage", pages.rpage.as_deref().unwrap_or_default())]),
            "apage",
        ),
        runs: Paged::cut_as(
            runs.iter().map(run_line).collect(),
            desk::page_number(pages.rpage.as_deref()),
            "/console/debit",
            &desk::query_of(&[("apage", pages.apage.as_deref().unwrap_or_default())]),
            "rpage",
        ),
        errors: Vec::new(),
        notice: None,
    })
}

/// `GET /console/debit`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(pages): Query<ListPages>,
) -> Result<Response, PageError> {
    html(&page(&state, &user, &pages).await?)
}

/// Which field of the agreement form an `ALREADY_EXISTS` refusal is about: the number (the
/// region has one of that number), or a person already under another agreement: the payer when
/// no members are typed (the payer is then the agreement's only member), else one of the members
/// typed (the service covers exactly those; the message names the person masked, which cannot
/// tell two people of one county apart).
fn already_exists_field(message: &str, members: &[String]) -> &'static str {
    if message.contains("协议号") {
        "agreement_no"
    } else if members.is_empty() {
        "payer_id_number"
    } else {
        "members"
    }
}

/// Which field a refusal of the service is about (its Chinese message names it).
fn field_of(message: &str, fields: &[(&'static str, &'static str)]) -> &'static str {
    fields
        .iter()
        .find(|(_, word)| message.contains(word))
        .map_or("form", |(f, _)| f)
}

/// `POST /console/debit/agreements`: signs an agreement through the API's service.
pub async fn sign(
    State(state): State<AppState>,
    CsrfForm(user, fields): CsrfForm<AgreementFields>,
) -> Result<Response, PageError> {
    if !writer(&user) {
        return Err(forbidden());
    }
    let mut errors = Vec::new();
    for (field, value, label) in [
        ("agreement_no", &fields.agreement_no, "协议号"),
        ("channel_id", &fields.channel_id, "扣款银行渠道"),
        ("payer_id_number", &fields.payer_id_number, "持卡人身份证号"),
        ("payer_name", &fields.payer_name, "持卡人姓名"),
        ("account", &fields.account, "银行账号"),
    ] {
        if value.trim().is_empty() {
            errors.push((field, format!("请填写{label}")));
        }
    }
    let own = desk::money_reader(&user)?;
    let region = own
        .clone()
        .unwrap_or_else(|| fields.region.trim().to_owned());
    if region.is_empty() {
        errors.push(("sign_region", "请填写统筹区代码".to_owned()));
    }
    if fields.members.len() > MAX_MEMBERS_TEXT {
        errors.push(("members", "家庭成员过多，请分次签约".to_owned()));
    }
    let members: Vec<String> = fields
        .members
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、'))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if errors.is_empty() {
        let input = AgreementInput {
            agreement_no: fields.agreement_no.trim(),
            region: &region,
            channel_id: fields.channel_id.trim(),
            payer_id_number: fields.payer_id_number.trim(),
            payer_name: fields.payer_name.trim(),
            account: fields.account.trim(),
            members: &members,
        };
        match debit::sign_agreement_as_staff(&state, &user.staff, input).await {
            Ok(signed) => {
                let mut view = page(&state, &user, &ListPages::default()).await?;
                view.notice = Some(format!("已签订委托扣款协议 {}。", signed.agreement_no));
                return html(&view);
            }
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::Forbidden | ErrorCode::InternalError | ErrorCode::ServiceUnavailable
                ) =>
            {
                return Err(e.into())
            }
            Err(e) => {
                let field = if e.code == ErrorCode::AlreadyExists {
                    already_exists_field(&e.message, &members)
                } else {
                    field_of(
                        &e.message,
                        &[
                            ("agreement_no", "协议号"),
                            ("channel_id", "渠道"),
                            ("members", "成员"),
                            ("payer_name", "姓名"),
                            ("account", "账号"),
                            ("payer_id_number", "身份证"),
                            ("sign_region", "统筹区"),
                        ],
                    )
                };
                errors.push((field, e.message));
            }
        }
    }
    let mut view = page(&state, &user, &ListPages::default()).await?;
    view.sign = fields;
    view.errors = errors;
    render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
}

/// `POST /console/debit/agreements/{region}/{no}/cancel`: cancels from today (a number is the
/// bank's, unique within its region only).
pub async fn cancel(
    State(state): State<AppState>,
    Path((region, agreement_no)): Path<(String, String)>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    if !writer(&user) {
        return Err(forbidden());
    }
    let _cancelled =
        debit::cancel_agreement(&state, &user.staff, Some(&region), &agreement_no).await?;
    Ok(desk::see_other("/console/debit"))
}

/// `POST /console/debit/runs`: creates a run (its payables locked for the bank).
pub async fn create_run(
    State(state): State<AppState>,
    CsrfForm(user, fields): CsrfForm<RunFields>,
) -> Result<Response, PageError> {
    if !writer(&user) {
        return Err(forbidden());
    }
    let mut errors = Vec::new();
    let own = desk::money_reader(&user)?;
    let region = own.unwrap_or_else(|| fields.region.trim().to_owned());
    if fields.channel_id.trim().is_empty() {
        errors.push(("run_channel_id", "请填写扣款银行渠道".to_owned()));
    }
    if region.is_empty() {
        errors.push(("run_region", "请填写统筹区代码".to_owned()));
    }
    let fee_year = fields.fee_year.trim().parse::<i32>().ok();
    if fee_year.is_none_or(|y| !(2000..=2100).contains(&y)) {
        errors.push(("fee_year", "缴费年度应为四位数，如 2027".to_owned()));
    }
    if let (true, Some(fee_year)) = (errors.is_empty(), fee_year) {
        match debit::create_run_as_staff(
            &state,
            &user.staff,
            fields.channel_id.trim(),
            &region,
            fee_year,
            fields.debit_date.trim(),
        )
        .await
        {
            Ok(created) => {
                let left_out = match created.left_out {
                    0 => String::new(),
                    n => format!("?left_out={n}"),
                };
                return Ok(desk::see_other(&format!(
                    "/console/debit/runs/{}{left_out}",
                    created.run.run_no
                )));
            }
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::Forbidden | ErrorCode::InternalError | ErrorCode::ServiceUnavailable
                ) =>
            {
                return Err(e.into())
            }
            Err(e) => {
                let field = field_of(
                    &e.message,
                    &[
                        ("debit_date", "日期"),
                        ("run_channel_id", "渠道"),
                        ("fee_year", "年度"),
                        ("run_region", "统筹区"),
                    ],
                );
                errors.push((if field == "form" { "run_form" } else { field }, e.message));
            }
        }
    }
    let mut view = page(&state, &user, &ListPages::default()).await?;
    view.run = fields;
    view.errors = errors;
    render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
}

pub struct ItemLine {
    pub seq: i64,
    pub name: String,
    pub id: String,
    pub amount: String,
    pub outcome: &'static str,
    pub failure: String,
}

#[derive(Template)]
#[template(path = "desk/debit_run.html")]
pub struct RunPage {
    pub chrome: Chrome,
    pub run: RunLine,
    pub writer: bool,
    pub failed_only: bool,
    pub items: Paged<ItemLine>,
    pub summary: Option<Vec<(&'static str, String)>>,
    pub file_error: Option<String>,
    pub limit_mib: usize,
    /// Just created: how many under agreement the 2025 rules kept out of it.
    pub left_out: Option<u32>,
}

#[derive(Deserialize)]
pub struct RunQuery {
    outcome: Option<String>,
    page: Option<String>,
    left_out: Option<String>,
}

async fn run_page(
    state: &AppState,
    user: &ConsoleUser,
    run_no: &str,
    failed_only: bool,
    page: usize,
) -> Result<RunPage, PageError> {
    desk::money_reader(user)?;
    let outcome = failed_only.then_some("failed");
    let detail = debit::run_detail(state, &user.staff, run_no, outcome).await?;
    Ok(RunPage {
        chrome: Chrome::new(user, "debit", "批量扣款"),
        run: run_line(&detail.run),
        writer: writer(user),
        failed_only,
        items: Paged::cut(
            detail
                .items
                .iter()
                .map(|i| ItemLine {
                    seq: i.seq,
                    name: mask_name(&i.name),
                    id: i.id_number.masked(),
                    amount: yuan(i.amount_fen.as_fen()),
                    outcome: status_zh(&i.outcome),
                    failure: i.failure_reason.clone().unwrap_or_default(),
                })
                .collect(),
            page,
            &format!("/console/debit/runs/{run_no}"),
            if failed_only { "outcome=failed" } else { "" },
        ),
        summary: None,
        file_error: None,
        limit_mib: MAX_DEBIT_FILE_BYTES / (1024 * 1024),
        left_out: None,
    })
}

/// `GET /console/debit/runs/{no}?outcome=failed`: a run and its items (the failures to notify).
pub async fn run(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(run_no): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<Response, PageError> {
    let failed_only = q.outcome.as_deref() == Some("failed");
    let page = desk::page_number(q.page.as_deref());
    let mut view = run_page(&state, &user, &run_no, failed_only, page).await?;
    view.left_out = q
        .left_out
        .as_deref()
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 0);
    html(&view)
}

/// `GET /console/debit/runs/{no}/request-file`: the file for the bank, as the API gives it.
pub async fn request_file(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(run_no): Path<String>,
) -> Result<Response, PageError> {
    desk::money_reader(&user)?;
    let file = debit::request_file_as_staff(&state, &user.staff, &run_no).await?;
    Ok(file.into_response())
}

/// `POST /console/debit/runs/{no}/result` (multipart: `_csrf`, then `file`): imports the bank's
/// result through the API's service; the token must come before the file.
pub async fn upload_result(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(run_no): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let mut csrf_checked = verify_csrf(&user, &headers, None).is_ok();
    if !writer(&user) {
        return Err(forbidden());
    }
    let mut multipart =
        multipart.map_err(|_| PageError::bad_form("请通过页面上的表单选择文件上传"))?;
    let mut received = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name() {
            Some(CSRF_FIELD) => {
                let sent = small_text(field).await?;
                verify_csrf(&user, &HeaderMap::new(), Some(&sent))?;
                csrf_checked = true;
            }
            Some("file") => {
                if !csrf_checked {
                    return Err(PageError::CrossSite);
                }
                received = Some(receive_file(field, MAX_DEBIT_FILE_BYTES).await);
                break;
            }
            _ => {}
        }
    }
    if !csrf_checked {
        return Err(PageError::CrossSite);
    }
    let mut view = run_page(&state, &user, &run_no, false, 1).await?;
    let bytes = match received {
        Some(Ok(bytes)) => bytes,
        Some(Err((message, status))) => {
            view.file_error = Some(message);
            return render_with_status(&view, status);
        }
        None => {
            view.file_error = Some("请选择银行返回的扣款结果文件".to_owned());
            return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    match debit::import_result_as_staff(&state, &user.staff, &run_no, &bytes).await {
        Ok(s) => {
            let mut view = run_page(&state, &user, &run_no, false, 1).await?;
            view.summary = Some(vec![
                ("扣款成功", s.succeeded.to_string()),
                ("成功金额（元）", yuan(s.succeeded_fen)),
                ("扣款失败", s.failed.to_string()),
                ("需退还（已另行缴费或金额不符）", s.refunds_owed.to_string()),
                ("此前已导入", s.already_applied.to_string()),
            ]);
            html(&view)
        }
        Err(e)
            if matches!(
                e.code,
                ErrorCode::Forbidden
                    | ErrorCode::NotFound
                    | ErrorCode::InternalError
                    | ErrorCode::ServiceUnavailable
            ) =>
        {
            Err(e.into())
        }
        Err(e) => {
            let status = e.code.status();
            view.file_error = Some(e.message);
            render_with_status(&view, status)
        }
    }
}
