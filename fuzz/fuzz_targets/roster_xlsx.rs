//! Roster XLSX reading over arbitrary bytes with small limits, then `parse_row` on every row: see
//! `yibao_fuzz::check_roster` for what is asserted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yibao_roster_file::RosterFormat;

fuzz_target!(|data: &[u8]| {
    yibao_fuzz::check_roster(data, RosterFormat::Xlsx);
});
