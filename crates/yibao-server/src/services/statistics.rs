//! The planner's statistics around bulk changes (roster imports, assessments, a bank's debit
//! results): refreshed while
//! the tables grow and once the change is done. Each refresh is best effort: the rows are
//! written whatever becomes of it, so a failure is only logged.

use yibao_storage::{GrowingTables, Storage};

/// Rows a bulk change writes before it first refreshes the statistics of the tables it grows.
pub const FIRST_REFRESH_ROWS: u64 = 1000;
/// Where statistics count rows as they are (SQLite), each later refresh comes once the rows
/// written have grown by this factor: the statistics then never count fewer than a quarter of
/// the rows, and a million rows cost five refreshes while they are written.
pub const REFRESH_GROWTH: u64 = 4;

/// When a bulk change refreshes the statistics of the tables it grows.
///
/// Statistics taken while a table was nearly empty make plans read a whole region for each
/// row, and each batch is then slower than the last. PostgreSQL scales the rows its
/// statistics counted to the table's present size, so one refresh once a batch is written is
/// enough; SQLite takes them as counted, so it refreshes again each time the rows written have
/// grown fourfold (measured on 1 000 000 rows: with statistics of 1000 rows, each batch's
/// reads scanned the persons written so far).
#[derive(Debug)]
pub struct GrowthRefresh {
    tables: GrowingTables,
    next: Option<u64>,
    again: bool,
}

impl GrowthRefresh {
    pub fn new(storage: &dyn Storage, tables: GrowingTables) -> Self {
        GrowthRefresh {
            tables,
            next: Some(FIRST_REFRESH_ROWS),
            again: !storage.backend().plans_scale_with_table_size(),
        }
    }

    /// Whether `written` rows call for a refresh. The caller lets its writes under way finish
    /// first: on SQLite a write transaction left open, its future not polled, would hold the
    /// lock that `ANALYZE` needs until the busy timeout.
    pub fn due(&self, written: u64) -> bool {
        self.next.is_some_and(|next| written >= next)
    }

    /// Plans the refresh after one at `written` rows.
    fn plan_next(&mut self, written: u64) {
        self.next = self.again.then(|| written.saturating_mul(REFRESH_GROWTH));
    }

    /// Refreshes the statistics, `written` rows being written, and plans the next refresh; one
    /// that failed is tried again a batch later.
    pub async fn refresh(&mut self, storage: &dyn Storage, written: u64) {
        if refresh_tables(storage, self.tables).await {
            self.plan_next(written);
        } else {
            self.next = Some(written.saturating_add(FIRST_REFRESH_ROWS));
        }
    }
}

/// Refreshes the statistics of the tables a bulk change grows ([`Storage::refresh_statistics_of`]);
/// `false`, logged, when that failed.
pub(crate) async fn refresh_tables(storage: &dyn Storage, tables: GrowingTables) -> bool {
    let started = std::time::Instant::now();
    match storage.refresh_statistics_of(tables).await {
        Ok(()) => {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis(),
                ?tables,
                "planner statistics of growing tables refreshed"
            );
            true
        }
        Err(err) => {
            tracing::warn!(%err, ?tables, "refreshing the planner statistics of growing tables failed");
            false
        }
    }
}

/// After a bulk change the planner needs fresh statistics (a search plan otherwise scans a
/// region's whole index); the change itself is committed, so a failure here is only logged.
pub(crate) async fn refresh_statistics(storage: &dyn Storage) {
    let started = std::time::Instant::now();
    match storage.refresh_statistics().await {
        Ok(()) => tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            "planner statistics refreshed after a bulk change"
        ),
        Err(err) => tracing::warn!(%err, "refreshing planner statistics failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refreshes(again: bool, written: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut schedule = GrowthRefresh {
            tables: GrowingTables::Enrolment,
            next: Some(FIRST_REFRESH_ROWS),
            again,
        };
        written
            .into_iter()
            .filter(|w| {
                let due = schedule.due(*w);
                if due {
                    schedule.plan_next(*w);
                }
                due
            })
            .collect()
    }

    #[test]
    fn statistics_are_refreshed_once_where_plans_scale_and_as_rows_quadruple_elsewhere() {
        let batches = || (1..=1000).map(|b| b * 1000);
        assert_eq!(refreshes(false, batches()), vec![1000]);
        assert_eq!(
            refreshes(true, batches()),
            vec![1000, 4000, 16000, 64000, 256000]
        );
        assert_eq!(refreshes(true, [999, 1500, 5999, 6000]), vec![1500, 6000]);
    }
}
