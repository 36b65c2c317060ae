//! `yibao-lab soak`: the long-running behaviour as a tested property. It prepares (or reuses) a
//! database of a county's size, starts `yibao serve` as a child process (so that its memory, file
//! descriptors and threads can be read in `/proc`), plays the mixed channel load of
//! [`crate::load`] against it for a given time, and samples every interval the server's RSS, open
//! file descriptors and threads, the database's and the WAL's size, the row counts of the tables
//! that grow with payments, and the throughput. It prints a table per minute, writes the samples as
//! CSV and draws them as SVG, checks the ledger and the invariants at the end, and fails when
//! throughput fell (last minute below 0.8× the first), RSS or file descriptors keep rising, or the
//! SQLite WAL passed its bound.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use yibao_storage::{DatabaseUrl, Storage};

use crate::load::{LoadPlan, LoadReport, Mix, Progress, ServerProcess, StopRule};

/// The tables that grow with the channel load: counted at every sample.
pub const GROWING_TABLES: [&str; 10] = [
    "payments",
    "payment_applications",
    "receipts",
    "refunds",
    "reversals",
    "orders",
    "order_items",
    "outbox",
    "channel_nonces",
    "audit_log",
];

/// Throughput in the last minute below this share of the first minute's fails the soak.
pub const MIN_THROUGHPUT_RATIO: f64 = 0.8;

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub residents: usize,
    pub duration: Duration,
    pub interval: Duration,
    pub concurrency: usize,
    pub channels: usize,
    pub mix: Mix,
    pub setup: bool,
    /// A running server; `None`: start `yibao serve` as a child process.
    pub url: Option<String>,
    pub server_pid: Option<u32>,
    /// The configuration file the child server is given, if any.
    pub config_file: Option<PathBuf>,
    pub retry: bool,
    pub csv: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    /// Where the child server's log goes.
    pub server_log: Option<PathBuf>,
    /// Past this size (SQLite) the WAL fails the soak.
    pub wal_bound_bytes: u64,
    pub seed: u64,
}

/// One sample, `seconds` after the load started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub seconds: f64,
    /// Requests answered since the start, and those that failed.
    pub requests: u64,
    pub errors: u64,
    pub rss_kib: Option<u64>,
    pub fds: Option<u64>,
    pub threads: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub db_bytes: Option<u64>,
    pub wal_bytes: Option<u64>,
    /// Rows of [`GROWING_TABLES`], in that order (-1: not counted).
    pub rows: Vec<i64>,
}

/// What the soak found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub first_rate: f64,
    pub last_rate: f64,
    pub problems: Vec<String>,
}

/// Requests per second between two samples.
fn rate(a: &Sample, b: &Sample) -> f64 {
    let dt = b.seconds - a.seconds;
    if dt <= 0.0 {
        return 0.0;
    }
    b.requests.saturating_sub(a.requests) as f64 / dt
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Whether a figure "keeps rising": after a warm-up (the first minute, or the first third of a
/// short run), the median of the last third of the samples is above the highest of the first third
/// by more than `margin`. A leak rises steadily and passes; a level that moved once (a pool filled,
/// a cache warmed) or noise around a level does not.
pub fn keeps_rising(points: &[(f64, f64)], warm_up: f64, margin: impl Fn(f64) -> f64) -> bool {
    let after: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t >= warm_up)
        .map(|(_, v)| *v)
        .collect();
    if after.len() < 3 {
        return false;
    }
    let third = after.len() / 3;
    let first_max = after[..third].iter().copied().fold(f64::MIN, f64::max);
    let last_median = median(after[after.len() - third..].to_vec());
    last_median > first_max + margin(first_max)
}

/// Judges the samples: throughput kept, RSS and file descriptors flat, the WAL bounded.
pub fn judge(samples: &[Sample], wal_bound_bytes: u64) -> Verdict {
    let mut verdict = Verdict::default();
    if samples.len() < 3 {
        verdict
            .problems
            .push(format!("too few samples ({}) to judge", samples.len()));
        return verdict;
    }
    let end = samples[samples.len() - 1].seconds;
    // A minute each, or a third of a run shorter than three minutes.
    let window = if end >= 180.0 { 60.0 } else { end / 3.0 };
    let tol = tolerance(samples);
    let first_end = samples
        .iter()
        .position(|s| s.seconds >= window - tol)
        .unwrap_or(1)
        .max(1);
    let last_start = samples
        .iter()
        .rposition(|s| s.seconds <= end - window + tol)
        .unwrap_or(samples.len() - 2)
        .min(samples.len() - 2);
    verdict.first_rate = rate(&samples[0], &samples[first_end]);
    verdict.last_rate = rate(&samples[last_start], &samples[samples.len() - 1]);
    if verdict.last_rate < MIN_THROUGHPUT_RATIO * verdict.first_rate {
        verdict.problems.push(format!(
            "throughput fell: {:.0} requests/s at the end against {:.0} at the start (below {MIN_THROUGHPUT_RATIO}×)",
            verdict.last_rate, verdict.first_rate
        ));
    }
    let warm_up = 60.0_f64.min(end / 3.0);
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| s.rss_kib.map(|k| (s.seconds, k as f64 / 1024.0)))
        .collect();
    if keeps_rising(&rss, warm_up, |max| (max * 0.10).max(16.0)) {
        verdict.problems.push(format!(
            "server RSS keeps rising: {:.0} MiB at the end",
            rss.last().map_or(0.0, |p| p.1)
        ));
    }
    let fds: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| s.fds.map(|n| (s.seconds, n as f64)))
        .collect();
    if keeps_rising(&fds, warm_up, |max| (max * 0.10).max(8.0)) {
        verdict.problems.push(format!(
            "server file descriptors keep rising: {:.0} at the end",
            fds.last().map_or(0.0, |p| p.1)
        ));
    }
    if let Some(wal) = samples.iter().filter_map(|s| s.wal_bytes).max() {
        if wal > wal_bound_bytes {
            verdict.problems.push(format!(
                "the WAL passed its bound: {:.1} MiB > {:.1} MiB",
                mib(wal),
                mib(wal_bound_bytes)
            ));
        }
    }
    verdict
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------------
// Reading the server process and the database.

