//! CSV rosters: encoding detection, a line-by-line decoding reader, and the `csv` crate on top.
//!
//! # Encoding
//! Excel saves “CSV UTF-8” with a byte-order mark and plain “CSV” on Chinese Windows in the ANSI
//! code page 936, which is GBK; other tools write UTF-8 without a mark, and some GB 18030. GBK is a
//! subset of GB 18030, so both are read as GB 18030 ([`Encoding::Gb18030`]): its four-byte
//! sequences hold every character GBK lacks (most of Ext A, everything outside the BMP such as
//! 𪚥, variation selectors), and a file that uses them decodes exactly. Detection, once, at open:
//! 1. a UTF-8 byte-order mark means [`Encoding::Utf8Bom`];
//! 2. otherwise the file is scanned up to its first non-ASCII byte, and the 64 KiB from there are
//!    checked: valid UTF-8 (a character cut at the end of the sample allowed) means
//!    [`Encoding::Utf8`]; so does a sample whose first line is valid UTF-8 with a Chinese character
//!    in it (a UTF-8 file with a GB 18030 part further on, reported at that part's row); anything
//!    else is [`Encoding::Gb18030`]. A file with no non-ASCII byte at all is [`Encoding::Utf8`]
//!    (and reads the same in GB 18030).
//!
//! Scanning past a pure-ASCII start (rather than sniffing only the first 64 KiB) is what makes a
//! GB 18030 file whose first 64 KiB are ASCII decode as GB 18030 from the start, with the encoding
//! known before the first row is read; the scan reads the file once more only as far as the first
//! non-ASCII byte.
//!
//! Lines are then decoded one at a time (a line break byte never occurs inside a UTF-8 or GB 18030
//! character, and neither do `"` or `,`: GB 18030's second and fourth bytes are 0x30–0x39 or
//! 0x40–0xFE), so nothing is ever decoded with the wrong encoding silently:
//! - UTF-8 (with or without mark): a line that is not valid UTF-8 is
//!   [`RosterFileError::MixedEncoding`] with its row: earlier lines had non-ASCII UTF-8, else the
//!   detection would have chosen GB 18030.
//! - GB 18030: a line that is not valid GB 18030 is [`RosterFileError::MixedEncoding`]; so is a
//!   line that is valid UTF-8 whose non-ASCII characters are all Chinese (at least three of them),
//!   the mark of a UTF-8 part pasted after a GB 18030 part. Real GB 18030 text passes that test
//!   only with a probability around 10⁻⁹ a line.
//!
//! A `?` that Excel wrote in place of a character the code page could not hold is not an encoding
//! fault here (it is a plain ASCII byte); the roster's name check refuses it with that reason.
//!
//! # Rows
//! Lines end at LF, CRLF or a lone CR. Quotes follow RFC 4180 (a quoted cell may hold commas, `""`
//! and line breaks, kept as LF). Row numbers are Excel's: one per record, blank lines included,
//! however many lines a record spans. To keep the `csv` crate's record count equal to Excel's row
//! count, the decoder hands it each blank line as `""` (one empty cell) instead of skipping it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::human_size;
use crate::{clean_cell, finish_row, Encoding, Limits, RosterFileError};

/// Bytes sniffed from the first non-ASCII byte on.
const SNIFF_BYTES: usize = 64 * 1024;
const READ_BUFFER: usize = 64 * 1024;
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";
const OLE_MAGIC: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";

pub(crate) struct CsvRows {
    reader: csv::Reader<LineDecoder<BufReader<File>>>,
    record: csv::StringRecord,
    /// Row number of the last record read.
    row: usize,
    encoding: Encoding,
    limits: Limits,
}

