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
/// A round: the requests gathered, answered in their order, with what the round reads from
/// (the storage).
type Round<C, Q, A> = fn(C, Vec<Q>) -> RoundFuture<A>;

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

impl<Q: Clone + Send + 'static, A: Send + 'static> Gatherer<Q, A> {
    /// Starts the task: a round takes what is queued, up to `max_weight` by `weight` (a first
    /// request heavier than that goes alone). A round of several that fails, other than with
    /// the database away, is read again one request at a time, so that one request's trouble
    /// (a row that cannot be read) is only its own; a round that panics fails its requests and
    /// the task goes on.
    fn with_task<C: Clone + Send + Sync + 'static>(
        storage: C,
        max_weight: usize,
        weight: fn(&Q) -> usize,
        round: Round<C, Q, A>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (sender, mut receiver) = mpsc::channel::<(Q, Reply<A>)>(READ_QUEUE);
        let task = async move {
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
                let answers = run_round(&storage, round, queries.clone()).await;
                match answers {
                    Err(err)
                        if replies.len() > 1 && !matches!(err, StorageError::Unavailable(_)) =>
                    {
                        for (query, reply) in queries.into_iter().zip(replies) {
                            let answer = run_round(&storage, round, vec![query]).await.and_then(
                                |mut one| {
                                    one.pop().ok_or_else(|| {
                                        StorageError::Other("a read gave no answer".into())
                                    })
                                },
                            );
                            let _ = reply.send(answer);
                        }
                    }
                    // Each request gets the error (503 when the database is away) and retries.
                    Err(err) => {
                        for reply in replies {
                            let _ = reply.send(Err(err.for_each_waiter()));
                        }
                    }
                    Ok(answers) => {
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(Ok(answer));
                        }
                    }
                }
            }
        };
        (Gatherer { sender }, task)
    }

    /// [`Self::with_task`], the task started on this runtime.
    #[cfg(test)]
    fn spawn<C: Clone + Send + Sync + 'static>(
        storage: C,
        max_weight: usize,
        weight: fn(&Q) -> usize,
        round: Round<C, Q, A>,
    ) -> Self {
        let (gatherer, task) = Self::with_task(storage, max_weight, weight, round);
        tokio::spawn(task);
        gatherer
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

/// Runs a round as a task of its own, so that a panic in it fails its requests, not the reader,
/// and checks it answered each request once.
async fn run_round<C: Clone, Q: Send + 'static, A: Send + 'static>(
    storage: &C,
    round: Round<C, Q, A>,
    queries: Vec<Q>,
) -> Result<Vec<A>, StorageError> {
    let asked = queries.len();
    let answers = tokio::spawn(round(storage.clone(), queries))
        .await
        .map_err(|_| StorageError::Other("a gathered read failed".into()))??;
    if answers.len() != asked {
        return Err(StorageError::Other("a gathered read lost a request".into()));
    }
    Ok(answers)
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
    /// Starts the one reader task on this runtime.
    pub fn spawn(storage: Arc<dyn Storage>) -> PayableReader {
        let (reader, task) = Self::with_task(storage);
        tokio::spawn(task);
        reader
    }

    /// The reader and its task, for the caller to run where it will ([`super::gathering`]);
    /// the task ends once every clone of the reader is dropped.
    pub fn with_task(
        storage: Arc<dyn Storage>,
    ) -> (PayableReader, impl Future<Output = ()> + Send + 'static) {
        let (gatherer, task) =
            Gatherer::with_task(storage, MAX_GATHERED_IDS, Vec::len, |storage, jobs| {
                Box::pin(async move {
                    let mut ids: Vec<String> = jobs.iter().flatten().cloned().collect();
                    ids.sort();
                    ids.dedup();
                    let found = storage.payables_with_cover(&ids).await?;
                    Ok(jobs.iter().map(|named| own_part(&found, named)).collect())
                })
            });
        (PayableReader { gatherer }, task)
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
    /// Starts the one reader task on this runtime.
    pub fn spawn(storage: Arc<dyn Storage>) -> SearchReader {
        let (reader, task) = Self::with_task(storage);
        tokio::spawn(task);
        reader
    }

    /// The reader and its task, for the caller to run where it will ([`super::gathering`]);
    /// the task ends once every clone of the reader is dropped.
    pub fn with_task(
        storage: Arc<dyn Storage>,
    ) -> (SearchReader, impl Future<Output = ()> + Send + 'static) {
        let (gatherer, task) = Gatherer::with_task(
            storage,
            MAX_GATHERED_SEARCHES,
            |_| 1,
            |storage, queries| Box::pin(async move { storage.search_persons(&queries).await }),
        );
        (SearchReader { gatherer }, task)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A round over plain numbers: answers each with its double, fails when it holds a 13, panics
    /// when it holds a 99.
    fn doubles(_: (), queries: Vec<u32>) -> RoundFuture<u32> {
        Box::pin(async move {
            assert!(!queries.contains(&99), "a round that panics");
            if queries.contains(&13) {
                return Err(StorageError::Other("unlucky".into()));
            }
            Ok(queries.iter().map(|q| q * 2).collect())
        })
    }

    #[tokio::test]
    async fn a_failing_request_fails_alone_and_a_panicking_round_leaves_the_reader_running() {
        let gatherer = Gatherer::spawn((), 5, |_| 1, doubles);
        let mut asks = tokio::task::JoinSet::new();
        for q in 0..40u32 {
            let gatherer = gatherer.clone();
            asks.spawn(async move { (q, gatherer.ask(q, "test reader").await) });
        }
        while let Some(done) = asks.join_next().await {
            let (q, answer) = done.unwrap();
            match answer {
                Ok(doubled) => assert_eq!(doubled, q * 2),
                Err(err) => assert_eq!(q, 13, "only the bad request fails: {err}"),
            }
        }
        assert!(gatherer.ask(99, "test reader").await.is_err());
        assert_eq!(gatherer.ask(21, "test reader").await.unwrap(), 42);
    }
}
