//! The resident health card (居民健康卡, issue 17) on every backend, through the reference client:
//! a `health_card` channel names the card holder and the terminal on every order; at an agent
//! point (代征点) it pays for the holder's household (户, as the roster recorded it) and is refused
//! `NOT_HOUSEHOLD_MEMBER` for anyone else when the order is opened, before any money is taken; at a
//! self-service machine it pays for anyone; money reported without an order goes back whole; the
//! order records the holder; other channels may not send a card.

use chrono::{DateTime, TimeZone, Utc};
use yibao_channel_client::client::{ChannelClient, ClientError};
use yibao_channel_client::types::{
    HealthCard, OpenOrderRequest, PayableStatus, Payer, PaymentResult, ReportPaymentRequest,
    SearchRequest,
};
use yibao_tests::{channel_at, haikou_2027, hainan_at, make_id, on_each_test_db, DbHandle};

const SECRET: &str = "hainan-secret-0123456789";
const CARD_SECRET: &str = "health-card-secret-0123456789";

fn api_code(err: &ClientError) -> (u16, String) {
    (
        err.status().unwrap_or(0),
        err.api_code().unwrap_or_default().to_owned(),
    )
}

/// In the window: 2026-11-10, 10:00 in China.
fn in_window() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 2, 0, 0).unwrap()
}

async fn card_channel(db: &DbHandle) -> (yibao_tests::TestServer, ChannelClient) {
    yibao::operator::channel_add(
        db.storage.as_ref(),
        None,
        "hainan-health-card",
        "health_card",
        &["460100".to_owned()],
        1000,
        CARD_SECRET.to_owned(),
    )
    .await
    .unwrap();
    channel_at(db, in_window(), "hainan-health-card", CARD_SECRET).await
}

async fn payable_of(client: &ChannelClient, id: &str) -> (String, i64) {
    let found = client
        .search(&SearchRequest {
            id_number: id.to_owned(),
            fee_year: Some(2027),
            ..Default::default()
        })
        .await
        .unwrap();
    (
        found.payables[0].payable_id.clone(),
        found.payables[0].amount,
    )
}

fn order(no: &str, payables: &[(String, i64)], holder: &str, terminal: &str) -> OpenOrderRequest {
    OpenOrderRequest {
        channel_order_no: no.to_owned(),
        payable_ids: payables.iter().map(|(p, _)| p.clone()).collect(),
        amount: payables.iter().map(|(_, a)| a).sum(),
        payer: Payer::default(),
        family_account: None,
        health_card: Some(HealthCard {
            holder_id_number: holder.to_owned(),
            terminal: terminal.to_owned(),
        }),
        agent_code: None,
    }
}

