//! The operator commands: `import roster`, `assess`, `staff add`. Progress goes to standard error
//! on a terminal only; results go to standard output.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_roster_file::Limits;
use yibao_server::services::assessment::assess_region;
use yibao_server::services::roster_import::{import_roster, rejections_csv, ImportScope};
use yibao_server::services::staff::{create_staff, NewStaff, Password};
use yibao_server::services::Progress;
use yibao_server::Clock;
use yibao_storage::{Role, Storage};

/// Who the command line acts as, for history and the audit log.
pub fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{}", user.chars().take(32).collect::<String>())
}

/// A progress line on a terminal, with the rate and, when the total is known, the time left;
/// nothing when standard error is not a terminal (a pipe, a log file).
fn progress_printer(what: &'static str) -> impl Fn(Progress) + Send + Sync {
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    move |p| {
        if tty {
            // Back to the line's start, the line, then clear what a longer earlier one left.
            eprint!("\r{}\x1b[K", progress_line(what, p, started.elapsed()));
            let _ = std::io::stderr().flush();
        }
    }
}

/// `已处理行数 14000 / 30000（46%），每秒 2800，约 6 秒后完成`: the rate once a second has passed,
/// the time left when the total is known.
fn progress_line(what: &str, p: Progress, elapsed: std::time::Duration) -> String {
    let mut line = match p.total {
        Some(total) if total > 0 => format!(
            "{what} {} / {total}（{}%）",
            p.done,
            p.done.min(total) * 100 / total
        ),
        Some(total) => format!("{what} {} / {total}", p.done),
        None => format!("{what} {}", p.done),
    };
    let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    if millis >= 1000 {
        let rate = p.done.saturating_mul(1000) / millis;
        line.push_str(&format!("，每秒 {rate}"));
        if let (Some(total), true) = (p.total, rate > 0) {
            let left = total.saturating_sub(p.done).div_ceil(rate);
            line.push_str(&format!("，约 {left} 秒后完成"));
        }
    }
    line
}

fn end_progress() {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// Where the rejected rows go: `<name>.rejected.csv` beside the file, or in the current directory
/// when that folder cannot be written.
pub(crate) fn rejection_path(file: &Path) -> std::path::PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "roster".into());
    file.with_file_name(format!("{stem}.rejected.csv"))
}

pub async fn import_roster_command(
    storage: &dyn Storage,
    file: &Path,
    fee_year: Option<i64>,
) -> anyhow::Result<()> {
    let fee_year = fee_year
        .map(|y| FeeYear::new(y).map_err(|e| anyhow::anyhow!("{e}")))
        .transpose()?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scope = ImportScope::unrestricted(cli_actor());
    let report = import_roster(
        storage,
        file,
        &name,
        &scope,
        Clock::system().today(),
        fee_year,
        Limits::default(),
        &progress_printer("已处理行数"),
    )
    .await?;
    end_progress();
    let s = &report.summary;
    let read_from = match &report.sheet {
        Some(sheet) => format!("工作表“{sheet}”"),
        None => format!(
            "文件编码 {}",
            match report.encoding {
                "utf8" => "UTF-8",
                "utf8_bom" => "UTF-8（带BOM）",
                "gb18030" => "GB18030",
                other => other,
            }
        ),
    };
    println!(
        "读取 {} 行：新参保 {}，信息更新 {}，无变化 {}，未通过 {}（{read_from}）",
        s.rows_read, s.enrolled, s.updated, s.unchanged, s.rejected
    );
    for suggestion in &report.column_suggestions {
        eprintln!(
            "提示：列“{}”不是花名册的列，已忽略；如果是“{}”，请把列名改为“{}”",
            suggestion.found, suggestion.expected, suggestion.expected
        );
    }
    let ignored: Vec<&str> = report
        .unknown_columns
        .iter()
        .filter(|c| !report.column_suggestions.iter().any(|s| &s.found == *c))
        .map(String::as_str)
        .collect();
    if !ignored.is_empty() {
        eprintln!("提示：以下列不是花名册的列，已忽略：{}", ignored.join("、"));
    }
    if !report.rejections.is_empty() {
        let mut path = rejection_path(file);
        if std::fs::write(&path, rejections_csv(&report)).is_err() {
            path = std::path::PathBuf::from(path.file_name().unwrap_or_default());
            std::fs::write(&path, rejections_csv(&report))
                .with_context(|| format!("无法写入未通过明细 {}", path.display()))?;
        }
        println!(
            "未通过的行（原内容及原因）已写入：{}；改正后可直接再次导入该文件",
            path.display()
        );
    }
    Ok(())
}

