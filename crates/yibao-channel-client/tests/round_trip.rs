//! The client against a tiny in-test server that checks every request signature with `signing`, refuses
//! replays and skewed clocks as the protocol says, and signs its answers: proof that both sides agree on
//! the strings to sign, and that the client refuses an answer it cannot trust.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, NaiveDate};
use serde_json::json;
use yibao_channel_client::signing::{
    self, HEADER_CHANNEL, HEADER_NONCE, HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use yibao_channel_client::types::{
    statement_csv, OpenOrderRequest, OrderStatus, PayableStatus, Payer, PaymentResult,
    PaymentStatus, ReceiptSearchRequest, ReceiptValidity, RefundReason, RefundResultRequest,
    ReportPaymentRequest, ReversalResult, SearchRequest, StatementEntryType, StatementLine,
};
use yibao_channel_client::{ChannelClient, ClientError, RawOptions, ResponseSignature};

const CHANNEL: &str = "bank-01";
const SECRET: &str = "bank-01-secret-for-tests";

/// What the server saw of one request that passed authentication (or needed none).
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    content_type: Option<String>,
    accept: Option<String>,
    body: Vec<u8>,
    authenticated: bool,
}

#[derive(Default)]
struct ServerState {
    nonces: HashSet<String>,
    seen: Vec<Seen>,
}

type Shared = Arc<Mutex<ServerState>>;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An answer signed over `signed_body` while `body` is what is sent (they differ only to test tampering).
fn answer(
    status: StatusCode,
    path_and_query: &str,
    body: Vec<u8>,
    signed_body: Option<&[u8]>,
    content_type: &str,
    sign: bool,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_REQUEST_ID, HeaderValue::from_static("req-test-0001"));
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        headers.insert(axum::http::header::CONTENT_TYPE, ct);
    }
    if sign {
        let ts = chrono::Utc::now().timestamp();
        let nonce = signing::new_nonce();
        let sts = signing::response_string_to_sign(
            status.as_u16(),
            path_and_query,
            ts,
            &nonce,
            signed_body.unwrap_or(&body),
        );
        let sig = signing::sign(SECRET.as_bytes(), &sts);
        for (name, value) in [
            (HEADER_TIMESTAMP, ts.to_string()),
            (HEADER_NONCE, nonce),
            (HEADER_SIGNATURE, sig),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
    }
    (status, headers, body).into_response()
}

fn json_answer(status: StatusCode, pq: &str, value: serde_json::Value) -> Response {
    answer(
        status,
        pq,
        value.to_string().into_bytes(),
        None,
        "application/json",
        true,
    )
}

