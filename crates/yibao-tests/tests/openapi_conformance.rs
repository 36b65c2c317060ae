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
        (
            Method::GET,
            "/api/v1/audit",
            query(&["limit", "actor", "action", "from", "to", "before"]),
        ),
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

/// Every operation of the document: `(method, path, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), operation));
        }
    }
    out
}

#[test]
fn every_operation_has_a_chinese_summary_and_its_security() {
    let doc = document();
    let schemes = &doc["components"]["securitySchemes"];
    let channel_schemes = [
        ("channel_id", "Yibao-Channel"),
        ("channel_timestamp", "Yibao-Timestamp"),
        ("channel_nonce", "Yibao-Nonce"),
        ("channel_signature", "Yibao-Signature"),
    ];
    for (name, header) in channel_schemes {
        assert_eq!(schemes[name]["type"], "apiKey", "{name}");
        assert_eq!(schemes[name]["in"], "header", "{name}");
        assert_eq!(schemes[name]["name"], header, "{name}");
    }
    assert_eq!(schemes["staff_bearer"]["type"], "http");
    assert_eq!(schemes["staff_bearer"]["scheme"], "bearer");

    let all = operations(&doc);
    assert!(all.len() >= 55, "{} operations", all.len());
    for (method, path, operation) in all {
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!(
            summary
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{method} {path}: no Chinese summary ({summary:?})"
        );
        let security = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path}: no security"));
        // Signing out works with a session or without one: none, or the staff token.
        let security = if path == "/api/v1/auth/logout" {
            assert_eq!(security.len(), 2, "{method} {path}");
            assert_eq!(security[0], json!({}), "{method} {path}");
            &security[1..]
        } else {
            &security[..]
        };
        assert_eq!(security.len(), 1, "{method} {path}");
        let mut names: Vec<&str> = security[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let tags = operation["tags"].to_string();
        let expected: Vec<&str> = if path.starts_with("/channel/") {
            let mut n: Vec<&str> = channel_schemes.iter().map(|(n, _)| *n).collect();
            n.sort_unstable();
            n
        } else if path != "/api/v1/auth/login"
            && (tags.contains("\"admin\"") || tags.contains("\"settlement\""))
        {
            vec!["staff_bearer"]
        } else {
            // Public: an explicit empty requirement.
            vec![]
        };
        assert_eq!(names, expected, "{method} {path}");
        for name in names {
            assert!(schemes[name].is_object(), "{name} is not declared");
        }
    }
}

/// A schema that says nothing but "an object" (or a list of such), after following `$ref`s.
fn bare_object(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    if schema["type"] == "array" {
        return bare_object(doc, &schema["items"]);
    }
    schema["type"] == "object"
        && schema["properties"].is_null()
        && schema["additionalProperties"].is_null()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Operations whose bodies are still untyped. Exact: none are left; a new one must be typed.
const BODIES_NOT_YET_TYPED: [&str; 0] = [];

#[test]
fn no_body_is_a_bare_object() {
    let doc = document();
    let mut bare = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let mut schemas: Vec<&Value> = Vec::new();
        for response in operation["responses"].as_object().unwrap().values() {
            if let Some(content) = response["content"].as_object() {
                schemas.extend(content.values().map(|c| &c["schema"]));
            }
        }
        if let Some(content) = operation["requestBody"]["content"].as_object() {
            schemas.extend(content.values().map(|c| &c["schema"]));
        }
        if schemas.iter().any(|s| bare_object(&doc, s)) {
            bare.push(format!("{method} {path}"));
        }
    }
    bare.sort();
    let mut expected: Vec<String> = BODIES_NOT_YET_TYPED.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(bare, expected, "operations with a bare-object body");
    // Everything a channel or the public sees is typed, the payment answer first.
    let payment = operation(&doc, &Method::POST, "/channel/v1/payments");
    let answer = resolve(
        &doc,
        &payment["responses"]["200"]["content"]["application/json"]["schema"],
    );
    for field in ["result", "payment_no", "receipts", "refund"] {
        assert!(answer["properties"][field].is_object(), "{field}");
    }
}

