//! The staff console's foundation as a browser meets it, on both backends: sign-in and its
//! throttling, the forced change of a temporary password, CSRF and the security headers, the
//! dashboard per role, and the person pages, including a station operator refused another
//! station's person on every page and fragment.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::json;
use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_server::{Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::console::{submit_login, ConsoleSession};
use yibao_tests::{on_each_backend, TestServer};

/// 2026-11-02 10:00 in Beijing: inside the demo's 2027 window.
fn clock() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap())
}

const ADMIN: (&str, &str) = ("admin", "yibao-demo-admin");
const STATION: (&str, &str) = ("nt-st01", "yibao-demo-station");
const TAX: (&str, &str) = ("nt-tax", "yibao-demo-tax");
const AUDITOR: (&str, &str) = ("auditor", "yibao-demo-auditor");

struct World {
    server: TestServer,
    storage: Arc<dyn Storage>,
    /// (ID number, name) of a 320600 resident of ST-01 (the operator's) and of ST-02.
    own: (String, String),
    other: (String, String),
}

async fn world(storage: Arc<dyn Storage>) -> World {
    yibao::demo::load(storage.as_ref()).await.unwrap();
    yibao::demo::load_people(storage.as_ref(), clock().today())
        .await
        .unwrap();
    let region = RegionCode::parse("320600").unwrap();
    let year = FeeYear::new(2027).unwrap();
    let person_of = |station: &'static str| {
        let storage = storage.clone();
        async move {
            let rows = storage
                .standing(region, year, Some(&StationCode::parse(station).unwrap()), 1)
                .await
                .unwrap();
            let row = rows.first().expect("a demo resident of the station");
            (row.id_number.as_str().to_owned(), row.name.clone())
        }
    };
    let own = person_of("ST-01").await;
    let other = person_of("ST-02").await;
    let server = TestServer::start(storage.clone(), clock(), ServerSettings::default()).await;
    World {
        server,
        storage,
        own,
        other,
    }
}

async fn sign_in(world: &World, who: (&str, &str)) -> ConsoleSession {
    ConsoleSession::sign_in(&world.server, who.0, who.1).await
}

#[tokio::test]
async fn signing_in_gives_a_strict_cookie_and_pages_forbid_inline_script() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(w.server.url("/console/login"))
            .form(&[("username", ADMIN.0), ("password", ADMIN.1)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let admin = sign_in(&w, ADMIN).await;
        let page = admin.get("/console/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.content_type.starts_with("text/html"));
        page.expect_text("征缴进度").expect_text("lang=\"zh-CN\"");
        let csp = page.csp.clone().expect("a Content-Security-Policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(!page.body.contains("<script>") && !page.body.contains(" onclick="));
        assert!(!admin.csrf.is_empty());
    })
    .await;
}

#[tokio::test]
async fn visitors_without_a_session_are_sent_to_sign_in() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client
            .get(w.server.url("/console/persons"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()["location"],
            "/console/login?next=/console/persons"
        );
        let r = client
            .get(w.server.url("/console/persons"))
            .header("hx-request", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["hx-redirect"],
            "/console/login?next=/console/persons"
        );
        let login = client
            .get(w.server.url("/console/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let body = login.text().await.unwrap();
        assert!(body.contains("用户名") && body.contains("密码"));
    })
    .await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_with_a_chinese_message() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (page, cookie) = submit_login(&w.server, STATION.0, "").await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        page.expect_text("请输入密码").expect_text("field-error");
        assert!(cookie.is_none());
        for _ in 0..5 {
            let (page, cookie) = submit_login(&w.server, STATION.0, "wrong-password-x").await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            page.expect_text("用户名或密码不正确");
            assert!(cookie.is_none());
        }
        let (page, cookie) = submit_login(&w.server, STATION.0, STATION.1).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        page.expect_text("15分钟内登录失败已达5次");
        assert!(
            cookie.is_none(),
            "a locked account does not sign in, right password or not"
        );
    })
    .await;
}

