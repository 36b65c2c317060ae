//! Channels as every channel request reads them, kept in the process (issue 14: the channel was
//! read with its regions, two statements, before every request).
//!
//! A change made through this process's storage (create, update, enable or disable, rotate the
//! secret) forgets the channel at once, so the next request reads it again. A change made by
//! another process on the same database (a second server, `yibao channel disable` at a terminal)
//! is seen within [`CHANNEL_CACHE_TTL`]: an entry is never older than that. Unknown channels are
//! remembered too (a flood of made-up channel ids costs one statement per id and TTL), and the
//! cache holds at most [`CHANNEL_CACHE_MAX_ENTRIES`], emptied whole when full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::collection::ChannelRecord;

/// How long a channel read from the database is believed: the longest another process's change
/// (a channel disabled, a secret rotated, regions changed) takes to reach this one.
pub const CHANNEL_CACHE_TTL: Duration = Duration::from_secs(5);
/// Channels (known or not) remembered at most.
pub const CHANNEL_CACHE_MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct ChannelCache {
    entries: Mutex<HashMap<String, (Instant, Option<ChannelRecord>)>>,
    /// Bumped by every change: a read that started before a change does not store what it read.
    generation: AtomicU64,
}

impl std::fmt::Debug for ChannelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sealed secrets stay out of Debug.
        f.write_str("ChannelCache")
    }
}

/// Where a read stands: `Known` answers from memory; `Unknown` carries the generation the read
/// from the database must be stored under.
pub enum Lookup {
    Known(Option<ChannelRecord>),
    Unknown(u64),
}

impl ChannelCache {
    pub fn lookup(&self, channel_id: &str) -> Lookup {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(channel_id) {
            Some((read_at, record)) if read_at.elapsed() < CHANNEL_CACHE_TTL => {
                Lookup::Known(record.clone())
            }
            _ => Lookup::Unknown(generation),
        }
    }

    /// Stores what was read from the database, unless something changed since `generation`.
    pub fn store(&self, channel_id: &str, record: Option<ChannelRecord>, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= CHANNEL_CACHE_MAX_ENTRIES && !entries.contains_key(channel_id) {
            entries.clear();
        }
        entries.insert(channel_id.to_owned(), (Instant::now(), record));
    }

    /// After a change to a channel has been committed.
    pub fn forget(&self, channel_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(channel_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(enabled: bool) -> ChannelRecord {
        ChannelRecord {
            channel_id: "bank".into(),
            kind: "bank_counter".into(),
            secret_sealed: "plain:00".into(),
            rate_per_second: 10,
            enabled,
            regions: vec!["320600".into()],
            previous_secret: None,
        }
    }

    #[test]
    fn a_read_is_kept_and_a_change_forgets_it() {
        let cache = ChannelCache::default();
        let Lookup::Unknown(generation) = cache.lookup("bank") else {
            panic!("empty cache")
        };
        cache.store("bank", Some(channel(true)), generation);
        assert!(matches!(cache.lookup("bank"), Lookup::Known(Some(c)) if c.enabled));
        cache.forget("bank");
        assert!(matches!(cache.lookup("bank"), Lookup::Unknown(_)));
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_stored() {
        let cache = ChannelCache::default();
        let Lookup::Unknown(before) = cache.lookup("bank") else {
            panic!("empty cache")
        };
        // The channel is disabled and forgotten while the read of the old row is in flight.
        cache.forget("bank");
        cache.store("bank", Some(channel(true)), before);
        assert!(matches!(cache.lookup("bank"), Lookup::Unknown(_)));
    }

    #[test]
    fn unknown_channels_are_remembered_and_the_cache_is_bounded() {
        let cache = ChannelCache::default();
        for i in 0..=CHANNEL_CACHE_MAX_ENTRIES {
            let id = format!("made-up-{i}");
            let Lookup::Unknown(g) = cache.lookup(&id) else {
                panic!("new id")
            };
            cache.store(&id, None, g);
        }
        let entries = cache.entries.lock().unwrap().len();
        assert!(entries <= CHANNEL_CACHE_MAX_ENTRIES, "{entries}");
        let last = format!("made-up-{CHANNEL_CACHE_MAX_ENTRIES}");
        assert!(matches!(cache.lookup(&last), Lookup::Known(None)));
    }
}
