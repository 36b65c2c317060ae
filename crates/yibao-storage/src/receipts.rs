//! Electronic receipts (电子票据): found by code and number, a person's, and the numbering's
//! figures. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::ReceiptRecord;
use crate::dialect::{Dialect, Statement};
use crate::locate::person_regions;
use crate::rows::{record, RECEIPT_SELECT};
use crate::StorageError;

/// Electronic receipts and their gapless numbers.
#[async_trait]
pub trait ReceiptStore: Send + Sync {
    async fn get_receipt(
        &self,
        receipt_code: &str,
        receipt_number: &str,
    ) -> Result<Option<ReceiptRecord>, StorageError>;

    async fn receipts_of_person(
        &self,
        id_number: &str,
        regions: &[String],
        fee_year: Option<i32>,
    ) -> Result<Vec<ReceiptRecord>, StorageError>;

    /// (receipt code, count, highest number) per code: gaplessness means count == highest.
    async fn receipt_number_stats(&self) -> Result<Vec<(String, i64, i64)>, StorageError>;
}

#[async_trait]
impl<S> ReceiptStore for S
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
    async fn get_receipt(
        &self,
        receipt_code: &str,
        receipt_number: &str,
    ) -> Result<Option<crate::collection::ReceiptRecord>, crate::StorageError> {
        let Some(region) = crate::regional_id::region_of_receipt_code(receipt_code) else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "{RECEIPT_SELECT}WHERE region_code = $3 AND receipt_code = $1 AND receipt_number = $2"
        ))
        .bind(receipt_code)
        .bind(receipt_number)
        .bind(region)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record::<ReceiptRecord, _>).transpose()
    }

    async fn receipts_of_person(
        &self,
        id_number: &str,
        regions: &[String],
        fee_year: Option<i32>,
    ) -> Result<Vec<crate::collection::ReceiptRecord>, crate::StorageError> {
        let regions = person_regions(self.pool(), id_number, regions).await?;
        if regions.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Statement::<S::DB>::new(RECEIPT_SELECT);
        q.push("WHERE id_number = ").push_bind(id_number.to_owned());
        q.push(" AND region_code IN (");
        q.push_list(regions);
        q.push(")");
        if let Some(year) = fee_year {
            q.push(" AND fee_year = ").push_bind(year);
        }
        q.push(" ORDER BY issued_on, receipt_code, receipt_number");
        let (sql, args) = q.into_parts()?;
        let rows = sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record::<ReceiptRecord, _>).collect()
    }

    async fn receipt_number_stats(&self) -> Result<Vec<(String, i64, i64)>, crate::StorageError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                    "SELECT c.receipt_code, CAST(COUNT(r.receipt_number) AS BIGINT), CAST(c.last_number AS BIGINT) \
                     FROM receipt_counters c LEFT JOIN receipts r ON r.region_code = c.region_code AND r.receipt_code = c.receipt_code \
                     GROUP BY c.receipt_code, c.last_number ORDER BY c.receipt_code",
                )
                .fetch_all(self.pool())
                .await?;
        Ok(rows)
    }
}
