//! Person names (姓名) as the agency holds them (预留姓名).
//!
//! Normalised once: surrounding white space trimmed and every middle-dot variant of minority names
//! (`·` U+00B7, `•` U+2022, `・` U+30FB, `･` U+FF65, `‧` U+2027, `．` U+FF0E, `.`) unified to `·` U+00B7.
//! Two names match when their normalised forms are equal, with or without variation selectors.
//!
//! A Han character may carry one ideographic variation selector (异体字选择符: U+FE00–FE0F,
//! U+E0100–E01EF) naming the glyph a registry chose for a rare character; it is kept and output
//! exactly as given. Lengths and masking count perceived characters (grapheme clusters, by
//! `unicode-segmentation`): a base and its selector are one, and so is a character outside the BMP.
//!
//! A `?` (or `？`, or the replacement character U+FFFD) where a character should be is refused as
//! [`PersonNameError::LostCharacter`]: it is what a rare character becomes when a file is saved in
//! an encoding that cannot hold it (Excel's plain “CSV” on Chinese Windows is GBK, which has no
//! 𪚥), and storing it would lose the person's name for good.

use std::fmt;

use serde::{Serialize, Serializer};
use unicode_segmentation::UnicodeSegmentation;

pub const MIN_NAME_CHARS: usize = 2;
/// Long enough for transcribed minority names (e.g. 阿卜杜热西提·阿卜杜克力木…), short enough to bound work.
pub const MAX_NAME_CHARS: usize = 40;
/// Raw input longer than this (in characters) is refused before normalising.
const MAX_RAW_NAME_CHARS: usize = 200;

pub const MIDDLE_DOT: char = '\u{00B7}';

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonNameError {
    #[error("姓名不能为空")]
    Empty,
    #[error("姓名应为{MIN_NAME_CHARS}至{MAX_NAME_CHARS}个字，当前为{0}个字")]
    WrongLength(usize),
    #[error("姓名中含有不允许的字符{}，只能使用汉字和间隔号“·”", describe_char(*.0))]
    BadCharacter(char),
    #[error("姓名中的异体字选择符{}只能紧跟在一个汉字之后", describe_char(*.0))]
    MisplacedSelector(char),
    #[error("姓名中的间隔号“·”不能在开头、结尾或连续出现")]
    MisplacedDot,
    /// A `?`, `？` or U+FFFD standing where a character was lost to an encoding.
    #[error(
        "姓名中有{}，这不是汉字，通常是某个生僻字在转换编码时（例如花名册另存为GBK编码的CSV）丢失后留下的占位符：请按户口簿或身份证核对姓名，录入原字",
        describe_char(*.0)
    )]
    LostCharacter(char),
}

impl PersonNameError {
    pub const CODE: &'static str = "INVALID_NAME";
    /// The code of [`PersonNameError::LostCharacter`] where a finer code is reported (a roster's
    /// rejection report); HTTP answers keep [`PersonNameError::CODE`].
    pub const LOST_CHARACTER_CODE: &'static str = "NAME_CHARACTER_LOST";

    /// [`PersonNameError::LOST_CHARACTER_CODE`] for a lost character, else
    /// [`PersonNameError::CODE`].
    pub fn code(&self) -> &'static str {
        match self {
            PersonNameError::LostCharacter(_) => Self::LOST_CHARACTER_CODE,
            _ => Self::CODE,
        }
    }
}

/// What a character lost to an encoding leaves in a name: `?` (Excel and most converters), the
/// full-width `？`, or U+FFFD (a decoder's replacement character).
pub fn is_lost_character_mark(c: char) -> bool {
    matches!(c, '?' | '\u{FF1F}' | '\u{FFFD}')
}

/// An ideographic variation selector: U+FE00–FE0F (standardized) or U+E0100–E01EF (IVS).
pub fn is_variation_selector(c: char) -> bool {
    matches!(c as u32, 0xFE00..=0xFE0F | 0xE0100..=0xE01EF)
}

