//! What an operations team reaches: the metrics at `/metrics` (scraped as Prometheus would), the
//! API explorer at `/docs` with its vendored script, and logs in which every line of a request
//! names its request id.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_tests::{on_each_test_db, TestServer};

/// The value of the sample `name{labels}` (exactly as written) in an exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.split(' ').next()?.parse().ok()
    })
}

fn demo_channels() -> Vec<(String, String)> {
    yibao::demo::DEMO_CHANNELS
        .iter()
        .map(|(id, _, secret, _)| (id.to_string(), secret.to_string()))
        .collect()
}

/// Channels report payments through the simulator; the scrape then shows the requests by route
/// template and status (never a raw path with an ID number), their latency, the payment reports
/// by result, and, once the background loop refreshed them, the refunds owed and overdue, the
/// outbox backlog and the pool, all agreeing with the database.
#[tokio::test]
async fn a_scrape_shows_traffic_payments_refunds_and_the_outbox() {
    on_each_test_db(|db| async move {
        let storage = db.storage.clone();
        let today = Clock::system().today();
        yibao::demo::load(storage.as_ref()).await.unwrap();
        yibao::demo::load_people(storage.as_ref(), today)
            .await
            .unwrap();
        let state = AppState::new(storage.clone(), Clock::system());
        let server = TestServer::start_with_state(state.clone(), ServerSettings::default()).await;
        let tally = yibao::simulate::run(yibao::simulate::SimulationPlan {
            base_url: server.base_url.clone(),
            channels: demo_channels(),
            residents: yibao::demo::demo_residents(today),
            operations: 80,
            concurrency: 4,
            seed: 11,
        })
        .await
        .unwrap();
        let paid = tally.counts.get("paid").copied().unwrap_or(0);
        assert!(paid > 0, "{:?}", tally.counts);
        // A staff look-up by ID number: the path carries the number, the metrics must not.
        let (_, id_number) = yibao::demo::sample_resident();
        let person = server
            .client
            .get(server.url(&format!("/api/v1/regions/320600/persons/{id_number}")))
            .send()
            .await
            .unwrap();
        assert_eq!(person.status(), 401);
        let missing = server.client.get(server.url("/no/such/page")).send().await.unwrap();
        assert_eq!(missing.status(), 404);

        // The background loop's refresh, as a day a month later sees it: every unsettled refund
        // is then overdue.
        let mut later = state.clone();
        later.clock = Clock::fixed(chrono::Utc::now() + chrono::Duration::days(30));
        yibao_server::metrics::refresh(&later, later.clock.now().timestamp()).await;

        let scrape = server.client.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(scrape.status(), 200);
        assert!(scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        let text = scrape.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            !text.contains(&id_number),
            "an ID number in the metrics:\n{text}"
        );
        assert!(
            text.contains("route=\"/api/v1/regions/{region}/persons/{id_number}\""),
            "{text}"
        );
        let payments = sample(
            &text,
            "yibao_http_requests_total{method=\"POST\",route=\"/channel/v1/payments\",status=\"200\"}",
        )
        .unwrap_or_else(|| panic!("no payment requests counted:\n{text}"));
        assert!(payments >= paid as f64, "{payments} < {paid}");
        assert_eq!(
            sample(
                &text,
                "yibao_http_requests_total{method=\"GET\",route=\"(unmatched)\",status=\"404\"}"
            ),
            Some(1.0),
            "{text}"
        );
        let latency_count = sample(
            &text,
            "yibao_http_request_duration_seconds_count{method=\"POST\",route=\"/channel/v1/payments\"}",
        )
        .unwrap();
        // Latency is by route whatever the status: as many observations as requests.
        let all_statuses: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with("yibao_http_requests_total{method=\"POST\",route=\"/channel/v1/payments\",")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(latency_count, all_statuses, "{text}");
        assert!(text.contains("yibao_http_request_duration_seconds_bucket{le=\"0.005\",method=\"POST\",route=\"/channel/v1/payments\"}")
            || text.contains("yibao_http_request_duration_seconds_bucket{method=\"POST\",route=\"/channel/v1/payments\",le=\"0.005\"}"),
            "{text}");
        let reported = sample(&text, "yibao_payment_reports_total{result=\"paid\"}").unwrap();
        assert!(reported >= paid as f64, "{reported} < {paid}");

        // The database figures agree with what staff see through the storage.
        // Counted here with a query of our own, not the one under test; the demo's sandbox
        // (接入测试, its paid test resident) is no one's backlog.
        let count = "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND region_code <> '119900'";
        let unposted: i64 = match (&db.sqlite, &db.postgres) {
            (Some(sqlite), _) => sqlx::query_scalar(count).fetch_one(sqlite.pool()).await,
            (_, Some(postgres)) => sqlx::query_scalar(count).fetch_one(postgres.pool()).await,
            _ => unreachable!(),
        }
        .unwrap();
        assert!(unposted > 0, "no posting target: every event waits");
        assert_eq!(
            sample(&text, "yibao_outbox_backlog"),
            Some(unposted as f64),
            "{text}"
        );
        assert_eq!(sample(&text, "yibao_outbox_dead_letters"), Some(0.0));
        assert_eq!(sample(&text, "yibao_payables_locked_by_debit_runs"), Some(0.0));
        let overdue = storage
            .overdue_refunds(later.clock.today(), None, 100_000)
            .await
            .unwrap();
        assert_eq!(
            sample(&text, "yibao_refunds_overdue"),
            Some(overdue.len() as f64),
            "{text}"
        );
        assert_eq!(
            sample(&text, "yibao_refunds_owed"),
            Some(overdue.len() as f64),
            "a month later every unsettled refund is overdue"
        );
        let owed_fen: i64 = overdue.iter().map(|r| r.amount_fen.as_fen()).sum();
        assert_eq!(sample(&text, "yibao_refunds_owed_fen"), Some(owed_fen as f64));
        let max = match db.backend {
            yibao_storage::Backend::Sqlite => yibao_storage_sqlite::MAX_CONNECTIONS,
            yibao_storage::Backend::Postgres => yibao_storage_postgres::MAX_CONNECTIONS,
        };
        assert_eq!(
            sample(&text, "yibao_db_pool_max_connections"),
            Some(f64::from(max))
        );
        assert!(sample(&text, "yibao_db_pool_connections{state=\"idle\"}").is_some());
        assert!(sample(&text, "yibao_db_pool_connections{state=\"in_use\"}").is_some());
        assert!(sample(&text, "yibao_metrics_refreshed_timestamp_seconds").unwrap() > 0.0);
        assert!(text.contains("yibao_sqlite_wal_bytes"), "{text}");
    })
    .await;
}

