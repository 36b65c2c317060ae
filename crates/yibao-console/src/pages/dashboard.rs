//! 首页 征缴进度: collection progress in the user's scope, with the numbers behind every chart.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use yibao_domain::{FeeYear, RegionCode};
use yibao_server::AppState;
use yibao_storage::console_reads::{MoneyCounts, MoneyCountsQuery, MONEY_COUNT_CAP};
use yibao_storage::records::ProgressRow;
use yibao_storage::Role;

use crate::session::ConsoleUser;
use crate::view::{beijing_second, percent, yuan, Chrome};
use crate::{html, PageError};

/// A payment rate at or above this is good (green); below [`WARN_RATE_PERMILLE`] it is behind (red).
pub const GOOD_RATE_PERMILLE: i64 = 800;
pub const WARN_RATE_PERMILLE: i64 = 700;
/// Days of daily collection the chart shows.
pub const CHART_DAYS: i64 = 30;

/// One station's line of the progress table.
pub struct StationProgress {
    pub region: String,
    pub station: String,
    pub persons: i64,
    pub enrolled: i64,
    pub assessed: i64,
    pub paid: i64,
    pub exempt: i64,
    pub unpaid: i64,
    pub not_assessed: i64,
    pub refused: i64,
    /// Paid among those who owe (enrolled and not exempt), in per mille.
    pub rate_permille: i64,
    pub rate: String,
    /// `good`, `warn` or `behind`.
    pub band: &'static str,
}

impl StationProgress {
    fn new(region: String, station: String) -> Self {
        StationProgress {
            region,
            station,
            persons: 0,
            enrolled: 0,
            assessed: 0,
            paid: 0,
            exempt: 0,
            unpaid: 0,
            not_assessed: 0,
            refused: 0,
            rate_permille: 0,
            rate: String::new(),
            band: "behind",
        }
    }

    fn add(&mut self, standing: &str, n: i64) {
        self.persons += n;
        match standing {
            "paid" => self.paid += n,
            "exempt" => self.exempt += n,
            "unpaid" => self.unpaid += n,
            "not_assessed" => self.not_assessed += n,
            "enrolment_refused" => self.refused += n,
            _ => {}
        }
    }

    fn finish(&mut self) {
        self.assessed = self.paid + self.exempt + self.unpaid;
        self.enrolled = self.assessed + self.not_assessed;
        let owing = self.paid + self.unpaid + self.not_assessed;
        self.rate_permille = if owing > 0 {
            self.paid * 1000 / owing
        } else {
            0
        };
        self.rate = percent(self.paid, owing);
        self.band = if owing == 0 {
            "none"
        } else if self.rate_permille >= GOOD_RATE_PERMILLE {
            "good"
        } else if self.rate_permille >= WARN_RATE_PERMILLE {
            "warn"
        } else {
            "behind"
        };
    }
}

/// Folds the storage's counts into one line per station and a total line.
pub fn progress_table(rows: &[ProgressRow]) -> (Vec<StationProgress>, StationProgress) {
    let mut stations: Vec<StationProgress> = Vec::new();
    let mut total = StationProgress::new(String::new(), "合计".into());
    for row in rows {
        let station = row
            .station_code
            .clone()
            .unwrap_or_else(|| "（未分配服务站）".into());
        let line = match stations
            .iter_mut()
            .position(|s| s.region == row.region.as_str() && s.station == station)
        {
            Some(i) => &mut stations[i],
            None => {
                stations.push(StationProgress::new(row.region.to_string(), station));
                stations.last_mut().expect("just pushed")
            }
        };
        line.add(row.standing, row.persons);
        total.add(row.standing, row.persons);
    }
    for s in &mut stations {
        s.finish();
    }
    total.finish();
    stations.sort_by(|a, b| (&a.region, &a.station).cmp(&(&b.region, &b.station)));
    (stations, total)
}

/// A day's collection through one channel.
pub struct DayRow {
    pub day: String,
    pub channel: String,
    pub payables: i64,
    pub amount: String,
}

/// Money matters the user's scope answers for, as the page shows them.
pub struct MoneyView {
    pub counts: MoneyCounts,
    /// Each count stops here; the page shows "≥" when one reaches it.
    pub limit: i64,
}

