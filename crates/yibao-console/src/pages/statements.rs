//! 上传对账单: the administrator (or a tax collector, for a channel serving their region alone)
//! uploads a channel's statement of a day (protocol CSV, WeChat trade bill, Alipay bill) through
//! the service the API's handler calls (as `PUT /api/v1/statements/{channel_id}/{date}`: the same
//! scope checks, the same reconciliation, audited `statement.upload`), and sees its summary, its
//! funds and its differences, each with the form to close it.
//!
//! The form is `multipart/form-data`. As on 名册导入, its CSRF token must come before the file:
//! the `_csrf` field (the form puts it first) or the `X-CSRF-Token` header; a file met before a
//! valid token is refused without being read. The file is read up to the API's limit
//! ([`MAX_STATEMENT_BYTES`]).

use askama::Template;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use yibao_server::channel::answers::StatementSummary;
use yibao_server::services::reconciliation::{self, MAX_STATEMENT_BYTES};
use yibao_server::{AppState, ErrorCode};

use crate::pages::desk;
use crate::pages::reconciliation::{difference_lines, may_resolve, report, DifferenceLine};
use crate::session::{verify_csrf, ConsoleUser, CSRF_FIELD};
use crate::view::{yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// The whole form's body: the file and room for the form's other fields.
pub const MAX_STATEMENT_BODY_BYTES: usize = MAX_STATEMENT_BYTES + 64 * 1024;
/// Longest text field of the form read (`_csrf`, `channel_id`, `format`, `date`).
const MAX_TEXT_FIELD_BYTES: usize = 256;
/// Differences listed under the summary; the rest are on the 对账 page.
const SHOWN_DIFFERENCES: usize = desk::PAGE_SIZE;

/// The statement formats (the API's `format`), as staff call them.
pub const FORMATS: [(&str, &str); 3] = [
    ("protocol", "协议对账文件（CSV）"),
    ("wechat", "微信支付交易账单"),
    ("alipay", "支付宝业务明细账单"),
];

/// The upload form's fields and errors (shown on 对账 and on the result page).
pub struct UploadForm {
    pub channels: ChannelChoices,
    pub channel_id: String,
    pub format: String,
    pub date: String,
    pub formats: &'static [(&'static str, &'static str)],
    pub limit_mib: usize,
    pub errors: Vec<(&'static str, String)>,
}

impl UploadForm {
    /// The empty form for those who may upload (the API's writers: administrator, tax collector).
    pub fn for_user(
        user: &ConsoleUser,
        channels: &ChannelChoices,
        today: NaiveDate,
    ) -> Option<Self> {
        may_resolve(user).then(|| UploadForm {
            channels: channels.clone(),
            channel_id: String::new(),
            format: "protocol".to_owned(),
            date: (today - Duration::days(1)).to_string(),
            formats: &FORMATS,
            limit_mib: MAX_STATEMENT_BYTES / (1024 * 1024),
            errors: Vec::new(),
        })
    }

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

/// What the upload found.
pub struct Outcome {
    pub channel_id: String,
    pub date: String,
    pub format: &'static str,
    pub lines: i64,
    pub counts: Vec<(&'static str, i64)>,
    pub funds: Vec<(&'static str, String)>,
    /// An earlier upload of the day replaced: (undone, flagged for staff).
    pub superseded: (i64, i64),
    pub differences: Vec<DifferenceLine>,
    /// More differences than listed: the link to all of them.
    pub more_href: Option<String>,
    pub all_href: String,
}

#[derive(Template)]
#[template(path = "desk/statement.html")]
pub struct StatementPage {
    pub chrome: Chrome,
    pub upload: Option<UploadForm>,
    pub outcome: Option<Outcome>,
}

/// The channels a reader of money matters may choose, in order, and which of them are test
/// channels (测试渠道, the sandbox's), which the lists show marked.
#[derive(Clone, Default)]
pub struct ChannelChoices {
    pub ids: Vec<String>,
    test: Vec<String>,
}

impl ChannelChoices {
    pub fn contains(&self, id: &str) -> bool {
        self.ids.iter().any(|c| c == id)
    }

    pub fn is_test(&self, id: &str) -> bool {
        self.test.iter().any(|c| c == id)
    }

    /// Whether any is a test channel (a list over every channel then says it leaves them out).
    pub fn has_test(&self) -> bool {
        !self.test.is_empty()
    }
}

/// The channels a reader of money matters sees: every one, or those serving their region.
pub async fn channels_of(state: &AppState, own: Option<&str>) -> Result<ChannelChoices, PageError> {
    let mut channels: Vec<_> = state
        .storage
        .list_channels()
        .await?
        .into_iter()
        .filter(|c| own.is_none_or(|r| c.regions.iter().any(|x| x == r)))
        .collect();
    channels.sort_by(|a, b| a.channel_id.cmp(&b.channel_id));
    Ok(ChannelChoices {
        test: channels
            .iter()
            .filter(|c| c.test_mode)
            .map(|c| c.channel_id.clone())
            .collect(),
        ids: channels.into_iter().map(|c| c.channel_id).collect(),
    })
}

fn forbidden() -> PageError {
    yibao_server::ServiceError::of(ErrorCode::Forbidden).into()
}

/// `GET /console/reconciliation/statement`: the upload form alone.
pub async fn form(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    let own = desk::money_reader(&user)?;
    let channels = channels_of(&state, own.as_deref()).await?;
    let upload =
        UploadForm::for_user(&user, &channels, state.clock.today()).ok_or_else(forbidden)?;
    html(&StatementPage {
        chrome: Chrome::new(&user, "reconciliation", "上传对账单"),
        upload: Some(upload),
        outcome: None,
    })
}

/// A short text field, at most [`MAX_TEXT_FIELD_BYTES`].
pub(crate) async fn small_text(mut field: Field<'_>) -> Result<String, PageError> {
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

/// Why the file could not be taken (shown beside the field), and the status to answer with.
fn too_large(limit: usize) -> (String, StatusCode) {
    (
        format!(
            "文件超过 {} MB，请联系中心在服务器上处理",
            limit / (1024 * 1024)
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

/// The file field, at most `limit` bytes.
pub(crate) async fn receive_file(
    mut field: Field<'_>,
    limit: usize,
) -> Result<Vec<u8>, (String, StatusCode)> {
    let named = field.file_name().is_some_and(|n| !n.is_empty());
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large(limit)),
            Err(_) => {
                return Err((
                    "文件没有完整上传，请重新选择文件上传".to_owned(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ))
            }
        }
    }
    if !named || bytes.is_empty() {
        return Err((
            "请选择要上传的文件".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    Ok(bytes)
}

/// `POST /console/reconciliation/statement` (multipart: `_csrf`, `channel_id`, `format`,
/// `date`, `file`): reconciles the statement through the API's handler and shows the result.
pub async fn upload(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    // The header, when sent, was checked by `ConsoleUser`; the form sends the field first.
    let mut csrf_checked = verify_csrf(&user, &headers, None).is_ok();
    let own = desk::money_reader(&user)?;
    let channels = channels_of(&state, own.as_deref()).await?;
    let mut form =
        UploadForm::for_user(&user, &channels, state.clock.today()).ok_or_else(forbidden)?;
    let mut multipart =
        multipart.map_err(|_| PageError::bad_form("请通过页面上的表单选择文件上传"))?;
    let mut received: Option<Result<Vec<u8>, (String, StatusCode)>> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                received = Some(Err(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(MAX_STATEMENT_BYTES)
                } else {
                    (
                        "文件没有完整上传，请重新选择文件上传".to_owned(),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                }));
                break;
            }
        };
        match field.name() {
            Some(CSRF_FIELD) => {
                let sent = small_text(field).await?;
                verify_csrf(&user, &HeaderMap::new(), Some(&sent))?;
                csrf_checked = true;
            }
            Some("channel_id") => form.channel_id = small_text(field).await?.trim().to_owned(),
            Some("format") => form.format = small_text(field).await?.trim().to_owned(),
            Some("date") => form.date = small_text(field).await?.trim().to_owned(),
            Some("file") => {
                if !csrf_checked {
                    // Nothing of a request that may come from another site is read or stored.
                    return Err(PageError::CrossSite);
                }
                if received.is_some() {
                    return Err(PageError::bad_form("一次只能上传一个对账单文件"));
                }
                let outcome = receive_file(field, MAX_STATEMENT_BYTES).await;
                let stop = matches!(&outcome, Err((_, s)) if *s == StatusCode::PAYLOAD_TOO_LARGE);
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
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if !form.channels.contains(&form.channel_id) {
        form.errors
            .push(("channel_id", "请从列表中选择渠道".to_owned()));
    }
    if !FORMATS.iter().any(|(code, _)| *code == form.format) {
        form.errors.push(("format", "请选择对账单格式".to_owned()));
    }
    let day = NaiveDate::parse_from_str(&form.date, "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)));
    if day.is_none() {
        form.errors.push((
            "date",
            "对账日期应为 2000 至 2100 年间的 YYYY-MM-DD".to_owned(),
        ));
    }
    let bytes = match received {
        Some(Ok(bytes)) => Some(bytes),
        Some(Err((message, s))) => {
            form.errors.push(("file", message));
            status = s;
            None
        }
        None => {
            form.errors
                .push(("file", "请选择要上传的对账单文件".to_owned()));
            None
        }
    };
    let page = |form: UploadForm, outcome: Option<Outcome>| StatementPage {
        chrome: Chrome::new(&user, "reconciliation", "上传对账单"),
        upload: Some(form),
        outcome,
    };
    let (Some(bytes), Some(day), true) = (bytes, day, form.errors.is_empty()) else {
        return render_with_status(&page(form, None), status);
    };
    // As the API's query string names it: an empty choice leaves the format out.
    let format = Some(form.format.as_str()).filter(|f| !f.is_empty());
    let answer = reconciliation::upload_statement(
        &state,
        &user.staff,
        &form.channel_id,
        &day.to_string(),
        format,
        &bytes,
    )
    .await;
    let summary = match answer {
        Ok(summary) => summary,
        Err(e) => {
            let field = match e.code {
                ErrorCode::BadStatementFile | ErrorCode::PayloadTooLarge => "file",
                ErrorCode::NotFound | ErrorCode::Forbidden => "channel_id",
                ErrorCode::InvalidRequest => "date",
                _ => return Err(e.into()),
            };
            let status = e.code.status();
            form.errors.push((field, e.message));
            return render_with_status(&page(form, None), status);
        }
    };
    let outcome = outcome_of(&state, &user, &form.channel_id, day, &summary).await?;
    html(&page(form, Some(outcome)))
}

/// The summary the handler answered with, and the day's differences as the reader sees them.
async fn outcome_of(
    state: &AppState,
    user: &ConsoleUser,
    channel_id: &str,
    day: NaiveDate,
    summary: &StatementSummary,
) -> Result<Outcome, PageError> {
    let format = summary.format.as_str();
    let funds = &summary.funds;
    let query = desk::query_of(&[
        ("channel_id", channel_id),
        ("from", &day.to_string()),
        ("to", &day.to_string()),
    ]);
    let report = report(state, user, &query).await?;
    let mut differences = difference_lines(&report, may_resolve(user));
    let all_href = format!("/console/reconciliation?{query}");
    let more_href = (differences.len() > SHOWN_DIFFERENCES).then(|| all_href.clone());
    differences.truncate(SHOWN_DIFFERENCES);
    Ok(Outcome {
        channel_id: channel_id.to_owned(),
        date: day.to_string(),
        format: FORMATS
            .iter()
            .find(|(code, _)| *code == format)
            .map_or("", |(_, name)| name),
        lines: summary.lines,
        counts: vec![
            ("一致", summary.matched),
            ("长款（渠道有、平台无）", summary.channel_only),
            ("短款（平台有、渠道无）", summary.platform_only),
            ("金额不符", summary.amount_mismatch),
            ("重复", summary.duplicate),
            ("平台记在其他日期", summary.other_day),
            ("此前结转的短款本次核对一致", summary.carried.resolved),
            ("此前结转的短款上报人工处理", summary.carried.escalated),
        ],
        funds: vec![
            ("渠道收款", yuan(funds.channel.payments)),
            ("渠道冲正", yuan(funds.channel.reversals)),
            ("渠道退款", yuan(funds.channel.refunds)),
            ("渠道净额（收款减冲正）", yuan(funds.channel.net)),
            ("平台入账", yuan(funds.platform.payments)),
            ("核对一致的金额", yuan(funds.matched)),
            ("差额（渠道净额减平台入账）", yuan(funds.difference)),
        ],
        superseded: (summary.superseded.withdrawn, summary.superseded.flagged),
        differences,
        more_href,
        all_href,
    })
}
