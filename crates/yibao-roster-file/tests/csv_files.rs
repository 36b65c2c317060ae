//! CSV rosters, built in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use yibao_roster_file::{Encoding, Limits, RawRow, RosterFileError, RosterFormat, RosterReader};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

fn rows(reader: RosterReader) -> Vec<RawRow> {
    reader.map(|r| r.unwrap()).collect()
}

fn row(n: usize, cells: &[&str]) -> RawRow {
    RawRow {
        row_number: n,
        cells: cells.iter().map(|c| c.to_string()).collect(),
    }
}

#[test]
fn utf8_without_bom() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "花名册.csv",
        "姓名,身份证号,缴费金额\n张三,320602198001011235,430.00\n 李四 ,320602198001011251, 120.5\n"
            .as_bytes(),
    );
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Utf8);
    assert_eq!(reader.header(), ["姓名", "身份证号", "缴费金额"]);
    assert_eq!(reader.header_row_number(), 1);
    assert_eq!(
        rows(reader),
        [
            row(2, &["张三", "320602198001011235", "430.00"]),
            row(3, &["李四", "320602198001011251", "120.5"]),
        ]
    );
}

#[test]
fn utf8_with_bom_as_excel_saves_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice("姓名,身份证号\r\n王五,320602198001011278\r\n".as_bytes());
    let path = write(dir.path(), "x.CSV", &bytes);
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Utf8Bom);
    assert_eq!(reader.header(), ["姓名", "身份证号"]);
    assert_eq!(rows(reader), [row(2, &["王五", "320602198001011278"])]);
}

#[test]
fn gbk_as_excel_on_chinese_windows_saves_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = gbk("姓名,身份证号,性别,民族\r\n张三,320602198001011235,男,汉族\r\n欧阳娜娜,320602200501011220,女,回族\r\n");
    let path = write(dir.path(), "gbk.csv", &bytes);
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Gb18030);
    assert_eq!(reader.header(), ["姓名", "身份证号", "性别", "民族"]);
    assert_eq!(
        rows(reader),
        [
            row(2, &["张三", "320602198001011235", "男", "汉族"]),
            row(3, &["欧阳娜娜", "320602200501011220", "女", "回族"]),
        ]
    );
}

/// Issue 21: a file saved in GB 18030 (not only its GBK subset) keeps names that GBK cannot hold:
/// Ext A, Ext B outside the BMP (four-byte sequences) and a variation sequence.
#[test]
fn gb18030_with_rare_characters_reads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let text = "姓名,身份证号\r\n刘䶮,320602198001011235\r\n𪚥明华,320602198001011251\r\n𠀾𡒊,320602198001011278\r\n葛\u{E0100}亮,320602198001011294\r\n";
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
    assert!(!unmappable);
    // GBK itself cannot: the characters outside it are what the four-byte sequences carry.
    assert!(encoding_rs::GBK.encode(text).2);
    let path = write(dir.path(), "gb18030.csv", &bytes);
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Gb18030);
    let names: Vec<String> = rows(reader)
        .into_iter()
        .map(|r| r.cells[0].clone())
        .collect();
    assert_eq!(names, ["刘䶮", "𪚥明华", "𠀾𡒊", "葛\u{E0100}亮"]);
}

#[test]
fn gbk_whose_first_64_kib_are_ascii_still_decodes_as_gb18030() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"name,id_number,amount\r\n".to_vec();
    let mut n = 0;
    while bytes.len() < 80 * 1024 {
        n += 1;
        bytes.extend_from_slice(format!("student{n},3206021980{n:08},430.00\r\n").as_bytes());
    }
    bytes.extend_from_slice(&gbk("张三,320602198001011235,430.00\r\n"));
    bytes.extend_from_slice(&gbk("李四,320602198001011251,300.00\r\n"));
    let path = write(dir.path(), "late.csv", &bytes);
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(
        reader.encoding(),
        Encoding::Gb18030,
        "known at open, before the first Chinese row"
    );
    let all = rows(reader);
    assert_eq!(all.len(), n + 2);
    assert_eq!(
        all[n],
        row(n + 2, &["张三", "320602198001011235", "430.00"])
    );
    assert_eq!(
        all[n + 1],
        row(n + 3, &["李四", "320602198001011251", "300.00"])
    );
}

#[test]
fn gbk_after_utf8_is_a_mixed_encoding_error_on_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = "姓名,备注\n张三,\"两行\n备注\"\n李四,好\n"
        .as_bytes()
        .to_vec();
    bytes.extend_from_slice(&gbk("王五,坏\n"));
    bytes.extend_from_slice("赵六,好\n".as_bytes());
    let path = write(dir.path(), "mixed.csv", &bytes);
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Utf8);
    assert_eq!(
        reader.next().unwrap().unwrap(),
        row(2, &["张三", "两行\n备注"])
    );
    assert_eq!(reader.next().unwrap().unwrap(), row(3, &["李四", "好"]));
    let err = reader.next().unwrap().unwrap_err();
    assert!(
        matches!(err, RosterFileError::MixedEncoding { row: 4 }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("第4行的文字编码无法识别"));
    assert!(reader.next().is_none(), "the reader stops after an error");
}

