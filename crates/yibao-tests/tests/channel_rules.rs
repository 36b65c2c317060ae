//! Per-region channel rules (渠道收费范围, issue 17) on every backend: where 海口 lets only the bank
//! counter collect subsidised people's contributions, a government app's search says so and where
//! to pay, its order is refused with `CHANNEL_NOT_ALLOWED`, its report without an order is owed
//! back whole, the counter collects it, the citizen site offers only the counter, and a bank's
//! auto-debit run leaves the subsidised out.

use chrono::NaiveDate;
use yibao_channel_client::client::ClientError;
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentResult, ReportPaymentRequest, SearchRequest,
};
use yibao_server::services::debit;
use yibao_server::Clock;
use yibao_tests::{
    auto_debit_for, change_haikou_policy, change_haikou_rules, channel_at, china_time, haikou_2027,
    hainan_at, make_id, on_each_test_db, DbHandle,
};

const SECRET: &str = "hainan-secret-0123456789";
const COUNTER_SECRET: &str = "counter-secret-0123456789";
const HEADER: &str =
    "姓名,身份证号码,参保地区,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额\n";
const NOT_HERE: &str = "政务服务平台不能办理享受资助人员的缴费，请到乡镇/社区服务站缴费";

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// 海口 2027 with a full payer and a subsidised one (120 元 资助), only the bank counter allowed to
/// collect subsidised contributions, and a bank-counter channel beside the government app.
async fn world(db: &DbHandle) -> (String, String) {
    let full = make_id("460105", "1984-07-01", 701);
    let subsidised = make_id("460105", "1984-07-01", 702);
    let csv = format!("{HEADER}吴一,{full},460100,,,,,\n吴二,{subsidised},460100,资助,资助证明,Z-9,2027-12-31,120.00\n");
    haikou_2027(db, &csv, SECRET).await;
    change_haikou_rules(db, |rules| {
        rules.channels.subsidised = Some(vec!["bank_counter".into(), "auto_debit".into()]);
        rules.channels.full = Some(vec!["bank_counter".into(), "gov_app".into()]);
    })
    .await;
    yibao::operator::channel_add(
        db.storage.as_ref(),
        None,
        "counter",
        "bank_counter",
        &["460100".to_owned()],
        1000,
        COUNTER_SECRET.to_owned(),
    )
    .await
    .unwrap();
    (full, subsidised)
}

fn search(id: &str) -> SearchRequest {
    SearchRequest {
        id_number: id.to_owned(),
        fee_year: Some(2027),
        ..Default::default()
    }
}

/// Money for `p` paid at `when`, reported without an order.
fn report(
    txn: &str,
    p: &yibao_channel_client::types::Payable,
    when: chrono::DateTime<chrono::Utc>,
) -> ReportPaymentRequest {
    ReportPaymentRequest {
        channel_txn_id: txn.into(),
        order_no: None,
        payable_ids: Some(vec![p.payable_id.clone()]),
        amount: p.amount,
        paid_at: when.into(),
    }
}