impl CsvRows {
    pub(crate) fn open(path: &Path, limits: Limits) -> Result<CsvRows, RosterFileError> {
        let mut file = File::open(path)?;
        let encoding = sniff(&mut file)?;
        let start = if encoding == Encoding::Utf8Bom {
            UTF8_BOM.len() as u64
        } else {
            0
        };
        file.seek(SeekFrom::Start(start))?;
        let decoder = LineDecoder::new(
            BufReader::with_capacity(READ_BUFFER, file),
            encoding == Encoding::Gb18030,
            max_record_bytes(&limits),
        );
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(decoder);
        Ok(CsvRows {
            reader,
            record: csv::StringRecord::new(),
            row: 0,
            encoding,
            limits,
        })
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The next record with its row number; blank ones as an empty `Vec`.
    pub(crate) fn next_row(&mut self) -> Result<Option<(usize, Vec<String>)>, RosterFileError> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.row += 1;
                let row = self.row;
                if self.reader.get_ref().unterminated_quote_row == Some(row) {
                    return Err(RosterFileError::BadCsv {
                        row,
                        reason: "引号没有闭合：这一行有单元格以英文双引号开头，但直到文件末尾都没有结束的引号".to_owned(),
                    });
                }
                let cells = self.record.iter().map(clean_csv_cell).collect();
                finish_row(row, cells, &self.limits).map(|cells| Some((row, cells)))
            }
            Err(e) if e.is_io_error() => match e.into_kind() {
                csv::ErrorKind::Io(io) => Err(RosterFileError::from_io(io)),
                other => Err(RosterFileError::BadCsv {
                    row: self.row + 1,
                    reason: format!("{other:?}"),
                }),
            },
            Err(e) => Err(RosterFileError::BadCsv {
                row: self.row + 1,
                reason: e.to_string(),
            }),
        }
    }
}

/// [`clean_cell`], and Excel's `="0123"` text formula unwrapped.
fn clean_csv_cell(raw: &str) -> String {
    let cell = clean_cell(raw);
    match cell
        .strip_prefix("=\"")
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) if !inner.contains('"') => clean_cell(inner),
        _ => cell,
    }
}

/// Most bytes one record may span: every column full of 4-byte characters, each one doubled by
/// quote escaping, plus slack; at least 64 KiB. Bounds memory on a file without line breaks or
/// with an unclosed quote.
fn max_record_bytes(limits: &Limits) -> usize {
    limits
        .max_columns
        .saturating_add(1)
        .saturating_mul(limits.max_cell_chars.saturating_mul(8).saturating_add(16))
        .max(64 * 1024)
}

/// Fills `buf` as far as the file allows; the count read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Detects the encoding (see the module documentation) and refuses files that are not text.
fn sniff(file: &mut File) -> Result<Encoding, RosterFileError> {
    let mut chunk = vec![0u8; SNIFF_BYTES];
    let mut len = read_full(file, &mut chunk)?;
    let head = &chunk[..len];
    let not_csv = |reason: &str| RosterFileError::BadCsv {
        row: 1,
        reason: reason.to_owned(),
    };
    if head.starts_with(UTF8_BOM) {
        return Ok(Encoding::Utf8Bom);
    }
    if head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff") {
        return Err(not_csv(
            "文件是UTF-16编码（Excel的“Unicode文本”格式），请用Excel另存为“CSV UTF-8（逗号分隔）”",
        ));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(not_csv("这是xlsx文件，不是CSV：请保留 .xlsx 扩展名上传"));
    }
    if head.starts_with(OLE_MAGIC) {
        return Err(not_csv(
            "这是旧版Excel（.xls）文件，不是CSV：请用Excel另存为 .xlsx 或“CSV UTF-8（逗号分隔）”",
        ));
    }
    if let Some(at) = head.iter().position(|&b| b == 0) {
        let line = head[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(RosterFileError::BadCsv {
            row: line,
            reason: "含有二进制内容，不是文本格式的CSV文件".to_owned(),
        });
    }
    loop {
        if len == 0 {
            return Ok(Encoding::Utf8);
        }
        if let Some(first) = chunk[..len].iter().position(|b| !b.is_ascii()) {
            let mut sample = chunk[first..len].to_vec();
            if len == chunk.len() && first > 0 {
                let mut more = vec![0u8; first];
                let got = read_full(file, &mut more)?;
                sample.extend_from_slice(&more[..got]);
            }
            return Ok(classify(&sample));
        }
        len = read_full(file, &mut chunk)?;
    }
}

