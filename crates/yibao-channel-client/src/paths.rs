//! The PATH_AND_QUERY of every endpoint, exactly as it goes on the wire and into the string to sign.
//!
//! User data in a path segment (`order_no`, `channel_txn_id`, `refund_no`, receipt code and number) and in a
//! query value is percent-encoded: every byte outside the RFC 3986 unreserved set `A-Z a-z 0-9 - . _ ~` becomes
//! `%XX` (upper-case hex), so no URL library on either side has anything left to normalise. A segment that is
//! empty, `.` or `..` cannot survive URL normalisation at all and is refused.

use chrono::NaiveDate;

/// Every path of protocol version 1 starts with this.
pub const PREFIX: &str = "/channel/v1";

/// A path segment that cannot be sent faithfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} cannot be used in a URL path: {value:?} (empty, \".\" and \"..\" are not allowed)")]
pub struct InvalidSegment {
    pub what: &'static str,
    pub value: String,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte of `value` outside the unreserved set.
pub fn percent_encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// One encoded path segment; refuses what URL normalisation would drop or merge.
pub fn segment(what: &'static str, value: &str) -> Result<String, InvalidSegment> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(InvalidSegment {
            what,
            value: value.to_owned(),
        });
    }
    Ok(percent_encode(value))
}

/// `POST /channel/v1/payables/search`
pub fn payables_search() -> String {
    format!("{PREFIX}/payables/search")
}

/// `POST /channel/v1/orders`
pub fn orders() -> String {
    format!("{PREFIX}/orders")
}

/// `POST /channel/v1/orders/{order_no}/cancel`
pub fn order_cancel(order_no: &str) -> Result<String, InvalidSegment> {
    Ok(format!(
        "{PREFIX}/orders/{}/cancel",
        segment("order_no", order_no)?
    ))
}

/// `POST /channel/v1/payments`
pub fn payments() -> String {
    format!("{PREFIX}/payments")
}

/// `GET /channel/v1/payments/{channel_txn_id}`
pub fn payment(channel_txn_id: &str) -> Result<String, InvalidSegment> {
    Ok(format!(
        "{PREFIX}/payments/{}",
        segment("channel_txn_id", channel_txn_id)?
    ))
}

/// `POST /channel/v1/payments/{channel_txn_id}/reversal`
pub fn payment_reversal(channel_txn_id: &str) -> Result<String, InvalidSegment> {
    Ok(format!("{}/reversal", payment(channel_txn_id)?))
}

/// `GET /channel/v1/agents/{agent_code}/payments?date={date}` (an addition to v1).
pub fn agent_day(agent_code: &str, date: chrono::NaiveDate) -> Result<String, InvalidSegment> {
    Ok(format!(
        "{PREFIX}/agents/{}/payments?date={date}",
        segment("agent_code", agent_code)?
    ))
}

/// `GET /channel/v1/refunds?status={status}`
pub fn refunds(status: &str) -> String {
    format!("{PREFIX}/refunds?status={}", percent_encode(status))
}

/// `POST /channel/v1/refunds/{refund_no}/result`
pub fn refund_result(refund_no: &str) -> Result<String, InvalidSegment> {
    Ok(format!(
        "{PREFIX}/refunds/{}/result",
        segment("refund_no", refund_no)?
    ))
}

/// `PUT /channel/v1/statements/{date}` with the date as `YYYY-MM-DD`.
pub fn statement(date: NaiveDate) -> String {
    format!("{PREFIX}/statements/{}", date.format("%Y-%m-%d"))
}

/// `POST /channel/v1/receipts/search`
pub fn receipts_search() -> String {
    format!("{PREFIX}/receipts/search")
}

/// `GET /channel/v1/receipts/{receipt_code}/{receipt_number}?check_code={check_code}`
/// `/channel/v1/receipts/{receipt_code}/{receipt_number}/payer-copy` (an addition to §8).
pub fn receipt_payer_copy(
    receipt_code: &str,
    receipt_number: &str,
) -> Result<String, InvalidSegment> {
    Ok(format!(
        "{PREFIX}/receipts/{}/{}/payer-copy",
        segment("receipt_code", receipt_code)?,
        segment("receipt_number", receipt_number)?,
    ))
}

pub fn receipt(
    receipt_code: &str,
    receipt_number: &str,
    check_code: &str,
) -> Result<String, InvalidSegment> {
    Ok(format!(
        "{PREFIX}/receipts/{}/{}?check_code={}",
        segment("receipt_code", receipt_code)?,
        segment("receipt_number", receipt_number)?,
        percent_encode(check_code)
    ))
}

/// `GET /public/receipts/verify?code=&number=&check_code=` (no authentication; not under [`PREFIX`]).
pub fn public_verify(code: &str, number: &str, check_code: &str) -> String {
    format!(
        "/public/receipts/verify?code={}&number={}&check_code={}",
        percent_encode(code),
        percent_encode(number),
        percent_encode(check_code)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_percent_encoded() {
        assert_eq!(percent_encode("T2020.11-02_x~Z9"), "T2020.11-02_x~Z9");
        assert_eq!(
            percent_encode("a b/c?d#e%f+g&h"),
            "a%20b%2Fc%3Fd%23e%25f%2Bg%26h"
        );
        assert_eq!(percent_encode("南通"), "%E5%8D%97%E9%80%9A");
        assert_eq!(
            payment_reversal("T 1/2?x").as_deref(),
            Ok("/channel/v1/payments/T%201%2F2%3Fx/reversal")
        );
        assert_eq!(
            receipt("32012001", "0000000001", "a1b2+c3").as_deref(),
            Ok("/channel/v1/receipts/32012001/0000000001?check_code=a1b2%2Bc3")
        );
        assert_eq!(
            public_verify("3201", "0001", "a&b=c"),
            "/public/receipts/verify?code=3201&number=0001&check_code=a%26b%3Dc"
        );
        assert_eq!(refunds("pending"), "/channel/v1/refunds?status=pending");
        let date = NaiveDate::from_ymd_opt(2020, 11, 2).unwrap_or_default();
        assert_eq!(statement(date), "/channel/v1/statements/2020-11-02");
    }

    #[test]
    fn segments_that_urls_would_normalise_away_are_refused() {
        for bad in ["", ".", ".."] {
            assert!(order_cancel(bad).is_err(), "{bad:?}");
            assert!(payment(bad).is_err(), "{bad:?}");
            assert!(refund_result(bad).is_err(), "{bad:?}");
            assert!(receipt(bad, "1", "c").is_err(), "{bad:?}");
            assert!(receipt("1", bad, "c").is_err(), "{bad:?}");
        }
        assert_eq!(
            order_cancel("...").as_deref(),
            Ok("/channel/v1/orders/.../cancel")
        );
    }
}
