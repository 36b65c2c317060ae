//! The sandbox for integrators (接入测试, issue 17) on every backend, through the reference client:
//! a channel created in test mode finds only the sandbox's test residents; the documented ID
//! numbers and amounts lead to every protocol path the integrator's guide lists; each path gone
//! through is recorded for the console; the sandbox's payments are never posted to the agency
//! and stay out of reports and statistics; a channel in production can never serve the sandbox.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use yibao_channel_client::client::{ChannelClient, ClientError};
use yibao_channel_client::types::{
    statement_csv, OpenOrderRequest, PaymentResult, RefundReason, RefundResultRequest,
    ReportPaymentRequest, SearchRequest, StatementEntryType, StatementLine,
};
use yibao_domain::sandbox::{
    fresh_id_number, FixedState, Scenario, FIXED_RESIDENTS, SANDBOX_REGION, TEST_AMOUNT_FEN,
    UNKNOWN_ID_NUMBER,
};
use yibao_tests::{channel_at, on_each_test_db, DbHandle};

const SECRET: &str = "sandbox-bank-secret-0123456789";

/// 2026-12-05, 10:00 in China.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap()
}

fn paid_at() -> DateTime<FixedOffset> {
    now().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

fn api_code(err: &ClientError) -> (u16, String) {
    (
        err.status().unwrap_or(0),
        err.api_code().unwrap_or_default().to_owned(),
    )
}

fn fixed(state: FixedState) -> &'static str {
    FIXED_RESIDENTS
        .iter()
        .find(|r| r.state == state)
        .unwrap()
        .id_number
}

/// Adds a channel in test mode (it serves the sandbox alone).
async fn add_test_channel(storage: &dyn yibao_storage::Storage, id: &str, kind: &str) {
    yibao::operator::channel_add_in_mode(
        storage,
        None,
        id,
        kind,
        &[],
        1000,
        SECRET.to_owned(),
        true,
    )
    .await
    .unwrap();
}

async fn test_channel(db: &DbHandle) -> (yibao_tests::TestServer, ChannelClient) {
    add_test_channel(db.storage.as_ref(), "bank-test", "mobile_banking").await;
    channel_at(db, now(), "bank-test", SECRET).await
}

