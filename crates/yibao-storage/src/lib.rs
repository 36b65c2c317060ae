//! The one storage trait of yibao and the types that cross it.
//!
//! Two backends implement it: `yibao-storage-postgres` for production and `yibao-storage-sqlite`,
//! embedded, for the zero-setup default. Both keep the same invariants as database constraints
//! (primary keys, checks, foreign keys) and both pass the same conformance suite in `yibao-tests`.
//! Every table carries the region code (统筹区), and every key of a region table includes it, so a
//! province can run on a Citus cluster distributed by region (`regional_id`, ARCHITECTURE.md).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::NaiveDate;
use yibao_domain::{
    CalendarNotice, CalendarYear, Category, CategoryAmount, CollectionWindow, Component,
    CoverRules, DayKind, FeePolicy, FeePolicyInput, FeeYear, Fen, PoolingRegion, RegionCode,
    WorkingCalendar,
};

pub mod assessment;
pub mod campaign_records;
pub mod channels;
pub mod citizen_accounts;
pub mod citizen_reads;
pub mod collection;
pub mod console_reads;
pub mod cover_history;
mod database_url;
pub mod debit_runs;
pub mod dialect;
pub mod enrolment_applications;
pub mod households;
mod locate;
pub mod memo;
pub mod orders;
pub mod outbox;
pub mod payable_search;
pub mod payment_batch;
pub mod payments;
pub mod persons;
pub mod read_routing;
pub mod receipts;
pub mod reconciliation;
pub mod records;
pub mod refund_care;
pub mod refunds;
pub mod region_setup;
pub mod regional_id;
pub mod reports;
pub mod rows;
pub mod sandbox;
pub mod settlement;
pub mod staff_accounts;
pub mod status_moves;
mod storage_impl;
pub mod upsert_plan;
pub mod village_agents;

/// Every aggregate trait, for code that calls storage on a backend's own type rather than
/// through `dyn Storage` (a trait's methods need the trait in scope there).
pub mod prelude {
    pub use crate::assessment::AssessmentStore;
    pub use crate::channels::ChannelStore;
    pub use crate::collection::CollectionStorage;
    pub use crate::debit_runs::DebitStore;
    pub use crate::dialect::Dialect;
    pub use crate::orders::OrderStore;
    pub use crate::outbox::OutboxStore;
    pub use crate::payable_search::PayableSearch;
    pub use crate::payments::PaymentStore;
    pub use crate::persons::PersonStore;
    pub use crate::receipts::ReceiptStore;
    pub use crate::reconciliation::ReconciliationStore;
    pub use crate::refund_care::RefundCare;
    pub use crate::refunds::RefundStore;
    pub use crate::reports::ReportStore;
    pub use crate::settlement::SettlementStorage;
    pub use crate::Storage;
}

pub use database_url::{DatabaseUrl, DatabaseUrlError};
pub use records::{
    AssessmentCandidates, AuditEntry, AuditFilter, AuditRecord, ChangeSource, EnrolmentOutcome,
    EnrolmentRecord, EnrolmentRequest, HistoryEntry, ImportSummary, LoginAdmission,
    LoginThrottleKey, NewPayable, PayableRecord, PersonChange, PersonUpsert, ReassessRefusal,
    RejectionFile, Role, StaffAccount, StandingRow, UpsertOutcome,
};

/// Whether the caller may change a person stored in a region under a station (or none): the
/// server's one scope rule (`Staff::may_change`), handed to the storage so it can be applied to
/// what the write transaction finds.
pub type MayChange<'a> = &'a (dyn Fn(yibao_domain::RegionCode, Option<&yibao_domain::StationCode>) -> bool
         + Send
         + Sync);

/// Which backend a storage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }

    /// Whether two write transactions can make progress at once: on PostgreSQL they wait only
    /// for the rows they share; SQLite has one writer at a time, so a second write transaction
    /// opened while one is held waits for it.
    pub fn writers_run_concurrently(self) -> bool {
        match self {
            Backend::Postgres => true,
            Backend::Sqlite => false,
        }
    }

    /// Persons per storage call ([`crate::persons::PersonStore::upsert_persons_checked`]), and so
    /// per roster-import batch: bounded so that one transaction stays short, and on SQLite so
    /// that an update's statement stays within its 32 766 parameters (17 a person). On
    /// PostgreSQL each batch costs a dozen statements whatever its size, and a 1 000 000-row
    /// import took 20.5-22.3 s in batches of 2 000 against 22.8-25.5 s in batches of 1 000
    /// (BENCHMARKS.md); 17 parameters a person stay within its 65 535.
    pub fn persons_per_batch(self) -> usize {
        match self {
            Backend::Postgres => 2000,
            Backend::Sqlite => 1000,
        }
    }

    /// Whether the planner scales the rows a table's statistics counted to the table's present
    /// size: PostgreSQL estimates its rows from the rows a page it counted and the pages the
    /// table has now; SQLite takes the rows counted as they are, so statistics taken early in
    /// a bulk change must be taken again as the tables grow.
    pub fn plans_scale_with_table_size(self) -> bool {
        match self {
            Backend::Postgres => true,
            Backend::Sqlite => false,
        }
    }
}

