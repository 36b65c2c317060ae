//! Refunds (退款) owed to payers: what a channel has to pay back, the results it reports, and
//! the overdue ones. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::{RefundResultOutcome, RefundState};
use crate::dialect::Dialect;
use crate::locate::region_of;
use crate::rows::record;
use crate::StorageError;

/// Refunds owed, as the channel that owes them sees and settles them.
#[async_trait]
pub trait RefundStore: Send + Sync {
    async fn pending_refunds(
        &self,
        channel_id: &str,
        limit: usize,
    ) -> Result<Vec<RefundState>, StorageError>;

    async fn refund_result(
        &self,
        channel_id: &str,
        refund_no: &str,
        succeeded: bool,
        channel_refund_id: &str,
        failure_reason: Option<&str>,
        today: NaiveDate,
    ) -> Result<RefundResultOutcome, StorageError>;

    /// Refunds still owed whose due date is before `today`.
    async fn overdue_refunds(
        &self,
        today: NaiveDate,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RefundState>, StorageError>;
}

#[async_trait]
impl<S> RefundStore for S
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
    async fn pending_refunds(
        &self,
        channel_id: &str,
        limit: usize,
    ) -> Result<Vec<crate::collection::RefundState>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT refund_no, channel_txn_id, amount_fen, reason, due, status, due_without_calendar FROM refunds \
                     WHERE channel_id = $1 AND (status IN ('owed', 'sent') OR (status = 'failed' AND attempts < $3)) \
                     ORDER BY CASE status WHEN 'sent' THEN 1 ELSE 0 END, due, refund_no LIMIT $2",
                )
                .bind(channel_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(yibao_domain::settlement::MAX_REFUND_ATTEMPTS)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(record::<RefundState, _>).collect()
    }

    async fn refund_result(
        &self,
        channel_id: &str,
        refund_no: &str,
        succeeded: bool,
        channel_refund_id: &str,
        failure_reason: Option<&str>,
        today: chrono::NaiveDate,
    ) -> Result<crate::collection::RefundResultOutcome, crate::StorageError> {
        use crate::collection::RefundResultOutcome;
        use sqlx::Row as _;
        let Some(region) = region_of(
            self.pool(),
            refund_no,
            "SELECT region_code FROM refunds WHERE refund_no = $1",
        )
        .await?
        else {
            return Ok(RefundResultOutcome::NotFound);
        };
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT status, payment_no, channel_refund_id FROM refunds WHERE region_code = $3 AND refund_no = $1 AND channel_id = $2")
                    .bind(refund_no)
                    .bind(channel_id)
                    .bind(&region)
                    .fetch_optional(&mut *tx)
                    .await?;
        let Some(r) = row else {
            return Ok(RefundResultOutcome::NotFound);
        };
        let status: String = r.try_get("status")?;
        let payment_no: String = r.try_get("payment_no")?;
        let earlier_id: Option<String> = r.try_get("channel_refund_id")?;
        // A refund confirmed by a statement line carries a provisional id until the channel's own result.
        let provisional = earlier_id
            .as_deref()
            .is_some_and(|id| id.starts_with("statement-"));
        if status == "succeeded" && earlier_id.as_deref() != Some(channel_refund_id) && !provisional
        {
            return Ok(RefundResultOutcome::Conflict(
                "该退费已以另一渠道退款编号确认成功，请核对是否重复退款".into(),
            ));
        }
        let current = yibao_domain::RefundStatus::from_code(&status)
            .ok_or_else(|| crate::StorageError::corrupt(format!("refund status {status}")))?;
        let event = if succeeded {
            yibao_domain::RefundEvent::Succeed
        } else {
            yibao_domain::RefundEvent::Fail
        };
        let next = match current.apply(event) {
            Ok(next) => next,
            // Reporting failure again after failure is harmless; after success it is a conflict.
            Err(e) => return Ok(RefundResultOutcome::Conflict(e.to_string())),
        };
        let changed = sqlx::query(
                    "UPDATE refunds SET status = $1, channel_refund_id = $2, failure_reason = $3, updated_at = CURRENT_TIMESTAMP, \
                     settled_on = COALESCE(settled_on, $6) WHERE region_code = $7 AND refund_no = $4 AND status = $5",
                )
                .bind(next.code())
                .bind(channel_refund_id)
                .bind(failure_reason)
                .bind(refund_no)
                .bind(&status)
                .bind(succeeded.then_some(today))
                .bind(&region)
                .execute(&mut *tx)
                .await?;
        if S::rows_affected(&changed) != 1 {
            return Ok(RefundResultOutcome::Conflict(
                "该退费状态刚被更改，请查询后重试".into(),
            ));
        }
        if succeeded {
            // A payment whose whole amount went back is refunded; a partial one stays partially_refunded.
            sqlx::query(
                        "UPDATE payments SET status = 'refunded' WHERE region_code = $2 AND payment_no = $1 AND status = 'refund_pending' \
                         AND NOT EXISTS (SELECT 1 FROM refunds o WHERE o.region_code = $2 AND o.payment_no = $1 AND o.status NOT IN ('succeeded', 'cancelled'))",
                    )
                        .bind(&payment_no)
                        .bind(&region)
                        .execute(&mut *tx)
                        .await?;
        }
        let refund = sqlx::query("SELECT refund_no, channel_txn_id, amount_fen, reason, due, status, due_without_calendar FROM refunds WHERE region_code = $2 AND refund_no = $1")
                    .bind(refund_no)
                    .bind(&region)
                    .fetch_one(&mut *tx)
                    .await?;
        let state = record::<RefundState, _>(&refund)?;
        tx.commit().await?;
        Ok(RefundResultOutcome::Done(state))
    }

    async fn overdue_refunds(
        &self,
        today: chrono::NaiveDate,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::collection::RefundState>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT refund_no, channel_txn_id, amount_fen, reason, due, status, due_without_calendar FROM refunds \
                     WHERE status IN ('owed', 'sent', 'failed') AND due < $1 AND (region_code = $2 OR ($3 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) ORDER BY due, refund_no LIMIT $4",
                )
                .bind(today)
                .bind(region.unwrap_or_default().to_owned())
                .bind(region.is_none())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(record::<RefundState, _>).collect()
    }
}
