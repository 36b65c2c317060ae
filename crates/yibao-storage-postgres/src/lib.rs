//! The PostgreSQL backend of [`yibao_storage::Storage`], for production. Its migrations are embedded
//! and run by [`PostgresStorage::connect`].

use std::time::Duration;

use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use yibao_domain::{CalendarYear, FeePolicy, FeeYear, PoolingRegion, RegionCode, WorkingCalendar};
use yibao_storage::{
    assemble_fee_policy, calendar_from_rows, day_kind_code, fee_policy_amount_rows,
    region_from_row, Backend, FeePolicyAmountRow, FeePolicyRow, StorageError,
};

/// Connections per server process. PostgreSQL's default `max_connections` is 100.
pub const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a free connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    /// Connects and runs the embedded migrations. `url` is a `postgres://` URL; it is never logged.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
            StorageError::Unavailable(format!("bad PostgreSQL URL: {e}"))
        })?;
        let options = options.application_name("yibao");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        let storage = PostgresStorage { pool };
        storage.migrate().await?;
        Ok(storage)
    }

    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StorageError::Other(format!("migration failed: {e}")))
    }

    /// A write transaction.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// New persons, their first history entry and their enrolment rows, by COPY: several times
    /// faster than multi-row INSERTs for roster imports. Only for batches of people not stored yet.
    pub const BULK_COPY: bool = true;

    pub async fn copy_new_persons(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        planned: &[yibao_storage::portable::PlannedRow],
        source: &yibao_storage::ChangeSource,
        kind: &str,
    ) -> Result<(), StorageError> {
        use yibao_storage::portable::csv_row;
        let mut persons = String::with_capacity(planned.len() * 160);
        let mut history = String::with_capacity(planned.len() * 480);
        let mut enrolments = String::with_capacity(planned.len() * 80);
        for p in planned {
            let c = &p.columns;
            let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
            let (permit, valid_until) = (date(c.permit_since), date(c.certificate_valid_until));
            let subsidy = c.subsidy_fen.map(|f| f.to_string());
            let version = p.version.to_string();
            csv_row(
                &mut persons,
                &[
                    Some(&c.region_code),
                    Some(&c.id_number),
                    Some(&c.name),
                    Some(c.household),
                    permit.as_deref(),
                    c.school.as_deref(),
                    c.phone.as_deref(),
                    c.station_code.as_deref(),
                    Some(if c.employee_insured { "t" } else { "f" }),
                    c.relief_kind,
                    c.certificate_name.as_deref(),
                    c.certificate_number.as_deref(),
                    valid_until.as_deref(),
                    subsidy.as_deref(),
                    Some(&version),
                    Some(&source.actor),
                ],
            );
            csv_row(
                &mut history,
                &[
                    Some(&c.region_code),
                    Some(&c.id_number),
                    Some(&version),
                    Some(&source.actor),
                    Some(&source.source),
                    Some(&c.snapshot()),
                ],
            );
            if let Some(w) = &p.enrolment_write {
                let year = w.fee_year.to_string();
                let covered = date(w.covered_from);
                csv_row(
                    &mut enrolments,
                    &[
                        Some(&c.region_code),
                        Some(&year),
                        Some(&c.id_number),
                        Some(w.status),
                        w.refusal_code.as_deref(),
                        w.refusal_message.as_deref(),
                        covered.as_deref(),
                        Some(kind),
                    ],
                );
            }
        }
        for (statement, data) in [
            (
                "COPY persons (region_code, id_number, name, household, permit_since, school, phone, station_code, \
                 employee_insured, relief_kind, certificate_name, certificate_number, certificate_valid_until, \
                 subsidy_fen, version, updated_by) FROM STDIN WITH (FORMAT csv)",
                persons,
            ),
            (
                "COPY person_history (region_code, id_number, version, changed_by, source, snapshot) FROM STDIN WITH (FORMAT csv)",
                history,
            ),
            (
                "COPY enrolments (region_code, fee_year, id_number, status, refusal_code, refusal_message, covered_from, source) \
                 FROM STDIN WITH (FORMAT csv)",
                enrolments,
            ),
        ] {
            if data.is_empty() {
                continue;
            }
            let mut copy = tx.copy_in_raw(statement).await?;
            copy.send(data.into_bytes()).await?;
            copy.finish().await?;
        }
        Ok(())
    }

    /// Appends the test "is one of these ID numbers" to a query that ends in a column name.
    /// ` = ANY($n)` with one array parameter: planned once, whatever the batch size.
    pub fn push_id_list(q: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, ids: &[String]) {
        q.push(" = ANY(").push_bind(ids.to_vec()).push(")");
    }

    /// The pool, for tests that check constraints below the trait.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

