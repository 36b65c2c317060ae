//! `yibao-lab …`: benchmarks that drive the same code paths as operators do, on the database
//! given, and print what they measured. Figures are recorded in BENCHMARKS.md.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use yibao_domain::{FeeYear, RegionCode};
use yibao_roster_file::Limits;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::roster_import::{import_roster, ImportScope};
use yibao_server::Clock;
use yibao_storage::Storage;

/// Peak resident memory of this process in MiB (Linux: VmHWM), if known.
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn check_character(first17: &str) -> char {
    // Callers pass 17 digits they built; '0' never shows up for a real check character there.
    yibao_domain::id_number::check_character(first17).unwrap_or('0')
}

/// Writes a roster of `rows` distinct adults of 南通市 (320600) to `path`.
pub fn write_roster(path: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    write_roster_of(path, 0..rows)
}

/// Writes the adults numbered `people` to `path`: the same number is the same person in every
/// roster written, different numbers are different people.
fn write_roster_of(path: &std::path::Path, people: std::ops::Range<usize>) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "姓名,身份证号码,参保地区,服务站,联系电话")?;
    for i in people {
        let id = roster_id_number(i)?;
        writeln!(
            out,
            "张三丰,{id},320600,ST-{:02},138{:08}",
            i % 20,
            i % 100_000_000
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The ID number of the adult numbered `i` in the generated rosters.
fn roster_id_number(i: usize) -> anyhow::Result<String> {
    let start = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).context("date")?;
    let birth = start + chrono::Duration::days(i64::try_from(i / 1000).unwrap_or(0));
    let body = format!("320602{}{:03}", birth.format("%Y%m%d"), i % 1000);
    Ok(format!("{body}{}", check_character(&body)))
}

/// Imports the roster at `path` as the bench's unrestricted user, on `today`.
async fn import_file(
    storage: &dyn Storage,
    path: &std::path::Path,
    today: chrono::NaiveDate,
) -> anyhow::Result<yibao_server::services::roster_import::ImportReport> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("roster.csv");
    import_roster(
        storage,
        path,
        name,
        &ImportScope::unrestricted("bench"),
        today,
        None,
        Limits::default(),
        &|_| {},
    )
    .await
    .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))
}

/// Imports a generated roster of `rows` people and assesses it, after a trial import of
/// `trial_rows` other people when that is not 0 (as an agency tries one station's roster
/// before the county's: the statistics then are those of tables nearly empty).
pub async fn enrolment(
    storage: &dyn Storage,
    rows: usize,
    trial_rows: usize,
    debit_members: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=2_000_000).contains(&rows), "rows must be 1 to 2000000");
    anyhow::ensure!(trial_rows <= 10_000, "trial rows must be 0 to 10000");
    anyhow::ensure!(
        debit_members <= rows.min(yibao_storage::settlement::MAX_DEBIT_BATCH),
        "debit members must be 0 to the rows and at most {}",
        yibao_storage::settlement::MAX_DEBIT_BATCH
    );
    yibao::demo::load(storage).await?;
    yibao::demo::ensure_open_policies(storage, Clock::system().today()).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench-roster.csv");
    let t = Instant::now();
    write_roster(&path, rows)?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "generated {rows} rows ({:.1} MiB) in {:.1} s",
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    let today = Clock::system().today();
    if trial_rows > 0 {
        let trial = dir.path().join("trial-roster.csv");
        write_roster_of(&trial, rows..rows + trial_rows)?;
        let t = Instant::now();
        let report = import_file(storage, &trial, today).await?;
        println!(
            "trial import: {} rows read, {} enrolled in {:.1} s",
            report.summary.rows_read,
            report.summary.enrolled,
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let report = import_file(storage, &path, today).await?;
    let import_secs = t.elapsed().as_secs_f64();
    let s = &report.summary;
    println!(
        "import: {} rows read, {} enrolled, {} unchanged, {} rejected in {import_secs:.1} s ({:.0} rows/s)",
        s.rows_read, s.enrolled, s.unchanged, s.rejected, s.rows_read as f64 / import_secs
    );

    let region = RegionCode::parse("320600").map_err(|e| anyhow::anyhow!("{e}"))?;
    let policies = storage.list_fee_policies(region).await?;
    let fee_year: FeeYear = yibao_domain::enrolment_fee_year(&policies, today)
        .map(|p| p.fee_year())
        .context("no open fee year for 320600")?;
    let t = Instant::now();
    let assessed = assess_region(storage, region, fee_year, "bench", today, &|_| {})
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))?;
    let assess_secs = t.elapsed().as_secs_f64();
    println!(
        "assess: {} payables created in {assess_secs:.1} s ({:.0} payables/s)",
        assessed.created,
        assessed.created as f64 / assess_secs
    );
    if debit_members > 0 {
        debit_run(storage, region, fee_year, debit_members, today).await?;
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS: {mib} MiB");
    }
    Ok(())
}