#[test]
fn gbk_after_utf8_with_bom_is_mixed_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\xef\xbb\xbfname,id\nalice,1\n".to_vec();
    bytes.extend_from_slice(&gbk("张三,2\n"));
    let path = write(dir.path(), "bom-mixed.csv", &bytes);
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), row(2, &["alice", "1"]));
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::MixedEncoding { row: 3 })
    ));
}

#[test]
fn utf8_after_gbk_is_refused_rather_than_garbled() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gbk("姓名,性别,民族\n张三,男,汉族\n");
    bytes.extend_from_slice("王小明,男,汉族\n".as_bytes());
    let path = write(dir.path(), "gbk-then-utf8.csv", &bytes);
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Gb18030);
    assert_eq!(
        reader.next().unwrap().unwrap(),
        row(2, &["张三", "男", "汉族"])
    );
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::MixedEncoding { row: 3 })
    ));
}

#[test]
fn bytes_that_are_neither_utf8_nor_gb18030() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gbk("姓名\n张三\n");
    bytes.extend_from_slice(b"\xff\xfe\xff,x\n");
    let path = write(dir.path(), "junk.csv", &bytes);
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), row(2, &["张三"]));
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::MixedEncoding { row: 3 })
    ));
}

#[test]
fn quotes_commas_and_line_breaks_inside_cells() {
    let dir = tempfile::tempdir().unwrap();
    let text = "姓名,地址,备注\r\n\
                \"张三\",\"南通市崇川区, 濠河路1号\",\"他说\"\"好\"\"\"\r\n\
                李四,\"第一行\r\n第二行\r\n\r\n第四行\",x\r\n\
                王五,\"\",\r\n";
    let path = write(dir.path(), "quotes.csv", text.as_bytes());
    let all = rows(RosterReader::open(&path, Limits::default()).unwrap());
    assert_eq!(
        all,
        [
            row(2, &["张三", "南通市崇川区, 濠河路1号", "他说\"好\""]),
            row(3, &["李四", "第一行\n第二行\n\n第四行", "x"]),
            row(4, &["王五"]),
        ]
    );
}

#[test]
fn text_markers_and_whitespace_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let text = "身份证号,姓名\n\
                '320602198001011235,\u{3000}张三\u{3000}\n\
                \t320602198001011251\t,李 四\n\
                =\"032060219800101127X\",'O'Neil\n";
    let path = write(dir.path(), "ids.csv", text.as_bytes());
    let all = rows(RosterReader::open(&path, Limits::default()).unwrap());
    assert_eq!(
        all,
        [
            row(2, &["320602198001011235", "张三"]),
            row(3, &["320602198001011251", "李 四"]),
            row(4, &["032060219800101127X", "O'Neil"]),
        ]
    );
}

#[test]
fn blank_rows_are_skipped_but_counted_as_excel_does() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\n姓名,金额\n\n张三,1\n,,,\n   \n李四,2,,,\n\r\n\n\n";
    let path = write(dir.path(), "blank.csv", text.as_bytes());
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.header_row_number(), 2);
    assert_eq!(reader.header(), ["姓名", "金额"]);
    assert_eq!(
        rows(reader),
        [row(4, &["张三", "1"]), row(7, &["李四", "2"])]
    );
}

#[test]
fn line_ends_lf_crlf_and_lone_cr() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ends.csv", b"a,b\rc,d\r\ne,f\ng,h");
    let all = rows(RosterReader::open(&path, Limits::default()).unwrap());
    assert_eq!(
        all,
        [
            row(2, &["c", "d"]),
            row(3, &["e", "f"]),
            row(4, &["g", "h"])
        ]
    );
}

#[test]
fn ragged_rows_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ragged.csv", b"a,b,c\n1\n1,2,3,4\n");
    let all = rows(RosterReader::open(&path, Limits::default()).unwrap());
    assert_eq!(all, [row(2, &["1"]), row(3, &["1", "2", "3", "4"])]);
}

#[test]
fn an_unclosed_quote_is_refused_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "open-quote.csv",
        "姓名,备注\n张三,好\n李四,\"没有闭合\n王五,好\n".as_bytes(),
    );
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), row(2, &["张三", "好"]));
    let err = reader.next().unwrap().unwrap_err();
    assert!(
        matches!(&err, RosterFileError::BadCsv { row: 3, reason } if reason.contains("引号")),
        "{err:?}"
    );
}

#[test]
fn a_runaway_line_is_refused_without_buffering_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"a,b\n1,\"".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 200_000));
    let path = write(dir.path(), "runaway.csv", &bytes);
    let limits = Limits {
        max_columns: 4,
        max_cell_chars: 16,
        ..Limits::default()
    };
    let mut reader = RosterReader::open(&path, limits).unwrap();
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::BadCsv { row: 2, .. })
    ));
}

