//! Test support: a fresh database per test on each backend under test, and a server on port 0.
//!
//! Backends: SQLite always; PostgreSQL too when `YIBAO_TEST_DATABASE_URL` names a server (any
//! database on it: each test creates its own `yibao_test_…` database and drops it afterwards).
//! `YIBAO_TEST_BACKEND=sqlite` or `=postgres` restricts the run to one. Under `CI=true`, or when
//! `postgres` is asked for, a missing or unreachable PostgreSQL fails the test instead of skipping.
//! `YIBAO_TEST_BACKEND=citus` runs on a Citus cluster instead: `YIBAO_TEST_DATABASE_URL` names a
//! database on its coordinator whose workers are registered (`../shared/citus/cluster.sh start`
//! prints one); each test's database is made on the coordinator and on every worker, with the
//! extension, and the workers registered, so `yibao migrate` distributes it and the suites run on
//! shards (4 per table, to keep a test's set-up short).

use std::future::Future;
use std::sync::Arc;

use sqlx::Connection;
use tokio::net::TcpListener;
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_storage::{Backend, Storage};
use yibao_storage_postgres::PostgresStorage;
use yibao_storage_sqlite::SqliteStorage;

pub mod console;
pub mod pdf;
pub mod xlsx;

pub const TEST_DATABASE_PREFIX: &str = "yibao_test_";

/// A database made for one test; dropped (PostgreSQL) or deleted (SQLite) by [`TestDb::cleanup`].
pub struct TestDb {
    pub db: DbHandle,
    cleanup: Cleanup,
}

/// What a test reaches of its database; cheap to clone.
#[derive(Clone)]
pub struct DbHandle {
    pub storage: Arc<dyn Storage>,
    pub backend: Backend,
    /// The concrete backends, for tests that check constraints below the trait.
    pub sqlite: Option<SqliteStorage>,
    pub postgres: Option<PostgresStorage>,
    /// The URL of this test's own database.
    pub url: String,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// The database on each of these servers (one, or a Citus coordinator and its workers).
    Postgres {
        admin_urls: Vec<String>,
        database: String,
    },
}

impl TestDb {
    pub async fn cleanup(self) {
        let TestDb {
            db:
                DbHandle {
                    storage,
                    sqlite,
                    postgres,
                    ..
                },
            cleanup,
        } = self;
        drop(storage);
        if let Some(pg) = postgres {
            pg.pool().close().await;
        }
        if let Some(lite) = sqlite {
            lite.pool().close().await;
        }
        if let Cleanup::Postgres {
            admin_urls,
            database,
        } = cleanup
        {
            for admin_url in admin_urls {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!(
                        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                    ))
                    .execute(&mut admin)
                    .await;
                }
            }
        }
    }
}

/// Which backends to run on: (SQLite, PostgreSQL, Citus).
fn wanted() -> (bool, bool, bool) {
    let url = std::env::var("YIBAO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match std::env::var("YIBAO_TEST_BACKEND").as_deref() {
        Ok("sqlite") => (true, false, false),
        Ok("postgres") => (false, true, false),
        Ok("citus") => (false, false, true),
        _ => (true, url.is_some() || ci, false),
    }
}

/// Whether the tests run on a Citus cluster (`YIBAO_TEST_BACKEND=citus`).
pub fn on_citus() -> bool {
    wanted().2
}

fn postgres_admin_url() -> String {
    match std::env::var("YIBAO_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "PostgreSQL is required here (CI=true or YIBAO_TEST_BACKEND=postgres) but \
             YIBAO_TEST_DATABASE_URL is not set; scripts/test sets it"
        ),
    }
}

/// Replaces the host and port of a `postgres://` URL (keeping user, password, database, options).
pub fn with_host_port(url: &str, host: &str, port: i32) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let credentials = authority
        .rsplit_once('@')
        .map(|(c, _)| format!("{c}@"))
        .unwrap_or_default();
    format!("{scheme}://{credentials}{host}:{port}{tail}")
}

