//! Issue 21: names as residents write them. Rare characters (生僻字) from CJK Ext A (䶮) and from
//! Ext B outside the BMP (𪚥, 𠀾, 𡒊), an ideographic variation sequence (葛 + U+E0100) and the
//! middle dot's look-alikes (`•` `‧` `・` `･` `．` `.`, kept as `·`), through every way a name comes
//! in and goes out: roster import (UTF-8, GB18030, XLSX), the JSON API, the channel protocol's
//! search, the citizens' paid-status query and the citizen site, receipts (JSON and PDF, text
//! read back with `pdftotext`), the bank's debit request file, the XLSX export and the listings,
//! on both backends.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use yibao_channel_client::client::ChannelClient;
use yibao_channel_client::types::{
    PayerCopyRequest, ReceiptSearchRequest, ReportPaymentRequest, SearchRequest, SearchResponse,
};
use yibao_domain::{IdNumber, PersonName, RegionCode};
use yibao_roster_file::Limits;
use yibao_server::services::roster_import::{import_roster, ImportReport, ImportScope};
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::xlsx::sheet_of;
use yibao_tests::{make_id, on_each_test_db, DbHandle, TestServer};

/// 2020-11-02 10:00 Beijing, inside 南通市's 2021 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 11, 2).unwrap()
}

/// The variation sequence: 葛 with the ideographic variation selector U+E0100.
const GE_IVS: &str = "葛\u{E0100}亮";

/// Each name as a file or a clerk types it, and as yibao keeps it.
const NAMES: &[(&str, &str)] = &[
    ("刘䶮", "刘䶮"),
    ("𪚥明华", "𪚥明华"),
    ("𠀾𡒊", "𠀾𡒊"),
    (GE_IVS, GE_IVS),
    ("阿依古丽·买买提", "阿依古丽·买买提"),
    ("阿依古丽•买买提", "阿依古丽·买买提"),
    ("热依拉‧艾山", "热依拉·艾山"),
    ("古丽・买买提", "古丽·买买提"),
    ("买买提･依明", "买买提·依明"),
    ("帕尔哈提．阿不都", "帕尔哈提·阿不都"),
    ("努尔.艾力", "努尔·艾力"),
];

/// The ID number of the `index`-th name in file `file` (0: UTF-8, 1: GB18030, 2: XLSX).
fn id_of(file: u32, index: usize) -> String {
    make_id("320602", "1980-01-01", 100 * (file + 1) + index as u32)
}

fn roster_csv(file: u32) -> String {
    let mut csv = String::from("姓名,身份证号码,参保地区\r\n");
    for (i, (typed, _)) in NAMES.iter().enumerate() {
        csv.push_str(&format!("{typed},{},320600\r\n", id_of(file, i)));
    }
    csv
}

fn roster_xlsx(file: u32) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, title) in ["姓名", "身份证号码", "参保地区"].iter().enumerate() {
        sheet.write_string(0, col as u16, *title).unwrap();
    }
    for (i, (typed, _)) in NAMES.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, *typed).unwrap();
        sheet.write_string(row, 1, id_of(file, i)).unwrap();
        sheet.write_string(row, 2, "320600").unwrap();
    }
    workbook.save_to_buffer().unwrap()
}

async fn import(storage: &dyn Storage, file_name: &str, bytes: &[u8]) -> ImportReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    std::fs::write(&path, bytes).unwrap();
    import_roster(
        storage,
        &path,
        file_name,
        &ImportScope::unrestricted("test"),
        today(),
        None,
        Limits::default(),
        &|_| {},
    )
    .await
    .unwrap()
}

async fn stored_name(storage: &dyn Storage, id: &str) -> String {
    let region = RegionCode::parse("320600").unwrap();
    let id = IdNumber::parse(id, today()).unwrap().id_number;
    let (person, _) = storage.get_person(region, &id).await.unwrap().unwrap();
    person.name.as_str().to_owned()
}

