//! The console's desk pages (退费, 缴费查询, 审计日志, 人员管理) as a browser meets them, on both
//! backends: each page for the roles that use it and 403 for the others (a station operator never
//! sees the money pages), masked lists, the ID number never in a URL, actions that need the CSRF
//! token, and an account the administrator adds having to choose its own password first.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use reqwest::StatusCode;
use yibao_channel_client::client::ChannelClient;
use yibao_channel_client::types::{
    PaymentResult, RefundResultRequest, ReportPaymentRequest, SearchRequest,
};
use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_server::{Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::console::{post_multipart, submit_login, ConsoleSession, Part};
use yibao_tests::{on_each_backend, TestServer};

/// 2026-11-02 (a Monday) 10:00 in Beijing: inside the demo's 2027 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap()
}

fn clock() -> Clock {
    Clock::fixed(instant())
}

/// A week later: refunds owed on the 2nd (due the 4th) are overdue.
fn week_later() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2026, 11, 9, 2, 0, 0).unwrap())
}

const ADMIN: (&str, &str) = ("admin", "yibao-demo-admin");
const STATION: (&str, &str) = ("nt-st01", "yibao-demo-station");
const TAX: (&str, &str) = ("nt-tax", "yibao-demo-tax");
const AUDITOR: (&str, &str) = ("auditor", "yibao-demo-auditor");

const PAGES: [&str; 5] = [
    "/console/refunds",
    "/console/payments",
    "/console/reconciliation",
    "/console/audit",
    "/console/staff",
];

struct World {
    server: TestServer,
    storage: Arc<dyn Storage>,
    /// (ID number, name) of a 320600 resident of ST-01.
    person: (String, String),
}

async fn world(storage: Arc<dyn Storage>) -> World {
    yibao::demo::load(storage.as_ref()).await.unwrap();
    yibao::demo::load_people(storage.as_ref(), clock().today())
        .await
        .unwrap();
    let rows = storage
        .standing(
            RegionCode::parse("320600").unwrap(),
            FeeYear::new(2027).unwrap(),
            Some(&StationCode::parse("ST-01").unwrap()),
            1,
        )
        .await
        .unwrap();
    let row = rows.first().expect("a demo resident of ST-01");
    let person = (row.id_number.as_str().to_owned(), row.name.clone());
    let server = TestServer::start(storage.clone(), clock(), ServerSettings::default()).await;
    World {
        server,
        storage,
        person,
    }
}

async fn sign_in(server: &TestServer, who: (&str, &str)) -> ConsoleSession {
    ConsoleSession::sign_in(server, who.0, who.1).await
}

fn bank(w: &World) -> ChannelClient {
    let (id, _, secret, _) = yibao::demo::DEMO_CHANNELS[0];
    ChannelClient::builder(
        &w.server.base_url,
        id.to_owned(),
        secret.as_bytes().to_vec(),
    )
    .clock_offset_secs(instant().timestamp() - Utc::now().timestamp())
    .build()
    .unwrap()
}

fn paid_at() -> DateTime<FixedOffset> {
    instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

/// The person pays their 2027 payable at the bank, then the bank reports two more payments of
/// it: one refund is handed to the bank and fails, the other is owed. Returns the refund numbers
/// (failed, owed).
async fn pay_and_owe(w: &World) -> (String, String) {
    let bank = bank(w);
    let found = bank
        .search(&SearchRequest {
            id_number: w.person.0.clone(),
            insured_number: None,
            name: Some(w.person.1.clone()),
            region: None,
            fee_year: None,
            agent_code: None,
        })
        .await
        .unwrap();
    let payable = &found.payables[0];
    let report = |txn: &'static str| {
        ReportPaymentRequest::for_payables(
            txn,
            vec![payable.payable_id.clone()],
            payable.amount,
            paid_at(),
        )
    };
    let first = bank.report_payment(&report("DESK-T-1")).await.unwrap();
    assert_eq!(first.result, PaymentResult::Paid);
    let second = bank.report_payment(&report("DESK-T-2")).await.unwrap();
    assert_eq!(second.result, PaymentResult::RefundPending);
    let handed = bank.pending_refunds().await.unwrap();
    assert_eq!(handed.len(), 1);
    let failed = handed[0].refund_no.clone();
    bank.report_refund_result(
        &failed,
        &RefundResultRequest::failed("DESK-R-1", "账户已销户"),
    )
    .await
    .unwrap();
    let third = bank.report_payment(&report("DESK-T-3")).await.unwrap();
    assert_eq!(third.result, PaymentResult::RefundPending);
    let owed = w.storage.refunds(Some("owed"), None, 10).await.unwrap();
    assert_eq!(owed.len(), 1);
    (failed, owed[0].refund_no.clone())
}

