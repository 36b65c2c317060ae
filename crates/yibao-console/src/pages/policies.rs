//! 费率与日历: a region's fee policies by fee year and its holiday calendar by year, for every
//! staff reader (a station operator or tax collector sees their own region; the administrator and
//! auditors choose one). The administrator replaces a calendar year through the service the API's
//! handler calls (as `PUT /api/v1/regions/{region}/calendars/{year}`, audited `calendar.put`), the
//! days checked by the domain's parser (`CalendarYear::new`) with the reason beside the field.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_domain::{CalendarYear, CoverRules, DayKind, FeeYear, RegionCode};
use yibao_server::{AppState, ErrorCode};
use yibao_storage::Role;

use crate::pages::desk;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// Most days typed into one list of a calendar year.
pub const MAX_DAYS: usize = 366;
/// Longest text of one list (366 dates and separators).
const MAX_DAYS_TEXT: usize = 8 * 1024;

pub struct PolicyLine {
    pub fee_year: u16,
    pub window: String,
    pub late: bool,
    pub age_reference: String,
    pub adult_age: u32,
    /// (category, total, 大病保险, 照护保险), yuan.
    pub amounts: Vec<(&'static str, String, String, String)>,
}

pub struct CalendarLine {
    pub year: i32,
    pub source: String,
    pub holidays: String,
    pub working_days: String,
}

#[derive(Default, Deserialize)]
pub struct CalendarFields {
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub year: String,
    #[serde(default)]
    pub holidays: String,
    #[serde(default)]
    pub working_days: String,
}

#[derive(Template)]
#[template(path = "desk/policies.html")]
pub struct PoliciesPage {
    pub chrome: Chrome,
    pub region: String,
    /// Regions to choose from (none: the reader's own region is fixed).
    pub regions: Vec<(String, String)>,
    pub policies: Vec<PolicyLine>,
    pub calendars: Vec<CalendarLine>,
    pub admin: bool,
    pub fields: CalendarFields,
    pub errors: Vec<(&'static str, String)>,
    pub notice: Option<String>,
    /// The fee policy form's values, by field name (`fee_year`, `opens`, `adult_total` …).
    pub policy_form: std::collections::BTreeMap<String, String>,
    /// The categories of the form: (code, name).
    pub categories: Vec<(&'static str, &'static str)>,
}

impl PoliciesPage {
    pub fn pf(&self, name: &str) -> &str {
        self.policy_form.get(name).map_or("", String::as_str)
    }

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Deserialize)]
pub struct RegionQuery {
    region: Option<String>,
}

/// The region shown: one's own when the account has one, else the one asked for, else the first.
async fn region_for(
    state: &AppState,
    user: &ConsoleUser,
    asked: Option<&str>,
) -> Result<(RegionCode, Vec<(String, String)>), PageError> {
    if let Some(own) = user.account().region {
        return Ok((own, Vec::new()));
    }
    let regions = desk::regions(state).await?;
    let code = match asked.map(str::trim).filter(|r| !r.is_empty()) {
        Some(text) => RegionCode::parse(text).map_err(yibao_server::ServiceError::from)?,
        None => match regions.first() {
            Some((code, _)) => RegionCode::parse(code).map_err(yibao_server::ServiceError::from)?,
            None => return Err(PageError::not_found("系统尚未登记统筹区")),
        },
    };
    if !regions.iter().any(|(c, _)| *c == code.to_string()) {
        return Err(PageError::not_found("未找到该统筹区"));
    }
    Ok((code, regions))
}

async fn page(
    state: &AppState,
    user: &ConsoleUser,
    asked: Option<&str>,
) -> Result<PoliciesPage, PageError> {
    let (code, regions) = region_for(state, user, asked).await?;
    let mut policies: Vec<PolicyLine> = state
        .storage
        .list_fee_policies(code)
        .await?
        .iter()
        .map(|p| PolicyLine {
            fee_year: p.fee_year().get(),
            window: match p.cover_rules().waiting.extension_until {
                Some(until) => format!(
                    "{} 至 {}（延长至 {until}）",
                    p.window().opens(),
                    p.window().closes()
                ),
                None => format!("{} 至 {}", p.window().opens(), p.window().closes()),
            },
            late: p.late_payment_allowed(),
            age_reference: p.age_reference_date().to_string(),
            adult_age: p.adult_age(),
            amounts: p
                .amounts()
                .map(|(category, a)| {
                    (
                        category.name_zh(),
                        yuan(a.total().as_fen()),
                        yuan(
                            a.component(yibao_domain::Component::CriticalIllness)
                                .as_fen(),
                        ),
                        yuan(a.component(yibao_domain::Component::LongTermCare).as_fen()),
                    )
                })
                .collect(),
        })
        .collect();
    policies.sort_by_key(|p| std::cmp::Reverse(p.fee_year));
    let working = state.storage.working_calendar(code).await?;
    let mut years: Vec<i32> = working.years().collect();
    years.sort_unstable_by_key(|y| std::cmp::Reverse(*y));
    let mut calendars = Vec::new();
    for year in years.into_iter().take(20) {
        if let Some(record) = state.storage.calendar_year_record(code, year).await? {
            let list = |kind: DayKind| {
                record
                    .days
                    .iter()
                    .filter(|d| d.kind == kind)
                    .map(|d| d.day.format("%m-%d").to_string())
                    .collect::<Vec<_>>()
                    .join("、")
            };
            calendars.push(CalendarLine {
                year,
                source: match (&record.title, record.published_on) {
                    (Some(t), Some(on)) => format!("{t}（{on}）"),
                    (Some(t), None) => t.clone(),
                    _ => "本统筹区自行设置".to_owned(),
                },
                holidays: list(DayKind::Holiday),
                working_days: list(DayKind::Working),
            });
        }
    }
    let region = code.to_string();
    Ok(PoliciesPage {
        chrome: Chrome::new(user, "policies", "费率与日历"),
        admin: user.account().role == Role::Admin,
        fields: CalendarFields {
            region: region.clone(),
            ..CalendarFields::default()
        },
        region,
        regions,
        policies,
        calendars,
        errors: Vec::new(),
        notice: None,
        policy_form: std::collections::BTreeMap::new(),
        categories: yibao_domain::Category::ALL
            .iter()
            .map(|c| (c.code(), c.name_zh()))
            .collect(),
    })
}

/// `GET /console/policies?region=`.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(q): Query<RegionQuery>,
) -> Result<Response, PageError> {
    html(&page(&state, &user, q.region.as_deref()).await?)
}

