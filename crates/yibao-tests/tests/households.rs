//! Households (户, issue 17) on every backend: the roster's optional columns 户号 and 与户主关系
//! put persons in households; a person is in one household of a region at a time and a household
//! has one head at a time (the database refuses anything else); a move, a new head or a removal
//! keeps the history; bad values are refused naming their column, before anything of the row is
//! written; the console shows, changes and lists households, with errors beside their fields.

use chrono::NaiveDate;
use reqwest::StatusCode;
use yibao_domain::household::{HouseholdNumber, Relation};
use yibao_domain::{FeeYear, IdNumber, RegionCode};
use yibao_server::services::roster_import::{import_roster, ImportReport, ImportScope};
use yibao_storage::households::{MembershipRecord, MembershipsOf};
use yibao_tests::console::ConsoleSession;
use yibao_tests::{china_time, make_id, on_each_test_db, DbHandle, TestServer, ADMIN};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn haikou() -> RegionCode {
    RegionCode::parse("460100").unwrap()
}

fn id(text: &str) -> IdNumber {
    IdNumber::try_from(text.to_owned()).unwrap()
}

async fn import(db: &DbHandle, csv: &str) -> ImportReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("户籍花名册.csv");
    std::fs::write(&path, csv).unwrap();
    import_roster(
        db.storage.as_ref(),
        &path,
        "户籍花名册.csv",
        &ImportScope::unrestricted("clerk-li"),
        d(2026, 11, 2),
        Some(FeeYear::new(2027).unwrap()),
        yibao_roster_file::Limits::default(),
        &|_| {},
    )
    .await
    .unwrap()
}

async fn of_person(db: &DbHandle, person: &str) -> Vec<MembershipRecord> {
    db.storage
        .household_memberships(haikou(), MembershipsOf::Person(&id(person)))
        .await
        .unwrap()
}

async fn of_household(db: &DbHandle, number: &str) -> Vec<MembershipRecord> {
    db.storage
        .household_memberships(
            haikou(),
            MembershipsOf::Household(&HouseholdNumber::parse(number).unwrap()),
        )
        .await
        .unwrap()
}

fn current(rows: &[MembershipRecord]) -> Vec<(&str, Option<&str>)> {
    rows.iter()
        .filter(|m| m.is_current())
        .map(|m| (m.number.as_str(), m.relation.as_ref().map(Relation::as_str)))
        .collect()
}

/// Runs a statement below the storage trait (to check what the database itself refuses).
async fn raw(db: &DbHandle, sql: &str) -> Result<(), String> {
    match (&db.sqlite, &db.postgres) {
        (Some(s), _) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        (_, Some(p)) => sqlx::query(sql).execute(p.pool()).await.map(|_| ()),
        _ => unreachable!(),
    }
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn roster_columns_place_persons_and_changes_keep_their_history() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let father = make_id("460105", "1970-03-01", 11);
        let mother = make_id("460105", "1972-04-01", 22);
        let son = make_id("460105", "1998-05-01", 33);
        let lodger = make_id("460105", "1960-06-01", 44);
        let first = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n\
             符大山,{father},460100,4601000123,户主\n\
             王小花,{mother},460100,4601000123,配偶\n\
             符小明,{son},460100,4601000123,子\n\
             陈一,{lodger},460100,,\n"
        );
        let report = import(&db, &first).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert_eq!(report.summary.enrolled, 4);
        let members = of_household(&db, "4601000123").await;
        assert_eq!(
            current(&members),
            vec![
                ("4601000123", Some("户主")),
                ("4601000123", Some("配偶")),
                ("4601000123", Some("子"))
            ]
        );
        assert!(members[0].is_head());
        assert_eq!(members[0].joined_by, "clerk-li");
        assert_eq!(members[0].joined_source, "roster:户籍花名册.csv");
        assert_eq!(members[0].name.as_ref().unwrap().as_str(), "符大山");
        assert!(
            of_person(&db, &lodger).await.is_empty(),
            "no 户号, no household"
        );

        // The same file again changes nothing: no new history.
        import(&db, &first).await;
        assert_eq!(of_household(&db, "4601000123").await.len(), 3);

        // The son sets up his own household and becomes its head; the mother becomes the head of
        // the first (the father stays, his relation no longer known); an empty 户号 leaves the
        // father where he is.
        let second = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n\
             符小明,{son},460100,4601000999,户主\n\
             王小花,{mother},460100,4601000123,户主\n\
             符大山,{father},460100,,\n"
        );
        let report = import(&db, &second).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert_eq!(
            current(&of_person(&db, &son).await),
            vec![("4601000999", Some("户主"))]
        );
        // The current membership first, then the ended ones, newest first.
        let son_history = of_person(&db, &son).await;
        assert_eq!(son_history.len(), 2);
        assert_eq!(son_history[0].number.as_str(), "4601000999");
        assert_eq!(son_history[1].number.as_str(), "4601000123");
        assert!(son_history[1].left_at_ms.is_some());
        assert_eq!(son_history[1].left_by.as_deref(), Some("clerk-li"));
        assert_eq!(
            current(&of_person(&db, &mother).await),
            vec![("4601000123", Some("户主"))]
        );
        assert_eq!(
            current(&of_person(&db, &father).await),
            vec![("4601000123", None)],
            "the old head stays a member, relation unknown"
        );
        let first_household = of_household(&db, "4601000123").await;
        assert_eq!(
            first_household.iter().filter(|m| m.is_head()).count(),
            1,
            "one head at a time"
        );
        assert_eq!(current(&first_household).len(), 2);
        assert_eq!(first_household.len(), 5, "three ended, two current");
    })
    .await;
}

