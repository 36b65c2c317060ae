//! The insured number (参保编号, issue 17) on every backend: each person gets one in their region
//! at first enrolment, kept when their record changes and across re-assessments; channels get it
//! in searches and may search by it; receipts print it; the console shows it and finds people by
//! it; batches enrolling at once never share one; and a database of the previous version numbers
//! the persons it holds when it is upgraded.

use std::collections::HashSet;

use chrono::NaiveDate;
use reqwest::StatusCode;
use yibao_channel_client::client::ClientError;
use yibao_channel_client::types::{PaymentResult, ReportPaymentRequest, SearchRequest};
use yibao_domain::{FeeYear, IdNumber, InsuredNumber, RegionCode};
use yibao_tests::console::ConsoleSession;
use yibao_tests::{
    china_time, haikou_2027, hainan_at, make_id, on_each_test_db, DbHandle, TestServer, ADMIN,
};

const SECRET: &str = "hainan-secret-0123456789";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn haikou() -> RegionCode {
    RegionCode::parse("460100").unwrap()
}

fn roster(ids: &[String], phone_base: u32) -> String {
    let mut csv = "姓名,身份证号码,参保地区,联系电话\n".to_owned();
    for (i, id) in ids.iter().enumerate() {
        csv.push_str(&format!(
            "王{},{id},460100,1990000{}\n",
            ["一", "二", "三", "四", "五"][i % 5],
            phone_base + i as u32
        ));
    }
    csv
}

async fn import(db: &DbHandle, csv: &str, day: NaiveDate) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let r = import_file(db, &path, day).await;
    assert!(r.rejections.is_empty(), "{:?}", r.rejections);
}

async fn number_of(db: &DbHandle, id: &str) -> InsuredNumber {
    db.storage
        .insured_number(haikou(), &IdNumber::try_from(id.to_owned()).unwrap())
        .await
        .unwrap()
        .expect("an insured number")
}

