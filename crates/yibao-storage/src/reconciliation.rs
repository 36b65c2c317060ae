//! Reconciliation (对账): the platform's side of a channel's day, statement bookings, the
//! differences found and how staff resolved them. Written once for both backends over a
//! [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use yibao_domain::reconciliation::{PlatformPayment, StatementBooking};

use crate::dialect::{Dialect, Statement};
use crate::locate::region_of;
use crate::rows::record;
use crate::settlement::{
    PaymentOnAnyDay, ReconciliationItem, ReconciliationRecord, RefundLookup, StatementRecord,
};
use crate::StorageError;

/// Reconciliation of channels' statements.
#[async_trait]
pub trait ReconciliationStore: Send + Sync {
    async fn channel_only_policy(&self, channel_id: &str) -> Result<Option<String>, StorageError>;

    async fn set_channel_only_policy(
        &self,
        channel_id: &str,
        policy: &str,
    ) -> Result<bool, StorageError>;

    /// A page of the channel's payments of one day, by `channel_txn_id` in byte order, after `after`.
    /// Payments booked from a statement (长款) are not the channel's reports and are left out.
    async fn payments_page(
        &self,
        channel_id: &str,
        day: NaiveDate,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<PlatformPayment>, StorageError>;

    /// Payments an earlier upload of the day's statement booked from channel-only lines (长款).
    async fn statement_bookings(
        &self,
        channel_id: &str,
        day: NaiveDate,
    ) -> Result<Vec<StatementBooking>, StorageError>;

    /// Removes a payment booked from a statement, with its refund owed, in one transaction, only
    /// while nothing of it left the house: still booked from the statement (the channel did not
    /// report it since), not reversed, no receipt issued, and every refund of it still owed (not
    /// handed to the channel). `false`, and nothing changed, otherwise.
    async fn withdraw_statement_booking(
        &self,
        channel_id: &str,
        payment_no: &str,
    ) -> Result<bool, StorageError>;

    /// The channel's payments with these transaction ids, on any day.
    async fn payments_by_txn(
        &self,
        channel_id: &str,
        txn_ids: &[String],
    ) -> Result<Vec<PaymentOnAnyDay>, StorageError>;

    async fn refunds_by_no(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<Vec<RefundLookup>, StorageError>;

    /// Items still carried (platform-only, waiting for the next day's statement) from before `day`.
    async fn carried_items(
        &self,
        channel_id: &str,
        before: NaiveDate,
    ) -> Result<Vec<ReconciliationItem>, StorageError>;

    /// Stores a day's reconciliation: the statement row, its differences (replacing the open ones of
    /// an earlier upload of the day), and what it resolved or escalated from earlier days.
    async fn save_reconciliation(&self, record: &ReconciliationRecord) -> Result<(), StorageError>;

    async fn reconciliation_items(
        &self,
        channel_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        unresolved_only: bool,
        limit: usize,
    ) -> Result<Vec<ReconciliationItem>, StorageError> {
        self.reconciliation_items_of_region(channel_id, None, from, to, unresolved_only, limit)
            .await
    }

    /// [`ReconciliationStore::reconciliation_items`] limited to the items of one region when `region`
    /// is given (items that belong to no region, such as 长款 without an order, are left out).
    /// With no channel given, test channels' (`test_mode`, the sandbox's) are left out too.
    async fn reconciliation_items_of_region(
        &self,
        channel_id: Option<&str>,
        region: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        unresolved_only: bool,
        limit: usize,
    ) -> Result<Vec<ReconciliationItem>, StorageError>;

    /// Staff resolve a difference by hand; when `region` is given, only an item of that region.
    /// `false` if there is no such unresolved item.
    #[allow(clippy::too_many_arguments)]
    async fn resolve_reconciliation_item(
        &self,
        channel_id: &str,
        region: Option<&str>,
        day: NaiveDate,
        channel_txn_id: &str,
        class: &str,
        resolution: &str,
        note: &str,
        by: &str,
        now: i64,
    ) -> Result<bool, StorageError>;

    /// The statements of a channel, or with none given of every channel but test channels
    /// (`test_mode`, the sandbox's), between two days.
    async fn statements(
        &self,
        channel_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<StatementRecord>, StorageError>;
}

/// A payment as reconciliation reads it.
#[derive(sqlx::FromRow)]
struct PaymentRow {
    channel_txn_id: String,
    payment_no: String,
    amount_fen: i64,
    #[sqlx(try_from = "String")]
    status: yibao_domain::PaymentStatus,
    region_code: Option<String>,
}

impl From<PaymentRow> for yibao_domain::reconciliation::PlatformPayment {
    fn from(row: PaymentRow) -> Self {
        yibao_domain::reconciliation::PlatformPayment {
            channel_txn_id: row.channel_txn_id,
            payment_no: row.payment_no,
            amount_fen: row.amount_fen,
            reversed: row.status == yibao_domain::PaymentStatus::Reversed,
            region: row.region_code,
        }
    }
}

/// A payment booked from a statement line, with what has been handed out for it.
#[derive(sqlx::FromRow)]
struct BookingRow {
    #[sqlx(flatten)]
    payment: PaymentRow,
    /// Receipts issued.
    receipts: i64,
    /// Refunds handed to the channel (sent, failed or succeeded).
    handed_over: i64,
}
#[async_trait]
impl<S> ReconciliationStore for S
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
    async fn channel_only_policy(
        &self,
        channel_id: &str,
    ) -> Result<Option<String>, crate::StorageError> {
        Ok(
            sqlx::query_scalar("SELECT channel_only_policy FROM channels WHERE channel_id = $1")
                .bind(channel_id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn set_channel_only_policy(
        &self,
        channel_id: &str,
        policy: &str,
    ) -> Result<bool, crate::StorageError> {
        let r = sqlx::query("UPDATE channels SET channel_only_policy = $1 WHERE channel_id = $2")
            .bind(policy)
            .bind(channel_id)
            .execute(self.pool())
            .await?;
        Ok(S::rows_affected(&r) == 1)
    }

    async fn payments_page(
        &self,
        channel_id: &str,
        day: chrono::NaiveDate,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<yibao_domain::reconciliation::PlatformPayment>, crate::StorageError> {
        let sql = format!(
                    "SELECT channel_txn_id, payment_no, amount_fen, status, region_code FROM payments \
                     WHERE channel_id = $1 AND paid_on = $2 AND channel_txn_id {c} > $3 AND response <> '' \
                     AND fingerprint NOT LIKE 'statement:%' \
                     ORDER BY channel_txn_id {c} LIMIT $4",
                    c = S::BYTE_ORDER
                );
        let rows = sqlx::query(&sql)
            .bind(channel_id)
            .bind(day)
            // Every transaction id is longer than "", so the first page starts there.
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok(record::<PaymentRow, _>(r)?.into()))
            .collect()
    }

    async fn statement_bookings(
        &self,
        channel_id: &str,
        day: chrono::NaiveDate,
    ) -> Result<Vec<yibao_domain::reconciliation::StatementBooking>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT p.payment_no, p.channel_txn_id, p.amount_fen, p.status, p.region_code, \
                     (SELECT CAST(COUNT(*) AS BIGINT) FROM receipts r WHERE r.region_code = p.region_code AND r.payment_no = p.payment_no) AS receipts, \
                     (SELECT CAST(COUNT(*) AS BIGINT) FROM refunds f WHERE f.region_code = p.region_code AND f.payment_no = p.payment_no \
                        AND f.status IN ('sent', 'failed', 'succeeded')) AS handed_over \
                     FROM payments p WHERE p.channel_id = $1 AND p.paid_on = $2 AND p.fingerprint LIKE 'statement:%' \
                     AND p.response <> '' ORDER BY p.channel_txn_id LIMIT 100000",
                )
                .bind(channel_id)
                .bind(day)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let row = record::<BookingRow, _>(r)?;
                let payment = yibao_domain::reconciliation::PlatformPayment::from(row.payment);
                Ok(yibao_domain::reconciliation::StatementBooking {
                    channel_txn_id: payment.channel_txn_id,
                    payment_no: payment.payment_no,
                    amount_fen: payment.amount_fen,
                    region: payment.region,
                    reversed: payment.reversed,
                    receipts_issued: row.receipts > 0,
                    refund_handed_over: row.handed_over > 0,
                })
            })
            .collect()
    }

    async fn withdraw_statement_booking(
        &self,
        channel_id: &str,
        payment_no: &str,
    ) -> Result<bool, crate::StorageError> {
        let Some(region) = region_of(
            self.pool(),
            payment_no,
            "SELECT region_code FROM payments WHERE payment_no = $1",
        )
        .await?
        else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        let txn: Option<String> = sqlx::query_scalar("SELECT channel_txn_id FROM payments WHERE region_code = $3 AND payment_no = $1 AND channel_id = $2")
                    .bind(payment_no)
                    .bind(channel_id)
                    .bind(&region)
                    .fetch_optional(&mut *tx)
                    .await?;
        let Some(txn) = txn else { return Ok(false) };
        // The (channel, transaction) row first, as reports and reversals take it: the channel's own
        // report racing this waits, then finds no booking and is stored as any report.
        sqlx::query(
                    "INSERT INTO channel_keys (channel_id, key, touches) VALUES ($1, $2, 1) \
                     ON CONFLICT (channel_id, key) DO UPDATE SET touches = channel_keys.touches + 1",
                )
                .bind(channel_id)
                .bind(format!("txn:{txn}"))
                .execute(&mut *tx)
                .await?;
        let still_booked: i64 = sqlx::query_scalar(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM payments p WHERE p.region_code = $2 AND p.payment_no = $1 \
                     AND p.fingerprint LIKE 'statement:%' AND p.status <> 'reversed' \
                     AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.region_code = $2 AND r.payment_no = p.payment_no) \
                     AND NOT EXISTS (SELECT 1 FROM payment_applications a WHERE a.region_code = $2 AND a.payment_no = p.payment_no)",
                )
                .bind(payment_no)
                .bind(&region)
                .fetch_one(&mut *tx)
                .await?;
        if still_booked != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Conditional on the refund still being owed: one handed to the channel meanwhile stays.
        sqlx::query(
            "DELETE FROM refunds WHERE region_code = $2 AND payment_no = $1 AND status = 'owed'",
        )
        .bind(payment_no)
        .bind(&region)
        .execute(&mut *tx)
        .await?;
        let left: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM refunds WHERE region_code = $2 AND payment_no = $1")
                    .bind(payment_no)
                    .bind(&region)
                    .fetch_one(&mut *tx)
                    .await?;
        if left != 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let removed =
            sqlx::query("DELETE FROM payments WHERE region_code = $2 AND payment_no = $1")
                .bind(payment_no)
                .bind(&region)
                .execute(&mut *tx)
                .await?;
        std::assert_eq!(
            S::rows_affected(&removed),
            1,
            "the booking was read in this transaction"
        );
        // The key no longer names a payment: the channel's own report is stored as any report.
        sqlx::query("UPDATE channel_keys SET region_code = NULL, target = NULL WHERE channel_id = $1 AND key = $2 AND target = $3")
                    .bind(channel_id)
                    .bind(format!("txn:{txn}"))
                    .bind(payment_no)
                    .execute(&mut *tx)
                    .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn payments_by_txn(
        &self,
        channel_id: &str,
        txn_ids: &[String],
    ) -> Result<Vec<crate::settlement::PaymentOnAnyDay>, crate::StorageError> {
        let mut out = Vec::new();
        for chunk in txn_ids.chunks(500) {
            let mut q = Statement::<S::DB>::new(
                        "SELECT channel_txn_id, payment_no, amount_fen, status, paid_on, region_code FROM payments WHERE response <> '' AND channel_id = ",
                    );
            q.push_bind(channel_id.to_owned());
            q.push(" AND channel_txn_id");
            Self::push_id_list(&mut q, chunk);
            let (sql, args) = q.into_parts()?;
            for r in sqlx::query_with(&sql, S::arguments(args))
                .fetch_all(self.pool())
                .await?
            {
                out.push(crate::rows::record::<crate::settlement::PaymentOnAnyDay, _>(&r)?);
            }
        }
        Ok(out)
    }

    async fn refunds_by_no(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<Vec<crate::settlement::RefundLookup>, crate::StorageError> {
        let mut out = Vec::new();
        for chunk in refund_nos.chunks(500) {
            let mut q = Statement::<S::DB>::new(
                        "SELECT refund_no, channel_txn_id, amount_fen, status FROM refunds WHERE channel_id = ",
                    );
            q.push_bind(channel_id.to_owned());
            q.push(" AND refund_no");
            Self::push_id_list(&mut q, chunk);
            let (sql, args) = q.into_parts()?;
            for r in sqlx::query_with(&sql, S::arguments(args))
                .fetch_all(self.pool())
                .await?
            {
                out.push(crate::rows::record::<crate::settlement::RefundLookup, _>(
                    &r,
                )?);
            }
        }
        Ok(out)
    }

    async fn carried_items(
        &self,
        channel_id: &str,
        before: chrono::NaiveDate,
    ) -> Result<Vec<crate::settlement::ReconciliationItem>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT * FROM reconciliation_items WHERE channel_id = $1 AND class = 'platform_only' AND statement_date < $2 \
                     AND (status IN ('carried', 'escalated') OR (status = 'resolved' AND resolution = 'matched_next_day')) \
                     ORDER BY statement_date, channel_txn_id LIMIT 100000",
                )
                .bind(channel_id)
                .bind(before)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(record::<ReconciliationItem, _>).collect()
    }

