//! Rows the generic storage code reads into records, shared by its aggregates.

use sqlx::{ColumnIndex, Decode, Row, Type};
use yibao_domain::ReliefKind;

use crate::records::{household_code, PayableRecord, PersonColumns};
use crate::StorageError;

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
        status: r.try_get("status")?,
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
