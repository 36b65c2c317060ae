//! Setting up an agency from zero: pooling regions, fee policies and holiday calendars, the same
//! checks for the admin API and the command line (`yibao region|fee-policy|calendar`). Also the
//! warning staff get when a collection window reaches into a year without a holiday calendar.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use yibao_domain::{
    CalendarNotice, CalendarYear, Category, CategoryAmount, CollectionWindow, Component,
    CoverRules, DayKind, FeePolicy, FeePolicyInput, FeeYear, Fen, PoolingRegion, RegionCode,
};
use yibao_storage::Storage;

use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::services::audit;
use crate::AppState;

/// Registers a pooling region (统筹区) or renames it.
pub async fn put_region(
    storage: &dyn Storage,
    code: RegionCode,
    name: &str,
) -> Result<PoolingRegion, ServiceError> {
    let region = PoolingRegion::new(code, name)
        .map_err(|e| ServiceError::new(ErrorCode::InvalidRegion, e.to_string()))?;
    storage.upsert_region(&region).await?;
    Ok(region)
}

/// The 404 a clerk gets for a region not registered here.
pub fn unknown_region(code: RegionCode) -> ServiceError {
    ServiceError::new(
        ErrorCode::NotFound,
        format!("统筹区 {code} 未在本系统登记（先用 yibao region add 或 PUT /api/v1/regions/{code} 登记）"),
    )
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryAmountInput {
    /// Total in fen, components included.
    pub total: i64,
    /// 大病保险 part, fen.
    #[serde(default)]
    pub critical_illness: i64,
    /// 照护保险 part, fen.
    #[serde(default)]
    pub long_term_care: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    pub opens: NaiveDate,
    pub closes: NaiveDate,
}

/// A fee policy as the API takes it (`PUT /api/v1/regions/{region}/fee-policies/{fee_year}`) and
/// as `yibao fee-policy load` reads it (with `region` and `fee_year` added), documented in
/// docs/setup.md.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeePolicyInputBody {
    /// Every category: `adult`, `minor_not_in_school`, `student`, `newborn`.
    pub amounts: BTreeMap<String, CategoryAmountInput>,
    pub age_reference_date: NaiveDate,
    #[serde(default = "default_adult_age")]
    pub adult_age: u32,
    pub window: WindowInput,
    #[serde(default)]
    pub late_payment_allowed: bool,
    /// The 2025 rules for waiting periods, back-payment and rewards, each setting defaulting to
    /// the national one (docs/rules-2025.md).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub cover_rules: CoverRules,
}

fn default_adult_age() -> u32 {
    18
}

/// Checks a fee policy and stores it (the region must be registered). Payables already assessed
/// keep their amounts.
pub async fn put_fee_policy(
    storage: &dyn Storage,
    code: RegionCode,
    fee_year: FeeYear,
    input: &FeePolicyInputBody,
) -> Result<FeePolicy, ServiceError> {
    if storage.get_region(code).await?.is_none() {
        return Err(unknown_region(code));
    }
    let invalid = |e: yibao_domain::FeePolicyError| {
        ServiceError::new(ErrorCode::InvalidRequest, e.to_string())
    };
    let money = |fen: i64| Fen::new_non_negative(fen).map_err(ServiceError::from);
    let mut amounts = BTreeMap::new();
    for (name, a) in &input.amounts {
        let category = Category::from_code(name).ok_or_else(|| {
            ServiceError::new(ErrorCode::InvalidRequest, format!("未知的人员类别“{name}”"))
        })?;
        let amount = CategoryAmount::including(
            money(a.total)?,
            &[
                (Component::CriticalIllness, money(a.critical_illness)?),
                (Component::LongTermCare, money(a.long_term_care)?),
            ],
        )
        .map_err(invalid)?;
        amounts.insert(category, amount);
    }
    let policy = FeePolicy::new(FeePolicyInput {
        region: code,
        fee_year,
        amounts,
        age_reference_date: input.age_reference_date,
        adult_age: input.adult_age,
        window: CollectionWindow::new(input.window.opens, input.window.closes).map_err(invalid)?,
        late_payment_allowed: input.late_payment_allowed,
        cover_rules: input.cover_rules.clone(),
    })
    .map_err(invalid)?;
    storage.put_fee_policy(&policy).await?;
    Ok(policy)
}

/// Sets a region's fee policy for a fee year as the administrator ([`put_fee_policy`]), forgetting
/// the one searches remembered; audited `fee_policy.put`.
pub async fn save_fee_policy(
    state: &AppState,
    staff: &Staff,
    region: &str,
    fee_year: i64,
    input: &FeePolicyInputBody,
) -> Result<FeePolicy, ServiceError> {
    staff.require_admin()?;
    let code = RegionCode::parse(region)?;
    let fee_year = FeeYear::new(fee_year)?;
    let policy = put_fee_policy(state.storage.as_ref(), code, fee_year, input).await?;
    state.fee_policies.forget(&(code, fee_year));
    audit(
        state,
        staff,
        "fee_policy.put",
        Some(code),
        &fee_year.to_string(),
        serde_json::to_value(&policy).unwrap_or_default(),
    )
    .await?;
    Ok(policy)
}

