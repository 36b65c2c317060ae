//! The cover history file (参保历史): an agency's record of a person's cover by benefit year from
//! outside yibao (resident insurance before yibao, employee insurance, years not insured, years
//! bought back), one row per person and year, read row by row with row-level rejections like the
//! roster. Columns are found by their Chinese header (`docs/rules-2025.md`).

use chrono::{Datelike, NaiveDate};

use crate::cover::{ClaimYear, YearCover};
use crate::cover_rules::ExemptGroup;
use crate::id_number::{IdNumber, IdNumberError};

/// The columns, each with the names accepted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryColumn {
    IdNumber,
    Year,
    Cover,
    BoughtBack,
}

impl HistoryColumn {
    /// The name the documentation and the rejection file use.
    pub fn name_zh(self) -> &'static str {
        self.names()[0]
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            HistoryColumn::IdNumber => &["公民身份号码", "身份证号码", "证件号码"],
            HistoryColumn::Year => &["待遇年度", "参保年度", "年度"],
            HistoryColumn::Cover => &["参保情况", "参保类型", "险种"],
            HistoryColumn::BoughtBack => &["补缴修复", "已补缴"],
        }
    }
}

/// Where a column is in a file's header: the first cell that is one of its accepted names.
pub(crate) fn column_of(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.contains(&h.trim()))
}

/// Where each column is in a file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryHeader {
    id_number: usize,
    year: usize,
    cover: usize,
    bought_back: Option<usize>,
}

/// A header without a required column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("参保历史文件缺少“{0}”列（可用列名：{1}）")]
pub struct MissingHistoryColumn(pub &'static str, pub String);

impl MissingHistoryColumn {
    pub const CODE: &'static str = "INVALID_FILE";
}

impl HistoryHeader {
    pub fn find(header: &[String]) -> Result<HistoryHeader, MissingHistoryColumn> {
        let position = |column: HistoryColumn| column_of(header, column.names());
        let required = |column: HistoryColumn| {
            position(column)
                .ok_or_else(|| MissingHistoryColumn(column.name_zh(), column.names().join("、")))
        };
        Ok(HistoryHeader {
            id_number: required(HistoryColumn::IdNumber)?,
            year: required(HistoryColumn::Year)?,
            cover: required(HistoryColumn::Cover)?,
            bought_back: position(HistoryColumn::BoughtBack),
        })
    }
}

/// One accepted row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRow {
    pub id_number: IdNumber,
    pub year: u16,
    pub cover: YearCover,
    pub bought_back: bool,
}

/// Why a row is refused: the column, a stable code and a Chinese reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRowError {
    pub column: HistoryColumn,
    pub code: &'static str,
    pub reason: String,
}

/// The earliest benefit year a history file may name.
pub const MIN_HISTORY_YEAR: u16 = 2000;

