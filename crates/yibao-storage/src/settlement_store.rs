//! The SQL of [`SettlementStorage`]: debit agreements and runs, reconciliation, refunds and
//! their reports, written once for both backends over a [`Dialect`] (issue 13). A bank's debit
//! successes go through the payment path of [`crate::collection_store`].

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection_store::{region_of, report_one_payment};
use crate::dialect::{Dialect, Statement};
use crate::rows::{
    debit_run_from_row, reconciliation_item_from_row, refund_state_from_row, DEBIT_RUN_SELECT,
    REFUND_SELECT,
};
use crate::settlement::SettlementStorage;

async fn agreement_members<DB>(
    conn: &mut DB::Connection,
    agreement_no: &str,
) -> Result<Vec<String>, crate::StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    Ok(sqlx::query_scalar(
        "SELECT id_number FROM debit_agreement_members WHERE agreement_no = $1 ORDER BY id_number",
    )
    .bind(agreement_no)
    .fetch_all(&mut *conn)
    .await?)
}

async fn agreement<DB>(
    conn: &mut DB::Connection,
    agreement_no: &str,
) -> Result<Option<crate::settlement::AgreementRecord>, crate::StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;
    let row = sqlx::query(
                "SELECT agreement_no, region_code, channel_id, payer_id_number, payer_name, account_masked, status, \
                 signed_on, cancelled_on FROM debit_agreements WHERE agreement_no = $1",
            )
            .bind(agreement_no)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(r) = row else { return Ok(None) };
    let members = agreement_members(conn, agreement_no).await?;
    Ok(Some(crate::settlement::AgreementRecord {
        agreement_no: r.try_get("agreement_no")?,
        region: r.try_get("region_code")?,
        channel_id: r.try_get("channel_id")?,
        payer_id_number: r.try_get("payer_id_number")?,
        payer_name: r.try_get("payer_name")?,
        account_masked: r.try_get("account_masked")?,
        status: r.try_get("status")?,
        signed_on: r.try_get("signed_on")?,
        cancelled_on: r.try_get("cancelled_on")?,
        members,
    }))
}

async fn is_auto_debit_channel<DB>(
    conn: &mut DB::Connection,
    channel_id: &str,
    region: &str,
) -> Result<bool, crate::StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM channels c JOIN channel_regions r ON r.channel_id = c.channel_id \
                 WHERE c.channel_id = $1 AND c.kind = 'auto_debit' AND r.region_code = $2",
    )
    .bind(channel_id)
    .bind(region)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

