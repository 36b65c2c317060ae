//! The roster (花名册) layout of the operator interface: column names, which are required, and how
//! one row's text becomes a [`Person`]. Reading files (CSV, XLSX, encodings) is not done here.

use chrono::{Duration, NaiveDate};

use crate::enrolment::{
    parse_school, EnrolmentFieldError, Household, Person, Phone, Relief, ReliefKind, StationCode,
};
use crate::id_number::IdNumber;
use crate::money::Fen;
use crate::person_name::{PersonName, PersonNameError};
use crate::region::{RegionCode, RegionCodeError};

/// The roster's columns, by their fixed Chinese names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RosterColumn {
    Name,
    IdNumber,
    Region,
    PersonKind,
    Household,
    PermitSince,
    School,
    Phone,
    Station,
    EmployeeInsured,
    ReliefKind,
    CertificateName,
    CertificateNumber,
    CertificateValidUntil,
    Subsidy,
    /// 户号 (issue 17): the household of the household register.
    HouseholdNumber,
    /// 与户主关系: `户主` makes the person the head of the household.
    Relation,
}

impl RosterColumn {
    pub const ALL: [RosterColumn; 17] = [
        RosterColumn::Name,
        RosterColumn::IdNumber,
        RosterColumn::Region,
        RosterColumn::PersonKind,
        RosterColumn::Household,
        RosterColumn::PermitSince,
        RosterColumn::School,
        RosterColumn::Phone,
        RosterColumn::Station,
        RosterColumn::EmployeeInsured,
        RosterColumn::ReliefKind,
        RosterColumn::CertificateName,
        RosterColumn::CertificateNumber,
        RosterColumn::CertificateValidUntil,
        RosterColumn::Subsidy,
        RosterColumn::HouseholdNumber,
        RosterColumn::Relation,
    ];

    pub fn header(self) -> &'static str {
        match self {
            RosterColumn::Name => "姓名",
            RosterColumn::IdNumber => "身份证号码",
            RosterColumn::Region => "参保地区",
            RosterColumn::PersonKind => "人员类别",
            RosterColumn::Household => "户籍类型",
            RosterColumn::PermitSince => "居住证起始日期",
            RosterColumn::School => "学校名称",
            RosterColumn::Phone => "联系电话",
            RosterColumn::Station => "服务站",
            RosterColumn::EmployeeInsured => "职工医保",
            RosterColumn::ReliefKind => "减免类型",
            RosterColumn::CertificateName => "减免证件名称",
            RosterColumn::CertificateNumber => "减免证件号码",
            RosterColumn::CertificateValidUntil => "减免证件有效期至",
            RosterColumn::Subsidy => "资助金额",
            RosterColumn::HouseholdNumber => "户号",
            RosterColumn::Relation => "与户主关系",
        }
    }

    pub fn is_required(self) -> bool {
        matches!(
            self,
            RosterColumn::Name | RosterColumn::IdNumber | RosterColumn::Region
        )
    }

    /// A sample value for the downloadable template.
    pub fn example(self) -> &'static str {
        match self {
            RosterColumn::Name => "张三",
            RosterColumn::IdNumber => "320602198001011235",
            RosterColumn::Region => "320600",
            RosterColumn::PersonKind => "居民",
            RosterColumn::Household => "本地户籍",
            RosterColumn::PermitSince => "",
            RosterColumn::School => "",
            RosterColumn::Phone => "13812345678",
            RosterColumn::Station => "CZ-01",
            RosterColumn::EmployeeInsured => "否",
            RosterColumn::ReliefKind => "",
            RosterColumn::CertificateName => "",
            RosterColumn::CertificateNumber => "",
            RosterColumn::CertificateValidUntil => "",
            RosterColumn::Subsidy => "",
            RosterColumn::HouseholdNumber => "320602000123",
            RosterColumn::Relation => "户主",
        }
    }
}

/// The columns a rejection file (未通过明细) adds in front of each rejected row's own cells. A
/// corrected rejection file is imported again as a roster: these are recognised and ignored
/// without a warning.
pub const REJECTION_COLUMNS: [&str; 4] = ["行号", "错误列", "错误代码", "错误原因"];

