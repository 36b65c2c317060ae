//! Enrolment, roster import and assessment on both backends.

use std::sync::Arc;

use chrono::NaiveDate;
use yibao_domain::{FeeYear, IdNumber, RegionCode};
use yibao_roster_file::Limits;
use yibao_server::services::assessment::{assess_region, draft_payable, reassess_person};
use yibao_server::services::roster_import::{
    import_roster, rejections_csv, ImportReport, ImportScope,
};
use yibao_server::ErrorCode;
use yibao_storage::Storage;
use yibao_tests::{make_id, on_each_backend};

fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// 2020-11-02: inside 南通市's 2021 window (2020-11-01 to 2020-12-20).
fn today() -> NaiveDate {
    d("2020-11-02")
}

fn region(code: &str) -> RegionCode {
    RegionCode::parse(code).unwrap()
}

fn year(y: i64) -> FeeYear {
    FeeYear::new(y).unwrap()
}

fn id(text: &str) -> IdNumber {
    IdNumber::parse(text, d("2030-01-01")).unwrap().id_number
}

async fn setup(storage: &dyn Storage) {
    yibao::demo::load(storage).await.unwrap();
}

fn admin_scope() -> ImportScope {
    ImportScope::unrestricted("test")
}

async fn import_text(
    storage: &dyn Storage,
    name: &str,
    bytes: &[u8],
    on: NaiveDate,
) -> Result<ImportReport, yibao_server::ServiceError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    import_roster(
        storage,
        &path,
        name,
        &admin_scope(),
        on,
        None,
        Limits::default(),
        &|_| {},
    )
    .await
}

const HEADER: &str = "姓名,身份证号码,参保地区,人员类别,学校名称,户籍类型,居住证起始日期,职工医保,服务站,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额\n";

#[tokio::test]
async fn enrolment_rules_are_applied_and_refusals_recorded() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let adult = make_id("320602", "1980-01-01", 1);
        let employee = make_id("320602", "1981-01-01", 2);
        let permit_old = make_id("320602", "1982-01-01", 3);
        let permit_new = make_id("320602", "1983-01-01", 4);
        let student = make_id("320602", "2010-05-05", 5);
        let csv = format!(
            "{HEADER}张三,{adult},320600,,,,,,ST-01,,,,,\n\
             李四,{employee},320600,,,,,是,ST-01,,,,,\n\
             王五,{permit_old},320600,,,居住证,2020-08-02,,ST-02,,,,,\n\
             赵六,{permit_new},320600,,,居住证,2020-08-03,,ST-02,,,,,\n\
             钱七,{student},320600,在校学生,南通中学,,,,ST-03,,,,,\n"
        );
        let report = import_text(storage.as_ref(), "r.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        assert_eq!(report.summary.rows_read, 5);
        assert_eq!(report.summary.enrolled, 3);
        assert_eq!(report.summary.rejected, 2);
        let reasons: Vec<_> = report
            .rejections
            .iter()
            .map(|r| (r.row, r.column.as_str()))
            .collect();
        assert_eq!(reasons, vec![(3, "职工医保"), (5, "居住证起始日期")]);
        assert!(
            report.rejections[1].reason.contains("2020-11-03"),
            "{:?}",
            report.rejections[1]
        );

        let nantong = region("320600");
        let refused = storage
            .get_enrolment(nantong, year(2021), &id(&employee))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refused.status.code(), "refused");
        assert_eq!(refused.refusal_code.as_deref(), Some("EMPLOYEE_INSURED"));
        let ok = storage
            .get_enrolment(nantong, year(2021), &id(&adult))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ok.status.code(), "enrolled");
        assert_eq!(ok.covered_from, Some(d("2021-01-01")));
    })
    .await;
}

#[tokio::test]
async fn a_second_region_is_told_where_the_person_is_enrolled() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        // 海口市 2027 is open on 2026-11-22; put a 2027 window in 南通市 too (it has one in the demo).
        let on = d("2026-11-22");
        let person = make_id("460105", "1990-02-02", 7);
        let first = format!("{HEADER}孙八,{person},460100,,,,,,,,,,,\n");
        let r = import_text(storage.as_ref(), "a.csv", first.as_bytes(), on)
            .await
            .unwrap();
        assert_eq!(r.summary.enrolled, 1);
        let second = format!("{HEADER}孙八,{person},320600,,,,,,,,,,,\n");
        let r = import_text(storage.as_ref(), "b.csv", second.as_bytes(), on)
            .await
            .unwrap();
        assert_eq!(r.summary.enrolled, 0);
        assert_eq!(r.summary.rejected, 1);
        assert_eq!(
            r.rejections[0].reason,
            "该人员本缴费年度已在海南省的其他统筹区（46****）参保，不能重复参保"
        );
        // Importing the refused row again records nothing new and still reports it.
        let again = import_text(storage.as_ref(), "b.csv", second.as_bytes(), on)
            .await
            .unwrap();
        assert_eq!(again.summary.rejected, 1);
        assert_eq!(again.summary.unchanged, 1);
    })
    .await;
}

