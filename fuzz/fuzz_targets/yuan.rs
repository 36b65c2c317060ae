//! `Fen::parse_yuan` and `Fen::parse_signed_yuan` over arbitrary text: never panic; agree with a
//! plain reference reading (`-?digits(.d|.dd)?`, at most 32 bytes, within ±MAX_ABS_FEN); an accepted
//! amount prints with `to_yuan_string` as text that parses back to the same amount.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yibao_domain::money::MAX_ABS_FEN;
use yibao_domain::{Fen, MoneyError};

/// The amount in fen the text means, or `None`: written independently of `money.rs`.
fn reference(text: &str) -> Option<i64> {
    let s = text.trim();
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest.contains('.') && (fraction.is_empty() || fraction.len() > 2) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut fen: i128 = 0;
    for b in whole.bytes() {
        fen = fen * 10 + i128::from(b - b'0');
    }
    let cents = format!("{fraction:0<2}");
    fen = fen * 100 + cents.parse::<i128>().unwrap_or(0);
    if negative {
        fen = -fen;
    }
    i64::try_from(fen)
        .ok()
        .filter(|f| f.unsigned_abs() <= MAX_ABS_FEN.unsigned_abs())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signed = Fen::parse_signed_yuan(text);
    let expected = reference(text);
    assert_eq!(
        signed.as_ref().ok().map(|f| f.as_fen()),
        expected,
        "parse_signed_yuan({text:?}) = {signed:?}"
    );
    let unsigned = Fen::parse_yuan(text);
    match (&signed, &unsigned) {
        (Ok(s), Ok(u)) => assert!(s == u && !u.is_negative()),
        (Ok(s), Err(MoneyError::Negative(_))) => assert!(s.is_negative()),
        (Err(a), Err(b)) => assert_eq!(a, b),
        other => panic!("parse_yuan and parse_signed_yuan disagree on {text:?}: {other:?}"),
    }
    for result in [signed, unsigned] {
        match result {
            Ok(fen) => {
                assert!(fen.as_fen().abs() <= MAX_ABS_FEN);
                let shown = fen.to_yuan_string();
                assert_eq!(Fen::parse_signed_yuan(&shown), Ok(fen), "{shown}");
                if !fen.is_negative() {
                    assert_eq!(Fen::parse_yuan(&shown), Ok(fen), "{shown}");
                }
                let _ = fen.to_string();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
