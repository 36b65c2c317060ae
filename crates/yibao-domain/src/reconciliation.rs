//! Reconciliation (对账): matching a channel's daily statement against the payments yibao
//! recorded, one transaction at a time, in a single ordered pass.
//!
//! The statement's lines are folded per transaction into a [`ChannelSide`], sorted by id; the
//! platform's payments of the day arrive in the same order (by `channel_txn_id`), so
//! [`Matcher`] walks both like a merge join and never holds the platform side in memory. That is
//! how a statement of a million lines reconciles in seconds, in about 45 bytes a line besides the file.
//!
//! The classes (see the glossary):
//! - matched: the channel's net amount for the transaction equals what yibao expects (the payment's
//!   amount, or nothing once it was reversed);
//! - channel-only (长款/单边账): money the channel took that yibao never heard of;
//! - platform-only (短款): a payment yibao recorded that is missing from the statement;
//! - amount mismatch: both know it, with different amounts;
//! - duplicate: the statement lists the same payment more than once.
//!
//! A statement may be uploaded again for the same day (a corrected file, or the same file twice).
//! What an earlier upload did with a channel-only line (a payment booked from the statement, owed
//! back or applied) is a [`StatementBooking`]; [`booking_verdict`] says whether the new upload still
//! supports it, and what becomes of it if not.

use std::cmp::Ordering;

/// The kind of a statement line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementLineKind {
    Payment,
    Reversal,
    Refund,
}

/// The most bytes of transaction ids one statement may hold: ids are kept in one buffer and
/// found by 32-bit offsets. A statement is capped far below this (256 MiB, the server's limit).
pub const MAX_STATEMENT_ID_BYTES: usize = u32::MAX as usize;

/// The statement's ids would need more than [`MAX_STATEMENT_ID_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementTooLarge;

/// What the statement says of one transaction, its id kept as a span of
/// [`StatementLines`]'s buffer: 32 bytes a line, where an owned `String` would cost 56 and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    id_start: u32,
    id_len: u32,
    payment_lines: u32,
    paid_fen: i64,
    reversed_fen: i64,
}

impl Totals {
    /// What the channel kept for the transaction: payments less reversals.
    fn net_fen(&self) -> i64 {
        self.paid_fen.saturating_sub(self.reversed_fen)
    }

    fn id<'a>(&self, ids: &'a str) -> &'a str {
        let start = self.id_start as usize;
        ids.get(start..start + self.id_len as usize).unwrap_or("")
    }
}

/// A statement's payment and reversal lines as they are read, before [`StatementLines::fold`].
/// Refund lines are matched separately, by refund number, and left out. A million lines take
/// about 32 MB here plus their ids' bytes, and folding works in place (issue 14: a
/// 1 000 000-line statement reconciled in under 150 MB).
#[derive(Debug, Default)]
pub struct StatementLines {
    ids: String,
    lines: Vec<Totals>,
}

impl StatementLines {
    /// Room for `lines` lines whose ids take about `id_bytes` bytes (a hint; both grow).
    pub fn with_capacity(lines: usize, id_bytes: usize) -> StatementLines {
        StatementLines {
            ids: String::with_capacity(id_bytes.min(MAX_STATEMENT_ID_BYTES)),
            lines: Vec::with_capacity(lines),
        }
    }

    /// One line; amounts are positive fen. A refund line is ignored.
    pub fn push(
        &mut self,
        channel_txn_id: &str,
        kind: StatementLineKind,
        amount_fen: i64,
    ) -> Result<(), StatementTooLarge> {
        let (payment_lines, paid_fen, reversed_fen) = match kind {
            StatementLineKind::Payment => (1, amount_fen, 0),
            StatementLineKind::Reversal => (0, 0, amount_fen),
            StatementLineKind::Refund => return Ok(()),
        };
        let id_start = u32::try_from(self.ids.len()).map_err(|_| StatementTooLarge)?;
        let id_len = u32::try_from(channel_txn_id.len()).map_err(|_| StatementTooLarge)?;
        if id_start.checked_add(id_len).is_none() {
            return Err(StatementTooLarge);
        }
        self.ids.push_str(channel_txn_id);
        self.lines.push(Totals {
            id_start,
            id_len,
            payment_lines,
            paid_fen,
            reversed_fen,
        });
        Ok(())
    }

