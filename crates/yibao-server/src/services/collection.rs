//! Collection through a channel: an order opened (protocol §2), a payment reported (§3), and the
//! reads the channel protocol, the public API and the citizen site share (a person's payables
//! under their name, the fee policies of payables, a receipt checked by its check code). The
//! channel's handlers and the citizen site (a channel of its own) call these alike.

use std::collections::{BTreeSet, HashMap};

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use yibao_domain::{FeePolicy, FeeYear, Fen, IdNumber, PayableStatus, PersonName, RegionCode};
use yibao_storage::collection::{
    NewOrder, NewPayment, OrderOutcome, OrderRecord, PayableView, PaymentOutcome,
    PaymentReportOutcome, ReceiptRecord, MAX_PAYABLES_PER_REQUEST,
};

use crate::channel::answers::{OrderAnswer, PaymentAnswer, ReceiptRef, RefundOwed};
use crate::channel::auth::{ChannelContext, PendingNonce};
use crate::channel::MAX_CHANNEL_ID_CHARS;
use crate::clock::CHINA_STANDARD_TIME;
use crate::error::{ErrorCode, ServiceError};
use crate::metrics::PaymentReportResult;
use crate::services::refunds::refund_due_kept;
use crate::services::{new_check_code, new_regional_id};
use crate::AppState;

/// A request refused as malformed (`INVALID_REQUEST`), saying why.
pub(crate) fn bad_request(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorCode::InvalidRequest, message)
}

/// A channel-issued identifier: 1 to 64 printable ASCII characters.
pub(crate) fn channel_identifier(what: &str, value: &str) -> Result<(), ServiceError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_CHANNEL_ID_CHARS
        && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(bad_request(format!("{what} 应为1至64个可见ASCII字符")))
    }
}

fn fingerprint(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\u{1f}").as_bytes()))
}

fn rfc3339(ts: i64) -> String {
    Utc.timestamp_opt(ts, 0)
        .single()
        .map(|t| t.with_timezone(&CHINA_STANDARD_TIME).to_rfc3339())
        .unwrap_or_default()
}

/// A refund reason as the protocol names it (internal reasons such as `CHANNEL_ONLY` map onto §3's four).
pub(crate) fn protocol_reason(code: &str) -> &str {
    yibao_domain::settlement::RefundReason::from_code(code).map_or(code, |r| r.protocol_code())
}

/// Fee policies by (region, fee year), loaded once per request (the citizen site's too).
pub async fn policies_for(
    state: &AppState,
    views: &[PayableView],
) -> Result<HashMap<(RegionCode, FeeYear), FeePolicy>, ServiceError> {
    let mut out = HashMap::new();
    for v in views {
        let key = (v.payable.region, v.payable.fee_year);
        if out.contains_key(&key) {
            continue;
        }
        // Read at most once per FEE_POLICY_CACHE_TTL: a search shows only its window.
        let policy = match state.fee_policies.lookup(&key) {
            yibao_storage::memo::Lookup::Known(policy) => policy,
            yibao_storage::memo::Lookup::Unknown(generation) => {
                let policy = state.storage.get_fee_policy(key.0, key.1).await?;
                state.fee_policies.store(key, policy.clone(), generation);
                policy
            }
        };
        if let Some(policy) = policy {
            out.insert(key, policy);
        }
    }
    Ok(out)
}

