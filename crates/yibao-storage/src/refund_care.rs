//! Refunds as staff handle them: a paid payable refunded before it changes, refunds marked
//! sent, retried, listed. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::RefundState;
use crate::dialect::{Dialect, Statement};
use crate::locate::region_of;
use crate::rows::{record, REFUND_SELECT};
use crate::settlement::{NewPayableRefund, PayableRefundOutcome, RefundRetryOutcome};
use crate::status_moves::{payable, refund};
use crate::StorageError;

/// Refunds as staff handle them.
#[async_trait]
pub trait RefundCare: Send + Sync {
    /// Refunds what a paid payable's payment applied to it (re-assessment, employee insurance, a
    /// reversal after settlement): the application ends, the receipt is voided, the agency is told,
    /// and a refund is owed through the payment's channel, all in one transaction.
    async fn refund_paid_payable(
        &self,
        refund: &NewPayableRefund,
    ) -> Result<PayableRefundOutcome, StorageError>;

    /// Marks refunds handed to the channel (`sent`, one more attempt).
    async fn mark_refunds_sent(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<u64, StorageError>;

    /// A failed refund owed again, its attempts reset (staff decision, audited by the caller).
    async fn rearm_refund(&self, refund_no: &str) -> Result<RefundRetryOutcome, StorageError>;

    /// Refunds by status (any when `None`), oldest due first, in a region or all.
    async fn refunds(
        &self,
        status: Option<&str>,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RefundState>, StorageError>;
}

#[async_trait]
impl<S> RefundCare for S
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
    async fn refund_paid_payable(
        &self,
        refund: &crate::settlement::NewPayableRefund,
    ) -> Result<crate::settlement::PayableRefundOutcome, crate::StorageError> {
        use crate::settlement::PayableRefundOutcome;
        let Some(home) = region_of(
            self.pool(),
            &refund.payable_id,
            "SELECT region_code FROM payables WHERE payable_id = $1",
        )
        .await?
        else {
            return Ok(PayableRefundOutcome::NotFound);
        };
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM payables WHERE region_code = $2 AND payable_id = $1",
        )
        .bind(&refund.payable_id)
        .bind(&home)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(status) = status else {
            return Ok(PayableRefundOutcome::NotFound);
        };
        let application: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT payment_no, region_code, amount_fen FROM payment_applications WHERE region_code = $3 AND payable_id = $1 AND active = $2",
                )
                .bind(&refund.payable_id)
                .bind(true)
                .bind(&home)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((payment_no, region, amount)) = application else {
            return Ok(PayableRefundOutcome::NotPaid(status));
        };
        let (channel_id, channel_txn_id): (String, String) =
                    sqlx::query_as("SELECT channel_id, channel_txn_id FROM payments WHERE region_code = $2 AND payment_no = $1")
                        .bind(&payment_no)
                        .bind(&region)
                        .fetch_one(&mut *tx)
                        .await?;
        // The payment's (channel, transaction) row first, as reports and reversals take it: a
        // reversal racing this refund waits here instead of deadlocking on the payable.
        sqlx::query(
                    "INSERT INTO channel_keys (channel_id, key, touches) VALUES ($1, $2, 1) \
                     ON CONFLICT (channel_id, key) DO UPDATE SET touches = channel_keys.touches + 1",
                )
                .bind(&channel_id)
                .bind(format!("txn:{channel_txn_id}"))
                .execute(&mut *tx)
                .await?;
        // Conditional on the application still being active: a reversal or a second refund that got
        // here first leaves nothing to refund.
        let ended = sqlx::query("UPDATE payment_applications SET active = $1 WHERE region_code = $5 AND payment_no = $2 AND payable_id = $3 AND active = $4")
                    .bind(false)
                    .bind(&payment_no)
                    .bind(&refund.payable_id)
                    .bind(true)
                    .bind(&region)
                    .execute(&mut *tx)
                    .await?;
        if S::rows_affected(&ended) != 1 {
            return Ok(PayableRefundOutcome::NotPaid(status));
        }
        let undo = if refund.cancel_payable {
            &*payable::UNDO_PAYMENT_AND_CANCEL
        } else {
            &*payable::UNDO_PAYMENT
        };
        sqlx::query(&format!(
            "UPDATE payables SET {} WHERE region_code = $2 AND payable_id = $1 AND {}",
            undo.set(),
            undo.guard()
        ))
        .bind(&refund.payable_id)
        .bind(&region)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE receipts SET status = 'voided' WHERE region_code = $3 AND payment_no = $1 AND payable_id = $2")
                    .bind(&payment_no)
                    .bind(&refund.payable_id)
                    .bind(&region)
                    .execute(&mut *tx)
                    .await?;
        sqlx::query(
                    "INSERT INTO refunds (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due, payable_id, due_without_calendar) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'owed', $8, $9, $10)",
                )
                .bind(&refund.refund_no)
                .bind(&channel_id)
                .bind(&payment_no)
                .bind(&channel_txn_id)
                .bind(&region)
                .bind(amount)
                .bind(refund.reason)
                .bind(refund.due.date)
                .bind(&refund.payable_id)
                .bind(!refund.due.calendar_complete())
                .execute(&mut *tx)
                .await?;
        let still_applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payment_applications WHERE region_code = $3 AND payment_no = $1 AND active = $2")
                    .bind(&payment_no)
                    .bind(true)
                    .bind(&region)
                    .fetch_one(&mut *tx)
                    .await?;
        let new_status = if still_applied > 0 {
            "partially_refunded"
        } else {
            "refund_pending"
        };
        sqlx::query("UPDATE payments SET status = $1 WHERE region_code = $3 AND payment_no = $2 AND status <> 'reversed'")
                    .bind(new_status)
                    .bind(&payment_no)
                    .bind(&region)
                    .execute(&mut *tx)
                    .await?;
        sqlx::query(
                    "INSERT INTO outbox (event_id, region_code, kind, payable_id, payload, created_at, next_attempt_at) \
                     VALUES ($1, $2, 'payment_reversed', $3, $4, $5, $5)",
                )
                .bind(&refund.event_id)
                .bind(&region)
                .bind(&refund.payable_id)
                .bind(serde_json::json!({"event_id": refund.event_id, "kind": "payment_reversed", "payable_id": refund.payable_id,
                    "region": region, "payment_no": payment_no, "refund_reason": refund.reason}).to_string())
                .bind(refund.now)
                .execute(&mut *tx)
                .await?;
        let row = sqlx::query(&format!(
            "{REFUND_SELECT}WHERE region_code = $2 AND refund_no = $1"
        ))
        .bind(&refund.refund_no)
        .bind(&region)
        .fetch_one(&mut *tx)
        .await?;
        let state = record::<RefundState, _>(&row)?;
        tx.commit().await?;
        Ok(PayableRefundOutcome::Refunded(state))
    }

    async fn mark_refunds_sent(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<u64, crate::StorageError> {
        let mut n = 0;
        for chunk in refund_nos.chunks(500) {
            let mut q = Statement::<S::DB>::new(format!(
                "UPDATE refunds SET {}, attempts = attempts + 1, updated_at = CURRENT_TIMESTAMP WHERE {} AND attempts < ",
                refund::SEND.set(),
                refund::SEND.guard()
            ));
            q.push_bind(yibao_domain::settlement::MAX_REFUND_ATTEMPTS);
            q.push(" AND channel_id = ");
            q.push_bind(channel_id.to_owned());
            q.push(" AND refund_no");
            Self::push_id_list(&mut q, chunk);
            let (sql, args) = q.into_parts()?;
            n += S::rows_affected(
                &sqlx::query_with(&sql, S::arguments(args))
                    .execute(self.pool())
                    .await?,
            );
        }
        Ok(n)
    }

    async fn rearm_refund(
        &self,
        refund_no: &str,
    ) -> Result<crate::settlement::RefundRetryOutcome, crate::StorageError> {
        use crate::settlement::RefundRetryOutcome;
        // The refund's key is its region and number: the region its number carries (a number
        // issued before numbers carried one is looked up first), never a scan of every region.
        let Some(region) = crate::locate::region_of(
            self.pool(),
            refund_no,
            "SELECT region_code FROM refunds WHERE refund_no = $1",
        )
        .await?
        else {
            return Ok(RefundRetryOutcome::NotFound);
        };
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM refunds WHERE region_code = $2 AND refund_no = $1",
        )
        .bind(refund_no)
        .bind(&region)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(status) = status else {
            return Ok(RefundRetryOutcome::NotFound);
        };
        if status != "failed" {
            return Ok(RefundRetryOutcome::NotFailed(status));
        }
        sqlx::query(&format!(
            "UPDATE refunds SET {}, attempts = 0, updated_at = CURRENT_TIMESTAMP WHERE region_code = $2 AND refund_no = $1 AND {}",
            refund::RETRY.set(),
            refund::RETRY.guard()
        ))
                    .bind(refund_no)
                    .bind(&region)
                    .execute(&mut *tx)
                    .await?;
        let row = sqlx::query(&format!(
            "{REFUND_SELECT}WHERE region_code = $2 AND refund_no = $1"
        ))
        .bind(refund_no)
        .bind(&region)
        .fetch_one(&mut *tx)
        .await?;
        let state = record::<RefundState, _>(&row)?;
        tx.commit().await?;
        Ok(RefundRetryOutcome::Rearmed(state))
    }

    async fn refunds(
        &self,
        status: Option<&str>,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::collection::RefundState>, crate::StorageError> {
        let rows = sqlx::query(&format!("{REFUND_SELECT}WHERE (status = $1 OR $2) AND (region_code = $3 OR ($4 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) ORDER BY due, refund_no LIMIT $5"))
                    .bind(status)
                    .bind(status.is_none())
                    .bind(region)
                    .bind(region.is_none())
                    .bind(limit as i64)
                    .fetch_all(self.reads().pool())
                    .await?;
        rows.iter().map(record::<RefundState, _>).collect()
    }
}