fn error_answer(status: StatusCode, pq: &str, code: &str, message: &str, sign: bool) -> Response {
    let body = json!({"code": code, "message": message, "request_id": "req-test-0001"});
    answer(
        status,
        pq,
        body.to_string().into_bytes(),
        None,
        "application/json",
        sign,
    )
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pq = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    let mut seen = Seen {
        method: method.to_string(),
        path_and_query: pq.clone(),
        content_type: header(&headers, "content-type").map(str::to_owned),
        accept: header(&headers, "accept").map(str::to_owned),
        body: body.to_vec(),
        authenticated: false,
    };

    if pq.starts_with("/public/") {
        let any_auth = [
            HEADER_CHANNEL,
            HEADER_TIMESTAMP,
            HEADER_NONCE,
            HEADER_SIGNATURE,
        ]
        .iter()
        .any(|h| headers.contains_key(*h));
        if let Ok(mut s) = state.lock() {
            s.seen.push(seen);
        }
        if any_auth {
            return error_answer(
                StatusCode::BAD_REQUEST,
                &pq,
                "INVALID_REQUEST",
                "公开接口无需认证",
                false,
            );
        }
        return answer(
            StatusCode::OK,
            &pq,
            json!({"status": "voided", "amount": 43000, "date": "2020-11-02", "payer_name_masked": "张*三"})
                .to_string()
                .into_bytes(),
            None,
            "application/json",
            false,
        );
    }

    // Authentication, as the protocol says.
    if header(&headers, HEADER_CHANNEL) != Some(CHANNEL) {
        // Unknown channel: no secret to sign the answer with.
        return error_answer(
            StatusCode::UNAUTHORIZED,
            &pq,
            "AUTH_FAILED",
            "渠道认证失败",
            false,
        );
    }
    let ts = header(&headers, HEADER_TIMESTAMP).and_then(|t| t.parse::<i64>().ok());
    let nonce = header(&headers, HEADER_NONCE)
        .unwrap_or_default()
        .to_owned();
    let sig = header(&headers, HEADER_SIGNATURE).unwrap_or_default();
    let verified = ts.is_some_and(|ts| {
        signing::timestamp_fresh(ts, chrono::Utc::now().timestamp())
            && signing::valid_nonce(&nonce)
            && signing::verify(
                SECRET.as_bytes(),
                &signing::request_string_to_sign(method.as_str(), &pq, ts, &nonce, &body),
                sig,
            )
    });
    if !verified {
        return error_answer(
            StatusCode::UNAUTHORIZED,
            &pq,
            "AUTH_FAILED",
            "渠道认证失败",
            true,
        );
    }
    let fresh = state
        .lock()
        .map(|mut s| s.nonces.insert(nonce))
        .unwrap_or(false);
    if !fresh {
        return error_answer(StatusCode::UNAUTHORIZED, &pq, "REPLAYED", "请求重复", true);
    }
    seen.authenticated = true;
    if let Ok(mut s) = state.lock() {
        s.seen.push(seen);
    }

    let path = uri.path();
    let segs: Vec<&str> = path.trim_start_matches("/channel/v1/").split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["payables", "search"]) => json_answer(
            StatusCode::OK,
            &pq,
            json!({"insured": {"name_masked": "张*三", "id_number_masked": "320602**********12"},
              "payables": [{"payable_id": "P1", "item": "resident_medical", "item_name": "城乡居民基本医疗保险",
                "fee_year": 2021, "region": "320600", "region_name": "南通市", "amount": 43000,
                "components": [{"code": "basic", "name": "基本医疗保险", "amount": 38000},
                               {"code": "critical_illness", "name": "大病保险", "amount": 2000},
                               {"code": "long_term_care", "name": "照护保险", "amount": 3000}],
                "status": "unpaid", "window": {"opens": "2020-11-01", "closes": "2020-12-20"}}]}),
        ),
        ("POST", ["orders"]) => json_answer(
            StatusCode::CREATED,
            &pq,
            json!({"order_no": "O1", "amount": 43000, "expires_at": "2020-11-02T10:30:00+08:00", "status": "open"}),
        ),
        ("POST", ["orders", _, "cancel"]) => answer(
            StatusCode::OK,
            &pq,
            Vec::new(),
            None,
            "application/json",
            true,
        ),
        ("POST", ["payments"]) => json_answer(
            StatusCode::OK,
            &pq,
            json!({"result": "partially_refunded", "payment_no": "PN1",
              "receipts": [{"payable_id": "P1", "receipt_code": "32012001", "receipt_number": "0000000001", "check_code": "a1b2c3"}],
              "refund": {"refund_no": "R1", "amount": 43000, "reason": "ALREADY_PAID", "due": "2020-11-04"}}),
        ),
        ("POST", ["payments", "TAMPER", "reversal"]) | ("GET", ["tampered"]) => answer(
            StatusCode::OK,
            &pq,
            br#"{"result":"reversed"}"#.to_vec(),
            Some(br#"{"result":"refused"}"#),
            "application/json",
            true,
        ),
        ("GET", ["payments", "UNSIGNED"]) | ("GET", ["unsigned"]) => answer(
            StatusCode::OK,
            &pq,
            br#"{"payment_no":"PN1","status":"paid","receipts":[]}"#.to_vec(),
            None,
            "application/json",
            false,
        ),
        ("POST", ["payments", _, "reversal"]) => {
            json_answer(StatusCode::OK, &pq, json!({"result": "reversed"}))
        }
        ("GET", ["payments", "unknown"]) => error_answer(
            StatusCode::NOT_FOUND,
            &pq,
            "NOT_FOUND",
            "未收到该笔缴费，请重新上报",
            true,
        ),
        ("GET", ["payments", _]) => json_answer(
            StatusCode::OK,
            &pq,
            json!({"payment_no": "PN1", "status": "reversed", "receipts": []}),
        ),
        ("GET", ["refunds"]) if uri.query() == Some("status=pending") => json_answer(
            StatusCode::OK,
            &pq,
            json!({"refunds": [{"refund_no": "R1", "channel_txn_id": "T1", "amount": 43000,
                                "reason": "REVERSED_EARLIER", "due": "2020-11-04"}]}),
        ),
        ("POST", ["refunds", _, "result"]) => json_answer(
            StatusCode::OK,
            &pq,
            json!({"refund_no": "R1", "status": "succeeded"}),
        ),
        ("PUT", ["statements", date]) => json_answer(
            StatusCode::OK,
            &pq,
            json!({"date": date, "matched": 1, "channel_only": 0, "platform_only": 0,
                   "amount_mismatch": 0, "actions": []}),
        ),
        ("POST", ["receipts", "search"]) => json_answer(
            StatusCode::OK,
            &pq,
            json!([{"receipt_code": "32012001", "receipt_number": "0000000001", "check_code": "a1b2c3",
                    "fee_year": 2021}]),
        ),
        ("GET", ["receipts", code, number]) => {
            if header(&headers, "accept") == Some("application/pdf") {
                answer(
                    StatusCode::OK,
                    &pq,
                    b"%PDF-1.4 test".to_vec(),
                    None,
                    "application/pdf",
                    true,
                )
            } else {
                json_answer(
                    StatusCode::OK,
                    &pq,
                    json!({"receipt_code": code, "receipt_number": number, "amount": 43000}),
                )
            }
        }
        ("GET", ["rate-limited"]) => error_answer(
            StatusCode::TOO_MANY_REQUESTS,
            &pq,
            "RATE_LIMITED",
            "请求过于频繁",
            false,
        ),
        _ => error_answer(StatusCode::NOT_FOUND, &pq, "NOT_FOUND", "接口不存在", true),
    }
}

