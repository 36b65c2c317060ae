//! The console's campaign pages (issue 16, group A) as a browser meets them, on both backends:
//! 名册导入 (a good roster, a roster with bad rows and their codes, CSRF on the multipart form,
//! bad files beside the field), 核定 (the administrator's run and its refusals), 未缴名单 (a
//! station operator's own station only, masked, paginated, exported as XLSX within its bound
//! and audited).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use reqwest::header::COOKIE;
use reqwest::StatusCode;
use yibao_console::jobs::JobWait;
use yibao_console::pages::unpaid::{ExportLimit, PAGE_SIZE};
use yibao_domain::{FeeYear, IdNumber, RegionCode, StationCode};
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::console::{post_multipart, post_multipart_from, ConsoleSession, Page, Part};
use yibao_tests::{make_id, on_each_backend, TestServer};

/// 2026-11-02 10:00 in Beijing: inside the demo's 2027 window.
fn clock() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap())
}

const ADMIN: (&str, &str) = ("admin", "yibao-demo-admin");
const STATION: (&str, &str) = ("nt-st01", "yibao-demo-station");
const TAX: (&str, &str) = ("nt-tax", "yibao-demo-tax");

const HEADER: &str = "姓名,身份证号码,参保地区,人员类别,户籍类型,居住证起始日期,学校名称,联系电话,服务站,职工医保,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额";

async fn demo(storage: &Arc<dyn Storage>) {
    yibao::demo::load(storage.as_ref()).await.unwrap();
    yibao::demo::load_people(storage.as_ref(), clock().today())
        .await
        .unwrap();
}

async fn server(storage: Arc<dyn Storage>) -> TestServer {
    TestServer::start(storage, clock(), ServerSettings::default()).await
}

/// Uploads `csv` as `file_name` through the page's form, the token first.
async fn upload(session: &ConsoleSession, file_name: &str, bytes: &[u8]) -> Page {
    post_multipart(
        session,
        "/console/roster",
        &[
            Part::Text("_csrf", &session.csrf),
            Part::Text("fee_year", ""),
            Part::File("file", file_name, bytes),
        ],
        None,
    )
    .await
}

fn row(name: &str, id: &str, station: &str, employee: &str) -> String {
    format!("{name},{id},320600,居民,本地户籍,,,13805139999,{station},{employee},,,,,")
}

fn roster(rows: &[String]) -> Vec<u8> {
    format!("\u{feff}{HEADER}\n{}\n", rows.join("\n")).into_bytes()
}

/// The same rows as an XLSX workbook, every cell text (as a clerk's Excel keeps ID numbers).
fn workbook(rows: &[String]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("花名册").unwrap();
    let lines = std::iter::once(HEADER.to_owned()).chain(rows.iter().cloned());
    for (r, line) in lines.enumerate() {
        for (c, cell) in line.split(',').enumerate() {
            if !cell.is_empty() {
                sheet
                    .write_string(u32::try_from(r).unwrap(), u16::try_from(c).unwrap(), cell)
                    .unwrap();
            }
        }
    }
    book.save_to_buffer().unwrap()
}