/// The tables a bulk operation grows, whose planner statistics it refreshes once it has written
/// its first batch ([`Storage::refresh_statistics_of`]); or, for payments, that PostgreSQL's
/// group-commit writer refreshes once, and a bank's debit result as it applies its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowingTables {
    /// A roster import's: the persons and everything written with them.
    Enrolment,
    /// An assessment's: the payables.
    Payables,
    /// Payment reports': their keys, orders, payments, applications, receipts, refunds and
    /// postings. Refreshed once by PostgreSQL's group-commit writer (`channel::batcher`); a
    /// bank's debit result refreshes them as the other two do (`services::debit::import_result`).
    Payments,
}

impl GrowingTables {
    /// The tables, each named in a statement of fixed text.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            GrowingTables::Enrolment => &[
                "persons",
                "person_history",
                "person_directory",
                "enrolment_claims",
                "enrolments",
            ],
            GrowingTables::Payables => &["payables"],
            GrowingTables::Payments => &[
                "channel_keys",
                "orders",
                "payments",
                "payment_applications",
                "receipts",
                "refunds",
                "outbox",
            ],
        }
    }
}

/// What kind of database constraint refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Unique,
    ForeignKey,
    Check,
    NotNull,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A constraint refused the write; nothing of the transaction was kept.
    #[error("数据库约束拒绝了写入（{kind:?}）：{detail}")]
    Constraint {
        kind: ConstraintKind,
        detail: String,
    },
    /// What is stored no longer parses into a domain type: a bug or a hand edit, never user input.
    #[error("数据库中存储的数据无效：{0}")]
    Corrupt(String),
    /// The database could not be reached or timed out.
    #[error("数据库不可用：{0}")]
    Unavailable(String),
    #[error("数据库错误：{0}")]
    Other(String),
}

impl From<sqlx::Error> for StorageError {
    /// The one place where driver errors become storage errors, for both backends.
    fn from(err: sqlx::Error) -> Self {
        match &err {
            // The server went away under the query (PostgreSQL SQLSTATE class 08, connection
            // exception; 57P01-57P03, shutting down or starting up): unavailable, not a bug.
            // A deadlock (40P01): PostgreSQL rolled the whole transaction back, nothing was
            // written, and the same request again succeeds. Unavailable too (retry), not a bug.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "40P01")
                }) =>
            {
                StorageError::Unavailable(db.message().to_owned())
            }
            sqlx::Error::Database(db) => {
                let kind = match db.kind() {
                    sqlx::error::ErrorKind::UniqueViolation => ConstraintKind::Unique,
                    sqlx::error::ErrorKind::ForeignKeyViolation => ConstraintKind::ForeignKey,
                    sqlx::error::ErrorKind::CheckViolation => ConstraintKind::Check,
                    sqlx::error::ErrorKind::NotNullViolation => ConstraintKind::NotNull,
                    _ => return StorageError::Other(db.message().to_owned()),
                };
                let detail = db.constraint().unwrap_or(db.message()).to_owned();
                StorageError::Constraint { kind, detail }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StorageError::Unavailable(err.to_string())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StorageError::Corrupt(err.to_string())
            }
            _ => StorageError::Other(err.to_string()),
        }
    }
}

impl StorageError {
    /// The error again for each of the requests of a batch that failed whole (group commit): a
    /// database that is away stays `Unavailable` (503), anything else keeps its text.
    pub fn for_each_waiter(&self) -> StorageError {
        match self {
            StorageError::Unavailable(m) => StorageError::Unavailable(m.clone()),
            other => StorageError::Other(other.to_string()),
        }
    }

    pub fn corrupt(what: impl fmt::Display) -> Self {
        StorageError::Corrupt(what.to_string())
    }
}

