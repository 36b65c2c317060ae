//! Settlement on each backend: auto-debit agreements and runs (with a WeChat payment racing the
//! bank for a locked payable), reconciliation of hand-made statements in all three formats (every
//! class, the carry-over pool, re-upload), the refund lifecycle for every source, and the staff
//! reports over HTTP.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use yibao_channel_client::client::{ChannelClient, ClientError};
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentResult, RefundResultRequest, ReportPaymentRequest,
    SearchRequest,
};
use yibao_domain::settlement::RefundReason;
use yibao_roster_file::Limits;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::debit::{self, AgreementInput};
use yibao_server::services::reconciliation::{reconcile, StatementUpload};
use yibao_server::services::refunds::refund_paid_payable;
use yibao_server::services::roster_import::{import_roster, ImportScope};
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_statement_file::{write_debit_result, DebitOutcome, Fen, StatementFormat};
use yibao_storage::Storage;
use yibao_tests::xlsx::{cell, sheet_of};
use yibao_tests::{make_id, on_each_test_db, DbHandle, TestServer};

/// 2020-11-02 10:00 Beijing, a Monday inside 南通市's 2021 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 11, d).unwrap()
}

fn paid_at() -> DateTime<FixedOffset> {
    instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

const SECRET_WECHAT: &str = "wechat-secret-0123456789";
const SECRET_ALIPAY: &str = "alipay-secret-0123456789";
const SECRET_BANK: &str = "bankad-secret-0123456789";

struct World {
    server: TestServer,
    wechat: ChannelClient,
    alipay: ChannelClient,
    /// Adults of 南通市, 43000 fen each.
    adults: Vec<String>,
    storage: Arc<dyn Storage>,
    clock: Clock,
    token: String,
}

async fn world(db: &DbHandle) -> World {
    let storage = db.storage.clone();
    yibao::demo::load(storage.as_ref()).await.unwrap();
    let mut csv = String::from("姓名,身份证号码,参保地区\n");
    let adults: Vec<String> = (0..8)
        .map(|i| make_id("320602", "1980-01-01", 300 + i))
        .collect();
    for id in &adults {
        csv.push_str(&format!("王五,{id},320600\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let scope = ImportScope::unrestricted("test");
    let r = import_roster(
        storage.as_ref(),
        &path,
        "r.csv",
        &scope,
        day(2),
        None,
        Limits::default(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.summary.enrolled, 8, "{:?}", r.rejections);
    let region = yibao_domain::RegionCode::parse("320600").unwrap();
    let year = yibao_domain::FeeYear::new(2021).unwrap();
    assess_region(storage.as_ref(), region, year, "test", day(2), &|_| {})
        .await
        .unwrap();
    for (id, kind, secret) in [
        ("wechat", "wechat", SECRET_WECHAT),
        ("alipay", "alipay", SECRET_ALIPAY),
        ("bankad", "auto_debit", SECRET_BANK),
    ] {
        yibao_tests::add_channel(storage.as_ref(), id, kind, secret).await;
    }
    yibao_tests::create_admin(storage.as_ref()).await;
    let clock = Clock::fixed(instant());
    let server = TestServer::start_with_state(
        AppState::new(storage.clone(), clock.clone()),
        ServerSettings::default(),
    )
    .await;
    let offset = instant().timestamp() - Utc::now().timestamp();
    let client = |id: &str, secret: &str| {
        ChannelClient::builder(&server.base_url, id.to_owned(), secret.as_bytes().to_vec())
            .clock_offset_secs(offset)
            .build()
            .unwrap()
    };
    let login: Value = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "root", "password": "admin-password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    World {
        wechat: client("wechat", SECRET_WECHAT),
        alipay: client("alipay", SECRET_ALIPAY),
        token: login["token"].as_str().unwrap().to_owned(),
        server,
        adults,
        storage,
        clock,
    }
}

async fn payable_of(w: &World, id: &str) -> String {
    let found = w
        .wechat
        .search(&SearchRequest {
            id_number: id.to_owned(),
            insured_number: None,
            name: Some("王五".into()),
            region: None,
            fee_year: None,
            agent_code: None,
        })
        .await
        .unwrap();
    found.payables[0].payable_id.clone()
}

async fn status_of(w: &World, payable_id: &str) -> String {
    w.storage
        .payables_by_id(&[payable_id.to_owned()])
        .await
        .unwrap()[0]
        .payable
        .status
        .code()
        .to_owned()
}

fn api_code(err: &ClientError) -> (u16, String) {
    (
        err.status().unwrap_or(0),
        err.api_code().unwrap_or_default().to_owned(),
    )
}

async fn assert_invariants(w: &World) {
    let report = w.storage.check_invariants().await.unwrap();
    assert!(report.holds(), "{report:?}");
}

async fn sign(w: &World, no: &str, payer: &str, members: &[String]) {
    debit::sign_agreement(
        w.storage.as_ref(),
        &w.clock,
        AgreementInput {
            agreement_no: no,
            region: "320600",
            channel_id: "bankad",
            payer_id_number: payer,
            payer_name: "王五",
            account: "6222 0212 3456 7890 123",
            members,
        },
    )
    .await
    .unwrap();
}

/// The bank's run over the agreements signed, debited on day 2.
async fn bank_run(w: &World) -> yibao_storage::settlement::DebitRunRecord {
    debit::create_run(
        w.storage.as_ref(),
        &w.clock,
        "bankad",
        "320600",
        2021,
        day(2),
    )
    .await
    .unwrap()
}

/// A result file answering every item of a run: the items of the payables in `fail` fail with
/// E01 (余额不足), the rest succeed.
async fn result_file(w: &World, run_no: &str, fail: &[String]) -> Vec<u8> {
    let items = w.storage.debit_run_items(run_no, None, 1000).await.unwrap();
    let outcomes: Vec<(String, DebitOutcome)> = items
        .iter()
        .map(|item| {
            let outcome = if fail.contains(&item.payable_id) {
                DebitOutcome::Failed {
                    reason_code: "E01".into(),
                    reason: "余额不足".into(),
                }
            } else {
                DebitOutcome::Succeeded {
                    bank_txn_id: format!("BK-{}", item.item_ref),
                    amount: item.amount_fen,
                }
            };
            (item.item_ref.clone(), outcome)
        })
        .collect();
    write_debit_result(run_no, "bankad", &outcomes).unwrap()
}

#[tokio::test]
async fn a_debit_run_locks_its_payables_and_the_banks_result_pays_them() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        // A family agreement (two people) and one for a payer alone; one member per person only.
        sign(
            &w,
            "AG-FAMILY-1",
            &w.adults[0],
            &[w.adults[0].clone(), w.adults[1].clone()],
        )
        .await;
        sign(&w, "AG-SINGLE-2", &w.adults[2], &[]).await;
        let again = debit::sign_agreement(
            w.storage.as_ref(),
            &w.clock,
            AgreementInput {
                agreement_no: "AG-OTHER-3",
                region: "320600",
                channel_id: "bankad",
                payer_id_number: &w.adults[3],
                payer_name: "王五",
                account: "6222********1234",
                members: std::slice::from_ref(&w.adults[1]),
            },
        )
        .await
        .unwrap_err();
        assert!(again.message.contains("AG-FAMILY-1"), "{}", again.message);
        // A WeChat channel is not a bank.
        let not_bank = debit::sign_agreement(
            w.storage.as_ref(),
            &w.clock,
            AgreementInput {
                agreement_no: "AG-WX-4",
                region: "320600",
                channel_id: "wechat",
                payer_id_number: &w.adults[4],
                payer_name: "王五",
                account: "6222021234567890",
                members: &[],
            },
        )
        .await
        .unwrap_err();
        assert_eq!(not_bank.code.as_str(), "REGION_NOT_ALLOWED");
        let stored = w
            .storage
            .agreements(Some("320600"), Some(&w.adults[1]), 10)
            .await
            .unwrap();
        assert_eq!(
            stored[0].account_masked, "6222****0123",
            "only the masked account is kept"
        );
        // A cancelled agreement frees its members; its payer is no longer debited.
        sign(&w, "AG-GONE-5", &w.adults[6], &[]).await;
        let gone = w
            .storage
            .cancel_agreement("320600", "AG-GONE-5", day(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (gone.status.code(), gone.cancelled_on),
            ("cancelled", Some(day(2)))
        );
        sign(&w, "AG-AGAIN-6", &w.adults[7], &[w.adults[6].clone()]).await;
        w.storage
            .cancel_agreement("320600", "AG-AGAIN-6", day(2))
            .await
            .unwrap()
            .unwrap();

        let run = bank_run(&w).await;
        assert_eq!((run.item_count, run.total_fen.as_fen()), (3, 3 * 43000));
        // One run per bank, region, year and date.
        assert_eq!(
            debit::create_run(
                w.storage.as_ref(),
                &w.clock,
                "bankad",
                "320600",
                2021,
                day(2)
            )
            .await
            .unwrap_err()
            .code
            .as_str(),
            "ALREADY_EXISTS"
        );
        let request = String::from_utf8(
            debit::request_file(w.storage.as_ref(), &run.run_no)
                .await
                .unwrap(),
        )
        .unwrap();
        assert!(
            request.starts_with(&format!(
                "H|{}|bankad|320600|20201102|3|129000\n",
                run.run_no
            )),
            "{request}"
        );
        assert_eq!(request.lines().filter(|l| l.starts_with("D|")).count(), 3);

        // Every other channel is told the bank is debiting.
        let p0 = payable_of(&w, &w.adults[0]).await;
        let err = w
            .wechat
            .open_order(&OpenOrderRequest {
                channel_order_no: "WX-O-1".into(),
                payable_ids: vec![p0.clone()],
                amount: 43000,
                payer: Payer::default(),
                family_account: None,
                health_card: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (409, "LOCKED".into()));
        assert!(err.to_string().contains("银行扣费进行中"), "{err}");
        let direct = w
            .wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "WX-T-1",
                vec![p0.clone()],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(
            direct.result,
            PaymentResult::RefundPending,
            "money taken for a payable being debited is owed back"
        );

        // The bank answers: the single payer's debit failed (余额不足), the family's succeeded.
        let p2 = payable_of(&w, &w.adults[2]).await;
        let file = result_file(&w, &run.run_no, std::slice::from_ref(&p2)).await;
        let summary = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap();
        assert_eq!(
            (summary.succeeded, summary.failed, summary.refunds_owed),
            (2, 1, 0),
            "{summary:?}"
        );
        assert_eq!(summary.failures.get("E01"), Some(&1));
        let items = w
            .storage
            .debit_run_items(&run.run_no, Some("failed"), 10)
            .await
            .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            status_of(&w, &items[0].payable_id).await,
            "unpaid",
            "a failed debit frees the payable"
        );
        assert_eq!(status_of(&w, &p0).await, "paid");
        let receipts = w
            .storage
            .receipts_of_person(&w.adults[0], &["320600".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(receipts.len(), 1, "the bank's payment gets a receipt");
        // The failed person can now pay through WeChat.
        let failed_person = items[0].payable_id.clone();
        let paid = w
            .wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "WX-T-2",
                vec![failed_person],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);

        // The same file again answers the same; another file for the run is refused.
        let again = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap();
        assert_eq!(again, summary);
        let other = result_file(&w, &run.run_no, &[]).await;
        assert_eq!(
            debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &other)
                .await
                .unwrap_err()
                .code
                .as_str(),
            "IDEMPOTENCY_CONFLICT"
        );
        // A file that does not answer every item is refused whole.
        let run_items = w
            .storage
            .debit_run_items(&run.run_no, None, 10)
            .await
            .unwrap();
        let short = write_debit_result(
            &run.run_no,
            "bankad",
            &[(
                run_items[0].item_ref.clone(),
                DebitOutcome::Failed {
                    reason_code: "E01".into(),
                    reason: String::new(),
                },
            )],
        )
        .unwrap();
        assert_eq!(
            debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &short)
                .await
                .unwrap_err()
                .code
                .as_str(),
            "BAD_DEBIT_FILE"
        );
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn a_wechat_payment_racing_the_bank_for_a_locked_payable_never_pays_it_twice() {
    on_each_test_db(|db| async move {
        let w = Arc::new(world(&db).await);
        sign(&w, "AG-RACE-1", &w.adults[0], &[]).await;
        let run = bank_run(&w).await;
        let p0 = payable_of(&w, &w.adults[0]).await;
        let file = result_file(&w, &run.run_no, &[]).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let w = w.clone();
            let p0 = p0.clone();
            tasks.push(tokio::spawn(async move {
                w.wechat
                    .report_payment(&ReportPaymentRequest::for_payables(
                        format!("WX-RACE-{i}"),
                        vec![p0],
                        43000,
                        paid_at(),
                    ))
                    .await
                    .unwrap()
                    .result
            }));
        }
        let bank = {
            let w = w.clone();
            let run_no = run.run_no.clone();
            tokio::spawn(async move {
                debit::import_result(w.storage.as_ref(), &w.clock, &run_no, &file)
                    .await
                    .unwrap()
            })
        };
        let mut wechat_paid = 0;
        for t in tasks {
            if t.await.unwrap() == PaymentResult::Paid {
                wechat_paid += 1;
            }
        }
        let summary = bank.await.unwrap();
        assert_eq!(
            wechat_paid, 0,
            "the lock holds: WeChat's money is owed back"
        );
        assert_eq!((summary.succeeded, summary.refunds_owed), (1, 0));
        assert_eq!(w.wechat.pending_refunds().await.unwrap().len(), 8);
        assert_eq!(status_of(&w, &p0).await, "paid");
        assert_invariants(&w).await;
    })
    .await;
}

/// The bank reversed one debit before its result arrived (冲正 first): that item takes no
/// money and its payable is free again, while the others of the same file are paid. (Such a
/// batch leaves the set-based path and is stored one payment at a time.)
#[tokio::test]
async fn a_debit_the_bank_reversed_first_pays_nothing_and_the_rest_are_paid() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        sign(
            &w,
            "AG-REV-1",
            &w.adults[0],
            &[
                w.adults[0].clone(),
                w.adults[1].clone(),
                w.adults[2].clone(),
            ],
        )
        .await;
        let run = bank_run(&w).await;
        let items = w
            .storage
            .debit_run_items(&run.run_no, None, 10)
            .await
            .unwrap();
        assert_eq!(items.len(), 3);
        let reversed = &items[1];
        let outcome = w
            .storage
            .reverse_payment(&yibao_storage::collection::NewReversal {
                channel_id: "bankad".into(),
                channel_txn_id: format!("BK-{}", reversed.item_ref),
                reason: "冲正".into(),
                funds_returned: true,
                now: instant().timestamp(),
                event_ids: vec!["EV-REV-1".into()],
                refund_no: "RF-REV-1".into(),
                refund_due: yibao_domain::DueDate {
                    date: day(4),
                    years_without_calendar: Vec::new(),
                },
            })
            .await
            .unwrap();
        assert_eq!(
            outcome,
            yibao_storage::collection::ReversalOutcome::RecordedAhead
        );
        let file = result_file(&w, &run.run_no, &[]).await;
        let summary = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap();
        assert_eq!((summary.refunds_owed, summary.failed), (0, 0));
        for item in &items {
            let expected = if item.seq == reversed.seq {
                "unpaid"
            } else {
                "paid"
            };
            assert_eq!(
                status_of(&w, &item.payable_id).await,
                expected,
                "item {}",
                item.seq
            );
        }
        let decided = w
            .storage
            .debit_run_items(&run.run_no, None, 10)
            .await
            .unwrap();
        for item in &decided {
            assert_eq!(
                item.payment_no.is_none(),
                item.seq == reversed.seq,
                "item {} names its payment, but for the reversed one",
                item.seq
            );
        }
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn an_abandoned_run_frees_its_payables_and_a_late_result_loses_no_money() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        sign(
            &w,
            "AG-LATE-1",
            &w.adults[0],
            &[w.adults[0].clone(), w.adults[1].clone()],
        )
        .await;
        let run = bank_run(&w).await;
        assert_eq!(
            w.storage
                .abandon_expired_debit_runs(run.lock_until - 1)
                .await
                .unwrap(),
            0,
            "not before its bound"
        );
        assert_eq!(
            w.storage
                .abandon_expired_debit_runs(run.lock_until)
                .await
                .unwrap(),
            1
        );
        let p0 = payable_of(&w, &w.adults[0]).await;
        assert_eq!(status_of(&w, &p0).await, "unpaid");
        // Someone pays through WeChat meanwhile; then the bank's result arrives after all.
        let paid = w
            .wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "WX-LATE-1",
                vec![p0.clone()],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        let file = result_file(&w, &run.run_no, &[]).await;
        let summary = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap();
        assert_eq!(
            (summary.succeeded, summary.refunds_owed),
            (2, 1),
            "the bank's second payment for p0 is owed back"
        );
        assert_eq!(
            w.storage
                .debit_run(&run.run_no)
                .await
                .unwrap()
                .unwrap()
                .status
                .code(),
            "completed"
        );
        assert_invariants(&w).await;
    })
    .await;
}

