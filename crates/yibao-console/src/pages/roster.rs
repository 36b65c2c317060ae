//! 名册导入: a service station clerk or the centre uploads a roster (花名册, CSV in UTF-8 or
//! GB18030, or XLSX) through the same import service as `POST /api/v1/rosters`, with the same
//! scope rule (a station operator's rows may only create people or change their own station's),
//! and sees on the page what was taken and every rejected row with its code and reason.
//!
//! The form is `multipart/form-data`. Its CSRF token must come before the file: the `_csrf`
//! field (the form puts it first) or the `X-CSRF-Token` header; a file met before a valid token
//! is refused without being read. The file is streamed to a temporary file, at most
//! [`MAX_ROSTER_BYTES`] (the API's limit), and imported from there.

use std::io::Write;

use askama::Template;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use yibao_domain::FeeYear;
use yibao_roster_file::Limits;
use yibao_server::services::roster_import::{
    import_roster, keep_rejection_file, read_rejection_file, template_csv, ImportReport,
    ImportScope, MAX_KEPT_REJECTED_ROWS,
};
use yibao_server::{AppState, ErrorCode, ServiceError};

use crate::jobs::{
    self, JobFailed, JobView, JobWait, Jobs, ProgressFragment, ProgressReporter, RunningPanel,
    RunningView, Started,
};
use crate::session::{verify_csrf, ConsoleUser, CSRF_FIELD};
use crate::view::Chrome;
use crate::{html, render_with_status, PageError};

/// Largest roster file accepted: the JSON API's limit (64 MiB, about 500 000 rows); larger
/// files go through `yibao import roster` on the server.
pub const MAX_ROSTER_BYTES: usize = yibao_server::admin::rosters::ROSTER_UPLOAD_LIMIT_BYTES;

/// The whole form's body: the file and room for the form's other fields.
pub const MAX_ROSTER_BODY_BYTES: usize = MAX_ROSTER_BYTES + 64 * 1024;

/// Rejected rows listed on the page; the counts are always complete.
pub const MAX_SHOWN_REJECTIONS: usize = 1_000;

/// Longest text field of the form read (`_csrf`, `fee_year`).
const MAX_TEXT_FIELD_BYTES: usize = 256;

/// The page's routes (merged into [`crate::router`]), with the upload's own body limit.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console/roster",
            get(form)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_ROSTER_BODY_BYTES)),
        )
        .route("/console/roster/template.csv", get(template))
        .route("/console/roster/rejections/{import_id}", get(rejections))
        .route("/console/roster/jobs/{id}", get(job_page))
        .route("/console/roster/jobs/{id}/progress", get(job_progress))
}

/// The imports running or done in the background (an `Extension` of the console's router).
pub type RosterJobs = Jobs<RosterResult>;

/// What a finished import shows: its result, or why the file was not imported.
pub type RosterResult = Result<Outcome, RosterFailure>;

/// Why a roster was not imported, shown beside the field it is about, or as an error page.
#[derive(Clone)]
pub enum RosterFailure {
    File(String),
    FeeYear(String),
    Page(PageError),
}

/// One rejected row as the page lists it.
#[derive(Clone)]
pub struct RejectedLine {
    pub row: usize,
    pub column: String,
    pub code: String,
    pub reason: String,
}

/// What an import did.
#[derive(Clone)]
pub struct Outcome {
    pub file_name: String,
    pub rows_read: u64,
    /// Rows taken: every row read that was not rejected. (A row may count both as 新登记参保 and
    /// as 信息已更新: a known person whose details changed and who is enrolled for the year.)
    pub accepted: u64,
    pub enrolled: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub encoding: &'static str,
    pub sheet: Option<String>,
    pub unknown_columns: String,
    pub suggestions: Vec<String>,
    pub rejections: Vec<RejectedLine>,
    /// Fewer rejections listed than there are.
    pub more_rejections: bool,
    /// The import whose rejection file (未通过明细) is kept for download.
    pub rejection_file: Option<String>,
}

