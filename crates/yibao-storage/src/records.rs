//! Types that cross the storage trait for enrolment, assessment, staff and the audit log, and the
//! conversions between domain types and columns that both backends share.

use chrono::NaiveDate;
use serde::Serialize;
use yibao_domain::{
    Assessment, EnrolmentStatus, FeeYear, Fen, Household, IdNumber, PayableStatus, Person,
    PersonName, Phone, RegionCode, Relief, ReliefKind, StationCode,
};

use crate::StorageError;

/// Where a change came from, recorded in history and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSource {
    /// Staff username, or `cli:<os user>` for the command line.
    pub actor: String,
    /// `roster:<file name>`, `api`, `renewal` …
    pub source: String,
}

pub use yibao_domain::{EnrolmentOutcome, EnrolmentRequest};

/// One person to store, as a roster row or an API call gives them.
#[derive(Debug, Clone)]
pub struct PersonUpsert {
    pub row_number: usize,
    pub person: Person,
    /// `None` when there is no fee year to enrol in: the person is recorded only.
    pub enrolment: Option<EnrolmentRequest>,
    /// The household the row names (户号, 与户主关系), written in the same transaction;
    /// `None` leaves the person's household as it is.
    pub household: Option<yibao_domain::household::Placement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonChange {
    Created,
    Updated,
    Unchanged,
    /// Stored already where the caller may not change it: nothing written for this row.
    OutOfScope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertOutcome {
    pub row_number: usize,
    pub person: PersonChange,
    pub enrolment: EnrolmentOutcome,
    /// The row's household was not written: making the person head would have ended the
    /// membership of a head at a station the caller may not change.
    pub household_refused: bool,
}

/// Payables per storage call (an assessment's batch of inserts or replacements), and enrolments
/// per statement of a renewal: bounded so one transaction stays short. Persons per call are the
/// backend's ([`crate::Backend::persons_per_batch`]).
pub const MAX_UPSERT_BATCH: usize = 1000;

/// A stored enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EnrolmentRecord {
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    #[sqlx(try_from = "i32")]
    pub fee_year: FeeYear,
    #[sqlx(try_from = "String")]
    pub status: EnrolmentStatus,
    pub refusal_code: Option<String>,
    pub refusal_message: Option<String>,
    pub covered_from: Option<NaiveDate>,
    pub source: String,
}

/// One version of a person, as history keeps it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub version: i64,
    pub changed_at: String,
    pub changed_by: String,
    pub source: String,
    /// The record as it became, as JSON (ID number and name in full: staff-only data).
    pub snapshot: serde_json::Value,
}

/// One step of an assessment's walk through a region's enrolments, in ID-number order. No
/// `Debug`: `read_up_to` is an ID number in full.
#[derive(Clone, Default)]
pub struct AssessmentCandidates {
    /// The enrolled persons of the step without a current payable, by ID number.
    pub persons: Vec<yibao_domain::Person>,
    /// The ID number of the last enrolment the step read, where the next step starts; `None`
    /// when no enrolment was left to read.
    pub read_up_to: Option<String>,
}

/// A payable to create (核定的应缴费信息).
#[derive(Debug, Clone)]
pub struct NewPayable {
    pub payable_id: String,
    pub region: RegionCode,
    pub fee_year: FeeYear,
    pub id_number: IdNumber,
    pub assessment: Assessment,
    pub payable_from: NaiveDate,
    /// The inputs used, as JSON, so a later registry edit never silently changes this payable.
    pub inputs: String,
    pub assessed_by: String,
    /// A back-payment (补缴修复) of this gap year; `None` for the year's contribution.
    pub buys_back_year: Option<u16>,
}

impl NewPayable {
    pub fn status(&self) -> PayableStatus {
        if self.assessment.amount == Fen::ZERO {
            PayableStatus::Exempt
        } else {
            PayableStatus::Unpaid
        }
    }
}

