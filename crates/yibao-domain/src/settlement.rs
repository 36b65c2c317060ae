//! Settlement rules that are not reconciliation itself: bank accounts under auto-debit agreements
//! (委托扣款协议), the reasons money is refunded, and the bound on refund attempts.

use std::fmt;

/// How many times a refund is handed to its channel before it needs a person (a failed refund
/// stays owed and is shown to staff; after this many attempts the channel stops seeing it).
pub const MAX_REFUND_ATTEMPTS: i64 = 5;

/// A bank account number, kept only in masked form (`6222 **** 1234`): yibao never needs the whole
/// number, the bank identifies the account by the agreement.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskedAccount(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("银行账号应为 8 至 32 位数字（可含空格或已脱敏的 *）")]
pub struct AccountError;

impl MaskedAccount {
    /// Takes a full account number (digits, spaces allowed) or one already masked by the bank
    /// (`6222********1234`) and keeps the first four and last four digits.
    pub fn parse(input: &str) -> Result<MaskedAccount, AccountError> {
        let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let len = compact.chars().count();
        if !(8..=32).contains(&len) || !compact.chars().all(|c| c.is_ascii_digit() || c == '*') {
            return Err(AccountError);
        }
        let digits_at_ends = compact.chars().take(4).all(|c| c.is_ascii_digit())
            && compact.chars().skip(len - 4).all(|c| c.is_ascii_digit());
        if !digits_at_ends {
            return Err(AccountError);
        }
        let head: String = compact.chars().take(4).collect();
        let tail: String = compact.chars().skip(len - 4).collect();
        Ok(MaskedAccount(format!("{head}****{tail}")))
    }

    pub fn from_stored(masked: String) -> MaskedAccount {
        MaskedAccount(masked)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MaskedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedAccount({})", self.0)
    }
}

/// Why yibao owes money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundReason {
    /// A second payment for a payable already paid.
    AlreadyPaid,
    AmountMismatch,
    NotPayable,
    /// Reported after the channel reversed it, with the funds still held.
    ReversedEarlier,
    /// Money on a channel's statement that was never reported (长款), refunded by the channel's policy.
    ChannelOnly,
    /// A paid payable refunded so it can be re-assessed.
    Reassessed,
    /// The resident joined employee insurance before the benefit year.
    EmployeeInsurance,
    /// The channel asked for its money back after the day was reconciled (no reversal possible).
    ReversedAfterSettlement,
}

impl RefundReason {
    pub const ALL: [RefundReason; 8] = [
        RefundReason::AlreadyPaid,
        RefundReason::AmountMismatch,
        RefundReason::NotPayable,
        RefundReason::ReversedEarlier,
        RefundReason::ChannelOnly,
        RefundReason::Reassessed,
        RefundReason::EmployeeInsurance,
        RefundReason::ReversedAfterSettlement,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RefundReason::AlreadyPaid => "ALREADY_PAID",
            RefundReason::AmountMismatch => "AMOUNT_MISMATCH",
            RefundReason::NotPayable => "NOT_PAYABLE",
            RefundReason::ReversedEarlier => "REVERSED_EARLIER",
            RefundReason::ChannelOnly => "CHANNEL_ONLY",
            RefundReason::Reassessed => "REASSESSED",
            RefundReason::EmployeeInsurance => "EMPLOYEE_INSURANCE",
            RefundReason::ReversedAfterSettlement => "REVERSED_AFTER_SETTLEMENT",
        }
    }

    pub fn from_code(code: &str) -> Option<RefundReason> {
        RefundReason::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            RefundReason::AlreadyPaid => "重复缴费",
            RefundReason::AmountMismatch => "金额不符",
            RefundReason::NotPayable => "无可缴费用",
            RefundReason::ReversedEarlier => "已冲正",
            RefundReason::ChannelOnly => "渠道长款",
            RefundReason::Reassessed => "重新核定",
            RefundReason::EmployeeInsurance => "参加职工医保",
            RefundReason::ReversedAfterSettlement => "对账后撤销",
        }
    }

    /// The reason as the channel protocol names it (§3 lists four): the reasons the protocol does not
    /// know are, for the channel, money that could not be applied.
    pub fn protocol_code(self) -> &'static str {
        match self {
            RefundReason::AlreadyPaid
            | RefundReason::AmountMismatch
            | RefundReason::NotPayable
            | RefundReason::ReversedEarlier => self.code(),
            RefundReason::ChannelOnly
            | RefundReason::Reassessed
            | RefundReason::EmployeeInsurance
            | RefundReason::ReversedAfterSettlement => RefundReason::NotPayable.code(),
        }
    }

    /// The reasons staff may start from a paid payable; the others arise from payments.
    pub fn staff_may_start(self) -> bool {
        matches!(
            self,
            RefundReason::Reassessed
                | RefundReason::EmployeeInsurance
                | RefundReason::ReversedAfterSettlement
        )
    }
}

