//! Signing in and out: a staff session (a bearer token) for the API.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::http::ApiRouter;
use crate::json::ApiJson;
use crate::services::staff::{login, Session};
use crate::{AppState, ErrorBody, ErrorCode, ServiceError};

/// This topic's routes, each declared once for the router and the OpenAPI document.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// Unix seconds.
    expires_at: i64,
    username: String,
    /// `admin`, `station_operator`, `tax_collector` or `auditor`.
    role: String,
}

impl From<Session> for LoginResponse {
    fn from(s: Session) -> Self {
        LoginResponse {
            token: s.token,
            expires_at: s.expires_at,
            username: s.username,
            role: s.role.code().to_owned(),
        }
    }
}

/// Staff sign-in: a bearer token valid for 8 hours.
#[utoipa::path(post, path = "/api/v1/auth/login", summary = "工作人员登录", tag = "admin", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "`INVALID_CREDENTIALS`", body = ErrorBody),
        (status = 429, description = "`LOGIN_THROTTLED`: 5 failures for the account or 20 from the address within 15 minutes; `Retry-After` says how long to wait", body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Response> {
    let address = crate::auth::client_address(
        peer.map(|p| (p.0).0),
        &headers,
        state.client_address_header.as_ref(),
    );
    if req.username.len() > 64 || req.password.len() > 256 {
        tracing::warn!(
            address,
            "staff sign-in refused: user name or password too long"
        );
        return Err(ServiceError::of(ErrorCode::InvalidCredentials).into_response());
    }
    match login(
        state.storage.as_ref(),
        &req.username,
        &req.password,
        &address,
        state.clock.now().timestamp(),
    )
    .await
    {
        Ok(session) => Ok(Json(session.into())),
        // The message says how long to wait; Retry-After says it to programs.
        Err(refused) => match refused.retry_after_seconds {
            Some(wait) => {
                Err(([(header::RETRY_AFTER, wait.to_string())], refused.error).into_response())
            }
            None => Err(refused.error.into_response()),
        },
    }
}

/// Ends the session of the token presented.
#[utoipa::path(post, path = "/api/v1/auth/logout", summary = "退出登录", tag = "admin", responses((status = 204)))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::http::StatusCode, ServiceError> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        state
            .storage
            .delete_session(&crate::services::staff::token_hash(token.trim()))
            .await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}
