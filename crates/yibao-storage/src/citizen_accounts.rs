//! The citizen site's accounts (issue 11), written once for both backends as ordinary generic code
//! over sqlx: one-time sign-in codes and the sessions they open, 我的家庭, the reminder
//! preference, and the text messages (短信) waiting for the SMS sender. Every backend's pool is a
//! [`CitizenAccounts`]; [`crate::Storage::citizen_accounts`] hands it out.
//!
//! Every row is keyed by the region of the resident's record (the one whose phone the code went
//! to); each statement names it, so on Citus it runs on one shard.

use async_trait::async_trait;
use sqlx::{Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use yibao_domain::{IdNumber, RegionCode};

use crate::StorageError;

/// Wrong codes a sign-in code takes before it is spent.
pub const SIGN_IN_CODE_TRIES: i32 = 5;
/// Most family members an account holds.
pub const MAX_FAMILY_MEMBERS: i64 = 10;

/// A sign-in code to store and the message that carries it, written in one transaction.
#[derive(Clone)]
pub struct SignInCode<'a> {
    pub region: &'a str,
    pub id_number: &'a str,
    /// SHA-256 of the code (never the code).
    pub code_hash: &'a str,
    /// SHA-256 of the token the page asking for the code carries: the code is checked only
    /// with it, so that nobody can try codes, or read the masked phone, for an ID number alone.
    pub step_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// A new code only if the last one was issued at or before this (unix seconds).
    pub resend_not_before: i64,
    /// Today, as days since 1970-01-01 (Beijing), and the most codes a person gets a day.
    pub day: i64,
    pub max_per_day: i32,
    pub message: Message<'a>,
}

impl std::fmt::Debug for SignInCode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInCode")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A text message for the outbox.
#[derive(Clone)]
pub struct Message<'a> {
    pub message_id: &'a str,
    pub phone: &'a str,
    pub body: &'a str,
    /// Not sent after this (unix seconds): a code that has expired is not worth sending.
    pub send_before: i64,
}

/// A typed code, with what it opens when right.
#[derive(Clone, Copy)]
pub struct CodeTry<'a> {
    pub region: &'a str,
    pub id_number: &'a str,
    /// SHA-256 of the code typed.
    pub code_hash: &'a str,
    /// SHA-256 of the token of the page it was typed on.
    pub step_hash: &'a str,
    pub now: i64,
    /// The session opened when the code is right.
    pub session_token_hash: &'a str,
    pub session_expires_at: i64,
}

impl std::fmt::Debug for CodeTry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeTry")
            .field("region", &self.region)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What became of a request for a sign-in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeIssued {
    /// Stored, and its message is in the outbox.
    Sent,
    /// The last code was sent less than the resend interval ago.
    TooSoon,
    /// The day's codes for this person are used up.
    TooManyToday,
}

/// What a typed code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChecked {
    /// Right: the code is spent and the session is open.
    SignedIn,
    /// Wrong; this many tries are left (0: the code is spent).
    Wrong { tries_left: i32 },
    /// No live code: never sent, expired, or used up.
    NoCode,
}

/// A signed-in resident.
#[derive(Clone, PartialEq, Eq)]
pub struct CitizenSession {
    pub region: RegionCode,
    pub id_number: IdNumber,
    pub expires_at: i64,
}

impl std::fmt::Debug for CitizenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CitizenSession")
            .field("region", &self.region)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A family member as the account holds them.
#[derive(Clone, PartialEq, Eq)]
pub struct FamilyMember {
    pub id_number: IdNumber,
    pub name: String,
    pub added_at: i64,
}

impl std::fmt::Debug for FamilyMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyMember")
            .field("added_at", &self.added_at)
            .finish_non_exhaustive()
    }
}

/// What adding a family member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyAdded {
    Added,
    AlreadyThere,
    /// The account holds [`MAX_FAMILY_MEMBERS`] already.
    Full,
}

/// A message due for the sender.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub region: RegionCode,
    pub message_id: String,
    pub phone: String,
    pub body: String,
    pub attempts: i32,
    /// For a payment reminder, the payable it reminds of: not sent once that is paid.
    pub payable_id: Option<String>,
}

/// A resident due a payment reminder: an unpaid contribution and the phone on record.
#[derive(Clone)]
pub struct ReminderCandidate {
    pub payable_id: String,
    pub id_number: String,
    pub name: String,
    pub phone: String,
    pub amount_fen: i64,
}

impl std::fmt::Debug for ReminderCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReminderCandidate")
            .field("payable_id", &self.payable_id)
            .finish_non_exhaustive()
    }
}

/// A payment reminder to queue: its text message and the payable it is about.
pub struct NewReminder {
    pub message_id: String,
    pub payable_id: String,
    pub phone: String,
    pub body: String,
}

