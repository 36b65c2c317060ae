//! The SQLite backend of [`yibao_storage::Storage`]: the embedded, zero-setup default. WAL journal,
//! a busy timeout, foreign keys on. Its migrations are embedded and run by [`SqliteStorage::connect`].

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use yibao_storage::dialect::{Dialect, Statement};
use yibao_storage::{Backend, StorageError};

/// Connections per server process. SQLite has one writer at a time; readers run beside it in WAL.
pub const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits for the lock before the statement fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The write-ahead log stays below this size: once it passes half of it, the background loop
/// (which looks every 5 s) checkpoints it and truncates it. SQLite's own checkpoints (every 1000
/// pages) cannot restart a WAL while readers keep it in use, and under load it grows a few MiB a
/// second; this checkpoint waits for the readers (busy timeout) and starts the file over.
pub const WAL_BOUND_BYTES: u64 = 64 * 1024 * 1024;
/// SQLite's automatic checkpoint, in pages: 16 MiB of WAL at 4 KiB a page. The payment writer
/// leaves the copying of the WAL into the database to another connection (after each of its
/// batches a passive checkpoint starts on a pooled connection, with a thread of its own, unless
/// one still runs: [`SqliteStorage`]'s `payment_batch_committed`), so that this bound is met in a
/// payment batch's commit only when those checkpoints fall behind; other writers (an import, a
/// command) checkpoint at it themselves. SQLite's default, 1000 pages, put a checkpoint inside
/// about every third batch of the writer, the next batch waiting.
pub const AUTOCHECKPOINT_PAGES: u32 = 4096;
/// After a checkpoint SQLite truncates a WAL larger than this (`journal_size_limit`).
pub const JOURNAL_SIZE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;
/// Rows `ANALYZE` samples per index (`analysis_limit`): a refresh takes well under a second on a
/// county's database, and the statistics are close enough for the planner.
pub const ANALYSIS_LIMIT: u32 = 1000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// Bulk reads (searches, lists, reports): the same pool, SQLite has no replica.
    reads: yibao_storage::read_routing::ReadPools<sqlx::Sqlite>,
    /// Channels as requests read them (yibao_storage::memo).
    channel_cache: std::sync::Arc<yibao_storage::memo::ChannelCache>,
    /// The write-ahead log's file; `None` in memory.
    wal_file: Option<std::path::PathBuf>,
    /// Past this size housekeeping truncates the WAL ([`WAL_BOUND_BYTES`] unless set).
    wal_bound_bytes: u64,
    /// Whether the checkpoint the payment writer's last batch started still runs
    /// ([`AUTOCHECKPOINT_PAGES`]).
    checkpoint_running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How many times an open that found the file locked, or a migration that failed, while another
/// process opened or migrated the same file is tried again, and the pause before each (together
/// 10 seconds, far longer than all migrations take).
pub const MIGRATION_RACE_RETRIES: u32 = 50;
pub const MIGRATION_RACE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