async fn stored(storage: &Arc<dyn Storage>, id: &str) -> bool {
    let id = IdNumber::parse(id, clock().today()).unwrap().id_number;
    storage
        .get_person(RegionCode::parse("320600").unwrap(), &id)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_station_clerk_uploads_rosters_and_sees_every_rejected_row() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        let s = server(storage.clone()).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        let form = clerk.get("/console/roster").await;
        assert_eq!(form.status, StatusCode::OK);
        form.expect_text("enctype=\"multipart/form-data\"")
            .expect_text("64 MB")
            .expect_text("href=\"/console/roster\"");
        let template = clerk.get("/console/roster/template.csv").await;
        assert_eq!(template.status, StatusCode::OK);
        assert!(template.body.contains("身份证号码"), "{}", template.body);

        // A good roster: both rows enrolled, nothing rejected.
        let good = [
            make_id("320602", "1985-03-12", 901),
            make_id("320602", "1990-07-18", 902),
        ];
        let page = upload(
            &clerk,
            "good.csv",
            &roster(&[
                row("王芳", &good[0], "ST-01", ""),
                row("周杰", &good[1], "ST-01", ""),
            ]),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text("导入结果：good.csv")
            .expect_text("<strong id=\"accepted-count\">2</strong>")
            .expect_text("<strong id=\"rejected-count\">0</strong>")
            .expect_no_text("未通过的行");
        assert!(stored(&storage, &good[0]).await && stored(&storage, &good[1]).await);

        // A roster with bad rows: a wrong check digit, another station's row (out of the
        // clerk's scope), an employee insured; the good row goes in.
        let fine = make_id("320602", "1979-06-06", 903);
        let mut broken = make_id("320602", "1988-11-11", 904);
        let last = if broken.ends_with('0') { "1" } else { "0" };
        broken.replace_range(17.., last);
        let other_station = make_id("320602", "1970-01-01", 905);
        let employee = make_id("320602", "1982-02-02", 906);
        let page = upload(
            &clerk,
            "bad.csv",
            &roster(&[
                row("陈静", &broken, "ST-01", ""),
                row("孙丽", &fine, "ST-01", ""),
                row("赵磊", &other_station, "ST-02", ""),
                row("钱勇", &employee, "ST-01", "是"),
            ]),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text("共读取 4 行")
            .expect_text("<strong id=\"accepted-count\">1</strong>")
            .expect_text("<strong id=\"rejected-count\">3</strong>")
            .expect_text("未通过的行")
            .expect_text("<td class=\"num\">2</td><td>身份证号码</td><td class=\"mono\">INVALID_ID_NUMBER</td>")
            .expect_text("<td class=\"num\">4</td><td>服务站</td><td class=\"mono\">FORBIDDEN</td>")
            .expect_text("本服务站（ST-01）")
            .expect_text("<td class=\"mono\">EMPLOYEE_INSURED</td>");
        assert!(stored(&storage, &fine).await);
        assert!(!stored(&storage, &other_station).await);

        // A workbook (XLSX) is read as the API reads it: the roster sheet by its header.
        let in_workbook = make_id("320602", "1991-05-05", 907);
        let page = upload(
            &clerk,
            "roster.xlsx",
            &workbook(&[row("郑爽", &in_workbook, "ST-01", "")]),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text("<strong id=\"accepted-count\">1</strong>")
            .expect_text("读取的工作表")
            .expect_text("Excel 工作簿");
        assert!(stored(&storage, &in_workbook).await);

        // Bad files: a message beside the field, never a 500.
        let page = upload(&clerk, "roster.txt", b"abc").await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        page.expect_text("id=\"file-error\"")
            .expect_text(".csv 或 .xlsx");
        let page = upload(&clerk, "roster.xlsx", b"not a workbook at all").await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
        page.expect_text("id=\"file-error\"");
        let page = upload(&clerk, "roster.csv", "名字,号码\n张三,1\n".as_bytes()).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
        page.expect_text("id=\"file-error\"").expect_text("身份证号码");
        let page = upload(&clerk, "empty.csv", b"").await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        page.expect_text("请选择要上传的花名册文件");
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[
                Part::Text("_csrf", &clerk.csrf),
                Part::Text("fee_year", "二〇二七"),
                Part::File("file", "good.csv", &roster(&[row("王芳", &good[0], "ST-01", "")])),
            ],
            None,
        )
        .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        page.expect_text("id=\"fee_year-error\"");

        // The tax office changes nobody: no upload page.
        let tax = ConsoleSession::sign_in(&s, TAX.0, TAX.1).await;
        assert_eq!(tax.get("/console/roster").await.status, StatusCode::FORBIDDEN);
        tax.get("/console/").await.expect_no_text("href=\"/console/roster\"");
    })
    .await;
}

#[tokio::test]
async fn the_upload_form_is_refused_without_this_sessions_token() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        let s = server(storage.clone()).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        let id = make_id("320602", "1985-03-12", 911);
        let csv = roster(&[row("王芳", &id, "ST-01", "")]);
        let refused = |page: &Page| {
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
            page.expect_text("请求无法确认");
        };
        // No token at all.
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[Part::File("file", "r.csv", &csv)],
            None,
        )
        .await;
        refused(&page);
        // A wrong token in the field.
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[
                Part::Text("_csrf", "0123456789abcdef0123456789abcdef"),
                Part::File("file", "r.csv", &csv),
            ],
            None,
        )
        .await;
        refused(&page);
        // The right token, but after the file: the file is not read.
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[
                Part::File("file", "r.csv", &csv),
                Part::Text("_csrf", &clerk.csrf),
            ],
            None,
        )
        .await;
        refused(&page);
        // A wrong header.
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[Part::File("file", "r.csv", &csv)],
            Some("ffffffffffffffffffffffffffffffff"),
        )
        .await;
        refused(&page);
        // Another session's token.
        let admin = ConsoleSession::sign_in(&s, ADMIN.0, ADMIN.1).await;
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[
                Part::Text("_csrf", &admin.csrf),
                Part::File("file", "r.csv", &csv),
            ],
            None,
        )
        .await;
        refused(&page);
        // The right token from another site (a form posted cross-origin).
        let page = post_multipart_from(
            &clerk,
            &[
                Part::Text("_csrf", &clerk.csrf),
                Part::File("file", "r.csv", &csv),
            ],
            "https://evil.example",
        )
        .await;
        refused(&page);
        assert!(!stored(&storage, &id).await, "nothing was imported");
        // The right header (htmx) is enough without the field.
        let page = post_multipart(
            &clerk,
            "/console/roster",
            &[Part::File("file", "r.csv", &csv)],
            Some(&clerk.csrf),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(stored(&storage, &id).await);
    })
    .await;
}

