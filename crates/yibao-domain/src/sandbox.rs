//! The sandbox for integrators (接入测试, issue 17). A bank tests its client against yibao before it
//! goes live with a channel created in test mode. Such a channel serves only the sandbox region,
//! [`SANDBOX_REGION`], which holds only generated test residents, and whose payments are never
//! posted to the agency nor counted in reports and statistics. Documented ID numbers lead to every
//! protocol path (`docs/integrator-guide.md`, "接入测试"); each path a test channel has gone
//! through is a [`Scenario`] it has completed, as the console shows.
//!
//! The test ID numbers are valid ID numbers of an address code no person has (`119900`: 北京市 has
//! no prefecture 99), so none of them can be a real resident's.

use chrono::{Datelike, NaiveDate};

use crate::region::RegionCode;

/// The sandbox region's code and name.
pub const SANDBOX_REGION: &str = "119900";
pub const SANDBOX_REGION_NAME: &str = "接入测试区";
/// The fee year the sandbox collects: its window is open on every date yibao accepts.
pub const OPEN_FEE_YEAR: i64 = 2100;
/// The fee year whose window has closed (and which takes no late payment).
pub const CLOSED_FEE_YEAR: i64 = 2000;
/// What every test resident owes for [`OPEN_FEE_YEAR`], in fen (400.00 元).
pub const TEST_AMOUNT_FEN: i64 = 40_000;
/// The channel that holds the sandbox's own states (the paid contribution, the order that locks
/// one); it is never enabled, so nobody signs a request with it.
pub const HOUSE_CHANNEL: &str = "sandbox-house";
/// Most residents the sandbox holds, over all test channels; past it a fresh ID number is
/// answered like any unknown one (`NOT_FOUND`). There is no reset yet.
pub const MAX_FRESH_RESIDENTS: i64 = 100_000;

/// The sandbox region.
pub fn sandbox_region() -> RegionCode {
    match RegionCode::parse(SANDBOX_REGION) {
        Ok(code) => code,
        // SANDBOX_REGION is six digits with a province prefix: checked by a test below.
        Err(_) => unreachable!("the sandbox region code is valid"),
    }
}

/// A resident of the sandbox whose state never changes, and what trying them shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedResident {
    pub id_number: &'static str,
    pub name: &'static str,
    pub state: FixedState,
}

/// The state a [`FixedResident`] is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedState {
    /// Paid through the sandbox's own channel: an order is 409 `ALREADY_PAID`, a payment report
    /// is refunded with reason `ALREADY_PAID`.
    AlreadyPaid,
    /// Held by an open order of the sandbox's own channel: an order is 409 `LOCKED` (订单).
    LockedByOrder,
    /// Held by a bank auto-debit run: an order is 409 `LOCKED` (银行扣费进行中).
    LockedByDebitRun,
    /// Owes only for [`CLOSED_FEE_YEAR`], whose window has closed: an order is 422 `WINDOW_CLOSED`.
    WindowClosed,
    /// Exempt (低保), owes nothing: an order is 422 `NOT_PAYABLE`.
    Exempt,
}

/// The residents every test channel finds in the same state (docs/integrator-guide.md lists them).
pub const FIXED_RESIDENTS: [FixedResident; 5] = [
    FixedResident {
        id_number: "119900199001010010",
        name: "测试已缴",
        state: FixedState::AlreadyPaid,
    },
    FixedResident {
        id_number: "119900199001010029",
        name: "测试锁单",
        state: FixedState::LockedByOrder,
    },
    FixedResident {
        id_number: "119900199001010037",
        name: "测试扣费",
        state: FixedState::LockedByDebitRun,
    },
    FixedResident {
        id_number: "119900199001010045",
        name: "测试过期",
        state: FixedState::WindowClosed,
    },
    FixedResident {
        id_number: "119900199001010053",
        name: "测试免缴",
        state: FixedState::Exempt,
    },
];

/// An ID number of the sandbox that is never on record: a search is 404 `NOT_FOUND`.
pub const UNKNOWN_ID_NUMBER: &str = "119900199001010993";

/// Whether `id_number` (18 characters, already valid) is a fresh test resident's: address code
/// [`SANDBOX_REGION`] and born in 2000. The first search of one by a test channel enrols them,
/// owing [`TEST_AMOUNT_FEN`] for [`OPEN_FEE_YEAR`]; from then on they are like any resident.
pub fn is_fresh_id_number(id_number: &str) -> bool {
    id_number.len() == 18 && id_number.starts_with(SANDBOX_REGION) && &id_number[6..10] == "2000"
}

