//! Money as integer fen (分). There are no floats anywhere in yibao.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount in fen. Signed, so that statement lines can carry refunds as negatives; most inputs
/// accept only non-negative amounts (see [`Fen::parse_yuan`]). Arithmetic is checked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(i64);

/// Largest absolute amount accepted from any input: 100 billion yuan, far above any real payment,
/// and small enough that sums of millions of amounts cannot overflow `i64`.
pub const MAX_ABS_FEN: i64 = 10_000_000_000_000;
/// Yuan text longer than this is refused before looking at it.
const MAX_YUAN_TEXT: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("金额不能为空")]
    Empty,
    #[error("金额“{0}”格式不对：应为元，最多两位小数，如 430 或 430.50")]
    BadFormat(String),
    #[error("金额“{0}”超过两位小数（最小单位为分）")]
    TooManyDecimals(String),
    #[error("金额不能为负数：“{0}”")]
    Negative(String),
    #[error("金额“{0}”超出允许范围")]
    OutOfRange(String),
    #[error("金额计算溢出")]
    Overflow,
}

impl MoneyError {
    pub const CODE: &'static str = "INVALID_AMOUNT";
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// An amount in fen; refuses amounts beyond [`MAX_ABS_FEN`].
    pub fn new(fen: i64) -> Result<Fen, MoneyError> {
        if fen.checked_abs().is_none_or(|a| a > MAX_ABS_FEN) {
            return Err(MoneyError::OutOfRange(fen.to_string()));
        }
        Ok(Fen(fen))
    }

    /// A non-negative amount in fen, as channels send it.
    pub fn new_non_negative(fen: i64) -> Result<Fen, MoneyError> {
        if fen < 0 {
            return Err(MoneyError::Negative(fen.to_string()));
        }
        Fen::new(fen)
    }

    pub fn yuan(yuan: i64) -> Result<Fen, MoneyError> {
        yuan.checked_mul(100)
            .ok_or(MoneyError::Overflow)
            .and_then(Fen::new)
    }

    pub fn as_fen(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Parses yuan text as Excel and bills write it: `430`, `430.5`, `430.50`. Refuses negatives,
    /// more than two decimals (`430.505`), exponents, thousands separators, signs and empty text.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        let fen = Self::parse_signed_yuan(text)?;
        if fen.is_negative() {
            return Err(MoneyError::Negative(text.trim().to_owned()));
        }
        Ok(fen)
    }

    /// Like [`Fen::parse_yuan`] but accepts a leading `-`, for statement lines that carry refunds.
    pub fn parse_signed_yuan(text: &str) -> Result<Fen, MoneyError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let shown = || s.chars().take(MAX_YUAN_TEXT).collect::<String>();
        if s.len() > MAX_YUAN_TEXT {
            return Err(MoneyError::OutOfRange(shown()));
        }
        let (negative, unsigned) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (unsigned, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::BadFormat(shown()));
        }
        let fraction_fen = match fraction {
            None => 0,
            Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(MoneyError::BadFormat(shown()));
            }
            Some(f) if f.len() > 2 => return Err(MoneyError::TooManyDecimals(shown())),
            Some(f) => {
                let digits: i64 = f.bytes().fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
                if f.len() == 1 {
                    digits * 10
                } else {
                    digits
                }
            }
        };
        let whole_yuan: i64 = whole.parse().map_err(|_| MoneyError::OutOfRange(shown()))?;
        let magnitude = whole_yuan
            .checked_mul(100)
            .and_then(|f| f.checked_add(fraction_fen))
            .ok_or_else(|| MoneyError::OutOfRange(shown()))?;
        let fen = if negative { -magnitude } else { magnitude };
        Fen::new(fen).map_err(|_| MoneyError::OutOfRange(shown()))
    }

    /// `430.00`, `-0.05`: always two decimals.
    pub fn to_yuan_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    pub fn checked_add(self, other: Fen) -> Result<Fen, MoneyError> {
        self.0
            .checked_add(other.0)
            .ok_or(MoneyError::Overflow)
            .and_then(|v| Fen::new(v).map_err(|_| MoneyError::Overflow))
    }

    pub fn checked_sub(self, other: Fen) -> Result<Fen, MoneyError> {
        self.0
            .checked_sub(other.0)
            .ok_or(MoneyError::Overflow)
            .and_then(|v| Fen::new(v).map_err(|_| MoneyError::Overflow))
    }

    /// Sums amounts, failing instead of wrapping.
    pub fn checked_sum<I: IntoIterator<Item = Fen>>(items: I) -> Result<Fen, MoneyError> {
        items.into_iter().try_fold(Fen::ZERO, Fen::checked_add)
    }
}

