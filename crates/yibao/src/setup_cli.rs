//! Setting up an agency from zero on the command line: `yibao region add|list`,
//! `yibao fee-policy load|list` and `yibao calendar load|show`, through the same services (and
//! checks) as the admin API, audited as the command line's user. Also the State Council's holiday
//! calendars shipped in `data/calendars/` and built into the binary, which `yibao migrate`,
//! `yibao demo` and `yibao region add` load.

use std::path::Path;

use anyhow::Context;
use chrono::Datelike;
use clap::{Args, Subcommand};
use yibao_domain::{CalendarNotice, CalendarNoticeFile, DayKind, FeeYear, RegionCode};
use yibao_server::services::setup::{self, FeePolicyInputBody};
use yibao_storage::Storage;

use crate::operator::cli_actor;

/// The State Council's notices shipped in `data/calendars/`, one per year (2027 not yet: see
/// `data/calendars/README.md`).
pub const SHIPPED_CALENDARS: [(&str, &str); 7] = [
    (
        "2020.toml",
        include_str!("../../../data/calendars/2020.toml"),
    ),
    (
        "2021.toml",
        include_str!("../../../data/calendars/2021.toml"),
    ),
    (
        "2022.toml",
        include_str!("../../../data/calendars/2022.toml"),
    ),
    (
        "2023.toml",
        include_str!("../../../data/calendars/2023.toml"),
    ),
    (
        "2024.toml",
        include_str!("../../../data/calendars/2024.toml"),
    ),
    (
        "2025.toml",
        include_str!("../../../data/calendars/2025.toml"),
    ),
    (
        "2026.toml",
        include_str!("../../../data/calendars/2026.toml"),
    ),
];

/// Largest calendar or fee policy file read (64 KiB; a year's notice is about 2 KiB).
pub const MAX_SETUP_FILE_BYTES: u64 = 64 * 1024;

/// Parses a notice file's text (TOML, `data/calendars/README.md`) and checks it.
pub fn parse_notice(name: &str, text: &str) -> anyhow::Result<CalendarNotice> {
    let file: CalendarNoticeFile = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{name} 不是有效的节假日安排文件：{}", e.message()))?;
    CalendarNotice::from_file(&file).map_err(|e| anyhow::anyhow!("{name}：{e}"))
}

/// The shipped notices, checked.
pub fn shipped_notices() -> anyhow::Result<Vec<CalendarNotice>> {
    SHIPPED_CALENDARS
        .iter()
        .map(|(name, text)| parse_notice(name, text))
        .collect()
}

/// Loads every shipped notice into `region`, or every registered region. Idempotent; a region's own
/// days are kept. Returns (years, regions).
pub async fn load_shipped_calendars(
    storage: &dyn Storage,
    region: Option<RegionCode>,
) -> anyhow::Result<(usize, usize)> {
    let notices = shipped_notices()?;
    let mut regions = 0;
    for notice in &notices {
        regions = setup::load_calendar_notice(storage, notice, region)
            .await?
            .len();
    }
    Ok((notices.len(), regions))
}

fn read_small_file(path: &Path) -> anyhow::Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("无法读取 {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= MAX_SETUP_FILE_BYTES,
        "{} 有 {size} 字节，超过上限 {MAX_SETUP_FILE_BYTES} 字节",
        path.display()
    );
    std::fs::read_to_string(path).with_context(|| format!("无法以 UTF-8 读取 {}", path.display()))
}

fn region_of(text: &str) -> anyhow::Result<RegionCode> {
    RegionCode::parse(text).map_err(|e| anyhow::anyhow!("统筹区代码“{text}”有误：{e}"))
}

async fn audit(
    storage: &dyn Storage,
    action: &str,
    region: Option<RegionCode>,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    Ok(
        yibao_server::services::record_audit(storage, &cli_actor(), action, region, target, detail)
            .await?,
    )
}

