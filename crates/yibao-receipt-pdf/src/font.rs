//! The CJK fonts a receipt embeds: loading them, checking the main one can draw a receipt, finding
//! the defaults, and the fallback chain ([`ReceiptFonts`]) that draws rarer Han characters.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ReceiptPdfError;

/// Debian package that provides the default receipt font.
pub const FONT_PACKAGE: &str = "fonts-wqy-microhei";
/// Configuration key (in `yibao.toml`) that sets the receipt font's path.
pub const FONT_PATH_CONFIG_KEY: &str = "receipt_font";
/// Environment variable that sets the receipt font's path.
pub const FONT_PATH_ENV: &str = "YIBAO_RECEIPT_FONT";

/// Candidate paths of the default font, 文泉驿微米黑 (WenQuanYi Micro Hei) from Debian's
/// `fonts-wqy-microhei`: a TrueType-outline collection whose face 0 is the proportional face.
/// The first one that exists is the default (see [`find_default_font`]).
pub const DEFAULT_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/local/share/fonts/wqy-microhei.ttc",
];

/// Configuration key (in `yibao.toml`) that lists the fallback fonts' paths.
pub const FALLBACK_FONTS_CONFIG_KEY: &str = "receipt_fallback_fonts";
/// Environment variable that lists the fallback fonts' paths, separated by `:`.
pub const FALLBACK_FONTS_ENV: &str = "YIBAO_RECEIPT_FALLBACK_FONTS";

/// Candidate paths of the default fallback fonts, in the order the chain tries them (after the
/// main font): Debian's `fonts-hanazono` (花園明朝 HanaMinA: BMP incl. Ext A; HanaMinB: planes 2
/// and 3, Ext B to F) and `fonts-babelstone-han` (BabelStone Han: Ext G and later). Each one that
/// exists is used (see [`find_default_fallback_fonts`]); `docs/fonts.md` has their coverage.
pub const DEFAULT_FALLBACK_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
    "/usr/share/fonts/truetype/hanazono/HanaMinB.ttf",
    "/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf",
];

/// Debian packages that provide [`DEFAULT_FALLBACK_FONT_PATHS`].
pub const FALLBACK_FONT_PACKAGES: &[&str] = &["fonts-hanazono", "fonts-babelstone-han"];

/// Most fallback fonts a chain holds (so at most 1 + 7 fonts, each at most [`MAX_FONT_BYTES`]).
pub const MAX_FALLBACK_FONTS: usize = 7;

/// Face index of the default font inside its collection (0: WenQuanYi Micro Hei, proportional).
pub const DEFAULT_FACE_INDEX: u32 = 0;

/// Largest font file accepted: 64 MiB. Real CJK fonts are 5 to 30 MiB.
pub const MAX_FONT_BYTES: u64 = 64 * 1024 * 1024;

/// Characters every receipt draws whatever its data: the fixed labels, digits and the void stamp.
/// A font that lacks any of them is refused when it is loaded, not when a receipt is rendered.
const REQUIRED_CHARS: &str = "社会保险费电子票据代码号校验开日期交款人证件费种品目名称所属期金额元合计大写小备注收单位章作废参地缴年度查0123456789.¥（）：";

