//! 渠道: the channels (banks, WeChat, Alipay …), administrators only, through the same services
//! as the API ([`yibao_server::services::channels`]): the list (`GET /api/v1/channels`), add one
//! (`services::accounts::create_channel`, audited `channel.add`; its secret is made here and shown
//! once), the channel-only policy (长款处理方式, `PUT /api/v1/channels/{id}/channel-only-policy`),
//! a new secret (`PUT /api/v1/channels/{id}/secret`, shown once, the old one accepted for a day),
//! disable and enable.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use yibao_server::services::accounts::{
    create_channel, new_channel_secret, NewChannel, CHANNEL_KINDS,
};
use yibao_server::services::{channels, reconciliation};
use yibao_server::{AppState, ErrorCode};

use crate::pages::desk::{self, admin_of};
use crate::pages::staff::EmptyForm;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

/// Most regions named for one channel.
const MAX_REGIONS: usize = 64;

/// What becomes of a channel's unreported money (长款).
pub const POLICIES: [(&str, &str); 2] = [
    ("refund", "退还缴费人"),
    ("apply", "找到原订单的，为其入账；否则退还"),
];

pub struct ChannelLine {
    pub channel_id: String,
    pub kind: String,
    pub regions: String,
    pub rate: i64,
    pub enabled: bool,
    pub previous_until: String,
    pub policy: String,
    pub test_mode: bool,
}

#[derive(Default, Deserialize)]
pub struct NewChannelFields {
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub regions: String,
    #[serde(default)]
    pub rate: String,
    /// The 测试渠道 box: `on` when ticked.
    #[serde(default)]
    pub test_mode: String,
}

