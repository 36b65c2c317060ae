//! The bodies the channel protocol answers with (§1–§8 and the public endpoints), as types: the
//! handlers serialize exactly these, and the OpenAPI document takes its schemas from them, so the
//! two cannot drift apart. Field names are the protocol's; amounts are integer fen.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::services::reconciliation::{
    CarriedItems, ChannelFunds, PlatformFunds, RefundLines, StatementAction, StatementFunds,
    StatementSummary, SupersededActions,
};

/// §1 The answer to a payables search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    pub insured: Insured,
    /// All of the person's current payables, paid ones too.
    pub payables: Vec<PayableAnswer>,
}

/// The insured person, masked: a channel never sees a full name or ID number.
#[derive(Debug, Serialize, ToSchema)]
pub struct Insured {
    /// `史*春`
    pub name_masked: String,
    /// `320602**********02`
    pub id_number_masked: String,
    /// An addition to v1 (issue 17): the insured number (参保编号) the agency gave the person
    /// in the region of the first payable listed, 16 characters, in full (it says nothing about
    /// the person: a region code, a serial and a check character). A person who moved has one
    /// per region: search with `region` to get that region's. A client that does not know it
    /// ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insured_number: Option<String>,
}

/// 应缴费信息: what one person owes for one item, fee year and region.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayableAnswer {
    /// Opaque, issued by yibao.
    pub payable_id: String,
    /// `resident_medical`
    pub item: String,
    /// `城乡居民基本医疗保险`
    pub item_name: String,
    pub fee_year: i32,
    /// Six-digit region code (统筹区).
    pub region: String,
    pub region_name: String,
    /// Fen; the sum of `components`.
    pub amount: i64,
    pub components: Vec<Component>,
    /// `unpaid`, `paid`, `locked` (held by an open order or a bank auto-debit run), `exempt`, or
    /// `cancelled` (superseded by a re-assessment).
    pub status: String,
    /// The collection window (征缴期); null when the region has no fee policy for the year.
    pub window: Option<Window>,
    /// An addition to v1 (the 2025 rules, docs/rules-2025.md): when cover would start if this
    /// payable were paid today. Present on unpaid and locked payables of a year with a fee policy;
    /// absent otherwise. A client that does not know it ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cover: Option<CoverAnswer>,
    /// An addition to v1 (the 2025 rules): present when the payable is a back-payment (补缴修复)
    /// of a gap year, not the year's contribution. It buys no cover; it shortens the wait of
    /// `fee_year`'s cover if paid before or with that year's contribution. A client that does not
    /// know it still shows `item_name`, which says 补缴 and the year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub back_payment: Option<BackPaymentAnswer>,
    /// An addition to v1 (issue 17): present on an unpaid or locked payable the region's channel
    /// rules keep from this kind of channel today (subsidised, a back-payment, late, or the full
    /// amount): do not take the money, show `text`, which says where to pay. An order for it is
    /// refused with `code`; money reported for it without an order is owed back whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_collectable: Option<NotCollectableAnswer>,
}

/// Why this channel may not collect a payable, and where the payer goes instead.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotCollectableAnswer {
    /// `CHANNEL_NOT_ALLOWED`
    pub code: String,
    /// `微信支付不能办理享受资助人员的缴费，请到乡镇/社区服务站缴费`
    pub text: String,
}

/// A back-payment (补缴修复): which gap year it buys back and what that does.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackPaymentAnswer {
    /// The gap year bought back; it stays a year without cover.
    pub buys_back_year: u16,
    /// For the teller's or the resident's screen, in Chinese.
    pub text: String,
}

/// When cover starts if a payable is paid on `if_paid_on` (待遇享受时间), under the region's 2025
/// rules and the person's cover history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverAnswer {
    /// The day the answer holds for: today.
    pub if_paid_on: NaiveDate,
    /// The first day covered; null when the year cannot be bought that day (`code` says why).
    pub starts_on: Option<NaiveDate>,
    /// False when the waiting period ends after the benefit year: paying buys no cover this year.
    pub covered_this_year: bool,
    /// Why: `IN_WINDOW`, `EXTENSION`, `WAITING`, `NEWBORN`, `EXEMPT_GROUP`, `FROM_EMPLOYEE`,
    /// `FROM_EMPLOYEE_CAPPED`; or why not: `WINDOW_NOT_OPEN`, `YEAR_CLOSED`, `LATE_NOT_ACCEPTED`,
    /// `WAIT_PAST_YEAR_END`.
    pub code: String,
    /// The waiting period in months (0 without one).
    pub wait_months: u8,
    /// The gap years (断保年度) that count, oldest first.
    pub gap_years: Vec<u16>,
    /// For the teller's or the resident's screen, in Chinese.
    pub text: String,
}

/// One component of an amount: `basic` 基本医疗保险, `critical_illness` 大病保险,
/// `long_term_care` 照护保险.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Component {
    pub code: String,
    pub name: String,
    /// Fen.
    pub amount: i64,
}

