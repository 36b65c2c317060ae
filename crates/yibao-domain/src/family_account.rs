//! The family account (个人账户家庭共济, the 2025 rules' issue): an employee-insurance member pays
//! close relatives' resident contributions from their personal medical account, through a channel
//! of kind `medical_account`. Which relatives, where, and for what, are settings per region and
//! benefit year; the binding file's rows and the decision on an order are pure functions here.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::cover_history_file::column_of;
use crate::id_number::{IdNumber, IdNumberError};
use crate::money::Fen;
use crate::region::RegionCode;

/// The close relatives (近亲属) of the Civil Code (民法典 第一千零四十五条). In-laws, nephews and
/// nieces are not among them, and no setting adds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    Spouse,
    Parent,
    Child,
    Sibling,
    /// 祖父母 (the father's parents).
    Grandparent,
    /// 外祖父母 (the mother's parents).
    MaternalGrandparent,
    /// 孙子女 (a son's children).
    Grandchild,
    /// 外孙子女 (a daughter's children).
    MaternalGrandchild,
}

impl Relationship {
    pub const ALL: [Relationship; 8] = [
        Relationship::Spouse,
        Relationship::Parent,
        Relationship::Child,
        Relationship::Sibling,
        Relationship::Grandparent,
        Relationship::MaternalGrandparent,
        Relationship::Grandchild,
        Relationship::MaternalGrandchild,
    ];

    /// The 2021 scope (国办发〔2021〕14号): 配偶、父母、子女.
    pub const SCOPE_2021: [Relationship; 3] = [
        Relationship::Spouse,
        Relationship::Parent,
        Relationship::Child,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Relationship::Spouse => "spouse",
            Relationship::Parent => "parent",
            Relationship::Child => "child",
            Relationship::Sibling => "sibling",
            Relationship::Grandparent => "grandparent",
            Relationship::MaternalGrandparent => "maternal_grandparent",
            Relationship::Grandchild => "grandchild",
            Relationship::MaternalGrandchild => "maternal_grandchild",
        }
    }

    pub fn from_code(code: &str) -> Option<Relationship> {
        Relationship::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The Civil Code's name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Relationship::Spouse => "配偶",
            Relationship::Parent => "父母",
            Relationship::Child => "子女",
            Relationship::Sibling => "兄弟姐妹",
            Relationship::Grandparent => "祖父母",
            Relationship::MaternalGrandparent => "外祖父母",
            Relationship::Grandchild => "孙子女",
            Relationship::MaternalGrandchild => "外孙子女",
        }
    }

    /// The names a binding file may use: the Civil Code's, and the one person each stands for
    /// (父亲, 女儿 …).
    pub fn from_text(text: &str) -> Option<Relationship> {
        Some(match text.trim() {
            "配偶" | "夫" | "妻" | "丈夫" | "妻子" => Relationship::Spouse,
            "父母" | "父亲" | "母亲" | "父" | "母" => Relationship::Parent,
            "子女" | "儿子" | "女儿" | "子" | "女" => Relationship::Child,
            "兄弟姐妹" | "哥哥" | "弟弟" | "姐姐" | "妹妹" | "兄" | "弟" | "姐" | "妹" => {
                Relationship::Sibling
            }
            "祖父母" | "祖父" | "祖母" | "爷爷" | "奶奶" => Relationship::Grandparent,
            "外祖父母" | "外祖父" | "外祖母" | "外公" | "外婆" => {
                Relationship::MaternalGrandparent
            }
            "孙子女" | "孙子" | "孙女" => Relationship::Grandchild,
            "外孙子女" | "外孙" | "外孙女" => Relationship::MaternalGrandchild,
            _ => return None,
        })
    }
}

/// A region's family-account settings for one benefit year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FamilyAccountRules {
    /// The relatives whose contributions the account may pay. National default (38号): the Civil
    /// Code's eight; a region still on the 2021 scope sets `["spouse", "parent", "child"]`.
    pub relationships: Vec<Relationship>,
    /// Only an employee insured in the same province (the first two digits of the region code)
    /// may pay (national default: true, 38号 "省内").
    pub within_province: bool,
    /// Whether the account may pay a back-payment (补缴修复). No national text allows it: default
    /// false.
    pub back_payments: bool,
}

