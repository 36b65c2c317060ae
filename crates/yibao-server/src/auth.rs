//! Who is calling the admin API, and what they may touch.
//!
//! Roles: the center administrator (中心管理员) does everything in every region; a station operator
//! (服务站经办) sees and changes only their own station's people (谁主管谁负责); a tax collector
//! (税务征收) reads their region; an auditor (审计) reads everything and changes nothing.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use yibao_domain::{RegionCode, StationCode};
use yibao_storage::{Role, StaffAccount};

pub use axum::http::HeaderName;

use crate::error::{ErrorCode, ServiceError};
use crate::services::staff::token_hash;
use crate::AppState;

/// The signed-in staff member, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Staff(pub StaffAccount);

impl FromRequestParts<AppState> for Staff {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(|| ServiceError::of(ErrorCode::AuthRequired))?;
        let now = state.clock.now().timestamp();
        let account = state
            .storage
            .session_staff(&token_hash(token), now)
            .await?
            .filter(|a| !a.disabled)
            .ok_or_else(|| ServiceError::new(ErrorCode::AuthRequired, "登录已失效，请重新登录"))?;
        Ok(Staff(account))
    }
}

/// The client's address for sign-in throttling and the audit log: the socket's peer address, or,
/// only when `trusted_header` is configured (a reverse proxy in front sets it), the address in that
/// header: the last entry of a comma-separated list such as `X-Forwarded-For` (the one our proxy
/// appended). A missing or malformed header falls back to the peer address, so a client cannot
/// choose its own key by sending garbage.
pub fn client_address(
    peer: Option<std::net::SocketAddr>,
    headers: &axum::http::HeaderMap,
    trusted_header: Option<&axum::http::HeaderName>,
) -> String {
    let from_header = trusted_header
        .and_then(|name| headers.get_all(name).iter().next_back())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    match (from_header, peer) {
        (Some(ip), _) => ip.to_string(),
        (None, Some(peer)) => peer.ip().to_string(),
        (None, None) => "unknown".to_owned(),
    }
}

/// Whether the request says it comes from another site (a cross-site form post or fetch).
pub fn cross_site(headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok());
    match (
        headers
            .get(axum::http::header::ORIGIN)
            .and_then(|v| v.to_str().ok()),
        host,
    ) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or(origin);
            origin_host != host
        }
        _ => false,
    }
}

fn forbidden() -> ServiceError {
    ServiceError::of(ErrorCode::Forbidden)
}

impl Staff {
    pub fn username(&self) -> &str {
        &self.0.username
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// Only the center administrator.
    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// May read data of `region` (and, for a station operator, of `station` within it).
    pub fn may_read(
        &self,
        region: RegionCode,
        station: Option<&StationCode>,
    ) -> Result<(), ServiceError> {
        let ok = match self.0.role {
            Role::Admin | Role::Auditor => true,
            Role::TaxCollector => self.0.region == Some(region),
            Role::StationOperator => {
                self.0.region == Some(region)
                    && station.is_some()
                    && self.0.station.as_ref() == station
            }
        };
        if ok {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// May read the record of a person of `region` who is at `station`, or is not on record
    /// (`None`): a station operator asking after somebody not on record is answered as for their
    /// own station, so as not to tell whether the person is on record elsewhere.
    pub fn may_read_person(
        &self,
        region: RegionCode,
        station: Option<&StationCode>,
    ) -> Result<(), ServiceError> {
        match (self.0.role, station) {
            (Role::StationOperator, None) => self.may_read(region, self.0.station.as_ref()),
            _ => self.may_read(region, station),
        }
    }

    /// Whether what this staff member may read depends on a person's station (a station
    /// operator's reads), so that the station must be looked up first.
    pub fn reads_by_station(&self) -> bool {
        self.0.role == Role::StationOperator
    }

    /// May change people of `region` and `station`: the administrator, or that station's operator.
    pub fn may_change(
        &self,
        region: RegionCode,
        station: Option<&StationCode>,
    ) -> Result<(), ServiceError> {
        match self.0.role {
            Role::Admin => Ok(()),
            Role::StationOperator => self.may_read(region, station),
            Role::TaxCollector | Role::Auditor => Err(forbidden()),
        }
    }

    /// May change somebody at all (a roster upload): the administrator, or a station operator
    /// bound to a station, who may change that station's people ([`Staff::may_change`]).
    pub fn may_change_anyone(&self) -> Result<(), ServiceError> {
        match (self.0.role, self.0.region, self.0.station.as_ref()) {
            (Role::Admin, _, _) => Ok(()),
            (Role::StationOperator, Some(region), Some(station)) => {
                self.may_change(region, Some(station))
            }
            _ => Err(forbidden()),
        }
    }

    /// The regions whose collection data (payments, refunds, reconciliation, reports) this staff
    /// member may read: `None` for every region (administrators and auditors), their own for a
    /// tax collector; station operators have no part in collection.
    pub fn collection_read_scope(&self) -> Result<Option<String>, ServiceError> {
        match self.0.role {
            Role::Admin | Role::Auditor => Ok(None),
            Role::TaxCollector => Ok(self.0.region.map(|r| r.to_string())),
            Role::StationOperator => Err(forbidden()),
        }
    }

    /// The regions whose collection data this staff member may change: `None` for every region
    /// (the administrator), their own for a tax collector; nobody else changes collection data.
    pub fn collection_write_scope(&self) -> Result<Option<String>, ServiceError> {
        match self.0.role {
            Role::Admin => Ok(None),
            Role::TaxCollector => Ok(self.0.region.map(|r| r.to_string())),
            Role::StationOperator | Role::Auditor => Err(forbidden()),
        }
    }

    /// May read the audit log: the administrator and auditors.
    pub fn may_read_audit_log(&self) -> Result<(), ServiceError> {
        match self.0.role {
            Role::Admin | Role::Auditor => Ok(()),
            Role::TaxCollector | Role::StationOperator => Err(forbidden()),
        }
    }

    /// The station a list must be limited to: a station operator's own; others may choose.
    pub fn station_filter(
        &self,
        region: RegionCode,
        requested: Option<StationCode>,
    ) -> Result<Option<StationCode>, ServiceError> {
        match self.0.role {
            Role::StationOperator => {
                let own = self.0.station.clone();
                if requested.is_some() && requested != own {
                    return Err(forbidden());
                }
                self.may_read(region, own.as_ref())?;
                Ok(own)
            }
            _ => {
                self.may_read(region, requested.as_ref())?;
                Ok(requested)
            }
        }
    }
}

/// The signed-in center administrator: refused with 403 before the request body is read.
#[derive(Debug, Clone)]
pub struct Admin(pub Staff);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let staff = Staff::from_request_parts(parts, state).await?;
        staff.require_admin()?;
        Ok(Admin(staff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_peer_unless_a_trusted_header_is_configured() {
        let peer: std::net::SocketAddr = "192.0.2.9:50000".parse().unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.1, 198.51.100.7".parse().unwrap(),
        );
        assert_eq!(client_address(Some(peer), &headers, None), "192.0.2.9");
        let xff = HeaderName::from_static("x-forwarded-for");
        assert_eq!(
            client_address(Some(peer), &headers, Some(&xff)),
            "198.51.100.7"
        );
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(
            client_address(Some(peer), &headers, Some(&xff)),
            "192.0.2.9"
        );
        assert_eq!(
            client_address(None, &axum::http::HeaderMap::new(), Some(&xff)),
            "unknown"
        );
    }
}
