//! Resident identity number (公民身份号码) per GB 11643-1999.
//!
//! Parsed once into [`IdNumber`], which always holds 18 ASCII characters with an upper-case `X` check
//! character, a valid province prefix and a real birth date. Nothing else in yibao re-checks an ID number.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Serialize, Serializer};

use crate::region::is_province_prefix;

/// Longest raw input looked at; anything longer is refused before any other work.
pub const MAX_ID_INPUT_CHARS: usize = 64;

/// The earliest birth date accepted: 1850-01-01. Every real date from then on is accepted
/// (the standard's own example `440524188001010014` is born in 1880); an earlier one is refused
/// with its own message, never called non-existent.
pub const EARLIEST_BIRTH_YEAR: i32 = 1850;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// A valid 18-character resident identity number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber([u8; 18]);

/// What shape the input had before it became an 18-character number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InputKind {
    /// 18 characters, digit or `X` (either case) as check character.
    #[serde(rename = "18")]
    Eighteen,
    /// 15-digit first-generation number: `19` is inserted before the year and the check computed.
    #[serde(rename = "15")]
    Fifteen,
    /// 17 digits typed on a keypad without `X`: accepted only when the check character is `X`.
    #[serde(rename = "17")]
    Seventeen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

/// Why an input is not a resident identity number. Every variant maps to `INVALID_ID_NUMBER`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("身份证号码为空，请输入18位身份证号码")]
    Empty,
    #[error("身份证号码应为18位（或15位旧号码），当前为{0}位，请核对后重新输入")]
    WrongLength(usize),
    #[error("身份证号码第{position}位“{found}”不是数字，请核对后重新输入")]
    NotADigit { position: usize, found: char },
    /// The 18th character does not match the first 17. The message deliberately does not name the
    /// character that would pass: the typo is usually in another digit, and naming it invites
    /// "fixing" the last one.
    #[error("身份证号码校验不通过：第18位校验码与前17位不符，很可能其中某一位数字输错了（不一定是最后一位），请对照身份证逐位核对")]
    WrongCheck,
    /// 17 digits whose check character is not `X`: a digit is probably missing.
    #[error("输入了17位号码，可能漏输了一位数字，请对照身份证逐位核对后输入完整的18位号码")]
    SeventeenWithoutX,
    /// The birth date digits are not a date of the calendar (`19490230`).
    #[error("身份证号码中的出生日期“{0}”不存在，请核对后重新输入")]
    ImpossibleBirthDate(String),
    /// A real date before [`EARLIEST_BIRTH_YEAR`].
    #[error("身份证号码中的出生日期“{0}”早于1850年，请核对后重新输入")]
    BirthDateTooEarly(NaiveDate),
    #[error("身份证号码中的出生日期“{0}”晚于今天，请核对后重新输入")]
    FutureBirthDate(NaiveDate),
    #[error("身份证号码前两位“{0}”不是有效的省级行政区划代码，请核对后重新输入")]
    UnknownProvince(String),
}

impl IdNumberError {
    pub const CODE: &'static str = "INVALID_ID_NUMBER";
}

