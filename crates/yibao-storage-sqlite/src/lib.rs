//! The SQLite backend of [`yibao_storage::Storage`]: the embedded, zero-setup default. WAL journal,
//! a busy timeout, foreign keys on. Its migrations are embedded and run by [`SqliteStorage::connect`].

use std::time::Duration;

use chrono::NaiveDate;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use yibao_domain::{CalendarYear, FeePolicy, FeeYear, PoolingRegion, RegionCode, WorkingCalendar};
use yibao_storage::{
    assemble_fee_policy, calendar_from_rows, day_kind_code, fee_policy_amount_rows,
    region_from_row, Backend, FeePolicyAmountRow, FeePolicyRow, StorageError,
};

/// Connections per server process. SQLite has one writer at a time; readers run beside it in WAL.
pub const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits for the lock before the statement fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    /// Opens (creating when missing) and runs the embedded migrations. `url` is `sqlite://PATH`, or
    /// `sqlite::memory:` for a private in-memory database on one connection.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let in_memory = url.contains(":memory:");
        let options: SqliteConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StorageError::Unavailable(format!("bad SQLite URL: {e}")))?;
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal)
            .journal_mode(if in_memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            });
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { MAX_CONNECTIONS })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        let storage = SqliteStorage { pool };
        storage.migrate().await?;
        Ok(storage)
    }

    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StorageError::Other(format!("migration failed: {e}")))
    }

    /// A write transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so two
    /// writers queue on the busy timeout instead of failing when a reader upgrades.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// SQLite has no COPY; its multi-row INSERTs are already fast, so the shared upserts serve every batch.
    pub const BULK_COPY: bool = false;

    /// Never called: [`SqliteStorage::BULK_COPY`] is false.
    pub async fn copy_new_persons(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        _planned: &[yibao_storage::portable::PlannedRow],
        _source: &yibao_storage::ChangeSource,
        _kind: &str,
    ) -> Result<(), StorageError> {
        Err(StorageError::Other(
            "COPY is not available on SQLite".into(),
        ))
    }

    /// Appends the test "is one of these ID numbers" to a query that ends in a column name.
    /// ` IN ($n, …)`: SQLite has no arrays.
    pub fn push_id_list(q: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>, ids: &[String]) {
        q.push(" IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        q.push(")");
    }

    /// The pool, for tests that check constraints below the trait.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

yibao_storage::impl_collection_storage!(SqliteStorage, sqlx::Sqlite);

