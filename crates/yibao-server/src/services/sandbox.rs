//! The sandbox for integrators (接入测试, issue 17): the sandbox region and its fee years, its
//! fixed test residents kept in their states, fresh residents enrolled on a test channel's first
//! search, and the scenarios each test channel has gone through. The rules are
//! [`yibao_domain::sandbox`]'s; `docs/integrator-guide.md` ("接入测试") is what banks read.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use yibao_domain::sandbox::{
    sandbox_region, FixedState, CLOSED_FEE_YEAR, FIXED_RESIDENTS, HOUSE_CHANNEL,
    MAX_FRESH_RESIDENTS, OPEN_FEE_YEAR, SANDBOX_REGION_NAME, TEST_AMOUNT_FEN,
};
use yibao_domain::PayableStatus;
use yibao_domain::{
    covered_from, Category, CategoryAmount, CollectionWindow, Component, CoverRules,
    EnrolmentRequest, FeePolicy, FeePolicyInput, FeeYear, Fen, Household, IdNumber, Person,
    PersonName, PoolingRegion, RegionCode,
};
use yibao_storage::{ChangeSource, PersonUpsert, Storage, StorageError};

use crate::channel::auth::ChannelContext;
use crate::error::ErrorCode;
use crate::services::collection::{take_payment_report, PaymentRequest};
use crate::{AppState, ServiceError};

/// Who the sandbox's own records name.
const ACTOR: &str = "sandbox";
/// The name a fresh resident gets when the search names none (or none that is a name).
const FRESH_NAME: &str = "测试居民";

fn policy_error(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal("sandbox fee policy", e)
}

fn day(y: i32, m: u32, d: u32) -> Result<NaiveDate, ServiceError> {
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| policy_error("date"))
}

/// The sandbox's two fee years: [`OPEN_FEE_YEAR`], open from 2001 to its end, and
/// [`CLOSED_FEE_YEAR`], closed at the end of 2000 with no late payment. Everyone owes
/// [`TEST_AMOUNT_FEN`] (of which 30 元 大病保险).
fn policies(region: RegionCode) -> Result<Vec<FeePolicy>, ServiceError> {
    let amount = CategoryAmount::including(
        Fen::new_non_negative(TEST_AMOUNT_FEN).map_err(policy_error)?,
        &[(
            Component::CriticalIllness,
            Fen::yuan(30).map_err(policy_error)?,
        )],
    )
    .map_err(policy_error)?;
    let amounts: BTreeMap<Category, CategoryAmount> = [
        Category::Adult,
        Category::MinorNotInSchool,
        Category::Student,
        Category::Newborn,
    ]
    .into_iter()
    .map(|c| (c, amount.clone()))
    .collect();
    [
        (OPEN_FEE_YEAR, day(2001, 1, 1)?, day(2100, 12, 31)?),
        (CLOSED_FEE_YEAR, day(2000, 1, 1)?, day(2000, 12, 31)?),
    ]
    .into_iter()
    .map(|(year, opens, closes)| {
        let fee_year = FeeYear::new(year)?;
        FeePolicy::new(FeePolicyInput {
            region,
            fee_year,
            amounts: amounts.clone(),
            age_reference_date: day(i32::from(fee_year.get()), 1, 1)?,
            adult_age: 18,
            window: CollectionWindow::new(opens, closes).map_err(policy_error)?,
            late_payment_allowed: false,
            cover_rules: CoverRules::default(),
        })
        .map_err(policy_error)
    })
    .collect()
}

