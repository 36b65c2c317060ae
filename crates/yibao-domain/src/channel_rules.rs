//! Which kinds of channel may collect which payables (渠道收费范围), per region and benefit year
//! (issue 17). Hainan's electronic channels serve only people who pay the full amount; the
//! subsidised, those buying back years and late payers go to the service station. Kept in the
//! fee policy beside the 2025 rules (`cover_rules.channels`); by default every kind collects
//! everything, as before.

use serde::{Deserialize, Serialize};

/// The kinds of channel (`bank_counter` 银行柜面 … `medical_account` 职工医保个人账户), with their
/// Chinese names: the one table the rules, the console, the exports and the citizen site name
/// them from.
pub const CHANNEL_KINDS: [(&str, &str); 14] = [
    ("bank_counter", "银行柜面"),
    ("atm", "自助柜员机"),
    ("pos", "POS机"),
    ("mobile_banking", "手机银行"),
    ("online_banking", "网上银行"),
    ("wechat", "微信支付"),
    ("alipay", "支付宝"),
    ("unionpay", "银联"),
    ("gov_app", "政务服务平台"),
    ("kiosk", "自助服务终端"),
    ("village_agent", "村级代办点"),
    ("auto_debit", "委托扣款"),
    ("medical_account", "职工医保个人账户（家庭共济）"),
    ("health_card", "居民健康卡"),
];

/// Where a payer is sent when a channel may not collect what they owe, unless the region says
/// otherwise.
pub const DEFAULT_WHERE_TO_PAY: &str = "请到乡镇/社区服务站缴费";

/// Longest `where_to_pay` text, in characters.
pub const MAX_WHERE_TO_PAY_CHARS: usize = 60;

/// What kind of payable a channel is asked to collect. A payable may be in several (a subsidised
/// person paying late); one in none of the others is [`PayableClass::Full`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayableClass {
    /// The year's contribution at its full amount, in time.
    Full,
    /// A contribution reduced by a subsidy (资助).
    Subsidised,
    /// A back-payment (补缴修复) of a gap year.
    BackPayment,
    /// Paid after the window, or after the extension where there is one (逾期缴费).
    Late,
}

impl PayableClass {
    /// The setting's key.
    pub fn key(self) -> &'static str {
        match self {
            PayableClass::Full => "full",
            PayableClass::Subsidised => "subsidised",
            PayableClass::BackPayment => "back_payment",
            PayableClass::Late => "late",
        }
    }

    /// Who pays it, as a payer reads it.
    pub fn name_zh(self) -> &'static str {
        match self {
            PayableClass::Full => "全额缴费",
            PayableClass::Subsidised => "享受资助人员的缴费",
            PayableClass::BackPayment => "补缴修复",
            PayableClass::Late => "征缴期结束后的逾期缴费",
        }
    }

    /// The classes of a payable: a back-payment, subsidised (a relief lowered what is owed, and
    /// something is still owed), paid late; [`PayableClass::Full`] when none of these.
    pub fn of(back_payment: bool, subsidised: bool, late: bool) -> Vec<PayableClass> {
        let mut classes = Vec::new();
        if back_payment {
            classes.push(PayableClass::BackPayment);
        }
        if subsidised {
            classes.push(PayableClass::Subsidised);
        }
        if late {
            classes.push(PayableClass::Late);
        }
        if classes.is_empty() {
            classes.push(PayableClass::Full);
        }
        classes
    }
}

/// Per class, the only kinds of channel that may collect it; a class left out may be collected by
/// every kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelRules {
    pub full: Option<Vec<String>>,
    pub subsidised: Option<Vec<String>>,
    pub back_payment: Option<Vec<String>>,
    pub late: Option<Vec<String>>,
    /// Where a payer a channel may not serve is sent; [`DEFAULT_WHERE_TO_PAY`] when not set.
    pub where_to_pay: Option<String>,
}

/// A channel may not collect a payable: which class refused it and what to tell the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRefusal {
    pub class: PayableClass,
    pub kind: String,
    pub where_to_pay: String,
}

impl ChannelRefusal {
    pub const CODE: &'static str = "CHANNEL_NOT_ALLOWED";
}

impl std::fmt::Display for ChannelRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = CHANNEL_KINDS
            .iter()
            .find(|(code, _)| *code == self.kind)
            .map_or("本渠道", |(_, name)| name);
        write!(
            f,
            "{kind}不能办理{}，{}",
            self.class.name_zh(),
            self.where_to_pay
        )
    }
}

impl ChannelRules {
    fn allowed(&self, class: PayableClass) -> Option<&[String]> {
        match class {
            PayableClass::Full => self.full.as_deref(),
            PayableClass::Subsidised => self.subsidised.as_deref(),
            PayableClass::BackPayment => self.back_payment.as_deref(),
            PayableClass::Late => self.late.as_deref(),
        }
    }

    /// Where a payer a channel may not serve is sent.
    pub fn where_to_pay(&self) -> &str {
        self.where_to_pay.as_deref().unwrap_or(DEFAULT_WHERE_TO_PAY)
    }

