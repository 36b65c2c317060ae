//! Electronic receipts (社会保险费电子票据): the PDF, the verification URL printed on it (and drawn
//! as a QR code), and the staff reprint (`GET /api/v1/receipts/{no}`, JSON or `.pdf`).
//!
//! Who sees the payer's name in full: the payer's own copy is a proof of payment and carries it
//! (a staff reprint, and a channel's `payer-copy` request, which proves who the payer is with their
//! ID number and name, as the receipt search does). Everything a channel or the public can read
//! with the receipt's numbers alone (the channel `GET` of §8, public verification) masks it,
//! because those numbers are printed on the receipt and whoever has seen a copy has them. The ID
//! number is masked on every PDF.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use yibao_domain::PersonName;
use yibao_receipt_pdf::{render_receipt, ReceiptPdf};
use yibao_storage::collection::ReceiptRecord;

use crate::AppState;
use crate::{ErrorCode, ServiceError};

/// The README section that tells operators how to install the receipt font; the 503 answered
/// without a font names it.
pub const RECEIPT_FONT_README_SECTION: &str = "Receipt font（票据字体）";

/// Where receipts are verified until `public_base_url` is configured.
pub const DEFAULT_PUBLIC_BASE_URL: &str = "http://127.0.0.1:8080";

/// Longest `public_base_url`.
pub const MAX_PUBLIC_BASE_URL_CHARS: usize = 200;

/// The absolute address under which the public reaches this server (`https://host[:port][/prefix]`,
/// no query, no trailing slash): receipts print `{base}/public/receipts/verify?…` and its QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBaseUrl(String);