#[tokio::test]
async fn reimporting_the_same_file_changes_nothing() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let a = make_id("320602", "1970-03-03", 11);
        let b = make_id("320602", "1971-03-03", 12);
        let csv = format!("{HEADER}周九,{a},320600,,,,,,ST-01,,,,,\n吴十,{b},320600,,,,,,ST-01,低保,低保证,DB1,2021-06-30,\n");
        let first = import_text(storage.as_ref(), "same.csv", csv.as_bytes(), today()).await.unwrap();
        assert_eq!(first.summary.enrolled, 2);
        let history_before = storage.person_history(region("320600"), &id(&a)).await.unwrap();
        let second = import_text(storage.as_ref(), "same.csv", csv.as_bytes(), today()).await.unwrap();
        assert_eq!((second.summary.enrolled, second.summary.updated, second.summary.unchanged), (0, 0, 2));
        assert_eq!(storage.person_history(region("320600"), &id(&a)).await.unwrap().len(), history_before.len());
        // A changed row is an update with a new history version naming the source.
        let changed = csv.replace("周九", "周玖");
        let third = import_text(storage.as_ref(), "changed.csv", changed.as_bytes(), today()).await.unwrap();
        assert_eq!(third.summary.updated, 1);
        let history = storage.person_history(region("320600"), &id(&a)).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].version, 2);
        assert_eq!(history[1].source, "roster:changed.csv");
        assert_eq!(history[1].snapshot["name"], "周玖");
    })
    .await;
}

/// A roster one person longer than the backend's batch (2 000 on PostgreSQL, 1 000 on SQLite)
/// goes in as two batches, and comes in again changed as two batches of updates, which are
/// statements of 17 parameters a person (within PostgreSQL's 65 535 and SQLite's 32 766); the
/// storage refuses a batch longer than that, and nothing of it is written.
#[tokio::test]
async fn a_batch_of_the_most_persons_a_backend_takes_is_created_and_changed_whole() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let most = storage.backend().persons_per_batch();
        let ids: Vec<String> = (0..=most)
            .map(|i| {
                let born =
                    d("1970-01-01") + chrono::Days::new(u64::try_from(i / 900).expect("small"));
                let seq = u32::try_from(i % 900 + 1).expect("small");
                make_id("320602", &born.format("%Y-%m-%d").to_string(), seq)
            })
            .collect();
        let roster = |name: &str| {
            let mut csv = HEADER.to_owned();
            for id in &ids {
                csv.push_str(&format!("{name},{id},320600,,,,,,ST-01,,,,,\n"));
            }
            csv
        };
        // Created, then changed: every person of both batches, both times.
        for (file, name) in [("many.csv", "周九"), ("many2.csv", "周玖")] {
            let report = import_text(storage.as_ref(), file, roster(name).as_bytes(), today())
                .await
                .expect("imported");
            let written = if name == "周九" {
                report.summary.enrolled
            } else {
                report.summary.updated
            };
            assert_eq!(
                (written, report.summary.rejected),
                (most as u64 + 1, 0),
                "{file}"
            );
        }
        let last = storage
            .person_history(region("320600"), &id(&ids[most]))
            .await
            .expect("a history");
        assert_eq!(last.len(), 2);
        assert_eq!(last[1].snapshot["name"], "周玖");

        // One more than the storage takes in one call: refused whole.
        let header = yibao_domain::roster::RosterHeader::parse(&[
            "姓名".to_owned(),
            "身份证号码".to_owned(),
            "参保地区".to_owned(),
        ])
        .expect("a header");
        let too_many: Vec<yibao_storage::PersonUpsert> = (0..=most)
            .map(|i| yibao_storage::PersonUpsert {
                row_number: i + 2,
                person: yibao_domain::roster::parse_row(
                    &header,
                    &["周拾".to_owned(), ids[i].clone(), "320600".to_owned()],
                    today(),
                )
                .expect("a person"),
                enrolment: None,
                household: None,
            })
            .collect();
        let everyone = |_: RegionCode, _: Option<&yibao_domain::StationCode>| true;
        storage
            .upsert_persons_checked(
                &too_many,
                &yibao_storage::ChangeSource {
                    actor: "test".into(),
                    source: "roster:too-many.csv".into(),
                },
                &everyone,
            )
            .await
            .expect_err("more persons than a batch takes");
        let kept = storage
            .person_history(region("320600"), &id(&ids[0]))
            .await
            .expect("a history");
        assert_eq!(kept.len(), 2, "nothing of the refused batch is written");
    })
    .await;
}

#[tokio::test]
async fn a_malformed_roster_gets_a_precise_report_and_no_partial_garbage() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let good = make_id("320602", "1975-04-04", 21);
        let dup = make_id("320602", "1976-04-04", 22);
        let csv = format!(
            "{HEADER}好人,{good},320600,,,,,,,,,,,\n\
             坏号,320602197504040210,320600,,,,,,,,,,,\n\
             重复,{dup},320600,,,,,,,,,,,\n\
             重复,{dup},320600,,,,,,,,,,,\n\
             资助,{},320600,,,,,,,资助,资助证明,Z1,2021-12-31,12.345\n",
            make_id("320602", "1977-04-04", 23)
        );
        let report = import_text(storage.as_ref(), "bad.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        assert_eq!(report.summary.enrolled, 2, "{:?}", report.rejections);
        let rows: Vec<_> = report
            .rejections
            .iter()
            .map(|r| (r.row, r.column.as_str()))
            .collect();
        assert_eq!(
            rows,
            vec![(3, "身份证号码"), (5, "身份证号码"), (6, "资助金额")]
        );
        assert!(report.rejections[1].reason.contains("第4行"));
        assert!(report.rejections[2].reason.contains("超过两位小数"));
        // The bad rows left nothing behind.
        let subsidised = id(&make_id("320602", "1977-04-04", 23));
        assert!(storage
            .get_person(region("320600"), &subsidised)
            .await
            .unwrap()
            .is_none());

        // Missing required columns: the whole file is refused, nothing written.
        let no_region = format!(
            "姓名,身份证号码\n某人,{}\n",
            make_id("320602", "1978-04-04", 24)
        );
        let err = import_text(storage.as_ref(), "nocol.csv", no_region.as_bytes(), today())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRosterHeader);
        assert!(err.message.contains("参保地区"), "{}", err.message);
    })
    .await;
}

