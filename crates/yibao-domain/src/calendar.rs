//! Dates: completed years of age, and the working-day calendar (工作日历) with statutory holidays
//! (法定节假日) and adjusted working days (调休) that the operator configures year by year.

use std::collections::BTreeMap;

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

/// Weekdays work and weekends rest, except the configured days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    exceptions: BTreeMap<NaiveDate, DayKind>,
}

impl WorkingCalendar {
    pub fn new(years: impl IntoIterator<Item = CalendarYear>) -> Self {
        let mut exceptions = BTreeMap::new();
        for year in years {
            exceptions.extend(year.days);
        }
        WorkingCalendar { exceptions }
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.exceptions.get(&day) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Working) => true,
            None => !is_weekend(day),
        }
    }

    /// The `n`-th working day after `day` (`day` itself never counts): a payment on Friday 30
    /// October 2020 owes its refund by Tuesday 3 November.
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        if n > MAX_WORKING_DAYS_AHEAD {
            return Err(CalendarError::TooFarAhead);
        }
        if n == 0 {
            return Ok(day);
        }
        let mut found = 0;
        let mut current = day;
        for _ in 0..MAX_LOOKAHEAD_DAYS {
            current = current.succ_opt().ok_or(CalendarError::NoWorkingDay(day))?;
            if self.is_working_day(current) {
                found += 1;
                if found == n {
                    return Ok(current);
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
            cal.add_working_days(d(2020, 10, 30), 2).unwrap(),
            d(2020, 11, 3)
        );
        // Monday + 2 = Wednesday.
        assert_eq!(
            cal.add_working_days(d(2020, 11, 2), 2).unwrap(),
            d(2020, 11, 4)
        );
        assert_eq!(
            cal.add_working_days(d(2020, 11, 2), 0).unwrap(),
            d(2020, 11, 2)
        );
    }

    #[test]
    fn holidays_and_adjusted_working_days() {
        let cal = national_day_2020();
        // Wednesday 30 September: 1-8 October off, Friday 9 October and Saturday 10 October worked.
        assert_eq!(
            cal.add_working_days(d(2020, 9, 30), 1).unwrap(),
            d(2020, 10, 9)
        );
        assert_eq!(
            cal.add_working_days(d(2020, 9, 30), 2).unwrap(),
            d(2020, 10, 10)
        );
        // Friday 25 September: Sunday 27 is worked.
        assert_eq!(
            cal.add_working_days(d(2020, 9, 25), 1).unwrap(),
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
            let due = cal.add_working_days(start, n).unwrap();
            prop_assert!(due > start);
            prop_assert!(cal.is_working_day(due));
            let between = (1..(due - start).num_days())
                .filter(|i| cal.is_working_day(start + chrono::Duration::days(*i)))
                .count();
            prop_assert_eq!(between as u32, n - 1);
        }
    }
}