#[tokio::test]
async fn each_desk_page_is_for_its_roles_and_refused_to_the_others() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        // (who, expected status of each of PAGES)
        const OK: StatusCode = StatusCode::OK;
        const NO: StatusCode = StatusCode::FORBIDDEN;
        // refunds, payments, reconciliation, audit, staff
        let expectations: [((&str, &str), [StatusCode; 5]); 4] = [
            (ADMIN, [OK; 5]),
            (AUDITOR, [OK, OK, OK, OK, NO]),
            (TAX, [OK, OK, OK, NO, NO]),
            (STATION, [NO; 5]),
        ];
        for (who, statuses) in expectations {
            let session = sign_in(&w.server, who).await;
            let home = session.get("/console/").await;
            for (path, status) in PAGES.iter().zip(statuses) {
                let page = session.get(path).await;
                assert_eq!(page.status, status, "{} GET {path}", who.0);
                let in_menu = home.body.contains(&format!("href=\"{path}\""));
                assert_eq!(in_menu, status == StatusCode::OK, "{} menu {path}", who.0);
                if status == StatusCode::FORBIDDEN {
                    page.expect_text("无权查看或办理");
                }
            }
        }
        // A station operator is refused the money pages' actions and fragments too.
        let station = sign_in(&w.server, STATION).await;
        for path in [
            "/console/payments",
            "/console/staff",
            "/console/staff/nt-tax/password",
            "/console/staff/nt-tax/disable",
            "/console/refunds/RF1/retry",
        ] {
            let refused = station.post(path, &[("id_number", &w.person.0)]).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "POST {path}");
            let fragment = station.htmx_post(path, &[]).await;
            assert_eq!(fragment.status, StatusCode::FORBIDDEN, "htmx POST {path}");
            fragment.expect_no_text("<html");
        }
        let receipt = station
            .get("/console/receipts/32060126-0000000001.pdf")
            .await;
        assert_eq!(receipt.status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn refunds_are_listed_by_state_with_the_overdue_marked_and_retried_only_with_the_token() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (failed, owed) = pay_and_owe(&w).await;
        let tax = sign_in(&w.server, TAX).await;
        let all = tax.get("/console/refunds").await;
        all.expect_text(&failed)
            .expect_text(&owed)
            .expect_text("退费失败")
            .expect_text("待退")
            .expect_text("重复缴费")
            .expect_no_text("已逾期</span>")
            // Only the administrator may retry.
            .expect_no_text("/retry");
        let only_owed = tax.get("/console/refunds?status=owed").await;
        only_owed.expect_text(&owed).expect_no_text(&failed);
        let bad = tax.get("/console/refunds?status=lost").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        // Another region's list is not the tax collector's to choose.
        let elsewhere = tax.get("/console/refunds?region=460100").await;
        elsewhere.expect_text(&owed);
        let admin = sign_in(&w.server, ADMIN).await;
        let hainan = admin.get("/console/refunds?region=460100").await;
        hainan.expect_text("没有符合条件的退费");
        let amount = yibao_console::view::yuan(
            w.storage.refunds(Some("owed"), None, 1).await.unwrap()[0]
                .amount_fen
                .as_fen(),
        );
        admin.get("/console/refunds").await.expect_text(&amount);

        // Retrying the failed refund: the administrator, with the form's token.
        let path = format!("/console/refunds/{failed}/retry");
        let page = admin.get("/console/refunds?status=failed").await;
        page.expect_text(&failed).expect_text("重新发起");
        assert_eq!(
            page.link_starting("/console/refunds/RF").as_deref(),
            Some(path.as_str())
        );
        let forged = admin.post_raw(&path, &[("_csrf", "0000")], false).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let missing = admin.post_raw(&path, &[], false).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        assert_eq!(tax.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
        let auditor = sign_in(&w.server, AUDITOR).await;
        assert_eq!(auditor.post(&path, &[]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            w.storage
                .refunds(Some("failed"), None, 10)
                .await
                .unwrap()
                .len(),
            1,
            "nothing changed"
        );
        let done = admin.post(&path, &[]).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
        let shown = admin.get(done.location.as_deref().unwrap()).await;
        shown.expect_text("已重新发起").expect_text(&failed);
        // The notice speaks only of a refund listed as owed, not of any text in the address.
        admin
            .get("/console/refunds?done=RF-made-up")
            .await
            .expect_no_text("已重新发起");
        assert!(w
            .storage
            .refunds(Some("failed"), None, 10)
            .await
            .unwrap()
            .is_empty());
        // Retrying it again: it is no longer failed, said in Chinese.
        let again = admin.post(&path, &[]).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        again.expect_text("只有退费失败的才能重新发起");
        // A week later both are overdue, and highlighted (signing in there ends the sessions
        // that expired by its clock: last).
        let later =
            TestServer::start(w.storage.clone(), week_later(), ServerSettings::default()).await;
        let tax_later = sign_in(&later, TAX).await;
        let overdue = tax_later.get("/console/refunds?status=overdue").await;
        overdue
            .expect_text(&failed)
            .expect_text(&owed)
            .expect_text("class=\"overdue\"")
            .expect_text("已逾期</span>");
    })
    .await;
}

#[tokio::test]
async fn payments_are_found_by_a_posted_id_number_and_listed_masked() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        pay_and_owe(&w).await;
        let (id, name) = w.person.clone();
        for who in [TAX, AUDITOR, ADMIN] {
            let session = sign_in(&w.server, who).await;
            let form = session.get("/console/payments").await;
            form.expect_text("身份证号码")
                .expect_text("method=\"post\"");
            let found = session
                .post(
                    "/console/payments",
                    &[("id_number", &id), ("region", "320600")],
                )
                .await;
            assert_eq!(found.status, StatusCode::OK, "{}", who.0);
            found
                .expect_no_text(&id)
                .expect_no_text(&name)
                .expect_text(&id[..6])
                .expect_text(&format!("{}*", name.chars().next().unwrap()))
                .expect_text(">PM")
                .expect_text(".pdf");
            let link = found.link_starting("/console/receipts/").unwrap();
            assert!(!link.contains(&id));
            // The receipt to reprint: the PDF, or (no receipt font on this machine) a Chinese
            // page saying so.
            let pdf = session.get(&link).await;
            match pdf.status {
                StatusCode::OK => assert_eq!(pdf.content_type, "application/pdf"),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(pdf.content_type.starts_with("text/html"), "{pdf:?}");
                }
                other => panic!("{other}: {}", pdf.body),
            }
            // A bad number is shown beside the field.
            let bad = session
                .post(
                    "/console/payments",
                    &[("id_number", "32060219800101123"), ("region", "320600")],
                )
                .await;
            assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
            bad.expect_text("id_number-error");
        }
        // The lookup is a form with the token, and audited.
        let tax = sign_in(&w.server, TAX).await;
        let forged = tax
            .post_raw("/console/payments", &[("id_number", &id)], false)
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let audit = w.storage.list_audit(50).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "receipt.list" && a.entry.actor == "nt-tax"));
        // A channel's payments of a day: no personal data, in transaction-number order, paged
        // after the last one shown.
        let day = tax
            .get("/console/payments?channel_id=icbc-nantong&day=2026-11-02")
            .await;
        assert_eq!(day.status, StatusCode::OK);
        day.expect_text("DESK-T-1")
            .expect_text("DESK-T-3")
            .expect_text(&yibao_console::view::yuan(
                w.storage.refunds(Some("owed"), None, 1).await.unwrap()[0]
                    .amount_fen
                    .as_fen(),
            ))
            .expect_no_text(&name)
            .expect_no_text(&id)
            .expect_no_text("下一页");
        let after = tax
            .get("/console/payments?channel_id=icbc-nantong&day=2026-11-02&after=DESK-T-1")
            .await;
        after.expect_text("DESK-T-2").expect_no_text("DESK-T-1<");
        let wrong = tax
            .get("/console/payments?channel_id=nope&day=2026-11-31")
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        wrong
            .expect_text("channel_id-error")
            .expect_text("day-error");
        // A tax collector works in their own region whatever the form names.
        let other = tax
            .post(
                "/console/payments",
                &[("id_number", &id), ("region", "460100")],
            )
            .await;
        assert_eq!(other.status, StatusCode::OK, "their own region is used");
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_action_and_date_with_errors_beside_fields() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let admin = sign_in(&w.server, ADMIN).await;
        let auditor = sign_in(&w.server, AUDITOR).await;
        let all = auditor.get("/console/audit").await;
        all.expect_text("staff.login").expect_text("auditor");
        let by_actor = auditor.get("/console/audit?actor=admin").await;
        assert_eq!(by_actor.status, StatusCode::OK);
        by_actor.expect_text("data-label=\"操作人\">admin</td>");
        assert!(
            !by_actor.body.contains("data-label=\"操作人\">auditor</td>"),
            "{}",
            by_actor.body
        );
        let by_action = admin.get("/console/audit?action=nothing.like.this").await;
        by_action.expect_text("没有符合条件的记录");
        let bad = admin.get("/console/audit?from=2026-13-01&to=x").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("from-error")
            .expect_text("to-error")
            .expect_text("YYYY-MM-DD");
        let backwards = admin
            .get("/console/audit?from=2026-11-05&to=2026-11-01")
            .await;
        backwards.expect_text("结束日期不能早于开始日期");
        let future = admin.get("/console/audit?from=2100-01-01").await;
        future.expect_text("没有符合条件的记录");
        // The filters reach every entry: one under 1 100 newer ones is found, and the newer ones
        // are paged by key, 50 a page.
        let entry = |actor: &str, target: String| yibao_storage::AuditEntry {
            actor: actor.to_owned(),
            action: "staff.test".to_owned(),
            region: None,
            target,
            detail: serde_json::json!({}),
        };
        w.storage
            .append_audit(&entry("long-ago", "OLD-ONE".into()))
            .await
            .unwrap();
        for i in 0..1100 {
            w.storage
                .append_audit(&entry("busy", format!("N-{i}")))
                .await
                .unwrap();
        }
        let old = auditor.get("/console/audit?actor=long-ago").await;
        old.expect_text("OLD-ONE");
        let first = auditor.get("/console/audit?actor=busy").await;
        first.expect_text("N-1099").expect_no_text("N-1049<");
        let next = first
            .link_starting("/console/audit?actor=busy")
            .expect("a link to older entries")
            .replace("&#38;", "&");
        assert!(next.contains("&before="), "{next}");
        let second = auditor.get(&next).await;
        second
            .expect_text("N-1049")
            .expect_no_text("N-1099")
            .expect_text("回到最新");
    })
    .await;
}

