//! Village agents (村代办员, issue 17) on every backend: the administrator registers an agent of a
//! `village_agent` channel in the console (errors beside the fields); through the reference
//! client the agent finds and pays only for residents of their villages, every order records the
//! agent, money reported without an order goes back whole; the agent's daily list (who paid what,
//! masked) over the channel and in the console; the cash handed in is recorded and compared, short
//! or over flagged.

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use yibao_channel_client::client::{ChannelClient, ClientError};
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentResult, ReportPaymentRequest, SearchRequest,
};
use yibao_tests::console::ConsoleSession;
use yibao_tests::{channel_at, haikou_2027, hainan_at, make_id, on_each_test_db, DbHandle, ADMIN};

const SECRET: &str = "hainan-secret-0123456789";
const AGENTS_SECRET: &str = "village-agents-secret-0123456789";

fn in_window() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 2, 0, 0).unwrap()
}

fn api_code(err: &ClientError) -> (u16, String) {
    (
        err.status().unwrap_or(0),
        err.api_code().unwrap_or_default().to_owned(),
    )
}

fn search(id: &str, agent: Option<&str>) -> SearchRequest {
    SearchRequest {
        id_number: id.to_owned(),
        fee_year: Some(2027),
        agent_code: agent.map(str::to_owned),
        ..Default::default()
    }
}

fn order(no: &str, payable: &(String, i64), agent: Option<&str>) -> OpenOrderRequest {
    OpenOrderRequest {
        channel_order_no: no.to_owned(),
        payable_ids: vec![payable.0.clone()],
        amount: payable.1,
        payer: Payer::default(),
        family_account: None,
        health_card: None,
        agent_code: agent.map(str::to_owned),
    }
}

async fn setup(db: &DbHandle) -> (String, String, String) {
    let villager = make_id("460105", "1960-06-06", 401);
    let neighbour = make_id("460105", "1961-07-07", 402);
    let elsewhere = make_id("460105", "1962-08-08", 403);
    let csv = format!(
        "姓名,身份证号码,参保地区,服务站\n\
         李村一,{villager},460100,V-01\n\
         王村二,{neighbour},460100,V-01\n\
         赵外村,{elsewhere},460100,V-02\n"
    );
    haikou_2027(db, &csv, SECRET).await;
    yibao::operator::channel_add(
        db.storage.as_ref(),
        None,
        "hainan-agents",
        "village_agent",
        &["460100".to_owned()],
        1000,
        AGENTS_SECRET.to_owned(),
    )
    .await
    .unwrap();
    yibao_tests::create_admin(db.storage.as_ref()).await;
    (villager, neighbour, elsewhere)
}

async fn payable_of(client: &ChannelClient, id: &str, agent: Option<&str>) -> (String, i64) {
    let found = client.search(&search(id, agent)).await.unwrap();
    (
        found.payables[0].payable_id.clone(),
        found.payables[0].amount,
    )
}

