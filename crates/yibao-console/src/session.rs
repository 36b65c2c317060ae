//! Who is using the console: the staff session in a cookie, and the CSRF token bound to it.
//!
//! The cookie holds the same kind of session token the JSON API takes as a bearer token (stored
//! only as its SHA-256); it is `HttpOnly` and `SameSite=Strict`, and `Secure` when the console is
//! served behind TLS. Every state-changing request must carry the CSRF token, a hash of the
//! session token that a page from another site cannot compute: forms send it as the hidden field
//! `_csrf`, htmx requests as the header `X-CSRF-Token` (from `<body hx-headers>`). Requests whose
//! `Origin` or `Sec-Fetch-Site` says they come from another site are refused before that.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use yibao_server::auth::Staff;
use yibao_server::services::staff::token_hash;
use yibao_server::AppState;

use crate::error::PageError;

/// The session cookie's name.
pub const COOKIE: &str = "yibao_console";
/// The CSRF header htmx sends.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The CSRF form field.
pub const CSRF_FIELD: &str = "_csrf";
/// Largest form body read (an urlencoded form; uploads have their own limits).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Console settings the handlers need.
#[derive(Debug, Clone, Copy, Default)]
pub struct CookiePolicy {
    /// Mark the cookie `Secure` (the console is reached over HTTPS).
    pub secure: bool,
}

/// The session token in the request's cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    yibao_server::middleware::cookie(headers, COOKIE)
        .map(|value| value.trim().to_owned())
        .filter(|t| !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The CSRF token of a session: a hash of its token, so nothing more is stored.
pub fn csrf_of(session_token: &str) -> String {
    let digest = Sha256::digest(format!("yibao-console-csrf\u{0}{session_token}").as_bytes());
    hex::encode(&digest[..16])
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(token: &str, max_age_seconds: i64, policy: CookiePolicy) -> String {
    format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{}",
        if policy.secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that ends the session in the browser.
pub fn cleared_cookie(policy: CookiePolicy) -> String {
    session_cookie("", 0, policy)
}

/// The signed-in staff member using the console.
#[derive(Clone)]
pub struct ConsoleUser {
    /// The same type, with the same scope checks, as the JSON API's.
    pub staff: Staff,
    /// Put in every form as `_csrf`.
    pub csrf: String,
    /// Seals ID numbers into the links of this session's pages ([`ConsoleUser::person_ref`]).
    ref_key: [u8; 32],
}

impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("staff", &self.staff)
            .finish_non_exhaustive()
    }
}

/// Prefix of a sealed person reference in a console URL.
pub const REF_PREFIX: &str = "r.";

impl ConsoleUser {
    pub fn account(&self) -> &yibao_storage::StaffAccount {
        &self.staff.0
    }

    /// An opaque reference to an ID number for this session's links, so that a masked list does
    /// not carry the full number in its HTML, and URLs in the browser's history do not either. It
    /// is sealed with a key derived from the session token (which page scripts cannot read) and
    /// is useless after sign-out.
    pub fn person_ref(&self, id_number: &str) -> String {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let cipher = chacha20poly1305::ChaCha20Poly1305::new((&self.ref_key).into());
        let random = uuid::Uuid::new_v4();
        let nonce_bytes: [u8; 12] = random.as_bytes()[..12].try_into().unwrap_or([0; 12]);
        let sealed = cipher
            .encrypt((&nonce_bytes).into(), id_number.as_bytes())
            .unwrap_or_default();
        format!(
            "{REF_PREFIX}{}{}",
            hex::encode(nonce_bytes),
            hex::encode(sealed)
        )
    }

    /// The ID number behind [`ConsoleUser::person_ref`]; `None` for anything else.
    pub fn resolve_ref(&self, text: &str) -> Option<String> {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let hex_part = text.strip_prefix(REF_PREFIX)?;
        if hex_part.len() > 200 {
            return None;
        }
        let bytes = hex::decode(hex_part).ok()?;
        if bytes.len() <= 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let cipher = chacha20poly1305::ChaCha20Poly1305::new((&self.ref_key).into());
        let plain = cipher.decrypt((&nonce).into(), sealed).ok()?;
        String::from_utf8(plain).ok()
    }
}

fn ref_key_of(session_token: &str) -> [u8; 32] {
    Sha256::digest(format!("yibao-console-person-ref\u{0}{session_token}").as_bytes()).into()
}

pub use yibao_server::auth::cross_site;

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(&parts.headers) else {
            return Err(PageError::SignIn);
        };
        let now = state.clock.now().timestamp();
        let account = state
            .storage
            .session_staff(&token_hash(&token), now)
            .await
            .map_err(|e| PageError::Api(e.into()))?
            .filter(|a| !a.disabled)
            .ok_or(PageError::SignIn)?;
        let csrf = csrf_of(&token);
        let changing = !matches!(parts.method, Method::GET | Method::HEAD);
        if changing {
            if cross_site(&parts.headers) {
                return Err(PageError::CrossSite);
            }
            // A form's token is checked by `CsrfForm` or `verify_csrf`; htmx sends the header.
            if let Some(sent) = parts.headers.get(CSRF_HEADER) {
                if sent.to_str().ok() != Some(csrf.as_str()) {
                    return Err(PageError::CrossSite);
                }
            }
        }
        let path = parts.uri.path();
        if account.must_change_password && !matches!(path, "/console/password" | "/console/logout")
        {
            return Err(PageError::MustChangePassword);
        }
        Ok(ConsoleUser {
            staff: Staff(account),
            csrf,
            ref_key: ref_key_of(&token),
        })
    }
}

