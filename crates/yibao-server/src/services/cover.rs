//! The 2025 rules at work (issue 19): the agency's cover history file, and what the rules say of a
//! person for a payable: their history, when cover would start if they paid today, what buying back
//! gap years would do, and the raise of their critical-illness cap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use yibao_domain::cover_history_file::{
    parse_claim_row, parse_history_row, parse_situation_row, ClaimHeader, ClaimRow, HistoryHeader,
    HistoryRow, SituationHeader, SituationRow,
};
use yibao_domain::family_account::{parse_binding_row, BindingHeader, FamilyBinding};
use yibao_domain::{
    back_payment_assessment, back_payment_offer, cover_start, critical_illness_raise,
    BackPaymentOffer, BackPaymentRefusal, Category, CoverFacts, CoverHistory, CoverRefusal,
    CoverStart, FeePolicy, FeeYear, IdNumber, RegionCode, RewardBreakdown,
};
use yibao_roster_file::{HeaderFit, Limits, RosterReader};
use yibao_storage::collection::PayableView;
use yibao_storage::cover_history::StoredCover;
use yibao_storage::{NewPayable, Storage};

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

/// One accepted row of whichever file is imported.
enum ImportedRow {
    Year(HistoryRow),
    Situation(SituationRow),
    Binding(FamilyBinding),
    Claim(ClaimRow),
}

fn header_fit(cells: &[String]) -> HeaderFit {
    if HistoryHeader::find(cells).is_ok()
        || SituationHeader::find(cells).is_some()
        || BindingHeader::find(cells).is_some()
        || ClaimHeader::find(cells).is_some()
    {
        HeaderFit::Fits
    } else {
        HeaderFit::No
    }
}

