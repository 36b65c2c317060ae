//! The one error type of the services, the handlers and the command line: a stable machine code and
//! a Chinese message a teller or citizen can act on. Internal failures are logged with context and
//! never leaked. Nothing here knows HTTP: each code's status and the JSON body are
//! [`crate::http::error`]'s.

use yibao_domain::{
    CalendarError, FeeYearError, IdNumberError, MoneyError, PersonNameError, RegionCodeError,
};
use yibao_storage::StorageError;

/// Every error code yibao answers with. The string of each is stable: channels and scripts match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidIdNumber,
    InvalidName,
    InvalidAmount,
    InvalidRegion,
    InvalidFeeYear,
    InvalidCalendar,
    InvalidPerson,
    /// An insured number (参保编号) that is not 16 characters, names no region, or whose check
    /// character is wrong.
    InvalidInsuredNumber,
    BadRosterFile,
    BadRosterHeader,
    BadStatementFile,
    BadDebitFile,
    /// A bank's result for a debit run whose debit date has not come.
    DebitDateNotReached,
    NoFeePolicy,
    NotEnrolled,
    NotAssessed,
    PaidMustBeRefunded,
    Locked,
    AlreadyExists,
    AuthRequired,
    InvalidCredentials,
    LoginThrottled,
    Forbidden,
    AuthFailed,
    Replayed,
    RegionNotAllowed,
    RateLimited,
    IdempotencyConflict,
    AlreadyPaid,
    AmountMismatch,
    NotPayable,
    WindowClosed,
    /// The 2025 rules refuse the year: past its last date (`YEAR_CLOSED`), or a wait that would
    /// end after 31 December where the region refuses such payments (`WAIT_PAST_YEAR_END`).
    YearClosed,
    WaitPastYearEnd,
    /// The region's channel rules (issue 17) do not let this kind of channel collect the
    /// payable (subsidised, a back-payment, late, or the full amount).
    ChannelNotAllowed,
    /// A back-payment (补缴修复) refused: not a gap year, already bought, or it would shorten nothing.
    BackPaymentRefused,
    /// Family account (个人账户家庭共济) refusals of an order from a `medical_account` channel: no
    /// binding in force, a relationship the region does not allow, an employee insured in another
    /// province, a back-payment the region keeps out of the account, or too little balance.
    NotBound,
    RelationshipNotAllowed,
    OutsideProvince,
    BackPaymentNotAllowed,
    InsufficientBalance,
    /// A health card (居民健康卡) order at an agent point for someone outside the card holder's
    /// household (issue 17).
    NotHouseholdMember,
    /// A village agent (村代办员) not registered, disabled, or asking after a resident outside
    /// their villages (issue 17).
    AgentNotAllowed,
    Reversed,
    ReversalClosed,
    NotFound,
    MethodNotAllowed,
    UnsupportedMediaType,
    PayloadTooLarge,
    /// A receipt PDF needs a character that no receipt font draws (the JSON receipt still works).
    ReceiptGlyphMissing,
    ServiceUnavailable,
    InternalError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 53] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidIdNumber,
        ErrorCode::InvalidName,
        ErrorCode::InvalidAmount,
        ErrorCode::InvalidRegion,
        ErrorCode::InvalidFeeYear,
        ErrorCode::InvalidCalendar,
        ErrorCode::InvalidPerson,
        ErrorCode::InvalidInsuredNumber,
        ErrorCode::BadRosterFile,
        ErrorCode::BadRosterHeader,
        ErrorCode::BadStatementFile,
        ErrorCode::BadDebitFile,
        ErrorCode::DebitDateNotReached,
        ErrorCode::NoFeePolicy,
        ErrorCode::NotEnrolled,
        ErrorCode::NotAssessed,
        ErrorCode::PaidMustBeRefunded,
        ErrorCode::Locked,
        ErrorCode::AlreadyExists,
        ErrorCode::AuthRequired,
        ErrorCode::InvalidCredentials,
        ErrorCode::LoginThrottled,
        ErrorCode::Forbidden,
        ErrorCode::AuthFailed,
        ErrorCode::Replayed,
        ErrorCode::RegionNotAllowed,
        ErrorCode::RateLimited,
        ErrorCode::IdempotencyConflict,
        ErrorCode::AlreadyPaid,
        ErrorCode::AmountMismatch,
        ErrorCode::NotPayable,
        ErrorCode::WindowClosed,
        ErrorCode::YearClosed,
        ErrorCode::WaitPastYearEnd,
        ErrorCode::ChannelNotAllowed,
        ErrorCode::BackPaymentRefused,
        ErrorCode::NotBound,
        ErrorCode::RelationshipNotAllowed,
        ErrorCode::OutsideProvince,
        ErrorCode::BackPaymentNotAllowed,
        ErrorCode::InsufficientBalance,
        ErrorCode::NotHouseholdMember,
        ErrorCode::AgentNotAllowed,
        ErrorCode::Reversed,
        ErrorCode::ReversalClosed,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::ReceiptGlyphMissing,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::InvalidIdNumber => IdNumberError::CODE,
            ErrorCode::InvalidName => PersonNameError::CODE,
            ErrorCode::InvalidAmount => MoneyError::CODE,
            ErrorCode::InvalidRegion => RegionCodeError::CODE,
            ErrorCode::InvalidFeeYear => FeeYearError::CODE,
            ErrorCode::InvalidCalendar => CalendarError::CODE,
            ErrorCode::InvalidPerson => "INVALID_PERSON",
            ErrorCode::InvalidInsuredNumber => yibao_domain::InsuredNumberError::CODE,
            ErrorCode::BadRosterFile => "BAD_ROSTER_FILE",
            ErrorCode::BadRosterHeader => "BAD_ROSTER_HEADER",
            ErrorCode::BadStatementFile => "BAD_STATEMENT_FILE",
            ErrorCode::BadDebitFile => "BAD_DEBIT_FILE",
            ErrorCode::DebitDateNotReached => "DEBIT_DATE_NOT_REACHED",
            ErrorCode::NoFeePolicy => "NO_FEE_POLICY",
            ErrorCode::NotEnrolled => "NOT_ENROLLED",
            ErrorCode::NotAssessed => "NOT_ASSESSED",
            ErrorCode::PaidMustBeRefunded => "PAID_MUST_BE_REFUNDED",
            ErrorCode::Locked => "LOCKED",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::AuthRequired => "AUTH_REQUIRED",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::LoginThrottled => "LOGIN_THROTTLED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::Replayed => "REPLAYED",
            ErrorCode::RegionNotAllowed => "REGION_NOT_ALLOWED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            ErrorCode::AlreadyPaid => "ALREADY_PAID",
            ErrorCode::AmountMismatch => "AMOUNT_MISMATCH",
            ErrorCode::NotPayable => "NOT_PAYABLE",
            ErrorCode::WindowClosed => "WINDOW_CLOSED",
            ErrorCode::YearClosed => "YEAR_CLOSED",
            ErrorCode::ChannelNotAllowed => yibao_domain::ChannelRefusal::CODE,
            ErrorCode::WaitPastYearEnd => "WAIT_PAST_YEAR_END",
            ErrorCode::BackPaymentRefused => "BACK_PAYMENT_REFUSED",
            ErrorCode::NotBound => "NOT_BOUND",
            ErrorCode::RelationshipNotAllowed => "RELATIONSHIP_NOT_ALLOWED",
            ErrorCode::OutsideProvince => "OUTSIDE_PROVINCE",
            ErrorCode::BackPaymentNotAllowed => "BACK_PAYMENT_NOT_ALLOWED",
            ErrorCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ErrorCode::NotHouseholdMember => yibao_domain::health_card::NotHouseholdMember::CODE,
            ErrorCode::AgentNotAllowed => yibao_domain::village_agent::AgentRefusal::CODE,
            ErrorCode::Reversed => "REVERSED",
            ErrorCode::ReversalClosed => "REVERSAL_CLOSED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::ReceiptGlyphMissing => "RECEIPT_GLYPH_MISSING",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The message used when nothing more precise is known.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "请求格式不正确，请检查后重试",
            ErrorCode::InvalidIdNumber => "身份证号码不正确，请核对后重新输入",
            ErrorCode::InvalidName => "姓名不正确，请核对后重新输入",
            ErrorCode::InvalidAmount => "金额不正确，请核对后重新输入",
            ErrorCode::InvalidRegion => "地区代码不正确，请核对后重新输入",
            ErrorCode::InvalidFeeYear => "缴费年度不正确，请核对后重新输入",
            ErrorCode::InvalidCalendar => "工作日历配置不正确",
            ErrorCode::InvalidPerson => "人员信息不正确，请核对后重新填写",
            ErrorCode::InvalidInsuredNumber => "参保编号不正确，请核对后重新输入",
            ErrorCode::BadRosterFile => "花名册文件无法读取，请检查文件格式",
            ErrorCode::BadRosterHeader => "花名册第一行列名不正确，请下载模板对照",
            ErrorCode::BadStatementFile => "对账单文件无法读取，请检查格式后重新上传",
            ErrorCode::BadDebitFile => "银行扣款文件无法读取，请检查格式后重新导入",
            ErrorCode::DebitDateNotReached => "扣款日尚未到，不能导入银行扣款结果",
            ErrorCode::NoFeePolicy => "该统筹区尚未设置该年度的缴费政策",
            ErrorCode::NotEnrolled => "此人本年度未参保登记",
            ErrorCode::NotAssessed => "此人本年度尚未核定",
            ErrorCode::PaidMustBeRefunded => "已缴费，须先退费后才能变更",
            ErrorCode::Locked => "应缴费信息正被锁定，请稍后再试",
            ErrorCode::AlreadyExists => "该记录已存在",
            ErrorCode::AuthRequired => "请先登录",
            ErrorCode::InvalidCredentials => "用户名或密码不正确",
            ErrorCode::LoginThrottled => "登录失败次数过多，请稍后再试",
            ErrorCode::Forbidden => "无权访问：只能查看和办理本人负责范围内的业务",
            ErrorCode::AuthFailed => "渠道认证失败",
            ErrorCode::Replayed => "重复的请求，请使用新的 Nonce",
            ErrorCode::RegionNotAllowed => "本渠道未开通该统筹区的代收业务",
            ErrorCode::RateLimited => "请求过于频繁，请稍后重试",
            ErrorCode::IdempotencyConflict => "同一编号的请求内容与首次不一致，请使用新的编号",
            ErrorCode::AlreadyPaid => "该应缴费信息已缴费，无需重复缴费",
            ErrorCode::AmountMismatch => "金额与应缴金额之和不一致，请重新查询",
            ErrorCode::NotPayable => "该应缴费信息不可缴费（免缴、已取消或已重新核定），请重新查询",
            ErrorCode::WindowClosed => "已过征缴期，该统筹区不允许补缴，请咨询医保经办机构",
            ErrorCode::YearClosed => "本年度缴费已截止，不能再缴纳本年度保费",
            ErrorCode::ChannelNotAllowed => "本渠道不能收取该费用，请到乡镇/社区服务站缴费",
            ErrorCode::WaitPastYearEnd => {
                "现在缴费待遇等待期将超过本待遇年度，本统筹区不再受理本年度缴费"
            }
            ErrorCode::BackPaymentRefused => "不予补缴：补缴不能再缩短待遇等待期",
            ErrorCode::NotBound => {
                "参保人与该职工没有在有效期内的家庭共济绑定关系，请先到医保经办机构办理绑定"
            }
            ErrorCode::RelationshipNotAllowed => {
                "参保人与该职工的关系不在本统筹区家庭共济的亲属范围内"
            }
            ErrorCode::OutsideProvince => "该职工在省外参保，本统筹区只接受省内职工个人账户代缴",
            ErrorCode::BackPaymentNotAllowed => "本统筹区不允许用职工个人账户缴纳补缴修复费用",
            ErrorCode::InsufficientBalance => "个人账户余额不足，请改用其他方式缴费",
            ErrorCode::NotHouseholdMember => {
                "居民健康卡在代征点只能为持卡人本户成员缴费，请到自助服务机或其他渠道缴费"
            }
            ErrorCode::AgentNotAllowed => "代办员只能为本人服务村（站）的居民缴费",
            ErrorCode::Reversed => "该笔交易已冲正，不能再上报缴费",
            ErrorCode::ReversalClosed => "该日对账已完成，不能再冲正，请走退费流程",
            ErrorCode::NotFound => "未找到请求的内容，请检查地址或编号",
            ErrorCode::MethodNotAllowed => "不支持该请求方法",
            ErrorCode::UnsupportedMediaType => "请求内容类型不支持，请使用 application/json",
            ErrorCode::PayloadTooLarge => "请求内容过大，请减少后重试",
            ErrorCode::ReceiptGlyphMissing => {
                "票据字体缺少此票据所需的字，无法生成PDF；请使用 JSON 格式并联系运维安装后备字体"
            }
            ErrorCode::ServiceUnavailable => "系统暂时无法处理，请稍后重试",
            ErrorCode::InternalError => {
                "系统内部错误，请稍后重试；如持续出现请联系运维并提供请求编号"
            }
        }
    }
}