/// Reads one row. Years run from 2000 to the year after `today`'s; `补缴修复` is `是` or `否` (empty:
/// `否`) and only for a year not insured.
pub fn parse_history_row(
    header: &HistoryHeader,
    cells: &[String],
    today: NaiveDate,
) -> Result<HistoryRow, HistoryRowError> {
    let cell = |i: usize| cells.get(i).map_or("", |c| c.trim());
    let id_number = IdNumber::parse(cell(header.id_number), today)
        .map_err(|e: IdNumberError| HistoryRowError {
            column: HistoryColumn::IdNumber,
            code: IdNumberError::CODE,
            reason: e.to_string(),
        })?
        .id_number;
    let last_year = u16::try_from(today.year() + 1).unwrap_or(u16::MAX);
    let year_text = cell(header.year).trim_end_matches('年');
    let year = year_text
        .parse::<u16>()
        .ok()
        .filter(|y| (MIN_HISTORY_YEAR..=last_year).contains(y))
        .ok_or_else(|| HistoryRowError {
            column: HistoryColumn::Year,
            code: "INVALID_YEAR",
            reason: format!("待遇年度应为{MIN_HISTORY_YEAR}至{last_year}之间的四位年份"),
        })?;
    let cover = match cell(header.cover) {
        "居民医保"
        | "城乡居民医保"
        | "城乡居民基本医疗保险"
        | "居民"
        | "新农合"
        | "城镇居民医保" => YearCover::Resident,
        "职工医保" | "职工基本医疗保险" | "职工" => YearCover::Employee,
        "未参保" | "断保" | "无" => YearCover::None,
        _ => {
            return Err(HistoryRowError {
                column: HistoryColumn::Cover,
                code: "INVALID_COVER",
                reason: "参保情况应为“居民医保”“职工医保”或“未参保”".to_owned(),
            })
        }
    };
    let bought_back = match header.bought_back.map_or("", cell) {
        "" | "否" => false,
        "是" => true,
        _ => {
            return Err(HistoryRowError {
                column: HistoryColumn::BoughtBack,
                code: "INVALID_BOUGHT_BACK",
                reason: "补缴修复应为“是”或“否”".to_owned(),
            })
        }
    };
    if bought_back && cover != YearCover::None {
        return Err(HistoryRowError {
            column: HistoryColumn::BoughtBack,
            code: "INVALID_BOUGHT_BACK",
            reason: "只有未参保的年度才能补缴修复".to_owned(),
        });
    }
    Ok(HistoryRow {
        id_number,
        year,
        cover,
        bought_back,
    })
}

/// What a person's special situation file (参保特殊情形) says of them: a membership of an exempt
/// group with the date of its event, or a move from employee insurance with the day it ended and
/// the months continuously insured before. One row per person and situation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Situation {
    Group(ExemptGroup),
    LeftEmployee,
}

impl Situation {
    /// The stored code: the group's, or `left_employee`.
    pub fn code(self) -> &'static str {
        match self {
            Situation::Group(g) => g.code(),
            Situation::LeftEmployee => "left_employee",
        }
    }

    pub fn from_code(code: &str) -> Option<Situation> {
        if code == "left_employee" {
            return Some(Situation::LeftEmployee);
        }
        ExemptGroup::from_code(code).map(Situation::Group)
    }

    /// The names a file may use.
    fn from_text(text: &str) -> Option<Situation> {
        Some(match text {
            "医疗救助对象" => Situation::Group(ExemptGroup::MedicalAssistance),
            "退役军人" | "退役军人随迁家属" => Situation::Group(ExemptGroup::Veteran),
            "户籍迁入" | "户籍迁入本省" => {
                Situation::Group(ExemptGroup::MovedIntoProvince)
            }
            "出国返回" | "出国（境）返回" | "回国" => {
                Situation::Group(ExemptGroup::ReturnedFromAbroad)
            }
            "刑满释放" => Situation::Group(ExemptGroup::ReleasedFromPrison),
            "毕业返乡" => Situation::Group(ExemptGroup::GraduateReturned),
            "高校新生" | "省内高校新生" => Situation::Group(ExemptGroup::Freshman),
            "职工医保转入" => Situation::LeftEmployee,
            _ => return None,
        })
    }
}

/// Where each column of a situation file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SituationHeader {
    id_number: usize,
    situation: usize,
    date: usize,
    months: Option<usize>,
    evidence: Option<usize>,
}

const SITUATION_COLUMNS: [(&str, &[&str]); 5] = [
    ("公民身份号码", &["公民身份号码", "身份证号码", "证件号码"]),
    ("情形", &["情形", "参保情形"]),
    ("日期", &["日期", "事件日期", "终止日期"]),
    ("职工医保连续月数", &["职工医保连续月数", "连续缴费月数"]),
    ("证明材料", &["证明材料", "证明"]),
];

impl SituationHeader {
    /// The header of a situation file, or `None` when it is not one (a history file, say).
    pub fn find(header: &[String]) -> Option<SituationHeader> {
        let position = |i: usize| column_of(header, SITUATION_COLUMNS[i].1);
        Some(SituationHeader {
            id_number: position(0)?,
            situation: position(1)?,
            date: position(2)?,
            months: position(3),
            evidence: position(4),
        })
    }
}

