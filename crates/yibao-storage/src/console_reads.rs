//! Reads of the staff console's first page, written once for both backends as ordinary generic
//! code over sqlx (issue 13): the `Storage` implementation (`storage_impl.rs`) calls these with
//! the pool that serves reads.

use chrono::NaiveDate;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use yibao_domain::{IdNumber, RegionCode};

use crate::StorageError;

/// Each count of [`MoneyCounts`] stops at this many: the page shows "≥ 10 000" rather than
/// reading on (a campaign without a posting target can hold a million unposted payments).
pub const MONEY_COUNT_CAP: i64 = 10_000;

/// The money matters a scope answers for, each counted up to [`MONEY_COUNT_CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoneyCounts {
    /// Refunds owed (not yet handed to the channel).
    pub refunds_owed: i64,
    /// Refunds owed, handed over or failed whose due day is before today.
    pub refunds_overdue: i64,
    /// Reconciliation differences of statements from `differences_since` on, not resolved.
    pub differences: i64,
    /// Applied payments not yet posted to the agency (到帐).
    pub unposted: i64,
    /// Of those, the ones created before `late_before` (older than the two days allowed).
    pub unposted_late: i64,
}

/// What [`money_counts`] counts: one region or all of them, as of `today` and `now`.
#[derive(Debug, Clone)]
pub struct MoneyCountsQuery<'a> {
    pub region: Option<&'a str>,
    pub today: NaiveDate,
    /// Reconciliation statements from this day on.
    pub differences_since: NaiveDate,
    /// Unix seconds: events created before this are counted as unposted.
    pub now: i64,
    /// Unix seconds: unposted events created before this are late.
    pub late_before: i64,
}

/// One statement, five bounded counts (each a `LIMIT`ed subquery, so the cost stays bounded
/// however much has piled up). Every subquery filters on the region first.
const MONEY_COUNTS_SQL: &str = "SELECT \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM refunds \
        WHERE (region_code = $1 OR ($2 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) AND status = 'owed' LIMIT $3) owed), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM refunds \
        WHERE (region_code = $1 OR ($2 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) AND status IN ('owed', 'sent', 'failed') AND due < $4 LIMIT $3) overdue), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM reconciliation_items \
        WHERE (region_code = $1 OR ($2 AND (region_code IS NULL OR region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox)) \
               AND channel_id NOT IN (SELECT tc.channel_id FROM channels tc WHERE tc.test_mode))) AND statement_date BETWEEN $5 AND $4 AND status <> 'resolved' LIMIT $3) differences), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox \
        WHERE (region_code = $1 OR ($2 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) AND delivered_at IS NULL AND kind = 'payment_applied' AND created_at < $6 LIMIT $3) unposted), \
     (SELECT COUNT(*) FROM (SELECT 1 AS x FROM outbox \
        WHERE (region_code = $1 OR ($2 AND region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) AND delivered_at IS NULL AND kind = 'payment_applied' AND created_at < $7 LIMIT $3) late)";

/// The console's money counts in one round trip ([`MoneyCounts`]).
pub async fn money_counts<DB>(
    pool: &Pool<DB>,
    query: &MoneyCountsQuery<'_>,
) -> Result<MoneyCounts, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, i64, i64, i64, i64): FromRow<'r, DB::Row>,
{
    let (refunds_owed, refunds_overdue, differences, unposted, unposted_late) =
        sqlx::query_as::<DB, (i64, i64, i64, i64, i64)>(MONEY_COUNTS_SQL)
            .bind(query.region.unwrap_or_default().to_owned())
            .bind(query.region.is_none())
            .bind(MONEY_COUNT_CAP)
            .bind(query.today)
            .bind(query.differences_since)
            .bind(query.now)
            .bind(query.late_before)
            .fetch_one(pool)
            .await?;
    Ok(MoneyCounts {
        refunds_owed,
        refunds_overdue,
        differences,
        unposted,
        unposted_late,
    })
}

/// Most rows one batch of [`unpaid_after`] reads: an export of 100 000 people is 20 batches
/// (a statement each, two for the batch that passes from the people without a station to the
/// others), and a batch held in memory is about a megabyte.
pub const MAX_UNPAID_BATCH_ROWS: usize = 5_000;

/// Where a batch of the unpaid list starts: after this station (empty for none) and ID number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpaidCursor {
    pub station: String,
    pub id_number: String,
}

