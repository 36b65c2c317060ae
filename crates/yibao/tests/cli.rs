//! The `yibao` binary as operators script it.

use std::process::Command;

use serde_json::Value;

fn yibao(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
    let json = serde_json::from_str(stdout.trim()).unwrap();
    (out.status.code().unwrap(), json)
}

#[test]
fn id_parse_answers_every_kind_of_input() {
    let cases = [
        ("11010519491231002X", "11010519491231002X", "18"),
        ("11010519491231002x", "11010519491231002X", "18"),
        ("320602198001011235", "320602198001011235", "18"),
        ("110105491231002", "11010519491231002X", "15"),
        ("11010519491231002", "11010519491231002X", "17"),
    ];
    for (input, id, kind) in cases {
        let (code, json) = yibao(&["id", "parse", input]);
        assert_eq!(code, 0, "{input}");
        assert_eq!(json["id_number"], id);
        assert_eq!(json["input_kind"], kind);
        assert_eq!(json.as_object().unwrap().len(), 5, "{json}");
    }
    let (_, json) = yibao(&["id", "parse", "11010519491231002X"]);
    assert_eq!(json["birth_date"], "1949-12-31");
    assert_eq!(json["sex"], "female");
    assert_eq!(json["region_code"], "110105");
    let (_, json) = yibao(&["id", "parse", "320602198001011235"]);
    assert_eq!(json["sex"], "male");
}

#[test]
fn id_parse_refuses_with_invalid_id_number() {
    for bad in [
        "110105194912310021",  // wrong check character
        "110105194902300020",  // 30 February
        "110105209912310029",  // born in the future
        "32060219800101123",   // 17 digits whose check is not X: a dropped digit
        "990105194912310023",  // no such province
        "1101051949123100",    // 16 characters
        "11010519491231002X1", // 19 characters
        "11010519491231 02X",  // stray character
        "２",
        "",
    ] {
        let (code, json) = yibao(&["id", "parse", bad]);
        assert_eq!(code, 1, "{bad}");
        assert_eq!(json["code"], "INVALID_ID_NUMBER", "{bad}");
        assert!(!json["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn an_unknown_database_scheme_is_an_error_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["migrate", "--database-url", "mysql://root@127.0.0.1/test"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("不支持的数据库地址类型"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file may appear"
    );
}

#[test]
fn demo_loads_into_a_local_sqlite_database_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
            .args(["demo", "--load-only"])
            .env_remove("YIBAO_DATABASE_URL")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("5 个统筹区"), "{stdout}");
    }
    assert!(dir.path().join("yibao-demo.db").exists());
}

#[test]
fn a_password_never_reaches_the_output() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: connecting fails, and the error must not print the password.
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["migrate"])
        .env(
            "YIBAO_DATABASE_URL",
            "postgres://yibao:hunter2@127.0.0.1:1/yibao",
        )
        .env("YIBAO_LOG", "debug")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("hunter2"), "{all}");
}

/// Issue 10: the README tour's line for a 17-digit number, exactly; the standard's own example
/// (born 1880) is valid.
#[test]
fn id_parse_messages_as_the_readme_shows_them() {
    let (code, json) = yibao(&["id", "parse", "32060219800101123"]);
    assert_eq!(code, 1);
    assert_eq!(
        json.to_string(),
        r#"{"code":"INVALID_ID_NUMBER","message":"输入了17位号码，可能漏输了一位数字，请对照身份证逐位核对后输入完整的18位号码"}"#
    );
    let (code, json) = yibao(&["id", "parse", "440524188001010014"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["birth_date"], "1880-01-01");
}

/// Issue 10: `yibao import roster` names near-miss headers and writes a rejection file that
/// carries the rejected rows' own cells after 行号, 错误列, 错误原因.
#[test]
fn import_roster_writes_a_rejection_file_with_the_rows_own_cells() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let roster = dir.path().join("r.csv");
    std::fs::write(
        &roster,
        "姓名,身份证号码,参保地区,电话\n张三,320602198001011236,320600,13800138000\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["import", "roster"])
        .arg(&roster)
        .args(["--database-url", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("未通过 1"), "{stdout}");
    assert!(
        stderr.contains("列“电话”") && stderr.contains("联系电话"),
        "{stderr}"
    );
    let rejected = std::fs::read_to_string(dir.path().join("r.rejected.csv")).unwrap();
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(
        lines[0],
        "\u{feff}行号,错误列,错误原因,姓名,身份证号码,参保地区,电话"
    );
    assert!(lines[1].starts_with("2,身份证号码,"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",张三,\"=\"\"320602198001011236\"\"\",320600,13800138000"),
        "{}",
        lines[1]
    );
}
