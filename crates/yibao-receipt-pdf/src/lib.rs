//! Renders the electronic receipt of a paid social-insurance contribution (社会保险费电子票据) as a
//! one-page A5-landscape PDF.
//!
//! The PDF embeds a *subset* of a CJK TrueType/OpenType font (only the glyphs the receipt uses, so
//! a receipt is a few tens of KiB) as a CID font with a ToUnicode map, so its text can be searched,
//! copied and extracted (`pdftotext`). Nothing is fetched at build or run time: the font comes from
//! a file on the machine, by default Debian's `fonts-wqy-microhei` (see [`DEFAULT_FONT_PATHS`]);
//! `scripts/install-fonts` installs it.
//!
//! Amounts are integer fen, printed as yuan (`430.00`) and in Chinese capital numerals
//! (`肆佰叁拾元整`), both with integer arithmetic only. The output is deterministic: the same
//! receipt and font give the same bytes.
//!
//! ```no_run
//! use yibao_receipt_pdf::{find_default_font, render_receipt, ReceiptFont, ReceiptFonts, ReceiptPdf};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let path = find_default_font().ok_or("no receipt font installed")?;
//! let fonts = ReceiptFonts::new(ReceiptFont::load(&path)?);
//! let receipt = ReceiptPdf {
//!     title: "社会保险费电子票据",
//!     receipt_code: "32060125",
//!     receipt_number: "0000012345",
//!     check_code: "8F3A2C",
//!     issued_on: chrono::NaiveDate::from_ymd_opt(2025, 1, 15).ok_or("date")?,
//!     payer_name: "张*",
//!     payer_id_masked: "320602**********12",
//!     insured_number: Some("3206000000000011"),
//!     item_name: "城乡居民基本医疗保险",
//!     fee_year: 2025,
//!     components: &[("基本医疗保险", 38000), ("大病保险", 5000)],
//!     total_fen: 43000,
//!     issuer: "国家税务总局南通市税务局",
//!     region_name: "南通市海门区",
//!     cover_from: None,
//!     bought_back_year: None,
//!     voided: false,
//!     verify_hint: "扫码或访问以下地址查验：https://example.invalid/public/receipts/verify?code=32060125",
//!     verify_url: "https://example.invalid/public/receipts/verify?code=32060125",
//! };
//! let pdf: Vec<u8> = render_receipt(&receipt, &fonts)?;
//! # let _ = pdf;
//! # Ok(())
//! # }
//! ```

mod coverage;
mod font;
mod money;
mod render;

use std::path::PathBuf;

pub use coverage::{BlockCoverage, HanBlock, HAN_BLOCKS, MISSING_EXAMPLES};
pub use font::{
    find_default_fallback_fonts, find_default_font, ChainCoverage, ReceiptFont, ReceiptFonts,
    DEFAULT_FACE_INDEX, DEFAULT_FALLBACK_FONT_PATHS, DEFAULT_FONT_PATHS, FALLBACK_FONTS_CONFIG_KEY,
    FALLBACK_FONTS_ENV, FALLBACK_FONT_PACKAGES, FONT_PACKAGE, FONT_PATH_CONFIG_KEY, FONT_PATH_ENV,
    MAX_FALLBACK_FONTS, MAX_FONT_BYTES,
};
pub use money::{capital_amount, format_yuan, MAX_RECEIPT_FEN};
pub use render::render_receipt;

/// Most component lines (品目) one receipt lists; a resident contribution has one to three.
pub const MAX_COMPONENTS: usize = 6;