#[derive(Deserialize, Default, ToSchema)]
pub struct Payer {
    pub name: Option<String>,
    pub phone: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct OrderRequest {
    pub channel_order_no: String,
    pub payable_ids: Vec<String>,
    pub amount: i64,
    #[serde(default)]
    pub payer: Payer,
    /// Required from a channel of kind `medical_account` (个人账户家庭共济), refused from any
    /// other: the employee whose personal account pays, and its balance. An addition to v1.
    #[serde(default)]
    pub family_account: Option<FamilyAccountRequest>,
    /// Required from a channel of kind `health_card` (居民健康卡), refused from any other: whose
    /// card pays, and where it is used. An addition to v1.
    #[serde(default)]
    pub health_card: Option<HealthCardRequest>,
    /// Required from a channel of kind `village_agent` (村代办员), refused from any other: the
    /// code of the agent taking the money, as registered with the agency. An addition to v1.
    #[serde(default)]
    pub agent_code: Option<String>,
}

/// The agent code a request names, as written: refused from a channel of another kind, or
/// malformed (400). No read.
pub fn agent_code_of(
    channel: &ChannelContext,
    requested: Option<&str>,
) -> Result<Option<yibao_domain::village_agent::AgentCode>, ServiceError> {
    use yibao_domain::village_agent::{AgentCode, VILLAGE_AGENT};
    match (channel.kind == VILLAGE_AGENT, requested) {
        (_, None) => Ok(None),
        (false, Some(_)) => Err(bad_request("agent_code 仅限村级代办渠道使用")),
        (true, Some(text)) => AgentCode::parse(text)
            .map(Some)
            .map_err(|e| bad_request(format!("agent_code：{e}"))),
    }
}

/// The registered agent a `village_agent` channel's request names (one read): not registered or
/// disabled is `AGENT_NOT_ALLOWED` (403). Without a code: 400 once the channel has agents
/// registered; before that (a channel of this kind registered before issue 17) the request is
/// served as it was, for no agent.
pub async fn village_agent_of(
    state: &AppState,
    channel: &ChannelContext,
    code: Option<&yibao_domain::village_agent::AgentCode>,
) -> Result<Option<yibao_domain::village_agent::VillageAgent>, ServiceError> {
    use yibao_domain::village_agent::{AgentRefusal, VILLAGE_AGENT};
    if channel.kind != VILLAGE_AGENT {
        return Ok(None);
    }
    let Some(code) = code else {
        return if state
            .storage
            .channel_has_agents(&channel.channel_id)
            .await?
        {
            Err(bad_request(
                "村级代办渠道的请求须提供代办员编号（agent_code）",
            ))
        } else {
            Ok(None)
        };
    };
    let refused =
        |refusal: AgentRefusal| ServiceError::new(ErrorCode::AgentNotAllowed, refusal.to_string());
    match state
        .storage
        .village_agent(&channel.channel_id, code)
        .await?
    {
        None => Err(refused(AgentRefusal::Unknown(code.to_string()))),
        Some(agent) if !agent.enabled => Err(refused(AgentRefusal::Disabled(code.to_string()))),
        Some(agent) => Ok(Some(agent)),
    }
}

/// Whether `agent` (if any) serves the holder of `view`.
pub fn agent_serves(
    agent: Option<&yibao_domain::village_agent::VillageAgent>,
    view: &PayableView,
) -> bool {
    agent.is_none_or(|agent| {
        let station = view
            .station_code
            .as_deref()
            .and_then(|s| yibao_domain::StationCode::parse(s).ok());
        agent.serves(view.payable.region, station.as_ref())
    })
}

/// The resident health card that pays an order, as the `health_card` channel reads it.
#[derive(Deserialize, ToSchema)]
pub struct HealthCardRequest {
    /// The card holder's ID number (持卡人公民身份号码).
    pub holder_id_number: String,
    /// `agent_point` (代征点: only the holder's household) or `self_service` (自助服务机: anyone).
    pub terminal: String,
}

/// The card that pays an order: required from a `health_card` channel, refused from others.
fn health_card_of(
    channel: &ChannelContext,
    requested: Option<&HealthCardRequest>,
    today: chrono::NaiveDate,
) -> Result<Option<yibao_domain::health_card::CardPayment>, ServiceError> {
    use yibao_domain::health_card::{CardPayment, Terminal, HEALTH_CARD};
    match (channel.kind == HEALTH_CARD, requested) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(bad_request("health_card 仅限居民健康卡渠道使用")),
        (true, None) => Err(bad_request(
            "居民健康卡渠道下单须提供 health_card：持卡人公民身份号码（holder_id_number）和受理终端（terminal：agent_point 代征点或 self_service 自助服务机）",
        )),
        (true, Some(card)) => {
            let holder = IdNumber::parse(&card.holder_id_number, today)
                .map_err(|e| {
                    ServiceError::new(
                        ErrorCode::InvalidIdNumber,
                        format!("health_card.holder_id_number：{e}"),
                    )
                })?
                .id_number;
            let terminal = Terminal::from_code(&card.terminal).ok_or_else(|| {
                bad_request(
                    "health_card.terminal 应为 agent_point（代征点）或 self_service（自助服务机）",
                )
            })?;
            Ok(Some(CardPayment { holder, terminal }))
        }
    }
}

