//! Village agents (村代办员, issue 17) as staff manage them: the administrator registers an agent
//! of a `village_agent` channel; collection staff (the administrator, the region's tax office) see
//! each agent's day (what their payments applied, the cash handed in, short or over), record the
//! cash handed in, and read who paid what. Decisions are `yibao_domain::village_agent`'s.

use chrono::NaiveDate;
use yibao_domain::village_agent::{AgentCode, AgentError, AgentField, HandIn, VillageAgent};
use yibao_domain::{Fen, RegionCode};
use yibao_storage::village_agents::{AgentPaymentLine, HandInRecord};

use crate::auth::Staff;
use crate::error::{ErrorCode, ServiceError};
use crate::services::audit;
use crate::AppState;

/// A refused field of the agent form, or the request refused whole.
pub type AgentFormError = Result<Vec<(AgentField, AgentError)>, ServiceError>;

/// An agent as the form gives it.
pub struct AgentInput<'a> {
    pub channel_id: &'a str,
    pub code: &'a str,
    pub region: RegionCode,
    pub name: &'a str,
    /// Station codes separated by commas, spaces or 、.
    pub villages: &'a str,
    pub enabled: bool,
}

/// Registers (or changes) an agent; the administrator only. The channel must be a
/// `village_agent` channel serving the region. Audited as `village_agent.put`.
pub async fn register(
    state: &AppState,
    staff: &Staff,
    input: &AgentInput<'_>,
) -> Result<VillageAgent, AgentFormError> {
    let AgentInput {
        channel_id,
        code,
        region,
        name,
        villages,
        enabled,
    } = *input;
    staff.require_admin().map_err(Err)?;
    let channel = state
        .storage
        .get_channel(channel_id.trim())
        .await
        .map_err(|e| Err(e.into()))?
        .filter(|c| c.kind == yibao_domain::village_agent::VILLAGE_AGENT)
        .ok_or_else(|| {
            Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "请选择村级代办渠道（渠道类型为 village_agent）",
            ))
        })?;
    if !channel.regions.iter().any(|r| r == region.as_str()) {
        return Err(Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!("渠道 {} 未开通统筹区 {region}", channel.channel_id),
        )));
    }
    let mut agent =
        VillageAgent::new(&channel.channel_id, code, region, name, villages).map_err(Ok)?;
    // An agent's orders and hand-ins are kept under their region: it never changes.
    if let Some(stored) = state
        .storage
        .village_agent(&agent.channel_id, &agent.code)
        .await
        .map_err(|e| Err(e.into()))?
        .filter(|stored| stored.region != region)
    {
        return Err(Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!(
                "代办员 {} 已登记在统筹区 {}，不能改到其他统筹区；请为其登记新的编号",
                agent.code, stored.region
            ),
        )));
    }
    agent.enabled = enabled;
    let written = state
        .storage
        .put_village_agent(&agent, staff.username())
        .await
        .map_err(|e| Err(e.into()))?;
    if !written {
        // Registered in another region at the same moment.
        return Err(Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!(
                "代办员 {} 已登记在其他统筹区，不能改到统筹区 {region}；请为其登记新的编号",
                agent.code
            ),
        )));
    }
    audit(
        state,
        staff,
        "village_agent.put",
        Some(region),
        &format!("{}/{}", agent.channel_id, agent.code),
        serde_json::json!({ "villages": agent.villages_text(), "enabled": agent.enabled }),
    )
    .await
    .map_err(Err)?;
    Ok(agent)
}

/// One agent's day: what their payments applied, the cash recorded, and how the two compare.
pub struct AgentDay {
    pub agent: VillageAgent,
    pub payments: i64,
    pub owed: Fen,
    pub handed_in: Option<HandInRecord>,
    pub state: HandIn,
}

fn collection_region(staff: &Staff, region: RegionCode, write: bool) -> Result<(), ServiceError> {
    let scope = if write {
        staff.collection_write_scope()?
    } else {
        staff.collection_read_scope()?
    };
    match scope {
        Some(own) if own != region.as_str() => Err(ServiceError::of(ErrorCode::Forbidden)),
        _ => Ok(()),
    }
}