impl Default for FamilyAccountRules {
    fn default() -> Self {
        FamilyAccountRules {
            relationships: Relationship::ALL.to_vec(),
            within_province: true,
            back_payments: false,
        }
    }
}

impl FamilyAccountRules {
    /// The settings as one line of Chinese, for staff.
    pub fn summary_zh(&self) -> String {
        let names: Vec<&str> = self.relationships.iter().map(|r| r.name_zh()).collect();
        format!(
            "家庭共济：{}可用职工个人账户代缴；{}；补缴修复{}",
            if names.is_empty() {
                "无亲属".to_owned()
            } else {
                names.join("、")
            },
            if self.within_province {
                "限省内参保职工"
            } else {
                "不限省份"
            },
            if self.back_payments {
                "可用个人账户缴纳"
            } else {
                "不可用个人账户缴纳"
            }
        )
    }
}

/// A binding in the agency's records: an employee's account may pay for a relative from
/// `valid_from` until `valid_until` (inclusive; open-ended when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyBinding {
    pub employee: IdNumber,
    /// Where the employee is insured (参保地): a region code, which need not be one of yibao's.
    pub employee_region: String,
    pub relative: IdNumber,
    pub relationship: Relationship,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

impl FamilyBinding {
    pub fn in_force_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_until.is_none_or(|until| day <= until)
    }
}

/// One payable an account is asked to pay.
#[derive(Debug, Clone, Copy)]
pub struct AccountPayable<'a> {
    pub person: &'a IdNumber,
    pub region: RegionCode,
    pub amount: Fen,
    /// A back-payment (补缴修复) rather than a year's contribution.
    pub back_payment: bool,
}

/// Why an account may not pay an order: each a stable code and a Chinese message for the teller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FamilyAccountRefusal {
    #[error("参保人{person}与该职工没有在有效期内的家庭共济绑定关系，请先到医保经办机构办理绑定")]
    NotBound { person: String },
    #[error("参保人{person}与该职工的关系（{relationship}）不在本统筹区家庭共济的亲属范围内")]
    RelationshipNotAllowed {
        person: String,
        relationship: &'static str,
    },
    #[error("该职工在省外参保（参保地{employee_region}），本统筹区只接受省内职工个人账户代缴")]
    OutsideProvince { employee_region: String },
    #[error("本统筹区不允许用职工个人账户缴纳补缴修复费用")]
    BackPaymentNotAllowed,
    #[error("个人账户余额{balance}，不足以缴纳本次共{needed}，请改用其他方式缴费")]
    InsufficientBalance { needed: Fen, balance: Fen },
}

impl FamilyAccountRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            FamilyAccountRefusal::NotBound { .. } => "NOT_BOUND",
            FamilyAccountRefusal::RelationshipNotAllowed { .. } => "RELATIONSHIP_NOT_ALLOWED",
            FamilyAccountRefusal::OutsideProvince { .. } => "OUTSIDE_PROVINCE",
            FamilyAccountRefusal::BackPaymentNotAllowed => "BACK_PAYMENT_NOT_ALLOWED",
            FamilyAccountRefusal::InsufficientBalance { .. } => "INSUFFICIENT_BALANCE",
        }
    }
}