/// A stored payable (应缴费信息), as every read of one gives it: assessment, the person page and
/// a channel's search (which reads it with its holder's name beside it, as a `PayableView`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct PayableRecord {
    pub payable_id: String,
    #[schema(value_type = String)]
    #[sqlx(rename = "region_code", try_from = "String")]
    pub region: RegionCode,
    #[schema(value_type = i32)]
    #[sqlx(try_from = "i32")]
    pub fee_year: FeeYear,
    /// In full: a payable record is staff-only data (channels and the public see a masked one).
    #[schema(value_type = String)]
    #[serde(serialize_with = "serialize_id_number_in_full")]
    #[sqlx(try_from = "String")]
    pub id_number: IdNumber,
    pub category: String,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub amount_fen: Fen,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub basic_fen: Fen,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub critical_illness_fen: Fen,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub long_term_care_fen: Fen,
    #[schema(value_type = i64)]
    #[sqlx(try_from = "i64")]
    pub policy_amount_fen: Fen,
    pub relief_kind: Option<String>,
    #[schema(value_type = String)]
    #[sqlx(try_from = "String")]
    pub status: PayableStatus,
    pub payable_from: NaiveDate,
    pub supersedes: Option<String>,
    pub inputs: String,
    /// What holds it while `locked`: `order:<order no>` or `debit:<run no>`.
    pub locked_by: Option<String>,
    /// Until when (Unix seconds) the hold lasts; an expired hold is no hold.
    pub locked_until: Option<i64>,
    /// A back-payment (补缴修复) buys back this gap year; `None` on the year's own contribution.
    pub buys_back_year: Option<i32>,
}

impl PayableRecord {
    /// The gap year this payable buys back, if it is a back-payment.
    pub fn buys_back(&self) -> Option<u16> {
        self.buys_back_year.and_then(|y| u16::try_from(y).ok())
    }

    /// The status a channel sees at `now`: an expired lock is no lock.
    pub fn channel_status(&self, now: i64) -> &'static str {
        match self.status {
            PayableStatus::Unpaid => "unpaid",
            PayableStatus::Locked if self.locked_until.is_some_and(|t| t > now) => "locked",
            PayableStatus::Locked => "unpaid",
            PayableStatus::Paid | PayableStatus::Posted => "paid",
            PayableStatus::Exempt => "exempt",
            PayableStatus::Superseded | PayableStatus::Cancelled => "cancelled",
        }
    }
}

/// Staff-only records serialise the ID number in full, where [`IdNumber`]'s own form is masked.
pub fn serialize_id_number_in_full<S: serde::Serializer>(
    id_number: &IdNumber,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id_number.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassessRefusal {
    /// Nothing to re-assess: no current payable.
    NotAssessed,
    /// Paid (or posted): must be refunded before it changes.
    PaidMustBeRefunded,
    /// Held by an order or a debit run.
    Locked,
}

/// What [`crate::persons::PersonStore::move_person`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    /// Moved: the fee years whose enrolment moved with them, and how many unpaid payables the old
    /// region cancelled (the new region assesses those years by its own policy).
    Moved {
        fee_years: Vec<i32>,
        payables_cancelled: u64,
    },
    /// No such person in the region they would move from.
    NotFound,
    /// A payable of theirs is held by an open order or a debit run: nothing was changed.
    Locked,
}

/// The person's standing for unpaid lists (未缴费名单) and the public paid listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StandingRow {
    pub region: RegionCode,
    pub station_code: Option<String>,
    /// In full: lists are staff-only (what the public sees is masked where it is shown).
    #[serde(serialize_with = "serialize_id_number_in_full")]
    pub id_number: IdNumber,
    pub name: String,
    /// `paid`, `unpaid`, `exempt`, `not_assessed`, `enrolment_refused`, `not_enrolled`.
    pub standing: String,
    /// Refusal message, or the payable's amount for unpaid.
    pub detail: Option<String>,
    pub amount_fen: Option<i64>,
    /// The contact phone from the roster: the station calls the unpaid.
    pub phone: Option<String>,
}

