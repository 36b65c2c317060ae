//! Reads of the staff console's first page, written once for both backends as ordinary generic
//! code over sqlx rather than inside the `impl_storage!` macro (the direction of issue 13): the
//! backends' `Storage` implementations call these with their pool.

use chrono::NaiveDate;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::StorageError;

/// Each count of [`MoneyCounts`] stops at this many: the page shows "≥ 10 000" rather than
/// reading on (a campaign without a posting target can hold a million unposted payments).
pub const MONEY_COUNT_CAP: i64 = 10_000;

/// The money matters a scope answers for, each counted up to [`MONEY_COUNT_CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoneyCounts {
    /// Refunds owed (not yet handed to the channel).
    pub refunds_owed: i64,
    /// Refunds owed, handed over or failed whose due day is before today.
    pub refunds_overdue: i64,
    /// Reconciliation differences of statements from `differences_since` on, not resolved.
    pub differences: i64,
    /// Applied payments not yet posted to the agency (到帐).
    pub unposted: i64,
    /// Of those, the ones created before `late_before` (older than the two days allowed).
    pub unposted_late: i64,
}

/// What [`money_counts`] counts: one region or all of them, as of `today` and `now`.
#[derive(Debug, Clone)]
pub struct MoneyCountsQuery<'a> {
    pub region: Option<&'a str>,
    pub today: NaiveDate,
    /// Reconciliation statements from this day on.
    pub differences_since: NaiveDate,
    /// Unix seconds: events created before this are counted as unposted.
    pub now: i64,
    /// Unix seconds: unposted events created before this are late.
    pub late_before: i64,
}

/// One statement, five bounded counts (each a `LIMIT`ed subquery, so the cost stays bounded
/// however much has piled up). Every subquery filters on the region first.
const MONEY_COUNTS_SQL: &str = "SELECT \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM refunds \
        WHERE (region_code = $1 OR $2) AND status = 'owed' LIMIT $3) owed), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM refunds \
        WHERE (region_code = $1 OR $2) AND status IN ('owed', 'sent', 'failed') AND due < $4 LIMIT $3) overdue), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM reconciliation_items \
        WHERE (region_code = $1 OR $2) AND statement_date BETWEEN $5 AND $4 AND status <> 'resolved' LIMIT $3) differences), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox \
        WHERE (region_code = $1 OR $2) AND delivered_at IS NULL AND kind = 'payment_applied' AND created_at < $6 LIMIT $3) unposted), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox \
        WHERE (region_code = $1 OR $2) AND delivered_at IS NULL AND kind = 'payment_applied' AND created_at < $7 LIMIT $3) late)";

/// The console's money counts in one round trip ([`MoneyCounts`]).
pub async fn money_counts<DB>(
    pool: &Pool<DB>,
    query: &MoneyCountsQuery<'_>,
) -> Result<MoneyCounts, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, i64, i64, i64, i64): FromRow<'r, DB::Row>,
{
    let (refunds_owed, refunds_overdue, differences, unposted, unposted_late) =
        sqlx::query_as::<DB, (i64, i64, i64, i64, i64)>(MONEY_COUNTS_SQL)
            .bind(query.region.unwrap_or_default().to_owned())
            .bind(query.region.is_none())
            .bind(MONEY_COUNT_CAP)
            .bind(query.today)
            .bind(query.differences_since)
            .bind(query.now)
            .bind(query.late_before)
            .fetch_one(pool)
            .await?;
    Ok(MoneyCounts {
        refunds_owed,
        refunds_overdue,
        differences,
        unposted,
        unposted_late,
    })
}
