//! Auto-debit (批量代扣): agreements (签约) and runs, whose payables stay locked until the
//! bank's results are applied. Written once for both backends over a [`Dialect`] (issue 13).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::collection::PaymentReportOutcome;
use crate::dialect::{Dialect, Statement};
use crate::payments::report_each_in_savepoint;
use crate::rows::{record, DEBIT_RUN_SELECT};
use crate::settlement::{
    AgreementOutcome, AgreementRecord, DebitItemRecord, DebitItemResult, DebitResultClaim,
    DebitRunOutcome, DebitRunRecord, NewAgreement, NewDebitRun,
};
use crate::status_moves::payable;
use crate::StorageError;

/// Auto-debit agreements and runs.
#[async_trait]
pub trait DebitStore: Send + Sync {
    async fn sign_agreement(
        &self,
        agreement: &NewAgreement,
    ) -> Result<AgreementOutcome, StorageError>;

    /// Cancels the region's active agreement numbered `agreement_no` from `on`; its members may
    /// sign another. `None` if the region has none of that number.
    async fn cancel_agreement(
        &self,
        region: &str,
        agreement_no: &str,
        on: NaiveDate,
    ) -> Result<Option<AgreementRecord>, StorageError>;

    /// The region's agreement numbered `agreement_no`: a number is the bank's, unique within its
    /// region only.
    async fn agreement(
        &self,
        region: &str,
        agreement_no: &str,
    ) -> Result<Option<AgreementRecord>, StorageError>;

    /// The regions (in order, at most `limit`) holding an agreement numbered `agreement_no`: a
    /// statement over every region, for a caller that was given the number alone.
    async fn agreement_regions(
        &self,
        agreement_no: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError>;

    /// Agreements of one region, or of every region but the sandbox's (接入测试) with `None`.
    async fn agreements(
        &self,
        region: Option<&str>,
        id_number: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AgreementRecord>, StorageError>;

    /// Creates a run and locks, in one transaction, every payable of the region and fee year that is
    /// payable and whose person is under an active agreement with the bank.
    async fn create_debit_run(&self, run: &NewDebitRun) -> Result<DebitRunOutcome, StorageError>;

    /// The payables a run of the bank, region and fee year would take now (at most
    /// [`crate::settlement::MAX_DEBIT_BATCH`] + 1), before any class the channel rules leave out:
    /// for the service to decide, before creating the run, which the 2025 rules refuse.
    async fn debit_run_candidates(
        &self,
        channel_id: &str,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        now: i64,
    ) -> Result<Vec<String>, StorageError>;

    async fn debit_run(&self, run_no: &str) -> Result<Option<DebitRunRecord>, StorageError>;

    /// Runs of one region, or of every region but the sandbox's (接入测试) with `None`: a test
    /// channel's runs are no clerk's work.
    async fn debit_runs(
        &self,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DebitRunRecord>, StorageError>;

    /// Items in sequence order, optionally only those with one outcome.
    async fn debit_run_items(
        &self,
        run_no: &str,
        outcome: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DebitItemRecord>, StorageError>;

    /// Records which result file is applied to the run; the same file again may proceed.
    async fn claim_debit_result(
        &self,
        run_no: &str,
        file_sha256: &str,
    ) -> Result<DebitResultClaim, StorageError>;

    /// Applies results for some items in one transaction: successes through the payment path,
    /// failures unlocked. Items already decided are skipped (a re-import resumes). Returns the
    /// outcome of each success in order.
    async fn apply_debit_results(
        &self,
        run_no: &str,
        results: &[DebitItemResult],
    ) -> Result<Vec<Option<PaymentReportOutcome>>, StorageError>;

    /// Marks the run completed with its summary once every item is decided.
    async fn complete_debit_run(
        &self,
        run_no: &str,
        summary: &str,
        now: i64,
    ) -> Result<(), StorageError>;

    /// Abandons runs whose lock bound passed without a result: their pending items are released
    /// and the payables unlocked. Returns how many runs.
    async fn abandon_expired_debit_runs(&self, now: i64) -> Result<u64, StorageError>;
}

#[async_trait]
impl<S> DebitStore for S
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<&'q str>: Encode<'q, S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
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
        if !is_auto_debit_channel(&mut *tx, &a.channel_id, a.region.as_str()).await? {
            return Ok(AgreementOutcome::NotAutoDebitChannel);
        }
        let inserted = sqlx::query(
                    "INSERT INTO debit_agreements (agreement_no, region_code, channel_id, payer_id_number, payer_name, \
                     account_masked, status, signed_on) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) ON CONFLICT DO NOTHING",
                )
                .bind(&a.agreement_no)
                .bind(a.region.as_str())
                .bind(&a.channel_id)
                .bind(a.payer_id_number.as_str())
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
                    .bind(a.region.as_str())
                    .bind(member)
                    .bind(true)
                    .execute(&mut *tx)
                    .await?;
            if S::rows_affected(&added) != 1 {
                let other: Option<String> = sqlx::query_scalar(
                            "SELECT agreement_no FROM debit_agreement_members WHERE region_code = $1 AND id_number = $2 AND active = $3",
                        )
                        .bind(a.region.as_str())
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
        let record = agreement(&mut *tx, a.region.as_str(), &a.agreement_no).await?;
        tx.commit().await?;
        record
            .map(AgreementOutcome::Signed)
            .ok_or_else(|| crate::StorageError::corrupt("agreement vanished"))
    }

    async fn cancel_agreement(
        &self,
        region: &str,
        agreement_no: &str,
        on: chrono::NaiveDate,
    ) -> Result<Option<crate::settlement::AgreementRecord>, crate::StorageError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE debit_agreements SET status = 'cancelled', cancelled_on = $1 WHERE region_code = $3 AND agreement_no = $2 AND status = 'active'")
                    .bind(on)
                    .bind(agreement_no)
                    .bind(region)
                    .execute(&mut *tx)
                    .await?;
        sqlx::query("UPDATE debit_agreement_members SET active = $1 WHERE region_code = $3 AND agreement_no = $2")
            .bind(false)
            .bind(agreement_no)
            .bind(region)
            .execute(&mut *tx)
            .await?;
        let record = agreement(&mut *tx, region, agreement_no).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn agreement(
        &self,
        region: &str,
        agreement_no: &str,
    ) -> Result<Option<crate::settlement::AgreementRecord>, crate::StorageError> {
        let mut conn = self.pool().acquire().await?;
        agreement(&mut *conn, region, agreement_no).await
    }

    async fn agreement_regions(
        &self,
        agreement_no: &str,
        limit: usize,
    ) -> Result<Vec<String>, crate::StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT region_code FROM debit_agreements WHERE agreement_no = $1 ORDER BY region_code LIMIT $2",
        )
        .bind(agreement_no)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?)
    }

