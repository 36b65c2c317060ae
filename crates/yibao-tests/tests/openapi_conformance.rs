//! The OpenAPI document (/openapi.json) against what the server answers: regressions for what
//! Schemathesis (scripts/schemathesis) found. Each request here got a status the document did not
//! list, or a body its schema did not allow, or went to a parameter documented in the wrong place.

use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use yibao_channel_client::signing;
use yibao_server::{Clock, ServerSettings};
use yibao_tests::{on_each_backend, TestServer};

/// A parameter and where it goes: `(name, in)`.
type Placed = (String, String);

fn clock() -> Clock {
    Clock::fixed(Utc.with_ymd_and_hms(2020, 11, 2, 2, 0, 0).unwrap())
}

fn document() -> Value {
    serde_json::to_value(yibao_server::openapi_document()).unwrap()
}

fn operation<'a>(doc: &'a Value, method: &Method, path: &str) -> &'a Value {
    let operation = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    operation
}

/// Where the document says each parameter of an operation goes: `(name, in)`.
fn parameters(doc: &Value, method: Method, path: &str) -> Vec<(String, String)> {
    operation(doc, &method, path)["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["in"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn query_parameters_are_documented_in_the_query() {
    let doc = document();
    let query = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), "query".to_owned()))
            .collect()
    };
    let path_and = |path: &[&str], q: &[&str]| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = path
            .iter()
            .map(|n| (n.to_string(), "path".to_owned()))
            .collect();
        all.extend(query(q));
        all
    };
    let cases: [(Method, &str, Vec<Placed>); 9] = [
        (Method::GET, "/api/v1/audit", query(&["limit"])),
        (
            Method::POST,
            "/api/v1/rosters",
            query(&["file_name", "fee_year"]),
        ),
        (
            Method::GET,
            "/api/v1/regions/{region}/fee-years/{fee_year}/standing",
            path_and(
                &["region", "fee_year"],
                &["station", "only_unpaid", "format"],
            ),
        ),
        (
            Method::GET,
            "/api/v1/regions/{region}/fee-years/{fee_year}/paid-listing",
            path_and(&["region", "fee_year"], &["station"]),
        ),
        (
            Method::GET,
            "/api/v1/regions/{region}/working-days",
            path_and(&["region"], &["from", "days"]),
        ),
        (Method::GET, "/channel/v1/refunds", query(&["status"])),
        (
            Method::GET,
            "/channel/v1/receipts/{receipt_code}/{receipt_number}",
            path_and(&["receipt_code", "receipt_number"], &["check_code"]),
        ),
        (
            Method::GET,
            "/public/receipts/verify",
            query(&["code", "number", "check_code"]),
        ),
        (
            Method::GET,
            "/public/paid-status",
            query(&["id_number", "name", "fee_year"]),
        ),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            parameters(&doc, method.clone(), path),
            expected,
            "{method} {path}"
        );
    }
}

#[test]
fn list_answers_are_arrays_new_orders_201_and_the_statement_csv() {
    let doc = document();
    let refunds = operation(&doc, &Method::GET, "/channel/v1/refunds");
    assert_eq!(
        refunds["responses"]["200"]["content"]["application/json"]["schema"]["type"],
        "array"
    );
    let receipts = operation(&doc, &Method::POST, "/channel/v1/receipts/search");
    assert_eq!(
        receipts["responses"]["200"]["content"]["application/json"]["schema"]["type"],
        "array"
    );
    // §2: 201 for a new order, 200 for the same channel_order_no again.
    let orders = operation(&doc, &Method::POST, "/channel/v1/orders");
    assert!(orders["responses"]["201"].is_object() && orders["responses"]["200"].is_object());
    let statement = operation(&doc, &Method::PUT, "/channel/v1/statements/{date}");
    assert!(statement["requestBody"]["content"]["text/csv"].is_object());
}

