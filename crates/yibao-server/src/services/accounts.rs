//! Running staff accounts and channels from day to day: list them, disable and enable them, reset a
//! password, rotate a channel's secret. Shared by the admin API and the command line; every change
//! is audited.

use serde::Serialize;
use utoipa::ToSchema;
use yibao_storage::collection::MAX_SECRET_GRACE_SECONDS;
use yibao_storage::{AuditEntry, Storage};

use crate::channel::secrets::{seal, ChannelSecret, MasterKey};
use crate::error::{ErrorCode, ServiceError};
use crate::services::staff::{hash_password, Password};

/// A staff account as an administrator sees it (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffSummary {
    pub username: String,
    pub display_name: String,
    /// `admin`, `station_operator`, `tax_collector` or `auditor`.
    pub role: String,
    pub region: Option<String>,
    pub station: Option<String>,
    pub disabled: bool,
}

pub async fn list_staff(storage: &dyn Storage) -> Result<Vec<StaffSummary>, ServiceError> {
    Ok(storage
        .list_staff()
        .await?
        .into_iter()
        .map(|s| StaffSummary {
            username: s.username,
            display_name: s.display_name,
            role: s.role.code().to_owned(),
            region: s.region.map(|r| r.to_string()),
            station: s.station.map(|s| s.as_str().to_owned()),
            disabled: s.disabled,
        })
        .collect())
}

fn no_such_staff(username: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::NotFound,
        format!("没有用户名为“{username}”的工作人员账号"),
    )
}

/// Disables (and signs out) or enables an account. `actor` may not disable itself.
pub async fn set_staff_disabled(
    storage: &dyn Storage,
    username: &str,
    disabled: bool,
    actor: &str,
) -> Result<(), ServiceError> {
    if disabled && username == actor {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "不能停用自己正在使用的账号，请由其他管理员操作",
        ));
    }
    if !storage.set_staff_disabled(username, disabled).await? {
        return Err(no_such_staff(username));
    }
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: if disabled {
                "staff.disable"
            } else {
                "staff.enable"
            }
            .into(),
            region: None,
            target: username.to_owned(),
            detail: serde_json::json!({}),
        })
        .await?;
    Ok(())
}

/// Sets a temporary password chosen by someone else (an administrator, the operator's command)
/// and ends the account's sessions; the holder must replace it at the next sign-in.
pub async fn reset_staff_password(
    storage: &dyn Storage,
    username: &str,
    password: Password,
    actor: &str,
) -> Result<(), ServiceError> {
    let hash = hash_password(&password)?;
    if !storage.set_staff_password(username, &hash, true).await? {
        return Err(no_such_staff(username));
    }
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: "staff.password_reset".into(),
            region: None,
            target: username.to_owned(),
            detail: serde_json::json!({}),
        })
        .await?;
    Ok(())
}

/// A channel as an administrator sees it (never the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelSummary {
    pub channel_id: String,
    /// `bank_counter`, `wechat`, `auto_debit` …
    pub kind: String,
    pub regions: Vec<String>,
    pub rate_per_second: i64,
    pub enabled: bool,
    /// After a secret rotation: until when (Unix seconds) the previous secret is still accepted.
    pub previous_secret_valid_until: Option<i64>,
    /// A test channel (接入测试): it serves only the sandbox region.
    pub test_mode: bool,
}

pub async fn list_channels(
    storage: &dyn Storage,
    now: i64,
) -> Result<Vec<ChannelSummary>, ServiceError> {
    Ok(storage
        .list_channels()
        .await?
        .into_iter()
        .map(|c| ChannelSummary {
            previous_secret_valid_until: c
                .previous_secret
                .as_ref()
                .map(|p| p.until)
                .filter(|until| *until > now),
            channel_id: c.channel_id,
            kind: c.kind,
            regions: c.regions,
            rate_per_second: c.rate_per_second,
            enabled: c.enabled,
            test_mode: c.test_mode,
        })
        .collect())
}

fn no_such_channel(channel_id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::NotFound,
        format!("没有编号为“{channel_id}”的渠道"),
    )
}

/// Disables or enables a channel: a disabled channel's requests are refused (401 `AUTH_FAILED`).
pub async fn set_channel_enabled(
    storage: &dyn Storage,
    channel_id: &str,
    enabled: bool,
    actor: &str,
) -> Result<(), ServiceError> {
    if !storage.set_channel_enabled(channel_id, enabled).await? {
        return Err(no_such_channel(channel_id));
    }
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: if enabled {
                "channel.enable"
            } else {
                "channel.disable"
            }
            .into(),
            region: None,
            target: channel_id.to_owned(),
            detail: serde_json::json!({}),
        })
        .await?;
    Ok(())
}

/// Default grace period of a rotated-out secret: one day.
pub const DEFAULT_SECRET_GRACE_SECONDS: i64 = 24 * 3600;

