//! Receipts for staff: one reprinted (JSON or PDF), or a person's receipts.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::routes;

use crate::auth::Staff;
use crate::http::ApiRouter;
use crate::receipts::pdf_response;
use crate::services::receipts::{self, StaffReceiptCopy};
use crate::{AppState, ErrorBody, ServiceError};

pub use crate::services::receipts::StaffReceipt;

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(staff_receipt))
        .routes(routes!(staff_person_receipts))
}

/// The receipt as JSON, or the PDF with a file name a clerk can file.
impl IntoResponse for StaffReceiptCopy {
    fn into_response(self) -> Response {
        match self {
            StaffReceiptCopy::Json(receipt) => Json(receipt).into_response(),
            StaffReceiptCopy::Pdf { receipt, pdf } => pdf_response(&receipt, pdf),
        }
    }
}

/// A receipt for staff to reprint (补打): JSON, or the PDF with `.pdf` after the number. The payer's
/// name is in full (this is the payer's copy); reading it is audited (`receipt.read`).
#[utoipa::path(get, path = "/api/v1/receipts/{receipt_no}", summary = "补打票据（JSON 或 PDF）", tag = "admin",
    params(("receipt_no" = String, Path, description = "`32060125-0000012345`, or `32060125-0000012345.pdf` for the PDF")),
    responses((status = 200, description = "the receipt as JSON, or the PDF for a number ending in `.pdf`", content((StaffReceipt = "application/json"), (Vec<u8> = "application/pdf"))), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, description = "`RECEIPT_GLYPH_MISSING`: a character of the name (code point in the message) is in no receipt font", body = ErrorBody), (status = 503, description = "`SERVICE_UNAVAILABLE`: no receipt font installed", body = ErrorBody)))]
pub async fn staff_receipt(
    State(state): State<AppState>,
    staff: Staff,
    Path(receipt_no): Path<String>,
) -> Result<Response, ServiceError> {
    let copy = receipts::reprint_receipt(&state, &staff, &receipt_no).await?;
    Ok(copy.into_response())
}

/// A person's receipts in one region, newest first, so staff can find the one to reprint. Scoped
/// and audited like the person's record.
#[utoipa::path(get, path = "/api/v1/regions/{region}/persons/{id_number}/receipts", summary = "参保人的票据", tag = "admin",
    params(("region" = String, Path), ("id_number" = String, Path)),
    responses((status = 200, body = [StaffReceipt]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn staff_person_receipts(
    State(state): State<AppState>,
    staff: Staff,
    Path((region, id_number)): Path<(String, String)>,
) -> Result<Json<Vec<StaffReceipt>>, ServiceError> {
    let list = receipts::person_receipts(&state, &staff, &region, &id_number).await?;
    Ok(Json(list))
}
