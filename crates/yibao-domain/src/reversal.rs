//! What a channel's reversal (冲正, protocol §4) of a payment does: nothing when it is reversed
//! already (the answer is the same, reversals are idempotent); refused once the channel's
//! statement of the payment's day has been reconciled (a refund is the way then); otherwise the
//! payables it paid are unpaid again and its receipts voided, and then either the channel gave the
//! money back itself (the payment is `reversed`, refunds still owed for it are cancelled) or it
//! still holds what was applied, which is owed back (`refund_pending`, reason `REVERSED_EARLIER`).
//!
//! Storage reads the payment, asks [`decide_reversal`], undoes what it says, and writes what
//! [`settle_reversal`] says of the money.

use crate::lifecycle::PaymentStatus;
use crate::money::Fen;

/// The stored payment a reversal names, as far as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentAtReversal {
    pub status: PaymentStatus,
    /// A reversal came before the report, so the report's money was owed back from the start
    /// (`REVERSED_EARLIER`): nothing was applied.
    pub owed_back_from_the_start: bool,
    /// The channel's statement of the payment's day has been reconciled.
    pub day_reconciled: bool,
}

/// What a reversal does to a stored payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalDecision {
    /// Reversed already, or nothing was ever applied: nothing to undo; answered `reversed`.
    NothingToUndo,
    /// The day is reconciled: 409 `REVERSAL_CLOSED`, nothing changes.
    Closed,
    /// Unpay its payables, void its receipts, then [`settle_reversal`].
    Undo,
}

pub fn decide_reversal(payment: &PaymentAtReversal) -> ReversalDecision {
    if payment.status == PaymentStatus::Reversed || payment.owed_back_from_the_start {
        ReversalDecision::NothingToUndo
    } else if payment.day_reconciled {
        ReversalDecision::Closed
    } else {
        ReversalDecision::Undo
    }
}

/// What becomes of the money once a reversal has undone `undone` of applied payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReversalSettlement {
    /// The payment's status from now on.
    pub status: PaymentStatus,
    /// Cancel the refunds still owed for the payment: the channel gave the payer everything back.
    pub cancel_refunds_owed: bool,
    /// Owe this back through the channel (reason `REVERSED_EARLIER`): it holds the money it had
    /// applied. Never zero.
    pub owe_back: Option<Fen>,
}

pub fn settle_reversal(undone: Fen, funds_returned: bool) -> ReversalSettlement {
    if funds_returned {
        ReversalSettlement {
            status: PaymentStatus::Reversed,
            cancel_refunds_owed: true,
            owe_back: None,
        }
    } else {
        // Money is never lost: what the channel still holds is owed back, not dropped.
        ReversalSettlement {
            status: PaymentStatus::RefundPending,
            cancel_refunds_owed: false,
            owe_back: (undone.as_fen() > 0).then_some(undone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: PaymentStatus, earlier: bool, reconciled: bool) -> PaymentAtReversal {
        PaymentAtReversal {
            status,
            owed_back_from_the_start: earlier,
            day_reconciled: reconciled,
        }
    }

    #[test]
    fn a_reversed_payment_is_answered_again_without_change_even_after_the_day_is_reconciled() {
        for reconciled in [false, true] {
            assert_eq!(
                decide_reversal(&payment(PaymentStatus::Reversed, false, reconciled)),
                ReversalDecision::NothingToUndo
            );
            assert_eq!(
                decide_reversal(&payment(PaymentStatus::RefundPending, true, reconciled)),
                ReversalDecision::NothingToUndo
            );
        }
    }

    #[test]
    fn a_reconciled_day_closes_reversal_and_an_open_one_undoes_it() {
        for status in [
            PaymentStatus::Paid,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::RefundPending,
        ] {
            assert_eq!(
                decide_reversal(&payment(status, false, true)),
                ReversalDecision::Closed
            );
            assert_eq!(
                decide_reversal(&payment(status, false, false)),
                ReversalDecision::Undo
            );
        }
    }

    #[test]
    fn money_the_channel_keeps_is_owed_back_and_money_it_returned_cancels_what_is_owed() {
        let undone = Fen::new(38_000).unwrap();
        assert_eq!(
            settle_reversal(undone, true),
            ReversalSettlement {
                status: PaymentStatus::Reversed,
                cancel_refunds_owed: true,
                owe_back: None
            }
        );
        assert_eq!(
            settle_reversal(undone, false),
            ReversalSettlement {
                status: PaymentStatus::RefundPending,
                cancel_refunds_owed: false,
                owe_back: Some(undone)
            }
        );
        assert_eq!(settle_reversal(Fen::ZERO, false).owe_back, None);
    }
}
