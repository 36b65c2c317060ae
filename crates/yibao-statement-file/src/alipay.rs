//! 支付宝业务明细: the zip downloaded from the Alipay merchant site (or the CSV unpacked from it).
//!
//! The zip holds GBK CSVs (read as GB 18030, GBK's superset); the one read is the CSV whose name
//! contains `业务明细` but not `汇总` (names are read as UTF-8 when they are, else as GB 18030), or
//! the only CSV there is. It is unpacked as it is read, at most [`Limits::max_bytes`] of it (a zip
//! bomb stops there), and its checksum is verified at its end.
//!
//! Inside, `#` lines come first (`#支付宝业务明细查询`, `#账号：[…]`, `#起始日期：[…]`,
//! `#-----…业务明细列表-----`), then the header (`支付宝交易号,商户订单号,业务类型,…`), found by
//! name, brackets `()` and `（）` alike), then detail lines, whose values may carry trailing tabs.
//! 业务类型 `交易` is a payment, `退款` a refund; the amount is 订单金额（元）, made positive on
//! refunds (Alipay writes them negative); the refund number is 退款批次号/请求号; the time is
//! 完成时间, else 创建时间. Any other 业务类型 is refused.
//!
//! The bill ends with `#-----…业务明细列表结束-----`, `#交易合计：2笔，商家实收共430.00元，商家优惠共0.00元`,
//! `#退款合计：1笔，商家实收共-430.00元，商家优惠共0.00元` and `#导出时间：[…]`. The end line and the
//! 交易合计 line are required (a bill without them was cut off); 退款合计 is required when there
//! are refund lines. Counts and 商家实收 (and 商家优惠 where the column exists) sums by type must
//! equal them.

use std::io::{BufReader, Cursor, Read};

use yibao_domain::Fen;

use crate::error::shown;
use crate::statement::{
    run, AlipayTotals, DeclaredTotals, Format, Header, LineKind, StatementFormat, StatementLine,
    StatementSummary,
};
use crate::text::{add, parse_time, parse_yuan, required, Fields, Lines};
use crate::{Limits, StatementError};

const MERCHANT_ORDER: &str = "商户订单号";
const BUSINESS_TYPE: &str = "业务类型";
const ORDER_AMOUNT: &str = "订单金额（元）";
const RECEIVED: &str = "商家实收（元）";
const DISCOUNT: &str = "商家优惠（元）";
const REFUND_NO: &str = "退款批次号/请求号";
const FINISHED: &str = "完成时间";
const CREATED: &str = "创建时间";
const END_MARKER: &str = "业务明细列表结束";
const TRADE_TOTAL: &str = "#交易合计";
const REFUND_TOTAL: &str = "#退款合计";
const MAX_LISTED_NAMES: usize = 5;

/// Reads an Alipay bill: a zip, or (not starting with `PK`) the CSV itself.
pub(crate) fn read<E, F>(bytes: &[u8], limits: &Limits, on_line: F) -> Result<StatementSummary, E>
where
    E: From<StatementError>,
    F: FnMut(StatementLine) -> Result<(), E>,
{
    let format = StatementFormat::AlipayBill;
    if !bytes.starts_with(b"PK") {
        let lines = Lines::new(bytes, limits.max_line_bytes());
        return run(format, lines, Alipay::new(limits), limits, None, on_line);
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        StatementError::bad_archive(format!(
            "不是有效的zip压缩包（{e}），请上传从支付宝下载的原始账单压缩包"
        ))
    })?;
    let (index, name) = choose_entry(&mut archive)?;
    let entry = archive
        .by_index(index)
        .map_err(|e| StatementError::bad_archive(format!("无法解压“{}”（{e}）", shown(&name))))?;
    if entry.size() > limits.max_bytes {
        return Err(StatementError::TooLarge {
            limit: limits.max_bytes,
            unpacked: true,
        }
        .into());
    }
    let bounded = Bounded {
        inner: entry,
        read: 0,
        limit: limits.max_bytes,
    };
    let lines = Lines::new(
        BufReader::with_capacity(64 * 1024, bounded),
        limits.max_line_bytes(),
    );
    run(
        format,
        lines,
        Alipay::new(limits),
        limits,
        Some(name),
        on_line,
    )
}