    async fn save_reconciliation(
        &self,
        rec: &crate::settlement::ReconciliationRecord,
    ) -> Result<(), crate::StorageError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
                    "INSERT INTO statements (channel_id, statement_date, lines, summary, format, file_sha256) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (channel_id, statement_date) DO UPDATE SET lines = excluded.lines, summary = excluded.summary, \
                     format = excluded.format, file_sha256 = excluded.file_sha256, uploaded_at = excluded.uploaded_at",
                )
                .bind(&rec.channel_id)
                .bind(rec.day)
                .bind(rec.lines)
                .bind(&rec.summary)
                .bind(&rec.format)
                .bind(&rec.file_sha256)
                .execute(&mut *tx)
                .await?;
        // A re-upload replaces what the earlier one left undecided or decided itself (the actions on
        // channel-only lines, recomputed from the new file); staff decisions stay. Escalated items and
        // those the next day resolved stay: a re-upload of an earlier day does not undo the next day's verdict.
        sqlx::query(
                    "DELETE FROM reconciliation_items WHERE channel_id = $1 AND statement_date = $2 \
                     AND (status IN ('open', 'carried') OR (status = 'resolved' AND resolved_by IS NULL))",
                )
                    .bind(&rec.channel_id)
                    .bind(rec.day)
                    .execute(&mut *tx)
                    .await?;
        for item in &rec.items {
            let d = &item.difference;
            sqlx::query(
                        "INSERT INTO reconciliation_items (channel_id, statement_date, channel_txn_id, class, region_code, payment_no, \
                         platform_fen, channel_fen, status, resolution, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (channel_id, statement_date, channel_txn_id, class) DO NOTHING",
                    )
                    .bind(&rec.channel_id)
                    .bind(rec.day)
                    .bind(&d.channel_txn_id)
                    .bind(d.class.code())
                    .bind(&d.region)
                    .bind(&d.payment_no)
                    .bind(d.platform_fen)
                    .bind(d.channel_fen)
                    .bind(item.status.code())
                    .bind(&item.resolution)
                    .bind(rec.now)
                    .execute(&mut *tx)
                    .await?;
        }
        for (day, txn) in &rec.resolved_carried {
            sqlx::query(
                        "UPDATE reconciliation_items SET status = 'resolved', resolution = 'matched_next_day', resolved_by = 'system', updated_at = $1 \
                         WHERE channel_id = $2 AND statement_date = $3 AND channel_txn_id = $4 AND class = 'platform_only' AND status IN ('carried', 'escalated')",
                    )
                    .bind(rec.now)
                    .bind(&rec.channel_id)
                    .bind(day)
                    .bind(txn)
                    .execute(&mut *tx)
                    .await?;
        }
        for (day, txn) in &rec.escalate {
            sqlx::query(
                        "UPDATE reconciliation_items SET status = 'escalated', updated_at = $1 \
                         WHERE channel_id = $2 AND statement_date = $3 AND channel_txn_id = $4 AND class = 'platform_only' AND status = 'carried'",
                    )
                    .bind(rec.now)
                    .bind(&rec.channel_id)
                    .bind(day)
                    .bind(txn)
                    .execute(&mut *tx)
                    .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn reconciliation_items_of_region(
        &self,
        channel_id: Option<&str>,
        region: Option<&str>,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        unresolved_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::settlement::ReconciliationItem>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT * FROM reconciliation_items WHERE (channel_id = $1 OR ($2 AND channel_id NOT IN (SELECT tc.channel_id FROM channels tc WHERE tc.test_mode))) \
                     AND statement_date BETWEEN $3 AND $4 \
                     AND (status <> 'resolved' OR NOT $5) AND (region_code = $7 OR $8) \
                     ORDER BY statement_date, channel_id, channel_txn_id, class LIMIT $6",
                )
                .bind(channel_id)
                .bind(channel_id.is_none())
                .bind(from)
                .bind(to)
                .bind(unresolved_only)
                .bind(limit as i64)
                .bind(region)
                .bind(region.is_none())
                .fetch_all(self.reads().pool())
                .await?;
        rows.iter().map(record::<ReconciliationItem, _>).collect()
    }

    async fn resolve_reconciliation_item(
        &self,
        channel_id: &str,
        region: Option<&str>,
        day: chrono::NaiveDate,
        channel_txn_id: &str,
        class: &str,
        resolution: &str,
        note: &str,
        by: &str,
        now: i64,
    ) -> Result<bool, crate::StorageError> {
        let r = sqlx::query(
                    "UPDATE reconciliation_items SET status = 'resolved', resolution = $1, note = $2, resolved_by = $3, updated_at = $4 \
                     WHERE channel_id = $5 AND statement_date = $6 AND channel_txn_id = $7 AND class = $8 AND status <> 'resolved' \
                     AND (region_code = $9 OR $10)",
                )
                .bind(resolution)
                .bind(note)
                .bind(by)
                .bind(now)
                .bind(channel_id)
                .bind(day)
                .bind(channel_txn_id)
                .bind(class)
                .bind(region)
                .bind(region.is_none())
                .execute(self.pool())
                .await?;
        Ok(S::rows_affected(&r) == 1)
    }

    async fn statements(
        &self,
        channel_id: Option<&str>,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: usize,
    ) -> Result<Vec<crate::settlement::StatementRecord>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT channel_id, statement_date, format, lines, summary FROM statements \
                     WHERE (channel_id = $1 OR ($2 AND channel_id NOT IN (SELECT tc.channel_id FROM channels tc WHERE tc.test_mode))) \
                     AND statement_date BETWEEN $3 AND $4 ORDER BY statement_date, channel_id LIMIT $5",
                )
                .bind(channel_id)
                .bind(channel_id.is_none())
                .bind(from)
                .bind(to)
                .bind(limit as i64)
                .fetch_all(self.reads().pool())
                .await?;
        rows.iter()
            .map(crate::rows::record::<crate::settlement::StatementRecord, _>)
            .collect()
    }
}
