//! Bank auto-debit files: the request writer, the result reader, and the way between them.

use chrono::NaiveDate;
use yibao_statement_file::{
    read_debit_request, read_debit_result, write_debit_request, write_debit_result, DebitFailure,
    DebitOutcome, DebitRequestHeader, DebitRequestItem, Fen, Limits, StatementError, TextEncoding,
    MAX_DEBIT_BATCH,
};

const RESULT_GBK: &[u8] = include_bytes!("fixtures/debit_result_gbk.txt");

fn fen(v: i64) -> Fen {
    Fen::new(v).unwrap()
}

fn header() -> DebitRequestHeader {
    DebitRequestHeader {
        run_no: "DR202011020001".into(),
        bank_code: "ICBC3206".into(),
        region_code: "320600".into(),
        debit_date: NaiveDate::from_ymd_opt(2020, 11, 2).unwrap(),
    }
}

fn item(n: usize, amount: i64) -> DebitRequestItem {
    DebitRequestItem {
        item_ref: format!("IT{n:04}"),
        agreement_no: format!("AG{n:08}"),
        id_number: "320602198001011235".into(),
        name: "张三".into(),
        amount: fen(amount),
        member: None,
    }
}

fn items() -> Vec<DebitRequestItem> {
    vec![
        item(1, 43000),
        item(2, 43000),
        item(3, 38000),
        item(4, 38000),
    ]
}

fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

fn result(text: &str) -> Result<yibao_statement_file::DebitResult, StatementError> {
    read_debit_result(text.as_bytes(), &Limits::default())
}

#[test]
fn request_file_layout() {
    let bytes = write_debit_request(&header(), &items()[..2]).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "H|DR202011020001|ICBC3206|320600|20201102|2|86000\n\
         D|1|IT0001|AG00000001|320602198001011235|张三|43000\n\
         D|2|IT0002|AG00000002|320602198001011235|张三|43000\n"
    );
}

#[test]
fn gbk_result_fixture_parses() {
    let result = read_debit_result(RESULT_GBK, &Limits::default()).unwrap();
    assert_eq!(result.encoding, TextEncoding::Gb18030);
    assert_eq!(result.header.run_no, "DR202011020001");
    assert_eq!(result.header.count, 4);
    assert_eq!(result.header.success_count, 2);
    assert_eq!(result.header.success_total, fen(81000));
    let rows = &result.rows;
    assert_eq!(rows.len(), 4);
    assert_eq!((rows[0].row, rows[0].seq), (2, 1));
    assert_eq!(
        rows[0].outcome,
        DebitOutcome::Succeeded {
            bank_txn_id: "ICBC20201102000001".into(),
            amount: fen(43000)
        }
    );
    assert_eq!(
        rows[1].outcome,
        DebitOutcome::Failed {
            reason_code: "E01".into(),
            reason: "余额不足".into()
        }
    );
    assert_eq!(
        rows[3].outcome,
        DebitOutcome::Failed {
            reason_code: "E03".into(),
            reason: "扣款协议无效：证件号码与协议不符".into()
        }
    );
    assert_eq!(
        DebitFailure::from_code("E03"),
        DebitFailure::AgreementInvalid
    );
    assert_eq!(DebitFailure::from_code("X7"), DebitFailure::Other);
    assert_eq!(DebitFailure::InsufficientFunds.label_zh(), "余额不足");
    // The request it answers: IT0001 43000, IT0003 38000 succeeded.
    let request = vec![
        item(1, 43000),
        item(2, 43000),
        item(3, 38000),
        item(4, 38000),
    ];
    result.check_against(&header(), &request).unwrap();
}

