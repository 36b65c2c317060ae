//! Reads roster files (花名册) that schools and communities send, CSV or XLSX, into raw text rows.
//!
//! This crate does not interpret columns: it turns a file into rows of cell strings, streamed, with
//! errors that name the row (and column) as Excel shows them. Mapping header names and validating
//! values is the caller's job.
//!
//! ```no_run
//! use std::path::Path;
//! use yibao_roster_file::{Limits, RosterReader};
//!
//! # fn main() -> Result<(), yibao_roster_file::RosterFileError> {
//! let mut reader = RosterReader::open(Path::new("花名册.xlsx"), Limits::default())?;
//! println!("表头：{:?}", reader.header());
//! for row in &mut reader {
//!     let row = row?;
//!     println!("第{}行：{:?}", row.row_number, row.cells);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What every row goes through, CSV and XLSX alike:
//! - cells are trimmed of surrounding whitespace (including the full-width space U+3000, tabs and
//!   no-break spaces) and of invisible zero-width characters (U+200B–U+200D, U+2060, U+FEFF); inner
//!   text is never altered;
//! - one leading apostrophe that Excel users type to force text (`'320602198001011235`) is removed;
//!   a leading tab is whitespace and goes with the trim; in CSV, Excel's `="320602198001011235"`
//!   text formula is unwrapped too;
//! - trailing empty cells are dropped, so rows are ragged: a missing cell means empty;
//! - rows whose cells are all empty are skipped, but row numbers still count them;
//! - XLSX numbers are read as Excel shows them (15 significant digits, see
//!   [`excel_number_text`]): a typed `68.4` that Excel stored as `68.400000000000006` reads `68.4`.

mod csv_source;
mod error;
mod xlsx_source;

use std::path::Path;

use chrono::{Days, NaiveDate};

pub use error::{column_name, RosterFileError};

/// The two kinds of roster file accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RosterFormat {
    Csv,
    Xlsx,
}

impl RosterFormat {
    /// By extension, case-insensitive: `.csv` or `.xlsx`; anything else (`.xls`, `.et`, no
    /// extension) is [`RosterFileError::UnsupportedFormat`].
    pub fn from_path(path: &Path) -> Result<RosterFormat, RosterFileError> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        match extension.to_ascii_lowercase().as_str() {
            "csv" => Ok(RosterFormat::Csv),
            "xlsx" => Ok(RosterFormat::Xlsx),
            _ => Err(RosterFileError::UnsupportedFormat { extension }),
        }
    }
}

/// One row with content, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// 1-based row number as Excel shows it; the header is normally row 1. Blank rows are not
    /// yielded but are counted, and XLSX rows keep the numbers stored in the file.
    pub row_number: usize,
    /// Cleaned cell texts (see the crate documentation), left to right, without trailing empty
    /// cells. Never empty.
    pub cells: Vec<String>,
}

/// Bounds on what a file may contain; each one refused with its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of the file on disk. Checked before anything is read.
    pub max_file_bytes: u64,
    /// Data rows: rows with content after the header; blank rows and the header not counted.
    pub max_rows: usize,
    /// Rightmost column with content in any row, header included. Empty cells beyond it (trailing
    /// commas, formatted but empty XLSX cells) are fine.
    pub max_columns: usize,
    /// Characters (not bytes) in one cell after cleaning.
    pub max_cell_chars: usize,
    /// Entries in an XLSX file's shared-string table.
    pub max_shared_strings: usize,
}

impl Default for Limits {
    /// 256 MiB, 2 000 000 rows, 64 columns, 512 characters a cell, 4 000 000 shared strings.
    fn default() -> Limits {
        Limits {
            max_file_bytes: 256 * 1024 * 1024,
            max_rows: 2_000_000,
            max_columns: 64,
            max_cell_chars: 512,
            max_shared_strings: 4_000_000,
        }
    }
}

