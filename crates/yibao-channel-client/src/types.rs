//! Wire types of channel protocol v1: one request and one response type per endpoint, field names exactly as
//! the protocol writes them.
//!
//! - Amounts are `i64` fen (分). Times are RFC 3339 with offset ([`DateTime<FixedOffset>`], which keeps the
//!   offset the sender used); dates are `YYYY-MM-DD` ([`NaiveDate`]).
//! - Optional request fields are `Option` and left out of the JSON when `None`.
//! - Responses ignore fields they do not know, and every enumerated string has an `Other(String)` case, so
//!   additions on the server (which the protocol allows) never break a client. Fields the protocol names are
//!   required; where the protocol lists a response without naming its fields, the type keeps what it cannot
//!   name in `extra`.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A string enumeration of the protocol: the known values, plus `Other` for one this client does not know
/// (or, in a test, one it sends on purpose).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the client does not know.
            Other(String),
        }

        impl $name {
            /// The string on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $wire => $name::$variant, )+
                    _ => $name::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::Other(s) => s,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------------------
// Errors

/// The body of every error response: HTTP status plus this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable (`AUTH_FAILED`, `REPLAYED`, `NOT_FOUND`, ...).
    pub code: String,
    /// Chinese text a teller or citizen can read and act on.
    pub message: String,
    pub request_id: String,
}

/// Error codes the protocol names, for matching on [`ErrorBody::code`].
pub mod codes {
    pub const AUTH_FAILED: &str = "AUTH_FAILED";
    pub const REPLAYED: &str = "REPLAYED";
    pub const REGION_NOT_ALLOWED: &str = "REGION_NOT_ALLOWED";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INVALID_ID_NUMBER: &str = "INVALID_ID_NUMBER";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const IDEMPOTENCY_CONFLICT: &str = "IDEMPOTENCY_CONFLICT";
    pub const ALREADY_PAID: &str = "ALREADY_PAID";
    pub const LOCKED: &str = "LOCKED";
    pub const AMOUNT_MISMATCH: &str = "AMOUNT_MISMATCH";
    pub const NOT_PAYABLE: &str = "NOT_PAYABLE";
    pub const WINDOW_CLOSED: &str = "WINDOW_CLOSED";
    pub const REVERSED: &str = "REVERSED";
    pub const REVERSAL_CLOSED: &str = "REVERSAL_CLOSED";
}

/// The answer of an endpoint whose response body the protocol does not spell out (order cancel, refund
/// result): any JSON object, kept whole. An empty body decodes as an empty object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

// ---------------------------------------------------------------------------------------------------------
// 1. Search payables — POST /channel/v1/payables/search

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// 18-character resident ID, 15-digit legacy number, or 17 digits from a keypad without `X`.
    /// Left empty (and not sent) when searching by `insured_number`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id_number: String,
    /// An addition to v1: the insured number (参保编号) instead of the ID number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insured_number: Option<String>,
    /// The name the agency holds on record (预留姓名); without it, names come back masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Region code, e.g. `320600`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_year: Option<i32>,
    /// An addition to v1, required from a `village_agent` channel and refused from others: the
    /// agent searching (村代办员), who finds only residents of their villages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResponse {
    pub insured: Insured,
    /// All of the person's current payables, paid ones too.
    pub payables: Vec<Payable>,
}

/// The insured person, masked: the response never carries a full name or a full ID number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insured {
    /// `张*三`
    pub name_masked: String,
    /// `320602**********12`
    pub id_number_masked: String,
    /// An addition to v1: the insured number (参保编号) in the region of the first payable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insured_number: Option<String>,
}