/// Whether `employee`'s account may pay every one of `payables` on `today`, all or nothing: each
/// payable's person bound to the employee in force today with a relationship `rules` allows (of
/// the payable's region and year), within the province when it says so, a back-payment only when
/// it allows them, and the total within `balance`. The first refusal, in the payables' order, is
/// the answer. `person_masked` names a person in a refusal without their ID number.
pub fn family_account_decision(
    rules_of: impl Fn(&AccountPayable<'_>) -> FamilyAccountRules,
    employee: &IdNumber,
    bindings: &[FamilyBinding],
    payables: &[AccountPayable<'_>],
    balance: Fen,
    today: NaiveDate,
    person_masked: impl Fn(&IdNumber) -> String,
) -> Result<(), FamilyAccountRefusal> {
    for payable in payables {
        let rules = rules_of(payable);
        let binding = bindings.iter().find(|b| {
            &b.employee == employee && &b.relative == payable.person && b.in_force_on(today)
        });
        let Some(binding) = binding else {
            return Err(FamilyAccountRefusal::NotBound {
                person: person_masked(payable.person),
            });
        };
        if !rules.relationships.contains(&binding.relationship) {
            return Err(FamilyAccountRefusal::RelationshipNotAllowed {
                person: person_masked(payable.person),
                relationship: binding.relationship.name_zh(),
            });
        }
        if rules.within_province
            && binding.employee_region.get(..2) != payable.region.as_str().get(..2)
        {
            return Err(FamilyAccountRefusal::OutsideProvince {
                employee_region: binding.employee_region.clone(),
            });
        }
        if payable.back_payment && !rules.back_payments {
            return Err(FamilyAccountRefusal::BackPaymentNotAllowed);
        }
    }
    match Fen::checked_sum(payables.iter().map(|p| p.amount)) {
        Ok(needed) if needed <= balance => Ok(()),
        Ok(needed) => Err(FamilyAccountRefusal::InsufficientBalance { needed, balance }),
        // A sum past the largest amount yibao holds is beyond any balance.
        Err(_) => Err(FamilyAccountRefusal::InsufficientBalance {
            needed: Fen::new(crate::money::MAX_ABS_FEN).unwrap_or(balance),
            balance,
        }),
    }
}

/// Where each column of a binding file (家庭共济绑定) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingHeader {
    employee: usize,
    employee_region: usize,
    relative: usize,
    relationship: usize,
    valid_from: usize,
    valid_until: Option<usize>,
}

/// The columns' names, as refusals name them.
pub const BINDING_COLUMN_NAMES: [&str; 6] = [
    BINDING_COLUMNS[0].0,
    BINDING_COLUMNS[1].0,
    BINDING_COLUMNS[2].0,
    BINDING_COLUMNS[3].0,
    BINDING_COLUMNS[4].0,
    BINDING_COLUMNS[5].0,
];

const BINDING_COLUMNS: [(&str, &[&str]); 6] = [
    ("职工公民身份号码", &["职工公民身份号码", "职工身份证号码"]),
    ("职工参保地", &["职工参保地", "职工参保地区划代码"]),
    (
        "亲属公民身份号码",
        &["亲属公民身份号码", "亲属身份证号码", "被共济人公民身份号码"],
    ),
    ("关系", &["关系", "与职工关系"]),
    ("生效日期", &["生效日期", "绑定日期"]),
    ("终止日期", &["终止日期", "解绑日期"]),
];

impl BindingHeader {
    /// The columns in the order of [`BINDING_COLUMN_NAMES`]: a binding entered by staff is read
    /// as a row of this header, with the file's checks.
    pub const STANDARD: BindingHeader = BindingHeader {
        employee: 0,
        employee_region: 1,
        relative: 2,
        relationship: 3,
        valid_from: 4,
        valid_until: Some(5),
    };

    /// The header of a binding file, or `None` when it is not one.
    pub fn find(header: &[String]) -> Option<BindingHeader> {
        let position = |i: usize| column_of(header, BINDING_COLUMNS[i].1);
        Some(BindingHeader {
            employee: position(0)?,
            employee_region: position(1)?,
            relative: position(2)?,
            relationship: position(3)?,
            valid_from: position(4)?,
            valid_until: position(5),
        })
    }
}

/// A refused binding row: the column's name, a stable code and a Chinese reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRowError {
    pub column: &'static str,
    pub code: &'static str,
    pub reason: String,
}