impl UnpaidCursor {
    /// The cursor of the batch after `row`.
    pub fn after(row: &crate::records::UnpaidRow) -> UnpaidCursor {
        UnpaidCursor {
            station: row.row.station_code.clone().unwrap_or_default(),
            id_number: row.row.id_number.as_str().to_owned(),
        }
    }
}

/// The unpaid list in batches for an export: the same people as `Storage::unpaid_page` (the
/// enrolled who owe), ordered by station (none first) and ID number, after `cursor`, each with
/// their latest follow-up. Keyset, not `OFFSET`, and no whole-list sums: each batch reads only
/// its own rows, so an export of 100 000 costs 20 short batches instead of 200 statements that
/// each read the whole list. Every table is filtered on the region itself (one shard on Citus).
///
/// The people are read along the persons' index on region, station and ID number
/// (`persons_by_station_and_id`) from the cursor on, in one of three parts
/// ([`UnpaidPart`]), each a range of that index: a batch reads its own rows and stops. The
/// keyset once compared `COALESCE(station, '')`, which no index serves, so every batch read and
/// sorted the region's or station's whole list again (at 1 000 000 people, 0.6-1.0 s a batch of
/// the region's, 0.3 s of a station's; now 0.04-0.07 s).
fn unpaid_after_sql(part: UnpaidPart) -> String {
    // $3: the station exported, or the cursor's; $4: the cursor's ID number. Every part names
    // all five parameters (the people without a station: `$3 = ''`, which the caller makes
    // true), so that each binds the same values in the same order.
    let (after, order) = match part {
        UnpaidPart::WithoutStation => (
            "p.station_code IS NULL AND $3 = '' AND p.id_number > $4",
            "p.id_number",
        ),
        UnpaidPart::Stations => (
            "p.station_code IS NOT NULL AND (p.station_code, p.id_number) > ($3, $4)",
            "p.station_code NULLS FIRST, p.id_number",
        ),
        // The range twice: SQLite's index range is the ID number's, and with that alone
        // PostgreSQL merge-joined the enrolments' index of ID numbers from its start (0.2 s a
        // batch at 1 000 000 people, against 0.04-0.06 s with the row comparison beside it).
        UnpaidPart::OneStation => (
            "p.station_code = $3 AND p.id_number > $4 AND (p.station_code, p.id_number) > ($3, $4)",
            "p.station_code NULLS FIRST, p.id_number",
        ),
    };
    format!(
        "WITH owing AS ( \
           SELECT p.station_code, p.id_number, p.name, p.phone, e.status AS enrolment_status, \
             y.status AS payable_status, y.amount_fen \
           FROM persons p \
           JOIN enrolments e ON e.region_code = p.region_code AND e.id_number = p.id_number AND e.fee_year = $2 \
           LEFT JOIN payables y ON y.region_code = p.region_code AND y.id_number = p.id_number AND y.fee_year = $2 \
                AND y.status NOT IN ('superseded', 'cancelled') AND y.buys_back_year IS NULL \
           WHERE p.region_code = $1 AND {after} AND e.status <> 'refused' \
             AND (y.status IS NULL OR y.status NOT IN ('paid', 'posted', 'exempt')) \
           ORDER BY {order} LIMIT $5) \
         SELECT o.station_code, o.id_number, o.name, o.phone, o.enrolment_status, o.payable_status, o.amount_fen, \
           f.told_on, f.told_how, f.signed_scanned, f.reason FROM owing o \
         LEFT JOIN unpaid_follow_ups f ON f.region_code = $1 AND f.fee_year = $2 AND f.id_number = o.id_number \
              AND f.seq = (SELECT MAX(g.seq) FROM unpaid_follow_ups g \
                           WHERE g.region_code = $1 AND g.fee_year = $2 AND g.id_number = o.id_number) \
         ORDER BY o.station_code NULLS FIRST, o.id_number"
    )
}

/// A range of the persons' index an unpaid batch reads ([`unpaid_after_sql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnpaidPart {
    /// Of every station: the people without one, who come first.
    WithoutStation,
    /// Of every station: the people with one.
    Stations,
    /// One station's people.
    OneStation,
}

/// One row of [`unpaid_after_sql`].
type UnpaidAfterRow = (
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<NaiveDate>,
    Option<String>,
    Option<bool>,
    Option<String>,
);

