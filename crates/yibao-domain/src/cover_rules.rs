//! The 2025 rules' settings (国办发〔2024〕38号): a region's choices for one benefit year about
//! waiting periods, back-payment and rewards, kept in the fee policy beside the amounts.
//!
//! 38号 sets principles ("原则上") and leaves the figures to each province, so every figure below is
//! a setting with the national default named; `docs/rules-2025.md` lists each with example local
//! values and the document it comes from. A setting no national text settles has yibao's default,
//! said as such. [`CoverRules::check`] refuses an impossible value with the setting named; an unknown
//! key is refused by the parser (`deny_unknown_fields`).

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

pub use crate::family_account::FamilyAccountRules;
use crate::fee::{CollectionWindow, FeeYear};
pub use crate::reminders::ReminderRules;

/// Every setting of the 2025 rules for one region and benefit year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoverRules {
    /// How gap years are found in a person's cover history.
    pub gaps: GapRules,
    /// The waiting period (待遇等待期) and when the year may be bought.
    pub waiting: WaitingRules,
    /// Newborns (新生儿) by how many days after birth they are paid for, youngest tier first.
    pub newborn_tiers: Vec<NewbornTier>,
    /// The other groups without a waiting period (38号's list, not the fee exemptions 低保/特困/重残).
    pub exempt_groups: Vec<ExemptGroupRule>,
    /// Moves from employee insurance (医保关系转移接续, 2021).
    pub from_employee: FromEmployeeRules,
    /// The raises of the critical-illness cap (大病保险最高支付限额).
    pub rewards: RewardRules,
    /// Text-message reminders (缴费提醒) before the window closes.
    pub reminders: ReminderRules,
    /// Paying relatives' contributions from an employee's personal account (个人账户家庭共济).
    pub family_account: FamilyAccountRules,
    /// What a payer after the window (or the extension) is charged (逾期缴费).
    pub late: LateRules,
    /// Which kinds of channel may collect which payables (渠道收费范围, issue 17).
    pub channels: crate::channel_rules::ChannelRules,
}

impl Default for CoverRules {
    fn default() -> Self {
        CoverRules {
            gaps: GapRules::default(),
            waiting: WaitingRules::default(),
            newborn_tiers: vec![
                NewbornTier {
                    within_days: 90,
                    cover_from: NewbornStart::Birth,
                },
                NewbornTier {
                    within_days: 365,
                    cover_from: NewbornStart::NextDay,
                },
            ],
            exempt_groups: ExemptGroup::ALL
                .into_iter()
                .map(ExemptGroupRule::national)
                .collect(),
            from_employee: FromEmployeeRules::default(),
            rewards: RewardRules::default(),
            reminders: ReminderRules::default(),
            family_account: FamilyAccountRules::default(),
            late: LateRules::default(),
            channels: crate::channel_rules::ChannelRules::default(),
        }
    }
}

/// Late payment (逾期缴费): what a payer after the window, or after the extension where there is
/// one, is charged for the current year. 38号 leaves it to the provinces; most charge the standard
/// amount, some the full cost without the government's subsidy. The national default: no late
/// amount, late payers pay what they were assessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LateRules {
    /// The late amount per category in fen, its 大病 and 照护 parts as in the standard amount and the
    /// basic part the rest. A category left out pays its standard amount. Checked against the
    /// standard amounts by [`crate::FeePolicy::new`]: never below them, and only where the region
    /// accepts late payment.
    pub amounts_fen: std::collections::BTreeMap<crate::fee::Category, i64>,
}

/// Largest late amount a setting may name, in fen (100 000 元).
pub const MAX_LATE_FEN: i64 = 10_000_000;

impl LateRules {
    fn summary_zh(&self) -> Option<String> {
        if self.amounts_fen.is_empty() {
            return None;
        }
        let amounts: Vec<String> = self
            .amounts_fen
            .iter()
            .map(|(c, fen)| {
                format!(
                    "{}{}元",
                    c.name_zh(),
                    crate::money::Fen::new(*fen)
                        .map(|f| f.to_yuan_string())
                        .unwrap_or_default()
                )
            })
            .collect();
        Some(format!(
            "逾期缴费（征缴期或延长期结束次日起）按{}收取，其他类别按标准金额收取",
            amounts.join("、")
        ))
    }
}

