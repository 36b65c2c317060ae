//! Bank auto-debit (委托扣款) files: yibao's own `|`-separated format, documented in
//! `docs/bank-files.md`.
//!
//! Request (yibao → bank), UTF-8, lines ending in LF. `id_number` and `name` are the agreement
//! holder's (the account the bank debits); the member the debit is for follows, when yibao knows it:
//! ```text
//! H|<run_no>|<bank_code>|<region_code>|<debit_date YYYYMMDD>|<count>|<total_fen>
//! D|<seq>|<item_ref>|<agreement_no>|<id_number>|<name>|<amount_fen>|<member_id_number>|<member_name>
//! ```
//! Result (bank → yibao), UTF-8 (byte-order mark allowed) or GB 18030 (a bank's GBK is its subset
//! and reads the same), LF or CRLF; the last two fields (the day the bank debited, the member
//! echoed back) are optional:
//! ```text
//! H|<run_no>|<bank_code>|<count>|<success_count>|<success_total_fen>
//! D|<seq>|<item_ref>|S|<bank_txn_id>|<amount_fen>|||<debit_day YYYYMMDD>|<member_id_number>
//! D|<seq>|<item_ref>|F|||<reason_code>|<reason_text>||<member_id_number>
//! ```

use std::collections::HashMap;

use chrono::NaiveDate;
use yibao_domain::Fen;

use crate::error::shown;
use crate::text::{add, check_length, parse_fen, Fields, Lines};
use crate::{Limits, StatementError, TextEncoding};

/// Most items in one debit request (and so in one result).
pub const MAX_DEBIT_BATCH: usize = 50_000;

/// The `H` line of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitRequestHeader {
    /// yibao's number for the debit run; the bank echoes it in the result.
    pub run_no: String,
    /// The bank's code as configured for the region.
    pub bank_code: String,
    /// The pooling region (统筹区) code.
    pub region_code: String,
    /// The day the bank is to debit.
    pub debit_date: NaiveDate,
}

/// One `D` line of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitRequestItem {
    /// yibao's reference for the item, unique in the file; the bank echoes it.
    pub item_ref: String,
    /// The payer's debit agreement (委托扣款协议) number at the bank.
    pub agreement_no: String,
    /// The agreement holder's ID number: the bank checks it against the agreement.
    pub id_number: String,
    /// The agreement holder's name, as on the agreement.
    pub name: String,
    /// At least 1 fen.
    pub amount: Fen,
    /// The person the debit pays for (a family member, or the holder), when known.
    pub member: Option<DebitMember>,
}

/// The person a debit pays for under a family agreement (家庭代扣): written after the amount.
#[derive(Clone, PartialEq, Eq)]
pub struct DebitMember {
    pub id_number: String,
    pub name: String,
}

impl std::fmt::Debug for DebitMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal data: never whole in a log.
        f.write_str("DebitMember { .. }")
    }
}

/// A `D` line of a request as read, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitRequestRow {
    pub row: u64,
    pub seq: u64,
    pub item: DebitRequestItem,
}

/// A request file as read (by a bank or its simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitRequest {
    pub header: DebitRequestHeader,
    /// The header's count and total, already checked against the rows.
    pub count: u64,
    pub total: Fen,
    pub rows: Vec<DebitRequestRow>,
    pub encoding: TextEncoding,
}

/// The `H` line of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitResultHeader {
    pub run_no: String,
    pub bank_code: String,
    /// Detail lines, successes and failures.
    pub count: u64,
    pub success_count: u64,
    /// Sum of the successful amounts; 0 when none succeeded.
    pub success_total: Fen,
}

/// What the bank did with one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebitOutcome {
    /// `S`: the money was taken.
    Succeeded { bank_txn_id: String, amount: Fen },
    /// `F`: it was not; see [`DebitFailure`] for the codes.
    Failed { reason_code: String, reason: String },
}