/// What one receipt shows. All text is borrowed; the caller decides what is masked.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptPdf<'a> {
    /// Title printed at the top, e.g. `社会保险费电子票据`. 1 to 24 characters.
    pub title: &'a str,
    /// 票据代码: 8 ASCII digits.
    pub receipt_code: &'a str,
    /// 票据号码: 10 ASCII digits.
    pub receipt_number: &'a str,
    /// 校验码: 6 ASCII letters or digits.
    pub check_code: &'a str,
    /// 开票日期.
    pub issued_on: chrono::NaiveDate,
    /// 交款人, masked or full as the caller decides. 1 to 40 characters.
    pub payer_name: &'a str,
    /// 交款人证件号码, normally masked, e.g. `320602**********12`. 1 to 40 characters.
    pub payer_id_masked: &'a str,
    /// 参保编号 (the insured number), printed first in 备注 when known: 16 ASCII digits or `X`.
    pub insured_number: Option<&'a str>,
    /// 费种, e.g. `城乡居民基本医疗保险`. 1 to 40 characters.
    pub item_name: &'a str,
    /// 缴费年度 (费款所属期), 1990 to 2199.
    pub fee_year: u16,
    /// 品目: (name in Chinese, amount in fen), e.g. `("基本医疗保险", 38000)`. 1 to
    /// [`MAX_COMPONENTS`] lines, names of 1 to 40 characters, amounts 0 to [`MAX_RECEIPT_FEN`].
    pub components: &'a [(&'a str, i64)],
    /// 金额合计 in fen: must equal the sum of the components.
    pub total_fen: i64,
    /// 收款单位, e.g. `国家税务总局南通市税务局`. 1 to 60 characters.
    pub issuer: &'a str,
    /// 参保地, e.g. `南通市海门区`. 1 to 40 characters.
    pub region_name: &'a str,
    /// The first day covered for the year paid (待遇享受时间, the 2025 rules), printed in 备注 when
    /// known.
    pub cover_from: Option<chrono::NaiveDate>,
    /// The gap year a back-payment (补缴修复) bought back, printed in 备注 with the note that the
    /// year stays without cover; `None` on a year's contribution.
    pub bought_back_year: Option<u16>,
    /// Draws a large red 作废 stamp across the receipt.
    pub voided: bool,
    /// One plain-text line (wrapped as needed) telling how to verify the receipt, e.g.
    /// `查验：https://…/public/receipts/verify?code=…&number=…&check_code=…`. At most 400
    /// characters; may be empty.
    pub verify_hint: &'a str,
    /// The absolute `http://` or `https://` URL where the receipt is verified, drawn as a QR code
    /// beside the hint. At most [`MAX_VERIFY_URL_CHARS`] printable ASCII characters; empty draws
    /// no QR code.
    pub verify_url: &'a str,
}

/// Longest verification URL drawn as a QR code.
pub const MAX_VERIFY_URL_CHARS: usize = 400;

