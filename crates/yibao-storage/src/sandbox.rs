//! The sandbox for integrators (接入测试, issue 17): which regions are sandboxes, the states its
//! fixed test residents are held in, and the scenarios each test channel has gone through. What
//! they mean is [`yibao_domain::sandbox`]'s.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _, Type};
use yibao_domain::RegionCode;

use crate::dialect::Dialect;
use crate::status_moves::payable;
use crate::StorageError;

/// Until when a sandbox hold lasts (Unix seconds, 9999-12-31): it never runs out.
pub const SANDBOX_HOLD_UNTIL: i64 = 253_402_300_799;
/// Most scenario rows the console reads (test channels × scenarios).
pub const MAX_SCENARIO_ROWS: i64 = 5_000;

/// A test channel's scenario: when it was first and last gone through, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioRecord {
    pub channel_id: String,
    pub scenario: String,
    pub first_at: i64,
    pub last_at: i64,
    pub times: i64,
}

/// Marks `region` a sandbox. `false`, nothing changed, when it is not registered. A channel in
/// production that serves it keeps it from becoming one (the foreign key refuses).
pub(crate) async fn mark_sandbox<S>(storage: &S, region: RegionCode) -> Result<bool, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
{
    let done = sqlx::query("UPDATE pooling_regions SET sandbox = $2 WHERE region_code = $1")
        .bind(region.as_str().to_owned())
        .bind(true)
        .execute(storage.pool())
        .await?;
    Ok(S::rows_affected(&done) == 1)
}

/// Whether `region` is a sandbox.
pub(crate) async fn is_sandbox<S>(storage: &S, region: RegionCode) -> Result<bool, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let row = sqlx::query("SELECT sandbox FROM pooling_regions WHERE region_code = $1")
        .bind(region.as_str().to_owned())
        .fetch_optional(storage.pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<bool, _>(0)?,
        None => false,
    })
}

/// Holds an unpaid payable of a sandbox region for good, as an order (`order:…`) or a debit run
/// (`debit:…`) would: `false` when it is not unpaid (already held, paid) or not of a sandbox.
pub(crate) async fn hold<S>(
    storage: &S,
    region: RegionCode,
    payable_id: &str,
    locked_by: &str,
) -> Result<bool, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
{
    let sql = format!(
        "UPDATE payables SET {lock}, locked_by = $3, locked_until = $4 \
         WHERE region_code = $1 AND payable_id = $2 AND {free} \
         AND region_code IN (SELECT region_code FROM pooling_regions WHERE sandbox)",
        lock = payable::LOCK.set(),
        free = payable::LOCK.guard(),
    );
    let done = sqlx::query(&sql)
        .bind(region.as_str().to_owned())
        .bind(payable_id.to_owned())
        .bind(locked_by.to_owned())
        .bind(SANDBOX_HOLD_UNTIL)
        .execute(storage.pool())
        .await?;
    Ok(S::rows_affected(&done) == 1)
}

/// How many persons a region has on record.
pub(crate) async fn persons_on_record<S>(
    storage: &S,
    region: RegionCode,
) -> Result<i64, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM persons WHERE region_code = $1")
        .bind(region.as_str().to_owned())
        .fetch_one(storage.pool())
        .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// Records that a test channel went through `scenarios` at `now` (Unix seconds), in one statement
/// each; a scenario gone through before keeps its first time and counts one more.
pub(crate) async fn record_scenarios<S>(
    storage: &S,
    region: RegionCode,
    channel_id: &str,
    scenarios: &[&str],
    now: i64,
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
{
    for scenario in scenarios {
        sqlx::query(
            "INSERT INTO sandbox_scenarios (region_code, channel_id, scenario, first_at, last_at, times) \
             VALUES ($1, $2, $3, $4, $4, 1) \
             ON CONFLICT (region_code, channel_id, scenario) DO UPDATE SET \
             last_at = excluded.last_at, times = sandbox_scenarios.times + 1",
        )
        .bind(region.as_str().to_owned())
        .bind(channel_id.to_owned())
        .bind((*scenario).to_owned())
        .bind(now)
        .execute(storage.pool())
        .await?;
    }
    Ok(())
}

/// Every test channel's scenarios (at most [`MAX_SCENARIO_ROWS`]), by channel and scenario.
pub(crate) async fn scenarios<S>(storage: &S) -> Result<Vec<ScenarioRecord>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let rows = sqlx::query(
        "SELECT channel_id, scenario, CAST(first_at AS BIGINT), CAST(last_at AS BIGINT), \
         CAST(times AS BIGINT) FROM sandbox_scenarios ORDER BY channel_id, scenario LIMIT $1",
    )
    .bind(MAX_SCENARIO_ROWS)
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ScenarioRecord {
                channel_id: r.try_get(0)?,
                scenario: r.try_get(1)?,
                first_at: r.try_get(2)?,
                last_at: r.try_get(3)?,
                times: r.try_get(4)?,
            })
        })
        .collect()
}
