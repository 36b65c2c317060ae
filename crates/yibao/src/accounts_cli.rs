//! `yibao staff list|disable|enable|reset-password` and `yibao channel list|disable|enable|
//! rotate-secret`: the same services as the admin API, audited as the operator (`cli:$USER`).

use clap::Args;
use yibao_server::channel::secrets::MasterKey;
use yibao_server::services::accounts;
use yibao_server::services::staff::Password;
use yibao_server::Clock;
use yibao_storage::Storage;

use crate::cli::DatabaseArgs;
use crate::operator::{cli_actor, read_secret};

#[derive(Args)]
pub(crate) struct UsernameArgs {
    pub username: String,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
}

#[derive(Args)]
pub(crate) struct ChannelIdArgs {
    pub id: String,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
}

#[derive(Args)]
pub(crate) struct RotateSecretArgs {
    pub id: String,
    /// Hours the old secret is still accepted (0 to 168), so the bank can switch over.
    #[arg(long, default_value_t = 24)]
    pub grace_hours: i64,
    #[command(flatten)]
    pub(crate) database: DatabaseArgs,
}

pub async fn staff_list(storage: &dyn Storage) -> anyhow::Result<()> {
    let staff = accounts::list_staff(storage).await?;
    if staff.is_empty() {
        println!("还没有工作人员账号：用 yibao staff add 创建");
    }
    for s in staff {
        let scope = [s.region.as_deref(), s.station.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        println!(
            "{}\t{}\t{}\t{}\t{}",
            s.username,
            s.display_name,
            s.role,
            if scope.is_empty() { "-" } else { &scope },
            if s.disabled { "已停用" } else { "正常" }
        );
    }
    Ok(())
}

pub async fn staff_disable(
    storage: &dyn Storage,
    username: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    accounts::set_staff_disabled(storage, username, disabled, &cli_actor()).await?;
    if disabled {
        println!("已停用账号 {username}，其登录已全部失效");
    } else {
        println!("已启用账号 {username}");
    }
    Ok(())
}

pub async fn staff_reset_password(storage: &dyn Storage, username: &str) -> anyhow::Result<()> {
    let password = Password::new(read_secret("YIBAO_STAFF_PASSWORD", "新密码")?)?;
    accounts::reset_staff_password(storage, username, password, &cli_actor()).await?;
    println!("已重置账号 {username} 的密码，其登录已全部失效");
    Ok(())
}

pub async fn channel_list(storage: &dyn Storage) -> anyhow::Result<()> {
    let now = Clock::system().now().timestamp();
    let channels = accounts::list_channels(storage, now).await?;
    if channels.is_empty() {
        println!("还没有渠道：用 yibao channel add 登记");
    }
    for c in channels {
        let rotation = match c.previous_secret_valid_until {
            Some(until) => format!(
                "\t旧密钥有效至 {}",
                chrono::DateTime::from_timestamp(until, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        println!(
            "{}\t{}\t{}\t{}/秒\t{}{rotation}",
            c.channel_id,
            c.kind,
            c.regions.join(","),
            c.rate_per_second,
            if c.enabled { "正常" } else { "已停用" }
        );
    }
    Ok(())
}

pub async fn channel_enable(
    storage: &dyn Storage,
    channel_id: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    accounts::set_channel_enabled(storage, channel_id, enabled, &cli_actor()).await?;
    if enabled {
        println!("已启用渠道 {channel_id}");
    } else {
        println!("已停用渠道 {channel_id}：其请求将被拒绝（AUTH_FAILED）");
    }
    Ok(())
}

pub async fn channel_rotate_secret(
    storage: &dyn Storage,
    master_key: Option<&MasterKey>,
    channel_id: &str,
    grace_hours: i64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0..=168).contains(&grace_hours),
        "--grace-hours 应在0至168之间"
    );
    if master_key.is_none() {
        eprintln!("警告：未设置 YIBAO_MASTER_KEY，渠道密钥将以明文存储在数据库中");
    }
    let secret = read_secret("YIBAO_CHANNEL_SECRET", "新的渠道密钥")?;
    let now = Clock::system().now().timestamp();
    accounts::rotate_channel_secret(
        storage,
        master_key,
        channel_id,
        secret,
        grace_hours * 3600,
        now,
        &cli_actor(),
    )
    .await?;
    println!("已更换渠道 {channel_id} 的密钥；旧密钥在 {grace_hours} 小时内仍可使用");
    Ok(())
}
