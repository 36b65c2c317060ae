//! The citizen site (居民自助, issue 11) as a resident's browser meets it, on both backends: the
//! look-up without signing in (what is owed, where to pay, how it was paid), an unknown person
//! and a wrong name answered alike, errors beside their fields, the per-address limit, and the
//! receipt verification page the receipt's QR code leads to.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use reqwest::StatusCode;
use yibao_channel_client::types::{ReportPaymentRequest, SearchRequest};
use yibao_channel_client::ChannelClient;
use yibao_domain::{FeeYear, RegionCode};
use yibao_server::{Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::{on_each_backend, TestServer};

/// 2026-11-02 10:00 in Beijing: inside the demo's 2027 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap()
}

fn paid_at() -> DateTime<FixedOffset> {
    instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

struct World {
    server: TestServer,
    wechat: ChannelClient,
    /// (ID number, name) of an unpaid demo resident of 南通市 (320600).
    resident: (String, String),
}

async fn world(storage: Arc<dyn Storage>) -> World {
    let clock = Clock::fixed(instant());
    yibao::demo::load(storage.as_ref()).await.unwrap();
    yibao::demo::load_people(storage.as_ref(), clock.today())
        .await
        .unwrap();
    let rows = storage
        .standing(
            RegionCode::parse("320600").unwrap(),
            FeeYear::new(2027).unwrap(),
            None,
            50,
        )
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.standing == "unpaid")
        .expect("an unpaid demo resident");
    let resident = (row.id_number.as_str().to_owned(), row.name.clone());
    // As `yibao serve` sets it up: the receipt fonts, for the payer's PDF.
    let mut state = yibao_server::AppState::new(storage, clock);
    state.receipt_font = yibao_receipt_pdf::find_default_font().map(|p| {
        let (main, _) = yibao_receipt_pdf::ReceiptFonts::load(&p, &[]).unwrap();
        Arc::new(main)
    });
    state.receipt_fallback_fonts = Arc::new(yibao_receipt_pdf::find_default_fallback_fonts());
    let server = TestServer::start_with_state(state, ServerSettings::default()).await;
    let wechat = ChannelClient::builder(
        &server.base_url,
        "wechat".to_owned(),
        b"demo-secret-wechat-pay-000".to_vec(),
    )
    .clock_offset_secs(instant().timestamp() - Utc::now().timestamp())
    .build()
    .unwrap();
    World {
        server,
        wechat,
        resident,
    }
}

async fn look_up(w: &World, id: &str, name: &str) -> (StatusCode, String) {
    look_up_at(&w.server, id, name).await
}

/// The look-up form posted to `server`: the answer's status and page.
async fn look_up_at(server: &TestServer, id: &str, name: &str) -> (StatusCode, String) {
    let response = server
        .client
        .post(server.url("/lookup"))
        .form(&[("id_number", id), ("name", name)])
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The page's answer: the `#result` section, without the form (which shows what was typed).
fn result_of(page: &str) -> &str {
    let start = page.find("id=\"result\"").expect("a result section");
    let end = page[start..].find("</section>").expect("its end") + start;
    &page[start..end]
}

/// Pays the resident's 2027 payable through the demo's WeChat channel; its receipt.
async fn pay(w: &World, txn: &str) -> yibao_channel_client::types::ReceiptRef {
    let found = w
        .wechat
        .search(&SearchRequest {
            id_number: w.resident.0.clone(),
            insured_number: None,
            name: Some(w.resident.1.clone()),
            region: None,
            fee_year: Some(2027),
            agent_code: None,
        })
        .await
        .unwrap();
    let payable = &found.payables[0];
    let report = w
        .wechat
        .report_payment(&ReportPaymentRequest::for_payables(
            txn,
            vec![payable.payable_id.clone()],
            payable.amount,
            paid_at(),
        ))
        .await
        .unwrap();
    report.receipts[0].clone()
}

#[tokio::test]
async fn a_resident_sees_what_is_owed_and_where_to_pay_then_when_and_how_it_was_paid() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let home = w.server.client.get(w.server.url("/")).send().await.unwrap();
        assert_eq!(home.status(), StatusCode::OK);
        let csp = home.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(home.headers()["cache-control"], "no-store");
        let home = home.text().await.unwrap();
        assert!(home.contains("action=\"/lookup\""), "{home}");
        assert!(!home.contains("<script"), "no script on the citizen site");

        let (id, name) = w.resident.clone();
        let (status, page) = look_up(&w, &id, &name).await;
        assert_eq!(status, StatusCode::OK);
        let answer = result_of(&page);
        for text in [
            "2027年度",
            "未缴费",
            "应缴金额",
            "基本医疗保险",
            "缴费期",
            "正在缴费",
            "微信",
            "支付宝",
            "银行柜面",
        ] {
            assert!(answer.contains(text), "{text} missing: {answer}");
        }
        // Masked, and the form is emptied once the answer is shown.
        assert!(!page.contains(&id), "the full ID number is not on the page");
        assert!(
            !page.contains(&format!(">{name}<")),
            "the full name is not on the page"
        );
        assert!(
            answer.contains(&id[..6]) && answer.contains('*'),
            "{answer}"
        );

        pay(&w, "CITIZEN-TXN-1").await;
        let (_, page) = look_up(&w, &id, &name).await;
        let answer = result_of(&page);
        for text in [
            "已缴费",
            "已缴金额",
            "缴费日期",
            "2026年11月2日",
            "缴费方式",
            "微信",
        ] {
            assert!(answer.contains(text), "{text} missing: {answer}");
        }
        assert!(
            !answer.contains("可以通过"),
            "no places to pay for a paid year: {answer}"
        );
    })
    .await;
}

#[tokio::test]
async fn after_the_window_a_resident_may_still_pay_online_in_its_extension() {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        let (id, name) = w.resident.clone();
        // 南通市's 2027 window closes on 2026-12-31; with no late payment, 2027-01-05 is too
        // late, unless the window is extended (延长期) to 2027-01-31.
        let after_window = Clock::fixed(Utc.with_ymd_and_hms(2027, 1, 5, 2, 0, 0).unwrap());
        let look_up_then = |storage: Arc<dyn Storage>| {
            let after_window = after_window.clone();
            let (id, name) = (id.clone(), name.clone());
            async move {
                let server = TestServer::start_with_routes(
                    yibao_server::AppState::new(storage, after_window),
                    ServerSettings::default(),
                    yibao_citizen::router_with(yibao_citizen::Site::demo()),
                )
                .await;
                let (_, page) = look_up_at(&server, &id, &name).await;
                result_of(&page).to_owned()
            }
        };
        yibao_tests::change_fee_policy(storage.as_ref(), "320600", 2027, |policy| {
            policy.late_payment_allowed = false;
            policy.cover_rules.late = Default::default();
        })
        .await;
        let closed = look_up_then(storage.clone()).await;
        assert!(closed.contains("已结束"), "{closed}");
        assert!(!closed.contains("在线缴费"), "{closed}");

        yibao_tests::change_fee_policy(storage.as_ref(), "320600", 2027, |policy| {
            policy.cover_rules.waiting.extension_until =
                chrono::NaiveDate::from_ymd_opt(2027, 1, 31);
        })
        .await;
        let extended = look_up_then(storage.clone()).await;
        for text in ["延长至 2027年1月31日", "（延长期内）", "在线缴费"] {
            assert!(extended.contains(text), "{text} missing: {extended}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_unknown_person_and_a_wrong_name_get_the_same_answer() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (id, name) = w.resident.clone();
        let (wrong_status, wrong_name) = look_up(&w, &id, "王某某").await;
        // A valid ID number nobody in the demo has.
        let (unknown_status, unknown) = look_up(&w, "11010519491231002X", &name).await;
        assert_eq!(wrong_status, StatusCode::OK);
        assert_eq!(unknown_status, wrong_status);
        assert_eq!(result_of(&wrong_name), result_of(&unknown));
        assert!(result_of(&unknown).contains("未查到与该身份证号码和姓名相符的缴费信息"));
        // Spaces a phone keyboard adds around the number do not matter.
        let (_, found) = look_up(&w, &format!(" {id} "), &name).await;
        assert!(result_of(&found).contains("未缴费"));
    })
    .await;
}

