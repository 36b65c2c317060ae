//! Test support: a fresh database per test on each backend under test, and a server on port 0.
//!
//! Backends: SQLite always; PostgreSQL too when `YIBAO_TEST_DATABASE_URL` names a server (any
//! database on it: each test creates its own `yibao_test_…` database and drops it afterwards).
//! `YIBAO_TEST_BACKEND=sqlite` or `=postgres` restricts the run to one. Under `CI=true`, or when
//! `postgres` is asked for, a missing or unreachable PostgreSQL fails the test instead of skipping.

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
    Postgres { admin_url: String, database: String },
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
            admin_url,
            database,
        } = cleanup
        {
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

fn wanted() -> (bool, bool) {
    let url = std::env::var("YIBAO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match std::env::var("YIBAO_TEST_BACKEND").as_deref() {
        Ok("sqlite") => (true, false),
        Ok("postgres") => (false, true),
        _ => (true, url.is_some() || ci),
    }
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

pub async fn fresh_postgres() -> TestDb {
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
    let storage = PostgresStorage::connect(&url)
        .await
        .expect("open PostgreSQL");
    TestDb {
        db: DbHandle {
            storage: Arc::new(storage.clone()),
            backend: Backend::Postgres,
            sqlite: None,
            postgres: Some(storage),
            url,
        },
        cleanup: Cleanup::Postgres {
            admin_url,
            database,
        },
    }
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
    let (sqlite, postgres) = wanted();
    if sqlite {
        let db = fresh_sqlite().await;
        test(db.db.clone()).await;
        db.cleanup().await;
    }
    if postgres {
        let db = fresh_postgres().await;
        test(db.db.clone()).await;
        db.cleanup().await;
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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        // The product serves its staff console beside the API; so do the tests.
        let console = yibao_console::router(yibao_console::CookiePolicy::default());
        let app = yibao_server::app_with(state, &settings, console);
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
