//! Group commit for payment reports: reports queued while a transaction is running are committed
//! together in the next one, each in its own savepoint (`Storage::report_payments`). Nothing waits
//! for a timer: an idle server commits each report at once; a busy one pays one commit for many.
//!
//! On PostgreSQL the writer also refreshes the statistics of the payment tables once it has
//! stored [`FIRST_REFRESH_ROWS`] new payments (issue 14), and again a thousand later if that
//! failed. Each connection keeps a generic plan of every foreign-key check and statement once it
//! has run a few times; made while the payment tables were empty or nearly so (statistics taken
//! after an assessment, say), that plan scans `payments` whole for each receipt, application and
//! refund, and goes on doing so as the table grows, until the statistics change. One refresh is
//! enough: PostgreSQL scales the rows its statistics counted to the table's present size. Each
//! process refreshes once (one `ANALYZE` of a few tables after a restart, even where they are
//! large); the periodic upkeep (autovacuum off) or autovacuum keeps them fresh after that. SQLite
//! checks a foreign key through the parent's key without planning it, and its statements are
//! planned again whenever statistics change, so it does not need this.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use yibao_storage::collection::{NewPayment, PaymentReportOutcome, MAX_PAYMENT_BATCH};
use yibao_storage::{Backend, GrowingTables, Storage, StorageError};

use crate::services::statistics::{refresh_tables, FIRST_REFRESH_ROWS};

/// Reports waiting for the next transaction at most; a full queue makes reporters wait.
pub const PAYMENT_QUEUE: usize = 1024;

type Reply = oneshot::Sender<Result<PaymentReportOutcome, StorageError>>;

#[derive(Clone)]
pub struct PaymentBatcher {
    sender: mpsc::Sender<(NewPayment, Reply)>,
}

impl std::fmt::Debug for PaymentBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentBatcher")
    }
}

impl PaymentBatcher {
    /// Starts the one writer task on this runtime; `max_batch` is capped at [`MAX_PAYMENT_BATCH`].
    pub fn spawn(storage: Arc<dyn Storage>, max_batch: usize) -> PaymentBatcher {
        let (batcher, writer) = Self::with_writer(storage, max_batch);
        tokio::spawn(writer);
        batcher
    }

    /// The batcher and its writer, for the caller to run where it will
    /// ([`super::gathering`]); the writer ends once every clone of the batcher is dropped.
    pub fn with_writer(
        storage: Arc<dyn Storage>,
        max_batch: usize,
    ) -> (
        PaymentBatcher,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let max_batch = max_batch.clamp(1, MAX_PAYMENT_BATCH);
        let (sender, mut receiver) = mpsc::channel::<(NewPayment, Reply)>(PAYMENT_QUEUE);
        let writer = async move {
            let mut refresh = match storage.backend() {
                Backend::Postgres => Refresh::At(FIRST_REFRESH_ROWS),
                Backend::Sqlite => Refresh::Done,
            };
            let mut stored: u64 = 0;
            while let Some(first) = receiver.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < max_batch {
                    match receiver.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (payments, replies): (Vec<NewPayment>, Vec<Reply>) = jobs.into_iter().unzip();
                match storage.report_payments(&payments).await {
                    Ok(results) => {
                        stored += results
                            .iter()
                            .filter(|r| matches!(r, Ok(PaymentReportOutcome::Stored(_))))
                            .count() as u64;
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                        refresh = refresh.next(&storage, stored).await;
                    }
                    // The commit failed: none of them happened; each reporter gets the error and retries.
                    // A database that is away stays `Unavailable` (503), not an internal error.
                    Err(err) => {
                        for reply in replies {
                            let _ = reply.send(Err(err.for_each_waiter()));
                        }
                    }
                }
            }
        };
        (PaymentBatcher { sender }, writer)
    }

    /// Queues a report and waits for its result.
    pub async fn report(&self, payment: NewPayment) -> Result<PaymentReportOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((payment, reply))
            .await
            .map_err(|_| StorageError::Unavailable("payment writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Unavailable("payment writer stopped".into()))?
    }
}

/// The writer's refresh of the payment tables' statistics (see the module's documentation).
enum Refresh {
    /// Due once this many new payments are stored.
    At(u64),
    /// Under way beside the writer, which goes on: `ANALYZE` blocks no write.
    Running(JoinHandle<bool>),
    Done,
}

impl Refresh {
    /// What comes after a batch, `stored` new payments stored so far.
    async fn next(self, storage: &Arc<dyn Storage>, stored: u64) -> Refresh {
        match self {
            Refresh::At(at) if stored >= at => {
                let storage = storage.clone();
                Refresh::Running(tokio::spawn(async move {
                    refresh_tables(storage.as_ref(), GrowingTables::Payments).await
                }))
            }
            Refresh::Running(task) if task.is_finished() => match task.await {
                Ok(true) => Refresh::Done,
                _ => Refresh::At(stored.saturating_add(FIRST_REFRESH_ROWS)),
            },
            other => other,
        }
    }
}