/// A `D` line of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitResultRow {
    pub row: u64,
    pub seq: u64,
    pub item_ref: String,
    pub outcome: DebitOutcome,
    /// The day the bank debited (or tried to), when the bank says so (optional 9th field).
    pub debit_day: Option<NaiveDate>,
    /// The member's ID number echoed from the request (optional 10th field).
    pub member_id_number: Option<String>,
}

/// One line for [`write_debit_result_entries`]: an outcome with the optional fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitResultEntry {
    pub item_ref: String,
    pub outcome: DebitOutcome,
    pub debit_day: Option<NaiveDate>,
    pub member_id_number: Option<String>,
}

/// A result file as read, every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitResult {
    pub header: DebitResultHeader,
    pub rows: Vec<DebitResultRow>,
    pub encoding: TextEncoding,
}

/// The failure reason codes of a result file. Banks may send other codes (letters and digits, at
/// most 8); they read as [`DebitFailure::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DebitFailure {
    /// `E01` 余额不足: retry on a later run.
    InsufficientFunds,
    /// `E02` 账户冻结或已注销: the payer must see the bank.
    AccountUnavailable,
    /// `E03` 扣款协议无效 (unknown, expired, revoked, or not matching the id number or name): the
    /// agreement must be signed again.
    AgreementInvalid,
    /// `E99` or any other code: see the reason text.
    Other,
}

impl DebitFailure {
    pub fn from_code(code: &str) -> DebitFailure {
        match code {
            "E01" => DebitFailure::InsufficientFunds,
            "E02" => DebitFailure::AccountUnavailable,
            "E03" => DebitFailure::AgreementInvalid,
            _ => DebitFailure::Other,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            DebitFailure::InsufficientFunds => "E01",
            DebitFailure::AccountUnavailable => "E02",
            DebitFailure::AgreementInvalid => "E03",
            DebitFailure::Other => "E99",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            DebitFailure::InsufficientFunds => "余额不足",
            DebitFailure::AccountUnavailable => "账户冻结或已注销",
            DebitFailure::AgreementInvalid => "扣款协议无效",
            DebitFailure::Other => "其他原因",
        }
    }
}

