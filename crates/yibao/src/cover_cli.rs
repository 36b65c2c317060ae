//! `yibao cover import|show`: the agency's cover history file, and what the 2025 rules say of one
//! person (docs/rules-2025.md).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use yibao_domain::{FeePolicy, FeeYear, IdNumber, RegionCode};
use yibao_roster_file::Limits;
use yibao_server::services::cover::{
    create_back_payments, import_cover_history, read_person_cover,
};
use yibao_server::services::reminders::queue_due_reminders;
use yibao_server::Clock;
use yibao_storage::Storage;

use crate::operator::{cli_actor, read_secret, rejection_path};

#[derive(Subcommand)]
pub enum CoverCommand {
    /// Import a cover history file (参保历史: one row per person and benefit year), a special
    /// situation file (参保特殊情形: exempt groups, moves from employee insurance), a claims file
    /// (报销情况: reimbursed or not, reward used or not, per year) or a family-account binding file
    /// (家庭共济绑定: which employee's personal account may pay for which relative, and from when
    /// to when), CSV or XLSX, told apart by their headers (docs/rules-2025.md).
    Import {
        #[arg(long)]
        region: String,
        file: PathBuf,
    },
    /// A person's cover history, when cover would start if they paid today, what buying back gap
    /// years would do, and their critical-illness reward. The ID number is read from
    /// YIBAO_ID_NUMBER or standard input, never from the command line.
    Show {
        #[arg(long)]
        region: String,
        #[arg(long)]
        fee_year: i64,
    },
    /// Create a person's back-payments (补缴修复) for a benefit year: one payable per gap year
    /// bought back, at the year's individual standard without subsidy, payable through every
    /// channel. Without --years, every year that still shortens the wait. The ID number is read
    /// from YIBAO_ID_NUMBER or standard input.
    BuyBack {
        #[arg(long)]
        region: String,
        #[arg(long)]
        fee_year: i64,
        /// Gap years to buy back, e.g. 2026,2025.
        #[arg(long, value_delimiter = ',')]
        years: Vec<u16>,
    },
    /// Queue today's payment reminders (缴费提醒) of every region and fee year in its reminder
    /// days (the citizen site's background round does the same every hour), and show each
    /// year's reminders by outcome. The citizen site's SMS sender sends them.
    Remind,
}

fn region_of(text: &str) -> anyhow::Result<RegionCode> {
    RegionCode::parse(text).map_err(|e| anyhow::anyhow!("统筹区代码“{text}”有误：{e}"))
}

/// The person (ID number from YIBAO_ID_NUMBER or standard input) and the region's fee policy
/// for the year a command names.
async fn person_and_policy(
    storage: &dyn Storage,
    region: &str,
    fee_year: i64,
    today: chrono::NaiveDate,
) -> anyhow::Result<(IdNumber, FeePolicy)> {
    let region = region_of(region)?;
    let fee_year = FeeYear::new(fee_year).map_err(|e| anyhow::anyhow!("fee_year：{e}"))?;
    let text = read_secret("YIBAO_ID_NUMBER", "公民身份号码")?;
    let id = IdNumber::parse(&text, today)
        .map_err(|e| anyhow::anyhow!("公民身份号码有误：{e}"))?
        .id_number;
    let policy = storage
        .get_fee_policy(region, fee_year)
        .await?
        .ok_or_else(|| anyhow::anyhow!("统筹区 {region} 没有 {fee_year} 年度的缴费政策"))?;
    Ok((id, policy))
}