/// Registers the sandbox region, marks it a sandbox and sets its fee years where they are not set.
/// Idempotent; storage only (the command line's `yibao channel add --test` runs it). Refused when
/// a channel in production serves the region.
pub async fn prepare_region(storage: &dyn Storage) -> Result<RegionCode, ServiceError> {
    let code = sandbox_region();
    if storage.get_region(code).await?.is_none() {
        let region = PoolingRegion::new(code, SANDBOX_REGION_NAME)
            .map_err(|e| ServiceError::internal("sandbox region", e))?;
        storage.upsert_region(&region).await?;
    }
    match storage.mark_sandbox_region(code).await {
        Ok(_) => {}
        Err(StorageError::Constraint { .. }) => {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("统筹区 {code} 已有正式渠道服务，不能用作接入测试区"),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    for policy in policies(code)? {
        if storage
            .get_fee_policy(code, policy.fee_year())
            .await?
            .is_none()
        {
            storage.put_fee_policy(&policy).await?;
        }
    }
    Ok(code)
}

/// The sandbox's own channel as the collection service takes it.
fn house_channel(region: RegionCode) -> ChannelContext {
    ChannelContext {
        channel_id: HOUSE_CHANNEL.to_owned(),
        kind: "bank_counter".to_owned(),
        regions: vec![region.to_string()],
        test_mode: true,
        nonce: None,
    }
}

/// Puts the fixed test residents on record and in their states, where they are not yet: a
/// payment of the sandbox's own channel for the paid one, holds that never run out for the two
/// locked ones. Idempotent: once done, one read per resident. Does nothing without a sandbox.
pub async fn prepare_residents(state: &AppState) -> Result<(), ServiceError> {
    let storage = state.storage.as_ref();
    let region = sandbox_region();
    if !storage.is_sandbox_region(region).await? {
        return Ok(());
    }
    if storage.get_channel(HOUSE_CHANNEL).await?.is_none() {
        // Created disabled, with a secret nobody is given: nobody signs with it. Its id is
        // refused to anyone else (`NewChannel::check`).
        let secret = crate::channel::secrets::ChannelSecret::new(
            super::accounts::new_channel_secret().into_bytes(),
        )
        .map_err(|e| ServiceError::internal("sandbox channel secret", e))?;
        let sealed = crate::channel::secrets::seal(&secret, state.master_key.as_ref())
            .map_err(|e| ServiceError::internal("seal sandbox channel secret", e))?;
        let house = yibao_storage::collection::ChannelRecord {
            channel_id: HOUSE_CHANNEL.to_owned(),
            kind: "bank_counter".to_owned(),
            secret_sealed: sealed,
            rate_per_second: 1,
            enabled: false,
            regions: vec![region.to_string()],
            previous_secret: None,
            test_mode: true,
        };
        match storage.create_channel(&house).await {
            // Another server starting at the same time made it.
            Ok(()) | Err(StorageError::Constraint { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let today = state.clock.today();
    for fixed in FIXED_RESIDENTS {
        let id = IdNumber::parse(fixed.id_number, today)?.id_number;
        let year = match fixed.state {
            FixedState::WindowClosed => CLOSED_FEE_YEAR,
            _ => OPEN_FEE_YEAR,
        };
        let exempt = fixed.state == FixedState::Exempt;
        let payable = enrol_and_assess(state, &id, fixed.name, year, exempt).await?;
        let Some(payable) = payable else { continue };
        if payable.status != PayableStatus::Unpaid {
            continue;
        }
        match fixed.state {
            FixedState::AlreadyPaid => {
                take_payment_report(
                    state,
                    &house_channel(region),
                    PaymentRequest {
                        channel_txn_id: format!("SANDBOX-PAID-{}", payable.payable_id),
                        order_no: None,
                        payable_ids: Some(vec![payable.payable_id.clone()]),
                        amount: payable.amount_fen.as_fen(),
                        paid_at: state.clock.now().to_rfc3339(),
                    },
                )
                .await?;
            }
            FixedState::LockedByOrder | FixedState::LockedByDebitRun => {
                let holder = if fixed.state == FixedState::LockedByOrder {
                    "order:SANDBOX-HOLD"
                } else {
                    "debit:SANDBOX-RUN"
                };
                if !storage
                    .hold_sandbox_payable(region, &payable.payable_id, holder)
                    .await?
                {
                    tracing::warn!(
                        holder,
                        "a sandbox fixture was taken before its hold: held at the next start"
                    );
                }
            }
            FixedState::WindowClosed | FixedState::Exempt => {}
        }
    }
    Ok(())
}

/// Enrols a test resident for `year` and assesses them, where not yet done; their payable of
/// that year (the current one).
async fn enrol_and_assess(
    state: &AppState,
    id: &IdNumber,
    name: &str,
    year: i64,
    exempt: bool,
) -> Result<Option<yibao_storage::PayableRecord>, ServiceError> {
    let storage = state.storage.as_ref();
    let region = sandbox_region();
    let fee_year = FeeYear::new(year)?;
    let current = |payables: Vec<yibao_storage::PayableRecord>| {
        payables.into_iter().find(|p| {
            p.region == region
                && p.fee_year == fee_year
                && !matches!(
                    p.status,
                    PayableStatus::Superseded | PayableStatus::Cancelled
                )
        })
    };
    if let Some(found) = current(storage.payables_of_person(id).await?) {
        return Ok(Some(found));
    }
    let policy = storage
        .get_fee_policy(region, fee_year)
        .await?
        .ok_or_else(|| ServiceError::internal("sandbox", "fee policy missing"))?;
    let today = state.clock.today();
    // The exempt one's certificate (低保) is valid to the end of the sandbox's open year.
    let relief = if exempt {
        Some(yibao_domain::Relief {
            kind: yibao_domain::ReliefKind::MinimumLivingAllowance,
            certificate_name: "最低生活保障证".to_owned(),
            certificate_number: "SANDBOX-DB".to_owned(),
            valid_until: day(2100, 12, 31)?,
            subsidy: None,
        })
    } else {
        None
    };
    let person = Person {
        region,
        id_number: *id,
        name: PersonName::parse(name)?,
        household: Household::LocalRegistration,
        school: None,
        phone: None,
        station: None,
        employee_insured: false,
        relief,
    };
    storage
        .upsert_persons_checked(
            &[PersonUpsert {
                row_number: 1,
                person: person.clone(),
                enrolment: Some(EnrolmentRequest::Enrol {
                    fee_year,
                    covered_from: covered_from(id, &policy, today),
                }),
                household: None,
            }],
            &ChangeSource {
                actor: ACTOR.to_owned(),
                source: ACTOR.to_owned(),
            },
            &|_, _| true,
        )
        .await?;
    let draft = super::assessment::draft_payable(&person, &policy, today, today, ACTOR);
    storage.insert_payables(&[draft]).await?;
    Ok(current(storage.payables_of_person(id).await?))
}

/// A test channel's search for a fresh test ID number
/// ([`yibao_domain::sandbox::is_fresh_id_number`]): enrols them, owing [`TEST_AMOUNT_FEN`] for
/// [`OPEN_FEE_YEAR`], under the name searched (or 测试居民). Nothing when they are on record, or
/// past [`MAX_FRESH_RESIDENTS`] (the search then finds nobody).
pub async fn enrol_fresh(
    state: &AppState,
    id: &IdNumber,
    name: Option<&str>,
) -> Result<(), ServiceError> {
    let storage = state.storage.as_ref();
    let region = sandbox_region();
    if storage.get_person(region, id).await?.is_some() {
        return Ok(());
    }
    if storage.persons_on_record(region).await? >= MAX_FRESH_RESIDENTS {
        tracing::warn!("the sandbox holds its most residents: fresh ID numbers are not enrolled");
        return Ok(());
    }
    let name = name
        .map(str::trim)
        .filter(|n| PersonName::parse(n).is_ok())
        .unwrap_or(FRESH_NAME);
    enrol_and_assess(state, id, name, OPEN_FEE_YEAR, false).await?;
    Ok(())
}

/// Records the scenarios a test channel's request (`sent`) and its answer went through. Never
/// fails the request: a write that fails is logged.
pub async fn record_exchange(
    state: &AppState,
    channel: &ChannelContext,
    method: &str,
    path: &str,
    status: u16,
    sent: &[u8],
    answer: &[u8],
) {
    use yibao_domain::sandbox::{scenarios_of, Endpoint, Observed};
    let endpoint = Endpoint::of(method, path);
    if endpoint == Endpoint::Other {
        return;
    }
    let sent: serde_json::Value = serde_json::from_slice(sent).unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_slice(answer).unwrap_or_default();
    let text =
        |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_owned);
    let code = text(&answer, "code");
    let message = text(&answer, "message").unwrap_or_default();
    let result = text(&answer, "result");
    let reason = answer.get("refund").and_then(|r| text(r, "reason"));
    let refund_status = text(&sent, "status");
    let seen = Observed {
        status,
        code: code.as_deref(),
        by_debit_run: message.contains("银行扣费"),
        result: result.as_deref(),
        refund_reason: reason.as_deref(),
        found_payables: answer
            .get("payables")
            .and_then(|p| p.as_array())
            .is_some_and(|p| !p.is_empty()),
        refund_status: refund_status.as_deref(),
    };
    let mut found = scenarios_of(endpoint, &seen);
    // A reversal answers `reversed` also when it arrives before its payment (recorded ahead): 冲正
    // is done only when a payment was there to reverse. One read, for test channels only.
    if found.contains(&yibao_domain::sandbox::Scenario::Reversed) {
        let reported = match yibao_domain::sandbox::reversal_txn_id(path) {
            Some(txn) => state
                .storage
                .payment_state(&channel.channel_id, &txn)
                .await
                .ok()
                .flatten()
                .is_some(),
            None => false,
        };
        if !reported {
            found.retain(|s| *s != yibao_domain::sandbox::Scenario::Reversed);
        }
    }
    let scenarios: Vec<&str> = found.into_iter().map(|s| s.code()).collect();
    if scenarios.is_empty() {
        return;
    }
    let now = state.clock.now().timestamp();
    if let Err(err) = state
        .storage
        .record_sandbox_scenarios(sandbox_region(), &channel.channel_id, &scenarios, now)
        .await
    {
        tracing::warn!(%err, channel = %channel.channel_id, "sandbox scenario not recorded");
    }
}

/// A test channel and the scenarios it has gone through, as the console shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestChannelProgress {
    pub channel_id: String,
    pub kind: String,
    pub enabled: bool,
    /// Every scenario in the guide's order, with when it was last gone through (Unix seconds)
    /// and how often; `None` when not yet.
    pub scenarios: Vec<(yibao_domain::sandbox::Scenario, Option<(i64, i64)>)>,
}

impl TestChannelProgress {
    pub fn completed(&self) -> usize {
        self.scenarios.iter().filter(|(_, s)| s.is_some()).count()
    }
}

/// Every test channel (the sandbox's own left out) and its scenarios. Two reads.
pub async fn progress(storage: &dyn Storage) -> Result<Vec<TestChannelProgress>, ServiceError> {
    use yibao_domain::sandbox::Scenario;
    let records = storage.sandbox_scenarios().await?;
    Ok(storage
        .list_channels()
        .await?
        .into_iter()
        .filter(|c| c.test_mode && c.channel_id != HOUSE_CHANNEL)
        .map(|c| {
            let scenarios = Scenario::ALL
                .into_iter()
                .map(|s| {
                    let done = records
                        .iter()
                        .find(|r| r.channel_id == c.channel_id && r.scenario == s.code())
                        .map(|r| (r.last_at, r.times));
                    (s, done)
                })
                .collect();
            TestChannelProgress {
                channel_id: c.channel_id,
                kind: c.kind,
                enabled: c.enabled,
                scenarios,
            }
        })
        .collect())
}