/// The bill's CSV: see the module documentation.
fn choose_entry<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<(usize, String), StatementError> {
    let mut csvs = Vec::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| StatementError::bad_archive(format!("压缩包目录损坏（{e}）")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry_name(entry.name_raw());
        if !name.to_lowercase().ends_with(".csv") {
            continue;
        }
        if entry.encrypted() {
            return Err(StatementError::bad_archive(format!(
                "“{}”设置了密码，请上传未加密的账单压缩包",
                shown(&name)
            )));
        }
        csvs.push((index, name));
    }
    let details: Vec<(usize, String)> = csvs
        .iter()
        .filter(|(_, name)| name.contains("业务明细") && !name.contains("汇总"))
        .cloned()
        .collect();
    match (details.as_slice(), csvs.as_slice()) {
        ([one], _) | ([], [one]) => Ok(one.clone()),
        ([], []) => Err(StatementError::bad_archive(
            "压缩包中没有CSV文件，请上传从支付宝下载的“业务明细”账单压缩包",
        )),
        (_, _) => {
            let listed: Vec<String> = csvs
                .iter()
                .take(MAX_LISTED_NAMES)
                .map(|(_, name)| format!("“{}”", shown(name)))
                .collect();
            Err(StatementError::bad_archive(format!(
                "压缩包中有多个CSV文件（{}），无法确定哪个是业务明细，请只保留一个“业务明细”文件",
                listed.join("、")
            )))
        }
    }
}

/// A zip entry name: UTF-8 if it is, else GB 18030 (Alipay writes GBK names, GB 18030's subset,
/// without the UTF-8 flag).
fn entry_name(raw: &[u8]) -> String {
    if let Ok(name) = std::str::from_utf8(raw) {
        return name.to_owned();
    }
    match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(raw) {
        Some(name) => name.into_owned(),
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// Refuses to read past `limit` bytes of unpacked data.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.limit {
            return Err(StatementError::TooLarge {
                limit: self.limit,
                unpacked: true,
            }
            .into_io());
        }
        Ok(n)
    }
}

struct Columns {
    header: Header,
    order: usize,
    kind: usize,
    amount: usize,
    received: usize,
    refund_no: usize,
    discount: Option<usize>,
    finished: Option<usize>,
    created: Option<usize>,
}

/// One `#…合计` line.
#[derive(Clone, Copy)]
struct Total {
    count: u64,
    received: Fen,
    discount: Option<Fen>,
}

#[derive(Default)]
struct Sums {
    count: u64,
    received: Fen,
    discount: Fen,
}

pub(crate) struct Alipay {
    columns: Option<Columns>,
    ended: bool,
    trade_total: Option<Total>,
    refund_total: Option<Total>,
    trades: Sums,
    refunds: Sums,
    max_chars: usize,
}

impl Alipay {
    fn new(limits: &Limits) -> Alipay {
        Alipay {
            columns: None,
            ended: false,
            trade_total: None,
            refund_total: None,
            trades: Sums::default(),
            refunds: Sums::default(),
            max_chars: limits.max_field_chars,
        }
    }

    fn comment(&mut self, row: u64, line: &str) -> Result<(), StatementError> {
        if line.contains(END_MARKER) {
            self.ended = true;
        } else if let Some(rest) = line.strip_prefix(TRADE_TOTAL) {
            self.trade_total = Some(parse_total(row, "交易合计", rest)?);
        } else if let Some(rest) = line.strip_prefix(REFUND_TOTAL) {
            self.refund_total = Some(parse_total(row, "退款合计", rest)?);
        }
        Ok(())
    }

