//! The storage methods whose SQL is the same on PostgreSQL and SQLite, written once.
//!
//! [`impl_storage!`](crate::impl_storage) expands to the whole `impl Storage for …` block of a
//! backend: these shared methods plus the backend's own, passed in. The SQL here sticks to what both
//! databases accept: `$N` parameters (sqlx binds them by number on SQLite too), `ON CONFLICT`,
//! `CAST`, `CURRENT_TIMESTAMP`, and no casts with `::`. Each method is one transaction. An upsert's
//! `DO UPDATE SET` takes its time from `excluded` (the inserted row's default), never from
//! `CURRENT_TIMESTAMP`: Citus refuses a function there.

use std::collections::HashMap;

use yibao_domain::{EnrolmentRefusal, RegionCode, StationCode};

use crate::records::{
    EnrolmentOutcome, EnrolmentRequest, PersonChange, PersonColumns, PersonUpsert,
};
use crate::StorageError;

/// What the batch found already stored, keyed by ID number.
#[derive(Default)]
pub struct ExistingState {
    /// (region, id) → (columns, version).
    pub persons: HashMap<(String, String), (PersonColumns, i64)>,
    /// (fee_year, id) → the person's enrolments that year, in any region.
    pub enrolments: HashMap<(i32, String), Vec<StoredEnrolment>>,
    /// (fee_year, id) of people with a current payable.
    pub assessed: std::collections::HashSet<(i32, String)>,
}

/// An enrolment row as the batch found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnrolment {
    pub region: String,
    pub status: String,
    pub refusal_code: Option<String>,
}

/// An enrolment row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentWrite {
    pub fee_year: i32,
    pub status: &'static str,
    pub refusal_code: Option<String>,
    pub refusal_message: Option<String>,
    pub covered_from: Option<chrono::NaiveDate>,
}

/// A CSV field for PostgreSQL's `COPY … (FORMAT csv)`: quoted, quotes doubled; `None` is NULL
/// (an unquoted empty field).
pub fn csv_field(out: &mut String, value: Option<&str>) {
    if let Some(v) = value {
        out.push('"');
        for c in v.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// A row of CSV fields ending in a newline.
pub fn csv_row(out: &mut String, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, *f);
    }
    out.push('\n');
}

/// One row's planned writes.
pub struct PlannedRow {
    pub columns: PersonColumns,
    pub change: PersonChange,
    pub version: i64,
    pub enrolment_write: Option<EnrolmentWrite>,
    pub outcome: EnrolmentOutcome,
}

/// Decides, without touching the database, what a batch changes. Refuses duplicates in one batch.
/// A row whose stored person `may_change` refuses (by the stored region and station) is planned
/// as [`PersonChange::OutOfScope`], with nothing to write.
pub fn plan_upserts(
    batch: &[PersonUpsert],
    existing: &ExistingState,
    may_change: crate::MayChange<'_>,
) -> Result<Vec<PlannedRow>, StorageError> {
    let mut seen = std::collections::HashSet::new();
    let mut planned = Vec::with_capacity(batch.len());
    for item in batch {
        let columns = PersonColumns::of(&item.person);
        let key = (columns.region_code.clone(), columns.id_number.clone());
        if !seen.insert(key.clone()) {
            return Err(StorageError::Other(format!(
                "row {}: the same person twice in one batch",
                item.row_number
            )));
        }
        if let Some((old, version)) = existing.persons.get(&key) {
            let region = RegionCode::parse(&old.region_code).map_err(StorageError::corrupt)?;
            let station = old
                .station_code
                .as_deref()
                .map(StationCode::parse)
                .transpose()
                .map_err(StorageError::corrupt)?;
            if !may_change(region, station.as_ref()) {
                planned.push(PlannedRow {
                    columns,
                    change: PersonChange::OutOfScope,
                    version: *version,
                    enrolment_write: None,
                    outcome: EnrolmentOutcome::NotAttempted,
                });
                continue;
            }
        }
        let (change, version) = match existing.persons.get(&key) {
            None => (PersonChange::Created, 1),
            Some((old, v)) if *old == columns => (PersonChange::Unchanged, *v),
            Some((_, v)) => (PersonChange::Updated, v + 1),
        };
        let (enrolment_write, outcome) = match &item.enrolment {
            None => (None, EnrolmentOutcome::NotAttempted),
            Some(request) => {
                let year = i32::from(request.fee_year().get());
                let rows = existing
                    .enrolments
                    .get(&(year, columns.id_number.clone()))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let own = rows.iter().find(|e| e.region == columns.region_code);
                let elsewhere = rows
                    .iter()
                    .find(|e| e.region != columns.region_code && e.status == "enrolled");
                let assessed = existing
                    .assessed
                    .contains(&(year, columns.id_number.clone()));
                plan_enrolment(request, year, own, elsewhere, assessed)?
            }
        };
        planned.push(PlannedRow {
            columns,
            change,
            version,
            enrolment_write,
            outcome,
        });
    }
    Ok(planned)
}