async fn start() -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(ServerState::default()));
    let app = Router::new().fallback(handle).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await;
    let Ok(listener) = listener else {
        panic!("bind: {listener:?}");
    };
    let addr = listener.local_addr();
    let Ok(addr) = addr else {
        panic!("local_addr: {addr:?}");
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), state)
}

fn client(base: &str) -> ChannelClient {
    match ChannelClient::new(base, CHANNEL, SECRET) {
        Ok(c) => c,
        Err(e) => panic!("client: {e}"),
    }
}

fn last_seen(state: &Shared) -> Seen {
    match state.lock().ok().and_then(|s| s.seen.last().cloned()) {
        Some(seen) => seen,
        None => panic!("the server saw nothing"),
    }
}

fn time(s: &str) -> DateTime<chrono::FixedOffset> {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t,
        Err(e) => panic!("{s}: {e}"),
    }
}

#[tokio::test]
async fn every_endpoint_round_trips_signed_both_ways() -> Result<(), ClientError> {
    let (base, state) = start().await;
    let c = client(&base);

    let found = c
        .search(&SearchRequest {
            id_number: "32060219900101123X".into(),
            fee_year: Some(2021),
            ..Default::default()
        })
        .await?;
    assert_eq!(found.payables[0].status, PayableStatus::Unpaid);
    assert_eq!(found.payables[0].amount, 43000);
    let seen = last_seen(&state);
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        seen.body,
        br#"{"id_number":"32060219900101123X","fee_year":2021}"#
    );

    let opened = c
        .open_order(&OpenOrderRequest {
            channel_order_no: "C1".into(),
            payable_ids: vec!["P1".into()],
            amount: 43000,
            payer: Payer {
                phone: Some("13800000000".into()),
                ..Default::default()
            },
            family_account: None,
            health_card: None,
            agent_code: None,
        })
        .await?;
    assert!(opened.created);
    assert_eq!(opened.order.status, OrderStatus::Open);

    let ack = c.cancel_order("O1").await?;
    assert!(ack.fields.is_empty());
    let seen = last_seen(&state);
    assert_eq!(
        (seen.method.as_str(), seen.path_and_query.as_str()),
        ("POST", "/channel/v1/orders/O1/cancel")
    );
    assert!(seen.body.is_empty());
    assert_eq!(seen.content_type, None);

    let report = c
        .report_payment(&ReportPaymentRequest::for_order(
            "T1",
            "O1",
            43000,
            time("2020-11-02T10:15:00+08:00"),
        ))
        .await?;
    assert_eq!(report.result, PaymentResult::PartiallyRefunded);
    assert_eq!(
        report.refund.map(|r| r.reason),
        Some(RefundReason::AlreadyPaid)
    );
    assert_eq!(
        last_seen(&state).body,
        br#"{"channel_txn_id":"T1","order_no":"O1","amount":43000,"paid_at":"2020-11-02T10:15:00+08:00"}"#
    );

    let reversed = c.reverse_payment("T1", "客户撤销").await?;
    assert_eq!(reversed.result, ReversalResult::Reversed);

    let status = c.payment_status("T1").await?;
    assert_eq!(status.status, PaymentStatus::Reversed);

    let refunds = c.pending_refunds().await?;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].reason, RefundReason::ReversedEarlier);
    assert_eq!(
        last_seen(&state).path_and_query,
        "/channel/v1/refunds?status=pending"
    );

    let ack = c
        .report_refund_result("R1", &RefundResultRequest::succeeded("BR-1"))
        .await?;
    assert_eq!(ack.fields.get("status"), Some(&json!("succeeded")));

    let date = NaiveDate::from_ymd_opt(2020, 11, 2).unwrap_or_default();
    let csv = statement_csv(&[StatementLine {
        channel_txn_id: "T1".into(),
        entry_type: StatementEntryType::Payment,
        amount: 43000,
        occurred_at: time("2020-11-02T10:15:00+08:00"),
        refund_no: None,
    }]);
    let summary = c.upload_statement(date, &csv).await?;
    assert_eq!(summary.date, date);
    assert_eq!(summary.matched.count(), 1);
    let seen = last_seen(&state);
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.path_and_query, "/channel/v1/statements/2020-11-02");
    assert_eq!(seen.content_type.as_deref(), Some("text/csv"));
    assert_eq!(seen.body, csv.as_bytes());

    let receipts = c
        .search_receipts(&ReceiptSearchRequest {
            id_number: "32060219900101123X".into(),
            name: "张三".into(),
            fee_year: None,
        })
        .await?;
    assert_eq!(receipts[0].check_code.as_deref(), Some("a1b2c3"));
    assert_eq!(receipts[0].extra.get("fee_year"), Some(&json!(2021)));

    let doc = c.receipt_json("32012001", "0000000001", "a1b2c3").await?;
    assert_eq!(doc.receipt_number, "0000000001");
    assert_eq!(
        last_seen(&state).path_and_query,
        "/channel/v1/receipts/32012001/0000000001?check_code=a1b2c3"
    );

    let pdf = c.receipt_pdf("32012001", "0000000001", "a1b2c3").await?;
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(last_seen(&state).accept.as_deref(), Some("application/pdf"));

    let verification = c.public_verify("32012001", "0000000001", "a1b2+c3").await?;
    assert_eq!(verification.status, ReceiptValidity::Voided);
    assert_eq!(verification.amount, Some(43000));
    let seen = last_seen(&state);
    assert!(!seen.authenticated);
    assert_eq!(
        seen.path_and_query,
        "/public/receipts/verify?code=32012001&number=0000000001&check_code=a1b2%2Bc3"
    );
    Ok(())
}

