//! Cover under the 2025 rules (国办发〔2024〕38号): a person's cover history, the gap years in it,
//! the day cover starts after a payment (the waiting period, 待遇等待期), what buying back gap years
//! does (补缴修复), and the raises of the critical-illness cap (大病保险最高支付限额).
//!
//! Pure functions of the region's settings ([`CoverRules`], kept in the fee policy) and the facts
//! given; storage gathers the facts, the domain decides.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::cover_rules::{
    september_first, year_start, CoverRules, ExemptGroup, ExemptStart, GapRules, GapYearCount,
    InWindowAnchor, NewbornStart, PastYearEnd, RewardRules, StartRule, WaitingRules,
};
use crate::enrolment::Assessment;
use crate::fee::{Category, Component, FeePolicy, FeeYear};
use crate::money::Fen;

/// How a person was insured in one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YearCover {
    /// 城乡居民基本医疗保险.
    Resident,
    /// 职工基本医疗保险.
    Employee,
    /// Not insured (断保).
    None,
}

impl YearCover {
    pub fn code(self) -> &'static str {
        match self {
            YearCover::Resident => "resident",
            YearCover::Employee => "employee",
            YearCover::None => "none",
        }
    }

    pub fn from_code(code: &str) -> Option<YearCover> {
        [YearCover::Resident, YearCover::Employee, YearCover::None]
            .into_iter()
            .find(|c| c.code() == code)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            YearCover::Resident => "居民医保",
            YearCover::Employee => "职工医保",
            YearCover::None => "未参保",
        }
    }

    pub fn insured(self) -> bool {
        self != YearCover::None
    }
}

/// A person's cover by benefit year, and the gap years bought back. A year not on record is a year
/// not insured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoverHistory {
    years: BTreeMap<u16, YearCover>,
    bought_back: BTreeSet<u16>,
}

impl CoverHistory {
    pub fn new() -> CoverHistory {
        CoverHistory::default()
    }

    /// Records a year. Two sources for one year keep the insured one, resident insurance first (a
    /// person who changed scheme in the year was insured in it).
    pub fn record(&mut self, year: u16, cover: YearCover) {
        let entry = self.years.entry(year).or_insert(cover);
        *entry = (*entry).min(cover);
    }

    /// The same, for building a history in one expression.
    pub fn with(mut self, year: u16, cover: YearCover) -> CoverHistory {
        self.record(year, cover);
        self
    }

    /// Records a gap year as bought back (补缴): it stays a year without cover.
    pub fn record_bought_back(&mut self, year: u16) {
        self.bought_back.insert(year);
    }

    pub fn cover_in(&self, year: u16) -> YearCover {
        self.years.get(&year).copied().unwrap_or(YearCover::None)
    }

    pub fn is_bought_back(&self, year: u16) -> bool {
        self.bought_back.contains(&year)
    }

    /// The years on record, in order.
    pub fn years(&self) -> impl Iterator<Item = (u16, YearCover)> + '_ {
        self.years.iter().map(|(y, c)| (*y, *c))
    }

    /// Every year on record or bought back, oldest first: the year, its cover (a bought-back year
    /// not otherwise on record is not insured), and whether it was bought back.
    pub fn entries(&self) -> Vec<(u16, YearCover, bool)> {
        let mut years: BTreeSet<u16> = self.years.keys().copied().collect();
        years.extend(self.bought_back.iter().copied());
        years
            .into_iter()
            .map(|y| (y, self.cover_in(y), self.is_bought_back(y)))
            .collect()
    }

    /// The first insured year before `before`, if any.
    pub fn first_insured_before(&self, before: u16) -> Option<u16> {
        self.years
            .range(..before)
            .find(|(_, c)| c.insured())
            .map(|(y, _)| *y)
    }
}

/// The gap years that count for a benefit year, as the region's [`GapRules`] find them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gaps {
    /// Uninsured years after the first insured one that count, in order.
    pub years: Vec<u16>,
    /// Of those, the ones bought back.
    pub bought_back: Vec<u16>,
    /// The longest run of consecutive counted gap years.
    pub longest_run: u16,
    /// Never insured before the benefit year.
    pub first_time: bool,
}

/// The gap years of `history` that count for `benefit_year`. A person insured in the year before is
/// continuously insured: no gap years, whatever breaks they had and served waits for earlier.
/// Otherwise the current break counts (the run of uninsured years up to the year before), and with
/// `breaks_add_up` every earlier break too; years before the first insured one are no break, and
/// years before 2025 count only where the region says.
pub fn gaps(rules: &GapRules, history: &CoverHistory, benefit_year: FeeYear) -> Gaps {
    let y = benefit_year.get();
    let Some(first) = history.first_insured_before(y) else {
        return Gaps {
            years: Vec::new(),
            bought_back: Vec::new(),
            longest_run: 0,
            first_time: true,
        };
    };
    let from = if rules.count_years_before_2025 {
        first + 1
    } else {
        (first + 1).max(2025)
    };
    let mut years: Vec<u16> = (from..y)
        .filter(|year| !history.cover_in(*year).insured())
        .collect();
    if years.last() != Some(&(y - 1)) {
        years.clear();
    } else if !rules.breaks_add_up {
        // Only the current break: walk back from the year before while the years stay consecutive.
        let mut start = years.len() - 1;
        while start > 0 && years[start - 1] + 1 == years[start] {
            start -= 1;
        }
        years.drain(..start);
    }
    let mut longest_run = 0;
    let mut run = 0;
    for (i, year) in years.iter().enumerate() {
        run = if i > 0 && years[i - 1] + 1 == *year {
            run + 1
        } else {
            1
        };
        longest_run = longest_run.max(run);
    }
    let bought_back = years
        .iter()
        .copied()
        .filter(|year| history.is_bought_back(*year))
        .collect();
    Gaps {
        years,
        bought_back,
        longest_run,
        first_time: false,
    }
}

/// A waiting period in months, and how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WaitMonths {
    /// Fixed months (固定待遇等待期).
    pub fixed: u8,
    /// Variable months for the gap years not bought back (变动待遇等待期).
    pub variable: u8,
    /// Whether the floor after long breaks raised the sum.
    pub floor_applied: bool,
    pub total: u8,
}

impl WaitMonths {
    pub const NONE: WaitMonths = WaitMonths {
        fixed: 0,
        variable: 0,
        floor_applied: false,
        total: 0,
    };
}

/// The wait of a payer outside the window or not continuously insured, with `gaps` of which
/// `bought` years are bought back: the fixed months, the variable months for the counted gap years
/// not bought back, and the floor after a long run of gap years.
pub fn wait_months(w: &WaitingRules, gaps: &Gaps, bought: usize) -> WaitMonths {
    let counted = match w.gap_year_count {
        GapYearCount::N => gaps.years.len(),
        GapYearCount::NMinus1 => gaps.years.len().saturating_sub(1),
    };
    let remaining = counted.saturating_sub(bought);
    let variable = u8::try_from(remaining.saturating_mul(usize::from(w.months_per_gap_year)))
        .unwrap_or(u8::MAX);
    let fixed = w.fixed_months;
    let sum = fixed.saturating_add(variable);
    let floor_applied =
        gaps.longest_run >= u16::from(w.floor_after_gap_years) && sum < w.floor_months;
    WaitMonths {
        fixed,
        variable,
        floor_applied,
        total: if floor_applied { w.floor_months } else { sum },
    }
}