#[tokio::test]
async fn the_administrator_assesses_a_region_and_a_station_operator_cannot() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        let s = server(storage.clone()).await;
        let admin = ConsoleSession::sign_in(&s, ADMIN.0, ADMIN.1).await;
        // Three new people enrolled by a roster, not yet assessed.
        let ids: Vec<String> = (921..924)
            .map(|n| make_id("320602", "1980-01-01", n))
            .collect();
        let rows: Vec<String> = ids.iter().map(|id| row("吴敏", id, "ST-01", "")).collect();
        let page = upload(&admin, "new.csv", &roster(&rows)).await;
        page.expect_text("<strong id=\"accepted-count\">3</strong>");

        let form = admin.get("/console/assessment").await;
        assert_eq!(form.status, StatusCode::OK);
        form.expect_text("南通市").expect_text("2027");
        let done = admin
            .post(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "2027")],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        done.expect_text("核定完成")
            .expect_text("<strong id=\"created-count\">3</strong>")
            // The demo's 2027 adult contribution is 460 元.
            .expect_text("1,380.00 元");
        // Again: nothing more.
        let again = admin
            .post(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "2027")],
            )
            .await;
        again.expect_text("<strong id=\"created-count\">0</strong>");
        let audit = storage.list_audit(20).await.unwrap();
        assert!(audit.iter().any(|a| a.entry.action == "assessment.run"
            && a.entry.detail["via"] == "console"
            && a.entry.detail["created"] == 3));

        // Errors beside the fields.
        let unknown = admin
            .post(
                "/console/assessment",
                &[("region", "320700"), ("fee_year", "2027")],
            )
            .await;
        assert_eq!(
            unknown.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            unknown.body
        );
        unknown
            .expect_text("id=\"region-error\"")
            .expect_text("未在本系统登记");
        let nonsense = admin
            .post(
                "/console/assessment",
                &[("region", "南通"), ("fee_year", "2027")],
            )
            .await;
        assert_eq!(nonsense.status, StatusCode::UNPROCESSABLE_ENTITY);
        nonsense.expect_text("id=\"region-error\"");
        let no_policy = admin
            .post(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "2031")],
            )
            .await;
        assert_eq!(
            no_policy.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            no_policy.body
        );
        no_policy
            .expect_text("id=\"fee_year-error\"")
            .expect_text("尚未设置 2031 年度的缴费政策");
        let bad_year = admin
            .post(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "明年")],
            )
            .await;
        assert_eq!(bad_year.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad_year.expect_text("id=\"fee_year-error\"");
        // Without the token: refused.
        let forged = admin
            .post_raw(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "2027")],
                false,
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // A station operator: no menu entry, 403 on the page and the form.
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        clerk
            .get("/console/")
            .await
            .expect_no_text("href=\"/console/assessment\"");
        assert_eq!(
            clerk.get("/console/assessment").await.status,
            StatusCode::FORBIDDEN
        );
        let refused = clerk
            .post(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "2027")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        refused.expect_text("无权");
    })
    .await;
}

