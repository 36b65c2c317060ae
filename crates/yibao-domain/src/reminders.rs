//! Payment reminders (缴费提醒, the 2025 rules' issue): when a region reminds its residents of an
//! unpaid payable before the window closes, how often, and what the text message says. Pure
//! decisions; storage finds who is due and the citizen site's sender sends.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::money::Fen;

/// Limits of the settings: a reminder period longer than a window, an interval longer than two
/// months, make no sense.
pub const MAX_DAYS_BEFORE_CLOSE: u16 = 120;
pub const MAX_INTERVAL_DAYS: u16 = 60;

/// A region's reminders for one benefit year. No national text sets them: yibao's defaults are 15
/// days before the window closes, at most once a week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderRules {
    /// Reminders go out from this many days before the window closes until it closes; 0: none.
    pub days_before_close: u16,
    /// A resident gets at most one reminder for a payable in this many days.
    pub interval_days: u16,
}

impl Default for ReminderRules {
    fn default() -> Self {
        ReminderRules {
            days_before_close: 15,
            interval_days: 7,
        }
    }
}

impl ReminderRules {
    /// Whether `today` is a day reminders go out for a window closing on `closes`.
    pub fn due_on(&self, closes: NaiveDate, today: NaiveDate) -> bool {
        if self.days_before_close == 0 || today > closes {
            return false;
        }
        let first = closes - chrono::Days::new(u64::from(self.days_before_close));
        today >= first
    }

    /// The interval `day` (days since 1970-01-01) falls in: one reminder per payable and period.
    pub fn period_of(&self, day: i64) -> i64 {
        day.div_euclid(i64::from(self.interval_days.max(1)))
    }
}

/// What a reminder says: the amount, the deadline, how to pay, and when cover would start if paid
/// now; the name masked, never the ID number.
pub struct ReminderText<'a> {
    pub name_masked: &'a str,
    pub fee_year: u16,
    pub amount: Fen,
    pub closes: NaiveDate,
    /// When cover would start if paid today, e.g. `今天缴费，自2027-01-01起享受待遇`.
    pub cover: Option<&'a str>,
    /// How the region's residents can pay, e.g. `微信支付、支付宝或到服务站`.
    pub ways: &'a str,
}

impl ReminderText<'_> {
    pub fn render(&self) -> String {
        let mut text = format!(
            "【城乡居民医保】{}，您的{}年度城乡居民医保费{}尚未缴纳，缴费期至{}。\
             可通过{}缴纳，报身份证号码即可，也可为家人代缴。",
            self.name_masked,
            self.fee_year,
            self.amount,
            self.closes.format("%Y年%-m月%-d日"),
            self.ways,
        );
        if let Some(cover) = self.cover {
            text.push_str(cover);
            text.push('。');
        }
        text.push_str("不需提醒可在缴费服务网站“我的”中关闭。");
        text
    }
}

/// What a bank's debit did, as the resident is told (扣款结果通知).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitNoticeKind {
    Succeeded,
    /// The bank's `E01` (余额不足): the next run may take it.
    InsufficientBalance,
    /// Any other failure: the account frozen or closed, the agreement invalid, or the bank's own.
    Failed,
}

impl DebitNoticeKind {
    /// The bank's failure code read: `E01` is want of balance, any other a failure of its own.
    pub fn of(succeeded: bool, failure_code: Option<&str>) -> DebitNoticeKind {
        match (succeeded, failure_code) {
            (true, _) => DebitNoticeKind::Succeeded,
            (false, Some("E01")) => DebitNoticeKind::InsufficientBalance,
            (false, _) => DebitNoticeKind::Failed,
        }
    }

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            DebitNoticeKind::Succeeded => "succeeded",
            DebitNoticeKind::InsufficientBalance => "insufficient_balance",
            DebitNoticeKind::Failed => "failed",
        }
    }
}

/// What a debit-run outcome's text message says: the amount, what the bank did and, for a
/// failure, why, the deadline and how else to pay; the name masked, never the ID number.
pub struct DebitNoticeText<'a> {
    pub name_masked: &'a str,
    pub fee_year: u16,
    pub amount: Fen,
    pub kind: DebitNoticeKind,
    /// The day the bank debited (or tried to).
    pub debit_date: NaiveDate,
    /// The day the resident is asked to pay by (`FeePolicy::pay_by_after` the debit day: the
    /// window's last day, or the extension's, or the year's last date).
    pub pay_by: NaiveDate,
    /// The bank's own reason for a failure other than want of balance (e.g. 账户冻结或已注销).
    pub reason: Option<&'a str>,
    /// How else the region's residents can pay, e.g. `微信支付、支付宝或到服务站`.
    pub ways: &'a str,
}