impl DebitResult {
    /// Checks the result against the request it answers: same run and bank, the same items at
    /// the same sequence numbers, and every success for exactly the amount asked.
    pub fn check_against(
        &self,
        header: &DebitRequestHeader,
        items: &[DebitRequestItem],
    ) -> Result<(), StatementError> {
        let h = &self.header;
        for (item, declared, computed) in [
            ("批次号", &h.run_no, &header.run_no),
            ("银行代码", &h.bank_code, &header.bank_code),
        ] {
            if declared != computed {
                return Err(StatementError::BadHeader {
                    row: 1,
                    message: format!(
                        "{item}为“{}”，与扣款请求的“{}”不符，这不是本批次的结果文件",
                        shown(declared),
                        shown(computed)
                    ),
                });
            }
        }
        if h.count != items.len() as u64 {
            return Err(StatementError::mismatch(
                "扣款请求与结果的笔数",
                format!("{}笔", items.len()),
                format!("{}笔", h.count),
            ));
        }
        for (row, item) in self.rows.iter().zip(items) {
            if row.item_ref != item.item_ref {
                return Err(StatementError::bad_row(
                    row.row,
                    "明细编号",
                    format!(
                        "为“{}”，扣款请求中第{}笔为“{}”",
                        shown(&row.item_ref),
                        row.seq,
                        shown(&item.item_ref)
                    ),
                ));
            }
            if let (Some(echoed), Some(member)) = (&row.member_id_number, &item.member) {
                if *echoed != member.id_number {
                    return Err(StatementError::bad_row(
                        row.row,
                        "代扣人员证件号码",
                        format!("与扣款请求中第{}笔的代扣人员不符", row.seq),
                    ));
                }
            }
            if let DebitOutcome::Succeeded { amount, .. } = &row.outcome {
                if *amount != item.amount {
                    return Err(StatementError::bad_row(
                        row.row,
                        "扣款金额",
                        format!("为{amount}，扣款请求为{}", item.amount),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Writes a request file: see the module documentation. Refuses an empty or too large batch, a
/// duplicate `item_ref`, an amount under 1 fen, and any value that is empty, longer than 128
/// characters, or holds `|` or a control character (CR, LF, tab…).
pub fn write_debit_request(
    header: &DebitRequestHeader,
    items: &[DebitRequestItem],
) -> Result<Vec<u8>, StatementError> {
    check_batch(items.len())?;
    for (field, value) in [
        ("批次号", &header.run_no),
        ("银行代码", &header.bank_code),
        ("统筹区代码", &header.region_code),
    ] {
        check_value(None, field, value)?;
    }
    let mut total = Fen::ZERO;
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let n = Some(index as u64 + 1);
        for (field, value) in [
            ("明细编号", &item.item_ref),
            ("协议号", &item.agreement_no),
            ("证件号码", &item.id_number),
            ("姓名", &item.name),
        ] {
            check_value(n, field, value)?;
        }
        if let Some(member) = &item.member {
            check_value(n, "代扣人员证件号码", &member.id_number)?;
            check_value(n, "代扣人员姓名", &member.name)?;
        }
        if item.amount.as_fen() < 1 {
            return Err(invalid(
                n,
                "金额",
                format!("应至少为1分，实际为{}", item.amount),
            ));
        }
        if let Some(first) = seen.insert(&item.item_ref, index + 1) {
            return Err(invalid(n, "明细编号", format!("与第{first}笔重复")));
        }
        total = total
            .checked_add(item.amount)
            .map_err(|_| invalid(n, "金额", "累计金额超出允许范围"))?;
    }
    let mut out = String::with_capacity(64 + items.len() * 96);
    out.push_str(&format!(
        "H|{}|{}|{}|{}|{}|{}\n",
        header.run_no,
        header.bank_code,
        header.region_code,
        header.debit_date.format("%Y%m%d"),
        items.len(),
        total.as_fen()
    ));
    for (index, item) in items.iter().enumerate() {
        out.push_str(&format!(
            "D|{}|{}|{}|{}|{}|{}",
            index + 1,
            item.item_ref,
            item.agreement_no,
            item.id_number,
            item.name,
            item.amount.as_fen()
        ));
        if let Some(member) = &item.member {
            out.push_str(&format!("|{}|{}", member.id_number, member.name));
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Writes a result file (for a bank's side, a simulator, tests), UTF-8 with LF, the header's
/// counts computed from `outcomes`, which are `(item_ref, outcome)` in request order. Refuses
/// what [`read_debit_result`] would refuse.
pub fn write_debit_result(
    run_no: &str,
    bank_code: &str,
    outcomes: &[(String, DebitOutcome)],
) -> Result<Vec<u8>, StatementError> {
    let entries: Vec<DebitResultEntry> = outcomes
        .iter()
        .map(|(item_ref, outcome)| DebitResultEntry {
            item_ref: item_ref.clone(),
            outcome: outcome.clone(),
            debit_day: None,
            member_id_number: None,
        })
        .collect();
    write_debit_result_entries(run_no, bank_code, &entries)
}

/// [`write_debit_result`] with the optional fields: a line carrying a debit day or a member is
/// written with all ten fields, one without them with eight.
pub fn write_debit_result_entries(
    run_no: &str,
    bank_code: &str,
    outcomes: &[DebitResultEntry],
) -> Result<Vec<u8>, StatementError> {
    check_batch(outcomes.len())?;
    check_value(None, "批次号", run_no)?;
    check_value(None, "银行代码", bank_code)?;
    let mut success_count = 0u64;
    let mut success_total = Fen::ZERO;
    let mut details = String::with_capacity(outcomes.len() * 64);
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(outcomes.len());
    for (index, entry) in outcomes.iter().enumerate() {
        let (item_ref, outcome) = (&entry.item_ref, &entry.outcome);
        let n = Some(index as u64 + 1);
        check_value(n, "明细编号", item_ref)?;
        if let Some(member) = &entry.member_id_number {
            check_value(n, "代扣人员证件号码", member)?;
        }
        if let Some(first) = seen.insert(item_ref, index + 1) {
            return Err(invalid(n, "明细编号", format!("与第{first}笔重复")));
        }
        match outcome {
            DebitOutcome::Succeeded {
                bank_txn_id,
                amount,
            } => {
                check_value(n, "银行流水号", bank_txn_id)?;
                if amount.as_fen() < 1 {
                    return Err(invalid(n, "金额", format!("应至少为1分，实际为{amount}")));
                }
                success_count += 1;
                success_total = success_total
                    .checked_add(*amount)
                    .map_err(|_| invalid(n, "金额", "累计金额超出允许范围"))?;
                details.push_str(&format!(
                    "D|{}|{item_ref}|S|{bank_txn_id}|{}||",
                    index + 1,
                    amount.as_fen()
                ));
            }
            DebitOutcome::Failed {
                reason_code,
                reason,
            } => {
                check_value(n, "失败原因代码", reason_code)?;
                if !is_reason_code(reason_code) {
                    return Err(invalid(n, "失败原因代码", "应为1至8位字母或数字，如 E01"));
                }
                if !reason.is_empty() {
                    check_value(n, "失败原因", reason)?;
                }
                details.push_str(&format!(
                    "D|{}|{item_ref}|F|||{reason_code}|{reason}",
                    index + 1
                ));
            }
        }
        if entry.debit_day.is_some() || entry.member_id_number.is_some() {
            details.push_str(&format!(
                "|{}|{}",
                entry
                    .debit_day
                    .map(|d| d.format("%Y%m%d").to_string())
                    .unwrap_or_default(),
                entry.member_id_number.as_deref().unwrap_or_default()
            ));
        }
        details.push('\n');
    }
    let mut out = format!(
        "H|{run_no}|{bank_code}|{}|{success_count}|{}\n",
        outcomes.len(),
        success_total.as_fen()
    );
    out.push_str(&details);
    Ok(out.into_bytes())
}

/// Reads a request file (the bank's side), with the same checks as [`read_debit_result`].
pub fn read_debit_request(bytes: &[u8], limits: &Limits) -> Result<DebitRequest, StatementError> {
    let mut file = PipeFile::open(bytes, limits)?;
    let Some((row, f)) = file.next()? else {
        return Err(StatementError::Empty);
    };
    let max = limits.max_field_chars;
    expect_record(
        row,
        f,
        "H",
        7,
        "H|批次号|银行代码|统筹区代码|扣款日期|笔数|总金额（分）",
    )?;
    let run_no = text(row, "批次号", f.get(1), max)?;
    let bank_code = text(row, "银行代码", f.get(2), max)?;
    let region_code = text(row, "统筹区代码", f.get(3), max)?;
    let date_text = f.get(4).trim();
    let debit_date = NaiveDate::parse_from_str(date_text, "%Y%m%d")
        .ok()
        .filter(|_| date_text.len() == 8)
        .ok_or_else(|| {
            StatementError::bad_row(
                row,
                "扣款日期",
                format!("应为8位日期，如 20201102，实际为“{}”", shown(date_text)),
            )
        })?;
    let count = parse_count(row, "笔数", f.get(5))?;
    let total = parse_total(row, "总金额", f.get(6))?;
    let header = DebitRequestHeader {
        run_no,
        bank_code,
        region_code,
        debit_date,
    };

    let mut rows = Vec::new();
    let mut seen = HashMap::new();
    let mut sum = Fen::ZERO;
    while let Some((row, f)) = file.next()? {
        // Seven fields, or nine with the member a family agreement's debit is for.
        let width = if f.len() == 9 { 9 } else { 7 };
        expect_record(
            row,
            f,
            "D",
            width,
            "D|序号|明细编号|协议号|持卡人证件号码|持卡人姓名|金额（分）|代扣人员证件号码|代扣人员姓名",
        )?;
        let seq = check_seq(row, f.get(1), rows.len() as u64 + 1, count)?;
        let item_ref = unique(row, f.get(2), max, &mut seen)?;
        let item = DebitRequestItem {
            item_ref,
            agreement_no: text(row, "协议号", f.get(3), max)?,
            id_number: text(row, "证件号码", f.get(4), max)?,
            name: text(row, "姓名", f.get(5), max)?,
            amount: parse_fen(row, "金额", f.get(6).trim())?,
            member: if width == 9 {
                Some(DebitMember {
                    id_number: text(row, "代扣人员证件号码", f.get(7), max)?,
                    name: text(row, "代扣人员姓名", f.get(8), max)?,
                })
            } else {
                None
            },
        };
        add(&mut sum, item.amount, row, "金额")?;
        rows.push(DebitRequestRow { row, seq, item });
    }
    check_count("笔数", count, rows.len() as u64)?;
    if sum != total {
        return Err(StatementError::mismatch("总金额", total, sum));
    }
    Ok(DebitRequest {
        header,
        count,
        total,
        rows,
        encoding: file.lines.encoding(),
    })
}

/// Reads a result file: see the module documentation. Checks, besides every value: sequence
/// numbers 1, 2, 3… in order, no `item_ref` twice, the header's count, success count and success
/// total against the lines, at most [`MAX_DEBIT_BATCH`] lines and the [`Limits`].
pub fn read_debit_result(bytes: &[u8], limits: &Limits) -> Result<DebitResult, StatementError> {
    let mut file = PipeFile::open(bytes, limits)?;
    let Some((row, f)) = file.next()? else {
        return Err(StatementError::Empty);
    };
    let max = limits.max_field_chars;
    expect_record(
        row,
        f,
        "H",
        6,
        "H|批次号|银行代码|笔数|成功笔数|成功金额（分）",
    )?;
    let header = DebitResultHeader {
        run_no: text(row, "批次号", f.get(1), max)?,
        bank_code: text(row, "银行代码", f.get(2), max)?,
        count: parse_count(row, "笔数", f.get(3))?,
        success_count: parse_count(row, "成功笔数", f.get(4))?,
        success_total: parse_total(row, "成功金额", f.get(5))?,
    };

    let mut rows = Vec::new();
    let mut seen = HashMap::new();
    let mut success_count = 0u64;
    let mut success_total = Fen::ZERO;
    while let Some((row, f)) = file.next()? {
        if f.get(0).trim() != "D" || !(6..=10).contains(&f.len()) {
            expect_record(
                row,
                f,
                "D",
                8,
                "D|序号|明细编号|S|银行流水号|金额（分）||[|扣款日期|代扣人员证件号码] 或 D|序号|明细编号|F|||原因代码|原因说明[||代扣人员证件号码]",
            )?;
        }
        let seq = check_seq(row, f.get(1), rows.len() as u64 + 1, header.count)?;
        let item_ref = unique(row, f.get(2), max, &mut seen)?;
        let status = f.get(3).trim();
        let outcome = match status {
            "S" => {
                for (i, column) in [(6, "原因代码"), (7, "原因说明")] {
                    if !f.get(i).trim().is_empty() {
                        return Err(StatementError::bad_row(
                            row,
                            column,
                            "应为空：成功的明细不应有失败原因",
                        ));
                    }
                }
                let amount = parse_fen(row, "金额", f.get(5).trim())?;
                success_count += 1;
                add(&mut success_total, amount, row, "金额")?;
                DebitOutcome::Succeeded {
                    bank_txn_id: text(row, "银行流水号", f.get(4), max)?,
                    amount,
                }
            }
            "F" => {
                for (i, column) in [(4, "银行流水号"), (5, "金额")] {
                    if !f.get(i).trim().is_empty() {
                        return Err(StatementError::bad_row(
                            row,
                            column,
                            "应为空：失败的明细没有扣款",
                        ));
                    }
                }
                let reason_code = text(row, "原因代码", f.get(6), max)?;
                if !is_reason_code(&reason_code) {
                    return Err(StatementError::bad_row(
                        row,
                        "原因代码",
                        format!(
                            "应为1至8位字母或数字，如 E01，实际为“{}”",
                            shown(&reason_code)
                        ),
                    ));
                }
                let reason = f.get(7).trim();
                check_length(row, "原因说明", reason, max)?;
                DebitOutcome::Failed {
                    reason_code,
                    reason: reason.to_owned(),
                }
            }
            other => {
                return Err(StatementError::bad_row(
                    row,
                    "状态",
                    format!("应为S（成功）或F（失败），实际为“{}”", shown(other)),
                ))
            }
        };
        let day_text = f.get(8).trim();
        let debit_day = if day_text.is_empty() {
            None
        } else {
            Some(
                NaiveDate::parse_from_str(day_text, "%Y%m%d")
                    .ok()
                    .filter(|_| day_text.len() == 8)
                    .ok_or_else(|| {
                        StatementError::bad_row(
                            row,
                            "扣款日期",
                            format!("应为8位日期，如 20201102，实际为“{}”", shown(day_text)),
                        )
                    })?,
            )
        };
        let member = f.get(9).trim();
        check_length(row, "代扣人员证件号码", member, max)?;
        rows.push(DebitResultRow {
            row,
            seq,
            item_ref,
            outcome,
            debit_day,
            member_id_number: (!member.is_empty()).then(|| member.to_owned()),
        });
    }
    check_count("笔数", header.count, rows.len() as u64)?;
    check_count("成功笔数", header.success_count, success_count)?;
    if success_total != header.success_total {
        return Err(StatementError::mismatch(
            "成功金额",
            header.success_total,
            success_total,
        ));
    }
    Ok(DebitResult {
        header,
        rows,
        encoding: file.lines.encoding(),
    })
}

/// Lines of a `|` file, blank ones skipped, split into fields.
struct PipeFile<'a> {
    lines: Lines<&'a [u8]>,
    fields: Fields,
    details: u64,
    max_lines: u64,
}

impl<'a> PipeFile<'a> {
    fn open(bytes: &'a [u8], limits: &Limits) -> Result<PipeFile<'a>, StatementError> {
        if bytes.len() as u64 > limits.max_bytes {
            return Err(StatementError::TooLarge {
                limit: limits.max_bytes,
                unpacked: false,
            });
        }
        Ok(PipeFile {
            lines: Lines::new(bytes, limits.max_line_bytes()),
            fields: Fields::default(),
            // The header line is counted too; it is not a detail.
            details: 0,
            max_lines: limits
                .max_lines
                .min(MAX_DEBIT_BATCH as u64)
                .saturating_add(1),
        })
    }

    fn next(&mut self) -> Result<Option<(u64, &Fields)>, StatementError> {
        loop {
            let Some((row, line)) = self.lines.next_line()? else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            self.details += 1;
            if self.details > self.max_lines {
                return Err(StatementError::TooManyLines {
                    limit: self.max_lines - 1,
                });
            }
            self.fields.split_pipes(line);
            return Ok(Some((row, &self.fields)));
        }
    }
}

fn expect_record(
    row: u64,
    f: &Fields,
    kind: &str,
    width: usize,
    layout: &str,
) -> Result<(), StatementError> {
    let first = f.get(0).trim();
    if first != kind {
        let message = format!("应以“{kind}|”开头，格式为 {layout}");
        return Err(if kind == "H" {
            StatementError::BadHeader { row, message }
        } else {
            StatementError::bad_row(row, "记录类型", message)
        });
    }
    if f.len() != width {
        let message = format!("应有{width}个字段，实际有{}个，格式为 {layout}", f.len());
        return Err(if kind == "H" {
            StatementError::BadHeader { row, message }
        } else {
            StatementError::bad_row(row, "", message)
        });
    }
    Ok(())
}

fn text(row: u64, column: &str, value: &str, max: usize) -> Result<String, StatementError> {
    crate::text::required(row, column, value.trim(), max)
}

fn parse_count(row: u64, column: &str, value: &str) -> Result<u64, StatementError> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) && n <= MAX_DEBIT_BATCH as u64 => Ok(n),
        Ok(_) if value.bytes().all(|b| b.is_ascii_digit()) => Err(StatementError::bad_row(
            row,
            column,
            format!(
                "超过一个文件{MAX_DEBIT_BATCH}笔的上限，实际为“{}”",
                shown(value)
            ),
        )),
        _ => Err(StatementError::bad_row(
            row,
            column,
            format!("应为整数，实际为“{}”", shown(value)),
        )),
    }
}

/// A total in fen that may be 0.
fn parse_total(row: u64, column: &str, value: &str) -> Result<Fen, StatementError> {
    let value = value.trim();
    if value == "0" {
        return Ok(Fen::ZERO);
    }
    parse_fen(row, column, value)
}

fn check_seq(row: u64, value: &str, expected: u64, count: u64) -> Result<u64, StatementError> {
    let value = value.trim();
    if expected > count {
        return Err(StatementError::mismatch(
            "笔数",
            format!("{count}笔"),
            format!("至少{expected}笔"),
        ));
    }
    match value.parse::<u64>() {
        Ok(seq) if seq == expected && value.bytes().all(|b| b.is_ascii_digit()) => Ok(seq),
        _ => Err(StatementError::bad_row(
            row,
            "序号",
            format!(
                "应为{expected}（序号从1起连续递增），实际为“{}”",
                shown(value)
            ),
        )),
    }
}

fn unique(
    row: u64,
    value: &str,
    max: usize,
    seen: &mut HashMap<String, u64>,
) -> Result<String, StatementError> {
    let item_ref = text(row, "明细编号", value, max)?;
    if let Some(&first_row) = seen.get(&item_ref) {
        return Err(StatementError::DuplicateItem {
            row,
            item_ref,
            first_row,
        });
    }
    seen.insert(item_ref.clone(), row);
    Ok(item_ref)
}

fn check_count(item: &str, declared: u64, computed: u64) -> Result<(), StatementError> {
    if declared != computed {
        return Err(StatementError::mismatch(
            item,
            format!("{declared}笔"),
            format!("{computed}笔"),
        ));
    }
    Ok(())
}

fn check_batch(len: usize) -> Result<(), StatementError> {
    if len > MAX_DEBIT_BATCH {
        return Err(StatementError::BatchTooLarge {
            count: len as u64,
            limit: MAX_DEBIT_BATCH as u64,
        });
    }
    if len == 0 {
        return Err(invalid(None, "笔数", "为0：扣款文件至少要有一笔明细"));
    }
    Ok(())
}

/// A value for a file we write: not empty, not padded, at most the default character limit, no
/// `|` and no control characters.
fn check_value(item: Option<u64>, field: &str, value: &str) -> Result<(), StatementError> {
    let max = Limits::default().max_field_chars;
    if value.trim().is_empty() {
        return Err(invalid(item, field, "不能为空"));
    }
    if value.trim() != value {
        return Err(invalid(item, field, "首尾不能有空格"));
    }
    if value.chars().count() > max {
        return Err(invalid(item, field, format!("超过{max}个字符")));
    }
    if value.chars().any(|c| c == '|' || c.is_control()) {
        return Err(invalid(
            item,
            field,
            format!(
                "含有竖线“|”、换行或其他控制字符，不能写入扣款文件：“{}”",
                shown(&value.replace(|c: char| c.is_control(), "�"))
            ),
        ));
    }
    Ok(())
}

fn invalid(item: Option<u64>, field: &str, message: impl Into<String>) -> StatementError {
    StatementError::InvalidField {
        item,
        field: field.to_owned(),
        message: message.into(),
    }
}

fn is_reason_code(code: &str) -> bool {
    (1..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}
