//! `read_statement` (WechatTradeBill) over arbitrary bytes with small limits: never panics; every line
//! handed over is well formed (an amount of at least one fen, a transaction id within the value
//! limit, a refund number on refund lines); never more lines than the limit; when the file is
//! accepted, the summary counts exactly the lines handed over and its totals are their sums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yibao_statement_file::StatementFormat;

fuzz_target!(|bytes: &[u8]| {
    yibao_fuzz::check_statement(StatementFormat::WechatTradeBill, bytes);
});
