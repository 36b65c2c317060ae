//! Village agents (村代办员, issue 17): the agents staff register for a `village_agent` channel,
//! what each agent's orders applied on a day (who paid what), and the cash each agent hands in
//! (交款) per day. The decisions (whom an agent serves, short or over) are
//! [`yibao_domain::village_agent`]'s.

use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _, Type};
use yibao_domain::village_agent::{AgentCode, VillageAgent};
use yibao_domain::{IdNumber, RegionCode, StationCode};

use crate::dialect::Dialect;
use crate::StorageError;

/// Most agents a region's page lists.
pub const MAX_AGENTS_LISTED: i64 = 500;
/// Most payment lines an agent's day lists.
pub const MAX_AGENT_DAY_LINES: i64 = 2000;

/// One payable an agent's payment applied on the day: who paid what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPaymentLine {
    pub payment_no: String,
    pub paid_at: String,
    pub id_number: IdNumber,
    pub name: String,
    pub fee_year: i32,
    pub amount_fen: i64,
}

/// An agent's day in figures: payments with something applied, and what they applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentDayTotal {
    pub channel_id: String,
    pub agent_code: String,
    pub payments: i64,
    pub applied_fen: i64,
}

/// The cash an agent handed in on a day, as staff recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandInRecord {
    pub channel_id: String,
    pub agent_code: String,
    pub amount_fen: i64,
    pub recorded_by: String,
    pub recorded_at_ms: i64,
}

fn agent_of<R: sqlx::Row>(r: &R) -> Result<VillageAgent, StorageError>
where
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let villages: String = r.try_get(4)?;
    Ok(VillageAgent {
        channel_id: r.try_get(0)?,
        code: AgentCode::parse(&r.try_get::<String, _>(1)?).map_err(StorageError::corrupt)?,
        region: RegionCode::parse(&r.try_get::<String, _>(2)?).map_err(StorageError::corrupt)?,
        name: r.try_get(3)?,
        villages: villages
            .split(',')
            .map(|v| StationCode::parse(v).map_err(StorageError::corrupt))
            .collect::<Result<_, _>>()?,
        enabled: r.try_get(5)?,
    })
}

const AGENT_COLUMNS: &str =
    "SELECT channel_id, agent_code, region_code, name, villages, enabled FROM village_agents ";

/// Registers an agent, or changes the name, villages and state of the one of the same channel and
/// code; `false`, nothing written, when that one is of another region (its orders and hand-ins
/// are kept under its region, which never changes).
pub(crate) async fn put_agent<S>(
    storage: &S,
    agent: &VillageAgent,
    actor: &str,
) -> Result<bool, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
{
    let villages: Vec<&str> = agent.villages.iter().map(StationCode::as_str).collect();
    let written = sqlx::query(
        "INSERT INTO village_agents (channel_id, agent_code, region_code, name, villages, enabled, \
         updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (channel_id, agent_code) DO UPDATE SET name = excluded.name, villages = excluded.villages, enabled = excluded.enabled, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at \
         WHERE village_agents.region_code = excluded.region_code",
    )
    .bind(agent.channel_id.clone())
    .bind(agent.code.as_str().to_owned())
    .bind(agent.region.as_str().to_owned())
    .bind(agent.name.clone())
    .bind(villages.join(","))
    .bind(agent.enabled)
    .bind(actor.to_owned())
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(storage.pool())
    .await?;
    Ok(S::rows_affected(&written) == 1)
}

/// The agent of a channel with this code.
pub(crate) async fn agent<S>(
    storage: &S,
    channel_id: &str,
    code: &AgentCode,
) -> Result<Option<VillageAgent>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let sql = format!("{AGENT_COLUMNS}WHERE channel_id = $1 AND agent_code = $2");
    let row = sqlx::query(&sql)
        .bind(channel_id.to_owned())
        .bind(code.as_str().to_owned())
        .fetch_optional(storage.pool())
        .await?;
    row.as_ref().map(agent_of).transpose()
}

/// Whether a channel has any agent registered.
pub(crate) async fn channel_has_agents<S>(
    storage: &S,
    channel_id: &str,
) -> Result<bool, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let found: Option<String> =
        sqlx::query_scalar("SELECT agent_code FROM village_agents WHERE channel_id = $1 LIMIT 1")
            .bind(channel_id.to_owned())
            .fetch_optional(storage.pool())
            .await?;
    Ok(found.is_some())
}

/// A region's agents, by channel and code, at most [`MAX_AGENTS_LISTED`].
pub(crate) async fn agents<S>(
    storage: &S,
    region: RegionCode,
) -> Result<Vec<VillageAgent>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> bool: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let sql =
        format!("{AGENT_COLUMNS}WHERE region_code = $1 ORDER BY channel_id, agent_code LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(region.as_str().to_owned())
        .bind(MAX_AGENTS_LISTED)
        .fetch_all(storage.pool())
        .await?;
    rows.iter().map(agent_of).collect()
}

