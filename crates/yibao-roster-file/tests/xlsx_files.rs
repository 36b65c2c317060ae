//! XLSX rosters: minimal workbooks written with the zip crate in a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use yibao_roster_file::{
    excel_serial_to_date, Encoding, HeaderFit, Limits, RawRow, RosterFileError, RosterReader,
    MAX_SHEETS_EXAMINED,
};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

/// One sheet of a test workbook.
struct Sheet {
    name: &'static str,
    /// Relationship target, relative to `xl/` unless it starts with `/`.
    target: &'static str,
    hidden: bool,
    xml: String,
}

impl Sheet {
    fn part_name(&self) -> String {
        match self.target.strip_prefix('/') {
            Some(absolute) => absolute.to_owned(),
            None => format!("xl/{}", self.target),
        }
    }
}

/// A workbook: sheets in tab order, an optional shared-string table (the inner XML of each `<si>`).
struct Book {
    sheets: Vec<Sheet>,
    shared: Option<Vec<String>>,
    compression: CompressionMethod,
    with_workbook: bool,
}

impl Book {
    fn one_sheet(sheet_data: &str, shared: Option<Vec<String>>) -> Book {
        Book {
            sheets: vec![Sheet {
                name: "花名册",
                target: "worksheets/sheet1.xml",
                hidden: false,
                xml: worksheet(sheet_data),
            }],
            shared,
            compression: CompressionMethod::Deflated,
            with_workbook: true,
        }
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = SimpleFileOptions::default().compression_method(self.compression);
        let mut part = |name: &str, text: &str| {
            zip.start_file(name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        };
        let mut overrides = String::new();
        for sheet in &self.sheets {
            overrides.push_str(&format!(
                r#"<Override PartName="/{}" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#,
                sheet.part_name()
            ));
        }
        part(
            "[Content_Types].xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>{overrides}</Types>"#
            ),
        );
        part(
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        );
        if self.with_workbook {
            let mut sheets = String::new();
            let mut rels = String::new();
            for (i, sheet) in self.sheets.iter().enumerate() {
                let state = if sheet.hidden {
                    r#" state="hidden""#
                } else {
                    ""
                };
                sheets.push_str(&format!(
                    r#"<sheet name="{}" sheetId="{}"{state} r:id="rId{}"/>"#,
                    sheet.name,
                    i + 1,
                    i + 1
                ));
                rels.push_str(&format!(
                    r#"<Relationship Id="rId{}" Type="{REL_NS}/worksheet" Target="{}"/>"#,
                    i + 1,
                    sheet.target
                ));
            }
            rels.push_str(&format!(
                r#"<Relationship Id="rId900" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>"#
            ));
            part(
                "xl/workbook.xml",
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><bookViews><workbookView/></bookViews><sheets>{sheets}</sheets></workbook>"#
                ),
            );
            part(
                "xl/_rels/workbook.xml.rels",
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#
                ),
            );
        }
        if let Some(shared) = &self.shared {
            let items: String = shared.iter().map(|si| format!("<si>{si}</si>")).collect();
            part(
                "xl/sharedStrings.xml",
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="{MAIN_NS}" count="{n}" uniqueCount="{n}">{items}</sst>"#,
                    n = shared.len()
                ),
            );
        }
        for sheet in &self.sheets {
            part(&sheet.part_name(), &sheet.xml);
        }
        zip.finish().unwrap();
        path
    }
}

fn worksheet(sheet_data: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><dimension ref="A1:E9"/><sheetViews><sheetView workbookViewId="0"/></sheetViews><sheetData>{sheet_data}</sheetData><mergeCells count="1"><mergeCell ref="A9:B9"/></mergeCells></worksheet>"#
    )
}