/// The first path of [`DEFAULT_FONT_PATHS`] that exists, if any.
pub fn find_default_font() -> Option<PathBuf> {
    DEFAULT_FONT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Those of [`DEFAULT_FALLBACK_FONT_PATHS`] that exist, in chain order.
pub fn find_default_fallback_fonts() -> Vec<PathBuf> {
    DEFAULT_FALLBACK_FONT_PATHS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}

/// A loaded TrueType/OpenType font (or one face of a TTC/OTC collection) that has been checked to
/// parse, to allow subsetting and embedding, and to draw the receipt's fixed text. Cheap to clone.
#[derive(Clone)]
pub struct ReceiptFont {
    pub(crate) bytes: Arc<Vec<u8>>,
    pub(crate) face_index: u32,
    pub(crate) postscript_name: String,
}

impl fmt::Debug for ReceiptFont {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptFont")
            .field("postscript_name", &self.postscript_name)
            .field("face_index", &self.face_index)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl ReceiptFont {
    /// Loads the font file at `path`, face [`DEFAULT_FACE_INDEX`] if it is a collection. Refuses
    /// files above [`MAX_FONT_BYTES`]. A missing file gives [`ReceiptPdfError::FontMissing`],
    /// whose message names the Debian package to install and the configuration key to set.
    pub fn load(path: &Path) -> Result<ReceiptFont, ReceiptPdfError> {
        Self::load_face(path, DEFAULT_FACE_INDEX)
    }

    /// Like [`ReceiptFont::load`], with an explicit face index for a TTC/OTC collection.
    pub fn load_face(path: &Path, face_index: u32) -> Result<ReceiptFont, ReceiptPdfError> {
        Self::from_bytes(read_font_file(path)?, face_index)
    }

    /// Loads a *fallback* font (face 0): like [`ReceiptFont::load`], but the font need not draw the
    /// receipt's fixed text, only the rarer characters it is in the chain for.
    pub fn load_fallback(path: &Path) -> Result<ReceiptFont, ReceiptPdfError> {
        Self::checked(read_font_file(path).map_err(fallback_missing)?, 0, false)
    }

    /// A fallback checked as [`ReceiptFont::load_fallback`] does, without its outlines
    /// ([`read_font_without_outlines`]): only for asking what it maps.
    fn fallback_without_outlines(path: &Path) -> Result<ReceiptFont, ReceiptPdfError> {
        Self::checked(
            read_font_without_outlines(path).map_err(fallback_missing)?,
            0,
            false,
        )
    }

    /// Checks and keeps font bytes: a TrueType/OpenType font, or a TTC/OTC collection with
    /// `face_index` choosing the face (0 for a single font).
    pub fn from_bytes(bytes: Vec<u8>, face_index: u32) -> Result<ReceiptFont, ReceiptPdfError> {
        Self::checked(bytes, face_index, true)
    }

    fn checked(
        bytes: Vec<u8>,
        face_index: u32,
        draws_fixed_text: bool,
    ) -> Result<ReceiptFont, ReceiptPdfError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > MAX_FONT_BYTES {
            return Err(ReceiptPdfError::FontTooLarge { bytes: len });
        }
        let postscript_name = {
            let face = parse_face(&bytes, face_index)?;
            let tables = face.tables();
            if tables.glyf.is_none() && tables.cff.is_none() {
                return Err(ReceiptPdfError::FontUnsupported);
            }
            if matches!(
                face.permissions(),
                Some(ttf_parser::Permissions::Restricted)
            ) || !face.is_subsetting_allowed()
            {
                return Err(ReceiptPdfError::FontNotEmbeddable);
            }
            let lacking = REQUIRED_CHARS
                .chars()
                .find(|&c| face.glyph_index(c).is_none());
            if let (true, Some(ch)) = (draws_fixed_text, lacking) {
                return Err(ReceiptPdfError::FontLacksCjk { ch });
            }
            postscript_name(&face)
        };
        Ok(ReceiptFont {
            bytes: Arc::new(bytes),
            face_index,
            postscript_name,
        })
    }

    /// The face's PostScript name (ASCII letters, digits and `-` only), e.g. `WenQuanYiMicroHei`.
    pub fn postscript_name(&self) -> &str {
        &self.postscript_name
    }

    pub(crate) fn face(&self) -> Result<ttf_parser::Face<'_>, ReceiptPdfError> {
        parse_face(&self.bytes, self.face_index)
    }
}

/// Reads a font file of at most [`MAX_FONT_BYTES`].
fn read_font_file(path: &Path) -> Result<Vec<u8>, ReceiptPdfError> {
    let (file, len) = open_font_file(path)?;
    read_whole(path, file, len)
}

