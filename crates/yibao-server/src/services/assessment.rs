//! Assessment (核定): payables from enrolments and the fee policy, in bulk and per person.

use chrono::NaiveDate;
use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::Serialize;
use yibao_domain::{assess, FeePolicy, FeeYear, IdNumber, Person, RegionCode};
use yibao_storage::{GrowingTables, NewPayable, PayableRecord, ReassessRefusal, Storage};

use crate::error::{ErrorCode, ServiceError};
use crate::services::statistics::{refresh_statistics, GrowthRefresh};

/// Persons read and payables written per storage call.
pub const ASSESSMENT_BATCH: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AssessReport {
    pub region: String,
    pub fee_year: u16,
    /// Carried over from last year's enrolment (续保) before assessing.
    pub renewed: u64,
    /// Payables created by this run (0 when run again).
    pub created: u64,
    /// Of those, owing nothing (exempt, or fully subsidised).
    pub exempt: u64,
    /// Sum of the amounts created, in fen.
    pub amount_fen: i64,
    /// Unpaid contributions priced again at the late amount (逾期缴费金额) after the window
    /// (`cover_rules.late`; 0 where the region sets none).
    pub repriced: u64,
}

/// A payable's identifier: `p`, its region, `R` and a random UUID (`new_regional_id`).
pub fn new_payable_id(region: &str) -> String {
    super::new_regional_id("p", region)
}

/// The inputs an assessment used, kept with the payable so that later registry edits never
/// silently change it: the person's deciding facts and the policy amount.
fn inputs_json(person: &Person, policy: &FeePolicy, assessed_on: NaiveDate) -> String {
    serde_json::json!({
        "assessed_on": assessed_on,
        "birth_date": person.id_number.birth_date(),
        "student": person.school.is_some(),
        "household": person.household,
        "relief": person.relief,
        "late_amount": policy.is_late_priced(
            policy.category_for(person.id_number.birth_date(), person.school.is_some()),
            assessed_on,
        ),
        "policy": {
            "fee_year": policy.fee_year().get(),
            "age_reference_date": policy.age_reference_date(),
            "adult_age": policy.adult_age(),
        },
    })
    .to_string()
}

pub fn draft_payable(
    person: &Person,
    policy: &FeePolicy,
    assessed_on: NaiveDate,
    payable_from: NaiveDate,
    actor: &str,
) -> NewPayable {
    NewPayable {
        payable_id: new_payable_id(person.region.as_str()),
        region: person.region,
        fee_year: policy.fee_year(),
        id_number: person.id_number,
        assessment: assess(person, policy, assessed_on),
        payable_from,
        inputs: inputs_json(person, policy, assessed_on),
        assessed_by: actor.to_owned(),
        buys_back_year: None,
    }
}

async fn policy_of(
    storage: &dyn Storage,
    region: RegionCode,
    fee_year: FeeYear,
) -> Result<FeePolicy, ServiceError> {
    storage
        .get_fee_policy(region, fee_year)
        .await?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NoFeePolicy,
                format!("统筹区 {region} 尚未设置 {fee_year} 年度的缴费政策，请先设置缴费政策"),
            )
        })
}

/// Assesses a whole region and fee year: renews last year's insured, then creates the payable of
/// every enrolled person who has none. Idempotent: a second run creates nothing.
/// `progress` is called with the number of payables created so far (the total is not known).
pub async fn assess_region(
    storage: &dyn Storage,
    region: RegionCode,
    fee_year: FeeYear,
    actor: &str,
    today: NaiveDate,
    progress: &(dyn Fn(super::Progress) + Send + Sync),
) -> Result<AssessReport, ServiceError> {
    let policy = policy_of(storage, region, fee_year).await?;
    let mut report = AssessReport {
        region: region.to_string(),
        fee_year: fee_year.get(),
        ..AssessReport::default()
    };
    if let Ok(previous) = FeeYear::new(i64::from(fee_year.get()) - 1) {
        if storage.get_fee_policy(region, previous).await?.is_some() {
            let year_start =
                NaiveDate::from_ymd_opt(i32::from(fee_year.get()), 1, 1).unwrap_or(today);
            report.renewed = storage
                .renew_enrolments(region, previous, fee_year, year_start)
                .await?;
        }
    }
    let mut after: Option<String> = None;
    // Each batch is written while the next is read, polled while the read waits, and counted in
    // order: two writes under way where the backend's writers run concurrently (PostgreSQL:
    // 1 000 000 payables in 14.6-15.1 s against 16.4-18.6 s with one, once the payables'
    // foreign key stopped locking the enrolments the read reads; three gained nothing), else one.
    let writes_at_once = if storage.backend().writers_run_concurrently() {
        2
    } else {
        1
    };
    let mut writing = FuturesOrdered::new();
    // The payables' statistics are refreshed as they grow, so that the next batches' reads
    // are planned for a table with payables in it.
    let mut growth = GrowthRefresh::new(storage, GrowingTables::Payables);
    loop {
        if growth.due(report.created) {
            // The writes under way finish first (see `GrowthRefresh::due`).
            while let Some(written) = writing.next().await {
                let (created, drafts): (u64, Vec<NewPayable>) = written?;
                count_created(&mut report, created, &drafts, progress);
            }
            growth.refresh(storage, report.created).await;
        }
        let candidates = {
            let read =
                storage.assessment_candidates(region, fee_year, after.as_deref(), ASSESSMENT_BATCH);
            tokio::pin!(read);
            loop {
                tokio::select! {
                    biased;
                    Some(written) = writing.next() => {
                        let (created, drafts): (u64, Vec<NewPayable>) = written?;
                        count_created(&mut report, created, &drafts, progress);
                    }
                    candidates = &mut read => break candidates?,
                }
            }
        };
        let Some(read_up_to) = candidates.read_up_to else {
            break;
        };
        after = Some(read_up_to);
        if candidates.persons.is_empty() {
            continue;
        }
        let drafts: Vec<NewPayable> = candidates
            .persons
            .iter()
            .map(|p| draft_payable(p, &policy, today, today, actor))
            .collect();
        writing.push_back(async move {
            let created = storage.insert_payables(&drafts).await?;
            Ok::<_, ServiceError>((created, drafts))
        });
        while writing.len() > writes_at_once {
            if let Some(written) = writing.next().await {
                let (created, drafts) = written?;
                count_created(&mut report, created, &drafts, progress);
            }
        }
    }
    while let Some(written) = writing.next().await {
        let (created, drafts) = written?;
        count_created(&mut report, created, &drafts, progress);
    }
    report.repriced = reprice_late(storage, &policy, actor, today).await?;
    if report.created > 0 || report.renewed > 0 || report.repriced > 0 {
        refresh_statistics(storage).await;
    }
    Ok(report)
}