/// A plain shared string.
fn si(text: &str) -> String {
    format!(
        r#"<t xml:space="preserve">{}</t>"#,
        text.replace('&', "&amp;").replace('<', "&lt;")
    )
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
fn shared_and_inline_strings() {
    let dir = tempfile::tempdir().unwrap();
    let shared = vec![
        si("姓名"),
        si("身份证号"),
        si(" 张三 "),
        // Rich text: runs concatenated, the phonetic guide left out.
        r#"<r><rPr><b/></rPr><t>李</t></r><r><t xml:space="preserve">四</t></r><rPh sb="0" eb="1"><t>li</t></rPh>"#.to_owned(),
        si("A&B <公司>"),
    ];
    let data = r#"<row r="1" spans="1:2"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>
<row r="2"><c r="A2" t="s" s="1"><v>2</v></c><c r="B2" t="inlineStr"><is><t>'320602198001011235</t></is></c></row>
<row r="3"><c r="A3" t="s"><v>3</v></c><c r="B3" t="inlineStr"><is><r><t>3206</t></r><r><t>02198001011251</t></r></is></c></row>
<row r="4"><c r="A4" t="s"><v>4</v></c><c r="B4" t="inlineStr"><is><t>&#x4E2D;&amp;&#20013;</t></is></c></row>"#;
    let path = Book::one_sheet(data, Some(shared)).write(dir.path(), "strings.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.encoding(), Encoding::Utf8);
    assert_eq!(reader.header(), ["姓名", "身份证号"]);
    assert_eq!(
        rows(reader),
        [
            row(2, &["张三", "320602198001011235"]),
            row(3, &["李四", "320602198001011251"]),
            row(4, &["A&B <公司>", "中&中"]),
        ]
    );
}

#[test]
fn gaps_in_cell_references_become_empty_cells() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="C1" t="inlineStr"><is><t>c</t></is></c><c r="E1" t="inlineStr"><is><t>e</t></is></c></row>
<row r="2"><c t="inlineStr"><is><t>x</t></is></c><c t="inlineStr"><is><t>y</t></is></c><c r="D2"><v>4</v></c><c><v>5</v></c><c r="Z2" s="3"/></row>"#;
    let path = Book::one_sheet(data, None).write(dir.path(), "gaps.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.header(), ["a", "", "c", "", "e"]);
    assert_eq!(rows(reader), [row(2, &["x", "y", "", "4", "5"])]);
}

#[test]
fn row_numbers_are_kept_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>h</t></is></c></row>
<row r="3"><c r="A3"><v>3</v></c></row>
<row r="4" s="2" customFormat="1"><c r="A4" s="2"/></row>
<row r="7"><c r="A7"><v>7</v></c></row>
<row><c><v>8</v></c></row>
<row r="100"/>"#;
    let path = Book::one_sheet(data, None).write(dir.path(), "skipped.xlsx");
    let all = rows(RosterReader::open(&path, Limits::default()).unwrap());
    assert_eq!(all, [row(3, &["3"]), row(7, &["7"]), row(8, &["8"])]);
}

#[test]
fn numbers_read_as_excel_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>金额</t></is></c><c r="B1" t="inlineStr"><is><t>身份证号</t></is></c><c r="C1" t="inlineStr"><is><t>出生日期</t></is></c><c r="D1" t="inlineStr"><is><t>其他</t></is></c></row>
<row r="2"><c r="A2" s="4"><v>120.5</v></c><c r="B2" t="n"><v>1.10105194912310E+17</v></c><c r="C2" s="5"><v>44136</v></c><c r="D2" t="b"><v>1</v></c><c r="E2" t="b"><v>0</v></c><c r="F2" t="e"><v>#N/A</v></c><c r="G2" t="str"><f>A2&amp;"元"</f><v>120.5元</v></c><c r="H2"><f>A2*3</f><v>361.5</v></c><c r="I2"><v>0.30000000000000004</v></c></row>"#;
    let path = Book::one_sheet(data, None).write(dir.path(), "numbers.xlsx");
    let all = rows(RosterReader::open(&path, Limits::default()).unwrap());
    assert_eq!(
        all,
        [row(
            2,
            &[
                "120.5",
                // 15 significant digits, in Excel's scientific form beyond 1E15.
                "1.1010519491231E+17",
                "44136",
                "TRUE",
                "FALSE",
                "#N/A",
                "120.5元",
                "361.5",
                // Excel stores 0.1+0.2 as 0.30000000000000004 and shows 0.3.
                "0.3"
            ]
        )]
    );
    assert_eq!(
        excel_serial_to_date(&all[0].cells[2]),
        chrono::NaiveDate::from_ymd_opt(2020, 11, 1)
    );
}

