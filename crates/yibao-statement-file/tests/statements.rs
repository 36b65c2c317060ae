//! Channel statements: the three formats, their summaries, limits and errors.

use std::io::Write;

use yibao_statement_file::{
    read_statement, read_statement_to_vec, DeclaredTotals, Fen, Limits, LineKind, StatementError,
    StatementFormat, StatementLine, StatementOptions, StatementSummary, TextEncoding, WechatKey,
};

const PROTOCOL: &[u8] = include_bytes!("fixtures/protocol_statement.csv");
const WECHAT: &[u8] = include_bytes!("fixtures/wechat_trade_bill.csv");
const ALIPAY_ZIP: &[u8] = include_bytes!("fixtures/alipay_bill.zip");

fn fen(v: i64) -> Fen {
    Fen::new(v).unwrap()
}

fn line(
    row: u64,
    txn: &str,
    kind: LineKind,
    amount: i64,
    at: Option<&str>,
    refund_no: Option<&str>,
) -> StatementLine {
    StatementLine {
        row,
        channel_txn_id: txn.to_owned(),
        kind,
        amount: fen(amount),
        occurred_at: at.map(str::to_owned),
        refund_no: refund_no.map(str::to_owned),
    }
}

fn read(
    format: StatementFormat,
    bytes: &[u8],
) -> Result<(Vec<StatementLine>, StatementSummary), StatementError> {
    read_statement_to_vec(format, bytes, &StatementOptions::default())
}