    /// Lines pushed so far (refund lines not counted).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Folds the lines per transaction, sorted by transaction id, in place. Amounts are bounded
    /// by the statement's line limit times the largest amount, far inside `i64`; the sums
    /// saturate rather than wrap all the same.
    pub fn fold(self) -> ChannelSide {
        let StatementLines { ids, mut lines } = self;
        lines.sort_unstable_by(|a, b| a.id(&ids).cmp(b.id(&ids)));
        lines.dedup_by(|next, kept| {
            if next.id(&ids) != kept.id(&ids) {
                return false;
            }
            kept.payment_lines = kept.payment_lines.saturating_add(next.payment_lines);
            kept.paid_fen = kept.paid_fen.saturating_add(next.paid_fen);
            kept.reversed_fen = kept.reversed_fen.saturating_add(next.reversed_fen);
            true
        });
        ChannelSide {
            ids,
            transactions: lines,
        }
    }
}

/// Everything the statement says, one entry per transaction, sorted by transaction id: what
/// [`Matcher`] walks.
#[derive(Debug, Default)]
pub struct ChannelSide {
    ids: String,
    transactions: Vec<Totals>,
}

impl ChannelSide {
    /// Transactions on the statement.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The transactions in order: id, net fen (payments less reversals), payment lines.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64, u32)> + '_ {
        self.transactions
            .iter()
            .map(|t| (t.id(&self.ids), t.net_fen(), t.payment_lines))
    }
}

/// A payment yibao recorded for the day, as the matcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformPayment {
    pub channel_txn_id: String,
    pub payment_no: String,
    pub amount_fen: i64,
    pub reversed: bool,
    pub region: Option<String>,
}

impl PlatformPayment {
    /// What the channel should have kept: the amount, or nothing once reversed.
    pub fn expected_fen(&self) -> i64 {
        if self.reversed {
            0
        } else {
            self.amount_fen
        }
    }
}

/// A difference found, with both sides' amounts in fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub channel_txn_id: String,
    pub class: DifferenceClass,
    pub platform_fen: i64,
    pub channel_fen: i64,
    pub payment_no: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DifferenceClass {
    /// 长款/单边账: the channel took money yibao never heard of.
    ChannelOnly,
    /// 短款: yibao recorded a payment the statement does not list.
    PlatformOnly,
    AmountMismatch,
    /// The statement lists the payment more than once.
    Duplicate,
    /// A refund line whose refund number yibao does not know or whose amount differs.
    RefundUnknown,
    /// A channel-only line whose transaction yibao recorded on another day: informational.
    OtherDay,
    /// What an earlier upload of the day did with a channel-only line (a refund handed to the
    /// channel, or receipts issued) that a re-upload no longer supports: for staff.
    SupersededAction,
}

impl DifferenceClass {
    pub fn code(self) -> &'static str {
        match self {
            DifferenceClass::ChannelOnly => "channel_only",
            DifferenceClass::PlatformOnly => "platform_only",
            DifferenceClass::AmountMismatch => "amount_mismatch",
            DifferenceClass::Duplicate => "duplicate",
            DifferenceClass::RefundUnknown => "refund_unknown",
            DifferenceClass::OtherDay => "other_day",
            DifferenceClass::SupersededAction => "superseded_action",
        }
    }

    pub fn from_code(code: &str) -> Option<DifferenceClass> {
        Some(match code {
            "channel_only" => DifferenceClass::ChannelOnly,
            "platform_only" => DifferenceClass::PlatformOnly,
            "amount_mismatch" => DifferenceClass::AmountMismatch,
            "duplicate" => DifferenceClass::Duplicate,
            "refund_unknown" => DifferenceClass::RefundUnknown,
            "other_day" => DifferenceClass::OtherDay,
            "superseded_action" => DifferenceClass::SupersededAction,
            _ => return None,
        })
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            DifferenceClass::ChannelOnly => "长款（渠道有、平台无）",
            DifferenceClass::PlatformOnly => "短款（平台有、渠道无）",
            DifferenceClass::AmountMismatch => "金额不符",
            DifferenceClass::Duplicate => "重复记录",
            DifferenceClass::RefundUnknown => "退费记录不符",
            DifferenceClass::OtherDay => "跨日交易",
            DifferenceClass::SupersededAction => "重传后不再成立的长款处理",
        }
    }
}