fn font_read_error(path: &Path) -> impl Fn(std::io::Error) -> ReceiptPdfError + '_ {
    |source| ReceiptPdfError::FontRead {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a font file, refusing one that is missing, not a file, or above [`MAX_FONT_BYTES`].
fn open_font_file(path: &Path) -> Result<(std::fs::File, u64), ReceiptPdfError> {
    let read_error = font_read_error(path);
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReceiptPdfError::FontMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(read_error(e)),
    };
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(ReceiptPdfError::FontMissing {
            path: path.to_path_buf(),
        });
    }
    if metadata.len() > MAX_FONT_BYTES {
        return Err(ReceiptPdfError::FontTooLarge {
            bytes: metadata.len(),
        });
    }
    Ok((file, metadata.len()))
}

fn read_whole(path: &Path, file: std::fs::File, len: u64) -> Result<Vec<u8>, ReceiptPdfError> {
    // The file may grow between the check and the read: read at most one byte past the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_FONT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(font_read_error(path))?;
    Ok(bytes)
}

/// Most tables a font read without its outlines may have; a file claiming more is read whole.
const MAX_FONT_TABLES: usize = 256;

/// A TrueType font file without its outlines: every table but `glyf` as it is, in a new table
/// directory, `glyf` left empty. Enough to check a fallback font and to ask which characters it
/// maps, in about 1.5 MB where BabelStone Han's file is 51 MB (the server's start-up check read
/// them whole: a peak of 73 to 82 MB). Never drawn with. A collection, a CFF font, tables that
/// overlap, or anything else the directory does not describe plainly is read whole, so the
/// parser judges it as before.
fn read_font_without_outlines(path: &Path) -> Result<Vec<u8>, ReceiptPdfError> {
    use std::io::{Seek, SeekFrom};
    let (mut file, len) = open_font_file(path)?;
    let read_error = font_read_error(path);
    let mut header = [0u8; 12];
    if len < 12 {
        return read_whole(path, file, len);
    }
    file.read_exact(&mut header).map_err(&read_error)?;
    let tables = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let truetype = matches!(header[..4], [0, 1, 0, 0] | [b't', b'r', b'u', b'e']);
    let directory_len = 12 + 16 * tables as u64;
    if !truetype || tables > MAX_FONT_TABLES || directory_len > len {
        file.seek(SeekFrom::Start(0)).map_err(&read_error)?;
        return read_whole(path, file, len);
    }
    let mut records = vec![0u8; 16 * tables];
    file.read_exact(&mut records).map_err(&read_error)?;
    let mut kept: Vec<([u8; 16], u64, u64)> = Vec::with_capacity(tables);
    for record in records.chunks_exact(16) {
        let field = |at: usize| {
            u64::from(u32::from_be_bytes([
                record[at],
                record[at + 1],
                record[at + 2],
                record[at + 3],
            ]))
        };
        let (offset, length) = (field(8), field(12));
        if offset.saturating_add(length) > len {
            file.seek(SeekFrom::Start(0)).map_err(&read_error)?;
            return read_whole(path, file, len);
        }
        let mut copy = [0u8; 16];
        copy.copy_from_slice(record);
        kept.push((
            copy,
            offset,
            if &record[..4] == b"glyf" { 0 } else { length },
        ));
    }
    let data_len: u64 = kept.iter().map(|(_, _, length)| length + 3).sum();
    if directory_len + data_len > len + 3 * tables as u64 {
        // Tables that overlap or repeat: the copy could outgrow the file many times over.
        file.seek(SeekFrom::Start(0)).map_err(&read_error)?;
        return read_whole(path, file, len);
    }
    let mut out = Vec::with_capacity(usize::try_from(directory_len + data_len).unwrap_or(0));
    out.extend_from_slice(&header);
    out.resize(usize::try_from(directory_len).unwrap_or(0), 0);
    for (i, (mut record, offset, length)) in kept.into_iter().enumerate() {
        while out.len() % 4 != 0 {
            out.push(0);
        }
        // Within MAX_FONT_BYTES (a u32), as every offset and length here.
        let new_offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let new_length = u32::try_from(length).unwrap_or(u32::MAX);
        record[8..12].copy_from_slice(&new_offset.to_be_bytes());
        record[12..16].copy_from_slice(&new_length.to_be_bytes());
        out[12 + 16 * i..28 + 16 * i].copy_from_slice(&record);
        file.seek(SeekFrom::Start(offset)).map_err(&read_error)?;
        let start = out.len();
        out.resize(start + usize::try_from(length).unwrap_or(0), 0);
        file.read_exact(&mut out[start..]).map_err(&read_error)?;
    }
    Ok(out)
}