    fn detail(
        &mut self,
        row: u64,
        fields: &Fields,
        c: &Columns,
    ) -> Result<StatementLine, StatementError> {
        c.header.check_width(row, fields)?;
        let kind_text = fields.get(c.kind);
        let kind = match kind_text {
            "交易" => LineKind::Payment,
            "退款" => LineKind::Refund,
            other => {
                return Err(StatementError::bad_row(
                    row,
                    BUSINESS_TYPE,
                    format!("应为“交易”或“退款”，实际为“{}”", shown(other)),
                ))
            }
        };
        let amount_text = fields.get(c.amount);
        let signed = parse_yuan(row, ORDER_AMOUNT, amount_text)?
            .ok_or_else(|| StatementError::bad_row(row, ORDER_AMOUNT, "不能为空"))?;
        let amount = match kind {
            LineKind::Payment if signed.as_fen() > 0 => signed,
            LineKind::Refund if signed.as_fen() != 0 => Fen::new(signed.as_fen().saturating_abs())
                .map_err(|_| StatementError::bad_row(row, ORDER_AMOUNT, "超出允许范围"))?,
            LineKind::Payment => {
                return Err(StatementError::bad_row(
                    row,
                    ORDER_AMOUNT,
                    format!("交易金额应大于0，实际为“{}”", shown(amount_text)),
                ))
            }
            _ => {
                return Err(StatementError::bad_row(
                    row,
                    ORDER_AMOUNT,
                    format!("退款金额不能为0，实际为“{}”", shown(amount_text)),
                ))
            }
        };
        let received = parse_yuan(row, RECEIVED, fields.get(c.received))?.unwrap_or(Fen::ZERO);
        let discount = match c.discount {
            Some(i) => parse_yuan(row, DISCOUNT, fields.get(i))?.unwrap_or(Fen::ZERO),
            None => Fen::ZERO,
        };
        let sums = match kind {
            LineKind::Refund => &mut self.refunds,
            _ => &mut self.trades,
        };
        sums.count += 1;
        add(&mut sums.received, received, row, RECEIVED)?;
        add(&mut sums.discount, discount, row, DISCOUNT)?;

        let channel_txn_id = required(row, MERCHANT_ORDER, fields.get(c.order), self.max_chars)?;
        let refund_no = match kind {
            LineKind::Refund => Some(required(
                row,
                REFUND_NO,
                fields.get(c.refund_no),
                self.max_chars,
            )?),
            _ => None,
        };
        let time = [(c.finished, FINISHED), (c.created, CREATED)]
            .into_iter()
            .find_map(|(i, name)| {
                i.map(|i| (fields.get(i), name))
                    .filter(|(v, _)| !v.is_empty())
            });
        let occurred_at = match time {
            Some((value, name)) => parse_time(row, name, value, self.max_chars)?,
            None => None,
        };
        Ok(StatementLine {
            row,
            channel_txn_id,
            kind,
            amount,
            occurred_at,
            refund_no,
        })
    }
}

