//! A person's cover history (issue 19): the years an agency's history file gives, and yibao's own
//! paid and exempt payables as years of resident insurance, read together in one statement.

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use yibao_domain::cover_history_file::HistoryRow;
use yibao_domain::{CoverHistory, IdNumber, RegionCode, YearCover};

use crate::StorageError;

/// Rows written in one statement: five parameters each, well under SQLite's 32 766.
pub const COVER_HISTORY_ROWS_PER_STATEMENT: usize = 1000;

#[async_trait]
pub trait CoverHistoryStore: Send + Sync {
    /// Stores imported years, each replacing the same person's same year, in one transaction.
    async fn put_cover_history(
        &self,
        region: RegionCode,
        rows: &[HistoryRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// A person's history in a region: the imported years, and every fee year with a paid or exempt
    /// payable as resident insurance (that wins over an imported year).
    async fn cover_history(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<CoverHistory, StorageError>;
}

#[async_trait]
impl<DB> CoverHistoryStore for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> i32: Decode<'r, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn put_cover_history(
        &self,
        region: RegionCode,
        rows: &[HistoryRow],
        imported_at: i64,
    ) -> Result<u64, StorageError> {
        let mut written = 0;
        let mut tx = self.begin().await?;
        for chunk in rows.chunks(COVER_HISTORY_ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 3 + 4 * i;
                    format!("($1, ${p}, ${}, ${}, ${}, $2)", p + 1, p + 2, p + 3)
                })
                .collect();
            let sql = format!(
                "INSERT INTO cover_history (region_code, id_number, benefit_year, cover, \
                 bought_back, imported_at) VALUES {} ON CONFLICT (region_code, id_number, \
                 benefit_year) DO UPDATE SET cover = excluded.cover, \
                 bought_back = excluded.bought_back, imported_at = excluded.imported_at",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql)
                .bind(region.as_str().to_owned())
                .bind(imported_at);
            for row in chunk {
                query = query
                    .bind(row.id_number.as_str().to_owned())
                    .bind(i32::from(row.year))
                    .bind(row.cover.code().to_owned())
                    .bind(row.bought_back);
            }
            query.execute(&mut *tx).await?;
            written += chunk.len() as u64;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn cover_history(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<CoverHistory, StorageError> {
        let rows = sqlx::query(
            "SELECT benefit_year, cover, bought_back FROM cover_history \
             WHERE region_code = $1 AND id_number = $2 \
             UNION ALL SELECT DISTINCT fee_year, 'resident', FALSE FROM payables \
             WHERE region_code = $1 AND id_number = $2 AND status IN ('paid', 'exempt')",
        )
        .bind(region.as_str().to_owned())
        .bind(id_number.as_str().to_owned())
        .fetch_all(self)
        .await?;
        let mut history = CoverHistory::new();
        for row in &rows {
            let year: i32 = row.try_get(0)?;
            let year = u16::try_from(year).map_err(StorageError::corrupt)?;
            let code: String = row.try_get(1)?;
            let cover = YearCover::from_code(&code)
                .ok_or_else(|| StorageError::corrupt(format!("cover {code}")))?;
            history.record(year, cover);
            if row.try_get::<bool, _>(2)? {
                history.record_bought_back(year);
            }
        }
        Ok(history)
    }
}