#[tokio::test]
async fn roster_import_keeps_every_name_from_utf8_gb18030_and_xlsx() {
    on_each_test_db(|db| async move {
        let storage = db.storage.as_ref();
        yibao::demo::load(storage).await.unwrap();
        let gb18030_text = roster_csv(1);
        let (gb18030, _, unmappable) = encoding_rs::GB18030.encode(&gb18030_text);
        assert!(!unmappable, "GB 18030 holds every one of these names");
        assert!(
            encoding_rs::GBK.encode(&roster_csv(1)).2,
            "GBK does not: the file needs GB 18030's four-byte sequences"
        );
        for (file, file_name, bytes, encoding) in [
            (0, "utf8.csv", roster_csv(0).into_bytes(), "utf8"),
            (1, "gb18030.csv", gb18030.into_owned(), "gb18030"),
            (2, "roster.xlsx", roster_xlsx(2), "utf8"),
        ] {
            let report = import(storage, file_name, &bytes).await;
            assert_eq!(report.encoding, encoding, "{file_name}");
            assert_eq!(
                report.summary.enrolled,
                NAMES.len() as u64,
                "{file_name}: {:?}",
                report.rejections
            );
            for (i, (typed, kept)) in NAMES.iter().enumerate() {
                assert_eq!(
                    stored_name(storage, &id_of(file, i)).await,
                    *kept,
                    "{file_name}: {typed}"
                );
            }
            // The same file again changes nobody: each name compares equal to itself as stored.
            let again = import(storage, file_name, &bytes).await;
            assert_eq!(again.summary.unchanged, NAMES.len() as u64, "{file_name}");
            assert_eq!(again.summary.updated, 0, "{file_name}");
        }
    })
    .await;
}

/// Excel's plain “CSV” on Chinese Windows is GBK: a name with 𪚥 comes out as `王?明`. That row is
/// refused with its own code, the reason and the advice; the others are imported.
#[tokio::test]
async fn a_question_mark_left_by_a_legacy_encoding_is_refused_with_the_reason() {
    on_each_test_db(|db| async move {
        let storage = db.storage.as_ref();
        yibao::demo::load(storage).await.unwrap();
        let text = format!(
            "姓名,身份证号码,参保地区\r\n张三,{},320600\r\n王?明,{},320600\r\n李？,{},320600\r\n",
            id_of(0, 0),
            id_of(0, 1),
            id_of(0, 2)
        );
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        let report = import(storage, "excel.csv", &gbk).await;
        assert_eq!(report.encoding, "gb18030");
        assert_eq!(report.summary.enrolled, 1);
        assert_eq!(report.summary.rejected, 2);
        for (rejection, row, mark) in [
            (&report.rejections[0], 3, "U+003F"),
            (&report.rejections[1], 4, "U+FF1F"),
        ] {
            assert_eq!(rejection.row, row);
            assert_eq!(rejection.column, "姓名");
            assert_eq!(rejection.code, "NAME_CHARACTER_LOST");
            for needle in [mark, "生僻字", "UTF-8", "GB18030"] {
                assert!(
                    rejection.reason.contains(needle),
                    "{needle}: {}",
                    rejection.reason
                );
            }
        }
    })
    .await;
}

const SECRET_BANK: &str = "bank-secret-0123456789";
const SECRET_DEBIT: &str = "bankad-secret-0123456789";

struct World {
    server: TestServer,
    bank: ChannelClient,
    token: String,
}

/// Everybody of [`NAMES`] registered over the admin API: the first half by a roster upload (UTF-8),
/// the rest one by one (`PUT /persons`), then assessed. Channels `bank` (counter) and `bankad`
/// (auto-debit); the receipt fonts as `yibao serve` loads them.
async fn world(db: &DbHandle) -> World {
    let storage = db.storage.clone();
    yibao::demo::load(storage.as_ref()).await.unwrap();
    yibao_tests::add_channel(storage.as_ref(), "bank", "bank_counter", SECRET_BANK).await;
    yibao_tests::add_channel(storage.as_ref(), "bankad", "auto_debit", SECRET_DEBIT).await;
    yibao_tests::create_admin(storage.as_ref()).await;
    let mut state = AppState::new(storage.clone(), Clock::fixed(instant()));
    state.receipt_font = yibao_receipt_pdf::find_default_font().map(|p| {
        let (main, _) = yibao_receipt_pdf::ReceiptFonts::load(&p, &[]).unwrap();
        Arc::new(main)
    });
    state.receipt_fallback_fonts = Arc::new(yibao_receipt_pdf::find_default_fallback_fonts());
    let server = TestServer::start_with_state(state, ServerSettings::default()).await;
    let login: Value = server
        .client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": yibao_tests::ADMIN.0, "password": yibao_tests::ADMIN.1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let offset = instant().timestamp() - Utc::now().timestamp();
    let bank = ChannelClient::builder(
        &server.base_url,
        "bank".to_owned(),
        SECRET_BANK.as_bytes().to_vec(),
    )
    .clock_offset_secs(offset)
    .build()
    .unwrap();
    World {
        server,
        bank,
        token,
    }
}

