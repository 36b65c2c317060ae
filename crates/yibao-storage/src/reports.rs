//! Reports: collection and refunds per day and channel. Written once for both backends over a
//! [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::dialect::Dialect;
use crate::rows::record;
use crate::settlement::{CollectionRow, RefundDayRow};
use crate::StorageError;

/// Daily figures of collection and refunds.
#[async_trait]
pub trait ReportStore: Send + Sync {
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

#[async_trait]
impl<S> ReportStore for S
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<&'q str>: Encode<'q, S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> Option<i32>: Encode<'q, S::DB>,
    for<'q> Option<NaiveDate>: Encode<'q, S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    async fn daily_collection(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        region: Option<&str>,
    ) -> Result<Vec<crate::settlement::CollectionRow>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT p.paid_on, p.channel_id, a.region_code, CAST(COUNT(*) AS BIGINT) AS payables, \
                     CAST(COALESCE(SUM(a.amount_fen), 0) AS BIGINT) AS applied_fen \
                     FROM payments p JOIN payment_applications a ON a.region_code = p.region_code AND a.payment_no = p.payment_no AND a.active = $1 \
                     WHERE p.paid_on BETWEEN $2 AND $3 AND (a.region_code = $4 OR ($5 AND a.region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) \
                     GROUP BY p.paid_on, p.channel_id, a.region_code ORDER BY p.paid_on, p.channel_id, a.region_code LIMIT 100000",
                )
                .bind(true)
                .bind(from)
                .bind(to)
                .bind(region)
                .bind(region.is_none())
                .fetch_all(self.reads().pool())
                .await?;
        rows.iter()
            .map(record::<crate::settlement::CollectionRow, _>)
            .collect()
    }

    async fn refund_days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        region: Option<&str>,
    ) -> Result<Vec<crate::settlement::RefundDayRow>, crate::StorageError> {
        let due: Vec<(chrono::NaiveDate, String, i64, i64)> = sqlx::query_as(
                    "SELECT due, channel_id, COUNT(*), CAST(SUM(amount_fen) AS BIGINT) FROM refunds WHERE status <> 'cancelled' AND due BETWEEN $1 AND $2 \
                     AND (region_code = $3 OR ($4 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) GROUP BY due, channel_id",
                )
                .bind(from)
                .bind(to)
                .bind(region)
                .bind(region.is_none())
                .fetch_all(self.reads().pool())
                .await?;
        let settled: Vec<(chrono::NaiveDate, String, i64, i64)> = sqlx::query_as(
                    "SELECT settled_on, channel_id, COUNT(*), CAST(SUM(amount_fen) AS BIGINT) FROM refunds WHERE status = 'succeeded' AND settled_on BETWEEN $1 AND $2 \
                     AND (region_code = $3 OR ($4 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) GROUP BY settled_on, channel_id",
                )
                .bind(from)
                .bind(to)
                .bind(region)
                .bind(region.is_none())
                .fetch_all(self.reads().pool())
                .await?;
        let mut by_key: std::collections::BTreeMap<
            (chrono::NaiveDate, String),
            crate::settlement::RefundDayRow,
        > = Default::default();
        for (day, channel_id, n, fen) in due {
            let row = by_key.entry((day, channel_id.clone())).or_insert_with(|| {
                crate::settlement::RefundDayRow {
                    day,
                    channel_id,
                    due: 0,
                    due_fen: 0,
                    succeeded: 0,
                    succeeded_fen: 0,
                }
            });
            row.due = n;
            row.due_fen = fen;
        }
        for (day, channel_id, n, fen) in settled {
            let row = by_key.entry((day, channel_id.clone())).or_insert_with(|| {
                crate::settlement::RefundDayRow {
                    day,
                    channel_id,
                    due: 0,
                    due_fen: 0,
                    succeeded: 0,
                    succeeded_fen: 0,
                }
            });
            row.succeeded = n;
            row.succeeded_fen = fen;
        }
        Ok(by_key.into_values().collect())
    }
}
