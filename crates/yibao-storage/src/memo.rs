//! What the hot paths read on every request and staff seldom change, kept in the process for a
//! few seconds (issue 14): channels (every channel request read its channel and its regions, two
//! statements, before the handler ran), the fee policies a search shows the window of, and the
//! working calendars that payment reports count a refund's due date by (a region's every day,
//! two statements, on every report).
//!
//! An entry is never older than its cache's time to live, so a change made by another process on
//! the same database (a second server, `yibao channel disable` at a terminal) reaches this one
//! within it. A change made through the cache's owner forgets the entry at once
//! ([`MemoCache::forget`]), so the next read sees it. Negative answers are remembered too (a flood
//! of made-up channel ids costs one statement per id and period), and a cache holds at most its
//! bound of entries, emptied whole when full.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::collection::ChannelRecord;

/// How long a channel read from the database is believed: the longest another process's change
/// (a channel disabled, a secret rotated, regions changed) takes to reach this one.
pub const CHANNEL_CACHE_TTL: Duration = Duration::from_secs(5);
/// Channels (known or not) remembered at most.
pub const CHANNEL_CACHE_MAX_ENTRIES: usize = 4096;

/// How long a search believes the fee policy whose collection window it shows.
pub const FEE_POLICY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Fee policies (region and year, known or not) remembered at most.
pub const FEE_POLICY_CACHE_MAX_ENTRIES: usize = 1024;

/// How long a payment report believes its region's working calendar (the due date of any
/// refund it owes is counted by it).
pub const CALENDAR_CACHE_TTL: Duration = Duration::from_secs(5);
/// Regions' working calendars remembered at most.
pub const CALENDAR_CACHE_MAX_ENTRIES: usize = 1024;

/// The channels of a storage ([`crate::channels::ChannelStore::get_channel`]).
pub type ChannelCache = MemoCache<String, Option<ChannelRecord>>;

/// Values read from the database, each believed for the cache's time to live.
pub struct MemoCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Bumped by every change: a read that started before a change does not store what it read.
    generation: AtomicU64,
    ttl: Duration,
    max_entries: usize,
}

impl<K, V> std::fmt::Debug for MemoCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What is cached (sealed secrets among it) stays out of Debug.
        f.debug_struct("MemoCache")
            .field("ttl", &self.ttl)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl Default for MemoCache<String, Option<ChannelRecord>> {
    fn default() -> Self {
        MemoCache::new(CHANNEL_CACHE_TTL, CHANNEL_CACHE_MAX_ENTRIES)
    }
}

/// Where a read stands: `Known` answers from memory; `Unknown` carries the generation under which
/// what is then read from the database must be stored.
pub enum Lookup<V> {
    Known(V),
    Unknown(u64),
}

impl<K: Eq + Hash, V: Clone> MemoCache<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        MemoCache {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            ttl,
            max_entries,
        }
    }

    pub fn lookup<Q>(&self, key: &Q) -> Lookup<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((read_at, value)) if read_at.elapsed() < self.ttl => Lookup::Known(value.clone()),
            _ => Lookup::Unknown(generation),
        }
    }

    /// Stores what was read from the database, unless something changed since `generation`.
    pub fn store(&self, key: K, value: V, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// After a change has been committed.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
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
            test_mode: false,
        }
    }

    #[test]
    fn a_read_is_kept_and_a_change_forgets_it() {
        let cache = ChannelCache::default();
        let Lookup::Unknown(generation) = cache.lookup("bank") else {
            panic!("empty cache")
        };
        cache.store("bank".into(), Some(channel(true)), generation);
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
        cache.store("bank".into(), Some(channel(true)), before);
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
            cache.store(id.clone(), None, g);
        }
        let entries = cache.entries.lock().unwrap().len();
        assert!(entries <= CHANNEL_CACHE_MAX_ENTRIES, "{entries}");
        let last = format!("made-up-{CHANNEL_CACHE_MAX_ENTRIES}");
        assert!(matches!(cache.lookup(&last), Lookup::Known(None)));
    }
}
