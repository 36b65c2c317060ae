//! 未缴名单跟进: a station records that an unpaid resident was told and the reason they give
//! (from the configured list, `unpaid_reasons`), with the same scope rule as changing the person
//! ([`Staff::may_change`]: a station operator only their own station's people). Each record is
//! kept (history), audited as `unpaid.follow_up`; reading a person's records is part of reading
//! the person and audited as `read.follow_ups`.

use chrono::NaiveDate;
use yibao_domain::unpaid::NoticeMethod;
use yibao_domain::{FeeYear, IdNumber, RegionCode, StationCode};
use yibao_storage::records::{FollowUpRecord, NewFollowUp};

use crate::auth::Staff;
use crate::error::ServiceError;
use crate::services::audit;
use crate::services::persons::load_person;
use crate::AppState;

/// Longest note of a follow-up, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// A follow-up as the station entered it, already checked field by field.
pub struct FollowUpInput {
    pub told_on: NaiveDate,
    pub told_how: NoticeMethod,
    pub signed_scanned: bool,
    pub reason: String,
    pub note: Option<String>,
}

/// Records a follow-up for a person the caller may change; answers its number.
pub async fn record_follow_up(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    fee_year: FeeYear,
    id: &IdNumber,
    input: FollowUpInput,
) -> Result<i64, ServiceError> {
    let (person, _) = load_person(state, staff, region, id).await?;
    staff.may_change(region, person.station.as_ref())?;
    let follow_up = NewFollowUp {
        region,
        fee_year,
        id_number: *id,
        station_code: person.station.as_ref().map(|s| s.as_str().to_owned()),
        told_on: input.told_on,
        told_how: input.told_how,
        signed_scanned: input.signed_scanned,
        reason: input.reason,
        note: input.note,
        recorded_by: staff.username().to_owned(),
        recorded_at: state.clock.now().timestamp(),
    };
    let seq = state.storage.add_follow_up(&follow_up).await?;
    audit(
        state,
        staff,
        "unpaid.follow_up",
        Some(region),
        &id.masked(),
        serde_json::json!({
            "fee_year": fee_year.get(),
            "seq": seq,
            "station": person.station.as_ref().map(StationCode::as_str),
            "told_on": follow_up.told_on.to_string(),
            "told_how": follow_up.told_how.code(),
            "signed_scanned": follow_up.signed_scanned,
            "reason": follow_up.reason,
        }),
    )
    .await?;
    Ok(seq)
}

/// A person's follow-ups in a fee year, newest first, for a caller who may read them; audited
/// as `read.follow_ups`.
pub async fn follow_ups_of(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    fee_year: FeeYear,
    id: &IdNumber,
) -> Result<(yibao_domain::Person, Vec<FollowUpRecord>), ServiceError> {
    let (person, _) = load_person(state, staff, region, id).await?;
    let records = state.storage.follow_ups(region, fee_year, id).await?;
    audit(
        state,
        staff,
        "read.follow_ups",
        Some(region),
        &id.masked(),
        serde_json::json!({ "fee_year": fee_year.get(), "rows": records.len() }),
    )
    .await?;
    Ok((person, records))
}

/// Most people one 未参保名单 holds (the export's bound); a larger station's list is refused.
pub const MAX_SUBMITTED_PERSONS: usize = 20_000;

/// When a station's 未参保名单及原因 of a fee year is due: the campaign collects fee year N in
/// the autumn of N-1, so by 31 December of N-1.
pub fn submission_due(fee_year: FeeYear) -> NaiveDate {
    NaiveDate::from_ymd_opt(i32::from(fee_year.get()) - 1, 12, 31).unwrap_or(NaiveDate::MIN)
}

