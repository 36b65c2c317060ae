//! Reconciliation (对账) of a channel's daily statement, whatever its format: the protocol's CSV
//! (§7), a WeChat Pay trade bill or an Alipay bill. One pass: the file is read into per-transaction
//! totals and sorted, the day's payments are read page by page in the same order, and the two are
//! merged ([`yibao_domain::reconciliation::Matcher`]). Then, for the few lines that differ:
//!
//! - a channel-only line (长款) whose transaction yibao knows from another day is `other_day`; one
//!   that a platform-only line of an earlier day was waiting for resolves it (the carry-over pool);
//!   the rest is applied to its order (policy `apply`, when the order is found) or owed back; more
//!   than [`MAX_AUTOMATIC_ACTIONS`] such lines in one file are left for staff instead;
//! - platform-only payments (短款) are carried to the next day's statement and escalated if it does
//!   not list them either;
//! - refund lines confirm the refunds they name;
//! - the day's differences and totals are stored, replacing an earlier upload of the same day.

use std::collections::HashMap;
use yibao_domain::{Fen, PaymentStatus, ReconciliationItemStatus, RefundStatus, RegionCode};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use yibao_domain::reconciliation::{
    booking_verdict, BookingVerdict, Difference, DifferenceClass, Matcher, StatementBooking,
    StatementLineKind, StatementLines, StatementTooLarge, MAX_STATEMENT_ID_BYTES,
};
use yibao_statement_file::{
    read_statement, LineKind, StatementError, StatementFormat, StatementOptions,
};
use yibao_storage::collection::{NewPayment, PaymentReportOutcome, RefundResultOutcome};
use yibao_storage::records::MAX_LIST_ROWS;
use yibao_storage::settlement::{NewReconciliationItem, ReconciliationRecord, RECONCILE_PAGE};
use yibao_storage::Storage;

use crate::auth::Staff;
use crate::clock::Clock;
use crate::error::{ErrorCode, ServiceError};
use crate::services::audit;
use crate::services::refunds::refund_due;
use crate::services::settlement_scope::{
    channel_filter, channel_view, date_of, ChannelView, PeriodQuery,
};
use crate::staff_answers::{
    ChannelOnlyPolicyAnswer, ReconciledStatement, ReconciliationReport, ResolutionAnswer,
};
use crate::AppState;

/// Actions listed in the answer at most; the rest are counted (the differences are all stored).
pub const MAX_ACTIONS_LISTED: usize = 1000;
/// Channel-only lines acted on (refunded or applied) by one upload at most. More than this means a
/// wrong file or a wrong channel: every line is then left for staff, and nothing is done.
pub const MAX_AUTOMATIC_ACTIONS: usize = 1000;
/// Statement days accepted: the years a fee year can have.
const STATEMENT_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// What reconciliation did, as the answer lists it: the first [`MAX_ACTIONS_LISTED`], then a count.
#[derive(Default)]
struct ActionLog {
    listed: Vec<StatementAction>,
    not_listed: usize,
}

impl ActionLog {
    fn push(&mut self, action: StatementAction) {
        if self.listed.len() < MAX_ACTIONS_LISTED {
            self.listed.push(action);
        } else {
            self.not_listed += 1;
        }
    }
}
/// §7 The reconciliation summary of a statement upload (the channel's and the staff upload's
/// answer), as `reconcile` builds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementSummary {
    pub date: NaiveDate,
    /// `protocol`, `wechat` or `alipay`.
    pub format: String,
    /// Transaction lines read.
    pub lines: i64,
    /// Transactions and refund lines that agree.
    pub matched: i64,
    /// 长款: in the statement, never reported.
    pub channel_only: i64,
    /// 短款: reported, not in the statement.
    pub platform_only: i64,
    pub amount_mismatch: i64,
    pub duplicate: i64,
    /// Transactions the platform has on another day.
    pub other_day: i64,
    /// What was done about each difference.
    pub actions: Vec<StatementAction>,
    /// Actions beyond those listed.
    pub actions_not_listed: i64,
    pub carried: CarriedItems,
    pub funds: StatementFunds,
    pub refund_lines: RefundLines,
    /// What an earlier upload of the same day did that this one no longer supports.
    pub superseded: SupersededActions,
}

/// Actions of an earlier upload of the day that the re-upload no longer supports.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupersededActions {
    /// Undone: the refund owed (and the payment booked for it) withdrawn before it was handed to
    /// the channel.
    pub withdrawn: i64,
    /// Could not be undone (handed over, or applied with a receipt): a `superseded_action` item
    /// for staff.
    pub flagged: i64,
}