/// Which uninsured years count as gap years (断保年度). None of these is settled by a national text;
/// yibao's defaults are all `false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GapRules {
    /// Whether uninsured years before 2025 count (yibao's default: no, 38号 applies from 2025).
    pub count_years_before_2025: bool,
    /// Whether separate breaks add up (true) or only the latest run of gap years counts (false,
    /// yibao's default).
    pub breaks_add_up: bool,
    /// Whether an adult enrolling for the first time counts as not continuously insured, and so
    /// waits the fixed months even when paying in the window (yibao's default: no).
    pub first_time_adult_not_continuous: bool,
}

/// How gap years become variable waiting months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapYearCount {
    /// Every gap year adds the months (N).
    N,
    /// The first gap year adds nothing (N−1), as 青岛 counts.
    #[serde(rename = "n_minus_1")]
    NMinus1,
}

/// Where a waiting period is counted from for a payment inside the collection window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InWindowAnchor {
    /// From 1 January of the benefit year (青岛).
    BenefitYearStart,
    /// From the payment, as outside the window.
    Payment,
}

/// The day cover starts once `months` have been waited from the anchor day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartRule {
    /// The anchor day plus the months (with no wait, the payment date itself): paid 15 March,
    /// 3 months, covered from 15 June.
    PaymentDate,
    /// The day after that: 16 June (with no wait, the day after payment).
    NextDay,
    /// The first day of the month after the wait, the payment month counted as month 1: paid
    /// 15 March, 3 months (March, April, May), covered from 1 June.
    FirstOfMonthAfterWait,
}

/// What to do when a wait would end after 31 December of the benefit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PastYearEnd {
    /// The payment is refused, with the reason.
    Refuse,
    /// The payment is accepted; the resident is shown before paying that it buys no cover this year.
    AcceptWithNotice,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaitingRules {
    /// Fixed waiting months for a payer outside the window or not continuously insured (national 3).
    pub fixed_months: u8,
    /// Variable months per gap year (national 1).
    pub months_per_gap_year: u8,
    /// N or N−1 (national: N, "每多断保1年…增加1个月").
    pub gap_year_count: GapYearCount,
    /// After this many consecutive gap years (national 4) the fixed and variable months together are
    /// never below `floor_months`, even when years are bought back.
    pub floor_after_gap_years: u8,
    /// That floor (national 6).
    pub floor_months: u8,
    /// Where an in-window payment's wait is counted from (yibao's default: 1 January, as 青岛).
    pub in_window_anchor: InWindowAnchor,
    /// How the day cover starts is found (yibao's default: the anchor day plus the months).
    pub start_rule: StartRule,
    /// An extension after the window (福建: to the end of February) whose payers are covered from
    /// the payment date, with the wait a gap still brings. None: no extension.
    pub extension_until: Option<NaiveDate>,
    /// The last day the benefit year can be bought at all; None: 31 December of the benefit year.
    pub last_date: Option<NaiveDate>,
    /// A wait that would end after 31 December (yibao's default: refuse).
    pub past_year_end: PastYearEnd,
}

impl Default for WaitingRules {
    fn default() -> Self {
        WaitingRules {
            fixed_months: 3,
            months_per_gap_year: 1,
            gap_year_count: GapYearCount::N,
            floor_after_gap_years: 4,
            floor_months: 6,
            in_window_anchor: InWindowAnchor::BenefitYearStart,
            start_rule: StartRule::PaymentDate,
            extension_until: None,
            last_date: None,
            past_year_end: PastYearEnd::Refuse,
        }
    }
}