#[tokio::test]
async fn a_gbk_roster_reads_like_a_utf8_one() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let person = make_id("320602", "1965-06-06", 31);
        let csv = format!("{HEADER}欧阳修远,{person},320600,,,,,,,,,,,\n");
        let (gbk, _, _) = encoding_rs::GBK.encode(&csv);
        let report = import_text(storage.as_ref(), "gbk.csv", &gbk, today())
            .await
            .unwrap();
        assert_eq!(
            report.encoding, "gb18030",
            "GBK is read and named as GB 18030"
        );
        assert_eq!(report.summary.enrolled, 1, "{:?}", report.rejections);
        let (p, _) = storage
            .get_person(region("320600"), &id(&person))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.name.as_str(), "欧阳修远");
    })
    .await;
}

async fn enrol_and_assess(
    storage: &Arc<dyn Storage>,
    rows: &str,
) -> yibao_server::services::assessment::AssessReport {
    let csv = format!("{HEADER}{rows}");
    let r = import_text(storage.as_ref(), "x.csv", csv.as_bytes(), today())
        .await
        .unwrap();
    assert!(r.rejections.is_empty(), "{:?}", r.rejections);
    assess_region(
        storage.as_ref(),
        region("320600"),
        year(2021),
        "test",
        today(),
        &|_| {},
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn assessment_prices_categories_and_exemptions_at_their_boundaries() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let adult = make_id("320602", "1980-01-01", 41);
        let minor = make_id("320602", "2005-01-02", 42); // 15 on 2021-01-01
        let exempt_today = make_id("320602", "1960-01-01", 43);
        let expired = make_id("320602", "1961-01-01", 44);
        let subsidised = make_id("320602", "1962-01-01", 45);
        let rows = format!(
            "甲一,{adult},320600,,,,,,,,,,,\n\
             乙二,{minor},320600,,,,,,,,,,,\n\
             丙三,{exempt_today},320600,,,,,,,低保,低保证,D1,2020-11-02,\n\
             丁四,{expired},320600,,,,,,,特困,特困证,T1,2020-11-01,\n\
             戊五,{subsidised},320600,,,,,,,资助,资助证明,Z1,2021-12-31,120.00\n"
        );
        let report = enrol_and_assess(&storage, &rows).await;
        assert_eq!(report.created, 5);
        assert_eq!(report.exempt, 1);
        let amount = |id_text: String| {
            let storage = storage.clone();
            async move {
                let p = storage.payables_of_person(&id(&id_text)).await.unwrap();
                assert_eq!(p.len(), 1);
                (
                    p[0].amount_fen.as_fen(),
                    p[0].status.code().to_owned(),
                    p[0].category.clone(),
                )
            }
        };
        assert_eq!(
            amount(adult).await,
            (43000, "unpaid".into(), "adult".into())
        );
        assert_eq!(
            amount(minor).await,
            (30000, "unpaid".into(), "minor_not_in_school".into())
        );
        // Valid through 2020-11-02, assessed on 2020-11-02: exempt.
        assert_eq!(
            amount(exempt_today).await,
            (0, "exempt".into(), "adult".into())
        );
        // Expired the day before: the full amount.
        assert_eq!(
            amount(expired).await,
            (43000, "unpaid".into(), "adult".into())
        );
        assert_eq!(
            amount(subsidised.clone()).await,
            (31000, "unpaid".into(), "adult".into())
        );
        let p = &storage.payables_of_person(&id(&subsidised)).await.unwrap()[0];
        assert_eq!(
            p.basic_fen.as_fen() + p.critical_illness_fen.as_fen() + p.long_term_care_fen.as_fen(),
            p.amount_fen.as_fen()
        );
        assert_eq!(p.policy_amount_fen.as_fen(), 43000);

        // Running it again creates nothing twice.
        let again = assess_region(
            storage.as_ref(),
            region("320600"),
            year(2021),
            "test",
            today(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(again.created, 0);
    })
    .await;
}

/// Each of `persons` has exactly one payable.
async fn assert_one_payable_each<'a>(
    storage: &dyn Storage,
    persons: impl IntoIterator<Item = &'a String>,
) {
    for p in persons {
        let payables = storage.payables_of_person(&id(p)).await.unwrap();
        assert_eq!(payables.len(), 1, "{p}");
    }
}

