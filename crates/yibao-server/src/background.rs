//! Work the server does on its own: expiring orders, forgetting old nonces, and posting applied
//! payments to the agency (到帐) from the outbox, at least once, with bounded retries.

use std::time::Duration;

use sha2::{Digest, Sha256};
use yibao_channel_client::signing;

use crate::channel::auth::NONCE_WINDOW_SECONDS;
use crate::channel::secrets::ChannelSecret;
use crate::AppState;

/// How often the sweeper and the posting worker wake up.
pub const TICK: Duration = Duration::from_secs(5);
/// Events posted per tick.
pub const POSTING_BATCH: usize = 200;
/// Attempts before an event goes to the dead-letter list.
pub const MAX_POSTING_ATTEMPTS: i64 = 12;
/// Longest wait between two attempts.
pub const MAX_BACKOFF_SECONDS: i64 = 3600;
/// How long delivered outbox events are kept by default (for staff to look back), days
/// (`outbox_delivered_kept_days`).
pub const DEFAULT_DELIVERED_EVENTS_KEPT_DAYS: i64 = 30;
/// Delivered outbox events pruned at most per round of upkeep (once a minute: up to 14.4 million a
/// day, far above any county's payments, while one round stays a short transaction).
pub const OUTBOX_PRUNED_PER_ROUND: usize = 10_000;
/// How often overdue refunds are reported in the log (an alert for operations), seconds.
pub const OVERDUE_ALERT_EVERY_SECONDS: i64 = 3600;
/// When overdue refunds were last reported (unix seconds).
static LAST_OVERDUE_ALERT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// How often the database's upkeep runs (WAL checkpoint, statistics), seconds.
pub const HOUSEKEEPING_EVERY_SECONDS: i64 = 60;
/// When the upkeep last ran (unix seconds).
static LAST_HOUSEKEEPING: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Whether a job last run at `last` is due again `every` seconds later, at `now`; when it is, `last`
/// becomes `now`, so of two ticks racing only one runs it.
fn due(last: &std::sync::atomic::AtomicI64, every: i64, now: i64) -> bool {
    use std::sync::atomic::Ordering;
    let then = last.load(Ordering::Relaxed);
    now - then >= every
        && last
            .compare_exchange(then, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// How often unpaid contributions past the window are priced at the late amount, seconds.
pub const LATE_PRICING_EVERY_SECONDS: i64 = 3600;
/// When late pricing last ran (unix seconds).
static LAST_LATE_PRICING: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Once an hour: in every region whose policy sets a late amount (`cover_rules.late`), from the
/// day after the window (or the extension) to the year's last date, the unpaid contributions are
/// priced again at it (services::assessment::reprice_late), so nobody has to remember to run
/// the assessment again when the window closes; the hourly pass also takes those an order or a
/// debit run held before. On a task of its own: the first pass after a window closes may take
/// minutes in a large region, and the tick's other work (posting to the agency, expiring orders)
/// must not wait for it.
fn price_late_payers(state: &AppState, now: i64) {
    if !due(&LAST_LATE_PRICING, LATE_PRICING_EVERY_SECONDS, now) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move { price_late_payers_now(&state).await });
}

/// One pass of the periodic late pricing (`price_late_payers`), now, over every region and fee
/// year it applies to.
pub async fn price_late_payers_now(state: &AppState) {
    let today = state.clock.today();
    let regions = match state.storage.list_regions().await {
        Ok(regions) => regions,
        Err(err) => {
            tracing::warn!(%err, "reading regions for late pricing failed");
            return;
        }
    };
    for region in regions {
        let policies = match state.storage.list_fee_policies(region.code()).await {
            Ok(policies) => policies,
            Err(err) => {
                tracing::warn!(%err, region = %region.code(), "reading fee policies for late pricing failed");
                continue;
            }
        };
        for policy in policies.iter().filter(|p| {
            !p.late_priced_categories().is_empty()
                && p.late_from() <= today
                && today <= p.cover_rules().last_date(p.fee_year())
        }) {
            let priced = crate::services::assessment::reprice_late(
                state.storage.as_ref(),
                policy,
                "system:late-pricing",
                today,
            )
            .await;
            if let Err(err) = priced {
                tracing::warn!(%err, region = %region.code(), "late pricing failed");
            }
        }
    }
}

/// Once a minute: delivered outbox events past their retention pruned, then the backend's upkeep (SQLite: WAL checkpoint, truncated past its bound, and
/// statistics; PostgreSQL with autovacuum off: ANALYZE/VACUUM of tables changed much).
async fn housekeeping(state: &AppState, now: i64) {
    if !due(&LAST_HOUSEKEEPING, HOUSEKEEPING_EVERY_SECONDS, now) {
        return;
    }
    prune_outbox(state, now).await;
    match state.storage.housekeeping().await {
        Ok(done) => {
            if done.wal_truncated {
                tracing::info!(
                    wal_bytes = done.wal_bytes,
                    "SQLite write-ahead log passed half its bound: checkpointed and truncated"
                );
            } else if let Some(wal_bytes) = done.wal_bytes {
                tracing::debug!(wal_bytes, "SQLite write-ahead log size");
            }
            if let Some(wal_bytes) = done.wal_bytes {
                state.metrics.set_wal_bytes(wal_bytes);
            }
            if !done.analyzed.is_empty() {
                tracing::info!(tables = ?done.analyzed, "planner statistics refreshed (autovacuum is off)");
            }
        }
        Err(err) => tracing::warn!(%err, "database upkeep failed"),
    }
}
/// Every tick: the read replica checked, and the bulk reads sent to it or to the primary until
/// the next tick (yibao_storage::read_routing). Logged when that changes.
async fn check_replica(state: &AppState) {
    match state.storage.check_replica().await {
        Ok(Some((replica, true))) if replica.usable => tracing::info!(
            lag_ms = replica.lag.map_or(0, |l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
            "read replica caught up: searches, lists and reports read it again"
        ),
        Ok(Some((replica, true))) => match replica.lag {
            Some(lag) => tracing::warn!(
                lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
                max_lag_ms = u64::try_from(replica.max_lag.as_millis()).unwrap_or(u64::MAX),
                "read replica lags past its bound: searches, lists and reports read the primary"
            ),
            None => tracing::warn!(
                "read replica unreachable or no longer a replica: searches, lists and reports read the primary"
            ),
        },
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "checking the read replica failed"),
    }
}

/// Every tick: the SQLite WAL truncated once past half its bound (a file's size otherwise; nothing
/// on PostgreSQL). Under load the WAL grows a few MiB a second, too fast for the once-a-minute
/// upkeep alone to keep it below its bound.
async fn bound_wal(state: &AppState) {
    match state.storage.bound_wal().await {
        Ok(done) => {
            if done.wal_truncated {
                tracing::info!(
                    wal_bytes = done.wal_bytes,
                    "SQLite write-ahead log passed half its bound: checkpointed and truncated"
                );
            }
            if let Some(wal_bytes) = done.wal_bytes {
                state.metrics.set_wal_bytes(wal_bytes);
            }
        }
        Err(err) => tracing::warn!(%err, "bounding the SQLite write-ahead log failed"),
    }
}

/// Delivered outbox events older than the retention go, one bounded batch a round (a backlog of
/// them after a long outage of this task is worked off over the following minutes). Undelivered
/// events stay however old: with no posting target configured they are the backlog
/// (`yibao_outbox_backlog`), never lost.
async fn prune_outbox(state: &AppState, now: i64) {
    let before = now.saturating_sub(state.delivered_events_kept_seconds);
    match state
        .storage
        .prune_delivered_events(before, OUTBOX_PRUNED_PER_ROUND)
        .await
    {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(
            pruned,
            kept_days = state.delivered_events_kept_seconds / 86_400,
            "delivered outbox events past their retention pruned"
        ),
        Err(err) => tracing::warn!(%err, "pruning the outbox failed"),
    }
}

/// How often collection windows reaching into a year without a holiday calendar are reported in
/// the log, seconds (the first report comes at start).
pub const CALENDAR_ALERT_EVERY_SECONDS: i64 = 86_400;
/// When missing holiday calendars were last reported (unix seconds).
static LAST_CALENDAR_ALERT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Timeout of one posting request.
pub const POSTING_TIMEOUT: Duration = Duration::from_secs(10);

/// Where payments are posted.
#[derive(Debug, Clone)]
pub struct PostingTarget {
    pub url: String,
    pub secret: ChannelSecret,
}

/// The signature of a message yibao sends out (a posting to the agency, a text message to the
/// SMS gateway): HMAC-SHA256 under `secret` of "SENT_AT\nID\nSHA-256(BODY)\n", lowercase hex, sent
/// with its `Yibao-Timestamp`.
pub fn event_signature(secret: &[u8], sent_at: i64, id: &str, body: &str) -> String {
    let body_hash = hex::encode(Sha256::digest(body.as_bytes()));
    signing::sign(secret, &format!("{sent_at}\n{id}\n{body_hash}\n"))
}

/// Wait before attempt `attempts + 1`: 10 s doubling, at most an hour.
pub fn backoff_seconds(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    10i64
        .saturating_mul(2i64.saturating_pow(exp))
        .min(MAX_BACKOFF_SECONDS)
}

/// Once an hour, a warning naming how many refunds are past their due date (staff see them in
/// `/api/v1/collection/overdue-refunds` and the refunds report).
async fn alert_overdue_refunds(state: &AppState, now: i64) {
    if !due(&LAST_OVERDUE_ALERT, OVERDUE_ALERT_EVERY_SECONDS, now) {
        return;
    }
    match state
        .storage
        .overdue_refunds(state.clock.today(), None, 1000)
        .await
    {
        Ok(overdue) if overdue.is_empty() => {}
        Ok(overdue) => tracing::warn!(
            overdue = overdue.len(),
            oldest_due = %overdue[0].due,
            "refunds past their due date (two working days): see /api/v1/collection/overdue-refunds"
        ),
        Err(err) => tracing::warn!(%err, "listing overdue refunds failed"),
    }
}

/// At start and then once a day, a warning per collection window that reaches into a year without
/// a holiday calendar (staff see the same in the refunds and daily collection reports).
async fn alert_missing_calendars(state: &AppState, now: i64) {
    if !due(&LAST_CALENDAR_ALERT, CALENDAR_ALERT_EVERY_SECONDS, now) {
        return;
    }
    log_missing_calendars(state).await;
}

/// Logs one warning per collection window reaching into a year without a holiday calendar;
/// returns how many.
pub async fn log_missing_calendars(state: &AppState) -> usize {
    match crate::services::setup::calendar_warnings(
        state.storage.as_ref(),
        None,
        state.clock.today(),
    )
    .await
    {
        Ok(warnings) => {
            for w in &warnings {
                tracing::warn!(
                    region = %w.region,
                    fee_year = w.fee_year,
                    year = w.year,
                    "{}",
                    w.message
                );
            }
            warnings.len()
        }
        Err(err) => {
            tracing::warn!(err = %err.message, "checking holiday calendars failed");
            0
        }
    }
}

/// Runs one round: expire orders, sweep nonces, upkeep, refresh the metrics' database figures,
/// abandon debit runs past their bound, post due events. Returns events posted.
pub async fn tick(
    state: &AppState,
    posting: Option<&PostingTarget>,
    client: &reqwest::Client,
) -> u64 {
    let now = state.clock.now().timestamp();
    check_replica(state).await;
    if let Err(err) = state.storage.expire_orders(now).await {
        tracing::warn!(%err, "expiring orders failed");
    }
    if let Err(err) = state.storage.sweep_nonces(now - NONCE_WINDOW_SECONDS).await {
        tracing::warn!(%err, "sweeping nonces failed");
    }
    alert_overdue_refunds(state, now).await;
    bound_wal(state).await;
    housekeeping(state, now).await;
    crate::metrics::refresh_if_due(state, now).await;
    alert_missing_calendars(state, now).await;
    price_late_payers(state, now);
    match state.storage.abandon_expired_debit_runs(now).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            runs = n,
            "debit runs abandoned: no result before their lock bound; payables released"
        ),
        Err(err) => tracing::warn!(%err, "abandoning expired debit runs failed"),
    }
    if let Err(err) = state
        .storage
        .prune_rejection_files(now - crate::services::roster_import::REJECTION_FILE_KEPT_SECONDS)
        .await
    {
        tracing::warn!(%err, "pruning roster rejection files failed");
    }
    let Some(target) = posting else { return 0 };
    let events = match state.storage.due_events(now, POSTING_BATCH).await {
        Ok(events) => events,
        Err(err) => {
            tracing::warn!(%err, "reading the outbox failed");
            return 0;
        }
    };
    let mut posted = 0;
    for event in events {
        let event_id = event.event_id;
        let payload = event.payload;
        // Each event signed at its own send time, over its id too, so a captured one cannot pass as another.
        let sent_at = state.clock.now().timestamp().max(now);
        let signature = event_signature(target.secret.expose(), sent_at, &event_id, &payload);
        let sent = client
            .post(&target.url)
            .header("content-type", "application/json")
            .header(signing::HEADER_TIMESTAMP, sent_at.to_string())
            .header(signing::HEADER_SIGNATURE, signature)
            .header("Yibao-Event-Id", &event_id)
            .timeout(POSTING_TIMEOUT)
            .body(payload)
            .send()
            .await;
        let ok = sent.as_ref().is_ok_and(|r| r.status().is_success());
        let result = if ok {
            posted += 1;
            state.storage.mark_event_delivered(&event_id, now).await
        } else {
            let attempts = event.attempts;
            let dead = attempts + 1 >= MAX_POSTING_ATTEMPTS;
            tracing::warn!(event_id, dead, "posting to the agency failed");
            state
                .storage
                .mark_event_failed(&event_id, now + backoff_seconds(attempts), dead)
                .await
        };
        if let Err(err) = result {
            tracing::warn!(%err, "recording a posting attempt failed");
        }
    }
    posted
}

/// Spawns the loop; it runs until the process ends.
pub fn spawn(state: AppState, posting: Option<PostingTarget>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut interval = tokio::time::interval(TICK);
        loop {
            interval.tick().await;
            tick(&state, posting.as_ref(), &client).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff_seconds(0), 10);
        assert_eq!(backoff_seconds(1), 20);
        assert_eq!(backoff_seconds(5), 320);
        assert_eq!(backoff_seconds(9), MAX_BACKOFF_SECONDS);
        assert_eq!(backoff_seconds(1000), MAX_BACKOFF_SECONDS);
    }
}