/// Payment reminders of a region and fee year by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReminderCounts {
    /// Queued, not sent yet.
    pub queued: u64,
    pub sent: u64,
    /// Given up after retries, or not sent before the window closed.
    pub failed: u64,
    /// Not sent: the payable was paid first.
    pub cancelled: u64,
}

/// A debited resident to tell of a debit-run item's outcome: what the bank did and the phone on
/// record.
#[derive(Clone)]
pub struct DebitNoticeCandidate {
    pub seq: i64,
    pub id_number: String,
    pub name: String,
    pub phone: String,
    pub amount_fen: i64,
    pub succeeded: bool,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
}

impl std::fmt::Debug for DebitNoticeCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebitNoticeCandidate")
            .field("seq", &self.seq)
            .field("succeeded", &self.succeeded)
            .finish_non_exhaustive()
    }
}

/// A debit-run outcome's text message to queue, with the item it tells of.
pub struct NewDebitNotice {
    pub seq: i64,
    pub message_id: String,
    pub phone: String,
    pub body: String,
    /// `succeeded`, `insufficient_balance` or `failed` ([`yibao_domain::reminders::DebitNoticeKind`]).
    pub kind: &'static str,
}

/// The prefix of a debit notice's message id: what a message's outcome updates is told by it.
pub const DEBIT_NOTICE_PREFIX: &str = "DBN";
/// The prefix of a payment reminder's message id. Any other message (a sign-in code) has no record
/// to update when it is sent or given up.
pub const REMINDER_PREFIX: &str = "RMD";