/// A bank's auto-debit run over the first `members` people of the roster: a channel of kind
/// auto_debit, family agreements of twenty, then the run, which locks each member's payable,
/// then the bank's result file, every item debited, which pays them.
async fn debit_run(
    storage: &dyn Storage,
    region: RegionCode,
    fee_year: FeeYear,
    members: usize,
    today: chrono::NaiveDate,
) -> anyhow::Result<()> {
    use yibao_server::services::debit::{
        create_run, import_result, sign_agreement, AgreementInput, AUTO_DEBIT,
    };
    use yibao_statement_file::{write_debit_result, DebitOutcome};
    const BANK: &str = "bench-bank";
    yibao::operator::channel_add(
        storage,
        None,
        BANK,
        AUTO_DEBIT,
        &[region.as_str().to_owned()],
        500,
        "bench-secret-not-for-production".to_owned(),
    )
    .await?;
    let clock = Clock::system();
    let t = Instant::now();
    let per_agreement = yibao_storage::settlement::MAX_AGREEMENT_MEMBERS;
    for (n, first) in (0..members).step_by(per_agreement).enumerate() {
        let family = (first..(first + per_agreement).min(members))
            .map(roster_id_number)
            .collect::<anyhow::Result<Vec<_>>>()?;
        sign_agreement(
            storage,
            &clock,
            AgreementInput {
                agreement_no: &format!("BENCH{n:06}"),
                region: region.as_str(),
                channel_id: BANK,
                payer_id_number: &family[0],
                payer_name: "张三丰",
                account: "6222020000001234",
                members: &family,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))?;
    }
    println!(
        "agreements: {members} people signed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let run = create_run(
        storage,
        &clock,
        BANK,
        region.as_str(),
        i32::from(fee_year.get()),
        today,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))?;
    println!(
        "debit run: {} payables locked in {:.1} s",
        run.item_count,
        t.elapsed().as_secs_f64()
    );
    // The bank's answer: every item debited.
    let items = storage
        .debit_run_items(
            &run.run_no,
            None,
            yibao_storage::settlement::MAX_DEBIT_BATCH,
        )
        .await?;
    let outcomes: Vec<(String, DebitOutcome)> = items
        .iter()
        .map(|item| {
            let outcome = DebitOutcome::Succeeded {
                bank_txn_id: format!("BK-{}", item.item_ref),
                amount: item.amount_fen,
            };
            (item.item_ref.clone(), outcome)
        })
        .collect();
    let file = write_debit_result(&run.run_no, BANK, &outcomes)?;
    let t = Instant::now();
    let summary = import_result(storage, &clock, &run.run_no, &file)
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))?;
    println!(
        "debit result: {} paid, {} failed in {:.1} s",
        summary.succeeded,
        summary.failed,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What [`payments`] measured.
#[derive(Debug, Clone)]
pub struct PaymentBenchResult {
    pub payments: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub baseline_per_second: f64,
}

/// Longest latency a histogram records, microseconds (an hour); longer ones count as this.
pub(crate) const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

/// Latencies in microseconds, 1 µs to [`MAX_LATENCY_MICROS`], three significant digits
/// (HdrHistogram): memory bounded whatever the run's length, where a list of every latency grew
/// with it.
pub(crate) fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
        .expect("constant bounds are valid")
}

/// Records one latency, clamped to the histogram's range.
pub(crate) fn record_latency(histogram: &mut hdrhistogram::Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
}

/// The latency at quantile `q` (0 to 1; 1 is the largest), milliseconds; 0 when none.
pub(crate) fn quantile_ms(histogram: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    histogram.value_at_quantile(q) as f64 / 1000.0
}