/// What a file's text turned out to be encoded in. XLSX is always [`Encoding::Utf8`].
///
/// CSV detection, once at open: a UTF-8 byte-order mark means [`Encoding::Utf8Bom`]. Otherwise the
/// file is scanned to its first non-ASCII byte (so a GB18030 file whose first 64 KiB are ASCII is
/// still seen as GB18030) and the 64 KiB from there decide: valid UTF-8 (a character cut at the end
/// of the sample allowed), or a first line that is valid UTF-8 with a Chinese character in it,
/// means [`Encoding::Utf8`]; anything else [`Encoding::Gb18030`]. A pure-ASCII file is
/// [`Encoding::Utf8`].
/// Every line is then decoded strictly: a line that does not fit the detected encoding is
/// [`RosterFileError::MixedEncoding`] with its row, never mojibake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// UTF-8 without a byte-order mark, including plain ASCII.
    Utf8,
    /// UTF-8 with a byte-order mark, as Excel's “CSV UTF-8” saves it.
    Utf8Bom,
    /// GB 18030 (GB 18030-2022, as `encoding_rs` decodes it), which includes GBK and GB 2312: plain
    /// “CSV” as Excel on Chinese Windows saves it is GBK, a subset, and reads as GB 18030; four-byte
    /// sequences (characters outside GBK: most of Ext A, everything outside the BMP, variation
    /// selectors) are decoded too. Never called “GBK”: GBK cannot hold 𪚥, GB 18030 can.
    Gb18030,
}

/// A roster file opened for reading: the header is read at open, data rows are then streamed by
/// iterating, one row in memory at a time.
///
/// After the first error the iterator ends. An error can come after good rows (a bad row, or an
/// XLSX checksum that is only known once the sheet has been read to its end), so a caller should
/// treat the file as accepted only when the iterator ends without one.
pub struct RosterReader {
    source: Source,
    header: Vec<String>,
    header_row: usize,
    sheet: Option<String>,
    encoding: Encoding,
    limits: Limits,
    data_rows: usize,
    done: bool,
}

enum Source {
    Csv(Box<csv_source::CsvRows>),
    Xlsx(Box<xlsx_source::XlsxRows>),
}

impl Source {
    /// The next row (blank rows included, as an empty `Vec`), or `None` at the end.
    fn next_row(&mut self) -> Result<Option<(usize, Vec<String>)>, RosterFileError> {
        match self {
            Source::Csv(rows) => rows.next_row(),
            Source::Xlsx(rows) => rows.next_row(),
        }
    }
}

impl std::fmt::Debug for RosterReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RosterReader")
            .field("header", &self.header)
            .field("header_row", &self.header_row)
            .field("sheet", &self.sheet)
            .field("encoding", &self.encoding)
            .field("limits", &self.limits)
            .field("data_rows", &self.data_rows)
            .finish_non_exhaustive()
    }
}

/// How well a sheet's header row fits what the caller reads; see [`RosterReader::open_finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFit {
    /// Holds every column the caller needs: this is the sheet.
    Fits,
    /// Holds some of them, or names close to them: the sheet, if no other fits.
    Resembles,
    /// Nothing the caller needs (an instructions sheet, a list of codes).
    No,
}

/// Sheets of a workbook whose header row [`RosterReader::open_finding`] looks at, at most.
pub const MAX_SHEETS_EXAMINED: usize = 64;

impl RosterReader {
    /// Opens `path`, its format told by the extension (see [`RosterFormat::from_path`]). Checks the
    /// size limit first, then detects the encoding (CSV) or takes the first worksheet (XLSX), then
    /// reads the header.
    pub fn open(path: &Path, limits: Limits) -> Result<RosterReader, RosterFileError> {
        let format = RosterFormat::from_path(path)?;
        RosterReader::open_as(path, format, limits)
    }

    /// Like [`RosterReader::open`] with the format given, for uploads stored under a name without
    /// the original extension.
    pub fn open_as(
        path: &Path,
        format: RosterFormat,
        limits: Limits,
    ) -> Result<RosterReader, RosterFileError> {
        RosterReader::open_as_finding(path, format, limits, &|_| HeaderFit::Fits)
    }