/// What [`unpaid_after`] reads: a region's fee year, one station or all, after `cursor`.
#[derive(Debug, Clone)]
pub struct UnpaidBatchQuery<'a> {
    pub region: &'a str,
    pub fee_year: i32,
    pub station: Option<&'a str>,
    pub cursor: &'a UnpaidCursor,
    /// At most [`MAX_UNPAID_BATCH_ROWS`].
    pub limit: usize,
}

/// One batch of the unpaid list ([`unpaid_after_sql`]); fewer than `limit` rows means the end.
pub async fn unpaid_after<DB>(
    pool: &Pool<DB>,
    query: &UnpaidBatchQuery<'_>,
) -> Result<Vec<crate::records::UnpaidRow>, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> UnpaidAfterRow: FromRow<'r, DB::Row>,
{
    let limit = query.limit.min(MAX_UNPAID_BATCH_ROWS);
    // The parts the batch may read, each after its own cursor: the people without a station
    // (while the cursor is among them), then those with one from the start.
    let parts: Vec<(UnpaidPart, &str, &str)> = match query.station {
        Some(station) => vec![(UnpaidPart::OneStation, station, &query.cursor.id_number)],
        None if query.cursor.station.is_empty() => vec![
            (UnpaidPart::WithoutStation, "", &query.cursor.id_number),
            (UnpaidPart::Stations, "", ""),
        ],
        None => vec![(
            UnpaidPart::Stations,
            &query.cursor.station,
            &query.cursor.id_number,
        )],
    };
    let mut rows: Vec<UnpaidAfterRow> = Vec::new();
    for (part, station, id_number) in parts {
        if rows.len() >= limit {
            break;
        }
        let sql = unpaid_after_sql(part);
        rows.extend(
            sqlx::query_as::<DB, UnpaidAfterRow>(&sql)
                .bind(query.region.to_owned())
                .bind(query.fee_year)
                .bind(station.to_owned())
                .bind(id_number.to_owned())
                .bind(i64::try_from(limit - rows.len()).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?,
        );
    }
    let mut out = Vec::with_capacity(rows.len());
    for (
        station,
        id_number,
        name,
        phone,
        enrolment,
        payable,
        amount,
        told_on,
        told_how,
        signed,
        reason,
    ) in rows
    {
        let (standing, detail) =
            crate::records::standing_of(Some(&enrolment), payable.as_deref(), None);
        if !crate::records::standing_owes(standing) {
            return Err(StorageError::corrupt(format!(
                "unpaid list row of standing {standing}"
            )));
        }
        let latest = match (told_on, told_how) {
            (Some(told_on), Some(how)) => Some(crate::records::LatestFollowUp {
                told_on,
                told_how: yibao_domain::unpaid::NoticeMethod::parse(&how)
                    .ok_or_else(|| StorageError::corrupt(format!("notice method {how}")))?,
                signed_scanned: signed.unwrap_or(false),
                reason: reason.unwrap_or_default(),
            }),
            _ => None,
        };
        out.push(crate::records::UnpaidRow {
            row: crate::records::StandingRow {
                region: RegionCode::parse(query.region).map_err(StorageError::corrupt)?,
                station_code: station,
                id_number: IdNumber::try_from(id_number).map_err(StorageError::corrupt)?,
                name,
                standing: standing.to_owned(),
                detail,
                amount_fen: amount,
                phone,
            },
            latest,
        });
    }
    Ok(out)
}

/// One station's submitted 未参保名单 with its lines (`uninsured_submissions`), or `None`.
pub async fn uninsured_submission<DB>(
    pool: &Pool<DB>,
    region: yibao_domain::RegionCode,
    fee_year: yibao_domain::FeeYear,
    station: &str,
) -> Result<Option<crate::records::UninsuredSubmission>, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> (String, i64, i64, i64, String): FromRow<'r, DB::Row>,
{
    let row = sqlx::query_as::<DB, (String, i64, i64, i64, String)>(
        "SELECT submitted_by, submitted_at, persons, with_reason, lines FROM uninsured_submissions \
         WHERE region_code = $1 AND fee_year = $2 AND station_code = $3",
    )
    .bind(region.as_str().to_owned())
    .bind(i32::from(fee_year.get()))
    .bind(station.to_owned())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(submitted_by, submitted_at, persons, with_reason, lines)| {
            crate::records::UninsuredSubmission {
                region,
                fee_year,
                station_code: station.to_owned(),
                submitted_by,
                submitted_at,
                persons,
                with_reason,
                lines,
            }
        },
    ))
}