/// A WeChat trade bill as the merchant platform gives it: backticks, summary at the end, yuan.
fn wechat_bill(rows: &[(&str, &str, i64, &str)]) -> Vec<u8> {
    let yuan = |fen: i64| Fen::new(fen).unwrap().to_yuan_string();
    let mut out = String::from("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n");
    let (mut settle, mut refund) = (0i64, 0i64);
    for (i, (txn, status, fen, refund_no)) in rows.iter().enumerate() {
        let (s, r) = if *status == "REFUND" {
            (0, *fen)
        } else {
            (*fen, 0)
        };
        settle += s;
        refund += r;
        out.push_str(&format!(
            "`2020-11-02 10:{i:02}:00,`wx1,`1900000109,`0,`,`42000{i:05},`{txn},`oUser,`JSAPI,`{status},`CMB_DEBIT,`CNY,`{},`0.00,`{},`{refund_no},`{},`0.00,`,`,`城乡居民医保,`,`0.00000,`0.60%,`{},`{},`\n",
            yuan(s), if r > 0 { "5000" } else { "0" }, yuan(r), yuan(s), yuan(r)
        ));
    }
    out.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n");
    out.push_str(&format!(
        "`{},`{},`{},`0.00,`0.00000,`{},`{}\n",
        rows.len(),
        yuan(settle),
        yuan(refund),
        yuan(settle),
        yuan(refund)
    ));
    out.into_bytes()
}

