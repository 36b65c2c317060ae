//! Who may see and change which region's settlement data (bank debits, statements,
//! reconciliation, reports), and the dates and periods settlement requests name: the rules the
//! settlement API and the console share. The roles are [`crate::auth`]'s.
//!
//! A channel serving several regions sends one statement for all: the administrator uploads it,
//! and a tax collector sees and resolves their own region's differences of it only.

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::AppState;

/// Longest period a report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 366;

/// Refuses a region outside `scope` (a tax collector's own region; `None` is every region).
pub fn within(scope: &Option<String>, region: &str) -> Result<(), ServiceError> {
    match scope {
        Some(own) if own != region => Err(ServiceError::of(ErrorCode::Forbidden)),
        _ => Ok(()),
    }
}

/// A business date: `YYYY-MM-DD` in the years a fee year can have (2000 to 2100).
pub fn date_of(text: &str) -> Result<NaiveDate, ServiceError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::InvalidRequest,
                "日期应为 2000 至 2100 年间的 YYYY-MM-DD",
            )
        })
}

/// What of a channel's reconciliation a clerk sees and acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelView {
    /// All of it: the administrator (or an auditor reading), or a tax collector of the one region
    /// the channel serves.
    Whole,
    /// A tax collector of one of several regions a channel serves: that region's items only. The
    /// statement itself (its funds, its 长款 that belong to no region yet) is the administrator's.
    Region(String),
}

impl ChannelView {
    /// The one region whose items are seen, or `None` for all of them.
    pub fn region(&self) -> Option<&str> {
        match self {
            ChannelView::Whole => None,
            ChannelView::Region(r) => Some(r),
        }
    }
}

/// A tax collector works on the channels that serve their region (403 otherwise); on a channel
/// that serves other regions too, on their own region's items only.
pub async fn channel_view(
    state: &AppState,
    scope: &Option<String>,
    channel_id: &str,
) -> Result<ChannelView, ServiceError> {
    let Some(region) = scope else {
        return Ok(ChannelView::Whole);
    };
    let channel = state
        .storage
        .get_channel(channel_id)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该渠道"))?;
    if !channel.regions.iter().any(|r| r == region) {
        return Err(ServiceError::of(ErrorCode::Forbidden));
    }
    if channel.regions.iter().all(|r| r == region) {
        Ok(ChannelView::Whole)
    } else {
        Ok(ChannelView::Region(region.clone()))
    }
}

/// The channel a tax collector's reconciliation read is limited to: they must name one that
/// serves their region; others may leave it out.
pub async fn channel_filter(
    state: &AppState,
    staff: &Staff,
    channel_id: Option<&str>,
) -> Result<ChannelView, ServiceError> {
    let scope = staff.collection_read_scope()?;
    match (&scope, channel_id) {
        (Some(_), None) => Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "请用 channel_id 指定本统筹区的渠道",
        )),
        (_, Some(channel)) => channel_view(state, &scope, channel).await,
        (None, None) => Ok(ChannelView::Whole),
    }
}

/// The period, channel and region a report or a list of differences is asked for, as the
/// query string names them.
#[derive(Deserialize)]
pub struct PeriodQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub channel_id: Option<String>,
    pub region: Option<String>,
    /// `json` (default) or `xlsx`.
    pub format: Option<String>,
    /// Reconciliation items: only those not resolved yet.
    #[serde(default)]
    pub unresolved: bool,
}

impl PeriodQuery {
    /// The period asked for, today alone by default, at most [`MAX_REPORT_DAYS`].
    pub fn period(&self, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ServiceError> {
        let to = self
            .to
            .as_deref()
            .map(date_of)
            .transpose()?
            .unwrap_or(today);
        let from = self.from.as_deref().map(date_of).transpose()?.unwrap_or(to);
        if from > to || to - from > Duration::days(MAX_REPORT_DAYS) {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("起止日期应先后有序，且最长 {MAX_REPORT_DAYS} 天"),
            ));
        }
        Ok((from, to))
    }

    /// Whether the XLSX workbook is asked for rather than JSON.
    pub fn xlsx(&self) -> Result<bool, ServiceError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("xlsx") => Ok(true),
            Some(_) => Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "format 只能是 json 或 xlsx",
            )),
        }
    }
}