/// When a newborn paid for within `within_days` of birth is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewbornTier {
    pub within_days: u16,
    pub cover_from: NewbornStart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NewbornStart {
    /// From birth (national: paid within 90 days).
    Birth,
    /// From the payment date.
    PaymentDate,
    /// From the day after payment (common for 90 days to a year).
    NextDay,
}

/// The groups 38号 exempts from the waiting period ("新生儿等特殊群体"), newborns apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExemptGroup {
    /// 医疗救助对象.
    MedicalAssistance,
    /// 退役军人, leaving service, with their unemployed spouse and children (随军未就业配偶、子女).
    Veteran,
    /// 户籍迁入本省: a household registration moved into the province.
    MovedIntoProvince,
    /// 出国（境）返回.
    ReturnedFromAbroad,
    /// 刑满释放.
    ReleasedFromPrison,
    /// 毕业返乡: a graduate returning home.
    GraduateReturned,
    /// 省内高校新生: a freshman at a university in the province.
    Freshman,
}

impl ExemptGroup {
    pub const ALL: [ExemptGroup; 7] = [
        ExemptGroup::MedicalAssistance,
        ExemptGroup::Veteran,
        ExemptGroup::MovedIntoProvince,
        ExemptGroup::ReturnedFromAbroad,
        ExemptGroup::ReleasedFromPrison,
        ExemptGroup::GraduateReturned,
        ExemptGroup::Freshman,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ExemptGroup::MedicalAssistance => "medical_assistance",
            ExemptGroup::Veteran => "veteran",
            ExemptGroup::MovedIntoProvince => "moved_into_province",
            ExemptGroup::ReturnedFromAbroad => "returned_from_abroad",
            ExemptGroup::ReleasedFromPrison => "released_from_prison",
            ExemptGroup::GraduateReturned => "graduate_returned",
            ExemptGroup::Freshman => "freshman",
        }
    }

    pub fn from_code(code: &str) -> Option<ExemptGroup> {
        ExemptGroup::ALL.into_iter().find(|g| g.code() == code)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            ExemptGroup::MedicalAssistance => "医疗救助对象",
            ExemptGroup::Veteran => "退役军人及随迁未就业配偶、子女",
            ExemptGroup::MovedIntoProvince => "户籍迁入本省人员",
            ExemptGroup::ReturnedFromAbroad => "出国（境）返回人员",
            ExemptGroup::ReleasedFromPrison => "刑满释放人员",
            ExemptGroup::GraduateReturned => "毕业返乡人员",
            ExemptGroup::Freshman => "省内高校新生",
        }
    }

    /// What happened on a claim's event date, for the evidence and the screens.
    pub fn event_zh(self) -> &'static str {
        match self {
            ExemptGroup::MedicalAssistance => "认定为医疗救助对象",
            ExemptGroup::Veteran => "退出现役",
            ExemptGroup::MovedIntoProvince => "户籍迁入",
            ExemptGroup::ReturnedFromAbroad => "回国（境）",
            ExemptGroup::ReleasedFromPrison => "刑满释放",
            ExemptGroup::GraduateReturned => "毕业",
            ExemptGroup::Freshman => "入学",
        }
    }
}

/// When a member of an exempt group is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExemptStart {
    /// From 1 January of the benefit year.
    BenefitYearStart,
    /// From the payment date.
    PaymentDate,
    /// From the day after payment.
    NextDay,
    /// From 1 September of the year of the event (a freshman's enrolment year).
    SeptemberFirst,
}

/// One exempt group as a region applies it: paid within `within_days` of the event (None: any
/// time), covered from `cover_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptGroupRule {
    pub group: ExemptGroup,
    #[serde(default)]
    pub within_days: Option<u16>,
    pub cover_from: ExemptStart,
}

impl ExemptGroupRule {
    /// The group as 38号 lists it: 90 days after the event where it names a time, no wait. Where the
    /// text says only "不设待遇等待期", yibao covers from the payment date.
    pub fn national(group: ExemptGroup) -> ExemptGroupRule {
        let (within_days, cover_from) = match group {
            ExemptGroup::MedicalAssistance => (None, ExemptStart::PaymentDate),
            ExemptGroup::Freshman => (None, ExemptStart::SeptemberFirst),
            _ => (Some(90), ExemptStart::PaymentDate),
        };
        ExemptGroupRule {
            group,
            within_days,
            cover_from,
        }
    }
}