#[tokio::test]
async fn bad_household_values_are_refused_by_column_and_nothing_of_the_row_is_written() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let a = make_id("460105", "1980-01-01", 51);
        let b = make_id("460105", "1980-01-01", 52);
        let c = make_id("460105", "1980-01-01", 53);
        let ok = make_id("460105", "1980-01-01", 54);
        let csv = format!(
            "姓名,身份证号码,参保地区,户编号,与户主的关系\n\
             甲一,{a},460100,46 01,户主\n\
             甲二,{b},460100,,配偶\n\
             甲三,{c},460100,4601000555,配偶/子\n\
             甲四,{ok},460100,4601000555,女\n"
        );
        let report = import(&db, &csv).await;
        // The aliases 户编号 and 与户主的关系 are suggested, not taken silently.
        assert_eq!(report.summary.enrolled, 4, "{:?}", report.rejections);
        assert!(report
            .column_suggestions
            .iter()
            .any(|s| s.found == "户编号" && s.expected == "户号"));

        let csv = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n\
             甲一,{a},460100,46 01,户主\n\
             甲二,{b},460100,,配偶\n\
             甲三,{c},460100,4601000555,配偶/子\n\
             甲四,{ok},460100,4601000555,女\n"
        );
        let report = import(&db, &csv).await;
        let rejections: Vec<(usize, &str, &str)> = report
            .rejections
            .iter()
            .map(|r| (r.row, r.column.as_str(), r.code.as_str()))
            .collect();
        assert_eq!(
            rejections,
            vec![
                (2, "户号", "INVALID_HOUSEHOLD"),
                (3, "户号", "INVALID_HOUSEHOLD"),
                (4, "与户主关系", "INVALID_HOUSEHOLD")
            ]
        );
        assert!(report.rejections[0].reason.contains("只能由数字、英文字母"));
        assert!(report.rejections[1]
            .reason
            .contains("填写与户主关系时须填写户号"));
        for refused in [&a, &b, &c] {
            assert!(of_person(&db, refused).await.is_empty(), "{refused}");
        }
        assert_eq!(
            current(&of_person(&db, &ok).await),
            vec![("4601000555", Some("女"))]
        );
        // The template offers the two columns.
        let template = yibao_server::services::roster_import::template_csv();
        assert!(template.contains("户号") && template.contains("与户主关系"));
    })
    .await;
}

#[tokio::test]
async fn the_database_refuses_a_second_household_or_a_second_head() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let a = make_id("460105", "1980-01-01", 61);
        let b = make_id("460105", "1980-01-01", 62);
        let csv = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n乙一,{a},460100,H1,户主\n乙二,{b},460100,H2,户主\n"
        );
        assert!(import(&db, &csv).await.rejections.is_empty());
        let is_head = if db.sqlite.is_some() { "1" } else { "true" };
        let second_household = raw(
            &db,
            &format!(
                "INSERT INTO household_members (region_code, household_number, id_number, relation, \
                 is_head, joined_at, joined_by, joined_source) \
                 VALUES ('460100', 'H2', '{a}', '配偶', {}, 1, 't', 't')",
                if db.sqlite.is_some() { "0" } else { "false" }
            ),
        )
        .await;
        assert!(second_household.is_err(), "a second current household");
        let second_head = raw(
            &db,
            &format!(
                "UPDATE household_members SET household_number = 'H1' WHERE id_number = '{b}'"
            ),
        )
        .await;
        assert!(second_head.is_err(), "a second head of H1");
        let head_without_relation = raw(
            &db,
            &format!("UPDATE household_members SET relation = NULL, is_head = {is_head} WHERE id_number = '{a}'"),
        )
        .await;
        assert!(head_without_relation.is_err(), "is_head follows the relation");
    })
    .await;
}

