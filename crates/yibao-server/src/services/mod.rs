//! Use cases shared by the HTTP API, the console, the citizen site and the command line: roster
//! import, assessment, staff and channels, collection through a channel, reconciliation, bank
//! debit runs, refunds, receipts, region setup and the audit log. The handlers extract a request,
//! call one of these and shape the answer; the scope checks and the audit entries live here.

pub mod accounts;
pub mod applications;
pub mod assessment;
pub mod audit_log;
pub mod channels;
pub mod collection;
pub mod cover;
pub mod debit;
pub mod follow_ups;
pub mod persons;
pub mod receipts;
pub mod reconciliation;
pub mod refunds;
pub mod reminders;
pub mod roster_import;
pub mod sandbox;
pub mod settlement_scope;
pub mod setup;
pub mod staff;
pub mod statistics;
pub mod village_agents;

use yibao_domain::RegionCode;
use yibao_storage::AuditEntry;

use crate::auth::Staff;
use crate::{AppState, ServiceError};

/// How far a long piece of work (a roster import, an assessment) has come, for a progress display:
/// the items done and, once known, how many there are in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// A new identifier: the prefix and a random UUID (payment, refund, event and run numbers).
/// Version 4, random throughout: a debit run's number takes its first 8 digits, which a UUID
/// that starts with the time (as [`new_regional_id`]'s) would repeat from one run to the next.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A new identifier of a row that lives in `region`, carrying it (`yibao_storage::regional_id`):
/// on a Citus cluster the statements that find it by this identifier go to one shard.
///
/// Its UUID is of version 7: the first 48 bits are the time in milliseconds, the other 74 random
/// (as unguessable as a version 4's 122 for anything a channel could do with one). These
/// identifiers are keys (payables, orders, payments, refunds, events), so a region's new rows
/// go in at the end of their key's index, on pages already in memory, instead of at random
/// places all over it: 1 000 000 payables inserted into a copy of the table took 5.4 s with
/// keys in time order against 8.9-10.1 s with random ones (BENCHMARKS.md).
pub fn new_regional_id(prefix: &str, region: &str) -> String {
    yibao_storage::regional_id::regional_id(
        prefix,
        region,
        &uuid::Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext))
            .simple()
            .to_string(),
    )
}

/// Six random lowercase alphanumerics: the check code printed on a receipt.
pub fn new_check_code() -> String {
    let raw = uuid::Uuid::new_v4();
    raw.as_bytes()
        .iter()
        .take(6)
        .map(|b| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[usize::from(*b) % 36]))
        .collect()
}

/// Writes one line of the audit log: who (the signed-in staff member) did what to which target,
/// in which region, with what detail.
pub async fn audit(
    state: &AppState,
    staff: &Staff,
    action: &str,
    region: Option<RegionCode>,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), ServiceError> {
    record_audit(
        state.storage.as_ref(),
        staff.username(),
        action,
        region,
        target,
        detail,
    )
    .await
}

/// Writes one line of the audit log for `actor` (a staff member's user name, or the command
/// line's `cli:<user>`).
pub async fn record_audit(
    storage: &dyn yibao_storage::Storage,
    actor: &str,
    action: &str,
    region: Option<RegionCode>,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), ServiceError> {
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            region: region.map(|r| r.to_string()),
            target: target.to_owned(),
            detail,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_ids_carry_their_region_and_sort_by_when_they_were_made() {
        let first = new_regional_id("p", "320600");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later: Vec<String> = (0..1000).map(|_| new_regional_id("p", "320600")).collect();
        assert_eq!(
            yibao_storage::regional_id::region_in_id(&first),
            Some("320600")
        );
        let unique = first.strip_prefix("p320600R").expect("the region's form");
        assert_eq!(unique.len(), 32);
        assert!(unique.bytes().all(|b| b.is_ascii_hexdigit()));
        // Made later, sorted after: a region's new keys go in at the end of its index.
        assert!(later.iter().all(|id| *id > first));
        // Made in the same millisecond, still distinct (74 random bits each).
        let distinct: std::collections::HashSet<&String> = later.iter().collect();
        assert_eq!(distinct.len(), later.len());
    }
}