/// One accepted row of a situation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SituationRow {
    pub id_number: IdNumber,
    pub situation: Situation,
    /// The event's date; for a move from employee insurance, the last day it covered.
    pub date: NaiveDate,
    /// Months continuously in employee insurance (a move from it only).
    pub months: Option<u16>,
    /// The evidence seen (证明材料), at most [`MAX_EVIDENCE_CHARS`] characters.
    pub evidence: Option<String>,
}

/// Longest evidence text kept.
pub const MAX_EVIDENCE_CHARS: usize = 64;

/// A refused situation row: the column's name, a stable code and a Chinese reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SituationRowError {
    pub column: &'static str,
    pub code: &'static str,
    pub reason: String,
}

/// Reads one row of a situation file: dates `YYYY-MM-DD` from 2000 to `today`; the months, 0 to
/// 600, required for `职工医保转入` only.
pub fn parse_situation_row(
    header: &SituationHeader,
    cells: &[String],
    today: NaiveDate,
) -> Result<SituationRow, SituationRowError> {
    let cell = |i: usize| cells.get(i).map_or("", |c| c.trim());
    let refuse = |column: usize, code: &'static str, reason: String| SituationRowError {
        column: SITUATION_COLUMNS[column].0,
        code,
        reason,
    };
    let id_number = IdNumber::parse(cell(header.id_number), today)
        .map_err(|e| refuse(0, IdNumberError::CODE, e.to_string()))?
        .id_number;
    let situation = Situation::from_text(cell(header.situation)).ok_or_else(|| {
        refuse(
            1,
            "INVALID_SITUATION",
            "情形应为：医疗救助对象、退役军人、户籍迁入、出国（境）返回、刑满释放、毕业返乡、高校新生、职工医保转入"
                .to_owned(),
        )
    })?;
    let earliest = NaiveDate::from_ymd_opt(i32::from(MIN_HISTORY_YEAR), 1, 1).unwrap_or(today);
    let date = NaiveDate::parse_from_str(cell(header.date), "%Y-%m-%d")
        .ok()
        .filter(|d| (earliest..=today).contains(d))
        .ok_or_else(|| {
            refuse(
                2,
                "INVALID_DATE",
                format!("日期应为{earliest}至{today}之间的真实日期，格式 YYYY-MM-DD"),
            )
        })?;
    let months_text = header.months.map_or("", cell);
    let months = match (situation, months_text) {
        (Situation::LeftEmployee, "") => {
            return Err(refuse(
                3,
                "INVALID_MONTHS",
                "职工医保转入须填写职工医保连续月数".to_owned(),
            ))
        }
        (_, "") => None,
        (_, text) => Some(
            text.parse::<u16>()
                .ok()
                .filter(|m| *m <= 600)
                .ok_or_else(|| {
                    refuse(
                        3,
                        "INVALID_MONTHS",
                        "职工医保连续月数应为0至600的整数".to_owned(),
                    )
                })?,
        ),
    };
    let evidence = Some(header.evidence.map_or("", cell))
        .filter(|e| !e.is_empty())
        .map(|e| e.chars().take(MAX_EVIDENCE_CHARS).collect());
    Ok(SituationRow {
        id_number,
        situation,
        date,
        months: if situation == Situation::LeftEmployee {
            months
        } else {
            None
        },
        evidence,
    })
}

/// Where each column of a claims file (报销情况) is: the agency's record, per person and benefit
/// year, of whether the fund reimbursed anything and whether a critical-illness claim used the
/// raise. yibao holds no claims; the zero-claim raise (零报销激励) counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimHeader {
    id_number: usize,
    year: usize,
    reimbursed: usize,
    reward_used: Option<usize>,
}

const CLAIM_COLUMNS: [(&str, &[&str]); 4] = [
    ("公民身份号码", &["公民身份号码", "身份证号码", "证件号码"]),
    ("待遇年度", &["待遇年度", "年度"]),
    ("基金报销", &["基金报销", "是否报销", "有无报销"]),
    (
        "使用大病激励",
        &["使用大病激励", "激励已使用", "是否使用激励"],
    ),
];