/// 应缴费信息: one amount a person owes for one insurance item, fee year and region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payable {
    /// Opaque, issued by yibao.
    pub payable_id: String,
    /// `resident_medical`
    pub item: String,
    /// `城乡居民基本医疗保险`
    pub item_name: String,
    pub fee_year: i32,
    pub region: String,
    pub region_name: String,
    /// Fen; the sum of `components`.
    pub amount: i64,
    pub components: Vec<PayableComponent>,
    pub status: PayableStatus,
    /// The collection window. Read leniently: `null` or absent (a payable with no window configured) is
    /// `None` rather than an undecodable answer.
    #[serde(default)]
    pub window: Option<CollectionWindow>,
    /// An addition to v1 (the 2025 rules): when cover would start if the payable were paid today.
    /// Absent from servers that do not send it.
    #[serde(default)]
    pub cover: Option<CoverIfPaid>,
    /// An addition to v1 (the 2025 rules): present on a back-payment (补缴修复) of a gap year.
    /// Absent from servers that do not send it.
    #[serde(default)]
    pub back_payment: Option<BackPayment>,
    /// An addition to v1: present when the region does not let this kind of channel collect the
    /// payable (subsidised, a back-payment, late): take no money, show `text`.
    #[serde(default)]
    pub not_collectable: Option<NotCollectable>,
}

/// Why a channel may not collect a payable, and where the payer goes instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCollectable {
    /// `CHANNEL_NOT_ALLOWED`
    pub code: String,
    pub text: String,
}

/// A back-payment (补缴修复): it buys back `buys_back_year`, which stays without cover, and
/// shortens the wait of the payable's fee year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackPayment {
    pub buys_back_year: u16,
    /// Chinese, for the screen.
    pub text: String,
}

/// When cover (待遇) would start if a payable were paid on `if_paid_on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverIfPaid {
    pub if_paid_on: chrono::NaiveDate,
    /// Null when the year cannot be bought that day.
    pub starts_on: Option<chrono::NaiveDate>,
    pub covered_this_year: bool,
    /// `IN_WINDOW`, `WAITING`, … or a refusal such as `LATE_NOT_ACCEPTED`.
    pub code: String,
    pub wait_months: u8,
    pub gap_years: Vec<u16>,
    /// Chinese, for the screen.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayableComponent {
    /// `basic`, `critical_illness`, `long_term_care`, ...
    pub code: String,
    pub name: String,
    /// Fen.
    pub amount: i64,
}

/// The collection window (征缴期), both ends as dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionWindow {
    pub opens: NaiveDate,
    pub closes: NaiveDate,
    /// An addition to v1 (the 2025 rules): the last day of the window's extension (延长期), until
    /// which a payment is in time. Absent from servers that do not send it, and where there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_until: Option<NaiveDate>,
}

wire_enum! {
    /// Status of a payable as a channel sees it.
    PayableStatus {
        Unpaid => "unpaid",
        Paid => "paid",
        /// Held by an open order or an auto-debit run.
        Locked => "locked",
        Exempt => "exempt",
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Orders — POST /channel/v1/orders, POST /channel/v1/orders/{order_no}/cancel

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOrderRequest {
    /// The channel's own idempotency key for the order.
    pub channel_order_no: String,
    /// May cover several people (a family paying together, 代缴).
    pub payable_ids: Vec<String>,
    /// Fen; must be the exact sum of the payables.
    pub amount: i64,
    pub payer: Payer,
    /// Required from a channel of kind `medical_account` (个人账户家庭共济), refused from any
    /// other. An addition to v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_account: Option<FamilyAccount>,
    /// Required from a channel of kind `health_card` (居民健康卡), refused from any other. An
    /// addition to v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_card: Option<HealthCard>,
    /// Required from a channel of kind `village_agent` (村代办员), refused from any other: the
    /// agent taking the money; the order records them. An addition to v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_code: Option<String>,
}

/// The resident health card that pays an order, and where it is used.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCard {
    /// The card holder's ID number. Personal data: kept out of `Debug`.
    pub holder_id_number: String,
    /// `agent_point` (代征点: only for members of the holder's household, else
    /// `NOT_HOUSEHOLD_MEMBER`) or `self_service` (自助服务机: for anyone).
    pub terminal: String,
}

impl std::fmt::Debug for HealthCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCard")
            .field("holder_id_number", &"<redacted>")
            .field("terminal", &self.terminal)
            .finish()
    }
}

