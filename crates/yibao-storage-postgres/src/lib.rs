//! The PostgreSQL backend of [`yibao_storage::Storage`], for production. Its migrations are embedded
//! and run by [`PostgresStorage::connect`].

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::sync::Arc;

use sqlx::PgPool;
use yibao_storage::dialect::{Dialect, Statement};
use yibao_storage::read_routing::{ReadPools, ReplicaHealth, ReplicaState};
use yibao_storage::{Backend, PoolStatus, StorageError};

/// Connections of a server process's pool. PostgreSQL's default `max_connections` is 100. With
/// group commit on, its four tasks hold up to 2 more each (`Storage::with_own_connections`).
pub const MAX_CONNECTIONS: u32 = 16;
/// A pooled connection idle this long is pinged before it is used again.
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);
/// How long a request waits for a free connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

mod citus_migrate;

/// The foreign keys migration 0049 checks per statement on one PostgreSQL: table, name,
/// definition (as the migrations that made them declared them).
const CHECKED_FOREIGN_KEYS: [(&str, &str, &str); 9] = [
    ("persons", "persons_region_code_fkey", "FOREIGN KEY (region_code) REFERENCES pooling_regions (region_code)"),
    ("person_directory", "person_directory_region_code_fkey", "FOREIGN KEY (region_code) REFERENCES pooling_regions (region_code)"),
    ("enrolment_claims", "enrolment_claims_region_code_fkey", "FOREIGN KEY (region_code) REFERENCES pooling_regions (region_code)"),
    ("enrolments", "enrolments_region_code_id_number_fkey", "FOREIGN KEY (region_code, id_number) REFERENCES persons (region_code, id_number)"),
    ("payables", "payables_region_code_fee_year_id_number_fkey", "FOREIGN KEY (region_code, fee_year, id_number) REFERENCES enrolments (region_code, fee_year, id_number)"),
    ("payments", "payments_channel_id_fkey", "FOREIGN KEY (channel_id) REFERENCES channels (channel_id)"),
    ("payment_applications", "payment_applications_payable_id_fkey", "FOREIGN KEY (region_code, payable_id) REFERENCES payables (region_code, payable_id)"),
    ("receipts", "receipts_payable_id_fkey", "FOREIGN KEY (region_code, payable_id) REFERENCES payables (region_code, payable_id)"),
    ("receipts", "receipts_receipt_code_fkey", "FOREIGN KEY (region_code, receipt_code) REFERENCES receipt_counters (region_code, receipt_code)"),
];

/// Migration 0049's trigger functions.
const CHECK_FUNCTIONS: [&str; 7] = [
    "refuse_as_foreign_key",
    "check_added_rows_name_regions",
    "check_added_enrolments_name_persons",
    "check_added_payables_name_enrolments",
    "check_added_payments_name_channels",
    "check_added_rows_name_payables",
    "check_added_receipts_name_counters",
];

/// Drops migration 0049's triggers and functions and declares [`CHECKED_FOREIGN_KEYS`] again
/// (each checks every row already there); `false`, nothing changed, where the database has none.
async fn declare_checked_foreign_keys(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> Result<bool, StorageError> {
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(t.tgname), quote_ident(c.relname) FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid \
         WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace \
           AND p.proname::text = ANY($1) ORDER BY 2, 1",
    )
    .bind(&CHECK_FUNCTIONS[..])
    .fetch_all(&mut **tx)
    .await?;
    if triggers.is_empty() {
        return Ok(false);
    }
    for (trigger, table) in &triggers {
        sqlx::raw_sql(&format!("DROP TRIGGER {trigger} ON {table}"))
            .execute(&mut **tx)
            .await?;
    }
    for function in CHECK_FUNCTIONS {
        sqlx::raw_sql(&format!("DROP FUNCTION IF EXISTS {function}()"))
            .execute(&mut **tx)
            .await?;
    }
    for (table, name, definition) in CHECKED_FOREIGN_KEYS {
        sqlx::raw_sql(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
        ))
        .execute(&mut **tx)
        .await?;
    }
    tracing::info!("foreign keys checked per statement declared again");
    Ok(true)
}

/// Where a table lives on a Citus cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A copy on every node: small look-ups that every shard joins or checks keys against.
    Reference,
    /// Sharded by `column`, colocated with `colocate_with` (`none` starts a colocation group).
    Distributed {
        column: &'static str,
        colocate_with: &'static str,
    },
}

const fn by_region(colocate_with: &'static str) -> Placement {
    Placement::Distributed {
        column: "region_code",
        colocate_with,
    }
}

const fn by_channel(colocate_with: &'static str) -> Placement {
    Placement::Distributed {
        column: "channel_id",
        colocate_with,
    }
}

const fn by_id_number(colocate_with: &'static str) -> Placement {
    Placement::Distributed {
        column: "id_number",
        colocate_with,
    }
}

