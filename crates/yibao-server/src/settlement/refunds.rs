//! Refunds: a paid payable refunded, the refunds listed, a failed one retried.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::routes;
use yibao_domain::settlement::RefundReason;
use yibao_storage::collection::RefundState;
use yibao_storage::records::MAX_LIST_ROWS;

use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::{audit, refunds};
use crate::AppState;

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(refund_payable))
        .routes(routes!(list_refunds))
        .routes(routes!(retry_refund))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PayableRefundRequest {
    /// `REASSESSED`, `EMPLOYEE_INSURANCE` or `REVERSED_AFTER_SETTLEMENT`.
    reason: String,
}

/// Refunds a paid payable through the channel that took the money (voids its receipt).
#[utoipa::path(post, path = "/api/v1/payables/{payable_id}/refund", summary = "已缴费退费", tag = "settlement", request_body = PayableRefundRequest,
    params(("payable_id" = String, Path)),
    responses((status = 200, body = RefundState), (status = 404, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn refund_payable(
    State(state): State<AppState>,
    admin: crate::auth::Admin,
    Path(payable_id): Path<String>,
    ApiJson(req): ApiJson<PayableRefundRequest>,
) -> Result<Json<RefundState>, ServiceError> {
    let reason = RefundReason::from_code(&req.reason).ok_or_else(|| {
        ServiceError::new(
            ErrorCode::InvalidRequest,
            "退费原因应为 REASSESSED、EMPLOYEE_INSURANCE 或 REVERSED_AFTER_SETTLEMENT",
        )
    })?;
    let refund =
        refunds::refund_paid_payable(state.storage.as_ref(), &state.clock, &payable_id, reason)
            .await?;
    audit(&state, &admin.0, "payable.refund", None, &payable_id,
        json!({"refund_no": refund.refund_no, "reason": reason.code(), "amount": refund.amount_fen})).await?;
    Ok(Json(refund))
}

#[derive(Deserialize)]
pub struct RefundsQuery {
    /// `owed`, `sent`, `succeeded`, `failed`, `cancelled`; all when absent.
    status: Option<String>,
    region: Option<String>,
}

/// Refunds by state, oldest due first.
#[utoipa::path(get, path = "/api/v1/refunds", summary = "退费清单", tag = "settlement",
    params(("status" = Option<String>, Query), ("region" = Option<String>, Query)), responses((status = 200, body = [RefundState])))]
pub async fn list_refunds(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<RefundsQuery>,
) -> Result<Json<Vec<RefundState>>, ServiceError> {
    let region = staff.collection_read_scope()?.or(q.region);
    let list = state
        .storage
        .refunds(q.status.as_deref(), region.as_deref(), MAX_LIST_ROWS)
        .await?;
    Ok(Json(list))
}

/// Owes a failed refund again (the channel lists it again, with fresh attempts).
#[utoipa::path(post, path = "/api/v1/refunds/{refund_no}/retry", summary = "重新发起退费", tag = "settlement",
    params(("refund_no" = String, Path)), responses((status = 200, body = RefundState), (status = 409, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn retry_refund(
    State(state): State<AppState>,
    admin: crate::auth::Admin,
    Path(refund_no): Path<String>,
) -> Result<Json<RefundState>, ServiceError> {
    let refund = refunds::retry_failed_refund(&state, &admin.0, &refund_no).await?;
    Ok(Json(refund))
}