/// A group membership that may spare a person the wait, with the date of the event that makes it
/// (discharge, move, release, graduation, enrolment, recognition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExemptClaim {
    pub group: ExemptGroup,
    pub event_date: NaiveDate,
}

/// The end of a person's employee insurance, for a move to resident insurance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeftEmployee {
    /// The last day covered by employee insurance.
    pub ended_on: NaiveDate,
    /// Months continuously insured in employee insurance up to then.
    pub continuous_months: u16,
}

/// What yibao knows of a person for the 2025 rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoverFacts {
    pub birth_date: Option<NaiveDate>,
    /// An adult on the policy's age reference date.
    pub adult: bool,
    pub history: CoverHistory,
    pub claims: Vec<ExemptClaim>,
    pub left_employee: Option<LeftEmployee>,
}

/// Why cover starts when it does; each a stable code with a Chinese text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoverReason {
    /// Paid in the window and continuously insured: covered the whole benefit year.
    InWindow,
    /// Paid in the extension after the window and continuously insured: from the payment date.
    Extension,
    /// A waiting period: outside the window, or not continuously insured.
    Waiting,
    /// A newborn paid for within a tier's days.
    Newborn,
    /// A member of an exempt group, within its time.
    ExemptGroup { group: ExemptGroup },
    /// From employee insurance after the required years, within the gap: covered back to the day
    /// after employee insurance ended.
    FromEmployee,
    /// From employee insurance after the required years, a longer gap: the wait at most the
    /// region's months.
    FromEmployeeCapped,
}

impl CoverReason {
    pub fn code(self) -> &'static str {
        match self {
            CoverReason::InWindow => "IN_WINDOW",
            CoverReason::Extension => "EXTENSION",
            CoverReason::Waiting => "WAITING",
            CoverReason::Newborn => "NEWBORN",
            CoverReason::ExemptGroup { .. } => "EXEMPT_GROUP",
            CoverReason::FromEmployee => "FROM_EMPLOYEE",
            CoverReason::FromEmployeeCapped => "FROM_EMPLOYEE_CAPPED",
        }
    }

    pub fn text_zh(self) -> String {
        match self {
            CoverReason::InWindow => "集中缴费期内缴费，全年享受待遇".to_owned(),
            CoverReason::Extension => "在延长缴费期内缴费，自缴费之日起享受待遇".to_owned(),
            CoverReason::Waiting => "集中缴费期外缴费或未连续参保，设待遇等待期".to_owned(),
            CoverReason::Newborn => "新生儿在规定时间内参保，不设待遇等待期".to_owned(),
            CoverReason::ExemptGroup { group } => {
                format!("{}在规定时间内参保，不设待遇等待期", group.name_zh())
            }
            CoverReason::FromEmployee => {
                "由职工医保转入且中断不超过规定月数，中断期间待遇予以追溯".to_owned()
            }
            CoverReason::FromEmployeeCapped => {
                "由职工医保转入，待遇等待期不超过规定月数".to_owned()
            }
        }
    }

    /// Whether the reason grants cover back before the payment date (a wait may also start before
    /// it, when an in-window wait is counted from 1 January).
    pub fn grants_back(self) -> bool {
        matches!(
            self,
            CoverReason::InWindow
                | CoverReason::Newborn
                | CoverReason::ExemptGroup { .. }
                | CoverReason::FromEmployee
        )
    }
}

/// When cover starts for a payment, and how that was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverStart {
    /// The first day covered.
    pub starts_on: NaiveDate,
    pub reason: CoverReason,
    /// The wait served (none for the reasons without one).
    pub wait: WaitMonths,
    /// The day the wait is counted from.
    pub anchor: NaiveDate,
    pub gap_years: Vec<u16>,
    pub bought_back_years: Vec<u16>,
    /// False when the wait ends after 31 December and the region accepts the payment anyway.
    pub covered_this_year: bool,
}

impl CoverStart {
    /// One line for a resident, a teller or a receipt.
    pub fn summary_zh(&self) -> String {
        let mut text = format!("{}：", self.reason.text_zh());
        if self.wait.total > 0 {
            text.push_str(&format!("等待期{}个月", self.wait.total));
            let mut parts = Vec::new();
            if self.wait.fixed > 0 {
                parts.push(format!("固定{}个月", self.wait.fixed));
            }
            if self.wait.variable > 0 {
                parts.push(format!(
                    "断保{}年变动{}个月",
                    self.gap_years.len(),
                    self.wait.variable
                ));
            }
            if !self.bought_back_years.is_empty() {
                parts.push(format!("已补缴{}年", self.bought_back_years.len()));
            }
            if self.wait.floor_applied {
                parts.push("连续断保多年，不少于规定的最短等待期".to_owned());
            }
            if !parts.is_empty() {
                text.push_str(&format!("（{}）", parts.join("，")));
            }
            text.push('，');
        }
        if self.covered_this_year {
            text.push_str(&format!("自{}起享受待遇", self.starts_on));
        } else {
            text.push_str(&format!(
                "等待期至{}才届满，本待遇年度内不享受待遇",
                self.starts_on
            ));
        }
        text
    }
}

/// Why a payment for the benefit year is not accepted; each a stable code with a Chinese text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CoverRefusal {
    #[error("本年度集中缴费期自{opens}开始，尚未开始缴费")]
    WindowNotOpen { opens: NaiveDate },
    #[error("本年度缴费已于{last_date}截止，不能再缴纳本年度保费")]
    YearClosed { last_date: NaiveDate },
    #[error("本年度集中缴费期已于{closed}结束，本统筹区不接受逾期缴费，请到乡镇/社区服务站咨询")]
    LateNotAccepted { closed: NaiveDate },
    #[error(
        "现在缴费，待遇等待期至{would_start}才届满，已超过本待遇年度，本统筹区不再受理本年度缴费"
    )]
    WaitPastYearEnd { would_start: NaiveDate },
}

impl CoverRefusal {
    pub fn code(self) -> &'static str {
        match self {
            CoverRefusal::WindowNotOpen { .. } => "WINDOW_NOT_OPEN",
            CoverRefusal::YearClosed { .. } => "YEAR_CLOSED",
            CoverRefusal::LateNotAccepted { .. } => "LATE_NOT_ACCEPTED",
            CoverRefusal::WaitPastYearEnd { .. } => "WAIT_PAST_YEAR_END",
        }
    }
}

fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(date)
}

fn plus_months(date: NaiveDate, months: u8) -> NaiveDate {
    date.checked_add_months(Months::new(u32::from(months)))
        .unwrap_or(NaiveDate::MAX)
}

/// The first day covered after waiting `months` from `anchor` by the region's start rule.
pub fn start_after_wait(rule: StartRule, anchor: NaiveDate, months: u8) -> NaiveDate {
    match rule {
        StartRule::PaymentDate => plus_months(anchor, months),
        StartRule::NextDay => next_day(plus_months(anchor, months)),
        StartRule::FirstOfMonthAfterWait if months == 0 => anchor,
        StartRule::FirstOfMonthAfterWait => {
            plus_months(anchor.with_day(1).unwrap_or(anchor), months)
        }
    }
}