/// The joins from an agent's orders to what their payments applied, all of one region (colocated
/// on a Citus cluster); a statement goes on with its conditions.
const AGENT_APPLIED: &str = "FROM orders o \
     JOIN payments m ON m.order_no = o.order_no AND m.region_code = o.region_code \
     JOIN payment_applications a ON a.payment_no = m.payment_no AND a.region_code = o.region_code AND a.active \
     JOIN payables y ON y.payable_id = a.payable_id AND y.region_code = o.region_code \
     JOIN persons p ON p.region_code = y.region_code AND p.id_number = y.id_number \
     WHERE o.region_code = $1 AND o.agent_code IS NOT NULL AND m.paid_on = $2 ";

/// Who paid what through one agent on `day` (the payables their payments applied), in the order
/// paid, at most [`MAX_AGENT_DAY_LINES`] and one more (which says the list goes on); one
/// statement.
pub(crate) async fn day_lines<S>(
    storage: &S,
    region: RegionCode,
    channel_id: &str,
    code: &AgentCode,
    day: NaiveDate,
) -> Result<Vec<AgentPaymentLine>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let sql = format!(
        "SELECT m.payment_no, m.paid_at, y.id_number, p.name, CAST(y.fee_year AS INTEGER), a.amount_fen \
         {AGENT_APPLIED}AND o.channel_id = $3 AND o.agent_code = $4 \
         ORDER BY m.paid_at, m.payment_no, y.payable_id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(region.as_str().to_owned())
        .bind(day)
        .bind(channel_id.to_owned())
        .bind(code.as_str().to_owned())
        .bind(MAX_AGENT_DAY_LINES + 1)
        .fetch_all(storage.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AgentPaymentLine {
                payment_no: r.try_get(0)?,
                paid_at: r.try_get(1)?,
                id_number: IdNumber::try_from(r.try_get::<String, _>(2)?)
                    .map_err(StorageError::corrupt)?,
                name: r.try_get(3)?,
                fee_year: r.try_get(4)?,
                amount_fen: r.try_get(5)?,
            })
        })
        .collect()
}

/// Every agent's day in a region in figures, one statement.
pub(crate) async fn day_totals<S>(
    storage: &S,
    region: RegionCode,
    day: NaiveDate,
) -> Result<Vec<AgentDayTotal>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let sql = format!(
        "SELECT o.channel_id, o.agent_code, CAST(COUNT(DISTINCT m.payment_no) AS BIGINT), \
         CAST(SUM(a.amount_fen) AS BIGINT) {AGENT_APPLIED}GROUP BY o.channel_id, o.agent_code"
    );
    let rows = sqlx::query(&sql)
        .bind(region.as_str().to_owned())
        .bind(day)
        .fetch_all(storage.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AgentDayTotal {
                channel_id: r.try_get(0)?,
                agent_code: r.try_get(1)?,
                payments: r.try_get(2)?,
                applied_fen: r.try_get(3)?,
            })
        })
        .collect()
}

/// Records the cash an agent handed in on `day`, replacing an earlier record of the same day (a
/// correction).
pub(crate) async fn put_hand_in<S>(
    storage: &S,
    agent: &VillageAgent,
    day: NaiveDate,
    amount_fen: i64,
    actor: &str,
) -> Result<(), StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
{
    sqlx::query(
        "INSERT INTO agent_handins (region_code, channel_id, agent_code, handed_on, amount_fen, \
         recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (region_code, channel_id, agent_code, handed_on) DO UPDATE SET \
         amount_fen = excluded.amount_fen, recorded_by = excluded.recorded_by, \
         recorded_at = excluded.recorded_at",
    )
    .bind(agent.region.as_str().to_owned())
    .bind(agent.channel_id.clone())
    .bind(agent.code.as_str().to_owned())
    .bind(day)
    .bind(amount_fen)
    .bind(actor.to_owned())
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The hand-ins recorded in a region for `day`.
pub(crate) async fn hand_ins<S>(
    storage: &S,
    region: RegionCode,
    day: NaiveDate,
) -> Result<Vec<HandInRecord>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Type<S::DB>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    let rows = sqlx::query(
        "SELECT channel_id, agent_code, amount_fen, recorded_by, recorded_at FROM agent_handins \
         WHERE region_code = $1 AND handed_on = $2 LIMIT $3",
    )
    .bind(region.as_str().to_owned())
    .bind(day)
    .bind(MAX_AGENTS_LISTED)
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HandInRecord {
                channel_id: r.try_get(0)?,
                agent_code: r.try_get(1)?,
                amount_fen: r.try_get(2)?,
                recorded_by: r.try_get(3)?,
                recorded_at_ms: r.try_get(4)?,
            })
        })
        .collect()
}
