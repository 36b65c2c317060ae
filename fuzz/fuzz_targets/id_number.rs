//! `IdNumber::parse` over arbitrary text: never panics; an accepted number is 18 characters with a
//! correct check character, re-parses to itself as an 18-character input, and its masked form (also
//! what `Debug` shows) never carries the full number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yibao_domain::id_number::check_character;
use yibao_domain::{IdNumber, InputKind};
use yibao_fuzz::today;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match IdNumber::parse(text, today()) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let id = parsed.id_number;
    let full = id.as_str();
    assert_eq!(full.len(), 18);
    assert!(full[..17].bytes().all(|b| b.is_ascii_digit()));
    let check = check_character(&full[..17]).expect("17 digits");
    assert_eq!(full.chars().last(), Some(check));

    let again = IdNumber::parse(full, today()).expect("an accepted number re-parses");
    assert_eq!(again.id_number, id);
    assert_eq!(again.input_kind, InputKind::Eighteen);

    assert!(id.birth_date() <= today());
    assert_eq!(id.address_code(), &full[..6]);

    let masked = id.masked();
    assert_eq!(masked.len(), 18);
    assert_eq!(&masked[..6], &full[..6]);
    assert_eq!(&masked[6..16], "**********");
    assert_eq!(&masked[16..], &full[16..]);
    assert!(!masked.contains(full));
    let debug = format!("{id:?}");
    assert!(!debug.contains(full) && !debug.contains(&full[6..16]));
});
