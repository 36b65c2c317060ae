//! Reads of the citizen site (居民自助), written once for both backends as ordinary generic code
//! over sqlx, like [`crate::console_reads`]: the backends' `Storage` implementations call these
//! with their pool.

use chrono::NaiveDate;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::StorageError;

/// How a paid payable was paid: the day and the kind of channel (`bank_counter`, `wechat` …),
/// which is all a resident is shown (not the channel's own name or transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidBy {
    pub payable_id: String,
    pub paid_on: NaiveDate,
    pub channel_kind: String,
}

/// Most rows [`paid_by`] reads: a person has one current payable a fee year.
pub const MAX_PAID_BY_ROWS: i64 = 100;

/// The active application of each paid payable of one person in one region, with its payment's
/// day and channel kind. Every distributed table is filtered on the region (one shard on Citus);
/// `channels` is a reference table.
const PAID_BY_SQL: &str = "SELECT a.payable_id, p.paid_on, c.kind FROM payables y \
     JOIN payment_applications a ON a.region_code = y.region_code AND a.payable_id = y.payable_id \
          AND a.active = $3 \
     JOIN payments p ON p.region_code = a.region_code AND p.payment_no = a.payment_no \
     JOIN channels c ON c.channel_id = p.channel_id \
     WHERE y.region_code = $1 AND y.id_number = $2 AND y.status IN ('paid', 'posted') \
     ORDER BY a.payable_id LIMIT $4";

/// How each paid current payable of `id_number` in `region` was paid ([`PaidBy`]), in one
/// statement.
pub async fn paid_by<DB>(
    pool: &Pool<DB>,
    region: &str,
    id_number: &str,
) -> Result<Vec<PaidBy>, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (String, NaiveDate, String): FromRow<'r, DB::Row>,
{
    let rows = sqlx::query_as::<DB, (String, NaiveDate, String)>(PAID_BY_SQL)
        .bind(region.to_owned())
        .bind(id_number.to_owned())
        .bind(true)
        .bind(MAX_PAID_BY_ROWS)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(payable_id, paid_on, channel_kind)| PaidBy {
            payable_id,
            paid_on,
            channel_kind,
        })
        .collect())
}