/// Replaces the database name of a `postgres://` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub async fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("yibao.db").display());
    let storage = SqliteStorage::connect(&url).await.expect("open SQLite");
    TestDb {
        db: DbHandle {
            storage: Arc::new(storage.clone()),
            backend: Backend::Sqlite,
            sqlite: Some(storage),
            postgres: None,
            url,
        },
        cleanup: Cleanup::Sqlite(dir),
    }
}

/// A SQLite database as an earlier version left it: the migrations up to `version`, then
/// `rows` (SQL) written into it, for an upgrade test to open with today's migrations. The
/// directory holds the file; keep it while the URL is used.
pub async fn sqlite_database_at(version: i64, rows: &str) -> (tempfile::TempDir, String) {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .expect("SQLite URL")
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open SQLite");
    let all = SqliteStorage::migrator();
    sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    }
    .run(&pool)
    .await
    .expect("earlier migrations");
    sqlx::raw_sql(rows)
        .execute(&pool)
        .await
        .expect("earlier rows");
    pool.close().await;
    (dir, url)
}

/// A new, empty `yibao_test_…` database on the server `YIBAO_TEST_DATABASE_URL` names: that URL,
/// the database's name and its URL.
async fn create_postgres_test_database() -> (String, String, String) {
    let admin_url = postgres_admin_url();
    let database = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at YIBAO_TEST_DATABASE_URL cannot be reached: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let url = with_database(&admin_url, &database);
    (admin_url, database, url)
}

pub async fn fresh_postgres() -> TestDb {
    let (admin_url, database, url) = create_postgres_test_database().await;
    let storage = PostgresStorage::connect(&url)
        .await
        .expect("open PostgreSQL");
    postgres_test_db(storage, url, vec![admin_url], database)
}

/// Runs `sql` below the storage trait, on the test database's own backend: for tests that check
/// what the schema itself refuses.
pub async fn execute_raw(db: &DbHandle, sql: &str) -> Result<(), sqlx::Error> {
    match (&db.sqlite, &db.postgres) {
        (Some(lite), _) => sqlx::query(sql).execute(lite.pool()).await.map(|_| ()),
        (_, Some(pg)) => sqlx::query(sql).execute(pg.pool()).await.map(|_| ()),
        (None, None) => Err(sqlx::Error::Configuration(
            "a test database has a backend".into(),
        )),
    }
}

/// A fresh PostgreSQL database as an earlier version left it: migrated up to `version` only,
/// and never started (its text columns keep the database's collation).
pub async fn fresh_postgres_migrated_to(version: i64) -> TestDb {
    let (admin_url, database, url) = create_postgres_test_database().await;
    let storage = PostgresStorage::connect_migrated_to(&url, version)
        .await
        .expect("migrate PostgreSQL to an earlier version");
    postgres_test_db(storage, url, vec![admin_url], database)
}

/// A [`TestDb`] over an opened PostgreSQL (or Citus) database that exists on these servers.
fn postgres_test_db(
    storage: PostgresStorage,
    url: String,
    admin_urls: Vec<String>,
    database: String,
) -> TestDb {
    TestDb {
        db: DbHandle {
            storage: Arc::new(storage.clone()),
            backend: Backend::Postgres,
            sqlite: None,
            postgres: Some(storage),
            url,
        },
        cleanup: Cleanup::Postgres {
            admin_urls,
            database,
        },
    }
}