impl Outcome {
    fn of(report: &ImportReport) -> Outcome {
        let s = &report.summary;
        Outcome {
            file_name: s.file_name.clone(),
            rows_read: s.rows_read,
            accepted: s.rows_read.saturating_sub(s.rejected),
            enrolled: s.enrolled,
            updated: s.updated,
            unchanged: s.unchanged,
            rejected: s.rejected,
            encoding: match (report.sheet.is_some(), report.encoding) {
                (true, _) => "Excel 工作簿（.xlsx）",
                (false, "utf8_bom") => "CSV，UTF-8（带BOM）",
                (false, "gb18030") => "CSV，GB18030（含GBK）",
                _ => "CSV，UTF-8",
            },
            sheet: report.sheet.clone(),
            unknown_columns: report.unknown_columns.join("、"),
            suggestions: report
                .column_suggestions
                .iter()
                .map(|c| format!("“{}”可能应为“{}”", c.found, c.expected))
                .collect(),
            rejections: report
                .rejections
                .iter()
                .take(MAX_SHOWN_REJECTIONS)
                .map(|r| RejectedLine {
                    row: r.row,
                    column: r.column.clone(),
                    code: r.code.clone(),
                    reason: r.reason.clone(),
                })
                .collect(),
            more_rejections: report.rejections.len() > MAX_SHOWN_REJECTIONS
                || report.rejections_truncated,
            rejection_file: None,
        }
    }
}

#[derive(Template)]
#[template(path = "roster/upload.html")]
pub struct UploadPage {
    pub chrome: Chrome,
    pub fee_year: String,
    pub file_error: Option<String>,
    pub fee_year_error: Option<String>,
    pub outcome: Option<Outcome>,
    /// An import still running in the background.
    pub running: Option<RunningPanel>,
    pub limit_mib: usize,
    pub shown_limit: usize,
    pub kept_limit: usize,
}

impl UploadPage {
    fn new(user: &ConsoleUser) -> UploadPage {
        UploadPage {
            chrome: Chrome::new(user, "roster", "名册导入"),
            fee_year: String::new(),
            file_error: None,
            fee_year_error: None,
            outcome: None,
            running: None,
            limit_mib: MAX_ROSTER_BYTES / (1024 * 1024),
            shown_limit: MAX_SHOWN_REJECTIONS,
            kept_limit: MAX_KEPT_REJECTED_ROWS,
        }
    }
}

/// `GET /console/roster`: the upload form (administrator and station operators).
pub async fn form(user: ConsoleUser) -> Result<Response, PageError> {
    user.staff.may_change_anyone()?;
    html(&UploadPage::new(&user))
}

/// `GET /console/roster/template.csv`: the roster template (every column, one example row).
pub async fn template(user: ConsoleUser) -> Result<Response, PageError> {
    user.staff.may_change_anyone()?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"roster-template.csv\"",
            ),
        ],
        template_csv(),
    )
        .into_response())
}

/// `GET /console/roster/rejections/{import_id}`: an import's rejection file (未通过明细) as
/// CSV, UTF-8 with a byte-order mark, for the uploader's scope only, within 30 days; audited as
/// `read.roster_rejections`. Corrected, it is uploaded again as a roster: its 行号, 错误列,
/// 错误代码 and 错误原因 columns are ignored by the importer.
pub async fn rejections(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(import_id): Path<String>,
) -> Result<Response, PageError> {
    let now = state.clock.now().timestamp();
    let file = read_rejection_file(state.storage.as_ref(), &user.staff, &import_id, now).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"roster-rejected.csv\"",
            ),
        ],
        file.content,
    )
        .into_response())
}

/// A file received: where it was written and what the user called it.
struct Received {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    name: String,
}

/// Why a file field could not be taken: shown beside the field.
enum FileProblem {
    Missing,
    WrongKind,
    TooLarge,
    Unreadable,
}

