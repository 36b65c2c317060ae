//! Files embedded in the binary (`include_bytes!`) and served with an `ETag` and `Cache-Control`:
//! the API explorer's page and the vendored libraries under `assets/vendor/<name>-<version>/`
//! (each with a `VENDORED.md` naming its source, version, licence and checksum). Nothing is
//! fetched at build or run time.
//!
//! ```ignore
//! static SCRIPT: EmbeddedAsset = EmbeddedAsset::new(
//!     include_bytes!("../assets/vendor/lib-1.0.0/lib.min.js"),
//!     JAVASCRIPT,
//!     IMMUTABLE,
//! );
//! async fn script(headers: HeaderMap) -> Response { SCRIPT.response(&headers) }
//! ```

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// A file under a versioned path: its bytes never change under that path.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A file whose path stays while its content changes with a release (a page): kept, but asked
/// again each time (`If-None-Match` answers 304 while it is the same).
pub const REVALIDATE: &str = "no-cache";

pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

/// An embedded file and how it is served.
pub struct EmbeddedAsset {
    bytes: &'static [u8],
    content_type: &'static str,
    cache_control: &'static str,
    /// Extra headers (a page's `Content-Security-Policy`).
    extra: &'static [(&'static str, &'static str)],
    etag: OnceLock<HeaderValue>,
}

impl EmbeddedAsset {
    pub const fn new(
        bytes: &'static [u8],
        content_type: &'static str,
        cache_control: &'static str,
    ) -> EmbeddedAsset {
        EmbeddedAsset {
            bytes,
            content_type,
            cache_control,
            extra: &[],
            etag: OnceLock::new(),
        }
    }

    /// The same asset served with extra headers as well.
    pub const fn with_headers(
        mut self,
        extra: &'static [(&'static str, &'static str)],
    ) -> EmbeddedAsset {
        self.extra = extra;
        self
    }

    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// A strong entity tag: the first 16 bytes of the content's SHA-256, computed once.
    pub fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.bytes);
            HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
                .unwrap_or(HeaderValue::from_static("\"0\""))
        })
    }

    /// 200 with the body, or 304 when the request's `If-None-Match` names this content.
    pub fn response(&self, request_headers: &HeaderMap) -> Response {
        let etag = self.etag().clone();
        let unchanged = request_headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag.as_bytes()
            });
        let mut response = if unchanged {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            self.bytes.into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(self.cache_control),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if !unchanged {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
        }
        for (name, value) in self.extra {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FILE: EmbeddedAsset = EmbeddedAsset::new(b"console.log(1)", JAVASCRIPT, IMMUTABLE);

    #[test]
    fn a_matching_if_none_match_is_304_without_a_body() {
        let first = FILE.response(&HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], IMMUTABLE);
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", {}", etag.to_str().unwrap())).unwrap(),
        );
        let second = FILE.response(&again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::ETAG], etag);
        let mut other = HeaderMap::new();
        other.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert_eq!(FILE.response(&other).status(), StatusCode::OK);
    }
}
