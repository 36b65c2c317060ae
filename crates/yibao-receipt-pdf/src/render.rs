//! Lays out the receipt and writes the PDF: one A5-landscape page, one embedded CID font subset
//! per font of the chain that the page uses (Identity-H, CID = glyph id of the subset, one font
//! resource `F1`, `F2`, … each), a ToUnicode map per font, and Flate-compressed streams.
//!
//! Each character is drawn with the first font of the chain that has it; a line of text is shown
//! as runs of characters of one font, switching font between runs. A variation selector
//! (U+FE00–FE0F, U+E0100–E01EF) after a character is never drawn as a glyph of its own: the
//! sequence is drawn with the variation glyph of the first font whose cmap format 14 subtable has
//! it (ttf-parser's `glyph_variation_index`; its ToUnicode entry then holds both code points), and
//! otherwise the selector is skipped and the character drawn with its default glyph.

use std::collections::BTreeMap;
use std::io::Write;

use pdf_writer::types::{CidFontType, FontFlags, LineCapStyle, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;
use ttf_parser::{Face, GlyphId};

use crate::font::has_glyph;
use crate::money::{capital_amount, format_yuan};
use crate::{ReceiptFont, ReceiptFonts, ReceiptPdf, ReceiptPdfError, MAX_FALLBACK_FONTS};

/// A5 landscape, in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 419.53;
const MARGIN_X: f32 = 36.0;
const LEFT: f32 = MARGIN_X;
const RIGHT: f32 = PAGE_W - MARGIN_X;
/// Where the right-hand column of the header fields starts.
const RIGHT_COLUMN: f32 = 372.0;

/// Widths of the table's four columns (费种, 品目名称, 费款所属期, 金额); the last takes the rest.
const COLUMNS: [f32; 3] = [150.0, 142.0, 100.0];
const HEADER_ROW_H: f32 = 22.0;
/// Height of an item row when there are at most [`MIN_ITEM_ROWS`] items; more items share
/// [`COMPACT_ITEM_ROW_H`] so that the page still holds [`crate::MAX_COMPONENTS`].
const ITEM_ROW_H: f32 = 22.0;
const COMPACT_ITEM_ROW_H: f32 = 18.0;
const TOTAL_ROW_H: f32 = 26.0;
const REMARK_ROW_H: f32 = 24.0;
/// Blank rows pad the table to this many item rows, as on a printed receipt.
const MIN_ITEM_ROWS: usize = 4;

const FIELD_SIZE: f32 = 9.5;
const CELL_SIZE: f32 = 9.5;
const CELL_PAD: f32 = 6.0;
const HINT_SIZE: f32 = 7.5;
const HINT_MAX_LINES: usize = 3;
/// The QR code of the verification URL: at most this many points square, bottom right, with this
/// much clear space to the table above and the text on its left (at least the 4-module quiet zone
/// a scanner needs at the sizes drawn).
const QR_MAX_SIZE: f32 = 96.0;
const QR_GAP: f32 = 10.0;
const QR_BOTTOM_MARGIN: f32 = 14.0;

type Rgb = (f32, f32, f32);
/// Lines, labels and the title: the red-brown of Chinese receipts.
const BROWN: Rgb = (0.60, 0.19, 0.12);
const INK: Rgb = (0.07, 0.07, 0.07);
const GREY: Rgb = (0.35, 0.35, 0.35);
const HEADER_FILL: Rgb = (0.99, 0.95, 0.92);
const STAMP_RED: Rgb = (0.87, 0.07, 0.07);

/// The page's font resource names: `F1` for the main font, `F2`… for the fallbacks.
const FONT_NAMES: [Name<'static>; MAX_FALLBACK_FONTS + 1] = [
    Name(b"F1"),
    Name(b"F2"),
    Name(b"F3"),
    Name(b"F4"),
    Name(b"F5"),
    Name(b"F6"),
    Name(b"F7"),
    Name(b"F8"),
];
const STAMP_STATE: Name<'static> = Name(b"GsStamp");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Center,
    Right,
}

/// Renders `receipt` to the bytes of a one-page PDF that embeds a subset of each font of `fonts`
/// that it uses (the main font always).
///
/// Validates the receipt first ([`ReceiptPdf::validate`]); a character no font of the chain can
/// draw is [`ReceiptPdfError::MissingGlyph`], naming the field and the code point. The same input
/// gives the same bytes.
pub fn render_receipt(
    receipt: &ReceiptPdf<'_>,
    fonts: &ReceiptFonts,
) -> Result<Vec<u8>, ReceiptPdfError> {
    laid_out(receipt, fonts, |page, faces| {
        write_pdf(page, fonts, faces, receipt)
    })
}

