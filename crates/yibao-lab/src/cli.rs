//! The `yibao-lab` command: the benchmarks of BENCHMARKS.md, the channel load generator and the
//! soak. Each writes to the database it is given: use a fresh one.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use yibao::cli::{connect, database_config, shutdown_signal, DatabaseArgs};

#[derive(Parser)]
#[command(
    name = "yibao-lab",
    version,
    about = "yibao 的性能与负载实验：基准测试、渠道负载、长时间运行测试（见 BENCHMARKS.md）"
)]
struct Cli {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Subcommand)]
enum LabCommand {
    /// Generate a roster of N rows, import it, then assess it; print timings and peak memory.
    Enrolment(BenchEnrolmentArgs),
    /// Signed payment reports over HTTP, many reporters at once, beside the raw transaction.
    Payments(BenchPaymentsArgs),
    /// A statement of N lines reconciled against N payments of one day; time and peak memory.
    Reconcile(BenchReconcileArgs),
    /// A load generator speaking the channel protocol: several channels, a mix of searches, orders,
    /// payments, duplicates, payments of paid payables, reversals (some before their report); then
    /// every transaction it sent is checked against the API and the database, and the invariants.
    Load(BenchLoadArgs),
    /// A soak: `yibao serve` as a child process over a county-sized database, the mixed channel
    /// load for a long time, sampled every 10 s (throughput, RSS, file descriptors, threads,
    /// database and WAL size, growing tables); a table per minute, CSV and SVG of the samples;
    /// fails when throughput falls, RSS or descriptors keep rising, or the WAL passes its bound.
    Soak(BenchSoakArgs),
}

