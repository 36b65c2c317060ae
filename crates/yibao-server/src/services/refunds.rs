//! Refunds started by staff, and the due date every refund gets: two working days (by the region's
//! calendar) after the money came in or the decision was made.

use chrono::NaiveDate;
use serde_json::json;
use yibao_domain::settlement::RefundReason;
use yibao_domain::{DueDate, RegionCode, WorkingCalendar};
use yibao_storage::collection::RefundState;
use yibao_storage::settlement::{NewPayableRefund, PayableRefundOutcome};
use yibao_storage::Storage;

use crate::auth::Staff;
use crate::clock::Clock;
use crate::error::{ErrorCode, ServiceError};
use crate::services::audit;
use crate::AppState;

/// Working days within which a refund is due.
pub const REFUND_DUE_WORKING_DAYS: u32 = 2;

/// Two working days after `from` by the region's calendar (weekdays alone when the region is
/// unknown or its calendar cannot say): money held must never wait on a calendar problem. The
/// answer says whether every year crossed had a holiday calendar; the refund carries that flag
/// (`due_without_calendar`) where staff see it.
pub async fn refund_due(
    storage: &dyn Storage,
    region: Option<&str>,
    from: NaiveDate,
) -> Result<DueDate, ServiceError> {
    let calendar = match region.map(RegionCode::parse) {
        Some(Ok(code)) => storage.working_calendar(code).await?,
        _ => WorkingCalendar::default(),
    };
    Ok(due_by(&calendar, from))
}

/// [`refund_due`] for the channel's hot paths (payment reports, reversals): the region's calendar
/// as the server keeps it ([`crate::AppStateInner::calendars`]), read at most once per
/// [`yibao_storage::memo::CALENDAR_CACHE_TTL`] instead of on every request.
pub async fn refund_due_kept(
    state: &AppState,
    region: Option<RegionCode>,
    from: NaiveDate,
) -> Result<DueDate, ServiceError> {
    let Some(code) = region else {
        return Ok(due_by(&WorkingCalendar::default(), from));
    };
    let calendar = match state.calendars.lookup(&code) {
        yibao_storage::memo::Lookup::Known(calendar) => calendar,
        yibao_storage::memo::Lookup::Unknown(generation) => {
            let calendar = state.storage.working_calendar(code).await?;
            state.calendars.store(code, calendar.clone(), generation);
            calendar
        }
    };
    Ok(due_by(&calendar, from))
}

fn due_by(calendar: &WorkingCalendar, from: NaiveDate) -> DueDate {
    calendar
        .add_working_days(from, REFUND_DUE_WORKING_DAYS)
        .or_else(|_| WorkingCalendar::default().add_working_days(from, REFUND_DUE_WORKING_DAYS))
        .unwrap_or_else(|_| DueDate {
            date: from,
            years_without_calendar: vec![chrono::Datelike::year(&from)],
        })
}

/// Refunds a paid payable (re-assessment, employee insurance, a reversal after settlement): its
/// receipt is voided, the agency is told, and the money is owed back through the channel that took
/// it. A re-assessment may follow once this is done.
pub async fn refund_paid_payable(
    storage: &dyn Storage,
    clock: &Clock,
    payable_id: &str,
    reason: RefundReason,
) -> Result<RefundState, ServiceError> {
    if !reason.staff_may_start() {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "退费原因应为 REASSESSED（重新核定）、EMPLOYEE_INSURANCE（参加职工医保）或 REVERSED_AFTER_SETTLEMENT（对账后撤销）",
        ));
    }
    let region = storage
        .payables_by_id(&[payable_id.to_owned()])
        .await?
        .first()
        .map(|v| v.payable.region);
    let due = refund_due(storage, region.as_ref().map(|r| r.as_str()), clock.today()).await?;
    let outcome = storage
        .refund_paid_payable(&NewPayableRefund {
            payable_id: payable_id.to_owned(),
            reason: reason.code(),
            refund_no: region
                .as_ref()
                .map(|r| r.as_str())
                .map_or_else(|| super::new_id("RF"), |r| super::new_regional_id("RF", r)),
            due,
            cancel_payable: reason == RefundReason::EmployeeInsurance,
            event_id: region
                .as_ref()
                .map(|r| r.as_str())
                .map_or_else(|| super::new_id("EV"), |r| super::new_regional_id("EV", r)),
            now: clock.now().timestamp(),
        })
        .await?;
    match outcome {
        PayableRefundOutcome::Refunded(state) => Ok(state),
        PayableRefundOutcome::NotFound => {
            Err(ServiceError::new(ErrorCode::NotFound, "未找到该应缴费信息"))
        }
        PayableRefundOutcome::NotPaid(status) => Err(ServiceError::new(
            ErrorCode::NotPayable,
            format!("该应缴费信息当前状态为“{status}”，没有已缴费用可退"),
        )),
    }
}

/// Owes a failed refund again (the channel lists it again, with fresh attempts). The
/// administrator's; audited `refund.retry`.
pub async fn retry_failed_refund(
    state: &AppState,
    staff: &Staff,
    refund_no: &str,
) -> Result<RefundState, ServiceError> {
    staff.require_admin()?;
    match state.storage.rearm_refund(refund_no).await? {
        yibao_storage::settlement::RefundRetryOutcome::Rearmed(r) => {
            audit(state, staff, "refund.retry", None, refund_no, json!({})).await?;
            Ok(r)
        }
        yibao_storage::settlement::RefundRetryOutcome::NotFound => {
            Err(ServiceError::new(ErrorCode::NotFound, "未找到该退费"))
        }
        yibao_storage::settlement::RefundRetryOutcome::NotFailed(status) => Err(ServiceError::new(
            ErrorCode::IdempotencyConflict,
            format!("只有退费失败的才能重新发起，该退费当前为“{status}”"),
        )),
    }
}
