//! 未缴名单跟进: a station records that an unpaid resident was told and the reason they give
//! (from the configured list, `unpaid_reasons`), with the same scope rule as changing the person
//! ([`Staff::may_change`]: a station operator only their own station's people). Each record is
//! kept (history), audited as `unpaid.follow_up`; reading a person's records is part of reading
//! the person and audited as `read.follow_ups`.

use chrono::NaiveDate;
use yibao_domain::unpaid::NoticeMethod;
use yibao_domain::{FeeYear, IdNumber, RegionCode, StationCode};
use yibao_storage::records::{FollowUpRecord, NewFollowUp};

use crate::admin::audit;
use crate::auth::Staff;
use crate::error::ApiError;
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
) -> Result<i64, ApiError> {
    let (person, _) = load_person(state, staff, region, id).await?;
    staff.may_change(region, person.station.as_ref())?;
    let follow_up = NewFollowUp {
        region,
        fee_year,
        id_number: id.as_str().to_owned(),
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
) -> Result<(yibao_domain::Person, Vec<FollowUpRecord>), ApiError> {
    let (person, _) = load_person(state, staff, region, id).await?;
    let records = state
        .storage
        .follow_ups(region, fee_year, id.as_str())
        .await?;
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
