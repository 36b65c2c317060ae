//! Rows the generic storage code reads into records, shared by its aggregates. Records decode
//! with `sqlx::FromRow` (derived on each: [`record`]); the column lists that select them are here.

use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use yibao_domain::{ReliefKind, Status};

use crate::records::{household_code, PersonColumns};
use crate::StorageError;

/// A row read into its record by the record's `sqlx::FromRow`, the driver's error as a storage
/// error (a status code that is none of its enum's is one: `yibao_domain::UnknownStatus`).
pub fn record<'r, T, R>(r: &'r R) -> Result<T, StorageError>
where
    R: Row,
    T: FromRow<'r, R>,
{
    T::from_row(r).map_err(StorageError::from)
}

/// A status column, read once into its enum; a code that is none of its statuses is corruption.
pub fn status_from_row<R: Row, T: Status>(r: &R, column: &str) -> Result<T, StorageError>
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let code: String = r.try_get(column)?;
    T::from_code(&code).ok_or_else(|| StorageError::corrupt(format!("{} {code}", T::OF)))
}

/// The columns of [`crate::records::PayableRecord`].
pub const PAYABLE_COLUMNS: &str =
    "payable_id, region_code, CAST(fee_year AS INTEGER) AS fee_year, \
     id_number, category, amount_fen, basic_fen, critical_illness_fen, long_term_care_fen, \
     policy_amount_fen, relief_kind, status, payable_from, supersedes, inputs, locked_by, \
     locked_until, CAST(buys_back_year AS INTEGER) AS buys_back_year";

/// A `persons` row as stored.
#[derive(sqlx::FromRow)]
pub struct PersonRow {
    region_code: String,
    id_number: String,
    name: String,
    household: String,
    permit_since: Option<chrono::NaiveDate>,
    school: Option<String>,
    phone: Option<String>,
    station_code: Option<String>,
    employee_insured: bool,
    relief_kind: Option<String>,
    certificate_name: Option<String>,
    certificate_number: Option<String>,
    certificate_valid_until: Option<chrono::NaiveDate>,
    subsidy_fen: Option<i64>,
}

impl TryFrom<PersonRow> for PersonColumns {
    type Error = StorageError;
    /// The household and relief codes checked against theirs: an unknown one is a corrupt row.
    fn try_from(r: PersonRow) -> Result<PersonColumns, StorageError> {
        Ok(PersonColumns {
            region_code: r.region_code,
            id_number: r.id_number,
            name: r.name,
            household: household_code(&r.household)?,
            permit_since: r.permit_since,
            school: r.school,
            phone: r.phone,
            station_code: r.station_code,
            employee_insured: r.employee_insured,
            relief_kind: r
                .relief_kind
                .as_deref()
                .map(|k| {
                    ReliefKind::from_code(k)
                        .map(ReliefKind::code)
                        .ok_or_else(|| StorageError::corrupt(format!("relief kind {k}")))
                })
                .transpose()?,
            certificate_name: r.certificate_name,
            certificate_number: r.certificate_number,
            certificate_valid_until: r.certificate_valid_until,
            subsidy_fen: r.subsidy_fen,
        })
    }
}

/// A `persons` row, as the columns [`PersonColumns`] keeps.
pub fn person_columns_from_row<R: Row>(r: &R) -> Result<PersonColumns, StorageError>
where
    for<'r> PersonRow: FromRow<'r, R>,
{
    record::<PersonRow, R>(r)?.try_into()
}

/// The columns of [`crate::collection::PayableView`], joined from payables, persons and regions; a statement goes
/// on with its `WHERE`.
pub const PAYABLE_VIEW_SELECT: &str = "SELECT y.payable_id, y.region_code, g.name AS region_name, \
     CAST(y.fee_year AS INTEGER) AS fee_year, y.id_number, p.name, y.category, y.amount_fen, \
     y.basic_fen, y.critical_illness_fen, y.long_term_care_fen, y.policy_amount_fen, \
     y.relief_kind, y.status, y.payable_from, y.supersedes, y.inputs, y.locked_by, y.locked_until, \
     CAST(y.buys_back_year AS INTEGER) AS buys_back_year, p.insured_number, p.station_code \
     FROM payables y \
     JOIN persons p ON p.region_code = y.region_code AND p.id_number = y.id_number \
     JOIN pooling_regions g ON g.region_code = y.region_code ";

/// The columns of [`crate::collection::ReceiptRecord`]; a statement goes on with its `WHERE`.
pub const RECEIPT_SELECT: &str = "SELECT receipt_code, receipt_number, check_code, region_code, \
     payable_id, payment_no, id_number, payer_name, CAST(fee_year AS INTEGER) AS fee_year, \
     amount_fen, components, issued_on, issuer, status, cover_starts_on, cover_code, \
     CAST(buys_back_year AS INTEGER) AS buys_back_year, insured_number FROM receipts ";

/// The columns of a refund as a channel sees it ([`crate::collection::RefundState`]); a statement
/// goes on with its `WHERE`.
pub const REFUND_SELECT: &str = "SELECT refund_no, channel_txn_id, amount_fen, reason, due, \
     status, due_without_calendar FROM refunds ";

/// The columns of [`crate::settlement::DebitRunRecord`]; a statement goes on with its `WHERE`.
pub const DEBIT_RUN_SELECT: &str = "SELECT run_no, channel_id, region_code, \
     CAST(fee_year AS INTEGER) AS fee_year, debit_date, status, item_count, total_fen, lock_until, \
     result_summary FROM debit_runs ";