/// An Alipay 业务明细 download: a zip holding a GBK CSV with `#` preamble, trailing tabs, refunds
/// negative, and the 合计 lines.
fn alipay_zip(rows: &[(&str, &str, i64, &str)]) -> Vec<u8> {
    let yuan = |fen: i64| Fen::new(fen).unwrap().to_yuan_string();
    let mut lines = vec![
        "#支付宝业务明细查询".to_owned(),
        "#账号：[20880000000000000156]".to_owned(),
        "#起始日期：[2020年11月02日 00:00:00]   终止日期：[2020年11月03日 00:00:00]".to_owned(),
        "#-----------------------------------------业务明细列表----------------------------------------".to_owned(),
        "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注".to_owned(),
    ];
    let (mut trades, mut trade_fen, mut refunds, mut refund_fen) = (0, 0i64, 0, 0i64);
    for (i, (txn, kind, fen, refund_no)) in rows.iter().enumerate() {
        let signed = if *kind == "退款" { -fen } else { *fen };
        if *kind == "退款" {
            refunds += 1;
            refund_fen += signed;
        } else {
            trades += 1;
            trade_fen += signed;
        }
        let values = [
            format!("20201102220012345{i:05}"),
            txn.to_string(),
            kind.to_string(),
            "城乡居民医保".into(),
            "2020-11-02 10:15:00".into(),
            "2020-11-02 10:15:05".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "zha***@163.com".into(),
            yuan(signed),
            yuan(signed),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            "0.00".into(),
            String::new(),
            "0.00".into(),
            "0.00".into(),
            refund_no.to_string(),
            "0.00".into(),
            "0.00".into(),
            String::new(),
        ];
        lines.push(
            values
                .iter()
                .map(|v| format!("{v}\t"))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    lines.push("#-----------------------------------------业务明细列表结束------------------------------------".into());
    lines.push(format!(
        "#交易合计：{trades}笔，商家实收共{}元，商家优惠共0.00元",
        yuan(trade_fen)
    ));
    lines.push(format!(
        "#退款合计：{refunds}笔，商家实收共{}元，商家优惠共0.00元",
        yuan(refund_fen)
    ));
    lines.push("#导出时间：[2020年11月03日 08:00:00]".into());
    let text = lines.join("\r\n") + "\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("20880000000000000156_20201102_detail.csv", options)
        .unwrap();
    zip.write_all(&gbk).unwrap();
    zip.finish().unwrap().into_inner()
}

async fn upload(
    w: &World,
    channel: &str,
    on: NaiveDate,
    format: StatementFormat,
    bytes: &[u8],
) -> Value {
    let summary = reconcile(
        w.storage.as_ref(),
        &w.clock,
        StatementUpload {
            channel_id: channel,
            day: on,
            format,
            bytes,
        },
    )
    .await
    .unwrap();
    serde_json::to_value(summary).unwrap()
}

/// Payments for the reconciliation tests: four reported on 2 November through `client`, for the
/// adults from `first` on.
async fn four_payments(
    w: &World,
    client: &ChannelClient,
    prefix: &str,
    first: usize,
) -> Vec<String> {
    let mut txns = Vec::new();
    for i in 0..4 {
        let p = payable_of(w, &w.adults[first + i]).await;
        let txn = format!("{prefix}-{i}");
        let r = client
            .report_payment(&ReportPaymentRequest::for_payables(
                txn.clone(),
                vec![p],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(r.result, PaymentResult::Paid);
        txns.push(txn);
    }
    txns
}

fn classes(summary: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |k: &str| summary[k].as_u64().unwrap();
    (
        n("matched"),
        n("channel_only"),
        n("platform_only"),
        n("amount_mismatch"),
        n("duplicate"),
    )
}

#[tokio::test]
async fn every_reconciliation_class_is_found_in_each_format() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        // Protocol CSV (bank-like channel = wechat here, uploaded through §7 by the channel itself).
        let t = four_payments(&w, &w.wechat, "WP", 0).await;
        // t0 matched; t1 listed twice (duplicate); t2 with a different amount; t3 missing (短款);
        // X-LONG taken by the channel, never reported (长款) → refunded by the default policy.
        let csv = format!(
            "channel_txn_id,type,amount,occurred_at,refund_no\n{a},payment,43000,,\n{b},payment,43000,,\n{b},payment,43000,,\n{c},payment,42000,,\nX-LONG,payment,500,,\n",
            a = t[0], b = t[1], c = t[2]
        );
        let s = w.wechat.upload_statement(day(2), &csv).await.unwrap();
        assert_eq!(
            (s.matched.count(), s.channel_only.count(), s.platform_only.count(), s.amount_mismatch.count()),
            (1, 1, 1, 1),
            "{s:?}"
        );
        let owed = w.wechat.pending_refunds().await.unwrap();
        let long = owed.iter().find(|r| r.channel_txn_id == "X-LONG").expect("the 长款 is owed back");
        assert_eq!(long.amount, 500);
        let items = w.storage.reconciliation_items(Some("wechat"), day(2), day(2), false, 100).await.unwrap();
        let mut found: Vec<(String, String)> = items.iter().map(|i| (i.class.clone(), i.status.code().to_owned())).collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("amount_mismatch".into(), "open".into()),
                ("channel_only".into(), "resolved".into()),
                ("duplicate".into(), "open".into()),
                ("platform_only".into(), "carried".into()),
            ]
        );
        // A day of the WeChat trade bill for the same kind of day: the same classes.
        let bill = wechat_bill(&[
            (&t[0], "SUCCESS", 43000, ""),
            (&t[1], "SUCCESS", 43000, ""),
            (&t[1], "SUCCESS", 43000, ""),
            (&t[2], "SUCCESS", 42000, ""),
            ("X-LONG", "SUCCESS", 500, ""),
        ]);
        let s = upload(&w, "wechat", day(2), StatementFormat::WechatTradeBill, &bill).await;
        assert_eq!(classes(&s), (1, 1, 1, 1, 1), "{s}");
        // Re-uploading replaced the day and did not owe the 长款 twice: the payment the first upload
        // booked for X-LONG is its own action, not the channel's report, so X-LONG is still 长款.
        assert_eq!(w.wechat.pending_refunds().await.unwrap().iter().filter(|r| r.channel_txn_id == "X-LONG").count(), 1);
        assert_eq!(s["funds"]["channel"]["payments"], json!(43000 * 3 + 42000 + 500));

        // The Alipay bill: its own payments, with a refund line confirming a refund owed.
        let a = four_payments(&w, &w.alipay, "AP", 4).await;
        let p0 = payable_of(&w, &w.adults[4]).await;
        let dup = w.alipay.report_payment(&ReportPaymentRequest::for_payables("AP-DUP", vec![p0], 43000, paid_at())).await.unwrap();
        let refund_no = dup.refund.unwrap().refund_no;
        let zip = alipay_zip(&[
            (&a[0], "交易", 43000, ""),
            (&a[1], "交易", 43000, ""),
            (&a[1], "交易", 43000, ""),
            (&a[2], "交易", 42000, ""),
            ("AP-DUP", "交易", 43000, ""),
            ("AP-DUP", "退款", 43000, &refund_no),
            ("Y-LONG", "交易", 800, ""),
        ]);
        let s = upload(&w, "alipay", day(2), StatementFormat::AlipayBill, &zip).await;
        assert_eq!(classes(&s), (3, 1, 1, 1, 1), "AP-0, AP-DUP and its refund line match: {s}");
        assert_eq!(s["refund_lines"]["confirmed"], json!(1));
        let succeeded = w.storage.refunds(Some("succeeded"), None, 10).await.unwrap();
        assert!(succeeded.iter().any(|r| r.refund_no == refund_no), "the statement confirmed the refund");
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn platform_only_payments_are_carried_to_the_next_day_then_escalated() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let t = four_payments(&w, &w.wechat, "CP", 0).await;
        let header = "channel_txn_id,type,amount,occurred_at,refund_no\n";
        // Day 2 lists only t0 and t1: t2 and t3 are carried.
        let s = w.wechat.upload_statement(day(2), &format!("{header}{},payment,43000,,\n{},payment,43000,,\n", t[0], t[1])).await.unwrap();
        assert_eq!(s.platform_only.count(), 2);
        // Day 3 lists t2 (settled a day late): it resolves; t3 is still missing and escalates.
        let s = upload(&w, "wechat", day(3), StatementFormat::Protocol, format!("{header}{},payment,43000,,\n", t[2]).as_bytes()).await;
        assert_eq!(s["carried"], json!({"resolved": 1, "escalated": 1}), "{s}");
        assert_eq!(s["channel_only"], json!(0), "a carried payment is not 长款 the next day");
        let items = w.storage.reconciliation_items(Some("wechat"), day(2), day(2), false, 10).await.unwrap();
        let by_txn = |txn: &str| items.iter().find(|i| i.channel_txn_id == txn).unwrap().clone();
        assert_eq!((by_txn(&t[2]).status.code(), by_txn(&t[2]).resolution.as_deref()), ("resolved", Some("matched_next_day")));
        assert_eq!(by_txn(&t[3]).status.code(), "escalated");
        // Staff close it by hand.
        let r = w.server.client.post(w.server.url("/api/v1/reconciliation/resolutions")).bearer_auth(&w.token)
            .json(&json!({"channel_id": "wechat", "statement_date": "2020-11-02", "channel_txn_id": t[3], "class": "platform_only",
                "resolution": "channel_corrected", "note": "渠道补发对账单"}))
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let open = w.storage.reconciliation_items(Some("wechat"), day(2), day(3), true, 10).await.unwrap();
        assert!(open.is_empty(), "{open:?}");
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn channel_only_money_is_applied_to_its_order_under_the_apply_policy() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        assert!(w
            .storage
            .set_channel_only_policy("wechat", "apply")
            .await
            .unwrap());
        let p0 = payable_of(&w, &w.adults[0]).await;
        // The channel opened an order, took the money, and its report was lost.
        w.wechat
            .open_order(&OpenOrderRequest {
                channel_order_no: "WXO-LOST".into(),
                payable_ids: vec![p0.clone()],
                amount: 43000,
                payer: Payer::default(),
                family_account: None,
                health_card: None,
                agent_code: None,
            })
            .await
            .unwrap();
        let header = "channel_txn_id,type,amount,occurred_at,refund_no\n";
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            format!("{header}WXO-LOST,payment,43000,,\nWX-NOORDER,payment,43000,,\n").as_bytes(),
        )
        .await;
        let actions = s["actions"].as_array().unwrap();
        assert!(
            actions
                .iter()
                .any(|a| a["channel_txn_id"] == "WXO-LOST" && a["action"] == "applied"),
            "{s}"
        );
        assert!(
            actions
                .iter()
                .any(|a| a["channel_txn_id"] == "WX-NOORDER" && a["action"] == "refund_owed"),
            "{s}"
        );
        assert_eq!(status_of(&w, &p0).await, "paid");
        let receipts = w
            .storage
            .receipts_of_person(&w.adults[0], &["320600".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(receipts.len(), 1);
        // The booking says when cover starts, as the channel's own report would have: paid in
        // the window, from 1 January.
        assert_eq!(
            (
                receipts[0].cover_code.as_deref(),
                receipts[0].cover_starts_on
            ),
            (
                Some("IN_WINDOW"),
                chrono::NaiveDate::from_ymd_opt(2021, 1, 1)
            )
        );
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn bad_statements_are_refused_whole_with_the_row_and_nothing_stored() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let err = reconcile(w.storage.as_ref(), &w.clock, StatementUpload { channel_id: "wechat", day: day(2), format: StatementFormat::Protocol,
            bytes: b"channel_txn_id,type,amount,occurred_at,refund_no\nA,payment,43000,,\nB,payment,4.3,,\n" }).await.unwrap_err();
        assert_eq!(err.code.as_str(), "BAD_STATEMENT_FILE");
        assert!(err.message.contains('3'), "names the row: {}", err.message);
        // A WeChat bill cut off before its summary.
        let mut bill = wechat_bill(&[("A", "SUCCESS", 43000, "")]);
        bill.truncate(bill.len() - 40);
        let err = reconcile(w.storage.as_ref(), &w.clock, StatementUpload { channel_id: "wechat", day: day(2), format: StatementFormat::WechatTradeBill, bytes: &bill }).await.unwrap_err();
        assert_eq!(err.code.as_str(), "BAD_STATEMENT_FILE", "{}", err.message);
        assert!(w.storage.statements(None, day(1), day(3), 10).await.unwrap().is_empty());
        // Over HTTP, an unknown format is a clear 400.
        let r = w.server.client.put(w.server.url("/api/v1/statements/wechat/2020-11-02?format=excel")).bearer_auth(&w.token)
            .body("x").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    })
    .await;
}

