//! Pooling regions, their fee policies and their holiday calendars, written once for both
//! backends as ordinary generic code over sqlx (issue 13). The `Storage` methods of the same names
//! forward here (`storage_impl.rs`).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use yibao_domain::{
    CalendarNotice, CalendarYear, FeePolicy, FeeYear, PoolingRegion, RegionCode, WorkingCalendar,
};

use crate::rows::record;
use crate::{
    assemble_fee_policy, calendar_from_rows, cover_rules_json, day_kind_code, day_kind_of,
    fee_policy_amount_rows, region_from_row, CalendarDayRecord, CalendarYearRecord,
    FeePolicyAmountRow, FeePolicyRow, StorageError,
};

/// Regions, fee policies and calendars on one database.
#[async_trait]
pub trait RegionSetup: Send + Sync {
    async fn upsert_region(&self, region: &PoolingRegion) -> Result<(), StorageError>;
    async fn get_region(&self, code: RegionCode) -> Result<Option<PoolingRegion>, StorageError>;
    /// Every region in production (a sandbox, 接入测试, is left out).
    async fn list_regions(&self) -> Result<Vec<PoolingRegion>, StorageError>;
    /// Stores a fee policy with all its amounts, replacing the year's old ones, in one
    /// transaction.
    async fn put_fee_policy(&self, policy: &FeePolicy) -> Result<(), StorageError>;
    /// A region's fee policies, one year or all, by year.
    async fn fee_policies(
        &self,
        region: RegionCode,
        fee_year: Option<FeeYear>,
    ) -> Result<Vec<FeePolicy>, StorageError>;
    /// A region's own calendar for a year, replacing its own days of that year.
    async fn put_calendar_year(
        &self,
        region: RegionCode,
        year: &CalendarYear,
    ) -> Result<(), StorageError>;
    /// The State Council's calendar for a year; a day the region set itself wins.
    async fn put_national_calendar_year(
        &self,
        region: RegionCode,
        notice: &CalendarNotice,
    ) -> Result<(), StorageError>;
    async fn working_calendar(&self, region: RegionCode) -> Result<WorkingCalendar, StorageError>;
    async fn calendar_year_record(
        &self,
        region: RegionCode,
        year: i32,
    ) -> Result<Option<CalendarYearRecord>, StorageError>;
}

/// One statement for a year's days (at most 366, two parameters each; on a Citus cluster each
/// statement on a reference table is written to every node): the region is `$1`, the origin
/// `$2`, then each day and its kind.
fn insert_days_sql(days: usize, on_conflict: &str) -> String {
    let rows: Vec<String> = (0..days)
        .map(|i| format!("($1, ${}, ${}, $2)", 3 + 2 * i, 4 + 2 * i))
        .collect();
    format!(
        "INSERT INTO calendar_days (region_code, day, kind, origin) VALUES {} {on_conflict}",
        rows.join(", ")
    )
}

/// 1 January and 31 December of `year`.
fn year_bounds(year: i32) -> Result<(NaiveDate, NaiveDate), StorageError> {
    let first = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| StorageError::corrupt("year"))?;
    let last =
        NaiveDate::from_ymd_opt(year, 12, 31).ok_or_else(|| StorageError::corrupt("year"))?;
    Ok((first, last))
}

