//! Settlement from the shell: auto-debit agreements and runs, statement reconciliation. The same
//! services as the admin API; every answer is one JSON object on standard output.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use yibao_server::services::{debit, reconciliation};
use yibao_server::Clock;
use yibao_statement_file::StatementFormat;
use yibao_storage::Storage;

/// Largest file read from disk by these commands (a statement of two million lines with room).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Subcommand)]
pub enum AgreementCommand {
    /// Sign an auto-debit agreement (委托扣款协议) for a payer alone or a family.
    Sign(AgreementSignArgs),
    /// Cancel (解约) an agreement from today. A number is the bank's, unique within its region
    /// only: where several regions have it, name the region.
    Cancel {
        agreement_no: String,
        #[arg(long)]
        region: Option<String>,
    },
    /// List agreements of a region, or of one person.
    List {
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        id_number: Option<String>,
    },
}

#[derive(Args)]
pub struct AgreementSignArgs {
    #[arg(long)]
    pub agreement_no: String,
    #[arg(long)]
    pub region: String,
    /// The bank: a channel of kind auto_debit.
    #[arg(long)]
    pub bank: String,
    #[arg(long)]
    pub payer: String,
    #[arg(long)]
    pub payer_name: String,
    /// Whole or masked; only the first and last four digits are kept.
    #[arg(long)]
    pub account: String,
    /// ID numbers debited under the agreement, comma-separated; the payer alone when absent.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<String>,
}

#[derive(Subcommand)]
pub enum DebitCommand {
    /// Create the run of a bank, region and fee year for a date, locking its payables.
    Create {
        #[arg(long)]
        bank: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        fee_year: i32,
        /// YYYY-MM-DD, today or later.
        #[arg(long)]
        date: NaiveDate,
    },
    /// Write a run's request file for the bank.
    RequestFile {
        run_no: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Import the bank's result file for a run.
    Result { run_no: String, file: PathBuf },
}

fn read_bounded(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)?.len();
    anyhow::ensure!(
        size <= MAX_FILE_BYTES,
        "{} is {size} bytes; at most {MAX_FILE_BYTES}",
        path.display()
    );
    Ok(std::fs::read(path)?)
}

pub async fn agreement(storage: &dyn Storage, command: AgreementCommand) -> anyhow::Result<()> {
    let clock = Clock::system();
    let value = match command {
        AgreementCommand::Sign(a) => serde_json::to_value(
            debit::sign_agreement(
                storage,
                &clock,
                debit::AgreementInput {
                    agreement_no: &a.agreement_no,
                    region: &a.region,
                    channel_id: &a.bank,
                    payer_id_number: &a.payer,
                    payer_name: &a.payer_name,
                    account: &a.account,
                    members: &a.members,
                },
            )
            .await?,
        )?,
        AgreementCommand::Cancel {
            agreement_no,
            region,
        } => {
            let found =
                debit::find_agreement(storage, &None, region.as_deref(), &agreement_no).await?;
            serde_json::to_value(
                debit::cancel_found_agreement(storage, &found, clock.today()).await?,
            )?
        }
        AgreementCommand::List { region, id_number } => serde_json::to_value(
            storage
                .agreements(region.as_deref(), id_number.as_deref(), 100_000)
                .await?,
        )?,
    };
    println!("{value}");
    Ok(())
}

pub async fn debit_run(storage: &dyn Storage, command: DebitCommand) -> anyhow::Result<()> {
    let clock = Clock::system();
    match command {
        DebitCommand::Create {
            bank,
            region,
            fee_year,
            date,
        } => {
            let created =
                debit::create_run_leaving_out(storage, &clock, &bank, &region, fee_year, date)
                    .await?;
            println!("{}", serde_json::to_value(created)?);
        }
        DebitCommand::RequestFile { run_no, out } => {
            let bytes = debit::request_file(storage, &run_no).await?;
            std::fs::write(&out, bytes)?;
            println!("{}", serde_json::json!({"run_no": run_no, "file": out}));
        }
        DebitCommand::Result { run_no, file } => {
            let bytes = read_bounded(&file)?;
            let summary = debit::import_result(storage, &clock, &run_no, &bytes).await?;
            println!("{}", serde_json::to_value(summary)?);
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// The channel whose statement it is.
    #[arg(long)]
    pub channel: String,
    /// The statement's day, YYYY-MM-DD.
    #[arg(long)]
    pub date: NaiveDate,
    /// protocol (the §7 CSV), wechat (trade bill) or alipay (the bill zip).
    #[arg(long, default_value = "protocol")]
    pub format: String,
    pub file: PathBuf,
}

pub async fn reconcile(storage: &dyn Storage, args: ReconcileArgs) -> anyhow::Result<()> {
    let format: StatementFormat = args
        .format
        .parse()
        .map_err(|_| anyhow::anyhow!("--format is protocol, wechat or alipay"))?;
    let bytes = read_bounded(&args.file)?;
    let summary = reconciliation::reconcile(
        storage,
        &Clock::system(),
        reconciliation::StatementUpload {
            channel_id: &args.channel,
            day: args.date,
            format,
            bytes: &bytes,
        },
    )
    .await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
