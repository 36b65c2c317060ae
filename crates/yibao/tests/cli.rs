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

/// Runs `yibao migrate` against `url` and returns its standard error, which must be Chinese.
fn migrate_error(url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["migrate"])
        .env("YIBAO_DATABASE_URL", url)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for english in [
        "unable to open",
        "pool timed out",
        "database error",
        "database unavailable",
        "does not exist",
        "error communicating",
    ] {
        assert!(!stderr.contains(english), "English in {stderr}");
    }
    stderr
}

/// Issue 10, defect 11: a database that cannot be opened is named, with the cause, in Chinese:
/// SQLite's file and directory, PostgreSQL's host and port (never the password).
#[test]
fn database_errors_name_the_file_or_the_host_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("yibao.db");
    let err = migrate_error(&format!("sqlite://{}", missing.display()));
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("不存在"), "{err}");
    let err = migrate_error(&format!("sqlite://{}", dir.path().display()));
    assert!(err.contains("这是一个目录"), "{err}");

    let err = migrate_error("postgres://yibao:hunter2@127.0.0.1:1/yibao");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("连接被拒绝"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // A real server: a database that does not exist is named.
    let Some(url) = std::env::var("YIBAO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI sets YIBAO_TEST_DATABASE_URL"
        );
        eprintln!("NOTICE: YIBAO_TEST_DATABASE_URL not set: PostgreSQL database error not checked");
        return;
    };
    let base = url.split('?').next().unwrap_or(&url);
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    let err = migrate_error(&format!("{server}/yibao_no_such_database"));
    assert!(
        err.contains("数据库 yibao_no_such_database 不存在"),
        "{err}"
    );
}