/// One difference of a statement and what was done about it. A field that does not apply is left
/// out.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatementAction {
    /// The transaction concerned (absent for a refund line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_txn_id: Option<String>,
    /// The refund concerned, for refund lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_no: Option<String>,
    /// `channel_only`, `platform_only`, `amount_mismatch`, `duplicate`, `other_day`,
    /// `refund_unknown` or `refund`.
    pub class: String,
    /// `refund_owed`, `applied`, `flagged`, `carried`, `escalated`, `awaiting_staff`,
    /// `matched_next_day`, `confirmed_by_statement` …
    pub action: String,
    /// Fen on the channel's side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<i64>,
    /// Fen on the platform's side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_no: Option<String>,
    /// For a carried item: the statement it was carried from or matched on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_date: Option<NaiveDate>,
    /// For an `other_day` item: the day the platform has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_on: Option<NaiveDate>,
    /// For staff, in Chinese.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Items carried over from earlier days' statements.
#[derive(Debug, Serialize, ToSchema)]
pub struct CarriedItems {
    /// Matched by this statement.
    pub resolved: i64,
    /// Still missing after their last day: handed to staff.
    pub escalated: i64,
}

/// Money per side, fen.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementFunds {
    pub channel: ChannelFunds,
    pub platform: PlatformFunds,
    /// Matched funds.
    pub matched: i64,
    /// The channel's net less the platform's payments.
    pub difference: i64,
}

/// The statement's side, fen.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelFunds {
    pub payments: i64,
    pub payment_count: i64,
    pub refunds: i64,
    pub refund_count: i64,
    pub reversals: i64,
    /// Payments less reversals.
    pub net: i64,
}

/// yibao's side, fen.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformFunds {
    pub payments: i64,
    pub payment_count: i64,
}

/// Refund lines of the statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundLines {
    /// Naming a refund yibao owes, with its amount.
    pub matched: i64,
    /// Of those, refunds now confirmed as paid back.
    pub confirmed: i64,
    /// Naming no refund yibao knows (or with another amount): flagged.
    pub unknown: i64,
}

impl StatementAction {
    /// What was done (`action`) about a difference of class `class` on transaction `txn`.
    fn on_txn(txn: &str, class: &str, action: &str) -> StatementAction {
        StatementAction {
            channel_txn_id: Some(txn.to_owned()),
            class: class.to_owned(),
            action: action.to_owned(),
            ..StatementAction::default()
        }
    }

    /// What was done (`action`) about refund line `refund_no` of class `class`.
    fn on_refund(refund_no: &str, class: &str, action: &str) -> StatementAction {
        StatementAction {
            refund_no: Some(refund_no.to_owned()),
            class: class.to_owned(),
            action: action.to_owned(),
            ..StatementAction::default()
        }
    }
}

/// A count as the summary gives it.
fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// Largest statement accepted: a million protocol lines are about 70 MB.
pub const MAX_STATEMENT_BYTES: usize = 256 * 1024 * 1024;
/// Most lines in one statement.
pub const MAX_STATEMENT_LINES: u64 = 2_000_000;

pub struct StatementUpload<'a> {
    pub channel_id: &'a str,
    pub day: NaiveDate,
    pub format: StatementFormat,
    pub bytes: &'a [u8],
}

fn statement_error(e: StatementError) -> ServiceError {
    match e {
        StatementError::TooLarge { .. } | StatementError::TooManyLines { .. } => {
            ServiceError::new(ErrorCode::PayloadTooLarge, e.message_zh())
        }
        other => ServiceError::new(ErrorCode::BadStatementFile, other.message_zh()),
    }
}

/// Room for the statement's lines, guessed from its line breaks (a packed file gives no guess),
/// so that a million lines are not copied as their vector doubles, nor given twice the room.
fn statement_lines_for(bytes: &[u8]) -> StatementLines {
    let breaks = bytes.iter().filter(|&&b| b == b'\n').count();
    let lines = breaks.min(usize::try_from(MAX_STATEMENT_LINES).unwrap_or(usize::MAX));
    // Ids take at most about a quarter of a protocol line's bytes (a hint: unused room is never touched).
    StatementLines::with_capacity(lines, bytes.len() / 4)
}

struct RefundLine {
    /// Where it is in the file, to tell apart lines that name no refund (or the same one twice).
    row: u64,
    refund_no: String,
    amount_fen: i64,
}

