//! The one error type of this crate, with messages a clerk (经办人员) can act on.

use std::fmt;
use std::io;

/// Why a statement or bank file was refused. A file is accepted whole or not at all: the first
/// problem found is reported, with the line number (1-based, as a text editor shows it) and the
/// column where there is one.
///
/// [`StatementError::code`] is stable and machine-readable; `Display` (also
/// [`StatementError::message_zh`]) is the Chinese text shown to staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementError {
    /// The file, or for an Alipay bill the CSV unpacked from it, is larger than
    /// [`crate::Limits::max_bytes`].
    TooLarge {
        limit: u64,
        /// The bytes were within the limit but unpacking the zip went past it (a zip bomb, or a
        /// bill too large to take at once).
        unpacked: bool,
    },
    /// More detail lines than [`crate::Limits::max_lines`] (or, in a bank file, than
    /// [`crate::MAX_DEBIT_BATCH`]).
    TooManyLines { limit: u64 },
    /// One line longer than the crate allows (see [`crate::Limits::max_line_bytes`]).
    LineTooLong { row: u64, limit: u64 },
    /// A value that is read longer than [`crate::Limits::max_field_chars`] characters.
    FieldTooLong {
        row: u64,
        column: String,
        limit: usize,
    },
    /// A line that is neither UTF-8 nor GB 18030 (which includes GBK), or not in the encoding the
    /// lines before it had.
    Encoding { row: u64 },
    /// No line with content at all.
    Empty,
    /// The header line is missing or lacks a required column.
    BadHeader { row: u64, message: String },
    /// A line (or one value in it) that cannot be read. `column` is the column's name as the file
    /// has it, empty when the whole line is wrong.
    BadRow {
        row: u64,
        column: String,
        message: String,
    },
    /// The file ends before its closing summary lines: cut off in transfer.
    Truncated { message: String },
    /// The file's own summary (or header) disagrees with its detail lines.
    SummaryMismatch {
        /// What was compared, e.g. `交易笔数`.
        item: String,
        declared: String,
        computed: String,
    },
    /// An Alipay zip that cannot be opened or holds no bill.
    BadArchive { message: String },
    /// The same item twice in a bank file.
    DuplicateItem {
        row: u64,
        item_ref: String,
        first_row: u64,
    },
    /// A debit request with more items than [`crate::MAX_DEBIT_BATCH`].
    BatchTooLarge { count: u64, limit: u64 },
    /// A value given to a writer that cannot go into the file. `item` is the 1-based position of
    /// the item, `None` for the header.
    InvalidField {
        item: Option<u64>,
        field: String,
        message: String,
    },
}

impl StatementError {
    /// Stable code for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            StatementError::TooLarge { .. } => "TOO_LARGE",
            StatementError::TooManyLines { .. } => "TOO_MANY_LINES",
            StatementError::LineTooLong { .. } => "LINE_TOO_LONG",
            StatementError::FieldTooLong { .. } => "FIELD_TOO_LONG",
            StatementError::Encoding { .. } => "ENCODING",
            StatementError::Empty => "EMPTY",
            StatementError::BadHeader { .. } => "BAD_HEADER",
            StatementError::BadRow { .. } => "BAD_ROW",
            StatementError::Truncated { .. } => "TRUNCATED",
            StatementError::SummaryMismatch { .. } => "SUMMARY_MISMATCH",
            StatementError::BadArchive { .. } => "BAD_ARCHIVE",
            StatementError::DuplicateItem { .. } => "DUPLICATE_ITEM",
            StatementError::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            StatementError::InvalidField { .. } => "INVALID_FIELD",
        }
    }

    /// The Chinese message, the same as `Display`.
    pub fn message_zh(&self) -> String {
        self.to_string()
    }

    /// The line the error is about, when there is one.
    pub fn row(&self) -> Option<u64> {
        match self {
            StatementError::LineTooLong { row, .. }
            | StatementError::FieldTooLong { row, .. }
            | StatementError::Encoding { row }
            | StatementError::BadHeader { row, .. }
            | StatementError::BadRow { row, .. }
            | StatementError::DuplicateItem { row, .. } => Some(*row),
            _ => None,
        }
    }

    pub(crate) fn bad_row(
        row: u64,
        column: impl Into<String>,
        message: impl Into<String>,
    ) -> StatementError {
        StatementError::BadRow {
            row,
            column: column.into(),
            message: message.into(),
        }
    }

    pub(crate) fn bad_archive(message: impl Into<String>) -> StatementError {
        StatementError::BadArchive {
            message: message.into(),
        }
    }

    pub(crate) fn truncated(message: impl Into<String>) -> StatementError {
        StatementError::Truncated {
            message: message.into(),
        }
    }

    pub(crate) fn mismatch(
        item: impl Into<String>,
        declared: impl fmt::Display,
        computed: impl fmt::Display,
    ) -> StatementError {
        StatementError::SummaryMismatch {
            item: item.into(),
            declared: declared.to_string(),
            computed: computed.to_string(),
        }
    }

    /// Carries this error through an `io::Read` implementation; see [`StatementError::from_io`].
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// Unwraps an error that this crate put into an `io::Error`; any other `io::Error` (reading
    /// from memory fails only inside a zip entry) is a damaged archive.
    pub(crate) fn from_io(error: io::Error) -> StatementError {
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<StatementError>())
        {
            if let Some(Ok(inner)) = error
                .into_inner()
                .map(|inner| inner.downcast::<StatementError>())
            {
                return *inner;
            }
            return StatementError::bad_archive("内部错误");
        }
        StatementError::bad_archive(format!("压缩包内的文件已损坏（{error}），请重新下载账单"))
    }
}

