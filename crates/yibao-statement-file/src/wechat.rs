//! 微信支付交易账单 (`downloadbill`, `bill_type=ALL`).
//!
//! UTF-8 CSV. The first line is the header (`交易时间,公众账号ID,商户号,…`); columns are found by
//! name, extra ones are ignored. Every value is prefixed with a backtick (`` `430.00``), which is
//! removed. Amounts are yuan with at most two decimals.
//!
//! 交易状态 `SUCCESS` is a payment of 应结订单金额 (订单金额 when that is empty), `REFUND` a refund
//! of 退款金额 with 商户退款单号 as the refund number, `REVOKED` a reversal of the payment amount.
//! Any other status is refused: a bill must be understood whole.
//!
//! The bill ends with the line `总交易单数,应结订单总金额,退款总金额,…` and one line of values. The
//! count of detail lines and the column sums of 应结订单金额, 退款金额 (and 订单金额, 申请退款金额
//! where present) must equal them; a bill without them is refused as truncated.

use yibao_domain::Fen;

use crate::error::shown;
use crate::statement::{
    DeclaredTotals, Format, Header, LineKind, StatementLine, WechatKey, WechatTotals,
};
use crate::text::{add, parse_time, parse_yuan, required, Fields};
use crate::{Limits, StatementError};

const TIME: &str = "交易时间";
const STATUS: &str = "交易状态";
const MERCHANT_ORDER: &str = "商户订单号";
const WECHAT_ORDER: &str = "微信订单号";
const SETTLEMENT: &str = "应结订单金额";
const REFUND: &str = "退款金额";
const REFUND_NO: &str = "商户退款单号";
const ORDER: &str = "订单金额";
const REFUND_REQUESTED: &str = "申请退款金额";

const SUMMARY_COUNT: &str = "总交易单数";
const SUMMARY_SETTLEMENT: &str = "应结订单总金额";
const SUMMARY_REFUND: &str = "退款总金额";
const SUMMARY_ORDER: &str = "订单总金额";
const SUMMARY_REFUND_REQUESTED: &str = "申请退款总金额";

struct Columns {
    header: Header,
    time: usize,
    status: usize,
    key: usize,
    key_name: &'static str,
    settlement: usize,
    refund: usize,
    refund_no: usize,
    order: Option<usize>,
    refund_requested: Option<usize>,
}

enum Phase {
    Header,
    Details(Box<Columns>),
    /// After the `总交易单数,…` line: its column positions.
    SummaryValues {
        columns: Box<Columns>,
        summary: Header,
        row: u64,
    },
    Done {
        columns: Box<Columns>,
        declared: WechatTotals,
    },
}

/// Column sums of the detail lines.
#[derive(Default)]
struct Sums {
    count: u64,
    settlement: Fen,
    refund: Fen,
    order: Fen,
    refund_requested: Fen,
}

pub(crate) struct Wechat {
    phase: Phase,
    key: WechatKey,
    max_chars: usize,
    sums: Sums,
}

impl Wechat {
    pub(crate) fn new(limits: &Limits, key: WechatKey) -> Wechat {
        Wechat {
            phase: Phase::Header,
            key,
            max_chars: limits.max_field_chars,
            sums: Sums::default(),
        }
    }

    fn header(&self, row: u64, fields: &Fields) -> Result<Columns, StatementError> {
        let header = Header::new(fields, |name| unquote(name).to_owned());
        let key_name = match self.key {
            WechatKey::MerchantOrderNo => MERCHANT_ORDER,
            WechatKey::WechatOrderNo => WECHAT_ORDER,
        };
        let [time, status, key, settlement, refund, refund_no] = header
            .require([TIME, STATUS, key_name, SETTLEMENT, REFUND, REFUND_NO])
            .map_err(|missing| StatementError::BadHeader {
                row,
                message: format!(
                    "{missing}。请上传从微信支付商户平台下载的“交易账单”（全部订单），第一行应为表头“交易时间,公众账号ID,商户号,…”"
                ),
            })?;
        Ok(Columns {
            time,
            status,
            key,
            key_name,
            settlement,
            refund,
            refund_no,
            order: header.find(ORDER),
            refund_requested: header.find(REFUND_REQUESTED),
            header,
        })
    }

