//! The database looks after itself while serving: planner statistics after bulk changes, a
//! bounded SQLite write-ahead log, and (PostgreSQL with autovacuum off) stale tables analyzed.

use std::time::Duration;

use sqlx::Row;
use yibao_server::Clock;
use yibao_storage::Backend;
use yibao_tests::{fresh_sqlite, on_each_test_db};

/// A roster import and its assessment leave the planner statistics of the tables they filled
/// (before, a fresh county's database had none, and every search scanned a region's index).
#[tokio::test]
async fn a_roster_import_and_assessment_leave_planner_statistics() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let people = yibao::demo::load_people(db.storage.as_ref(), Clock::system().today())
            .await
            .unwrap();
        assert!(people.payables_created > 1000);
        match db.backend {
            Backend::Sqlite => {
                let pool = db.sqlite.as_ref().unwrap().pool();
                for table in ["persons", "enrolments", "payables"] {
                    let rows: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = $1")
                            .bind(table)
                            .fetch_one(pool)
                            .await
                            .unwrap();
                    assert!(rows > 0, "no statistics for {table}");
                }
            }
            Backend::Postgres => {
                let pool = db.postgres.as_ref().unwrap().pool();
                for table in ["persons", "enrolments", "payables"] {
                    let analyzed: bool = sqlx::query_scalar(
                        "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL \
                         FROM pg_stat_user_tables WHERE relname = $1",
                    )
                    .bind(table)
                    .fetch_one(pool)
                    .await
                    .unwrap();
                    assert!(analyzed, "{table} never analyzed");
                }
            }
        }
    })
    .await;
}

/// With autovacuum off nothing else would refresh a table's statistics: housekeeping analyzes the
/// tables changed much since their last analysis.
#[tokio::test]
async fn housekeeping_analyzes_changed_tables_when_autovacuum_is_off() {
    on_each_test_db(|db| async move {
        if db.backend != Backend::Postgres {
            db.storage.housekeeping().await.unwrap();
            return;
        }
        let pool = db.postgres.as_ref().unwrap().pool();
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(pool)
            .await
            .unwrap();
        for i in 0..500 {
            db.storage
                .remember_nonce("no-such-channel", &format!("nonce{i:012}"), 1_700_000_000)
                .await
                .unwrap();
        }
        // Table statistics reach the collector within about a second, each connection's in
        // its own time: the migrations' (sqlx rewrites each row of `_sqlx_migrations` once)
        // can be seen, and analyzed, a round before the nonces'.
        let mut analyzed = Vec::new();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            analyzed.extend(db.storage.housekeeping().await.unwrap().analyzed);
            if analyzed.iter().any(|t| t == "channel_nonces") {
                break;
            }
        }
        if autovacuum == "on" {
            assert!(analyzed.is_empty(), "autovacuum does it: {analyzed:?}");
        } else {
            assert!(
                analyzed.iter().any(|t| t == "channel_nonces"),
                "{analyzed:?}"
            );
            let row = sqlx::query(
                "SELECT last_analyze IS NOT NULL AS done FROM pg_stat_user_tables WHERE relname = 'channel_nonces'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            assert!(row.get::<bool, _>("done"));
        }
    })
    .await;
}

