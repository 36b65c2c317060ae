//! What really differs between the two databases, and the statement builder the generic storage
//! code writes its SQL with (issue 13).
//!
//! The storage code is written once, generic over a [`Dialect`]; each backend crate implements it
//! on its storage type: its pools, its write transaction (`BEGIN IMMEDIATE` on SQLite), how a
//! list of ID numbers is tested (`= ANY($n)`, one array, on PostgreSQL; `IN ($n, …)` on
//! SQLite), the spelling of a few predicates and collations, its bulk copy, and its upkeep.

use async_trait::async_trait;
use sqlx::{Arguments, Database, Encode, Pool, Transaction, Type};

use crate::memo::ChannelCache;
use crate::read_routing::{ReadPools, ReplicaState};
use crate::{Backend, ChangeSource, Housekeeping, PoolStatus, StorageError};

/// A backend: its database, its handles, and the few places where the SQL of the two databases
/// differs. Every `Storage` method is written once over this trait (see `crate::storage_impl`).
#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    type DB: Database;

    /// Which backend this is.
    const BACKEND: Backend;
    /// The outbox's predicate for events still being retried, as the partial index
    /// `outbox_pending` spells it.
    const OUTBOX_PENDING: &'static str;
    /// The outbox's predicate for dead letters, as the partial index `outbox_dead_letters`
    /// spells it.
    const OUTBOX_DEAD: &'static str;
    /// A collation clause that orders text by bytes, as Rust compares strings (reconciliation
    /// merges the two orders).
    const BYTE_ORDER: &'static str;
    /// The collation clause of the `persons_by_name` index (code-point order).
    const NAME_ORDER: &'static str;
    /// Appended to a select of payables (aliased `y`) that a payment is about to decide on: locks
    /// their rows until the transaction ends (`FOR UPDATE OF y` on PostgreSQL; nothing on SQLite,
    /// whose write transaction already excludes every other writer).
    const LOCK_PAYABLES: &'static str;

    /// The primary's pool: every write, and reads that must see them.
    fn pool(&self) -> &Pool<Self::DB>;
    /// Bulk reads (searches, lists, reports, dashboards): a streaming replica while it is well,
    /// else the primary ([`crate::read_routing`]).
    fn reads(&self) -> &ReadPools<Self::DB>;
    /// Channels as requests read them ([`crate::memo`]).
    fn channel_cache(&self) -> &ChannelCache;

    /// A write transaction. SQLite takes its write lock at once (`BEGIN IMMEDIATE`), so two
    /// writers queue on the busy timeout instead of failing when a reader upgrades.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::DB>, sqlx::Error>;

    /// Appends the test "is one of these ID numbers" to a statement that ends in a column name.
    fn push_id_list(statement: &mut Statement<Self::DB>, ids: &[String]);

    /// How many rows a statement changed (sqlx has no generic accessor).
    fn rows_affected(result: &<Self::DB as Database>::QueryResult) -> u64;

    /// The arguments of a [`Statement`] for a query that borrows its SQL for `'q` (the backend's
    /// argument types are covariant; a generic projection is not).
    fn arguments<'q>(
        arguments: <Self::DB as Database>::Arguments<'static>,
    ) -> <Self::DB as Database>::Arguments<'q>;

    /// Whether regions live on different nodes (a Citus cluster): a search by ID number then
    /// asks the person directory first, so that it reads only the shards of the person's regions.
    /// Elsewhere the payables' index on the ID number finds them in the search's one statement.
    async fn regions_on_nodes(&self) -> Result<bool, StorageError> {
        Ok(false)
    }

    /// Appends rows given as CSV (`upsert_plan::csv_row`) to `target`, a table and its columns,
    /// by the backend's bulk path (PostgreSQL: COPY, which skips a statement's thousands of
    /// parameters). `Ok(false)`: the backend has none, and the caller inserts them itself.
    async fn copy_csv(
        &self,
        _tx: &mut Transaction<'static, Self::DB>,
        _target: &str,
        _csv: String,
    ) -> Result<bool, StorageError> {
        Ok(false)
    }

    /// Writes a batch of persons none of whom is stored yet, their first history entries and
    /// their enrolments, by the backend's fastest way. `Ok(false)`: the backend has none, and the
    /// shared multi-row upserts write them.
    async fn copy_new_persons(
        &self,
        _tx: &mut Transaction<'static, Self::DB>,
        _planned: &[crate::upsert_plan::PlannedRow],
        _source: &ChangeSource,
        _kind: &str,
    ) -> Result<bool, StorageError> {
        Ok(false)
    }

    /// See `Storage::refresh_statistics`.
    async fn refresh_statistics(&self) -> Result<(), StorageError>;
    /// Called once statistics are taken, so that every pooled connection plans with them (see
    /// the SQLite backend's). PostgreSQL: nothing; a connection plans again once the statistics
    /// it planned with change.
    async fn share_statistics(&self) -> Result<(), StorageError> {
        Ok(())
    }
    /// See `Storage::housekeeping`.
    async fn housekeeping(&self) -> Result<Housekeeping, StorageError>;
    /// See `Storage::with_own_connections`.
    fn with_own_connections(
        &self,
        _connections: u32,
    ) -> Option<std::sync::Arc<dyn crate::Storage>> {
        None
    }
    /// See `Storage::bound_wal`.
    async fn bound_wal(&self) -> Result<Housekeeping, StorageError> {
        Ok(Housekeeping::default())
    }
    /// Called after a batch of payment reports committed (SQLite: the WAL's checkpoint, off the
    /// writer's connection).
    fn payment_batch_committed(&self) {}
    /// See `Storage::replica_pool_status`.
    fn replica_pool_status(&self) -> Option<PoolStatus> {
        None
    }
    /// See `Storage::replica_state`.
    fn replica_state(&self) -> Option<ReplicaState> {
        None
    }
    /// See `Storage::check_replica`.
    async fn check_replica(&self) -> Result<Option<(ReplicaState, bool)>, StorageError> {
        Ok(None)
    }
}

