//! Group commit for nonces (issue 14): every channel request records its nonce before it is
//! served, and that was a statement and a commit of its own per request. Nonces that arrive
//! while a round is being written are written together in the next, one statement and one
//! commit per channel (`Storage::remember_nonces`). Each request still waits for its nonce to be
//! committed before it is served, so a replay is refused after a restart and by a second server
//! on the same database exactly as before: the database's unique key decides, never memory.
//! Nothing waits for a timer: an idle server writes each nonce at once.
//!
//! A payment report's nonce does not come here: it is recorded in the payment writer's
//! transaction, with the report ([`super::auth::PendingNonce`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use yibao_storage::collection::MAX_NONCE_BATCH;
use yibao_storage::{Storage, StorageError};

/// Nonces waiting for the next round at most; a full queue makes requests wait.
pub const NONCE_QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<bool, StorageError>>;

struct Job {
    channel_id: String,
    nonce: String,
    now: i64,
    reply: Reply,
}

#[derive(Clone)]
pub struct NonceWriter {
    sender: mpsc::Sender<Job>,
}

impl std::fmt::Debug for NonceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceWriter")
    }
}

impl NonceWriter {
    /// Starts the one writer task on this runtime.
    pub fn spawn(storage: Arc<dyn Storage>) -> NonceWriter {
        let (nonces, writer) = Self::with_writer(storage);
        tokio::spawn(writer);
        nonces
    }

    /// The nonce writer's handle and its task, for the caller to run where it will
    /// ([`super::gathering`]); the task ends once every clone of the handle is dropped.
    pub fn with_writer(
        storage: Arc<dyn Storage>,
    ) -> (
        NonceWriter,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (sender, mut receiver) = mpsc::channel::<Job>(NONCE_QUEUE);
        let writer = async move {
            while let Some(first) = receiver.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_NONCE_BATCH {
                    match receiver.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                // One statement per channel: on a Citus cluster each stays on its channel's shard.
                let mut by_channel: BTreeMap<String, Vec<Job>> = BTreeMap::new();
                for job in jobs {
                    by_channel
                        .entry(job.channel_id.clone())
                        .or_default()
                        .push(job);
                }
                for (channel_id, jobs) in by_channel {
                    let nonces: Vec<String> = jobs.iter().map(|j| j.nonce.clone()).collect();
                    let now = jobs.iter().map(|j| j.now).max().unwrap_or_default();
                    match storage.remember_nonces(&channel_id, &nonces, now).await {
                        Ok(fresh) => {
                            for (job, fresh) in jobs.into_iter().zip(fresh) {
                                let _ = job.reply.send(Ok(fresh));
                            }
                        }
                        // Nothing was written: each request gets the error (503 when the
                        // database is away) and the channel retries with the same nonce.
                        Err(err) => {
                            for job in jobs {
                                let _ = job.reply.send(Err(err.for_each_waiter()));
                            }
                        }
                    }
                }
            }
        };
        (NonceWriter { sender }, writer)
    }

    /// Records the nonce and waits for its commit; `false` when the channel used it before.
    pub async fn remember(
        &self,
        channel_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StorageError::Unavailable("nonce writer stopped".into());
        self.sender
            .send(Job {
                channel_id: channel_id.to_owned(),
                nonce: nonce.to_owned(),
                now,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