/// A write-ahead log past its bound is checkpointed and truncated, once the readers that held it
/// are done (SQLite cannot restart a WAL that a reader still uses).
#[tokio::test]
async fn the_sqlite_wal_is_truncated_past_its_bound() {
    let test_db = fresh_sqlite().await;
    let lite = test_db
        .db
        .sqlite
        .clone()
        .unwrap()
        .with_wal_bound(512 * 1024);
    let storage: std::sync::Arc<dyn yibao_storage::Storage> = std::sync::Arc::new(lite.clone());
    let wal = test_db.db.url.trim_start_matches("sqlite://").to_owned() + "-wal";
    // A reader keeps a snapshot open while a few MiB are written: no checkpoint can restart the log.
    let mut reader = lite.pool().begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_nonces")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    for i in 0..20_000 {
        storage
            .remember_nonce(
                "no-such-channel",
                &format!("nonce{i:012}xxxxxxxxxxxxxxxx"),
                1_700_000_000,
            )
            .await
            .unwrap();
    }
    let grown = std::fs::metadata(&wal).unwrap().len();
    assert!(grown > 512 * 1024, "WAL only {grown} bytes");
    reader.rollback().await.unwrap();
    let done = storage.housekeeping().await.unwrap();
    assert!(done.wal_truncated, "{done:?}");
    assert_eq!(done.wal_bytes, Some(0), "{done:?}");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    // Nothing was lost.
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_nonces")
        .fetch_one(lite.pool())
        .await
        .unwrap();
    assert_eq!(kept, 20_000);
    // The check of every tick alone (no statistics, no passive checkpoint) truncates it too, past
    // half its bound.
    for i in 0..2_000 {
        storage
            .remember_nonce(
                "no-such-channel",
                &format!("again{i:012}xxxxxxxxxxxxxxxx"),
                1_700_000_000,
            )
            .await
            .unwrap();
    }
    let grown = std::fs::metadata(&wal).unwrap().len();
    assert!(grown > 256 * 1024, "WAL only {grown} bytes");
    let done = storage.bound_wal().await.unwrap();
    assert!(done.wal_truncated, "{done:?}");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    drop(storage);
    drop(lite);
    test_db.cleanup().await;
}

/// The payment writer's batches leave the WAL's checkpoint to another connection: after a
/// committed batch, pages written only to the WAL reach the database file without anyone else
/// asking, and SQLite's own checkpoint (in whichever commit passes `AUTOCHECKPOINT_PAGES`) has
/// not done it first.
#[tokio::test]
async fn payment_batches_have_the_wal_checkpointed_beside_the_writer() {
    use yibao_storage::dialect::Dialect;
    let test_db = fresh_sqlite().await;
    let lite = test_db.db.sqlite.clone().unwrap();
    let storage: std::sync::Arc<dyn yibao_storage::Storage> = std::sync::Arc::new(lite.clone());
    let path = test_db.db.url.trim_start_matches("sqlite://").to_owned();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(lite.pool())
        .await
        .unwrap();
    let file_size = || std::fs::metadata(&path).unwrap().len();
    let before = file_size();
    // Some hundreds of pages, far below SQLite's automatic checkpoint: they stay in the WAL.
    for i in 0..400 {
        storage
            .remember_nonce(
                "no-such-channel",
                &format!("checkpoint{i:012}xxxxxxxxxxxxxxxx"),
                1_700_000_000,
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(file_size(), before, "SQLite checkpointed by itself");
    // A payment batch's commit: the pages reach the database file, on another connection.
    lite.payment_batch_committed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while file_size() == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint after a payment batch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_nonces")
        .fetch_one(lite.pool())
        .await
        .unwrap();
    assert_eq!(kept, 400);
    drop(storage);
    drop(lite);
    test_db.cleanup().await;
}

/// A PostgreSQL database in another encoding than UTF8 is refused before anything is written.
#[tokio::test]
async fn a_postgresql_database_not_in_utf8_is_refused() {
    let Ok(admin_url) = std::env::var("YIBAO_TEST_DATABASE_URL") else {
        return;
    };
    if std::env::var("YIBAO_TEST_BACKEND").is_ok_and(|b| b == "sqlite") {
        return;
    }
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for encoding in ["EUC_CN", "SQL_ASCII"] {
        let database = format!(
            "{}{}",
            yibao_tests::TEST_DATABASE_PREFIX,
            uuid::Uuid::new_v4().simple()
        );
        sqlx::query(&format!(
            "CREATE DATABASE \"{database}\" ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        ))
        .execute(&mut admin)
        .await
        .unwrap();
        let url = yibao_tests::with_database(&admin_url, &database);
        let refused = yibao_storage_postgres::PostgresStorage::connect(&url).await;
        let message = match refused {
            Ok(_) => panic!("a database in {encoding} was accepted"),
            Err(err) => err.to_string(),
        };
        assert!(message.contains(encoding), "{message}");
        assert!(message.contains("ENCODING 'UTF8'"), "{message}");
        // Nothing was migrated into it.
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, 0);
        conn.close().await.unwrap();
        sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// A suite run on several backends says which one failed, and drops the failed test's database
/// all the same (the test harness itself, issue 13).
#[tokio::test]
async fn a_failure_names_its_backend_and_its_database_is_dropped_all_the_same() {
    async fn fails_on(backend: &'static str, db: yibao_tests::TestDb) -> (String, String) {
        let url = db.db.url.clone();
        let run = tokio::spawn(async move {
            yibao_tests::run_on(backend, db, &|_db| async {
                panic!("deliberately");
            })
            .await;
        });
        let err = run.await.expect_err("the test panicked");
        let payload = err.into_panic();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        (message, url)
    }
    let (message, url) = fails_on("SQLite", yibao_tests::fresh_sqlite().await).await;
    assert_eq!(message, "on SQLite: deliberately");
    let path = url.trim_start_matches("sqlite://");
    let path = path.split('?').next().unwrap();
    assert!(!std::path::Path::new(path).exists(), "{path} removed");
    if std::env::var("YIBAO_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        let (message, url) = fails_on("PostgreSQL", yibao_tests::fresh_postgres().await).await;
        assert_eq!(message, "on PostgreSQL: deliberately");
        let database = url
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        let admin = std::env::var("YIBAO_TEST_DATABASE_URL").unwrap();
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&database)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "{database} dropped");
    }
}

/// Two processes opening the same new SQLite file at once (a demo and an operator's command, two
/// servers started together) both migrate it: SQLite has no migration lock as PostgreSQL's
/// advisory lock, so the one that loses a race retries on what the other applied instead of
/// failing with a duplicate column, and one that finds the file locked while another switches it
/// to WAL ("database is locked", seen once in four rounds under CI) opens it again. Twelve rounds:
/// before the second fix 60 rounds failed by round 9 here.
#[tokio::test]
async fn two_opening_one_new_sqlite_file_at_once_both_get_it_migrated() {
    for round in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("race.db").display());
        let opens: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(
                    async move { yibao_storage_sqlite::SqliteStorage::connect(&url).await },
                )
            })
            .collect();
        for open in opens {
            let opened = open.await.unwrap();
            assert!(opened.is_ok(), "round {round}: {:?}", opened.err());
        }
    }
}