#[tokio::test]
async fn the_administrator_adds_an_account_whose_temporary_password_must_be_replaced() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let admin = sign_in(&w.server, ADMIN).await;
        let list = admin.get("/console/staff").await;
        list.expect_text("nt-st01")
            .expect_text("服务站经办")
            .expect_no_text("password_hash");
        // Fields wrong: errors beside them, nothing created.
        let wrong = admin
            .post(
                "/console/staff",
                &[
                    ("username", "New Clerk"),
                    ("display_name", "新经办"),
                    ("role", "station_operator"),
                    ("region", "320600"),
                    ("station", ""),
                ],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        wrong
            .expect_text("station-error")
            .expect_no_text("临时密码：");
        let bad_name = admin
            .post(
                "/console/staff",
                &[
                    ("username", "New Clerk"),
                    ("display_name", "新经办"),
                    ("role", "auditor"),
                ],
            )
            .await;
        assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad_name.expect_text("username-error");
        let taken = admin
            .post(
                "/console/staff",
                &[
                    ("username", "nt-tax"),
                    ("display_name", "重名"),
                    ("role", "auditor"),
                ],
            )
            .await;
        taken.expect_text("username-error").expect_text("已存在");
        assert!(w.storage.get_staff("new-clerk").await.unwrap().is_none());
        // Without the token: refused.
        let forged = admin
            .post_raw(
                "/console/staff",
                &[
                    ("username", "new-clerk"),
                    ("display_name", "新经办"),
                    ("role", "auditor"),
                ],
                false,
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        let made = admin
            .post(
                "/console/staff",
                &[
                    ("username", "new-clerk"),
                    ("display_name", "新经办"),
                    ("role", "station_operator"),
                    ("region", "320600"),
                    ("station", "ST-01"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::OK);
        let password = secret_in(&made.body);
        assert_eq!(password.chars().count(), 14);
        // Shown once: not on the list afterwards.
        admin
            .get("/console/staff")
            .await
            .expect_text("new-clerk")
            .expect_no_text(&password);
        let account = w.storage.get_staff("new-clerk").await.unwrap().unwrap();
        assert!(account.must_change_password);
        let (page, _) = submit_login(&w.server, "new-clerk", &password).await;
        assert_eq!(page.location.as_deref(), Some("/console/password"));

        // A reset gives another temporary password; the first no longer works.
        let reset = admin.post("/console/staff/new-clerk/password", &[]).await;
        assert_eq!(reset.status, StatusCode::OK);
        let second = secret_in(&reset.body);
        assert_ne!(second, password);
        let (old, cookie) = submit_login(&w.server, "new-clerk", &password).await;
        assert!(cookie.is_none(), "{old:?}");
        let (page, _) = submit_login(&w.server, "new-clerk", &second).await;
        assert_eq!(page.location.as_deref(), Some("/console/password"));

        // Resets and disabling need the form's token too.
        for path in [
            "/console/staff/new-clerk/password",
            "/console/staff/new-clerk/disable",
        ] {
            let forged = admin.post_raw(path, &[("_csrf", "0000")], false).await;
            assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(
                admin.post_raw(path, &[], false).await.status,
                StatusCode::FORBIDDEN
            );
        }
        let (page, _) = submit_login(&w.server, "new-clerk", &second).await;
        assert_eq!(
            page.location.as_deref(),
            Some("/console/password"),
            "unchanged"
        );

        // Disabled: cannot sign in; enabled again: can. One's own account cannot be disabled.
        let off = admin.post("/console/staff/new-clerk/disable", &[]).await;
        assert_eq!(off.status, StatusCode::SEE_OTHER);
        assert!(
            w.storage
                .get_staff("new-clerk")
                .await
                .unwrap()
                .unwrap()
                .disabled
        );
        admin
            .get("/console/staff")
            .await
            .expect_text("已停用")
            .expect_text("/console/staff/new-clerk/enable");
        let (_, cookie) = submit_login(&w.server, "new-clerk", &second).await;
        assert!(cookie.is_none());
        let on = admin.post("/console/staff/new-clerk/enable", &[]).await;
        assert_eq!(on.status, StatusCode::SEE_OTHER);
        assert!(
            !w.storage
                .get_staff("new-clerk")
                .await
                .unwrap()
                .unwrap()
                .disabled
        );
        let myself = admin.post("/console/staff/admin/disable", &[]).await;
        assert_eq!(myself.status, StatusCode::BAD_REQUEST);
        myself.expect_text("不能停用自己");
        let nobody = admin.post("/console/staff/nobody/password", &[]).await;
        assert_eq!(nobody.status, StatusCode::NOT_FOUND);
        let audit = w.storage.list_audit(50).await.unwrap();
        for action in [
            "staff.create",
            "staff.password_reset",
            "staff.disable",
            "staff.enable",
        ] {
            assert!(
                audit
                    .iter()
                    .any(|a| a.entry.action == action && a.entry.actor == "admin"),
                "{action}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn reconciliation_shows_statements_and_differences_in_each_readers_scope() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        pay_and_owe(&w).await;
        let amount = w.storage.refunds(Some("owed"), None, 1).await.unwrap()[0].amount_fen.as_fen();
        // The bank's statement of the 2nd lists the first payment and one it alone knows (长款);
        // the other two are missing (短款).
        let csv = format!(
            "channel_txn_id,type,amount,occurred_at,refund_no\nDESK-T-1,payment,{amount},,\nDESK-LONG,payment,800,,\n"
        );
        bank(&w).upload_statement(clock().today(), &csv).await.unwrap();

        let admin = sign_in(&w.server, ADMIN).await;
        let all = admin.get("/console/reconciliation").await;
        assert_eq!(all.status, StatusCode::OK);
        all.expect_text("icbc-nantong")
            .expect_text("class=\"differs\"")
            .expect_text("DESK-LONG")
            .expect_text("长款")
            .expect_text("短款")
            .expect_text("8.00")
            .expect_text("class=\"overdue\"")
            // The demo's test channel is marked in the list; 全部渠道 says it leaves such out
            // (their statements are left out: sandbox.rs).
            .expect_text("全部渠道（不含测试渠道）")
            .expect_text(">sandbox-bank（测试渠道）</option>");
        // The tax collector of 320600 names a channel of their region first.
        let tax = sign_in(&w.server, TAX).await;
        tax.get("/console/reconciliation")
            .await
            .expect_text("请选择本统筹区的渠道")
            .expect_no_text("DESK-LONG");
        let own = tax.get("/console/reconciliation?channel_id=icbc-nantong").await;
        own.expect_text("DESK-LONG").expect_text("class=\"differs\"");
        // WeChat serves five regions: its statement summary is the administrator's.
        let shared = tax.get("/console/reconciliation?channel_id=wechat").await;
        assert_eq!(shared.status, StatusCode::OK);
        let bad = tax.get("/console/reconciliation?channel_id=nope&from=2026-02-30").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("channel_id-error").expect_text("from-error");
        let long = admin
            .get("/console/reconciliation?from=2026-01-01&to=2026-11-02")
            .await;
        assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
        long.expect_text("to-error").expect_text("最多查看31天");
        let open_only = sign_in(&w.server, AUDITOR)
            .await
            .get("/console/reconciliation?channel_id=icbc-nantong&unresolved=true")
            .await;
        // The auditor reads only: no form to close a difference.
        assert!(open_only
            .link_starting("/console/reconciliation/resolve")
            .is_none());
        // The tax collector closes a 短款 by hand: a choice and a note, with the form's token.
        let resolve = own
            .link_starting("/console/reconciliation/resolve?")
            .expect("a link to close a difference")
            // Askama writes `&` in attributes as `&#38;`, which the browser reads as `&`.
            .replace("&#38;", "&");
        let auditor = sign_in(&w.server, AUDITOR).await;
        assert_eq!(auditor.get(&resolve).await.status, StatusCode::FORBIDDEN);
        let form = tax.get(&resolve).await;
        assert_eq!(form.status, StatusCode::OK);
        form.expect_text("确认已处理");
        let fields: Vec<(String, String)> = ["channel_id", "statement_date", "channel_txn_id", "class"]
            .iter()
            .map(|name| {
                let marker = format!("name=\"{name}\" value=\"");
                let start = form.body.find(&marker).unwrap() + marker.len();
                let end = form.body[start..].find('"').unwrap();
                ((*name).to_owned(), form.body[start..start + end].to_owned())
            })
            .collect();
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            all.extend_from_slice(extra);
            all
        };
        let empty = tax.post("/console/reconciliation/resolve", &with(&[("note", "")])).await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        empty.expect_text("resolution-error");
        let other = tax
            .post("/console/reconciliation/resolve", &with(&[("resolution", "other"), ("note", " ")]))
            .await;
        other.expect_text("note-error");
        let forged = tax
            .post_raw("/console/reconciliation/resolve", &with(&[("resolution", "channel_corrected")]), false)
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let done = tax
            .post(
                "/console/reconciliation/resolve",
                &with(&[("resolution", "channel_corrected"), ("note", "渠道次日补报")]),
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let after = tax.get(done.location.as_deref().unwrap()).await;
        // Closed as chosen, said in words.
        after.expect_text("data-label=\"处理结果\">渠道已更正对账单</td>");
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "reconciliation.resolve" && a.entry.actor == "nt-tax"));
        // The 长款 was settled by the channel's policy (a refund owed); the 短款 are still carried.
        open_only
            .expect_text("DESK-T-2")
            .expect_no_text("DESK-LONG");
    })
    .await;
}

/// The temporary password a staff page shows once.
fn secret_in(html: &str) -> String {
    let marker = "class=\"mono secret\">";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no password shown:\n{html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap();
    html[start..start + end].to_owned()
}

/// A WeChat trade bill as the merchant platform gives it: backticks, yuan, the summary at the end
/// (payments only).
fn wechat_bill(rows: &[(&str, i64)]) -> Vec<u8> {
    let yuan = |fen: i64| format!("{}.{:02}", fen / 100, fen % 100);
    let mut out = String::from("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n");
    let mut total = 0;
    for (i, (txn, fen)) in rows.iter().enumerate() {
        total += fen;
        out.push_str(&format!(
            "`2026-11-02 10:{i:02}:00,`wx1,`1900000109,`0,`,`42000{i:05},`{txn},`oUser,`JSAPI,`SUCCESS,`CMB_DEBIT,`CNY,`{},`0.00,`0,`,`0.00,`0.00,`,`,`城乡居民医保,`,`0.00000,`0.60%,`{},`0.00,`\n",
            yuan(*fen),
            yuan(*fen)
        ));
    }
    out.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n");
    out.push_str(&format!(
        "`{},`{},`0.00,`0.00,`0.00000,`{},`0.00\n",
        rows.len(),
        yuan(total),
        yuan(total)
    ));
    out.into_bytes()
}

const STATEMENT: &str = "/console/reconciliation/statement";

/// The upload form's parts in the page's order: the token first, the file last.
fn statement_parts<'a>(
    csrf: &'a str,
    channel: &'a str,
    date: &'a str,
    bill: &'a [u8],
) -> Vec<Part<'a>> {
    vec![
        Part::Text("_csrf", csrf),
        Part::Text("channel_id", channel),
        Part::Text("format", "wechat"),
        Part::Text("date", date),
        Part::File("file", "wechat-20261102.csv", bill),
    ]
}