fn fallback_missing(e: ReceiptPdfError) -> ReceiptPdfError {
    match e {
        ReceiptPdfError::FontMissing { path } => ReceiptPdfError::FallbackFontMissing { path },
        e => e,
    }
}

/// What a chain of fonts draws ([`ReceiptFonts::coverage_with_fallbacks`]).
#[derive(Debug)]
pub struct ChainCoverage {
    /// The PostScript names of the fonts that loaded, the main font first.
    pub fonts: Vec<String>,
    /// How much of each Han block ([`crate::HAN_BLOCKS`]) they draw together.
    pub blocks: Vec<crate::BlockCoverage>,
    /// Each fallback that did not load, and why.
    pub skipped: Vec<(PathBuf, ReceiptPdfError)>,
}

/// The fonts a receipt is drawn with: the main font (which draws the fixed text and most names)
/// and up to [`MAX_FALLBACK_FONTS`] fallback fonts. Each character is drawn with the first font of
/// the chain that has a glyph for it (for a character followed by a variation selector: the first
/// font with a glyph for the sequence in its cmap format 14 subtable, else the first with the
/// character). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReceiptFonts {
    /// The main font first, then the fallbacks in order.
    fonts: Vec<ReceiptFont>,
}

impl From<ReceiptFont> for ReceiptFonts {
    fn from(main: ReceiptFont) -> Self {
        ReceiptFonts { fonts: vec![main] }
    }
}

impl ReceiptFonts {
    /// A chain of the main font alone.
    pub fn new(main: ReceiptFont) -> Self {
        main.into()
    }

    /// Appends a fallback font; refused past [`MAX_FALLBACK_FONTS`].
    pub fn with_fallback(mut self, font: ReceiptFont) -> Result<Self, ReceiptPdfError> {
        if self.fonts.len() > MAX_FALLBACK_FONTS {
            return Err(ReceiptPdfError::TooManyFallbackFonts {
                max: MAX_FALLBACK_FONTS,
            });
        }
        self.fonts.push(font);
        Ok(self)
    }

