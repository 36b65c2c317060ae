//! Staff accounts: added, listed, disabled and enabled, passwords reset (the administrator).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use yibao_domain::StationCode;
use yibao_storage::Role;

use super::region_of;
use crate::auth::Admin;
use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::accounts;
use crate::services::accounts::StaffSummary;
use crate::services::staff::{create_staff, NewStaff, Password};
use crate::{AppState, ErrorBody, ErrorCode, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(add_staff, list_staff))
        .routes(routes!(disable_staff))
        .routes(routes!(enable_staff))
        .routes(routes!(reset_password))
}

#[derive(Deserialize, ToSchema)]
pub struct NewStaffRequest {
    username: String,
    display_name: String,
    /// `admin`, `station_operator`, `tax_collector` or `auditor`.
    role: String,
    region: Option<String>,
    station: Option<String>,
    password: String,
}

/// Creates a staff account (center administrator only).
#[utoipa::path(post, path = "/api/v1/staff", summary = "新增工作人员", tag = "admin", request_body = NewStaffRequest,
    responses((status = 201), (status = 403, body = ErrorBody), (status = 404, description = "`NOT_FOUND`: the region is not registered", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "`INVALID_REGION` or `INVALID_PERSON`: the region or station code is malformed", body = ErrorBody)))]
pub async fn add_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
    ApiJson(req): ApiJson<NewStaffRequest>,
) -> Result<axum::http::StatusCode, ServiceError> {
    staff.require_admin()?;
    let role = Role::from_code(&req.role).ok_or_else(|| {
        ServiceError::new(
            ErrorCode::InvalidRequest,
            "角色应为 admin、station_operator、tax_collector 或 auditor",
        )
    })?;
    let new = NewStaff {
        temporary_password: true,
        username: req.username,
        display_name: req.display_name,
        role,
        region: req.region.as_deref().map(region_of).transpose()?,
        station: req.station.as_deref().map(StationCode::parse).transpose()?,
        password: Password::new(req.password)?,
    };
    create_staff(state.storage.as_ref(), new, staff.username()).await?;
    Ok(axum::http::StatusCode::CREATED)
}

/// Lists every staff account (no password hashes). Administrators only.
#[utoipa::path(get, path = "/api/v1/staff", summary = "工作人员列表", tag = "admin",
    responses((status = 200, body = [StaffSummary]), (status = 403, body = ErrorBody)))]
pub async fn list_staff(
    State(state): State<AppState>,
    Admin(staff): Admin,
) -> Result<Json<Vec<StaffSummary>>, ServiceError> {
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
) -> Result<StatusCode, ServiceError> {
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
) -> Result<StatusCode, ServiceError> {
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
) -> Result<StatusCode, ServiceError> {
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