/// Every table of the schema on a Citus cluster, in the order they are placed (reference tables
/// first; each colocation group's first table before the rest). Why each is where it is:
/// ARCHITECTURE.md ("Storage on Citus") and docs/operations.md ("Citus").
pub const PLACEMENT: &[(&str, Placement)] = &[
    // Small look-ups, read by every shard's statements or checked by their foreign keys.
    ("pooling_regions", Placement::Reference),
    ("fee_policies", Placement::Reference),
    ("fee_policy_amounts", Placement::Reference),
    ("calendar_days", Placement::Reference),
    ("calendar_years", Placement::Reference),
    ("channels", Placement::Reference),
    ("channel_regions", Placement::Reference),
    // Village agents (村代办员): looked up by channel and code on every request of their channel.
    ("village_agents", Placement::Reference),
    // Not regional, small, and read on every staff request.
    ("staff", Placement::Reference),
    ("staff_sessions", Placement::Reference),
    ("login_throttle", Placement::Reference),
    ("roster_imports", Placement::Reference),
    ("_sqlx_migrations", Placement::Reference),
    // Keyed by channel: replay protection, the channels' idempotency keys (which span regions),
    // reversals (recorded before the payment, whose region is unknown then), statements and their
    // differences (a channel's day, across regions).
    ("channel_nonces", by_channel("none")),
    ("channel_keys", by_channel("channel_nonces")),
    ("reversals", by_channel("channel_nonces")),
    ("statements", by_channel("channel_nonces")),
    ("reconciliation_items", by_channel("channel_nonces")),
    // Keyed by ID number: where a person is on record, and the one enrolment per fee year.
    ("person_directory", by_id_number("none")),
    ("enrolment_claims", by_id_number("person_directory")),
    // Everything of a region, colocated: a region's statements run on one shard.
    ("persons", by_region("none")),
    ("insured_number_counters", by_region("persons")),
    ("person_history", by_region("persons")),
    ("enrolments", by_region("persons")),
    ("payables", by_region("persons")),
    ("cover_history", by_region("persons")),
    ("cover_situations", by_region("persons")),
    ("cover_claims", by_region("persons")),
    ("family_bindings", by_region("persons")),
    ("household_members", by_region("persons")),
    ("agent_handins", by_region("persons")),
    ("sandbox_scenarios", by_region("persons")),
    ("orders", by_region("persons")),
    ("order_items", by_region("persons")),
    ("payments", by_region("persons")),
    ("payment_applications", by_region("persons")),
    ("refunds", by_region("persons")),
    ("receipt_counters", by_region("persons")),
    ("receipts", by_region("persons")),
    ("outbox", by_region("persons")),
    ("audit_log", by_region("persons")),
    ("debit_agreements", by_region("persons")),
    ("debit_agreement_members", by_region("persons")),
    ("debit_runs", by_region("persons")),
    ("debit_run_items", by_region("persons")),
    ("roster_rejection_files", by_region("persons")),
    ("unpaid_follow_ups", by_region("persons")),
    ("uninsured_submissions", by_region("persons")),
    // The citizen site's accounts, keyed by the region of the resident's record.
    ("citizen_sign_in_codes", by_region("persons")),
    ("citizen_sessions", by_region("persons")),
    ("citizen_family_members", by_region("persons")),
    ("citizen_preferences", by_region("persons")),
    ("message_outbox", by_region("persons")),
    ("payment_reminders", by_region("persons")),
    ("debit_notices", by_region("persons")),
    ("enrolment_applications", by_region("persons")),
];

#[derive(Clone)]
pub struct PostgresStorage {
    pool: PgPool,
    /// Bulk reads (searches, lists, reports, dashboards): a streaming replica's pool while it is
    /// well, else `pool` ([`yibao_storage::read_routing`]).
    reads: ReadPools<sqlx::Postgres>,
    /// Channels as requests read them (yibao_storage::memo).
    channel_cache: Arc<yibao_storage::memo::ChannelCache>,
    /// Whether this is a Citus coordinator, asked once ([`Dialect::regions_on_nodes`]).
    citus: tokio::sync::OnceCell<bool>,
}

/// A streaming replica to serve bulk reads ([`PostgresStorage::connect_with_replica`]).
pub struct ReplicaSettings<'a> {
    /// Its `postgres://` URL; never logged.
    pub url: &'a str,
    /// Lag past which it is not read.
    pub max_lag: Duration,
}

/// How long the replica may take at start to replay the migrations the primary just ran.
pub const REPLICA_CATCH_UP_AT_START: Duration = Duration::from_secs(30);