impl Format for Alipay {
    fn line(
        &mut self,
        row: u64,
        line: &str,
        fields: &mut Fields,
    ) -> Result<Option<StatementLine>, StatementError> {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            self.comment(row, trimmed)?;
            return Ok(None);
        }
        fields
            .split_csv(line)
            .map_err(|reason| StatementError::bad_row(row, "", reason))?;
        if fields.all_empty() {
            return Ok(None);
        }
        if self.ended {
            return Err(StatementError::bad_row(
                row,
                "",
                "位于“业务明细列表结束”之后，明细列表结束后不应再有明细行",
            ));
        }
        let Some(columns) = self.columns.take() else {
            let header = Header::new(fields, |name| name.replace('(', "（").replace(')', "）"));
            let [order, kind, amount, received, refund_no] = header
                .require([MERCHANT_ORDER, BUSINESS_TYPE, ORDER_AMOUNT, RECEIVED, REFUND_NO])
                .map_err(|missing| StatementError::BadHeader {
                    row,
                    message: format!(
                        "{missing}。请上传从支付宝商家中心下载的“业务明细”账单，表头应为“支付宝交易号,商户订单号,业务类型,…”"
                    ),
                })?;
            self.columns = Some(Columns {
                order,
                kind,
                amount,
                received,
                refund_no,
                discount: header.find(DISCOUNT),
                finished: header.find(FINISHED),
                created: header.find(CREATED),
                header,
            });
            return Ok(None);
        };
        let line = self.detail(row, fields, &columns);
        self.columns = Some(columns);
        line.map(Some)
    }

    fn finish(self) -> Result<Option<DeclaredTotals>, StatementError> {
        let Some(columns) = self.columns else {
            return Err(StatementError::Empty);
        };
        if !self.ended {
            return Err(StatementError::truncated(
                "没有找到明细末尾的“#-----业务明细列表结束-----”行",
            ));
        }
        let Some(trade) = self.trade_total else {
            return Err(StatementError::truncated("没有找到“#交易合计”行"));
        };
        let refund = match self.refund_total {
            Some(total) => total,
            None if self.refunds.count == 0 => Total {
                count: 0,
                received: Fen::ZERO,
                discount: None,
            },
            None => return Err(StatementError::truncated("没有找到“#退款合计”行")),
        };
        for (label, declared, sums) in [
            ("交易", trade, &self.trades),
            ("退款", refund, &self.refunds),
        ] {
            if declared.count != sums.count {
                return Err(StatementError::mismatch(
                    format!("{label}笔数"),
                    format!("{}笔", declared.count),
                    format!("{}笔", sums.count),
                ));
            }
            if declared.received != sums.received {
                return Err(StatementError::mismatch(
                    format!("{label}商家实收"),
                    declared.received,
                    sums.received,
                ));
            }
            if let (Some(discount), Some(_)) = (declared.discount, columns.discount) {
                if discount != sums.discount {
                    return Err(StatementError::mismatch(
                        format!("{label}商家优惠"),
                        discount,
                        sums.discount,
                    ));
                }
            }
        }
        Ok(Some(DeclaredTotals::Alipay(AlipayTotals {
            trade_count: trade.count,
            trade_received: trade.received,
            trade_merchant_discount: trade.discount,
            refund_count: refund.count,
            refund_received: refund.received,
            refund_merchant_discount: refund.discount,
        })))
    }
}

/// `：2笔，商家实收共430.00元，商家优惠共0.00元` (after `#交易合计`).
fn parse_total(row: u64, column: &str, rest: &str) -> Result<Total, StatementError> {
    let bad = |what: &str| {
        StatementError::bad_row(
            row,
            column,
            format!(
                "{what}，应如“#{column}：2笔，商家实收共430.00元，商家优惠共0.00元”，实际为“{}”",
                shown(rest)
            ),
        )
    };
    let body = rest.trim_start().trim_start_matches(['：', ':']).trim();
    let mut parts = body.split(['，', ',']).map(str::trim);
    let count = parts
        .next()
        .and_then(|p| p.strip_suffix('笔'))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| bad("笔数无法识别"))?;
    let mut received = None;
    let mut discount = None;
    for part in parts {
        for (label, slot) in [("商家实收共", &mut received), ("商家优惠共", &mut discount)]
        {
            if let Some(value) = part.strip_prefix(label) {
                let value = value.strip_suffix('元').unwrap_or(value).trim();
                let fen = Fen::parse_signed_yuan(value).map_err(|_| bad("金额无法识别"))?;
                *slot = Some(fen);
            }
        }
    }
    Ok(Total {
        count,
        received: received.ok_or_else(|| bad("缺少“商家实收共…元”"))?,
        discount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_lines() {
        let t = parse_total(9, "交易合计", "：2笔，商家实收共430.00元，商家优惠共0.00元").unwrap();
        assert_eq!(t.count, 2);
        assert_eq!(t.received.as_fen(), 43000);
        assert_eq!(t.discount, Some(Fen::ZERO));
        let t = parse_total(9, "退款合计", ":1笔,商家实收共-430.00元").unwrap();
        assert_eq!(t.received.as_fen(), -43000);
        assert_eq!(t.discount, None);
        assert!(parse_total(9, "交易合计", "：两笔").is_err());
        assert!(parse_total(9, "交易合计", "：2笔").is_err());
        assert!(parse_total(9, "交易合计", "：2笔，商家实收共4.305元").is_err());
    }

    #[test]
    fn entry_names_in_gbk() {
        let (gbk, _, _) = encoding_rs::GBK.encode("2088_20201102_业务明细.csv");
        assert_eq!(entry_name(&gbk), "2088_20201102_业务明细.csv");
        assert_eq!(entry_name("业务明细.csv".as_bytes()), "业务明细.csv");
    }
}
