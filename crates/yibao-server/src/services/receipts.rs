//! Receipts for staff: one reprinted (补打, JSON or PDF), or a person's receipts, each scoped like
//! the payer's record and audited.

use serde_json::json;
use yibao_domain::{IdNumber, RegionCode};
use yibao_storage::collection::ReceiptRecord;

use crate::auth::Staff;
use crate::receipts::{render_pdf_off_thread, PayerName};
use crate::services::audit;
use crate::{AppState, ErrorCode, ServiceError};

fn bad_receipt_no() -> ServiceError {
    ServiceError::new(
        ErrorCode::InvalidRequest,
        "票据号 receipt_no 应为8位票据代码、“-”和10位票据号码，如 32060125-0000012345（PDF 加 .pdf）",
    )
}

/// `32060125-0000012345` (or the 18 digits run together) into code and number.
fn parse_receipt_no(text: &str) -> Result<(String, String), ServiceError> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let dashes = text.chars().filter(|c| *c == '-').count();
    if digits.len() != 18
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || dashes > 1
        || (dashes == 1 && text.find('-') != Some(8))
    {
        return Err(bad_receipt_no());
    }
    Ok((digits[..8].to_owned(), digits[8..].to_owned()))
}

/// May this staff member read receipts of this person: scoped like the person's record.
async fn check_scope(
    state: &AppState,
    staff: &Staff,
    receipt: &ReceiptRecord,
) -> Result<RegionCode, ServiceError> {
    let region = receipt.region;
    let station = if staff.reads_by_station() {
        state
            .storage
            .get_person(region, &receipt.id_number)
            .await?
            .and_then(|(person, _)| person.station)
    } else {
        None
    };
    staff.may_read(region, station.as_ref())?;
    Ok(region)
}

/// A receipt as staff see it to reprint (补打): the payer's copy, name and ID number in full.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StaffReceipt {
    /// `receipt_code-receipt_number`, as the reprint path takes it.
    pub receipt_no: String,
    pub receipt_code: String,
    pub receipt_number: String,
    pub check_code: String,
    /// `社会保险费电子票据`
    pub title: String,
    pub region: String,
    pub payer_name: String,
    pub payer_id_number: String,
    pub item_name: String,
    pub fee_year: i32,
    pub components: Vec<crate::channel::answers::Component>,
    /// Fen.
    pub amount: i64,
    pub issued_on: chrono::NaiveDate,
    pub issuer: String,
    /// `valid` or `voided` (作废).
    pub status: String,
    pub payable_id: String,
    pub payment_no: String,
    /// Where anyone can verify the receipt (absolute, under `public_base_url`).
    pub verify_url: String,
}

fn staff_json(state: &AppState, receipt: &ReceiptRecord) -> StaffReceipt {
    StaffReceipt {
        receipt_no: format!("{}-{}", receipt.receipt_code, receipt.receipt_number),
        receipt_code: receipt.receipt_code.clone(),
        receipt_number: receipt.receipt_number.clone(),
        check_code: receipt.check_code.clone(),
        title: "社会保险费电子票据".to_owned(),
        region: receipt.region.to_string(),
        payer_name: receipt.payer_name.clone(),
        payer_id_number: receipt.id_number.as_str().to_owned(),
        item_name: yibao_domain::item_name_zh(receipt.bought_back_year()),
        fee_year: i32::from(receipt.fee_year.get()),
        // Stored as the JSON list of components written when the receipt was issued.
        components: serde_json::from_str(&receipt.components).unwrap_or_default(),
        amount: receipt.amount_fen.as_fen(),
        issued_on: receipt.issued_on,
        issuer: receipt.issuer.clone(),
        status: receipt.status.code().to_owned(),
        payable_id: receipt.payable_id.clone(),
        payment_no: receipt.payment_no.clone(),
        verify_url: state.public_base_url.verify_url(receipt),
    }
}

/// A receipt as a staff member asked for it: the JSON, or the PDF.
#[derive(Debug)]
pub enum StaffReceiptCopy {
    /// The payer's copy as JSON.
    Json(Box<StaffReceipt>),
    /// The PDF, with the receipt it renders (which names the file).
    Pdf {
        receipt: Box<ReceiptRecord>,
        pdf: Vec<u8>,
    },
}

/// A receipt for staff to reprint (补打) by its number (`32060125-0000012345`, with `.pdf` after
/// it for the PDF), the payer's name in full; scoped like the payer's record, audited
/// `receipt.read`.
pub async fn reprint_receipt(
    state: &AppState,
    staff: &Staff,
    receipt_no: &str,
) -> Result<StaffReceiptCopy, ServiceError> {
    let (text, wants_pdf) = match receipt_no.strip_suffix(".pdf") {
        Some(text) => (text, true),
        None => (receipt_no, false),
    };
    let (code, number) = parse_receipt_no(text)?;
    let receipt = state
        .storage
        .get_receipt(&code, &number)
        .await?
        .ok_or_else(|| {
            ServiceError::new(ErrorCode::NotFound, format!("未找到票据 {code}-{number}"))
        })?;
    let region = check_scope(state, staff, &receipt).await?;
    let payer = receipt.id_number.masked();
    let copy = if wants_pdf {
        let pdf = render_pdf_off_thread(state, &receipt, PayerName::Full).await?;
        StaffReceiptCopy::Pdf {
            receipt: Box::new(receipt),
            pdf,
        }
    } else {
        StaffReceiptCopy::Json(Box::new(staff_json(state, &receipt)))
    };
    audit(
        state,
        staff,
        "receipt.read",
        Some(region),
        &payer,
        json!({"receipt_no": format!("{code}-{number}"), "format": if wants_pdf { "pdf" } else { "json" }}),
    )
    .await?;
    Ok(copy)
}

/// A person's receipts in one region, newest first, so staff can find the one to reprint; scoped
/// like the person's record, audited `receipt.list`.
pub async fn person_receipts(
    state: &AppState,
    staff: &Staff,
    region: &str,
    id_number: &str,
) -> Result<Vec<StaffReceipt>, ServiceError> {
    let region = RegionCode::parse(region)?;
    let id = IdNumber::parse(id_number, state.clock.today())?.id_number;
    let station = state
        .storage
        .get_person(region, &id)
        .await?
        .and_then(|(person, _)| person.station);
    staff.may_read_person(region, station.as_ref())?;
    let receipts = state
        .storage
        .receipts_of_person(id.as_str(), &[region.to_string()], None)
        .await?;
    audit(
        state,
        staff,
        "receipt.list",
        Some(region),
        &id.masked(),
        json!({"count": receipts.len()}),
    )
    .await?;
    Ok(receipts.iter().map(|r| staff_json(state, r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_numbers() {
        assert_eq!(
            parse_receipt_no("32060125-0000012345").unwrap(),
            ("32060125".into(), "0000012345".into())
        );
        assert_eq!(
            parse_receipt_no("320601250000012345").unwrap(),
            ("32060125".into(), "0000012345".into())
        );
        for bad in [
            "3206012-50000012345",
            "32060125--000001234",
            "x",
            "32060125-00000123456",
        ] {
            let err = parse_receipt_no(bad).unwrap_err();
            assert!(err.message.contains("receipt_no"), "{bad}");
        }
    }
}