#[tokio::test]
async fn a_statement_is_uploaded_with_its_token_first_and_its_summary_and_differences_shown() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let admin = sign_in(&w.server, ADMIN).await;
        let tax = sign_in(&w.server, TAX).await;
        // The form is on 对账 for the writers, not for the auditor.
        admin
            .get("/console/reconciliation")
            .await
            .expect_text("enctype=\"multipart/form-data\"")
            .expect_text("微信支付交易账单");
        let auditor = sign_in(&w.server, AUDITOR).await;
        auditor
            .get("/console/reconciliation")
            .await
            .expect_no_text("上传并对账");
        assert_eq!(auditor.get(STATEMENT).await.status, StatusCode::FORBIDDEN);
        let station = sign_in(&w.server, STATION).await;
        assert_eq!(station.get(STATEMENT).await.status, StatusCode::FORBIDDEN);
        assert_eq!(tax.get(STATEMENT).await.status, StatusCode::OK);

        let bill = wechat_bill(&[("DESK-W-LONG", 800)]);
        let (admin_csrf, tax_csrf) = (admin.csrf.as_str(), tax.csrf.as_str());
        let parts = statement_parts;
        // Refused to the auditor even with the token, and to anyone without it.
        let refused = post_multipart(
            &auditor,
            STATEMENT,
            &parts(&auditor.csrf, "wechat", "2026-11-02", &bill),
            None,
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let forged = post_multipart(
            &admin,
            STATEMENT,
            &parts("not-the-token", "wechat", "2026-11-02", &bill),
            None,
        )
        .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        // The token after the file: the file is not read.
        let late = post_multipart(
            &admin,
            STATEMENT,
            &[
                Part::Text("channel_id", "wechat"),
                Part::File("file", "b.csv", &bill),
                Part::Text("_csrf", admin_csrf),
            ],
            None,
        )
        .await;
        assert_eq!(late.status, StatusCode::FORBIDDEN);
        late.expect_text("请求无法确认");
        assert!(w
            .storage
            .statements(None, clock().today(), clock().today(), 10)
            .await
            .unwrap()
            .is_empty());

        // Bad fields are named beside them, in Chinese.
        let bad = post_multipart(
            &admin,
            STATEMENT,
            &parts(admin_csrf, "nope", "2026-13-02", &bill),
            None,
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("up-channel_id-error")
            .expect_text("up-date-error")
            .expect_text("请从列表中选择渠道");
        let cut = &bill[..bill.len() - 40];
        let broken = post_multipart(
            &admin,
            STATEMENT,
            &parts(admin_csrf, "wechat", "2026-11-02", cut),
            None,
        )
        .await;
        assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
        broken
            .expect_text("up-file-error")
            .expect_no_text("BAD_STATEMENT_FILE");
        let empty = post_multipart(
            &admin,
            STATEMENT,
            &[
                Part::Text("_csrf", admin_csrf),
                Part::Text("channel_id", "wechat"),
                Part::Text("format", "wechat"),
                Part::Text("date", "2026-11-02"),
                Part::File("file", "", b""),
            ],
            None,
        )
        .await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        empty.expect_text("请选择要上传的文件");

        // WeChat serves several regions: its statement is the administrator's, as the API says.
        let shared = post_multipart(
            &tax,
            STATEMENT,
            &parts(tax_csrf, "wechat", "2026-11-02", &bill),
            None,
        )
        .await;
        assert_eq!(shared.status, StatusCode::FORBIDDEN);
        shared
            .expect_text("up-channel_id-error")
            .expect_text("须由系统管理员上传对账");

        // The administrator uploads it: the summary, the funds, the 长款 with the form to close it.
        let done = post_multipart(
            &admin,
            STATEMENT,
            &parts(admin_csrf, "wechat", "2026-11-02", &bill),
            None,
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        done.expect_text("已完成 wechat 2026-11-02 的对账")
            .expect_text("长款（渠道有、平台无）")
            .expect_text("<td class=\"num\">1</td>")
            .expect_text("8.00")
            .expect_text("DESK-W-LONG")
            .expect_no_text("channel_only");
        assert_eq!(
            w.storage
                .statements(Some("wechat"), clock().today(), clock().today(), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "statement.upload" && a.entry.actor == "admin"));
        // The reconciliation page says in words what booking the 长款 did, not its code.
        admin
            .get("/console/reconciliation?channel_id=wechat&from=2026-11-02&to=2026-11-02")
            .await
            .expect_text("DESK-W-LONG")
            .expect_text("转为待退款（退费编号 RF")
            .expect_no_text("refund_owed:");

        // A tax collector uploads their own region's bank statement, the token in the header.
        let csv = b"channel_txn_id,type,amount,occurred_at,refund_no\nDESK-B-LONG,payment,500,,\n";
        let own = post_multipart(
            &tax,
            STATEMENT,
            &[
                Part::Text("channel_id", "icbc-nantong"),
                Part::Text("format", "protocol"),
                Part::Text("date", "2026-11-02"),
                Part::File("file", "icbc.csv", csv),
            ],
            Some(tax_csrf),
        )
        .await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.body);
        own.expect_text("DESK-B-LONG").expect_text("协议对账文件");
    })
    .await;
}

