//! `yibao-lab load`: a load generator that speaks the channel protocol over HTTP, the way banks
//! and payment companies do, against a server in this process or one running elsewhere (`--url`).
//!
//! Several channels and many workers run a weighted mix of operations: searches, orders and their
//! payments, direct payments, the same report again (it must get the first answer), a payment of a
//! payable already paid (it must become a refund), reversals after a report and reversals that
//! arrive before their report. Every report the generator sends goes into its ledger (transaction
//! id → amount, intent, first answer, what must have become of it). Afterwards every transaction in
//! the ledger is checked against `GET /channel/v1/payments/{id}` (protocol § 5) and against the
//! database, then the protocol's invariants are checked.
//!
//! With `--retry` a request that got no answer (connection refused or reset, timeout) or a 5xx is
//! sent again with the same idempotency key, with backoff, as a careful channel would: the chaos
//! script kills the server and restarts PostgreSQL under it, and no money may be lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentReport, PaymentResult, PaymentStatus, PaymentStatusResponse,
    RefundReason, RefundResultRequest, ReportPaymentRequest, SearchRequest,
};
use yibao_channel_client::{ChannelClient, ClientError};
use yibao_storage::{DatabaseUrl, Storage};

/// The pooling region the generated payers belong to (南通市).
pub const REGION: &str = "320600";
/// The default mix of operations, by weight.
pub const DEFAULT_MIX: &str =
    "search=50,order=10,pay=18,duplicate=5,paid_again=5,reverse=5,reverse_early=5,race=2";
pub const MAX_CHANNELS: usize = 64;
pub const MAX_CONCURRENCY: usize = 512;
pub const MAX_PAYERS: usize = 2_000_000;
/// Attempts of one request with `--retry` (backoff 50 ms doubling to 2 s: about two minutes).
pub const RETRY_ATTEMPTS: u32 = 70;

/// The generator's channel `i`: its id and its (benchmark-only) secret.
pub fn channel(i: usize) -> (String, String) {
    (
        format!("load-{i:02}"),
        format!("load-secret-{i:02}-0123456789abcdef"),
    )
}

/// One kind of operation of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// § 1 search of a payer's payables, by ID number and name.
    Search,
    /// § 2 open an order for one payable, then § 3 pay the order.
    Order,
    /// § 3 pay an unpaid payable directly.
    Pay,
    /// The same report again (a retry after a lost answer): must get the first answer.
    Duplicate,
    /// A new report for a payable already paid, from another channel: must become a refund.
    PaidAgain,
    /// § 4 reversal of a payment that was paid: the payable is unpaid again.
    Reverse,
    /// A reversal that arrives before its report: the late report is refused (409 `REVERSED`).
    ReverseEarly,
    /// Two channels pay the same payable at once, one of them sending its report twice at once:
    /// exactly one is applied, the other becomes a refund, both copies get the same answer.
    Race,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::Search,
        Op::Order,
        Op::Pay,
        Op::Duplicate,
        Op::PaidAgain,
        Op::Reverse,
        Op::ReverseEarly,
        Op::Race,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Search => "search",
            Op::Order => "order",
            Op::Pay => "pay",
            Op::Duplicate => "duplicate",
            Op::PaidAgain => "paid_again",
            Op::Reverse => "reverse",
            Op::ReverseEarly => "reverse_early",
            Op::Race => "race",
        }
    }
}

/// Weights of the operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(Vec<(Op, u32)>);

impl Mix {
    /// `search=50,pay=20,…`; operations not named get weight 0.
    pub fn parse(text: &str) -> anyhow::Result<Mix> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .with_context(|| format!("mix: {part:?} should be NAME=WEIGHT"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .with_context(|| {
                    format!(
                        "mix: unknown operation {name:?}; known: {}",
                        Op::ALL.map(Op::name).join(", ")
                    )
                })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| *w <= 1_000_000)
                .with_context(|| format!("mix: weight of {name} should be 0 to 1000000"))?;
            anyhow::ensure!(
                !weights.iter().any(|(o, _)| *o == op),
                "mix: {name} given twice"
            );
            weights.push((op, weight));
        }
        anyhow::ensure!(
            weights.iter().any(|(_, w)| *w > 0),
            "mix: at least one weight must be positive"
        );
        Ok(Mix(weights))
    }

    pub fn searches_only() -> Mix {
        Mix(vec![(Op::Search, 1)])
    }

    fn total(&self) -> u64 {
        self.0.iter().map(|(_, w)| u64::from(*w)).sum()
    }

    fn pick(&self, rng: &mut Rng) -> Op {
        let mut n = rng.below(self.total());
        for (op, w) in &self.0 {
            if n < u64::from(*w) {
                return *op;
            }
            n -= u64::from(*w);
        }
        Op::Search
    }

    fn only_searches(&self) -> bool {
        self.0.iter().all(|(op, w)| *op == Op::Search || *w == 0)
    }

    pub fn describe(&self) -> String {
        self.0
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(op, w)| format!("{}={w}", op.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A small deterministic generator (no dependency for it).
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }

    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum StopRule {
    Duration(Duration),
    Operations(usize),
}

/// Whose CPU time and memory to report.
#[derive(Debug, Clone)]
pub enum ServerProcess {
    /// The server runs in this process (the figures then include the generator).
    ThisProcess,
    Pid(u32),
    /// Read the pid from this file at every sample (the chaos script restarts the server).
    PidFile(PathBuf),
    Unknown,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// A running server; `None`: start one in this process on `127.0.0.1:0`.
    pub url: Option<String>,
    pub channels: usize,
    pub concurrency: usize,
    pub stop: StopRule,
    pub mix: Mix,
    /// Payers generated and assessed (each payment takes an unpaid one).
    pub payers: usize,
    /// Group commit of the in-process server.
    pub batch: usize,
    pub retry: bool,
    pub timeout: Duration,
    pub server: ServerProcess,
    pub baseline: bool,
    pub setup: bool,
    /// Where to write the ledger (JSON lines), if anywhere.
    pub ledger_file: Option<PathBuf>,
    pub seed: u64,
    /// Counted as the load runs, for a sampler beside it (the soak's throughput per interval).
    pub progress: Option<Arc<Progress>>,
}

/// Running counts of a load, read by a sampler while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests answered (or failed), of every kind.
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests that failed after any retries.
    pub errors: std::sync::atomic::AtomicU64,
    /// Set once the load itself is over (the checks afterwards are not load).
    pub load_done: AtomicBool,
}

impl LoadPlan {
    pub fn new(stop: StopRule) -> LoadPlan {
        LoadPlan {
            url: None,
            channels: 4,
            concurrency: 64,
            stop,
            mix: Mix::parse(DEFAULT_MIX).unwrap_or_else(|_| Mix::searches_only()),
            payers: 20_000,
            batch: 32,
            retry: false,
            timeout: Duration::from_secs(10),
            server: ServerProcess::ThisProcess,
            baseline: true,
            setup: true,
            ledger_file: None,
            seed: 2020,
            progress: None,
        }
    }
}

/// Latency figures of one kind of request.
#[derive(Debug, Clone, Serialize)]
pub struct KindFigures {
    pub kind: String,
    pub count: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// CPU time and memory of the server process (or of this process when the server runs in it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    /// Highest VmRSS seen while the load ran, MiB.
    pub peak_rss_under_load_mib: Option<u64>,
    /// VmHWM at the end (the process's peak over its life), MiB.
    pub vm_hwm_mib: Option<u64>,
    /// Server processes seen (more than one when it was restarted).
    pub pids_seen: usize,
}