/// The employee whose personal medical account pays an order, and the account's balance now.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyAccount {
    /// The employee's ID number (the account holder, 共济人). Personal data: kept out of `Debug`.
    pub employee_id_number: String,
    /// Fen; the order must fit within it, or it is refused `INSUFFICIENT_BALANCE`.
    pub balance: i64,
}

impl std::fmt::Debug for FamilyAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyAccount")
            .field("employee_id_number", &"<redacted>")
            .field("balance", &self.balance)
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Opaque, issued by yibao.
    pub order_no: String,
    pub amount: i64,
    pub expires_at: DateTime<FixedOffset>,
    pub status: OrderStatus,
}

wire_enum! {
    OrderStatus {
        Open => "open",
        Paid => "paid",
        Cancelled => "cancelled",
        Expired => "expired",
    }
}

// ---------------------------------------------------------------------------------------------------------
// 3. Report a payment — POST /channel/v1/payments

/// The channel has taken the money. Exactly one of `order_no` and `payable_ids` (the constructors ensure it;
/// the fields stay public so a test can send both or neither).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPaymentRequest {
    /// The channel's transaction id: the idempotency key of the report.
    pub channel_txn_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payable_ids: Option<Vec<String>>,
    /// Fen.
    pub amount: i64,
    pub paid_at: DateTime<FixedOffset>,
}

impl ReportPaymentRequest {
    /// A payment against an order.
    pub fn for_order(
        channel_txn_id: impl Into<String>,
        order_no: impl Into<String>,
        amount: i64,
        paid_at: DateTime<FixedOffset>,
    ) -> Self {
        ReportPaymentRequest {
            channel_txn_id: channel_txn_id.into(),
            order_no: Some(order_no.into()),
            payable_ids: None,
            amount,
            paid_at,
        }
    }

    /// A payment naming payables directly, without an order.
    pub fn for_payables(
        channel_txn_id: impl Into<String>,
        payable_ids: Vec<String>,
        amount: i64,
        paid_at: DateTime<FixedOffset>,
    ) -> Self {
        ReportPaymentRequest {
            channel_txn_id: channel_txn_id.into(),
            order_no: None,
            payable_ids: Some(payable_ids),
            amount,
            paid_at,
        }
    }
}

/// The 200 answer to a payment report (and to its repetitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReport {
    pub result: PaymentResult,
    pub payment_no: String,
    /// One per payable applied; empty for `refund_pending`.
    pub receipts: Vec<ReceiptRef>,
    /// Present for `partially_refunded` and `refund_pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundOwed>,
}

wire_enum! {
    PaymentResult {
        Paid => "paid",
        PartiallyRefunded => "partially_refunded",
        RefundPending => "refund_pending",
    }
}

/// A receipt as the payment answers name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRef {
    pub payable_id: String,
    /// `32012001`
    pub receipt_code: String,
    /// `0000000001`
    pub receipt_number: String,
    /// `a1b2c3`
    pub check_code: String,
}

/// A refund yibao owes back through the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundOwed {
    pub refund_no: String,
    /// Fen.
    pub amount: i64,
    pub reason: RefundReason,
    /// Two working days after the payment, by the operator's holiday calendar.
    pub due: NaiveDate,
}

wire_enum! {
    RefundReason {
        /// Another channel got there first.
        AlreadyPaid => "ALREADY_PAID",
        /// Not the exact sum: nothing applied, all refunded.
        AmountMismatch => "AMOUNT_MISMATCH",
        NotPayable => "NOT_PAYABLE",
        /// A reversal for this transaction arrived first.
        ReversedEarlier => "REVERSED_EARLIER",
    }
}