/// The `postgres://` URL of a streaming replica of the server `YIBAO_TEST_DATABASE_URL` names
/// (`YIBAO_TEST_REPLICA_URL`, any database on it; scripts/replica starts both). `None` when unset:
/// the replica suite is then skipped.
pub fn replica_admin_url() -> Option<String> {
    std::env::var("YIBAO_TEST_REPLICA_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database on the primary, opened with its streaming replica for bulk reads (lag bound
/// `max_lag`) once the replica has it. Answers the database and the replica's URL of it.
pub async fn fresh_postgres_with_replica(
    replica_admin_url: &str,
    max_lag: std::time::Duration,
) -> (TestDb, String) {
    let (admin_url, database, url) = create_postgres_test_database().await;
    let replica_url = with_database(replica_admin_url, &database);
    let started = std::time::Instant::now();
    loop {
        match sqlx::PgConnection::connect(&replica_url).await {
            Ok(c) => {
                let _ = c.close().await;
                break;
            }
            Err(e) if started.elapsed() > std::time::Duration::from_secs(30) => {
                panic!("the replica did not get the test database in 30 s: {e}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let storage = PostgresStorage::connect_with_replica(
        &url,
        Some(yibao_storage_postgres::ReplicaSettings {
            url: &replica_url,
            max_lag,
        }),
    )
    .await
    .expect("open PostgreSQL with its replica");
    (
        postgres_test_db(storage, url, vec![admin_url], database),
        replica_url,
    )
}

/// Shards per distributed table in a test database (Citus' default is 32): enough to route, few
/// enough that a test's database is made in a second or two.
pub const CITUS_TEST_SHARDS: u32 = 4;

/// A fresh database on the Citus cluster whose coordinator `YIBAO_TEST_DATABASE_URL` names: made on
/// the coordinator and every worker with the citus extension, the workers registered, then opened
/// (and so migrated and distributed) like any PostgreSQL database.
pub async fn fresh_citus() -> TestDb {
    let (url, admin_urls, database) = citus_database().await;
    let storage = PostgresStorage::connect(&url)
        .await
        .expect("open the Citus test database");
    postgres_test_db(storage, url, admin_urls, database)
}

/// A new database on the Citus cluster, not migrated yet: its URL on the coordinator, the admin
/// URLs of every node (for [`citus_test_db`]'s clean-up) and its name.
pub async fn citus_database() -> (String, Vec<String>, String) {
    let admin_url = postgres_admin_url();
    let database = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("the Citus coordinator at YIBAO_TEST_DATABASE_URL cannot be reached: {e}")
        });
    let nodes: Vec<(String, i32, i32)> = sqlx::query_as(
        "SELECT nodename::text, nodeport, groupid FROM pg_dist_node WHERE noderole = 'primary' AND isactive ORDER BY groupid",
    )
    .fetch_all(&mut admin)
    .await
    .expect("YIBAO_TEST_DATABASE_URL names a database with the citus extension (cluster.sh start)");
    let _ = admin.close().await;
    let workers: Vec<&(String, i32, i32)> = nodes.iter().filter(|n| n.2 != 0).collect();
    assert!(
        !workers.is_empty(),
        "the Citus coordinator has no workers registered"
    );
    let mut admin_urls = vec![admin_url.clone()];
    admin_urls.extend(
        workers
            .iter()
            .map(|(host, port, _)| with_host_port(&admin_url, host, *port)),
    );
    for url in &admin_urls {
        let mut node = sqlx::PgConnection::connect(url)
            .await
            .expect("reach a Citus node");
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut node)
            .await
            .expect("create test database on a Citus node");
        let _ = node.close().await;
        let mut db = sqlx::PgConnection::connect(&with_database(url, &database))
            .await
            .expect("open the test database on a Citus node");
        sqlx::query("CREATE EXTENSION IF NOT EXISTS citus")
            .execute(&mut db)
            .await
            .expect("create the citus extension");
        let _ = db.close().await;
    }
    let url = with_database(&admin_url, &database);
    let mut coordinator = sqlx::PgConnection::connect(&url)
        .await
        .expect("open the coordinator's test database");
    if let Some((host, port, _)) = nodes.iter().find(|n| n.2 == 0) {
        sqlx::query("SELECT citus_set_coordinator_host($1, $2)")
            .bind(host)
            .bind(port)
            .execute(&mut coordinator)
            .await
            .expect("register the coordinator");
    }
    // Several tests make their databases at once, and a worker's connection is sometimes
    // refused while another test's `citus_add_node` holds it ("failure on connection marked as
    // essential"): a few tries a moment apart (`citus_add_node` of a node already added is a
    // no-op).
    for (host, port, _) in &workers {
        let mut tries = 0;
        loop {
            tries += 1;
            match sqlx::query("SELECT citus_add_node($1, $2)")
                .bind(host)
                .bind(port)
                .execute(&mut coordinator)
                .await
            {
                Ok(_) => break,
                Err(e) if tries < 5 => {
                    eprintln!("citus_add_node {host}:{port} failed (try {tries} of 5): {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * tries)).await;
                }
                Err(e) => panic!("register a worker: {e:?}"),
            }
        }
    }
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" SET citus.shard_count = {CITUS_TEST_SHARDS}"
    ))
    .execute(&mut coordinator)
    .await
    .expect("set the test shard count");
    let _ = coordinator.close().await;
    (url, admin_urls, database)
}

/// A [`TestDb`] over a database [`citus_database`] made, opened as `storage`: dropped on every
/// node at clean-up.
pub fn citus_test_db(
    storage: PostgresStorage,
    url: String,
    admin_urls: Vec<String>,
    database: String,
) -> TestDb {
    postgres_test_db(storage, url, admin_urls, database)
}

/// Runs `test` once per backend under test, each on a fresh database.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Storage>) -> Fut,
    Fut: Future<Output = ()>,
{
    on_each_test_db(|db| test(db.storage)).await;
}

/// Like [`on_each_backend`], handing the whole [`TestDb`].
pub async fn on_each_test_db<F, Fut>(test: F)
where
    F: Fn(DbHandle) -> Fut,
    Fut: Future<Output = ()>,
{
    let (sqlite, postgres, citus) = wanted();
    if sqlite {
        run_on("SQLite", fresh_sqlite().await, &test).await;
    }
    if postgres {
        run_on("PostgreSQL", fresh_postgres().await, &test).await;
    }
    if citus {
        run_on("Citus", fresh_citus().await, &test).await;
    }
}

/// Runs `test` on `db`, then drops the database whether the test passed or panicked; a failure
/// panics again with the backend's name in front ("on PostgreSQL: …"), so that a suite run on
/// several backends says which one failed.
pub async fn run_on<F, Fut>(backend: &str, db: TestDb, test: &F)
where
    F: Fn(DbHandle) -> Fut,
    Fut: Future<Output = ()>,
{
    let outcome = CatchUnwind(Box::pin(test(db.db.clone()))).await;
    db.cleanup().await;
    if let Err(payload) = outcome {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the test panicked".to_owned());
        panic!("on {backend}: {message}");
    }
}

/// A future whose panic is caught and answered as `Err` with the panic's payload, like
/// `std::panic::catch_unwind` for a closure.
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.get_mut().0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}