/// Refuses an agent point's order for anyone outside the card holder's household in the order's
/// region (`NOT_HOUSEHOLD_MEMBER`); a self-service machine's is never refused here. One read of
/// the holder's household.
async fn check_health_card(
    state: &AppState,
    card: &yibao_domain::health_card::CardPayment,
    views: &[PayableView],
) -> Result<(), ServiceError> {
    use yibao_domain::health_card::{agent_point_refusal, Terminal};
    if card.terminal == Terminal::SelfService {
        return Ok(());
    }
    let household = state
        .storage
        .current_household(views[0].payable.region, &card.holder)
        .await?;
    let persons: Vec<IdNumber> = views.iter().map(|v| v.payable.id_number).collect();
    match agent_point_refusal(card, &household, &persons) {
        Some(refusal) => Err(ServiceError::new(
            ErrorCode::NotHouseholdMember,
            refusal.to_string(),
        )),
        None => Ok(()),
    }
}

/// The employee-insurance member whose personal medical account pays an order, as the
/// `medical_account` channel knows them.
#[derive(Deserialize, ToSchema)]
pub struct FamilyAccountRequest {
    /// The employee's ID number (the account holder, 共济人).
    pub employee_id_number: String,
    /// The account's balance now, in fen; the order must fit within it.
    pub balance: i64,
}

/// The channel kind whose payments come from an employee's personal account.
pub const MEDICAL_ACCOUNT: &str = "medical_account";

/// The account that pays an order: required from a `medical_account` channel, refused from others.
fn family_account_of(
    channel: &ChannelContext,
    requested: Option<&FamilyAccountRequest>,
    today: chrono::NaiveDate,
) -> Result<Option<(IdNumber, Fen)>, ServiceError> {
    match (channel.kind == MEDICAL_ACCOUNT, requested) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(bad_request(
            "family_account 仅限职工医保个人账户（家庭共济）渠道使用",
        )),
        (true, None) => Err(bad_request(
            "个人账户家庭共济渠道下单须提供 family_account：职工公民身份号码（employee_id_number）和个人账户余额（balance，分）",
        )),
        (true, Some(account)) => {
            let employee = IdNumber::parse(&account.employee_id_number, today)
                .map_err(|e| {
                    ServiceError::new(
                        ErrorCode::InvalidIdNumber,
                        format!("family_account.employee_id_number：{e}"),
                    )
                })?
                .id_number;
            let balance = Fen::new_non_negative(account.balance).map_err(|_| {
                bad_request("family_account.balance 应为不小于0的整数（分）")
            })?;
            Ok(Some((employee, balance)))
        }
    }
}

/// Refuses an order a family account may not pay (all or nothing): every payable's person bound
/// to the employee in force today, with what the region's rules of its year allow, the total
/// within the balance. One read of the bindings.
async fn check_family_account(
    state: &AppState,
    employee: &IdNumber,
    balance: Fen,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    today: chrono::NaiveDate,
) -> Result<(), ServiceError> {
    use yibao_domain::family_account::{
        family_account_decision, AccountPayable, FamilyAccountRefusal,
    };
    let region = views[0].payable.region;
    let relatives: Vec<IdNumber> = views.iter().map(|v| v.payable.id_number).collect();
    let bindings = state
        .storage
        .family_bindings(region, employee, &relatives)
        .await?;
    let payables: Vec<AccountPayable<'_>> = views
        .iter()
        .map(|v| AccountPayable {
            person: &v.payable.id_number,
            region: v.payable.region,
            amount: v.payable.amount_fen,
            back_payment: v.payable.buys_back().is_some(),
        })
        .collect();
    let rules_of = |p: &AccountPayable<'_>| {
        views
            .iter()
            .find(|v| &v.payable.id_number == p.person)
            .and_then(|v| policies.get(&(v.payable.region, v.payable.fee_year)))
            .map(|policy| policy.cover_rules().family_account.clone())
            .unwrap_or_default()
    };
    family_account_decision(
        rules_of,
        employee,
        &bindings,
        &payables,
        balance,
        today,
        IdNumber::masked,
    )
    .map_err(|refusal| {
        let code = match refusal {
            FamilyAccountRefusal::NotBound { .. } => ErrorCode::NotBound,
            FamilyAccountRefusal::RelationshipNotAllowed { .. } => {
                ErrorCode::RelationshipNotAllowed
            }
            FamilyAccountRefusal::OutsideProvince { .. } => ErrorCode::OutsideProvince,
            FamilyAccountRefusal::BackPaymentNotAllowed => ErrorCode::BackPaymentNotAllowed,
            FamilyAccountRefusal::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
        };
        ServiceError::new(code, refusal.to_string())
    })
}

/// An order as §2 answers it.
pub(crate) fn order_json(order: &OrderRecord) -> OrderAnswer {
    OrderAnswer {
        order_no: order.order_no.clone(),
        amount: order.amount_fen.as_fen(),
        expires_at: rfc3339(order.expires_at),
        status: order.status.code().to_owned(),
    }
}