    async fn agreements(
        &self,
        region: Option<&str>,
        id_number: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::settlement::AgreementRecord>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT a.agreement_no, a.region_code, a.channel_id, a.payer_id_number, a.payer_name, a.account_masked, \
                     a.status, a.signed_on, a.cancelled_on FROM debit_agreements a \
                     WHERE (a.region_code = $1 OR ($2 AND a.region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) AND ($3 OR a.payer_id_number = $4 OR EXISTS \
                       (SELECT 1 FROM debit_agreement_members m WHERE m.region_code = a.region_code AND m.agreement_no = a.agreement_no AND m.id_number = $4)) \
                     ORDER BY a.agreement_no, a.region_code LIMIT $5",
                )
                .bind(region)
                .bind(region.is_none())
                .bind(id_number.is_none())
                .bind(id_number)
                .bind(limit as i64)
                .fetch_all(self.reads().pool())
                .await?;
        let mut out = rows
            .iter()
            .map(record::<crate::settlement::AgreementRecord, _>)
            .collect::<Result<Vec<_>, _>>()?;
        // The members: one statement a region and `MEMBERS_READ_CHUNK` agreements, not two a
        // row (a region's list is up to `MAX_LIST_ROWS` agreements).
        let mut of_region: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut at: std::collections::HashMap<(String, String), usize> = Default::default();
        for (i, a) in out.iter().enumerate() {
            of_region
                .entry(a.region.as_str().to_owned())
                .or_default()
                .push(a.agreement_no.clone());
            at.insert((a.region.as_str().to_owned(), a.agreement_no.clone()), i);
        }
        for (region, nos) in of_region {
            for chunk in nos.chunks(MEMBERS_READ_CHUNK) {
                let mut q = Statement::<S::DB>::new(
                    "SELECT agreement_no, id_number FROM debit_agreement_members WHERE region_code = ",
                );
                q.push_bind(region.clone());
                q.push(" AND agreement_no");
                S::push_id_list(&mut q, chunk);
                q.push(" ORDER BY agreement_no, id_number");
                let (sql, args) = q.into_parts()?;
                let members: Vec<(String, String)> = sqlx::query_as_with(&sql, S::arguments(args))
                    .fetch_all(self.reads().pool())
                    .await?;
                for (no, id_number) in members {
                    if let Some(&i) = at.get(&(region.clone(), no)) {
                        out[i].members.push(id_number);
                    }
                }
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
        if !is_auto_debit_channel(&mut *tx, &run.channel_id, run.region.as_str()).await? {
            return Ok(DebitRunOutcome::NotAutoDebitChannel);
        }
        let existing = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE channel_id = $1 AND region_code = $2 AND fee_year = $3 AND debit_date = $4"))
                    .bind(&run.channel_id)
                    .bind(run.region.as_str())
                    .bind(i32::from(run.fee_year.get()))
                    .bind(run.debit_date)
                    .fetch_optional(&mut *tx)
                    .await?;
        if let Some(r) = existing {
            return Ok(DebitRunOutcome::Exists(record::<DebitRunRecord, _>(&r)?));
        }
        let holder = crate::settlement::debit_lock_holder(&run.run_no);
        // Take the locks first, conditionally on the payable still being payable: a payment racing
        // in between leaves that payable out of the run rather than in it twice.
        // The region's channel rules may keep subsidised payables, or those of the full amount,
        // from auto-debit.
        let classes = match (run.skip_subsidised, run.skip_full) {
            (true, _) => " AND y.relief_kind IS NULL",
            (false, true) => " AND y.relief_kind IS NOT NULL",
            (false, false) => "",
        };
        let candidates = sqlx::query(&debit_candidates_sql(classes))
            .bind(true)
            .bind(&run.channel_id)
            .bind(run.region.as_str())
            .bind(i32::from(run.fee_year.get()))
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
                .bind(run.region.as_str())
                .bind(&run.channel_id)
                .bind(i32::from(run.fee_year.get()))
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
                        .bind(run.region.as_str())
                        .bind(i32::from(run.fee_year.get()))
                        .bind(run.debit_date)
                        .fetch_one(self.pool())
                        .await?;
            return Ok(DebitRunOutcome::Exists(record::<DebitRunRecord, _>(&row)?));
        }
        // Locked in payable order, bytewise, as payments and orders lock theirs (no deadlock).
        let mut candidates: Vec<String> = candidates
            .iter()
            .map(|c| c.try_get("payable_id"))
            .collect::<Result<_, _>>()?;
        if !run.leave_out.is_empty() {
            let leave_out: std::collections::HashSet<&String> = run.leave_out.iter().collect();
            candidates.retain(|c| !leave_out.contains(c));
        }
        candidates.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        // One statement a payable (locked in order, so never in a deadlock with a payment),
        // naming its agreement; the items are written a thousand to a statement afterwards.
        // `m.active` is written out as the index's own condition, not bound: only then can
        // the partial unique index of active members serve a plan made for any parameters.
        // PostgreSQL's cost of a plan leaves out a subquery of RETURNING, so it would soon use
        // a generic plan that read the region's members for each payable (165 s for 50 000
        // against 22 s).
        let mut items: Vec<NewDebitItem> = Vec::with_capacity(candidates.len());
        for payable_id in &candidates {
            let locked = sqlx::query(&format!(
                // Unpaid, or held by a hold that has run out (released and taken at once).
                // By the payable's key, region first: a payable's ID alone has no index.
                "UPDATE payables SET {lock}, locked_by = $1, locked_until = $2 \
                         WHERE region_code = $5 AND payable_id = $3 AND ({free} OR ({held} AND locked_until <= $4)) \
                         RETURNING region_code, id_number, amount_fen, \
                           (SELECT m.agreement_no FROM debit_agreement_members m WHERE m.region_code = $5 \
                              AND m.id_number = payables.id_number AND {active}) AS agreement_no",
                active = match S::BACKEND {
                    crate::Backend::Postgres => "m.active",
                    crate::Backend::Sqlite => "m.active = 1",
                },
                lock = payable::LOCK.set(),
                free = payable::LOCK.guard(),
                held = payable::RELEASE.guard(),
            ))
            .bind(&holder)
            .bind(run.lock_until)
            .bind(payable_id)
            .bind(run.now)
            .bind(run.region.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(locked) = locked else { continue };
            let region: String = locked.try_get("region_code")?;
            let Some(agreement_no) = locked.try_get::<Option<String>, _>("agreement_no")? else {
                // The agreement was cancelled meanwhile: not this run's to debit.
                sqlx::query(&format!(
                    "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL \
                     WHERE region_code = $3 AND payable_id = $1 AND {} AND locked_by = $2",
                    payable::RELEASE.set(),
                    payable::RELEASE.guard()
                ))
                .bind(payable_id)
                .bind(&holder)
                .bind(&region)
                .execute(&mut *tx)
                .await?;
                continue;
            };
            items.push(NewDebitItem {
                seq: i64::try_from(items.len()).unwrap_or(i64::MAX) + 1,
                region,
                payable_id: payable_id.clone(),
                agreement_no,
                id_number: locked.try_get("id_number")?,
                amount: locked.try_get("amount_fen")?,
            });
        }
        for chunk in items.chunks(DEBIT_ITEMS_PER_INSERT) {
            let mut q = Statement::<S::DB>::new(
                "INSERT INTO debit_run_items (run_no, seq, item_ref, region_code, payable_id, \
                 agreement_no, id_number, amount_fen, outcome) ",
            );
            q.push_values(chunk, |row, item| {
                row.push_bind(run.run_no.clone())
                    .push_bind(item.seq)
                    .push_bind(format!("{}-{:06}", run.run_no, item.seq))
                    .push_bind(item.region.clone())
                    .push_bind(item.payable_id.clone())
                    .push_bind(item.agreement_no.clone())
                    .push_bind(item.id_number.clone())
                    .push_bind(item.amount)
                    .push_bind("pending");
            });
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;
        }
        let seq = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let total: i64 = items.iter().map(|i| i.amount).sum();
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
        let record = record::<DebitRunRecord, _>(&row)?;
        tx.commit().await?;
        Ok(DebitRunOutcome::Created(record))
    }

    async fn debit_run_candidates(
        &self,
        channel_id: &str,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        now: i64,
    ) -> Result<Vec<String>, crate::StorageError> {
        Ok(sqlx::query_scalar(&debit_candidates_sql(""))
            .bind(true)
            .bind(channel_id)
            .bind(region.as_str())
            .bind(i32::from(fee_year.get()))
            .bind(now)
            .bind((crate::settlement::MAX_DEBIT_BATCH + 1) as i64)
            .fetch_all(self.pool())
            .await?)
    }

    async fn debit_run(
        &self,
        run_no: &str,
    ) -> Result<Option<crate::settlement::DebitRunRecord>, crate::StorageError> {
        let row = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE run_no = $1"))
            .bind(run_no)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record::<DebitRunRecord, _>).transpose()
    }

    async fn debit_runs(
        &self,
        region: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::settlement::DebitRunRecord>, crate::StorageError> {
        let rows = sqlx::query(&format!("{DEBIT_RUN_SELECT}WHERE (region_code = $1 OR ($2 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) ORDER BY debit_date DESC, run_no LIMIT $3"))
                    .bind(region)
                    .bind(region.is_none())
                    .bind(limit as i64)
                    .fetch_all(self.reads().pool())
                    .await?;
        rows.iter().map(record::<DebitRunRecord, _>).collect()
    }

    async fn debit_run_items(
        &self,
        run_no: &str,
        outcome: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::settlement::DebitItemRecord>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT i.seq, i.item_ref, i.region_code, i.payable_id, i.agreement_no, i.id_number, COALESCE(p.name, '') AS name, \
                     COALESCE(a.payer_id_number, '') AS holder_id_number, COALESCE(a.payer_name, '') AS holder_name, \
                     i.amount_fen, i.outcome, i.bank_txn_id, i.failure_code, i.failure_reason, i.payment_no \
                     FROM debit_runs r JOIN debit_run_items i ON i.region_code = r.region_code AND i.run_no = r.run_no \
                     LEFT JOIN persons p ON p.region_code = i.region_code AND p.id_number = i.id_number \
                     LEFT JOIN debit_agreements a ON a.region_code = i.region_code AND a.agreement_no = i.agreement_no \
                     WHERE r.run_no = $1 AND (i.outcome = $2 OR $3) ORDER BY i.seq LIMIT $4",
                )
                .bind(run_no)
                .bind(outcome)
                .bind(outcome.is_none())
                .bind(limit as i64)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(crate::rows::record::<crate::settlement::DebitItemRecord, _>)
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
        Ok(DebitResultClaim::Proceed(record::<DebitRunRecord, _>(
            &row,
        )?))
    }

    async fn apply_debit_results(
        &self,
        run_no: &str,
        results: &[crate::settlement::DebitItemResult],
    ) -> Result<Vec<Option<crate::collection::PaymentReportOutcome>>, crate::StorageError> {
        use crate::collection::MAX_PAYMENT_BATCH;
        use crate::settlement::DebitItemResult;
        use sqlx::Row as _;
        let holder = crate::settlement::debit_lock_holder(run_no);
        let mut tx = self.begin_write().await?;
        // The items are keyed by region first: each statement names it (an unknown run has no
        // items, and every result is then skipped).
        let run_region = run_region(&mut *tx, run_no).await?.unwrap_or_default();
        let mut outcomes: Vec<Option<PaymentReportOutcome>> =
            results.iter().map(|_| None).collect();
        if results.is_empty() {
            return Ok(outcomes);
        }

        // The items not yet decided, in one read: pending, or released when the run was
        // abandoned (a result arriving late is still applied: the money was taken). One decided
        // by an earlier import of the same file is skipped, as is a second line naming an item
        // (the file's parser refuses those).
        let mut q = Statement::<S::DB>::new(
            "SELECT seq, payable_id FROM debit_run_items WHERE region_code = ",
        );
        q.push_bind(run_region.clone())
            .push(" AND run_no = ")
            .push_bind(run_no.to_owned())
            .push(" AND outcome <> 'succeeded' AND outcome <> 'failed'");
        push_seqs(&mut q, results.iter().map(DebitItemResult::seq));
        let (sql, args) = q.into_parts()?;
        let mut pending: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        for row in sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut *tx)
            .await?
        {
            pending.insert(row.try_get("seq")?, row.try_get("payable_id")?);
        }
        let mut debited: Vec<(usize, i64, &crate::collection::NewPayment)> = Vec::new();
        let mut failed: std::collections::BTreeMap<(&str, &str), Vec<(i64, String)>> =
            std::collections::BTreeMap::new();
        for (i, result) in results.iter().enumerate() {
            let Some(payable_id) = pending.remove(&result.seq()) else {
                continue;
            };
            match result {
                DebitItemResult::Succeeded { seq, payment } => {
                    std::assert_eq!(
                        payment.lock_holder.as_deref(),
                        Some(holder.as_str()),
                        "a debit payment holds its run's lock"
                    );
                    debited.push((i, *seq, payment));
                }
                DebitItemResult::Failed { seq, code, reason } => failed
                    .entry((code.as_str(), reason.as_str()))
                    .or_default()
                    .push((*seq, payable_id)),
            }
        }

        // Debited: through the channels' group-commit path, a batch decided together and
        // written set-based; a batch it declines (a reversal recorded first, say) is stored one
        // payment at a time, each in a savepoint, as a channel's report would be.
        for batch in debited.chunks(MAX_PAYMENT_BATCH) {
            let payments: Vec<crate::collection::NewPayment> =
                batch.iter().map(|(_, _, p)| (*p).clone()).collect();
            sqlx::query("SAVEPOINT debit_batch")
                .execute(&mut *tx)
                .await?;
            let stored = match crate::payment_batch::report_batch::<S>(&mut tx, &payments).await {
                Ok(Some(stored)) => {
                    sqlx::query("RELEASE SAVEPOINT debit_batch")
                        .execute(&mut *tx)
                        .await?;
                    stored
                }
                // An error as well as a decline: stored one by one as the channels' group commit
                // does; a payment that fails then fails the import with what it was (as before).
                Ok(None) | Err(_) => {
                    crate::payment_batch::count_one_by_one();
                    sqlx::query("ROLLBACK TO SAVEPOINT debit_batch")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT debit_batch")
                        .execute(&mut *tx)
                        .await?;
                    report_each_in_savepoint::<S>(&mut tx, &payments)
                        .await?
                        .into_iter()
                        .collect::<Result<Vec<_>, _>>()?
                }
            };
            // Each item succeeded, with the bank's transaction and the payment it became (none
            // when a reversal came first): one statement for the batch.
            let marks: Vec<(i64, String, Option<String>)> = batch
                .iter()
                .zip(&stored)
                .map(|((_, seq, payment), outcome)| {
                    let payment_no = match outcome {
                        PaymentReportOutcome::Stored(o)
                        | PaymentReportOutcome::Existing { outcome: o, .. } => {
                            Some(o.payment_no.clone())
                        }
                        // (A debit run's reports carry no nonce.)
                        PaymentReportOutcome::ReversedEarlier | PaymentReportOutcome::NonceUsed => {
                            None
                        }
                    };
                    (*seq, payment.channel_txn_id.clone(), payment_no)
                })
                .collect();
            // A searched CASE: a Citus coordinator sends `CASE seq WHEN $1` to its nodes as a
            // comparison of the item's number with a boolean.
            let mut q = Statement::<S::DB>::new(
                "UPDATE debit_run_items SET outcome = 'succeeded', bank_txn_id = CASE",
            );
            for (seq, txn, _) in &marks {
                q.push(" WHEN seq = ")
                    .push_bind(*seq)
                    .push(" THEN ")
                    .push_bind(txn.clone());
            }
            q.push(" ELSE bank_txn_id END, payment_no = CASE");
            for (seq, _, payment_no) in &marks {
                q.push(" WHEN seq = ")
                    .push_bind(*seq)
                    .push(" THEN ")
                    .push_bind(payment_no.clone());
            }
            q.push(" ELSE payment_no END WHERE region_code = ")
                .push_bind(run_region.clone())
                .push(" AND run_no = ")
                .push_bind(run_no.to_owned());
            push_seqs(&mut q, marks.iter().map(|(seq, _, _)| *seq));
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, S::arguments(args))
                .execute(&mut *tx)
                .await?;
            for ((i, _, _), outcome) in batch.iter().zip(stored) {
                outcomes[*i] = Some(outcome);
            }
        }

