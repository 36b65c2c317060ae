//! 村级代办 (issue 17): a region's village agents and their day — what each agent's payments
//! applied, the cash handed in (交款), short or over flagged — the form that records a hand-in, the
//! administrator's form that registers an agent, and an agent's day list (who paid what, masked).
//! Through [`yibao_server::services::village_agents`]: the administrator every region, a tax
//! collector their own, auditors read; station operators have no part.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_domain::village_agent::AgentField;
use yibao_domain::RegionCode;
use yibao_server::services::village_agents as agents;
use yibao_server::{AppState, ErrorCode, ServiceError};
use yibao_storage::Role;

use crate::pages::persons::{region_for, see_other};
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{beijing_minute, yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// One agent's line on the page.
pub struct AgentLine {
    pub channel_id: String,
    pub code: String,
    pub name: String,
    pub villages: String,
    pub enabled: bool,
    pub payments: i64,
    pub owed: String,
    pub handed_in: String,
    pub recorded: String,
    pub state: String,
    pub flagged: bool,
}

/// The agent form's values.
#[derive(Default, Deserialize)]
pub struct AgentForm {
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub agent_code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub villages: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub disabled: Option<String>,
}

#[derive(Template)]
#[template(path = "desk/village_agents.html")]
pub struct AgentsPage {
    pub chrome: Chrome,
    pub region: String,
    pub regions: Vec<(String, String)>,
    pub may_choose_region: bool,
    pub date: String,
    pub agents: Vec<AgentLine>,
    pub flagged: usize,
    pub may_record: bool,
    pub is_admin: bool,
    /// The region's `village_agent` channels, for the form.
    pub channels: Vec<String>,
    pub form: AgentForm,
    pub errors: Vec<(String, String)>,
    pub notice: Option<String>,
    /// The amount typed in a hand-in form that came back, by the form's field id.
    pub typed: Option<(String, String)>,
}

impl AgentsPage {
    /// The amount a hand-in form shows: what was typed when it came back, else what is recorded.
    pub fn amount_value(&self, fid: &str, recorded: &str) -> String {
        match &self.typed {
            Some((field, typed)) if field == fid => typed.clone(),
            _ => recorded.replace(',', ""),
        }
    }

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Deserialize)]
pub struct AgentsQuery {
    region: Option<String>,
    date: Option<String>,
    done: Option<String>,
}

fn parse_date(text: Option<&str>, today: NaiveDate) -> Result<NaiveDate, PageError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(today),
        Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
            ServiceError::new(ErrorCode::InvalidRequest, "日期格式应为 YYYY-MM-DD").into()
        }),
    }
}

async fn build(
    state: &AppState,
    user: &ConsoleUser,
    region: Option<&str>,
    date: NaiveDate,
) -> Result<AgentsPage, PageError> {
    let (region, regions) = region_for(state, user, region).await?;
    let days = agents::days(state, &user.staff, region, date).await?;
    let channels: Vec<String> = state
        .storage
        .list_channels()
        .await?
        .into_iter()
        .filter(|c| {
            c.kind == yibao_domain::village_agent::VILLAGE_AGENT
                && c.regions.iter().any(|r| r == region.as_str())
        })
        .map(|c| c.channel_id)
        .collect();
    let lines: Vec<AgentLine> = days
        .iter()
        .map(|d| AgentLine {
            channel_id: d.agent.channel_id.clone(),
            code: d.agent.code.to_string(),
            name: d.agent.name.clone(),
            villages: d.agent.villages_text(),
            enabled: d.agent.enabled,
            payments: d.payments,
            owed: yuan(d.owed.as_fen()),
            handed_in: d
                .handed_in
                .as_ref()
                .map_or_else(String::new, |h| yuan(h.amount_fen)),
            recorded: d.handed_in.as_ref().map_or_else(String::new, |h| {
                format!("{} {}", h.recorded_by, beijing_minute(h.recorded_at_ms))
            }),
            state: d.state.label_zh(),
            flagged: d.state.is_flagged(),
        })
        .collect();
    let role = user.account().role;
    Ok(AgentsPage {
        chrome: Chrome::new(user, "village_agents", "村级代办"),
        region: region.to_string(),
        regions,
        may_choose_region: user.account().region.is_none(),
        date: date.to_string(),
        flagged: lines.iter().filter(|l| l.flagged).count(),
        agents: lines,
        may_record: matches!(role, Role::Admin | Role::TaxCollector),
        is_admin: role == Role::Admin,
        channels,
        form: AgentForm::default(),
        errors: Vec::new(),
        notice: None,
        typed: None,
    })
}

/// `GET /console/village-agents?region=&date=`.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<AgentsQuery>,
) -> Result<Response, PageError> {
    let date = parse_date(query.date.as_deref(), state.clock.today())?;
    let mut page = build(&state, &user, query.region.as_deref(), date).await?;
    page.notice = match query.done.as_deref() {
        Some("agent") => Some("代办员已保存。".into()),
        Some("hand_in") => Some("交款已记录，差额见下表。".into()),
        _ => None,
    };
    html(&page)
}