/// Checks a form's `_csrf` field (or the htmx header) against the session's token.
pub fn verify_csrf(
    user: &ConsoleUser,
    headers: &HeaderMap,
    field: Option<&str>,
) -> Result<(), PageError> {
    let header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match field.or(header) {
        Some(sent) if sent == user.csrf => Ok(()),
        _ => Err(PageError::CrossSite),
    }
}

/// A signed-in user's urlencoded form, its CSRF field checked: `CsrfForm(user, form)`.
pub struct CsrfForm<T>(pub ConsoleUser, pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let user = ConsoleUser::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| PageError::bad_form("表单内容过长"))?;
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&bytes);
        let field = pairs
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.as_str());
        verify_csrf(&user, &parts.headers, field)?;
        let form: T = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| PageError::bad_form("表单内容不完整，请刷新页面后重新填写"))?;
        Ok(CsrfForm(user, form))
    }
}

/// The pairs of an urlencoded body (for the CSRF field), decoded as a browser encodes them.
fn serde_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn the_session_token_is_read_from_its_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; yibao_console=abc123; b=2".parse().unwrap(),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc123"));
        h.insert(header::COOKIE, "yibao_console=bad;token".parse().unwrap());
        assert_eq!(session_token(&h).as_deref(), Some("bad"));
        h.insert(header::COOKIE, "yibao_console=a%20b".parse().unwrap());
        assert_eq!(session_token(&h), None);
        h.insert(header::COOKIE, "other=1".parse().unwrap());
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        assert_eq!(csrf_of("t1"), csrf_of("t1"));
        assert_ne!(csrf_of("t1"), csrf_of("t2"));
        assert_eq!(csrf_of("t1").len(), 32);
    }

    #[test]
    fn requests_from_other_sites_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_site(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_site(&h));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(!cross_site(&h));
    }

    #[test]
    fn person_references_are_sealed_per_session() {
        let account = yibao_storage::StaffAccount {
            username: "op".into(),
            display_name: "经办".into(),
            role: yibao_storage::Role::Admin,
            region: None,
            station: None,
            password_hash: String::new(),
            disabled: false,
            must_change_password: false,
        };
        let user = |token: &str| ConsoleUser {
            staff: Staff(account.clone()),
            csrf: csrf_of(token),
            ref_key: ref_key_of(token),
        };
        let (a, b) = (user("session-a"), user("session-b"));
        let id = "32060219900101123X";
        let r = a.person_ref(id);
        assert!(!r.contains(id) && r.starts_with(REF_PREFIX));
        assert_eq!(a.resolve_ref(&r).as_deref(), Some(id));
        assert_eq!(b.resolve_ref(&r), None, "another session cannot open it");
        assert_eq!(a.resolve_ref("r.00"), None);
        assert_eq!(a.resolve_ref(id), None);
        assert_ne!(a.person_ref(id), r, "each link is sealed afresh");
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let c = session_cookie("tok", 60, CookiePolicy { secure: true });
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!session_cookie("tok", 60, CookiePolicy::default()).contains("Secure"));
    }
}