/// The assessment walks the enrolments in ID-number order and assesses only those without a
/// current payable: a step whose enrolments are all assessed yields no one and the walk goes
/// on, and a second run creates only what was enrolled since.
#[tokio::test]
async fn assessment_walks_past_the_assessed_and_assesses_only_the_rest() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let person = |born: &str, seq: u32| make_id("320602", born, seq);
        let first: Vec<String> = [
            ("1970-01-01", 61),
            ("1972-01-01", 62),
            ("1974-01-01", 63),
            ("1976-01-01", 64),
        ]
        .iter()
        .map(|(born, seq)| person(born, *seq))
        .collect();
        let rows: String = first
            .iter()
            .enumerate()
            .map(|(i, p)| format!("甲{},{p},320600,,,,,,,,,,,\n", ["一", "二", "三", "四"][i]))
            .collect();
        assert_eq!(enrol_and_assess(&storage, &rows).await.created, 4);
        let later: Vec<String> = [("1971-01-01", 65), ("1973-01-01", 66), ("1977-01-01", 67)]
            .iter()
            .map(|(born, seq)| person(born, *seq))
            .collect();
        let rows: String = later
            .iter()
            .enumerate()
            .map(|(i, p)| format!("乙{},{p},320600,,,,,,,,,,,\n", ["一", "二", "三"][i]))
            .collect();
        let csv = format!("{HEADER}{rows}");
        let r = import_text(storage.as_ref(), "later.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        assert!(r.rejections.is_empty(), "{:?}", r.rejections);

        // Two enrolments a step: 1970 1971 | 1972 1973 | 1974 1976 | 1977 | none.
        let mut steps = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let step = storage
                .assessment_candidates(region("320600"), year(2021), after.as_deref(), 2)
                .await
                .unwrap();
            let Some(read_up_to) = step.read_up_to else {
                assert!(step.persons.is_empty());
                break;
            };
            steps.push(
                step.persons
                    .iter()
                    .map(|p| p.id_number.as_str().to_owned())
                    .collect::<Vec<_>>(),
            );
            after = Some(read_up_to);
        }
        assert_eq!(
            steps,
            vec![
                vec![later[0].clone()],
                vec![later[1].clone()],
                vec![],
                vec![later[2].clone()],
            ]
        );
        let again = assess_region(
            storage.as_ref(),
            region("320600"),
            year(2021),
            "test",
            today(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(again.created, 3);
        assert_one_payable_each(storage.as_ref(), first.iter().chain(&later)).await;
    })
    .await;
}

/// A bulk insert of payables of which one was created meanwhile (a clerk assessed that person
/// between the assessment's read and its write) creates the others and skips that one.
#[tokio::test]
async fn payables_written_in_bulk_skip_one_created_meanwhile() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let one = make_id("320602", "1978-01-01", 71);
        let two = make_id("320602", "1979-01-01", 72);
        let csv = format!("{HEADER}丙一,{one},320600,,,,,,,,,,,\n丙二,{two},320600,,,,,,,,,,,\n");
        let r = import_text(storage.as_ref(), "bulk.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        assert!(r.rejections.is_empty(), "{:?}", r.rejections);
        let persons = storage
            .assessment_candidates(region("320600"), year(2021), None, 10)
            .await
            .unwrap()
            .persons;
        assert_eq!(persons.len(), 2);
        let policy = storage
            .get_fee_policy(region("320600"), year(2021))
            .await
            .unwrap()
            .unwrap();
        let drafts = || -> Vec<yibao_storage::NewPayable> {
            persons
                .iter()
                .map(|p| draft_payable(p, &policy, today(), today(), "test"))
                .collect()
        };
        assert_eq!(storage.insert_payables(&drafts()[..1]).await.unwrap(), 1);
        assert_eq!(storage.insert_payables(&drafts()).await.unwrap(), 1);
        assert_eq!(storage.insert_payables(&drafts()).await.unwrap(), 0);
        assert_one_payable_each(storage.as_ref(), [&one, &two]).await;
    })
    .await;
}