/// A station operator submits their station's 未参保名单及原因 for a fee year to the centre:
/// the unpaid list as it stands, each person with their latest recorded reason. Once per fee
/// year: a second submission is refused (`ALREADY_EXISTS`; the centre corrects by other means).
/// Only a station operator submits, for their own station. Audited as `uninsured.submit`.
pub async fn submit_uninsured(
    state: &AppState,
    staff: &Staff,
    fee_year: FeeYear,
) -> Result<yibao_storage::records::UninsuredSubmission, ServiceError> {
    let (Some(region), Some(station)) = (staff.0.region, staff.0.station.clone()) else {
        return Err(ServiceError::new(
            crate::error::ErrorCode::Forbidden,
            "未参保名单由服务站提交，请用服务站经办账号登录",
        ));
    };
    staff.may_change(region, Some(&station))?;
    let mut lines = Vec::new();
    let mut with_reason = 0i64;
    // The unpaid list in the export's keyset batches, each reading only its own rows.
    let batch_rows = yibao_storage::console_reads::MAX_UNPAID_BATCH_ROWS;
    let mut cursor = yibao_storage::console_reads::UnpaidCursor::default();
    loop {
        let batch = state
            .storage
            .unpaid_after(&yibao_storage::console_reads::UnpaidBatchQuery {
                region: region.as_str(),
                fee_year: i32::from(fee_year.get()),
                station: Some(station.as_str()),
                cursor: &cursor,
                limit: batch_rows,
            })
            .await?;
        if lines.len() + batch.len() > MAX_SUBMITTED_PERSONS {
            return Err(ServiceError::new(
                crate::error::ErrorCode::InvalidRequest,
                format!("未参保名单超过 {MAX_SUBMITTED_PERSONS} 人，请联系中心在服务器上处理"),
            ));
        }
        let done = batch.len() < batch_rows;
        if let Some(last) = batch.last() {
            cursor = yibao_storage::console_reads::UnpaidCursor::after(last);
        }
        for row in batch {
            if row.latest.is_some() {
                with_reason += 1;
            }
            lines.push(serde_json::json!({
                "id_number": row.row.id_number.as_str(),
                "name": row.row.name,
                "reason": row.latest.as_ref().map(|l| l.reason.clone()),
                "told_on": row.latest.as_ref().map(|l| l.told_on.to_string()),
                "told_how": row.latest.as_ref().map(|l| l.told_how.code()),
            }));
        }
        if done {
            break;
        }
    }
    let submission = yibao_storage::records::UninsuredSubmission {
        region,
        fee_year,
        station_code: station.as_str().to_owned(),
        submitted_by: staff.username().to_owned(),
        submitted_at: state.clock.now().timestamp(),
        persons: i64::try_from(lines.len()).unwrap_or(i64::MAX),
        with_reason,
        lines: serde_json::Value::Array(lines).to_string(),
    };
    match state.storage.submit_uninsured(&submission).await {
        Ok(()) => {}
        Err(yibao_storage::StorageError::Constraint {
            kind: yibao_storage::ConstraintKind::Unique,
            ..
        }) => {
            return Err(ServiceError::new(
                crate::error::ErrorCode::AlreadyExists,
                format!(
                    "本服务站 {fee_year} 年度的未参保名单已经提交，不能重复提交；如需更正请联系中心"
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state,
        staff,
        "uninsured.submit",
        Some(region),
        station.as_str(),
        serde_json::json!({
            "fee_year": fee_year.get(),
            "persons": submission.persons,
            "with_reason": submission.with_reason,
        }),
    )
    .await?;
    Ok(submission)
}

/// Which stations of a region have submitted their 未参保名单 for a fee year: every station with
/// people of the region (from the progress aggregate) and any that submitted. The centre, the
/// tax office and auditors read all; a station operator only their own.
pub async fn submissions_of(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    fee_year: FeeYear,
) -> Result<Vec<(String, Option<yibao_storage::records::UninsuredSubmission>)>, ServiceError> {
    let own = staff.0.station.clone();
    staff.may_read(region, own.as_ref())?;
    let submitted = state
        .storage
        .uninsured_submissions(region, fee_year)
        .await?;
    let mut stations: Vec<String> = match &own {
        Some(station) => vec![station.as_str().to_owned()],
        None => state
            .storage
            .collection_progress(Some(region), fee_year, None)
            .await?
            .into_iter()
            .filter_map(|p| p.station_code)
            .collect(),
    };
    if own.is_none() {
        stations.extend(submitted.iter().map(|s| s.station_code.clone()));
    }
    stations.sort();
    stations.dedup();
    Ok(stations
        .into_iter()
        .map(|station| {
            let found = submitted
                .iter()
                .find(|s| s.station_code == station)
                .cloned();
            (station, found)
        })
        .collect())
}

/// One person of a submitted 未参保名单, as the station submitted them.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SubmittedPerson {
    pub id_number: String,
    pub name: String,
    pub reason: Option<String>,
    pub told_on: Option<String>,
    pub told_how: Option<String>,
}

/// A station's submitted 未参保名单 with its people, for the centre, the tax office, auditors
/// and the station itself (`Staff::may_read`); `None` when not submitted. It holds full names
/// and ID numbers: reading it is audited as `read.uninsured_list`.
pub async fn submitted_list(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    fee_year: FeeYear,
    station: &yibao_domain::StationCode,
) -> Result<
    Option<(
        yibao_storage::records::UninsuredSubmission,
        Vec<SubmittedPerson>,
    )>,
    ServiceError,
> {
    staff.may_read(region, Some(station))?;
    let Some(submission) = state
        .storage
        .uninsured_submission(region, fee_year, station)
        .await?
    else {
        return Ok(None);
    };
    let people: Vec<SubmittedPerson> = serde_json::from_str(&submission.lines)
        .map_err(|e| ServiceError::internal("uninsured submission lines", e))?;
    audit(
        state,
        staff,
        "read.uninsured_list",
        Some(region),
        station.as_str(),
        serde_json::json!({ "fee_year": fee_year.get(), "persons": people.len() }),
    )
    .await?;
    Ok(Some((submission, people)))
}