#[tokio::test]
async fn an_agent_point_pays_only_for_the_holders_household_a_machine_for_anyone() {
    on_each_test_db(|db| async move {
        let holder = make_id("460105", "1970-02-02", 301);
        let spouse = make_id("460105", "1972-03-03", 302);
        let neighbour = make_id("460105", "1975-04-04", 303);
        let loner = make_id("460105", "1980-05-05", 304);
        let csv = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n\
             黎大山,{holder},460100,4601050001,户主\n\
             王阿花,{spouse},460100,4601050001,配偶\n\
             符海生,{neighbour},460100,4601050002,户主\n\
             陈独行,{loner},460100,,\n"
        );
        haikou_2027(&db, &csv, SECRET).await;
        let (_server, card) = card_channel(&db).await;
        let spouse_payable = payable_of(&card, &spouse).await;
        let holder_payable = payable_of(&card, &holder).await;
        let neighbour_payable = payable_of(&card, &neighbour).await;
        let loner_payable = payable_of(&card, &loner).await;

        // At an agent point, someone outside the household is refused when the order is opened,
        // naming who (masked); nothing is locked, so the neighbour's own channel still can.
        let refused = card
            .open_order(&order(
                "AP-1",
                &[spouse_payable.clone(), neighbour_payable.clone()],
                &holder,
                "agent_point",
            ))
            .await
            .unwrap_err();
        assert_eq!(
            api_code(&refused),
            (422, "NOT_HOUSEHOLD_MEMBER".to_owned()),
            "{refused}"
        );
        let message = refused.to_string();
        assert!(message.contains("不是持卡人户内成员"), "{message}");
        assert!(
            !message.contains(&neighbour),
            "the ID number is masked: {message}"
        );
        // A holder in no household pays for themselves only.
        let alone = card
            .open_order(&order(
                "AP-LONER",
                std::slice::from_ref(&spouse_payable),
                &loner,
                "agent_point",
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&alone).1, "NOT_HOUSEHOLD_MEMBER");

        // The holder pays for the household (both) at the agent point.
        let opened = card
            .open_order(&order(
                "AP-2",
                &[holder_payable.clone(), spouse_payable.clone()],
                &holder,
                "agent_point",
            ))
            .await
            .unwrap();
        assert!(opened.created);
        let paid = card
            .report_payment(&ReportPaymentRequest::for_order(
                "CARD-T2",
                opened.order.order_no.clone(),
                holder_payable.1 + spouse_payable.1,
                DateTime::parse_from_rfc3339("2026-11-10T10:05:00+08:00").unwrap(),
            ))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);
        assert_eq!(paid.receipts.len(), 2);
        // The order keeps the holder and the terminal.
        let stored: (Option<String>, Option<String>) =
            raw_card_of(&db, &opened.order.order_no).await;
        assert_eq!(
            stored,
            (Some(holder.clone()), Some("agent_point".to_owned()))
        );

        // At a self-service machine the same card pays for anyone (the neighbour).
        let machine = card
            .open_order(&order(
                "SS-1",
                std::slice::from_ref(&neighbour_payable),
                &holder,
                "self_service",
            ))
            .await
            .unwrap();
        let paid = card
            .report_payment(&ReportPaymentRequest::for_order(
                "CARD-SS1",
                machine.order.order_no.clone(),
                neighbour_payable.1,
                DateTime::parse_from_rfc3339("2026-11-10T10:06:00+08:00").unwrap(),
            ))
            .await
            .unwrap();
        assert_eq!(paid.result, PaymentResult::Paid);

        // Money reported without an order (whose card, where?) goes back whole.
        let unchecked = card
            .report_payment(&ReportPaymentRequest {
                channel_txn_id: "CARD-NO-ORDER".into(),
                order_no: None,
                payable_ids: Some(vec![loner_payable.0.clone()]),
                amount: loner_payable.1,
                paid_at: DateTime::parse_from_rfc3339("2026-11-10T10:07:00+08:00").unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(unchecked.result, PaymentResult::RefundPending);
        let refund = unchecked.refund.expect("owed back whole");
        assert_eq!(
            (refund.amount, refund.reason.as_str()),
            (loner_payable.1, "NOT_PAYABLE")
        );
        let found = card
            .search(&SearchRequest {
                id_number: loner.clone(),
                fee_year: Some(2027),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.payables[0].status, PayableStatus::Unpaid);
    })
    .await;
}

#[tokio::test]
async fn the_card_is_required_from_its_channel_checked_and_refused_from_others() {
    on_each_test_db(|db| async move {
        let holder = make_id("460105", "1970-02-02", 311);
        let csv = format!(
            "姓名,身份证号码,参保地区,户号,与户主关系\n黎一,{holder},460100,4601050011,户主\n"
        );
        haikou_2027(&db, &csv, SECRET).await;
        let (_server, card) = card_channel(&db).await;
        let payable = payable_of(&card, &holder).await;

        let mut without = order(
            "NO-CARD",
            std::slice::from_ref(&payable),
            &holder,
            "agent_point",
        );
        without.health_card = None;
        let err = card.open_order(&without).await.unwrap_err();
        assert_eq!(api_code(&err).0, 400, "{err}");
        assert!(err.to_string().contains("holder_id_number"), "{err}");

        let bad_terminal = card
            .open_order(&order(
                "BAD-T",
                std::slice::from_ref(&payable),
                &holder,
                "pos",
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&bad_terminal).0, 400);
        assert!(bad_terminal.to_string().contains("health_card.terminal"));

        let mut typo = holder.clone().into_bytes();
        typo[16] = if typo[16] == b'9' { b'0' } else { typo[16] + 1 };
        let bad_holder = card
            .open_order(&order(
                "BAD-H",
                std::slice::from_ref(&payable),
                &String::from_utf8(typo).unwrap(),
                "agent_point",
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&bad_holder).1, "INVALID_ID_NUMBER");

        // The same order with another terminal is another request.
        card.open_order(&order(
            "SAME",
            std::slice::from_ref(&payable),
            &holder,
            "agent_point",
        ))
        .await
        .unwrap();
        let conflict = card
            .open_order(&order(
                "SAME",
                std::slice::from_ref(&payable),
                &holder,
                "self_service",
            ))
            .await
            .unwrap_err();
        assert_eq!(api_code(&conflict).1, "IDEMPOTENCY_CONFLICT");

        // Another kind of channel may not send a card.
        let (_other_server, other) = hainan_at(&db, in_window(), SECRET).await;
        let refused = other
            .open_order(&order("OTHER", &[payable], &holder, "agent_point"))
            .await
            .unwrap_err();
        assert_eq!(api_code(&refused).0, 400);
        assert!(refused.to_string().contains("仅限居民健康卡渠道"));
    })
    .await;
}

/// The card columns of an order, read below the storage trait.
async fn raw_card_of(db: &DbHandle, order_no: &str) -> (Option<String>, Option<String>) {
    let sql = "SELECT card_holder_id_number, card_terminal FROM orders WHERE order_no = $1";
    match (&db.sqlite, &db.postgres) {
        (Some(s), _) => sqlx::query_as(sql)
            .bind(order_no)
            .fetch_one(s.pool())
            .await
            .unwrap(),
        (_, Some(p)) => sqlx::query_as(sql)
            .bind(order_no)
            .fetch_one(p.pool())
            .await
            .unwrap(),
        _ => unreachable!(),
    }
}