#[tokio::test]
async fn a_registry_edit_never_changes_an_assessed_payable_until_reassessed() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let person = make_id("320602", "1980-07-07", 51);
        enrol_and_assess(&storage, &format!("己六,{person},320600,,,,,,,,,,,\n")).await;
        // The person becomes exempt after assessment.
        let csv = format!("{HEADER}己六,{person},320600,,,,,,,低保,低保证,D9,2021-12-31,\n");
        import_text(storage.as_ref(), "edit.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        let before = storage.payables_of_person(&id(&person)).await.unwrap();
        assert_eq!(
            (before.len(), before[0].amount_fen.as_fen()),
            (1, 43000),
            "the edit alone changes nothing"
        );

        let new = reassess_person(
            storage.as_ref(),
            region("320600"),
            year(2021),
            &id(&person),
            "test",
            today(),
        )
        .await
        .unwrap();
        assert_eq!(new.amount_fen.as_fen(), 0);
        assert_eq!(new.status.code(), "exempt");
        assert_eq!(
            new.payable_from,
            d("2020-11-03"),
            "payable from the next day"
        );
        assert_eq!(
            new.supersedes.as_deref(),
            Some(before[0].payable_id.as_str())
        );
        let all = storage.payables_of_person(&id(&person)).await.unwrap();
        let statuses: Vec<_> = all.iter().map(|p| p.status.code()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == "superseded").count(), 1);
        assert_eq!(all.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_paid_payable_must_be_refunded_before_reassessment() {
    yibao_tests::on_each_test_db(|db| async move {
        let storage = db.storage.clone();
        setup(storage.as_ref()).await;
        let person = make_id("320602", "1980-08-08", 61);
        enrol_and_assess(&storage, &format!("庚七,{person},320600,,,,,,,,,,,\n")).await;
        // Collection is a later issue: mark the payable paid directly.
        let sql = "UPDATE payables SET status = 'paid'";
        match (&db.sqlite, &db.postgres) {
            (Some(s), _) => sqlx::query(sql)
                .execute(s.pool())
                .await
                .map(|_| ())
                .unwrap(),
            (_, Some(p)) => sqlx::query(sql)
                .execute(p.pool())
                .await
                .map(|_| ())
                .unwrap(),
            _ => unreachable!(),
        }
        let err = reassess_person(
            storage.as_ref(),
            region("320600"),
            year(2021),
            &id(&person),
            "test",
            today(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::PaidMustBeRefunded);
        assert!(err.message.contains("退费"));
        let all = storage.payables_of_person(&id(&person)).await.unwrap();
        assert_eq!(all.len(), 1, "nothing half-written");
        assert_eq!(all[0].status.code(), "paid");
    })
    .await;
}

#[tokio::test]
async fn renewal_carries_last_years_insured_over() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        // Enrol in 南通市 2021 on 2020-11-02, then assess 2022 (policy added) on 2021-11-02.
        let stays = make_id("320602", "1980-09-09", 71);
        let leaves = make_id("320602", "1981-09-09", 72);
        enrol_and_assess(
            &storage,
            &format!("辛八,{stays},320600,,,,,,,,,,,\n壬九,{leaves},320600,,,,,,,,,,,\n"),
        )
        .await;
        let mut p2022 = storage
            .get_fee_policy(region("320600"), year(2021))
            .await
            .unwrap()
            .unwrap();
        p2022 = yibao_domain::FeePolicy::new(yibao_domain::FeePolicyInput {
            region: p2022.region(),
            fee_year: year(2022),
            amounts: p2022.amounts().map(|(c, a)| (c, a.clone())).collect(),
            age_reference_date: d("2022-01-01"),
            adult_age: 18,
            window: yibao_domain::CollectionWindow::new(d("2021-09-01"), d("2021-12-31")).unwrap(),
            late_payment_allowed: false,
            cover_rules: Default::default(),
        })
        .unwrap();
        storage.put_fee_policy(&p2022).await.unwrap();
        // One of them joins employee insurance before renewal.
        let csv = format!("{HEADER}壬九,{leaves},320600,,,,,是,,,,,,\n");
        import_text(storage.as_ref(), "emp.csv", csv.as_bytes(), d("2021-08-01"))
            .await
            .unwrap();
        let report = assess_region(
            storage.as_ref(),
            region("320600"),
            year(2022),
            "test",
            d("2021-11-02"),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.renewed, 1);
        assert_eq!(report.created, 1);
        let e = storage
            .get_enrolment(region("320600"), year(2022), &id(&stays))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.status.code(), e.source.as_str()),
            ("enrolled", "renewal")
        );
        let refused = storage
            .get_enrolment(region("320600"), year(2022), &id(&leaves))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refused.refusal_code.as_deref(), Some("EMPLOYEE_INSURED"));
    })
    .await;
}

#[tokio::test]
async fn newborns_enrolled_within_90_days_are_covered_from_birth() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        // 南通市 2027: age reference 2027-01-01; a baby born 2027-01-10 enrolled 2027-04-10 (day 90).
        // The 2027 window runs to 2026-12-31, so enrol with an explicit fee year.
        let baby = make_id("320602", "2027-01-10", 81);
        let late = make_id("320602", "2027-01-09", 82);
        let csv = format!("{HEADER}宝宝,{baby},320600,,,,,,,,,,,\n晚晚,{late},320600,,,,,,,,,,,\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baby.csv");
        std::fs::write(&path, csv).unwrap();
        import_roster(
            storage.as_ref(),
            &path,
            "baby.csv",
            &admin_scope(),
            d("2027-04-10"),
            Some(year(2027)),
            Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        let e = storage
            .get_enrolment(region("320600"), year(2027), &id(&baby))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.covered_from, Some(d("2027-01-10")));
        let e = storage
            .get_enrolment(region("320600"), year(2027), &id(&late))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            e.covered_from,
            Some(d("2027-04-11")),
            "day 91: from the day after enrolment"
        );
        let report = assess_region(
            storage.as_ref(),
            region("320600"),
            year(2027),
            "test",
            d("2027-04-10"),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.created, 2);
        let p = storage.payables_of_person(&id(&baby)).await.unwrap();
        assert_eq!(p[0].category, "newborn");
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_is_append_only_in_the_database() {
    yibao_tests::on_each_test_db(|db| async move {
        setup(db.storage.as_ref()).await;
        db.storage
            .append_audit(&yibao_storage::AuditEntry {
                actor: "t".into(),
                action: "x".into(),
                region: None,
                target: "y".into(),
                detail: serde_json::json!({}),
            })
            .await
            .unwrap();
        for sql in [
            "UPDATE audit_log SET actor = 'forged'",
            "DELETE FROM audit_log",
        ] {
            let result = match (&db.sqlite, &db.postgres) {
                (Some(s), _) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
                (_, Some(p)) => sqlx::query(sql).execute(p.pool()).await.map(|_| ()),
                _ => unreachable!(),
            };
            assert!(result.is_err(), "{sql} must be refused");
        }
        assert_eq!(db.storage.list_audit(10).await.unwrap()[0].entry.actor, "t");
    })
    .await;
}