/// A server on `127.0.0.1:0` over `storage`; stops when the returned guard drops.
pub struct TestServer {
    pub base_url: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(storage: Arc<dyn Storage>, clock: Clock, settings: ServerSettings) -> Self {
        Self::start_with_state(AppState::new(storage, clock), settings).await
    }

    pub async fn start_with_state(state: AppState, settings: ServerSettings) -> Self {
        // As `yibao serve` does: the sandbox's test residents where there is a sandbox.
        yibao_server::services::sandbox::prepare_residents(&state)
            .await
            .expect("sandbox residents");
        // The product serves its staff console beside the API; so do the tests. Long work started
        // from a page (imports, assessments) is waited for, so that a page shows its result
        // however slow the machine; the progress pages have a test of their own.
        let console =
            yibao_console::router(yibao_console::CookiePolicy::default()).layer(axum::Extension(
                yibao_console::jobs::JobWait(std::time::Duration::from_secs(120)),
            ));
        Self::start_with_console(state, settings, console).await
    }

    /// With the console's router as given (e.g. with a smaller limit layered on it).
    pub async fn start_with_console(
        state: AppState,
        settings: ServerSettings,
        console: axum::Router<AppState>,
    ) -> Self {
        // And the citizen site at `/`, as the product does.
        Self::start_with_routes(state, settings, console.merge(yibao_citizen::router())).await
    }