impl PostgresStorage {
    /// Connects and runs the embedded migrations. `url` is a `postgres://` URL; it is never logged.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with_replica(url, None).await
    }

    /// For upgrade tests: the database as the version whose last migration is `version` left
    /// it (migrated that far and, on a Citus coordinator, placed on the cluster).
    #[doc(hidden)]
    pub async fn connect_migrated_to(url: &str, version: i64) -> Result<Self, StorageError> {
        let pool = open_pool(url, "").await?;
        let storage = PostgresStorage {
            reads: ReadPools::primary_only(pool.clone()),
            channel_cache: Default::default(),
            citus: Default::default(),
            pool,
        };
        let before = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                MIGRATOR
                    .migrations
                    .iter()
                    .filter(|m| m.version <= version)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before
            .run(&storage.pool)
            .await
            .map_err(|e| StorageError::Other(format!("数据库迁移失败（migration failed）：{e}")))?;
        storage.distribute().await?;
        Ok(storage)
    }

    /// Connects to the primary and runs the embedded migrations, then, with `replica`, connects
    /// to the streaming replica for bulk reads once it has been checked to be a replica of this
    /// very database and has replayed those migrations.
    pub async fn connect_with_replica(
        url: &str,
        replica: Option<ReplicaSettings<'_>>,
    ) -> Result<Self, StorageError> {
        let pool = open_pool(url, "").await?;
        let mut storage = PostgresStorage {
            reads: ReadPools::primary_only(pool.clone()),
            channel_cache: Default::default(),
            citus: Default::default(),
            pool,
        };
        storage.require_utf8().await?;
        storage.migrate().await?;
        if let Some(replica) = replica {
            let replica_pool = open_pool(replica.url, "只读副本：").await?;
            storage.require_replica_of_primary(&replica_pool).await?;
            storage.reads = ReadPools::with_replica(
                storage.pool.clone(),
                replica_pool,
                Arc::new(ReplicaHealth::new(replica.max_lag)),
            );
        }
        Ok(storage)
    }

    /// Refuses a read replica that is not a streaming replica of this primary's database (a
    /// second primary, another cluster, another database), and waits, at most
    /// [`REPLICA_CATCH_UP_AT_START`], for it to replay the migrations the primary just ran.
    async fn require_replica_of_primary(&self, replica: &PgPool) -> Result<(), StorageError> {
        let refuse = |why: String| {
            StorageError::Other(format!(
                "只读副本（read_database_url）不能用：{why}。它应是本数据库的流复制备库（pg_basebackup -R 建立），\
                 指向同名数据库；不配置则所有读取都走主库"
            ))
        };
        let (in_recovery, database): (bool, String) =
            sqlx::query_as("SELECT pg_is_in_recovery(), current_database()")
                .fetch_one(replica)
                .await?;
        if !in_recovery {
            return Err(refuse(
                "它不处于恢复（备库）状态，是一个可写的主库".to_owned(),
            ));
        }
        let primary_database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&self.pool)
            .await?;
        if database != primary_database {
            return Err(refuse(format!(
                "它指向数据库 {database}，主库是 {primary_database}"
            )));
        }
        // The cluster's identity, shared by a primary and its streaming replicas. Reading it may
        // need rights the role lacks: then this one check is skipped.
        let identity = "SELECT system_identifier::text FROM pg_control_system()";
        let primary_id: Result<String, _> =
            sqlx::query_scalar(identity).fetch_one(&self.pool).await;
        let replica_id: Result<String, _> = sqlx::query_scalar(identity).fetch_one(replica).await;
        match (primary_id, replica_id) {
            (Ok(p), Ok(r)) if p != r => {
                return Err(refuse(
                    "它属于另一个 PostgreSQL 集群（系统标识不同），不是本库的副本".to_owned(),
                ))
            }
            (Ok(_), Ok(_)) => {}
            _ => tracing::warn!(
                "cannot read pg_control_system(): the read replica's cluster identity is not checked"
            ),
        }
        let latest = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        let wanted: Option<i64> = sqlx::query_scalar(latest).fetch_one(&self.pool).await?;
        let started = std::time::Instant::now();
        loop {
            let replayed: Option<i64> = sqlx::query_scalar(latest)
                .fetch_one(replica)
                .await
                .unwrap_or(None);
            if replayed >= wanted {
                return Ok(());
            }
            if started.elapsed() > REPLICA_CATCH_UP_AT_START {
                return Err(refuse(format!(
                    "它在 {} 秒内没有赶上主库的数据库结构（迁移），复制可能已中断",
                    REPLICA_CATCH_UP_AT_START.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How far the replica's replay is behind the primary: none when it has replayed everything
    /// the primary had written when asked; else the age of the last transaction it replayed.
    /// `None` when it does not answer or is no longer a replica (promoted). One statement on each.
    async fn replica_lag(&self, replica: &PgPool) -> Result<Option<Duration>, StorageError> {
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&self.pool)
            .await?;
        let row: Result<(bool, Option<i64>), sqlx::Error> = sqlx::query_as(
            "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_replay_lsn() >= $1::pg_lsn THEN 0 \
             ELSE CAST(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000 AS BIGINT) END",
        )
        .bind(&written)
        .fetch_one(replica)
        .await;
        Ok(match row {
            Ok((true, Some(millis))) => Some(Duration::from_millis(millis.max(0).unsigned_abs())),
            Ok(_) => None,
            Err(err) => {
                tracing::debug!(error = %err, "read replica check failed");
                None
            }
        })
    }

    /// Refuses a database whose server encoding is not UTF8, before anything is written: in
    /// EUC_CN or GBK a rare character of a name (䶮, 𪚥) cannot be stored and a whole roster batch
    /// fails; in SQL_ASCII lengths are bytes, not characters. (sqlx sets the client encoding to
    /// UTF8 on every connection.)
    async fn require_utf8(&self) -> Result<(), StorageError> {
        let (encoding, database): (String, String) =
            sqlx::query_as("SELECT current_setting('server_encoding'), current_database()")
                .fetch_one(&self.pool)
                .await?;
        if encoding.eq_ignore_ascii_case("UTF8") {
            return Ok(());
        }
        Err(StorageError::Other(format!(
            "PostgreSQL 数据库 {database} 的编码是 {encoding}，yibao 只能使用 UTF8 编码的数据库\
             （其他编码存不下生僻字，长度也会按字节计算）。请新建一个 UTF8 数据库再指向它，例如：\
             CREATE DATABASE yibao ENCODING 'UTF8' TEMPLATE template0"
        )))
    }

    /// Runs the embedded migrations, then, on a database with the citus extension, places every
    /// table on the cluster ([`distribute`](Self::distribute)). Idempotent.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        // An upgrade in place on a cluster whose tables are placed: command by command first.
        if self.is_citus().await? && self.is_placed().await? {
            citus_migrate::run_pending(&self.pool, &MIGRATOR).await?;
        }
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StorageError::Other(format!("数据库迁移失败（migration failed）：{e}")))?;
        self.compare_text_by_bytes().await?;
        if self.distribute().await? {
            // A cluster asks every shard for a person by ID number alone (the person directory
            // lies on other nodes): a database migrated before it became one dropped the index
            // that serves it (migration 0055).
            sqlx::query("CREATE INDEX IF NOT EXISTS persons_by_id_number ON persons (id_number)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Gives every text column of yibao's tables the collation "C", so that text compares by
    /// its bytes, whatever collation the database was created with (issue 14). Idempotent, and
    /// run after the migrations at every start, so that a table a later migration adds follows.
    ///
    /// A column without a collation of its own takes the database's, and PostgreSQL 15 compares
    /// text by its C library's rules (`strcoll`) under every collation but "C" and "POSIX", even
    /// "C.UTF-8", whose order is the bytes' order for UTF-8. Every index probe and index insert
    /// on an ID number, a region code or a key went through them (BENCHMARKS.md, "text compared
    /// by its bytes"). What is equal stays equal under every collation; order changes only where
    /// the database's collation was not a code-point order (zh_CN.UTF-8, say): ID numbers and
    /// codes of digits sort as before, names and user names by code point, as on SQLite. A
    /// column's rows stay where they are; its indexes are built again, and its statistics,
    /// which the change drops, are taken again at once.
    ///
    /// On a Citus cluster, only tables not placed yet change, and only where `persons` already
    /// compares bytes (a cluster built new): Citus cannot change the column a table is
    /// distributed by, and colocated tables must agree on its collation.
    ///
    /// It only makes things faster, so a failure (a view an operator made over a column, say)
    /// changes nothing, is logged, and does not stop the start.
    async fn compare_text_by_bytes(&self) -> Result<(), StorageError> {
        let mut placed: Vec<String> = Vec::new();
        if self.is_citus().await? && self.is_placed().await? {
            let persons_compare_bytes: bool = sqlx::query_scalar(
                "SELECT attcollation = '\"C\"'::regcollation FROM pg_attribute \
                 WHERE attrelid = 'persons'::regclass AND attname = 'region_code'",
            )
            .fetch_one(&self.pool)
            .await?;
            if !persons_compare_bytes {
                return Ok(());
            }
            placed = sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace",
            )
            .fetch_all(&self.pool)
            .await?;
        }
        let tables: Vec<&str> = PLACEMENT
            .iter()
            .map(|(table, _)| *table)
            .filter(|table| *table != "_sqlx_migrations" && !placed.iter().any(|p| p == table))
            .collect();
        match self.give_text_columns_byte_order(&tables).await {
            Ok(changed) if changed.is_empty() => {}
            Ok(changed) => {
                tracing::info!(
                    tables = changed.len(),
                    "text columns now compare their bytes (COLLATE \"C\")"
                );
                let analyze = format!("ANALYZE {}", changed.join(", "));
                if let Err(err) = sqlx::raw_sql(&analyze).execute(&self.pool).await {
                    tracing::warn!(error = %err, "statistics not taken again after the collation change");
                }
            }
            Err(err) => tracing::warn!(
                error = %err,
                "text columns left with the database's collation (COLLATE \"C\" failed)"
            ),
        }
        Ok(())
    }

    /// [`compare_text_by_bytes`](Self::compare_text_by_bytes)'s change, in one transaction:
    /// the tables of `tables` it changed, quoted as identifiers.
    async fn give_text_columns_byte_order(
        &self,
        tables: &[&str],
    ) -> Result<Vec<String>, StorageError> {
        let mut tx = self.pool.begin().await?;
        // Two processes starting together: the second finds nothing left to change.
        sqlx::query("SELECT pg_advisory_xact_lock(7467323103)")
            .execute(&mut *tx)
            .await?;
        let changes: Vec<(String, String)> = sqlx::query_as(
            "SELECT quote_ident(c.relname), format('ALTER TABLE %I %s', c.relname, \
                    string_agg(format('ALTER COLUMN %I TYPE text COLLATE \"C\"', a.attname), ', ' \
                               ORDER BY a.attnum)) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' \
               AND NOT c.relispartition AND c.relname::text = ANY($1) \
               AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.atttypid = 'text'::regtype AND a.attcollation = 'default'::regcollation \
             GROUP BY c.relname ORDER BY c.relname",
        )
        .bind(tables)
        .fetch_all(&mut *tx)
        .await?;
        for (_, change) in &changes {
            sqlx::raw_sql(change).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(changes.into_iter().map(|(table, _)| table).collect())
    }

    /// Whether yibao's tables are placed on the cluster already (and so migrated by sqlx once).
    async fn is_placed(&self) -> Result<bool, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT to_regclass('_sqlx_migrations') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_dist_partition d \
             JOIN pg_class c ON c.oid = d.logicalrelid \
             WHERE c.relname = 'persons' AND c.relnamespace = current_schema()::regnamespace)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Declares again the foreign keys that migration 0049 checks per statement, and drops its
    /// triggers and functions, as [`Self::distribute`] does before placing the tables on a
    /// cluster; `false` when the database has none of them. For tests on one PostgreSQL.
    pub async fn declare_checked_foreign_keys(&self) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await?;
        let declared = declare_checked_foreign_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(declared)
    }

    /// Whether the database has the citus extension (a Citus coordinator).
    pub async fn is_citus(&self) -> Result<bool, StorageError> {
        Ok(
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
            )
            .fetch_one(&self.pool)
            .await?,
        )
    }

    /// On a Citus coordinator, makes every table of the schema a reference table or a distributed
    /// table ([`PLACEMENT`]); elsewhere does nothing and answers `false`. Tables already placed are
    /// left alone, so a second run changes nothing. Citus refuses a foreign key between tables
    /// placed differently while they are being placed (and quietly turns a local table that points
    /// at a new reference table into a coordinator-local one), so the foreign keys of the tables
    /// being placed are dropped first and put back, unchanged, once every table is placed: all in
    /// one transaction, so a failure leaves the schema as it was.
    pub async fn distribute(&self) -> Result<bool, StorageError> {
        if !self.is_citus().await? {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        // One process at a time (two starting together): the second then finds everything
        // placed. What is placed is read after the lock, in the transaction.
        sqlx::query("SELECT pg_advisory_xact_lock(7467323102)")
            .execute(&mut *tx)
            .await?;
        // A coordinator-local table (`partmethod` n, `repmodel` s, no colocation group) is not
        // placed: Citus makes one of a table created with a foreign key to a reference table, as
        // migrations 0034 to 0041 did on a cluster upgraded in place. It is placed again below.
        let placed: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid \
             WHERE c.relnamespace = current_schema()::regnamespace \
               AND NOT (d.partmethod = 'n' AND d.repmodel = 's' AND d.colocationid = 0)",
        )
        .fetch_all(&mut *tx)
        .await?;
        // Only tables that exist: a database migrated to an earlier version (an upgrade test)
        // lacks the later ones, which are placed when their migration has run.
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&mut *tx)
        .await?;
        let missing: Vec<&(&str, Placement)> = PLACEMENT
            .iter()
            .filter(|(table, _)| !placed.iter().any(|p| p == table))
            .filter(|(table, _)| present.iter().any(|p| p == table))
            .collect();
        if missing.is_empty() {
            tx.commit().await?;
            return Ok(true);
        }
        let names: Vec<String> = missing.iter().map(|(t, _)| (*t).to_owned()).collect();
        sqlx::query("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            .execute(&mut *tx)
            .await?;
        // The audit log's append-only trigger only raises an error: safe on shards.
        sqlx::query("SET LOCAL citus.enable_unsafe_triggers TO on")
            .execute(&mut *tx)
            .await?;
        // A database migrated on one PostgreSQL before it came here (docs/operations.md, "From
        // one PostgreSQL to a cluster") checks nine foreign keys per statement instead (migration
        // 0049), with triggers that read other tables and so cannot run on shards: those
        // foreign keys are declared again first, and placed with the others below.
        declare_checked_foreign_keys(&mut tx).await?;
        let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid) \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid \
             WHERE k.contype = 'f' AND c.relnamespace = current_schema()::regnamespace \
               AND (c.relname::text = ANY($1) OR f.relname::text = ANY($1)) ORDER BY 1, 2",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        for (table, name, _) in &foreign_keys {
            sqlx::raw_sql(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
                .execute(&mut *tx)
                .await?;
        }
        for (table, placement) in &missing {
            // Back to a plain table first, where it was made a coordinator-local one (its foreign
            // keys dropped above, Citus may have done so itself).
            let local: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid \
                 WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace \
                   AND d.partmethod = 'n' AND d.repmodel = 's' AND d.colocationid = 0)",
            )
            .bind(*table)
            .fetch_one(&mut *tx)
            .await?;
            if local {
                sqlx::raw_sql(&format!("SELECT undistribute_table('{table}')"))
                    .execute(&mut *tx)
                    .await?;
            }
            let statement = match placement {
                Placement::Reference => format!("SELECT create_reference_table('{table}')"),
                Placement::Distributed { column, colocate_with } => format!(
                    "SELECT create_distributed_table('{table}', '{column}', colocate_with => '{colocate_with}')"
                ),
            };
            sqlx::raw_sql(&statement).execute(&mut *tx).await?;
        }
        for (table, name, definition) in &foreign_keys {
            sqlx::raw_sql(&format!(
                "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(tables = missing.len(), "placed tables on the Citus cluster");
        Ok(true)
    }

    /// With autovacuum off (as on some machines, and during bulk loads), nothing refreshes the
    /// planner's statistics or clears dead rows: tables planned while empty are then scanned
    /// whole on every payment. This does what autovacuum would for yibao's own tables, with its
    /// default thresholds; with autovacuum on it does nothing.
    async fn upkeep(&self) -> Result<yibao_storage::Housekeeping, StorageError> {
        let mut done = yibao_storage::Housekeeping::default();
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(&self.pool)
            .await?;
        if autovacuum == "on" {
            return Ok(done);
        }
        let stale: Vec<(String, bool)> = sqlx::query_as(
            "SELECT quote_ident(relname), n_dead_tup > 50 + 0.2 * n_live_tup \
             FROM pg_stat_user_tables WHERE schemaname = current_schema() \
             AND (n_mod_since_analyze > 50 + 0.1 * n_live_tup OR n_dead_tup > 50 + 0.2 * n_live_tup) \
             ORDER BY relname LIMIT 64",
        )
        .fetch_all(&self.pool)
        .await?;
        for (table, vacuum) in stale {
            let statement = if vacuum {
                format!("VACUUM (ANALYZE) {table}")
            } else {
                format!("ANALYZE {table}")
            };
            sqlx::raw_sql(&statement).execute(&self.pool).await?;
            done.analyzed.push(table);
        }
        Ok(done)
    }

    /// The embedded migrations, for tests that build a database as an earlier version left it.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// The pool, for tests that check constraints below the trait.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A pool of [`MAX_CONNECTIONS`] to `url`; a failure is explained ([`diagnose_connect`]) after
/// `what` (empty for the primary).
async fn open_pool(url: &str, what: &str) -> Result<PgPool, StorageError> {
    let options: PgConnectOptions = url.parse().map_err(|_: sqlx::Error| {
        StorageError::Unavailable(format!(
            "{what}PostgreSQL 数据库地址格式不对，应为 postgres://用户[:密码]@主机:端口/数据库"
        ))
    })?;
    let options = options.application_name("yibao");
    match pool_options(MAX_CONNECTIONS)
        .connect_with(options.clone())
        .await
    {
        Ok(pool) => Ok(pool),
        Err(err) => Err(StorageError::Unavailable(format!(
            "{what}{}",
            diagnose_connect(&options, err).await
        ))),
    }
}

/// How every pool of this backend takes and checks connections, at most `connections` of them.
fn pool_options(connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A ping before each use was a round trip on every acquire, several per request; none
        // at all left a connection that broke while idle (every one does when PostgreSQL
        // restarts) to fail its next statement, which scripts/chaos showed failing the load
        // generator's checks after a restart. So only a connection idle for a while is pinged
        // (a broken one is closed and another taken); sqlx also pings each one as it is released.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// Why the first connection failed, in Chinese, with the host, port, database and user (never the
/// password). The pool only says "timed out"; a plain TCP connection and then one PostgreSQL
/// connection find the cause: nothing listening, no route, a name that does not resolve, a wrong
/// password, a database that does not exist.
async fn diagnose_connect(options: &PgConnectOptions, pool_error: sqlx::Error) -> String {
    let host = options.get_host().to_owned();
    let port = options.get_port();
    let database = options.get_database().unwrap_or("(默认)").to_owned();
    let user = options.get_username().to_owned();
    let target = format!("无法连接 PostgreSQL {host}:{port}，数据库 {database}，用户 {user}");
    if !host.starts_with('/') {
        use std::net::ToSocketAddrs;
        let addresses: Vec<std::net::SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(_) => return format!("{target}：无法解析主机名 {host}，请检查数据库地址中的主机"),
        };
        let mut reached = false;
        let mut refused = false;
        for address in &addresses {
            match std::net::TcpStream::connect_timeout(address, ACQUIRE_TIMEOUT) {
                Ok(_) => {
                    reached = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = true,
                Err(_) => {}
            }
        }
        if !reached {
            return if refused {
                format!("{target}：连接被拒绝（该主机的 {port} 端口没有 PostgreSQL 在监听：服务未启动或端口不对）")
            } else {
                format!(
                    "{target}：{}秒内连不上主机（网络不通或被防火墙拦截）",
                    ACQUIRE_TIMEOUT.as_secs()
                )
            };
        }
    }
    let error = match <sqlx::PgConnection as sqlx::Connection>::connect_with(options).await {
        Ok(connection) => {
            let _ = sqlx::Connection::close(connection).await;
            pool_error
        }
        Err(e) => e,
    };
    let cause = match &error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") => format!("用户 {user} 的密码不正确"),
            Some("28000") => format!("服务器不允许用户 {user} 从本机登录（pg_hba.conf）"),
            Some("3D000") => format!("数据库 {database} 不存在，请先创建（createdb {database}）"),
            Some("53300") => "服务器连接数已满".to_owned(),
            Some("57P03") => "服务器正在启动或关闭，请稍后重试".to_owned(),
            Some(code) => format!("服务器拒绝了连接（SQLSTATE {code}）"),
            None => "服务器拒绝了连接".to_owned(),
        },
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "连接被拒绝（服务未启动或端口不对）".to_owned()
        }
        sqlx::Error::Tls(_) => "TLS 加密握手失败，请检查 sslmode 设置".to_owned(),
        sqlx::Error::PoolTimedOut => format!(
            "{}秒内没有建立连接（服务器过忙或网络很慢）",
            ACQUIRE_TIMEOUT.as_secs()
        ),
        _ => "连接失败".to_owned(),
    };
    tracing::debug!(error = %error, "postgresql connect failed");
    format!("{target}：{cause}")
}