fn with_limits(
    format: StatementFormat,
    bytes: &[u8],
    limits: Limits,
) -> Result<(Vec<StatementLine>, StatementSummary), StatementError> {
    let options = StatementOptions {
        limits,
        ..StatementOptions::default()
    };
    read_statement_to_vec(format, bytes, &options)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

/// A zip of `(name, bytes)` entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

// ---------------------------------------------------------------- protocol

#[test]
fn protocol_fixture_parses() {
    let (lines, summary) = read(StatementFormat::Protocol, PROTOCOL).unwrap();
    assert_eq!(
        lines,
        vec![
            line(
                2,
                "T20201102000001",
                LineKind::Payment,
                43000,
                Some("2020-11-02T10:15:00+08:00"),
                None
            ),
            line(
                3,
                "T20201102000002",
                LineKind::Payment,
                38000,
                Some("2020-11-02T11:20:30+08:00"),
                None
            ),
            line(
                5,
                "T20201102000003",
                LineKind::Reversal,
                12000,
                Some("2020-11-02T12:00:00+08:00"),
                None
            ),
            line(
                6,
                "T20201102000001",
                LineKind::Refund,
                43000,
                Some("2020-11-03T09:00:00+08:00"),
                Some("R000017")
            ),
            line(7, "T20201102000004", LineKind::Payment, 1, None, None),
        ]
    );
    assert_eq!(summary.lines, 5);
    assert_eq!(summary.encoding, TextEncoding::Utf8Bom);
    assert_eq!(summary.declared, None);
    let t = summary.totals;
    assert_eq!((t.payment_count, t.payment_total), (3, fen(81001)));
    assert_eq!((t.refund_count, t.refund_total), (1, fen(43000)));
    assert_eq!((t.reversal_count, t.reversal_total), (1, fen(12000)));
}

#[test]
fn protocol_bad_amount_names_row_and_column() {
    let csv =
        "channel_txn_id,type,amount,occurred_at,refund_no\nT1,payment,43000,,\nT2,payment,4.3,,\n";
    let e = read(StatementFormat::Protocol, csv.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        StatementError::BadRow {
            row: 3,
            column: "金额（amount）".into(),
            message: "应为整数分，实际为“4.3”".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "第3行“金额（amount）”应为整数分，实际为“4.3”"
    );
    assert_eq!(e.code(), "BAD_ROW");

    for (body, column) in [
        ("T2,payment,0,,", "金额（amount）"),
        ("T2,payment,-5,,", "金额（amount）"),
        ("T2,refund,100,,", "退款单号（refund_no）"),
        ("T2,pay,100,,", "类型（type）"),
        (",payment,100,,", "交易号（channel_txn_id）"),
        ("T2,payment,100,tomorrow,", "时间（occurred_at）"),
    ] {
        let csv = format!("channel_txn_id,type,amount,occurred_at,refund_no\n{body}\n");
        match read(StatementFormat::Protocol, csv.as_bytes()) {
            Err(StatementError::BadRow {
                row: 2, column: c, ..
            }) => assert_eq!(c, column, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn protocol_header_is_required_and_found_by_name() {
    let e = read(StatementFormat::Protocol, b"T1,payment,43000,,\n").unwrap_err();
    assert!(
        matches!(e, StatementError::BadHeader { row: 1, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("channel_txn_id,type,amount"));
    assert_eq!(
        read(StatementFormat::Protocol, b"\n\n").unwrap_err(),
        StatementError::Empty
    );
    // Another order, an added column, no refund_no column, quoted values, CRLF.
    let csv = "\r\nAMOUNT,Channel_Txn_Id,type,note\r\n\"100\",\"T,1\",payment,\"x \"\"y\"\"\"\r\n";
    let (lines, _) = read(StatementFormat::Protocol, csv.as_bytes()).unwrap();
    assert_eq!(
        lines,
        vec![line(3, "T,1", LineKind::Payment, 100, None, None)]
    );
    let (lines, summary) = read(
        StatementFormat::Protocol,
        b"channel_txn_id,type,amount,occurred_at,refund_no\n",
    )
    .unwrap();
    assert!(lines.is_empty());
    assert_eq!(summary.lines, 0);
}

#[test]
fn protocol_refuses_shifted_and_unclosed_lines() {
    let csv = "channel_txn_id,type,amount,occurred_at,refund_no\nT1,payment,100,,,extra\n";
    let e = read(StatementFormat::Protocol, csv.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 2, column, .. } if column.is_empty()),
        "{e:?}"
    );
    let csv = "channel_txn_id,type,amount,occurred_at,refund_no\n\"T1,payment,100,,\n";
    assert!(matches!(
        read(StatementFormat::Protocol, csv.as_bytes()),
        Err(StatementError::BadRow { row: 2, .. })
    ));
}

#[test]
fn callback_errors_stop_reading() {
    #[derive(Debug)]
    enum MyError {
        File(StatementError),
        Full,
    }
    impl From<StatementError> for MyError {
        fn from(e: StatementError) -> MyError {
            MyError::File(e)
        }
    }
    let mut seen = 0;
    let result = read_statement(
        StatementFormat::Protocol,
        PROTOCOL,
        &StatementOptions::default(),
        |_| {
            seen += 1;
            if seen == 2 {
                Err(MyError::Full)
            } else {
                Ok(())
            }
        },
    );
    assert!(matches!(result, Err(MyError::Full)));
    assert_eq!(seen, 2);
    let result = read_statement(
        StatementFormat::Protocol,
        b"x",
        &StatementOptions::default(),
        |_| Ok::<(), MyError>(()),
    );
    assert!(matches!(
        result,
        Err(MyError::File(StatementError::BadHeader { .. }))
    ));
}

#[test]
fn formats_by_name() {
    assert_eq!(
        "protocol".parse::<StatementFormat>(),
        Ok(StatementFormat::Protocol)
    );
    assert_eq!(
        "WeChat".parse::<StatementFormat>(),
        Ok(StatementFormat::WechatTradeBill)
    );
    assert_eq!(
        "alipay".parse::<StatementFormat>(),
        Ok(StatementFormat::AlipayBill)
    );
    assert!("unionpay".parse::<StatementFormat>().is_err());
    assert_eq!(StatementFormat::WechatTradeBill.to_string(), "wechat");
}

// ---------------------------------------------------------------- WeChat

#[test]
fn wechat_fixture_parses() {
    let (lines, summary) = read(StatementFormat::WechatTradeBill, WECHAT).unwrap();
    assert_eq!(
        lines,
        vec![
            line(
                2,
                "YB20201102000001",
                LineKind::Payment,
                43000,
                Some("2020-11-02T10:15:00+08:00"),
                None
            ),
            line(
                3,
                "YB20201102000002",
                LineKind::Payment,
                38000,
                Some("2020-11-02T11:20:30+08:00"),
                None
            ),
            line(
                4,
                "YB20201102000003",
                LineKind::Reversal,
                12000,
                Some("2020-11-02T12:00:00+08:00"),
                None
            ),
            line(
                5,
                "YB20201102000001",
                LineKind::Refund,
                43000,
                Some("2020-11-02T23:10:00+08:00"),
                Some("R000017")
            ),
        ]
    );
    let Some(DeclaredTotals::Wechat(declared)) = summary.declared else {
        panic!("{:?}", summary.declared);
    };
    assert_eq!(declared.trade_count, 4);
    assert_eq!(declared.settlement_total, fen(93000));
    assert_eq!(declared.refund_total, fen(43000));
    assert_eq!(declared.order_total, Some(fen(93000)));
    assert_eq!(declared.refund_requested_total, Some(fen(43000)));
    assert_eq!(summary.totals.payment_total, fen(81000));
}

#[test]
fn wechat_key_is_selectable() {
    let options = StatementOptions {
        wechat_key: WechatKey::WechatOrderNo,
        ..StatementOptions::default()
    };
    let (lines, _) =
        read_statement_to_vec(StatementFormat::WechatTradeBill, WECHAT, &options).unwrap();
    assert_eq!(lines[0].channel_txn_id, "4200000801202011021234567890");
    assert_eq!(lines[3].channel_txn_id, "4200000801202011021234567890");
}

#[test]
fn wechat_summary_mismatch_is_detected() {
    // One detail amount changed: the column sum no longer matches.
    let changed = text(WECHAT).replacen("`380.00", "`381.00", 1);
    let e = read(StatementFormat::WechatTradeBill, changed.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        StatementError::SummaryMismatch {
            item: "应结订单总金额".into(),
            declared: "930.00元".into(),
            computed: "931.00元".into()
        }
    );
    assert_eq!(e.code(), "SUMMARY_MISMATCH");
    // A detail line lost in the middle: the count no longer matches.
    let full = text(WECHAT);
    let lost = full
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n");
    let e = read(StatementFormat::WechatTradeBill, lost.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, StatementError::SummaryMismatch { item, .. } if item == "总交易单数"),
        "{e:?}"
    );
}

#[test]
fn wechat_truncated_bill_is_refused() {
    let full = text(WECHAT);
    // Cut after the third detail line: no summary.
    let cut: String = full.lines().take(4).map(|l| format!("{l}\n")).collect();
    let e = read(StatementFormat::WechatTradeBill, cut.as_bytes()).unwrap_err();
    assert_eq!(e.code(), "TRUNCATED", "{e:?}");
    assert!(e.to_string().starts_with("文件不完整"));
    // Cut in the middle of a line: that line is short.
    let cut = &full[..full.find("`REVOKED").unwrap()];
    let e = read(StatementFormat::WechatTradeBill, cut.as_bytes()).unwrap_err();
    assert!(matches!(e, StatementError::BadRow { row: 4, .. }), "{e:?}");
    // Summary header without its values.
    let cut: String = full.lines().take(6).map(|l| format!("{l}\n")).collect();
    let e = read(StatementFormat::WechatTradeBill, cut.as_bytes()).unwrap_err();
    assert_eq!(e.code(), "TRUNCATED", "{e:?}");
    // Anything after the summary.
    let extra = format!("{full}`more\n");
    let e = read(StatementFormat::WechatTradeBill, extra.as_bytes()).unwrap_err();
    assert!(matches!(e, StatementError::BadRow { row: 8, .. }), "{e:?}");
}

#[test]
fn wechat_bad_values_name_row_and_column() {
    let bad = text(WECHAT).replacen("`380.00", "`38O.00", 1);
    let e = read(StatementFormat::WechatTradeBill, bad.as_bytes()).unwrap_err();
    match &e {
        StatementError::BadRow {
            row: 3,
            column,
            message,
        } => {
            assert_eq!(column, "应结订单金额");
            assert!(message.contains("“38O.00”"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let bad = text(WECHAT).replacen("`REVOKED", "`CLOSED", 1);
    let e = read(StatementFormat::WechatTradeBill, bad.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 4, column, .. } if column == "交易状态"),
        "{e:?}"
    );
    let bad = text(WECHAT).replacen("`R000017", "`", 1);
    let e = read(StatementFormat::WechatTradeBill, bad.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 5, column, .. } if column == "商户退款单号"),
        "{e:?}"
    );
    let e = read(
        StatementFormat::WechatTradeBill,
        "<xml><return_code>FAIL</return_code></xml>".as_bytes(),
    )
    .unwrap_err();
    assert!(
        matches!(e, StatementError::BadHeader { row: 1, .. }),
        "{e:?}"
    );
}

#[test]
fn wechat_falls_back_to_order_amount() {
    let bill = text(WECHAT)
        .replacen("`430.00,`0.00,`0,", "`,`0.00,`0,", 1)
        .replacen("`930.00,`430.00,`0.00", "`500.00,`430.00,`0.00", 1);
    let (lines, _) = read(StatementFormat::WechatTradeBill, bill.as_bytes()).unwrap();
    assert_eq!(lines[0].amount, fen(43000));
}

// ---------------------------------------------------------------- Alipay

fn alipay_expected() -> Vec<StatementLine> {
    vec![
        line(
            6,
            "YB20201102000001",
            LineKind::Payment,
            43000,
            Some("2020-11-02T10:15:05+08:00"),
            None,
        ),
        line(
            7,
            "YB20201102000002",
            LineKind::Payment,
            38000,
            Some("2020-11-02T11:20:31+08:00"),
            None,
        ),
        line(
            8,
            "YB20201102000001",
            LineKind::Refund,
            43000,
            Some("2020-11-02T23:10:02+08:00"),
            Some("R000017"),
        ),
    ]
}

/// The detail CSV of the fixture zip, as text.
fn alipay_csv() -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(ALIPAY_ZIP)).unwrap();
    let mut entry = archive.by_index(0).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut raw).unwrap();
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(&raw)
        .unwrap()
        .into_owned()
}

#[test]
fn alipay_fixture_parses() {
    let (lines, summary) = read(StatementFormat::AlipayBill, ALIPAY_ZIP).unwrap();
    assert_eq!(lines, alipay_expected());
    assert_eq!(summary.encoding, TextEncoding::Gb18030);
    assert_eq!(
        summary.source_name.as_deref(),
        Some("20880000000000000156_20201102_业务明细.csv")
    );
    let Some(DeclaredTotals::Alipay(declared)) = summary.declared else {
        panic!("{:?}", summary.declared);
    };
    assert_eq!(
        (declared.trade_count, declared.trade_received),
        (2, fen(81000))
    );
    assert_eq!(
        (declared.refund_count, declared.refund_received),
        (1, fen(-43000))
    );
    assert_eq!(declared.trade_merchant_discount, Some(Fen::ZERO));
    assert_eq!(summary.totals.refund_total, fen(43000));
}

#[test]
fn alipay_unpacked_csv_and_utf8_names_are_read() {
    let csv = gbk(&alipay_csv());
    let (lines, summary) = read(StatementFormat::AlipayBill, &csv).unwrap();
    assert_eq!(lines, alipay_expected());
    assert_eq!(summary.source_name, None);
    // A zip with a UTF-8 name and only one CSV, whatever its name.
    let zip = zip_of(&[("账单.csv", &csv), ("readme.txt", b"x")]);
    let (lines, summary) = read(StatementFormat::AlipayBill, &zip).unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(summary.source_name.as_deref(), Some("账单.csv"));
}

#[test]
fn alipay_negative_refund_becomes_positive_with_refund_no() {
    let (lines, _) = read(StatementFormat::AlipayBill, ALIPAY_ZIP).unwrap();
    let refund = lines.iter().find(|l| l.kind == LineKind::Refund).unwrap();
    assert_eq!(refund.amount, fen(43000));
    assert!(!refund.amount.is_negative());
    assert_eq!(refund.refund_no.as_deref(), Some("R000017"));
    // A refund without its batch number is refused.
    let csv = alipay_csv().replacen("R000017\t", "\t", 1);
    let e = read(StatementFormat::AlipayBill, &gbk(&csv)).unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 8, column, .. } if column == "退款批次号/请求号"),
        "{e:?}"
    );
}