#[test]
fn the_first_visible_worksheet_is_read_through_the_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let inline = |r: &str, t: &str| {
        format!(r#"<row r="1"><c r="{r}" t="inlineStr"><is><t>{t}</t></is></c></row>"#)
    };
    let book = Book {
        sheets: vec![
            Sheet {
                name: "下拉选项",
                target: "worksheets/sheet1.xml",
                hidden: true,
                xml: worksheet(&inline("A1", "隐藏")),
            },
            Sheet {
                name: "花名册",
                target: "/xl/worksheets/roster.xml",
                hidden: false,
                xml: worksheet(&inline("A1", "表头")),
            },
            Sheet {
                name: "说明",
                target: "worksheets/sheet3.xml",
                hidden: false,
                xml: worksheet(&inline("A1", "其他")),
            },
        ],
        shared: None,
        compression: CompressionMethod::Deflated,
        with_workbook: true,
    };
    let path = book.write(dir.path(), "sheets.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.header(), ["表头"]);
}

/// Issue 10: a first sheet of instructions (填表说明) is passed over; the sheet whose header the
/// caller recognises is read, and its name is told.
#[test]
fn the_roster_sheet_is_found_by_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = |name: &'static str, n: usize, header: &[&str]| {
        let cells: String = header
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    r#"<c r="{}1" t="inlineStr"><is><t>{t}</t></is></c>"#,
                    char::from(b'A' + i as u8)
                )
            })
            .collect();
        Sheet {
            name,
            target: Box::leak(format!("worksheets/sheet{n}.xml").into_boxed_str()),
            hidden: false,
            xml: worksheet(&format!(
                r#"<row r="1">{cells}</row><row r="2"><c r="A2"><v>{n}</v></c></row>"#
            )),
        }
    };
    let fit = |header: &[String]| {
        let has = |name: &str| header.iter().any(|h| h == name);
        if has("姓名") && has("身份证号码") {
            HeaderFit::Fits
        } else if has("姓名") {
            HeaderFit::Resembles
        } else {
            HeaderFit::No
        }
    };
    let book = |sheets: Vec<Sheet>| Book {
        sheets,
        shared: None,
        compression: CompressionMethod::Deflated,
        with_workbook: true,
    };
    let path = book(vec![
        sheet("填表说明", 1, &["一、本表用于城乡居民医保参保登记"]),
        sheet("草稿", 2, &["姓名", "身份证号"]),
        sheet("花名册", 3, &["姓名", "身份证号码"]),
    ])
    .write(dir.path(), "three.xlsx");
    let reader = RosterReader::open_finding(&path, Limits::default(), &fit).unwrap();
    assert_eq!(reader.sheet_name(), Some("花名册"));
    assert_eq!(rows(reader), [row(2, &["3"])]);
    // Without a sheet that fits, the first that resembles; without one, the first sheet.
    let path = book(vec![
        sheet("填表说明", 1, &["说明"]),
        sheet("草稿", 2, &["姓名", "身份证号"]),
    ])
    .write(dir.path(), "two.xlsx");
    let reader = RosterReader::open_finding(&path, Limits::default(), &fit).unwrap();
    assert_eq!(reader.sheet_name(), Some("草稿"));
    let path = book(vec![
        sheet("说明", 1, &["说明"]),
        sheet("代码", 2, &["代码"]),
    ])
    .write(dir.path(), "none.xlsx");
    let reader = RosterReader::open_finding(&path, Limits::default(), &fit).unwrap();
    assert_eq!(reader.sheet_name(), Some("说明"));
    assert_eq!(reader.header(), ["说明"]);
    // Plain `open` reads the first visible sheet, as before.
    let path = book(vec![
        sheet("填表说明", 1, &["说明"]),
        sheet("花名册", 2, &["姓名", "身份证号码"]),
    ])
    .write(dir.path(), "plain.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.sheet_name(), Some("填表说明"));
    // A CSV file has no sheet name.
    let csv = dir.path().join("r.csv");
    std::fs::write(&csv, "姓名,身份证号码\n张三,1\n").unwrap();
    let reader = RosterReader::open_finding(&csv, Limits::default(), &fit).unwrap();
    assert_eq!(reader.sheet_name(), None);
}

/// The search looks at the first MAX_SHEETS_EXAMINED sheets only.
#[test]
fn limit_sheets_examined() {
    let dir = tempfile::tempdir().unwrap();
    let sheets: Vec<Sheet> = (1..=MAX_SHEETS_EXAMINED + 1)
        .map(|n| {
            let title = if n == MAX_SHEETS_EXAMINED + 1 {
                "花名册"
            } else {
                "说明"
            };
            Sheet {
                name: Box::leak(format!("S{n}").into_boxed_str()),
                target: Box::leak(format!("worksheets/sheet{n}.xml").into_boxed_str()),
                hidden: false,
                xml: worksheet(&format!(
                    r#"<row r="1"><c r="A1" t="inlineStr"><is><t>{title}</t></is></c></row>"#
                )),
            }
        })
        .collect();
    let path = Book {
        sheets,
        shared: None,
        compression: CompressionMethod::Stored,
        with_workbook: true,
    }
    .write(dir.path(), "many.xlsx");
    let fit = |header: &[String]| {
        if header.iter().any(|h| h == "花名册") {
            HeaderFit::Fits
        } else {
            HeaderFit::No
        }
    };
    let reader = RosterReader::open_finding(&path, Limits::default(), &fit).unwrap();
    assert_eq!(reader.sheet_name(), Some("S1"));
}