/// With the metrics off the main listener (`metrics_listen` = `off` or an address of its own),
/// `/metrics` there is an ordinary 404; the metrics app alone serves them.
#[tokio::test]
async fn metrics_can_be_taken_off_the_main_listener() {
    on_each_test_db(|db| async move {
        let state = AppState::new(db.storage.clone(), Clock::system());
        let settings = ServerSettings {
            metrics_on_main_listener: false,
            ..ServerSettings::default()
        };
        let server = TestServer::start_with_state(state.clone(), settings).await;
        let r = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "NOT_FOUND");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(yibao_server::serve(
            listener,
            yibao_server::metrics::app(state),
            async {
                let _ = rx.await;
            },
        ));
        let own = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap();
        assert_eq!(own.status(), 200);
        let text = own.text().await.unwrap();
        // The request to the main listener was counted; the API is not on this one.
        assert!(text.contains("status=\"404\""), "{text}");
        let api = reqwest::get(format!("http://{address}/api/v1/regions"))
            .await
            .unwrap();
        assert_eq!(api.status(), 404);
        let _ = tx.send(());
    })
    .await;
}

/// The explorer page: no inline script, a Content-Security-Policy that allows scripts from this
/// server only, RapiDoc pointed at the served document; the script it loads is the vendored file
/// byte for byte (its checksum in VENDORED.md), cached for good and revalidated by ETag.
#[tokio::test]
async fn the_api_explorer_and_its_script_are_served_from_here() {
    on_each_test_db(|db| async move {
        let server = TestServer::start(
            db.storage.clone(),
            Clock::system(),
            ServerSettings::default(),
        )
        .await;
        let page = server.client.get(server.url("/docs")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let headers = page.headers().clone();
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = headers["content-security-policy"].to_str().unwrap();
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap();
        assert_eq!(script_src, "script-src 'self'", "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(headers.contains_key("etag"));
        let html = page.text().await.unwrap();
        assert!(html.contains("<rapi-doc"), "{html}");
        assert!(html.contains("spec-url=\"openapi.json\""), "{html}");
        // Every script is an external file of this server.
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 1, "{html}");
        let tag = scripts[0].split('>').next().unwrap();
        let src = tag
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("inline script: {tag}"));
        assert!(!src.contains("//"), "a script from elsewhere: {src}");
        assert!(scripts[0]
            .split('>')
            .nth(1)
            .unwrap()
            .starts_with("</script"));

        // The spec the page names is there.
        let spec = server
            .client
            .get(server.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(spec.status(), 200);

        // The script, relative to /docs.
        let script = server
            .client
            .get(server.url(&format!("/{src}")))
            .send()
            .await
            .unwrap();
        assert_eq!(script.status(), 200);
        assert!(script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert_eq!(
            script.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let etag = script.headers()["etag"].clone();
        let bytes = script.bytes().await.unwrap();
        let digest = hex_digest(&bytes);
        let vendored = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../yibao-server/assets/vendor/rapidoc-9.3.8/VENDORED.md"
        ))
        .unwrap();
        assert!(
            vendored.contains(&digest),
            "served script {digest} is not the vendored one"
        );
        let again = server
            .client
            .get(server.url(&format!("/{src}")))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());
    })
    .await;
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A writer the log subscriber appends to, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// In JSON logs (`log_format = "json"`) every line a request causes, the handler's own as well as
/// the access line, is a JSON object naming the request id that the response carries.
#[tokio::test]
async fn json_log_lines_of_a_request_carry_its_request_id() {
    on_each_test_db(|db| async move {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            yibao::cli::log_subscriber("info", yibao::config::LogFormat::Json, move || {
                writer.clone()
            });
        // The test's runtime runs on this thread only, so the server's tasks log here too.
        let _guard = tracing::subscriber::set_default(subscriber);
        yibao::demo::load(db.storage.as_ref()).await.unwrap();
        let server = TestServer::start(
            db.storage.clone(),
            Clock::system(),
            ServerSettings::default(),
        )
        .await;
        // A failed sign-in: the handler logs a warning of its own before the access line.
        let r = server
            .client
            .post(server.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "nobody", "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let id = r.headers()["yibao-request-id"].to_str().unwrap().to_owned();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let of_request: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id.as_str())
            .collect();
        assert!(
            of_request.len() >= 2,
            "the handler's line and the access line:\n{text}"
        );
        assert!(
            of_request
                .iter()
                .any(|l| l["fields"]["message"] == "request" && l["fields"]["status"] == 401),
            "{text}"
        );
        // Every line logged while the request ran is in its span.
        for line in &lines {
            if line["fields"]["route"] == "/api/v1/auth/login" {
                assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
            }
        }
    })
    .await;
}