    /// Like [`RosterReader::open`], but in a workbook the sheet read is the first whose header row
    /// `fit` calls [`HeaderFit::Fits`]; failing that the first it calls [`HeaderFit::Resembles`];
    /// failing that the first sheet. So a first sheet of instructions (填表说明) is passed over.
    /// Visible sheets are tried in tab order, then hidden ones, at most
    /// [`MAX_SHEETS_EXAMINED`]. A CSV file is one sheet; [`RosterReader::sheet_name`] tells which
    /// sheet was read.
    pub fn open_finding(
        path: &Path,
        limits: Limits,
        fit: &dyn Fn(&[String]) -> HeaderFit,
    ) -> Result<RosterReader, RosterFileError> {
        let format = RosterFormat::from_path(path)?;
        RosterReader::open_as_finding(path, format, limits, fit)
    }

    /// [`RosterReader::open_finding`] with the format given.
    pub fn open_as_finding(
        path: &Path,
        format: RosterFormat,
        limits: Limits,
        fit: &dyn Fn(&[String]) -> HeaderFit,
    ) -> Result<RosterReader, RosterFileError> {
        let size = std::fs::metadata(path)?.len();
        if size > limits.max_file_bytes {
            return Err(RosterFileError::TooLarge {
                size,
                limit: limits.max_file_bytes,
            });
        }
        let reader = |source: Source, encoding: Encoding, sheet: Option<&str>| RosterReader {
            source,
            header: Vec::new(),
            header_row: 0,
            sheet: sheet.map(str::to_owned),
            encoding,
            limits,
            data_rows: 0,
            done: false,
        };
        match format {
            RosterFormat::Csv => {
                let rows = csv_source::CsvRows::open(path, limits)?;
                let encoding = rows.encoding();
                let mut reader = reader(Source::Csv(Box::new(rows)), encoding, None);
                if !reader.read_header()? {
                    return Err(RosterFileError::Empty);
                }
                Ok(reader)
            }
            RosterFormat::Xlsx => {
                let book = xlsx_source::XlsxBook::open(path, limits)?;
                let mut first = None;
                let mut resembling = None;
                for index in 0..book.sheet_count().min(MAX_SHEETS_EXAMINED) {
                    let rows = book.rows(index)?;
                    let mut candidate = reader(
                        Source::Xlsx(Box::new(rows)),
                        Encoding::Utf8,
                        book.sheet_name(index),
                    );
                    let has_header = candidate.read_header()?;
                    let verdict = if has_header {
                        fit(&candidate.header)
                    } else {
                        HeaderFit::No
                    };
                    match verdict {
                        HeaderFit::Fits => return Ok(candidate),
                        HeaderFit::Resembles if resembling.is_none() => {
                            resembling = Some(candidate)
                        }
                        _ if first.is_none() && has_header => first = Some(candidate),
                        _ => {}
                    }
                }
                resembling.or(first).ok_or(RosterFileError::Empty)
            }
        }
    }

    /// Reads up to the first row with content and makes it the header; `false` when there is none.
    fn read_header(&mut self) -> Result<bool, RosterFileError> {
        loop {
            match self.source.next_row()? {
                None => return Ok(false),
                Some((_, cells)) if cells.is_empty() => continue,
                Some((row, cells)) => {
                    // Cells are already cleaned, which trims a byte-order mark (U+FEFF) too.
                    self.header_row = row;
                    self.header = cells;
                    return Ok(true);
                }
            }
        }
    }

    /// The worksheet read, by the name on its tab; `None` for CSV (and for a workbook without a
    /// sheet list).
    pub fn sheet_name(&self) -> Option<&str> {
        self.sheet.as_deref()
    }

    /// The header: the first row with content (row 1 unless the file starts with blank rows),
    /// cells cleaned like every row's and a UTF-8 byte-order mark removed.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The row number of the header, normally 1.
    pub fn header_row_number(&self) -> usize {
        self.header_row
    }