    fn detail(
        &mut self,
        row: u64,
        fields: &Fields,
        c: &Columns,
    ) -> Result<StatementLine, StatementError> {
        c.header.check_width(row, fields)?;
        let value = |i: usize| unquote(fields.get(i));
        let status = value(c.status);
        let kind = match status {
            "SUCCESS" => LineKind::Payment,
            "REFUND" => LineKind::Refund,
            "REVOKED" => LineKind::Reversal,
            other => {
                return Err(StatementError::bad_row(
                    row,
                    STATUS,
                    format!(
                        "应为 SUCCESS（支付成功）、REFUND（退款）或 REVOKED（已撤销），实际为“{}”",
                        shown(other)
                    ),
                ))
            }
        };
        let settlement = amount(row, SETTLEMENT, value(c.settlement))?;
        let refund = amount(row, REFUND, value(c.refund))?;
        let order = match c.order {
            Some(i) => amount(row, ORDER, value(i))?,
            None => None,
        };
        let refund_requested = match c.refund_requested {
            Some(i) => amount(row, REFUND_REQUESTED, value(i))?,
            None => None,
        };
        let sums = &mut self.sums;
        sums.count += 1;
        for (total, part, column) in [
            (&mut sums.settlement, settlement, SETTLEMENT),
            (&mut sums.refund, refund, REFUND),
            (&mut sums.order, order, ORDER),
            (
                &mut sums.refund_requested,
                refund_requested,
                REFUND_REQUESTED,
            ),
        ] {
            add(total, part.unwrap_or(Fen::ZERO), row, column)?;
        }

        let channel_txn_id = required(row, c.key_name, value(c.key), self.max_chars)?;
        let (line_amount, column, refund_no) = match kind {
            LineKind::Refund => {
                let refund_no = required(row, REFUND_NO, value(c.refund_no), self.max_chars)?;
                (refund, REFUND, Some(refund_no))
            }
            _ => match settlement {
                Some(fen) => (Some(fen), SETTLEMENT, None),
                None => (order, ORDER, None),
            },
        };
        let amount = match line_amount {
            Some(fen) if fen.as_fen() > 0 => fen,
            Some(_) => {
                return Err(StatementError::bad_row(
                    row,
                    column,
                    format!("应大于0，实际为“{}”", shown(value_of(fields, c, column))),
                ))
            }
            None => return Err(StatementError::bad_row(row, column, "不能为空")),
        };
        let occurred_at = parse_time(row, TIME, value(c.time), self.max_chars)?;
        Ok(StatementLine {
            row,
            channel_txn_id,
            kind,
            amount,
            occurred_at,
            refund_no,
        })
    }

    fn summary_values(
        row: u64,
        fields: &Fields,
        summary: &Header,
    ) -> Result<WechatTotals, StatementError> {
        let value = |name: &str| summary.find(name).map(|i| unquote(fields.get(i)));
        let total = |name: &'static str| -> Result<Option<Fen>, StatementError> {
            match value(name) {
                Some(text) => amount(row, name, text),
                None => Ok(None),
            }
        };
        let count_text = value(SUMMARY_COUNT).unwrap_or_default();
        let trade_count = count_text.parse::<u64>().map_err(|_| {
            StatementError::bad_row(
                row,
                SUMMARY_COUNT,
                format!("应为整数，实际为“{}”", shown(count_text)),
            )
        })?;
        let need = |name: &'static str| -> Result<Fen, StatementError> {
            total(name)?.ok_or_else(|| StatementError::bad_row(row, name, "不能为空"))
        };
        Ok(WechatTotals {
            trade_count,
            settlement_total: need(SUMMARY_SETTLEMENT)?,
            refund_total: need(SUMMARY_REFUND)?,
            order_total: total(SUMMARY_ORDER)?,
            refund_requested_total: total(SUMMARY_REFUND_REQUESTED)?,
        })
    }
}

