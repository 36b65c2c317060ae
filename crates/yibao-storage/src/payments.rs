//! Payment reports (缴费结果通知): pay once whatever races, a receipt and a posting for each
//! payable paid, a refund owed for what cannot be applied; reversals (冲正); the invariants
//! `yibao check` asserts. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::{
    InvariantReport, NewPayment, NewReversal, PaymentReportOutcome, PaymentState, ReversalOutcome,
};
use crate::dialect::{Dialect, Statement};
use crate::rows::{payable_view_from_row, refund_state_from_row, PAYABLE_VIEW_SELECT};
use crate::StorageError;

/// Payment reports, their reversals, and the invariants of the money.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Stores a payment report in one transaction: applies each payable still payable, issues a
    /// receipt for each, writes the outbox, and records a refund owed for whatever was not applied.
    async fn report_payment(
        &self,
        payment: &NewPayment,
    ) -> Result<PaymentReportOutcome, StorageError>;

    /// Group commit: several payment reports in one transaction, each in its own savepoint, with
    /// the same result each would get alone. At most [`crate::collection::MAX_PAYMENT_BATCH`].
    async fn report_payments(
        &self,
        payments: &[NewPayment],
    ) -> Result<Vec<Result<PaymentReportOutcome, StorageError>>, StorageError>;

    async fn payment_state(
        &self,
        channel_id: &str,
        channel_txn_id: &str,
    ) -> Result<Option<PaymentState>, StorageError>;

    /// Reverses a payment (冲正), or records the reversal ahead of it. Idempotent. When the
    /// channel says the funds were not returned, what had been applied becomes a refund owed.
    async fn reverse_payment(
        &self,
        reversal: &NewReversal,
    ) -> Result<ReversalOutcome, StorageError>;

    /// Checks the protocol's invariants against everything stored.
    async fn check_invariants(&self) -> Result<InvariantReport, StorageError>;
}