#[tokio::test]
async fn an_xlsx_roster_with_text_ids_and_date_serials_imports() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let person = make_id("320602", "1985-10-10", 91);
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (col, title) in [
            "姓名",
            "身份证号码",
            "参保地区",
            "户籍类型",
            "居住证起始日期",
            "资助金额",
        ]
        .iter()
        .enumerate()
        {
            sheet.write_string(0, col as u16, *title).unwrap();
        }
        sheet.write_string(1, 0, "陈一").unwrap();
        sheet.write_string(1, 1, &person).unwrap();
        // A region typed as a number, and a date cell stored as Excel's serial (2020-06-01 = 43983).
        sheet.write_number(1, 2, 320600).unwrap();
        sheet.write_string(1, 3, "居住证").unwrap();
        sheet.write_number(1, 4, 43983).unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        let report = import_text(storage.as_ref(), "roster.xlsx", &bytes, today())
            .await
            .unwrap();
        assert_eq!(report.summary.enrolled, 1, "{:?}", report.rejections);
        let (p, _) = storage
            .get_person(region("320600"), &id(&person))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            p.household,
            yibao_domain::Household::ResidencePermit {
                since: d("2020-06-01")
            }
        );
    })
    .await;
}

/// One cell of a workbook written the way Excel writes it: text in the shared-string table,
/// numbers as the exact `<v>` text Excel stores (up to 17 significant digits).
#[derive(Clone, Copy)]
enum XCell<'a> {
    Text(&'a str),
    Number(&'a str),
}

/// An XLSX file as Excel saves it: `[Content_Types].xml`, the workbook and its relationships,
/// `sharedStrings.xml`, `styles.xml`, one part per sheet, sheets in tab order.
fn excel_workbook(sheets: &[(&str, Vec<Vec<XCell<'_>>>)]) -> Vec<u8> {
    use std::io::Write;
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut shared: Vec<String> = Vec::new();
    let mut sheet_parts = Vec::new();
    for (_, rows) in sheets {
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!(
                r#"<row r="{}" spans="1:{}" x14ac:dyDescent="0.2">"#,
                r + 1,
                row.len()
            ));
            for (c, cell) in row.iter().enumerate() {
                let reference = format!("{}{}", char::from(b'A' + c as u8), r + 1);
                match cell {
                    XCell::Text("") => {}
                    XCell::Text(text) => {
                        let index = match shared.iter().position(|s| s == text) {
                            Some(i) => i,
                            None => {
                                shared.push((*text).to_owned());
                                shared.len() - 1
                            }
                        };
                        data.push_str(&format!(r#"<c r="{reference}" t="s"><v>{index}</v></c>"#));
                    }
                    XCell::Number(v) => {
                        data.push_str(&format!(r#"<c r="{reference}" s="1"><v>{v}</v></c>"#));
                    }
                }
            }
            data.push_str("</row>");
        }
        sheet_parts.push(format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="{MAIN}" xmlns:r="{REL}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="x14ac" xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"><dimension ref="A1"/><sheetViews><sheetView workbookViewId="0"/></sheetViews><sheetFormatPr defaultRowHeight="14.25" x14ac:dyDescent="0.2"/><sheetData>{data}</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>"#
        ));
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut part = |name: &str, text: &str| {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    };
    let overrides: String = (1..=sheets.len())
        .map(|i| format!(r#"<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#))
        .collect();
    part(
        "[Content_Types].xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{overrides}<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#
        ),
    );
    part(
        "_rels/.rels",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
        ),
    );
    let sheet_list: String = sheets
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            format!(
                r#"<sheet name="{}" sheetId="{}" r:id="rId{}"/>"#,
                escape(name),
                i + 1,
                i + 1
            )
        })
        .collect();
    part(
        "xl/workbook.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="{MAIN}" xmlns:r="{REL}"><fileVersion appName="xl" lastEdited="7" lowestEdited="7" rupBuild="27328"/><workbookPr defaultThemeVersion="166925"/><bookViews><workbookView xWindow="0" yWindow="0" windowWidth="28800" windowHeight="12300"/></bookViews><sheets>{sheet_list}</sheets><calcPr calcId="191029"/></workbook>"#
        ),
    );
    let mut rels: String = (1..=sheets.len())
        .map(|i| format!(r#"<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>"#))
        .collect();
    let n = sheets.len();
    rels.push_str(&format!(
        r#"<Relationship Id="rId{}" Type="{REL}/styles" Target="styles.xml"/><Relationship Id="rId{}" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>"#,
        n + 1,
        n + 2
    ));
    part(
        "xl/_rels/workbook.xml.rels",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#
        ),
    );
    part(
        "xl/styles.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="{MAIN}"><numFmts count="1"><numFmt numFmtId="176" formatCode="0.00_ "/></numFmts><fonts count="1"><font><sz val="11"/><name val="等线"/><family val="2"/><charset val="134"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="176" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"#
        ),
    );
    let items: String = shared
        .iter()
        .map(|t| format!("<si><t>{}</t></si>", escape(t)))
        .collect();
    part(
        "xl/sharedStrings.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="{MAIN}" count="{0}" uniqueCount="{0}">{items}</sst>"#,
            shared.len()
        ),
    );
    for (i, xml) in sheet_parts.iter().enumerate() {
        part(&format!("xl/worksheets/sheet{}.xml", i + 1), xml);
    }
    zip.finish().unwrap().into_inner()
}

/// Issue 10, defect 1: Excel stores a typed `68.4` as `68.400000000000006` and `19.99` as
/// `19.989999999999998`; numbers are read as Excel shows them (15 significant digits) in every
/// column: amounts, a phone number and a region code stored as numbers, a date as a serial.
#[tokio::test]
async fn excel_stored_numbers_read_as_excel_shows_them() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let a = make_id("320602", "1970-04-04", 51);
        let b = make_id("320602", "1971-04-04", 52);
        let c = make_id("320602", "1972-04-04", 53);
        use XCell::{Number as N, Text as T};
        let header = || {
            [
                "姓名",
                "身份证号码",
                "参保地区",
                "联系电话",
                "减免类型",
                "减免证件名称",
                "减免证件号码",
                "减免证件有效期至",
                "资助金额",
            ]
            .map(T)
            .to_vec()
        };
        let row = |name, id, phone, valid_until, amount| {
            vec![
                T(name),
                T(id),
                N("320600"),
                N(phone),
                T("资助"),
                T("资助证明"),
                T("Z1"),
                N(valid_until),
                N(amount),
            ]
        };
        let bytes = excel_workbook(&[(
            "Sheet1",
            vec![
                header(),
                row("陈一", &a, "13800138000", "46022", "68.400000000000006"),
                row(
                    "陈二",
                    &b,
                    "1.3800138001E10",
                    "46022.000000000007",
                    "19.989999999999998",
                ),
                // A value that really has three decimals is still refused.
                row("陈三", &c, "13800138002", "46022", "12.345000000000001"),
            ],
        )]);
        let report = import_text(storage.as_ref(), "excel.xlsx", &bytes, today())
            .await
            .unwrap();
        assert_eq!(report.summary.enrolled, 2, "{:?}", report.rejections);
        assert_eq!(report.summary.rejected, 1, "{:?}", report.rejections);
        assert_eq!(report.rejections[0].row, 4);
        assert_eq!(report.rejections[0].column, "资助金额");
        assert!(
            report.rejections[0].reason.contains("超过两位小数"),
            "{:?}",
            report.rejections
        );
        let (first, _) = storage
            .get_person(region("320600"), &id(&a))
            .await
            .unwrap()
            .unwrap();
        let relief = first.relief.unwrap();
        assert_eq!(relief.subsidy.map(|f| f.as_fen()), Some(6840));
        assert_eq!(relief.valid_until, d("2025-12-31"));
        assert_eq!(first.phone.unwrap().as_str(), "13800138000");
        let (second, _) = storage
            .get_person(region("320600"), &id(&b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            second.relief.unwrap().subsidy.map(|f| f.as_fen()),
            Some(1999)
        );
        assert_eq!(second.phone.unwrap().as_str(), "13800138001");
    })
    .await;
}

