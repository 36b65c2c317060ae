//! 票据查验: anyone holding an electronic receipt (or its QR code) checks that yibao issued it
//! and whether it still stands. The QR code prints the protocol's `/public/receipts/verify` URL; a
//! browser opening it is sent here, a machine gets JSON there as before.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use yibao_domain::PersonName;
use yibao_server::AppState;

use crate::limiter::AddressLimiter;
use crate::{error_page, render};

#[derive(Deserialize, Default)]
pub struct VerifyQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    check_code: String,
}

/// A verified receipt as the page shows it: the payer masked, as on the JSON answer.
pub struct Verified {
    pub valid: bool,
    pub receipt_code: String,
    pub receipt_number: String,
    pub payer_masked: String,
    pub amount: String,
    pub fee_year: i32,
    pub issued_on: String,
    pub issuer: String,
}

#[derive(askama::Template, Default)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    code: String,
    number: String,
    check_code: String,
    code_error: Option<String>,
    number_error: Option<String>,
    check_code_error: Option<String>,
    not_found: bool,
    verified: Option<Verified>,
}

fn field(value: &str, max: usize) -> String {
    value.trim().chars().take(max).collect()
}

/// `GET /receipts/verify`: the form, or with its three fields filled, the answer below it.
pub async fn page(
    State(state): State<AppState>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Query(query): Query<VerifyQuery>,
) -> Response {
    let mut page = VerifyPage {
        code: field(&query.code, 8),
        number: field(&query.number, 10),
        check_code: field(&query.check_code, 32),
        ..VerifyPage::default()
    };
    if page.code.is_empty() && page.number.is_empty() && page.check_code.is_empty() {
        return render(&page, StatusCode::OK);
    }
    if page.code.len() != 8 || !page.code.bytes().all(|b| b.is_ascii_digit()) {
        page.code_error = Some("票据代码是8位数字，请对照票据填写".into());
    }
    if page.number.len() != 10 || !page.number.bytes().all(|b| b.is_ascii_digit()) {
        page.number_error = Some("票据号码是10位数字，请对照票据填写".into());
    }
    if page.check_code.is_empty() {
        page.check_code_error = Some("请输入票据上的校验码".into());
    }
    if page.code_error.is_some() || page.number_error.is_some() || page.check_code_error.is_some() {
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    match yibao_server::services::collection::public_receipt_checked(
        &state,
        &page.code,
        &page.number,
        Some(&page.check_code),
    )
    .await
    {
        Ok(receipt) => {
            page.verified = Some(Verified {
                valid: receipt.status == yibao_domain::ReceiptStatus::Valid,
                receipt_code: receipt.receipt_code,
                receipt_number: receipt.receipt_number,
                payer_masked: yibao_server::receipts::masked_name(&receipt.payer_name),
                amount: crate::yuan(receipt.amount_fen.as_fen()),
                fee_year: i32::from(receipt.fee_year.get()),
                issued_on: crate::date_zh(receipt.issued_on),
                issuer: receipt.issuer,
            })
        }
        Err(err) if err.code == yibao_server::ErrorCode::NotFound => page.not_found = true,
        Err(err) => return error_page(&err),
    }
    render(&page, StatusCode::OK)
}

#[derive(Deserialize, Default)]
pub struct PayerCopyForm {
    /// The receipt, as the verification page has it.
    #[serde(flatten)]
    receipt: VerifyQuery,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    name: String,
}

/// `POST /receipts/pdf`: the payer's own copy (the name in full) as PDF, for whoever proves to
/// be the payer with the ID number and name on the receipt. Anything that does not match gets
/// the same answer as an unknown receipt; the name is never shown otherwise.
pub async fn payer_copy(
    State(state): State<AppState>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<PayerCopyForm>,
) -> Response {
    if yibao_server::auth::cross_site(&headers) {
        return error_page(&yibao_server::ServiceError::new(
            yibao_server::ErrorCode::Forbidden,
            "请求不是从本站页面发出，请回到票据查验页面重新操作",
        ));
    }
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    let not_proven = || {
        error_page(&yibao_server::ServiceError::new(
            yibao_server::ErrorCode::NotFound,
            "身份证号码或姓名与票据上的交款人不一致，不能下载交款人联；只查验真伪不需要下载",
        ))
    };
    let receipt = match yibao_server::services::collection::public_receipt_checked(
        &state,
        form.receipt.code.trim(),
        form.receipt.number.trim(),
        Some(form.receipt.check_code.trim()),
    )
    .await
    {
        Ok(receipt) => receipt,
        Err(err) => return error_page(&err),
    };
    let proven = yibao_domain::IdNumber::parse(form.id_number.trim(), state.clock.today())
        .is_ok_and(|p| p.id_number == receipt.id_number)
        && PersonName::parse(&receipt.payer_name).is_ok_and(|n| n.matches(form.name.trim()));
    if !proven {
        return not_proven();
    }
    payer_copy_pdf(&state, &receipt).await
}

/// The payer's copy of `receipt` (the name in full) as a PDF response, for a payer who proved to
/// be one.
pub(crate) async fn payer_copy_pdf(
    state: &AppState,
    receipt: &yibao_storage::collection::ReceiptRecord,
) -> Response {
    match yibao_server::receipts::render_pdf_off_thread(
        state,
        receipt,
        yibao_server::receipts::PayerName::Full,
    )
    .await
    {
        Ok(pdf) => yibao_server::receipts::pdf_response(receipt, pdf),
        Err(err) => error_page(&err),
    }
}