fn plan_enrolment(
    request: &EnrolmentRequest,
    year: i32,
    own: Option<&StoredEnrolment>,
    elsewhere: Option<&StoredEnrolment>,
    assessed: bool,
) -> Result<(Option<EnrolmentWrite>, EnrolmentOutcome), StorageError> {
    let refuse = |refusal: &EnrolmentRefusal| EnrolmentWrite {
        fee_year: year,
        status: "refused",
        refusal_code: Some(refusal.code().to_owned()),
        refusal_message: Some(refusal.to_string()),
        covered_from: None,
    };
    Ok(match request {
        EnrolmentRequest::Enrol { covered_from, .. } => {
            if let Some(other) = elsewhere {
                let region = RegionCode::parse(&other.region).map_err(StorageError::corrupt)?;
                let refusal = EnrolmentRefusal::enrolled_elsewhere(region);
                let recorded = own.is_some_and(|e| {
                    e.status == "refused" && e.refusal_code.as_deref() == Some(refusal.code())
                });
                let write = (!recorded).then(|| refuse(&refusal));
                (write, EnrolmentOutcome::Refused(refusal))
            } else if own.is_some_and(|e| e.status == "enrolled") {
                (None, EnrolmentOutcome::AlreadyEnrolled)
            } else {
                let write = EnrolmentWrite {
                    fee_year: year,
                    status: "enrolled",
                    refusal_code: None,
                    refusal_message: None,
                    covered_from: Some(*covered_from),
                };
                (Some(write), EnrolmentOutcome::Enrolled)
            }
        }
        EnrolmentRequest::Refuse { refusal, .. } => match own {
            Some(e) if e.status == "enrolled" && assessed => {
                (None, EnrolmentOutcome::KeptBecauseAssessed(refusal.clone()))
            }
            Some(e)
                if e.status == "refused" && e.refusal_code.as_deref() == Some(refusal.code()) =>
            {
                (None, EnrolmentOutcome::Refused(refusal.clone()))
            }
            _ => (
                Some(refuse(refusal)),
                EnrolmentOutcome::Refused(refusal.clone()),
            ),
        },
    })
}

