//! Collection (税务征收) storage: channels, nonces, orders, payments, refunds, reversals, receipts
//! and the outbox. [`CollectionStorage`] is
//! the aggregates' traits together, each written once for both backends in its own file
//! ([`crate::channels`], [`crate::payable_search`], [`crate::orders`], [`crate::payments`],
//! [`crate::refunds`], [`crate::receipts`], [`crate::outbox`]); this module holds their records.
//!
//! Pay-once lives in the database: a payable moves to `paid` only by a conditional update on its
//! status, and `payment_applications` has a unique index on the payable for active applications, so
//! two payments racing for one payable leave exactly one applied whatever the application code does.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use yibao_domain::{
    FeeYear, Fen, IdNumber, OrderStatus, PayableStatus, PaymentStatus, RefundStatus, RegionCode,
};

use crate::records::serialize_id_number_in_full;

use crate::channels::ChannelStore;
use crate::orders::OrderStore;
use crate::outbox::OutboxStore;
use crate::payable_search::PayableSearch;
use crate::payments::PaymentStore;
use crate::receipts::ReceiptStore;
use crate::refunds::RefundStore;

/// Payment reports committed together at most.
pub const MAX_PAYMENT_BATCH: usize = 64;

/// Nonces recorded together at most ([`crate::channels::ChannelStore::remember_nonces`]).
pub const MAX_NONCE_BATCH: usize = 256;

/// Payables in one order or payment: a family paying together, bounded.
pub const MAX_PAYABLES_PER_REQUEST: usize = 20;

#[derive(Clone)]
pub struct ChannelRecord {
    pub channel_id: String,
    pub kind: String,
    /// As stored: sealed with the master key, or `plain:` + hex when none is configured.
    pub secret_sealed: String,
    pub rate_per_second: i64,
    pub enabled: bool,
    pub regions: Vec<String>,
    /// The secret before the last rotation, as stored, and until when (Unix seconds) it is still
    /// accepted: a bank switches its servers over without a window of refused requests.
    pub previous_secret: Option<PreviousSecret>,
    /// A test channel (接入测试): it serves only sandbox regions (the schema's foreign keys say
    /// so), and what it goes through is recorded as scenarios. Never changes.
    pub test_mode: bool,
}

/// A rotated-out channel secret, still accepted until `until` (Unix seconds).
#[derive(Clone)]
pub struct PreviousSecret {
    pub secret_sealed: String,
    pub until: i64,
}

/// A `channels` row (with `rate` and `previous_until` cast to BIGINT).
#[derive(sqlx::FromRow)]
pub struct ChannelRow {
    channel_id: String,
    kind: String,
    secret_sealed: String,
    rate: i64,
    enabled: bool,
    previous_secret_sealed: Option<String>,
    previous_until: Option<i64>,
    test_mode: bool,
}

impl ChannelRow {
    /// The channel, with its regions (read on their own).
    pub fn with_regions(self, regions: Vec<String>) -> ChannelRecord {
        ChannelRecord {
            channel_id: self.channel_id,
            kind: self.kind,
            secret_sealed: self.secret_sealed,
            rate_per_second: self.rate,
            enabled: self.enabled,
            regions,
            previous_secret: match (self.previous_secret_sealed, self.previous_until) {
                (Some(secret_sealed), Some(until)) => Some(PreviousSecret {
                    secret_sealed,
                    until,
                }),
                _ => None,
            },
            test_mode: self.test_mode,
        }
    }
}

/// Longest grace period a rotated-out secret may keep (7 days).
pub const MAX_SECRET_GRACE_SECONDS: i64 = 7 * 24 * 3600;

impl std::fmt::Debug for ChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRecord")
            .field("channel_id", &self.channel_id)
            .field("kind", &self.kind)
            .field("rate_per_second", &self.rate_per_second)
            .field("enabled", &self.enabled)
            .field("regions", &self.regions)
            .field("test_mode", &self.test_mode)
            .field(
                "previous_secret_until",
                &self.previous_secret.as_ref().map(|p| p.until),
            )
            .finish_non_exhaustive()
    }
}

/// A payable as channels see it: the payable, its holder's name as reserved and its region's name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayableView {
    #[sqlx(flatten)]
    pub payable: crate::records::PayableRecord,
    pub name: String,
    pub region_name: String,
    /// The holder's insured number (参保编号) in the payable's region.
    pub insured_number: Option<String>,
    /// The holder's service station (服务站) in the payable's region.
    pub station_code: Option<String>,
}

/// An order's stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_no: String,
    pub amount_fen: Fen,
    pub expires_at: i64,
    pub status: OrderStatus,
    pub payable_ids: Vec<String>,
}