/// A payment an earlier upload of the same day booked from a channel-only line (长款), with what
/// has left the house since: the refund handed to the channel, or receipts issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementBooking {
    pub channel_txn_id: String,
    pub payment_no: String,
    pub amount_fen: i64,
    pub region: Option<String>,
    /// The channel reversed it since (the money went back by the reversal).
    pub reversed: bool,
    /// Receipts were issued for it (policy `apply`): a proof of payment in the payer's name exists,
    /// reachable through every channel's receipt search and public verification.
    pub receipts_issued: bool,
    /// A refund of it was handed to the channel (sent, failed or succeeded).
    pub refund_handed_over: bool,
}

/// What a re-upload does with an earlier upload's booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingVerdict {
    /// The statement still lists the line with the same amount (or the channel reversed it, and
    /// nothing is outstanding): the booking stands as it is.
    Stands,
    /// Not supported any more and nothing of it has left the house: the refund owed and the
    /// payment recorded for it are removed.
    Withdraw,
    /// Not supported any more, but the refund was handed to the channel or receipts were issued:
    /// left as it is, a [`DifferenceClass::SupersededAction`] for staff.
    FlagForStaff,
}

/// `listed_fen`: what the new statement's channel-only line for the transaction nets to, `None`
/// when it no longer lists it (or the channel kept nothing).
pub fn booking_verdict(booking: &StatementBooking, listed_fen: Option<i64>) -> BookingVerdict {
    if listed_fen == Some(booking.amount_fen) {
        return BookingVerdict::Stands;
    }
    if booking.reversed && listed_fen.is_none() {
        return BookingVerdict::Stands;
    }
    if booking.reversed || booking.receipts_issued || booking.refund_handed_over {
        BookingVerdict::FlagForStaff
    } else {
        BookingVerdict::Withdraw
    }
}

/// Counts and funds per class, for the day's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub matched: u64,
    pub matched_fen: i64,
    pub channel_only: u64,
    pub platform_only: u64,
    pub amount_mismatch: u64,
    pub duplicate: u64,
    pub platform_payments: u64,
    pub platform_fen: i64,
}

/// The merge join. Feed it the platform's payments in `channel_txn_id` order with
/// [`Matcher::platform`], then call [`Matcher::finish`]; differences go to the callback as they
/// are found.
pub struct Matcher {
    channel: ChannelSide,
    next: usize,
    last_platform: Option<String>,
    pub tally: Tally,
}

impl Matcher {
    /// `channel` comes from [`StatementLines::fold`]: sorted, one entry per transaction.
    pub fn new(channel: ChannelSide) -> Matcher {
        debug_assert!(channel
            .transactions
            .windows(2)
            .all(|w| w[0].id(&channel.ids) < w[1].id(&channel.ids)));
        Matcher {
            channel,
            next: 0,
            last_platform: None,
            tally: Tally::default(),
        }
    }