#[derive(Subcommand)]
pub enum RegionCommand {
    /// Register a pooling region (统筹区) or rename it; the shipped holiday calendars are loaded into it.
    Add {
        /// 6-digit code, e.g. 320600.
        code: String,
        /// Its name, e.g. 南通市.
        name: String,
    },
    /// Every registered region with its fee years and holiday calendar years.
    List,
}

#[derive(Subcommand)]
pub enum FeePolicyCommand {
    /// Set a region's fee policy for a fee year from a TOML or JSON file (docs/setup.md).
    Load { file: std::path::PathBuf },
    /// A region's fee policies: amounts, collection window, late payment.
    List {
        #[arg(long)]
        region: String,
    },
}

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// Load a State Council holiday notice file (data/calendars/README.md) into every region or one.
    Load(CalendarLoadArgs),
    /// A region's holiday calendar of a year, or say that it has none.
    Show(CalendarShowArgs),
}

#[derive(Args)]
pub struct CalendarLoadArgs {
    file: std::path::PathBuf,
    /// Only this region (default: every registered region).
    #[arg(long)]
    region: Option<String>,
}

#[derive(Args)]
pub struct CalendarShowArgs {
    #[arg(long)]
    year: i32,
    /// Only this region (default: every registered region).
    #[arg(long)]
    region: Option<String>,
}

pub async fn region(storage: &dyn Storage, command: RegionCommand) -> anyhow::Result<()> {
    match command {
        RegionCommand::Add { code, name } => {
            let code = region_of(&code)?;
            let region = setup::put_region(storage, code, &name).await?;
            audit(
                storage,
                "region.put",
                Some(code),
                code.as_str(),
                serde_json::json!({"name": region.name()}),
            )
            .await?;
            let (years, _) = load_shipped_calendars(storage, Some(code)).await?;
            println!(
                "已登记统筹区 {}（{}），并导入 {years} 年国务院节假日安排；下一步：yibao fee-policy load 文件",
                region.name(),
                code
            );
            Ok(())
        }
        RegionCommand::List => {
            let regions = storage.list_regions().await?;
            if regions.is_empty() {
                println!("尚未登记任何统筹区：yibao region add 代码 名称");
            }
            for r in regions {
                let years: Vec<String> = storage
                    .list_fee_policies(r.code())
                    .await?
                    .iter()
                    .map(|p| p.fee_year().to_string())
                    .collect();
                let calendar: Vec<String> = storage
                    .working_calendar(r.code())
                    .await?
                    .years()
                    .map(|y| y.to_string())
                    .collect();
                println!(
                    "{}\t{}\t缴费年度：{}\t节假日日历：{}",
                    r.code(),
                    r.name(),
                    if years.is_empty() {
                        "（无）".into()
                    } else {
                        years.join(",")
                    },
                    if calendar.is_empty() {
                        "（无）".into()
                    } else {
                        calendar.join(",")
                    },
                );
            }
            Ok(())
        }
    }
}

/// A fee policy file: `region` and `fee_year`, then the API's body (docs/setup.md), every key
/// checked: an unknown one is refused by name.
struct FeePolicyFile {
    region: String,
    fee_year: i64,
    policy: FeePolicyInputBody,
}

fn parse_fee_policy_file(name: &str, text: &str, json: bool) -> anyhow::Result<FeePolicyFile> {
    let mut value: serde_json::Value = if json {
        serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!("{name} 不是有效的缴费政策文件（第 {} 行有误）", e.line())
        })?
    } else {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(line) => {
                    anyhow::anyhow!("{name} 不是有效的 TOML 文件（第 {line} 行附近有误）")
                }
                None => anyhow::anyhow!("{name} 不是有效的 TOML 文件"),
            }
        })?;
        serde_json::to_value(table)?
    };
    let object = value
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("{name} 应为一个缴费政策对象"))?;
    let region = match object.remove("region") {
        Some(serde_json::Value::String(region)) => region,
        _ => anyhow::bail!("{name} 缺少统筹区代码 region（文本，如 \"320600\"）"),
    };
    let fee_year = object
        .remove("fee_year")
        .and_then(|y| y.as_i64())
        .ok_or_else(|| anyhow::anyhow!("{name} 缺少缴费年度 fee_year（整数，如 2027）"))?;
    let policy = yibao_server::json::from_value(name, value).map_err(|e| anyhow::anyhow!(e))?;
    Ok(FeePolicyFile {
        region,
        fee_year,
        policy,
    })
}