/// Two clerks change one person's household at the same moment: one household in the end, and
/// the other change kept in the history (the later one wins as if one after the other).
#[tokio::test]
async fn concurrent_changes_of_one_person_leave_one_household() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let person = make_id("460105", "1985-01-01", 71);
        let csv = format!("姓名,身份证号码,参保地区\n丙一,{person},460100\n");
        assert!(import(&db, &csv).await.rejections.is_empty());
        let source = yibao_storage::ChangeSource {
            actor: "clerk".into(),
            source: "console".into(),
        };
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let storage = db.storage.clone();
                let source = source.clone();
                let person = id(&person);
                tokio::spawn(async move {
                    let placement = yibao_domain::household::Placement::parse(
                        &format!("R{}", i % 3),
                        if i % 2 == 0 { "户主" } else { "子" },
                    )
                    .unwrap();
                    storage
                        .place_in_household(haikou(), &person, placement, &source, &|_, _| true)
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let rows = of_person(&db, &person).await;
        assert_eq!(current(&rows).len(), 1, "{rows:?}");
        assert!(rows.len() >= 2, "{rows:?}");
    })
    .await;
}

#[tokio::test]
async fn the_console_shows_changes_and_lists_households() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        yibao_tests::create_admin(db.storage.as_ref()).await;
        let head = make_id("460105", "1966-02-02", 81);
        let wife = make_id("460105", "1968-03-03", 82);
        let csv = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n吴大海,{head},460100,4601000777,户主\n林阿妹,{wife},460100,,\n"
        );
        assert!(import(&db, &csv).await.rejections.is_empty());
        let server = TestServer::start(
            db.storage.clone(),
            yibao_server::Clock::fixed(china_time(d(2026, 11, 10), 10)),
            yibao_server::ServerSettings::default(),
        )
        .await;
        let admin = ConsoleSession::sign_in(&server, ADMIN.0, ADMIN.1).await;
        let record = admin.get(&format!("/console/persons/460100/{wife}")).await;
        assert_eq!(record.status, StatusCode::OK, "{}", record.body);
        record.expect_text("尚未登记家庭户");

        // A relation without a number comes back beside the number's field, nothing written.
        let path = format!("/console/persons/460100/{wife}/household");
        let refused = admin
            .post(&path, &[("household_number", ""), ("relation", "配偶"), ("action", "place")])
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        refused
            .expect_text("id=\"household_number-error\"")
            .expect_text("填写与户主关系时须填写户号")
            .expect_text("value=\"配偶\"");
        assert!(of_person(&db, &wife).await.is_empty());

        let placed = admin
            .post(&path, &[("household_number", "4601000777"), ("relation", "配偶"), ("action", "place")])
            .await;
        assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
        let record = admin.get(placed.location.as_deref().unwrap()).await;
        record
            .expect_text("家庭户信息已保存")
            .expect_text("4601000777</a> · 与户主关系 配偶");

        // The household's page lists both, masked, the head first.
        let household = admin
            .get("/console/households?region=460100&number=4601000777")
            .await;
        assert_eq!(household.status, StatusCode::OK, "{}", household.body);
        household
            .expect_text("现有成员（2人）")
            .expect_text("户主：吴*海")
            .expect_text("林*妹")
            .expect_no_text(&wife)
            .expect_no_text("林阿妹");
        let head_at = household.body.find("吴*海").unwrap();
        let wife_at = household.body.find("林*妹").unwrap();
        assert!(head_at < wife_at);
        // A malformed number is answered beside the box; an unknown one says so.
        let bad = admin.get("/console/households?region=460100&number=46%2001").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("id=\"number-error\"");
        admin
            .get("/console/households?region=460100&number=4601009999")
            .await
            .expect_text("没有户号为 4601009999 的家庭户");

        // Out of the household: the page keeps her in the history.
        let left = admin.post(&path, &[("action", "leave")]).await;
        assert_eq!(left.status, StatusCode::SEE_OTHER);
        admin
            .get(left.location.as_deref().unwrap())
            .await
            .expect_text("已将此人移出家庭户")
            .expect_text("家庭户变更记录（1条）");
        admin
            .get("/console/households?region=460100&number=4601000777")
            .await
            .expect_text("现有成员（1人）")
            .expect_text("变更记录（已结束的成员关系）");
        assert!(current(&of_person(&db, &wife).await).is_empty());
    })
    .await;
}