/// Gives a channel a new secret; the old one is still accepted for `grace_seconds` (0 to 7 days),
/// so the bank can switch its servers over without refused requests.
pub async fn rotate_channel_secret(
    storage: &dyn Storage,
    master_key: Option<&MasterKey>,
    channel_id: &str,
    new_secret: String,
    grace_seconds: i64,
    now: i64,
    actor: &str,
) -> Result<(), ServiceError> {
    if !(0..=MAX_SECRET_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!(
                "旧密钥的过渡期应在0至{}小时之间",
                MAX_SECRET_GRACE_SECONDS / 3600
            ),
        ));
    }
    let secret = ChannelSecret::new(new_secret.into_bytes())
        .map_err(|e| ServiceError::new(ErrorCode::InvalidRequest, format!("新密钥无效：{e}")))?;
    let sealed =
        seal(&secret, master_key).map_err(|e| ServiceError::internal("seal channel secret", e))?;
    if !storage
        .rotate_channel_secret(channel_id, &sealed, now + grace_seconds)
        .await?
    {
        return Err(no_such_channel(channel_id));
    }
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: "channel.rotate_secret".into(),
            region: None,
            target: channel_id.to_owned(),
            detail: serde_json::json!({ "previous_secret_valid_until": now + grace_seconds }),
        })
        .await?;
    Ok(())
}

/// The kinds of channel (`bank_counter` 银行柜面 … `auto_debit` 委托扣款), with their Chinese names:
/// the domain's one table ([`yibao_domain::CHANNEL_KINDS`]).
pub use yibao_domain::CHANNEL_KINDS;