        // Failed: the payables let go, the items marked with the bank's reason, one statement
        // each for every reason given.
        for ((code, reason), items) in &failed {
            let ids: Vec<String> = items.iter().map(|(_, id)| id.clone()).collect();
            let mut q = Statement::<S::DB>::new(format!(
                "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL WHERE region_code = ",
                payable::RELEASE.set()
            ));
            q.push_bind(run_region.clone()).push(" AND payable_id");
            S::push_id_list(&mut q, &ids);
            q.push(&format!(
                " AND {} AND locked_by = ",
                payable::RELEASE.guard()
            ))
            .push_bind(holder.clone());
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, S::arguments(args))
                .execute(&mut *tx)
                .await?;
            let mut q = Statement::<S::DB>::new(
                "UPDATE debit_run_items SET outcome = 'failed', failure_code = ",
            );
            q.push_bind((*code).to_owned())
                .push(", failure_reason = ")
                .push_bind((*reason).to_owned())
                .push(" WHERE region_code = ")
                .push_bind(run_region.clone())
                .push(" AND run_no = ")
                .push_bind(run_no.to_owned());
            push_seqs(&mut q, items.iter().map(|(seq, _)| *seq));
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, S::arguments(args))
                .execute(&mut *tx)
                .await?;
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
        let run_region = run_region(&mut *tx, run_no).await?.unwrap_or_default();
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM debit_run_items WHERE region_code = $2 AND run_no = $1 AND outcome = 'pending'",
        )
        .bind(run_no)
        .bind(&run_region)
        .fetch_one(&mut *tx)
        .await?;
        if pending != 0 {
            return Err(crate::StorageError::corrupt(format!(
                "run {run_no} completed with {pending} items undecided"
            )));
        }
        // Whatever this run still holds (nothing, normally) is released.
        sqlx::query(&format!(
            "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL WHERE {} AND locked_by = $1",
            payable::RELEASE.set(),
            payable::RELEASE.guard()
        ))
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
            let claimed: Option<String> = sqlx::query_scalar(
                "UPDATE debit_runs SET status = 'abandoned', completed_at = $1 \
                 WHERE run_no = $2 AND status = 'sent' AND result_sha256 IS NULL RETURNING region_code",
            )
            .bind(now)
            .bind(run_no)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(run_region) = claimed else {
                continue;
            };
            abandoned += 1;
            sqlx::query(&format!(
            "UPDATE payables SET {}, locked_by = NULL, locked_until = NULL WHERE {} AND locked_by = $1",
            payable::RELEASE.set(),
            payable::RELEASE.guard()
        ))
                        .bind(crate::settlement::debit_lock_holder(run_no))
                        .execute(&mut *tx)
                        .await?;
            sqlx::query("UPDATE debit_run_items SET outcome = 'released' WHERE region_code = $2 AND run_no = $1 AND outcome = 'pending'")
                        .bind(run_no)
                        .bind(&run_region)
                        .execute(&mut *tx)
                        .await?;
        }
        tx.commit().await?;
        Ok(abandoned)
    }
}

