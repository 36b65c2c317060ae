//! The read replica suite (issue 15): a real PostgreSQL primary and a streaming replica made from
//! it with `pg_basebackup -R`, started by scripts/replica, which sets `YIBAO_TEST_DATABASE_URL`
//! (the primary) and `YIBAO_TEST_REPLICA_URL`. Without the latter the suite is skipped.
//!
//! Lag is made, not waited for: the replica's replay is paused (`pg_wal_replay_pause()`), so
//! what the replica answers is visibly older than the primary. While it is paused a payment is
//! reported; the channel's status call and search must answer it paid (they read the primary),
//! while a staff list still shows it unpaid (it reads the replica), except for a client that asks
//! for the primary or a browser that has just written. Pausing affects every database on the
//! replica, so the tests that pause hold one lock.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use sqlx::Connection;
use yibao_channel_client::client::ChannelClient;
use yibao_channel_client::types::{
    PayableStatus, PaymentResult, PaymentStatus, ReportPaymentRequest, SearchRequest,
};
use yibao_roster_file::Limits;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::roster_import::{import_roster, ImportScope};
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_storage::read_routing::on_primary;
use yibao_storage::Storage;
use yibao_tests::{
    create_admin, fresh_postgres_with_replica, make_id, replica_admin_url, TestServer, ADMIN,
};

/// The tests that pause the replica's replay run one at a time.
static REPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECRET: &str = "bank-secret-0123456789";
const UNPAID: &str = "/api/v1/regions/320600/fee-years/2021/standing?only_unpaid=true";

/// 2020-11-02 10:00 Beijing, inside 南通市's 2021 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap()
}

fn replica() -> Option<String> {
    let url = replica_admin_url();
    if url.is_none() {
        eprintln!("YIBAO_TEST_REPLICA_URL is not set: the replica suite is skipped (scripts/replica runs it)");
    }
    url
}

async fn replica_sql(replica_url: &str, statement: &str) {
    let mut c = sqlx::PgConnection::connect(replica_url).await.unwrap();
    sqlx::query(statement).execute(&mut c).await.unwrap();
    let _ = c.close().await;
}