/// Moves from employee insurance (国家医保局 2021 transfer rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FromEmployeeRules {
    /// Continuous years of employee insurance the rule asks for (national 2); None: a regional
    /// variant without the condition.
    pub min_years_insured: Option<u8>,
    /// A gap after employee insurance of at most this many months (national 3) is covered back
    /// from the day after employee insurance ended.
    pub max_gap_months: u8,
    /// A longer gap waits at most this many months (national 6, 江苏 3).
    pub max_wait_months: u8,
}

impl Default for FromEmployeeRules {
    fn default() -> Self {
        FromEmployeeRules {
            min_years_insured: Some(2),
            max_gap_months: 3,
            max_wait_months: 6,
        }
    }
}

/// The raises of the critical-illness cap (38号 第三部分).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardRules {
    /// Continuous years after which each further continuous year raises the cap (national 4).
    pub continuous_after_years: u8,
    /// The raise per further continuous year, in fen (national at least 100 000, 1 000 元).
    pub continuous_raise_fen: i64,
    /// Whether raises already earned survive a break (廊坊: yes; yibao's default: no).
    pub keep_earned_after_break: bool,
    /// Whether years in employee insurance count as continuous (yibao's default: yes).
    pub employee_years_count: bool,
    /// Whether bought-back years count as continuous (yibao's default: no).
    pub bought_back_years_count: bool,
    /// The first year counted for the continuous reward; None: every year on record.
    pub years_counted_from: Option<u16>,
    /// The raise per year without fund reimbursement (零报销), in fen (national at least 100 000).
    pub zero_claim_raise_fen: i64,
    /// The region's original critical-illness cap, in fen; without it the raises are not capped.
    pub original_cap_fen: Option<i64>,
    /// Both raises together at most this share of the original cap, in percent (national 20).
    pub max_share_percent: u8,
    /// A lower share for people returning after a break (38号 "可降低"); None: the same share.
    pub returning_share_percent: Option<u8>,
}

impl Default for RewardRules {
    fn default() -> Self {
        RewardRules {
            continuous_after_years: 4,
            continuous_raise_fen: 100_000,
            keep_earned_after_break: false,
            employee_years_count: true,
            bought_back_years_count: false,
            years_counted_from: None,
            zero_claim_raise_fen: 100_000,
            original_cap_fen: None,
            max_share_percent: 20,
            returning_share_percent: None,
        }
    }
}

/// A setting with an impossible value: the setting's key and why, in Chinese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("待遇设置 {field}：{message}")]
pub struct CoverRulesError {
    pub field: String,
    pub message: String,
}