/// Imports a cover history file, a special situation file or a family-account binding file (CSV
/// or XLSX, `docs/rules-2025.md`; told apart by their headers) into `region`: every row read and checked first, the accepted
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
    let bindings_header = BindingHeader::find(&header_cells);
    let claims_header = ClaimHeader::find(&header_cells).filter(|_| bindings_header.is_none());
    let situations = SituationHeader::find(&header_cells)
        .filter(|_| bindings_header.is_none() && claims_header.is_none());
    let history = match (situations, bindings_header, claims_header) {
        (None, None, None) => Some(
            HistoryHeader::find(&header_cells)
                .map_err(|e| ServiceError::new(ErrorCode::BadRosterHeader, e.to_string()))?,
        ),
        _ => None,
    };
    let mut years: Vec<HistoryRow> = Vec::new();
    let mut moves: Vec<SituationRow> = Vec::new();
    let mut bindings: Vec<FamilyBinding> = Vec::new();
    let mut claims: Vec<ClaimRow> = Vec::new();
    let mut seen: HashSet<(IdNumber, String)> = HashSet::new();
    let mut rejections = Rejections::default();
    let mut rows_read = 0u64;
    let mut rejected = 0u64;
    for row in &mut reader {
        let row = row.map_err(|e| ServiceError::new(ErrorCode::BadRosterFile, e.to_string()))?;
        rows_read += 1;
        let parsed = match (&history, &situations, &bindings_header) {
            (Some(header), _, _) => parse_history_row(header, &row.cells, today)
                .map(|r| ((r.id_number, r.year.to_string()), ImportedRow::Year(r)))
                .map_err(|e| (e.column.name_zh(), e.code, e.reason)),
            (None, Some(header), _) => parse_situation_row(header, &row.cells, today)
                .map(|r| {
                    let key = (r.id_number, r.situation.code().to_owned());
                    (key, ImportedRow::Situation(r))
                })
                .map_err(|e| (e.column, e.code, e.reason)),
            (None, None, Some(header)) => parse_binding_row(header, &row.cells, today)
                .map(|r| {
                    let key = (r.relative, r.employee.as_str().to_owned());
                    (key, ImportedRow::Binding(r))
                })
                .map_err(|e| (e.column, e.code, e.reason)),
            (None, None, None) => match &claims_header {
                Some(header) => parse_claim_row(header, &row.cells, today)
                    .map(|r| {
                        (
                            (r.id_number, format!("claim{}", r.year)),
                            ImportedRow::Claim(r),
                        )
                    })
                    .map_err(|e| (e.column, e.code, e.reason)),
                None => continue,
            },
        };
        match parsed {
            Ok((key, parsed)) if seen.insert(key.clone()) => match parsed {
                ImportedRow::Year(year) => years.push(year),
                ImportedRow::Situation(situation) => moves.push(situation),
                ImportedRow::Binding(binding) => bindings.push(binding),
                ImportedRow::Claim(claim) => claims.push(claim),
            },
            Ok(_) => {
                rejected += 1;
                rejections.add(
                    row.row_number,
                    "",
                    "DUPLICATE_ROW",
                    "同一人的同一年度（或同一情形、同一绑定）在文件中出现了不止一次，以先出现的一行为准"
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
    let (file, written) = if history.is_some() {
        (
            "history",
            storage.put_cover_history(region, &years, now).await?,
        )
    } else if situations.is_some() {
        (
            "situations",
            storage.put_cover_situations(region, &moves, now).await?,
        )
    } else if claims_header.is_some() {
        (
            "claims",
            storage.put_cover_claims(region, &claims, now).await?,
        )
    } else {
        (
            "family_bindings",
            storage.put_family_bindings(region, &bindings, now).await?,
        )
    };
    super::record_audit(
        storage,
        actor,
        "cover_history.import",
        Some(region),
        &region.to_string(),
        serde_json::json!({
            "file": file,
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
/// birth date and whether they are an adult, and the imported claims years (the zero-claim
/// reward).
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
        &stored.claim_years,
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

/// Whether the back-payments among the payables asked about are being paid with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackPaymentsWith {
    /// A search: an open back-payment is not bought yet.
    Offered,
    /// A payment: the back-payments it pays count as bought for the contribution it pays with
    /// them.
    PaidTogether,
}

/// The rules' answer on `on` for each contribution among `views` that `wanted` picks and whose
/// year has a policy in `policies`, by payable id: one read of what is stored per region among
/// them (and per [`yibao_storage::cover_history::MAX_STORED_COVERS`] persons). A back-payment gets no answer (it buys no cover); paid together with its
/// contribution it counts as bought. Used by searches, the citizen site and payment reports alike.
pub async fn covers_for(
    storage: &dyn Storage,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    on: NaiveDate,
    back_payments: BackPaymentsWith,
    wanted: impl Fn(&PayableView) -> bool,
) -> Result<HashMap<String, PersonCover>, ServiceError> {
    let answered = |v: &&PayableView| {
        wanted(v)
            && v.payable.buys_back_year.is_none()
            && policies.contains_key(&(v.payable.region, v.payable.fee_year))
    };
    // What is stored of every person among them: one statement per region and
    // MAX_STORED_COVERS persons.
    let mut persons: BTreeMap<RegionCode, Vec<IdNumber>> = BTreeMap::new();
    let mut listed = std::collections::HashSet::new();
    for v in views.iter().filter(answered) {
        if listed.insert((v.payable.region, v.payable.id_number)) {
            persons
                .entry(v.payable.region)
                .or_default()
                .push(v.payable.id_number);
        }
    }
    let mut stored: HashMap<(RegionCode, IdNumber), StoredCover> = HashMap::new();
    for (region, ids) in &persons {
        for chunk in ids.chunks(yibao_storage::cover_history::MAX_STORED_COVERS) {
            for (id, cover) in storage.stored_covers(*region, chunk).await? {
                stored.insert((*region, id), cover);
            }
        }
    }
    Ok(covers_from(
        &stored,
        views,
        policies,
        on,
        back_payments,
        wanted,
    ))
}

/// [`covers_for`] with what is stored of the persons already read (a channel's search reads it
/// on the connection of its payables, `PayableSearch::search_person`); a person missing from
/// `stored` has nothing stored.
pub fn covers_from(
    stored: &HashMap<(RegionCode, IdNumber), StoredCover>,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    on: NaiveDate,
    back_payments: BackPaymentsWith,
    wanted: impl Fn(&PayableView) -> bool,
) -> HashMap<String, PersonCover> {
    let answered = |v: &&PayableView| {
        wanted(v)
            && v.payable.buys_back_year.is_none()
            && policies.contains_key(&(v.payable.region, v.payable.fee_year))
    };
    // The back-payments paid together with each person's contribution of a year, gathered
    // once: a bank's result applies 500 payables at a time, and looking them up for each
    // contribution among all the others cost 0.23 s a chunk.
    let mut bought_with: HashMap<(RegionCode, IdNumber, FeeYear), Vec<u16>> = HashMap::new();
    if back_payments == BackPaymentsWith::PaidTogether {
        for b in views.iter().filter(|b| wanted(b)) {
            let q = &b.payable;
            if let Some(year) = q.buys_back() {
                bought_with
                    .entry((q.region, q.id_number, q.fee_year))
                    .or_default()
                    .push(year);
            }
        }
    }
    let mut covers = HashMap::new();
    for v in views.iter().filter(answered) {
        let p = &v.payable;
        let Some(policy) = policies.get(&(p.region, p.fee_year)) else {
            continue;
        };
        let mut person = stored
            .get(&(p.region, p.id_number))
            .cloned()
            .unwrap_or_default();
        for &year in bought_with
            .get(&(p.region, p.id_number, p.fee_year))
            .into_iter()
            .flatten()
        {
            person.history.record(year, yibao_domain::YearCover::None);
            person.history.record_bought_back(year);
        }
        covers.insert(
            p.payable_id.clone(),
            person_cover(policy, &p.id_number, person, on),
        );
    }
    covers
}

/// The fee policies of the years of `views`, read from storage (the channel API reads them
/// through its cache instead, `collection::policies_for`).
pub async fn policies_of(
    storage: &dyn Storage,
    views: &[PayableView],
) -> Result<HashMap<(RegionCode, FeeYear), FeePolicy>, ServiceError> {
    let mut out = HashMap::new();
    add_policies(storage, views, &mut out).await?;
    Ok(out)
}

/// Adds to `policies` those of the years of `views` it does not hold yet (a year without a
/// policy is read again next time: there are few, and it may have been set meanwhile).
pub async fn add_policies(
    storage: &dyn Storage,
    views: &[PayableView],
    policies: &mut HashMap<(RegionCode, FeeYear), FeePolicy>,
) -> Result<(), ServiceError> {
    for v in views {
        let key = (v.payable.region, v.payable.fee_year);
        if policies.contains_key(&key) {
            continue;
        }
        if let Some(policy) = storage.get_fee_policy(key.0, key.1).await? {
            policies.insert(key, policy);
        }
    }
    Ok(())
}

/// When cover starts for each of `ids` if a payment on `paid_on` pays it, and the year's reward,
/// in `ids` order, as the receipt and the posting to the agency carry them: for channels' reports,
/// debit runs and statement bookings alike. `None` for a back-payment or a year without a policy.
pub async fn cover_notes(
    storage: &dyn Storage,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    ids: &[String],
    paid_on: NaiveDate,
) -> Result<Vec<Option<yibao_storage::collection::CoverNote>>, ServiceError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let covers = covers_for(
        storage,
        views,
        policies,
        paid_on,
        BackPaymentsWith::PaidTogether,
        |v| wanted.contains(v.payable.payable_id.as_str()),
    )
    .await?;
    Ok(notes_of(&covers, ids))
}

/// [`cover_notes`] with what is stored of the holders already read (a payment report reads it
/// with its payables, `PayableSearch::payables_with_cover`).
pub fn cover_notes_from(
    stored: &HashMap<(RegionCode, IdNumber), StoredCover>,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    ids: &[String],
    paid_on: NaiveDate,
) -> Vec<Option<yibao_storage::collection::CoverNote>> {
    if ids.is_empty() {
        return Vec::new();
    }
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let covers = covers_from(
        stored,
        views,
        policies,
        paid_on,
        BackPaymentsWith::PaidTogether,
        |v| wanted.contains(v.payable.payable_id.as_str()),
    );
    notes_of(&covers, ids)
}

/// The note of each payable paid, in the order of `ids`.
fn notes_of(
    covers: &HashMap<String, PersonCover>,
    ids: &[String],
) -> Vec<Option<yibao_storage::collection::CoverNote>> {
    ids.iter()
        .map(|id| {
            let cover = covers.get(id)?;
            let answer = cover.answer();
            Some(yibao_storage::collection::CoverNote {
                starts_on: answer.starts_on,
                code: answer.code,
                text: answer.text,
                reward: Some(yibao_storage::collection::RewardNote {
                    raise_fen: cover.reward.total.as_fen(),
                    text: cover.reward.summary_zh(),
                }),
            })
        })
        .collect()
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

/// What a request to buy back gap years (补缴修复) left open for a person and benefit year.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackPayments {
    pub region: String,
    pub fee_year: u16,
    /// The years this request created a back-payment for (none when each was already open).
    pub created: Vec<u16>,
    /// Every back-payment of the person and year not yet paid, created now or before: what the
    /// channels find in a search and may take money for.
    pub open: Vec<BackPaymentPayable>,
    /// The benefit year's wait in months with nothing more bought back, and after every open
    /// back-payment is paid.
    pub wait_now: u8,
    pub wait_after: u8,
}

/// One back-payment as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackPaymentPayable {
    pub payable_id: String,
    pub buys_back_year: u16,
    pub amount_fen: i64,
    pub status: String,
}

/// Creates the back-payments (补缴修复) of a person for a benefit year: the years named (every
/// year still worth buying when none is named), each a payable of its own at the year's individual
/// standard without subsidy, payable through every channel. Refused while the year's contribution
/// is not assessed, once it is paid (cover is then settled), and for a year that would shorten
/// nothing. A year already open is left as it is, so asking twice creates nothing twice (the
/// payables' unique index decides).
pub async fn create_back_payments(
    storage: &dyn Storage,
    policy: &FeePolicy,
    id_number: &IdNumber,
    years: &[u16],
    actor: &str,
    today: NaiveDate,
) -> Result<BackPayments, ServiceError> {
    if years.len() > MAX_BACK_PAYMENT_YEARS {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!("一次最多补缴 {MAX_BACK_PAYMENT_YEARS} 个年度"),
        ));
    }
    let region = policy.region();
    let fee_year = policy.fee_year();
    let views = storage
        .payables_by_person(
            id_number.as_str(),
            &[region.to_string()],
            Some(i32::from(fee_year.get())),
        )
        .await?;
    let contribution = views
        .iter()
        .map(|v| &v.payable)
        .find(|p| p.buys_back_year.is_none())
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NotAssessed,
                format!("此人 {fee_year} 年度尚未核定，请先核定后再办理补缴"),
            )
        })?;
    if !contribution.status.is_payable() {
        return Err(back_payment_refused(BackPaymentRefusal::ContributionPaid {
            fee_year: fee_year.get(),
        }));
    }
    let category = Category::from_code(&contribution.category)
        .ok_or_else(|| ServiceError::internal("back-payment", "unknown payable category"))?;
    let cover = read_person_cover(storage, policy, id_number, today).await?;
    let to_sell = cover
        .offer
        .years_to_sell(years)
        .map_err(back_payment_refused)?;
    let assessment = back_payment_assessment(policy, category);
    if assessment.amount == yibao_domain::Fen::ZERO {
        return Err(back_payment_refused(BackPaymentRefusal::NothingToBuy));
    }
    let drafts: Vec<NewPayable> = to_sell
        .iter()
        .map(|year| NewPayable {
            payable_id: super::assessment::new_payable_id(region.as_str()),
            region,
            fee_year,
            id_number: *id_number,
            assessment: assessment.clone(),
            payable_from: today,
            inputs: serde_json::json!({
                "assessed_on": today,
                "back_payment": {
                    "buys_back_year": year,
                    "category": category.code(),
                    "wait_before": cover.offer.wait_now.total,
                },
            })
            .to_string(),
            assessed_by: actor.to_owned(),
            buys_back_year: Some(*year),
        })
        .collect();
    // Inserted only while the contribution is still unpaid, in the same transaction: a payment
    // of it racing this request either came first (refused here) or cancels these with it.
    if !storage
        .insert_back_payments(&contribution.payable_id, &drafts)
        .await?
    {
        return Err(back_payment_refused(BackPaymentRefusal::ContributionPaid {
            fee_year: fee_year.get(),
        }));
    }
    super::record_audit(
        storage,
        actor,
        "cover.buy_back",
        Some(region),
        &id_number.masked(),
        serde_json::json!({ "fee_year": fee_year.get(), "years": to_sell }),
    )
    .await?;
    let after = storage
        .payables_by_person(
            id_number.as_str(),
            &[region.to_string()],
            Some(i32::from(fee_year.get())),
        )
        .await?;
    let open: Vec<BackPaymentPayable> = after
        .iter()
        .map(|v| &v.payable)
        .filter(|p| p.status.is_payable())
        .filter_map(|p| {
            Some(BackPaymentPayable {
                payable_id: p.payable_id.clone(),
                buys_back_year: p.buys_back()?,
                amount_fen: p.amount_fen.as_fen(),
                status: p.status.code().to_owned(),
            })
        })
        .collect();
    let created: Vec<u16> = drafts
        .iter()
        .filter(|d| after.iter().any(|v| v.payable.payable_id == d.payable_id))
        .filter_map(|d| d.buys_back_year)
        .collect();
    let rules = policy.cover_rules();
    let counted = yibao_domain::cover::gaps(&rules.gaps, &cover.history, fee_year);
    let wait_after = yibao_domain::cover::wait_months(
        &rules.waiting,
        &counted,
        counted.bought_back.len() + open.len(),
    );
    Ok(BackPayments {
        region: region.to_string(),
        fee_year: fee_year.get(),
        created,
        open,
        wait_now: cover.offer.wait_now.total,
        wait_after: wait_after.total,
    })
}