#[tokio::test]
async fn user_data_in_paths_is_percent_encoded_and_signed_as_sent() -> Result<(), ClientError> {
    let (base, state) = start().await;
    let c = client(&base);
    // A server that checked another path than the one on the wire would answer 401.
    c.reverse_payment("T 1/2?x#y%", "冲正").await?;
    assert_eq!(
        last_seen(&state).path_and_query,
        "/channel/v1/payments/T%201%2F2%3Fx%23y%25/reversal"
    );
    c.cancel_order("订单/1").await?;
    assert_eq!(
        last_seen(&state).path_and_query,
        "/channel/v1/orders/%E8%AE%A2%E5%8D%95%2F1/cancel"
    );
    let dot = c.cancel_order("..").await;
    assert!(
        matches!(dot, Err(ClientError::InvalidRequest(_))),
        "{dot:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_tampered_response_body_is_a_bad_signature() -> Result<(), ClientError> {
    let (base, _state) = start().await;
    let c = client(&base);
    let raw = c
        .send_raw(
            Method::GET,
            "/channel/v1/tampered",
            Vec::new(),
            RawOptions::default(),
        )
        .await?;
    assert_eq!(raw.status, 200);
    assert!(
        matches!(raw.signature, ResponseSignature::Invalid(_)),
        "{:?}",
        raw.signature
    );
    assert!(!raw.signature_verified());
    // The typed path refuses it even though the body decodes fine.
    let typed = c.reverse_payment("TAMPER", "冲正").await;
    assert!(
        matches!(typed, Err(ClientError::BadSignature { status: 200, .. })),
        "{typed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn typed_calls_refuse_unsigned_successes_but_report_unsigned_errors(
) -> Result<(), ClientError> {
    let (base, _state) = start().await;
    let c = client(&base);

    let raw = c
        .send_raw(
            Method::GET,
            "/channel/v1/unsigned",
            Vec::new(),
            RawOptions::default(),
        )
        .await?;
    assert_eq!(raw.signature, ResponseSignature::Missing);
    assert_eq!(raw.request_id(), Some("req-test-0001"));
    let unsigned = c.payment_status("UNSIGNED").await;
    assert!(
        matches!(unsigned, Err(ClientError::BadSignature { status: 200, .. })),
        "{unsigned:?}"
    );

    // A signed error verifies and is the protocol's error.
    let missing = c.payment_status("unknown").await;
    match missing {
        Err(ClientError::Api {
            status: 404,
            ref code,
            signature_verified: true,
            ref request_id,
            ..
        }) => {
            assert_eq!(code, "NOT_FOUND");
            assert_eq!(request_id, "req-test-0001");
        }
        other => panic!("{other:?}"),
    }

    // An unknown channel cannot get a signed answer; the error still comes through, marked unverified.
    let stranger = match ChannelClient::new(&base, "bank-99", SECRET) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let refused = stranger.pending_refunds().await;
    assert!(
        matches!(
            &refused,
            Err(ClientError::Api {
                status: 401,
                signature_verified: false,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        refused.err().as_ref().and_then(ClientError::api_code),
        Some("AUTH_FAILED")
    );
    Ok(())
}

#[tokio::test]
async fn raw_requests_can_replay_skew_and_forge() -> Result<(), ClientError> {
    let (base, _state) = start().await;
    let c = client(&base);
    let path = "/channel/v1/payments/T1";

    // A replay: same timestamp and nonce, correctly signed.
    let first = c
        .send_raw(Method::GET, path, Vec::new(), RawOptions::default())
        .await?;
    assert_eq!(first.status, 200);
    assert!(first.signature_verified());
    let Some(sent) = first.sent.clone() else {
        panic!("no auth recorded");
    };
    assert!(signing::valid_nonce(&sent.nonce));
    let replay = RawOptions {
        timestamp: Some(sent.timestamp),
        nonce: Some(sent.nonce.clone()),
        ..Default::default()
    };
    let again = c.send_raw(Method::GET, path, Vec::new(), replay).await?;
    assert_eq!(again.status, 401);
    assert!(
        again.signature_verified(),
        "a signed error from a known channel verifies"
    );
    assert_eq!(
        again.sent.as_ref().map(|s| &s.signature),
        Some(&sent.signature)
    );
    assert_eq!(
        again.error_body().map(|e| e.code).as_deref(),
        Some("REPLAYED")
    );

    // A clock 10 minutes slow, through the client and through the raw override.
    let slow = c.with_clock_offset_secs(-600);
    let skewed = slow.payment_status("T1").await;
    assert_eq!(
        skewed.err().as_ref().and_then(ClientError::api_code),
        Some("AUTH_FAILED")
    );
    let skewed = c
        .send_raw(
            Method::GET,
            path,
            Vec::new(),
            RawOptions {
                timestamp: Some(c.now() + 301 + 5),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(skewed.status, 401);

    // A forged signature, and a signature made with the wrong secret.
    let forged = c
        .send_raw(
            Method::GET,
            path,
            Vec::new(),
            RawOptions {
                signature: Some("0".repeat(64)),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        forged.error_body().map(|e| e.code).as_deref(),
        Some("AUTH_FAILED")
    );
    let wrong_secret = c
        .send_raw(
            Method::GET,
            path,
            Vec::new(),
            RawOptions {
                secret: Some("not-the-secret".into()),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(wrong_secret.status, 401);
    // The server signed its refusal with the real secret, which the forger does not hold.
    assert!(matches!(
        wrong_secret.signature,
        ResponseSignature::Invalid(_)
    ));

    // Missing nonce header.
    let no_nonce = c
        .send_raw(
            Method::GET,
            path,
            Vec::new(),
            RawOptions {
                omit_headers: vec![HEADER_NONCE.to_owned()],
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(no_nonce.status, 401);

    // An unsigned 429 passes through as the protocol error, unverified.
    let limited = c
        .send_raw(
            Method::GET,
            "/channel/v1/rate-limited",
            Vec::new(),
            RawOptions::default(),
        )
        .await?;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.signature, ResponseSignature::Missing);
    Ok(())
}

#[tokio::test]
async fn paths_that_would_not_go_on_the_wire_as_given_are_refused() {
    let (base, _state) = start().await;
    let c = client(&base);
    for bad in [
        "/channel/v1/payments/a b",
        "/channel/v1/../v1/payments",
        "channel/v1/payments",
        "/x#frag",
    ] {
        let r = c
            .send_raw(Method::GET, bad, Vec::new(), RawOptions::default())
            .await;
        assert!(
            matches!(r, Err(ClientError::InvalidRequest(_))),
            "{bad}: {r:?}"
        );
    }
}

#[tokio::test]
async fn transport_failures_and_oversized_bodies_are_their_own_errors() {
    let (base, _state) = start().await;
    let small = match ChannelClient::builder(&base, CHANNEL, SECRET)
        .max_response_bytes(16)
        .build()
    {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let r = small.payment_status("T1").await;
    assert!(
        matches!(r, Err(ClientError::ResponseTooLarge { limit: 16 })),
        "{r:?}"
    );

    // A port nobody listens on: bind one, learn its number, close it.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("{e}"),
    };
    let nowhere = client(&format!("http://127.0.0.1:{port}"));
    let r = nowhere.payment_status("T1").await;
    assert!(matches!(r, Err(ClientError::Transport(_))), "{r:?}");
}