#[tokio::test]
async fn the_administrator_adds_a_channel_with_a_secret_shown_once_and_sets_its_policy() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        for who in [STATION, TAX, AUDITOR] {
            let s = sign_in(&w.server, who).await;
            assert_eq!(
                s.get("/console/channels").await.status,
                StatusCode::FORBIDDEN
            );
            assert_eq!(
                s.post("/console/channels/wechat/disable", &[]).await.status,
                StatusCode::FORBIDDEN
            );
        }
        let admin = sign_in(&w.server, ADMIN).await;
        let list = admin.get("/console/channels").await;
        assert_eq!(list.status, StatusCode::OK);
        list.expect_text("icbc-nantong")
            .expect_text("微信")
            .expect_text("新增渠道")
            .expect_no_text("bank_counter<");
        // Bad fields, each named beside it.
        let bad = admin
            .post(
                "/console/channels",
                &[
                    ("channel_id", "x"),
                    ("kind", "fax"),
                    ("regions", "12"),
                    ("rate", "0"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("channel_id-error")
            .expect_text("kind-error")
            .expect_text("regions-error")
            .expect_text("rate-error");
        let unknown = admin
            .post(
                "/console/channels",
                &[
                    ("channel_id", "boc-x"),
                    ("kind", "bank_counter"),
                    ("regions", "110100"),
                    ("rate", "50"),
                ],
            )
            .await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        unknown
            .expect_text("regions-error")
            .expect_text("未在本系统登记");
        let taken = admin
            .post(
                "/console/channels",
                &[
                    ("channel_id", "wechat"),
                    ("kind", "wechat"),
                    ("regions", "320600"),
                    ("rate", "50"),
                ],
            )
            .await;
        taken.expect_text("channel_id-error").expect_text("已存在");
        // Without the token: refused, nothing made.
        let forged = admin
            .post_raw(
                "/console/channels",
                &[
                    ("channel_id", "boc-nt"),
                    ("kind", "bank_counter"),
                    ("regions", "320600"),
                    ("rate", "50"),
                ],
                false,
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(w.storage.get_channel("boc-nt").await.unwrap().is_none());
        let made = admin
            .post(
                "/console/channels",
                &[
                    ("channel_id", "boc-nt"),
                    ("kind", "bank_counter"),
                    ("regions", "320600"),
                    ("rate", "50"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::OK, "{}", made.body);
        let secret = secret_in(&made.body);
        assert_eq!(secret.len(), 64);
        // The secret works: the new channel signs a request with it.
        let client = ChannelClient::builder(
            &w.server.base_url,
            "boc-nt".to_owned(),
            secret.as_bytes().to_vec(),
        )
        .clock_offset_secs(instant().timestamp() - Utc::now().timestamp())
        .build()
        .unwrap();
        assert!(client.pending_refunds().await.is_ok());
        // Shown once: not on the list afterwards.
        admin
            .get("/console/channels")
            .await
            .expect_text("boc-nt")
            .expect_no_text(&secret);
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "channel.add" && a.entry.target == "boc-nt"));
        // The channel-only policy.
        let wrong = admin
            .post("/console/channels/boc-nt/policy", &[("policy", "keep")])
            .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        wrong.expect_text("policy-error");
        let set = admin
            .post("/console/channels/boc-nt/policy", &[("policy", "apply")])
            .await;
        assert_eq!(set.status, StatusCode::SEE_OTHER);
        assert_eq!(
            w.storage
                .channel_only_policy("boc-nt")
                .await
                .unwrap()
                .as_deref(),
            Some("apply")
        );
        // A new secret, shown once; then disabled: its requests are refused.
        let rotated = admin.post("/console/channels/boc-nt/secret", &[]).await;
        assert_eq!(rotated.status, StatusCode::OK);
        assert_ne!(secret_in(&rotated.body), secret);
        rotated.expect_text("旧密钥可用至");
        let off = admin.post("/console/channels/boc-nt/disable", &[]).await;
        assert_eq!(off.status, StatusCode::SEE_OTHER);
        assert!(client.pending_refunds().await.is_err());
        admin.get("/console/channels").await.expect_text("已停用");
        assert_eq!(
            admin
                .post("/console/channels/boc-nt/enable", &[])
                .await
                .status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            admin
                .post("/console/channels/nope/disable", &[])
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    })
    .await;
}

#[tokio::test]
async fn fee_policies_and_calendars_are_read_by_all_and_a_calendar_year_set_by_the_administrator() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        for who in [ADMIN, STATION, TAX, AUDITOR] {
            let s = sign_in(&w.server, who).await;
            let p = s.get("/console/policies").await;
            assert_eq!(p.status, StatusCode::OK, "{}", who.0);
            p.expect_text("缴费政策")
                .expect_text("2027")
                .expect_text("节假日安排");
            if who != ADMIN {
                p.expect_no_text("保存节假日安排");
                let refused = s
                    .post(
                        "/console/policies/calendar",
                        &[
                            ("region", "320600"),
                            ("year", "2027"),
                            ("holidays", "2027-10-08"),
                        ],
                    )
                    .await;
                assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", who.0);
            }
        }
        let station = sign_in(&w.server, STATION).await;
        // A station operator's region is their own: no region to choose.
        station
            .get("/console/policies")
            .await
            .expect_no_text("<select id=\"region\"");
        let admin = sign_in(&w.server, ADMIN).await;
        let form = [
            ("region", "320600"),
            ("year", "2027"),
            ("holidays", "2027-10-08"),
            ("working_days", "2027-10-09"),
        ];
        let forged = admin
            .post_raw("/console/policies/calendar", &form, false)
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let bad = admin
            .post(
                "/console/policies/calendar",
                &[
                    ("region", "320600"),
                    ("year", "20x"),
                    ("holidays", "2027-10-08 明天"),
                    ("working_days", ""),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("year-error")
            .expect_text("holidays-error")
            .expect_text("“明天”不是日期");
        // The domain's rules: a Saturday is no holiday, a Friday no worked weekend.
        let weekend = admin
            .post(
                "/console/policies/calendar",
                &[
                    ("region", "320600"),
                    ("year", "2027"),
                    ("holidays", "2027-01-02"),
                    ("working_days", "2027-10-08"),
                ],
            )
            .await;
        assert_eq!(weekend.status, StatusCode::UNPROCESSABLE_ENTITY);
        weekend
            .expect_text("holidays-error")
            .expect_text("是周末")
            .expect_text("working_days-error");
        let done = admin.post("/console/policies/calendar", &form).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        done.expect_text("已保存统筹区 320600 2027 年的节假日安排")
            .expect_text("10-08")
            .expect_text("10-09");
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "calendar.put" && a.entry.target == "2027"));
        station.get("/console/policies").await.expect_text("10-08");

        // A fee policy for 2028: amounts in yuan beside their fields, the domain's rules on top.
        let mut policy: Vec<(&str, &str)> = vec![
            ("region", "320600"),
            ("fee_year", "2028"),
            ("opens", "2027-09-01"),
            ("closes", "2027-12-31"),
            ("age_reference_date", "2028-01-01"),
            ("adult_age", "18"),
            ("adult_total", "420"),
            ("adult_critical", "20"),
            ("minor_not_in_school_total", "410"),
            ("student_total", "410"),
            ("newborn_total", "0"),
        ];
        assert_eq!(
            station.post("/console/policies/fee", &policy).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            admin
                .post_raw("/console/policies/fee", &policy, false)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let mut bad = policy.clone();
        bad[6] = ("adult_total", "四百");
        bad[1] = ("fee_year", "28");
        let bad = admin.post("/console/policies/fee", &bad).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("adult_total-error")
            .expect_text("fee_year-error")
            .expect_text("四百");
        let mut parts = policy.clone();
        parts[7] = ("adult_critical", "500");
        let parts = admin.post("/console/policies/fee", &parts).await;
        assert_eq!(
            parts.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            parts.body
        );
        parts.expect_text("policy-error");
        policy.push(("late", "true"));
        let saved = admin.post("/console/policies/fee", &policy).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
        saved
            .expect_text("2028 年度的缴费政策")
            .expect_text("420.00");
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "fee_policy.put" && a.entry.target == "2028"));
    })
    .await;
}

