//! Fee years, the insurance item and its components, and a region's fee policy (缴费政策) for a year.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::cover_rules::{CoverRules, CoverRulesError};
use crate::money::{Fen, MoneyError};
use crate::region::RegionCode;

/// The benefit year a contribution pays for (缴费年度), e.g. 2021 for contributions collected in late 2020.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct FeeYear(u16);

pub const MIN_FEE_YEAR: u16 = 2000;
pub const MAX_FEE_YEAR: u16 = 2100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("缴费年度应为{MIN_FEE_YEAR}至{MAX_FEE_YEAR}之间的年份，当前为“{0}”")]
pub struct FeeYearError(pub String);

impl FeeYearError {
    pub const CODE: &'static str = "INVALID_FEE_YEAR";
}

impl FeeYear {
    pub fn new(year: i64) -> Result<FeeYear, FeeYearError> {
        u16::try_from(year)
            .ok()
            .filter(|y| (MIN_FEE_YEAR..=MAX_FEE_YEAR).contains(y))
            .map(FeeYear)
            .ok_or_else(|| FeeYearError(year.to_string()))
    }

    pub fn parse(text: &str) -> Result<FeeYear, FeeYearError> {
        let t = text.trim();
        if t.len() != 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FeeYearError(t.chars().take(10).collect()));
        }
        t.parse::<i64>()
            .map_err(|_| FeeYearError(t.to_owned()))
            .and_then(FeeYear::new)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// How a stored column becomes a fee year.
impl TryFrom<i32> for FeeYear {
    type Error = FeeYearError;
    fn try_from(year: i32) -> Result<Self, Self::Error> {
        FeeYear::new(i64::from(year))
    }
}

impl fmt::Display for FeeYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for FeeYear {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let year = i64::deserialize(deserializer)?;
        FeeYear::new(year).map_err(serde::de::Error::custom)
    }
}

/// The insurance item (险种) collected. Only one today; the protocol names it so more can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsuranceItem {
    /// 城乡居民基本医疗保险.
    ResidentMedical,
}

impl InsuranceItem {
    pub fn code(self) -> &'static str {
        match self {
            InsuranceItem::ResidentMedical => "resident_medical",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            InsuranceItem::ResidentMedical => "城乡居民基本医疗保险",
        }
    }
}

/// A component of a contribution. The basic part is what remains after the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// 基本医疗保险.
    Basic,
    /// 大病保险.
    CriticalIllness,
    /// 照护保险 (long-term care insurance).
    LongTermCare,
}

impl Component {
    pub const ALL: [Component; 3] = [
        Component::Basic,
        Component::CriticalIllness,
        Component::LongTermCare,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Component::Basic => "basic",
            Component::CriticalIllness => "critical_illness",
            Component::LongTermCare => "long_term_care",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Component::Basic => "基本医疗保险",
            Component::CriticalIllness => "大病保险",
            Component::LongTermCare => "照护保险",
        }
    }

    pub fn from_code(code: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The contribution category (人员类别 as the policy prices it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 成年居民: of adult age on the policy's age reference date.
    Adult,
    /// 未成年人（非在校）: a minor not in school.
    MinorNotInSchool,
    /// 在校学生: enrolled through a school, whatever the age.
    Student,
    /// 新生儿: born after the policy's age reference date.
    Newborn,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Adult,
        Category::MinorNotInSchool,
        Category::Student,
        Category::Newborn,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Category::Adult => "adult",
            Category::MinorNotInSchool => "minor_not_in_school",
            Category::Student => "student",
            Category::Newborn => "newborn",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Category::Adult => "成年居民",
            Category::MinorNotInSchool => "未成年居民（非在校）",
            Category::Student => "在校学生",
            Category::Newborn => "新生儿",
        }
    }

    pub fn from_code(code: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The collection window (征缴期): the first and last day on which payment is accepted on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CollectionWindow {
    opens: NaiveDate,
    closes: NaiveDate,
}

impl CollectionWindow {
    pub fn new(opens: NaiveDate, closes: NaiveDate) -> Result<Self, FeePolicyError> {
        if closes < opens {
            return Err(FeePolicyError::WindowReversed { opens, closes });
        }
        Ok(CollectionWindow { opens, closes })
    }

    pub fn opens(&self) -> NaiveDate {
        self.opens
    }

    pub fn closes(&self) -> NaiveDate {
        self.closes
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        (self.opens..=self.closes).contains(&date)
    }
}

/// The amount owed by one category: a total and the parts of it that are not basic insurance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryAmount {
    total: Fen,
    /// Every component, `Basic` included, summing to `total`.
    components: BTreeMap<Component, Fen>,
}