    /// With exactly these routes beside the API (no citizen site unless they hold one).
    pub async fn start_with_routes(
        state: AppState,
        settings: ServerSettings,
        routes: axum::Router<AppState>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        let app = yibao_server::app_with(state, &settings, routes);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = yibao_server::serve(listener, app, async {
                let _ = rx.await;
            })
            .await;
        });
        TestServer {
            base_url: format!("http://{address}"),
            client: reqwest::Client::new(),
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A valid ID number from a 6-digit address code, a `YYYY-MM-DD` birth date and a sequence number.
pub fn make_id(address: &str, birth: &str, seq: u32) -> String {
    let body = format!("{address}{}{seq:03}", birth.replace('-', ""));
    let check = yibao_domain::id_number::check_character(&body).expect("17 digits");
    format!("{body}{check}")
}

/// The administrator the HTTP suites sign in as: user name and password.
pub const ADMIN: (&str, &str) = ("root", "admin-password-1");

/// Creates the administrator [`ADMIN`] (every region, every station).
pub async fn create_admin(storage: &dyn Storage) {
    yibao_server::services::staff::create_staff(
        storage,
        yibao_server::services::staff::NewStaff {
            temporary_password: false,
            username: ADMIN.0.into(),
            display_name: "管理员".into(),
            role: yibao_storage::Role::Admin,
            region: None,
            station: None,
            password: yibao_server::services::staff::Password::new(ADMIN.1.into()).unwrap(),
        },
        "test",
    )
    .await
    .unwrap();
}

/// Registers channel `id` of `kind` for 南通市 (320600) at 1000 requests a second.
pub async fn add_channel(storage: &dyn Storage, id: &str, kind: &str, secret: &str) {
    yibao::operator::channel_add(
        storage,
        None,
        id,
        kind,
        &["320600".to_owned()],
        1000,
        secret.to_owned(),
    )
    .await
    .unwrap();
}

/// The 2025 rules' suites: the demo's regions and policies, then the roster `csv` (a header line
/// and rows of 海口, 460100) enrolled for 2027 and assessed on 2026-11-02, and the channel
/// `hainan` (a government app) with `secret`.
pub async fn haikou_2027(db: &DbHandle, csv: &str, secret: &str) {
    use yibao_domain::{FeeYear, RegionCode};
    let storage = db.storage.clone();
    yibao::demo::load(storage.as_ref()).await.unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let year = FeeYear::new(2027).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let rows = csv.lines().count() as u64 - 1;
    let r = yibao_server::services::roster_import::import_roster(
        storage.as_ref(),
        &path,
        "r.csv",
        &yibao_server::services::roster_import::ImportScope::unrestricted("test"),
        day,
        Some(year),
        yibao_roster_file::Limits::default(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.summary.enrolled, rows, "{:?}", r.rejections);
    yibao_server::services::assessment::assess_region(
        storage.as_ref(),
        RegionCode::parse("460100").unwrap(),
        year,
        "test",
        day,
        &|_| {},
    )
    .await
    .unwrap();
    yibao::operator::channel_add(
        storage.as_ref(),
        None,
        "hainan",
        "gov_app",
        &["460100".to_owned()],
        1000,
        secret.to_owned(),
    )
    .await
    .unwrap();
}

/// A server at `at` (its clock fixed there) and the channel `hainan`'s client for it, signing
/// with `secret` at that time.
pub async fn hainan_at(
    db: &DbHandle,
    at: chrono::DateTime<chrono::Utc>,
    secret: &str,
) -> (TestServer, yibao_channel_client::client::ChannelClient) {
    channel_at(db, at, "hainan", secret).await
}

/// A server at `at` (its clock fixed there) and channel `channel_id`'s client for it, signing
/// with `secret` at that time.
pub async fn channel_at(
    db: &DbHandle,
    at: chrono::DateTime<chrono::Utc>,
    channel_id: &str,
    secret: &str,
) -> (TestServer, yibao_channel_client::client::ChannelClient) {
    let server = TestServer::start(
        db.storage.clone(),
        yibao_server::Clock::fixed(at),
        yibao_server::ServerSettings::default(),
    )
    .await;
    let client = yibao_channel_client::client::ChannelClient::builder(
        &server.base_url,
        channel_id.to_owned(),
        secret.as_bytes().to_vec(),
    )
    .clock_offset_secs(at.timestamp() - chrono::Utc::now().timestamp())
    .build()
    .unwrap();
    (server, client)
}

/// Imports `csv` into 海口 (460100) as `yibao cover import` does, as of 2026-11-02: a cover
/// history, special situation, claims or family-account binding file, told apart by its header.
pub async fn import_haikou_file(
    db: &DbHandle,
    csv: &str,
) -> yibao_server::services::cover::CoverHistoryImport {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("import.csv");
    std::fs::write(&file, csv).unwrap();
    yibao_server::services::cover::import_cover_history(
        db.storage.as_ref(),
        "test",
        yibao_domain::RegionCode::parse("460100").unwrap(),
        &file,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        yibao_roster_file::Limits::default(),
    )
    .await
    .unwrap()
}

/// `hour` o'clock on `day` in China Standard Time, as an instant.
pub fn china_time(day: chrono::NaiveDate, hour: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    yibao_server::clock::CHINA_STANDARD_TIME
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap_or_default())
        .single()
        .unwrap_or_default()
        .with_timezone(&chrono::Utc)
}

/// Stores 海口's 2027 policy with its 2025 rules changed by `change`.
pub async fn change_haikou_rules(
    db: &DbHandle,
    change: impl FnOnce(&mut yibao_domain::CoverRules),
) -> yibao_domain::FeePolicy {
    change_haikou_policy(db, |policy| change(&mut policy.cover_rules)).await
}

/// 海口's 2027 fee policy changed by `change` (its 2025 rules, its window, whether it accepts
/// late payment …) and stored.
pub async fn change_haikou_policy(
    db: &DbHandle,
    change: impl FnOnce(&mut yibao_domain::FeePolicyInput),
) -> yibao_domain::FeePolicy {
    change_fee_policy(db.storage.as_ref(), "460100", 2027, change).await
}

/// The stored fee policy of `region` for `fee_year` changed by `change` and stored again.
pub async fn change_fee_policy(
    storage: &dyn Storage,
    region: &str,
    fee_year: u16,
    change: impl FnOnce(&mut yibao_domain::FeePolicyInput),
) -> yibao_domain::FeePolicy {
    let year =
        yibao_domain::FeeYear::new(i64::from(fee_year)).expect("a fee year a test names is valid");
    let region = yibao_domain::RegionCode::parse(region).expect("a region a test names is valid");
    let old = storage
        .get_fee_policy(region, year)
        .await
        .expect("the test database answers")
        .expect("a policy a test changes is stored");
    let mut input = yibao_domain::FeePolicyInput {
        region: old.region(),
        fee_year: old.fee_year(),
        amounts: old.amounts().map(|(c, a)| (c, a.clone())).collect(),
        age_reference_date: old.age_reference_date(),
        adult_age: old.adult_age(),
        window: old.window(),
        late_payment_allowed: old.late_payment_allowed(),
        cover_rules: old.cover_rules().clone(),
    };
    change(&mut input);
    // Test support: a change the test makes must leave a valid policy, or the test is wrong.
    let policy = yibao_domain::FeePolicy::new(input).expect("the changed policy is valid");
    storage
        .put_fee_policy(&policy)
        .await
        .expect("the changed policy is stored");
    policy
}

/// The bank `bankad` (kind `auto_debit`) for 海口, and an agreement with it for each of `ids`
/// (each paying for themselves), signed at `clock`'s time.
pub async fn auto_debit_for(db: &DbHandle, clock: &Clock, ids: &[&str]) {
    yibao::operator::channel_add(
        db.storage.as_ref(),
        None,
        "bankad",
        "auto_debit",
        &["460100".to_owned()],
        100,
        "bankad-secret-0123".to_owned(),
    )
    .await
    .unwrap();
    for (i, id) in ids.iter().enumerate() {
        yibao_server::services::debit::sign_agreement(
            db.storage.as_ref(),
            clock,
            yibao_server::services::debit::AgreementInput {
                agreement_no: &format!("AG-T-{i}"),
                region: "460100",
                channel_id: "bankad",
                payer_id_number: id,
                payer_name: "吴一",
                account: "6222 0212 3456 7890 123",
                members: &[(*id).to_owned()],
            },
        )
        .await
        .unwrap();
    }
}