/// A statistics refresh reaches every pooled SQLite connection, not only the one that ran
/// `ANALYZE` (issue 14): SQLite loads the statistics with the schema, and a connection that
/// had loaded them kept planning with them. Here a connection held aside through the refresh
/// plans with the new statistics afterwards: an index on a column of one value is no longer
/// taken over the index on a column of distinct values.
#[tokio::test]
async fn a_statistics_refresh_reaches_every_sqlite_connection() {
    let db = fresh_sqlite().await;
    let handle = db.db.clone();
    let sqlite = handle.sqlite.as_ref().unwrap();
    let mut aside = sqlite.pool().acquire().await.unwrap();
    for statement in [
        "CREATE TABLE plan_probe (a INTEGER, b INTEGER)",
        "CREATE INDEX plan_probe_a ON plan_probe (a)",
        "CREATE INDEX plan_probe_b ON plan_probe (b)",
        "INSERT INTO plan_probe VALUES (1, 1)",
        "ANALYZE plan_probe",
    ] {
        sqlx::query(statement).execute(&mut *aside).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO plan_probe WITH RECURSIVE n(v) AS (SELECT 2 UNION ALL SELECT v + 1 FROM n WHERE v < 20000) SELECT 1, v FROM n",
    )
        .execute(&mut *aside)
        .await
        .unwrap();
    let plan = |rows: Vec<(i64, i64, i64, String)>| {
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
    };
    // Not kept prepared: a kept `EXPLAIN` would show the plan it was prepared with (it reads
    // no table, so it never notices a changed schema; statements that read do).
    let probe = "EXPLAIN QUERY PLAN SELECT * FROM plan_probe WHERE a = 1 AND b = 5";
    let before = plan(
        sqlx::query_as(probe)
            .persistent(false)
            .fetch_all(&mut *aside)
            .await
            .unwrap(),
    );
    assert!(!before.contains("plan_probe_b"), "{before}");
    handle.storage.refresh_statistics().await.unwrap();
    // A read first: a connection notices a changed schema when it next reads the file.
    sqlx::query("SELECT count(*) FROM plan_probe")
        .execute(&mut *aside)
        .await
        .unwrap();
    let after = plan(
        sqlx::query_as(probe)
            .persistent(false)
            .fetch_all(&mut *aside)
            .await
            .unwrap(),
    );
    assert!(after.contains("plan_probe_b"), "{after}");
    drop(aside);
    db.cleanup().await;
}