impl std::fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("region", &self.region)
            .field("message_id", &self.message_id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The citizen site's accounts on one database.
#[async_trait]
pub trait CitizenAccounts: Send + Sync {
    /// Stores a new sign-in code for the person (replacing the last one, which then no longer
    /// works) and puts its message in the outbox, in one transaction; or says why not.
    async fn issue_sign_in_code(&self, code: &SignInCode<'_>) -> Result<CodeIssued, StorageError>;
    /// Checks a typed code, with the token hash of the page that asked for it: right spends it
    /// and opens a session under `session_token_hash` until `session_expires_at`, in one
    /// transaction; wrong takes a try; another page's token is [`CodeChecked::NoCode`].
    async fn redeem_sign_in_code(&self, attempt: &CodeTry<'_>)
        -> Result<CodeChecked, StorageError>;
    /// The session of `token_hash` if it has not expired.
    async fn citizen_session(
        &self,
        region: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<CitizenSession>, StorageError>;
    async fn end_citizen_session(&self, region: &str, token_hash: &str)
        -> Result<(), StorageError>;
    /// Forgets expired sessions, sign-in codes a day after they expired, and messages sent or
    /// given up a week ago; returns how many rows went.
    async fn prune_citizen_sign_ins(&self, now: i64) -> Result<u64, StorageError>;

    async fn add_family_member(
        &self,
        region: &str,
        owner: &str,
        member: &FamilyMember,
    ) -> Result<FamilyAdded, StorageError>;
    /// Whether the member was there.
    async fn remove_family_member(
        &self,
        region: &str,
        owner: &str,
        member_id_number: &str,
    ) -> Result<bool, StorageError>;
    /// The account's family, in the order they were added.
    async fn family_members(
        &self,
        region: &str,
        owner: &str,
    ) -> Result<Vec<FamilyMember>, StorageError>;

    /// Whether the resident wants payment reminders (yes unless they said no).
    async fn wants_reminders(&self, region: &str, id_number: &str) -> Result<bool, StorageError>;
    async fn set_reminders(
        &self,
        region: &str,
        id_number: &str,
        wanted: bool,
        now: i64,
    ) -> Result<(), StorageError>;

    /// Orders of `channel_id` not paid, open or expired after `expired_after` (unix seconds),
    /// at most `limit`, the newest first: those whose payment notification may have
    /// been lost, for the site to ask its payment provider about.
    async fn unpaid_orders_of(
        &self,
        channel_id: &str,
        expired_after: i64,
        limit: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Messages due (gives up those past their `send_before` first), oldest first.
    async fn due_messages(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OutgoingMessage>, StorageError>;
    /// Sent: the body is emptied.
    async fn message_sent(
        &self,
        region: &str,
        message_id: &str,
        now: i64,
    ) -> Result<(), StorageError>;
    /// A failed attempt: again at `next_attempt_at`, or given up (`dead`, body emptied).
    async fn message_failed(
        &self,
        region: &str,
        message_id: &str,
        next_attempt_at: i64,
        dead: bool,
    ) -> Result<(), StorageError>;
    /// A payment reminder whose payable was paid before it went out: never sent, body emptied,
    /// counted as cancelled.
    async fn message_cancelled(&self, region: &str, message_id: &str) -> Result<(), StorageError>;

    /// Unpaid contributions of a region and fee year whose resident has a phone on record, has
    /// not turned reminders off, and was not reminded of it since `since` (unix seconds), by
    /// payable id after `after`; at most `limit`.
    async fn reminder_candidates(
        &self,
        region: &str,
        fee_year: i32,
        since: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ReminderCandidate>, StorageError>;
    /// Queues payment reminders, each a text message and its record, in one transaction; one
    /// already queued for the payable in `period` is skipped (the unique index decides). Returns
    /// how many were queued.
    async fn queue_reminders(
        &self,
        region: &str,
        fee_year: i32,
        period: i64,
        now: i64,
        send_before: i64,
        reminders: &[NewReminder],
    ) -> Result<u64, StorageError>;
    /// Payment reminders of a region and fee year by outcome.
    async fn reminder_counts(
        &self,
        region: &str,
        fee_year: i32,
    ) -> Result<ReminderCounts, StorageError>;
    /// The items of a debit run the bank answered (succeeded or failed) whose resident has a phone
    /// on record, has not turned reminders off, and was not told yet, by sequence number.
    async fn debit_notice_candidates(
        &self,
        region: &str,
        run_no: &str,
    ) -> Result<Vec<DebitNoticeCandidate>, StorageError>;
    /// Queues debit-run outcome messages, each a text message and its record, in one
    /// transaction; an item told already is skipped (the primary key decides). Returns how many
    /// were queued.
    async fn queue_debit_notices(
        &self,
        region: &str,
        run_no: &str,
        fee_year: i32,
        now: i64,
        send_before: i64,
        notices: &[NewDebitNotice],
    ) -> Result<u64, StorageError>;
    /// Debit-run outcome messages of a region and fee year by outcome (`cancelled` is always 0).
    async fn debit_notice_counts(
        &self,
        region: &str,
        fee_year: i32,
    ) -> Result<ReminderCounts, StorageError>;
}

const ISSUE_CODE_SQL: &str = "INSERT INTO citizen_sign_in_codes \
     (region_code, id_number, code_hash, issued_at, expires_at, tries_left, sent_day, sent_today, \
      step_hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $10) \
     ON CONFLICT (region_code, id_number) DO UPDATE SET code_hash = excluded.code_hash, \
     step_hash = excluded.step_hash, \
     issued_at = excluded.issued_at, expires_at = excluded.expires_at, \
     tries_left = excluded.tries_left, \
     sent_today = CASE WHEN citizen_sign_in_codes.sent_day = excluded.sent_day \
         THEN citizen_sign_in_codes.sent_today + 1 ELSE 1 END, \
     sent_day = excluded.sent_day \
     WHERE citizen_sign_in_codes.issued_at <= $8 \
       AND (citizen_sign_in_codes.sent_day <> excluded.sent_day \
            OR citizen_sign_in_codes.sent_today < $9) \
     RETURNING sent_today";

const INSERT_MESSAGE_SQL: &str = "INSERT INTO message_outbox \
     (region_code, message_id, phone, body, created_at, send_before, attempts, next_attempt_at, dead) \
     VALUES ($1, $2, $3, $4, $5, $6, 0, $5, $7)";

#[async_trait]
impl<DB> CitizenAccounts for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> i32: Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    async fn issue_sign_in_code(&self, code: &SignInCode<'_>) -> Result<CodeIssued, StorageError> {
        let mut tx = self.begin().await?;
        let stored: Option<(i32,)> = sqlx::query_as(ISSUE_CODE_SQL)
            .bind(code.region.to_owned())
            .bind(code.id_number.to_owned())
            .bind(code.code_hash.to_owned())
            .bind(code.now)
            .bind(code.expires_at)
            .bind(SIGN_IN_CODE_TRIES)
            .bind(code.day)
            .bind(code.resend_not_before)
            .bind(code.max_per_day)
            .bind(code.step_hash.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        if stored.is_none() {
            let (issued_at, sent_day): (i64, i64) = sqlx::query_as(
                "SELECT issued_at, sent_day FROM citizen_sign_in_codes \
                 WHERE region_code = $1 AND id_number = $2",
            )
            .bind(code.region.to_owned())
            .bind(code.id_number.to_owned())
            .fetch_one(&mut *tx)
            .await?;
            if issued_at > code.resend_not_before || sent_day != code.day {
                // The code sent a moment ago stands; the page asking again carries the new
                // token, which the code is now checked with.
                sqlx::query(
                    "UPDATE citizen_sign_in_codes SET step_hash = $3 \
                     WHERE region_code = $1 AND id_number = $2",
                )
                .bind(code.region.to_owned())
                .bind(code.id_number.to_owned())
                .bind(code.step_hash.to_owned())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(CodeIssued::TooSoon);
            }
            return Ok(CodeIssued::TooManyToday);
        }
        let m = &code.message;
        sqlx::query(INSERT_MESSAGE_SQL)
            .bind(code.region.to_owned())
            .bind(m.message_id.to_owned())
            .bind(m.phone.to_owned())
            .bind(m.body.to_owned())
            .bind(code.now)
            .bind(m.send_before)
            .bind(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CodeIssued::Sent)
    }

    async fn redeem_sign_in_code(
        &self,
        attempt: &CodeTry<'_>,
    ) -> Result<CodeChecked, StorageError> {
        let CodeTry {
            region,
            id_number,
            code_hash,
            step_hash,
            now,
            session_token_hash,
            session_expires_at,
        } = *attempt;
        let mut tx = self.begin().await?;
        // Spent, not deleted: the row keeps counting toward the day's codes.
        let spent: Option<(String,)> = sqlx::query_as(
            "UPDATE citizen_sign_in_codes SET tries_left = 0, code_hash = '' \
             WHERE region_code = $1 AND id_number = $2 AND code_hash = $3 AND step_hash = $5 \
             AND expires_at > $4 AND tries_left > 0 RETURNING id_number",
        )
        .bind(region.to_owned())
        .bind(id_number.to_owned())
        .bind(code_hash.to_owned())
        .bind(now)
        .bind(step_hash.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        if spent.is_some() {
            sqlx::query(
                "INSERT INTO citizen_sessions (region_code, token_hash, id_number, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(region.to_owned())
            .bind(session_token_hash.to_owned())
            .bind(id_number.to_owned())
            .bind(now)
            .bind(session_expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(CodeChecked::SignedIn);
        }
        let wrong: Option<(i32,)> = sqlx::query_as(
            "UPDATE citizen_sign_in_codes SET tries_left = tries_left - 1 \
             WHERE region_code = $1 AND id_number = $2 AND step_hash = $4 AND expires_at > $3 \
             AND tries_left > 0 RETURNING tries_left",
        )
        .bind(region.to_owned())
        .bind(id_number.to_owned())
        .bind(now)
        .bind(step_hash.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match wrong {
            Some((tries_left,)) => CodeChecked::Wrong { tries_left },
            None => CodeChecked::NoCode,
        })
    }

    async fn citizen_session(
        &self,
        region: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<CitizenSession>, StorageError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT id_number, expires_at FROM citizen_sessions \
             WHERE region_code = $1 AND token_hash = $2 AND expires_at > $3",
        )
        .bind(region.to_owned())
        .bind(token_hash.to_owned())
        .bind(now)
        .fetch_optional(self)
        .await?;
        row.map(|(id_number, expires_at)| {
            Ok(CitizenSession {
                region: RegionCode::parse(region).map_err(StorageError::corrupt)?,
                id_number: IdNumber::try_from(id_number).map_err(StorageError::corrupt)?,
                expires_at,
            })
        })
        .transpose()
    }

    async fn end_citizen_session(
        &self,
        region: &str,
        token_hash: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM citizen_sessions WHERE region_code = $1 AND token_hash = $2")
            .bind(region.to_owned())
            .bind(token_hash.to_owned())
            .execute(self)
            .await?;
        Ok(())
    }

    async fn prune_citizen_sign_ins(&self, now: i64) -> Result<u64, StorageError> {
        let sessions: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM citizen_sessions WHERE expires_at <= $1 RETURNING region_code",
        )
        .bind(now)
        .fetch_all(self)
        .await?;
        // A code is kept a day after it expires: the daily bound counts it.
        let codes: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM citizen_sign_in_codes WHERE expires_at <= $1 RETURNING region_code",
        )
        .bind(now - 86_400)
        .fetch_all(self)
        .await?;
        let messages: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM message_outbox WHERE (sent_at IS NOT NULL OR dead = $2) \
             AND created_at <= $1 RETURNING region_code",
        )
        .bind(now - 7 * 86_400)
        .bind(true)
        .fetch_all(self)
        .await?;
        Ok(u64::try_from(sessions.len() + codes.len() + messages.len()).unwrap_or(u64::MAX))
    }

    async fn add_family_member(
        &self,
        region: &str,
        owner: &str,
        member: &FamilyMember,
    ) -> Result<FamilyAdded, StorageError> {
        // The bound and the key in one statement: no read before the write.
        let added: Option<(String,)> = sqlx::query_as(
            "INSERT INTO citizen_family_members \
             (region_code, owner_id_number, member_id_number, member_name, added_at) \
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT count(*) FROM citizen_family_members \
                 WHERE region_code = $1 AND owner_id_number = $2) < $6 \
             ON CONFLICT (region_code, owner_id_number, member_id_number) DO NOTHING \
             RETURNING member_id_number",
        )
        .bind(region.to_owned())
        .bind(owner.to_owned())
        .bind(member.id_number.as_str().to_owned())
        .bind(member.name.clone())
        .bind(member.added_at)
        .bind(MAX_FAMILY_MEMBERS)
        .fetch_optional(self)
        .await?;
        if added.is_some() {
            return Ok(FamilyAdded::Added);
        }
        let there: Option<(String,)> = sqlx::query_as(
            "SELECT member_id_number FROM citizen_family_members \
             WHERE region_code = $1 AND owner_id_number = $2 AND member_id_number = $3",
        )
        .bind(region.to_owned())
        .bind(owner.to_owned())
        .bind(member.id_number.as_str().to_owned())
        .fetch_optional(self)
        .await?;
        Ok(if there.is_some() {
            FamilyAdded::AlreadyThere
        } else {
            FamilyAdded::Full
        })
    }

    async fn remove_family_member(
        &self,
        region: &str,
        owner: &str,
        member_id_number: &str,
    ) -> Result<bool, StorageError> {
        let gone: Option<(String,)> = sqlx::query_as(
            "DELETE FROM citizen_family_members \
             WHERE region_code = $1 AND owner_id_number = $2 AND member_id_number = $3 \
             RETURNING member_id_number",
        )
        .bind(region.to_owned())
        .bind(owner.to_owned())
        .bind(member_id_number.to_owned())
        .fetch_optional(self)
        .await?;
        Ok(gone.is_some())
    }

    async fn family_members(
        &self,
        region: &str,
        owner: &str,
    ) -> Result<Vec<FamilyMember>, StorageError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT member_id_number, member_name, added_at FROM citizen_family_members \
             WHERE region_code = $1 AND owner_id_number = $2 \
             ORDER BY added_at, member_id_number LIMIT $3",
        )
        .bind(region.to_owned())
        .bind(owner.to_owned())
        .bind(MAX_FAMILY_MEMBERS)
        .fetch_all(self)
        .await?;
        rows.into_iter()
            .map(|(id_number, name, added_at)| {
                Ok(FamilyMember {
                    id_number: IdNumber::try_from(id_number).map_err(StorageError::corrupt)?,
                    name,
                    added_at,
                })
            })
            .collect()
    }

    async fn wants_reminders(&self, region: &str, id_number: &str) -> Result<bool, StorageError> {
        // Read as a count, which both backends decode alike (a boolean column is an integer
        // on SQLite).
        let (no,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM citizen_preferences \
             WHERE region_code = $1 AND id_number = $2 AND reminders = $3",
        )
        .bind(region.to_owned())
        .bind(id_number.to_owned())
        .bind(false)
        .fetch_one(self)
        .await?;
        Ok(no == 0)
    }

    async fn set_reminders(
        &self,
        region: &str,
        id_number: &str,
        wanted: bool,
        now: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO citizen_preferences (region_code, id_number, reminders, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (region_code, id_number) \
             DO UPDATE SET reminders = excluded.reminders, updated_at = excluded.updated_at",
        )
        .bind(region.to_owned())
        .bind(id_number.to_owned())
        .bind(wanted)
        .bind(now)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn unpaid_orders_of(
        &self,
        channel_id: &str,
        expired_after: i64,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT order_no FROM orders WHERE channel_id = $1 \
             AND status IN ('open', 'expired') AND expires_at > $2 \
             ORDER BY expires_at DESC, order_no LIMIT $3",
        )
        .bind(channel_id.to_owned())
        .bind(expired_after)
        .bind(limit)
        .fetch_all(self)
        .await?;
        Ok(rows.into_iter().map(|(o,)| o).collect())
    }

    async fn due_messages(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OutgoingMessage>, StorageError> {
        let given_up: Vec<(String, String)> = sqlx::query_as(
            "UPDATE message_outbox SET dead = $1, body = '' \
             WHERE sent_at IS NULL AND dead = $2 AND send_before <= $3 \
             RETURNING region_code, message_id",
        )
        .bind(true)
        .bind(false)
        .bind(now)
        .fetch_all(self)
        .await?;
        for (region, message_id) in &given_up {
            reminder_outcome(self, region, message_id, "failed").await?;
        }
        let rows: Vec<(String, String, String, String, i32, Option<String>)> = sqlx::query_as(
            "SELECT m.region_code, m.message_id, m.phone, m.body, m.attempts, r.payable_id \
             FROM message_outbox m LEFT JOIN payment_reminders r \
               ON r.region_code = m.region_code AND r.message_id = m.message_id \
             WHERE m.sent_at IS NULL AND m.dead = $1 AND m.next_attempt_at <= $2 \
             ORDER BY m.next_attempt_at LIMIT $3",
        )
        .bind(false)
        .bind(now)
        .bind(limit)
        .fetch_all(self)
        .await?;
        rows.into_iter()
            .map(|(region, message_id, phone, body, attempts, payable_id)| {
                Ok(OutgoingMessage {
                    region: RegionCode::try_from(region).map_err(StorageError::corrupt)?,
                    message_id,
                    phone,
                    body,
                    attempts,
                    payable_id,
                })
            })
            .collect()
    }

    async fn message_sent(
        &self,
        region: &str,
        message_id: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE message_outbox SET sent_at = $3, body = '', attempts = attempts + 1 \
             WHERE region_code = $1 AND message_id = $2",
        )
        .bind(region.to_owned())
        .bind(message_id.to_owned())
        .bind(now)
        .execute(self)
        .await?;
        reminder_outcome(self, region, message_id, "sent").await
    }

    async fn message_failed(
        &self,
        region: &str,
        message_id: &str,
        next_attempt_at: i64,
        dead: bool,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE message_outbox SET attempts = attempts + 1, next_attempt_at = $3, dead = $4, \
             body = CASE WHEN $4 THEN '' ELSE body END \
             WHERE region_code = $1 AND message_id = $2",
        )
        .bind(region.to_owned())
        .bind(message_id.to_owned())
        .bind(next_attempt_at)
        .bind(dead)
        .execute(self)
        .await?;
        if dead {
            reminder_outcome(self, region, message_id, "failed").await?;
        }
        Ok(())
    }

    async fn message_cancelled(&self, region: &str, message_id: &str) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE message_outbox SET dead = $3, body = '' WHERE region_code = $1 AND message_id = $2",
        )
        .bind(region.to_owned())
        .bind(message_id.to_owned())
        .bind(true)
        .execute(self)
        .await?;
        reminder_outcome(self, region, message_id, "cancelled").await
    }

    async fn reminder_candidates(
        &self,
        region: &str,
        fee_year: i32,
        since: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ReminderCandidate>, StorageError> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT y.payable_id, y.id_number, p.name, p.phone, y.amount_fen FROM payables y \
             JOIN persons p ON p.region_code = y.region_code AND p.id_number = y.id_number \
             LEFT JOIN citizen_preferences c ON c.region_code = y.region_code \
                  AND c.id_number = y.id_number \
             WHERE y.region_code = $1 AND y.fee_year = $2 AND y.status = 'unpaid' \
               AND y.buys_back_year IS NULL AND y.amount_fen > 0 AND p.phone IS NOT NULL \
               AND (c.reminders IS NULL OR c.reminders = $3) \
               AND NOT EXISTS (SELECT 1 FROM payment_reminders r WHERE r.region_code = y.region_code \
                    AND r.payable_id = y.payable_id AND r.queued_at > $4) \
               AND y.payable_id > $5 \
             ORDER BY y.payable_id LIMIT $6",
        )
        .bind(region.to_owned())
        .bind(fee_year)
        .bind(true)
        .bind(since)
        .bind(after.to_owned())
        .bind(limit)
        .fetch_all(self)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(payable_id, id_number, name, phone, amount_fen)| ReminderCandidate {
                    payable_id,
                    id_number,
                    name,
                    phone,
                    amount_fen,
                },
            )
            .collect())
    }

    async fn queue_reminders(
        &self,
        region: &str,
        fee_year: i32,
        period: i64,
        now: i64,
        send_before: i64,
        reminders: &[NewReminder],
    ) -> Result<u64, StorageError> {
        let messages: Vec<RecordedMessage<'_>> = reminders
            .iter()
            .map(|r| RecordedMessage {
                // The unique index on (region, payable, period) decides: a reminder already
                // queued in this period by a round racing this one is not queued again.
                record: MessageRecord::Reminder {
                    payable_id: &r.payable_id,
                    fee_year,
                    period,
                },
                message_id: &r.message_id,
                phone: &r.phone,
                body: &r.body,
            })
            .collect();
        queue_recorded_messages(self, region, now, send_before, &messages).await
    }

    async fn reminder_counts(
        &self,
        region: &str,
        fee_year: i32,
    ) -> Result<ReminderCounts, StorageError> {
        counts_by_outcome(self, "payment_reminders", region, fee_year).await
    }

    async fn debit_notice_candidates(
        &self,
        region: &str,
        run_no: &str,
    ) -> Result<Vec<DebitNoticeCandidate>, StorageError> {
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT i.seq, i.id_number, p.name, p.phone, i.amount_fen, i.outcome, \
             i.failure_code, i.failure_reason FROM debit_run_items i \
             JOIN persons p ON p.region_code = i.region_code AND p.id_number = i.id_number \
             LEFT JOIN citizen_preferences c ON c.region_code = i.region_code \
                  AND c.id_number = i.id_number \
             WHERE i.region_code = $1 AND i.run_no = $2 \
               AND i.outcome IN ('succeeded', 'failed') AND p.phone IS NOT NULL \
               AND (c.reminders IS NULL OR c.reminders = $3) \
               AND NOT EXISTS (SELECT 1 FROM debit_notices n WHERE n.region_code = i.region_code \
                    AND n.run_no = i.run_no AND n.seq = i.seq) \
             ORDER BY i.seq",
        )
        .bind(region.to_owned())
        .bind(run_no.to_owned())
        .bind(true)
        .fetch_all(self)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    seq,
                    id_number,
                    name,
                    phone,
                    amount_fen,
                    outcome,
                    failure_code,
                    failure_reason,
                )| {
                    DebitNoticeCandidate {
                        seq,
                        id_number,
                        name,
                        phone,
                        amount_fen,
                        succeeded: outcome == "succeeded",
                        failure_code,
                        failure_reason,
                    }
                },
            )
            .collect())
    }

    async fn queue_debit_notices(
        &self,
        region: &str,
        run_no: &str,
        fee_year: i32,
        now: i64,
        send_before: i64,
        notices: &[NewDebitNotice],
    ) -> Result<u64, StorageError> {
        let messages: Vec<RecordedMessage<'_>> = notices
            .iter()
            .map(|n| RecordedMessage {
                // The primary key on (region, run, seq) decides: an item told already by an
                // import racing this one is not told again.
                record: MessageRecord::DebitNotice {
                    run_no,
                    seq: n.seq,
                    fee_year,
                    kind: n.kind,
                },
                message_id: &n.message_id,
                phone: &n.phone,
                body: &n.body,
            })
            .collect();
        queue_recorded_messages(self, region, now, send_before, &messages).await
    }

    async fn debit_notice_counts(
        &self,
        region: &str,
        fee_year: i32,
    ) -> Result<ReminderCounts, StorageError> {
        counts_by_outcome(self, "debit_notices", region, fee_year).await
    }
}