#[async_trait]
impl<S> PaymentStore for S
where
    S: Dialect + crate::receipts::ReceiptStore,
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
    async fn report_payment(
        &self,
        payment: &crate::collection::NewPayment,
    ) -> Result<crate::collection::PaymentReportOutcome, crate::StorageError> {
        let mut tx = self.begin_write().await?;
        let outcome = report_one_payment::<S>(&mut tx, payment).await?;
        if outcome == crate::collection::PaymentReportOutcome::ReversedEarlier {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    async fn report_payments(
        &self,
        payments: &[crate::collection::NewPayment],
    ) -> Result<
        Vec<Result<crate::collection::PaymentReportOutcome, crate::StorageError>>,
        crate::StorageError,
    > {
        if payments.len() > crate::collection::MAX_PAYMENT_BATCH {
            return Err(crate::StorageError::Other(
                "too many payment reports in one batch".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        let mut results = Vec::with_capacity(payments.len());
        for payment in payments {
            // Each report in its own savepoint: one that fails leaves the others whole.
            sqlx::query("SAVEPOINT report").execute(&mut *tx).await?;
            match report_one_payment::<S>(&mut tx, payment).await {
                Ok(crate::collection::PaymentReportOutcome::ReversedEarlier) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT report")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT report")
                        .execute(&mut *tx)
                        .await?;
                    results.push(Ok(crate::collection::PaymentReportOutcome::ReversedEarlier));
                }
                Ok(outcome) => {
                    sqlx::query("RELEASE SAVEPOINT report")
                        .execute(&mut *tx)
                        .await?;
                    results.push(Ok(outcome));
                }
                Err(err) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT report")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT report")
                        .execute(&mut *tx)
                        .await?;
                    results.push(Err(err));
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn payment_state(
        &self,
        channel_id: &str,
        channel_txn_id: &str,
    ) -> Result<Option<crate::collection::PaymentState>, crate::StorageError> {
        use sqlx::Row as _;
        // The channel's key says where the payment is; then one region's rows.
        let key: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT region_code, target FROM channel_keys WHERE channel_id = $1 AND key = $2",
        )
        .bind(channel_id)
        .bind(format!("txn:{channel_txn_id}"))
        .fetch_optional(self.pool())
        .await?;
        let Some((Some(region), Some(payment_no))) = key else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT payment_no, status FROM payments WHERE region_code = $1 AND payment_no = $2 AND response <> ''")
                    .bind(&region)
                    .bind(&payment_no)
                    .fetch_optional(self.pool())
                    .await?;
        let Some(r) = row else { return Ok(None) };
        let rows = sqlx::query("SELECT payable_id, receipt_code, receipt_number, check_code FROM receipts WHERE region_code = $2 AND payment_no = $1 ORDER BY receipt_code, receipt_number")
                    .bind(&payment_no)
                    .bind(&region)
                    .fetch_all(self.pool())
                    .await?;
        let receipts = rows
            .iter()
            .map(|r| {
                Ok(crate::collection::ReceiptRef {
                    payable_id: r.try_get("payable_id")?,
                    receipt_code: r.try_get("receipt_code")?,
                    receipt_number: r.try_get("receipt_number")?,
                    check_code: r.try_get("check_code")?,
                })
            })
            .collect::<Result<Vec<_>, crate::StorageError>>()?;
        let refund = sqlx::query("SELECT refund_no, channel_txn_id, amount_fen, reason, due, status, due_without_calendar FROM refunds WHERE region_code = $2 AND payment_no = $1")
                    .bind(&payment_no)
                    .bind(&region)
                    .fetch_optional(self.pool())
                    .await?;
        let refund = refund.as_ref().map(refund_state_from_row).transpose()?;
        Ok(Some(crate::collection::PaymentState {
            payment_no,
            status: r.try_get("status")?,
            receipts,
            refund,
        }))
    }

    async fn reverse_payment(
        &self,
        reversal: &crate::collection::NewReversal,
    ) -> Result<crate::collection::ReversalOutcome, crate::StorageError> {
        use sqlx::Row as _;
        let mut tx = self.begin_write().await?;
        let key = sqlx::query(
                    "INSERT INTO channel_keys (channel_id, key, touches) VALUES ($1, $2, 1) \
                     ON CONFLICT (channel_id, key) DO UPDATE SET touches = channel_keys.touches + 1 \
                     RETURNING region_code, target",
                )
                .bind(&reversal.channel_id)
                .bind(format!("txn:{}", reversal.channel_txn_id))
                .fetch_one(&mut *tx)
                .await?;
        let first: (Option<String>, Option<String>) =
            (key.try_get("region_code")?, key.try_get("target")?);
        sqlx::query("INSERT INTO reversals (channel_id, channel_txn_id, reason, funds_returned) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(&reversal.channel_id)
                    .bind(&reversal.channel_txn_id)
                    .bind(&reversal.reason)
                    .bind(reversal.funds_returned)
                    .execute(&mut *tx)
                    .await?;
        let payment = match &first {
                    (Some(region), Some(payment_no)) => sqlx::query("SELECT payment_no, status, paid_on FROM payments WHERE region_code = $1 AND payment_no = $2 AND response <> ''")
                        .bind(region)
                        .bind(payment_no)
                        .fetch_optional(&mut *tx)
                        .await?,
                    _ => None,
                };
        let (Some(p), (Some(region), _)) = (payment, first) else {
            tx.commit().await?;
            return Ok(crate::collection::ReversalOutcome::RecordedAhead);
        };
        let payment_no: String = p.try_get("payment_no")?;
        let status: String = p.try_get("status")?;
        let paid_on: chrono::NaiveDate = p.try_get("paid_on")?;
        // Reversed already, or the reversal came first and the money is owed back: nothing to undo.
        let owed_back: Option<String> = sqlx::query_scalar("SELECT refund_no FROM refunds WHERE region_code = $2 AND payment_no = $1 AND reason = 'REVERSED_EARLIER'")
                    .bind(&payment_no)
                    .bind(&region)
                    .fetch_optional(&mut *tx)
                    .await?;
        if status == "reversed" || owed_back.is_some() {
            tx.commit().await?;
            return Ok(crate::collection::ReversalOutcome::Reversed);
        }
        let closed: Option<i64> = sqlx::query_scalar(
            "SELECT lines FROM statements WHERE channel_id = $1 AND statement_date = $2",
        )
        .bind(&reversal.channel_id)
        .bind(paid_on)
        .fetch_optional(&mut *tx)
        .await?;
        if closed.is_some() {
            tx.rollback().await?;
            return Ok(crate::collection::ReversalOutcome::Closed);
        }
        let applied: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT payable_id, region_code, amount_fen FROM payment_applications WHERE region_code = $3 AND payment_no = $1 AND active = $2 ORDER BY payable_id",
                )
                .bind(&payment_no)
                .bind(true)
                .bind(&region)
                .fetch_all(&mut *tx)
                .await?;
        let mut undone: i64 = 0;
        for (i, (payable_id, region, amount)) in applied.iter().enumerate() {
            let off = sqlx::query("UPDATE payment_applications SET active = $1 WHERE region_code = $5 AND payment_no = $2 AND payable_id = $3 AND active = $4")
                        .bind(false)
                        .bind(&payment_no)
                        .bind(payable_id)
                        .bind(true)
                        .bind(region)
                        .execute(&mut *tx)
                        .await?;
            if S::rows_affected(&off) != 1 {
                continue;
            }
            undone += amount;
            sqlx::query("UPDATE payables SET status = 'unpaid' WHERE region_code = $2 AND payable_id = $1 AND status IN ('paid', 'posted')")
                        .bind(payable_id)
                        .bind(region)
                        .execute(&mut *tx)
                        .await?;
            let event_id = reversal
                .event_ids
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("{payment_no}-r{i}"));
            let event_id = crate::regional_id::with_region(&event_id, region);
            sqlx::query(
                        "INSERT INTO outbox (event_id, region_code, kind, payable_id, payload, created_at, next_attempt_at) \
                         VALUES ($1, $2, 'payment_reversed', $3, $4, $5, $5)",
                    )
                    .bind(&event_id)
                    .bind(region)
                    .bind(payable_id)
                    .bind(serde_json::json!({"event_id": event_id, "kind": "payment_reversed", "payable_id": payable_id,
                        "region": region, "payment_no": payment_no}).to_string())
                    .bind(reversal.now)
                    .execute(&mut *tx)
                    .await?;
        }
        sqlx::query(
            "UPDATE receipts SET status = 'voided' WHERE region_code = $2 AND payment_no = $1",
        )
        .bind(&payment_no)
        .bind(&region)
        .execute(&mut *tx)
        .await?;
        let new_status = if reversal.funds_returned {
            sqlx::query("UPDATE refunds SET status = 'cancelled', updated_at = CURRENT_TIMESTAMP WHERE region_code = $2 AND payment_no = $1 AND status IN ('owed', 'sent', 'failed')")
                        .bind(&payment_no)
                        .bind(&region)
                        .execute(&mut *tx)
                        .await?;
            "reversed"
        } else {
            // The channel still holds the money it had applied: it is owed back, not lost.
            if undone > 0 {
                sqlx::query(
                            "INSERT INTO refunds (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due, due_without_calendar) \
                             VALUES ($1, $2, $3, $4, $5, $6, 'REVERSED_EARLIER', 'owed', $7, $8)",
                        )
                        .bind(crate::regional_id::with_region(&reversal.refund_no, &region))
                        .bind(&reversal.channel_id)
                        .bind(&payment_no)
                        .bind(&reversal.channel_txn_id)
                        .bind(&region)
                        .bind(undone)
                        .bind(reversal.refund_due.date)
                        .bind(!reversal.refund_due.calendar_complete())
                        .execute(&mut *tx)
                        .await?;
            }
            "refund_pending"
        };
        sqlx::query("UPDATE payments SET status = $1 WHERE region_code = $3 AND payment_no = $2")
            .bind(new_status)
            .bind(&payment_no)
            .bind(&region)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(crate::collection::ReversalOutcome::Reversed)
    }

    async fn check_invariants(
        &self,
    ) -> Result<crate::collection::InvariantReport, crate::StorageError> {
        let payments_checked = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payments WHERE response <> ''",
        )
        .fetch_one(self.pool())
        .await?;
        let mut report = crate::collection::InvariantReport {
            payments_checked,
            ..Default::default()
        };
        report.payables_paid = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payables WHERE status IN ('paid', 'posted')",
        )
        .fetch_one(self.pool())
        .await?;
        report.receipts = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM receipts")
            .fetch_one(self.pool())
            .await?;
        report.pay_once_violations = sqlx::query_scalar(
                    "SELECT y.payable_id FROM payables y \
                     LEFT JOIN (SELECT region_code, payable_id, COUNT(*) AS n FROM payment_applications WHERE active = $1 \
                                GROUP BY region_code, payable_id) a \
                       ON a.region_code = y.region_code AND a.payable_id = y.payable_id \
                     WHERE COALESCE(a.n, 0) > 1 \
                        OR (y.status IN ('paid', 'posted') AND COALESCE(a.n, 0) <> 1) \
                        OR (y.status NOT IN ('paid', 'posted') AND COALESCE(a.n, 0) <> 0) \
                     ORDER BY y.payable_id LIMIT 1000",
                )
                .bind(true)
                .fetch_all(self.pool())
                .await?;
        report.money_violations = sqlx::query_scalar(
                    "SELECT p.payment_no FROM payments p \
                     LEFT JOIN (SELECT region_code, payment_no, SUM(amount_fen) AS s FROM payment_applications WHERE active = $1 \
                                GROUP BY region_code, payment_no) a \
                       ON a.region_code = p.region_code AND a.payment_no = p.payment_no \
                     LEFT JOIN (SELECT region_code, payment_no, SUM(amount_fen) AS s FROM refunds WHERE status <> 'cancelled' \
                                GROUP BY region_code, payment_no) r \
                       ON r.region_code = p.region_code AND r.payment_no = p.payment_no \
                     WHERE p.status <> 'reversed' AND p.response <> '' \
                       AND p.amount_fen <> COALESCE(a.s, 0) + COALESCE(r.s, 0) \
                     ORDER BY p.payment_no LIMIT 1000",
                )
                .bind(true)
                .fetch_all(self.pool())
                .await?;
        report.receipt_gaps = crate::receipts::ReceiptStore::receipt_number_stats(self)
            .await?
            .into_iter()
            .filter(|(_, count, highest)| count != highest)
            .map(|(code, count, highest)| format!("{code}: {count} receipts up to {highest}"))
            .collect();
        report.missing_receipts = sqlx::query_scalar(
                    "SELECT a.payable_id FROM payment_applications a WHERE a.active = $1 AND NOT EXISTS \
                     (SELECT 1 FROM receipts r WHERE r.region_code = a.region_code AND r.payable_id = a.payable_id AND r.payment_no = a.payment_no \
                      AND r.status = 'valid') \
                     ORDER BY a.payable_id LIMIT 1000",
                )
                .bind(true)
                .fetch_all(self.pool())
                .await?;
        report.missing_postings = sqlx::query_scalar(
                    "SELECT y.payable_id FROM payables y WHERE y.status = 'paid' AND NOT EXISTS \
                     (SELECT 1 FROM outbox o WHERE o.region_code = y.region_code AND o.payable_id = y.payable_id \
                      AND o.kind = 'payment_applied' AND o.delivered_at IS NULL) \
                     ORDER BY y.payable_id LIMIT 1000",
                )
                .fetch_all(self.pool())
                .await?;
        Ok(report)
    }
}