/// When cover starts if `facts`' person pays the benefit year of `policy` on `paid_on`: the
/// earliest of what the normal rules give and what any exempt group, newborn tier or move from
/// employee insurance grants; or why the year cannot be bought that day.
pub fn cover_start(
    policy: &FeePolicy,
    facts: &CoverFacts,
    paid_on: NaiveDate,
) -> Result<CoverStart, CoverRefusal> {
    let rules = policy.cover_rules();
    let w = &rules.waiting;
    let year = policy.fee_year();
    let window = policy.window();
    let first_day = year_start(year);
    if paid_on < window.opens() {
        return Err(CoverRefusal::WindowNotOpen {
            opens: window.opens(),
        });
    }
    let last_date = rules.last_date(year);
    if paid_on > last_date {
        return Err(CoverRefusal::YearClosed { last_date });
    }
    let gaps = gaps(&rules.gaps, &facts.history, year);
    let continuous = gaps.years.is_empty()
        && !(gaps.first_time && facts.adult && rules.gaps.first_time_adult_not_continuous);
    let bought = gaps.bought_back.len();
    let start = |starts_on: NaiveDate, reason: CoverReason, wait: WaitMonths, anchor: NaiveDate| {
        CoverStart {
            starts_on: starts_on.max(first_day),
            reason,
            wait,
            anchor,
            gap_years: gaps.years.clone(),
            bought_back_years: gaps.bought_back.clone(),
            covered_this_year: true,
        }
    };

    let mut granted: Vec<CoverStart> = special_starts(rules, facts, paid_on, first_day)
        .into_iter()
        .map(|(on, reason)| start(on, reason, WaitMonths::NONE, paid_on))
        .collect();

    let employee_qualifies = facts.left_employee.filter(|left| {
        rules
            .from_employee
            .min_years_insured
            .is_none_or(|years| left.continuous_months >= u16::from(years) * 12)
    });
    if let Some(left) = employee_qualifies {
        if left.ended_on < paid_on
            && paid_on <= plus_months(left.ended_on, rules.from_employee.max_gap_months)
        {
            granted.push(start(
                next_day(left.ended_on),
                CoverReason::FromEmployee,
                WaitMonths::NONE,
                left.ended_on,
            ));
        }
    }

    let extension = w.extension_until.filter(|e| *e > window.closes());
    let normal = if window.contains(paid_on) {
        if continuous {
            Some(start(
                first_day,
                CoverReason::InWindow,
                WaitMonths::NONE,
                first_day,
            ))
        } else {
            let anchor = match w.in_window_anchor {
                InWindowAnchor::BenefitYearStart => first_day,
                InWindowAnchor::Payment => paid_on,
            };
            let wait = wait_months(w, &gaps, bought);
            Some(waiting(w, anchor, wait, employee_qualifies, rules, &start))
        }
    } else if extension.is_some_and(|e| paid_on <= e) {
        if continuous {
            Some(start(
                paid_on,
                CoverReason::Extension,
                WaitMonths::NONE,
                paid_on,
            ))
        } else {
            let wait = wait_months(w, &gaps, bought);
            Some(waiting(w, paid_on, wait, employee_qualifies, rules, &start))
        }
    } else if policy.late_payment_allowed() {
        let wait = wait_months(w, &gaps, bought);
        Some(waiting(w, paid_on, wait, employee_qualifies, rules, &start))
    } else {
        None
    };

    let chosen = granted
        .into_iter()
        .chain(normal)
        .min_by_key(|s| s.starts_on)
        .ok_or(CoverRefusal::LateNotAccepted {
            closed: extension.unwrap_or(window.closes()),
        })?;
    if chosen.starts_on > crate::cover_rules::year_end(year) {
        return match w.past_year_end {
            PastYearEnd::Refuse => Err(CoverRefusal::WaitPastYearEnd {
                would_start: chosen.starts_on,
            }),
            PastYearEnd::AcceptWithNotice => Ok(CoverStart {
                covered_this_year: false,
                ..chosen
            }),
        };
    }
    Ok(chosen)
}

/// A waiting period from `anchor`, at most the region's months for a qualifying move from employee
/// insurance.
fn waiting(
    w: &WaitingRules,
    anchor: NaiveDate,
    wait: WaitMonths,
    employee: Option<LeftEmployee>,
    rules: &CoverRules,
    start: &impl Fn(NaiveDate, CoverReason, WaitMonths, NaiveDate) -> CoverStart,
) -> CoverStart {
    let cap = rules.from_employee.max_wait_months;
    let (wait, reason) = match employee {
        Some(_) if wait.total > cap => (
            WaitMonths {
                total: cap,
                floor_applied: false,
                ..wait
            },
            CoverReason::FromEmployeeCapped,
        ),
        _ => (wait, CoverReason::Waiting),
    };
    start(
        start_after_wait(w.start_rule, anchor, wait.total),
        reason,
        wait,
        anchor,
    )
}

/// The starts granted without a wait: newborn tiers and exempt groups within their times.
fn special_starts(
    rules: &CoverRules,
    facts: &CoverFacts,
    paid_on: NaiveDate,
    first_day: NaiveDate,
) -> Vec<(NaiveDate, CoverReason)> {
    let mut starts = Vec::new();
    if let Some(birth) = facts.birth_date.filter(|b| *b <= paid_on) {
        let days = (paid_on - birth).num_days();
        if let Some(tier) = rules
            .newborn_tiers
            .iter()
            .find(|t| days <= i64::from(t.within_days))
        {
            let on = match tier.cover_from {
                NewbornStart::Birth => birth,
                NewbornStart::PaymentDate => paid_on,
                NewbornStart::NextDay => next_day(paid_on),
            };
            starts.push((on, CoverReason::Newborn));
        }
    }
    for claim in &facts.claims {
        let Some(rule) = rules.exempt_groups.iter().find(|r| r.group == claim.group) else {
            continue;
        };
        let in_time = rule
            .within_days
            .is_none_or(|days| (paid_on - claim.event_date).num_days() <= i64::from(days));
        if !in_time {
            continue;
        }
        let on = match rule.cover_from {
            ExemptStart::BenefitYearStart => first_day,
            ExemptStart::PaymentDate => paid_on,
            ExemptStart::NextDay => next_day(paid_on),
            ExemptStart::SeptemberFirst => september_first(claim.event_date),
        };
        starts.push((on, CoverReason::ExemptGroup { group: claim.group }));
    }
    starts
}

/// What buying back gap years (补缴修复) would do for a person paying on `paid_on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackPaymentOffer {
    /// The gap years that count.
    pub gap_years: Vec<u16>,
    /// Of those, already bought back.
    pub already_bought: Vec<u16>,
    /// The years worth buying, most recent first: each shortens the wait by a month; years past
    /// the floor are not sold.
    pub effective_years: Vec<u16>,
    /// The wait now, and after buying every effective year.
    pub wait_now: WaitMonths,
    pub wait_after: WaitMonths,
}

/// The gap years a person may buy back and what each buys: a shorter wait, never cover for the gap
/// years themselves.
pub fn back_payment_offer(policy: &FeePolicy, facts: &CoverFacts) -> BackPaymentOffer {
    let rules = policy.cover_rules();
    let gaps = gaps(&rules.gaps, &facts.history, policy.fee_year());
    let bought = gaps.bought_back.len();
    let mut unbought: Vec<u16> = gaps
        .years
        .iter()
        .copied()
        .filter(|y| !facts.history.is_bought_back(*y))
        .collect();
    unbought.reverse();
    let wait_now = wait_months(&rules.waiting, &gaps, bought);
    let mut effective = 0;
    let mut wait_after = wait_now;
    while effective < unbought.len() {
        let next = wait_months(&rules.waiting, &gaps, bought + effective + 1);
        if next.total >= wait_after.total {
            break;
        }
        wait_after = next;
        effective += 1;
    }
    unbought.truncate(effective);
    BackPaymentOffer {
        gap_years: gaps.years,
        already_bought: gaps.bought_back,
        effective_years: unbought,
        wait_now,
        wait_after,
    }
}