/// Reconciles one day's statement and stores the result. Returns the summary the protocol's §7
/// answers with (and more: funds, carried items, refund lines).
pub async fn reconcile(
    storage: &dyn Storage,
    clock: &Clock,
    upload: StatementUpload<'_>,
) -> Result<StatementSummary, ServiceError> {
    if upload.bytes.len() > MAX_STATEMENT_BYTES {
        return Err(ServiceError::of(ErrorCode::PayloadTooLarge));
    }
    if !STATEMENT_YEARS.contains(&chrono::Datelike::year(&upload.day)) {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "对账日期应在 2000 年至 2100 年之间",
        ));
    }
    let policy = storage
        .channel_only_policy(upload.channel_id)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该渠道"))?;
    let file_sha256 = hex::encode(Sha256::digest(upload.bytes));

    // 1. The file, folded per transaction.
    let mut options = StatementOptions::default();
    options.limits.max_bytes = MAX_STATEMENT_BYTES as u64;
    options.limits.max_lines = MAX_STATEMENT_LINES;
    let mut lines = statement_lines_for(upload.bytes);
    let mut refund_lines: Vec<RefundLine> = Vec::new();
    let read = read_statement(upload.format, upload.bytes, &options, |line| {
        let amount_fen = line.amount.as_fen();
        let kind = match line.kind {
            LineKind::Refund => {
                refund_lines.push(RefundLine {
                    row: line.row,
                    refund_no: line.refund_no.unwrap_or_default(),
                    amount_fen,
                });
                return Ok(());
            }
            LineKind::Payment => StatementLineKind::Payment,
            LineKind::Reversal => StatementLineKind::Reversal,
        };
        lines
            .push(&line.channel_txn_id, kind, amount_fen)
            .map_err(|StatementTooLarge| StatementError::TooLarge {
                limit: MAX_STATEMENT_ID_BYTES as u64,
                unpacked: false,
            })
    })
    .map_err(statement_error)?;
    let totals = read.totals;
    let channel = lines.fold();

    // 2. The merge with the day's payments, page by page in byte order.
    let mut differences: Vec<Difference> = Vec::new();
    let mut matcher = Matcher::new(channel);
    let mut after: Option<String> = None;
    loop {
        let page = storage
            .payments_page(
                upload.channel_id,
                upload.day,
                after.as_deref(),
                RECONCILE_PAGE,
            )
            .await?;
        let full = page.len() == RECONCILE_PAGE;
        after = page.last().map(|p| p.channel_txn_id.clone());
        for payment in page {
            matcher.platform(payment, &mut |d| differences.push(d));
        }
        if !full {
            break;
        }
    }
    let mut tally = matcher.finish(&mut |d| differences.push(d));

    // 3. Channel-only lines: an earlier upload's booking, another day's payment, a carried item
    // resolved, or money to act on.
    let carried = storage.carried_items(upload.channel_id, upload.day).await?;
    let carried_by_txn: HashMap<&str, &yibao_storage::settlement::ReconciliationItem> = carried
        .iter()
        .map(|c| (c.channel_txn_id.as_str(), c))
        .collect();
    // What an earlier upload of this day booked from its channel-only lines, and what this file
    // says of each: still listed with the same amount, listed otherwise, or gone.
    let bookings = storage
        .statement_bookings(upload.channel_id, upload.day)
        .await?;
    let listed: HashMap<String, i64> = differences
        .iter()
        .filter(|d| d.class == DifferenceClass::ChannelOnly)
        .map(|d| (d.channel_txn_id.clone(), d.channel_fen))
        .collect();
    let verdicts: HashMap<String, (BookingVerdict, StatementBooking)> = bookings
        .into_iter()
        .map(|b| {
            let verdict = booking_verdict(&b, listed.get(&b.channel_txn_id).copied());
            (b.channel_txn_id.clone(), (verdict, b))
        })
        .collect();
    let channel_only: Vec<String> = differences
        .iter()
        .filter(|d| d.class == DifferenceClass::ChannelOnly)
        .filter(|d| !verdicts.contains_key(&d.channel_txn_id))
        .map(|d| d.channel_txn_id.clone())
        .collect();
    let known: HashMap<String, yibao_storage::settlement::PaymentOnAnyDay> = storage
        .payments_by_txn(upload.channel_id, &channel_only)
        .await?
        .into_iter()
        .map(|p| (p.channel_txn_id.clone(), p))
        .collect();

    let now = clock.now().timestamp();
    let mut items: Vec<NewReconciliationItem> = Vec::new();
    let mut resolved_carried: Vec<(NaiveDate, String)> = Vec::new();
    let mut actions = ActionLog::default();
    // Channel-only lines that would be acted on anew: too many, and none is (nor is an earlier
    // upload's booking withdrawn: the file is suspect).
    let to_act = differences
        .iter()
        .filter(|d| {
            d.class == DifferenceClass::ChannelOnly
                && !carried_by_txn.contains_key(d.channel_txn_id.as_str())
                && !known.contains_key(&d.channel_txn_id)
                && !verdicts.get(&d.channel_txn_id).is_some_and(|(v, _)| {
                    matches!(v, BookingVerdict::Stands | BookingVerdict::FlagForStaff)
                })
        })
        .count();
    let act = to_act <= MAX_AUTOMATIC_ACTIONS;
    let (mut withdrawn, mut superseded) = (0u64, 0u64);
    for mut d in differences {
        match d.class {
            DifferenceClass::ChannelOnly => {
                if let Some(c) = carried_by_txn.get(d.channel_txn_id.as_str()) {
                    if c.platform_fen == d.channel_fen {
                        // The payment of an earlier day the channel settled today: both sides agree.
                        tally.channel_only -= 1;
                        tally.matched += 1;
                        tally.matched_fen = tally.matched_fen.saturating_add(d.channel_fen);
                        resolved_carried.push((c.statement_date, d.channel_txn_id.clone()));
                        actions.push(StatementAction {
                            statement_date: Some(c.statement_date),
                            ..StatementAction::on_txn(
                                &d.channel_txn_id,
                                "platform_only",
                                "matched_next_day",
                            )
                        });
                        continue;
                    }
                }
                // An earlier upload of this day booked this line: it stands (the same action again,
                // found by its transaction id), or is withdrawn and acted on anew, or is for staff.
                let mut flagged_earlier = false;
                if let Some((verdict, booking)) = verdicts.get(&d.channel_txn_id) {
                    let undone = match verdict {
                        BookingVerdict::Stands => false,
                        BookingVerdict::Withdraw if act => {
                            withdraw(storage, &upload, booking, &mut actions).await?
                        }
                        BookingVerdict::Withdraw | BookingVerdict::FlagForStaff => false,
                    };
                    if *verdict != BookingVerdict::Stands && !undone {
                        superseded += 1;
                        flag_superseded(booking, d.channel_fen, &mut items, &mut actions);
                        flagged_earlier = true;
                    }
                    withdrawn += u64::from(undone);
                }
                if flagged_earlier {
                    // The earlier booking holds the transaction id: the new amount waits for staff.
                    actions.push(StatementAction {
                        channel: Some(d.channel_fen),
                        message: Some(
                            "前次上传已按另一金额处理且已交付，本次金额待人工核实".to_owned(),
                        ),
                        ..StatementAction::on_txn(
                            &d.channel_txn_id,
                            "channel_only",
                            "awaiting_staff",
                        )
                    });
                    items.push(NewReconciliationItem {
                        difference: d,
                        status: ReconciliationItemStatus::Open,
                        resolution: None,
                    });
                    continue;
                }
                if let Some(p) = known.get(&d.channel_txn_id) {
                    tally.channel_only -= 1;
                    d.class = DifferenceClass::OtherDay;
                    d.platform_fen = if p.status == PaymentStatus::Reversed {
                        0
                    } else {
                        p.amount_fen
                    };
                    d.payment_no = Some(p.payment_no.clone());
                    d.region = p.region.clone();
                    actions.push(StatementAction {
                        paid_on: Some(p.paid_on),
                        ..StatementAction::on_txn(&d.channel_txn_id, "other_day", "flagged")
                    });
                    items.push(NewReconciliationItem {
                        difference: d,
                        status: ReconciliationItemStatus::Open,
                        resolution: None,
                    });
                    continue;
                }
                let stands = verdicts
                    .get(&d.channel_txn_id)
                    .is_some_and(|(v, _)| *v == BookingVerdict::Stands);
                let (status, resolution, a) = if act || stands {
                    act_on_channel_only(storage, clock, &upload, &policy, &d).await?
                } else {
                    (
                        ReconciliationItemStatus::Open,
                        None,
                        StatementAction {
                            channel: Some(d.channel_fen),
                            message: Some(format!(
                                "长款超过 {MAX_AUTOMATIC_ACTIONS} 笔，可能是文件或渠道有误，未自动处理，请核实"
                            )),
                            ..StatementAction::on_txn(
                                &d.channel_txn_id,
                                "channel_only",
                                "awaiting_staff",
                            )
                        },
                    )
                };
                actions.push(a);
                items.push(NewReconciliationItem {
                    difference: d,
                    status,
                    resolution,
                });
            }
            DifferenceClass::PlatformOnly => {
                actions.push(StatementAction {
                    platform: Some(d.platform_fen),
                    ..StatementAction::on_txn(&d.channel_txn_id, "platform_only", "carried")
                });
                items.push(NewReconciliationItem {
                    difference: d,
                    status: ReconciliationItemStatus::Carried,
                    resolution: None,
                });
            }
            class => {
                actions.push(StatementAction {
                    platform: Some(d.platform_fen),
                    channel: Some(d.channel_fen),
                    ..StatementAction::on_txn(&d.channel_txn_id, class.code(), "flagged")
                });
                items.push(NewReconciliationItem {
                    difference: d,
                    status: ReconciliationItemStatus::Open,
                    resolution: None,
                });
            }
        }
    }
    // Bookings of an earlier upload this file no longer lists (or lists as kept nothing): withdrawn
    // while nothing of them left the house, else for staff.
    let mut dropped: Vec<&(BookingVerdict, StatementBooking)> = verdicts
        .iter()
        .filter(|(txn, _)| !listed.contains_key(*txn))
        .map(|(_, v)| v)
        .collect();
    dropped.sort_by(|a, b| a.1.channel_txn_id.cmp(&b.1.channel_txn_id));
    for (verdict, booking) in dropped {
        let undone = match verdict {
            BookingVerdict::Stands => continue,
            BookingVerdict::Withdraw if act => {
                withdraw(storage, &upload, booking, &mut actions).await?
            }
            BookingVerdict::Withdraw | BookingVerdict::FlagForStaff => false,
        };
        if undone {
            withdrawn += 1;
        } else {
            superseded += 1;
            flag_superseded(booking, 0, &mut items, &mut actions);
        }
    }
    // Carried items the statement did not list either: a person must look. (Escalated ones stay
    // in the pool, so a later statement that lists them still resolves them.)
    let escalate: Vec<(NaiveDate, String)> = carried
        .iter()
        .filter(|c| c.status == ReconciliationItemStatus::Carried)
        .filter(|c| {
            !resolved_carried
                .iter()
                .any(|(day, txn)| *day == c.statement_date && *txn == c.channel_txn_id)
        })
        .map(|c| (c.statement_date, c.channel_txn_id.clone()))
        .collect();
    for (day, txn) in &escalate {
        actions.push(StatementAction {
            statement_date: Some(*day),
            ..StatementAction::on_txn(txn, "platform_only", "escalated")
        });
    }

    // 4. Refund lines confirm the refunds they name.
    let (refund_matched, refund_confirmed) = check_refund_lines(
        storage,
        clock,
        &upload,
        &refund_lines,
        &mut items,
        &mut actions,
    )
    .await?;

    let channel_net = totals
        .payment_total
        .as_fen()
        .saturating_sub(totals.reversal_total.as_fen());
    let summary = StatementSummary {
        date: upload.day,
        format: upload.format.as_str().to_owned(),
        lines: count(read.lines),
        matched: count(tally.matched + refund_matched),
        channel_only: count(tally.channel_only),
        platform_only: count(tally.platform_only),
        amount_mismatch: count(tally.amount_mismatch),
        duplicate: count(tally.duplicate),
        other_day: count(
            items
                .iter()
                .filter(|i| i.difference.class == DifferenceClass::OtherDay)
                .count(),
        ),
        refund_lines: RefundLines {
            matched: count(refund_matched),
            confirmed: count(refund_confirmed),
            unknown: count(
                items
                    .iter()
                    .filter(|i| i.difference.class == DifferenceClass::RefundUnknown)
                    .count(),
            ),
        },
        carried: CarriedItems {
            resolved: count(resolved_carried.len()),
            escalated: count(escalate.len()),
        },
        superseded: SupersededActions {
            withdrawn: count(withdrawn),
            flagged: count(superseded),
        },
        funds: StatementFunds {
            channel: ChannelFunds {
                payments: totals.payment_total.as_fen(),
                payment_count: count(totals.payment_count),
                reversals: totals.reversal_total.as_fen(),
                refunds: totals.refund_total.as_fen(),
                refund_count: count(totals.refund_count),
                net: channel_net,
            },
            platform: PlatformFunds {
                payments: tally.platform_fen,
                payment_count: count(tally.platform_payments),
            },
            matched: tally.matched_fen,
            difference: channel_net.saturating_sub(tally.platform_fen),
        },
        actions: actions.listed,
        actions_not_listed: count(actions.not_listed),
    };
    storage
        .save_reconciliation(&ReconciliationRecord {
            channel_id: upload.channel_id.to_owned(),
            day: upload.day,
            format: upload.format.as_str().to_owned(),
            file_sha256,
            lines: i64::try_from(read.lines).unwrap_or(i64::MAX),
            summary: serde_json::to_string(&summary)
                .map_err(|e| ServiceError::internal("reconciliation summary", e))?,
            items,
            resolved_carried,
            escalate,
            now,
        })
        .await?;
    Ok(summary)
}