fn unique_ids(ids: &[String]) -> Result<Vec<String>, ServiceError> {
    if ids.is_empty() || ids.len() > MAX_PAYABLES_PER_REQUEST {
        return Err(bad_request(format!(
            "payable_ids 应有1至{MAX_PAYABLES_PER_REQUEST}项"
        )));
    }
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    if set.len() != ids.len() {
        return Err(bad_request("payable_ids 中有重复的应缴费信息"));
    }
    for id in &set {
        channel_identifier("payable_id", id)?;
    }
    Ok(set.into_iter().collect())
}

fn locked_error(locked_by: Option<&str>) -> ServiceError {
    let by_debit = locked_by.is_some_and(|b| b.starts_with("debit:"));
    ServiceError::new(
        ErrorCode::Locked,
        if by_debit {
            "银行扣费进行中，该应缴费信息暂时不能缴费，请等扣费结果后再试"
        } else {
            "该应缴费信息已被另一缴费订单锁定，请稍后再试或取消原订单"
        },
    )
}

/// § 2 for `channel`, wherever the request came from (a signed request, or the citizen site,
/// which is a channel of its own): `201` with a new order, `200` with the one this
/// `channel_order_no` opened before.
pub async fn place_order(
    state: &AppState,
    channel: &ChannelContext,
    req: OrderRequest,
) -> Result<(StatusCode, OrderAnswer), ServiceError> {
    channel_identifier("channel_order_no", &req.channel_order_no)?;
    let ids = unique_ids(&req.payable_ids)?;
    let account = family_account_of(channel, req.family_account.as_ref(), state.clock.today())?;
    let card = health_card_of(channel, req.health_card.as_ref(), state.clock.today())?;
    let agent_code = agent_code_of(channel, req.agent_code.as_deref())?;
    let payer_name = req
        .payer
        .name
        .map(|n| n.chars().take(40).collect::<String>());
    let payer_phone = req
        .payer
        .phone
        .map(|p| p.chars().take(20).collect::<String>());
    // The account joins the fingerprint only when there is one: an order stored before family
    // accounts existed keeps its fingerprint, so its repeat is still the same order.
    let amount = req.amount.to_string();
    let joined = ids.join(",");
    let account_part = account
        .as_ref()
        .map(|(employee, balance)| format!("{}:{}", employee.as_str(), balance.as_fen()));
    let card_part = card
        .as_ref()
        .map(|c| format!("card:{}:{}", c.holder.as_str(), c.terminal.code()));
    let mut parts = vec![
        amount.as_str(),
        joined.as_str(),
        payer_name.as_deref().unwrap_or(""),
        payer_phone.as_deref().unwrap_or(""),
    ];
    parts.extend(account_part.as_deref());
    parts.extend(card_part.as_deref());
    let agent_part = agent_code.as_ref().map(|code| format!("agent:{code}"));
    parts.extend(agent_part.as_deref());
    let print = fingerprint(&parts);
    if let Some((order, stored_print)) = state
        .storage
        .find_order(&channel.channel_id, &req.channel_order_no)
        .await?
    {
        if stored_print != print {
            return Err(ServiceError::of(ErrorCode::IdempotencyConflict));
        }
        return Ok((StatusCode::OK, order_json(&order)));
    }
    // The agent is checked for a new order only: a repeat gets the order it opened.
    let agent = village_agent_of(state, channel, agent_code.as_ref()).await?;
    let views = state.storage.payables_by_id(&ids).await?;
    if views.len() != ids.len() {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "有应缴费信息不存在，请重新查询后再下单",
        ));
    }
    if views
        .iter()
        .any(|v| !channel.allows(v.payable.region.as_str()))
    {
        return Err(ServiceError::of(ErrorCode::RegionNotAllowed));
    }
    if let Some(outside) = views.iter().find(|v| !agent_serves(agent.as_ref(), v)) {
        return Err(ServiceError::new(
            ErrorCode::AgentNotAllowed,
            yibao_domain::village_agent::AgentRefusal::OutsideVillages {
                person_masked: outside.payable.id_number.masked(),
            }
            .to_string(),
        ));
    }
    // An order's rows live in one region (on a Citus cluster, on that region's shard).
    if views
        .iter()
        .any(|v| v.payable.region != views[0].payable.region)
    {
        return Err(ServiceError::new(
            ErrorCode::NotPayable,
            "一个订单只能包含同一统筹区的应缴费，请按统筹区分别下单",
        ));
    }
    let now = state.clock.now().timestamp();
    for v in &views {
        match v.payable.channel_status(now) {
            "paid" => return Err(ServiceError::of(ErrorCode::AlreadyPaid)),
            "exempt" | "cancelled" => return Err(ServiceError::of(ErrorCode::NotPayable)),
            "locked" => return Err(locked_error(v.payable.locked_by.as_deref())),
            _ => {}
        }
    }
    let total = Fen::checked_sum(views.iter().map(|v| v.payable.amount_fen))?;
    if total.as_fen() != req.amount {
        return Err(ServiceError::new(
            ErrorCode::AmountMismatch,
            format!(
                "订单金额应为应缴金额之和 {total} 分，收到 {} 分",
                req.amount
            ),
        ));
    }
    let today = state.clock.today();
    let policies = policies_for(state, &views).await?;
    for v in &views {
        let open = policies
            .get(&(v.payable.region, v.payable.fee_year))
            .is_some_and(|p| p.accepts_payment_on(today));
        if !open {
            return Err(ServiceError::of(ErrorCode::WindowClosed));
        }
    }
    refuse_what_the_rules_refuse(state, &views, &policies, today).await?;
    for v in &views {
        let policy = policies.get(&(v.payable.region, v.payable.fee_year));
        if let Some(refusal) = channel_refusal(policy, &channel.kind, &v.payable, today) {
            return Err(ServiceError::new(
                ErrorCode::ChannelNotAllowed,
                refusal.to_string(),
            ));
        }
    }
    if let Some((employee, balance)) = &account {
        check_family_account(state, employee, *balance, &views, &policies, today).await?;
    }
    if let Some(card) = &card {
        check_health_card(state, card, &views).await?;
    }
    let order = NewOrder {
        order_no: new_regional_id("OD", views[0].payable.region.as_str()),
        channel_id: channel.channel_id.clone(),
        channel_order_no: req.channel_order_no.clone(),
        region: views[0].payable.region,
        amount_fen: total,
        payer_name,
        payer_phone,
        payable_ids: ids,
        expires_at: now + state.order_hold_seconds,
        fingerprint: print,
        now,
        card,
        agent_code: agent.as_ref().map(|a| a.code.as_str().to_owned()),
    };
    match state.storage.open_order(&order).await? {
        OrderOutcome::Created(order) => Ok((StatusCode::CREATED, order_json(&order))),
        OrderOutcome::Existing {
            order,
            same_request: true,
        } => Ok((StatusCode::OK, order_json(&order))),
        OrderOutcome::Existing { .. } => Err(ServiceError::of(ErrorCode::IdempotencyConflict)),
        OrderOutcome::NotLockable {
            status, locked_by, ..
        } => Err(match status {
            PayableStatus::Paid | PayableStatus::Posted => ServiceError::of(ErrorCode::AlreadyPaid),
            PayableStatus::Locked => locked_error(locked_by.as_deref()),
            _ => ServiceError::of(ErrorCode::NotPayable),
        }),
    }
}

