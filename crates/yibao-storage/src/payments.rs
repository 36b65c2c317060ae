//! Payment reports (缴费结果通知): pay once whatever races, a receipt and a posting for each
//! payable paid, a refund owed for what cannot be applied; reversals (冲正); the invariants
//! `yibao check` asserts. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use yibao_domain::{
    decide_payment, EarlierReversal, OwedBack, PayableAtReport, PaymentDecision, PaymentReport,
};

use crate::collection::{
    InvariantReport, NewPayment, NewReversal, PayableView, PaymentReportOutcome, PaymentState,
    ReceiptRef, RefundRef, ReversalOutcome,
};
use crate::dialect::{Dialect, Statement};
use crate::rows::{record, PAYABLE_VIEW_SELECT};
use crate::status_moves::{order, payable, refund};
use crate::StorageError;

/// Payment reports, their reversals, and the invariants of the money.
/// How often, and how long apart, a reversal reads again a payment its key names but that is
/// not visible yet (a Citus cluster's two-phase commit, a few milliseconds): at most 2 s, then
/// the channel is asked to retry (503).
const PAYMENT_VISIBLE_TRIES: u32 = 100;
const PAYMENT_VISIBLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

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
    for<'q> Option<i64>: Encode<'q, S::DB>,
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
        // A signed request's nonce is recorded with its payment, as group commit does it.
        if payment.nonce.is_some() {
            return self
                .report_payments(std::slice::from_ref(payment))
                .await?
                .pop()
                .unwrap_or_else(|| Err(crate::StorageError::Other("缴费结果缺失".into())));
        }
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
        // Decided together and written set-based when the batch allows (`payment_batch`);
        // otherwise rolled back and reported one by one below, each in its own savepoint. Either
        // way the reports' nonces are recorded first, in the same transaction: a replay is left
        // out, and what is reported commits with its nonce or not at all.
        let mut tx = self.begin_write().await?;
        let fresh = NoncesClaimed::claim::<S>(&mut tx, payments).await?;
        if fresh.none_fresh() {
            tx.rollback().await?;
            return Ok(fresh.answers(Vec::new()));
        }
        match crate::payment_batch::report_batch::<S>(&mut tx, &fresh.reported(payments)).await {
            Ok(Some(outcomes)) => {
                tx.commit().await?;
                self.payment_batch_committed();
                return Ok(fresh.answers(outcomes.into_iter().map(Ok).collect()));
            }
            Ok(None) => {
                crate::payment_batch::count_one_by_one();
                tx.rollback().await?
            }
            // The savepoints below say which report it was, and fail only that one. (A
            // connection that broke fails them all again, as it would have anyway.)
            Err(_) => {
                crate::payment_batch::count_one_by_one();
                drop(tx.rollback().await)
            }
        }
        let mut tx = self.begin_write().await?;
        let fresh = NoncesClaimed::claim::<S>(&mut tx, payments).await?;
        let reported = fresh.reported(payments);
        let results = report_each_in_savepoint::<S>(&mut tx, &reported).await?;
        // A report that failed is answered with a server error, and its channel may send the
        // same request again: its nonce goes, so that only answered reports' nonces commit.
        let failed: Vec<(&str, &str)> = reported
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_err())
            .filter_map(|(p, _)| Some((p.channel_id.as_str(), p.nonce.as_deref()?)))
            .collect();
        crate::channels::forget_nonces::<S>(&mut *tx, &failed).await?;
        tx.commit().await?;
        self.payment_batch_committed();
        Ok(fresh.answers(results))
    }

    async fn payment_state(
        &self,
        channel_id: &str,
        channel_txn_id: &str,
    ) -> Result<Option<crate::collection::PaymentState>, crate::StorageError> {
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
            .map(crate::rows::record::<crate::collection::ReceiptRef, _>)
            .collect::<Result<Vec<_>, crate::StorageError>>()?;
        let refund = sqlx::query("SELECT refund_no, channel_txn_id, amount_fen, reason, due, status, due_without_calendar FROM refunds WHERE region_code = $2 AND payment_no = $1")
                    .bind(&payment_no)
                    .bind(&region)
                    .fetch_optional(self.pool())
                    .await?;
        let refund = refund
            .as_ref()
            .map(record::<crate::collection::RefundState, _>)
            .transpose()?;
        Ok(Some(crate::collection::PaymentState {
            payment_no,
            status: crate::rows::status_from_row(&r, "status")?,
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
        // The key names the payment when one was reported first. On a Citus cluster the
        // payment's transaction commits on the key's node and on the payment's one after the
        // other (two-phase commit), so the key can be seen a moment before the payment: wait
        // for it instead of recording the reversal ahead of a payment that has landed.
        let payment = match &first {
            (Some(region), Some(payment_no)) => {
                let mut tries = 0;
                loop {
                    let found = sqlx::query("SELECT payment_no, status, paid_on FROM payments WHERE region_code = $1 AND payment_no = $2 AND response <> ''")
                        .bind(region)
                        .bind(payment_no)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_some() {
                        break found;
                    }
                    tries += 1;
                    if tries >= PAYMENT_VISIBLE_TRIES {
                        return Err(crate::StorageError::Unavailable(
                            "付款记录尚未可见，请稍后重试冲正".into(),
                        ));
                    }
                    tokio::time::sleep(PAYMENT_VISIBLE_PAUSE).await;
                }
            }
            _ => None,
        };
        let (Some(p), (Some(region), _)) = (payment, first) else {
            tx.commit().await?;
            return Ok(crate::collection::ReversalOutcome::RecordedAhead);
        };
        let payment_no: String = p.try_get("payment_no")?;
        let paid_on: chrono::NaiveDate = p.try_get("paid_on")?;
        let owed_back: Option<String> = sqlx::query_scalar("SELECT refund_no FROM refunds WHERE region_code = $2 AND payment_no = $1 AND reason = 'REVERSED_EARLIER'")
                    .bind(&payment_no)
                    .bind(&region)
                    .fetch_optional(&mut *tx)
                    .await?;
        let reconciled: Option<i64> = sqlx::query_scalar(
            "SELECT lines FROM statements WHERE channel_id = $1 AND statement_date = $2",
        )
        .bind(&reversal.channel_id)
        .bind(paid_on)
        .fetch_optional(&mut *tx)
        .await?;
        let at_reversal = yibao_domain::PaymentAtReversal {
            status: crate::rows::status_from_row(&p, "status")?,
            owed_back_from_the_start: owed_back.is_some(),
            day_reconciled: reconciled.is_some(),
        };
        match yibao_domain::decide_reversal(&at_reversal) {
            yibao_domain::ReversalDecision::NothingToUndo => {
                tx.commit().await?;
                return Ok(crate::collection::ReversalOutcome::Reversed);
            }
            yibao_domain::ReversalDecision::Closed => {
                tx.rollback().await?;
                return Ok(crate::collection::ReversalOutcome::Closed);
            }
            yibao_domain::ReversalDecision::Undo => {}
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
            sqlx::query(&format!(
                "UPDATE payables SET {} WHERE region_code = $2 AND payable_id = $1 AND {}",
                payable::UNDO_PAYMENT.set(),
                payable::UNDO_PAYMENT.guard()
            ))
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
        let undone = yibao_domain::Fen::new(undone).map_err(crate::StorageError::corrupt)?;
        let settled = yibao_domain::settle_reversal(undone, reversal.funds_returned);
        if settled.cancel_refunds_owed {
            sqlx::query(&format!(
                "UPDATE refunds SET {}, updated_at = CURRENT_TIMESTAMP WHERE region_code = $2 AND payment_no = $1 AND {}",
                refund::CANCEL.set(),
                refund::CANCEL.guard()
            ))
                        .bind(&payment_no)
                        .bind(&region)
                        .execute(&mut *tx)
                        .await?;
        }
        if let Some(owed) = settled.owe_back {
            sqlx::query(
                        "INSERT INTO refunds (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due, due_without_calendar) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'REVERSED_EARLIER', 'owed', $7, $8)",
                    )
                    .bind(crate::regional_id::with_region(&reversal.refund_no, &region))
                    .bind(&reversal.channel_id)
                    .bind(&payment_no)
                    .bind(&reversal.channel_txn_id)
                    .bind(&region)
                    .bind(owed.as_fen())
                    .bind(reversal.refund_due.date)
                    .bind(!reversal.refund_due.calendar_complete())
                    .execute(&mut *tx)
                    .await?;
        }
        sqlx::query("UPDATE payments SET status = $1 WHERE region_code = $3 AND payment_no = $2")
            .bind(settled.status.code())
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
        if !self.regions_on_nodes().await? {
            use sqlx::Row as _;
            let outside = sqlx::query(
                "SELECT p.region_code, p.id_number FROM persons p WHERE NOT EXISTS \
                 (SELECT 1 FROM person_directory d WHERE d.id_number = p.id_number \
                  AND d.region_code = p.region_code) \
                 ORDER BY p.region_code, p.id_number LIMIT 1000",
            )
            .fetch_all(self.pool())
            .await?;
            for row in outside {
                let region: String = row.try_get("region_code")?;
                let masked =
                    yibao_domain::IdNumber::try_from(row.try_get::<String, _>("id_number")?)
                        .map(|id| id.masked())
                        .unwrap_or_else(|_| "（身份证号码格式不正确）".to_owned());
                report
                    .persons_outside_directory
                    .push(format!("{region} {masked}"));
            }
        }
        Ok(report)
    }
}

/// Payment reports one after another inside a transaction the caller owns, each in its own
/// savepoint: one that fails, or meets a reversal recorded first (`ReversedEarlier`), leaves
/// nothing of its own and the others whole. The path a batch takes when the set-based one
/// (`payment_batch::report_batch`) declines it: for the channels' group commit and a bank's
/// debit results alike.
/// Which reports of a batch are not replays: those without a nonce, and those whose nonce the
/// channel had not used (a nonce twice in the batch counts the first time only).
struct NoncesClaimed(Vec<bool>);

impl NoncesClaimed {
    /// Records the batch's nonces in the writer's transaction, in one statement.
    async fn claim<S>(
        tx: &mut sqlx::Transaction<'static, S::DB>,
        payments: &[crate::collection::NewPayment],
    ) -> Result<NoncesClaimed, crate::StorageError>
    where
        S: Dialect,
        for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
        for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
        for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
        for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
        for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    {
        let mut fresh = vec![true; payments.len()];
        let (carrying, nonces): (Vec<usize>, Vec<(&str, &str)>) = payments
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, (p.channel_id.as_str(), p.nonce.as_deref()?))))
            .unzip();
        if carrying.is_empty() {
            return Ok(NoncesClaimed(fresh));
        }
        let now = payments.iter().map(|p| p.now).max().unwrap_or_default();
        let claimed = crate::channels::insert_nonces::<S>(&mut **tx, &nonces, now).await?;
        for (i, claimed) in carrying.into_iter().zip(claimed) {
            fresh[i] = claimed;
        }
        Ok(NoncesClaimed(fresh))
    }

    fn none_fresh(&self) -> bool {
        !self.0.contains(&true)
    }

    /// The reports to store: every one when none is a replay (the usual case, nothing copied).
    fn reported<'a>(
        &self,
        payments: &'a [crate::collection::NewPayment],
    ) -> std::borrow::Cow<'a, [crate::collection::NewPayment]> {
        if self.0.iter().all(|f| *f) {
            return std::borrow::Cow::Borrowed(payments);
        }
        payments
            .iter()
            .zip(&self.0)
            .filter(|(_, fresh)| **fresh)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The batch's answers in its order: `NonceUsed` for a replay, else the next of `stored`
    /// (the answers of [`Self::reported`], in its order).
    fn answers(
        &self,
        stored: Vec<Result<crate::collection::PaymentReportOutcome, crate::StorageError>>,
    ) -> Vec<Result<crate::collection::PaymentReportOutcome, crate::StorageError>> {
        let mut stored = stored.into_iter();
        self.0
            .iter()
            .map(|fresh| match fresh {
                true => stored
                    .next()
                    .unwrap_or_else(|| Err(crate::StorageError::Other("缴费结果缺失".into()))),
                false => Ok(crate::collection::PaymentReportOutcome::NonceUsed),
            })
            .collect()
    }
}

