//! The tasks that gather channel requests into rounds (group commit of payment reports and of
//! nonces, gathered reads of payables and searches), on a thread of their own with a runtime and
//! database connections of their own (issue 14).
//!
//! Why: each of these tasks runs a round as a few statements one after another, and everything
//! waits for it. On the request handlers' runtime, the task was woken after each statement only
//! once the runtime had polled the requests queued before it: under 64 reporters on PostgreSQL
//! the payment writer took 12 ms a batch of 32, of which PostgreSQL spent about 7, and reports
//! ran at 2 600 a second. On threads of their own it takes 8.7-9.8 ms, and reports run at 3 200
//! to 3 900 a second (BENCHMARKS.md, "Group commit on threads of its own"). The connections
//! must be opened on the thread too: a PostgreSQL connection is woken by the runtime it was
//! opened on (`Storage::with_own_connections`). Each task has a thread: sharing one, the
//! writer waited behind the readers' rounds (2 800 a second).
//!
//! Each task ends when every clone of its handle is dropped; its thread ends with it. On
//! PostgreSQL a server so holds up to [`CONNECTIONS_PER_TASK`] more connections per task, 8 in
//! all, beside its pool's 16.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;
use yibao_storage::{Storage, StorageError};

use super::batcher::PaymentBatcher;
use super::nonces::NonceWriter;
use super::reads::{PayableReader, SearchReader};
use crate::AppState;

/// Connections of each task's own pool at most: a task reads or writes one round at a time; the
/// second saves the next round waiting while sqlx pings the connection the last one released
/// (and serves the payment writer's one refresh of statistics, `batcher`).
pub const CONNECTIONS_PER_TASK: u32 = 2;

/// The handles of the gathering tasks, to be put in the server's state ([`Gathering::install`]).
#[derive(Debug)]
pub struct Gathering {
    pub payment_batcher: PaymentBatcher,
    pub nonce_writer: NonceWriter,
    pub payable_reader: PayableReader,
    /// `None` on a Citus cluster, where each search goes to its own shards and runs on its own.
    pub search_reader: Option<SearchReader>,
}

impl Gathering {
    /// Starts the tasks, each on its thread; `max_batch` payment reports per transaction at most.
    pub async fn start(storage: Arc<dyn Storage>, max_batch: usize) -> Result<Self, StorageError> {
        let search_reader = match storage.gathers_searches().await? {
            true => Some(on_own_thread("yibao-searches", &storage, SearchReader::with_task).await?),
            false => None,
        };
        Ok(Gathering {
            payment_batcher: on_own_thread("yibao-payments", &storage, move |storage| {
                PaymentBatcher::with_writer(storage, max_batch)
            })
            .await?,
            nonce_writer: on_own_thread("yibao-nonces", &storage, NonceWriter::with_writer).await?,
            payable_reader: on_own_thread(
                "yibao-payable-reads",
                &storage,
                PayableReader::with_task,
            )
            .await?,
            search_reader,
        })
    }

    /// Puts the handles in the server's state: from then on channel requests go through them.
    pub fn install(self, state: &mut AppState) {
        state.payment_batcher = Some(self.payment_batcher);
        state.nonce_writer = Some(self.nonce_writer);
        state.payable_reader = Some(self.payable_reader);
        state.search_reader = self.search_reader;
    }
}

/// Starts a thread named `name` with a runtime and connections of its own, makes there the task
/// and its handle with `make`, and runs the task until its handles are all dropped.
async fn on_own_thread<H, F>(
    name: &str,
    storage: &Arc<dyn Storage>,
    make: impl FnOnce(Arc<dyn Storage>) -> (H, F) + Send + 'static,
) -> Result<H, StorageError>
where
    H: Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let storage = storage.clone();
    let (ready, started) = oneshot::channel::<Result<H, String>>();
    let not_started = |e: &dyn std::fmt::Display| StorageError::Other(format!("{name}: {e}"));
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // Built here: a runtime must not be dropped on an async thread, as one that was
            // built there and then not moved to a thread the system refused would be.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                // Opened here, so that this runtime wakes the task when its statements answer.
                let storage = storage
                    .with_own_connections(CONNECTIONS_PER_TASK)
                    .unwrap_or(storage);
                let (handle, task) = make(storage);
                if ready.send(Ok(handle)).is_ok() {
                    task.await;
                }
            })
        })
        .map_err(|e| not_started(&e))?;
    match started.await {
        Ok(Ok(handle)) => Ok(handle),
        Ok(Err(e)) => Err(not_started(&e)),
        Err(_) => Err(not_started(&"stopped as it started")),
    }
}