#[tokio::test]
async fn a_channel_the_rules_keep_from_a_payable_says_where_to_pay_and_takes_no_money() {
    on_each_test_db(|db| async move {
        let (full, subsidised) = world(&db).await;
        let when = china_time(d(2026, 11, 10), 10);
        let (server, app) = hainan_at(&db, when, SECRET).await;

        // The full payer: nothing said. The subsidised one: not here, and where.
        let found = app.search(&search(&full)).await.unwrap();
        assert_eq!(found.payables[0].not_collectable, None);
        let found = app.search(&search(&subsidised)).await.unwrap();
        let p = &found.payables[0];
        let not_here = p.not_collectable.as_ref().expect("not collectable here");
        assert_eq!(not_here.code, "CHANNEL_NOT_ALLOWED");
        assert_eq!(not_here.text, NOT_HERE);

        // An order is refused with the same words; money reported without one goes back whole.
        let refused = app
            .open_order(&OpenOrderRequest {
                channel_order_no: "CR-ORDER-1".into(),
                payable_ids: vec![p.payable_id.clone()],
                amount: p.amount,
                payer: Payer::default(),
                family_account: None,
                health_card: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        match refused {
            ClientError::Api {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!((status, code.as_str()), (422, "CHANNEL_NOT_ALLOWED"));
                assert_eq!(message, NOT_HERE);
            }
            other => panic!("{other}"),
        }
        let reported = app
            .report_payment(&report("CR-T-1", p, when))
            .await
            .unwrap();
        assert_eq!(reported.result, PaymentResult::RefundPending);
        let refund = reported.refund.expect("owed back");
        assert_eq!(
            (refund.amount, refund.reason.as_str()),
            (p.amount, "NOT_PAYABLE")
        );

        // The citizen site offers only the counter for it, and says why.
        let page = server
            .client
            .post(server.url("/lookup"))
            .form(&[("id_number", subsidised.as_str()), ("name", "吴二")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("享受资助人员的缴费不能通过政务服务平台办理，请到乡镇/社区服务站缴费"),
            "{page}"
        );
        assert!(
            page.contains("<span class=\"chip\">银行柜面</span>"),
            "{page}"
        );
        assert!(
            !page.contains("<span class=\"chip\">政务服务平台</span>"),
            "{page}"
        );
        drop(server);

        // The counter collects it.
        let (_server, counter) = channel_at(&db, when, "counter", COUNTER_SECRET).await;
        let found = counter.search(&search(&subsidised)).await.unwrap();
        assert_eq!(found.payables[0].not_collectable, None);
        let paid = counter
            .report_payment(&report("CR-T-2", p, when))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
    })
    .await;
}

#[tokio::test]
async fn an_auto_debit_run_leaves_out_what_the_bank_may_not_collect() {
    on_each_test_db(|db| async move {
        let (full, subsidised) = world(&db).await;
        let debit_day = d(2026, 11, 20);
        let clock = Clock::fixed(china_time(debit_day, 10));
        auto_debit_for(&db, &clock, &[&full, &subsidised]).await;
        // The rules let auto-debit collect the subsidised but not the full amount: the run holds
        // 吴二 only.
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
        let members: Vec<&str> = items.iter().map(|i| i.id_number.as_str()).collect();
        assert_eq!(members, vec![subsidised.as_str()], "{items:?}");

        // Past the year's last date (the 2025 rules) no run is made for it, and staff are told.
        change_haikou_rules(&db, |rules| {
            rules.waiting.last_date = Some(d(2027, 3, 31));
        })
        .await;
        let refused = debit::create_run(
            db.storage.as_ref(),
            &clock,
            "bankad",
            "460100",
            2027,
            d(2027, 4, 1),
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code.as_str(), "YEAR_CLOSED");
        assert!(
            refused
                .message
                .contains("已过2027年度的最后缴费日 2027-03-31"),
            "{}",
            refused.message
        );
    })
    .await;
}

#[tokio::test]
async fn an_auto_debit_run_falls_in_the_collection_window() {
    on_each_test_db(|db| async move {
        let (_, subsidised) = world(&db).await;
        // 海口's 2027 window is 2026-09-01 to 2026-12-31, extended to 2027-02-28, late payment
        // accepted.
        let clock = Clock::fixed(china_time(d(2026, 8, 20), 10));
        auto_debit_for(&db, &clock, &[&subsidised]).await;
        let run_on = |day| debit::create_run(db.storage.as_ref(), &clock, "bankad", "460100", 2027, day);
        let early = run_on(d(2026, 8, 31)).await.unwrap_err();
        assert_eq!(early.code.as_str(), "WINDOW_CLOSED");
        assert_eq!(
            early.message,
            "扣款日期 2026-08-31 在征缴期开始之前（2027年度征缴期 2026-09-01 至 2026-12-31，延长至 2027-02-28），请改在征缴期内扣款"
        );
        // Its first day is in; so is a day after it, since 海口 takes late payment (the run made
        // on the first day holds the payable, so this one finds nothing to debit, but not for
        // its date).
        run_on(d(2026, 9, 1)).await.unwrap();
        let not_for_the_date = |r: Result<_, yibao_server::ServiceError>| {
            if let Err(e) = r {
                assert_ne!(e.code.as_str(), "WINDOW_CLOSED", "{}", e.message);
            }
        };
        not_for_the_date(run_on(d(2027, 1, 4)).await);

        // Where the region takes no late payment, a debit after the window is refused too; no
        // run is left behind.
        change_haikou_policy(&db, |policy| {
            policy.late_payment_allowed = false;
            policy.cover_rules.late = Default::default();
        })
        .await;
        // Within an extension of the window it is still in.
        change_haikou_policy(&db, |policy| {
            policy.late_payment_allowed = false;
            policy.cover_rules.late = Default::default();
            policy.cover_rules.waiting.extension_until = Some(d(2027, 1, 10));
        })
        .await;
        not_for_the_date(run_on(d(2027, 1, 4)).await);
        let past = run_on(d(2027, 1, 11)).await.unwrap_err();
        assert_eq!(
            past.message,
            "扣款日期 2027-01-11 已过征缴期，该统筹区本年度不接受逾期缴费（2027年度征缴期 2026-09-01 至 2026-12-31，延长至 2027-01-10），请改在征缴期内扣款"
        );
        change_haikou_policy(&db, |policy| {
            policy.cover_rules.waiting.extension_until = None;
        })
        .await;
        let runs = || db.storage.debit_runs(Some("460100"), 100);
        let runs_before = runs().await.unwrap().len();
        let late = run_on(d(2027, 1, 4)).await.unwrap_err();
        assert_eq!(late.code.as_str(), "WINDOW_CLOSED");
        assert_eq!(
            late.message,
            "扣款日期 2027-01-04 已过征缴期，该统筹区本年度不接受逾期缴费（2027年度征缴期 2026-09-01 至 2026-12-31），请改在征缴期内扣款"
        );
        assert_eq!(runs().await.unwrap().len(), runs_before);
    })
    .await;
}