/// `POST /console/village-agents`: the administrator registers or changes an agent.
pub async fn register(
    State(state): State<AppState>,
    CsrfForm(user, form): CsrfForm<AgentForm>,
) -> Result<Response, PageError> {
    let region = RegionCode::parse(form.region.trim()).map_err(ServiceError::from)?;
    let input = agents::AgentInput {
        channel_id: &form.channel_id,
        code: &form.agent_code,
        region,
        name: &form.name,
        villages: &form.villages,
        enabled: form.disabled.is_none(),
    };
    match agents::register(&state, &user.staff, &input).await {
        Ok(_) => Ok(see_other(&format!(
            "/console/village-agents?region={region}&done=agent"
        ))),
        Err(Err(error)) if error.code == ErrorCode::InvalidRequest => {
            let mut page = build(&state, &user, Some(region.as_str()), state.clock.today()).await?;
            page.errors = vec![("channel_id".into(), error.message.clone())];
            page.form = form;
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(Err(error)) => Err(error.into()),
        Err(Ok(problems)) => {
            let mut page = build(&state, &user, Some(region.as_str()), state.clock.today()).await?;
            page.errors = problems
                .iter()
                .map(|(field, error)| {
                    let name = match field {
                        AgentField::Code => "agent_code",
                        AgentField::Name => "name",
                        AgentField::Villages => "villages",
                    };
                    (name.to_owned(), error.to_string())
                })
                .collect();
            page.form = form;
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Deserialize)]
pub struct HandInForm {
    channel_id: String,
    agent_code: String,
    date: String,
    amount: String,
    region: String,
}

/// `POST /console/village-agents/hand-in`: records the cash an agent handed in on a day.
pub async fn hand_in(
    State(state): State<AppState>,
    CsrfForm(user, form): CsrfForm<HandInForm>,
) -> Result<Response, PageError> {
    let date = parse_date(Some(&form.date), state.clock.today())?;
    match agents::record_hand_in(
        &state,
        &user.staff,
        &form.channel_id,
        &form.agent_code,
        date,
        &form.amount,
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/console/village-agents?region={}&date={date}&done=hand_in",
            form.region.trim()
        ))),
        Err(Err(error)) => Err(error.into()),
        Err(Ok(message)) => {
            let mut page = build(&state, &user, Some(form.region.trim()), date).await?;
            let fid = format!("amount-{}-{}", form.channel_id, form.agent_code);
            page.errors = vec![(fid.clone(), message)];
            page.typed = Some((fid, form.amount.chars().take(20).collect()));
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// One line of an agent's day, masked.
pub struct DayLine {
    pub paid_at: String,
    pub name_masked: String,
    pub id_masked: String,
    pub fee_year: i32,
    pub amount: String,
    pub payment_no: String,
}

#[derive(Template)]
#[template(path = "desk/village_agent_day.html")]
pub struct DayPage {
    pub chrome: Chrome,
    pub region: String,
    pub channel_id: String,
    pub code: String,
    pub name: String,
    pub date: String,
    pub lines: Vec<DayLine>,
    pub total: String,
    /// The list stops at its limit; the total is the whole day's.
    pub truncated: bool,
}

#[derive(Deserialize)]
pub struct DayQuery {
    date: Option<String>,
}

/// `GET /console/village-agents/{channel}/{code}?date=`: who paid what through one agent.
pub async fn day(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((channel_id, code)): Path<(String, String)>,
    Query(query): Query<DayQuery>,
) -> Result<Response, PageError> {
    let date = parse_date(query.date.as_deref(), state.clock.today())?;
    let (agent, lines, truncated) =
        agents::day_lines(&state, &user.staff, &channel_id, &code, date).await?;
    let total = agents::day_total(&state, &agent, date).await?;
    html(&DayPage {
        chrome: Chrome::new(
            &user,
            "village_agents",
            &format!("代办员 {} 缴费清单", agent.name),
        ),
        region: agent.region.to_string(),
        channel_id: agent.channel_id.clone(),
        code: agent.code.to_string(),
        name: agent.name.clone(),
        date: date.to_string(),
        total: yuan(total),
        truncated,
        lines: lines
            .iter()
            .map(|l| DayLine {
                // As the channel reported it, shown in Beijing time.
                paid_at: chrono::DateTime::parse_from_rfc3339(&l.paid_at).map_or_else(
                    |_| l.paid_at.chars().take(16).collect(),
                    |t| beijing_minute(t.timestamp_millis()),
                ),
                name_masked: crate::pages::persons::mask_name(&l.name),
                id_masked: l.id_number.masked(),
                fee_year: l.fee_year,
                amount: yuan(l.amount_fen),
                payment_no: l.payment_no.clone(),
            })
            .collect(),
    })
}