impl ClaimHeader {
    /// The header of a claims file, or `None` when it is not one.
    pub fn find(header: &[String]) -> Option<ClaimHeader> {
        let position = |i: usize| column_of(header, CLAIM_COLUMNS[i].1);
        Some(ClaimHeader {
            id_number: position(0)?,
            year: position(1)?,
            reimbursed: position(2)?,
            reward_used: position(3),
        })
    }
}

/// One accepted row of a claims file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRow {
    pub id_number: IdNumber,
    pub year: u16,
    pub claim: ClaimYear,
}

/// A refused claims row: the column's name, a stable code and a Chinese reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRowError {
    pub column: &'static str,
    pub code: &'static str,
    pub reason: String,
}

/// Reads one row of a claims file: a benefit year from 2000 to this year (claims of a year not
/// yet begun cannot be known), `是`/`否` for each flag (the reward's empty: `否`).
pub fn parse_claim_row(
    header: &ClaimHeader,
    cells: &[String],
    today: NaiveDate,
) -> Result<ClaimRow, ClaimRowError> {
    let cell = |i: usize| cells.get(i).map_or("", |c| c.trim());
    let refuse = |column: usize, code: &'static str, reason: String| ClaimRowError {
        column: CLAIM_COLUMNS[column].0,
        code,
        reason,
    };
    let id_number = IdNumber::parse(cell(header.id_number), today)
        .map_err(|e| refuse(0, IdNumberError::CODE, e.to_string()))?
        .id_number;
    let this_year = u16::try_from(today.year()).unwrap_or(u16::MAX);
    let year = cell(header.year)
        .trim_end_matches('年')
        .parse::<u16>()
        .ok()
        .filter(|y| (MIN_HISTORY_YEAR..=this_year).contains(y))
        .ok_or_else(|| {
            refuse(
                1,
                "INVALID_YEAR",
                format!("待遇年度应为{MIN_HISTORY_YEAR}至{this_year}之间的四位年份"),
            )
        })?;
    let yes_no = |column: usize, text: &str, empty: Option<bool>| match (text, empty) {
        ("是" | "有", _) => Ok(true),
        ("否" | "无", _) => Ok(false),
        ("", Some(value)) => Ok(value),
        _ => Err(refuse(
            column,
            "INVALID_FLAG",
            format!("{}应为“是”或“否”", CLAIM_COLUMNS[column].0),
        )),
    };
    let reimbursed = yes_no(2, cell(header.reimbursed), None)?;
    let reward_used = yes_no(3, header.reward_used.map_or("", cell), Some(false))?;
    if reward_used && !reimbursed {
        return Err(refuse(
            3,
            "INVALID_FLAG",
            "使用大病激励的年度必然有基金报销，请核对“基金报销”".to_owned(),
        ));
    }
    Ok(ClaimRow {
        id_number,
        year,
        claim: ClaimYear {
            reimbursed,
            reward_used,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
    }

    #[test]
    fn rows_are_read_by_header_name() {
        let h = HistoryHeader::find(&header(&[
            "姓名",
            "身份证号码",
            "年度",
            "参保情况",
            "补缴修复",
        ]))
        .unwrap();
        let r = parse_history_row(
            &h,
            &row(&["张三", "32060219900101123X", "2025年", "未参保", "是"]),
            today(),
        )
        .unwrap();
        assert_eq!(
            (r.year, r.cover, r.bought_back),
            (2025, YearCover::None, true)
        );
        let r = parse_history_row(
            &h,
            &row(&["", "32060219900101123X", "2024", "职工医保"]),
            today(),
        )
        .unwrap();
        assert_eq!((r.cover, r.bought_back), (YearCover::Employee, false));
    }

    #[test]
    fn bad_rows_are_refused_with_the_column_named() {
        assert_eq!(
            HistoryHeader::find(&header(&["身份证号码", "参保情况"]))
                .unwrap_err()
                .0,
            "待遇年度"
        );
        let h =
            HistoryHeader::find(&header(&["身份证号码", "年度", "参保情况", "补缴修复"])).unwrap();
        let refused = |cells: &[&str]| parse_history_row(&h, &row(cells), today()).unwrap_err();
        assert_eq!(
            refused(&["320602199001011230", "2025", "居民医保"]).column,
            HistoryColumn::IdNumber
        );
        assert_eq!(
            refused(&["32060219900101123X", "2029", "居民医保"]).code,
            "INVALID_YEAR"
        );
        assert_eq!(
            refused(&["32060219900101123X", "2025", "新农合?"]).code,
            "INVALID_COVER"
        );
        let e = refused(&["32060219900101123X", "2025", "居民医保", "是"]);
        assert_eq!(
            (e.column, e.code),
            (HistoryColumn::BoughtBack, "INVALID_BOUGHT_BACK")
        );
    }

    #[test]
    fn situation_rows_name_the_group_the_date_and_for_a_move_the_months() {
        let h = SituationHeader::find(&header(&[
            "身份证号码",
            "情形",
            "日期",
            "职工医保连续月数",
            "证明材料",
        ]))
        .unwrap();
        let r = parse_situation_row(
            &h,
            &row(&[
                "32060219900101123X",
                "退役军人",
                "2026-10-01",
                "",
                "退役证 T-1",
            ]),
            today(),
        )
        .unwrap();
        assert_eq!(r.situation, Situation::Group(ExemptGroup::Veteran));
        assert_eq!(
            (r.months, r.evidence.as_deref()),
            (None, Some("退役证 T-1"))
        );
        let r = parse_situation_row(
            &h,
            &row(&["32060219900101123X", "职工医保转入", "2026-09-30", "36"]),
            today(),
        )
        .unwrap();
        assert_eq!((r.situation, r.months), (Situation::LeftEmployee, Some(36)));
        let refused = |cells: &[&str]| parse_situation_row(&h, &row(cells), today()).unwrap_err();
        assert_eq!(
            refused(&["32060219900101123X", "职工医保转入", "2026-09-30"]).code,
            "INVALID_MONTHS"
        );
        assert_eq!(
            refused(&["32060219900101123X", "下岗", "2026-09-30"]).code,
            "INVALID_SITUATION"
        );
        assert_eq!(
            refused(&["32060219900101123X", "刑满释放", "2027-01-01"]).code,
            "INVALID_DATE"
        );
        assert!(SituationHeader::find(&header(&["身份证号码", "年度", "参保情况"])).is_none());
        assert_eq!(
            Situation::from_code("left_employee"),
            Some(Situation::LeftEmployee)
        );
        assert_eq!(
            Situation::from_code("veteran"),
            Some(Situation::Group(ExemptGroup::Veteran))
        );
    }

    #[test]
    fn a_claims_row_is_read_or_refused_naming_its_column() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let header: Vec<String> = ["身份证号码", "待遇年度", "基金报销", "使用大病激励"]
            .map(str::to_owned)
            .to_vec();
        let header = ClaimHeader::find(&header).unwrap();
        let first17 = "32060219800101123";
        let id = format!(
            "{first17}{}",
            crate::id_number::check_character(first17).unwrap()
        );
        let row = |year: &str, reimbursed: &str, used: &str| {
            vec![
                id.clone(),
                year.to_owned(),
                reimbursed.to_owned(),
                used.to_owned(),
            ]
        };
        let read = parse_claim_row(&header, &row("2025", "否", ""), today).unwrap();
        assert_eq!(
            (read.year, read.claim.reimbursed, read.claim.reward_used),
            (2025, false, false)
        );
        let used = parse_claim_row(&header, &row("2026年", "是", "是"), today).unwrap();
        assert!(used.claim.reward_used);
        let next_year = parse_claim_row(&header, &row("2027", "否", ""), today);
        assert_eq!(next_year.unwrap_err().code, "INVALID_YEAR");
        let unread = parse_claim_row(&header, &row("2025", "", ""), today);
        assert_eq!(unread.unwrap_err().column, "基金报销");
        let impossible = parse_claim_row(&header, &row("2025", "否", "是"), today);
        assert_eq!(impossible.unwrap_err().column, "使用大病激励");
    }
}