/// What a queued text message is recorded as: a payment reminder or a debit-run outcome.
enum MessageRecord<'a> {
    Reminder {
        payable_id: &'a str,
        fee_year: i32,
        period: i64,
    },
    DebitNotice {
        run_no: &'a str,
        seq: i64,
        fee_year: i32,
        kind: &'static str,
    },
}

/// A text message to queue with its record.
struct RecordedMessage<'a> {
    record: MessageRecord<'a>,
    message_id: &'a str,
    phone: &'a str,
    body: &'a str,
}

/// Messages queued by one pair of statements: at most 8 values a message, within SQLite's
/// 32 766 and PostgreSQL's 65 535 parameters.
const MESSAGES_PER_STATEMENT: usize = 500;

/// Queues text messages, each with its record, in one transaction: the records of up to
/// [`MESSAGES_PER_STATEMENT`] messages inserted by one statement, then their messages by
/// another (a bank's result of 5 000 items once took two statements a resident). The record's
/// unique key decides: a message whose record is already there (`ON CONFLICT DO NOTHING`
/// inserts no row, and returns none) is not queued. Returns how many were.
async fn queue_recorded_messages<DB>(
    pool: &Pool<DB>,
    region: &str,
    now: i64,
    send_before: i64,
    messages: &[RecordedMessage<'_>],
) -> Result<u64, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut queued = 0;
    let mut tx = pool.begin().await?;
    // Runs of one kind of record (each caller passes one kind), in statements of bounded size.
    let runs = messages
        .chunk_by(|a, b| std::mem::discriminant(&a.record) == std::mem::discriminant(&b.record));
    for chunk in runs.flat_map(|run| run.chunks(MESSAGES_PER_STATEMENT)) {
        let mut sql = match chunk[0].record {
            MessageRecord::Reminder { .. } => String::from(
                "INSERT INTO payment_reminders (region_code, message_id, payable_id, fee_year, \
                 period, queued_at, outcome) VALUES ",
            ),
            MessageRecord::DebitNotice { .. } => String::from(
                "INSERT INTO debit_notices (region_code, message_id, run_no, seq, fee_year, \
                 kind, queued_at, outcome) VALUES ",
            ),
        };
        let mut params = Placeholders::<DB>::new();
        for (i, m) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let values = match m.record {
                MessageRecord::Reminder { .. } => 6,
                MessageRecord::DebitNotice { .. } => 7,
            };
            params.row(&mut sql, values, ", 'queued'");
        }
        sql.push_str(" ON CONFLICT DO NOTHING RETURNING message_id");
        let mut records = sqlx::query_as::<DB, (String,)>(&sql);
        for m in chunk {
            records = match m.record {
                MessageRecord::Reminder {
                    payable_id,
                    fee_year,
                    period,
                } => records
                    .bind(region.to_owned())
                    .bind(m.message_id.to_owned())
                    .bind(payable_id.to_owned())
                    .bind(fee_year)
                    .bind(period)
                    .bind(now),
                MessageRecord::DebitNotice {
                    run_no,
                    seq,
                    fee_year,
                    kind,
                } => records
                    .bind(region.to_owned())
                    .bind(m.message_id.to_owned())
                    .bind(run_no.to_owned())
                    .bind(seq)
                    .bind(fee_year)
                    .bind(kind.to_owned())
                    .bind(now),
            };
        }
        let recorded: std::collections::HashSet<String> = records
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let to_send: Vec<&RecordedMessage<'_>> = chunk
            .iter()
            .filter(|m| recorded.contains(m.message_id))
            .collect();
        if to_send.is_empty() {
            continue;
        }
        let mut sql = String::from(
            "INSERT INTO message_outbox (region_code, message_id, phone, body, created_at, \
             send_before, next_attempt_at, dead, attempts) VALUES ",
        );
        let mut params = Placeholders::<DB>::new();
        for i in 0..to_send.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            // created_at and next_attempt_at are both `now`: bound twice, as SQLite's `?` are
            // numbered in order.
            params.row(&mut sql, 8, ", 0");
        }
        let mut outbox = sqlx::query::<DB>(&sql);
        for m in &to_send {
            outbox = outbox
                .bind(region.to_owned())
                .bind(m.message_id.to_owned())
                .bind(m.phone.to_owned())
                .bind(m.body.to_owned())
                .bind(now)
                .bind(send_before)
                .bind(now)
                .bind(false);
        }
        outbox.execute(&mut *tx).await?;
        queued += to_send.len() as u64;
    }
    tx.commit().await?;
    Ok(queued)
}

