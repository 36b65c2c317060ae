//! Settlement storage: auto-debit agreements and runs (委托扣款), reconciliation of channel
//! statements (对账), refunds started by staff, and the staff reports. [`SettlementStorage`] is
//! the aggregates' traits together, each written once for both backends in its own file
//! ([`crate::debit_runs`], [`crate::reconciliation`], [`crate::refund_care`],
//! [`crate::reports`]); this module holds their records.
//!
//! A debit run locks its payables with `locked_by = 'debit:<run_no>'`, so every other channel sees
//! them locked (银行扣费进行中) until the bank's result is imported or the run is abandoned; the
//! bank's successes then go through the same payment path as any channel's report.

use chrono::NaiveDate;
use serde::Serialize;
use yibao_domain::reconciliation::Difference;
use yibao_domain::{FeeYear, Fen, IdNumber, RegionCode};

use crate::collection::{NewPayment, RefundState};
use crate::debit_runs::DebitStore;
use crate::reconciliation::ReconciliationStore;
use crate::refund_care::RefundCare;
use crate::reports::ReportStore;

/// Items in one debit run (and one request file) at most.
pub const MAX_DEBIT_BATCH: usize = 50_000;
/// Members of one family agreement at most.
pub const MAX_AGREEMENT_MEMBERS: usize = 20;
/// Platform payments read per page while reconciling.
pub const RECONCILE_PAGE: usize = 10_000;

/// The lock holder a debit run writes into `payables.locked_by`.
pub fn debit_lock_holder(run_no: &str) -> String {
    format!("debit:{run_no}")
}