#[test]
fn files_that_are_not_csv_text() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("zip.csv", b"PK\x03\x04rest".to_vec()),
        ("xls.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest".to_vec()),
        ("utf16.csv", b"\xff\xfea\x00,\x00b\x00".to_vec()),
        ("binary.csv", b"a,b\n\x00\x01\x02".to_vec()),
    ] {
        let path = write(dir.path(), name, &bytes);
        let err = RosterReader::open(&path, Limits::default()).unwrap_err();
        assert!(
            matches!(err, RosterFileError::BadCsv { .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn empty_files_have_no_header() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.csv", &b""[..]),
        ("blank.csv", b"\r\n\r\n ,, \n"),
        ("bom.csv", b"\xef\xbb\xbf"),
    ] {
        let path = write(dir.path(), name, bytes);
        let err = RosterReader::open(&path, Limits::default()).unwrap_err();
        assert!(matches!(err, RosterFileError::Empty), "{name}: {err:?}");
        assert_eq!(
            err.to_string(),
            "文件是空的：没有找到表头行，请检查是否上传了正确的花名册"
        );
    }
}

#[test]
fn format_by_extension_or_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "upload-7f3a", b"a\n1\n");
    assert!(matches!(
        RosterReader::open(&path, Limits::default()),
        Err(RosterFileError::UnsupportedFormat { .. })
    ));
    let reader = RosterReader::open_as(&path, RosterFormat::Csv, Limits::default()).unwrap();
    assert_eq!(rows(reader), [row(2, &["1"])]);
    assert_eq!(RosterFileError::CODE, "BAD_ROSTER_FILE");
}

#[test]
fn limit_file_size_is_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "big.csv", &[b'a'; 2048]);
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let err = RosterReader::open(&path, limits).unwrap_err();
    assert!(matches!(
        err,
        RosterFileError::TooLarge {
            size: 2048,
            limit: 1024
        }
    ));
    assert_eq!(err.to_string(), "文件超过1KB上限，请分拆后上传");
    let at_limit = Limits {
        max_file_bytes: 2048,
        max_cell_chars: 4096,
        ..Limits::default()
    };
    RosterReader::open(&path, at_limit).unwrap();
}

#[test]
fn limit_rows_counts_data_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "rows.csv", b"h\n1\n\n2\n3\n");
    let limits = Limits {
        max_rows: 2,
        ..Limits::default()
    };
    let mut reader = RosterReader::open(&path, limits).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), row(2, &["1"]));
    assert_eq!(reader.next().unwrap().unwrap(), row(4, &["2"]));
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::TooManyRows { limit: 2 })
    ));
    assert!(reader.next().is_none());
}

#[test]
fn limit_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cols.csv", b"a,b,c\n1,2,3,,,,\n1,2,3,4\n");
    let limits = Limits {
        max_columns: 3,
        ..Limits::default()
    };
    let mut reader = RosterReader::open(&path, limits).unwrap();
    assert_eq!(
        reader.next().unwrap().unwrap(),
        row(2, &["1", "2", "3"]),
        "empty cells past the limit are fine"
    );
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(
        err,
        RosterFileError::TooManyColumns { row: 3, limit: 3 }
    ));
    let header_too_wide = write(dir.path(), "wide.csv", b"a,b,c,d\n");
    assert!(matches!(
        RosterReader::open(&header_too_wide, limits),
        Err(RosterFileError::TooManyColumns { row: 1, limit: 3 })
    ));
}

#[test]
fn limit_cell_length_in_characters() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "cells.csv",
        "姓名,备注\n张三,五个汉字啊\n李四,六个汉字啊啊\n".as_bytes(),
    );
    let limits = Limits {
        max_cell_chars: 5,
        ..Limits::default()
    };
    let mut reader = RosterReader::open(&path, limits).unwrap();
    assert_eq!(
        reader.next().unwrap().unwrap(),
        row(2, &["张三", "五个汉字啊"])
    );
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(
        err,
        RosterFileError::CellTooLong {
            row: 3,
            column: 2,
            limit: 5
        }
    ));
    assert_eq!(
        err.to_string(),
        "第3行第2列（B列）的内容超过5个字符，请检查该单元格"
    );
}

#[test]
fn streams_200_000_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        out.write_all("姓名,身份证号,金额\r\n".as_bytes()).unwrap();
        for i in 0..200_000u32 {
            write!(out, "学生{i},3206021980{i:08},430.00\r\n").unwrap();
        }
        out.flush().unwrap();
    }
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    let mut count = 0usize;
    let mut last = 0usize;
    for r in reader {
        let r = r.unwrap();
        assert_eq!(r.cells.len(), 3);
        count += 1;
        last = r.row_number;
    }
    assert_eq!(count, 200_000);
    assert_eq!(last, 200_001);
}