pub async fn fee_policy(storage: &dyn Storage, command: FeePolicyCommand) -> anyhow::Result<()> {
    match command {
        FeePolicyCommand::Load { file } => {
            let text = read_small_file(&file)?;
            let json = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let parsed = parse_fee_policy_file(&file.display().to_string(), &text, json)?;
            let code = region_of(&parsed.region)?;
            let fee_year =
                FeeYear::new(parsed.fee_year).map_err(|e| anyhow::anyhow!("fee_year：{e}"))?;
            let policy = setup::put_fee_policy(storage, code, fee_year, &parsed.policy).await?;
            audit(
                storage,
                "fee_policy.put",
                Some(code),
                &fee_year.to_string(),
                serde_json::to_value(&policy).unwrap_or_default(),
            )
            .await?;
            println!(
                "已设置统筹区 {code} {fee_year} 年度缴费政策：缴费期 {} 至 {}",
                policy.window().opens(),
                policy.window().closes()
            );
            let warnings = setup::calendar_warnings(
                storage,
                Some(code.as_str()),
                yibao_server::Clock::system().today(),
            )
            .await?;
            for w in warnings
                .iter()
                .filter(|w| w.fee_year == i64::from(fee_year.get()))
            {
                println!("注意：{}", w.message);
            }
            Ok(())
        }
        FeePolicyCommand::List { region } => {
            let code = region_of(&region)?;
            if storage.get_region(code).await?.is_none() {
                return Err(setup::unknown_region(code).into());
            }
            let policies = storage.list_fee_policies(code).await?;
            if policies.is_empty() {
                println!("统筹区 {code} 尚无缴费政策：yibao fee-policy load 文件");
            }
            for p in policies {
                println!(
                    "{} 年度：缴费期 {} 至 {}，年龄基准日 {}，成年年龄 {}，{}",
                    p.fee_year(),
                    p.window().opens(),
                    p.window().closes(),
                    p.age_reference_date(),
                    p.adult_age(),
                    if p.late_payment_allowed() {
                        "允许补缴"
                    } else {
                        "不允许补缴"
                    }
                );
                for (category, amount) in p.amounts() {
                    let parts: Vec<String> = amount
                        .components()
                        .map(|(c, f)| format!("{} {}", c.name_zh(), f.to_yuan_string()))
                        .collect();
                    println!(
                        "  {}：{} 元（{}）",
                        category.name_zh(),
                        amount.total().to_yuan_string(),
                        parts.join("，")
                    );
                }
                for line in p.cover_rules().summary_zh(p.fee_year()) {
                    println!("  {line}");
                }
            }
            Ok(())
        }
    }
}

