//! The `yibao` command, per the operator interface (`shared/spec/operator-interface.md`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use yibao_domain::IdNumber;
use yibao_server::public::ParsedId;
use yibao_server::{AppState, Clock, ServerSettings};
use yibao_storage::Storage;

use crate::config::{Config, ConsoleServing, Flags};
use crate::demo;
use crate::storage::open_storage;

#[derive(Parser)]
#[command(
    name = "yibao",
    version,
    about = "城乡居民基本医疗保险费征缴平台 yibao"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Migrations run at start.
    Serve(ServerArgs),
    /// Run the database migrations, load the shipped holiday calendars into every region, and exit.
    Migrate(DatabaseArgs),
    /// Zero-setup showcase: a local SQLite database with demo data, served.
    Demo(DemoArgs),
    /// Work with resident ID numbers.
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// Import files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Assess (核定) a region's fee year: create everyone's payables; running it again creates nothing twice.
    Assess(AssessArgs),
    /// Staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Play several channels against a running server through the protocol (the demo's by default).
    Simulate(SimulateArgs),
    /// Check the protocol's invariants against a database; exit 1 when any is broken.
    Check(DatabaseArgs),
    /// Copy a SQLite database to a new file while the server keeps serving (VACUUM INTO), then
    /// check the copy. PostgreSQL: pg_dump or base backups, see docs/operations.md.
    Backup(BackupArgs),
    /// Collection channels (banks, WeChat Pay, Alipay …).
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Auto-debit agreements (委托扣款协议).
    Agreement {
        #[command(subcommand)]
        command: crate::settlement_cli::AgreementCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Bank auto-debit runs: create, write the request file, import the result.
    Debit {
        #[command(subcommand)]
        command: crate::settlement_cli::DebitCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Reconcile (对账) a channel's statement of a day: protocol CSV, WeChat bill or Alipay zip.
    Reconcile {
        #[command(flatten)]
        args: crate::settlement_cli::ReconcileArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Pooling regions (统筹区): add, list.
    Region {
        #[command(subcommand)]
        command: crate::setup_cli::RegionCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Fee policies (缴费政策): load from a file, list.
    FeePolicy {
        #[command(subcommand)]
        command: crate::setup_cli::FeePolicyCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// The 2025 rules (docs/rules-2025.md): import a cover history file (参保历史), show what the
    /// rules say of one person.
    Cover {
        #[command(subcommand)]
        command: crate::cover_cli::CoverCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Holiday calendars (节假日安排): load a State Council notice file, show a year.
    Calendar {
        #[command(subcommand)]
        command: crate::setup_cli::CalendarCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Gone: the benchmarks, the load generator and the soak are `yibao-lab`'s. Kept hidden to say
    /// where they went instead of "unrecognized subcommand".
    #[command(hide = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        _args: Vec<String>,
    },
}

#[derive(Args)]
struct SimulateArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    base_url: String,
    /// A channel as ID:SECRET (repeat for several); default: the demo's channels.
    #[arg(long = "channel", value_name = "ID:SECRET")]
    channels: Vec<String>,
    #[arg(long, default_value_t = 300)]
    operations: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value_t = 2020)]
    seed: u64,
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Register a channel; the secret comes from standard input or YIBAO_CHANNEL_SECRET, never argv.
    Add(ChannelAddArgs),
    /// List every channel: kind, regions, rate, enabled (never a secret).
    List(DatabaseArgs),
    /// Disable a channel: its requests are refused until it is enabled again.
    Disable(crate::accounts_cli::ChannelIdArgs),
    /// Enable a disabled channel.
    Enable(crate::accounts_cli::ChannelIdArgs),
    /// Give a channel a new secret (standard input or YIBAO_CHANNEL_SECRET); the old one is still
    /// accepted for --grace-hours.
    RotateSecret(crate::accounts_cli::RotateSecretArgs),
}

#[derive(Args)]
struct ChannelAddArgs {
    /// The channel id it signs requests with (Yibao-Channel).
    id: String,
    /// bank_counter, atm, pos, mobile_banking, online_banking, wechat, alipay, unionpay, gov_app,
    /// kiosk, village_agent or auto_debit.
    #[arg(long)]
    kind: String,
    /// Pooling regions it collects for, comma separated.
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// Requests per second allowed (bursts up to one second's worth).
    #[arg(long, default_value_t = 200)]
    rate: i64,
    /// A test channel (接入测试): serves only the sandbox region 119900 and its test residents;
    /// give no --regions.
    #[arg(long)]
    test: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import a roster (花名册): .csv (UTF-8, with or without BOM, or GB18030, which includes GBK) or .xlsx.
    Roster(RosterArgs),
}

#[derive(Args)]
struct RosterArgs {
    file: std::path::PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Enrol in this fee year instead of each region's earliest open one.
    #[arg(long)]
    fee_year: Option<i64>,
}

#[derive(Args)]
struct AssessArgs {
    /// 6-digit code of the pooling region.
    #[arg(long)]
    region: String,
    #[arg(long)]
    fee_year: i64,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create a staff account; the password comes from standard input or YIBAO_STAFF_PASSWORD, never argv.
    Add(StaffAddArgs),
    /// List every staff account: role, scope, disabled or not.
    List(DatabaseArgs),
    /// Disable an account and end its sessions.
    Disable(crate::accounts_cli::UsernameArgs),
    /// Enable a disabled account.
    Enable(crate::accounts_cli::UsernameArgs),
    /// Set a new password (standard input or YIBAO_STAFF_PASSWORD) and end the account's sessions.
    ResetPassword(crate::accounts_cli::UsernameArgs),
}

#[derive(Args)]
struct StaffAddArgs {
    username: String,
    /// admin, station_operator, tax_collector or auditor.
    #[arg(long)]
    role: String,
    #[arg(long)]
    display_name: Option<String>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    station: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand)]
enum IdCommand {
    /// Check an ID number and print what it encodes as JSON (exit 1 when invalid).
    Parse {
        /// 18 characters, 15-digit legacy, or 17 digits typed without the final X.
        input: String,
    },
}

#[derive(Args)]
pub struct DatabaseArgs {
    /// Configuration file (TOML); see yibao.example.toml. Also YIBAO_CONFIG.
    // Global, so that `yibao agreement sign … --database-url URL` works after a subcommand too.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<std::path::PathBuf>,
    /// sqlite://PATH or postgres://… Also YIBAO_DATABASE_URL, which is better for a URL with a password.
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on, e.g. 127.0.0.1:8080. Also YIBAO_LISTEN.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Args)]
struct BackupArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The backup file to write; it must not exist yet.
    #[arg(long, value_name = "FILE")]
    to: std::path::PathBuf,
}