#[tokio::test]
async fn refunds_of_every_source_go_owed_sent_and_succeeded_or_failed_with_bounded_retries() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let p0 = payable_of(&w, &w.adults[0]).await;
        let p1 = payable_of(&w, &w.adults[1]).await;
        w.wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "RF-1",
                vec![p0.clone()],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        w.wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "RF-2",
                vec![p1.clone()],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        // A duplicate payment (ALREADY_PAID) and a re-assessment refund of a paid payable.
        w.wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "RF-3",
                vec![p0.clone()],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        let reassess =
            refund_paid_payable(w.storage.as_ref(), &w.clock, &p0, RefundReason::Reassessed)
                .await
                .unwrap();
        assert_eq!(
            (reassess.reason.as_str(), reassess.amount_fen.as_fen()),
            ("REASSESSED", 43000)
        );
        assert_eq!(
            status_of(&w, &p0).await,
            "unpaid",
            "refunded so it can be re-assessed"
        );
        let voided = w
            .storage
            .receipts_of_person(&w.adults[0], &["320600".to_owned()], None)
            .await
            .unwrap();
        assert!(
            voided.iter().all(|r| r.status.code() == "voided"),
            "{voided:?}"
        );
        // Refunding again finds nothing paid.
        assert_eq!(
            refund_paid_payable(w.storage.as_ref(), &w.clock, &p0, RefundReason::Reassessed)
                .await
                .unwrap_err()
                .code
                .as_str(),
            "NOT_PAYABLE"
        );
        // Employee insurance: the payable is cancelled.
        let left = refund_paid_payable(
            w.storage.as_ref(),
            &w.clock,
            &p1,
            RefundReason::EmployeeInsurance,
        )
        .await
        .unwrap();
        assert_eq!(left.reason, "EMPLOYEE_INSURANCE");
        assert_eq!(status_of(&w, &p1).await, "cancelled");
        // Staff cannot start a duplicate-payment refund by hand.
        assert!(
            refund_paid_payable(w.storage.as_ref(), &w.clock, &p0, RefundReason::AlreadyPaid)
                .await
                .is_err()
        );

        // The channel sees three, as the protocol names their reasons; listing hands them over (sent).
        let owed = w.wechat.pending_refunds().await.unwrap();
        assert_eq!(owed.len(), 3);
        assert!(
            owed.iter()
                .any(|r| r.refund_no == left.refund_no && r.reason.to_string() == "NOT_PAYABLE"),
            "{owed:?}"
        );
        let sent = w.storage.refunds(Some("sent"), None, 10).await.unwrap();
        assert_eq!(sent.len(), 3);
        // One fails every time: after MAX_REFUND_ATTEMPTS hand-overs the channel stops seeing it.
        for _ in 0..yibao_domain::settlement::MAX_REFUND_ATTEMPTS {
            w.wechat
                .report_refund_result(
                    &left.refund_no,
                    &RefundResultRequest::failed("WXR-F", "账户已销户"),
                )
                .await
                .unwrap();
            w.wechat.pending_refunds().await.unwrap();
        }
        w.wechat
            .report_refund_result(
                &left.refund_no,
                &RefundResultRequest::failed("WXR-F", "账户已销户"),
            )
            .await
            .unwrap();
        let listed = w.wechat.pending_refunds().await.unwrap();
        assert!(
            listed.iter().all(|r| r.refund_no != left.refund_no),
            "five attempts, then a person decides"
        );
        // Staff retry it once the payer gave a new account.
        let r = w
            .server
            .client
            .post(
                w.server
                    .url(&format!("/api/v1/refunds/{}/retry", left.refund_no)),
            )
            .bearer_auth(&w.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(w
            .wechat
            .pending_refunds()
            .await
            .unwrap()
            .iter()
            .any(|r| r.refund_no == left.refund_no));
        w.wechat
            .report_refund_result(&left.refund_no, &RefundResultRequest::succeeded("WXR-OK"))
            .await
            .unwrap();
        // Daily totals: due on the 4th (two working days), succeeded today.
        let days = w.storage.refund_days(day(1), day(30), None).await.unwrap();
        let today = days
            .iter()
            .find(|d| d.day == day(2))
            .expect("succeeded today");
        assert_eq!((today.succeeded, today.succeeded_fen), (1, 43000));
        assert_eq!(
            days.iter()
                .filter(|d| d.day == day(4))
                .map(|d| d.due)
                .sum::<i64>(),
            3
        );
        // Overdue once the due date passed.
        let overdue = w
            .storage
            .overdue_refunds(day(2) + Duration::days(5), None, 10)
            .await
            .unwrap();
        assert_eq!(overdue.len(), 2);
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn staff_reports_come_as_json_and_xlsx_and_only_to_those_allowed() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        four_payments(&w, &w.wechat, "RP", 0).await;
        let get = |path: &str| w.server.client.get(w.server.url(path)).bearer_auth(&w.token).send();
        let r = get("/api/v1/reports/daily-collection?from=2020-11-01&to=2020-11-02").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let report: Value = r.json().await.unwrap();
        assert_eq!(report["rows"], json!([{"day": "2020-11-02", "channel_id": "wechat", "region": "320600", "payables": 4, "applied_fen": 172000}]));
        assert!(report["warnings"].is_array());
        let r = get("/api/v1/reports/daily-collection?from=2020-11-01&to=2020-11-02&format=xlsx").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = r.bytes().await.unwrap();
        assert!(bytes.starts_with(b"PK"), "an XLSX workbook");
        for path in ["/api/v1/reports/refunds?format=xlsx", "/api/v1/reports/reconciliation", "/api/v1/refunds?status=owed"] {
            assert_eq!(get(path).await.unwrap().status(), StatusCode::OK, "{path}");
        }
        assert_eq!(get("/api/v1/reports/refunds?from=2020-11-05&to=2020-11-01").await.unwrap().status(), StatusCode::BAD_REQUEST);
        // Without a session: refused.
        let r = w.server.client.get(w.server.url("/api/v1/reports/daily-collection")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // Agreements and runs over HTTP as a clerk would.
        let r = w.server.client.post(w.server.url("/api/v1/agreements")).bearer_auth(&w.token)
            .json(&json!({"agreement_no": "AG-HTTP-1", "region": "320600", "channel_id": "bankad", "payer_id_number": w.adults[5],
                "payer_name": "王五", "account": "6222021234567890123"}))
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = w.server.client.post(w.server.url("/api/v1/debit-runs")).bearer_auth(&w.token)
            .json(&json!({"channel_id": "bankad", "region": "320600", "fee_year": 2021, "debit_date": "2020-11-03"}))
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let run: Value = r.json().await.unwrap();
        let run_no = run["run_no"].as_str().unwrap();
        let r = get(&format!("/api/v1/debit-runs/{run_no}/request-file")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().starts_with(&format!("H|{run_no}|")));
        // Lists of payers' ID numbers and names: each read is audited.
        assert_eq!(get("/api/v1/agreements?region=320600").await.unwrap().status(), StatusCode::OK);
        assert_eq!(get(&format!("/api/v1/debit-runs/{run_no}")).await.unwrap().status(), StatusCode::OK);
        let audit = w.storage.list_audit(50).await.unwrap();
        for (action, target) in [("read.agreements", "320600"), ("read.debit_run", run_no)] {
            assert!(
                audit.iter().any(|a| a.entry.action == action && a.entry.target == target),
                "{action} not audited"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_tax_collector_settles_only_the_channels_and_agreements_of_their_region() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        sign(&w, "AG-NT-1", &w.adults[0], &[]).await;
        yibao_server::services::staff::create_staff(
            w.storage.as_ref(),
            yibao_server::services::staff::NewStaff {
                temporary_password: false,
                username: "hk-tax".into(),
                display_name: "海口税务".into(),
                role: yibao_storage::Role::TaxCollector,
                region: Some(yibao_domain::RegionCode::parse("460100").unwrap()),
                station: None,
                password: yibao_server::services::staff::Password::new("tax-password-1".into()).unwrap(),
            },
            "test",
        )
        .await
        .unwrap();
        let login: Value = w.server.client.post(w.server.url("/api/v1/auth/login"))
            .json(&json!({"username": "hk-tax", "password": "tax-password-1"}))
            .send().await.unwrap().json().await.unwrap();
        let token = login["token"].as_str().unwrap().to_owned();
        let client = &w.server.client;
        // The wechat channel of these tests serves 南通市 only.
        let r = client.put(w.server.url("/api/v1/statements/wechat/2020-11-02")).bearer_auth(&token)
            .body("channel_txn_id,type,amount,occurred_at,refund_no\nX-1,payment,100,,\n").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no 长款 booked on another region's channel");
        assert!(w.storage.statements(None, day(1), day(3), 10).await.unwrap().is_empty());
        let r = client.post(w.server.url("/api/v1/reconciliation/resolutions")).bearer_auth(&token)
            .json(&json!({"channel_id": "wechat", "statement_date": "2020-11-02", "channel_txn_id": "X", "class": "platform_only",
                "resolution": "hidden", "note": ""}))
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = client.get(w.server.url("/api/v1/reconciliation/items")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a collector names a channel of their region");
        let r = client.get(w.server.url("/api/v1/reconciliation/items?channel_id=wechat")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = client.post(w.server.url("/api/v1/agreements/AG-NT-1/cancellation")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = client.post(w.server.url("/api/v1/refunds/RF-ANY/retry")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "re-arming a refund is the administrator's");
        let r = client.post(w.server.url("/api/v1/debit-runs")).bearer_auth(&token)
            .json(&json!({"channel_id": "bankad", "region": "320600", "fee_year": 2021, "debit_date": "2020-11-03"}))
            .send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(w.storage.agreement("320600", "AG-NT-1").await.unwrap().unwrap().status.code(), "active");
    })
    .await;
}

#[tokio::test]
async fn an_agreement_number_two_regions_hold_is_two_agreements() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        // A bank's numbers are unique within a region only: 海口's bank numbered one as 南通's did.
        yibao::operator::channel_add(
            w.storage.as_ref(),
            None,
            "bankhk",
            "auto_debit",
            &["460100".to_owned()],
            1000,
            SECRET_BANK.to_owned(),
        )
        .await
        .unwrap();
        sign(&w, "AG-SAME-1", &w.adults[0], &[]).await;
        let hk_payer = make_id("460102", "1985-03-03", 11);
        let hk = debit::sign_agreement(
            w.storage.as_ref(),
            &w.clock,
            AgreementInput {
                agreement_no: "AG-SAME-1",
                region: "460100",
                channel_id: "bankhk",
                payer_id_number: &hk_payer,
                payer_name: "赵六",
                account: "6222 0212 3456 7890 999",
                members: &[],
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (hk.region.as_str(), hk.members.clone()),
            ("460100", vec![hk_payer.clone()])
        );
        // Each region lists its own payer and members, never the other's.
        for (region, payer) in [("320600", &w.adults[0]), ("460100", &hk_payer)] {
            let listed = w.storage.agreements(Some(region), None, 10).await.unwrap();
            assert_eq!(listed.len(), 1, "{region}");
            assert_eq!(
                (
                    listed[0].payer_id_number.as_str(),
                    listed[0].members.clone()
                ),
                (payer.as_str(), vec![payer.clone()]),
                "{region}"
            );
        }
        // The number alone names two agreements: the administrator is asked for the region.
        let client = &w.server.client;
        let cancel = |query: &str| {
            client
                .post(
                    w.server
                        .url(&format!("/api/v1/agreements/AG-SAME-1/cancellation{query}")),
                )
                .bearer_auth(&w.token)
                .send()
        };
        let r = cancel("").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("320600") && message.contains("460100"),
            "{body}"
        );
        // Cancelling 海口's leaves 南通's active, and its payer under it.
        let r = cancel("?region=460100").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let cancelled: Value = r.json().await.unwrap();
        assert_eq!(
            (cancelled["region"].as_str(), cancelled["status"].as_str()),
            (Some("460100"), Some("cancelled"))
        );
        let nantong = w
            .storage
            .agreement("320600", "AG-SAME-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (nantong.status.code(), nantong.members.clone()),
            ("active", vec![w.adults[0].clone()])
        );
        let run = bank_run(&w).await;
        assert_eq!(run.item_count, 1, "南通's payer is still debited");
        // A region with no such number answers 404; a malformed one, 422 naming the field.
        assert_eq!(
            cancel("?region=320100").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
        let r = cancel("?region=").await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "INVALID_REGION", "{body}");
        assert_invariants(&w).await;
    })
    .await;
}

/// A SQLite database of the previous version (migrations up to 0048, where an agreement's
/// number was unique over every region) upgraded in place: its agreement and members kept, a
/// member still under one active agreement only, and the number free in another region.
#[tokio::test]
async fn a_sqlite_database_of_the_previous_version_keeps_its_agreements() {
    use yibao_storage::settlement::{AgreementOutcome, NewAgreement};
    let members = [
        make_id("320602", "1980-01-01", 501),
        make_id("320602", "2010-05-05", 502),
    ];
    let old_rows = format!(
        "INSERT INTO pooling_regions (region_code, name) VALUES ('320600', '南通市'), ('460100', '海口市');
         INSERT INTO channels (channel_id, kind, secret_sealed, rate_per_second, enabled)
           VALUES ('old-bank', 'auto_debit', 'plain:00', 10, true);
         INSERT INTO channel_regions (channel_id, region_code) VALUES ('old-bank', '320600'), ('old-bank', '460100');
         INSERT INTO debit_agreements (agreement_no, region_code, channel_id, payer_id_number, payer_name,
           account_masked, status, signed_on) VALUES ('AG-OLD-1', '320600', 'old-bank', '{0}', '王五', '6222****0123', 'active', '2026-10-01');
         INSERT INTO debit_agreement_members (agreement_no, region_code, id_number, active)
           VALUES ('AG-OLD-1', '320600', '{0}', 1), ('AG-OLD-1', '320600', '{1}', 1);",
        members[0], members[1]
    );
    let (_dir, url) = yibao_tests::sqlite_database_at(48, &old_rows).await;
    let storage: Arc<dyn Storage> = Arc::new(
        yibao_storage_sqlite::SqliteStorage::connect(&url)
            .await
            .unwrap(),
    );
    let kept = storage
        .agreement("320600", "AG-OLD-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.status.code(), kept.members.clone()),
        ("active", members.to_vec())
    );
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let new = |no: &str, region: &str, member: &str| NewAgreement {
        agreement_no: no.to_owned(),
        region: yibao_domain::RegionCode::parse(region).unwrap(),
        channel_id: "old-bank".to_owned(),
        payer_id_number: yibao_domain::IdNumber::parse(member, today)
            .unwrap()
            .id_number,
        payer_name: "王五".to_owned(),
        account_masked: "6222****0999".to_owned(),
        signed_on: today,
        members: vec![member.to_owned()],
    };
    // A member under the old agreement is under no second one of the region.
    assert!(matches!(
        storage
            .sign_agreement(&new("AG-NEW-2", "320600", &members[1]))
            .await
            .unwrap(),
        AgreementOutcome::MemberCovered { .. }
    ));
    // The number again: refused in its region, signed in another.
    let hk_payer = make_id("460102", "1985-03-03", 12);
    assert_eq!(
        storage
            .sign_agreement(&new(
                "AG-OLD-1",
                "320600",
                &make_id("320602", "1981-01-01", 503)
            ))
            .await
            .unwrap(),
        AgreementOutcome::Exists
    );
    assert!(matches!(
        storage
            .sign_agreement(&new("AG-OLD-1", "460100", &hk_payer))
            .await
            .unwrap(),
        AgreementOutcome::Signed(_)
    ));
    assert_eq!(
        storage.agreement_regions("AG-OLD-1", 10).await.unwrap(),
        ["320600", "460100"]
    );
    let report = storage.check_invariants().await.unwrap();
    assert!(report.holds(), "{report:?}");
}

#[tokio::test]
async fn a_reversal_cancels_a_refund_already_handed_to_the_channel() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let p0 = payable_of(&w, &w.adults[0]).await;
        w.wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "RV-1",
                vec![p0.clone()],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        let dup = w
            .wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "RV-2",
                vec![p0],
                43000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(dup.result, PaymentResult::RefundPending);
        assert_eq!(
            w.wechat.pending_refunds().await.unwrap().len(),
            1,
            "listed: now sent"
        );
        w.wechat.reverse_payment("RV-2", "用户撤销").await.unwrap();
        assert!(
            w.wechat.pending_refunds().await.unwrap().is_empty(),
            "the money came back by the reversal: nothing owed twice"
        );
        assert_eq!(
            w.storage
                .refunds(Some("cancelled"), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn a_result_file_reusing_a_bank_transaction_id_is_refused_whole() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        sign(
            &w,
            "AG-DUP-1",
            &w.adults[0],
            &[w.adults[0].clone(), w.adults[1].clone()],
        )
        .await;
        let run = bank_run(&w).await;
        let items = w
            .storage
            .debit_run_items(&run.run_no, None, 10)
            .await
            .unwrap();
        let same = |i: usize| {
            (
                items[i].item_ref.clone(),
                DebitOutcome::Succeeded {
                    bank_txn_id: "BK-SAME".into(),
                    amount: Fen::new(43000).unwrap(),
                },
            )
        };
        let file = write_debit_result(&run.run_no, "bankad", &[same(0), same(1)]).unwrap();
        let err = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap_err();
        assert_eq!(err.code.as_str(), "BAD_DEBIT_FILE", "{}", err.message);
        // A file from another bank for this run is refused too.
        let other_bank = write_debit_result(
            &run.run_no,
            "otherbank",
            &[result_of(&items[0], "BK-1"), result_of(&items[1], "BK-2")],
        )
        .unwrap();
        assert_eq!(
            debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &other_bank)
                .await
                .unwrap_err()
                .code
                .as_str(),
            "BAD_DEBIT_FILE"
        );
        // Nothing was applied: the run still holds both payables.
        for item in &items {
            assert_eq!(status_of(&w, &item.payable_id).await, "locked");
        }
        assert_invariants(&w).await;
    })
    .await;
}