/// A character as a clerk can identify it in a message: visible ones in quotes with their code
/// point, invisible ones by code point and kind (never an invisible character between quotes).
pub fn describe_char(c: char) -> String {
    let code = format!("U+{:04X}", c as u32);
    let kind = if is_variation_selector(c) {
        Some("异体字选择符")
    } else if matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}') {
        Some("零宽字符")
    } else if c == ' ' || c == '\u{3000}' {
        Some("空格")
    } else if c.is_whitespace() {
        Some("空白字符")
    } else if c.is_control() {
        Some("控制字符")
    } else if matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF) {
        Some("私用区字符，可能是系统外造的字")
    } else if matches!(c as u32, 0xFFF0..=0xFFFF | 0xE0000..=0xE007F) || c == '\u{00AD}' {
        Some("格式字符")
    } else {
        None
    };
    match kind {
        Some(kind) => format!("{code}（{kind}）"),
        None => format!("“{c}”（{code}）"),
    }
}

fn is_middle_dot_variant(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}' | '\u{2022}' | '\u{30FB}' | '\u{FF65}' | '\u{2027}' | '\u{FF0E}' | '.'
    )
}

/// Han ideographs: the unified blocks, extensions A to H and the compatibility blocks, plus `〇`.
fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3007
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF
        | 0x20000..=0x2FA1F
        | 0x30000..=0x323AF)
}

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PersonNameError::Empty);
        }
        let raw_count = trimmed.chars().count();
        if raw_count > MAX_RAW_NAME_CHARS {
            return Err(PersonNameError::WrongLength(raw_count));
        }
        let mut out = String::with_capacity(trimmed.len());
        let mut previous_was_dot = true; // a dot may not open the name
                                         // A selector may follow a Han character that has none yet.
        let mut selector_allowed = false;
        for c in trimmed.chars() {
            if is_middle_dot_variant(c) {
                if previous_was_dot {
                    return Err(PersonNameError::MisplacedDot);
                }
                out.push(MIDDLE_DOT);
                previous_was_dot = true;
                selector_allowed = false;
            } else if is_han(c) {
                out.push(c);
                previous_was_dot = false;
                selector_allowed = true;
            } else if is_variation_selector(c) {
                if !selector_allowed {
                    return Err(PersonNameError::MisplacedSelector(c));
                }
                out.push(c);
                selector_allowed = false;
            } else if is_lost_character_mark(c) {
                return Err(PersonNameError::LostCharacter(c));
            } else {
                return Err(PersonNameError::BadCharacter(c));
            }
        }
        if previous_was_dot {
            return Err(PersonNameError::MisplacedDot);
        }
        let count = out.graphemes(true).count();
        if !(MIN_NAME_CHARS..=MAX_NAME_CHARS).contains(&count) {
            return Err(PersonNameError::WrongLength(count));
        }
        Ok(PersonName(out))
    }

    /// The full normalised name. Never log it (use [`PersonName::masked`]).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `张*三` for three characters and more (first and last kept), `张*` for two; middle dots stay.
    /// At least one Han character is always hidden: `阿·依` (two characters around a dot, where
    /// keeping the first and the last would show the whole name) masks as `阿·*`.
    ///
    /// Counted per perceived character: a character with its variation selector is one, and is
    /// kept or hidden whole.
    pub fn masked(&self) -> String {
        const DOT: &str = "\u{00B7}";
        let chars: Vec<&str> = self.0.graphemes(true).collect();
        match chars.as_slice() {
            [first] => format!("{first}*"),
            [first, _] => format!("{first}*"),
            [first, dot, _] if *dot == DOT => format!("{first}{MIDDLE_DOT}*"),
            [first, middle @ .., last] => {
                let stars: String = middle
                    .iter()
                    .map(|&c| if c == DOT { MIDDLE_DOT } else { '*' })
                    .collect();
                format!("{first}{stars}{last}")
            }
            [] => String::new(),
        }
    }

    /// The name without its variation selectors: what a keyboard without them types.
    pub fn without_selectors(&self) -> String {
        self.0
            .chars()
            .filter(|&c| !is_variation_selector(c))
            .collect()
    }

    /// Whether `other` (as a channel typed it) names this person: equal after normalising both,
    /// with or without variation selectors (a channel's keyboard may not have them, and a name
    /// typed with one matches a record kept without).
    pub fn matches(&self, other: &str) -> bool {
        PersonName::parse(other)
            .is_ok_and(|n| n == *self || n.without_selectors() == self.without_selectors())
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

/// Serialises masked, like [`crate::IdNumber`]: use `as_str` where the full name must go out.
impl Serialize for PersonName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unifies_middle_dots_and_trims() {
        let a = PersonName::parse(" 阿依古丽·买买提 ").unwrap();
        for variant in [
            "阿依古丽•买买提",
            "阿依古丽・买买提",
            "阿依古丽.买买提",
            "阿依古丽･买买提",
        ] {
            assert_eq!(PersonName::parse(variant).unwrap(), a, "{variant}");
            assert!(a.matches(variant));
        }
        assert_eq!(a.as_str(), "阿依古丽·买买提");
    }

    #[test]
    fn masks_like_the_spec() {
        assert_eq!(PersonName::parse("张三丰").unwrap().masked(), "张*丰");
        assert_eq!(PersonName::parse("张三").unwrap().masked(), "张*");
        assert_eq!(PersonName::parse("欧阳修远").unwrap().masked(), "欧**远");
        assert_eq!(
            PersonName::parse("阿依·买买提").unwrap().masked(),
            "阿*·**提"
        );
        // Found by the person_name fuzz target: first and last kept around a lone dot showed it all.
        assert_eq!(PersonName::parse("阿·依").unwrap().masked(), "阿·*");
        assert_eq!(PersonName::parse("阿·依买").unwrap().masked(), "阿·*买");
        assert_eq!(
            format!("{:?}", PersonName::parse("张三丰").unwrap()),
            "PersonName(张*丰)"
        );
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(PersonName::parse("  ").unwrap_err(), PersonNameError::Empty);
        assert_eq!(
            PersonName::parse("张").unwrap_err(),
            PersonNameError::WrongLength(1)
        );
        assert_eq!(
            PersonName::parse("张 三").unwrap_err(),
            PersonNameError::BadCharacter(' ')
        );
        assert_eq!(
            PersonName::parse("Zhang").unwrap_err(),
            PersonNameError::BadCharacter('Z')
        );
        assert_eq!(
            PersonName::parse("·张三").unwrap_err(),
            PersonNameError::MisplacedDot
        );
        assert_eq!(
            PersonName::parse("张三·").unwrap_err(),
            PersonNameError::MisplacedDot
        );
        assert_eq!(
            PersonName::parse("张··三").unwrap_err(),
            PersonNameError::MisplacedDot
        );
        assert!(matches!(
            PersonName::parse(&"张".repeat(41)).unwrap_err(),
            PersonNameError::WrongLength(41)
        ));
        assert!(!PersonName::parse("张三").unwrap().matches("张四"));
        assert!(matches!(
            PersonName::parse(&"张".repeat(MAX_RAW_NAME_CHARS + 1)).unwrap_err(),
            PersonNameError::WrongLength(201)
        ));
    }

    #[test]
    fn rare_characters_outside_the_bmp_count_as_one() {
        // Ext A 䶮, Ext B (outside the BMP) 𪚥 𠀾 𡒊.
        for name in ["刘䶮", "王𪚥", "𠀾𡒊", "李𪚥明"] {
            let parsed = PersonName::parse(name).unwrap();
            assert_eq!(parsed.as_str(), name);
            assert!(parsed.matches(name));
        }
        assert_eq!(PersonName::parse("王𪚥").unwrap().masked(), "王*");
        assert_eq!(PersonName::parse("𠀾𡒊").unwrap().masked(), "𠀾*");
        assert_eq!(PersonName::parse("李𪚥明").unwrap().masked(), "李*明");
        assert_eq!(PersonName::parse("𠀾𪚥𡒊").unwrap().masked(), "𠀾*𡒊");
    }

    #[test]
    fn variation_sequences_are_kept_counted_as_one_and_matched_either_way() {
        // 葛 followed by an ideographic variation selector (U+E0100), and one of U+FE00.
        let with_ivs = "葛\u{E0100}亮";
        let name = PersonName::parse(with_ivs).unwrap();
        assert_eq!(name.as_str(), with_ivs, "stored and output as given");
        assert_eq!(
            name.masked(),
            "葛\u{E0100}*",
            "the base and its selector are one"
        );
        assert!(name.matches("葛亮"), "typed without the selector");
        assert!(name.matches(with_ivs));
        assert!(PersonName::parse("葛亮").unwrap().matches(with_ivs));
        assert!(!name.matches("葛明"));
        let three = PersonName::parse("诸\u{FE00}葛\u{E0101}亮").unwrap();
        assert_eq!(three.masked(), "诸\u{FE00}*亮");
        // Forty perceived characters, each with a selector, are within the limit.
        let long: String = "葛\u{E0100}".repeat(MAX_NAME_CHARS);
        assert!(PersonName::parse(&long).is_ok());
        assert!(matches!(
            PersonName::parse(&"葛\u{E0100}".repeat(MAX_NAME_CHARS + 1)).unwrap_err(),
            PersonNameError::WrongLength(41)
        ));
    }

    #[test]
    fn a_refused_character_is_named_by_code_point_and_kind() {
        for (input, refused) in [
            ("\u{E0100}葛亮", '\u{E0100}'),
            ("葛\u{E0100}\u{E0101}亮", '\u{E0101}'),
            ("阿依·\u{FE00}买买提", '\u{FE00}'),
        ] {
            let err = PersonName::parse(input).unwrap_err();
            assert_eq!(err, PersonNameError::MisplacedSelector(refused), "{input}");
            let message = err.to_string();
            assert!(
                message.contains(&format!("U+{:04X}（异体字选择符）", refused as u32)),
                "{message}"
            );
            assert!(
                !message.contains(refused),
                "no invisible character in the message"
            );
        }
        let message = PersonName::parse("张\u{200B}三").unwrap_err().to_string();
        assert!(message.contains("U+200B（零宽字符）"), "{message}");
        assert!(!message.contains('\u{200B}'));
        let message = PersonName::parse("张 三").unwrap_err().to_string();
        assert!(message.contains("U+0020（空格）"), "{message}");
        let message = PersonName::parse("Zhang").unwrap_err().to_string();
        assert!(message.contains("“Z”（U+005A）"), "{message}");
    }

    #[test]
    fn a_question_mark_is_a_character_lost_to_an_encoding() {
        for (input, mark) in [
            ("王?明", '?'),
            ("?明华", '?'),
            ("刘？", '\u{FF1F}'),
            ("葛\u{FFFD}亮", '\u{FFFD}'),
        ] {
            let err = PersonName::parse(input).unwrap_err();
            assert_eq!(err, PersonNameError::LostCharacter(mark), "{input}");
            assert_eq!(err.code(), "NAME_CHARACTER_LOST");
            let message = err.to_string();
            assert!(
                message.contains(&format!("U+{:04X}", mark as u32)),
                "{message}"
            );
            assert!(message.contains("生僻字"), "{message}");
        }
        assert_eq!(
            PersonName::parse("张 三").unwrap_err().code(),
            PersonNameError::CODE
        );
    }

    fn han() -> impl Strategy<Value = char> {
        (0x4E00u32..=0x9FFF).prop_map(|c| char::from_u32(c).unwrap())
    }

    proptest! {
        #[test]
        fn parse_of_formatted_is_identity(
            parts in proptest::collection::vec(proptest::collection::vec(han(), 1..6), 1..4)
                .prop_filter("length bounds", |p| {
                    let n: usize = p.iter().map(Vec::len).sum::<usize>() + p.len() - 1;
                    (MIN_NAME_CHARS..=MAX_NAME_CHARS).contains(&n)
                })
        ) {
            let s = parts.iter().map(|p| p.iter().collect::<String>()).collect::<Vec<_>>().join("·");
            let name = PersonName::parse(&s).unwrap();
            prop_assert_eq!(name.as_str(), s.as_str());
            prop_assert_eq!(PersonName::parse(name.as_str()).unwrap(), name.clone());
            prop_assert_eq!(name.masked().chars().count(), name.as_str().chars().count().max(2));
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,300}") {
            let _ = PersonName::parse(&s);
        }
    }
}