#[derive(Args)]
struct DemoArgs {
    /// Where the demo keeps its data (default sqlite://yibao.db in the current directory, the
    /// same default as every other command; also YIBAO_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080; 127.0.0.1:0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Load the demo data and exit without serving.
    #[arg(long)]
    load_only: bool,
    /// After starting, play this many channel operations against the demo (0: none), then check
    /// the invariants and keep serving.
    #[arg(long, default_value_t = 0)]
    simulate: usize,
}

/// Runs the command line; the process exit code is what it returns.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // Pure and synchronous: no runtime, no logging, exactly one JSON object on stdout.
        Command::Id {
            command: IdCommand::Parse { input },
        } => id_parse(&input),
        command => run_to_exit_code(run(command)),
    }
}

/// Runs a command's future on a multi-threaded runtime: success, or the error (with its causes)
/// on stderr and a failing exit code. Shared with `yibao-lab`.
pub fn run_to_exit_code(
    command: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("错误：无法启动运行时：{err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("错误：{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn id_parse(input: &str) -> ExitCode {
    let today = Clock::system().today();
    match IdNumber::parse(input, today) {
        Ok(parsed) => {
            print_json(&ParsedId::from_parsed(parsed));
            ExitCode::SUCCESS
        }
        Err(err) => {
            print_json(&serde_json::json!({
                "code": yibao_domain::IdNumberError::CODE,
                "message": err.to_string(),
            }));
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("错误：{err}"),
    }
}

pub(crate) fn env_lookup(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn init_logging(filter: &str) {
    init_logging_as(filter, crate::config::LogFormat::Text);
}

/// Logs to standard error, as text or one JSON object a line (`log_format`).
fn init_logging_as(filter: &str, format: crate::config::LogFormat) {
    let _ =
        tracing::subscriber::set_global_default(log_subscriber(filter, format, std::io::stderr));
}

/// The log subscriber: `filter` (EnvFilter syntax), text or one JSON object a line, written to
/// `writer`. A request's lines carry its id: in text the `request{request_id=…}` prefix, in JSON
/// the `span` object (and `spans`).
pub fn log_subscriber<W>(
    filter: &str,
    format: crate::config::LogFormat,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(crate::config::DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        crate::config::LogFormat::Text => Box::new(
            builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .finish(),
        ),
        crate::config::LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = Config::load(
                &Flags {
                    config: args.database.config,
                    database_url: args.database.database_url,
                    listen: args.listen,
                },
                &env_lookup,
            )?;
            init_logging_as(&config.log, config.log_format);
            let storage = connect_serving(&config).await?;
            serve(&config, storage, None).await
        }
        Command::Bench { .. } => anyhow::bail!(
            "yibao bench 已移至 yibao-lab：性能测试、负载生成和长时运行测试请用 yibao-lab\
             （如 yibao-lab payments、yibao-lab load、yibao-lab soak），见 README 的 yibao-lab 命令表"
        ),
        Command::Migrate(args) => {
            let config = database_config(args)?;
            let storage = connect(&config).await?;
            let (years, regions) =
                crate::setup_cli::load_shipped_calendars(storage.as_ref(), None).await?;
            println!("数据库迁移完成：{}", config.database_url);
            println!("已导入 {years} 年国务院节假日安排（{regions} 个统筹区）");
            Ok(())
        }
        Command::Demo(args) => {
            let mut config = Config::load(
                &Flags {
                    config: None,
                    database_url: args.database_url,
                    listen: args.listen,
                },
                &env_lookup,
            )?;
            init_logging_as(&config.log, config.log_format);
            // The demo sends no text message: they go to its mailbox page.
            config.demo_mailbox = config.sms_gateway_url.is_none();
            let storage = connect(&config).await?;
            let summary = demo::load(storage.as_ref()).await?;
            println!(
                "演示数据已就绪（{}）：{} 个统筹区，{} 项缴费政策，{} 年节假日日历",
                config.database_url, summary.regions, summary.fee_policies, summary.calendar_years
            );
            let people = demo::load_people(storage.as_ref(), Clock::system().today()).await?;
            if let Some(import) = &people.import {
                let s = &import.summary;
                println!(
                    "演示花名册：{} 行，新参保 {}，未通过 {}（职工医保、居住证未满三个月等）；本次新核定 {} 条应缴费信息",
                    s.rows_read, s.enrolled, s.rejected, people.payables_created
                );
            }
            if args.load_only {
                return Ok(());
            }
            let simulate = args.simulate;
            let check_storage = storage.clone();
            let after_start = move |base: String| {
                tokio::spawn(async move {
                    if simulate == 0 {
                        return;
                    }
                    let plan = crate::simulate::SimulationPlan {
                        base_url: base,
                        channels: demo::DEMO_CHANNELS
                            .iter()
                            .map(|(id, _, secret, _)| (id.to_string(), secret.to_string()))
                            .collect(),
                        residents: demo::demo_residents(Clock::system().today()),
                        operations: simulate.min(crate::simulate::MAX_OPERATIONS),
                        concurrency: 8,
                        seed: 2020,
                    };
                    match crate::simulate::run(plan).await {
                        Ok(tally) => {
                            println!("模拟渠道交易完成 simulation done: {:?}", tally.counts)
                        }
                        Err(err) => println!("模拟出错 simulation failed: {err:#}"),
                    }
                    match check_storage.check_invariants().await {
                        Ok(report) if report.holds() => println!(
                            "不变量全部成立 invariants hold: {} payments, {} paid payables, {} receipts",
                            report.payments_checked, report.payables_paid, report.receipts
                        ),
                        Ok(report) => println!("不变量被破坏 INVARIANTS BROKEN: {report:?}"),
                        Err(err) => println!("检查失败 check failed: {err}"),
                    }
                });
            };
            serve_then(&config, storage, Some(print_demo_urls), after_start).await
        }
        Command::Id { .. } => Ok(()),
        Command::Import {
            command: ImportCommand::Roster(args),
        } => {
            let config = database_config(args.database)?;
            let storage = connect_existing(&config).await?;
            crate::operator::import_roster_command(storage.as_ref(), &args.file, args.fee_year)
                .await
        }
        Command::Assess(args) => {
            let config = database_config(args.database)?;
            let storage = connect_existing(&config).await?;
            crate::operator::assess_command(storage.as_ref(), &args.region, args.fee_year).await
        }
        Command::Simulate(args) => {
            init_logging(&env_lookup("YIBAO_LOG").unwrap_or_else(|| "warn".into()));
            let channels = if args.channels.is_empty() {
                demo::DEMO_CHANNELS
                    .iter()
                    .map(|(id, _, secret, _)| (id.to_string(), secret.to_string()))
                    .collect()
            } else {
                args.channels
                    .iter()
                    .map(|c| c.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow::anyhow!("--channel 应为 ID:SECRET"))?
            };
            let tally = crate::simulate::run(crate::simulate::SimulationPlan {
                base_url: args.base_url,
                channels,
                residents: demo::demo_residents(Clock::system().today()),
                operations: args.operations,
                concurrency: args.concurrency,
                seed: args.seed,
            })
            .await?;
            for (what, n) in &tally.counts {
                println!("{what}: {n}");
            }
            Ok(())
        }
        Command::Backup(args) => {
            let config = database_config(args.database)?;
            let report = crate::backup::backup(&config.database_url, &args.to).await?;
            println!(
                "备份完成：{}（{} 字节，{:.1} 秒）",
                report.file.display(),
                report.bytes,
                report.seconds
            );
            Ok(())
        }
        Command::Check(args) => {
            let config = database_config(args)?;
            let storage = connect_existing(&config).await?;
            let report = crate::operator::check_invariants(storage.as_ref()).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.holds(), "不变量被破坏（见上）");
            anyhow::ensure!(
                !storage.list_regions().await?.is_empty(),
                "数据库 {} 中没有任何统筹区，没有可检查的数据：是否指定错了数据库？",
                config.database_url
            );
            Ok(())
        }
        Command::Channel {
            command: ChannelCommand::Add(args),
        } => {
            let config = database_config(args.database)?;
            let storage = connect_existing(&config).await?;
            let secret = crate::operator::read_secret("YIBAO_CHANNEL_SECRET", "渠道密钥")?;
            crate::operator::channel_add_command(
                storage.as_ref(),
                config.master_key.as_ref(),
                &args.id,
                &args.kind,
                &args.regions,
                args.rate,
                secret,
                args.test,
            )
            .await
        }
        Command::Channel {
            command: ChannelCommand::List(database),
        } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::accounts_cli::channel_list(storage.as_ref()).await
        }
        Command::Channel {
            command: ChannelCommand::Disable(args),
        } => {
            let storage = connect_existing(&database_config(args.database)?).await?;
            crate::accounts_cli::channel_enable(storage.as_ref(), &args.id, false).await
        }
        Command::Channel {
            command: ChannelCommand::Enable(args),
        } => {
            let storage = connect_existing(&database_config(args.database)?).await?;
            crate::accounts_cli::channel_enable(storage.as_ref(), &args.id, true).await
        }
        Command::Channel {
            command: ChannelCommand::RotateSecret(args),
        } => {
            let config = database_config(args.database)?;
            let storage = connect_existing(&config).await?;
            crate::accounts_cli::channel_rotate_secret(
                storage.as_ref(),
                config.master_key.as_ref(),
                &args.id,
                args.grace_hours,
            )
            .await
        }
        Command::Staff {
            command: StaffCommand::List(database),
        } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::accounts_cli::staff_list(storage.as_ref()).await
        }
        Command::Staff {
            command: StaffCommand::Disable(args),
        } => {
            let storage = connect_existing(&database_config(args.database)?).await?;
            crate::accounts_cli::staff_disable(storage.as_ref(), &args.username, true).await
        }
        Command::Staff {
            command: StaffCommand::Enable(args),
        } => {
            let storage = connect_existing(&database_config(args.database)?).await?;
            crate::accounts_cli::staff_disable(storage.as_ref(), &args.username, false).await
        }
        Command::Staff {
            command: StaffCommand::ResetPassword(args),
        } => {
            let storage = connect_existing(&database_config(args.database)?).await?;
            crate::accounts_cli::staff_reset_password(storage.as_ref(), &args.username).await
        }
        Command::Agreement { command, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::settlement_cli::agreement(storage.as_ref(), command).await
        }
        Command::Debit { command, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::settlement_cli::debit_run(storage.as_ref(), command).await
        }
        Command::Region { command, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::setup_cli::region(storage.as_ref(), command).await
        }
        Command::FeePolicy { command, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::setup_cli::fee_policy(storage.as_ref(), command).await
        }
        Command::Calendar { command, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::setup_cli::calendar(storage.as_ref(), command).await
        }
        Command::Cover { command, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::cover_cli::cover(storage.as_ref(), command).await
        }
        Command::Reconcile { args, database } => {
            let storage = connect_existing(&database_config(database)?).await?;
            crate::settlement_cli::reconcile(storage.as_ref(), args).await
        }
        Command::Staff {
            command: StaffCommand::Add(args),
        } => {
            let config = database_config(args.database)?;
            let storage = connect_existing(&config).await?;
            crate::operator::staff_add_command(
                storage.as_ref(),
                crate::operator::StaffAdd {
                    username: args.username,
                    role: args.role,
                    display_name: args.display_name,
                    region: args.region,
                    station: args.station,
                },
            )
            .await
        }
    }
}

/// Configuration for the operator commands: quiet logs (warnings only) unless YIBAO_LOG says otherwise.
pub fn database_config(args: DatabaseArgs) -> anyhow::Result<Config> {
    let config = Config::load(
        &Flags {
            config: args.config,
            database_url: args.database_url,
            listen: None,
        },
        &env_lookup,
    )?;
    init_logging(&env_lookup("YIBAO_LOG").unwrap_or_else(|| "warn".into()));
    Ok(config)
}

/// Connects for a command that works on data already there: a SQLite file that does not exist is
/// refused instead of silently created empty (a mistyped path, or the wrong directory).
async fn connect_existing(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    if let Some(file) = config.database_url.sqlite_file() {
        anyhow::ensure!(
            file.exists(),
            "数据库文件 {} 不存在（当前目录 {}）。新建数据库请先运行 yibao migrate（或 yibao demo 加载演示数据）；\
             已有的数据库请用 --database-url sqlite://路径 或 YIBAO_DATABASE_URL 指定",
            file.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "?".into())
        );
    }
    connect(config).await
}