#[test]
fn alipay_summary_mismatch_and_truncation() {
    let csv = alipay_csv().replace("商家实收共810.00元", "商家实收共811.00元");
    let e = read(StatementFormat::AlipayBill, &gbk(&csv)).unwrap_err();
    assert_eq!(
        e,
        StatementError::SummaryMismatch {
            item: "交易商家实收".into(),
            declared: "811.00元".into(),
            computed: "810.00元".into()
        }
    );
    let csv = alipay_csv().replace("#退款合计：1笔", "#退款合计：2笔");
    let e = read(StatementFormat::AlipayBill, &gbk(&csv)).unwrap_err();
    assert!(
        matches!(&e, StatementError::SummaryMismatch { item, .. } if item == "退款笔数"),
        "{e:?}"
    );
    // Cut after the second detail line: no end marker, no totals.
    let full = alipay_csv();
    let cut: String = full.lines().take(7).map(|l| format!("{l}\r\n")).collect();
    let e = read(StatementFormat::AlipayBill, &gbk(&cut)).unwrap_err();
    assert_eq!(e.code(), "TRUNCATED", "{e:?}");
    // End marker but no totals.
    let cut: String = full.lines().take(9).map(|l| format!("{l}\r\n")).collect();
    let e = read(StatementFormat::AlipayBill, &gbk(&cut)).unwrap_err();
    assert_eq!(e.code(), "TRUNCATED", "{e:?}");
    // A truncated zip does not open.
    let e = read(
        StatementFormat::AlipayBill,
        &ALIPAY_ZIP[..ALIPAY_ZIP.len() - 30],
    )
    .unwrap_err();
    assert_eq!(e.code(), "BAD_ARCHIVE", "{e:?}");
}