/// Years one request may name: more gap years than this shorten nothing under any rule in use.
pub const MAX_BACK_PAYMENT_YEARS: usize = 20;

fn back_payment_refused(refusal: BackPaymentRefusal) -> ServiceError {
    ServiceError::new(
        ErrorCode::BackPaymentRefused,
        format!("{}（{}）", refusal, refusal.code()),
    )
}

/// A family-account binding as staff enter it on a person's record (the relative): the binding
/// file's six columns, checked as a row of that file.
#[derive(Clone, Default, serde::Deserialize, ToSchema)]
#[serde(default)]
pub struct BindingInput {
    pub employee_id_number: String,
    pub employee_region: String,
    /// The Civil Code's name (配偶, 父母 …) or one person's (母亲, 儿子 …).
    pub relationship: String,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// `YYYY-MM-DD`; empty: open-ended.
    pub valid_until: String,
}

/// The employee's ID number stays out of logs.
impl std::fmt::Debug for BindingInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingInput")
            .field("employee_id_number", &"<redacted>")
            .field("employee_region", &self.employee_region)
            .field("relationship", &self.relationship)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

/// A binding refused: the column's name (as the binding file names it), a stable code and a
/// Chinese reason.
pub type BindingProblem = yibao_domain::family_account::BindingRowError;

