//! Payment reminders (缴费提醒, the 2025 rules, issue 19) on every backend: in the days before the
//! window closes each resident with the year unpaid and a phone on record gets one text message,
//! once in the region's interval, never a payer or one who turned reminders off, and a payment
//! made before the message goes out cancels it.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use yibao_channel_client::types::{PaymentResult, ReportPaymentRequest, SearchRequest};
use yibao_citizen::messages::{deliver_messages, DemoMailbox};
use yibao_domain::{FeeYear, RegionCode};
use yibao_server::services::debit::{self, AgreementInput};
use yibao_server::services::reminders::queue_reminders;
use yibao_server::{AppState, Clock};
use yibao_statement_file::{write_debit_result, DebitOutcome};
use yibao_tests::{haikou_2027, hainan_at, make_id, on_each_test_db, DbHandle};

const SECRET: &str = "hainan-secret-0123456789";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    yibao_server::clock::CHINA_STANDARD_TIME
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn haikou() -> RegionCode {
    RegionCode::parse("460100").unwrap()
}

/// Five adults of 海口 enrolled and assessed for 2027 (window to 2026-12-31): four with a phone.
async fn five_adults(db: &DbHandle) -> Vec<String> {
    let ids: Vec<String> = (0..5)
        .map(|i| make_id("460105", "1980-03-01", 401 + i))
        .collect();
    let mut csv = "姓名,身份证号码,参保地区,联系电话\n".to_owned();
    for (i, id) in ids.iter().enumerate() {
        let phone = if i == 4 {
            String::new()
        } else {
            format!("1990000{}", 4000 + i)
        };
        csv.push_str(&format!(
            "王{},{id},460100,{phone}\n",
            ["一", "二", "三", "四", "五"][i]
        ));
    }
    haikou_2027(db, &csv, SECRET).await;
    ids
}

async fn pay(db: &DbHandle, id: &str, txn: &str, day: NaiveDate) {
    let when = at(day, 10);
    let (_server, client) = hainan_at(db, when, SECRET).await;
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
    let p = &found.payables[0];
    let paid = client
        .report_payment(&ReportPaymentRequest {
            channel_txn_id: txn.into(),
            order_no: None,
            payable_ids: Some(vec![p.payable_id.clone()]),
            amount: p.amount,
            paid_at: when.into(),
        })
        .await
        .unwrap();
    assert_eq!(paid.result, PaymentResult::Paid);
}