/// The bank a clerk types is one the page names: the enabled auto-debit banks of the staff
/// member's region (the demo's `icbc-nantong-debit` for 南通), never another region's, a disabled
/// one or a channel of another kind; the administrator sees every region's, with its regions.
#[tokio::test]
async fn the_debit_forms_name_the_auto_debit_banks_the_staff_member_may_use() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (demo_bank, kind, _, regions) = yibao::demo::DEMO_DEBIT_CHANNEL;
        assert_eq!((kind, regions), ("auto_debit", &["320600"][..]));
        for (id, region) in [("haikou-debit", "460100"), ("nantong-old-debit", "320600")] {
            yibao::operator::channel_add(
                w.storage.as_ref(),
                None,
                id,
                "auto_debit",
                &[region.to_owned()],
                50,
                format!("{id}-secret-0123456789"),
            )
            .await
            .expect("an auto-debit bank added");
        }
        assert!(w
            .storage
            .set_channel_enabled("nantong-old-debit", false)
            .await
            .expect("a channel disabled"));

        let tax = sign_in(&w.server, TAX).await;
        let page = tax.get("/console/debit").await;
        assert_eq!(page.status, StatusCode::OK);
        // A collector's suggestions name no regions (a bank may serve others).
        page.expect_text(&format!(
            "<option value=\"{demo_bank}\"></option></datalist>"
        ))
        .expect_text(&format!(
            "可选：<span class=\"mono\">{demo_bank}</span></p>"
        ))
        .expect_text("list=\"debit-banks\"")
        .expect_text("aria-describedby=\"run_channel_id-banks\"")
        .expect_no_text("haikou-debit")
        .expect_no_text("nantong-old-debit")
        // The demo's counter and wallets are channels too, of other kinds.
        .expect_no_text("value=\"icbc-nantong\"")
        .expect_no_text("value=\"wechat\"");
        // Refused for a field, the page still names the banks beside the bank's field.
        let refused = tax
            .post(
                "/console/debit/runs",
                &[
                    ("run_channel_id", ""),
                    ("fee_year", "2027"),
                    ("debit_date", ""),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        refused
            .expect_text("aria-describedby=\"run_channel_id-banks run_channel_id-error\"")
            .expect_text(&format!(
                "可选：<span class=\"mono\">{demo_bank}</span></p>"
            ));

        let admin = sign_in(&w.server, ADMIN).await;
        admin
            .get("/console/debit")
            .await
            .expect_text(&format!(
                "<span class=\"mono\">{demo_bank}</span>（320600）"
            ))
            .expect_text("<span class=\"mono\">haikou-debit</span>（460100）")
            .expect_text("<option value=\"haikou-debit\">460100</option>")
            .expect_no_text("nantong-old-debit");

        // With no bank left, the page says who adds one, and where.
        assert!(w
            .storage
            .set_channel_enabled(demo_bank, false)
            .await
            .expect("a channel disabled"));
        tax.get("/console/debit")
            .await
            .expect_text("还没有可用的委托扣款银行渠道，请管理员在“渠道”中添加（类型：委托扣款）");
    })
    .await;
}

