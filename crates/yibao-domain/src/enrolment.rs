//! Enrolment (参保登记): who a resident is on the agency's record, whether they may enrol for a fee
//! year, and what they owe once assessed (核定).

use std::fmt;

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::fee::{Category, Component, FeePolicy};
use crate::id_number::IdNumber;
use crate::money::Fen;
use crate::person_name::PersonName;
use crate::region::RegionCode;

/// A resident holding a residence permit (居住证) may enrol this many months after its start date.
pub const RESIDENCE_PERMIT_MONTHS: u32 = 3;
/// A newborn enrolled within this many days of birth is covered from birth.
pub const NEWBORN_ENROLMENT_DAYS: i64 = 90;
pub const MAX_SCHOOL_CHARS: usize = 64;
pub const MAX_CERTIFICATE_NAME_CHARS: usize = 64;
pub const MAX_CERTIFICATE_NUMBER_CHARS: usize = 64;
pub const MAX_STATION_CODE_CHARS: usize = 32;

/// 户籍类型.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Household {
    /// 本地户籍.
    LocalRegistration,
    /// 居住证, with the day it was issued.
    ResidencePermit { since: NaiveDate },
}

/// The kinds of relief in the roster's `减免类型` column. All but `Subsidised` owe nothing while the
/// certificate is valid; `Subsidised` (资助) owes the policy amount less the subsidy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliefKind {
    /// 低保.
    MinimumLivingAllowance,
    /// 特困.
    ExtremePoverty,
    /// 重残 (grade 1-2 disability).
    SevereDisability,
    /// 特困供养.
    ExtremePovertySupport,
    /// 临时救助.
    TemporaryAssistance,
    /// 困境儿童.
    ChildInDistress,
    /// 低收入.
    LowIncome,
    /// 建档立卡.
    RegisteredPoorHousehold,
    /// 精减退职.
    DownsizedRetiree,
    /// 重点优抚.
    PriorityEntitled,
    /// 资助: others pay part.
    Subsidised,
}

impl ReliefKind {
    pub const ALL: [ReliefKind; 11] = [
        ReliefKind::MinimumLivingAllowance,
        ReliefKind::ExtremePoverty,
        ReliefKind::SevereDisability,
        ReliefKind::ExtremePovertySupport,
        ReliefKind::TemporaryAssistance,
        ReliefKind::ChildInDistress,
        ReliefKind::LowIncome,
        ReliefKind::RegisteredPoorHousehold,
        ReliefKind::DownsizedRetiree,
        ReliefKind::PriorityEntitled,
        ReliefKind::Subsidised,
    ];

    /// The roster's Chinese word.
    pub fn name_zh(self) -> &'static str {
        match self {
            ReliefKind::MinimumLivingAllowance => "低保",
            ReliefKind::ExtremePoverty => "特困",
            ReliefKind::SevereDisability => "重残",
            ReliefKind::ExtremePovertySupport => "特困供养",
            ReliefKind::TemporaryAssistance => "临时救助",
            ReliefKind::ChildInDistress => "困境儿童",
            ReliefKind::LowIncome => "低收入",
            ReliefKind::RegisteredPoorHousehold => "建档立卡",
            ReliefKind::DownsizedRetiree => "精减退职",
            ReliefKind::PriorityEntitled => "重点优抚",
            ReliefKind::Subsidised => "资助",
        }
    }

    pub fn from_name_zh(text: &str) -> Option<ReliefKind> {
        ReliefKind::ALL
            .into_iter()
            .find(|k| k.name_zh() == text.trim())
    }

    pub fn code(self) -> &'static str {
        match self {
            ReliefKind::MinimumLivingAllowance => "minimum_living_allowance",
            ReliefKind::ExtremePoverty => "extreme_poverty",
            ReliefKind::SevereDisability => "severe_disability",
            ReliefKind::ExtremePovertySupport => "extreme_poverty_support",
            ReliefKind::TemporaryAssistance => "temporary_assistance",
            ReliefKind::ChildInDistress => "child_in_distress",
            ReliefKind::LowIncome => "low_income",
            ReliefKind::RegisteredPoorHousehold => "registered_poor_household",
            ReliefKind::DownsizedRetiree => "downsized_retiree",
            ReliefKind::PriorityEntitled => "priority_entitled",
            ReliefKind::Subsidised => "subsidised",
        }
    }

    pub fn from_code(code: &str) -> Option<ReliefKind> {
        ReliefKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// Relief from paying: the kind, its certificate (减免证件) and, for 资助, the amount others pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relief {
    pub kind: ReliefKind,
    pub certificate_name: String,
    pub certificate_number: String,
    /// Last day the certificate is valid (有效期至), inclusive.
    pub valid_until: NaiveDate,
    /// Only for `Subsidised`.
    pub subsidy: Option<Fen>,
}