impl SqliteStorage {
    /// Opens (creating when missing) and runs the embedded migrations. `url` is `sqlite://PATH`, or
    /// `sqlite::memory:` for a private in-memory database on one connection.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let in_memory = url.contains(":memory:");
        let options: SqliteConnectOptions = url.parse().map_err(|_: sqlx::Error| {
            StorageError::Unavailable(
                "SQLite 数据库地址格式不对，应为 sqlite://文件路径，如 sqlite://yibao.db".into(),
            )
        })?;
        let path = options.get_filename().to_owned();
        let wal_file = (!in_memory).then(|| {
            let mut name = path.as_os_str().to_owned();
            name.push("-wal");
            std::path::PathBuf::from(name)
        });
        let options = options
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES.to_string())
            .pragma("wal_autocheckpoint", AUTOCHECKPOINT_PAGES.to_string())
            .analysis_limit(ANALYSIS_LIMIT)
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal)
            .journal_mode(if in_memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            });
        let pool_options = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { MAX_CONNECTIONS })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each use (a round trip through the connection's worker thread):
            // sqlx pings every connection as it is released and drops the broken ones.
            .test_before_acquire(false);
        // Switching a new file to WAL takes it whole for a moment, and SQLite answers another
        // process opening it then "database is locked" without waiting (its busy timeout does not
        // cover that switch): such an open is tried again, as a migration race is.
        let mut tries = 0;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if is_busy(&e) && tries < MIGRATION_RACE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(MIGRATION_RACE_PAUSE).await;
                }
                Err(e) => return Err(StorageError::Unavailable(diagnose_open(&path, &e))),
            }
        };
        let storage = SqliteStorage {
            reads: yibao_storage::read_routing::ReadPools::primary_only(pool.clone()),
            channel_cache: Default::default(),
            pool,
            wal_file,
            wal_bound_bytes: WAL_BOUND_BYTES,
            checkpoint_running: Default::default(),
        };
        storage.migrate().await?;
        if !storage.has_statistics().await? {
            // At start, before any other connection plans: nothing to share yet.
            sqlx::query("ANALYZE").execute(&storage.pool).await?;
        }
        Ok(storage)
    }

    /// The same storage with another WAL bound (configuration, tests).
    pub fn with_wal_bound(mut self, bytes: u64) -> Self {
        self.wal_bound_bytes = bytes;
        self
    }

    /// Whether `ANALYZE` has left statistics (a database made before yibao kept them has none).
    async fn has_statistics(&self) -> Result<bool, StorageError> {
        let table: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
        )
        .fetch_one(&self.pool)
        .await?;
        if table == 0 {
            return Ok(false);
        }
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_stat1")
            .fetch_one(&self.pool)
            .await?;
        Ok(rows > 0)
    }

    /// `ANALYZE`, bounded by [`ANALYSIS_LIMIT`] rows per index, for every pooled connection.
    async fn analyze(&self) -> Result<(), StorageError> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        self.share_statistics_now().await
    }

    /// Makes every pooled connection plan with the statistics just taken. SQLite loads them
    /// with the schema, and `ANALYZE` loads them again only on the connection that ran it: the
    /// others go on planning with those they had, for as long as they live (measured: after a
    /// trial import of one person, the assessment of 200 000 took 16 s against 6). A change of
    /// the schema makes each connection read it again, statistics included, before its next
    /// statement; a table created and dropped is two. Both tolerate another share beside
    /// them, and a table left by a process stopped between them (empty, read by nothing) is
    /// dropped the next time.
    async fn share_statistics_now(&self) -> Result<(), StorageError> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS statistics_taken (taken INTEGER); \
             DROP TABLE IF EXISTS statistics_taken",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `PRAGMA optimize` over every table, not only those one connection has planned with
    /// (0x10000: each share makes the connections read the schema again, which forgets what
    /// they planned with), on one connection: first only listed (0x1: the ANALYZE statements
    /// it would run), then run and shared with every connection when it lists any.
    async fn optimize(&self) -> Result<(), StorageError> {
        let mut connection = self.pool.acquire().await?;
        let stale: Vec<String> = sqlx::query_scalar("PRAGMA optimize(0x1ffff)")
            .fetch_all(&mut *connection)
            .await?;
        if stale.is_empty() {
            return Ok(());
        }
        sqlx::query("PRAGMA optimize(0x1fffe)")
            .execute(&mut *connection)
            .await?;
        drop(connection);
        self.share_statistics_now().await
    }

    /// Checkpoints the WAL, truncates it once past half its bound ([`WAL_BOUND_BYTES`]), and lets SQLite refresh
    /// the statistics it finds stale (`PRAGMA optimize`, as its documentation recommends for
    /// long-lived connections), shared with every connection when it took any.
    async fn upkeep(&self) -> Result<yibao_storage::Housekeeping, StorageError> {
        // Best effort: the WAL's upkeep below matters more (checking a second table takes
        // the write lock, which a long write may hold past the busy timeout).
        if let Err(err) = self.optimize().await {
            tracing::warn!(%err, "refreshing stale planner statistics failed");
        }
        if self.wal_file.is_some() {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        self.bound_wal_file().await
    }

    /// Truncates the WAL once past half its bound (so that, looked at every few seconds, it
    /// stays below the bound); its size after.
    async fn bound_wal_file(&self) -> Result<yibao_storage::Housekeeping, StorageError> {
        let mut done = yibao_storage::Housekeeping::default();
        let Some(wal_file) = &self.wal_file else {
            return Ok(done);
        };
        let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
        if size(wal_file) > self.wal_bound_bytes / 2 {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
            done.wal_truncated = true;
        }
        done.wal_bytes = Some(size(wal_file));
        Ok(done)
    }

    ///
    /// Another process may be migrating the same file at the same moment (a demo and an
    /// operator's command, two servers started together on a new file): SQLite has no migration
    /// lock as PostgreSQL's advisory lock, so a migration that fails while applying is tried again
    /// on what is applied by then, for up to [`MIGRATION_RACE_RETRIES`] times
    /// [`MIGRATION_RACE_PAUSE`]. A migration that fails for itself still fails, after that.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let mut tries = 0;
        loop {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(
                    sqlx::migrate::MigrateError::Execute(_)
                    | sqlx::migrate::MigrateError::ExecuteMigration(..),
                ) if tries < MIGRATION_RACE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(MIGRATION_RACE_PAUSE).await;
                }
                Err(e) => {
                    return Err(StorageError::Other(format!(
                        "数据库迁移失败（migration failed）：{e}"
                    )))
                }
            }
        }
    }

    /// The pool, for tests that check constraints below the trait.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The embedded migrations, for tests that build a database as an earlier version left it.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }
}

