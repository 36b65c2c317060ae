//! Following up the unpaid (未缴名单跟进): how a station told a resident who has not paid
//! (告知方式), and the reasons a resident gives (未参保原因), from a configured list.

use std::fmt;

/// How a station told a resident (告知方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeMethod {
    /// 电话
    Phone,
    /// 上门
    Visit,
    /// 短信
    Sms,
    /// 微信
    WeChat,
    /// 书面通知
    Letter,
    /// 其他
    Other,
}

impl NoticeMethod {
    pub const ALL: [NoticeMethod; 6] = [
        NoticeMethod::Phone,
        NoticeMethod::Visit,
        NoticeMethod::Sms,
        NoticeMethod::WeChat,
        NoticeMethod::Letter,
        NoticeMethod::Other,
    ];

    /// Stable code, stored.
    pub fn code(self) -> &'static str {
        match self {
            NoticeMethod::Phone => "phone",
            NoticeMethod::Visit => "visit",
            NoticeMethod::Sms => "sms",
            NoticeMethod::WeChat => "wechat",
            NoticeMethod::Letter => "letter",
            NoticeMethod::Other => "other",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            NoticeMethod::Phone => "电话",
            NoticeMethod::Visit => "上门",
            NoticeMethod::Sms => "短信",
            NoticeMethod::WeChat => "微信",
            NoticeMethod::Letter => "书面通知",
            NoticeMethod::Other => "其他",
        }
    }

    pub fn parse(code: &str) -> Option<NoticeMethod> {
        NoticeMethod::ALL.into_iter().find(|m| m.code() == code)
    }
}

impl fmt::Display for NoticeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// The national default list of reasons a resident gives for not paying (未参保原因), used when
/// the deployment configures none (`unpaid_reasons`).
pub const DEFAULT_UNPAID_REASONS: [&str; 9] = [
    "外出务工",
    "已在外地参保",
    "已参加职工医保",
    "不愿参保",
    "经济困难",
    "已死亡",
    "参军",
    "联系不上",
    "其他",
];

/// Longest reason of the configured list, in characters.
pub const MAX_REASON_CHARS: usize = 20;
/// Most reasons the list may hold.
pub const MAX_REASONS: usize = 30;

/// Checks a configured list of reasons: 1 to [`MAX_REASONS`] distinct, non-empty entries of at
/// most [`MAX_REASON_CHARS`] characters. Answers the reason in Chinese when it is not.
pub fn check_reasons(reasons: &[String]) -> Result<(), String> {
    if reasons.is_empty() || reasons.len() > MAX_REASONS {
        return Err(format!("应有 1 到 {MAX_REASONS} 个原因"));
    }
    for (i, reason) in reasons.iter().enumerate() {
        let chars = reason.trim().chars().count();
        if chars == 0 || chars > MAX_REASON_CHARS || reason.trim() != reason {
            return Err(format!(
                "第 {} 个原因“{reason}”应为 1 到 {MAX_REASON_CHARS} 个字，前后不留空格",
                i + 1
            ));
        }
        if reasons[..i].contains(reason) {
            return Err(format!("原因“{reason}”重复"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip_and_the_default_list_is_valid() {
        for m in NoticeMethod::ALL {
            assert_eq!(NoticeMethod::parse(m.code()), Some(m));
        }
        assert_eq!(NoticeMethod::parse("fax"), None);
        let defaults: Vec<String> = DEFAULT_UNPAID_REASONS
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(check_reasons(&defaults), Ok(()));
        assert!(check_reasons(&[]).is_err());
        assert!(check_reasons(&["外出务工".into(), "外出务工".into()]).is_err());
        assert!(check_reasons(&["".into()]).is_err());
        assert!(check_reasons(&["很".repeat(21)]).is_err());
    }
}