impl FileProblem {
    fn message(&self) -> String {
        match self {
            FileProblem::Missing => "请选择要上传的花名册文件（.csv 或 .xlsx）".into(),
            FileProblem::WrongKind => {
                "只能上传 .csv 或 .xlsx 格式的花名册，请在Excel中另存为这两种格式之一".into()
            }
            FileProblem::TooLarge => format!(
                "文件超过 {} MB，请分成几个文件上传，或请中心在服务器上用 yibao import roster 导入",
                MAX_ROSTER_BYTES / (1024 * 1024)
            ),
            FileProblem::Unreadable => "文件没有完整上传，请重新选择文件上传".into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            FileProblem::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

fn problem_of(error: &MultipartError) -> FileProblem {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        FileProblem::TooLarge
    } else {
        FileProblem::Unreadable
    }
}

/// A short text field, at most [`MAX_TEXT_FIELD_BYTES`].
async fn small_text(mut field: Field<'_>) -> Result<String, PageError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|_| PageError::bad_form("表单没有完整上传，请刷新页面后重试"))?
    {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Err(PageError::bad_form("表单内容过长，请刷新页面后重试"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| PageError::bad_form("表单内容有误，请刷新页面后重试"))
}

/// The file field streamed to a temporary file, at most [`MAX_ROSTER_BYTES`].
async fn receive_file(mut field: Field<'_>) -> Result<Result<Received, FileProblem>, PageError> {
    let name = field
        .file_name()
        .and_then(|n| std::path::Path::new(n).file_name())
        .map(|n| n.to_string_lossy().chars().take(200).collect::<String>())
        .unwrap_or_default();
    if name.is_empty() {
        // No file chosen: browsers send an empty part without a name.
        while let Ok(Some(_)) = field.chunk().await {}
        return Ok(Err(FileProblem::Missing));
    }
    let extension = std::path::Path::new(&name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(extension.as_str(), "csv" | "xlsx") {
        return Ok(Err(FileProblem::WrongKind));
    }
    let internal = |what: &'static str| {
        move |e: std::io::Error| PageError::Api(ServiceError::internal(what, e))
    };
    let dir = tempfile::tempdir().map_err(internal("console upload temp dir"))?;
    let path = dir.path().join(format!("upload.{extension}"));
    let mut file = std::fs::File::create(&path).map_err(internal("console upload create"))?;
    let mut size = 0usize;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len();
                if size > MAX_ROSTER_BYTES {
                    return Ok(Err(FileProblem::TooLarge));
                }
                file.write_all(&chunk)
                    .map_err(internal("console upload write"))?;
            }
            Ok(None) => break,
            Err(e) => return Ok(Err(problem_of(&e))),
        }
    }
    if size == 0 {
        return Ok(Err(FileProblem::Missing));
    }
    file.flush().map_err(internal("console upload flush"))?;
    Ok(Ok(Received {
        _dir: dir,
        path,
        name,
    }))
}

/// `POST /console/roster` (multipart: `_csrf`, `fee_year`, `file`): imports the roster and shows
/// the result; a file that cannot be read is a message beside the field.
pub async fn upload(
    State(state): State<AppState>,
    user: ConsoleUser,
    Extension(jobs): Extension<RosterJobs>,
    wait: Option<Extension<JobWait>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    // The header, when sent, was checked by `ConsoleUser`; a form sends the field first.
    let mut csrf_checked = verify_csrf(&user, &headers, None).is_ok();
    let scope = ImportScope::of_staff(&user.staff)?;
    let mut multipart =
        multipart.map_err(|_| PageError::bad_form("请通过页面上的表单选择文件上传"))?;
    let mut page = UploadPage::new(&user);
    let mut received: Option<Result<Received, FileProblem>> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                received = Some(Err(problem_of(&e)));
                break;
            }
        };
        match field.name() {
            Some(CSRF_FIELD) => {
                let sent = small_text(field).await?;
                verify_csrf(&user, &HeaderMap::new(), Some(&sent))?;
                csrf_checked = true;
            }
            Some("fee_year") => page.fee_year = small_text(field).await?.trim().to_owned(),
            Some("file") => {
                if !csrf_checked {
                    // Nothing of a request that may come from another site is read or stored.
                    return Err(PageError::CrossSite);
                }
                if received.is_some() {
                    return Err(PageError::bad_form("一次只能上传一个花名册文件"));
                }
                let outcome = receive_file(field).await?;
                let stop = matches!(
                    outcome,
                    Err(FileProblem::TooLarge | FileProblem::Unreadable)
                );
                received = Some(outcome);
                if stop {
                    break;
                }
            }
            // Unknown fields are skipped unread.
            _ => {}
        }
    }
    if !csrf_checked {
        return Err(PageError::CrossSite);
    }
    let fee_year = if page.fee_year.is_empty() {
        None
    } else {
        match page.fee_year.parse::<i64>().ok().map(FeeYear::new) {
            Some(Ok(year)) => Some(year),
            _ => {
                page.fee_year_error =
                    Some("请填写四位数的缴费年度，如 2027；不填则登记到当前开放的年度".into());
                None
            }
        }
    };
    let file = match received.unwrap_or(Err(FileProblem::Missing)) {
        Ok(file) => file,
        Err(problem) => {
            page.file_error = Some(problem.message());
            return render_with_status(&page, problem.status());
        }
    };
    if page.fee_year_error.is_some() {
        return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let wait = wait.map(|w| w.0).unwrap_or_default();
    let owner = user.staff.username().to_owned();
    let staff = user.staff.clone();
    let label = format!("正在导入花名册 {}", file.name);
    let started = jobs
        .start(&owner, label, wait.0, move |progress| async move {
            import_in_background(&state, &staff, &scope, file, fee_year, &progress).await
        })
        .await?;
    match started {
        Started::Done(result) => finished_page(page, result),
        Started::Running(id) => Ok(jobs::see_other(&format!("/console/roster/jobs/{id}"))),
    }
}