/// Names clerks give our columns, each with the column meant. Checked before edit distance.
const ALIASES: &[(&str, RosterColumn)] = &[
    ("名字", RosterColumn::Name),
    ("人员姓名", RosterColumn::Name),
    ("参保人姓名", RosterColumn::Name),
    ("参保人", RosterColumn::Name),
    ("身份证号", RosterColumn::IdNumber),
    ("身份证", RosterColumn::IdNumber),
    ("证件号码", RosterColumn::IdNumber),
    ("证件号", RosterColumn::IdNumber),
    ("公民身份号码", RosterColumn::IdNumber),
    ("公民身份证号码", RosterColumn::IdNumber),
    ("身份证件号码", RosterColumn::IdNumber),
    ("身份号码", RosterColumn::IdNumber),
    ("社会保障号码", RosterColumn::IdNumber),
    ("社保号", RosterColumn::IdNumber),
    ("地区", RosterColumn::Region),
    ("统筹区", RosterColumn::Region),
    ("统筹地区", RosterColumn::Region),
    ("统筹区代码", RosterColumn::Region),
    ("参保地", RosterColumn::Region),
    ("参保地区代码", RosterColumn::Region),
    ("行政区划", RosterColumn::Region),
    ("行政区划代码", RosterColumn::Region),
    ("区划代码", RosterColumn::Region),
    ("地区代码", RosterColumn::Region),
    ("人员类型", RosterColumn::PersonKind),
    ("参保人员类别", RosterColumn::PersonKind),
    ("户籍", RosterColumn::Household),
    ("户口类型", RosterColumn::Household),
    ("户籍性质", RosterColumn::Household),
    ("户口性质", RosterColumn::Household),
    ("居住证日期", RosterColumn::PermitSince),
    ("居住证办理日期", RosterColumn::PermitSince),
    ("居住证发证日期", RosterColumn::PermitSince),
    ("学校", RosterColumn::School),
    ("就读学校", RosterColumn::School),
    ("电话", RosterColumn::Phone),
    ("电话号码", RosterColumn::Phone),
    ("手机", RosterColumn::Phone),
    ("手机号", RosterColumn::Phone),
    ("手机号码", RosterColumn::Phone),
    ("联系方式", RosterColumn::Phone),
    ("服务站代码", RosterColumn::Station),
    ("服务所", RosterColumn::Station),
    ("社区服务站", RosterColumn::Station),
    ("是否职工医保", RosterColumn::EmployeeInsured),
    ("是否参加职工医保", RosterColumn::EmployeeInsured),
    ("减免", RosterColumn::ReliefKind),
    ("减免人员类别", RosterColumn::ReliefKind),
    ("困难类型", RosterColumn::ReliefKind),
    ("证件有效期", RosterColumn::CertificateValidUntil),
    ("有效期至", RosterColumn::CertificateValidUntil),
    ("资助", RosterColumn::Subsidy),
    ("资助标准", RosterColumn::Subsidy),
    ("资助金额（元）", RosterColumn::Subsidy),
    ("户编号", RosterColumn::HouseholdNumber),
    ("户口号", RosterColumn::HouseholdNumber),
    ("家庭户号", RosterColumn::HouseholdNumber),
    ("户口簿编号", RosterColumn::HouseholdNumber),
    ("与户主的关系", RosterColumn::Relation),
    ("户主关系", RosterColumn::Relation),
    ("家庭关系", RosterColumn::Relation),
];