/// Checks `value` against `schema` as far as the document says: every key of an object is a
/// documented property, every required property is there, lists and nested objects likewise.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    // `allOf` (a flattened struct): the object's keys may come from any part, each part's
    // required keys must be there.
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = serde_json::Map::new();
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for part in parts {
            let part = resolve(doc, part);
            if let Some(p) = part["properties"].as_object() {
                properties.extend(p.clone());
            }
            required.extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        merged.insert("type".into(), json!("object"));
        merged.insert("properties".into(), Value::Object(properties));
        merged.insert("required".into(), Value::Array(required));
        return conforms(doc, &Value::Object(merged), value, at);
    }
    // A schema that says nothing (`{}`) allows any value: free-form JSON such as an audit
    // entry's detail.
    if schema.as_object().is_some_and(|o| {
        !o.keys().any(|k| {
            matches!(
                k.as_str(),
                "type"
                    | "properties"
                    | "additionalProperties"
                    | "items"
                    | "oneOf"
                    | "anyOf"
                    | "allOf"
                    | "enum"
                    | "$ref"
            )
        })
    }) {
        return Ok(());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            return if options.iter().any(|o| conforms(doc, o, value, at).is_ok()) {
                Ok(())
            } else {
                Err(format!("{at}: {value} matches none of {key}"))
            };
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match value {
        Value::Null if !types.is_empty() && !types.contains(&"null") => {
            Err(format!("{at}: null where {types:?}"))
        }
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (key, v) in map {
                if properties.is_none() && additional.is_object() {
                    // A map: every value of the one schema.
                    conforms(doc, additional, v, &format!("{at}.{key}"))?;
                    continue;
                }
                let Some(p) = properties.and_then(|p| p.get(key)) else {
                    return Err(format!("{at}.{key}: not in the schema"));
                };
                conforms(doc, p, v, &format!("{at}.{key}"))?;
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                if !map.contains_key(name) {
                    return Err(format!("{at}.{name}: required, missing"));
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn assert_answer_conforms(doc: &Value, method: Method, template: &str, status: u16, body: &Value) {
    let schema = &operation(doc, &method, template)["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} {status}: no schema"
    );
    if let Err(e) = conforms(doc, schema, body, "answer") {
        panic!("{method} {template} {status}: {e}\n{body}");
    }
}

#[tokio::test]
async fn channel_answers_conform_to_their_schemas() {
    on_each_backend(|storage| async move {
        yibao::demo::load(storage.as_ref()).await.unwrap();
        yibao::demo::load_people(storage.as_ref(), clock().today())
            .await
            .unwrap();
        let server = TestServer::start(storage, clock(), ServerSettings::default()).await;
        let doc = document();
        let c = &server.client;
        let send = |method: Method, path_and_query: String, body: Vec<u8>, content_type: &str| {
            let timestamp = clock().now().timestamp();
            let nonce = signing::new_nonce();
            let to_sign = signing::request_string_to_sign(
                method.as_str(),
                &path_and_query,
                timestamp,
                &nonce,
                &body,
            );
            let mut request = c
                .request(method, server.url(&path_and_query))
                .header(signing::HEADER_CHANNEL, "wechat")
                .header(signing::HEADER_TIMESTAMP, timestamp.to_string())
                .header(signing::HEADER_NONCE, nonce)
                .header(
                    signing::HEADER_SIGNATURE,
                    signing::sign(b"demo-secret-wechat-pay-000", &to_sign),
                );
            if !body.is_empty() {
                request = request.header("content-type", content_type).body(body);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let json_body = |v: Value| serde_json::to_vec(&v).unwrap();
        let post = |path: &str, v: Value| {
            send(
                Method::POST,
                path.to_owned(),
                json_body(v),
                "application/json",
            )
        };

        // (ID number, name) of the demo roster's first resident.
        let (id_number, name) = yibao::demo::demo_residents(clock().today())
            .into_iter()
            .next()
            .unwrap();
        let resident = (name.as_str(), id_number.as_str());
        let (status, found) = post(
            "/channel/v1/payables/search",
            json!({"id_number": resident.1}),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_answer_conforms(&doc, Method::POST, "/channel/v1/payables/search", 200, &found);
        let payable = found["payables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["status"] == "unpaid")
            .expect("an unpaid payable")
            .clone();
        let (status, order) = post(
            "/channel/v1/orders",
            json!({"channel_order_no": "CONF-1", "payable_ids": [payable["payable_id"]], "amount": payable["amount"]}),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        assert_answer_conforms(&doc, Method::POST, "/channel/v1/orders", 201, &order);
        let paid_at = "2020-11-02T10:15:00+08:00";
        let (status, paid) = post(
            "/channel/v1/payments",
            json!({"channel_txn_id": "CONF-T1", "order_no": order["order_no"], "amount": order["amount"], "paid_at": paid_at}),
        )
        .await;
        assert_eq!((status, paid["result"].as_str()), (200, Some("paid")), "{paid}");
        assert_answer_conforms(&doc, Method::POST, "/channel/v1/payments", 200, &paid);
        // The same payable again, without an order: a refund owed.
        let (status, refunded) = post(
            "/channel/v1/payments",
            json!({"channel_txn_id": "CONF-T2", "payable_ids": [payable["payable_id"]], "amount": payable["amount"], "paid_at": paid_at}),
        )
        .await;
        assert_eq!(
            (status, refunded["result"].as_str()),
            (200, Some("refund_pending")),
            "{refunded}"
        );
        assert_answer_conforms(&doc, Method::POST, "/channel/v1/payments", 200, &refunded);
        for txn in ["CONF-T1", "CONF-T2"] {
            let (status, state) = send(
                Method::GET,
                format!("/channel/v1/payments/{txn}"),
                Vec::new(),
                "",
            )
            .await;
            assert_eq!(status, 200, "{state}");
            assert_answer_conforms(
                &doc,
                Method::GET,
                "/channel/v1/payments/{channel_txn_id}",
                200,
                &state,
            );
        }
        let (status, refunds) = send(
            Method::GET,
            "/channel/v1/refunds?status=pending".to_owned(),
            Vec::new(),
            "",
        )
        .await;
        assert_eq!(status, 200);
        assert!(!refunds.as_array().unwrap().is_empty(), "{refunds}");
        assert_answer_conforms(&doc, Method::GET, "/channel/v1/refunds", 200, &refunds);
        let refund_no = refunds[0]["refund_no"].as_str().unwrap().to_owned();
        let (status, result) = post(
            &format!("/channel/v1/refunds/{refund_no}/result"),
            json!({"status": "succeeded", "channel_refund_id": "CONF-R1"}),
        )
        .await;
        assert_eq!(status, 200, "{result}");
        assert_answer_conforms(
            &doc,
            Method::POST,
            "/channel/v1/refunds/{refund_no}/result",
            200,
            &result,
        );
        let (status, receipts) = post(
            "/channel/v1/receipts/search",
            json!({"id_number": resident.1, "name": resident.0}),
        )
        .await;
        assert_eq!(status, 200, "{receipts}");
        assert_answer_conforms(&doc, Method::POST, "/channel/v1/receipts/search", 200, &receipts);
        let receipt = &paid["receipts"][0];
        let (status, one) = send(
            Method::GET,
            format!(
                "/channel/v1/receipts/{}/{}?check_code={}",
                receipt["receipt_code"].as_str().unwrap(),
                receipt["receipt_number"].as_str().unwrap(),
                receipt["check_code"].as_str().unwrap()
            ),
            Vec::new(),
            "",
        )
        .await;
        assert_eq!(status, 200, "{one}");
        assert!(one["components"].as_array().is_some_and(|c| !c.is_empty()), "{one}");
        assert_answer_conforms(
            &doc,
            Method::GET,
            "/channel/v1/receipts/{receipt_code}/{receipt_number}",
            200,
            &one,
        );
        // A statement with a payment never reported (长款), one reported and one missing.
        let csv = "channel_txn_id,type,amount,occurred_at,refund_no\n\
                   CONF-T1,payment,1,2020-11-02T10:15:00+08:00,\n\
                   CONF-X9,payment,500,2020-11-02T11:00:00+08:00,\n";
        let (status, summary) = send(
            Method::PUT,
            "/channel/v1/statements/2020-11-02".to_owned(),
            csv.as_bytes().to_vec(),
            "text/csv",
        )
        .await;
        assert_eq!(status, 200, "{summary}");
        assert!(!summary["actions"].as_array().unwrap().is_empty(), "{summary}");
        assert_answer_conforms(&doc, Method::PUT, "/channel/v1/statements/{date}", 200, &summary);
        let (status, reversed) = post(
            "/channel/v1/payments/CONF-T9/reversal",
            json!({"reason": "测试"}),
        )
        .await;
        assert_eq!(status, 200, "{reversed}");
        assert_answer_conforms(
            &doc,
            Method::POST,
            "/channel/v1/payments/{channel_txn_id}/reversal",
            200,
            &reversed,
        );
        // The public endpoints.
        let verify: Value = c
            .get(server.url(&format!(
                "/public/receipts/verify?code={}&number={}&check_code={}",
                receipt["receipt_code"].as_str().unwrap(),
                receipt["receipt_number"].as_str().unwrap(),
                receipt["check_code"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_answer_conforms(&doc, Method::GET, "/public/receipts/verify", 200, &verify);
        let paid_status: Value = c
            .get(server.url("/public/paid-status"))
            .query(&[("id_number", resident.1), ("name", resident.0)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_answer_conforms(&doc, Method::GET, "/public/paid-status", 200, &paid_status);
    })
    .await;
}

/// The staff answers clerks use most, from a demo with a payment, a statement with 长款, an
/// agreement and a debit run, each held against the schema the document gives it.
#[tokio::test]
async fn staff_answers_conform_to_their_schemas() {
    on_each_backend(|storage| async move {
        yibao::demo::load(storage.as_ref()).await.unwrap();
        yibao::demo::load_people(storage.as_ref(), clock().today())
            .await
            .unwrap();
        yibao::operator::channel_add(
            storage.as_ref(),
            None,
            "bankad",
            "auto_debit",
            &["320600".to_owned()],
            1000,
            "demo-secret-bank-auto-debit-0".to_owned(),
        )
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
        let call = |method: Method, path: String, body: Option<Value>| {
            let mut request = c.request(method, server.url(&path)).bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let get = |path: &str| call(Method::GET, path.to_owned(), None);
        let checked = |method: Method, template: &'static str, path: String, body: Option<Value>| {
            let doc = &doc;
            let call = &call;
            async move {
                let (status, answer) = call(method.clone(), path, body).await;
                assert_eq!(status, 200, "{method} {template}: {answer}");
                assert_answer_conforms(doc, method, template, 200, &answer);
                answer
            }
        };
        let fee_year = yibao::demo::collecting_fee_year(clock().today());
        let (id_number, name) = yibao::demo::demo_residents(clock().today())
            .into_iter()
            .next()
            .unwrap();

        // The unpaid list (未缴费名单).
        let unpaid = checked(
            Method::GET,
            "/api/v1/regions/{region}/fee-years/{fee_year}/standing",
            format!("/api/v1/regions/320600/fee-years/{fee_year}/standing?only_unpaid=true"),
            None,
        )
        .await;
        assert!(!unpaid.as_array().unwrap().is_empty(), "{unpaid}");

        // A statement with money never reported (长款): reconciled, a refund owed for it.
        let csv = "channel_txn_id,type,amount,occurred_at,refund_no\n\
                   STAFF-X1,payment,500,2020-11-02T11:00:00+08:00,\n";
        let response = c
            .put(server.url("/api/v1/statements/wechat/2020-11-02"))
            .bearer_auth(&token)
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let summary: Value = response.json().await.unwrap();
        assert_answer_conforms(
            &doc,
            Method::PUT,
            "/api/v1/statements/{channel_id}/{date}",
            200,
            &summary,
        );
        let items = checked(
            Method::GET,
            "/api/v1/reconciliation/items",
            "/api/v1/reconciliation/items?from=2020-11-02&to=2020-11-02".to_owned(),
            None,
        )
        .await;
        assert!(!items.as_array().unwrap().is_empty(), "{items}");
        let report = checked(
            Method::GET,
            "/api/v1/reports/reconciliation",
            "/api/v1/reports/reconciliation?from=2020-11-02&to=2020-11-02".to_owned(),
            None,
        )
        .await;
        assert!(report["statements"][0]["summary"].is_object(), "{report}");
        let refunds = checked(
            Method::GET,
            "/api/v1/refunds",
            "/api/v1/refunds".to_owned(),
            None,
        )
        .await;
        assert!(!refunds.as_array().unwrap().is_empty(), "{refunds}");
        for (template, path) in [
            ("/api/v1/reports/refunds", "/api/v1/reports/refunds"),
            (
                "/api/v1/reports/daily-collection",
                "/api/v1/reports/daily-collection",
            ),
            (
                "/api/v1/collection/overdue-refunds",
                "/api/v1/collection/overdue-refunds",
            ),
            ("/api/v1/collection/unposted", "/api/v1/collection/unposted"),
        ] {
            checked(Method::GET, template, path.to_owned(), None).await;
        }

        // An agreement (委托扣款协议) and a debit run under it.
        let agreement = checked(
            Method::POST,
            "/api/v1/agreements",
            "/api/v1/agreements".to_owned(),
            Some(json!({"agreement_no": "AG-CONF-1", "region": "320600", "channel_id": "bankad",
                "payer_id_number": id_number, "payer_name": name, "account": "6222021234567890123"})),
        )
        .await;
        assert_eq!(agreement["agreement_no"], "AG-CONF-1");
        let agreements = checked(
            Method::GET,
            "/api/v1/agreements",
            "/api/v1/agreements?region=320600".to_owned(),
            None,
        )
        .await;
        assert_eq!(agreements.as_array().unwrap().len(), 1, "{agreements}");
        let run = checked(
            Method::POST,
            "/api/v1/debit-runs",
            "/api/v1/debit-runs".to_owned(),
            Some(json!({"channel_id": "bankad", "region": "320600", "fee_year": fee_year,
                "debit_date": "2020-11-03"})),
        )
        .await;
        let run_no = run["run_no"].as_str().expect("a run number").to_owned();
        checked(
            Method::GET,
            "/api/v1/debit-runs",
            "/api/v1/debit-runs".to_owned(),
            None,
        )
        .await;
        let detail = checked(
            Method::GET,
            "/api/v1/debit-runs/{run_no}",
            format!("/api/v1/debit-runs/{run_no}"),
            None,
        )
        .await;
        assert!(!detail["items"].as_array().unwrap().is_empty(), "{detail}");
        checked(
            Method::POST,
            "/api/v1/agreements/{agreement_no}/cancellation",
            "/api/v1/agreements/AG-CONF-1/cancellation".to_owned(),
            None,
        )
        .await;

        // The person's history and the audit log.
        checked(
            Method::GET,
            "/api/v1/regions/{region}/persons/{id_number}/history",
            format!("/api/v1/regions/320600/persons/{id_number}/history"),
            None,
        )
        .await;
        let audit = checked(
            Method::GET,
            "/api/v1/audit",
            "/api/v1/audit?limit=50".to_owned(),
            None,
        )
        .await;
        assert!(!audit.as_array().unwrap().is_empty(), "{audit}");
        // The check is strict through the flattened audit entry: a key the document does not
        // name, or one it requires missing, is caught.
        let schema = &operation(&doc, &Method::GET, "/api/v1/audit")["responses"]["200"]["content"]
            ["application/json"]["schema"];
        let mut entry = audit[0].clone();
        entry["surprise"] = json!(1);
        assert!(conforms(&doc, schema, &json!([entry]), "answer").is_err());
        let mut entry = audit[0].clone();
        entry.as_object_mut().unwrap().remove("actor");
        assert!(conforms(&doc, schema, &json!([entry]), "answer").is_err());
        let (status, _) = get("/api/v1/audit?limit=1").await;
        assert_eq!(status, 200);
    })
    .await;
}