fn proc_status_field(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn proc_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// One connection of its own for the sizes and counts.
///
/// Raw SQL, deliberately: row counts and database sizes are measurements of the schema's growth,
/// not business reads, and the storage layer has no reason to offer them.
enum Probe {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool, PathBuf),
}

impl Probe {
    async fn open(url: &DatabaseUrl) -> anyhow::Result<Probe> {
        Ok(match url {
            DatabaseUrl::Postgres(u) => Probe::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(u)
                    .await?,
            ),
            DatabaseUrl::Sqlite(u) => {
                use std::str::FromStr;
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(u)?
                    .busy_timeout(Duration::from_secs(10))
                    .read_only(true);
                let path = options.get_filename().to_owned();
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await?;
                Probe::Sqlite(pool, path)
            }
        })
    }

    /// Database and WAL bytes (the WAL of SQLite only).
    async fn sizes(&self) -> (Option<u64>, Option<u64>) {
        match self {
            Probe::Postgres(pool) => {
                let size: Option<i64> =
                    sqlx::query_scalar("SELECT pg_database_size(current_database())")
                        .fetch_one(pool)
                        .await
                        .ok();
                (size.and_then(|s| u64::try_from(s).ok()), None)
            }
            Probe::Sqlite(_, path) => {
                let len = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len());
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                (len(path), Some(len(Path::new(&wal)).unwrap_or(0)))
            }
        }
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: Result<i64, sqlx::Error> = match self {
            Probe::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
            Probe::Sqlite(pool, _) => sqlx::query_scalar(&sql).fetch_one(pool).await,
        };
        n.unwrap_or(-1)
    }

    async fn close(self) {
        match self {
            Probe::Postgres(pool) => pool.close().await,
            Probe::Sqlite(pool, _) => pool.close().await,
        }
    }
}

async fn take_sample(
    probe: &Probe,
    pid: Option<u32>,
    progress: &Progress,
    started: Instant,
) -> Sample {
    let requests = progress.requests.load(Ordering::Relaxed);
    let errors = progress.errors.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let (db_bytes, wal_bytes) = probe.sizes().await;
    let mut rows = Vec::with_capacity(GROWING_TABLES.len());
    for table in GROWING_TABLES {
        rows.push(probe.count(table).await);
    }
    Sample {
        seconds,
        requests,
        errors,
        rss_kib: pid.and_then(|p| proc_status_field(p, "VmRSS:")),
        fds: pid.and_then(proc_fds),
        threads: pid.and_then(|p| proc_status_field(p, "Threads:")),
        cpu_seconds: pid.and_then(proc_cpu_seconds),
        db_bytes,
        wal_bytes,
        rows,
    }
}

// ---------------------------------------------------------------------------------------------
// The child server.