pub struct NewOrder {
    pub order_no: String,
    pub channel_id: String,
    pub channel_order_no: String,
    pub region: RegionCode,
    pub amount_fen: Fen,
    pub payer_name: Option<String>,
    pub payer_phone: Option<String>,
    pub payable_ids: Vec<String>,
    pub expires_at: i64,
    pub fingerprint: String,
    pub now: i64,
    /// The resident health card that pays, and where (a `health_card` channel's orders).
    pub card: Option<yibao_domain::health_card::CardPayment>,
    /// The village agent (村代办员) taking the money (a `village_agent` channel's orders).
    pub agent_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    Created(OrderRecord),
    /// Same `channel_order_no` again: the stored order, and whether the request body was the same.
    Existing {
        order: OrderRecord,
        same_request: bool,
    },
    /// Some payable could not be locked: it is paid, or held by another order or a debit run.
    NotLockable {
        payable_id: String,
        status: PayableStatus,
        locked_by: Option<String>,
    },
}

/// A payment report, ready to store. Identifiers and dates were chosen by the caller.
#[derive(Debug, Clone)]
pub struct NewPayment {
    /// The region the payment belongs to, known before anything is written (on a Citus cluster
    /// its rows go to that region's shard): the region of the payables it names when they are
    /// the channel's to collect, else the channel's first region. Only payables of this region are applied; a payment naming others
    /// is refunded whole (`NOT_PAYABLE`), like one naming unknown payables.
    pub region: RegionCode,
    /// Carries `region` ([`crate::regional_id`]), like `refund_no`.
    pub payment_no: String,
    pub refund_no: String,
    pub channel_id: String,
    pub channel_txn_id: String,
    pub order_no: Option<String>,
    /// Who may take payables locked for this payment: its order, or a debit run
    /// (`debit:<run_no>`). `None` means the order number, if any.
    pub lock_holder: Option<String>,
    /// Refund everything under this reason instead of applying (a channel-only statement line
    /// refunded by the channel's policy).
    pub refund_all: Option<yibao_domain::settlement::RefundReason>,
    /// The payables the channel named (or the order's, resolved by the caller).
    pub payable_ids: Vec<String>,
    pub amount_fen: Fen,
    pub paid_at: String,
    /// The payment's date in China Standard Time: the statement day it belongs to.
    pub paid_on: NaiveDate,
    pub fingerprint: String,
    /// Due date of any refund: two working days after the payment (and whether every year it
    /// crossed had a holiday calendar).
    pub refund_due: yibao_domain::DueDate,
    /// The day receipts are issued.
    pub issued_on: NaiveDate,
    pub now: i64,
    /// Random 6-character check codes, one per payable, in `payable_ids` order.
    pub check_codes: Vec<String>,
    /// Event ids for the outbox, one per payable.
    pub event_ids: Vec<String>,
    /// When cover starts for each payable if this payment pays it (the 2025 rules), in
    /// `payable_ids` order; empty, or `None` for a payable, where yibao did not decide it (bank
    /// debit runs, statement bookings). Printed on the receipt and posted to the agency.
    pub cover: Vec<Option<CoverNote>>,
    /// The nonce of the signed request that reported it, recorded in the same transaction as the
    /// payment (issue 14: no statement and commit of its own per report). A nonce the channel
    /// used before answers [`PaymentReportOutcome::NonceUsed`] and writes nothing. `None` where
    /// the nonce was recorded already, or the report came from no signed request (a debit run,
    /// a statement's booking, a payment provider's notification).
    pub nonce: Option<String>,
}

/// When cover starts for a paid payable and why (the 2025 rules' answer at the payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverNote {
    /// The first day covered; none when the rules would not sell the year that day.
    pub starts_on: Option<NaiveDate>,
    /// `IN_WINDOW`, `WAITING`, … (`yibao_domain::CoverReason`) or a refusal's code.
    pub code: String,
    /// In Chinese, for the agency.
    pub text: String,
    /// The raise of the critical-illness cap (大病保险最高支付限额) the year earns, posted to the
    /// agency with the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<RewardNote>,
}

/// The critical-illness reward of a paid year: the raise in fen and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardNote {
    pub raise_fen: i64,
    /// In Chinese, e.g. `连续参保6年，连续参保激励2000.00元，大病保险最高支付限额提高2000.00元`.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ReceiptRef {
    pub payable_id: String,
    pub receipt_code: String,
    pub receipt_number: String,
    pub check_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRef {
    pub refund_no: String,
    pub amount_fen: Fen,
    pub reason: String,
    pub due: NaiveDate,
}

/// What a payment report came to. Stored with the payment, so a repeat gets the first answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOutcome {
    pub payment_no: String,
    /// `Paid`, `PartiallyRefunded` or `RefundPending`.
    pub result: PaymentStatus,
    pub receipts: Vec<ReceiptRef>,
    pub refund: Option<RefundRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentReportOutcome {
    Stored(PaymentOutcome),
    /// The same `channel_txn_id` again: the first answer, and whether the request was the same.
    Existing {
        outcome: PaymentOutcome,
        same_request: bool,
    },
    /// A reversal for this transaction came first and said the funds were returned.
    ReversedEarlier,
    /// The signed request's nonce ([`NewPayment::nonce`]) was used before by the channel: a
    /// replay. Nothing of the report was written.
    NonceUsed,
}

