//! The family account (个人账户家庭共济, issue 19) on every backend: the agency's binding file, and
//! a `medical_account` channel paying a relative's contribution from an employee's personal
//! account with a binding in force, refused without one, beyond the balance, for an employee of
//! another province, and money reported without a checked order going back whole.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use yibao_channel_client::client::{ChannelClient, ClientError};
use yibao_channel_client::types::{
    FamilyAccount, OpenOrderRequest, PayableStatus, Payer, PaymentResult, ReportPaymentRequest,
    SearchRequest,
};
use yibao_domain::family_account::Relationship;
use yibao_domain::{IdNumber, RegionCode};
use yibao_tests::{haikou_2027, import_haikou_file, make_id, on_each_test_db, TestServer};

const SECRET: &str = "hainan-secret-0123456789";
const ACCOUNT_SECRET: &str = "account-secret-0123456789";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn haikou() -> RegionCode {
    RegionCode::parse("460100").unwrap()
}

fn api_code(err: &ClientError) -> (u16, String) {
    (
        err.status().unwrap_or(0),
        err.api_code().unwrap_or_default().to_owned(),
    )
}

/// The medical-insurance account system's channel, and a client of it, on 2026-11-10 (in the
/// window).
async fn account_channel(db: &yibao_tests::DbHandle) -> (TestServer, ChannelClient) {
    yibao::operator::channel_add(
        db.storage.as_ref(),
        None,
        "yibao-account",
        "medical_account",
        &["460100".to_owned()],
        1000,
        ACCOUNT_SECRET.to_owned(),
    )
    .await
    .unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 10, 2, 0, 0).unwrap();
    let server = TestServer::start(
        db.storage.clone(),
        yibao_server::Clock::fixed(at),
        yibao_server::ServerSettings::default(),
    )
    .await;
    let client = ChannelClient::builder(
        &server.base_url,
        "yibao-account".to_owned(),
        ACCOUNT_SECRET.as_bytes().to_vec(),
    )
    .clock_offset_secs(at.timestamp() - Utc::now().timestamp())
    .build()
    .unwrap();
    (server, client)
}

/// The one 2027 payable of a person and its amount.
async fn payable_of(client: &ChannelClient, id: &str) -> (String, i64) {
    let found = client
        .search(&SearchRequest {
            id_number: id.to_owned(),
            insured_number: None,
            name: None,
            region: None,
            fee_year: Some(2027),
            agent_code: None,
        })
        .await
        .unwrap();
    (
        found.payables[0].payable_id.clone(),
        found.payables[0].amount,
    )
}

fn order(
    no: &str,
    payable_ids: Vec<String>,
    amount: i64,
    employee: &str,
    balance: i64,
) -> OpenOrderRequest {
    OpenOrderRequest {
        channel_order_no: no.to_owned(),
        payable_ids,
        amount,
        payer: Payer::default(),
        family_account: Some(FamilyAccount {
            employee_id_number: employee.to_owned(),
            balance,
        }),
        health_card: None,
        agent_code: None,
    }
}