pub async fn assess_command(
    storage: &dyn Storage,
    region: &str,
    fee_year: i64,
) -> anyhow::Result<()> {
    let region = RegionCode::parse(region).map_err(|e| anyhow::anyhow!("{e}"))?;
    let fee_year = FeeYear::new(fee_year).map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = assess_region(
        storage,
        region,
        fee_year,
        &cli_actor(),
        Clock::system().today(),
        &progress_printer("已核定"),
    )
    .await?;
    end_progress();
    storage
        .append_audit(&yibao_storage::AuditEntry {
            actor: cli_actor(),
            action: "assessment.run".into(),
            region: Some(region.to_string()),
            target: fee_year.to_string(),
            detail: serde_json::to_value(&report).unwrap_or_default(),
        })
        .await?;
    println!(
        "{} {} 年度核定完成：续保 {} 人，新建应缴费信息 {} 条（其中免缴 {} 条），金额合计 {} 元",
        region,
        fee_year,
        report.renewed,
        report.created,
        report.exempt,
        yibao_domain::Fen::new(report.amount_fen)
            .map(|f| f.to_yuan_string())
            .unwrap_or_default()
    );
    if report.repriced > 0 {
        println!(
            "缴费期（含延长期）已结束：{} 条未缴费的应缴费信息已按逾期缴费金额重新核定",
            report.repriced
        );
    }
    Ok(())
}

pub struct StaffAdd {
    pub username: String,
    pub role: String,
    pub display_name: Option<String>,
    pub region: Option<String>,
    pub station: Option<String>,
}

/// The protocol's invariants over everything stored (`yibao check`, and the benchmarks after
/// their load), statistics first: tables written since they were last analyzed (autovacuum off,
/// or a check straight after a load) are analyzed as the server's upkeep would, since without
/// statistics the check's plans read a region's whole index for each payable, minutes instead
/// of a second. That refresh is best effort; the check is what matters.
pub async fn check_invariants(
    storage: &dyn Storage,
) -> Result<yibao_storage::collection::InvariantReport, yibao_storage::StorageError> {
    if let Err(err) = storage.housekeeping().await {
        tracing::warn!(%err, "statistics not refreshed before the check; it may be slow");
    }
    storage.check_invariants().await
}