/// Refuses an order for a year the 2025 rules no longer sell on `today`: past its last date
/// (`YEAR_CLOSED`), or with a wait that would end after 31 December where the region refuses that
/// (`WAIT_PAST_YEAR_END`). One read of what is stored of the persons in the order (one statement per region).
async fn refuse_what_the_rules_refuse(
    state: &AppState,
    views: &[PayableView],
    policies: &HashMap<(RegionCode, FeeYear), FeePolicy>,
    today: chrono::NaiveDate,
) -> Result<(), ServiceError> {
    let covers = super::cover::covers_for(
        state.storage.as_ref(),
        views,
        policies,
        today,
        super::cover::BackPaymentsWith::PaidTogether,
        |_| true,
    )
    .await?;
    for v in views {
        let Some(Err(refusal)) = covers.get(&v.payable.payable_id).map(|c| &c.start) else {
            continue;
        };
        if let Some(code) = rules_refusal(refusal.code()) {
            return Err(ServiceError::new(code, refusal.to_string()));
        }
    }
    Ok(())
}

/// Why a channel of `kind` may not collect `payable` on `day` under its region's channel rules
/// (渠道收费范围, issue 17): it is a back-payment, subsidised (a relief lowered it and something is
/// still owed), paid after the window or the extension, or the full amount, and the rules name the
/// kinds that may collect that. `None` when it may, or when there is no policy to say.
pub fn channel_refusal(
    policy: Option<&FeePolicy>,
    kind: &str,
    payable: &yibao_storage::PayableRecord,
    day: chrono::NaiveDate,
) -> Option<yibao_domain::ChannelRefusal> {
    let policy = policy?;
    let rules = &policy.cover_rules().channels;
    if !rules.limits_any() {
        return None;
    }
    let classes = yibao_domain::PayableClass::of(
        payable.buys_back_year.is_some(),
        payable.relief_kind.is_some() && payable.amount_fen > Fen::ZERO,
        day >= policy.late_from(),
    );
    rules.check(kind, &classes).err()
}