impl CoverRulesError {
    pub const CODE: &'static str = "INVALID_FEE_POLICY";

    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoverRulesError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Largest number of months any wait setting may name.
pub const MAX_SETTING_MONTHS: u8 = 24;
/// Largest number of days an exempt group or newborn tier may name (three years).
pub const MAX_SETTING_DAYS: u16 = 1096;
/// Largest raise of the cap per step, in fen (100 000 元).
pub const MAX_RAISE_FEN: i64 = 10_000_000;

impl CoverRules {
    /// Checks every setting against the others and against the fee year's collection window.
    pub fn check(
        &self,
        fee_year: FeeYear,
        window: &CollectionWindow,
    ) -> Result<(), CoverRulesError> {
        let months = |field: &str, value: u8| {
            if value > MAX_SETTING_MONTHS {
                Err(CoverRulesError::new(
                    field,
                    format!("应为0至{MAX_SETTING_MONTHS}个月，当前为{value}"),
                ))
            } else {
                Ok(())
            }
        };
        let r = &self.reminders;
        if r.days_before_close > crate::reminders::MAX_DAYS_BEFORE_CLOSE {
            return Err(CoverRulesError::new(
                "reminders.days_before_close",
                format!(
                    "应为0至{}天，当前为{}",
                    crate::reminders::MAX_DAYS_BEFORE_CLOSE,
                    r.days_before_close
                ),
            ));
        }
        if !(1..=crate::reminders::MAX_INTERVAL_DAYS).contains(&r.interval_days) {
            return Err(CoverRulesError::new(
                "reminders.interval_days",
                format!(
                    "应为1至{}天，当前为{}",
                    crate::reminders::MAX_INTERVAL_DAYS,
                    r.interval_days
                ),
            ));
        }
        let w = &self.waiting;
        months("waiting.fixed_months", w.fixed_months)?;
        months("waiting.months_per_gap_year", w.months_per_gap_year)?;
        months("waiting.floor_months", w.floor_months)?;
        if !(1..=20).contains(&w.floor_after_gap_years) {
            return Err(CoverRulesError::new(
                "waiting.floor_after_gap_years",
                format!("应为1至20年，当前为{}", w.floor_after_gap_years),
            ));
        }
        let year = i32::from(fee_year.get());
        let year_end = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(window.closes());
        if let Some(ext) = w.extension_until {
            if ext <= window.closes() {
                return Err(CoverRulesError::new(
                    "waiting.extension_until",
                    format!("延长期应在征缴期结束（{}）之后", window.closes()),
                ));
            }
            if ext > year_end {
                return Err(CoverRulesError::new(
                    "waiting.extension_until",
                    format!("延长期不能超过待遇年度末（{year_end}）"),
                ));
            }
        }
        if let Some(last) = w.last_date {
            let earliest = w.extension_until.unwrap_or(window.closes());
            if last < earliest {
                return Err(CoverRulesError::new(
                    "waiting.last_date",
                    format!("最后缴费日不能早于征缴期或延长期结束（{earliest}）"),
                ));
            }
            if last > year_end {
                return Err(CoverRulesError::new(
                    "waiting.last_date",
                    format!("最后缴费日不能晚于待遇年度末（{year_end}）"),
                ));
            }
        }
        let mut previous = 0;
        for (i, tier) in self.newborn_tiers.iter().enumerate() {
            let field = format!("newborn_tiers[{i}].within_days");
            if tier.within_days == 0 || tier.within_days > MAX_SETTING_DAYS {
                return Err(CoverRulesError::new(
                    field,
                    format!("应为1至{MAX_SETTING_DAYS}天，当前为{}", tier.within_days),
                ));
            }
            if tier.within_days <= previous {
                return Err(CoverRulesError::new(field, "各档天数应从小到大排列"));
            }
            previous = tier.within_days;
        }
        for (i, rule) in self.exempt_groups.iter().enumerate() {
            if self.exempt_groups[..i]
                .iter()
                .any(|r| r.group == rule.group)
            {
                return Err(CoverRulesError::new(
                    format!("exempt_groups[{i}].group"),
                    format!("“{}”重复", rule.group.name_zh()),
                ));
            }
            if let Some(days) = rule.within_days {
                if days == 0 || days > MAX_SETTING_DAYS {
                    return Err(CoverRulesError::new(
                        format!("exempt_groups[{i}].within_days"),
                        format!("应为1至{MAX_SETTING_DAYS}天，当前为{days}"),
                    ));
                }
            }
        }
        let e = &self.from_employee;
        if e.min_years_insured.is_some_and(|y| y > 30) {
            return Err(CoverRulesError::new(
                "from_employee.min_years_insured",
                "应为0至30年",
            ));
        }
        months("from_employee.max_gap_months", e.max_gap_months)?;
        months("from_employee.max_wait_months", e.max_wait_months)?;
        let r = &self.rewards;
        if !(1..=30).contains(&r.continuous_after_years) {
            return Err(CoverRulesError::new(
                "rewards.continuous_after_years",
                format!("应为1至30年，当前为{}", r.continuous_after_years),
            ));
        }
        for (field, fen) in [
            ("rewards.continuous_raise_fen", r.continuous_raise_fen),
            ("rewards.zero_claim_raise_fen", r.zero_claim_raise_fen),
        ] {
            if !(0..=MAX_RAISE_FEN).contains(&fen) {
                return Err(CoverRulesError::new(
                    field,
                    format!("应为0至{MAX_RAISE_FEN}分（10万元），当前为{fen}"),
                ));
            }
        }
        if let Some(cap) = r.original_cap_fen {
            if !(1..=1_000_000_000).contains(&cap) {
                return Err(CoverRulesError::new(
                    "rewards.original_cap_fen",
                    "应为1分至1000万元之间的整数分",
                ));
            }
        }
        if r.max_share_percent > 100 {
            return Err(CoverRulesError::new(
                "rewards.max_share_percent",
                format!("应为0至100，当前为{}", r.max_share_percent),
            ));
        }
        if let Some(share) = r.returning_share_percent {
            if share > r.max_share_percent {
                return Err(CoverRulesError::new(
                    "rewards.returning_share_percent",
                    format!(
                        "断保后再参保的比例不能高于 max_share_percent（{}）",
                        r.max_share_percent
                    ),
                ));
            }
        }
        if let Some(from) = r.years_counted_from {
            if !(2000..=year).contains(&i32::from(from)) {
                return Err(CoverRulesError::new(
                    "rewards.years_counted_from",
                    format!("应为2000至{year}之间的年份"),
                ));
            }
        }
        self.channels
            .validate()
            .map_err(|(field, message)| CoverRulesError::new(field, message))?;
        Ok(())
    }