/// Why a font could not be loaded or a receipt could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptPdfError {
    #[error(
        "找不到票据字体文件 {path}：请安装 Debian 软件包 fonts-wqy-microhei（以 root 运行 \
         scripts/install-fonts，或 apt-get install fonts-wqy-microhei），或用配置项 \
         receipt_font（环境变量 YIBAO_RECEIPT_FONT）指定一个含中文字形的 \
         TrueType/OpenType 字体文件"
    )]
    FontMissing { path: PathBuf },
    #[error(
        "找不到票据后备字体文件 {path}：请以 root 运行 scripts/install-fonts（安装 Debian 软件包 \
         fonts-hanazono、fonts-babelstone-han），或改正配置项 receipt_fallback_fonts（环境变量 \
         YIBAO_RECEIPT_FALLBACK_FONTS）"
    )]
    FallbackFontMissing { path: PathBuf },
    #[error("读取票据字体文件 {path} 失败：{source}")]
    FontRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("票据字体文件过大：{bytes} 字节，上限为 64 MiB")]
    FontTooLarge { bytes: u64 },
    #[error("票据字体无法解析：{0}")]
    FontInvalid(String),
    #[error("票据字体的字形格式不受支持：需要 TrueType（glyf）或 CFF 轮廓")]
    FontUnsupported,
    #[error("票据字体的授权不允许嵌入或子集化，请改用 fonts-wqy-microhei")]
    FontNotEmbeddable,
    #[error(
        "票据字体缺少中文字形（如“{ch}”），请改用含中文的字体，如 Debian 软件包 fonts-wqy-microhei"
    )]
    FontLacksCjk { ch: char },
    #[error("票据后备字体最多 {max} 个（配置项 receipt_fallback_fonts）")]
    TooManyFallbackFonts { max: usize },
    #[error(
        "{field}中的字符“{ch}”（U+{code:04X}）在票据字体及其后备字体中都没有字形，无法绘制：\
         请运维以 root 运行 scripts/install-fonts 安装后备字体（fonts-hanazono、\
         fonts-babelstone-han），或用配置项 receipt_fallback_fonts 指定含此字的字体后重启",
        code = u32::from(*ch)
    )]
    MissingGlyph { field: &'static str, ch: char },
    #[error("{field}不合规：{reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("票据品目应有 1 到 {max} 项，实有 {count} 项")]
    ComponentCount { count: usize, max: usize },
    #[error("{field}超出允许范围：{fen} 分（应为 0 到 1000 亿元）")]
    AmountOutOfRange { field: &'static str, fen: i64 },
    #[error("金额合计 {total} 元与各品目之和 {sum} 元不符", total = format_yuan(*total_fen), sum = format_yuan(*sum_fen))]
    TotalMismatch { total_fen: i64, sum_fen: i64 },
    #[error("票据字体子集化失败：{0}")]
    Subset(String),
    #[error("压缩 PDF 内容失败：{0}")]
    Compress(#[source] std::io::Error),
}

impl ReceiptPdfError {
    /// Stable code for APIs and logs: a missing or unusable font is the operator's to fix, a bad
    /// receipt is the caller's.
    pub fn code(&self) -> &'static str {
        match self {
            ReceiptPdfError::FontMissing { .. }
            | ReceiptPdfError::FallbackFontMissing { .. }
            | ReceiptPdfError::FontRead { .. }
            | ReceiptPdfError::FontTooLarge { .. }
            | ReceiptPdfError::FontInvalid(_)
            | ReceiptPdfError::FontUnsupported
            | ReceiptPdfError::FontNotEmbeddable
            | ReceiptPdfError::FontLacksCjk { .. }
            | ReceiptPdfError::TooManyFallbackFonts { .. } => "RECEIPT_FONT_UNAVAILABLE",
            ReceiptPdfError::MissingGlyph { .. } => "RECEIPT_GLYPH_MISSING",
            ReceiptPdfError::InvalidField { .. }
            | ReceiptPdfError::ComponentCount { .. }
            | ReceiptPdfError::AmountOutOfRange { .. }
            | ReceiptPdfError::TotalMismatch { .. } => "INVALID_RECEIPT",
            ReceiptPdfError::Subset(_) | ReceiptPdfError::Compress(_) => "RECEIPT_RENDER_FAILED",
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ReceiptPdfError {
    ReceiptPdfError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// Free text: `min..=max` characters, no control characters.
fn check_text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), ReceiptPdfError> {
    let count = value.chars().count();
    if count < min || count > max {
        return Err(invalid(
            field,
            if min == 0 {
                format!("最多 {max} 个字符，实有 {count} 个")
            } else {
                format!("应为 {min} 到 {max} 个字符，实有 {count} 个")
            },
        ));
    }
    if value.trim().chars().count() < min {
        return Err(invalid(field, "不能为空白"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(field, format!("含控制字符 U+{:04X}", u32::from(c))));
    }
    Ok(())
}

/// Exactly `len` ASCII characters accepted by `ok`.
fn check_code(
    field: &'static str,
    value: &str,
    len: usize,
    what: &str,
    ok: fn(&u8) -> bool,
) -> Result<(), ReceiptPdfError> {
    if value.len() != len || !value.as_bytes().iter().all(ok) {
        let shown: String = value.chars().take(24).collect();
        return Err(invalid(
            field,
            format!("应为 {len} 位{what}，收到“{shown}”"),
        ));
    }
    Ok(())
}

/// Empty, or an absolute http(s) URL of printable ASCII that fits a QR code.
fn check_verify_url(url: &str) -> Result<(), ReceiptPdfError> {
    if url.is_empty() {
        return Ok(());
    }
    if url.len() > MAX_VERIFY_URL_CHARS {
        return Err(invalid(
            "查验地址",
            format!("最多 {MAX_VERIFY_URL_CHARS} 个字符，实有 {} 个", url.len()),
        ));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("查验地址", "只能含可打印的 ASCII 字符，不能有空格"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
        return Err(invalid(
            "查验地址",
            "应为以 http:// 或 https:// 开头的完整地址",
        ));
    }
    Ok(())
}

impl ReceiptPdf<'_> {
    /// Checks every field's shape and bounds and that the total is the sum of the components.
    /// [`render_receipt`] calls it; callers may call it earlier to refuse bad data up front.
    pub fn validate(&self) -> Result<(), ReceiptPdfError> {
        check_text("票据标题", self.title, 1, 24)?;
        check_code("票据代码", self.receipt_code, 8, "数字", u8::is_ascii_digit)?;
        check_code(
            "票据号码",
            self.receipt_number,
            10,
            "数字",
            u8::is_ascii_digit,
        )?;
        check_code(
            "校验码",
            self.check_code,
            6,
            "字母或数字",
            u8::is_ascii_alphanumeric,
        )?;
        check_text("交款人", self.payer_name, 1, 40)?;
        check_text("交款人证件号码", self.payer_id_masked, 1, 40)?;
        if let Some(number) = self.insured_number {
            check_code("参保编号", number, 16, "数字或X", |b| {
                b.is_ascii_digit() || *b == b'X'
            })?;
        }
        check_text("费种", self.item_name, 1, 40)?;
        if !(1990..=2199).contains(&self.fee_year) {
            return Err(invalid(
                "缴费年度",
                format!("应在 1990 到 2199 之间，收到 {}", self.fee_year),
            ));
        }
        check_text("收款单位", self.issuer, 1, 60)?;
        check_text("参保地", self.region_name, 1, 40)?;
        check_text("查验提示", self.verify_hint, 0, 400)?;
        check_verify_url(self.verify_url)?;
        if self.components.is_empty() || self.components.len() > MAX_COMPONENTS {
            return Err(ReceiptPdfError::ComponentCount {
                count: self.components.len(),
                max: MAX_COMPONENTS,
            });
        }
        let mut sum: i64 = 0;
        for &(name, fen) in self.components {
            check_text("品目名称", name, 1, 40)?;
            if !(0..=MAX_RECEIPT_FEN).contains(&fen) {
                return Err(ReceiptPdfError::AmountOutOfRange {
                    field: "品目金额",
                    fen,
                });
            }
            sum = sum
                .checked_add(fen)
                .filter(|s| *s <= MAX_RECEIPT_FEN)
                .ok_or(ReceiptPdfError::AmountOutOfRange {
                    field: "品目金额之和",
                    fen: MAX_RECEIPT_FEN.saturating_add(1),
                })?;
        }
        if !(0..=MAX_RECEIPT_FEN).contains(&self.total_fen) {
            return Err(ReceiptPdfError::AmountOutOfRange {
                field: "金额合计",
                fen: self.total_fen,
            });
        }
        if sum != self.total_fen {
            return Err(ReceiptPdfError::TotalMismatch {
                total_fen: self.total_fen,
                sum_fen: sum,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> ReceiptPdf<'static> {
        ReceiptPdf {
            title: "社会保险费电子票据",
            receipt_code: "32060125",
            receipt_number: "0000012345",
            check_code: "8F3A2C",
            issued_on: chrono::NaiveDate::from_ymd_opt(2025, 1, 15).unwrap(),
            payer_name: "张*",
            payer_id_masked: "320602**********12",
            insured_number: Some("3206000000000011"),
            item_name: "城乡居民基本医疗保险",
            fee_year: 2025,
            components: &[("基本医疗保险", 38000), ("大病保险", 5000)],
            total_fen: 43000,
            issuer: "国家税务总局南通市税务局",
            region_name: "南通市海门区",
            cover_from: None,
            bought_back_year: None,
            voided: false,
            verify_hint: "查验：https://yibao.example/public/receipts/verify",
            verify_url: "https://yibao.example/public/receipts/verify?code=32060125",
        }
    }

    #[test]
    fn a_good_receipt_validates() {
        sample().validate().unwrap();
    }

    #[test]
    fn refuses_bad_codes() {
        let mut r = sample();
        r.receipt_code = "3206012";
        assert!(matches!(
            r.validate(),
            Err(ReceiptPdfError::InvalidField {
                field: "票据代码",
                ..
            })
        ));
        let mut r = sample();
        r.receipt_number = "000001234５";
        assert!(r.validate().is_err());
        let mut r = sample();
        r.check_code = "8F3A2-";
        let err = r.validate().unwrap_err();
        assert!(err.to_string().contains("校验码"), "{err}");
        assert_eq!(err.code(), "INVALID_RECEIPT");
    }

    #[test]
    fn refuses_a_total_that_is_not_the_sum() {
        let mut r = sample();
        r.total_fen = 43001;
        let err = r.validate().unwrap_err();
        assert!(matches!(err, ReceiptPdfError::TotalMismatch { .. }));
        assert_eq!(
            err.to_string(),
            "金额合计 430.01 元与各品目之和 430.00 元不符"
        );
    }

    #[test]
    fn refuses_bad_components_and_text() {
        let mut r = sample();
        r.components = &[];
        assert!(matches!(
            r.validate(),
            Err(ReceiptPdfError::ComponentCount { count: 0, .. })
        ));
        let mut r = sample();
        r.components = &[("基本医疗保险", -1)];
        r.total_fen = -1;
        assert!(matches!(
            r.validate(),
            Err(ReceiptPdfError::AmountOutOfRange { .. })
        ));
        let mut r = sample();
        r.components = &[("a", MAX_RECEIPT_FEN), ("b", 1)];
        assert!(matches!(
            r.validate(),
            Err(ReceiptPdfError::AmountOutOfRange { .. })
        ));
        let mut r = sample();
        r.payer_name = "张\n三";
        assert!(r.validate().is_err());
        let mut r = sample();
        r.payer_name = "   ";
        assert!(r.validate().is_err());
        let mut r = sample();
        let long = "长".repeat(61);
        r.issuer = &long;
        assert!(r.validate().is_err());
        let mut r = sample();
        r.fee_year = 1989;
        assert!(r.validate().is_err());
        let mut r = sample();
        r.verify_hint = "";
        r.validate().unwrap();
        r.verify_url = "";
        r.validate().unwrap();
    }

    #[test]
    fn refuses_a_relative_or_malformed_verify_url() {
        for bad in [
            "/public/receipts/verify?code=1",
            "ftp://x/verify",
            "https://",
            "https:///path",
            "https://host/有中文",
            "https://host/a b",
        ] {
            let mut r = sample();
            r.verify_url = bad;
            let err = r.validate().unwrap_err();
            assert!(err.to_string().contains("查验地址"), "{bad}: {err}");
        }
        let long = format!("https://h/{}", "a".repeat(MAX_VERIFY_URL_CHARS));
        let mut r = sample();
        r.verify_url = &long;
        assert!(r.validate().is_err());
    }

    #[test]
    fn missing_font_error_tells_the_operator_what_to_do() {
        let path = std::env::temp_dir().join("yibao-receipt-pdf-no-such-font.ttc");
        let err = ReceiptFont::load(&path).unwrap_err();
        assert!(
            matches!(err, ReceiptPdfError::FontMissing { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(FONT_PACKAGE), "{msg}");
        assert!(msg.contains(FONT_PATH_CONFIG_KEY), "{msg}");
        assert!(msg.contains(FONT_PATH_ENV), "{msg}");
        assert!(msg.contains("scripts/install-fonts"), "{msg}");
        assert_eq!(err.code(), "RECEIPT_FONT_UNAVAILABLE");
    }

    #[test]
    fn refuses_fonts_that_are_not_fonts() {
        assert!(matches!(
            ReceiptFont::from_bytes(b"not a font at all".to_vec(), 0),
            Err(ReceiptPdfError::FontInvalid(_))
        ));
        let dir = std::env::temp_dir().join(format!("yibao-receipt-pdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = ReceiptFont::load(&dir).unwrap_err();
        assert!(
            matches!(err, ReceiptPdfError::FontMissing { .. }),
            "{err:?}"
        );
        let file = dir.join("empty.ttf");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            ReceiptFont::load(&file),
            Err(ReceiptPdfError::FontInvalid(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