/// Placeholders of a statement written by hand for a generic backend: `$1, $2 …` on
/// PostgreSQL, plain `?` elsewhere (SQLite searches a list of numbered ones for each, see
/// [`crate::dialect::Statement`]).
struct Placeholders<DB> {
    next: usize,
    numbered: bool,
    backend: std::marker::PhantomData<DB>,
}

impl<DB: Database> Placeholders<DB> {
    fn new() -> Self {
        Placeholders {
            next: 1,
            numbered: DB::NAME == "PostgreSQL",
            backend: std::marker::PhantomData,
        }
    }

    /// Appends `(p, p, …{tail})`: `values` placeholders, then `tail` (constant SQL) before the
    /// closing parenthesis.
    fn row(&mut self, sql: &mut String, values: usize, tail: &str) {
        sql.push('(');
        for v in 0..values {
            if v > 0 {
                sql.push_str(", ");
            }
            if self.numbered {
                sql.push('$');
                sql.push_str(&self.next.to_string());
            } else {
                sql.push('?');
            }
            self.next += 1;
        }
        sql.push_str(tail);
        sql.push(')');
    }
}

/// The messages of `table` (`payment_reminders` or `debit_notices`) of a region and fee year,
/// counted by what became of them.
async fn counts_by_outcome<DB>(
    pool: &Pool<DB>,
    table: &'static str,
    region: &str,
    fee_year: i32,
) -> Result<ReminderCounts, StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    i64: Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT outcome, CAST(COUNT(*) AS BIGINT) FROM {table} \
         WHERE region_code = $1 AND fee_year = $2 GROUP BY outcome"
    ))
    .bind(region.to_owned())
    .bind(fee_year)
    .fetch_all(pool)
    .await?;
    let mut counts = ReminderCounts::default();
    for (outcome, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match outcome.as_str() {
            "queued" => counts.queued = n,
            "sent" => counts.sent = n,
            "failed" => counts.failed = n,
            "cancelled" => counts.cancelled = n,
            other => return Err(StorageError::corrupt(format!("{table} outcome {other}"))),
        }
    }
    Ok(counts)
}

/// What became of a payment reminder or a debit notice (told apart by the message id's
/// prefix); a message that is neither changes nothing.
async fn reminder_outcome<DB>(
    pool: &Pool<DB>,
    region: &str,
    message_id: &str,
    outcome: &str,
) -> Result<(), StorageError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    // A debit notice is never cancelled: only a reminder's payable can be paid before sending. A
    // sign-in code has no record: no statement is spent on it.
    let sql = if message_id.starts_with(DEBIT_NOTICE_PREFIX) {
        "UPDATE debit_notices SET outcome = $3 WHERE region_code = $1 AND message_id = $2"
    } else if message_id.starts_with(REMINDER_PREFIX) {
        "UPDATE payment_reminders SET outcome = $3 WHERE region_code = $1 AND message_id = $2"
    } else {
        return Ok(());
    };
    sqlx::query(sql)
        .bind(region.to_owned())
        .bind(message_id.to_owned())
        .bind(outcome.to_owned())
        .execute(pool)
        .await?;
    Ok(())
}