/// What went wrong, as the services say it: a code and a message. Over HTTP it is answered with the
/// code's status and `{"code": "...", "message": "中文说明", "request_id": "..."}`
/// ([`crate::http::error`]); the command line prints the message and the code.
#[derive(Debug, Clone)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
        }
    }

    pub fn of(code: ErrorCode) -> Self {
        ServiceError::new(code, code.default_message())
    }

    /// An unexpected failure: logged in full here, answered with a generic message.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, context, "internal error");
        ServiceError::of(ErrorCode::InternalError)
    }
}

/// `message（CODE）`: how the command line prints it.
impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}（{}）", self.message, self.code.as_str())
    }
}

impl std::error::Error for ServiceError {}

macro_rules! domain_error {
    ($ty:ty => $code:expr) => {
        impl From<$ty> for ServiceError {
            fn from(err: $ty) -> Self {
                ServiceError::new($code, err.to_string())
            }
        }
    };
}

domain_error!(IdNumberError => ErrorCode::InvalidIdNumber);
domain_error!(PersonNameError => ErrorCode::InvalidName);
domain_error!(MoneyError => ErrorCode::InvalidAmount);
domain_error!(RegionCodeError => ErrorCode::InvalidRegion);
domain_error!(yibao_domain::InsuredNumberError => ErrorCode::InvalidInsuredNumber);
domain_error!(FeeYearError => ErrorCode::InvalidFeeYear);
domain_error!(CalendarError => ErrorCode::InvalidCalendar);
domain_error!(yibao_domain::EnrolmentFieldError => ErrorCode::InvalidPerson);
domain_error!(yibao_domain::roster::RosterHeaderError => ErrorCode::BadRosterHeader);

/// Storage errors become API errors here and nowhere else.
impl From<StorageError> for ServiceError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ServiceError::of(ErrorCode::ServiceUnavailable)
            }
            other => ServiceError::internal("storage", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_upper_snake() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_'));
            assert!(!code.default_message().is_empty());
        }
    }
}