#[tokio::test]
async fn a_family_account_pays_a_bound_relative_and_is_refused_otherwise() {
    on_each_test_db(|db| async move {
        let mother = make_id("460105", "1955-01-01", 401);
        let nephew = make_id("460105", "2010-01-01", 403);
        let son = make_id("460105", "2012-05-01", 405);
        let brother = make_id("460105", "1983-01-01", 407);
        let csv = format!(
            "姓名,身份证号码,参保地区\n李母,{mother},460100\n李侄,{nephew},460100\n\
             李子,{son},460100\n李兄,{brother},460100\n"
        );
        haikou_2027(&db, &csv, SECRET).await;
        let employee = make_id("460105", "1980-03-01", 409);
        let other_province = make_id("320602", "1981-03-01", 411);

        // The agency's binding file: the mother bound with no end; the nephew refused (not a
        // close relative); the son's binding ended before the order; the brother bound to an
        // employee insured in 南通 (another province).
        let report = import_haikou_file(
            &db,
            &format!(
                "职工公民身份号码,职工参保地,亲属公民身份号码,关系,生效日期,终止日期\n\
                 {employee},460100,{mother},母亲,2026-01-01,\n\
                 {employee},460100,{nephew},侄子,2026-01-01,\n\
                 {employee},460100,{son},儿子,2025-01-01,2026-10-31\n\
                 {other_province},320600,{brother},哥哥,2026-01-01,\n\
                 {employee},460100,{mother},母亲,2026-01-01,\n"
            ),
        )
        .await;
        assert_eq!(
            (report.rows_read, report.written, report.rejected),
            (5, 3, 2)
        );
        let codes: Vec<&str> = report.rejections.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, vec!["INVALID_RELATIONSHIP", "DUPLICATE_ROW"]);
        assert!(report.rejection_file().contains("关系"));
        let stored = db
            .storage
            .family_bindings(
                haikou(),
                &IdNumber::parse(&employee, d(2026, 11, 2))
                    .unwrap()
                    .id_number,
                &[IdNumber::parse(&mother, d(2026, 11, 2)).unwrap().id_number],
            )
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].relationship, Relationship::Parent);

        let (_server, client) = account_channel(&db).await;
        let (mother_payable, amount) = payable_of(&client, &mother).await;
        let (nephew_payable, nephew_amount) = payable_of(&client, &nephew).await;
        let (son_payable, son_amount) = payable_of(&client, &son).await;
        let (brother_payable, brother_amount) = payable_of(&client, &brother).await;

        // Without a binding in force: never bound, bound until before today.
        for (no, payable, amount) in [
            ("F-NEPHEW", &nephew_payable, nephew_amount),
            ("F-SON", &son_payable, son_amount),
        ] {
            let refused = client
                .open_order(&order(
                    no,
                    vec![payable.clone()],
                    amount,
                    &employee,
                    100_000,
                ))
                .await
                .unwrap_err();
            assert_eq!(api_code(&refused), (422, "NOT_BOUND".into()));
            assert!(refused.to_string().contains("绑定"), "{refused}");
        }
        // All or nothing: the bound mother with the unbound nephew is refused whole.
        let refused = client
            .open_order(&order(
                "F-BOTH",
                vec![mother_payable.clone(), nephew_payable.clone()],
                amount + nephew_amount,
                &employee,
                1_000_000,
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&refused), (422, "NOT_BOUND".into()));
        // An employee insured in another province.
        let refused = client
            .open_order(&order(
                "F-BROTHER",
                vec![brother_payable.clone()],
                brother_amount,
                &other_province,
                100_000,
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&refused), (422, "OUTSIDE_PROVINCE".into()));
        // Beyond the balance, by one fen.
        let refused = client
            .open_order(&order(
                "F-POOR",
                vec![mother_payable.clone()],
                amount,
                &employee,
                amount - 1,
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&refused), (422, "INSUFFICIENT_BALANCE".into()));
        // A medical_account order must name the account.
        let mut unnamed = order("F-UNNAMED", vec![mother_payable.clone()], amount, "", 0);
        unnamed.family_account = None;
        let refused = client.open_order(&unnamed).await.unwrap_err();
        assert_eq!(api_code(&refused).1, "INVALID_REQUEST");
        // None of the refusals held a payable: each is still unpaid and unlocked.
        let found = client
            .search(&SearchRequest {
                id_number: mother.clone(),
                insured_number: None,
                name: None,
                region: None,
                fee_year: Some(2027),
                agent_code: None,
            })
            .await
            .unwrap();
        assert_eq!(found.payables[0].status, PayableStatus::Unpaid);

        // Money reported without a checked order goes back to the account whole.
        let unchecked = client
            .report_payment(&ReportPaymentRequest {
                channel_txn_id: "FT-UNCHECKED".into(),
                order_no: None,
                payable_ids: Some(vec![mother_payable.clone()]),
                amount,
                paid_at: DateTime::parse_from_rfc3339("2026-11-10T10:00:00+08:00").unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(unchecked.result, PaymentResult::RefundPending);
        let refund = unchecked.refund.expect("the whole amount is owed back");
        assert_eq!(
            (refund.amount, refund.reason.as_str()),
            (amount, "NOT_PAYABLE")
        );

        // With the binding in force and the balance enough: the order, then the payment.
        let opened = client
            .open_order(&order(
                "F-MOTHER",
                vec![mother_payable.clone()],
                amount,
                &employee,
                amount,
            ))
            .await
            .unwrap();
        let paid = client
            .report_payment(&ReportPaymentRequest {
                channel_txn_id: "FT-MOTHER".into(),
                order_no: Some(opened.order.order_no.clone()),
                payable_ids: None,
                amount,
                paid_at: DateTime::parse_from_rfc3339("2026-11-10T10:05:00+08:00").unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        assert_eq!(paid.receipts.len(), 1);
        // The same order again is the same order; with another balance, a conflict.
        let again = client
            .open_order(&order(
                "F-MOTHER",
                vec![mother_payable.clone()],
                amount,
                &employee,
                amount,
            ))
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.order.order_no, opened.order.order_no);
        let conflict = client
            .open_order(&order(
                "F-MOTHER",
                vec![mother_payable],
                amount,
                &employee,
                amount + 1,
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&conflict), (409, "IDEMPOTENCY_CONFLICT".into()));
    })
    .await;
}