#[test]
fn round_trip_request_to_result() {
    let items = items();
    let request_bytes = write_debit_request(&header(), &items).unwrap();

    // The bank's side: read the request, debit every other item.
    let request = read_debit_request(&request_bytes, &Limits::default()).unwrap();
    assert_eq!(request.header, header());
    assert_eq!(request.count, 4);
    assert_eq!(request.total, fen(162000));
    assert_eq!(
        request
            .rows
            .iter()
            .map(|r| r.item.clone())
            .collect::<Vec<_>>(),
        items
    );
    let outcomes: Vec<(String, DebitOutcome)> = request
        .rows
        .iter()
        .map(|r| {
            let outcome = if r.seq % 2 == 1 {
                DebitOutcome::Succeeded {
                    bank_txn_id: format!("B{:06}", r.seq),
                    amount: r.item.amount,
                }
            } else {
                DebitOutcome::Failed {
                    reason_code: "E02".into(),
                    reason: "账户已冻结".into(),
                }
            };
            (r.item.item_ref.clone(), outcome)
        })
        .collect();
    let result_bytes =
        write_debit_result(&request.header.run_no, &request.header.bank_code, &outcomes).unwrap();
    let text = String::from_utf8(result_bytes.clone()).unwrap();
    assert!(text.starts_with("H|DR202011020001|ICBC3206|4|2|81000\nD|1|IT0001|S|B000001|43000||\n"));
    assert!(text.contains("\nD|2|IT0002|F|||E02|账户已冻结\n"));

    // yibao's side: read the result, check it against what was asked. GBK with CRLF too.
    for bytes in [result_bytes.clone(), gbk(&text.replace('\n', "\r\n"))] {
        let result = read_debit_result(&bytes, &Limits::default()).unwrap();
        assert_eq!(result.header.success_count, 2);
        assert_eq!(result.header.success_total, fen(81000));
        assert_eq!(
            result
                .rows
                .iter()
                .map(|r| (r.item_ref.clone(), r.outcome.clone()))
                .collect::<Vec<_>>(),
            outcomes
        );
        result.check_against(&header(), &items).unwrap();
    }

    // A result whose amount differs from the request is caught by the cross-check.
    let mut wrong = outcomes.clone();
    wrong[0].1 = DebitOutcome::Succeeded {
        bank_txn_id: "B000001".into(),
        amount: fen(42999),
    };
    let bytes = write_debit_result("DR202011020001", "ICBC3206", &wrong).unwrap();
    let result = read_debit_result(&bytes, &Limits::default()).unwrap();
    let e = result.check_against(&header(), &items).unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 2, column, .. } if column == "扣款金额"),
        "{e:?}"
    );
    let other_run = DebitRequestHeader {
        run_no: "DR202011020002".into(),
        ..header()
    };
    let result = read_debit_result(&result_bytes, &Limits::default()).unwrap();
    assert_eq!(
        result.check_against(&other_run, &items).unwrap_err().code(),
        "BAD_HEADER"
    );
}

#[test]
fn writer_refuses_what_cannot_go_in_the_file() {
    for bad in ["A|B", "A\nB", "A\rB", "", " A"] {
        let mut items = items();
        items[1].name = bad.into();
        let e = write_debit_request(&header(), &items).unwrap_err();
        assert!(
            matches!(&e, StatementError::InvalidField { item: Some(2), field, .. } if field == "姓名"),
            "{bad:?}: {e:?}"
        );
    }
    let mut h = header();
    h.run_no = "R|1".into();
    let e = write_debit_request(&h, &items()).unwrap_err();
    assert!(matches!(e, StatementError::InvalidField { item: None, .. }));
    assert!(e.to_string().starts_with("扣款文件头的“批次号”"), "{e}");

    let mut items = items();
    items[2].item_ref = "IT0001".into();
    let e = write_debit_request(&header(), &items).unwrap_err();
    assert_eq!(e.to_string(), "第3笔扣款的“明细编号”与第1笔重复");

    let mut items = self::items();
    items[0].amount = Fen::ZERO;
    assert_eq!(
        write_debit_request(&header(), &items).unwrap_err().code(),
        "INVALID_FIELD"
    );
    assert_eq!(
        write_debit_request(&header(), &[]).unwrap_err().code(),
        "INVALID_FIELD"
    );
    let outcome = |code: &str| {
        vec![(
            "IT0001".to_string(),
            DebitOutcome::Failed {
                reason_code: code.into(),
                reason: String::new(),
            },
        )]
    };
    assert!(write_debit_result("R", "B", &outcome("E01")).is_ok());
    assert!(write_debit_result("R", "B", &outcome("E-1")).is_err());
}