/// The dates of one list (separated by spaces, commas, 、 or new lines), each `YYYY-MM-DD`.
fn dates_in(text: &str) -> Result<Vec<NaiveDate>, String> {
    if text.len() > MAX_DAYS_TEXT {
        return Err(format!("最多填写{MAX_DAYS}个日期"));
    }
    let mut days = Vec::new();
    for token in text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | ';' | '；'))
        .filter(|t| !t.is_empty())
    {
        let day = NaiveDate::parse_from_str(token, "%Y-%m-%d")
            .map_err(|_| format!("“{token}”不是日期，请写成 YYYY-MM-DD"))?;
        days.push(day);
    }
    if days.len() > MAX_DAYS {
        return Err(format!("最多填写{MAX_DAYS}个日期"));
    }
    Ok(days)
}

/// `POST /console/policies/calendar`: replaces a region's calendar year (administrator).
pub async fn put_calendar(
    State(state): State<AppState>,
    CsrfForm(user, fields): CsrfForm<CalendarFields>,
) -> Result<Response, PageError> {
    let admin = desk::admin_of(&user)?;
    let mut view = page(&state, &user, Some(&fields.region)).await?;
    let mut errors = Vec::new();
    let year = fields
        .year
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2100).contains(y));
    if year.is_none() {
        errors.push(("year", "年份应为2000至2100之间的四位数".to_owned()));
    }
    let mut lists = Vec::new();
    for (field, text, kind) in [
        ("holidays", &fields.holidays, DayKind::Holiday),
        ("working_days", &fields.working_days, DayKind::Working),
    ] {
        match dates_in(text) {
            Ok(days) => {
                // The domain's own rules (the year, no holiday on a weekend, no worked weekday).
                if let Some(year) = year {
                    if let Err(e) = CalendarYear::new(year, days.iter().map(|d| (*d, kind))) {
                        errors.push((field, e.to_string()));
                    }
                }
                lists.push(days);
            }
            Err(message) => {
                errors.push((field, message));
                lists.push(Vec::new());
            }
        }
    }
    let (Some(year), true) = (year, errors.is_empty()) else {
        view.fields = fields;
        view.errors = errors;
        return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let input = yibao_server::services::setup::CalendarInput {
        holidays: lists[0].clone(),
        working_days: lists[1].clone(),
    };
    let done = yibao_server::services::setup::replace_calendar_year(
        &state,
        &admin.0,
        &view.region,
        year,
        &input,
    )
    .await;
    if let Err(e) = done {
        if e.code == ErrorCode::InvalidCalendar {
            view.fields = fields;
            view.errors = vec![("holidays", e.message)];
            return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
        }
        return Err(e.into());
    }
    let mut view = page(&state, &user, Some(&fields.region)).await?;
    view.notice = Some(format!(
        "已保存统筹区 {} {year} 年的节假日安排（{} 个节假日，{} 个调休工作日）。",
        view.region,
        lists[0].len(),
        lists[1].len()
    ));
    html(&view)
}