yibao_storage::impl_storage!(SqliteStorage, sqlx::Sqlite, {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn health(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn upsert_region(&self, region: &PoolingRegion) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO pooling_regions (region_code, name) VALUES (?1, ?2)
             ON CONFLICT (region_code) DO UPDATE SET name = EXCLUDED.name, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE pooling_regions.name <> EXCLUDED.name",
        )
        .bind(region.code().as_str())
        .bind(region.name())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_region(&self, code: RegionCode) -> Result<Option<PoolingRegion>, StorageError> {
        let row =
            sqlx::query("SELECT region_code, name FROM pooling_regions WHERE region_code = ?1")
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| region_from_row(r.try_get("region_code")?, r.try_get("name")?))
            .transpose()
    }

    async fn list_regions(&self) -> Result<Vec<PoolingRegion>, StorageError> {
        let rows =
            sqlx::query("SELECT region_code, name FROM pooling_regions ORDER BY region_code")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| region_from_row(r.try_get("region_code")?, r.try_get("name")?))
            .collect()
    }

    async fn put_fee_policy(&self, policy: &FeePolicy) -> Result<(), StorageError> {
        let region_code = policy.region();
        let region = region_code.as_str();
        let year = i64::from(policy.fee_year().get());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO fee_policies (region_code, fee_year, age_reference_date, adult_age,
                 window_opens, window_closes, late_payment_allowed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (region_code, fee_year) DO UPDATE SET
                 age_reference_date = EXCLUDED.age_reference_date, adult_age = EXCLUDED.adult_age,
                 window_opens = EXCLUDED.window_opens, window_closes = EXCLUDED.window_closes,
                 late_payment_allowed = EXCLUDED.late_payment_allowed, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(region)
        .bind(year)
        .bind(policy.age_reference_date())
        .bind(i64::from(policy.adult_age()))
        .bind(policy.window().opens())
        .bind(policy.window().closes())
        .bind(policy.late_payment_allowed())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM fee_policy_amounts WHERE region_code = ?1 AND fee_year = ?2")
            .bind(region)
            .bind(year)
            .execute(&mut *tx)
            .await?;
        for row in fee_policy_amount_rows(policy) {
            sqlx::query(
                "INSERT INTO fee_policy_amounts (region_code, fee_year, category, component, amount_fen)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(region)
            .bind(year)
            .bind(&row.category)
            .bind(&row.component)
            .bind(row.amount_fen)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_fee_policy(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
    ) -> Result<Option<FeePolicy>, StorageError> {
        let policies = self.fee_policies(region, Some(fee_year)).await?;
        Ok(policies.into_iter().next())
    }

    async fn list_fee_policies(&self, region: RegionCode) -> Result<Vec<FeePolicy>, StorageError> {
        self.fee_policies(region, None).await
    }

    async fn put_calendar_year(
        &self,
        region: RegionCode,
        year: &CalendarYear,
    ) -> Result<(), StorageError> {
        let first = NaiveDate::from_ymd_opt(year.year(), 1, 1)
            .ok_or_else(|| StorageError::corrupt("year"))?;
        let last = NaiveDate::from_ymd_opt(year.year(), 12, 31)
            .ok_or_else(|| StorageError::corrupt("year"))?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM calendar_days WHERE region_code = ?1 AND day BETWEEN ?2 AND ?3")
            .bind(region.as_str())
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        for (day, kind) in year.days() {
            sqlx::query("INSERT INTO calendar_days (region_code, day, kind) VALUES (?1, ?2, ?3)")
                .bind(region.as_str())
                .bind(day)
                .bind(day_kind_code(kind))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn working_calendar(&self, region: RegionCode) -> Result<WorkingCalendar, StorageError> {
        let rows = sqlx::query("SELECT day, kind FROM calendar_days WHERE region_code = ?1")
            .bind(region.as_str())
            .fetch_all(&self.pool)
            .await?;
        let days = rows
            .iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("kind")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        calendar_from_rows(days)
    }
});

impl SqliteStorage {
    async fn fee_policies(
        &self,
        region: RegionCode,
        fee_year: Option<FeeYear>,
    ) -> Result<Vec<FeePolicy>, StorageError> {
        let year = fee_year.map(|y| i64::from(y.get()));
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT region_code, fee_year, age_reference_date, adult_age, window_opens, window_closes,
                    late_payment_allowed
             FROM fee_policies WHERE region_code = ?1 AND (?2 IS NULL OR fee_year = ?2)
             ORDER BY fee_year",
        )
        .bind(region.as_str())
        .bind(year)
        .fetch_all(&mut *tx)
        .await?;
        let amounts = sqlx::query(
            "SELECT fee_year, category, component, amount_fen FROM fee_policy_amounts
             WHERE region_code = ?1 AND (?2 IS NULL OR fee_year = ?2)",
        )
        .bind(region.as_str())
        .bind(year)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut amounts_by_year: Vec<(i64, FeePolicyAmountRow)> = Vec::with_capacity(amounts.len());
        for a in &amounts {
            amounts_by_year.push((
                a.try_get("fee_year")?,
                FeePolicyAmountRow {
                    category: a.try_get("category")?,
                    component: a.try_get("component")?,
                    amount_fen: a.try_get("amount_fen")?,
                },
            ));
        }
        let mut policies = Vec::with_capacity(rows.len());
        for r in &rows {
            let fee_year: i64 = r.try_get("fee_year")?;
            let (mine, rest): (Vec<_>, Vec<_>) = amounts_by_year
                .into_iter()
                .partition(|(y, _)| *y == fee_year);
            amounts_by_year = rest;
            policies.push(assemble_fee_policy(
                FeePolicyRow {
                    region_code: r.try_get("region_code")?,
                    fee_year,
                    age_reference_date: r.try_get("age_reference_date")?,
                    adult_age: r.try_get("adult_age")?,
                    window_opens: r.try_get("window_opens")?,
                    window_closes: r.try_get("window_closes")?,
                    late_payment_allowed: r.try_get("late_payment_allowed")?,
                },
                mine.into_iter().map(|(_, row)| row).collect(),
            )?);
        }
        Ok(policies)
    }
}
