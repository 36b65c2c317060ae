//! 核定: the centre's administrator assesses a region's fee year in bulk through the same
//! service as `POST /api/v1/regions/{region}/fee-years/{year}/assessment` (renewal of last year's
//! insured, then a payable for every enrolled person without one; running it again creates
//! nothing), audited as `assessment.run` like the API, and sees what it did.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use yibao_domain::{FeeYear, RegionCode};
use yibao_server::admin::audit;
use yibao_server::services::assessment::{assess_region, AssessReport};
use yibao_server::{AppState, ErrorCode};

use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// The page's routes (merged into [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new().route("/console/assessment", get(form).post(run))
}

/// A region with the fee years it has a policy for.
pub struct RegionLine {
    pub code: String,
    pub name: String,
    pub years: String,
}

/// What a run did.
pub struct Done {
    pub region: String,
    pub fee_year: u16,
    pub renewed: u64,
    pub created: u64,
    pub exempt: u64,
    pub amount: String,
}

impl Done {
    fn of(report: &AssessReport, region_name: &str) -> Done {
        Done {
            region: format!("{region_name}（{}）", report.region),
            fee_year: report.fee_year,
            renewed: report.renewed,
            created: report.created,
            exempt: report.exempt,
            amount: yuan(report.amount_fen),
        }
    }
}

#[derive(Template)]
#[template(path = "assessment/run.html")]
pub struct AssessmentPage {
    pub chrome: Chrome,
    pub regions: Vec<RegionLine>,
    pub region: String,
    pub fee_year: String,
    pub region_error: Option<String>,
    pub fee_year_error: Option<String>,
    pub done: Option<Done>,
}

#[derive(Deserialize, Default)]
pub struct AssessForm {
    #[serde(default)]
    region: String,
    #[serde(default)]
    fee_year: String,
}

/// At most this many regions are listed (a province has a few dozen).
const MAX_REGIONS: usize = 500;

async fn page_of(
    state: &AppState,
    user: &ConsoleUser,
    form: &AssessForm,
) -> Result<AssessmentPage, PageError> {
    let mut regions = Vec::new();
    for region in state.storage.list_regions().await?.iter().take(MAX_REGIONS) {
        let mut years: Vec<u16> = state
            .storage
            .list_fee_policies(region.code())
            .await?
            .iter()
            .map(|p| p.fee_year().get())
            .collect();
        years.sort_unstable();
        regions.push(RegionLine {
            code: region.code().to_string(),
            name: region.name().to_owned(),
            years: years
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join("、"),
        });
    }
    let region = if form.region.is_empty() {
        regions.first().map(|r| r.code.clone()).unwrap_or_default()
    } else {
        form.region.clone()
    };
    let fee_year = if form.fee_year.is_empty() {
        regions
            .iter()
            .find(|r| r.code == region)
            .and_then(|r| r.years.rsplit('、').next().map(str::to_owned))
            .unwrap_or_default()
    } else {
        form.fee_year.clone()
    };
    Ok(AssessmentPage {
        chrome: Chrome::new(user, "assessment", "年度核定"),
        regions,
        region,
        fee_year,
        region_error: None,
        fee_year_error: None,
        done: None,
    })
}

/// `GET /console/assessment`: the form (administrator only).
pub async fn form(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    html(&page_of(&state, &user, &AssessForm::default()).await?)
}

/// `POST /console/assessment` (`region`, `fee_year`): runs the assessment and shows its counts;
/// an unknown region or a year without a fee policy is a message beside its field.
pub async fn run(
    State(state): State<AppState>,
    CsrfForm(user, form): CsrfForm<AssessForm>,
) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    let form = AssessForm {
        region: form.region.trim().chars().take(20).collect(),
        fee_year: form.fee_year.trim().chars().take(10).collect(),
    };
    let mut page = page_of(&state, &user, &form).await?;
    let region = match RegionCode::parse(&form.region) {
        Ok(code) => match page.regions.iter().find(|r| r.code == code.to_string()) {
            Some(line) => Some((code, line.name.clone())),
            None => {
                page.region_error = Some(format!(
                    "统筹区 {code} 未在本系统登记，请从列表中选择统筹区"
                ));
                None
            }
        },
        Err(e) => {
            page.region_error = Some(format!("请选择统筹区（{e}）"));
            None
        }
    };
    let fee_year = match form.fee_year.parse::<i64>().ok().map(FeeYear::new) {
        Some(Ok(year)) => Some(year),
        _ => {
            page.fee_year_error = Some("请填写四位数的缴费年度，如 2027".into());
            None
        }
    };
    let (Some((region, region_name)), Some(fee_year)) = (region, fee_year) else {
        return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let report = assess_region(
        state.storage.as_ref(),
        region,
        fee_year,
        user.staff.username(),
        state.clock.today(),
        &|_| {},
    )
    .await;
    let report = match report {
        Ok(report) => report,
        Err(e) if e.code == ErrorCode::NoFeePolicy => {
            page.fee_year_error = Some(e.message);
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(e.into()),
    };
    let mut detail = serde_json::to_value(&report).unwrap_or_default();
    if let Some(map) = detail.as_object_mut() {
        map.insert("via".into(), "console".into());
    }
    audit(
        &state,
        &user.staff,
        "assessment.run",
        Some(region),
        &fee_year.to_string(),
        detail,
    )
    .await?;
    page.done = Some(Done::of(&report, &region_name));
    html(&page)
}