/// Everything a load run measured and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub seconds: f64,
    pub operations: usize,
    pub kinds: Vec<KindFigures>,
    /// Payment reports (every kind) per second, for the ratio to the raw transaction.
    pub reports_per_second: f64,
    pub baseline_per_second: Option<f64>,
    pub server: ProcessFigures,
    /// This process's CPU time over the load (the generator; with the server when in-process).
    pub client_cpu_seconds: Option<f64>,
    /// CPU of the processes named `postgres` on this machine over the load, on PostgreSQL (none:
    /// SQLite, or a database on another machine).
    pub postgres_cpu_seconds: Option<f64>,
    /// Errors by `kind:code` (after retries).
    pub errors: BTreeMap<String, u64>,
    /// Retries by `kind:reason`.
    pub retries: BTreeMap<String, u64>,
    pub notes: BTreeMap<String, u64>,
    /// Transactions in the ledger, and how many were settled only at the end (sent again).
    pub ledger_transactions: usize,
    pub resolved_at_end: usize,
    pub refunds_confirmed: usize,
    /// What was wrong: wrong answers during the run, ledger mismatches with the API or the database.
    pub violations: Vec<String>,
    pub invariants_hold: bool,
}

impl LoadReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.invariants_hold
    }

    pub fn count(&self, kind: &str) -> usize {
        self.kinds
            .iter()
            .find(|k| k.kind == kind)
            .map_or(0, |k| k.count)
    }

    /// The human-readable summary `yibao-lab load` prints.
    pub fn print(&self) {
        println!(
            "{:<15} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "request", "count", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for k in &self.kinds {
            println!(
                "{:<15} {:>8} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                k.kind, k.count, k.per_second, k.p50_ms, k.p95_ms, k.p99_ms, k.max_ms
            );
        }
        println!(
            "{} operations in {:.1} s; payment reports {:.0}/s",
            self.operations, self.seconds, self.reports_per_second
        );
        if let Some(raw) = self.baseline_per_second {
            println!(
                "raw transaction (update one row, insert one row with a unique key), same concurrency: {raw:.0}/s; payment reports / raw = {:.2}x",
                self.reports_per_second / raw
            );
        }
        let s = &self.server;
        println!(
            "server: CPU {} over {:.1} s; peak RSS under load {}; VmHWM {}; processes seen {}",
            s.cpu_seconds.map_or("unknown".into(), |c| format!(
                "{c:.1} s ({:.2} cores)",
                c / self.seconds
            )),
            self.seconds,
            s.peak_rss_under_load_mib
                .map_or("unknown".into(), |m| format!("{m} MiB")),
            s.vm_hwm_mib
                .map_or("unknown".into(), |m| format!("{m} MiB")),
            s.pids_seen
        );
        if let Some(c) = self.client_cpu_seconds {
            println!("this process: CPU {c:.1} s");
        }
        if let Some(c) = self.postgres_cpu_seconds {
            println!("postgres processes on this machine: CPU {c:.1} s over the load");
        }
        for (what, map) in [
            ("errors", &self.errors),
            ("retries", &self.retries),
            ("notes", &self.notes),
        ] {
            if !map.is_empty() {
                let list: Vec<String> = map.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("{what}: {}", list.join(", "));
            }
        }
        println!(
            "ledger: {} transactions checked against GET /channel/v1/payments/{{id}} and the database ({} settled at the end by reporting again); {} refunds confirmed",
            self.ledger_transactions, self.resolved_at_end, self.refunds_confirmed
        );
        if self.violations.is_empty() {
            println!("ledger matches the API and the database");
        } else {
            println!("VIOLATIONS ({}):", self.violations.len());
            for v in self.violations.iter().take(50) {
                println!("  {v}");
            }
        }
        println!(
            "invariants: {}",
            if self.invariants_hold {
                "hold"
            } else {
                "BROKEN"
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The process figures: /proc/<pid>/stat and /proc/<pid>/status, no libc.

/// Clock ticks a second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux's usual architectures).
const CLOCK_TICKS: f64 = 100.0;

fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page; utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks of each process named `postgres` on this machine, by process id (a database on
/// another machine shows none).
fn local_postgres_cpu_ticks() -> std::collections::HashMap<String, u64> {
    let mut ticks = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "postgres" {
            if let Some(t) = proc_cpu_ticks(pid) {
                ticks.insert(pid.to_owned(), t);
            }
        }
    }
    ticks
}

/// The CPU PostgreSQL's processes spent between two readings of [`local_postgres_cpu_ticks`]:
/// each process's difference, a process that started in between counted whole, one that ended
/// in between lost (its last ticks were not read). `None` when none was seen at the end.
fn postgres_cpu_between(
    start: &std::collections::HashMap<String, u64>,
    end: &std::collections::HashMap<String, u64>,
) -> Option<f64> {
    if end.is_empty() {
        return None;
    }
    let ticks: u64 = end
        .iter()
        .map(|(pid, t)| t.saturating_sub(start.get(pid).copied().unwrap_or(0)))
        .sum();
    Some(ticks as f64 / CLOCK_TICKS)
}

fn proc_status_mib(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Refuses a `--server-pid` that is not running. A server that could not take the port exits at
/// once, and the load would then measure whatever older server still answers at the URL, with no
/// CPU or memory of its own to report. Only where `/proc` is there to say.
pub fn ensure_server_running(server: &ServerProcess) -> anyhow::Result<()> {
    let ServerProcess::Pid(pid) = server else {
        return Ok(());
    };
    let proc_mounted = std::path::Path::new("/proc/self").exists();
    anyhow::ensure!(
        !proc_mounted || std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "--server-pid {pid}：没有这个进程 no such process is running; \
         is another server answering at the URL?"
    );
    Ok(())
}

fn resolve_pid(server: &ServerProcess) -> Option<String> {
    match server {
        ServerProcess::ThisProcess => Some("self".into()),
        ServerProcess::Pid(p) => Some(p.to_string()),
        ServerProcess::PidFile(path) => std::fs::read_to_string(path)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())),
        ServerProcess::Unknown => None,
    }
}

#[derive(Default)]
struct Sampled {
    /// pid → (CPU ticks first seen, last seen).
    cpu: HashMap<String, (u64, u64)>,
    peak_rss: Option<u64>,
    hwm: Option<u64>,
}

impl Sampled {
    fn sample(&mut self, server: &ServerProcess) {
        let Some(pid) = resolve_pid(server) else {
            return;
        };
        if let Some(ticks) = proc_cpu_ticks(&pid) {
            let e = self.cpu.entry(pid.clone()).or_insert((ticks, ticks));
            e.1 = ticks;
        }
        if let Some(rss) = proc_status_mib(&pid, "VmRSS:") {
            self.peak_rss = Some(self.peak_rss.unwrap_or(0).max(rss));
        }
        if let Some(hwm) = proc_status_mib(&pid, "VmHWM:") {
            self.hwm = Some(self.hwm.unwrap_or(0).max(hwm));
        }
    }

    fn figures(&self) -> ProcessFigures {
        let ticks: u64 = self.cpu.values().map(|(a, b)| b.saturating_sub(*a)).sum();
        ProcessFigures {
            cpu_seconds: (!self.cpu.is_empty()).then(|| ticks as f64 / CLOCK_TICKS),
            peak_rss_under_load_mib: self.peak_rss,
            vm_hwm_mib: self.hwm,
            pids_seen: self.cpu.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payers and channels.

/// A payable the generator may pay, with its payer.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub payable_id: String,
    pub amount: i64,
    pub id_number: String,
    pub name: String,
}

/// Creates the payers (idempotent) and the generator's channels.
pub async fn setup(
    storage: &dyn Storage,
    master_key: Option<&yibao_server::channel::secrets::MasterKey>,
    payers: usize,
    channels: usize,
) -> anyhow::Result<()> {
    crate::bench::prepare_payers(storage, payers).await?;
    for i in 0..channels {
        let (id, secret) = channel(i);
        if storage.get_channel(&id).await?.is_none() {
            yibao::operator::channel_add(
                storage,
                master_key,
                &id,
                "bank_counter",
                &[REGION.to_owned()],
                100_000,
                secret,
            )
            .await?;
        }
    }
    Ok(())
}

/// Runs one query on the database at `url` through a small pool of its own.
///
/// Raw SQL, deliberately: the generator picks its targets and checks its ledger against the tables
/// themselves, not through the storage code under test, so a bug there cannot hide itself.
macro_rules! fetch_all {
    ($url:expr, $row:ty, $sql:expr $(, $bind:expr)*) => {{
        match $url {
            DatabaseUrl::Postgres(u) => {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(u).await?;
                let rows: Vec<$row> = sqlx::query_as($sql)$(.bind($bind))*.fetch_all(&pool).await?;
                pool.close().await;
                rows
            }
            DatabaseUrl::Sqlite(u) => {
                use std::str::FromStr;
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(u)?
                    .busy_timeout(Duration::from_secs(10));
                let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
                let rows: Vec<$row> = sqlx::query_as($sql)$(.bind($bind))*.fetch_all(&pool).await?;
                pool.close().await;
                rows
            }
        }
    }};
}

/// The unpaid payables of the region's collecting fee year, with their payers.
async fn unpaid_targets(url: &DatabaseUrl, fee_year: i32) -> anyhow::Result<Vec<Target>> {
    let rows = fetch_all!(
        url,
        (String, i64, String, String),
        "SELECT y.payable_id, y.amount_fen, y.id_number, p.name FROM payables y \
         JOIN persons p ON p.region_code = y.region_code AND p.id_number = y.id_number \
         WHERE y.region_code = $1 AND y.fee_year = $2 AND y.status = 'unpaid' AND y.amount_fen > 0 \
         ORDER BY y.payable_id",
        REGION,
        fee_year
    );
    Ok(rows
        .into_iter()
        .map(|(payable_id, amount, id_number, name)| Target {
            payable_id,
            amount,
            id_number,
            name,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The ledger.

/// What must have become of a reported transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "expect", rename_all = "snake_case")]
pub enum Expect {
    /// Applied to exactly these payables, nothing refunded.
    Paid { payables: Vec<String> },
    /// Nothing applied, all of it owed back (or refunded).
    Refund { amount: i64 },
    /// Paid, then reversed.
    Reversed,
    /// Paid, then a reversal whose answer was lost: paid or reversed.
    PaidOrReversed { payables: Vec<String> },
    /// The reversal came first and the report was refused: yibao holds nothing for it.
    RefusedAfterReversal,
    /// No answer even after the retries: settled at the end by reporting it again.
    Unknown { error: String },
}

/// One transaction the generator reported.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub channel: usize,
    pub intent: &'static str,
    pub request: ReportPaymentRequest,
    pub target: Target,
    /// The first answer received.
    pub first: Option<PaymentReport>,
    pub expect: Expect,
}

// ---------------------------------------------------------------------------------------------
// Calls, with retries.

fn retry_reason(e: &ClientError) -> Option<String> {
    match e {
        ClientError::Transport(t) if t.is_timeout() => Some("timeout".into()),
        ClientError::Transport(_) => Some("transport".into()),
        ClientError::Api { status, code, .. } if *status >= 500 || code == "RATE_LIMITED" => {
            Some(format!("{status} {code}"))
        }
        ClientError::Decode { status, .. } if *status >= 500 => Some(format!("{status} decode")),
        _ => None,
    }
}

fn error_code(e: &ClientError) -> String {
    match e {
        ClientError::Api { status, code, .. } => format!("{status} {code}"),
        ClientError::Transport(t) if t.is_timeout() => "timeout".into(),
        ClientError::Transport(_) => "transport".into(),
        ClientError::BadSignature { .. } => "bad signature".into(),
        ClientError::Decode { status, .. } => format!("{status} undecodable"),
        ClientError::ResponseTooLarge { .. } => "too large".into(),
        ClientError::InvalidRequest(_) => "invalid request".into(),
    }
}

/// The result of one logical call: its result after any retries, the time it took in all, and why
/// it was retried.
struct Timed<T> {
    result: Result<T, ClientError>,
    elapsed: Duration,
    retries: Vec<String>,
}

async fn call<T, F, Fut>(retry: bool, f: F) -> Timed<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut retries = Vec::new();
    let mut attempt = 1;
    loop {
        let result = f().await;
        match result.as_ref().err().and_then(retry_reason) {
            Some(reason) if retry && attempt < RETRY_ATTEMPTS => {
                retries.push(reason);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            _ => {
                return Timed {
                    result,
                    elapsed: started.elapsed(),
                    retries,
                }
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    /// Latency per request kind, microseconds (bounded memory: HdrHistogram).
    latencies: BTreeMap<&'static str, hdrhistogram::Histogram<u64>>,
    errors: BTreeMap<String, u64>,
    retries: BTreeMap<String, u64>,
    notes: BTreeMap<String, u64>,
}

impl Stats {
    /// Records the call's latency and retries; returns its result.
    fn took<T>(&mut self, kind: &'static str, timed: Timed<T>) -> Result<T, ClientError> {
        crate::bench::record_latency(
            self.latencies
                .entry(kind)
                .or_insert_with(crate::bench::latency_histogram),
            timed.elapsed,
        );
        for r in timed.retries {
            *self.retries.entry(format!("{kind}:{r}")).or_default() += 1;
        }
        timed.result
    }

    fn error(&mut self, kind: &str, e: &ClientError) {
        *self
            .errors
            .entry(format!("{kind}:{}", error_code(e)))
            .or_default() += 1;
    }

    fn note(&mut self, what: &str) {
        *self.notes.entry(what.to_owned()).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        for (k, v) in other.latencies {
            let mine = self
                .latencies
                .entry(k)
                .or_insert_with(crate::bench::latency_histogram);
            // Same bounds on both sides: adding cannot fail.
            let _ = mine.add(&v);
        }
        for (map, from) in [
            (&mut self.errors, other.errors),
            (&mut self.retries, other.retries),
            (&mut self.notes, other.notes),
        ] {
            for (k, v) in from {
                *map.entry(k).or_default() += v;
            }
        }
    }
}

fn now_cst() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Utc::now().with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
}

// ---------------------------------------------------------------------------------------------
// The workers.

struct Shared {
    clients: Vec<ChannelClient>,
    targets: Vec<Target>,
    next_target: AtomicUsize,
    mix: Mix,
    retry: bool,
    deadline: Option<Instant>,
    operations: Option<usize>,
    started_ops: AtomicUsize,
    run_id: String,
    stopping: AtomicBool,
    progress: Option<Arc<Progress>>,
}

impl Shared {
    fn another_op(&self) -> bool {
        if self.stopping.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(deadline) = self.deadline {
            if Instant::now() >= deadline {
                return false;
            }
        }
        let n = self.started_ops.fetch_add(1, Ordering::Relaxed);
        match self.operations {
            Some(max) => n < max,
            None => true,
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    id: usize,
    rng: Rng,
    seq: u64,
    stats: Stats,
    ledger: Vec<Entry>,
    /// Ledger indices of payments that are paid now (this worker's own payables).
    paid: Vec<usize>,
    /// Ledger indices with a first answer, to send again.
    answered: Vec<usize>,
    /// Payables this worker made unpaid again (reversed) or never paid (refused late reports).
    recycled: Vec<Target>,
    violations: Vec<String>,
}

/// What a worker hands back.
struct WorkerResult {
    stats: Stats,
    ledger: Vec<Entry>,
    violations: Vec<String>,
}

impl Worker {
    fn txn(&mut self) -> String {
        self.seq += 1;
        format!("{}-{}-{}", self.shared.run_id, self.id, self.seq)
    }

    fn channel(&mut self) -> usize {
        self.rng.index(self.shared.clients.len())
    }

    fn other_channel(&mut self, than: usize) -> usize {
        let n = self.shared.clients.len();
        if n < 2 {
            return than;
        }
        (than + 1 + self.rng.index(n - 1)) % n
    }

    fn take_target(&mut self) -> Option<Target> {
        if let Some(t) = self.recycled.pop() {
            return Some(t);
        }
        let i = self.shared.next_target.fetch_add(1, Ordering::Relaxed);
        self.shared.targets.get(i).cloned()
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    async fn run(mut self) -> WorkerResult {
        while self.shared.another_op() {
            let op = self.shared.mix.pick(&mut self.rng);
            let counts = |stats: &Stats| {
                let requests: u64 = stats.latencies.values().map(|h| h.len()).sum();
                let errors: u64 = stats.errors.values().sum();
                (requests, errors)
            };
            let before = counts(&self.stats);
            self.one(op).await;
            if let Some(progress) = &self.shared.progress {
                let after = counts(&self.stats);
                progress
                    .requests
                    .fetch_add(after.0.saturating_sub(before.0), Ordering::Relaxed);
                progress
                    .errors
                    .fetch_add(after.1.saturating_sub(before.1), Ordering::Relaxed);
            }
        }
        WorkerResult {
            stats: self.stats,
            ledger: self.ledger,
            violations: self.violations,
        }
    }

    async fn one(&mut self, op: Op) {
        match op {
            Op::Search => self.search().await,
            Op::Order => self.order().await,
            Op::Pay => self.pay().await,
            Op::Duplicate => self.duplicate().await,
            Op::PaidAgain => self.paid_again().await,
            Op::Reverse => self.reverse().await,
            Op::ReverseEarly => self.reverse_early().await,
            Op::Race => self.race().await,
        }
    }

    async fn search(&mut self) {
        let shared = self.shared.clone();
        let Some(t) = shared
            .targets
            .get(self.rng.index(shared.targets.len()))
            .cloned()
        else {
            self.stats.note("search:no payers");
            return;
        };
        let client = &shared.clients[self.channel()];
        let request = SearchRequest {
            id_number: t.id_number.clone(),
            insured_number: None,
            name: Some(t.name.clone()),
            region: None,
            fee_year: None,
            agent_code: None,
        };
        let timed = call(shared.retry, || client.search(&request)).await;
        match self.stats.took("search", timed) {
            Ok(found) if found.payables.iter().any(|p| p.payable_id == t.payable_id) => {}
            Ok(_) => self.violation(format!(
                "search for {} did not list payable {}",
                t.id_number, t.payable_id
            )),
            Err(e) => self.stats.error("search", &e),
        }
    }

    /// Records a payment report's answer in the ledger and checks it against what it must be.
    fn settle(
        &mut self,
        channel: usize,
        intent: &'static str,
        request: ReportPaymentRequest,
        target: Target,
        result: Result<PaymentReport, ClientError>,
        must_be_paid: bool,
    ) {
        let payables = vec![target.payable_id.clone()];
        let (first, expect) = match result {
            Ok(report) => {
                let expect = expect_from_answer(&report);
                let as_wanted = if must_be_paid {
                    report.result == PaymentResult::Paid
                        && report.refund.is_none()
                        && expect
                            == (Expect::Paid {
                                payables: payables.clone(),
                            })
                } else {
                    report.result == PaymentResult::RefundPending
                        && report.receipts.is_empty()
                        && report.refund.as_ref().is_some_and(|r| {
                            r.reason == RefundReason::AlreadyPaid && r.amount == request.amount
                        })
                };
                if !as_wanted {
                    self.violation(format!(
                        "{intent} {} on {}: expected {}, got {:?}",
                        request.channel_txn_id,
                        target.payable_id,
                        if must_be_paid {
                            "paid"
                        } else {
                            "refund_pending ALREADY_PAID"
                        },
                        report
                    ));
                }
                (Some(report), expect)
            }
            Err(e) => {
                self.stats.error(intent, &e);
                (
                    None,
                    Expect::Unknown {
                        error: error_code(&e),
                    },
                )
            }
        };
        let answered = first.is_some();
        let paid = matches!(expect, Expect::Paid { .. });
        self.ledger.push(Entry {
            channel,
            intent,
            request,
            target,
            first,
            expect,
        });
        let index = self.ledger.len() - 1;
        if answered {
            self.answered.push(index);
        }
        if paid {
            self.paid.push(index);
        }
    }

    async fn pay(&mut self) {
        let Some(target) = self.take_target() else {
            self.stats
                .note("pay:no unpaid payable left, searched instead");
            return self.search().await;
        };
        let shared = self.shared.clone();
        let channel = self.channel();
        let request = ReportPaymentRequest::for_payables(
            self.txn(),
            vec![target.payable_id.clone()],
            target.amount,
            now_cst(),
        );
        let client = &shared.clients[channel];
        let timed = call(shared.retry, || client.report_payment(&request)).await;
        let result = self.stats.took("pay", timed);
        self.settle(channel, "pay", request, target, result, true);
    }

    async fn order(&mut self) {
        let Some(target) = self.take_target() else {
            self.stats
                .note("order:no unpaid payable left, searched instead");
            return self.search().await;
        };
        let shared = self.shared.clone();
        let channel = self.channel();
        let client = &shared.clients[channel];
        let txn = self.txn();
        let open = OpenOrderRequest {
            channel_order_no: format!("{txn}-O"),
            payable_ids: vec![target.payable_id.clone()],
            amount: target.amount,
            payer: Payer {
                name: Some(target.name.clone()),
                phone: None,
            },
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        let timed = call(shared.retry, || client.open_order(&open)).await;
        let order = match self.stats.took("open_order", timed) {
            Ok(o) => o.order,
            Err(e) => {
                // The payable may be held by the order now: it is not used again.
                self.stats.error("open_order", &e);
                return;
            }
        };
        let request =
            ReportPaymentRequest::for_order(txn, order.order_no, target.amount, now_cst());
        let timed = call(shared.retry, || client.report_payment(&request)).await;
        let result = self.stats.took("pay_order", timed);
        self.settle(channel, "pay_order", request, target, result, true);
    }

    async fn duplicate(&mut self) {
        if self.answered.is_empty() {
            return self.pay().await;
        }
        let index = self.answered[self.rng.index(self.answered.len())];
        let shared = self.shared.clone();
        let entry = &self.ledger[index];
        let client = &shared.clients[entry.channel];
        let request = entry.request.clone();
        let first = entry.first.clone();
        let timed = call(shared.retry, || client.report_payment(&request)).await;
        match self.stats.took("duplicate", timed) {
            Ok(again) if Some(&again) == first.as_ref() => {}
            Ok(again) => self.violation(format!(
                "duplicate of {} answered {again:?}, first answer {first:?}",
                request.channel_txn_id
            )),
            Err(e) => self.stats.error("duplicate", &e),
        }
    }

    async fn paid_again(&mut self) {
        if self.paid.is_empty() {
            return self.pay().await;
        }
        let index = self.paid[self.rng.index(self.paid.len())];
        let shared = self.shared.clone();
        let (target, from) = {
            let e = &self.ledger[index];
            (e.target.clone(), e.channel)
        };
        let channel = self.other_channel(from);
        let request = ReportPaymentRequest::for_payables(
            self.txn(),
            vec![target.payable_id.clone()],
            target.amount,
            now_cst(),
        );
        let client = &shared.clients[channel];
        let timed = call(shared.retry, || client.report_payment(&request)).await;
        let result = self.stats.took("paid_again", timed);
        self.settle(channel, "paid_again", request, target, result, false);
    }

    async fn reverse(&mut self) {
        if self.paid.is_empty() {
            return self.pay().await;
        }
        let pos = self.rng.index(self.paid.len());
        let index = self.paid.swap_remove(pos);
        let shared = self.shared.clone();
        let (client, txn) = {
            let e = &self.ledger[index];
            (&shared.clients[e.channel], e.request.channel_txn_id.clone())
        };
        let timed = call(shared.retry, || {
            client.reverse_payment(&txn, "负载测试冲正")
        })
        .await;
        match self.stats.took("reversal", timed) {
            Ok(_) => {
                self.ledger[index].expect = Expect::Reversed;
                let target = self.ledger[index].target.clone();
                self.recycled.push(target);
            }
            Err(e) => {
                self.stats.error("reversal", &e);
                let payables = vec![self.ledger[index].target.payable_id.clone()];
                self.ledger[index].expect = Expect::PaidOrReversed { payables };
            }
        }
    }

    async fn reverse_early(&mut self) {
        let Some(target) = self.take_target() else {
            self.stats
                .note("reverse_early:no unpaid payable left, searched instead");
            return self.search().await;
        };
        let shared = self.shared.clone();
        let channel = self.channel();
        let client = &shared.clients[channel];
        let txn = self.txn();
        let timed = call(shared.retry, || client.reverse_payment(&txn, "超时冲正")).await;
        if let Err(e) = self.stats.took("reversal_early", timed) {
            self.stats.error("reversal_early", &e);
            self.recycled.push(target);
            return;
        }
        let request = ReportPaymentRequest::for_payables(
            txn,
            vec![target.payable_id.clone()],
            target.amount,
            now_cst(),
        );
        let timed = call(shared.retry, || client.report_payment(&request)).await;
        let late = self.stats.took("late_report", timed);
        let (first, expect) = match late {
            Err(e) if e.api_code() == Some("REVERSED") => (None, Expect::RefusedAfterReversal),
            Ok(report) => {
                self.violation(format!(
                    "report {} after its reversal was answered {report:?}, expected 409 REVERSED",
                    request.channel_txn_id
                ));
                let expect = expect_from_answer(&report);
                (Some(report), expect)
            }
            Err(e) => {
                self.stats.error("late_report", &e);
                (
                    None,
                    Expect::Unknown {
                        error: error_code(&e),
                    },
                )
            }
        };
        let recycle = expect == Expect::RefusedAfterReversal;
        self.ledger.push(Entry {
            channel,
            intent: "late_report",
            request,
            target: target.clone(),
            first,
            expect,
        });
        if recycle {
            self.recycled.push(target);
        }
    }

    async fn race(&mut self) {
        let Some(target) = self.take_target() else {
            self.stats
                .note("race:no unpaid payable left, searched instead");
            return self.search().await;
        };
        let shared = self.shared.clone();
        let a = self.channel();
        let b = self.other_channel(a);
        let paid_at = now_cst();
        let ids = vec![target.payable_id.clone()];
        let request_a =
            ReportPaymentRequest::for_payables(self.txn(), ids.clone(), target.amount, paid_at);
        let request_b = ReportPaymentRequest::for_payables(self.txn(), ids, target.amount, paid_at);
        let (ca, cb) = (&shared.clients[a], &shared.clients[b]);
        let (a1, a2, b1) = tokio::join!(
            call(shared.retry, || ca.report_payment(&request_a)),
            call(shared.retry, || ca.report_payment(&request_a)),
            call(shared.retry, || cb.report_payment(&request_b)),
        );
        let a1 = self.stats.took("race_report", a1);
        let a2 = self.stats.took("race_report", a2);
        let b1 = self.stats.took("race_report", b1);
        if let (Ok(x), Ok(y)) = (&a1, &a2) {
            if x != y {
                self.violation(format!(
                    "the same report {} sent twice at once was answered differently: {x:?} and {y:?}",
                    request_a.channel_txn_id
                ));
            }
        }
        let a_result = match (a1, a2) {
            (Ok(x), _) | (Err(_), Ok(x)) => Ok(x),
            (Err(e), Err(_)) => Err(e),
        };
        let a_paid = a_result
            .as_ref()
            .is_ok_and(|r| r.result == PaymentResult::Paid);
        let b_paid = b1.as_ref().is_ok_and(|r| r.result == PaymentResult::Paid);
        let both_answered = a_result.is_ok() && b1.is_ok();
        if both_answered && a_paid == b_paid {
            self.violation(format!(
                "race on {}: {} and {} both {}",
                target.payable_id,
                request_a.channel_txn_id,
                request_b.channel_txn_id,
                if a_paid { "paid" } else { "unpaid" }
            ));
        }
        // Whoever won must have been paid; the other must be a refund. An unanswered side is
        // judged by what it answers at the end.
        let a_must_pay = a_paid || (a_result.is_err() && !b_paid);
        self.settle(a, "race", request_a, target.clone(), a_result, a_must_pay);
        self.settle(b, "race", request_b, target, b1, !a_must_pay);
    }
}

/// The ledger expectation an answer implies.
fn expect_from_answer(report: &PaymentReport) -> Expect {
    match report.result {
        PaymentResult::Paid | PaymentResult::PartiallyRefunded if report.refund.is_none() => {
            let mut payables: Vec<String> = report
                .receipts
                .iter()
                .map(|r| r.payable_id.clone())
                .collect();
            payables.sort();
            Expect::Paid { payables }
        }
        _ if report.receipts.is_empty() => Expect::Refund {
            amount: report.refund.as_ref().map_or(0, |r| r.amount),
        },
        // Partly applied: not something the generator sends; judged as paid for its receipts.
        _ => {
            let mut payables: Vec<String> = report
                .receipts
                .iter()
                .map(|r| r.payable_id.clone())
                .collect();
            payables.sort();
            Expect::Paid { payables }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking the ledger.

fn sorted_receipts(
    receipts: &[yibao_channel_client::types::ReceiptRef],
) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = receipts
        .iter()
        .map(|r| {
            (
                r.payable_id.clone(),
                r.receipt_code.clone(),
                r.receipt_number.clone(),
                r.check_code.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Compares one ledger entry with the payment status the API answers; `None` when they agree.
fn compare_status(
    entry: &Entry,
    status: Result<PaymentStatusResponse, ClientError>,
    refunded: &HashSet<String>,
) -> Option<String> {
    let txn = &entry.request.channel_txn_id;
    let wrong = |what: String| Some(format!("GET payment {txn} ({}): {what}", entry.intent));
    match (&entry.expect, status) {
        (Expect::Paid { payables }, Ok(s)) => {
            let mut got: Vec<String> = s.receipts.iter().map(|r| r.payable_id.clone()).collect();
            got.sort();
            if s.status != PaymentStatus::Paid || &got != payables || s.refund.is_some() {
                return wrong(format!("expected paid for {payables:?}, got {s:?}"));
            }
            if let Some(first) = &entry.first {
                if sorted_receipts(&first.receipts) != sorted_receipts(&s.receipts)
                    || first.payment_no != s.payment_no
                {
                    return wrong(format!(
                        "receipts or payment number differ from the first answer {first:?}: {s:?}"
                    ));
                }
            }
            None
        }
        (Expect::Refund { amount }, Ok(s)) => {
            let Some(refund) = &s.refund else {
                return wrong(format!("expected a refund of {amount}, got {s:?}"));
            };
            let want_status = if refunded.contains(&refund.refund_no) {
                vec![PaymentStatus::Refunded]
            } else {
                vec![PaymentStatus::RefundPending, PaymentStatus::Refunded]
            };
            let same_refund = entry
                .first
                .as_ref()
                .is_none_or(|f| f.refund.as_ref().map(|r| &r.refund_no) == Some(&refund.refund_no));
            if !want_status.contains(&s.status)
                || !s.receipts.is_empty()
                || refund.amount != *amount
                || !same_refund
            {
                return wrong(format!("expected a refund of {amount}, got {s:?}"));
            }
            None
        }
        (Expect::Reversed, Ok(s)) if s.status == PaymentStatus::Reversed => None,
        (Expect::PaidOrReversed { .. }, Ok(s))
            if matches!(s.status, PaymentStatus::Paid | PaymentStatus::Reversed) =>
        {
            None
        }
        (Expect::RefusedAfterReversal, Err(e)) if e.api_code() == Some("NOT_FOUND") => None,
        (expect, Ok(s)) => wrong(format!("expected {expect:?}, got {s:?}")),
        (expect, Err(e)) => wrong(format!("expected {expect:?}, got {e}")),
    }
}

/// Settles the entries that never got an answer by reporting them again (protocol § 5: safe, reports
/// are idempotent); returns how many it settled.
async fn settle_unknown(
    shared: &Shared,
    ledger: &mut [Entry],
    violations: &mut Vec<String>,
) -> usize {
    let mut settled = 0;
    for entry in ledger
        .iter_mut()
        .filter(|e| matches!(e.expect, Expect::Unknown { .. }))
    {
        let client = &shared.clients[entry.channel];
        let request = entry.request.clone();
        let timed = call(true, || client.report_payment(&request)).await;
        match timed.result {
            Ok(report) => {
                entry.expect = expect_from_answer(&report);
                entry.first = Some(report);
                settled += 1;
            }
            Err(e) if e.api_code() == Some("REVERSED") => {
                entry.expect = Expect::RefusedAfterReversal;
                settled += 1;
            }
            Err(e) => violations.push(format!(
                "{} ({}) could not be settled: {e}",
                request.channel_txn_id, entry.intent
            )),
        }
    }
    settled
}

/// Confirms every other pending refund of the generator's channels as succeeded (protocol § 6);
/// returns the refund numbers confirmed.
async fn confirm_some_refunds(shared: &Shared, violations: &mut Vec<String>) -> HashSet<String> {
    let mut confirmed = HashSet::new();
    for client in &shared.clients {
        let timed = call(true, || client.pending_refunds()).await;
        let pending = match timed.result {
            Ok(p) => p,
            Err(e) => {
                violations.push(format!("{}: refund list failed: {e}", client.channel_id()));
                continue;
            }
        };
        for refund in pending
            .iter()
            .filter(|r| r.channel_txn_id.starts_with(&shared.run_id))
            .step_by(2)
        {
            let result = RefundResultRequest::succeeded(format!("LR{}", refund.refund_no));
            let timed = call(true, || {
                client.report_refund_result(&refund.refund_no, &result)
            })
            .await;
            match timed.result {
                Ok(_) => {
                    confirmed.insert(refund.refund_no.clone());
                }
                Err(e) => {
                    violations.push(format!("refund {} result failed: {e}", refund.refund_no))
                }
            }
        }
    }
    confirmed
}

/// Every ledger entry against `GET /channel/v1/payments/{id}`, `concurrency` at a time.
async fn check_against_api(
    shared: &Arc<Shared>,
    ledger: Arc<Vec<Entry>>,
    refunded: Arc<HashSet<String>>,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.clamp(1, 64) {
        let (shared, ledger, refunded, next) = (
            shared.clone(),
            ledger.clone(),
            refunded.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut wrong = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = ledger.get(i) else {
                    return wrong;
                };
                let client = &shared.clients[entry.channel];
                let txn = &entry.request.channel_txn_id;
                let timed = call(true, || client.payment_status(txn)).await;
                if let Some(w) = compare_status(entry, timed.result, &refunded) {
                    wrong.push(w);
                }
            }
        }));
    }
    let mut wrong = Vec::new();
    for t in tasks {
        wrong.extend(t.await?);
    }
    Ok(wrong)
}

/// Every ledger entry against the database: the payments under this run's transaction ids, what
/// each applied and refunded, and which payables are paid by which transaction.
async fn check_against_database(
    url: &DatabaseUrl,
    run_id: &str,
    ledger: &[Entry],
) -> anyhow::Result<Vec<String>> {
    let pattern = format!("{run_id}-%");
    let payments = fetch_all!(
        url,
        (String, String, String, i64, i64, i64),
        "SELECT p.channel_id, p.channel_txn_id, p.status, p.amount_fen, \
           CAST(COALESCE((SELECT SUM(a.amount_fen) FROM payment_applications a \
                          WHERE a.region_code = p.region_code AND a.payment_no = p.payment_no AND a.active = $2), 0) AS BIGINT), \
           CAST(COALESCE((SELECT SUM(r.amount_fen) FROM refunds r \
                          WHERE r.region_code = p.region_code AND r.payment_no = p.payment_no AND r.status <> 'cancelled'), 0) AS BIGINT) \
         FROM payments p WHERE p.channel_txn_id LIKE $1 AND p.response <> ''",
        &pattern,
        true
    );
    let applications = fetch_all!(
        url,
        (String, String, String),
        "SELECT a.payable_id, p.channel_id, p.channel_txn_id FROM payment_applications a \
         JOIN payments p ON p.region_code = a.region_code AND p.payment_no = a.payment_no \
         WHERE a.active = $2 AND p.channel_txn_id LIKE $1",
        &pattern,
        true
    );
    let mut wrong = Vec::new();
    let mut in_db: HashMap<(String, String), (String, i64, i64, i64)> = HashMap::new();
    for (channel, txn, status, amount, applied, refunded) in payments {
        if in_db
            .insert(
                (channel.clone(), txn.clone()),
                (status, amount, applied, refunded),
            )
            .is_some()
        {
            wrong.push(format!("database: {channel} {txn} stored twice"));
        }
    }
    let mut expected_paid: HashMap<String, (String, String)> = HashMap::new();
    let mut maybe_paid: HashSet<(String, String, String)> = HashSet::new();
    for e in ledger {
        let key = (channel(e.channel).0, e.request.channel_txn_id.clone());
        let row = in_db.remove(&key);
        let amount = e.request.amount;
        let txn = &key.1;
        let problem = match (&e.expect, &row) {
            (Expect::RefusedAfterReversal, None) => None,
            (Expect::RefusedAfterReversal, Some(r)) => Some(format!("refused report stored: {r:?}")),
            (_, None) => Some("not in the database".to_owned()),
            (Expect::Paid { payables }, Some((status, stored, applied, refunded))) => {
                for p in payables {
                    expected_paid.insert(p.clone(), key.clone());
                }
                (status != "paid" || *stored != amount || *applied != amount || *refunded != 0)
                    .then(|| format!("expected paid {amount}, stored {status} {stored}: applied {applied}, refunded {refunded}"))
            }
            (Expect::Refund { amount: owed }, Some((status, stored, applied, refunded))) => {
                (!matches!(status.as_str(), "refund_pending" | "refunded")
                    || *stored != amount
                    || *applied != 0
                    || *refunded != *owed
                    || *owed != amount)
                    .then(|| format!("expected a refund of {amount}, stored {status} {stored}: applied {applied}, refunded {refunded}"))
            }
            (Expect::Reversed, Some((status, _, applied, refunded))) => {
                (status != "reversed" || *applied != 0 || *refunded != 0)
                    .then(|| format!("expected reversed, stored {status}: applied {applied}, refunded {refunded}"))
            }
            (Expect::PaidOrReversed { payables }, Some((status, _, applied, _))) => {
                if status == "paid" {
                    for p in payables {
                        expected_paid.insert(p.clone(), key.clone());
                    }
                } else {
                    for p in payables {
                        maybe_paid.insert((p.clone(), key.0.clone(), key.1.clone()));
                    }
                }
                (!matches!(status.as_str(), "paid" | "reversed") || (status == "paid" && *applied != amount))
                    .then(|| format!("expected paid or reversed, stored {status}, applied {applied}"))
            }
            (Expect::Unknown { error }, Some(r)) => Some(format!("never settled ({error}); stored {r:?}")),
        };
        if let Some(p) = problem {
            wrong.push(format!("database: {} {txn} ({}): {p}", key.0, e.intent));
        }
    }
    for ((channel, txn), row) in in_db {
        wrong.push(format!(
            "database: {channel} {txn} stored ({row:?}) but never reported by the generator"
        ));
    }
    let mut seen: HashMap<String, (String, String)> = HashMap::new();
    for (payable, channel, txn) in applications {
        if let Some(other) = seen.insert(payable.clone(), (channel.clone(), txn.clone())) {
            wrong.push(format!(
                "database: payable {payable} applied twice, by {other:?} and {channel} {txn}"
            ));
        }
    }
    for (payable, by) in &expected_paid {
        match seen.remove(payable) {
            Some(got) if &got == by => {}
            got => wrong.push(format!(
                "database: payable {payable} should be paid by {by:?}, is applied to {got:?}"
            )),
        }
    }
    for (payable, (channel, txn)) in seen {
        if !maybe_paid.contains(&(payable.clone(), channel.clone(), txn.clone())) {
            wrong.push(format!(
                "database: payable {payable} applied to {channel} {txn}, which the ledger says is not paid"
            ));
        }
    }
    Ok(wrong)
}

fn kind_figures(kind: &str, micros: &hdrhistogram::Histogram<u64>, seconds: f64) -> KindFigures {
    use crate::bench::quantile_ms;
    let count = usize::try_from(micros.len()).unwrap_or(usize::MAX);
    KindFigures {
        kind: kind.to_owned(),
        count,
        per_second: count as f64 / seconds,
        p50_ms: quantile_ms(micros, 0.50),
        p95_ms: quantile_ms(micros, 0.95),
        p99_ms: quantile_ms(micros, 0.99),
        max_ms: quantile_ms(micros, 1.0),
    }
}

const REPORT_KINDS: [&str; 6] = [
    "pay",
    "pay_order",
    "duplicate",
    "paid_again",
    "late_report",
    "race_report",
];

/// Runs the plan against the database at `url` (which `storage` is connected to).
pub async fn run(
    url: &DatabaseUrl,
    storage: Arc<dyn Storage>,
    master_key: Option<&yibao_server::channel::secrets::MasterKey>,
    plan: LoadPlan,
) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(
        (1..=MAX_CHANNELS).contains(&plan.channels),
        "channels must be 1 to {MAX_CHANNELS}"
    );
    anyhow::ensure!(
        (1..=MAX_CONCURRENCY).contains(&plan.concurrency),
        "concurrency must be 1 to {MAX_CONCURRENCY}"
    );
    anyhow::ensure!(
        (1..=MAX_PAYERS).contains(&plan.payers),
        "payers must be 1 to {MAX_PAYERS}"
    );
    match plan.stop {
        StopRule::Duration(d) => anyhow::ensure!(
            d > Duration::ZERO && d <= Duration::from_secs(24 * 3600),
            "duration must be more than 0 and at most a day"
        ),
        StopRule::Operations(n) => {
            anyhow::ensure!(
                (1..=100_000_000).contains(&n),
                "operations must be 1 to 100000000"
            )
        }
    }
    let fee_year = if plan.setup {
        let t = Instant::now();
        let year = crate::bench::prepare_payers(storage.as_ref(), plan.payers).await?;
        setup(storage.as_ref(), master_key, plan.payers, plan.channels).await?;
        eprintln!(
            "setup: {} payers, {} channels in {:.1} s",
            plan.payers,
            plan.channels,
            t.elapsed().as_secs_f64()
        );
        year
    } else {
        let region = yibao_domain::RegionCode::parse(REGION).map_err(|e| anyhow::anyhow!("{e}"))?;
        let policies = storage.list_fee_policies(region).await?;
        yibao_domain::enrolment_fee_year(&policies, yibao_server::Clock::system().today())
            .map(|p| p.fee_year())
            .context("no open fee year for 320600: run once with setup")?
    };
    let mut targets = unpaid_targets(url, i32::from(fee_year.get())).await?;
    // Spread the workers over the payers rather than all starting at the first.
    let mut rng = Rng(plan.seed ^ 0x9e37_79b9);
    for i in (1..targets.len()).rev() {
        targets.swap(i, rng.index(i + 1));
    }
    anyhow::ensure!(
        !targets.is_empty() || plan.mix.only_searches(),
        "no unpaid payables left in {REGION}: use a fresh database or more --payers"
    );
    if targets.is_empty() {
        // Searches only, on a database whose payables are all paid: search the paid ones.
        targets = fetch_all!(
            url,
            (String, i64, String, String),
            "SELECT y.payable_id, y.amount_fen, y.id_number, p.name FROM payables y \
             JOIN persons p ON p.region_code = y.region_code AND p.id_number = y.id_number \
             WHERE y.region_code = $1 AND y.fee_year = $2 ORDER BY y.payable_id",
            REGION,
            i32::from(fee_year.get())
        )
        .into_iter()
        .map(|(payable_id, amount, id_number, name)| Target {
            payable_id,
            amount,
            id_number,
            name,
        })
        .collect();
    }

    let (base, server, server_process) = match &plan.url {
        Some(u) => (u.clone(), None, plan.server.clone()),
        None => {
            let (base, task) = crate::bench::start_in_process(storage.clone(), plan.batch).await?;
            (base, Some(task), ServerProcess::ThisProcess)
        }
    };
    let http = reqwest_client(plan.timeout, plan.concurrency)?;
    let clients = (0..plan.channels)
        .map(|i| {
            let (id, secret) = channel(i);
            ChannelClient::builder(&base, id, secret.into_bytes())
                .http_client(http.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let run_id = format!(
        "L{:x}{:x}",
        chrono::Utc::now().timestamp_millis(),
        std::process::id() % 4096
    );
    let shared = Arc::new(Shared {
        clients,
        targets,
        next_target: AtomicUsize::new(0),
        mix: plan.mix.clone(),
        retry: plan.retry,
        deadline: match plan.stop {
            StopRule::Duration(d) => Some(Instant::now() + d),
            StopRule::Operations(_) => None,
        },
        operations: match plan.stop {
            StopRule::Operations(n) => Some(n),
            StopRule::Duration(_) => None,
        },
        started_ops: AtomicUsize::new(0),
        run_id,
        stopping: AtomicBool::new(false),
        progress: plan.progress.clone(),
    });
    eprintln!(
        "load: {} channels, {} workers, mix {}, {} unpaid payables, server {base}, run {}",
        plan.channels,
        plan.concurrency,
        plan.mix.describe(),
        shared.targets.len(),
        shared.run_id
    );

    // Sample the server process while the load runs.
    let sampled = Arc::new(Mutex::new(Sampled::default()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampled, sampling, server_process) =
            (sampled.clone(), sampling.clone(), server_process.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(mut s) = sampled.lock() {
                    s.sample(&server_process);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let client_cpu_start = proc_cpu_ticks("self");
    // Only where the database is PostgreSQL (a SQLite run next to a PostgreSQL would count it).
    let on_postgres = matches!(url, DatabaseUrl::Postgres(_));
    let postgres_cpu_start = local_postgres_cpu_ticks();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..plan.concurrency {
        let worker = Worker {
            shared: shared.clone(),
            id: w,
            rng: Rng(plan.seed.wrapping_add(w as u64 * 7919) ^ 0x5151),
            seq: 0,
            stats: Stats::default(),
            ledger: Vec::new(),
            paid: Vec::new(),
            answered: Vec::new(),
            recycled: Vec::new(),
            violations: Vec::new(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    let mut stats = Stats::default();
    let mut ledger = Vec::new();
    let mut violations = Vec::new();
    for w in workers {
        let r = w.await?;
        stats.merge(r.stats);
        ledger.extend(r.ledger);
        violations.extend(r.violations);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(progress) = &plan.progress {
        progress.load_done.store(true, Ordering::Relaxed);
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    if let Ok(mut s) = sampled.lock() {
        s.sample(&server_process);
    }
    let client_cpu_seconds = match (client_cpu_start, proc_cpu_ticks("self")) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / CLOCK_TICKS),
        _ => None,
    };
    let postgres_cpu_seconds = on_postgres
        .then(|| postgres_cpu_between(&postgres_cpu_start, &local_postgres_cpu_ticks()))
        .flatten();
    let server_figures = sampled.lock().map(|s| s.figures()).unwrap_or_default();
    let operations = shared
        .started_ops
        .load(Ordering::Relaxed)
        .min(shared.operations.unwrap_or(usize::MAX));
    eprintln!(
        "load done: {operations} operations in {seconds:.1} s; checking {} transactions",
        ledger.len()
    );

    // Afterwards: settle what never got an answer, confirm some refunds, then compare.
    let resolved_at_end = settle_unknown(&shared, &mut ledger, &mut violations).await;
    let refunded = confirm_some_refunds(&shared, &mut violations).await;
    let ledger = Arc::new(ledger);
    violations.extend(
        check_against_api(
            &shared,
            ledger.clone(),
            Arc::new(refunded.clone()),
            plan.concurrency,
        )
        .await?,
    );
    if let Some(task) = server {
        task.abort();
    }
    violations.extend(check_against_database(url, &shared.run_id, &ledger).await?);
    let invariants = yibao::operator::check_invariants(storage.as_ref()).await?;
    if !invariants.holds() {
        violations.push(format!("invariants broken: {invariants:?}"));
    }
    if let Some(path) = &plan.ledger_file {
        write_ledger(path, &ledger)?;
    }

    let mut kinds: Vec<KindFigures> = stats
        .latencies
        .iter()
        .map(|(k, v)| kind_figures(k, v, seconds))
        .collect();
    let mut all = crate::bench::latency_histogram();
    for histogram in stats.latencies.values() {
        let _ = all.add(histogram);
    }
    let reports: usize = REPORT_KINDS
        .iter()
        .map(|k| {
            stats
                .latencies
                .get(k)
                .map_or(0, |h| usize::try_from(h.len()).unwrap_or(usize::MAX))
        })
        .sum();
    kinds.push(kind_figures("all requests", &all, seconds));
    let baseline_per_second = if plan.baseline && reports > 0 {
        eprintln!(
            "raw baseline: {} transactions, {} at once",
            reports.max(2000),
            plan.concurrency
        );
        Some(crate::bench::raw_baseline(url, plan.concurrency, reports.clamp(2000, 200_000)).await?)
    } else {
        None
    };
    Ok(LoadReport {
        seconds,
        operations,
        kinds,
        reports_per_second: reports as f64 / seconds,
        baseline_per_second,
        server: server_figures,
        client_cpu_seconds,
        postgres_cpu_seconds,
        errors: stats.errors,
        retries: stats.retries,
        notes: stats.notes,
        ledger_transactions: ledger.len(),
        resolved_at_end,
        refunds_confirmed: refunded.len(),
        violations,
        invariants_hold: invariants.holds(),
    })
}

fn reqwest_client(timeout: Duration, concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .pool_max_idle_per_host(concurrency * 3 + 8)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn write_ledger(path: &std::path::Path, ledger: &[Entry]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
    );
    for e in ledger {
        serde_json::to_writer(&mut out, e)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_server_pid_that_is_not_running_is_refused() {
        use super::{ensure_server_running, ServerProcess};
        assert!(ensure_server_running(&ServerProcess::Pid(std::process::id())).is_ok());
        assert!(ensure_server_running(&ServerProcess::Unknown).is_ok());
        let gone = ensure_server_running(&ServerProcess::Pid(u32::MAX)).unwrap_err();
        assert!(gone.to_string().contains("--server-pid"), "{gone}");
    }

    use super::*;

    #[test]
    fn mixes_parse_and_refuse_nonsense() {
        let mix = Mix::parse(DEFAULT_MIX).unwrap();
        assert_eq!(mix.total(), 100);
        assert_eq!(mix.describe(), DEFAULT_MIX);
        assert!(Mix::parse("search=1,search=2").is_err());
        assert!(Mix::parse("pay=0").is_err());
        assert!(Mix::parse("bogus=1").is_err());
        assert!(Mix::parse("pay").is_err());
        assert!(Mix::parse("pay=-1").is_err());
        assert!(Mix::searches_only().only_searches());
        let mut rng = Rng(1);
        let pay = Mix::parse("pay=1,search=0").unwrap();
        assert!((0..100).all(|_| pay.pick(&mut rng) == Op::Pay));
    }

    #[test]
    fn this_process_can_be_measured() {
        assert!(proc_cpu_ticks("self").is_some());
        assert!(proc_status_mib("self", "VmHWM:").is_some());
    }
}
