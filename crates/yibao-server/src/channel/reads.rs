//! Gathered reads (issue 14): channels' searches, and a payment report's reads before it is
//! decided, each cost statements of their own and a pooled connection with its release ping.
//! Requests that arrive while a round is being read are read together in the next round, on one
//! connection: searches with one statement for all their payables
//! (`Storage::search_persons`), payment reports with one statement per region for the payables
//! they name (`Storage::payables_with_cover`); then what is stored of the holders for the 2025
//! rules, one statement per region. Each request gets exactly its own answer, as it would alone.
//! Nothing waits for a timer: an idle server reads each request at once.
//!
//! A payment report's reads only prepare its decision; the group-commit writer reads and locks
//! the payables again in its own transaction and decides there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use yibao_storage::payable_search::{FoundPayables, PersonQuery, MAX_GATHERED_SEARCHES};
use yibao_storage::{Storage, StorageError};

/// Requests waiting for the next round at most, per reader; a full queue makes requests wait.
pub const READ_QUEUE: usize = 1024;
/// Payable identifiers read in one round of payment reports at most (a report names at most
/// `MAX_PAYABLES_PER_REQUEST`; one that would pass this waits for the next round).
pub const MAX_GATHERED_IDS: usize = 1000;

type Reply<A> = oneshot::Sender<Result<A, StorageError>>;
type RoundFuture<A> = Pin<Box<dyn Future<Output = Result<Vec<A>, StorageError>> + Send>>;
/// A round: the requests gathered, answered in their order.
type Round<Q, A> = fn(Arc<dyn Storage>, Vec<Q>) -> RoundFuture<A>;

/// One reader task and its queue.
struct Gatherer<Q, A> {
    sender: mpsc::Sender<(Q, Reply<A>)>,
}

impl<Q, A> Clone for Gatherer<Q, A> {
    fn clone(&self) -> Self {
        Gatherer {
            sender: self.sender.clone(),
        }
    }
}

impl<Q: Send + 'static, A: Send + 'static> Gatherer<Q, A> {
    /// Starts the task: a round takes what is queued, up to `max_weight` by `weight` (a first
    /// request heavier than that goes alone).
    fn spawn(
        storage: Arc<dyn Storage>,
        max_weight: usize,
        weight: fn(&Q) -> usize,
        round: Round<Q, A>,
    ) -> Self {
        let (sender, mut receiver) = mpsc::channel::<(Q, Reply<A>)>(READ_QUEUE);
        tokio::spawn(async move {
            let mut held: Option<(Q, Reply<A>)> = None;
            loop {
                let first = match held.take() {
                    Some(job) => job,
                    None => match receiver.recv().await {
                        Some(job) => job,
                        None => break,
                    },
                };
                let mut load = weight(&first.0);
                let mut jobs = vec![first];
                while let Ok(job) = receiver.try_recv() {
                    if load + weight(&job.0) > max_weight {
                        held = Some(job);
                        break;
                    }
                    load += weight(&job.0);
                    jobs.push(job);
                }
                let (queries, replies): (Vec<Q>, Vec<Reply<A>>) = jobs.into_iter().unzip();
                match round(storage.clone(), queries).await {
                    Ok(answers) if answers.len() == replies.len() => {
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                    Ok(_) => {
                        for reply in replies {
                            let _ = reply.send(Err(StorageError::Other(
                                "a gathered read lost a request".into(),
                            )));
                        }
                    }
                    // Each request gets the error (503 when the database is away) and retries.
                    Err(err) => {
                        for reply in replies {
                            let _ = reply.send(Err(err.for_each_waiter()));
                        }
                    }
                }
            }
        });
        Gatherer { sender }
    }

    async fn ask(&self, query: Q, what: &str) -> Result<A, StorageError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StorageError::Unavailable(format!("{what} stopped"));
        self.sender
            .send((query, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Payment reports' reads, gathered.
#[derive(Clone)]
pub struct PayableReader {
    gatherer: Gatherer<Vec<String>, FoundPayables>,
}

impl std::fmt::Debug for PayableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayableReader")
    }
}

impl PayableReader {
    /// Starts the one reader task.
    pub fn spawn(storage: Arc<dyn Storage>) -> PayableReader {
        PayableReader {
            gatherer: Gatherer::spawn(storage, MAX_GATHERED_IDS, Vec::len, |storage, jobs| {
                Box::pin(async move {
                    let mut ids: Vec<String> = jobs.iter().flatten().cloned().collect();
                    ids.sort();
                    ids.dedup();
                    let found = storage.payables_with_cover(&ids).await?;
                    Ok(jobs.iter().map(|named| own_part(&found, named)).collect())
                })
            }),
        }
    }

    /// Reads the payables named (and what is stored of their holders), gathered with the reports
    /// that arrive meanwhile.
    pub async fn read(&self, payable_ids: &[String]) -> Result<FoundPayables, StorageError> {
        self.gatherer
            .ask(payable_ids.to_vec(), "payable reader")
            .await
    }
}

/// Channels' searches, gathered.
#[derive(Clone)]
pub struct SearchReader {
    gatherer: Gatherer<PersonQuery, FoundPayables>,
}

impl std::fmt::Debug for SearchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchReader")
    }
}

impl SearchReader {
    /// Starts the one reader task where the storage reads searches together; `None` on a Citus
    /// cluster, where each search goes to its own shards and runs on its own.
    pub async fn start(storage: Arc<dyn Storage>) -> Result<Option<SearchReader>, StorageError> {
        if !storage.gathers_searches().await? {
            return Ok(None);
        }
        Ok(Some(Self::spawn(storage)))
    }

    /// Starts the one reader task.
    pub fn spawn(storage: Arc<dyn Storage>) -> SearchReader {
        SearchReader {
            gatherer: Gatherer::spawn(
                storage,
                MAX_GATHERED_SEARCHES,
                |_| 1,
                |storage, queries| Box::pin(async move { storage.search_persons(&queries).await }),
            ),
        }
    }

    /// A person's current payables in the regions given (and what is stored of them), gathered
    /// with the searches that arrive meanwhile.
    pub async fn search(&self, query: PersonQuery) -> Result<FoundPayables, StorageError> {
        self.gatherer.ask(query, "search reader").await
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
