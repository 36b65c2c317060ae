//! `PersonName::parse` over arbitrary text: never panics; normalising is idempotent (the normalised
//! name parses to itself); a name is 2 to 40 characters of Han and inner middle dots; it matches
//! the text it came from; the masked form keeps the length and hides the middle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yibao_domain::person_name::{MAX_NAME_CHARS, MIDDLE_DOT, MIN_NAME_CHARS};
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

    let chars: Vec<char> = normal.chars().collect();
    assert!((MIN_NAME_CHARS..=MAX_NAME_CHARS).contains(&chars.len()));
    assert_ne!(chars.first(), Some(&MIDDLE_DOT));
    assert_ne!(chars.last(), Some(&MIDDLE_DOT));
    assert!(!normal.contains("··"));
    assert!(chars.iter().all(|c| !c.is_whitespace() && !c.is_ascii()));

    let masked = name.masked();
    assert_eq!(masked.chars().count(), chars.len());
    assert_ne!(masked, normal, "the masked name shows it whole");
});