/// Expands to `#[async_trait] impl Storage for $ty { shared methods… $backend_methods }`.
#[macro_export]
macro_rules! impl_storage {
    ($ty:ty, $db:ty, { $($backend_methods:tt)* }) => {
        #[::async_trait::async_trait]
        impl $crate::Storage for $ty {
            $($backend_methods)*

            async fn health(&self) -> Result<(), $crate::StorageError> {
                ::sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn operations_snapshot(
                &self,
                today: ::chrono::NaiveDate,
            ) -> Result<$crate::OperationsSnapshot, $crate::StorageError> {
                let sql = $crate::operations_snapshot_sql(<$ty>::OUTBOX_PENDING, <$ty>::OUTBOX_DEAD);
                let row: (i64, i64, i64, i64, i64, i64) = ::sqlx::query_as(&sql)
                    .bind(today)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.into())
            }

            fn pool_status(&self) -> $crate::PoolStatus {
                $crate::PoolStatus {
                    open: self.pool.size(),
                    idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                    max: self.pool.options().get_max_connections(),
                }
            }

            async fn upsert_region(&self, region: &::yibao_domain::PoolingRegion) -> Result<(), $crate::StorageError> {
                $crate::region_setup::RegionSetup::upsert_region(&self.pool, region).await
            }

            async fn get_region(&self, code: ::yibao_domain::RegionCode) -> Result<Option<::yibao_domain::PoolingRegion>, $crate::StorageError> {
                $crate::region_setup::RegionSetup::get_region(&self.pool, code).await
            }

            async fn list_regions(&self) -> Result<Vec<::yibao_domain::PoolingRegion>, $crate::StorageError> {
                $crate::region_setup::RegionSetup::list_regions(&self.pool).await
            }

            async fn put_fee_policy(&self, policy: &::yibao_domain::FeePolicy) -> Result<(), $crate::StorageError> {
                $crate::region_setup::RegionSetup::put_fee_policy(&self.pool, policy).await
            }

            async fn get_fee_policy(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
            ) -> Result<Option<::yibao_domain::FeePolicy>, $crate::StorageError> {
                Ok($crate::region_setup::RegionSetup::fee_policies(&self.pool, region, Some(fee_year)).await?.into_iter().next())
            }

            async fn list_fee_policies(&self, region: ::yibao_domain::RegionCode) -> Result<Vec<::yibao_domain::FeePolicy>, $crate::StorageError> {
                $crate::region_setup::RegionSetup::fee_policies(&self.pool, region, None).await
            }

            async fn put_calendar_year(
                &self,
                region: ::yibao_domain::RegionCode,
                year: &::yibao_domain::CalendarYear,
            ) -> Result<(), $crate::StorageError> {
                $crate::region_setup::RegionSetup::put_calendar_year(&self.pool, region, year).await
            }

            async fn put_national_calendar_year(
                &self,
                region: ::yibao_domain::RegionCode,
                notice: &::yibao_domain::CalendarNotice,
            ) -> Result<(), $crate::StorageError> {
                $crate::region_setup::RegionSetup::put_national_calendar_year(&self.pool, region, notice).await
            }

            async fn working_calendar(&self, region: ::yibao_domain::RegionCode) -> Result<::yibao_domain::WorkingCalendar, $crate::StorageError> {
                $crate::region_setup::RegionSetup::working_calendar(&self.pool, region).await
            }

            async fn calendar_year_record(
                &self,
                region: ::yibao_domain::RegionCode,
                year: i32,
            ) -> Result<Option<$crate::CalendarYearRecord>, $crate::StorageError> {
                $crate::region_setup::RegionSetup::calendar_year_record(&self.pool, region, year).await
            }

            async fn upsert_persons_checked(
                &self,
                batch: &[$crate::records::PersonUpsert],
                source: &$crate::records::ChangeSource,
                may_change: $crate::MayChange<'_>,
            ) -> Result<Vec<$crate::records::UpsertOutcome>, $crate::StorageError> {
                use ::sqlx::Row as _;
                use $crate::records::{PersonChange, PersonColumns, UpsertOutcome, MAX_UPSERT_BATCH};
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                if batch.len() > MAX_UPSERT_BATCH {
                    return Err($crate::StorageError::Other(format!(
                        "batch of {} persons exceeds {MAX_UPSERT_BATCH}", batch.len()
                    )));
                }
                let mut tx = self.begin_write().await?;
                let ids: Vec<String> = batch.iter().map(|b| b.person.id_number.as_str().to_owned()).collect();
                let mut existing = $crate::portable::ExistingState::default();

                let mut q = ::sqlx::QueryBuilder::new(
                    "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
                     employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                     subsidy_fen, version FROM persons WHERE id_number",
                );
                Self::push_id_list(&mut q, &ids);
                for r in q.build().fetch_all(&mut *tx).await? {
                    let columns = ($crate::person_columns_from_row!($db))(&r)?;
                    let version: i64 = r.try_get("version")?;
                    existing.persons.insert((columns.region_code.clone(), columns.id_number.clone()), (columns, version));
                }

                if batch.iter().any(|b| b.enrolment.is_some()) {
                    let mut q = ::sqlx::QueryBuilder::new(
                        "SELECT region_code, CAST(fee_year AS INTEGER) AS fee_year, id_number, status, refusal_code \
                         FROM enrolments WHERE id_number",
                    );
    Self::push_id_list(&mut q, &ids);
                    for r in q.build().fetch_all(&mut *tx).await? {
                        let year: i32 = r.try_get("fee_year")?;
                        let id: String = r.try_get("id_number")?;
                        existing.enrolments.entry((year, id)).or_default().push($crate::portable::StoredEnrolment {
                            region: r.try_get("region_code")?,
                            status: r.try_get("status")?,
                            refusal_code: r.try_get("refusal_code")?,
                        });
                    }
                    let mut q = ::sqlx::QueryBuilder::new(
                        "SELECT CAST(fee_year AS INTEGER) AS fee_year, id_number FROM payables \
                         WHERE status NOT IN ('superseded', 'cancelled') AND id_number",
                    );
    Self::push_id_list(&mut q, &ids);
                    for r in q.build().fetch_all(&mut *tx).await? {
                        existing.assessed.insert((r.try_get("fee_year")?, r.try_get("id_number")?));
                    }
                }

                let planned = $crate::portable::plan_upserts(batch, &existing, may_change)?;
                let changed: Vec<&$crate::portable::PlannedRow> = planned
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
                // concurrent claim elsewhere fails this batch on the claim's key).
                let created: Vec<&$crate::portable::PlannedRow> =
                    planned.iter().filter(|p| p.change == PersonChange::Created).collect();
                if !created.is_empty() {
                    let mut q = ::sqlx::QueryBuilder::new("INSERT INTO person_directory (id_number, region_code) ");
                    q.push_values(created.iter(), |mut row, p| {
                        row.push_bind(p.columns.id_number.clone()).push_bind(p.columns.region_code.clone());
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                for p in &planned {
                    if let Some(w) = p.enrolment_write.as_ref().filter(|w| w.status != "enrolled") {
                        ::sqlx::query("DELETE FROM enrolment_claims WHERE id_number = $1 AND fee_year = $2 AND region_code = $3")
                            .bind(&p.columns.id_number)
                            .bind(w.fee_year)
                            .bind(&p.columns.region_code)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let claims: Vec<(&$crate::portable::PlannedRow, i32)> = planned
                    .iter()
                    .filter_map(|p| p.enrolment_write.as_ref().filter(|w| w.status == "enrolled").map(|w| (p, w.fee_year)))
                    .collect();
                if !claims.is_empty() {
                    let mut q = ::sqlx::QueryBuilder::new("INSERT INTO enrolment_claims (id_number, fee_year, region_code) ");
                    q.push_values(claims.iter(), |mut row, (p, year)| {
                        row.push_bind(p.columns.id_number.clone()).push_bind(*year).push_bind(p.columns.region_code.clone());
                    });
                    q.build().execute(&mut *tx).await?;
                }
                // A batch of people never seen before (the bulk case) goes in by the backend's
                // fastest way (PostgreSQL: COPY); anything else through the upserts below.
                if Self::BULK_COPY && planned.iter().all(|p| p.change == PersonChange::Created) {
                    self.copy_new_persons(&mut tx, &planned, source, kind).await?;
                    tx.commit().await?;
                    return Ok(batch
                        .iter()
                        .zip(planned)
                        .map(|(b, p)| UpsertOutcome { row_number: b.row_number, person: p.change, enrolment: p.outcome })
                        .collect());
                }
                if !changed.is_empty() {
                    let mut q = ::sqlx::QueryBuilder::new(
                        "INSERT INTO persons (region_code, id_number, name, household, permit_since, school, phone, \
                         station_code, employee_insured, relief_kind, certificate_name, certificate_number, \
                         certificate_valid_until, subsidy_fen, version, updated_by) ",
                    );
                    q.push_values(changed.iter(), |mut row, p| {
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
                            .push_bind(source.actor.clone());
                    });
                    q.push(" ");
                    q.push($crate::portable::PERSONS_UPSERT_CONFLICT);
                    q.build().execute(&mut *tx).await?;

                    let mut q = ::sqlx::QueryBuilder::new(
                        "INSERT INTO person_history (region_code, id_number, version, changed_by, source, snapshot) ",
                    );
                    q.push_values(changed.iter(), |mut row, p| {
                        row.push_bind(p.columns.region_code.clone())
                            .push_bind(p.columns.id_number.clone())
                            .push_bind(p.version)
                            .push_bind(source.actor.clone())
                            .push_bind(source.source.clone())
                            .push_bind(p.columns.snapshot());
                    });
                    q.build().execute(&mut *tx).await?;
                }

                let enrolment_writes: Vec<_> = planned
                    .iter()
                    .filter_map(|p| p.enrolment_write.as_ref().map(|w| (&p.columns, w)))
                    .collect();
                if !enrolment_writes.is_empty() {
                    let mut q = ::sqlx::QueryBuilder::new(
                        "INSERT INTO enrolments (region_code, fee_year, id_number, status, refusal_code, \
                         refusal_message, covered_from, source) ",
                    );
                    q.push_values(enrolment_writes.iter(), |mut row, (c, w)| {
                        row.push_bind(c.region_code.clone())
                            .push_bind(w.fee_year)
                            .push_bind(c.id_number.clone())
                            .push_bind(w.status)
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
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(batch
                    .iter()
                    .zip(planned)
                    .map(|(b, p)| UpsertOutcome { row_number: b.row_number, person: p.change, enrolment: p.outcome })
                    .collect())
            }

            async fn get_person(
                &self,
                region: ::yibao_domain::RegionCode,
                id_number: &::yibao_domain::IdNumber,
            ) -> Result<Option<(::yibao_domain::Person, i64)>, $crate::StorageError> {
                use ::sqlx::Row as _;
                let row = ::sqlx::query(
                    "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
                     employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                     subsidy_fen, version FROM persons WHERE region_code = $1 AND id_number = $2",
                )
                .bind(region.as_str())
                .bind(id_number.as_str())
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else { return Ok(None) };
                let columns = ($crate::person_columns_from_row!($db))(&r)?;
                let version: i64 = r.try_get("version")?;
                Ok(Some((columns.into_person()?, version)))
            }

            async fn person_history(
                &self,
                region: ::yibao_domain::RegionCode,
                id_number: &::yibao_domain::IdNumber,
            ) -> Result<Vec<$crate::records::HistoryEntry>, $crate::StorageError> {
                use ::sqlx::Row as _;
                let rows = ::sqlx::query(
                    "SELECT version, CAST(changed_at AS TEXT) AS changed_at, changed_by, source, snapshot \
                     FROM person_history WHERE region_code = $1 AND id_number = $2 ORDER BY version",
                )
                .bind(region.as_str())
                .bind(id_number.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let snapshot: String = r.try_get("snapshot")?;
                        Ok($crate::records::HistoryEntry {
                            version: r.try_get("version")?,
                            changed_at: r.try_get("changed_at")?,
                            changed_by: r.try_get("changed_by")?,
                            source: r.try_get("source")?,
                            snapshot: ::serde_json::from_str(&snapshot).map_err($crate::StorageError::corrupt)?,
                        })
                    })
                    .collect()
            }

            async fn get_enrolment(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
                id_number: &::yibao_domain::IdNumber,
            ) -> Result<Option<$crate::records::EnrolmentRecord>, $crate::StorageError> {
                use ::sqlx::Row as _;
                let row = ::sqlx::query(
                    "SELECT region_code, CAST(fee_year AS INTEGER) AS fee_year, status, refusal_code, refusal_message, \
                     covered_from, source FROM enrolments WHERE region_code = $1 AND fee_year = $2 AND id_number = $3",
                )
                .bind(region.as_str())
                .bind(i32::from(fee_year.get()))
                .bind(id_number.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::records::EnrolmentRecord {
                        region: r.try_get("region_code")?,
                        fee_year: r.try_get("fee_year")?,
                        status: r.try_get("status")?,
                        refusal_code: r.try_get("refusal_code")?,
                        refusal_message: r.try_get("refusal_message")?,
                        covered_from: r.try_get("covered_from")?,
                        source: r.try_get("source")?,
                    })
                })
                .transpose()
            }

            async fn move_person(
                &self,
                id_number: &::yibao_domain::IdNumber,
                from: ::yibao_domain::RegionCode,
                to: ::yibao_domain::RegionCode,
                source: &$crate::records::ChangeSource,
            ) -> Result<$crate::records::MoveOutcome, $crate::StorageError> {
                use ::sqlx::Row as _;
                use $crate::records::MoveOutcome;
                let (id, old, new) = (id_number.as_str(), from.as_str(), to.as_str());
                if old == new {
                    return Ok(MoveOutcome::Moved { fee_years: Vec::new(), payables_cancelled: 0 });
                }
                let mut tx = self.begin_write().await?;
                let row = ::sqlx::query(
                    "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
                     employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                     subsidy_fen, version FROM persons WHERE region_code = $1 AND id_number = $2",
                )
                .bind(old)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(MoveOutcome::NotFound) };
                let mut columns = ($crate::person_columns_from_row!($db))(&row)?;
                let old_version: i64 = row.try_get("version")?;
                let locked: i64 = ::sqlx::query_scalar(
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
                let there: Option<i64> = ::sqlx::query_scalar("SELECT version FROM persons WHERE region_code = $1 AND id_number = $2")
                    .bind(new)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let top: Option<i64> = ::sqlx::query_scalar(
                    "SELECT CAST(MAX(version) AS BIGINT) FROM person_history WHERE region_code = $1 AND id_number = $2",
                )
                .bind(new)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                let version = old_version.max(there.unwrap_or(0)).max(top.unwrap_or(0)) + 1;
                columns.region_code = new.to_owned();
                let c = &columns;
                ::sqlx::query(&format!(
                    "INSERT INTO persons (region_code, id_number, name, household, permit_since, school, phone, \
                     station_code, employee_insured, relief_kind, certificate_name, certificate_number, \
                     certificate_valid_until, subsidy_fen, version, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) {}",
                    $crate::portable::PERSONS_UPSERT_CONFLICT
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
                .execute(&mut *tx)
                .await?;
                // The history after the record: SQLite's history rows point at their person.
                ::sqlx::query(
                    "INSERT INTO person_history (region_code, id_number, version, changed_at, changed_by, source, snapshot) \
                     SELECT $1, id_number, version, changed_at, changed_by, source, snapshot FROM person_history \
                     WHERE region_code = $2 AND id_number = $3 ON CONFLICT DO NOTHING",
                )
                .bind(new)
                .bind(old)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                ::sqlx::query("INSERT INTO person_history (region_code, id_number, version, changed_by, source, snapshot) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(new)
                    .bind(id)
                    .bind(version)
                    .bind(&source.actor)
                    .bind(format!("move:{old}"))
                    .bind(columns.snapshot())
                    .execute(&mut *tx)
                    .await?;
                ::sqlx::query("INSERT INTO person_directory (id_number, region_code) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(new)
                    .execute(&mut *tx)
                    .await?;
                // Every enrolled year not paid yet moves: the old enrolment refused, the new one
                // enrolled, the claim moved, the unpaid payable cancelled.
                let years: Vec<(i32, ::chrono::NaiveDate)> = ::sqlx::query_as(
                    "SELECT CAST(e.fee_year AS INTEGER), e.covered_from FROM enrolments e WHERE e.region_code = $1 AND e.id_number = $2 \
                     AND e.status = 'enrolled' AND NOT EXISTS (SELECT 1 FROM payables y WHERE y.region_code = e.region_code \
                       AND y.id_number = e.id_number AND y.fee_year = e.fee_year AND y.status IN ('paid', 'posted')) \
                     ORDER BY e.fee_year",
                )
                .bind(old)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let mut payables_cancelled = 0;
                for (year, covered_from) in &years {
                    ::sqlx::query(
                        "UPDATE enrolments SET status = 'refused', refusal_code = 'MOVED_AWAY', refusal_message = $1, \
                         covered_from = NULL, updated_at = CURRENT_TIMESTAMP WHERE region_code = $2 AND fee_year = $3 AND id_number = $4",
                    )
                    .bind(format!("已转往统筹区 {new} 参保"))
                    .bind(old)
                    .bind(year)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    ::sqlx::query(
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
                    ::sqlx::query("UPDATE enrolment_claims SET region_code = $1 WHERE id_number = $2 AND fee_year = $3 AND region_code = $4")
                        .bind(new)
                        .bind(id)
                        .bind(year)
                        .bind(old)
                        .execute(&mut *tx)
                        .await?;
                    payables_cancelled += ::sqlx::query(
                        "UPDATE payables SET status = 'cancelled' WHERE region_code = $1 AND id_number = $2 AND fee_year = $3 \
                         AND status IN ('unpaid', 'exempt')",
                    )
                    .bind(old)
                    .bind(id)
                    .bind(year)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(MoveOutcome::Moved { fee_years: years.into_iter().map(|(y, _)| y).collect(), payables_cancelled })
            }

            async fn renew_enrolments(
                &self,
                region: ::yibao_domain::RegionCode,
                from: ::yibao_domain::FeeYear,
                to: ::yibao_domain::FeeYear,
                covered_from: ::chrono::NaiveDate,
            ) -> Result<u64, $crate::StorageError> {
                // The region's candidates (one shard), then the claims of those not enrolled
                // anywhere for the new year (the claim's key decides), then their enrolments: one
                // transaction.
                let mut tx = self.begin_write().await?;
                let candidates: Vec<String> = ::sqlx::query_scalar(
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
                for chunk in candidates.chunks($crate::records::MAX_UPSERT_BATCH) {
                    let mut q = ::sqlx::QueryBuilder::new("INSERT INTO enrolment_claims (id_number, fee_year, region_code) ");
                    q.push_values(chunk.iter(), |mut row, id| {
                        row.push_bind(id.clone()).push_bind(year).push_bind(region.as_str().to_owned());
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING id_number");
                    let claimed: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
                    if claimed.is_empty() {
                        continue;
                    }
                    let mut q = ::sqlx::QueryBuilder::new(
                        "INSERT INTO enrolments (region_code, fee_year, id_number, status, covered_from, source) ",
                    );
                    q.push_values(claimed.iter(), |mut row, id| {
                        row.push_bind(region.as_str().to_owned())
                            .push_bind(year)
                            .push_bind(id.clone())
                            .push_bind("enrolled")
                            .push_bind(covered_from)
                            .push_bind("renewal");
                    });
                    renewed += q.build().execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(renewed)
            }

            async fn assessment_candidates(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<::yibao_domain::Person>, $crate::StorageError> {
                use ::sqlx::Row as _;
                // Two statements whose plans do not depend on statistics. Payables grow from none
                // to a million during an assessment, so the statistics taken before it say "few";
                // one statement with NOT EXISTS and a join let PostgreSQL pick an anti-join that
                // read every payable and every person of the region once per batch (0.43 s a
                // batch at 400 000, 13 minutes for 1 000 000). A scalar subquery is never turned
                // into a join: the enrolments are read in key order and each is looked up in
                // the payables' index, then the batch's persons by key.
                let ids: Vec<String> = ::sqlx::query_scalar(
                    "SELECT e.id_number FROM enrolments e \
                     WHERE e.region_code = $1 AND e.fee_year = $2 AND e.status = 'enrolled' AND e.id_number > $3 \
                       AND (SELECT 1 FROM payables y WHERE y.region_code = e.region_code AND y.fee_year = $2 \
                            AND y.id_number = e.id_number AND y.status NOT IN ('superseded', 'cancelled') LIMIT 1) IS NULL \
                     ORDER BY e.id_number LIMIT $4",
                )
                .bind(region.as_str())
                .bind(i32::from(fee_year.get()))
                .bind(after.unwrap_or(""))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = ::sqlx::QueryBuilder::new(
                    "SELECT region_code, id_number, name, household, permit_since, school, phone, station_code, \
                     employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                     subsidy_fen FROM persons WHERE region_code = ",
                );
                q.push_bind(region.as_str()).push(" AND id_number");
                Self::push_id_list(&mut q, &ids);
                q.push(" ORDER BY id_number");
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        ($crate::person_columns_from_row!($db))(r)?                        .into_person()
                    })
                    .collect()
            }

            async fn insert_payables(
                &self,
                payables: &[$crate::records::NewPayable],
            ) -> Result<u64, $crate::StorageError> {
                if payables.is_empty() {
                    return Ok(0);
                }
                if payables.len() > $crate::records::MAX_UPSERT_BATCH {
                    return Err($crate::StorageError::Other("too many payables in one batch".into()));
                }
                let mut q = ::sqlx::QueryBuilder::new(
                    "INSERT INTO payables (payable_id, region_code, fee_year, id_number, category, amount_fen, \
                     basic_fen, critical_illness_fen, long_term_care_fen, policy_amount_fen, relief_kind, status, \
                     payable_from, inputs, assessed_by) ",
                );
                q.push_values(payables.iter(), |mut row, p| {
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
                        .push_bind(a.relief_applied.map(::yibao_domain::ReliefKind::code))
                        .push_bind(p.status().code())
                        .push_bind(p.payable_from)
                        .push_bind(p.inputs.clone())
                        .push_bind(p.assessed_by.clone());
                });
                q.push(" ON CONFLICT DO NOTHING");
                let done = q.build().execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn payables_of_person(
                &self,
                id_number: &::yibao_domain::IdNumber,
            ) -> Result<Vec<$crate::records::PayableRecord>, $crate::StorageError> {
                let rows = ::sqlx::query(concat!(
                    "SELECT ", $crate::payable_columns!(),
                    " FROM payables WHERE id_number = $1 ORDER BY fee_year, assessed_at, payable_id"
                ))
                .bind(id_number.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map($crate::portable_payable_from_row!($db)).collect()
            }

            async fn reassess(
                &self,
                replacement: &$crate::records::NewPayable,
            ) -> Result<Result<$crate::records::PayableRecord, $crate::records::ReassessRefusal>, $crate::StorageError> {
                use ::sqlx::Row as _;
                use $crate::records::ReassessRefusal;
                let mut tx = self.begin_write().await?;
                let year = i32::from(replacement.fee_year.get());
                let current = ::sqlx::query(
                    "SELECT payable_id, status FROM payables WHERE region_code = $1 AND fee_year = $2 AND id_number = $3 \
                     AND status NOT IN ('superseded', 'cancelled')",
                )
                .bind(replacement.region.as_str())
                .bind(year)
                .bind(replacement.id_number.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(current) = current else { return Ok(Err(ReassessRefusal::NotAssessed)) };
                let old_id: String = current.try_get("payable_id")?;
                // Conditional on the status: a payment racing in makes this update touch nothing.
                let superseded = ::sqlx::query(
                    "UPDATE payables SET status = 'superseded' WHERE region_code = $2 AND payable_id = $1 AND status IN ('unpaid', 'exempt')",
                )
                .bind(&old_id)
                .bind(replacement.region.as_str())
                .execute(&mut *tx)
                .await?;
                if superseded.rows_affected() != 1 {
                    let status: String = ::sqlx::query_scalar("SELECT status FROM payables WHERE region_code = $2 AND payable_id = $1")
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
                ::sqlx::query(
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
                .bind(a.relief_applied.map(::yibao_domain::ReliefKind::code))
                .bind(replacement.status().code())
                .bind(replacement.payable_from)
                .bind(&old_id)
                .bind(&replacement.inputs)
                .bind(&replacement.assessed_by)
                .execute(&mut *tx)
                .await?;
                let row = ::sqlx::query(concat!("SELECT ", $crate::payable_columns!(), " FROM payables WHERE region_code = $2 AND payable_id = $1"))
                    .bind(&replacement.payable_id)
                    .bind(replacement.region.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                let record = ($crate::portable_payable_from_row!($db))(&row)?;
                tx.commit().await?;
                Ok(Ok(record))
            }

            async fn standing(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
                station: Option<&::yibao_domain::StationCode>,
                limit: usize,
            ) -> Result<Vec<$crate::records::StandingRow>, $crate::StorageError> {
                use ::sqlx::Row as _;
                let rows = ::sqlx::query(
                    "SELECT p.region_code, p.station_code, p.id_number, p.name, p.phone, e.status AS enrolment_status, \
                     e.refusal_message, y.status AS payable_status, y.amount_fen \
                     FROM persons p \
                     LEFT JOIN enrolments e ON e.region_code = p.region_code AND e.id_number = p.id_number AND e.fee_year = $2 \
                     LEFT JOIN payables y ON y.region_code = p.region_code AND y.id_number = p.id_number AND y.fee_year = $2 \
                          AND y.status NOT IN ('superseded', 'cancelled') \
                     WHERE p.region_code = $1 AND (p.station_code = $3 OR $4) \
                     ORDER BY p.station_code, p.id_number LIMIT $5",
                )
                .bind(region.as_str())
                .bind(i32::from(fee_year.get()))
                .bind(station.map(|s| s.as_str().to_owned()))
                .bind(station.is_none())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.reads.pool())
                .await?;
                rows.iter()
                    .map(|r| {
                        let enrolment: Option<String> = r.try_get("enrolment_status")?;
                        let payable: Option<String> = r.try_get("payable_status")?;
                        let refusal: Option<String> = r.try_get("refusal_message")?;
                        let amount: Option<i64> = r.try_get("amount_fen")?;
                        let (standing, detail) = $crate::records::standing_of(enrolment.as_deref(), payable.as_deref(), refusal);
                        Ok($crate::records::StandingRow {
                            region: r.try_get("region_code")?,
                            station_code: r.try_get("station_code")?,
                            id_number: r.try_get("id_number")?,
                            name: r.try_get("name")?,
                            standing: standing.to_owned(),
                            detail,
                            amount_fen: amount,
                            phone: r.try_get("phone")?,
                        })
                    })
                    .collect()
            }

            // --- The citizen site's reads and accounts (issue 11) ---

            fn citizen_accounts(&self) -> &dyn $crate::citizen_accounts::CitizenAccounts {
                &self.pool
            }

            fn enrolment_applications(
                &self,
            ) -> &dyn $crate::enrolment_applications::EnrolmentApplications {
                &self.pool
            }

            async fn paid_by(
                &self,
                region: ::yibao_domain::RegionCode,
                id_number: &::yibao_domain::IdNumber,
            ) -> Result<Vec<$crate::citizen_reads::PaidBy>, $crate::StorageError> {
                $crate::citizen_reads::paid_by(&self.pool, region.as_str(), id_number.as_str()).await
            }

            // --- The staff console's reads (issue 16) ---

            async fn money_counts(
                &self,
                query: &$crate::console_reads::MoneyCountsQuery<'_>,
            ) -> Result<$crate::console_reads::MoneyCounts, $crate::StorageError> {
                $crate::console_reads::money_counts(self.reads.pool(), query).await
            }

            async fn collection_progress(
                &self,
                region: Option<::yibao_domain::RegionCode>,
                fee_year: ::yibao_domain::FeeYear,
                station: Option<&::yibao_domain::StationCode>,
            ) -> Result<Vec<$crate::records::ProgressRow>, $crate::StorageError> {
                $crate::console_reads::collection_progress(self.reads.pool(), region, fee_year, station).await
            }

            async fn find_persons_by_name(
                &self,
                region: ::yibao_domain::RegionCode,
                name_prefix: &str,
                station: Option<&::yibao_domain::StationCode>,
                limit: usize,
            ) -> Result<Vec<$crate::records::PersonSummary>, $crate::StorageError> {
                $crate::console_reads::find_persons_by_name(self.reads.pool(), Self::NAME_ORDER, region, name_prefix, station, limit).await
            }

            // Staff, sessions, the sign-in throttle, the audit log and the import register:
            // ordinary generic code in `staff_accounts.rs`; these only forward.

            async fn create_staff(&self, account: &$crate::records::StaffAccount) -> Result<(), $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::create_staff(&self.pool, account).await
            }

            async fn get_staff(&self, username: &str) -> Result<Option<$crate::records::StaffAccount>, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::get_staff(&self.pool, username).await
            }

            async fn count_staff(&self) -> Result<i64, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::count_staff(&self.pool).await
            }

            async fn list_staff(&self) -> Result<Vec<$crate::records::StaffAccount>, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::list_staff(&self.pool).await
            }

            async fn set_staff_disabled(&self, username: &str, disabled: bool) -> Result<bool, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::set_staff_disabled(&self.pool, username, disabled).await
            }

            async fn set_staff_password(&self, username: &str, password_hash: &str, must_change: bool) -> Result<bool, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::set_staff_password(&self.pool, username, password_hash, must_change).await
            }

            async fn create_session(&self, token_hash: &str, username: &str, expires_at: i64) -> Result<(), $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::create_session(&self.pool, token_hash, username, expires_at).await
            }

            async fn session_staff(&self, token_hash: &str, now: i64) -> Result<Option<$crate::records::StaffAccount>, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::session_staff(&self.pool, token_hash, now).await
            }

            async fn delete_session(&self, token_hash: &str) -> Result<(), $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::delete_session(&self.pool, token_hash).await
            }

            async fn admit_login_attempt(&self, username: &str, address: &str, now: i64) -> Result<$crate::records::LoginAdmission, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::admit_login_attempt(&self.pool, username, address, now).await
            }

            async fn login_succeeded(&self, username: &str, address: &str) -> Result<(), $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::login_succeeded(&self.pool, username, address).await
            }

            async fn append_audit(&self, entry: &$crate::records::AuditEntry) -> Result<(), $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::append_audit(&self.pool, entry).await
            }

            async fn list_audit(&self, limit: usize) -> Result<Vec<$crate::records::AuditRecord>, $crate::StorageError> {
                // The newest entries: the filtered read with no filter.
                self.audit_entries(&$crate::records::AuditFilter::default(), limit).await
            }

            async fn audit_entries(&self, filter: &$crate::records::AuditFilter, limit: usize) -> Result<Vec<$crate::records::AuditRecord>, $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::audit_entries(self.reads.pool(), filter, limit).await
            }

            async fn record_import(&self, summary: &$crate::records::ImportSummary, actor: &str) -> Result<(), $crate::StorageError> {
                $crate::staff_accounts::StaffAccounts::record_import(&self.pool, summary, actor).await
            }

            // --- The console's campaign records (issue 16): ordinary generic code in
            // `campaign_records.rs` and `console_reads.rs`; these only forward. ---

            async fn put_rejection_file(&self, file: &$crate::records::RejectionFile) -> Result<(), $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::put_rejection_file(&self.pool, file).await
            }

            async fn get_rejection_file(&self, region: &str, import_id: &str) -> Result<Option<$crate::records::RejectionFile>, $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::get_rejection_file(&self.pool, region, import_id).await
            }

            async fn unpaid_after(
                &self,
                query: &$crate::console_reads::UnpaidBatchQuery<'_>,
            ) -> Result<Vec<$crate::records::UnpaidRow>, $crate::StorageError> {
                $crate::console_reads::unpaid_after(self.reads.pool(), query).await
            }

            async fn unpaid_page(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
                station: Option<&::yibao_domain::StationCode>,
                offset: usize,
                limit: usize,
            ) -> Result<$crate::records::UnpaidPage, $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::unpaid_page(self.reads.pool(), region, fee_year, station, offset, limit).await
            }

            async fn add_follow_up(&self, f: &$crate::records::NewFollowUp) -> Result<i64, $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::add_follow_up(&self.pool, f).await
            }

            async fn follow_ups(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
                id_number: &str,
            ) -> Result<Vec<$crate::records::FollowUpRecord>, $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::follow_ups(&self.pool, region, fee_year, id_number).await
            }

            async fn submit_uninsured(&self, u: &$crate::records::UninsuredSubmission) -> Result<(), $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::submit_uninsured(&self.pool, u).await
            }

            async fn uninsured_submission(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
                station: &::yibao_domain::StationCode,
            ) -> Result<Option<$crate::records::UninsuredSubmission>, $crate::StorageError> {
                $crate::console_reads::uninsured_submission(&self.pool, region, fee_year, station.as_str()).await
            }

            async fn uninsured_submissions(
                &self,
                region: ::yibao_domain::RegionCode,
                fee_year: ::yibao_domain::FeeYear,
            ) -> Result<Vec<$crate::records::UninsuredSubmission>, $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::uninsured_submissions(self.reads.pool(), region, fee_year).await
            }

            async fn prune_rejection_files(&self, before: i64) -> Result<u64, $crate::StorageError> {
                $crate::campaign_records::CampaignRecords::prune_rejection_files(&self.pool, before).await
            }
        }
    };
}