#[derive(Template)]
#[template(path = "desk/channels.html")]
pub struct ChannelsPage {
    pub chrome: Chrome,
    pub channels: Vec<ChannelLine>,
    pub kinds: &'static [(&'static str, &'static str)],
    pub policies: &'static [(&'static str, &'static str)],
    pub regions: Vec<(String, String)>,
    pub fields: NewChannelFields,
    pub errors: Vec<(&'static str, String)>,
    pub notice: Option<String>,
    /// (channel id, secret): shown once, on the answer to the form that made it.
    pub issued: Option<(String, String)>,
    /// The channel being changed (its regions and rate), with the form's values.
    pub editing: Option<(String, NewChannelFields)>,
}

impl ChannelsPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn kind_zh(kind: &str) -> String {
    CHANNEL_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or_else(|| kind.to_owned(), |(_, zh)| (*zh).to_owned())
}

async fn page(state: &AppState, user: &ConsoleUser) -> Result<ChannelsPage, PageError> {
    let admin = admin_of(user)?;
    let listed = channels::list_channels(state, &admin.0).await?;
    let mut channels = Vec::with_capacity(listed.len());
    for c in listed {
        let policy = state
            .storage
            .channel_only_policy(&c.channel_id)
            .await?
            .unwrap_or_default();
        channels.push(ChannelLine {
            kind: kind_zh(&c.kind),
            regions: c.regions.join("、"),
            rate: c.rate_per_second,
            enabled: c.enabled,
            test_mode: c.test_mode,
            previous_until: c
                .previous_secret_valid_until
                .map(|t| crate::view::beijing_minute(t.saturating_mul(1000)))
                .unwrap_or_default(),
            policy: POLICIES
                .iter()
                .find(|(p, _)| *p == policy)
                .map_or(policy.clone(), |(_, zh)| (*zh).to_owned()),
            channel_id: c.channel_id,
        });
    }
    Ok(ChannelsPage {
        chrome: Chrome::new(user, "channels", "渠道"),
        channels,
        kinds: &CHANNEL_KINDS,
        policies: &POLICIES,
        regions: desk::regions(state).await?,
        fields: NewChannelFields::default(),
        errors: Vec::new(),
        notice: None,
        issued: None,
        editing: None,
    })
}

/// `GET /console/channels`.
pub async fn list(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    html(&page(&state, &user).await?)
}

/// The form's fields as the service takes them, and what is wrong with each.
fn new_channel(fields: &NewChannelFields) -> Result<NewChannel, Vec<(&'static str, String)>> {
    let regions: Vec<String> = fields
        .regions
        .split([',', '，', '、', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let rate = fields.rate.trim().parse::<i64>().unwrap_or(0);
    let new = NewChannel {
        channel_id: fields.channel_id.trim().to_owned(),
        kind: fields.kind.trim().to_owned(),
        regions,
        rate_per_second: rate,
        test_mode: fields.test_mode == "on",
    };
    let mut errors = new.check();
    if new.regions.len() > MAX_REGIONS {
        errors.push(("regions", format!("一个渠道最多服务{MAX_REGIONS}个统筹区")));
    }
    if errors.is_empty() {
        Ok(new)
    } else {
        Err(errors)
    }
}

/// `POST /console/channels`: registers a channel with a fresh secret, shown once.
pub async fn create(
    State(state): State<AppState>,
    CsrfForm(user, fields): CsrfForm<NewChannelFields>,
) -> Result<Response, PageError> {
    let admin = admin_of(&user)?;
    let secret = new_channel_secret();
    let outcome = match new_channel(&fields) {
        Ok(new) => {
            match create_channel(
                state.storage.as_ref(),
                state.master_key.as_ref(),
                &new,
                secret.clone(),
            )
            .await
            {
                Ok(()) => {
                    yibao_server::services::audit(
                        &state,
                        &admin.0,
                        "channel.add",
                        None,
                        &new.channel_id,
                        serde_json::json!({"kind": new.kind, "regions": new.regions, "rate": new.rate_per_second, "test_mode": new.test_mode, "source": "console"}),
                    )
                    .await?;
                    if new.test_mode {
                        // The sandbox's fixed residents now, not at the next start.
                        yibao_server::services::sandbox::prepare_residents(&state).await?;
                    }
                    Ok(new.channel_id)
                }
                Err(e) => match e.code {
                    ErrorCode::AlreadyExists => Err(vec![("channel_id", e.message)]),
                    ErrorCode::NotFound => Err(vec![("regions", e.message)]),
                    ErrorCode::InvalidRequest => Err(vec![("channel_id", e.message)]),
                    _ => return Err(e.into()),
                },
            }
        }
        Err(errors) => Err(errors),
    };
    let mut view = page(&state, &user).await?;
    match outcome {
        Ok(id) => {
            view.notice = Some(format!(
                "已登记渠道 {id}。请把下面的密钥通过安全途径交给渠道：本页关闭后不再显示，遗失只能更换密钥。"
            ));
            view.issued = Some((id, secret));
            html(&view)
        }
        Err(errors) => {
            view.fields = fields;
            view.errors = errors;
            render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Default, Deserialize)]
pub struct PolicyFields {
    #[serde(default)]
    pub policy: String,
}

/// `POST /console/channels/{id}/policy`: how the channel's 长款 are settled.
pub async fn set_policy(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(user, fields): CsrfForm<PolicyFields>,
) -> Result<Response, PageError> {
    let admin = admin_of(&user)?;
    if !POLICIES.iter().any(|(p, _)| *p == fields.policy) {
        let mut view = page(&state, &user).await?;
        view.errors = vec![("policy", format!("请为渠道 {channel_id} 选择长款处理方式"))];
        return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let _answer =
        reconciliation::set_channel_only_policy(&state, &admin.0, &channel_id, &fields.policy)
            .await?;
    Ok(desk::see_other("/console/channels"))
}

/// `POST /console/channels/{id}/secret`: a fresh secret, shown once; the previous one is still
/// accepted for a day so the bank can switch over.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    let admin = admin_of(&user)?;
    let secret = new_channel_secret();
    channels::rotate_channel_secret(&state, &admin.0, &channel_id, secret.clone(), None).await?;
    let mut view = page(&state, &user).await?;
    view.notice = Some(format!(
        "已更换渠道 {channel_id} 的密钥；旧密钥在24小时内仍可使用。请把新密钥通过安全途径交给渠道：本页关闭后不再显示。"
    ));
    view.issued = Some((channel_id, secret));
    html(&view)
}

async fn set_enabled(
    state: AppState,
    channel_id: String,
    user: ConsoleUser,
    enabled: bool,
) -> Result<Response, PageError> {
    let admin = admin_of(&user)?;
    channels::set_channel_enabled(&state, &admin.0, &channel_id, enabled).await?;
    Ok(desk::see_other("/console/channels"))
}

/// `POST /console/channels/{id}/disable`: its requests are refused from now on.
pub async fn disable(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    set_enabled(state, channel_id, user, false).await
}

/// `POST /console/channels/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    set_enabled(state, channel_id, user, true).await
}

/// `GET /console/channels/{id}/edit`: the form to change a channel's regions and rate.
pub async fn edit_form(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(channel_id): Path<String>,
) -> Result<Response, PageError> {
    let mut view = page(&state, &user).await?;
    let channel = state
        .storage
        .get_channel(&channel_id)
        .await?
        .ok_or_else(|| PageError::not_found("未找到该渠道"))?;
    view.editing = Some((
        channel_id,
        NewChannelFields {
            regions: channel.regions.join(","),
            rate: channel.rate_per_second.to_string(),
            ..NewChannelFields::default()
        },
    ));
    html(&view)
}

/// The change form's fields.
#[derive(Default, Deserialize)]
pub struct EditFields {
    #[serde(default)]
    pub edit_regions: String,
    #[serde(default)]
    pub edit_rate: String,
}

/// `POST /console/channels/{id}/edit`: sets the regions and rate through
/// `services::accounts::update_channel` (audited `channel.update`).
pub async fn edit(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    CsrfForm(user, edited): CsrfForm<EditFields>,
) -> Result<Response, PageError> {
    let admin = admin_of(&user)?;
    let fields = NewChannelFields {
        regions: edited.edit_regions,
        rate: edited.edit_rate,
        ..NewChannelFields::default()
    };
    let regions: Vec<String> = fields
        .regions
        .split([',', '，', '、', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let rate = fields.rate.trim().parse::<i64>().unwrap_or(0);
    let checked = NewChannel {
        channel_id: channel_id.clone(),
        kind: CHANNEL_KINDS[0].0.to_owned(),
        regions: regions.clone(),
        rate_per_second: rate,
        test_mode: state
            .storage
            .get_channel(&channel_id)
            .await?
            .is_some_and(|c| c.test_mode),
    }
    .check();
    let mut errors: Vec<(&'static str, String)> = checked
        .into_iter()
        .filter_map(|(f, m)| match f {
            "regions" => Some(("edit_regions", m)),
            "rate" => Some(("edit_rate", m)),
            _ => None,
        })
        .collect();
    if regions.len() > MAX_REGIONS {
        errors.push((
            "edit_regions",
            format!("一个渠道最多服务{MAX_REGIONS}个统筹区"),
        ));
    }
    if errors.is_empty() {
        match yibao_server::services::accounts::update_channel(
            state.storage.as_ref(),
            &channel_id,
            rate,
            &regions,
            admin.0.username(),
        )
        .await
        {
            Ok(()) => return Ok(desk::see_other("/console/channels")),
            Err(e) if e.code == ErrorCode::NotFound && e.message.contains("统筹区") => {
                errors.push(("edit_regions", e.message));
            }
            Err(e) if e.code == ErrorCode::InvalidRequest => errors.push(("edit_rate", e.message)),
            Err(e) => return Err(e.into()),
        }
    }
    let mut view = page(&state, &user).await?;
    view.editing = Some((channel_id, fields));
    view.errors = errors;
    render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
}