/// The columns of a person's standing in a fee year: the person, with that year's enrolment and
/// current payable joined (`NULL` where there is none).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StandingColumns {
    pub region_code: String,
    pub station_code: Option<String>,
    pub id_number: String,
    pub name: String,
    pub phone: Option<String>,
    pub enrolment_status: Option<String>,
    /// Not selected by the unpaid list, whose people are enrolled.
    #[sqlx(default)]
    pub refusal_message: Option<String>,
    pub payable_status: Option<String>,
    pub amount_fen: Option<i64>,
}

impl TryFrom<StandingColumns> for StandingRow {
    type Error = StorageError;
    /// Region and ID number checked again: stored data is never trusted blindly.
    fn try_from(c: StandingColumns) -> Result<StandingRow, StorageError> {
        let (standing, detail) = standing_of(
            c.enrolment_status.as_deref(),
            c.payable_status.as_deref(),
            c.refusal_message,
        );
        Ok(StandingRow {
            region: RegionCode::try_from(c.region_code).map_err(StorageError::corrupt)?,
            station_code: c.station_code,
            id_number: IdNumber::try_from(c.id_number).map_err(StorageError::corrupt)?,
            name: c.name,
            standing: standing.to_owned(),
            detail,
            amount_fen: c.amount_fen,
            phone: c.phone,
        })
    }
}

/// Persons of one region and station with one standing in a fee year
/// ([`crate::Storage::collection_progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressRow {
    pub region: RegionCode,
    pub station_code: Option<String>,
    /// `paid`, `unpaid`, `exempt`, `not_assessed`, `enrolment_refused`, `not_enrolled`.
    pub standing: &'static str,
    pub persons: i64,
    /// Their current payables' amounts together, fen (0 where none is assessed): for those who
    /// owe ([`standing_owes`]), what the unpaid list owes.
    pub owed_fen: i64,
}

/// A person as a search list shows them ([`crate::Storage::find_persons_by_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSummary {
    pub region: RegionCode,
    pub id_number: IdNumber,
    pub name: String,
    pub station_code: Option<String>,
}

pub const MAX_LIST_ROWS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 中心管理员: everything, all regions.
    Admin,
    /// 服务站经办: own station's people only (谁主管谁负责).
    StationOperator,
    /// 税务征收: collection data of a region, read only on enrolment.
    TaxCollector,
    /// 审计: read only, all regions.
    Auditor,
}

/// How a stored `role` column becomes a role; an unknown code is a corrupt row.
impl TryFrom<String> for Role {
    type Error = StorageError;
    fn try_from(code: String) -> Result<Role, StorageError> {
        Role::from_code(&code).ok_or_else(|| StorageError::corrupt(format!("role {code}")))
    }
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::StationOperator => "station_operator",
            Role::TaxCollector => "tax_collector",
            Role::Auditor => "auditor",
        }
    }
    pub fn from_code(code: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::StationOperator,
            Role::TaxCollector,
            Role::Auditor,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// Staff sign-in throttling: the window over which attempts are counted, seconds.
pub const LOGIN_WINDOW_SECONDS: i64 = 15 * 60;
/// Sign-in attempts checked against the password per account (user name as typed) in a window.
pub const MAX_LOGIN_ATTEMPTS_PER_ACCOUNT: i64 = 5;
/// Sign-in attempts checked against a password per client address in a window.
pub const MAX_LOGIN_ATTEMPTS_PER_ADDRESS: i64 = 20;
/// Longest user name or client address counted (longer user names are refused before).
pub const MAX_LOGIN_KEY_CHARS: usize = 64;

/// What a sign-in attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginThrottleKey {
    Account,
    Address,
}

impl LoginThrottleKey {
    pub fn code(self) -> &'static str {
        match self {
            LoginThrottleKey::Account => "account",
            LoginThrottleKey::Address => "address",
        }
    }

    pub fn limit(self) -> i64 {
        match self {
            LoginThrottleKey::Account => MAX_LOGIN_ATTEMPTS_PER_ACCOUNT,
            LoginThrottleKey::Address => MAX_LOGIN_ATTEMPTS_PER_ADDRESS,
        }
    }
}

