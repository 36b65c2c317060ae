//! `yibao bench …`: benchmarks that drive the same code paths as operators do, on the database
//! given, and print what they measured. Figures are recorded in BENCHMARKS.md.

use std::io::Write;
use std::time::Instant;

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
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "姓名,身份证号码,参保地区,服务站,联系电话")?;
    let start = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).context("date")?;
    for i in 0..rows {
        let birth = start + chrono::Duration::days(i64::try_from(i / 1000).unwrap_or(0));
        let body = format!("320602{}{:03}", birth.format("%Y%m%d"), i % 1000);
        let id = format!("{body}{}", check_character(&body));
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

pub async fn enrolment(storage: &dyn Storage, rows: usize) -> anyhow::Result<()> {
    anyhow::ensure!((1..=2_000_000).contains(&rows), "rows must be 1 to 2000000");
    crate::demo::load(storage).await?;
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
    let scope = ImportScope {
        actor: "bench".into(),
        station: None,
        region: None,
    };
    let t = Instant::now();
    let report = import_roster(
        storage,
        &path,
        "bench-roster.csv",
        &scope,
        today,
        None,
        Limits::default(),
        &|_| {},
    )
    .await
    .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code.as_str()))?;
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
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS: {mib} MiB");
    }
    Ok(())
}