/// A statement built piece by piece with its bound values, like sqlx's `QueryBuilder`, which
/// generic code cannot execute (its arguments' lifetime is invariant behind the backend's
/// projection). Placeholders are the backend's own, as sqlx's `QueryBuilder` writes them:
/// `$1, $2 …` on PostgreSQL, `?` on SQLite. SQLite keeps numbered or named parameters in a list
/// it searches from the start for each one, when it prepares the statement and when sqlx binds
/// it, so a batch of 1000 rows of 17 values cost about 17 000² steps: `$N` placeholders made a
/// 1 000 000-row roster import on SQLite take 475 s instead of 22 s. Plain `?` are numbered in
/// order and never searched. Run it with [`Statement::into_parts`] and `sqlx::query_with`.
pub struct Statement<DB: Database> {
    sql: String,
    arguments: DB::Arguments<'static>,
    /// The first value that failed to encode; reported by [`Statement::into_parts`].
    error: Option<String>,
}

impl<DB: Database> Statement<DB> {
    pub fn new(sql: impl Into<String>) -> Self {
        Statement {
            sql: sql.into(),
            arguments: Default::default(),
            error: None,
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds a value and appends its placeholder.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, DB> + Type<DB> + Send + 'static,
    {
        match self.arguments.add(value) {
            // After the value: PostgreSQL's placeholder is its number.
            Ok(()) => {
                let _ = self.arguments.format_placeholder(&mut self.sql);
            }
            Err(e) => {
                self.error.get_or_insert_with(|| e.to_string());
            }
        }
        self
    }

    /// Appends ` VALUES (…), (…)`: one parenthesised row per item, whose values `row` binds
    /// with [`Row::push_bind`].
    pub fn push_values<I, F>(&mut self, items: I, mut row: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(&mut Row<'_, DB>, I::Item),
    {
        self.sql.push_str(" VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            row(
                &mut Row {
                    statement: self,
                    first: true,
                },
                item,
            );
            self.sql.push(')');
        }
        self
    }

    /// Binds each value, appending their placeholders separated by commas (for `IN (…)`).
    pub fn push_list<I>(&mut self, values: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: Encode<'static, DB> + Type<DB> + Send + 'static,
    {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(value);
        }
        self
    }

    /// The SQL and its arguments (`'static`: pass them through [`Dialect::arguments`]).
    pub fn into_parts(self) -> Result<(String, DB::Arguments<'static>), StorageError> {
        match self.error {
            Some(e) => Err(StorageError::Other(format!(
                "a value could not be bound: {e}"
            ))),
            None => Ok((self.sql, self.arguments)),
        }
    }
}

/// One row of [`Statement::push_values`].
pub struct Row<'s, DB: Database> {
    statement: &'s mut Statement<DB>,
    first: bool,
}

impl<DB: Database> Row<'_, DB> {
    /// Binds the row's next value.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, DB> + Type<DB> + Send + 'static,
    {
        if !self.first {
            self.statement.sql.push_str(", ");
        }
        self.first = false;
        self.statement.push_bind(value);
        self
    }
}
