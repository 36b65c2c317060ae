//! The 2025 rules (issue 19) on every backend: the cover history file, and what a channel's search
//! says of when cover would start.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use yibao_channel_client::client::ChannelClient;
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentResult, ReportPaymentRequest, SearchRequest,
};
use yibao_domain::{FeePolicy, FeeYear, IdNumber, RegionCode, YearCover};
use yibao_roster_file::Limits;
use yibao_server::services::cover::{create_back_payments, import_cover_history};
use yibao_tests::{
    change_haikou_rules, haikou_2027, hainan_at, import_haikou_file, make_id, on_each_test_db,
    DbHandle, TestServer,
};

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
    let lapsed = make_id("460105", "1980-03-01", 301);
    let newcomer = make_id("460105", "1985-06-01", 302);
    let csv = format!("姓名,身份证号码,参保地区\n王五,{lapsed},460100\n赵六,{newcomer},460100\n");
    haikou_2027(db, &csv, SECRET).await;
    (lapsed, newcomer)
}

/// `lapsed`'s history: insured in 2024, not in 2025 and 2026.
async fn lapsed_in_2025_and_2026(db: &DbHandle, lapsed: &str) {
    import_haikou_file(
        db,
        &format!(
            "身份证号码,待遇年度,参保情况\n{lapsed},2024,居民医保\n{lapsed},2025,未参保\n\
             {lapsed},2026,未参保\n"
        ),
    )
    .await;
}

async fn server_on(db: &DbHandle, day: NaiveDate) -> (TestServer, ChannelClient) {
    let at = Utc
        .from_local_datetime(&day.and_hms_opt(2, 0, 0).unwrap())
        .unwrap();
    hainan_at(db, at, SECRET).await
}

/// A search for a person's 2027 payables.
fn search_2027(id: &str) -> SearchRequest {
    SearchRequest {
        id_number: id.to_owned(),
        insured_number: None,
        name: None,
        region: None,
        fee_year: Some(2027),
        agent_code: None,
    }
}

/// A channel reports that it took `amount` for `payable_ids` at `paid_at` (RFC 3339).
async fn pay(
    client: &ChannelClient,
    channel_txn_id: &str,
    payable_ids: Vec<String>,
    amount: i64,
    paid_at: &str,
) -> yibao_channel_client::types::PaymentReport {
    client
        .report_payment(&ReportPaymentRequest {
            channel_txn_id: channel_txn_id.into(),
            order_no: None,
            payable_ids: Some(payable_ids),
            amount,
            paid_at: DateTime::parse_from_rfc3339(paid_at).unwrap(),
        })
        .await
        .unwrap()
}

async fn cover_of(client: &ChannelClient, id: &str) -> yibao_channel_client::types::CoverIfPaid {
    let found = client.search(&search_2027(id)).await.unwrap();
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
        let report = import_haikou_file(&db, &format!(
                "身份证号码,待遇年度,参保情况,补缴修复\n{lapsed},2024,居民医保,\n\
                 {lapsed},2025,未参保,否\n{lapsed},2026,未参保,\n{lapsed},2026,未参保,\n\
                 {newcomer},2031,居民医保,\n"
            )).await;
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
        // A channel's search reads the same on its one connection, for the region where the
        // 2027 contribution is unpaid; a region the channel does not serve finds nothing.
        let lapsed_id = IdNumber::parse(&lapsed, d(2026, 11, 2)).unwrap().id_number;
        let found = db
            .storage
            .search_person(&lapsed_id, &["460100".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(found.views.len(), 1);
        assert_eq!(
            found.stored.get(&(haikou(), lapsed_id)).map(|s| &s.history),
            Some(&history)
        );
        let elsewhere = db
            .storage
            .search_person(&lapsed_id, &["110100".to_owned()], None)
            .await
            .unwrap();
        assert!(elsewhere.views.is_empty() && elsewhere.stored.is_empty());

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
        let dir = tempfile::tempdir().unwrap();
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
        let found = late.search(&search_2027(&lapsed)).await.unwrap();
        let payable = &found.payables[0];
        let paid = pay(&late, "T-LATE-1", vec![payable.payable_id.clone()], payable.amount, "2027-03-15T10:00:00+08:00").await;
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
        // The year's critical-illness reward goes with it: nothing earned yet after a break.
        assert_eq!(payload["cover"]["reward"]["raise_fen"], 0);
        assert!(payload["cover"]["reward"]["text"]
            .as_str()
            .unwrap()
            .contains("连续参保"));
        // The paid payable carries no answer any more.
        let found = late.search(&search_2027(&lapsed)).await.unwrap();
        assert_eq!(found.payables[0].cover, None);
    })
    .await;
}

