//! The statement types and the one reading loop all three formats share.

use std::io::BufRead;
use std::str::FromStr;

use yibao_domain::Fen;

use crate::text::{add, Fields, Lines};
use crate::{alipay, protocol, wechat, Limits, StatementError, TextEncoding};

/// The statement formats read by [`read_statement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementFormat {
    /// The channel protocol's daily statement (§7): UTF-8 CSV, amounts in fen.
    Protocol,
    /// 微信支付交易账单 (`downloadbill`, `bill_type=ALL`): UTF-8 CSV, values prefixed with a
    /// backtick, amounts in yuan, a summary at the end.
    WechatTradeBill,
    /// 支付宝业务明细: a zip holding GBK CSVs (a CSV already unpacked from it is read too),
    /// amounts in yuan, `#` totals at the end.
    AlipayBill,
}

impl StatementFormat {
    /// `protocol`, `wechat` or `alipay`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementFormat::Protocol => "protocol",
            StatementFormat::WechatTradeBill => "wechat",
            StatementFormat::AlipayBill => "alipay",
        }
    }
}

impl FromStr for StatementFormat {
    type Err = String;

    /// `protocol`, `wechat` or `alipay` (ASCII case ignored); the error is a Chinese message.
    fn from_str(s: &str) -> Result<StatementFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "protocol" => Ok(StatementFormat::Protocol),
            "wechat" => Ok(StatementFormat::WechatTradeBill),
            "alipay" => Ok(StatementFormat::AlipayBill),
            _ => Err(format!(
                "对账单格式“{}”无效：应为 protocol、wechat 或 alipay",
                crate::error::shown(s)
            )),
        }
    }
}

impl std::fmt::Display for StatementFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a statement line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// Money taken from the payer.
    Payment,
    /// Money given back for an earlier payment (a refund yibao asked for).
    Refund,
    /// A payment undone (冲正, WeChat `REVOKED`).
    Reversal,
}

/// One transaction as the channel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// 1-based line number in the (unpacked) source file.
    pub row: u64,
    /// The transaction id the channel reported to yibao: protocol `channel_txn_id`, WeChat
    /// 商户订单号 (or 微信订单号, see [`WechatKey`]), Alipay 商户订单号. For a refund, the id of the
    /// payment refunded.
    pub channel_txn_id: String,
    pub kind: LineKind,
    /// Always positive: refunds that Alipay writes negative are made positive.
    pub amount: Fen,
    /// The time as given; a local `YYYY-MM-DD HH:MM:SS` becomes RFC 3339 with `+08:00`. `None`
    /// when the file leaves it empty.
    pub occurred_at: Option<String>,
    /// yibao's refund number, on refund lines only: protocol `refund_no`, WeChat 商户退款单号,
    /// Alipay 退款批次号/请求号.
    pub refund_no: Option<String>,
}

/// Counts and sums of the lines read, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BillTotals {
    pub payment_count: u64,
    pub payment_total: Fen,
    pub refund_count: u64,
    pub refund_total: Fen,
    pub reversal_count: u64,
    pub reversal_total: Fen,
}

/// A WeChat bill's closing summary (`总交易单数,应结订单总金额,…`), already checked against the
/// column sums of its detail lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WechatTotals {
    /// 总交易单数: detail lines of every status.
    pub trade_count: u64,
    /// 应结订单总金额: the sum of the 应结订单金额 column.
    pub settlement_total: Fen,
    /// 退款总金额: the sum of the 退款金额 column.
    pub refund_total: Fen,
    /// 订单总金额, when the bill has it (and the 订单金额 column).
    pub order_total: Option<Fen>,
    /// 申请退款总金额, when the bill has it (and the 申请退款金额 column).
    pub refund_requested_total: Option<Fen>,
}

/// An Alipay bill's `#交易合计` and `#退款合计` lines, already checked against the detail lines.
/// The sums are of 商家实收（元） and 商家优惠（元）, signed as in the file (refunds negative), not of
/// 订单金额（元） that [`StatementLine::amount`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlipayTotals {
    pub trade_count: u64,
    pub trade_received: Fen,
    pub trade_merchant_discount: Option<Fen>,
    /// 0, 0 and `None` when the bill has no `#退款合计` line (then it has no refund lines either).
    pub refund_count: u64,
    pub refund_received: Fen,
    pub refund_merchant_discount: Option<Fen>,
}

/// The file's own totals, in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclaredTotals {
    Wechat(WechatTotals),
    Alipay(AlipayTotals),
}

/// What [`read_statement`] found, once every line has been handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSummary {
    pub format: StatementFormat,
    pub encoding: TextEncoding,
    /// Lines handed to the callback.
    pub lines: u64,
    /// Counts and sums of those lines by kind.
    pub totals: BillTotals,
    /// The file's own summary (WeChat, Alipay), already verified; `None` for the protocol CSV,
    /// which has none.
    pub declared: Option<DeclaredTotals>,
    /// For an Alipay zip, the name of the CSV read inside it.
    pub source_name: Option<String>,
}

/// Which WeChat column becomes [`StatementLine::channel_txn_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WechatKey {
    /// 商户订单号: the order number yibao (or the channel) gave WeChat.
    #[default]
    MerchantOrderNo,
    /// 微信订单号: WeChat's transaction id.
    WechatOrderNo,
}

/// How to read a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatementOptions {
    pub limits: Limits,
    pub wechat_key: WechatKey,
}

/// One format's reading of lines.
pub(crate) trait Format {
    /// Reads one line with content (blank lines are skipped before): a statement line, or `None`
    /// for a header, preamble or summary line.
    fn line(
        &mut self,
        row: u64,
        line: &str,
        fields: &mut Fields,
    ) -> Result<Option<StatementLine>, StatementError>;

