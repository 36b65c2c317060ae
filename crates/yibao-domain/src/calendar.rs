//! Dates: completed years of age, and the working-day calendar (工作日历) with statutory holidays
//! (法定节假日) and adjusted working days (调休) that the operator configures year by year.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// Completed years between `birth` and `on` (0 before birth). Someone born on 29 February becomes a
/// year older on 1 March in common years.
pub fn completed_years(birth: NaiveDate, on: NaiveDate) -> u32 {
    if on < birth {
        return 0;
    }
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// How a configured day differs from the plain weekday rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// 法定节假日 or a day off in lieu: no work although it may be a weekday.
    Holiday,
    /// 调休上班: a Saturday or Sunday that is worked.
    Working,
}

/// "N working days after" looks at most this many calendar days ahead before giving up.
pub const MAX_LOOKAHEAD_DAYS: i64 = 400;
/// Largest N accepted by [`WorkingCalendar::add_working_days`].
pub const MAX_WORKING_DAYS_AHEAD: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("日期 {day} 不属于 {year} 年")]
    OutsideYear { year: i32, day: NaiveDate },
    #[error("{0} 是周末，无需设为节假日；周末上班请设为调休工作日")]
    HolidayOnWeekend(NaiveDate),
    #[error("{0} 是工作日，无需设为调休工作日")]
    WorkingDayOnWeekday(NaiveDate),
    #[error("工作日数应在0至{MAX_WORKING_DAYS_AHEAD}之间")]
    TooFarAhead,
    #[error("从 {0} 起 {MAX_LOOKAHEAD_DAYS} 天内找不到足够的工作日，请检查节假日配置")]
    NoWorkingDay(NaiveDate),
    #[error("节假日安排文件的“{field}”有误：{reason}")]
    BadNotice { field: &'static str, reason: String },
}

impl CalendarError {
    pub const CODE: &'static str = "INVALID_CALENDAR";
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// One year's exceptions to the weekday rule, as the State Council's notice lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarYear {
    year: i32,
    days: BTreeMap<NaiveDate, DayKind>,
}

impl CalendarYear {
    /// Refuses days outside `year`, holidays on weekends and worked weekdays: those are either
    /// mistakes or no-ops, and a clerk should hear about them.
    pub fn new(
        year: i32,
        days: impl IntoIterator<Item = (NaiveDate, DayKind)>,
    ) -> Result<Self, CalendarError> {
        let mut map = BTreeMap::new();
        for (day, kind) in days {
            if day.year() != year {
                return Err(CalendarError::OutsideYear { year, day });
            }
            match kind {
                DayKind::Holiday if is_weekend(day) => {
                    return Err(CalendarError::HolidayOnWeekend(day))
                }
                DayKind::Working if !is_weekend(day) => {
                    return Err(CalendarError::WorkingDayOnWeekday(day))
                }
                _ => {}
            }
            // Keyed by date within one year, so at most 366 entries whatever the input.
            map.insert(day, kind);
        }
        Ok(CalendarYear { year, days: map })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn days(&self) -> impl Iterator<Item = (NaiveDate, DayKind)> + '_ {
        self.days.iter().map(|(d, k)| (*d, *k))
    }
}

/// Most festivals (节日) one notice may list.
pub const MAX_NOTICE_FESTIVALS: usize = 20;
/// Longest notice title, in characters.
pub const MAX_NOTICE_TITLE_CHARS: usize = 100;

/// One festival of a notice file: the weekdays off and the weekends worked (调休) it brings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FestivalFile {
    /// 元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节 …
    pub name: String,
    /// Weekdays off, `YYYY-MM-DD` (days off falling on a weekend are not listed).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Saturdays and Sundays worked, `YYYY-MM-DD`.
    #[serde(default)]
    pub working_days: Vec<String>,
}

/// The plain file a year's holiday calendar is shipped and loaded as (`data/calendars/YYYY.toml`,
/// described in `data/calendars/README.md`): the State Council's notice
/// (国务院办公厅关于YYYY年部分节假日安排的通知), its title and date, and its days per festival.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarNoticeFile {
    pub year: i32,
    /// The notice's title as published.
    pub title: String,
    /// The day it was published, `YYYY-MM-DD`.
    pub published: String,
    /// Anything else worth knowing (a later notice that changed it, …).
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default, rename = "festival")]
    pub festivals: Vec<FestivalFile>,
}