/// Waits until the replica has replayed everything the primary had written (at most 30 s).
async fn caught_up(storage: &dyn Storage) {
    let started = std::time::Instant::now();
    loop {
        let (state, _) = storage.check_replica().await.unwrap().expect("a replica");
        if state.usable && state.lag == Some(Duration::ZERO) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica did not catch up in 30 s: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// For a test that pauses the replica's replay: the lock that makes it the only one, replay
/// running, and a fresh database read through the replica with this lag bound. `None` without a
/// replica.
async fn replay_to_pause(
    max_lag: Duration,
) -> Option<(
    tokio::sync::MutexGuard<'static, ()>,
    yibao_tests::TestDb,
    String,
)> {
    let replica_admin = replica()?;
    let lock = REPLAY.lock().await;
    replica_sql(&replica_admin, "SELECT pg_wal_replay_resume()").await;
    let (db, replica_url) = fresh_postgres_with_replica(&replica_admin, max_lag).await;
    Some((lock, db, replica_url))
}

/// 南通市 with four adults assessed for 2021, the channel `bank` and the administrator.
async fn seed(storage: &dyn Storage) -> Vec<String> {
    yibao::demo::load(storage).await.unwrap();
    let adults: Vec<String> = (0..4)
        .map(|i| make_id("320602", "1980-01-01", 300 + i))
        .collect();
    let mut csv = String::from(
        "姓名,身份证号码,参保地区,减免类型,减免证件名称,减免证件号码,减免证件有效期至\n",
    );
    for id in &adults {
        csv.push_str(&format!("张三丰,{id},320600,,,,\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let today = NaiveDate::from_ymd_opt(2020, 11, 2).unwrap();
    let imported = import_roster(
        storage,
        &path,
        "r.csv",
        &ImportScope::unrestricted("test"),
        today,
        None,
        Limits::default(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(imported.summary.enrolled, 4, "{:?}", imported.rejections);
    assess_region(
        storage,
        yibao_domain::RegionCode::parse("320600").unwrap(),
        yibao_domain::FeeYear::new(2021).unwrap(),
        "test",
        today,
        &|_| {},
    )
    .await
    .unwrap();
    yibao_tests::add_channel(storage, "bank", "bank_counter", SECRET).await;
    create_admin(storage).await;
    adults
}

/// The unpaid list through the staff API, with these extra request headers.
async fn unpaid_count(server: &TestServer, token: &str, headers: &[(&str, &str)]) -> usize {
    let mut request = server.client.get(server.url(UNPAID)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let rows: Value = response.json().await.unwrap();
    rows.as_array().expect("rows").len()
}

#[tokio::test]
async fn lists_read_the_replica_while_the_channel_and_a_writing_browser_read_the_primary() {
    // A bound far above the pause: the replica stays the one read, however stale.
    let Some((_one_at_a_time, db, replica_url)) = replay_to_pause(Duration::from_secs(600)).await
    else {
        return;
    };
    let storage = db.db.storage.clone();
    let adults = seed(storage.as_ref()).await;
    let server = TestServer::start_with_state(
        AppState::new(storage.clone(), Clock::fixed(instant())),
        ServerSettings::default(),
    )
    .await;
    let bank = ChannelClient::builder(
        &server.base_url,
        "bank".to_owned(),
        SECRET.as_bytes().to_vec(),
    )
    .clock_offset_secs(instant().timestamp() - Utc::now().timestamp())
    .build()
    .unwrap();
    let login = |cookie: Option<&'static str>| {
        let mut request = server
            .client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": ADMIN.0, "password": ADMIN.1}));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let token: Value = login(None).await.unwrap().json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    caught_up(storage.as_ref()).await;
    assert_eq!(unpaid_count(&server, &token, &[]).await, 4);
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "yibao_db_replica_configured 1",
        "yibao_db_replica_usable 1",
        "yibao_db_replica_lag_seconds 0.0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("yibao_db_replica_pool_connections{state=\"idle\"}"));

    // The replica stops replaying: from now on it answers as of this moment.
    replica_sql(&replica_url, "SELECT pg_wal_replay_pause()").await;
    let request = SearchRequest {
        id_number: adults[0].clone(),
        insured_number: None,
        name: Some("张三丰".into()),
        region: None,
        fee_year: None,
        agent_code: None,
    };
    let search = || bank.search(&request);
    let found = search().await.unwrap();
    let payable = &found.payables[0];
    let paid_at = instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap());
    let reported = bank
        .report_payment(&ReportPaymentRequest::for_payables(
            "R-1",
            vec![payable.payable_id.clone()],
            payable.amount,
            paid_at,
        ))
        .await
        .unwrap();
    assert_eq!(reported.result, PaymentResult::Paid);

    // The same channel's status call and search answer it paid at once.
    let status = bank.payment_status("R-1").await.unwrap();
    assert_eq!(status.status, PaymentStatus::Paid);
    assert_eq!(status.receipts.len(), 1);
    let again = search().await.unwrap();
    let now = again
        .payables
        .iter()
        .find(|p| p.payable_id == payable.payable_id)
        .expect("the payable");
    assert_eq!(now.status, PayableStatus::Paid, "{again:?}");

    // A staff list reads the paused replica: still four unpaid. That is the replica answering.
    assert_eq!(unpaid_count(&server, &token, &[]).await, 4);
    let region = yibao_domain::RegionCode::parse("320600").unwrap();
    let year = yibao_domain::FeeYear::new(2021).unwrap();
    let progress = |rows: Vec<yibao_storage::records::ProgressRow>| {
        rows.iter()
            .filter(|p| p.standing == "paid")
            .map(|p| p.persons)
            .sum::<i64>()
    };
    assert_eq!(
        progress(
            storage
                .collection_progress(Some(region), year, None)
                .await
                .unwrap()
        ),
        0
    );
    assert_eq!(
        progress(
            on_primary(storage.collection_progress(Some(region), year, None))
                .await
                .unwrap()
        ),
        1,
        "inside on_primary the dashboard reads the primary"
    );
    // An API client that asks for the primary gets it.
    assert_eq!(
        unpaid_count(&server, &token, &[("yibao-read", "primary")]).await,
        3
    );
    // A browser that writes (any request with cookies and a method that writes) is told to read
    // the primary for the lag bound and one check more, and then does.
    let written = login(Some("yibao_console_session=x")).await.unwrap();
    assert_eq!(written.status(), 200);
    let cookie = written
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("yibao_read_primary_until="))
        .expect("the read-your-writes cookie")
        .to_owned();
    assert!(
        cookie.contains("Max-Age=606") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(unpaid_count(&server, &token, &[("cookie", &pair)]).await, 3);
    // An expired cookie is a plain read again.
    assert_eq!(
        unpaid_count(&server, &token, &[("cookie", "yibao_read_primary_until=1")]).await,
        4
    );
    // A client without cookies (a channel, a script) is not given one.
    let plain = login(None).await.unwrap();
    assert!(plain.headers().get("set-cookie").is_none());

    // Replay resumes: the replica catches up and the list with it.
    replica_sql(&replica_url, "SELECT pg_wal_replay_resume()").await;
    caught_up(storage.as_ref()).await;
    assert_eq!(unpaid_count(&server, &token, &[]).await, 3);
    drop(server);
    db.cleanup().await;
}

#[tokio::test]
async fn a_replica_lagging_past_its_bound_is_not_read_until_it_catches_up() {
    let Some((_one_at_a_time, db, replica_url)) = replay_to_pause(Duration::from_secs(1)).await
    else {
        return;
    };
    let storage = db.db.storage.clone();
    yibao::demo::load(storage.as_ref()).await.unwrap();
    caught_up(storage.as_ref()).await;
    let entry = |target: &str| yibao_storage::AuditEntry {
        actor: "test".into(),
        action: "read.person".into(),
        region: Some("320600".into()),
        target: target.into(),
        detail: json!({}),
    };
    let targets = |storage: std::sync::Arc<dyn Storage>| async move {
        storage
            .list_audit(100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry.target)
            .collect::<Vec<_>>()
    };
    storage.append_audit(&entry("before")).await.unwrap();
    caught_up(storage.as_ref()).await;
    assert!(targets(storage.clone())
        .await
        .contains(&"before".to_owned()));

    replica_sql(&replica_url, "SELECT pg_wal_replay_pause()").await;
    storage.append_audit(&entry("during")).await.unwrap();
    // Until a check finds the lag, the replica is read: the entry is not there yet.
    assert!(!targets(storage.clone())
        .await
        .contains(&"during".to_owned()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (state, changed) = storage.check_replica().await.unwrap().unwrap();
    assert!(!state.usable && changed, "{state:?}");
    assert!(state.lag.unwrap() > Duration::from_secs(1), "{state:?}");
    assert_eq!(storage.replica_state(), Some(state));
    // Past its bound the replica is left alone: the list reads the primary.
    assert!(targets(storage.clone())
        .await
        .contains(&"during".to_owned()));

    replica_sql(&replica_url, "SELECT pg_wal_replay_resume()").await;
    caught_up(storage.as_ref()).await;
    let state = storage.replica_state().unwrap();
    assert!(
        state.usable && state.lag == Some(Duration::ZERO),
        "{state:?}"
    );
    assert!(targets(storage.clone())
        .await
        .contains(&"during".to_owned()));
    db.cleanup().await;
}

#[tokio::test]
async fn a_read_url_that_is_not_a_replica_of_this_database_is_refused_at_start() {
    let Some(replica_admin) = replica() else {
        return;
    };
    let (db, _) = fresh_postgres_with_replica(&replica_admin, Duration::from_secs(10)).await;
    let primary = db.db.url.clone();
    let refused = |replica: String| {
        let primary = primary.clone();
        async move {
            yibao_storage_postgres::PostgresStorage::connect_with_replica(
                &primary,
                Some(yibao_storage_postgres::ReplicaSettings {
                    url: &replica,
                    max_lag: Duration::from_secs(10),
                }),
            )
            .await
            .err()
            .expect("refused")
            .to_string()
        }
    };
    // The primary itself: it writes, it is no replica.
    let own = refused(primary.clone()).await;
    assert!(
        own.contains("read_database_url") && own.contains("可写的主库"),
        "{own}"
    );
    // The replica, but another database on it.
    let other = refused(replica_admin.clone()).await;
    assert!(other.contains("指向数据库 postgres"), "{other}");
    // Nothing listening there.
    let nowhere = refused(yibao_tests::with_host_port(&replica_admin, "127.0.0.1", 1)).await;
    assert!(
        nowhere.starts_with("只读副本：") || nowhere.contains("只读副本："),
        "{nowhere}"
    );
    assert!(nowhere.contains("连接被拒绝"), "{nowhere}");
    db.cleanup().await;
}