/// Connects to the database the configuration names, running its migrations.
pub async fn connect(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    if config.database_url_from_flag && config.database_url.has_password() {
        tracing::warn!(
            "数据库口令出现在命令行参数中，其他用户可能通过进程列表看到；请改用 YIBAO_DATABASE_URL 或配置文件"
        );
    }
    let storage = open_storage(&config.database_url).await?;
    tracing::info!(database = %config.database_url, backend = storage.backend().name(), "database ready, migrations applied");
    Ok(storage)
}

/// Connects for `yibao serve`: with `read_database_url`, searches, lists, reports and dashboards
/// read the replica (the operator commands always work on the primary alone).
async fn connect_serving(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let Some(replica) = &config.read_database_url else {
        return connect(config).await;
    };
    if config.database_url_from_flag && config.database_url.has_password() {
        tracing::warn!(
            "数据库口令出现在命令行参数中，其他用户可能通过进程列表看到；请改用 YIBAO_DATABASE_URL 或配置文件"
        );
    }
    let storage = crate::storage::open_storage_with_replica(
        &config.database_url,
        Some(replica),
        config.max_replica_lag,
    )
    .await?;
    tracing::info!(
        database = %config.database_url,
        read_replica = %replica,
        max_lag_s = config.max_replica_lag.as_secs(),
        "database ready, migrations applied; searches, lists and reports read the replica"
    );
    Ok(storage)
}