#[tokio::test]
async fn the_unpaid_list_is_the_stations_own_masked_paged_and_exported_within_its_bound() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        let region = RegionCode::parse("320600").unwrap();
        let year = FeeYear::new(2027).unwrap();
        let owing = |station: &'static str| {
            let storage = storage.clone();
            async move {
                storage
                    .standing(
                        region,
                        year,
                        Some(&StationCode::parse(station).unwrap()),
                        100_000,
                    )
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|r| yibao_storage::records::standing_owes(&r.standing))
                    .collect::<Vec<_>>()
            }
        };
        let own = owing("ST-01").await;
        let other = owing("ST-02").await;
        assert!(
            own.len() > PAGE_SIZE,
            "the demo gives ST-01 more than a page"
        );
        // A console whose exports hold at most 10 rows, to see the bound.
        let state = AppState::new(storage.clone(), clock());
        let console = yibao_console::router(yibao_console::CookiePolicy::default())
            .layer(axum::Extension(ExportLimit(10)));
        let small = TestServer::start_with_console(state, ServerSettings::default(), console).await;
        let s = server(storage.clone()).await;

        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        clerk
            .get("/console/")
            .await
            .expect_text("href=\"/console/unpaid\"");
        let page = clerk.get("/console/unpaid?fee_year=2027").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text(&format!(
            "<strong id=\"unpaid-total\">{}</strong>",
            own.len()
        ))
        .expect_text("第 1 / ")
        .expect_text("rel=\"next\"")
        .expect_no_text("<td role=\"cell\" data-label=\"服务站\">ST-02</td>");
        assert_eq!(page.body.matches(">查看档案</a>").count(), PAGE_SIZE);
        // Masked: neither the full ID number nor the name of anyone on the page.
        for r in &own {
            page.expect_no_text(r.id_number.as_str());
        }
        let first = own
            .iter()
            .find(|r| page.body.contains(&r.id_number.masked()))
            .expect("a masked ID number of the station's unpaid");
        let link = page
            .link_starting("/console/persons/320600/r.")
            .expect("a sealed link");
        let record = clerk.get(&link).await;
        assert_eq!(record.status, StatusCode::OK);
        let _ = first;
        let second = clerk.get("/console/unpaid?fee_year=2027&page=2").await;
        second.expect_text("第 2 / ").expect_text("rel=\"prev\"");
        // The totals say when they were counted; the last page has no next one, and a page past
        // the end shows the first.
        page.expect_text("统计于 ");
        let pages = own.len().div_ceil(PAGE_SIZE);
        let last = clerk
            .get(&format!("/console/unpaid?fee_year=2027&page={pages}"))
            .await;
        last.expect_text(&format!("第 {pages} / {pages} 页"))
            .expect_no_text("rel=\"next\"");
        assert_eq!(
            last.body.matches(">查看档案</a>").count(),
            own.len() - (pages - 1) * PAGE_SIZE
        );
        clerk
            .get(&format!("/console/unpaid?fee_year=2027&page={}", pages + 5))
            .await
            .expect_text(&format!("第 1 / {pages} 页"));

        // Another station's list: 403, on the page and the export.
        let theirs = clerk
            .get("/console/unpaid?fee_year=2027&station=ST-02")
            .await;
        assert_eq!(theirs.status, StatusCode::FORBIDDEN, "{}", theirs.body);
        for r in other.iter().take(5) {
            theirs.expect_no_text(r.id_number.as_str());
        }
        let tampered = clerk
            .get("/console/unpaid?fee_year=2027&station=%3Cx%3E")
            .await;
        assert_eq!(tampered.status, StatusCode::FORBIDDEN);
        let export = clerk
            .get("/console/unpaid/export?fee_year=2027&station=ST-02")
            .await;
        assert_eq!(export.status, StatusCode::FORBIDDEN);
        // A bad year beside its field.
        let bad = clerk.get("/console/unpaid?fee_year=abc").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("id=\"fee_year-error\"");

        // The export: the API's XLSX with every unpaid person of the station, audited.
        let response = clerk
            .client
            .get(s.url("/console/unpaid/export?fee_year=2027"))
            .header(COOKIE, &clerk.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml"));
        let bytes = response.bytes().await.unwrap();
        let sheet = yibao_tests::xlsx::sheet_of(&bytes);
        assert!(
            sheet.1.iter().any(|s| s == own[0].id_number.as_str()),
            "full ID numbers in the export"
        );
        assert!(sheet
            .1
            .iter()
            .any(|s| s.contains(&format!("合计（{} 人）", own.len()))));
        let audit = storage.list_audit(20).await.unwrap();
        let entry = audit
            .iter()
            .find(|a| a.entry.action == "read.unpaid_list")
            .expect("the export is audited");
        assert_eq!(entry.entry.actor, STATION.0);
        assert_eq!(entry.entry.detail["via"], "console");
        assert_eq!(entry.entry.detail["station"], "ST-01");
        assert_eq!(entry.entry.detail["rows"], own.len());

        // The bound: more rows than the limit is refused, with what to do instead.
        let small_clerk = ConsoleSession::sign_in(&small, STATION.0, STATION.1).await;
        let page = small_clerk.get("/console/unpaid?fee_year=2027").await;
        page.expect_text("不能一次导出")
            .expect_no_text("/console/unpaid/export");
        let refused = small_clerk
            .get("/console/unpaid/export?fee_year=2027")
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        refused.expect_text("超过一次导出的上限 10 人");

        // The tax office reads its region's lists, any station.
        let tax = ConsoleSession::sign_in(&s, TAX.0, TAX.1).await;
        let theirs = tax.get("/console/unpaid?station=ST-02&fee_year=2027").await;
        assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
        theirs
            .expect_text(&format!(
                "<strong id=\"unpaid-total\">{}</strong>",
                other.len()
            ))
            .expect_text("id=\"station\"")
            .expect_no_text("id=\"region\"");

        // The administrator chooses region and station.
        let admin = ConsoleSession::sign_in(&s, ADMIN.0, ADMIN.1).await;
        let theirs = admin
            .get("/console/unpaid?region=320600&station=ST-02&fee_year=2027")
            .await;
        assert_eq!(theirs.status, StatusCode::OK);
        theirs
            .expect_text(&format!(
                "<strong id=\"unpaid-total\">{}</strong>",
                other.len()
            ))
            .expect_text("<td role=\"cell\" data-label=\"服务站\">ST-02</td>")
            .expect_no_text("<td role=\"cell\" data-label=\"服务站\">ST-01</td>");
        let bad_station = admin
            .get("/console/unpaid?region=320600&station=%3Cx%3E&fee_year=2027")
            .await;
        assert_eq!(bad_station.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad_station.expect_text("id=\"station-error\"");
    })
    .await;
}

#[tokio::test]
async fn a_roster_over_the_apis_limit_is_refused_beside_the_field() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        let s = server(storage.clone()).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        let mut csv = roster(&[row(
            "王芳",
            &make_id("320602", "1985-03-12", 931),
            "ST-01",
            "",
        )]);
        csv.resize(yibao_console::pages::roster::MAX_ROSTER_BYTES + 1, b'\n');
        let page = upload(&clerk, "big.csv", &csv).await;
        assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
        page.expect_text("id=\"file-error\"").expect_text("64 MB");
        // Past the whole form's limit too: the body stops being read, the same answer.
        csv.resize(
            yibao_console::pages::roster::MAX_ROSTER_BODY_BYTES + 1,
            b'\n',
        );
        let page = upload(&clerk, "bigger.csv", &csv).await;
        assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
        page.expect_text("id=\"file-error\"");
    })
    .await;
}

/// Creates a station operator of 320600 for `station` with password `station-password-2`.
async fn station_operator(storage: &Arc<dyn Storage>, username: &str, station: &str) {
    use yibao_server::services::staff::{create_staff, NewStaff, Password};
    create_staff(
        storage.as_ref(),
        NewStaff {
            temporary_password: false,
            username: username.into(),
            display_name: "其他服务站经办".into(),
            role: yibao_storage::Role::StationOperator,
            region: Some(RegionCode::parse("320600").unwrap()),
            station: Some(StationCode::parse(station).unwrap()),
            password: Password::new("station-password-2".into()).unwrap(),
        },
        "test",
    )
    .await
    .unwrap();
}