#[tokio::test]
async fn reminders_go_out_once_not_to_payers_or_those_who_said_no_and_a_payment_cancels_one() {
    on_each_test_db(|db| async move {
        let ids = five_adults(&db).await;
        let policy = db
            .storage
            .get_fee_policy(haikou(), FeeYear::new(2027).unwrap())
            .await
            .unwrap()
            .unwrap();
        // 王二 has paid; 王三 turned reminders off; 王五 has no phone on record.
        pay(&db, &ids[1], "T-R-1", d(2026, 12, 10)).await;
        db.storage
            .citizen_accounts()
            .set_reminders("460100", &ids[2], false, at(d(2026, 12, 1), 9).timestamp())
            .await
            .unwrap();

        // Not yet: the demo's 海口 reminds from 15 days before the window closes (31 December).
        let early = d(2026, 12, 15);
        let round = queue_reminders(
            db.storage.as_ref(),
            &policy,
            early,
            at(early, 9).timestamp(),
        )
        .await
        .unwrap();
        assert!(!round.due);
        assert_eq!(round.queued, 0);

        let day = d(2026, 12, 20);
        let now = at(day, 9).timestamp();
        let round = queue_reminders(db.storage.as_ref(), &policy, day, now)
            .await
            .unwrap();
        assert!(round.due);
        // 王一 and 王四 (the demo's own residents of 海口 with a phone are reminded too).
        let ours_queued = round.queued;
        assert!(ours_queued >= 2, "{round:?}");
        // Again the same day, or a day later: nothing twice.
        let again = queue_reminders(db.storage.as_ref(), &policy, day, now + 3_600)
            .await
            .unwrap();
        assert_eq!(again.queued, 0);
        let next_day = d(2026, 12, 21);
        let again = queue_reminders(
            db.storage.as_ref(),
            &policy,
            next_day,
            at(next_day, 9).timestamp(),
        )
        .await
        .unwrap();
        assert_eq!(again.queued, 0);

        // 王四 pays before the message goes out: it is cancelled, not sent.
        pay(&db, &ids[3], "T-R-2", day).await;
        let mailbox = DemoMailbox::default();
        let state = AppState::new(db.storage.clone(), Clock::fixed(at(day, 11)));
        let mut sent = 0;
        loop {
            let n = deliver_messages(&state, &mailbox).await.unwrap();
            if n == 0 {
                break;
            }
            sent += n;
        }
        let counts = db
            .storage
            .citizen_accounts()
            .reminder_counts("460100", 2027)
            .await
            .unwrap();
        assert_eq!(counts.sent, sent as u64);
        assert_eq!(counts.cancelled, 1);
        assert_eq!(counts.sent + counts.cancelled, ours_queued);
        let messages = mailbox.messages();
        let to = |i: usize| {
            let masked = format!("199****{}", 4000 + i);
            messages.iter().filter(|m| m.phone_masked == masked).count()
        };
        // 王一 once; 王二 (paid), 王三 (said no), 王四 (paid before sending) never.
        assert_eq!(to(0), 1);
        assert_eq!((to(1), to(2), to(3)), (0, 0, 0));
        let text = &messages
            .iter()
            .find(|m| m.phone_masked == "199****4000")
            .unwrap()
            .text;
        assert!(
            text.contains("2027年度") && text.contains("2026年12月31日"),
            "{text}"
        );
        assert!(text.contains("元"), "{text}");
        // The ways to pay are 海口's own channels here (its government app only), then the
        // station; not the bank's auto-debit nor the family account, which most cannot use.
        assert!(text.contains("可通过政务服务平台或到服务站缴纳"), "{text}");
        assert!(
            !text.contains("委托扣款") && !text.contains("家庭共济"),
            "{text}"
        );
        assert!(text.contains("享受待遇"), "{text}");
        assert!(!text.contains(&ids[0]) && !text.contains("王一"), "{text}");

        // A week on, still unpaid: reminded again.
        let week_on = d(2026, 12, 28);
        let round = queue_reminders(
            db.storage.as_ref(),
            &policy,
            week_on,
            at(week_on, 9).timestamp(),
        )
        .await
        .unwrap();
        assert!(round.queued >= 1, "{round:?}");
    })
    .await;
}