impl DebitNoticeText<'_> {
    pub fn render(&self) -> String {
        let day = |d: NaiveDate| d.format("%Y年%-m月%-d日").to_string();
        let head = format!(
            "【城乡居民医保】{}，您的{}年度城乡居民医保费{}",
            self.name_masked, self.fee_year, self.amount
        );
        let elsewhere = format!(
            "请在{}前通过{}缴纳，报身份证号码即可。",
            day(self.pay_by),
            self.ways
        );
        let mut text = match self.kind {
            DebitNoticeKind::Succeeded => format!(
                "{head}已于{}由银行代扣成功，电子票据可在缴费服务网站查询。",
                day(self.debit_date)
            ),
            DebitNoticeKind::InsufficientBalance => format!(
                "{head}于{}银行代扣未成功：账户余额不足。请存足余额等下次代扣，或{elsewhere}",
                day(self.debit_date)
            ),
            DebitNoticeKind::Failed => format!(
                "{head}于{}银行代扣未成功：{}。请联系开户银行，或{elsewhere}",
                day(self.debit_date),
                self.reason
                    .filter(|r| !r.is_empty())
                    .unwrap_or("银行未说明原因")
            ),
        };
        text.push_str("不需通知可在缴费服务网站“我的”中关闭。");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn reminders_go_out_in_the_days_before_the_window_closes() {
        let rules = ReminderRules::default();
        let closes = d(2026, 12, 31);
        assert!(!rules.due_on(closes, d(2026, 12, 15)));
        assert!(rules.due_on(closes, d(2026, 12, 16)));
        assert!(rules.due_on(closes, closes));
        assert!(!rules.due_on(closes, d(2027, 1, 1)));
        let off = ReminderRules {
            days_before_close: 0,
            ..rules.clone()
        };
        assert!(!off.due_on(closes, closes));
        // One period per interval: a week apart, a new one.
        assert_eq!(rules.period_of(20_000), rules.period_of(20_001));
        assert_ne!(rules.period_of(20_000), rules.period_of(20_007));
    }

    #[test]
    fn the_text_names_amount_deadline_ways_and_cover_never_the_id_number() {
        let text = ReminderText {
            name_masked: "王*",
            fee_year: 2027,
            amount: Fen::new(42_000).unwrap(),
            closes: d(2026, 12, 31),
            cover: Some("今天缴费，自2027-01-01起享受待遇"),
            ways: "微信支付、支付宝或到服务站",
        }
        .render();
        assert!(text.contains("王*"), "{text}");
        assert!(text.contains("420.00元"), "{text}");
        assert!(text.contains("2026年12月31日"), "{text}");
        assert!(
            text.contains("可通过微信支付、支付宝或到服务站缴纳"),
            "{text}"
        );
        assert!(text.contains("自2027-01-01起享受待遇"), "{text}");
        assert!(text.chars().count() < 200, "{text}");
    }

    #[test]
    fn a_debit_notice_says_what_the_bank_did_and_how_else_to_pay() {
        let text = |kind, reason| {
            DebitNoticeText {
                name_masked: "王*",
                fee_year: 2027,
                amount: Fen::new(42_000).unwrap(),
                kind,
                debit_date: d(2026, 11, 20),
                pay_by: d(2026, 12, 31),
                reason,
                ways: "手机银行或到服务站",
            }
            .render()
        };
        let ok = text(DebitNoticeKind::Succeeded, None);
        assert!(
            ok.contains("420.00元已于2026年11月20日由银行代扣成功"),
            "{ok}"
        );
        assert!(!ok.contains("请在"), "{ok}");
        let poor = text(DebitNoticeKind::of(false, Some("E01")), Some("余额不足"));
        assert!(poor.contains("账户余额不足"), "{poor}");
        assert!(
            poor.contains("请在2026年12月31日前通过手机银行或到服务站缴纳"),
            "{poor}"
        );
        let frozen = text(
            DebitNoticeKind::of(false, Some("E02")),
            Some("账户冻结或已注销"),
        );
        assert!(
            frozen.contains("代扣未成功：账户冻结或已注销。请联系开户银行"),
            "{frozen}"
        );
        assert_eq!(
            DebitNoticeKind::of(true, Some("E01")),
            DebitNoticeKind::Succeeded
        );
    }
}
