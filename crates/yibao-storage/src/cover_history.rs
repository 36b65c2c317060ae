//! A person's cover history (issue 19): the years an agency's history file gives, yibao's own paid
//! and exempt payables as years of resident insurance, the special situations the agency's
//! situation file gives (exempt groups, a move from employee insurance) and the claims file's
//! years, read together in one statement; and the family account's bindings.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use yibao_domain::cover_history_file::{ClaimRow, HistoryRow, Situation, SituationRow};
use yibao_domain::family_account::{FamilyBinding, Relationship};
use yibao_domain::{
    ClaimYear, CoverHistory, ExemptClaim, IdNumber, LeftEmployee, RegionCode, YearCover,
};

use crate::StorageError;

/// Rows written in one statement: at most six parameters each, well under SQLite's 32 766.
pub const COVER_HISTORY_ROWS_PER_STATEMENT: usize = 1000;

/// Persons read in one statement by [`CoverHistoryStore::stored_covers`].
pub const MAX_STORED_COVERS: usize = 500;

/// What yibao holds of a person for the 2025 rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCover {
    pub history: CoverHistory,
    /// Exempt-group memberships with their events' dates.
    pub claims: Vec<ExemptClaim>,
    /// A move from employee insurance.
    pub left_employee: Option<LeftEmployee>,
    /// The agency's claims by benefit year (reimbursed, reward used), for the zero-claim raise.
    pub claim_years: std::collections::BTreeMap<u16, ClaimYear>,
}