/// UTF-8 if the sample (which starts at the file's first non-ASCII byte) is valid UTF-8 or only
/// cut inside a character at its end, or if its first line is valid UTF-8 with a Chinese character
/// in it: then the file starts as UTF-8, and the line that is not is reported as
/// [`RosterFileError::MixedEncoding`] with its own row. Else GB 18030.
fn classify(sample: &[u8]) -> Encoding {
    match std::str::from_utf8(sample) {
        Ok(_) => return Encoding::Utf8,
        Err(e) if e.error_len().is_none() => return Encoding::Utf8,
        Err(_) => {}
    }
    let first_line = sample
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .and_then(|end| std::str::from_utf8(&sample[..end]).ok());
    // A GB 18030 line is valid UTF-8 holding a CJK ideograph (a 3-byte sequence led by E4–E9) only if
    // every one of its non-ASCII runs happens to line up: rare for one run, negligible for a line.
    if first_line.is_some_and(|line| line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))) {
        return Encoding::Utf8;
    }
    Encoding::Gb18030
}

/// In a file detected as GB 18030, a line that is valid UTF-8 and whose non-ASCII characters are
/// all Chinese (CJK ideographs of every block, variation selectors, the middle dot, CJK
/// punctuation, full-width forms), at least three of them: UTF-8 text that GB 18030 decoding would
/// turn into mojibake. GB 18030 text is valid UTF-8 only in runs of a multiple of 6 bytes whose
/// bytes fall in narrow ranges, so a real GB 18030 line passes with a probability of roughly 10⁻⁹.
fn looks_like_utf8_chinese(raw: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    let mut chinese = 0usize;
    for c in text.chars().filter(|c| !c.is_ascii()) {
        if matches!(c,
            '\u{00b7}'
            | '\u{3000}'..='\u{303f}'
            | '\u{3400}'..='\u{4dbf}'
            | '\u{4e00}'..='\u{9fff}'
            | '\u{f900}'..='\u{faff}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{ff00}'..='\u{ffef}'
            | '\u{20000}'..='\u{323af}'
            | '\u{e0100}'..='\u{e01ef}')
        {
            chinese += 1;
        } else {
            return false;
        }
    }
    chinese >= 3
}

/// Where the last line left the quoting of the current cell, mirroring `csv-core` with
/// `double_quote` on and `\n` as the only terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// At the start of a cell.
    FieldStart,
    /// In a cell that did not start with `"` (a `"` there is literal).
    Unquoted,
    /// In a quoted cell.
    Quoted,
    /// Just after a `"` inside a quoted cell: either an escaped `""` or the closing quote.
    ClosingOrEscape,
}

/// Reads raw CSV bytes line by line and hands out UTF-8 text, each line ending in `\n`, blank lines
/// at a record start as `""`. Knows the Excel row number of every line.
struct LineDecoder<R> {
    input: R,
    gb18030: bool,
    /// The last line ended with a CR: a LF right after it belongs to the same line break.
    swallow_lf: bool,
    raw: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    quote: Quote,
    /// Row number the next record gets.
    next_row: usize,
    /// Row number of the record being read.
    current_row: usize,
    record_bytes: usize,
    max_record_bytes: usize,
    /// Set at the end of the file when the last record's quote never closed.
    unterminated_quote_row: Option<usize>,
    finished: bool,
}

impl<R: BufRead> LineDecoder<R> {
    fn new(input: R, gb18030: bool, max_record_bytes: usize) -> LineDecoder<R> {
        LineDecoder {
            input,
            gb18030,
            swallow_lf: false,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            quote: Quote::FieldStart,
            next_row: 1,
            current_row: 0,
            record_bytes: 0,
            max_record_bytes,
            unterminated_quote_row: None,
            finished: false,
        }
    }