fn print_demo_urls(base: &str) {
    println!("yibao 演示已启动，按 Ctrl+C 停止。");
    println!("  管理台 staff console:  {base}/console/  （用下列演示账号登录）");
    println!("  演示账号 demo staff (password):");
    for (username, password, role, region, station) in demo::DEMO_STAFF {
        let scope = match (region, station) {
            (Some(r), Some(s)) => format!(" {r}/{s}"),
            _ => String::new(),
        };
        println!("    {username} / {password}  ({role}{scope})");
    }
    println!(
        "  登录 login:  curl -s -X POST -H 'content-type: application/json' -d '{{\"username\":\"admin\",\"password\":\"yibao-demo-admin\"}}' {base}/api/v1/auth/login"
    );
    println!("  未缴费名单 unpaid list (Bearer token): {base}/api/v1/regions/320600/fee-years/2027/standing?only_unpaid=true");
    println!("  演示渠道 demo channels (id / secret):");
    for (id, kind, secret, regions) in demo::DEMO_CHANNELS {
        println!("    {id} / {secret}  ({kind}: {})", regions.join(","));
    }
    let (sample_name, sample_id) = demo::sample_resident();
    println!("  示例居民 sample resident: {sample_name} {sample_id}");
    let (lapsed_name, lapsed_id) = demo::lapsed_resident();
    println!(
        "  2025 规则示例（海口，2025、2026 年未参保）lapsed resident: {lapsed_name} {lapsed_id}"
    );
    let (rewarded_name, rewarded_id) = demo::rewarded_resident();
    println!(
        "  2025 规则示例（海口，2019 年起连续参保、近两年零报销）rewarded resident: {rewarded_name} {rewarded_id}"
    );
    let (subsidised_name, subsidised_id) = demo::subsidised_resident();
    println!(
        "  渠道收费范围示例（三亚，资助人员只能在银行柜面缴费）subsidised resident: {subsidised_name} {subsidised_id}"
    );
    let (account_id, _, account_secret, _) = demo::DEMO_ACCOUNT_CHANNEL;
    let relatives: Vec<String> =
        demo::family_account_relatives(yibao_server::Clock::system().today())
            .into_iter()
            .map(|(name, id, relationship)| format!("{relationship} {name} {id}"))
            .collect();
    println!(
        "  家庭共济 family account: 渠道 {account_id} / {account_secret}；职工 {} 可为 {} 缴费",
        demo::family_account_employee(),
        relatives.join("、")
    );
    let (card_id, _, card_secret, _) = demo::DEMO_HEALTH_CARD_CHANNEL;
    let household: Vec<String> = demo::health_card_household(yibao_server::Clock::system().today())
        .into_iter()
        .map(|(name, id, relation)| format!("{relation} {name} {id}"))
        .collect();
    println!(
        "  居民健康卡 health card: 渠道 {card_id} / {card_secret}；代征点只能为持卡人本户缴费（户号 460105000006：{}）",
        household.join("、")
    );
    let (debit_id, _, debit_secret, _) = demo::DEMO_DEBIT_CHANNEL;
    println!(
        "  银行扣费 auto-debit: 渠道 {debit_id} / {debit_secret}（南通）；在管理台“银行扣费”签订委托扣款协议、创建批量扣款"
    );
    let (agents_id, _, agents_secret, _) = demo::DEMO_AGENT_CHANNEL;
    let (agent_code, agent_name, agent_village) = demo::DEMO_AGENT;
    println!(
        "  村级代办 village agent: 渠道 {agents_id} / {agents_secret}；代办员 {agent_code} {agent_name}（锦州服务站 {agent_village} 的居民；查询和下单时提交 agent_code），交款在管理台“村级代办”登记"
    );
    let (test_id, _, test_secret) = demo::DEMO_TEST_CHANNEL;
    println!(
        "  接入测试 sandbox: 测试渠道 {test_id} / {test_secret}；测试居民见 docs/integrator-guide.md「接入测试」（如新居民 {}、已缴费 {}），完成情况见管理台“接入测试”",
        yibao_domain::sandbox::fresh_id_number(0).unwrap_or_default(),
        yibao_domain::sandbox::FIXED_RESIDENTS[0].id_number
    );
    println!("  居民自助 citizen site (缴费查询、票据查验): {base}/");
    println!("  缴费查询 citizens' paid status: {base}/public/paid-status?id_number={sample_id}&name={sample_name}");
    println!(
        "  渠道查询 channel search: cargo run -q -p yibao-channel-client --example search -- {base} wechat demo-secret-wechat-pay-000 {sample_id}"
    );
    println!("  健康检查 health:         {base}/healthz");
    println!("  接口文档 OpenAPI:        {base}/openapi.json");
    println!("  统筹区 regions:          {base}/api/v1/regions");
    println!("  缴费政策 fee policies:   {base}/api/v1/regions/320600/fee-policies");
    println!("  工作日 working days:     {base}/api/v1/regions/320600/working-days?from=2020-09-30&days=2");
    println!(
        "  身份证校验 id check:     curl -s -X POST -H 'content-type: application/json' -d '{{\"id_number\":\"11010519491231002x\"}}' {base}/api/v1/id-numbers/parse"
    );
}