/// Agreements whose members one statement of a listing reads.
const MEMBERS_READ_CHUNK: usize = 1000;

async fn agreement_members<DB>(
    conn: &mut DB::Connection,
    region: &str,
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
        "SELECT id_number FROM debit_agreement_members WHERE region_code = $2 AND agreement_no = $1 ORDER BY id_number",
    )
    .bind(agreement_no)
    .bind(region)
    .fetch_all(&mut *conn)
    .await?)
}

async fn agreement<DB>(
    conn: &mut DB::Connection,
    region: &str,
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
    let row = sqlx::query(
                "SELECT agreement_no, region_code, channel_id, payer_id_number, payer_name, account_masked, status, \
                 signed_on, cancelled_on FROM debit_agreements WHERE region_code = $2 AND agreement_no = $1",
            )
            .bind(agreement_no)
            .bind(region)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(r) = row else { return Ok(None) };
    let mut agreement: crate::settlement::AgreementRecord = record(&r)?;
    agreement.members = agreement_members(conn, region, agreement_no).await?;
    Ok(Some(agreement))
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

/// The region of the run `run_no`, which keys its items (a run's number does not carry it).
async fn run_region<'c, E, DB>(conn: E, run_no: &str) -> Result<Option<String>, StorageError>
where
    E: Executor<'c, Database = DB>,
    DB: Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    Ok(
        sqlx::query_scalar("SELECT region_code FROM debit_runs WHERE run_no = $1")
            .bind(run_no)
            .fetch_optional(conn)
            .await?,
    )
}

