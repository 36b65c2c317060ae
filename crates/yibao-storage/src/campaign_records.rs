//! The console's campaign records (issue 16): roster rejection files, the unpaid list with each
//! person's latest follow-up, the follow-ups themselves and the stations' uninsured submissions,
//! written once for both backends as ordinary generic code over sqlx (issue 13). The `Storage`
//! methods of the same names forward here (`storage_impl.rs`).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use yibao_domain::unpaid::NoticeMethod;
use yibao_domain::{FeeYear, RegionCode, StationCode};

use crate::records::{
    standing_owes, FollowUpRecord, LatestFollowUp, NewFollowUp, RejectionFile, StandingColumns,
    StandingRow, UninsuredSubmission, UnpaidPage, UnpaidRow, MAX_FOLLOW_UPS_READ,
    MAX_REJECTION_FILES_PRUNED, MAX_UNPAID_PAGE_ROWS,
};
use crate::rows::record;
use crate::StorageError;

/// The campaign records on one database.
#[async_trait]
pub trait CampaignRecords: Send + Sync {
    /// Keeps an import's rejection file under its uploader's region and import id (the key); a
    /// second one for the same key replaces the first.
    async fn put_rejection_file(&self, file: &RejectionFile) -> Result<(), StorageError>;
    async fn get_rejection_file(
        &self,
        region: &str,
        import_id: &str,
    ) -> Result<Option<RejectionFile>, StorageError>;
    /// One page of a region's (or a station's) unpaid list with each row's latest follow-up,
    /// in the order of `standing` and of the export's batches (`console_reads::unpaid_after`).
    async fn unpaid_page(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        station: Option<&StationCode>,
        offset: usize,
        limit: usize,
    ) -> Result<UnpaidPage, StorageError>;
    /// Records a follow-up under the person's next number; answers it.
    async fn add_follow_up(&self, f: &NewFollowUp) -> Result<i64, StorageError>;
    /// A person's follow-ups in a fee year, newest first.
    async fn follow_ups(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<FollowUpRecord>, StorageError>;
    /// A station's 未参保名单 for a fee year, once (the key refuses a second).
    async fn submit_uninsured(&self, u: &UninsuredSubmission) -> Result<(), StorageError>;
    /// The stations of a region that submitted for a fee year (without their lines).
    async fn uninsured_submissions(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
    ) -> Result<Vec<UninsuredSubmission>, StorageError>;
    /// Forgets at most a bounded batch of rejection files created before `before`, oldest
    /// first; answers how many.
    async fn prune_rejection_files(&self, before: i64) -> Result<u64, StorageError>;
}

/// One page of the owing of `standing_of`/`standing_owes` (enrolled, not refused, and no current
/// payable or one neither paid nor exempt), with each row's latest follow-up: the persons walked
/// along their index by station (none first) and ID number, each person's enrolment and payable
/// probed, until the page is full. `$3` and `$4` are the page's `LIMIT` and `OFFSET`; `$5` the
/// station, where one is asked. Every table is filtered on the region itself (not through a
/// CTE's column), so that on Citus the whole statement goes to the region's shard.
///
/// How many owe and how much is not counted here: the window sums it once carried read every
/// owing row of the scope on every page (a region of 1 000 000 owing: 3.0 s a page, one station
/// of 50 000: 0.9-1.0 s), where a page alone reads its own rows and those before it. The console
/// shows the totals of the collection progress it keeps ([`crate::Storage::collection_progress`],
/// the same owing), computed at most once a minute (BENCHMARKS.md, "The unpaid list's totals
/// from the progress the console keeps").
fn unpaid_page_sql(one_station: bool) -> String {
    let scope = if one_station {
        "p.station_code = $5"
    } else {
        "TRUE"
    };
    format!(
        "WITH page AS ( \
           SELECT p.region_code, p.station_code, p.id_number, p.name, p.phone, \
             e.status AS enrolment_status, y.status AS payable_status, y.amount_fen \
           FROM persons p \
           JOIN enrolments e ON e.region_code = p.region_code AND e.id_number = p.id_number \
                AND e.fee_year = $2 \
           LEFT JOIN payables y ON y.region_code = p.region_code AND y.id_number = p.id_number \
                AND y.fee_year = $2 AND y.status NOT IN ('superseded', 'cancelled') AND y.buys_back_year IS NULL \
           WHERE p.region_code = $1 AND {scope} AND e.status <> 'refused' \
             AND (y.status IS NULL OR y.status NOT IN ('paid', 'posted', 'exempt')) \
           ORDER BY p.station_code NULLS FIRST, p.id_number LIMIT $3 OFFSET $4) \
         SELECT g.*, f.told_on, f.told_how, f.signed_scanned, f.reason FROM page g \
         LEFT JOIN unpaid_follow_ups f ON f.region_code = $1 AND f.fee_year = $2 \
              AND f.id_number = g.id_number \
              AND f.seq = (SELECT MAX(h.seq) FROM unpaid_follow_ups h \
                           WHERE h.region_code = $1 AND h.fee_year = $2 AND h.id_number = g.id_number) \
         ORDER BY g.station_code NULLS FIRST, g.id_number"
    )
}

fn notice_method(how: &str) -> Result<NoticeMethod, StorageError> {
    NoticeMethod::parse(how).ok_or_else(|| StorageError::corrupt(format!("notice method {how}")))
}

/// A row of the unpaid list: the person's standing and their latest follow-up (`NULL`s when
/// there is none).
#[derive(sqlx::FromRow)]
struct UnpaidPageRow {
    #[sqlx(flatten)]
    person: StandingColumns,
    told_how: Option<String>,
    told_on: Option<NaiveDate>,
    signed_scanned: Option<bool>,
    reason: Option<String>,
}

impl UnpaidPageRow {
    fn into_unpaid_row(self) -> Result<UnpaidRow, StorageError> {
        let latest = match (
            self.told_how,
            self.told_on,
            self.signed_scanned,
            self.reason,
        ) {
            (None, ..) => None,
            (Some(how), Some(told_on), Some(signed_scanned), Some(reason)) => {
                Some(LatestFollowUp {
                    told_on,
                    told_how: notice_method(&how)?,
                    signed_scanned,
                    reason,
                })
            }
            _ => return Err(StorageError::corrupt("unpaid list row's follow-up")),
        };
        let row = StandingRow::try_from(self.person)?;
        if !standing_owes(&row.standing) {
            return Err(StorageError::corrupt(format!(
                "unpaid list row of standing {}",
                row.standing
            )));
        }
        Ok(UnpaidRow { row, latest })
    }
}

/// An `unpaid_follow_ups` row.
#[derive(sqlx::FromRow)]
struct FollowUpRow {
    seq: i64,
    station_code: Option<String>,
    told_on: NaiveDate,
    told_how: String,
    signed_scanned: bool,
    reason: String,
    note: Option<String>,
    recorded_by: String,
    recorded_at: i64,
}

/// An `uninsured_submissions` row, as a summary (without its lines).
#[derive(sqlx::FromRow)]
struct UninsuredRow {
    station_code: String,
    submitted_by: String,
    submitted_at: i64,
    persons: i64,
    with_reason: i64,
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl<DB> CampaignRecords for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> NaiveDate: Decode<'r, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn put_rejection_file(&self, file: &RejectionFile) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO roster_rejection_files (region_code, import_id, station_code, \
             uploaded_by, created_at, file_name, rows_kept, content) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (region_code, import_id) DO UPDATE SET \
             station_code = excluded.station_code, uploaded_by = excluded.uploaded_by, \
             created_at = excluded.created_at, file_name = excluded.file_name, \
             rows_kept = excluded.rows_kept, content = excluded.content",
        )
        .bind(file.region.clone())
        .bind(file.import_id.clone())
        .bind(file.station_code.clone())
        .bind(file.uploaded_by.clone())
        .bind(file.created_at)
        .bind(file.file_name.clone())
        .bind(file.rows_kept)
        .bind(file.content.clone())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn get_rejection_file(
        &self,
        region: &str,
        import_id: &str,
    ) -> Result<Option<RejectionFile>, StorageError> {
        let row = sqlx::query(
            "SELECT region_code, import_id, station_code, uploaded_by, created_at, file_name, \
             rows_kept, content FROM roster_rejection_files \
             WHERE region_code = $1 AND import_id = $2",
        )
        .bind(region.to_owned())
        .bind(import_id.to_owned())
        .fetch_optional(self)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(crate::rows::record::<RejectionFile, _>(&r)?))
    }

    async fn unpaid_page(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        station: Option<&StationCode>,
        offset: usize,
        limit: usize,
    ) -> Result<UnpaidPage, StorageError> {
        let limit = limit.min(MAX_UNPAID_PAGE_ROWS);
        let sql = unpaid_page_sql(station.is_some());
        // One row past the page says whether another page follows.
        let mut query = sqlx::query(&sql)
            .bind(region.as_str().to_owned())
            .bind(i32::from(fee_year.get()))
            .bind(as_i64(limit + 1))
            .bind(as_i64(offset));
        if let Some(station) = station {
            query = query.bind(station.as_str().to_owned());
        }
        let rows = query.fetch_all(self).await?;
        let mut page = UnpaidPage {
            rows: Vec::with_capacity(limit),
            more: rows.len() > limit,
        };
        for r in rows.iter().take(limit) {
            page.rows
                .push(record::<UnpaidPageRow, _>(r)?.into_unpaid_row()?);
        }
        Ok(page)
    }

    async fn add_follow_up(&self, f: &NewFollowUp) -> Result<i64, StorageError> {
        // The next number of the person and year; two records at once meet the key.
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO unpaid_follow_ups (region_code, fee_year, id_number, seq, station_code, \
             told_on, told_how, signed_scanned, reason, note, recorded_by, recorded_at) \
             SELECT $1, $2, $3, COALESCE(MAX(seq), 0) + 1, $4, $5, $6, $7, $8, $9, $10, $11 \
             FROM unpaid_follow_ups WHERE region_code = $1 AND fee_year = $2 AND id_number = $3 \
             RETURNING seq",
        )
        .bind(f.region.as_str().to_owned())
        .bind(i32::from(f.fee_year.get()))
        .bind(f.id_number.as_str().to_owned())
        .bind(f.station_code.clone())
        .bind(f.told_on)
        .bind(f.told_how.code().to_owned())
        .bind(f.signed_scanned)
        .bind(f.reason.clone())
        .bind(f.note.clone())
        .bind(f.recorded_by.clone())
        .bind(f.recorded_at)
        .fetch_one(self)
        .await?;
        Ok(seq)
    }

    async fn follow_ups(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<FollowUpRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT seq, station_code, told_on, told_how, signed_scanned, reason, note, \
             recorded_by, recorded_at FROM unpaid_follow_ups \
             WHERE region_code = $1 AND fee_year = $2 AND id_number = $3 \
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(region.as_str().to_owned())
        .bind(i32::from(fee_year.get()))
        .bind(id_number.as_str().to_owned())
        .bind(as_i64(MAX_FOLLOW_UPS_READ))
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| {
                let row = record::<FollowUpRow, _>(r)?;
                Ok(FollowUpRecord {
                    seq: row.seq,
                    follow_up: NewFollowUp {
                        region,
                        fee_year,
                        id_number: *id_number,
                        station_code: row.station_code,
                        told_on: row.told_on,
                        told_how: notice_method(&row.told_how)?,
                        signed_scanned: row.signed_scanned,
                        reason: row.reason,
                        note: row.note,
                        recorded_by: row.recorded_by,
                        recorded_at: row.recorded_at,
                    },
                })
            })
            .collect()
    }

    async fn submit_uninsured(&self, u: &UninsuredSubmission) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO uninsured_submissions (region_code, fee_year, station_code, submitted_by, \
             submitted_at, persons, with_reason, lines) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.region.as_str().to_owned())
        .bind(i32::from(u.fee_year.get()))
        .bind(u.station_code.clone())
        .bind(u.submitted_by.clone())
        .bind(u.submitted_at)
        .bind(u.persons)
        .bind(u.with_reason)
        .bind(u.lines.clone())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn uninsured_submissions(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
    ) -> Result<Vec<UninsuredSubmission>, StorageError> {
        let rows = sqlx::query(
            "SELECT station_code, submitted_by, submitted_at, persons, with_reason \
             FROM uninsured_submissions WHERE region_code = $1 AND fee_year = $2 \
             ORDER BY station_code",
        )
        .bind(region.as_str().to_owned())
        .bind(i32::from(fee_year.get()))
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| {
                let row = record::<UninsuredRow, _>(r)?;
                Ok(UninsuredSubmission {
                    region,
                    fee_year,
                    station_code: row.station_code,
                    submitted_by: row.submitted_by,
                    submitted_at: row.submitted_at,
                    persons: row.persons,
                    with_reason: row.with_reason,
                    lines: String::new(),
                })
            })
            .collect()
    }

    async fn prune_rejection_files(&self, before: i64) -> Result<u64, StorageError> {
        // Oldest first, a bounded batch: the index on created_at finds them.
        let gone: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM roster_rejection_files WHERE (region_code, import_id) IN \
             (SELECT region_code, import_id FROM roster_rejection_files WHERE created_at < $1 \
              ORDER BY created_at LIMIT $2) RETURNING import_id",
        )
        .bind(before)
        .bind(as_i64(MAX_REJECTION_FILES_PRUNED))
        .fetch_all(self)
        .await?;
        Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
    }
}