impl std::error::Error for StatementError {}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementError::TooLarge {
                limit,
                unpacked: false,
            } => write!(f, "文件超过{}上限，请分拆后上传", human_size(*limit)),
            StatementError::TooLarge {
                limit,
                unpacked: true,
            } => write!(
                f,
                "压缩包解压后超过{}上限：请确认上传的是渠道下载的原始账单",
                human_size(*limit)
            ),
            StatementError::TooManyLines { limit } => {
                write!(f, "文件超过{limit}条明细的上限，请分拆后上传")
            }
            StatementError::LineTooLong { row, limit } => write!(
                f,
                "第{row}行超过{}，内容过长，不是正常的账单行（常见原因是文件不是文本格式或换行符丢失）",
                human_size(*limit)
            ),
            StatementError::FieldTooLong { row, column, limit } => {
                write!(f, "第{row}行“{column}”超过{limit}个字符，请检查该行")
            }
            StatementError::Encoding { row } => write!(
                f,
                "第{row}行的文字编码无法识别（既不是UTF-8也不是GB18030，或与前面各行不一致）：请上传渠道下载的原始文件，不要用Excel等软件另存"
            ),
            StatementError::Empty => {
                write!(f, "文件是空的：没有找到表头行，请检查是否上传了正确的文件")
            }
            StatementError::BadHeader { row, message } => {
                write!(f, "第{row}行表头有误：{message}")
            }
            StatementError::BadRow {
                row,
                column,
                message,
            } => {
                if column.is_empty() {
                    write!(f, "第{row}行{message}")
                } else {
                    write!(f, "第{row}行“{column}”{message}")
                }
            }
            StatementError::Truncated { message } => write!(
                f,
                "文件不完整：{message}。文件可能在下载或传输中被截断，请重新下载后上传"
            ),
            StatementError::SummaryMismatch {
                item,
                declared,
                computed,
            } => write!(
                f,
                "文件的汇总与明细不符：{item}汇总为{declared}，明细合计为{computed}。文件可能不完整或被修改过，请重新下载后上传"
            ),
            StatementError::BadArchive { message } => write!(f, "压缩包无法读取：{message}"),
            StatementError::DuplicateItem {
                row,
                item_ref,
                first_row,
            } => write!(
                f,
                "第{row}行的明细编号“{item_ref}”与第{first_row}行重复"
            ),
            StatementError::BatchTooLarge { count, limit } => write!(
                f,
                "一个扣款文件最多{limit}笔，本次有{count}笔，请分批生成"
            ),
            StatementError::InvalidField {
                item: Some(item),
                field,
                message,
            } => write!(f, "第{item}笔扣款的“{field}”{message}"),
            StatementError::InvalidField {
                item: None,
                field,
                message,
            } => write!(f, "扣款文件头的“{field}”{message}"),
        }
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

/// A value as shown inside “”: at most 32 characters, then `…`.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 32;
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", value.get(..at).unwrap_or_default()),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_row_and_column() {
        let e = StatementError::bad_row(12, "金额（amount）", "应为整数分，实际为“4.3”");
        assert_eq!(
            e.to_string(),
            "第12行“金额（amount）”应为整数分，实际为“4.3”"
        );
        assert_eq!(e.code(), "BAD_ROW");
        assert_eq!(e.row(), Some(12));
        let e = StatementError::bad_row(3, "", "为空");
        assert_eq!(e.message_zh(), "第3行为空");
        let e = StatementError::TooLarge {
            limit: 32 << 20,
            unpacked: false,
        };
        assert_eq!(e.to_string(), "文件超过32MB上限，请分拆后上传");
        assert_eq!(human_size(1000), "1000字节");
        assert_eq!(human_size(64 * 1024), "64KB");
    }

    #[test]
    fn shown_values_are_cut() {
        assert_eq!(shown("4.3"), "4.3");
        let long = "张".repeat(40);
        assert_eq!(shown(&long).chars().count(), 33);
    }

    #[test]
    fn errors_survive_a_trip_through_io() {
        let io = StatementError::Encoding { row: 7 }.into_io();
        assert_eq!(
            StatementError::from_io(io),
            StatementError::Encoding { row: 7 }
        );
        let plain = io::Error::new(io::ErrorKind::InvalidData, "bad crc");
        assert_eq!(StatementError::from_io(plain).code(), "BAD_ARCHIVE");
    }
}
