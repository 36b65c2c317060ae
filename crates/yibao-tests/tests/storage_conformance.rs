//! The storage conformance suite: every test runs on SQLite, and on PostgreSQL when
//! `YIBAO_TEST_DATABASE_URL` is set, each on a fresh database.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use yibao::demo;
use yibao_domain::{
    CalendarYear, Category, CategoryAmount, CollectionWindow, Component, DayKind, FeePolicy,
    FeePolicyInput, FeeYear, Fen, PoolingRegion, RegionCode,
};
use yibao_storage::{ConstraintKind, StorageError};
use yibao_tests::{haikou_2027, make_id, on_each_backend, on_each_test_db};

fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn region(code: &str, name: &str) -> PoolingRegion {
    PoolingRegion::new(RegionCode::parse(code).unwrap(), name).unwrap()
}

fn seed_policy() -> FeePolicy {
    demo::fee_policies()
        .unwrap()
        .into_iter()
        .find(|p| p.region().as_str() == "320600" && p.fee_year().get() == 2021)
        .unwrap()
}

fn flat_policy(region: &str, year: i64, yuan: i64) -> FeePolicy {
    let amount = CategoryAmount::including(Fen::yuan(yuan).unwrap(), &[]).unwrap();
    FeePolicy::new(FeePolicyInput {
        region: RegionCode::parse(region).unwrap(),
        fee_year: FeeYear::new(year).unwrap(),
        amounts: Category::ALL
            .into_iter()
            .map(|c| (c, amount.clone()))
            .collect::<BTreeMap<_, _>>(),
        age_reference_date: d(&format!("{year}-01-01")),
        adult_age: 18,
        window: CollectionWindow::new(
            d(&format!("{}-09-01", year - 1)),
            d(&format!("{}-12-31", year - 1)),
        )
        .unwrap(),
        late_payment_allowed: true,
        cover_rules: Default::default(),
    })
    .unwrap()
}