pub async fn cover(storage: &dyn Storage, command: CoverCommand) -> anyhow::Result<()> {
    let today = Clock::system().today();
    match command {
        CoverCommand::Import { region, file } => {
            let region = region_of(&region)?;
            let report = import_cover_history(
                storage,
                &cli_actor(),
                region,
                &file,
                today,
                Limits::default(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!(
                "读取 {} 行：写入 {} 条，未通过 {}",
                report.rows_read, report.written, report.rejected
            );
            if report.rejected > 0 {
                let path = rejection_path(&file);
                std::fs::write(&path, report.rejection_file())
                    .with_context(|| format!("无法写入未通过明细 {}", path.display()))?;
                println!(
                    "未通过的行（原内容及原因）已写入：{}；改正后可直接再次导入该文件",
                    path.display()
                );
            }
            Ok(())
        }
        CoverCommand::Show { region, fee_year } => {
            let (id, policy) = person_and_policy(storage, &region, fee_year, today).await?;
            let (region, fee_year) = (policy.region(), policy.fee_year());
            let cover = read_person_cover(storage, &policy, &id, today)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            yibao_server::services::record_audit(
                storage,
                &cli_actor(),
                "cover.read",
                Some(region),
                &id.masked(),
                serde_json::json!({ "fee_year": fee_year.get() }),
            )
            .await?;
            println!("{}（统筹区 {region}，{fee_year} 年度）", id.masked());
            println!("参保历史：");
            let entries = cover.history.entries();
            for (year, c, bought) in &entries {
                let bought = if *bought { "（已补缴修复）" } else { "" };
                println!("  {year}：{}{bought}", c.name_zh());
            }
            if entries.is_empty() {
                println!("  无记录（首次参保）");
            }
            for line in cover.situations_zh() {
                println!("特殊情形：{line}");
            }
            match &cover.start {
                Ok(start) => println!("今天（{today}）缴费：{}", start.summary_zh()),
                Err(refusal) => println!("今天（{today}）缴费：{refusal}"),
            }
            let offer = &cover.offer;
            if !offer.gap_years.is_empty() {
                let years: Vec<String> = offer.effective_years.iter().map(u16::to_string).collect();
                println!(
                    "补缴修复：断保 {} 年，可补缴 {} 年（{}），等待期可由 {} 个月缩短为 {} 个月；补缴年度本身不享受待遇",
                    offer.gap_years.len(),
                    offer.effective_years.len(),
                    if years.is_empty() { "无".to_owned() } else { years.join("、") },
                    offer.wait_now.total,
                    offer.wait_after.total
                );
            }
            println!("{}", cover.reward.summary_zh());
            Ok(())
        }
        CoverCommand::Remind => {
            let now = Clock::system().now().timestamp();
            let rounds = queue_due_reminders(storage, today, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if rounds.is_empty() {
                println!("今天（{today}）没有处于缴费提醒期的统筹区和年度");
            }
            for round in &rounds {
                let counts = storage
                    .citizen_accounts()
                    .reminder_counts(&round.region, i32::from(round.fee_year))
                    .await?;
                println!(
                    "统筹区 {} {} 年度：本次新排队提醒 {} 条{}；累计已发送 {}，发送失败 {}，因已缴费取消 {}，待发送 {}",
                    round.region,
                    round.fee_year,
                    round.queued,
                    if round.no_mobile > 0 {
                        format!("（{} 人手机号码有误，未提醒）", round.no_mobile)
                    } else {
                        String::new()
                    },
                    counts.sent,
                    counts.failed,
                    counts.cancelled,
                    counts.queued
                );
            }
            Ok(())
        }
        CoverCommand::BuyBack {
            region,
            fee_year,
            years,
        } => {
            let (id, policy) = person_and_policy(storage, &region, fee_year, today).await?;
            let (region, fee_year) = (policy.region(), policy.fee_year());
            let made = create_back_payments(storage, &policy, &id, &years, &cli_actor(), today)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}（统筹区 {region}，{fee_year} 年度）：新建补缴 {} 笔",
                id.masked(),
                made.created.len()
            );
            for open in &made.open {
                println!(
                    "  补缴{}年度：{}，{}（应缴费信息 {}）",
                    open.buys_back_year,
                    yibao_domain::Fen::new(open.amount_fen).unwrap_or(yibao_domain::Fen::ZERO),
                    if open.status == "locked" {
                        "缴费中"
                    } else {
                        "待缴"
                    },
                    open.payable_id
                );
            }
            println!(
                "全部缴清后（须在缴纳 {fee_year} 年度保费之前或同时），等待期由 {} 个月缩短为 {} 个月；补缴年度本身不享受待遇",
                made.wait_now, made.wait_after
            );
            Ok(())
        }
    }
}
