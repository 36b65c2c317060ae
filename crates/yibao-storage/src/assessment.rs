//! Payables and assessment (核定), written once for both backends over a [`Dialect`]
//! (issue 13). The `Storage` methods of the same names forward here.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use yibao_domain::{FeeYear, IdNumber, RegionCode};

use crate::dialect::{Dialect, Statement};
use crate::records::{NewPayable, PayableRecord, ReassessRefusal};
use crate::rows::{person_columns_from_row, record, PAYABLE_COLUMNS};
use crate::status_moves::payable;
use crate::StorageError;

/// Payables and assessment on one database.
#[async_trait]
pub trait AssessmentStore: Send + Sync {
    /// The next `limit` enrolled persons of a region and fee year by ID number after `after`,
    /// and of them those without a current payable. A step may find none to assess and still
    /// have read enrolments: the walk ends when `read_up_to` is `None`.
    async fn assessment_candidates(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::records::AssessmentCandidates, StorageError>;
    /// Inserts payables; one that would be a second current payable of a person and year is skipped
    /// (unique index), so running assessment twice creates nothing twice. Returns how many were created.
    async fn insert_payables(&self, payables: &[NewPayable]) -> Result<u64, StorageError>;
    /// Back-payments (补缴修复) of one person's year, inserted only while that year's
    /// contribution `contribution` is still unpaid, in one transaction: the contribution's row is
    /// held first (a conditional update on its status), so a payment racing in either waits and
    /// then cancels them with the contribution paid, or came first and nothing is inserted
    /// (`false`).
    async fn insert_back_payments(
        &self,
        contribution: &str,
        payables: &[NewPayable],
    ) -> Result<bool, StorageError>;
    async fn payables_of_person(
        &self,
        id_number: &IdNumber,
    ) -> Result<Vec<PayableRecord>, StorageError>;
    /// The year's contributions to price again at the late amount (逾期缴费金额): unpaid, of a
    /// category in `late_amounts` and assessed at another policy amount than its late one, by
    /// payable id after `after`; each with the person's registry record to assess again.
    /// Back-payments are never among them; a payable held by an order or a debit run is not
    /// unpaid and waits for a later pass. A repriced payable's policy amount is the late one, so
    /// it is never taken twice, and a late amount changed later is applied again.
    async fn late_repricing_candidates(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        late_amounts: &[(yibao_domain::Category, yibao_domain::Fen)],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, yibao_domain::Person)>, StorageError>;
    /// Supersedes each payable (`.0`) still unpaid or exempt by its replacement (`.1`), in one
    /// transaction: one conditional update moves those still unpaid and returns them, and only
    /// their replacements are inserted, so a payment or a lock that came first keeps its payable.
    /// Returns how many were replaced. At most [`crate::records::MAX_UPSERT_BATCH`].
    async fn supersede_in_bulk(
        &self,
        replacements: &[(String, NewPayable)],
    ) -> Result<u64, StorageError>;
    /// Re-assessment: supersedes the current payable (only if unpaid or exempt, checked in the same
    /// statement that changes it) and inserts the replacement, in one transaction.
    async fn reassess(
        &self,
        replacement: &NewPayable,
    ) -> Result<Result<PayableRecord, ReassessRefusal>, StorageError>;
}

#[async_trait]
impl<S> AssessmentStore for S
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
    async fn assessment_candidates(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::records::AssessmentCandidates, crate::StorageError> {
        // Three range reads whose plans do not depend on statistics (payables grow from none
        // to a million during an assessment, so the statistics taken before it say "few"):
        // the next enrolments in key order, the current payables of the same range of ID
        // numbers (on PostgreSQL through an index that holds region, year and ID number,
        // with or without statistics: a range, never the whole region), then the persons to
        // assess by key. Before, each enrolment looked its payable up in a subquery of its
        // own: 1000 index probes a step, 18 s of PostgreSQL's time for 1 000 000
        // (BENCHMARKS.md, "assessment's reads as ranges").
        let enrolled: Vec<String> = sqlx::query_scalar(
            "SELECT id_number FROM enrolments \
             WHERE region_code = $1 AND fee_year = $2 AND status = 'enrolled' AND id_number > $3 \
             ORDER BY id_number LIMIT $4",
        )
        .bind(region.as_str())
        .bind(i32::from(fee_year.get()))
        .bind(after.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let (Some(first), Some(last)) = (enrolled.first(), enrolled.last()) else {
            return Ok(crate::records::AssessmentCandidates::default());
        };
        let assessed: Vec<String> = sqlx::query_scalar(
            "SELECT id_number FROM payables \
             WHERE region_code = $1 AND fee_year = $2 AND id_number >= $3 AND id_number <= $4 \
               AND buys_back_year IS NULL AND status NOT IN ('superseded', 'cancelled') \
             ORDER BY id_number",
        )
        .bind(region.as_str())
        .bind(i32::from(fee_year.get()))
        .bind(first.as_str())
        .bind(last.as_str())
        .fetch_all(self.pool())
        .await?;
        let assessed: std::collections::HashSet<&str> =
            assessed.iter().map(String::as_str).collect();
        let ids: Vec<String> = enrolled
            .iter()
            .filter(|id| !assessed.contains(id.as_str()))
            .cloned()
            .collect();
        Ok(crate::records::AssessmentCandidates {
            persons: persons_by_id::<S>(self, region, &ids).await?,
            read_up_to: Some(last.clone()),
        })
    }

    async fn insert_payables(
        &self,
        payables: &[crate::records::NewPayable],
    ) -> Result<u64, crate::StorageError> {
        if payables.is_empty() {
            return Ok(0);
        }
        // Plainly first: in bulk a payable is new (its person was read without one), and
        // `ON CONFLICT DO NOTHING` costs every row a look into each unique index before its
        // insert (37 % more of PostgreSQL's time for the same rows). Should one have been
        // created since (a clerk's assessment of the person), the statement fails whole,
        // nothing written, and goes again skipping it.
        let (sql, args) = payables_insert::<S>(payables.iter().map(|p| (p, None)), false)?;
        match sqlx::query_with(&sql, Self::arguments(args))
            .execute(self.pool())
            .await
            .map_err(StorageError::from)
        {
            Ok(done) => Ok(Self::rows_affected(&done)),
            Err(StorageError::Constraint {
                kind: crate::ConstraintKind::Unique,
                ..
            }) => {
                let (sql, args) = payables_insert::<S>(payables.iter().map(|p| (p, None)), true)?;
                let done = sqlx::query_with(&sql, Self::arguments(args))
                    .execute(self.pool())
                    .await?;
                Ok(Self::rows_affected(&done))
            }
            Err(other) => Err(other),
        }
    }

    async fn insert_back_payments(
        &self,
        contribution: &str,
        payables: &[crate::records::NewPayable],
    ) -> Result<bool, crate::StorageError> {
        let Some(first) = payables.first() else {
            return Ok(true);
        };
        let mut tx = self.begin_write().await?;
        let held = sqlx::query(
            "UPDATE payables SET status = status WHERE region_code = $1 AND payable_id = $2 \
             AND status IN ('unpaid', 'locked')",
        )
        .bind(first.region.as_str())
        .bind(contribution)
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&held) != 1 {
            return Ok(false);
        }
        let (sql, args) = payables_insert::<S>(payables.iter().map(|p| (p, None)), true)?;
        sqlx::query_with(&sql, Self::arguments(args))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn payables_of_person(
        &self,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<crate::records::PayableRecord>, crate::StorageError> {
        let rows = sqlx::query(&format!(
                    "SELECT {PAYABLE_COLUMNS} FROM payables WHERE id_number = $1 ORDER BY fee_year, assessed_at, payable_id"
                ))
                .bind(id_number.as_str())
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(record::<PayableRecord, _>).collect()
    }

    async fn late_repricing_candidates(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        late_amounts: &[(yibao_domain::Category, yibao_domain::Fen)],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, yibao_domain::Person)>, StorageError> {
        use sqlx::Row as _;
        if late_amounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Statement::<S::DB>::new(
            "SELECT payable_id, id_number FROM payables WHERE region_code = ",
        );
        q.push_bind(region.as_str().to_owned())
            .push(" AND fee_year = ")
            .push_bind(i32::from(fee_year.get()))
            .push(" AND status = 'unpaid' AND buys_back_year IS NULL AND payable_id > ")
            .push_bind(after.unwrap_or("").to_owned())
            .push(" AND (");
        for (i, (category, late)) in late_amounts.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push("(category = ")
                .push_bind(category.code().to_owned())
                .push(" AND policy_amount_fen <> ")
                .push_bind(late.as_fen())
                .push(")");
        }
        q.push(") ORDER BY payable_id LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let (sql, args) = q.into_parts()?;
        let rows = sqlx::query_with(&sql, Self::arguments(args))
            .fetch_all(self.pool())
            .await?;
        let mut payables = Vec::with_capacity(rows.len());
        for row in &rows {
            let payable_id: String = row.try_get("payable_id")?;
            let id_number: String = row.try_get("id_number")?;
            payables.push((payable_id, id_number));
        }
        let mut ids: Vec<String> = payables.iter().map(|(_, id)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        let persons = persons_by_id::<S>(self, region, &ids).await?;
        Ok(payables
            .into_iter()
            .filter_map(|(payable_id, id_number)| {
                let person = persons.iter().find(|p| p.id_number.as_str() == id_number)?;
                Some((payable_id, person.clone()))
            })
            .collect())
    }

    async fn supersede_in_bulk(
        &self,
        replacements: &[(String, NewPayable)],
    ) -> Result<u64, StorageError> {
        use sqlx::Row as _;
        let Some((_, first)) = replacements.first() else {
            return Ok(0);
        };
        if replacements.len() > crate::records::MAX_UPSERT_BATCH {
            return Err(StorageError::Other("too many payables in one batch".into()));
        }
        let region = first.region;
        if replacements.iter().any(|(_, p)| p.region != region) {
            return Err(StorageError::Other(
                "payables of one region per batch".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        let mut q = Statement::<S::DB>::new("UPDATE payables SET ");
        q.push(payable::SUPERSEDE.set())
            .push(" WHERE region_code = ")
            .push_bind(region.as_str().to_owned())
            .push(" AND ")
            .push(payable::SUPERSEDE.guard())
            .push(" AND payable_id");
        let old_ids: Vec<String> = replacements.iter().map(|(id, _)| id.clone()).collect();
        Self::push_id_list(&mut q, &old_ids);
        q.push(" RETURNING payable_id");
        let (sql, args) = q.into_parts()?;
        let moved: Vec<String> = sqlx::query_with(&sql, Self::arguments(args))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("payable_id"))
            .collect::<Result<_, _>>()?;
        let kept: Vec<(&NewPayable, Option<&str>)> = replacements
            .iter()
            .filter(|(old, _)| moved.contains(old))
            .map(|(old, new)| (new, Some(old.as_str())))
            .collect();
        if !kept.is_empty() {
            let expected = u64::try_from(kept.len()).unwrap_or(u64::MAX);
            let (sql, args) = payables_insert::<S>(kept.into_iter(), true)?;
            let inserted = sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;
            // The insert skips a row the unique index of current payables refuses; one skipped
            // here would leave its person with no current payable, so nothing is kept (the
            // transaction is dropped, rolled back) rather than that.
            if Self::rows_affected(&inserted) != expected {
                return Err(StorageError::Other(format!(
                    "{} of {expected} replacement payables inserted",
                    Self::rows_affected(&inserted)
                )));
            }
        }
        tx.commit().await?;
        Ok(u64::try_from(moved.len()).unwrap_or(u64::MAX))
    }

    async fn reassess(
        &self,
        replacement: &crate::records::NewPayable,
    ) -> Result<
        Result<crate::records::PayableRecord, crate::records::ReassessRefusal>,
        crate::StorageError,
    > {
        use crate::records::ReassessRefusal;
        use sqlx::Row as _;
        let mut tx = self.begin_write().await?;
        let year = i32::from(replacement.fee_year.get());
        let current = sqlx::query(
                    "SELECT payable_id, status FROM payables WHERE region_code = $1 AND fee_year = $2 AND id_number = $3 \
                     AND buys_back_year IS NULL AND status NOT IN ('superseded', 'cancelled')",
                )
                .bind(replacement.region.as_str())
                .bind(year)
                .bind(replacement.id_number.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Ok(Err(ReassessRefusal::NotAssessed));
        };
        let old_id: String = current.try_get("payable_id")?;
        // Conditional on the status: a payment racing in makes this update touch nothing.
        let superseded = sqlx::query(&format!(
            "UPDATE payables SET {} WHERE region_code = $2 AND payable_id = $1 AND {}",
            payable::SUPERSEDE.set(),
            payable::SUPERSEDE.guard()
        ))
        .bind(&old_id)
        .bind(replacement.region.as_str())
        .execute(&mut *tx)
        .await?;
        if Self::rows_affected(&superseded) != 1 {
            let status: String = sqlx::query_scalar(
                "SELECT status FROM payables WHERE region_code = $2 AND payable_id = $1",
            )
            .bind(&old_id)
            .bind(replacement.region.as_str())
            .fetch_one(&mut *tx)
            .await?;
            return Ok(Err(if status == "locked" {
                ReassessRefusal::Locked
            } else {
                ReassessRefusal::PaidMustBeRefunded
            }));
        }
        let a = &replacement.assessment;
        sqlx::query(
                    "INSERT INTO payables (payable_id, region_code, fee_year, id_number, category, amount_fen, \
                     basic_fen, critical_illness_fen, long_term_care_fen, policy_amount_fen, relief_kind, status, \
                     payable_from, supersedes, inputs, assessed_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                )
                .bind(&replacement.payable_id)
                .bind(replacement.region.as_str())
                .bind(year)
                .bind(replacement.id_number.as_str())
                .bind(a.category.code())
                .bind(a.amount.as_fen())
                .bind(a.components[0].1.as_fen())
                .bind(a.components[1].1.as_fen())
                .bind(a.components[2].1.as_fen())
                .bind(a.policy_amount.as_fen())
                .bind(a.relief_applied.map(yibao_domain::ReliefKind::code))
                .bind(replacement.status().code())
                .bind(replacement.payable_from)
                .bind(&old_id)
                .bind(&replacement.inputs)
                .bind(&replacement.assessed_by)
                .execute(&mut *tx)
                .await?;
        let row = sqlx::query(&format!(
            "SELECT {PAYABLE_COLUMNS} FROM payables WHERE region_code = $2 AND payable_id = $1"
        ))
        .bind(&replacement.payable_id)
        .bind(replacement.region.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let record = record::<PayableRecord, _>(&row)?;
        tx.commit().await?;
        Ok(Ok(record))
    }
}

/// The registry records of a region's persons by ID number (`ids` sorted), in ID number order.
async fn persons_by_id<S>(
    storage: &S,
    region: RegionCode,
    ids: &[String],
) -> Result<Vec<yibao_domain::Person>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Statement::<S::DB>::new(
        "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
         employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
         subsidy_fen FROM persons WHERE region_code = ",
    );
    q.push_bind(region.as_str().to_owned())
        .push(" AND id_number");
    S::push_id_list(&mut q, ids);
    q.push(" ORDER BY id_number");
    let (sql, args) = q.into_parts()?;
    let rows = sqlx::query_with(&sql, S::arguments(args))
        .fetch_all(storage.pool())
        .await?;
    rows.iter()
        .map(|r| (person_columns_from_row)(r)?.into_person())
        .collect()
}

/// The statement inserting `payables` (at most [`crate::records::MAX_UPSERT_BATCH`]), each with
/// the payable it supersedes if any. With `skip_existing`, one the database already holds
/// (a current payable of the same person and year) is skipped (`ON CONFLICT DO NOTHING`);
/// without, it fails the statement.
fn payables_insert<'p, S>(
    payables: impl ExactSizeIterator<Item = (&'p crate::records::NewPayable, Option<&'p str>)>,
    skip_existing: bool,
) -> Result<(String, <S::DB as Database>::Arguments<'static>), crate::StorageError>
where
    S: Dialect,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<&'q str>: Encode<'q, S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB>,
    for<'q> Option<i32>: Encode<'q, S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
{
    if payables.len() > crate::records::MAX_UPSERT_BATCH {
        return Err(crate::StorageError::Other(
            "too many payables in one batch".into(),
        ));
    }
    let mut q = Statement::<S::DB>::new(
                    "INSERT INTO payables (payable_id, region_code, fee_year, id_number, category, amount_fen, \
                     basic_fen, critical_illness_fen, long_term_care_fen, policy_amount_fen, relief_kind, status, \
                     payable_from, inputs, assessed_by, buys_back_year, supersedes) ",
                );
    q.push_values(payables, |row, (p, supersedes)| {
        let a = &p.assessment;
        row.push_bind(p.payable_id.clone())
            .push_bind(p.region.to_string())
            .push_bind(i32::from(p.fee_year.get()))
            .push_bind(p.id_number.as_str().to_owned())
            .push_bind(a.category.code())
            .push_bind(a.amount.as_fen())
            .push_bind(a.components[0].1.as_fen())
            .push_bind(a.components[1].1.as_fen())
            .push_bind(a.components[2].1.as_fen())
            .push_bind(a.policy_amount.as_fen())
            .push_bind(a.relief_applied.map(yibao_domain::ReliefKind::code))
            .push_bind(p.status().code())
            .push_bind(p.payable_from)
            .push_bind(p.inputs.clone())
            .push_bind(p.assessed_by.clone())
            .push_bind(p.buys_back_year.map(i32::from))
            .push_bind(supersedes.map(str::to_owned));
    });
    if skip_existing {
        q.push(" ON CONFLICT DO NOTHING");
    }
    q.into_parts()
}
