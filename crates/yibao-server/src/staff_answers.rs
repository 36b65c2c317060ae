//! The bodies the staff API (tags `admin` and `settlement`) answers with where a handler puts
//! several things together: the handlers serialize exactly these, and the OpenAPI document takes
//! its schemas from them. Storage records answered as they are (refunds, agreements, debit runs,
//! reconciliation items, the audit log …) carry their own `ToSchema` in yibao-storage. Amounts are
//! integer fen.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use yibao_storage::collection::RefundState;
use yibao_storage::settlement::{
    CollectionRow, DebitItemRecord, DebitRunRecord, ReconciliationItem, RefundDayRow,
    StatementRecord,
};

use crate::services::setup::CalendarWarning;

/// A debit run (委托扣款批次) with its items, those of one outcome when asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct DebitRunDetail {
    pub run: DebitRunRecord,
    pub items: Vec<DebitItemRecord>,
}

/// What becomes of a channel's unreported money (长款) from now on.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelOnlyPolicyAnswer {
    pub channel_id: String,
    /// `refund` or `apply`.
    pub policy: String,
}

/// A reconciliation difference closed by hand.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionAnswer {
    /// Always `true` (a difference not found or already resolved is a 404).
    pub resolved: bool,
}

/// 征收日报: collection per day, channel and region.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyCollectionReport {
    pub rows: Vec<CollectionRow>,
    /// Collection windows that reach into a year without a holiday calendar.
    pub warnings: Vec<CalendarWarning>,
}

/// 退费报表: refunds per day and channel, with those owed, failed and overdue now.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundsReport {
    pub days: Vec<RefundDayRow>,
    /// Refunds owed now (`owed`).
    pub owed: Vec<RefundState>,
    /// Refunds the channel could not pay back (`failed`): retry or settle by hand.
    pub failed: Vec<RefundState>,
    /// Refunds past their due date.
    pub overdue: Vec<RefundState>,
    /// Collection windows that reach into a year without a holiday calendar.
    pub warnings: Vec<CalendarWarning>,
}

/// 对账报表: the statements reconciled in the period and the differences found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationReport {
    pub statements: Vec<ReconciledStatement>,
    pub differences: Vec<ReconciliationItem>,
}

/// One statement day as reconciled.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciledStatement {
    pub channel_id: String,
    pub date: NaiveDate,
    /// `protocol`, `wechat` or `alipay`.
    pub format: String,
    /// Transaction lines read.
    pub lines: i64,
    /// The reconciliation summary as it was answered at upload (`null` if it cannot be read back,
    /// or for a tax collector when the channel serves several regions; one stored by an older
    /// version may lack fields added since).
    #[schema(value_type = Option<crate::channel::answers::StatementSummary>, required = true)]
    pub summary: serde_json::Value,
}

impl ReconciledStatement {
    /// `with_summary` false leaves the summary out (`null`): a tax collector's view of a channel
    /// that serves several regions, whose summary counts every region's payments.
    pub fn of(s: &StatementRecord, with_summary: bool) -> Self {
        ReconciledStatement {
            channel_id: s.channel_id.clone(),
            date: s.day,
            format: s.format.clone(),
            lines: s.lines,
            summary: if with_summary {
                serde_json::from_str(&s.summary).unwrap_or(serde_json::Value::Null)
            } else {
                serde_json::Value::Null
            },
        }
    }
}
