//! The HTTP surface, driven over a real socket on port 0, on each backend.

use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use yibao_server::{Clock, ServerSettings};
use yibao_tests::{on_each_backend, TestServer};

fn clock() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap())
}

async fn demo_server(storage: std::sync::Arc<dyn yibao_storage::Storage>) -> TestServer {
    yibao::demo::load(storage.as_ref()).await.unwrap();
    TestServer::start(storage, clock(), ServerSettings::default()).await
}

/// Asserts the error contract: status, stable code, a Chinese message, and a request id equal to the header.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let header = response
        .headers()
        .get("yibao-request-id")
        .expect("Yibao-Request-Id header")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["request_id"], header.as_str());
    let message = body["message"].as_str().unwrap();
    assert!(
        message
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{message}"
    );
    body
}

#[tokio::test]
async fn health_reports_backend_and_every_response_has_a_request_id() {
    on_each_backend(|storage| async move {
        let backend = storage.backend().name();
        let server = demo_server(storage).await;
        let response = server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["yibao-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 32);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["backend"], backend);
        let again = server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_ne!(again.headers()["yibao-request-id"].to_str().unwrap(), id);
    })
    .await;
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    on_each_backend(|storage| async move {
        let server = demo_server(storage).await;
        let doc: Value = server
            .client
            .get(server.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/healthz",
            "/openapi.json",
            "/api/v1/id-numbers/parse",
            "/api/v1/regions",
            "/api/v1/regions/{region}/fee-policies",
            "/api/v1/regions/{region}/working-days",
        ] {
            assert!(doc["paths"][path].is_object(), "missing {path}");
        }
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    })
    .await;
}

#[tokio::test]
async fn id_numbers_are_checked_like_the_cli() {
    on_each_backend(|storage| async move {
        let server = demo_server(storage).await;
        let parse = |input: &'static str| {
            server
                .client
                .post(server.url("/api/v1/id-numbers/parse"))
                .json(&json!({ "id_number": input }))
                .send()
        };
        let ok: Value = parse("11010519491231002x").await.unwrap().json().await.unwrap();
        assert_eq!(
            ok,
            json!({"id_number": "11010519491231002X", "input_kind": "18", "birth_date": "1949-12-31",
                   "sex": "female", "region_code": "110105"})
        );
        let legacy: Value = parse("110105491231002").await.unwrap().json().await.unwrap();
        assert_eq!(legacy["input_kind"], "15");
        let keypad: Value = parse("11010519491231002").await.unwrap().json().await.unwrap();
        assert_eq!(keypad["id_number"], "11010519491231002X");
        for bad in ["110105194912310021", "1101051949123100", "11010519491231002Y", "99010519491231002X", ""] {
            assert_error(parse(bad).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ID_NUMBER").await;
        }
        // Born after "today" (the server clock says 2020-11-02): 2020-11-03.
        let future = "11010520201103001X";
        let body = assert_error(parse(future).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_ID_NUMBER").await;
        assert!(body["message"].as_str().unwrap().contains("晚于今天"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_get_coded_answers() {
    on_each_backend(|storage| async move {
        let server = demo_server(storage).await;
        let url = server.url("/api/v1/id-numbers/parse");
        let c = &server.client;
        let r = c
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"id_n")
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        let r = c
            .post(&url)
            .json(&json!({"id_number": 110105}))
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
        let r = c.post(&url).body("{}").send().await.unwrap();
        assert_error(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .await;
        let r = c.get(&url).send().await.unwrap();
        assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
        let r = c.get(server.url("/no/such/page")).send().await.unwrap();
        assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    })
    .await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    on_each_backend(|storage| async move {
        yibao::demo::load(storage.as_ref()).await.unwrap();
        let server = TestServer::start(
            storage,
            clock(),
            ServerSettings {
                body_limit_bytes: 1024,
                ..ServerSettings::default()
            },
        )
        .await;
        let url = server.url("/api/v1/id-numbers/parse");
        let just_under = json!({ "id_number": "11010519491231002X", "pad": "x".repeat(900) });
        let r = server
            .client
            .post(&url)
            .json(&just_under)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let over = json!({ "id_number": "11010519491231002X", "pad": "x".repeat(2000) });
        let r = server.client.post(&url).json(&over).send().await.unwrap();
        assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    })
    .await;
}

#[tokio::test]
async fn fee_policies_show_the_seed_document() {
    on_each_backend(|storage| async move {
        let server = demo_server(storage).await;
        let policies: Value = server
            .client
            .get(server.url("/api/v1/regions/320600/fee-policies"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let p2021 = policies
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["fee_year"] == 2021)
            .unwrap();
        assert_eq!(
            p2021["window"],
            json!({"opens": "2020-11-01", "closes": "2020-12-20"})
        );
        let adult = p2021["amounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["category"] == "adult")
            .unwrap();
        assert_eq!(adult["amount"], 43000);
        assert_eq!(
            adult["components"],
            json!([{"code": "basic", "name": "基本医疗保险", "amount": 38000},
                   {"code": "critical_illness", "name": "大病保险", "amount": 2000},
                   {"code": "long_term_care", "name": "照护保险", "amount": 3000}])
        );
        let r = server
            .client
            .get(server.url("/api/v1/regions/999999/fee-policies"))
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_REGION").await;
        let r = server
            .client
            .get(server.url("/api/v1/regions/110100/fee-policies"))
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    })
    .await;
}

#[tokio::test]
async fn working_days_follow_the_holiday_calendar() {
    on_each_backend(|storage| async move {
        let server = demo_server(storage).await;
        let get = |q: &str| {
            server
                .client
                .get(server.url(&format!("/api/v1/regions/320600/working-days?{q}")))
                .send()
        };
        let body: Value = get("from=2020-09-30&days=2")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["date"], "2020-10-10");
        assert_error(
            get("from=2020-13-01&days=2").await.unwrap(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        )
        .await;
        assert_error(
            get("from=2020-09-30&days=999").await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_CALENDAR",
        )
        .await;
        assert_error(
            get("from=2020-09-30").await.unwrap(),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        )
        .await;
    })
    .await;
}