/// Every agent of a region on `day`, three statements (agents, totals, hand-ins).
pub async fn days(
    state: &AppState,
    staff: &Staff,
    region: RegionCode,
    day: NaiveDate,
) -> Result<Vec<AgentDay>, ServiceError> {
    collection_region(staff, region, false)?;
    let agents = state.storage.village_agents(region).await?;
    let totals = state.storage.agent_day_totals(region, day).await?;
    let hand_ins = state.storage.agent_hand_ins(region, day).await?;
    agents
        .into_iter()
        .map(|agent| {
            let mine = |channel: &str, code: &str| {
                channel == agent.channel_id && code == agent.code.as_str()
            };
            let total = totals.iter().find(|t| mine(&t.channel_id, &t.agent_code));
            let owed = Fen::new_non_negative(total.map_or(0, |t| t.applied_fen))?;
            let handed_in = hand_ins
                .iter()
                .find(|h| mine(&h.channel_id, &h.agent_code))
                .cloned();
            let cash = handed_in
                .as_ref()
                .map(|h| Fen::new_non_negative(h.amount_fen))
                .transpose()?;
            Ok(AgentDay {
                payments: total.map_or(0, |t| t.payments),
                owed,
                state: HandIn::of(owed, cash),
                handed_in,
                agent,
            })
        })
        .collect()
}

/// Records the cash an agent handed in on `day` (yuan, as typed), replacing an earlier record of
/// that day; the administrator or the region's tax office. A malformed amount is `Ok(message)`.
/// Audited as `village_agent.hand_in`.
pub async fn record_hand_in(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    code: &str,
    day: NaiveDate,
    amount_yuan: &str,
) -> Result<HandIn, Result<String, ServiceError>> {
    let agent = find(state, channel_id, code).await.map_err(Err)?;
    collection_region(staff, agent.region, true).map_err(Err)?;
    let amount = Fen::parse_yuan(amount_yuan.trim()).map_err(|e| Ok(format!("交款金额：{e}")))?;
    if amount.as_fen() < 0 {
        return Err(Ok("交款金额不能为负数".to_owned()));
    }
    if amount.as_fen() > yibao_domain::village_agent::MAX_HAND_IN_FEN {
        return Err(Ok("交款金额过大，请核对（一天最多登记10亿元）".to_owned()));
    }
    if day > state.clock.today() {
        return Err(Ok("交款日期不能晚于今天".to_owned()));
    }
    state
        .storage
        .put_agent_hand_in(&agent, day, amount.as_fen(), staff.username())
        .await
        .map_err(|e| Err(e.into()))?;
    audit(
        state,
        staff,
        "village_agent.hand_in",
        Some(agent.region),
        &format!("{}/{}", agent.channel_id, agent.code),
        serde_json::json!({ "date": day, "amount": amount.as_fen() }),
    )
    .await
    .map_err(Err)?;
    let owed = day_total(state, &agent, day).await.map_err(Err)?;
    let owed = Fen::new_non_negative(owed).map_err(|e| Err(e.into()))?;
    Ok(HandIn::of(owed, Some(amount)))
}

/// What one agent's payments applied on `day` (fen), the whole day's whatever a list's limit.
pub async fn day_total(
    state: &AppState,
    agent: &VillageAgent,
    day: NaiveDate,
) -> Result<i64, ServiceError> {
    Ok(state
        .storage
        .agent_day_totals(agent.region, day)
        .await?
        .into_iter()
        .find(|t| t.channel_id == agent.channel_id && t.agent_code == agent.code.as_str())
        .map_or(0, |t| t.applied_fen))
}

async fn find(
    state: &AppState,
    channel_id: &str,
    code: &str,
) -> Result<VillageAgent, ServiceError> {
    let not_found = || ServiceError::new(ErrorCode::NotFound, "没有这名代办员");
    let code = AgentCode::parse(code).map_err(|_| not_found())?;
    state
        .storage
        .village_agent(channel_id, &code)
        .await?
        .ok_or_else(not_found)
}

/// Who paid what through one agent on `day`; audited as `read.village_agent_day` (the list names
/// residents).
pub async fn day_lines(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    code: &str,
    day: NaiveDate,
) -> Result<(VillageAgent, Vec<AgentPaymentLine>, bool), ServiceError> {
    let agent = find(state, channel_id, code).await?;
    collection_region(staff, agent.region, false)?;
    let (lines, truncated) = day_list(state, &agent, day).await?;
    audit(
        state,
        staff,
        "read.village_agent_day",
        Some(agent.region),
        &format!("{}/{}", agent.channel_id, agent.code),
        serde_json::json!({ "date": day, "rows": lines.len() }),
    )
    .await?;
    Ok((agent, lines, truncated))
}

/// Who paid what through one agent on `day`, at most
/// [`yibao_storage::village_agents::MAX_AGENT_DAY_LINES`], and whether the day has more.
pub async fn day_list(
    state: &AppState,
    agent: &VillageAgent,
    day: NaiveDate,
) -> Result<(Vec<AgentPaymentLine>, bool), ServiceError> {
    let mut lines = state
        .storage
        .agent_day_lines(agent.region, &agent.channel_id, &agent.code, day)
        .await?;
    let limit = usize::try_from(yibao_storage::village_agents::MAX_AGENT_DAY_LINES).unwrap_or(0);
    let truncated = lines.len() > limit;
    lines.truncate(limit);
    Ok((lines, truncated))
}
