//! Lines and fields: a line reader that decodes UTF-8 or GB 18030 line by line, a field splitter
//! that reuses its buffers, and the value checks every format shares.
//!
//! # Encoding
//! A UTF-8 byte-order mark means UTF-8. Otherwise the first line with a non-ASCII byte decides:
//! valid UTF-8 with a Chinese character in it (or valid UTF-8 and not valid GB 18030) means UTF-8,
//! valid GB 18030 means GB 18030. A file written in GBK (what banks and Alipay call it) is GB
//! 18030's two-byte subset and reads the same; a name with a character GBK lacks (𪚥, 䶮, a
//! variation selector) arrives in GB 18030's four-byte sequences and is decoded too. Every later
//! line is decoded strictly in that encoding; one that does not fit is [`StatementError::Encoding`]
//! with its row, never mojibake. In a GB 18030 file a line that is valid UTF-8 and whose non-ASCII
//! characters are all Chinese (three or more) is refused too: a UTF-8 part pasted after a GB 18030
//! part (real GB 18030 text passes that test with a probability of about 10⁻⁹ a line). A line
//! break byte never occurs inside a UTF-8 or GB 18030 character, so splitting into lines before
//! decoding is exact.

use std::io::BufRead;

use chrono::{DateTime, NaiveDateTime};
use yibao_domain::{Fen, MoneyError};

use crate::error::shown;
use crate::{StatementError, TextEncoding};

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads physical lines (ending at LF, CRLF or a lone CR), numbered from 1, decoded to UTF-8.
pub(crate) struct Lines<R> {
    input: R,
    encoding: Option<TextEncoding>,
    raw: Vec<u8>,
    decoded: String,
    row: u64,
    max_line_bytes: usize,
    swallow_lf: bool,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(input: R, max_line_bytes: usize) -> Lines<R> {
        Lines {
            input,
            encoding: None,
            raw: Vec::new(),
            decoded: String::new(),
            row: 0,
            max_line_bytes,
            swallow_lf: false,
        }
    }

    /// The encoding seen so far: `Utf8` until a non-ASCII line decides.
    pub(crate) fn encoding(&self) -> TextEncoding {
        self.encoding.unwrap_or(TextEncoding::Utf8)
    }

    /// The next line with its row number, without its line break; `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, &str)>, StatementError> {
        if !self.read_raw()? {
            return Ok(None);
        }
        let row = self.row;
        if row == 1 && self.raw.starts_with(UTF8_BOM) {
            self.raw.drain(..UTF8_BOM.len());
            self.encoding = Some(TextEncoding::Utf8Bom);
        }
        if self.raw.is_ascii() {
            // ASCII is the same in both encodings; borrowed from `raw` below.
        } else {
            let encoding = match self.encoding {
                Some(known) => known,
                None => {
                    let chosen = classify(&self.raw).ok_or(StatementError::Encoding { row })?;
                    self.encoding = Some(chosen);
                    chosen
                }
            };
            match encoding {
                TextEncoding::Utf8 | TextEncoding::Utf8Bom => {
                    if std::str::from_utf8(&self.raw).is_err() {
                        return Err(StatementError::Encoding { row });
                    }
                }
                TextEncoding::Gb18030 => {
                    if looks_like_utf8_chinese(&self.raw) {
                        return Err(StatementError::Encoding { row });
                    }
                    let text = encoding_rs::GB18030
                        .decode_without_bom_handling_and_without_replacement(&self.raw)
                        .ok_or(StatementError::Encoding { row })?;
                    self.decoded.clear();
                    self.decoded.push_str(&text);
                    return Ok(Some((row, self.decoded.as_str())));
                }
            }
        }
        match std::str::from_utf8(&self.raw) {
            Ok(text) => Ok(Some((row, text))),
            Err(_) => Err(StatementError::Encoding { row }),
        }
    }

    /// Reads the next physical line into `raw`; `false` at the end of the input.
    fn read_raw(&mut self) -> Result<bool, StatementError> {
        self.raw.clear();
        let row = self.row.saturating_add(1);
        let mut any = false;
        loop {
            let buf = self.input.fill_buf().map_err(StatementError::from_io)?;
            if buf.is_empty() {
                if any {
                    self.row = row;
                }
                return Ok(any);
            }
            if self.swallow_lf {
                self.swallow_lf = false;
                if buf.first() == Some(&b'\n') {
                    self.input.consume(1);
                    continue;
                }
            }
            any = true;
            let (take, end) = match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(at) => (at, buf.get(at).copied()),
                None => (buf.len(), None),
            };
            if self.raw.len().saturating_add(take) > self.max_line_bytes {
                return Err(StatementError::LineTooLong {
                    row,
                    limit: self.max_line_bytes as u64,
                });
            }
            self.raw
                .extend_from_slice(buf.get(..take).unwrap_or_default());
            match end {
                Some(byte) => {
                    self.input.consume(take + 1);
                    self.swallow_lf = byte == b'\r';
                    self.row = row;
                    return Ok(true);
                }
                None => self.input.consume(take),
            }
        }
    }
}