fn api_code(err: ClientError) -> (u16, String) {
    match err {
        ClientError::Api { status, code, .. } => (status, code),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn every_person_gets_a_number_kept_searched_by_and_printed() {
    on_each_test_db(|db| async move {
        let ids: Vec<String> = (0..5)
            .map(|i| make_id("460105", "1981-04-01", 501 + i))
            .collect();
        haikou_2027(&db, &roster(&ids, 5000), SECRET).await;
        let mut numbers = Vec::new();
        for id in &ids {
            let n = number_of(&db, id).await;
            assert_eq!(n.region(), haikou(), "{n}");
            assert_eq!(InsuredNumber::parse(n.as_str()).unwrap(), n);
            numbers.push(n);
        }
        assert_eq!(
            numbers.iter().collect::<HashSet<_>>().len(),
            5,
            "{numbers:?}"
        );

        // The record changes (new phones) and the year is assessed again: the numbers stay.
        import(&db, &roster(&ids, 6000), d(2026, 11, 5)).await;
        yibao_server::services::assessment::assess_region(
            db.storage.as_ref(),
            haikou(),
            FeeYear::new(2027).unwrap(),
            "test",
            d(2026, 11, 5),
            &|_| {},
        )
        .await
        .unwrap();
        for (id, n) in ids.iter().zip(&numbers) {
            assert_eq!(number_of(&db, id).await, *n, "{id}");
        }

        // A channel gets it with the search, and finds the same payables by it.
        let when = china_time(d(2026, 11, 10), 10);
        let (_server, client) = hainan_at(&db, when, SECRET).await;
        let by_id = client
            .search(&SearchRequest {
                id_number: ids[0].clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            by_id.insured.insured_number.as_deref(),
            Some(numbers[0].as_str())
        );
        let by_number = client
            .search(&SearchRequest {
                insured_number: Some(numbers[0].as_str().to_lowercase()),
                name: Some("王一".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            by_number.insured.id_number_masked,
            by_id.insured.id_number_masked
        );
        let payable_ids = |r: &yibao_channel_client::types::SearchResponse| {
            r.payables
                .iter()
                .map(|p| p.payable_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(payable_ids(&by_number), payable_ids(&by_id));

        // Refusals: the wrong name, a mistyped digit, neither or both, another region's number,
        // a number nobody holds.
        let refused = |request: SearchRequest| {
            let client = &client;
            async move { api_code(client.search(&request).await.unwrap_err()) }
        };
        assert_eq!(
            refused(SearchRequest {
                insured_number: Some(numbers[0].to_string()),
                name: Some("王二".into()),
                ..Default::default()
            })
            .await,
            (404, "NOT_FOUND".into())
        );
        let mut typo = numbers[0].to_string().into_bytes();
        typo[10] = if typo[10] == b'9' { b'0' } else { typo[10] + 1 };
        let (status, code) = refused(SearchRequest {
            insured_number: Some(String::from_utf8(typo).unwrap()),
            ..Default::default()
        })
        .await;
        assert_eq!((status, code.as_str()), (422, "INVALID_INSURED_NUMBER"));
        assert_eq!(
            refused(SearchRequest::default()).await,
            (400, "INVALID_REQUEST".into())
        );
        assert_eq!(
            refused(SearchRequest {
                id_number: ids[0].clone(),
                insured_number: Some(numbers[0].to_string()),
                ..Default::default()
            })
            .await,
            (400, "INVALID_REQUEST".into())
        );
        let nanjing = InsuredNumber::issue(RegionCode::parse("320600").unwrap(), 1).unwrap();
        assert_eq!(
            refused(SearchRequest {
                insured_number: Some(nanjing.to_string()),
                ..Default::default()
            })
            .await
            .1,
            "REGION_NOT_ALLOWED"
        );
        let nobody = InsuredNumber::issue(haikou(), 999_999_999).unwrap();
        assert_eq!(
            refused(SearchRequest {
                insured_number: Some(nobody.to_string()),
                ..Default::default()
            })
            .await,
            (404, "NOT_FOUND".into())
        );

        // The receipt carries it.
        let p = &by_id.payables[0];
        let paid = client
            .report_payment(&ReportPaymentRequest {
                channel_txn_id: "T-INSURED-1".into(),
                order_no: None,
                payable_ids: Some(vec![p.payable_id.clone()]),
                amount: p.amount,
                paid_at: when.into(),
            })
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        let r = &paid.receipts[0];
        let receipt = client
            .receipt_json(&r.receipt_code, &r.receipt_number, &r.check_code)
            .await
            .unwrap();
        assert_eq!(
            receipt.extra.get("insured_number").and_then(|v| v.as_str()),
            Some(numbers[0].as_str())
        );
    })
    .await;
}

#[tokio::test]
async fn the_console_shows_the_number_and_finds_people_by_it() {
    on_each_test_db(|db| async move {
        let ids: Vec<String> = (0..2)
            .map(|i| make_id("460105", "1982-05-01", 601 + i))
            .collect();
        haikou_2027(&db, &roster(&ids, 7000), SECRET).await;
        yibao_tests::create_admin(db.storage.as_ref()).await;
        let number = number_of(&db, &ids[1]).await;
        let server = TestServer::start(
            db.storage.clone(),
            yibao_server::Clock::fixed(china_time(d(2026, 11, 10), 10)),
            yibao_server::ServerSettings::default(),
        )
        .await;
        let admin = ConsoleSession::sign_in(&server, ADMIN.0, ADMIN.1).await;
        let found = admin
            .get(&format!("/console/persons?region=460100&q={number}"))
            .await;
        assert_eq!(found.status, StatusCode::OK);
        found.expect_text("查看档案");
        let record = found.link_starting("/console/persons/460100/r.").unwrap();
        let record = admin.get(record.trim_end_matches("/reveal")).await;
        assert_eq!(record.status, StatusCode::OK, "{}", record.body);
        record.expect_text(&format!(
            "参保编号 <span class=\"mono\" id=\"insured-number\">{number}</span>"
        ));
        record.expect_text(&ids[1]);

        // A mistyped number is answered beside the search box, naming the mistake.
        let mut typo = number.to_string().into_bytes();
        typo[12] = if typo[12] == b'9' { b'0' } else { typo[12] + 1 };
        let typo = String::from_utf8(typo).unwrap();
        let refused = admin
            .get(&format!("/console/persons?region=460100&q={typo}"))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        refused
            .expect_text("id=\"q-error\"")
            .expect_text("校验码不对");
        // Another region's number says which region it belongs to.
        let other = InsuredNumber::issue(RegionCode::parse("320600").unwrap(), 3).unwrap();
        let elsewhere = admin
            .get(&format!("/console/persons?region=460100&q={other}"))
            .await;
        assert_eq!(elsewhere.status, StatusCode::UNPROCESSABLE_ENTITY);
        elsewhere.expect_text("是统筹区 320600 的编号");
    })
    .await;
}

/// Four roster imports of one region at once: every person gets a number of their own (the
/// region's counter is taken first in each batch's transaction, so they wait for each other
/// there and never deadlock), and the counter stands at the numbers issued.
#[tokio::test]
async fn imports_at_once_in_one_region_never_share_a_number() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let batches: Vec<Vec<String>> = (0..4u32)
            .map(|b| {
                (0..30u32)
                    .map(|i| make_id("460105", "1983-06-01", 100 + b * 30 + i))
                    .collect()
            })
            .collect();
        let imports: Vec<_> = batches
            .iter()
            .map(|ids| {
                let db = db.clone();
                let csv = roster(ids, 3000);
                tokio::spawn(async move { import(&db, &csv, d(2026, 11, 2)).await })
            })
            .collect();
        for i in imports {
            i.await.unwrap();
        }
        let mut seen = HashSet::new();
        for id in batches.iter().flatten() {
            assert!(
                seen.insert(number_of(&db, id).await),
                "{id} shares a number"
            );
        }
        assert_eq!(seen.len(), 120);
        let highest = seen.iter().map(InsuredNumber::serial).max().unwrap();
        assert!(highest >= 120, "{highest}");
    })
    .await;
}

/// A roster import stores several batches at once where the backend's writers run concurrently,
/// and a batch of 64 new persons or more takes its insured numbers in a transaction of its own
/// (`NUMBERS_APART_FROM`). An import of three batches beside another of two still gives every
/// person a number of their own, none skipped when nothing failed, and its report counts and
/// lists the refused rows in file order, whichever batch was stored first.
#[tokio::test]
async fn imports_storing_batches_at_once_never_share_a_number() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        // The region's last number before the imports.
        let before = make_id("460105", "1983-06-01", 999);
        import(
            &db,
            &roster(std::slice::from_ref(&before), 4000),
            d(2026, 11, 2),
        )
        .await;
        let before = number_of(&db, &before).await.serial();
        let first: Vec<String> = (0..2300u32)
            .map(|i| make_id("460105", &format!("1984-07-{:02}", 10 + i / 1000), i % 1000))
            .collect();
        let second: Vec<String> = (0..1500u32)
            .map(|i| make_id("460105", &format!("1985-08-{:02}", 10 + i / 1000), i % 1000))
            .collect();
        // The first file: rows 3 and 2203 are refused when stored (employee insured, in the
        // first and third batch), row 1503 when read (a duplicate ID number, second batch).
        let mut csv = "姓名,身份证号码,参保地区,联系电话,职工医保\n".to_owned();
        for (i, id) in first.iter().enumerate() {
            let employee = if i == 1 || i == 2200 { "是" } else { "否" };
            csv.push_str(&format!(
                "王小明,{id},460100,13{:09},{employee}\n",
                3_000_000 + i
            ));
            if i == 1500 {
                csv.push_str(&format!("王小明,{},460100,13900000000,否\n", first[7]));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        std::fs::write(&path, csv).unwrap();
        let other = {
            let db = db.clone();
            let csv = roster(&second, 1000);
            tokio::spawn(async move {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("r.csv");
                std::fs::write(&path, csv).unwrap();
                import_file(&db, &path, d(2026, 11, 2)).await
            })
        };
        let report = import_file(&db, &path, d(2026, 11, 2)).await;
        let other = other.await.unwrap();
        assert!(other.rejections.is_empty(), "{:?}", other.rejections);
        assert_eq!(other.summary.enrolled, 1500);
        assert_eq!(report.summary.rows_read, 2301);
        assert_eq!(report.summary.enrolled, 2298);
        assert_eq!(report.summary.rejected, 3);
        let refused: Vec<(usize, &str)> = report
            .rejections
            .iter()
            .map(|r| (r.row, r.code.as_str()))
            .collect();
        assert_eq!(
            refused,
            [
                (3, "EMPLOYEE_INSURED"),
                (1503, "DUPLICATE_ID_NUMBER"),
                (2203, "EMPLOYEE_INSURED")
            ]
        );

        // Every person of both files has a number (the refused too: they are on record).
        let mut serials = HashSet::new();
        for id in first.iter().chain(&second) {
            let number = number_of(&db, id).await;
            assert!(serials.insert(number.serial()), "{id} shares a number");
        }
        assert_eq!(serials.len(), 3800);
        // Nothing failed, so nothing was skipped: the numbers run on from the region's last
        // without a gap.
        let lowest = *serials.iter().min().unwrap();
        let highest = *serials.iter().max().unwrap();
        assert_eq!((lowest, highest), (before + 1, before + 3800));
    })
    .await;
}

/// Two imports of the same new people at once (two clerks with one file): both finish, and each
/// person is stored once with one number. Where the writers run concurrently, the import that
/// loses the race for a person's key (persons, or the person directory) has its batch refused,
/// nothing written, tries it again and finds them stored. On a Citus cluster too, whose
/// coordinator reports a node's duplicate key during a COPY with the code of an internal error
/// (XX000): the second import failed with an internal error before the storage told it apart.
#[tokio::test]
async fn two_imports_of_the_same_new_people_at_once_both_finish() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let ids: Vec<String> = (0..1500u32)
            .map(|i| make_id("460105", &format!("1986-09-{:02}", 10 + i / 1000), i % 1000))
            .collect();
        let csv = roster(&ids, 5000);
        let again = {
            let (db, csv) = (db.clone(), csv.clone());
            tokio::spawn(async move { import(&db, &csv, d(2026, 11, 2)).await })
        };
        import(&db, &csv, d(2026, 11, 2)).await;
        again.await.unwrap();
        let mut serials = HashSet::new();
        for id in &ids {
            let number = number_of(&db, id).await;
            assert!(serials.insert(number.serial()), "{id} shares a number");
        }
        assert_eq!(serials.len(), 1500);
    })
    .await;
}

