//! The pure domain of yibao: types that cannot be invalid and the rules between them.
//!
//! No I/O, no async, no database types. Every parser takes text as people and channels type it and
//! returns a type the rest of yibao never re-checks; every refusal carries a Chinese message a
//! teller can act on and belongs to one stable code (`CODE` on each error type).

pub mod calendar;
pub mod channel_rules;
pub mod cover;
pub mod cover_history_file;
pub mod cover_rules;
pub mod enrolment;
pub mod enrolment_decision;
pub mod family_account;
pub mod fee;
pub mod health_card;
pub mod household;
pub mod id_number;
pub mod insured_number;
pub mod lifecycle;
pub mod money;
pub mod payment_report;
pub mod person_name;
pub mod reconciliation;
pub mod region;
pub mod reminders;
pub mod reversal;
pub mod roster;
pub mod sandbox;
pub mod settlement;
pub mod unpaid;
pub mod village_agent;

pub use calendar::{
    CalendarError, CalendarNotice, CalendarNoticeFile, CalendarYear, DayKind, DueDate,
    FestivalFile, WorkingCalendar,
};
pub use channel_rules::{ChannelRefusal, ChannelRules, PayableClass, CHANNEL_KINDS};
pub use cover::{
    back_payment_assessment, back_payment_offer, back_payment_text_zh, cover_start,
    critical_illness_raise, item_name_zh, BackPaymentOffer, BackPaymentRefusal, ClaimYear,
    CoverFacts, CoverHistory, CoverReason, CoverRefusal, CoverStart, ExemptClaim, LeftEmployee,
    RewardBreakdown, WaitMonths, YearCover,
};
pub use cover_rules::{CoverRules, CoverRulesError, ExemptGroup};
pub use enrolment::{
    assess, check_eligibility, covered_from, Assessment, EnrolmentFieldError, EnrolmentRefusal,
    Household, Person, Phone, Relief, ReliefKind, StationCode,
};
pub use enrolment_decision::{
    decide_enrolment, EnrolmentOutcome, EnrolmentRequest, EnrolmentWrite, StoredEnrolment,
};
pub use fee::{
    enrolment_fee_year, Category, CategoryAmount, CollectionWindow, Component, FeePolicy,
    FeePolicyError, FeePolicyInput, FeeYear, FeeYearError, InsuranceItem,
};
pub use id_number::{IdNumber, IdNumberError, InputKind, ParsedIdNumber, Sex};
pub use insured_number::{InsuredNumber, InsuredNumberError};
pub use lifecycle::{
    AgreementStatus, ApplicationStatus, DebitRunStatus, EnrolmentStatus, IllegalTransition,
    Lifecycle, OrderEvent, OrderStatus, PayableEvent, PayableStatus, PaymentEvent, PaymentStatus,
    ReceiptStatus, ReconciliationItemStatus, RefundEvent, RefundStatus, Status, UnknownStatus,
};
pub use money::{Fen, MoneyError};
pub use payment_report::{
    decide_batch, decide_payment, BatchPayable, EarlierReversal, OwedBack, PayableAtReport,
    PaymentApplication, PaymentDecision, PaymentReport,
};
pub use person_name::{PersonName, PersonNameError};
pub use region::{PoolingRegion, PoolingRegionError, RegionCode, RegionCodeError};
pub use reversal::{
    decide_reversal, settle_reversal, PaymentAtReversal, ReversalDecision, ReversalSettlement,
};