fn result_of(
    item: &yibao_storage::settlement::DebitItemRecord,
    txn: &str,
) -> (String, DebitOutcome) {
    (
        item.item_ref.clone(),
        DebitOutcome::Succeeded {
            bank_txn_id: txn.into(),
            amount: item.amount_fen,
        },
    )
}

#[tokio::test]
async fn re_uploading_a_day_keeps_the_next_days_verdicts() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let t = four_payments(&w, &w.wechat, "RU", 0).await;
        let header = "channel_txn_id,type,amount,occurred_at,refund_no\n";
        let day2 = format!(
            "{header}{},payment,43000,,\n{},payment,43000,,\n",
            t[0], t[1]
        );
        let day3 = format!("{header}{},payment,43000,,\n", t[2]);
        upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            day2.as_bytes(),
        )
        .await;
        upload(
            &w,
            "wechat",
            day(3),
            StatementFormat::Protocol,
            day3.as_bytes(),
        )
        .await;
        // Day 3 again: t2 still matches day 2's carried payment, nothing becomes other_day.
        let again = upload(
            &w,
            "wechat",
            day(3),
            StatementFormat::Protocol,
            day3.as_bytes(),
        )
        .await;
        assert_eq!(
            (again["matched"].clone(), again["other_day"].clone()),
            (json!(1), json!(0)),
            "{again}"
        );
        // Day 2 again: t3's escalation stands.
        upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            day2.as_bytes(),
        )
        .await;
        let items = w
            .storage
            .reconciliation_items(Some("wechat"), day(2), day(2), false, 10)
            .await
            .unwrap();
        let t3 = items.iter().find(|i| i.channel_txn_id == t[3]).unwrap();
        assert_eq!(t3.status.code(), "escalated");
        let t2 = items.iter().find(|i| i.channel_txn_id == t[2]).unwrap();
        assert_eq!(t2.status.code(), "resolved");
        // Days outside the years a fee year can have are refused, not stored.
        let far = NaiveDate::from_ymd_opt(9999, 1, 1).unwrap();
        let err = reconcile(
            w.storage.as_ref(),
            &w.clock,
            StatementUpload {
                channel_id: "wechat",
                day: far,
                format: StatementFormat::Protocol,
                bytes: day2.as_bytes(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code.as_str(), "INVALID_REQUEST");
    })
    .await;
}