#[derive(Deserialize, ToSchema)]
pub struct CalendarInput {
    /// Weekdays off (法定节假日 and days in lieu).
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Weekends worked (调休).
    #[serde(default)]
    pub working_days: Vec<NaiveDate>,
}

/// Replaces a region's holiday calendar for a year as the administrator, as the State Council's
/// notice lists it; audited `calendar.put`.
pub async fn replace_calendar_year(
    state: &AppState,
    staff: &Staff,
    region: &str,
    year: i32,
    input: &CalendarInput,
) -> Result<CalendarYear, ServiceError> {
    staff.require_admin()?;
    let code = RegionCode::parse(region)?;
    if !(2000..=2100).contains(&year) || input.holidays.len() + input.working_days.len() > 366 {
        return Err(ServiceError::new(
            ErrorCode::InvalidCalendar,
            "年份应在2000至2100之间，且每年最多366天",
        ));
    }
    if state.storage.get_region(code).await?.is_none() {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("统筹区 {code} 未在本系统登记"),
        ));
    }
    let days = input
        .holidays
        .iter()
        .map(|d| (*d, DayKind::Holiday))
        .chain(input.working_days.iter().map(|d| (*d, DayKind::Working)));
    let calendar = CalendarYear::new(year, days)?;
    state.storage.put_calendar_year(code, &calendar).await?;
    state.calendars.forget(&code);
    audit(
        state,
        staff,
        "calendar.put",
        Some(code),
        &year.to_string(),
        serde_json::json!({"holidays": input.holidays, "working_days": input.working_days}),
    )
    .await?;
    Ok(calendar)
}

/// Loads a State Council notice into one region, or every registered region when `region` is
/// `None`. Returns the regions loaded. Idempotent; a region's own days are kept.
pub async fn load_calendar_notice(
    storage: &dyn Storage,
    notice: &CalendarNotice,
    region: Option<RegionCode>,
) -> Result<Vec<RegionCode>, ServiceError> {
    let regions = match region {
        Some(code) => {
            if storage.get_region(code).await?.is_none() {
                return Err(unknown_region(code));
            }
            vec![code]
        }
        None => {
            let mut codes: Vec<RegionCode> = storage
                .list_regions()
                .await?
                .iter()
                .map(PoolingRegion::code)
                .collect();
            // The sandbox (接入测试) is no region in production, but its refunds fall due by
            // the same calendar.
            let sandbox = yibao_domain::sandbox::sandbox_region();
            if storage.is_sandbox_region(sandbox).await? {
                codes.push(sandbox);
            }
            codes
        }
    };
    for code in &regions {
        storage.put_national_calendar_year(*code, notice).await?;
    }
    Ok(regions)
}

/// A collection window (fee policy) that reaches into a year without a holiday calendar: refund due
/// dates there count weekends alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CalendarWarning {
    pub region: String,
    pub region_name: String,
    pub fee_year: i64,
    pub window_opens: NaiveDate,
    pub window_closes: NaiveDate,
    /// The calendar year without a holiday calendar.
    pub year: i32,
    /// What staff should know and do, in Chinese.
    pub message: String,
}

/// Windows still open or to come (closing on or after `today`) of `region` (every region when
/// `None`) that reach into a year without a holiday calendar.
pub async fn calendar_warnings(
    storage: &dyn Storage,
    region: Option<&str>,
    today: NaiveDate,
) -> Result<Vec<CalendarWarning>, ServiceError> {
    let regions: Vec<PoolingRegion> = storage
        .list_regions()
        .await?
        .into_iter()
        .filter(|r| region.is_none_or(|code| r.code().as_str() == code))
        .collect();
    let mut warnings = Vec::new();
    for r in regions {
        let policies = storage.list_fee_policies(r.code()).await?;
        let current: Vec<&FeePolicy> = policies
            .iter()
            .filter(|p| p.window().closes() >= today)
            .collect();
        if current.is_empty() {
            continue;
        }
        let calendar = storage.working_calendar(r.code()).await?;
        for policy in current {
            let window = policy.window();
            for year in calendar.years_without_calendar(window.opens(), window.closes()) {
                warnings.push(CalendarWarning {
                    region: r.code().to_string(),
                    region_name: r.name().to_owned(),
                    fee_year: i64::from(policy.fee_year().get()),
                    window_opens: window.opens(),
                    window_closes: window.closes(),
                    year,
                    message: format!(
                        "{}（{}）{} 年度缴费期（{} 至 {}）延伸到 {year} 年，但系统没有 {year} 年的节假日安排：\
                         该年的退费到期日只按周末计算，可能早于实际。国务院办公厅通知发布后请用 \
                         yibao calendar load 导入。",
                        r.name(),
                        r.code(),
                        policy.fee_year(),
                        window.opens(),
                        window.closes()
                    ),
                });
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_policy_bodies_refuse_unknown_amount_fields() {
        let body: Result<FeePolicyInputBody, _> = serde_json::from_value(serde_json::json!({
            "amounts": {"adult": {"total": 43000, "critcal_illness": 2000}},
            "age_reference_date": "2021-01-01",
            "window": {"opens": "2020-11-01", "closes": "2020-12-20"}
        }));
        assert!(body.is_err(), "a misspelt component is not silently 0");
    }
}