/// One payment report inside a transaction the caller owns (and commits, or rolls back on
/// `ReversedEarlier`).
pub(crate) async fn report_one_payment<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    payment: &crate::collection::NewPayment,
) -> Result<crate::collection::PaymentReportOutcome, crate::StorageError>
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
    use crate::collection::{PaymentOutcome, PaymentReportOutcome, ReceiptRef, RefundRef};
    use sqlx::Row as _;
    // Serialise everything about this (channel, transaction), whatever region a repeat
    // names: a concurrent duplicate or reversal waits on the key's row, then sees what
    // this transaction did. The key's row says where the first payment went.
    let key = sqlx::query(
                    "INSERT INTO channel_keys (channel_id, key, touches) VALUES ($1, $2, 1) \
                     ON CONFLICT (channel_id, key) DO UPDATE SET touches = channel_keys.touches + 1 \
                     RETURNING region_code, target",
                )
                .bind(&payment.channel_id)
                .bind(format!("txn:{}", payment.channel_txn_id))
                .fetch_one(&mut **tx)
                .await?;
    let first: (Option<String>, Option<String>) =
        (key.try_get("region_code")?, key.try_get("target")?);
    if let (Some(first_region), Some(first_payment)) = first {
        let r = sqlx::query(
            "SELECT fingerprint, response FROM payments WHERE region_code = $1 AND payment_no = $2",
        )
        .bind(&first_region)
        .bind(&first_payment)
        .fetch_one(&mut **tx)
        .await?;
        let fingerprint: String = r.try_get("fingerprint")?;
        let response: String = r.try_get("response")?;
        let outcome: PaymentOutcome =
            serde_json::from_str(&response).map_err(crate::StorageError::corrupt)?;
        // A transaction first booked from the channel's statement (长款) answers the channel's
        // own late report with what was done with the money, not a conflict.
        let booked_from_statement = fingerprint.starts_with("statement:");
        if booked_from_statement && !payment.fingerprint.starts_with("statement:") {
            // From now on it is the channel's own report: a re-uploaded statement matches it
            // instead of taking it for its own booking (which it could withdraw).
            sqlx::query(
                "UPDATE payments SET fingerprint = $1 WHERE region_code = $2 AND payment_no = $3",
            )
            .bind(&payment.fingerprint)
            .bind(&first_region)
            .bind(&first_payment)
            .execute(&mut **tx)
            .await?;
        }
        let same_request = fingerprint == payment.fingerprint || booked_from_statement;
        return Ok(PaymentReportOutcome::Existing {
            outcome,
            same_request,
        });
    }
    let region = payment.region.clone();
    sqlx::query(
                    "INSERT INTO payments (payment_no, channel_id, channel_txn_id, order_no, region_code, amount_fen, paid_at, paid_on, status, fingerprint, response) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'refund_pending', $9, '')",
                )
                .bind(&payment.payment_no)
                .bind(&payment.channel_id)
                .bind(&payment.channel_txn_id)
                .bind(&payment.order_no)
                .bind(&region)
                .bind(payment.amount_fen)
                .bind(&payment.paid_at)
                .bind(payment.paid_on)
                .bind(&payment.fingerprint)
                .execute(&mut **tx)
                .await?;
    sqlx::query("UPDATE channel_keys SET region_code = $1, target = $2 WHERE channel_id = $3 AND key = $4 AND target IS NULL")
                    .bind(&region)
                    .bind(&payment.payment_no)
                    .bind(&payment.channel_id)
                    .bind(format!("txn:{}", payment.channel_txn_id))
                    .execute(&mut **tx)
                    .await?;
    let reversal = sqlx::query(
        "SELECT funds_returned FROM reversals WHERE channel_id = $1 AND channel_txn_id = $2",
    )
    .bind(&payment.channel_id)
    .bind(&payment.channel_txn_id)
    .fetch_optional(&mut **tx)
    .await?;
    let mut refund_reason: Option<&'static str> = payment.refund_all;
    if let Some(r) = reversal {
        let funds_returned: bool = r.try_get("funds_returned")?;
        if funds_returned {
            // The caller rolls back what this report wrote (its claim).
            return Ok(PaymentReportOutcome::ReversedEarlier);
        }
        refund_reason = refund_reason.or(Some("REVERSED_EARLIER"));
    }
    // The payables, with the payer's reserved name and the issuing region's name.
    let mut views = Vec::new();
    if !payment.payable_ids.is_empty() {
        let mut q = Statement::<S::DB>::new(PAYABLE_VIEW_SELECT);
        q.push("WHERE y.region_code = ")
            .push_bind(region.clone())
            .push(" AND y.payable_id IN (");
        q.push_list(payment.payable_ids.iter().cloned());
        q.push(")");
        let (sql, args) = q.into_parts()?;
        let rows = sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut **tx)
            .await?;
        for r in &rows {
            views.push(payable_view_from_row(r)?);
        }
    }
    if refund_reason.is_none()
        && (payment.payable_ids.is_empty() || views.len() != payment.payable_ids.len())
    {
        refund_reason = Some("NOT_PAYABLE");
    }
    let total: i64 = views.iter().map(|v| v.amount_fen).sum();
    if refund_reason.is_none() && total != payment.amount_fen {
        refund_reason = Some("AMOUNT_MISMATCH");
    }
    if let Some(order_no) = &payment.order_no {
        // Take the order's row before its payables, in the same order as expiry and cancel do.
        sqlx::query("UPDATE orders SET status = status WHERE region_code = $3 AND order_no = $1 AND channel_id = $2")
                        .bind(order_no)
                        .bind(&payment.channel_id)
                        .bind(&region)
                        .execute(&mut **tx)
                        .await?;
    }
    let holder = payment
        .lock_holder
        .clone()
        .or_else(|| payment.order_no.clone())
        .unwrap_or_default();
    let mut receipts = Vec::new();
    let mut applied_total: i64 = 0;
    let mut partial_reason: Option<&'static str> = None;
    let mut applied = Vec::new();
    if refund_reason.is_none() {
        for (i, id) in payment.payable_ids.iter().enumerate() {
            let Some(view) = views.iter().find(|v| &v.payable_id == id) else {
                continue;
            };
            // Payable if unpaid, or held by this payment's own order, or by a hold that expired.
            let taken = sqlx::query(
                            "UPDATE payables SET status = 'paid', locked_by = NULL, locked_until = NULL \
                             WHERE region_code = $4 AND payable_id = $1 AND (status = 'unpaid' OR (status = 'locked' AND (locked_by = $2 OR locked_until <= $3)))",
                        )
                        .bind(id)
                        .bind(&holder)
                        .bind(payment.now)
                        .bind(&region)
                        .execute(&mut **tx)
                        .await?;
            if S::rows_affected(&taken) != 1 {
                let status: String = sqlx::query_scalar(
                    "SELECT status FROM payables WHERE region_code = $2 AND payable_id = $1",
                )
                .bind(id)
                .bind(&region)
                .fetch_one(&mut **tx)
                .await?;
                let reason = if status == "paid" || status == "posted" {
                    "ALREADY_PAID"
                } else {
                    "NOT_PAYABLE"
                };
                partial_reason = partial_reason.or(Some(reason));
                continue;
            }
            // The unique index on active applications is the last word on pay-once.
            sqlx::query(
                            "INSERT INTO payment_applications (payment_no, payable_id, region_code, amount_fen, active) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(&payment.payment_no)
                        .bind(id)
                        .bind(&view.region)
                        .bind(view.amount_fen)
                        .bind(true)
                        .execute(&mut **tx)
                        .await?;
            applied_total += view.amount_fen;
            applied.push((i, id, view));
        }
        // Receipts and outbox after every payable is taken, so payables are always locked before
        // the receipt counters, and counters in code order, so two family payments cannot deadlock.
        applied.sort_by(|a, b| a.2.region.cmp(&b.2.region).then(a.1.cmp(b.1)));
        for (i, id, view) in applied {
            // Receipt number: the counter row serialises issuers of one code, so numbers have no gaps.
            let year = chrono::Datelike::year(&payment.issued_on) % 100;
            let receipt_code = format!("{}{:02}", view.region, year);
            sqlx::query("INSERT INTO receipt_counters (receipt_code, region_code, last_number) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
                            .bind(&receipt_code)
                            .bind(&view.region)
                            .execute(&mut **tx)
                            .await?;
            let number: i64 = sqlx::query_scalar(
                            "UPDATE receipt_counters SET last_number = last_number + 1 WHERE region_code = $2 AND receipt_code = $1 RETURNING last_number",
                        )
                        .bind(&receipt_code)
                        .bind(&view.region)
                        .fetch_one(&mut **tx)
                        .await?;
            let receipt_number = format!("{number:010}");
            let check_code = payment.check_codes.get(i).cloned().unwrap_or_default();
            let components = serde_json::json!([
                            {"code": "basic", "name": "基本医疗保险", "amount": view.basic_fen},
                            {"code": "critical_illness", "name": "大病保险", "amount": view.critical_illness_fen},
                            {"code": "long_term_care", "name": "照护保险", "amount": view.long_term_care_fen},
                        ])
                        .to_string();
            sqlx::query(
                            "INSERT INTO receipts (receipt_code, receipt_number, region_code, check_code, payable_id, payment_no, id_number, \
                             payer_name, fee_year, amount_fen, components, issued_on, issuer, status) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'valid')",
                        )
                        .bind(&receipt_code)
                        .bind(&receipt_number)
                        .bind(&view.region)
                        .bind(&check_code)
                        .bind(id)
                        .bind(&payment.payment_no)
                        .bind(&view.id_number)
                        .bind(&view.name)
                        .bind(view.fee_year)
                        .bind(view.amount_fen)
                        .bind(&components)
                        .bind(payment.issued_on)
                        .bind(format!("国家税务总局{}税务局", view.region_name))
                        .execute(&mut **tx)
                        .await?;
            let event_id = payment
                .event_ids
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("{}-{i}", payment.payment_no));
            sqlx::query(
                            "INSERT INTO outbox (event_id, region_code, kind, payable_id, payload, created_at, next_attempt_at) \
                             VALUES ($1, $2, 'payment_applied', $3, $4, $5, $5)",
                        )
                        .bind(&event_id)
                        .bind(&view.region)
                        .bind(id)
                        .bind(serde_json::json!({
                            "event_id": event_id, "kind": "payment_applied", "payable_id": id, "region": view.region,
                            "fee_year": view.fee_year, "amount": view.amount_fen, "payment_no": payment.payment_no,
                            "channel_id": payment.channel_id, "paid_at": payment.paid_at,
                            "receipt_code": receipt_code, "receipt_number": receipt_number,
                        }).to_string())
                        .bind(payment.now)
                        .execute(&mut **tx)
                        .await?;
            receipts.push(ReceiptRef {
                payable_id: id.clone(),
                receipt_code,
                receipt_number,
                check_code,
            });
        }
    }
    let refund_amount = payment.amount_fen - applied_total;
    std::debug_assert!(refund_amount >= 0, "applied more than was paid");
    let reason = refund_reason.or(partial_reason);
    let refund = if refund_amount > 0 {
        let reason = reason.unwrap_or("NOT_PAYABLE");
        sqlx::query(
                        "INSERT INTO refunds (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due, due_without_calendar) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'owed', $8, $9)",
                    )
                    .bind(&payment.refund_no)
                    .bind(&payment.channel_id)
                    .bind(&payment.payment_no)
                    .bind(&payment.channel_txn_id)
                    .bind(&region)
                    .bind(refund_amount)
                    .bind(reason)
                    .bind(payment.refund_due.date)
                    .bind(!payment.refund_due.calendar_complete())
                    .execute(&mut **tx)
                    .await?;
        Some(RefundRef {
            refund_no: payment.refund_no.clone(),
            amount_fen: refund_amount,
            reason: reason.to_owned(),
            due: payment.refund_due.date,
        })
    } else {
        None
    };
    let applied_any = !receipts.is_empty();
    let result = match (receipts.is_empty(), refund.is_some()) {
        (false, false) => "paid",
        (false, true) => "partially_refunded",
        (true, _) => "refund_pending",
    };
    let outcome = PaymentOutcome {
        payment_no: payment.payment_no.clone(),
        result: result.to_owned(),
        receipts,
        refund,
    };
    let response = serde_json::to_string(&outcome).map_err(crate::StorageError::corrupt)?;
    sqlx::query(
        "UPDATE payments SET status = $1, response = $2 WHERE region_code = $3 AND payment_no = $4",
    )
    .bind(result)
    .bind(&response)
    .bind(&region)
    .bind(&payment.payment_no)
    .execute(&mut **tx)
    .await?;
    if let (Some(order_no), true) = (&payment.order_no, applied_any) {
        sqlx::query("UPDATE orders SET status = 'paid' WHERE region_code = $3 AND order_no = $1 AND channel_id = $2 AND status IN ('open', 'expired')")
                        .bind(order_no)
                        .bind(&payment.channel_id)
                        .bind(&region)
                        .execute(&mut **tx)
                        .await?;
    }
    Ok(PaymentReportOutcome::Stored(outcome))
}