    /// One platform payment; they must arrive in strictly increasing `channel_txn_id` order.
    pub fn platform(&mut self, payment: PlatformPayment, out: &mut impl FnMut(Difference)) {
        assert!(
            self.last_platform
                .as_ref()
                .is_none_or(|last| *last < payment.channel_txn_id),
            "platform payments must arrive sorted by channel_txn_id, without repeats"
        );
        self.tally.platform_payments += 1;
        self.tally.platform_fen = self
            .tally
            .platform_fen
            .saturating_add(payment.expected_fen());
        // Channel entries before this one have no platform payment today.
        while let Some(&entry) = self.channel.transactions.get(self.next) {
            if entry
                .id(&self.channel.ids)
                .cmp(payment.channel_txn_id.as_str())
                != Ordering::Less
            {
                break;
            }
            self.next += 1;
            self.channel_only(entry, out);
        }
        let expected = payment.expected_fen();
        let found = self
            .channel
            .transactions
            .get(self.next)
            .filter(|e| e.id(&self.channel.ids) == payment.channel_txn_id)
            .copied();
        match found {
            Some(entry) => {
                self.next += 1;
                if entry.payment_lines > 1 {
                    self.tally.duplicate += 1;
                    out(self.difference(&payment, DifferenceClass::Duplicate, entry.net_fen()));
                } else if entry.net_fen() == expected {
                    self.tally.matched += 1;
                    self.tally.matched_fen = self.tally.matched_fen.saturating_add(expected);
                } else {
                    self.tally.amount_mismatch += 1;
                    out(self.difference(
                        &payment,
                        DifferenceClass::AmountMismatch,
                        entry.net_fen(),
                    ));
                }
            }
            // A reversed payment the channel does not list: nothing was kept, nothing to match.
            None if expected == 0 => self.tally.matched += 1,
            None => {
                self.tally.platform_only += 1;
                out(self.difference(&payment, DifferenceClass::PlatformOnly, 0));
            }
        }
        self.last_platform = Some(payment.channel_txn_id);
    }

    /// Every channel entry left has no platform payment today.
    pub fn finish(mut self, out: &mut impl FnMut(Difference)) -> Tally {
        while let Some(&entry) = self.channel.transactions.get(self.next) {
            self.next += 1;
            self.channel_only(entry, out);
        }
        self.tally
    }

    fn channel_only(&mut self, entry: Totals, out: &mut impl FnMut(Difference)) {
        // A payment and its reversal both on the statement: the channel kept nothing.
        if entry.net_fen() == 0 {
            self.tally.matched += 1;
            return;
        }
        self.tally.channel_only += 1;
        out(Difference {
            channel_fen: entry.net_fen(),
            channel_txn_id: entry.id(&self.channel.ids).to_owned(),
            class: DifferenceClass::ChannelOnly,
            platform_fen: 0,
            payment_no: None,
            region: None,
        });
    }