/// The receipt laid out on a page with the chain's fonts, handed to `then`.
fn laid_out<T>(
    receipt: &ReceiptPdf<'_>,
    fonts: &ReceiptFonts,
    then: impl for<'f> FnOnce(Page<'f>, &'f [Face<'f>]) -> Result<T, ReceiptPdfError>,
) -> Result<T, ReceiptPdfError> {
    receipt.validate()?;
    let faces = fonts
        .fonts()
        .iter()
        .map(ReceiptFont::face)
        .collect::<Result<Vec<_>, _>>()?;
    let mut page = Page::new(&faces);
    draw_receipt(&mut page, receipt)?;
    then(page, &faces)
}

/// Which fonts of the chain the receipt is drawn with, in chain order: laid out as
/// [`render_receipt`] lays it out, nothing written. It asks the fonts only which characters they
/// map and how wide they draw them, so fallbacks read without their outlines answer it.
pub(crate) fn fonts_used(
    receipt: &ReceiptPdf<'_>,
    fonts: &ReceiptFonts,
) -> Result<Vec<bool>, ReceiptPdfError> {
    laid_out(receipt, fonts, |page, _| {
        Ok(page.fonts.iter().map(FontUse::is_used).collect())
    })
}

/// Whether `c` is a variation selector (U+FE00–FE0F, U+E0100–E01EF): it picks the glyph of the
/// character before it and is never drawn on its own.
pub(crate) fn is_variation_selector(c: char) -> bool {
    matches!(u32::from(c), 0xFE00..=0xFE0F | 0xE0100..=0xE01EF)
}

/// One font of the chain as the page uses it.
struct FontUse<'f> {
    face: &'f Face<'f>,
    units_per_em: f32,
    remapper: GlyphRemapper,
    /// Subset glyph id (= CID) -> (advance in 1/1000 em, the text it was drawn for).
    glyphs: BTreeMap<u16, (f32, String)>,
}

impl<'f> FontUse<'f> {
    fn new(face: &'f Face<'f>) -> Self {
        let mut remapper = GlyphRemapper::new();
        let units_per_em = f32::from(face.units_per_em().max(1));
        let notdef_advance = face.glyph_hor_advance(GlyphId(0)).unwrap_or(0);
        let mut glyphs = BTreeMap::new();
        glyphs.insert(
            remapper.remap(0),
            (
                f32::from(notdef_advance) * 1000.0 / units_per_em,
                "\u{FFFD}".to_owned(),
            ),
        );
        FontUse {
            face,
            units_per_em,
            remapper,
            glyphs,
        }
    }

    /// Whether any glyph besides `.notdef` was drawn with this font.
    fn is_used(&self) -> bool {
        self.glyphs.len() > 1
    }

    /// Advance of `glyph` in 1/1000 em.
    fn advance(&self, glyph: GlyphId) -> f32 {
        f32::from(self.face.glyph_hor_advance(glyph).unwrap_or(0)) * 1000.0 / self.units_per_em
    }
}

/// One glyph of a line: which font of the chain draws it, and the text it stands for (a character,
/// or a character and its variation selector when the font has the variation glyph).
struct Cluster<'t> {
    font: usize,
    glyph: GlyphId,
    text: &'t str,
}

/// The page being drawn, with the glyphs used so far in each font.
struct Page<'f> {
    fonts: Vec<FontUse<'f>>,
    content: Content,
}

