//! Long work started from a page (a roster import, an assessment) runs on the server in the
//! background, so that a clerk sees its progress and a closed tab or a slow proxy cannot cut it
//! short. The page that starts it waits [`QUICK_WAIT`] and shows the result at once when the work
//! is done by then (a small roster); otherwise it sends the browser to the job's own page, which
//! shows how far the work has come (htmx asks every second) and, when it is done, the result.
//!
//! Jobs live in the server's memory: a job's page answers only the staff member who started it,
//! for [`KEEP_FINISHED`] after it ended. A restart loses the page of a running job, not its
//! work: what was written stays written, and both imports and assessments may be run again
//! (rows already taken come back as 与已有信息相同, payables already made are not made twice).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use yibao_server::services::Progress;

use crate::PageError;

/// How long the page that starts a job waits for it before showing its progress page instead.
pub const QUICK_WAIT: Duration = Duration::from_secs(2);
/// A finished job's result is kept this long for its page.
pub const KEEP_FINISHED: Duration = Duration::from_secs(60 * 60);
/// Jobs of one kind running at once on the server; another is refused until one ends.
pub const MAX_RUNNING: usize = 4;
/// Jobs of one kind kept (running and finished); the oldest finished ones go first.
pub const MAX_KEPT: usize = 256;

/// How long the starting page waits ([`QUICK_WAIT`] unless a test layers another as an
/// `Extension`).
#[derive(Debug, Clone, Copy)]
pub struct JobWait(pub Duration);

impl Default for JobWait {
    fn default() -> Self {
        JobWait(QUICK_WAIT)
    }
}

/// The work panicked or was cancelled: its page says so instead of waiting forever.
#[derive(Debug, Clone, Copy)]
pub struct JobFailed;

struct Job<T> {
    owner: String,
    /// What the job does, as its page names it (正在导入花名册 chuzhou.csv …).
    label: String,
    started: Instant,
    ended: Option<Instant>,
    progress: Progress,
    outcome: Option<Result<T, JobFailed>>,
}

/// The jobs of one kind (`T` is what a finished one shows), shared by the console's handlers.
pub struct Jobs<T> {
    table: Arc<Mutex<HashMap<String, Job<T>>>>,
}

impl<T> Clone for Jobs<T> {
    fn clone(&self) -> Self {
        Jobs {
            table: self.table.clone(),
        }
    }
}