    fn difference(
        &self,
        p: &PlatformPayment,
        class: DifferenceClass,
        channel_fen: i64,
    ) -> Difference {
        Difference {
            channel_txn_id: p.channel_txn_id.clone(),
            class,
            platform_fen: p.expected_fen(),
            channel_fen,
            payment_no: Some(p.payment_no.clone()),
            region: p.region.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(txn: &str, kind: StatementLineKind, amount: i64) -> (&str, StatementLineKind, i64) {
        (txn, kind, amount)
    }

    fn fold(lines: Vec<(&str, StatementLineKind, i64)>) -> ChannelSide {
        let mut statement = StatementLines::default();
        for (txn, kind, amount) in lines {
            statement.push(txn, kind, amount).unwrap();
        }
        statement.fold()
    }

    fn paid(txn: &str, amount: i64, reversed: bool) -> PlatformPayment {
        PlatformPayment {
            channel_txn_id: txn.to_owned(),
            payment_no: format!("P-{txn}"),
            amount_fen: amount,
            reversed,
            region: Some("320600".to_owned()),
        }
    }

    fn run(
        lines: Vec<(&str, StatementLineKind, i64)>,
        platform: Vec<PlatformPayment>,
    ) -> (Tally, Vec<Difference>) {
        let mut diffs = Vec::new();
        let mut m = Matcher::new(fold(lines));
        for p in platform {
            m.platform(p, &mut |d| diffs.push(d));
        }
        let tally = m.finish(&mut |d| diffs.push(d));
        (tally, diffs)
    }

    #[test]
    fn every_class_is_found_once() {
        use StatementLineKind::*;
        let (tally, diffs) = run(
            vec![
                line("T5", Payment, 100),
                line("T1", Payment, 43000),
                line("T2", Payment, 43000),
                line("T2", Payment, 43000),
                line("T3", Payment, 42000),
                line("T6", Payment, 500),
                line("T6", Reversal, 500),
                line("T7", Payment, 700),
                line("T7", Reversal, 700),
                line("T0", Refund, 999),
            ],
            vec![
                paid("T1", 43000, false),
                paid("T2", 43000, false),
                paid("T3", 43000, false),
                paid("T4", 43000, false),
                paid("T7", 700, true),
                paid("T8", 800, true),
            ],
        );
        let classes: Vec<(&str, DifferenceClass, i64, i64)> = diffs
            .iter()
            .map(|d| {
                (
                    d.channel_txn_id.as_str(),
                    d.class,
                    d.platform_fen,
                    d.channel_fen,
                )
            })
            .collect();
        assert_eq!(
            classes,
            vec![
                ("T2", DifferenceClass::Duplicate, 43000, 86000),
                ("T3", DifferenceClass::AmountMismatch, 43000, 42000),
                ("T4", DifferenceClass::PlatformOnly, 43000, 0),
                ("T5", DifferenceClass::ChannelOnly, 0, 100),
            ]
        );
        // T1; T6 paid and reversed on the channel only; T7 reversed on both; T8 reversed and not listed.
        assert_eq!(tally.matched, 4);
        assert_eq!(tally.matched_fen, 43000);
        assert_eq!(
            (
                tally.channel_only,
                tally.platform_only,
                tally.amount_mismatch,
                tally.duplicate
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(tally.platform_payments, 6);
    }

    #[test]
    fn lines_fold_per_transaction_in_id_order() {
        use StatementLineKind::*;
        let side = fold(vec![
            line("T9", Payment, 100),
            line("T10", Payment, 200),
            line("T9", Reversal, 100),
            line("T10", Payment, 200),
            line("T1", Refund, 50),
            line("", Payment, 1),
        ]);
        assert_eq!(
            side.iter().collect::<Vec<_>>(),
            vec![("", 1, 1), ("T10", 400, 2), ("T9", 0, 1)],
            "byte order, refunds left out, payments summed and reversals netted"
        );
        assert_eq!(side.len(), 3);
    }

    #[test]
    fn an_empty_statement_leaves_every_payment_platform_only() {
        let (tally, diffs) = run(vec![], vec![paid("A", 1, false), paid("B", 2, false)]);
        assert_eq!(tally.platform_only, 2);
        assert_eq!(diffs.len(), 2);
    }

    #[test]
    #[should_panic(expected = "sorted")]
    fn platform_payments_out_of_order_are_a_bug() {
        run(vec![], vec![paid("B", 1, false), paid("A", 1, false)]);
    }

    fn booked(receipts_issued: bool, refund_handed_over: bool, reversed: bool) -> StatementBooking {
        StatementBooking {
            channel_txn_id: "X".into(),
            payment_no: "PM-X".into(),
            amount_fen: 500,
            region: None,
            reversed,
            receipts_issued,
            refund_handed_over,
        }
    }

    #[test]
    fn a_re_upload_keeps_withdraws_or_flags_what_the_earlier_one_booked() {
        use BookingVerdict::*;
        let owed = booked(false, false, false);
        assert_eq!(
            booking_verdict(&owed, Some(500)),
            Stands,
            "the same line again"
        );
        assert_eq!(
            booking_verdict(&owed, None),
            Withdraw,
            "dropped, refund not handed over"
        );
        assert_eq!(
            booking_verdict(&owed, Some(400)),
            Withdraw,
            "another amount"
        );
        assert_eq!(
            booking_verdict(&booked(false, true, false), None),
            FlagForStaff
        );
        assert_eq!(
            booking_verdict(&booked(true, false, false), None),
            FlagForStaff,
            "receipts issued"
        );
        assert_eq!(
            booking_verdict(&booked(true, false, false), Some(500)),
            Stands
        );
        assert_eq!(
            booking_verdict(&booked(false, false, true), None),
            Stands,
            "reversed: nothing outstanding"
        );
        assert_eq!(
            booking_verdict(&booked(false, false, true), Some(400)),
            FlagForStaff
        );
    }
}
