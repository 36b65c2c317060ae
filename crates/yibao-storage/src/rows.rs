//! Rows the generic storage code reads into records, shared by its aggregates.

use sqlx::{ColumnIndex, Decode, Row, Type};
use yibao_domain::{ReliefKind, Status};

use crate::collection::{PayableView, ReceiptRecord, RefundState};
use crate::records::{household_code, PayableRecord, PersonColumns};
use crate::settlement::{DebitRunRecord, ReconciliationItem};
use crate::StorageError;

/// A status column, read once into its enum; a code that is none of its statuses is corruption.
pub fn status_from_row<R: Row, T: Status>(r: &R, column: &str) -> Result<T, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let code: String = r.try_get(column)?;
    T::from_code(&code).ok_or_else(|| StorageError::corrupt(format!("{} {code}", T::OF)))
}

/// The columns of [`PayableRecord`], in order, for [`payable_record_from_row`].
pub const PAYABLE_COLUMNS: &str =
    "payable_id, region_code, CAST(fee_year AS INTEGER) AS fee_year, \
     id_number, category, amount_fen, basic_fen, critical_illness_fen, long_term_care_fen, \
     policy_amount_fen, relief_kind, status, payable_from, supersedes, inputs";

/// A row selected with [`PAYABLE_COLUMNS`].
pub fn payable_record_from_row<R: Row>(r: &R) -> Result<PayableRecord, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> chrono::NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(PayableRecord {
        payable_id: r.try_get("payable_id")?,
        region: r.try_get("region_code")?,
        fee_year: r.try_get("fee_year")?,
        id_number: r.try_get("id_number")?,
        category: r.try_get("category")?,
        amount_fen: r.try_get("amount_fen")?,
        basic_fen: r.try_get("basic_fen")?,
        critical_illness_fen: r.try_get("critical_illness_fen")?,
        long_term_care_fen: r.try_get("long_term_care_fen")?,
        policy_amount_fen: r.try_get("policy_amount_fen")?,
        relief_kind: r.try_get("relief_kind")?,
        status: status_from_row(r, "status")?,
        payable_from: r.try_get("payable_from")?,
        supersedes: r.try_get("supersedes")?,
        inputs: r.try_get("inputs")?,
    })
}

/// A `persons` row.
pub fn person_columns_from_row<R: Row>(r: &R) -> Result<PersonColumns, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> chrono::NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    let household: String = r.try_get("household")?;
    let relief_kind: Option<String> = r.try_get("relief_kind")?;
    Ok(PersonColumns {
        region_code: r.try_get("region_code")?,
        id_number: r.try_get("id_number")?,
        name: r.try_get("name")?,
        household: household_code(&household)?,
        permit_since: r.try_get("permit_since")?,
        school: r.try_get("school")?,
        phone: r.try_get("phone")?,
        station_code: r.try_get("station_code")?,
        employee_insured: r.try_get("employee_insured")?,
        relief_kind: relief_kind
            .as_deref()
            .map(|k| {
                ReliefKind::from_code(k)
                    .map(ReliefKind::code)
                    .ok_or_else(|| StorageError::corrupt(format!("relief kind {k}")))
            })
            .transpose()?,
        certificate_name: r.try_get("certificate_name")?,
        certificate_number: r.try_get("certificate_number")?,
        certificate_valid_until: r.try_get("certificate_valid_until")?,
        subsidy_fen: r.try_get("subsidy_fen")?,
    })
}

/// The columns of [`PayableView`], joined from payables, persons and regions; a statement goes
/// on with its `WHERE`.
pub const PAYABLE_VIEW_SELECT: &str = "SELECT y.payable_id, y.region_code, g.name AS region_name, \
     CAST(y.fee_year AS INTEGER) AS fee_year, y.id_number, p.name, y.amount_fen, y.basic_fen, \
     y.critical_illness_fen, y.long_term_care_fen, y.status, y.locked_by, y.locked_until \
     FROM payables y \
     JOIN persons p ON p.region_code = y.region_code AND p.id_number = y.id_number \
     JOIN pooling_regions g ON g.region_code = y.region_code ";