/// How a person upsert changes a row already stored: every column from the new version.
pub const PERSONS_UPSERT_CONFLICT: &str = "ON CONFLICT (region_code, id_number) DO UPDATE SET name = excluded.name, \
     household = excluded.household, permit_since = excluded.permit_since, \
     school = excluded.school, phone = excluded.phone, station_code = excluded.station_code, \
     employee_insured = excluded.employee_insured, relief_kind = excluded.relief_kind, \
     certificate_name = excluded.certificate_name, certificate_number = excluded.certificate_number, \
     certificate_valid_until = excluded.certificate_valid_until, subsidy_fen = excluded.subsidy_fen, \
     version = excluded.version, updated_by = excluded.updated_by, updated_at = excluded.updated_at";

/// The columns of `PayableRecord`, in order.
#[macro_export]
macro_rules! payable_columns {
    () => {
        "payable_id, region_code, CAST(fee_year AS INTEGER) AS fee_year, id_number, category, amount_fen, basic_fen, \
         critical_illness_fen, long_term_care_fen, policy_amount_fen, relief_kind, status, payable_from, supersedes, inputs"
    };
}

/// A closure turning a row selected with `payable_columns!()` into a `PayableRecord`.
#[macro_export]
macro_rules! portable_payable_from_row {
    ($db:ty) => {
        |r: &<$db as ::sqlx::Database>::Row| -> Result<$crate::records::PayableRecord, $crate::StorageError> {
            use ::sqlx::Row as _;
            Ok($crate::records::PayableRecord {
                payable_id: r.try_get("payable_id")?,
                region: r.try_get("region_code")?,
                fee_year: r.try_get("fee_year")?,
                id_number: r.try_get("id_number")?,
                category: r.try_get("category")?,
                amount_fen: r.try_get("amount_fen")?,
                basic_fen: r.try_get("basic_fen")?,
                critical_illness_fen: r.try_get("critical_illness_fen")?,
                long_term_care_fen: r.try_get("long_term_care_fen")?,
                policy_amount_fen: r.try_get("policy_amount_fen")?,
                relief_kind: r.try_get("relief_kind")?,
                status: r.try_get("status")?,
                payable_from: r.try_get("payable_from")?,
                supersedes: r.try_get("supersedes")?,
                inputs: r.try_get("inputs")?,
            })
        }
    };
}