/// Withdraws an earlier upload's booking that this file no longer supports: its refund owed and
/// the payment recorded for it are removed. `false` when something of it left the house meanwhile.
async fn withdraw(
    storage: &dyn Storage,
    upload: &StatementUpload<'_>,
    booking: &StatementBooking,
    actions: &mut ActionLog,
) -> Result<bool, ServiceError> {
    let done = storage
        .withdraw_statement_booking(upload.channel_id, &booking.payment_no)
        .await?;
    if done {
        actions.push(StatementAction {
            payment_no: Some(booking.payment_no.clone()),
            platform: Some(booking.amount_fen),
            ..StatementAction::on_txn(&booking.channel_txn_id, "channel_only", "withdrawn")
        });
    }
    Ok(done)
}

/// An earlier upload's booking this file no longer supports, after it left the house (a refund
/// handed to the channel, receipts issued): kept as it is, and a difference of its own for staff.
fn flag_superseded(
    booking: &StatementBooking,
    channel_fen: i64,
    items: &mut Vec<NewReconciliationItem>,
    actions: &mut ActionLog,
) {
    let why = if booking.receipts_issued {
        "已开具收据"
    } else if booking.refund_handed_over {
        "退费已交渠道"
    } else {
        "已由渠道冲正"
    };
    actions.push(StatementAction {
        payment_no: Some(booking.payment_no.clone()),
        platform: Some(booking.amount_fen),
        channel: Some(channel_fen),
        message: Some(format!(
            "前次上传据此长款入账（{why}），本次对账单不再支持，未自动撤销，请人工核实"
        )),
        ..StatementAction::on_txn(
            &booking.channel_txn_id,
            DifferenceClass::SupersededAction.code(),
            "flagged",
        )
    });
    items.push(NewReconciliationItem {
        difference: Difference {
            channel_txn_id: booking.channel_txn_id.clone(),
            class: DifferenceClass::SupersededAction,
            platform_fen: booking.amount_fen,
            channel_fen,
            payment_no: Some(booking.payment_no.clone()),
            region: booking.region.clone(),
        },
        status: ReconciliationItemStatus::Open,
        resolution: None,
    });
}

