//! Text messages (短信) to residents: sign-in codes today, payment reminders with the 2025 rules.
//! A message is written to the outbox (`message_outbox`) in the same transaction as what it
//! announces; a background round ([`deliver_messages`], every [`DELIVERY_ROUND_SECONDS`]) hands
//! what is due to a [`MessageSender`] with bounded retries. Two senders ship: [`HttpSmsSender`]
//! for an SMS gateway, and [`DemoMailbox`], which keeps the messages in memory for the demo's
//! page `/demo/mailbox` and for the tests. A message's text, which may hold a code, is never
//! logged; a sent or abandoned message's text is erased from the outbox.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use yibao_server::AppState;

use crate::render;

/// Messages handed to the sender in one round, and the time between rounds.
pub const MESSAGES_PER_ROUND: i64 = 100;
pub const DELIVERY_ROUND_SECONDS: u64 = 2;
/// Time between two rounds that queue the day's payment reminders (a round run again in the
/// same interval queues nothing twice).
pub const REMINDER_ROUND_SECONDS: u64 = 3600;
/// Attempts before a message is given up.
pub const MAX_MESSAGE_ATTEMPTS: i32 = 5;
/// Messages the demo mailbox keeps (the oldest go first).
pub const DEMO_MAILBOX_KEPT: usize = 200;
/// Timeout of one request to the SMS gateway.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where messages go.
#[async_trait::async_trait]
pub trait MessageSender: Send + Sync {
    /// Sends `text` to `phone`; `Err` with a reason (without the text) to try again later.
    async fn send(&self, message_id: &str, phone: &str, text: &str) -> Result<(), String>;
}

/// A message as the demo mailbox shows it.
#[derive(Clone)]
pub struct MailboxEntry {
    pub phone_masked: String,
    pub text: String,
    pub at: String,
}

/// The demo's and the tests' sender: messages stay in memory, newest first, for a page that only
/// `yibao demo` serves (`/demo/mailbox`).
#[derive(Default)]
pub struct DemoMailbox {
    messages: Mutex<VecDeque<MailboxEntry>>,
}

impl DemoMailbox {
    /// The messages, newest first.
    pub fn messages(&self) -> Vec<MailboxEntry> {
        self.messages
            .lock()
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl MessageSender for DemoMailbox {
    async fn send(&self, _message_id: &str, phone: &str, text: &str) -> Result<(), String> {
        let phone_masked = yibao_domain::Phone::parse(phone)
            .map(|p| p.masked())
            .unwrap_or_default();
        let at = chrono::Utc::now()
            .with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
            .format("%H:%M:%S")
            .to_string();
        let mut messages = self.messages.lock().map_err(|_| "mailbox poisoned")?;
        if messages.len() >= DEMO_MAILBOX_KEPT {
            messages.pop_back();
        }
        messages.push_front(MailboxEntry {
            phone_masked,
            text: text.to_owned(),
            at,
        });
        Ok(())
    }
}

/// An SMS gateway reached over HTTP: `POST url` with the JSON
/// `{"message_id", "phone", "text"}`, signed like the posting to the agency
/// (`Yibao-Timestamp`, and `Yibao-Signature` = HMAC-SHA256 under the secret of
/// "timestamp\nmessage_id\nSHA-256 of the body\n", lowercase hex). Any 2xx is sent; the
/// `message_id` lets the gateway drop a repeat (a message is sent at least once).
pub struct HttpSmsSender {
    url: String,
    secret: Vec<u8>,
    client: reqwest::Client,
}

impl HttpSmsSender {
    pub fn new(url: String, secret: Vec<u8>) -> Self {
        HttpSmsSender {
            url,
            secret,
            client: reqwest::Client::new(),
        }
    }
}

impl std::fmt::Debug for HttpSmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSmsSender")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl MessageSender for HttpSmsSender {
    async fn send(&self, message_id: &str, phone: &str, text: &str) -> Result<(), String> {
        let body =
            serde_json::json!({"message_id": message_id, "phone": phone, "text": text}).to_string();
        let sent_at = chrono::Utc::now().timestamp();
        let signature =
            yibao_server::background::event_signature(&self.secret, sent_at, message_id, &body);
        let answer = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(
                yibao_channel_client::signing::HEADER_TIMESTAMP,
                sent_at.to_string(),
            )
            .header(yibao_channel_client::signing::HEADER_SIGNATURE, signature)
            .timeout(GATEWAY_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "gateway timed out".to_owned()
                } else {
                    "gateway unreachable".to_owned()
                }
            })?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("gateway answered {}", answer.status().as_u16()))
        }
    }
}

