//! The state machines of payables (应缴费信息), orders, payments and refunds.
//!
//! Each status moves only by an event; an illegal move is an error naming both, never a silent
//! overwrite. Storage keeps the status as the `code()` string and applies moves with a conditional
//! update on the old status, so the database refuses the same illegal moves.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("状态为“{from}”时不能{event}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub event: &'static str,
}

impl IllegalTransition {
    pub const CODE: &'static str = "ILLEGAL_TRANSITION";
}

/// A status stored as its code: what storage needs to read one from a row, once.
pub trait Status: Copy + PartialEq + Sized + 'static {
    /// What the status is of, for an error naming a code that is none of them.
    const OF: &'static str;
    fn code(self) -> &'static str;
    fn from_code(code: &str) -> Option<Self>;
    /// Every status, in declaration order.
    fn all() -> &'static [Self];
}

/// A status with a state machine: the one place its moves are decided. Storage writes a move as a
/// conditional update whose statuses come from [`Lifecycle::moves`], never from a list typed by
/// hand, so the database refuses exactly what [`Lifecycle::apply`] refuses.
pub trait Lifecycle: Status {
    type Event: Copy + std::fmt::Debug;

    fn apply(self, event: Self::Event) -> Result<Self, IllegalTransition>;

    /// Every status that `events`, applied one after another, move to another status, each with
    /// where it ends. A move that leaves the status as it was (cancelling what is cancelled) is
    /// not a move: a conditional update must not count it as one.
    fn moves(events: &[Self::Event]) -> Vec<(Self, Self)> {
        Self::all()
            .iter()
            .filter_map(|&from| {
                let to = events
                    .iter()
                    .try_fold(from, |status, &event| status.apply(event).ok())?;
                (to != from).then_some((from, to))
            })
            .collect()
    }
}

/// A stored status code that is none of its enum's codes: a corrupt row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus {
    pub of: &'static str,
    pub code: String,
}

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} is none of its statuses", self.of, self.code)
    }
}

impl std::error::Error for UnknownStatus {}

/// Generates `code`, `name_zh`, `from_code`, `ALL`, [`Status`] and `TryFrom<String>` (how a row's
/// column becomes the enum) for a status enum. The serde form is the code.
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $code:literal, $zh:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $code)] $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            pub fn code(self) -> &'static str { match self { $($name::$variant => $code,)+ } }
            pub fn name_zh(self) -> &'static str { match self { $($name::$variant => $zh,)+ } }
            pub fn from_code(code: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|s| s.code() == code)
            }
        }

        impl Status for $name {
            const OF: &'static str = stringify!($name);
            fn code(self) -> &'static str { $name::code(self) }
            fn from_code(code: &str) -> Option<Self> { $name::from_code(code) }
            fn all() -> &'static [Self] { $name::ALL }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownStatus;
            fn try_from(code: String) -> Result<Self, UnknownStatus> {
                $name::from_code(&code).ok_or(UnknownStatus { of: stringify!($name), code })
            }
        }
    };
}

