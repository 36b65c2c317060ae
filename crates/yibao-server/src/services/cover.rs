//! The 2025 rules at work (issue 19): the agency's cover history file, and what the rules say of a
//! person for a payable: their history, when cover would start if they paid today, what buying back
//! gap years would do, and the raise of their critical-illness cap.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use yibao_domain::cover_history_file::{parse_history_row, HistoryHeader, HistoryRow};
use yibao_domain::{
    back_payment_offer, cover_start, critical_illness_raise, BackPaymentOffer, Category,
    CoverFacts, CoverHistory, CoverRefusal, CoverStart, FeePolicy, IdNumber, RegionCode,
    RewardBreakdown,
};
use yibao_roster_file::{HeaderFit, Limits, RosterReader};
use yibao_storage::Storage;

use super::roster_import::{Rejection, Rejections};
use crate::error::{ErrorCode, ServiceError};

/// What an import of a cover history file did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverHistoryImport {
    /// Data rows read (the header and blank rows not counted).
    pub rows_read: u64,
    /// Person-years written (each replacing the same person's same year).
    pub written: u64,
    pub rejected: u64,
    pub rejections: Vec<Rejection>,
    /// True when more rows were rejected than the report lists.
    pub rejections_truncated: bool,
    /// The file's header as read, for the rejection file.
    #[serde(skip)]
    pub header: Vec<String>,
    /// Each rejected row's own cells. Personal data: never logged.
    #[serde(skip)]
    pub rejected_rows: BTreeMap<usize, Vec<String>>,
}

impl CoverHistoryImport {
    /// The rejected rows with their reasons, as the roster's rejection file: corrected, it can be
    /// imported again as it is.
    pub fn rejection_file(&self) -> String {
        super::roster_import::rejection_file(
            &self.header,
            &self.rejections,
            &self.rejected_rows,
            self.rejections_truncated,
        )
    }
}

fn header_fit(cells: &[String]) -> HeaderFit {
    if HistoryHeader::find(cells).is_ok() {
        HeaderFit::Fits
    } else {
        HeaderFit::No
    }
}

/// Imports a cover history file (CSV or XLSX, `docs/rules-2025.md`) into `region`: every row read
/// and checked first, the accepted ones then written in one transaction, so a file that cannot be
/// read writes nothing. A person-year twice in the file is refused the second time. Audited
/// `cover_history.import` with the counts.
pub async fn import_cover_history(
    storage: &dyn Storage,
    actor: &str,
    region: RegionCode,
    path: &Path,
    today: NaiveDate,
    limits: Limits,
) -> Result<CoverHistoryImport, ServiceError> {
    if storage.get_region(region).await?.is_none() {
        return Err(super::setup::unknown_region(region));
    }
    let mut reader = RosterReader::open_finding(path, limits, &header_fit)
        .map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))?;
    let header = HistoryHeader::find(reader.header())
        .map_err(|e| ServiceError::new(ErrorCode::BadRosterHeader, e.to_string()))?;
    let header_cells = reader.header().to_vec();
    let mut accepted: Vec<HistoryRow> = Vec::new();
    let mut seen: HashSet<(IdNumber, u16)> = HashSet::new();
    let mut rejections = Rejections::default();
    let mut rows_read = 0u64;
    let mut rejected = 0u64;
    for row in &mut reader {
        let row = row.map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))?;
        rows_read += 1;
        match parse_history_row(&header, &row.cells, today) {
            Ok(parsed) if seen.insert((parsed.id_number, parsed.year)) => accepted.push(parsed),
            Ok(parsed) => {
                rejected += 1;
                rejections.add(
                    row.row_number,
                    "",
                    "DUPLICATE_ROW",
                    format!(
                        "同一人的{}年度在文件中出现了不止一次，以先出现的一行为准",
                        parsed.year
                    ),
                    Some(&row.cells),
                );
            }
            Err(e) => {
                rejected += 1;
                rejections.add(
                    row.row_number,
                    e.column.name_zh(),
                    e.code,
                    e.reason,
                    Some(&row.cells),
                );
            }
        }
    }
    let written = storage
        .put_cover_history(region, &accepted, chrono::Utc::now().timestamp())
        .await?;
    super::record_audit(
        storage,
        actor,
        "cover_history.import",
        Some(region),
        &region.to_string(),
        serde_json::json!({ "rows_read": rows_read, "written": written, "rejected": rejected }),
    )
    .await?;
    Ok(CoverHistoryImport {
        rows_read,
        written,
        rejected,
        rejections: rejections.list,
        rejections_truncated: rejections.truncated,
        header: header_cells,
        rejected_rows: rejections.rows,
    })
}

/// What the 2025 rules say of a person for a payable of `policy`'s region and year.
#[derive(Debug, Clone)]
pub struct PersonCover {
    pub history: CoverHistory,
    /// When cover starts if the person pays on `on`, or why the year cannot be bought that day.
    pub start: Result<CoverStart, CoverRefusal>,
    pub offer: BackPaymentOffer,
    pub reward: RewardBreakdown,
    pub on: NaiveDate,
}

/// The rules applied to what yibao knows of the person: their history (imported years and paid
/// payables), their birth date and whether they are an adult. Exempt-group evidence, moves from
/// employee insurance and claims are not imported yet, so none is taken into account.
pub fn person_cover(
    policy: &FeePolicy,
    id_number: &IdNumber,
    history: CoverHistory,
    on: NaiveDate,
) -> PersonCover {
    let birth = id_number.birth_date();
    let facts = CoverFacts {
        birth_date: Some(birth),
        adult: policy.category_for(birth, false) == Category::Adult,
        history,
        claims: Vec::new(),
        left_employee: None,
    };
    let start = cover_start(policy, &facts, on);
    let offer = back_payment_offer(policy, &facts);
    let reward = critical_illness_raise(
        &policy.cover_rules().rewards,
        &facts.history,
        &BTreeMap::new(),
        policy.fee_year(),
    );
    PersonCover {
        history: facts.history,
        start,
        offer,
        reward,
        on,
    }
}

/// A person's cover for one payable, read and decided: one statement for the history.
pub async fn read_person_cover(
    storage: &dyn Storage,
    policy: &FeePolicy,
    id_number: &IdNumber,
    on: NaiveDate,
) -> Result<PersonCover, ServiceError> {
    let history = storage.cover_history(policy.region(), id_number).await?;
    Ok(person_cover(policy, id_number, history, on))
}

impl PersonCover {
    /// The answer a search gives for the payable (an addition to protocol v1).
    pub fn answer(&self) -> crate::channel::answers::CoverAnswer {
        use crate::channel::answers::CoverAnswer;
        match &self.start {
            Ok(start) => CoverAnswer {
                if_paid_on: self.on,
                starts_on: Some(start.starts_on),
                covered_this_year: start.covered_this_year,
                code: start.reason.code().to_owned(),
                wait_months: start.wait.total,
                gap_years: start.gap_years.clone(),
                text: start.summary_zh(),
            },
            Err(refusal) => CoverAnswer {
                if_paid_on: self.on,
                starts_on: None,
                covered_this_year: false,
                code: refusal.code().to_owned(),
                wait_months: 0,
                gap_years: Vec::new(),
                text: refusal.to_string(),
            },
        }
    }
}