/// Whether a sign-in attempt may have its password checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAdmission {
    /// Counted against the account and the address; check the password.
    Admitted,
    /// Over the limit of `key`: refuse without checking, for `retry_after_seconds`.
    Throttled {
        key: LoginThrottleKey,
        retry_after_seconds: i64,
    },
}

/// A staff account. `password_hash` is an argon2id PHC string; it never leaves storage but to be checked.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffAccount {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub region: Option<RegionCode>,
    pub station: Option<StationCode>,
    pub password_hash: String,
    pub disabled: bool,
    /// The password was set by someone else (a new account, a reset): the holder must choose
    /// their own at the next sign-in before doing anything else in the console.
    pub must_change_password: bool,
}

impl std::fmt::Debug for StaffAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffAccount")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("region", &self.region)
            .field("station", &self.station)
            .field("disabled", &self.disabled)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

/// Which audit entries to read ([`crate::Storage::audit_entries`]), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor, exactly.
    pub actor: Option<String>,
    /// Actions beginning with this (`read.` for every read).
    pub action_prefix: Option<String>,
    /// Entries of this day (UTC, as stored) or later.
    pub from_day: Option<chrono::NaiveDate>,
    /// Entries of this day (UTC, as stored) or earlier.
    pub to_day: Option<chrono::NaiveDate>,
    /// Keyset paging: entries older than this one (its `audit_id`).
    pub before_id: Option<i64>,
}

/// One append-only audit entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub region: Option<String>,
    pub target: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub audit_id: i64,
    pub at: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    pub import_id: String,
    pub file_name: String,
    pub file_sha256: String,
    pub rows_read: u64,
    pub enrolled: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

/// The columns of a `persons` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonColumns {
    pub region_code: String,
    pub id_number: String,
    pub name: String,
    pub household: &'static str,
    pub permit_since: Option<NaiveDate>,
    pub school: Option<String>,
    pub phone: Option<String>,
    pub station_code: Option<String>,
    pub employee_insured: bool,
    pub relief_kind: Option<&'static str>,
    pub certificate_name: Option<String>,
    pub certificate_number: Option<String>,
    pub certificate_valid_until: Option<NaiveDate>,
    pub subsidy_fen: Option<i64>,
}

impl PersonColumns {
    pub fn of(p: &Person) -> PersonColumns {
        let (household, permit_since) = match p.household {
            Household::LocalRegistration => ("local_registration", None),
            Household::ResidencePermit { since } => ("residence_permit", Some(since)),
        };
        let relief = p.relief.as_ref();
        PersonColumns {
            region_code: p.region.to_string(),
            id_number: p.id_number.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            household,
            permit_since,
            school: p.school.clone(),
            phone: p.phone.as_ref().map(|x| x.as_str().to_owned()),
            station_code: p.station.as_ref().map(|s| s.as_str().to_owned()),
            employee_insured: p.employee_insured,
            relief_kind: relief.map(|r| r.kind.code()),
            certificate_name: relief.map(|r| r.certificate_name.clone()),
            certificate_number: relief.map(|r| r.certificate_number.clone()),
            certificate_valid_until: relief.map(|r| r.valid_until),
            subsidy_fen: relief.and_then(|r| r.subsidy).map(|f| f.as_fen()),
        }
    }