/// Why a year cannot be bought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackPaymentRefusal {
    #[error("{year}年不是可补缴的断保年度")]
    NotAGapYear { year: u16 },
    #[error("{year}年已补缴")]
    AlreadyBought { year: u16 },
    #[error("补缴{year}年不能再缩短待遇等待期（已达最短等待期），不予补缴")]
    ShortensNothing { year: u16 },
    #[error("没有可缩短待遇等待期的断保年度，无需补缴")]
    NothingToBuy,
    #[error("{fee_year}年度保费已缴纳，待遇享受时间已经确定，补缴不再缩短等待期")]
    ContributionPaid { fee_year: u16 },
}

impl BackPaymentRefusal {
    pub fn code(self) -> &'static str {
        match self {
            BackPaymentRefusal::NotAGapYear { .. } => "NOT_A_GAP_YEAR",
            BackPaymentRefusal::AlreadyBought { .. } => "ALREADY_BOUGHT_BACK",
            BackPaymentRefusal::ShortensNothing { .. } => "BACK_PAYMENT_SHORTENS_NOTHING",
            BackPaymentRefusal::NothingToBuy => "NOTHING_TO_BUY_BACK",
            BackPaymentRefusal::ContributionPaid { .. } => "CONTRIBUTION_ALREADY_PAID",
        }
    }
}

/// The item's name on a payable or receipt (征收品目): the resident insurance, and for a
/// back-payment the gap year it buys back.
pub fn item_name_zh(bought_back_year: Option<u16>) -> String {
    match bought_back_year {
        Some(year) => format!("城乡居民基本医疗保险（补缴{year}年度）"),
        None => "城乡居民基本医疗保险".to_owned(),
    }
}

/// What a back-payment of `bought_year` does for `benefit_year`, for every screen and receipt.
pub fn back_payment_text_zh(bought_year: u16, benefit_year: u16) -> String {
    format!(
        "补缴{bought_year}年度（补缴修复）：不享受{bought_year}年度医保待遇，该年度的医疗费用不予报销；\
         在缴纳{benefit_year}年度保费之前或同时缴纳，可使{benefit_year}年度待遇等待期缩短1个月"
    )
}

/// What one bought-back year costs (补缴修复): the benefit year's individual standard for the
/// person's category, in full, without subsidy or relief (38号: 按当年个人缴费标准补缴，不享受
/// 财政补助). The category is the one the person is assessed in for the benefit year.
pub fn back_payment_assessment(policy: &FeePolicy, category: Category) -> Assessment {
    let amount = policy.amount_for(category);
    Assessment {
        category,
        amount: amount.total(),
        components: [
            (Component::Basic, amount.component(Component::Basic)),
            (
                Component::CriticalIllness,
                amount.component(Component::CriticalIllness),
            ),
            (
                Component::LongTermCare,
                amount.component(Component::LongTermCare),
            ),
        ],
        exempt: false,
        relief_applied: None,
        policy_amount: amount.total(),
    }
}

impl BackPaymentOffer {
    /// The years to sell for a request: each year named, checked; every effective year when none
    /// is named. A year named twice is sold once.
    pub fn years_to_sell(&self, requested: &[u16]) -> Result<Vec<u16>, BackPaymentRefusal> {
        if requested.is_empty() {
            if self.effective_years.is_empty() {
                return Err(BackPaymentRefusal::NothingToBuy);
            }
            return Ok(self.effective_years.clone());
        }
        let mut years: Vec<u16> = Vec::with_capacity(requested.len());
        for year in requested {
            self.check(*year)?;
            if !years.contains(year) {
                years.push(*year);
            }
        }
        Ok(years)
    }

    /// Whether `year` may be bought back now.
    pub fn check(&self, year: u16) -> Result<(), BackPaymentRefusal> {
        if self.already_bought.contains(&year) {
            return Err(BackPaymentRefusal::AlreadyBought { year });
        }
        if !self.gap_years.contains(&year) {
            return Err(BackPaymentRefusal::NotAGapYear { year });
        }
        if !self.effective_years.contains(&year) {
            return Err(BackPaymentRefusal::ShortensNothing { year });
        }
        Ok(())
    }
}

/// One year of claims as the agency reports it (yibao holds no claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimYear {
    /// The fund reimbursed something that year.
    pub reimbursed: bool,
    /// A critical-illness claim that year used the raise.
    pub reward_used: bool,
}

/// The raise of a person's critical-illness cap for a benefit year, and how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RewardBreakdown {
    /// Continuous years through the benefit year (paid) in the current run.
    pub continuous_years: u16,
    /// Raised for the current run's years past the threshold.
    pub continuous_raise: Fen,
    /// Raised in earlier runs and kept through a break (where the region keeps them).
    pub kept_raise: Fen,
    /// Years without reimbursement since the raise was last used.
    pub zero_claim_years: u16,
    pub zero_claim_raise: Fen,
    /// The current run began after a break.
    pub returning: bool,
    /// The most both raises may add (a share of the region's original cap), if set.
    pub limit: Option<Fen>,
    /// What is added to the cap.
    pub total: Fen,
}

impl RewardBreakdown {
    pub fn summary_zh(&self) -> String {
        let mut parts = vec![format!("连续参保{}年", self.continuous_years)];
        if self.continuous_raise != Fen::ZERO {
            parts.push(format!(
                "连续参保激励{}元",
                self.continuous_raise.to_yuan_string()
            ));
        }
        if self.kept_raise != Fen::ZERO {
            parts.push(format!(
                "断保前已获激励保留{}元",
                self.kept_raise.to_yuan_string()
            ));
        }
        if self.zero_claim_raise != Fen::ZERO {
            parts.push(format!(
                "{}年未发生医保基金报销，零报销激励{}元",
                self.zero_claim_years,
                self.zero_claim_raise.to_yuan_string()
            ));
        }
        if let Some(limit) = self.limit {
            let uncapped = self.continuous_raise.as_fen()
                + self.kept_raise.as_fen()
                + self.zero_claim_raise.as_fen();
            if uncapped > limit.as_fen() {
                parts.push(format!("合计不超过{}元", limit.to_yuan_string()));
            }
        }
        format!(
            "大病保险最高支付限额提高{}元（{}）",
            self.total.to_yuan_string(),
            parts.join("，")
        )
    }
}

fn fen(amount: i64) -> Fen {
    // Bounded: settings are at most 10 million fen a step, and years at most a few hundred.
    Fen::new(amount).unwrap_or(Fen::ZERO)
}