impl MoneyView {
    /// A count as the page shows it: "≥10000" once it reached the cap.
    pub fn shown(&self, n: &i64) -> String {
        if *n >= self.limit {
            format!("≥{}", self.limit)
        } else {
            n.to_string()
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub fee_year: i32,
    /// When the progress table was computed (Beijing time).
    pub as_of: String,
    pub years: Vec<i32>,
    pub regions: Vec<(String, String)>,
    pub region: String,
    pub may_choose_region: bool,
    pub stations: Vec<StationProgress>,
    pub total: StationProgress,
    pub days: Vec<DayRow>,
    pub money: Option<MoneyView>,
    /// The chosen region's payment reminders for the year, by outcome.
    pub reminders: Option<yibao_storage::citizen_accounts::ReminderCounts>,
    /// The chosen region's debit-run outcome messages (扣款结果通知) for the year, by outcome.
    pub debit_notices: Option<yibao_storage::citizen_accounts::ReminderCounts>,
    pub calendar_warnings: Vec<String>,
    /// Whether the user may set a holiday calendar (administrators), or must ask for it.
    pub may_set_calendar: bool,
    pub password_changed: bool,
    /// JSON for the charts (read by console.js from `data-chart`).
    pub rate_chart: String,
    pub daily_chart: String,
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    region: Option<String>,
    year: Option<i32>,
    password: Option<String>,
}

/// `GET /console/`.
pub async fn page(
    State(state): State<AppState>,
    axum::Extension(cache): axum::Extension<crate::progress::ProgressCache>,
    user: ConsoleUser,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    let staff = &user.staff;
    let account = user.account();
    let today = state.clock.today();
    let all_regions = state.storage.list_regions().await?;
    // The region: one's own, or (administrators and auditors) any, or all of them.
    let region: Option<RegionCode> = match account.region {
        Some(own) => Some(own),
        None => match query.region.as_deref().filter(|r| !r.is_empty()) {
            Some(text) => Some(RegionCode::parse(text).map_err(yibao_server::ServiceError::from)?),
            None => None,
        },
    };
    if let Some(r) = region {
        staff.may_read(r, account.station.as_ref())?;
    }
    let station = match account.role {
        Role::StationOperator => account.station.clone(),
        _ => None,
    };
    let mut years: Vec<i32> = Vec::new();
    let mut open_year: Option<i32> = None;
    for r in all_regions
        .iter()
        .filter(|r| region.is_none_or(|code| r.code() == code))
    {
        let policies = state.storage.list_fee_policies(r.code()).await?;
        for p in &policies {
            let y = i32::from(p.fee_year().get());
            if !years.contains(&y) {
                years.push(y);
            }
        }
        if let Some(p) = yibao_domain::fee::enrolment_fee_year(&policies, today) {
            let y = i32::from(p.fee_year().get());
            open_year = Some(open_year.map_or(y, |o: i32| o.min(y)));
        }
    }
    years.sort_unstable();
    let fee_year_number = query
        .year
        .filter(|y| years.contains(y))
        .or(open_year)
        .or(years.last().copied())
        .unwrap_or_else(|| chrono::Datelike::year(&today));
    let fee_year =
        FeeYear::new(i64::from(fee_year_number)).map_err(yibao_server::ServiceError::from)?;
    let (all_rows, computed_at) = cache.get(&state, region, fee_year).await?;
    let rows: Vec<ProgressRow> = all_rows
        .iter()
        .filter(|r| {
            station.is_none() || r.station_code.as_deref() == station.as_ref().map(|s| s.as_str())
        })
        .cloned()
        .collect();
    let (stations, total) = progress_table(&rows);
    let as_of = beijing_second(computed_at);

    // Money: region-wide matters, not a station's.
    let region_text = region.map(|r| r.to_string());
    let from = today - Duration::days(CHART_DAYS - 1);
    let (days, money) = if account.role == Role::StationOperator {
        (Vec::new(), None)
    } else {
        let collected = state
            .storage
            .daily_collection(from, today, region_text.as_deref())
            .await?;
        // One line per day and channel: the storage answers per region too.
        let mut per_channel: std::collections::BTreeMap<(NaiveDate, &str), (i64, i64)> =
            std::collections::BTreeMap::new();
        for c in &collected {
            let line = per_channel
                .entry((c.day, c.channel_id.as_str()))
                .or_default();
            line.0 += c.payables;
            line.1 += c.applied_fen;
        }
        let days = per_channel
            .into_iter()
            .map(|((day, channel), (payables, fen))| DayRow {
                day: day.to_string(),
                channel: channel.to_owned(),
                payables,
                amount: yuan(fen),
            })
            .collect::<Vec<_>>();
        let now = state.clock.now().timestamp();
        let counts = state
            .storage
            .money_counts(&MoneyCountsQuery {
                region: region_text.as_deref(),
                today,
                differences_since: today - Duration::days(366),
                now,
                late_before: now - 2 * 86_400,
            })
            .await?;
        (
            days,
            Some(MoneyView {
                counts,
                limit: MONEY_COUNT_CAP,
            }),
        )
    };
    // Payment reminders (缴费提醒) of one region's year, for those who answer for the region.
    let (reminders, debit_notices) = match region {
        Some(code) if account.role != Role::StationOperator => {
            let accounts = state.storage.citizen_accounts();
            (
                Some(
                    accounts
                        .reminder_counts(code.as_str(), fee_year_number)
                        .await?,
                ),
                Some(
                    accounts
                        .debit_notice_counts(code.as_str(), fee_year_number)
                        .await?,
                ),
            )
        }
        _ => (None, None),
    };
    let mut calendar_warnings = Vec::new();
    let this_year = chrono::Datelike::year(&today);
    for year in [this_year, this_year + 1] {
        let mut missing = Vec::new();
        for r in all_regions
            .iter()
            .filter(|r| region.is_none_or(|code| r.code() == code))
        {
            if state
                .storage
                .calendar_year_record(r.code(), year)
                .await?
                .is_none()
            {
                missing.push(format!("{}（{}）", r.name(), r.code()));
            }
        }
        if !missing.is_empty() {
            calendar_warnings.push(format!(
                "尚未设置{year}年节假日日历：{}。该年的退费到期日只按周末推算，可能早于实际工作日。",
                missing.join("、")
            ));
        }
    }
    let rate_chart = rate_chart_json(&stations);
    let daily_chart = daily_chart_json(&collected_days(&days), from, today);
    html(&DashboardPage {
        chrome: Chrome::new(&user, "dashboard", "征缴进度"),
        fee_year: fee_year_number,
        as_of,
        years,
        regions: all_regions
            .iter()
            .map(|r| (r.code().to_string(), r.name().to_owned()))
            .collect(),
        region: region_text.unwrap_or_default(),
        may_choose_region: account.region.is_none(),
        stations,
        total,
        days,
        money,
        reminders,
        debit_notices,
        calendar_warnings,
        may_set_calendar: account.role == Role::Admin,
        password_changed: query.password.as_deref() == Some("changed"),
        rate_chart,
        daily_chart,
    })
}

fn collected_days(days: &[DayRow]) -> Vec<(String, String, i64)> {
    days.iter()
        .map(|d| (d.day.clone(), d.channel.clone(), d.payables))
        .collect()
}

/// The per-station payment rate chart: bars with the 70 % and 80 % lines.
fn rate_chart_json(stations: &[StationProgress]) -> String {
    let several_regions = stations.iter().any(|s| s.region != stations[0].region);
    serde_json::json!({
        "kind": "rate",
        "categories": stations.iter().map(|s| if several_regions { format!("{}·{}", s.region, s.station) } else { s.station.clone() }).collect::<Vec<_>>(),
        "values": stations.iter().map(|s| s.rate_permille as f64 / 10.0).collect::<Vec<_>>(),
        "good": GOOD_RATE_PERMILLE / 10,
        "warn": WARN_RATE_PERMILLE / 10,
    })
    .to_string()
}

/// Daily collection per channel: one stacked bar per day, a series per channel.
fn daily_chart_json(days: &[(String, String, i64)], from: NaiveDate, to: NaiveDate) -> String {
    let mut dates = Vec::new();
    let mut d = from;
    while d <= to {
        dates.push(d.to_string());
        d += Duration::days(1);
    }
    let mut channels: Vec<String> = days.iter().map(|(_, c, _)| c.clone()).collect();
    channels.sort();
    channels.dedup();
    let series: Vec<serde_json::Value> = channels
        .iter()
        .map(|c| {
            let data: Vec<i64> = dates
                .iter()
                .map(|day| {
                    days.iter()
                        .filter(|(d, ch, _)| d == day && ch == c)
                        .map(|(_, _, n)| n)
                        .sum()
                })
                .collect();
            serde_json::json!({ "name": c, "data": data })
        })
        .collect();
    serde_json::json!({
        "kind": "daily",
        "categories": dates.iter().map(|d| d[5..].to_owned()).collect::<Vec<_>>(),
        "series": series,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(station: &str, standing: &'static str, persons: i64) -> ProgressRow {
        ProgressRow {
            region: yibao_domain::RegionCode::parse("320600").expect("a region code"),
            station_code: Some(station.into()),
            standing,
            persons,
            owed_fen: 0,
        }
    }

    #[test]
    fn the_rate_counts_the_paid_among_those_who_owe() {
        let (stations, total) = progress_table(&[
            row("A", "paid", 8),
            row("A", "unpaid", 1),
            row("A", "not_assessed", 1),
            row("A", "exempt", 5),
            row("A", "enrolment_refused", 2),
            row("A", "not_enrolled", 3),
            row("B", "paid", 7),
            row("B", "unpaid", 3),
            row("C", "paid", 6),
            row("C", "unpaid", 4),
        ]);
        let a = &stations[0];
        assert_eq!((a.enrolled, a.assessed, a.paid, a.exempt), (15, 14, 8, 5));
        assert_eq!(
            (a.unpaid, a.not_assessed, a.refused, a.persons),
            (1, 1, 2, 20)
        );
        assert_eq!((a.rate.as_str(), a.band), ("80.0", "good"));
        assert_eq!(
            (stations[1].rate.as_str(), stations[1].band),
            ("70.0", "warn")
        );
        assert_eq!(
            (stations[2].rate.as_str(), stations[2].band),
            ("60.0", "behind")
        );
        assert_eq!(total.paid, 21);
        assert_eq!(total.persons, 40);
    }
}