/// Fields of the fee policy form that hold an amount (yuan): (field, category code, part).
const AMOUNT_FIELDS: [(&str, &str, &str); 12] = [
    ("adult_total", "adult", "total"),
    ("adult_critical", "adult", "critical"),
    ("adult_care", "adult", "care"),
    ("minor_not_in_school_total", "minor_not_in_school", "total"),
    (
        "minor_not_in_school_critical",
        "minor_not_in_school",
        "critical",
    ),
    ("minor_not_in_school_care", "minor_not_in_school", "care"),
    ("student_total", "student", "total"),
    ("student_critical", "student", "critical"),
    ("student_care", "student", "care"),
    ("newborn_total", "newborn", "total"),
    ("newborn_critical", "newborn", "critical"),
    ("newborn_care", "newborn", "care"),
];

/// `POST /console/policies/fee`: sets a region's fee policy for a fee year (administrator),
/// through the service the API's handler calls (as
/// `PUT /api/v1/regions/{region}/fee-policies/{fee_year}`, audited `fee_policy.put`); amounts in
/// yuan, each checked beside its field, the policy's own rules (parts within the total, the
/// window's order) by the domain.
pub async fn put_fee_policy(
    State(state): State<AppState>,
    CsrfForm(user, form): CsrfForm<std::collections::BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    use yibao_server::services::setup::{
        save_fee_policy, CategoryAmountInput, FeePolicyInputBody, WindowInput,
    };
    let admin = desk::admin_of(&user)?;
    let get = |k: &str| form.get(k).map_or("", |v| v.trim());
    let mut view = page(&state, &user, Some(get("region"))).await?;
    let mut errors: Vec<(&'static str, String)> = Vec::new();
    let fee_year = get("fee_year")
        .parse::<i64>()
        .ok()
        .filter(|y| yibao_domain::FeeYear::new(*y).is_ok());
    if fee_year.is_none() {
        errors.push(("fee_year", "缴费年度应为四位数，如 2028".to_owned()));
    }
    let mut date = |name: &'static str| {
        NaiveDate::parse_from_str(get(name), "%Y-%m-%d")
            .map_err(|_| errors.push((name, "日期应为 YYYY-MM-DD".to_owned())))
            .ok()
    };
    let (opens, closes, reference) = (date("opens"), date("closes"), date("age_reference_date"));
    let adult_age = get("adult_age")
        .parse::<u32>()
        .ok()
        .filter(|a| (14..=25).contains(a));
    if adult_age.is_none() {
        errors.push(("adult_age", "成年年龄应为14至25之间的整数".to_owned()));
    }
    let mut amounts = std::collections::BTreeMap::new();
    for (name, category, part) in AMOUNT_FIELDS {
        let text = get(name);
        let fen = if text.is_empty() && part != "total" {
            0
        } else {
            match yibao_domain::Fen::parse_yuan(text) {
                Ok(f) => f.as_fen(),
                Err(e) => {
                    errors.push((name, e.to_string()));
                    0
                }
            }
        };
        let entry = amounts
            .entry(category.to_owned())
            .or_insert(CategoryAmountInput {
                total: 0,
                critical_illness: 0,
                long_term_care: 0,
            });
        match part {
            "total" => entry.total = fen,
            "critical" => entry.critical_illness = fen,
            _ => entry.long_term_care = fen,
        }
    }
    let shown = form.clone();
    let (Some(fee_year), Some(opens), Some(closes), Some(reference), Some(adult_age), true) = (
        fee_year,
        opens,
        closes,
        reference,
        adult_age,
        errors.is_empty(),
    ) else {
        view.policy_form = shown;
        view.errors = errors;
        return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
    };
    // The form sets the amounts and the window; the 2025 rules, loaded from a policy file, are
    // kept as they are.
    let kept = match (RegionCode::parse(&view.region), FeeYear::new(fee_year)) {
        (Ok(code), Ok(year)) => state.storage.get_fee_policy(code, year).await?,
        _ => None,
    };
    let cover_rules = kept.map_or_else(CoverRules::default, |p| p.cover_rules().clone());
    let body = FeePolicyInputBody {
        amounts,
        age_reference_date: reference,
        adult_age,
        window: WindowInput { opens, closes },
        late_payment_allowed: !get("late").is_empty(),
        cover_rules,
    };
    let done = save_fee_policy(&state, &admin.0, &view.region, fee_year, &body).await;
    if let Err(e) = done {
        if e.code == ErrorCode::InvalidRequest || e.code == ErrorCode::InvalidAmount {
            view.policy_form = shown;
            view.errors = vec![("policy", e.message)];
            return render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY);
        }
        return Err(e.into());
    }
    let mut view = page(&state, &user, Some(get("region"))).await?;
    view.notice = Some(format!(
        "已保存统筹区 {} {fee_year} 年度的缴费政策；已核定的应缴费信息金额不变。",
        view.region
    ));
    html(&view)
}