#[tokio::test]
async fn an_agent_serves_their_villages_records_orders_and_hands_in_cash() {
    on_each_test_db(|db| async move {
        let (villager, neighbour, elsewhere) = setup(&db).await;
        let (server, agents) = channel_at(&db, in_window(), "hainan-agents", AGENTS_SECRET).await;
        let admin = ConsoleSession::sign_in(&server, ADMIN.0, ADMIN.1).await;

        // The administrator registers the agent; a bad village code comes back beside its field.
        let refused = admin
            .post(
                "/console/village-agents",
                &[
                    ("region", "460100"),
                    ("channel_id", "hainan-agents"),
                    ("agent_code", "A-001"),
                    ("name", "符代办"),
                    ("villages", "V-01、村二"),
                ],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        refused.expect_text("id=\"villages-error\"");
        let saved = admin
            .post(
                "/console/village-agents",
                &[
                    ("region", "460100"),
                    ("channel_id", "hainan-agents"),
                    ("agent_code", "A-001"),
                    ("name", "符代办"),
                    ("villages", "V-01"),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);

        // Searches: the agent code is required, an unknown agent refused, residents of other
        // villages answered as not on record.
        let missing = agents.search(&search(&villager, None)).await.unwrap_err();
        assert_eq!(api_code(&missing).0, 400);
        let unknown = agents
            .search(&search(&villager, Some("A-999")))
            .await
            .unwrap_err();
        assert_eq!(api_code(&unknown), (403, "AGENT_NOT_ALLOWED".to_owned()));
        let outside = agents
            .search(&search(&elsewhere, Some("A-001")))
            .await
            .unwrap_err();
        assert_eq!(api_code(&outside).0, 404);
        let villager_payable = payable_of(&agents, &villager, Some("A-001")).await;
        let neighbour_payable = payable_of(&agents, &neighbour, Some("A-001")).await;

        // An order for someone outside the villages (an ID the agent got elsewhere) is refused.
        let (_other_server, other) = hainan_at(&db, in_window(), SECRET).await;
        let elsewhere_payable = payable_of(&other, &elsewhere, None).await;
        let refused = agents
            .open_order(&order("AG-OUT", &elsewhere_payable, Some("A-001")))
            .await
            .unwrap_err();
        assert_eq!(api_code(&refused), (403, "AGENT_NOT_ALLOWED".to_owned()));
        assert!(refused.to_string().contains("代办员只能为本村居民缴费"));
        // Another kind of channel may not name an agent.
        let not_agent = other
            .open_order(&order("OTHER", &villager_payable, Some("A-001")))
            .await
            .unwrap_err();
        assert_eq!(api_code(&not_agent).0, 400);

        // The agent takes both villagers' cash: orders, then payments.
        for (no, payable, minute) in [
            ("AG-1", &villager_payable, 10),
            ("AG-2", &neighbour_payable, 20),
        ] {
            let opened = agents
                .open_order(&order(no, payable, Some("A-001")))
                .await
                .unwrap();
            let paid = agents
                .report_payment(&ReportPaymentRequest::for_order(
                    format!("{no}-T"),
                    opened.order.order_no.clone(),
                    payable.1,
                    DateTime::parse_from_rfc3339(&format!("2026-11-10T10:{minute}:00+08:00"))
                        .unwrap(),
                ))
                .await
                .unwrap();
            assert_eq!(paid.result, PaymentResult::Paid);
        }
        // Money without an order (whose cash?) goes back whole and is not the agent's to hand in.
        let unchecked = agents
            .report_payment(&ReportPaymentRequest {
                channel_txn_id: "AG-NO-ORDER".into(),
                order_no: None,
                payable_ids: Some(vec![elsewhere_payable.0.clone()]),
                amount: elsewhere_payable.1,
                paid_at: DateTime::parse_from_rfc3339("2026-11-10T10:30:00+08:00").unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(unchecked.result, PaymentResult::RefundPending);

        // The agent's daily list over the channel: who paid what, masked, and the total.
        let owed = villager_payable.1 + neighbour_payable.1;
        let day = agents
            .agent_day(
                "A-001",
                chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(day.total, owed);
        assert_eq!(day.lines.len(), 2);
        let text = format!("{day:?}");
        assert!(
            !text.contains(&villager) && !text.contains("李村一"),
            "{text}"
        );
        assert_eq!(day.lines[0].name_masked, "李*一");

        // The console: the day not handed in yet, then short by 10 yuan, then balanced.
        let page = admin
            .get("/console/village-agents?region=460100&date=2026-11-10")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.expect_text("符代办").expect_text("未交款");
        let short = format!("{}.00", owed / 100 - 10);
        let recorded = admin
            .post(
                "/console/village-agents/hand-in",
                &[
                    ("region", "460100"),
                    ("channel_id", "hainan-agents"),
                    ("agent_code", "A-001"),
                    ("date", "2026-11-10"),
                    ("amount", &short),
                ],
            )
            .await;
        assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
        admin
            .get(recorded.location.as_deref().unwrap())
            .await
            .expect_text("短款 10.00 元")
            .expect_text("有1名代办员需核对");
        let bad = admin
            .post(
                "/console/village-agents/hand-in",
                &[
                    ("region", "460100"),
                    ("channel_id", "hainan-agents"),
                    ("agent_code", "A-001"),
                    ("date", "2026-11-10"),
                    ("amount", "三百"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.expect_text("id=\"amount-hainan-agents-A-001-error\"");
        let exact = format!("{}.{:02}", owed / 100, owed % 100);
        admin
            .post(
                "/console/village-agents/hand-in",
                &[
                    ("region", "460100"),
                    ("channel_id", "hainan-agents"),
                    ("agent_code", "A-001"),
                    ("date", "2026-11-10"),
                    ("amount", &exact),
                ],
            )
            .await;
        admin
            .get("/console/village-agents?region=460100&date=2026-11-10")
            .await
            .expect_text("相符")
            .expect_no_text("需核对");
        // The day list in the console, masked.
        let list = admin
            .get("/console/village-agents/hainan-agents/A-001?date=2026-11-10")
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        list.expect_text("共2笔")
            .expect_text("李*一")
            .expect_no_text(&villager);
    })
    .await;
}

/// A `village_agent` channel registered before agents existed goes on as it was until its first
/// agent is registered; an agent's region never changes; a hand-in too large for the books is
/// refused beside its field.
#[tokio::test]
async fn a_channel_without_agents_works_as_before_and_agents_keep_their_region() {
    on_each_test_db(|db| async move {
        let (villager, _neighbour, _elsewhere) = setup(&db).await;
        let (server, agents) = channel_at(&db, in_window(), "hainan-agents", AGENTS_SECRET).await;
        // No agent registered yet: searches, orders and payments without an agent, as before.
        let payable = payable_of(&agents, &villager, None).await;
        let opened = agents
            .open_order(&order("LEGACY-1", &payable, None))
            .await
            .unwrap();
        assert!(opened.created);
        let paid = agents
            .report_payment(&ReportPaymentRequest::for_order(
                "LEGACY-T1",
                opened.order.order_no.clone(),
                payable.1,
                DateTime::parse_from_rfc3339("2026-11-10T10:00:00+08:00").unwrap(),
            ))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);

        let admin = ConsoleSession::sign_in(&server, ADMIN.0, ADMIN.1).await;
        let agent = |region: &'static str| {
            [
                ("region", region),
                ("channel_id", "hainan-agents"),
                ("agent_code", "A-002"),
                ("name", "陈代办"),
                ("villages", "V-01"),
            ]
        };
        let saved = admin
            .post("/console/village-agents", &agent("460100"))
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        // Now the channel must name its agent.
        let missing = agents.search(&search(&villager, None)).await.unwrap_err();
        assert_eq!(api_code(&missing).0, 400);
        // The same code in another region is refused (the channel does not serve it either).
        let moved = admin
            .post("/console/village-agents", &agent("320600"))
            .await;
        assert_eq!(
            moved.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            moved.body
        );
        moved.expect_text("id=\"channel_id-error\"");

        let too_much = admin
            .post(
                "/console/village-agents/hand-in",
                &[
                    ("region", "460100"),
                    ("channel_id", "hainan-agents"),
                    ("agent_code", "A-002"),
                    ("date", "2026-11-10"),
                    ("amount", "2000000000"),
                ],
            )
            .await;
        assert_eq!(
            too_much.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            too_much.body
        );
        too_much.expect_text("交款金额过大");
    })
    .await;
}