/// The kinds of channel a resident of `region` can pay at now, as indexes into [`CHANNEL_KINDS`]
/// in its order: the enabled channels serving the region, but not bank auto-debit (signed at a
/// bank, not a place to pay now) nor the family account (it pays only for relatives bound to an
/// employee, and not every payable), so that no page or message promises a way most cannot use.
pub fn kinds_to_pay_at(
    channels: &[yibao_storage::collection::ChannelRecord],
    region: &str,
) -> Vec<usize> {
    let mut kinds: Vec<usize> = channels
        .iter()
        .filter(|c| c.enabled && c.regions.iter().any(|r| r == region))
        .filter_map(|c| {
            CHANNEL_KINDS.iter().position(|(code, _)| {
                *code == c.kind && !matches!(*code, "auto_debit" | "medical_account")
            })
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// Kinds a text message names at most (an SMS stays short); more end in 等.
pub const MAX_WAYS_NAMED: usize = 4;

/// How a text message tells a resident of `region` to pay: its channels' kinds (at most
/// [`MAX_WAYS_NAMED`]), then the service station, which always takes the payment.
pub fn ways_to_pay_zh(
    channels: &[yibao_storage::collection::ChannelRecord],
    region: &str,
) -> String {
    let kinds = kinds_to_pay_at(channels, region);
    if kinds.is_empty() {
        return "参保地的服务站".to_owned();
    }
    let names: Vec<&str> = kinds
        .iter()
        .take(MAX_WAYS_NAMED)
        .map(|i| CHANNEL_KINDS[*i].1)
        .collect();
    let more = if kinds.len() > MAX_WAYS_NAMED {
        "等"
    } else {
        ""
    };
    format!("{}{more}或到服务站", names.join("、"))
}

/// Most requests a second a channel may be given.
pub const MAX_CHANNEL_RATE: i64 = 100_000;

/// A new channel as asked for; [`NewChannel::check`] names each field that is wrong.
pub struct NewChannel {
    pub channel_id: String,
    pub kind: String,
    pub regions: Vec<String>,
    pub rate_per_second: i64,
    /// A test channel (接入测试): it serves the sandbox region only, whatever `regions` says.
    pub test_mode: bool,
}

impl NewChannel {
    /// What is wrong with it, field by field (`channel_id`, `kind`, `regions`, `rate`), in Chinese.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        let id = &self.channel_id;
        if !((2..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            errors.push((
                "channel_id",
                "渠道编号应为2至64个字母、数字、-或_".to_owned(),
            ));
        }
        if !CHANNEL_KINDS.iter().any(|(k, _)| *k == self.kind) {
            errors.push((
                "kind",
                format!("渠道类型应为：{}", CHANNEL_KINDS.map(|(k, _)| k).join("、")),
            ));
        }
        let sandbox = yibao_domain::sandbox::SANDBOX_REGION;
        if id == yibao_domain::sandbox::HOUSE_CHANNEL {
            errors.push((
                "channel_id",
                format!("渠道编号 {id} 为接入测试区保留，请换一个"),
            ));
        }
        if self.test_mode {
            if self.regions.iter().any(|r| r.trim() != sandbox) {
                errors.push((
                    "regions",
                    format!("测试渠道只服务接入测试区 {sandbox}，不能指定其他统筹区"),
                ));
            }
        } else if self.regions.iter().any(|r| r.trim() == sandbox) {
            errors.push((
                "regions",
                format!("统筹区 {sandbox} 是接入测试区，只供测试渠道使用"),
            ));
        } else if self.regions.is_empty() {
            errors.push(("regions", "须至少指定一个统筹区".to_owned()));
        } else if let Some(bad) = self
            .regions
            .iter()
            .find(|r| yibao_domain::RegionCode::parse(r).is_err())
        {
            errors.push(("regions", format!("统筹区代码 {bad} 有误，应为6位数字")));
        }
        if !(1..=MAX_CHANNEL_RATE).contains(&self.rate_per_second) {
            errors.push(("rate", format!("每秒请求数应在1至{MAX_CHANNEL_RATE}之间")));
        }
        errors
    }
}

/// Registers a channel (its secret sealed with the master key when one is configured). Not
/// audited here: the caller (API, console, command line) names the actor. A wrong field is
/// `INVALID_REQUEST` with [`NewChannel::check`]'s first message; an unregistered region
/// `NOT_FOUND`; a taken channel id `ALREADY_EXISTS`.
pub async fn create_channel(
    storage: &dyn Storage,
    master_key: Option<&MasterKey>,
    new: &NewChannel,
    secret: String,
) -> Result<(), ServiceError> {
    if let Some((_, message)) = new.check().into_iter().next() {
        return Err(ServiceError::new(ErrorCode::InvalidRequest, message));
    }
    let mut codes = Vec::new();
    let regions = if new.test_mode {
        // The sandbox is made ready first: the channel's region must be one.
        vec![super::sandbox::prepare_region(storage).await?.to_string()]
    } else {
        new.regions.clone()
    };
    for r in &regions {
        let code = yibao_domain::RegionCode::parse(r)?;
        if storage.get_region(code).await?.is_none() {
            return Err(ServiceError::new(
                ErrorCode::NotFound,
                format!("统筹区 {code} 未在本系统登记"),
            ));
        }
        if !codes.contains(&code.to_string()) {
            codes.push(code.to_string());
        }
    }
    let secret = ChannelSecret::new(secret.into_bytes())
        .map_err(|e| ServiceError::new(ErrorCode::InvalidRequest, format!("渠道密钥无效：{e}")))?;
    let sealed =
        seal(&secret, master_key).map_err(|e| ServiceError::internal("seal channel secret", e))?;
    storage
        .create_channel(&yibao_storage::collection::ChannelRecord {
            channel_id: new.channel_id.clone(),
            kind: new.kind.clone(),
            secret_sealed: sealed,
            rate_per_second: new.rate_per_second,
            enabled: true,
            regions: codes,
            previous_secret: None,
            test_mode: new.test_mode,
        })
        .await
        .map_err(|e| match e {
            yibao_storage::StorageError::Constraint { .. } => ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("渠道 {} 已存在", new.channel_id),
            ),
            other => other.into(),
        })
}

/// A fresh channel secret: 64 hexadecimal characters (244 random bits from the operating
/// system, through two UUIDv4), shown once to the administrator who hands it to the bank.
pub fn new_channel_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Sets a channel's rate and the regions it serves (the same rules as a new channel), audited
/// `channel.update`. A wrong field is `INVALID_REQUEST`, an unregistered region or channel
/// `NOT_FOUND`.
pub async fn update_channel(
    storage: &dyn Storage,
    channel_id: &str,
    rate_per_second: i64,
    regions: &[String],
    actor: &str,
) -> Result<(), ServiceError> {
    let asked = NewChannel {
        channel_id: channel_id.to_owned(),
        kind: CHANNEL_KINDS[0].0.to_owned(),
        regions: regions.to_vec(),
        rate_per_second,
        test_mode: storage
            .get_channel(channel_id)
            .await?
            .is_some_and(|c| c.test_mode),
    };
    if let Some((_, message)) = asked.check().into_iter().next() {
        return Err(ServiceError::new(ErrorCode::InvalidRequest, message));
    }
    let mut codes: Vec<String> = Vec::new();
    for r in regions {
        let code = yibao_domain::RegionCode::parse(r)?;
        if storage.get_region(code).await?.is_none() {
            return Err(ServiceError::new(
                ErrorCode::NotFound,
                format!("统筹区 {code} 未在本系统登记"),
            ));
        }
        if !codes.contains(&code.to_string()) {
            codes.push(code.to_string());
        }
    }
    if asked.test_mode {
        // A test channel serves the sandbox, whatever the form left in its regions.
        codes = vec![yibao_domain::sandbox::SANDBOX_REGION.to_owned()];
    }
    if !storage
        .update_channel(channel_id, rate_per_second, &codes)
        .await?
    {
        return Err(no_such_channel(channel_id));
    }
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: "channel.update".into(),
            region: None,
            target: channel_id.to_owned(),
            detail: serde_json::json!({ "rate": rate_per_second, "regions": codes }),
        })
        .await?;
    Ok(())
}
