//! Persons, their history and their enrolments (参保登记), written once for both backends over
//! a [`Dialect`] (issue 13). The `Storage` methods of the same names forward here.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use yibao_domain::{EnrolmentStatus, FeeYear, IdNumber, RegionCode, StationCode};

use crate::dialect::{Dialect, Statement};
use crate::records::{
    ChangeSource, EnrolmentRecord, HistoryEntry, MoveOutcome, PersonUpsert, StandingRow,
    UpsertOutcome,
};
use crate::rows::{person_columns_from_row, record};
use crate::status_moves::payable;
use crate::{MayChange, StorageError};

/// Persons and enrolments on one database.
#[async_trait]
pub trait PersonStore: Send + Sync {
    /// Stores up to [`crate::records::MAX_UPSERT_BATCH`] persons and their enrolments in one transaction.
    /// A person whose record is unchanged is not written (no history entry). One enrolment per person
    /// and fee year across regions is the key of `enrolment_claims`, written in the same transaction:
    /// the first region wins and a later one records a refusal naming where (masked) the person is
    /// enrolled.
    async fn upsert_persons(
        &self,
        batch: &[PersonUpsert],
        source: &ChangeSource,
    ) -> Result<Vec<UpsertOutcome>, StorageError> {
        self.upsert_persons_checked(batch, source, &|_, _| true)
            .await
    }
    /// [`PersonStore::upsert_persons`] for a caller with limited rights: a row whose person is stored
    /// already under a region and station that `may_change` refuses is not written at all (neither
    /// the person nor an enrolment) and comes back as [`crate::records::PersonChange::OutOfScope`]. The stored
    /// region and station are the ones the write transaction reads, not an earlier look-up.
    async fn upsert_persons_checked(
        &self,
        batch: &[PersonUpsert],
        source: &ChangeSource,
        may_change: MayChange<'_>,
    ) -> Result<Vec<UpsertOutcome>, StorageError>;
    /// The person and their record version.
    async fn get_person(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<Option<(yibao_domain::Person, i64)>, StorageError>;
    async fn person_history(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<Vec<HistoryEntry>, StorageError>;
    /// A person's insured number (参保编号) in `region`; `None` when they are not on record there.
    async fn insured_number(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<Option<yibao_domain::InsuredNumber>, StorageError>;
    /// Who holds an insured number, in the region its first six digits name.
    async fn person_by_insured_number(
        &self,
        number: &yibao_domain::InsuredNumber,
    ) -> Result<Option<IdNumber>, StorageError>;
    async fn get_enrolment(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        id_number: &IdNumber,
    ) -> Result<Option<EnrolmentRecord>, StorageError>;
    /// A person moving to another pooling region (跨统筹区转移), in one transaction: their record
    /// and its whole history are copied to `to` (with a history entry for the move), and every fee
    /// year they are enrolled in `from` without a paid payable moves with them: the enrolment in
    /// `from` becomes refused (`MOVED_AWAY`), the one in `to` enrolled from the same day, the year's
    /// enrolment claim names `to`, and the unpaid payable in `from` is cancelled (`to` assesses the
    /// year by its own policy). Years already paid stay where they were paid. Refused, changing
    /// nothing, while a payable of theirs is locked (an open order or a debit run).
    async fn move_person(
        &self,
        id_number: &IdNumber,
        from: RegionCode,
        to: RegionCode,
        source: &ChangeSource,
    ) -> Result<MoveOutcome, StorageError>;
    /// Renewal (续保): last year's enrolled, not now employee-insured, enrolled for `to` unless
    /// enrolled somewhere that year already. Returns how many were renewed.
    async fn renew_enrolments(
        &self,
        region: RegionCode,
        from: FeeYear,
        to: FeeYear,
        covered_from: NaiveDate,
    ) -> Result<u64, StorageError>;

    /// Every person of a region (optionally one station) with their standing in the fee year,
    /// ordered by station (the people without one first, on both backends) and ID number.
    async fn standing(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        station: Option<&StationCode>,
        limit: usize,
    ) -> Result<Vec<StandingRow>, StorageError>;
}

/// A `person_history` row (`changed_at` as text).
#[derive(sqlx::FromRow)]
struct HistoryRow {
    version: i64,
    changed_at: String,
    changed_by: String,
    source: String,
    /// The record as it became, as JSON.
    snapshot: String,
}
#[async_trait]
impl<S> PersonStore for S
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
    async fn upsert_persons_checked(
        &self,
        batch: &[crate::records::PersonUpsert],
        source: &crate::records::ChangeSource,
        may_change: crate::MayChange<'_>,
    ) -> Result<Vec<crate::records::UpsertOutcome>, crate::StorageError> {
        use crate::records::{PersonChange, UpsertOutcome};
        use sqlx::Row as _;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let most = S::BACKEND.persons_per_batch();
        if batch.len() > most {
            return Err(crate::StorageError::Other(format!(
                "batch of {} persons exceeds {most}",
                batch.len()
            )));
        }
        // The persons of these ID numbers in every region: found through the person directory
        // (its key starts with the ID number), then by each one's key, so that persons need no
        // index of their own on the ID number alone, an entry every imported person would pay
        // for. On a Citus cluster the directory's rows lie on other nodes than the persons':
        // there every shard is asked, by its own index on the ID number.
        let from = if self.regions_on_nodes().await? {
            "FROM persons p WHERE p.id_number"
        } else {
            "FROM person_directory d JOIN persons p \
             ON p.region_code = d.region_code AND p.id_number = d.id_number WHERE d.id_number"
        };
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = batch
            .iter()
            .map(|b| b.person.id_number.as_str().to_owned())
            .collect();
        let mut existing = crate::upsert_plan::ExistingState::default();

        let mut q = Statement::<S::DB>::new(format!(
            "SELECT p.region_code, p.id_number, p.name, p.household, p.permit_since, p.school, p.phone, \
             p.station_code, p.employee_insured, p.relief_kind, p.certificate_name, p.certificate_number, \
             p.certificate_valid_until, p.subsidy_fen, p.version, p.insured_number {from}"
        ));
        Self::push_id_list(&mut q, &ids);
        let (sql, args) = q.into_parts()?;
        for r in sqlx::query_with(&sql, Self::arguments(args))
            .fetch_all(&mut *tx)
            .await?
        {
            let columns = (person_columns_from_row)(&r)?;
            let version: i64 = r.try_get("version")?;
            let key = (columns.region_code.clone(), columns.id_number.clone());
            if let Some(number) = r.try_get::<Option<String>, _>("insured_number")? {
                existing.insured_numbers.insert(key, number);
            }
            existing.persons.insert(
                (columns.region_code.clone(), columns.id_number.clone()),
                (columns, version),
            );
        }

        if batch.iter().any(|b| b.enrolment.is_some()) {
            let mut q = Statement::<S::DB>::new(
                        "SELECT region_code, CAST(fee_year AS INTEGER) AS fee_year, id_number, status, refusal_code \
                         FROM enrolments WHERE id_number",
                    );
            Self::push_id_list(&mut q, &ids);
            let (sql, args) = q.into_parts()?;
            for r in sqlx::query_with(&sql, Self::arguments(args))
                .fetch_all(&mut *tx)
                .await?
            {
                let year: i32 = r.try_get("fee_year")?;
                let id: String = r.try_get("id_number")?;
                existing.enrolments.entry((year, id)).or_default().push(
                    crate::upsert_plan::StoredEnrolment {
                        region: RegionCode::parse(&r.try_get::<String, _>("region_code")?)
                            .map_err(StorageError::corrupt)?,
                        status: EnrolmentStatus::from_code(&r.try_get::<String, _>("status")?)
                            .ok_or_else(|| StorageError::corrupt("enrolment status"))?,
                        refusal_code: r.try_get("refusal_code")?,
                    },
                );
            }
            let mut q = Statement::<S::DB>::new(
                "SELECT CAST(fee_year AS INTEGER) AS fee_year, id_number FROM payables \
                         WHERE status NOT IN ('superseded', 'cancelled') AND buys_back_year IS NULL AND id_number",
            );
            Self::push_id_list(&mut q, &ids);
            let (sql, args) = q.into_parts()?;
            for r in sqlx::query_with(&sql, Self::arguments(args))
                .fetch_all(&mut *tx)
                .await?
            {
                existing
                    .assessed
                    .insert((r.try_get("fee_year")?, r.try_get("id_number")?));
            }
        }

        let mut planned = crate::upsert_plan::plan_upserts(batch, &existing, may_change)?;
        // Insured numbers first: the regions' counters are the first rows this transaction
        // locks, in region order, so that two batches wait for each other there and never
        // deadlock. A large batch takes them in a short transaction of its own instead
        // ([`NUMBERS_APART_FROM`]): this one has only read so far, so it holds no row that the
        // other could be waiting for, and it takes only a connection that is free at once.
        let mut wanted: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, p) in planned.iter().enumerate() {
            if p.insured_number.is_none()
                && matches!(p.change, PersonChange::Created | PersonChange::Updated)
            {
                match wanted.iter_mut().find(|(r, _)| *r == p.columns.region_code) {
                    Some((_, rows)) => rows.push(i),
                    None => wanted.push((p.columns.region_code.clone(), vec![i])),
                }
            }
        }
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        let needed: usize = wanted.iter().map(|(_, rows)| rows.len()).sum();
        let mut apart = if needed >= NUMBERS_APART_FROM && S::BACKEND.writers_run_concurrently() {
            // A free connection that fails to begin (the server restarted since it was last
            // used; `try_begin` skips the pool's ping) is no reason to fail the batch: its
            // numbers are then taken inside it.
            self.pool().try_begin().await.ok().flatten()
        } else {
            None
        };
        for (region, rows) in wanted {
            let numbers = match apart.as_mut() {
                Some(apart) => issue_insured_numbers::<S>(apart, &region, rows.len()).await?,
                None => issue_insured_numbers::<S>(&mut tx, &region, rows.len()).await?,
            };
            for (i, number) in rows.into_iter().zip(numbers) {
                planned[i].insured_number = Some(number);
            }
        }
        if let Some(apart) = apart {
            apart.commit().await?;
        }
        let changed: Vec<&crate::upsert_plan::PlannedRow> = planned
            .iter()
            .filter(|p| matches!(p.change, PersonChange::Created | PersonChange::Updated))
            .collect();
        let kind = if source.source == "renewal" {
            "renewal"
        } else if source.source.starts_with("roster") {
            "roster"
        } else {
            "api"
        };
        // The tables keyed by ID number, in the same transaction: where each new person is
        // on record (searches name no region), and the claims that keep one enrolment per
        // person and fee year across regions (a claim for every enrolled enrolment; a
        // concurrent claim elsewhere fails this batch on the claim's key). A batch of people
        // never seen before (the bulk case) writes both by the backend's bulk path: a new
        // person's directory row cannot exist yet (rows are never deleted, and the person's
        // own row, written in the same transaction, did not exist either).
        let all_new = planned.iter().all(|p| p.change == PersonChange::Created);
        let created: Vec<&crate::upsert_plan::PlannedRow> = planned
            .iter()
            .filter(|p| p.change == PersonChange::Created)
            .collect();
        let directory_copied = all_new && {
            let mut csv = String::new();
            for p in &created {
                crate::upsert_plan::csv_row(
                    &mut csv,
                    &[Some(&p.columns.id_number), Some(&p.columns.region_code)],
                );
            }
            self.copy_csv(&mut tx, "person_directory (id_number, region_code)", csv)
                .await?
        };
        if !created.is_empty() && !directory_copied {
            let mut q =
                Statement::<S::DB>::new("INSERT INTO person_directory (id_number, region_code) ");
            q.push_values(created.iter(), |row, p| {
                row.push_bind(p.columns.id_number.clone())
                    .push_bind(p.columns.region_code.clone());
            });
            q.push(" ON CONFLICT DO NOTHING");
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;
        }
        for p in &planned {
            if let Some(w) = p
                .enrolment_write
                .as_ref()
                .filter(|w| w.status != EnrolmentStatus::Enrolled)
            {
                sqlx::query("DELETE FROM enrolment_claims WHERE id_number = $1 AND fee_year = $2 AND region_code = $3")
                            .bind(&p.columns.id_number)
                            .bind(i32::from(w.fee_year.get()))
                            .bind(&p.columns.region_code)
                            .execute(&mut *tx)
                            .await?;
            }
        }
        let claims: Vec<(&crate::upsert_plan::PlannedRow, i32)> = planned
            .iter()
            .filter_map(|p| {
                p.enrolment_write
                    .as_ref()
                    .filter(|w| w.status == EnrolmentStatus::Enrolled)
                    .map(|w| (p, i32::from(w.fee_year.get())))
            })
            .collect();
        let claims_copied = all_new && {
            let mut csv = String::new();
            for (p, year) in &claims {
                let year = year.to_string();
                crate::upsert_plan::csv_row(
                    &mut csv,
                    &[
                        Some(&p.columns.id_number),
                        Some(&year),
                        Some(&p.columns.region_code),
                    ],
                );
            }
            self.copy_csv(
                &mut tx,
                "enrolment_claims (id_number, fee_year, region_code)",
                csv,
            )
            .await?
        };
        if !claims.is_empty() && !claims_copied {
            let mut q = Statement::<S::DB>::new(
                "INSERT INTO enrolment_claims (id_number, fee_year, region_code) ",
            );
            q.push_values(claims.iter(), |row, (p, year)| {
                row.push_bind(p.columns.id_number.clone())
                    .push_bind(*year)
                    .push_bind(p.columns.region_code.clone());
            });
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;
        }
        // Households the rows name (户号, 与户主关系), per region, for the persons written or
        // unchanged (never those out of the caller's scope).
        let mut placements: Vec<(
            RegionCode,
            Vec<(IdNumber, Option<yibao_domain::household::Placement>)>,
        )> = Vec::new();
        for (item, p) in batch.iter().zip(&planned) {
            let Some(placement) = &item.household else {
                continue;
            };
            if p.change == PersonChange::OutOfScope {
                continue;
            }
            let region = item.person.region;
            let entry = (item.person.id_number, Some(placement.clone()));
            match placements.iter_mut().find(|(r, _)| *r == region) {
                Some((_, list)) => list.push(entry),
                None => placements.push((region, vec![entry])),
            }
        }
        let mut household_refused: Vec<IdNumber> = Vec::new();
        for (region, list) in &placements {
            let written = crate::households::write_placements::<S>(
                &mut tx, *region, list, source, may_change,
            )
            .await?;
            household_refused.extend(written.refused);
        }
        // A batch of people never seen before (the bulk case) goes in by the backend's
        // fastest way (PostgreSQL: COPY); anything else through the upserts below.
        if all_new
            && self
                .copy_new_persons(&mut tx, &planned, source, kind)
                .await?
        {
            tx.commit().await?;
            return Ok(batch
                .iter()
                .zip(planned)
                .map(|(b, p)| UpsertOutcome {
                    row_number: b.row_number,
                    person: p.change,
                    enrolment: p.outcome,
                    household_refused: household_refused.contains(&b.person.id_number),
                })
                .collect());
        }
        if !changed.is_empty() {
            let mut q = Statement::<S::DB>::new(
                        "INSERT INTO persons (region_code, id_number, name, household, permit_since, school, phone, \
                         station_code, employee_insured, relief_kind, certificate_name, certificate_number, \
                         certificate_valid_until, subsidy_fen, version, updated_by, insured_number) ",
                    );
            q.push_values(changed.iter(), |row, p| {
                let c = &p.columns;
                row.push_bind(c.region_code.clone())
                    .push_bind(c.id_number.clone())
                    .push_bind(c.name.clone())
                    .push_bind(c.household)
                    .push_bind(c.permit_since)
                    .push_bind(c.school.clone())
                    .push_bind(c.phone.clone())
                    .push_bind(c.station_code.clone())
                    .push_bind(c.employee_insured)
                    .push_bind(c.relief_kind)
                    .push_bind(c.certificate_name.clone())
                    .push_bind(c.certificate_number.clone())
                    .push_bind(c.certificate_valid_until)
                    .push_bind(c.subsidy_fen)
                    .push_bind(p.version)
                    .push_bind(source.actor.clone())
                    .push_bind(p.insured_number.clone());
            });
            q.push(" ");
            q.push(crate::upsert_plan::PERSONS_UPSERT_CONFLICT);
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;

            let mut q = Statement::<S::DB>::new(
                        "INSERT INTO person_history (region_code, id_number, version, changed_by, source, snapshot) ",
                    );
            q.push_values(changed.iter(), |row, p| {
                row.push_bind(p.columns.region_code.clone())
                    .push_bind(p.columns.id_number.clone())
                    .push_bind(p.version)
                    .push_bind(source.actor.clone())
                    .push_bind(source.source.clone())
                    .push_bind(p.columns.snapshot());
            });
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;
        }

        let enrolment_writes: Vec<_> = planned
            .iter()
            .filter_map(|p| p.enrolment_write.as_ref().map(|w| (&p.columns, w)))
            .collect();
        if !enrolment_writes.is_empty() {
            let mut q = Statement::<S::DB>::new(
                "INSERT INTO enrolments (region_code, fee_year, id_number, status, refusal_code, \
                         refusal_message, covered_from, source) ",
            );
            q.push_values(enrolment_writes.iter(), |row, (c, w)| {
                row.push_bind(c.region_code.clone())
                    .push_bind(i32::from(w.fee_year.get()))
                    .push_bind(c.id_number.clone())
                    .push_bind(w.status.code())
                    .push_bind(w.refusal_code.clone())
                    .push_bind(w.refusal_message.clone())
                    .push_bind(w.covered_from)
                    .push_bind(kind);
            });
            q.push(
                        " ON CONFLICT (region_code, fee_year, id_number) DO UPDATE SET status = excluded.status, \
                         refusal_code = excluded.refusal_code, refusal_message = excluded.refusal_message, \
                         covered_from = excluded.covered_from, source = excluded.source, updated_at = excluded.updated_at",
                    );
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, Self::arguments(args))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(batch
            .iter()
            .zip(planned)
            .map(|(b, p)| UpsertOutcome {
                row_number: b.row_number,
                person: p.change,
                enrolment: p.outcome,
                household_refused: household_refused.contains(&b.person.id_number),
            })
            .collect())
    }

    async fn insured_number(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<Option<yibao_domain::InsuredNumber>, StorageError> {
        let number: Option<Option<String>> = sqlx::query_scalar(
            "SELECT insured_number FROM persons WHERE region_code = $1 AND id_number = $2",
        )
        .bind(region.as_str())
        .bind(id_number.as_str())
        .fetch_optional(self.pool())
        .await?;
        number
            .flatten()
            .map(|n| yibao_domain::InsuredNumber::parse(&n).map_err(StorageError::corrupt))
            .transpose()
    }

    async fn person_by_insured_number(
        &self,
        number: &yibao_domain::InsuredNumber,
    ) -> Result<Option<IdNumber>, StorageError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id_number FROM persons WHERE region_code = $1 AND insured_number = $2",
        )
        .bind(number.region().as_str())
        .bind(number.as_str())
        .fetch_optional(self.pool())
        .await?;
        id.map(|id| IdNumber::try_from(id).map_err(StorageError::corrupt))
            .transpose()
    }