/// The storage of yibao. Each method is one transaction: it either happens whole or not at all.
#[async_trait]
pub trait Storage:
    persons::PersonStore
    + assessment::AssessmentStore
    + collection::CollectionStorage
    + settlement::SettlementStorage
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;

    /// Cheap round trip, for `/healthz`.
    async fn health(&self) -> Result<(), StorageError>;
    /// Brings the query planner's statistics up to date after a bulk change (a roster import, an
    /// assessment): without them a search plan scans a region's whole index. SQLite: a bounded
    /// `ANALYZE`; PostgreSQL: `ANALYZE`, which a server running with autovacuum off needs.
    async fn refresh_statistics(&self) -> Result<(), StorageError>;
    /// The planner's statistics of the tables a bulk operation grows (`ANALYZE` of each, on both
    /// backends), taken once it has written its first batch, and on SQLite again as it grows
    /// (`yibao_server::services::statistics::GrowthRefresh`). Statistics taken while a table was
    /// nearly empty make PostgreSQL's plans read a whole region for each row, and each batch is
    /// then slower than the last:
    /// - an assessment's, taken after the roster import, say the payables are none; the
    ///   candidates' statement then probed each person's payable through the index by region
    ///   and fee year (measured: 7 to 14 s a batch of 1000 at 150 000 payables, against 10 ms);
    /// - an import's, taken after a trial import of one person, say every person has the same
    ///   ID number; the foreign-key check of each enrolment then found its person through
    ///   the index by region and name and read the region's persons (measured: 66 000 of
    ///   200 000 rows written in the first 116 s, against all of them in 8 to 11 s);
    /// - the payment tables', taken while they were empty, on PostgreSQL: each receipt's,
    ///   application's and refund's foreign-key check scanned `payments` whole (measured: 520
    ///   reports a second, against 4 600 once refreshed). Its group-commit writer refreshes them
    ///   once it has stored 1000 new payments (SQLite's channels do not need it); a bank's
    ///   debit result, 50 000 payments in one import, once it has applied 1000 items (measured
    ///   before: each receipt's and application's check 2-7 ms at 5 000 payments, and growing).
    ///
    /// A foreign-key check's plan is kept by each connection until the statistics change, so
    /// refreshing them mid-operation mends the connections' plans as well.
    async fn refresh_statistics_of(&self, tables: GrowingTables) -> Result<(), StorageError>;
    /// Upkeep while serving, called by the background loop: SQLite checkpoints the WAL (and
    /// truncates it once it passes its bound) and refreshes statistics gone stale; PostgreSQL
    /// analyzes tables changed much since their last analysis when autovacuum is off.
    async fn housekeeping(&self) -> Result<Housekeeping, StorageError>;
    /// The same database through a pool of its own of at most `connections`, for tasks that run
    /// on a runtime of their own (`yibao_server::channel::gathering`). A PostgreSQL connection
    /// is woken by the runtime it was opened on: on a pool shared with the request handlers, a
    /// group-commit writer would wait behind every queued request after each of its
    /// statements. Its connections open when first used, on the runtime that uses them.
    /// `None`: use this storage as it is (SQLite, whose connections each run on a thread of
    /// their own and wake whichever task waits for them).
    fn with_own_connections(&self, _connections: u32) -> Option<std::sync::Arc<dyn Storage>> {
        None
    }
    /// Another handle on this storage, its pools shared, that a task spawned to run beside the
    /// caller can own (a roster import's batches, each on a task of its own).
    fn handle(&self) -> std::sync::Arc<dyn Storage>;
    /// The WAL's bound alone, cheap enough for every tick of the background loop (a file's size;
    /// a truncating checkpoint only when past the bound): checked once a minute, a WAL growing
    /// a few MiB a second under load passed its bound between two rounds. SQLite only; nothing
    /// elsewhere.
    async fn bound_wal(&self) -> Result<Housekeeping, StorageError> {
        Ok(Housekeeping::default())
    }
    /// The figures operations watches (refunds owed and overdue on `today`, the outbox backlog and
    /// dead letters, payables locked by debit runs), counted in one statement over partial
    /// indexes. Read by the background loop for the metrics, never per scrape.
    async fn operations_snapshot(
        &self,
        today: NaiveDate,
    ) -> Result<OperationsSnapshot, StorageError>;
    /// The connection pool's use now (no query).
    fn pool_status(&self) -> PoolStatus;
    /// The read replica's pool use now, when one is configured (no query).
    fn replica_pool_status(&self) -> Option<PoolStatus> {
        None
    }
    /// The read replica as the last check found it, when one is configured (no query).
    fn replica_state(&self) -> Option<read_routing::ReplicaState> {
        None
    }
    /// Checks the read replica (does it answer, is it still a replica, how far behind is it) and
    /// decides whether bulk reads go to it until the next check ([`read_routing`]). Answers the
    /// state and whether it changed; `None` without a replica. Called by the background loop.
    async fn check_replica(
        &self,
    ) -> Result<Option<(read_routing::ReplicaState, bool)>, StorageError> {
        Ok(None)
    }

    /// Creates the pooling region or renames it.
    async fn upsert_region(&self, region: &PoolingRegion) -> Result<(), StorageError>;
    async fn get_region(&self, code: RegionCode) -> Result<Option<PoolingRegion>, StorageError>;
    /// Every region in production (a sandbox, 接入测试, is left out).
    async fn list_regions(&self) -> Result<Vec<PoolingRegion>, StorageError>;

    /// Stores a region's fee policy for a fee year, replacing an earlier one of the same year whole.
    /// The region must exist (foreign key).
    async fn put_fee_policy(&self, policy: &FeePolicy) -> Result<(), StorageError>;
    async fn get_fee_policy(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
    ) -> Result<Option<FeePolicy>, StorageError>;
    async fn list_fee_policies(&self, region: RegionCode) -> Result<Vec<FeePolicy>, StorageError>;

    /// Stores imported cover history years (issue 19), each replacing the same person's same year,
    /// in one transaction; returns how many were written.
    async fn put_cover_history(
        &self,
        region: RegionCode,
        rows: &[yibao_domain::cover_history_file::HistoryRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// Stores imported special situations (exempt groups, moves from employee insurance), each
    /// replacing the same person's same situation, in one transaction.
    async fn put_cover_situations(
        &self,
        region: RegionCode,
        rows: &[yibao_domain::cover_history_file::SituationRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// What yibao holds of a person in a region for the 2025 rules, in one statement: imported
    /// years, its own paid or exempt payables as years of resident insurance, imported situations.
    async fn stored_cover(
        &self,
        region: RegionCode,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<cover_history::StoredCover, StorageError>;
    /// What is stored of each of `id_numbers` (at most
    /// [`cover_history::MAX_STORED_COVERS`]) in a region, in one statement.
    async fn stored_covers(
        &self,
        region: RegionCode,
        id_numbers: &[yibao_domain::IdNumber],
    ) -> Result<
        std::collections::HashMap<yibao_domain::IdNumber, cover_history::StoredCover>,
        StorageError,
    >;
    /// Stores imported claims years (报销情况: reimbursed, reward used), each replacing the same
    /// person's same year, in one transaction.
    async fn put_cover_claims(
        &self,
        region: RegionCode,
        rows: &[yibao_domain::cover_history_file::ClaimRow],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// Stores imported family-account bindings (个人账户家庭共济), each replacing the same
    /// relative's binding to the same employee, in one transaction.
    async fn put_family_bindings(
        &self,
        region: RegionCode,
        rows: &[yibao_domain::family_account::FamilyBinding],
        imported_at: i64,
    ) -> Result<u64, StorageError>;
    /// The bindings of `employee` to any of `relatives` in a region, in or out of force, in one
    /// statement.
    async fn family_bindings(
        &self,
        region: RegionCode,
        employee: &yibao_domain::IdNumber,
        relatives: &[yibao_domain::IdNumber],
    ) -> Result<Vec<yibao_domain::family_account::FamilyBinding>, StorageError>;
    /// Every binding of a relative in a region (whoever the employee), in or out of force, oldest
    /// first, at most [`cover_history::MAX_BINDINGS_SHOWN`].
    async fn family_bindings_of(
        &self,
        region: RegionCode,
        relative: &yibao_domain::IdNumber,
    ) -> Result<Vec<yibao_domain::family_account::FamilyBinding>, StorageError>;

    /// Puts a person of `region` in a household (户, with their relation to the head), or takes
    /// them out of theirs (`None`), in one transaction; a new head keeps the old one as a member
    /// without a relation ([`yibao_domain::household::plan_placements`]), refused whole when
    /// `may_change` refuses that head's station (checked in the transaction).
    async fn place_in_household(
        &self,
        region: RegionCode,
        id_number: &yibao_domain::IdNumber,
        placement: Option<yibao_domain::household::Placement>,
        source: &ChangeSource,
        may_change: MayChange<'_>,
    ) -> Result<households::PlaceOutcome, StorageError>;
    /// Registers a village agent (村代办员), or changes the one of the same channel and code;
    /// `false`, nothing written, when that one is of another region.
    async fn put_village_agent(
        &self,
        agent: &yibao_domain::village_agent::VillageAgent,
        actor: &str,
    ) -> Result<bool, StorageError>;
    /// The agent of a channel with this code.
    async fn village_agent(
        &self,
        channel_id: &str,
        code: &yibao_domain::village_agent::AgentCode,
    ) -> Result<Option<yibao_domain::village_agent::VillageAgent>, StorageError>;
    /// Whether a channel has any village agent registered.
    async fn channel_has_agents(&self, channel_id: &str) -> Result<bool, StorageError>;
    /// A region's agents, at most [`village_agents::MAX_AGENTS_LISTED`].
    async fn village_agents(
        &self,
        region: RegionCode,
    ) -> Result<Vec<yibao_domain::village_agent::VillageAgent>, StorageError>;
    /// Who paid what through one agent on `day`, one statement.
    async fn agent_day_lines(
        &self,
        region: RegionCode,
        channel_id: &str,
        code: &yibao_domain::village_agent::AgentCode,
        day: NaiveDate,
    ) -> Result<Vec<village_agents::AgentPaymentLine>, StorageError>;
    /// Every agent's day in a region in figures, one statement.
    async fn agent_day_totals(
        &self,
        region: RegionCode,
        day: NaiveDate,
    ) -> Result<Vec<village_agents::AgentDayTotal>, StorageError>;
    /// Records the cash an agent handed in on `day`, replacing an earlier record of that day.
    async fn put_agent_hand_in(
        &self,
        agent: &yibao_domain::village_agent::VillageAgent,
        day: NaiveDate,
        amount_fen: i64,
        actor: &str,
    ) -> Result<(), StorageError>;
    /// The hand-ins recorded in a region for `day`.
    async fn agent_hand_ins(
        &self,
        region: RegionCode,
        day: NaiveDate,
    ) -> Result<Vec<village_agents::HandInRecord>, StorageError>;
    /// Marks a registered region a sandbox (接入测试); `false` when it is not registered.
    async fn mark_sandbox_region(&self, region: RegionCode) -> Result<bool, StorageError>;
    /// Whether a region is a sandbox.
    async fn is_sandbox_region(&self, region: RegionCode) -> Result<bool, StorageError>;
    /// Holds an unpaid payable of a sandbox for good under `locked_by` (`order:…`, `debit:…`);
    /// `false` when it is not unpaid or not of a sandbox.
    async fn hold_sandbox_payable(
        &self,
        region: RegionCode,
        payable_id: &str,
        locked_by: &str,
    ) -> Result<bool, StorageError>;
    /// How many persons a region has on record (one statement).
    async fn persons_on_record(&self, region: RegionCode) -> Result<i64, StorageError>;
    /// Records the scenarios a test channel went through at `now` (Unix seconds).
    async fn record_sandbox_scenarios(
        &self,
        region: RegionCode,
        channel_id: &str,
        scenarios: &[&str],
        now: i64,
    ) -> Result<(), StorageError>;
    /// Every test channel's scenarios, at most [`sandbox::MAX_SCENARIO_ROWS`].
    async fn sandbox_scenarios(&self) -> Result<Vec<sandbox::ScenarioRecord>, StorageError>;
    /// The current members of the household `person` is in now in `region` (themselves
    /// included), in one statement; empty when they are in none.
    async fn current_household(
        &self,
        region: RegionCode,
        person: &yibao_domain::IdNumber,
    ) -> Result<Vec<yibao_domain::IdNumber>, StorageError>;
    /// A person's or a household's memberships, the current ones first, then the ended ones newest
    /// first, at most [`households::MAX_MEMBERSHIPS_SHOWN`].
    async fn household_memberships(
        &self,
        region: RegionCode,
        of: households::MembershipsOf<'_>,
    ) -> Result<Vec<households::MembershipRecord>, StorageError>;

    /// Replaces a region's own configured days of one calendar year (the days loaded from the
    /// national notice stay; a day given here wins over the notice's) and records that the year has
    /// a calendar.
    async fn put_calendar_year(
        &self,
        region: RegionCode,
        year: &CalendarYear,
    ) -> Result<(), StorageError>;
    /// Loads the State Council's notice for its year into a region: replaces the national days of
    /// that year, keeps the region's own (they win on the same day), records the notice's title and
    /// date. Idempotent.
    async fn put_national_calendar_year(
        &self,
        region: RegionCode,
        notice: &CalendarNotice,
    ) -> Result<(), StorageError>;
    /// The region's calendar: its configured days, and which years have a calendar at all.
    async fn working_calendar(&self, region: RegionCode) -> Result<WorkingCalendar, StorageError>;
    /// One year of a region's calendar as stored, with where each day comes from; `None` when the
    /// year has no calendar.
    async fn calendar_year_record(
        &self,
        region: RegionCode,
        year: i32,
    ) -> Result<Option<CalendarYearRecord>, StorageError>;

    // --- Lists ---

    /// How far collection has come: the number of persons per region, station and standing
    /// (`paid`, `unpaid` …, as [`records::standing_of`] names them) in the fee year, limited to one
    /// region and station when given. One aggregate statement; the console's first page.
    async fn collection_progress(
        &self,
        region: Option<RegionCode>,
        fee_year: yibao_domain::FeeYear,
        station: Option<&yibao_domain::StationCode>,
    ) -> Result<Vec<records::ProgressRow>, StorageError>;
    /// The citizen site's accounts (sign-in codes, sessions, family, preferences, messages):
    /// the same generic code on both backends, always on the primary.
    fn citizen_accounts(&self) -> &dyn citizen_accounts::CitizenAccounts;
    /// 参保登记 submitted on the citizen site and the stations' queue of them.
    fn enrolment_applications(&self) -> &dyn enrolment_applications::EnrolmentApplications;
    /// How each paid current payable of a person in a region was paid: the day and the kind of
    /// channel, for the citizen site. One statement, on the primary (a resident who has just paid
    /// sees it).
    async fn paid_by(
        &self,
        region: RegionCode,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<citizen_reads::PaidBy>, StorageError>;
    /// The refunds, reconciliation differences and unposted payments of a region (all regions
    /// when `None`), each counted up to [`console_reads::MONEY_COUNT_CAP`], in one statement.
    async fn money_counts(
        &self,
        query: &console_reads::MoneyCountsQuery<'_>,
    ) -> Result<console_reads::MoneyCounts, StorageError>;
    /// Persons of a region whose name is `name` or begins with it (in code-point order, so a
    /// name typed with or without its variation selectors is found when the caller compares with
    /// [`yibao_domain::PersonName::matches`]), limited to one station when given, at most `limit`.
    async fn find_persons_by_name(
        &self,
        region: RegionCode,
        name_prefix: &str,
        station: Option<&yibao_domain::StationCode>,
        limit: usize,
    ) -> Result<Vec<records::PersonSummary>, StorageError>;
    // --- Staff, sessions, audit ---

    async fn create_staff(&self, account: &StaffAccount) -> Result<(), StorageError>;
    async fn get_staff(&self, username: &str) -> Result<Option<StaffAccount>, StorageError>;
    async fn count_staff(&self) -> Result<i64, StorageError>;
    /// Every staff account, by user name.
    async fn list_staff(&self) -> Result<Vec<StaffAccount>, StorageError>;
    /// Disables or enables an account; disabling also ends its sessions, in one transaction.
    /// `false` when there is no such account.
    async fn set_staff_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, StorageError>;
    /// Replaces an account's password hash and ends its sessions, in one transaction. `false`
    /// when there is no such account. `must_change`: the password was set by someone else and
    /// the holder must replace it at the next sign-in.
    async fn set_staff_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StorageError>;
    /// Stores a session by the SHA-256 of its token; expired sessions are swept on the way.
    async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<(), StorageError>;
    async fn session_staff(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<StaffAccount>, StorageError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StorageError>;
    /// Counts one sign-in attempt against the account (`username` as typed) and the client
    /// `address`, in one transaction, before the password is checked: refused, counting nothing,
    /// when either has had its limit of attempts in the current window
    /// ([`records::LOGIN_WINDOW_SECONDS`]). Ended windows are deleted on the way (bounded).
    async fn admit_login_attempt(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<records::LoginAdmission, StorageError>;
    /// A sign-in succeeded: the account's count is forgotten and its attempt returned to the address.
    async fn login_succeeded(&self, username: &str, address: &str) -> Result<(), StorageError>;
    /// Appends to the audit log (a trigger refuses updates and deletes).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StorageError>;
    async fn list_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StorageError>;
    /// Audit entries matching `filter`, newest first, at most `limit` (keyset paging by
    /// `before_id`): the filters reach every entry, not the newest few.
    async fn audit_entries(
        &self,
        filter: &records::AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError>;
    async fn record_import(&self, summary: &ImportSummary, actor: &str)
        -> Result<(), StorageError>;

    // --- The console's campaign records (issue 16) ---

    /// Keeps an import's rejection file under its uploader's region and import id (the key);
    /// a second one for the same key replaces the first.
    async fn put_rejection_file(&self, file: &RejectionFile) -> Result<(), StorageError>;
    /// The rejection file of an import in a region (or [`records::CENTRE_SCOPE`]), if still kept.
    async fn get_rejection_file(
        &self,
        region: &str,
        import_id: &str,
    ) -> Result<Option<RejectionFile>, StorageError>;
    /// Deletes rejection files created before `before` (Unix seconds), at most
    /// [`records::MAX_REJECTION_FILES_PRUNED`] per call; answers how many.
    async fn prune_rejection_files(&self, before: i64) -> Result<u64, StorageError>;

    /// One page of the unpaid list (未缴名单) of a region and fee year, optionally one station:
    /// the enrolled who owe (the standings `unpaid` and `not_assessed` of
    /// [`records::standing_of`]), ordered by station (none first) and ID number, `limit` (at most
    /// [`records::MAX_UNPAID_PAGE_ROWS`]) from `offset`, each with their latest follow-up, and
    /// the whole list's count and amount: one statement.
    /// A batch of the unpaid list for an export
    /// ([`console_reads::unpaid_after`]: keyset after the cursor, at most
    /// [`console_reads::MAX_UNPAID_BATCH_ROWS`], no whole-list sums).
    async fn unpaid_after(
        &self,
        query: &console_reads::UnpaidBatchQuery<'_>,
    ) -> Result<Vec<records::UnpaidRow>, StorageError>;

    async fn unpaid_page(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        station: Option<&yibao_domain::StationCode>,
        offset: usize,
        limit: usize,
    ) -> Result<records::UnpaidPage, StorageError>;
    /// Records a follow-up of an unpaid person (history kept: the next number of that person and
    /// year); answers its number. The person must be stored in the region (foreign key).
    async fn add_follow_up(&self, follow_up: &records::NewFollowUp) -> Result<i64, StorageError>;
    /// A person's follow-ups in a fee year, newest first, at most
    /// [`records::MAX_FOLLOW_UPS_READ`].
    async fn follow_ups(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        id_number: &yibao_domain::IdNumber,
    ) -> Result<Vec<records::FollowUpRecord>, StorageError>;
    /// Stores a station's 未参保名单及原因 for a fee year. Once: a second one for the same region,
    /// fee year and station is refused by the key (`Constraint { kind: Unique }`).
    async fn submit_uninsured(
        &self,
        submission: &records::UninsuredSubmission,
    ) -> Result<(), StorageError>;
    /// The submissions of a region's fee year, by station, without their lines.
    async fn uninsured_submissions(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
    ) -> Result<Vec<records::UninsuredSubmission>, StorageError>;
    /// One station's submission with its lines ([`console_reads::uninsured_submission`]).
    async fn uninsured_submission(
        &self,
        region: RegionCode,
        fee_year: FeeYear,
        station: &yibao_domain::StationCode,
    ) -> Result<Option<records::UninsuredSubmission>, StorageError>;
}

/// What one round of [`Storage::housekeeping`] saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Housekeeping {
    /// SQLite: the write-ahead log's size after the round, bytes.
    pub wal_bytes: Option<u64>,
    /// SQLite: the WAL had passed its bound and was checkpointed and truncated.
    pub wal_truncated: bool,
    /// Tables whose statistics were refreshed.
    pub analyzed: Vec<String>,
}

/// What [`Storage::operations_snapshot`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationsSnapshot {
    /// Refunds not settled yet (`owed`, `sent` or `failed`).
    pub refunds_owed: i64,
    /// Their amount, fen.
    pub refunds_owed_fen: i64,
    /// Of those, refunds past their due date (two working days after the payment).
    pub refunds_overdue: i64,
    /// Outbox events not delivered to the agency yet and still being retried.
    pub outbox_backlog: i64,
    /// Outbox events that ran out of attempts (dead letters), for staff to look at.
    pub outbox_dead_letters: i64,
    /// Payables held by a bank debit run (`locked_by` `debit:…`).
    pub payables_locked_by_debit_runs: i64,
}

impl From<(i64, i64, i64, i64, i64, i64)> for OperationsSnapshot {
    /// The row of [`operations_snapshot_sql`], in its column order.
    fn from(row: (i64, i64, i64, i64, i64, i64)) -> Self {
        let (refunds_owed, refunds_owed_fen, refunds_overdue, backlog, dead, locked) = row;
        OperationsSnapshot {
            refunds_owed,
            refunds_owed_fen,
            refunds_overdue,
            outbox_backlog: backlog,
            outbox_dead_letters: dead,
            payables_locked_by_debit_runs: locked,
        }
    }
}

/// The one statement of [`Storage::operations_snapshot`] (`$1` is today), given how the backend's
/// schema spells the outbox's two predicates (`OUTBOX_PENDING`, `OUTBOX_DEAD` of each backend),
/// word for word as its partial indexes do, so each count reads an index: refunds by
/// `refunds_by_status_due`, the backlog by `outbox_pending`, dead letters by `outbox_dead_letters`
/// (migration 0022), locks by `payables_locked`.
pub fn operations_snapshot_sql(pending: &str, dead: &str) -> String {
    // The sandbox's regions (接入测试) are left out: their money is no one's.
    let real =
        "region_code NOT IN (SELECT sb.region_code FROM pooling_regions sb WHERE sb.sandbox)";
    format!(
        "SELECT (SELECT COUNT(*) FROM refunds WHERE status IN ('owed', 'sent', 'failed') AND {real}), \
         (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds \
          WHERE status IN ('owed', 'sent', 'failed') AND {real}), \
         (SELECT COUNT(*) FROM refunds WHERE status IN ('owed', 'sent', 'failed') AND due < $1 AND {real}), \
         (SELECT COUNT(*) FROM outbox WHERE {pending} AND {real}), \
         (SELECT COUNT(*) FROM outbox WHERE {dead} AND {real}), \
         (SELECT COUNT(*) FROM payables WHERE status = 'locked' AND locked_by LIKE 'debit:%' AND {real})"
    )
}

/// The connection pool's use at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open (idle or in use).
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The pool's bound.
    pub max: u32,
}

/// A year of a region's holiday calendar as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CalendarYearRecord {
    pub region: RegionCode,
    pub year: i32,
    /// The notice's title and date; `None` when staff configured the year themselves.
    pub title: Option<String>,
    pub published_on: Option<NaiveDate>,
    /// Every configured day, in date order.
    pub days: Vec<CalendarDayRecord>,
}

/// A configured day: a weekday off or a weekend worked, from the notice or the region's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CalendarDayRecord {
    pub day: NaiveDate,
    pub kind: DayKind,
    /// `national` (the State Council's notice) or `region` (configured for this region).
    pub origin: String,
}

/// A `fee_policies` row as both backends read it (`fee_year` and `adult_age` cast to INTEGER).
#[derive(sqlx::FromRow)]
pub struct FeePolicyRow {
    pub region_code: String,
    #[sqlx(try_from = "i32")]
    pub fee_year: i64,
    pub age_reference_date: NaiveDate,
    #[sqlx(try_from = "i32")]
    pub adult_age: i64,
    pub window_opens: NaiveDate,
    pub window_closes: NaiveDate,
    pub late_payment_allowed: bool,
    /// The 2025 rules as JSON; none on a policy stored before them (the national defaults).
    pub cover_rules: Option<String>,
}

/// A policy's 2025 rules as the `cover_rules` column stores them.
pub fn cover_rules_json(policy: &FeePolicy) -> Result<String, StorageError> {
    serde_json::to_string(policy.cover_rules()).map_err(StorageError::corrupt)
}

/// A `fee_policy_amounts` row.
#[derive(sqlx::FromRow)]
pub struct FeePolicyAmountRow {
    pub category: String,
    pub component: String,
    pub amount_fen: i64,
}

/// Flattens a policy into the rows both backends write.
pub fn fee_policy_amount_rows(policy: &FeePolicy) -> Vec<FeePolicyAmountRow> {
    policy
        .amounts()
        .flat_map(|(category, amount)| {
            Component::ALL
                .into_iter()
                .map(move |component| FeePolicyAmountRow {
                    category: category.code().to_owned(),
                    component: component.code().to_owned(),
                    amount_fen: amount.component(component).as_fen(),
                })
        })
        .collect()
}

/// Rebuilds a policy from its rows, through the same checks as any other input.
pub fn assemble_fee_policy(
    row: FeePolicyRow,
    amount_rows: Vec<FeePolicyAmountRow>,
) -> Result<FeePolicy, StorageError> {
    let mut per_category: BTreeMap<Category, Vec<(Component, Fen)>> = BTreeMap::new();
    for a in amount_rows {
        let category = Category::from_code(&a.category)
            .ok_or_else(|| StorageError::corrupt(format!("category {}", a.category)))?;
        let component = Component::from_code(&a.component)
            .ok_or_else(|| StorageError::corrupt(format!("component {}", a.component)))?;
        let amount = Fen::new(a.amount_fen).map_err(StorageError::corrupt)?;
        per_category
            .entry(category)
            .or_default()
            .push((component, amount));
    }
    let mut amounts = BTreeMap::new();
    for (category, parts) in per_category {
        let total =
            Fen::checked_sum(parts.iter().map(|(_, a)| *a)).map_err(StorageError::corrupt)?;
        let others: Vec<_> = parts
            .into_iter()
            .filter(|(c, _)| *c != Component::Basic)
            .collect();
        let amount = CategoryAmount::including(total, &others).map_err(StorageError::corrupt)?;
        amounts.insert(category, amount);
    }
    FeePolicy::new(FeePolicyInput {
        region: RegionCode::parse(&row.region_code).map_err(StorageError::corrupt)?,
        fee_year: FeeYear::new(row.fee_year).map_err(StorageError::corrupt)?,
        amounts,
        age_reference_date: row.age_reference_date,
        adult_age: u32::try_from(row.adult_age).map_err(StorageError::corrupt)?,
        window: CollectionWindow::new(row.window_opens, row.window_closes)
            .map_err(StorageError::corrupt)?,
        late_payment_allowed: row.late_payment_allowed,
        cover_rules: match &row.cover_rules {
            None => CoverRules::default(),
            Some(json) => serde_json::from_str(json).map_err(StorageError::corrupt)?,
        },
    })
    .map_err(StorageError::corrupt)
}

pub fn region_from_row(code: &str, name: &str) -> Result<PoolingRegion, StorageError> {
    let code = RegionCode::parse(code).map_err(StorageError::corrupt)?;
    PoolingRegion::new(code, name).map_err(StorageError::corrupt)
}

pub fn day_kind_code(kind: DayKind) -> &'static str {
    match kind {
        DayKind::Holiday => "holiday",
        DayKind::Working => "working",
    }
}

pub fn day_kind_of(code: &str) -> Result<DayKind, StorageError> {
    match code {
        "holiday" => Ok(DayKind::Holiday),
        "working" => Ok(DayKind::Working),
        other => Err(StorageError::corrupt(format!("day kind {other}"))),
    }
}

/// Builds the working calendar from `(day, kind)` rows of any number of years and the years that
/// have a calendar (`calendar_years`; a year with days is one too).
pub fn calendar_from_rows(
    rows: impl IntoIterator<Item = (NaiveDate, String)>,
    known_years: impl IntoIterator<Item = i32>,
) -> Result<WorkingCalendar, StorageError> {
    let mut per_year: BTreeMap<i32, Vec<(NaiveDate, DayKind)>> = known_years
        .into_iter()
        .map(|year| (year, Vec::new()))
        .collect();
    for (day, kind) in rows {
        let kind = day_kind_of(&kind)?;
        per_year
            .entry(chrono::Datelike::year(&day))
            .or_default()
            .push((day, kind));
    }
    let years = per_year
        .into_iter()
        .map(|(year, days)| CalendarYear::new(year, days).map_err(StorageError::corrupt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WorkingCalendar::new(years))
}