    /// The main font and the fallbacks that load; for each fallback that does not, the path and
    /// why, so that a caller can warn and still serve receipts. A main font that does not load is
    /// an error, as is a list longer than [`MAX_FALLBACK_FONTS`].
    pub fn load(
        main: &Path,
        fallbacks: &[PathBuf],
    ) -> Result<(ReceiptFonts, Vec<(PathBuf, ReceiptPdfError)>), ReceiptPdfError> {
        if fallbacks.len() > MAX_FALLBACK_FONTS {
            return Err(ReceiptPdfError::TooManyFallbackFonts {
                max: MAX_FALLBACK_FONTS,
            });
        }
        let mut chain = ReceiptFonts::new(ReceiptFont::load(main)?);
        let mut skipped = Vec::new();
        for path in fallbacks {
            match ReceiptFont::load_fallback(path) {
                Ok(font) => chain = chain.with_fallback(font)?,
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        Ok((chain, skipped))
    }

    /// Like [`ReceiptFonts::with_fallbacks`], for one receipt: only the fallbacks it is drawn
    /// with are read whole. Each is first read without its outlines, to lay the receipt out and
    /// see which fonts it uses. The receipt draws the same glyphs at the same places as with
    /// every fallback (each character is drawn with the first font of the chain that has it, and
    /// a fallback left out is the first for none; only the fonts' resource names may differ), in
    /// memory for one or two fonts where the whole chain is about 100 MB.
    pub fn with_fallbacks_for(
        &self,
        receipt: &crate::ReceiptPdf<'_>,
        fallbacks: &[PathBuf],
    ) -> Result<(ReceiptFonts, Vec<(PathBuf, ReceiptPdfError)>), ReceiptPdfError> {
        let mut light = self.clone();
        let mut readable = Vec::new();
        let mut skipped = Vec::new();
        for path in fallbacks {
            match ReceiptFont::fallback_without_outlines(path) {
                Ok(font) => {
                    light = light.with_fallback(font)?;
                    readable.push(path);
                }
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        // A receipt that cannot be laid out (a character no font has) takes every fallback, so
        // that drawing it gives the same error as before, after the skipped fonts are told.
        let used = crate::render::fonts_used(receipt, &light)
            .unwrap_or_else(|_| vec![true; light.fonts.len()]);
        drop(light);
        let mut chain = self.clone();
        for (i, path) in readable.into_iter().enumerate() {
            if used.get(self.fonts.len() + i) != Some(&true) {
                continue;
            }
            match ReceiptFont::load_fallback(path) {
                Ok(font) => chain = chain.with_fallback(font)?,
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        Ok((chain, skipped))
    }

    /// This chain with the fallback fonts at `fallbacks` appended (read from disk now); for each
    /// that does not load, the path and why. The fonts already in the chain are shared, not copied.
    pub fn with_fallbacks(
        &self,
        fallbacks: &[PathBuf],
    ) -> Result<(ReceiptFonts, Vec<(PathBuf, ReceiptPdfError)>), ReceiptPdfError> {
        let mut chain = self.clone();
        let mut skipped = Vec::new();
        for path in fallbacks {
            match ReceiptFont::load_fallback(path) {
                Ok(font) => chain = chain.with_fallback(font)?,
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        Ok((chain, skipped))
    }

    /// What this chain with the fallback fonts at `fallbacks` appended would draw of each Han
    /// block, read one fallback at a time and without its outlines: each is dropped before the next
    /// is read, so the check holds one fallback's tables other than `glyf` in memory (the
    /// server's start-up check peaked at 124 MB with them all, then 73 MB one at a time). A chain longer than [`MAX_FALLBACK_FONTS`] fallbacks is refused, as
    /// [`ReceiptFonts::load`] refuses it.
    pub fn coverage_with_fallbacks(
        &self,
        fallbacks: &[PathBuf],
    ) -> Result<ChainCoverage, ReceiptPdfError> {
        if self.fonts.len() + fallbacks.len() > MAX_FALLBACK_FONTS + 1 {
            return Err(ReceiptPdfError::TooManyFallbackFonts {
                max: MAX_FALLBACK_FONTS,
            });
        }
        let mut covered = std::collections::HashSet::new();
        let mut names: Vec<String> = Vec::new();
        let mut mark = |font: &ReceiptFont| -> Result<(), ReceiptPdfError> {
            let face = font.face()?;
            for block in crate::HAN_BLOCKS {
                covered.extend(block.chars().filter(|c| has_glyph(&face, *c)));
            }
            names.push(font.postscript_name().to_owned());
            Ok(())
        };
        for font in &self.fonts {
            mark(font)?;
        }
        let mut skipped = Vec::new();
        for path in fallbacks {
            match ReceiptFont::fallback_without_outlines(path) {
                Ok(font) => mark(&font)?,
                Err(e) => skipped.push((path.clone(), e)),
            }
        }
        Ok(ChainCoverage {
            fonts: names,
            blocks: crate::coverage::han_coverage(|c| covered.contains(&c)),
            skipped,
        })
    }

    /// The main font.
    pub fn main(&self) -> &ReceiptFont {
        &self.fonts[0]
    }

    /// The main font, then the fallbacks.
    pub fn fonts(&self) -> &[ReceiptFont] {
        &self.fonts
    }

    /// How much of each Han block ([`crate::HAN_BLOCKS`]) the chain draws.
    pub fn han_coverage(&self) -> Result<Vec<crate::BlockCoverage>, ReceiptPdfError> {
        let faces = self
            .fonts
            .iter()
            .map(ReceiptFont::face)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::coverage::han_coverage(|c| {
            faces.iter().any(|f| has_glyph(f, c))
        }))
    }
}

/// Whether the face maps `c` to a real glyph (not `.notdef`).
pub(crate) fn has_glyph(face: &ttf_parser::Face<'_>, c: char) -> bool {
    face.glyph_index(c).is_some_and(|g| g.0 != 0)
}

fn parse_face(bytes: &[u8], face_index: u32) -> Result<ttf_parser::Face<'_>, ReceiptPdfError> {
    ttf_parser::Face::parse(bytes, face_index).map_err(|e| {
        let faces = ttf_parser::fonts_in_collection(bytes);
        let reason = match (e, faces) {
            (ttf_parser::FaceParsingError::FaceIndexOutOfBounds, Some(n)) => {
                format!("字体集合只有 {n} 个字体，没有第 {face_index} 个（从 0 数起）")
            }
            (ttf_parser::FaceParsingError::FaceIndexOutOfBounds, None) => {
                format!("不是字体集合，字体序号只能是 0，不能是 {face_index}")
            }
            (e, _) => e.to_string(),
        };
        ReceiptPdfError::FontInvalid(reason)
    })
}

/// The PostScript name from the `name` table, reduced to characters allowed in a PDF font name;
/// a fixed fallback when the font has none.
fn postscript_name(face: &ttf_parser::Face<'_>) -> String {
    let name = face
        .names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
        .find_map(|n| n.to_string())
        .unwrap_or_default();
    let cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    if cleaned.is_empty() {
        "ReceiptCJK".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_read_without_outlines_is_small_and_maps_what_the_whole_file_maps() {
        for path in find_default_fallback_fonts() {
            let whole = ReceiptFont::load_fallback(&path).unwrap();
            let light = ReceiptFont::fallback_without_outlines(&path).unwrap();
            assert!(
                light.bytes.len() * 8 < whole.bytes.len(),
                "{path:?}: {} of {} bytes",
                light.bytes.len(),
                whole.bytes.len()
            );
            assert_eq!(light.postscript_name(), whole.postscript_name());
            let (a, b) = (whole.face().unwrap(), light.face().unwrap());
            for block in crate::HAN_BLOCKS {
                assert!(
                    block.chars().all(|c| has_glyph(&a, c) == has_glyph(&b, c)),
                    "{path:?}: {}",
                    block.name
                );
            }
        }
    }

    #[test]
    fn a_broken_or_unusual_font_is_judged_as_when_read_whole() {
        let dir = std::env::temp_dir().join(format!("yibao-font-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&str, Vec<u8>); 5] = [
            ("short", b"\0\x01\0".to_vec()),
            // A table said to lie past the end of the file.
            ("past-end", {
                let mut b = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
                b.extend_from_slice(b"cmap\0\0\0\0\0\0\0\x1c\0\0\x10\0");
                b
            }),
            ("not-a-font", b"%PDF-1.7 and more bytes".to_vec()),
            ("empty-directory", vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // 200 tables over the same 1000 bytes: copied one by one, 200 000.
            ("overlapping", {
                let mut b = vec![0, 1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0];
                for i in 0..200u32 {
                    b.extend_from_slice(&(0x6100_0000u32 + i).to_be_bytes());
                    b.extend_from_slice(&[0, 0, 0, 0]);
                    b.extend_from_slice(&3212u32.to_be_bytes());
                    b.extend_from_slice(&1000u32.to_be_bytes());
                }
                b.resize(4212, 0);
                b
            }),
        ];
        for (name, bytes) in cases {
            let path = dir.join(name);
            std::fs::write(&path, &bytes).unwrap();
            let whole = ReceiptFont::load_fallback(&path).map(|f| f.postscript_name);
            let light = ReceiptFont::fallback_without_outlines(&path).map(|f| f.postscript_name);
            assert_eq!(
                format!("{light:?}"),
                format!("{whole:?}"),
                "{name}: the same verdict"
            );
            assert!(whole.is_err(), "{name}");
        }
        let missing = dir.join("missing.ttf");
        assert!(matches!(
            ReceiptFont::fallback_without_outlines(&missing),
            Err(ReceiptPdfError::FallbackFontMissing { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