struct Child {
    child: std::process::Child,
    log: PathBuf,
}

impl Child {
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `yibao` binary the soak serves with: `YIBAO_BIN`, else the one beside this `yibao-lab`
/// (cargo builds both into one directory).
fn yibao_binary() -> anyhow::Result<std::path::PathBuf> {
    if let Some(bin) = std::env::var_os("YIBAO_BIN") {
        return Ok(bin.into());
    }
    let lab = std::env::current_exe()?;
    let beside = lab.with_file_name(format!("yibao{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        beside.is_file(),
        "找不到 yibao 程序：{} 不存在；请先 cargo build -p yibao，或用 YIBAO_BIN 指定",
        beside.display()
    );
    Ok(beside)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn start_server(url: &DatabaseUrl, plan: &SoakPlan) -> anyhow::Result<(String, Child)> {
    let port = free_port()?;
    let log = plan.server_log.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("yibao-soak-server-{}.log", std::process::id()))
    });
    let out = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
    let mut command = std::process::Command::new(yibao_binary()?);
    command.arg("serve");
    if let Some(config) = &plan.config_file {
        command.arg("--config").arg(config);
    }
    command
        .env("YIBAO_DATABASE_URL", url.expose())
        .env("YIBAO_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "YIBAO_LOG",
            std::env::var("YIBAO_LOG")
                .unwrap_or_else(|_| "warn,yibao_server::background=info".into()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let child = Child {
        child: command.spawn().context("starting yibao serve")?,
        log,
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut child = child;
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = child.child.try_wait() {
            anyhow::bail!(
                "yibao serve stopped ({status}) before answering; its log:\n{}",
                child.tail()
            );
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "yibao serve did not answer /healthz within 300 s; its log:\n{}",
            child.tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "server: yibao serve, pid {}, {base}, log {}",
        child.child.id(),
        child.log.display()
    );
    Ok((base, child))
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Everything a soak produced.
pub struct SoakResult {
    pub samples: Vec<Sample>,
    pub report: LoadReport,
    pub verdict: Verdict,
}

impl SoakResult {
    pub fn ok(&self) -> bool {
        self.report.ok() && self.verdict.problems.is_empty()
    }
}

/// Runs the soak against the database at `url`.
pub async fn run(
    url: &DatabaseUrl,
    storage: Arc<dyn Storage>,
    master_key: Option<&yibao_server::channel::secrets::MasterKey>,
    plan: SoakPlan,
) -> anyhow::Result<SoakResult> {
    anyhow::ensure!(
        plan.interval >= Duration::from_secs(1) && plan.interval <= Duration::from_secs(600),
        "interval must be 1 to 600 seconds"
    );
    anyhow::ensure!(
        plan.duration >= plan.interval * 3,
        "duration must be at least three intervals"
    );
    if plan.setup {
        let t = Instant::now();
        crate::load::setup(storage.as_ref(), master_key, plan.residents, plan.channels).await?;
        eprintln!(
            "setup: {} residents assessed, {} channels, in {:.1} s",
            plan.residents,
            plan.channels,
            t.elapsed().as_secs_f64()
        );
    }
    let (base, pid, child) = match &plan.url {
        Some(u) => (u.clone(), plan.server_pid, None),
        None => {
            let (base, child) = start_server(url, &plan).await?;
            let pid = child.child.id();
            (base, Some(pid), Some(child))
        }
    };
    let progress = Arc::new(Progress::default());
    let mut load = LoadPlan::new(StopRule::Duration(plan.duration));
    load.url = Some(base);
    load.channels = plan.channels;
    load.concurrency = plan.concurrency;
    load.mix = plan.mix.clone();
    load.payers = plan.residents;
    load.retry = plan.retry;
    load.server = pid.map_or(ServerProcess::Unknown, ServerProcess::Pid);
    load.baseline = false;
    load.setup = false;
    load.seed = plan.seed;
    load.progress = Some(progress.clone());

    let probe = Probe::open(url).await?;
    let loading = {
        let (url, storage) = (url.clone(), storage.clone());
        tokio::spawn(async move { crate::load::run(&url, storage, None, load).await })
    };
    // The load reads its targets before it starts: wait for its first request.
    while progress.requests.load(Ordering::Relaxed) == 0 && !loading.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let mut samples = vec![take_sample(&probe, pid, &progress, started).await];
    let mut printed_minutes = 0;
    print_header();
    let mut tick = 1u32;
    loop {
        let next = started + plan.interval * tick;
        tokio::time::sleep_until(next.into()).await;
        if progress.load_done.load(Ordering::Relaxed) || loading.is_finished() {
            break;
        }
        samples.push(take_sample(&probe, pid, &progress, started).await);
        tick += 1;
        // A line per whole minute as it completes.
        let minutes = (samples[samples.len() - 1].seconds / 60.0 + 1e-6).floor() as usize;
        while printed_minutes < minutes {
            printed_minutes += 1;
            let row = minute_row(&samples, printed_minutes);
            if !row.is_empty() {
                println!("{row}");
            }
        }
    }
    let last_minute_partial = samples.last().map_or(0.0, |s| s.seconds) / 60.0;
    if last_minute_partial > printed_minutes as f64 + 0.1 {
        let row = minute_row(&samples, printed_minutes + 1);
        if !row.is_empty() {
            println!("{row}");
        }
    }
    eprintln!("soak: load over, checking the ledger and the invariants");
    let report = loading.await??;
    probe.close().await;
    drop(child);
    let verdict = judge(&samples, plan.wal_bound_bytes);
    if let Some(path) = &plan.csv {
        write_csv(path, &samples)?;
    }
    if let Some(path) = &plan.svg {
        let title = format!(
            "yibao-lab soak: {}, {} residents, {} workers",
            match url {
                DatabaseUrl::Postgres(_) => "PostgreSQL",
                DatabaseUrl::Sqlite(_) => "SQLite",
            },
            plan.residents,
            plan.concurrency
        );
        std::fs::write(path, svg(&samples, &title, plan.wal_bound_bytes))
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(SoakResult {
        samples,
        report,
        verdict,
    })
}

// ---------------------------------------------------------------------------------------------
// Output: the table per minute, CSV, SVG.

/// The header of the table per minute.
pub fn print_header() {
    println!(
        "{:>4} {:>8} {:>6} {:>8} {:>5} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "min",
        "req/s",
        "errors",
        "RSS MiB",
        "fds",
        "threads",
        "DB MiB",
        "WAL MiB",
        "payments",
        "receipts",
        "outbox",
        "nonces",
        "audit"
    );
}

fn table_rows(s: &Sample, table: &str) -> String {
    GROWING_TABLES
        .iter()
        .position(|t| *t == table)
        .and_then(|i| s.rows.get(i))
        .filter(|n| **n >= 0)
        .map_or("-".into(), |n| n.to_string())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// Minute `m` (1-based): its rate, and the figures at its end (the WAL: its largest).
fn minute_row(samples: &[Sample], m: usize) -> String {
    rows_of_minute(samples, m).map_or_else(String::new, |(a, b, wal)| {
        format!(
            "{:>4} {:>8.0} {:>6} {:>8} {:>5} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>9}",
            m,
            rate(a, b),
            b.errors.saturating_sub(a.errors),
            opt(b.rss_kib.map(|k| k / 1024)),
            opt(b.fds),
            opt(b.threads),
            b.db_bytes.map_or("-".into(), |v| format!("{:.0}", mib(v))),
            wal.map_or("-".into(), |v| format!("{:.1}", mib(v))),
            table_rows(b, "payments"),
            table_rows(b, "receipts"),
            table_rows(b, "outbox"),
            table_rows(b, "channel_nonces"),
            table_rows(b, "audit_log"),
        )
    })
}

/// How late a sample may be taken after its tick and still count for it: half the interval.
fn tolerance(samples: &[Sample]) -> f64 {
    match samples {
        [a, b, ..] => ((b.seconds - a.seconds) / 2.0).clamp(1e-3, 30.0),
        _ => 1.0,
    }
}

fn rows_of_minute(samples: &[Sample], m: usize) -> Option<(&Sample, &Sample, Option<u64>)> {
    let tol = tolerance(samples);
    let from = (m - 1) as f64 * 60.0 + tol;
    let to = m as f64 * 60.0 + tol;
    let a = samples.iter().rposition(|s| s.seconds <= from)?;
    let b = samples.iter().rposition(|s| s.seconds <= to)?;
    if b <= a {
        return None;
    }
    let wal = samples[a..=b].iter().filter_map(|s| s.wal_bytes).max();
    Some((&samples[a], &samples[b], wal))
}

/// The table per minute, as printed (for BENCHMARKS.md).
pub fn minute_table(samples: &[Sample]) -> Vec<String> {
    let end = samples.last().map_or(0.0, |s| s.seconds);
    let minutes = (end / 60.0 - 0.1).ceil().max(0.0) as usize;
    (1..=minutes)
        .map(|m| minute_row(samples, m))
        .filter(|r| !r.is_empty())
        .collect()
}

pub fn write_csv(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
    );
    write!(
        out,
        "seconds,requests,errors,requests_per_second,rss_kib,fds,threads,cpu_seconds,db_bytes,wal_bytes"
    )?;
    for t in GROWING_TABLES {
        write!(out, ",{t}")?;
    }
    writeln!(out)?;
    for (i, s) in samples.iter().enumerate() {
        let r = if i == 0 {
            0.0
        } else {
            rate(&samples[i - 1], s)
        };
        write!(
            out,
            "{:.1},{},{},{:.1},{},{},{},{},{},{}",
            s.seconds,
            s.requests,
            s.errors,
            r,
            opt(s.rss_kib).replace('-', ""),
            opt(s.fds).replace('-', ""),
            opt(s.threads).replace('-', ""),
            s.cpu_seconds.map_or(String::new(), |c| format!("{c:.2}")),
            opt(s.db_bytes).replace('-', ""),
            opt(s.wal_bytes).replace('-', ""),
        )?;
        for n in &s.rows {
            if *n >= 0 {
                write!(out, ",{n}")?;
            } else {
                write!(out, ",")?;
            }
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// Reads samples back from the CSV [`write_csv`] wrote (to draw an earlier run again).
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty CSV")?.split(',').collect();
    anyhow::ensure!(
        header.first() == Some(&"seconds") && header.len() == 10 + GROWING_TABLES.len(),
        "not a soak CSV"
    );
    let mut samples = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        anyhow::ensure!(f.len() == header.len(), "a CSV line has {} fields", f.len());
        let u = |i: usize| f[i].parse::<u64>().ok();
        samples.push(Sample {
            seconds: f[0].parse().context("seconds")?,
            requests: u(1).unwrap_or(0),
            errors: u(2).unwrap_or(0),
            rss_kib: u(4),
            fds: u(5),
            threads: u(6),
            cpu_seconds: f[7].parse().ok(),
            db_bytes: u(8),
            wal_bytes: u(9),
            rows: f[10..].iter().map(|v| v.parse().unwrap_or(-1)).collect(),
        });
    }
    Ok(samples)
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// One panel of the plot: its label, its points (seconds, value), its colour, a dashed level.
type Panel<'a> = (&'a str, &'a Vec<(f64, f64)>, &'a str, Option<f64>);

/// The samples drawn as SVG: throughput, server RSS, and the WAL (SQLite) or the database's size
/// (PostgreSQL) over time, one panel each. Hand-written: no plotting dependency.
pub fn svg(samples: &[Sample], title: &str, wal_bound_bytes: u64) -> String {
    let (width, panel_h, left, right, top) = (760.0, 150.0, 70.0, 20.0, 40.0);
    let gap = 45.0;
    let has_wal = samples.iter().any(|s| s.wal_bytes.is_some());
    let end = samples.last().map_or(1.0, |s| s.seconds).max(1.0);
    let rates: Vec<(f64, f64)> = samples
        .windows(2)
        .map(|w| (w[1].seconds, rate(&w[0], &w[1])))
        .collect();
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| s.rss_kib.map(|k| (s.seconds, k as f64 / 1024.0)))
        .collect();
    let third: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| {
            if has_wal {
                s.wal_bytes.map(|b| (s.seconds, mib(b)))
            } else {
                s.db_bytes.map(|b| (s.seconds, mib(b)))
            }
        })
        .collect();
    let bound = has_wal.then(|| mib(wal_bound_bytes));
    let panels: [Panel; 3] = [
        ("throughput, requests/s", &rates, "#1f77b4", None),
        ("server RSS, MiB", &rss, "#d62728", None),
        (
            if has_wal {
                "SQLite WAL, MiB (dashed: its bound)"
            } else {
                "database size, MiB"
            },
            &third,
            "#2ca02c",
            bound,
        ),
    ];
    let height = top + 3.0 * (panel_h + gap) + 10.0;
    let plot_w = width - left - right;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">{}</text>\n",
        esc(title)
    );
    for (i, (label, points, colour, line)) in panels.iter().enumerate() {
        let y0 = top + i as f64 * (panel_h + gap);
        let data_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
        let y_max = nice_max(data_max.max(line.unwrap_or(0.0)) * 1.05);
        let x = |t: f64| left + plot_w * t / end;
        let y = |v: f64| y0 + panel_h - panel_h * v / y_max;
        out.push_str(&format!(
            "<text x=\"{left}\" y=\"{:.1}\">{}</text>\n\
             <rect x=\"{left}\" y=\"{y0:.1}\" width=\"{plot_w:.1}\" height=\"{panel_h}\" fill=\"none\" stroke=\"#999\"/>\n",
            y0 - 6.0,
            esc(label)
        ));
        for k in 0..=4 {
            let v = y_max * f64::from(k) / 4.0;
            out.push_str(&format!(
                "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                left + plot_w,
                left - 6.0,
                y(v) + 4.0,
                if y_max >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                },
                yy = y(v)
            ));
        }
        let minutes = (end / 60.0).ceil() as u32;
        let step = (minutes / 10).max(1);
        for m in (0..=minutes).step_by(step as usize) {
            let t = f64::from(m) * 60.0;
            if t > end + 1e-6 {
                break;
            }
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{m} min</text>\n",
                x(t),
                y0 + panel_h + 14.0
            ));
        }
        if let Some(v) = line {
            out.push_str(&format!(
                "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n",
                left + plot_w,
                yy = y(*v)
            ));
        }
        if !points.is_empty() {
            let path: Vec<String> = points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            out.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                path.join(" ")
            ));
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * 10.0, *v))
            .collect()
    }

    #[test]
    fn a_steady_rise_keeps_rising_and_a_step_or_noise_does_not() {
        let margin = |max: f64| (max * 0.1).max(16.0);
        let leak: Vec<f64> = (0..60).map(|i| 100.0 + 3.0 * f64::from(i)).collect();
        assert!(keeps_rising(&series(&leak), 60.0, margin));
        let mut step = vec![60.0; 5];
        step.extend(vec![120.0; 55]);
        assert!(!keeps_rising(&series(&step), 60.0, margin));
        let noise: Vec<f64> = (0..60)
            .map(|i| 100.0 + if i % 3 == 0 { 12.0 } else { 0.0 })
            .collect();
        assert!(!keeps_rising(&series(&noise), 60.0, margin));
    }

    fn sample(seconds: f64, requests: u64, rss_mib: u64, wal: u64) -> Sample {
        Sample {
            seconds,
            requests,
            rss_kib: Some(rss_mib * 1024),
            fds: Some(100),
            wal_bytes: Some(wal),
            rows: vec![0; GROWING_TABLES.len()],
            ..Sample::default()
        }
    }

    #[test]
    fn the_verdict_names_a_fall_in_throughput_and_a_wal_past_its_bound() {
        // 5 minutes at 500/s: fine.
        let steady: Vec<Sample> = (0..=30u32)
            .map(|i| sample(f64::from(i) * 10.0, u64::from(i) * 5000, 200, 1 << 20))
            .collect();
        let v = judge(&steady, 64 << 20);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert!((v.first_rate - 500.0).abs() < 1e-6 && (v.last_rate - 500.0).abs() < 1e-6);
        // The last minute at half the rate, and a WAL of 100 MiB.
        let mut requests = 0;
        let falling: Vec<Sample> = (0..=30u32)
            .map(|i| {
                if i > 0 {
                    requests += if i > 24 { 2500 } else { 5000 };
                }
                sample(
                    f64::from(i) * 10.0,
                    requests,
                    200,
                    if i == 20 { 100 << 20 } else { 0 },
                )
            })
            .collect();
        let v = judge(&falling, 64 << 20);
        assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
        assert!(v.problems[0].contains("throughput fell"));
        assert!(v.problems[1].contains("WAL"));
    }

    #[test]
    fn samples_survive_the_csv_and_draw() {
        // Each sample a little after its tick, as on a busy machine.
        let samples: Vec<Sample> = (0..=12u32)
            .map(|i| sample(f64::from(i) * 10.0 + 0.07, u64::from(i) * 100, 50, 4096))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        write_csv(&path, &samples).unwrap();
        let back = read_csv(&path).unwrap();
        assert_eq!(back.len(), samples.len());
        assert_eq!(back[5].requests, 500);
        assert_eq!(back[5].rss_kib, Some(50 * 1024));
        let table = minute_table(&back);
        assert_eq!(table.len(), 2, "{table:?}");
        assert!(
            table[0].trim_start().starts_with("1       10 "),
            "{table:?}"
        );
        let drawn = svg(&back, "a <test>", 64 << 20);
        assert!(drawn.starts_with("<svg") && drawn.contains("a &lt;test&gt;"));
        assert_eq!(drawn.matches("<polyline").count(), 3);
    }
}