/// Issue 10 (roster friction): a workbook whose first sheet is 填表说明 is read from its roster
/// sheet (and the report says which); the rejection file carries each rejected row's own cells, so
/// that the clerk corrects it and imports it again, and then every row is in.
#[tokio::test]
async fn a_corrected_rejection_file_imports_again() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let good = make_id("320602", "1973-05-05", 61);
        let typo_fixed = make_id("320602", "1974-05-05", 62);
        // One digit mistyped: the check character no longer matches.
        let mut typo = typo_fixed.clone().into_bytes();
        typo[14] = if typo[14] == b'3' { b'4' } else { b'3' };
        let typo = String::from_utf8(typo).unwrap();
        let phone_owner = make_id("320602", "1975-05-05", 63);
        let short_name = make_id("320602", "1976-05-05", 64);
        use XCell::{Number as N, Text as T};
        let bytes = excel_workbook(&[
            (
                "填表说明",
                vec![
                    vec![T("一、本表用于城乡居民医保参保登记，请勿修改列名")],
                    vec![T("二、身份证号码请设为文本格式")],
                ],
            ),
            (
                "花名册",
                vec![
                    [
                        "姓名",
                        "身份证号码",
                        "参保地区",
                        "联系电话",
                        "备注",
                        "居住证起始日期",
                    ]
                    .map(T)
                    .to_vec(),
                    vec![
                        T("陈好"),
                        T(&good),
                        N("320600"),
                        N("13800138000"),
                        T("a"),
                        T(""),
                    ],
                    vec![
                        T("陈错"),
                        T(&typo),
                        N("320600"),
                        T(""),
                        T("b,\"引号\""),
                        T(""),
                    ],
                    vec![
                        T("陈话"),
                        T(&phone_owner),
                        N("320600"),
                        N("1380013800"),
                        T(""),
                        T(""),
                    ],
                    vec![T("甲"), T(&short_name), N("320600"), T(""), T(""), T("")],
                ],
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("花名册.xlsx");
        std::fs::write(&path, &bytes).unwrap();
        let report = import_roster(
            storage.as_ref(),
            &path,
            "花名册.xlsx",
            &admin_scope(),
            today(),
            None,
            Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.sheet.as_deref(), Some("花名册"));
        assert_eq!(report.summary.enrolled, 1, "{:?}", report.rejections);
        assert_eq!(report.summary.rejected, 3, "{:?}", report.rejections);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["sheet"], "花名册");
        assert!(
            json.get("rejected_rows").is_none(),
            "cells stay out of the JSON answer"
        );

        let rejected = rejections_csv(&report);
        let lines: Vec<&str> = rejected.lines().collect();
        assert_eq!(
            lines[0],
            "\u{feff}行号,错误列,错误代码,错误原因,姓名,身份证号码,参保地区,联系电话,备注,居住证起始日期"
        );
        assert_eq!(lines.len(), 4, "{rejected}");
        // The row's own cells, ID numbers kept as text for Excel.
        assert!(lines[1].starts_with("3,身份证号码,"), "{}", lines[1]);
        assert!(
            lines[1].ends_with(&format!(
                ",陈错,\"=\"\"{typo}\"\"\",320600,,\"b,\"\"引号\"\"\","
            )),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("4,联系电话,"), "{}", lines[2]);
        assert!(lines[3].starts_with("5,姓名,"), "{}", lines[3]);

        // The clerk corrects the three rows in the file and imports it again.
        let corrected = rejected
            .replace(&typo, &typo_fixed)
            .replace(",1380013800,", ",13800138003,")
            .replace(",甲,", ",甲乙,");
        let again_path = dir.path().join("花名册.rejected.csv");
        std::fs::write(&again_path, corrected.as_bytes()).unwrap();
        let again = import_roster(
            storage.as_ref(),
            &again_path,
            "花名册.rejected.csv",
            &admin_scope(),
            today(),
            None,
            Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(again.summary.rows_read, 3);
        assert_eq!(again.summary.rejected, 0, "{:?}", again.rejections);
        assert_eq!(again.summary.enrolled, 3);
        // 行号, 错误列, 错误原因 are recognised; only the file's own unknown column is reported.
        assert_eq!(again.unknown_columns, ["备注"]);
        for person in [&good, &typo_fixed, &phone_owner, &short_name] {
            let enrolment = storage
                .get_enrolment(region("320600"), year(2021), &id(person))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(enrolment.status.code(), "enrolled");
        }
        let (p, _) = storage
            .get_person(region("320600"), &id(&phone_owner))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.phone.unwrap().as_str(), "13800138003");
    })
    .await;
}