async fn serve(
    config: &Config,
    storage: Arc<dyn Storage>,
    announce: Option<fn(&str)>,
) -> anyhow::Result<()> {
    serve_then(config, storage, announce, |_| {}).await
}

async fn serve_then(
    config: &Config,
    storage: Arc<dyn Storage>,
    announce: Option<fn(&str)>,
    after_start: impl FnOnce(String),
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "无法监听 {}：{e}（端口被占用时请用 --listen 指定其他地址）",
            config.listen
        )
    })?;
    let address = listener.local_addr()?;
    let base = format!("http://{address}");
    tracing::info!(%address, "listening");
    if let Some(announce) = announce {
        announce(&base);
    }
    let mut state = AppState::new(storage, Clock::system());
    state.public_base_url = match &config.public_base_url {
        Some(url) => url.clone(),
        None => {
            let fallback = yibao_server::receipts::PublicBaseUrl::parse(&base).unwrap_or_default();
            tracing::warn!(
                public_base_url = %fallback,
                "public_base_url 未设置：票据上的查验地址和二维码将指向本机监听地址，公众无法访问；\
                 生产环境请在配置文件或 YIBAO_PUBLIC_BASE_URL 中设置对外的完整地址"
            );
            fallback
        }
    };
    state.master_key = config.master_key.clone();
    state.client_address_header = config.client_address_header.clone();
    state.order_hold_seconds = config.order_hold_seconds;
    state.delivered_events_kept_seconds = config.outbox_delivered_kept_days * 86_400;
    if state.master_key.is_none() {
        tracing::warn!(
            "YIBAO_MASTER_KEY 未设置：新登记的渠道密钥将以明文存储，生产环境请设置主密钥"
        );
    }
    let font_path = config
        .receipt_font
        .clone()
        .or_else(yibao_receipt_pdf::find_default_font);
    let fallback_paths = config
        .receipt_fallback_fonts
        .clone()
        .unwrap_or_else(yibao_receipt_pdf::find_default_fallback_fonts);
    match font_path.map(|p| yibao_receipt_pdf::ReceiptFonts::load(&p, &[])) {
        Some(Ok((main, _))) => {
            let main = Arc::new(main);
            // The fallbacks (about 100 MB) are read from disk only for a receipt that needs them;
            // here once, off the start-up path and one at a time, to check them and log what the
            // chain covers.
            let for_log = main.clone();
            let paths = fallback_paths.clone();
            tokio::task::spawn_blocking(move || match for_log.coverage_with_fallbacks(&paths) {
                Ok(coverage) => log_receipt_font_coverage(&coverage),
                Err(err) => tracing::warn!(%err, "receipt font coverage not checked"),
            });
            state.receipt_font = Some(main);
            state.receipt_fallback_fonts = Arc::new(fallback_paths);
        }
        Some(Err(err)) => tracing::warn!(%err, "receipt font not loaded: receipt PDFs unavailable"),
        None => tracing::warn!(
            "no CJK font found (run scripts/install-fonts): receipt PDFs unavailable"
        ),
    }
    let posting = match (&config.posting_url, &config.posting_secret) {
        (Some(url), Some(secret)) => Some(yibao_server::background::PostingTarget {
            url: url.clone(),
            secret: secret.clone(),
        }),
        _ => None,
    };
    if config.payment_batch_max > 1 {
        // The same setting: with group commit on, nonces are committed in groups too, and
        // payment reports' reads and channels' searches are gathered into rounds; all on a
        // thread of their own.
        yibao_server::channel::gathering::Gathering::start(
            state.storage.clone(),
            config.payment_batch_max,
        )
        .await?
        .install(&mut state);
    }
    // The sandbox's test residents, where there is a sandbox (接入测试): idempotent.
    if let Err(err) = yibao_server::services::sandbox::prepare_residents(&state).await {
        tracing::warn!(%err, "sandbox test residents not prepared");
    }
    yibao_server::background::spawn(state.clone(), posting);
    let console = yibao_console::router(yibao_console::CookiePolicy {
        secure: config.console_secure_cookie,
    })
    .layer(axum::Extension(
        yibao_console::pages::unpaid::UnpaidReasons(std::sync::Arc::new(
            config.unpaid_reasons.clone(),
        )),
    ));
    let (beside_api, own_listener) = match config.console {
        ConsoleServing::WithApi => {
            tracing::info!(url = %format!("{base}/console/"), "staff console served with the API");
            (console, None)
        }
        ConsoleServing::Own(address) => (axum::Router::new(), Some((address, console))),
        ConsoleServing::Off => {
            tracing::info!("staff console not served (console = false)");
            (axum::Router::new(), None)
        }
    };
    if let Some((address, routes)) = own_listener {
        let listener = TcpListener::bind(address).await.map_err(|e| {
            anyhow::anyhow!("无法监听管理台地址 {address}：{e}（请检查 console_listen）")
        })?;
        tracing::info!(url = %format!("http://{}/console/", listener.local_addr()?), "staff console served on its own listener");
        let app = yibao_server::standalone(state.clone(), routes);
        tokio::spawn(async move {
            if let Err(err) = yibao_server::serve(listener, app, shutdown_signal()).await {
                tracing::warn!(%err, "staff console listener stopped");
            }
        });
    }
    let metrics_listener = match config.metrics {
        crate::config::MetricsExposure::Listener(address) => {
            let listener = TcpListener::bind(address).await.map_err(|e| {
                anyhow::anyhow!("无法监听指标地址 {address}：{e}（请检查 metrics_listen）")
            })?;
            tracing::info!(address = %listener.local_addr()?, "metrics listening");
            Some(listener)
        }
        _ => None,
    };
    let metrics_app = yibao_server::metrics::app(state.clone());
    // The citizen site (居民自助) at `/`, always beside the API: it is what the public opens. Its
    // payment provider also takes back the refunds owed on its payments.
    let site = citizen_site(config);
    site.spawn_background(&state);
    let beside_api = beside_api.merge(yibao_citizen::router_with(site));
    let app = yibao_server::app_with(
        state,
        &ServerSettings {
            body_limit_bytes: config.body_limit_bytes,
            metrics_on_main_listener: config.metrics
                == crate::config::MetricsExposure::MainListener,
        },
        beside_api,
    );
    after_start(base);
    match metrics_listener {
        Some(metrics_listener) => {
            let metrics = yibao_server::serve(metrics_listener, metrics_app, shutdown_signal());
            let main = yibao_server::serve(listener, app, shutdown_signal());
            tokio::try_join!(main, metrics)?;
        }
        None => yibao_server::serve(listener, app, shutdown_signal()).await?,
    }
    tracing::info!("stopped");
    Ok(())
}