#[async_trait::async_trait]
impl Dialect for PostgresStorage {
    type DB = sqlx::Postgres;

    const BACKEND: Backend = Backend::Postgres;
    const OUTBOX_PENDING: &'static str = "delivered_at IS NULL AND NOT dead";
    const OUTBOX_DEAD: &'static str = "dead";
    /// Orders text by bytes, as Rust compares strings, whatever the database's collation.
    const BYTE_ORDER: &'static str = "COLLATE \"C\"";
    /// Orders names by code point whatever the database's collation (the `persons_by_name` index).
    const NAME_ORDER: &'static str = "COLLATE \"C\"";
    const LOCK_PAYABLES: &'static str = " FOR UPDATE OF y";

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn reads(&self) -> &ReadPools<sqlx::Postgres> {
        &self.reads
    }

    fn channel_cache(&self) -> &yibao_storage::memo::ChannelCache {
        &self.channel_cache
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// ` = ANY($n)` with one array parameter: planned once, whatever the batch size.
    fn push_id_list(statement: &mut Statement<sqlx::Postgres>, ids: &[String]) {
        statement.push(" = ANY(").push_bind(ids.to_vec()).push(")");
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// `PgArguments` has no lifetime (the `where` makes `'q` early-bound, as the trait's is).
    #[allow(clippy::extra_unused_lifetimes)]
    fn arguments<'q>(arguments: sqlx::postgres::PgArguments) -> sqlx::postgres::PgArguments
    where
        'q: 'q,
    {
        arguments
    }

    async fn regions_on_nodes(&self) -> Result<bool, StorageError> {
        Ok(*self.citus.get_or_try_init(|| self.is_citus()).await?)
    }

    async fn copy_csv(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        target: &str,
        csv: String,
    ) -> Result<bool, StorageError> {
        if !csv.is_empty() {
            copy_rows(
                tx,
                &format!("COPY {target} FROM STDIN WITH (FORMAT csv)"),
                csv,
            )
            .await?;
        }
        Ok(true)
    }

    /// New persons, their first history entry and their enrolment rows, by COPY: several times
    /// faster than multi-row INSERTs for roster imports.
    async fn copy_new_persons(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        planned: &[yibao_storage::upsert_plan::PlannedRow],
        source: &yibao_storage::ChangeSource,
        kind: &str,
    ) -> Result<bool, StorageError> {
        use yibao_storage::upsert_plan::csv_row;
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
                    p.insured_number.as_deref(),
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
                let year = w.fee_year.get().to_string();
                let covered = date(w.covered_from);
                csv_row(
                    &mut enrolments,
                    &[
                        Some(&c.region_code),
                        Some(&year),
                        Some(&c.id_number),
                        Some(w.status.code()),
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
                 subsidy_fen, version, updated_by, insured_number) FROM STDIN WITH (FORMAT csv)",
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
            copy_rows(tx, statement, data).await?;
        }
        Ok(true)
    }

    async fn refresh_statistics(&self) -> Result<(), StorageError> {
        sqlx::raw_sql("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    async fn housekeeping(&self) -> Result<yibao_storage::Housekeeping, StorageError> {
        self.upkeep().await
    }

    fn with_own_connections(&self, connections: u32) -> Option<Arc<dyn yibao_storage::Storage>> {
        let lazy = |pool: &PgPool| {
            pool_options(connections).connect_lazy_with(pool.connect_options().as_ref().clone())
        };
        let pool = lazy(&self.pool);
        let reads = self.reads.reopened(pool.clone(), lazy);
        Some(Arc::new(PostgresStorage {
            pool,
            reads,
            channel_cache: self.channel_cache.clone(),
            citus: self.citus.clone(),
        }))
    }

    fn replica_pool_status(&self) -> Option<PoolStatus> {
        self.reads.replica().map(|(pool, _)| PoolStatus {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        })
    }

    fn replica_state(&self) -> Option<ReplicaState> {
        self.reads.replica().map(|(_, health)| health.state())
    }

    async fn check_replica(&self) -> Result<Option<(ReplicaState, bool)>, StorageError> {
        let Some((replica, health)) = self.reads.replica() else {
            return Ok(None);
        };
        let lag = self.replica_lag(replica).await?;
        Ok(Some(health.record(lag)))
    }
}

/// Sends `data` (CSV) by `statement` (a `COPY … FROM STDIN`) in `tx`.
async fn copy_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    statement: &str,
    data: String,
) -> Result<(), StorageError> {
    async fn copy(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        statement: &str,
        data: String,
    ) -> Result<u64, sqlx::Error> {
        let mut copy = tx.copy_in_raw(statement).await?;
        copy.send(data.into_bytes()).await?;
        copy.finish().await
    }
    match copy(tx, statement, data).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db))
            if db.code().as_deref() == Some(CITUS_COPY_ERROR)
                && copy_refused_by_primary_key(db.message()) =>
        {
            Err(StorageError::Constraint {
                kind: yibao_storage::ConstraintKind::Unique,
                detail: db.message().to_owned(),
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// The SQLSTATE a Citus coordinator gives every error a node reported during a COPY (its
/// `ReportCopyError` passes on the node's message and detail, not its code).
const CITUS_COPY_ERROR: &str = "XX000";

/// Whether `message`, an error of a COPY on a Citus cluster, names a primary key: a shard's,
/// `"persons_pkey_102008"`, or a table's. The only constraint a primary key enforces is
/// uniqueness, so this is a duplicate key (in whatever language the server writes messages;
/// the name is not translated), which callers may settle by trying again, as they do where
/// PostgreSQL reports it with its own code (23505).
fn copy_refused_by_primary_key(message: &str) -> bool {
    message.split('"').skip(1).step_by(2).any(|name| {
        let name = name.trim_end_matches(|c: char| c.is_ascii_digit());
        name.ends_with("_pkey") || name.ends_with("_pkey_")
    })
}

#[cfg(test)]
mod tests {
    use yibao_storage::dialect::Statement;

    #[test]
    fn a_built_statement_numbers_its_placeholders() {
        let mut q = Statement::<sqlx::Postgres>::new("INSERT INTO t (a, b)");
        q.push_values([(1i64, "x"), (2, "y")], |row, (a, b)| {
            row.push_bind(a).push_bind(b.to_owned());
        });
        let (sql, _) = q.into_parts().unwrap();
        assert_eq!(sql, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
    }

    #[test]
    fn a_citus_copy_refused_by_a_primary_key_is_told_from_other_refusals() {
        use super::copy_refused_by_primary_key as by_key;
        assert!(by_key(
            "duplicate key value violates unique constraint \"person_directory_pkey_102041\""
        ));
        assert!(by_key("重复键违反唯一约束\"persons_pkey_102008\""));
        assert!(by_key(
            "duplicate key value violates unique constraint \"persons_pkey\""
        ));
        assert!(!by_key(
            "insert or update on table \"persons_102008\" violates foreign key constraint \"persons_region_code_fkey_102008\""
        ));
        assert!(!by_key(
            "new row for relation \"payables_102100\" violates check constraint \"payables_amount_fen_check\""
        ));
        assert!(!by_key(
            "null value in column \"name\" of relation \"persons_102008\""
        ));
        assert!(!by_key(
            "connection to the remote node 127.0.0.1:19701 failed"
        ));
    }
}