/// The outcome of parsing: the number and the shape it was typed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedIdNumber {
    pub id_number: IdNumber,
    pub input_kind: InputKind,
}

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
fn check_char(first17: &[u8; 17]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// The check character for 17 ASCII digits (the first 17 of an ID number); `None` for anything else.
/// For building test and demo numbers; parsing never needs it.
pub fn check_character(first17: &str) -> Option<char> {
    let bytes: [u8; 17] = first17.as_bytes().try_into().ok()?;
    bytes
        .iter()
        .all(u8::is_ascii_digit)
        .then(|| char::from(check_char(&bytes)))
}

/// Folds full-width digits and `Ｘ`/`ｘ` (as Excel and phone keyboards produce them) to ASCII.
fn fold_char(c: char) -> char {
    match c {
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        'Ｘ' | 'ｘ' => 'X',
        'x' => 'X',
        other => other,
    }
}

impl IdNumber {
    /// Parses what a teller, a bank or a roster typed. `today` bounds the birth date.
    pub fn parse(input: &str, today: NaiveDate) -> Result<ParsedIdNumber, IdNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(IdNumberError::Empty);
        }
        let char_count = trimmed.chars().count();
        if char_count > MAX_ID_INPUT_CHARS {
            return Err(IdNumberError::WrongLength(char_count));
        }
        let chars: Vec<char> = trimmed.chars().map(fold_char).collect();
        let (digits17, kind, given_check) = match chars.len() {
            18 => (
                Self::digits(&chars[..17], 0)?,
                InputKind::Eighteen,
                Some(chars[17]),
            ),
            17 => (Self::digits(&chars, 0)?, InputKind::Seventeen, None),
            15 => {
                let legacy = Self::digits(&chars, 0)?;
                let mut expanded = [0u8; 17];
                expanded[..6].copy_from_slice(&legacy[..6]);
                expanded[6..8].copy_from_slice(b"19");
                expanded[8..].copy_from_slice(&legacy[6..15]);
                (expanded.to_vec(), InputKind::Fifteen, None)
            }
            n => return Err(IdNumberError::WrongLength(n)),
        };
        let mut first17 = [0u8; 17];
        first17.copy_from_slice(&digits17[..17]);
        let expected = check_char(&first17);
        match (kind, given_check) {
            (InputKind::Eighteen, Some(found)) => {
                if !(found.is_ascii_digit() || found == 'X') {
                    return Err(IdNumberError::NotADigit {
                        position: 18,
                        found,
                    });
                }
                if found as u32 != u32::from(expected) {
                    return Err(IdNumberError::WrongCheck);
                }
            }
            (InputKind::Seventeen, _) if expected != b'X' => {
                return Err(IdNumberError::SeventeenWithoutX);
            }
            _ => {}
        }
        let prefix = std::str::from_utf8(&first17[..2]).unwrap_or("");
        if !is_province_prefix(prefix) {
            return Err(IdNumberError::UnknownProvince(prefix.to_owned()));
        }
        let mut bytes = [0u8; 18];
        bytes[..17].copy_from_slice(&first17);
        bytes[17] = expected;
        let id_number = IdNumber(bytes);
        let birth = id_number.decode_birth_date().ok_or_else(|| {
            IdNumberError::ImpossibleBirthDate(String::from_utf8_lossy(&bytes[6..14]).into_owned())
        })?;
        if birth.year() < EARLIEST_BIRTH_YEAR {
            return Err(IdNumberError::BirthDateTooEarly(birth));
        }
        if birth > today {
            return Err(IdNumberError::FutureBirthDate(birth));
        }
        Ok(ParsedIdNumber {
            id_number,
            input_kind: kind,
        })
    }

    /// Checks that every character is an ASCII digit; `offset` is added to reported positions.
    fn digits(chars: &[char], offset: usize) -> Result<Vec<u8>, IdNumberError> {
        chars
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if c.is_ascii_digit() {
                    Ok(c as u8)
                } else {
                    Err(IdNumberError::NotADigit {
                        position: offset + i + 1,
                        found: c,
                    })
                }
            })
            .collect()
    }

    fn decode_birth_date(&self) -> Option<NaiveDate> {
        let num = |range: std::ops::Range<usize>| -> u32 {
            self.0[range]
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let year = i32::try_from(num(6..10)).ok()?;
        NaiveDate::from_ymd_opt(year, num(10..12), num(12..14))
    }

    /// The full 18 characters. Only for storage and matching: never log it (use [`IdNumber::masked`]).
    pub fn as_str(&self) -> &str {
        // Invariant: constructed only from ASCII digits and `X`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Invariant: `parse` refused any number whose birth date does not decode.
        self.decode_birth_date().unwrap_or(NaiveDate::MIN)
    }

    pub fn sex(&self) -> Sex {
        if (self.0[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The 6-digit address code (where the number was issued, not where the person lives now).
    pub fn address_code(&self) -> &str {
        &self.as_str()[..6]
    }

    /// Completed years of age on `date` (see [`crate::calendar::completed_years`]).
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        crate::calendar::completed_years(self.birth_date(), date)
    }

    /// `320602**********12`: the first six and the last two characters, as channels and the public see it.
    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!("{}{}{}", &s[..6], "*".repeat(10), &s[16..])
    }
}

/// How a stored column becomes an ID number: the 18-character form yibao stores, its check
/// character and birth date checked again (a stored number is never trusted blindly), but against
/// no "today": it was not in the future when stored.
impl TryFrom<String> for IdNumber {
    type Error = IdNumberError;
    fn try_from(stored: String) -> Result<Self, Self::Error> {
        // Every row a search reads comes through here: the stored form is checked in place,
        // without the allocations of what parsing typed input needs.
        let Ok(bytes) = <[u8; 18]>::try_from(stored.as_bytes()) else {
            return Err(IdNumberError::WrongLength(stored.chars().count()));
        };
        let mut first17 = [0u8; 17];
        first17.copy_from_slice(&bytes[..17]);
        if let Some(position) = first17.iter().position(|b| !b.is_ascii_digit()) {
            return Err(IdNumberError::NotADigit {
                position: position + 1,
                found: char::from(first17[position]),
            });
        }
        if bytes[17] != check_char(&first17) {
            return Err(IdNumberError::WrongCheck);
        }
        let prefix = std::str::from_utf8(&bytes[..2]).unwrap_or("");
        if !is_province_prefix(prefix) {
            return Err(IdNumberError::UnknownProvince(prefix.to_owned()));
        }
        let id_number = IdNumber(bytes);
        let birth = id_number.decode_birth_date().ok_or_else(|| {
            IdNumberError::ImpossibleBirthDate(String::from_utf8_lossy(&bytes[6..14]).into_owned())
        })?;
        if birth.year() < EARLIEST_BIRTH_YEAR {
            return Err(IdNumberError::BirthDateTooEarly(birth));
        }
        Ok(id_number)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

/// Serialises masked: a full ID number never leaves yibao by accident. Use `as_str` where it must.
impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn parse(s: &str) -> Result<ParsedIdNumber, IdNumberError> {
        IdNumber::parse(s, today())
    }

    #[test]
    fn accepts_the_standard_example() {
        // The example in GB 11643-1999.
        let p = parse("11010519491231002X").unwrap();
        assert_eq!(p.id_number.as_str(), "11010519491231002X");
        assert_eq!(p.input_kind, InputKind::Eighteen);
        assert_eq!(
            p.id_number.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        assert_eq!(p.id_number.sex(), Sex::Female);
        assert_eq!(p.id_number.address_code(), "110105");
    }

    #[test]
    fn a_stored_number_is_its_18_characters_exactly() {
        let stored = IdNumber::try_from("11010519491231002X".to_owned()).unwrap();
        assert_eq!(stored.as_str(), "11010519491231002X");
        // What a teller may type is no stored number: a corrupt row is found, not repaired.
        for typed in [
            "11010519491231002x",
            " 11010519491231002X",
            "110105491231002",
        ] {
            assert!(IdNumber::try_from(typed.to_owned()).is_err(), "{typed}");
        }
        assert_eq!(
            IdNumber::try_from("110105194912310021".to_owned()),
            Err(IdNumberError::WrongCheck)
        );
        // The stored form is checked as parsing checks typed input.
        for stored in [
            "11010519491231002X",
            "320602198001011235",
            "990105194912310028",
        ] {
            assert_eq!(
                IdNumber::try_from(stored.to_owned()).ok(),
                IdNumber::parse(stored, NaiveDate::MAX)
                    .ok()
                    .map(|p| p.id_number),
                "{stored}"
            );
        }
    }

    #[test]
    fn accepts_lower_case_x_and_full_width_input() {
        assert_eq!(
            parse("11010519491231002x").unwrap().id_number.as_str(),
            "11010519491231002X"
        );
        assert_eq!(
            parse("１１０１０５１９４９１２３１００２Ｘ")
                .unwrap()
                .id_number
                .as_str(),
            "11010519491231002X"
        );
        assert_eq!(
            parse("  11010519491231002X\t").unwrap().input_kind,
            InputKind::Eighteen
        );
    }

    #[test]
    fn digit_check_character() {
        let p = parse("320602198001011235").unwrap();
        assert_eq!(p.id_number.sex(), Sex::Male);
        assert_eq!(p.id_number.masked(), "320602**********35");
    }

    #[test]
    fn converts_fifteen_digit_numbers() {
        let p = parse("110105491231002").unwrap();
        assert_eq!(p.input_kind, InputKind::Fifteen);
        assert_eq!(p.id_number.as_str(), "11010519491231002X");
    }

    #[test]
    fn seventeen_digits_only_when_check_is_x() {
        let p = parse("11010519491231002").unwrap();
        assert_eq!(p.input_kind, InputKind::Seventeen);
        assert_eq!(p.id_number.as_str(), "11010519491231002X");
        // 32060219800101123 has check 5: a dropped digit, not a missing X.
        assert_eq!(
            parse("32060219800101123").unwrap_err(),
            IdNumberError::SeventeenWithoutX
        );
    }

    #[test]
    fn refuses_wrong_input() {
        assert_eq!(
            parse("110105194912310021").unwrap_err(),
            IdNumberError::WrongCheck
        );
        assert_eq!(parse("").unwrap_err(), IdNumberError::Empty);
        assert_eq!(
            parse("1101051949123100").unwrap_err(),
            IdNumberError::WrongLength(16)
        );
        assert_eq!(
            parse("1101051949123100211").unwrap_err(),
            IdNumberError::WrongLength(19)
        );
        assert!(matches!(
            parse("1101051949-231002X").unwrap_err(),
            IdNumberError::NotADigit {
                position: 11,
                found: '-'
            }
        ));
        assert!(matches!(
            parse("11010519491231002Y").unwrap_err(),
            IdNumberError::NotADigit { position: 18, .. }
        ));
        // Province 99 does not exist (check character computed to be right otherwise).
        let mut body = *b"99010519491231002";
        let c = check_char(&body);
        let mut s = String::from_utf8(body.to_vec()).unwrap();
        s.push(char::from(c));
        assert_eq!(
            parse(&s).unwrap_err(),
            IdNumberError::UnknownProvince("99".into())
        );
        // 30 February.
        body = *b"11010519490230002";
        let mut s = String::from_utf8(body.to_vec()).unwrap();
        s.push(char::from(check_char(&body)));
        assert!(matches!(
            parse(&s).unwrap_err(),
            IdNumberError::ImpossibleBirthDate(_)
        ));
        // Born in 1849.
        body = *b"11010518491230002";
        let mut s = String::from_utf8(body.to_vec()).unwrap();
        s.push(char::from(check_char(&body)));
        assert!(matches!(
            parse(&s).unwrap_err(),
            IdNumberError::BirthDateTooEarly(_)
        ));
        // Born tomorrow.
        body = *b"11010520261123002";
        let mut s = String::from_utf8(body.to_vec()).unwrap();
        s.push(char::from(check_char(&body)));
        assert!(matches!(
            parse(&s).unwrap_err(),
            IdNumberError::FutureBirthDate(_)
        ));
        assert!(matches!(
            parse(&"1".repeat(200)).unwrap_err(),
            IdNumberError::WrongLength(200)
        ));
    }

    /// Issue 10, defect 9: the standard's own example, born 1880, is a real date and accepted;
    /// every real date from 1850 on is; earlier and future dates get their own messages.
    #[test]
    fn real_birth_dates_from_1850_are_accepted() {
        let p = parse("440524188001010014").unwrap();
        assert_eq!(
            p.id_number.birth_date(),
            NaiveDate::from_ymd_opt(1880, 1, 1).unwrap()
        );
        let with_birth = |birth: &str| {
            let body = format!("110105{birth}002");
            let mut s = body.clone();
            s.push(check_character(&body).unwrap());
            parse(&s)
        };
        assert!(with_birth("18500101").is_ok());
        assert!(with_birth("18960229").is_ok());
        let early = with_birth("18491231").unwrap_err();
        assert!(matches!(early, IdNumberError::BirthDateTooEarly(_)));
        let message = early.to_string();
        assert!(
            message.contains("1849-12-31") && message.contains("1850"),
            "{message}"
        );
        assert!(!message.contains("不存在"), "{message}");
        // 1900 was not a leap year: 29 February 1900 really does not exist.
        let none = with_birth("19000229").unwrap_err();
        assert!(matches!(none, IdNumberError::ImpossibleBirthDate(_)));
        assert!(none.to_string().contains("不存在"));
        let future = with_birth("20261123").unwrap_err();
        assert!(matches!(future, IdNumberError::FutureBirthDate(_)));
        assert!(!future.to_string().contains("不存在"));
    }

    /// Issue 10: the check-digit message must not name the digit that would pass (clerks then
    /// "fix" the last digit instead of finding the real typo).
    #[test]
    fn check_digit_messages_do_not_name_the_passing_digit() {
        let wrong = parse("110105194912310021").unwrap_err().to_string();
        assert!(!wrong.contains('X') && !wrong.contains("应为"), "{wrong}");
        assert!(
            wrong.contains("校验") && wrong.contains("逐位核对"),
            "{wrong}"
        );
        let seventeen = parse("32060219800101123").unwrap_err().to_string();
        assert!(!seventeen.contains('5'), "{seventeen}");
        assert!(seventeen.contains("漏输"), "{seventeen}");
    }

    #[test]
    fn check_character_completes_a_number() {
        assert_eq!(check_character("11010519491231002"), Some('X'));
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("1101051949123100a"), None);
    }

    #[test]
    fn age_counts_completed_years() {
        let id = parse("11010519491231002X").unwrap().id_number;
        assert_eq!(
            id.age_on(NaiveDate::from_ymd_opt(1967, 12, 30).unwrap()),
            17
        );
        assert_eq!(
            id.age_on(NaiveDate::from_ymd_opt(1967, 12, 31).unwrap()),
            18
        );
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()), 0);
    }

    #[test]
    fn debug_and_serde_are_masked() {
        let id = parse("11010519491231002X").unwrap().id_number;
        assert_eq!(format!("{id:?}"), "IdNumber(110105**********2X)");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn valid_id() -> impl Strategy<Value = String> {
            let provinces = crate::region::PROVINCE_PREFIXES;
            (
                proptest::sample::select(provinces.to_vec()),
                0u32..10_000,
                0i64..64_000,
                0u32..1000,
            )
                .prop_map(|(prov, county, days, seq)| {
                    let birth =
                        NaiveDate::from_ymd_opt(1850, 1, 1).unwrap() + chrono::Duration::days(days);
                    let body = format!("{prov}{county:04}{}{seq:03}", birth.format("%Y%m%d"));
                    let mut arr = [0u8; 17];
                    arr.copy_from_slice(body.as_bytes());
                    format!("{body}{}", char::from(check_char(&arr)))
                })
        }

        proptest! {
            #[test]
            fn parse_of_formatted_is_identity(s in valid_id()) {
                let p = parse(&s).unwrap();
                prop_assert_eq!(p.id_number.as_str(), s.as_str());
                let again = parse(p.id_number.as_str()).unwrap();
                prop_assert_eq!(again.id_number, p.id_number);
            }

            #[test]
            fn one_changed_digit_is_caught(s in valid_id(), pos in 0usize..17, delta in 1u8..10) {
                let mut bytes = s.into_bytes();
                bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
                let changed = String::from_utf8(bytes).unwrap();
                // A single substituted digit always breaks MOD 11-2, or the date or province.
                prop_assert!(parse(&changed).is_err());
            }

            #[test]
            fn arbitrary_input_never_panics(s in ".{0,80}") {
                let _ = parse(&s);
            }

            #[test]
            fn a_stored_number_reads_as_parsing_reads_it(
                s in valid_id(), pos in 0usize..18, c in "[0-9Xx ]",
            ) {
                // One character replaced, or none: the stored form's check agrees with parsing's
                // wherever the text is already canonical.
                for candidate in [s.clone(), {
                    let mut chars: Vec<char> = s.chars().collect();
                    chars[pos] = c.chars().next().unwrap_or('0');
                    chars.into_iter().collect::<String>()
                }] {
                    let stored = IdNumber::try_from(candidate.clone()).ok();
                    let parsed = IdNumber::parse(&candidate, NaiveDate::MAX)
                        .ok()
                        .map(|p| p.id_number)
                        .filter(|id| id.as_str() == candidate);
                    prop_assert_eq!(stored, parsed, "{}", candidate);
                }
            }
        }
    }
}