#[test]
fn without_a_workbook_sheet1_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut book = Book::one_sheet(
        r#"<row r="1"><c r="B1" t="inlineStr"><is><t>h</t></is></c></row>"#,
        None,
    );
    book.with_workbook = false;
    book.compression = CompressionMethod::Stored;
    let path = book.write(dir.path(), "bare.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.header(), ["", "h"]);
}

#[test]
fn prefixed_elements_as_some_libraries_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut book = Book::one_sheet("", None);
    book.sheets[0].xml = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><x:worksheet xmlns:x="{MAIN_NS}"><x:sheetData><x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>姓名</x:t></x:is></x:c></x:row><x:row r="2"><x:c r="A2" t="inlineStr"><x:is><x:t>张三</x:t></x:is></x:c></x:row></x:sheetData></x:worksheet>"#
    );
    let path = book.write(dir.path(), "prefixed.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.header(), ["姓名"]);
    assert_eq!(rows(reader), [row(2, &["张三"])]);
}

#[test]
fn not_a_zip_is_bad_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("text.xlsx", b"name,id\n1,2\n".to_vec()),
        ("truncated.xlsx", b"PK\x03\x04\x14\x00\x00\x00".to_vec()),
        (
            "old.xlsx",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00".to_vec(),
        ),
        ("empty.xlsx", Vec::new()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = RosterReader::open(&path, Limits::default()).unwrap_err();
        assert!(
            matches!(err, RosterFileError::BadXlsx { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().starts_with("xlsx文件无法读取："), "{err}");
    }
}

#[test]
fn a_zip_without_a_worksheet_is_bad_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nosheet.xlsx");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("readme.txt", SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    zip.finish().unwrap();
    let err = RosterReader::open(&path, Limits::default()).unwrap_err();
    assert!(
        matches!(&err, RosterFileError::BadXlsx { reason } if reason.contains("找不到工作表")),
        "{err:?}"
    );
}

#[test]
fn malformed_xml_is_bad_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let mut book = Book::one_sheet("", None);
    book.sheets[0].xml = format!(
        r#"<worksheet xmlns="{MAIN_NS}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>h</t></is></c></row><row r="2"><c r="A2"><v>1</x></c></row></sheetData></worksheet>"#
    );
    let path = book.write(dir.path(), "malformed.xlsx");
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::BadXlsx { .. })
    ));
    assert!(reader.next().is_none());
}

#[test]
fn corrupted_data_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mut book = Book::one_sheet(
        r#"<row r="1"><c r="A1" t="inlineStr"><is><t>CHECKSUM</t></is></c></row>"#,
        None,
    );
    book.compression = CompressionMethod::Stored;
    let path = book.write(dir.path(), "corrupt.xlsx");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(8).position(|w| w == b"CHECKSUM").unwrap();
    bytes[at] = b'X';
    std::fs::write(&path, bytes).unwrap();
    // The checksum is known once the part has been read to its end: the error comes after the
    // rows, and the caller must treat the whole file as failed.
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    let last = reader.last().unwrap();
    assert!(
        matches!(&last, Err(RosterFileError::BadXlsx { reason }) if reason.contains("校验")),
        "{last:?}"
    );
}

#[test]
fn rows_out_of_order_are_bad_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="5"><c r="A5"><v>5</v></c></row><row r="3"><c r="A3"><v>3</v></c></row>"#;
    let path = Book::one_sheet(data, None).write(dir.path(), "order.xlsx");
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), row(5, &["5"]));
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::BadXlsx { .. })
    ));
}

#[test]
fn an_empty_sheet_has_no_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = Book::one_sheet(r#"<row r="1"><c r="A1" s="1"/></row>"#, None)
        .write(dir.path(), "empty.xlsx");
    assert!(matches!(
        RosterReader::open(&path, Limits::default()),
        Err(RosterFileError::Empty)
    ));
}