    /// Reads the next physical line into `raw`, without its line break; `false` at the end of
    /// the file. Refuses lines longer than `limit` bytes.
    fn read_raw_line(&mut self, limit: usize, row: usize) -> Result<bool, RosterFileError> {
        self.raw.clear();
        let mut any = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(any);
            }
            if self.swallow_lf {
                self.swallow_lf = false;
                if buf[0] == b'\n' {
                    self.input.consume(1);
                    continue;
                }
            }
            any = true;
            let (take, line_end) = match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(at) => (at, Some(buf[at])),
                None => (buf.len(), None),
            };
            if self.raw.len().saturating_add(take) > limit {
                return Err(RosterFileError::BadCsv {
                    row,
                    reason: format!(
                        "这一行超过{}，内容过长（常见原因是某个单元格的英文双引号没有闭合）",
                        human_size(self.max_record_bytes as u64)
                    ),
                });
            }
            self.raw.extend_from_slice(&buf[..take]);
            match line_end {
                Some(byte) => {
                    self.input.consume(take + 1);
                    self.swallow_lf = byte == b'\r';
                    return Ok(true);
                }
                None => self.input.consume(take),
            }
        }
    }

    /// Reads, decodes and scans the next line into `out`; `false` at the end of the file.
    fn next_line(&mut self) -> Result<bool, RosterFileError> {
        let continuing = self.quote == Quote::Quoted;
        let (row, limit) = if continuing {
            (
                self.current_row,
                self.max_record_bytes.saturating_sub(self.record_bytes),
            )
        } else {
            (self.next_row, self.max_record_bytes)
        };
        if !self.read_raw_line(limit, row)? {
            if continuing {
                self.unterminated_quote_row = Some(row);
            }
            return Ok(false);
        }
        if !continuing {
            self.current_row = row;
            self.next_row += 1;
            self.record_bytes = 0;
            self.quote = Quote::FieldStart;
        }
        self.record_bytes = self.record_bytes.saturating_add(self.raw.len() + 1);
        self.out.clear();
        self.out_pos = 0;
        if self.gb18030 && !self.raw.is_ascii() {
            if looks_like_utf8_chinese(&self.raw) {
                return Err(RosterFileError::MixedEncoding { row });
            }
            match encoding_rs::GB18030
                .decode_without_bom_handling_and_without_replacement(&self.raw)
            {
                Some(text) => self.out.extend_from_slice(text.as_bytes()),
                None => return Err(RosterFileError::MixedEncoding { row }),
            }
        } else {
            if std::str::from_utf8(&self.raw).is_err() {
                return Err(RosterFileError::MixedEncoding { row });
            }
            self.out.extend_from_slice(&self.raw);
        }
        if !continuing && self.out.is_empty() {
            // A blank line: one empty cell, so that the csv crate counts it as a record.
            self.out.extend_from_slice(b"\"\"");
        } else {
            for &b in &self.out {
                self.quote = match (self.quote, b) {
                    (Quote::FieldStart, b'"') => Quote::Quoted,
                    (Quote::FieldStart, b',') => Quote::FieldStart,
                    (Quote::FieldStart, _) => Quote::Unquoted,
                    (Quote::Unquoted, b',') => Quote::FieldStart,
                    (Quote::Unquoted, _) => Quote::Unquoted,
                    (Quote::Quoted, b'"') => Quote::ClosingOrEscape,
                    (Quote::Quoted, _) => Quote::Quoted,
                    (Quote::ClosingOrEscape, b'"') => Quote::Quoted,
                    (Quote::ClosingOrEscape, b',') => Quote::FieldStart,
                    (Quote::ClosingOrEscape, _) => Quote::Unquoted,
                };
            }
        }
        self.out.push(b'\n');
        Ok(true)
    }
}