#[test]
fn batch_size_is_bounded() {
    let many: Vec<DebitRequestItem> = (1..=MAX_DEBIT_BATCH + 1).map(|n| item(n, 100)).collect();
    assert_eq!(
        write_debit_request(&header(), &many).unwrap_err(),
        StatementError::BatchTooLarge {
            count: MAX_DEBIT_BATCH as u64 + 1,
            limit: MAX_DEBIT_BATCH as u64
        }
    );
    let bytes = write_debit_request(&header(), &many[..MAX_DEBIT_BATCH]).unwrap();
    let request = read_debit_request(&bytes, &Limits::default()).unwrap();
    assert_eq!(request.rows.len(), MAX_DEBIT_BATCH);
    // A result header claiming more is refused.
    let e = result("H|R|B|50001|0|0\n").unwrap_err();
    assert!(
        matches!(&e, StatementError::BadRow { row: 1, column, .. } if column == "笔数"),
        "{e:?}"
    );
}

#[test]
fn result_counts_and_totals_are_checked() {
    let ok = "H|R|B|2|1|500\nD|1|A|S|T1|500||\nD|2|B|F|||E01|余额不足\n";
    assert!(result(ok).is_ok());

    // Truncated: a line lost at the end.
    let e = result("H|R|B|2|1|500\nD|1|A|S|T1|500||\n").unwrap_err();
    assert_eq!(
        e,
        StatementError::SummaryMismatch {
            item: "笔数".into(),
            declared: "2笔".into(),
            computed: "1笔".into()
        }
    );
    // More lines than the header says.
    let e = result(&format!("{ok}D|3|C|F|||E99|其他\n")).unwrap_err();
    assert_eq!(e.code(), "SUMMARY_MISMATCH");
    let e = result("H|R|B|2|2|500\nD|1|A|S|T1|500||\nD|2|B|F|||E01|\n").unwrap_err();
    assert!(
        matches!(&e, StatementError::SummaryMismatch { item, .. } if item == "成功笔数"),
        "{e:?}"
    );
    let e = result("H|R|B|2|1|501\nD|1|A|S|T1|500||\nD|2|B|F|||E01|\n").unwrap_err();
    assert_eq!(
        e,
        StatementError::SummaryMismatch {
            item: "成功金额".into(),
            declared: "5.01元".into(),
            computed: "5.00元".into()
        }
    );
    // No success at all: total 0.
    assert!(result("H|R|B|1|0|0\nD|1|A|F|||E03|协议无效\n").is_ok());
    // Trailing empty fields may be left off a success line.
    assert!(result("H|R|B|1|1|500\r\nD|1|A|S|T1|500\r\n").is_ok());
}