    /// Rebuilds the domain person, re-checking everything (stored data is never trusted blindly).
    pub fn into_person(self) -> Result<Person, StorageError> {
        let corrupt = |what: &str| StorageError::corrupt(format!("person {what}"));
        let household = match (self.household, self.permit_since) {
            ("local_registration", None) => Household::LocalRegistration,
            ("residence_permit", Some(since)) => Household::ResidencePermit { since },
            _ => return Err(corrupt("household")),
        };
        let relief = match self.relief_kind {
            None => None,
            Some(kind) => {
                let kind = ReliefKind::from_code(kind).ok_or_else(|| corrupt("relief kind"))?;
                let subsidy = self
                    .subsidy_fen
                    .map(yibao_domain::Fen::new)
                    .transpose()
                    .map_err(StorageError::corrupt)?;
                Some(
                    Relief::new(
                        kind,
                        self.certificate_name.as_deref().unwrap_or_default(),
                        self.certificate_number.as_deref().unwrap_or_default(),
                        self.certificate_valid_until
                            .ok_or_else(|| corrupt("certificate"))?,
                        subsidy,
                    )
                    .map_err(StorageError::corrupt)?,
                )
            }
        };
        Ok(Person {
            region: RegionCode::parse(&self.region_code).map_err(StorageError::corrupt)?,
            // Checked against no "today": it was not in the future when stored.
            id_number: IdNumber::parse(&self.id_number, NaiveDate::MAX)
                .map_err(StorageError::corrupt)?
                .id_number,
            name: PersonName::parse(&self.name).map_err(StorageError::corrupt)?,
            household,
            school: self.school,
            phone: self
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(StorageError::corrupt)?,
            station: self
                .station_code
                .as_deref()
                .map(StationCode::parse)
                .transpose()
                .map_err(StorageError::corrupt)?,
            employee_insured: self.employee_insured,
            relief,
        })
    }

    /// The history snapshot: the full record as JSON.
    pub fn snapshot(&self) -> String {
        serde_json::json!({
            "region_code": self.region_code,
            "id_number": self.id_number,
            "name": self.name,
            "household": self.household,
            "permit_since": self.permit_since,
            "school": self.school,
            "phone": self.phone,
            "station_code": self.station_code,
            "employee_insured": self.employee_insured,
            "relief_kind": self.relief_kind,
            "certificate_name": self.certificate_name,
            "certificate_number": self.certificate_number,
            "certificate_valid_until": self.certificate_valid_until,
            "subsidy_fen": self.subsidy_fen,
        })
        .to_string()
    }
}

/// Longest a staff session lives.
pub const MAX_SESSION_SECONDS: i64 = 12 * 3600;

pub fn household_code(text: &str) -> Result<&'static str, StorageError> {
    match text {
        "local_registration" => Ok("local_registration"),
        "residence_permit" => Ok("residence_permit"),
        other => Err(StorageError::corrupt(format!("household {other}"))),
    }
}

/// A person's standing in a fee year from their enrolment and current payable statuses.
pub fn standing_of(
    enrolment: Option<&str>,
    payable: Option<&str>,
    refusal: Option<String>,
) -> (&'static str, Option<String>) {
    match (enrolment, payable) {
        (None, _) => ("not_enrolled", None),
        (Some("refused"), _) => ("enrolment_refused", refusal),
        (Some(_), None) => ("not_assessed", None),
        (Some(_), Some("paid" | "posted")) => ("paid", None),
        (Some(_), Some("exempt")) => ("exempt", None),
        (Some(_), Some(_)) => ("unpaid", None),
    }
}

/// The Chinese reason shown in unpaid lists.
/// Whether a standing belongs on the unpaid list (未缴费名单): enrolled and owing (assessed and
/// unpaid, or not assessed yet). The paid, the exempt, the refused and those not enrolled this
/// year are left out.
pub fn standing_owes(standing: &str) -> bool {
    matches!(standing, "unpaid" | "not_assessed")
}

pub fn standing_name_zh(standing: &str) -> &'static str {
    match standing {
        "paid" => "已缴费",
        "unpaid" => "未缴费",
        "exempt" => "免缴（减免对象）",
        "not_assessed" => "已参保未核定",
        "enrolment_refused" => "参保登记未通过",
        "not_enrolled" => "本年度未参保登记",
        _ => "未知",
    }
}

/// The region code a record of the centre (an account bound to no region) is kept under, as the
/// audit log does: `000000` names no pooling region.
pub const CENTRE_SCOPE: &str = "000000";