// ---------------------------------------------------------------------------------------------------------
// 4. Reverse a payment (冲正) — POST /channel/v1/payments/{channel_txn_id}/reversal

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalRequest {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversalResponse {
    pub result: ReversalResult,
}

wire_enum! {
    ReversalResult {
        Reversed => "reversed",
    }
}

// ---------------------------------------------------------------------------------------------------------
// 5. Payment status — GET /channel/v1/payments/{channel_txn_id}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStatusResponse {
    pub payment_no: String,
    pub status: PaymentStatus,
    pub receipts: Vec<ReceiptRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundOwed>,
}

wire_enum! {
    PaymentStatus {
        Paid => "paid",
        PartiallyRefunded => "partially_refunded",
        RefundPending => "refund_pending",
        Refunded => "refunded",
        Reversed => "reversed",
    }
}

// ---------------------------------------------------------------------------------------------------------
// 6. Refunds owed — GET /channel/v1/refunds?status=pending, POST /channel/v1/refunds/{refund_no}/result

/// One refund in the list of refunds owed through this channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRefund {
    pub refund_no: String,
    pub channel_txn_id: String,
    /// Fen.
    pub amount: i64,
    pub reason: RefundReason,
    pub due: NaiveDate,
}

/// The refund list. The protocol names the items' fields but not the envelope, so both a bare JSON array
/// and an object `{"refunds": [...]}` are accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RefundList(pub Vec<PendingRefund>);

impl<'de> Deserialize<'de> for RefundList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped {
            refunds: Vec<PendingRefund>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Bare(Vec<PendingRefund>),
            Wrapped(Wrapped),
        }
        match Either::deserialize(deserializer)? {
            Either::Bare(v) => Ok(RefundList(v)),
            Either::Wrapped(w) => Ok(RefundList(w.refunds)),
        }
    }
}

/// The channel's report of how a refund went; idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResultRequest {
    pub status: RefundOutcome,
    pub channel_refund_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

impl RefundResultRequest {
    pub fn succeeded(channel_refund_id: impl Into<String>) -> Self {
        RefundResultRequest {
            status: RefundOutcome::Succeeded,
            channel_refund_id: channel_refund_id.into(),
            failure_reason: None,
        }
    }

    pub fn failed(channel_refund_id: impl Into<String>, failure_reason: impl Into<String>) -> Self {
        RefundResultRequest {
            status: RefundOutcome::Failed,
            channel_refund_id: channel_refund_id.into(),
            failure_reason: Some(failure_reason.into()),
        }
    }
}

wire_enum! {
    RefundOutcome {
        Succeeded => "succeeded",
        /// The refund stays owed and is shown to staff.
        Failed => "failed",
    }
}

// ---------------------------------------------------------------------------------------------------------
// 7. Daily statement — PUT /channel/v1/statements/{date}, body text/csv

/// The header line of a statement file.
pub const STATEMENT_CSV_HEADER: &str = "channel_txn_id,type,amount,occurred_at,refund_no";

wire_enum! {
    StatementEntryType {
        Payment => "payment",
        Refund => "refund",
        Reversal => "reversal",
    }
}

/// One settled transaction in a channel's daily statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub channel_txn_id: String,
    pub entry_type: StatementEntryType,
    /// Fen.
    pub amount: i64,
    pub occurred_at: DateTime<FixedOffset>,
    /// For `refund` lines: the refund yibao owed.
    pub refund_no: Option<String>,
}

fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The statement file: the header line, then one line per transaction, each ending in `\n`, fields quoted
/// (RFC 4180) only where they hold a comma, quote or line break.
pub fn statement_csv(lines: &[StatementLine]) -> String {
    let mut out = String::with_capacity(64 * (lines.len() + 1));
    out.push_str(STATEMENT_CSV_HEADER);
    out.push('\n');
    for line in lines {
        csv_field(&mut out, &line.channel_txn_id);
        out.push(',');
        csv_field(&mut out, line.entry_type.as_str());
        out.push(',');
        out.push_str(&line.amount.to_string());
        out.push(',');
        out.push_str(&line.occurred_at.to_rfc3339());
        out.push(',');
        csv_field(&mut out, line.refund_no.as_deref().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The reconciliation summary. The protocol names the fields but not whether `matched`, `channel_only`,
/// `platform_only` and `amount_mismatch` are counts or lists, so each is a [`Tally`] that accepts both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementSummary {
    pub date: NaiveDate,
    pub matched: Tally,
    /// 长款/单边账: money taken, no report.
    pub channel_only: Tally,
    /// 短款: reported, not settled by the channel.
    pub platform_only: Tally,
    pub amount_mismatch: Tally,
    /// What yibao did or flagged; the protocol leaves the items' shape open.
    pub actions: Vec<Value>,
}

/// A count, or the list of the items counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tally {
    Count(u64),
    Items(Vec<Value>),
}

impl Tally {
    /// How many, whichever form the server chose.
    pub fn count(&self) -> u64 {
        match self {
            Tally::Count(n) => *n,
            Tally::Items(items) => u64::try_from(items.len()).unwrap_or(u64::MAX),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// 8. Receipts — POST /channel/v1/receipts/search, GET /channel/v1/receipts/{code}/{number}?check_code=,
//    GET /public/receipts/verify?code=&number=&check_code=

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSearchRequest {
    pub id_number: String,
    /// Required here, unlike in the payable search.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_year: Option<i32>,
}

/// The payer's own copy of a receipt (an addition to §8): the channel proves who the payer is with
/// their ID number and name, and gets the name in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayerCopyRequest {
    pub check_code: String,
    pub id_number: String,
    pub name: String,
}

/// One receipt in a receipt search. The protocol says only that the person's receipts are listed; the
/// receipt's identity is named as in the payment answers, and everything else is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptSummary {
    pub receipt_code: String,
    pub receipt_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payable_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The receipt list: a bare JSON array or `{"receipts": [...]}` (the protocol does not name the envelope).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ReceiptList(pub Vec<ReceiptSummary>);

impl<'de> Deserialize<'de> for ReceiptList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped {
            receipts: Vec<ReceiptSummary>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Bare(Vec<ReceiptSummary>),
            Wrapped(Wrapped),
        }
        match Either::deserialize(deserializer)? {
            Either::Bare(v) => Ok(ReceiptList(v)),
            Either::Wrapped(w) => Ok(ReceiptList(w.receipts)),
        }
    }
}

/// The JSON form of one receipt. The protocol does not list its fields; the identity is named as in the
/// payment answers and the rest is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptDocument {
    pub receipt_code: String,
    pub receipt_number: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_enum! {
    /// Whether a receipt still stands.
    ReceiptValidity {
        Valid => "valid",
        /// 作废: its payment was reversed; the receipt is kept, marked void.
        Voided => "voided",
    }
}

/// The public verification answer: "valid or voided, amount, date and masked payer". The protocol does not
/// name the fields; this client reads `status` (`valid` | `voided`), `amount` (fen), `date` (`YYYY-MM-DD`)
/// and `payer_name_masked`, each optional except `status`, and keeps anything else in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicVerification {
    pub status: ReceiptValidity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_name_masked: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A village agent's day (an addition to v1): who paid what through them, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDay {
    pub agent_code: String,
    pub date: NaiveDate,
    /// Fen: what the day's payments applied, the cash to hand in (交款).
    pub total: i64,
    /// The list stops at 2 000 lines; `total` is always the whole day's.
    #[serde(default)]
    pub truncated: bool,
    pub lines: Vec<AgentDayLine>,
}

