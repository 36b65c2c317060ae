//! A person's record as staff read and change it: the one place the scope checks, the audit of
//! personal data and the enrolment decision of a single change live, for the JSON API and the
//! console alike.

use yibao_domain::{
    check_eligibility, covered_from, enrolment_fee_year, FeeYear, IdNumber, Person, RegionCode,
    StationCode,
};
use yibao_storage::{
    ChangeSource, EnrolmentOutcome, EnrolmentRequest, PayableRecord, PersonUpsert,
};

use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::services::assessment::reassess_person;
use crate::services::audit;
use crate::AppState;

/// A person with the record's version and their payables in that region.
pub struct PersonRecord {
    pub person: Person,
    pub version: i64,
    /// The insured number (参保编号) the person holds in the region.
    pub insured_number: Option<yibao_domain::InsuredNumber>,
    pub payables: Vec<PayableRecord>,
}

/// Reads a person the caller may see; otherwise 403, and 404 without telling a station operator
/// whether the person exists elsewhere.
pub async fn load_person(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    id: &IdNumber,
) -> Result<(Person, i64), ServiceError> {
    let found = state.storage.get_person(region, id).await?;
    match found {
        Some((person, version)) => {
            staff.may_read(region, person.station.as_ref())?;
            Ok((person, version))
        }
        None => {
            // Do not tell a station operator whether someone exists elsewhere.
            staff.may_read(region, staff.0.station.as_ref())?;
            Err(ServiceError::new(
                ErrorCode::NotFound,
                "本统筹区没有此人的登记信息",
            ))
        }
    }
}

/// A person's record and payables, audited as `read.person`.
pub async fn read_person(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    id: &IdNumber,
) -> Result<PersonRecord, ServiceError> {
    let (person, version) = load_person(state, staff, region, id).await?;
    let insured_number = state.storage.insured_number(region, id).await?;
    let payables: Vec<PayableRecord> = state
        .storage
        .payables_of_person(id)
        .await?
        .into_iter()
        .filter(|p| p.region == region)
        .collect();
    audit(
        state,
        staff,
        "read.person",
        Some(region),
        &id.masked(),
        serde_json::json!({ "station": person.station.as_ref().map(StationCode::as_str), "rows": 1, "payables": payables.len() }),
    )
    .await?;
    Ok(PersonRecord {
        person,
        version,
        insured_number,
        payables,
    })
}

/// What [`save_person`] did.
pub struct SavedPerson {
    pub person: Person,
    pub version: i64,
    /// `created`, `updated` or `unchanged`.
    pub change: &'static str,
    /// `enrolled`, `already_enrolled`, `refused`, `kept_because_assessed` or `not_attempted`.
    pub enrolment: &'static str,
    pub enrolment_message: Option<String>,
}