/// A checked notice: where the calendar comes from and the calendar year itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarNotice {
    pub title: String,
    pub published_on: NaiveDate,
    pub calendar: CalendarYear,
}

fn notice_date(field: &'static str, text: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| CalendarError::BadNotice {
        field,
        reason: format!("“{text}”不是 YYYY-MM-DD 格式的日期"),
    })
}

impl CalendarNotice {
    /// Checks a notice file: the year within 2000–2100, a title naming the year, a publication
    /// date before the year ends, every day inside the year, holidays on weekdays and worked days
    /// on weekends, no day listed twice.
    pub fn from_file(file: &CalendarNoticeFile) -> Result<Self, CalendarError> {
        let bad = |field, reason: String| CalendarError::BadNotice { field, reason };
        if !(2000..=2100).contains(&file.year) {
            return Err(bad("year", format!("{} 不在 2000 至 2100 之间", file.year)));
        }
        let title = file.title.trim();
        if title.is_empty()
            || title.chars().count() > MAX_NOTICE_TITLE_CHARS
            || !title.contains(&file.year.to_string())
        {
            return Err(bad(
                "title",
                format!(
                    "应为通知标题（{MAX_NOTICE_TITLE_CHARS} 字以内），并含年份 {}",
                    file.year
                ),
            ));
        }
        let published_on = notice_date("published", &file.published)?;
        if published_on.year() > file.year {
            return Err(bad(
                "published",
                format!("{published_on} 晚于 {} 年", file.year),
            ));
        }
        if file.festivals.len() > MAX_NOTICE_FESTIVALS {
            return Err(bad(
                "festival",
                format!("最多 {MAX_NOTICE_FESTIVALS} 个节日"),
            ));
        }
        let mut days = Vec::new();
        let mut seen = BTreeSet::new();
        for festival in &file.festivals {
            let listed = festival
                .holidays
                .iter()
                .map(|d| ("holidays", d, DayKind::Holiday))
                .chain(
                    festival
                        .working_days
                        .iter()
                        .map(|d| ("working_days", d, DayKind::Working)),
                );
            for (field, text, kind) in listed {
                let day = notice_date(field, text)?;
                if !seen.insert(day) {
                    return Err(bad(field, format!("{day} 出现了两次")));
                }
                days.push((day, kind));
            }
        }
        Ok(CalendarNotice {
            title: title.to_owned(),
            published_on,
            calendar: CalendarYear::new(file.year, days)?,
        })
    }
}

/// A date some working days ahead, and the years it looked into that had no calendar: there the
/// count used weekends alone (Spring Festival, National Day … ignored), so the date may be early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueDate {
    pub date: NaiveDate,
    /// Calendar years crossed (after the start day, up to `date`) that have no holiday calendar.
    pub years_without_calendar: Vec<i32>,
}

impl DueDate {
    /// Every year crossed had its calendar: the date is reliable.
    pub fn calendar_complete(&self) -> bool {
        self.years_without_calendar.is_empty()
    }
}

/// Weekdays work and weekends rest, except the configured days. Knows which years have a calendar
/// at all: a year without one is counted by weekends alone, and [`DueDate`] says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    exceptions: BTreeMap<NaiveDate, DayKind>,
    known_years: BTreeSet<i32>,
}

impl WorkingCalendar {
    /// A calendar of the years given (each counts as known, even one without exceptions).
    pub fn new(years: impl IntoIterator<Item = CalendarYear>) -> Self {
        let mut exceptions = BTreeMap::new();
        let mut known_years = BTreeSet::new();
        for year in years {
            known_years.insert(year.year);
            exceptions.extend(year.days);
        }
        WorkingCalendar {
            exceptions,
            known_years,
        }
    }

    /// Whether `year` has a holiday calendar.
    pub fn has_year(&self, year: i32) -> bool {
        self.known_years.contains(&year)
    }