async fn import_file(
    db: &DbHandle,
    path: &std::path::Path,
    day: NaiveDate,
) -> yibao_server::services::roster_import::ImportReport {
    yibao_server::services::roster_import::import_roster(
        db.storage.as_ref(),
        path,
        "r.csv",
        &yibao_server::services::roster_import::ImportScope::unrestricted("test"),
        day,
        Some(FeeYear::new(2027).unwrap()),
        yibao_roster_file::Limits::default(),
        &|_| {},
    )
    .await
    .unwrap()
}

/// A database of the previous version (migrations up to 0042; on a Citus cluster, one placed at
/// 0012) holding persons in two regions: upgraded in place, each person is numbered in their
/// region in the order of their ID numbers, and the next person enrolled continues from there.
#[tokio::test]
async fn a_database_of_the_previous_version_numbers_its_persons() {
    async fn check(pool_exec: impl std::future::Future<Output = DbHandle>) {
        let db = pool_exec.await;
        let hk: Vec<String> = (0..3)
            .map(|i| make_id("460105", "1970-01-01", 11 + i))
            .collect();
        let mut sorted = hk.clone();
        sorted.sort();
        for (serial, id) in sorted.iter().enumerate() {
            let n = number_of(&db, id).await;
            assert_eq!(n.serial(), serial as u64 + 1, "{id}");
        }
        let nt = make_id("320602", "1970-01-01", 21);
        let n = db
            .storage
            .insured_number(
                RegionCode::parse("320600").unwrap(),
                &IdNumber::try_from(nt).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((n.region().as_str(), n.serial()), ("320600", 1));
        // The next one enrolled in 海口 (once it has a fee policy) gets serial 4.
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let next = make_id("460105", "1970-01-01", 99);
        let csv = format!("姓名,身份证号码,参保地区\n新人,{next},460100\n");
        import(&db, &csv, d(2026, 11, 2)).await;
        assert_eq!(number_of(&db, &next).await.serial(), 4);
    }
    const OLD_ROWS: &str = "INSERT INTO pooling_regions (region_code, name) VALUES ('460100', '海口市'), ('320600', '南通市');
         INSERT INTO persons (region_code, id_number, name, household, employee_insured, updated_by) VALUES
           ('460100', '{a}', '张一', 'local_registration', false, 't'),
           ('460100', '{b}', '张二', 'local_registration', false, 't'),
           ('460100', '{c}', '张三', 'local_registration', false, 't'),
           ('320600', '{n}', '李四', 'local_registration', false, 't');";
    let rows = || {
        let hk: Vec<String> = (0..3)
            .map(|i| make_id("460105", "1970-01-01", 11 + i))
            .collect();
        OLD_ROWS
            .replace("{a}", &hk[2])
            .replace("{b}", &hk[0])
            .replace("{c}", &hk[1])
            .replace("{n}", &make_id("320602", "1970-01-01", 21))
    };

    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        use std::str::FromStr as _;
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        previous(yibao_storage_sqlite::SqliteStorage::migrator())
            .run(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(&rows()).execute(&pool).await.unwrap();
        pool.close().await;
    }
    check(async {
        let storage = yibao_storage_sqlite::SqliteStorage::connect(&url)
            .await
            .unwrap();
        DbHandle {
            storage: std::sync::Arc::new(storage.clone()),
            backend: yibao_storage::Backend::Sqlite,
            sqlite: Some(storage),
            postgres: None,
            url: url.clone(),
        }
    })
    .await;

    // A Citus cluster, where the run is on one: the tables placed on it at 0012 with rows on
    // their shards, then every later migration applied there in place (command by command:
    // Citus refuses a text of several DDL commands, as sqlx would send it).
    if yibao_tests::on_citus() {
        let (url, admin_urls, database) = yibao_tests::citus_database().await;
        let old = yibao_storage_postgres::PostgresStorage::connect_migrated_to(&url, 12)
            .await
            .unwrap();
        sqlx::raw_sql(&rows()).execute(old.pool()).await.unwrap();
        old.pool().close().await;
        let storage = yibao_storage_postgres::PostgresStorage::connect(&url)
            .await
            .unwrap();
        // The new counter table is placed on the cluster like the region's other tables.
        let method: String = sqlx::query_scalar(
            "SELECT partmethod::text FROM pg_dist_partition \
             WHERE logicalrelid = 'insured_number_counters'::regclass",
        )
        .fetch_one(storage.pool())
        .await
        .unwrap();
        assert_eq!(method, "h");
        let db = yibao_tests::citus_test_db(storage, url, admin_urls, database);
        let handle = db.db.clone();
        check(async { handle }).await;
        db.cleanup().await;
        return;
    }

    // PostgreSQL, where the run has one.
    let Some(admin_url) = std::env::var("YIBAO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return;
    };
    if !matches!(
        std::env::var("YIBAO_TEST_BACKEND").as_deref(),
        Ok("postgres") | Err(_)
    ) {
        return;
    }
    use sqlx::Connection as _;
    let name = format!(
        "{}ins{}",
        yibao_tests::TEST_DATABASE_PREFIX,
        std::process::id()
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let pg_url = yibao_tests::with_database(&admin_url, &name);
    {
        let pool = sqlx::PgPool::connect(&pg_url).await.unwrap();
        previous(yibao_storage_postgres::PostgresStorage::migrator())
            .run(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(&rows()).execute(&pool).await.unwrap();
        pool.close().await;
    }
    check(async {
        let storage = yibao_storage_postgres::PostgresStorage::connect(&pg_url)
            .await
            .unwrap();
        DbHandle {
            storage: std::sync::Arc::new(storage.clone()),
            backend: yibao_storage::Backend::Postgres,
            sqlite: None,
            postgres: Some(storage),
            url: pg_url.clone(),
        }
    })
    .await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// sqlx's migrator with the migrations before the insured number only.
fn previous(all: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= 42)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}