/// One payable an agent's payments applied on the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDayLine {
    pub payment_no: String,
    pub paid_at: String,
    pub name_masked: String,
    pub id_number_masked: String,
    pub fee_year: i32,
    /// Fen.
    pub amount: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap_or_default()
    }

    #[test]
    fn optional_request_fields_are_left_out() {
        let req = SearchRequest {
            id_number: "320602199001011234".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).ok(),
            Some(json!({"id_number": "320602199001011234"}))
        );
        let req =
            ReportPaymentRequest::for_order("T1", "O1", 43000, t("2020-11-02T10:15:00+08:00"));
        assert_eq!(
            serde_json::to_value(&req).ok(),
            Some(
                json!({"channel_txn_id": "T1", "order_no": "O1", "amount": 43000,
                        "paid_at": "2020-11-02T10:15:00+08:00"})
            )
        );
        let req = OpenOrderRequest {
            channel_order_no: "C1".into(),
            payable_ids: vec!["P1".into()],
            amount: 43000,
            payer: Payer::default(),
            family_account: None,
            health_card: None,
            agent_code: None,
        };
        assert_eq!(
            serde_json::to_value(&req).ok(),
            Some(
                json!({"channel_order_no": "C1", "payable_ids": ["P1"], "amount": 43000, "payer": {}})
            )
        );
        assert_eq!(
            serde_json::to_value(RefundResultRequest::succeeded("BR1")).ok(),
            Some(json!({"status": "succeeded", "channel_refund_id": "BR1"}))
        );
    }

    #[test]
    fn the_specs_search_example_decodes_and_unknown_fields_are_ignored() {
        let body = json!({"insured": {"name_masked": "张*三", "id_number_masked": "320602**********12"},
          "payables": [{"payable_id": "p1", "item": "resident_medical", "item_name": "城乡居民基本医疗保险",
            "fee_year": 2021, "region": "320600", "region_name": "南通市", "amount": 43000,
            "components": [{"code": "basic", "name": "基本医疗保险", "amount": 38000},
                           {"code": "critical_illness", "name": "大病保险", "amount": 2000},
                           {"code": "long_term_care", "name": "照护保险", "amount": 3000}],
            "status": "unpaid", "window": {"opens": "2020-11-01", "closes": "2020-12-20"},
            "added_in_a_later_release": true}],
          "also_new": 1});
        let decoded: Result<SearchResponse, _> = serde_json::from_value(body);
        let Ok(decoded) = decoded else {
            panic!("decode failed: {decoded:?}");
        };
        let p = &decoded.payables[0];
        assert_eq!(p.amount, 43000);
        assert_eq!(p.components.iter().map(|c| c.amount).sum::<i64>(), 43000);
        assert_eq!(p.status, PayableStatus::Unpaid);
        assert_eq!(
            p.window.map(|w| w.closes),
            NaiveDate::from_ymd_opt(2020, 12, 20)
        );
    }

    #[test]
    fn unknown_enum_values_survive_a_round_trip() {
        let s: Result<PayableStatus, _> = serde_json::from_str("\"suspended\"");
        assert_eq!(s.ok(), Some(PayableStatus::Other("suspended".into())));
        assert_eq!(
            serde_json::to_string(&PayableStatus::Other("suspended".into())).ok(),
            Some("\"suspended\"".to_owned())
        );
        assert_eq!(
            serde_json::to_string(&RefundReason::ReversedEarlier).ok(),
            Some("\"REVERSED_EARLIER\"".to_owned())
        );
    }

    #[test]
    fn payment_answers_decode() {
        let body = json!({"result": "partially_refunded", "payment_no": "PN1",
            "receipts": [{"payable_id": "p1", "receipt_code": "32012001", "receipt_number": "0000000001",
                          "check_code": "a1b2c3"}],
            "refund": {"refund_no": "R1", "amount": 43000, "reason": "ALREADY_PAID", "due": "2020-11-04"}});
        let r: Result<PaymentReport, _> = serde_json::from_value(body);
        let Ok(r) = r else { panic!("{r:?}") };
        assert_eq!(r.result, PaymentResult::PartiallyRefunded);
        assert_eq!(r.refund.map(|f| f.reason), Some(RefundReason::AlreadyPaid));

        let paid: Result<PaymentReport, _> =
            serde_json::from_value(json!({"result": "paid", "payment_no": "PN2", "receipts": []}));
        assert!(paid.is_ok_and(|p| p.refund.is_none()));
    }

    #[test]
    fn refund_and_receipt_lists_accept_bare_and_wrapped_forms() {
        let item = json!({"refund_no": "R1", "channel_txn_id": "T1", "amount": 100,
                          "reason": "NOT_PAYABLE", "due": "2020-11-04"});
        let bare: Result<RefundList, _> = serde_json::from_value(json!([item.clone()]));
        let wrapped: Result<RefundList, _> = serde_json::from_value(json!({"refunds": [item]}));
        assert_eq!(bare.ok().map(|l| l.0.len()), Some(1));
        assert_eq!(wrapped.ok().map(|l| l.0.len()), Some(1));

        let receipt =
            json!({"receipt_code": "32012001", "receipt_number": "0000000001", "amount": 43000});
        let bare: Result<ReceiptList, _> = serde_json::from_value(json!([receipt.clone()]));
        let wrapped: Result<ReceiptList, _> =
            serde_json::from_value(json!({"receipts": [receipt]}));
        let Ok(bare) = bare else { panic!("{bare:?}") };
        assert_eq!(bare.0[0].extra.get("amount"), Some(&json!(43000)));
        assert_eq!(wrapped.ok().map(|l| l.0.len()), Some(1));
    }

    #[test]
    fn statement_summary_accepts_counts_or_lists() {
        let s: Result<StatementSummary, _> = serde_json::from_value(json!({"date": "2020-11-02",
            "matched": 3, "channel_only": [{"channel_txn_id": "T9"}], "platform_only": 0,
            "amount_mismatch": [], "actions": [{"kind": "refund_owed"}]}));
        let Ok(s) = s else { panic!("{s:?}") };
        assert_eq!(s.matched.count(), 3);
        assert_eq!(s.channel_only.count(), 1);
        assert_eq!(s.amount_mismatch.count(), 0);
    }

    #[test]
    fn statement_csv_matches_the_spec_example() {
        let lines = [
            StatementLine {
                channel_txn_id: "T20201102000001".into(),
                entry_type: StatementEntryType::Payment,
                amount: 43000,
                occurred_at: t("2020-11-02T10:15:00+08:00"),
                refund_no: None,
            },
            StatementLine {
                channel_txn_id: "T20201102000001".into(),
                entry_type: StatementEntryType::Refund,
                amount: 43000,
                occurred_at: t("2020-11-03T09:00:00+08:00"),
                refund_no: Some("R000017".into()),
            },
        ];
        assert_eq!(
            statement_csv(&lines),
            "channel_txn_id,type,amount,occurred_at,refund_no\n\
             T20201102000001,payment,43000,2020-11-02T10:15:00+08:00,\n\
             T20201102000001,refund,43000,2020-11-03T09:00:00+08:00,R000017\n"
        );
        let odd = [StatementLine {
            channel_txn_id: "T,\"1\"".into(),
            ..lines[0].clone()
        }];
        assert!(statement_csv(&odd).contains("\n\"T,\"\"1\"\"\",payment,"));
    }

    #[test]
    fn error_body_needs_all_three_fields() {
        let ok: Result<ErrorBody, _> = serde_json::from_value(
            json!({"code": "REPLAYED", "message": "请求重复", "request_id": "r1"}),
        );
        assert!(ok.is_ok());
        let missing: Result<ErrorBody, _> =
            serde_json::from_value(json!({"code": "REPLAYED", "message": "请求重复"}));
        assert!(missing.is_err());
    }
}