impl<'f> Page<'f> {
    fn new(faces: &'f [Face<'f>]) -> Self {
        Page {
            fonts: faces.iter().map(FontUse::new).collect(),
            content: Content::new(),
        }
    }

    /// Splits `text` into glyphs, each from the first font of the chain that draws it. A character
    /// no font has is `Err(character)`; variation selectors are folded into the character before.
    fn clusters<'t>(&self, text: &'t str) -> Vec<Result<Cluster<'t>, char>> {
        let mut out = Vec::with_capacity(text.len());
        let mut chars = text.char_indices().peekable();
        while let Some((start, ch)) = chars.next() {
            if is_variation_selector(ch) {
                // A selector with no character before it (the registry refuses that): not drawn.
                continue;
            }
            let end = start + ch.len_utf8();
            if let Some(&(vs_start, vs)) = chars.peek().filter(|(_, c)| is_variation_selector(*c)) {
                chars.next();
                let variant = self.fonts.iter().enumerate().find_map(|(i, f)| {
                    f.face
                        .glyph_variation_index(ch, vs)
                        .filter(|g| g.0 != 0)
                        .map(|g| (i, g))
                });
                if let Some((font, glyph)) = variant {
                    out.push(Ok(Cluster {
                        font,
                        glyph,
                        text: &text[start..vs_start + vs.len_utf8()],
                    }));
                    continue;
                }
            }
            let found = self
                .fonts
                .iter()
                .enumerate()
                .find(|(_, f)| has_glyph(f.face, ch))
                .and_then(|(i, f)| f.face.glyph_index(ch).map(|g| (i, g)));
            out.push(match found {
                Some((font, glyph)) => Ok(Cluster {
                    font,
                    glyph,
                    text: &text[start..end],
                }),
                None => Err(ch),
            });
        }
        out
    }

    /// Width of `text` at 1 pt, in points (characters no font has count as nothing).
    fn measure(&self, text: &str) -> f32 {
        self.clusters(text)
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(|c| self.fonts[c.font].advance(c.glyph))
            .sum::<f32>()
            / 1000.0
    }

    /// The font size at most `size` at which `text` fits in `max_width`.
    fn fit(&self, text: &str, size: f32, max_width: f32) -> f32 {
        let width = self.measure(text) * size;
        if width > max_width && width > 0.0 {
            size * max_width / width
        } else {
            size
        }
    }

    /// Encodes `text` as runs of one font each (index in the chain, 2-byte CIDs of that font's
    /// subset), recording the glyphs it uses.
    fn encode(
        &mut self,
        text: &str,
        field: &'static str,
    ) -> Result<Vec<(usize, Vec<u8>)>, ReceiptPdfError> {
        let clusters = self
            .clusters(text)
            .into_iter()
            .collect::<Result<Vec<_>, char>>()
            .map_err(|ch| ReceiptPdfError::MissingGlyph { field, ch })?;
        let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
        for cluster in clusters {
            let font = &mut self.fonts[cluster.font];
            let cid = font.remapper.remap(cluster.glyph.0);
            let advance = font.advance(cluster.glyph);
            font.glyphs
                .entry(cid)
                .or_insert_with(|| (advance, cluster.text.to_owned()));
            match runs.last_mut() {
                Some((f, bytes)) if *f == cluster.font => {
                    bytes.extend_from_slice(&cid.to_be_bytes())
                }
                _ => runs.push((cluster.font, cid.to_be_bytes().to_vec())),
            }
        }
        Ok(runs)
    }

    /// Shows encoded runs at the current text position, switching font between runs.
    fn show_runs(&mut self, runs: &[(usize, Vec<u8>)], size: f32) {
        for (font, bytes) in runs {
            self.content
                .set_font(FONT_NAMES[*font], size)
                .show(Str(bytes));
        }
    }

    /// Draws one line of text with its baseline `baseline` points below the top of the page,
    /// shrunk to fit `max_width` when given. Returns the width drawn.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        text: &str,
        field: &'static str,
        x: f32,
        baseline: f32,
        size: f32,
        color: Rgb,
        align: Align,
        max_width: Option<f32>,
    ) -> Result<f32, ReceiptPdfError> {
        let size = match max_width {
            Some(w) => self.fit(text, size, w),
            None => size,
        };
        let width = self.measure(text) * size;
        let left = match align {
            Align::Left => x,
            Align::Center => x - width / 2.0,
            Align::Right => x - width,
        };
        let runs = self.encode(text, field)?;
        self.content
            .set_fill_rgb(color.0, color.1, color.2)
            .begin_text()
            .set_text_matrix([1.0, 0.0, 0.0, 1.0, left, PAGE_H - baseline]);
        self.show_runs(&runs, size);
        self.content.end_text();
        Ok(width)
    }

    /// A label in brown followed by its value in ink, starting at `x`.
    fn field(
        &mut self,
        label: &str,
        value: &str,
        field: &'static str,
        x: f32,
        baseline: f32,
        max_width: f32,
    ) -> Result<(), ReceiptPdfError> {
        let label_width = self.text(
            label,
            "票据栏目",
            x,
            baseline,
            FIELD_SIZE,
            BROWN,
            Align::Left,
            None,
        )?;
        self.text(
            value,
            field,
            x + label_width,
            baseline,
            FIELD_SIZE,
            INK,
            Align::Left,
            Some(max_width - label_width),
        )?;
        Ok(())
    }

    /// Baseline that centres CJK text of `size` vertically in a row from `top` to `top + height`.
    fn row_baseline(top: f32, height: f32, size: f32) -> f32 {
        top + height / 2.0 + size * 0.36
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32, color: Rgb) {
        self.content
            .set_stroke_rgb(color.0, color.1, color.2)
            .set_line_width(width)
            .move_to(x1, PAGE_H - y1)
            .line_to(x2, PAGE_H - y2)
            .stroke();
    }
}

