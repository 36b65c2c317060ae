//! `read_debit_result` over arbitrary bytes: never panics; an accepted file has as many detail
//! lines as its header says, distinct item references, sequence numbers 1..n, and its successes
//! add up to the header's count and total.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    yibao_fuzz::check_debit_result(bytes);
});
