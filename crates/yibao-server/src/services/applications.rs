//! 参保登记 submitted online (issue 11): what a resident may submit, and what the station's
//! approval does. Approving registers the person and enrols them in the open fee year exactly as
//! the console's 参保人员 page does ([`crate::services::persons::save_person`], audited); their
//! payable then comes with the region's next assessment. Refusing records the reason, which the
//! resident sees on the citizen site.

use yibao_domain::ApplicationStatus;
use yibao_domain::{
    check_eligibility, Household, Person, PersonName, Phone, RegionCode, StationCode,
};
use yibao_storage::enrolment_applications::EnrolmentApplication;

use crate::auth::Staff;
use crate::{AppState, ErrorCode, ServiceError};

/// Longest refusal reason, characters.
pub const MAX_REASON_CHARS: usize = 200;
/// A newborn's application is for a child under this many days old.
pub const NEWBORN_MAX_DAYS: i64 = 365;

/// What kind of application: 首次参保 or 新生儿.
pub const KINDS: [(&str, &str); 2] = [("first", "首次参保"), ("newborn", "新生儿参保")];

/// The Chinese name of an application's kind.
pub fn kind_zh(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(code, _)| *code == kind)
        .map_or("参保登记", |(_, zh)| zh)
}

/// The person an application registers, as the console would register them: not in employee
/// insurance (the applicant declared it), no station change later.
pub fn person_of(a: &EnrolmentApplication) -> Result<Person, ServiceError> {
    let region = a.region;
    let id_number = a.id_number;
    let household = match (a.household.as_str(), a.permit_since) {
        ("residence_permit", Some(since)) => Household::ResidencePermit { since },
        _ => Household::LocalRegistration,
    };
    Ok(Person {
        region,
        id_number,
        name: PersonName::parse(&a.name)?,
        household,
        school: None,
        phone: a.phone.as_deref().map(Phone::parse).transpose()?,
        station: Some(StationCode::parse(&a.station)?),
        employee_insured: false,
        relief: None,
    })
}

/// Most open applications one resident may have at a time.
pub const MAX_OPEN_PER_SUBMITTER: usize = 5;

/// Who checks an application: the resident submitting it, or the station approving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    /// A person on record under another name passes (the station will see it): a resident must
    /// not learn whether an ID number alone is on record.
    Resident,
    /// A person on record in the region is refused, whatever the name.
    Station,
}

/// Checks an application: the fields (via [`person_of`]), that the person may enrol now (a
/// residence permit held three months), that a newborn is one, and that the person is not on
/// record in the region already (see [`Checker`]). The refusal names the field.
pub async fn check_new(
    state: &AppState,
    a: &EnrolmentApplication,
    checker: Checker,
) -> Result<(), ServiceError> {
    let today = state.clock.today();
    let person = person_of(a)?;
    check_eligibility(&person, today)
        .map_err(|r| ServiceError::new(ErrorCode::InvalidPerson, r.to_string()))?;
    if a.kind == "newborn" {
        let born = a.id_number.birth_date();
        if today.signed_duration_since(born).num_days() > NEWBORN_MAX_DAYS {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "新生儿参保适用于出生一年内的婴儿；已满一周岁的请选择“首次参保”",
            ));
        }
    }
    let on_record = state
        .storage
        .get_person(person.region, &person.id_number)
        .await?
        .is_some_and(|(p, _)| checker == Checker::Station || p.name.matches(&a.name));
    if on_record {
        return Err(ServiceError::new(
            ErrorCode::AlreadyExists,
            "该人员已在所选参保地登记，无需网上登记；如需变更信息请到服务站办理",
        ));
    }
    Ok(())
}

/// The application of `region` and `application_no` that `staff` may decide (their region and
/// station), still open.
async fn open_application(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    application_no: &str,
) -> Result<EnrolmentApplication, ServiceError> {
    let a = state
        .storage
        .enrolment_applications()
        .application(region.as_str(), application_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "没有这份参保登记申请"))?;
    staff.may_change(region, Some(&StationCode::parse(&a.station)?))?;
    if a.status != ApplicationStatus::Submitted {
        return Err(ServiceError::new(
            ErrorCode::AlreadyExists,
            format!("这份申请已{}，不能再次审核", a.status.name_zh()),
        ));
    }
    Ok(a)
}

/// Approves an application: marks it approved (refused if somebody decided it meanwhile), then
/// registers and enrols the person as the console does. When the person may not enrol now or
/// is on record in the region already, nothing is registered and the application goes back to
/// the queue: the station then refuses it with the reason.
pub async fn approve(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    application_no: &str,
) -> Result<(), ServiceError> {
    let a = open_application(state, staff, region, application_no).await?;
    // Claimed first, so that a second approval or a refusal at the same time is told it was
    // decided; put back in the queue if the registration does not go through.
    decide(state, staff, region, application_no, "approved", None).await?;
    let registered = async {
        check_new(state, &a, Checker::Station).await?;
        let person = person_of(&a)?;
        crate::services::persons::save_person(state, staff, person, "online_application").await
    }
    .await;
    if let Err(err) = registered {
        state
            .storage
            .enrolment_applications()
            .reopen_application(region.as_str(), application_no)
            .await?;
        return Err(err);
    }
    Ok(())
}

/// The other regions where the application's person is on record already: the station sees
/// them before approving (a move is legitimate; a stranger's application is not).
pub async fn on_record_elsewhere(
    state: &AppState,
    a: &EnrolmentApplication,
) -> Result<Vec<String>, ServiceError> {
    let id = &a.id_number;
    let mut found = Vec::new();
    for region in state.storage.list_regions().await? {
        if region.code() == a.region {
            continue;
        }
        if state.storage.get_person(region.code(), id).await?.is_some() {
            found.push(format!("{}（{}）", region.name(), region.code()));
        }
    }
    Ok(found)
}

/// Marks an open application decided; refused when somebody decided it meanwhile.
async fn decide(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    application_no: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<(), ServiceError> {
    let decided = state
        .storage
        .enrolment_applications()
        .decide_application(
            region.as_str(),
            application_no,
            status,
            reason,
            staff.username(),
            state.clock.now().timestamp(),
        )
        .await?;
    if decided {
        Ok(())
    } else {
        Err(ServiceError::new(
            ErrorCode::AlreadyExists,
            "这份申请已由他人审核",
        ))
    }
}

/// Refuses an application with the reason the resident will read.
pub async fn refuse(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    application_no: &str,
    reason: &str,
) -> Result<(), ServiceError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "请填写不予通过的原因，居民会看到这段话",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!("原因最多{MAX_REASON_CHARS}个字"),
        ));
    }
    open_application(state, staff, region, application_no).await?;
    decide(
        state,
        staff,
        region,
        application_no,
        "refused",
        Some(reason),
    )
    .await?;
    crate::services::audit(
        state,
        staff,
        "application.refuse",
        Some(region),
        application_no,
        serde_json::json!({ "reason": reason }),
    )
    .await
}
