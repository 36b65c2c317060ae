//! What a payment report (缴费结果通知) does with the money: which of the payables it names are
//! paid by it, what is owed back and why, and the answer the channel gets.
//!
//! Storage reads the named payables under lock, asks [`decide_payment`], and writes what it
//! decided: the payables paid, their receipts and postings, the refund owed. The rules:
//!
//! - A reversal (冲正) that came first with the funds returned withdraws the report: nothing is
//!   stored. With the funds still held, everything is owed back (`REVERSED_EARLIER`).
//! - A payment naming no payable, an unknown one, one twice, or one of another region is owed
//!   back whole (`NOT_PAYABLE`); one whose amount is not the sum of its payables, too
//!   (`AMOUNT_MISMATCH`). The caller may owe back everything under its own reason (a channel-only
//!   statement line, `CHANNEL_ONLY`).
//! - Otherwise each payable still payable for this payment is paid: unpaid, or locked by this
//!   payment's own holder (its order or debit run), or locked by a hold that has expired. Each
//!   one that is not is owed back: `ALREADY_PAID` when it was paid, else `NOT_PAYABLE`.
//! - Money is never lost: what was paid is exactly what is applied plus what is owed back.

use crate::lifecycle::{PayableEvent, PayableStatus};
use crate::money::Fen;
use crate::settlement::RefundReason;
use crate::PaymentStatus;

/// A payable the report names, as storage found it under lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayableAtReport<'a> {
    pub payable_id: &'a str,
    pub amount: Fen,
    pub status: PayableStatus,
    /// Who holds it when `Locked`: an order number or `debit:<run_no>`.
    pub locked_by: Option<&'a str>,
    /// When the hold lapses (Unix seconds).
    pub locked_until: Option<i64>,
}

/// A reversal recorded before the report it reverses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlierReversal {
    /// The channel gave the money back to the payer itself.
    pub funds_returned: bool,
}

/// A payment report, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReport<'a> {
    /// The payables the channel named (or its order's), in its order.
    pub payable_ids: &'a [String],
    /// What the channel took from the payer.
    pub amount: Fen,
    /// Owe everything back under this reason instead of applying it.
    pub refund_all: Option<RefundReason>,
    pub earlier_reversal: Option<EarlierReversal>,
    /// Who may take payables locked for this payment: its order or debit run (empty for none).
    pub holder: &'a str,
    /// Unix seconds: holds that lapsed by now hold nothing.
    pub now: i64,
}

/// Money owed back to the payer through the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwedBack {
    pub amount: Fen,
    pub reason: RefundReason,
}

/// What a report does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentDecision {
    /// A reversal with the funds returned came first: store nothing.
    Withdrawn,
    Stored(PaymentApplication),
}

/// The payables a report pays, what it owes back, and the status it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentApplication {
    /// Indexes into [`PaymentReport::payable_ids`] of the payables paid, in the channel's order.
    pub applied: Vec<usize>,
    pub owed_back: Option<OwedBack>,
    /// `Paid`, `PartiallyRefunded` or `RefundPending`.
    pub status: PaymentStatus,
}

