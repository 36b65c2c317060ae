//! Status moves as SQL, made from the domain's state machines ([`yibao_domain::lifecycle`]).
//!
//! Storage moves a status with a conditional update: of two writers racing for one row, the
//! second finds the status already moved and changes nothing, and the database, not a read before
//! the write, decides which one won. The statuses of that update (what the row must be, what it
//! becomes) come from [`Lifecycle::moves`], so the database refuses exactly what the domain's
//! `apply` refuses, and no statement spells a list of statuses by hand. Each move used is named
//! here once; the tests below pin what each one says.

use yibao_domain::Lifecycle;

/// One status move, as the two halves of a conditional update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMove {
    set: String,
    guard: String,
}

impl StatusMove {
    /// The move that `events`, applied one after another, make. Every status they move from must
    /// end in the same status; a sequence that moves nothing, or ends in two places, is a
    /// programming error, refused by the tests of every move named below.
    fn of<S: Lifecycle>(events: &[S::Event]) -> StatusMove {
        let moves = S::moves(events);
        let ends: Vec<&'static str> = moves.iter().map(|(_, to)| to.code()).collect();
        assert!(
            !ends.is_empty() && ends.iter().all(|to| *to == ends[0]),
            "{events:?} must move some {} to one status, not {ends:?}",
            S::OF
        );
        let from: Vec<&'static str> = moves.iter().map(|(from, _)| from.code()).collect();
        StatusMove {
            set: format!("status = '{}'", ends[0]),
            // One status is spelled as the partial indexes spell it (`status = 'locked'`).
            guard: match from.as_slice() {
                [one] => format!("status = '{one}'"),
                many => format!("status IN ('{}')", many.join("', '")),
            },
        }
    }

    /// `status = '<to>'`, for the `SET` of an update.
    pub fn set(&self) -> &str {
        &self.set
    }

    /// `status = '<from>'` or `status IN ('<from>', …)`, for its `WHERE`.
    pub fn guard(&self) -> &str {
        &self.guard
    }
}

/// Payables (应缴费信息).
pub mod payable {
    use std::sync::LazyLock;

    use yibao_domain::{PayableEvent as E, PayableStatus as S};

    use super::StatusMove;

    /// An order or a debit run takes it: unpaid to locked.
    pub static LOCK: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Lock]));
    /// Its holder lets go, or the hold expired: locked to unpaid.
    pub static RELEASE: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Release]));
    /// A payment is applied: unpaid or locked to paid.
    pub static APPLY_PAYMENT: LazyLock<StatusMove> =
        LazyLock::new(|| StatusMove::of::<S>(&[E::ApplyPayment]));
    /// Reversed or refunded in full: paid or posted to unpaid.
    pub static UNDO_PAYMENT: LazyLock<StatusMove> =
        LazyLock::new(|| StatusMove::of::<S>(&[E::UndoPayment]));
    /// Refunded in full because the person left (employee insurance): paid or posted to cancelled.
    pub static UNDO_PAYMENT_AND_CANCEL: LazyLock<StatusMove> =
        LazyLock::new(|| StatusMove::of::<S>(&[E::UndoPayment, E::Cancel]));
    /// The agency has the money (到帐): paid to posted.
    pub static POST: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Post]));
    /// A re-assessment replaces it: unpaid or exempt to superseded.
    pub static SUPERSEDE: LazyLock<StatusMove> =
        LazyLock::new(|| StatusMove::of::<S>(&[E::Supersede]));
    /// The person moved away: unpaid or exempt to cancelled.
    pub static CANCEL: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Cancel]));
    /// A back-payment whose year's contribution is paid: unpaid or locked to cancelled.
    pub static MOOT: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Moot]));
}

/// Orders (订单).
pub mod order {
    use std::sync::LazyLock;

    use yibao_domain::{OrderEvent as E, OrderStatus as S};

    use super::StatusMove;

    /// Paid, also after it expired: open or expired to paid.
    pub static PAY: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Pay]));
    /// Cancelled by its channel: open to cancelled (cancelling again moves nothing).
    pub static CANCEL: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Cancel]));
    /// Its hold ran out: open to expired.
    pub static EXPIRE: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Expire]));
}

/// Refunds owed (应退).
pub mod refund {
    use std::sync::LazyLock;

    use yibao_domain::{RefundEvent as E, RefundStatus as S};

    use super::StatusMove;

    /// Handed to the channel: owed or failed to sent.
    pub static SEND: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Send]));
    /// A reversal returned the funds: owed, sent or failed to cancelled.
    pub static CANCEL: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Cancel]));
    /// Staff put a failed refund back in the queue: failed to owed.
    pub static RETRY: LazyLock<StatusMove> = LazyLock::new(|| StatusMove::of::<S>(&[E::Retry]));
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    fn said(m: &LazyLock<StatusMove>) -> (&str, &str) {
        (m.set(), m.guard())
    }

    #[test]
    fn each_move_says_what_the_state_machine_allows() {
        let moves = [
            (
                said(&payable::LOCK),
                ("status = 'locked'", "status = 'unpaid'"),
            ),
            (
                said(&payable::RELEASE),
                ("status = 'unpaid'", "status = 'locked'"),
            ),
            (
                said(&payable::APPLY_PAYMENT),
                ("status = 'paid'", "status IN ('unpaid', 'locked')"),
            ),
            (
                said(&payable::UNDO_PAYMENT),
                ("status = 'unpaid'", "status IN ('paid', 'posted')"),
            ),
            (
                said(&payable::UNDO_PAYMENT_AND_CANCEL),
                ("status = 'cancelled'", "status IN ('paid', 'posted')"),
            ),
            (
                said(&payable::POST),
                ("status = 'posted'", "status = 'paid'"),
            ),
            (
                said(&payable::SUPERSEDE),
                ("status = 'superseded'", "status IN ('unpaid', 'exempt')"),
            ),
            (
                said(&payable::CANCEL),
                ("status = 'cancelled'", "status IN ('unpaid', 'exempt')"),
            ),
            (
                said(&payable::MOOT),
                ("status = 'cancelled'", "status IN ('unpaid', 'locked')"),
            ),
            (
                said(&order::PAY),
                ("status = 'paid'", "status IN ('open', 'expired')"),
            ),
            (
                said(&order::CANCEL),
                ("status = 'cancelled'", "status = 'open'"),
            ),
            (
                said(&order::EXPIRE),
                ("status = 'expired'", "status = 'open'"),
            ),
            (
                said(&refund::SEND),
                ("status = 'sent'", "status IN ('owed', 'failed')"),
            ),
            (
                said(&refund::CANCEL),
                (
                    "status = 'cancelled'",
                    "status IN ('owed', 'sent', 'failed')",
                ),
            ),
            (
                said(&refund::RETRY),
                ("status = 'owed'", "status = 'failed'"),
            ),
        ];
        for (got, want) in moves {
            assert_eq!(got, want);
        }
    }

    #[test]
    #[should_panic(expected = "must move some PayableStatus to one status")]
    fn a_sequence_that_moves_nothing_is_refused() {
        use yibao_domain::PayableEvent as E;
        StatusMove::of::<yibao_domain::PayableStatus>(&[E::Post, E::ApplyPayment]);
    }
}
