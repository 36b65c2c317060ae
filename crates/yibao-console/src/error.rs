//! What a console page shows when something goes wrong: always a Chinese page (or, for an htmx
//! request, a fragment in place), never a JSON body, an English message or a stack trace.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use yibao_server::{ErrorCode, ServiceError};

/// An error a console handler returns. The console's middleware ([`crate::finish`]) turns it into
/// a page or a fragment, knowing whether htmx asked.
#[derive(Debug, Clone)]
pub enum PageError {
    /// No session, or it ended: to the sign-in page.
    SignIn,
    /// The account must replace its temporary password first.
    MustChangePassword,
    /// A state-changing request without this session's CSRF token, or from another site.
    CrossSite,
    /// A form that could not be read at all (fields are checked by the page itself).
    BadForm(String),
    /// A refusal or failure from the services, with its code and Chinese message.
    Api(ServiceError),
}

impl PageError {
    pub fn bad_form(message: &str) -> PageError {
        PageError::BadForm(message.to_owned())
    }

    pub fn not_found(message: &str) -> PageError {
        PageError::Api(ServiceError::new(ErrorCode::NotFound, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PageError::SignIn | PageError::MustChangePassword => StatusCode::SEE_OTHER,
            PageError::CrossSite => StatusCode::FORBIDDEN,
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::Api(e) => e.code.status(),
        }
    }

    /// The heading and the message the page shows.
    pub fn texts(&self) -> (&'static str, String) {
        match self {
            PageError::SignIn => ("请先登录", "登录已失效，请重新登录".into()),
            PageError::MustChangePassword => ("请修改密码", "请先设置您自己的密码".into()),
            PageError::CrossSite => (
                "请求无法确认",
                "页面已过期或请求不是从本系统发出，请刷新页面后重试".into(),
            ),
            PageError::BadForm(m) => ("表单有误", m.clone()),
            PageError::Api(e) => (heading_of(e.code), e.message.clone()),
        }
    }
}

fn heading_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Forbidden | ErrorCode::RegionNotAllowed => "无权查看或办理",
        ErrorCode::NotFound => "没有找到",
        ErrorCode::AuthRequired | ErrorCode::InvalidCredentials => "请先登录",
        ErrorCode::InternalError | ErrorCode::ServiceUnavailable => "系统暂时无法处理",
        ErrorCode::PayloadTooLarge => "文件过大",
        _ => "无法办理",
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        PageError::Api(error)
    }
}

impl From<yibao_storage::StorageError> for PageError {
    fn from(error: yibao_storage::StorageError) -> Self {
        PageError::Api(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // Rendered by `crate::finish`, which knows whether htmx asked and the request id.
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
    pub request_id: &'a str,
    pub fragment: bool,
}

/// The page (or fragment) for an error.
pub fn render(error: &PageError, htmx: bool, request_id: &str, next: &str) -> Response {
    match error {
        PageError::SignIn | PageError::MustChangePassword => {
            let target = if matches!(error, PageError::SignIn) {
                format!("/console/login?next={}", encode_next(next))
            } else {
                "/console/password".to_owned()
            };
            if htmx {
                // htmx follows redirects inside its request; this makes the whole page go.
                let mut r = StatusCode::NO_CONTENT.into_response();
                if let Ok(v) = HeaderValue::from_str(&target) {
                    r.headers_mut().insert("hx-redirect", v);
                }
                r
            } else {
                let mut r = StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = HeaderValue::from_str(&target) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
        }
        _ => {
            let (heading, message) = error.texts();
            let page = ErrorPage {
                heading,
                message: &message,
                request_id,
                fragment: htmx,
            };
            let body = page.render().unwrap_or_else(|_| message.clone());
            let mut r = (
                error.status(),
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response();
            if htmx {
                // Show the message where the user is looking, whatever the form targeted.
                r.headers_mut()
                    .insert("hx-retarget", HeaderValue::from_static("#flash"));
                r.headers_mut()
                    .insert("hx-reswap", HeaderValue::from_static("innerHTML"));
            }
            r
        }
    }
}

/// Only console paths may be a `next` target (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && !n.starts_with("/console//")
                && !n.contains('\\')
                && !n.starts_with("/console/logout") =>
        {
            n.to_owned()
        }
        _ => "/console/".to_owned(),
    }
}

fn encode_next(next: &str) -> String {
    let mut out = String::new();
    for b in safe_next(Some(next)).bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/console/persons")), "/console/persons");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/");
        assert_eq!(safe_next(Some("//evil.example/")), "/console/");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console/");
        assert_eq!(safe_next(Some("/console/logout")), "/console/");
        assert_eq!(safe_next(None), "/console/");
    }
}