#[test]
fn channel_request_bodies_have_schemas_and_public_endpoints_their_rate_limit() {
    let doc = document();
    for (method, path, field) in [
        (Method::POST, "/channel/v1/payables/search", "id_number"),
        (Method::POST, "/channel/v1/orders", "payable_ids"),
        (Method::POST, "/channel/v1/payments", "channel_txn_id"),
        (
            Method::POST,
            "/channel/v1/payments/{channel_txn_id}/reversal",
            "reason",
        ),
        (
            Method::POST,
            "/channel/v1/refunds/{refund_no}/result",
            "channel_refund_id",
        ),
        (Method::POST, "/channel/v1/receipts/search", "name"),
    ] {
        let schema =
            &operation(&doc, &method, path)["requestBody"]["content"]["application/json"]["schema"];
        let name = schema["$ref"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let properties = &doc["components"]["schemas"][name]["properties"];
        assert!(
            properties[field].is_object(),
            "{path}: {schema} has no {field}"
        );
    }
    for path in ["/public/paid-status", "/public/receipts/verify"] {
        assert!(
            operation(&doc, &Method::GET, path)["responses"]["429"].is_object(),
            "{path}"
        );
    }
}

/// Sends a request and checks that its status is one the document lists for the operation, and
/// that an error answer comes with the error body the document promises.
async fn assert_documented(
    doc: &Value,
    method: Method,
    template: &str,
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) {
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(status, expected, "{method} {template}");
    let documented = &operation(doc, &method, template)["responses"][status.as_str()];
    assert!(
        documented.is_object(),
        "{method} {template} answered {status}, which the document does not list"
    );
    if !status.is_success() {
        let body: Value = response.json().await.unwrap();
        assert!(
            body["code"].is_string() && body["request_id"].is_string(),
            "{body}"
        );
        assert_eq!(
            documented["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{method} {template} {status}"
        );
    }
}

#[tokio::test]
async fn shared_error_answers_are_documented() {
    on_each_backend(|storage| async move {
        yibao::demo::load(storage.as_ref()).await.unwrap();
        let server = TestServer::start(storage, clock(), ServerSettings::default()).await;
        let doc = document();
        let c = &server.client;

        // Staff endpoints without a session: 401 AUTH_REQUIRED.
        assert_documented(
            &doc,
            Method::GET,
            "/api/v1/audit",
            c.get(server.url("/api/v1/audit?limit=1")),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_documented(
            &doc,
            Method::GET,
            "/api/v1/collection/unposted",
            c.get(server.url("/api/v1/collection/unposted")),
            StatusCode::UNAUTHORIZED,
        )
        .await;

        // A JSON body sent as something else: 415; not JSON at all: 400.
        assert_documented(
            &doc,
            Method::POST,
            "/api/v1/auth/login",
            c.post(server.url("/api/v1/auth/login"))
                .body("username=admin"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        assert_documented(
            &doc,
            Method::POST,
            "/api/v1/id-numbers/parse",
            c.post(server.url("/api/v1/id-numbers/parse"))
                .header("content-type", "application/json")
                .body("{"),
            StatusCode::BAD_REQUEST,
        )
        .await;

        // A query parameter missing: 400.
        assert_documented(
            &doc,
            Method::GET,
            "/api/v1/regions/{region}/working-days",
            c.get(server.url("/api/v1/regions/320600/working-days?days=2")),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_documented(
            &doc,
            Method::GET,
            "/public/paid-status",
            c.get(server.url("/public/paid-status?name=张三")),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_documented(
            &doc,
            Method::GET,
            "/public/receipts/verify",
            c.get(server.url("/public/receipts/verify?code=X")),
            StatusCode::BAD_REQUEST,
        )
        .await;

        // The public endpoints need no signature; an unknown person or receipt is 404.
        assert_documented(
            &doc,
            Method::GET,
            "/public/paid-status",
            c.get(server.url("/public/paid-status?id_number=11010519491231002X&name=张三")),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_documented(
            &doc,
            Method::GET,
            "/public/receipts/verify",
            c.get(server.url("/public/receipts/verify?code=X&number=1&check_code=abc")),
            StatusCode::NOT_FOUND,
        )
        .await;

        // Channel endpoints without a signature: 401 AUTH_FAILED.
        assert_documented(
            &doc,
            Method::GET,
            "/channel/v1/refunds",
            c.get(server.url("/channel/v1/refunds?status=pending")),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_documented(
            &doc,
            Method::POST,
            "/channel/v1/payables/search",
            c.post(server.url("/channel/v1/payables/search"))
                .json(&json!({"id_number": "11010519491231002X"})),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn staff_and_channel_answers_are_documented() {
    on_each_backend(|storage| async move {
        yibao::demo::load(storage.as_ref()).await.unwrap();
        yibao::demo::load_people(storage.as_ref(), clock().today())
            .await
            .unwrap();
        let server = TestServer::start(storage, clock(), ServerSettings::default()).await;
        let doc = document();
        let c = &server.client;
        let login: Value = c
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "yibao-demo-admin"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("a token").to_owned();
        let bearer = |r: reqwest::RequestBuilder| r.bearer_auth(&token);

        // A malformed region, fee year or ID number in the path: 422.
        for (method, template, url) in [
            (
                Method::GET,
                "/api/v1/regions/{region}/persons/{id_number}",
                "/api/v1/regions/0/persons/11010519491231002X",
            ),
            (
                Method::GET,
                "/api/v1/regions/{region}/persons/{id_number}/history",
                "/api/v1/regions/320600/persons/1/history",
            ),
            (
                Method::GET,
                "/api/v1/regions/{region}/fee-years/{fee_year}/standing",
                "/api/v1/regions/0/fee-years/2021/standing",
            ),
            (
                Method::GET,
                "/api/v1/regions/{region}/fee-years/{fee_year}/paid-listing",
                "/api/v1/regions/320600/fee-years/0/paid-listing",
            ),
            (
                Method::POST,
                "/api/v1/regions/{region}/fee-years/{fee_year}/assessment",
                "/api/v1/regions/0/fee-years/2021/assessment",
            ),
            (
                Method::POST,
                "/api/v1/regions/{region}/fee-years/{fee_year}/persons/{id_number}/reassessment",
                "/api/v1/regions/320600/fee-years/2021/persons/1/reassessment",
            ),
        ] {
            let request = bearer(c.request(method.clone(), server.url(url)));
            assert_documented(
                &doc,
                method,
                template,
                request,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }

        // Signed channel requests: a payment yibao never saw is 404 (§5); the refund list is an
        // array, as documented.
        let signed = |method: Method, path_and_query: &str| {
            let timestamp = clock().now().timestamp();
            let nonce = signing::new_nonce();
            let to_sign = signing::request_string_to_sign(
                method.as_str(),
                path_and_query,
                timestamp,
                &nonce,
                b"",
            );
            c.request(method, server.url(path_and_query))
                .header(signing::HEADER_CHANNEL, "wechat")
                .header(signing::HEADER_TIMESTAMP, timestamp.to_string())
                .header(signing::HEADER_NONCE, nonce)
                .header(
                    signing::HEADER_SIGNATURE,
                    signing::sign(b"demo-secret-wechat-pay-000", &to_sign),
                )
        };
        assert_documented(
            &doc,
            Method::GET,
            "/channel/v1/payments/{channel_txn_id}",
            signed(Method::GET, "/channel/v1/payments/T20201102NEVER"),
            StatusCode::NOT_FOUND,
        )
        .await;
        let refunds: Value = signed(Method::GET, "/channel/v1/refunds?status=pending")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(refunds.is_array(), "{refunds}");
    })
    .await;
}