status_enum! {
    /// Where a payable stands. `Locked` is held by an open order or a bank auto-debit run.
    PayableStatus {
        Unpaid => "unpaid", "未缴费";
        Locked => "locked", "锁定中";
        Paid => "paid", "已缴费";
        /// Paid and acknowledged by the agency (到帐).
        Posted => "posted", "已到帐";
        /// Owes nothing: an exemption valid on the assessment date.
        Exempt => "exempt", "免缴";
        /// Replaced by a re-assessment (重新核定).
        Superseded => "superseded", "已重新核定";
        Cancelled => "cancelled", "已取消";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayableEvent {
    /// An order or a debit run takes the payable.
    Lock,
    /// The holder let go (order cancelled or expired, debit failed, run abandoned).
    Release,
    /// A payment was applied to it.
    ApplyPayment,
    /// The applied payment was reversed (冲正) or refunded in full, posted or not.
    UndoPayment,
    /// The agency acknowledged the money (到帐).
    Post,
    /// A re-assessment replaced it.
    Supersede,
    Cancel,
    /// What it would buy is settled without it: a back-payment (补缴修复) once its year's
    /// contribution is paid, whether or not an order holds it (money then paid for it is owed
    /// back).
    Moot,
}

impl PayableEvent {
    fn name_zh(self) -> &'static str {
        match self {
            PayableEvent::Lock => "锁定",
            PayableEvent::Release => "解除锁定",
            PayableEvent::ApplyPayment => "入账缴费",
            PayableEvent::UndoPayment => "撤销缴费",
            PayableEvent::Post => "确认到帐",
            PayableEvent::Supersede => "重新核定（已缴费的须先退费）",
            PayableEvent::Cancel => "取消",
            PayableEvent::Moot => "取消（本年度已缴费，补缴已无意义）",
        }
    }
}

impl PayableStatus {
    pub fn apply(self, event: PayableEvent) -> Result<PayableStatus, IllegalTransition> {
        use PayableEvent as E;
        use PayableStatus as S;
        let next = match (self, event) {
            (S::Unpaid, E::Lock) => S::Locked,
            (S::Locked, E::Release) => S::Unpaid,
            // A payment is applied whether or not an order holds the payable: money held is never refused here.
            (S::Unpaid | S::Locked, E::ApplyPayment) => S::Paid,
            // Reversed or refunded in full, also once the agency has it (the reversal is posted too).
            (S::Paid | S::Posted, E::UndoPayment) => S::Unpaid,
            (S::Paid, E::Post) => S::Posted,
            (S::Unpaid | S::Exempt, E::Supersede) => S::Superseded,
            (S::Unpaid | S::Exempt, E::Cancel) => S::Cancelled,
            (S::Unpaid | S::Locked, E::Moot) => S::Cancelled,
            _ => {
                return Err(IllegalTransition {
                    from: self.name_zh(),
                    event: event.name_zh(),
                })
            }
        };
        Ok(next)
    }

    /// Whether a channel may still take money for it.
    pub fn is_payable(self) -> bool {
        matches!(self, PayableStatus::Unpaid | PayableStatus::Locked)
    }
}

status_enum! {
    /// A person's enrolment (参保登记) in a region and fee year.
    EnrolmentStatus {
        Enrolled => "enrolled", "已参保登记";
        /// May not enrol, with the reason recorded (so unpaid lists can show it).
        Refused => "refused", "不予登记";
    }
}

status_enum! {
    /// A channel's order holding payables for a hold time.
    OrderStatus {
        Open => "open", "待支付";
        Paid => "paid", "已支付";
        Cancelled => "cancelled", "已取消";
        Expired => "expired", "已过期";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    Pay,
    Cancel,
    Expire,
}

impl OrderStatus {
    pub fn apply(self, event: OrderEvent) -> Result<OrderStatus, IllegalTransition> {
        use OrderEvent as E;
        use OrderStatus as S;
        match (self, event) {
            // An expired order whose payables are still unpaid is paid normally (protocol §3).
            (S::Open | S::Expired, E::Pay) => Ok(S::Paid),
            (S::Open, E::Cancel) => Ok(S::Cancelled),
            // Cancelling is idempotent.
            (S::Cancelled, E::Cancel) => Ok(S::Cancelled),
            (S::Open, E::Expire) => Ok(S::Expired),
            _ => Err(IllegalTransition {
                from: self.name_zh(),
                event: match event {
                    E::Pay => "支付",
                    E::Cancel => "取消",
                    E::Expire => "过期",
                },
            }),
        }
    }
}

status_enum! {
    /// A payment report, as the protocol's status endpoint names it.
    PaymentStatus {
        Paid => "paid", "已缴费";
        PartiallyRefunded => "partially_refunded", "部分退费";
        RefundPending => "refund_pending", "待退费";
        Refunded => "refunded", "已退费";
        Reversed => "reversed", "已冲正";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The channel reversed it (冲正).
    Reverse,
    /// Every refund owed for it succeeded and nothing remains applied.
    RefundCompleted,
    /// An applied payable was refunded (before a re-assessment), leaving part applied.
    PartRefunded,
}

impl PaymentStatus {
    pub fn apply(self, event: PaymentEvent) -> Result<PaymentStatus, IllegalTransition> {
        use PaymentEvent as E;
        use PaymentStatus as S;
        match (self, event) {
            (S::Paid | S::PartiallyRefunded | S::RefundPending, E::Reverse) => Ok(S::Reversed),
            (S::Reversed, E::Reverse) => Ok(S::Reversed),
            (S::RefundPending | S::PartiallyRefunded | S::Paid, E::RefundCompleted) => {
                Ok(S::Refunded)
            }
            (S::Paid | S::PartiallyRefunded, E::PartRefunded) => Ok(S::PartiallyRefunded),
            _ => Err(IllegalTransition {
                from: self.name_zh(),
                event: match event {
                    E::Reverse => "冲正",
                    E::RefundCompleted => "完成退费",
                    E::PartRefunded => "部分退费",
                },
            }),
        }
    }
}

status_enum! {
    /// A refund yibao owes back through a channel.
    RefundStatus {
        Owed => "owed", "待退";
        Sent => "sent", "已发起";
        Succeeded => "succeeded", "退费成功";
        Failed => "failed", "退费失败";
        /// The payment was reversed, so nothing is owed any more.
        Cancelled => "cancelled", "已撤销";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundEvent {
    Send,
    Succeed,
    Fail,
    Cancel,
    /// Staff put a failed refund back in the queue (重新退费), its attempts counted afresh.
    Retry,
}

impl RefundStatus {
    pub fn apply(self, event: RefundEvent) -> Result<RefundStatus, IllegalTransition> {
        use RefundEvent as E;
        use RefundStatus as S;
        match (self, event) {
            (S::Owed | S::Failed, E::Send) => Ok(S::Sent),
            (S::Owed | S::Sent | S::Failed, E::Succeed) => Ok(S::Succeeded),
            // Reporting the same result twice is idempotent.
            (S::Succeeded, E::Succeed) => Ok(S::Succeeded),
            (S::Owed | S::Sent | S::Failed, E::Fail) => Ok(S::Failed),
            // A reversal with the funds returned cancels what is owed, even once handed to the channel.
            (S::Owed | S::Sent | S::Failed, E::Cancel) => Ok(S::Cancelled),
            (S::Failed, E::Retry) => Ok(S::Owed),
            _ => Err(IllegalTransition {
                from: self.name_zh(),
                event: match event {
                    E::Send => "发起退费",
                    E::Succeed => "确认退费成功",
                    E::Fail => "记录退费失败",
                    E::Cancel => "撤销退费",
                    E::Retry => "重新退费",
                },
            }),
        }
    }

    /// Still owed to the citizen: shown to staff and counted against the due date.
    pub fn is_outstanding(self) -> bool {
        matches!(
            self,
            RefundStatus::Owed | RefundStatus::Sent | RefundStatus::Failed
        )
    }
}

status_enum! {
    /// An electronic receipt (电子票据).
    ReceiptStatus {
        Valid => "valid", "有效";
        /// Its payment was reversed: kept, marked 作废.
        Voided => "voided", "已作废";
    }
}

status_enum! {
    /// A bank auto-debit agreement (委托扣款协议).
    AgreementStatus {
        Active => "active", "有效";
        Cancelled => "cancelled", "已解约";
    }
}

status_enum! {
    /// A bank auto-debit run: its request file sent, its result applied, or given up.
    DebitRunStatus {
        Sent => "sent", "已发送银行";
        Completed => "completed", "已完成";
        /// No result by the end of its lock: its payables freed.
        Abandoned => "abandoned", "已放弃";
    }
}

status_enum! {
    /// A reconciliation difference (对账差异).
    ReconciliationItemStatus {
        Open => "open", "待处理";
        /// Reported but not in the statement: looked for in the next day's.
        Carried => "carried", "结转次日核对";
        /// Not in the next day's statement either: for staff.
        Escalated => "escalated", "已上报待人工处理";
        Resolved => "resolved", "已处理";
    }
}

status_enum! {
    /// An online enrolment application (网上参保登记).
    ApplicationStatus {
        Submitted => "submitted", "待审核";
        Approved => "approved", "已通过";
        Refused => "refused", "未通过";
    }
}

/// The four state machines, for [`Lifecycle::moves`].
macro_rules! lifecycle {
    ($($status:ident => $event:ident),+ $(,)?) => {$(
        impl Lifecycle for $status {
            type Event = $event;
            fn apply(self, event: $event) -> Result<$status, IllegalTransition> {
                $status::apply(self, event)
            }
        }
    )+};
}

lifecycle! {
    PayableStatus => PayableEvent,
    OrderStatus => OrderEvent,
    PaymentStatus => PaymentEvent,
    RefundStatus => RefundEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payable_paths() {
        use PayableEvent as E;
        use PayableStatus as S;
        assert_eq!(S::Unpaid.apply(E::Lock), Ok(S::Locked));
        assert_eq!(S::Locked.apply(E::ApplyPayment), Ok(S::Paid));
        assert_eq!(S::Paid.apply(E::Post), Ok(S::Posted));
        assert_eq!(S::Paid.apply(E::UndoPayment), Ok(S::Unpaid));
        // Pay once: a paid payable cannot be paid again, nor re-assessed before it is refunded.
        let err = S::Paid.apply(E::ApplyPayment).unwrap_err();
        assert_eq!(err.to_string(), "状态为“已缴费”时不能入账缴费");
        assert!(S::Paid.apply(E::Supersede).is_err());
        assert!(S::Posted.apply(E::Supersede).is_err());
        assert!(S::Locked.apply(E::Lock).is_err());
        assert!(S::Superseded.apply(E::ApplyPayment).is_err());
        assert!(S::Exempt.apply(E::ApplyPayment).is_err());
        assert_eq!(S::Unpaid.apply(E::Supersede), Ok(S::Superseded));
    }

    #[test]
    fn moves_are_what_apply_allows_and_change_the_status() {
        use PayableEvent as E;
        use PayableStatus as S;
        assert_eq!(
            S::moves(&[E::ApplyPayment]),
            vec![(S::Unpaid, S::Paid), (S::Locked, S::Paid)]
        );
        assert_eq!(
            S::moves(&[E::UndoPayment]),
            vec![(S::Paid, S::Unpaid), (S::Posted, S::Unpaid)]
        );
        // A back-payment made pointless goes even when an order holds it; a paid one stays.
        assert_eq!(
            S::moves(&[E::Moot]),
            vec![(S::Unpaid, S::Cancelled), (S::Locked, S::Cancelled)]
        );
        // Refunded in full for employee insurance: undone, then cancelled, in one move.
        assert_eq!(
            S::moves(&[E::UndoPayment, E::Cancel]),
            vec![(S::Paid, S::Cancelled), (S::Posted, S::Cancelled)]
        );
        // Cancelling a cancelled order is allowed and idempotent, but no move.
        assert_eq!(
            OrderStatus::moves(&[OrderEvent::Cancel]),
            vec![(OrderStatus::Open, OrderStatus::Cancelled)]
        );
        assert_eq!(
            RefundStatus::moves(&[RefundEvent::Retry]),
            vec![(RefundStatus::Failed, RefundStatus::Owed)]
        );
        assert!(S::moves(&[E::Post, E::ApplyPayment]).is_empty());
    }

    #[test]
    fn only_unpaid_and_locked_are_payable() {
        let payable: Vec<_> = PayableStatus::ALL
            .iter()
            .filter(|s| s.is_payable())
            .collect();
        assert_eq!(
            payable,
            vec![&PayableStatus::Unpaid, &PayableStatus::Locked]
        );
    }

    #[test]
    fn order_paths() {
        use OrderEvent as E;
        use OrderStatus as S;
        assert_eq!(S::Open.apply(E::Pay), Ok(S::Paid));
        assert_eq!(S::Expired.apply(E::Pay), Ok(S::Paid));
        assert_eq!(S::Cancelled.apply(E::Cancel), Ok(S::Cancelled));
        assert!(S::Paid.apply(E::Cancel).is_err());
        assert!(S::Cancelled.apply(E::Pay).is_err());
        assert!(S::Paid.apply(E::Expire).is_err());
    }

    #[test]
    fn payment_and_refund_paths() {
        assert_eq!(
            PaymentStatus::Paid.apply(PaymentEvent::Reverse),
            Ok(PaymentStatus::Reversed)
        );
        assert!(PaymentStatus::Refunded
            .apply(PaymentEvent::Reverse)
            .is_err());
        assert!(PaymentStatus::Reversed
            .apply(PaymentEvent::PartRefunded)
            .is_err());
        assert_eq!(
            RefundStatus::Failed.apply(RefundEvent::Send),
            Ok(RefundStatus::Sent)
        );
        assert!(RefundStatus::Succeeded.apply(RefundEvent::Fail).is_err());
        assert!(RefundStatus::Succeeded.apply(RefundEvent::Cancel).is_err());
        assert!(RefundStatus::Cancelled.apply(RefundEvent::Succeed).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for s in PayableStatus::ALL {
            assert_eq!(PayableStatus::from_code(s.code()), Some(*s));
        }
        for s in RefundStatus::ALL {
            assert_eq!(RefundStatus::from_code(s.code()), Some(*s));
        }
        assert_eq!(
            PaymentStatus::from_code("partially_refunded"),
            Some(PaymentStatus::PartiallyRefunded)
        );
        assert_eq!(OrderStatus::from_code("nonsense"), None);
    }
}
