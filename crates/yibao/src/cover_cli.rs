//! `yibao cover import|show`: the agency's cover history file, and what the 2025 rules say of one
//! person (docs/rules-2025.md).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use yibao_domain::{FeeYear, IdNumber, RegionCode};
use yibao_roster_file::Limits;
use yibao_server::services::cover::{import_cover_history, read_person_cover};
use yibao_server::Clock;
use yibao_storage::Storage;

use crate::operator::{cli_actor, read_secret, rejection_path};

#[derive(Subcommand)]
pub enum CoverCommand {
    /// Import a cover history file (参保历史: one row per person and benefit year) or a special
    /// situation file (参保特殊情形: exempt groups, moves from employee insurance), CSV or XLSX,
    /// told apart by their headers (docs/rules-2025.md).
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
}

fn region_of(text: &str) -> anyhow::Result<RegionCode> {
    RegionCode::parse(text).map_err(|e| anyhow::anyhow!("统筹区代码“{text}”有误：{e}"))
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
            let region = region_of(&region)?;
            let fee_year = FeeYear::new(fee_year).map_err(|e| anyhow::anyhow!("fee_year：{e}"))?;
            let text = read_secret("YIBAO_ID_NUMBER", "公民身份号码")?;
            let id = IdNumber::parse(&text, today)
                .map_err(|e| anyhow::anyhow!("公民身份号码有误：{e}"))?
                .id_number;
            let policy = storage
                .get_fee_policy(region, fee_year)
                .await?
                .ok_or_else(|| anyhow::anyhow!("统筹区 {region} 没有 {fee_year} 年度的缴费政策"))?;
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
    }
}
