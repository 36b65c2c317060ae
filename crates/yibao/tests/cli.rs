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
fn the_benchmarks_are_pointed_to_where_they_went() {
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["bench", "payments", "--payments", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("已移至 yibao-lab"), "{stderr}");
    assert!(stderr.contains("yibao-lab payments"), "{stderr}");
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
    assert!(dir.path().join("yibao.db").exists());
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

fn run_in(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(args)
        .env_remove("YIBAO_DATABASE_URL")
        .env_remove("YIBAO_CONFIG")
        .env_remove("YIBAO_CHANNEL_SECRET")
        .env_remove("YIBAO_STAFF_PASSWORD")
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs `yibao` on a database; (exit code, stdout, stderr).
fn run_on(db: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(args)
        .env("YIBAO_DATABASE_URL", db)
        .env_remove("YIBAO_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn commands_that_need_data_refuse_a_missing_database_instead_of_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["check"][..],
        &["channel", "list"],
        &["staff", "list"],
        &["assess", "--region", "320600", "--fee-year", "2027"],
        &["agreement", "list"],
    ] {
        let (code, _, stderr) = run_in(dir.path(), args, None);
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains("yibao.db 不存在"), "{args:?}: {stderr}");
        assert!(stderr.contains("yibao migrate"), "{stderr}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no database may appear"
    );
    // An empty database is not called healthy.
    let (code, _, _) = run_in(dir.path(), &["migrate"], None);
    assert_eq!(code, 0);
    let (code, _, stderr) = run_in(dir.path(), &["check"], None);
    assert_eq!(code, 1);
    assert!(stderr.contains("没有任何统筹区"), "{stderr}");
}

#[test]
fn a_cover_history_is_imported_and_a_persons_cover_shown_without_the_id_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_in(dir.path(), &["demo", "--load-only"], None);
    assert_eq!(code, 0, "{stderr}");
    let id = "460105198003013018";
    std::fs::write(
        dir.path().join("history.csv"),
        format!(
            "身份证号码,待遇年度,参保情况\n{id},2024,居民医保\n{id},2025,未参保\n{id},2026,断保\n{id},2031,居民医保\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run_in(
        dir.path(),
        &["cover", "import", "--region", "460100", "history.csv"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("读取 4 行：写入 3 条，未通过 1"), "{out}");
    let rejected = std::fs::read_to_string(dir.path().join("history.rejected.csv")).unwrap();
    assert!(
        rejected.contains("INVALID_YEAR") && rejected.contains("待遇年度"),
        "{rejected}"
    );
    let (code, out, err) = run_in(
        dir.path(),
        &["cover", "show", "--region", "460100", "--fee-year", "2027"],
        Some(&format!("{id}\n")),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(id), "the ID number is shown masked: {out}");
    assert!(
        out.contains("2024：居民医保") && out.contains("2026：未参保"),
        "{out}"
    );
    // 海口 counts N: two gap years, each bought back shortens the wait by a month.
    assert!(
        out.contains(
            "补缴修复：断保 2 年，可补缴 2 年（2026、2025），等待期可由 5 个月缩短为 3 个月"
        ),
        "{out}"
    );
    assert!(out.contains("大病保险最高支付限额提高"), "{out}");
    // Buying back needs the year's contribution assessed first; the refusal says so.
    let (code, out, err) = run_in(
        dir.path(),
        &[
            "cover",
            "buy-back",
            "--region",
            "460100",
            "--fee-year",
            "2027",
            "--years",
            "2026",
        ],
        Some(&format!("{id}\n")),
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("尚未核定") && err.contains("NOT_ASSESSED") && !err.contains(id),
        "{err}"
    );
    // The special situation file is told apart by its header and shown with the person.
    std::fs::write(
        dir.path().join("situations.csv"),
        format!("身份证号码,情形,日期,职工医保连续月数\n{id},职工医保转入,2024-12-31,36\n"),
    )
    .unwrap();
    let (code, out, err) = run_in(
        dir.path(),
        &["cover", "import", "--region", "460100", "situations.csv"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("读取 1 行：写入 1 条，未通过 0"), "{out}");
    let (code, out, err) = run_in(
        dir.path(),
        &["cover", "show", "--region", "460100", "--fee-year", "2027"],
        Some(&format!("{id}\n")),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("特殊情形：由职工医保转入（职工医保至 2024-12-31 止，此前连续参保 36 个月）"),
        "{out}"
    );
}

#[test]
fn the_demo_database_is_every_commands_default() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_in(dir.path(), &["demo", "--load-only"], None);
    assert_eq!(code, 0, "{stderr}");
    // The README's next steps work on the demo's data with no --database-url.
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "channel",
            "add",
            "icbc-debit",
            "--kind",
            "auto_debit",
            "--regions",
            "320600",
        ],
        Some("demo-secret-icbc-debit-0000\n"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = run_in(dir.path(), &["check"], None);
    assert_eq!(code, 0, "{stdout}");

    // Channels: listed without secrets, disabled, enabled, secret rotated.
    let (code, stdout, _) = run_in(dir.path(), &["channel", "list"], None);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("icbc-debit\tauto_debit\t320600"),
        "{stdout}"
    );
    assert!(!stdout.contains("demo-secret"), "{stdout}");
    let (code, stdout, _) = run_in(dir.path(), &["channel", "disable", "icbc-debit"], None);
    assert_eq!(code, 0);
    assert!(stdout.contains("已停用"), "{stdout}");
    let (_, stdout, _) = run_in(dir.path(), &["channel", "list"], None);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("icbc-debit") && l.contains("已停用")),
        "{stdout}"
    );
    let (code, _, _) = run_in(dir.path(), &["channel", "enable", "icbc-debit"], None);
    assert_eq!(code, 0);
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "channel",
            "rotate-secret",
            "icbc-debit",
            "--grace-hours",
            "2",
        ],
        Some("a-brand-new-secret-0001\n"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, stdout, _) = run_in(dir.path(), &["channel", "list"], None);
    assert!(stdout.contains("旧密钥有效至"), "{stdout}");
    let (code, _, stderr) = run_in(dir.path(), &["channel", "disable", "nobody"], None);
    assert_eq!(code, 1);
    assert!(stderr.contains("nobody"), "{stderr}");

    // Staff: listed, disabled, enabled, password reset (from standard input, never argv).
    let (code, stdout, _) = run_in(dir.path(), &["staff", "list"], None);
    assert_eq!(code, 0);
    assert!(stdout.lines().any(|l| l.starts_with("admin\t")), "{stdout}");
    let (code, _, _) = run_in(dir.path(), &["staff", "disable", "admin"], None);
    assert_eq!(code, 0);
    let (_, stdout, _) = run_in(dir.path(), &["staff", "list"], None);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("admin\t") && l.contains("已停用")),
        "{stdout}"
    );
    let (code, _, _) = run_in(dir.path(), &["staff", "enable", "admin"], None);
    assert_eq!(code, 0);
    let (code, _, stderr) = run_in(
        dir.path(),
        &["staff", "reset-password", "admin"],
        Some("short\n"),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("密码长度"), "{stderr}");
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &["staff", "reset-password", "admin"],
        Some("another-admin-password\n"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn an_agency_runs_from_zero_with_regions_fee_policies_and_calendars() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("zero.db").display());
    let (code, out, err) = run_on(&db, &["migrate"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run_on(&db, &["region", "add", "320600", "南通市"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("南通市") && out.contains("7 年"), "{out}");
    let policy = dir.path().join("nantong-2027.toml");
    std::fs::write(
        &policy,
        r#"region = "320600"
fee_year = 2027
age_reference_date = "2027-01-01"
[window]
opens = "2026-09-01"
closes = "2027-01-31"
[amounts.adult]
total = 46000
critical_illness = 3000
[amounts.minor_not_in_school]
total = 42000
[amounts.student]
total = 42000
[amounts.newborn]
total = 42000
"#,
    )
    .unwrap();
    let (code, out, err) = run_on(&db, &["fee-policy", "load", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("没有 2027 年的节假日安排"),
        "the window reaches 2027: {out}"
    );
    let (code, out, _) = run_on(&db, &["fee-policy", "list", "--region", "320600"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("2027 年度") && out.contains("成年居民：460.00 元"),
        "{out}"
    );
    assert!(
        out.contains("固定3个月，每断保1年加1个月（断保N年计N年）"),
        "the national 2025 rules apply when a policy names none: {out}"
    );
    // The 2025 rules: a misspelt key is refused by name, an impossible value with the setting named,
    // and the policy stays as it was.
    let base = std::fs::read_to_string(&policy).unwrap();
    for (extra, expected) in [
        (
            "[cover_rules.waiting]\nfixed_month = 3\n",
            "不认识的字段 cover_rules.waiting.fixed_month",
        ),
        (
            "[cover_rules.waiting]\nextension_until = \"2027-01-15\"\n",
            "waiting.extension_until：延长期应在征缴期结束（2027-01-31）之后",
        ),
        ("[cover_rule]\n", "不认识的字段 cover_rule"),
        (
            "[cover_rules.channels]\nlate = [\"bank_counter\", \"carrier_pigeon\"]\n",
            "待遇设置 channels.late[1]：没有“carrier_pigeon”这种渠道",
        ),
    ] {
        std::fs::write(&policy, format!("{base}{extra}")).unwrap();
        let (code, out, err) = run_on(&db, &["fee-policy", "load", policy.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
    std::fs::write(
        &policy,
        format!("{base}[cover_rules.waiting]\ngap_year_count = \"n_minus_1\"\nextension_until = \"2027-02-28\"\n\
                 [cover_rules.channels]\nsubsidised = [\"bank_counter\"]\n"),
    )
    .unwrap();
    let (code, out, err) = run_on(&db, &["fee-policy", "load", policy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = run_on(&db, &["fee-policy", "list", "--region", "320600"]);
    assert!(
        out.contains("断保N年计N−1年")
            && out.contains("延长缴费期至2027-02-28")
            && out.contains("享受资助人员的缴费只能通过银行柜面办理"),
        "{out}"
    );
    let (code, out, _) = run_on(&db, &["region", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "320600\t南通市\t缴费年度：2027\t节假日日历：2020,2021,2022,2023,2024,2025,2026"
        ),
        "{out}"
    );
    let (code, out, _) = run_on(
        &db,
        &["calendar", "show", "--year", "2026", "--region", "320600"],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("国务院办公厅关于2026年部分节假日安排的通知") && out.contains("02-16(一)"),
        "{out}"
    );
    let (code, out, _) = run_on(&db, &["calendar", "show", "--year", "2027"]);
    assert_eq!(code, 1, "a missing year fails: {out}");
    assert!(out.contains("没有 2027 年的节假日安排"), "{out}");
    // A bad notice file is refused, naming the field; nothing is loaded.
    let bad = dir.path().join("2027.toml");
    std::fs::write(
        &bad,
        "year = 2027\ntitle = \"国务院办公厅关于2027年部分节假日安排的通知\"\npublished = \"2026-11-01\"\n\
         [[festival]]\nname = \"元旦\"\nholidays = [\"2027-01-02\"]\n",
    )
    .unwrap();
    let (code, _, err) = run_on(&db, &["calendar", "load", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("2027-01-02") && err.contains("周末"), "{err}");
    // A good one loads into every region, and the year then shows.
    std::fs::write(
        &bad,
        "year = 2027\ntitle = \"国务院办公厅关于2027年部分节假日安排的通知\"\npublished = \"2026-11-01\"\n\
         [[festival]]\nname = \"测试\"\nholidays = [\"2027-01-04\"]\n",
    )
    .unwrap();
    let (code, out, err) = run_on(&db, &["calendar", "load", bad.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 个统筹区"), "{out}");
    let (code, _, _) = run_on(&db, &["calendar", "show", "--year", "2027"]);
    assert_eq!(code, 0);
    // migrate again: idempotent, and the loaded 2027 stays.
    let (code, _, _) = run_on(&db, &["migrate"]);
    assert_eq!(code, 0);
    let (code, out, _) = run_on(&db, &["region", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("2026,2027"), "{out}");
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
        "\u{feff}行号,错误列,错误代码,错误原因,姓名,身份证号码,参保地区,电话"
    );
    assert!(lines[1].starts_with("2,身份证号码,"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",张三,\"=\"\"320602198001011236\"\"\",320600,13800138000"),
        "{}",
        lines[1]
    );
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

/// Issue 10, defect 11: a refused channel request is answered `AUTH_FAILED` whatever the reason,
/// but the server's log names the reason and the channel id, for the operator.
#[test]
fn a_refused_channel_request_is_logged_with_its_reason_and_channel() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (code, _, err) = run_in(dir.path(), &["migrate", "--database-url", &url], None);
    assert_eq!(code, 0, "{err}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_yibao"))
        .args(["serve", "--database-url", &url, "--listen", "127.0.0.1:0"])
        .env("YIBAO_LOG", "info")
        .env_remove("YIBAO_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(server.stderr.take().unwrap());
    let mut seen = String::new();
    let address = loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "server ended: {seen}"
        );
        seen.push_str(&line);
        if let Some(rest) = line
            .split("address=")
            .nth(1)
            .filter(|_| line.contains("listening"))
        {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "POST /channel/v1/payables/search HTTP/1.1\r\nHost: {address}\r\nYibao-Channel: no-such-bank\r\n\
         Yibao-Timestamp: 1\r\nYibao-Nonce: abcdefghijklmnop\r\nYibao-Signature: 00\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("AUTH_FAILED"), "{answer}");
    assert!(
        !answer.contains("unknown_channel"),
        "the caller learns nothing: {answer}"
    );
    let logged = loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "server ended: {seen}"
        );
        seen.push_str(&line);
        if line.contains("channel authentication failed") {
            break line;
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(logged.contains("unknown_channel"), "{logged}");
    assert!(logged.contains("no-such-bank"), "{logged}");
}