impl CategoryAmount {
    /// A total "including" some components, as fee notices state it (430 元 including 20 for 大病保险):
    /// the basic part is the remainder. Refuses negatives and components that exceed the total.
    pub fn including(total: Fen, parts: &[(Component, Fen)]) -> Result<Self, FeePolicyError> {
        if total.is_negative() {
            return Err(FeePolicyError::NegativeAmount);
        }
        let mut components = BTreeMap::new();
        for &(component, amount) in parts {
            if component == Component::Basic {
                return Err(FeePolicyError::BasicIsTheRemainder);
            }
            if amount.is_negative() {
                return Err(FeePolicyError::NegativeAmount);
            }
            if components.insert(component, amount).is_some() {
                return Err(FeePolicyError::DuplicateComponent(component.name_zh()));
            }
        }
        // Canonical form: a zero component is no component, so equal policies compare equal.
        components.retain(|_, amount| *amount != Fen::ZERO);
        let others = Fen::checked_sum(components.values().copied())?;
        let basic = total.checked_sub(others)?;
        if basic.is_negative() {
            return Err(FeePolicyError::ComponentsExceedTotal);
        }
        components.insert(Component::Basic, basic);
        Ok(CategoryAmount { total, components })
    }

    pub fn total(&self) -> Fen {
        self.total
    }