/// Money the channel took and never reported: applied to the order it was taken for when the
/// channel's policy is `apply` and its order (the transaction id as the channel's order number) is
/// found; owed back otherwise, so it never waits on a person with nowhere to go. Both go through the payment path, keyed by the transaction id, so a
/// re-upload finds what the first upload did instead of doing it twice.
async fn act_on_channel_only(
    storage: &dyn Storage,
    clock: &Clock,
    upload: &StatementUpload<'_>,
    policy: &str,
    d: &Difference,
) -> Result<(ReconciliationItemStatus, Option<String>, StatementAction), ServiceError> {
    if d.channel_fen <= 0 {
        // More reversed than paid: nothing held to act on, a person must look.
        return Ok((
            ReconciliationItemStatus::Open,
            None,
            StatementAction {
                channel: Some(d.channel_fen),
                ..StatementAction::on_txn(&d.channel_txn_id, "channel_only", "flagged")
            },
        ));
    }
    let order = if policy == "apply" {
        storage
            .find_order(upload.channel_id, &d.channel_txn_id)
            .await?
            .map(|(order, _)| order)
    } else {
        None
    };
    let views = match &order {
        Some(o) => storage.payables_by_id(&o.payable_ids).await?,
        None => Vec::new(),
    };
    let region = views.first().map(|v| v.payable.region);
    let payable_ids = order
        .as_ref()
        .map(|o| o.payable_ids.clone())
        .unwrap_or_default();
    // When cover starts, as a channel's own report would have recorded it on the day paid.
    let policies = super::cover::policies_of(storage, &views).await?;
    let cover =
        super::cover::cover_notes(storage, &views, &policies, &payable_ids, upload.day).await?;
    // The payment's region is known before it is written: its order's, else the channel's first.
    let payment_region = match region {
        Some(r) => r,
        None => {
            let first = storage
                .get_channel(upload.channel_id)
                .await?
                .and_then(|c| c.regions.into_iter().next());
            // Registration refuses a channel without a region or with a malformed one.
            let first = first.ok_or_else(|| {
                ServiceError::internal("statement line", "the channel has no region")
            })?;
            RegionCode::parse(&first).map_err(|e| ServiceError::internal("channel region", e))?
        }
    };
    let payment = NewPayment {
        nonce: None,
        payment_no: super::new_regional_id("PM", payment_region.as_str()),
        refund_no: super::new_regional_id("RF", payment_region.as_str()),
        region: payment_region,
        channel_id: upload.channel_id.to_owned(),
        channel_txn_id: d.channel_txn_id.clone(),
        order_no: order.as_ref().map(|o| o.order_no.clone()),
        lock_holder: None,
        refund_all: if order.is_some() {
            None
        } else {
            Some(yibao_domain::settlement::RefundReason::ChannelOnly)
        },
        check_codes: payable_ids
            .iter()
            .map(|_| super::new_check_code())
            .collect(),
        event_ids: payable_ids
            .iter()
            .map(|_| super::new_regional_id("EV", payment_region.as_str()))
            .collect(),
        payable_ids,
        cover,
        amount_fen: Fen::new_non_negative(d.channel_fen)?,
        paid_at: format!("{}T00:00:00+08:00", upload.day),
        paid_on: upload.day,
        fingerprint: format!("statement:{}:{}", upload.day, d.channel_fen),
        refund_due: refund_due(
            storage,
            region.as_ref().map(RegionCode::as_str),
            clock.today(),
        )
        .await?,
        issued_on: clock.today(),
        now: clock.now().timestamp(),
    };
    let outcome = storage.report_payment(&payment).await?;
    let stored = match outcome {
        PaymentReportOutcome::Stored(o) | PaymentReportOutcome::Existing { outcome: o, .. } => o,
        PaymentReportOutcome::ReversedEarlier => {
            return Ok((
                ReconciliationItemStatus::Open,
                None,
                StatementAction {
                    message: Some("渠道已冲正该笔交易却仍列入对账单，请核实".to_owned()),
                    ..StatementAction::on_txn(&d.channel_txn_id, "channel_only", "flagged")
                },
            ))
        }
        // A booking carries no nonce.
        PaymentReportOutcome::NonceUsed => {
            return Err(ServiceError::internal(
                "statement booking",
                "a booking without a nonce was refused as a replay",
            ))
        }
    };
    let (resolution, act) = match &stored.refund {
        Some(r) if stored.receipts.is_empty() => {
            (format!("refund_owed:{}", r.refund_no), "refund_owed")
        }
        Some(r) => (
            format!("applied_part:{}:{}", stored.payment_no, r.refund_no),
            "applied",
        ),
        None => (format!("applied:{}", stored.payment_no), "applied"),
    };
    Ok((
        ReconciliationItemStatus::Resolved,
        Some(resolution.clone()),
        StatementAction {
            payment_no: Some(stored.payment_no.clone()),
            refund_no: stored.refund.as_ref().map(|r| r.refund_no.clone()),
            channel: Some(d.channel_fen),
            ..StatementAction::on_txn(&d.channel_txn_id, "channel_only", act)
        },
    ))
}