    /// The CSV encoding detected at open; [`Encoding::Utf8`] for XLSX. Fixed at open: the
    /// detection looks past any leading pure-ASCII part of the file (see [`Encoding`]), so it does
    /// not change while reading.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl Iterator for RosterReader {
    type Item = Result<RawRow, RosterFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            match self.source.next_row() {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some((_, cells))) if cells.is_empty() => continue,
                Ok(Some((row_number, cells))) => {
                    self.data_rows += 1;
                    if self.data_rows > self.limits.max_rows {
                        self.done = true;
                        return Some(Err(RosterFileError::TooManyRows {
                            limit: self.limits.max_rows,
                        }));
                    }
                    return Some(Ok(RawRow { row_number, cells }));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl std::iter::FusedIterator for RosterReader {}

/// Characters trimmed from both ends of a cell: Unicode whitespace (space, tab, CR/LF, U+3000
/// full-width space, U+00A0 …) and invisible zero-width characters that copy-paste brings along.
fn is_trimmed(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

/// Trims a cell and removes one leading apostrophe (Excel's “force text” marker).
pub(crate) fn clean_cell(raw: &str) -> String {
    let trimmed = raw.trim_matches(is_trimmed);
    match trimmed.strip_prefix('\'') {
        Some(rest) => rest.trim_start_matches(is_trimmed).to_owned(),
        None => trimmed.to_owned(),
    }
}

/// `text` cut to at most `max_chars` characters.
pub(crate) fn truncate_chars(text: &mut String, max_chars: usize) {
    if let Some((index, _)) = text.char_indices().nth(max_chars) {
        text.truncate(index);
    }
}

/// Checks cell lengths, drops trailing empty cells, checks the column count. `cells` are already
/// cleaned and indexed by column (index 0 is column A).
pub(crate) fn finish_row(
    row: usize,
    mut cells: Vec<String>,
    limits: &Limits,
) -> Result<Vec<String>, RosterFileError> {
    for (index, cell) in cells.iter().enumerate() {
        // Bytes bound chars from above: skip counting short cells.
        if cell.len() > limits.max_cell_chars && cell.chars().count() > limits.max_cell_chars {
            return Err(RosterFileError::CellTooLong {
                row,
                column: index + 1,
                limit: limits.max_cell_chars,
            });
        }
    }
    while cells.last().is_some_and(String::is_empty) {
        cells.pop();
    }
    if cells.len() > limits.max_columns {
        return Err(RosterFileError::TooManyColumns {
            row,
            limit: limits.max_columns,
        });
    }
    Ok(cells)
}

/// Significant digits Excel keeps and shows of a number.
pub const EXCEL_DIGITS: usize = 15;

/// A number as an XLSX file stores it, as Excel shows it: `68.400000000000006` → `68.4`,
/// `19.989999999999998` → `19.99`, `1.3800138E10` → `13800138000`.
///
/// Excel keeps 15 significant digits but writes up to 17 into the file, so a typed `68.4` comes
/// back as `68.400000000000006`. The decimal text is rounded to 15 significant digits (half up,
/// on the digits: no float is involved), trailing zeros are dropped, and the result is written
/// without an exponent from 1E-20 up to (not including) 1E15. Larger and smaller magnitudes keep
/// Excel's scientific form (`1.1010519491231E+17`): an 18-digit ID number typed as a number has
/// lost its last digits in Excel already, and the `E+` tells the caller so.
///
/// `None` when `stored` is not a plain decimal number (optional `-`, digits with at most one `.`,
/// optional exponent): the caller keeps the text as it is.
pub fn excel_number_text(stored: &str) -> Option<String> {
    let text = stored.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exp = &unsigned[at + 1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (&unsigned[..at], exp.parse::<i64>().ok()?)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        || whole.len().saturating_add(fraction.len()) > 4096
    {
        return None;
    }
    // value = 0.d1d2d3… × 10^point
    let mut digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    let mut point = i64::try_from(whole.len()).ok()? + exponent;
    let leading = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..leading);
    point -= i64::try_from(leading).ok()?;
    if digits.len() > EXCEL_DIGITS {
        let round_up = digits[EXCEL_DIGITS] >= b'5';
        digits.truncate(EXCEL_DIGITS);
        if round_up {
            let mut carry = true;
            for d in digits.iter_mut().rev() {
                if *d == b'9' {
                    *d = b'0';
                } else {
                    *d += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                digits.insert(0, b'1');
                digits.truncate(EXCEL_DIGITS);
                point += 1;
            }
        }
    }
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return Some("0".to_owned());
    }
    let digits = String::from_utf8(digits).ok()?;
    let mut out = String::with_capacity(digits.len() + 24);
    if negative {
        out.push('-');
    }
    let length = i64::try_from(digits.len()).ok()?;
    if !(-19..=15).contains(&point) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let shown = point - 1;
        out.push_str(&format!(
            "E{}{:02}",
            if shown < 0 { '-' } else { '+' },
            shown.abs()
        ));
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-point).ok()?));
        out.push_str(&digits);
    } else if point >= length {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(point - length).ok()?,
        ));
    } else {
        let (integer, decimals) = digits.split_at(usize::try_from(point).ok()?);
        out.push_str(integer);
        out.push('.');
        out.push_str(decimals);
    }
    Some(out)
}

