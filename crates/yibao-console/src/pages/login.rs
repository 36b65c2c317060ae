//! 登录、退出、修改密码.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use yibao_server::services::staff::{
    change_own_password, login, token_hash, PasswordChangeError, SESSION_SECONDS,
};
use yibao_server::{AppState, ErrorCode};

use crate::error::safe_next;
use crate::session::{
    cleared_cookie, cross_site, session_cookie, session_token, ConsoleUser, CookiePolicy, CsrfForm,
};
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

#[derive(Template, Default)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub next: String,
    pub username: String,
    pub form_error: Option<String>,
    pub username_error: Option<String>,
    pub password_error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /console/login`: the sign-in form (or, already signed in, where the user was going).
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(query.next.as_deref());
    if let Some(token) = session_token(&headers) {
        let now = state.clock.now().timestamp();
        if let Some(account) = state
            .storage
            .session_staff(&token_hash(&token), now)
            .await?
        {
            if !account.disabled {
                return Ok(see_other(&next, None));
            }
        }
    }
    html(&LoginPage {
        next,
        ..LoginPage::default()
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /console/login`: checks the password through the same service as the API (the same
/// throttling and audit), then sets the session cookie.
pub async fn submit(
    State(state): State<AppState>,
    Extension(policy): Extension<CookiePolicy>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    if cross_site(&headers) {
        return Err(PageError::CrossSite);
    }
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_owned();
    let mut page = LoginPage {
        next: next.clone(),
        username: username.chars().take(32).collect(),
        ..LoginPage::default()
    };
    if username.is_empty() {
        page.username_error = Some("请输入用户名".into());
    }
    if form.password.is_empty() {
        page.password_error = Some("请输入密码".into());
    }
    if page.username_error.is_some() || page.password_error.is_some() {
        return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if username.len() > 64 || form.password.len() > 256 {
        page.form_error = Some("用户名或密码不正确".into());
        return render_with_status(&page, StatusCode::UNAUTHORIZED);
    }
    let address = yibao_server::auth::client_address(
        peer.map(|p| (p.0).0),
        &headers,
        state.client_address_header.as_ref(),
    );
    match login(
        state.storage.as_ref(),
        &username,
        &form.password,
        &address,
        state.clock.now().timestamp(),
    )
    .await
    {
        Ok(session) => {
            let account = state.storage.get_staff(&session.username).await?;
            let target = if account.is_some_and(|a| a.must_change_password) {
                "/console/password".to_owned()
            } else {
                next
            };
            Ok(see_other(
                &target,
                Some(session_cookie(&session.token, SESSION_SECONDS, policy)),
            ))
        }
        Err(refused) => {
            let status = refused.error.code.status();
            page.form_error = Some(match refused.error.code {
                ErrorCode::InvalidCredentials => "用户名或密码不正确".to_owned(),
                _ => refused.error.message,
            });
            let mut response = render_with_status(&page, status)?;
            if let Some(wait) = refused.retry_after_seconds {
                if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    Extension(policy): Extension<CookiePolicy>,
    headers: HeaderMap,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    if let Some(token) = session_token(&headers) {
        state.storage.delete_session(&token_hash(&token)).await?;
    }
    tracing::info!(username = %user.staff.username(), "staff signed out of the console");
    Ok(see_other("/console/login", Some(cleared_cookie(policy))))
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub chrome: Chrome,
    pub forced: bool,
    pub current_error: Option<String>,
    pub new_error: Option<String>,
    pub confirm_error: Option<String>,
}

impl PasswordPage {
    fn new(user: &ConsoleUser) -> PasswordPage {
        PasswordPage {
            chrome: Chrome::new(user, "password", "修改密码"),
            forced: user.account().must_change_password,
            current_error: None,
            new_error: None,
            confirm_error: None,
        }
    }
}

/// `GET /console/password`.
pub async fn password_form(user: ConsoleUser) -> Result<Response, PageError> {
    html(&PasswordPage::new(&user))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /console/password`: the holder sets their own password; every other session of the
/// account ends and this one is renewed.
pub async fn password_submit(
    State(state): State<AppState>,
    Extension(policy): Extension<CookiePolicy>,
    CsrfForm(user, form): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    let mut page = PasswordPage::new(&user);
    if form.current_password.is_empty() {
        page.current_error = Some("请输入当前密码".into());
    }
    if form.new_password != form.confirm_password {
        page.confirm_error = Some("两次输入的新密码不一致".into());
    }
    if page.current_error.is_some() || page.confirm_error.is_some() {
        return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match change_own_password(
        state.storage.as_ref(),
        user.account(),
        &form.current_password,
        &form.new_password,
    )
    .await
    {
        Ok(()) => {}
        Err(PasswordChangeError::WrongCurrent) => {
            page.current_error = Some("当前密码不正确".into());
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(PasswordChangeError::BadNew(e)) => {
            page.new_error = Some(e.message);
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(PasswordChangeError::Other(e)) => return Err(e.into()),
    }
    // Changing the password ended every session; this browser gets a new one.
    let token = yibao_server::services::staff::open_session(
        state.storage.as_ref(),
        user.staff.username(),
        state.clock.now().timestamp(),
    )
    .await?;
    Ok(see_other(
        "/console/?password=changed",
        Some(session_cookie(&token, SESSION_SECONDS, policy)),
    ))
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}
