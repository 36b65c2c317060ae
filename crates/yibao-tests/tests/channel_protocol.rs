//! The channel protocol conformance suite: a real server over HTTP on each backend, driven by the
//! reference client signing as a bank would. Covers every endpoint, every error code of the spec,
//! replay, skew, idempotency conflicts, reversal first, partial refunds of a family payment, the
//! 16-reporter race across 3 channels, and receipt gaplessness after voids.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use yibao_channel_client::client::{ChannelClient, ClientError, RawOptions};
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentResult, RefundReason, RefundResultRequest,
    ReportPaymentRequest, SearchRequest,
};
use yibao_roster_file::Limits;
use yibao_server::receipts::PublicBaseUrl;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::roster_import::{import_roster, ImportScope};
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::{make_id, on_each_test_db, DbHandle, TestServer};

/// 2020-11-02 10:00 Beijing, a Monday inside 南通市's 2021 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap()
}

fn paid_at() -> DateTime<FixedOffset> {
    instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

/// Where the test server says the public reaches it.
const PUBLIC_BASE_URL: &str = "https://yibao.example.gov.cn/yibao";

const SECRET_BANK: &str = "bank-secret-0123456789";
const SECRET_WECHAT: &str = "wechat-secret-0123456789";
const SECRET_ALIPAY: &str = "alipay-secret-0123456789";
const SECRET_HAINAN: &str = "hainan-secret-0123456789";
const SECRET_SLOW: &str = "slow-secret-0123456789ab";

struct World {
    server: TestServer,
    bank: ChannelClient,
    wechat: ChannelClient,
    alipay: ChannelClient,
    hainan: ChannelClient,
    slow: ChannelClient,
    /// Adults of 南通市, 43000 fen each.
    adults: Vec<String>,
    /// An exempt person (低保).
    exempt: String,
    storage: Arc<dyn Storage>,
}

/// `YIBAO_TEST_PAYMENT_BATCH=1` runs the whole suite through group commit.
async fn world_at(db: &DbHandle, at: DateTime<Utc>) -> World {
    let batched = std::env::var("YIBAO_TEST_PAYMENT_BATCH").is_ok_and(|v| v == "1");
    world_with(db, at, batched).await
}

/// `batched`: payment reports go through the group-commit writer.
async fn world_with(db: &DbHandle, at: DateTime<Utc>, batched: bool) -> World {
    let storage = db.storage.clone();
    yibao::demo::load(storage.as_ref()).await.unwrap();
    let mut csv = String::from(
        "姓名,身份证号码,参保地区,减免类型,减免证件名称,减免证件号码,减免证件有效期至\n",
    );
    let adults: Vec<String> = (0..8)
        .map(|i| make_id("320602", "1980-01-01", 100 + i))
        .collect();
    for id in &adults {
        csv.push_str(&format!("张三丰,{id},320600,,,,\n"));
    }
    let exempt = make_id("320602", "1960-01-01", 200);
    csv.push_str(&format!("李四,{exempt},320600,低保,低保证,D1,2021-12-31\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv).unwrap();
    let scope = ImportScope::unrestricted("test");
    let r = import_roster(
        storage.as_ref(),
        &path,
        "r.csv",
        &scope,
        NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(),
        None,
        Limits::default(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.summary.enrolled, 9, "{:?}", r.rejections);
    let region = yibao_domain::RegionCode::parse("320600").unwrap();
    let year = yibao_domain::FeeYear::new(2021).unwrap();
    assess_region(
        storage.as_ref(),
        region,
        year,
        "test",
        NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(),
        &|_| {},
    )
    .await
    .unwrap();
    for (id, kind, secret, regions, rate) in [
        (
            "bank",
            "bank_counter",
            SECRET_BANK,
            vec!["320600".to_owned()],
            1000,
        ),
        (
            "wechat",
            "wechat",
            SECRET_WECHAT,
            vec!["320600".to_owned()],
            1000,
        ),
        (
            "alipay",
            "alipay",
            SECRET_ALIPAY,
            vec!["320600".to_owned()],
            1000,
        ),
        (
            "hainan",
            "gov_app",
            SECRET_HAINAN,
            vec!["460100".to_owned()],
            1000,
        ),
        ("slow", "kiosk", SECRET_SLOW, vec!["320600".to_owned()], 1),
    ] {
        yibao::operator::channel_add(
            storage.as_ref(),
            None,
            id,
            kind,
            &regions,
            rate,
            secret.to_owned(),
        )
        .await
        .unwrap();
    }
    let mut state = AppState::new(storage.clone(), Clock::fixed(at));
    state.public_base_url = PublicBaseUrl::parse(PUBLIC_BASE_URL).unwrap();
    // As `yibao serve` sets it up: the main font in memory, the installed Debian fallbacks read
    // from disk for a receipt that needs them.
    state.receipt_font = yibao_receipt_pdf::find_default_font().map(|p| {
        let (main, _) = yibao_receipt_pdf::ReceiptFonts::load(&p, &[]).unwrap();
        Arc::new(main)
    });
    state.receipt_fallback_fonts = Arc::new(yibao_receipt_pdf::find_default_fallback_fonts());
    if batched {
        // As `yibao serve` does with group commit on: payment reports and nonces committed in
        // groups, payment reports' reads and channels' searches gathered into rounds, on the
        // gathering thread with connections of its own.
        yibao_server::channel::gathering::Gathering::start(storage.clone(), 32)
            .await
            .unwrap()
            .install(&mut state);
    }
    if state.receipt_font.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must have the receipt font (scripts/install-fonts)"
        );
    }
    let server = TestServer::start_with_state(state, ServerSettings::default()).await;
    let offset = at.timestamp() - Utc::now().timestamp();
    let client = |id: &str, secret: &str| {
        ChannelClient::builder(&server.base_url, id.to_owned(), secret.as_bytes().to_vec())
            .clock_offset_secs(offset)
            .build()
            .unwrap()
    };
    World {
        bank: client("bank", SECRET_BANK),
        wechat: client("wechat", SECRET_WECHAT),
        alipay: client("alipay", SECRET_ALIPAY),
        hainan: client("hainan", SECRET_HAINAN),
        slow: client("slow", SECRET_SLOW),
        server,
        adults,
        exempt,
        storage,
    }
}

/// A search by ID number alone.
fn by_id(id: &str) -> SearchRequest {
    SearchRequest {
        id_number: id.to_owned(),
        insured_number: None,
        name: None,
        region: None,
        fee_year: None,
        agent_code: None,
    }
}

/// The bank's search for one of the world's adults (named 张三丰).
async fn search_adult(w: &World, id: &str) -> yibao_channel_client::types::SearchResponse {
    w.bank
        .search(&SearchRequest {
            id_number: id.to_owned(),
            insured_number: None,
            name: Some("张三丰".into()),
            region: None,
            fee_year: None,
            agent_code: None,
        })
        .await
        .unwrap()
}

/// The pool of a single PostgreSQL server, for the tests that look at PostgreSQL itself; `None` on
/// SQLite and on a Citus cluster.
fn single_node_postgres(db: &DbHandle) -> Option<sqlx::PgPool> {
    let pg = db.postgres.as_ref()?;
    (!yibao_tests::on_citus()).then(|| pg.pool().clone())
}

async fn payable_of(w: &World, id: &str) -> (String, i64) {
    let found = search_adult(w, id).await;
    (
        found.payables[0].payable_id.clone(),
        found.payables[0].amount,
    )
}

fn api_code(err: &ClientError) -> (u16, String) {
    (
        err.status().unwrap_or(0),
        err.api_code().unwrap_or_default().to_owned(),
    )
}

/// The spec's invariants, checked against what storage holds.
async fn assert_invariants(w: &World) {
    // 3. Receipt numbers gapless per code.
    for (code, count, highest) in w.storage.receipt_number_stats().await.unwrap() {
        assert_eq!(
            count, highest,
            "receipt code {code}: {count} receipts up to number {highest}"
        );
    }
}

#[tokio::test]
async fn search_finds_masked_payables_and_refuses_what_it_should() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let id = &w.adults[0];
        let found = w
            .bank
            .search(&SearchRequest {
                id_number: id.clone(),
                insured_number: None,
                name: None,
                region: None,
                fee_year: Some(2021),
                agent_code: None,
            })
            .await
            .unwrap();
        assert_eq!(found.insured.name_masked, "张*丰");
        assert_eq!(
            found.insured.id_number_masked,
            format!("{}**********{}", &id[..6], &id[16..])
        );
        let p = &found.payables[0];
        assert_eq!(
            (
                p.amount,
                p.fee_year,
                p.region.as_str(),
                p.region_name.as_str()
            ),
            (43000, 2021, "320600", "南通市")
        );
        assert_eq!(p.item, "resident_medical");
        assert_eq!(p.components.iter().map(|c| c.amount).sum::<i64>(), 43000);
        assert_eq!(
            p.window.as_ref().unwrap().opens,
            NaiveDate::from_ymd_opt(2020, 11, 1).unwrap()
        );
        // A wrong name answers like an unknown person, so names cannot be probed.
        let err = w
            .bank
            .search(&SearchRequest {
                id_number: id.clone(),
                insured_number: None,
                name: Some("王五".into()),
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (404, "NOT_FOUND".into()));
        let unknown = make_id("320602", "1999-09-09", 1);
        let err = w
            .bank
            .search(&SearchRequest {
                id_number: unknown,
                insured_number: None,
                name: None,
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (404, "NOT_FOUND".into()));
        assert!(
            err.to_string().contains("先到乡镇/社区登记")
                || format!("{err:?}").contains("先到乡镇/社区登记"),
            "{err:?}"
        );
        let err = w
            .bank
            .search(&SearchRequest {
                id_number: "320602198001011".into(),
                insured_number: None,
                name: None,
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (422, "INVALID_ID_NUMBER".into()));
        let err = w
            .bank
            .search(&SearchRequest {
                id_number: id.clone(),
                insured_number: None,
                name: None,
                region: Some("460100".into()),
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (403, "REGION_NOT_ALLOWED".into()));
        // A channel of another region does not see 南通市's people.
        let err = w
            .hainan
            .search(&SearchRequest {
                id_number: id.clone(),
                insured_number: None,
                name: None,
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (404, "NOT_FOUND".into()));
        // The exempt person is listed as exempt.
        let ex = w
            .bank
            .search(&SearchRequest {
                id_number: w.exempt.clone(),
                insured_number: None,
                name: None,
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap();
        assert_eq!(ex.payables[0].status.as_str(), "exempt");
    })
    .await;
}

#[tokio::test]
async fn authentication_refuses_bad_signatures_skew_replays_and_floods() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let body = serde_json::to_vec(&json!({"id_number": w.adults[0]})).unwrap();
        let path = "/channel/v1/payables/search";
        let send = |options: RawOptions| w.bank.send_raw(Method::POST, path, body.clone(), options);
        let ok = send(RawOptions::default()).await.unwrap();
        assert_eq!(ok.status, 200);
        assert!(ok.signature_verified(), "responses are signed");
        let code = |r: &yibao_channel_client::client::RawResponse| {
            (r.status, r.error_body().map(|e| e.code).unwrap_or_default())
        };
        // Replay: the same nonce again within 15 minutes.
        let nonce = "ReplayNonce0123456789".to_owned();
        let first = send(RawOptions {
            nonce: Some(nonce.clone()),
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(first.status, 200);
        let again = send(RawOptions {
            nonce: Some(nonce),
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&again), (401, "REPLAYED".into()));
        // Skew beyond 300 s either way.
        let now = instant().timestamp();
        for skew in [-301, 301] {
            let r = send(RawOptions {
                timestamp: Some(now + skew),
                ..RawOptions::default()
            })
            .await
            .unwrap();
            assert_eq!(code(&r), (401, "AUTH_FAILED".into()), "skew {skew}");
        }
        let r = send(RawOptions {
            timestamp: Some(now + 299),
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200, "within 300 s");
        // Bad signature, wrong secret, unknown channel, missing headers, bad nonce.
        let r = send(RawOptions {
            signature: Some("00".repeat(32)),
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        let r = send(RawOptions {
            secret: Some(b"not-the-secret-000000".to_vec().into()),
            skip_response_verification: true,
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        let r = send(RawOptions {
            channel_id: Some("nobody".into()),
            skip_response_verification: true,
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        let r = send(RawOptions {
            omit_headers: vec!["Yibao-Signature".into()],
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        let r = send(RawOptions {
            nonce: Some("short".into()),
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        // An absurd timestamp is refused, not a panic.
        let r = send(RawOptions {
            timestamp: Some(i64::MIN),
            ..RawOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        // Only the statement upload may be large: 100 KiB of JSON elsewhere is refused before any work.
        let big =
            serde_json::to_vec(&json!({"id_number": w.adults[0], "pad": "x".repeat(100 * 1024)}))
                .unwrap();
        let r = w
            .bank
            .send_raw(Method::POST, path, big, RawOptions::default())
            .await
            .unwrap();
        assert_eq!(code(&r), (413, "PAYLOAD_TOO_LARGE".into()));
        // A body changed after signing.
        let r = w
            .bank
            .send_raw(
                Method::POST,
                path,
                serde_json::to_vec(&json!({"id_number": w.adults[1]})).unwrap(),
                RawOptions {
                    signature: Some(yibao_channel_client::signing::sign(
                        SECRET_BANK.as_bytes(),
                        &yibao_channel_client::signing::request_string_to_sign(
                            "POST",
                            path,
                            now,
                            "TamperNonce0123456789",
                            &body,
                        ),
                    )),
                    nonce: Some("TamperNonce0123456789".into()),
                    timestamp: Some(now),
                    ..RawOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(code(&r), (401, "AUTH_FAILED".into()));
        // Rate: the slow channel allows one request a second.
        let mut limited = 0;
        for _ in 0..4 {
            let r = w
                .slow
                .send_raw(Method::POST, path, body.clone(), RawOptions::default())
                .await
                .unwrap();
            if r.status == 429 {
                assert_eq!(r.error_body().unwrap().code, "RATE_LIMITED");
                limited += 1;
            }
        }
        assert!(limited >= 2, "{limited}");
    })
    .await;
}

#[tokio::test]
async fn orders_hold_payables_and_are_idempotent() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let request = OpenOrderRequest {
            channel_order_no: "B-1".into(),
            payable_ids: vec![p0.clone()],
            amount,
            payer: Payer {
                name: Some("张三丰".into()),
                phone: None,
            },
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        let opened = w.bank.open_order(&request).await.unwrap();
        assert!(opened.created);
        assert_eq!(opened.order.amount, 43000);
        assert_eq!(
            opened.order.expires_at.timestamp(),
            instant().timestamp() + 900
        );
        let again = w.bank.open_order(&request).await.unwrap();
        assert!(
            !again.created,
            "the same channel_order_no answers 200 with the same order"
        );
        assert_eq!(again.order.order_no, opened.order.order_no);
        let mut different = request.clone();
        different.payer.phone = Some("13800000000".into());
        assert_eq!(
            api_code(&w.bank.open_order(&different).await.unwrap_err()),
            (409, "IDEMPOTENCY_CONFLICT".into())
        );
        // Another channel finds it locked, by an order.
        let search = w.wechat.search(&by_id(&w.adults[0])).await.unwrap();
        assert_eq!(search.payables[0].status.as_str(), "locked");
        let other = OpenOrderRequest {
            channel_order_no: "W-1".into(),
            payable_ids: vec![p0.clone()],
            amount,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        let err = w.wechat.open_order(&other).await.unwrap_err();
        assert_eq!(api_code(&err), (409, "LOCKED".into()));
        assert!(format!("{err:?}").contains("另一缴费订单"), "{err:?}");
        // Errors: wrong amount, unknown payable, exempt, other region.
        let (p1, _) = payable_of(&w, &w.adults[1]).await;
        let bad = OpenOrderRequest {
            channel_order_no: "W-2".into(),
            payable_ids: vec![p1.clone()],
            amount: 42999,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        assert_eq!(
            api_code(&w.wechat.open_order(&bad).await.unwrap_err()),
            (422, "AMOUNT_MISMATCH".into())
        );
        let bad = OpenOrderRequest {
            channel_order_no: "W-3".into(),
            payable_ids: vec!["nope".into()],
            amount: 1,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        assert_eq!(
            api_code(&w.wechat.open_order(&bad).await.unwrap_err()),
            (404, "NOT_FOUND".into())
        );
        let ex = w
            .bank
            .search(&SearchRequest {
                id_number: w.exempt.clone(),
                insured_number: None,
                name: None,
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap();
        let bad = OpenOrderRequest {
            channel_order_no: "W-4".into(),
            payable_ids: vec![ex.payables[0].payable_id.clone()],
            amount: 0,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        assert_eq!(
            api_code(&w.wechat.open_order(&bad).await.unwrap_err()),
            (422, "NOT_PAYABLE".into())
        );
        let bad = OpenOrderRequest {
            channel_order_no: "H-1".into(),
            payable_ids: vec![p1.clone()],
            amount,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        assert_eq!(
            api_code(&w.hainan.open_order(&bad).await.unwrap_err()),
            (403, "REGION_NOT_ALLOWED".into())
        );
        // Cancelling releases; cancelling twice is fine.
        w.bank.cancel_order(&opened.order.order_no).await.unwrap();
        w.bank.cancel_order(&opened.order.order_no).await.unwrap();
        let reopened = w.wechat.open_order(&other).await.unwrap();
        assert!(reopened.created);
        // Paid through the order, then a new order finds it paid.
        let report = ReportPaymentRequest::for_order(
            "W-TXN-1",
            reopened.order.order_no.clone(),
            amount,
            paid_at(),
        );
        assert_eq!(
            w.wechat.report_payment(&report).await.unwrap().result,
            PaymentResult::Paid
        );
        let late = OpenOrderRequest {
            channel_order_no: "A-1".into(),
            payable_ids: vec![p0],
            amount,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        assert_eq!(
            api_code(&w.alipay.open_order(&late).await.unwrap_err()),
            (409, "ALREADY_PAID".into())
        );
    })
    .await;
}

#[tokio::test]
async fn an_expired_order_still_takes_its_payment_and_others_may_lock_after_expiry() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let opened = w
            .bank
            .open_order(&OpenOrderRequest {
                channel_order_no: "B-9".into(),
                payable_ids: vec![p0.clone()],
                amount,
                payer: Payer::default(),
                family_account: None,
                health_card: None,
                agent_code: None,
            })
            .await
            .unwrap();
        // The sweeper runs 20 minutes later.
        w.storage
            .expire_orders(instant().timestamp() + 1200)
            .await
            .unwrap();
        let report =
            ReportPaymentRequest::for_order("B-TXN-9", opened.order.order_no, amount, paid_at());
        assert_eq!(
            w.bank.report_payment(&report).await.unwrap().result,
            PaymentResult::Paid
        );
    })
    .await;
}

/// An order of one payable with no payer, account, card or agent.
fn order_of(channel_order_no: &str, payable_id: String, amount: i64) -> OpenOrderRequest {
    OpenOrderRequest {
        channel_order_no: channel_order_no.into(),
        payable_ids: vec![payable_id],
        amount,
        payer: Payer::default(),
        family_account: None,
        health_card: None,
        agent_code: None,
    }
}

#[tokio::test]
async fn the_window_closes_orders_where_late_payment_is_not_allowed() {
    on_each_test_db(|db| async move {
        // 2020-12-21 10:00 Beijing: the day after 南通市's 2021 window closed.
        let w = world_at(&db, Utc.with_ymd_and_hms(2020, 12, 21, 2, 0, 0).unwrap()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let err = w
            .bank
            .open_order(&order_of("B-L", p0, amount))
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (422, "WINDOW_CLOSED".into()));
    })
    .await;
}

#[tokio::test]
async fn an_extension_of_the_window_takes_orders_where_late_payment_is_not_allowed() {
    on_each_test_db(|db| async move {
        // 南通市's 2021 window closed on 2020-12-20; extended (延长期) to 2021-01-10, a payment on
        // 2020-12-21 is still in time, though the region takes no late payment. The policy is
        // changed before the server first reads it.
        let w = world_at(&db, Utc.with_ymd_and_hms(2020, 12, 21, 2, 0, 0).unwrap()).await;
        yibao_tests::change_fee_policy(db.storage.as_ref(), "320600", 2021, |policy| {
            policy.cover_rules.waiting.extension_until = NaiveDate::from_ymd_opt(2021, 1, 10);
        })
        .await;
        // The search says until when (an addition to v1).
        let found = search_adult(&w, &w.adults[0]).await;
        let window = found.payables[0].window.expect("a window");
        assert_eq!(window.extension_until, NaiveDate::from_ymd_opt(2021, 1, 10));
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let opened = w
            .bank
            .open_order(&order_of("B-E", p0, amount))
            .await
            .unwrap();
        // Paid the same day, in the extension.
        let in_extension = Utc
            .with_ymd_and_hms(2020, 12, 21, 2, 0, 0)
            .unwrap()
            .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap());
        let report =
            ReportPaymentRequest::for_order("B-E-TXN", opened.order.order_no, amount, in_extension);
        assert_eq!(
            w.bank.report_payment(&report).await.unwrap().result,
            PaymentResult::Paid
        );
    })
    .await;
}

#[tokio::test]
async fn payments_apply_once_refund_the_rest_and_repeat_their_first_answer() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let first = ReportPaymentRequest::for_payables("T-1", vec![p0.clone()], amount, paid_at());
        let paid = w.bank.report_payment(&first).await.unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        assert_eq!(paid.receipts.len(), 1);
        assert_eq!(paid.receipts[0].receipt_code, "32060020");
        assert_eq!(paid.receipts[0].receipt_number, "0000000001");
        assert_eq!(paid.receipts[0].check_code.len(), 6);
        // The same report again: the same answer, nothing changes.
        assert_eq!(w.bank.report_payment(&first).await.unwrap(), paid);
        let changed =
            ReportPaymentRequest::for_payables("T-1", vec![p0.clone()], amount + 1, paid_at());
        assert_eq!(
            api_code(&w.bank.report_payment(&changed).await.unwrap_err()),
            (409, "IDEMPOTENCY_CONFLICT".into())
        );
        // Another channel took money for it too: a refund owed, due two working days later (Wednesday).
        let second = w
            .wechat
            .report_payment(&ReportPaymentRequest::for_payables(
                "W-1",
                vec![p0.clone()],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(second.result, PaymentResult::RefundPending);
        let refund = second.refund.clone().unwrap();
        assert_eq!(
            (refund.amount, refund.reason.clone()),
            (43000, RefundReason::AlreadyPaid)
        );
        assert_eq!(refund.due, NaiveDate::from_ymd_opt(2020, 11, 4).unwrap());
        // A wrong amount applies nothing and refunds all.
        let (p1, _) = payable_of(&w, &w.adults[1]).await;
        let wrong = w
            .alipay
            .report_payment(&ReportPaymentRequest::for_payables(
                "A-1",
                vec![p1.clone()],
                40000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(
            (
                wrong.result.clone(),
                wrong.refund.as_ref().unwrap().reason.clone()
            ),
            (PaymentResult::RefundPending, RefundReason::AmountMismatch)
        );
        assert_eq!(wrong.refund.unwrap().amount, 40000);
        // An unknown payable is not payable; the money is owed back.
        let unknown = w
            .alipay
            .report_payment(&ReportPaymentRequest::for_payables(
                "A-2",
                vec!["nope".into()],
                100,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(unknown.refund.unwrap().reason, RefundReason::NotPayable);
        // A family payment where one member was paid already: partially refunded.
        let (p2, _) = payable_of(&w, &w.adults[2]).await;
        let family = w
            .alipay
            .report_payment(&ReportPaymentRequest::for_payables(
                "A-3",
                vec![p0.clone(), p2.clone()],
                86000,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(family.result, PaymentResult::PartiallyRefunded);
        assert_eq!(family.receipts.len(), 1);
        assert_eq!(family.receipts[0].payable_id, p2);
        let part = family.refund.unwrap();
        assert_eq!(
            (part.amount, part.reason),
            (43000, RefundReason::AlreadyPaid)
        );
        // Status, refunds list and results.
        let status = w.alipay.payment_status("A-3").await.unwrap();
        assert_eq!(status.status.as_str(), "partially_refunded");
        assert_eq!(
            api_code(&w.alipay.payment_status("never").await.unwrap_err()),
            (404, "NOT_FOUND".into())
        );
        let owed = w.wechat.pending_refunds().await.unwrap();
        assert_eq!(owed.len(), 1, "each channel sees its own refunds only");
        assert_eq!(owed[0].channel_txn_id, "W-1");
        let result = RefundResultRequest::succeeded("WX-REFUND-1");
        w.wechat
            .report_refund_result(&owed[0].refund_no, &result)
            .await
            .unwrap();
        w.wechat
            .report_refund_result(&owed[0].refund_no, &result)
            .await
            .unwrap();
        assert!(w.wechat.pending_refunds().await.unwrap().is_empty());
        assert_eq!(
            w.wechat
                .payment_status("W-1")
                .await
                .unwrap()
                .status
                .as_str(),
            "refunded"
        );
        // The same success with another refund id is a conflict (a second refund?), not silently accepted.
        let other = RefundResultRequest::succeeded("WX-REFUND-2");
        assert_eq!(api_code(&w.wechat.report_refund_result(&owed[0].refund_no, &other).await.unwrap_err()).0, 409);
        // A negative amount in a statement is refused with a clear answer.
        let err = w
            .wechat
            .upload_statement(NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(), "channel_txn_id,type,amount,occurred_at,refund_no\nW-1,payment,-5,2020-11-02T10:00:00+08:00,\n")
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (400, "INVALID_REQUEST".into()));
        let failed = RefundResultRequest::failed("WX-REFUND-1", "账户已销户");
        assert_eq!(
            api_code(
                &w.wechat
                    .report_refund_result(&owed[0].refund_no, &failed)
                    .await
                    .unwrap_err()
            )
            .0,
            409
        );
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn reversals_undo_payments_void_receipts_and_may_come_first() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let paid = w.bank.report_payment(&ReportPaymentRequest::for_payables("T-R", vec![p0.clone()], amount, paid_at())).await.unwrap();
        let receipt = paid.receipts[0].clone();
        w.bank.reverse_payment("T-R", "柜面撤销").await.unwrap();
        w.bank.reverse_payment("T-R", "柜面撤销").await.unwrap();
        assert_eq!(w.bank.payment_status("T-R").await.unwrap().status.as_str(), "reversed");
        let search = w.bank.search(&SearchRequest { id_number: w.adults[0].clone(), insured_number: None, name: None, region: None, fee_year: None, agent_code: None }).await.unwrap();
        assert_eq!(search.payables[0].status.as_str(), "unpaid");
        let verify = w.bank.public_verify(&receipt.receipt_code, &receipt.receipt_number, &receipt.check_code).await.unwrap();
        assert_eq!(verify.status.as_str(), "voided");
        // Paid again by another channel: a new receipt number, no gap (the voided one stays on record).
        let again = w.wechat.report_payment(&ReportPaymentRequest::for_payables("W-R", vec![p0.clone()], amount, paid_at())).await.unwrap();
        assert_eq!(again.receipts[0].receipt_number, "0000000002");
        // A reversal before its payment: the later report is refused with 409 REVERSED …
        w.alipay.reverse_payment("A-EARLY", "超时冲正").await.unwrap();
        let (p1, _) = payable_of(&w, &w.adults[1]).await;
        let late = ReportPaymentRequest::for_payables("A-EARLY", vec![p1.clone()], amount, paid_at());
        assert_eq!(api_code(&w.alipay.report_payment(&late).await.unwrap_err()), (409, "REVERSED".into()));
        // … unless the channel said it still holds the money: then it is owed back.
        let body = serde_json::to_vec(&json!({"reason": "冲正失败", "funds_returned": false})).unwrap();
        let r = w.alipay.send_raw(Method::POST, "/channel/v1/payments/A-HELD/reversal", body, RawOptions::default()).await.unwrap();
        assert_eq!(r.status, 200);
        let held = w.alipay.report_payment(&ReportPaymentRequest::for_payables("A-HELD", vec![p1.clone()], amount, paid_at())).await.unwrap();
        assert_eq!(held.result, PaymentResult::RefundPending);
        assert_eq!(held.refund.unwrap().reason, RefundReason::ReversedEarlier);
        // Once the day's statement is reconciled, reversal is closed.
        let (p2, _) = payable_of(&w, &w.adults[2]).await;
        w.bank.report_payment(&ReportPaymentRequest::for_payables("T-S", vec![p2], amount, paid_at())).await.unwrap();
        let csv = "channel_txn_id,type,amount,occurred_at,refund_no\nT-S,payment,43000,2020-11-02T10:00:00+08:00,\nT-X,payment,100,2020-11-02T11:00:00+08:00,\n";
        let summary = w.bank.upload_statement(NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(), csv).await.unwrap();
        assert_eq!(summary.matched.count(), 2, "T-S and the reversed T-R");
        assert_eq!(summary.channel_only.count(), 1);
        assert_eq!(api_code(&w.bank.reverse_payment("T-S", "晚了").await.unwrap_err()), (409, "REVERSAL_CLOSED".into()));
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn receipts_are_searchable_verifiable_and_printable() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let paid = w
            .bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "T-P",
                vec![p0],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let r = &paid.receipts[0];
        let list = w
            .bank
            .search_receipts(&yibao_channel_client::types::ReceiptSearchRequest {
                id_number: w.adults[0].clone(),
                name: "张三丰".into(),
                fee_year: None,
            })
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        let doc = w
            .bank
            .receipt_json(&r.receipt_code, &r.receipt_number, &r.check_code)
            .await
            .unwrap();
        assert_eq!(doc.extra["amount"], 43000);
        assert_eq!(doc.extra["payer_name_masked"], "张*丰");
        let err = w
            .bank
            .receipt_json(&r.receipt_code, &r.receipt_number, "zzzzzz")
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), (404, "NOT_FOUND".into()));
        let v = w
            .bank
            .public_verify(&r.receipt_code, &r.receipt_number, &r.check_code)
            .await
            .unwrap();
        assert_eq!((v.status.as_str(), v.amount), ("valid", Some(43000)));
        // The citizen's own query, with a 15-digit number when their card is old.
        let status: Value = w
            .server
            .client
            .get(w.server.url(&format!(
                "/public/paid-status?id_number={}&name=张三丰",
                w.adults[0]
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["payables"][0]["status"], "paid");
        assert!(
            !status.to_string().contains(&w.adults[0]),
            "never the full ID number"
        );
    })
    .await;
}

/// What the QR codes of a PDF decode to (`pdftoppm` + `zbarimg`), or `None` with a notice.
fn pdf_qr_codes(pdf: &[u8]) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, pdf).unwrap();
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile"])
        .arg(&path)
        .arg(dir.path().join("page"))
        .status();
    let decoded = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(dir.path().join("page.png"))
        .output();
    match (rendered, decoded) {
        (Ok(status), Ok(out)) if status.success() => Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect(),
        ),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have pdftoppm and zbarimg"
            );
            eprintln!(
                "NOTICE: pdftoppm or zbarimg missing (poppler-utils, zbar-tools): QR not decoded"
            );
            None
        }
    }
}

/// Creates the staff account (if missing) and signs in.
async fn staff_token_on(
    server: &TestServer,
    storage: Option<&dyn Storage>,
    username: &str,
    password: &str,
) -> String {
    if let Some(storage) = storage {
        add_staff(storage, username, password).await;
    }
    let answer: Value = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().expect("token").to_owned()
}

async fn add_staff(storage: &dyn Storage, username: &str, password: &str) {
    use yibao_server::services::staff::{create_staff, NewStaff, Password};
    if storage.get_staff(username).await.unwrap().is_some() {
        return;
    }
    let (role, region, station) = match username {
        "admin" => (yibao_storage::Role::Admin, None, None),
        _ => (
            yibao_storage::Role::StationOperator,
            Some(yibao_domain::RegionCode::parse("320600").unwrap()),
            Some(yibao_domain::StationCode::parse("ST-01").unwrap()),
        ),
    };
    create_staff(
        storage,
        NewStaff {
            temporary_password: false,
            username: username.into(),
            display_name: "测试".into(),
            role,
            region,
            station,
            password: Password::new(password.into()).unwrap(),
        },
        "test",
    )
    .await
    .unwrap();
}

/// Issue 10, defect 10: the payer's own copy carries the name in full, what the numbers alone
/// reach masks it, the verification URL is absolute and a QR code, staff can reprint (audited).
#[tokio::test]
async fn receipts_name_the_payer_in_full_only_on_the_payers_copy_and_verify_by_absolute_url() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let paid = w
            .bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "T-R",
                vec![p0],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let r = &paid.receipts[0];
        let verify_url = format!(
            "{PUBLIC_BASE_URL}/public/receipts/verify?code={}&number={}&check_code={}",
            r.receipt_code, r.receipt_number, r.check_code
        );

        // The §8 GET: masked, with the absolute verification URL.
        let doc = w
            .bank
            .receipt_json(&r.receipt_code, &r.receipt_number, &r.check_code)
            .await
            .unwrap();
        assert_eq!(doc.extra["payer_name_masked"], "张*丰");
        assert_eq!(doc.extra["verify_url"], verify_url.as_str());
        assert!(
            !Value::Object(doc.extra.clone())
                .to_string()
                .contains("张三丰"),
            "{:?}",
            doc.extra
        );

        // The payer's copy: proven by ID number and name.
        let proof = yibao_channel_client::types::PayerCopyRequest {
            check_code: r.check_code.clone(),
            id_number: w.adults[0].clone(),
            name: "张三丰".into(),
        };
        let copy = w
            .bank
            .payer_copy_json(&r.receipt_code, &r.receipt_number, &proof)
            .await
            .unwrap();
        assert_eq!(copy.extra["payer_name"], "张三丰");
        assert!(
            !Value::Object(copy.extra.clone())
                .to_string()
                .contains(&w.adults[0]),
            "ID number stays masked"
        );
        for wrong in [
            yibao_channel_client::types::PayerCopyRequest {
                name: "张三".into(),
                ..proof.clone()
            },
            yibao_channel_client::types::PayerCopyRequest {
                id_number: w.adults[1].clone(),
                ..proof.clone()
            },
            yibao_channel_client::types::PayerCopyRequest {
                check_code: "zzzzzz".into(),
                ..proof.clone()
            },
        ] {
            let err = w
                .bank
                .payer_copy_json(&r.receipt_code, &r.receipt_number, &wrong)
                .await
                .unwrap_err();
            assert_eq!(api_code(&err), (404, "NOT_FOUND".into()));
        }

        // Staff: JSON and PDF, scoped like persons, audited.
        let admin = staff_token_on(
            &w.server,
            Some(w.storage.as_ref()),
            "admin",
            "yibao-demo-admin",
        )
        .await;
        let no = format!("{}-{}", r.receipt_code, r.receipt_number);
        let staff_doc: Value = w
            .server
            .client
            .get(w.server.url(&format!("/api/v1/receipts/{no}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(staff_doc["payer_name"], "张三丰", "{staff_doc}");
        assert_eq!(staff_doc["verify_url"], verify_url.as_str());
        let station = staff_token_on(
            &w.server,
            Some(w.storage.as_ref()),
            "nt-st01",
            "yibao-demo-station",
        )
        .await;
        let refused = w
            .server
            .client
            .get(w.server.url(&format!("/api/v1/receipts/{no}.pdf")))
            .bearer_auth(&station)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "another station's person");
        let bad = w
            .server
            .client
            .get(w.server.url("/api/v1/receipts/12345"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let bad: Value = bad.json().await.unwrap();
        assert!(
            bad["message"].as_str().unwrap().contains("receipt_no"),
            "{bad}"
        );
        let listed: Value = w
            .server
            .client
            .get(w.server.url(&format!(
                "/api/v1/regions/320600/persons/{}/receipts",
                w.adults[0]
            )))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed[0]["receipt_no"], no.as_str(), "{listed}");
        let audit = w.storage.list_audit(50).await.unwrap();
        let read = audit
            .iter()
            .find(|a| a.entry.action == "receipt.read")
            .expect("receipt.read audited");
        assert_eq!(read.entry.actor, "admin");
        assert!(
            !read.entry.target.contains(&w.adults[0]),
            "audit target masked"
        );
        assert!(audit.iter().any(|a| a.entry.action == "receipt.list"));

        if std::env::var("CI").as_deref() != Ok("true")
            && yibao_receipt_pdf::find_default_font().is_none()
        {
            eprintln!("NOTICE: no receipt font: PDFs not checked");
            return;
        }
        // The channel's PDF: masked; the payer's copy and the staff reprint: in full; every one
        // with the absolute URL as text and as a QR code.
        let masked_pdf = w
            .bank
            .receipt_pdf(&r.receipt_code, &r.receipt_number, &r.check_code)
            .await
            .unwrap();
        let payer_pdf = w
            .bank
            .payer_copy_pdf(&r.receipt_code, &r.receipt_number, &proof)
            .await
            .unwrap();
        let staff_pdf = w
            .server
            .client
            .get(w.server.url(&format!("/api/v1/receipts/{no}.pdf")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(staff_pdf.status(), 200);
        assert_eq!(staff_pdf.headers()["content-type"], "application/pdf");
        let staff_pdf = staff_pdf.bytes().await.unwrap().to_vec();
        if let Some(dir) = std::env::var_os("YIBAO_RECEIPT_SAMPLE_DIR") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::write(dir.join("channel-masked.pdf"), &masked_pdf).unwrap();
            std::fs::write(dir.join("staff-reprint.pdf"), &staff_pdf).unwrap();
        }
        for (pdf, full) in [(&masked_pdf, false), (&payer_pdf, true), (&staff_pdf, true)] {
            if let Some(text) = yibao_tests::pdf::text(pdf) {
                let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                assert_eq!(squeezed.contains("张三丰"), full, "{text}");
                assert_eq!(squeezed.contains("张*丰"), !full, "{text}");
                assert!(squeezed.contains(&verify_url), "{text}");
                assert!(!squeezed.contains(&w.adults[0]), "ID number masked: {text}");
            }
            if let Some(codes) = pdf_qr_codes(pdf) {
                assert_eq!(codes, vec![verify_url.clone()]);
            }
        }
    })
    .await;
}

/// Without the font, a PDF is 503 with a hint to the README section that installs it.
#[tokio::test]
async fn without_the_font_a_receipt_pdf_names_the_readme_section() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let paid = w
            .bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "T-F",
                vec![p0],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let r = &paid.receipts[0];
        let bare = TestServer::start(
            w.storage.clone(),
            Clock::fixed(instant()),
            ServerSettings::default(),
        )
        .await;
        let admin =
            staff_token_on(&bare, Some(w.storage.as_ref()), "admin", "yibao-demo-admin").await;
        let answer = bare
            .client
            .get(bare.url(&format!(
                "/api/v1/receipts/{}-{}.pdf",
                r.receipt_code, r.receipt_number
            )))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 503);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("README 的“Receipt font（票据字体）”一节"),
            "{message}"
        );
        assert!(message.contains("scripts/install-fonts"), "{message}");
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap();
        assert!(
            readme.contains("\n## Receipt font（票据字体）\n"),
            "the section exists"
        );
    })
    .await;
}

/// Issue 10, defect 11: a channel request or public query that does not deserialize is answered
/// in Chinese naming the field (signed, like every channel answer).
#[tokio::test]
async fn malformed_channel_requests_name_the_field_in_chinese() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let send = |body: &'static str| {
            let bank = &w.bank;
            async move {
                let raw = bank
                    .send_raw(
                        Method::POST,
                        "/channel/v1/payables/search",
                        body.as_bytes().to_vec(),
                        RawOptions {
                            content_type: Some("application/json".into()),
                            ..RawOptions::default()
                        },
                    )
                    .await
                    .unwrap();
                let body: Value = serde_json::from_slice(&raw.body).unwrap();
                (raw.status, body)
            }
        };
        let (status, body) = send(r#"{"name": "张三丰"}"#).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "INVALID_REQUEST");
        // Neither the ID number nor the insured number (参保编号, an addition to v1).
        assert_eq!(
            body["message"],
            "请填写身份证号码（id_number）或参保编号（insured_number）二者之一"
        );
        let (_, body) = send(r#"{"id_number": 320602198001011001}"#).await;
        assert_eq!(
            body["message"],
            "请求内容中的字段 id_number 类型不对：应为文本（字符串），收到的是整数"
        );
        let (_, body) = send(r#"{"id_number": "x", "fee_year": "2021"}"#).await;
        assert_eq!(
            body["message"],
            "请求内容中的字段 fee_year 类型不对：应为整数，收到的是文本"
        );
        // Public query strings.
        let r = w
            .server
            .client
            .get(
                w.server
                    .url("/public/receipts/verify?code=32060020&number=0000000001"),
            )
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "INVALID_REQUEST", "{body}");
        assert_eq!(body["message"], "查询参数缺少必填字段 check_code");
        let r = w
            .server
            .client
            .get(w.server.url(&format!(
                "/public/paid-status?id_number={}&name=x&fee_year=next",
                w.adults[0]
            )))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["message"], "查询参数中的字段 fee_year 应为整数",
            "{body}"
        );
    })
    .await;
}

/// A search shows its payables' collection window from a fee policy the server keeps for at most
/// `FEE_POLICY_CACHE_TTL`: a window changed by another process shows within it, one changed
/// through this server's API at once.
#[tokio::test]
async fn a_changed_collection_window_shows_in_searches_at_once_here_and_within_seconds_elsewhere() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let closes = || async {
            let found = w.bank.search(&by_id(&w.adults[0])).await.unwrap();
            found.payables[0].window.as_ref().unwrap().closes
        };
        let day = |d: u32| NaiveDate::from_ymd_opt(2020, 12, d).unwrap();
        assert_eq!(closes().await, day(20));
        let region = yibao_domain::RegionCode::parse("320600").unwrap();
        let year = yibao_domain::FeeYear::new(2021).unwrap();
        let with_closing = |closes: NaiveDate| {
            let storage = w.storage.clone();
            async move {
                let old = storage.get_fee_policy(region, year).await.unwrap().unwrap();
                yibao_domain::FeePolicy::new(yibao_domain::FeePolicyInput {
                    region,
                    fee_year: year,
                    amounts: old.amounts().map(|(c, a)| (c, a.clone())).collect(),
                    age_reference_date: old.age_reference_date(),
                    adult_age: old.adult_age(),
                    window: yibao_domain::CollectionWindow::new(old.window().opens(), closes)
                        .unwrap(),
                    late_payment_allowed: old.late_payment_allowed(),
                    cover_rules: old.cover_rules().clone(),
                })
                .unwrap()
            }
        };
        // Another process changes it (straight into the database): shown within the TTL.
        let policy = with_closing(day(27)).await;
        w.storage.put_fee_policy(&policy).await.unwrap();
        assert_eq!(
            closes().await,
            day(20),
            "still the window read a moment ago"
        );
        tokio::time::sleep(
            yibao_storage::memo::FEE_POLICY_CACHE_TTL + std::time::Duration::from_millis(100),
        )
        .await;
        assert_eq!(closes().await, day(27));
        // Through this server's API: at once.
        let token = staff_token_on(
            &w.server,
            Some(w.storage.as_ref()),
            "admin",
            "admin-password-0001",
        )
        .await;
        let minor = serde_json::json!({"total": 30000, "critical_illness": 2000});
        let body = serde_json::json!({
            "amounts": {"adult": {"total": 43000, "critical_illness": 2000, "long_term_care": 3000},
                        "minor_not_in_school": minor, "student": minor, "newborn": minor},
            "age_reference_date": policy.age_reference_date(),
            "window": {"opens": policy.window().opens(), "closes": day(31)},
        });
        let r = w
            .server
            .client
            .put(w.server.url("/api/v1/regions/320600/fee-policies/2021"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
        assert_eq!(closes().await, day(31));
    })
    .await;
}

/// Nonces through the nonce writer (group commit): 600 requests on three channels, each nonce sent
/// twice at once, get exactly one acceptance per nonce; after a restart, or on a second server
/// on the same database, every one of them is a replay, because each was committed before its
/// request was served.
#[tokio::test]
async fn racing_requests_through_the_nonce_writer_get_each_nonce_once_and_a_restart_keeps_them() {
    on_each_test_db(|db| async move {
        use yibao_server::channel::nonces::NonceWriter;
        let writer = NonceWriter::spawn(db.storage.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for _copy in 0..2 {
            for channel in ["bank", "wechat", "alipay"] {
                for i in 0..100 {
                    let writer = writer.clone();
                    tasks.spawn(async move {
                        let nonce = format!("nonce{i:012}");
                        let fresh = writer.remember(channel, &nonce, 1_000).await.unwrap();
                        (channel, i, fresh)
                    });
                }
            }
        }
        let mut accepted = std::collections::BTreeMap::<(&str, i32), u32>::new();
        while let Some(done) = tasks.join_next().await {
            let (channel, i, fresh) = done.unwrap();
            *accepted.entry((channel, i)).or_default() += u32::from(fresh);
        }
        assert_eq!(accepted.len(), 300);
        assert!(
            accepted.values().all(|n| *n == 1),
            "each nonce accepted exactly once: {accepted:?}"
        );
        // A restart, or a second server: a new writer over another connection to the database.
        let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
        let restarted = NonceWriter::spawn(yibao::storage::open_storage(&url).await.unwrap());
        for channel in ["bank", "wechat", "alipay"] {
            assert!(!restarted
                .remember(channel, "nonce000000000042", 1_001)
                .await
                .unwrap());
        }
        assert!(restarted
            .remember("bank", "nonce000000000100", 1_001)
            .await
            .unwrap());
    })
    .await;
}

/// The gathering tasks (`yibao serve` with group commit) run on threads of their own with
/// connections of their own, to the same database: a nonce their writer committed is a replay
/// to the server's own storage and to a second gathering, and one the server committed is a
/// replay to them; a new set started after the first was dropped sees the same nonces.
#[tokio::test]
async fn the_gathering_tasks_write_to_the_same_database_through_connections_of_their_own() {
    on_each_test_db(|db| async move {
        use yibao_server::channel::gathering::Gathering;
        let gathering = Gathering::start(db.storage.clone(), 32).await.unwrap();
        let nonces = gathering.nonce_writer.clone();
        assert!(nonces
            .remember("bank", "gathered-000001", 1_000)
            .await
            .unwrap());
        assert_eq!(
            db.storage
                .remember_nonces("bank", &["gathered-000001".to_owned()], 1_001)
                .await
                .unwrap(),
            vec![false]
        );
        assert_eq!(
            db.storage
                .remember_nonces("bank", &["gathered-000002".to_owned()], 1_001)
                .await
                .unwrap(),
            vec![true]
        );
        assert!(!nonces
            .remember("bank", "gathered-000002", 1_002)
            .await
            .unwrap());
        drop((gathering, nonces));
        let again = Gathering::start(db.storage.clone(), 32).await.unwrap();
        assert!(!again
            .nonce_writer
            .remember("bank", "gathered-000001", 1_003)
            .await
            .unwrap());
        assert!(again
            .nonce_writer
            .remember("bank", "gathered-000003", 1_003)
            .await
            .unwrap());
    })
    .await;
}

/// Payment reports' reads gathered into rounds (`PayableReader`): 80 reads racing, each of one,
/// two or no payables of eight residents, get exactly the payables they named and what is stored
/// of those payables' holders, never another report's; so do reads that need several rounds.
#[tokio::test]
async fn racing_reads_through_the_payable_reader_each_get_their_own_payables() {
    on_each_test_db(|db| async move {
        use yibao_server::channel::reads::PayableReader;
        let w = Arc::new(world_at(&db, instant()).await);
        let mut payables = Vec::new();
        for id in &w.adults {
            payables.push(payable_of(&w, id).await.0);
        }
        let reader = PayableReader::spawn(db.storage.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..80usize {
            let named: Vec<String> = match i % 4 {
                0 => vec![payables[i % 8].clone()],
                1 => vec![payables[i % 8].clone(), payables[(i + 3) % 8].clone()],
                2 => vec!["PY-NO-SUCH-PAYABLE".to_owned()],
                _ => vec![payables[i % 8].clone(), "PY-NO-SUCH-PAYABLE".to_owned()],
            };
            let reader = reader.clone();
            tasks.spawn(async move {
                let found = reader.read(&named).await.unwrap();
                (named, found)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (named, found) = done.unwrap();
            let mut got: Vec<&str> = found
                .views
                .iter()
                .map(|v| v.payable.payable_id.as_str())
                .collect();
            got.sort_unstable();
            let mut want: Vec<&str> = named
                .iter()
                .map(String::as_str)
                .filter(|id| payables.iter().any(|p| p == id))
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "a read gets the payables it named");
            let mut holders: Vec<_> = found
                .views
                .iter()
                .map(|v| (v.payable.region, v.payable.id_number))
                .collect();
            holders.sort();
            let mut stored: Vec<_> = found.stored.keys().copied().collect();
            stored.sort();
            assert_eq!(stored, holders, "and what is stored of their holders only");
        }
        // 120 reads of 20 identifiers each (the most a report names), 2 400 in all: more than
        // a round reads (MAX_GATHERED_IDS), so reads wait for later rounds, and still each gets
        // its own.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..120usize {
            let mut named: Vec<String> = (0..19).map(|k| format!("PY-NONE-{i}-{k}")).collect();
            named.push(payables[i % 8].clone());
            let reader = reader.clone();
            tasks.spawn(async move { (i, reader.read(&named).await.unwrap()) });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, found) = done.unwrap();
            let got: Vec<&str> = found
                .views
                .iter()
                .map(|v| v.payable.payable_id.as_str())
                .collect();
            assert_eq!(got, vec![payables[i % 8].as_str()]);
            assert_eq!(found.stored.len(), 1);
        }
    })
    .await;
}

/// Channels' searches gathered into rounds (`SearchReader`): 300 searches racing (more than a
/// round takes), of eight residents and of ID numbers not on record, in the channel's regions,
/// in one region or in a region where they are not, for every year or one, each get exactly what
/// the same search alone gets (`search_person`): the payables in the same order, and what is
/// stored of the person where the 2025 rules are asked.
#[tokio::test]
async fn racing_searches_through_the_search_reader_each_get_what_they_would_alone() {
    on_each_test_db(|db| async move {
        use yibao_server::channel::reads::SearchReader;
        use yibao_storage::payable_search::PersonQuery;
        let w = Arc::new(world_at(&db, instant()).await);
        let reader = SearchReader::spawn(db.storage.clone());
        let today = instant().date_naive();
        let mut persons: Vec<yibao_domain::IdNumber> = w
            .adults
            .iter()
            .map(|id| yibao_domain::IdNumber::parse(id, today).unwrap().id_number)
            .collect();
        persons.push(
            yibao_domain::IdNumber::parse(&make_id("320602", "1970-01-01", 999), today)
                .unwrap()
                .id_number,
        );
        // Two of them with years on record, which searches must find as their own.
        let history: Vec<yibao_domain::cover_history_file::HistoryRow> = persons[..2]
            .iter()
            .enumerate()
            .map(|(k, id)| yibao_domain::cover_history_file::HistoryRow {
                id_number: *id,
                year: 2019 - k as u16,
                cover: yibao_domain::YearCover::Resident,
                bought_back: false,
            })
            .collect();
        db.storage
            .put_cover_history(
                yibao_domain::RegionCode::parse("320600").unwrap(),
                &history,
                1_600_000_000,
            )
            .await
            .unwrap();
        let region_lists: [Vec<String>; 3] = [
            vec!["320600".to_owned(), "110100".to_owned()],
            vec!["320600".to_owned()],
            vec!["110100".to_owned()],
        ];
        let queries: Vec<PersonQuery> = (0..300usize)
            .map(|i| PersonQuery {
                id_number: persons[i % persons.len()],
                regions: region_lists[i % 3].clone(),
                fee_year: match i % 4 {
                    0 | 1 => None,
                    2 => Some(2021),
                    _ => Some(2020),
                },
            })
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, q) in queries.iter().cloned().enumerate() {
            let reader = reader.clone();
            tasks.spawn(async move { (i, reader.search(q).await.unwrap()) });
        }
        let mut found_some = 0;
        while let Some(done) = tasks.join_next().await {
            let (i, gathered) = done.unwrap();
            let q = &queries[i];
            let alone = db
                .storage
                .search_person(&q.id_number, &q.regions, q.fee_year)
                .await
                .unwrap();
            assert_eq!(gathered.views, alone.views, "search {i}: {q:?}");
            assert_eq!(gathered.stored, alone.stored, "search {i}: {q:?}");
            found_some += usize::from(!gathered.views.is_empty());
        }
        assert!(found_some > 50, "the residents are found: {found_some}");
        let first = reader
            .search(PersonQuery {
                id_number: persons[0],
                regions: vec!["320600".to_owned()],
                fee_year: None,
            })
            .await
            .unwrap();
        let region = yibao_domain::RegionCode::parse("320600").unwrap();
        assert_eq!(
            first.stored[&(region, persons[0])].history.cover_in(2019),
            yibao_domain::YearCover::Resident
        );
    })
    .await;
}

#[tokio::test]
async fn sixteen_reporters_on_three_channels_race_for_one_payable_and_exactly_one_wins() {
    on_each_test_db(|db| async move {
        let w = Arc::new(world_at(&db, instant()).await);
        let (p0, amount) = payable_of(&w, &w.adults[3]).await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let w = w.clone();
            let p0 = p0.clone();
            tasks.push(tokio::spawn(async move {
                let client = match i % 3 {
                    0 => &w.bank,
                    1 => &w.wechat,
                    _ => &w.alipay,
                };
                let txn = format!("RACE-{i}");
                let report =
                    ReportPaymentRequest::for_payables(txn.clone(), vec![p0], amount, paid_at());
                (
                    txn,
                    client.channel_id().to_owned(),
                    client.report_payment(&report).await,
                )
            }));
        }
        let mut paid = 0;
        let mut refunded = 0;
        for t in tasks {
            let (txn, channel, result) = t.await.unwrap();
            let report = result.unwrap_or_else(|e| panic!("{channel} {txn}: {e:?}"));
            match report.result {
                PaymentResult::Paid => paid += 1,
                PaymentResult::RefundPending => {
                    let refund = report.refund.unwrap();
                    assert_eq!(
                        (refund.amount, refund.reason),
                        (amount, RefundReason::AlreadyPaid)
                    );
                    refunded += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            (paid, refunded),
            (1, 15),
            "exactly one applied payment; every other report is a refund owed"
        );
        // Invariant 2 for every transaction: amount = applied + refunded, and the winner holds the only receipt.
        let mut refunds = 0;
        for client in [&w.bank, &w.wechat, &w.alipay] {
            refunds += client
                .pending_refunds()
                .await
                .unwrap()
                .iter()
                .map(|r| r.amount)
                .sum::<i64>();
        }
        assert_eq!(refunds, 15 * amount);
        assert_invariants(&w).await;
    })
    .await;
}

/// A receiver for postings (到帐) that answers with the status it is told to.
async fn posting_receiver(
    status: Arc<std::sync::atomic::AtomicU16>,
    seen: Arc<std::sync::Mutex<Vec<Value>>>,
) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/post",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let status = status.clone();
            let seen = seen.clone();
            async move {
                assert!(headers.get("yibao-signature").is_some());
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::from_u16(status.load(std::sync::atomic::Ordering::SeqCst))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/post", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn applied_payments_are_posted_to_the_agency_at_least_once() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        w.bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "T-POST",
                vec![p0.clone()],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let status = Arc::new(std::sync::atomic::AtomicU16::new(500));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let url = posting_receiver(status.clone(), seen.clone()).await;
        let target = yibao_server::background::PostingTarget {
            url,
            secret: yibao_server::channel::secrets::ChannelSecret::new(
                b"posting-secret-0123456789".to_vec(),
            )
            .unwrap(),
        };
        let http = reqwest::Client::new();
        // The agency is down: nothing posted, the event waits with a backoff.
        let mut state = AppState::new(w.storage.clone(), Clock::fixed(instant()));
        assert_eq!(
            yibao_server::background::tick(&state, Some(&target), &http).await,
            0
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
        let id = yibao_domain::IdNumber::parse(&w.adults[0], NaiveDate::MAX)
            .unwrap()
            .id_number;
        assert_eq!(
            w.storage.payables_of_person(&id).await.unwrap()[0]
                .status
                .code(),
            "paid"
        );
        // Up again, after the backoff: posted, and the payable is 到帐.
        status.store(200, std::sync::atomic::Ordering::SeqCst);
        state.clock = Clock::fixed(instant() + chrono::Duration::seconds(11));
        assert_eq!(
            yibao_server::background::tick(&state, Some(&target), &http).await,
            1
        );
        let events = seen.lock().unwrap().clone();
        assert_eq!(events.len(), 2, "the same event again: at least once");
        assert_eq!(events[1]["payable_id"], p0);
        assert_eq!(events[1]["amount"], 43000);
        assert_eq!(
            w.storage.payables_of_person(&id).await.unwrap()[0]
                .status
                .code(),
            "posted"
        );
        assert_eq!(
            yibao_server::background::tick(&state, Some(&target), &http).await,
            0,
            "delivered once is enough"
        );
        // Nothing is left unposted.
        let later = instant().timestamp() + 3 * 86400;
        assert!(w
            .storage
            .unposted_events(later, None, 10)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_reversal_racing_its_payment_always_leaves_the_payable_unpaid() {
    on_each_test_db(|db| async move {
        let w = Arc::new(world_at(&db, instant()).await);
        for round in 0..6 {
            let (p, amount) = payable_of(&w, &w.adults[round]).await;
            let txn = format!("RR-{round}");
            let pay = {
                let w = w.clone();
                let txn = txn.clone();
                tokio::spawn(async move {
                    w.bank
                        .report_payment(&ReportPaymentRequest::for_payables(
                            txn,
                            vec![p],
                            amount,
                            paid_at(),
                        ))
                        .await
                })
            };
            let reverse = {
                let w = w.clone();
                tokio::spawn(async move { w.bank.reverse_payment(&txn, "超时冲正").await })
            };
            let paid = pay.await.unwrap();
            reverse.await.unwrap().unwrap();
            // Either order: the payment was reversed after it landed, or refused because the reversal came first.
            match paid {
                Ok(report) => assert_eq!(report.result, PaymentResult::Paid),
                Err(e) => assert_eq!(api_code(&e), (409, "REVERSED".into())),
            }
            let s = w
                .bank
                .search(&SearchRequest {
                    id_number: w.adults[round].clone(),
                    insured_number: None,
                    name: None,
                    region: None,
                    fee_year: None,
                    agent_code: None,
                })
                .await
                .unwrap();
            assert_eq!(s.payables[0].status.as_str(), "unpaid", "round {round}");
        }
        assert_invariants(&w).await;
    })
    .await;
}

/// An order and a family payment naming the same two payables in opposite orders, racing round
/// after round: one of them holds both, the other is refused or owed back, never a server error.
/// (How the deadlock this could meet is ruled out is the next test's.)
#[tokio::test]
async fn an_order_and_a_payment_naming_the_same_payables_in_opposite_orders_never_deadlock() {
    on_each_test_db(|db| async move {
        let w = Arc::new(world_at(&db, instant()).await);
        let (pa, amount_a) = payable_of(&w, &w.adults[6]).await;
        let (pb, amount_b) = payable_of(&w, &w.adults[7]).await;
        let (low, high) = if pa.as_bytes() < pb.as_bytes() {
            (pa, pb)
        } else {
            (pb, pa)
        };
        let amount = amount_a + amount_b;
        for round in 0..24 {
            let order = {
                let w = w.clone();
                let ids = vec![high.clone(), low.clone()];
                tokio::spawn(async move {
                    w.wechat
                        .open_order(&OpenOrderRequest {
                            channel_order_no: format!("DL-O-{round}"),
                            payable_ids: ids,
                            amount,
                            payer: Payer::default(),
                            family_account: None,
                            health_card: None,
                            agent_code: None,
                        })
                        .await
                })
            };
            let txn = format!("DL-P-{round}");
            let pay = {
                let w = w.clone();
                let ids = vec![low.clone(), high.clone()];
                let txn = txn.clone();
                tokio::spawn(async move {
                    w.bank
                        .report_payment(&ReportPaymentRequest::for_payables(
                            txn,
                            ids,
                            amount,
                            paid_at(),
                        ))
                        .await
                })
            };
            let order = order.await.unwrap();
            let paid = pay.await.unwrap();
            // Whoever came first holds both; the other is refused (the order) or owed back (the
            // payment). Never an error of the server's own.
            let paid = paid.unwrap_or_else(|e| panic!("round {round}: payment {e:?}"));
            match &order {
                Ok(opened) => {
                    assert_eq!(paid.result, PaymentResult::RefundPending, "round {round}");
                    w.wechat.cancel_order(&opened.order.order_no).await.unwrap();
                }
                Err(e) => {
                    let (status, code) = api_code(e);
                    assert!(status == 409 || status == 422, "round {round}: order {e:?}");
                    assert!(!code.is_empty(), "round {round}");
                    assert_eq!(paid.result, PaymentResult::Paid, "round {round}");
                }
            }
            w.bank.reverse_payment(&txn, "测试冲正").await.unwrap();
        }
        assert_invariants(&w).await;
    })
    .await;
}

/// An order takes its payables' row locks in payable order (bytewise), as a payment and a debit run
/// take theirs, so that two of them never wait for each other in a circle: PostgreSQL would break
/// the circle by failing one (a deadlock), a server error for the channel. Raw SQL, deliberately:
/// the test's own transaction holds the lower payable while the order waits for it, and a probe
/// finds the higher one still free. (SQLite has one writer at a time: no circle to keep out.)
#[tokio::test]
async fn an_order_locks_its_payables_in_payable_order_like_a_payment() {
    on_each_test_db(|db| async move {
        let Some(pool) = single_node_postgres(&db) else {
            return;
        };
        let w = Arc::new(world_at(&db, instant()).await);
        let (pa, amount_a) = payable_of(&w, &w.adults[4]).await;
        let (pb, amount_b) = payable_of(&w, &w.adults[5]).await;
        let (low, high) = if pa.as_bytes() < pb.as_bytes() {
            (pa, pb)
        } else {
            (pb, pa)
        };
        let lock = "SELECT payable_id FROM payables WHERE payable_id = $1 FOR UPDATE";
        let mut holder = pool.begin().await.unwrap();
        sqlx::query(lock)
            .bind(&low)
            .fetch_one(&mut *holder)
            .await
            .unwrap();
        // Storage itself, not the protocol's handler (which hands the ids over sorted already).
        let order = {
            let storage = w.storage.clone();
            let order = yibao_storage::collection::NewOrder {
                order_no: "LOCK-ORDER".into(),
                channel_id: "wechat".into(),
                channel_order_no: "LOCK-ORDER".into(),
                region: "320600".parse().unwrap(),
                amount_fen: yibao_domain::Fen::new(amount_a + amount_b).unwrap(),
                payer_name: None,
                payer_phone: None,
                payable_ids: vec![high.clone(), low.clone()],
                expires_at: instant().timestamp() + 900,
                fingerprint: "lock-order".into(),
                now: instant().timestamp(),
                card: None,
                agent_code: None,
            };
            tokio::spawn(async move { storage.open_order(&order).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut probe = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL lock_timeout = '200ms'")
            .execute(&mut *probe)
            .await
            .unwrap();
        let higher_free = sqlx::query(lock).bind(&high).fetch_one(&mut *probe).await;
        probe.rollback().await.unwrap();
        holder.rollback().await.unwrap();
        let opened = order.await.unwrap().unwrap();
        assert!(
            matches!(opened, yibao_storage::collection::OrderOutcome::Created(_)),
            "{opened:?}"
        );
        assert!(
            higher_free.is_ok(),
            "waiting for the lower payable, the order already held the higher one: {higher_free:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_reversal_that_keeps_the_money_owes_it_back_and_repeats_do_not_cancel_refunds() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        w.bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "K-1",
                vec![p0],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let body =
            serde_json::to_vec(&json!({"reason": "冲正失败", "funds_returned": false})).unwrap();
        let r = w
            .bank
            .send_raw(
                Method::POST,
                "/channel/v1/payments/K-1/reversal",
                body.clone(),
                RawOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        let status = w.bank.payment_status("K-1").await.unwrap();
        assert_eq!(status.status.as_str(), "refund_pending");
        let refund = status.refund.unwrap();
        assert_eq!(
            (refund.amount, refund.reason),
            (43000, RefundReason::ReversedEarlier)
        );
        // The channel retries its reversal: the refund stays owed.
        let r = w
            .bank
            .send_raw(
                Method::POST,
                "/channel/v1/payments/K-1/reversal",
                body,
                RawOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        w.bank.reverse_payment("K-1", "重复冲正").await.unwrap();
        assert_eq!(w.bank.pending_refunds().await.unwrap().len(), 1);
        // Reversal first with the money held, then the report, then the reversal again.
        let (p1, _) = payable_of(&w, &w.adults[1]).await;
        let held =
            serde_json::to_vec(&json!({"reason": "冲正失败", "funds_returned": false})).unwrap();
        w.bank
            .send_raw(
                Method::POST,
                "/channel/v1/payments/K-2/reversal",
                held,
                RawOptions::default(),
            )
            .await
            .unwrap();
        let report = w
            .bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "K-2",
                vec![p1],
                amount,
                paid_at(),
            ))
            .await
            .unwrap();
        assert_eq!(report.refund.unwrap().reason, RefundReason::ReversedEarlier);
        w.bank.reverse_payment("K-2", "再次冲正").await.unwrap();
        assert_eq!(
            w.bank.pending_refunds().await.unwrap().len(),
            2,
            "no refund cancelled by a repeated reversal"
        );
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn a_payable_held_by_another_live_order_is_not_taken_by_a_direct_payment() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let order = w
            .bank
            .open_order(&OpenOrderRequest { channel_order_no: "HOLD-1".into(), payable_ids: vec![p0.clone()], amount, payer: Payer::default(), family_account: None, health_card: None, agent_code: None })
            .await
            .unwrap();
        let intruder = w.wechat.report_payment(&ReportPaymentRequest::for_payables("W-HOLD", vec![p0], amount, paid_at())).await.unwrap();
        assert_eq!(intruder.result, PaymentResult::RefundPending);
        assert_eq!(intruder.refund.unwrap().reason, RefundReason::NotPayable);
        let holder = w.bank.report_payment(&ReportPaymentRequest::for_order("B-HOLD", order.order.order_no, amount, paid_at())).await.unwrap();
        assert_eq!(holder.result, PaymentResult::Paid, "the order that holds it gets it");
        // The spec's own statement example: a payment and its refund on the same transaction.
        let csv = "channel_txn_id,type,amount,occurred_at,refund_no\nB-HOLD,payment,43000,2020-11-02T10:15:00+08:00,\n";
        let summary = w.bank.upload_statement(NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(), csv).await.unwrap();
        assert_eq!((summary.matched.count(), summary.amount_mismatch.count()), (1, 0));
        let refund_no = w.wechat.pending_refunds().await.unwrap()[0].refund_no.clone();
        let csv = format!(
            "channel_txn_id,type,amount,occurred_at,refund_no\nW-HOLD,payment,43000,2020-11-02T10:15:00+08:00,\nW-HOLD,refund,43000,2020-11-03T09:00:00+08:00,{refund_no}\n"
        );
        let summary = w.wechat.upload_statement(NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(), &csv).await.unwrap();
        assert_eq!((summary.matched.count(), summary.amount_mismatch.count()), (2, 0), "{summary:?}");
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn group_commit_keeps_pay_once_idempotency_and_every_invariant() {
    on_each_test_db(|db| async move {
        let w = Arc::new(world_with(&db, instant(), true).await);
        let mut ids = Vec::new();
        for id in &w.adults {
            ids.push(payable_of(&w, id).await);
        }
        // 48 concurrent reports: each payable paid by three channels at once, some repeated.
        let mut tasks = Vec::new();
        for (n, (payable, amount)) in ids.iter().cloned().enumerate() {
            for c in 0..3 {
                for repeat in 0..2 {
                    let w = w.clone();
                    let payable = payable.clone();
                    tasks.push(tokio::spawn(async move {
                        let client = [&w.bank, &w.wechat, &w.alipay][c];
                        let txn = format!("GC-{n}-{c}");
                        let report = ReportPaymentRequest::for_payables(
                            txn.clone(),
                            vec![payable],
                            amount,
                            paid_at(),
                        );
                        let _ = repeat;
                        (txn, client.report_payment(&report).await.unwrap())
                    }));
                }
            }
        }
        let mut by_txn: std::collections::HashMap<String, Vec<_>> =
            std::collections::HashMap::new();
        for t in tasks {
            let (txn, report) = t.await.unwrap();
            by_txn.entry(txn).or_default().push(report);
        }
        let mut paid_per_payable = std::collections::HashMap::new();
        for (txn, reports) in &by_txn {
            assert_eq!(
                reports[0], reports[1],
                "{txn}: a repeated report gets the first answer"
            );
            let n = txn.split('-').nth(1).unwrap().to_owned();
            if reports[0].result == PaymentResult::Paid {
                *paid_per_payable.entry(n).or_insert(0) += 1;
            }
        }
        assert_eq!(paid_per_payable.len(), ids.len());
        assert!(
            paid_per_payable.values().all(|n| *n == 1),
            "{paid_per_payable:?}"
        );
        assert_invariants(&w).await;
    })
    .await;
}

#[tokio::test]
async fn the_public_endpoints_share_a_rate_limit_against_probing() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        // All at once, so they land within the limiter's one-second window even on a loaded machine.
        let mut tasks = Vec::new();
        for i in 0..(yibao_server::public::PUBLIC_RATE_PER_SECOND + 20) {
            let client = w.server.client.clone();
            let url = w.server.url(&format!(
                "/public/receipts/verify?code=32060020&number={i:010}&check_code=abcdef"
            ));
            tasks.push(tokio::spawn(async move {
                client.get(url).send().await.unwrap()
            }));
        }
        let mut limited = 0;
        for task in tasks {
            let r = task.await.unwrap();
            if r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["code"], "RATE_LIMITED");
                limited += 1;
            } else {
                assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
            }
        }
        assert!(limited >= 10, "{limited}");
    })
    .await;
}

/// Issue 21: a receipt whose masked name keeps a character outside the main font (𪚥, CJK Ext B,
/// outside the BMP) prints: the server keeps only the main font in memory and reads the fallback
/// fonts from disk for this receipt.
#[tokio::test]
async fn a_receipt_for_a_name_with_a_rare_character_prints_from_the_fallback_fonts() {
    if yibao_receipt_pdf::find_default_font().is_none()
        || yibao_receipt_pdf::find_default_fallback_fonts().is_empty()
    {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must have the receipt fonts (scripts/install-fonts)"
        );
        eprintln!("skipped: receipt fonts not installed (scripts/install-fonts)");
        return;
    }
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let id = make_id("320602", "1985-01-01", 300);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rare.csv");
        std::fs::write(
            &path,
            format!("姓名,身份证号码,参保地区\n𪚥明华,{id},320600\n"),
        )
        .unwrap();
        let today = NaiveDate::from_ymd_opt(2020, 11, 2).unwrap();
        let r = import_roster(
            w.storage.as_ref(),
            &path,
            "rare.csv",
            &ImportScope::unrestricted("test"),
            today,
            None,
            Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(r.summary.enrolled, 1, "{:?}", r.rejections);
        assess_region(
            w.storage.as_ref(),
            yibao_domain::RegionCode::parse("320600").unwrap(),
            yibao_domain::FeeYear::new(2021).unwrap(),
            "test",
            today,
            &|_| {},
        )
        .await
        .unwrap();
        let found = w
            .bank
            .search(&SearchRequest {
                id_number: id.clone(),
                insured_number: None,
                name: Some("𪚥明华".into()),
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap();
        let payable = &found.payables[0];
        let paid = w
            .bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "T-RARE",
                vec![payable.payable_id.clone()],
                payable.amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let r = &paid.receipts[0];
        let pdf = w
            .bank
            .receipt_pdf(&r.receipt_code, &r.receipt_number, &r.check_code)
            .await
            .unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            ["HanaMin", "BabelStone"].iter().any(|f| text.contains(f)),
            "a fallback font is embedded for 𪚥"
        );
    })
    .await;
}

/// The server keeps a region's working calendar between payment reports (issue 14), yet a
/// holiday set through its API counts in the very next refund's due date.
#[tokio::test]
async fn a_holiday_set_through_the_api_counts_in_the_next_refunds_due_date() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        yibao_tests::create_admin(w.storage.as_ref()).await;
        let (p0, amount) = payable_of(&w, &w.adults[2]).await;
        let report = |txn: &str| {
            ReportPaymentRequest::for_payables(txn, vec![p0.clone()], amount, paid_at())
        };
        let paid = w.bank.report_payment(&report("H-1")).await.unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        // Another channel's money for it, taken on Monday 2 November: owed back by Wednesday.
        let second = w.wechat.report_payment(&report("HW-1")).await.unwrap();
        assert_eq!(
            second.refund.unwrap().due,
            NaiveDate::from_ymd_opt(2020, 11, 4).unwrap()
        );
        // Tuesday becomes a holiday, through this server's API.
        let login: Value = w
            .server
            .client
            .post(w.server.url("/api/v1/auth/login"))
            .json(&json!({"username": yibao_tests::ADMIN.0, "password": yibao_tests::ADMIN.1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let put = w
            .server
            .client
            .put(w.server.url("/api/v1/regions/320600/calendars/2020"))
            .bearer_auth(login["token"].as_str().unwrap())
            .json(&json!({"holidays": ["2020-11-03"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 204);
        // The next refund owed is due on Thursday.
        let third = w.alipay.report_payment(&report("HA-1")).await.unwrap();
        assert_eq!(
            third.refund.unwrap().due,
            NaiveDate::from_ymd_opt(2020, 11, 5).unwrap()
        );
    })
    .await;
}

/// On PostgreSQL a payment writes its payable in place (a heap-only update), which PostgreSQL
/// does only when no index of the table names a column the update changes, in its key or in its
/// predicate (migration 0058): no index of payables names `status`, and its pages keep room for
/// the new version. Statistics, deliberately: PostgreSQL counts each update and whether it was
/// in place, and a session's counts reach `pg_stat_user_tables` within about 10 seconds.
#[tokio::test]
async fn a_payment_writes_its_payable_in_place_on_postgresql() {
    on_each_test_db(|db| async move {
        let Some(pool) = single_node_postgres(&db) else {
            return;
        };
        let naming_status: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'payables' \
             AND indexdef LIKE '%status%' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(naming_status, Vec::<String>::new());
        let options: Vec<String> = sqlx::query_scalar(
            "SELECT unnest(reloptions) FROM pg_class WHERE relname = 'payables'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(options, vec!["fillfactor=90".to_owned()]);

        let w = world_at(&db, instant()).await;
        let (p0, amount) = payable_of(&w, &w.adults[0]).await;
        let (p1, amount1) = payable_of(&w, &w.adults[1]).await;
        let counts = || async {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'payables'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        };
        let before = counts().await;
        for (txn, payable, amount) in [("T-HOT-0", p0, amount), ("T-HOT-1", p1, amount1)] {
            let report = ReportPaymentRequest::for_payables(txn, vec![payable], amount, paid_at());
            assert_eq!(
                w.bank.report_payment(&report).await.unwrap().result,
                PaymentResult::Paid
            );
        }
        let mut after = counts().await;
        for _ in 0..30 {
            if after.0 >= before.0 + 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            after = counts().await;
        }
        assert_eq!(after.0 - before.0, 2, "two payables paid: {before:?} {after:?}");
        assert_eq!(
            after.1 - before.1,
            2,
            "both written in place: {before:?} {after:?}"
        );
    })
    .await;
}

/// A payment report's nonce is recorded in the transaction that stores the payment (issue 14),
/// and every replay is refused as before: the same signed report again, eight copies of one at
/// once (one is stored, seven refused), a malformed report sent twice, and a report reusing a
/// search's nonce. What was refused wrote nothing, and another process on the same database
/// finds each nonce used.
async fn a_payment_reports_nonce_goes_with_its_payment(w: World, db: DbHandle) {
    let at = instant().timestamp();
    let send = |body: Vec<u8>, path: &'static str, nonce: &str| {
        w.bank.send_raw(
            Method::POST,
            path,
            body,
            RawOptions {
                nonce: Some(nonce.to_owned()),
                timestamp: Some(at),
                ..RawOptions::default()
            },
        )
    };
    let code = |r: &yibao_channel_client::client::RawResponse| {
        (r.status, r.error_body().map(|e| e.code).unwrap_or_default())
    };
    let report = |txn: &str, payable: &str, amount: i64| {
        serde_json::to_vec(&ReportPaymentRequest::for_payables(
            txn.to_owned(),
            vec![payable.to_owned()],
            amount,
            paid_at(),
        ))
        .unwrap()
    };
    let payments = "/channel/v1/payments";
    let (first, amount) = payable_of(&w, &w.adults[0]).await;
    let body = report("NONCE-1", &first, amount);
    let paid = send(body.clone(), payments, "PaymentNonce000001")
        .await
        .unwrap();
    assert_eq!(paid.status, 200, "{}", String::from_utf8_lossy(&paid.body));
    assert!(paid.signature_verified());
    let again = send(body, payments, "PaymentNonce000001").await.unwrap();
    assert_eq!(code(&again), (401, "REPLAYED".into()));
    assert!(again.signature_verified(), "a replay's refusal is signed");

    // Eight copies of one signed report at once: one is stored, seven are replays.
    let (second, amount) = payable_of(&w, &w.adults[1]).await;
    let body = report("NONCE-2", &second, amount);
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (bank, body) = (w.bank.clone(), body.clone());
        copies.spawn(async move {
            let options = RawOptions {
                nonce: Some("PaymentNonce000002".to_owned()),
                timestamp: Some(at),
                ..RawOptions::default()
            };
            bank.send_raw(Method::POST, payments, body, options).await
        });
    }
    let mut answers: Vec<(u16, String)> = Vec::new();
    while let Some(copy) = copies.join_next().await {
        answers.push(code(&copy.unwrap().unwrap()));
    }
    answers.sort();
    assert_eq!(answers[0], (200, String::new()), "{answers:?}");
    assert!(
        answers[1..]
            .iter()
            .all(|a| *a == (401, "REPLAYED".to_owned())),
        "{answers:?}"
    );
    let state = w
        .storage
        .payment_state("bank", "NONCE-2")
        .await
        .unwrap()
        .expect("the one stored");
    assert_eq!(state.receipts.len(), 1);

    // A malformed report (no amount to take) is refused for what it is, then as a replay.
    let (third, _) = payable_of(&w, &w.adults[2]).await;
    let malformed = report("NONCE-3", &third, 0);
    let refused = send(malformed.clone(), payments, "PaymentNonce000003")
        .await
        .unwrap();
    assert_eq!(code(&refused), (400, "INVALID_REQUEST".into()));
    let again = send(malformed, payments, "PaymentNonce000003")
        .await
        .unwrap();
    assert_eq!(code(&again), (401, "REPLAYED".into()));

    // A nonce a search used: the report is a replay and pays nothing.
    let search = serde_json::to_vec(&json!({"id_number": w.adults[2]})).unwrap();
    let found = send(search, "/channel/v1/payables/search", "PaymentNonce000004")
        .await
        .unwrap();
    assert_eq!(found.status, 200);
    let (third, amount) = payable_of(&w, &w.adults[2]).await;
    let reused = send(
        report("NONCE-4", &third, amount),
        payments,
        "PaymentNonce000004",
    )
    .await
    .unwrap();
    assert_eq!(code(&reused), (401, "REPLAYED".into()));
    assert_eq!(
        w.storage.payment_state("bank", "NONCE-4").await.unwrap(),
        None
    );
    assert_eq!(
        search_adult(&w, &w.adults[2]).await.payables[0].status,
        yibao_channel_client::types::PayableStatus::Unpaid,
        "a refused report pays nothing"
    );

    // A report refused over the channel's rate (one a second): its nonce was seen all the same.
    let held = report("NONCE-SLOW", &first, 100);
    let slow = |nonce: String| {
        w.slow.send_raw(
            Method::POST,
            payments,
            held.clone(),
            RawOptions {
                nonce: Some(nonce),
                timestamp: Some(at),
                ..RawOptions::default()
            },
        )
    };
    let mut limited = None;
    for i in 0..4 {
        let nonce = format!("SlowPaymentNonce{i:04}");
        if slow(nonce.clone()).await.unwrap().status == 429 {
            limited = Some(nonce);
        }
    }
    let limited = limited.expect("the slow channel refused one over its rate");
    let again = slow(limited).await.unwrap();
    assert_eq!(code(&again), (401, "REPLAYED".into()));

    // Each nonce was committed: another process on the same database finds it used.
    let url = yibao_storage::DatabaseUrl::parse(&db.url).unwrap();
    let elsewhere = yibao::storage::open_storage(&url).await.unwrap();
    let nonces: Vec<String> = (1..=4).map(|i| format!("PaymentNonce00000{i}")).collect();
    assert_eq!(
        elsewhere
            .remember_nonces("bank", &nonces, at)
            .await
            .unwrap(),
        [false, false, false, false]
    );
    assert_invariants(&w).await;
}

#[tokio::test]
async fn a_payment_reports_nonce_goes_with_its_payment_and_replays_are_refused() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        a_payment_reports_nonce_goes_with_its_payment(w, db).await;
    })
    .await;
}

#[tokio::test]
async fn through_group_commit_a_payment_reports_nonce_goes_with_its_payment() {
    on_each_test_db(|db| async move {
        let w = world_with(&db, instant(), true).await;
        a_payment_reports_nonce_goes_with_its_payment(w, db).await;
    })
    .await;
}

/// A payment report answered with a server error leaves no nonce behind: its channel sends the
/// same signed request again, and it is taken, not refused as its own replay. The report fails on
/// its own (a trigger refuses its payment's row), so that the batch goes one by one and the
/// transaction, with the nonces it recorded, commits for the others.
async fn a_report_that_failed_may_be_sent_again_as_it_was(w: World, db: DbHandle) {
    if yibao_tests::on_citus() {
        // A trigger on a distributed table is not allowed there; the storage code is the same.
        return;
    }
    // A trigger that refuses the payment of transaction FAILS-ONCE, and what removes it.
    let (create, remove): (&[&str], &str) = if db.sqlite.is_some() {
        (
            &["CREATE TRIGGER fail_once BEFORE INSERT ON payments                WHEN NEW.channel_txn_id = 'FAILS-ONCE' BEGIN SELECT RAISE(ABORT, 'injected'); END"],
            "DROP TRIGGER fail_once",
        )
    } else {
        (
            &[
                "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN                  IF NEW.channel_txn_id = 'FAILS-ONCE' THEN RAISE EXCEPTION 'injected'; END IF;                  RETURN NEW; END $$",
                "CREATE TRIGGER fail_once BEFORE INSERT ON payments                  FOR EACH ROW EXECUTE FUNCTION fail_once()",
            ],
            "DROP FUNCTION fail_once() CASCADE",
        )
    };
    let run = |sql: &str| {
        let (sqlite, postgres, sql) = (db.sqlite.clone(), db.postgres.clone(), sql.to_owned());
        async move {
            match (sqlite, postgres) {
                (Some(lite), _) => {
                    sqlx::query(&sql).execute(lite.pool()).await.unwrap();
                }
                (None, Some(pg)) => {
                    sqlx::query(&sql).execute(pg.pool()).await.unwrap();
                }
                (None, None) => unreachable!("a test database is SQLite or PostgreSQL"),
            }
        }
    };
    for sql in create {
        run(sql).await;
    }
    let at = instant().timestamp();
    let (payable, amount) = payable_of(&w, &w.adults[2]).await;
    let body = serde_json::to_vec(&ReportPaymentRequest::for_payables(
        "FAILS-ONCE".to_owned(),
        vec![payable.clone()],
        amount,
        paid_at(),
    ))
    .unwrap();
    let send = || {
        w.bank.send_raw(
            Method::POST,
            "/channel/v1/payments",
            body.clone(),
            RawOptions {
                nonce: Some("FailsOnceNonce0001".to_owned()),
                timestamp: Some(at),
                ..RawOptions::default()
            },
        )
    };
    let failed = send().await.unwrap();
    assert!(
        failed.status >= 500,
        "{} {}",
        failed.status,
        String::from_utf8_lossy(&failed.body)
    );
    assert_eq!(
        w.storage.payment_state("bank", "FAILS-ONCE").await.unwrap(),
        None
    );
    // Mended, the same request again: taken and paid.
    run(remove).await;
    let again = send().await.unwrap();
    assert_eq!(
        again.status,
        200,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    let answer: Value = serde_json::from_slice(&again.body).unwrap();
    assert_eq!(answer["result"], "paid", "{answer}");
    // And now it is a replay.
    let third = send().await.unwrap();
    assert_eq!(third.status, 401);
}

#[tokio::test]
async fn a_report_answered_with_a_server_error_may_be_sent_again_as_it_was() {
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        a_report_that_failed_may_be_sent_again_as_it_was(w, db).await;
    })
    .await;
}

#[tokio::test]
async fn through_group_commit_a_report_that_failed_may_be_sent_again_as_it_was() {
    on_each_test_db(|db| async move {
        let w = world_with(&db, instant(), true).await;
        a_report_that_failed_may_be_sent_again_as_it_was(w, db).await;
    })
    .await;
}

/// Storage records the nonces that payment reports carry in the transaction that stores them:
/// a nonce used before, or twice in one batch, answers `NonceUsed` and writes nothing; the others
/// are stored with their nonces, in a batch written set-based, one reported one by one (a
/// transaction named twice), and a report alone.
#[tokio::test]
async fn payment_reports_record_their_nonces_in_their_own_transaction() {
    use yibao_storage::collection::{NewPayment, PaymentReportOutcome};
    on_each_test_db(|db| async move {
        let w = world_at(&db, instant()).await;
        let today = NaiveDate::from_ymd_opt(2020, 11, 2).unwrap();
        // Money naming no payable: held, and owed back whole.
        let held = |txn: &str, channel: &str, nonce: Option<&str>| NewPayment {
            nonce: nonce.map(str::to_owned),
            region: "460100".parse().unwrap(),
            payment_no: format!("PMnonce{}", uuid::Uuid::new_v4().simple()),
            refund_no: format!("RFnonce{}", uuid::Uuid::new_v4().simple()),
            channel_id: channel.into(),
            channel_txn_id: txn.into(),
            order_no: None,
            lock_holder: None,
            refund_all: None,
            payable_ids: Vec::new(),
            amount_fen: yibao_domain::Fen::new(100).unwrap(),
            paid_at: "2020-11-02T10:15:00+08:00".into(),
            paid_on: today,
            fingerprint: "f".into(),
            refund_due: yibao_domain::DueDate {
                date: today,
                years_without_calendar: Vec::new(),
            },
            issued_on: today,
            now: 0,
            check_codes: Vec::new(),
            event_ids: Vec::new(),
            cover: Vec::new(),
        };
        let stored = |o: &PaymentReportOutcome| matches!(o, PaymentReportOutcome::Stored(_));
        assert!(w
            .storage
            .remember_nonce("hainan", "n-before", 0)
            .await
            .unwrap());
        let batch = [
            held("T-1", "hainan", Some("n-1")),
            held("T-2", "hainan", Some("n-1")),
            held("T-3", "hainan", Some("n-before")),
            held("T-4", "hainan", None),
            held("T-5", "bank", Some("n-1")),
        ];
        let outcomes: Vec<PaymentReportOutcome> = w
            .storage
            .report_payments(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(stored(&outcomes[0]) && stored(&outcomes[3]) && stored(&outcomes[4]));
        assert_eq!(outcomes[1], PaymentReportOutcome::NonceUsed);
        assert_eq!(outcomes[2], PaymentReportOutcome::NonceUsed);
        for txn in ["T-2", "T-3"] {
            assert_eq!(w.storage.payment_state("hainan", txn).await.unwrap(), None);
        }
        assert_eq!(
            w.storage
                .remember_nonces("hainan", &["n-1".to_owned()], 1)
                .await
                .unwrap(),
            [false]
        );
        // One transaction named twice goes one by one; both nonces are recorded all the same.
        let outcomes = w
            .storage
            .report_payments(&[
                held("T-6", "hainan", Some("n-6")),
                held("T-6", "hainan", Some("n-7")),
            ])
            .await
            .unwrap();
        assert!(stored(outcomes[0].as_ref().unwrap()));
        assert!(matches!(
            outcomes[1],
            Ok(PaymentReportOutcome::Existing { .. })
        ));
        // A report alone, and a batch of nothing but replays.
        assert_eq!(
            w.storage
                .report_payment(&held("T-8", "hainan", Some("n-7")))
                .await
                .unwrap(),
            PaymentReportOutcome::NonceUsed
        );
        assert!(stored(
            &w.storage
                .report_payment(&held("T-9", "hainan", Some("n-9")))
                .await
                .unwrap()
        ));
        let outcomes = w
            .storage
            .report_payments(&[
                held("T-10", "hainan", Some("n-6")),
                held("T-11", "hainan", Some("n-9")),
            ])
            .await
            .unwrap();
        assert!(outcomes
            .iter()
            .all(|o| *o.as_ref().unwrap() == PaymentReportOutcome::NonceUsed));
        for txn in ["T-8", "T-10", "T-11"] {
            assert_eq!(w.storage.payment_state("hainan", txn).await.unwrap(), None);
        }
        assert_eq!(
            w.storage
                .remember_nonces("hainan", &["n-6".to_owned(), "n-9".to_owned()], 1)
                .await
                .unwrap(),
            [false, false]
        );
    })
    .await;
}