/// The `n`th fresh test ID number (`n` from 0 to 365 633): born on the `n / 999`th day of 2000,
/// sequence `n % 999 + 1` (001 to 999). `None` past the last.
pub fn fresh_id_number(n: u32) -> Option<String> {
    let day = NaiveDate::from_ymd_opt(2000, 1, 1)?
        .checked_add_days(chrono::Days::new(u64::from(n / 999)))?;
    if day.year() != 2000 {
        return None;
    }
    let body = format!("{SANDBOX_REGION}{}{:03}", day.format("%Y%m%d"), n % 999 + 1);
    let check = crate::id_number::check_character(&body)?;
    Some(format!("{body}{check}"))
}

/// A protocol path a test channel can go through. Its code is stored; its title is what the
/// console and the guide show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    SearchFound,
    SearchNotFound,
    OrderOpened,
    OrderCancelled,
    Paid,
    AlreadyPaid,
    LockedByOrder,
    LockedByDebitRun,
    WindowClosed,
    AmountMismatch,
    NotPayable,
    Reversed,
    ReversalFirst,
    RefundSucceeded,
    RefundFailed,
    PaymentStatus,
    Statement,
    Receipt,
}

impl Scenario {
    /// Every scenario, in the order the guide lists them.
    pub const ALL: [Scenario; 18] = [
        Scenario::SearchFound,
        Scenario::SearchNotFound,
        Scenario::OrderOpened,
        Scenario::OrderCancelled,
        Scenario::Paid,
        Scenario::AlreadyPaid,
        Scenario::LockedByOrder,
        Scenario::LockedByDebitRun,
        Scenario::WindowClosed,
        Scenario::AmountMismatch,
        Scenario::NotPayable,
        Scenario::Reversed,
        Scenario::ReversalFirst,
        Scenario::RefundSucceeded,
        Scenario::RefundFailed,
        Scenario::PaymentStatus,
        Scenario::Statement,
        Scenario::Receipt,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Scenario::SearchFound => "search_found",
            Scenario::SearchNotFound => "search_not_found",
            Scenario::OrderOpened => "order_opened",
            Scenario::OrderCancelled => "order_cancelled",
            Scenario::Paid => "paid",
            Scenario::AlreadyPaid => "already_paid",
            Scenario::LockedByOrder => "locked_by_order",
            Scenario::LockedByDebitRun => "locked_by_debit_run",
            Scenario::WindowClosed => "window_closed",
            Scenario::AmountMismatch => "amount_mismatch",
            Scenario::NotPayable => "not_payable",
            Scenario::Reversed => "reversed",
            Scenario::ReversalFirst => "reversal_first",
            Scenario::RefundSucceeded => "refund_succeeded",
            Scenario::RefundFailed => "refund_failed",
            Scenario::PaymentStatus => "payment_status",
            Scenario::Statement => "statement",
            Scenario::Receipt => "receipt",
        }
    }

    pub fn from_code(code: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The scenario's name (中文).
    pub fn title(self) -> &'static str {
        match self {
            Scenario::SearchFound => "查询到应缴费",
            Scenario::SearchNotFound => "查无此人",
            Scenario::OrderOpened => "下单",
            Scenario::OrderCancelled => "取消订单",
            Scenario::Paid => "缴费成功",
            Scenario::AlreadyPaid => "已缴费（重复缴费）",
            Scenario::LockedByOrder => "被其他订单锁定",
            Scenario::LockedByDebitRun => "银行扣费进行中",
            Scenario::WindowClosed => "已过征缴期",
            Scenario::AmountMismatch => "金额不符",
            Scenario::NotPayable => "不可缴费（免缴）",
            Scenario::Reversed => "冲正",
            Scenario::ReversalFirst => "先冲正后报账",
            Scenario::RefundSucceeded => "退款成功",
            Scenario::RefundFailed => "退款失败",
            Scenario::PaymentStatus => "交易状态查询",
            Scenario::Statement => "上传对账单",
            Scenario::Receipt => "获取电子票据",
        }
    }

    /// How to go through it (the guide says the same at more length).
    pub fn how(self) -> &'static str {
        match self {
            Scenario::SearchFound => "查询一名新测试居民（出生于2000年的测试身份证号）",
            Scenario::SearchNotFound => "查询 119900199001010993",
            Scenario::OrderOpened => "为新测试居民下单，金额 40000 分",
            Scenario::OrderCancelled => "取消一个未支付的订单",
            Scenario::Paid => "为新测试居民报送缴费结果",
            Scenario::AlreadyPaid => "为 119900199001010010（已缴费）下单或报账",
            Scenario::LockedByOrder => "为 119900199001010029（被订单锁定）下单",
            Scenario::LockedByDebitRun => "为 119900199001010037（扣费中）下单",
            Scenario::WindowClosed => "为 119900199001010045（上年度未缴）下单",
            Scenario::AmountMismatch => "下单或报账的金额不等于 40000 分",
            Scenario::NotPayable => "为 119900199001010053（免缴）下单",
            Scenario::Reversed => "对一笔已报账的交易冲正",
            Scenario::ReversalFirst => "先对一个新交易号冲正，再用该交易号报账",
            Scenario::RefundSucceeded => "对应退款报送 succeeded",
            Scenario::RefundFailed => "对应退款报送 failed，应仍在待退款列表中",
            Scenario::PaymentStatus => "查询一笔交易的状态",
            Scenario::Statement => "上传一天的对账单",
            Scenario::Receipt => "按票据代码、号码和校验码取电子票据",
        }
    }
}