#[tokio::test]
async fn refunds_due_in_a_year_without_calendar_are_flagged_and_reports_warn() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let mut payables = Vec::new();
        for (i, id) in w.adults[..2].iter().enumerate() {
            let p = payable_of(&w, id).await;
            let r = w
                .wechat
                .report_payment(&ReportPaymentRequest::for_payables(
                    format!("CAL-{i}"),
                    vec![p.clone()],
                    43000,
                    paid_at(),
                ))
                .await
                .unwrap();
            assert_eq!(r.result, PaymentResult::Paid);
            payables.push(p);
        }
        // The XLSX daily collection while both payments stand: numbers, a frozen header, totals,
        // the calendar warning as a note, a named file.
        let r = w
            .server
            .client
            .get(w.server.url("/api/v1/reports/daily-collection?format=xlsx"))
            .bearer_auth(&w.token)
            .send()
            .await
            .unwrap();
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.contains("filename=\"daily-collection-all-20201102.xlsx\""),
            "{disposition}"
        );
        let sheet = sheet_of(&r.bytes().await.unwrap());
        assert!(sheet.0.contains("state=\"frozen\""));
        assert_eq!(
            cell(&sheet, "C3"),
            Some(Err("微信支付".into())),
            "channel kind in Chinese"
        );
        assert_eq!(
            cell(&sheet, "E3"),
            Some(Err("南通市".into())),
            "region name beside the code"
        );
        assert_eq!(
            cell(&sheet, "F3"),
            Some(Ok("2".into())),
            "a count is a number"
        );
        assert_eq!(
            cell(&sheet, "G3"),
            Some(Ok("860".into())),
            "an amount is a number"
        );
        assert_eq!(cell(&sheet, "A4"), Some(Err("合计".into())));
        assert_eq!(cell(&sheet, "G4"), Some(Ok("860".into())));
        assert!(
            sheet
                .1
                .iter()
                .any(|t| t.contains("锦州市（210700）") && t.contains("2027")),
            "the warning as a note"
        );
        // Decided on Wednesday 30 December 2026: two working days reach 2027, which has no
        // calendar (not shipped): 1 January 2027 by weekends alone, and flagged.
        let late = Clock::fixed(Utc.with_ymd_and_hms(2026, 12, 30, 2, 0, 0).unwrap());
        let flagged = refund_paid_payable(
            w.storage.as_ref(),
            &late,
            &payables[0],
            RefundReason::Reassessed,
        )
        .await
        .unwrap();
        assert_eq!(flagged.due, NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
        assert!(flagged.due_without_calendar);
        // Inside a year with its calendar: not flagged.
        let normal = refund_paid_payable(
            w.storage.as_ref(),
            &w.clock,
            &payables[1],
            RefundReason::Reassessed,
        )
        .await
        .unwrap();
        assert_eq!(normal.due, day(4));
        assert!(!normal.due_without_calendar);
        // Staff see the flag in the refund list and the refunds report, with the window warning.
        let get = |path: &str| {
            w.server
                .client
                .get(w.server.url(path))
                .bearer_auth(&w.token)
                .send()
        };
        let owed: Value = get("/api/v1/refunds?status=owed")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let flags: Vec<(String, bool)> = owed
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["refund_no"].as_str().unwrap().to_owned(),
                    r["due_without_calendar"].as_bool().unwrap(),
                )
            })
            .collect();
        assert!(
            flags.contains(&(flagged.refund_no.clone(), true)),
            "{flags:?}"
        );
        assert!(
            flags.contains(&(normal.refund_no.clone(), false)),
            "{flags:?}"
        );
        let report: Value = get("/api/v1/reports/refunds")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let warnings = report["warnings"].as_array().unwrap();
        // 锦州市's fee year 2027 collects until 28 February 2027.
        assert!(
            warnings
                .iter()
                .any(|w| w["region"] == "210700" && w["year"] == 2027 && w["fee_year"] == 2027),
            "{warnings:?}"
        );
        assert!(warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("yibao calendar load"));
        let r = get("/api/v1/reports/daily-collection?region=210700")
            .await
            .unwrap();
        let daily: Value = r.json().await.unwrap();
        assert_eq!(daily["warnings"].as_array().unwrap().len(), 1, "{daily}");
        // The XLSX reports: numbers, a frozen header, totals, notes, named files.
        let r = get("/api/v1/reports/refunds?format=xlsx&from=2020-11-01&to=2020-11-04")
            .await
            .unwrap();
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("refunds-all-20201101-20201104.xlsx"));
        let sheet = sheet_of(&r.bytes().await.unwrap());
        assert!(
            sheet.1.iter().any(|t| t.contains("1 笔未完成的退费")),
            "{:?}",
            sheet.1
        );
        assert_eq!(
            cell(&sheet, "D3"),
            Some(Ok("1".into())),
            "one refund due on 4 November"
        );
        assert_eq!(cell(&sheet, "E3"), Some(Ok("430".into())));
    })
    .await;
}