#[tokio::test]
async fn a_form_error_is_shown_beside_its_field_in_chinese() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (status, page) = look_up(&w, "", "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.contains("id=\"id_number-error\">请输入身份证号码"),
            "{page}"
        );
        assert!(page.contains("id=\"name-error\">请输入姓名"), "{page}");

        let (status, page) = look_up(&w, "32060219800101123", "张三").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let error = page
            .split("id=\"id_number-error\">")
            .nth(1)
            .expect("the ID number's error");
        assert!(error.starts_with("输入了17位号码"), "{error}");
        assert!(
            page.contains("value=\"32060219800101123\""),
            "what was typed stays to correct"
        );
        assert!(!page.contains("name-error"));
    })
    .await;
}

#[tokio::test]
async fn an_address_gets_twenty_lookups_a_minute() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (id, name) = w.resident.clone();
        for _ in 0..yibao_citizen::limiter::LOOKUPS_PER_ADDRESS_PER_MINUTE {
            assert_eq!(look_up(&w, &id, &name).await.0, StatusCode::OK);
        }
        let (status, page) = look_up(&w, &id, &name).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(page.contains("查询过于频繁，请1分钟后再试"), "{page}");
        assert!(!page.contains("\"code\""), "a page, not a JSON body");
        // Receipt checks count against the same minute.
        let verify = w
            .server
            .client
            .get(
                w.server
                    .url("/receipts/verify?code=32060027&number=0000000001&check_code=abcdef"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(verify.status(), StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}

#[tokio::test]
async fn the_receipt_qr_code_leads_a_browser_to_a_page_that_says_valid_then_voided() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let receipt = pay(&w, "CITIZEN-TXN-2").await;
        let query = format!(
            "code={}&number={}&check_code={}",
            receipt.receipt_code, receipt.receipt_number, receipt.check_code
        );
        let no_redirect = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // What a phone's browser sends after scanning the QR code.
        let scanned = no_redirect
            .get(w.server.url(&format!("/public/receipts/verify?{query}")))
            .header(
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(scanned.status(), StatusCode::SEE_OTHER);
        let location = scanned.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("/receipts/verify?{query}"));
        // A machine still gets JSON at the printed URL.
        let json: serde_json::Value = w
            .server
            .client
            .get(w.server.url(&format!("/public/receipts/verify?{query}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(json["status"], "valid");

        let page = w
            .server
            .client
            .get(w.server.url(&location))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        let answer = result_of(&page);
        for text in [
            "票据有效",
            receipt.receipt_number.as_str(),
            "交款人",
            "2027年度",
            "开票日期",
        ] {
            assert!(answer.contains(text), "{text} missing: {answer}");
        }
        assert!(!page.contains(&w.resident.1), "the payer's name is masked");
        assert!(page.contains("下载交款人联"), "{page}");

        // The payer's own copy, with the name in full, only for the payer's ID number and name.
        let copy = |id: String, name: String| {
            let client = w.server.client.clone();
            let url = w.server.url("/receipts/pdf");
            let receipt = receipt.clone();
            async move {
                client
                    .post(url)
                    .form(&[
                        ("code", receipt.receipt_code),
                        ("number", receipt.receipt_number),
                        ("check_code", receipt.check_code),
                        ("id_number", id),
                        ("name", name),
                    ])
                    .send()
                    .await
                    .unwrap()
            }
        };
        let refused = copy(w.resident.0.clone(), "王某某".into()).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        let refused = refused.text().await.unwrap();
        assert!(refused.contains("与票据上的交款人不一致"), "{refused}");
        let pdf = copy(w.resident.0.clone(), w.resident.1.clone()).await;
        if yibao_receipt_pdf::find_default_font().is_some() {
            assert_eq!(pdf.status(), StatusCode::OK);
            assert_eq!(pdf.headers()["content-type"], "application/pdf");
            let bytes = pdf.bytes().await.unwrap();
            if let Some(text) = yibao_tests::pdf::text(&bytes) {
                assert!(text.contains(&w.resident.1), "the full name: {text}");
            }
        } else {
            assert_eq!(pdf.status(), StatusCode::SERVICE_UNAVAILABLE);
        }

        let wrong = w
            .server
            .client
            .get(w.server.url(&format!(
                "/receipts/verify?code={}&number={}&check_code=zzzzzz",
                receipt.receipt_code, receipt.receipt_number
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(result_of(&wrong).contains("未找到该票据"));

        let bad = w
            .server
            .client
            .get(
                w.server
                    .url("/receipts/verify?code=3206&number=1&check_code="),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bad = bad.text().await.unwrap();
        assert!(bad.contains("id=\"code-error\">票据代码是8位数字"), "{bad}");
        assert!(
            bad.contains("id=\"number-error\">票据号码是10位数字"),
            "{bad}"
        );
        assert!(
            bad.contains("id=\"check_code-error\">请输入票据上的校验码"),
            "{bad}"
        );

        w.wechat
            .reverse_payment("CITIZEN-TXN-2", "顾客撤销")
            .await
            .unwrap();
        let voided = w
            .server
            .client
            .get(w.server.url(&location))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(result_of(&voided).contains("票据已作废"), "{voided}");
    })
    .await;
}

/// The value of the hidden field `name` in the first form that has it.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the field") + marker.len();
    let end = page[start..].find('"').expect("its end") + start;
    page[start..end].to_owned()
}

/// `key=value&…` of a URL's query, decoded.
fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

/// A server like [`world`]'s whose simulated cashier the test holds (to sign notifications).
async fn world_with_cashier(storage: Arc<dyn Storage>) -> (World, yibao_citizen::pay::Provider) {
    let w = world(storage.clone()).await;
    let provider = yibao_citizen::pay::Provider::default();
    let console = yibao_console::router(yibao_console::CookiePolicy::default());
    let server = TestServer::start_with_routes(
        yibao_server::AppState::new(storage, Clock::fixed(instant())),
        ServerSettings::default(),
        console.merge(yibao_citizen::router_with(yibao_citizen::Site {
            provider: provider.clone(),
            ..yibao_citizen::Site::demo()
        })),
    )
    .await;
    (
        World {
            server,
            wechat: w.wechat,
            resident: w.resident,
        },
        provider,
    )
}

#[tokio::test]
async fn a_resident_pays_online_through_the_simulated_cashier_and_notifications_never_lose_money() {
    on_each_backend(|storage| async move {
        let (w, provider) = world_with_cashier(storage.clone()).await;
        let (id, name) = w.resident.clone();
        let (_, page) = look_up(&w, &id, &name).await;
        assert!(page.contains("在线缴费"), "{page}");
        let payable_id = hidden(&page, "payable_id");
        let amount = hidden(&page, "amount");
        let no_redirect = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // A form posted from another site opens nothing.
        let forged = no_redirect
            .post(w.server.url("/pay"))
            .header("sec-fetch-site", "cross-site")
            .form(&[("payable_id", payable_id.as_str()), ("amount", amount.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);

        let opened = no_redirect
            .post(w.server.url("/pay"))
            .form(&[("payable_id", payable_id.as_str()), ("amount", amount.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(opened.status(), StatusCode::SEE_OTHER);
        let cashier = opened.headers()["location"].to_str().unwrap().to_owned();
        assert!(cashier.starts_with("/cashier?"), "{cashier}");
        let page = no_redirect.get(w.server.url(&cashier)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(page.contains("模拟收银台") && page.contains("确认支付"), "{page}");
        // The amount in the link is signed: changed, the cashier refuses it.
        let tampered = cashier.replace(&format!("amount={amount}"), "amount=1");
        let refused = no_redirect.get(w.server.url(&tampered)).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);

        let fields = query_of(&cashier);
        let paid = no_redirect
            .post(w.server.url("/cashier"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let result = paid.headers()["location"].to_str().unwrap().to_owned();
        let page = no_redirect
            .get(w.server.url(&result))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("缴费成功"), "{page}");
        assert!(page.contains("/receipts/verify?code="), "{page}");
        let (_, page) = look_up(&w, &id, &name).await;
        let answer = result_of(&page);
        assert!(answer.contains("已缴费") && answer.contains("政务服务平台"), "{answer}");
        assert!(!answer.contains("在线缴费"));

        // The provider sends the same notification again: the same answer, nothing new.
        let order_no = fields.iter().find(|(k, _)| k == "order_no").unwrap().1.clone();
        let txn_id = query_of(&result)
            .into_iter()
            .find(|(k, _)| k == "txn_id")
            .unwrap()
            .1;
        let receipts_before = storage
            .receipts_of_person(&id, &["320600".to_owned()], None)
            .await
            .unwrap()
            .len();
        let notify = |n: yibao_citizen::pay::Notification| {
            let body = provider.0.signed_notification(&n);
            let client = w.server.client.clone();
            let url = w.server.url("/pay/notify/simulated");
            async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.text().await.unwrap())
            }
        };
        let state = storage
            .payment_state(yibao_citizen::pay::SITE_CHANNEL_ID, &txn_id)
            .await
            .unwrap()
            .unwrap();
        let again = yibao_citizen::pay::Notification {
            order_no: order_no.clone(),
            txn_id: txn_id.clone(),
            amount: amount.parse().unwrap(),
            paid_at: paid_at().to_rfc3339(),
        };
        // The cashier's clock is the server's (fixed): its notification said `paid_at()`.
        for _ in 0..2 {
            let (status, text) = notify(again.clone()).await;
            assert_eq!((status, text.as_str()), (StatusCode::OK, "SUCCESS"));
        }
        let replayed = storage
            .payment_state(yibao_citizen::pay::SITE_CHANNEL_ID, &txn_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(replayed.status.code(), "paid");
        assert_eq!(replayed.receipts, state.receipts);
        // A second charge for the same order (the provider took the money twice): recorded and
        // owed back, never applied twice.
        let second = yibao_citizen::pay::Notification {
            order_no: order_no.clone(),
            txn_id: "SIM-SECOND-CHARGE".into(),
            amount: amount.parse().unwrap(),
            paid_at: paid_at().to_rfc3339(),
        };
        for _ in 0..2 {
            let (status, text) = notify(second.clone()).await;
            assert_eq!((status, text.as_str()), (StatusCode::OK, "SUCCESS"));
        }
        let owed = storage
            .payment_state(yibao_citizen::pay::SITE_CHANNEL_ID, "SIM-SECOND-CHARGE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(owed.status.code(), "refund_pending");
        assert_eq!(owed.refund.as_ref().unwrap().amount_fen.as_fen(), second.amount);
        assert_eq!(owed.refund.as_ref().unwrap().status.code(), "owed");
        // The site hands it back to the provider (`yibao serve` does so every minute).
        let app = yibao_server::AppState::new(storage.clone(), Clock::fixed(instant()));
        let handed = yibao_citizen::pay::hand_over_refunds(&app, provider.0.as_ref())
            .await
            .unwrap();
        assert_eq!(handed, 1);
        let refunded = storage
            .payment_state(yibao_citizen::pay::SITE_CHANNEL_ID, "SIM-SECOND-CHARGE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refunded.refund.as_ref().unwrap().status.code(), "succeeded");
        assert_eq!(
            yibao_citizen::pay::hand_over_refunds(&app, provider.0.as_ref())
                .await
                .unwrap(),
            0,
            "nothing is handed over twice"
        );
        assert_eq!(
            storage
                .receipts_of_person(&id, &["320600".to_owned()], None)
                .await
                .unwrap()
                .len(),
            receipts_before,
            "no second receipt"
        );
        assert_eq!(state.receipts.len(), 1);

        // A notification not signed by the provider is refused and records nothing.
        let forged = w
            .server
            .client
            .post(w.server.url("/pay/notify/simulated"))
            .body(format!(
                "order_no={order_no}&txn_id=FORGED&amount={amount}&paid_at=2026-11-02T10%3A00%3A00%2B08%3A00&signature=00"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
        assert!(storage
            .payment_state(yibao_citizen::pay::SITE_CHANNEL_ID, "FORGED")
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn what_the_framework_refuses_is_a_chinese_page_too() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        // A query that does not parse (the amount is not a number), a wrong method, a body that
        // is not a form: each a page in Chinese, never the framework's English.
        let cases = [
            w.server.client.get(
                w.server
                    .url("/cashier?order_no=x&amount=abc&expires_at=1&signature=00"),
            ),
            w.server.client.delete(w.server.url("/lookup")),
            w.server
                .client
                .post(w.server.url("/lookup"))
                .header("content-type", "application/json")
                .body("{}"),
        ];
        for request in cases {
            let response = request.send().await.unwrap();
            assert!(response.status().is_client_error(), "{}", response.status());
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
            let page = response.text().await.unwrap();
            assert!(
                page.contains("<!DOCTYPE html>") && page.contains("返回缴费查询"),
                "{page}"
            );
            assert!(
                !page.contains("Failed")
                    && !page.contains("deserialize")
                    && !page.contains("Expected"),
                "{page}"
            );
        }
    })
    .await;
}

/// A browser that keeps the site's session cookie and does not follow redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base_url.clone(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            if let Some(rest) = value.strip_prefix("yibao_resident=") {
                let token = rest.split(';').next().unwrap();
                self.cookie = (!token.is_empty()).then(|| format!("yibao_resident={token}"));
            }
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post<T: serde::Serialize + ?Sized>(
        &mut self,
        path: &str,
        form: &T,
    ) -> (StatusCode, String, Option<String>) {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Sends with the session cookie, keeps a new one: status, body and where it redirects.
    async fn send(
        &mut self,
        mut request: reqwest::RequestBuilder,
    ) -> (StatusCode, String, Option<String>) {
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        let response = request.send().await.unwrap();
        self.keep_cookie(&response);
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (response.status(), response.text().await.unwrap(), location)
    }

    /// The newest code in the demo mailbox, after a delivery round.
    async fn code_from_mailbox(&mut self) -> String {
        let (status, _, _) = self.post("/demo/mailbox/deliver", &[("", "")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (_, page, _) = self.get("/demo/mailbox").await;
        let at = page.find("验证码是").expect("a code in the mailbox") + "验证码是".len();
        page[at..at + 6].to_owned()
    }
}

/// Unpaid demo residents of 南通市 with a phone on record: (ID number, name).
async fn unpaid_with_phone(storage: &dyn Storage, n: usize) -> Vec<(String, String)> {
    storage
        .standing(
            RegionCode::parse("320600").unwrap(),
            FeeYear::new(2027).unwrap(),
            None,
            200,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.standing == "unpaid" && r.phone.is_some())
        .take(n)
        .map(|r| (r.id_number.as_str().to_owned(), r.name))
        .collect()
}

#[tokio::test]
async fn a_resident_signs_in_with_a_code_adds_two_family_members_and_pays_for_both_at_once() {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        let people = unpaid_with_phone(storage.as_ref(), 3).await;
        assert_eq!(people.len(), 3);
        let (me, first, second) = (&people[0], &people[1], &people[2]);
        let mut b = Browser::new(&w.server);

        // Before signing in, 我的 sends the resident to sign in.
        let (status, _, location) = b.get("/account").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/signin"));

        // A wrong name reads exactly like an unknown ID number, and no code is sent.
        let (_, wrong, _) = b
            .post(
                "/signin",
                &[("id_number", me.0.as_str()), ("name", "错名字")],
            )
            .await;
        let (_, unknown, _) = b
            .post(
                "/signin",
                &[("id_number", "11010519491231002X"), ("name", me.1.as_str())],
            )
            .await;
        assert_eq!(result_of(&wrong), result_of(&unknown));
        assert!(wrong.contains("未查到"), "{wrong}");
        // Fields are checked beside themselves.
        let (status, page, _) = b
            .post("/signin", &[("id_number", "12345"), ("name", "")])
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"id_number-error\"") && page.contains("请输入姓名"));

        let (status, page, _) = b
            .post(
                "/signin",
                &[("id_number", me.0.as_str()), ("name", me.1.as_str())],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("输入验证码") && page.contains("验证码已发送"),
            "{page}"
        );
        assert!(!page.contains(&me.1), "the name is not repeated");
        // Asked again at once: the same code stands, no second message.
        let first_ticket = hidden(&page, "ticket");
        let (_, again, _) = b
            .post(
                "/signin",
                &[("id_number", me.0.as_str()), ("name", me.1.as_str())],
            )
            .await;
        assert!(again.contains("60秒后才能重新获取"), "{again}");
        // The code is checked with the latest page's token only.
        let ticket = hidden(&again, "ticket");
        assert_ne!(ticket, first_ticket);
        let code = b.code_from_mailbox().await;
        let (_, mailbox, _) = b.get("/demo/mailbox").await;
        assert_eq!(
            mailbox.matches("验证码是").count(),
            1,
            "one message, not two"
        );

        // A wrong code takes a try; the right one signs in once.
        let wrong_code = if code == "000000" { "000001" } else { "000000" };
        let verify_with = |ticket: &str, code: &str| {
            [
                ("region", "320600".to_owned()),
                ("id_number", me.0.clone()),
                ("ticket", ticket.to_owned()),
                ("code", code.to_owned()),
            ]
        };
        let verify = |code: String| verify_with(&ticket, &code);
        // Somebody who knows only the ID number: no page token, no try, no phone shown.
        let mut stranger = Browser::new(&w.server);
        let forged = "0".repeat(64);
        for attempt in [&first_ticket, &forged] {
            let (status, page, _) = stranger
                .post("/signin/verify", &verify_with(attempt, &code))
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                page.contains("验证码已失效") && !page.contains("****"),
                "{page}"
            );
        }
        let (status, page, _) = b.post("/signin/verify", &verify(wrong_code.into())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("还可以再试4次"), "{page}");
        assert!(
            page.contains("****"),
            "the phone, masked, to the page that asked: {page}"
        );
        let (status, _, location) = b.post("/signin/verify", &verify(code.clone())).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/account"));
        assert!(b.cookie.is_some());
        let mut other = Browser::new(&w.server);
        let (_, page, _) = other.post("/signin/verify", &verify(code.clone())).await;
        assert!(page.contains("验证码已失效"), "a code works once: {page}");

        let (status, page, _) = b.get("/account").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("您好，"), "{page}");
        assert!(!page.contains(&me.0) && !page.contains(&me.1), "masked");

        // 我的家庭: the name must match the agency's record.
        let (status, page, _) = b
            .post(
                "/account/family",
                &[("id_number", first.0.as_str()), ("name", "错名字")],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"member_id-error\""), "{page}");
        for member in [first, second] {
            let (status, page, _) = b
                .post(
                    "/account/family",
                    &[
                        ("id_number", member.0.as_str()),
                        ("name", member.1.as_str()),
                    ],
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(page.contains("已添加家庭成员"), "{page}");
            assert!(
                !page.contains(&first.0) && !page.contains(&second.0),
                "members' numbers are never in the page"
            );
        }
        let (status, page, _) = b
            .post(
                "/account/family",
                &[("id_number", first.0.as_str()), ("name", first.1.as_str())],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("该成员已在您的家庭中"));
        let (_, page, _) = b.get("/account").await;

        // Pay for both members at once: one order, one payment, two receipts.
        let items: Vec<(String, String)> = page
            .match_indices("name=\"item\" value=\"")
            .map(|(at, m)| {
                let start = at + m.len();
                let end = page[start..].find('"').unwrap() + start;
                ("item".to_owned(), page[start..end].to_owned())
            })
            .collect();
        assert_eq!(items.len(), 3, "me and two members: {page}");
        let members_items: Vec<(String, String)> = items[1..].to_vec();
        let (status, _, location) = b.post("/account/pay", &members_items).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let cashier = location.unwrap();
        assert!(cashier.starts_with("/cashier?"), "{cashier}");
        let fields = query_of(&cashier);
        let total: i64 = members_items
            .iter()
            .map(|(_, v)| v.split_once(':').unwrap().1.parse::<i64>().unwrap())
            .sum();
        assert_eq!(
            fields.iter().find(|(k, _)| k == "amount").unwrap().1,
            total.to_string()
        );
        let (status, _, location) = b.post("/cashier", &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (_, page, _) = b.get(&location.unwrap()).await;
        assert!(page.contains("缴费成功"), "{page}");
        assert_eq!(page.matches("/receipts/verify?code=").count(), 2, "{page}");

        // 我的 now lists the two receipts; the payer's copy downloads for the account only.
        let (_, page, _) = b.get("/account").await;
        assert_eq!(page.matches("下载票据（PDF）").count(), 2, "{page}");
        assert_eq!(
            page.matches("name=\"item\"").count(),
            1,
            "only mine is left to pay"
        );
        let pdf_href = {
            let at = page.find("/account/receipts/pdf?").unwrap();
            let end = page[at..].find('"').unwrap() + at;
            page[at..end].replace("&amp;", "&").replace("&#38;", "&")
        };
        if yibao_receipt_pdf::find_default_font().is_some() {
            let response = b
                .client
                .get(format!("{}{pdf_href}", b.base))
                .header("cookie", b.cookie.clone().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-type"], "application/pdf");
        }
        let (status, _, location) = Browser::new(&w.server).get(&pdf_href).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "signed out: sign in first");
        assert_eq!(location.as_deref(), Some("/signin"));

        // Reminders: off, then stored.
        let (_, page, _) = b.post("/account/reminders", &[("reminders", "off")]).await;
        assert!(page.contains("已关闭缴费提醒"), "{page}");
        let region = "320600";
        assert!(!storage
            .citizen_accounts()
            .wants_reminders(region, &me.0)
            .await
            .unwrap());

        // Removing a member: by the page's reference, never the number.
        let member_ref = hidden(&page, "member");
        let (_, page, _) = b
            .post("/account/family/remove", &[("member", member_ref.as_str())])
            .await;
        assert!(page.contains("已删除家庭成员"), "{page}");
        assert_eq!(
            storage
                .citizen_accounts()
                .family_members(region, &me.0)
                .await
                .unwrap()
                .len(),
            1
        );

        // Signing out ends the session on the server too.
        let old = b.cookie.clone();
        let (status, _, _) = b.post("/signout", &[("", "")]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        b.cookie = old;
        let (status, _, location) = b.get("/account").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/signin"));

        let report = storage.check_invariants().await.unwrap();
        assert!(report.holds(), "{report:?}");
    })
    .await;
}

#[tokio::test]
async fn sign_in_codes_are_bounded_in_time_tries_and_number_and_messages_are_erased_once_sent() {
    use yibao_storage::citizen_accounts::{CodeChecked, CodeIssued, CodeTry, Message, SignInCode};
    on_each_backend(|storage| async move {
        let accounts = storage.citizen_accounts();
        let region = "320600";
        let id = "32060219900101123X";
        let code = |now: i64, day: i64, hash: &'static str| SignInCode {
            region,
            id_number: id,
            code_hash: hash,
            step_hash: "p",
            now,
            expires_at: now + 300,
            resend_not_before: now - 60,
            day,
            max_per_day: 3,
            message: Message {
                message_id: Box::leak(format!("M{now}").into_boxed_str()),
                phone: "13800001234",
                body: "验证码是123456",
                send_before: now + 300,
            },
        };
        let t = 1_000_000;
        let issue =
            |c: SignInCode<'static>| async move { accounts.issue_sign_in_code(&c).await.unwrap() };
        // A code typed on the page of token `step`; right, it opens `session` for half an hour.
        let redeem = |code_hash: &'static str,
                      step_hash: &'static str,
                      now: i64,
                      session: &'static str| async move {
            accounts
                .redeem_sign_in_code(&CodeTry {
                    region,
                    id_number: id,
                    code_hash,
                    step_hash,
                    now,
                    session_token_hash: session,
                    session_expires_at: now + 1800,
                })
                .await
                .unwrap()
        };
        assert_eq!(issue(code(t, 1, "h1")).await, CodeIssued::Sent);
        assert_eq!(issue(code(t + 30, 1, "h2")).await, CodeIssued::TooSoon);
        assert_eq!(issue(code(t + 61, 1, "h2")).await, CodeIssued::Sent);
        assert_eq!(issue(code(t + 122, 1, "h3")).await, CodeIssued::Sent);
        assert_eq!(
            issue(code(t + 183, 1, "h4")).await,
            CodeIssued::TooManyToday
        );
        // The live code is h3; the old ones no longer work. From another page (another token)
        // nothing is tried at all.
        let now = t + 190;
        assert_eq!(
            redeem("h3", "other-page", now, "s0").await,
            CodeChecked::NoCode
        );
        assert_eq!(
            redeem("h2", "p", now, "s1").await,
            CodeChecked::Wrong { tries_left: 4 }
        );
        for left in (0..4).rev() {
            assert_eq!(
                redeem("h1", "p", now, "s1").await,
                CodeChecked::Wrong { tries_left: left }
            );
        }
        assert_eq!(
            redeem("h3", "p", now, "s1").await,
            CodeChecked::NoCode,
            "five wrong tries spend the code, even for the right one"
        );
        // The next day: a new code, which expires after five minutes.
        let next = t + 86_400;
        assert_eq!(issue(code(next, 2, "h5")).await, CodeIssued::Sent);
        assert_eq!(
            redeem("h5", "p", next + 301, "s2").await,
            CodeChecked::NoCode
        );
        assert_eq!(issue(code(next + 400, 2, "h6")).await, CodeIssued::Sent);
        assert_eq!(
            redeem("h6", "p", next + 410, "s3").await,
            CodeChecked::SignedIn
        );
        // A code once used is spent, and still counts toward the day's three.
        assert_eq!(
            redeem("h6", "p", next + 415, "s4").await,
            CodeChecked::NoCode
        );
        assert_eq!(issue(code(next + 800, 2, "h7")).await, CodeIssued::Sent);
        assert_eq!(
            issue(code(next + 900, 2, "h8")).await,
            CodeIssued::TooManyToday
        );
        let session = accounts
            .citizen_session(region, "s3", next + 420)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.id_number.as_str(), id);
        assert!(accounts
            .citizen_session(region, "s3", next + 410 + 1800)
            .await
            .unwrap()
            .is_none());

        // Messages: due, failed and retried, sent; the text erased once sent or given up.
        let due = accounts.due_messages(next + 410, 100).await.unwrap();
        // Day 1's three messages have expired unsent: given up.
        assert_eq!(due.len(), 1, "{due:?}");
        accounts
            .message_failed(region, &due[0].message_id, next + 500, false)
            .await
            .unwrap();
        assert!(accounts
            .due_messages(next + 410, 100)
            .await
            .unwrap()
            .is_empty());
        let again = accounts.due_messages(next + 500, 100).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].body, "验证码是123456");
        accounts
            .message_sent(region, &again[0].message_id, next + 500)
            .await
            .unwrap();
        assert!(accounts
            .due_messages(next + 600, 100)
            .await
            .unwrap()
            .is_empty());
        assert!(
            accounts
                .prune_citizen_sign_ins(next + 100_000)
                .await
                .unwrap()
                >= 1
        );
    })
    .await;
}

/// A browser signed in as `person` with the code from the demo mailbox.
async fn signed_in(w: &World, person: &(String, String)) -> Browser {
    let mut b = Browser::new(&w.server);
    let (status, page, _) = b
        .post(
            "/signin",
            &[
                ("id_number", person.0.as_str()),
                ("name", person.1.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ticket = hidden(&page, "ticket");
    let code = b.code_from_mailbox().await;
    let (status, _, _) = b
        .post(
            "/signin/verify",
            &[
                ("region", "320600"),
                ("id_number", person.0.as_str()),
                ("ticket", ticket.as_str()),
                ("code", code.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    b
}

#[tokio::test]
async fn a_registration_submitted_online_is_approved_or_refused_by_the_station_and_the_resident_sees_it(
) {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        let me = unpaid_with_phone(storage.as_ref(), 1).await.remove(0);
        let mut b = signed_in(&w, &me).await;
        let (status, form, _) = b.get("/account/enrol").await;
        assert_eq!(status, StatusCode::OK);
        assert!(form.contains("value=\"320600|ST-01\""), "{form}");

        // Nothing filled in: each field says what it needs, beside itself.
        let (status, page, _) = b.post("/account/enrol", &[("kind", "first")]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        for field in [
            "place-error",
            "id_number-error",
            "name-error",
            "household-error",
            "declared-error",
        ] {
            assert!(page.contains(&format!("id=\"{field}\"")), "{field}: {page}");
        }
        let adult = yibao_tests::make_id("320602", "1988-03-05", 123);
        let newborn = yibao_tests::make_id("320602", "2026-09-01", 123);
        let application = |kind: &str, id: &str, name: &str, household: &str, permit: &str| {
            vec![
                ("place".to_owned(), "320600|ST-01".to_owned()),
                ("kind".to_owned(), kind.to_owned()),
                ("id_number".to_owned(), id.to_owned()),
                ("name".to_owned(), name.to_owned()),
                ("household".to_owned(), household.to_owned()),
                ("permit_since".to_owned(), permit.to_owned()),
                ("declared".to_owned(), "yes".to_owned()),
            ]
        };
        // A newborn needs a guardian.
        let (status, page, _) = b
            .post(
                "/account/enrol",
                &application("newborn", &newborn, "周小宝", "local_registration", ""),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"guardian_id_number-error\""), "{page}");
        // The phone (where sign-in codes go) only for oneself or one's own newborn.
        let mut with_phone = application("first", &adult, "吴建华", "local_registration", "");
        with_phone.push(("phone".to_owned(), "13912345678".to_owned()));
        let (status, page, _) = b.post("/account/enrol", &with_phone).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"phone-error\""), "{page}");
        // A place that is not on the list.
        let mut nowhere = application("first", &adult, "吴建华", "local_registration", "");
        nowhere[0].1 = "320600|ST-99".to_owned();
        let (status, page, _) = b.post("/account/enrol", &nowhere).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("id=\"place-error\""), "{page}");
        // Somebody on record already, and a residence permit too recent: the application as a
        // whole is refused with the reason.
        let (status, page, _) = b
            .post(
                "/account/enrol",
                &application("first", &me.0, &me.1, "local_registration", ""),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("已在所选参保地登记"), "{page}");
        let (status, page, _) = b
            .post(
                "/account/enrol",
                &application("first", &adult, "吴建华", "residence_permit", "2026-10-01"),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("居住证满3个月"), "{page}");

        // Two applications: an adult's, and a newborn's with the resident as guardian.
        let (status, page, _) = b
            .post(
                "/account/enrol",
                &application("first", &adult, "吴建华", "local_registration", ""),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("参保登记申请已提交"), "{page}");
        let (status, page, _) = b
            .post(
                "/account/enrol",
                &application("first", &adult, "吴建华", "local_registration", ""),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("已有一份待审核的申请"), "{page}");
        let mut baby = application("newborn", &newborn, "周小宝", "local_registration", "");
        baby.push(("guardian_id_number".to_owned(), me.0.clone()));
        baby.push(("guardian_name".to_owned(), me.1.clone()));
        baby.push(("phone".to_owned(), "13912345678".to_owned()));
        let (status, page, _) = b.post("/account/enrol", &baby).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        // An ID number on record under another name is not told apart from a new one: it goes
        // to the station, which sees it is on record.
        let (status, page, _) = b
            .post(
                "/account/enrol",
                &application("first", &me.0, "错名字", "local_registration", ""),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page.matches("待审核").count(), 3, "{page}");

        // The station's queue: masked; another role does not see it.
        let tax =
            yibao_tests::console::ConsoleSession::sign_in(&w.server, "nt-tax", "yibao-demo-tax")
                .await;
        assert_eq!(
            tax.get("/console/applications").await.status,
            StatusCode::FORBIDDEN
        );
        let station = yibao_tests::console::ConsoleSession::sign_in(
            &w.server,
            "nt-st01",
            "yibao-demo-station",
        )
        .await;
        let queue = station.get("/console/applications").await;
        assert_eq!(queue.status, StatusCode::OK);
        assert!(
            !queue.body.contains("吴建华") && queue.body.contains("吴*华"),
            "{}",
            queue.body
        );
        let links: Vec<String> = queue
            .body
            .match_indices("href=\"/console/applications/320600/")
            .map(|(at, m)| {
                let start = at + "href=\"".len();
                let end = queue.body[at + m.len()..].find('"').unwrap() + at + m.len();
                queue.body[start..end].to_owned()
            })
            .collect();
        assert_eq!(links.len(), 3, "{}", queue.body);
        // The clock stands still here: which is which is read from each application's page.
        let mut pages = Vec::new();
        for link in &links {
            pages.push((link.clone(), station.get(link).await.body));
        }
        let link_of = |what: &str| {
            pages
                .iter()
                .find(|(_, body)| body.contains(what))
                .map(|(l, _)| l.clone())
                .unwrap()
        };
        let (adult_link, baby_link, stranger_link) =
            (link_of(&adult), link_of(&newborn), link_of("错名字"));
        // Approving the one on record is refused with the reason and leaves it in the queue.
        let refused = station.post(&format!("{stranger_link}/approve"), &[]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            refused.body.contains("已在所选参保地登记"),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("不予通过"),
            "still open: {}",
            refused.body
        );
        let (person, _) = storage
            .get_person(
                RegionCode::parse("320600").unwrap(),
                &yibao_domain::IdNumber::parse(&me.0, instant().date_naive())
                    .unwrap()
                    .id_number,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(person.name.as_str(), me.1, "the record is untouched");
        let adult_page = station.get(&adult_link).await;
        assert!(adult_page.body.contains("吴建华") && adult_page.body.contains(&adult));
        let approved = station.post(&format!("{adult_link}/approve"), &[]).await;
        assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
        let region = RegionCode::parse("320600").unwrap();
        let id = yibao_domain::IdNumber::parse(&adult, instant().date_naive())
            .unwrap()
            .id_number;
        let (person, _) = storage.get_person(region, &id).await.unwrap().unwrap();
        assert_eq!(person.station.unwrap().as_str(), "ST-01");
        let enrolment = storage
            .get_enrolment(region, FeeYear::new(2027).unwrap(), &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(enrolment.status.code(), "enrolled");
        // Approved once only.
        let again = station.post(&format!("{adult_link}/approve"), &[]).await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            again.body.contains("已通过，不能再次审核"),
            "{}",
            again.body
        );

        let empty = station
            .post(&format!("{baby_link}/refuse"), &[("reason", " ")])
            .await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(empty.body.contains("id=\"reason-error\""), "{}", empty.body);
        let refused = station
            .post(
                &format!("{baby_link}/refuse"),
                &[("reason", "请携带出生医学证明和户口簿到服务站办理")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::SEE_OTHER, "{}", refused.body);

        // The resident sees both outcomes.
        let (_, page, _) = b.get("/account").await;
        assert!(page.contains("已通过") && page.contains("未通过"), "{page}");
        assert!(
            page.contains("请携带出生医学证明和户口簿到服务站办理"),
            "{page}"
        );
        // Reading the applications in full was audited.
        let reads = storage
            .audit_entries(
                &yibao_storage::records::AuditFilter {
                    actor: Some("nt-st01".into()),
                    action_prefix: Some("application.".into()),
                    ..Default::default()
                },
                50,
            )
            .await
            .unwrap();
        let actions: Vec<&str> = reads.iter().map(|r| r.entry.action.as_str()).collect();
        assert!(
            actions.contains(&"application.read") && actions.contains(&"application.refuse"),
            "{actions:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_payment_whose_notification_never_came_is_found_by_asking_the_provider() {
    on_each_backend(|storage| async move {
        let (w, provider) = world_with_cashier(storage.clone()).await;
        let (id, name) = w.resident.clone();
        let (_, page) = look_up(&w, &id, &name).await;
        let payable_id = hidden(&page, "payable_id");
        let amount = hidden(&page, "amount");
        let mut b = Browser::new(&w.server);
        let (status, _, location) = b
            .post(
                "/pay",
                &[
                    ("payable_id", payable_id.as_str()),
                    ("amount", amount.as_str()),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let fields = query_of(&location.unwrap());
        let order_no = fields
            .iter()
            .find(|(k, _)| k == "order_no")
            .unwrap()
            .1
            .clone();
        // The provider takes the money; its notification is lost.
        let n = provider.0.pay_without_notifying(
            &order_no,
            amount.parse().unwrap(),
            &paid_at().to_rfc3339(),
        );
        let (_, page) = look_up(&w, &id, &name).await;
        assert!(result_of(&page).contains("缴费处理中"), "{page}");
        // The next round asks about the unpaid orders and finds it; a second round, nothing new.
        let state = yibao_server::AppState::new(storage.clone(), Clock::fixed(instant()));
        let found = yibao_citizen::pay::ask_about_unpaid_orders(&state, provider.0.as_ref())
            .await
            .unwrap();
        assert_eq!(found, 1);
        let again = yibao_citizen::pay::ask_about_unpaid_orders(&state, provider.0.as_ref())
            .await
            .unwrap();
        assert_eq!(again, 0);
        let paid = storage
            .payment_state(yibao_citizen::pay::SITE_CHANNEL_ID, &n.txn_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(paid.status.code(), "paid");
        let (_, page) = look_up(&w, &id, &name).await;
        assert!(result_of(&page).contains("已缴费"), "{page}");
        let report = storage.check_invariants().await.unwrap();
        assert!(report.holds(), "{report:?}");
    })
    .await;
}

#[tokio::test]
async fn text_messages_go_to_the_sms_gateway_signed_and_a_failure_is_tried_again() {
    use std::sync::Mutex;
    use yibao_citizen::messages::{deliver_messages, HttpSmsSender};
    on_each_backend(|storage| async move {
        // A gateway that refuses the first request and takes the second.
        let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let kept = seen.clone();
        let gateway = axum::Router::new().route(
            "/sms",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let kept = kept.clone();
                async move {
                    let mut seen = kept.lock().unwrap();
                    seen.push((
                        headers["yibao-timestamp"].to_str().unwrap().to_owned(),
                        headers["yibao-signature"].to_str().unwrap().to_owned(),
                        body,
                    ));
                    if seen.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, gateway).await.unwrap() });

        let now = instant().timestamp();
        let accounts = storage.citizen_accounts();
        let code = yibao_storage::citizen_accounts::SignInCode {
            region: "320600",
            id_number: "32060219900101123X",
            code_hash: "h",
            step_hash: "p",
            now,
            expires_at: now + 300,
            resend_not_before: now - 60,
            day: 1,
            max_per_day: 10,
            message: yibao_storage::citizen_accounts::Message {
                message_id: "SMS-1",
                phone: "13800001234",
                body: "【城乡居民医保】您的登录验证码是654321",
                send_before: now + 300,
            },
        };
        accounts.issue_sign_in_code(&code).await.unwrap();
        let sender = HttpSmsSender::new(url, b"gateway-secret".to_vec());
        let state = yibao_server::AppState::new(storage.clone(), Clock::fixed(instant()));
        assert_eq!(
            deliver_messages(&state, &sender).await.unwrap(),
            0,
            "refused"
        );
        // Not due again until its retry time.
        assert_eq!(deliver_messages(&state, &sender).await.unwrap(), 0);
        assert_eq!(seen.lock().unwrap().len(), 1);
        let later = yibao_server::AppState::new(
            storage.clone(),
            Clock::fixed(instant() + chrono::Duration::seconds(10)),
        );
        assert_eq!(deliver_messages(&later, &sender).await.unwrap(), 1);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let (timestamp, signature, body) = &seen[1];
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["phone"], "13800001234");
        assert_eq!(json["message_id"], "SMS-1");
        assert!(json["text"].as_str().unwrap().contains("654321"));
        use sha2::Digest;
        let body_hash = hex_of(&sha2::Sha256::digest(body.as_bytes()));
        assert!(yibao_channel_client::signing::verify(
            b"gateway-secret",
            &format!("{timestamp}\nSMS-1\n{body_hash}\n"),
            signature
        ));
        // Sent: nothing due any more, and the text is gone from the outbox.
        assert!(accounts
            .due_messages(now + 10_000, 10)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn racing_decisions_on_one_application_register_the_person_once_and_racing_submissions_store_one(
) {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        let me = unpaid_with_phone(storage.as_ref(), 1).await.remove(0);
        let b = signed_in(&w, &me).await;
        let adult = yibao_tests::make_id("320602", "1979-11-30", 456);
        let form: Vec<(String, String)> = [
            ("place", "320600|ST-01"),
            ("kind", "first"),
            ("id_number", adult.as_str()),
            ("name", "陈立新"),
            ("household", "local_registration"),
            ("declared", "yes"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        // Four submissions of the same person at once: the unique index keeps one.
        let mut submits = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let client = b.client.clone();
            let url = format!("{}/account/enrol", b.base);
            let cookie = b.cookie.clone().unwrap();
            let form = form.clone();
            submits.spawn(async move {
                client
                    .post(url)
                    .header("cookie", cookie)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
        }
        let statuses: Vec<StatusCode> = submits.join_all().await;
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{statuses:?}"
        );
        let open = storage
            .enrolment_applications()
            .applications_submitted_by(&me.0)
            .await
            .unwrap();
        assert_eq!(open.len(), 1);
        let link = format!(
            "/console/applications/{}/{}",
            open[0].region, open[0].application_no
        );

        // Two operators approve and one refuses at the same moment: one decision stands.
        let station = |_: usize| {
            yibao_tests::console::ConsoleSession::sign_in(
                &w.server,
                "nt-st01",
                "yibao-demo-station",
            )
        };
        let (s1, s2, s3) = tokio::join!(station(1), station(2), station(3));
        let approve = format!("{link}/approve");
        let refuse = format!("{link}/refuse");
        let (a1, a2, r) = tokio::join!(
            s1.post(&approve, &[]),
            s2.post(&approve, &[]),
            s3.post(&refuse, &[("reason", "材料不全")]),
        );
        let decided = [a1.status, a2.status, r.status]
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count();
        assert_eq!(decided, 1, "{:?}", [a1.status, a2.status, r.status]);
        let after = storage
            .enrolment_applications()
            .application(open[0].region.as_str(), &open[0].application_no)
            .await
            .unwrap()
            .unwrap();
        let region = RegionCode::parse("320600").unwrap();
        let id = yibao_domain::IdNumber::parse(&adult, instant().date_naive())
            .unwrap()
            .id_number;
        let registered = storage.get_person(region, &id).await.unwrap();
        // Registered exactly when approved, and then once (one version of the record).
        match after.status.code() {
            "approved" => assert_eq!(registered.unwrap().1, 1),
            "refused" => assert!(registered.is_none()),
            other => panic!("still {other}"),
        }
    })
    .await;
}

/// 补缴修复 on 我的 (issue 19): a signed-in resident with gap years is offered the years that
/// shorten the wait, creates a back-payment for one of them, and it is then theirs to pay; a
/// request without a year, for a year that shortens nothing, or for someone not theirs changes
/// nothing. The look-up page, not signed in, only says where to ask.
#[tokio::test]
async fn a_signed_in_resident_buys_back_a_gap_year_and_can_pay_it() {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        let person = unpaid_with_phone(storage.as_ref(), 1).await.remove(0);
        // Insured in 2024, not in 2025 and 2026: two gap years, each worth a month of the wait.
        import_nantong_history(
            storage.as_ref(),
            &format!(
                "身份证号码,待遇年度,参保情况\n{id},2024,居民医保\n{id},2025,未参保\n{id},2026,未参保\n",
                id = person.0
            ),
        )
        .await;

        let (_, anonymous) = look_up(&w, &person.0, &person.1).await;
        assert!(
            result_of(&anonymous).contains("登录“我的”后可以在网上办理补缴修复"),
            "{anonymous}"
        );
        assert!(!anonymous.contains("/account/back-payments"));

        let mut b = signed_in(&w, &person).await;
        let (_, page, _) = b.get("/account").await;
        assert!(page.contains("办理补缴修复"), "{page}");
        assert!(page.contains("value=\"2025\"") && page.contains("value=\"2026\""));
        let contribution = hidden(&page, "payable_id");
        let ask = |years: &[&str]| {
            let mut form = vec![
                ("person".to_owned(), "self".to_owned()),
                ("payable_id".to_owned(), contribution.clone()),
            ];
            form.extend(years.iter().map(|y| ("year".to_owned(), (*y).to_owned())));
            form
        };

        // Nothing ticked: refused beside the form.
        let (status, page, _) = b.post("/account/back-payments", &ask(&[])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("class=\"field-error\" id=\"bb-error-"), "{page}");
        assert!(page.contains("请勾选要补缴的年度"));
        // A year that is no gap year: refused with the rules' reason, nothing created.
        let (status, page, _) = b.post("/account/back-payments", &ask(&["2019"])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
        assert!(!page.contains("补缴2019年度 城乡居民基本医疗保险"));
        // Someone not theirs: back to 我的, nothing created.
        let mut other = ask(&["2026"]);
        other[0].1 = "0123456789abcdef0123456789abcdef".into();
        let (status, _, location) = b.post("/account/back-payments", &other).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/account"));

        // 2026 bought back: its payable is listed to pay, at the individual standard.
        let (status, page, _) = b.post("/account/back-payments", &ask(&["2026"])).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("待缴的补缴费用：2026年度"), "{page}");
        assert!(page.contains("等待期由5个月缩短为4个月"), "{page}");
        assert!(page.contains("补缴2026年度 城乡居民基本医疗保险"));
        let pay_together = &page[page.find("一起缴费").unwrap()..];
        assert_eq!(pay_together.matches("name=\"item\"").count(), 2, "{page}");
        assert!(pay_together.contains("补缴2026年度 南通市"), "{page}");
        assert!(page.contains("其中2026年度的补缴费用已生成，待缴纳。"), "{page}");
        // Only 2025 is still offered; asking for 2026 again (a page left open) creates nothing
        // twice and says what is still to pay.
        assert!(!page.contains("value=\"2026\" checked"));
        let (status, page, _) = b.post("/account/back-payments", &ask(&["2026"])).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("待缴的补缴费用：2026年度"), "{page}");
        let ids = storage
            .payables_of_person(
                &yibao_domain::IdNumber::parse(&person.0, instant().date_naive())
                    .unwrap()
                    .id_number,
            )
            .await
            .unwrap();
        assert_eq!(
            ids.iter().filter(|p| p.buys_back_year == Some(2026)).count(),
            1
        );
        // The request is audited under the resident, masked.
        let audit = storage
            .audit_entries(
                &yibao_storage::records::AuditFilter {
                    action_prefix: Some("cover.buy_back".into()),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        assert!(
            audit.iter().any(|e| e.entry.actor.starts_with("citizen:")
                && !e.entry.actor.contains(&person.0)),
            "{audit:?}"
        );
    })
    .await;
}

/// The critical-illness reward (大病保险最高支付限额, issue 19) shown to the resident with how it
/// was reached: before paying, what paying would bring; once paid, the year's raise.
#[tokio::test]
async fn a_resident_sees_the_years_critical_illness_reward_before_and_after_paying() {
    on_each_backend(|storage| async move {
        let w = world(storage.clone()).await;
        // Not insured in 2019, then resident insurance 2020–2026: with 2027, eight continuous
        // years, four raises of the national 1 000 元 (南通 keeps the defaults, uncapped).
        let mut csv = format!(
            "身份证号码,待遇年度,参保情况\n{},2019,未参保\n",
            w.resident.0
        );
        for year in 2020..=2026 {
            csv.push_str(&format!("{},{year},居民医保\n", w.resident.0));
        }
        import_nantong_history(storage.as_ref(), &csv).await;
        let reward =
            "2027年度大病保险最高支付限额提高4000.00元（连续参保8年，连续参保激励4000.00元）";
        let (_, page) = look_up(&w, &w.resident.0, &w.resident.1).await;
        assert!(
            result_of(&page).contains(&format!("缴费后，{reward}")),
            "{page}"
        );
        pay(&w, "T-REWARD-1").await;
        let (_, page) = look_up(&w, &w.resident.0, &w.resident.1).await;
        let result = result_of(&page);
        assert!(result.contains(reward), "{page}");
        assert!(!result.contains("缴费后，"), "{page}");
    })
    .await;
}

/// Imports a cover history file into 南通 (320600) as `yibao cover import` does.
async fn import_nantong_history(storage: &dyn Storage, csv: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.csv");
    std::fs::write(&file, csv).unwrap();
    yibao_server::services::cover::import_cover_history(
        storage,
        "test",
        RegionCode::parse("320600").unwrap(),
        &file,
        instant().date_naive(),
        yibao_roster_file::Limits::default(),
    )
    .await
    .unwrap();
}