/// 下载未通过明细: the rejection file kept for the uploader's scope (and nobody else's), with
/// the roster's own columns and each rejected row's cells; corrected, it is uploaded again and
/// the fixed row is taken. Downloading is audited; the background pruning deletes it after 30
/// days.
#[tokio::test]
async fn the_rejection_file_is_downloaded_corrected_and_uploaded_again() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        station_operator(&storage, "nt-st02", "ST-02").await;
        let s = server(storage.clone()).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        let fine = make_id("320602", "1979-06-06", 913);
        let fixed = make_id("320602", "1988-11-11", 914);
        let mut broken = fixed.clone();
        let last = if broken.ends_with('0') { "1" } else { "0" };
        broken.replace_range(17.., last);
        let employee = make_id("320602", "1982-02-02", 916);
        let page = upload(
            &clerk,
            "bad.csv",
            &roster(&[
                row("陈静", &broken, "ST-01", ""),
                row("孙丽", &fine, "ST-01", ""),
                row("钱勇", &employee, "ST-01", "是"),
            ]),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text("<strong id=\"rejected-count\">2</strong>")
            .expect_text("下载未通过明细");
        let link = page
            .link_starting("/console/roster/rejections/")
            .expect("a download link");

        let file = clerk.get(&link).await;
        assert_eq!(file.status, StatusCode::OK, "{}", file.body);
        assert!(
            file.content_type.starts_with("text/csv"),
            "{}",
            file.content_type
        );
        assert!(
            file.body.starts_with('\u{feff}'),
            "a byte-order mark for Excel"
        );
        let lines: Vec<&str> = file.body.lines().collect();
        assert_eq!(
            lines[0],
            format!("\u{feff}行号,错误列,错误代码,错误原因,{HEADER}")
        );
        assert_eq!(lines.len(), 3, "{}", file.body);
        assert!(
            lines[1].starts_with("2,身份证号码,INVALID_ID_NUMBER,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains(&format!(",陈静,\"=\"\"{broken}\"\"\",320600,")),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("4,"), "{}", lines[2]);
        assert!(
            lines[2].contains("EMPLOYEE_INSURED") && lines[2].contains("钱勇"),
            "{}",
            lines[2]
        );
        let audited = storage.list_audit(20).await.unwrap();
        assert!(
            audited
                .iter()
                .any(|a| a.entry.action == "read.roster_rejections" && a.entry.actor == STATION.0),
            "downloading is audited"
        );

        // Nobody else reads it: another station's clerk, the centre, the tax office.
        let other = ConsoleSession::sign_in(&s, "nt-st02", "station-password-2").await;
        assert_eq!(other.get(&link).await.status, StatusCode::NOT_FOUND);
        let admin = ConsoleSession::sign_in(&s, ADMIN.0, ADMIN.1).await;
        assert_eq!(admin.get(&link).await.status, StatusCode::NOT_FOUND);
        let tax = ConsoleSession::sign_in(&s, TAX.0, TAX.1).await;
        assert_eq!(tax.get(&link).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            clerk
                .get("/console/roster/rejections/imp-nothing")
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // The clerk corrects the ID number and uploads the file as it is: the four added
        // columns are ignored, the fixed row is taken, the employee still refused.
        let corrected = file.body.replace(&broken, &fixed);
        let again = upload(&clerk, "bad.rejected.csv", corrected.as_bytes()).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        again
            .expect_text("共读取 2 行")
            .expect_text("<dt>新登记参保</dt><dd>1</dd>")
            .expect_text("<strong id=\"rejected-count\">1</strong>")
            .expect_no_text("未使用的列");
        assert!(stored(&storage, &fixed).await);

        // Kept 30 days: the background round 29 days on keeps it, 31 days on deletes it.
        let day = 86_400;
        let tick_at = |days: i64| {
            let storage = storage.clone();
            async move {
                let at = Utc
                    .timestamp_opt(clock().now().timestamp() + days * day, 0)
                    .unwrap();
                let state = AppState::new(storage, Clock::fixed(at));
                yibao_server::background::tick(&state, None, &reqwest::Client::new()).await;
            }
        };
        tick_at(29).await;
        assert_eq!(clerk.get(&link).await.status, StatusCode::OK);
        tick_at(31).await;
        assert!(storage
            .get_rejection_file("320600", link.rsplit('/').next().unwrap())
            .await
            .unwrap()
            .is_none());
        assert_eq!(clerk.get(&link).await.status, StatusCode::NOT_FOUND);
    })
    .await;
}