fn count_created(
    report: &mut AssessReport,
    created: u64,
    drafts: &[NewPayable],
    progress: &(dyn Fn(super::Progress) + Send + Sync),
) {
    report.created += created;
    if created == u64::try_from(drafts.len()).unwrap_or(0) {
        for d in drafts {
            if d.assessment.amount == yibao_domain::Fen::ZERO {
                report.exempt += 1;
            }
            report.amount_fen += d.assessment.amount.as_fen();
        }
    }
    progress(super::Progress {
        done: report.created,
        total: None,
    });
}

/// From the day after the window (or the extension), prices the year's unpaid contributions again
/// at the late amount where the region sets one (`cover_rules.late`): each is superseded by a new
/// payable, payable from `today`, the person's relief applied again. A contribution held by an
/// order or a debit run, or paid meanwhile, keeps its payable; a later pass takes the held ones
/// when they are released. Idempotent: a repriced payable's policy amount is the late one, so it
/// is never taken again, whenever it was assessed. Returns how many were repriced.
pub async fn reprice_late(
    storage: &dyn Storage,
    policy: &FeePolicy,
    actor: &str,
    today: NaiveDate,
) -> Result<u64, ServiceError> {
    let late_amounts = policy.late_priced_categories();
    if late_amounts.is_empty() || today < policy.late_from() {
        return Ok(0);
    }
    let mut repriced = 0;
    let mut after: Option<String> = None;
    loop {
        let candidates = storage
            .late_repricing_candidates(
                policy.region(),
                policy.fee_year(),
                &late_amounts,
                after.as_deref(),
                ASSESSMENT_BATCH,
            )
            .await?;
        let Some((last, _)) = candidates.last() else {
            break;
        };
        after = Some(last.clone());
        let replacements: Vec<(String, NewPayable)> = candidates
            .iter()
            .map(|(old, person)| {
                (
                    old.clone(),
                    draft_payable(person, policy, today, today, actor),
                )
            })
            .collect();
        repriced += storage.supersede_in_bulk(&replacements).await?;
    }
    if repriced > 0 {
        tracing::info!(
            region = %policy.region(),
            fee_year = policy.fee_year().get(),
            repriced,
            "unpaid contributions priced at the late amount"
        );
    }
    Ok(repriced)
}

/// Re-assesses one person after a change: a new payable, payable from the next day, superseding
/// the current one. A paid payable must be refunded first.
pub async fn reassess_person(
    storage: &dyn Storage,
    region: RegionCode,
    fee_year: FeeYear,
    id_number: &IdNumber,
    actor: &str,
    today: NaiveDate,
) -> Result<PayableRecord, ServiceError> {
    let policy = policy_of(storage, region, fee_year).await?;
    let (person, _) = storage
        .get_person(region, id_number)
        .await?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NotFound,
                "该统筹区没有此人的登记信息，请核对身份证号码",
            )
        })?;
    let enrolled = storage
        .get_enrolment(region, fee_year, id_number)
        .await?
        .is_some_and(|e| e.status == yibao_domain::EnrolmentStatus::Enrolled);
    if !enrolled {
        return Err(ServiceError::new(
            ErrorCode::NotEnrolled,
            format!("此人未在本统筹区登记 {fee_year} 年度参保，不能核定"),
        ));
    }
    let next_day = today.succ_opt().unwrap_or(today);
    let replacement = draft_payable(&person, &policy, today, next_day, actor);
    match storage.reassess(&replacement).await? {
        Ok(record) => Ok(record),
        Err(ReassessRefusal::NotAssessed) => Err(ServiceError::new(
            ErrorCode::NotAssessed,
            "此人本年度尚未核定，请先进行核定",
        )),
        Err(ReassessRefusal::PaidMustBeRefunded) => Err(ServiceError::new(
            ErrorCode::PaidMustBeRefunded,
            "此人本年度已缴费，须先办理退费后才能重新核定",
        )),
        Err(ReassessRefusal::Locked) => Err(ServiceError::new(
            ErrorCode::Locked,
            "此人的应缴费信息正被缴费订单或银行扣费锁定，请稍后再重新核定",
        )),
    }
}