/// A secret from the environment variable `env`, else the first line of standard input.
pub fn read_secret(env: &str, what: &str) -> anyhow::Result<String> {
    if let Some(p) = crate::cli::env_lookup(env) {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("请输入{what}（输入内容会显示，建议用管道或 {env} 传入）：");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Registers a channel: its secret is sealed with the master key when one is configured.
pub async fn channel_add(
    storage: &dyn Storage,
    master_key: Option<&yibao_server::channel::secrets::MasterKey>,
    id: &str,
    kind: &str,
    regions: &[String],
    rate: i64,
    secret: String,
) -> anyhow::Result<()> {
    channel_add_in_mode(storage, master_key, id, kind, regions, rate, secret, false).await
}

/// Registers a channel in production, or in test mode (接入测试: it serves the sandbox region
/// only, which is made ready first, with the shipped holiday calendars).
#[allow(clippy::too_many_arguments)]
pub async fn channel_add_in_mode(
    storage: &dyn Storage,
    master_key: Option<&yibao_server::channel::secrets::MasterKey>,
    id: &str,
    kind: &str,
    regions: &[String],
    rate: i64,
    secret: String,
    test_mode: bool,
) -> anyhow::Result<()> {
    use yibao_server::services::accounts::{create_channel, NewChannel};
    let new = NewChannel {
        channel_id: id.to_owned(),
        kind: kind.to_owned(),
        regions: regions.to_vec(),
        rate_per_second: rate,
        test_mode,
    };
    create_channel(storage, master_key, &new, secret)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if test_mode {
        let sandbox = yibao_domain::sandbox::sandbox_region();
        for notice in crate::setup_cli::shipped_notices()? {
            storage.put_national_calendar_year(sandbox, &notice).await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn channel_add_command(
    storage: &dyn Storage,
    master_key: Option<&yibao_server::channel::secrets::MasterKey>,
    id: &str,
    kind: &str,
    regions: &[String],
    rate: i64,
    secret: String,
    test_mode: bool,
) -> anyhow::Result<()> {
    if master_key.is_none() {
        eprintln!("警告：未设置 YIBAO_MASTER_KEY，渠道密钥将以明文存储在数据库中");
    }
    channel_add_in_mode(
        storage, master_key, id, kind, regions, rate, secret, test_mode,
    )
    .await?;
    storage
        .append_audit(&yibao_storage::AuditEntry {
            actor: cli_actor(),
            action: "channel.add".into(),
            region: None,
            target: id.to_owned(),
            detail: serde_json::json!({ "kind": kind, "regions": regions, "rate": rate, "test_mode": test_mode }),
        })
        .await?;
    if test_mode {
        println!(
            "已登记测试渠道 {id}（{kind}），只服务接入测试区 {}：固定测试居民在 yibao serve 下次启动时生成，见 docs/integrator-guide.md「接入测试」",
            yibao_domain::sandbox::SANDBOX_REGION
        );
    } else {
        println!("已登记渠道 {id}（{kind}），统筹区：{}", regions.join(","));
    }
    Ok(())
}

pub async fn staff_add_command(storage: &dyn Storage, args: StaffAdd) -> anyhow::Result<()> {
    let role = Role::from_code(&args.role).ok_or_else(|| {
        anyhow::anyhow!("角色应为 admin、station_operator、tax_collector 或 auditor")
    })?;
    let region = args
        .region
        .as_deref()
        .map(RegionCode::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let station = args
        .station
        .as_deref()
        .map(StationCode::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = Password::new(read_secret("YIBAO_STAFF_PASSWORD", "密码")?)?;
    create_staff(
        storage,
        NewStaff {
            temporary_password: false,
            display_name: args.display_name.unwrap_or_else(|| args.username.clone()),
            username: args.username.clone(),
            role,
            region,
            station,
            password,
        },
        &cli_actor(),
    )
    .await?;
    println!("已创建工作人员账号 {}（{}）", args.username, role.code());
    Ok(())
}

#[cfg(test)]
mod progress_tests {
    use super::{progress_line, Progress};
    use std::time::Duration;

    #[test]
    fn the_progress_line_shows_the_share_the_rate_and_the_time_left() {
        let line = |done, total, secs| {
            progress_line(
                "已处理行数",
                Progress { done, total },
                Duration::from_secs(secs),
            )
        };
        // Before a second has passed there is no rate to tell.
        assert_eq!(line(500, Some(30_000), 0), "已处理行数 500 / 30000（1%）");
        assert_eq!(
            line(14_000, Some(30_000), 5),
            "已处理行数 14000 / 30000（46%），每秒 2800，约 6 秒后完成"
        );
        assert_eq!(
            line(30_000, Some(30_000), 10),
            "已处理行数 30000 / 30000（100%），每秒 3000，约 0 秒后完成"
        );
        // Without a total (an assessment counts as it goes): the count and the rate.
        assert_eq!(line(9_000, None, 3), "已处理行数 9000，每秒 3000");
        // Nothing done yet: no rate, no estimate; an empty total is not divided by.
        assert_eq!(line(0, Some(100), 4), "已处理行数 0 / 100（0%），每秒 0");
        assert_eq!(line(0, Some(0), 4), "已处理行数 0 / 0，每秒 0");
    }
}