/// The raise of the critical-illness cap for `benefit_year` (paid): continuous enrolment past the
/// threshold, years without reimbursement since the raise was last used, together at most the
/// region's share of its original cap.
pub fn critical_illness_raise(
    rules: &RewardRules,
    history: &CoverHistory,
    claims: &BTreeMap<u16, ClaimYear>,
    benefit_year: FeeYear,
) -> RewardBreakdown {
    let y = benefit_year.get();
    let first_on_record = history
        .years()
        .map(|(year, _)| year)
        .next()
        .unwrap_or(y)
        .min(y);
    let from = rules
        .years_counted_from
        .map_or(first_on_record, |from| from.max(first_on_record));
    let counts = |year: u16| {
        year == y
            || match history.cover_in(year) {
                YearCover::Resident => true,
                YearCover::Employee => rules.employee_years_count,
                YearCover::None => rules.bought_back_years_count && history.is_bought_back(year),
            }
    };
    let after = u16::from(rules.continuous_after_years);
    let earned = |run: u16| i64::from(run.saturating_sub(after)) * rules.continuous_raise_fen;
    let mut run: u16 = 0;
    let mut kept: i64 = 0;
    let mut returning = false;
    for year in from..=y {
        if counts(year) {
            run += 1;
        } else if run > 0 {
            if rules.keep_earned_after_break {
                kept += earned(run);
            }
            run = 0;
            returning = true;
        }
    }
    let mut zero_years: u16 = 0;
    for (_, claim) in claims.range(..y) {
        if claim.reward_used {
            zero_years = 0;
        }
        if !claim.reimbursed {
            zero_years += 1;
        }
    }
    let continuous = earned(run);
    let zero = i64::from(zero_years) * rules.zero_claim_raise_fen;
    let share = if returning {
        rules
            .returning_share_percent
            .unwrap_or(rules.max_share_percent)
    } else {
        rules.max_share_percent
    };
    let limit = rules
        .original_cap_fen
        .map(|cap| cap * i64::from(share) / 100);
    let sum = continuous + kept + zero;
    RewardBreakdown {
        continuous_years: run,
        continuous_raise: fen(continuous),
        kept_raise: fen(kept),
        zero_claim_years: zero_years,
        zero_claim_raise: fen(zero),
        returning,
        limit: limit.map(fen),
        total: fen(limit.map_or(sum, |l| sum.min(l))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cover_rules::{ExemptGroupRule, NewbornTier};
    use crate::fee::{Category, CategoryAmount, CollectionWindow, FeePolicyInput};
    use crate::region::RegionCode;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn policy(rules: CoverRules, opens: NaiveDate, closes: NaiveDate, late: bool) -> FeePolicy {
        let amount = CategoryAmount::including(Fen::yuan(400).unwrap(), &[]).unwrap();
        policy_of(amount, rules, opens, closes, late)
    }

    /// 青岛's 2027 policy with every category at `amount`.
    fn policy_of(
        amount: CategoryAmount,
        rules: CoverRules,
        opens: NaiveDate,
        closes: NaiveDate,
        late: bool,
    ) -> FeePolicy {
        FeePolicy::new(FeePolicyInput {
            region: RegionCode::parse("370200").unwrap(),
            fee_year: FeeYear::new(2027).unwrap(),
            amounts: Category::ALL
                .into_iter()
                .map(|c| (c, amount.clone()))
                .collect(),
            age_reference_date: d(2027, 1, 1),
            adult_age: 18,
            window: CollectionWindow::new(opens, closes).unwrap(),
            late_payment_allowed: late,
            cover_rules: rules,
        })
        .unwrap()
    }

    /// 青岛: N−1, in-window waits from 1 January, window to 31 December 2026.
    fn qingdao() -> FeePolicy {
        let mut rules = CoverRules::default();
        rules.waiting.gap_year_count = GapYearCount::NMinus1;
        policy(rules, d(2026, 9, 1), d(2026, 12, 31), true)
    }

    fn national() -> FeePolicy {
        policy(CoverRules::default(), d(2026, 9, 1), d(2026, 12, 31), true)
    }

    /// Insured as a resident through `last_insured`, not since.
    fn lapsed_after(last_insured: u16) -> CoverFacts {
        let mut history = CoverHistory::new();
        for y in 2018..=last_insured {
            history.record(y, YearCover::Resident);
        }
        CoverFacts {
            birth_date: Some(d(1980, 5, 1)),
            adult: true,
            history,
            ..CoverFacts::default()
        }
    }

    fn bought(mut facts: CoverFacts, years: &[u16]) -> CoverFacts {
        for y in years {
            facts.history.record_bought_back(*y);
        }
        facts
    }

    #[test]
    fn qingdao_two_gap_years_paid_in_the_window_wait_four_months_from_1_january() {
        // 青岛's published example: 2025 and 2026 not insured, paid in the 2027 window: 3 + 1.
        let start = cover_start(&qingdao(), &lapsed_after(2024), d(2026, 11, 20)).unwrap();
        assert_eq!(start.starts_on, d(2027, 5, 1));
        assert_eq!(start.reason, CoverReason::Waiting);
        assert_eq!(
            (start.wait.fixed, start.wait.variable, start.wait.total),
            (3, 1, 4)
        );
        assert_eq!(start.gap_years, vec![2025, 2026]);
        assert!(
            start.summary_zh().contains("自2027-05-01起享受待遇"),
            "{}",
            start.summary_zh()
        );
        // One year bought back: 2027-04-01.
        let facts = bought(lapsed_after(2024), &[2026]);
        let start = cover_start(&qingdao(), &facts, d(2026, 11, 20)).unwrap();
        assert_eq!(start.starts_on, d(2027, 4, 1));
    }

    #[test]
    fn continuous_payers_in_the_window_are_covered_from_1_january() {
        let start = cover_start(&national(), &lapsed_after(2026), d(2026, 10, 8)).unwrap();
        assert_eq!(start.starts_on, d(2027, 1, 1));
        assert_eq!(start.reason, CoverReason::InWindow);
        // A window that ends inside the benefit year (江西, 28 February): still from 1 January.
        let jiangxi = policy(CoverRules::default(), d(2026, 9, 1), d(2027, 2, 28), false);
        let start = cover_start(&jiangxi, &lapsed_after(2026), d(2027, 2, 20)).unwrap();
        assert_eq!(start.starts_on, d(2027, 1, 1));
    }

    #[test]
    fn four_consecutive_gap_years_wait_seven_months_and_the_floor_holds_after_buying_back() {
        // Counting N, from 1 January: 3 + 4 = 7 months.
        let facts = lapsed_after(2022);
        let mut rules = CoverRules::default();
        rules.gaps.count_years_before_2025 = true;
        let p = policy(rules.clone(), d(2026, 9, 1), d(2026, 12, 31), true);
        let start = cover_start(&p, &facts, d(2026, 11, 1)).unwrap();
        assert_eq!(start.gap_years, vec![2023, 2024, 2025, 2026]);
        assert_eq!(start.wait.total, 7);
        assert_eq!(start.starts_on, d(2027, 8, 1));
        // All four bought back: 3, raised to the floor of 6.
        let all = bought(facts.clone(), &[2023, 2024, 2025, 2026]);
        let start = cover_start(&p, &all, d(2026, 11, 1)).unwrap();
        assert_eq!(start.wait.total, 6);
        assert!(start.wait.floor_applied);
        // Five gap years, two bought back: 3 + 3 = 6.
        let five = bought(lapsed_after(2021), &[2025, 2026]);
        let start = cover_start(&p, &five, d(2026, 11, 1)).unwrap();
        assert_eq!(
            (start.wait.fixed, start.wait.variable, start.wait.total),
            (3, 3, 6)
        );
        // And the offer sells only the years that still shorten the wait.
        let offer = back_payment_offer(&p, &facts);
        assert_eq!(offer.wait_now.total, 7);
        assert_eq!(offer.effective_years, vec![2026]);
        assert_eq!(offer.wait_after.total, 6);
        assert_eq!(
            offer.check(2025),
            Err(BackPaymentRefusal::ShortensNothing { year: 2025 })
        );
        assert_eq!(
            offer.check(2019),
            Err(BackPaymentRefusal::NotAGapYear { year: 2019 })
        );
        assert_eq!(offer.check(2026), Ok(()));
        assert_eq!(offer.years_to_sell(&[]), Ok(vec![2026]));
        assert_eq!(offer.years_to_sell(&[2026, 2026]), Ok(vec![2026]));
        assert_eq!(
            offer.years_to_sell(&[2026, 2025]),
            Err(BackPaymentRefusal::ShortensNothing { year: 2025 })
        );
        // Once every effective year is bought, nothing is left to sell.
        let offer = back_payment_offer(&p, &bought(facts, &[2026]));
        assert_eq!(
            offer.years_to_sell(&[]),
            Err(BackPaymentRefusal::NothingToBuy)
        );
    }

    #[test]
    fn a_year_bought_back_costs_the_individual_standard_without_subsidy() {
        let amount = CategoryAmount::including(
            Fen::yuan(400).unwrap(),
            &[(Component::CriticalIllness, Fen::yuan(40).unwrap())],
        )
        .unwrap();
        let p = policy_of(
            amount,
            CoverRules::default(),
            d(2026, 9, 1),
            d(2026, 12, 31),
            true,
        );
        let a = back_payment_assessment(&p, Category::Adult);
        assert_eq!(a.amount, Fen::yuan(400).unwrap());
        assert_eq!(a.policy_amount, a.amount);
        assert_eq!(
            a.components[1],
            (Component::CriticalIllness, Fen::yuan(40).unwrap())
        );
        assert_eq!(a.relief_applied, None);
        assert!(!a.exempt);
    }

    #[test]
    fn gaps_before_2025_and_earlier_breaks_count_only_where_the_region_says() {
        let mut history = CoverHistory::new()
            .with(2020, YearCover::Resident)
            .with(2023, YearCover::Employee)
            .with(2024, YearCover::Resident);
        let rules = GapRules::default();
        let year = FeeYear::new(2027).unwrap();
        assert_eq!(gaps(&rules, &history, year).years, vec![2025, 2026]);
        history.record(2025, YearCover::Resident);
        assert_eq!(gaps(&rules, &history, year).years, vec![2026]);
        let earlier = GapRules {
            count_years_before_2025: true,
            ..GapRules::default()
        };
        assert_eq!(gaps(&earlier, &history, year).years, vec![2026]);
        let add_up = GapRules {
            count_years_before_2025: true,
            breaks_add_up: true,
            ..GapRules::default()
        };
        let g = gaps(&add_up, &history, year);
        assert_eq!(g.years, vec![2021, 2022, 2026]);
        assert_eq!(g.longest_run, 2);
        assert!(gaps(&rules, &CoverHistory::new(), year).first_time);
    }

    #[test]
    fn outside_the_window_the_wait_runs_from_the_payment_by_the_start_rule() {
        // Continuous, paid late on 15 March: fixed 3 months.
        let facts = lapsed_after(2026);
        let start = cover_start(&national(), &facts, d(2027, 3, 15)).unwrap();
        assert_eq!(start.starts_on, d(2027, 6, 15));
        assert_eq!(start.anchor, d(2027, 3, 15));
        let mut rules = CoverRules::default();
        rules.waiting.start_rule = StartRule::NextDay;
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
        assert_eq!(
            cover_start(&p, &facts, d(2027, 3, 15)).unwrap().starts_on,
            d(2027, 6, 16)
        );
        let mut rules = CoverRules::default();
        rules.waiting.start_rule = StartRule::FirstOfMonthAfterWait;
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
        assert_eq!(
            cover_start(&p, &facts, d(2027, 3, 15)).unwrap().starts_on,
            d(2027, 6, 1)
        );
        // Not accepted late, or after the last date.
        let strict = policy(CoverRules::default(), d(2026, 9, 1), d(2026, 12, 31), false);
        assert_eq!(
            cover_start(&strict, &facts, d(2027, 3, 15))
                .unwrap_err()
                .code(),
            "LATE_NOT_ACCEPTED"
        );
        let mut rules = CoverRules::default();
        rules.waiting.last_date = Some(d(2027, 6, 30));
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
        assert_eq!(
            cover_start(&p, &facts, d(2027, 7, 1)),
            Err(CoverRefusal::YearClosed {
                last_date: d(2027, 6, 30)
            })
        );
        assert_eq!(
            cover_start(&p, &facts, d(2026, 8, 31)).unwrap_err().code(),
            "WINDOW_NOT_OPEN"
        );
    }

    #[test]
    fn the_extension_covers_continuous_payers_from_the_payment_date() {
        // 福建: window to 31 December, extension to the end of February.
        let mut rules = CoverRules::default();
        rules.waiting.extension_until = Some(d(2027, 2, 28));
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), false);
        let start = cover_start(&p, &lapsed_after(2026), d(2027, 2, 10)).unwrap();
        assert_eq!(start.starts_on, d(2027, 2, 10));
        assert_eq!(start.reason, CoverReason::Extension);
        // A gap still waits, from the payment.
        let start = cover_start(&p, &lapsed_after(2025), d(2027, 2, 10)).unwrap();
        assert_eq!(start.starts_on, d(2027, 6, 10));
        assert_eq!(
            cover_start(&p, &lapsed_after(2026), d(2027, 3, 1)).unwrap_err(),
            CoverRefusal::LateNotAccepted {
                closed: d(2027, 2, 28)
            }
        );
    }

    #[test]
    fn a_wait_past_the_year_end_is_refused_or_shown() {
        let facts = lapsed_after(2026);
        assert_eq!(
            cover_start(&national(), &facts, d(2027, 11, 1))
                .unwrap_err()
                .code(),
            "WAIT_PAST_YEAR_END"
        );
        let mut rules = CoverRules::default();
        rules.waiting.past_year_end = PastYearEnd::AcceptWithNotice;
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
        let start = cover_start(&p, &facts, d(2027, 11, 1)).unwrap();
        assert!(!start.covered_this_year);
        assert!(start.summary_zh().contains("本待遇年度内不享受待遇"));
    }

    #[test]
    fn newborns_by_tier() {
        let rules = CoverRules {
            newborn_tiers: vec![
                NewbornTier {
                    within_days: 90,
                    cover_from: NewbornStart::Birth,
                },
                NewbornTier {
                    within_days: 180,
                    cover_from: NewbornStart::NextDay,
                },
            ],
            ..CoverRules::default()
        };
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), false);
        let baby = |born: NaiveDate| CoverFacts {
            birth_date: Some(born),
            ..CoverFacts::default()
        };
        let start = cover_start(&p, &baby(d(2027, 3, 1)), d(2027, 5, 20)).unwrap();
        assert_eq!(
            (start.starts_on, start.reason),
            (d(2027, 3, 1), CoverReason::Newborn)
        );
        let start = cover_start(&p, &baby(d(2027, 3, 1)), d(2027, 7, 1)).unwrap();
        assert_eq!(start.starts_on, d(2027, 7, 2));
        // Past the last tier, outside the window, without late payment: refused.
        assert_eq!(
            cover_start(&p, &baby(d(2027, 1, 2)), d(2027, 8, 1))
                .unwrap_err()
                .code(),
            "LATE_NOT_ACCEPTED"
        );
        // Born before the benefit year: from 1 January, not before.
        let start = cover_start(&p, &baby(d(2026, 12, 1)), d(2026, 12, 20)).unwrap();
        assert_eq!(start.starts_on, d(2027, 1, 1));
    }

    #[test]
    fn each_exempt_group_starts_when_the_region_says() {
        let p = policy(CoverRules::default(), d(2026, 9, 1), d(2026, 12, 31), false);
        let member = |group, event_date| CoverFacts {
            birth_date: Some(d(1990, 1, 1)),
            adult: true,
            history: CoverHistory::new().with(2024, YearCover::Resident),
            claims: vec![ExemptClaim { group, event_date }],
            left_employee: None,
        };
        for group in ExemptGroup::ALL {
            let facts = member(group, d(2027, 4, 1));
            let start = cover_start(&p, &facts, d(2027, 5, 10)).unwrap();
            assert_eq!(
                start.reason,
                CoverReason::ExemptGroup { group },
                "{group:?}"
            );
            let expected = if group == ExemptGroup::Freshman {
                d(2027, 9, 1)
            } else {
                d(2027, 5, 10)
            };
            assert_eq!(start.starts_on, expected, "{group:?}");
        }
        // Past the 90 days: the normal rules, here refused as late.
        let late = member(ExemptGroup::Veteran, d(2027, 1, 1));
        assert_eq!(
            cover_start(&p, &late, d(2027, 5, 10)).unwrap_err().code(),
            "LATE_NOT_ACCEPTED"
        );
        // A region's own time and start.
        let rules = CoverRules {
            exempt_groups: vec![ExemptGroupRule {
                group: ExemptGroup::Veteran,
                within_days: Some(180),
                cover_from: ExemptStart::NextDay,
            }],
            ..CoverRules::default()
        };
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), false);
        let start = cover_start(&p, &late, d(2027, 5, 10)).unwrap();
        assert_eq!(start.starts_on, d(2027, 5, 11));
        // A group the region does not list spares nothing.
        let prison = member(ExemptGroup::ReleasedFromPrison, d(2027, 4, 1));
        assert!(cover_start(&p, &prison, d(2027, 5, 10)).is_err());
    }

    #[test]
    fn moves_from_employee_insurance() {
        let p = national();
        let mover_after = |history: CoverHistory, months, ended_on| CoverFacts {
            birth_date: Some(d(1985, 1, 1)),
            adult: true,
            history: history.with(2026, YearCover::Employee),
            claims: Vec::new(),
            left_employee: Some(LeftEmployee {
                ended_on,
                continuous_months: months,
            }),
        };
        let mover = |months, ended_on| mover_after(resident_years(2020..=2025), months, ended_on);
        // Two years insured, paid within 3 months: covered back to the day after it ended.
        let start = cover_start(&p, &mover(30, d(2027, 3, 31)), d(2027, 6, 20)).unwrap();
        assert_eq!(
            (start.starts_on, start.reason),
            (d(2027, 4, 1), CoverReason::FromEmployee)
        );
        // Two years, past 3 months: the wait is at most 6 (here fixed 3 anyway).
        let start = cover_start(&p, &mover(30, d(2027, 2, 28)), d(2027, 6, 20)).unwrap();
        assert_eq!(
            (start.starts_on, start.reason),
            (d(2027, 9, 20), CoverReason::Waiting)
        );
        // Without two years: the normal wait, even within 3 months.
        let start = cover_start(&p, &mover(12, d(2027, 3, 31)), d(2027, 6, 20)).unwrap();
        assert_eq!(
            (start.starts_on, start.reason),
            (d(2027, 9, 20), CoverReason::Waiting)
        );
        // A long break before employee insurance, counted: the wait capped at the region's months.
        let mut rules = CoverRules::default();
        rules.from_employee.max_wait_months = 3;
        let p = policy(rules.clone(), d(2026, 9, 1), d(2026, 12, 31), true);
        // Left employee insurance at the end of 2024, two years uninsured since, paid late: the
        // wait of 3 + 2 months is at most the region's 3 (江苏).
        let long_break = |months, ended_on| CoverFacts {
            birth_date: Some(d(1985, 1, 1)),
            adult: true,
            history: CoverHistory::new()
                .with(2022, YearCover::Employee)
                .with(2023, YearCover::Employee)
                .with(2024, YearCover::Employee),
            claims: Vec::new(),
            left_employee: Some(LeftEmployee {
                ended_on,
                continuous_months: months,
            }),
        };
        let start = cover_start(&p, &long_break(36, d(2024, 12, 31)), d(2027, 6, 20)).unwrap();
        assert_eq!(start.gap_years, vec![2025, 2026]);
        assert_eq!(start.reason, CoverReason::FromEmployeeCapped);
        assert_eq!((start.wait.total, start.starts_on), (3, d(2027, 9, 20)));
        let start = cover_start(&p, &long_break(12, d(2024, 12, 31)), d(2027, 6, 20)).unwrap();
        assert_eq!((start.wait.total, start.reason), (5, CoverReason::Waiting));
        // The regional variant without the two-year condition.
        rules.from_employee.min_years_insured = None;
        let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
        let start = cover_start(&p, &long_break(6, d(2027, 3, 31)), d(2027, 6, 20)).unwrap();
        assert_eq!(start.reason, CoverReason::FromEmployee);
    }

    fn resident_years(years: std::ops::RangeInclusive<u16>) -> CoverHistory {
        let mut h = CoverHistory::new();
        for y in years {
            h.record(y, YearCover::Resident);
        }
        h
    }

    #[test]
    fn continuous_rewards_after_four_five_and_eight_years() {
        let rules = RewardRules::default();
        let none = BTreeMap::new();
        let y = FeeYear::new(2027).unwrap();
        let raise = |h: &CoverHistory| critical_illness_raise(&rules, h, &none, y);
        // 2027 paid makes the years through it.
        assert_eq!(raise(&resident_years(2024..=2026)).total, Fen::ZERO);
        assert_eq!(
            raise(&resident_years(2023..=2026)).total,
            Fen::yuan(1000).unwrap()
        );
        let eight = raise(&resident_years(2020..=2026));
        assert_eq!(eight.continuous_years, 8);
        assert_eq!(eight.total, Fen::yuan(4000).unwrap());
        assert!(
            eight.summary_zh().contains("提高4000.00元"),
            "{}",
            eight.summary_zh()
        );
    }

    #[test]
    fn a_break_restarts_the_count_and_keeps_earned_raises_only_where_the_region_says() {
        let y = FeeYear::new(2027).unwrap();
        let none = BTreeMap::new();
        // Seven years to 2023 (3 raises), a break in 2024, then 2025 to 2027.
        let h = resident_years(2017..=2023)
            .with(2025, YearCover::Resident)
            .with(2026, YearCover::Resident);
        let plain = critical_illness_raise(&RewardRules::default(), &h, &none, y);
        assert_eq!((plain.continuous_years, plain.total), (3, Fen::ZERO));
        assert!(plain.returning);
        let langfang = RewardRules {
            keep_earned_after_break: true,
            ..RewardRules::default()
        };
        let kept = critical_illness_raise(&langfang, &h, &none, y);
        assert_eq!(kept.kept_raise, Fen::yuan(3000).unwrap());
        assert_eq!(kept.total, Fen::yuan(3000).unwrap());
        // Employee years count unless the region says otherwise; bought-back years only if it says so.
        let mut mixed = resident_years(2020..=2022).with(2023, YearCover::Employee);
        mixed.record(2024, YearCover::Resident);
        mixed.record(2025, YearCover::Resident);
        mixed.record_bought_back(2026);
        let base = critical_illness_raise(&RewardRules::default(), &mixed, &none, y);
        assert_eq!(base.continuous_years, 1, "the gap year 2026 breaks the run");
        let with_bought = RewardRules {
            bought_back_years_count: true,
            ..RewardRules::default()
        };
        assert_eq!(
            critical_illness_raise(&with_bought, &mixed, &none, y).continuous_years,
            8
        );
        let without_employee = RewardRules {
            bought_back_years_count: true,
            employee_years_count: false,
            ..RewardRules::default()
        };
        assert_eq!(
            critical_illness_raise(&without_employee, &mixed, &none, y).continuous_years,
            4
        );
    }

    #[test]
    fn zero_claim_raises_accumulate_are_cleared_when_used_and_are_capped_together() {
        let y = FeeYear::new(2027).unwrap();
        let claim = |reimbursed, reward_used| ClaimYear {
            reimbursed,
            reward_used,
        };
        let claims = BTreeMap::from([
            (2023, claim(false, false)),
            (2024, claim(true, true)),
            (2025, claim(false, false)),
            (2026, claim(false, false)),
        ]);
        let h = resident_years(2023..=2026);
        let rules = RewardRules::default();
        let r = critical_illness_raise(&rules, &h, &claims, y);
        assert_eq!(r.zero_claim_years, 2, "cleared by the claim of 2024");
        assert_eq!(r.zero_claim_raise, Fen::yuan(2000).unwrap());
        assert_eq!(
            r.total,
            Fen::yuan(3000).unwrap(),
            "1 000 continuous + 2 000"
        );
        // Capped at 20% of a 10 000 元 cap.
        let capped = RewardRules {
            original_cap_fen: Some(1_000_000),
            ..RewardRules::default()
        };
        let r = critical_illness_raise(&capped, &h, &claims, y);
        assert_eq!(r.total, Fen::yuan(2000).unwrap());
        assert!(r.summary_zh().contains("合计不超过2000.00元"));
        // A lower share after a break.
        let returning = RewardRules {
            original_cap_fen: Some(1_000_000),
            returning_share_percent: Some(10),
            ..RewardRules::default()
        };
        let broken = resident_years(2020..=2023).with(2026, YearCover::Resident);
        let r = critical_illness_raise(&returning, &broken, &claims, y);
        assert!(r.returning);
        assert_eq!(r.total, Fen::yuan(1000).unwrap());
    }

    fn arb_history() -> impl Strategy<Value = (Vec<u8>, Vec<bool>)> {
        // Years 2015..2027: 0 none, 1 resident, 2 employee; and which are bought back.
        (
            proptest::collection::vec(0u8..3, 12),
            proptest::collection::vec(any::<bool>(), 12),
        )
    }

    fn build(covers: &[u8], bought: &[bool]) -> CoverFacts {
        let mut history = CoverHistory::new();
        for (i, c) in covers.iter().enumerate() {
            let year = 2015 + i as u16;
            match c {
                1 => history.record(year, YearCover::Resident),
                2 => history.record(year, YearCover::Employee),
                _ => {
                    if bought[i] {
                        history.record_bought_back(year);
                    }
                }
            }
        }
        CoverFacts {
            birth_date: Some(d(1980, 1, 1)),
            adult: true,
            history,
            ..CoverFacts::default()
        }
    }

    fn arb_rules() -> impl Strategy<Value = CoverRules> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0u8..3,
            0u8..4,
            any::<bool>(),
        )
            .prop_map(|(before, add_up, n1, rule, per_gap, accept)| {
                let mut r = CoverRules::default();
                r.gaps.count_years_before_2025 = before;
                r.gaps.breaks_add_up = add_up;
                if n1 {
                    r.waiting.gap_year_count = GapYearCount::NMinus1;
                }
                r.waiting.start_rule = [
                    StartRule::PaymentDate,
                    StartRule::NextDay,
                    StartRule::FirstOfMonthAfterWait,
                ][usize::from(rule)];
                r.waiting.months_per_gap_year = per_gap;
                if accept {
                    r.waiting.past_year_end = PastYearEnd::AcceptWithNotice;
                }
                r
            })
    }

    fn arb_day() -> impl Strategy<Value = NaiveDate> {
        (0i64..480).prop_map(|n| d(2026, 9, 1) + chrono::Duration::days(n))
    }

    proptest! {
        #[test]
        fn cover_never_starts_before_the_payment_unless_a_rule_grants_it_back(
            (covers, bought) in arb_history(), rules in arb_rules(), paid_on in arb_day(), in_window_pay in any::<bool>()
        ) {
            let mut rules = rules;
            if in_window_pay {
                rules.waiting.in_window_anchor = InWindowAnchor::Payment;
            }
            let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
            if let Ok(start) = cover_start(&p, &build(&covers, &bought), paid_on) {
                let from_1_january = start.reason == CoverReason::Waiting && start.anchor == d(2027, 1, 1);
                prop_assert!(
                    start.starts_on >= paid_on || start.reason.grants_back() || from_1_january,
                    "{start:?}"
                );
                prop_assert!(start.starts_on >= d(2027, 1, 1));
            }
        }

        #[test]
        fn more_gap_years_never_shorten_the_wait(
            (covers, bought) in arb_history(), rules in arb_rules(), paid_on in arb_day(), flip in 0usize..12
        ) {
            let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
            let facts = build(&covers, &bought);
            // A year after the first insured one that was insured becomes a gap year.
            let first = covers.iter().position(|c| *c != 0).unwrap_or(12);
            let insured: Vec<usize> = (first + 1..12).filter(|i| covers[*i] != 0).collect();
            prop_assume!(!insured.is_empty());
            let flip = insured[flip % insured.len()];
            let mut more = covers.clone();
            more[flip] = 0;
            let mut not_bought = bought.clone();
            not_bought[flip] = false;
            let worse = build(&more, &not_bought);
            let before = cover_start(&p, &facts, paid_on);
            let after = cover_start(&p, &worse, paid_on);
            if let (Ok(b), Ok(a)) = (&before, &after) {
                prop_assert!(a.starts_on >= b.starts_on, "{b:?} then {a:?}");
                prop_assert!(a.wait.total >= b.wait.total);
            }
            if before.is_err() {
                prop_assert!(after.is_err());
            }
        }

        #[test]
        fn buying_back_never_lengthens_the_wait(
            (covers, bought) in arb_history(), rules in arb_rules(), paid_on in arb_day(), pick in 0usize..12
        ) {
            let p = policy(rules, d(2026, 9, 1), d(2026, 12, 31), true);
            let buyable: Vec<usize> = (0..12).filter(|i| covers[*i] == 0 && !bought[*i]).collect();
            prop_assume!(!buyable.is_empty());
            let buy = buyable[pick % buyable.len()];
            let facts = build(&covers, &bought);
            let mut more = bought.clone();
            more[buy] = true;
            let repaired = build(&covers, &more);
            if let (Ok(b), Ok(a)) = (cover_start(&p, &facts, paid_on), cover_start(&p, &repaired, paid_on)) {
                prop_assert!(a.starts_on <= b.starts_on, "{b:?} then {a:?}");
            }
            let offer = back_payment_offer(&p, &facts);
            prop_assert!(offer.wait_after.total <= offer.wait_now.total);
            prop_assert!(offer.effective_years.len() <= offer.gap_years.len());
        }
    }
}