/// A station operator's reach: a household without a current member at their station is not
/// shown to them; they may not make someone head of a household whose head is at another station
/// (console and roster alike: the roster keeps the rest of the row and says why); a person moving
/// to another region leaves their household there.
#[tokio::test]
async fn a_station_operator_reaches_only_their_stations_households() {
    on_each_test_db(|db| async move {
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        // The demo's staff accounts (nt-st01 is the station operator of ST-01 in 320600).
        yibao::demo::load_people(db.storage.as_ref(), d(2026, 11, 2))
            .await
            .unwrap();
        let head = make_id("320602", "1966-02-02", 91);
        let wife = make_id("320602", "1968-03-03", 92);
        let ours = make_id("320602", "1990-04-04", 93);
        let csv = format!(
            "姓名,身份证号码,参保地区,服务站,户号,与户主关系\n\
             周大江,{head},320600,ST-02,HH-2,户主\n\
             钱小梅,{wife},320600,ST-02,HH-2,配偶\n\
             孙本站,{ours},320600,ST-01,,\n"
        );
        assert!(import(&db, &csv).await.rejections.is_empty());
        let server = TestServer::start(
            db.storage.clone(),
            yibao_server::Clock::fixed(china_time(d(2026, 11, 10), 10)),
            yibao_server::ServerSettings::default(),
        )
        .await;
        let station = ConsoleSession::sign_in(&server, "nt-st01", "yibao-demo-station").await;
        station
            .get("/console/households?region=320600&number=HH-2")
            .await
            .expect_text("没有户号为 HH-2 的家庭户")
            .expect_no_text("周*江");

        // Making their own resident head of HH-2 would end the ST-02 head's membership: refused
        // beside the relation, nothing written.
        let refused = station
            .post(
                &format!("/console/persons/320600/{ours}/household"),
                &[
                    ("household_number", "HH-2"),
                    ("relation", "户主"),
                    ("action", "place"),
                ],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        refused
            .expect_text("id=\"relation-error\"")
            .expect_text("该户现户主属于其他服务站");
        let region = RegionCode::parse("320600").unwrap();
        let heads = db
            .storage
            .household_memberships(
                region,
                MembershipsOf::Household(&HouseholdNumber::parse("HH-2").unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(heads.iter().filter(|m| m.is_current()).count(), 2);
        assert!(heads
            .iter()
            .any(|m| m.is_head() && m.id_number == id(&head)));
        // As a member (not head) they may join: the head is left alone, and the household now
        // shows to the station.
        let joined = station
            .post(
                &format!("/console/persons/320600/{ours}/household"),
                &[
                    ("household_number", "HH-2"),
                    ("relation", "子"),
                    ("action", "place"),
                ],
            )
            .await;
        assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.body);
        station
            .get("/console/households?region=320600&number=HH-2")
            .await
            .expect_text("现有成员（3人）");

        // The roster under a station's scope: the rest of the row is kept, the household refused.
        let storage = db.storage.clone();
        let person = yibao_domain::roster::parse_row(
            &yibao_domain::roster::RosterHeader::parse(&[
                "姓名".to_owned(),
                "身份证号码".to_owned(),
                "参保地区".to_owned(),
                "服务站".to_owned(),
            ])
            .unwrap(),
            &[
                "孙本站".to_owned(),
                ours.clone(),
                "320600".to_owned(),
                "ST-01".to_owned(),
            ],
            d(2026, 11, 10),
        )
        .unwrap();
        let only_st01 = |_: RegionCode, station: Option<&yibao_domain::StationCode>| {
            station.is_some_and(|s| s.as_str() == "ST-01")
        };
        let outcomes = storage
            .upsert_persons_checked(
                &[yibao_storage::PersonUpsert {
                    row_number: 2,
                    person,
                    enrolment: None,
                    household: yibao_domain::household::Placement::parse("HH-2", "户主").unwrap(),
                }],
                &yibao_storage::ChangeSource {
                    actor: "nt-st01".into(),
                    source: "roster:st01.csv".into(),
                },
                &only_st01,
            )
            .await
            .unwrap();
        assert!(outcomes[0].household_refused);
        assert!(of_household_in(&db, region, "HH-2")
            .await
            .iter()
            .any(|m| m.is_head() && m.id_number == id(&head)));

        // The head moves to another region: their membership here ends.
        let moved = storage
            .move_person(
                &id(&head),
                region,
                RegionCode::parse("460100").unwrap(),
                &yibao_storage::ChangeSource {
                    actor: "clerk".into(),
                    source: "move".into(),
                },
            )
            .await
            .unwrap();
        assert!(
            matches!(moved, yibao_storage::records::MoveOutcome::Moved { .. }),
            "{moved:?}"
        );
        let after = of_household_in(&db, region, "HH-2").await;
        assert!(after.iter().all(|m| !m.is_head()), "{after:?}");
        assert_eq!(after.iter().filter(|m| m.is_current()).count(), 2);
    })
    .await;
}

async fn of_household_in(db: &DbHandle, region: RegionCode, number: &str) -> Vec<MembershipRecord> {
    db.storage
        .household_memberships(
            region,
            MembershipsOf::Household(&HouseholdNumber::parse(number).unwrap()),
        )
        .await
        .unwrap()
}