/// Issue 10, defect 5: a family agreement's request lines carry the holder (the account the bank
/// checks), not the member; the member follows as a further field and comes back in the result.
#[tokio::test]
async fn a_family_debit_request_names_the_agreement_holder_and_the_member_after() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let holder = w.adults[0].clone();
        let child = w.adults[1].clone();
        sign(&w, "AG-FAM-1", &holder, &[holder.clone(), child.clone()]).await;
        let run = bank_run(&w).await;
        let bytes = debit::request_file(w.storage.as_ref(), &run.run_no)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let details: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| l.starts_with("D|"))
            .map(|l| l.split('|').collect())
            .collect();
        assert_eq!(details.len(), 2, "{text}");
        for fields in &details {
            assert_eq!(
                (fields[3], fields[4], fields[5]),
                ("AG-FAM-1", holder.as_str(), "王五"),
                "the holder's ID number and name, as docs/bank-files.md says: {text}"
            );
        }
        let mut members: Vec<&str> = details.iter().map(|f| f[7]).collect();
        members.sort_unstable();
        let mut expected = vec![holder.as_str(), child.as_str()];
        expected.sort_unstable();
        assert_eq!(members, expected, "the member after the amount: {text}");

        // The bank's side: it reads the request, checks the holder, debits, echoes the member.
        let request = yibao_statement_file::read_debit_request(
            &bytes,
            &yibao_statement_file::Limits::default(),
        )
        .unwrap();
        let answer: Vec<yibao_statement_file::DebitResultEntry> = request
            .rows
            .iter()
            .map(|r| {
                assert_eq!(r.item.id_number, holder, "every line names the holder");
                yibao_statement_file::DebitResultEntry {
                    item_ref: r.item.item_ref.clone(),
                    outcome: DebitOutcome::Succeeded {
                        bank_txn_id: format!("BK-{}", r.item.item_ref),
                        amount: r.item.amount,
                    },
                    debit_day: Some(day(2)),
                    member_id_number: r.item.member.as_ref().map(|m| m.id_number.clone()),
                }
            })
            .collect();
        let file = yibao_statement_file::write_debit_result_entries(&run.run_no, "bankad", &answer)
            .unwrap();
        let summary = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap();
        assert_eq!(
            (summary.succeeded, summary.refunds_owed),
            (2, 0),
            "{summary:?}"
        );
        for id in [&holder, &child] {
            let p = payable_of(&w, id).await;
            assert_eq!(status_of(&w, &p).await, "paid");
        }
        // A member echoed back that is not the one asked for is refused whole.
        sign(
            &w,
            "AG-FAM-2",
            &w.adults[2],
            &[w.adults[2].clone(), w.adults[3].clone()],
        )
        .await;
        let run2 = debit::create_run(
            w.storage.as_ref(),
            &w.clock,
            "bankad",
            "320600",
            2021,
            day(3),
        )
        .await
        .unwrap();
        let items = w
            .storage
            .debit_run_items(&run2.run_no, None, 10)
            .await
            .unwrap();
        let swapped: Vec<yibao_statement_file::DebitResultEntry> = items
            .iter()
            .enumerate()
            .map(|(i, item)| yibao_statement_file::DebitResultEntry {
                item_ref: item.item_ref.clone(),
                outcome: DebitOutcome::Failed {
                    reason_code: "E01".into(),
                    reason: String::new(),
                },
                debit_day: None,
                member_id_number: Some(items[1 - i].id_number.as_str().to_owned()),
            })
            .collect();
        let file =
            yibao_statement_file::write_debit_result_entries(&run2.run_no, "bankad", &swapped)
                .unwrap();
        let later = Clock::fixed(instant() + Duration::days(1));
        let err = debit::import_result(w.storage.as_ref(), &later, &run2.run_no, &file)
            .await
            .unwrap_err();
        assert_eq!(err.code.as_str(), "BAD_DEBIT_FILE", "{}", err.message);
        assert!(err.message.contains("第2行"), "{}", err.message);
        assert_invariants(&w).await;
    })
    .await;
}

/// Issue 10, defect 7: a bank result before the run's debit date is refused (the payment would be
/// dated in the future); a line dated before the debit date or after today is refused by its line;
/// a good line is booked on the day the bank debited, so the daily report has it.
#[tokio::test]
async fn a_bank_result_before_its_debit_date_is_refused() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        sign(&w, "AG-EARLY-1", &w.adults[0], &[]).await;
        // Today is 2 November; the bank is to debit on the 3rd.
        let run = debit::create_run(
            w.storage.as_ref(),
            &w.clock,
            "bankad",
            "320600",
            2021,
            day(3),
        )
        .await
        .unwrap();
        let file = result_file(&w, &run.run_no, &[]).await;
        let err = debit::import_result(w.storage.as_ref(), &w.clock, &run.run_no, &file)
            .await
            .unwrap_err();
        assert_eq!(
            err.code.as_str(),
            "DEBIT_DATE_NOT_REACHED",
            "{}",
            err.message
        );
        assert_eq!(err.code.status(), StatusCode::CONFLICT);
        assert!(err.message.contains("2020-11-03"), "{}", err.message);
        let p0 = payable_of(&w, &w.adults[0]).await;
        assert_eq!(status_of(&w, &p0).await, "locked", "nothing applied");

        // On the 5th: lines dated before the debit date, or after today, are refused by line.
        let on_5th = Clock::fixed(instant() + Duration::days(3));
        let items = w
            .storage
            .debit_run_items(&run.run_no, None, 10)
            .await
            .unwrap();
        let dated = |d: NaiveDate| {
            yibao_statement_file::write_debit_result_entries(
                &run.run_no,
                "bankad",
                &[yibao_statement_file::DebitResultEntry {
                    item_ref: items[0].item_ref.clone(),
                    outcome: DebitOutcome::Succeeded {
                        bank_txn_id: "BK-EARLY-1".into(),
                        amount: items[0].amount_fen,
                    },
                    debit_day: Some(d),
                    member_id_number: None,
                }],
            )
            .unwrap()
        };
        for (bad, words) in [(day(2), "早于"), (day(6), "晚于")] {
            let err = debit::import_result(w.storage.as_ref(), &on_5th, &run.run_no, &dated(bad))
                .await
                .unwrap_err();
            assert_eq!(err.code.as_str(), "BAD_DEBIT_FILE", "{}", err.message);
            assert!(
                err.message.contains("第2行") && err.message.contains(words),
                "{}",
                err.message
            );
        }
        assert_eq!(status_of(&w, &p0).await, "locked", "nothing applied");
        // The bank debited on the 4th: the payment is dated the 4th, the daily report has it.
        let summary =
            debit::import_result(w.storage.as_ref(), &on_5th, &run.run_no, &dated(day(4)))
                .await
                .unwrap();
        assert_eq!(summary.succeeded, 1);
        assert_eq!(status_of(&w, &p0).await, "paid");
        let rows = w
            .storage
            .daily_collection(day(4), day(4), Some("320600"))
            .await
            .unwrap();
        assert_eq!(
            rows.iter().map(|r| r.applied_fen).sum::<i64>(),
            items[0].amount_fen.as_fen(),
            "{rows:?}"
        );
        assert_invariants(&w).await;
    })
    .await;
}

/// Refunds of a channel, by transaction id, with their state: what a re-upload must not change.
async fn refunds_by_txn(w: &World, txn: &str) -> Vec<(String, i64, String)> {
    w.storage
        .refunds(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.channel_txn_id == txn)
        .map(|r| {
            (
                r.refund_no,
                r.amount_fen.as_fen(),
                r.status.code().to_owned(),
            )
        })
        .collect()
}

async fn day_items(w: &World, on: NaiveDate) -> Vec<(String, String, String, Option<String>)> {
    w.storage
        .reconciliation_items(Some("wechat"), on, on, false, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                i.channel_txn_id,
                i.class,
                i.status.code().to_owned(),
                i.resolution,
            )
        })
        .collect()
}

/// Issue 10, defect 3: the same statement twice gives the same result; a re-upload that drops a
/// 长款 line withdraws the refund owed for it while not handed over, and flags it for staff once it
/// has been (never shows it as platform_only).
#[tokio::test]
async fn re_uploading_a_statement_recomputes_and_undoes_what_it_no_longer_supports() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let t = four_payments(&w, &w.wechat, "RE", 0).await;
        let with_long = wechat_bill(&[
            (&t[0], "SUCCESS", 43000, ""),
            (&t[1], "SUCCESS", 43000, ""),
            (&t[2], "SUCCESS", 43000, ""),
            (&t[3], "SUCCESS", 43000, ""),
            ("X-LONG", "SUCCESS", 500, ""),
        ]);
        let first = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::WechatTradeBill,
            &with_long,
        )
        .await;
        assert_eq!(classes(&first), (4, 1, 0, 0, 0), "{first}");
        let owed = refunds_by_txn(&w, "X-LONG").await;
        assert_eq!(owed.len(), 1);
        assert_eq!((owed[0].1, owed[0].2.as_str()), (500, "owed"));
        let items = day_items(&w, day(2)).await;
        // The same file again: the same answer, items and refunds.
        let second = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::WechatTradeBill,
            &with_long,
        )
        .await;
        assert_eq!(second, first, "the same file twice gives the same result");
        assert_eq!(day_items(&w, day(2)).await, items);
        assert_eq!(refunds_by_txn(&w, "X-LONG").await, owed);

        // A corrected file without X-LONG: the refund was never handed over, so it is withdrawn.
        let without = wechat_bill(&[
            (&t[0], "SUCCESS", 43000, ""),
            (&t[1], "SUCCESS", 43000, ""),
            (&t[2], "SUCCESS", 43000, ""),
            (&t[3], "SUCCESS", 43000, ""),
        ]);
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::WechatTradeBill,
            &without,
        )
        .await;
        assert_eq!(classes(&s), (4, 0, 0, 0, 0), "{s}");
        assert_eq!(
            s["superseded"],
            json!({"withdrawn": 1, "flagged": 0}),
            "{s}"
        );
        assert!(
            refunds_by_txn(&w, "X-LONG").await.is_empty(),
            "the refund owed is gone"
        );
        assert!(w.wechat.pending_refunds().await.unwrap().is_empty());
        assert!(
            day_items(&w, day(2)).await.is_empty(),
            "nothing left: not platform_only, not the first upload's action"
        );
        assert_invariants(&w).await;

        // X-LONG back, its refund handed to the channel, then dropped again: flagged for staff.
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::WechatTradeBill,
            &with_long,
        )
        .await;
        assert_eq!(classes(&s), (4, 1, 0, 0, 0), "{s}");
        let listed = w.wechat.pending_refunds().await.unwrap();
        assert_eq!(listed.len(), 1, "handed to the channel");
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::WechatTradeBill,
            &without,
        )
        .await;
        assert_eq!(
            s["superseded"],
            json!({"withdrawn": 0, "flagged": 1}),
            "{s}"
        );
        assert_eq!(
            refunds_by_txn(&w, "X-LONG").await[0].2,
            "sent",
            "left as it is"
        );
        let open = w
            .storage
            .reconciliation_items(Some("wechat"), day(2), day(2), true, 10)
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(
            (
                open[0].channel_txn_id.as_str(),
                open[0].class.as_str(),
                open[0].status.code()
            ),
            ("X-LONG", "superseded_action", "open")
        );
        assert_eq!((open[0].platform_fen, open[0].channel_fen), (500, 0));
        // Over HTTP the item list shows it as unresolved.
        let r =
            w.server
                .client
                .get(w.server.url(
                    "/api/v1/reconciliation/items?from=2020-11-02&to=2020-11-02&unresolved=true",
                ))
                .bearer_auth(&w.token)
                .send()
                .await
                .unwrap();
        let listed: Value = r.json().await.unwrap();
        assert_eq!(listed[0]["class"], json!("superseded_action"), "{listed}");
        // The same corrected file again: the same flag, once.
        let again = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::WechatTradeBill,
            &without,
        )
        .await;
        assert_eq!(again, s);
        assert_invariants(&w).await;
    })
    .await;
}