fn draw_receipt(page: &mut Page<'_>, r: &ReceiptPdf<'_>) -> Result<(), ReceiptPdfError> {
    page.content.set_line_cap(LineCapStyle::ButtCap);

    // Title, letter-spaced and centred, over a double rule.
    let title_size = 20.0;
    let spacing = 4.0;
    let title_chars = r.title.chars().count() as f32;
    let title_width = page.fit(
        r.title,
        title_size,
        RIGHT - LEFT - spacing * (title_chars - 1.0),
    ) * page.measure(r.title)
        + spacing * (title_chars - 1.0);
    let title_left = PAGE_W / 2.0 - title_width / 2.0;
    page.content.set_char_spacing(spacing);
    page.text(
        r.title,
        "票据标题",
        title_left,
        48.0,
        title_size,
        BROWN,
        Align::Left,
        Some(RIGHT - LEFT - spacing * (title_chars - 1.0)),
    )?;
    page.content.set_char_spacing(0.0);
    page.line(
        title_left - 8.0,
        55.0,
        title_left + title_width + 8.0,
        55.0,
        1.2,
        BROWN,
    );
    page.line(
        title_left - 8.0,
        57.8,
        title_left + title_width + 8.0,
        57.8,
        0.5,
        BROWN,
    );

    // Header fields: two columns of three.
    let left_width = RIGHT_COLUMN - LEFT - 12.0;
    let right_width = RIGHT - RIGHT_COLUMN;
    let issued = r.issued_on.format("%Y年%m月%d日").to_string();
    let rows = [86.0, 103.0, 120.0];
    page.field(
        "票据代码：",
        r.receipt_code,
        "票据代码",
        LEFT,
        rows[0],
        left_width,
    )?;
    page.field(
        "票据号码：",
        r.receipt_number,
        "票据号码",
        RIGHT_COLUMN,
        rows[0],
        right_width,
    )?;
    page.field(
        "交款人：",
        r.payer_name,
        "交款人",
        LEFT,
        rows[1],
        left_width,
    )?;
    page.field(
        "校验码：",
        r.check_code,
        "校验码",
        RIGHT_COLUMN,
        rows[1],
        right_width,
    )?;
    page.field(
        "交款人证件号码：",
        r.payer_id_masked,
        "交款人证件号码",
        LEFT,
        rows[2],
        left_width,
    )?;
    page.field(
        "开票日期：",
        &issued,
        "开票日期",
        RIGHT_COLUMN,
        rows[2],
        right_width,
    )?;

    // The table.
    let top = 134.0;
    let x0 = LEFT;
    let x1 = x0 + COLUMNS[0];
    let x2 = x1 + COLUMNS[1];
    let x3 = x2 + COLUMNS[2];
    let x4 = RIGHT;
    let item_rows = r.components.len().max(MIN_ITEM_ROWS);
    let item_row_h = if item_rows > MIN_ITEM_ROWS {
        COMPACT_ITEM_ROW_H
    } else {
        ITEM_ROW_H
    };
    let items_top = top + HEADER_ROW_H;
    let total_top = items_top + item_row_h * item_rows as f32;
    let remark_top = total_top + TOTAL_ROW_H;
    let bottom = remark_top + REMARK_ROW_H;

    page.content
        .set_fill_rgb(HEADER_FILL.0, HEADER_FILL.1, HEADER_FILL.2)
        .rect(x0, PAGE_H - items_top, x4 - x0, HEADER_ROW_H)
        .fill_nonzero();

    let header_baseline = Page::row_baseline(top, HEADER_ROW_H, CELL_SIZE);
    for (text, left, right) in [
        ("费种", x0, x1),
        ("品目名称", x1, x2),
        ("费款所属期", x2, x3),
        ("金额（元）", x3, x4),
    ] {
        page.text(
            text,
            "票据栏目",
            (left + right) / 2.0,
            header_baseline,
            CELL_SIZE,
            BROWN,
            Align::Center,
            Some(right - left - 2.0 * CELL_PAD),
        )?;
    }

    let period = format!("{}年度", r.fee_year);
    for (i, &(name, fen)) in r.components.iter().enumerate() {
        let row_top = items_top + item_row_h * i as f32;
        let baseline = Page::row_baseline(row_top, item_row_h, CELL_SIZE);
        page.text(
            r.item_name,
            "费种",
            x0 + CELL_PAD,
            baseline,
            CELL_SIZE,
            INK,
            Align::Left,
            Some(x1 - x0 - 2.0 * CELL_PAD),
        )?;
        page.text(
            name,
            "品目名称",
            x1 + CELL_PAD,
            baseline,
            CELL_SIZE,
            INK,
            Align::Left,
            Some(x2 - x1 - 2.0 * CELL_PAD),
        )?;
        page.text(
            &period,
            "费款所属期",
            (x2 + x3) / 2.0,
            baseline,
            CELL_SIZE,
            INK,
            Align::Center,
            Some(x3 - x2 - 2.0 * CELL_PAD),
        )?;
        page.text(
            &format_yuan(fen),
            "品目金额",
            x4 - CELL_PAD,
            baseline,
            CELL_SIZE,
            INK,
            Align::Right,
            Some(x4 - x3 - 2.0 * CELL_PAD),
        )?;
    }

    // 金额合计: 大写 across the middle columns, 小写 in the amount column.
    let total_baseline = Page::row_baseline(total_top, TOTAL_ROW_H, CELL_SIZE);
    page.text(
        "金额合计（大写）",
        "票据栏目",
        (x0 + x1) / 2.0,
        total_baseline,
        CELL_SIZE,
        BROWN,
        Align::Center,
        Some(x1 - x0 - 2.0 * CELL_PAD),
    )?;
    page.text(
        &capital_amount(r.total_fen)?,
        "金额合计",
        x1 + CELL_PAD,
        total_baseline,
        10.5,
        INK,
        Align::Left,
        Some(x3 - x1 - 2.0 * CELL_PAD),
    )?;
    let small_label = "（小写）";
    let amount = format!("¥{}", format_yuan(r.total_fen));
    let label_width = page.measure(small_label) * CELL_SIZE;
    page.text(
        small_label,
        "票据栏目",
        x3 + CELL_PAD,
        total_baseline,
        CELL_SIZE,
        BROWN,
        Align::Left,
        None,
    )?;
    page.text(
        &amount,
        "金额合计",
        x4 - CELL_PAD,
        total_baseline,
        10.5,
        INK,
        Align::Right,
        Some(x4 - x3 - 2.0 * CELL_PAD - label_width - 2.0),
    )?;

    // 备注.
    let remark_baseline = Page::row_baseline(remark_top, REMARK_ROW_H, CELL_SIZE);
    page.text(
        "备注",
        "票据栏目",
        (x0 + x1) / 2.0,
        remark_baseline,
        CELL_SIZE,
        BROWN,
        Align::Center,
        None,
    )?;
    let mut remark = match r.insured_number {
        Some(number) => format!("参保编号：{number}　　"),
        None => String::new(),
    };
    remark.push_str(&format!(
        "参保地：{}　　缴费年度：{}年",
        r.region_name, r.fee_year
    ));
    if let Some(from) = r.cover_from {
        remark.push_str(&format!("　　待遇享受：自{}起", from.format("%Y-%m-%d")));
    }
    if let Some(year) = r.bought_back_year {
        remark.push_str(&format!("　　补缴{year}年度（补缴修复，不享受该年度待遇）"));
    }
    page.text(
        &remark,
        "参保地",
        x1 + CELL_PAD,
        remark_baseline,
        CELL_SIZE,
        INK,
        Align::Left,
        Some(x4 - x1 - 2.0 * CELL_PAD),
    )?;

    // Grid: inner rules thin, outer frame heavier.
    for y in [items_top, total_top, remark_top] {
        page.line(x0, y, x4, y, 0.6, BROWN);
    }
    for i in 1..item_rows {
        let y = items_top + item_row_h * i as f32;
        page.line(x0, y, x4, y, 0.4, BROWN);
    }
    page.line(x1, top, x1, bottom, 0.6, BROWN);
    page.line(x2, top, x2, total_top, 0.6, BROWN);
    page.line(x3, top, x3, remark_top, 0.6, BROWN);
    page.content
        .set_stroke_rgb(BROWN.0, BROWN.1, BROWN.2)
        .set_line_width(1.2)
        .rect(x0, PAGE_H - bottom, x4 - x0, bottom - top)
        .stroke();

    // The QR code of the verification URL, bottom right; the text beside it keeps clear of it.
    let text_right = if r.verify_url.is_empty() {
        RIGHT
    } else {
        let qr_size = draw_qr(page, r.verify_url, bottom + QR_GAP)?;
        RIGHT - qr_size - QR_GAP - 4.0
    };

    // 收款单位.
    page.field(
        "收款单位（章）：",
        r.issuer,
        "收款单位",
        LEFT,
        bottom + 26.0,
        text_right - LEFT,
    )?;

    // Verification hint, wrapped, anchored to the bottom margin.
    if !r.verify_hint.trim().is_empty() {
        let (size, lines) = wrap_hint(page, r.verify_hint, text_right - LEFT);
        let leading = size * 1.45;
        let last_baseline = PAGE_H - 24.0;
        let first_baseline = last_baseline - leading * (lines.len().saturating_sub(1)) as f32;
        page.content.set_dash_pattern([2.0, 2.0], 0.0);
        page.line(
            LEFT,
            first_baseline - size - 5.0,
            text_right,
            first_baseline - size - 5.0,
            0.4,
            GREY,
        );
        page.content.set_dash_pattern([], 0.0);
        for (i, line) in lines.iter().enumerate() {
            page.text(
                line,
                "查验提示",
                LEFT,
                first_baseline + leading * i as f32,
                size,
                GREY,
                Align::Left,
                Some(text_right - LEFT),
            )?;
        }
    }

    if r.voided {
        // Upright words first, so that text extraction reads them in order; then the stamp.
        page.text(
            "本票据已作废",
            "作废印章",
            RIGHT,
            71.0,
            10.5,
            STAMP_RED,
            Align::Right,
            None,
        )?;
        draw_void_stamp(page, (top + bottom) / 2.0)?;
    }
    Ok(())
}