impl PublicBaseUrl {
    /// Accepts `http://` or `https://`, a host (name, IPv4 or `[IPv6]`) with an optional port, and
    /// an optional path prefix; refuses anything relative, a user or password, a query or fragment,
    /// spaces and non-ASCII, with a Chinese reason.
    pub fn parse(text: &str) -> Result<PublicBaseUrl, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("不能为空，应为完整地址，如 https://yibao.example.gov.cn".into());
        }
        if text.chars().count() > MAX_PUBLIC_BASE_URL_CHARS {
            return Err(format!("最多 {MAX_PUBLIC_BASE_URL_CHARS} 个字符"));
        }
        let Some(rest) = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
        else {
            return Err(format!(
                "“{text}”不是完整地址：应以 http:// 或 https:// 开头，如 https://yibao.example.gov.cn"
            ));
        };
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "“{text}”含空格或非 ASCII 字符（中文域名请写成 xn-- 形式）"
            ));
        }
        if text.contains(['?', '#']) {
            return Err(format!("“{text}”不能带查询参数（?）或片段（#）"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(format!("“{text}”不能含用户名或密码"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, p)) if !h.is_empty() => (h, p.strip_prefix(':').map(Some).unwrap_or(None)),
                _ => return Err(format!("“{text}”的 IPv6 地址应写在 [ ] 中")),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
            && !host.starts_with(['.', '-']);
        if !host_ok {
            return Err(format!("“{text}”缺少有效的主机名"));
        }
        if let Some(port) = port {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(format!("“{text}”的端口应为 1 至 65535"));
            }
        }
        if path.contains("//") {
            return Err(format!("“{text}”的路径不能含 //"));
        }
        Ok(PublicBaseUrl(text.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The public verification URL of one receipt.
    pub fn verify_url(&self, receipt: &ReceiptRecord) -> String {
        format!(
            "{}/public/receipts/verify?code={}&number={}&check_code={}",
            self.0, receipt.receipt_code, receipt.receipt_number, receipt.check_code
        )
    }
}

impl Default for PublicBaseUrl {
    fn default() -> Self {
        PublicBaseUrl(DEFAULT_PUBLIC_BASE_URL.to_owned())
    }
}

impl std::fmt::Display for PublicBaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the payer's name is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayerName {
    /// The payer's own copy, a proof of payment: the name in full.
    Full,
    /// Anyone holding only the receipt's numbers: masked (`张*华`).
    Masked,
}

/// A name as the public and the channels see it (`张*华`); `*` for one that no longer parses.
pub fn masked_name(name: &str) -> String {
    PersonName::parse(name).map_or_else(|_| "*".into(), |n| n.masked())
}

/// The answer when no font is loaded: 503, naming the README section that installs one.
pub fn font_missing() -> ServiceError {
    ServiceError::new(
        ErrorCode::ServiceUnavailable,
        format!(
            "票据PDF暂不可用：服务器没有中文字体。请运维按 README 的“{RECEIPT_FONT_README_SECTION}”一节\
             安装 Debian 软件包 fonts-wqy-microhei（以 root 运行 scripts/install-fonts）或用配置项 \
             receipt_font 指定字体后重启；此前可使用 JSON 格式"
        ),
    )
}

/// Receipts rendered with the fallback fonts at once: each reads them from disk (about 100 MB),
/// so a burst of receipts of rare names costs one such read at a time, not one per request.
static FALLBACK_RENDERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`render_pdf`] on a blocking thread: rendering (and, for a rare character, reading the
/// fallback fonts) takes from milliseconds to a second of CPU and disk, which must not hold one of
/// the server's few async workers.
pub async fn render_pdf_off_thread(
    state: &AppState,
    receipt: &ReceiptRecord,
    payer_name: PayerName,
) -> Result<Vec<u8>, ServiceError> {
    let (state, receipt) = (state.clone(), receipt.clone());
    tokio::task::spawn_blocking(move || render_pdf(&state, &receipt, payer_name))
        .await
        .map_err(|e| ServiceError::internal("receipt pdf", e))?
}

/// Renders a stored receipt with the configured CJK font; the ID number masked, the name as asked.
pub fn render_pdf(
    state: &AppState,
    receipt: &ReceiptRecord,
    payer_name: PayerName,
) -> Result<Vec<u8>, ServiceError> {
    let Some(font) = &state.receipt_font else {
        return Err(font_missing());
    };
    let components: Vec<(String, i64)> =
        serde_json::from_str::<Vec<serde_json::Value>>(&receipt.components)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["amount"].as_i64()?)))
            .filter(|(_, amount)| *amount > 0)
            .collect();
    let parts: Vec<(&str, i64)> = components.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let name = match payer_name {
        PayerName::Full => PersonName::parse(&receipt.payer_name)
            .map_or_else(|_| receipt.payer_name.clone(), |n| n.as_str().to_owned()),
        PayerName::Masked => masked_name(&receipt.payer_name),
    };
    let id = receipt.id_number.masked();
    let verify_url = state.public_base_url.verify_url(receipt);
    let verify_hint = format!("扫码或访问以下地址查验：{verify_url}");
    let region_name = receipt
        .issuer
        .trim_start_matches("国家税务总局")
        .trim_end_matches("税务局");
    let item_name = yibao_domain::item_name_zh(receipt.bought_back_year());
    let pdf = ReceiptPdf {
        title: "社会保险费电子票据",
        receipt_code: &receipt.receipt_code,
        receipt_number: &receipt.receipt_number,
        check_code: &receipt.check_code,
        issued_on: receipt.issued_on,
        payer_name: &name,
        payer_id_masked: &id,
        insured_number: receipt.insured_number.as_deref(),
        item_name: &item_name,
        fee_year: receipt.fee_year.get(),
        components: &parts,
        total_fen: receipt.amount_fen.as_fen(),
        issuer: &receipt.issuer,
        region_name,
        cover_from: receipt.cover_starts_on,
        bought_back_year: receipt.bought_back_year(),
        voided: receipt.status == yibao_domain::ReceiptStatus::Voided,
        verify_hint: &verify_hint,
        verify_url: &verify_url,
    };
    // The fallback fonts are read from disk for this receipt alone, when it needs them, and only
    // those it is drawn with (each found by reading the fallbacks without their outlines).
    let with_fallbacks = || {
        let _one_at_a_time = FALLBACK_RENDERS.lock().unwrap_or_else(|e| e.into_inner());
        let (chain, skipped) = font
            .with_fallbacks_for(&pdf, &state.receipt_fallback_fonts)
            .map_err(pdf_error)?;
        for (path, err) in skipped {
            tracing::warn!(path = %path.display(), %err, "receipt fallback font not loaded");
        }
        render_receipt(&pdf, &chain).map_err(pdf_error)
    };
    if state.receipt_fallback_fonts.is_empty() {
        return render_receipt(&pdf, font).map_err(pdf_error);
    }
    // A variation sequence (葛 + U+E0100) is drawn with the variant glyph of the first font of the
    // chain that has it; the main font has none (no cmap format 14), so without the fallbacks the
    // selector would be dropped silently.
    if name
        .chars()
        .any(yibao_domain::person_name::is_variation_selector)
    {
        return with_fallbacks();
    }
    match render_receipt(&pdf, font) {
        // A character the main font lacks (a rare character of a name).
        Err(yibao_receipt_pdf::ReceiptPdfError::MissingGlyph { .. }) => with_fallbacks(),
        rendered => rendered.map_err(pdf_error),
    }
}

