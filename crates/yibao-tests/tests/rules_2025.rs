//! The 2025 rules (issue 19) on every backend: the cover history file, and what a channel's search
//! says of when cover would start.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use yibao_channel_client::client::ChannelClient;
use yibao_channel_client::types::{PaymentResult, ReportPaymentRequest, SearchRequest};
use yibao_domain::{FeeYear, IdNumber, RegionCode, YearCover};
use yibao_roster_file::Limits;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::cover::import_cover_history;
use yibao_server::services::roster_import::{import_roster, ImportScope};
use yibao_server::{Clock, ServerSettings};
use yibao_tests::{make_id, on_each_test_db, DbHandle, TestServer};

const SECRET: &str = "hainan-secret-0123456789";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn haikou() -> RegionCode {
    RegionCode::parse("460100").unwrap()
}

/// Two adults of 海口 enrolled and assessed for 2027 on 2026-11-02 (the demo's 海口 2027 policy:
/// counting N, in-window waits from 1 January, an extension to 2027-02-28, late payment accepted).
async fn two_adults(db: &DbHandle) -> (String, String) {
    let storage = db.storage.clone();
    yibao::demo::load(storage.as_ref()).await.unwrap();
    let lapsed = make_id("460105", "1980-03-01", 301);
    let newcomer = make_id("460105", "1985-06-01", 302);
    let csv = format!("姓名,身份证号码,参保地区\n王五,{lapsed},460100\n赵六,{newcomer},460100\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let r = import_roster(
        storage.as_ref(),
        &path,
        "r.csv",
        &ImportScope::unrestricted("test"),
        d(2026, 11, 2),
        Some(FeeYear::new(2027).unwrap()),
        Limits::default(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.summary.enrolled, 2, "{:?}", r.rejections);
    assess_region(
        storage.as_ref(),
        haikou(),
        FeeYear::new(2027).unwrap(),
        "test",
        d(2026, 11, 2),
        &|_| {},
    )
    .await
    .unwrap();
    yibao::operator::channel_add(
        storage.as_ref(),
        None,
        "hainan",
        "gov_app",
        &["460100".to_owned()],
        1000,
        SECRET.to_owned(),
    )
    .await
    .unwrap();
    (lapsed, newcomer)
}

async fn server_on(db: &DbHandle, day: NaiveDate) -> (TestServer, ChannelClient) {
    let at = Utc
        .from_local_datetime(&day.and_hms_opt(2, 0, 0).unwrap())
        .unwrap();
    let server = TestServer::start(
        db.storage.clone(),
        Clock::fixed(at),
        ServerSettings::default(),
    )
    .await;
    let client = ChannelClient::builder(
        &server.base_url,
        "hainan".to_owned(),
        SECRET.as_bytes().to_vec(),
    )
    .clock_offset_secs(at.timestamp() - Utc::now().timestamp())
    .build()
    .unwrap();
    (server, client)
}

async fn cover_of(client: &ChannelClient, id: &str) -> yibao_channel_client::types::CoverIfPaid {
    let found = client
        .search(&SearchRequest {
            id_number: id.to_owned(),
            name: None,
            region: None,
            fee_year: Some(2027),
        })
        .await
        .unwrap();
    found.payables[0]
        .cover
        .clone()
        .expect("an unpaid payable says when cover starts")
}

#[tokio::test]
async fn a_search_says_when_cover_starts_in_the_window_and_for_a_late_payer() {
    on_each_test_db(|db| async move {
        let (lapsed, newcomer) = two_adults(&db).await;
        // The agency's history: insured in 2024, not in 2025 and 2026.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.csv");
        std::fs::write(
            &file,
            format!(
                "身份证号码,待遇年度,参保情况,补缴修复\n{lapsed},2024,居民医保,\n\
                 {lapsed},2025,未参保,否\n{lapsed},2026,未参保,\n{lapsed},2026,未参保,\n\
                 {newcomer},2031,居民医保,\n"
            ),
        )
        .unwrap();
        let report = import_cover_history(
            db.storage.as_ref(),
            "test",
            haikou(),
            &file,
            d(2026, 11, 2),
            Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            (report.rows_read, report.written, report.rejected),
            (5, 3, 2)
        );
        let codes: Vec<&str> = report.rejections.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, vec!["DUPLICATE_ROW", "INVALID_YEAR"]);
        assert!(report.rejection_file().contains("待遇年度"));
        let history = db
            .storage
            .stored_cover(
                haikou(),
                &IdNumber::parse(&lapsed, d(2026, 11, 2)).unwrap().id_number,
            )
            .await
            .unwrap()
            .history;
        assert_eq!(history.cover_in(2024), YearCover::Resident);
        assert_eq!(history.cover_in(2025), YearCover::None);

        // In the window: the lapsed adult waits 3 + 2 months from 1 January, the newcomer (no
        // history: a first enrolment) is covered the whole year.
        let (_server, client) = server_on(&db, d(2026, 11, 2)).await;
        let cover = cover_of(&client, &lapsed).await;
        assert_eq!(cover.code, "WAITING");
        assert_eq!(cover.starts_on, Some(d(2027, 6, 1)));
        assert_eq!(
            (cover.wait_months, cover.gap_years.clone()),
            (5, vec![2025, 2026])
        );
        assert!(
            cover.text.contains("自2027-06-01起享受待遇"),
            "{}",
            cover.text
        );
        let cover = cover_of(&client, &newcomer).await;
        assert_eq!(
            (cover.code.as_str(), cover.starts_on),
            ("IN_WINDOW", Some(d(2027, 1, 1)))
        );

        // After the window and its extension, a late payer waits from the payment.
        let (_late_server, late) = server_on(&db, d(2027, 3, 15)).await;
        let cover = cover_of(&late, &lapsed).await;
        assert_eq!(
            (cover.code.as_str(), cover.starts_on),
            ("WAITING", Some(d(2027, 8, 15)))
        );
        let cover = cover_of(&late, &newcomer).await;
        assert_eq!(
            (cover.code.as_str(), cover.starts_on),
            ("WAITING", Some(d(2027, 6, 15)))
        );
        assert_eq!(cover.if_paid_on, d(2027, 3, 15));

        // The agency's situation file: the newcomer left the army on 20 January, within the 90
        // days of 海口's exempt list, so is covered from the payment date without a wait.
        let situations = dir.path().join("situations.csv");
        let import_situations = |text: String| {
            std::fs::write(&situations, text).unwrap();
            import_cover_history(
                db.storage.as_ref(),
                "test",
                haikou(),
                &situations,
                d(2027, 3, 15),
                Limits::default(),
            )
        };
        let report = import_situations(format!(
            "身份证号码,情形,日期,职工医保连续月数,证明材料\n{newcomer},退役军人,2027-01-20,,退役证 TY-1\n\
             {newcomer},下岗,2027-01-20,,\n"
        ))
        .await
        .unwrap();
        assert_eq!((report.written, report.rejected), (1, 1));
        assert_eq!(report.rejections[0].code, "INVALID_SITUATION");
        let cover = cover_of(&late, &newcomer).await;
        assert_eq!(
            (cover.code.as_str(), cover.starts_on),
            ("EXEMPT_GROUP", Some(d(2027, 3, 15)))
        );
        // And left employee insurance on 31 January after 3 years: covered back from 1 February.
        let report = import_situations(format!(
            "身份证号码,情形,日期,职工医保连续月数\n{newcomer},职工医保转入,2027-01-31,36\n"
        ))
        .await
        .unwrap();
        assert_eq!(report.written, 1);
        let cover = cover_of(&late, &newcomer).await;
        assert_eq!(
            (cover.code.as_str(), cover.starts_on),
            ("FROM_EMPLOYEE", Some(d(2027, 2, 1)))
        );

        // Paid that day: the receipt and the posting to the agency say when cover starts.
        let search = |id: String| SearchRequest {
            id_number: id,
            name: None,
            region: None,
            fee_year: Some(2027),
        };
        let found = late.search(&search(lapsed.clone())).await.unwrap();
        let payable = &found.payables[0];
        let paid = late
            .report_payment(&ReportPaymentRequest {
                channel_txn_id: "T-LATE-1".into(),
                order_no: None,
                payable_ids: Some(vec![payable.payable_id.clone()]),
                amount: payable.amount,
                paid_at: DateTime::parse_from_rfc3339("2027-03-15T10:00:00+08:00").unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        let receipts = db
            .storage
            .receipts_of_person(&lapsed, &["460100".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].cover_starts_on, Some(d(2027, 8, 15)));
        assert_eq!(receipts[0].cover_code.as_deref(), Some("WAITING"));
        let posted = db.storage.due_events(i64::MAX / 2, 100).await.unwrap();
        let event = posted
            .iter()
            .find(|e| e.payload.contains(&payable.payable_id))
            .expect("the payment is posted");
        let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(payload["cover"]["starts_on"], "2027-08-15");
        assert_eq!(payload["cover"]["code"], "WAITING");
        // The paid payable carries no answer any more.
        let found = late.search(&search(lapsed.clone())).await.unwrap();
        assert_eq!(found.payables[0].cover, None);
    })
    .await;
}