/// Reads one row of a binding file: both ID numbers valid and different, the employee's region a
/// six-digit code, a relationship among the Civil Code's eight, dates `YYYY-MM-DD` from 2021 (the
/// family account's start) to 2099, the end not before the start.
pub fn parse_binding_row(
    header: &BindingHeader,
    cells: &[String],
    today: NaiveDate,
) -> Result<FamilyBinding, BindingRowError> {
    let cell = |i: usize| cells.get(i).map_or("", |c| c.trim());
    let refuse = |column: usize, code: &'static str, reason: String| BindingRowError {
        column: BINDING_COLUMNS[column].0,
        code,
        reason,
    };
    let employee = IdNumber::parse(cell(header.employee), today)
        .map_err(|e| refuse(0, IdNumberError::CODE, e.to_string()))?
        .id_number;
    let employee_region = cell(header.employee_region);
    if employee_region.len() != 6 || !employee_region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(
            1,
            "INVALID_REGION",
            "职工参保地应为6位行政区划代码，如 460100".to_owned(),
        ));
    }
    let relative = IdNumber::parse(cell(header.relative), today)
        .map_err(|e| refuse(2, IdNumberError::CODE, e.to_string()))?
        .id_number;
    if relative == employee {
        return Err(refuse(
            2,
            "INVALID_BINDING",
            "亲属与职工是同一人：职工本人不参加城乡居民医保，无需绑定".to_owned(),
        ));
    }
    let relationship = Relationship::from_text(cell(header.relationship)).ok_or_else(|| {
        refuse(
            3,
            "INVALID_RELATIONSHIP",
            "关系应为民法典规定的近亲属：配偶、父母、子女、兄弟姐妹、祖父母、外祖父母、孙子女、外孙子女（岳父母、公婆、侄甥等不在其内）"
                .to_owned(),
        )
    })?;
    let date = |column: usize, text: &str| {
        let earliest = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap_or(today);
        let latest = NaiveDate::from_ymd_opt(2099, 12, 31).unwrap_or(today);
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .filter(|d| (earliest..=latest).contains(d))
            .ok_or_else(|| {
                refuse(
                    column,
                    "INVALID_DATE",
                    format!("日期应为{earliest}至{latest}之间的真实日期，格式 YYYY-MM-DD"),
                )
            })
    };
    let valid_from = date(4, cell(header.valid_from))?;
    let valid_until = match header.valid_until.map_or("", cell) {
        "" => None,
        text => Some(date(5, text)?),
    };
    if valid_until.is_some_and(|until| until < valid_from) {
        return Err(refuse(
            5,
            "INVALID_DATE",
            "终止日期不能早于生效日期".to_owned(),
        ));
    }
    Ok(FamilyBinding {
        employee,
        employee_region: employee_region.to_owned(),
        relative,
        relationship,
        valid_from,
        valid_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn id(text: &str) -> IdNumber {
        IdNumber::parse(text, d(2026, 12, 1)).unwrap().id_number
    }

    /// A valid ID number from its first 17 digits.
    fn with_check(first17: &str) -> String {
        format!(
            "{first17}{}",
            crate::id_number::check_character(first17).unwrap()
        )
    }

    fn employee() -> IdNumber {
        id(&with_check("46010519800301001"))
    }

    fn binding(relative: &IdNumber, relationship: Relationship) -> FamilyBinding {
        FamilyBinding {
            employee: employee(),
            employee_region: "460100".to_owned(),
            relative: *relative,
            relationship,
            valid_from: d(2026, 1, 1),
            valid_until: Some(d(2027, 12, 31)),
        }
    }

    fn haikou() -> RegionCode {
        RegionCode::parse("460100").unwrap()
    }

    fn payable(person: &IdNumber, amount: i64) -> AccountPayable<'_> {
        AccountPayable {
            person,
            region: haikou(),
            amount: Fen::new_non_negative(amount).unwrap(),
            back_payment: false,
        }
    }

    fn decide(
        rules: &FamilyAccountRules,
        bindings: &[FamilyBinding],
        payables: &[AccountPayable<'_>],
        balance: i64,
        today: NaiveDate,
    ) -> Result<(), FamilyAccountRefusal> {
        family_account_decision(
            |_| rules.clone(),
            &employee(),
            bindings,
            payables,
            Fen::new_non_negative(balance).unwrap(),
            today,
            |p| p.masked(),
        )
    }

    #[test]
    fn a_bound_relative_within_the_balance_is_paid_for_all_or_nothing() {
        let mother = id(&with_check("46010519550101002"));
        let nephew = id(&with_check("46010520100101003"));
        let rules = FamilyAccountRules::default();
        let bindings = [binding(&mother, Relationship::Parent)];
        let today = d(2026, 12, 1);
        assert_eq!(
            decide(
                &rules,
                &bindings,
                &[payable(&mother, 40_000)],
                40_000,
                today
            ),
            Ok(())
        );
        // All or nothing: one unbound person refuses the whole order.
        let both = [payable(&mother, 40_000), payable(&nephew, 40_000)];
        let refused = decide(&rules, &bindings, &both, 100_000, today).unwrap_err();
        assert_eq!(refused.code(), "NOT_BOUND");
        assert!(!refused.to_string().contains(nephew.as_str()));
        // Beyond the balance.
        let refused = decide(
            &rules,
            &bindings,
            &[payable(&mother, 40_000)],
            39_999,
            today,
        );
        assert_eq!(refused.unwrap_err().code(), "INSUFFICIENT_BALANCE");
        // Out of force: after its end, before its start.
        for day in [d(2028, 1, 1), d(2025, 12, 31)] {
            let refused = decide(&rules, &bindings, &[payable(&mother, 1)], 1, day);
            assert_eq!(refused.unwrap_err().code(), "NOT_BOUND");
        }
    }

    #[test]
    fn the_regions_settings_narrow_relationships_province_and_back_payments() {
        let sister = id(&with_check("46010519850101004"));
        let today = d(2026, 12, 1);
        let rules_2021 = FamilyAccountRules {
            relationships: Relationship::SCOPE_2021.to_vec(),
            ..FamilyAccountRules::default()
        };
        let bindings = [binding(&sister, Relationship::Sibling)];
        let refused = decide(&rules_2021, &bindings, &[payable(&sister, 1)], 1, today);
        assert_eq!(refused.unwrap_err().code(), "RELATIONSHIP_NOT_ALLOWED");
        let national = FamilyAccountRules::default();
        assert_eq!(
            decide(&national, &bindings, &[payable(&sister, 1)], 1, today),
            Ok(())
        );
        let mut elsewhere = bindings.clone();
        elsewhere[0].employee_region = "320600".to_owned();
        let refused = decide(&national, &elsewhere, &[payable(&sister, 1)], 1, today);
        assert_eq!(refused.unwrap_err().code(), "OUTSIDE_PROVINCE");
        let anywhere = FamilyAccountRules {
            within_province: false,
            ..FamilyAccountRules::default()
        };
        assert_eq!(
            decide(&anywhere, &elsewhere, &[payable(&sister, 1)], 1, today),
            Ok(())
        );
        let mut back = payable(&sister, 1);
        back.back_payment = true;
        let refused = decide(&national, &bindings, &[back], 1, today);
        assert_eq!(refused.unwrap_err().code(), "BACK_PAYMENT_NOT_ALLOWED");
        let allowing = FamilyAccountRules {
            back_payments: true,
            ..FamilyAccountRules::default()
        };
        assert_eq!(decide(&allowing, &bindings, &[back], 1, today), Ok(()));
    }

    #[test]
    fn a_binding_file_row_is_read_or_refused_naming_its_column() {
        let today = d(2026, 12, 1);
        let header: Vec<String> = [
            "职工公民身份号码",
            "职工参保地",
            "亲属公民身份号码",
            "关系",
            "生效日期",
            "终止日期",
        ]
        .map(str::to_owned)
        .to_vec();
        let header = BindingHeader::find(&header).unwrap();
        let employee = employee();
        let child = id(&with_check("46010520150101005"));
        let row = |relationship: &str, from: &str, until: &str| -> Vec<String> {
            vec![
                employee.as_str().to_owned(),
                "460100".to_owned(),
                child.as_str().to_owned(),
                relationship.to_owned(),
                from.to_owned(),
                until.to_owned(),
            ]
        };
        let read = parse_binding_row(&header, &row("女儿", "2026-01-01", ""), today).unwrap();
        assert_eq!(read.relationship, Relationship::Child);
        assert_eq!(read.valid_until, None);
        let refused = parse_binding_row(&header, &row("岳父", "2026-01-01", ""), today);
        assert_eq!(refused.unwrap_err().column, "关系");
        let refused = parse_binding_row(&header, &row("子女", "2026-01-01", "2025-12-31"), today);
        assert_eq!(refused.unwrap_err().column, "终止日期");
        let mut same = row("子女", "2026-01-01", "");
        same[2] = employee.as_str().to_owned();
        assert_eq!(
            parse_binding_row(&header, &same, today).unwrap_err().code,
            "INVALID_BINDING"
        );
    }

    #[test]
    fn every_relationship_has_a_code_and_a_name_read_back() {
        for r in Relationship::ALL {
            assert_eq!(Relationship::from_code(r.code()), Some(r));
            assert_eq!(Relationship::from_text(r.name_zh()), Some(r));
        }
    }
}