/// A refund line matches a refund yibao owes through this channel with the same amount; one still
/// owed or sent is thereby confirmed. Anything else is a `refund_unknown` difference.
async fn check_refund_lines(
    storage: &dyn Storage,
    clock: &Clock,
    upload: &StatementUpload<'_>,
    lines: &[RefundLine],
    items: &mut Vec<NewReconciliationItem>,
    actions: &mut ActionLog,
) -> Result<(u64, u64), ServiceError> {
    let nos: Vec<String> = lines.iter().map(|l| l.refund_no.clone()).collect();
    let known: HashMap<String, yibao_storage::settlement::RefundLookup> = storage
        .refunds_by_no(upload.channel_id, &nos)
        .await?
        .into_iter()
        .map(|r| (r.refund_no.clone(), r))
        .collect();
    let (mut matched, mut confirmed) = (0u64, 0u64);
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for line in lines {
        let times = seen.entry(line.refund_no.as_str()).or_insert(0);
        *times += 1;
        let refund = known.get(&line.refund_no);
        let fine = refund.is_some_and(|r| {
            r.amount_fen == line.amount_fen && r.status != RefundStatus::Cancelled
        }) && *times == 1;
        if !fine {
            // One difference per line: the refund number, and the row when it repeats.
            let key = if *times == 1 && !line.refund_no.is_empty() {
                format!("refund:{}", line.refund_no)
            } else {
                format!("refund:{}@{}", line.refund_no, line.row)
            };
            actions.push(StatementAction {
                channel: Some(line.amount_fen),
                ..StatementAction::on_refund(&line.refund_no, "refund_unknown", "flagged")
            });
            items.push(NewReconciliationItem {
                difference: Difference {
                    channel_txn_id: key,
                    class: DifferenceClass::RefundUnknown,
                    platform_fen: refund.map_or(0, |r| r.amount_fen),
                    channel_fen: line.amount_fen,
                    payment_no: None,
                    region: None,
                },
                status: ReconciliationItemStatus::Open,
                resolution: None,
            });
            continue;
        }
        matched += 1;
        if let Some(r) = refund.filter(|r| r.status != RefundStatus::Succeeded) {
            let outcome = storage
                .refund_result(
                    upload.channel_id,
                    &r.refund_no,
                    true,
                    &format!("statement-{}", upload.day),
                    None,
                    clock.today(),
                )
                .await?;
            if let RefundResultOutcome::Done(_) = outcome {
                confirmed += 1;
                actions.push(StatementAction::on_refund(
                    &r.refund_no,
                    "refund",
                    "confirmed_by_statement",
                ));
            }
        }
    }
    Ok((matched, confirmed))
}