    /// The years with a holiday calendar, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.known_years.iter().copied()
    }

    /// The years from `from`'s to `to`'s (both included) that have no calendar.
    pub fn years_without_calendar(&self, from: NaiveDate, to: NaiveDate) -> Vec<i32> {
        (from.year()..=to.year())
            .filter(|y| !self.has_year(*y))
            .collect()
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.exceptions.get(&day) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Working) => true,
            None => !is_weekend(day),
        }
    }

    /// The `n`-th working day after `day` (`day` itself never counts): a payment on Friday 30
    /// October 2020 owes its refund by Tuesday 3 November. The answer names the years it looked
    /// into that had no calendar (then the date counted weekends alone and may be too early).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> Result<DueDate, CalendarError> {
        if n > MAX_WORKING_DAYS_AHEAD {
            return Err(CalendarError::TooFarAhead);
        }
        if n == 0 {
            return Ok(DueDate {
                date: day,
                years_without_calendar: Vec::new(),
            });
        }
        let mut found = 0;
        let mut current = day;
        for _ in 0..MAX_LOOKAHEAD_DAYS {
            current = current.succ_opt().ok_or(CalendarError::NoWorkingDay(day))?;
            if self.is_working_day(current) {
                found += 1;
                if found == n {
                    let first = day.succ_opt().unwrap_or(current);
                    return Ok(DueDate {
                        date: current,
                        years_without_calendar: self.years_without_calendar(first, current),
                    });
                }
            }
        }
        Err(CalendarError::NoWorkingDay(day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fee::tests::d;
    use proptest::prelude::*;

    /// 2020 National Day and Mid-Autumn: 1 to 8 October off, Sunday 27 September and Saturday 10 October worked.
    fn national_day_2020() -> WorkingCalendar {
        let mut days: Vec<_> = (1..=8)
            .map(|n| (d(2020, 10, n), DayKind::Holiday))
            .collect();
        days.retain(|(day, _)| !is_weekend(*day));
        days.push((d(2020, 9, 27), DayKind::Working));
        days.push((d(2020, 10, 10), DayKind::Working));
        WorkingCalendar::new([CalendarYear::new(2020, days).unwrap()])
    }

    #[test]
    fn weekends_and_plain_weeks() {
        let cal = WorkingCalendar::default();
        // Friday 30 October 2020 + 2 working days = Tuesday 3 November.
        assert_eq!(
            cal.add_working_days(d(2020, 10, 30), 2).unwrap().date,
            d(2020, 11, 3)
        );
        // Monday + 2 = Wednesday.
        assert_eq!(
            cal.add_working_days(d(2020, 11, 2), 2).unwrap().date,
            d(2020, 11, 4)
        );
        assert_eq!(
            cal.add_working_days(d(2020, 11, 2), 0).unwrap().date,
            d(2020, 11, 2)
        );
    }

    #[test]
    fn holidays_and_adjusted_working_days() {
        let cal = national_day_2020();
        // Wednesday 30 September: 1-8 October off, Friday 9 October and Saturday 10 October worked.
        assert_eq!(
            cal.add_working_days(d(2020, 9, 30), 1).unwrap().date,
            d(2020, 10, 9)
        );
        assert_eq!(
            cal.add_working_days(d(2020, 9, 30), 2).unwrap().date,
            d(2020, 10, 10)
        );
        // Friday 25 September: Sunday 27 is worked.
        assert_eq!(
            cal.add_working_days(d(2020, 9, 25), 1).unwrap().date,
            d(2020, 9, 27)
        );
        assert!(!cal.is_working_day(d(2020, 10, 5)));
        assert!(cal.is_working_day(d(2020, 10, 10)));
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(matches!(
            CalendarYear::new(2020, [(d(2021, 1, 1), DayKind::Holiday)]),
            Err(CalendarError::OutsideYear { .. })
        ));
        assert!(matches!(
            CalendarYear::new(2020, [(d(2020, 10, 3), DayKind::Holiday)]),
            Err(CalendarError::HolidayOnWeekend(_))
        ));
        assert!(matches!(
            CalendarYear::new(2020, [(d(2020, 10, 9), DayKind::Working)]),
            Err(CalendarError::WorkingDayOnWeekday(_))
        ));
        assert_eq!(
            WorkingCalendar::default().add_working_days(d(2020, 1, 1), MAX_WORKING_DAYS_AHEAD + 1),
            Err(CalendarError::TooFarAhead)
        );
    }

    #[test]
    fn a_calendar_without_working_days_fails_cleanly() {
        let all_off = |year: i32| {
            let days: Vec<_> = (0..366)
                .map(|i| d(year, 1, 1) + chrono::Duration::days(i))
                .filter(|day| day.year() == year && !is_weekend(*day))
                .map(|day| (day, DayKind::Holiday))
                .collect();
            CalendarYear::new(year, days).unwrap()
        };
        let cal = WorkingCalendar::new([all_off(2020), all_off(2021)]);
        assert!(matches!(
            cal.add_working_days(d(2020, 1, 1), 1),
            Err(CalendarError::NoWorkingDay(_))
        ));
    }

    #[test]
    fn a_due_date_into_a_year_without_calendar_says_so() {
        let cal = national_day_2020();
        // 2020 has a calendar: reliable.
        let inside = cal.add_working_days(d(2020, 9, 30), 2).unwrap();
        assert!(inside.calendar_complete());
        // Two working days after Thursday 31 December 2020 reach 2021, which has none here.
        let across = cal.add_working_days(d(2020, 12, 31), 2).unwrap();
        assert_eq!(across.date, d(2021, 1, 4));
        assert_eq!(across.years_without_calendar, vec![2021]);
        assert!(!across.calendar_complete());
        // No calendar at all: every year crossed is named.
        let bare = WorkingCalendar::default()
            .add_working_days(d(2026, 12, 30), 2)
            .unwrap();
        assert_eq!(bare.years_without_calendar, vec![2026, 2027]);
        assert_eq!(
            cal.years_without_calendar(d(2020, 9, 1), d(2021, 2, 28)),
            vec![2021]
        );
        // An empty year still counts as a calendar that was loaded.
        let empty = WorkingCalendar::new([CalendarYear::new(2021, []).unwrap()]);
        assert!(empty.has_year(2021));
    }

    fn notice(festivals: Vec<FestivalFile>) -> CalendarNoticeFile {
        CalendarNoticeFile {
            year: 2020,
            title: "国务院办公厅关于2020年部分节假日安排的通知".into(),
            published: "2019-11-21".into(),
            note: None,
            festivals,
        }
    }

    fn festival(holidays: &[&str], working: &[&str]) -> FestivalFile {
        FestivalFile {
            name: "国庆节".into(),
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
            working_days: working.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn notice_files_are_checked() {
        let ok = CalendarNotice::from_file(&notice(vec![festival(
            &["2020-10-01", "2020-10-02"],
            &["2020-10-10"],
        )]))
        .unwrap();
        assert_eq!(ok.published_on, d(2019, 11, 21));
        assert_eq!(ok.calendar.days().count(), 3);
        let refused = |file: CalendarNoticeFile| CalendarNotice::from_file(&file).unwrap_err();
        assert!(matches!(
            refused(notice(vec![festival(&["2020-10-32"], &[])])),
            CalendarError::BadNotice {
                field: "holidays",
                ..
            }
        ));
        assert!(matches!(
            refused(notice(vec![
                festival(&["2020-10-01"], &[]),
                festival(&["2020-10-01"], &[])
            ])),
            CalendarError::BadNotice {
                field: "holidays",
                ..
            }
        ));
        assert!(matches!(
            refused(notice(vec![festival(&["2020-10-03"], &[])])),
            CalendarError::HolidayOnWeekend(_)
        ));
        let mut wrong_title = notice(vec![]);
        wrong_title.title = "国务院办公厅关于2021年部分节假日安排的通知".into();
        assert!(matches!(
            refused(wrong_title),
            CalendarError::BadNotice { field: "title", .. }
        ));
        let mut late = notice(vec![]);
        late.published = "2021-01-05".into();
        assert!(matches!(
            refused(late),
            CalendarError::BadNotice {
                field: "published",
                ..
            }
        ));
        let message = refused(notice(vec![festival(&["20201001"], &[])])).to_string();
        assert!(
            message.contains("holidays") && message.contains("20201001"),
            "{message}"
        );
    }

    #[test]
    fn completed_years_on_birthdays() {
        assert_eq!(completed_years(d(2000, 2, 29), d(2018, 2, 28)), 17);
        assert_eq!(completed_years(d(2000, 2, 29), d(2018, 3, 1)), 18);
        assert_eq!(completed_years(d(2000, 1, 1), d(1999, 1, 1)), 0);
    }

    proptest! {
        #[test]
        fn result_is_a_working_day_after_the_start(offset in 0i64..3000, n in 1u32..20) {
            let cal = national_day_2020();
            let start = d(2015, 1, 1) + chrono::Duration::days(offset);
            let due = cal.add_working_days(start, n).unwrap().date;
            prop_assert!(due > start);
            prop_assert!(cal.is_working_day(due));
            let between = (1..(due - start).num_days())
                .filter(|i| cal.is_working_day(start + chrono::Duration::days(*i)))
                .count();
            prop_assert_eq!(between as u32, n - 1);
        }
    }
}
