//! 缴费公示, the printable listing of the paid, as a browser meets it on both backends: masked,
//! on numbered sheets, within each role's scope (a station operator's own station only), a bad
//! fee year shown beside its field, and every listing read audited like the API's.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use reqwest::StatusCode;
use yibao_channel_client::client::ChannelClient;
use yibao_channel_client::types::{PaymentResult, ReportPaymentRequest, SearchRequest};
use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_server::{Clock, ServerSettings};
use yibao_storage::Storage;
use yibao_tests::console::ConsoleSession;
use yibao_tests::{on_each_backend, TestServer};

/// 2026-11-02 10:00 in Beijing: inside the demo's 2027 window.
fn instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap()
}

const ADMIN: (&str, &str) = ("admin", "yibao-demo-admin");
const STATION: (&str, &str) = ("nt-st01", "yibao-demo-station");
const TAX: (&str, &str) = ("nt-tax", "yibao-demo-tax");

struct World {
    server: TestServer,
    storage: Arc<dyn Storage>,
    /// (ID number, name) of the 320600 resident of ST-01 who paid.
    payer: (String, String),
}

/// The demo, and one resident of ST-01 who paid 2027 at the bank.
async fn world(storage: Arc<dyn Storage>) -> World {
    yibao::demo::load(storage.as_ref()).await.unwrap();
    let today = instant().date_naive();
    yibao::demo::load_people(storage.as_ref(), today)
        .await
        .unwrap();
    let rows = storage
        .standing(
            RegionCode::parse("320600").unwrap(),
            FeeYear::new(2027).unwrap(),
            Some(&StationCode::parse("ST-01").unwrap()),
            50,
        )
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.standing == "unpaid")
        .expect("an unpaid demo resident of ST-01");
    let payer = (row.id_number.as_str().to_owned(), row.name.clone());
    let server = TestServer::start(
        storage.clone(),
        Clock::fixed(instant()),
        ServerSettings::default(),
    )
    .await;
    let (id, _, secret, _) = yibao::demo::DEMO_CHANNELS[0];
    let bank = ChannelClient::builder(&server.base_url, id.to_owned(), secret.as_bytes().to_vec())
        .clock_offset_secs(instant().timestamp() - Utc::now().timestamp())
        .build()
        .unwrap();
    let found = bank
        .search(&SearchRequest {
            id_number: payer.0.clone(),
            insured_number: None,
            name: Some(payer.1.clone()),
            region: None,
            fee_year: None,
            agent_code: None,
        })
        .await
        .unwrap();
    let payable = &found.payables[0];
    let paid = bank
        .report_payment(&ReportPaymentRequest::for_payables(
            "LISTING-T-1",
            vec![payable.payable_id.clone()],
            payable.amount,
            instant().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap()),
        ))
        .await
        .unwrap();
    assert_eq!(paid.result, PaymentResult::Paid);
    World {
        server,
        storage,
        payer,
    }
}

async fn sign_in(w: &World, who: (&str, &str)) -> ConsoleSession {
    ConsoleSession::sign_in(&w.server, who.0, who.1).await
}

#[tokio::test]
async fn the_listing_of_the_paid_is_masked_on_numbered_sheets_within_each_scope() {
    on_each_backend(|storage| async move {
        let w = world(storage).await;
        let (id, name) = &w.payer;
        let masked_id = format!("{}**********{}", &id[..6], &id[16..]);
        // The station operator: the form, then their own station's listing.
        let station = sign_in(&w, STATION).await;
        let form = station.get("/console/listing").await;
        assert_eq!(form.status, StatusCode::OK);
        form.expect_text("生成公示").expect_text("缴费公示");
        let listing = station.get("/console/listing?year=2027").await;
        assert_eq!(listing.status, StatusCode::OK);
        listing
            .expect_text(&masked_id)
            .expect_no_text(id)
            .expect_no_text(&format!(">{name}<"))
            .expect_text("第 1 页 / 共 1 页")
            .expect_text("（服务站 ST-01）")
            .expect_text("data-print");
        // Another station asked for in the address: still their own.
        let other = station
            .get("/console/listing?station=ST-02&year=2027")
            .await;
        other
            .expect_text("（服务站 ST-01）")
            .expect_text(&masked_id);
        // The tax office chooses a station of its region: ST-02 has no payer yet.
        let tax = sign_in(&w, TAX).await;
        let st02 = tax.get("/console/listing?station=ST-02&year=2027").await;
        assert_eq!(st02.status, StatusCode::OK);
        st02.expect_no_text(&masked_id)
            .expect_text("还没有人缴纳 2027 年度");
        // The administrator, for the whole region; a bad year beside its field.
        let admin = sign_in(&w, ADMIN).await;
        admin
            .get("/console/listing?region=320600&year=2027")
            .await
            .expect_text(&masked_id);
        let bad = admin.get("/console/listing?region=320600&year=20x7").await;
        assert_eq!(bad.status, StatusCode::OK);
        bad.expect_text("id=\"year-error\"")
            .expect_text("请输入四位数的缴费年度")
            .expect_no_text("sheet-foot");
        let bad_station = tax
            .get("/console/listing?station=%E7%AB%99&year=2027")
            .await;
        bad_station.expect_text("id=\"station-error\"");
        // Every listing read is audited, marked as masked and as the console's.
        let audit = w.storage.list_audit(50).await.unwrap();
        let reads: Vec<_> = audit
            .iter()
            .filter(|a| a.entry.action == "read.paid_listing")
            .collect();
        assert_eq!(reads.len(), 4, "{reads:?}");
        assert!(reads
            .iter()
            .all(|a| a.entry.detail["via"] == "console" && a.entry.detail["masked"] == true));
    })
    .await;
}