// What staff do through the settlement API and the console: statements uploaded, the
// channel-only policy, differences resolved and reported, each within the staff member's scope
// ([`crate::services::settlement_scope`]) and audited.

/// The format a staff upload names: `protocol` (the default), `wechat` or `alipay`.
fn statement_format(name: Option<&str>) -> Result<StatementFormat, ServiceError> {
    match name.unwrap_or("protocol") {
        "protocol" => Ok(StatementFormat::Protocol),
        "wechat" => Ok(StatementFormat::WechatTradeBill),
        "alipay" => Ok(StatementFormat::AlipayBill),
        _ => Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "format 应为 protocol、wechat 或 alipay",
        )),
    }
}

/// Reconciles a channel's statement of `date` (`YYYY-MM-DD`) uploaded by a staff member
/// ([`reconcile`]; uploading again replaces), audited `statement.upload`. The statement of a
/// channel serving several regions is the administrator's to upload.
pub async fn upload_statement(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    date: &str,
    format: Option<&str>,
    bytes: &[u8],
) -> Result<StatementSummary, ServiceError> {
    let scope = staff.collection_write_scope()?;
    // A channel serving several regions sends one statement for all of them: its funds are settled
    // whole, and its 长款 belong to no region until acted on. A tax office reconciles what it
    // collects; the statement of a shared channel is the administrator's (the center that holds
    // the channel's contract), not one region's collector's, who would see and act on the others.
    if let ChannelView::Region(own) = channel_view(state, &scope, channel_id).await? {
        let regions = state
            .storage
            .get_channel(channel_id)
            .await?
            .map(|c| c.regions.join("、"))
            .unwrap_or_default();
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            format!(
                "渠道 {channel_id} 同时服务多个统筹区（{regions}），其对账单涉及各统筹区的缴费和尚无归属的长款，                 须由系统管理员上传对账；统筹区 {own} 的税务征收人员可查看和处理本统筹区的对账差异"
            ),
        ));
    }
    let format = statement_format(format)?;
    let day = date_of(date)?;
    let summary = reconcile(
        state.storage.as_ref(),
        &state.clock,
        StatementUpload {
            channel_id,
            day,
            format,
            bytes,
        },
    )
    .await?;
    audit(
        state,
        staff,
        "statement.upload",
        None,
        &format!("{channel_id}/{day}"),
        serde_json::json!({"format": format.as_str(), "lines": summary.lines, "superseded": summary.superseded}),
    )
    .await?;
    Ok(summary)
}