/// Enters (or replaces: same relative and employee) a family-account binding of `relative` in
/// `region`, checked as a row of the binding file; audited `family_binding.enter` with the
/// employee's ID number masked. `Err(Ok(problem))` names the field that is wrong.
pub async fn enter_family_binding(
    storage: &dyn Storage,
    actor: &str,
    region: RegionCode,
    relative: &IdNumber,
    input: &BindingInput,
    today: NaiveDate,
) -> Result<FamilyBinding, Result<BindingProblem, ServiceError>> {
    let cells: Vec<String> = [
        input.employee_id_number.as_str(),
        input.employee_region.as_str(),
        relative.as_str(),
        input.relationship.as_str(),
        input.valid_from.as_str(),
        input.valid_until.as_str(),
    ]
    .map(str::to_owned)
    .to_vec();
    let binding = parse_binding_row(&BindingHeader::STANDARD, &cells, today).map_err(Ok)?;
    let now = chrono::Utc::now().timestamp();
    storage
        .put_family_bindings(region, std::slice::from_ref(&binding), now)
        .await
        .map_err(|e| Err(e.into()))?;
    super::record_audit(
        storage,
        actor,
        "family_binding.enter",
        Some(region),
        &relative.masked(),
        serde_json::json!({
            "employee": binding.employee.masked(),
            "relationship": binding.relationship.code(),
            "valid_from": binding.valid_from,
            "valid_until": binding.valid_until,
        }),
    )
    .await
    .map_err(Err)?;
    Ok(binding)
}