/// Registers or changes a person (with history), and enrols them in the open fee year when
/// eligible. Both the new station and, for an existing person, the stored one must be the
/// caller's; the stored one is judged again inside the write. `source` names where the change
/// came from (`api`, `console`).
pub async fn save_person(
    state: &AppState,
    staff: &Staff,
    person: Person,
    source: &str,
) -> Result<SavedPerson, ServiceError> {
    let region = person.region;
    let today = state.clock.today();
    staff.may_change(region, person.station.as_ref())?;
    if let Some((existing, _)) = state.storage.get_person(region, &person.id_number).await? {
        staff.may_change(region, existing.station.as_ref())?;
    }
    let policies = state.storage.list_fee_policies(region).await?;
    if state.storage.get_region(region).await?.is_none() {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("统筹区 {region} 未在本系统登记"),
        ));
    }
    let enrolment = enrolment_fee_year(&policies, today).map(|policy| {
        match check_eligibility(&person, today) {
            Ok(()) => EnrolmentRequest::Enrol {
                fee_year: policy.fee_year(),
                covered_from: covered_from(&person.id_number, policy, today),
            },
            Err(refusal) => EnrolmentRequest::Refuse {
                fee_year: policy.fee_year(),
                refusal,
            },
        }
    });
    let change_source = ChangeSource {
        actor: staff.username().to_owned(),
        source: source.into(),
    };
    let may_change = |region: RegionCode, station: Option<&StationCode>| {
        staff.may_change(region, station).is_ok()
    };
    let outcome = state
        .storage
        .upsert_persons_checked(
            &[PersonUpsert {
                row_number: 1,
                person: person.clone(),
                enrolment,
                household: None,
            }],
            &change_source,
            &may_change,
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::internal("upsert", "no outcome"))?;
    let (enrolment, message) = match &outcome.enrolment {
        EnrolmentOutcome::Enrolled => ("enrolled", None),
        EnrolmentOutcome::AlreadyEnrolled => ("already_enrolled", None),
        EnrolmentOutcome::Refused(r) => ("refused", Some(r.to_string())),
        EnrolmentOutcome::KeptBecauseAssessed(r) => ("kept_because_assessed", Some(r.to_string())),
        EnrolmentOutcome::NotAttempted => (
            "not_attempted",
            Some(yibao_domain::EnrolmentRefusal::NoOpenFeeYear.to_string()),
        ),
    };
    let change = match outcome.person {
        yibao_storage::PersonChange::Created => "created",
        yibao_storage::PersonChange::Updated => "updated",
        yibao_storage::PersonChange::Unchanged => "unchanged",
        yibao_storage::PersonChange::OutOfScope => {
            return Err(ServiceError::of(ErrorCode::Forbidden))
        }
    };
    audit(
        state,
        staff,
        "person.put",
        Some(region),
        &person.id_number.masked(),
        serde_json::json!({ "change": change, "enrolment": enrolment, "source": source }),
    )
    .await?;
    let (stored, version) = state
        .storage
        .get_person(region, &person.id_number)
        .await?
        .ok_or_else(|| ServiceError::internal("person after upsert", "missing"))?;
    Ok(SavedPerson {
        person: stored,
        version,
        change,
        enrolment,
        enrolment_message: message,
    })
}

/// Re-assesses one person after a change: a new payable from tomorrow supersedes the current
/// one; a paid payable must be refunded first (409 `PAID_MUST_BE_REFUNDED`).
pub async fn reassess(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    fee_year: FeeYear,
    id: &IdNumber,
) -> Result<PayableRecord, ServiceError> {
    let (person, _) = load_person(state, staff, region, id).await?;
    staff.may_change(region, person.station.as_ref())?;
    let record = reassess_person(
        state.storage.as_ref(),
        region,
        fee_year,
        id,
        staff.username(),
        state.clock.today(),
    )
    .await?;
    audit(state, staff, "assessment.reassess", Some(region), &id.masked(),
        serde_json::json!({ "payable_id": record.payable_id, "supersedes": record.supersedes, "amount_fen": record.amount_fen })).await?;
    Ok(record)
}

/// Staff create a person's back-payments (补缴修复) for a benefit year, where they may change the
/// person: the years named, or every year still worth buying ([`super::cover::create_back_payments`],
/// audited there).
pub async fn buy_back(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    fee_year: FeeYear,
    id: &IdNumber,
    years: &[u16],
) -> Result<super::cover::BackPayments, ServiceError> {
    let (person, _) = load_person(state, staff, region, id).await?;
    staff.may_change(region, person.station.as_ref())?;
    let policy = state
        .storage
        .get_fee_policy(region, fee_year)
        .await?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NoFeePolicy,
                format!("统筹区 {region} 尚未设置 {fee_year} 年度的缴费政策"),
            )
        })?;
    super::cover::create_back_payments(
        state.storage.as_ref(),
        &policy,
        id,
        years,
        staff.username(),
        state.clock.today(),
    )
    .await
}

/// The family-account bindings of a person (the relative) as staff who may read them see them.
pub async fn family_bindings(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    id: &IdNumber,
) -> Result<Vec<yibao_domain::family_account::FamilyBinding>, ServiceError> {
    load_person(state, staff, region, id).await?;
    Ok(state.storage.family_bindings_of(region, id).await?)
}

/// Enters a family-account binding for a person staff may change (`services::cover`'s checks).
pub async fn enter_family_binding(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    id: &IdNumber,
    input: &super::cover::BindingInput,
) -> Result<
    yibao_domain::family_account::FamilyBinding,
    Result<super::cover::BindingProblem, ServiceError>,