#[tokio::test]
async fn a_temporary_password_must_be_replaced_before_anything_else() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        // The administrator adds an account through the API: its password is temporary.
        let token: serde_json::Value = w
            .server
            .client
            .post(w.server.url("/api/v1/auth/login"))
            .json(&json!({"username": ADMIN.0, "password": ADMIN.1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = w
            .server
            .client
            .post(w.server.url("/api/v1/staff"))
            .bearer_auth(token["token"].as_str().unwrap())
            .json(&json!({"username": "new-clerk", "display_name": "新经办", "role": "station_operator",
                "region": "320600", "station": "ST-01", "password": "temporary-pass-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);

        let (page, cookie) = submit_login(&w.server, "new-clerk", "temporary-pass-1").await;
        assert_eq!(page.location.as_deref(), Some("/console/password"));
        let mut clerk = ConsoleSession {
            base_url: w.server.base_url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: cookie.unwrap(),
            csrf: String::new(),
        };
        let form = clerk.get("/console/password").await;
        form.expect_text("请先设置您自己的密码后再使用本系统");
        clerk.csrf = yibao_tests::console::csrf_in(&form.body).unwrap();
        let blocked = clerk.get("/console/persons").await;
        assert_eq!(blocked.location.as_deref(), Some("/console/password"));

        let wrong = clerk
            .post("/console/password", &[("current_password", "not-it-at-all"),
                ("new_password", "my-own-password-1"), ("confirm_password", "my-own-password-1")])
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        wrong.expect_text("current-error").expect_text("当前密码不正确");
        let mismatch = clerk
            .post("/console/password", &[("current_password", "temporary-pass-1"),
                ("new_password", "my-own-password-1"), ("confirm_password", "my-own-password-2")])
            .await;
        mismatch.expect_text("两次输入的新密码不一致");
        let short = clerk
            .post("/console/password", &[("current_password", "temporary-pass-1"),
                ("new_password", "short"), ("confirm_password", "short")])
            .await;
        short.expect_text("new-error");
        let done = clerk
            .post("/console/password", &[("current_password", "temporary-pass-1"),
                ("new_password", "my-own-password-1"), ("confirm_password", "my-own-password-1")])
            .await;
        assert_eq!(done.location.as_deref(), Some("/console/?password=changed"));
        // The old session ended with the change.
        assert_eq!(clerk.get("/console/").await.status, StatusCode::SEE_OTHER);
        let clerk = ConsoleSession::sign_in(&w.server, "new-clerk", "my-own-password-1").await;
        let home = clerk.get("/console/").await;
        assert_eq!(home.status, StatusCode::OK);
        let account = w.storage.get_staff("new-clerk").await.unwrap().unwrap();
        assert!(!account.must_change_password);
    })
    .await;
}

#[tokio::test]
async fn forms_without_this_sessions_token_or_from_another_site_are_refused() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let admin = sign_in(&w, ADMIN).await;
        let forged = admin
            .post_raw("/console/logout", &[("_csrf", "0000")], false)
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        forged.expect_text("页面已过期或请求不是从本系统发出");
        assert!(forged.content_type.starts_with("text/html"));
        let missing = admin.post_raw("/console/logout", &[], false).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        let cross = admin
            .client
            .post(format!("{}/console/logout", admin.base_url))
            .header("cookie", &admin.cookie)
            .header("origin", "https://evil.example")
            .form(&[("_csrf", admin.csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        // Still signed in: nothing happened.
        assert_eq!(admin.get("/console/").await.status, StatusCode::OK);
        let out = admin.post("/console/logout", &[]).await;
        assert_eq!(out.location.as_deref(), Some("/console/login"));
        assert_eq!(admin.get("/console/").await.status, StatusCode::SEE_OTHER);
    })
    .await;
}

#[tokio::test]
async fn the_dashboard_shows_each_role_its_own_scope() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let admin = sign_in(&w, ADMIN).await.get("/console/").await;
        admin
            .expect_text("各服务站缴费率")
            .expect_text("需要处理")
            .expect_text("近30天各渠道缴费笔数")
            .expect_text("data-chart=")
            .expect_text("320600 · ST-02")
            .expect_text("全部统筹区");
        let station = sign_in(&w, STATION).await.get("/console/").await;
        station
            .expect_text("ST-01")
            .expect_no_text("ST-02")
            .expect_no_text("需要处理")
            .expect_no_text("全部统筹区");
        let tax = sign_in(&w, TAX).await.get("/console/").await;
        tax.expect_text("需要处理")
            .expect_text("ST-02")
            .expect_no_text("全部统筹区");
        let tax_other = sign_in(&w, TAX).await.get("/console/?region=320500").await;
        tax_other.expect_no_text("320500 ·");
        let auditor = sign_in(&w, AUDITOR).await.get("/console/").await;
        auditor.expect_text("需要处理").expect_text("全部统筹区");
    })
    .await;
}

