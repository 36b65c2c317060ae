//! Settlement storage: auto-debit agreements and runs (委托扣款), reconciliation of channel
//! statements (对账), refunds started by staff, and the staff reports. A third trait,
//! [`SettlementStorage`], that every [`crate::Storage`] also is; its SQL is shared by both backends
//! through [`impl_settlement_storage!`](crate::impl_settlement_storage).
//!
//! A debit run locks its payables with `locked_by = 'debit:<run_no>'`, so every other channel sees
//! them locked (银行扣费进行中) until the bank's result is imported or the run is abandoned; the
//! bank's successes then go through the same payment path as any channel's report.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;
use yibao_domain::reconciliation::{Difference, PlatformPayment, StatementBooking};

use crate::collection::{NewPayment, PaymentReportOutcome, RefundState};
use crate::StorageError;

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
    pub region: String,
    pub channel_id: String,
    pub payer_id_number: String,
    pub payer_name: String,
    pub account_masked: String,
    pub signed_on: NaiveDate,
    /// ID numbers debited under the agreement (the payer's family, or the payer alone).
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgreementRecord {
    pub agreement_no: String,
    pub region: String,
    pub channel_id: String,
    pub payer_id_number: String,
    pub payer_name: String,
    pub account_masked: String,
    pub status: String,
    pub signed_on: NaiveDate,
    pub cancelled_on: Option<NaiveDate>,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgreementOutcome {
    Signed(AgreementRecord),
    /// The agreement number is taken.
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
    pub region: String,
    pub fee_year: i32,
    pub debit_date: NaiveDate,
    /// Unix seconds: the run's locks hold until then; an abandoned run releases them.
    pub lock_until: i64,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DebitRunRecord {
    pub run_no: String,
    pub channel_id: String,
    pub region: String,
    pub fee_year: i32,
    pub debit_date: NaiveDate,
    pub status: String,
    pub item_count: i64,
    pub total_fen: i64,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DebitItemRecord {
    pub seq: i64,
    pub item_ref: String,
    pub region: String,
    pub payable_id: String,
    pub agreement_no: String,
    /// The member debited for (whose payable it is).
    pub id_number: String,
    pub name: String,
    /// The agreement holder (持卡人): the account's owner, whom the bank checks. Only for the
    /// request file; not listed.
    #[serde(skip)]
    pub holder_id_number: String,
    #[serde(skip)]
    pub holder_name: String,
    pub amount_fen: i64,
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
    pub status: &'static str,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReconciliationItem {
    pub channel_id: String,
    pub statement_date: NaiveDate,
    pub channel_txn_id: String,
    pub class: String,
    pub region: Option<String>,
    pub payment_no: Option<String>,
    pub platform_fen: i64,
    pub channel_fen: i64,
    pub status: String,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOnAnyDay {
    pub channel_txn_id: String,
    pub payment_no: String,
    pub amount_fen: i64,
    pub status: String,
    pub paid_on: NaiveDate,
    pub region: Option<String>,
}

/// A refund looked up by number, for refund lines on a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundLookup {
    pub refund_no: String,
    pub channel_txn_id: String,
    pub amount_fen: i64,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct NewPayableRefund {
    pub payable_id: String,
    pub reason: &'static str,
    pub refund_no: String,
    pub due: yibao_domain::DueDate,
    /// `cancelled` when the person leaves (employee insurance), else `unpaid` (re-assessment, reversal).
    pub payable_after: &'static str,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CollectionRow {
    pub day: NaiveDate,
    pub channel_id: String,
    pub region: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRecord {
    pub channel_id: String,
    pub day: NaiveDate,
    pub format: String,
    pub lines: i64,
    pub summary: String,
}

#[async_trait]
pub trait SettlementStorage: Send + Sync + 'static {
    async fn sign_agreement(
        &self,
        agreement: &NewAgreement,
    ) -> Result<AgreementOutcome, StorageError>;
    /// Cancels an active agreement from `on`; its members may sign another. `None` if unknown.
    async fn cancel_agreement(
        &self,
        agreement_no: &str,
        on: NaiveDate,
    ) -> Result<Option<AgreementRecord>, StorageError>;
    async fn agreement(&self, agreement_no: &str) -> Result<Option<AgreementRecord>, StorageError>;
    async fn agreements(
        &self,
        region: Option<&str>,
        id_number: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AgreementRecord>, StorageError>;

    /// Creates a run and locks, in one transaction, every payable of the region and fee year that is
    /// payable and whose person is under an active agreement with the bank.
    async fn create_debit_run(&self, run: &NewDebitRun) -> Result<DebitRunOutcome, StorageError>;
    async fn debit_run(&self, run_no: &str) -> Result<Option<DebitRunRecord>, StorageError>;
    async fn debit_runs(
        &self,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DebitRunRecord>, StorageError>;
    /// Items in sequence order, optionally only those with one outcome.
    async fn debit_run_items(
        &self,
        run_no: &str,
        outcome: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DebitItemRecord>, StorageError>;
    /// Records which result file is applied to the run; the same file again may proceed.
    async fn claim_debit_result(
        &self,
        run_no: &str,
        file_sha256: &str,
    ) -> Result<DebitResultClaim, StorageError>;
    /// Applies results for some items in one transaction: successes through the payment path,
    /// failures unlocked. Items already decided are skipped (a re-import resumes). Returns the
    /// outcome of each success in order.
    async fn apply_debit_results(
        &self,
        run_no: &str,
        results: &[DebitItemResult],
    ) -> Result<Vec<Option<PaymentReportOutcome>>, StorageError>;
    /// Marks the run completed with its summary once every item is decided.
    async fn complete_debit_run(
        &self,
        run_no: &str,
        summary: &str,
        now: i64,
    ) -> Result<(), StorageError>;
    /// Abandons runs whose lock bound passed without a result: their pending items are released
    /// and the payables unlocked. Returns how many runs.
    async fn abandon_expired_debit_runs(&self, now: i64) -> Result<u64, StorageError>;

    async fn channel_only_policy(&self, channel_id: &str) -> Result<Option<String>, StorageError>;
    async fn set_channel_only_policy(
        &self,
        channel_id: &str,
        policy: &str,
    ) -> Result<bool, StorageError>;
    /// A page of the channel's payments of one day, by `channel_txn_id` in byte order, after `after`.
    /// Payments booked from a statement (长款) are not the channel's reports and are left out.
    async fn payments_page(
        &self,
        channel_id: &str,
        day: NaiveDate,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PlatformPayment>, StorageError>;
    /// Payments an earlier upload of the day's statement booked from channel-only lines (长款).
    async fn statement_bookings(
        &self,
        channel_id: &str,
        day: NaiveDate,
    ) -> Result<Vec<StatementBooking>, StorageError>;
    /// Removes a payment booked from a statement, with its refund owed, in one transaction, only
    /// while nothing of it left the house: still booked from the statement (the channel did not
    /// report it since), not reversed, no receipt issued, and every refund of it still owed (not
    /// handed to the channel). `false`, and nothing changed, otherwise.
    async fn withdraw_statement_booking(
        &self,
        channel_id: &str,
        payment_no: &str,
    ) -> Result<bool, StorageError>;
    /// The channel's payments with these transaction ids, on any day.
    async fn payments_by_txn(
        &self,
        channel_id: &str,
        txn_ids: &[String],
    ) -> Result<Vec<PaymentOnAnyDay>, StorageError>;
    async fn refunds_by_no(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<Vec<RefundLookup>, StorageError>;
    /// Items still carried (platform-only, waiting for the next day's statement) from before `day`.
    async fn carried_items(
        &self,
        channel_id: &str,
        before: NaiveDate,
    ) -> Result<Vec<ReconciliationItem>, StorageError>;
    /// Stores a day's reconciliation: the statement row, its differences (replacing the open ones of
    /// an earlier upload of the day), and what it resolved or escalated from earlier days.
    async fn save_reconciliation(&self, record: &ReconciliationRecord) -> Result<(), StorageError>;
    async fn reconciliation_items(
        &self,
        channel_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        unresolved_only: bool,
        limit: usize,
    ) -> Result<Vec<ReconciliationItem>, StorageError> {
        self.reconciliation_items_of_region(channel_id, None, from, to, unresolved_only, limit)
            .await
    }
    /// [`SettlementStorage::reconciliation_items`] limited to the items of one region when `region`
    /// is given (items that belong to no region, such as 长款 without an order, are left out).
    async fn reconciliation_items_of_region(
        &self,
        channel_id: Option<&str>,
        region: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        unresolved_only: bool,
        limit: usize,
    ) -> Result<Vec<ReconciliationItem>, StorageError>;
    /// Staff resolve a difference by hand; when `region` is given, only an item of that region.
    /// `false` if there is no such unresolved item.
    #[allow(clippy::too_many_arguments)]
    async fn resolve_reconciliation_item(
        &self,
        channel_id: &str,
        region: Option<&str>,
        day: NaiveDate,
        channel_txn_id: &str,
        class: &str,
        resolution: &str,
        note: &str,
        by: &str,
        now: i64,
    ) -> Result<bool, StorageError>;
    async fn statements(
        &self,
        channel_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<StatementRecord>, StorageError>;

    /// Refunds what a paid payable's payment applied to it (re-assessment, employee insurance, a
    /// reversal after settlement): the application ends, the receipt is voided, the agency is told,
    /// and a refund is owed through the payment's channel, all in one transaction.
    async fn refund_paid_payable(
        &self,
        refund: &NewPayableRefund,
    ) -> Result<PayableRefundOutcome, StorageError>;
    /// Marks refunds handed to the channel (`sent`, one more attempt).
    async fn mark_refunds_sent(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<u64, StorageError>;
    /// A failed refund owed again, its attempts reset (staff decision, audited by the caller).
    async fn rearm_refund(&self, refund_no: &str) -> Result<RefundRetryOutcome, StorageError>;
    /// Refunds by status (any when `None`), oldest due first, in a region or all.
    async fn refunds(
        &self,
        status: Option<&str>,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RefundState>, StorageError>;

    async fn daily_collection(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        region: Option<&str>,
    ) -> Result<Vec<CollectionRow>, StorageError>;
    async fn refund_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        region: Option<&str>,
    ) -> Result<Vec<RefundDayRow>, StorageError>;
}