#[test]
fn result_lines_are_checked() {
    let cases: [(&str, u64, &str); 9] = [
        (
            "H|R|B|2|1|500\nD|2|A|S|T1|500||\nD|1|B|F|||E01|\n",
            2,
            "序号",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|S|T1|500||\nD|1|B|F|||E01|\n",
            3,
            "序号",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|X|T1|500||\nD|2|B|F|||E01|\n",
            2,
            "状态",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|S|T1|5.00||\nD|2|B|F|||E01|\n",
            2,
            "金额",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|S||500||\nD|2|B|F|||E01|\n",
            2,
            "银行流水号",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|S|T1|500|E01|\nD|2|B|F|||E01|\n",
            2,
            "原因代码",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|S|T1|500||\nD|2|B|F|||错误|\n",
            3,
            "原因代码",
        ),
        (
            "H|R|B|2|1|500\nD|1|A|S|T1|500||\nD|2|B|F||500|E01|\n",
            3,
            "金额",
        ),
        (
            "H|R|B|2|1|500\nX|1|A|S|T1|500||\nD|2|B|F|||E01|\n",
            2,
            "记录类型",
        ),
    ];
    for (text, row, column) in cases {
        match result(text) {
            Err(StatementError::BadRow {
                row: r, column: c, ..
            }) => {
                assert_eq!((r, c.as_str()), (row, column), "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let e = result("H|R|B|2|1|500\nD|1|A|S|T1|500||\nD|2|A|F|||E01|\n").unwrap_err();
    assert_eq!(
        e,
        StatementError::DuplicateItem {
            row: 3,
            item_ref: "A".into(),
            first_row: 2
        }
    );
    assert_eq!(e.to_string(), "第3行的明细编号“A”与第2行重复");
    // A reason text with a `|` in it makes too many fields.
    assert_eq!(
        result("H|R|B|1|0|0\nD|1|A|F|||E01|余额|不足\n")
            .unwrap_err()
            .code(),
        "BAD_ROW"
    );
    assert!(matches!(
        result("D|1|A|S|T1|500||\n"),
        Err(StatementError::BadHeader { row: 1, .. })
    ));
    assert!(matches!(
        result("H|R|B|1|1\n"),
        Err(StatementError::BadHeader { row: 1, .. })
    ));
    assert_eq!(result("\n\n").unwrap_err(), StatementError::Empty);
}

#[test]
fn result_limits() {
    let text = "H|R|B|2|1|500\nD|1|A|S|T1|500||\nD|2|B|F|||E01|余额不足\n";
    let limits = Limits {
        max_lines: 1,
        ..Limits::default()
    };
    assert_eq!(
        read_debit_result(text.as_bytes(), &limits).unwrap_err(),
        StatementError::TooManyLines { limit: 1 }
    );
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        read_debit_result(text.as_bytes(), &limits)
            .unwrap_err()
            .code(),
        "TOO_LARGE"
    );
    let limits = Limits {
        max_field_chars: 3,
        ..Limits::default()
    };
    assert_eq!(
        read_debit_result(text.as_bytes(), &limits).unwrap_err(),
        StatementError::FieldTooLong {
            row: 3,
            column: "原因说明".into(),
            limit: 3
        }
    );
    let mut bad = b"H|R|B|1|0|0\nD|1|A|F|||E01|".to_vec();
    bad.extend_from_slice(&[0xff, 0xfe, 0x80]);
    assert_eq!(
        read_debit_result(&bad, &Limits::default()).unwrap_err(),
        StatementError::Encoding { row: 2 }
    );
}

#[test]
fn no_result_input_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for len in 0..=RESULT_GBK.len() {
        let _ = read_debit_result(&RESULT_GBK[..len], &Limits::default());
        let _ = read_debit_request(&RESULT_GBK[..len], &Limits::default());
    }
    for _ in 0..3000 {
        let mut copy = RESULT_GBK.to_vec();
        let at = (next() % copy.len() as u64) as usize;
        copy[at] = (next() & 0xff) as u8;
        let _ = read_debit_result(&copy, &Limits::default());
    }
}

#[test]
fn a_family_debit_names_the_holder_and_then_the_member() {
    let mut family = item(1, 43000);
    family.member = Some(yibao_statement_file::DebitMember {
        id_number: "320602201001011232".into(),
        name: "张小三".into(),
    });
    let bytes = write_debit_request(&header(), std::slice::from_ref(&family)).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "H|DR202011020001|ICBC3206|320600|20201102|1|43000\n\
         D|1|IT0001|AG00000001|320602198001011235|张三|43000|320602201001011232|张小三\n",
        "the holder (the account the bank checks) first, the member after the amount"
    );
    let request = read_debit_request(&bytes, &Limits::default()).unwrap();
    assert_eq!(request.rows[0].item, family);
    // The bank echoes the member and the day it debited; both come back.
    let answer = yibao_statement_file::write_debit_result_entries(
        "DR202011020001",
        "ICBC3206",
        &[yibao_statement_file::DebitResultEntry {
            item_ref: "IT0001".into(),
            outcome: DebitOutcome::Succeeded {
                bank_txn_id: "ICBC1".into(),
                amount: fen(43000),
            },
            debit_day: NaiveDate::from_ymd_opt(2020, 11, 2),
            member_id_number: Some("320602201001011232".into()),
        }],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(answer.clone()).unwrap(),
        "H|DR202011020001|ICBC3206|1|1|43000\nD|1|IT0001|S|ICBC1|43000|||20201102|320602201001011232\n"
    );
    let answered = read_debit_result(&answer, &Limits::default()).unwrap();
    assert_eq!(
        answered.rows[0].debit_day,
        NaiveDate::from_ymd_opt(2020, 11, 2)
    );
    assert_eq!(
        answered.rows[0].member_id_number.as_deref(),
        Some("320602201001011232")
    );
    answered
        .check_against(&header(), std::slice::from_ref(&family))
        .unwrap();
    // Another member echoed back is not this request's answer.
    let mut other = family.clone();
    other.member.as_mut().unwrap().id_number = "320602201001021238".into();
    let e = answered.check_against(&header(), &[other]).unwrap_err();
    assert!(e.message_zh().contains("第2行"), "{}", e.message_zh());
    // A failure may echo the member too; a malformed debit day is refused with its line.
    let failed = result_text("H|R|B|1|0|0\nD|1|IT0001|F|||E01|余额不足||320602201001011232\n");
    assert_eq!(failed.rows[0].debit_day, None);
    let e = result("H|R|B|1|1|5\nD|1|IT0001|S|T|5|||2020-11-02|\n").unwrap_err();
    assert_eq!(e.code(), "BAD_ROW");
    assert!(e.message_zh().contains("扣款日期"), "{}", e.message_zh());
}

fn result_text(text: &str) -> yibao_statement_file::DebitResult {
    result(text).unwrap()
}

/// Issue 21: names with rare characters go into the request file exactly (UTF-8), and a bank that
/// converts the files to its own legacy encoding must use GB 18030: GBK cannot hold them (encoding
/// to GBK would put `&#…;` or `?` in their place), GB 18030 can, and yibao reads it back exactly.
#[test]
fn rare_names_survive_the_request_file_and_gb18030() {
    let names = ["刘䶮", "𪚥明华", "𠀾𡒊", "葛\u{E0100}亮", "阿依古丽·买买提"];
    let items: Vec<DebitRequestItem> = names
        .iter()
        .enumerate()
        .map(|(i, name)| DebitRequestItem {
            name: (*name).into(),
            member: Some(yibao_statement_file::DebitMember {
                id_number: "320602201501021234".into(),
                name: format!("{name}子"),
            }),
            ..item(i + 1, 43000)
        })
        .collect();
    let bytes = write_debit_request(&header(), &items).unwrap();
    let text = String::from_utf8(bytes.clone()).expect("the request file is UTF-8");
    for name in names {
        assert!(text.contains(&format!("|{name}|43000|")), "{name}");
    }
    let (_, _, gbk_lossy) = encoding_rs::GBK.encode(&text);
    assert!(gbk_lossy, "GBK cannot hold these names");
    let (converted, _, gb18030_lossy) = encoding_rs::GB18030.encode(&text);
    assert!(!gb18030_lossy, "GB 18030 holds every one");
    for bytes in [bytes, converted.into_owned()] {
        let request = read_debit_request(&bytes, &Limits::default()).unwrap();
        let read: Vec<DebitRequestItem> = request.rows.into_iter().map(|r| r.item).collect();
        assert_eq!(read, items);
    }
    // A result in GB 18030 whose reason text names a holder with a character outside GBK.
    let result_text = "H|DR202011020001|ICBC3206|1|0|0\nD|1|IT0001|F|||E03|户名𪚥明华与协议不符\n";
    let (gb18030, _, _) = encoding_rs::GB18030.encode(result_text);
    let result = read_debit_result(&gb18030, &Limits::default()).unwrap();
    assert_eq!(result.encoding, TextEncoding::Gb18030);
    assert!(matches!(
        &result.rows[0].outcome,
        DebitOutcome::Failed { reason, .. } if reason == "户名𪚥明华与协议不符"
    ));
}
