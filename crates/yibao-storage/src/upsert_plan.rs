//! What a batch of person upserts (a roster import, the API) will write, decided without the
//! database from what the batch found stored ([`plan_upserts`]): each person created, changed or
//! left as it is, and each enrolment as the domain decides it
//! ([`yibao_domain::decide_enrolment`]); [`crate::persons`] reads that state under its write
//! transaction and writes the plan. Also the CSV rows of PostgreSQL's bulk
//! copy and the upsert clause both backends share.
//!
//! The shared SQL sticks to what both databases accept: `$N` parameters (sqlx binds them by
//! number on SQLite too), `ON CONFLICT`, `CAST`, `CURRENT_TIMESTAMP`, and no casts with `::`. An
//! upsert's `DO UPDATE SET` takes its time from `excluded` (the inserted row's default), never
//! from `CURRENT_TIMESTAMP`: Citus refuses a function there.

use std::collections::HashMap;

use yibao_domain::{decide_enrolment, RegionCode, StationCode};
pub use yibao_domain::{EnrolmentWrite, StoredEnrolment};

use crate::records::{EnrolmentOutcome, PersonChange, PersonColumns, PersonUpsert};
use crate::StorageError;

/// What the batch found already stored, keyed by ID number.
#[derive(Default)]
pub struct ExistingState {
    /// (region, id) → (columns, version).
    pub persons: HashMap<(String, String), (PersonColumns, i64)>,
    /// (region, id) → the insured number (参保编号) stored.
    pub insured_numbers: HashMap<(String, String), String>,
    /// (fee_year, id) → the person's enrolments that year, in any region.
    pub enrolments: HashMap<(i32, String), Vec<StoredEnrolment>>,
    /// (fee_year, id) of people with a current payable.
    pub assessed: std::collections::HashSet<(i32, String)>,
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
    /// The insured number (参保编号): the stored one, or for a person new to the region the one
    /// issued before writing ([`crate::records::PersonChange::Created`] rows get theirs then).
    pub insured_number: Option<String>,
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
                    insured_number: existing.insured_numbers.get(&key).cloned(),
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
                let stored = existing
                    .enrolments
                    .get(&(year, columns.id_number.clone()))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let assessed = existing
                    .assessed
                    .contains(&(year, columns.id_number.clone()));
                decide_enrolment(request, item.person.region, stored, assessed)
            }
        };
        planned.push(PlannedRow {
            insured_number: existing.insured_numbers.get(&key).cloned(),
            columns,
            change,
            version,
            enrolment_write,
            outcome,
        });
    }
    Ok(planned)
}

/// How a person upsert changes a row already stored: every column from the new version.
pub const PERSONS_UPSERT_CONFLICT: &str = "ON CONFLICT (region_code, id_number) DO UPDATE SET name = excluded.name, \
     household = excluded.household, permit_since = excluded.permit_since, \
     school = excluded.school, phone = excluded.phone, station_code = excluded.station_code, \
     employee_insured = excluded.employee_insured, relief_kind = excluded.relief_kind, \
     certificate_name = excluded.certificate_name, certificate_number = excluded.certificate_number, \
     certificate_valid_until = excluded.certificate_valid_until, subsidy_fen = excluded.subsidy_fen, \
     version = excluded.version, updated_by = excluded.updated_by, updated_at = excluded.updated_at";