    async fn get_person(
        &self,
        region: yibao_domain::RegionCode,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Option<(yibao_domain::Person, i64)>, crate::StorageError> {
        use sqlx::Row as _;
        let row = sqlx::query(
                    "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
                     employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                     subsidy_fen, version FROM persons WHERE region_code = $1 AND id_number = $2",
                )
                .bind(region.as_str())
                .bind(id_number.as_str())
                .fetch_optional(self.pool())
                .await?;
        let Some(r) = row else { return Ok(None) };
        let columns = (person_columns_from_row)(&r)?;
        let version: i64 = r.try_get("version")?;
        Ok(Some((columns.into_person()?, version)))
    }

    async fn person_history(
        &self,
        region: yibao_domain::RegionCode,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<crate::records::HistoryEntry>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT version, CAST(changed_at AS TEXT) AS changed_at, changed_by, source, snapshot \
                     FROM person_history WHERE region_code = $1 AND id_number = $2 ORDER BY version",
                )
                .bind(region.as_str())
                .bind(id_number.as_str())
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let row = record::<HistoryRow, _>(r)?;
                Ok(crate::records::HistoryEntry {
                    version: row.version,
                    changed_at: row.changed_at,
                    changed_by: row.changed_by,
                    source: row.source,
                    snapshot: serde_json::from_str(&row.snapshot)
                        .map_err(crate::StorageError::corrupt)?,
                })
            })
            .collect()
    }

    async fn get_enrolment(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Option<crate::records::EnrolmentRecord>, crate::StorageError> {
        let row = sqlx::query(
                    "SELECT region_code, CAST(fee_year AS INTEGER) AS fee_year, status, refusal_code, refusal_message, \
                     covered_from, source FROM enrolments WHERE region_code = $1 AND fee_year = $2 AND id_number = $3",
                )
                .bind(region.as_str())
                .bind(i32::from(fee_year.get()))
                .bind(id_number.as_str())
                .fetch_optional(self.pool())
                .await?;
        row.as_ref()
            .map(crate::rows::record::<crate::records::EnrolmentRecord, _>)
            .transpose()
    }

    async fn move_person(
        &self,
        id_number: &yibao_domain::IdNumber,
        from: yibao_domain::RegionCode,
        to: yibao_domain::RegionCode,
        source: &crate::records::ChangeSource,
    ) -> Result<crate::records::MoveOutcome, crate::StorageError> {
        use crate::records::MoveOutcome;
        use sqlx::Row as _;
        let (id, old, new) = (id_number.as_str(), from.as_str(), to.as_str());
        if old == new {
            return Ok(MoveOutcome::Moved {
                fee_years: Vec::new(),
                payables_cancelled: 0,
            });
        }
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
                    "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
                     employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                     subsidy_fen, version FROM persons WHERE region_code = $1 AND id_number = $2",
                )
                .bind(old)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Ok(MoveOutcome::NotFound);
        };
        let mut columns = (person_columns_from_row)(&row)?;
        let old_version: i64 = row.try_get("version")?;
        let locked: i64 = sqlx::query_scalar(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM payables WHERE region_code = $1 AND id_number = $2 AND status = 'locked'",
                )
                .bind(old)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if locked > 0 {
            tx.rollback().await?;
            return Ok(MoveOutcome::Locked);
        }
        // The record in the new region (a later version than any it had there), its history
        // copied over, and an entry for the move.
        let there: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT version, insured_number FROM persons WHERE region_code = $1 AND id_number = $2",
        )
        .bind(new)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        // The person keeps the number they had in the new region, or gets one of it.
        let insured_number = match there.as_ref().and_then(|(_, n)| n.clone()) {
            Some(number) => number,
            None => issue_insured_numbers::<S>(&mut tx, new, 1)
                .await?
                .pop()
                .ok_or_else(|| crate::StorageError::Other("no insured number issued".into()))?,
        };
        let there = there.map(|(version, _)| version);
        let top: Option<i64> = sqlx::query_scalar(
                    "SELECT CAST(MAX(version) AS BIGINT) FROM person_history WHERE region_code = $1 AND id_number = $2",
                )
                .bind(new)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let version = old_version.max(there.unwrap_or(0)).max(top.unwrap_or(0)) + 1;
        columns.region_code = new.to_owned();
        let c = &columns;
        sqlx::query(&format!(
                    "INSERT INTO persons (region_code, id_number, name, household, permit_since, school, phone, \
                     station_code, employee_insured, relief_kind, certificate_name, certificate_number, \
                     certificate_valid_until, subsidy_fen, version, updated_by, insured_number) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) {}",
                    crate::upsert_plan::PERSONS_UPSERT_CONFLICT
                ),
                )
                .bind(new)
                .bind(id)
                .bind(&c.name)
                .bind(c.household)
                .bind(c.permit_since)
                .bind(&c.school)
                .bind(&c.phone)
                .bind(&c.station_code)
                .bind(c.employee_insured)
                .bind(c.relief_kind)
                .bind(&c.certificate_name)
                .bind(&c.certificate_number)
                .bind(c.certificate_valid_until)
                .bind(c.subsidy_fen)
                .bind(version)
                .bind(&source.actor)
                .bind(&insured_number)
                .execute(&mut *tx)
                .await?;
        // The history after the record: SQLite's history rows point at their person.
        sqlx::query(
                    "INSERT INTO person_history (region_code, id_number, version, changed_at, changed_by, source, snapshot) \
                     SELECT $1, id_number, version, changed_at, changed_by, source, snapshot FROM person_history \
                     WHERE region_code = $2 AND id_number = $3 ON CONFLICT DO NOTHING",
                )
                .bind(new)
                .bind(old)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO person_history (region_code, id_number, version, changed_by, source, snapshot) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(new)
                    .bind(id)
                    .bind(version)
                    .bind(&source.actor)
                    .bind(format!("move:{old}"))
                    .bind(columns.snapshot())
                    .execute(&mut *tx)
                    .await?;
        sqlx::query("INSERT INTO person_directory (id_number, region_code) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(new)
                    .execute(&mut *tx)
                    .await?;
        // Every enrolled year not paid yet moves: the old enrolment refused, the new one
        // enrolled, the claim moved, the unpaid payable cancelled.
        let years: Vec<(i32, chrono::NaiveDate)> = sqlx::query_as(
                    "SELECT CAST(e.fee_year AS INTEGER), e.covered_from FROM enrolments e WHERE e.region_code = $1 AND e.id_number = $2 \
                     AND e.status = 'enrolled' AND NOT EXISTS (SELECT 1 FROM payables y WHERE y.region_code = e.region_code \
                       AND y.id_number = e.id_number AND y.fee_year = e.fee_year AND y.buys_back_year IS NULL \
                       AND y.status IN ('paid', 'posted')) \
                     ORDER BY e.fee_year",
                )
                .bind(old)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let mut payables_cancelled = 0;
        for (year, covered_from) in &years {
            sqlx::query(
                        "UPDATE enrolments SET status = 'refused', refusal_code = 'MOVED_AWAY', refusal_message = $1, \
                         covered_from = NULL, updated_at = CURRENT_TIMESTAMP WHERE region_code = $2 AND fee_year = $3 AND id_number = $4",
                    )
                    .bind(format!("已转往统筹区 {new} 参保"))
                    .bind(old)
                    .bind(year)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            sqlx::query(
                        "INSERT INTO enrolments (region_code, fee_year, id_number, status, covered_from, source) \
                         VALUES ($1, $2, $3, 'enrolled', $4, 'api') \
                         ON CONFLICT (region_code, fee_year, id_number) DO UPDATE SET status = 'enrolled', refusal_code = NULL, \
                         refusal_message = NULL, covered_from = excluded.covered_from, source = excluded.source, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(new)
                    .bind(year)
                    .bind(id)
                    .bind(covered_from)
                    .execute(&mut *tx)
                    .await?;
            sqlx::query("UPDATE enrolment_claims SET region_code = $1 WHERE id_number = $2 AND fee_year = $3 AND region_code = $4")
                        .bind(new)
                        .bind(id)
                        .bind(year)
                        .bind(old)
                        .execute(&mut *tx)
                        .await?;
            let cancelled = sqlx::query(
                        &format!(
                        "UPDATE payables SET {} WHERE region_code = $1 AND id_number = $2 AND fee_year = $3 AND {}",
                        payable::CANCEL.set(),
                        payable::CANCEL.guard()
                    ),
                    )
                    .bind(old)
                    .bind(id)
                    .bind(year)
                    .execute(&mut *tx)
                    .await?;
            payables_cancelled += Self::rows_affected(&cancelled);
        }
        // The household (户) they were in belongs to the region left: that membership ends.
        sqlx::query(
            "UPDATE household_members SET left_at = CASE WHEN joined_at > $1 THEN joined_at ELSE $1 END, \
             left_by = $2 \
             WHERE region_code = $3 AND id_number = $4 AND left_at IS NULL",
        )
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(source.actor.clone())
        .bind(old)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(MoveOutcome::Moved {
            fee_years: years.into_iter().map(|(y, _)| y).collect(),
            payables_cancelled,
        })
    }

    async fn renew_enrolments(
        &self,
        region: yibao_domain::RegionCode,
        from: yibao_domain::FeeYear,
        to: yibao_domain::FeeYear,
        covered_from: chrono::NaiveDate,
    ) -> Result<u64, crate::StorageError> {
        // The region's candidates (one shard), then the claims of those not enrolled
        // anywhere for the new year (the claim's key decides), then their enrolments: one
        // transaction.
        let mut tx = self.begin_write().await?;
        let candidates: Vec<String> = sqlx::query_scalar(
                    "SELECT e.id_number FROM enrolments e JOIN persons p ON p.region_code = e.region_code AND p.id_number = e.id_number \
                     WHERE e.region_code = $1 AND e.fee_year = $2 AND e.status = 'enrolled' AND p.employee_insured = $4 \
                       AND NOT EXISTS (SELECT 1 FROM enrolments x WHERE x.region_code = $1 AND x.fee_year = $3 AND x.id_number = e.id_number) \
                     ORDER BY e.id_number",
                )
                .bind(region.as_str())
                .bind(i32::from(from.get()))
                .bind(i32::from(to.get()))
                .bind(false)
                .fetch_all(&mut *tx)
                .await?;
        let year = i32::from(to.get());
        let mut renewed: u64 = 0;
        for chunk in candidates.chunks(crate::records::MAX_UPSERT_BATCH) {
            let mut q = Statement::<S::DB>::new(
                "INSERT INTO enrolment_claims (id_number, fee_year, region_code) ",
            );
            q.push_values(chunk.iter(), |row, id| {
                row.push_bind(id.clone())
                    .push_bind(year)
                    .push_bind(region.as_str().to_owned());
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING id_number");
            let (sql, args) = q.into_parts()?;
            let claimed: Vec<String> = sqlx::query_scalar_with(&sql, Self::arguments(args))
                .fetch_all(&mut *tx)
                .await?;
            if claimed.is_empty() {
                continue;
            }
            let mut q = Statement::<S::DB>::new(
                        "INSERT INTO enrolments (region_code, fee_year, id_number, status, covered_from, source) ",
                    );
            q.push_values(claimed.iter(), |row, id| {
                row.push_bind(region.as_str().to_owned())
                    .push_bind(year)
                    .push_bind(id.clone())
                    .push_bind("enrolled")
                    .push_bind(covered_from)
                    .push_bind("renewal");
            });
            let (sql, args) = q.into_parts()?;
            renewed += Self::rows_affected(
                &sqlx::query_with(&sql, Self::arguments(args))
                    .execute(&mut *tx)
                    .await?,
            );
        }
        tx.commit().await?;
        Ok(renewed)
    }

    async fn standing(
        &self,
        region: yibao_domain::RegionCode,
        fee_year: yibao_domain::FeeYear,
        station: Option<&yibao_domain::StationCode>,
        limit: usize,
    ) -> Result<Vec<crate::records::StandingRow>, crate::StorageError> {
        let rows = sqlx::query(
                    "SELECT p.region_code, p.station_code, p.id_number, p.name, p.phone, e.status AS enrolment_status, \
                     e.refusal_message, y.status AS payable_status, y.amount_fen \
                     FROM persons p \
                     LEFT JOIN enrolments e ON e.region_code = p.region_code AND e.id_number = p.id_number AND e.fee_year = $2 \
                     LEFT JOIN payables y ON y.region_code = p.region_code AND y.id_number = p.id_number AND y.fee_year = $2 \
                          AND y.status NOT IN ('superseded', 'cancelled') AND y.buys_back_year IS NULL \
                     WHERE p.region_code = $1 AND (p.station_code = $3 OR $4) \
                     ORDER BY p.station_code NULLS FIRST, p.id_number LIMIT $5",
                )
                .bind(region.as_str())
                .bind(i32::from(fee_year.get()))
                .bind(station.map(|s| s.as_str().to_owned()))
                .bind(station.is_none())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reads().pool())
                .await?;
        rows.iter()
            .map(|r| record::<crate::records::StandingColumns, _>(r)?.try_into())
            .collect()
    }
}

/// A batch of persons that needs this many insured numbers or more, of any regions (a roster
/// import's batch), takes them in a short transaction of its own, committed before the batch's,
/// where the backend's writers run concurrently (PostgreSQL) and a pooled connection is free at
/// once (otherwise inside the batch's transaction, as a smaller batch does). The regions'
/// counter rows are then held for a few statements, not for the whole batch, so that the two
/// batches an import stores at once do not wait for each other. A batch that then fails, or is
/// tried again (a household changed beside it), leaves its numbers unissued: skipped, never
/// given twice, as the format allows.
pub const NUMBERS_APART_FROM: usize = 64;

/// Issues `count` insured numbers (参保编号) of `region`, in order, by moving the region's counter
/// in one statement (the counter row stays locked until the transaction ends, so numbers are
/// issued in the order their transactions commit; numbers a rolled-back transaction took are
/// taken again by the next, so never given twice).
pub(crate) async fn issue_insured_numbers<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    region: &str,
    count: usize,
) -> Result<Vec<String>, crate::StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let region_code =
        yibao_domain::RegionCode::parse(region).map_err(crate::StorageError::corrupt)?;
    let wanted = i64::try_from(count).map_err(crate::StorageError::corrupt)?;
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO insured_number_counters (region_code, last_issued) VALUES ($1, $2) \
         ON CONFLICT (region_code) DO UPDATE SET last_issued = insured_number_counters.last_issued + excluded.last_issued \
         RETURNING last_issued",
    )
    .bind(region)
    .bind(wanted)
    .fetch_one(&mut **tx)
    .await?;
    let first = last - wanted + 1;
    (first..=last)
        .map(|serial| {
            let serial = u64::try_from(serial).map_err(crate::StorageError::corrupt)?;
            yibao_domain::InsuredNumber::issue(region_code, serial)
                .map(|n| n.to_string())
                .map_err(|e| crate::StorageError::Other(e.to_string()))
        })
        .collect()
}