    /// Components in a fixed order (basic, critical illness, long-term care); zero ones other than
    /// basic are not listed.
    pub fn components(&self) -> impl Iterator<Item = (Component, Fen)> + '_ {
        self.components.iter().map(|(c, a)| (*c, *a))
    }

    pub fn component(&self, component: Component) -> Fen {
        self.components
            .get(&component)
            .copied()
            .unwrap_or(Fen::ZERO)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeePolicyError {
    #[error("征缴期结束日期 {closes} 早于开始日期 {opens}")]
    WindowReversed { opens: NaiveDate, closes: NaiveDate },
    #[error("缴费金额不能为负数")]
    NegativeAmount,
    #[error("基本医疗保险部分由总额减去其他部分得出，不能单独设置")]
    BasicIsTheRemainder,
    #[error("缴费构成“{0}”重复")]
    DuplicateComponent(&'static str),
    #[error("各分项之和超过缴费总额")]
    ComponentsExceedTotal,
    #[error("缴费政策缺少“{0}”的缴费标准")]
    MissingCategory(&'static str),
    #[error("成年年龄应在16至22岁之间，当前为{0}")]
    AdultAge(u32),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    CoverRules(#[from] CoverRulesError),
}

impl FeePolicyError {
    pub const CODE: &'static str = "INVALID_FEE_POLICY";
}

/// A region's fee policy for one fee year: what each category owes, when age is taken, when
/// collection runs, and whether late payment is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeePolicy {
    region: RegionCode,
    fee_year: FeeYear,
    amounts: BTreeMap<Category, CategoryAmount>,
    /// The day on which age is taken to tell adults from minors (often 1 January of the fee year).
    age_reference_date: NaiveDate,
    /// Age from which a resident is an adult; 18 unless the region says otherwise.
    adult_age: u32,
    window: CollectionWindow,
    late_payment_allowed: bool,
    /// The 2025 rules as the region applies them in this benefit year.
    cover_rules: CoverRules,
    /// The late amounts (`cover_rules.late`) as amounts with their components, per category.
    #[serde(skip)]
    late_amounts: BTreeMap<Category, CategoryAmount>,
}

pub struct FeePolicyInput {
    pub region: RegionCode,
    pub fee_year: FeeYear,
    pub amounts: BTreeMap<Category, CategoryAmount>,
    pub age_reference_date: NaiveDate,
    pub adult_age: u32,
    pub window: CollectionWindow,
    pub late_payment_allowed: bool,
    pub cover_rules: CoverRules,
}

impl FeePolicy {
    /// Every category must be priced, so assessment never meets a person it cannot charge.
    pub fn new(input: FeePolicyInput) -> Result<FeePolicy, FeePolicyError> {
        for category in Category::ALL {
            if !input.amounts.contains_key(&category) {
                return Err(FeePolicyError::MissingCategory(category.name_zh()));
            }
        }
        if !(16..=22).contains(&input.adult_age) {
            return Err(FeePolicyError::AdultAge(input.adult_age));
        }
        input.cover_rules.check(input.fee_year, &input.window)?;
        let late_amounts = late_amounts(
            &input.amounts,
            &input.cover_rules.late,
            input.late_payment_allowed,
        )?;
        Ok(FeePolicy {
            region: input.region,
            fee_year: input.fee_year,
            amounts: input.amounts,
            age_reference_date: input.age_reference_date,
            adult_age: input.adult_age,
            window: input.window,
            late_payment_allowed: input.late_payment_allowed,
            cover_rules: input.cover_rules,
            late_amounts,
        })
    }

    pub fn region(&self) -> RegionCode {
        self.region
    }
    pub fn fee_year(&self) -> FeeYear {
        self.fee_year
    }
    pub fn age_reference_date(&self) -> NaiveDate {
        self.age_reference_date
    }
    pub fn adult_age(&self) -> u32 {
        self.adult_age
    }
    pub fn window(&self) -> CollectionWindow {
        self.window
    }
    pub fn late_payment_allowed(&self) -> bool {
        self.late_payment_allowed
    }
    pub fn cover_rules(&self) -> &CoverRules {
        &self.cover_rules
    }
    pub fn amounts(&self) -> impl Iterator<Item = (Category, &CategoryAmount)> {
        self.amounts.iter().map(|(c, a)| (*c, a))
    }

    pub fn amount_for(&self, category: Category) -> &CategoryAmount {
        // Invariant: `new` refused a policy that does not price every category.
        &self.amounts[&category]
    }

    /// The first day a late payer is charged the late amount: the day after the extension, or
    /// after the window when there is none.
    pub fn late_from(&self) -> NaiveDate {
        let last = self
            .cover_rules
            .waiting
            .extension_until
            .unwrap_or(self.window.closes());
        last.succ_opt().unwrap_or(last)
    }

    /// Whether a payment of this year can still be taken on `date`: accepted on that day
    /// ([`Self::accepts_payment_on`]) and not past the year's last date (the 2025 rules'
    /// `waiting.last_date`, or 31 December), after which an order is refused `YEAR_CLOSED`.
    pub fn takes_payment_on(&self, date: NaiveDate) -> bool {
        self.accepts_payment_on(date) && date <= self.cover_rules.last_date(self.fee_year)
    }

    /// The last day a payment is in time (not late): the extension's last day, or the window's
    /// when there is none.
    pub fn in_time_until(&self) -> NaiveDate {
        self.late_from().pred_opt().unwrap_or(self.window.closes())
    }

    /// The day a resident told on `day` that something is still owed is asked to pay by: the
    /// window's last day while it is open, then the extension's, then the year's last date
    /// (where late payment is accepted).
    pub fn pay_by_after(&self, day: NaiveDate) -> NaiveDate {
        if day <= self.window.closes() {
            self.window.closes()
        } else if day <= self.in_time_until() {
            self.in_time_until()
        } else {
            self.cover_rules.last_date(self.fee_year)
        }
    }

    /// The categories whose late amount differs from the standard one, with it (none by
    /// default).
    pub fn late_priced_categories(&self) -> Vec<(Category, Fen)> {
        self.late_amounts
            .iter()
            .filter(|(c, a)| a.total() != self.amount_for(**c).total())
            .map(|(c, a)| (*c, a.total()))
            .collect()
    }

    /// What a category owes when assessed on `date`: its late amount from [`Self::late_from`]
    /// where the region sets one (`cover_rules.late`), its standard amount otherwise.
    pub fn amount_on(&self, category: Category, date: NaiveDate) -> &CategoryAmount {
        match self.late_amounts.get(&category) {
            Some(late) if date >= self.late_from() => late,
            _ => self.amount_for(category),
        }
    }

    /// Whether an assessment on `date` charges `category` its late amount.
    pub fn is_late_priced(&self, category: Category, date: NaiveDate) -> bool {
        date >= self.late_from() && self.late_amounts.contains_key(&category)
    }

    /// The category a person falls in: students by enrolment, then newborns (born after the age
    /// reference date), then adults and minors by completed years on that date.
    pub fn category_for(&self, birth_date: NaiveDate, is_student: bool) -> Category {
        if is_student {
            return Category::Student;
        }
        if birth_date > self.age_reference_date {
            return Category::Newborn;
        }
        let age = crate::calendar::completed_years(birth_date, self.age_reference_date);
        if age >= self.adult_age {
            Category::Adult
        } else {
            Category::MinorNotInSchool
        }
    }

    /// Whether a payment on `date` is accepted: inside the window or its extension (延长期,
    /// `cover_rules.waiting.extension_until`), or after them where late payment is allowed.
    pub fn accepts_payment_on(&self, date: NaiveDate) -> bool {
        let after_window = date > self.window.closes();
        self.window.contains(date)
            || (after_window && date < self.late_from())
            || (self.late_payment_allowed && after_window)
    }
}

/// The late amounts of `cover_rules.late` with the standard amounts' 大病 and 照护 parts: each at
/// least its standard amount, and only where late payment is accepted.
fn late_amounts(
    amounts: &BTreeMap<Category, CategoryAmount>,
    late: &crate::cover_rules::LateRules,
    late_payment_allowed: bool,
) -> Result<BTreeMap<Category, CategoryAmount>, FeePolicyError> {
    let mut out = BTreeMap::new();
    for (&category, &fen) in &late.amounts_fen {
        let field = format!("late.amounts_fen.{}", category.code());
        if !late_payment_allowed {
            return Err(CoverRulesError {
                field,
                message:
                    "本年度不接受逾期缴费（late_payment_allowed 为 false），不能设置逾期缴费金额"
                        .to_owned(),
            }
            .into());
        }
        if !(1..=crate::cover_rules::MAX_LATE_FEN).contains(&fen) {
            return Err(CoverRulesError {
                field,
                message: format!(
                    "应为1至{}分（10万元）之间的整数分，当前为{fen}",
                    crate::cover_rules::MAX_LATE_FEN
                ),
            }
            .into());
        }
        let standard = &amounts[&category];
        if fen < standard.total().as_fen() {
            return Err(CoverRulesError {
                field,
                message: format!(
                    "逾期缴费金额不能低于{}的标准金额{}",
                    category.name_zh(),
                    standard.total()
                ),
            }
            .into());
        }
        let parts: Vec<(Component, Fen)> = standard
            .components()
            .filter(|(c, _)| *c != Component::Basic)
            .collect();
        out.insert(category, CategoryAmount::including(Fen::new(fen)?, &parts)?);
    }
    Ok(out)
}

/// The fee year a person registering on `today` enrols for: of the region's policies, the earliest
/// fee year whose collection window, with its extension (延长期), has not closed. `None` when
/// every window has closed.
pub fn enrolment_fee_year(policies: &[FeePolicy], today: NaiveDate) -> Option<&FeePolicy> {
    policies
        .iter()
        .filter(|p| p.in_time_until() >= today)
        .min_by_key(|p| p.fee_year())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn yuan(y: i64) -> Fen {
        Fen::yuan(y).unwrap()
    }

    /// The seed document: 南通市, fee year 2021.
    pub(crate) fn nantong_2021() -> FeePolicy {
        let adult = CategoryAmount::including(
            yuan(430),
            &[
                (Component::CriticalIllness, yuan(20)),
                (Component::LongTermCare, yuan(30)),
            ],
        )
        .unwrap();
        let minor = CategoryAmount::including(yuan(300), &[(Component::CriticalIllness, yuan(20))])
            .unwrap();
        let amounts = BTreeMap::from([
            (Category::Adult, adult),
            (Category::MinorNotInSchool, minor.clone()),
            (Category::Student, minor.clone()),
            (Category::Newborn, minor),
        ]);
        FeePolicy::new(FeePolicyInput {
            region: RegionCode::parse("320600").unwrap(),
            fee_year: FeeYear::new(2021).unwrap(),
            amounts,
            age_reference_date: d(2021, 1, 1),
            adult_age: 18,
            window: CollectionWindow::new(d(2020, 11, 1), d(2020, 12, 20)).unwrap(),
            late_payment_allowed: false,
            cover_rules: CoverRules::default(),
        })
        .unwrap()
    }

    #[test]
    fn seed_policy_components() {
        let p = nantong_2021();
        let adult = p.amount_for(Category::Adult);
        assert_eq!(adult.total(), yuan(430));
        assert_eq!(adult.component(Component::Basic), yuan(380));
        assert_eq!(adult.component(Component::CriticalIllness), yuan(20));
        assert_eq!(adult.component(Component::LongTermCare), yuan(30));
        let minor = p.amount_for(Category::MinorNotInSchool);
        assert_eq!(minor.component(Component::Basic), yuan(280));
        let parts: Vec<_> = minor.components().map(|(c, _)| c).collect();
        assert_eq!(parts, vec![Component::Basic, Component::CriticalIllness]);
    }

    #[test]
    fn categories_by_age_and_school() {
        let p = nantong_2021();
        assert_eq!(p.category_for(d(2003, 1, 1), false), Category::Adult);
        assert_eq!(
            p.category_for(d(2003, 1, 2), false),
            Category::MinorNotInSchool
        );
        assert_eq!(p.category_for(d(2021, 3, 1), false), Category::Newborn);
        assert_eq!(p.category_for(d(1990, 3, 1), true), Category::Student);
    }

    #[test]
    fn window_and_late_payment() {
        let p = nantong_2021();
        assert!(p.accepts_payment_on(d(2020, 11, 1)));
        assert!(p.accepts_payment_on(d(2020, 12, 20)));
        assert!(!p.accepts_payment_on(d(2020, 12, 21)));
        assert!(!p.accepts_payment_on(d(2020, 10, 31)));
    }

    #[test]
    fn the_extension_accepts_payment_where_late_payment_is_not() {
        let p = with_late(false, &[], Some(d(2021, 1, 31)))
            .expect("an extension after the window is valid");
        assert!(p.accepts_payment_on(d(2020, 12, 21)));
        assert!(p.accepts_payment_on(d(2021, 1, 31)));
        assert!(!p.accepts_payment_on(d(2021, 2, 1)));
        assert!(!p.accepts_payment_on(d(2020, 10, 31)));
        let late = with_late(true, &[], Some(d(2021, 1, 31)))
            .expect("an extension after the window is valid");
        assert!(late.accepts_payment_on(d(2021, 2, 1)));
        assert_eq!(p.in_time_until(), d(2021, 1, 31));
        // A person registering in the extension enrols for the year still in time.
        assert_eq!(
            enrolment_fee_year(std::slice::from_ref(&p), d(2021, 1, 31)).map(|p| p.fee_year()),
            Some(p.fee_year())
        );
        assert!(enrolment_fee_year(std::slice::from_ref(&p), d(2021, 2, 1)).is_none());
        // Asked to pay by the window's last day, then the extension's, then the year's last.
        assert_eq!(p.pay_by_after(d(2020, 12, 1)), d(2020, 12, 20));
        assert_eq!(p.pay_by_after(d(2021, 1, 5)), d(2021, 1, 31));
        assert_eq!(late.pay_by_after(d(2021, 2, 1)), d(2021, 12, 31));
        // Late payment is taken up to the year's last date, not after.
        assert!(late.takes_payment_on(d(2021, 12, 31)));
        assert!(!late.takes_payment_on(d(2022, 1, 1)));
        assert!(late.accepts_payment_on(d(2022, 1, 1)));
    }

    /// 南通 2021 taking late payment, with `late` as `cover_rules.late.amounts_fen` and an
    /// optional extension.
    pub(crate) fn with_late(
        allowed: bool,
        late: &[(Category, i64)],
        extension_until: Option<NaiveDate>,
    ) -> Result<FeePolicy, FeePolicyError> {
        let seed = nantong_2021();
        let mut rules = CoverRules::default();
        rules.late.amounts_fen = late.iter().copied().collect();
        rules.waiting.extension_until = extension_until;
        FeePolicy::new(FeePolicyInput {
            region: seed.region(),
            fee_year: seed.fee_year(),
            amounts: seed.amounts().map(|(c, a)| (c, a.clone())).collect(),
            age_reference_date: seed.age_reference_date(),
            adult_age: seed.adult_age(),
            window: seed.window(),
            late_payment_allowed: allowed,
            cover_rules: rules,
        })
    }

    #[test]
    fn a_late_amount_applies_from_the_day_after_the_window_or_the_extension() {
        // 南通's adults: 430 元 with 20 for 大病 and 30 for 照护; late, the full cost of 1 100 元.
        let p = with_late(true, &[(Category::Adult, 110_000)], None).unwrap();
        assert_eq!(p.late_from(), d(2020, 12, 21));
        assert_eq!(
            p.amount_on(Category::Adult, d(2020, 12, 20)).total(),
            yuan(430)
        );
        let late = p.amount_on(Category::Adult, d(2020, 12, 21));
        assert_eq!(late.total(), yuan(1100));
        assert_eq!(late.component(Component::CriticalIllness), yuan(20));
        assert_eq!(late.component(Component::LongTermCare), yuan(30));
        assert_eq!(late.component(Component::Basic), yuan(1050));
        // A category left out pays its standard amount late too.
        assert_eq!(
            p.amount_on(Category::Student, d(2021, 3, 1)).total(),
            yuan(300)
        );
        assert_eq!(
            p.late_priced_categories(),
            vec![(Category::Adult, yuan(1100))]
        );
        assert!(p.is_late_priced(Category::Adult, d(2020, 12, 21)));
        assert!(!p.is_late_priced(Category::Student, d(2020, 12, 21)));

        let extended =
            with_late(true, &[(Category::Adult, 110_000)], Some(d(2021, 2, 28))).unwrap();
        assert_eq!(extended.late_from(), d(2021, 3, 1));
        assert_eq!(
            extended.amount_on(Category::Adult, d(2021, 2, 28)).total(),
            yuan(430)
        );
        assert!(with_late(true, &[], None)
            .unwrap()
            .late_priced_categories()
            .is_empty());
    }

    #[test]
    fn an_impossible_late_amount_is_refused_with_the_setting_named() {
        let field = |r: Result<FeePolicy, FeePolicyError>| match r {
            Err(FeePolicyError::CoverRules(e)) => (e.field, e.message),
            other => panic!("expected a refused setting, got {other:?}"),
        };
        let (f, m) = field(with_late(false, &[(Category::Adult, 110_000)], None));
        assert_eq!(f, "late.amounts_fen.adult");
        assert!(m.contains("不接受逾期缴费"), "{m}");
        let (f, m) = field(with_late(true, &[(Category::Newborn, 20_000)], None));
        assert_eq!(f, "late.amounts_fen.newborn");
        assert!(m.contains("不能低于新生儿的标准金额300.00元"), "{m}");
        let (_, m) = field(with_late(true, &[(Category::Adult, 0)], None));
        assert!(m.contains("应为1至"), "{m}");
    }

    #[test]
    fn enrolment_goes_to_the_earliest_open_year() {
        let p = nantong_2021();
        assert_eq!(
            enrolment_fee_year(std::slice::from_ref(&p), d(2020, 12, 20))
                .map(|p| p.fee_year().get()),
            Some(2021)
        );
        assert!(enrolment_fee_year(std::slice::from_ref(&p), d(2020, 12, 21)).is_none());
    }

    #[test]
    fn refuses_bad_policies() {
        assert_eq!(
            CategoryAmount::including(yuan(10), &[(Component::CriticalIllness, yuan(20))]),
            Err(FeePolicyError::ComponentsExceedTotal)
        );
        assert_eq!(
            CategoryAmount::including(yuan(10), &[(Component::Basic, yuan(5))]),
            Err(FeePolicyError::BasicIsTheRemainder)
        );
        assert!(CollectionWindow::new(d(2020, 12, 1), d(2020, 11, 1)).is_err());
        assert!(FeeYear::new(1999).is_err());
        assert!(FeeYear::parse("20x1").is_err());
        assert_eq!(FeeYear::parse("2021").unwrap().get(), 2021);
    }
}