/// A row selected with [`PAYABLE_VIEW_SELECT`].
pub fn payable_view_from_row<R: Row>(r: &R) -> Result<PayableView, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(PayableView {
        payable_id: r.try_get("payable_id")?,
        region: r.try_get("region_code")?,
        region_name: r.try_get("region_name")?,
        fee_year: r.try_get("fee_year")?,
        id_number: r.try_get("id_number")?,
        name: r.try_get("name")?,
        amount_fen: r.try_get("amount_fen")?,
        basic_fen: r.try_get("basic_fen")?,
        critical_illness_fen: r.try_get("critical_illness_fen")?,
        long_term_care_fen: r.try_get("long_term_care_fen")?,
        status: status_from_row(r, "status")?,
        locked_by: r.try_get("locked_by")?,
        locked_until: r.try_get("locked_until")?,
    })
}

/// A `refunds` row as a channel sees it.
pub fn refund_state_from_row<R: Row>(r: &R) -> Result<RefundState, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> chrono::NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RefundState {
        refund_no: r.try_get("refund_no")?,
        channel_txn_id: r.try_get("channel_txn_id")?,
        amount_fen: r.try_get("amount_fen")?,
        reason: r.try_get("reason")?,
        due: r.try_get("due")?,
        status: status_from_row(r, "status")?,
        due_without_calendar: r.try_get("due_without_calendar")?,
    })
}

/// The columns of [`ReceiptRecord`]; a statement goes on with its `WHERE`.
pub const RECEIPT_SELECT: &str = "SELECT receipt_code, receipt_number, check_code, region_code, \
     payable_id, payment_no, id_number, payer_name, CAST(fee_year AS INTEGER) AS fee_year, \
     amount_fen, components, issued_on, issuer, status FROM receipts ";

/// A row selected with [`RECEIPT_SELECT`].
pub fn receipt_from_row<R: Row>(r: &R) -> Result<ReceiptRecord, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> chrono::NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ReceiptRecord {
        receipt_code: r.try_get("receipt_code")?,
        receipt_number: r.try_get("receipt_number")?,
        check_code: r.try_get("check_code")?,
        region: r.try_get("region_code")?,
        payable_id: r.try_get("payable_id")?,
        payment_no: r.try_get("payment_no")?,
        id_number: r.try_get("id_number")?,
        payer_name: r.try_get("payer_name")?,
        fee_year: r.try_get("fee_year")?,
        amount_fen: r.try_get("amount_fen")?,
        components: r.try_get("components")?,
        issued_on: r.try_get("issued_on")?,
        issuer: r.try_get("issuer")?,
        status: r.try_get("status")?,
    })
}

/// The columns of a refund as a channel sees it ([`refund_state_from_row`]); a statement goes
/// on with its `WHERE`.
pub const REFUND_SELECT: &str = "SELECT refund_no, channel_txn_id, amount_fen, reason, due, \
     status, due_without_calendar FROM refunds ";

/// The columns of [`DebitRunRecord`]; a statement goes on with its `WHERE`.
pub const DEBIT_RUN_SELECT: &str = "SELECT run_no, channel_id, region_code, \
     CAST(fee_year AS INTEGER) AS fee_year, debit_date, status, item_count, total_fen, lock_until, \
     result_summary FROM debit_runs ";

/// A row selected with [`DEBIT_RUN_SELECT`].
pub fn debit_run_from_row<R: Row>(r: &R) -> Result<DebitRunRecord, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> chrono::NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(DebitRunRecord {
        run_no: r.try_get("run_no")?,
        channel_id: r.try_get("channel_id")?,
        region: r.try_get("region_code")?,
        fee_year: r.try_get("fee_year")?,
        debit_date: r.try_get("debit_date")?,
        status: r.try_get("status")?,
        item_count: r.try_get("item_count")?,
        total_fen: r.try_get("total_fen")?,
        lock_until: r.try_get("lock_until")?,
        result_summary: r.try_get("result_summary")?,
    })
}

/// A `reconciliation_items` row.
pub fn reconciliation_item_from_row<R: Row>(r: &R) -> Result<ReconciliationItem, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> chrono::NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ReconciliationItem {
        channel_id: r.try_get("channel_id")?,
        statement_date: r.try_get("statement_date")?,
        channel_txn_id: r.try_get("channel_txn_id")?,
        class: r.try_get("class")?,
        region: r.try_get("region_code")?,
        payment_no: r.try_get("payment_no")?,
        platform_fen: r.try_get("platform_fen")?,
        channel_fen: r.try_get("channel_fen")?,
        status: r.try_get("status")?,
        resolution: r.try_get("resolution")?,
        note: r.try_get("note")?,
        resolved_by: r.try_get("resolved_by")?,
    })
}