#[tokio::test]
async fn only_a_medical_account_channel_may_name_an_account() {
    on_each_test_db(|db| async move {
        let mother = make_id("460105", "1955-01-01", 421);
        let csv = format!("姓名,身份证号码,参保地区\n李母,{mother},460100\n");
        haikou_2027(&db, &csv, SECRET).await;
        let at = Utc.with_ymd_and_hms(2026, 11, 10, 2, 0, 0).unwrap();
        let (_server, client) = yibao_tests::hainan_at(&db, at, SECRET).await;
        let (payable, amount) = payable_of(&client, &mother).await;
        let employee = make_id("460105", "1980-03-01", 409);
        let refused = client
            .open_order(&order("G-1", vec![payable], amount, &employee, amount))
            .await
            .unwrap_err();
        assert_eq!(api_code(&refused).1, "INVALID_REQUEST");
        assert!(refused.to_string().contains("family_account"), "{refused}");
    })
    .await;
}

/// A channel's every column: id, kind, sealed secret, rate, enabled, channel-only policy,
/// previous secret and until when.
type ChannelRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
);

/// A SQLite database as the version before the family account (migrations up to 0038) left it,
/// with channels that payments, orders and agreements reference: migration 0039 rebuilds the
/// channels table (SQLite cannot alter a CHECK) and keeps every row, every column and every
/// reference, and the rebuilt table still refuses what it refused.
#[tokio::test]
async fn a_sqlite_database_of_the_previous_version_keeps_its_channels() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr as _;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let all = yibao_storage_sqlite::SqliteStorage::migrator();
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= 38)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO pooling_regions (region_code, name) VALUES ('460100', '海口市');
         INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled,
             channel_only_policy, previous_secret_sealed, previous_secret_until)
             VALUES ('bank', 'bank_counter', 'plain:x', 100, 1, 'apply', 'plain:old', 1800000000),
                    ('wx', 'wechat', 'plain:y', 50, 0, 'refund', NULL, NULL);
         INSERT INTO channel_regions VALUES ('bank', '460100'), ('wx', '460100');
         INSERT INTO channel_keys (channel_id, key, touches) VALUES ('bank', 'txn:T1', 1);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before_rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT channel_id, kind, secret_sealed, rate_per_second, enabled, \
             channel_only_policy, previous_secret_sealed, previous_secret_until \
             FROM channels ORDER BY channel_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;

    let storage = yibao_storage_sqlite::SqliteStorage::connect(&url)
        .await
        .unwrap();
    let pool = storage.pool();
    let after_rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT channel_id, kind, secret_sealed, rate_per_second, enabled, \
             channel_only_policy, previous_secret_sealed, previous_secret_until \
             FROM channels ORDER BY channel_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(after_rows, before_rows);
    let regions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channel_regions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(regions, 2);
    let orphans: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(orphans.is_empty(), "{orphans:?}");
    // The new kind is accepted; an unknown kind, half a previous secret, and a region reference
    // to a channel that does not exist are refused as before.
    sqlx::query(
        "INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled) \
         VALUES ('acct', 'medical_account', 'plain:z', 10, 1)",
    )
    .execute(pool)
    .await
    .unwrap();
    for refused in [
        "INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled) \
         VALUES ('x', 'carrier_pigeon', 'plain:z', 10, 1)",
        "INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled, \
         previous_secret_sealed) VALUES ('y', 'atm', 'plain:z', 10, 1, 'plain:half')",
        "INSERT INTO channel_regions VALUES ('nobody', '460100')",
    ] {
        assert!(
            sqlx::query(refused).execute(pool).await.is_err(),
            "{refused}"
        );
    }
}