/// Sets what becomes of a channel's unreported money (长款): `refund` or `apply`. The
/// administrator's; audited `channel.channel_only_policy`.
pub async fn set_channel_only_policy(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    policy: &str,
) -> Result<ChannelOnlyPolicyAnswer, ServiceError> {
    staff.require_admin()?;
    if !matches!(policy, "refund" | "apply") {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "policy 应为 refund 或 apply",
        ));
    }
    if !state
        .storage
        .set_channel_only_policy(channel_id, policy)
        .await?
    {
        return Err(ServiceError::new(ErrorCode::NotFound, "未找到该渠道"));
    }
    audit(
        state,
        staff,
        "channel.channel_only_policy",
        None,
        channel_id,
        serde_json::json!({"policy": policy}),
    )
    .await?;
    Ok(ChannelOnlyPolicyAnswer {
        channel_id: channel_id.to_owned(),
        policy: policy.to_owned(),
    })
}

#[derive(Deserialize, ToSchema)]
pub struct ResolveRequest {
    pub channel_id: String,
    pub statement_date: String,
    pub channel_txn_id: String,
    pub class: String,
    /// What was done, e.g. `refunded_by_channel`, `applied_by_staff`, `channel_corrected`.
    pub resolution: String,
    pub note: String,
}

/// Closes a difference by hand, saying what was done, for a staff member who works on its
/// channel (their own region's items of a shared channel), audited `reconciliation.resolve`.
pub async fn resolve_difference(
    state: &AppState,
    staff: &Staff,
    req: &ResolveRequest,
) -> Result<ResolutionAnswer, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let view = channel_view(state, &scope, &req.channel_id).await?;
    let day = date_of(&req.statement_date)?;
    if req.resolution.trim().is_empty()
        || req.resolution.chars().count() > 64
        || req.note.chars().count() > 500
    {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "请填写处理结果（64 字以内）和说明（500 字以内）",
        ));
    }
    let done = state
        .storage
        .resolve_reconciliation_item(
            &req.channel_id,
            view.region(),
            day,
            &req.channel_txn_id,
            &req.class,
            req.resolution.trim(),
            &req.note,
            staff.username(),
            state.clock.now().timestamp(),
        )
        .await?;
    if !done {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "未找到该未处理的对账差异",
        ));
    }
    audit(
        state,
        staff,
        "reconciliation.resolve",
        None,
        &format!("{}/{}/{}", req.channel_id, day, req.channel_txn_id),
        serde_json::json!({"class": req.class, "resolution": req.resolution}),
    )
    .await?;
    Ok(ResolutionAnswer { resolved: true })
}

/// A reconciliation report and the period it covers.
#[derive(Debug)]
pub struct ReconciliationFindings {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub report: ReconciliationReport,
}

/// The statements reconciled in the period asked for and the differences found, as the staff
/// member may see them: a tax collector names a channel serving their region, sees their region's
/// differences only, and no summary of a channel shared with other regions.
pub async fn reconciliation_report(
    state: &AppState,
    staff: &Staff,
    query: &PeriodQuery,
) -> Result<ReconciliationFindings, ServiceError> {
    let view = channel_filter(state, staff, query.channel_id.as_deref()).await?;
    let (from, to) = query.period(state.clock.today())?;
    let statements = state
        .storage
        .statements(query.channel_id.as_deref(), from, to, MAX_LIST_ROWS)
        .await?;
    let differences = state
        .storage
        .reconciliation_items_of_region(
            query.channel_id.as_deref(),
            view.region(),
            from,
            to,
            query.unresolved,
            MAX_LIST_ROWS,
        )
        .await?;
    // A shared channel's summary counts and sums every region's payments: the administrator's
    // alone.
    let statements: Vec<ReconciledStatement> = statements
        .iter()
        .map(|s| ReconciledStatement::of(s, matches!(view, ChannelView::Whole)))
        .collect();
    Ok(ReconciliationFindings {
        from,
        to,
        report: ReconciliationReport {
            statements,
            differences,
        },
    })
}