pub(crate) async fn report_each_in_savepoint<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    payments: &[crate::collection::NewPayment],
) -> Result<
    Vec<Result<crate::collection::PaymentReportOutcome, crate::StorageError>>,
    crate::StorageError,
>
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
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let mut results = Vec::with_capacity(payments.len());
    for payment in payments {
        sqlx::query("SAVEPOINT report").execute(&mut **tx).await?;
        let result = report_one_payment::<S>(tx, payment).await;
        let undone = !matches!(
            result,
            Ok(ref outcome) if *outcome != crate::collection::PaymentReportOutcome::ReversedEarlier
        );
        if undone {
            sqlx::query("ROLLBACK TO SAVEPOINT report")
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT report")
            .execute(&mut **tx)
            .await?;
        results.push(result);
    }
    Ok(results)
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
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    use crate::collection::PaymentOutcome;
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
    let region = payment.region.as_str();
    sqlx::query(
                    "INSERT INTO payments (payment_no, channel_id, channel_txn_id, order_no, region_code, amount_fen, paid_at, paid_on, status, fingerprint, response) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'refund_pending', $9, '')",
                )
                .bind(&payment.payment_no)
                .bind(&payment.channel_id)
                .bind(&payment.channel_txn_id)
                .bind(&payment.order_no)
                .bind(region)
                .bind(payment.amount_fen.as_fen())
                .bind(&payment.paid_at)
                .bind(payment.paid_on)
                .bind(&payment.fingerprint)
                .execute(&mut **tx)
                .await?;
    sqlx::query("UPDATE channel_keys SET region_code = $1, target = $2 WHERE channel_id = $3 AND key = $4 AND target IS NULL")
                    .bind(region)
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
    let earlier_reversal = match reversal {
        Some(r) => Some(EarlierReversal {
            funds_returned: r.try_get("funds_returned")?,
        }),
        None => None,
    };
    if let Some(order_no) = &payment.order_no {
        // Take the order's row before its payables, in the same order as expiry and cancel do.
        sqlx::query("UPDATE orders SET status = status WHERE region_code = $3 AND order_no = $1 AND channel_id = $2")
            .bind(order_no)
            .bind(&payment.channel_id)
            .bind(region)
            .execute(&mut **tx)
            .await?;
    }
    // The payables it names, with the payer's reserved name and the issuing region's name, locked
    // in payable order until the transaction ends, so what is decided on them still holds when it
    // is written.
    let mut views = Vec::new();
    if !payment.payable_ids.is_empty() {
        let mut q = Statement::<S::DB>::new(PAYABLE_VIEW_SELECT);
        q.push("WHERE y.region_code = ")
            .push_bind(region.to_owned())
            .push(" AND y.payable_id");
        S::push_id_list(&mut q, &payment.payable_ids);
        // Bytewise, the order in which orders and debit runs lock theirs too.
        q.push(" ORDER BY y.payable_id ");
        q.push(S::BYTE_ORDER);
        q.push(S::LOCK_PAYABLES);
        let (sql, args) = q.into_parts()?;
        let rows = sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut **tx)
            .await?;
        for r in &rows {
            views.push(record::<PayableView, _>(r)?);
        }
    }
    let found = views
        .iter()
        .map(|v| {
            Ok(PayableAtReport {
                payable_id: &v.payable.payable_id,
                amount: v.payable.amount_fen,
                status: v.payable.status,
                locked_by: v.payable.locked_by.as_deref(),
                locked_until: v.payable.locked_until,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let holder = payment
        .lock_holder
        .clone()
        .or_else(|| payment.order_no.clone())
        .unwrap_or_default();
    let report = PaymentReport {
        payable_ids: &payment.payable_ids,
        amount: payment.amount_fen,
        refund_all: payment.refund_all,
        earlier_reversal,
        holder: &holder,
        now: payment.now,
    };
    let decision = match decide_payment(&report, &found) {
        // The caller rolls back what this report wrote (its claim).
        PaymentDecision::Withdrawn => return Ok(PaymentReportOutcome::ReversedEarlier),
        PaymentDecision::Stored(decision) => decision,
    };
    // What was decided, in payable order: the order payables were locked in and receipts are
    // numbered in.
    let mut applied: Vec<AppliedPayable<'_>> = decision
        .applied
        .iter()
        .map(|&i| {
            let id = &payment.payable_ids[i];
            views
                .iter()
                .find(|v| &v.payable.payable_id == id)
                .map(|view| AppliedPayable {
                    payment,
                    index: i,
                    view,
                })
                .ok_or_else(|| StorageError::Other(format!("payable {id} decided but not read")))
        })
        .collect::<Result<_, _>>()?;
    applied.sort_by(|a, b| a.view.payable.payable_id.cmp(&b.view.payable.payable_id));
    let receipts = if applied.is_empty() {
        Vec::new()
    } else {
        write_applications::<S>(tx, payment, &applied).await?
    };
    let refund = match decision.owed_back {
        Some(owed) => {
            insert_refunds::<S>(tx, &[(payment, owed)]).await?;
            Some(refund_ref(payment, owed))
        }
        None => None,
    };
    let outcome = PaymentOutcome {
        payment_no: payment.payment_no.clone(),
        result: decision.status,
        receipts,
        refund,
    };
    let response = serde_json::to_string(&outcome).map_err(StorageError::corrupt)?;
    sqlx::query(
        "UPDATE payments SET status = $1, response = $2 WHERE region_code = $3 AND payment_no = $4",
    )
    .bind(decision.status.code())
    .bind(&response)
    .bind(region)
    .bind(&payment.payment_no)
    .execute(&mut **tx)
    .await?;
    if let (Some(order_no), false) = (&payment.order_no, applied.is_empty()) {
        sqlx::query(&format!(
            "UPDATE orders SET {} WHERE region_code = $3 AND order_no = $1 AND channel_id = $2 AND {}",
            order::PAY.set(),
            order::PAY.guard()
        ))
            .bind(order_no)
            .bind(&payment.channel_id)
            .bind(region)
            .execute(&mut **tx)
            .await?;
    }
    Ok(PaymentReportOutcome::Stored(outcome))
}

/// A payable a payment pays: the payment, the payable's index in what it names, and the payable
/// as read under lock.
#[derive(Clone, Copy)]
pub(crate) struct AppliedPayable<'a> {
    pub payment: &'a NewPayment,
    pub index: usize,
    pub view: &'a PayableView,
}

/// Writes what a payment pays, set-based: the payables paid, their applications, one receipt
/// each (numbers taken from the counter in one step, so they have no gaps) and one posting each
/// in the outbox. `applied` holds each payable in payable order; all are of the payment's region.
async fn write_applications<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    payment: &NewPayment,
    applied: &[AppliedPayable<'_>],
) -> Result<Vec<ReceiptRef>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<NaiveDate>: Encode<'q, S::DB>,
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let region = payment.region.as_str();
    apply_to_payables::<S>(tx, region, applied).await?;
    let code = receipt_code(payment);
    let first = take_receipt_numbers::<S>(tx, region, &code, applied.len() as i64).await?;
    let receipts = receipt_refs(applied, &code, first);
    insert_receipts_and_postings::<S>(tx, applied, &receipts).await?;
    Ok(receipts)
}

/// The receipts of payables paid, numbered on from `first` in their order.
pub(crate) fn receipt_refs(
    applied: &[AppliedPayable<'_>],
    code: &str,
    first: i64,
) -> Vec<ReceiptRef> {
    applied
        .iter()
        .zip(first..)
        .map(|(a, number)| ReceiptRef {
            payable_id: a.view.payable.payable_id.clone(),
            receipt_code: code.to_owned(),
            receipt_number: format!("{number:010}"),
            check_code: a
                .payment
                .check_codes
                .get(a.index)
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

/// The refund a payment owes, as its answer names it.
pub(crate) fn refund_ref(payment: &NewPayment, owed: OwedBack) -> RefundRef {
    RefundRef {
        refund_no: payment.refund_no.clone(),
        amount_fen: owed.amount,
        reason: owed.reason.code().to_owned(),
        due: payment.refund_due.date,
    }
}

/// Pays the payables, all of `region`, read under lock and found payable (each must move now),
/// and records their applications, whose unique index on active ones is the last word on
/// pay-once.
pub(crate) async fn apply_to_payables<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    region: &str,
    applied: &[AppliedPayable<'_>],
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
{
    let count = applied.len();
    let mut q = Statement::<S::DB>::new(format!(
        "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL WHERE {} AND region_code = ",
        payable::APPLY_PAYMENT.set(),
        payable::APPLY_PAYMENT.guard()
    ));
    q.push_bind(region.to_owned()).push(" AND payable_id");
    let ids: Vec<String> = applied
        .iter()
        .map(|a| a.view.payable.payable_id.clone())
        .collect();
    S::push_id_list(&mut q, &ids);
    let (sql, args) = q.into_parts()?;
    let taken = sqlx::query_with(&sql, S::arguments(args))
        .execute(&mut **tx)
        .await?;
    if S::rows_affected(&taken) != count as u64 {
        return Err(StorageError::Other(format!(
            "{} of {count} payables changed under lock",
            S::rows_affected(&taken)
        )));
    }
    let mut q = Statement::<S::DB>::new(
        "INSERT INTO payment_applications (payment_no, payable_id, region_code, amount_fen, active)",
    );
    q.push_values(applied, |row, a| {
        row.push_bind(a.payment.payment_no.clone())
            .push_bind(a.view.payable.payable_id.clone())
            .push_bind(a.view.payable.region.to_string())
            .push_bind(a.view.payable.amount_fen.as_fen())
            .push_bind(true);
    });
    let (sql, args) = q.into_parts()?;
    sqlx::query_with(&sql, S::arguments(args))
        .execute(&mut **tx)
        .await?;
    cancel_open_back_payments::<S>(tx, region, applied).await
}

/// A year's contribution paid fixes when its cover starts, so the back-payments (补缴修复) still
/// open for that person and year would shorten nothing any more: they are cancelled in the same
/// transaction, held by an order or not, and a channel paying one later (that order's report
/// included) gets the money back as a refund owed. One statement per fee year paid, on a
/// partial index that holds only open back-payments.
async fn cancel_open_back_payments<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    region: &str,
    applied: &[AppliedPayable<'_>],
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
{
    let contributions: Vec<&PayableView> = applied
        .iter()
        .map(|a| a.view)
        .filter(|v| v.payable.buys_back_year.is_none())
        .collect();
    if contributions.is_empty() {
        return Ok(());
    }
    // One statement per fee year paid (nearly always one), whose text does not change with the
    // number of persons (PostgreSQL parses it once per connection).
    let mut by_year: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for v in contributions {
        by_year
            .entry(i64::from(v.payable.fee_year.get()))
            .or_default()
            .push(v.payable.id_number.as_str().to_owned());
    }
    for (fee_year, persons) in by_year {
        // An order's hold goes with it: a cancelled back-payment keeps no holder nor expiry.
        let mut q = Statement::<S::DB>::new(format!(
            "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL \
             WHERE buys_back_year IS NOT NULL AND {} AND region_code = ",
            payable::MOOT.set(),
            payable::MOOT.guard()
        ));
        q.push_bind(region.to_owned())
            .push(" AND fee_year = ")
            .push_bind(fee_year)
            .push(" AND id_number");
        S::push_id_list(&mut q, &persons);
        let (sql, args) = q.into_parts()?;
        sqlx::query_with(&sql, S::arguments(args))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The receipt code a payment's receipts are issued under: its region and the year of issue.
pub(crate) fn receipt_code(payment: &NewPayment) -> String {
    let year = chrono::Datelike::year(&payment.issued_on) % 100;
    format!("{}{year:02}", payment.region.as_str())
}

/// Takes `count` numbers of a receipt code and answers the first. The counter row serialises
/// issuers of one code; taking a whole run at once keeps the numbers gapless and costs the same
/// two statements whatever the run's length.
pub(crate) async fn take_receipt_numbers<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    region: &str,
    code: &str,
    count: i64,
) -> Result<i64, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    sqlx::query("INSERT INTO receipt_counters (receipt_code, region_code, last_number) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
        .bind(code)
        .bind(region)
        .execute(&mut **tx)
        .await?;
    let last: i64 = sqlx::query_scalar(
        "UPDATE receipt_counters SET last_number = last_number + $3 WHERE region_code = $2 AND receipt_code = $1 RETURNING last_number",
    )
    .bind(code)
    .bind(region)
    .bind(count)
    .fetch_one(&mut **tx)
    .await?;
    Ok(last - count + 1)
}

/// Issues a receipt for each payable paid (`receipts` in the same order) and queues its posting
/// to the agency (到帐) in the outbox.
pub(crate) async fn insert_receipts_and_postings<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    applied: &[AppliedPayable<'_>],
    receipts: &[ReceiptRef],
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<NaiveDate>: Encode<'q, S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> Option<i64>: Encode<'q, S::DB>,
{
    let mut q = Statement::<S::DB>::new(
        "INSERT INTO receipts (receipt_code, receipt_number, region_code, check_code, payable_id, payment_no, id_number, \
         payer_name, fee_year, amount_fen, components, issued_on, issuer, status, cover_starts_on, cover_code, \
         buys_back_year, insured_number)",
    );
    q.push_values(applied.iter().zip(receipts), |row, (a, receipt)| {
        let v = a.view;
        let components = serde_json::json!([
            {"code": "basic", "name": "基本医疗保险", "amount": v.payable.basic_fen},
            {"code": "critical_illness", "name": "大病保险", "amount": v.payable.critical_illness_fen},
            {"code": "long_term_care", "name": "照护保险", "amount": v.payable.long_term_care_fen},
        ])
        .to_string();
        row.push_bind(receipt.receipt_code.clone())
            .push_bind(receipt.receipt_number.clone())
            .push_bind(v.payable.region.to_string())
            .push_bind(receipt.check_code.clone())
            .push_bind(v.payable.payable_id.clone())
            .push_bind(a.payment.payment_no.clone())
            .push_bind(v.payable.id_number.as_str().to_owned())
            .push_bind(v.name.clone())
            .push_bind(i32::from(v.payable.fee_year.get()))
            .push_bind(v.payable.amount_fen.as_fen())
            .push_bind(components)
            .push_bind(a.payment.issued_on)
            .push_bind(format!("国家税务总局{}税务局", v.region_name))
            .push_bind("valid");
        let cover = a.payment.cover.get(a.index).and_then(Option::as_ref);
        row.push_bind(cover.and_then(|c| c.starts_on))
            .push_bind(cover.map(|c| c.code.clone()))
            .push_bind(v.payable.buys_back_year.map(i64::from))
            .push_bind(v.insured_number.clone());
    });
    let (sql, args) = q.into_parts()?;
    sqlx::query_with(&sql, S::arguments(args))
        .execute(&mut **tx)
        .await?;
    let mut q = Statement::<S::DB>::new(
        "INSERT INTO outbox (event_id, region_code, kind, payable_id, payload, created_at, next_attempt_at)",
    );
    q.push_values(applied.iter().zip(receipts), |row, (a, receipt)| {
        let (payment, v, i) = (a.payment, a.view, a.index);
        let event_id = payment
            .event_ids
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("{}-{i}", payment.payment_no));
        let mut payload = serde_json::json!({
            "event_id": event_id, "kind": "payment_applied", "payable_id": v.payable.payable_id, "region": v.payable.region,
            "fee_year": v.payable.fee_year, "amount": v.payable.amount_fen, "payment_no": payment.payment_no,
            "channel_id": payment.channel_id, "paid_at": payment.paid_at,
            "receipt_code": receipt.receipt_code, "receipt_number": receipt.receipt_number,
        });
        if let Some(cover) = payment.cover.get(i).and_then(Option::as_ref) {
            payload["cover"] = serde_json::json!(cover);
        }
        if let Some(year) = v.payable.buys_back_year {
            payload["buys_back_year"] = serde_json::json!(year);
        }
        if let Some(number) = &v.insured_number {
            payload["insured_number"] = serde_json::json!(number);
        }
        let payload = payload.to_string();
        row.push_bind(event_id)
            .push_bind(v.payable.region.to_string())
            .push_bind("payment_applied")
            .push_bind(v.payable.payable_id.clone())
            .push_bind(payload)
            .push_bind(payment.now)
            .push_bind(payment.now);
    });
    let (sql, args) = q.into_parts()?;
    sqlx::query_with(&sql, S::arguments(args))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records the refunds owed by payments (nothing when there are none): each under the payment's
/// refund number, due two working days after it.
pub(crate) async fn insert_refunds<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    owed: &[(&NewPayment, OwedBack)],
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
{
    if owed.is_empty() {
        return Ok(());
    }
    let mut q = Statement::<S::DB>::new(
        "INSERT INTO refunds (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due, due_without_calendar)",
    );
    q.push_values(owed, |row, (payment, owed)| {
        row.push_bind(payment.refund_no.clone())
            .push_bind(payment.channel_id.clone())
            .push_bind(payment.payment_no.clone())
            .push_bind(payment.channel_txn_id.clone())
            .push_bind(payment.region.as_str().to_owned())
            .push_bind(owed.amount.as_fen())
            .push_bind(owed.reason.code())
            .push_bind("owed")
            .push_bind(payment.refund_due.date)
            .push_bind(!payment.refund_due.calendar_complete());
    });
    let (sql, args) = q.into_parts()?;
    sqlx::query_with(&sql, S::arguments(args))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
