//! A province on a Citus cluster (issue 20). The rules that span regions are checked on every
//! backend (one enrolment per person and fee year; a channel's transaction and order numbers are
//! used once whatever region a repeat names). On a cluster (`YIBAO_TEST_BACKEND=citus`) also: every
//! table is a reference or a distributed table and a second `migrate` changes nothing, and the hot
//! paths (search, order, payment report, status, receipt, reversal, posting) run with Citus told to
//! refuse any statement that needs more than one shard, with `EXPLAIN` showing the search's two
//! reads on one shard each.

use std::sync::Arc;

use chrono::NaiveDate;
use yibao_domain::{DueDate, FeeYear, RegionCode};
use yibao_roster_file::Limits;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::roster_import::{import_roster, ImportReport, ImportScope};
use yibao_storage::collection::{
    NewOrder, NewPayment, NewReversal, OrderOutcome, PaymentReportOutcome, ReversalOutcome,
};
use yibao_storage::prelude::*;
use yibao_storage::Storage;
use yibao_tests::{fresh_citus, make_id, on_citus, on_each_test_db, DbHandle};

/// 2026-11-22: 海口市 and 南通市 collect for 2027 in the demo.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

const HEADER: &str = "姓名,身份证号码,参保地区,人员类别,学校名称,户籍类型,居住证起始日期,职工医保,服务站,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额\n";

async fn import(storage: &dyn Storage, region: &str, people: &[&str]) -> ImportReport {
    import_result(storage, region, people).await.unwrap()
}

