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
    let resident = (row.id_number.clone(), row.name.clone());
    let server = TestServer::start(storage, clock, ServerSettings::default()).await;
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
    let response = w
        .server
        .client
        .post(w.server.url("/lookup"))
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
            name: Some(w.resident.1.clone()),
            region: None,
            fee_year: Some(2027),
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