/// A closure turning a `persons` row into `PersonColumns`.
#[macro_export]
macro_rules! person_columns_from_row {
    ($db:ty) => {
        |r: &<$db as ::sqlx::Database>::Row| -> Result<$crate::records::PersonColumns, $crate::StorageError> {
            use ::sqlx::Row as _;
            let household: String = r.try_get("household")?;
            let relief_kind: Option<String> = r.try_get("relief_kind")?;
            Ok($crate::records::PersonColumns {
                region_code: r.try_get("region_code")?,
                id_number: r.try_get("id_number")?,
                name: r.try_get("name")?,
                household: $crate::records::household_code(&household)?,
                permit_since: r.try_get("permit_since")?,
                school: r.try_get("school")?,
                phone: r.try_get("phone")?,
                station_code: r.try_get("station_code")?,
                employee_insured: r.try_get("employee_insured")?,
                relief_kind: relief_kind
                    .as_deref()
                    .map(|k| {
                        ::yibao_domain::ReliefKind::from_code(k)
                            .map(::yibao_domain::ReliefKind::code)
                            .ok_or_else(|| $crate::StorageError::corrupt(format!("relief kind {k}")))
                    })
                    .transpose()?,
                certificate_name: r.try_get("certificate_name")?,
                certificate_number: r.try_get("certificate_number")?,
                certificate_valid_until: r.try_get("certificate_valid_until")?,
                subsidy_fen: r.try_get("subsidy_fen")?,
            })
        }
    };
}
