//! Driving the staff console in tests as a browser would: sign in through the form, keep the
//! session cookie, send the CSRF token with every form, and read the HTML that comes back.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};

use crate::TestServer;

/// A signed-in console session.
pub struct ConsoleSession {
    pub base_url: String,
    pub client: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

/// One part of a multipart form: a text field, or a file (field name, file name, bytes).
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

const BOUNDARY: &str = "----yibaoTestBoundary7MA4YWxkTrZu0gW";

/// The body of a `multipart/form-data` form with this module's boundary (`BOUNDARY`), parts in the order given (the
/// console reads a CSRF field only when it comes before the file).
pub fn multipart_body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            ),
            Part::File(name, file_name, bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: String,
    pub csp: Option<String>,
    pub body: String,
}

impl Page {
    /// Asserts the body contains `text`, printing the page when it does not.
    #[track_caller]
    pub fn expect_text(&self, text: &str) -> &Page {
        assert!(
            self.body.contains(text),
            "expected {text:?} in the page ({}):\n{}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn expect_no_text(&self, text: &str) -> &Page {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in the page ({}):\n{}",
            self.status,
            self.body
        );
        self
    }

    /// The first `href` (or `hx-post`/`action`) that begins with `prefix`.
    pub fn link_starting(&self, prefix: &str) -> Option<String> {
        for attr in ["href=\"", "hx-post=\"", "action=\""] {
            let mut rest = self.body.as_str();
            while let Some(i) = rest.find(attr) {
                rest = &rest[i + attr.len()..];
                let end = rest.find('"').unwrap_or(rest.len());
                let value = &rest[..end];
                if value.starts_with(prefix) {
                    return Some(value.replace("&amp;", "&"));
                }
            }
        }
        None
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

async fn page_of(response: reqwest::Response) -> Page {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = header(LOCATION.as_str());
    let content_type = header("content-type").unwrap_or_default();
    let csp = header("content-security-policy");
    let body = response.text().await.unwrap_or_default();
    Page {
        status,
        location,
        content_type,
        csp,
        body,
    }
}

/// Posts the sign-in form; the page (or redirect) that comes back, and the cookie if one was set.
pub async fn submit_login(
    server: &TestServer,
    username: &str,
    password: &str,
) -> (Page, Option<String>) {
    let client = no_redirects();
    let response = client
        .post(server.url("/console/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("next", "/console/"),
        ])
        .send()
        .await
        .expect("sign in");
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("yibao_console="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| v != "yibao_console=");
    (page_of(response).await, cookie)
}

impl ConsoleSession {
    /// Signs in through the form and reads the CSRF token from the first page.
    pub async fn sign_in(server: &TestServer, username: &str, password: &str) -> ConsoleSession {
        let (page, cookie) = submit_login(server, username, password).await;
        let cookie = cookie.unwrap_or_else(|| panic!("{username} could not sign in: {page:?}"));
        let mut session = ConsoleSession {
            base_url: server.base_url.clone(),
            client: no_redirects(),
            cookie,
            csrf: String::new(),
        };
        let target = page.location.unwrap_or_else(|| "/console/".into());
        let first = session.get(&target).await;
        session.csrf = csrf_in(&first.body).unwrap_or_default();
        session
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{}", self.base_url, path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("GET");
        page_of(response).await
    }

    /// Posts a form with this session's CSRF token, as the page's `<form>` does.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, false).await
    }

    /// Posts as htmx does (header `HX-Request`, the CSRF token in `X-CSRF-Token`).
    pub async fn htmx_post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_raw(path, fields, true).await
    }

    /// Posts exactly these fields (no CSRF token added unless `htmx`).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], htmx: bool) -> Page {
        let mut request = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .header(COOKIE, &self.cookie)
            .form(fields);
        if htmx {
            request = request
                .header("hx-request", "true")
                .header("x-csrf-token", &self.csrf);
        }
        page_of(request.send().await.expect("POST")).await
    }
}

/// The CSRF token a page carries (`<input name="_csrf" value="…">`).
pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Posts a multipart form as the browser does (the CSRF header only when `csrf_header` is given).
pub async fn post_multipart(
    session: &ConsoleSession,
    path: &str,
    parts: &[Part<'_>],
    csrf_header: Option<&str>,
) -> Page {
    session
        .post_multipart_with(path, parts, csrf_header, None)
        .await
}

/// Posts the roster form with an `Origin` header, as a page of that site would.
pub async fn post_multipart_from(
    session: &ConsoleSession,
    parts: &[Part<'_>],
    origin: &str,
) -> Page {
    session
        .post_multipart_with("/console/roster", parts, None, Some(origin))
        .await
}

impl ConsoleSession {
    /// Posts a multipart form as the browser does: the parts as given, the CSRF header only when
    /// `csrf_header` is given, an `Origin` header when `origin` is.
    pub async fn post_multipart_with(
        &self,
        path: &str,
        parts: &[Part<'_>],
        csrf_header: Option<&str>,
        origin: Option<&str>,
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .header(COOKIE, &self.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart_body(parts));
        if let Some(token) = csrf_header {
            request = request.header("x-csrf-token", token);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        page_of(request.send().await.expect("POST multipart")).await
    }
}