/// Whether SQLite answered "database is busy" or "locked" (primary codes 5 and 6, whatever the
/// extended code): another connection holds the file for a moment.
fn is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Why the database file could not be opened, in Chinese, naming the file (SQLite only says
/// "unable to open database file").
fn diagnose_open(path: &std::path::Path, error: &sqlx::Error) -> String {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let file = format!("无法打开 SQLite 数据库文件 {}", shown.display());
    let dir = shown
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    tracing::debug!(%error, "sqlite open failed");
    if shown.is_dir() {
        return format!("{file}：这是一个目录，不是文件");
    }
    if !dir.is_dir() {
        return format!(
            "{file}：目录 {} 不存在，请先创建目录或改用其他路径",
            dir.display()
        );
    }
    let readonly =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().readonly());
    if (shown.exists() && readonly(&shown)) || (!shown.exists() && readonly(dir)) {
        return format!(
            "{file}：没有写入权限，请检查文件和目录 {} 的权限",
            dir.display()
        );
    }
    match error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("26") => {
            format!("{file}：该文件不是 SQLite 数据库")
        }
        sqlx::Error::PoolTimedOut => format!(
            "{file}：{}秒内没有打开（文件被其他程序锁住？）",
            ACQUIRE_TIMEOUT.as_secs()
        ),
        _ => format!("{file}：文件无法打开或读写（权限不足、磁盘已满或文件已损坏？）"),
    }
}

#[async_trait::async_trait]
impl Dialect for SqliteStorage {
    type DB = sqlx::Sqlite;

    const BACKEND: Backend = Backend::Sqlite;
    const OUTBOX_PENDING: &'static str = "delivered_at IS NULL AND dead = 0";
    const OUTBOX_DEAD: &'static str = "dead = 1";
    /// SQLite's default collation already orders text by bytes, as Rust does.
    const BYTE_ORDER: &'static str = "COLLATE BINARY";
    /// SQLite's BINARY collation already orders UTF-8 text by code point.
    const NAME_ORDER: &'static str = "";
    const LOCK_PAYABLES: &'static str = "";

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn reads(&self) -> &yibao_storage::read_routing::ReadPools<sqlx::Sqlite> {
        &self.reads
    }

    fn channel_cache(&self) -> &yibao_storage::memo::ChannelCache {
        &self.channel_cache
    }

    /// `BEGIN IMMEDIATE`: the write lock at once.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// ` IN (?, …)`: SQLite has no arrays.
    fn push_id_list(statement: &mut Statement<sqlx::Sqlite>, ids: &[String]) {
        statement.push(" IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                statement.push(", ");
            }
            statement.push_bind(id.clone());
        }
        statement.push(")");
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn arguments<'q>(
        arguments: sqlx::sqlite::SqliteArguments<'static>,
    ) -> sqlx::sqlite::SqliteArguments<'q> {
        arguments
    }

    async fn refresh_statistics(&self) -> Result<(), StorageError> {
        self.analyze().await
    }

    async fn share_statistics(&self) -> Result<(), StorageError> {
        self.share_statistics_now().await
    }

    async fn housekeeping(&self) -> Result<yibao_storage::Housekeeping, StorageError> {
        self.upkeep().await
    }

    async fn bound_wal(&self) -> Result<yibao_storage::Housekeeping, StorageError> {
        self.bound_wal_file().await
    }

    /// Starts a passive checkpoint on another pooled connection unless one still runs: it
    /// copies the WAL into the database beside the writer, waiting for no one.
    fn payment_batch_committed(&self) {
        use std::sync::atomic::Ordering;
        if self.wal_file.is_none() || self.checkpoint_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, running) = (self.pool.clone(), self.checkpoint_running.clone());
        tokio::spawn(async move {
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(%err, "checkpointing the write-ahead log failed");
            }
            running.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use yibao_storage::dialect::Statement;

    /// Plain `?` placeholders: numbered ones (`$3`) are searched in a list from its start at
    /// every prepare and bind, which made a batch of 1000 rows of 17 values quadratic (a
    /// 1 000 000-row roster import took 475 s instead of 22 s).
    #[test]
    fn a_built_statement_uses_plain_placeholders() {
        let mut q = Statement::<sqlx::Sqlite>::new("INSERT INTO t (a, b)");
        q.push_values([(1i64, "x"), (2, "y")], |row, (a, b)| {
            row.push_bind(a).push_bind(b.to_owned());
        });
        q.push(" WHERE c IN (").push_list([3i64, 4]).push(")");
        let (sql, _) = q.into_parts().unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) WHERE c IN (?, ?)"
        );
    }
}
