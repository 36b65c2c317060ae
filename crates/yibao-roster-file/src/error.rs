//! The one error type of this crate, with messages a clerk (经办人员) can act on.

use std::io;

/// Why a roster file could not be read. Every message says what is wrong and, where the clerk can
/// fix it, how; row and column numbers are the ones Excel shows.
#[derive(Debug, thiserror::Error)]
pub enum RosterFileError {
    /// The file could not be read from disk (not a problem of its content).
    #[error("读取花名册文件失败（{0}），请重新上传")]
    Io(#[from] io::Error),
    /// Neither `.csv` nor `.xlsx`.
    #[error(
        "不支持的文件类型{}：请上传 .csv 或 .xlsx 格式的花名册（.xls、.et 等格式请先用Excel或WPS另存为 .xlsx）",
        shown_extension(extension)
    )]
    UnsupportedFormat {
        /// The extension as given, without the dot; empty when the name has none.
        extension: String,
    },
    /// Larger than [`crate::Limits::max_file_bytes`].
    #[error("文件超过{}上限，请分拆后上传", human_size(*limit))]
    TooLarge { size: u64, limit: u64 },
    /// No row with any content, so no header.
    #[error("文件是空的：没有找到表头行，请检查是否上传了正确的花名册")]
    Empty,
    /// More data rows (blank rows and the header not counted) than [`crate::Limits::max_rows`].
    #[error("花名册超过{limit}行上限，请分拆后上传")]
    TooManyRows { limit: usize },
    /// A row has content beyond column [`crate::Limits::max_columns`].
    #[error("第{row}行超过{limit}列上限：请删除表格右侧多余的列后重新上传")]
    TooManyColumns { row: usize, limit: usize },
    /// A cell, after trimming, is longer than [`crate::Limits::max_cell_chars`] characters.
    #[error(
        "第{row}行第{column}列（{}列）的内容超过{limit}个字符，请检查该单元格",
        column_name(*column)
    )]
    CellTooLong {
        row: usize,
        /// 1-based.
        column: usize,
        limit: usize,
    },
    /// A CSV row whose bytes are neither valid UTF-8 nor GB 18030 (which includes GBK), or whose
    /// encoding differs from the rows before it.
    #[error(
        "第{row}行的文字编码无法识别（与前面各行不一致，或既不是UTF-8也不是GB18030）：请用Excel打开后另存为“CSV UTF-8（逗号分隔）”再上传"
    )]
    MixedEncoding { row: usize },
    /// A CSV file that cannot be split into rows and cells.
    #[error("CSV文件第{row}行格式有误：{reason}")]
    BadCsv { row: usize, reason: String },
    /// An XLSX file that cannot be read: not a zip, no worksheet, malformed XML.
    #[error("xlsx文件无法读取：{reason}。请用Excel打开后另存为 .xlsx 再上传")]
    BadXlsx { reason: String },
    /// The workbook's shared-string table (xl/sharedStrings.xml) has more entries than
    /// [`crate::Limits::max_shared_strings`].
    #[error("xlsx文件中的文字条目超过{limit}个上限，请分拆后上传")]
    TooManySharedStrings { limit: usize },
}

impl RosterFileError {
    pub const CODE: &'static str = "BAD_ROSTER_FILE";

    pub(crate) fn bad_xlsx(reason: impl Into<String>) -> RosterFileError {
        RosterFileError::BadXlsx {
            reason: reason.into(),
        }
    }

    /// Carries this error through an `io::Read` implementation; see [`RosterFileError::from_io`].
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// Unwraps an error that one of this crate's readers put into an `io::Error`; any other
    /// `io::Error` is [`RosterFileError::Io`].
    pub(crate) fn from_io(error: io::Error) -> RosterFileError {
        if !error
            .get_ref()
            .is_some_and(|inner| inner.is::<RosterFileError>())
        {
            return RosterFileError::Io(error);
        }
        match error
            .into_inner()
            .map(|inner| inner.downcast::<RosterFileError>())
        {
            Some(Ok(inner)) => *inner,
            // Unreachable: checked above that the payload is a RosterFileError.
            _ => RosterFileError::Io(io::Error::other("内部错误")),
        }
    }
}

fn shown_extension(extension: &str) -> String {
    if extension.is_empty() {
        "（文件名没有扩展名）".to_owned()
    } else {
        let shown: String = extension.chars().take(16).collect();
        format!("“.{shown}”")
    }
}

/// `256MB`, `64KB`, `1000字节`: sizes as a clerk reads them (binary units, as Windows shows them).
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{}KB", bytes / KIB)
    } else {
        format!("{bytes}字节")
    }
}

/// Excel's column name of a 1-based column number: 1 → `A`, 27 → `AA`. 0 gives an empty string.
pub fn column_name(column: usize) -> String {
    let mut n = column;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        // rem < 26, so the cast cannot truncate.
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_excel_letters() {
        assert_eq!(column_name(1), "A");
        assert_eq!(column_name(26), "Z");
        assert_eq!(column_name(27), "AA");
        assert_eq!(column_name(52), "AZ");
        assert_eq!(column_name(16384), "XFD");
        assert_eq!(column_name(0), "");
    }

    #[test]
    fn messages_are_actionable() {
        let e = RosterFileError::TooLarge {
            size: 300 << 20,
            limit: 256 << 20,
        };
        assert_eq!(e.to_string(), "文件超过256MB上限，请分拆后上传");
        let e = RosterFileError::CellTooLong {
            row: 5,
            column: 3,
            limit: 512,
        };
        assert_eq!(
            e.to_string(),
            "第5行第3列（C列）的内容超过512个字符，请检查该单元格"
        );
        let e = RosterFileError::UnsupportedFormat {
            extension: "xls".into(),
        };
        assert!(e.to_string().contains("“.xls”"));
        assert_eq!(human_size(1000), "1000字节");
        assert_eq!(human_size(64 * 1024), "64KB");
    }

    #[test]
    fn errors_survive_a_trip_through_io() {
        let io = RosterFileError::MixedEncoding { row: 7 }.into_io();
        assert!(matches!(
            RosterFileError::from_io(io),
            RosterFileError::MixedEncoding { row: 7 }
        ));
        let plain = io::Error::new(io::ErrorKind::NotFound, "x");
        assert!(matches!(
            RosterFileError::from_io(plain),
            RosterFileError::Io(_)
        ));
    }
}