/// The bank's answer to a debit run is told to each resident debited (扣款结果通知): succeeded,
/// failed for want of balance, failed for another reason; not to one who turned reminders off or
/// has no phone; once, whatever imports the file again.
#[tokio::test]
async fn a_debit_runs_outcomes_are_told_by_text_message_once() {
    on_each_test_db(|db| async move {
        let ids = five_adults(&db).await;
        // 王四 turned reminders off; 王五 has no phone on record.
        db.storage
            .citizen_accounts()
            .set_reminders("460100", &ids[3], false, at(d(2026, 11, 1), 9).timestamp())
            .await
            .unwrap();
        yibao::operator::channel_add(
            db.storage.as_ref(),
            None,
            "bankad",
            "auto_debit",
            &["460100".to_owned()],
            100,
            "bankad-secret-0123".to_owned(),
        )
        .await
        .unwrap();
        let debit_day = d(2026, 11, 20);
        let clock = Clock::fixed(at(debit_day, 10));
        for (i, id) in ids.iter().enumerate() {
            debit::sign_agreement(
                db.storage.as_ref(),
                &clock,
                AgreementInput {
                    agreement_no: &format!("AG-N-{i}"),
                    region: "460100",
                    channel_id: "bankad",
                    payer_id_number: id,
                    payer_name: "王五",
                    account: "6222 0212 3456 7890 123",
                    members: std::slice::from_ref(id),
                },
            )
            .await
            .unwrap();
        }
        let run = debit::create_run(
            db.storage.as_ref(),
            &clock,
            "bankad",
            "460100",
            2027,
            debit_day,
        )
        .await
        .unwrap();
        let items = db
            .storage
            .debit_run_items(&run.run_no, None, 100)
            .await
            .unwrap();
        assert_eq!(items.len(), 5);
        // 王一 and 王五 debited; 王二 short of balance; 王三's account frozen; 王四 short too.
        let outcomes: Vec<(String, DebitOutcome)> = items
            .iter()
            .map(|item| {
                let who = ids
                    .iter()
                    .position(|id| id == item.id_number.as_str())
                    .unwrap();
                let outcome = match who {
                    1 | 3 => DebitOutcome::Failed {
                        reason_code: "E01".into(),
                        reason: "余额不足".into(),
                    },
                    2 => DebitOutcome::Failed {
                        reason_code: "E02".into(),
                        reason: String::new(),
                    },
                    _ => DebitOutcome::Succeeded {
                        bank_txn_id: format!("BK-{}", item.item_ref),
                        amount: item.amount_fen,
                    },
                };
                (item.item_ref.clone(), outcome)
            })
            .collect();
        let file = write_debit_result(&run.run_no, "bankad", &outcomes).unwrap();
        let summary = debit::import_result(db.storage.as_ref(), &clock, &run.run_no, &file)
            .await
            .unwrap();
        assert_eq!((summary.succeeded, summary.failed), (2, 3));
        // A debited resident's receipt and posting say when cover starts, as a channel's own
        // report would (issue 19): paid in the window, from 1 January.
        let receipts = db
            .storage
            .receipts_of_person(&ids[0], &["460100".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(
            (
                receipts[0].cover_code.as_deref(),
                receipts[0].cover_starts_on
            ),
            (Some("IN_WINDOW"), Some(d(2027, 1, 1)))
        );
        let posted = db.storage.due_events(i64::MAX / 2, 100).await.unwrap();
        let payload: serde_json::Value = serde_json::from_str(
            &posted
                .iter()
                .find(|e| e.payload.contains(&receipts[0].payable_id))
                .expect("the debit is posted")
                .payload,
        )
        .unwrap();
        assert_eq!(payload["cover"]["code"], "IN_WINDOW");
        assert_eq!(payload["cover"]["starts_on"], "2027-01-01");
        // The same file again: the same answer, and no message twice.
        debit::import_result(db.storage.as_ref(), &clock, &run.run_no, &file)
            .await
            .unwrap();

        let mailbox = DemoMailbox::default();
        let state = AppState::new(db.storage.clone(), Clock::fixed(at(debit_day, 11)));
        while deliver_messages(&state, &mailbox).await.unwrap() > 0 {}
        let messages = mailbox.messages();
        let to = |i: usize| -> Vec<String> {
            let masked = format!("199****{}", 4000 + i);
            messages
                .iter()
                .filter(|m| m.phone_masked == masked)
                .map(|m| m.text.clone())
                .collect()
        };
        let ok = to(0);
        assert_eq!(ok.len(), 1, "{ok:?}");
        assert!(ok[0].contains("2026年11月20日由银行代扣成功"), "{}", ok[0]);
        let short = to(1);
        assert_eq!(short.len(), 1, "{short:?}");
        assert!(short[0].contains("账户余额不足"), "{}", short[0]);
        assert!(
            short[0].contains("请在2026年12月31日前通过政务服务平台或到服务站缴纳"),
            "{}",
            short[0]
        );
        assert!(!short[0].contains("委托扣款"), "{}", short[0]);
        let frozen = to(2);
        assert_eq!(frozen.len(), 1, "{frozen:?}");
        assert!(frozen[0].contains("账户冻结或已注销"), "{}", frozen[0]);
        assert!(to(3).is_empty(), "王四 turned reminders off");
        for text in messages.iter().map(|m| &m.text) {
            assert!(ids.iter().all(|id| !text.contains(id.as_str())), "{text}");
        }
        let counts = db
            .storage
            .citizen_accounts()
            .debit_notice_counts("460100", 2027)
            .await
            .unwrap();
        assert_eq!((counts.sent, counts.queued, counts.failed), (3, 0, 0));
    })
    .await;
}