/// 海口's 2027 policy, counting gap years before 2025 too, so a long break reaches the floor.
async fn count_years_before_2025(db: &DbHandle) -> FeePolicy {
    change_haikou_rules(db, |rules| rules.gaps.count_years_before_2025 = true).await
}

#[tokio::test]
async fn a_back_payment_shortens_the_wait_and_a_year_past_the_floor_is_refused() {
    on_each_test_db(|db| async move {
        let (long_break, short_break) = two_adults(&db).await;
        let policy = count_years_before_2025(&db).await;
        // 2023 to 2026 not insured: four gap years, counted N, wait 3 + 4 = 7 months, and the
        // floor of 6 after four consecutive gap years. 2025 and 2026 not insured: 3 + 2 = 5.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.csv");
        std::fs::write(
            &file,
            format!(
                "身份证号码,待遇年度,参保情况\n{long_break},2022,居民医保\n{short_break},2024,居民医保\n"
            ),
        )
        .unwrap();
        let today = d(2026, 11, 2);
        import_cover_history(db.storage.as_ref(), "test", haikou(), &file, today, Limits::default())
            .await
            .unwrap();
        let id = |text: &str| IdNumber::parse(text, today).unwrap().id_number;
        let buy_back = |person: &str, years: &[u16]| {
            let (person, years) = (id(person), years.to_vec());
            let (storage, policy) = (db.storage.clone(), policy.clone());
            async move {
                create_back_payments(storage.as_ref(), &policy, &person, &years, "test", today)
                    .await
            }
        };
        let (_server, client) = server_on(&db, today).await;
        let cover = cover_of(&client, &long_break).await;
        assert_eq!(
            (cover.wait_months, cover.starts_on),
            (7, Some(d(2027, 8, 1)))
        );

        // Only 2026 still shortens the wait: 2025 would go below the floor and is refused.
        let refused = buy_back(&long_break, &[2025]).await
        .unwrap_err();
        assert_eq!(refused.code.as_str(), "BACK_PAYMENT_REFUSED");
        assert!(
            refused.message.contains("BACK_PAYMENT_SHORTENS_NOTHING")
                && refused.message.contains("2025"),
            "{}",
            refused.message
        );
        let made = buy_back(&long_break, &[]).await
        .unwrap();
        assert_eq!(made.created, vec![2026]);
        assert_eq!((made.wait_now, made.wait_after), (7, 6));
        // Asking again creates nothing twice.
        let again = buy_back(&long_break, &[2026]).await
        .unwrap();
        assert!(again.created.is_empty());
        assert_eq!(again.open.len(), 1);

        // The channel finds it beside the year's contribution: the individual standard in full,
        // named as a back-payment, buying no cover of its own.
        let found = client.search(&search_2027(&long_break)).await.unwrap();
        assert_eq!(found.payables.len(), 2);
        let (contribution, back) = (&found.payables[0], &found.payables[1]);
        assert_eq!(contribution.back_payment, None);
        let bought = back.back_payment.as_ref().expect("a back-payment says so");
        assert_eq!(bought.buys_back_year, 2026);
        assert!(bought.text.contains("不享受2026年度医保待遇"), "{}", bought.text);
        assert!(back.item_name.contains("补缴2026年度"), "{}", back.item_name);
        assert_eq!(back.cover, None);
        let standard = policy
            .amount_for(yibao_domain::Category::Adult)
            .total()
            .as_fen();
        assert_eq!(back.amount, standard);
        // Until it is paid, the contribution still waits 7 months.
        assert_eq!(contribution.cover.as_ref().unwrap().wait_months, 7);

        // Both paid together: cover starts a month earlier, the receipt of the back-payment says
        // which year it bought back, and that year is on record as bought back.
        let paid = pay(&client, "T-BACK-1", vec![
                    contribution.payable_id.clone(),
                    back.payable_id.clone(),
                ], contribution.amount + back.amount, "2026-11-02T10:00:00+08:00").await;
        assert_eq!(paid.result, PaymentResult::Paid);
        let receipts = db
            .storage
            .receipts_of_person(&long_break, &["460100".to_owned()], None)
            .await
            .unwrap();
        let of = |payable_id: &str| {
            receipts
                .iter()
                .find(|r| r.payable_id == payable_id)
                .expect("a receipt per payable")
        };
        assert_eq!(
            of(&contribution.payable_id).cover_starts_on,
            Some(d(2027, 7, 1))
        );
        assert_eq!(of(&back.payable_id).buys_back_year, Some(2026));
        assert_eq!(of(&back.payable_id).cover_starts_on, None);
        let stored = db
            .storage
            .stored_cover(haikou(), &id(&long_break))
            .await
            .unwrap();
        assert!(stored.history.is_bought_back(2026));
        assert_eq!(stored.history.cover_in(2026), YearCover::None);
        assert_eq!(stored.history.cover_in(2027), YearCover::Resident);
        // Once the year is paid, nothing more is sold.
        let late = buy_back(&long_break, &[]).await
        .unwrap_err();
        assert!(
            late.message.contains("CONTRIBUTION_ALREADY_PAID"),
            "{}",
            late.message
        );

        // A back-payment still open when its year's contribution is paid alone shortens nothing
        // any more: it is cancelled with that payment and leaves the search.
        let made = buy_back(&short_break, &[2026]).await
        .unwrap();
        assert_eq!((made.wait_now, made.wait_after), (5, 4));
        let found = client.search(&search_2027(&short_break)).await.unwrap();
        assert_eq!(found.payables.len(), 2);
        let contribution = &found.payables[0];
        let cancelled = found.payables[1].clone();
        let paid = pay(&client, "T-BACK-2", vec![contribution.payable_id.clone()], contribution.amount, "2026-11-02T11:00:00+08:00").await;
        assert_eq!(paid.result, PaymentResult::Paid);
        let found = client.search(&search_2027(&short_break)).await.unwrap();
        assert_eq!(found.payables.len(), 1, "{:?}", found.payables);
        let receipts = db
            .storage
            .receipts_of_person(&short_break, &["460100".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(receipts[0].cover_starts_on, Some(d(2027, 6, 1)));
        // Money a channel reports for it all the same is owed back, never lost.
        let late_money = pay(&client, "T-BACK-3", vec![cancelled.payable_id.clone()], cancelled.amount, "2026-11-02T12:00:00+08:00").await;
        assert_eq!(late_money.result, PaymentResult::RefundPending);
        let owed = late_money.refund.expect("a refund owed");
        assert_eq!(
            (owed.amount, owed.reason),
            (
                cancelled.amount,
                yibao_channel_client::types::RefundReason::NotPayable
            )
        );
    })
    .await;
}

/// A year the rules no longer sell: an order is refused with the rule's code, and money a channel
/// reports anyway is owed back whole (`NOT_PAYABLE`), never applied to a year that buys nothing.
#[tokio::test]
async fn a_year_past_its_last_date_or_a_wait_past_its_end_is_refused_and_money_goes_back() {
    on_each_test_db(|db| async move {
        let (lapsed, newcomer) = two_adults(&db).await;
        lapsed_in_2025_and_2026(&db, &lapsed).await;
        let order = |no: &str, payable: &str, amount: i64| OpenOrderRequest {
            channel_order_no: no.to_owned(),
            payable_ids: vec![payable.to_owned()],
            amount,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };

        // 2027-09-10, after the extension (the demo's 海口 takes late payments): the lapsed
        // adult's wait of 5 months from the payment would end in 2028, which 海口 refuses.
        let (_server, client) = server_on(&db, d(2027, 9, 10)).await;
        let found = client.search(&search_2027(&lapsed)).await.unwrap();
        let (payable, amount) = (&found.payables[0].payable_id, found.payables[0].amount);
        assert_eq!(
            found.payables[0].cover.as_ref().unwrap().code,
            "WAIT_PAST_YEAR_END"
        );
        let refused = client
            .open_order(&order("Y-1", payable, amount))
            .await
            .unwrap_err();
        assert_eq!(refused.status(), Some(422));
        assert_eq!(refused.api_code(), Some("WAIT_PAST_YEAR_END"));
        assert!(refused.to_string().contains("超过本待遇年度"), "{refused}");
        let reported = pay(
            &client,
            "Y-T-1",
            vec![payable.clone()],
            amount,
            "2027-09-10T10:00:00+08:00",
        )
        .await;
        assert_eq!(reported.result, PaymentResult::RefundPending);
        let refund = reported.refund.expect("owed back whole");
        assert_eq!(
            (refund.amount, refund.reason.as_str()),
            (amount, "NOT_PAYABLE")
        );

        // 2028-01-05: the year's last date (31 December) has passed for everyone.
        let (_server, client) = server_on(&db, d(2028, 1, 5)).await;
        let found = client.search(&search_2027(&newcomer)).await.unwrap();
        let (payable, amount) = (&found.payables[0].payable_id, found.payables[0].amount);
        let refused = client
            .open_order(&order("Y-2", payable, amount))
            .await
            .unwrap_err();
        assert_eq!(refused.api_code(), Some("YEAR_CLOSED"));
        let reported = pay(
            &client,
            "Y-T-2",
            vec![payable.clone()],
            amount,
            "2028-01-05T10:00:00+08:00",
        )
        .await;
        assert_eq!(reported.result, PaymentResult::RefundPending);
        // Nothing was applied: both contributions are still unpaid.
        for id in [&lapsed, &newcomer] {
            let found = client.search(&search_2027(id)).await.unwrap();
            assert_eq!(
                found.payables[0].status,
                yibao_channel_client::types::PayableStatus::Unpaid
            );
        }
    })
    .await;
}

/// The agency's claims file: years without reimbursement raise the critical-illness cap (零报销激励),
/// a claim that used the raise clears them, and the console and `cover show` say how it was
/// reached.
#[tokio::test]
async fn imported_claims_give_the_zero_claim_raise_and_a_used_raise_clears_it() {
    on_each_test_db(|db| async move {
        let (lapsed, newcomer) = two_adults(&db).await;
        let report = import_haikou_file(
            &db,
            &format!(
                "身份证号码,待遇年度,基金报销,使用大病激励\n{newcomer},2024,是,\n\
                 {newcomer},2025,否,\n{newcomer},2026,否,否\n{lapsed},2025,否,\n\
                 {lapsed},2026,是,是\n{lapsed},2027,否,\n{lapsed},2024,否,是\n"
            ),
        )
        .await;
        assert_eq!(
            (report.rows_read, report.written, report.rejected),
            (7, 5, 2)
        );
        let columns: Vec<&str> = report
            .rejections
            .iter()
            .map(|r| r.column.as_str())
            .collect();
        assert_eq!(columns, vec!["待遇年度", "使用大病激励"]);
        let policy = db
            .storage
            .get_fee_policy(haikou(), FeeYear::new(2027).unwrap())
            .await
            .unwrap()
            .unwrap();
        let raise_of = |id: &str| {
            let storage = db.storage.clone();
            let policy = policy.clone();
            let id = IdNumber::parse(id, d(2026, 11, 2)).unwrap().id_number;
            async move {
                yibao_server::services::cover::read_person_cover(
                    storage.as_ref(),
                    &policy,
                    &id,
                    d(2026, 11, 2),
                )
                .await
                .unwrap()
                .reward
            }
        };
        let newcomer_raise = raise_of(&newcomer).await;
        assert_eq!(newcomer_raise.zero_claim_years, 2);
        assert_eq!(
            newcomer_raise.zero_claim_raise.as_fen(),
            2 * policy.cover_rules().rewards.zero_claim_raise_fen
        );
        assert!(newcomer_raise.summary_zh().contains("零报销激励"));
        let lapsed_raise = raise_of(&lapsed).await;
        assert_eq!(lapsed_raise.zero_claim_years, 0);
        assert_eq!(lapsed_raise.zero_claim_raise.as_fen(), 0);
    })
    .await;
}

/// A back-payment created while a channel pays the same year's contribution: whichever comes
/// first, no back-payment is left open beside a paid contribution (it is refused, or the payment
/// cancels it), on every backend.
#[tokio::test]
async fn a_back_payment_racing_the_contributions_payment_is_never_left_open() {
    on_each_test_db(|db| async move {
        let ids: Vec<String> = (0..6)
            .map(|i| make_id("460105", "1979-05-01", 331 + i))
            .collect();
        let mut csv = "姓名,身份证号码,参保地区\n".to_owned();
        let mut history = "身份证号码,待遇年度,参保情况\n".to_owned();
        for id in &ids {
            csv.push_str(&format!("钱七,{id},460100\n"));
            history.push_str(&format!(
                "{id},2024,居民医保\n{id},2025,未参保\n{id},2026,未参保\n"
            ));
        }
        haikou_2027(&db, &csv, SECRET).await;
        import_haikou_file(&db, &history).await;
        let policy = db
            .storage
            .get_fee_policy(haikou(), FeeYear::new(2027).unwrap())
            .await
            .unwrap()
            .unwrap();
        let (_server, client) = server_on(&db, d(2026, 11, 10)).await;
        for (i, id) in ids.iter().enumerate() {
            let found = client.search(&search_2027(id)).await.unwrap();
            let contribution = found.payables[0].clone();
            let person = IdNumber::parse(id, d(2026, 11, 10)).unwrap().id_number;
            let txn = format!("RACE-{i}");
            let (bought, paid) = tokio::join!(
                create_back_payments(
                    db.storage.as_ref(),
                    &policy,
                    &person,
                    &[2026],
                    "test",
                    d(2026, 11, 10),
                ),
                pay(
                    &client,
                    &txn,
                    vec![contribution.payable_id.clone()],
                    contribution.amount,
                    "2026-11-10T10:00:00+08:00",
                ),
            );
            assert_eq!(paid.result, PaymentResult::Paid);
            if let Err(refused) = &bought {
                assert_eq!(refused.code.as_str(), "BACK_PAYMENT_REFUSED", "{refused:?}");
            }
            let after = client.search(&search_2027(id)).await.unwrap();
            let open_back_payments = after
                .payables
                .iter()
                .filter(|p| p.back_payment.is_some())
                .filter(|p| p.status == yibao_channel_client::types::PayableStatus::Unpaid)
                .count();
            assert_eq!(open_back_payments, 0, "{id}: {bought:?}");
        }
        // The interleaving the race can take, made certain: the contribution is paid after the
        // offer was read and before the back-payment is written. The write holds the contribution
        // first and finds it paid: nothing is inserted.
        let paid = client.search(&search_2027(&ids[0])).await.unwrap().payables[0].clone();
        let late = yibao_storage::NewPayable {
            payable_id: yibao_server::services::assessment::new_payable_id("460100"),
            region: haikou(),
            fee_year: FeeYear::new(2027).unwrap(),
            id_number: IdNumber::parse(&ids[0], d(2026, 11, 10)).unwrap().id_number,
            assessment: yibao_domain::back_payment_assessment(
                &policy,
                yibao_domain::Category::Adult,
            ),
            payable_from: d(2026, 11, 10),
            inputs: "{}".to_owned(),
            assessed_by: "test".to_owned(),
            buys_back_year: Some(2025),
        };
        assert!(!db
            .storage
            .insert_back_payments(&paid.payable_id, std::slice::from_ref(&late))
            .await
            .unwrap());
        assert!(db
            .storage
            .payables_by_id(std::slice::from_ref(&late.payable_id))
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

/// 海口's 2027 policy with a late amount for adults: the full cost without the government's
/// subsidy, 1 090 元 (issue 19, part 4).
async fn late_amount_for_adults(db: &DbHandle, fen: i64) -> FeePolicy {
    change_haikou_rules(db, |rules| {
        rules.late.amounts_fen = [(yibao_domain::Category::Adult, fen)].into_iter().collect();
    })
    .await
}

/// Late payment at a configured late amount (逾期缴费金额): after the extension the year's unpaid
/// contributions are priced again, a paid one and one an order holds are not touched, money
/// reported for the old price is owed back, a second pass changes nothing, and the held one is
/// priced once its order has lapsed.
#[tokio::test]
async fn after_the_extension_unpaid_contributions_are_priced_at_the_late_amount() {
    on_each_test_db(|db| async move {
        let payer = make_id("460105", "1981-01-01", 311);
        let holder = make_id("460105", "1982-02-02", 312);
        let late = make_id("460105", "1983-03-03", 313);
        let csv = format!(
            "姓名,身份证号码,参保地区\n甲一,{payer},460100\n乙二,{holder},460100\n丙三,{late},460100\n"
        );
        haikou_2027(&db, &csv, SECRET).await;
        let policy = late_amount_for_adults(&db, 109_000).await;
        assert_eq!(policy.late_from(), d(2027, 3, 1));
        let year = FeeYear::new(2027).unwrap();
        let assess_on = |day: NaiveDate| {
            let storage = db.storage.clone();
            async move {
                yibao_server::services::assessment::assess_region(
                    storage.as_ref(),
                    haikou(),
                    year,
                    "test",
                    day,
                    &|_| {},
                )
                .await
                .unwrap()
            }
        };

        // The extension's last day: one adult pays the standard 420 元, one opens an order.
        let (_server, client) = server_on(&db, d(2027, 2, 28)).await;
        let found = client.search(&search_2027(&payer)).await.unwrap();
        assert_eq!(found.payables[0].amount, 42_000);
        let paid = pay(
            &client,
            "L-T-1",
            vec![found.payables[0].payable_id.clone()],
            42_000,
            "2027-02-28T10:00:00+08:00",
        )
        .await;
        assert_eq!(paid.result, PaymentResult::Paid);
        let held = client.search(&search_2027(&holder)).await.unwrap();
        client
            .open_order(&OpenOrderRequest {
                channel_order_no: "L-O-1".into(),
                payable_ids: vec![held.payables[0].payable_id.clone()],
                amount: 42_000,
                payer: Payer::default(),
                family_account: None,
 health_card: None,
 agent_code: None,
            })
            .await
            .unwrap();
        let old_late = client.search(&search_2027(&late)).await.unwrap().payables[0]
            .payable_id
            .clone();
        assert_eq!(assess_on(d(2027, 2, 28)).await.repriced, 0, "not before 1 March");

        // 1 March: the unpaid adult is priced at 1 090 元; the paid and the held ones are not.
        let report = assess_on(d(2027, 3, 1)).await;
        assert_eq!(report.repriced, 1);
        assert_eq!(report.created, 0);
        let (_server, client) = server_on(&db, d(2027, 3, 1)).await;
        let found = client.search(&search_2027(&late)).await.unwrap();
        assert_eq!(found.payables.len(), 1);
        assert_eq!(found.payables[0].amount, 109_000);
        assert_ne!(found.payables[0].payable_id, old_late);
        assert_eq!(
            client.search(&search_2027(&payer)).await.unwrap().payables[0].amount,
            42_000
        );
        assert_eq!(
            client.search(&search_2027(&holder)).await.unwrap().payables[0].amount,
            42_000
        );
        // Money reported for the old price is owed back whole; the new price is taken.
        let stale = pay(
            &client,
            "L-T-2",
            vec![old_late.clone()],
            42_000,
            "2027-03-01T10:00:00+08:00",
        )
        .await;
        assert_eq!(stale.result, PaymentResult::RefundPending);
        assert_eq!(stale.refund.unwrap().reason.as_str(), "NOT_PAYABLE");
        let new_id = found.payables[0].payable_id.clone();
        let paid_late = pay(
            &client,
            "L-T-3",
            vec![new_id],
            109_000,
            "2027-03-01T10:05:00+08:00",
        )
        .await;
        assert_eq!(paid_late.result, PaymentResult::Paid);
        assert_eq!(assess_on(d(2027, 3, 1)).await.repriced, 0, "idempotent");

        // The order lapses; the next pass prices the held contribution too.
        db.storage
            .expire_orders(
                Utc.with_ymd_and_hms(2027, 3, 2, 0, 0, 0)
                    .unwrap()
                    .timestamp(),
            )
            .await
            .unwrap();
        assert_eq!(assess_on(d(2027, 3, 2)).await.repriced, 1);
        let found = client.search(&search_2027(&holder)).await.unwrap();
        assert_eq!(found.payables[0].amount, 109_000);
        // The replacement records what replaced it and why.
        let payables = db
            .storage
            .payables_of_person(&IdNumber::parse(&holder, d(2027, 3, 2)).unwrap().id_number)
            .await
            .unwrap();
        let current = payables
            .iter()
            .find(|p| p.payable_id == found.payables[0].payable_id)
            .unwrap();
        assert_eq!(current.payable_from, d(2027, 3, 2));
        assert_eq!(current.supersedes.as_deref(), Some(held.payables[0].payable_id.as_str()));
        assert!(current.inputs.contains("\"late_amount\":true"), "{}", current.inputs);

        // The agency corrects the late amount later: what is still unpaid follows it.
        late_amount_for_adults(&db, 120_000).await;
        assert_eq!(assess_on(d(2027, 3, 3)).await.repriced, 1);
        let found = client.search(&search_2027(&holder)).await.unwrap();
        assert_eq!(found.payables[0].amount, 120_000);
        assert_eq!(assess_on(d(2027, 3, 3)).await.repriced, 0, "idempotent");
    })
    .await;
}

/// The server prices late payers by itself (the hourly pass of `background::tick`): nobody has to
/// run the assessment again when the extension ends.
#[tokio::test]
async fn the_server_prices_late_payers_by_itself_after_the_extension() {
    on_each_test_db(|db| async move {
        let (lapsed, _) = two_adults(&db).await;
        late_amount_for_adults(&db, 109_000).await;
        let on = |day: NaiveDate| {
            yibao_server::AppState::new(
                db.storage.clone(),
                yibao_server::Clock::fixed(
                    Utc.from_local_datetime(&day.and_hms_opt(2, 0, 0).unwrap())
                        .unwrap(),
                ),
            )
        };
        // In the extension: nothing changes.
        yibao_server::background::price_late_payers_now(&on(d(2027, 2, 28))).await;
        let (_server, client) = server_on(&db, d(2027, 2, 28)).await;
        let found = client.search(&search_2027(&lapsed)).await.unwrap();
        assert_eq!(found.payables[0].amount, 42_000);
        // The day after: both adults' contributions cost the late amount.
        yibao_server::background::price_late_payers_now(&on(d(2027, 3, 1))).await;
        let found = client.search(&search_2027(&lapsed)).await.unwrap();
        assert_eq!(found.payables[0].amount, 109_000);
    })
    .await;
}

/// A back-payment an order holds when its year's contribution is paid through another channel is
/// cancelled with the open ones: the order's report is owed back whole, and the year is not
/// recorded as bought back (it would shorten nothing, cover's start being settled).
#[tokio::test]
async fn a_back_payment_held_by_an_order_goes_when_the_contribution_is_paid_elsewhere() {
    on_each_test_db(|db| async move {
        let (lapsed, _) = two_adults(&db).await;
        lapsed_in_2025_and_2026(&db, &lapsed).await;
        let today = d(2026, 11, 2);
        let policy = db
            .storage
            .get_fee_policy(haikou(), FeeYear::new(2027).unwrap())
            .await
            .unwrap()
            .unwrap();
        let person = IdNumber::parse(&lapsed, today).unwrap().id_number;
        create_back_payments(
            db.storage.as_ref(),
            &policy,
            &person,
            &[2026],
            "test",
            today,
        )
        .await
        .unwrap();
        let (_server, client) = server_on(&db, today).await;
        let found = client.search(&search_2027(&lapsed)).await.unwrap();
        let (contribution, back) = (&found.payables[0], &found.payables[1]);
        assert_eq!(back.back_payment.as_ref().unwrap().buys_back_year, 2026);
        // The channel opens an order for the back-payment only, then waits for the resident.
        let order = client
            .open_order(&OpenOrderRequest {
                channel_order_no: "BB-O-1".into(),
                payable_ids: vec![back.payable_id.clone()],
                amount: back.amount,
                payer: Payer::default(),
                family_account: None,
                health_card: None,
                agent_code: None,
            })
            .await
            .unwrap();
        // Meanwhile the contribution is paid on its own: cover's start is settled without 2026.
        let paid = pay(
            &client,
            "BB-T-1",
            vec![contribution.payable_id.clone()],
            contribution.amount,
            "2026-11-02T10:00:00+08:00",
        )
        .await;
        assert_eq!(paid.result, PaymentResult::Paid);
        let found = client.search(&search_2027(&lapsed)).await.unwrap();
        assert_eq!(
            found.payables.len(),
            1,
            "the held back-payment is cancelled"
        );
        // And no longer held: neither the order's number nor its expiry stays on it.
        let stored = db
            .storage
            .payables_with_cover(std::slice::from_ref(&back.payable_id))
            .await
            .unwrap();
        let held = &stored.views[0].payable;
        assert_eq!(held.status, yibao_domain::PayableStatus::Cancelled);
        assert_eq!((&held.locked_by, held.locked_until), (&None, None));
        // Money reported against an order the channel never opened (its own number instead of
        // yibao's) is held and owed back whole, not refused.
        let against_order = |txn: &str, order_no: &str| ReportPaymentRequest {
            channel_txn_id: txn.into(),
            order_no: Some(order_no.into()),
            payable_ids: None,
            amount: back.amount,
            paid_at: DateTime::parse_from_rfc3339("2026-11-02T10:05:00+08:00").unwrap(),
        };
        let unknown = client
            .report_payment(&against_order("BB-T-0", "BB-O-1"))
            .await
            .unwrap();
        assert_eq!(unknown.result, PaymentResult::RefundPending);
        assert_eq!(unknown.refund.unwrap().amount, back.amount);
        // The order's payment comes in: owed back whole, nothing bought back.
        let late = client
            .report_payment(&against_order("BB-T-2", &order.order.order_no))
            .await
            .unwrap();
        assert_eq!(late.result, PaymentResult::RefundPending);
        let refund = late.refund.expect("owed back");
        assert_eq!(
            (refund.amount, refund.reason.as_str()),
            (back.amount, "NOT_PAYABLE")
        );
        let stored = db.storage.stored_cover(haikou(), &person).await.unwrap();
        assert!(
            !stored.history.is_bought_back(2026),
            "the year is not recorded as bought back"
        );
    })
    .await;
}

/// A bank's auto-debit run leaves out a lapsed person whose wait would end after 31 December
/// where the region refuses that (`WAIT_PAST_YEAR_END`), and says how many; the continuously
/// insured are taken. Before, the bank debited both and the lapsed one's money bought nothing.
#[tokio::test]
async fn an_auto_debit_run_leaves_out_whom_the_rules_would_not_sell_the_year() {
    on_each_test_db(|db| async move {
        let (lapsed, continuous) = two_adults(&db).await;
        lapsed_in_2025_and_2026(&db, &lapsed).await;
        let history: String = (2020..=2026)
            .map(|y| format!("{continuous},{y},居民医保\n"))
            .collect();
        import_haikou_file(&db, &format!("身份证号码,待遇年度,参保情况\n{history}")).await;
        // Waits of 12 months plus one per gap year, from 1 January for in-window payers: 14
        // months for the lapsed one, past the year's end.
        change_haikou_rules(&db, |rules| rules.waiting.fixed_months = 12).await;
        let day = d(2026, 11, 20);
        let clock = yibao_server::Clock::fixed(yibao_tests::china_time(day, 10));
        yibao_tests::auto_debit_for(&db, &clock, &[&lapsed, &continuous]).await;
        // Made in the console: its run page says one was left out, and why.
        yibao_tests::create_admin(db.storage.as_ref()).await;
        let server = TestServer::start(db.storage.clone(), clock, Default::default()).await;
        let admin = yibao_tests::console::ConsoleSession::sign_in(
            &server,
            yibao_tests::ADMIN.0,
            yibao_tests::ADMIN.1,
        )
        .await;
        let made = admin
            .post(
                "/console/debit/runs",
                &[
                    ("run_channel_id", "bankad"),
                    ("run_region", "460100"),
                    ("fee_year", "2027"),
                    ("debit_date", "2026-11-20"),
                ],
            )
            .await;
        let run_path = made.location.clone().expect("to the run's page");
        assert!(run_path.ends_with("?left_out=1"), "{run_path}");
        admin
            .get(&run_path)
            .await
            .expect_text("另有 1 人已签约但未列入本批次");
        let run_no = run_path
            .trim_end_matches("?left_out=1")
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let items = db.storage.debit_run_items(&run_no, None, 10).await.unwrap();
        let taken: Vec<&str> = items.iter().map(|i| i.id_number.as_str()).collect();
        assert_eq!(taken, vec![continuous.as_str()]);
    })
    .await;
}