#[async_trait]
impl<S> SettlementStorage for S
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
    async fn sign_agreement(
        &self,
        a: &crate::settlement::NewAgreement,
    ) -> Result<crate::settlement::AgreementOutcome, crate::StorageError> {
        use crate::settlement::AgreementOutcome;
        std::assert!(
            !a.members.is_empty() && a.members.len() <= crate::settlement::MAX_AGREEMENT_MEMBERS,
            "the caller bounds an agreement's members"
        );
        let mut tx = self.begin_write().await?;
        if !is_auto_debit_channel(&mut *tx, &a.channel_id, &a.region).await? {
            return Ok(AgreementOutcome::NotAutoDebitChannel);
        }
        let inserted = sqlx::query(
                    "INSERT INTO debit_agreements (agreement_no, region_code, channel_id, payer_id_number, payer_name, \
                     account_masked, status, signed_on) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) ON CONFLICT DO NOTHING",
                )
                .bind(&a.agreement_no)
                .bind(&a.region)
                .bind(&a.channel_id)
                .bind(&a.payer_id_number)
                .bind(&a.payer_name)
                .bind(&a.account_masked)
                .bind(a.signed_on)
                .execute(&mut *tx)
                .await?;
        if S::rows_affected(&inserted) != 1 {
            return Ok(AgreementOutcome::Exists);
        }
        for member in &a.members {
            // The partial unique index on active members is the last word on one agreement per person.
            let added = sqlx::query(
                        "INSERT INTO debit_agreement_members (agreement_no, region_code, id_number, active) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&a.agreement_no)
                    .bind(&a.region)
                    .bind(member)
                    .bind(true)
                    .execute(&mut *tx)
                    .await?;
            if S::rows_affected(&added) != 1 {
                let other: Option<String> = sqlx::query_scalar(
                            "SELECT agreement_no FROM debit_agreement_members WHERE region_code = $1 AND id_number = $2 AND active = $3",
                        )
                        .bind(&a.region)
                        .bind(member)
                        .bind(true)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.rollback().await?;
                return Ok(AgreementOutcome::MemberCovered {
                    id_number: member.clone(),
                    agreement_no: other.unwrap_or_else(|| a.agreement_no.clone()),
                });
            }
        }
        let record = agreement(&mut *tx, &a.agreement_no).await?;
        tx.commit().await?;
        record
            .map(AgreementOutcome::Signed)
            .ok_or_else(|| crate::StorageError::corrupt("agreement vanished"))
    }

    async fn cancel_agreement(
        &self,
        agreement_no: &str,
        on: chrono::NaiveDate,
    ) -> Result<Option<crate::settlement::AgreementRecord>, crate::StorageError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE debit_agreements SET status = 'cancelled', cancelled_on = $1 WHERE agreement_no = $2 AND status = 'active'")
                    .bind(on)
                    .bind(agreement_no)
                    .execute(&mut *tx)
                    .await?;
        sqlx::query("UPDATE debit_agreement_members SET active = $1 WHERE agreement_no = $2")
            .bind(false)
            .bind(agreement_no)
            .execute(&mut *tx)
            .await?;
        let record = agreement(&mut *tx, agreement_no).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn agreement(
        &self,
        agreement_no: &str,
    ) -> Result<Option<crate::settlement::AgreementRecord>, crate::StorageError> {
        let mut conn = self.pool().acquire().await?;
        agreement(&mut *conn, agreement_no).await
    }

    async fn agreements(
        &self,
        region: Option<&str>,
        id_number: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::settlement::AgreementRecord>, crate::StorageError> {
        let nos: Vec<String> = sqlx::query_scalar(
                    "SELECT a.agreement_no FROM debit_agreements a \
                     WHERE (a.region_code = $1 OR $2) AND ($3 OR a.payer_id_number = $4 OR EXISTS \
                       (SELECT 1 FROM debit_agreement_members m WHERE m.region_code = a.region_code AND m.agreement_no = a.agreement_no AND m.id_number = $4)) \
                     ORDER BY a.agreement_no LIMIT $5",
                )
                .bind(region)
                .bind(region.is_none())
                .bind(id_number.is_none())
                .bind(id_number)
                .bind(limit as i64)
                .fetch_all(self.reads().pool())
                .await?;
        let mut conn = self.pool().acquire().await?;
        let mut out = Vec::with_capacity(nos.len());
        for no in nos {
            if let Some(a) = agreement(&mut *conn, &no).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn create_debit_run(
        &self,
        run: &crate::settlement::NewDebitRun,
    ) -> Result<crate::settlement::DebitRunOutcome, crate::StorageError> {
        use crate::settlement::{DebitRunOutcome, MAX_DEBIT_BATCH};
        use sqlx::Row as _;
        let mut tx = self.begin_write().await?;
        if !is_auto_debit_channel(&mut *tx, &run.channel_id, &run.region).await? {
            return Ok(DebitRunOutcome::NotAutoDebitChannel);
        }
        let existing = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE channel_id = $1 AND region_code = $2 AND fee_year = $3 AND debit_date = $4"))
                    .bind(&run.channel_id)
                    .bind(&run.region)
                    .bind(run.fee_year)
                    .bind(run.debit_date)
                    .fetch_optional(&mut *tx)
                    .await?;
        if let Some(r) = existing {
            return Ok(DebitRunOutcome::Exists(debit_run_from_row(&r)?));
        }
        let holder = crate::settlement::debit_lock_holder(&run.run_no);
        // Take the locks first, conditionally on the payable still being payable: a payment racing
        // in between leaves that payable out of the run rather than in it twice.
        let candidates = sqlx::query(
                    "SELECT y.payable_id FROM payables y \
                     JOIN debit_agreement_members m ON m.region_code = y.region_code AND m.id_number = y.id_number AND m.active = $1 \
                     JOIN debit_agreements a ON a.region_code = m.region_code AND a.agreement_no = m.agreement_no AND a.status = 'active' AND a.channel_id = $2 \
                     WHERE y.region_code = $3 AND y.fee_year = $4 AND y.amount_fen > 0 \
                       AND (y.status = 'unpaid' OR (y.status = 'locked' AND y.locked_until <= $5)) \
                     ORDER BY y.payable_id LIMIT $6",
                )
                .bind(true)
                .bind(&run.channel_id)
                .bind(&run.region)
                .bind(run.fee_year)
                .bind(run.now)
                .bind((MAX_DEBIT_BATCH + 1) as i64)
                .fetch_all(&mut *tx)
                .await?;
        if candidates.len() > MAX_DEBIT_BATCH {
            return Ok(DebitRunOutcome::TooMany {
                candidates: candidates.len(),
            });
        }
        let inserted = sqlx::query(
                    "INSERT INTO debit_runs (run_no, region_code, channel_id, fee_year, debit_date, status, item_count, total_fen, lock_until, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 'sent', 0, 0, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&run.run_no)
                .bind(&run.region)
                .bind(&run.channel_id)
                .bind(run.fee_year)
                .bind(run.debit_date)
                .bind(run.lock_until)
                .bind(run.now)
                .execute(&mut *tx)
                .await?;
        if S::rows_affected(&inserted) != 1 {
            // A concurrent request created the same run (bank, region, year, date) first.
            drop(tx);
            let row = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE channel_id = $1 AND region_code = $2 AND fee_year = $3 AND debit_date = $4"))
                        .bind(&run.channel_id)
                        .bind(&run.region)
                        .bind(run.fee_year)
                        .bind(run.debit_date)
                        .fetch_one(self.pool())
                        .await?;
            return Ok(DebitRunOutcome::Exists(debit_run_from_row(&row)?));
        }
        let mut seq: i64 = 0;
        let mut total: i64 = 0;
        for c in &candidates {
            let payable_id: String = c.try_get("payable_id")?;
            let locked = sqlx::query(
                        "UPDATE payables SET status = 'locked', locked_by = $1, locked_until = $2 \
                         WHERE payable_id = $3 AND (status = 'unpaid' OR (status = 'locked' AND locked_until <= $4)) \
                         RETURNING region_code, id_number, amount_fen",
                    )
                    .bind(&holder)
                    .bind(run.lock_until)
                    .bind(&payable_id)
                    .bind(run.now)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(locked) = locked else { continue };
            let region: String = locked.try_get("region_code")?;
            let id_number: String = locked.try_get("id_number")?;
            let amount: i64 = locked.try_get("amount_fen")?;
            let agreement_no: Option<String> = sqlx::query_scalar(
                        "SELECT agreement_no FROM debit_agreement_members WHERE region_code = $1 AND id_number = $2 AND active = $3",
                    )
                    .bind(&region)
                    .bind(&id_number)
                    .bind(true)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(agreement_no) = agreement_no else {
                // The agreement was cancelled meanwhile: not this run's to debit.
                sqlx::query("UPDATE payables SET status = 'unpaid', locked_by = NULL, locked_until = NULL WHERE payable_id = $1 AND locked_by = $2")
                            .bind(&payable_id)
                            .bind(&holder)
                            .execute(&mut *tx)
                            .await?;
                continue;
            };
            seq += 1;
            total += amount;
            sqlx::query(
                        "INSERT INTO debit_run_items (run_no, seq, item_ref, region_code, payable_id, agreement_no, id_number, amount_fen, outcome) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
                    )
                    .bind(&run.run_no)
                    .bind(seq)
                    .bind(format!("{}-{seq:06}", run.run_no))
                    .bind(&region)
                    .bind(&payable_id)
                    .bind(&agreement_no)
                    .bind(&id_number)
                    .bind(amount)
                    .execute(&mut *tx)
                    .await?;
        }
        sqlx::query("UPDATE debit_runs SET item_count = $1, total_fen = $2 WHERE run_no = $3")
            .bind(seq)
            .bind(total)
            .bind(&run.run_no)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE run_no = $1"))
            .bind(&run.run_no)
            .fetch_one(&mut *tx)
            .await?;
        let record = debit_run_from_row(&row)?;
        tx.commit().await?;
        Ok(DebitRunOutcome::Created(record))
    }

    async fn debit_run(
        &self,
        run_no: &str,
    ) -> Result<Option<crate::settlement::DebitRunRecord>, crate::StorageError> {
        let row = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE run_no = $1"))
            .bind(run_no)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(debit_run_from_row).transpose()
    }

    async fn debit_runs(
        &self,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::settlement::DebitRunRecord>, crate::StorageError> {
        let rows = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE (region_code = $1 OR $2) ORDER BY debit_date DESC, run_no LIMIT $3"))
                    .bind(region)
                    .bind(region.is_none())
                    .bind(limit as i64)
                    .fetch_all(self.reads().pool())
                    .await?;
        rows.iter().map(debit_run_from_row).collect()
    }

    async fn debit_run_items(
        &self,
        run_no: &str,
        outcome: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::settlement::DebitItemRecord>, crate::StorageError> {
        use sqlx::Row as _;
        let rows = sqlx::query(
                    "SELECT i.seq, i.item_ref, i.region_code, i.payable_id, i.agreement_no, i.id_number, COALESCE(p.name, '') AS name, \
                     COALESCE(a.payer_id_number, '') AS holder_id_number, COALESCE(a.payer_name, '') AS holder_name, \
                     i.amount_fen, i.outcome, i.bank_txn_id, i.failure_code, i.failure_reason, i.payment_no \
                     FROM debit_run_items i LEFT JOIN persons p ON p.region_code = i.region_code AND p.id_number = i.id_number \
                     LEFT JOIN debit_agreements a ON a.region_code = i.region_code AND a.agreement_no = i.agreement_no \
                     WHERE i.run_no = $1 AND (i.outcome = $2 OR $3) ORDER BY i.seq LIMIT $4",
                )
                .bind(run_no)
                .bind(outcome)
                .bind(outcome.is_none())
                .bind(limit as i64)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::settlement::DebitItemRecord {
                    seq: r.try_get("seq")?,
                    item_ref: r.try_get("item_ref")?,
                    region: r.try_get("region_code")?,
                    payable_id: r.try_get("payable_id")?,
                    agreement_no: r.try_get("agreement_no")?,
                    id_number: r.try_get("id_number")?,
                    name: r.try_get("name")?,
                    holder_id_number: r.try_get("holder_id_number")?,
                    holder_name: r.try_get("holder_name")?,
                    amount_fen: r.try_get("amount_fen")?,
                    outcome: r.try_get("outcome")?,
                    bank_txn_id: r.try_get("bank_txn_id")?,
                    failure_code: r.try_get("failure_code")?,
                    failure_reason: r.try_get("failure_reason")?,
                    payment_no: r.try_get("payment_no")?,
                })
            })
            .collect()
    }

    async fn claim_debit_result(
        &self,
        run_no: &str,
        file_sha256: &str,
    ) -> Result<crate::settlement::DebitResultClaim, crate::StorageError> {
        use crate::settlement::DebitResultClaim;
        let mut tx = self.begin_write().await?;
        // A result is accepted for an abandoned run too: the bank may have taken money after all,
        // and money taken is never lost (the payable is paid, or the money owed back).
        sqlx::query(
            "UPDATE debit_runs SET result_sha256 = $1 WHERE run_no = $2 AND result_sha256 IS NULL",
        )
        .bind(file_sha256)
        .bind(run_no)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE run_no = $1"))
            .bind(run_no)
            .fetch_optional(&mut *tx)
            .await?;
        let claimed: Option<String> =
            sqlx::query_scalar("SELECT result_sha256 FROM debit_runs WHERE run_no = $1")
                .bind(run_no)
                .fetch_optional(&mut *tx)
                .await?
                .flatten();
        tx.commit().await?;
        let Some(row) = row else {
            return Ok(DebitResultClaim::NotFound);
        };
        if claimed.as_deref() != Some(file_sha256) {
            return Ok(DebitResultClaim::OtherFile);
        }
        Ok(DebitResultClaim::Proceed(debit_run_from_row(&row)?))
    }

    async fn apply_debit_results(
        &self,
        run_no: &str,
        results: &[crate::settlement::DebitItemResult],
    ) -> Result<Vec<Option<crate::collection::PaymentReportOutcome>>, crate::StorageError> {
        use crate::settlement::DebitItemResult;
        let holder = crate::settlement::debit_lock_holder(run_no);
        let mut tx = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(results.len());
        for result in results {
            let seq = match result {
                DebitItemResult::Succeeded { seq, .. } | DebitItemResult::Failed { seq, .. } => {
                    *seq
                }
            };
            let item: Option<(String, String)> = sqlx::query_as(
                "SELECT payable_id, outcome FROM debit_run_items WHERE run_no = $1 AND seq = $2",
            )
            .bind(run_no)
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
            // Decided by an earlier import of the same file: skip.
            let Some((payable_id, outcome)) = item else {
                outcomes.push(None);
                continue;
            };
            if outcome == "succeeded" || outcome == "failed" {
                outcomes.push(None);
                continue;
            }
            match result {
                DebitItemResult::Succeeded { payment, .. } => {
                    std::assert_eq!(
                        payment.lock_holder.as_deref(),
                        Some(holder.as_str()),
                        "a debit payment holds its run's lock"
                    );
                    sqlx::query("SAVEPOINT debit_item")
                        .execute(&mut *tx)
                        .await?;
                    let stored = report_one_payment::<S>(&mut tx, payment).await?;
                    let payment_no = match &stored {
                        crate::collection::PaymentReportOutcome::Stored(o) => {
                            Some(o.payment_no.clone())
                        }
                        crate::collection::PaymentReportOutcome::Existing { outcome, .. } => {
                            Some(outcome.payment_no.clone())
                        }
                        crate::collection::PaymentReportOutcome::ReversedEarlier => None,
                    };
                    if payment_no.is_none() {
                        sqlx::query("ROLLBACK TO SAVEPOINT debit_item")
                            .execute(&mut *tx)
                            .await?;
                    } else {
                        sqlx::query("RELEASE SAVEPOINT debit_item")
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query(
                                "UPDATE debit_run_items SET outcome = 'succeeded', bank_txn_id = $1, payment_no = $2 WHERE run_no = $3 AND seq = $4",
                            )
                            .bind(&payment.channel_txn_id)
                            .bind(&payment_no)
                            .bind(run_no)
                            .bind(seq)
                            .execute(&mut *tx)
                            .await?;
                    outcomes.push(Some(stored));
                }
                DebitItemResult::Failed { code, reason, .. } => {
                    sqlx::query(
                                "UPDATE payables SET status = 'unpaid', locked_by = NULL, locked_until = NULL \
                                 WHERE payable_id = $1 AND status = 'locked' AND locked_by = $2",
                            )
                            .bind(&payable_id)
                            .bind(&holder)
                            .execute(&mut *tx)
                            .await?;
                    sqlx::query(
                                "UPDATE debit_run_items SET outcome = 'failed', failure_code = $1, failure_reason = $2 WHERE run_no = $3 AND seq = $4",
                            )
                            .bind(code)
                            .bind(reason)
                            .bind(run_no)
                            .bind(seq)
                            .execute(&mut *tx)
                            .await?;
                    outcomes.push(None);
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn complete_debit_run(
        &self,
        run_no: &str,
        summary: &str,
        now: i64,
    ) -> Result<(), crate::StorageError> {
        let mut tx = self.begin_write().await?;
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM debit_run_items WHERE run_no = $1 AND outcome = 'pending'",
        )
        .bind(run_no)
        .fetch_one(&mut *tx)
        .await?;
        if pending != 0 {
            return Err(crate::StorageError::corrupt(format!(
                "run {run_no} completed with {pending} items undecided"
            )));
        }
        // Whatever this run still holds (nothing, normally) is released.
        sqlx::query("UPDATE payables SET status = 'unpaid', locked_by = NULL, locked_until = NULL WHERE status = 'locked' AND locked_by = $1")
                    .bind(crate::settlement::debit_lock_holder(run_no))
                    .execute(&mut *tx)
                    .await?;
        sqlx::query("UPDATE debit_runs SET status = 'completed', result_summary = $1, completed_at = $2 WHERE run_no = $3 AND status <> 'completed'")
                    .bind(summary)
                    .bind(now)
                    .bind(run_no)
                    .execute(&mut *tx)
                    .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn abandon_expired_debit_runs(&self, now: i64) -> Result<u64, crate::StorageError> {
        let mut tx = self.begin_write().await?;
        let runs: Vec<String> = sqlx::query_scalar(
                    "SELECT run_no FROM debit_runs WHERE status = 'sent' AND lock_until <= $1 AND result_sha256 IS NULL ORDER BY run_no LIMIT 100",
                )
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
        let mut abandoned = 0;
        for run_no in &runs {
            // Conditional: a result claimed meanwhile keeps the run (and its locks) for the import.
            let claimed = sqlx::query("UPDATE debit_runs SET status = 'abandoned', completed_at = $1 WHERE run_no = $2 AND status = 'sent' AND result_sha256 IS NULL")
                        .bind(now)
                        .bind(run_no)
                        .execute(&mut *tx)
                        .await?;
            if S::rows_affected(&claimed) != 1 {
                continue;
            }
            abandoned += 1;
            sqlx::query("UPDATE payables SET status = 'unpaid', locked_by = NULL, locked_until = NULL WHERE status = 'locked' AND locked_by = $1")
                        .bind(crate::settlement::debit_lock_holder(run_no))
                        .execute(&mut *tx)
                        .await?;
            sqlx::query("UPDATE debit_run_items SET outcome = 'released' WHERE run_no = $1 AND outcome = 'pending'")
                        .bind(run_no)
                        .execute(&mut *tx)
                        .await?;
        }
        tx.commit().await?;
        Ok(abandoned)
    }

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
        use sqlx::Row as _;
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
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(yibao_domain::reconciliation::PlatformPayment {
                    channel_txn_id: r.try_get("channel_txn_id")?,
                    payment_no: r.try_get("payment_no")?,
                    amount_fen: r.try_get("amount_fen")?,
                    reversed: status == "reversed",
                    region: r.try_get("region_code")?,
                })
            })
            .collect()
    }

    async fn statement_bookings(
        &self,
        channel_id: &str,
        day: chrono::NaiveDate,
    ) -> Result<Vec<yibao_domain::reconciliation::StatementBooking>, crate::StorageError> {
        use sqlx::Row as _;
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
                let status: String = r.try_get("status")?;
                Ok(yibao_domain::reconciliation::StatementBooking {
                    channel_txn_id: r.try_get("channel_txn_id")?,
                    payment_no: r.try_get("payment_no")?,
                    amount_fen: r.try_get("amount_fen")?,
                    region: r.try_get("region_code")?,
                    reversed: status == "reversed",
                    receipts_issued: r.try_get::<i64, _>("receipts")? > 0,
                    refund_handed_over: r.try_get::<i64, _>("handed_over")? > 0,
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
        use sqlx::Row as _;
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
                out.push(crate::settlement::PaymentOnAnyDay {
                    channel_txn_id: r.try_get("channel_txn_id")?,
                    payment_no: r.try_get("payment_no")?,
                    amount_fen: r.try_get("amount_fen")?,
                    status: r.try_get("status")?,
                    paid_on: r.try_get("paid_on")?,
                    region: r.try_get("region_code")?,
                });
            }
        }
        Ok(out)
    }

    async fn refunds_by_no(
        &self,
        channel_id: &str,
        refund_nos: &[String],
    ) -> Result<Vec<crate::settlement::RefundLookup>, crate::StorageError> {
        use sqlx::Row as _;
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
                out.push(crate::settlement::RefundLookup {
                    refund_no: r.try_get("refund_no")?,
                    channel_txn_id: r.try_get("channel_txn_id")?,
                    amount_fen: r.try_get("amount_fen")?,
                    status: r.try_get("status")?,
                });
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
        rows.iter().map(reconciliation_item_from_row).collect()
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
                    .bind(item.status)
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
                    "SELECT * FROM reconciliation_items WHERE (channel_id = $1 OR $2) AND statement_date BETWEEN $3 AND $4 \
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
        rows.iter().map(reconciliation_item_from_row).collect()
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
        use sqlx::Row as _;
        let rows = sqlx::query(
                    "SELECT channel_id, statement_date, format, lines, summary FROM statements \
                     WHERE (channel_id = $1 OR $2) AND statement_date BETWEEN $3 AND $4 ORDER BY statement_date, channel_id LIMIT $5",
                )
                .bind(channel_id)
                .bind(channel_id.is_none())
                .bind(from)
                .bind(to)
                .bind(limit as i64)
                .fetch_all(self.reads().pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::settlement::StatementRecord {
                    channel_id: r.try_get("channel_id")?,
                    day: r.try_get("statement_date")?,
                    format: r.try_get("format")?,
                    lines: r.try_get("lines")?,
                    summary: r.try_get("summary")?,
                })
            })
            .collect()
    }

    async fn refund_paid_payable(
        &self,
        refund: &crate::settlement::NewPayableRefund,
    ) -> Result<crate::settlement::PayableRefundOutcome, crate::StorageError> {
        use crate::settlement::PayableRefundOutcome;
        std::assert!(
            matches!(refund.payable_after, "unpaid" | "cancelled"),
            "a refunded payable is unpaid or cancelled"
        );
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
        sqlx::query("UPDATE payables SET status = $1 WHERE region_code = $3 AND payable_id = $2 AND status IN ('paid', 'posted')")
                    .bind(refund.payable_after)
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
        let state = refund_state_from_row(&row)?;
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
            let mut q = Statement::<S::DB>::new("UPDATE refunds SET status = 'sent', attempts = attempts + 1, updated_at = CURRENT_TIMESTAMP WHERE status IN ('owed', 'failed') AND attempts < ");
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
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM refunds WHERE refund_no = $1")
                .bind(refund_no)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(status) = status else {
            return Ok(RefundRetryOutcome::NotFound);
        };
        if status != "failed" {
            return Ok(RefundRetryOutcome::NotFailed(status));
        }
        sqlx::query("UPDATE refunds SET status = 'owed', attempts = 0, updated_at = CURRENT_TIMESTAMP WHERE refund_no = $1 AND status = 'failed'")
                    .bind(refund_no)
                    .execute(&mut *tx)
                    .await?;
        let row = sqlx::query(&format!("{REFUND_SELECT}WHERE refund_no = $1"))
            .bind(refund_no)
            .fetch_one(&mut *tx)
            .await?;
        let state = refund_state_from_row(&row)?;
        tx.commit().await?;
        Ok(RefundRetryOutcome::Rearmed(state))
    }

    async fn refunds(
        &self,
        status: Option<&str>,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::collection::RefundState>, crate::StorageError> {
        let rows = sqlx::query(&format!("{REFUND_SELECT}WHERE (status = $1 OR $2) AND (region_code = $3 OR $4) ORDER BY due, refund_no LIMIT $5"))
                    .bind(status)
                    .bind(status.is_none())
                    .bind(region)
                    .bind(region.is_none())
                    .bind(limit as i64)
                    .fetch_all(self.reads().pool())
                    .await?;
        rows.iter().map(refund_state_from_row).collect()
    }

    async fn daily_collection(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        region: Option<&str>,
    ) -> Result<Vec<crate::settlement::CollectionRow>, crate::StorageError> {
        use sqlx::Row as _;
        let rows = sqlx::query(
                    "SELECT p.paid_on, p.channel_id, a.region_code, COUNT(*) AS payables, CAST(SUM(a.amount_fen) AS BIGINT) AS applied_fen \
                     FROM payments p JOIN payment_applications a ON a.region_code = p.region_code AND a.payment_no = p.payment_no AND a.active = $1 \
                     WHERE p.paid_on BETWEEN $2 AND $3 AND (a.region_code = $4 OR $5) \
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
            .map(|r| {
                Ok(crate::settlement::CollectionRow {
                    day: r.try_get("paid_on")?,
                    channel_id: r.try_get("channel_id")?,
                    region: r.try_get("region_code")?,
                    payables: r.try_get("payables")?,
                    applied_fen: r.try_get::<Option<i64>, _>("applied_fen")?.unwrap_or(0),
                })
            })
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
                     AND (region_code = $3 OR $4) GROUP BY due, channel_id",
                )
                .bind(from)
                .bind(to)
                .bind(region)
                .bind(region.is_none())
                .fetch_all(self.reads().pool())
                .await?;
        let settled: Vec<(chrono::NaiveDate, String, i64, i64)> = sqlx::query_as(
                    "SELECT settled_on, channel_id, COUNT(*), CAST(SUM(amount_fen) AS BIGINT) FROM refunds WHERE status = 'succeeded' AND settled_on BETWEEN $1 AND $2 \
                     AND (region_code = $3 OR $4) GROUP BY settled_on, channel_id",
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