/// Draws the QR code of `url` (error correction M) in black squares, its top `top` points below
/// the top of the page and its right edge on the right margin, as large as fits above the bottom
/// margin up to [`QR_MAX_SIZE`]. Returns its size in points.
fn draw_qr(page: &mut Page<'_>, url: &str, top: f32) -> Result<f32, ReceiptPdfError> {
    let qr = qrcodegen::QrCode::encode_text(url, qrcodegen::QrCodeEcc::Medium)
        .map_err(|_| crate::invalid("查验地址", "过长，无法生成二维码"))?;
    let modules = qr.size();
    let size = (PAGE_H - QR_BOTTOM_MARGIN - top).min(QR_MAX_SIZE);
    let module = size / modules as f32;
    let left = RIGHT - size;
    page.content.set_fill_rgb(0.0, 0.0, 0.0);
    for y in 0..modules {
        // One rectangle per run of dark modules in a row.
        let mut x = 0;
        while x < modules {
            if !qr.get_module(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < modules && qr.get_module(x, y) {
                x += 1;
            }
            page.content.rect(
                left + start as f32 * module,
                PAGE_H - top - (y + 1) as f32 * module,
                (x - start) as f32 * module,
                module,
            );
        }
    }
    page.content.fill_nonzero();
    Ok(size)
}

/// Splits the hint into at most [`HINT_MAX_LINES`] lines of `width`, at characters (a URL has
/// no spaces), shrinking the font until it fits.
fn wrap_hint(page: &Page<'_>, hint: &str, width: f32) -> (f32, Vec<String>) {
    let mut size = HINT_SIZE;
    loop {
        let mut lines = Vec::new();
        let mut current = String::new();
        let mut current_width = 0.0;
        for ch in hint.trim().chars() {
            let mut buf = [0u8; 4];
            let w = page.measure(ch.encode_utf8(&mut buf)) * size;
            if current_width + w > width && !current.is_empty() {
                lines.push(std::mem::take(&mut current));
                current_width = 0.0;
            }
            current.push(ch);
            current_width += w;
        }
        if !current.is_empty() {
            lines.push(current);
        }
        if lines.len() <= HINT_MAX_LINES || size <= 4.0 {
            return (size, lines);
        }
        size -= 0.5;
    }
}

/// A large translucent red 作废 in a double frame, tilted, centred on the table.
fn draw_void_stamp(page: &mut Page<'_>, centre_y: f32) -> Result<(), ReceiptPdfError> {
    let text = "作废";
    let size = 80.0;
    let text_width = page.measure(text) * size;
    let box_w = text_width + 56.0;
    let box_h = size + 30.0;
    let angle = 16.0_f32.to_radians();
    let (sin, cos) = angle.sin_cos();
    let runs = page.encode(text, "作废印章")?;
    page.content
        .save_state()
        .set_parameters(STAMP_STATE)
        .transform([cos, sin, -sin, cos, PAGE_W / 2.0, PAGE_H - centre_y])
        .set_stroke_rgb(STAMP_RED.0, STAMP_RED.1, STAMP_RED.2)
        .set_line_width(5.0)
        .rect(-box_w / 2.0, -box_h / 2.0, box_w, box_h)
        .stroke()
        .set_line_width(1.5)
        .rect(
            -box_w / 2.0 + 9.0,
            -box_h / 2.0 + 9.0,
            box_w - 18.0,
            box_h - 18.0,
        )
        .stroke()
        .set_fill_rgb(STAMP_RED.0, STAMP_RED.1, STAMP_RED.2)
        .begin_text()
        .set_text_matrix([1.0, 0.0, 0.0, 1.0, -text_width / 2.0, -size * 0.36]);
    page.show_runs(&runs, size);
    page.content.end_text().restore_state();
    Ok(())
}

/// Six capital letters naming the subset, derived from the glyphs it holds (FNV-1a), as PDF
/// requires for the tag before `+` in a subset font's name.
fn subset_tag(remapper: &GlyphRemapper) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for gid in remapper.remapped_gids() {
        for byte in gid.to_be_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (0..6)
        .map(|i| char::from(b'A' + ((hash >> (i * 8)) % 26) as u8))
        .collect()
}

fn deflate(data: &[u8]) -> Result<Vec<u8>, ReceiptPdfError> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).map_err(ReceiptPdfError::Compress)?;
    encoder.finish().map_err(ReceiptPdfError::Compress)
}