#[derive(Args)]
struct BenchSoakArgs {
    /// Residents generated and assessed in 320600 (each payment takes an unpaid one).
    #[arg(long, default_value_t = 1_000_000)]
    residents: usize,
    /// Seconds the load runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 1200)]
    duration: u64,
    /// Seconds between two samples.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    interval: u64,
    /// Workers running operations at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Channels the generator plays.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Weights of the operations (as for load).
    #[arg(long, default_value = crate::load::DEFAULT_MIX)]
    mix: String,
    /// Do not create the residents and channels (a database prepared before, e.g. by an earlier
    /// soak or `yibao-lab load --setup-only --payers N`).
    #[arg(long)]
    no_setup: bool,
    /// A running server instead of a child `yibao serve` (then --server-pid for its figures).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The running server's process id (with --url).
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
    /// Retry requests without an answer or with a 5xx, with the same idempotency keys.
    #[arg(long)]
    retry: bool,
    /// Write the samples here as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<std::path::PathBuf>,
    /// Draw the samples here as SVG (throughput, RSS, WAL or database size over time).
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    /// The child server's log (default: a file in the temporary directory).
    #[arg(long, value_name = "FILE")]
    server_log: Option<std::path::PathBuf>,
    /// The SQLite WAL must stay at or below this many MiB (the server's truncation bound).
    #[arg(long, value_name = "MIB", default_value_t = yibao_storage_sqlite::WAL_BOUND_BYTES / (1024 * 1024))]
    wal_bound_mib: u64,
    #[arg(long, default_value_t = 2020)]
    seed: u64,
    /// Run nothing: read the samples of an earlier soak (its --csv), print its table per minute
    /// and its verdict, and draw it again with --svg.
    #[arg(long, value_name = "FILE")]
    from_csv: Option<std::path::PathBuf>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct BenchLoadArgs {
    /// A running server (http://HOST:PORT) on the database given; default: start one in this
    /// process on 127.0.0.1:0.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Channels the generator plays (load-00, load-01, …; created on the database).
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Workers running operations at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to run (default 30 unless --operations is given).
    #[arg(long, value_name = "SECONDS", conflicts_with = "operations")]
    duration: Option<f64>,
    /// Operations to run instead of a duration.
    #[arg(long)]
    operations: Option<usize>,
    /// Weights of the operations: search, order, pay, duplicate, paid_again, reverse, reverse_early, race.
    #[arg(long, default_value = crate::load::DEFAULT_MIX)]
    mix: String,
    /// Searches only (the same as --mix search=1).
    #[arg(long, conflicts_with = "mix")]
    searches_only: bool,
    /// Payers to generate and assess (each payment takes an unpaid one).
    #[arg(long, default_value_t = 20_000)]
    payers: usize,
    /// Group commit size of the in-process server (1: off).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Retry requests that got no answer (connection errors, timeouts) or a 5xx with the same
    /// idempotency keys, with backoff, for about two minutes (chaos runs).
    #[arg(long)]
    retry: bool,
    /// Bound on one request, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// The external server's process id, for its CPU time and memory. Refused when no such
    /// process runs, and the run fails when the process was never seen during the load.
    #[arg(long, conflicts_with = "server_pid_file")]
    server_pid: Option<u32>,
    /// A file holding the external server's process id, read at every sample (restarts).
    #[arg(long, value_name = "FILE")]
    server_pid_file: Option<std::path::PathBuf>,
    /// Skip the raw-transaction baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Only create the payers and channels, then exit.
    #[arg(long, conflicts_with = "no_setup")]
    setup_only: bool,
    /// Do not create payers and channels (already done with --setup-only).
    #[arg(long)]
    no_setup: bool,
    /// Write the ledger (one JSON object per transaction) to this file.
    #[arg(long, value_name = "FILE")]
    ledger: Option<std::path::PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 2020)]
    seed: u64,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct BenchPaymentsArgs {
    #[arg(long, default_value_t = 20_000)]
    payments: usize,
    #[arg(long, default_value_t = 64)]
    reporters: usize,
    /// Group commit size (1: each report commits on its own).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct BenchReconcileArgs {
    /// Lines in the statement (and payments of the day).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args)]
struct BenchEnrolmentArgs {
    /// Rows in the generated roster.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// People imported first, in a trial import of their own (0 to 10 000): the statistics
    /// the import then starts with are those of tables nearly empty.
    #[arg(long, default_value_t = 0)]
    trial_rows: usize,
    /// People (0 to 50 000, the first of the roster) put under a bank's auto-debit
    /// agreements after the assessment; then the bank's debit run is created and its result
    /// file (every item debited) imported, each timed.
    #[arg(long, default_value_t = 0)]
    debit_members: usize,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Runs the command line; the process exit code is what it returns.
pub fn main() -> ExitCode {
    yibao::cli::run_to_exit_code(run(Cli::parse().command))
}

async fn run(command: LabCommand) -> anyhow::Result<()> {
    match command {
        LabCommand::Payments(args) => {
            let config = database_config(args.database)?;
            let storage = connect(&config).await?;
            let r = crate::bench::payments(
                &config.database_url,
                storage,
                args.payments,
                args.reporters,
                args.batch,
            )
            .await?;
            println!(
                "payments: {} in {:.1} s = {:.0}/s; latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                r.payments, r.seconds, r.payments as f64 / r.seconds, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms
            );
            println!(
                "raw transaction (update one row, insert one row with a unique key): {:.0}/s; ratio {:.2}x",
                r.baseline_per_second,
                (r.payments as f64 / r.seconds) / r.baseline_per_second
            );
            if let Some(mib) = crate::bench::peak_rss_mib() {
                println!("peak RSS (client and server in one process): {mib} MiB");
            }
            Ok(())
        }
        LabCommand::Reconcile(args) => {
            let config = database_config(args.database)?;
            let storage = connect(&config).await?;
            let r = crate::bench_reconcile::reconcile_statement(
                &config.database_url,
                storage.as_ref(),
                args.rows,
            )
            .await?;
            println!(
                "reconciled a statement of {} lines in {:.2} s ({:.0} lines/s)",
                r.lines,
                r.seconds,
                r.lines as f64 / r.seconds
            );
            println!(
                "matched {}, channel-only {}, platform-only {}, amount mismatch {}, duplicate {}",
                r.summary.matched,
                r.summary.channel_only,
                r.summary.platform_only,
                r.summary.amount_mismatch,
                r.summary.duplicate
            );
            if let Some(mib) = crate::bench::peak_rss_mib() {
                println!("peak RSS: {mib} MiB");
            }
            Ok(())
        }
        LabCommand::Load(args) => load(args).await,
        LabCommand::Soak(args) => soak(args).await,
        LabCommand::Enrolment(args) => {
            let config = database_config(args.database)?;
            let storage = connect(&config).await?;
            crate::bench::enrolment(
                storage.as_ref(),
                args.rows,
                args.trial_rows,
                args.debit_members,
            )
            .await
        }
    }
}

async fn load(args: BenchLoadArgs) -> anyhow::Result<()> {
    use crate::load::{LoadPlan, Mix, ServerProcess, StopRule};
    let config = database_config(args.database)?;
    let storage = connect(&config).await?;
    if args.setup_only {
        crate::load::setup(
            storage.as_ref(),
            config.master_key.as_ref(),
            args.payers,
            args.channels,
        )
        .await?;
        println!(
            "{} payers and {} channels ready",
            args.payers, args.channels
        );
        return Ok(());
    }
    let stop = match (args.operations, args.duration) {
        (Some(n), _) => StopRule::Operations(n),
        (None, Some(s)) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
            StopRule::Duration(std::time::Duration::from_secs_f64(s))
        }
        (None, Some(_)) => anyhow::bail!("--duration must be more than 0 and at most 86400"),
        (None, None) => StopRule::Duration(std::time::Duration::from_secs(30)),
    };
    let mut plan = LoadPlan::new(stop);
    plan.url = args.url;
    plan.channels = args.channels;
    plan.concurrency = args.concurrency;
    plan.mix = if args.searches_only {
        Mix::searches_only()
    } else {
        Mix::parse(&args.mix)?
    };
    plan.payers = args.payers;
    plan.batch = args.batch;
    plan.retry = args.retry;
    anyhow::ensure!(
        (100..=600_000).contains(&args.timeout_ms),
        "--timeout-ms must be 100 to 600000"
    );
    plan.timeout = std::time::Duration::from_millis(args.timeout_ms);
    plan.server = match (&plan.url, args.server_pid, args.server_pid_file) {
        (None, _, _) => ServerProcess::ThisProcess,
        (Some(_), Some(pid), _) => ServerProcess::Pid(pid),
        (Some(_), None, Some(file)) => ServerProcess::PidFile(file),
        (Some(_), None, None) => ServerProcess::Unknown,
    };
    crate::load::ensure_server_running(&plan.server)?;
    let pid_given = matches!(plan.server, ServerProcess::Pid(_));
    plan.baseline = !args.no_baseline;
    plan.setup = !args.no_setup;
    plan.ledger_file = args.ledger;
    plan.seed = args.seed;
    let report = crate::load::run(
        &config.database_url,
        storage,
        config.master_key.as_ref(),
        plan,
    )
    .await?;
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    anyhow::ensure!(
        report.ok(),
        "负载测试发现问题 the load run found problems (see above)"
    );
    // The server ended during the run (or another answered): its figures are not the load's.
    anyhow::ensure!(
        !pid_given || report.server.pids_seen > 0,
        "--server-pid 的进程在负载期间未被看到 the server's process was never seen during the load"
    );
    Ok(())
}

async fn soak(args: BenchSoakArgs) -> anyhow::Result<()> {
    use std::time::Duration;
    anyhow::ensure!(
        (1..=crate::load::MAX_PAYERS).contains(&args.residents),
        "--residents must be 1 to {}",
        crate::load::MAX_PAYERS
    );
    anyhow::ensure!(
        (1..=7 * 86_400).contains(&args.duration),
        "--duration must be 1 to 604800 seconds"
    );
    anyhow::ensure!(
        (1..=65_536).contains(&args.wal_bound_mib),
        "--wal-bound-mib must be 1 to 65536"
    );
    if let Some(csv) = &args.from_csv {
        let samples = crate::soak::read_csv(csv)?;
        crate::soak::print_header();
        for row in crate::soak::minute_table(&samples) {
            println!("{row}");
        }
        if let Some(svg) = &args.svg {
            let name = csv
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            std::fs::write(
                svg,
                crate::soak::svg(
                    &samples,
                    &format!("yibao-lab soak: {name}"),
                    args.wal_bound_mib * 1024 * 1024,
                ),
            )?;
        }
        let v = crate::soak::judge(&samples, args.wal_bound_mib * 1024 * 1024);
        println!(
            "soak: {} samples; throughput first {:.0}/s, last {:.0}/s",
            samples.len(),
            v.first_rate,
            v.last_rate
        );
        for p in &v.problems {
            println!("SOAK PROBLEM: {p}");
        }
        anyhow::ensure!(
            v.problems.is_empty(),
            "长时间运行测试发现问题 the soak found problems (see above)"
        );
        return Ok(());
    }
    let config_file = args.database.config.clone();
    let config = database_config(args.database)?;
    let storage = connect(&config).await?;
    let plan = crate::soak::SoakPlan {
        residents: args.residents,
        duration: Duration::from_secs(args.duration),
        interval: Duration::from_secs(args.interval),
        concurrency: args.concurrency,
        channels: args.channels,
        mix: crate::load::Mix::parse(&args.mix)?,
        setup: !args.no_setup,
        url: args.url,
        server_pid: args.server_pid,
        config_file,
        retry: args.retry,
        csv: args.csv,
        svg: args.svg,
        server_log: args.server_log,
        wal_bound_bytes: args.wal_bound_mib * 1024 * 1024,
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    // Interrupted, the soak's future is dropped, and with it the child server (killed on drop).
    let result = tokio::select! {
        r = crate::soak::run(&config.database_url, storage, config.master_key.as_ref(), plan) => r?,
        () = shutdown_signal() => anyhow::bail!("soak interrupted; its server stopped"),
    };
    println!();
    result.report.print();
    let v = &result.verdict;
    println!(
        "soak: {} samples over {:.0} s ({:.0} s with setup and checks); throughput first {:.0}/s, last {:.0}/s",
        result.samples.len(),
        result.samples.last().map_or(0.0, |s| s.seconds),
        started.elapsed().as_secs_f64(),
        v.first_rate,
        v.last_rate
    );
    if v.problems.is_empty() {
        println!("soak: throughput kept, RSS and file descriptors flat, WAL bounded");
    } else {
        for p in &v.problems {
            println!("SOAK PROBLEM: {p}");
        }
    }
    anyhow::ensure!(
        result.ok(),
        "长时间运行测试发现问题 the soak found problems (see above)"
    );
    Ok(())
}
