//! The insured number (参保编号): the number the agency gives a person when they are first
//! enrolled in a region, kept across fee years, re-assessments and changes to their record.
//! Channels print it on their screens and receipts, and tellers may search by it.
//!
//! Format (docs/integrator-guide.md): 16 characters, the region's six-digit code, a nine-digit
//! serial issued in order in that region (from 000000001; numbers are never reused, and a serial
//! may be skipped), and an ISO 7064 MOD 11-2 check character (`0`–`9` or `X`), the same check as
//! an ID number's, so that a mistyped digit is caught before a search. A person who moves to
//! another region is given a number of that region there; their number in the old one stays
//! with their record there.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::region::RegionCode;

/// Characters of an insured number.
pub const INSURED_NUMBER_LEN: usize = 16;
/// The highest serial a region can issue (nine digits).
pub const MAX_INSURED_SERIAL: u64 = 999_999_999;

/// MOD 11-2 weights of the 15 digits before the check character (2^15 … 2^1 mod 11).
const WEIGHTS: [u32; 15] = [10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// A well-formed insured number: 15 digits and their check character, and the region its first
/// six name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InsuredNumber {
    digits: [u8; INSURED_NUMBER_LEN],
    region: RegionCode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsuredNumberError {
    #[error(
        "参保编号应为16位（6位地区代码、9位序号和1位校验码，如 4601000000000012），当前为“{0}”"
    )]
    Malformed(String),
    #[error("参保编号“{0}”的校验码不对，请核对是否输错了某一位")]
    WrongCheck(String),
    #[error("参保编号“{0}”的前6位不是有效的地区代码")]
    UnknownRegion(String),
    #[error("地区 {0} 的参保编号已经用完（最多 999999999 个）")]
    Exhausted(String),
}

impl InsuredNumberError {
    pub const CODE: &'static str = "INVALID_INSURED_NUMBER";
}

fn check_char(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl InsuredNumber {
    /// The number with serial `serial` (1 to [`MAX_INSURED_SERIAL`]) in `region`.
    pub fn issue(region: RegionCode, serial: u64) -> Result<Self, InsuredNumberError> {
        if serial == 0 || serial > MAX_INSURED_SERIAL {
            return Err(InsuredNumberError::Exhausted(region.to_string()));
        }
        let digits = format!("{region}{serial:09}");
        let mut bytes = [0u8; INSURED_NUMBER_LEN];
        bytes[..15].copy_from_slice(digits.as_bytes());
        bytes[15] = check_char(&bytes[..15]);
        Ok(InsuredNumber {
            digits: bytes,
            region,
        })
    }

    /// Parses what a teller or clerk typed: spaces around it are ignored, a lower-case `x` is
    /// read as `X`, and full-width digits as ASCII.
    pub fn parse(input: &str) -> Result<Self, InsuredNumberError> {
        let folded: String = input
            .trim()
            .chars()
            .map(|c| match c {
                '０'..='９' => {
                    char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c)
                }
                'x' | 'ｘ' | 'Ｘ' => 'X',
                c => c,
            })
            .collect();
        let shown: String = input.trim().chars().take(24).collect();
        let bytes: [u8; INSURED_NUMBER_LEN] = folded
            .as_bytes()
            .try_into()
            .map_err(|_| InsuredNumberError::Malformed(shown.clone()))?;
        if !bytes[..15].iter().all(u8::is_ascii_digit)
            || !(bytes[15].is_ascii_digit() || bytes[15] == b'X')
        {
            return Err(InsuredNumberError::Malformed(shown));
        }
        let Ok(region) = RegionCode::parse(&folded[..6]) else {
            return Err(InsuredNumberError::UnknownRegion(shown));
        };
        if check_char(&bytes[..15]) != bytes[15] {
            return Err(InsuredNumberError::WrongCheck(shown));
        }
        Ok(InsuredNumber {
            digits: bytes,
            region,
        })
    }

    pub fn as_str(&self) -> &str {
        // Invariant: ASCII digits and `X`.
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// The region that issued it.
    pub fn region(&self) -> RegionCode {
        self.region
    }

    /// The serial within its region.
    pub fn serial(&self) -> u64 {
        self.as_str()[6..15].parse().unwrap_or_default()
    }
}

/// How a stored column becomes an insured number (checked again).
impl TryFrom<String> for InsuredNumber {
    type Error = InsuredNumberError;
    fn try_from(number: String) -> Result<Self, Self::Error> {
        InsuredNumber::parse(&number)
    }
}

impl fmt::Display for InsuredNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for InsuredNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InsuredNumber({})", self.as_str())
    }
}