/// Appends the test "is one of these items" (of a statement that names the run's region and
/// number): the items' range as well as their list, so that the run's key finds them whatever
/// the planner's statistics say. With statistics taken before the run's items were written,
/// PostgreSQL planned the list as a filter over the whole run (140 ms a statement at 50 000
/// items); the range is read through the key, and a chunk of a result file (whose lines the
/// parser requires in the run's order) is the items it lists.
fn push_seqs<DB: Database>(q: &mut Statement<DB>, seqs: impl Iterator<Item = i64> + Clone)
where
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let (low, high) = seqs
        .clone()
        .fold((i64::MAX, i64::MIN), |(l, h), s| (l.min(s), h.max(s)));
    q.push(" AND seq BETWEEN ")
        .push_bind(low)
        .push(" AND ")
        .push_bind(high)
        .push(" AND seq IN (")
        .push_list(seqs)
        .push(")");
}

/// Items of a new debit run written by one statement (nine parameters each).
const DEBIT_ITEMS_PER_INSERT: usize = 1000;

/// An item of a debit run being created: a payable locked for the bank.
struct NewDebitItem {
    seq: i64,
    region: String,
    payable_id: String,
    agreement_no: String,
    id_number: String,
    amount: i64,
}

/// The payables a bank's run takes: payable (unpaid, or held by a hold that has run out), not a
/// back-payment, something to pay, of a person under an active agreement with the bank; `classes`
/// narrows them further (the channel rules). Binds: active, channel, region, fee year, now, limit.
fn debit_candidates_sql(classes: &str) -> String {
    format!(
        "SELECT y.payable_id FROM payables y \
         JOIN debit_agreement_members m ON m.region_code = y.region_code AND m.id_number = y.id_number AND m.active = $1 \
         JOIN debit_agreements a ON a.region_code = m.region_code AND a.agreement_no = m.agreement_no AND a.status = 'active' AND a.channel_id = $2 \
         WHERE y.region_code = $3 AND y.fee_year = $4 AND y.amount_fen > 0 AND y.buys_back_year IS NULL{classes} \
           AND (y.status = 'unpaid' OR (y.status = 'locked' AND y.locked_until <= $5)) \
         ORDER BY y.payable_id LIMIT $6"
    )
}