/// The encoding of the first non-ASCII line: `None` when it is neither UTF-8 nor GB 18030.
fn classify(raw: &[u8]) -> Option<TextEncoding> {
    let utf8 = std::str::from_utf8(raw).ok();
    if utf8.is_some_and(|text| text.chars().any(is_cjk)) {
        return Some(TextEncoding::Utf8);
    }
    if encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(raw)
        .is_some()
    {
        return Some(TextEncoding::Gb18030);
    }
    utf8.map(|_| TextEncoding::Utf8)
}

/// Han ideographs of every block (extensions A to I, compatibility) and ideographic variation
/// selectors.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{20000}'..='\u{323af}'
        | '\u{e0100}'..='\u{e01ef}')
}

/// See the module documentation.
fn looks_like_utf8_chinese(raw: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    let mut chinese = 0usize;
    for c in text.chars().filter(|c| !c.is_ascii()) {
        if is_cjk(c) || matches!(c, '\u{00b7}' | '\u{3000}'..='\u{303f}' | '\u{ff00}'..='\u{ffef}')
        {
            chinese += 1;
        } else {
            return false;
        }
    }
    chinese >= 3
}

/// One line's fields, split into buffers that are reused line after line.
#[derive(Default)]
pub(crate) struct Fields {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Fields {
    /// Splits a CSV line at commas. A field that starts with `"` is quoted (`""` inside is one
    /// quote, anything between the closing quote and the next comma is kept); quoted fields may
    /// not span lines in these formats. Every field is trimmed of surrounding whitespace.
    pub(crate) fn split_csv(&mut self, line: &str) -> Result<(), &'static str> {
        self.text.clear();
        self.spans.clear();
        let mut rest = line;
        loop {
            let start = self.text.len();
            let field_end;
            if let Some(quoted) = rest.strip_prefix('"') {
                let mut inner = quoted;
                loop {
                    let Some(at) = inner.find('"') else {
                        return Err("有引号没有闭合（英文双引号开头的值，到行尾也没有结束的引号）");
                    };
                    self.text.push_str(inner.get(..at).unwrap_or_default());
                    let after = inner.get(at + 1..).unwrap_or_default();
                    match after.strip_prefix('"') {
                        Some(next) => {
                            self.text.push('"');
                            inner = next;
                        }
                        None => {
                            inner = after;
                            break;
                        }
                    }
                }
                let end = inner.find(',').unwrap_or(inner.len());
                self.text.push_str(inner.get(..end).unwrap_or_default());
                field_end = inner.get(end..).unwrap_or_default();
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                self.text.push_str(rest.get(..end).unwrap_or_default());
                field_end = rest.get(end..).unwrap_or_default();
            }
            self.push_trimmed(start);
            match field_end.strip_prefix(',') {
                Some(next) => rest = next,
                None => return Ok(()),
            }
        }
    }

    /// Splits a line at `|`, no quoting; fields are kept as they are (not trimmed).
    pub(crate) fn split_pipes(&mut self, line: &str) {
        self.text.clear();
        self.spans.clear();
        for field in line.split('|') {
            let start = self.text.len();
            self.text.push_str(field);
            self.spans.push((start, self.text.len()));
        }
    }

