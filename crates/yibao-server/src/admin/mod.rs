//! The admin API of the agency and its service stations, by topic: signing in, staff and channel
//! accounts, rosters, persons, assessment, lists, receipts, region setup and the audit log. Who may
//! do what is decided in [`crate::auth`]; each handler names the permission it needs.

pub mod assessment;
pub mod audit_log;
pub mod channels;
pub mod lists;
pub mod persons;
pub mod receipts;
pub mod rosters;
pub mod sessions;
pub mod setup;
pub mod staff;

use yibao_domain::{FeeYear, IdNumber, RegionCode};

use crate::http::ApiRouter;
use crate::{AppState, ServiceError};

pub use rosters::ROSTER_UPLOAD_LIMIT_BYTES;

/// The admin routes with the default body limit.
pub(crate) fn routes() -> ApiRouter {
    ApiRouter::new()
        .merge(sessions::routes())
        .merge(staff::routes())
        .merge(channels::routes())
        .merge(rosters::routes())
        .merge(persons::routes())
        .merge(assessment::routes())
        .merge(lists::routes())
        .merge(receipts::routes())
        .merge(setup::routes())
        .merge(audit_log::routes())
}

fn region_of(text: &str) -> Result<RegionCode, ServiceError> {
    Ok(RegionCode::parse(text)?)
}

fn year_of(year: i64) -> Result<FeeYear, ServiceError> {
    Ok(FeeYear::new(year)?)
}

fn id_of(text: &str, state: &AppState) -> Result<IdNumber, ServiceError> {
    Ok(IdNumber::parse(text, state.clock.today())?.id_number)
}
