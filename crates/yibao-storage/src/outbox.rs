//! The outbox: each paid payable's posting to the agency (到帐), retried until delivered or
//! dead-lettered. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::OutboxEvent;
use crate::dialect::Dialect;
use crate::locate::region_of;
use crate::status_moves::payable;
use crate::StorageError;
use yibao_domain::RegionCode;

/// The outbox of postings to the agency.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Outbox events due for delivery.
    async fn due_events(&self, now: i64, limit: usize) -> Result<Vec<OutboxEvent>, StorageError>;

    /// Applied payments not posted to the agency (到帐) since before `before` (unix seconds).
    async fn unposted_events(
        &self,
        before: i64,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StorageError>;

    async fn mark_event_delivered(&self, event_id: &str, now: i64) -> Result<(), StorageError>;

    /// Forgets at most `limit` events delivered before `before` (unix seconds), oldest first, so
    /// the outbox does not grow for ever; returns how many. Undelivered events (pending or dead
    /// letters) are never pruned, however old.
    async fn prune_delivered_events(&self, before: i64, limit: usize) -> Result<u64, StorageError>;

    /// Records a failed attempt: retry at `next_attempt_at`, or dead-letter when `dead`.
    async fn mark_event_failed(
        &self,
        event_id: &str,
        next_attempt_at: i64,
        dead: bool,
    ) -> Result<(), StorageError>;
}

#[async_trait]
impl<S> OutboxStore for S
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
    async fn due_events(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<crate::collection::OutboxEvent>, crate::StorageError> {
        let rows: Vec<(String, String, String, i64, i64, bool)> = sqlx::query_as(
                    "SELECT event_id, region_code, payload, CAST(attempts AS BIGINT), created_at, dead FROM outbox \
                     WHERE delivered_at IS NULL AND dead = $1 AND next_attempt_at <= $2 \
                       AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox) \
                       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.region_code = outbox.region_code AND o.payable_id = outbox.payable_id AND o.seq < outbox.seq \
                                       AND o.delivered_at IS NULL) \
                     ORDER BY seq LIMIT $3",
                )
                .bind(false)
                .bind(now)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(event_id, region, payload, attempts, created_at, dead)| {
                Ok(crate::collection::OutboxEvent {
                    event_id,
                    region: RegionCode::try_from(region).map_err(StorageError::corrupt)?,
                    payload,
                    attempts,
                    created_at,
                    dead,
                })
            })
            .collect()
    }

    async fn unposted_events(
        &self,
        before: i64,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::collection::OutboxEvent>, crate::StorageError> {
        let rows: Vec<(String, String, String, i64, i64, bool)> = sqlx::query_as(
                    "SELECT event_id, region_code, payload, CAST(attempts AS BIGINT), created_at, dead FROM outbox \
                     WHERE delivered_at IS NULL AND kind = 'payment_applied' AND created_at < $1 AND (region_code = $2 OR ($3 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) \
                     ORDER BY seq LIMIT $4",
                )
                .bind(before)
                .bind(region.unwrap_or_default().to_owned())
                .bind(region.is_none())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|(event_id, region, payload, attempts, created_at, dead)| {
                Ok(crate::collection::OutboxEvent {
                    event_id,
                    region: RegionCode::try_from(region).map_err(StorageError::corrupt)?,
                    payload,
                    attempts,
                    created_at,
                    dead,
                })
            })
            .collect()
    }

    async fn mark_event_delivered(
        &self,
        event_id: &str,
        now: i64,
    ) -> Result<(), crate::StorageError> {
        let Some(region) = region_of(
            self.pool(),
            event_id,
            "SELECT region_code FROM outbox WHERE event_id = $1",
        )
        .await?
        else {
            return Ok(());
        };
        let mut tx = self.begin_write().await?;
        let applied: Option<(String, String)> = sqlx::query_as(
                    "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1 WHERE region_code = $3 AND event_id = $2 AND delivered_at IS NULL \
                     RETURNING payable_id, kind",
                )
                .bind(now)
                .bind(event_id)
                .bind(&region)
                .fetch_optional(&mut *tx)
                .await?;
        // 到帐: the agency acknowledged an applied payment.
        if let Some((payable_id, kind)) = applied.filter(|(_, kind)| kind == "payment_applied") {
            let _ = kind;
            sqlx::query(&format!(
                "UPDATE payables SET {} WHERE region_code = $2 AND {} AND payable_id = $1",
                payable::POST.set(),
                payable::POST.guard()
            ))
            .bind(&payable_id)
            .bind(&region)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_delivered_events(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<u64, crate::StorageError> {
        // Oldest first, a bounded batch: the partial index on delivered_at finds them.
        let done = sqlx::query(
                    "DELETE FROM outbox WHERE (region_code, event_id) IN \
                     (SELECT region_code, event_id FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1 \
                      ORDER BY delivered_at LIMIT $2)",
                )
                    .bind(before)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .execute(self.pool())
                    .await?;
        Ok(S::rows_affected(&done))
    }

    async fn mark_event_failed(
        &self,
        event_id: &str,
        next_attempt_at: i64,
        dead: bool,
    ) -> Result<(), crate::StorageError> {
        let Some(region) = region_of(
            self.pool(),
            event_id,
            "SELECT region_code FROM outbox WHERE event_id = $1",
        )
        .await?
        else {
            return Ok(());
        };
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, dead = $2 WHERE region_code = $4 AND event_id = $3 AND delivered_at IS NULL")
                    .bind(next_attempt_at)
                    .bind(dead)
                    .bind(event_id)
                    .bind(&region)
                    .execute(self.pool())
                    .await?;
        Ok(())
    }
}