/// Issue 10, defect 3 under the `apply` policy: a 长款 applied to its order issued a receipt in
/// the payer's name, so a re-upload that drops it does not void anything by itself: it is flagged.
#[tokio::test]
async fn a_re_upload_dropping_an_applied_channel_only_line_flags_it_for_staff() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        w.storage
            .set_channel_only_policy("wechat", "apply")
            .await
            .unwrap();
        let p0 = payable_of(&w, &w.adults[0]).await;
        w.wechat
            .open_order(&OpenOrderRequest {
                channel_order_no: "WXO-GONE".into(),
                payable_ids: vec![p0.clone()],
                amount: 43000,
                payer: Payer::default(),
                family_account: None,
                health_card: None,
                agent_code: None,
            })
            .await
            .unwrap();
        let header = "channel_txn_id,type,amount,occurred_at,refund_no\n";
        let with = format!("{header}WXO-GONE,payment,43000,,\n");
        let first = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            with.as_bytes(),
        )
        .await;
        assert_eq!(first["channel_only"], json!(1), "{first}");
        assert_eq!(status_of(&w, &p0).await, "paid");
        let second = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            with.as_bytes(),
        )
        .await;
        assert_eq!(second, first, "the same file twice");
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            header.as_bytes(),
        )
        .await;
        assert_eq!(
            s["superseded"],
            json!({"withdrawn": 0, "flagged": 1}),
            "{s}"
        );
        assert_eq!(s["platform_only"], json!(0), "{s}");
        assert_eq!(
            status_of(&w, &p0).await,
            "paid",
            "nothing voided by a file alone"
        );
        let receipts = w
            .storage
            .receipts_of_person(&w.adults[0], &["320600".to_owned()], None)
            .await
            .unwrap();
        assert_eq!(receipts[0].status.code(), "valid");
        let open = w
            .storage
            .reconciliation_items(Some("wechat"), day(2), day(2), true, 10)
            .await
            .unwrap();
        assert_eq!(
            open.iter().map(|i| i.class.as_str()).collect::<Vec<_>>(),
            vec!["superseded_action"]
        );
        assert_eq!(open[0].region.as_deref(), Some("320600"));
        // The line listed again: the booking stands, the flag goes.
        let back = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            with.as_bytes(),
        )
        .await;
        assert_eq!(back, first);
        assert!(w
            .storage
            .reconciliation_items(Some("wechat"), day(2), day(2), true, 10)
            .await
            .unwrap()
            .is_empty());
        assert_invariants(&w).await;
    })
    .await;
}

/// The channel reporting a transaction its statement booked first makes it the channel's report:
/// a re-upload matches it rather than withdrawing it.
#[tokio::test]
async fn a_channel_only_line_the_channel_then_reports_is_its_report() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let header = "channel_txn_id,type,amount,occurred_at,refund_no\n";
        let with = format!("{header}X-LATE,payment,500,,\n");
        upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            with.as_bytes(),
        )
        .await;
        let p0 = payable_of(&w, &w.adults[0]).await;
        let late = w
            .wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "X-LATE",
                vec![p0],
                500,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(
            late.result,
            PaymentResult::RefundPending,
            "told what was done"
        );
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            with.as_bytes(),
        )
        .await;
        assert_eq!(classes(&s), (1, 0, 0, 0, 0), "{s}");
        // Dropped now: the channel's own report is missing from its statement (短款), nothing withdrawn.
        let s = upload(
            &w,
            "wechat",
            day(2),
            StatementFormat::Protocol,
            header.as_bytes(),
        )
        .await;
        assert_eq!(s["platform_only"], json!(1), "{s}");
        assert_eq!(
            s["superseded"],
            json!({"withdrawn": 0, "flagged": 0}),
            "{s}"
        );
        assert_eq!(refunds_by_txn(&w, "X-LATE").await.len(), 1);
        assert_invariants(&w).await;
    })
    .await;
}

async fn login_tax_collector(w: &World, username: &str, region: &str) -> String {
    yibao_server::services::staff::create_staff(
        w.storage.as_ref(),
        yibao_server::services::staff::NewStaff {
            temporary_password: false,
            username: username.into(),
            display_name: "税务征收".into(),
            role: yibao_storage::Role::TaxCollector,
            region: Some(yibao_domain::RegionCode::parse(region).unwrap()),
            station: None,
            password: yibao_server::services::staff::Password::new("tax-password-1".into())
                .unwrap(),
        },
        "test",
    )
    .await
    .unwrap();
    let login: Value = w
        .server
        .client
        .post(w.server.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": "tax-password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_owned()
}

/// Issue 10, defect 4: a channel serving several regions. Its statement is the administrator's to
/// upload (a tax collector is refused and told who may); a tax collector sees and resolves only
/// their own region's differences of it, and no channel-wide summary.
#[tokio::test]
async fn a_tax_collector_of_one_region_sees_and_acts_on_only_that_region_of_a_shared_channel() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        const SECRET_SHARED: &str = "shared-secret-0123456789";
        yibao::operator::channel_add(
            w.storage.as_ref(),
            None,
            "shared",
            "unionpay",
            &["320600".to_owned(), "460100".to_owned()],
            1000,
            SECRET_SHARED.to_owned(),
        )
        .await
        .unwrap();
        let shared = ChannelClient::builder(
            &w.server.base_url,
            "shared".to_owned(),
            SECRET_SHARED.as_bytes().to_vec(),
        )
        .clock_offset_secs(instant().timestamp() - Utc::now().timestamp())
        .build()
        .unwrap();
        // A 南通市 payment through the shared channel, missing from its statement (短款, region
        // 320600), and a 长款 that belongs to no region.
        let p0 = payable_of(&w, &w.adults[0]).await;
        shared
            .report_payment(&ReportPaymentRequest::for_payables("SH-1", vec![p0], 43000, paid_at()))
            .await
            .unwrap();
        let haikou = login_tax_collector(&w, "hk-tax", "460100").await;
        let nantong = login_tax_collector(&w, "nt-tax", "320600").await;
        let client = &w.server.client;
        let body = "channel_txn_id,type,amount,occurred_at,refund_no\nSH-LONG,payment,700,,\n";
        for token in [&haikou, &nantong] {
            let r = client
                .put(w.server.url("/api/v1/statements/shared/2020-11-02"))
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let e: Value = r.json().await.unwrap();
            let message = e["message"].as_str().unwrap();
            assert!(message.contains("管理员") && message.contains("460100"), "{message}");
        }
        assert!(
            w.storage.statements(None, day(1), day(3), 10).await.unwrap().is_empty(),
            "nothing reconciled, nothing acted on"
        );
        assert!(refunds_by_txn(&w, "SH-LONG").await.is_empty());
        // The administrator uploads it.
        let r = client
            .put(w.server.url("/api/v1/statements/shared/2020-11-02"))
            .bearer_auth(&w.token)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let w = &w;
        let items = |token: String, query: &'static str| async move {
            let r = w
                .server
                .client
                .get(w.server.url(query))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        };
        let list = "/api/v1/reconciliation/items?channel_id=shared&from=2020-11-02&to=2020-11-02";
        let all = items(w.token.clone(), list).await;
        assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
        assert_eq!(items(haikou.clone(), list).await, json!([]), "海口 sees nothing of 南通");
        let own = items(nantong.clone(), list).await;
        assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
        assert_eq!((own[0]["channel_txn_id"].clone(), own[0]["region"].clone()), (json!("SH-1"), json!("320600")));
        let report = "/api/v1/reports/reconciliation?channel_id=shared&from=2020-11-02&to=2020-11-02";
        let hk_report = items(haikou.clone(), report).await;
        assert_eq!(hk_report["differences"], json!([]));
        assert_eq!(hk_report["statements"][0]["summary"], Value::Null, "the channel-wide summary is the administrator's");
        assert!(items(w.token.clone(), report).await["statements"][0]["summary"].is_object());
        // Resolutions: 海口 cannot close 南通's difference; 南通 can.
        let resolve = |token: String| async move {
            w.server
                .client
                .post(w.server.url("/api/v1/reconciliation/resolutions"))
                .bearer_auth(token)
                .json(&json!({"channel_id": "shared", "statement_date": "2020-11-02", "channel_txn_id": "SH-1",
                    "class": "platform_only", "resolution": "channel_corrected", "note": "核实"}))
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(resolve(haikou.clone()).await, StatusCode::NOT_FOUND);
        assert_eq!(resolve(nantong.clone()).await, StatusCode::OK);
        assert_invariants(w).await;
    })
    .await;
}