#[tokio::test]
async fn bank_debit_agreements_and_runs_go_through_the_api_with_failures_listed_masked() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        yibao::operator::channel_add(
            w.storage.as_ref(),
            None,
            "bankad",
            "auto_debit",
            &["320600".to_owned()],
            50,
            "bankad-secret-0123456789".to_owned(),
        )
        .await
        .unwrap();
        let station = sign_in(&w.server, STATION).await;
        assert_eq!(
            station.get("/console/debit").await.status,
            StatusCode::FORBIDDEN
        );
        let auditor = sign_in(&w.server, AUDITOR).await;
        auditor
            .get("/console/debit")
            .await
            .expect_text("委托扣款协议")
            .expect_no_text("签订协议");
        let tax = sign_in(&w.server, TAX).await;
        let page = tax.get("/console/debit").await;
        assert_eq!(page.status, StatusCode::OK);
        page.expect_text("签订协议")
            .expect_text("创建并锁定待扣款项");
        let (id, name) = (w.person.0.as_str(), w.person.1.as_str());
        let agreement = [
            ("agreement_no", "AG-DESK-1"),
            ("channel_id", "bankad"),
            ("payer_id_number", id),
            ("payer_name", name),
            ("account", "6222 0212 3456 7890 123"),
            ("members", ""),
        ];
        assert_eq!(
            auditor
                .post("/console/debit/agreements", &agreement)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            tax.post_raw("/console/debit/agreements", &agreement, false)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let missing = tax
            .post(
                "/console/debit/agreements",
                &[("agreement_no", "AG-DESK-1"), ("channel_id", "bankad")],
            )
            .await;
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        missing
            .expect_text("payer_id_number-error")
            .expect_text("account-error");
        let signed = tax.post("/console/debit/agreements", &agreement).await;
        assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
        signed
            .expect_text("已签订委托扣款协议 AG-DESK-1")
            // Masked as everywhere else (the run's items too): six, ten stars, two.
            .expect_text(&format!("{}**********{}", &id[..6], &id[16..]))
            .expect_no_text(id);
        let again = tax.post("/console/debit/agreements", &agreement).await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        again
            .expect_text("<p class=\"field-error\" id=\"agreement_no-error\">该统筹区已有此协议号</p>");
        // The payer already under that agreement: said beside the payer's ID number.
        let mut second = agreement;
        second[0] = ("agreement_no", "AG-DESK-2");
        let covered = tax.post("/console/debit/agreements", &second).await;
        assert_eq!(covered.status, StatusCode::UNPROCESSABLE_ENTITY);
        covered
            .expect_text(&format!(
                "<p class=\"field-error\" id=\"payer_id_number-error\">{}**********{} 已在委托扣款协议 AG-DESK-1 中",
                &id[..6],
                &id[16..]
            ))
            .expect_no_text("agreement_no-error");
        // A member already covered, with the members typed: said beside the members.
        second[5] = ("members", id);
        let member = tax.post("/console/debit/agreements", &second).await;
        assert_eq!(member.status, StatusCode::UNPROCESSABLE_ENTITY);
        member
            .expect_text("<p class=\"field-error\" id=\"members-error\">")
            .expect_no_text("payer_id_number-error");

        // A run: a bad year beside its field, then made; the request file; the bank's result.
        let bad = tax
            .post(
                "/console/debit/runs",
                &[
                    ("run_channel_id", "bankad"),
                    ("fee_year", "27"),
                    ("debit_date", "2026-11-03"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("fee_year-error");
        let made = tax
            .post(
                "/console/debit/runs",
                &[
                    ("run_channel_id", "bankad"),
                    ("fee_year", "2027"),
                    ("debit_date", "2026-11-02"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
        let run_path = made.location.clone().unwrap();
        let run_no = run_path.rsplit('/').next().unwrap().to_owned();
        let run = tax.get(&run_path).await;
        run.expect_text("下载扣款请求文件")
            .expect_text("导入银行扣款结果")
            .expect_no_text(id);
        let file = tax.get(&format!("{run_path}/request-file")).await;
        assert_eq!(file.status, StatusCode::OK);
        assert!(
            file.content_type.starts_with("text/plain"),
            "{}",
            file.content_type
        );
        assert!(file.body.contains(&run_no));
        assert_eq!(
            auditor
                .get(&format!("{run_path}/request-file"))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        // The bank says the debit failed.
        let items = w.storage.debit_run_items(&run_no, None, 10).await.unwrap();
        assert_eq!(items.len(), 1);
        let result = yibao_statement_file::write_debit_result(
            &run_no,
            "bankad",
            &[(
                items[0].item_ref.clone(),
                yibao_statement_file::DebitOutcome::Failed {
                    reason_code: "E01".into(),
                    reason: "余额不足".into(),
                },
            )],
        )
        .unwrap();
        let result_path = format!("{run_path}/result");
        let late = post_multipart(
            &tax,
            &result_path,
            &[
                Part::File("file", "result.txt", &result),
                Part::Text("_csrf", &tax.csrf),
            ],
            None,
        )
        .await;
        assert_eq!(late.status, StatusCode::FORBIDDEN);
        let garbage = post_multipart(
            &tax,
            &result_path,
            &[
                Part::Text("_csrf", &tax.csrf),
                Part::File("file", "result.txt", b"nonsense\n"),
            ],
            None,
        )
        .await;
        assert_eq!(
            garbage.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            garbage.body
        );
        garbage.expect_text("file-error");
        let imported = post_multipart(
            &tax,
            &result_path,
            &[
                Part::Text("_csrf", &tax.csrf),
                Part::File("file", "result.txt", &result),
            ],
            None,
        )
        .await;
        assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
        imported
            .expect_text("已导入银行扣款结果")
            .expect_text("扣款失败");
        let failures = tax.get(&format!("{run_path}?outcome=failed")).await;
        failures
            .expect_text("扣款失败名单")
            .expect_text("余额不足")
            .expect_no_text(id);
        // Cancelling the agreement.
        let cancel = tax
            .post("/console/debit/agreements/320600/AG-DESK-1/cancel", &[])
            .await;
        assert_eq!(cancel.status, StatusCode::SEE_OTHER);
        tax.get("/console/debit")
            .await
            .expect_text("已解约")
            .expect_text("第1页");
        // Each list pages on its own; a page past the end is empty, with the way back.
        let later = tax.get("/console/debit?apage=2&rpage=1").await;
        assert_eq!(later.status, StatusCode::OK);
        later
            .expect_text("还没有委托扣款协议")
            .expect_text("href=\"/console/debit?rpage=1&#38;apage=1\" rel=\"prev\"");
        let audit = w.storage.list_audit(50).await.unwrap();
        for action in [
            "agreement.sign",
            "debit_run.create",
            "debit_run.result",
            "agreement.cancel",
        ] {
            assert!(audit.iter().any(|a| a.entry.action == action), "{action}");
        }
        // The administrator names the region in the form's 统筹区代码 (`sign_region`), here for
        // another resident, once the run above is made.
        let other = w
            .storage
            .standing(
                RegionCode::parse("320600").unwrap(),
                FeeYear::new(2027).unwrap(),
                Some(&StationCode::parse("ST-01").unwrap()),
                2,
            )
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_ne!(other.id_number.as_str(), id);
        let admin = sign_in(&w.server, ADMIN).await;
        let by_admin = [
            ("agreement_no", "AG-DESK-2"),
            ("sign_region", "320600"),
            ("channel_id", "bankad"),
            ("payer_id_number", other.id_number.as_str()),
            ("payer_name", other.name.as_str()),
            ("account", "6222 0212 3456 7890 124"),
            ("members", ""),
        ];
        let signed = admin.post("/console/debit/agreements", &by_admin).await;
        assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
        signed.expect_text("已签订委托扣款协议 AG-DESK-2");
    })
    .await;
}

#[tokio::test]
async fn the_administrator_changes_a_channels_regions_and_rate() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let tax = sign_in(&w.server, TAX).await;
        assert_eq!(
            tax.get("/console/channels/icbc-nantong/edit").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            tax.post(
                "/console/channels/icbc-nantong/edit",
                &[("edit_regions", "320600"), ("edit_rate", "9")]
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        let admin = sign_in(&w.server, ADMIN).await;
        let form = admin.get("/console/channels/icbc-nantong/edit").await;
        assert_eq!(form.status, StatusCode::OK);
        form.expect_text("修改渠道 icbc-nantong")
            .expect_text("value=\"320600\"");
        let regions = yibao::demo::DEMO_CHANNELS[2].3;
        let other = regions
            .iter()
            .find(|r| **r != "320600")
            .copied()
            .unwrap_or("320500");
        let both = format!("320600,{other}");
        let forged = admin
            .post_raw(
                "/console/channels/icbc-nantong/edit",
                &[("edit_regions", &both), ("edit_rate", "9")],
                false,
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        let bad = admin
            .post(
                "/console/channels/icbc-nantong/edit",
                &[("edit_regions", "110100"), ("edit_rate", "0")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("edit_rate-error");
        let unknown = admin
            .post(
                "/console/channels/icbc-nantong/edit",
                &[("edit_regions", "110100"), ("edit_rate", "9")],
            )
            .await;
        unknown
            .expect_text("edit_regions-error")
            .expect_text("未在本系统登记");
        let done = admin
            .post(
                "/console/channels/icbc-nantong/edit",
                &[("edit_regions", &both), ("edit_rate", "9")],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let channel = w
            .storage
            .get_channel("icbc-nantong")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(channel.rate_per_second, 9);
        assert_eq!(channel.regions.len(), 2);
        let audit = w.storage.list_audit(20).await.unwrap();
        assert!(audit
            .iter()
            .any(|a| a.entry.action == "channel.update" && a.entry.target == "icbc-nantong"));
    })
    .await;
}
