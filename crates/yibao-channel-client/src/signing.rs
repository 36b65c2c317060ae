//! Request and response signing of channel protocol v1 (section "Authentication").
//!
//! Pure: no I/O, no clock. The server verifies requests and signs responses with these same functions,
//! and the client does the reverse, so the two can never disagree on the string to sign.
//!
//! ```text
//! request:  METHOD      + "\n" + PATH_AND_QUERY + "\n" + TIMESTAMP + "\n" + NONCE + "\n" + hex(SHA-256(body)) + "\n"
//! response: STATUS_CODE + "\n" + PATH_AND_QUERY + "\n" + TIMESTAMP + "\n" + NONCE + "\n" + hex(SHA-256(body)) + "\n"
//! signature = lowercase hex of HMAC-SHA256(channel secret, string_to_sign)
//! ```

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The channel id issued by the operator.
pub const HEADER_CHANNEL: &str = "Yibao-Channel";
/// Unix seconds, in decimal.
pub const HEADER_TIMESTAMP: &str = "Yibao-Timestamp";
/// 16 to 64 characters of `[A-Za-z0-9]`, fresh per request (and per response).
pub const HEADER_NONCE: &str = "Yibao-Nonce";
/// Lowercase hex of HMAC-SHA256(channel secret, string to sign).
pub const HEADER_SIGNATURE: &str = "Yibao-Signature";
/// Carried by every response; also in every error body as `request_id`.
pub const HEADER_REQUEST_ID: &str = "Yibao-Request-Id";

/// A request whose timestamp is more than this many seconds from server time is refused (401 `AUTH_FAILED`).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// A nonce seen before from the same channel within this many seconds is refused (401 `REPLAYED`).
pub const NONCE_REPLAY_WINDOW_SECS: i64 = 15 * 60;
/// Shortest nonce the protocol allows.
pub const NONCE_MIN_LEN: usize = 16;
/// Longest nonce the protocol allows.
pub const NONCE_MAX_LEN: usize = 64;

/// A channel's shared secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelSecret(Vec<u8>);

impl ChannelSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        ChannelSecret(bytes.into())
    }

    /// The raw key, for signing. Do not log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for ChannelSecret {
    fn from(bytes: Vec<u8>) -> Self {
        ChannelSecret(bytes)
    }
}

impl From<&[u8]> for ChannelSecret {
    fn from(bytes: &[u8]) -> Self {
        ChannelSecret(bytes.to_vec())
    }
}

impl From<String> for ChannelSecret {
    fn from(s: String) -> Self {
        ChannelSecret(s.into_bytes())
    }
}