/// The `VALUES` rows of an import statement: the region is `$1` and the import's time `$2` in
/// every row, around `per_row` parameters of each row's own: `($1, $3, $4, …, $2), …`.
fn values(rows: usize, per_row: usize) -> String {
    (0..rows)
        .map(|i| {
            let own: Vec<String> = (0..per_row)
                .map(|j| format!("${}", 3 + per_row * i + j))
                .collect();
            format!("($1, {}, $2)", own.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
pub trait CoverHistoryStore: Send + Sync {
    /// Stores imported years, each replacing the same person's same year, in one transaction.
    async fn put_cover_history(
        &self,
        region: RegionCode,
        rows: &[HistoryRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// Stores imported situations, each replacing the same person's same situation, in one
    /// transaction.
    async fn put_cover_situations(
        &self,
        region: RegionCode,
        rows: &[SituationRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// What yibao holds of a person in a region, in one statement: the imported years, every fee
    /// year with a paid, posted or exempt contribution as resident insurance (that wins over an
    /// imported year), every gap year of a paid back-payment as bought back, and the imported
    /// situations.
    async fn stored_cover(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<StoredCover, StorageError>;
    /// What is stored of each of `id_numbers` (at most [`MAX_STORED_COVERS`]) in a region, in one
    /// statement; a person with nothing stored gets an empty record.
    async fn stored_covers(
        &self,
        region: RegionCode,
        id_numbers: &[IdNumber],
    ) -> Result<HashMap<IdNumber, StoredCover>, StorageError>;
    /// Stores imported claims years, each replacing the same person's same year, in one
    /// transaction.
    async fn put_cover_claims(
        &self,
        region: RegionCode,
        rows: &[ClaimRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// Stores imported family-account bindings, each replacing the same relative's binding to the
    /// same employee, in one transaction.
    async fn put_family_bindings(
        &self,
        region: RegionCode,
        rows: &[FamilyBinding],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// The bindings of `employee` to any of `relatives` in a region, in one statement.
    async fn family_bindings(
        &self,
        region: RegionCode,
        employee: &IdNumber,
        relatives: &[IdNumber],
    ) -> Result<Vec<FamilyBinding>, StorageError>;
    /// Every binding of `relative` in a region, oldest first, at most [`MAX_BINDINGS_SHOWN`].
    async fn family_bindings_of(
        &self,
        region: RegionCode,
        relative: &IdNumber,
    ) -> Result<Vec<FamilyBinding>, StorageError>;
}

#[async_trait]
impl<DB> CoverHistoryStore for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> i32: Decode<'r, DB>,
    for<'q> Option<i32>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB>,
    for<'r> NaiveDate: Decode<'r, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn put_cover_history(
        &self,
        region: RegionCode,
        rows: &[HistoryRow],
        imported_at: i64,
    ) -> Result<u64, StorageError> {
        let import = Import {
            columns: "cover_history (region_code, id_number, benefit_year, cover, bought_back, \
                      imported_at)",
            own_values: 4,
            replace:
                "(region_code, id_number, benefit_year) DO UPDATE SET cover = excluded.cover, \
                      bought_back = excluded.bought_back, imported_at = excluded.imported_at",
        };
        put_rows(self, region, imported_at, rows, &import, |query, row| {
            query
                .bind(row.id_number.as_str().to_owned())
                .bind(i32::from(row.year))
                .bind(row.cover.code().to_owned())
                .bind(row.bought_back)
        })
        .await
    }

    async fn put_cover_situations(
        &self,
        region: RegionCode,
        rows: &[SituationRow],
        imported_at: i64,
    ) -> Result<u64, StorageError> {
        let import = Import {
            columns: "cover_situations (region_code, id_number, situation, event_date, months, \
                      evidence, imported_at)",
            own_values: 5,
            replace: "(region_code, id_number, situation) DO UPDATE SET \
                      event_date = excluded.event_date, months = excluded.months, \
                      evidence = excluded.evidence, imported_at = excluded.imported_at",
        };
        put_rows(self, region, imported_at, rows, &import, |query, row| {
            query
                .bind(row.id_number.as_str().to_owned())
                .bind(row.situation.code().to_owned())
                .bind(row.date)
                .bind(row.months.map(i32::from))
                .bind(row.evidence.clone())
        })
        .await
    }

    async fn stored_cover(
        &self,
        region: RegionCode,
        id_number: &IdNumber,
    ) -> Result<StoredCover, StorageError> {
        let mut stored = self
            .stored_covers(region, std::slice::from_ref(id_number))
            .await?;
        Ok(stored.remove(id_number).unwrap_or_default())
    }

    async fn stored_covers(
        &self,
        region: RegionCode,
        id_numbers: &[IdNumber],
    ) -> Result<HashMap<IdNumber, StoredCover>, StorageError> {
        read_stored_covers(self, region, id_numbers).await
    }

    async fn put_cover_claims(
        &self,
        region: RegionCode,
        rows: &[ClaimRow],
        imported_at: i64,
    ) -> Result<u64, StorageError> {
        let import = Import {
            columns: "cover_claims (region_code, id_number, benefit_year, reimbursed, \
                      reward_used, imported_at)",
            own_values: 4,
            replace: "(region_code, id_number, benefit_year) DO UPDATE SET \
                      reimbursed = excluded.reimbursed, reward_used = excluded.reward_used, \
                      imported_at = excluded.imported_at",
        };
        put_rows(self, region, imported_at, rows, &import, |query, row| {
            query
                .bind(row.id_number.as_str().to_owned())
                .bind(i32::from(row.year))
                .bind(row.claim.reimbursed)
                .bind(row.claim.reward_used)
        })
        .await
    }

    async fn put_family_bindings(
        &self,
        region: RegionCode,
        rows: &[FamilyBinding],
        imported_at: i64,
    ) -> Result<u64, StorageError> {
        let import = Import {
            columns: "family_bindings (region_code, relative_id_number, employee_id_number, \
                      employee_region, relationship, valid_from, valid_until, imported_at)",
            own_values: 6,
            replace: "(region_code, relative_id_number, employee_id_number) DO UPDATE SET \
                      employee_region = excluded.employee_region, \
                      relationship = excluded.relationship, valid_from = excluded.valid_from, \
                      valid_until = excluded.valid_until, imported_at = excluded.imported_at",
        };
        put_rows(self, region, imported_at, rows, &import, |query, row| {
            query
                .bind(row.relative.as_str().to_owned())
                .bind(row.employee.as_str().to_owned())
                .bind(row.employee_region.clone())
                .bind(row.relationship.code().to_owned())
                .bind(row.valid_from)
                .bind(row.valid_until)
        })
        .await
    }

    async fn family_bindings(
        &self,
        region: RegionCode,
        employee: &IdNumber,
        relatives: &[IdNumber],
    ) -> Result<Vec<FamilyBinding>, StorageError> {
        if relatives.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..relatives.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let sql = format!(
            "SELECT relative_id_number, employee_region, relationship, valid_from, valid_until \
             FROM family_bindings WHERE region_code = $1 AND employee_id_number = $2 \
             AND relative_id_number IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql)
            .bind(region.as_str().to_owned())
            .bind(employee.as_str().to_owned());
        for relative in relatives {
            query = query.bind(relative.as_str().to_owned());
        }
        let rows = query.fetch_all(self).await?;
        rows.iter().map(|row| binding_of(row, *employee)).collect()
    }

    async fn family_bindings_of(
        &self,
        region: RegionCode,
        relative: &IdNumber,
    ) -> Result<Vec<FamilyBinding>, StorageError> {
        let rows = sqlx::query(
            "SELECT relative_id_number, employee_region, relationship, valid_from, valid_until, \
             employee_id_number FROM family_bindings WHERE region_code = $1 \
             AND relative_id_number = $2 ORDER BY valid_from, employee_id_number LIMIT $3",
        )
        .bind(region.as_str().to_owned())
        .bind(relative.as_str().to_owned())
        .bind(MAX_BINDINGS_SHOWN)
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|row| {
                let employee: String = row.try_get(5)?;
                binding_of(
                    row,
                    IdNumber::try_from(employee).map_err(StorageError::corrupt)?,
                )
            })
            .collect()
    }
}

/// Where an import's rows go: the table and its columns (the region first, the import's time
/// last), how many values of its own each row binds, and what a row already there becomes
/// (after `ON CONFLICT`).
struct Import {
    columns: &'static str,
    own_values: usize,
    replace: &'static str,
}

/// Writes imported rows of one region in one transaction, [`COVER_HISTORY_ROWS_PER_STATEMENT`]
/// a statement, each replacing the row it matches; `bind` binds a row's own values in order.
async fn put_rows<DB, T>(
    pool: &Pool<DB>,
    region: RegionCode,
    imported_at: i64,
    rows: &[T],
    import: &Import,
    bind: impl for<'q> Fn(
        sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
        &T,
    ) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
) -> Result<u64, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let mut written = 0;
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(COVER_HISTORY_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {} VALUES {} ON CONFLICT {}",
            import.columns,
            values(chunk.len(), import.own_values),
            import.replace
        );
        let mut query = sqlx::query(&sql)
            .bind(region.as_str().to_owned())
            .bind(imported_at);
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *tx).await?;
        written += chunk.len() as u64;
    }
    tx.commit().await?;
    Ok(written)
}

/// Most bindings of one relative a page lists (a person has a handful at most).
pub const MAX_BINDINGS_SHOWN: i64 = 50;

/// A `family_bindings` row read as relative, employee region, relationship, valid from, valid
/// until (columns 0 to 4).
fn binding_of<R: Row>(row: &R, employee: IdNumber) -> Result<FamilyBinding, StorageError>
where
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> NaiveDate: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let relative: String = row.try_get(0)?;
    let relationship: String = row.try_get(2)?;
    Ok(FamilyBinding {
        employee,
        employee_region: row.try_get(1)?,
        relative: IdNumber::try_from(relative).map_err(StorageError::corrupt)?,
        relationship: Relationship::from_code(&relationship)
            .ok_or_else(|| StorageError::corrupt(format!("relationship {relationship}")))?,
        valid_from: row.try_get(3)?,
        valid_until: row.try_get(4)?,
    })
}

/// [`CoverHistoryStore::stored_covers`] on any executor: a pool, or the one connection a search
/// runs all its statements on (`PayableSearch::search_person`).
pub(crate) async fn read_stored_covers<'c, DB, E>(
    executor: E,
    region: RegionCode,
    id_numbers: &[IdNumber],
) -> Result<HashMap<IdNumber, StoredCover>, StorageError>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    for<'r> i32: Decode<'r, DB> + Type<DB>,
    for<'r> NaiveDate: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    if id_numbers.is_empty() {
        return Ok(HashMap::new());
    }
    if id_numbers.len() > MAX_STORED_COVERS {
        return Err(StorageError::Other(
            "too many persons in one read of stored cover".into(),
        ));
    }
    // One list of parameters ($2, $3, …) used by all four parts.
    let list = (0..id_numbers.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT id_number, 'year' AS what, benefit_year AS year, cover, bought_back, \
         CAST(NULL AS DATE) AS event_date, CAST(NULL AS INTEGER) AS months \
         FROM cover_history WHERE region_code = $1 AND id_number IN ({list}) \
         UNION ALL SELECT DISTINCT id_number, 'year', COALESCE(buys_back_year, fee_year), \
         CASE WHEN buys_back_year IS NULL THEN 'resident' ELSE 'none' END, \
         buys_back_year IS NOT NULL, CAST(NULL AS DATE), CAST(NULL AS INTEGER) FROM payables \
         WHERE region_code = $1 AND id_number IN ({list}) AND status IN ('paid', 'posted', 'exempt') \
         UNION ALL SELECT id_number, situation, CAST(NULL AS INTEGER), CAST(NULL AS TEXT), \
         CAST(NULL AS BOOLEAN), event_date, months FROM cover_situations \
         WHERE region_code = $1 AND id_number IN ({list}) \
         UNION ALL SELECT id_number, 'claim', benefit_year, CAST(NULL AS TEXT), reimbursed, \
         CAST(NULL AS DATE), CASE WHEN reward_used THEN 1 ELSE 0 END FROM cover_claims \
         WHERE region_code = $1 AND id_number IN ({list})"
    );
    let mut query = sqlx::query(&sql).bind(region.as_str().to_owned());
    for id in id_numbers {
        query = query.bind(id.as_str().to_owned());
    }
    let rows = query.fetch_all(executor).await?;
    let mut all: HashMap<IdNumber, StoredCover> = id_numbers
        .iter()
        .map(|id| (*id, StoredCover::default()))
        .collect();
    for row in &rows {
        let id: String = row.try_get(0)?;
        let Some(stored) = id_numbers
            .iter()
            .find(|known| known.as_str() == id)
            .and_then(|known| all.get_mut(known))
        else {
            continue;
        };
        let what: String = row.try_get(1)?;
        if what == "year" {
            let year: Option<i32> = row.try_get(2)?;
            let year = year
                .and_then(|y| u16::try_from(y).ok())
                .ok_or_else(|| StorageError::corrupt("cover year"))?;
            let code: Option<String> = row.try_get(3)?;
            let code = code.unwrap_or_default();
            let cover = YearCover::from_code(&code)
                .ok_or_else(|| StorageError::corrupt(format!("cover {code}")))?;
            stored.history.record(year, cover);
            if row.try_get::<Option<bool>, _>(4)?.unwrap_or(false) {
                stored.history.record_bought_back(year);
            }
            continue;
        }
        if what == "claim" {
            let year: Option<i32> = row.try_get(2)?;
            let year = year
                .and_then(|y| u16::try_from(y).ok())
                .ok_or_else(|| StorageError::corrupt("claim year"))?;
            let reimbursed = row.try_get::<Option<bool>, _>(4)?.unwrap_or(false);
            let reward_used = row.try_get::<Option<i32>, _>(6)?.unwrap_or(0) == 1;
            stored.claim_years.insert(
                year,
                ClaimYear {
                    reimbursed,
                    reward_used,
                },
            );
            continue;
        }
        let situation = Situation::from_code(&what)
            .ok_or_else(|| StorageError::corrupt(format!("situation {what}")))?;
        let date: Option<NaiveDate> = row.try_get(5)?;
        let date = date.ok_or_else(|| StorageError::corrupt("situation date"))?;
        match situation {
            Situation::Group(group) => stored.claims.push(ExemptClaim {
                group,
                event_date: date,
            }),
            Situation::LeftEmployee => {
                let months: Option<i32> = row.try_get(6)?;
                stored.left_employee = Some(LeftEmployee {
                    ended_on: date,
                    continuous_months: months.and_then(|m| u16::try_from(m).ok()).unwrap_or(0),
                });
            }
        }
    }
    Ok(all)
}