/// Issue 10 (roster friction): near-miss headers are named with the right name, and the sheet
/// read is told when it is not the roster.
#[tokio::test]
async fn near_miss_headers_are_named_with_the_right_name() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let person = make_id("320602", "1977-05-05", 71);
        let csv = format!("姓名,身份证号,统筹区,电话\n陈近,{person},320600,13800138000\n");
        let err = import_text(storage.as_ref(), "near.csv", csv.as_bytes(), today())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRosterHeader);
        assert!(
            err.message
                .contains("身份证号码（找到列“身份证号”，应为“身份证号码”）"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("参保地区（找到列“统筹区”，应为“参保地区”）"),
            "{}",
            err.message
        );
        let csv = format!("姓名,身份证号码,参保地区,电话\n陈近,{person},320600,13800138000\n");
        let report = import_text(storage.as_ref(), "near.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        assert_eq!(report.summary.enrolled, 1);
        assert_eq!(report.column_suggestions.len(), 1);
        assert_eq!(report.column_suggestions[0].found, "电话");
        assert_eq!(report.column_suggestions[0].expected, "联系电话");
        use XCell::Text as T;
        let bytes = excel_workbook(&[
            ("填表说明", vec![vec![T("说明")]]),
            (
                "Sheet2",
                vec![vec![T("名字"), T("证件号码"), T("参保地区")]],
            ),
        ]);
        let err = import_text(storage.as_ref(), "near.xlsx", &bytes, today())
            .await
            .unwrap_err();
        assert!(
            err.message.contains("读取的是工作表“Sheet2”"),
            "{}",
            err.message
        );
        assert!(err.message.contains("找到列“证件号码”"), "{}", err.message);
    })
    .await;
}

#[tokio::test]
async fn text_with_commas_quotes_and_newlines_survives_the_bulk_path() {
    on_each_backend(|storage| async move {
        setup(storage.as_ref()).await;
        let student = make_id("320602", "2010-10-10", 95);
        let csv = format!(
            "{HEADER}孙小,{student},320600,在校学生,\"南通中学,\"\"东校区\"\"\",,,,,,,,,\n"
        );
        let report = import_text(storage.as_ref(), "quotes.csv", csv.as_bytes(), today())
            .await
            .unwrap();
        assert_eq!(report.summary.enrolled, 1, "{:?}", report.rejections);
        let (p, _) = storage
            .get_person(region("320600"), &id(&student))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.school.as_deref(), Some("南通中学,\"东校区\""));
        let history = storage
            .person_history(region("320600"), &id(&student))
            .await
            .unwrap();
        assert_eq!(history[0].snapshot["school"], "南通中学,\"东校区\"");
    })
    .await;
}