/// Levenshtein distance in characters (not bytes).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The header as compared with ours: spaces, `*` marks and a parenthesised note (`（必填）`)
/// left out.
fn normalised(name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '(' | '（' => depth += 1,
            ')' | '）' => depth = depth.saturating_sub(1),
            '*' | '＊' => {}
            c if c.is_whitespace() => {}
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The column a header that is not exactly one of ours probably means: ours with marks or a note
/// around it (`*姓名`, `身份证号码（必填）`), a known alias (`身份证号`, `统筹区`, `手机号`), or a
/// name one edit away (two for names of five characters or more: `联系电活`, `减免证件有效期`).
/// `None` when nothing is close. Ties go to the column listed first.
pub fn suggest_column(name: &str) -> Option<RosterColumn> {
    let name = name.trim();
    if name.chars().count() > 40 || RosterColumn::ALL.iter().any(|c| c.header() == name) {
        return None;
    }
    let plain = normalised(name);
    if plain.is_empty() {
        return None;
    }
    if let Some(column) = RosterColumn::ALL.into_iter().find(|c| c.header() == plain) {
        return Some(column);
    }
    if let Some((_, column)) = ALIASES.iter().find(|(alias, _)| *alias == plain) {
        return Some(*column);
    }
    let length = plain.chars().count();
    RosterColumn::ALL
        .into_iter()
        // 户号 is one edit from the columns rosters number their rows with (序号, 编号) and from
        // 户主 (the head's name): matched exactly or by alias only.
        .filter(|c| *c != RosterColumn::HouseholdNumber)
        .map(|c| (edit_distance(&plain, c.header()), c))
        .filter(|(distance, c)| {
            let longest = length.max(c.header().chars().count());
            let allowed = if longest >= 5 { 2 } else { 1 };
            *distance <= allowed && *distance < longest.min(length).max(2)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A header cell that is not one of ours but close to one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnSuggestion {
    /// The header as found.
    pub found: String,
    /// Our column name it probably means.
    pub expected: &'static str,
}

/// A required column not found, with the header that probably meant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingColumn {
    pub column: &'static str,
    pub found: Option<String>,
}

impl std::fmt::Display for MissingColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.found {
            Some(found) => write!(
                f,
                "{}（找到列“{found}”，应为“{}”）",
                self.column, self.column
            ),
            None => f.write_str(self.column),
        }
    }
}

fn joined(missing: &[MissingColumn]) -> String {
    missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("、")
}

/// Where each known column sits in the file, and the names of columns yibao ignores.
#[derive(Debug, Clone)]
pub struct RosterHeader {
    positions: Vec<(RosterColumn, usize)>,
    /// Columns ignored, with a warning (the rejection file's own columns are ignored silently).
    pub unknown_columns: Vec<String>,
    /// Unknown columns that are close to one of ours, with the name they probably mean.
    pub suggestions: Vec<ColumnSuggestion>,
}

/// How much of the roster layout a sheet's header row holds, to find the roster sheet of a
/// workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMatch {
    /// Every required column, by its exact name.
    Complete,
    /// Some required column, exactly or by a close name.
    Partial,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterHeaderError {
    #[error("花名册缺少必填列：{}。第一行应为列名，必填列为 姓名、身份证号码、参保地区", joined(.0))]
    MissingColumns(Vec<MissingColumn>),
    #[error("花名册第一行中列名“{0}”出现了不止一次")]
    DuplicateColumn(String),
}

impl RosterHeaderError {
    pub const CODE: &'static str = "BAD_ROSTER_HEADER";
}

impl RosterHeader {
    pub fn parse(cells: &[String]) -> Result<RosterHeader, RosterHeaderError> {
        let mut positions = Vec::new();
        let mut unknown_columns = Vec::new();
        for (index, raw) in cells.iter().enumerate() {
            let name = raw.trim().trim_start_matches('\u{feff}').trim();
            if name.is_empty() || REJECTION_COLUMNS.contains(&name) {
                continue;
            }
            match RosterColumn::ALL.into_iter().find(|c| c.header() == name) {
                Some(column) => {
                    if positions.iter().any(|(c, _)| *c == column) {
                        return Err(RosterHeaderError::DuplicateColumn(name.to_owned()));
                    }
                    positions.push((column, index));
                }
                None => unknown_columns.push(name.chars().take(40).collect::<String>()),
            }
        }
        // A close name is suggested only for a column the header does not have already.
        let mut suggestions: Vec<ColumnSuggestion> = Vec::new();
        for found in &unknown_columns {
            if let Some(column) = suggest_column(found) {
                let taken = positions.iter().any(|(c, _)| *c == column)
                    || suggestions.iter().any(|s| s.expected == column.header());
                if !taken {
                    suggestions.push(ColumnSuggestion {
                        found: found.clone(),
                        expected: column.header(),
                    });
                }
            }
        }
        let missing: Vec<_> = RosterColumn::ALL
            .into_iter()
            .filter(|c| c.is_required() && !positions.iter().any(|(p, _)| p == c))
            .map(|c| MissingColumn {
                column: c.header(),
                found: suggestions
                    .iter()
                    .find(|s| s.expected == c.header())
                    .map(|s| s.found.clone()),
            })
            .collect();
        if !missing.is_empty() {
            return Err(RosterHeaderError::MissingColumns(missing));
        }
        Ok(RosterHeader {
            positions,
            unknown_columns,
            suggestions,
        })
    }

    /// How much of the roster layout `cells` (a sheet's header row) holds.
    pub fn match_of(cells: &[String]) -> HeaderMatch {
        match RosterHeader::parse(cells) {
            Ok(_) => HeaderMatch::Complete,
            Err(RosterHeaderError::DuplicateColumn(_)) => HeaderMatch::Partial,
            Err(RosterHeaderError::MissingColumns(missing)) => {
                let required = RosterColumn::ALL.iter().filter(|c| c.is_required()).count();
                if missing.len() < required || missing.iter().any(|m| m.found.is_some()) {
                    HeaderMatch::Partial
                } else {
                    HeaderMatch::None
                }
            }
        }
    }

    fn cell<'a>(&self, cells: &'a [String], column: RosterColumn) -> &'a str {
        self.positions
            .iter()
            .find(|(c, _)| *c == column)
            .and_then(|(_, i)| cells.get(*i))
            .map_or("", |s| s.trim())
    }
}

