//! The console's static files, embedded in the binary: our stylesheet and script, the favicon, and
//! the vendored htmx and ECharts (see `assets/vendor/VENDORED.md`). Vendored files live under a
//! versioned path and are cached for a year; ours are revalidated by their ETag.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Path under `/console/assets/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// Versioned (vendored) files never change under their path.
    pub immutable: bool,
}

pub const HTMX: &str = "vendor/htmx-2.0.11/htmx.min.js";
pub const ECHARTS: &str = "vendor/echarts-6.1.0/echarts.min.js";

pub static ASSETS: &[Asset] = &[
    Asset {
        path: "console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/console.css"),
        immutable: false,
    },
    Asset {
        path: "console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/console.js"),
        immutable: false,
    },
    Asset {
        path: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../assets/favicon.svg"),
        immutable: false,
    },
    Asset {
        path: HTMX,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/htmx-2.0.11/htmx.min.js"),
        immutable: true,
    },
    Asset {
        path: ECHARTS,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/echarts-6.1.0/echarts.min.js"),
        immutable: true,
    },
];

/// Each asset's strong ETag (the first 16 bytes of its SHA-256), computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.bytes)[..16])))
        .collect()
});

/// `GET /console/assets/{*path}`.
pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = &ETAGS[index];
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksums recorded in `assets/vendor/VENDORED.md` are those of the embedded files.
    #[test]
    fn vendored_files_match_their_recorded_checksums() {
        let note = include_str!("../assets/vendor/VENDORED.md");
        for asset in ASSETS.iter().filter(|a| a.immutable) {
            let sum = hex::encode(Sha256::digest(asset.bytes));
            let file = asset.path.trim_start_matches("vendor/");
            let line = note
                .lines()
                .find(|l| l.starts_with(&format!("| {file} ")))
                .unwrap_or_else(|| panic!("{file} is not listed in VENDORED.md"));
            assert!(
                line.contains(&sum),
                "{file}: VENDORED.md does not record {sum}"
            );
        }
    }
}