impl Format for Wechat {
    fn line(
        &mut self,
        row: u64,
        line: &str,
        fields: &mut Fields,
    ) -> Result<Option<StatementLine>, StatementError> {
        fields
            .split_csv(line)
            .map_err(|reason| StatementError::bad_row(row, "", reason))?;
        if fields.all_empty() {
            return Ok(None);
        }
        match std::mem::replace(&mut self.phase, Phase::Header) {
            Phase::Header => {
                self.phase = Phase::Details(Box::new(self.header(row, fields)?));
                Ok(None)
            }
            Phase::Details(columns) => {
                if fields.get(0) == SUMMARY_COUNT {
                    let summary = Header::new(fields, |name| unquote(name).to_owned());
                    summary
                        .require([SUMMARY_COUNT, SUMMARY_SETTLEMENT, SUMMARY_REFUND])
                        .map_err(|missing| StatementError::bad_row(row, "", missing))?;
                    self.phase = Phase::SummaryValues {
                        columns,
                        summary,
                        row,
                    };
                    return Ok(None);
                }
                let line = self.detail(row, fields, &columns);
                self.phase = Phase::Details(columns);
                line.map(Some)
            }
            Phase::SummaryValues {
                columns, summary, ..
            } => {
                let declared = Wechat::summary_values(row, fields, &summary)?;
                self.phase = Phase::Done { columns, declared };
                Ok(None)
            }
            Phase::Done { .. } => Err(StatementError::bad_row(
                row,
                "",
                "位于账单末尾的汇总之后，汇总之后不应再有内容",
            )),
        }
    }

    fn finish(self) -> Result<Option<DeclaredTotals>, StatementError> {
        let (columns, declared) = match self.phase {
            Phase::Header => return Err(StatementError::Empty),
            Phase::Details(_) => {
                return Err(StatementError::truncated(
                    "账单末尾没有汇总行（“总交易单数,应结订单总金额,…”及其数值）",
                ))
            }
            Phase::SummaryValues { row, .. } => {
                return Err(StatementError::truncated(format!(
                    "第{row}行的汇总表头之后没有汇总数值"
                )))
            }
            Phase::Done { columns, declared } => (columns, declared),
        };
        let sums = &self.sums;
        if declared.trade_count != sums.count {
            return Err(StatementError::mismatch(
                SUMMARY_COUNT,
                format!("{}笔", declared.trade_count),
                format!("{}笔", sums.count),
            ));
        }
        let mut checks = vec![
            (
                SUMMARY_SETTLEMENT,
                Some(declared.settlement_total),
                sums.settlement,
            ),
            (SUMMARY_REFUND, Some(declared.refund_total), sums.refund),
        ];
        if columns.order.is_some() {
            checks.push((SUMMARY_ORDER, declared.order_total, sums.order));
        }
        if columns.refund_requested.is_some() {
            checks.push((
                SUMMARY_REFUND_REQUESTED,
                declared.refund_requested_total,
                sums.refund_requested,
            ));
        }
        for (item, declared, computed) in checks {
            if let Some(declared) = declared {
                if declared != computed {
                    return Err(StatementError::mismatch(item, declared, computed));
                }
            }
        }
        Ok(Some(DeclaredTotals::Wechat(declared)))
    }
}

/// A value without the backtick WeChat puts before it.
fn unquote(value: &str) -> &str {
    match value.strip_prefix('`') {
        Some(rest) => rest.trim(),
        None => value,
    }
}

/// A non-negative amount in yuan; empty is `None`.
fn amount(row: u64, column: &str, text: &str) -> Result<Option<Fen>, StatementError> {
    let fen = parse_yuan(row, column, text)?;
    if fen.is_some_and(Fen::is_negative) {
        return Err(StatementError::bad_row(
            row,
            column,
            format!("不能为负数，实际为“{}”", shown(text)),
        ));
    }
    Ok(fen)
}

fn value_of<'a>(fields: &'a Fields, c: &Columns, column: &str) -> &'a str {
    let index = match column {
        REFUND => c.refund,
        ORDER => c.order.unwrap_or(c.settlement),
        _ => c.settlement,
    };
    unquote(fields.get(index))
}