/// The refusals of the 2025 rules that close a year to payment, by their code. The window's own
/// (not open yet, late payment not accepted) stay the order's `WINDOW_CLOSED` check and are not
/// held against money already taken.
fn rules_refusal(code: &str) -> Option<ErrorCode> {
    match code {
        "YEAR_CLOSED" => Some(ErrorCode::YearClosed),
        "WAIT_PAST_YEAR_END" => Some(ErrorCode::WaitPastYearEnd),
        _ => None,
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PaymentRequest {
    pub channel_txn_id: String,
    pub order_no: Option<String>,
    pub payable_ids: Option<Vec<String>>,
    pub amount: i64,
    pub paid_at: String,
}

/// The receipts of a payment as the protocol names them.
pub(crate) fn receipt_refs(receipts: &[yibao_storage::collection::ReceiptRef]) -> Vec<ReceiptRef> {
    receipts
        .iter()
        .map(|r| ReceiptRef {
            payable_id: r.payable_id.clone(),
            receipt_code: r.receipt_code.clone(),
            receipt_number: r.receipt_number.clone(),
            check_code: r.check_code.clone(),
        })
        .collect()
}

/// A stored payment as §3 answers it.
pub fn payment_json(outcome: &PaymentOutcome) -> PaymentAnswer {
    PaymentAnswer {
        result: outcome.result.code().to_owned(),
        payment_no: outcome.payment_no.clone(),
        receipts: receipt_refs(&outcome.receipts),
        refund: outcome.refund.as_ref().map(|refund| RefundOwed {
            refund_no: refund.refund_no.clone(),
            amount: refund.amount_fen.as_fen(),
            reason: protocol_reason(&refund.reason).to_owned(),
            due: refund.due,
        }),
    }
}

/// § 3 for `channel`, wherever the report came from (a signed request, or a payment provider's
/// notification to the citizen site).
pub async fn take_payment_report(
    state: &AppState,
    channel: &ChannelContext,
    req: PaymentRequest,
) -> Result<PaymentAnswer, ServiceError> {
    channel_identifier("channel_txn_id", &req.channel_txn_id)?;
    if req.amount <= 0 {
        return Err(bad_request("amount 应为正整数（分）"));
    }
    let amount = Fen::new_non_negative(req.amount)?;
    let paid_at =
        DateTime::<FixedOffset>::parse_from_rfc3339(req.paid_at.trim()).map_err(|_| {
            bad_request("paid_at 应为带时区的 RFC 3339 时间，如 2020-11-02T10:15:00+08:00")
        })?;
    // The request as sent identifies it: amount, order and payable ids (sorted), nothing derived.
    let mut raw_ids = req.payable_ids.clone().unwrap_or_default();
    raw_ids.sort();
    let print = fingerprint(&[
        &req.amount.to_string(),
        req.order_no.as_deref().unwrap_or(""),
        &raw_ids.join(","),
    ]);
    let (order_no, named_ids) = match (&req.order_no, &req.payable_ids) {
        (Some(o), None) => {
            channel_identifier("order_no", o)?;
            (Some(o.clone()), None)
        }
        (None, Some(ids)) => (
            None,
            Some(unique_ids(ids).or_else(|_| {
                // Duplicates or too many: still money held; nothing can be applied safely.
                Ok::<_, ServiceError>(Vec::new())
            })?),
        ),
        _ => return Err(bad_request("order_no 和 payable_ids 须且只能提供一个")),
    };
    let (order_no, mut ids) = match (order_no, named_ids) {
        (Some(o), _) => match state
            .storage
            .order_payables(&channel.channel_id, &o)
            .await?
        {
            Some(ids) => (Some(o), ids),
            // An order this channel never opened (a mistyped number, another channel's): the
            // money is held all the same and owed back whole, with no order to point at.
            None => (None, Vec::new()),
        },
        (None, Some(ids)) => (None, ids),
        (None, None) => (None, Vec::new()),
    };
    ids.sort();
    // The payables and what is stored of their holders, gathered with other reports' reads.
    let found = match (&state.payable_reader, ids.is_empty()) {
        (_, true) => yibao_storage::payable_search::FoundPayables::default(),
        (Some(reader), false) => reader.read(&ids).await?,
        (None, false) => state.storage.payables_with_cover(&ids).await?,
    };
    let views = found.views;
    // Not this channel's to collect: all of it goes back, owed in the channel's own region (a
    // production channel's money is never kept in the sandbox, nor a test channel's elsewhere).
    let foreign = views
        .iter()
        .any(|v| !channel.allows(v.payable.region.as_str()));
    if foreign {
        ids.clear();
    }
    let paid_on = paid_at.with_timezone(&CHINA_STANDARD_TIME).date_naive();
    // A payment of an order stays with its order's region (the order is keyed by it), and a
    // channel without a region of its own keeps the payables' (money is never refused).
    let region = match (views.first(), channel.home_region()) {
        (Some(v), _) if !foreign || order_no.is_some() => v.payable.region,
        (_, Ok(home)) => home,
        (Some(v), Err(_)) => v.payable.region,
        (None, Err(e)) => return Err(e),
    };
    // Money is held: a calendar problem must not refuse it (refund_due falls back to weekdays).
    let refund_due = refund_due_kept(state, Some(region), paid_on).await?;
    // The policies once, through the cache, for the rules' answer and the channel rules alike.
    let policies = if ids.is_empty() {
        HashMap::new()
    } else {
        policies_for(state, &views).await?
    };
    // When cover starts for each payable paid (the 2025 rules), for the receipt and the posting.
    let cover = if ids.is_empty() {
        Vec::new()
    } else {
        super::cover::cover_notes_from(&found.stored, &views, &policies, &ids, paid_on)
    };
    // Money is never refused, but what cannot be applied goes back whole: a family account's
    // payment without the order that checked its bindings and balance, and a year the 2025 rules
    // no longer sell on the day it was paid (past its last date, or a wait past the year's end
    // where the region refuses that).
    let closed_year = cover
        .iter()
        .flatten()
        .any(|note| rules_refusal(&note.code).is_some());
    // A family account's or a health card's payment without the order that checked whose money
    // it is and for whom (bindings and balance; the card holder's household at an agent point).
    // A village agent's likewise: the order names the agent whose cash it is.
    let unchecked_account = order_no.is_none()
        && (channel.kind == MEDICAL_ACCOUNT
            || channel.kind == yibao_domain::health_card::HEALTH_CARD
            || (channel.kind == yibao_domain::village_agent::VILLAGE_AGENT
                && state
                    .storage
                    .channel_has_agents(&channel.channel_id)
                    .await?));
    // A payable the region's channel rules keep from this kind of channel, reported without the
    // order that would have said so (an order opened before keeps what it checked).
    let not_here = order_no.is_none()
        && !ids.is_empty()
        && views.iter().any(|v| {
            let policy = policies.get(&(v.payable.region, v.payable.fee_year));
            channel_refusal(policy, &channel.kind, &v.payable, paid_on).is_some()
        });
    let refund_all = (closed_year || unchecked_account || not_here)
        .then_some(yibao_domain::settlement::RefundReason::NotPayable);
    let payment = NewPayment {
        region,
        payment_no: new_regional_id("PM", region.as_str()),
        refund_no: new_regional_id("RF", region.as_str()),
        channel_id: channel.channel_id.clone(),
        channel_txn_id: req.channel_txn_id.clone(),
        order_no,
        lock_holder: None,
        refund_all,
        check_codes: ids.iter().map(|_| new_check_code()).collect(),
        event_ids: ids
            .iter()
            .map(|_| new_regional_id("EV", region.as_str()))
            .collect(),
        payable_ids: ids,
        amount_fen: amount,
        paid_at: paid_at.to_rfc3339(),
        paid_on,
        fingerprint: print,
        refund_due,
        issued_on: state.clock.today(),
        now: state.clock.now().timestamp(),
        cover,
        // The request's nonce, when authentication left it to this report's transaction.
        nonce: channel.nonce.as_ref().and_then(PendingNonce::take),
    };
    let outcome = match &state.payment_batcher {
        Some(batcher) => batcher.report(payment).await?,
        None => state.storage.report_payment(&payment).await?,
    };
    let counted = match &outcome {
        PaymentReportOutcome::Stored(outcome) => {
            Some(PaymentReportResult::of_stored(outcome.result))
        }
        PaymentReportOutcome::Existing {
            same_request: true, ..
        } => Some(PaymentReportResult::Replayed),
        PaymentReportOutcome::Existing { .. } => Some(PaymentReportResult::IdempotencyConflict),
        PaymentReportOutcome::ReversedEarlier => Some(PaymentReportResult::ReversedEarlier),
        // Refused as authentication refuses a replay, before any report is counted.
        PaymentReportOutcome::NonceUsed => None,
    };
    // A test channel's payments (接入测试) are left out of the statistics.
    if let Some(counted) = counted.filter(|_| !channel.test_mode) {
        state.metrics.observe_payment_report(counted);
    }
    match outcome {
        PaymentReportOutcome::Stored(outcome) => {
            tracing::info!(channel = %channel.channel_id, payment_no = %outcome.payment_no, result = outcome.result.code(), "payment reported");
            Ok(payment_json(&outcome))
        }
        PaymentReportOutcome::Existing {
            outcome,
            same_request: true,
        } => Ok(payment_json(&outcome)),
        PaymentReportOutcome::Existing { .. } => {
            Err(ServiceError::of(ErrorCode::IdempotencyConflict))
        }
        PaymentReportOutcome::ReversedEarlier => Err(ServiceError::of(ErrorCode::Reversed)),
        PaymentReportOutcome::NonceUsed => {
            crate::channel::auth::refused("nonce_replayed", &channel.channel_id);
            Err(crate::channel::auth::replayed())
        }
    }
}

/// The receipt with this code and number if `check_code` is its check code; otherwise the same
/// `NOT_FOUND` whether the receipt is unknown or the check code wrong.
pub async fn receipt_checked(
    state: &AppState,
    code: &str,
    number: &str,
    check_code: Option<&str>,
) -> Result<ReceiptRecord, ServiceError> {
    let not_found = || {
        ServiceError::new(
            ErrorCode::NotFound,
            "未找到该票据，请核对票据代码、号码和校验码",
        )
    };
    if code.len() != 8 || number.len() != 10 {
        return Err(not_found());
    }
    let receipt = state
        .storage
        .get_receipt(code, number)
        .await?
        .ok_or_else(not_found)?;
    if check_code != Some(receipt.check_code.as_str()) {
        return Err(not_found());
    }
    Ok(receipt)
}

/// [`receipt_checked`] for the public (the verification API and the citizen site): a receipt of
/// the sandbox (接入测试) is answered as not found, so that a test receipt never passes for a real one.
/// One read more.
pub async fn public_receipt_checked(
    state: &AppState,
    code: &str,
    number: &str,
    check_code: Option<&str>,
) -> Result<ReceiptRecord, ServiceError> {
    let receipt = receipt_checked(state, code, number, check_code).await?;
    if state.storage.is_sandbox_region(receipt.region).await? {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "未找到该票据，请核对票据代码、号码和校验码",
        ));
    }
    Ok(receipt)
}

