//! Identifiers that carry their region.
//!
//! On a Citus cluster every region table is distributed by `region_code`; a statement goes to one
//! shard only when it names the region. The identifiers yibao issues are opaque to channels
//! (protocol v1), so the ones whose rows live in a region carry it: `{prefix}{region}R{unique}`
//! (`p320600R…` a payable, `OD…` an order, `PM…` a payment, `RF…` a refund, `EV…` an outbox
//! event); a receipt code is the region and the year (`32060027`). Identifiers issued before
//! (`p` and 32 hex digits) carry none: they are found by a statement over all shards first, then
//! handled like the others.

/// The prefixes of identifiers that carry a region.
pub const REGIONAL_PREFIXES: &[&str] = &["p", "OD", "PM", "RF", "EV"];

/// The region an identifier carries, if it is one of the regional forms.
pub fn region_in_id(id: &str) -> Option<&str> {
    REGIONAL_PREFIXES.iter().find_map(|prefix| {
        let rest = id.strip_prefix(prefix)?;
        let region = rest.get(..6)?;
        (region.bytes().all(|b| b.is_ascii_digit()) && rest.as_bytes().get(6) == Some(&b'R'))
            .then_some(region)
    })
}

/// `unique` (letters and digits, say a UUID's 32 hex digits) made into an identifier of `region`.
pub fn regional_id(prefix: &str, region: &str, unique: &str) -> String {
    format!("{prefix}{region}R{unique}")
}

/// The region of a receipt code (`{region}{yy}`).
pub fn region_of_receipt_code(code: &str) -> Option<&str> {
    code.get(..6)
        .filter(|r| r.bytes().all(|b| b.is_ascii_digit()))
}

/// An identifier made in a transaction that knows its region only there (a reversal's outbox
/// events): `id` with the region put in, unless it has one already or is not of a regional prefix.
pub fn with_region(id: &str, region: &str) -> String {
    if region_in_id(id).is_some() {
        return id.to_owned();
    }
    REGIONAL_PREFIXES
        .iter()
        .find_map(|prefix| {
            id.strip_prefix(prefix)
                .map(|rest| regional_id(prefix, region, rest))
        })
        .unwrap_or_else(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_read_back_from_the_identifiers_that_carry_them() {
        let id = regional_id("PM", "320600", "0123456789abcdef0123456789abcdef");
        assert_eq!(id, "PM320600R0123456789abcdef0123456789abcdef");
        assert_eq!(region_in_id(&id), Some("320600"));
        assert_eq!(region_in_id("p460100Rabc"), Some("460100"));
        // Identifiers issued before carry none (hex never has an R), nor do foreign ones.
        assert_eq!(region_in_id("p0123456789abcdef0123456789abcdef"), None);
        assert_eq!(region_in_id("PM320600ab"), None);
        assert_eq!(region_in_id("X320600R1"), None);
        assert_eq!(region_in_id(""), None);
        assert_eq!(region_of_receipt_code("32060027"), Some("320600"));
        assert_eq!(region_of_receipt_code("3206"), None);
        assert_eq!(with_region("EVabc", "320600"), "EV320600Rabc");
        assert_eq!(with_region("EV320600Rabc", "460100"), "EV320600Rabc");
        assert_eq!(with_region("PMx-r0", "320600"), "PM320600Rx-r0");
        assert_eq!(region_in_id("PM320600Rx-r0"), Some("320600"));
    }
}
