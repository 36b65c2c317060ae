//! Business time. Fee years, windows, birth dates and due dates are dates in China Standard Time
//! (UTC+8, no daylight saving), whatever the server's own time zone.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// UTC+8. Evaluated at compile time, so the `panic!` can never run.
pub const CHINA_STANDARD_TIME: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The source of "now": the system clock in production, a fixed instant in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Utc::now))
    }

    pub fn fixed(at: DateTime<Utc>) -> Self {
        Clock(Arc::new(move || at))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }

    /// Today's date in China Standard Time.
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&CHINA_STANDARD_TIME).date_naive()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn today_is_in_china_time() {
        // 2020-11-01T17:30Z is 01:30 on 2 November in Beijing.
        let clock = Clock::fixed(Utc.with_ymd_and_hms(2020, 11, 1, 17, 30, 0).unwrap());
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2020, 11, 2).unwrap());
        let clock = Clock::fixed(Utc.with_ymd_and_hms(2020, 11, 1, 15, 59, 59).unwrap());
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2020, 11, 1).unwrap());
    }
}