impl Serialize for InsuredNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    #[test]
    fn issued_numbers_carry_region_serial_and_check() {
        let n = InsuredNumber::issue(region("460100"), 1).unwrap();
        assert_eq!(n.as_str().len(), 16);
        assert!(n.as_str().starts_with("460100000000001"));
        assert_eq!(n.region(), region("460100"));
        assert_eq!(n.serial(), 1);
        assert_eq!(InsuredNumber::parse(n.as_str()).unwrap(), n);
        let last = InsuredNumber::issue(region("460100"), MAX_INSURED_SERIAL).unwrap();
        assert_eq!(last.serial(), MAX_INSURED_SERIAL);
        assert!(InsuredNumber::issue(region("460100"), 0).is_err());
        assert!(matches!(
            InsuredNumber::issue(region("460100"), MAX_INSURED_SERIAL + 1),
            Err(InsuredNumberError::Exhausted(_))
        ));
    }

    #[test]
    fn the_check_is_the_id_number_check_on_fifteen_digits() {
        // Two zeros before 15 digits leave the MOD 11-2 sum unchanged (weights of the leading
        // digits multiply zero), so the ID number's check of "00" + digits is the same character.
        for serial in [1u64, 7, 42, 99_999, 123_456_789, MAX_INSURED_SERIAL] {
            let n = InsuredNumber::issue(region("320600"), serial).unwrap();
            let id17 = format!("00{}", &n.as_str()[..15]);
            let expected = crate::id_number::check_character(&id17).unwrap();
            assert_eq!(n.as_str().chars().last(), Some(expected), "{n}");
        }
    }

    #[test]
    fn a_mistyped_digit_or_a_swap_is_refused() {
        let n = InsuredNumber::issue(region("460100"), 123_456).unwrap();
        let s = n.as_str();
        for i in 6..15 {
            let mut typo = s.as_bytes().to_vec();
            typo[i] = if typo[i] == b'9' { b'0' } else { typo[i] + 1 };
            let typo = String::from_utf8(typo).unwrap();
            assert!(
                matches!(
                    InsuredNumber::parse(&typo),
                    Err(InsuredNumberError::WrongCheck(_))
                ),
                "{typo}"
            );
        }
        assert!(matches!(
            InsuredNumber::parse("46010000012"),
            Err(InsuredNumberError::Malformed(_))
        ));
        assert!(matches!(
            InsuredNumber::parse("990100000000001X"),
            Err(InsuredNumberError::UnknownRegion(_))
        ));
    }

    #[test]
    fn typed_forms_are_folded() {
        let n = InsuredNumber::issue(region("460100"), 10).unwrap();
        let full_width: String = n
            .as_str()
            .chars()
            .map(|c| {
                c.to_digit(10)
                    .map_or(c, |d| char::from_u32(u32::from('０') + d).unwrap())
            })
            .collect();
        assert_eq!(InsuredNumber::parse(&format!(" {full_width} ")).unwrap(), n);
        let with_x = (1..200)
            .map(|s| InsuredNumber::issue(region("460100"), s).unwrap())
            .find(|n| n.as_str().ends_with('X'))
            .unwrap();
        assert_eq!(
            InsuredNumber::parse(&with_x.as_str().to_lowercase()).unwrap(),
            with_x
        );
    }
}