> {
    let (person, _) = load_person(state, staff, region, id).await.map_err(Err)?;
    staff
        .may_change(region, person.station.as_ref())
        .map_err(Err)?;
    super::cover::enter_family_binding(
        state.storage.as_ref(),
        staff.username(),
        region,
        id,
        input,
        state.clock.today(),
    )
    .await
}

/// A person's households (户) in a region, the current membership first, then the ended ones
/// newest first; the person must be one the
/// caller may read (their record page's read is the audited one).
pub async fn household_memberships(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    id: &IdNumber,
) -> Result<Vec<yibao_storage::households::MembershipRecord>, ServiceError> {
    load_person(state, staff, region, id).await?;
    Ok(state
        .storage
        .household_memberships(region, yibao_storage::households::MembershipsOf::Person(id))
        .await?)
}

/// Puts a person staff may change in a household, or takes them out of it (`leave`), from the
/// console's two fields (户号, 与户主关系). A refused field comes back as its problem; audited as
/// `person.household`. `false` when nothing changed.
pub async fn place_in_household(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    id: &IdNumber,
    number: &str,
    relation: &str,
    leave: bool,
) -> Result<bool, Result<Vec<yibao_domain::household::HouseholdProblem>, ServiceError>> {
    let (person, _) = load_person(state, staff, region, id).await.map_err(Err)?;
    staff
        .may_change(region, person.station.as_ref())
        .map_err(Err)?;
    let placement = if leave {
        None
    } else {
        match yibao_domain::household::Placement::parse(number, relation).map_err(Ok)? {
            Some(p) => Some(p),
            None => {
                return Err(Ok(vec![yibao_domain::household::HouseholdProblem {
                    field: yibao_domain::household::HouseholdField::Number,
                    error: yibao_domain::household::HouseholdError::NumberMissing,
                }]))
            }
        }
    };
    let source = ChangeSource {
        actor: staff.username().to_owned(),
        source: "console".into(),
    };
    // A new head ends the current head's membership (they stay, relation unknown): a change of
    // that person too, which the caller must be allowed; checked in the write's transaction.
    let may_change = |region: RegionCode, station: Option<&StationCode>| {
        staff.may_change(region, station).is_ok()
    };
    let outcome = state
        .storage
        .place_in_household(region, id, placement.clone(), &source, &may_change)
        .await
        .map_err(|e| Err(e.into()))?;
    let changed = match outcome {
        yibao_storage::households::PlaceOutcome::HeadOutOfScope => {
            return Err(Ok(vec![yibao_domain::household::HouseholdProblem {
                field: yibao_domain::household::HouseholdField::Relation,
                error: yibao_domain::household::HouseholdError::HeadElsewhere,
            }]))
        }
        yibao_storage::households::PlaceOutcome::Placed { changed } => changed,
    };
    if !changed.is_empty() {
        let others: Vec<String> = changed
            .iter()
            .filter(|c| *c != id)
            .map(IdNumber::masked)
            .collect();
        audit(
            state,
            staff,
            "person.household",
            Some(region),
            &id.masked(),
            serde_json::json!({
                "household": placement.as_ref().map(|p| p.number.as_str()),
                "relation": placement.as_ref().and_then(|p| p.relation.as_ref()).map(|r| r.as_str()),
                "head_replaced": others,
            }),
        )
        .await
        .map_err(Err)?;
    }
    Ok(!changed.is_empty())
}

/// A household's members, now and before, for staff of its region; audited as `read.household`
/// (the page shows names and ID numbers masked).
pub async fn household(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    number: &yibao_domain::household::HouseholdNumber,
) -> Result<Vec<yibao_storage::households::MembershipRecord>, ServiceError> {
    staff.may_read(region, staff.0.station.as_ref())?;
    let mut rows = state
        .storage
        .household_memberships(
            region,
            yibao_storage::households::MembershipsOf::Household(number),
        )
        .await?;
    // A station operator sees a household with a current member at their station, as if there
    // were none otherwise.
    if staff.reads_by_station() {
        let own = staff.0.station.as_ref().map(StationCode::as_str);
        if !rows
            .iter()
            .any(|m| m.is_current() && m.station_code.as_deref() == own && own.is_some())
        {
            rows.clear();
        }
    }
    audit(
        state,
        staff,
        "read.household",
        Some(region),
        number.as_str(),
        serde_json::json!({ "rows": rows.len() }),
    )
    .await?;
    Ok(rows)
}