/// The dashboard's cards add up to its station table: 未缴费 counts the unpaid as the table's
/// column does, and residents enrolled but not assessed yet have a card of their own (the card
/// used to count them as unpaid, one more than the table's column in the demo).
#[tokio::test]
async fn the_dashboard_cards_add_up_to_the_station_table() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        // One resident enrolled and not assessed yet.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(
            &path,
            format!(
                "姓名,身份证号码,参保地区\n吴一,{},320600\n",
                yibao_tests::make_id("320602", "1990-01-01", 7)
            ),
        )
        .unwrap();
        let imported = yibao_server::services::roster_import::import_roster(
            w.storage.as_ref(),
            &path,
            "r.csv",
            &yibao_server::services::roster_import::ImportScope::unrestricted("test"),
            clock().today(),
            Some(FeeYear::new(2027).unwrap()),
            yibao_roster_file::Limits::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(imported.summary.enrolled, 1, "{:?}", imported.rejections);
        let page = sign_in(&w, ADMIN).await.get("/console/").await;
        let card = |label: &str| -> i64 {
            let start = format!("<dt>{label}</dt><dd>");
            let at = page
                .body
                .find(&start)
                .unwrap_or_else(|| panic!("a card {label}"))
                + start.len();
            page.body[at..]
                .split('<')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let table = page
            .body
            .split("<caption>各服务站征缴进度</caption>")
            .nth(1)
            .and_then(|t| t.split("<tbody role=\"rowgroup\">").nth(1))
            .and_then(|t| t.split("</tbody>").next())
            .expect("the station table");
        // 已参保, 已核定, 已缴费, 免缴, 未缴费, 未核定, 参保未通过 (the rate is no number).
        let (mut unpaid, mut not_assessed, mut stations) = (0, 0, 0);
        for row in table.split("<tr role=\"row\">").skip(1) {
            let cells: Vec<i64> = row
                .split("<td role=\"cell\" ")
                .skip(1)
                .filter_map(|cell| {
                    cell.split_once('>')?
                        .1
                        .split('<')
                        .next()?
                        .trim()
                        .parse()
                        .ok()
                })
                .collect();
            assert_eq!(cells.len(), 7, "{row}");
            unpaid += cells[4];
            not_assessed += cells[5];
            stations += 1;
        }
        assert!(stations > 1, "{table}");
        assert!(not_assessed > 0, "the imported resident is not assessed");
        assert_eq!(card("未缴费"), unpaid);
        assert_eq!(card("未核定"), not_assessed);
    })
    .await;
}

