//! Channels as the administrator manages them through the admin API and the console: listed,
//! disabled and enabled, their secrets rotated. Each checks that the staff member is the
//! administrator; the changes are audited by [`accounts`].

use crate::auth::Staff;
use crate::services::accounts::{self, ChannelSummary};
use crate::{AppState, ServiceError};

/// Every channel with its regions, rate and state (never a secret). The administrator's.
pub async fn list_channels(
    state: &AppState,
    staff: &Staff,
) -> Result<Vec<ChannelSummary>, ServiceError> {
    staff.require_admin()?;
    let now = state.clock.now().timestamp();
    accounts::list_channels(state.storage.as_ref(), now).await
}

/// Enables a channel, or disables it (its requests are then refused with 401 `AUTH_FAILED`).
/// The administrator's; audited `channel.enable` or `channel.disable`.
pub async fn set_channel_enabled(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    enabled: bool,
) -> Result<(), ServiceError> {
    staff.require_admin()?;
    accounts::set_channel_enabled(
        state.storage.as_ref(),
        channel_id,
        enabled,
        staff.username(),
    )
    .await
}

/// Gives a channel a new secret; the previous one is still accepted for `grace_seconds` (a day
/// when `None`). The administrator's; audited `channel.rotate_secret`.
pub async fn rotate_channel_secret(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    secret: String,
    grace_seconds: Option<i64>,
) -> Result<(), ServiceError> {
    staff.require_admin()?;
    accounts::rotate_channel_secret(
        state.storage.as_ref(),
        state.master_key.as_ref(),
        channel_id,
        secret,
        grace_seconds.unwrap_or(accounts::DEFAULT_SECRET_GRACE_SECONDS),
        state.clock.now().timestamp(),
        staff.username(),
    )
    .await
}