/// A roster import refreshes the statistics of the tables it grows once its first 1000 rows
/// are written, not only at its end (issue 14): after a trial import of one person, PostgreSQL
/// otherwise planned each enrolment's foreign-key check with statistics of one row and read
/// the region's persons for every row of the import.
#[tokio::test]
async fn an_import_refreshes_statistics_while_its_tables_grow() {
    on_each_test_db(|db| async move {
        let Some(pg) = db.postgres.clone() else {
            return;
        };
        if pg.is_citus().await.unwrap() {
            return;
        }
        let roster = |people: std::ops::Range<u32>| {
            people.fold(
                "姓名,身份证号码,参保地区\n".to_owned(),
                |csv, i| {
                    let birth = format!("1980-01-{:02}", 1 + i / 500);
                    csv + &format!(
                        "吴一,{},460100\n",
                        yibao_tests::make_id("460105", &birth, i % 500)
                    )
                },
            )
        };
        yibao_tests::haikou_2027(&db, &roster(0..1), "statistics-secret-0123456789").await;
        let analyses = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'persons'",
            )
            .fetch_one(pg.pool())
            .await
            .unwrap()
        };
        // The counts reach other sessions within a second or so of each ANALYZE.
        let settled = || async {
            let mut last = analyses().await;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                let now = analyses().await;
                if now == last {
                    return now;
                }
                last = now;
            }
            panic!("persons' analyses still counting after 24 s");
        };
        let before = settled().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        // Four batches (of 2 000 on PostgreSQL): the first is counted, and the statistics
        // refreshed, once the third is under way (an import stores up to three at once), then
        // again at the end.
        let batch = u32::try_from(db.storage.backend().persons_per_batch()).expect("small");
        let rows = 3 * batch + batch / 2;
        std::fs::write(&path, roster(1..rows + 1)).unwrap();
        let report = yibao_server::services::roster_import::import_roster(
            db.storage.as_ref(),
            &path,
            "r.csv",
            &yibao_server::services::roster_import::ImportScope::unrestricted("test"),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            Some(yibao_domain::FeeYear::new(2027).unwrap()),
            yibao_roster_file::Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            report.summary.enrolled,
            u64::from(rows),
            "{:?}",
            report.rejections
        );
        // Once past the first 1000 rows, and once at the end.
        assert_eq!(settled().await - before, 2);
    })
    .await;
}