#[tokio::test]
async fn health_answers() {
    on_each_backend(|storage| async move {
        storage.health().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn regions_are_created_renamed_and_listed_in_code_order() {
    on_each_backend(|storage| async move {
        assert!(storage.list_regions().await.unwrap().is_empty());
        storage
            .upsert_region(&region("460200", "三亚市"))
            .await
            .unwrap();
        storage
            .upsert_region(&region("320600", "南通"))
            .await
            .unwrap();
        storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        let listed = storage.list_regions().await.unwrap();
        let names: Vec<_> = listed
            .iter()
            .map(|r| (r.code().to_string(), r.name().to_owned()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("320600".into(), "南通市".into()),
                ("460200".into(), "三亚市".into())
            ]
        );
        let code = RegionCode::parse("460200").unwrap();
        assert_eq!(
            storage.get_region(code).await.unwrap().unwrap().name(),
            "三亚市"
        );
        assert!(storage
            .get_region(RegionCode::parse("210700").unwrap())
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn the_seed_fee_policy_round_trips_exactly() {
    on_each_backend(|storage| async move {
        storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        let policy = seed_policy();
        storage.put_fee_policy(&policy).await.unwrap();
        let code = RegionCode::parse("320600").unwrap();
        let year = FeeYear::new(2021).unwrap();
        let stored = storage.get_fee_policy(code, year).await.unwrap().unwrap();
        assert_eq!(stored, policy);
        let adult = stored.amount_for(Category::Adult);
        assert_eq!(adult.total().as_fen(), 43000);
        assert_eq!(adult.component(Component::Basic).as_fen(), 38000);
        assert_eq!(adult.component(Component::LongTermCare).as_fen(), 3000);
        assert_eq!(
            stored
                .amount_for(Category::MinorNotInSchool)
                .total()
                .as_fen(),
            30000
        );
        assert!(storage
            .get_fee_policy(code, FeeYear::new(2022).unwrap())
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn the_2025_rules_round_trip_with_their_policy() {
    on_each_backend(|storage| async move {
        // 海口 and 锦州 set the rules differently in the demo: each comes back as it was stored.
        for (code, name) in [("460100", "海口市"), ("210700", "锦州市")] {
            storage.upsert_region(&region(code, name)).await.unwrap();
            let policy = demo::fee_policies()
                .unwrap()
                .into_iter()
                .find(|p| p.region().as_str() == code && p.fee_year().get() == 2027)
                .unwrap();
            assert_ne!(policy.cover_rules(), &yibao_domain::CoverRules::default());
            storage.put_fee_policy(&policy).await.unwrap();
            let stored = storage
                .get_fee_policy(policy.region(), policy.fee_year())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.cover_rules(), policy.cover_rules());
        }
    })
    .await;
}

#[tokio::test]
async fn replacing_a_policy_replaces_it_whole_and_years_stay_apart() {
    on_each_backend(|storage| async move {
        storage
            .upsert_region(&region("341100", "滁州市"))
            .await
            .unwrap();
        storage
            .put_fee_policy(&flat_policy("341100", 2026, 380))
            .await
            .unwrap();
        storage
            .put_fee_policy(&flat_policy("341100", 2027, 400))
            .await
            .unwrap();
        storage
            .put_fee_policy(&flat_policy("341100", 2027, 415))
            .await
            .unwrap();
        let code = RegionCode::parse("341100").unwrap();
        let all = storage.list_fee_policies(code).await.unwrap();
        let totals: Vec<_> = all
            .iter()
            .map(|p| {
                (
                    p.fee_year().get(),
                    p.amount_for(Category::Adult).total().as_fen(),
                )
            })
            .collect();
        assert_eq!(totals, vec![(2026, 38000), (2027, 41500)]);
    })
    .await;
}

#[tokio::test]
async fn a_policy_for_an_unknown_region_is_refused_by_the_database() {
    on_each_backend(|storage| async move {
        let err = storage
            .put_fee_policy(&flat_policy("210700", 2027, 400))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Constraint {
                    kind: ConstraintKind::ForeignKey,
                    ..
                }
            ),
            "{err:?}"
        );
        // Nothing half-written: the region still has no policy once it exists.
        storage
            .upsert_region(&region("210700", "锦州市"))
            .await
            .unwrap();
        assert!(storage
            .list_fee_policies(RegionCode::parse("210700").unwrap())
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn calendars_compute_due_dates_and_replace_by_year() {
    on_each_backend(|storage| async move {
        storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        storage
            .upsert_region(&region("460100", "海口市"))
            .await
            .unwrap();
        let nantong = RegionCode::parse("320600").unwrap();
        for year in demo::calendar_years().unwrap() {
            storage.put_calendar_year(nantong, &year).await.unwrap();
        }
        let cal = storage.working_calendar(nantong).await.unwrap();
        assert_eq!(
            cal.add_working_days(d("2020-09-30"), 2).unwrap().date,
            d("2020-10-10")
        );
        assert_eq!(
            cal.add_working_days(d("2021-02-10"), 1).unwrap().date,
            d("2021-02-18")
        );
        // Another region has its own calendar: plain weekdays here.
        let haikou = storage
            .working_calendar(RegionCode::parse("460100").unwrap())
            .await
            .unwrap();
        assert_eq!(
            haikou.add_working_days(d("2020-09-30"), 2).unwrap().date,
            d("2020-10-02")
        );
        // Replacing 2020 with an empty year removes its holidays but keeps 2021's.
        storage
            .put_calendar_year(nantong, &CalendarYear::new(2020, []).unwrap())
            .await
            .unwrap();
        let cal = storage.working_calendar(nantong).await.unwrap();
        assert_eq!(
            cal.add_working_days(d("2020-09-30"), 2).unwrap().date,
            d("2020-10-02")
        );
        assert_eq!(
            cal.add_working_days(d("2021-02-10"), 1).unwrap().date,
            d("2021-02-18")
        );
        // A regional holiday (e.g. an autonomous region's own) on a weekday.
        let local = CalendarYear::new(2020, [(d("2020-10-12"), DayKind::Holiday)]).unwrap();
        storage.put_calendar_year(nantong, &local).await.unwrap();
        let cal = storage.working_calendar(nantong).await.unwrap();
        assert!(!cal.is_working_day(d("2020-10-12")));
    })
    .await;
}

#[tokio::test]
async fn national_calendars_load_idempotently_keep_region_days_and_know_missing_years() {
    on_each_backend(|storage| async move {
        storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        let nantong = RegionCode::parse("320600").unwrap();
        // No calendar at all: two working days after 30 December 2026 is 1 January 2027, flagged.
        let bare = storage.working_calendar(nantong).await.unwrap();
        let due = bare.add_working_days(d("2026-12-30"), 2).unwrap();
        assert_eq!(due.date, d("2027-01-01"));
        assert_eq!(due.years_without_calendar, vec![2026, 2027]);
        assert!(storage
            .calendar_year_record(nantong, 2026)
            .await
            .unwrap()
            .is_none());
        // The region's own holiday first, then the national notices (twice: idempotent).
        let own = CalendarYear::new(2026, [(d("2026-03-02"), DayKind::Holiday)]).unwrap();
        storage.put_calendar_year(nantong, &own).await.unwrap();
        let notices = yibao::setup_cli::shipped_notices().unwrap();
        for _ in 0..2 {
            for notice in &notices {
                storage
                    .put_national_calendar_year(nantong, notice)
                    .await
                    .unwrap();
            }
        }
        let cal = storage.working_calendar(nantong).await.unwrap();
        assert_eq!(
            cal.years().collect::<Vec<_>>(),
            (2020..=2026).collect::<Vec<_>>()
        );
        assert!(
            !cal.is_working_day(d("2026-03-02")),
            "the region's own day is kept"
        );
        assert!(!cal.is_working_day(d("2026-02-17")), "Spring Festival 2026");
        assert!(
            cal.is_working_day(d("2026-02-28")),
            "a worked Saturday (调休)"
        );
        let due = cal.add_working_days(d("2026-12-30"), 2).unwrap();
        assert_eq!(due.date, d("2027-01-01"));
        assert_eq!(
            due.years_without_calendar,
            vec![2027],
            "2027 is not shipped"
        );
        let record = storage
            .calendar_year_record(nantong, 2026)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.title.as_deref(),
            Some("国务院办公厅关于2026年部分节假日安排的通知")
        );
        assert_eq!(record.published_on, Some(d("2025-11-04")));
        let national = notices
            .iter()
            .find(|n| n.calendar.year() == 2026)
            .unwrap()
            .calendar
            .days()
            .count();
        assert_eq!(record.days.len(), national + 1, "loaded twice, stored once");
        assert_eq!(
            record
                .days
                .iter()
                .filter(|day| day.origin == "region")
                .map(|day| day.day)
                .collect::<Vec<_>>(),
            vec![d("2026-03-02")]
        );
        // Replacing the region's own days leaves the notice's.
        storage
            .put_calendar_year(nantong, &CalendarYear::new(2026, []).unwrap())
            .await
            .unwrap();
        let cal = storage.working_calendar(nantong).await.unwrap();
        assert!(cal.is_working_day(d("2026-03-02")));
        assert!(!cal.is_working_day(d("2026-02-17")));
    })
    .await;
}

#[tokio::test]
async fn loading_the_demo_twice_changes_nothing() {
    on_each_backend(|storage| async move {
        let first = demo::load(storage.as_ref()).await.unwrap();
        let regions = storage.list_regions().await.unwrap();
        let code = RegionCode::parse("320600").unwrap();
        let policies = storage.list_fee_policies(code).await.unwrap();
        let second = demo::load(storage.as_ref()).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(storage.list_regions().await.unwrap(), regions);
        assert_eq!(storage.list_fee_policies(code).await.unwrap(), policies);
        assert_eq!(regions.len(), 5);
    })
    .await;
}

#[tokio::test]
async fn the_database_itself_refuses_negative_amounts_and_bad_codes() {
    on_each_test_db(|db| async move {
        db.storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        db.storage.put_fee_policy(&seed_policy()).await.unwrap();
        let negative = "UPDATE fee_policy_amounts SET amount_fen = -1 WHERE region_code = '320600'";
        let bad_region = "INSERT INTO pooling_regions (region_code, name) VALUES ('32060X', '坏')";
        let reversed =
            "UPDATE fee_policies SET window_closes = '2020-10-01' WHERE region_code = '320600'";
        for sql in [negative, bad_region, reversed] {
            assert_refused_by_a_check(&db, sql).await;
        }
    })
    .await;
}

/// Runs `sql` and asserts that a check constraint refused it.
async fn assert_refused_by_a_check(db: &yibao_tests::DbHandle, sql: &str) {
    let err = StorageError::from(
        yibao_tests::execute_raw(db, sql)
            .await
            .expect_err("a check refuses it"),
    );
    assert!(
        matches!(
            err,
            StorageError::Constraint {
                kind: ConstraintKind::Check,
                ..
            }
        ),
        "{sql}: {err:?}"
    );
}

/// A person's ID number, phone number and insured number are checked by the database on every
/// backend (PostgreSQL by lengths and trimmed digits since migration 0054, SQLite by GLOB
/// patterns): the same numbers pass and the same are refused everywhere.
#[tokio::test]
async fn the_database_itself_refuses_malformed_id_phone_and_insured_numbers() {
    on_each_test_db(|db| async move {
        db.storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .expect("a region");
        let person = |id: &str, phone: &str, insured: &str| {
            format!(
                "INSERT INTO persons (region_code, id_number, name, household, employee_insured, \
                 updated_by, phone, insured_number) VALUES ('320600', '{id}', '张三', \
                 'local_registration', false, 'test', {phone}, {insured})"
            )
        };
        let accepted = [
            person("32060219900307001X", "'13800000000'", "'320600000000001X'"),
            person("320602199003070028", "NULL", "'3206000000000028'"),
        ];
        for sql in accepted {
            yibao_tests::execute_raw(&db, &sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let id = "320602199003070036";
        let refused = [
            person("32060219900307003x", "NULL", "'3206000000000036'"),
            person("3206021990030700X6", "NULL", "'3206000000000036'"),
            person("X20602199003070036", "NULL", "'3206000000000036'"),
            person("3206021990030700366", "NULL", "'3206000000000036'"),
            person("32060219900307003", "NULL", "'3206000000000036'"),
            person("32060219900307003Ｘ", "NULL", "'3206000000000036'"),
            person("３20602199003070036", "NULL", "'3206000000000036'"),
            person("32060219900307003 ", "NULL", "'3206000000000036'"),
            person(id, "'23800000000'", "'3206000000000036'"),
            person(id, "'1380000000'", "'3206000000000036'"),
            person(id, "'138000000001'", "'3206000000000036'"),
            person(id, "'1380000000a'", "'3206000000000036'"),
            person(id, "'1380000000０'", "'3206000000000036'"),
            person(id, "NULL", "'3206000000000x36'"),
            person(id, "NULL", "'32060000000000X6'"),
            person(id, "NULL", "'320600000000003'"),
            person(id, "NULL", "'32060000000000036'"),
            person(id, "NULL", "'4601000000000036'"),
            person(id, "NULL", "'320600000000003Ｘ'"),
        ];
        for sql in refused {
            assert_refused_by_a_check(&db, &sql).await;
        }
    })
    .await;
}

/// A row that names a region, person or enrolment that is not there is refused by the database,
/// and a row others name is never deleted nor its key changed, on every backend: SQLite and a
/// Citus cluster by their declared foreign keys, single-node PostgreSQL by the checks per
/// statement of migration 0049, with the same error kind.
#[tokio::test]
async fn the_database_itself_refuses_rows_that_name_nothing() {
    on_each_test_db(|db| async move {
        let storage = db.storage.as_ref();
        demo::load(storage).await.unwrap();
        demo::load_people(storage, d("2026-12-05")).await.unwrap();
        let execute = |sql: String| {
            let db = &db;
            async move { yibao_tests::execute_raw(db, &sql).await }
        };
        let unpaid = "SELECT id_number, payable_id, amount_fen FROM payables WHERE region_code = '320600' \
                      AND fee_year = 2027 AND status = 'unpaid' AND amount_fen > 0 ORDER BY payable_id LIMIT 2";
        let rows: Vec<(String, String, i64)> = match (&db.sqlite, &db.postgres) {
            (Some(lite), _) => sqlx::query_as(unpaid).fetch_all(lite.pool()).await.unwrap(),
            (_, Some(pg)) => sqlx::query_as(unpaid).fetch_all(pg.pool()).await.unwrap(),
            _ => unreachable!(),
        };
        let (id, payable_id, _) = rows[0].clone();
        // The second is paid at a bank counter: a payment, its application and its receipt.
        let (paid_id, paid_amount) = (rows[1].1.clone(), rows[1].2);
        yibao_tests::add_channel(storage, "bank-fk", "bank_counter", "bank-fk-secret-0123456789")
            .await;
        let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 5, 2, 0, 0).unwrap();
        let (server, client) =
            yibao_tests::channel_at(&db, at, "bank-fk", "bank-fk-secret-0123456789").await;
        client
            .report_payment(&yibao_channel_client::types::ReportPaymentRequest {
                channel_txn_id: "FK-1".to_owned(),
                order_no: None,
                payable_ids: Some(vec![paid_id.clone()]),
                amount: paid_amount,
                paid_at: at.fixed_offset(),
            })
            .await
            .unwrap();
        drop(server);
        let stranger = make_id("110101", "19900307", 1);
        let payable_copy = |year: i32| {
            format!(
                "INSERT INTO payables (payable_id, region_code, fee_year, id_number, category, amount_fen, \
                 basic_fen, critical_illness_fen, long_term_care_fen, policy_amount_fen, status, payable_from, \
                 inputs, assessed_by) SELECT 'no-enrolment', region_code, {year}, id_number, category, amount_fen, \
                 basic_fen, critical_illness_fen, long_term_care_fen, policy_amount_fen, status, payable_from, \
                 inputs, assessed_by FROM payables WHERE region_code = '320600' AND payable_id = '{payable_id}'"
            )
        };
        let refused = [
            // Rows naming a region that is not registered.
            format!("INSERT INTO person_directory (id_number, region_code) VALUES ('{stranger}', '110100')"),
            // One such row among rows naming a registered region (PostgreSQL checks each region
            // a statement names once, migration 0056).
            format!(
                "INSERT INTO person_directory (id_number, region_code) VALUES ('{stranger}', '320600'), \
                 ('{}', '320600'), ('{}', '110100')",
                make_id("320602", "19900307", 2),
                make_id("320602", "19900307", 3)
            ),
            format!("INSERT INTO enrolment_claims (id_number, fee_year, region_code) VALUES ('{stranger}', 2027, '110100')"),
            format!("UPDATE enrolment_claims SET region_code = '110100' WHERE id_number = '{id}'"),
            // An enrolment of a person not on record, a payable of no enrolment.
            format!(
                "INSERT INTO enrolments (region_code, fee_year, id_number, status, covered_from, source) \
                 VALUES ('320600', 2027, '{stranger}', 'enrolled', '2027-01-01', 'api')"
            ),
            payable_copy(2099),
            // A payable moved to another enrolment that does not exist.
            format!("UPDATE payables SET fee_year = 2099 WHERE region_code = '320600' AND payable_id = '{payable_id}'"),
            // A person, enrolment or region that others name, deleted or given another key.
            format!("UPDATE persons SET id_number = '{stranger}' WHERE region_code = '320600' AND id_number = '{id}'"),
            format!("DELETE FROM persons WHERE region_code = '320600' AND id_number = '{id}'"),
            format!("DELETE FROM enrolments WHERE region_code = '320600' AND fee_year = 2027 AND id_number = '{id}'"),
            "DELETE FROM pooling_regions WHERE region_code = '320600'".to_owned(),
            // A payment of no channel; an application or receipt moved to a payable or receipt
            // code that does not exist; a paid payable, its channel or its receipt counter
            // deleted or given another key.
            "UPDATE payments SET channel_id = 'no-such-bank' WHERE channel_txn_id = 'FK-1'".to_owned(),
            format!("UPDATE payment_applications SET payable_id = 'no-such-payable' WHERE payable_id = '{paid_id}'"),
            format!("UPDATE receipts SET payable_id = 'no-such-payable' WHERE payable_id = '{paid_id}'"),
            format!("UPDATE receipts SET receipt_code = 'NO-SUCH-CODE' WHERE payable_id = '{paid_id}'"),
            format!("DELETE FROM payables WHERE region_code = '320600' AND payable_id = '{paid_id}'"),
            format!("UPDATE payables SET payable_id = 'another-id' WHERE region_code = '320600' AND payable_id = '{paid_id}'"),
            "DELETE FROM channels WHERE channel_id = 'bank-fk'".to_owned(),
            "UPDATE channels SET channel_id = 'bank-fk-2' WHERE channel_id = 'bank-fk'".to_owned(),
            "DELETE FROM receipt_counters WHERE region_code = '320600'".to_owned(),
        ];
        for sql in refused {
            let err = StorageError::from(execute(sql.clone()).await.unwrap_err());
            assert!(
                matches!(
                    err,
                    StorageError::Constraint {
                        kind: ConstraintKind::ForeignKey,
                        ..
                    }
                ),
                "{sql}: {err:?}"
            );
        }
        // The same rows naming what is there are taken: a payable of an enrolment on record
        // (its year's current one set aside first), a person's other columns changed.
        execute(format!(
            "UPDATE payables SET status = 'superseded' WHERE region_code = '320600' AND payable_id = '{payable_id}'"
        ))
        .await
        .unwrap();
        execute(payable_copy(2027)).await.unwrap();
        execute(format!(
            "UPDATE persons SET phone = '13800000000' WHERE region_code = '320600' AND id_number = '{id}'"
        ))
        .await
        .unwrap();
    })
    .await;
}

/// `yibao check` finds a person without their row in the person directory, which no constraint
/// ties to them, and names them by region and masked ID number; on a Citus cluster, where the
/// two tables lie on different nodes, it does not look.
#[tokio::test]
async fn the_check_finds_a_person_outside_the_directory() {
    on_each_test_db(|db| async move {
        let storage = db.storage.as_ref();
        demo::load(storage).await.unwrap();
        demo::load_people(storage, d("2026-12-05")).await.unwrap();
        let report = storage.check_invariants().await.unwrap();
        assert!(report.holds(), "{report:?}");
        let first =
            "SELECT id_number FROM persons WHERE region_code = '320600' ORDER BY id_number LIMIT 1";
        let (id, cluster): (String, bool) = match (&db.sqlite, &db.postgres) {
            (Some(lite), _) => (
                sqlx::query_scalar(first)
                    .fetch_one(lite.pool())
                    .await
                    .unwrap(),
                false,
            ),
            (_, Some(pg)) => (
                sqlx::query_scalar(first)
                    .fetch_one(pg.pool())
                    .await
                    .unwrap(),
                pg.is_citus().await.unwrap(),
            ),
            _ => unreachable!(),
        };
        yibao_tests::execute_raw(
            &db,
            &format!(
                "DELETE FROM person_directory WHERE region_code = '320600' AND id_number = '{id}'"
            ),
        )
        .await
        .unwrap();
        let report = storage.check_invariants().await.unwrap();
        if cluster {
            assert!(report.persons_outside_directory.is_empty());
            return;
        }
        let masked = yibao_domain::IdNumber::try_from(id.clone())
            .unwrap()
            .masked();
        assert_eq!(
            report.persons_outside_directory,
            vec![format!("320600 {masked}")]
        );
        assert!(!report.holds());
        assert!(!report.persons_outside_directory[0].contains(&id));
    })
    .await;
}

/// A database migrated on one PostgreSQL, then moved to a Citus cluster (docs/operations.md:
/// `pg_dump`, then `yibao migrate` on the coordinator), has the nine foreign keys migration 0049
/// checks per statement declared again before its tables are placed
/// (`PostgresStorage::distribute`), since those checks cannot run on shards. The step itself, on
/// one PostgreSQL: the foreign keys are back and refuse as before, and the people's paths run.
#[tokio::test]
async fn the_checks_per_statement_become_foreign_keys_again_for_a_cluster() {
    on_each_test_db(|db| async move {
        let Some(pg) = db.postgres.clone() else {
            return;
        };
        let cluster = pg.is_citus().await.unwrap();
        // A cluster never had them; one PostgreSQL has them until the step.
        assert_eq!(pg.declare_checked_foreign_keys().await.unwrap(), !cluster);
        assert!(!pg.declare_checked_foreign_keys().await.unwrap());
        let declared: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND conname IN \
             ('persons_region_code_fkey', 'person_directory_region_code_fkey', \
              'enrolment_claims_region_code_fkey', 'enrolments_region_code_id_number_fkey', \
              'payables_region_code_fee_year_id_number_fkey', 'payments_channel_id_fkey', \
              'payment_applications_payable_id_fkey', 'receipts_payable_id_fkey', \
              'receipts_receipt_code_fkey')",
        )
        .fetch_one(pg.pool())
        .await
        .unwrap();
        assert_eq!(declared, 9);
        let storage = db.storage.as_ref();
        demo::load(storage).await.unwrap();
        let people = demo::load_people(storage, d("2026-12-05")).await.unwrap();
        assert!(people.payables_created > 0);
        let err = sqlx::query(
            "INSERT INTO person_directory (id_number, region_code) VALUES ('110101199003070011', '110100')",
        )
        .execute(pg.pool())
        .await
        .unwrap_err();
        assert!(
            matches!(
                StorageError::from(err),
                StorageError::Constraint {
                    kind: ConstraintKind::ForeignKey,
                    ..
                }
            ),
            "refused by the declared foreign key"
        );
    })
    .await;
}

/// A database of an earlier version never started by one that gives text columns byte order,
/// with a view an operator made over a key column: migration 0049 changes nothing and the
/// foreign keys stay declared (a check comparing a "C" column with an index under the database's
/// collation could not use the index); without the view it checks them per statement.
#[tokio::test]
async fn a_view_over_a_key_column_keeps_the_declared_foreign_keys() {
    on_each_test_db(|db| async move {
        let Some(pg) = db.postgres.clone() else {
            return;
        };
        if pg.is_citus().await.unwrap() {
            return;
        }
        for with_view in [true, false] {
            let old = yibao_tests::fresh_postgres_migrated_to(48).await;
            let before = old.db.postgres.clone().expect("a PostgreSQL database");
            if with_view {
                sqlx::query(
                    "CREATE VIEW station_people AS SELECT region_code, station_code FROM persons",
                )
                .execute(before.pool())
                .await
                .unwrap();
            }
            before.pool().close().await;
            let upgraded = yibao_storage_postgres::PostgresStorage::connect(&old.db.url)
                .await
                .unwrap();
            let declared: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND conname IN \
                 ('persons_region_code_fkey', 'enrolments_region_code_id_number_fkey', \
                  'payables_region_code_fee_year_id_number_fkey', 'receipts_payable_id_fkey')",
            )
            .fetch_one(upgraded.pool())
            .await
            .unwrap();
            assert_eq!(declared, if with_view { 4 } else { 0 }, "view: {with_view}");
            upgraded.pool().close().await;
            old.cleanup().await;
        }
    })
    .await;
}

/// On PostgreSQL every text column compares its bytes (collation "C",
/// `PostgresStorage::compare_text_by_bytes`), whatever the database's own collation, and a
/// column a migration adds follows at the next start; a view over it holds the change back
/// without stopping the start. A Citus cluster placed before keeps its database's collation.
#[tokio::test]
async fn postgres_text_columns_compare_bytes() {
    on_each_test_db(|db| async move {
        let Some(pg) = db.postgres.clone() else {
            return;
        };
        if pg.is_citus().await.unwrap() {
            return;
        }
        let not_bytes = || async {
            sqlx::query_scalar::<_, String>(
                "SELECT c.relname || '.' || a.attname FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid JOIN pg_collation k ON k.oid = a.attcollation \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
                   AND c.relname <> '_sqlx_migrations' AND a.attnum > 0 AND NOT a.attisdropped \
                   AND a.atttypid = 'text'::regtype AND k.collname <> 'C' ORDER BY 1",
            )
            .fetch_all(pg.pool())
            .await
            .unwrap()
        };
        assert_eq!(not_bytes().await, Vec::<String>::new());
        // A column added since (as by a later migration) follows when the storage opens again.
        sqlx::query("ALTER TABLE persons ADD COLUMN later_note TEXT")
            .execute(pg.pool())
            .await
            .unwrap();
        assert_eq!(not_bytes().await, vec!["persons.later_note".to_owned()]);
        // A view an operator made over the column stops the change, not the start.
        sqlx::query("CREATE VIEW later_notes AS SELECT later_note FROM persons")
            .execute(pg.pool())
            .await
            .unwrap();
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let again = yibao::storage::open_storage(&url).await.unwrap();
        assert!(again.list_regions().await.is_ok());
        assert_eq!(not_bytes().await, vec!["persons.later_note".to_owned()]);
        sqlx::query("DROP VIEW later_notes")
            .execute(pg.pool())
            .await
            .unwrap();
        let _again = yibao::storage::open_storage(&url).await.unwrap();
        assert_eq!(not_bytes().await, Vec::<String>::new());
    })
    .await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_with_foreign_keys() {
    let db = yibao_tests::fresh_sqlite().await;
    let pool = db.db.sqlite.as_ref().unwrap().pool();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(timeout >= 1000, "busy_timeout {timeout}");
    db.cleanup().await;
}

#[tokio::test]
async fn migrations_run_again_on_an_existing_database() {
    on_each_test_db(|db| async move {
        db.storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        let again =
            yibao::storage::open_storage(&yibao_storage::DatabaseUrl::parse(&db.url).unwrap())
                .await
                .unwrap();
        assert_eq!(again.list_regions().await.unwrap().len(), 1);
        assert_eq!(again.backend(), db.backend);
    })
    .await;
}

#[tokio::test]
async fn the_demo_keeps_a_window_open_whatever_the_date() {
    on_each_backend(|storage| async move {
        demo::load(storage.as_ref()).await.unwrap();
        for day in ["2026-11-22", "2027-03-15", "2028-10-01"] {
            let today = d(day);
            demo::ensure_open_policies(storage.as_ref(), today)
                .await
                .unwrap();
            for (code, _) in demo::REGIONS {
                let policies = storage
                    .list_fee_policies(RegionCode::parse(code).unwrap())
                    .await
                    .unwrap();
                assert!(
                    yibao_domain::enrolment_fee_year(&policies, today)
                        .is_some_and(|p| p.window().contains(today)),
                    "{code} on {day}"
                );
            }
        }
        // The seed document is never touched.
        let seed = storage
            .get_fee_policy(
                RegionCode::parse("320600").unwrap(),
                FeeYear::new(2021).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(seed.unwrap(), seed_policy());
    })
    .await;
}

/// Rejection files: kept under (region, import id), replaced on the same key, found only under
/// their own region, refused past their size bound, pruned oldest first within a bounded batch.
#[tokio::test]
async fn rejection_files_are_kept_by_region_bounded_and_pruned() {
    use yibao_storage::records::{CENTRE_SCOPE, MAX_REJECTION_FILE_BYTES};
    use yibao_storage::RejectionFile;
    on_each_backend(|storage| async move {
        let file = |region: &str, id: &str, at: i64, content: String| RejectionFile {
            region: region.to_owned(),
            import_id: id.to_owned(),
            station_code: Some("ST-01".to_owned()),
            uploaded_by: "clerk".to_owned(),
            created_at: at,
            file_name: "名册.csv".to_owned(),
            rows_kept: 1,
            content,
        };
        let first = file("320600", "imp1", 100, "\u{feff}行号\n2\n".to_owned());
        storage.put_rejection_file(&first).await.unwrap();
        storage
            .put_rejection_file(&file(CENTRE_SCOPE, "imp1", 200, "centre".to_owned()))
            .await
            .unwrap();
        assert_eq!(
            storage.get_rejection_file("320600", "imp1").await.unwrap(),
            Some(first.clone())
        );
        assert!(storage
            .get_rejection_file("320500", "imp1")
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            storage
                .get_rejection_file(CENTRE_SCOPE, "imp1")
                .await
                .unwrap()
                .unwrap()
                .content,
            "centre"
        );
        // The same key again replaces it.
        let replaced = file("320600", "imp1", 150, "again".to_owned());
        storage.put_rejection_file(&replaced).await.unwrap();
        assert_eq!(
            storage.get_rejection_file("320600", "imp1").await.unwrap(),
            Some(replaced)
        );
        // Past the bound: a constraint, nothing kept.
        let huge = file(
            "320600",
            "imp2",
            100,
            "x".repeat(MAX_REJECTION_FILE_BYTES + 1),
        );
        assert!(matches!(
            storage.put_rejection_file(&huge).await,
            Err(StorageError::Constraint {
                kind: ConstraintKind::Check,
                ..
            })
        ));
        assert_eq!(storage.prune_rejection_files(150).await.unwrap(), 0);
        assert_eq!(storage.prune_rejection_files(151).await.unwrap(), 1);
        assert_eq!(storage.prune_rejection_files(1_000).await.unwrap(), 1);
        assert!(storage
            .get_rejection_file(CENTRE_SCOPE, "imp1")
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

/// The public enrolment form's stations: those a region's persons are registered at, in order,
/// each once, none from another region, none for a region without persons.
#[tokio::test]
async fn a_regions_stations_are_those_its_persons_are_registered_at() {
    on_each_backend(|storage| async move {
        demo::load(storage.as_ref()).await.unwrap();
        let applications = storage.enrolment_applications();
        assert!(applications.stations_of("320600").await.unwrap().is_empty());
        demo::load_people(storage.as_ref(), d("2026-11-02"))
            .await
            .unwrap();
        for region in ["320600", "460100"] {
            assert_eq!(
                applications.stations_of(region).await.unwrap(),
                ["ST-01", "ST-02", "ST-03"],
                "{region}"
            );
        }
        assert!(applications.stations_of("110100").await.unwrap().is_empty());
    })
    .await;
}

/// Reminders are queued 500 to a statement: a round of 1 001 after one that queued 300 of them
/// queues the other 701, each once and with its own message, whatever the round's new message
/// numbers; the round again queues nothing.
#[tokio::test]
async fn a_large_round_of_reminders_queues_each_new_one_once_with_its_message() {
    use yibao_storage::citizen_accounts::NewReminder;
    on_each_backend(|storage| async move {
        demo::load(storage.as_ref()).await.unwrap();
        let accounts = storage.citizen_accounts();
        let round = |name: &str| -> Vec<NewReminder> {
            (0..1001)
                .map(|i| NewReminder {
                    message_id: format!("{name}-{i:05}"),
                    payable_id: format!("p-{i:05}"),
                    phone: "13800138000".to_owned(),
                    body: format!("提醒 {name} {i}"),
                })
                .collect()
        };
        let now = 1_800_000_000;
        let queue = |reminders: Vec<NewReminder>| async move {
            accounts
                .queue_reminders("320600", 2027, 1, now, now + 86_400, &reminders)
                .await
                .unwrap()
        };
        let mut first = round("A");
        first.truncate(300);
        assert_eq!(queue(first).await, 300);
        assert_eq!(queue(round("B")).await, 701);
        assert_eq!(queue(round("C")).await, 0);
        let counts = accounts.reminder_counts("320600", 2027).await.unwrap();
        assert_eq!(counts.queued, 1001);
        let mut due: Vec<(String, String)> = accounts
            .due_messages(now, 5000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.message_id, m.body))
            .collect();
        due.sort();
        let mut expected: Vec<(String, String)> = (0..1001)
            .map(|i| {
                let name = if i < 300 { "A" } else { "B" };
                (format!("{name}-{i:05}"), format!("提醒 {name} {i}"))
            })
            .collect();
        expected.sort();
        assert_eq!(due, expected);
    })
    .await;
}

/// The unpaid list read a page at a time is the owing of `standing` (the same people, the same
/// order, the same count and amount), and carries each person's latest follow-up.
#[tokio::test]
async fn the_unpaid_pages_are_the_owing_of_the_standing_list() {
    use yibao_domain::unpaid::NoticeMethod;
    use yibao_domain::StationCode;
    use yibao_storage::console_reads::{UnpaidBatchQuery, UnpaidCursor};
    use yibao_storage::records::{standing_owes, NewFollowUp};
    on_each_backend(|storage| async move {
        let today = d("2026-11-02");
        demo::load(storage.as_ref()).await.unwrap();
        demo::load_people(storage.as_ref(), today).await.unwrap();
        let region = RegionCode::parse("320600").unwrap();
        let year = FeeYear::new(2027).unwrap();
        // Three people of no station, who come first in the pages, the listing and the export
        // (the demo's all have one).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut csv = String::from("姓名,身份证号码,参保地区\n");
        for i in 0..3 {
            csv.push_str(&format!(
                "赵六,{},320600\n",
                make_id("320602", "1990-01-01", 700 + i)
            ));
        }
        std::fs::write(&path, csv).unwrap();
        let imported = yibao_server::services::roster_import::import_roster(
            storage.as_ref(),
            &path,
            "r.csv",
            &yibao_server::services::roster_import::ImportScope::unrestricted("test"),
            today,
            Some(year),
            yibao_roster_file::Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(imported.summary.enrolled, 3, "{:?}", imported.rejections);
        for station in [None, Some(StationCode::parse("ST-01").unwrap())] {
            let owing: Vec<_> = storage
                .standing(region, year, station.as_ref(), 1_000_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| standing_owes(&r.standing))
                .collect();
            assert!(!owing.is_empty());
            // The collection progress counts the same people and amounts (the console's totals).
            let progress = storage
                .collection_progress(Some(region), year, station.as_ref())
                .await
                .unwrap();
            let (persons, owed) = progress
                .iter()
                .filter(|r| standing_owes(r.standing))
                .fold((0, 0), |(n, fen), r| (n + r.persons, fen + r.owed_fen));
            assert_eq!(usize::try_from(persons).unwrap(), owing.len());
            assert_eq!(owed, owing.iter().filter_map(|r| r.amount_fen).sum::<i64>());
            let mut paged = Vec::new();
            let mut offset = 0;
            loop {
                let page = storage
                    .unpaid_page(region, year, station.as_ref(), offset, 97)
                    .await
                    .unwrap();
                offset += page.rows.len();
                // Another page follows exactly while people are left.
                assert_eq!(page.more, offset < owing.len(), "after {offset}");
                paged.extend(page.rows.into_iter().map(|r| r.row));
                if !page.more {
                    break;
                }
            }
            assert_eq!(paged, owing);
            // A page past the end is empty and says so.
            let past = storage
                .unpaid_page(region, year, station.as_ref(), owing.len(), 97)
                .await
                .unwrap();
            assert!(past.rows.is_empty() && !past.more);
            if station.is_none() {
                assert_eq!(owing.iter().filter(|r| r.station_code.is_none()).count(), 3);
            }
            // The export's keyset batches hold the same people (no station first, then by
            // station and ID number), none twice, in batches of 1, 2 (the third person of no
            // station and the first of a station in one batch), 3 (a batch ending with the
            // last of no station) and 97.
            for limit in [1, 2, 3, 97] {
                let mut batched = Vec::new();
                let mut cursor = UnpaidCursor::default();
                loop {
                    let batch = storage
                        .unpaid_after(&UnpaidBatchQuery {
                            region: region.as_str(),
                            fee_year: 2027,
                            station: station.as_ref().map(StationCode::as_str),
                            cursor: &cursor,
                            limit,
                        })
                        .await
                        .unwrap();
                    if let Some(last) = batch.last() {
                        cursor = UnpaidCursor::after(last);
                    }
                    let end = batch.len() < limit;
                    batched.extend(batch.into_iter().map(|r| r.row));
                    if end {
                        break;
                    }
                }
                let key = |r: &yibao_storage::StandingRow| {
                    (r.station_code.clone().unwrap_or_default(), r.id_number)
                };
                assert!(batched.windows(2).all(|w| key(&w[0]) < key(&w[1])));
                let mut expected = owing.clone();
                expected.sort_by_key(key);
                assert_eq!(batched, expected, "batches of {limit}");
                // In the order of the pages and the listing: the people without a station
                // first on both backends (PostgreSQL once put them last there).
                assert_eq!(batched, owing, "batches of {limit} in the pages' order");
            }
        }
        // The latest follow-up (the highest number) is the one carried.
        let first = storage
            .unpaid_page(region, year, None, 0, 1)
            .await
            .unwrap()
            .rows
            .remove(0);
        assert_eq!(first.latest, None);
        let mut follow_up = NewFollowUp {
            region,
            fee_year: year,
            id_number: first.row.id_number,
            station_code: first.row.station_code.clone(),
            told_on: d("2026-11-01"),
            told_how: NoticeMethod::Phone,
            signed_scanned: false,
            reason: "外出务工".into(),
            note: None,
            recorded_by: "clerk".into(),
            recorded_at: 1,
        };
        assert_eq!(storage.add_follow_up(&follow_up).await.unwrap(), 1);
        follow_up.reason = "参军".into();
        follow_up.told_how = NoticeMethod::WeChat;
        follow_up.signed_scanned = true;
        assert_eq!(storage.add_follow_up(&follow_up).await.unwrap(), 2);
        let latest = storage
            .unpaid_page(region, year, None, 0, 1)
            .await
            .unwrap()
            .rows
            .remove(0)
            .latest
            .unwrap();
        assert_eq!(latest.reason, "参军");
        let exported = storage
            .unpaid_after(&UnpaidBatchQuery {
                region: region.as_str(),
                fee_year: 2027,
                station: None,
                cursor: &UnpaidCursor::default(),
                limit: 5_000,
            })
            .await
            .unwrap();
        let same = exported
            .iter()
            .find(|r| r.row.id_number == first.row.id_number)
            .unwrap();
        assert_eq!(same.latest.as_ref(), Some(&latest));
        assert_eq!(latest.told_how, NoticeMethod::WeChat);
        assert!(latest.signed_scanned);
        assert_eq!(latest.told_on, d("2026-11-01"));
        let history = storage
            .follow_ups(region, year, &first.row.id_number)
            .await
            .unwrap();
        assert_eq!(history.iter().map(|h| h.seq).collect::<Vec<_>>(), [2, 1]);
        // Someone not stored in the region: the foreign key refuses it.
        follow_up.id_number = yibao_domain::IdNumber::try_from("11010519491231002X".to_owned())
            .expect("a well-formed ID number");
        assert!(matches!(
            storage.add_follow_up(&follow_up).await,
            Err(StorageError::Constraint { .. })
        ));
    })
    .await;
}

/// 未参保名单: once per region, fee year and station (the key refuses a second), listed by
/// station without their lines.
#[tokio::test]
async fn an_uninsured_list_is_submitted_once_per_station_and_year() {
    use yibao_storage::records::UninsuredSubmission;
    on_each_backend(|storage| async move {
        storage
            .upsert_region(&region("320600", "南通市"))
            .await
            .unwrap();
        let region = RegionCode::parse("320600").unwrap();
        let year = FeeYear::new(2027).unwrap();
        let submission = |station: &str| UninsuredSubmission {
            region,
            fee_year: year,
            station_code: station.to_owned(),
            submitted_by: "clerk".into(),
            submitted_at: 10,
            persons: 2,
            with_reason: 1,
            lines: "[{\"name\":\"王芳\"}]".into(),
        };
        storage
            .submit_uninsured(&submission("ST-02"))
            .await
            .unwrap();
        storage
            .submit_uninsured(&submission("ST-01"))
            .await
            .unwrap();
        assert!(matches!(
            storage.submit_uninsured(&submission("ST-01")).await,
            Err(StorageError::Constraint {
                kind: ConstraintKind::Unique,
                ..
            })
        ));
        let listed = storage.uninsured_submissions(region, year).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|s| s.station_code.as_str())
                .collect::<Vec<_>>(),
            ["ST-01", "ST-02"]
        );
        assert!(listed[0].lines.is_empty());
        assert_eq!(listed[0].persons, 2);
        assert!(storage
            .uninsured_submissions(region, FeeYear::new(2028).unwrap())
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn audit_entries_are_filtered_over_the_whole_log_and_paged_by_key() {
    on_each_backend(|storage| async move {
        use yibao_storage::{AuditEntry, AuditFilter};
        let entry = |actor: &str, action: &str, target: String| AuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            region: None,
            target,
            detail: serde_json::json!({}),
        };
        // The entry looked for is the oldest, under 1 200 newer ones of others.
        storage
            .append_audit(&entry("old-clerk", "read.person_reveal", "first".into()))
            .await
            .unwrap();
        for i in 0..1200 {
            storage
                .append_audit(&entry("busy", "staff.login", format!("n{i}")))
                .await
                .unwrap();
        }
        storage
            .append_audit(&entry("old-clerk", "reading.other", "second".into()))
            .await
            .unwrap();
        let by_actor = storage
            .audit_entries(
                &AuditFilter {
                    actor: Some("old-clerk".into()),
                    ..AuditFilter::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(
            by_actor
                .iter()
                .map(|r| r.entry.target.as_str())
                .collect::<Vec<_>>(),
            ["second", "first"]
        );
        // A prefix is a prefix: `read.` is not `reading.`, and `_` is no wildcard.
        let reads = storage
            .audit_entries(
                &AuditFilter {
                    action_prefix: Some("read.".into()),
                    ..AuditFilter::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].entry.action, "read.person_reveal");
        let wildcard = storage
            .audit_entries(
                &AuditFilter {
                    action_prefix: Some("read.person_r%".into()),
                    ..AuditFilter::default()
                },
                10,
            )
            .await
            .unwrap();
        assert!(wildcard.is_empty());
        // Keyset pages: newest first, no entry twice, none left out.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = storage
                .audit_entries(
                    &AuditFilter {
                        actor: Some("busy".into()),
                        before_id: before,
                        ..AuditFilter::default()
                    },
                    500,
                )
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|r| r.audit_id);
            seen.extend(page.into_iter().map(|r| r.audit_id));
        }
        assert_eq!(seen.len(), 1200);
        assert!(seen.windows(2).all(|w| w[0] > w[1]));
        // Days (as stored, UTC): today's entries, none in a day long past or to come.
        let today = chrono::Utc::now().date_naive();
        let days = |from: NaiveDate, to: NaiveDate| AuditFilter {
            actor: Some("old-clerk".into()),
            from_day: Some(from),
            to_day: Some(to),
            ..AuditFilter::default()
        };
        assert_eq!(
            storage
                .audit_entries(
                    &days(today.pred_opt().unwrap(), today.succ_opt().unwrap()),
                    10
                )
                .await
                .unwrap()
                .len(),
            2
        );
        let past = NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
        assert!(storage
            .audit_entries(&days(past, past), 10)
            .await
            .unwrap()
            .is_empty());
        let future = NaiveDate::from_ymd_opt(2099, 1, 1).unwrap();
        assert!(storage
            .audit_entries(&days(future, future), 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            storage
                .audit_entries(&AuditFilter::default(), 5)
                .await
                .unwrap()
                .len(),
            5
        );
    })
    .await;
}

#[tokio::test]
async fn a_channels_rate_and_regions_are_replaced_together() {
    on_each_backend(|storage| async move {
        demo::load(storage.as_ref()).await.unwrap();
        yibao::operator::channel_add(
            storage.as_ref(),
            None,
            "icbc-nantong",
            "bank_counter",
            &["320600".to_owned()],
            10,
            "conformance-secret-0123456789".to_owned(),
        )
        .await
        .unwrap();
        let before = storage.get_channel("icbc-nantong").await.unwrap().unwrap();
        assert_eq!(before.regions, ["320600"]);
        let regions: Vec<String> = storage
            .list_regions()
            .await
            .unwrap()
            .iter()
            .map(|r| r.code().to_string())
            .take(2)
            .collect();
        assert!(storage
            .update_channel("icbc-nantong", 7, &regions)
            .await
            .unwrap());
        let after = storage.get_channel("icbc-nantong").await.unwrap().unwrap();
        assert_eq!(
            (after.rate_per_second, after.regions.clone()),
            (7, regions.clone())
        );
        assert_eq!(after.secret_sealed, before.secret_sealed);
        assert!(!storage.update_channel("nope", 7, &regions).await.unwrap());
    })
    .await;
}

/// Channels are kept in the process (every channel request reads its own): a change through the
/// same storage is seen at once, a change by another process on the same database (a second
/// server, `yibao channel disable` at a terminal) within `CHANNEL_CACHE_TTL`, and a made-up channel
/// created elsewhere likewise.
#[tokio::test]
async fn a_channel_change_is_seen_at_once_here_and_within_the_cache_ttl_elsewhere() {
    on_each_test_db(|db| async move {
        let here = db.storage.clone();
        demo::load(here.as_ref()).await.unwrap();
        // Another process on the same database.
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let elsewhere = yibao::storage::open_storage(&url).await.unwrap();
        let add = |id: &'static str| {
            let here = here.clone();
            async move {
                yibao_tests::add_channel(
                    here.as_ref(),
                    id,
                    "bank_counter",
                    "conformance-secret-0123456789",
                )
                .await
            }
        };
        // Whether the channel is enabled, as this storage answers; `None`: unknown.
        let enabled = |storage: &std::sync::Arc<dyn yibao_storage::Storage>, id: &'static str| {
            let storage = storage.clone();
            async move { storage.get_channel(id).await.unwrap().map(|c| c.enabled) }
        };
        add("icbc-nantong").await;
        assert_eq!(enabled(&elsewhere, "icbc-nantong").await, Some(true));
        assert_eq!(enabled(&elsewhere, "boc-nantong").await, None);
        assert_eq!(enabled(&here, "boc-nantong").await, None);

        assert!(here
            .set_channel_enabled("icbc-nantong", false)
            .await
            .unwrap());
        add("boc-nantong").await;
        // Here at once: the change forgot what was read.
        assert_eq!(enabled(&here, "icbc-nantong").await, Some(false));
        assert_eq!(enabled(&here, "boc-nantong").await, Some(true));
        // Elsewhere what was read stands until it is CHANNEL_CACHE_TTL old, then the change shows.
        assert_eq!(enabled(&elsewhere, "icbc-nantong").await, Some(true));
        tokio::time::sleep(
            yibao_storage::memo::CHANNEL_CACHE_TTL + std::time::Duration::from_millis(100),
        )
        .await;
        assert_eq!(enabled(&elsewhere, "icbc-nantong").await, Some(false));
        assert_eq!(enabled(&elsewhere, "boc-nantong").await, Some(true));
        // A rotated secret, here at once.
        assert!(here
            .rotate_channel_secret("boc-nantong", "plain:0102", 1)
            .await
            .unwrap());
        assert_eq!(
            here.get_channel("boc-nantong")
                .await
                .unwrap()
                .unwrap()
                .secret_sealed,
            "plain:0102"
        );
    })
    .await;
}

/// Nonces recorded in a group: each answers as it would alone, a repeat inside the group included,
/// and what a group recorded is a replay for everyone after, another process too.
#[tokio::test]
async fn nonces_recorded_together_answer_each_as_alone() {
    on_each_test_db(|db| async move {
        let storage = db.storage.clone();
        assert!(storage
            .remember_nonce("bank", "n-before", 100)
            .await
            .unwrap());
        let nonces: Vec<String> = ["n-1", "n-before", "n-2", "n-1", "n-3"]
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        assert_eq!(
            storage.remember_nonces("bank", &nonces, 101).await.unwrap(),
            [true, false, true, false, true]
        );
        // Another channel's nonces are its own.
        assert_eq!(
            storage
                .remember_nonces("wechat", &nonces[..2], 101)
                .await
                .unwrap(),
            [true, true]
        );
        assert!(storage
            .remember_nonces("bank", &[], 101)
            .await
            .unwrap()
            .is_empty());
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let elsewhere = yibao::storage::open_storage(&url).await.unwrap();
        assert!(!elsewhere.remember_nonce("bank", "n-2", 102).await.unwrap());
        // Swept like any nonce.
        assert_eq!(storage.sweep_nonces(101).await.unwrap(), 1);
        let too_many: Vec<String> = (0..=yibao_storage::collection::MAX_NONCE_BATCH)
            .map(|i| format!("m-{i}"))
            .collect();
        assert!(storage
            .remember_nonces("bank", &too_many, 103)
            .await
            .is_err());
        assert!(
            storage.remember_nonce("bank", "m-0", 103).await.unwrap(),
            "nothing half-written"
        );
    })
    .await;
}

/// Delivered outbox events go after their retention, oldest first and a bounded batch at a time;
/// undelivered ones (still being retried, or dead letters) stay however old, so no posting to the
/// agency is ever lost, and they stay due.
#[tokio::test]
async fn delivered_outbox_events_are_pruned_in_batches_and_undelivered_ones_kept() {
    on_each_test_db(|db| async move {
        // (event, delivered at, dead)
        let mut rows: Vec<(String, Option<i64>, bool)> = Vec::new();
        for i in 0..5 {
            rows.push((format!("EVOLD{i}"), Some(1_000_000 + i), false));
        }
        for i in 0..2 {
            rows.push((format!("EVNEW{i}"), Some(1_800_000_000 + i), false));
        }
        rows.push(("EVPENDING0".into(), None, false));
        rows.push(("EVPENDING1".into(), None, false));
        rows.push(("EVDEAD".into(), None, true));
        let insert = "INSERT INTO outbox (event_id, region_code, kind, payable_id, payload, created_at, \
                      next_attempt_at, delivered_at, dead) VALUES ($1, '320600', 'payment_applied', $2, '{}', 1000, 1000, $3, $4)";
        for (event, delivered_at, dead) in &rows {
            let q = |event: &str| format!("p320600R{event}");
            match db.backend {
                yibao_storage::Backend::Sqlite => {
                    sqlx::query(insert)
                        .bind(event)
                        .bind(q(event))
                        .bind(delivered_at)
                        .bind(dead)
                        .execute(db.sqlite.as_ref().unwrap().pool())
                        .await
                        .unwrap();
                }
                yibao_storage::Backend::Postgres => {
                    sqlx::query(insert)
                        .bind(event)
                        .bind(q(event))
                        .bind(delivered_at)
                        .bind(dead)
                        .execute(db.postgres.as_ref().unwrap().pool())
                        .await
                        .unwrap();
                }
            }
        }
        let s = db.storage.as_ref();
        let before = 1_700_000_000;
        assert_eq!(s.prune_delivered_events(before, 3).await.unwrap(), 3);
        assert_eq!(s.prune_delivered_events(before, 3).await.unwrap(), 2);
        assert_eq!(s.prune_delivered_events(before, 3).await.unwrap(), 0);
        // The pending ones are still due, oldest first; the dead letter is still counted.
        let due: Vec<String> = s
            .due_events(2_000_000_000, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(due, ["EVPENDING0", "EVPENDING1"]);
        // Everything undelivered survives a retention that would take every delivered event.
        assert_eq!(
            s.prune_delivered_events(2_000_000_000, 100).await.unwrap(),
            2
        );
        let left = s.unposted_events(2_000_000_000, None, 100).await.unwrap();
        let mut left: Vec<String> = left.into_iter().map(|e| e.event_id).collect();
        left.sort();
        assert_eq!(left, ["EVDEAD", "EVPENDING0", "EVPENDING1"]);
    })
    .await;
}

/// A search by ID number asks the person directory first only where regions live on different
/// nodes (a Citus coordinator); on one PostgreSQL or SQLite the payables' index finds the person
/// in the search's one statement.
#[tokio::test]
async fn a_search_asks_the_person_directory_only_on_a_cluster() {
    use yibao_storage::prelude::Dialect;
    on_each_test_db(|db| async move {
        // Searches are gathered into one statement (`search_persons`) only where they can be.
        let cluster = match &db.postgres {
            Some(pg) => pg.is_citus().await.unwrap(),
            None => false,
        };
        if let Some(pg) = &db.postgres {
            assert_eq!(pg.regions_on_nodes().await.unwrap(), cluster);
        }
        if let Some(sqlite) = &db.sqlite {
            assert!(!sqlite.regions_on_nodes().await.unwrap());
        }
        assert_eq!(db.storage.gathers_searches().await.unwrap(), !cluster);
    })
    .await;
}

/// A search by ID number in the regions a channel serves reads the index led by the ID number,
/// whether or not the tables have statistics (issue 14). Without them PostgreSQL used to take the
/// unique index led by the region and read every payable of the region.
#[tokio::test]
async fn a_search_by_id_number_reads_the_persons_index_without_statistics() {
    on_each_test_db(|db| async move {
        demo::load(db.storage.as_ref()).await.unwrap();
        let search = "SELECT y.payable_id FROM payables y WHERE y.id_number = '110101199003070011' \
                      AND y.status NOT IN ('superseded', 'cancelled') \
                      AND y.region_code IN ('110100', '320600')";
        let receipts = "SELECT r.receipt_number FROM receipts r \
                        WHERE r.id_number = '110101199003070011' AND r.region_code IN ('110100')";
        if let Some(pg) = &db.postgres {
            if pg.is_citus().await.unwrap() {
                return;
            }
            // As a table freshly loaded with autovacuum off: no statistics, no size.
            for statement in [
                "DELETE FROM pg_statistic WHERE starelid IN ('payables'::regclass, 'receipts'::regclass)",
                "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE relname IN ('payables', 'receipts')",
            ] {
                sqlx::query(statement).execute(pg.pool()).await.unwrap();
            }
            for (sql, index) in [
                (search, "payables_by_person_region"),
                (receipts, "receipts_by_person_region"),
            ] {
                let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {sql}"))
                    .fetch_all(pg.pool())
                    .await
                    .unwrap();
                let plan = plan.join("\n");
                assert!(plan.contains(index), "{plan}");
            }
        }
        if let Some(sqlite) = &db.sqlite {
            let _ = sqlx::query("DELETE FROM sqlite_stat1")
                .execute(sqlite.pool())
                .await;
            for (sql, index) in [
                (search, "payables_by_person_region"),
                (receipts, "receipts_by_person_region"),
            ] {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .fetch_all(sqlite.pool())
                        .await
                        .unwrap();
                let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
                assert!(plan.iter().any(|d| d.contains(index)), "{plan:?}");
            }
        }
    })
    .await;
}

/// The statistics of the tables a bulk change grows are taken from the rows as they are
/// (issue 14): a roster import refreshes its tables' once it has written a batch, an
/// assessment the payables', so that neither goes on planning with statistics taken when
/// the tables were nearly empty.
#[tokio::test]
async fn a_bulk_change_refreshes_the_statistics_of_the_tables_it_grows() {
    use yibao_storage::GrowingTables;
    on_each_test_db(|db| async move {
        let csv: String = ["吴一", "吴二", "吴三"].iter().zip(701..).fold(
            "姓名,身份证号码,参保地区\n".to_owned(),
            |csv, (name, seq)| {
                csv + &format!("{name},{},460100\n", make_id("460105", "1984-07-01", seq))
            },
        );
        haikou_2027(&db, &csv, "statistics-secret-0123456789").await;
        for tables in [GrowingTables::Enrolment, GrowingTables::Payables] {
            let names = tables.tables();
            if let Some(pg) = &db.postgres {
                let citus = pg.is_citus().await.unwrap();
                if !citus {
                    // As tables freshly loaded with autovacuum off: no statistics, no size.
                    sqlx::query(
                        "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE relname = ANY($1)",
                    )
                    .bind(names)
                    .execute(pg.pool())
                    .await
                    .unwrap();
                }
                db.storage.refresh_statistics_of(tables).await.unwrap();
                if citus {
                    // The coordinator's tables hold no rows; refreshing must still succeed.
                    continue;
                }
                for table in names {
                    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                        .fetch_one(pg.pool())
                        .await
                        .unwrap();
                    let counted: f32 =
                        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = $1")
                            .bind(table)
                            .fetch_one(pg.pool())
                            .await
                            .unwrap();
                    assert!(rows > 0, "the demo leaves rows in {table}");
                    assert_eq!(counted, rows as f32, "{table}");
                }
            }
            if let Some(sqlite) = &db.sqlite {
                sqlx::query("DELETE FROM sqlite_stat1")
                    .execute(sqlite.pool())
                    .await
                    .unwrap();
                db.storage.refresh_statistics_of(tables).await.unwrap();
                for table in names {
                    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                        .fetch_one(sqlite.pool())
                        .await
                        .unwrap();
                    let counted: Option<String> = sqlx::query_scalar(
                        "SELECT stat FROM sqlite_stat1 WHERE tbl = ? AND idx IS NOT NULL LIMIT 1",
                    )
                    .bind(table)
                    .fetch_optional(sqlite.pool())
                    .await
                    .unwrap();
                    // An index's statistics start with the rows it counted.
                    let counted = counted.unwrap_or_default();
                    assert_eq!(
                        counted.split(' ').next(),
                        Some(rows.to_string().as_str()),
                        "{table}: {counted}"
                    );
                }
            }
        }
    })
    .await;
}