/// Runs `one(i)` for `i` in `0..count`, `reporters` at a time; returns how many per second.
async fn drive<F, Fut>(count: usize, reporters: usize, one: F) -> anyhow::Result<f64>
where
    F: Fn(i64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..reporters {
        let next = next.clone();
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), sqlx::Error>(());
                }
                one(i64::try_from(i).unwrap_or(0)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

const BASELINE_UPDATE: &str =
    "UPDATE bench_payable SET status = 'paid' WHERE id = $1 AND status = 'unpaid'";
const BASELINE_INSERT: &str =
    "INSERT INTO bench_payment (id, payable, amount) VALUES ($1, $1, 43000)";

/// The raw transaction a payment is compared with: update one payable, insert one payment with a
/// unique key, commit; `reporters` at once, `count` in all. Returns transactions per second.
///
/// Raw SQL, deliberately: the baseline is the database without yibao, on tables of its own
/// (`bench_payable`, `bench_payment`) created and dropped here.
pub(crate) async fn raw_baseline(
    url: &yibao_storage::DatabaseUrl,
    reporters: usize,
    count: usize,
) -> anyhow::Result<f64> {
    let create = [
        "CREATE TABLE bench_payable (id BIGINT PRIMARY KEY, status TEXT NOT NULL)",
        "CREATE TABLE bench_payment (id BIGINT PRIMARY KEY, payable BIGINT NOT NULL, amount BIGINT NOT NULL)",
    ];
    match url {
        yibao_storage::DatabaseUrl::Postgres(u) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(u32::try_from(reporters).unwrap_or(16))
                .connect(u)
                .await?;
            sqlx::query("DROP TABLE IF EXISTS bench_payable, bench_payment")
                .execute(&pool)
                .await?;
            for sql in create {
                sqlx::query(sql).execute(&pool).await?;
            }
            sqlx::query(
                "INSERT INTO bench_payable SELECT g, 'unpaid' FROM generate_series(0, $1) g",
            )
            .bind(i64::try_from(count).unwrap_or(0))
            .execute(&pool)
            .await?;
            let writer = pool.clone();
            let rate = drive(count, reporters, move |id| {
                let pool = writer.clone();
                async move {
                    let mut tx = pool.begin().await?;
                    sqlx::query(BASELINE_UPDATE)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(BASELINE_INSERT)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
            })
            .await?;
            sqlx::query("DROP TABLE bench_payable, bench_payment")
                .execute(&pool)
                .await?;
            Ok(rate)
        }
        yibao_storage::DatabaseUrl::Sqlite(u) => {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(u)?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            for table in ["bench_payable", "bench_payment"] {
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                    .execute(&pool)
                    .await?;
            }
            for sql in create {
                sqlx::query(sql).execute(&pool).await?;
            }
            sqlx::query(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < $1) \
                 INSERT INTO bench_payable SELECT i, 'unpaid' FROM g",
            )
            .bind(i64::try_from(count).unwrap_or(0))
            .execute(&pool)
            .await?;
            let writer = pool.clone();
            let rate = drive(count, reporters, move |id| {
                let pool = writer.clone();
                async move {
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    sqlx::query(BASELINE_UPDATE)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(BASELINE_INSERT)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
            })
            .await?;
            for table in ["bench_payable", "bench_payment"] {
                sqlx::query(&format!("DROP TABLE {table}"))
                    .execute(&pool)
                    .await?;
            }
            Ok(rate)
        }
    }
}

/// Regions, policies and calendars of the demo, then a roster of `count` adults of 南通市 (the same
/// people every time: [`write_roster`]) imported and assessed. Idempotent: a second call on the same
/// database imports nothing new and creates no payable twice.
pub async fn prepare_payers(storage: &dyn Storage, count: usize) -> anyhow::Result<FeeYear> {
    let today = Clock::system().today();
    yibao::demo::load(storage).await?;
    yibao::demo::ensure_open_policies(storage, today).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("payers.csv");
    write_roster(&path, count)?;
    import_file(storage, &path, today).await?;
    let region = RegionCode::parse("320600").map_err(|e| anyhow::anyhow!("{e}"))?;
    let policies = storage.list_fee_policies(region).await?;
    let fee_year = yibao_domain::enrolment_fee_year(&policies, today)
        .map(|p| p.fee_year())
        .context("no open fee year")?;
    assess_region(storage, region, fee_year, "bench", today, &|_| {})
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))?;
    Ok(fee_year)
}

