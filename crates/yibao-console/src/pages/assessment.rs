//! 核定: the centre's administrator assesses a region's fee year in bulk through the same
//! service as `POST /api/v1/regions/{region}/fee-years/{year}/assessment` (renewal of last year's
//! insured, then a payable for every enrolled person without one; running it again creates
//! nothing), audited as `assessment.run` like the API, and sees what it did.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde::Deserialize;
use yibao_domain::{FeeYear, RegionCode};
use yibao_server::services::assessment::{assess_region, AssessReport};
use yibao_server::services::audit;
use yibao_server::{AppState, ErrorCode, ServiceError};

use crate::jobs::{
    self, JobFailed, JobView, JobWait, Jobs, ProgressFragment, ProgressReporter, RunningPanel,
    RunningView, Started,
};
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// The page's routes (merged into [`crate::router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/assessment", get(form).post(run))
        .route("/console/assessment/jobs/{id}", get(job_page))
        .route("/console/assessment/jobs/{id}/progress", get(job_progress))
}

/// The runs in the background (an `Extension` of the console's router).
pub type AssessmentJobs = Jobs<AssessmentResult>;

/// What a finished run shows.
pub type AssessmentResult = Result<Done, AssessmentFailure>;

/// Why a run did not finish: beside the fee year, or an error page.
#[derive(Clone)]
pub enum AssessmentFailure {
    FeeYear(String),
    Page(PageError),
}

/// A region with the fee years it has a policy for.
pub struct RegionLine {
    pub code: String,
    pub name: String,
    pub years: String,
}

/// What a run did.
#[derive(Clone)]
pub struct Done {
    pub region: String,
    /// The region's code, to keep it chosen in the form.
    pub region_code: String,
    pub fee_year: u16,
    pub renewed: u64,
    pub created: u64,
    pub exempt: u64,
    pub repriced: u64,
    pub amount: String,
}

impl Done {
    fn of(report: &AssessReport, region_name: &str) -> Done {
        Done {
            region: format!("{region_name}（{}）", report.region),
            region_code: report.region.clone(),
            fee_year: report.fee_year,
            renewed: report.renewed,
            created: report.created,
            exempt: report.exempt,
            repriced: report.repriced,
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
    /// A run still going in the background.
    pub running: Option<RunningPanel>,
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
        running: None,
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
    Extension(jobs): Extension<AssessmentJobs>,
    wait: Option<Extension<JobWait>>,
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
    let owner = user.staff.username().to_owned();
    let wait = wait.map(|w| w.0).unwrap_or_default();
    let staff = user.staff.clone();
    let label = format!("正在核定 {region_name}（{region}）{fee_year} 年度，生成应缴记录");
    let started = jobs
        .start(&owner, label, wait.0, move |progress| async move {
            assess_in_background(&state, &staff, region, &region_name, fee_year, &progress).await
        })
        .await?;
    match started {
        Started::Done(result) => finished_page(page, result),
        Started::Running(id) => Ok(jobs::see_other(&format!("/console/assessment/jobs/{id}"))),
    }
}

/// The assessment itself, run as a job, audited as `assessment.run` like the API.
async fn assess_in_background(
    state: &AppState,
    staff: &yibao_server::auth::Staff,
    region: RegionCode,
    region_name: &str,
    fee_year: FeeYear,
    progress: &ProgressReporter,
) -> AssessmentResult {
    let report = assess_region(
        state.storage.as_ref(),
        region,
        fee_year,
        staff.username(),
        state.clock.today(),
        &|p| progress.report(p),
    )
    .await;
    let report = match report {
        Ok(report) => report,
        Err(e) if e.code == ErrorCode::NoFeePolicy => {
            return Err(AssessmentFailure::FeeYear(e.message))
        }
        Err(e) => return Err(AssessmentFailure::Page(e.into())),
    };
    let mut detail = serde_json::to_value(&report).unwrap_or_default();
    if let Some(map) = detail.as_object_mut() {
        map.insert("via".into(), "console".into());
    }
    audit(
        state,
        staff,
        "assessment.run",
        Some(region),
        &fee_year.to_string(),
        detail,
    )
    .await
    .map_err(|e| AssessmentFailure::Page(e.into()))?;
    Ok(Done::of(&report, region_name))
}

/// The form with a finished run's counts, or its error beside the fee year.
fn finished_page(
    mut page: AssessmentPage,
    result: Result<AssessmentResult, JobFailed>,
) -> Result<Response, PageError> {
    match result {
        Ok(Ok(done)) => {
            page.done = Some(done);
            html(&page)
        }
        Ok(Err(AssessmentFailure::FeeYear(message))) => {
            page.fee_year_error = Some(message);
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Ok(Err(AssessmentFailure::Page(error))) => Err(error),
        Err(JobFailed) => Err(PageError::Api(ServiceError::of(ErrorCode::InternalError))),
    }
}

fn running_panel(id: &str, view: RunningView) -> RunningPanel {
    RunningPanel::new("/console/assessment", id, view, "条应缴记录")
}

fn unknown_job() -> PageError {
    PageError::not_found(
        "没有这个核定任务：核定结果只保留1小时，且只有发起的人能看；请到年度核定页重新核定（已生成的应缴记录不会重复生成）",
    )
}

/// `GET /console/assessment/jobs/{id}`: a run in the background with its progress, or its
/// counts once done; only for the administrator who started it.
pub async fn job_page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Extension(jobs): Extension<AssessmentJobs>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    let Some(view) = jobs.view(&id, user.staff.username()) else {
        return Err(unknown_job());
    };
    // A finished run keeps its region and year chosen in the form, as a quick one does.
    let form = match &view {
        JobView::Finished(Ok(Ok(done))) => AssessForm {
            region: done.region_code.clone(),
            fee_year: done.fee_year.to_string(),
        },
        _ => AssessForm::default(),
    };
    let page = page_of(&state, &user, &form).await?;
    match view {
        JobView::Finished(result) => finished_page(page, result),
        JobView::Running(view) => html(&AssessmentPage {
            running: Some(running_panel(&id, view)),
            ..page
        }),
    }
}

/// `GET /console/assessment/jobs/{id}/progress` (htmx, every second): the progress display, or
/// `HX-Refresh` once the run is done.
pub async fn job_progress(
    user: ConsoleUser,
    Extension(jobs): Extension<AssessmentJobs>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    match jobs.view(&id, user.staff.username()) {
        None => Err(unknown_job()),
        Some(JobView::Finished(_)) => Ok(jobs::refresh_page()),
        Some(JobView::Running(view)) => html(&ProgressFragment {
            job: running_panel(&id, view),
        }),
    }
}