#[async_trait]
impl<DB> RegionSetup for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> i32: Decode<'r, DB>,
    for<'r> NaiveDate: Decode<'r, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn upsert_region(&self, region: &PoolingRegion) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO pooling_regions (region_code, name) VALUES ($1, $2) \
             ON CONFLICT (region_code) DO UPDATE SET name = excluded.name, \
             updated_at = excluded.updated_at WHERE pooling_regions.name <> excluded.name",
        )
        .bind(region.code().as_str().to_owned())
        .bind(region.name().to_owned())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn get_region(&self, code: RegionCode) -> Result<Option<PoolingRegion>, StorageError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT region_code, name FROM pooling_regions WHERE region_code = $1")
                .bind(code.as_str().to_owned())
                .fetch_optional(self)
                .await?;
        row.map(|(code, name)| region_from_row(&code, &name))
            .transpose()
    }

    async fn list_regions(&self) -> Result<Vec<PoolingRegion>, StorageError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT region_code, name FROM pooling_regions WHERE NOT sandbox ORDER BY region_code",
        )
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|(code, name)| region_from_row(code, name))
            .collect()
    }

    async fn put_fee_policy(&self, policy: &FeePolicy) -> Result<(), StorageError> {
        let region = policy.region().as_str().to_owned();
        let year = i32::from(policy.fee_year().get());
        let adult_age = i32::try_from(policy.adult_age()).map_err(StorageError::corrupt)?;
        // Its first statement writes: SQLite takes the write lock there.
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO fee_policies (region_code, fee_year, age_reference_date, adult_age, \
             window_opens, window_closes, late_payment_allowed, cover_rules) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (region_code, fee_year) DO UPDATE SET \
             age_reference_date = excluded.age_reference_date, adult_age = excluded.adult_age, \
             window_opens = excluded.window_opens, window_closes = excluded.window_closes, \
             late_payment_allowed = excluded.late_payment_allowed, \
             cover_rules = excluded.cover_rules, updated_at = excluded.updated_at",
        )
        .bind(region.clone())
        .bind(year)
        .bind(policy.age_reference_date())
        .bind(adult_age)
        .bind(policy.window().opens())
        .bind(policy.window().closes())
        .bind(policy.late_payment_allowed())
        .bind(cover_rules_json(policy)?)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM fee_policy_amounts WHERE region_code = $1 AND fee_year = $2")
            .bind(region.clone())
            .bind(year)
            .execute(&mut *tx)
            .await?;
        for row in fee_policy_amount_rows(policy) {
            sqlx::query(
                "INSERT INTO fee_policy_amounts (region_code, fee_year, category, component, \
                 amount_fen) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(region.clone())
            .bind(year)
            .bind(row.category)
            .bind(row.component)
            .bind(row.amount_fen)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fee_policies(
        &self,
        region: RegionCode,
        fee_year: Option<FeeYear>,
    ) -> Result<Vec<FeePolicy>, StorageError> {
        let year = fee_year.map(|y| i32::from(y.get()));
        // One snapshot for the policies and their amounts.
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT region_code, CAST(fee_year AS INTEGER) AS fee_year, age_reference_date, \
             CAST(adult_age AS INTEGER) AS adult_age, window_opens, window_closes, \
             late_payment_allowed, cover_rules FROM fee_policies \
             WHERE region_code = $1 AND ($2 IS NULL OR fee_year = $2) ORDER BY fee_year",
        )
        .bind(region.as_str().to_owned())
        .bind(year)
        .fetch_all(&mut *tx)
        .await?;
        let amounts = sqlx::query(
            "SELECT CAST(fee_year AS INTEGER) AS fee_year, category, component, amount_fen \
             FROM fee_policy_amounts WHERE region_code = $1 AND ($2 IS NULL OR fee_year = $2)",
        )
        .bind(region.as_str().to_owned())
        .bind(year)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut by_year: Vec<(i32, FeePolicyAmountRow)> = Vec::with_capacity(amounts.len());
        for a in &amounts {
            by_year.push((a.try_get("fee_year")?, record(a)?));
        }
        let mut policies = Vec::with_capacity(rows.len());
        for r in &rows {
            let row: FeePolicyRow = record(r)?;
            let (mine, rest): (Vec<_>, Vec<_>) = by_year
                .into_iter()
                .partition(|(y, _)| i64::from(*y) == row.fee_year);
            by_year = rest;
            policies.push(assemble_fee_policy(
                row,
                mine.into_iter().map(|(_, row)| row).collect(),
            )?);
        }
        Ok(policies)
    }

    async fn put_calendar_year(
        &self,
        region: RegionCode,
        year: &CalendarYear,
    ) -> Result<(), StorageError> {
        let (first, last) = year_bounds(year.year())?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM calendar_days WHERE region_code = $1 AND day BETWEEN $2 AND $3 \
             AND origin = 'region'",
        )
        .bind(region.as_str().to_owned())
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        let days: Vec<_> = year.days().collect();
        if !days.is_empty() {
            let sql = insert_days_sql(
                days.len(),
                "ON CONFLICT (region_code, day) DO UPDATE SET kind = excluded.kind, \
                 origin = 'region'",
            );
            let mut q = sqlx::query(&sql)
                .bind(region.as_str().to_owned())
                .bind("region".to_owned());
            for (day, kind) in &days {
                q = q.bind(*day).bind(day_kind_code(*kind).to_owned());
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO calendar_years (region_code, year) VALUES ($1, $2) \
             ON CONFLICT (region_code, year) DO NOTHING",
        )
        .bind(region.as_str().to_owned())
        .bind(year.year())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn put_national_calendar_year(
        &self,
        region: RegionCode,
        notice: &CalendarNotice,
    ) -> Result<(), StorageError> {
        let year = notice.calendar.year();
        let (first, last) = year_bounds(year)?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "DELETE FROM calendar_days WHERE region_code = $1 AND day BETWEEN $2 AND $3 \
             AND origin = 'national'",
        )
        .bind(region.as_str().to_owned())
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        let days: Vec<_> = notice.calendar.days().collect();
        if !days.is_empty() {
            // The region's own day on the same date wins.
            let sql = insert_days_sql(days.len(), "ON CONFLICT (region_code, day) DO NOTHING");
            let mut q = sqlx::query(&sql)
                .bind(region.as_str().to_owned())
                .bind("national".to_owned());
            for (day, kind) in &days {
                q = q.bind(*day).bind(day_kind_code(*kind).to_owned());
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO calendar_years (region_code, year, title, published_on) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (region_code, year) DO UPDATE SET \
             title = excluded.title, published_on = excluded.published_on, \
             loaded_at = excluded.loaded_at",
        )
        .bind(region.as_str().to_owned())
        .bind(year)
        .bind(notice.title.clone())
        .bind(notice.published_on)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn working_calendar(&self, region: RegionCode) -> Result<WorkingCalendar, StorageError> {
        let days: Vec<(NaiveDate, String)> =
            sqlx::query_as("SELECT day, kind FROM calendar_days WHERE region_code = $1")
                .bind(region.as_str().to_owned())
                .fetch_all(self)
                .await?;
        let years: Vec<(i32,)> = sqlx::query_as(
            "SELECT CAST(year AS INTEGER) AS year FROM calendar_years WHERE region_code = $1",
        )
        .bind(region.as_str().to_owned())
        .fetch_all(self)
        .await?;
        calendar_from_rows(days, years.into_iter().map(|(y,)| y))
    }

    async fn calendar_year_record(
        &self,
        region: RegionCode,
        year: i32,
    ) -> Result<Option<CalendarYearRecord>, StorageError> {
        let Some(head) = sqlx::query(
            "SELECT title, published_on FROM calendar_years WHERE region_code = $1 AND year = $2",
        )
        .bind(region.as_str().to_owned())
        .bind(year)
        .fetch_optional(self)
        .await?
        else {
            return Ok(None);
        };
        let (first, last) = year_bounds(year)?;
        let rows: Vec<(NaiveDate, String, String)> = sqlx::query_as(
            "SELECT day, kind, origin FROM calendar_days \
             WHERE region_code = $1 AND day BETWEEN $2 AND $3 ORDER BY day",
        )
        .bind(region.as_str().to_owned())
        .bind(first)
        .bind(last)
        .fetch_all(self)
        .await?;
        let mut days = Vec::with_capacity(rows.len());
        for (day, kind, origin) in rows {
            days.push(CalendarDayRecord {
                day,
                kind: day_kind_of(&kind)?,
                origin,
            });
        }
        Ok(Some(CalendarYearRecord {
            region,
            year,
            title: head.try_get("title")?,
            published_on: head.try_get("published_on")?,
            days,
        }))
    }
}