/// Scales a font-unit value to the PDF's 1/1000 em glyph space.
fn em(value: i16, units_per_em: f32) -> f32 {
    f32::from(value) * 1000.0 / units_per_em
}

fn write_pdf(
    page: Page<'_>,
    fonts: &ReceiptFonts,
    faces: &[Face<'_>],
    receipt: &ReceiptPdf<'_>,
) -> Result<Vec<u8>, ReceiptPdfError> {
    let Page {
        fonts: uses,
        content,
    } = page;

    let catalog_id = Ref::new(1);
    let pages_id = Ref::new(2);
    let page_id = Ref::new(3);
    let content_id = Ref::new(4);
    let stamp_state_id = Ref::new(5);
    let info_id = Ref::new(6);
    // Five objects per embedded font, from 7 on: Type0, CIDFont, descriptor, file, ToUnicode.
    let used: Vec<(usize, Ref)> = uses
        .iter()
        .enumerate()
        .filter(|(i, u)| *i == 0 || u.is_used())
        .enumerate()
        .map(|(n, (i, _))| (i, Ref::new(7 + 5 * i32::try_from(n).unwrap_or(0))))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(pages_id);
    pdf.pages(pages_id).kids([page_id]).count(1);
    {
        let mut p = pdf.page(page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .parent(pages_id)
            .contents(content_id);
        let mut resources = p.resources();
        {
            let mut font_dict = resources.fonts();
            for &(i, type0_id) in &used {
                font_dict.pair(FONT_NAMES[i], type0_id);
            }
        }
        resources.ext_g_states().pair(STAMP_STATE, stamp_state_id);
        resources.finish();
        p.finish();
    }
    pdf.ext_graphics(stamp_state_id)
        .non_stroking_alpha(0.45)
        .stroking_alpha(0.6);

    let compressed_content = deflate(&content.finish().into_vec())?;
    pdf.stream(content_id, &compressed_content)
        .filter(Filter::FlateDecode);

    for &(i, type0_id) in &used {
        write_font(&mut pdf, type0_id, &fonts.fonts()[i], &faces[i], &uses[i])?;
    }

    let title = format!(
        "{} {}{}",
        receipt.title,
        receipt.receipt_number,
        if receipt.voided { "（作废）" } else { "" }
    );
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("yibao-receipt-pdf"));
    pdf.set_file_id((
        receipt.receipt_number.as_bytes().to_vec(),
        receipt.check_code.as_bytes().to_vec(),
    ));

    Ok(pdf.finish())
}

/// Writes one embedded font: its Type0 font at `type0_id` and, in the four objects after it, the
/// CID font, the descriptor, the subset font file and the ToUnicode map.
fn write_font(
    pdf: &mut Pdf,
    type0_id: Ref,
    font: &ReceiptFont,
    face: &Face<'_>,
    font_use: &FontUse<'_>,
) -> Result<(), ReceiptPdfError> {
    let cid_font_id = Ref::new(type0_id.get() + 1);
    let descriptor_id = Ref::new(type0_id.get() + 2);
    let font_file_id = Ref::new(type0_id.get() + 3);
    let to_unicode_id = Ref::new(type0_id.get() + 4);
    let FontUse {
        units_per_em,
        remapper,
        glyphs,
        ..
    } = font_use;
    let units_per_em = *units_per_em;

    let subset = subsetter::subset(&font.bytes, font.face_index, remapper)
        .map_err(|e| ReceiptPdfError::Subset(e.to_string()))?;
    let is_cff = face.tables().glyf.is_none();

    let base_font = format!("{}+{}", subset_tag(remapper), font.postscript_name);
    let base_font = Name(base_font.as_bytes());
    let system_info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };

    pdf.type0_font(type0_id)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font_id)
        .to_unicode(to_unicode_id);

    {
        let mut cid = pdf.cid_font(cid_font_id);
        cid.subtype(if is_cff {
            CidFontType::Type0
        } else {
            CidFontType::Type2
        })
        .base_font(base_font)
        .system_info(system_info)
        .font_descriptor(descriptor_id)
        .default_width(1000.0);
        if !is_cff {
            cid.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        // CIDs are 0..n with no gaps: one run of widths.
        cid.widths()
            .consecutive(0, glyphs.values().map(|(advance, _)| *advance));
        cid.finish();
    }

    let bbox = face.global_bounding_box();
    let ascent = em(face.ascender(), units_per_em);
    let descent = em(face.descender(), units_per_em);
    let cap_height = face
        .capital_height()
        .map(|h| em(h, units_per_em))
        .unwrap_or(ascent);
    {
        let mut descriptor = pdf.font_descriptor(descriptor_id);
        descriptor
            .name(base_font)
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                em(bbox.x_min, units_per_em),
                em(bbox.y_min, units_per_em),
                em(bbox.x_max, units_per_em),
                em(bbox.y_max, units_per_em),
            ))
            .italic_angle(0.0)
            .ascent(ascent)
            .descent(descent)
            .cap_height(cap_height)
            .stem_v(80.0);
        if is_cff {
            descriptor.font_file3(font_file_id);
        } else {
            descriptor.font_file2(font_file_id);
        }
        descriptor.finish();
    }

    let compressed_font = deflate(&subset)?;
    {
        let mut file = pdf.stream(font_file_id, &compressed_font);
        file.filter(Filter::FlateDecode);
        if is_cff {
            file.pair(Name(b"Subtype"), Name(b"OpenType"));
        } else {
            file.pair(
                Name(b"Length1"),
                i32::try_from(subset.len()).unwrap_or(i32::MAX),
            );
        }
        file.finish();
    }

    let mut cmap = UnicodeCmap::new(Name(b"Yibao-Receipt-UTF16"), system_info);
    for (&cid, (_, text)) in glyphs.iter().skip(1) {
        cmap.pair_with_multiple(cid, text.chars());
    }
    let compressed_cmap = deflate(&cmap.finish().into_vec())?;
    pdf.cmap(to_unicode_id, &compressed_cmap)
        .name(Name(b"Yibao-Receipt-UTF16"))
        .system_info(system_info)
        .filter(Filter::FlateDecode);
    Ok(())
}