/// The group-commit writer refreshes the payment tables' statistics once it has stored its
/// first 1000 new payments, and only then (issue 14). PostgreSQL's connections keep generic
/// plans of the batch's foreign-key checks; taken with the statistics of empty tables after an
/// assessment, they scanned `payments` whole for every receipt, application and refund as it
/// grew (20 000 reports: 520 a second, against 4 600 with the refresh).
#[tokio::test]
async fn the_payment_writer_refreshes_the_payment_tables_statistics_once() {
    on_each_test_db(|db| async move {
        let Some(pg) = db.postgres.clone() else {
            return;
        };
        if pg.is_citus().await.unwrap() {
            return;
        }
        let roster = format!(
            "姓名,身份证号码,参保地区\n吴一,{},460100\n",
            yibao_tests::make_id("460105", "1980-01-01", 1)
        );
        yibao_tests::haikou_2027(&db, &roster, "statistics-secret-0123456789").await;
        db.storage.refresh_statistics().await.unwrap();
        let tables: Vec<String> = yibao_storage::GrowingTables::Payments
            .tables()
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        // Per table: analyses, and sequential scans of it (a foreign-key check's included).
        let counts = || async {
            sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT relname::text, analyze_count, seq_scan FROM pg_stat_user_tables \
                 WHERE relname = ANY($1) ORDER BY relname",
            )
            .bind(&tables)
            .fetch_all(pg.pool())
            .await
            .unwrap()
        };
        let analyses = |counts: &[(String, i64, i64)]| -> Vec<i64> {
            counts.iter().map(|(_, analyses, _)| *analyses).collect()
        };
        let payments_scans = |counts: &[(String, i64, i64)]| -> i64 {
            counts
                .iter()
                .find(|(table, _, _)| table == "payments")
                .map(|(_, _, scans)| *scans)
                .unwrap()
        };
        // An ANALYZE is counted at once; a connection's scans once it has been idle for 10 s at
        // most (PostgreSQL 15 flushes a session's counts at most once a second, and an idle
        // one's after 10 s).
        let settled = || async {
            tokio::time::sleep(Duration::from_secs(11)).await;
            counts().await
        };
        let before = counts().await;
        assert_eq!(before.len(), tables.len(), "{before:?}");
        let gathering = yibao_server::channel::gathering::Gathering::start(db.storage.clone(), 32)
            .await
            .unwrap();
        let batcher = gathering.payment_batcher.clone();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let report_all = |reports: std::ops::Range<u32>| {
            let batcher = batcher.clone();
            async move {
                let mut reporters = tokio::task::JoinSet::new();
                for i in reports {
                    let batcher = batcher.clone();
                    reporters.spawn(async move {
                        // Money naming no payable: held, and owed back whole (a refund, whose
                        // foreign key reads `payments`).
                        let payment = yibao_storage::collection::NewPayment {
                            nonce: None,
                            region: "460100".parse().unwrap(),
                            payment_no: format!("PMgrowth{i}"),
                            refund_no: format!("RFgrowth{i}"),
                            channel_id: "hainan".into(),
                            channel_txn_id: format!("T-growth-{i}"),
                            order_no: None,
                            lock_holder: None,
                            refund_all: None,
                            payable_ids: Vec::new(),
                            amount_fen: yibao_domain::Fen::new(100).unwrap(),
                            paid_at: "2026-11-02T10:15:00+08:00".into(),
                            paid_on: today,
                            fingerprint: format!("f{i}"),
                            refund_due: yibao_domain::DueDate {
                                date: today,
                                years_without_calendar: Vec::new(),
                            },
                            issued_on: today,
                            now: 0,
                            check_codes: Vec::new(),
                            event_ids: Vec::new(),
                            cover: Vec::new(),
                        };
                        batcher.report(payment).await.unwrap();
                    });
                }
                while let Some(done) = reporters.join_next().await {
                    done.unwrap();
                }
            }
        };
        report_all(0..1100).await;
        // The refresh runs beside the writer: wait for it, then long enough for any other.
        let mut refreshed = false;
        for _ in 0..60 {
            if analyses(&counts().await)
                .iter()
                .zip(analyses(&before))
                .all(|(now, then)| *now > then)
            {
                refreshed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            refreshed,
            "every payment table analyzed: {:?}",
            counts().await
        );
        let after = settled().await;
        let once: Vec<i64> = analyses(&before).iter().map(|n| n + 1).collect();
        assert_eq!(analyses(&after), once, "one refresh, not one a batch");
        // With the statistics refreshed, refunds' foreign-key checks find their payment by key.
        report_all(1100..1400).await;
        let last = settled().await;
        assert_eq!(analyses(&last), once);
        let scans = payments_scans(&last) - payments_scans(&after);
        assert!(scans < 30, "300 payments scanned `payments` {scans} times");
    })
    .await;
}