#[test]
fn limit_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = Book::one_sheet(r#"<row r="1"><c r="A1"><v>1</v></c></row>"#, None)
        .write(dir.path(), "size.xlsx");
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    assert!(matches!(
        RosterReader::open(&path, limits),
        Err(RosterFileError::TooLarge { limit: 100, .. })
    ));
}

#[test]
fn limit_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (1..=5)
        .map(|r| format!(r#"<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>"#))
        .collect();
    let path = Book::one_sheet(&data, None).write(dir.path(), "rows.xlsx");
    let limits = Limits {
        max_rows: 3,
        ..Limits::default()
    };
    let results: Vec<_> = RosterReader::open(&path, limits).unwrap().collect();
    assert_eq!(results.len(), 4);
    assert!(results[..3].iter().all(Result::is_ok));
    assert!(matches!(
        results[3],
        Err(RosterFileError::TooManyRows { limit: 3 })
    ));
}

#[test]
fn limit_columns() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"<row r="1"><c r="A1"><v>1</v></c><c r="B1"><v>2</v></c><c r="XFD1" s="1"/></row>
<row r="2"><c r="A2"><v>1</v></c><c r="C2"><v>3</v></c></row>"#;
    let path = Book::one_sheet(data, None).write(dir.path(), "cols.xlsx");
    let limits = Limits {
        max_columns: 2,
        ..Limits::default()
    };
    let mut reader = RosterReader::open(&path, limits).unwrap();
    assert_eq!(
        reader.header(),
        ["1", "2"],
        "empty formatted cells are ignored"
    );
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::TooManyColumns { row: 2, limit: 2 })
    ));
}

#[test]
fn limit_cell_length() {
    let dir = tempfile::tempdir().unwrap();
    let shared = vec![si("姓名"), si("一二三四五"), si("一二三四五六")];
    let data = r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>
<row r="2"><c r="A2" t="s"><v>1</v></c></row>
<row r="3"><c r="A3" t="inlineStr"><is><t>一二三四五</t></is></c><c r="C3" t="s"><v>2</v></c></row>"#;
    let path = Book::one_sheet(data, Some(shared)).write(dir.path(), "cells.xlsx");
    let limits = Limits {
        max_cell_chars: 5,
        ..Limits::default()
    };
    let mut reader = RosterReader::open(&path, limits).unwrap();
    assert_eq!(reader.next().unwrap().unwrap(), row(2, &["一二三四五"]));
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::CellTooLong {
            row: 3,
            column: 3,
            limit: 5
        })
    ));
}

#[test]
fn limit_shared_strings() {
    let dir = tempfile::tempdir().unwrap();
    let shared = vec![si("a"), si("b"), si("c")];
    let data = r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#;
    let path = Book::one_sheet(data, Some(shared)).write(dir.path(), "sst.xlsx");
    let tight = Limits {
        max_shared_strings: 2,
        ..Limits::default()
    };
    let err = RosterReader::open(&path, tight).unwrap_err();
    assert!(matches!(
        err,
        RosterFileError::TooManySharedStrings { limit: 2 }
    ));
    let enough = Limits {
        max_shared_strings: 3,
        ..Limits::default()
    };
    assert_eq!(RosterReader::open(&path, enough).unwrap().header(), ["a"]);
}

#[test]
fn a_missing_shared_string_is_bad_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let data = r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>9</v></c></row>"#;
    let path = Book::one_sheet(data, Some(vec![si("h")])).write(dir.path(), "missing.xlsx");
    let mut reader = RosterReader::open(&path, Limits::default()).unwrap();
    assert!(matches!(
        reader.next().unwrap(),
        Err(RosterFileError::BadXlsx { reason }) if reason.contains("A2")
    ));
}

#[test]
fn streams_a_large_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let shared = vec![si("姓名"), si("身份证号"), si("金额")];
    let mut data = String::from(
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c></row>"#,
    );
    for r in 2..=20_001u32 {
        data.push_str(&format!(
            r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>学生{r}</t></is></c><c r="B{r}" t="inlineStr"><is><t>3206021980{r:08}</t></is></c><c r="C{r}" s="2"><v>430.5</v></c></row>"#
        ));
    }
    let path = Book::one_sheet(&data, Some(shared)).write(dir.path(), "large.xlsx");
    let reader = RosterReader::open(&path, Limits::default()).unwrap();
    let mut count = 0;
    for r in reader {
        let r = r.unwrap();
        count += 1;
        assert_eq!(r.row_number, count + 1);
        assert_eq!(r.cells[2], "430.5");
    }
    assert_eq!(count, 20_000);
}