/// The answer when a receipt could not be rendered as a PDF.
fn pdf_error(e: yibao_receipt_pdf::ReceiptPdfError) -> ServiceError {
    match e.code() {
        "RECEIPT_FONT_UNAVAILABLE" => {
            tracing::warn!(error = %e, "receipt pdf not rendered: font");
            font_missing()
        }
        // A character no font of the chain draws (the error names it, U+XXXX): not a passing
        // outage, and the JSON receipt still works.
        "RECEIPT_GLYPH_MISSING" => {
            // Not `%e`: the message quotes the character, which may be part of a name.
            tracing::warn!(
                code = e.code(),
                "receipt pdf not rendered: a character no receipt font draws"
            );
            ServiceError::new(
                ErrorCode::ReceiptGlyphMissing,
                format!("票据PDF无法生成：{e}；此前可使用 JSON 格式"),
            )
        }
        "INVALID_RECEIPT" => {
            tracing::warn!(error = %e, "receipt pdf not rendered");
            ServiceError::new(
                ErrorCode::ServiceUnavailable,
                format!("票据PDF无法生成：{e}；可使用 JSON 格式"),
            )
        }
        _ => ServiceError::internal("receipt pdf", e),
    }
}

/// A PDF answer, with a file name a clerk can file.
pub fn pdf_response(receipt: &ReceiptRecord, pdf: Vec<u8>) -> Response {
    let disposition = format!(
        "inline; filename=\"receipt-{}-{}.pdf\"",
        receipt.receipt_code, receipt.receipt_number
    );
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_base_url_accepts_absolute_http_urls() {
        for (input, stored) in [
            (
                "https://yibao.example.gov.cn",
                "https://yibao.example.gov.cn",
            ),
            (
                "https://yibao.example.gov.cn/",
                "https://yibao.example.gov.cn",
            ),
            ("http://10.1.2.3:8080/yibao/", "http://10.1.2.3:8080/yibao"),
            ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
            (" https://a.b ", "https://a.b"),
        ] {
            assert_eq!(
                PublicBaseUrl::parse(input).unwrap().as_str(),
                stored,
                "{input}"
            );
        }
    }

    #[test]
    fn public_base_url_refuses_relative_and_malformed_values() {
        for input in [
            "",
            "/public",
            "yibao.example.gov.cn",
            "ftp://yibao.example.gov.cn",
            "https://",
            "https:///x",
            "https://user:pw@host",
            "https://host?x=1",
            "https://host#top",
            "https://host:0",
            "https://host:99999",
            "https://主机.cn",
            "https://host name",
            "https://[::1",
        ] {
            let err = PublicBaseUrl::parse(input).unwrap_err();
            assert!(!err.is_empty() && !err.is_ascii(), "{input}: {err}");
        }
    }

    /// A name the registry accepts with a character no receipt font draws: a 422 naming the code
    /// point, not a 503 that tells the counter to retry.
    #[test]
    fn a_glyph_no_font_has_is_a_clear_error_naming_the_code_point() {
        let err = pdf_error(yibao_receipt_pdf::ReceiptPdfError::MissingGlyph {
            field: "交款人",
            ch: '\u{2EBF0}',
        });
        assert_eq!(err.code, ErrorCode::ReceiptGlyphMissing);
        assert_eq!(err.code.as_str(), "RECEIPT_GLYPH_MISSING");
        assert_eq!(
            err.code.status(),
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        assert!(err.message.contains("U+2EBF0"), "{}", err.message);
        assert!(err.message.contains("交款人"), "{}", err.message);
        assert!(err.message.contains("JSON"), "{}", err.message);
    }

    #[test]
    fn the_font_message_names_a_readme_section_that_exists() {
        let message = font_missing().message;
        assert!(message.contains(RECEIPT_FONT_README_SECTION), "{message}");
        assert!(message.contains("scripts/install-fonts"), "{message}");
        assert!(message.contains("fonts-wqy-microhei"), "{message}");
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        )
        .expect("README.md");
        let heading = format!("## {RECEIPT_FONT_README_SECTION}");
        let section = readme
            .split_once(&heading)
            .unwrap_or_else(|| panic!("README has no section {heading:?}"))
            .1;
        let section = section.split("\n## ").next().unwrap_or_default();
        assert!(section.contains("scripts/install-fonts"), "{section}");
        assert!(section.contains("fonts-wqy-microhei"), "{section}");
        assert!(section.contains("receipt_font"), "{section}");
    }
}