/// One problem in one cell of a row, for the rejection report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub column: &'static str,
    /// Stable: the field's error code (see [`RosterColumn::error_code`]), or a finer one
    /// (`NAME_CHARACTER_LOST`).
    pub code: &'static str,
    pub reason: String,
}

impl RowProblem {
    fn new(column: RosterColumn, reason: impl ToString) -> Self {
        RowProblem {
            column: column.header(),
            code: column.error_code(),
            reason: reason.to_string(),
        }
    }

    /// A problem with the name: a character lost to an encoding gets its own code
    /// ([`PersonNameError::LOST_CHARACTER_CODE`]).
    fn of_name(error: PersonNameError) -> Self {
        RowProblem {
            column: RosterColumn::Name.header(),
            code: error.code(),
            reason: error.to_string(),
        }
    }
}

impl RosterColumn {
    /// The stable code of a problem in this column: the code of the field's own error type where
    /// it has one (`INVALID_NAME`, `INVALID_ID_NUMBER`, `INVALID_REGION`), else `INVALID_PERSON`.
    pub fn error_code(self) -> &'static str {
        match self {
            RosterColumn::Name => PersonNameError::CODE,
            RosterColumn::IdNumber => crate::id_number::IdNumberError::CODE,
            RosterColumn::Region => RegionCodeError::CODE,
            RosterColumn::HouseholdNumber | RosterColumn::Relation => {
                crate::household::INVALID_HOUSEHOLD
            }
            _ => EnrolmentFieldError::CODE,
        }
    }
}

/// Parses a date as rosters carry it: `YYYY-MM-DD`, `YYYY/MM/DD`, or an Excel date serial number
/// (days since 1899-12-30, as a date-formatted cell is stored).
pub fn parse_roster_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    for format in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(date) = NaiveDate::parse_from_str(t, format) {
            return Some(date);
        }
    }
    let whole = t.strip_suffix(".0").unwrap_or(t);
    if !whole.is_empty() && whole.len() <= 7 && whole.bytes().all(|b| b.is_ascii_digit()) {
        let serial: i64 = whole.parse().ok()?;
        // Serial 60 is Excel's non-existent 1900-02-29; real roster dates are far later.
        if (61..=2_958_465).contains(&serial) {
            return NaiveDate::from_ymd_opt(1899, 12, 30)?
                .checked_add_signed(Duration::days(serial));
        }
    }
    None
}

const DATE_HINT: &str = "日期格式应为 YYYY-MM-DD，如 2020-11-01";