/// The collection window (征缴期), both ends included.
#[derive(Debug, Serialize, ToSchema)]
pub struct Window {
    pub opens: NaiveDate,
    pub closes: NaiveDate,
    /// An addition to v1 (the 2025 rules): the last day of the window's extension (延长期),
    /// when the region sets one. Until then a payment is in time (an order opens; cover counts
    /// from the payment date, see `cover`), whether or not the region takes late payment.
    /// Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension_until: Option<NaiveDate>,
}

/// §2 An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderAnswer {
    /// Opaque, issued by yibao.
    pub order_no: String,
    /// Fen.
    pub amount: i64,
    /// RFC 3339, China Standard Time.
    pub expires_at: String,
    /// `open`, `paid`, `cancelled` or `expired`.
    pub status: String,
}

/// §3 The answer to a payment report (and to its repetitions).
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentAnswer {
    /// `paid`, `partially_refunded` or `refund_pending`.
    pub result: String,
    pub payment_no: String,
    /// One per payable applied; empty for `refund_pending`.
    pub receipts: Vec<ReceiptRef>,
    /// Present for `partially_refunded` and `refund_pending`: what yibao owes back through the
    /// channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundOwed>,
}

/// A receipt (票据) as payment answers name it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptRef {
    pub payable_id: String,
    /// `32060026`
    pub receipt_code: String,
    /// `0000000001`
    pub receipt_number: String,
    /// `3ij65t`
    pub check_code: String,
}

/// A refund yibao owes back through the channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundOwed {
    pub refund_no: String,
    /// Fen.
    pub amount: i64,
    /// `ALREADY_PAID`, `AMOUNT_MISMATCH`, `NOT_PAYABLE` or `REVERSED_EARLIER`.
    pub reason: String,
    /// Two working days after the payment, by the operator's holiday calendar.
    pub due: NaiveDate,
}

/// §4 The answer to a reversal.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReversalAnswer {
    /// `reversed`
    pub result: String,
}

/// §5 What yibao knows of a reported payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentStatusAnswer {
    pub payment_no: String,
    /// `paid`, `partially_refunded`, `refund_pending`, `refunded` or `reversed`.
    pub status: String,
    pub receipts: Vec<ReceiptRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundOwed>,
}

/// §6 One refund owed through the channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingRefund {
    pub refund_no: String,
    pub channel_txn_id: String,
    /// Fen.
    pub amount: i64,
    /// `ALREADY_PAID`, `AMOUNT_MISMATCH`, `NOT_PAYABLE` or `REVERSED_EARLIER`.
    pub reason: String,
    pub due: NaiveDate,
}

/// §6 The answer to a refund result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResultAnswer {
    pub refund_no: String,
    /// The refund's state now: `succeeded`, or `failed` (still owed).
    pub status: String,
}

/// §8 One receipt in a receipt search.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptBrief {
    pub receipt_code: String,
    pub receipt_number: String,
    pub check_code: String,
    pub payable_id: String,
    pub fee_year: i32,
    /// Fen.
    pub amount: i64,
    pub issued_on: NaiveDate,
    /// `valid` or `voided` (作废, after a reversal or refund).
    pub status: String,
}

/// §8 One receipt (社会保险费电子票据), as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptAnswer {
    pub receipt_code: String,
    pub receipt_number: String,
    pub check_code: String,
    /// `社会保险费电子票据`
    pub title: String,
    pub payer_name_masked: String,
    /// The payer's name in full: only on the payer's own copy (`…/payer-copy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_name: Option<String>,
    pub payer_id_number_masked: String,
    /// An addition to v1 (issue 17): the payer's insured number (参保编号) in the receipt's
    /// region, printed in 备注 on the PDF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insured_number: Option<String>,
    /// `resident_medical`
    pub item: String,
    pub item_name: String,
    pub fee_year: i32,
    pub components: Vec<Component>,
    /// Fen.
    pub amount: i64,
    pub issued_on: NaiveDate,
    pub issuer: String,
    /// `valid` or `voided`.
    pub status: String,
    pub payable_id: String,
    /// Where anyone can verify the receipt (absolute, under `public_base_url`).
    pub verify_url: String,
}

/// Public verification of a receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyAnswer {
    /// `valid` or `voided`.
    pub status: String,
    pub receipt_code: String,
    pub receipt_number: String,
    /// Fen.
    pub amount: i64,
    /// The day the receipt was issued.
    pub date: NaiveDate,
    pub payer_name_masked: String,
}

/// A citizen's own check: have I paid?
#[derive(Debug, Serialize, ToSchema)]
pub struct PaidStatusAnswer {
    pub name_masked: String,
    pub id_number_masked: String,
    pub payables: Vec<PaidYear>,
}

/// One fee year of a citizen's check.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaidYear {
    pub fee_year: i32,
    pub region_name: String,
    /// `unpaid`, `paid`, `exempt` or `cancelled`.
    pub status: String,
    /// `未缴费`, `已缴费` or `免缴`.
    pub status_name: String,
    /// Fen.
    pub amount: i64,
}