/// Wait before attempt `attempts + 1`: 5 s doubling (a code lives five minutes).
pub fn retry_after_seconds(attempts: i32) -> i64 {
    5i64.saturating_mul(1i64 << attempts.clamp(0, 10))
}

/// One round: hands the messages due to `sender` and records each answer. Returns how many
/// were sent.
pub async fn deliver_messages(
    state: &AppState,
    sender: &dyn MessageSender,
) -> Result<usize, yibao_server::ServiceError> {
    let accounts = state.storage.citizen_accounts();
    let now = state.clock.now().timestamp();
    let due = accounts.due_messages(now, MESSAGES_PER_ROUND).await?;
    // A payment reminder whose payable was paid since it was queued is not sent: one read of the
    // round's reminded payables.
    let reminded: Vec<String> = due.iter().filter_map(|m| m.payable_id.clone()).collect();
    let still_payable: HashSet<String> = if reminded.is_empty() {
        HashSet::new()
    } else {
        state
            .storage
            .payables_by_id(&reminded)
            .await?
            .into_iter()
            .filter(|v| v.payable.status.is_payable())
            .map(|v| v.payable.payable_id)
            .collect()
    };
    let mut sent = 0;
    for m in due {
        if m.payable_id
            .as_ref()
            .is_some_and(|p| !still_payable.contains(p))
        {
            accounts
                .message_cancelled(m.region.as_str(), &m.message_id)
                .await?;
            continue;
        }
        match sender.send(&m.message_id, &m.phone, &m.body).await {
            Ok(()) => {
                accounts
                    .message_sent(m.region.as_str(), &m.message_id, now)
                    .await?;
                sent += 1;
            }
            Err(reason) => {
                let dead = m.attempts + 1 >= MAX_MESSAGE_ATTEMPTS;
                tracing::warn!(
                    message_id = %m.message_id,
                    reason,
                    dead,
                    "text message not sent"
                );
                accounts
                    .message_failed(
                        m.region.as_str(),
                        &m.message_id,
                        now + retry_after_seconds(m.attempts),
                        dead,
                    )
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// Runs [`deliver_messages`] every [`DELIVERY_ROUND_SECONDS`], once a minute forgets expired
/// sign-in sessions and codes, and once every [`REMINDER_ROUND_SECONDS`] (and at start) queues
/// the payment reminders due that day, for as long as the process runs.
pub fn spawn_delivery(state: AppState, sender: Arc<dyn MessageSender>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(DELIVERY_ROUND_SECONDS));
        let mut rounds: u64 = 0;
        loop {
            every.tick().await;
            if let Err(err) = deliver_messages(&state, sender.as_ref()).await {
                tracing::warn!(code = err.code.as_str(), "text messages not delivered");
            }
            if rounds.is_multiple_of(REMINDER_ROUND_SECONDS / DELIVERY_ROUND_SECONDS) {
                let (today, now) = (state.clock.today(), state.clock.now().timestamp());
                match yibao_server::services::reminders::queue_due_reminders(
                    state.storage.as_ref(),
                    today,
                    now,
                )
                .await
                {
                    Ok(rounds) => {
                        let queued: u64 = rounds.iter().map(|r| r.queued).sum();
                        if queued > 0 {
                            tracing::info!(queued, "payment reminders queued");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(code = err.code.as_str(), "payment reminders not queued")
                    }
                }
            }
            rounds += 1;
            if rounds.is_multiple_of(60 / DELIVERY_ROUND_SECONDS) {
                let now = state.clock.now().timestamp();
                if let Err(err) = state
                    .storage
                    .citizen_accounts()
                    .prune_citizen_sign_ins(now)
                    .await
                {
                    tracing::warn!(%err, "expired sign-ins not pruned");
                }
            }
        }
    });
}

#[derive(askama::Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    messages: Vec<MailboxEntry>,
}

/// `GET /demo/mailbox`: the demo's text messages (only `yibao demo` and the tests serve it).
pub async fn mailbox(Extension(mailbox): Extension<Arc<DemoMailbox>>) -> Response {
    render(
        &MailboxPage {
            messages: mailbox.messages(),
        },
        StatusCode::OK,
    )
}

/// `POST /demo/mailbox/deliver`: a delivery round now, so the demo need not wait for the next.
pub async fn deliver_now(
    State(state): State<AppState>,
    Extension(mailbox): Extension<Arc<DemoMailbox>>,
) -> Response {
    if let Err(err) = deliver_messages(&state, mailbox.as_ref()).await {
        return crate::error_page(&err);
    }
    crate::ours(
        (
            StatusCode::SEE_OTHER,
            [(axum::http::header::LOCATION, "/demo/mailbox")],
        )
            .into_response(),
    )
}

use axum::response::IntoResponse;