yibao_storage::impl_collection_storage!(PostgresStorage, sqlx::Postgres);

yibao_storage::impl_storage!(PostgresStorage, sqlx::Postgres, {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn health(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn upsert_region(&self, region: &PoolingRegion) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO pooling_regions (region_code, name) VALUES ($1, $2)
             ON CONFLICT (region_code) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
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
            sqlx::query("SELECT region_code, name FROM pooling_regions WHERE region_code = $1")
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
        let year = i16::try_from(policy.fee_year().get()).map_err(StorageError::corrupt)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO fee_policies (region_code, fee_year, age_reference_date, adult_age,
                 window_opens, window_closes, late_payment_allowed)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (region_code, fee_year) DO UPDATE SET
                 age_reference_date = EXCLUDED.age_reference_date, adult_age = EXCLUDED.adult_age,
                 window_opens = EXCLUDED.window_opens, window_closes = EXCLUDED.window_closes,
                 late_payment_allowed = EXCLUDED.late_payment_allowed, updated_at = now()",
        )
        .bind(region)
        .bind(year)
        .bind(policy.age_reference_date())
        .bind(i16::try_from(policy.adult_age()).map_err(StorageError::corrupt)?)
        .bind(policy.window().opens())
        .bind(policy.window().closes())
        .bind(policy.late_payment_allowed())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM fee_policy_amounts WHERE region_code = $1 AND fee_year = $2")
            .bind(region)
            .bind(year)
            .execute(&mut *tx)
            .await?;
        for row in fee_policy_amount_rows(policy) {
            sqlx::query(
                "INSERT INTO fee_policy_amounts (region_code, fee_year, category, component, amount_fen)
                 VALUES ($1, $2, $3, $4, $5)",
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
        sqlx::query("DELETE FROM calendar_days WHERE region_code = $1 AND day BETWEEN $2 AND $3")
            .bind(region.as_str())
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        for (day, kind) in year.days() {
            sqlx::query("INSERT INTO calendar_days (region_code, day, kind) VALUES ($1, $2, $3)")
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
        let rows = sqlx::query("SELECT day, kind FROM calendar_days WHERE region_code = $1")
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

impl PostgresStorage {
    async fn fee_policies(
        &self,
        region: RegionCode,
        fee_year: Option<FeeYear>,
    ) -> Result<Vec<FeePolicy>, StorageError> {
        let year = fee_year.map(|y| i16::try_from(y.get()).unwrap_or(i16::MAX));
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT region_code, fee_year, age_reference_date, adult_age, window_opens, window_closes,
                    late_payment_allowed
             FROM fee_policies WHERE region_code = $1 AND ($2::SMALLINT IS NULL OR fee_year = $2)
             ORDER BY fee_year",
        )
        .bind(region.as_str())
        .bind(year)
        .fetch_all(&mut *tx)
        .await?;
        let amounts = sqlx::query(
            "SELECT fee_year, category, component, amount_fen FROM fee_policy_amounts
             WHERE region_code = $1 AND ($2::SMALLINT IS NULL OR fee_year = $2)",
        )
        .bind(region.as_str())
        .bind(year)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut amounts_by_year: Vec<(i16, FeePolicyAmountRow)> = Vec::with_capacity(amounts.len());
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
            let fee_year: i16 = r.try_get("fee_year")?;
            let (mine, rest): (Vec<_>, Vec<_>) = amounts_by_year
                .into_iter()
                .partition(|(y, _)| *y == fee_year);
            amounts_by_year = rest;
            policies.push(assemble_fee_policy(
                FeePolicyRow {
                    region_code: r.try_get("region_code")?,
                    fee_year: i64::from(fee_year),
                    age_reference_date: r.try_get("age_reference_date")?,
                    adult_age: i64::from(r.try_get::<i16, _>("adult_age")?),
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
