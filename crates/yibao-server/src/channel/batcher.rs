//! Group commit for payment reports: reports queued while a transaction is running are committed
//! together in the next one, each in its own savepoint (`Storage::report_payments`). Nothing waits
//! for a timer: an idle server commits each report at once; a busy one pays one commit for many.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use yibao_storage::collection::{NewPayment, PaymentReportOutcome, MAX_PAYMENT_BATCH};
use yibao_storage::{Storage, StorageError};

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
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
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
