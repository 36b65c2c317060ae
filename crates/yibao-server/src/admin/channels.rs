//! Channels: listed, disabled and enabled, their secrets rotated (the administrator).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::Admin;
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::accounts::ChannelSummary;
use crate::services::channels;
use crate::{AppState, ErrorBody, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(list_channels))
        .routes(routes!(disable_channel))
        .routes(routes!(enable_channel))
        .routes(routes!(rotate_secret))
}

/// Lists every channel with its regions, rate and state (never a secret). Administrators only.
#[utoipa::path(get, path = "/api/v1/channels", summary = "渠道列表", tag = "admin",
    responses((status = 200, body = [ChannelSummary]), (status = 403, body = ErrorBody)))]
pub async fn list_channels(
    State(state): State<AppState>,
    Admin(staff): Admin,
) -> Result<Json<Vec<ChannelSummary>>, ServiceError> {
    Ok(Json(channels::list_channels(&state, &staff).await?))
}

/// Disables a channel: its requests are refused with 401 `AUTH_FAILED`. Administrators only.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/disable", summary = "停用渠道", tag = "admin",
    params(("channel_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_channel(
    State(state): State<AppState>,
    Admin(staff): Admin,
    Path(channel_id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    channels::set_channel_enabled(&state, &staff, &channel_id, false).await?;
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
) -> Result<StatusCode, ServiceError> {
    channels::set_channel_enabled(&state, &staff, &channel_id, true).await?;
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
) -> Result<StatusCode, ServiceError> {
    channels::rotate_channel_secret(&state, &staff, &channel_id, req.secret, req.grace_seconds)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