    /// The settings in a few Chinese lines, for the console and the command line.
    pub fn summary_zh(&self, fee_year: FeeYear) -> Vec<String> {
        let w = &self.waiting;
        let count = match w.gap_year_count {
            GapYearCount::N => "断保N年计N年",
            GapYearCount::NMinus1 => "断保N年计N−1年",
        };
        let anchor = match w.in_window_anchor {
            InWindowAnchor::BenefitYearStart => "集中缴费期内缴费的自1月1日起算",
            InWindowAnchor::Payment => "自缴费之日起算",
        };
        let start = match w.start_rule {
            StartRule::PaymentDate => "等待期满之日起享受待遇",
            StartRule::NextDay => "等待期满次日起享受待遇",
            StartRule::FirstOfMonthAfterWait => "缴费当月计为第1个月，等待期满次月1日起享受待遇",
        };
        let mut lines = vec![format!(
            "待遇等待期：固定{}个月，每断保1年加{}个月（{count}），连续断保{}年及以上合计不少于{}个月；{anchor}；{start}",
            w.fixed_months, w.months_per_gap_year, w.floor_after_gap_years, w.floor_months
        )];
        let mut dates = Vec::new();
        if let Some(ext) = w.extension_until {
            dates.push(format!("延长缴费期至{ext}（自缴费之日起享受待遇）"));
        }
        dates.push(format!("本年度最后缴费日{}", self.last_date(fee_year)));
        dates.push(match w.past_year_end {
            PastYearEnd::Refuse => "等待期跨年的不予受理".to_owned(),
            PastYearEnd::AcceptWithNotice => "等待期跨年的缴费前告知后受理".to_owned(),
        });
        lines.push(dates.join("；"));
        let tiers: Vec<String> = self
            .newborn_tiers
            .iter()
            .map(|t| {
                let from = match t.cover_from {
                    NewbornStart::Birth => "自出生之日",
                    NewbornStart::PaymentDate => "自缴费之日",
                    NewbornStart::NextDay => "自缴费次日",
                };
                format!("出生{}天内参保{from}起", t.within_days)
            })
            .collect();
        if !tiers.is_empty() {
            lines.push(format!("新生儿：{}", tiers.join("，")));
        }
        let r = &self.rewards;
        let mut reward = format!(
            "大病保险激励：连续参保满{}年后每年提高{}元，零报销每年提高{}元",
            r.continuous_after_years,
            r.continuous_raise_fen / 100,
            r.zero_claim_raise_fen / 100
        );
        if let Some(cap) = r.original_cap_fen {
            reward.push_str(&format!(
                "，合计不超过原限额{}元的{}%",
                cap / 100,
                r.max_share_percent
            ));
        }
        if r.keep_earned_after_break {
            reward.push_str("，断保后已获激励保留");
        }
        lines.push(reward);
        let r = &self.reminders;
        lines.push(if r.days_before_close == 0 {
            "缴费提醒：不发送".to_owned()
        } else {
            format!(
                "缴费提醒：征缴期结束前{}天起，同一人每{}天至多提醒1次",
                r.days_before_close, r.interval_days
            )
        });
        lines.push(self.family_account.summary_zh());
        lines.extend(self.late.summary_zh());
        lines.extend(self.channels.summary_zh());
        lines
    }

