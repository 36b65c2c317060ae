//! `PersonName::parse` over arbitrary text: never panics; normalising is idempotent (the normalised
//! name parses to itself); a name is 2 to 40 perceived characters of Han (each with at most one
//! variation selector) and inner middle dots; it matches the text it came from, and the text
//! without its variation selectors; the masked form keeps the length and hides the middle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yibao_domain::person_name::{
    is_variation_selector, MAX_NAME_CHARS, MIDDLE_DOT, MIN_NAME_CHARS,
};
use yibao_domain::PersonName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let name = match PersonName::parse(text) {
        Ok(name) => name,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let normal = name.as_str();
    let again = PersonName::parse(normal).expect("a normalised name parses");
    assert_eq!(again, name, "normalising twice changed the name");
    assert_eq!(again.as_str(), normal);
    assert!(name.matches(text));
    let bare: String = text.chars().filter(|c| !is_variation_selector(*c)).collect();
    assert!(name.matches(&bare), "no match without the variation selectors");

    let chars: Vec<char> = normal.chars().collect();
    // A variation selector belongs to the character before it: one perceived character.
    let perceived = |s: &str| s.chars().filter(|c| !is_variation_selector(*c)).count();
    assert!((MIN_NAME_CHARS..=MAX_NAME_CHARS).contains(&perceived(normal)));
    assert_ne!(chars.first(), Some(&MIDDLE_DOT));
    assert_ne!(chars.last(), Some(&MIDDLE_DOT));
    assert!(!normal.contains("··"));
    assert!(chars.iter().all(|c| !c.is_whitespace() && !c.is_ascii()));

    let masked = name.masked();
    assert_eq!(perceived(&masked), perceived(normal));
    assert_ne!(masked, normal, "the masked name shows it whole");
});