/// The payable a search finds for `id` (the first).
async fn payable_of(client: &ChannelClient, id: &str) -> (String, i64) {
    let found = client
        .search(&SearchRequest {
            id_number: id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let p = &found.payables[0];
    (p.payable_id.clone(), p.amount)
}

fn order(no: &str, payable: &str, amount: i64) -> OpenOrderRequest {
    OpenOrderRequest {
        channel_order_no: no.to_owned(),
        payable_ids: vec![payable.to_owned()],
        amount,
        ..Default::default()
    }
}

fn payment(txn: &str, payable: &str, amount: i64) -> ReportPaymentRequest {
    ReportPaymentRequest {
        channel_txn_id: txn.to_owned(),
        order_no: None,
        payable_ids: Some(vec![payable.to_owned()]),
        amount,
        paid_at: paid_at(),
    }
}

#[tokio::test]
async fn every_scenario_of_the_guide_runs_through_the_reference_client() {
    on_each_test_db(|db| async move {
        let (server, client) = test_channel(&db).await;

        // 查询: a fresh test ID number is enrolled on the first search, owing 400.00 元.
        let fresh: Vec<String> = (0..4).map(|n| fresh_id_number(n).unwrap()).collect();
        let found = client
            .search(&SearchRequest {
                id_number: fresh[0].clone(),
                name: Some("张测试".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.payables.len(), 1);
        assert_eq!(found.payables[0].amount, TEST_AMOUNT_FEN);
        assert_eq!(found.payables[0].region, SANDBOX_REGION);
        let err = client
            .search(&SearchRequest {
                id_number: UNKNOWN_ID_NUMBER.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (404, "NOT_FOUND".into()));

        // 下单 and 取消订单.
        let (first, amount) = payable_of(&client, &fresh[0]).await;
        let opened = client
            .open_order(&order("O-1", &first, amount))
            .await
            .unwrap();
        client.cancel_order(&opened.order.order_no).await.unwrap();

        // The fixed residents: already paid, held by an order, by a debit run, a closed window,
        // exempt.
        for (state, no, expected) in [
            (FixedState::AlreadyPaid, "O-2", (409, "ALREADY_PAID")),
            (FixedState::LockedByOrder, "O-3", (409, "LOCKED")),
            (FixedState::LockedByDebitRun, "O-4", (409, "LOCKED")),
            (FixedState::WindowClosed, "O-5", (422, "WINDOW_CLOSED")),
            (FixedState::Exempt, "O-6", (422, "NOT_PAYABLE")),
        ] {
            let (payable, amount) = payable_of(&client, fixed(state)).await;
            let err = client
                .open_order(&order(no, &payable, amount.max(1)))
                .await
                .unwrap_err();
            assert_eq!(api_code(&err), (expected.0, expected.1.into()), "{state:?}");
            if state == FixedState::LockedByDebitRun {
                assert!(err.to_string().contains("银行扣费"), "{err}");
            }
        }
        // 金额不符 at the order.
        let (second, _) = payable_of(&client, &fresh[1]).await;
        let err = client
            .open_order(&order("O-7", &second, TEST_AMOUNT_FEN - 1))
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (422, "AMOUNT_MISMATCH".into()));

        // 缴费成功, 交易状态查询, 电子票据, 冲正.
        let paid = client
            .report_payment(&payment("T-1", &first, amount))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        client.payment_status("T-1").await.unwrap();
        let receipt = &paid.receipts[0];
        client
            .receipt_json(
                &receipt.receipt_code,
                &receipt.receipt_number,
                &receipt.check_code,
            )
            .await
            .unwrap();
        client.reverse_payment("T-1", "测试冲正").await.unwrap();

        // 先冲正后报账.
        let (third, _) = payable_of(&client, &fresh[2]).await;
        client.reverse_payment("T-2", "先到的冲正").await.unwrap();
        // No money held by the reversal's account: 409 REVERSED, nothing applied.
        let err = client
            .report_payment(&payment("T-2", &third, TEST_AMOUNT_FEN))
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (409, "REVERSED".into()));
        let (_, still) = payable_of(&client, &fresh[2]).await;
        assert_eq!(still, TEST_AMOUNT_FEN);

        // 已缴费 at the report: the money goes back.
        let (paid_one, _) = payable_of(&client, fixed(FixedState::AlreadyPaid)).await;
        let twice = client
            .report_payment(&payment("T-3", &paid_one, TEST_AMOUNT_FEN))
            .await
            .unwrap();
        assert_eq!(twice.refund.unwrap().reason, RefundReason::AlreadyPaid);

        // 金额不符 at the report, then the refund fails (it stays owed) and then succeeds.
        let (fourth, _) = payable_of(&client, &fresh[3]).await;
        let short = client
            .report_payment(&payment("T-4", &fourth, TEST_AMOUNT_FEN - 1))
            .await
            .unwrap();
        let refund = short.refund.unwrap();
        assert_eq!(refund.reason, RefundReason::AmountMismatch);
        client
            .report_refund_result(
                &refund.refund_no,
                &RefundResultRequest::failed("CR-1", "账户已销户"),
            )
            .await
            .unwrap();
        let pending = client.pending_refunds().await.unwrap();
        assert!(pending.iter().any(|r| r.refund_no == refund.refund_no));
        client
            .report_refund_result(&refund.refund_no, &RefundResultRequest::succeeded("CR-2"))
            .await
            .unwrap();

        // 上传对账单.
        let csv = statement_csv(&[StatementLine {
            channel_txn_id: "T-3".into(),
            entry_type: StatementEntryType::Payment,
            amount: TEST_AMOUNT_FEN,
            occurred_at: paid_at(),
            refund_no: None,
        }]);
        client
            .upload_statement(paid_at().date_naive(), &csv)
            .await
            .unwrap();

        // Every scenario of the guide is recorded as completed for the channel.
        let progress = yibao_server::services::sandbox::progress(db.storage.as_ref())
            .await
            .unwrap();
        assert_eq!(progress.len(), 1, "the sandbox's own channel is not listed");
        let missing: Vec<&str> = progress[0]
            .scenarios
            .iter()
            .filter(|(_, done)| done.is_none())
            .map(|(s, _)| s.code())
            .collect();
        assert!(missing.is_empty(), "not recorded: {missing:?}");
        assert_eq!(progress[0].completed(), Scenario::ALL.len());
        drop(server);
    })
    .await;
}

#[tokio::test]
async fn the_sandbox_stays_out_of_postings_reports_and_production() {
    on_each_test_db(|db| async move {
        let (server, client) = test_channel(&db).await;
        let id = fresh_id_number(7).unwrap();
        let (payable, amount) = payable_of(&client, &id).await;
        client
            .report_payment(&payment("T-9", &payable, amount))
            .await
            .unwrap();

        // A second start prepares nothing twice: one paid fixture, one payment.
        let (again, _) = channel_at(&db, now(), "bank-test", SECRET).await;
        drop(again);
        let storage = db.storage.as_ref();
        let paid = storage
            .payables_of_person(
                &yibao_domain::IdNumber::parse(fixed(FixedState::AlreadyPaid), now().date_naive())
                    .unwrap()
                    .id_number,
            )
            .await
            .unwrap();
        assert_eq!(paid.len(), 1);

        // Never posted to the agency: the poster is given no event of the sandbox.
        let due = storage.due_events(i64::MAX / 2, 1000).await.unwrap();
        assert!(
            due.iter().all(|e| e.region.as_str() != SANDBOX_REGION),
            "{due:?}"
        );
        // Out of the dashboards' and reports' figures over all regions, and of the metrics.
        let day = paid_at().date_naive();
        assert!(storage
            .daily_collection(day, day, None)
            .await
            .unwrap()
            .is_empty());
        // Its statement, with a line of another amount than reported (a difference left open)
        // and one the platform does not know (长款, of no region, owed back at once), is the
        // test channel's own: the reconciliation pages over every channel and the dashboard's
        // differences leave it out; chosen by name, it is there.
        let lines = [("T-9", amount + 1), ("T-UNKNOWN", 100)].map(|(txn, amount)| StatementLine {
            channel_txn_id: txn.into(),
            entry_type: StatementEntryType::Payment,
            amount,
            occurred_at: paid_at(),
            refund_no: None,
        });
        client
            .upload_statement(day, &statement_csv(&lines))
            .await
            .unwrap();
        assert!(storage
            .statements(None, day, day, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            storage
                .statements(Some("bank-test"), day, day, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        let differences = |channel, open_only| {
            storage.reconciliation_items_of_region(channel, None, day, day, open_only, 10)
        };
        assert!(differences(None, false).await.unwrap().is_empty());
        assert_eq!(
            differences(Some("bank-test"), false).await.unwrap().len(),
            2
        );
        assert_eq!(differences(Some("bank-test"), true).await.unwrap().len(), 1);
        let counts = storage
            .money_counts(&yibao_storage::console_reads::MoneyCountsQuery {
                region: None,
                today: day,
                differences_since: day,
                now: now().timestamp(),
                late_before: now().timestamp(),
            })
            .await
            .unwrap();
        assert_eq!(counts.differences, 0, "{counts:?}");
        // A test auto-debit channel's agreement and run are its own too: the lists of every
        // region leave them out; asked for by the sandbox's code, they are there.
        add_test_channel(storage, "debit-test", "auto_debit").await;
        let sandbox = yibao_domain::sandbox::sandbox_region();
        let payer = fresh_id_number(8).unwrap();
        payable_of(&client, &payer).await;
        let signed = storage
            .sign_agreement(&yibao_storage::settlement::NewAgreement {
                agreement_no: "SANDBOX-A1".into(),
                region: sandbox,
                channel_id: "debit-test".into(),
                payer_id_number: yibao_domain::IdNumber::parse(&payer, day)
                    .unwrap()
                    .id_number,
                payer_name: "测试".into(),
                account_masked: "6222****0001".into(),
                signed_on: day,
                members: vec![payer.clone()],
            })
            .await
            .unwrap();
        assert!(
            matches!(
                signed,
                yibao_storage::settlement::AgreementOutcome::Signed(_)
            ),
            "{signed:?}"
        );
        let run = storage
            .create_debit_run(&yibao_storage::settlement::NewDebitRun {
                run_no: "SANDBOX-R1".into(),
                channel_id: "debit-test".into(),
                region: sandbox,
                fee_year: yibao_domain::FeeYear::new(yibao_domain::sandbox::OPEN_FEE_YEAR).unwrap(),
                debit_date: day,
                lock_until: now().timestamp() + 3600,
                now: now().timestamp(),
                skip_subsidised: false,
                skip_full: false,
                leave_out: Vec::new(),
            })
            .await
            .unwrap();
        assert!(
            matches!(run, yibao_storage::settlement::DebitRunOutcome::Created(_)),
            "{run:?}"
        );
        assert!(storage.agreements(None, None, 10).await.unwrap().is_empty());
        assert!(storage.debit_runs(None, 10).await.unwrap().is_empty());
        assert_eq!(
            storage
                .agreements(Some(SANDBOX_REGION), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            storage
                .debit_runs(Some(SANDBOX_REGION), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        storage
            .abandon_expired_debit_runs(now().timestamp() + 3600)
            .await
            .unwrap();
        let snapshot = storage.operations_snapshot(day).await.unwrap();
        assert_eq!(snapshot.outbox_backlog, 0);
        assert_eq!(snapshot.payables_locked_by_debit_runs, 0);
        // Not a region staff pick from, and not a channel in production's to serve.
        assert!(storage
            .list_regions()
            .await
            .unwrap()
            .iter()
            .all(|r| r.code().as_str() != SANDBOX_REGION));
        yibao::demo::load(storage).await.unwrap();
        yibao_tests::add_channel(
            storage,
            "prod-bank",
            "bank_counter",
            "prod-secret-0123456789",
        )
        .await;
        let err = yibao_server::services::accounts::update_channel(
            storage,
            "prod-bank",
            100,
            &[SANDBOX_REGION.to_owned()],
            "test",
        )
        .await
        .unwrap_err();
        assert!(err.message.contains("接入测试区"), "{}", err.message);
        // Below the service, the schema refuses it too.
        assert!(storage
            .update_channel("prod-bank", 100, &[SANDBOX_REGION.to_owned()])
            .await
            .is_err());
        let err = yibao::operator::channel_add(
            storage,
            None,
            "prod-2",
            "bank_counter",
            &[SANDBOX_REGION.to_owned()],
            10,
            "prod-secret-0123456789".to_owned(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("接入测试区"), "{err}");
        // And a test channel serves the sandbox only, whatever an edit leaves in its regions.
        assert!(storage
            .update_channel("bank-test", 100, &["320600".to_owned()])
            .await
            .is_err());
        yibao_server::services::accounts::update_channel(storage, "bank-test", 50, &[], "test")
            .await
            .unwrap();
        let kept = storage.get_channel("bank-test").await.unwrap().unwrap();
        assert_eq!(kept.regions, [SANDBOX_REGION]);
        // The sandbox's own channel's id is not a production channel's to take.
        let err = yibao::operator::channel_add(
            storage,
            None,
            yibao_domain::sandbox::HOUSE_CHANNEL,
            "bank_counter",
            &["320600".to_owned()],
            10,
            "prod-secret-0123456789".to_owned(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("保留"), "{err}");

        // A production channel naming a sandbox payable: owed back whole in its own region, where
        // staff see the refund, never kept in the sandbox.
        let (prod_server, prod) =
            channel_at(&db, now(), "prod-bank", "prod-secret-0123456789").await;
        let stray = prod
            .report_payment(&payment("P-1", &payable, amount))
            .await
            .unwrap();
        assert_eq!(stray.result, PaymentResult::RefundPending);
        let owed = storage
            .refunds(Some("owed"), Some("320600"), 100)
            .await
            .unwrap();
        assert!(owed.iter().any(|r| r.channel_txn_id == "P-1"), "{owed:?}");
        drop(prod_server);

        // A sandbox receipt never passes the public check.
        let paid = client.payment_status("T-9").await.unwrap();
        let r = &paid.receipts[0];
        let verify = server
            .client
            .get(server.url(&format!(
                "/public/receipts/verify?code={}&number={}&check_code={}",
                r.receipt_code, r.receipt_number, r.check_code
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(verify.status(), 404);

        // A reversal that arrives before any payment is not 冲正 done.
        client.reverse_payment("T-ahead", "先到").await.unwrap();
        let progress = yibao_server::services::sandbox::progress(storage)
            .await
            .unwrap();
        let reversed = progress[0]
            .scenarios
            .iter()
            .find(|(s, _)| *s == Scenario::Reversed)
            .unwrap();
        assert!(reversed.1.is_none(), "{reversed:?}");
        drop(server);
    })
    .await;
}

/// A database of the previous version (migrations up to 0046; on a Citus cluster, one placed at
/// 0012) with a channel serving a region: upgraded in place, the channel serves it still, in
/// production, and a test channel can then be added beside it.
#[tokio::test]
async fn a_database_of_the_previous_version_keeps_its_channels_in_production() {
    const OLD_ROWS: &str =
        "INSERT INTO pooling_regions (region_code, name) VALUES ('320600', '南通市');
         INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled)
           VALUES ('old-bank', 'bank_counter', 'plain:00', 10, true);
         INSERT INTO channel_regions (channel_id, region_code) VALUES ('old-bank', '320600');";
    async fn check(storage: std::sync::Arc<dyn yibao_storage::Storage>) {
        let old = storage.get_channel("old-bank").await.unwrap().unwrap();
        assert_eq!(old.regions, ["320600"]);
        assert!(!old.test_mode);
        yibao::operator::channel_add_in_mode(
            storage.as_ref(),
            None,
            "bank-test",
            "mobile_banking",
            &[],
            10,
            SECRET.to_owned(),
            true,
        )
        .await
        .unwrap();
        let test = storage.get_channel("bank-test").await.unwrap().unwrap();
        assert_eq!(
            (test.regions.as_slice(), test.test_mode),
            ([SANDBOX_REGION.to_owned()].as_slice(), true)
        );
    }
    fn previous(all: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
        sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                all.migrations
                    .iter()
                    .filter(|m| m.version <= 46)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        }
    }

    // SQLite, where channel_regions is rebuilt.
    let (_dir, url) = yibao_tests::sqlite_database_at(46, OLD_ROWS).await;
    let storage = yibao_storage_sqlite::SqliteStorage::connect(&url)
        .await
        .unwrap();
    check(std::sync::Arc::new(storage)).await;

    // A Citus cluster, where the run is on one: placed at 0012, then every later migration.
    if yibao_tests::on_citus() {
        let (url, admin_urls, database) = yibao_tests::citus_database().await;
        let old = yibao_storage_postgres::PostgresStorage::connect_migrated_to(&url, 12)
            .await
            .unwrap();
        sqlx::raw_sql(OLD_ROWS).execute(old.pool()).await.unwrap();
        old.pool().close().await;
        let storage = yibao_storage_postgres::PostgresStorage::connect(&url)
            .await
            .unwrap();
        // Every table of a cluster upgraded in place is where a new cluster has it: distributed by
        // its column, or a reference table (replicated, `repmodel` t: a table that became a
        // coordinator-local one would show `n` with `repmodel` s).
        let placement: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT c.relname::text, COALESCE(d.partmethod::text, 'local'), \
             COALESCE(column_to_column_name(d.logicalrelid, d.partkey), ''), \
             COALESCE(d.repmodel::text, '') \
             FROM pg_class c LEFT JOIN pg_dist_partition d ON d.logicalrelid = c.oid \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' ORDER BY 1",
        )
        .fetch_all(storage.pool())
        .await
        .unwrap();
        let misplaced: Vec<String> = placement
            .iter()
            .filter(|(table, method, column, repmodel)| {
                match yibao_storage_postgres::PLACEMENT
                    .iter()
                    .find(|(t, _)| t == table)
                {
                    Some((_, yibao_storage_postgres::Placement::Reference)) => {
                        (method.as_str(), repmodel.as_str()) != ("n", "t")
                    }
                    Some((
                        _,
                        yibao_storage_postgres::Placement::Distributed { column: by, .. },
                    )) => (method.as_str(), column.as_str()) != ("h", *by),
                    None => true,
                }
            })
            .map(|p| format!("{p:?}"))
            .collect();
        assert!(
            misplaced.is_empty(),
            "placed otherwise than on a new cluster: {misplaced:?}"
        );
        let db = yibao_tests::citus_test_db(storage, url, admin_urls, database);
        check(db.db.storage.clone()).await;
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
        "{}sbx{}",
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
        sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let storage = yibao_storage_postgres::PostgresStorage::connect(&pg_url)
        .await
        .unwrap();
    check(std::sync::Arc::new(storage.clone())).await;
    storage.pool().close().await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