    /// Whether a channel of `kind` may collect a payable of `classes`: `Err` names the first
    /// class that refuses it.
    pub fn check(&self, kind: &str, classes: &[PayableClass]) -> Result<(), ChannelRefusal> {
        for class in classes {
            if let Some(kinds) = self.allowed(*class) {
                if !kinds.iter().any(|k| k == kind) {
                    return Err(ChannelRefusal {
                        class: *class,
                        kind: kind.to_owned(),
                        where_to_pay: self.where_to_pay().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether any class is limited (a region that sets nothing is served as before).
    pub fn limits_any(&self) -> bool {
        [&self.full, &self.subsidised, &self.back_payment, &self.late]
            .iter()
            .any(|k| k.is_some())
    }

    /// Checks every kind named and the text: `Err((field, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for class in [
            PayableClass::Full,
            PayableClass::Subsidised,
            PayableClass::BackPayment,
            PayableClass::Late,
        ] {
            let Some(kinds) = self.allowed(class) else {
                continue;
            };
            for (i, kind) in kinds.iter().enumerate() {
                let field = format!("channels.{}[{i}]", class.key());
                if !CHANNEL_KINDS.iter().any(|(code, _)| code == kind) {
                    let known: Vec<&str> = CHANNEL_KINDS.iter().map(|(c, _)| *c).collect();
                    return Err((
                        field,
                        format!("没有“{kind}”这种渠道，可用：{}", known.join("、")),
                    ));
                }
                if kinds[..i].contains(kind) {
                    return Err((field, format!("渠道“{kind}”重复")));
                }
            }
        }
        if let Some(text) = &self.where_to_pay {
            let n = text.trim().chars().count();
            if !(2..=MAX_WHERE_TO_PAY_CHARS).contains(&n) {
                return Err((
                    "channels.where_to_pay".to_owned(),
                    format!("应为2至{MAX_WHERE_TO_PAY_CHARS}个字，当前为{n}个字"),
                ));
            }
        }
        Ok(())
    }

    /// The settings in one line of Chinese, for the console and `yibao policy show`; `None` when
    /// every kind collects everything.
    pub fn summary_zh(&self) -> Option<String> {
        if !self.limits_any() {
            return None;
        }
        let mut parts = Vec::new();
        for class in [
            PayableClass::Full,
            PayableClass::Subsidised,
            PayableClass::BackPayment,
            PayableClass::Late,
        ] {
            if let Some(kinds) = self.allowed(class) {
                let names: Vec<&str> = kinds
                    .iter()
                    .filter_map(|k| CHANNEL_KINDS.iter().find(|(c, _)| c == k).map(|(_, n)| *n))
                    .collect();
                parts.push(if names.is_empty() {
                    format!("{}不能通过任何渠道办理", class.name_zh())
                } else {
                    format!("{}只能通过{}办理", class.name_zh(), names.join("、"))
                });
            }
        }
        Some(format!(
            "渠道收费范围：{}；其他渠道的缴费人{}",
            parts.join("；"),
            self.where_to_pay()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hainan() -> ChannelRules {
        ChannelRules {
            subsidised: Some(vec!["bank_counter".into()]),
            back_payment: Some(vec![]),
            late: Some(vec!["bank_counter".into(), "gov_app".into()]),
            ..ChannelRules::default()
        }
    }

    #[test]
    fn nothing_set_lets_every_kind_collect_everything() {
        let rules = ChannelRules::default();
        for (kind, _) in CHANNEL_KINDS {
            for classes in [
                PayableClass::of(false, false, false),
                PayableClass::of(true, true, true),
            ] {
                assert!(rules.check(kind, &classes).is_ok());
            }
        }
        assert_eq!(rules.summary_zh(), None);
    }

    #[test]
    fn a_limited_class_names_the_kinds_and_where_to_go() {
        let rules = hainan();
        assert!(rules
            .check("wechat", &PayableClass::of(false, false, false))
            .is_ok());
        let refusal = rules
            .check("wechat", &PayableClass::of(false, true, false))
            .unwrap_err();
        assert_eq!(refusal.class, PayableClass::Subsidised);
        assert_eq!(
            refusal.to_string(),
            "微信支付不能办理享受资助人员的缴费，请到乡镇/社区服务站缴费"
        );
        assert!(rules
            .check("bank_counter", &PayableClass::of(false, true, false))
            .is_ok());
        // Subsidised and late: both classes must allow the kind.
        assert_eq!(
            rules
                .check("gov_app", &PayableClass::of(false, true, true))
                .unwrap_err()
                .class,
            PayableClass::Subsidised
        );
        assert!(rules
            .check("bank_counter", &PayableClass::of(false, true, true))
            .is_ok());
        // An empty list: no channel at all.
        assert!(rules
            .check("bank_counter", &PayableClass::of(true, false, false))
            .is_err());
        assert!(rules
            .summary_zh()
            .unwrap()
            .contains("补缴修复不能通过任何渠道办理"));
    }

    #[test]
    fn unknown_or_repeated_kinds_and_bad_text_are_refused_with_the_field() {
        let rules = ChannelRules {
            late: Some(vec!["bank_counter".into(), "carrier_pigeon".into()]),
            ..ChannelRules::default()
        };
        let (field, message) = rules.validate().unwrap_err();
        assert_eq!(field, "channels.late[1]");
        assert!(message.contains("carrier_pigeon"), "{message}");
        let rules = ChannelRules {
            full: Some(vec!["atm".into(), "atm".into()]),
            ..ChannelRules::default()
        };
        assert_eq!(rules.validate().unwrap_err().0, "channels.full[1]");
        let rules = ChannelRules {
            where_to_pay: Some("去".into()),
            ..ChannelRules::default()
        };
        assert_eq!(rules.validate().unwrap_err().0, "channels.where_to_pay");
        assert!(hainan().validate().is_ok());
    }
}
