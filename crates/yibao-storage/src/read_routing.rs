//! Reads that a streaming replica may answer (issue 15, "read replicas").
//!
//! A PostgreSQL deployment may name a second database, a streaming replica of the first, for the
//! reads that staff make in bulk: searches, lists, reports and dashboards. Everything else, every
//! write and every read a caller must see its own writes in (the channel protocol's look-ups and
//! status calls, a person's page, anything inside a transaction), stays on the primary.
//!
//! Three rules decide where one of those bulk reads goes ([`ReadPools::pool`]):
//! 1. No replica configured (SQLite, or PostgreSQL without `read_database_url`): the primary.
//! 2. The caller asked for the primary ([`on_primary`]): the server does so for every request that
//!    writes and, for a short while after, for the same browser's reads, so a clerk never sees a
//!    list without the change they just made.
//! 3. The replica is unreachable, is no longer a replica (promoted), or lags more than its bound:
//!    the primary, until a later check finds it well again ([`ReplicaHealth`]). A list is then
//!    never older than the bound.
//!
//! Which statements are "bulk reads" is decided once, in the storage code: they read through
//! `self.reads.pool()` instead of `self.pool`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Lag past which the replica is not read, by default (`max_replica_lag_seconds`).
pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(10);
/// The longest bound on lag that may be configured: a list older than this is no list.
pub const MAX_REPLICA_LAG_LIMIT: Duration = Duration::from_secs(600);

tokio::task_local! {
    static PRIMARY_ONLY: ();
}

/// Runs `work` with every read on the primary, replica or not.
pub async fn on_primary<F: Future>(work: F) -> F::Output {
    PRIMARY_ONLY.scope((), work).await
}

/// Whether the running task asked for the primary ([`on_primary`]).
pub fn primary_required() -> bool {
    PRIMARY_ONLY.try_with(|_| ()).is_ok()
}

/// What the last check found of the replica; shared by every clone of a storage.
#[derive(Debug)]
pub struct ReplicaHealth {
    usable: AtomicBool,
    /// Lag in milliseconds at the last check (`u64::MAX`: unknown, the replica did not answer).
    lag_millis: AtomicU64,
    max_lag: Duration,
}

impl ReplicaHealth {
    /// A replica just connected to and checked: usable until a check says otherwise.
    pub fn new(max_lag: Duration) -> Self {
        ReplicaHealth {
            usable: AtomicBool::new(true),
            lag_millis: AtomicU64::new(0),
            max_lag,
        }
    }

    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    /// Records a check. `lag` is `None` when the replica did not answer or is not a replica.
    /// Answers the state it decided, and whether that changed.
    pub fn record(&self, lag: Option<Duration>) -> (ReplicaState, bool) {
        let usable = lag.is_some_and(|lag| lag <= self.max_lag);
        let millis = lag.map_or(u64::MAX, |l| {
            u64::try_from(l.as_millis()).unwrap_or(u64::MAX)
        });
        self.lag_millis.store(millis, Ordering::Relaxed);
        let was = self.usable.swap(usable, Ordering::Relaxed);
        (self.state(), was != usable)
    }

    pub fn state(&self) -> ReplicaState {
        let millis = self.lag_millis.load(Ordering::Relaxed);
        ReplicaState {
            usable: self.usable.load(Ordering::Relaxed),
            lag: (millis != u64::MAX).then(|| Duration::from_millis(millis)),
            max_lag: self.max_lag,
        }
    }

    fn usable(&self) -> bool {
        self.usable.load(Ordering::Relaxed)
    }
}

/// The replica as the last check found it, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaState {
    /// Whether bulk reads go to it now.
    pub usable: bool,
    /// How far its replay is behind the primary; `None` when it did not answer or is no replica.
    pub lag: Option<Duration>,
    pub max_lag: Duration,
}

/// The pools a storage reads from: its primary's, and a replica's when one is configured.
#[derive(Debug)]
pub struct ReadPools<DB: sqlx::Database> {
    primary: sqlx::Pool<DB>,
    replica: Option<(sqlx::Pool<DB>, Arc<ReplicaHealth>)>,
}

impl<DB: sqlx::Database> Clone for ReadPools<DB> {
    fn clone(&self) -> Self {
        ReadPools {
            primary: self.primary.clone(),
            replica: self.replica.clone(),
        }
    }
}

impl<DB: sqlx::Database> ReadPools<DB> {
    /// The same routing over `primary` and a replica's pool opened by `reopen` from this one's
    /// (`Storage::with_own_connections`). The replica's health is shared: a check seen by
    /// either is seen by both.
    pub fn reopened(
        &self,
        primary: sqlx::Pool<DB>,
        reopen: impl Fn(&sqlx::Pool<DB>) -> sqlx::Pool<DB>,
    ) -> Self {
        ReadPools {
            primary,
            replica: self
                .replica
                .as_ref()
                .map(|(replica, health)| (reopen(replica), health.clone())),
        }
    }
}

impl<DB: sqlx::Database> ReadPools<DB> {
    /// Every read on the primary.
    pub fn primary_only(primary: sqlx::Pool<DB>) -> Self {
        ReadPools {
            primary,
            replica: None,
        }
    }

    /// Bulk reads on `replica` while it is well ([`ReplicaHealth`]).
    pub fn with_replica(
        primary: sqlx::Pool<DB>,
        replica: sqlx::Pool<DB>,
        health: Arc<ReplicaHealth>,
    ) -> Self {
        ReadPools {
            primary,
            replica: Some((replica, health)),
        }
    }

    /// The pool a bulk read goes to now (the module's three rules).
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        match &self.replica {
            Some((replica, health)) if health.usable() && !primary_required() => replica,
            _ => &self.primary,
        }
    }

    /// The replica's pool and health, when one is configured.
    pub fn replica(&self) -> Option<(&sqlx::Pool<DB>, &ReplicaHealth)> {
        self.replica
            .as_ref()
            .map(|(pool, health)| (pool, &**health))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_past_its_bound_or_silent_is_not_read_until_it_recovers() {
        let health = ReplicaHealth::new(Duration::from_secs(10));
        assert!(health.state().usable);
        let (state, changed) = health.record(Some(Duration::from_secs(3)));
        assert!(state.usable && !changed);
        assert_eq!(state.lag, Some(Duration::from_secs(3)));
        let (state, changed) = health.record(Some(Duration::from_secs(11)));
        assert!(!state.usable && changed);
        let (state, changed) = health.record(None);
        assert!(!state.usable && !changed);
        assert_eq!(state.lag, None);
        let (state, changed) = health.record(Some(Duration::ZERO));
        assert!(state.usable && changed);
    }

    #[tokio::test]
    async fn on_primary_holds_for_the_task_and_only_inside_it() {
        assert!(!primary_required());
        assert!(on_primary(async { primary_required() }).await);
        assert!(
            on_primary(async {
                tokio::task::yield_now().await;
                primary_required()
            })
            .await
        );
        assert!(!primary_required());
    }
}