#[tokio::test]
async fn lists_are_masked_and_revealing_one_is_an_audited_click() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let station = sign_in(&w, STATION).await;
        let (id, name) = &w.own;
        let first: String = name.chars().take(1).collect();
        let list = station.get(&format!("/console/persons?q={first}")).await;
        assert_eq!(list.status, StatusCode::OK);
        list.expect_no_text(id).expect_no_text(&format!(">{name}<"));
        let by_id = station.get(&format!("/console/persons?q={id}")).await;
        // Only in the search box, where the clerk typed it; the list shows it masked.
        assert_eq!(by_id.body.matches(id.as_str()).count(), 1, "{}", by_id.body);
        by_id.expect_text("查看档案");
        let reveal = by_id.link_starting("/console/persons/320600/r.").unwrap();
        let reveal = format!("{}/reveal", reveal.trim_end_matches("/reveal"));
        let shown = station.htmx_post(&reveal, &[]).await;
        assert_eq!(shown.status, StatusCode::OK);
        shown.expect_text(id).expect_text(name);
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "read.person_reveal" && a.entry.actor == STATION.0));
        // The record itself: read in full, and audited.
        let record_link = by_id.link_starting("/console/persons/320600/r.").unwrap();
        let record_link = record_link.trim_end_matches("/reveal").to_owned();
        let record = station.get(&record_link).await;
        assert_eq!(record.status, StatusCode::OK);
        record
            .expect_text(id)
            .expect_text("应缴记录")
            .expect_text("变更记录");
        // A sealed link is this session's only.
        let someone_else = sign_in(&w, ADMIN).await;
        let stale = someone_else.get(&record_link).await;
        assert_eq!(stale.status, StatusCode::NOT_FOUND);
        stale.expect_text("链接已失效");
    })
    .await;
}

#[tokio::test]
async fn a_station_operator_is_refused_another_stations_person_everywhere() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let station = sign_in(&w, STATION).await;
        let (other_id, other_name) = &w.other;
        let search = station.get(&format!("/console/persons?q={other_id}")).await;
        search
            .expect_text("没有找到")
            .expect_no_text("/console/persons/320600/r.");
        let first: String = other_name.chars().take(2).collect();
        let by_name = station.get(&format!("/console/persons?q={first}")).await;
        by_name.expect_no_text("ST-02");
        let base = format!("/console/persons/320600/{other_id}");
        let page = station.get(&base).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        page.expect_text("无权查看或办理")
            .expect_no_text(other_name);
        for (path, fields) in [
            (format!("{base}/reveal"), vec![]),
            (
                base.clone(),
                vec![("name", "改名字"), ("household", "本地户籍")],
            ),
            (format!("{base}/exemption"), vec![("relief_kind", "低保")]),
            (format!("{base}/reassess"), vec![("fee_year", "2027")]),
            (
                format!("{base}/family-bindings"),
                vec![("employee_id_number", "x"), ("relationship", "父母")],
            ),
            (
                format!("{base}/refund"),
                vec![("payable_id", "x"), ("reason", "REASSESSED")],
            ),
        ] {
            let refused = station.post(&path, &fields).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
            refused.expect_no_text(other_name);
            let fragment = station.htmx_post(&path, &fields).await;
            assert_eq!(fragment.status, StatusCode::FORBIDDEN, "{path}");
            fragment.expect_text("alert error").expect_no_text("<html");
        }
        let (person, _) = w
            .storage
            .get_person(
                RegionCode::parse("320600").unwrap(),
                &yibao_domain::IdNumber::parse(other_id, clock().today())
                    .unwrap()
                    .id_number,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(person.name.as_str(), other_name, "nothing changed");
    })
    .await;
}