    /// The last day the benefit year can be bought: the setting, or 31 December.
    pub fn last_date(&self, fee_year: FeeYear) -> NaiveDate {
        self.waiting.last_date.unwrap_or_else(|| year_end(fee_year))
    }
}

/// 31 December of the benefit year.
pub fn year_end(fee_year: FeeYear) -> NaiveDate {
    NaiveDate::from_ymd_opt(i32::from(fee_year.get()), 12, 31).unwrap_or(NaiveDate::MAX)
}

/// 1 January of the benefit year.
pub fn year_start(fee_year: FeeYear) -> NaiveDate {
    NaiveDate::from_ymd_opt(i32::from(fee_year.get()), 1, 1).unwrap_or(NaiveDate::MIN)
}

/// 1 September of a date's year.
pub(crate) fn september_first(date: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(date.year(), 9, 1).unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn window() -> CollectionWindow {
        CollectionWindow::new(d(2026, 9, 1), d(2026, 12, 31)).unwrap()
    }

    fn year() -> FeeYear {
        FeeYear::new(2027).unwrap()
    }

    #[test]
    fn the_national_defaults_pass_their_own_check() {
        let rules = CoverRules::default();
        rules.check(year(), &window()).unwrap();
        assert_eq!(rules.waiting.fixed_months, 3);
        assert_eq!(rules.waiting.months_per_gap_year, 1);
        assert_eq!(rules.waiting.floor_months, 6);
        assert_eq!(rules.from_employee.max_wait_months, 6);
        assert_eq!(rules.rewards.max_share_percent, 20);
        assert_eq!(rules.exempt_groups.len(), ExemptGroup::ALL.len());
    }

    #[test]
    fn impossible_values_are_refused_with_the_setting_named() {
        let mut rules = CoverRules::default();
        rules.waiting.fixed_months = 40;
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "waiting.fixed_months"
        );
        let mut rules = CoverRules::default();
        rules.waiting.extension_until = Some(d(2026, 12, 1));
        let e = rules.check(year(), &window()).unwrap_err();
        assert_eq!(e.field, "waiting.extension_until");
        assert!(e.to_string().contains("征缴期结束"), "{e}");
        let mut rules = CoverRules::default();
        rules.newborn_tiers.reverse();
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "newborn_tiers[1].within_days"
        );
        let mut rules = CoverRules::default();
        rules
            .exempt_groups
            .push(ExemptGroupRule::national(ExemptGroup::Veteran));
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "exempt_groups[7].group"
        );
        let mut rules = CoverRules::default();
        rules.rewards.returning_share_percent = Some(30);
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "rewards.returning_share_percent"
        );
        let mut rules = CoverRules::default();
        rules.reminders.interval_days = 0;
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "reminders.interval_days"
        );
        let mut rules = CoverRules::default();
        rules.reminders.days_before_close = 200;
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "reminders.days_before_close"
        );
        let mut rules = CoverRules::default();
        rules.waiting.last_date = Some(d(2028, 1, 1));
        assert_eq!(
            rules.check(year(), &window()).unwrap_err().field,
            "waiting.last_date"
        );
    }
}