/// Largest serial [`excel_serial_to_date`] accepts: 9999-12-31, Excel's last date.
pub const MAX_EXCEL_SERIAL: u32 = 2_958_465;

/// An Excel date serial (1900 date system) as XLSX stores dates, e.g. `44136` → 2020-11-01.
///
/// Only whole numbers `1..=2958465` written as ASCII digits, optionally followed by `.` and zeros
/// (`44136.0`), are dates; anything else (fractions, signs, exponents, spaces) is `None`.
///
/// Serial 1 is 1900-01-01. Excel (copying Lotus 1-2-3) counts a 1900-02-29 that never existed as
/// serial 60: serials 1–59 are 1899-12-31 + serial days, serial 60 is that fake day and gives
/// `None`, and serials from 61 on are 1899-12-30 + serial days (61 → 1900-03-01).
pub fn excel_serial_to_date(text: &str) -> Option<NaiveDate> {
    let digits = match text.split_once('.') {
        Some((whole, zeros)) if !zeros.is_empty() && zeros.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => text,
    };
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let serial: u32 = digits.parse().ok()?;
    let (epoch, days) = match serial {
        0 => return None,
        1..=59 => (NaiveDate::from_ymd_opt(1899, 12, 31)?, serial),
        60 => return None,
        61..=MAX_EXCEL_SERIAL => (NaiveDate::from_ymd_opt(1899, 12, 30)?, serial),
        _ => return None,
    };
    epoch.checked_add_days(Days::new(u64::from(days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(
            RosterFormat::from_path(Path::new("a/花名册.CSV")).unwrap(),
            RosterFormat::Csv
        );
        assert_eq!(
            RosterFormat::from_path(Path::new("x.XlSx")).unwrap(),
            RosterFormat::Xlsx
        );
        for bad in ["x.xls", "x", "x.csv.txt", "x.et"] {
            assert!(
                matches!(
                    RosterFormat::from_path(Path::new(bad)),
                    Err(RosterFileError::UnsupportedFormat { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn cells_are_cleaned_but_inner_text_kept() {
        assert_eq!(clean_cell("  张 三\u{3000}"), "张 三");
        assert_eq!(clean_cell("'320602198001011235"), "320602198001011235");
        assert_eq!(clean_cell("\t320602198001011235"), "320602198001011235");
        assert_eq!(clean_cell(" '\t3206 "), "3206");
        assert_eq!(clean_cell("\u{200b}3206\u{feff}"), "3206");
        assert_eq!(clean_cell("O'Neil"), "O'Neil");
        assert_eq!(clean_cell("''x"), "'x");
        assert_eq!(clean_cell("'"), "");
    }

    #[test]
    fn finish_row_drops_trailing_empties_and_checks() {
        let limits = Limits {
            max_columns: 2,
            max_cell_chars: 3,
            ..Limits::default()
        };
        let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            finish_row(2, row(&["a", "", "", ""]), &limits).unwrap(),
            row(&["a"])
        );
        assert!(matches!(
            finish_row(2, row(&["a", "", "c"]), &limits),
            Err(RosterFileError::TooManyColumns { row: 2, limit: 2 })
        ));
        assert_eq!(
            finish_row(2, row(&["张三丰", "b"]), &limits).unwrap().len(),
            2
        );
        assert!(matches!(
            finish_row(4, row(&["a", "abcd"]), &limits),
            Err(RosterFileError::CellTooLong {
                row: 4,
                column: 2,
                limit: 3
            })
        ));
    }

    #[test]
    fn excel_numbers_read_as_excel_shows_them() {
        let shown = |t: &str| excel_number_text(t);
        let some = |t: &str| Some(t.to_owned());
        // What Excel writes for a typed 68.4 and 19.99 (17 significant digits).
        assert_eq!(shown("68.400000000000006"), some("68.4"));
        assert_eq!(shown("19.989999999999998"), some("19.99"));
        assert_eq!(shown("0.30000000000000004"), some("0.3"));
        assert_eq!(shown("120"), some("120"));
        assert_eq!(shown("120.5"), some("120.5"));
        assert_eq!(shown("44136.0"), some("44136"));
        assert_eq!(shown("46022.000000000007"), some("46022"));
        // Three real decimals stay three decimals.
        assert_eq!(shown("12.345000000000001"), some("12.345"));
        assert_eq!(shown("0.005"), some("0.005"));
        // Phone numbers and region codes stored as numbers.
        assert_eq!(shown("1.3800138E10"), some("13800138000"));
        assert_eq!(shown("13800138000"), some("13800138000"));
        assert_eq!(shown("320600"), some("320600"));
        // 15 digits are kept; a 15-digit old ID number typed as a number survives.
        assert_eq!(shown("110105491231002"), some("110105491231002"));
        assert_eq!(shown("999999999999999"), some("999999999999999"));
        // Beyond 15 digits Excel has lost the rest: its scientific form says so.
        assert_eq!(
            shown("3.2060219800101101E+17"),
            some("3.20602198001011E+17")
        );
        assert_eq!(shown("1.10105194912310E+17"), some("1.1010519491231E+17"));
        assert_eq!(shown("320602198001011235"), some("3.20602198001011E+17"));
        assert_eq!(shown("1E+15"), some("1E+15"));
        // Rounding carries through nines.
        assert_eq!(shown("9.9999999999999998"), some("10"));
        assert_eq!(shown("99.999999999999986"), some("100"));
        assert_eq!(shown("-68.400000000000006"), some("-68.4"));
        assert_eq!(shown("-0"), some("0"));
        assert_eq!(shown("0"), some("0"));
        assert_eq!(shown("1.0000000000000001E-5"), some("0.00001"));
        assert_eq!(shown("1E-300"), some("1E-300"));
        assert_eq!(shown(".5"), some("0.5"));
        for not_a_number in [
            "",
            "-",
            ".",
            "#N/A",
            "1e",
            "1E+",
            "12a",
            "1.2.3",
            "TRUE",
            "1E+999999",
            "二",
        ] {
            assert_eq!(shown(not_a_number), None, "{not_a_number}");
        }
    }

    #[test]
    fn excel_serials() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(excel_serial_to_date("44136"), d(2020, 11, 1));
        assert_eq!(excel_serial_to_date("44136.0"), d(2020, 11, 1));
        assert_eq!(excel_serial_to_date("1"), d(1900, 1, 1));
        assert_eq!(excel_serial_to_date("59"), d(1900, 2, 28));
        assert_eq!(excel_serial_to_date("60"), None);
        assert_eq!(excel_serial_to_date("61"), d(1900, 3, 1));
        assert_eq!(excel_serial_to_date("29221"), d(1980, 1, 1));
        assert_eq!(excel_serial_to_date("2958465"), d(9999, 12, 31));
        for bad in [
            "0",
            "2958466",
            "44136.5",
            "-1",
            "+44136",
            "4.4136E+4",
            " 44136",
            "",
            ".0",
            "44136.",
            "99999999999999999999",
            "二〇二〇",
        ] {
            assert_eq!(excel_serial_to_date(bad), None, "{bad}");
        }
    }
}