/// A phone number: 11-digit mainland mobile.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(text: &str) -> Result<Phone, EnrolmentFieldError> {
        let t = text.trim();
        if t.len() == 11 && t.starts_with('1') && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Phone(t.to_owned()))
        } else {
            Err(EnrolmentFieldError::Phone)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `138****5678`.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl TryFrom<String> for Phone {
    type Error = EnrolmentFieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Phone::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

/// Code of a community service station (劳动保障服务所/站): letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StationCode(String);

impl StationCode {
    pub fn parse(text: &str) -> Result<StationCode, EnrolmentFieldError> {
        let t = text.trim();
        if !t.is_empty()
            && t.len() <= MAX_STATION_CODE_CHARS
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(StationCode(t.to_owned()))
        } else {
            Err(EnrolmentFieldError::Station)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StationCode {
    type Error = EnrolmentFieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StationCode::parse(&value)
    }
}

impl From<StationCode> for String {
    fn from(s: StationCode) -> String {
        s.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrolmentFieldError {
    #[error("联系电话应为11位手机号码")]
    Phone,
    #[error("服务站代码只能包含字母、数字、-和_，且不超过{MAX_STATION_CODE_CHARS}个字符")]
    Station,
    #[error("学校名称不能为空，且不超过{MAX_SCHOOL_CHARS}个字")]
    School,
    #[error("减免证件名称和号码不能为空，且各不超过64个字符")]
    Certificate,
    #[error("资助金额只能与减免类型“资助”一起填写")]
    SubsidyWithoutSubsidised,
    #[error("减免类型为“资助”时必须填写资助金额")]
    SubsidisedWithoutAmount,
}

impl EnrolmentFieldError {
    pub const CODE: &'static str = "INVALID_PERSON";
}

fn bounded_text(text: &str, max: usize) -> Option<String> {
    let t = text.trim();
    let n = t.chars().count();
    (n > 0 && n <= max && !t.chars().any(char::is_control)).then(|| t.to_owned())
}

impl Relief {
    pub fn new(
        kind: ReliefKind,
        certificate_name: &str,
        certificate_number: &str,
        valid_until: NaiveDate,
        subsidy: Option<Fen>,
    ) -> Result<Relief, EnrolmentFieldError> {
        let certificate_name = bounded_text(certificate_name, MAX_CERTIFICATE_NAME_CHARS)
            .ok_or(EnrolmentFieldError::Certificate)?;
        let certificate_number = bounded_text(certificate_number, MAX_CERTIFICATE_NUMBER_CHARS)
            .ok_or(EnrolmentFieldError::Certificate)?;
        match (kind, subsidy) {
            (ReliefKind::Subsidised, None) => {
                return Err(EnrolmentFieldError::SubsidisedWithoutAmount)
            }
            (k, Some(_)) if k != ReliefKind::Subsidised => {
                return Err(EnrolmentFieldError::SubsidyWithoutSubsidised)
            }
            _ => {}
        }
        Ok(Relief {
            kind,
            certificate_name,
            certificate_number,
            valid_until,
            subsidy,
        })
    }

    pub fn is_valid_on(&self, date: NaiveDate) -> bool {
        date <= self.valid_until
    }
}

/// Validates a school name (学校名称).
pub fn parse_school(text: &str) -> Result<String, EnrolmentFieldError> {
    bounded_text(text, MAX_SCHOOL_CHARS).ok_or(EnrolmentFieldError::School)
}

/// A resident as the agency holds them (one record per region and ID number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub region: RegionCode,
    /// 预留身份证号码: the number channels match.
    pub id_number: IdNumber,
    /// 预留姓名: the name channels match; may differ from the card.
    pub name: PersonName,
    pub household: Household,
    /// `Some` for 在校学生: the school that enrols them.
    pub school: Option<String>,
    pub phone: Option<Phone>,
    pub station: Option<StationCode>,
    /// 职工医保: covered by employee insurance, so not eligible.
    pub employee_insured: bool,
    pub relief: Option<Relief>,
}

/// Why a person may not enrol. Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrolmentRefusal {
    #[error("该人员已参加职工基本医疗保险，不能参加城乡居民医保")]
    EmployeeInsured,
    #[error("居住证满{RESIDENCE_PERMIT_MONTHS}个月后方可参保，该人员自{eligible_from}起可参保")]
    ResidencePermitTooRecent { eligible_from: NaiveDate },
    #[error("该人员本缴费年度已在{province}的其他统筹区（{region_masked}）参保，不能重复参保")]
    EnrolledElsewhere {
        province: &'static str,
        region_masked: String,
    },
    #[error("该统筹区没有可登记的缴费年度（征缴期已结束或尚未设置缴费政策）")]
    NoOpenFeeYear,
}

impl EnrolmentRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            EnrolmentRefusal::EmployeeInsured => "EMPLOYEE_INSURED",
            EnrolmentRefusal::ResidencePermitTooRecent { .. } => "RESIDENCE_PERMIT_TOO_RECENT",
            EnrolmentRefusal::EnrolledElsewhere { .. } => "ENROLLED_ELSEWHERE",
            EnrolmentRefusal::NoOpenFeeYear => "NO_OPEN_FEE_YEAR",
        }
    }

    pub fn enrolled_elsewhere(region: RegionCode) -> EnrolmentRefusal {
        EnrolmentRefusal::EnrolledElsewhere {
            province: crate::region::province_name(region),
            region_masked: format!("{}****", &region.as_str()[..2]),
        }
    }
}