/// A roster import's rejection file (未通过明细) kept for its uploader to download
/// ([`crate::Storage::put_rejection_file`]): the CSV with each rejected row's own cells, under the
/// uploader's region ([`CENTRE_SCOPE`] for the centre) and station. Personal data.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RejectionFile {
    /// The uploader's region, or [`CENTRE_SCOPE`].
    #[sqlx(rename = "region_code")]
    pub region: String,
    pub import_id: String,
    /// The uploader's station; `None` above station level.
    pub station_code: Option<String>,
    pub uploaded_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The uploaded file's name.
    pub file_name: String,
    /// Rejected rows in `content`.
    pub rows_kept: i64,
    /// The CSV, UTF-8 with a byte-order mark, at most [`MAX_REJECTION_FILE_BYTES`].
    pub content: String,
}

impl std::fmt::Debug for RejectionFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectionFile")
            .field("region", &self.region)
            .field("import_id", &self.import_id)
            .field("station_code", &self.station_code)
            .field("rows_kept", &self.rows_kept)
            .finish_non_exhaustive()
    }
}

/// Largest rejection file kept (a database constraint on both backends).
pub const MAX_REJECTION_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Rejection files deleted by one pruning statement.
pub const MAX_REJECTION_FILES_PRUNED: usize = 1_000;

/// A record that an unpaid resident was told, and the reason they gave (未缴名单跟进).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFollowUp {
    pub region: yibao_domain::RegionCode,
    pub fee_year: yibao_domain::FeeYear,
    pub id_number: IdNumber,
    /// The person's station when recorded.
    pub station_code: Option<String>,
    pub told_on: NaiveDate,
    pub told_how: yibao_domain::unpaid::NoticeMethod,
    /// A signed confirmation (告知书回执) was scanned and kept.
    pub signed_scanned: bool,
    /// One of the configured reasons (`unpaid_reasons`).
    pub reason: String,
    pub note: Option<String>,
    pub recorded_by: String,
    /// Unix seconds.
    pub recorded_at: i64,
}

/// A stored follow-up record, numbered per person and fee year (1, 2, …; the highest is the
/// latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpRecord {
    pub seq: i64,
    pub follow_up: NewFollowUp,
}

/// The latest follow-up of a person on the unpaid list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestFollowUp {
    pub told_on: NaiveDate,
    pub told_how: yibao_domain::unpaid::NoticeMethod,
    pub signed_scanned: bool,
    pub reason: String,
}

/// One person of a page of the unpaid list ([`crate::Storage::unpaid_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpaidRow {
    pub row: StandingRow,
    pub latest: Option<LatestFollowUp>,
}

/// One page of the unpaid list. How many owe and how much, the whole list's, are the collection
/// progress's ([`crate::Storage::collection_progress`], [`ProgressRow::owed_fen`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpaidPage {
    pub rows: Vec<UnpaidRow>,
    /// Whether the list goes on after this page.
    pub more: bool,
}

/// Most rows one page of the unpaid list may ask for.
pub const MAX_UNPAID_PAGE_ROWS: usize = 500;
/// Follow-up records of one person and fee year read at once (the newest).
pub const MAX_FOLLOW_UPS_READ: usize = 100;

/// A station's list of the uninsured with their reasons (未参保名单及原因), submitted to the
/// centre once per fee year ([`crate::Storage::submit_uninsured`]).
#[derive(Clone, PartialEq, Eq)]
pub struct UninsuredSubmission {
    pub region: yibao_domain::RegionCode,
    pub fee_year: yibao_domain::FeeYear,
    pub station_code: String,
    pub submitted_by: String,
    /// Unix seconds.
    pub submitted_at: i64,
    pub persons: i64,
    /// Of them, with a recorded reason.
    pub with_reason: i64,
    /// The list as submitted: a JSON array of `{id_number, name, reason, told_on, told_how}`.
    /// Personal data. Empty when read as a summary.
    pub lines: String,
}

impl std::fmt::Debug for UninsuredSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UninsuredSubmission")
            .field("region", &self.region)
            .field("fee_year", &self.fee_year)
            .field("station_code", &self.station_code)
            .field("persons", &self.persons)
            .finish_non_exhaustive()
    }
}