/// A roster of `people` (孙八) for `region`, imported on [`today`].
async fn import_result(
    storage: &dyn Storage,
    region: &str,
    people: &[&str],
) -> Result<ImportReport, yibao_server::ServiceError> {
    let mut csv = String::from(HEADER);
    for id in people {
        csv.push_str(&format!("孙八,{id},{region},,,,,,,,,,,\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    import_roster(
        storage,
        &path,
        "r.csv",
        &ImportScope::unrestricted("test"),
        today(),
        None,
        Limits::default(),
        &|_| {},
    )
    .await
}

async fn assess(storage: &dyn Storage, region: &str) {
    assess_region(
        storage,
        RegionCode::parse(region).unwrap(),
        FeeYear::new(2027).unwrap(),
        "test",
        today(),
        &|_| {},
    )
    .await
    .unwrap();
}

/// The person's current 2027 payable in `region`: (id, amount).
async fn payable(storage: &dyn Storage, id: &str, region: &str) -> (String, i64) {
    let views = storage
        .payables_by_person(id, &[region.to_owned()], Some(2027))
        .await
        .unwrap();
    assert_eq!(views.len(), 1, "one payable of {id} in {region}");
    (
        views[0].payable.payable_id.clone(),
        views[0].payable.amount_fen.as_fen(),
    )
}

fn due() -> DueDate {
    DueDate {
        date: today(),
        years_without_calendar: Vec::new(),
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn payment(
    region: &str,
    txn: &str,
    payables: &[String],
    amount: i64,
    order: Option<&str>,
) -> NewPayment {
    NewPayment {
        nonce: None,
        region: region.parse().unwrap(),
        payment_no: yibao_storage::regional_id::regional_id("PM", region, &unique()),
        refund_no: yibao_storage::regional_id::regional_id("RF", region, &unique()),
        channel_id: "province".into(),
        channel_txn_id: txn.into(),
        order_no: order.map(str::to_owned),
        lock_holder: None,
        refund_all: None,
        payable_ids: payables.to_vec(),
        amount_fen: yibao_domain::Fen::new(amount).unwrap(),
        paid_at: "2026-11-22T10:15:00+08:00".into(),
        paid_on: today(),
        fingerprint: format!("{txn}:{amount}"),
        refund_due: due(),
        issued_on: today(),
        now: 1_800_000_000,
        check_codes: payables.iter().map(|_| "abc123".to_owned()).collect(),
        event_ids: payables
            .iter()
            .map(|_| yibao_storage::regional_id::regional_id("EV", region, &unique()))
            .collect(),
        // As a channel's report carries it: printed on the receipt, posted with the payment.
        cover: payables
            .iter()
            .map(|_| {
                Some(yibao_storage::collection::CoverNote {
                    starts_on: NaiveDate::from_ymd_opt(2021, 1, 1),
                    code: "IN_WINDOW".into(),
                    text: "集中缴费期内缴费，全年享受待遇".into(),
                    reward: None,
                })
            })
            .collect(),
    }
}

fn order(region: &str, channel_order_no: &str, payables: &[String], amount: i64) -> NewOrder {
    NewOrder {
        order_no: yibao_storage::regional_id::regional_id("OD", region, &unique()),
        channel_id: "province".into(),
        channel_order_no: channel_order_no.into(),
        region: region.parse().unwrap(),
        amount_fen: yibao_domain::Fen::new(amount).unwrap(),
        payer_name: None,
        payer_phone: None,
        payable_ids: payables.to_vec(),
        expires_at: 1_800_000_900,
        fingerprint: format!("{channel_order_no}:{amount}"),
        now: 1_800_000_000,
        card: None,
        agent_code: None,
    }
}

/// Two regions (海口市, 南通市) each with an enrolled, assessed adult, and a channel of both.
async fn two_regions(db: &DbHandle) -> (String, String) {
    let storage = db.storage.as_ref();
    yibao::demo::load(storage).await.unwrap();
    let haikou = make_id("460105", "1990-02-02", 7);
    let nantong = make_id("320602", "1990-02-02", 8);
    assert_eq!(
        import(storage, "460100", &[&haikou]).await.summary.enrolled,
        1
    );
    assert_eq!(
        import(storage, "320600", &[&nantong])
            .await
            .summary
            .enrolled,
        1
    );
    assess(storage, "460100").await;
    assess(storage, "320600").await;
    yibao::operator::channel_add(
        storage,
        None,
        "province",
        "bank_counter",
        &["320600".to_owned(), "460100".to_owned()],
        1000,
        "province-secret-0123456789".to_owned(),
    )
    .await
    .unwrap();
    (haikou, nantong)
}

async fn count(db: &DbHandle, sql: &str, bind: &str) -> i64 {
    if let Some(pg) = &db.postgres {
        sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(pg.pool())
            .await
            .unwrap()
    } else {
        let lite = db.sqlite.as_ref().unwrap();
        sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(lite.pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn one_enrolment_per_person_and_year_across_regions_even_when_two_regions_race() {
    on_each_test_db(|db| async move {
        let storage = db.storage.clone();
        yibao::demo::load(storage.as_ref()).await.unwrap();
        // Enrolled in 海口市 first: 南通市 is told where, and records a refusal.
        let person = make_id("460105", "1991-03-03", 9);
        assert_eq!(import(storage.as_ref(), "460100", &[&person]).await.summary.enrolled, 1);
        let second = import(storage.as_ref(), "320600", &[&person]).await;
        assert_eq!((second.summary.enrolled, second.summary.rejected), (0, 1));
        let enrolled = "SELECT COUNT(*) FROM enrolments WHERE id_number = $1 AND status = 'enrolled'";
        assert_eq!(count(&db, enrolled, &person).await, 1);
        // The claim's key is the rule, below the code: a second claim for the year is refused.
        let claim = "INSERT INTO enrolment_claims (id_number, fee_year, region_code) VALUES ($1, 2027, '320600')";
        let refused = if let Some(pg) = &db.postgres {
            sqlx::query(claim).bind(&person).execute(pg.pool()).await.is_err()
        } else {
            sqlx::query(claim).bind(&person).execute(db.sqlite.as_ref().unwrap().pool()).await.is_err()
        };
        assert!(refused, "a second enrolment claim for the same person and year");
        // Two regions importing the same new person at once: exactly one enrolment survives.
        for round in 0..4 {
            let racer = make_id("460105", "1992-04-04", 10 + round);
            let (a, b) = (storage.clone(), storage.clone());
            let (ra, rb) = (racer.clone(), racer.clone());
            let one = tokio::spawn(async move { import_quietly(a.as_ref(), "460100", &ra).await });
            let two = tokio::spawn(async move { import_quietly(b.as_ref(), "320600", &rb).await });
            let (one, two) = (one.await.unwrap(), two.await.unwrap());
            assert!(one || two, "at least one import went through");
            assert_eq!(count(&db, enrolled, &racer).await, 1, "round {round}");
            let claims = "SELECT COUNT(*) FROM enrolment_claims WHERE id_number = $1";
            assert_eq!(count(&db, claims, &racer).await, 1, "round {round}");
        }
    })
    .await;
}

/// An import that may lose a race (its batch is then refused whole and can be imported again).
async fn import_quietly(storage: &dyn Storage, region: &str, id: &str) -> bool {
    import_result(storage, region, &[id]).await.is_ok()
}

#[tokio::test]
async fn a_channels_transaction_and_order_numbers_are_used_once_whatever_region_a_repeat_names() {
    on_each_test_db(|db| async move {
        let (haikou, nantong) = two_regions(&db).await;
        let storage = db.storage.as_ref();
        let (p_haikou, amount_haikou) = payable(storage, &haikou, "460100").await;
        let (p_nantong, amount_nantong) = payable(storage, &nantong, "320600").await;
        let first = storage
            .report_payment(&payment(
                "460100",
                "T-ONCE",
                std::slice::from_ref(&p_haikou),
                amount_haikou,
                None,
            ))
            .await
            .unwrap();
        let PaymentReportOutcome::Stored(first) = first else {
            panic!("stored: {first:?}")
        };
        assert_eq!(first.result.code(), "paid");
        // The same transaction number again, naming the other region's payable: the first answer,
        // nothing applied in 南通市, one payment in all.
        let repeat = storage
            .report_payment(&payment(
                "320600",
                "T-ONCE",
                std::slice::from_ref(&p_nantong),
                amount_nantong,
                None,
            ))
            .await
            .unwrap();
        assert_eq!(
            repeat,
            PaymentReportOutcome::Existing {
                outcome: first.clone(),
                same_request: false
            }
        );
        let still = storage
            .payables_by_id(std::slice::from_ref(&p_nantong))
            .await
            .unwrap();
        assert_eq!(still[0].payable.status.code(), "unpaid");
        let payments = "SELECT COUNT(*) FROM payments WHERE channel_txn_id = $1";
        assert_eq!(count(&db, payments, "T-ONCE").await, 1);
        // Its status is found whatever region the channel thinks it is in.
        let state = storage
            .payment_state("province", "T-ONCE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.payment_no, first.payment_no);
        // Orders alike: the same channel order number in another region is the first order.
        let OrderOutcome::Created(opened) = storage
            .open_order(&order(
                "320600",
                "O-ONCE",
                std::slice::from_ref(&p_nantong),
                amount_nantong,
            ))
            .await
            .unwrap()
        else {
            panic!("order opened")
        };
        let again = storage
            .open_order(&order(
                "460100",
                "O-ONCE",
                std::slice::from_ref(&p_haikou),
                amount_haikou,
            ))
            .await
            .unwrap();
        let OrderOutcome::Existing { order: found, .. } = again else {
            panic!("the first order: {again:?}")
        };
        assert_eq!(found.order_no, opened.order_no);
        let orders = "SELECT COUNT(*) FROM orders WHERE channel_order_no = $1";
        assert_eq!(count(&db, orders, "O-ONCE").await, 1);
        assert!(storage.check_invariants().await.unwrap().holds());
    })
    .await;
}

#[tokio::test]
async fn every_table_is_placed_on_the_cluster_and_a_second_migrate_changes_nothing() {
    if !on_citus() {
        return;
    }
    let test = fresh_citus().await;
    let pg = test.db.postgres.clone().unwrap();
    let placement: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.relname::text, COALESCE(d.partmethod::text, 'local'), \
         COALESCE(column_to_column_name(d.logicalrelid, d.partkey), '') \
         FROM pg_class c LEFT JOIN pg_dist_partition d ON d.logicalrelid = c.oid \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    let local: Vec<&String> = placement
        .iter()
        .filter(|p| p.1 == "local")
        .map(|p| &p.0)
        .collect();
    assert!(
        local.is_empty(),
        "tables left on the coordinator: {local:?}"
    );
    assert_eq!(
        placement.len(),
        yibao_storage_postgres::PLACEMENT.len(),
        "{placement:?}"
    );
    for (table, method, column) in &placement {
        let expected = yibao_storage_postgres::PLACEMENT
            .iter()
            .find(|(t, _)| t == table)
            .unwrap()
            .1;
        match expected {
            yibao_storage_postgres::Placement::Reference => assert_eq!(method, "n", "{table}"),
            yibao_storage_postgres::Placement::Distributed { column: by, .. } => {
                assert_eq!((method.as_str(), column.as_str()), ("h", by), "{table}")
            }
        }
    }
    // Every region table in one colocation group, the channel tables and the ID-number tables in
    // groups of their own.
    let groups: Vec<(String, i64)> = sqlx::query_as(
        "SELECT column_to_column_name(logicalrelid, partkey), COUNT(DISTINCT colocationid) FROM pg_dist_partition \
         WHERE partmethod = 'h' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert_eq!(
        groups,
        vec![
            ("channel_id".to_owned(), 1),
            ("id_number".to_owned(), 1),
            ("region_code".to_owned(), 1)
        ]
    );
    // A second run places nothing and changes nothing.
    let before: Vec<(String, i64)> = sqlx::query_as(
        "SELECT logicalrelid::regclass::text, colocationid::bigint FROM pg_dist_partition ORDER BY 1",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    pg.migrate().await.unwrap();
    assert!(pg.distribute().await.unwrap(), "a Citus database");
    let after: Vec<(String, i64)> = sqlx::query_as(
        "SELECT logicalrelid::regclass::text, colocationid::bigint FROM pg_dist_partition ORDER BY 1",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert_eq!(before, after);
    test.cleanup().await;
}

/// The plan of `sql` on the cluster: the number of shards it goes to.
async fn task_count(pool: &sqlx::PgPool, sql: &str) -> Vec<String> {
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
        .fetch_all(pool)
        .await
        .unwrap();
    plan.into_iter()
        .filter(|l| l.contains("Task Count"))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_hot_paths_go_to_one_shard_per_statement() {
    if !on_citus() {
        return;
    }
    let test = fresh_citus().await;
    let (haikou, _) = two_regions(&test.db).await;
    let setup = test.db.postgres.clone().unwrap();
    let (p_haikou, amount) = payable(&*test.db.storage, &haikou, "460100").await;
    // A search by ID number: the directory (by ID number), then the region's shard. EXPLAIN says so.
    // The storage knows it is on a cluster and asks the directory (plain PostgreSQL does not).
    assert!(setup.regions_on_nodes().await.unwrap());
    let directory = task_count(
        setup.pool(),
        &format!("SELECT region_code FROM person_directory WHERE id_number = '{haikou}'"),
    )
    .await;
    assert_eq!(directory, vec!["Task Count: 1"]);
    let search = task_count(
        setup.pool(),
        &format!(
            "{} WHERE y.id_number = '{haikou}' AND y.status NOT IN ('superseded', 'cancelled') AND y.region_code IN ('460100')",
            yibao_storage::rows::PAYABLE_VIEW_SELECT
        ),
    )
    .await;
    assert_eq!(search, vec!["Task Count: 1"]);
    assert_eq!(
        task_count(setup.pool(), "SELECT COUNT(*) FROM payables").await,
        vec![format!("Task Count: {}", yibao_tests::CITUS_TEST_SHARDS)],
        "a statement over all shards, for contrast"
    );
    // From here Citus refuses every statement that needs more than one shard.
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" SET citus.multi_task_query_log_level = 'error'",
        test.db.url.rsplit('/').next().unwrap()
    ))
    .execute(setup.pool())
    .await
    .unwrap();
    setup.pool().close().await;
    let strict = yibao_storage_postgres::PostgresStorage::connect(&test.db.url)
        .await
        .unwrap();
    let all_shards = sqlx::query("SELECT COUNT(*) FROM payables")
        .execute(strict.pool())
        .await;
    assert!(all_shards.is_err(), "the guard is on");
    let storage: Arc<dyn Storage> = Arc::new(strict.clone());
    // Channel authentication.
    let channel = storage.get_channel("province").await.unwrap().unwrap();
    assert!(storage
        .remember_nonce(&channel.channel_id, "nonce0123456789abcdef", 1_800_000_000)
        .await
        .unwrap());
    // Search, then order, then payment, by the order.
    let found = storage
        .payables_by_person(&haikou, &channel.regions, Some(2027))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        storage
            .payables_by_id(std::slice::from_ref(&p_haikou))
            .await
            .unwrap()
            .len(),
        1
    );
    storage
        .working_calendar(RegionCode::parse("460100").unwrap())
        .await
        .unwrap();
    let new_order = order("460100", "O-HOT", std::slice::from_ref(&p_haikou), amount);
    let OrderOutcome::Created(opened) = storage.open_order(&new_order).await.unwrap() else {
        panic!("order")
    };
    assert!(storage
        .find_order("province", "O-HOT")
        .await
        .unwrap()
        .is_some());
    let ids = storage
        .order_payables("province", &opened.order_no)
        .await
        .unwrap()
        .unwrap();
    let report = payment("460100", "T-HOT", &ids, amount, Some(&opened.order_no));
    let event = report.event_ids[0].clone();
    // Through group commit, as `yibao serve` reports payments.
    let PaymentReportOutcome::Stored(paid) = storage
        .report_payments(std::slice::from_ref(&report))
        .await
        .unwrap()
        .remove(0)
        .unwrap()
    else {
        panic!("paid")
    };
    assert_eq!(paid.result.code(), "paid");
    // The same report again (idempotency), its status, its receipt.
    assert!(matches!(
        storage.report_payment(&report).await.unwrap(),
        PaymentReportOutcome::Existing { .. }
    ));
    assert_eq!(
        storage
            .payment_state("province", "T-HOT")
            .await
            .unwrap()
            .unwrap()
            .status
            .code(),
        "paid"
    );
    let receipt = &paid.receipts[0];
    let stored = storage
        .get_receipt(&receipt.receipt_code, &receipt.receipt_number)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payable_id, p_haikou);
    assert_eq!(
        storage
            .receipts_of_person(&haikou, &channel.regions, Some(2027))
            .await
            .unwrap()
            .len(),
        1
    );
    // Posting to the agency (到帐).
    storage
        .mark_event_delivered(&event, 1_800_000_100)
        .await
        .unwrap();
    assert_eq!(
        storage
            .payables_by_id(std::slice::from_ref(&p_haikou))
            .await
            .unwrap()[0]
            .payable
            .status
            .code(),
        "posted"
    );
    // A reversal.
    let reversed = storage
        .reverse_payment(&NewReversal {
            channel_id: "province".into(),
            channel_txn_id: "T-HOT".into(),
            reason: "冲正".into(),
            funds_returned: true,
            now: 1_800_000_200,
            event_ids: vec!["EV0123".into()],
            refund_no: "RF0123".into(),
            refund_due: due(),
        })
        .await
        .unwrap();
    assert_eq!(reversed, ReversalOutcome::Reversed);
    assert_eq!(
        storage
            .payables_by_id(std::slice::from_ref(&p_haikou))
            .await
            .unwrap()[0]
            .payable
            .status
            .code(),
        "unpaid"
    );
    strict.pool().close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn a_person_moving_between_regions_takes_history_enrolment_and_unpaid_years_in_one_go() {
    on_each_test_db(|db| async move {
        let (haikou, nantong) = two_regions(&db).await;
        let storage = db.storage.as_ref();
        let id = yibao_domain::IdNumber::parse(&haikou, today())
            .unwrap()
            .id_number;
        let (from, to) = (
            RegionCode::parse("460100").unwrap(),
            RegionCode::parse("320600").unwrap(),
        );
        let year = FeeYear::new(2027).unwrap();
        let history_before = storage.person_history(from, &id).await.unwrap();
        let source = yibao_storage::ChangeSource {
            actor: "staff".into(),
            source: "api".into(),
        };
        let moved = storage.move_person(&id, from, to, &source).await.unwrap();
        assert_eq!(
            moved,
            yibao_storage::records::MoveOutcome::Moved {
                fee_years: vec![2027],
                payables_cancelled: 1
            }
        );
        let old = storage
            .get_enrolment(from, year, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (old.status.code(), old.refusal_code.as_deref()),
            ("refused", Some("MOVED_AWAY"))
        );
        assert_eq!(
            storage
                .get_enrolment(to, year, &id)
                .await
                .unwrap()
                .unwrap()
                .status
                .code(),
            "enrolled"
        );
        let history = storage.person_history(to, &id).await.unwrap();
        assert_eq!(
            history.len(),
            history_before.len() + 1,
            "the history came along, and the move is in it"
        );
        assert_eq!(history.last().unwrap().source, "move:460100");
        let claims =
            "SELECT COUNT(*) FROM enrolment_claims WHERE id_number = $1 AND region_code = '320600'";
        assert_eq!(count(&db, claims, &haikou).await, 1);
        // 南通市 assesses the year by its own policy; 海口市's unpaid payable is gone from searches.
        assert!(storage
            .payables_by_person(&haikou, &["460100".to_owned()], Some(2027))
            .await
            .unwrap()
            .is_empty());
        assess(storage, "320600").await;
        payable(storage, &haikou, "320600").await;
        // Back in 海口市 for the same year: refused, the person is enrolled in 南通市 now.
        let again = import(storage, "460100", &[&haikou]).await;
        assert_eq!((again.summary.enrolled, again.summary.rejected), (0, 1));
        // A person whose payable an open order holds does not move, and nothing changes.
        let other = yibao_domain::IdNumber::parse(&nantong, today())
            .unwrap()
            .id_number;
        let (p, amount) = payable(storage, &nantong, "320600").await;
        assert!(matches!(
            storage
                .open_order(&order("320600", "O-MOVE", &[p], amount))
                .await
                .unwrap(),
            OrderOutcome::Created(_)
        ));
        let history = storage.person_history(to, &other).await.unwrap().len();
        assert_eq!(
            storage
                .move_person(&other, to, from, &source)
                .await
                .unwrap(),
            yibao_storage::records::MoveOutcome::Locked
        );
        assert_eq!(
            storage.person_history(to, &other).await.unwrap().len(),
            history
        );
        assert!(storage.get_person(from, &other).await.unwrap().is_none());
        assert!(storage.check_invariants().await.unwrap().holds());
    })
    .await;
}

/// A database as the version before region keys (migrations up to 0011) left it, with a payment
/// and a refund without a region, an order, keys, receipts and an audit entry without a region:
/// migrating it keeps every row and fills in what the new keys need.
#[tokio::test]
async fn a_database_of_the_previous_version_upgrades_in_place_with_nothing_lost() {
    if !matches!(
        std::env::var("YIBAO_TEST_BACKEND").as_deref(),
        Ok("postgres")
    ) {
        return;
    }
    use sqlx::Connection as _;
    let admin_url = std::env::var("YIBAO_TEST_DATABASE_URL").unwrap();
    let name = format!("{}{}", yibao_tests::TEST_DATABASE_PREFIX, unique());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = yibao_tests::with_database(&admin_url, &name);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // sqlx's migrator with the migrations up to 0011 only (its fields are public for migrate!()).
    let all = yibao_storage_postgres::PostgresStorage::migrator();
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= 11)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    let id = make_id("320602", "1980-01-01", 1);
    let payable = "p0123456789abcdef0123456789abcdef";
    sqlx::raw_sql(&format!(
        "INSERT INTO pooling_regions (region_code, name) VALUES ('320600', '南通市'), ('460100', '海口市');
         INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled) VALUES ('bank', 'bank_counter', 'plain:x', 100, true);
         INSERT INTO channel_regions VALUES ('bank', '320600');
         INSERT INTO persons (region_code, id_number, name, household, employee_insured, updated_by) VALUES ('320600', '{id}', '张三', 'local_registration', false, 't');
         INSERT INTO person_history (region_code, id_number, version, changed_by, source, snapshot) VALUES ('320600', '{id}', 1, 't', 'roster', '{{}}');
         INSERT INTO enrolments (region_code, fee_year, id_number, status, covered_from, source) VALUES ('320600', 2021, '{id}', 'enrolled', '2021-01-01', 'roster');
         INSERT INTO payables (payable_id, region_code, fee_year, id_number, category, amount_fen, basic_fen, critical_illness_fen,
             long_term_care_fen, policy_amount_fen, status, payable_from, inputs, assessed_by)
             VALUES ('{payable}', '320600', 2021, '{id}', 'adult', 43000, 38000, 2000, 3000, 43000, 'paid', '2020-11-01', '{{}}', 't');
         INSERT INTO orders (order_no, channel_id, channel_order_no, region_code, amount_fen, status, expires_at, fingerprint, response)
             VALUES ('ODold', 'bank', 'CO1', '320600', 43000, 'paid', 0, 'f', '{{\"order_no\":\"ODold\",\"amount_fen\":43000,\"expires_at\":0,\"status\":\"open\",\"payable_ids\":[\"{payable}\"]}}');
         INSERT INTO order_items (order_no, payable_id, region_code) VALUES ('ODold', '{payable}', '320600');
         INSERT INTO payments (payment_no, channel_id, channel_txn_id, order_no, region_code, amount_fen, paid_at, paid_on, status, fingerprint, response)
             VALUES ('PMold1', 'bank', 'T1', 'ODold', '320600', 43000, '2020-11-02T10:00:00+08:00', '2020-11-02', 'paid', 'f1',
                     '{{\"payment_no\":\"PMold1\",\"result\":\"paid\",\"receipts\":[],\"refund\":null}}'),
                    ('PMold2', 'bank', 'T2', NULL, NULL, 100, '2020-11-02T10:00:00+08:00', '2020-11-02', 'refund_pending', 'f2',
                     '{{\"payment_no\":\"PMold2\",\"result\":\"refund_pending\",\"receipts\":[],\"refund\":null}}');
         INSERT INTO payment_applications (payment_no, payable_id, region_code, amount_fen, active) VALUES ('PMold1', '{payable}', '320600', 43000, true);
         INSERT INTO receipt_counters (receipt_code, region_code, last_number) VALUES ('32060020', '320600', 1);
         INSERT INTO receipts (receipt_code, receipt_number, region_code, check_code, payable_id, payment_no, id_number, payer_name, fee_year,
             amount_fen, components, issued_on, issuer, status)
             VALUES ('32060020', '0000000001', '320600', 'abc123', '{payable}', 'PMold1', '{id}', '张三', 2021, 43000, '[]', '2020-11-02', 'x', 'valid');
         INSERT INTO refunds (refund_no, channel_id, payment_no, channel_txn_id, region_code, amount_fen, reason, status, due)
             VALUES ('RFold2', 'bank', 'PMold2', 'T2', NULL, 100, 'NOT_PAYABLE', 'owed', '2020-11-04');
         INSERT INTO outbox (event_id, region_code, kind, payable_id, payload, created_at, next_attempt_at)
             VALUES ('EVold', '320600', 'payment_applied', '{payable}', '{{}}', 0, 0);
         INSERT INTO channel_keys (channel_id, key, touches) VALUES ('bank', 'txn:T1', 1), ('bank', 'txn:T2', 1), ('bank', 'order:CO1', 1);
         INSERT INTO audit_log (actor, action, region_code, target, detail) VALUES ('cli:root', 'staff.create', NULL, 'admin', '{{}}');"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let tables = [
        "persons",
        "person_history",
        "enrolments",
        "payables",
        "orders",
        "order_items",
        "payments",
        "payment_applications",
        "receipts",
        "refunds",
        "outbox",
        "channel_keys",
        "audit_log",
    ];
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        counts.push(n);
    }
    pool.close().await;
    let storage = yibao_storage_postgres::PostgresStorage::connect(&url)
        .await
        .unwrap();
    let pool = storage.pool();
    for (table, before) in tables.iter().zip(counts) {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, before, "{table}");
    }
    let regions: Vec<(String, String)> =
        sqlx::query_as("SELECT payment_no, region_code FROM payments ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        regions,
        vec![
            ("PMold1".into(), "320600".into()),
            ("PMold2".into(), "320600".into())
        ]
    );
    let refund: String = sqlx::query_scalar("SELECT region_code FROM refunds")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(refund, "320600");
    // The person got the region's first insured number (migration 0043), and the receipt
    // issued before carries it.
    let numbers: (String, Option<String>) = sqlx::query_as(
        "SELECT p.insured_number, r.insured_number FROM persons p JOIN receipts r \
         ON r.region_code = p.region_code AND r.id_number = p.id_number",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let first =
        yibao_domain::InsuredNumber::issue(yibao_domain::RegionCode::parse("320600").unwrap(), 1)
            .unwrap();
    assert_eq!(numbers, (first.to_string(), Some(first.to_string())));
    let keys: Vec<(String, String, String)> =
        sqlx::query_as("SELECT key, region_code, target FROM channel_keys ORDER BY key")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        keys,
        vec![
            ("order:CO1".into(), "320600".into(), "ODold".into()),
            ("txn:T1".into(), "320600".into(), "PMold1".into()),
            ("txn:T2".into(), "320600".into(), "PMold2".into()),
        ]
    );
    let directory: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM person_directory")
        .fetch_one(pool)
        .await
        .unwrap();
    let claims: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM enrolment_claims")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!((directory, claims), (1, 1));
    // What the earlier version issued is still found, through the new paths.
    assert_eq!(
        storage
            .payment_state("bank", "T1")
            .await
            .unwrap()
            .unwrap()
            .payment_no,
        "PMold1"
    );
    assert!(storage.find_order("bank", "CO1").await.unwrap().is_some());
    assert_eq!(
        storage
            .payables_by_id(&[payable.to_owned()])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(storage
        .get_receipt("32060020", "0000000001")
        .await
        .unwrap()
        .is_some());
    assert_eq!(storage.list_audit(10).await.unwrap()[0].entry.region, None);
    assert!(storage.check_invariants().await.unwrap().holds());
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// The console's money counts (one statement over refunds, reconciliation and the outbox) per
/// region and for all regions; on a cluster they run across every shard.
#[tokio::test]
async fn the_consoles_money_counts_see_each_region_and_all_of_them() {
    use yibao_storage::console_reads::{MoneyCounts, MoneyCountsQuery};
    on_each_test_db(|db| async move {
        let (haikou, _) = two_regions(&db).await;
        let storage = db.storage.as_ref();
        let (p_haikou, amount) = payable(storage, &haikou, "460100").await;
        let counts = |region: Option<&'static str>, today: NaiveDate, late_before: i64| {
            let query = MoneyCountsQuery {
                region,
                today,
                differences_since: today - chrono::Duration::days(366),
                now: 1_800_000_001,
                late_before,
            };
            async move { storage.money_counts(&query).await.unwrap() }
        };
        let nothing = MoneyCounts::default();
        assert_eq!(counts(None, today(), 0).await, nothing);
        for txn in ["T-FIRST", "T-SECOND"] {
            let outcome = storage
                .report_payment(&payment(
                    "460100",
                    txn,
                    std::slice::from_ref(&p_haikou),
                    amount,
                    None,
                ))
                .await
                .unwrap();
            assert!(matches!(outcome, PaymentReportOutcome::Stored(_)));
        }
        // The first paid the payable (one event to post); the second is a refund owed, due today.
        let haikou_counts = MoneyCounts {
            refunds_owed: 1,
            refunds_overdue: 0,
            differences: 0,
            unposted: 1,
            unposted_late: 0,
        };
        assert_eq!(
            counts(Some("460100"), today(), 1_800_000_000).await,
            haikou_counts
        );
        assert_eq!(counts(None, today(), 1_800_000_000).await, haikou_counts);
        assert_eq!(
            counts(Some("320600"), today(), 1_800_000_000).await,
            nothing
        );
        // A day later the refund is overdue; two days later the posting is late.
        let later = counts(
            Some("460100"),
            today() + chrono::Duration::days(1),
            1_800_000_001,
        )
        .await;
        assert_eq!(later.refunds_overdue, 1);
        assert_eq!(later.unposted_late, 1);
    })
    .await;
}

/// A report's answer: its result, its refund's reason and amount, its receipts' payables and
/// numbers.
type Answer = (String, Option<(String, i64)>, Vec<(String, String)>);

/// What a stored (or earlier stored) report answered.
fn answered(outcome: &PaymentReportOutcome) -> Answer {
    let (PaymentReportOutcome::Stored(o) | PaymentReportOutcome::Existing { outcome: o, .. }) =
        outcome
    else {
        panic!("withdrawn: {outcome:?}")
    };
    (
        o.result.code().to_owned(),
        o.refund
            .as_ref()
            .map(|r| (r.reason.clone(), r.amount_fen.as_fen())),
        o.receipts
            .iter()
            .map(|r| (r.payable_id.clone(), r.receipt_number.clone()))
            .collect(),
    )
}

/// Group commit (issue 14): a batch of reports is decided together and written set-based, and
/// answers and stores exactly what its reports one after another would: the first of two
/// reports for one payable pays it and the second is owed back; a family's order is paid with
/// its receipts numbered on from the report before it; a wrong amount is owed back; repeats of
/// an earlier report get its answer (or a conflict); a transaction named twice in one batch, and
/// a reversal that came first, are reported one by one with the same answers.
#[tokio::test]
async fn a_batch_of_payment_reports_answers_what_they_would_one_by_one() {
    on_each_test_db(|db| async move {
        let storage = db.storage.clone();
        two_regions(&db).await;
        let people: Vec<String> = (20..26)
            .map(|seq| make_id("460105", "1991-03-03", seq))
            .collect();
        let refs: Vec<&str> = people.iter().map(String::as_str).collect();
        assert_eq!(
            import(storage.as_ref(), "460100", &refs)
                .await
                .summary
                .enrolled,
            6
        );
        assess(storage.as_ref(), "460100").await;
        let mut payables = Vec::new();
        for id in &people {
            payables.push(payable(storage.as_ref(), id, "460100").await);
        }
        let [p1, p2, p3, p4, p5, p6] = <[(String, i64); 6]>::try_from(payables).unwrap();
        // An earlier report, stored alone: its receipt takes the first number.
        let earlier = payment("460100", "B-T0", std::slice::from_ref(&p5.0), p5.1, None);
        let PaymentReportOutcome::Stored(first) = storage.report_payment(&earlier).await.unwrap()
        else {
            panic!("stored")
        };
        let n0: i64 = first.receipts[0].receipt_number.parse().unwrap();
        let number = |k: i64| format!("{:010}", n0 + k);
        let family = vec![p2.0.clone(), p3.0.clone()];
        let OrderOutcome::Created(opened) = storage
            .open_order(&order("460100", "B-O1", &family, p2.1 + p3.1))
            .await
            .unwrap()
        else {
            panic!("order")
        };
        let mut conflicting = earlier.clone();
        conflicting.fingerprint = "another request".into();
        let batch = vec![
            payment("460100", "B-T1", std::slice::from_ref(&p1.0), p1.1, None),
            payment("460100", "B-T2", std::slice::from_ref(&p1.0), p1.1, None),
            payment(
                "460100",
                "B-T3",
                &family,
                p2.1 + p3.1,
                Some(&opened.order_no),
            ),
            payment(
                "460100",
                "B-T4",
                std::slice::from_ref(&p4.0),
                p4.1 + 1,
                None,
            ),
            earlier.clone(),
        ];
        // Only the batch that must go one by one below does (the counter is per process).
        let one_by_one = yibao_storage::payment_batch::batches_reported_one_by_one();
        let results: Vec<PaymentReportOutcome> = storage
            .report_payments(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let (mut low, mut high) = (p2.0.clone(), p3.0.clone());
        if low > high {
            std::mem::swap(&mut low, &mut high);
        }
        assert_eq!(
            results.iter().map(answered).collect::<Vec<_>>(),
            vec![
                ("paid".into(), None, vec![(p1.0.clone(), number(1))]),
                (
                    "refund_pending".into(),
                    Some(("ALREADY_PAID".into(), p1.1)),
                    vec![]
                ),
                (
                    "paid".into(),
                    None,
                    vec![(low, number(2)), (high, number(3))]
                ),
                (
                    "refund_pending".into(),
                    Some(("AMOUNT_MISMATCH".into(), p4.1 + 1)),
                    vec![]
                ),
                ("paid".into(), None, vec![(p5.0.clone(), number(0))]),
            ]
        );
        assert!(matches!(
            results[4],
            PaymentReportOutcome::Existing {
                same_request: true,
                ..
            }
        ));
        // The same transaction number for another request: a conflict, with the first answer.
        let conflict = storage
            .report_payments(&[conflicting])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert!(matches!(
            conflict,
            PaymentReportOutcome::Existing {
                same_request: false,
                ..
            }
        ));
        assert_eq!(answered(&conflict).2, vec![(p5.0.clone(), number(0))]);
        let (paid_order, _) = storage
            .find_order("province", "B-O1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(paid_order.status.code(), "paid");
        for txn in ["B-T1", "B-T3"] {
            let state = storage
                .payment_state("province", txn)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(state.status.code(), "paid", "{txn}");
        }
        let state = storage
            .payment_state("province", "B-T2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.refund.unwrap().amount_fen.as_fen(), p1.1);

        assert_eq!(
            yibao_storage::payment_batch::batches_reported_one_by_one(),
            one_by_one,
            "the batches above were written batch-wide"
        );
        // One transaction twice in a batch, and a reversal that came first: one by one.
        let reversed_first = storage
            .reverse_payment(&NewReversal {
                channel_id: "province".into(),
                channel_txn_id: "B-T6".into(),
                reason: "冲正".into(),
                funds_returned: true,
                now: 1_800_000_000,
                event_ids: vec![],
                refund_no: "RF-B-T6".into(),
                refund_due: due(),
            })
            .await
            .unwrap();
        assert_eq!(reversed_first, ReversalOutcome::RecordedAhead);
        let twice = payment("460100", "B-T5", std::slice::from_ref(&p6.0), p6.1, None);
        let batch = vec![
            twice.clone(),
            twice,
            payment("460100", "B-T6", std::slice::from_ref(&p6.0), p6.1, None),
        ];
        let results: Vec<PaymentReportOutcome> = storage
            .report_payments(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(matches!(results[0], PaymentReportOutcome::Stored(_)));
        assert!(matches!(
            results[1],
            PaymentReportOutcome::Existing {
                same_request: true,
                ..
            }
        ));
        assert_eq!(answered(&results[0]), answered(&results[1]));
        assert_eq!(answered(&results[0]).2, vec![(p6.0.clone(), number(4))]);
        assert_eq!(results[2], PaymentReportOutcome::ReversedEarlier);
        assert!(yibao_storage::payment_batch::batches_reported_one_by_one() > one_by_one);
        let check = storage.check_invariants().await.unwrap();
        assert!(check.holds(), "{check:?}");
    })
    .await;
}