impl World {
    /// Registers each of [`NAMES`] as typed through the JSON API, under the ID numbers of file
    /// `file` ([`id_of`]); their ID numbers.
    async fn register_every_name(&self, file: u32) -> Vec<String> {
        let ids: Vec<String> = (0..NAMES.len()).map(|i| id_of(file, i)).collect();
        for (i, (typed, _)) in NAMES.iter().enumerate() {
            let path = format!("/api/v1/regions/320600/persons/{}", ids[i]);
            let r = self
                .send(reqwest::Method::PUT, &path)
                .json(&json!({ "name": typed }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{typed}");
        }
        ids
    }

    async fn search(&self, id_number: &str, name: &str) -> SearchResponse {
        self.bank
            .search(&SearchRequest {
                id_number: id_number.to_owned(),
                insured_number: None,
                name: Some(name.to_owned()),
                region: None,
                fee_year: None,
                agent_code: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.server
            .client
            .get(self.server.url(path))
            .bearer_auth(&self.token)
    }

    fn send(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.server
            .client
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
    }
}

fn masked(name: &str) -> String {
    PersonName::parse(name).unwrap().masked()
}

fn without_selectors(text: &str) -> String {
    text.chars()
        .filter(|&c| !yibao_domain::person_name::is_variation_selector(c))
        .collect()
}

fn paid_at() -> DateTime<FixedOffset> {
    instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

#[tokio::test]
async fn rare_names_through_the_api_protocol_receipts_bank_files_exports_and_listings() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let ids: Vec<String> = (0..NAMES.len()).map(|i| id_of(0, i)).collect();
        let half = NAMES.len() / 2;

        // Roster upload over HTTP (the first half), with a `?` row refused by its code.
        let mut csv = String::from("姓名,身份证号码,参保地区\n");
        for (i, (typed, _)) in NAMES.iter().enumerate().take(half) {
            csv.push_str(&format!("{typed},{},320600\n", ids[i]));
        }
        csv.push_str(&format!("王?明,{},320600\n", id_of(8, 0)));
        let r = w
            .send(reqwest::Method::POST, "/api/v1/rosters?file_name=rare.csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let report: Value = r.json().await.unwrap();
        assert_eq!(report["enrolled"], half, "{report}");
        assert_eq!(report["rejections"][0]["code"], "NAME_CHARACTER_LOST");
        assert_eq!(report["rejections"][0]["column"], "姓名");

        // The rest through the JSON API, each read back exactly as kept.
        for (i, (typed, kept)) in NAMES.iter().enumerate().skip(half) {
            let path = format!("/api/v1/regions/320600/persons/{}", ids[i]);
            let r = w
                .send(reqwest::Method::PUT, &path)
                .json(&json!({ "name": typed }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{typed}");
            let answer: Value = r.json().await.unwrap();
            assert_eq!(answer["person"]["name"], *kept, "{typed}");
        }
        for (i, (typed, kept)) in NAMES.iter().enumerate() {
            let path = format!("/api/v1/regions/320600/persons/{}", ids[i]);
            let person: Value = w.get(&path).send().await.unwrap().json().await.unwrap();
            assert_eq!(person["person"]["name"], *kept, "{typed}");
        }
        // A `?` typed into the API is refused, naming the character and why.
        let r = w
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/regions/320600/persons/{}", id_of(8, 1)),
            )
            .json(&json!({ "name": "王?明" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = r.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("U+003F") && message.contains("生僻字"),
            "{message}"
        );

        // 葛亮 registered without the selector, to be found with it.
        let plain = id_of(8, 2);
        let r = w
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/regions/320600/persons/{plain}"),
            )
            .json(&json!({ "name": "葛亮" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = w
            .send(
                reqwest::Method::POST,
                "/api/v1/regions/320600/fee-years/2021/assessment",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // The channel protocol's search finds each person by the name as kept, as typed, and with
        // or without the variation selector; the answer masks per perceived character.
        for (i, (typed, kept)) in NAMES.iter().enumerate() {
            let mut tried = vec![typed.to_string(), kept.to_string()];
            tried.push(without_selectors(kept));
            for name in tried {
                let found = w.search(&ids[i], &name).await;
                assert_eq!(found.insured.name_masked, masked(kept), "{name}");
            }
        }
        assert_eq!(masked("𪚥明华"), "𪚥*华");
        assert_eq!(masked("𠀾𡒊"), "𠀾*");
        assert_eq!(masked(GE_IVS), "葛\u{E0100}*");
        let r = w
            .server
            .client
            .get(w.server.url("/public/paid-status"))
            .query(&[("id_number", plain.as_str()), ("name", GE_IVS)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "葛亮 found as {GE_IVS:?}");
        let found = w.search(&plain, GE_IVS).await;
        assert_eq!(found.insured.name_masked, "葛*");
        // The citizens' query: with and without the selector, Ext B and a dot variant.
        for (i, name) in [
            (3, GE_IVS),
            (3, "葛亮"),
            (1, "𪚥明华"),
            (5, "阿依古丽・买买提"),
        ] {
            let r = w
                .server
                .client
                .get(w.server.url("/public/paid-status"))
                .query(&[("id_number", ids[i].as_str()), ("name", name)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{name}");
        }
        // A different name is not the person.
        let r = w
            .server
            .client
            .get(w.server.url("/public/paid-status"))
            .query(&[("id_number", ids[3].as_str()), ("name", "葛明")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        // Pay for every one but 𠀾𡒊 (kept for the bank's debit run); receipts in JSON and PDF.
        let fonts = yibao_receipt_pdf::find_default_font().is_some()
            && !yibao_receipt_pdf::find_default_fallback_fonts().is_empty();
        if !fonts {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have the receipt fonts (scripts/install-fonts)"
            );
            eprintln!(
                "NOTICE: receipt fonts not installed (scripts/install-fonts): PDFs not checked"
            );
        }
        let debited = 2;
        for (i, (_, kept)) in NAMES.iter().enumerate() {
            if i == debited {
                continue;
            }
            let found = w.search(&ids[i], kept).await;
            let payable = &found.payables[0];
            let paid = w
                .bank
                .report_payment(&ReportPaymentRequest::for_payables(
                    format!("T-RARE-{i}"),
                    vec![payable.payable_id.clone()],
                    payable.amount,
                    paid_at(),
                ))
                .await
                .unwrap();
            let receipt = &paid.receipts[0];
            let json = w
                .bank
                .receipt_json(
                    &receipt.receipt_code,
                    &receipt.receipt_number,
                    &receipt.check_code,
                )
                .await
                .unwrap();
            assert_eq!(json.extra["payer_name_masked"], masked(kept), "{kept}");
            // The payer's own copy, asked for with the name without its selector: in full.
            let copy = w
                .bank
                .payer_copy_json(
                    &receipt.receipt_code,
                    &receipt.receipt_number,
                    &PayerCopyRequest {
                        check_code: receipt.check_code.clone(),
                        id_number: ids[i].clone(),
                        name: without_selectors(kept),
                    },
                )
                .await
                .unwrap();
            assert_eq!(copy.extra["payer_name"], *kept);
            // The receipt search, with and without the selector.
            for name in [kept.to_string(), without_selectors(kept)] {
                let list = w
                    .bank
                    .search_receipts(&ReceiptSearchRequest {
                        id_number: ids[i].clone(),
                        name,
                        fee_year: None,
                    })
                    .await
                    .unwrap();
                assert_eq!(list.len(), 1, "{kept}");
            }
            if !fonts {
                continue;
            }
            // The PDF anyone with the numbers gets: masked. The staff reprint: the name in full.
            let public = w
                .bank
                .receipt_pdf(
                    &receipt.receipt_code,
                    &receipt.receipt_number,
                    &receipt.check_code,
                )
                .await
                .unwrap();
            let reprint = w
                .get(&format!(
                    "/api/v1/receipts/{}-{}.pdf",
                    receipt.receipt_code, receipt.receipt_number
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(reprint.status(), StatusCode::OK, "{kept}");
            let reprint = reprint.bytes().await.unwrap().to_vec();
            if let Ok(dir) = std::env::var("YIBAO_KEEP_RECEIPTS") {
                std::fs::write(format!("{dir}/receipt-{i}.pdf"), &reprint).unwrap();
            }
            for (pdf, printed) in [(&public, masked(kept)), (&reprint, kept.to_string())] {
                let Some(text) = yibao_tests::pdf::text(pdf) else {
                    break;
                };
                // The selector is drawn with a fallback font's variant glyph (HanaMinA has 葛 +
                // U+E0100) and so comes back in the text (docs/fonts.md).
                let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                assert!(
                    text.contains(&printed),
                    "{printed:?} not in the PDF's text: {text:?}"
                );
            }
        }

        // The bank's debit request file carries the holder's name exactly.
        let r = w
            .send(reqwest::Method::POST, "/api/v1/agreements")
            .json(
                &json!({"agreement_no": "AG-RARE-1", "region": "320600", "channel_id": "bankad",
                "payer_id_number": ids[debited], "payer_name": NAMES[debited].1,
                "account": "6222021234567890123"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let r = w
            .send(reqwest::Method::POST, "/api/v1/debit-runs")
            .json(
                &json!({"channel_id": "bankad", "region": "320600", "fee_year": 2021,
                "debit_date": "2020-11-03"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let run: Value = r.json().await.unwrap();
        let run_no = run["run_no"].as_str().unwrap();
        let file = w
            .get(&format!("/api/v1/debit-runs/{run_no}/request-file"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let request = yibao_statement_file::read_debit_request(&file, &Default::default()).unwrap();
        assert_eq!(request.rows.len(), 1);
        assert_eq!(request.rows[0].item.name, NAMES[debited].1);
        assert_eq!(
            request.rows[0].item.member.as_ref().unwrap().name,
            NAMES[debited].1
        );

        // The standing list (JSON and its XLSX export): full names, exactly as kept.
        let rows: Value = w
            .get("/api/v1/regions/320600/fee-years/2021/standing")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let xlsx = w
            .get("/api/v1/regions/320600/fee-years/2021/standing?format=xlsx")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (_, strings) = sheet_of(&xlsx);
        for (_, kept) in NAMES {
            assert!(listed.contains(kept), "{kept} not listed: {listed:?}");
            assert!(strings.iter().any(|s| s == kept), "{kept} not in the XLSX");
        }
        // The public listing of the paid (缴费公示): masked per perceived character.
        let html = w
            .get("/api/v1/regions/320600/fee-years/2021/paid-listing")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (i, (_, kept)) in NAMES.iter().enumerate() {
            let shown = html.contains(&masked(kept));
            assert_eq!(shown, i != debited, "{kept} as {}", masked(kept));
        }
    })
    .await;
}

/// The console (issue 21's last part for staff): every rare name is found by a search by name,
/// with or without its variation selector, shown masked in the list and whole on the record,
/// and accepted by the record's form.
#[tokio::test]
async fn the_console_finds_shows_and_accepts_rare_names() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let ids = w.register_every_name(5).await;
        let console = yibao_tests::console::ConsoleSession::sign_in(
            &w.server,
            yibao_tests::ADMIN.0,
            yibao_tests::ADMIN.1,
        )
        .await;
        let search = |q: String| {
            let console = &console;
            async move {
                let mut url = reqwest::Url::parse("http://x/console/persons").unwrap();
                url.query_pairs_mut()
                    .append_pair("region", "320600")
                    .append_pair("q", &q);
                console
                    .get(&format!("/console/persons?{}", url.query().unwrap()))
                    .await
            }
        };
        for (typed, kept) in NAMES {
            let found = search((*kept).to_owned()).await;
            assert_eq!(found.status, StatusCode::OK, "{typed}");
            found.expect_text(&masked(kept));
            // Typed without its selector, the sequence is found all the same.
            let plain = without_selectors(kept);
            if plain != *kept {
                search(plain).await.expect_text(&masked(kept));
            }
        }
        // The record shows the name whole, selector and all, and its form accepts another
        // rare name.
        let found = search(GE_IVS.to_owned()).await;
        let record = found
            .link_starting("/console/persons/320600/r.")
            .unwrap()
            .trim_end_matches("/reveal")
            .to_owned();
        let page = console.get(&record).await;
        assert_eq!(page.status, StatusCode::OK);
        page.expect_text(GE_IVS);
        let saved = console
            .post(
                &record,
                &[("name", "𠀾\u{E0100}𡒊"), ("household", "本地户籍")],
            )
            .await;
        assert!(
            saved.status.is_success() || saved.status.is_redirection(),
            "{}",
            saved.body
        );
        let person: Value = w
            .get(&format!(
                "/api/v1/regions/320600/persons/{}",
                ids[NAMES.iter().position(|(t, _)| *t == GE_IVS).unwrap()]
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(person["person"]["name"], "𠀾\u{E0100}𡒊");
    })
    .await;
}

/// The citizen site (issue 21's last part, for residents): each rare name, typed as a resident
/// would (as kept, as a roster had it, or without its variation selector), finds the person's
/// payable, and the answer shows the name masked per perceived character; the receipt's
/// verification page shows the payer masked the same way.
#[tokio::test]
async fn the_citizen_site_finds_and_shows_rare_names() {
    on_each_test_db(|db| async move {
        let w = world(&db).await;
        let ids = w.register_every_name(6).await;
        let r = w
            .send(
                reqwest::Method::POST,
                "/api/v1/regions/320600/fee-years/2021/assessment",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let look_up = |id: String, name: String| {
            let client = w.server.client.clone();
            let url = w.server.url("/lookup");
            async move {
                let r = client
                    .post(url)
                    .form(&[("id_number", id), ("name", name)])
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.text().await.unwrap())
            }
        };
        // At most 20 look-ups a minute from one address: each name as kept, then as typed
        // where that differs, then without its selector where that differs (18 in all).
        for (i, (typed, kept)) in NAMES.iter().enumerate() {
            let mut ways = vec![(*kept).to_owned()];
            for other in [(*typed).to_owned(), without_selectors(kept)] {
                if !ways.contains(&other) {
                    ways.push(other);
                }
            }
            for name in ways {
                let (status, page) = look_up(ids[i].clone(), name.clone()).await;
                assert_eq!(status, StatusCode::OK, "{name}");
                assert!(
                    page.contains(&format!("查询结果：{}", masked(kept))),
                    "{name} not found or not masked as {}: {page}",
                    masked(kept)
                );
                assert!(
                    page.contains("2021年度") && page.contains("未缴费"),
                    "{name}"
                );
            }
        }
        // Paid through a channel, the Ext B name's receipt verifies with the payer masked.
        let (_, kept) = NAMES[1];
        let found = w.search(&ids[1], kept).await;
        let payable = &found.payables[0];
        let report = w
            .bank
            .report_payment(&ReportPaymentRequest::for_payables(
                "RARE-CITIZEN-1",
                vec![payable.payable_id.clone()],
                payable.amount,
                paid_at(),
            ))
            .await
            .unwrap();
        let receipt = &report.receipts[0];
        let page = w
            .server
            .client
            .get(w.server.url(&format!(
                "/receipts/verify?code={}&number={}&check_code={}",
                receipt.receipt_code, receipt.receipt_number, receipt.check_code
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("票据有效"), "{page}");
        assert!(page.contains(&masked(kept)), "{page}");
        assert!(!page.contains(kept), "the payer's name is masked");
    })
    .await;
}