/// The row's household (户号 and 与户主关系, issue 17): `None` when both are empty (the person's
/// household, if any, stays as it is); a relation without a number, a malformed number or
/// relation is a problem of its column.
pub fn parse_household(
    header: &RosterHeader,
    cells: &[String],
) -> Result<Option<crate::household::Placement>, Vec<RowProblem>> {
    use crate::household::{HouseholdField, Placement};
    Placement::parse(
        header.cell(cells, RosterColumn::HouseholdNumber),
        header.cell(cells, RosterColumn::Relation),
    )
    .map_err(|problems| {
        problems
            .into_iter()
            .map(|p| {
                let column = match p.field {
                    HouseholdField::Number => RosterColumn::HouseholdNumber,
                    HouseholdField::Relation => RosterColumn::Relation,
                };
                RowProblem::new(column, p.error)
            })
            .collect()
    })
}

/// Turns one data row into a person, or lists every problem found in it (not only the first), so
/// a clerk can fix a row in one go. `today` bounds the ID number's birth date.
pub fn parse_row(
    header: &RosterHeader,
    cells: &[String],
    today: NaiveDate,
) -> Result<Person, Vec<RowProblem>> {
    use RosterColumn as C;
    let mut problems = Vec::new();
    let cell = |c| header.cell(cells, c);

    let name = PersonName::parse(cell(C::Name))
        .map_err(|e| problems.push(RowProblem::of_name(e)))
        .ok();
    let id_text = cell(C::IdNumber);
    let id_number = if id_text.contains(['E', 'e']) && id_text.contains('+') {
        problems.push(RowProblem::new(
            C::IdNumber,
            "身份证号码被 Excel 转成了科学计数法，后几位已丢失；请把该列设为“文本”格式后重新录入",
        ));
        None
    } else {
        IdNumber::parse(id_text, today)
            .map_err(|e| problems.push(RowProblem::new(C::IdNumber, e)))
            .ok()
            .map(|p| p.id_number)
    };
    let region = RegionCode::parse(cell(C::Region))
        .map_err(|e| problems.push(RowProblem::new(C::Region, e)))
        .ok();

    let school = match cell(C::PersonKind) {
        "" | "居民" => None,
        "在校学生" => match parse_school(cell(C::School)) {
            Ok(s) => Some(s),
            Err(_) => {
                problems.push(RowProblem::new(
                    C::School,
                    "在校学生须填写学校名称（学生在学校所在地参保）",
                ));
                None
            }
        },
        other => {
            problems.push(RowProblem::new(
                C::PersonKind,
                format!("人员类别“{other}”无效，应为“居民”或“在校学生”"),
            ));
            None
        }
    };

    let household = match cell(C::Household) {
        "" | "本地户籍" => Some(Household::LocalRegistration),
        "居住证" => match parse_roster_date(cell(C::PermitSince)) {
            Some(since) => Some(Household::ResidencePermit { since }),
            None => {
                problems.push(RowProblem::new(
                    C::PermitSince,
                    format!("户籍类型为居住证时须填写居住证起始日期；{DATE_HINT}"),
                ));
                None
            }
        },
        other => {
            problems.push(RowProblem::new(
                C::Household,
                format!("户籍类型“{other}”无效，应为“本地户籍”或“居住证”"),
            ));
            None
        }
    };

    let phone = match cell(C::Phone) {
        "" => None,
        text => Phone::parse(text)
            .map_err(|e| problems.push(RowProblem::new(C::Phone, e)))
            .ok(),
    };
    let station = match cell(C::Station) {
        "" => None,
        text => StationCode::parse(text)
            .map_err(|e| problems.push(RowProblem::new(C::Station, e)))
            .ok(),
    };
    let employee_insured = match cell(C::EmployeeInsured) {
        "" | "否" => false,
        "是" => true,
        other => {
            problems.push(RowProblem::new(
                C::EmployeeInsured,
                format!("职工医保“{other}”无效，应填“是”或留空"),
            ));
            false
        }
    };
    let relief = parse_relief(header, cells, &mut problems);

    match (name, id_number, region, household) {
        (Some(name), Some(id_number), Some(region), Some(household)) if problems.is_empty() => {
            Ok(Person {
                region,
                id_number,
                name,
                household,
                school,
                phone,
                station,
                employee_insured,
                relief,
            })
        }
        _ => Err(problems),
    }
}