impl From<&str> for ChannelSecret {
    fn from(s: &str) -> Self {
        ChannelSecret(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Lowercase hex of SHA-256 of `body`. An empty body hashes as the empty string.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn string_to_sign(
    first: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let hash = body_hash(body);
    let mut s =
        String::with_capacity(first.len() + path_and_query.len() + nonce.len() + hash.len() + 32);
    s.push_str(first);
    s.push('\n');
    s.push_str(path_and_query);
    s.push('\n');
    s.push_str(&timestamp.to_string());
    s.push('\n');
    s.push_str(nonce);
    s.push('\n');
    s.push_str(&hash);
    s.push('\n');
    s
}

/// `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nhex(SHA-256(body))\n`, the method as given (callers pass it
/// upper-case, as it goes on the wire) and the path and query exactly as sent, percent-encoding included.
pub fn request_string_to_sign(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    string_to_sign(method, path_and_query, timestamp, nonce, body)
}

/// `STATUS_CODE\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nhex(SHA-256(body))\n`, where PATH_AND_QUERY is that of the
/// request being answered and TIMESTAMP and NONCE are the response's own.
pub fn response_string_to_sign(
    status: u16,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    string_to_sign(&status.to_string(), path_and_query, timestamp, nonce, body)
}

/// HMAC-SHA256 keyed with `secret`, built without a fallible constructor: RFC 2104 hashes a key longer
/// than the 64-byte block and pads a shorter one with zeros, which is exactly what is done here.
fn mac(secret: &[u8]) -> HmacSha256 {
    let mut block = [0u8; 64];
    if secret.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

/// Lowercase hex of HMAC-SHA256(`secret`, `string_to_sign`).
pub fn sign(secret: &[u8], string_to_sign: &str) -> String {
    let mut mac = mac(secret);
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature_hex` is the signature of `string_to_sign` under `secret`, compared in constant time.
///
/// The protocol says lowercase hex, so anything else (upper-case digits, a wrong length, a non-hex
/// character) is refused before any comparison.
pub fn verify(secret: &[u8], string_to_sign: &str, signature_hex: &str) -> bool {
    if signature_hex.len() != 64
        || !signature_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    let Ok(expected) = hex::decode(signature_hex) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// 16 to 64 characters, each of `[A-Za-z0-9]`.
pub fn valid_nonce(nonce: &str) -> bool {
    (NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A fresh nonce: 32 lowercase hex digits of a random (v4) UUID, drawn from the operating system's CSPRNG
/// (122 random bits).
pub fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether a request timestamp is within [`MAX_CLOCK_SKEW_SECS`] of `now` (both Unix seconds).
pub fn timestamp_fresh(timestamp: i64, now: i64) -> bool {
    timestamp.abs_diff(now) <= MAX_CLOCK_SKEW_SECS.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently with Python's hashlib/hmac:
    //   secret = b"yibao-test-secret-0001", ts = 1604283300 (2020-11-02T10:15:00+08:00)
    //   s = f"{method}\n{path}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}\n"
    //   hmac.new(secret, s.encode(), hashlib.sha256).hexdigest()
    const SECRET: &[u8] = b"yibao-test-secret-0001";
    const TS: i64 = 1_604_283_300;
    const REQ_NONCE: &str = "AbCdEfGh0123456789IjKlMnOpQrStUv";
    const RESP_NONCE: &str = "ZyXwVuTsRqPoNmLk9876543210";
    const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn body_hash_of_empty_and_non_ascii_bodies() {
        assert_eq!(body_hash(b""), EMPTY_HASH);
        assert_eq!(
            body_hash("城乡居民".as_bytes()),
            "6bd8666af7627de95e15c38eca80949994ebeeaa76b00f99018338d68aea34fb"
        );
    }

    #[test]
    fn request_vector_with_body() {
        let body = br#"{"channel_txn_id":"T20201102000001","amount":43000}"#;
        let s = request_string_to_sign("POST", "/channel/v1/payments", TS, REQ_NONCE, body);
        assert_eq!(
            s,
            "POST\n/channel/v1/payments\n1604283300\nAbCdEfGh0123456789IjKlMnOpQrStUv\n\
             0244ec8d99218bb0efd605098db4d013093ddf6d9560809b1c2f65b1fda94cea\n"
        );
        let sig = sign(SECRET, &s);
        assert_eq!(
            sig,
            "85e5d854ef0aa644b224a6a95928e3e477cfe0e269081727e6b5893956e92e72"
        );
        assert!(verify(SECRET, &s, &sig));
    }

    #[test]
    fn request_vector_with_empty_body_and_query() {
        let s = request_string_to_sign(
            "GET",
            "/channel/v1/refunds?status=pending",
            TS,
            REQ_NONCE,
            b"",
        );
        assert_eq!(
            s,
            format!(
                "GET\n/channel/v1/refunds?status=pending\n1604283300\n{REQ_NONCE}\n{EMPTY_HASH}\n"
            )
        );
        assert_eq!(
            sign(SECRET, &s),
            "e760a0c6805b9f717e7f58da7039b25b2e86129c41f1c15154ae700a46203cdb"
        );
    }

    #[test]
    fn response_vector_with_body() {
        let s = response_string_to_sign(
            200,
            "/channel/v1/payments/T20201102000001/reversal",
            TS + 1,
            RESP_NONCE,
            br#"{"result":"reversed"}"#,
        );
        assert_eq!(
            s,
            "200\n/channel/v1/payments/T20201102000001/reversal\n1604283301\nZyXwVuTsRqPoNmLk9876543210\n\
             a0e42f8bdb071a086dd96a8d3ae5c119a3b885ce91d9b92a66bbd9f90dfa1659\n"
        );
        assert_eq!(
            sign(SECRET, &s),
            "adfe411f1c18d5637211385359e81e4e5ae69daea21bccf68e5cf6d198ae8c7d"
        );
    }

    #[test]
    fn response_vector_with_empty_body_and_encoded_path() {
        let s = response_string_to_sign(
            204,
            "/channel/v1/orders/O%2F1/cancel",
            TS + 1,
            RESP_NONCE,
            b"",
        );
        assert_eq!(
            s,
            format!(
                "204\n/channel/v1/orders/O%2F1/cancel\n1604283301\n{RESP_NONCE}\n{EMPTY_HASH}\n"
            )
        );
        let sig = sign(SECRET, &s);
        assert_eq!(
            sig,
            "cd4e4c72abe4154b63bad0acf470ecbfa82b12c536528fdc70037e9b6854253b"
        );
        assert!(verify(SECRET, &s, &sig));
    }

    #[test]
    fn verify_refuses_wrong_secret_tampering_and_non_lowercase_hex() {
        let s = request_string_to_sign(
            "GET",
            "/channel/v1/refunds?status=pending",
            TS,
            REQ_NONCE,
            b"",
        );
        let sig = sign(SECRET, &s);
        assert!(verify(SECRET, &s, &sig));
        assert!(!verify(b"another-secret", &s, &sig));
        let tampered = s.replacen("pending", "failed", 1);
        assert!(!verify(SECRET, &tampered, &sig));
        assert!(!verify(SECRET, &s, &sig.to_uppercase()));
        assert!(!verify(SECRET, &s, &sig[..62]));
        assert!(!verify(SECRET, &s, ""));
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap_or_default();
        assert!(!verify(SECRET, &s, &flipped));
    }

    #[test]
    fn keys_of_every_length_match_rfc_2104() {
        // Python: hmac.new(key, b"x\n", hashlib.sha256).hexdigest()
        assert_eq!(
            sign(&[b'k'; 100], "x\n"),
            "41abe9cffd73280f8e7a501468ad60324fdd84bc990d5947582710a4d5e7f4cb"
        );
        assert_eq!(
            sign(&[b'k'; 64], "x\n"),
            "db521125a52413798b4640bbdbf40f5de10d1cd932b15ba871f175ac480826dd"
        );
        assert_eq!(
            sign(b"", "x\n"),
            "afa9d0dd63136315c8653b39290d0be8415ce4ca61562cc7ff91c5883d6be844"
        );
    }

    #[test]
    fn nonces() {
        assert!(valid_nonce(REQ_NONCE));
        assert!(valid_nonce(&"a".repeat(16)));
        assert!(valid_nonce(&"Z9".repeat(32)));
        assert!(!valid_nonce(&"a".repeat(15)));
        assert!(!valid_nonce(&"a".repeat(65)));
        assert!(!valid_nonce("abcdefgh-0123456789"));
        assert!(!valid_nonce("abcdefgh_0123456789"));
        assert!(!valid_nonce("abcdefghé0123456789"));
        assert!(!valid_nonce(""));
        let a = new_nonce();
        let b = new_nonce();
        assert_eq!(a.len(), 32);
        assert!(valid_nonce(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn clock_skew_bound_is_inclusive_at_300_seconds() {
        assert!(timestamp_fresh(TS + 300, TS));
        assert!(timestamp_fresh(TS - 300, TS));
        assert!(!timestamp_fresh(TS + 301, TS));
        assert!(!timestamp_fresh(TS - 301, TS));
        assert!(!timestamp_fresh(i64::MIN, i64::MAX));
    }

    #[test]
    fn secret_debug_is_masked() {
        let secret = ChannelSecret::new("hunter2-secret");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), b"hunter2-secret");
    }
}
