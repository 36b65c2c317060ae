//! The collection progress the console keeps (征缴进度): how many persons of each region, station
//! and standing, and their payables' amounts, computed by one aggregate over every person of the
//! scope (seconds at a million residents), kept for [`PROGRESS_MAX_AGE_SECONDS`] and refreshed in
//! the background. The first page (首页) shows it; the unpaid list (未缴名单) and the uninsured
//! submissions (未参保名单上报) take from it how many owe and how much, which a page of the list
//! no longer counts (BENCHMARKS.md, "The unpaid list's totals from the progress the console
//! keeps").

use yibao_domain::{FeeYear, RegionCode, StationCode};
use yibao_server::AppState;
use yibao_storage::records::{standing_owes, ProgressRow};

use crate::PageError;

/// How long a computed progress table is shown before it is computed again (in the
/// background: the page never waits for a refresh once a table exists).
pub const PROGRESS_MAX_AGE_SECONDS: i64 = 60;

/// The progress counts per (region or all, fee year), computed by one aggregate over every
/// person of the scope (seconds at a million residents): kept for [`PROGRESS_MAX_AGE_SECONDS`]
/// and refreshed in the background, so that the first page answers from memory. A station
/// operator's view is the region's table filtered to their station.
#[derive(Clone, Default)]
pub struct ProgressCache {
    inner: std::sync::Arc<std::sync::Mutex<ProgressTables>>,
}

/// The cached progress tables, keyed by (region or all regions, fee year).
type ProgressTables = std::collections::HashMap<(Option<RegionCode>, i32), CachedProgress>;

#[derive(Clone)]
struct CachedProgress {
    /// Unix seconds when it was computed.
    computed_at: i64,
    rows: std::sync::Arc<Vec<ProgressRow>>,
    refreshing: bool,
}

impl ProgressCache {
    /// The table for `region` (all regions when `None`) and `fee_year`, and when it was computed.
    pub async fn get(
        &self,
        state: &AppState,
        region: Option<RegionCode>,
        fee_year: FeeYear,
    ) -> Result<(std::sync::Arc<Vec<ProgressRow>>, i64), PageError> {
        let key = (region, i32::from(fee_year.get()));
        let now = state.clock.now().timestamp();
        let cached = self.lock().get(&key).cloned();
        if let Some(entry) = cached {
            if now - entry.computed_at > PROGRESS_MAX_AGE_SECONDS && !entry.refreshing {
                if let Some(e) = self.lock().get_mut(&key) {
                    e.refreshing = true;
                }
                let (cache, state) = (self.clone(), state.clone());
                tokio::spawn(async move {
                    match state
                        .storage
                        .collection_progress(region, fee_year, None)
                        .await
                    {
                        Ok(rows) => {
                            cache.store(key, rows, state.clock.now().timestamp());
                        }
                        Err(err) => {
                            tracing::warn!(%err, "collection progress not refreshed");
                            if let Some(e) = cache.lock().get_mut(&key) {
                                e.refreshing = false;
                            }
                        }
                    }
                });
            }
            return Ok((entry.rows, entry.computed_at));
        }
        let rows = state
            .storage
            .collection_progress(region, fee_year, None)
            .await?;
        let computed_at = state.clock.now().timestamp();
        Ok((self.store(key, rows, computed_at), computed_at))
    }

    /// How many of `region` owe in `fee_year`, and how much, of one station's people when
    /// `station` is given: the unpaid list's totals, from the region's kept table.
    pub async fn owing(
        &self,
        state: &AppState,
        region: RegionCode,
        fee_year: FeeYear,
        station: Option<&StationCode>,
    ) -> Result<OwingTotals, PageError> {
        let (rows, computed_at) = self.get(state, Some(region), fee_year).await?;
        let (persons, owed_fen) = owing_in(&rows, station);
        Ok(OwingTotals {
            persons,
            owed_fen,
            computed_at,
        })
    }

    fn store(
        &self,
        key: (Option<RegionCode>, i32),
        rows: Vec<ProgressRow>,
        computed_at: i64,
    ) -> std::sync::Arc<Vec<ProgressRow>> {
        let rows = std::sync::Arc::new(rows);
        self.lock().insert(
            key,
            CachedProgress {
                computed_at,
                rows: rows.clone(),
                refreshing: false,
            },
        );
        rows
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressTables> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How many owe in a scope and how much ([`ProgressCache::owing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwingTotals {
    /// People on the unpaid list: enrolled and owing, assessed or not yet.
    pub persons: i64,
    /// Their assessed amounts together, fen.
    pub owed_fen: i64,
    /// Unix seconds when the progress they come from was computed.
    pub computed_at: i64,
}

/// The unpaid list's totals in `rows`, of one station's people when `station` is given.
fn owing_in(rows: &[ProgressRow], station: Option<&StationCode>) -> (i64, i64) {
    rows.iter()
        .filter(|r| standing_owes(r.standing))
        .filter(|r| station.is_none_or(|s| r.station_code.as_deref() == Some(s.as_str())))
        .fold((0, 0), |(persons, owed), r| {
            (persons + r.persons, owed + r.owed_fen)
        })
}
