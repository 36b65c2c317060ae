//! The channel protocol's signatures (`yibao_channel_client::signing`, which the server's
//! `channel/auth.rs` and the client both use) over arbitrary header values and bodies.
//!
//! The request headers are read the way the server reads them (timestamp trimmed and parsed as
//! `i64`, nonce checked, signature compared), responses signed as the server signs them. Asserted:
//! - nothing panics, whatever the text;
//! - a signature made with the key verifies, and is 64 lowercase hex digits;
//! - an arbitrary signature header verifies only when it is byte for byte the right signature;
//! - after one mutation (method, path, timestamp, nonce, body, status, one signature digit or the
//!   key) the old signature no longer verifies, unless the string to sign is byte-equal (or the
//!   key is the same HMAC key: RFC 2104 pads short keys with zeros);
//! - for wire-valid parts (method a token, path without line breaks, nonce 16–64 alphanumerics)
//!   different requests always give different strings to sign (no ambiguity in the canonical form).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use yibao_channel_client::signing::{
    request_string_to_sign, response_string_to_sign, sign, timestamp_fresh, valid_nonce, verify,
};

const KEY: &[u8] = b"demo-secret-wechat-pay-000";
const NOW: i64 = 1_604_283_300;

#[derive(Arbitrary, Debug)]
enum Mutation {
    Method(String),
    Path(String),
    Timestamp(i64),
    Nonce(String),
    Body(Vec<u8>),
    Status(u16),
    SignatureDigit { index: u8, digit: u8 },
    Key(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    path: String,
    timestamp_header: String,
    nonce: String,
    body: Vec<u8>,
    status: u16,
    signature_header: String,
    mutation: Mutation,
}

/// The request parts as they can arrive on the wire: the string to sign is unambiguous for these.
fn wire_valid(method: &str, path: &str, nonce: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_alphabetic())
        && !path.contains(['\n', '\r'])
        && valid_nonce(nonce)
}

/// The 64-byte block HMAC-SHA256 keys with, for keys up to a block long.
fn same_hmac_key(a: &[u8], b: &[u8]) -> bool {
    a.len() <= 64
        && b.len() <= 64
        && a.iter()
            .rev()
            .skip_while(|&&x| x == 0)
            .eq(b.iter().rev().skip_while(|&&x| x == 0))
}

fn is_lower_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fuzz_target!(|input: Input| {
    let Input {
        method,
        path,
        timestamp_header,
        nonce,
        body,
        status,
        signature_header,
        mutation,
    } = input;
    // As the server reads Yibao-Timestamp.
    let Ok(timestamp) = timestamp_header.trim().parse::<i64>() else {
        return;
    };
    let _ = timestamp_fresh(timestamp, NOW);
    let _ = valid_nonce(&nonce);

    let request = request_string_to_sign(&method, &path, timestamp, &nonce, &body);
    let signature = sign(KEY, &request);
    assert!(is_lower_hex(&signature));
    assert!(verify(KEY, &request, &signature));
    if verify(KEY, &request, &signature_header) {
        assert_eq!(
            signature_header, signature,
            "a signature not made with the key was accepted"
        );
    }

    // As the client reads a response's Yibao-Timestamp: canonical decimal only.
    let response = response_string_to_sign(status, &path, timestamp, &nonce, &body);
    let response_signature = sign(KEY, &response);
    assert!(verify(KEY, &response, &response_signature));

    let valid = wire_valid(&method, &path, &nonce);
    let mutated_request = |m: &str, p: &str, t: i64, n: &str, b: &[u8]| {
        let changed = (m, p, t, n, b)
            != (
                method.as_str(),
                path.as_str(),
                timestamp,
                nonce.as_str(),
                body.as_slice(),
            );
        let other = request_string_to_sign(m, p, t, n, b);
        if changed && valid && wire_valid(m, p, n) {
            assert_ne!(
                other, request,
                "two different requests sign the same string"
            );
        }
        if other != request {
            assert!(
                !verify(KEY, &other, &signature),
                "a mutated request verified"
            );
        }
    };
    match mutation {
        Mutation::Method(m) => mutated_request(&m, &path, timestamp, &nonce, &body),
        Mutation::Path(p) => mutated_request(&method, &p, timestamp, &nonce, &body),
        Mutation::Timestamp(t) => mutated_request(&method, &path, t, &nonce, &body),
        Mutation::Nonce(n) => mutated_request(&method, &path, timestamp, &n, &body),
        Mutation::Body(b) => mutated_request(&method, &path, timestamp, &nonce, &b),
        Mutation::Status(s) => {
            let other = response_string_to_sign(s, &path, timestamp, &nonce, &body);
            assert_eq!(other == response, s == status);
            if s != status {
                assert!(
                    !verify(KEY, &other, &response_signature),
                    "a response verified under another status"
                );
            }
        }
        Mutation::SignatureDigit { index, digit } => {
            let mut bytes = signature.clone().into_bytes();
            let i = usize::from(index) % bytes.len();
            bytes[i] = digit;
            let forged = String::from_utf8_lossy(&bytes).into_owned();
            if forged != signature {
                assert!(
                    !verify(KEY, &request, &forged),
                    "a changed signature verified: {forged}"
                );
            }
        }
        Mutation::Key(key) => {
            if verify(&key, &request, &signature) {
                assert!(
                    same_hmac_key(&key, KEY),
                    "another key verified the signature"
                );
            }
        }
    }
});