impl<R: BufRead> Read for LineDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.out_pos >= self.out.len() {
            if self.finished {
                return Ok(0);
            }
            match self.next_line() {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    return Ok(0);
                }
                Err(e) => {
                    self.finished = true;
                    return Err(e.into_io());
                }
            }
        }
        let available = &self.out[self.out_pos..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], gbk: bool) -> (Result<String, RosterFileError>, Option<usize>) {
        let mut decoder = LineDecoder::new(input, gbk, 1 << 20);
        let mut out = String::new();
        let result = decoder
            .read_to_string(&mut out)
            .map(|_| out)
            .map_err(RosterFileError::from_io);
        (result, decoder.unterminated_quote_row)
    }

    #[test]
    fn blank_lines_become_one_empty_cell_and_line_ends_are_normalised() {
        let (out, _) = decode_all(b"a,b\r\n\r\nc\rd\n\n", false);
        assert_eq!(out.unwrap(), "a,b\n\"\"\nc\nd\n\"\"\n");
    }

    #[test]
    fn blank_lines_inside_quotes_stay_blank() {
        let (out, open) = decode_all(b"\"x\n\ny\",z\n", false);
        assert_eq!(out.unwrap(), "\"x\n\ny\",z\n");
        assert_eq!(open, None);
    }

    #[test]
    fn an_unclosed_quote_is_noticed_with_its_row() {
        let (_, open) = decode_all(b"h\nok\n\"never closed\nmore\n", false);
        assert_eq!(open, Some(3));
    }

    #[test]
    fn classification() {
        assert_eq!(classify("张三".as_bytes()), Encoding::Utf8);
        assert_eq!(classify(&"张三".as_bytes()[..4]), Encoding::Utf8);
        let (gbk, _, _) = encoding_rs::GBK.encode("张三");
        assert_eq!(classify(&gbk), Encoding::Gb18030);
        let (gbk_header, _, _) = encoding_rs::GBK.encode("姓名,身份证号\n张三\n");
        assert_eq!(classify(&gbk_header), Encoding::Gb18030);
        // Four-byte GB 18030 sequences (Ext B outside the BMP, a variation selector).
        let (four, _, unmappable) = encoding_rs::GB18030.encode("姓名\n𪚥明,葛\u{E0100}亮\n");
        assert!(!unmappable);
        assert_eq!(classify(&four), Encoding::Gb18030);
        // UTF-8 first, a GBK line later in the sample: UTF-8, the GBK line is reported on its row.
        let mut mixed = "姓名,身份证号\n".as_bytes().to_vec();
        mixed.extend_from_slice(&gbk);
        assert_eq!(classify(&mixed), Encoding::Utf8);
        // Without a line break the sample cannot be judged line by line.
        let mut unbroken = "姓名".as_bytes().to_vec();
        unbroken.extend_from_slice(&gbk);
        assert_eq!(classify(&unbroken), Encoding::Gb18030);
    }

    #[test]
    fn four_byte_gb18030_decodes_exactly() {
        let text = "𪚥明华,刘䶮,葛\u{E0100}亮,阿依·买买提\n";
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
        assert!(!unmappable);
        let (out, _) = decode_all(&bytes, true);
        assert_eq!(out.unwrap(), text);
    }

    #[test]
    fn utf8_chinese_is_spotted_in_gb18030_files() {
        assert!(looks_like_utf8_chinese("张三丰,男".as_bytes()));
        assert!(!looks_like_utf8_chinese("张三".as_bytes()));
        let (gbk, _, _) = encoding_rs::GBK.encode("张三丰,320602198001011235,男");
        assert!(!looks_like_utf8_chinese(&gbk));
        // Rare characters and a variation selector are Chinese text too.
        assert!(looks_like_utf8_chinese("𪚥明,葛\u{E0100}".as_bytes()));
        let (rare, _, _) = encoding_rs::GB18030.encode("𪚥明华,葛\u{E0100}亮");
        assert!(!looks_like_utf8_chinese(&rare));
    }

    #[test]
    fn excel_text_formula_is_unwrapped() {
        assert_eq!(clean_csv_cell("=\"0320602\""), "0320602");
        assert_eq!(clean_csv_cell("=A1+1"), "=A1+1");
        assert_eq!(clean_csv_cell("=\"a\"\"b\""), "=\"a\"\"b\"");
    }
}