#[derive(Debug, Clone)]
pub struct NewAgreement {
    pub agreement_no: String,
    pub region: RegionCode,
    pub channel_id: String,
    pub payer_id_number: IdNumber,
    pub payer_name: String,
    pub account_masked: String,
    pub signed_on: NaiveDate,
    /// ID numbers debited under the agreement (the payer's family, or the payer alone).
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct AgreementRecord {
    pub agreement_no: String,
    #[schema(value_type = String)]
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    pub channel_id: String,
    /// In full: agreements are staff-only data.
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::records::serialize_id_number_in_full")]
    #[sqlx(try_from = "String")]
    pub payer_id_number: IdNumber,
    pub payer_name: String,
    pub account_masked: String,
    #[schema(value_type = String)]
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::AgreementStatus,
    pub signed_on: NaiveDate,
    pub cancelled_on: Option<NaiveDate>,
    /// Read on their own (`debit_agreement_members`).
    #[sqlx(skip)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgreementOutcome {
    Signed(AgreementRecord),
    /// The region already has an agreement of that number.
    Exists,
    /// The channel is not an auto-debit bank channel of that region.
    NotAutoDebitChannel,
    /// A member is already under another active agreement.
    MemberCovered {
        id_number: String,
        agreement_no: String,
    },
}

#[derive(Debug, Clone)]
pub struct NewDebitRun {
    pub run_no: String,
    pub channel_id: String,
    pub region: RegionCode,
    pub fee_year: FeeYear,
    pub debit_date: NaiveDate,
    /// Unix seconds: the run's locks hold until then; an abandoned run releases them.
    pub lock_until: i64,
    pub now: i64,
    /// Leave out subsidised payables (a relief lowered them): the region's channel rules keep
    /// them from bank auto-debit.
    pub skip_subsidised: bool,
    /// Leave out payables of the full amount, for the same reason.
    pub skip_full: bool,
    /// Payables the 2025 rules would not sell on the debit date (a wait past the year's end where
    /// the region refuses that): left out of the run.
    pub leave_out: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DebitRunRecord {
    pub run_no: String,
    pub channel_id: String,
    #[schema(value_type = String)]
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    #[schema(value_type = i32)]
    #[sqlx(try_from = "i32")]
    pub fee_year: FeeYear,
    pub debit_date: NaiveDate,
    #[schema(value_type = String)]
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::DebitRunStatus,
    pub item_count: i64,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub total_fen: Fen,
    pub lock_until: i64,
    pub result_summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebitRunOutcome {
    Created(DebitRunRecord),
    /// A run for that bank, region, fee year and date exists.
    Exists(DebitRunRecord),
    NotAutoDebitChannel,
    /// More payables than [`MAX_DEBIT_BATCH`] are under agreement: split the run.
    TooMany {
        candidates: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DebitItemRecord {
    pub seq: i64,
    pub item_ref: String,
    #[schema(value_type = String)]
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    pub payable_id: String,
    pub agreement_no: String,
    /// The member debited for (whose payable it is), in full: debit runs are staff-only.
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::records::serialize_id_number_in_full")]
    #[sqlx(try_from = "String")]
    pub id_number: IdNumber,
    pub name: String,
    /// The agreement holder (持卡人): the account's owner, whom the bank checks. Only for the
    /// request file; not listed.
    #[serde(skip)]
    pub holder_id_number: String,
    #[serde(skip)]
    pub holder_name: String,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub amount_fen: Fen,
    pub outcome: String,
    pub bank_txn_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub payment_no: Option<String>,
}

/// What the bank's result file says about one item.
#[derive(Debug, Clone)]
pub enum DebitItemResult {
    /// Debited: stored through the payment path (the payment's `lock_holder` is the run's).
    Succeeded { seq: i64, payment: Box<NewPayment> },
    Failed {
        seq: i64,
        code: String,
        reason: String,
    },
}

impl DebitItemResult {
    /// The run's item it answers.
    pub fn seq(&self) -> i64 {
        match self {
            DebitItemResult::Succeeded { seq, .. } | DebitItemResult::Failed { seq, .. } => *seq,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebitResultClaim {
    /// This file may be applied (first time, or the same file again after an interruption).
    Proceed(DebitRunRecord),
    /// A different result file was imported for this run already.
    OtherFile,
    NotFound,
}

/// A difference to store for a statement day, with its status (`open`, `carried`, `resolved`) and,
/// when acted on at once, the resolution.
#[derive(Debug, Clone)]
pub struct NewReconciliationItem {
    pub difference: Difference,
    pub status: yibao_domain::ReconciliationItemStatus,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ReconciliationItem {
    pub channel_id: String,
    pub statement_date: NaiveDate,
    pub channel_txn_id: String,
    pub class: String,
    #[sqlx(rename = "region_code")]
    pub region: Option<String>,
    pub payment_no: Option<String>,
    pub platform_fen: i64,
    pub channel_fen: i64,
    #[schema(value_type = String)]
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::ReconciliationItemStatus,
    pub resolution: Option<String>,
    pub note: Option<String>,
    pub resolved_by: Option<String>,
}

/// One statement day's reconciliation, stored whole (replacing an earlier upload of the day).
#[derive(Debug, Clone)]
pub struct ReconciliationRecord {
    pub channel_id: String,
    pub day: NaiveDate,
    pub format: String,
    pub file_sha256: String,
    pub lines: i64,
    pub summary: String,
    pub items: Vec<NewReconciliationItem>,
    /// Carried platform-only items of earlier days found on this statement: (day, txn).
    pub resolved_carried: Vec<(NaiveDate, String)>,
    /// Carried items of the previous day not found on this statement either.
    pub escalate: Vec<(NaiveDate, String)>,
    pub now: i64,
}

/// A payment looked up by transaction id on any day (for statement lines not matched on theirs).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentOnAnyDay {
    pub channel_txn_id: String,
    pub payment_no: String,
    pub amount_fen: i64,
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::PaymentStatus,
    pub paid_on: NaiveDate,
    #[sqlx(rename = "region_code")]
    pub region: Option<String>,
}

/// A refund looked up by number, for refund lines on a statement.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundLookup {
    pub refund_no: String,
    pub channel_txn_id: String,
    pub amount_fen: i64,
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::RefundStatus,
}

#[derive(Debug, Clone)]
pub struct NewPayableRefund {
    pub payable_id: String,
    pub reason: &'static str,
    pub refund_no: String,
    pub due: yibao_domain::DueDate,
    /// The person left (employee insurance): the payable is cancelled once refunded. Otherwise
    /// (re-assessment, a reversal after settlement) it is unpaid again.
    pub cancel_payable: bool,
    pub event_id: String,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayableRefundOutcome {
    Refunded(RefundState),
    /// The payable has no applied payment (status given).
    NotPaid(String),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRetryOutcome {
    Rearmed(RefundState),
    NotFailed(String),
    NotFound,
}

/// Collection per day, channel and region, counted from what payments applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct CollectionRow {
    #[sqlx(rename = "paid_on")]
    pub day: NaiveDate,
    pub channel_id: String,
    #[schema(value_type = String)]
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    pub payables: i64,
    pub applied_fen: i64,
}

/// Refund totals per day and channel: falling due that day (whatever their state) and succeeded
/// that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefundDayRow {
    pub day: NaiveDate,
    pub channel_id: String,
    pub due: i64,
    pub due_fen: i64,
    pub succeeded: i64,
    pub succeeded_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StatementRecord {
    pub channel_id: String,
    #[sqlx(rename = "statement_date")]
    pub day: NaiveDate,
    pub format: String,
    pub lines: i64,
    pub summary: String,
}

/// What settlement needs of storage: auto-debit, reconciliation, refunds staff handle, reports; each aggregate in its own file.
pub trait SettlementStorage:
    DebitStore + ReconciliationStore + RefundCare + ReportStore + 'static
{
}

impl<T> SettlementStorage for T where
    T: DebitStore + ReconciliationStore + RefundCare + ReportStore + 'static
{
}