/// The endpoints of the channel protocol, as far as scenarios tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Search,
    OpenOrder,
    CancelOrder,
    ReportPayment,
    PaymentStatus,
    Reverse,
    RefundResult,
    Statement,
    Receipt,
    Other,
}

impl Endpoint {
    /// The endpoint of a request to `path` (without the query) with `method`.
    pub fn of(method: &str, path: &str) -> Endpoint {
        let Some(rest) = path.strip_prefix("/channel/v1/") else {
            return Endpoint::Other;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (method, parts.as_slice()) {
            ("POST", ["payables", "search"]) => Endpoint::Search,
            ("POST", ["orders"]) => Endpoint::OpenOrder,
            ("POST", ["orders", _, "cancel"]) => Endpoint::CancelOrder,
            ("POST", ["payments"]) => Endpoint::ReportPayment,
            ("GET", ["payments", _]) => Endpoint::PaymentStatus,
            ("POST", ["payments", _, "reversal"]) => Endpoint::Reverse,
            ("POST", ["refunds", _, "result"]) => Endpoint::RefundResult,
            ("PUT", ["statements", _]) => Endpoint::Statement,
            ("GET", ["receipts", _, _]) => Endpoint::Receipt,
            _ => Endpoint::Other,
        }
    }
}

/// The `channel_txn_id` of a reversal's path (`/channel/v1/payments/{id}/reversal`, as sent:
/// percent-encoded), decoded; `None` for another path or a malformed escape.
pub fn reversal_txn_id(path: &str) -> Option<String> {
    let encoded = path
        .strip_prefix("/channel/v1/payments/")?
        .strip_suffix("/reversal")?;
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a test channel's request and its answer showed, as the server read them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Observed<'a> {
    pub status: u16,
    /// The error's `code`.
    pub code: Option<&'a str>,
    /// The error's message said a bank auto-debit run holds the payable.
    pub by_debit_run: bool,
    /// A payment report's `result`.
    pub result: Option<&'a str>,
    /// A payment report's `refund.reason`.
    pub refund_reason: Option<&'a str>,
    /// A search found at least one payable.
    pub found_payables: bool,
    /// A refund result's `status`, as the channel sent it.
    pub refund_status: Option<&'a str>,
}

/// The scenarios a request to `endpoint` answered as `seen` went through.
pub fn scenarios_of(endpoint: Endpoint, seen: &Observed<'_>) -> Vec<Scenario> {
    let mut out = Vec::new();
    let ok = (200..300).contains(&seen.status);
    match endpoint {
        Endpoint::Search if ok && seen.found_payables => out.push(Scenario::SearchFound),
        Endpoint::Search if seen.code == Some("NOT_FOUND") => out.push(Scenario::SearchNotFound),
        Endpoint::OpenOrder if seen.status == 201 => out.push(Scenario::OrderOpened),
        Endpoint::OpenOrder => match seen.code {
            Some("ALREADY_PAID") => out.push(Scenario::AlreadyPaid),
            Some("LOCKED") if seen.by_debit_run => out.push(Scenario::LockedByDebitRun),
            Some("LOCKED") => out.push(Scenario::LockedByOrder),
            Some("WINDOW_CLOSED") => out.push(Scenario::WindowClosed),
            Some("AMOUNT_MISMATCH") => out.push(Scenario::AmountMismatch),
            Some("NOT_PAYABLE") => out.push(Scenario::NotPayable),
            _ => {}
        },
        Endpoint::CancelOrder if ok => out.push(Scenario::OrderCancelled),
        Endpoint::ReportPayment if ok => {
            if matches!(seen.result, Some("paid" | "partially_refunded")) {
                out.push(Scenario::Paid);
            }
            match seen.refund_reason {
                Some("ALREADY_PAID") => out.push(Scenario::AlreadyPaid),
                Some("AMOUNT_MISMATCH") => out.push(Scenario::AmountMismatch),
                Some("NOT_PAYABLE") => out.push(Scenario::NotPayable),
                Some("REVERSED_EARLIER") => out.push(Scenario::ReversalFirst),
                _ => {}
            }
        }
        Endpoint::ReportPayment if seen.code == Some("REVERSED") => {
            out.push(Scenario::ReversalFirst)
        }
        Endpoint::PaymentStatus if ok => out.push(Scenario::PaymentStatus),
        Endpoint::Reverse if ok => out.push(Scenario::Reversed),
        Endpoint::RefundResult if ok => match seen.refund_status {
            Some("succeeded") => out.push(Scenario::RefundSucceeded),
            Some("failed") => out.push(Scenario::RefundFailed),
            _ => {}
        },
        Endpoint::Statement if ok => out.push(Scenario::Statement),
        Endpoint::Receipt if ok => out.push(Scenario::Receipt),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdNumber;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
    }

    #[test]
    fn the_sandbox_ids_are_valid_and_none_is_fresh_or_unknown_twice() {
        assert_eq!(sandbox_region().as_str(), SANDBOX_REGION);
        for r in FIXED_RESIDENTS {
            IdNumber::parse(r.id_number, today()).unwrap();
            assert!(!is_fresh_id_number(r.id_number));
        }
        IdNumber::parse(UNKNOWN_ID_NUMBER, today()).unwrap();
        assert!(!is_fresh_id_number(UNKNOWN_ID_NUMBER));
    }

    #[test]
    fn fresh_ids_are_valid_distinct_and_bounded() {
        let first = fresh_id_number(0).unwrap();
        assert_eq!(first, "119900200001010016");
        assert_eq!(fresh_id_number(999).unwrap(), "119900200001020011");
        assert_eq!(fresh_id_number(365_633).unwrap(), "119900200012319991");
        for n in [0, 998, 999, 365_633] {
            let id = fresh_id_number(n).unwrap();
            IdNumber::parse(&id, today()).unwrap();
            assert!(is_fresh_id_number(&id), "{id}");
        }
        assert_eq!(fresh_id_number(365_634), None);
    }

    #[test]
    fn scenarios_are_read_from_answers() {
        let order = |code| Observed {
            status: 409,
            code: Some(code),
            ..Observed::default()
        };
        assert_eq!(
            scenarios_of(Endpoint::OpenOrder, &order("ALREADY_PAID")),
            [Scenario::AlreadyPaid]
        );
        assert_eq!(
            scenarios_of(Endpoint::OpenOrder, &order("LOCKED")),
            [Scenario::LockedByOrder]
        );
        let debit = Observed {
            by_debit_run: true,
            ..order("LOCKED")
        };
        assert_eq!(
            scenarios_of(Endpoint::OpenOrder, &debit),
            [Scenario::LockedByDebitRun]
        );
        let refunded = Observed {
            status: 200,
            result: Some("refund_pending"),
            refund_reason: Some("REVERSED_EARLIER"),
            ..Observed::default()
        };
        assert_eq!(
            scenarios_of(Endpoint::ReportPayment, &refunded),
            [Scenario::ReversalFirst]
        );
        let failed = Observed {
            status: 200,
            refund_status: Some("failed"),
            ..Observed::default()
        };
        assert_eq!(
            scenarios_of(Endpoint::RefundResult, &failed),
            [Scenario::RefundFailed]
        );
        assert!(scenarios_of(
            Endpoint::Search,
            &Observed {
                status: 200,
                ..Observed::default()
            }
        )
        .is_empty());
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn a_reversals_transaction_id_is_decoded() {
        assert_eq!(
            reversal_txn_id("/channel/v1/payments/T%3A1/reversal").as_deref(),
            Some("T:1")
        );
        assert_eq!(
            reversal_txn_id("/channel/v1/payments/T-2/reversal").as_deref(),
            Some("T-2")
        );
        assert_eq!(reversal_txn_id("/channel/v1/payments/T%3/reversal"), None);
        assert_eq!(reversal_txn_id("/channel/v1/payments/T-2"), None);
    }

    #[test]
    fn endpoints_are_told_apart() {
        assert_eq!(
            Endpoint::of("POST", "/channel/v1/payables/search"),
            Endpoint::Search
        );
        assert_eq!(
            Endpoint::of("POST", "/channel/v1/orders/OD1/cancel"),
            Endpoint::CancelOrder
        );
        assert_eq!(
            Endpoint::of("POST", "/channel/v1/payments/T1/reversal"),
            Endpoint::Reverse
        );
        assert_eq!(
            Endpoint::of("GET", "/channel/v1/payments/T1"),
            Endpoint::PaymentStatus
        );
        assert_eq!(
            Endpoint::of("GET", "/channel/v1/receipts/3206/0001"),
            Endpoint::Receipt
        );
        assert_eq!(Endpoint::of("GET", "/channel/v1/refunds"), Endpoint::Other);
    }
}