/// Decides a payment report. `found` is every payable of the report's region among those it
/// names, in any order; payables it does not name are ignored.
pub fn decide_payment(
    report: &PaymentReport<'_>,
    found: &[PayableAtReport<'_>],
) -> PaymentDecision {
    let mut reason = report.refund_all;
    if let Some(reversal) = report.earlier_reversal {
        if reversal.funds_returned {
            return PaymentDecision::Withdrawn;
        }
        reason = reason.or(Some(RefundReason::ReversedEarlier));
    }
    let named: Vec<Option<&PayableAtReport<'_>>> = report
        .payable_ids
        .iter()
        .map(|id| found.iter().find(|p| p.payable_id == id))
        .collect();
    let named_twice = report
        .payable_ids
        .iter()
        .enumerate()
        .any(|(i, id)| report.payable_ids[..i].contains(id));
    if reason.is_none() && (named.is_empty() || named_twice || named.iter().any(Option::is_none)) {
        reason = Some(RefundReason::NotPayable);
    }
    // i128: a sum of any number of amounts, each within `MAX_ABS_FEN`, cannot overflow it.
    let total: i128 = named
        .iter()
        .flatten()
        .map(|p| i128::from(p.amount.as_fen()))
        .sum();
    if reason.is_none() && total != i128::from(report.amount.as_fen()) {
        reason = Some(RefundReason::AmountMismatch);
    }
    let mut applied = Vec::new();
    let mut applied_fen: i64 = 0;
    if reason.is_none() {
        for (i, payable) in named.iter().enumerate() {
            let Some(payable) = payable else { continue };
            if payable_by(payable, report.holder, report.now) {
                applied.push(i);
                // At most the report's amount, which the sum of all named equals.
                applied_fen += payable.amount.as_fen();
            } else if reason.is_none() {
                // The first payable refused names the reason for all that is owed back.
                reason = Some(match payable.status {
                    PayableStatus::Paid | PayableStatus::Posted => RefundReason::AlreadyPaid,
                    _ => RefundReason::NotPayable,
                });
            }
        }
    }
    let owed_fen = report.amount.as_fen() - applied_fen;
    debug_assert!(owed_fen >= 0, "applied more than was paid");
    let owed_back = (owed_fen > 0).then(|| OwedBack {
        // 0 < owed_fen <= the report's amount, itself a valid `Fen`: the fallback is unreachable.
        amount: Fen::new(owed_fen).unwrap_or(report.amount),
        reason: reason.unwrap_or(RefundReason::NotPayable),
    });
    let status = match (applied.is_empty(), owed_back.is_some()) {
        (false, false) => PaymentStatus::Paid,
        (false, true) => PaymentStatus::PartiallyRefunded,
        (true, _) => PaymentStatus::RefundPending,
    };
    PaymentDecision::Stored(PaymentApplication {
        applied,
        owed_back,
        status,
    })
}

/// A payable a batch of reports names, with its region (a report takes only its own region's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPayable<'a> {
    pub region: &'a str,
    pub at: PayableAtReport<'a>,
}

