//! Helpers shared by the fuzz targets: a fixed "today" and the roster-reading checks.

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use yibao_domain::roster::{parse_row, RosterColumn, RosterHeader};
use yibao_domain::IdNumber;
use yibao_roster_file::{Limits, RosterFileError, RosterFormat, RosterReader};

/// The date every target parses against, so that a crash reproduces whatever the day.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).expect("a real date")
}

/// Small limits, so that every one of them is reachable from the inputs `scripts/fuzz` tries
/// (`-max_len` 4 KiB for CSV, 16 KiB for XLSX): the file size limit too.
pub fn limits(format: RosterFormat) -> Limits {
    Limits {
        max_file_bytes: match format {
            RosterFormat::Csv => 3 * 1024,
            RosterFormat::Xlsx => 12 * 1024,
        },
        max_rows: 20,
        max_columns: 12,
        max_cell_chars: 40,
        max_shared_strings: 64,
    }
}

/// What the reader trims from both ends of every cell (see `yibao_roster_file`).
fn is_trimmed(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

/// A cleaned row: within the limits, trimmed, no trailing empty cell.
fn check_cells(cells: &[String], limits: &Limits, what: &str) {
    assert!(
        cells.len() <= limits.max_columns,
        "{what}: {} cells over the limit {}",
        cells.len(),
        limits.max_columns
    );
    for cell in cells {
        assert!(
            cell.chars().count() <= limits.max_cell_chars,
            "{what}: a cell of {} chars over the limit {}",
            cell.chars().count(),
            limits.max_cell_chars
        );
        assert_eq!(
            cell.trim_matches(is_trimmed),
            cell,
            "{what}: cell not trimmed"
        );
    }
    if let Some(last) = cells.last() {
        assert!(!last.is_empty(), "{what}: trailing empty cell kept");
    }
}

/// The file the roster targets write each input to: one per process, so parallel jobs do not meet.
fn scratch_path(extension: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "yibao-fuzz-{}-roster.{extension}",
        std::process::id()
    ))
}

/// A header naming every column, so that `parse_row` sees every cell of every row whatever the
/// fuzzed header was.
fn full_header() -> RosterHeader {
    let cells: Vec<String> = RosterColumn::ALL
        .iter()
        .map(|c| c.header().to_owned())
        .collect();
    RosterHeader::parse(&cells).expect("the full header parses")
}

/// Reads `data` as a roster file of `format` with [`limits`] and checks what comes out: the limits
/// hold, cells are clean, row numbers rise, the iterator stops after its first error, and every
/// row goes through `parse_row` (with the file's own header when it parses, and with a header of
/// every column) without panicking; a person it returns has a valid ID number.
pub fn check_roster(data: &[u8], format: RosterFormat) {
    let path = scratch_path(match format {
        RosterFormat::Csv => "csv",
        RosterFormat::Xlsx => "xlsx",
    });
    {
        let mut file = std::fs::File::create(&path).expect("scratch file");
        file.write_all(data).expect("scratch file written");
    }
    let limits = limits(format);
    let reader = RosterReader::open_as(&path, format, limits);
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(e) => {
            if data.len() as u64 > limits.max_file_bytes {
                assert!(matches!(e, RosterFileError::TooLarge { .. }), "{e:?}");
            }
            let _ = e.to_string();
            return;
        }
    };
    assert!(
        data.len() as u64 <= limits.max_file_bytes,
        "a file over the size limit was opened"
    );
    let header = reader.header().to_vec();
    assert!(!header.is_empty(), "empty header");
    check_cells(&header, &limits, "header");
    let own_header = RosterHeader::parse(&header).ok();
    let every_column = full_header();
    let mut last_row = reader.header_row_number();
    let mut data_rows = 0usize;
    let mut failed = false;
    for row in &mut reader {
        assert!(!failed, "a row after an error");
        match row {
            Ok(row) => {
                data_rows += 1;
                assert!(data_rows <= limits.max_rows, "more rows than the limit");
                assert!(
                    row.row_number > last_row,
                    "row number {} after {last_row}",
                    row.row_number
                );
                last_row = row.row_number;
                assert!(!row.cells.is_empty(), "a row without cells");
                check_cells(&row.cells, &limits, "row");
                for header in own_header.iter().chain(std::iter::once(&every_column)) {
                    match parse_row(header, &row.cells, today()) {
                        Ok(person) => {
                            let id = person.id_number.as_str();
                            let again =
                                IdNumber::parse(id, today()).expect("a person's ID re-parses");
                            assert_eq!(again.id_number, person.id_number);
                        }
                        Err(problems) => assert!(!problems.is_empty(), "refused without a reason"),
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
                failed = true;
            }
        }
    }
    assert!(reader.next().is_none(), "the reader yields after its end");
}

/// Small bounds, so the fuzzer reaches every limit quickly.
fn statement_limits() -> yibao_statement_file::Limits {
    yibao_statement_file::Limits {
        max_bytes: 64 * 1024,
        max_lines: 16,
        max_field_chars: 24,
    }
}

/// The checks of the `statement_*` targets.
pub fn check_statement(format: yibao_statement_file::StatementFormat, data: &[u8]) {
    use yibao_statement_file::{read_statement, LineKind, StatementError, StatementOptions};
    let options = StatementOptions {
        limits: statement_limits(),
        ..StatementOptions::default()
    };
    let mut lines = 0u64;
    let mut sums = [0i64; 3];
    let result = read_statement(format, data, &options, |line| {
        lines += 1;
        assert!(
            lines <= options.limits.max_lines,
            "more lines than the limit"
        );
        assert!(
            line.amount.as_fen() >= 1,
            "amount {} under one fen",
            line.amount.as_fen()
        );
        assert!(!line.channel_txn_id.is_empty(), "empty transaction id");
        assert!(line.channel_txn_id.chars().count() <= options.limits.max_field_chars);
        let slot = match line.kind {
            LineKind::Payment => 0,
            LineKind::Refund => {
                assert!(
                    line.refund_no.as_deref().is_some_and(|r| !r.is_empty()),
                    "a refund line without its refund number"
                );
                1
            }
            LineKind::Reversal => 2,
        };
        sums[slot] += line.amount.as_fen();
        Ok::<(), StatementError>(())
    });
    if let Ok(summary) = result {
        assert_eq!(
            summary.lines, lines,
            "the summary counts the lines handed over"
        );
        let t = summary.totals;
        assert_eq!(
            [
                t.payment_total.as_fen(),
                t.refund_total.as_fen(),
                t.reversal_total.as_fen()
            ],
            sums
        );
        assert_eq!(t.payment_count + t.refund_count + t.reversal_count, lines);
    }
}

/// The checks of the `debit_result` target.
pub fn check_debit_result(data: &[u8]) {
    use yibao_statement_file::{read_debit_result, DebitOutcome};
    let Ok(result) = read_debit_result(data, &statement_limits()) else {
        return;
    };
    assert_eq!(result.rows.len() as u64, result.header.count);
    let mut refs = std::collections::HashSet::new();
    let (mut successes, mut total) = (0u64, 0i64);
    for (i, row) in result.rows.iter().enumerate() {
        assert_eq!(row.seq, i as u64 + 1, "sequence numbers 1..n");
        assert!(refs.insert(row.item_ref.clone()), "item reference twice");
        if let DebitOutcome::Succeeded { amount, .. } = &row.outcome {
            assert!(amount.as_fen() >= 1);
            successes += 1;
            total += amount.as_fen();
        }
    }
    assert_eq!(successes, result.header.success_count);
    assert_eq!(total, result.header.success_total.as_fen());
}