impl<T> Default for Jobs<T> {
    fn default() -> Self {
        Jobs {
            table: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// What a job's page shows.
pub enum JobView<T> {
    Running(RunningView),
    Finished(Result<T, JobFailed>),
}

/// A running job as its progress display shows it.
pub struct RunningView {
    /// What the job does.
    pub label: String,
    pub done: u64,
    pub total: Option<u64>,
    /// Whole per cent done, when the total is known.
    pub percent: Option<u64>,
    /// `mm:ss` since the job started.
    pub elapsed: String,
}

/// Where a started job stands when the starting page stops waiting.
pub enum Started<T> {
    /// Done within the wait: its result.
    Done(Result<T, JobFailed>),
    /// Still running: its page is `…/jobs/{id}`.
    Running(String),
}

impl<T: Clone + Send + 'static> Jobs<T> {
    /// Starts `work` for `owner`, giving it a way to report progress, and waits up to `wait`.
    /// Refused when [`MAX_RUNNING`] jobs of this kind are running.
    pub async fn start<W, F>(
        &self,
        owner: &str,
        label: String,
        wait: Duration,
        work: W,
    ) -> Result<Started<T>, PageError>
    where
        W: FnOnce(ProgressReporter) -> F,
        F: Future<Output = T> + Send + 'static,
    {
        let id = uuid::Uuid::new_v4().simple().to_string();
        {
            let mut table = self.lock();
            let running = table.values().filter(|j| j.ended.is_none()).count();
            if running >= MAX_RUNNING {
                return Err(PageError::bad_form(
                    "服务器上正在进行的同类任务较多，请过一两分钟再试",
                ));
            }
            prune(&mut table);
            table.insert(
                id.clone(),
                Job {
                    owner: owner.to_owned(),
                    label,
                    started: Instant::now(),
                    ended: None,
                    progress: Progress::default(),
                    outcome: None,
                },
            );
        }
        let reporter = ProgressReporter {
            table: Arc::new({
                let jobs = self.clone();
                let id = id.clone();
                move |p: Progress| {
                    if let Some(job) = jobs.lock().get_mut(&id) {
                        job.progress = p;
                    }
                }
            }),
        };
        // A job started by a write reads the primary as the request did (read_routing).
        let primary = yibao_storage::read_routing::primary_required();
        let work = work(reporter);
        let work = tokio::spawn(async move {
            if primary {
                yibao_storage::read_routing::on_primary(work).await
            } else {
                work.await
            }
        });
        let jobs = self.clone();
        let job_id = id.clone();
        let mut finished = tokio::spawn(async move {
            // A panic in the work ends the job as failed, not as running forever.
            let outcome = work.await.map_err(|_| JobFailed);
            if let Some(job) = jobs.lock().get_mut(&job_id) {
                job.ended = Some(Instant::now());
                job.outcome = Some(outcome.clone());
            }
            outcome
        });
        match tokio::time::timeout(wait, &mut finished).await {
            Ok(outcome) => Ok(Started::Done(outcome.unwrap_or(Err(JobFailed)))),
            Err(_) => Ok(Started::Running(id)),
        }
    }

    /// The job `id` as `owner` may see it; `None` when it does not exist, is someone else's or
    /// ended more than [`KEEP_FINISHED`] ago.
    pub fn view(&self, id: &str, owner: &str) -> Option<JobView<T>> {
        let mut table = self.lock();
        prune(&mut table);
        let job = table.get(id).filter(|j| j.owner == owner)?;
        Some(match &job.outcome {
            Some(outcome) => JobView::Finished(outcome.clone()),
            None => {
                let seconds = job.started.elapsed().as_secs();
                JobView::Running(RunningView {
                    label: job.label.clone(),
                    done: job.progress.done,
                    total: job.progress.total,
                    percent: job
                        .progress
                        .total
                        .filter(|t| *t > 0)
                        .map(|t| (job.progress.done.min(t) * 100) / t),
                    elapsed: format!("{:02}:{:02}", seconds / 60, seconds % 60),
                })
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job<T>>> {
        // A handler that panicked while holding the lock left nothing half-done in a table of
        // plain values.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops jobs that ended more than [`KEEP_FINISHED`] ago, and the oldest finished ones beyond
/// [`MAX_KEPT`].
fn prune<T>(table: &mut HashMap<String, Job<T>>) {
    table.retain(|_, j| j.ended.is_none_or(|e| e.elapsed() < KEEP_FINISHED));
    if table.len() >= MAX_KEPT {
        let mut ended: Vec<(Instant, String)> = table
            .iter()
            .filter_map(|(id, j)| j.ended.map(|e| (e, id.clone())))
            .collect();
        ended.sort();
        for (_, id) in ended.iter().take(table.len() + 1 - MAX_KEPT) {
            table.remove(id);
        }
    }
}

/// A running job as its page shows it: what it is doing, how far, and where to ask again.
pub struct RunningPanel {
    pub view: RunningView,
    pub page_url: String,
    pub poll_url: String,
    /// What is counted: 行, 条 …
    pub unit: &'static str,
}

impl RunningPanel {
    /// The job `id` of the page at `base` (its page `{base}/jobs/{id}`).
    pub fn new(base: &str, id: &str, view: RunningView, unit: &'static str) -> RunningPanel {
        RunningPanel {
            view,
            page_url: format!("{base}/jobs/{id}"),
            poll_url: format!("{base}/jobs/{id}/progress"),
            unit,
        }
    }
}

/// The progress display alone, as htmx asks for it every second.
#[derive(Template)]
#[template(path = "jobs/progress.html")]
pub struct ProgressFragment {
    pub job: RunningPanel,
}

/// The answer to htmx's question once the job is done: the browser loads the job's page again,
/// which now shows the result.
pub fn refresh_page() -> Response {
    ([("hx-refresh", "true")], "").into_response()
}

/// 303 to `to`: the starting page hands over to the job's page.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// Given to a job's work: reports how far it has come.
#[derive(Clone)]
pub struct ProgressReporter {
    table: Arc<dyn Fn(Progress) + Send + Sync>,
}

impl ProgressReporter {
    pub fn report(&self, progress: Progress) {
        (self.table)(progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_quick_job_answers_at_once_and_a_slow_one_shows_its_progress_to_its_owner_only() {
        let jobs: Jobs<u32> = Jobs::default();
        let quick = jobs
            .start("clerk", "测试".into(), Duration::from_secs(5), |_| async {
                7
            })
            .await
            .unwrap();
        assert!(matches!(quick, Started::Done(Ok(7))));

        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let slow = jobs
            .start(
                "clerk",
                "测试".into(),
                Duration::ZERO,
                |progress| async move {
                    progress.report(Progress {
                        done: 5,
                        total: Some(20),
                    });
                    let _ = released.await;
                    9
                },
            )
            .await
            .unwrap();
        let Started::Running(id) = slow else {
            panic!("a job that waits is still running")
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        match jobs.view(&id, "clerk") {
            Some(JobView::Running(r)) => {
                assert_eq!((r.done, r.total, r.percent), (5, Some(20), Some(25)));
            }
            _ => panic!("running"),
        }
        assert!(jobs.view(&id, "another clerk").is_none());
        release.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            jobs.view(&id, "clerk"),
            Some(JobView::Finished(Ok(9)))
        ));
    }

    #[tokio::test]
    async fn a_job_that_panics_ends_as_failed_and_too_many_running_are_refused() {
        let jobs: Jobs<u32> = Jobs::default();
        let crashed = jobs
            .start("clerk", "测试".into(), Duration::from_secs(5), |_| async {
                panic!("boom")
            })
            .await
            .unwrap();
        assert!(matches!(crashed, Started::Done(Err(JobFailed))));

        let mut holds = Vec::new();
        for _ in 0..MAX_RUNNING {
            let (hold, held) = tokio::sync::oneshot::channel::<()>();
            holds.push(hold);
            jobs.start("clerk", "测试".into(), Duration::ZERO, |_| async move {
                let _ = held.await;
                1
            })
            .await
            .unwrap();
        }
        assert!(jobs
            .start("clerk", "测试".into(), Duration::ZERO, |_| async { 1 })
            .await
            .is_err());
        drop(holds);
    }
}