fn parse_relief(
    header: &RosterHeader,
    cells: &[String],
    problems: &mut Vec<RowProblem>,
) -> Option<Relief> {
    use RosterColumn as C;
    let cell = |c| header.cell(cells, c);
    let kind_text = cell(C::ReliefKind);
    let subsidy_text = cell(C::Subsidy);
    if kind_text.is_empty() {
        if !subsidy_text.is_empty() {
            problems.push(RowProblem::new(
                C::Subsidy,
                EnrolmentFieldError::SubsidyWithoutSubsidised,
            ));
        }
        return None;
    }
    let Some(kind) = ReliefKind::from_name_zh(kind_text) else {
        let names: Vec<_> = ReliefKind::ALL.iter().map(|k| k.name_zh()).collect();
        problems.push(RowProblem::new(
            C::ReliefKind,
            format!("减免类型“{kind_text}”无效，应为：{}", names.join("、")),
        ));
        return None;
    };
    let mut ok = true;
    for column in [C::CertificateName, C::CertificateNumber] {
        if cell(column).is_empty() {
            problems.push(RowProblem::new(
                column,
                format!("填写减免类型时须填写{}", column.header()),
            ));
            ok = false;
        }
    }
    let valid_until = parse_roster_date(cell(C::CertificateValidUntil));
    if valid_until.is_none() {
        problems.push(RowProblem::new(
            C::CertificateValidUntil,
            format!("填写减免类型时须填写证件有效期；{DATE_HINT}"),
        ));
        ok = false;
    }
    let subsidy = match subsidy_text {
        "" => None,
        text => match Fen::parse_yuan(text) {
            Ok(fen) => Some(fen),
            Err(e) => {
                problems.push(RowProblem::new(C::Subsidy, e));
                ok = false;
                None
            }
        },
    };
    let valid_until = valid_until.filter(|_| ok)?;
    Relief::new(
        kind,
        cell(C::CertificateName),
        cell(C::CertificateNumber),
        valid_until,
        subsidy,
    )
    .map_err(|e| {
        let column = match e {
            EnrolmentFieldError::SubsidisedWithoutAmount
            | EnrolmentFieldError::SubsidyWithoutSubsidised => C::Subsidy,
            _ => C::CertificateName,
        };
        problems.push(RowProblem::new(column, e));
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fee::tests::d;

    fn row(pairs: &[(&str, &str)]) -> (RosterHeader, Vec<String>) {
        let header: Vec<String> = pairs.iter().map(|(h, _)| h.to_string()).collect();
        let cells = pairs.iter().map(|(_, v)| v.to_string()).collect();
        (RosterHeader::parse(&header).unwrap(), cells)
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("姓名", "张三"),
            ("身份证号码", "320602198001011235"),
            ("参保地区", "320600"),
        ]
    }

    #[test]
    fn header_needs_the_required_columns_in_any_order() {
        let cells: Vec<String> = ["参保地区", "备注", "\u{feff}姓名", "身份证号码"]
            .map(String::from)
            .to_vec();
        let h = RosterHeader::parse(&cells).unwrap();
        assert_eq!(h.unknown_columns, vec!["备注".to_owned()]);
        let missing = RosterHeader::parse(&["姓名".to_owned()]).unwrap_err();
        assert_eq!(
            missing,
            RosterHeaderError::MissingColumns(vec![
                MissingColumn {
                    column: "身份证号码",
                    found: None
                },
                MissingColumn {
                    column: "参保地区",
                    found: None
                }
            ])
        );
        let dup =
            RosterHeader::parse(&["姓名", "姓名", "身份证号码", "参保地区"].map(String::from))
                .unwrap_err();
        assert_eq!(dup, RosterHeaderError::DuplicateColumn("姓名".into()));
    }

    /// Issue 10: near-miss headers are named with the right name, for missing required columns
    /// (an error) and for optional ones (a warning).
    #[test]
    fn near_miss_headers_are_suggested() {
        for (found, expected) in [
            ("身份证号", "身份证号码"),
            ("身份证", "身份证号码"),
            ("证件号码", "身份证号码"),
            ("公民身份号码", "身份证号码"),
            ("身份证号码（必填）", "身份证号码"),
            ("*姓名", "姓名"),
            ("地区", "参保地区"),
            ("统筹区", "参保地区"),
            ("参保地区代码", "参保地区"),
            ("电话", "联系电话"),
            ("手机号", "联系电话"),
            ("联系电活", "联系电话"),
            ("减免证件有效期", "减免证件有效期至"),
            ("户籍", "户籍类型"),
            ("学校", "学校名称"),
            ("户编号", "户号"),
            ("与户主的关系", "与户主关系"),
            ("户主关系", "与户主关系"),
        ] {
            assert_eq!(
                suggest_column(found).map(RosterColumn::header),
                Some(expected),
                "{found}"
            );
        }
        for unrelated in [
            "备注",
            "性别",
            "序号",
            "编号",
            "户主",
            "户主姓名",
            "账号",
            "出生日期",
            "民族",
            "姓名",
            "",
            "填表说明",
        ] {
            assert_eq!(suggest_column(unrelated), None, "{unrelated}");
        }
        let cells = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let error = RosterHeader::parse(&cells(&["姓名", "身份证号", "统筹区"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "花名册缺少必填列：身份证号码（找到列“身份证号”，应为“身份证号码”）、参保地区（找到列“统筹区”，应为“参保地区”）。第一行应为列名，必填列为 姓名、身份证号码、参保地区"
        );
        let header =
            RosterHeader::parse(&cells(&["姓名", "身份证号码", "参保地区", "电话", "备注"]))
                .unwrap();
        assert_eq!(header.unknown_columns, ["电话", "备注"]);
        assert_eq!(
            header.suggestions,
            [ColumnSuggestion {
                found: "电话".into(),
                expected: "联系电话"
            }]
        );
        // Not suggested when the column is there already.
        let header = RosterHeader::parse(&cells(&[
            "姓名",
            "身份证号码",
            "参保地区",
            "联系电话",
            "电话",
        ]))
        .unwrap();
        assert!(header.suggestions.is_empty());
        // The rejection file's own columns are ignored without a warning.
        let header = RosterHeader::parse(&cells(&[
            "行号",
            "错误列",
            "错误代码",
            "错误原因",
            "姓名",
            "身份证号码",
            "参保地区",
        ]))
        .unwrap();
        assert!(header.unknown_columns.is_empty());
    }

    #[test]
    fn every_problem_has_a_stable_code_and_a_lost_character_its_own() {
        let cells = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let header = RosterHeader::parse(&cells(&["姓名", "身份证号码", "参保地区"])).unwrap();
        let today = NaiveDate::from_ymd_opt(2020, 11, 2).unwrap();
        let problems = parse_row(&header, &cells(&["王?明", "1", "32"]), today).unwrap_err();
        let codes: Vec<(&str, &str)> = problems.iter().map(|p| (p.column, p.code)).collect();
        assert_eq!(
            codes,
            [
                ("姓名", "NAME_CHARACTER_LOST"),
                ("身份证号码", "INVALID_ID_NUMBER"),
                ("参保地区", "INVALID_REGION")
            ]
        );
        assert!(
            problems[0].reason.contains("U+003F"),
            "{}",
            problems[0].reason
        );
        let problems = parse_row(
            &header,
            &cells(&["张 三", "320602198001011235", "320600"]),
            today,
        )
        .unwrap_err();
        assert_eq!(problems[0].code, "INVALID_NAME");
    }

    #[test]
    fn header_match_finds_the_roster_sheet() {
        let cells = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            RosterHeader::match_of(&cells(&["姓名", "身份证号码", "参保地区"])),
            HeaderMatch::Complete
        );
        assert_eq!(
            RosterHeader::match_of(&cells(&["名字", "身份证号", "统筹区"])),
            HeaderMatch::Partial
        );
        assert_eq!(
            RosterHeader::match_of(&cells(&["一、本表用于参保登记"])),
            HeaderMatch::None
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("联系电活", "联系电话"), 1);
        assert_eq!(edit_distance("", "姓名"), 2);
        assert_eq!(edit_distance("身份证号", "身份证号码"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn a_plain_row_becomes_a_local_resident() {
        let (h, cells) = row(&base());
        let p = parse_row(&h, &cells, d(2026, 1, 1)).unwrap();
        assert_eq!(p.household, Household::LocalRegistration);
        assert!(p.school.is_none() && p.relief.is_none() && !p.employee_insured);
    }

    #[test]
    fn every_problem_of_a_row_is_reported() {
        let mut pairs = base();
        pairs[1].1 = "320602198001011236";
        pairs.push(("人员类别", "在校学生"));
        pairs.push(("户籍类型", "居住证"));
        pairs.push(("联系电话", "12345"));
        pairs.push(("减免类型", "资助"));
        pairs.push(("减免证件名称", "资助证明"));
        pairs.push(("减免证件号码", "Z1"));
        pairs.push(("减免证件有效期至", "2021-12-31"));
        pairs.push(("资助金额", "12.345"));
        let (h, cells) = row(&pairs);
        let problems = parse_row(&h, &cells, d(2026, 1, 1)).unwrap_err();
        let columns: Vec<_> = problems.iter().map(|p| p.column).collect();
        assert_eq!(
            columns,
            vec![
                "身份证号码",
                "学校名称",
                "居住证起始日期",
                "联系电话",
                "资助金额"
            ]
        );
        assert!(problems[4].reason.contains("超过两位小数"), "{problems:?}");
    }

    #[test]
    fn excel_mangled_ids_get_a_precise_hint() {
        let mut pairs = base();
        pairs[1].1 = "3.20602198001012E+17";
        let (h, cells) = row(&pairs);
        let problems = parse_row(&h, &cells, d(2026, 1, 1)).unwrap_err();
        assert!(problems[0].reason.contains("科学计数法"));
    }

    #[test]
    fn relief_rows() {
        let mut pairs = base();
        pairs.extend([
            ("减免类型", "资助"),
            ("减免证件名称", "资助证明"),
            ("减免证件号码", "Z1"),
            ("减免证件有效期至", "44561"),
            ("资助金额", "120.00"),
        ]);
        let (h, cells) = row(&pairs);
        let relief = parse_row(&h, &cells, d(2026, 1, 1))
            .unwrap()
            .relief
            .unwrap();
        assert_eq!(relief.kind, ReliefKind::Subsidised);
        assert_eq!(relief.subsidy, Some(Fen::yuan(120).unwrap()));
        assert_eq!(relief.valid_until, d(2021, 12, 31));

        let mut pairs = base();
        pairs.extend([("减免类型", "低保"), ("资助金额", "10")]);
        let (h, cells) = row(&pairs);
        let problems = parse_row(&h, &cells, d(2026, 1, 1)).unwrap_err();
        let columns: Vec<_> = problems.iter().map(|p| p.column).collect();
        assert_eq!(
            columns,
            vec!["减免证件名称", "减免证件号码", "减免证件有效期至"]
        );

        let mut pairs = base();
        pairs.extend([("减免类型", "富裕")]);
        let (h, cells) = row(&pairs);
        assert_eq!(
            parse_row(&h, &cells, d(2026, 1, 1)).unwrap_err()[0].column,
            "减免类型"
        );
    }

    #[test]
    fn roster_dates() {
        assert_eq!(parse_roster_date("2020-11-01"), Some(d(2020, 11, 1)));
        assert_eq!(parse_roster_date("2020/11/01"), Some(d(2020, 11, 1)));
        assert_eq!(parse_roster_date("44136"), Some(d(2020, 11, 1)));
        assert_eq!(parse_roster_date("44136.0"), Some(d(2020, 11, 1)));
        assert_eq!(parse_roster_date("61"), Some(d(1900, 3, 1)));
        assert_eq!(parse_roster_date("60"), None);
        assert_eq!(parse_roster_date("2020-02-30"), None);
        assert_eq!(parse_roster_date("44136.5"), None);
        assert_eq!(parse_roster_date(""), None);
    }
}
