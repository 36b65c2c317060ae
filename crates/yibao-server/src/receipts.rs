//! Electronic receipts (社会保险费电子票据) as PDF.

use yibao_domain::{IdNumber, PersonName};
use yibao_receipt_pdf::{render_receipt, ReceiptPdf};
use yibao_storage::collection::ReceiptRecord;

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// Renders a stored receipt with the configured CJK font; names and ID numbers masked.
pub fn render_pdf(state: &AppState, receipt: &ReceiptRecord) -> Result<Vec<u8>, ApiError> {
    let Some(font) = &state.receipt_font else {
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "票据PDF暂不可用：服务器未配置中文字体（见 README 的 receipt_font），可先使用 JSON 格式",
        ));
    };
    let components: Vec<(String, i64)> =
        serde_json::from_str::<Vec<serde_json::Value>>(&receipt.components)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["amount"].as_i64()?)))
            .filter(|(_, amount)| *amount > 0)
            .collect();
    let parts: Vec<(&str, i64)> = components.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let name = PersonName::parse(&receipt.payer_name).map_or_else(|_| "*".into(), |n| n.masked());
    let id = IdNumber::parse(&receipt.id_number, chrono::NaiveDate::MAX)
        .map_or_else(|_| "*".into(), |p| p.id_number.masked());
    let verify = format!(
        "查验：/public/receipts/verify?code={}&number={}&check_code={}",
        receipt.receipt_code, receipt.receipt_number, receipt.check_code
    );
    let region_name = receipt
        .issuer
        .trim_start_matches("国家税务总局")
        .trim_end_matches("税务局");
    let pdf = ReceiptPdf {
        title: "社会保险费电子票据",
        receipt_code: &receipt.receipt_code,
        receipt_number: &receipt.receipt_number,
        check_code: &receipt.check_code,
        issued_on: receipt.issued_on,
        payer_name: &name,
        payer_id_masked: &id,
        item_name: "城乡居民基本医疗保险",
        fee_year: u16::try_from(receipt.fee_year).unwrap_or(0),
        components: &parts,
        total_fen: receipt.amount_fen,
        issuer: &receipt.issuer,
        region_name,
        voided: receipt.status == "voided",
        verify_hint: &verify,
    };
    render_receipt(&pdf, font).map_err(|e| match e.code() {
        // A character the font lacks, or a font problem: the JSON receipt still works.
        "RECEIPT_FONT_UNAVAILABLE" | "INVALID_RECEIPT" => {
            tracing::warn!(error = %e, "receipt pdf not rendered");
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!("票据PDF无法生成：{e}；可使用 JSON 格式"),
            )
        }
        _ => ApiError::internal("receipt pdf", e),
    })
}
