//! Lookups a minute per client address: enough for a family checking one member after another,
//! too few to probe ID numbers and names. Fixed one-minute windows; the map is emptied when the
//! minute changes, so it holds at most the addresses of one minute, and at most
//! [`MAX_ADDRESSES_PER_MINUTE`] of them: past that, a new address is refused until the minute ends
//! (a flood of addresses is an attack, not residents).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Lookups (and receipt checks) one address may make in a minute.
pub const LOOKUPS_PER_ADDRESS_PER_MINUTE: u32 = 20;

/// Distinct addresses counted in one minute; about 100 bytes each.
pub const MAX_ADDRESSES_PER_MINUTE: usize = 50_000;

/// What [`AddressLimiter::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// This address has used its lookups for the minute.
    TooMany,
    /// Too many addresses this minute: a new one waits for the next.
    Crowded,
}

#[derive(Debug, Default)]
struct Window {
    minute: i64,
    counts: HashMap<String, u32>,
}

/// Counts lookups per address and minute (see the module's text). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AddressLimiter {
    window: Arc<Mutex<Window>>,
}

impl AddressLimiter {
    /// Counts one lookup from `address` at `now` (Unix seconds).
    pub fn take(&self, address: &str, now: i64) -> Verdict {
        let minute = now.div_euclid(60);
        let Ok(mut window) = self.window.lock() else {
            // A poisoned lock means a panic elsewhere; refuse rather than count nothing.
            return Verdict::Crowded;
        };
        if window.minute != minute {
            window.minute = minute;
            window.counts.clear();
        }
        let crowded = window.counts.len() >= MAX_ADDRESSES_PER_MINUTE;
        match window.counts.get_mut(address) {
            Some(count) if *count >= LOOKUPS_PER_ADDRESS_PER_MINUTE => Verdict::TooMany,
            Some(count) => {
                *count += 1;
                Verdict::Allowed
            }
            None if crowded => Verdict::Crowded,
            None => {
                window.counts.insert(address.to_owned(), 1);
                Verdict::Allowed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_lookups_a_minute_and_more_in_the_next() {
        let limiter = AddressLimiter::default();
        let minute = 1_800_000_000 / 60 * 60;
        for _ in 0..LOOKUPS_PER_ADDRESS_PER_MINUTE {
            assert_eq!(limiter.take("192.0.2.1", minute + 5), Verdict::Allowed);
        }
        assert_eq!(limiter.take("192.0.2.1", minute + 59), Verdict::TooMany);
        assert_eq!(limiter.take("192.0.2.2", minute + 59), Verdict::Allowed);
        assert_eq!(limiter.take("192.0.2.1", minute + 60), Verdict::Allowed);
    }

    #[test]
    fn the_map_never_holds_more_than_its_bound() {
        let limiter = AddressLimiter::default();
        for i in 0..MAX_ADDRESSES_PER_MINUTE {
            assert_eq!(limiter.take(&format!("a{i}"), 0), Verdict::Allowed);
        }
        assert_eq!(limiter.take("one more", 0), Verdict::Crowded);
        assert_eq!(limiter.take("a1", 0), Verdict::Allowed);
        assert_eq!(limiter.take("one more", 60), Verdict::Allowed);
    }
}