#[tokio::test]
async fn a_bad_field_is_shown_beside_it_and_a_good_change_is_saved_with_history() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let station = sign_in(&w, STATION).await;
        let (id, name) = &w.own;
        let base = format!("/console/persons/320600/{id}");
        let bad = station
            .post(
                &base,
                &[
                    ("name", name),
                    ("household", "本地户籍"),
                    ("phone", "12345"),
                    ("station", "ST-01"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("id=\"phone-error\"")
            .expect_text("value=\"12345\"");
        let good = station
            .post(
                &base,
                &[
                    ("name", name),
                    ("household", "本地户籍"),
                    ("phone", "13912345678"),
                    ("station", "ST-01"),
                ],
            )
            .await;
        assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
        let record = station.get(good.location.as_deref().unwrap()).await;
        record
            .expect_text("登记信息已保存")
            .expect_text("13912345678")
            .expect_text("console");
        let bad_relief = station
            .post(
                &format!("{base}/exemption"),
                &[
                    ("relief_kind", "低保"),
                    ("certificate_name", "最低生活保障证"),
                    ("certificate_number", "NT-001"),
                    ("certificate_valid_until", "明年"),
                ],
            )
            .await;
        assert_eq!(bad_relief.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad_relief.expect_text("id=\"certificate_valid_until-error\"");
        let relief = station
            .post(
                &format!("{base}/exemption"),
                &[
                    ("relief_kind", "低保"),
                    ("certificate_name", "最低生活保障证"),
                    ("certificate_number", "NT-001"),
                    ("certificate_valid_until", "2027-12-31"),
                ],
            )
            .await;
        assert_eq!(relief.status, StatusCode::SEE_OTHER, "{}", relief.body);
        let record = station.get(relief.location.as_deref().unwrap()).await;
        record
            .expect_text("减免信息已保存")
            .expect_text("<option value=\"低保\" selected>");
        // The auditor reads, and can change nothing.
        let auditor = sign_in(&w, AUDITOR).await;
        let read = auditor.get(&base).await;
        assert_eq!(read.status, StatusCode::OK);
        read.expect_no_text("保存登记信息");
        let refused = auditor
            .post(&base, &[("name", name), ("household", "本地户籍")])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn a_family_account_binding_is_entered_beside_its_fields_and_listed_masked() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let station = sign_in(&w, STATION).await;
        let (id, _) = &w.own;
        let base = format!("/console/persons/320600/{id}");
        let employee = yibao_tests::make_id("320602", "1980-03-01", 511);
        let page = station.get(&base).await;
        page.expect_text("家庭共济绑定").expect_text("没有绑定。");
        // An in-law is no close relative; a wrong ID number and an end before the start are
        // each refused beside their field, and nothing is stored.
        for (fields, error_id) in [
            (
                vec![
                    ("employee_id_number", employee.as_str()),
                    ("employee_region", "320600"),
                    ("relationship", "岳父"),
                    ("valid_from", "2026-01-01"),
                ],
                "relationship-error",
            ),
            (
                vec![
                    ("employee_id_number", "320602198003010000"),
                    ("employee_region", "320600"),
                    ("relationship", "子女"),
                    ("valid_from", "2026-01-01"),
                ],
                "employee_id_number-error",
            ),
            (
                vec![
                    ("employee_id_number", employee.as_str()),
                    ("employee_region", "320600"),
                    ("relationship", "子女"),
                    ("valid_from", "2026-01-01"),
                    ("valid_until", "2025-01-01"),
                ],
                "valid_until-error",
            ),
        ] {
            let bad = station
                .post(&format!("{base}/family-bindings"), &fields)
                .await;
            assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
            bad.expect_text(&format!("id=\"{error_id}\""))
                .expect_text("没有绑定。");
        }
        let good = station
            .post(
                &format!("{base}/family-bindings"),
                &[
                    ("employee_id_number", employee.as_str()),
                    ("employee_region", "320600"),
                    ("relationship", "子女"),
                    ("valid_from", "2026-01-01"),
                    ("valid_until", ""),
                ],
            )
            .await;
        assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
        let record = station.get(good.location.as_deref().unwrap()).await;
        let masked = yibao_domain::IdNumber::parse(&employee, clock().today())
            .unwrap()
            .id_number
            .masked();
        record
            .expect_text("家庭共济绑定已保存")
            .expect_text(&masked)
            .expect_text("长期")
            .expect_text("有效")
            .expect_no_text(&employee);
    })
    .await;
}

#[tokio::test]
async fn assets_are_embedded_and_cached_and_unknown_pages_answer_in_chinese() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let client = &w.server.client;
        let htmx = client
            .get(
                w.server
                    .url("/console/assets/vendor/htmx-2.0.11/htmx.min.js"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(htmx.status(), StatusCode::OK);
        assert!(htmx.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let css = client
            .get(w.server.url("/console/assets/console.css"))
            .send()
            .await
            .unwrap();
        let etag = css.headers()["etag"].clone();
        let again = client
            .get(w.server.url("/console/assets/console.css"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let admin = sign_in(&w, ADMIN).await;
        let missing = admin.get("/console/no-such-page").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.content_type.starts_with("text/html"));
        missing
            .expect_text("没有这个页面")
            .expect_text("<!DOCTYPE html>")
            .expect_no_text("\"request_id\"");
    })
    .await;
}