/// The unpaid list shows each person's phone (masked) and latest recorded reason; a station
/// records that a resident was told (date, how, signed confirmation) and the reason from the
/// configured list, errors beside the fields, history kept, writes audited; another station,
/// the tax office and a form without the session's token are refused.
#[tokio::test]
async fn a_station_records_follow_ups_of_its_unpaid_with_reasons_shown_on_the_list() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        station_operator(&storage, "nt-st02", "ST-02").await;
        let s = server(storage.clone()).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        let region = RegionCode::parse("320600").unwrap();
        let year = FeeYear::new(2027).unwrap();
        let own = storage
            .unpaid_page(
                region,
                year,
                Some(&StationCode::parse("ST-01").unwrap()),
                0,
                PAGE_SIZE,
            )
            .await
            .unwrap();
        assert_eq!(own.rows.len(), PAGE_SIZE);
        let list = clerk.get("/console/unpaid?fee_year=2027").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        list.expect_text("<th scope=\"col\" role=\"columnheader\">联系电话</th>")
            .expect_text("<th scope=\"col\" role=\"columnheader\">未缴原因</th>");
        let with_phone = own
            .rows
            .iter()
            .find(|r| r.row.phone.is_some())
            .expect("demo residents have phones");
        let phone = with_phone.row.phone.clone().unwrap();
        list.expect_no_text(&phone)
            .expect_text(&yibao_console::pages::unpaid::mask_phone(&phone));
        assert_eq!(list.body.matches(">记录告知</a>").count(), PAGE_SIZE);

        // The first person of the page: their follow-up form.
        let first = &own.rows[0].row;
        let link = list
            .link_starting("/console/unpaid/follow-up/320600/r.")
            .expect("a follow-up link");
        let form = clerk.get(&link).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        form.expect_text("记录告知情况")
            .expect_text("还没有告知记录")
            .expect_text("<option value=\"外出务工\">外出务工</option>")
            .expect_text("<option value=\"wechat\">微信</option>")
            .expect_no_text(first.id_number.as_str());
        let action = form
            .link_starting("/console/unpaid/follow-up/320600/r.")
            .expect("the form's action");

        // Wrong fields: each message beside its field, nothing stored.
        let bad = clerk
            .post(
                &action,
                &[
                    ("fee_year", "2027"),
                    ("told_on", "2099-01-01"),
                    ("told_how", "fax"),
                    ("reason", "不想说"),
                    ("note", &"很".repeat(201)),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        bad.expect_text("id=\"told_on-error\"")
            .expect_text("id=\"told_how-error\"")
            .expect_text("id=\"reason-error\"")
            .expect_text("id=\"note-error\"");
        assert!(storage
            .follow_ups(region, year, &first.id_number)
            .await
            .unwrap()
            .is_empty());

        // Without the session's token: refused, nothing stored.
        let forged = clerk
            .post_raw(
                &action,
                &[
                    ("fee_year", "2027"),
                    ("told_on", "2026-11-01"),
                    ("told_how", "phone"),
                    ("reason", "外出务工"),
                ],
                false,
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // Told by phone, confirmation scanned, working elsewhere; then again, insured elsewhere.
        let saved = clerk
            .post(
                &action,
                &[
                    ("fee_year", "2027"),
                    ("told_on", "2026-11-01"),
                    ("told_how", "phone"),
                    ("signed_scanned", "1"),
                    ("reason", "外出务工"),
                    ("note", "家属代接"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let again = clerk
            .post(
                &action,
                &[
                    ("fee_year", "2027"),
                    ("told_on", "2026-11-02"),
                    ("told_how", "visit"),
                    ("reason", "已在外地参保"),
                ],
            )
            .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
        let history = storage
            .follow_ups(region, year, &first.id_number)
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].seq, 2);
        assert_eq!(history[0].follow_up.reason, "已在外地参保");
        assert!(history[1].follow_up.signed_scanned);
        let form = clerk
            .get(&format!("{action}?fee_year=2027&done=saved"))
            .await;
        form.expect_text("告知记录已保存")
            .expect_text("<td role=\"cell\" data-label=\"原因\">已在外地参保</td>")
            .expect_text("<td role=\"cell\" data-label=\"原因\">外出务工</td>")
            .expect_text("<td role=\"cell\" data-label=\"备注\">家属代接</td>")
            .expect_text("已扫描");
        let list = clerk.get("/console/unpaid?fee_year=2027").await;
        list.expect_text("<td role=\"cell\" data-label=\"未缴原因\">已在外地参保</td>")
            .expect_text("2026-11-02 上门");
        let audited = storage.list_audit(50).await.unwrap();
        assert_eq!(
            audited
                .iter()
                .filter(|a| a.entry.action == "unpaid.follow_up" && a.entry.actor == STATION.0)
                .count(),
            2
        );

        // The export carries the reason and how they were told.
        let response = clerk
            .client
            .get(s.url("/console/unpaid/export?fee_year=2027"))
            .header(COOKIE, &clerk.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let sheet = yibao_tests::xlsx::sheet_of(&response.bytes().await.unwrap());
        assert!(
            sheet
                .1
                .iter()
                .any(|c| c == "未缴费：已在外地参保（2026-11-02 上门告知）"
                    || c == "已参保未核定：已在外地参保（2026-11-02 上门告知）"),
            "{:?}",
            sheet
                .1
                .iter()
                .filter(|c| c.contains("已在外地参保"))
                .collect::<Vec<_>>()
        );
        assert!(
            sheet.1.iter().any(|c| c == &phone),
            "full phones in the export"
        );

        // Another station's clerk and the tax office may not record (nor the raw ID in a URL
        // lead anywhere else).
        let raw = format!(
            "/console/unpaid/follow-up/320600/{}",
            first.id_number.as_str()
        );
        let other = ConsoleSession::sign_in(&s, "nt-st02", "station-password-2").await;
        assert_eq!(
            other.get(&format!("{raw}?fee_year=2027")).await.status,
            StatusCode::FORBIDDEN
        );
        let posted = other
            .post(
                &raw,
                &[
                    ("fee_year", "2027"),
                    ("told_on", "2026-11-01"),
                    ("told_how", "phone"),
                    ("reason", "外出务工"),
                ],
            )
            .await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN);
        let tax = ConsoleSession::sign_in(&s, TAX.0, TAX.1).await;
        assert_eq!(
            tax.get(&format!("{raw}?fee_year=2027")).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            storage
                .follow_ups(region, year, &first.id_number)
                .await
                .unwrap()
                .len(),
            2
        );
    })
    .await;
}

/// 未参保名单上报: a station submits its list of the uninsured with reasons once (a second time is
/// refused beside the button); the centre sees which stations have, with the due date (31
/// December before the fee year) and, after it, who is overdue; audited; CSRF.
#[tokio::test]
async fn a_station_submits_its_uninsured_list_once_and_the_centre_sees_who_has() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        let region = RegionCode::parse("320600").unwrap();
        let year = FeeYear::new(2027).unwrap();
        let st01 = StationCode::parse("ST-01").unwrap();
        let owing = storage
            .unpaid_page(region, year, Some(&st01), 0, 1)
            .await
            .unwrap();
        let first = owing.rows[0].row.clone();
        // How many the station's unpaid list holds, as the standing list says.
        let on_list = storage
            .standing(region, year, Some(&st01), 1_000_000)
            .await
            .unwrap()
            .iter()
            .filter(|r| yibao_storage::records::standing_owes(&r.standing))
            .count() as i64;
        storage
            .add_follow_up(&yibao_storage::records::NewFollowUp {
                region,
                fee_year: year,
                id_number: first.id_number,
                station_code: first.station_code.clone(),
                told_on: clock().today(),
                told_how: yibao_domain::unpaid::NoticeMethod::Visit,
                signed_scanned: true,
                reason: "参军".into(),
                note: None,
                recorded_by: STATION.0.into(),
                recorded_at: 1,
            })
            .await
            .unwrap();
        let s = server(storage.clone()).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        clerk
            .get("/console/")
            .await
            .expect_text("href=\"/console/uninsured\"");
        let page = clerk.get("/console/uninsured?fee_year=2027").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text("<strong>2026-12-31</strong>")
            .expect_text("尚未提交")
            .expect_text(&format!("<strong>{}</strong> 人", on_list))
            .expect_no_text("已过截止日期");

        // Without the session's token: refused, nothing submitted.
        let forged = clerk
            .post_raw("/console/uninsured/submit", &[("fee_year", "2027")], false)
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(storage
            .uninsured_submissions(region, year)
            .await
            .unwrap()
            .is_empty());

        let done = clerk
            .post("/console/uninsured/submit", &[("fee_year", "2027")])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let page = clerk
            .get("/console/uninsured?fee_year=2027&done=submitted")
            .await;
        page.expect_text("已提交中心")
            .expect_text(&format!("共 {} 人，其中 1 人已记录原因", on_list))
            .expect_no_text("提交未参保名单及原因</button>");
        let again = clerk
            .post("/console/uninsured/submit", &[("fee_year", "2027")])
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        again
            .expect_text("id=\"submit-error\"")
            .expect_text("不能重复提交");
        let submitted = storage.uninsured_submissions(region, year).await.unwrap();
        assert_eq!(submitted.len(), 1);
        assert_eq!(submitted[0].station_code, "ST-01");
        assert_eq!(submitted[0].persons, on_list);
        assert_eq!(submitted[0].with_reason, 1);
        let audited = storage.list_audit(50).await.unwrap();
        assert_eq!(
            audited
                .iter()
                .filter(|a| a.entry.action == "uninsured.submit")
                .count(),
            1
        );

        // The centre sees which stations have submitted; the tax office reads, may not submit.
        let admin = ConsoleSession::sign_in(&s, ADMIN.0, ADMIN.1).await;
        let all = admin
            .get("/console/uninsured?region=320600&fee_year=2027")
            .await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.body);
        all.expect_text("<td role=\"cell\" data-label=\"服务站\"><a href=\"/console/uninsured/stations/ST-01?region=320600&amp;fee_year=2027\">ST-01</a></td><td role=\"cell\" data-label=\"状态\">已提交</td>")
            .expect_text("<td role=\"cell\" data-label=\"服务站\">ST-02</td><td role=\"cell\" data-label=\"状态\">未提交</td>")
            .expect_text("<span id=\"submitted-count\">1</span>")
            .expect_no_text("（逾期）");
        let tax = ConsoleSession::sign_in(&s, TAX.0, TAX.1).await;
        tax.get("/console/uninsured?fee_year=2027")
            .await
            .expect_text("<td role=\"cell\" data-label=\"服务站\"><a href=\"/console/uninsured/stations/ST-01?region=320600&amp;fee_year=2027\">ST-01</a></td><td role=\"cell\" data-label=\"状态\">已提交</td>");

        // The centre opens the list as submitted: masked, each reason; the whole of it as XLSX.
        let list = admin
            .get("/console/uninsured/stations/ST-01?region=320600&fee_year=2027")
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        list.expect_text(&format!(
            "<dd id=\"submitted-persons\">{}</dd>",
            on_list
        ))
        .expect_text("参军")
        .expect_text(&first.id_number.masked())
        .expect_no_text(first.id_number.as_str());
        let export = admin
            .get("/console/uninsured/stations/ST-01/export?region=320600&fee_year=2027")
            .await;
        assert_eq!(export.status, StatusCode::OK);
        assert!(export.content_type.contains("spreadsheetml"));
        let reads = storage.list_audit(50).await.unwrap();
        assert_eq!(
            reads
                .iter()
                .filter(|a| a.entry.action == "read.uninsured_list" && a.entry.actor == ADMIN.0)
                .count(),
            2,
            "opening and exporting the list are audited"
        );
        // The station sees its own; another station's, or one not submitted, is not shown.
        clerk
            .get("/console/uninsured/stations/ST-01?fee_year=2027")
            .await
            .expect_text("参军");
        let other = clerk
            .get("/console/uninsured/stations/ST-02?fee_year=2027")
            .await;
        assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.body);
        let none = admin
            .get("/console/uninsured/stations/ST-02?region=320600&fee_year=2027")
            .await;
        assert_eq!(none.status, StatusCode::NOT_FOUND);
        none.expect_text("还没有提交");
        let refused = tax
            .post("/console/uninsured/submit", &[("fee_year", "2027")])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        // After 31 December the stations that have not submitted are overdue.
        let late = TestServer::start(
            storage.clone(),
            Clock::fixed(Utc.with_ymd_and_hms(2027, 1, 5, 2, 0, 0).unwrap()),
            ServerSettings::default(),
        )
        .await;
        let admin = ConsoleSession::sign_in(&late, ADMIN.0, ADMIN.1).await;
        admin
            .get("/console/uninsured?region=320600&fee_year=2027")
            .await
            .expect_text("<td role=\"cell\" data-label=\"服务站\">ST-02</td><td role=\"cell\" data-label=\"状态\">未提交（逾期）</td>")
            .expect_text("已过截止日期");
    })
    .await;
}

