//! Renders receipts with the real Debian font and reads them back with poppler's `pdftotext`.
//!
//! Without the font these tests print a notice and pass, except under `CI=true`, where a missing
//! font fails them (`scripts/install-fonts` installs it). Without `pdftotext` on PATH the text
//! checks are skipped with a notice (Debian package poppler-utils).

use std::path::PathBuf;
use std::process::Command;

use chrono::NaiveDate;
use yibao_receipt_pdf::{
    find_default_fallback_fonts, find_default_font, render_receipt, ReceiptFont, ReceiptFonts,
    ReceiptPdf, ReceiptPdfError, DEFAULT_FALLBACK_FONT_PATHS, DEFAULT_FONT_PATHS,
};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The default font alone, or `None` (with a notice) when it is absent outside CI.
fn font() -> Option<ReceiptFonts> {
    match find_default_font() {
        Some(path) => Some(
            ReceiptFont::load(&path)
                .expect("the default font loads")
                .into(),
        ),
        None => {
            assert!(
                !ci(),
                "CI=true but no receipt font at any of {DEFAULT_FONT_PATHS:?}: run scripts/install-fonts"
            );
            eprintln!(
                "NOTICE: skipping receipt rendering test: no font at {DEFAULT_FONT_PATHS:?} \
                 (install Debian's fonts-wqy-microhei, e.g. scripts/install-fonts)"
            );
            None
        }
    }
}

/// The default font and every default fallback font, or `None` (with a notice) when any of them
/// is absent outside CI.
fn chain() -> Option<ReceiptFonts> {
    let main = font()?;
    let fallbacks = find_default_fallback_fonts();
    if fallbacks.len() < DEFAULT_FALLBACK_FONT_PATHS.len() {
        assert!(
            !ci(),
            "CI=true but some fallback fonts are missing (of {DEFAULT_FALLBACK_FONT_PATHS:?} only \
             {fallbacks:?} exist): run scripts/install-fonts"
        );
        eprintln!(
            "NOTICE: skipping fallback-font receipt test: not all of {DEFAULT_FALLBACK_FONT_PATHS:?} \
             are installed (Debian fonts-hanazono and fonts-babelstone-han, e.g. scripts/install-fonts)"
        );
        return None;
    }
    let mut chain = main;
    for path in fallbacks {
        chain = chain
            .with_fallback(ReceiptFont::load_fallback(&path).expect("fallback font loads"))
            .expect("within the limit");
    }
    Some(chain)
}

fn receipt(voided: bool) -> ReceiptPdf<'static> {
    ReceiptPdf {
        title: "社会保险费电子票据",
        receipt_code: "32060125",
        receipt_number: "0000012345",
        check_code: "8F3A2C",
        issued_on: NaiveDate::from_ymd_opt(2025, 1, 15).expect("date"),
        payer_name: "张*华",
        payer_id_masked: "320602**********12",
        insured_number: Some("3206000000000011"),
        item_name: "城乡居民基本医疗保险",
        fee_year: 2025,
        components: &[("基本医疗保险", 38000), ("大病保险", 5000)],
        total_fen: 43000,
        issuer: "国家税务总局南通市税务局",
        region_name: "南通市海门区",
        cover_from: NaiveDate::from_ymd_opt(2025, 1, 1),
        bought_back_year: None,
        voided,
        verify_hint: "扫码或访问以下地址查验：https://yibao.example.gov.cn/public/receipts/verify?code=32060125&number=0000012345&check_code=8F3A2C",
        verify_url: "https://yibao.example.gov.cn/public/receipts/verify?code=32060125&number=0000012345&check_code=8F3A2C",
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// Text of the PDF as `pdftotext -layout` extracts it, or `None` without poppler.
fn extract_text(pdf: &[u8], name: &str) -> Option<String> {
    if !have("pdftotext") {
        eprintln!("NOTICE: pdftotext not on PATH (Debian package poppler-utils): text not checked");
        return None;
    }
    let path = std::env::temp_dir().join(format!(
        "yibao-receipt-pdf-test-{}-{name}.pdf",
        std::process::id()
    ));
    std::fs::write(&path, pdf).expect("write pdf");
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("run pdftotext");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("pdftotext prints UTF-8"))
}

