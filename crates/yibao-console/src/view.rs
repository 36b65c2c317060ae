//! What every page's frame needs (the user, the menu, the CSRF token) and small formatters.

use yibao_storage::Role;

use crate::nav;
use crate::session::ConsoleUser;

/// The frame around a page: `base.html` reads it.
pub struct Chrome {
    pub title: String,
    pub user_name: String,
    pub role_label: &'static str,
    /// 统筹区/服务站 the user is bound to, if any.
    pub scope: String,
    pub csrf: String,
    pub menu: Vec<nav::Link>,
}

impl Chrome {
    pub fn new(user: &ConsoleUser, section: &str, title: &str) -> Chrome {
        let account = user.account();
        let scope = match (&account.region, &account.station) {
            (Some(r), Some(s)) => format!("{r} · 服务站 {}", s.as_str()),
            (Some(r), None) => format!("统筹区 {r}"),
            _ => "全部统筹区".to_owned(),
        };
        Chrome {
            title: title.to_owned(),
            user_name: account.display_name.clone(),
            role_label: role_label(account.role),
            scope,
            csrf: user.csrf.clone(),
            menu: nav::links(account.role, section),
        }
    }
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "中心管理员",
        Role::StationOperator => "服务站经办",
        Role::TaxCollector => "税务征收",
        Role::Auditor => "审计",
    }
}

/// A payable's status in Chinese.
pub fn payable_status_zh(status: &str) -> &'static str {
    match status {
        "unpaid" => "未缴费",
        "locked" => "缴费处理中",
        "paid" => "已缴费",
        "posted" => "已缴费（已到帐）",
        "exempt" => "免缴",
        "superseded" => "已重新核定（作废）",
        "cancelled" => "已取消",
        _ => "未知状态",
    }
}

/// Fen as yuan with two decimals and thousands separators: 38000 → "380.00".
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// A share as a percentage with one decimal: 0 when there is nothing to divide by.
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0.0".to_owned();
    }
    let tenths = (part * 1000 + whole / 2) / whole;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A Unix-millisecond time as Beijing time, to the minute.
pub fn beijing_minute(ms: i64) -> String {
    beijing(ms, "%Y-%m-%d %H:%M")
}

/// Unix seconds as Beijing time, to the second (`2026-12-03 10:19:08`).
pub fn beijing_second(seconds: i64) -> String {
    beijing(seconds.saturating_mul(1000), "%Y-%m-%d %H:%M:%S")
}

/// A Unix-millisecond time as Beijing time in `format`; empty when out of range.
fn beijing(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .zip(chrono::FixedOffset::east_opt(8 * 3600))
        .map(|(t, zone)| t.with_timezone(&zone).format(format).to_string())
        .unwrap_or_default()
}

/// A time as the database writes it in UTC (`2026-12-03T02:19:08.123Z` on SQLite,
/// `2026-12-03 02:19:08.123+00` on PostgreSQL, whose sessions sqlx sets to UTC) as Beijing time,
/// `2026-12-03 10:19:08`; the text as it is when it does not parse.
pub fn beijing_of_stored(stored: &str) -> String {
    let head: String = stored
        .chars()
        .take(19)
        .map(|c| if c == 'T' { ' ' } else { c })
        .collect();
    match chrono::NaiveDateTime::parse_from_str(&head, "%Y-%m-%d %H:%M:%S") {
        Ok(utc) => (utc + chrono::Duration::hours(8))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_in_yuan() {
        assert_eq!(yuan(38000), "380.00");
        assert_eq!(yuan(123456789), "1,234,567.89");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-1050), "-10.50");
    }

    #[test]
    fn percentages_round_to_a_tenth() {
        assert_eq!(percent(1, 3), "33.3");
        assert_eq!(percent(2, 3), "66.7");
        assert_eq!(percent(0, 0), "0.0");
        assert_eq!(percent(8, 10), "80.0");
    }

    #[test]
    fn stored_utc_times_show_in_beijing_time_from_either_backend() {
        assert_eq!(
            beijing_of_stored("2026-12-02T16:30:00.123Z"),
            "2026-12-03 00:30:00"
        );
        assert_eq!(
            beijing_of_stored("2026-12-02 16:30:00.123+00"),
            "2026-12-03 00:30:00"
        );
        assert_eq!(beijing_of_stored("not a time"), "not a time");
        assert_eq!(beijing_minute(0), "1970-01-01 08:00");
        assert_eq!(beijing_minute(1_764_923_400_000), "2025-12-05 16:30");
    }
}
