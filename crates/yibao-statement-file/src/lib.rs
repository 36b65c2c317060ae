//! Reads the files that money arrives in: channel statements (对账单) in three formats, and the
//! bank auto-debit (委托扣款) files, whose request side it also writes.
//!
//! Pure: the input is bytes already in memory, nothing is written anywhere, there is no async and
//! no database. Amounts are integer fen ([`Fen`]); no float is used anywhere.
//!
//! # Channel statements
//! [`read_statement`] is the one entry point for [`StatementFormat::Protocol`] (the channel
//! protocol's §7 CSV), [`StatementFormat::WechatTradeBill`] (微信支付交易账单, `downloadbill`
//! `ALL`) and [`StatementFormat::AlipayBill`] (支付宝业务明细, a zip of GBK CSVs, read as GB
//! 18030). Lines are handed to a callback one at a time, so a million-line bill is read without
//! holding its lines; the file's own summary lines are checked against the detail lines at the end
//! and returned.
//!
//! ```
//! use yibao_statement_file::{read_statement, StatementError, StatementFormat, StatementOptions};
//!
//! let csv = "channel_txn_id,type,amount,occurred_at,refund_no\n\
//!            T1,payment,43000,2020-11-02T10:15:00+08:00,\n";
//! let mut seen = Vec::new();
//! let summary = read_statement(
//!     StatementFormat::Protocol,
//!     csv.as_bytes(),
//!     &StatementOptions::default(),
//!     |line| -> Result<(), StatementError> {
//!         seen.push(line);
//!         Ok(())
//!     },
//! )?;
//! assert_eq!(summary.totals.payment_count, 1);
//! assert_eq!(seen[0].amount.as_fen(), 43000);
//! # Ok::<(), StatementError>(())
//! ```
//!
//! A file is accepted whole or not at all: the callback may already have seen lines when a later
//! line, or the closing summary, turns out wrong, so a caller keeps what it gathered only once
//! [`read_statement`] returned `Ok` (gather into a transaction or a vector, not straight into the
//! books).
//!
//! # Bank auto-debit files
//! Our own `|`-separated format, described in `docs/bank-files.md`: [`write_debit_request`] and
//! [`read_debit_result`] for yibao's side, [`read_debit_request`] and [`write_debit_result`] for a
//! bank (or its simulator).
//!
//! # Errors
//! Everything is a [`StatementError`]: a stable [`StatementError::code`] and a Chinese message
//! naming the line (1-based, as an editor shows it) and the column. No input makes this crate
//! panic: every size is bounded by [`Limits`].

mod alipay;
mod bank;
mod error;
mod protocol;
mod statement;
mod text;
mod wechat;

pub use bank::{
    read_debit_request, read_debit_result, write_debit_request, write_debit_result,
    write_debit_result_entries, DebitFailure, DebitMember, DebitOutcome, DebitRequest,
    DebitRequestHeader, DebitRequestItem, DebitRequestRow, DebitResult, DebitResultEntry,
    DebitResultHeader, DebitResultRow, MAX_DEBIT_BATCH,
};
pub use error::StatementError;
pub use statement::{
    read_statement, read_statement_to_vec, AlipayTotals, BillTotals, DeclaredTotals, LineKind,
    StatementFormat, StatementLine, StatementOptions, StatementSummary, WechatKey, WechatTotals,
};
pub use yibao_domain::Fen;

/// Bounds on what a file may contain; each one refused with its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of the input; for an Alipay zip also of the CSV unpacked from it (a zip bomb stops
    /// there).
    pub max_bytes: u64,
    /// Detail lines: statement lines handed to the callback, or bank file detail lines.
    pub max_lines: u64,
    /// Characters (not bytes) in a value that is read: transaction ids, refund numbers, times,
    /// amounts, names. Columns that are not read (a WeChat bill's 商品名称) are bounded only by the
    /// line length, [`Limits::max_line_bytes`].
    pub max_field_chars: usize,
}

impl Default for Limits {
    /// 512 MiB, 2 000 000 lines, 128 characters a value.
    fn default() -> Limits {
        Limits {
            max_bytes: 512 * 1024 * 1024,
            max_lines: 2_000_000,
            max_field_chars: 128,
        }
    }
}

impl Limits {
    /// Most bytes one physical line may have: room for 64 values at the character limit in 4-byte
    /// characters, and at least 64 KiB.
    pub fn max_line_bytes(&self) -> usize {
        self.max_field_chars
            .saturating_mul(4)
            .saturating_mul(64)
            .max(64 * 1024)
    }
}

/// What a file's text turned out to be encoded in.
///
/// A UTF-8 byte-order mark means UTF-8. Otherwise the first line with a non-ASCII byte decides:
/// valid UTF-8 with a Chinese character in it (or valid UTF-8 that is not valid GB 18030) means
/// UTF-8, valid GB 18030 means GB 18030. Every later line is decoded strictly in that encoding; one
/// that does not fit is [`StatementError::Encoding`] with its row, never mojibake (in a GB 18030
/// file that includes a line that is valid UTF-8 Chinese text: a UTF-8 part pasted after a GB
/// 18030 part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark, including plain ASCII.
    Utf8,
    /// UTF-8 with a byte-order mark.
    Utf8Bom,
    /// GB 18030, which includes GBK: a file its writer calls GBK is read, and named, as GB 18030
    /// (its four-byte sequences, for characters GBK lacks, decode too).
    Gb18030,
}
