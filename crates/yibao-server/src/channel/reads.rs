//! Gathered reads for payment reports (issue 14): before a report is decided, its handler reads
//! the payables it names and what is stored of their holders for the 2025 rules. That was two
//! statements on two pooled connections per report, each with its release ping. Reports that
//! arrive while a round is being read are read together in the next: one connection and one
//! statement per region for the payables of them all, then one per region for their holders
//! (`Storage::payables_with_cover`). Each report gets exactly what it named. Nothing waits for a
//! timer: an idle server reads each report at once.
//!
//! These reads only prepare the decision; the group-commit writer reads and locks the payables
//! again in its transaction and decides there, so a round read a moment earlier changes nothing
//! about what a report is allowed to do.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use yibao_storage::payable_search::FoundPayables;
use yibao_storage::{Storage, StorageError};

/// Reports waiting for the next round at most; a full queue makes reporters wait.
pub const READ_QUEUE: usize = 1024;
/// Payable identifiers read in one round at most (a report names at most
/// `MAX_PAYABLES_PER_REQUEST`; a report that would pass this waits for the next round).
pub const MAX_GATHERED_IDS: usize = 1000;

type Reply = oneshot::Sender<Result<FoundPayables, StorageError>>;

struct Job {
    payable_ids: Vec<String>,
    reply: Reply,
}

#[derive(Clone)]
pub struct PayableReader {
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for PayableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayableReader")
    }
}

impl PayableReader {
    /// Starts the one reader task.
    pub fn spawn(storage: Arc<dyn Storage>) -> PayableReader {
        let (sender, mut receiver) = mpsc::channel::<Job>(READ_QUEUE);
        tokio::spawn(async move {
            let mut held: Option<Job> = None;
            loop {
                let first = match held.take() {
                    Some(job) => job,
                    None => match receiver.recv().await {
                        Some(job) => job,
                        None => break,
                    },
                };
                let mut ids: BTreeSet<String> = first.payable_ids.iter().cloned().collect();
                let mut jobs = vec![first];
                while let Ok(job) = receiver.try_recv() {
                    let more = job
                        .payable_ids
                        .iter()
                        .filter(|id| !ids.contains(*id))
                        .count();
                    if ids.len() + more > MAX_GATHERED_IDS {
                        held = Some(job);
                        break;
                    }
                    ids.extend(job.payable_ids.iter().cloned());
                    jobs.push(job);
                }
                let ids: Vec<String> = ids.into_iter().collect();
                match storage.payables_with_cover(&ids).await {
                    Ok(found) => {
                        for job in jobs {
                            let _ = job.reply.send(Ok(own_part(&found, &job.payable_ids)));
                        }
                    }
                    // Each reporter gets the error (503 when the database is away) and retries.
                    Err(err) => {
                        for job in jobs {
                            let _ = job.reply.send(Err(err.for_each_waiter()));
                        }
                    }
                }
            }
        });
        PayableReader { sender }
    }

    /// Reads the payables named (and what is stored of their holders), gathered with the reports
    /// that arrive meanwhile.
    pub async fn read(&self, payable_ids: &[String]) -> Result<FoundPayables, StorageError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StorageError::Unavailable("payable reader stopped".into());
        self.sender
            .send(Job {
                payable_ids: payable_ids.to_vec(),
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// What one report named, out of a round read for several: its payables, in the order the round
/// found them, and what is stored of their holders.
fn own_part(found: &FoundPayables, payable_ids: &[String]) -> FoundPayables {
    let views: Vec<_> = found
        .views
        .iter()
        .filter(|v| payable_ids.contains(&v.payable.payable_id))
        .cloned()
        .collect();
    let stored = found
        .stored
        .iter()
        .filter(|((region, person), _)| {
            views
                .iter()
                .any(|v| v.payable.region == *region && v.payable.id_number == *person)
        })
        .map(|(key, cover)| (*key, cover.clone()))
        .collect();
    FoundPayables { views, stored }
}