/// Starts the server in this process on `127.0.0.1:0`, with group commit of `batch` reports (1: off);
/// returns its base URL and the task serving it (abort it to stop).
pub async fn start_in_process(
    storage: std::sync::Arc<dyn Storage>,
    batch: usize,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let mut state = yibao_server::AppState::new(storage.clone(), Clock::system());
    if batch > 1 {
        yibao_server::channel::gathering::Gathering::start(storage, batch)
            .await?
            .install(&mut state);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = yibao_server::app(state, &yibao_server::ServerSettings::default());
    let server = tokio::spawn(yibao_server::serve(listener, app, std::future::pending()));
    Ok((base, server))
}

/// Signed payment reports over HTTP against an in-process server, `reporters` at once, next to the
/// raw transaction on the same database. Writes to the database given: use a fresh one.
pub async fn payments(
    url: &yibao_storage::DatabaseUrl,
    storage: std::sync::Arc<dyn Storage>,
    count: usize,
    reporters: usize,
    batch: usize,
) -> anyhow::Result<PaymentBenchResult> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use yibao_channel_client::types::ReportPaymentRequest;
    anyhow::ensure!(
        (1..=200_000).contains(&count),
        "payments must be 1 to 200000"
    );
    anyhow::ensure!((1..=256).contains(&reporters), "reporters must be 1 to 256");
    prepare_payers(storage.as_ref(), count).await?;
    let today = Clock::system().today();
    // The payables to pay, by the roster's ID numbers.
    let mut targets = Vec::with_capacity(count);
    let start = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).context("date")?;
    for i in 0..count {
        let birth = start + chrono::Duration::days(i64::try_from(i / 1000).unwrap_or(0));
        let body = format!("320602{}{:03}", birth.format("%Y%m%d"), i % 1000);
        let id = yibao_domain::IdNumber::parse(&format!("{body}{}", check_character(&body)), today)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .id_number;
        let p = storage.payables_of_person(&id).await?;
        let p = p.first().context("payable")?;
        targets.push((p.payable_id.clone(), p.amount_fen));
    }
    let secret = "bench-secret-0123456789abcdef";
    if storage.get_channel("bench").await?.is_none() {
        yibao::operator::channel_add(
            storage.as_ref(),
            None,
            "bench",
            "bank_counter",
            &["320600".to_owned()],
            100_000,
            secret.to_owned(),
        )
        .await?;
    }
    let (base, server) = start_in_process(storage.clone(), batch).await?;

    let targets = std::sync::Arc::new(targets);
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..reporters {
        let client =
            yibao_channel_client::ChannelClient::new(&base, "bench", secret.as_bytes().to_vec())?;
        let targets = targets.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = latency_histogram();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((payable, amount)) = targets.get(i) else {
                    return Ok::<_, anyhow::Error>(latencies);
                };
                let paid_at =
                    chrono::Utc::now().with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME);
                let report = ReportPaymentRequest::for_payables(
                    format!("B{i}"),
                    vec![payable.clone()],
                    amount.as_fen(),
                    paid_at,
                );
                let t = Instant::now();
                let r = client.report_payment(&report).await?;
                record_latency(&mut latencies, t.elapsed());
                anyhow::ensure!(
                    r.result == yibao_channel_client::types::PaymentResult::Paid,
                    "payment {i}: {:?}",
                    r.result
                );
            }
        }));
    }
    let mut latencies = latency_histogram();
    for t in tasks {
        latencies.add(t.await??)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    server.abort();
    let report = yibao::operator::check_invariants(storage.as_ref()).await?;
    anyhow::ensure!(report.holds(), "invariants broken: {report:?}");
    let baseline = raw_baseline(url, reporters, count).await?;
    Ok(PaymentBenchResult {
        payments: count,
        seconds,
        p50_ms: quantile_ms(&latencies, 0.50),
        p95_ms: quantile_ms(&latencies, 0.95),
        p99_ms: quantile_ms(&latencies, 0.99),
        max_ms: quantile_ms(&latencies, 1.0),
        baseline_per_second: baseline,
    })
}