/// Decides the reports of one batch (group commit) in their order, exactly as if each were stored
/// before the next one's payables were read: a payable one report pays is paid for every report
/// after it. `payables` holds every payable any of them names, as storage found it under lock;
/// it ends as the batch leaves them. `reports` pairs each report with its region.
pub fn decide_batch<'a>(
    reports: &[(&str, PaymentReport<'_>)],
    payables: &mut [BatchPayable<'a>],
) -> Vec<PaymentDecision> {
    reports
        .iter()
        .map(|(region, report)| {
            let found: Vec<PayableAtReport<'a>> = payables
                .iter()
                .filter(|p| {
                    p.region == *region && report.payable_ids.iter().any(|id| id == p.at.payable_id)
                })
                .map(|p| p.at.clone())
                .collect();
            let decision = decide_payment(report, &found);
            if let PaymentDecision::Stored(application) = &decision {
                for &i in &application.applied {
                    let id = report.payable_ids[i].as_str();
                    if let Some(p) = payables
                        .iter_mut()
                        .find(|p| p.region == *region && p.at.payable_id == id)
                    {
                        // `decide_payment` applied it, so the move is legal.
                        p.at.status =
                            p.at.status
                                .apply(PayableEvent::ApplyPayment)
                                .unwrap_or(PayableStatus::Paid);
                        p.at.locked_by = None;
                        p.at.locked_until = None;
                    }
                }
            }
            decision
        })
        .collect()
}

/// Whether this payment may take the payable: its status allows a payment, and any hold on it is
/// this payment's own or has lapsed.
fn payable_by(payable: &PayableAtReport<'_>, holder: &str, now: i64) -> bool {
    if payable.status.apply(PayableEvent::ApplyPayment).is_err() {
        return false;
    }
    match payable.status {
        PayableStatus::Locked => {
            payable.locked_by.is_some_and(|by| by == holder)
                || payable.locked_until.is_some_and(|until| until <= now)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(v: i64) -> Fen {
        Fen::new(v).unwrap()
    }

    fn unpaid(id: &str, amount: i64) -> PayableAtReport<'_> {
        PayableAtReport {
            payable_id: id,
            amount: fen(amount),
            status: PayableStatus::Unpaid,
            locked_by: None,
            locked_until: None,
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn report(payable_ids: &[String], amount: i64) -> PaymentReport<'_> {
        PaymentReport {
            payable_ids,
            amount: fen(amount),
            refund_all: None,
            earlier_reversal: None,
            holder: "",
            now: 1_000,
        }
    }

    fn stored(decision: PaymentDecision) -> PaymentApplication {
        match decision {
            PaymentDecision::Stored(a) => a,
            PaymentDecision::Withdrawn => panic!("withdrawn"),
        }
    }

    #[test]
    fn a_family_paid_in_full_is_paid_with_nothing_owed() {
        let named = ids(&["A", "B"]);
        let a = stored(decide_payment(
            &report(&named, 80_000),
            &[unpaid("B", 40_000), unpaid("A", 40_000)],
        ));
        assert_eq!(a.applied, vec![0, 1]);
        assert_eq!(a.owed_back, None);
        assert_eq!(a.status, PaymentStatus::Paid);
    }

    #[test]
    fn a_payable_paid_already_is_owed_back_and_the_rest_applied() {
        let named = ids(&["A", "B"]);
        let mut b = unpaid("B", 30_000);
        b.status = PayableStatus::Posted;
        let a = stored(decide_payment(
            &report(&named, 70_000),
            &[unpaid("A", 40_000), b],
        ));
        assert_eq!(a.applied, vec![0]);
        assert_eq!(
            a.owed_back,
            Some(OwedBack {
                amount: fen(30_000),
                reason: RefundReason::AlreadyPaid
            })
        );
        assert_eq!(a.status, PaymentStatus::PartiallyRefunded);
    }

    #[test]
    fn a_wrong_amount_or_an_unknown_payable_is_owed_back_whole() {
        let named = ids(&["A"]);
        let a = stored(decide_payment(
            &report(&named, 39_999),
            &[unpaid("A", 40_000)],
        ));
        assert!(a.applied.is_empty());
        assert_eq!(
            a.owed_back,
            Some(OwedBack {
                amount: fen(39_999),
                reason: RefundReason::AmountMismatch
            })
        );
        assert_eq!(a.status, PaymentStatus::RefundPending);

        let named = ids(&["A", "X"]);
        let a = stored(decide_payment(
            &report(&named, 40_000),
            &[unpaid("A", 40_000)],
        ));
        assert_eq!(a.owed_back.unwrap().reason, RefundReason::NotPayable);
        assert!(a.applied.is_empty());

        let named = ids(&["A", "A"]);
        let a = stored(decide_payment(
            &report(&named, 80_000),
            &[unpaid("A", 40_000)],
        ));
        assert_eq!(a.owed_back.unwrap().reason, RefundReason::NotPayable);

        let a = stored(decide_payment(&report(&[], 100), &[]));
        assert_eq!(
            a.owed_back,
            Some(OwedBack {
                amount: fen(100),
                reason: RefundReason::NotPayable
            })
        );
    }

    #[test]
    fn a_hold_is_passed_only_by_its_holder_or_its_lapse() {
        let named = ids(&["A"]);
        let mut held = unpaid("A", 40_000);
        held.status = PayableStatus::Locked;
        held.locked_by = Some("OD1");
        held.locked_until = Some(2_000);
        let mut other = report(&named, 40_000);
        other.holder = "OD2";
        let a = stored(decide_payment(&other, std::slice::from_ref(&held)));
        assert_eq!(a.owed_back.unwrap().reason, RefundReason::NotPayable);

        let mut own = report(&named, 40_000);
        own.holder = "OD1";
        assert_eq!(
            stored(decide_payment(&own, std::slice::from_ref(&held))).status,
            PaymentStatus::Paid
        );

        other.now = 2_000;
        assert_eq!(
            stored(decide_payment(&other, std::slice::from_ref(&held))).status,
            PaymentStatus::Paid
        );
    }

    #[test]
    fn an_exempt_or_replaced_payable_takes_no_money() {
        let named = ids(&["A"]);
        for status in [
            PayableStatus::Exempt,
            PayableStatus::Superseded,
            PayableStatus::Cancelled,
        ] {
            let mut p = unpaid("A", 40_000);
            p.status = status;
            let a = stored(decide_payment(&report(&named, 40_000), &[p]));
            assert_eq!(a.owed_back.unwrap().reason, RefundReason::NotPayable);
        }
    }

    #[test]
    fn a_reversal_that_came_first_withdraws_or_owes_everything_back() {
        let named = ids(&["A"]);
        let mut r = report(&named, 40_000);
        r.earlier_reversal = Some(EarlierReversal {
            funds_returned: true,
        });
        assert_eq!(
            decide_payment(&r, &[unpaid("A", 40_000)]),
            PaymentDecision::Withdrawn
        );
        r.earlier_reversal = Some(EarlierReversal {
            funds_returned: false,
        });
        let a = stored(decide_payment(&r, &[unpaid("A", 40_000)]));
        assert!(a.applied.is_empty());
        assert_eq!(
            a.owed_back.unwrap(),
            OwedBack {
                amount: fen(40_000),
                reason: RefundReason::ReversedEarlier
            }
        );
    }

    #[test]
    fn the_callers_reason_owes_everything_back_under_it() {
        let named = ids(&["A"]);
        let mut r = report(&named, 40_000);
        r.refund_all = Some(RefundReason::ChannelOnly);
        let a = stored(decide_payment(&r, &[unpaid("A", 40_000)]));
        assert_eq!(a.owed_back.unwrap().reason, RefundReason::ChannelOnly);
        assert!(a.applied.is_empty());
    }

    #[test]
    fn in_a_batch_the_first_report_pays_and_a_later_one_for_the_same_payable_is_owed_back() {
        let a_only = ids(&["A"]);
        let a_and_b = ids(&["A", "B"]);
        let other_region = ids(&["B"]);
        let mut payables = vec![
            BatchPayable {
                region: "320600",
                at: unpaid("A", 40_000),
            },
            BatchPayable {
                region: "320600",
                at: unpaid("B", 30_000),
            },
        ];
        let decisions = decide_batch(
            &[
                ("320600", report(&a_only, 40_000)),
                ("320600", report(&a_and_b, 70_000)),
                // B of another region is not this one's B.
                ("460100", report(&other_region, 30_000)),
            ],
            &mut payables,
        );
        let first = stored(decisions[0].clone());
        assert_eq!(first.applied, vec![0]);
        assert_eq!(first.status, PaymentStatus::Paid);
        let second = stored(decisions[1].clone());
        assert_eq!(second.applied, vec![1]);
        assert_eq!(
            second.owed_back,
            Some(OwedBack {
                amount: fen(40_000),
                reason: RefundReason::AlreadyPaid
            })
        );
        let third = stored(decisions[2].clone());
        assert!(third.applied.is_empty());
        assert_eq!(
            third.owed_back.map(|o| o.reason),
            Some(RefundReason::NotPayable)
        );
        assert!(payables.iter().all(|p| p.at.status == PayableStatus::Paid));
    }

    fn any_status() -> impl Strategy<Value = PayableStatus> {
        prop::sample::select(PayableStatus::ALL.to_vec())
    }

    proptest! {
        /// Money is never lost or made: applied plus owed back is what was paid, and a payable
        /// is paid only when its status allows it.
        #[test]
        fn applied_plus_owed_back_is_what_was_paid(
            payables in prop::collection::vec((1i64..100_000, any_status(), any::<bool>(), 0i64..3_000), 0..6),
            extra in -2i64..3,
            drop_one in any::<bool>(),
        ) {
            let names: Vec<String> = (0..payables.len()).map(|i| format!("P{i}")).collect();
            let found: Vec<PayableAtReport<'_>> = payables
                .iter()
                .zip(&names)
                .map(|((amount, status, own, until), id)| PayableAtReport {
                    payable_id: id,
                    amount: fen(*amount),
                    status: *status,
                    locked_by: Some(if *own { "OD1" } else { "OD9" }),
                    locked_until: Some(*until),
                })
                .collect();
            let found = if drop_one && !found.is_empty() { &found[1..] } else { &found[..] };
            let sum: i64 = payables.iter().map(|p| p.0).sum();
            let paid = (sum + extra).max(1);
            let r = PaymentReport {
                payable_ids: &names,
                amount: fen(paid),
                refund_all: None,
                earlier_reversal: None,
                holder: "OD1",
                now: 1_500,
            };
            let a = stored(decide_payment(&r, found));
            let applied: i64 = a.applied.iter().map(|&i| payables[i].0).sum();
            let owed = a.owed_back.map_or(0, |o| o.amount.as_fen());
            prop_assert_eq!(applied + owed, paid);
            for &i in &a.applied {
                prop_assert!(payables[i].1.is_payable());
            }
            prop_assert_eq!(a.applied.is_empty(), a.status == PaymentStatus::RefundPending);
        }

        /// A batch decides as the reports one after another would: each payable is paid at most
        /// once across the batch, and each report's money is applied or owed back in full.
        #[test]
        fn a_batch_pays_each_payable_once_and_loses_no_money(
            amounts in prop::collection::vec(1i64..100_000, 1..5),
            reports in prop::collection::vec(prop::collection::vec(0usize..5, 1..4), 1..8),
        ) {
            let names: Vec<String> = (0..amounts.len()).map(|i| format!("P{i}")).collect();
            let mut payables: Vec<BatchPayable<'_>> = names
                .iter()
                .zip(&amounts)
                .map(|(id, amount)| BatchPayable { region: "320600", at: unpaid(id, *amount) })
                .collect();
            let named: Vec<Vec<String>> = reports
                .iter()
                .map(|r| r.iter().map(|&i| format!("P{i}")).collect())
                .collect();
            let paid: Vec<i64> = named
                .iter()
                .map(|ids| {
                    ids.iter()
                        .map(|id| id[1..].parse::<usize>().unwrap())
                        .map(|i| amounts.get(i).copied().unwrap_or(1))
                        .sum()
                })
                .collect();
            let batch: Vec<(&str, PaymentReport<'_>)> = named
                .iter()
                .zip(&paid)
                .map(|(ids, amount)| ("320600", report(ids, *amount)))
                .collect();
            let decisions = decide_batch(&batch, &mut payables);
            let mut times_paid = vec![0; amounts.len()];
            for ((decision, ids), amount) in decisions.into_iter().zip(&named).zip(&paid) {
                let a = stored(decision);
                let mut applied = 0;
                for &i in &a.applied {
                    let p: usize = ids[i][1..].parse().unwrap();
                    times_paid[p] += 1;
                    applied += amounts[p];
                }
                prop_assert_eq!(applied + a.owed_back.map_or(0, |o| o.amount.as_fen()), *amount);
            }
            prop_assert!(times_paid.iter().all(|&n| n <= 1));
        }
    }
}