/// `430.00元`.
/// How a stored column becomes an amount (within [`MAX_ABS_FEN`]).
impl TryFrom<i64> for Fen {
    type Error = MoneyError;
    fn try_from(fen: i64) -> Result<Self, Self::Error> {
        Fen::new(fen)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}元", self.to_yuan_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_amount_beyond_the_limit_is_refused() {
        assert_eq!(Fen::try_from(43_000), Ok(Fen::new(43_000).unwrap()));
        assert!(Fen::try_from(i64::MAX).is_err());
        assert!(Fen::try_from(i64::MIN).is_err());
    }
    use proptest::prelude::*;

    #[test]
    fn parses_yuan_exactly() {
        assert_eq!(Fen::parse_yuan("430").unwrap().as_fen(), 43000);
        assert_eq!(Fen::parse_yuan("430.5").unwrap().as_fen(), 43050);
        assert_eq!(Fen::parse_yuan("430.50").unwrap().as_fen(), 43050);
        assert_eq!(Fen::parse_yuan(" 0.05 ").unwrap().as_fen(), 5);
        assert_eq!(Fen::parse_yuan("120.00").unwrap().as_fen(), 12000);
        assert_eq!(Fen::parse_yuan("0").unwrap(), Fen::ZERO);
        assert_eq!(Fen::parse_signed_yuan("-430.00").unwrap().as_fen(), -43000);
    }

    #[test]
    fn refuses_what_is_not_yuan() {
        assert!(matches!(
            Fen::parse_yuan("430.505"),
            Err(MoneyError::TooManyDecimals(_))
        ));
        assert!(matches!(
            Fen::parse_yuan("12.345"),
            Err(MoneyError::TooManyDecimals(_))
        ));
        assert!(matches!(
            Fen::parse_yuan("-1"),
            Err(MoneyError::Negative(_))
        ));
        assert_eq!(Fen::parse_yuan(""), Err(MoneyError::Empty));
        for bad in [
            "4.3e2",
            "1e3",
            "1,000",
            "+5",
            "430.",
            ".5",
            "abc",
            "--1",
            "1 000",
            "４３０",
            "NaN",
        ] {
            assert!(
                matches!(Fen::parse_signed_yuan(bad), Err(MoneyError::BadFormat(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Fen::parse_yuan("99999999999999999999"),
            Err(MoneyError::OutOfRange(_))
        ));
        assert!(matches!(
            Fen::parse_yuan(&"9".repeat(40)),
            Err(MoneyError::OutOfRange(_))
        ));
    }

    #[test]
    fn formats_two_decimals() {
        assert_eq!(Fen::new(43000).unwrap().to_yuan_string(), "430.00");
        assert_eq!(Fen::new(-5).unwrap().to_yuan_string(), "-0.05");
        assert_eq!(Fen::new(43050).unwrap().to_string(), "430.50元");
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Fen::new(MAX_ABS_FEN).unwrap();
        assert_eq!(
            max.checked_add(Fen::new(1).unwrap()),
            Err(MoneyError::Overflow)
        );
        assert!(Fen::new(i64::MIN).is_err());
        assert!(Fen::new(i64::MAX).is_err());
        assert_eq!(
            Fen::checked_sum([
                Fen::new(38000).unwrap(),
                Fen::new(2000).unwrap(),
                Fen::new(3000).unwrap()
            ]),
            Ok(Fen::new(43000).unwrap())
        );
        assert!(Fen::new_non_negative(-1).is_err());
    }

    proptest! {
        #[test]
        fn parse_of_formatted_is_identity(fen in -MAX_ABS_FEN..=MAX_ABS_FEN) {
            let amount = Fen::new(fen).unwrap();
            prop_assert_eq!(Fen::parse_signed_yuan(&amount.to_yuan_string()).unwrap(), amount);
        }

        #[test]
        fn arithmetic_never_overflows_silently(a in any::<i64>(), b in any::<i64>()) {
            if let (Ok(x), Ok(y)) = (Fen::new(a), Fen::new(b)) {
                match x.checked_add(y) {
                    Ok(sum) => prop_assert_eq!(i128::from(sum.as_fen()), i128::from(a) + i128::from(b)),
                    Err(_) => prop_assert!((i128::from(a) + i128::from(b)).abs() > i128::from(MAX_ABS_FEN)),
                }
                match x.checked_sub(y) {
                    Ok(d) => prop_assert_eq!(i128::from(d.as_fen()), i128::from(a) - i128::from(b)),
                    Err(_) => prop_assert!((i128::from(a) - i128::from(b)).abs() > i128::from(MAX_ABS_FEN)),
                }
            } else {
                prop_assert!(i128::from(a).abs() > i128::from(MAX_ABS_FEN) || i128::from(b).abs() > i128::from(MAX_ABS_FEN));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = Fen::parse_signed_yuan(&s);
        }
    }
}