/// What the QR codes on the PDF's page decode to, via poppler's `pdftoppm` and zbar's `zbarimg`
/// (Debian packages poppler-utils and zbar-tools), or `None` with a notice when either is missing.
pub fn decode_qr(pdf: &[u8], name: &str) -> Option<Vec<String>> {
    if !have("pdftoppm") || Command::new("zbarimg").arg("--version").output().is_err() {
        eprintln!(
            "NOTICE: pdftoppm or zbarimg not on PATH (Debian packages poppler-utils, zbar-tools): \
             QR code not decoded"
        );
        return None;
    }
    let dir = tempfile_dir(name);
    let pdf_path = dir.join("receipt.pdf");
    std::fs::write(&pdf_path, pdf).expect("write PDF");
    let prefix = dir.join("page");
    let status = Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile"])
        .arg(&pdf_path)
        .arg(&prefix)
        .status()
        .expect("run pdftoppm");
    assert!(status.success(), "pdftoppm failed");
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(dir.join("page.png"))
        .output()
        .expect("run zbarimg");
    let _ = std::fs::remove_dir_all(&dir);
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yibao-receipt-qr-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn check_pdf_shape(pdf: &[u8]) {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert!(pdf.len() < 200 * 1024, "PDF is {} bytes", pdf.len());
    let text = String::from_utf8_lossy(pdf);
    assert!(text.contains("/FontFile2"), "font is embedded");
    assert!(text.contains("/ToUnicode"), "text is extractable");
}

#[test]
fn renders_a_paid_receipt_with_an_embedded_subset() {
    let Some(font) = font() else { return };
    let pdf = render_receipt(&receipt(false), &font).expect("renders");
    check_pdf_shape(&pdf);
    // A subset, not the 5 MB font.
    assert!(pdf.len() < 100 * 1024, "PDF is {} bytes", pdf.len());
    // Deterministic.
    assert_eq!(
        pdf,
        render_receipt(&receipt(false), &font).expect("renders")
    );

    if let Some(text) = extract_text(&pdf, "paid") {
        for expected in [
            "社会保险费电子票据",
            "0000012345",
            "32060125",
            "8F3A2C",
            "430.00",
            "380.00",
            "50.00",
            "肆佰叁拾元整",
            "基本医疗保险",
            "城乡居民基本医疗保险",
            "国家税务总局南通市税务局",
            "320602**********12",
            "2025年01月15日",
            "南通市海门区",
            "待遇享受：自2025-01-01起",
            "check_code=8F3A2C",
        ] {
            let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(
                squeezed.contains(expected),
                "{expected:?} not in extracted text:\n{text}"
            );
        }
        assert!(
            !text.contains("作废"),
            "a paid receipt is not voided:\n{text}"
        );
    }
}

#[test]
fn the_qr_code_decodes_to_the_verification_url() {
    let Some(font) = font() else { return };
    let paid = receipt(false);
    let pdf = render_receipt(&paid, &font).expect("renders");
    if let Some(codes) = decode_qr(&pdf, "paid") {
        assert_eq!(codes, vec![paid.verify_url.to_owned()]);
    }
    // Six components push the table down: the code shrinks but still reads.
    let mut crowded = receipt(true);
    crowded.components = &[
        ("基本医疗保险", 100_000_000),
        ("大病保险", 500),
        ("个人缴费补差", 5),
        ("其他", 0),
        ("一", 0),
        ("二", 0),
    ];
    crowded.total_fen = 100_000_505;
    let pdf = render_receipt(&crowded, &font).expect("renders");
    if let Some(codes) = decode_qr(&pdf, "crowded") {
        assert_eq!(codes, vec![crowded.verify_url.to_owned()]);
    }
    // No URL, no code.
    let mut bare = receipt(false);
    bare.verify_url = "";
    let pdf = render_receipt(&bare, &font).expect("renders");
    if let Some(codes) = decode_qr(&pdf, "bare") {
        assert!(codes.is_empty(), "{codes:?}");
    }
}

#[test]
fn renders_a_voided_receipt_with_the_stamp() {
    let Some(font) = font() else { return };
    let pdf = render_receipt(&receipt(true), &font).expect("renders");
    check_pdf_shape(&pdf);
    if let Some(text) = extract_text(&pdf, "voided") {
        assert!(text.contains("作废"), "作废 not in extracted text:\n{text}");
        assert!(text.contains("肆佰叁拾元整"), "{text}");
    }
}

#[test]
fn renders_odd_amounts_and_many_components() {
    let Some(font) = font() else { return };
    let mut r = receipt(false);
    r.components = &[
        ("基本医疗保险", 100_000),
        ("大病保险", 500),
        ("个人缴费补差", 5),
        ("其他", 0),
        ("一", 0),
        ("二", 0),
    ];
    r.total_fen = 100_505;
    r.payer_name =
        "欧阳某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某";
    let pdf = render_receipt(&r, &font).expect("renders");
    check_pdf_shape(&pdf);
    if let Some(text) = extract_text(&pdf, "odd") {
        assert!(text.contains("壹仟零伍元零伍分"), "{text}");
        assert!(text.contains("1005.05"), "{text}");
    }
}

#[test]
fn a_character_the_font_lacks_is_a_clear_error() {
    let Some(font) = font() else { return };
    let mut r = receipt(false);
    r.payer_name = "张\u{1F600}";
    let err = render_receipt(&r, &font).expect_err("emoji is not in the font");
    assert!(
        matches!(
            err,
            ReceiptPdfError::MissingGlyph {
                field: "交款人",
                ch: '\u{1F600}'
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("交款人"), "{err}");
}

#[test]
fn a_missing_font_path_names_the_package_and_the_config_key() {
    let path = PathBuf::from("/nonexistent/yibao/fonts/wqy-microhei.ttc");
    let err = ReceiptFont::load(&path).expect_err("no such file");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/yibao/fonts/wqy-microhei.ttc"),
        "{msg}"
    );
    assert!(msg.contains("fonts-wqy-microhei"), "{msg}");
    assert!(msg.contains("receipt_font"), "{msg}");
}

#[test]
fn a_missing_fallback_font_names_its_packages_and_config_key() {
    let err = ReceiptFont::load_fallback(std::path::Path::new("/nonexistent/HanaMinB.ttf"))
        .expect_err("no such file");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/HanaMinB.ttf"), "{msg}");
    assert!(msg.contains("fonts-hanazono"), "{msg}");
    assert!(msg.contains("receipt_fallback_fonts"), "{msg}");
    assert!(!msg.contains("fonts-wqy-microhei"), "{msg}");
}

/// A fallback font need not draw the receipt's fixed text (HanaMinB has planes 2 and 3 only), but
/// the main font must.
#[test]
fn a_fallback_font_need_not_draw_the_fixed_text() {
    let path = std::path::Path::new(DEFAULT_FALLBACK_FONT_PATHS[1]);
    if !path.is_file() {
        eprintln!(
            "NOTICE: no {} here: fallback loading check skipped",
            path.display()
        );
        return;
    }
    ReceiptFont::load_fallback(path).expect("loads as a fallback");
    let err = ReceiptFont::load(path).expect_err("cannot be the main font");
    assert!(
        matches!(err, ReceiptPdfError::FontLacksCjk { .. }),
        "{err:?}"
    );
}

/// A Latin-only font (Debian's DejaVu, when installed) is refused when loaded, with a message that
/// names the CJK font package.
#[test]
fn a_font_without_chinese_is_refused_when_loaded() {
    let path = PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    if !path.is_file() {
        eprintln!("NOTICE: no DejaVuSans.ttf here: Latin-only font check skipped");
        return;
    }
    let err = ReceiptFont::load(&path).expect_err("DejaVu has no CJK glyphs");
    assert!(
        matches!(err, ReceiptPdfError::FontLacksCjk { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("fonts-wqy-microhei"), "{err}");
}

/// Renders the sample receipts a person looks at (the valid, the voided, a crowded one with an
/// amount of a million yuan and the longest texts, and one naming every rare character) and
/// checks each: a PDF of the expected shape, and with poppler, the crowded one's long texts and
/// amount are all on the page. With `YIBAO_RECEIPT_SAMPLE_DIR` set they are also written there
/// (`pdftoppm -png -r 80 receipt-sample.pdf receipt-sample`); `YIBAO_RECEIPT_SAMPLE_FONT` (and
/// `YIBAO_RECEIPT_SAMPLE_FACE`, default 0) renders them with another font instead.
#[test]
fn renders_the_sample_receipts_whole() {
    let dir = std::env::var_os("YIBAO_RECEIPT_SAMPLE_DIR").map(PathBuf::from);
    let other_font = std::env::var_os("YIBAO_RECEIPT_SAMPLE_FONT");
    let font = match &other_font {
        Some(path) => {
            let face = std::env::var("YIBAO_RECEIPT_SAMPLE_FACE")
                .ok()
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            ReceiptFont::load_face(std::path::Path::new(path), face)
                .expect("sample font loads")
                .into()
        }
        None => match chain().or_else(font) {
            Some(font) => font,
            None => return,
        },
    };
    let write = |name: &str, pdf: &[u8]| {
        if let Some(dir) = &dir {
            std::fs::write(dir.join(name), pdf).expect("write sample");
        }
    };
    let valid = render_receipt(&receipt(false), &font).expect("renders");
    let voided = render_receipt(&receipt(true), &font).expect("renders");
    for pdf in [&valid, &voided] {
        check_pdf_shape(pdf);
    }
    assert_ne!(valid, voided, "the voided receipt carries its stamp");
    write("receipt-sample.pdf", &valid);
    write("receipt-sample-voided.pdf", &voided);
    let mut crowded = receipt(true);
    crowded.components = &[
        ("基本医疗保险", 100_000_000),
        ("大病保险", 500),
        ("个人缴费补差", 5),
        ("其他", 0),
        ("一", 0),
        ("二", 0),
    ];
    crowded.total_fen = 100_000_505;
    crowded.payer_name =
        "欧阳某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某某";
    crowded.issuer = "国家税务总局某某省某某市某某区税务局第一税务分局某某办税服务厅（代收）";
    crowded.region_name = "某某省某某市某某县某某镇某某村";
    let pdf = render_receipt(&crowded, &font).expect("renders");
    check_pdf_shape(&pdf);
    write("receipt-sample-crowded.pdf", &pdf);
    if other_font.is_none() {
        if let Some(text) = extract_text(&pdf, "crowded") {
            let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            for expected in [
                "¥1000005.05",
                "壹佰万零伍元零伍分",
                "个人缴费补差",
                "某某办税服务厅（代收）",
                "某某镇某某村",
            ] {
                assert!(flat.contains(expected), "{expected} missing from: {text}");
            }
        }
    }
    let mut rare = receipt(false);
    rare.payer_name = RARE_NAMES_LINE;
    match render_receipt(&rare, &font) {
        Ok(pdf) => {
            check_pdf_shape(&pdf);
            write("receipt-sample-rare-names.pdf", &pdf);
        }
        // Only the main font alone (no fallbacks installed outside CI) lacks them.
        Err(e) => {
            assert!(
                !ci() || other_font.is_some(),
                "CI=true: the fallback chain draws every rare name, but {e}"
            );
            eprintln!("NOTICE: rare-name sample not rendered: {e}");
        }
    }
}

/// Names of residents in every kind of character the registry accepts, each as the receipt prints
/// it (full or masked: the first and the last character are kept).
const RARE_NAMES: &[(&str, &str)] = &[
    ("Ext A", "王䶮"),
    ("Ext B", "𪚥*𠀾"),
    ("Ext B (2)", "𡒊*华"),
    ("variation sequence", "葛\u{E0100}*"),
    ("variation sequence, no variant glyph", "张\u{FE00}*"),
    ("middle dot U+00B7", "阿·*提"),
    ("bullet U+2022", "阿•*提"),
    ("katakana middle dot U+30FB", "阿・*提"),
    ("halfwidth katakana middle dot U+FF65", "阿･*提"),
    ("hyphenation point U+2027", "阿‧*提"),
    ("fullwidth full stop U+FF0E", "阿．*提"),
    ("full stop", "阿.*提"),
    ("compatibility ideograph", "\u{F900}*\u{2F800}"),
    ("Ext C to F", "\u{2A700}\u{2B740}\u{2B820}\u{2CEB0}"),
];

/// The rare names together, for the sample a person looks at.
const RARE_NAMES_LINE: &str =
    "王䶮 𪚥*𠀾 𡒊*华 葛\u{E0100}* 阿·*提 阿•*提 阿・*提 \u{F900}*\u{2F800} \u{2A700}\u{2B740}\u{2B820}\u{2CEB0}";

/// What `pdftotext` gives back for a printed name: the variation selector survives only where a
/// font drew the variation glyph; middle dots come back as drawn.
fn expected_text(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(u32::from(*c), 0xFE00..=0xFE0F | 0xE0100..=0xE01EF))
        .collect()
}

#[test]
fn prints_names_from_every_han_block_with_the_fallback_fonts() {
    let Some(fonts) = chain() else { return };
    for &(kind, name) in RARE_NAMES {
        let mut r = receipt(false);
        r.payer_name = name;
        let pdf = render_receipt(&r, &fonts).unwrap_or_else(|e| panic!("{kind} {name:?}: {e}"));
        check_pdf_shape(&pdf);
        let Some(text) = extract_text(&pdf, "rare") else {
            continue;
        };
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let plain = expected_text(name);
        assert!(
            squeezed.contains(&plain) || squeezed.contains(name),
            "{kind}: {name:?} not in extracted text:\n{text}"
        );
    }
}

#[test]
fn the_main_font_alone_refuses_an_ext_b_name_naming_the_code_point() {
    let Some(fonts) = font() else { return };
    let mut r = receipt(false);
    r.payer_name = "𪚥*𠀾";
    let err = render_receipt(&r, &fonts).expect_err("wqy-microhei has no Ext B");
    assert!(
        matches!(
            err,
            ReceiptPdfError::MissingGlyph {
                field: "交款人",
                ch: '𪚥'
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("U+2A6A5"), "{msg}");
    assert!(msg.contains("receipt_fallback_fonts"), "{msg}");
    assert_eq!(err.code(), "RECEIPT_GLYPH_MISSING");
}

#[test]
fn a_receipt_embeds_one_subset_per_font_it_uses() {
    let Some(fonts) = chain() else { return };
    // Common characters only: the main font alone.
    let pdf = render_receipt(&receipt(false), &fonts).expect("renders");
    let text = String::from_utf8_lossy(&pdf);
    assert_eq!(text.matches("/FontFile2").count(), 1, "one font");
    // An Ext F character (only HanaMinB, the third font) and an Ext G one (only BabelStone Han,
    // the fourth): the main font and those two, each a small subset, HanaMinA left out.
    let mut r = receipt(false);
    r.payer_name = "\u{2CEB0}*\u{30000}";
    let pdf = render_receipt(&r, &fonts).expect("renders");
    let text = String::from_utf8_lossy(&pdf);
    assert_eq!(text.matches("/FontFile2").count(), 3, "three fonts");
    assert!(
        text.contains("/F1 ") && text.contains("/F3 ") && text.contains("/F4 "),
        "fonts named F1, F3, F4"
    );
    assert!(!text.contains("/F2 "), "HanaMinA not embedded");
    assert!(pdf.len() < 150 * 1024, "PDF is {} bytes", pdf.len());
    assert_eq!(
        pdf,
        render_receipt(&r, &fonts).expect("renders"),
        "deterministic"
    );
}

#[test]
fn a_variation_selector_is_never_drawn_as_a_glyph_of_its_own() {
    let Some(fonts) = chain() else { return };
    let mut r = receipt(false);
    // Whether or not a font has the variation glyph, the sequence takes the room of one character.
    let mut plain = receipt(false);
    plain.payer_name = "葛*";
    r.payer_name = "葛\u{E0100}*";
    let with = render_receipt(&r, &fonts).expect("renders");
    let without = render_receipt(&plain, &fonts).expect("renders");
    let (Some(a), Some(b)) = (extract_text(&with, "vs"), extract_text(&without, "novs")) else {
        return;
    };
    let strip = |t: &str| -> String {
        expected_text(t)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    assert!(!a.contains('\u{FFFD}'), "no replacement glyph:\n{a}");
}

/// Extension I (Unicode 15.1) is a block the registry accepts but no Debian font draws yet.
#[test]
fn a_character_no_font_of_the_chain_has_is_a_clear_error() {
    let Some(fonts) = chain() else { return };
    let mut r = receipt(false);
    r.payer_name = "张*\u{2EBF0}";
    let Err(err) = render_receipt(&r, &fonts) else {
        panic!("U+2EBF0 (Ext I) is in no font of the chain: update this test if one draws it");
    };
    assert!(
        matches!(
            err,
            ReceiptPdfError::MissingGlyph {
                field: "交款人",
                ch: '\u{2EBF0}'
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("U+2EBF0"), "{err}");
    assert!(err.to_string().contains("交款人"), "{err}");
    assert_eq!(err.code(), "RECEIPT_GLYPH_MISSING");
}

#[test]
fn the_start_up_check_reading_one_fallback_at_a_time_finds_what_the_whole_chain_draws() {
    let (Some(main), Some(chain)) = (font(), chain()) else {
        return;
    };
    let coverage = main
        .coverage_with_fallbacks(&find_default_fallback_fonts())
        .expect("coverage");
    assert!(coverage.skipped.is_empty(), "{:?}", coverage.skipped);
    let names: Vec<&str> = chain
        .fonts()
        .iter()
        .map(ReceiptFont::postscript_name)
        .collect();
    assert_eq!(coverage.fonts, names);
    let whole = chain.han_coverage().expect("coverage of the chain");
    let counted = |blocks: &[yibao_receipt_pdf::BlockCoverage]| -> Vec<(&'static str, usize)> {
        blocks.iter().map(|b| (b.block.name, b.covered)).collect()
    };
    assert_eq!(counted(&coverage.blocks), counted(&whole));
    // The fallbacks draw characters the main font lacks (Extension B, for one).
    let alone = main.han_coverage().expect("coverage of the main font");
    assert!(counted(&coverage.blocks) != counted(&alone));
}

#[test]
fn a_receipt_reads_only_the_fallbacks_it_is_drawn_with() {
    let (Some(main), Some(whole)) = (font(), chain()) else {
        return;
    };
    let fallbacks = find_default_fallback_fonts();
    // Common characters: no fallback read whole. An Ext F and an Ext G character: HanaMinB and
    // BabelStone Han, not HanaMinA. A variation sequence: the font whose variant glyph it is.
    for (name, fonts) in [
        ("张*华", 1),
        ("\u{2CEB0}*\u{30000}", 3),
        ("葛\u{E0100}*华", 2),
    ] {
        let mut r = receipt(false);
        r.payer_name = name;
        let (chain, skipped) = main.with_fallbacks_for(&r, &fallbacks).expect("chain");
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(chain.fonts().len(), fonts, "{name:?}");
        let selective = render_receipt(&r, &chain).expect("renders");
        let everything = render_receipt(&r, &whole).expect("renders");
        let embedded = |pdf: &[u8]| String::from_utf8_lossy(pdf).matches("/FontFile2").count();
        assert_eq!(embedded(&selective), embedded(&everything), "{name:?}");
        assert!(
            selective.len().abs_diff(everything.len()) < 64,
            "{name:?}: {} and {} bytes",
            selective.len(),
            everything.len()
        );
        if let (Some(a), Some(b)) = (
            extract_text(&selective, "selective"),
            extract_text(&everything, "everything"),
        ) {
            assert_eq!(a, b, "{name:?}");
        }
    }
}

#[test]
fn a_receipt_no_font_draws_takes_every_fallback_and_fails_as_before() {
    let (Some(main), Some(_)) = (font(), chain()) else {
        return;
    };
    let fallbacks = find_default_fallback_fonts();
    let mut r = receipt(false);
    r.payer_name = "张*\u{2EBF0}";
    let (chain, skipped) = main.with_fallbacks_for(&r, &fallbacks).expect("chain");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(chain.fonts().len(), 1 + fallbacks.len());
    let err = render_receipt(&r, &chain).expect_err("U+2EBF0 is in no font");
    assert_eq!(err.code(), "RECEIPT_GLYPH_MISSING");
}