/// The page's answer when htmx asks for a job's progress: the `HX-Refresh` header and the body.
async fn poll_progress(session: &ConsoleSession, path: &str) -> (StatusCode, bool, String) {
    let response = session
        .client
        .get(format!("{}{}", session.base_url, path))
        .header(COOKIE, &session.cookie)
        .header("hx-request", "true")
        .send()
        .await
        .expect("GET progress");
    let refresh = response.headers().get("hx-refresh").is_some();
    (
        response.status(),
        refresh,
        response.text().await.unwrap_or_default(),
    )
}

/// Follows a job's page until it shows a result (a few seconds at most on a small roster).
async fn job_result(session: &ConsoleSession, job: &str) -> Page {
    for _ in 0..600 {
        let page = session.get(job).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if !page.body.contains("id=\"job-progress\"") {
            return page;
        }
        page.expect_text(&format!("hx-get=\"{job}/progress\""));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the job at {job} did not finish in 30 s")
}

#[tokio::test]
async fn long_work_runs_in_the_background_and_shows_its_progress_to_whoever_started_it() {
    on_each_backend(|storage| async move {
        demo(&storage).await;
        // A console that never waits: every import and assessment goes to its progress page.
        let state = AppState::new(storage.clone(), clock());
        let console = yibao_console::router(yibao_console::CookiePolicy::default())
            .layer(axum::Extension(JobWait(std::time::Duration::ZERO)));
        let s = TestServer::start_with_console(state, ServerSettings::default(), console).await;
        let clerk = ConsoleSession::sign_in(&s, STATION.0, STATION.1).await;
        let admin = ConsoleSession::sign_in(&s, ADMIN.0, ADMIN.1).await;

        let ids: Vec<String> = (700..900)
            .map(|n| make_id("320602", "1981-02-03", n))
            .collect();
        let mut rows: Vec<String> = ids.iter().map(|id| row("郑伟", id, "ST-01", "")).collect();
        rows.push(row("郑伟", "12345", "ST-01", ""));
        let started = upload(&clerk, "big.csv", &roster(&rows)).await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let job = started.location.clone().expect("the job's page");
        assert!(job.starts_with("/console/roster/jobs/"), "{job}");

        // Someone else, even the administrator, does not see the clerk's import.
        let foreign = admin.get(&job).await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
        foreign.expect_text("只有上传的人能看");
        let (status, _, _) = poll_progress(&admin, &format!("{job}/progress")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let done = job_result(&clerk, &job).await;
        done.expect_text("导入结果：big.csv")
            .expect_text("<strong id=\"accepted-count\">200</strong>")
            .expect_text("<strong id=\"rejected-count\">1</strong>")
            .expect_text("下载未通过明细");
        for id in &ids[..3] {
            assert!(stored(&storage, id).await);
        }
        // Once done, htmx's question reloads the page, which shows the result.
        let (status, refresh, _) = poll_progress(&clerk, &format!("{job}/progress")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(refresh, "a finished job makes the page reload");
        let unknown = clerk.get("/console/roster/jobs/0123456789abcdef").await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);

        // A file that cannot be read still gets its message beside the field.
        let bad = upload(&clerk, "bad.csv", "姓名,电话\n张三,1\n".as_bytes()).await;
        // (Done before the page stopped waiting, it is shown at once.)
        let bad = match bad.location.as_deref() {
            Some(job) => job_result(&clerk, job).await,
            None => bad,
        };
        bad.expect_text("id=\"file-error\"");

        // The assessment of the 200 new people, as the administrator's job.
        let started = admin
            .post(
                "/console/assessment",
                &[("region", "320600"), ("fee_year", "2027")],
            )
            .await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let job = started.location.clone().expect("the job's page");
        assert!(job.starts_with("/console/assessment/jobs/"), "{job}");
        let foreign = clerk.get(&job).await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{}", foreign.body);
        let done = job_result(&admin, &job).await;
        done.expect_text("核定完成")
            .expect_text("<strong id=\"created-count\">200</strong>")
            // The form keeps the region that was assessed.
            .expect_text("<option value=\"320600\" selected>");
        let audit = storage.list_audit(20).await.unwrap();
        assert!(audit.iter().any(|a| a.entry.action == "assessment.run"
            && a.entry.detail["via"] == "console"
            && a.entry.detail["created"] == 200));
    })
    .await;
}
