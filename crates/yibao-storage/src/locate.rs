//! Where a row or a person lives: the region an identifier carries, or the person directory
//! (keyed by ID number, one shard on a Citus cluster), so a statement then reads one region.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

/// The regions among `allowed` where a person is on record, from the directory keyed by ID
/// number (one shard on a Citus cluster): a search then reads only those regions.
pub(crate) async fn person_regions<'c, DB, E>(
    executor: E,
    id_number: &str,
    allowed: &[String],
) -> Result<Vec<String>, crate::StorageError>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let regions: Vec<String> = sqlx::query_scalar(
        "SELECT region_code FROM person_directory WHERE id_number = $1 ORDER BY region_code",
    )
    .bind(id_number)
    .fetch_all(executor)
    .await?;
    Ok(regions
        .into_iter()
        .filter(|r| allowed.contains(r))
        .collect())
}

/// The region of a row found by an identifier: the one the identifier carries, else (an
/// identifier issued before identifiers carried one) what `lookup` finds, over all shards.
pub(crate) async fn region_of<DB>(
    pool: &sqlx::Pool<DB>,
    id: &str,
    lookup: &'static str,
) -> Result<Option<String>, crate::StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    if let Some(region) = crate::regional_id::region_in_id(id) {
        return Ok(Some(region.to_owned()));
    }
    Ok(sqlx::query_scalar(lookup)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}