/// Persons per region, station and the two statuses that decide a standing in `fee_year`; the
/// standing is named in Rust by the one rule ([`crate::records::standing_of`]), so lists and
/// counts cannot disagree.
const PROGRESS_SQL: &str = "SELECT p.region_code, p.station_code, e.status AS enrolment_status, \
     y.status AS payable_status, COUNT(*) AS persons, \
     CAST(COALESCE(SUM(y.amount_fen), 0) AS BIGINT) AS owed_fen \
     FROM persons p \
     LEFT JOIN enrolments e ON e.region_code = p.region_code AND e.id_number = p.id_number \
          AND e.fee_year = $1 \
     LEFT JOIN payables y ON y.region_code = p.region_code AND y.id_number = p.id_number \
          AND y.fee_year = $1 AND y.status NOT IN ('superseded', 'cancelled') AND y.buys_back_year IS NULL \
     WHERE (p.region_code = $2 OR ($3 AND p.region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox))) AND (p.station_code = $4 OR $5) \
     GROUP BY p.region_code, p.station_code, e.status, y.status";

/// A row of [`PROGRESS_SQL`]: region, station, enrolment and payable statuses, persons, and
/// their payables' amounts together.
type ProgressSqlRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// How far collection has come ([`crate::Storage::collection_progress`]), in one statement.
pub async fn collection_progress<DB>(
    pool: &Pool<DB>,
    region: Option<yibao_domain::RegionCode>,
    fee_year: yibao_domain::FeeYear,
    station: Option<&yibao_domain::StationCode>,
) -> Result<Vec<crate::records::ProgressRow>, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> ProgressSqlRow: FromRow<'r, DB::Row>,
{
    let rows = sqlx::query_as::<DB, ProgressSqlRow>(PROGRESS_SQL)
        .bind(i32::from(fee_year.get()))
        .bind(region.map(|r| r.to_string()))
        .bind(region.is_none())
        .bind(station.map(|s| s.as_str().to_owned()))
        .bind(station.is_none())
        .fetch_all(pool)
        .await?;
    let mut out: Vec<crate::records::ProgressRow> = Vec::new();
    for (region, station_code, enrolment, payable, persons, owed_fen) in rows {
        let region = RegionCode::try_from(region).map_err(StorageError::corrupt)?;
        let (standing, _) =
            crate::records::standing_of(enrolment.as_deref(), payable.as_deref(), None);
        match out.iter_mut().find(|o| {
            o.region == region && o.station_code == station_code && o.standing == standing
        }) {
            Some(o) => {
                o.persons += persons;
                o.owed_fen += owed_fen;
            }
            None => out.push(crate::records::ProgressRow {
                region,
                station_code,
                standing,
                persons,
                owed_fen,
            }),
        }
    }
    Ok(out)
}

/// Persons of a region whose name is `name_prefix` or begins with it, in code-point order: a
/// range from the prefix up to the prefix followed by the last code point. `name_order` is the
/// backend's collation clause for that order (`COLLATE "C"` on PostgreSQL, whose index is built
/// so; nothing on SQLite, whose BINARY is the same order).
pub async fn find_persons_by_name<DB>(
    pool: &Pool<DB>,
    name_order: &str,
    region: yibao_domain::RegionCode,
    name_prefix: &str,
    station: Option<&yibao_domain::StationCode>,
    limit: usize,
) -> Result<Vec<crate::records::PersonSummary>, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (String, String, String, Option<String>): FromRow<'r, DB::Row>,
{
    let upper = format!("{name_prefix}\u{10FFFF}");
    let sql = format!(
        "SELECT region_code, id_number, name, station_code FROM persons \
         WHERE region_code = $1 AND name {c} >= $2 AND name {c} <= $3 \
         AND (station_code = $4 OR $5) ORDER BY name {c}, id_number LIMIT $6",
        c = name_order,
    );
    let rows = sqlx::query_as::<DB, (String, String, String, Option<String>)>(&sql)
        .bind(region.as_str().to_owned())
        .bind(name_prefix.to_owned())
        .bind(upper)
        .bind(station.map(|s| s.as_str().to_owned()))
        .bind(station.is_none())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(region, id_number, name, station_code)| {
            Ok(crate::records::PersonSummary {
                region: RegionCode::try_from(region).map_err(StorageError::corrupt)?,
                id_number: IdNumber::try_from(id_number).map_err(StorageError::corrupt)?,
                name,
                station_code,
            })
        })
        .collect()
}