    /// Records the field written from `start` on, trimmed.
    fn push_trimmed(&mut self, start: usize) {
        let field = self.text.get(start..).unwrap_or_default();
        let leading = field.len() - field.trim_start_matches(is_trimmed).len();
        let kept = field.trim_matches(is_trimmed).len();
        self.spans.push((start + leading, start + leading + kept));
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Field `index` (0-based), `""` when the line is shorter.
    pub(crate) fn get(&self, index: usize) -> &str {
        self.spans
            .get(index)
            .and_then(|&(start, end)| self.text.get(start..end))
            .unwrap_or_default()
    }

    /// Whether every field is empty (a line of commas only counts as blank).
    pub(crate) fn all_empty(&self) -> bool {
        self.spans.iter().all(|(start, end)| start == end)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Whitespace (tabs, full-width spaces, no-break spaces…) and invisible zero-width characters.
pub(crate) fn is_trimmed(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

/// Refuses a value longer than `max_chars` characters.
pub(crate) fn check_length(
    row: u64,
    column: &str,
    value: &str,
    max_chars: usize,
) -> Result<(), StatementError> {
    // Bytes bound chars from above: skip counting short values.
    if value.len() > max_chars && value.chars().count() > max_chars {
        return Err(StatementError::FieldTooLong {
            row,
            column: column.to_owned(),
            limit: max_chars,
        });
    }
    Ok(())
}

/// A required text value, length-checked.
pub(crate) fn required(
    row: u64,
    column: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, StatementError> {
    if value.is_empty() {
        return Err(StatementError::bad_row(row, column, "不能为空"));
    }
    check_length(row, column, value, max_chars)?;
    Ok(value.to_owned())
}

/// An amount written as integer fen, at least 1.
pub(crate) fn parse_fen(row: u64, column: &str, value: &str) -> Result<Fen, StatementError> {
    if value.is_empty() {
        return Err(StatementError::bad_row(row, column, "不能为空，应为整数分"));
    }
    let fen = if value.len() <= 15 && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<i64>().ok().and_then(|v| Fen::new(v).ok())
    } else {
        None
    };
    match fen {
        Some(fen) if fen.as_fen() >= 1 => Ok(fen),
        Some(_) => Err(StatementError::bad_row(
            row,
            column,
            format!("应大于0，实际为“{}”", shown(value)),
        )),
        None => Err(StatementError::bad_row(
            row,
            column,
            format!("应为整数分，实际为“{}”", shown(value)),
        )),
    }
}

/// An amount in yuan with at most two decimals, sign allowed; empty is `None`.
pub(crate) fn parse_yuan(
    row: u64,
    column: &str,
    value: &str,
) -> Result<Option<Fen>, StatementError> {
    if value.is_empty() {
        return Ok(None);
    }
    Fen::parse_signed_yuan(value)
        .map(Some)
        .map_err(|e| StatementError::bad_row(row, column, yuan_message(value, &e)))
}

fn yuan_message(value: &str, error: &MoneyError) -> String {
    match error {
        MoneyError::TooManyDecimals(_) => {
            format!("超过两位小数（最小单位为分），实际为“{}”", shown(value))
        }
        MoneyError::OutOfRange(_) | MoneyError::Overflow => {
            format!("超出允许范围，实际为“{}”", shown(value))
        }
        _ => format!(
            "应为以元为单位、最多两位小数的金额（如 430.00），实际为“{}”",
            shown(value)
        ),
    }
}

/// A time as given: `YYYY-MM-DD HH:MM:SS` (or with `T`) local to China becomes RFC 3339 with
/// `+08:00`; an RFC 3339 time with an offset is kept as it is; empty is `None`.
pub(crate) fn parse_time(
    row: u64,
    column: &str,
    value: &str,
    max_chars: usize,
) -> Result<Option<String>, StatementError> {
    if value.is_empty() {
        return Ok(None);
    }
    check_length(row, column, value, max_chars)?;
    // RFC 3339 first: what the protocol writes, and the quickest to parse (a million lines'
    // worth matters). A time with an offset never parses as local time, nor the other way round.
    if DateTime::parse_from_rfc3339(value).is_ok() {
        return Ok(Some(value.to_owned()));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(value, format) {
            return Ok(Some(format!("{}+08:00", local.format("%Y-%m-%dT%H:%M:%S"))));
        }
    }
    Err(StatementError::bad_row(
        row,
        column,
        format!(
            "应为时间，如“2020-11-02 10:15:00”或“2020-11-02T10:15:00+08:00”，实际为“{}”",
            shown(value)
        ),
    ))
}

/// Adds to a running total, refusing an overflow with the row where it happened.
pub(crate) fn add(
    total: &mut Fen,
    amount: Fen,
    row: u64,
    column: &str,
) -> Result<(), StatementError> {
    *total = total
        .checked_add(amount)
        .map_err(|_| StatementError::bad_row(row, column, "累计金额超出允许范围"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Result<Vec<(u64, String)>, StatementError> {
        let mut reader = Lines::new(bytes, 64);
        let mut out = Vec::new();
        while let Some((row, text)) = reader.next_line()? {
            out.push((row, text.to_owned()));
        }
        Ok(out)
    }

    #[test]
    fn line_breaks_and_bom() {
        let got = lines(b"\xef\xbb\xbfa\r\nb\rc\n\nd").unwrap();
        let want: Vec<(u64, String)> = [(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, "d")]
            .iter()
            .map(|(r, t)| (*r, t.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(lines(b"").unwrap(), vec![]);
        assert_eq!(lines(b"a\n").unwrap(), vec![(1, "a".to_string())]);
        assert!(matches!(
            lines(&[b'x'; 65]),
            Err(StatementError::LineTooLong { row: 1, limit: 64 })
        ));
    }

    #[test]
    fn gbk_and_utf8_detection() {
        let (gbk, _, _) = encoding_rs::GBK.encode("a\n退款,张三\n交易");
        let mut reader = Lines::new(&gbk[..], 64);
        assert_eq!(reader.next_line().unwrap().unwrap().1, "a");
        assert_eq!(reader.next_line().unwrap().unwrap().1, "退款,张三");
        assert_eq!(reader.encoding(), TextEncoding::Gb18030);
        assert_eq!(reader.next_line().unwrap().unwrap().1, "交易");

        let mut mixed = gbk.to_vec();
        mixed.extend_from_slice("\n支付宝交易".as_bytes());
        assert_eq!(lines(&mixed), Err(StatementError::Encoding { row: 4 }));

        let mut bad = "退款\n".as_bytes().to_vec();
        bad.extend_from_slice(&gbk);
        assert_eq!(lines(&bad), Err(StatementError::Encoding { row: 3 }));
        assert_eq!(lines(b"\xff\xff"), Err(StatementError::Encoding { row: 1 }));
    }

    #[test]
    fn gb18030_four_byte_sequences_decode_and_utf8_rare_names_are_spotted() {
        // A statement line naming 𪚥 (outside the BMP) and 葛 with a variation selector: GBK cannot
        // hold them, GB 18030 can.
        let text = "a\n退款,𪚥明华,葛\u{E0100}亮\n";
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
        assert!(!unmappable);
        assert_eq!(
            lines(&bytes).unwrap(),
            vec![
                (1, "a".to_owned()),
                (2, "退款,𪚥明华,葛\u{E0100}亮".to_owned())
            ]
        );
        // The same names in UTF-8 after a GB 18030 line: refused, not mojibake.
        let mut mixed = encoding_rs::GB18030.encode("退款\n").0.into_owned();
        mixed.extend_from_slice("𪚥明华葛\u{E0100}亮".as_bytes());
        assert_eq!(lines(&mixed), Err(StatementError::Encoding { row: 2 }));
    }

    #[test]
    fn csv_fields() {
        let mut f = Fields::default();
        f.split_csv(" a ,\"b,\"\"c\"\"\",,`d\t").unwrap();
        assert_eq!(f.iter().collect::<Vec<_>>(), ["a", "b,\"c\"", "", "`d"]);
        f.split_csv("").unwrap();
        assert_eq!(f.len(), 1);
        assert!(f.all_empty());
        f.split_csv("x,").unwrap();
        assert_eq!(f.iter().collect::<Vec<_>>(), ["x", ""]);
        assert!(f.split_csv("\"open,x").is_err());
        f.split_pipes("D|1||x ");
        assert_eq!(f.iter().collect::<Vec<_>>(), ["D", "1", "", "x "]);
        assert_eq!(f.get(9), "");
    }

    #[test]
    fn values() {
        assert_eq!(parse_fen(2, "amount", "43000").unwrap().as_fen(), 43000);
        for bad in ["4.3", "-1", "+1", "1e3", "", "9999999999999999"] {
            assert!(parse_fen(2, "amount", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_fen(12, "金额", "4.3").unwrap_err().to_string(),
            "第12行“金额”应为整数分，实际为“4.3”"
        );
        assert!(parse_fen(2, "amount", "0").is_err());
        assert_eq!(
            parse_yuan(2, "x", "-430.00").unwrap().unwrap().as_fen(),
            -43000
        );
        assert_eq!(parse_yuan(2, "x", "").unwrap(), None);
        assert!(parse_yuan(2, "x", "4.305").is_err());
        assert_eq!(
            parse_time(2, "t", "2020-11-02 10:15:00", 64)
                .unwrap()
                .unwrap(),
            "2020-11-02T10:15:00+08:00"
        );
        assert_eq!(
            parse_time(2, "t", "2020-11-02T10:15:00Z", 64)
                .unwrap()
                .unwrap(),
            "2020-11-02T10:15:00Z"
        );
        assert!(parse_time(2, "t", "2020-13-02 10:15:00", 64).is_err());
        assert!(parse_time(2, "t", "yesterday", 64).is_err());
    }
}