/// The codes of every pooling region, for a read by ID number, which names none.
pub async fn region_codes(state: &AppState) -> Result<Vec<String>, ServiceError> {
    Ok(state
        .storage
        .list_regions()
        .await?
        .iter()
        .map(|r| r.code().to_string())
        .collect())
}

/// The person's current payables in every region, if `name` is the name on record: empty when
/// the ID number is unknown and when the name does not match alike (the public and the citizen
/// site must not tell the two apart).
pub async fn payables_under_name(
    state: &AppState,
    id: &IdNumber,
    name: &str,
    fee_year: Option<i32>,
) -> Result<Vec<PayableView>, ServiceError> {
    let regions = region_codes(state).await?;
    let mut views = state
        .storage
        .payables_by_person(id.as_str(), &regions, fee_year)
        .await?;
    views.retain(|v| PersonName::parse(&v.name).is_ok_and(|n| n.matches(name)));
    Ok(views)
}

#[cfg(test)]
mod tests {
    /// The fingerprint of an order without a family account is what it was before accounts
    /// existed (amount, payables, payer's name and phone joined by U+001F), so an order stored by
    /// an earlier version is still the same order when its channel repeats it.
    #[test]
    fn an_orders_fingerprint_without_an_account_is_unchanged() {
        assert_eq!(
            super::fingerprint(&["43000", "p1,p2", "", ""]),
            "93cc9b3559ff04375a0d56bd93d75b1f4a6bb1419cf3ca21dd6a52c725bdafc2"
        );
    }
}