/// The import itself, run as a job: the report as the page shows it, or why the file was not
/// imported.
async fn import_in_background(
    state: &AppState,
    staff: &yibao_server::auth::Staff,
    scope: &ImportScope,
    file: Received,
    fee_year: Option<FeeYear>,
    progress: &ProgressReporter,
) -> RosterResult {
    let report = import_roster(
        state.storage.as_ref(),
        &file.path,
        &file.name,
        scope,
        state.clock.today(),
        fee_year,
        Limits::default(),
        &|p| progress.report(p),
    )
    .await;
    match report {
        Ok(report) => {
            let mut outcome = Outcome::of(&report);
            let now = state.clock.now().timestamp();
            if keep_rejection_file(state.storage.as_ref(), staff, &report, now)
                .await
                .map_err(|e| RosterFailure::Page(e.into()))?
            {
                outcome.rejection_file = Some(report.summary.import_id.clone());
            }
            Ok(outcome)
        }
        Err(e)
            if matches!(
                e.code,
                ErrorCode::BadRosterFile | ErrorCode::BadRosterHeader
            ) =>
        {
            Err(RosterFailure::File(format!(
                "{}（{}）",
                e.message, file.name
            )))
        }
        Err(e) if e.code == ErrorCode::InvalidFeeYear || e.code == ErrorCode::NoFeePolicy => {
            Err(RosterFailure::FeeYear(e.message))
        }
        Err(e) => Err(RosterFailure::Page(e.into())),
    }
}

/// The upload page with a finished import's result, or its errors beside their fields.
fn finished_page(
    mut page: UploadPage,
    result: Result<RosterResult, JobFailed>,
) -> Result<Response, PageError> {
    match result {
        Ok(Ok(outcome)) => {
            page.outcome = Some(outcome);
            html(&page)
        }
        Ok(Err(RosterFailure::File(message))) => {
            page.file_error = Some(message);
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Ok(Err(RosterFailure::FeeYear(message))) => {
            page.fee_year_error = Some(message);
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Ok(Err(RosterFailure::Page(error))) => Err(error),
        Err(JobFailed) => Err(PageError::Api(ServiceError::of(ErrorCode::InternalError))),
    }
}

/// `GET /console/roster/jobs/{id}`: an import running in the background, with its progress, or
/// its result once done; only for the staff member who started it.
pub async fn job_page(
    user: ConsoleUser,
    Extension(jobs): Extension<RosterJobs>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.staff.may_change_anyone()?;
    let page = UploadPage::new(&user);
    match jobs.view(&id, user.staff.username()) {
        None => Err(unknown_job()),
        Some(JobView::Finished(result)) => finished_page(page, result),
        Some(JobView::Running(view)) => html(&UploadPage {
            running: Some(running_panel(&id, view)),
            ..page
        }),
    }
}

fn running_panel(id: &str, view: RunningView) -> RunningPanel {
    RunningPanel::new("/console/roster", id, view, "行")
}

/// `GET /console/roster/jobs/{id}/progress` (htmx, every second): the progress display, or, once
/// the import is done, `HX-Refresh` so that the page shows its result.
pub async fn job_progress(
    user: ConsoleUser,
    Extension(jobs): Extension<RosterJobs>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.staff.may_change_anyone()?;
    match jobs.view(&id, user.staff.username()) {
        None => Err(unknown_job()),
        Some(JobView::Finished(_)) => Ok(jobs::refresh_page()),
        Some(JobView::Running(view)) => html(&ProgressFragment {
            job: running_panel(&id, view),
        }),
    }
}

fn unknown_job() -> PageError {
    PageError::not_found(
        "没有这个导入任务：导入结果只保留1小时，且只有上传的人能看；请到名册导入页查看或重新上传",
    )
}
