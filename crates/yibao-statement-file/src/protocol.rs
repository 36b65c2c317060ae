//! The channel protocol's daily statement (§7):
//!
//! ```text
//! channel_txn_id,type,amount,occurred_at,refund_no
//! T20201102000001,payment,43000,2020-11-02T10:15:00+08:00,
//! T20201102000001,refund,43000,2020-11-03T09:00:00+08:00,R000017
//! ```
//!
//! UTF-8 (a byte-order mark allowed; GB 18030 is detected too, harmlessly, since ids are ASCII). The
//! header is required and its columns are found by name (ASCII case ignored), so added columns
//! and another order are fine; `occurred_at` and `refund_no` may be left out of a file that does
//! not need them. `type` is `payment`, `refund` or `reversal`; `amount` is integer fen, at least 1;
//! `refund_no` is required on refund lines and ignored on others. Blank lines are skipped. There
//! are no summary lines.

use crate::error::shown;
use crate::statement::{DeclaredTotals, Format, Header, LineKind, StatementLine};
use crate::text::{parse_fen, parse_time, required, Fields};
use crate::{Limits, StatementError};

const HEADER: &str = "channel_txn_id,type,amount,occurred_at,refund_no";
const TXN: &str = "交易号（channel_txn_id）";
const TYPE: &str = "类型（type）";
const AMOUNT: &str = "金额（amount）";
const TIME: &str = "时间（occurred_at）";
const REFUND_NO: &str = "退款单号（refund_no）";

struct Columns {
    txn: usize,
    kind: usize,
    amount: usize,
    occurred_at: Option<usize>,
    refund_no: Option<usize>,
    header: Header,
}

pub(crate) struct Protocol {
    columns: Option<Columns>,
    max_chars: usize,
}

impl Protocol {
    pub(crate) fn new(limits: &Limits) -> Protocol {
        Protocol {
            columns: None,
            max_chars: limits.max_field_chars,
        }
    }
}

impl Format for Protocol {
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
        let Some(columns) = &self.columns else {
            let header = Header::new(fields, |name| name.to_ascii_lowercase());
            let [txn, kind, amount] = header
                .require(["channel_txn_id", "type", "amount"])
                .map_err(|missing| StatementError::BadHeader {
                    row,
                    message: format!("{missing}：第一行应为表头 {HEADER}"),
                })?;
            self.columns = Some(Columns {
                txn,
                kind,
                amount,
                occurred_at: header.find("occurred_at"),
                refund_no: header.find("refund_no"),
                header,
            });
            return Ok(None);
        };
        columns.header.check_width(row, fields)?;
        let channel_txn_id = required(row, TXN, fields.get(columns.txn), self.max_chars)?;
        let kind_text = fields.get(columns.kind);
        let kind = if kind_text.eq_ignore_ascii_case("payment") {
            LineKind::Payment
        } else if kind_text.eq_ignore_ascii_case("refund") {
            LineKind::Refund
        } else if kind_text.eq_ignore_ascii_case("reversal") {
            LineKind::Reversal
        } else {
            return Err(StatementError::bad_row(
                row,
                TYPE,
                format!(
                    "应为 payment、refund 或 reversal，实际为“{}”",
                    shown(kind_text)
                ),
            ));
        };
        let amount = parse_fen(row, AMOUNT, fields.get(columns.amount))?;
        let occurred_at = match columns.occurred_at {
            Some(i) => parse_time(row, TIME, fields.get(i), self.max_chars)?,
            None => None,
        };
        let refund_no = match kind {
            LineKind::Refund => {
                let value = columns.refund_no.map_or("", |i| fields.get(i));
                if value.is_empty() {
                    return Err(StatementError::bad_row(
                        row,
                        REFUND_NO,
                        "不能为空：退款行必须填写yibao的退款单号",
                    ));
                }
                Some(required(row, REFUND_NO, value, self.max_chars)?)
            }
            _ => None,
        };
        Ok(Some(StatementLine {
            row,
            channel_txn_id,
            kind,
            amount,
            occurred_at,
            refund_no,
        }))
    }

    fn finish(self) -> Result<Option<DeclaredTotals>, StatementError> {
        match self.columns {
            Some(_) => Ok(None),
            None => Err(StatementError::Empty),
        }
    }
}