#[test]
fn alipay_bad_amount_and_type() {
    let csv = alipay_csv().replacen("380.00\t", "3.805\t", 1);
    let e = read(StatementFormat::AlipayBill, &gbk(&csv)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "第7行“订单金额（元）”超过两位小数（最小单位为分），实际为“3.805”"
    );
    let csv = alipay_csv().replacen("交易\t", "冻结\t", 1);
    let e = read(StatementFormat::AlipayBill, &gbk(&csv)).unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 6, column, .. } if column == "业务类型"),
        "{e:?}"
    );
}

#[test]
fn alipay_archive_problems() {
    let csv = gbk(&alipay_csv());
    let zip = zip_of(&[("a.csv", &csv), ("b.csv", &csv)]);
    let e = read(StatementFormat::AlipayBill, &zip).unwrap_err();
    assert_eq!(e.code(), "BAD_ARCHIVE");
    assert!(e.to_string().contains("“a.csv”"), "{e}");
    let zip = zip_of(&[("readme.txt", b"x")]);
    assert_eq!(
        read(StatementFormat::AlipayBill, &zip).unwrap_err().code(),
        "BAD_ARCHIVE"
    );
    let e = read(StatementFormat::AlipayBill, b"PK\x03\x04garbage").unwrap_err();
    assert_eq!(e.code(), "BAD_ARCHIVE");
    // A damaged entry: its checksum fails.
    let mut damaged = zip_of(&[("业务明细.csv", &csv)]);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file("业务明细.csv", stored).unwrap();
    writer.write_all(&csv).unwrap();
    let mut stored_zip = writer.finish().unwrap().into_inner();
    let at = stored_zip
        .windows(b"YB20201102000002".len())
        .position(|w| w == b"YB20201102000002")
        .unwrap();
    stored_zip[at] = b'Z';
    let e = read(StatementFormat::AlipayBill, &stored_zip).unwrap_err();
    assert_eq!(e.code(), "BAD_ARCHIVE", "{e:?}");
    damaged.truncate(damaged.len() / 2);
    assert_eq!(
        read(StatementFormat::AlipayBill, &damaged)
            .unwrap_err()
            .code(),
        "BAD_ARCHIVE"
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn too_large_input_is_refused_before_reading() {
    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    for (format, bytes) in [
        (StatementFormat::Protocol, PROTOCOL),
        (StatementFormat::WechatTradeBill, WECHAT),
        (StatementFormat::AlipayBill, ALIPAY_ZIP),
    ] {
        assert_eq!(
            with_limits(format, bytes, limits).unwrap_err(),
            StatementError::TooLarge {
                limit: 100,
                unpacked: false
            }
        );
    }
}

#[test]
fn zip_bomb_is_bounded() {
    // 8 MiB of one repeated comment line deflates to a few KiB.
    let mut csv = gbk(&alipay_csv());
    let filler = "#".repeat(1023) + "\n";
    for _ in 0..8 * 1024 {
        csv.extend_from_slice(filler.as_bytes());
    }
    let zip = zip_of(&[("业务明细.csv", &csv)]);
    assert!(zip.len() < 64 * 1024, "{}", zip.len());
    let limits = Limits {
        max_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let e = with_limits(StatementFormat::AlipayBill, &zip, limits).unwrap_err();
    assert_eq!(
        e,
        StatementError::TooLarge {
            limit: 1024 * 1024,
            unpacked: true
        }
    );
    assert!(e.to_string().contains("解压后"));
    // The same bill without the filler reads within the same limit.
    assert!(with_limits(
        StatementFormat::AlipayBill,
        &zip_of(&[("业务明细.csv", &gbk(&alipay_csv()))]),
        limits
    )
    .is_ok());
}

#[test]
fn too_many_lines() {
    let limits = Limits {
        max_lines: 2,
        ..Limits::default()
    };
    for (format, bytes) in [
        (StatementFormat::Protocol, PROTOCOL),
        (StatementFormat::WechatTradeBill, WECHAT),
        (StatementFormat::AlipayBill, ALIPAY_ZIP),
    ] {
        assert_eq!(
            with_limits(format, bytes, limits).unwrap_err(),
            StatementError::TooManyLines { limit: 2 },
            "{format}"
        );
    }
    let limits = Limits {
        max_lines: 5,
        ..Limits::default()
    };
    assert!(with_limits(StatementFormat::Protocol, PROTOCOL, limits).is_ok());
}

#[test]
fn field_too_long() {
    let long = "T".repeat(129);
    let csv = format!("channel_txn_id,type,amount,occurred_at,refund_no\n{long},payment,1,,\n");
    let e = read(StatementFormat::Protocol, csv.as_bytes()).unwrap_err();
    assert_eq!(
        e,
        StatementError::FieldTooLong {
            row: 2,
            column: "交易号（channel_txn_id）".into(),
            limit: 128
        }
    );
    let ok = format!(
        "channel_txn_id,type,amount,occurred_at,refund_no\n{},payment,1,,\n",
        "T".repeat(128)
    );
    assert!(read(StatementFormat::Protocol, ok.as_bytes()).is_ok());
    // Characters, not bytes.
    let chinese = format!(
        "channel_txn_id,type,amount,occurred_at,refund_no\n{},payment,1,,\n",
        "号".repeat(128)
    );
    assert!(read(StatementFormat::Protocol, chinese.as_bytes()).is_ok());
    let limits = Limits {
        max_field_chars: 10,
        ..Limits::default()
    };
    let e = with_limits(StatementFormat::WechatTradeBill, WECHAT, limits).unwrap_err();
    assert!(
        matches!(&e, StatementError::FieldTooLong { row: 2, column, limit: 10 } if column == "商户订单号"),
        "{e:?}"
    );
}

#[test]
fn line_too_long() {
    let limits = Limits::default();
    let mut csv = b"channel_txn_id,type,amount,occurred_at,refund_no\n".to_vec();
    csv.extend(std::iter::repeat_n(b'x', limits.max_line_bytes() + 1));
    let e = read(StatementFormat::Protocol, &csv).unwrap_err();
    assert_eq!(
        e,
        StatementError::LineTooLong {
            row: 2,
            limit: limits.max_line_bytes() as u64
        }
    );
}

#[test]
fn mixed_encodings_are_refused_with_the_row() {
    let mut csv = "channel_txn_id,type,amount,occurred_at,refund_no\nT1,payment,1,,\nT2,refund,1,,退款单一号\n"
        .as_bytes()
        .to_vec();
    csv.extend_from_slice(&gbk("T3,refund,1,,退款单二号\n"));
    let e = read(StatementFormat::Protocol, &csv).unwrap_err();
    assert_eq!(e, StatementError::Encoding { row: 4 });
    assert_eq!(e.code(), "ENCODING");
}

// ---------------------------------------------------------------- robustness

/// Every prefix and a few thousand single-byte corruptions of every fixture: errors, never a
/// panic.
#[test]
fn no_input_panics() {
    let csv = gbk(&alipay_csv());
    let inputs: [(StatementFormat, &[u8]); 4] = [
        (StatementFormat::Protocol, PROTOCOL),
        (StatementFormat::WechatTradeBill, WECHAT),
        (StatementFormat::AlipayBill, ALIPAY_ZIP),
        (StatementFormat::AlipayBill, &csv),
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (format, bytes) in inputs {
        for len in 0..=bytes.len() {
            let _ = read(format, &bytes[..len]);
        }
        for _ in 0..2000 {
            let mut copy = bytes.to_vec();
            let at = (next() % copy.len() as u64) as usize;
            copy[at] = (next() & 0xff) as u8;
            let _ = read(format, &copy);
        }
        // Every format on every other format's bytes.
        for other in [
            StatementFormat::Protocol,
            StatementFormat::WechatTradeBill,
            StatementFormat::AlipayBill,
        ] {
            let _ = read(other, bytes);
        }
    }
}

/// A large protocol statement streams without trouble; in release builds a million lines take
/// well under a second (`cargo test --release -- --ignored`).
#[test]
#[ignore]
fn a_million_lines() {
    let mut csv = String::from("channel_txn_id,type,amount,occurred_at,refund_no\n");
    for i in 0..1_000_000u64 {
        csv.push_str(&format!("T{i:015},payment,43000,2020-11-02 10:15:00,\n"));
    }
    let started = std::time::Instant::now();
    let mut count = 0u64;
    let summary = read_statement(
        StatementFormat::Protocol,
        csv.as_bytes(),
        &StatementOptions::default(),
        |_| {
            count += 1;
            Ok::<(), StatementError>(())
        },
    )
    .unwrap();
    assert_eq!(summary.lines, 1_000_000);
    assert_eq!(count, 1_000_000);
    eprintln!("1 000 000 lines in {:?}", started.elapsed());
}
