//! The cover history file (参保历史): an agency's record of a person's cover by benefit year from
//! outside yibao (resident insurance before yibao, employee insurance, years not insured, years
//! bought back), one row per person and year, read row by row with row-level rejections like the
//! roster. Columns are found by their Chinese header (`docs/rules-2025.md`).

use chrono::{Datelike, NaiveDate};

use crate::cover::YearCover;
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
    pub const ALL: [HistoryColumn; 4] = [
        HistoryColumn::IdNumber,
        HistoryColumn::Year,
        HistoryColumn::Cover,
        HistoryColumn::BoughtBack,
    ];

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

    pub fn required(self) -> bool {
        self != HistoryColumn::BoughtBack
    }
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
        let position = |column: HistoryColumn| {
            header
                .iter()
                .position(|h| column.names().contains(&h.trim()))
        };
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
}