/// The rules a person must meet to enrol, checked on `date` (the day of enrolment). The rule of one
/// enrolment per person and fee year across regions is a database constraint, not checked here.
pub fn check_eligibility(person: &Person, date: NaiveDate) -> Result<(), EnrolmentRefusal> {
    if person.employee_insured {
        return Err(EnrolmentRefusal::EmployeeInsured);
    }
    if let Household::ResidencePermit { since } = person.household {
        let eligible_from = since
            .checked_add_months(Months::new(RESIDENCE_PERMIT_MONTHS))
            .unwrap_or(NaiveDate::MAX);
        if date < eligible_from {
            return Err(EnrolmentRefusal::ResidencePermitTooRecent { eligible_from });
        }
    }
    Ok(())
}

/// The first day a person enrolled on `enrolled_on` is covered in `policy`'s fee year: a newborn
/// enrolled within 90 days of birth from birth, a newborn enrolled later from the day after
/// enrolment, everyone else from 1 January of the fee year.
pub fn covered_from(id_number: &IdNumber, policy: &FeePolicy, enrolled_on: NaiveDate) -> NaiveDate {
    let birth = id_number.birth_date();
    let year_start =
        NaiveDate::from_ymd_opt(i32::from(policy.fee_year().get()), 1, 1).unwrap_or(birth);
    if policy.category_for(birth, false) != Category::Newborn {
        return year_start;
    }
    if (enrolled_on - birth).num_days() <= NEWBORN_ENROLMENT_DAYS {
        birth
    } else {
        enrolled_on
            .succ_opt()
            .unwrap_or(enrolled_on)
            .max(year_start)
    }
}

/// What assessment decided for one person: the amount owed and its components, or exempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub category: Category,
    /// What the person owes: 0 when exempt.
    pub amount: Fen,
    /// Basic, critical illness and long-term care parts of `amount` (summing to it).
    pub components: [(Component, Fen); 3],
    /// An exemption valid on the assessment date.
    pub exempt: bool,
    /// The relief applied, if any (an expired certificate is not applied).
    pub relief_applied: Option<ReliefKind>,
    /// The policy's amount before relief, for the record.
    pub policy_amount: Fen,
}