/// The citizen site as configured: the simulated cashier, and text messages to the SMS gateway,
/// the demo mailbox, or nowhere.
fn citizen_site(config: &Config) -> yibao_citizen::Site {
    if config.demo_mailbox {
        if config.listen.ip().is_loopback() {
            tracing::info!("text messages go to the demo mailbox: /demo/mailbox");
        } else {
            tracing::warn!(
                listen = %config.listen,
                "演示短信收件箱 /demo/mailbox 对能访问本机的所有人公开（含登录验证码）：演示请只监听本机地址"
            );
        }
        return yibao_citizen::Site::demo();
    }
    let sender: Option<Arc<dyn yibao_citizen::messages::MessageSender>> =
        match (&config.sms_gateway_url, &config.sms_gateway_secret) {
            (Some(url), Some(secret)) => Some(Arc::new(
                yibao_citizen::messages::HttpSmsSender::new(url.clone(), secret.expose().to_vec()),
            )),
            _ => {
                tracing::warn!(
                    "sms_gateway_url 未设置：居民自助网站无法发送登录验证码（查询和缴费不受影响）"
                );
                None
            }
        };
    yibao_citizen::Site {
        provider: yibao_citizen::pay::Provider::default(),
        sender,
        mailbox: None,
        secure_cookie: config.console_secure_cookie,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Logs (info) the fonts of the receipt chain and each Han block they do not wholly cover: names
/// with such characters cannot be printed on a receipt PDF (the JSON receipt still works).
fn log_receipt_font_coverage(coverage: &yibao_receipt_pdf::ChainCoverage) {
    for (path, err) in &coverage.skipped {
        tracing::warn!(path = %path.display(), %err, "receipt fallback font not loaded");
    }
    tracing::info!(fonts = ?coverage.fonts, "receipt fonts loaded (main font first, then fallbacks)");
    for block in coverage.blocks.iter().filter(|c| c.missing() > 0) {
        let examples: Vec<String> = block
            .missing_examples
            .iter()
            .map(|c| format!("U+{:04X}", u32::from(*c)))
            .collect();
        tracing::info!(
            block = block.block.name,
            covered = block.covered,
            assigned = block.block.assigned_count(),
            missing_examples = ?examples,
            "receipt fonts do not cover this Unicode block: names with its missing characters cannot be printed as receipt PDFs"
        );
    }
}