    /// At the end of the file: checks the summary against the lines, returns it.
    fn finish(self) -> Result<Option<DeclaredTotals>, StatementError>;
}

/// Reads a statement, handing each line to `on_line` in file order, and returns the totals once
/// the whole file (and its own summary, where the format has one) has been checked.
///
/// The input may be at most [`Limits::max_bytes`]; see the crate documentation for what to do
/// with lines already handed over when an error comes later. An error from `on_line` stops the
/// reading and is returned as it is; `E` needs only `From<StatementError>` (`StatementError`
/// itself will do).
pub fn read_statement<E, F>(
    format: StatementFormat,
    bytes: &[u8],
    options: &StatementOptions,
    on_line: F,
) -> Result<StatementSummary, E>
where
    E: From<StatementError>,
    F: FnMut(StatementLine) -> Result<(), E>,
{
    let limits = &options.limits;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(StatementError::TooLarge {
            limit: limits.max_bytes,
            unpacked: false,
        }
        .into());
    }
    match format {
        StatementFormat::Protocol => run(
            format,
            Lines::new(bytes, limits.max_line_bytes()),
            protocol::Protocol::new(limits),
            limits,
            None,
            on_line,
        ),
        StatementFormat::WechatTradeBill => run(
            format,
            Lines::new(bytes, limits.max_line_bytes()),
            wechat::Wechat::new(limits, options.wechat_key),
            limits,
            None,
            on_line,
        ),
        StatementFormat::AlipayBill => alipay::read(bytes, limits, on_line),
    }
}

/// [`read_statement`] into a vector, for small files and tests.
pub fn read_statement_to_vec(
    format: StatementFormat,
    bytes: &[u8],
    options: &StatementOptions,
) -> Result<(Vec<StatementLine>, StatementSummary), StatementError> {
    let mut lines = Vec::new();
    let summary = read_statement(format, bytes, options, |line| {
        lines.push(line);
        Ok::<(), StatementError>(())
    })?;
    Ok((lines, summary))
}

/// The loop every format shares: lines in, blank ones skipped, statement lines counted, summed
/// and handed over, the format's own check at the end.
pub(crate) fn run<R, P, E, F>(
    format: StatementFormat,
    mut lines: Lines<R>,
    mut parser: P,
    limits: &Limits,
    source_name: Option<String>,
    mut on_line: F,
) -> Result<StatementSummary, E>
where
    R: BufRead,
    P: Format,
    E: From<StatementError>,
    F: FnMut(StatementLine) -> Result<(), E>,
{
    let mut fields = Fields::default();
    let mut totals = BillTotals::default();
    let mut count = 0u64;
    while let Some((row, line)) = lines.next_line()? {
        if line.trim().is_empty() {
            continue;
        }
        let Some(item) = parser.line(row, line, &mut fields)? else {
            continue;
        };
        count += 1;
        if count > limits.max_lines {
            return Err(StatementError::TooManyLines {
                limit: limits.max_lines,
            }
            .into());
        }
        let (n, total) = match item.kind {
            LineKind::Payment => (&mut totals.payment_count, &mut totals.payment_total),
            LineKind::Refund => (&mut totals.refund_count, &mut totals.refund_total),
            LineKind::Reversal => (&mut totals.reversal_count, &mut totals.reversal_total),
        };
        *n += 1;
        add(total, item.amount, item.row, "")?;
        on_line(item)?;
    }
    let declared = parser.finish()?;
    Ok(StatementSummary {
        format,
        encoding: lines.encoding(),
        lines: count,
        totals,
        declared,
        source_name,
    })
}

/// Column positions found by name in a header line.
pub(crate) struct Header {
    names: Vec<String>,
    /// Columns up to the last named one; a detail line may have more only if they are empty.
    width: usize,
}

impl Header {
    /// Reads header names with `normalise` applied (backticks, full-width brackets…).
    pub(crate) fn new(fields: &Fields, normalise: impl Fn(&str) -> String) -> Header {
        let names: Vec<String> = fields.iter().map(normalise).collect();
        let width = names
            .iter()
            .rposition(|n| !n.is_empty())
            .map_or(0, |i| i + 1);
        Header { names, width }
    }

    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Every one of `required`, or a message listing the missing ones.
    pub(crate) fn require<const N: usize>(
        &self,
        required: [&str; N],
    ) -> Result<[usize; N], String> {
        let mut found = [0usize; N];
        let mut missing = Vec::new();
        for (slot, name) in found.iter_mut().zip(required) {
            match self.find(name) {
                Some(i) => *slot = i,
                None => missing.push(format!("“{name}”")),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(format!("缺少{}列", missing.join("、")))
        }
    }

    /// A detail line must have every header column, and nothing beyond them but empty values: a
    /// shifted line (a comma inside a value, a line cut short) is refused, not misread.
    pub(crate) fn check_width(&self, row: u64, fields: &Fields) -> Result<(), StatementError> {
        if fields.len() < self.width {
            return Err(StatementError::bad_row(
                row,
                "",
                format!(
                    "只有{}列，表头有{}列（这一行可能不完整）",
                    fields.len(),
                    self.width
                ),
            ));
        }
        if fields.iter().skip(self.width).any(|f| !f.is_empty()) {
            return Err(StatementError::bad_row(
                row,
                "",
                format!(
                    "有{}列，比表头的{}列多（可能是某个值里含有英文逗号）",
                    fields.len(),
                    self.width
                ),
            ));
        }
        Ok(())
    }
}
