//! The administrator's day-to-day care of staff accounts and channels: list, disable, enable,
//! reset a password, rotate a channel's secret. Administrators only; every change is audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiJson;
use crate::services::accounts::{self, ChannelSummary, StaffSummary};
use crate::services::staff::Password;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/staff", get(list_staff))
        .route("/api/v1/staff/{username}/disable", post(disable_staff))
        .route("/api/v1/staff/{username}/enable", post(enable_staff))
        .route("/api/v1/staff/{username}/password", put(reset_password))
        .route("/api/v1/channels", get(list_channels))
        .route(
            "/api/v1/channels/{channel_id}/disable",
            post(disable_channel),
        )
        .route("/api/v1/channels/{channel_id}/enable", post(enable_channel))
        .route("/api/v1/channels/{channel_id}/secret", put(rotate_secret))
}

/// Lists every staff account (no password hashes). Administrators only.
#[utoipa::path(get, path = "/api/v1/staff", summary = "工作人员列表", tag = "admin",
    responses((status = 200, body = [StaffSummary]), (status = 403, body = ErrorBody)))]
pub async fn list_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
) -> Result<Json<Vec<StaffSummary>>, ApiError> {
    staff.require_admin()?;
    Ok(Json(accounts::list_staff(state.storage.as_ref()).await?))
}

/// Disables an account and ends its sessions. Administrators only; not one's own account.
#[utoipa::path(post, path = "/api/v1/staff/{username}/disable", summary = "停用工作人员账号", tag = "admin",
    params(("username" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn disable_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    accounts::set_staff_disabled(state.storage.as_ref(), &username, true, staff.username()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled account. Administrators only.
#[utoipa::path(post, path = "/api/v1/staff/{username}/enable", summary = "启用工作人员账号", tag = "admin",
    params(("username" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    accounts::set_staff_disabled(state.storage.as_ref(), &username, false, staff.username())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordReset {
    /// 10 to 128 characters.
    password: String,
}

/// Sets a new password for an account and ends its sessions. Administrators only.
#[utoipa::path(put, path = "/api/v1/staff/{username}/password", summary = "重置工作人员密码", tag = "admin",
    params(("username" = String, Path)), request_body = PasswordReset,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    let password = Password::new(req.password)?;
    accounts::reset_staff_password(
        state.storage.as_ref(),
        &username,
        password,
        staff.username(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists every channel with its regions, rate and state (never a secret). Administrators only.
#[utoipa::path(get, path = "/api/v1/channels", summary = "渠道列表", tag = "admin",
    responses((status = 200, body = [ChannelSummary]), (status = 403, body = ErrorBody)))]
pub async fn list_channels(
    State(state): State<AppState>,
    Admin(staff): Admin,
) -> Result<Json<Vec<ChannelSummary>>, ApiError> {
    staff.require_admin()?;
    let now = state.clock.now().timestamp();
    Ok(Json(
        accounts::list_channels(state.storage.as_ref(), now).await?,
    ))
}

/// Disables a channel: its requests are refused with 401 `AUTH_FAILED`. Administrators only.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/disable", summary = "停用渠道", tag = "admin",
    params(("channel_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_channel(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(channel_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    accounts::set_channel_enabled(state.storage.as_ref(), &channel_id, false, staff.username())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled channel. Administrators only.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/enable", summary = "启用渠道", tag = "admin",
    params(("channel_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable_channel(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(channel_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    accounts::set_channel_enabled(state.storage.as_ref(), &channel_id, true, staff.username())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct SecretRotation {
    /// The new HMAC secret, 16 to 256 bytes.
    secret: String,
    /// How long the previous secret is still accepted, seconds (0 to 604 800; default 86 400).
    grace_seconds: Option<i64>,
}

/// Gives a channel a new secret; the previous one is still accepted for the grace period, so the
/// bank switches its servers over without refused requests. Administrators only.
#[utoipa::path(put, path = "/api/v1/channels/{channel_id}/secret", summary = "更换渠道密钥", tag = "admin",
    params(("channel_id" = String, Path)), request_body = SecretRotation,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(channel_id): Path<String>,
    ApiJson(req): ApiJson<SecretRotation>,
) -> Result<StatusCode, ApiError> {
    staff.require_admin()?;
    accounts::rotate_channel_secret(
        state.storage.as_ref(),
        state.master_key.as_ref(),
        &channel_id,
        req.secret,
        req.grace_seconds
            .unwrap_or(accounts::DEFAULT_SECRET_GRACE_SECONDS),
        state.clock.now().timestamp(),
        staff.username(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