/// Why a bank's result cannot be dated: the money of a debit belongs to the day the bank took it,
/// which is neither before the run's debit date nor after today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DebitDayError {
    /// The run's debit date has not come: the bank cannot have debited yet.
    #[error("扣款日 {debit_date} 尚未到（今天是 {today}），银行不可能已经扣款，请到扣款日之后再导入结果文件")]
    RunNotDue {
        debit_date: chrono::NaiveDate,
        today: chrono::NaiveDate,
    },
    /// A line's debit day is before the run's debit date.
    #[error("扣款日期 {day} 早于本批次的扣款日 {debit_date}")]
    BeforeDebitDate {
        day: chrono::NaiveDate,
        debit_date: chrono::NaiveDate,
    },
    /// A line's debit day is after today.
    #[error("扣款日期 {day} 晚于今天 {today}")]
    AfterToday {
        day: chrono::NaiveDate,
        today: chrono::NaiveDate,
    },
}

/// The day a debit result is booked on: the line's own debit day when the bank gives one, else
/// the run's debit date; refused when the run is not due yet or the day lies outside
/// `debit_date ..= today`, so a payment is never dated in the future nor before it was asked for.
pub fn debit_booking_day(
    debit_date: chrono::NaiveDate,
    today: chrono::NaiveDate,
    line_day: Option<chrono::NaiveDate>,
) -> Result<chrono::NaiveDate, DebitDayError> {
    if today < debit_date {
        return Err(DebitDayError::RunNotDue { debit_date, today });
    }
    let day = line_day.unwrap_or(debit_date);
    if day < debit_date {
        return Err(DebitDayError::BeforeDebitDate { day, debit_date });
    }
    if day > today {
        return Err(DebitDayError::AfterToday { day, today });
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_kept_masked() {
        assert_eq!(
            MaskedAccount::parse("6222 0212 3456 7890 123")
                .unwrap()
                .as_str(),
            "6222****0123"
        );
        assert_eq!(
            MaskedAccount::parse("6222********1234").unwrap().as_str(),
            "6222****1234"
        );
        assert!(MaskedAccount::parse("1234567").is_err());
        assert!(MaskedAccount::parse("62220212345678a0").is_err());
        assert!(MaskedAccount::parse("****02123456").is_err());
        assert!(
            !format!("{:?}", MaskedAccount::parse("6222021234567890").unwrap()).contains("0212345")
        );
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in RefundReason::ALL {
            assert_eq!(RefundReason::from_code(r.code()), Some(r));
        }
        assert_eq!(RefundReason::from_code("nope"), None);
        assert!(!RefundReason::AlreadyPaid.staff_may_start());
        // The channel protocol knows four reasons; every reason maps onto one of them.
        let wire = [
            "ALREADY_PAID",
            "AMOUNT_MISMATCH",
            "NOT_PAYABLE",
            "REVERSED_EARLIER",
        ];
        for r in RefundReason::ALL {
            assert!(wire.contains(&r.protocol_code()), "{r:?}");
        }
        assert_eq!(RefundReason::ChannelOnly.protocol_code(), "NOT_PAYABLE");
    }

    #[test]
    fn a_debit_is_booked_between_its_debit_date_and_today() {
        let d = |day| chrono::NaiveDate::from_ymd_opt(2020, 11, day).unwrap();
        assert_eq!(debit_booking_day(d(2), d(3), None), Ok(d(2)));
        assert_eq!(debit_booking_day(d(2), d(3), Some(d(3))), Ok(d(3)));
        assert!(matches!(
            debit_booking_day(d(5), d(3), None),
            Err(DebitDayError::RunNotDue { .. })
        ));
        assert!(matches!(
            debit_booking_day(d(2), d(3), Some(d(1))),
            Err(DebitDayError::BeforeDebitDate { .. })
        ));
        assert!(matches!(
            debit_booking_day(d(2), d(3), Some(d(4))),
            Err(DebitDayError::AfterToday { .. })
        ));
    }
}
