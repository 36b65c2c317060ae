//! The 2025 rules at work (issue 19): the agency's cover history file, and what the rules say of a
//! person for a payable: their history, when cover would start if they paid today, what buying back
//! gap years would do, and the raise of their critical-illness cap.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use yibao_domain::cover_history_file::{
    parse_history_row, parse_situation_row, HistoryHeader, HistoryRow, SituationHeader,
    SituationRow,
};
use yibao_domain::{
    back_payment_offer, cover_start, critical_illness_raise, BackPaymentOffer, Category,
    CoverFacts, CoverHistory, CoverRefusal, CoverStart, FeePolicy, FeeYear, IdNumber, RegionCode,
    RewardBreakdown,
};
use yibao_roster_file::{HeaderFit, Limits, RosterReader};
use yibao_storage::collection::PayableView;
use yibao_storage::cover_history::StoredCover;
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
    if HistoryHeader::find(cells).is_ok() || SituationHeader::find(cells).is_some() {
        HeaderFit::Fits
    } else {
        HeaderFit::No
    }
}

/// Imports a cover history file or a special situation file (CSV or XLSX, `docs/rules-2025.md`;
/// told apart by their headers) into `region`: every row read and checked first, the accepted
/// ones then written in one transaction, so a file that cannot be read writes nothing. A
/// person-year (or a person's situation) twice in the file is refused the second time. Audited
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
    let header_cells = reader.header().to_vec();
    let situations = SituationHeader::find(&header_cells);
    let history = match situations {
        Some(_) => None,
        None => Some(
            HistoryHeader::find(&header_cells)
                .map_err(|e| ServiceError::new(ErrorCode::BadRosterHeader, e.to_string()))?,
        ),
    };
    let mut years: Vec<HistoryRow> = Vec::new();
    let mut moves: Vec<SituationRow> = Vec::new();
    let mut seen: HashSet<(IdNumber, String)> = HashSet::new();
    let mut rejections = Rejections::default();
    let mut rows_read = 0u64;
    let mut rejected = 0u64;
    for row in &mut reader {
        let row = row.map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))?;
        rows_read += 1;
        let parsed = match (&history, &situations) {
            (Some(header), _) => parse_history_row(header, &row.cells, today)
                .map(|r| ((r.id_number, r.year.to_string()), Ok(r)))
                .map_err(|e| (e.column.name_zh(), e.code, e.reason)),
            (None, Some(header)) => parse_situation_row(header, &row.cells, today)
                .map(|r| ((r.id_number, r.situation.code().to_owned()), Err(r)))
                .map_err(|e| (e.column, e.code, e.reason)),
            (None, None) => continue,
        };
        match parsed {
            Ok((key, parsed)) if seen.insert(key.clone()) => match parsed {
                Ok(year) => years.push(year),
                Err(situation) => moves.push(situation),
            },
            Ok(_) => {
                rejected += 1;
                rejections.add(
                    row.row_number,
                    "",
                    "DUPLICATE_ROW",
                    "同一人的同一年度（或同一情形）在文件中出现了不止一次，以先出现的一行为准"
                        .to_owned(),
                    Some(&row.cells),
                );
            }
            Err((column, code, reason)) => {
                rejected += 1;
                rejections.add(row.row_number, column, code, reason, Some(&row.cells));
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    let written = if history.is_some() {
        storage.put_cover_history(region, &years, now).await?
    } else {
        storage.put_cover_situations(region, &moves, now).await?
    };
    super::record_audit(
        storage,
        actor,
        "cover_history.import",
        Some(region),
        &region.to_string(),
        serde_json::json!({
            "file": if history.is_some() { "history" } else { "situations" },
            "rows_read": rows_read, "written": written, "rejected": rejected,
        }),
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
    /// Exempt-group memberships and a move from employee insurance, as imported.
    pub claims: Vec<yibao_domain::ExemptClaim>,
    pub left_employee: Option<yibao_domain::LeftEmployee>,
    /// When cover starts if the person pays on `on`, or why the year cannot be bought that day.
    pub start: Result<CoverStart, CoverRefusal>,
    pub offer: BackPaymentOffer,
    pub reward: RewardBreakdown,
    pub on: NaiveDate,
}

/// The rules applied to what yibao knows of the person: their history (imported years and paid
/// payables), their imported situations (exempt groups, a move from employee insurance), their
/// birth date and whether they are an adult. Claims are not imported yet: the zero-claim reward
/// counts none.
pub fn person_cover(
    policy: &FeePolicy,
    id_number: &IdNumber,
    stored: StoredCover,
    on: NaiveDate,
) -> PersonCover {
    let birth = id_number.birth_date();
    let facts = CoverFacts {
        birth_date: Some(birth),
        adult: policy.category_for(birth, false) == Category::Adult,
        history: stored.history,
        claims: stored.claims,
        left_employee: stored.left_employee,
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
        claims: facts.claims,
        left_employee: facts.left_employee,
        start,
        offer,
        reward,
        on,
    }
}

/// The rules' answer on `on` for each of `views` that `wanted` picks and whose year has a policy
/// in `policies`, by payable id: one read of what is stored per person and region among them.
/// Used by searches, the citizen site and payment reports alike.
pub async fn covers_for(
    storage: &dyn Storage,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    on: NaiveDate,
    wanted: impl Fn(&PayableView) -> bool,
) -> Result<HashMap<String, PersonCover>, ServiceError> {
    let mut stored: HashMap<(RegionCode, IdNumber), StoredCover> = HashMap::new();
    let mut covers = HashMap::new();
    for v in views.iter().filter(|v| wanted(v)) {
        let p = &v.payable;
        let Some(policy) = policies.get(&(p.region, p.fee_year)) else {
            continue;
        };
        let person = match stored.entry((p.region, p.id_number)) {
            Entry::Occupied(known) => known.get().clone(),
            Entry::Vacant(unknown) => unknown
                .insert(storage.stored_cover(p.region, &p.id_number).await?)
                .clone(),
        };
        covers.insert(
            p.payable_id.clone(),
            person_cover(policy, &p.id_number, person, on),
        );
    }
    Ok(covers)
}

/// A person's cover for one payable, read and decided: one statement for what is stored.
pub async fn read_person_cover(
    storage: &dyn Storage,
    policy: &FeePolicy,
    id_number: &IdNumber,
    on: NaiveDate,
) -> Result<PersonCover, ServiceError> {
    let stored = storage.stored_cover(policy.region(), id_number).await?;
    Ok(person_cover(policy, id_number, stored, on))
}

impl PersonCover {
    /// The imported situations in Chinese, one line each.
    pub fn situations_zh(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .claims
            .iter()
            .map(|c| {
                format!(
                    "{}（{} {}）",
                    c.group.name_zh(),
                    c.group.event_zh(),
                    c.event_date
                )
            })
            .collect();
        if let Some(left) = &self.left_employee {
            lines.push(format!(
                "由职工医保转入（职工医保至 {} 止，此前连续参保 {} 个月）",
                left.ended_on, left.continuous_months
            ));
        }
        lines
    }

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