/// A payment's present state, for the status endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub payment_no: String,
    pub status: PaymentStatus,
    pub receipts: Vec<ReceiptRef>,
    pub refund: Option<RefundState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct RefundState {
    pub refund_no: String,
    pub channel_txn_id: String,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub amount_fen: Fen,
    pub reason: String,
    pub due: NaiveDate,
    #[schema(value_type = String)]
    #[sqlx(try_from = "String")]
    pub status: RefundStatus,
    /// The due date was counted into a year without a holiday calendar (weekends only): it may be
    /// too early, check it by hand.
    pub due_without_calendar: bool,
}

/// A reversal (冲正) to store.
pub struct NewReversal {
    pub channel_id: String,
    pub channel_txn_id: String,
    pub reason: String,
    pub funds_returned: bool,
    pub now: i64,
    /// Outbox event ids, one per payable that may be undone.
    pub event_ids: Vec<String>,
    /// Used only when the funds were not returned and something had been applied.
    pub refund_no: String,
    pub refund_due: yibao_domain::DueDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversalOutcome {
    Reversed,
    /// Recorded before the payment arrived.
    RecordedAhead,
    /// The payment's day has been reconciled against the channel's statement: too late to reverse.
    Closed,
}

/// A payment as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundResultOutcome {
    Done(RefundState),
    NotFound,
    /// The refund is in a state that cannot take this result (e.g. cancelled, or succeeded then failed).
    Conflict(String),
}

/// A stored electronic receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReceiptRecord {
    pub receipt_code: String,
    pub receipt_number: String,
    pub check_code: String,
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    pub payable_id: String,
    pub payment_no: String,
    /// In full: the receipt itself is shown to its payer and to staff only.
    #[serde(serialize_with = "serialize_id_number_in_full")]
    #[sqlx(try_from = "String")]
    pub id_number: IdNumber,
    pub payer_name: String,
    #[sqlx(try_from = "i32")]
    pub fee_year: FeeYear,
    #[sqlx(try_from = "i64")]
    pub amount_fen: Fen,
    /// JSON: `[{"code", "name", "amount"}]`.
    pub components: String,
    pub issued_on: NaiveDate,
    pub issuer: String,
    /// `valid` or `voided` (作废).
    #[sqlx(try_from = "String")]
    pub status: yibao_domain::ReceiptStatus,
    /// When cover starts for the payable (the 2025 rules), where it was decided at the payment.
    pub cover_starts_on: Option<NaiveDate>,
    pub cover_code: Option<String>,
    /// The gap year a back-payment (补缴修复) bought back; `None` on a year's contribution.
    pub buys_back_year: Option<i32>,
    /// The payer's insured number (参保编号) in the receipt's region, as issued (receipts
    /// issued before numbers existed got theirs with migration 0043).
    pub insured_number: Option<String>,
}

impl ReceiptRecord {
    /// The gap year a back-payment bought back, as a year.
    pub fn bought_back_year(&self) -> Option<u16> {
        self.buys_back_year.and_then(|y| u16::try_from(y).ok())
    }
}

/// An outbox event: one applied or reversed payment of one payable, to post to the agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutboxEvent {
    pub event_id: String,
    #[schema(value_type = String)]
    pub region: RegionCode,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
    pub dead: bool,
}

/// What [`crate::payments::PaymentStore::check_invariants`] found. Every list empty means all four of the
/// protocol's storable invariants hold, and every person is in the person directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvariantReport {
    pub payments_checked: i64,
    pub payables_paid: i64,
    pub receipts: i64,
    /// 1. Payables with more than one active payment, or paid without one, or unpaid with one.
    pub pay_once_violations: Vec<String>,
    /// 2. Payments (not reversed) whose amount is not applied + refunded or owed, to the fen.
    pub money_violations: Vec<String>,
    /// 3. Receipt codes whose numbers have gaps.
    pub receipt_gaps: Vec<String>,
    /// Active applications without a valid receipt.
    pub missing_receipts: Vec<String>,
    /// Paid payables not yet posted (到帐) without the outbox event that posts them: every
    /// applied payment must reach the agency.
    pub missing_postings: Vec<String>,
    /// Persons (region and masked ID number) without their row in `person_directory`, which
    /// every writer of persons writes in the same transaction and no constraint ties to them: a
    /// roster import finds persons through the directory, so it would take such a person as new
    /// and fail its batch on the persons' key. Not read on a Citus cluster, where the two tables
    /// lie on different nodes and cannot be joined.
    pub persons_outside_directory: Vec<String>,
}

impl InvariantReport {
    pub fn holds(&self) -> bool {
        self.pay_once_violations.is_empty()
            && self.money_violations.is_empty()
            && self.receipt_gaps.is_empty()
            && self.missing_receipts.is_empty()
            && self.missing_postings.is_empty()
            && self.persons_outside_directory.is_empty()
    }
}

/// What the channel protocol needs of storage: every aggregate of collection, each in its own file.
pub trait CollectionStorage:
    ChannelStore
    + PayableSearch
    + OrderStore
    + PaymentStore
    + RefundStore
    + ReceiptStore
    + OutboxStore
    + 'static
{
}

impl<T> CollectionStorage for T where
    T: ChannelStore
        + PayableSearch
        + OrderStore
        + PaymentStore
        + RefundStore
        + ReceiptStore
        + OutboxStore
        + 'static
{
}