/// Assesses `person` under `policy` on `date` (核定). Exempt people owe 0 while their certificate is
/// valid on `date`; subsidised people owe the policy amount less the subsidy (never below 0), the
/// subsidy taken from the basic part first, then critical illness, then long-term care. From the
/// day after the window (or the extension) the policy amount is the late one where the region sets
/// one ([`FeePolicy::amount_on`]), relief applied to it the same way.
pub fn assess(person: &Person, policy: &FeePolicy, date: NaiveDate) -> Assessment {
    let category = policy.category_for(person.id_number.birth_date(), person.school.is_some());
    let amount = policy.amount_on(category, date);
    let mut parts = [
        (Component::Basic, amount.component(Component::Basic)),
        (
            Component::CriticalIllness,
            amount.component(Component::CriticalIllness),
        ),
        (
            Component::LongTermCare,
            amount.component(Component::LongTermCare),
        ),
    ];
    let valid_relief = person.relief.as_ref().filter(|r| r.is_valid_on(date));
    let (exempt, reduction) = match valid_relief {
        None => (false, Fen::ZERO),
        Some(r) if r.kind == ReliefKind::Subsidised => (false, r.subsidy.unwrap_or(Fen::ZERO)),
        Some(_) => (true, amount.total()),
    };
    let mut remaining = reduction.as_fen().max(0);
    for (_, part) in parts.iter_mut() {
        let take = remaining.min(part.as_fen());
        *part = Fen::new(part.as_fen() - take).unwrap_or(Fen::ZERO);
        remaining -= take;
    }
    let owed = Fen::checked_sum(parts.iter().map(|(_, a)| *a)).unwrap_or(Fen::ZERO);
    Assessment {
        category,
        amount: owed,
        components: parts,
        exempt,
        relief_applied: valid_relief.map(|r| r.kind),
        policy_amount: amount.total(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fee::tests::{d, nantong_2021};

    fn person(id: &str) -> Person {
        Person {
            region: RegionCode::parse("320600").unwrap(),
            id_number: IdNumber::parse(id, d(2026, 1, 1)).unwrap().id_number,
            name: PersonName::parse("张三").unwrap(),
            household: Household::LocalRegistration,
            school: None,
            phone: None,
            station: None,
            employee_insured: false,
            relief: None,
        }
    }

    const ADULT: &str = "320602198001011235";

    #[test]
    fn employee_insured_and_fresh_permits_are_refused() {
        let mut p = person(ADULT);
        assert_eq!(check_eligibility(&p, d(2020, 11, 2)), Ok(()));
        p.employee_insured = true;
        assert_eq!(
            check_eligibility(&p, d(2020, 11, 2)),
            Err(EnrolmentRefusal::EmployeeInsured)
        );
        p.employee_insured = false;
        p.household = Household::ResidencePermit {
            since: d(2020, 8, 3),
        };
        assert_eq!(
            check_eligibility(&p, d(2020, 11, 2)),
            Err(EnrolmentRefusal::ResidencePermitTooRecent {
                eligible_from: d(2020, 11, 3)
            })
        );
        assert_eq!(check_eligibility(&p, d(2020, 11, 3)), Ok(()));
        // 30 November + 3 months is the end of February.
        p.household = Household::ResidencePermit {
            since: d(2020, 11, 30),
        };
        assert_eq!(
            check_eligibility(&p, d(2021, 2, 27)),
            Err(EnrolmentRefusal::ResidencePermitTooRecent {
                eligible_from: d(2021, 2, 28)
            })
        );
    }

    #[test]
    fn adults_pay_the_policy_amount() {
        let a = assess(&person(ADULT), &nantong_2021(), d(2020, 11, 1));
        assert_eq!(a.category, Category::Adult);
        assert_eq!(a.amount.as_fen(), 43000);
        assert_eq!(
            a.components[0],
            (Component::Basic, Fen::new(38000).unwrap())
        );
        assert!(!a.exempt);
    }

    #[test]
    fn exemption_counts_only_while_the_certificate_is_valid() {
        let mut p = person(ADULT);
        p.relief = Some(
            Relief::new(
                ReliefKind::MinimumLivingAllowance,
                "低保证",
                "DB-001",
                d(2020, 11, 1),
                None,
            )
            .unwrap(),
        );
        let on_last_day = assess(&p, &nantong_2021(), d(2020, 11, 1));
        assert!(on_last_day.exempt);
        assert_eq!(on_last_day.amount, Fen::ZERO);
        let day_after = assess(&p, &nantong_2021(), d(2020, 11, 2));
        assert!(!day_after.exempt);
        assert_eq!(day_after.amount.as_fen(), 43000);
        assert_eq!(day_after.relief_applied, None);
    }

    #[test]
    fn subsidy_reduces_basic_first_and_never_below_zero() {
        let mut p = person(ADULT);
        p.relief = Some(
            Relief::new(
                ReliefKind::Subsidised,
                "资助证明",
                "ZZ-1",
                d(2021, 12, 31),
                Some(Fen::yuan(120).unwrap()),
            )
            .unwrap(),
        );
        let a = assess(&p, &nantong_2021(), d(2020, 11, 1));
        assert_eq!(a.amount.as_fen(), 31000);
        assert_eq!(a.components[0].1.as_fen(), 26000);
        assert_eq!(a.components[1].1.as_fen(), 2000);
        p.relief.as_mut().unwrap().subsidy = Some(Fen::yuan(1000).unwrap());
        let a = assess(&p, &nantong_2021(), d(2020, 11, 1));
        assert_eq!(a.amount, Fen::ZERO);
        assert!(!a.exempt);
    }

    #[test]
    fn a_late_payer_is_assessed_at_the_late_amount_with_relief_applied_to_it() {
        let policy =
            crate::fee::tests::with_late(true, &[(Category::Adult, 110_000)], None).unwrap();
        let in_window = assess(&person(ADULT), &policy, d(2020, 12, 20));
        assert_eq!(in_window.amount.as_fen(), 43000);
        let late = assess(&person(ADULT), &policy, d(2020, 12, 21));
        assert_eq!(late.amount.as_fen(), 110_000);
        assert_eq!(late.policy_amount.as_fen(), 110_000);
        assert_eq!(late.components[0].1.as_fen(), 105_000);
        let mut p = person(ADULT);
        p.relief = Some(
            Relief::new(
                ReliefKind::Subsidised,
                "资助证明",
                "ZZ-1",
                d(2021, 12, 31),
                Some(Fen::yuan(120).unwrap()),
            )
            .unwrap(),
        );
        assert_eq!(assess(&p, &policy, d(2020, 12, 21)).amount.as_fen(), 98_000);
        p.relief = Some(
            Relief::new(
                ReliefKind::MinimumLivingAllowance,
                "低保证",
                "DB-001",
                d(2021, 12, 31),
                None,
            )
            .unwrap(),
        );
        let exempt = assess(&p, &policy, d(2020, 12, 21));
        assert!(exempt.exempt);
        assert_eq!(exempt.amount, Fen::ZERO);
    }

    #[test]
    fn relief_fields_are_checked() {
        assert_eq!(
            Relief::new(ReliefKind::Subsidised, "证", "1", d(2021, 1, 1), None),
            Err(EnrolmentFieldError::SubsidisedWithoutAmount)
        );
        assert_eq!(
            Relief::new(
                ReliefKind::ExtremePoverty,
                "证",
                "1",
                d(2021, 1, 1),
                Some(Fen::ZERO)
            ),
            Err(EnrolmentFieldError::SubsidyWithoutSubsidised)
        );
        assert_eq!(
            Relief::new(ReliefKind::ExtremePoverty, " ", "1", d(2021, 1, 1), None),
            Err(EnrolmentFieldError::Certificate)
        );
        for kind in ReliefKind::ALL {
            assert_eq!(ReliefKind::from_name_zh(kind.name_zh()), Some(kind));
            assert_eq!(ReliefKind::from_code(kind.code()), Some(kind));
        }
    }

    #[test]
    fn students_and_newborns() {
        let mut p = person("320602200801011233");
        p.school = Some("南通中学".into());
        assert_eq!(
            assess(&p, &nantong_2021(), d(2020, 11, 1)).category,
            Category::Student
        );
        // Born 2021-03-01, after the age reference date: a newborn.
        let baby = person("320602202103011235");
        let policy = nantong_2021();
        assert_eq!(
            assess(&baby, &policy, d(2021, 3, 10)).category,
            Category::Newborn
        );
        assert_eq!(
            covered_from(&baby.id_number, &policy, d(2021, 5, 30)),
            d(2021, 3, 1)
        );
        // Day 91: covered from the day after enrolment.
        assert_eq!(
            covered_from(&baby.id_number, &policy, d(2021, 5, 31)),
            d(2021, 6, 1)
        );
        let adult = person(ADULT);
        assert_eq!(
            covered_from(&adult.id_number, &policy, d(2020, 11, 2)),
            d(2021, 1, 1)
        );
    }

    #[test]
    fn phones_and_stations() {
        assert_eq!(Phone::parse("13812345678").unwrap().masked(), "138****5678");
        assert!(Phone::parse("2381234567").is_err());
        assert!(Phone::parse("1381234567x").is_err());
        assert_eq!(StationCode::parse(" ZS-01 ").unwrap().as_str(), "ZS-01");
        assert!(StationCode::parse("站一").is_err());
        assert!(StationCode::parse("").is_err());
    }

    #[test]
    fn elsewhere_is_masked_to_the_province() {
        let r = EnrolmentRefusal::enrolled_elsewhere(RegionCode::parse("460100").unwrap());
        assert_eq!(
            r.to_string(),
            "该人员本缴费年度已在海南省的其他统筹区（46****）参保，不能重复参保"
        );
        assert_eq!(r.code(), "ENROLLED_ELSEWHERE");
    }
}