pub async fn calendar(storage: &dyn Storage, command: CalendarCommand) -> anyhow::Result<()> {
    match command {
        CalendarCommand::Load(args) => {
            let text = read_small_file(&args.file)?;
            let notice = parse_notice(&args.file.display().to_string(), &text)?;
            let region = args.region.as_deref().map(region_of).transpose()?;
            let loaded = setup::load_calendar_notice(storage, &notice, region).await?;
            for code in &loaded {
                audit(
                    storage,
                    "calendar.load",
                    Some(*code),
                    &notice.calendar.year().to_string(),
                    serde_json::json!({"title": notice.title, "published_on": notice.published_on,
                        "days": notice.calendar.days().count()}),
                )
                .await?;
            }
            println!(
                "已导入《{}》（{} 发布）：{} 个统筹区",
                notice.title,
                notice.published_on,
                loaded.len()
            );
            Ok(())
        }
        CalendarCommand::Show(args) => {
            let regions = match args.region.as_deref().map(region_of).transpose()? {
                Some(code) => {
                    let Some(region) = storage.get_region(code).await? else {
                        return Err(setup::unknown_region(code).into());
                    };
                    vec![region]
                }
                None => storage.list_regions().await?,
            };
            let mut missing = 0;
            for region in regions {
                let label = format!("{}（{}）", region.name(), region.code());
                match storage
                    .calendar_year_record(region.code(), args.year)
                    .await?
                {
                    None => {
                        missing += 1;
                        println!(
                            "{label}：没有 {} 年的节假日安排，该年的退费到期日只按周末计算。国务院办公厅通知发布后请用 yibao calendar load 文件 导入。",
                            args.year
                        );
                    }
                    Some(record) => {
                        let source = match (&record.title, record.published_on) {
                            (Some(title), Some(day)) => format!("《{title}》（{day} 发布）"),
                            (Some(title), None) => format!("《{title}》"),
                            _ => "本统筹区自行配置".to_owned(),
                        };
                        println!("{label} {} 年节假日安排，来源：{source}", args.year);
                        for (kind, what) in [
                            (DayKind::Holiday, "放假（工作日休息）"),
                            (DayKind::Working, "调休上班（周末上班）"),
                        ] {
                            let days: Vec<String> = record
                                .days
                                .iter()
                                .filter(|d| d.kind == kind)
                                .map(|d| {
                                    let own = if d.origin == "region" { "*" } else { "" };
                                    format!("{}{}{own}", d.day.format("%m-%d"), weekday_zh(d.day))
                                })
                                .collect();
                            println!(
                                "  {what}：{}",
                                if days.is_empty() {
                                    "（无）".into()
                                } else {
                                    days.join(" ")
                                }
                            );
                        }
                        if record.days.iter().any(|d| d.origin == "region") {
                            println!("  （* 为本统筹区自设）");
                        }
                    }
                }
            }
            anyhow::ensure!(
                missing == 0,
                "{missing} 个统筹区缺少 {} 年的节假日安排",
                args.year
            );
            Ok(())
        }
    }
}

fn weekday_zh(day: chrono::NaiveDate) -> &'static str {
    ["(一)", "(二)", "(三)", "(四)", "(五)", "(六)", "(日)"]
        [day.weekday().num_days_from_monday() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use yibao_domain::WorkingCalendar;

    fn d(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_shipped_notice_is_valid_and_of_its_year() {
        let notices = shipped_notices().unwrap();
        for ((name, _), notice) in SHIPPED_CALENDARS.iter().zip(&notices) {
            assert_eq!(format!("{}.toml", notice.calendar.year()), *name);
            assert!(notice.published_on.year() < notice.calendar.year());
            assert!(notice.title.starts_with("国务院办公厅关于"));
        }
        let years: Vec<i32> = notices.iter().map(|n| n.calendar.year()).collect();
        assert_eq!(years, (2020..=2026).collect::<Vec<_>>());
    }

    #[test]
    fn shipped_calendars_give_the_published_working_days() {
        let cal = WorkingCalendar::new(shipped_notices().unwrap().into_iter().map(|n| n.calendar));
        // Spring Festival 2024: Friday 9 February + 1 working day is Sunday 18 February (调休).
        assert_eq!(
            cal.add_working_days(d("2024-02-09"), 1).unwrap().date,
            d("2024-02-18")
        );
        // National Day 2025: Tuesday 30 September + 1 is Thursday 9 October.
        assert_eq!(
            cal.add_working_days(d("2025-09-30"), 1).unwrap().date,
            d("2025-10-09")
        );
        // 2027 is not shipped: two working days after 30 December 2026 is flagged.
        let due = cal.add_working_days(d("2026-12-30"), 2).unwrap();
        assert_eq!(due.years_without_calendar, vec![2027]);
    }
}
