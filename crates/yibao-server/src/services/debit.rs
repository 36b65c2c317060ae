//! Bank auto-debit (委托扣款): agreements, runs, request files and result files. The file layouts
//! are in `docs/bank-files.md`.
//!
//! A run locks every payable it will debit (`debit:<run_no>`), so other channels are told 银行扣费
//! 进行中 until the bank answers. Each item is attempted once per run. The bank's successes are
//! stored through the same payment path as any channel's report (receipts, outbox, refunds for
//! whatever cannot be applied); failures are unlocked and listed for notification. A run the bank
//! never answers is abandoned when its lock bound passes, and its payables are freed; a result that
//! arrives later is still applied, because money taken is never lost.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, TimeZone};
use serde::Serialize;
use sha2::{Digest, Sha256};
use yibao_domain::settlement::{debit_booking_day, MaskedAccount};
use yibao_domain::DebitRunStatus;
use yibao_domain::{FeePolicy, FeeYear, IdNumber, PersonName, RegionCode};
use yibao_statement_file::{
    read_debit_result, write_debit_request, DebitMember, DebitOutcome, DebitRequestHeader,
    DebitRequestItem, Limits,
};
use yibao_storage::collection::PaymentReportOutcome;
use yibao_storage::records::MAX_LIST_ROWS;
use yibao_storage::settlement::{
    debit_lock_holder, AgreementOutcome, AgreementRecord, DebitItemResult, DebitResultClaim,
    DebitRunOutcome, DebitRunRecord, NewAgreement, NewDebitRun, MAX_AGREEMENT_MEMBERS,
    MAX_DEBIT_BATCH,
};
use yibao_storage::{GrowingTables, Storage};

use crate::auth::Staff;
use crate::clock::{Clock, CHINA_STANDARD_TIME};
use crate::error::{ErrorCode, ServiceError};
use crate::services::audit;
use crate::services::refunds::refund_due;
use crate::services::settlement_scope::{date_of, within};
use crate::services::statistics::GrowthRefresh;
use crate::staff_answers::DebitRunDetail;
use crate::AppState;

/// Days after the debit date a run's locks hold before the run is abandoned.
pub const DEBIT_LOCK_DAYS: i64 = 3;
/// Result items applied per transaction.
pub const DEBIT_APPLY_CHUNK: usize = 500;
/// Largest result file accepted (50 000 items of about 100 bytes, with room).
pub const MAX_DEBIT_FILE_BYTES: usize = 16 * 1024 * 1024;

pub struct AgreementInput<'a> {
    pub agreement_no: &'a str,
    pub region: &'a str,
    pub channel_id: &'a str,
    pub payer_id_number: &'a str,
    pub payer_name: &'a str,
    pub account: &'a str,
    pub members: &'a [String],
}

fn agreement_no_ok(no: &str) -> bool {
    (4..=40).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Signs an agreement: the payer alone when `members` is empty, else the family listed.
pub async fn sign_agreement(
    storage: &dyn Storage,
    clock: &Clock,
    input: AgreementInput<'_>,
) -> Result<AgreementRecord, ServiceError> {
    let today = clock.today();
    if !agreement_no_ok(input.agreement_no) {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "协议号应为 4 至 40 位字母、数字、- 或 _",
        ));
    }
    let region = RegionCode::parse(input.region)?;
    let payer = IdNumber::parse(input.payer_id_number, today)?.id_number;
    let payer_name = PersonName::parse(input.payer_name)?;
    let account = MaskedAccount::parse(input.account)
        .map_err(|e| ServiceError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    let mut members = Vec::new();
    for m in input.members {
        members.push(IdNumber::parse(m, today)?.id_number.as_str().to_owned());
    }
    if members.is_empty() {
        members.push(payer.as_str().to_owned());
    }
    members.sort();
    members.dedup();
    if members.len() > MAX_AGREEMENT_MEMBERS {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!("一份协议最多代扣 {MAX_AGREEMENT_MEMBERS} 人"),
        ));
    }
    let outcome = storage
        .sign_agreement(&NewAgreement {
            agreement_no: input.agreement_no.to_owned(),
            region,
            channel_id: input.channel_id.to_owned(),
            payer_id_number: payer,
            payer_name: payer_name.as_str().to_owned(),
            account_masked: account.as_str().to_owned(),
            signed_on: today,
            members,
        })
        .await?;
    match outcome {
        AgreementOutcome::Signed(a) => Ok(a),
        AgreementOutcome::Exists => Err(ServiceError::new(
            ErrorCode::AlreadyExists,
            "该统筹区已有此协议号",
        )),
        AgreementOutcome::NotAutoDebitChannel => Err(ServiceError::new(
            ErrorCode::RegionNotAllowed,
            "该渠道不是开通此统筹区委托扣款（auto_debit）的银行",
        )),
        AgreementOutcome::MemberCovered {
            id_number,
            agreement_no,
        } => Err(ServiceError::new(
            ErrorCode::AlreadyExists,
            format!(
                "{} 已在委托扣款协议 {agreement_no} 中，请先解约",
                yibao_domain::IdNumber::parse(&id_number, today)
                    .map(|i| i.id_number.masked())
                    .unwrap_or_else(|_| "该人员".into())
            ),
        )),
    }
}

/// The kind of channel of a bank's auto-debit (委托扣款).
pub const AUTO_DEBIT: &str = "auto_debit";

/// Creates the run of a bank, region and fee year for `debit_date`, locking its payables.
pub async fn create_run(
    storage: &dyn Storage,
    clock: &Clock,
    channel_id: &str,
    region: &str,
    fee_year: i32,
    debit_date: NaiveDate,
) -> Result<DebitRunRecord, ServiceError> {
    Ok(
        create_run_leaving_out(storage, clock, channel_id, region, fee_year, debit_date)
            .await?
            .run,
    )
}

/// A run created, and how many under agreement it left out because the 2025 rules would not
/// sell them the year on the debit date (a wait past the year's end where the region refuses
/// that): staff tell them to pay at the station.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedRun {
    #[serde(flatten)]
    pub run: DebitRunRecord,
    pub left_out: usize,
}

/// [`create_run`], saying how many the rules left out.
pub async fn create_run_leaving_out(
    storage: &dyn Storage,
    clock: &Clock,
    channel_id: &str,
    region: &str,
    fee_year: i32,
    debit_date: NaiveDate,
) -> Result<CreatedRun, ServiceError> {
    let region = RegionCode::parse(region)?;
    let fee_year = yibao_domain::FeeYear::new(i64::from(fee_year))?;
    if debit_date < clock.today() || debit_date > clock.today() + Duration::days(366) {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "扣款日期应在今天至一年之内",
        ));
    }
    let lock_until = CHINA_STANDARD_TIME
        .from_local_datetime(
            &(debit_date + Duration::days(DEBIT_LOCK_DAYS + 1))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default(),
        )
        .single()
        .map(|t| t.timestamp())
        .ok_or_else(|| ServiceError::new(ErrorCode::InvalidRequest, "扣款日期不正确"))?;
    let run_no = format!(
        "DR{}{}",
        debit_date.format("%Y%m%d"),
        &super::new_id("")[..8]
    );
    // The region's channel rules (issue 17): what bank auto-debit may not collect stays out of
    // the run; a run that could collect nothing is refused, saying why.
    let policy = storage.get_fee_policy(region, fee_year).await?;
    let (skip_subsidised, skip_full) = match &policy {
        Some(policy) => {
            // The 2025 rules: past the year's last date nothing of it can be bought (the money a
            // bank debited then would be applied to a year that gives no cover).
            let last = policy.cover_rules().last_date(fee_year);
            if debit_date > last {
                return Err(ServiceError::new(
                    ErrorCode::YearClosed,
                    format!(
                        "扣款日期 {debit_date} 已过{}年度的最后缴费日 {last}，不能再扣缴该年度保费",
                        fee_year.get()
                    ),
                ));
            }
            // A debit is a payment on its date: outside the collection window and its extension
            // (and past them where the region takes no late payment) the bank would take money
            // that no payable of the year may receive.
            let window = policy.window();
            let last_day = policy.late_from().pred_opt().unwrap_or(window.closes());
            if !policy.accepts_payment_on(debit_date) {
                let when = if debit_date < window.opens() {
                    "在征缴期开始之前"
                } else {
                    "已过征缴期，该统筹区本年度不接受逾期缴费"
                };
                let extended = match last_day > window.closes() {
                    true => format!("，延长至 {last_day}"),
                    false => String::new(),
                };
                return Err(ServiceError::new(
                    ErrorCode::WindowClosed,
                    format!(
                        "扣款日期 {debit_date} {when}（{}年度征缴期 {} 至 {}{extended}），请改在征缴期内扣款",
                        fee_year.get(),
                        window.opens(),
                        window.closes()
                    ),
                ));
            }
            let rules = &policy.cover_rules().channels;
            let refused = |class| rules.check(AUTO_DEBIT, &[class]).err();
            if debit_date >= policy.late_from() {
                if let Some(refusal) = refused(yibao_domain::PayableClass::Late) {
                    return Err(ServiceError::new(
                        ErrorCode::ChannelNotAllowed,
                        format!("扣款日期在征缴期之后：{refusal}"),
                    ));
                }
            }
            let subsidised = refused(yibao_domain::PayableClass::Subsidised);
            match (subsidised, refused(yibao_domain::PayableClass::Full)) {
                (Some(_), Some(refusal)) => {
                    return Err(ServiceError::new(
                        ErrorCode::ChannelNotAllowed,
                        refusal.to_string(),
                    ))
                }
                (subsidised, full) => (subsidised.is_some(), full.is_some()),
            }
        }
        None => (false, false),
    };
    let leave_out = match &policy {
        Some(policy) => {
            refused_on(
                storage,
                channel_id,
                policy,
                debit_date,
                clock.now().timestamp(),
                (skip_subsidised, skip_full),
            )
            .await?
        }
        None => Vec::new(),
    };
    let left_out = leave_out.len();
    match storage
        .create_debit_run(&NewDebitRun {
            skip_subsidised,
            skip_full,
            leave_out,
            run_no,
            channel_id: channel_id.to_owned(),
            region,
            fee_year,
            debit_date,
            lock_until,
            now: clock.now().timestamp(),
        })
        .await?
    {
        DebitRunOutcome::Created(run) => Ok(CreatedRun { run, left_out }),
        DebitRunOutcome::Exists(run) => Err(ServiceError::new(
            ErrorCode::AlreadyExists,
            format!("该银行该日已有扣款批次 {}", run.run_no),
        )),
        DebitRunOutcome::NotAutoDebitChannel => Err(ServiceError::new(
            ErrorCode::RegionNotAllowed,
            "该渠道不是开通此统筹区委托扣款（auto_debit）的银行",
        )),
        DebitRunOutcome::TooMany { candidates } => Err(ServiceError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "待扣款超过单批上限 {MAX_DEBIT_BATCH} 笔（至少 {candidates} 笔），请分日期建立批次"
            ),
        )),
    }
}

/// The payables a run of `channel_id` would take on `debit_date` that the 2025 rules would not
/// sell then: a wait past the year's end where the region refuses that (`WAIT_PAST_YEAR_END`,
/// decided per person from what is stored of them). Those of a class the run leaves out anyway
/// (`skip`: subsidised, full) are not counted. Nothing to decide where the region accepts such
/// waits.
async fn refused_on(
    storage: &dyn Storage,
    channel_id: &str,
    policy: &FeePolicy,
    debit_date: NaiveDate,
    now: i64,
    (skip_subsidised, skip_full): (bool, bool),
) -> Result<Vec<String>, ServiceError> {
    if policy.cover_rules().waiting.past_year_end != yibao_domain::cover_rules::PastYearEnd::Refuse
    {
        return Ok(Vec::new());
    }
    let ids = storage
        .debit_run_candidates(channel_id, policy.region(), policy.fee_year(), now)
        .await?;
    if ids.len() > MAX_DEBIT_BATCH {
        return Ok(Vec::new()); // The run is refused as too large anyway.
    }
    let mut views = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(REFUSAL_READ_CHUNK) {
        views.extend(storage.payables_by_id(chunk).await?);
    }
    views.retain(|v| {
        let subsidised = v.payable.relief_kind.is_some();
        !(skip_subsidised && subsidised || skip_full && !subsidised)
    });
    let policies = HashMap::from([((policy.region(), policy.fee_year()), policy.clone())]);
    let covers = super::cover::covers_for(
        storage,
        &views,
        &policies,
        debit_date,
        super::cover::BackPaymentsWith::PaidTogether,
        |_| true,
    )
    .await?;
    Ok(views
        .iter()
        .filter(|v| {
            covers
                .get(&v.payable.payable_id)
                .is_some_and(|c| matches!(&c.start, Err(r) if r.code() == "WAIT_PAST_YEAR_END"))
        })
        .map(|v| v.payable.payable_id.clone())
        .collect())
}

/// Payables read at a time when deciding what a run leaves out (bounded statements on SQLite).
const REFUSAL_READ_CHUNK: usize = 1_000;

/// The request file of a run, for the bank.
pub async fn request_file(storage: &dyn Storage, run_no: &str) -> Result<Vec<u8>, ServiceError> {
    let run = storage
        .debit_run(run_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    let items = storage
        .debit_run_items(run_no, None, MAX_DEBIT_BATCH)
        .await?;
    if items.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "该批次没有待扣款人员",
        ));
    }
    // The bank checks the agreement's holder (持卡人), whose account it debits: the holder's ID
    // number and name go in the line, the member the debit pays for after the amount.
    let request: Vec<DebitRequestItem> = items
        .into_iter()
        .map(|i| {
            if i.holder_id_number.is_empty() || i.holder_name.is_empty() {
                return Err(ServiceError::internal(
                    "debit request file",
                    format!(
                        "agreement {} of item {} has no holder",
                        i.agreement_no, i.item_ref
                    ),
                ));
            }
            let member = (!i.name.is_empty()).then(|| DebitMember {
                id_number: i.id_number.as_str().to_owned(),
                name: i.name.clone(),
            });
            Ok(DebitRequestItem {
                item_ref: i.item_ref,
                agreement_no: i.agreement_no,
                id_number: i.holder_id_number,
                name: i.holder_name,
                amount: i.amount_fen,
                member,
            })
        })
        .collect::<Result<_, ServiceError>>()?;
    write_debit_request(
        &DebitRequestHeader {
            run_no: run.run_no,
            bank_code: run.channel_id,
            region_code: run.region.to_string(),
            debit_date: run.debit_date,
        },
        &request,
    )
    .map_err(|e| ServiceError::internal("debit request file", e.message_zh()))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DebitResultSummary {
    pub run_no: String,
    pub succeeded: u64,
    pub succeeded_fen: i64,
    /// Of the successes, those whose money could not all be applied (the payable was paid another
    /// way after an abandoned run, or the amount differed): owed back.
    pub refunds_owed: u64,
    pub failed: u64,
    /// Failures by reason code.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Items already decided by an earlier import of the same file.
    pub already_applied: u64,
}

/// Imports the bank's result file for a run. The same file again resumes or repeats the answer; a
/// different file for the same run is refused.
pub async fn import_result(
    storage: &dyn Storage,
    clock: &Clock,
    run_no: &str,
    bytes: &[u8],
) -> Result<DebitResultSummary, ServiceError> {
    if bytes.len() > MAX_DEBIT_FILE_BYTES {
        return Err(ServiceError::of(ErrorCode::PayloadTooLarge));
    }
    let limits = Limits {
        max_bytes: MAX_DEBIT_FILE_BYTES as u64,
        ..Limits::default()
    };
    let result = read_debit_result(bytes, &limits)
        .map_err(|e| ServiceError::new(ErrorCode::BadDebitFile, e.message_zh()))?;
    let run = storage
        .debit_run(run_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    // The bank cannot have debited before the run's debit date: a result before it would date
    // payments in the future (receipts say today, the daily report misses them).
    if let Err(e) = debit_booking_day(run.debit_date, clock.today(), None) {
        return Err(ServiceError::new(
            ErrorCode::DebitDateNotReached,
            e.to_string(),
        ));
    }
    if result.header.run_no != run_no {
        return Err(ServiceError::new(
            ErrorCode::BadDebitFile,
            format!("结果文件的批次号为 {}，不是 {run_no}", result.header.run_no),
        ));
    }
    let items = storage
        .debit_run_items(run_no, None, MAX_DEBIT_BATCH)
        .await?;
    let by_ref: std::collections::HashMap<&str, &yibao_storage::settlement::DebitItemRecord> =
        items.iter().map(|i| (i.item_ref.as_str(), i)).collect();
    // Every item answered, each once, none unknown: a partial file would leave payables locked.
    if result.rows.len() != items.len() {
        return Err(ServiceError::new(
            ErrorCode::BadDebitFile,
            format!(
                "结果文件有 {} 笔，扣款批次有 {} 笔，请银行返回完整结果",
                result.rows.len(),
                items.len()
            ),
        ));
    }
    if let Some(row) = result
        .rows
        .iter()
        .find(|r| !by_ref.contains_key(r.item_ref.as_str()))
    {
        return Err(ServiceError::new(
            ErrorCode::BadDebitFile,
            format!("第{}行的扣款编号 {} 不属于该批次", row.row, row.item_ref),
        ));
    }
    if result.header.bank_code != run.channel_id {
        return Err(ServiceError::new(
            ErrorCode::BadDebitFile,
            format!(
                "结果文件的银行代码为 {}，该批次的银行是 {}",
                result.header.bank_code, run.channel_id
            ),
        ));
    }
    // Each line's own debit day (when the bank gives one) lies between the debit date and today,
    // and a member echoed back is the one the request named.
    for row in &result.rows {
        if let Err(e) = debit_booking_day(run.debit_date, clock.today(), row.debit_day) {
            return Err(ServiceError::new(
                ErrorCode::BadDebitFile,
                format!("第{}行的{e}，请银行核对", row.row),
            ));
        }
        if let (Some(echoed), Some(item)) =
            (&row.member_id_number, by_ref.get(row.item_ref.as_str()))
        {
            if echoed != item.id_number.as_str() {
                return Err(ServiceError::new(
                    ErrorCode::BadDebitFile,
                    format!(
                        "第{}行的代扣人员证件号码与扣款请求中该笔（{}）的不符，请银行核对",
                        row.row, item.item_ref
                    ),
                ));
            }
        }
    }
    // A bank transaction id names one debit: twice in the file, or already used for another
    // payment of this bank, and the money of one of them would have nowhere to go.
    let mut seen = std::collections::HashSet::new();
    let mut txn_ids = Vec::new();
    for row in &result.rows {
        if let DebitOutcome::Succeeded { bank_txn_id, .. } = &row.outcome {
            if !seen.insert(bank_txn_id.as_str()) {
                return Err(ServiceError::new(
                    ErrorCode::BadDebitFile,
                    format!("第{}行的银行流水号 {bank_txn_id} 在文件中重复", row.row),
                ));
            }
            txn_ids.push(bank_txn_id.clone());
        }
    }
    let ours: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|i| i.bank_txn_id.as_deref())
        .collect();
    if let Some(used) = storage
        .payments_by_txn(&run.channel_id, &txn_ids)
        .await?
        .into_iter()
        .find(|p| !ours.contains(p.channel_txn_id.as_str()))
    {
        return Err(ServiceError::new(
            ErrorCode::BadDebitFile,
            format!(
                "银行流水号 {} 已用于该银行的另一笔缴费，请银行核对",
                used.channel_txn_id
            ),
        ));
    }
    let sha = hex::encode(Sha256::digest(bytes));
    let run = match storage.claim_debit_result(&run.run_no, &sha).await? {
        DebitResultClaim::Proceed(run) => run,
        DebitResultClaim::NotFound => {
            return Err(ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))
        }
        DebitResultClaim::OtherFile => {
            return Err(ServiceError::new(
                ErrorCode::IdempotencyConflict,
                "该批次已导入另一份结果文件，每批只扣款一次，不能再导入不同的结果",
            ))
        }
    };
    if run.status == DebitRunStatus::Completed {
        // The same file again after it was applied whole: the same answer (and the outcome
        // messages an import cut short did not queue).
        if let Some(stored) = run
            .result_summary
            .as_deref()
            .and_then(|s| serde_json::from_str::<DebitResultSummary>(s).ok())
        {
            super::reminders::queue_debit_notices(storage, &run, clock.now().timestamp()).await?;
            return Ok(stored);
        }
    }
    let holder = debit_lock_holder(run_no);
    let today = clock.today();
    let due = refund_due(storage, Some(run.region.as_str()), today).await?;
    let mut summary = DebitResultSummary {
        run_no: run_no.to_owned(),
        ..DebitResultSummary::default()
    };
    let mut results = Vec::with_capacity(result.rows.len());
    for row in &result.rows {
        let Some(item) = by_ref.get(row.item_ref.as_str()) else {
            continue;
        };
        // Checked above: the day the bank took the money, never after today.
        let paid_on = row.debit_day.unwrap_or(run.debit_date);
        results.push(match &row.outcome {
            DebitOutcome::Succeeded {
                bank_txn_id,
                amount,
            } => DebitItemResult::Succeeded {
                seq: item.seq,
                payment: Box::new(yibao_storage::collection::NewPayment {
                    nonce: None,
                    region: run.region,
                    payment_no: super::new_regional_id("PM", run.region.as_str()),
                    refund_no: super::new_regional_id("RF", run.region.as_str()),
                    channel_id: run.channel_id.clone(),
                    channel_txn_id: bank_txn_id.clone(),
                    order_no: None,
                    lock_holder: Some(holder.clone()),
                    refund_all: None,
                    payable_ids: vec![item.payable_id.clone()],
                    amount_fen: *amount,
                    paid_at: format!("{paid_on}T12:00:00+08:00"),
                    paid_on,
                    fingerprint: format!("debit:{run_no}:{}:{}", item.item_ref, amount.as_fen()),
                    refund_due: due.clone(),
                    issued_on: today,
                    now: clock.now().timestamp(),
                    check_codes: vec![super::new_check_code()],
                    event_ids: vec![super::new_regional_id("EV", run.region.as_str())],
                    // Filled below, a chunk at a time: when cover starts, for the receipt.
                    cover: Vec::new(),
                }),
            },
            DebitOutcome::Failed {
                reason_code,
                reason,
            } => DebitItemResult::Failed {
                seq: item.seq,
                code: reason_code.clone(),
                reason: reason.clone(),
            },
        });
    }
    let mut policies = HashMap::new();
    // A run pays up to 50 000 payables in one import: the payment tables grow as they do under
    // the channels' reports, and their foreign-key checks, planned while the tables were nearly
    // empty, read `payments` whole for each item until the statistics are refreshed (measured:
    // 5 000 items in 40.2 s, each receipt's and application's check 2-7 ms and growing).
    let mut growth = GrowthRefresh::new(storage, GrowingTables::Payments);
    let mut applied: u64 = 0;
    for chunk in results.chunks_mut(DEBIT_APPLY_CHUNK) {
        if growth.due(applied) {
            growth.refresh(storage, applied).await;
        }
        note_cover(storage, chunk, &mut policies).await?;
        let chunk = &*chunk;
        let outcomes = storage.apply_debit_results(run_no, chunk).await?;
        applied += chunk.len() as u64;
        for (input, outcome) in chunk.iter().zip(outcomes) {
            match (input, outcome) {
                (_, None) if matches!(input, DebitItemResult::Succeeded { .. }) => {
                    summary.already_applied += 1
                }
                (DebitItemResult::Succeeded { payment, .. }, Some(outcome)) => {
                    summary.succeeded += 1;
                    summary.succeeded_fen += payment.amount_fen.as_fen();
                    let owed = match outcome {
                        PaymentReportOutcome::Stored(o)
                        | PaymentReportOutcome::Existing { outcome: o, .. } => o.refund.is_some(),
                        PaymentReportOutcome::ReversedEarlier | PaymentReportOutcome::NonceUsed => {
                            false
                        }
                    };
                    if owed {
                        summary.refunds_owed += 1;
                    }
                }
                (DebitItemResult::Failed { code, .. }, _) => {
                    summary.failed += 1;
                    *summary.failures.entry(code.clone()).or_default() += 1;
                }
                (DebitItemResult::Succeeded { .. }, None) => {}
            }
        }
    }
    let text =
        serde_json::to_string(&summary).map_err(|e| ServiceError::internal("debit summary", e))?;
    if matches!(run.status, DebitRunStatus::Sent | DebitRunStatus::Abandoned) {
        storage
            .complete_debit_run(run_no, &text, clock.now().timestamp())
            .await?;
    }
    // Each resident debited, or not, is told by text message (扣款结果通知).
    super::reminders::queue_debit_notices(storage, &run, clock.now().timestamp()).await?;
    Ok(summary)
}

/// Gives each debited item of `chunk` the 2025 rules' answer for its day (when cover starts, the
/// year's reward), as a channel's report gets it, for the receipt and the posting: one read of the
/// chunk's payables and one of what is stored of their persons, per day debited (usually one).
/// The bank debited what the run named, so the answer records and refuses nothing.
async fn note_cover(
    storage: &dyn Storage,
    chunk: &mut [DebitItemResult],
    policies: &mut HashMap<(RegionCode, FeeYear), FeePolicy>,
) -> Result<(), ServiceError> {
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<String>> = BTreeMap::new();
    for item in chunk.iter() {
        if let DebitItemResult::Succeeded { payment, .. } = item {
            by_day
                .entry(payment.paid_on)
                .or_default()
                .extend(payment.payable_ids.iter().cloned());
        }
    }
    for (day, ids) in by_day {
        let views = storage.payables_by_id(&ids).await?;
        super::cover::add_policies(storage, &views, policies).await?;
        let notes = super::cover::cover_notes(storage, &views, policies, &ids, day).await?;
        let by_id: HashMap<&String, &Option<yibao_storage::collection::CoverNote>> =
            ids.iter().zip(notes.iter()).collect();
        for item in chunk.iter_mut() {
            if let DebitItemResult::Succeeded { payment, .. } = item {
                if payment.paid_on == day {
                    payment.cover = payment
                        .payable_ids
                        .iter()
                        .map(|id| by_id.get(id).and_then(|n| (*n).clone()))
                        .collect();
                }
            }
        }
    }
    Ok(())
}

// What staff do through the settlement API and the console: each within the staff member's
// collection scope ([`Staff::collection_read_scope`], [`Staff::collection_write_scope`]), the
// changes and the reads of payers' personal data audited.

/// Regions named when a number alone finds agreements in several.
const AGREEMENT_REGIONS_NAMED: usize = 10;

/// The agreement numbered `agreement_no` for someone working in `scope` (`None`: every
/// region), in `region` when they name one. A number is the bank's, unique within its region
/// only: without a region it must name one agreement of the scope. 404 when there is none (in
/// the region named), 403 when a staff member of one region names none and only another region
/// has it, 400 (naming the regions) when several have it.
pub async fn find_agreement(
    storage: &dyn Storage,
    scope: &Option<String>,
    region: Option<&str>,
    agreement_no: &str,
) -> Result<AgreementRecord, ServiceError> {
    let not_found = || ServiceError::new(ErrorCode::NotFound, "未找到该委托扣款协议");
    let region_named = region;
    if let Some(region) = region {
        RegionCode::parse(region)?;
        within(scope, region)?;
    }
    let region = match region.or(scope.as_deref()) {
        Some(region) => region.to_owned(),
        None => {
            let regions = storage
                .agreement_regions(agreement_no, AGREEMENT_REGIONS_NAMED)
                .await?;
            match regions.as_slice() {
                [] => return Err(not_found()),
                [only] => only.clone(),
                several => {
                    return Err(ServiceError::new(
                        ErrorCode::InvalidRequest,
                        format!(
                            "统筹区 {} 都有协议号 {agreement_no}，请指明统筹区（region）",
                            several.join("、")
                        ),
                    ))
                }
            }
        }
    };
    if let Some(found) = storage.agreement(&region, agreement_no).await? {
        return Ok(found);
    }
    // Not in the staff member's own region, which they did not name: another region's is
    // refused, as it was before numbers were the region's.
    let elsewhere = region_named.is_none()
        && scope.is_some()
        && !storage.agreement_regions(agreement_no, 1).await?.is_empty();
    Err(if elsewhere {
        ServiceError::of(ErrorCode::Forbidden)
    } else {
        not_found()
    })
}

/// Cancels (解约) `agreement` from `on`, returning it as stored.
pub async fn cancel_found_agreement(
    storage: &dyn Storage,
    agreement: &AgreementRecord,
    on: NaiveDate,
) -> Result<AgreementRecord, ServiceError> {
    storage
        .cancel_agreement(agreement.region.as_str(), &agreement.agreement_no, on)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该委托扣款协议"))
}

/// The run numbered `run_no` if it lies in `scope`: 404 when there is none, 403 when it is
/// another region's.
async fn run_in_scope(
    storage: &dyn Storage,
    scope: &Option<String>,
    run_no: &str,
) -> Result<DebitRunRecord, ServiceError> {
    let run = storage
        .debit_run(run_no)
        .await?
        .ok_or_else(|| ServiceError::new(ErrorCode::NotFound, "未找到该扣款批次"))?;
    within(scope, run.region.as_str())?;
    Ok(run)
}

/// Signs an agreement for a staff member of its region, audited `agreement.sign`.
pub async fn sign_agreement_as_staff(
    state: &AppState,
    staff: &Staff,
    input: AgreementInput<'_>,
) -> Result<AgreementRecord, ServiceError> {
    let scope = staff.collection_write_scope()?;
    within(&scope, input.region)?;
    let record = sign_agreement(state.storage.as_ref(), &state.clock, input).await?;
    let region = Some(record.region);
    audit(
        state,
        staff,
        "agreement.sign",
        region,
        &record.agreement_no,
        serde_json::json!({"channel_id": record.channel_id, "members": record.members.len()}),
    )
    .await?;
    Ok(record)
}

/// The agreements a staff member may read, of `region` or of one person (as payer or member),
/// audited `read.agreements`.
pub async fn list_agreements(
    state: &AppState,
    staff: &Staff,
    region: Option<String>,
    id_number: Option<&str>,
) -> Result<Vec<AgreementRecord>, ServiceError> {
    let scope = staff.collection_read_scope()?;
    let region = scope.or(region);
    let list = state
        .storage
        .agreements(region.as_deref(), id_number, MAX_LIST_ROWS)
        .await?;
    // Payers' ID numbers and names: reading them is audited.
    audit(
        state,
        staff,
        "read.agreements",
        None,
        region.as_deref().unwrap_or("all"),
        serde_json::json!({ "region": region, "by_id_number": id_number.is_some(), "rows": list.len() }),
    )
    .await?;
    Ok(list)
}

/// Cancels (解约) an agreement of the staff member's scope from today, of `region` when they
/// name one ([`find_agreement`]), audited `agreement.cancel`.
pub async fn cancel_agreement(
    state: &AppState,
    staff: &Staff,
    region: Option<&str>,
    agreement_no: &str,
) -> Result<AgreementRecord, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let existing = find_agreement(state.storage.as_ref(), &scope, region, agreement_no).await?;
    let record =
        cancel_found_agreement(state.storage.as_ref(), &existing, state.clock.today()).await?;
    audit(
        state,
        staff,
        "agreement.cancel",
        Some(record.region),
        agreement_no,
        serde_json::json!({}),
    )
    .await?;
    Ok(record)
}

/// Creates a run for a staff member of its region ([`create_run`]; `debit_date` is
/// `YYYY-MM-DD`), audited `debit_run.create`.
pub async fn create_run_as_staff(
    state: &AppState,
    staff: &Staff,
    channel_id: &str,
    region: &str,
    fee_year: i32,
    debit_date: &str,
) -> Result<CreatedRun, ServiceError> {
    let scope = staff.collection_write_scope()?;
    within(&scope, region)?;
    let created = create_run_leaving_out(
        state.storage.as_ref(),
        &state.clock,
        channel_id,
        region,
        fee_year,
        date_of(debit_date)?,
    )
    .await?;
    let run = &created.run;
    audit(
        state,
        staff,
        "debit_run.create",
        Some(run.region),
        &run.run_no,
        serde_json::json!({"items": run.item_count, "total": run.total_fen, "left_out": created.left_out}),
    )
    .await?;
    Ok(created)
}

/// The debit runs a staff member may read, of `region` (their own for a tax collector), newest
/// first.
pub async fn list_runs(
    state: &AppState,
    staff: &Staff,
    region: Option<String>,
) -> Result<Vec<DebitRunRecord>, ServiceError> {
    let region = staff.collection_read_scope()?.or(region);
    let runs = state
        .storage
        .debit_runs(region.as_deref(), MAX_LIST_ROWS)
        .await?;
    Ok(runs)
}

/// A run with its items (those of one `outcome` when named), audited `read.debit_run`.
pub async fn run_detail(
    state: &AppState,
    staff: &Staff,
    run_no: &str,
    outcome: Option<&str>,
) -> Result<DebitRunDetail, ServiceError> {
    let scope = staff.collection_read_scope()?;
    let run = run_in_scope(state.storage.as_ref(), &scope, run_no).await?;
    if let Some(o) = outcome {
        if !matches!(o, "pending" | "succeeded" | "failed" | "released") {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "outcome 应为 pending、succeeded、failed 或 released",
            ));
        }
    }
    let items = state
        .storage
        .debit_run_items(run_no, outcome, MAX_LIST_ROWS)
        .await?;
    // The items carry payers' ID numbers and names: reading them is audited.
    audit(
        state,
        staff,
        "read.debit_run",
        Some(run.region),
        run_no,
        serde_json::json!({ "outcome": outcome, "rows": items.len() }),
    )
    .await?;
    Ok(DebitRunDetail { run, items })
}

/// A run's request file for the bank, with the run it belongs to (which names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitRequestFile {
    pub run_no: String,
    pub bytes: Vec<u8>,
}

/// The request file of a run of the staff member's scope ([`request_file`]).
pub async fn request_file_as_staff(
    state: &AppState,
    staff: &Staff,
    run_no: &str,
) -> Result<DebitRequestFile, ServiceError> {
    let scope = staff.collection_write_scope()?;
    run_in_scope(state.storage.as_ref(), &scope, run_no).await?;
    let bytes = request_file(state.storage.as_ref(), run_no).await?;
    Ok(DebitRequestFile {
        run_no: run_no.to_owned(),
        bytes,
    })
}

/// Imports the bank's result for a run of the staff member's scope ([`import_result`]), audited
/// `debit_run.result` with the summary.
pub async fn import_result_as_staff(
    state: &AppState,
    staff: &Staff,
    run_no: &str,
    bytes: &[u8],
) -> Result<DebitResultSummary, ServiceError> {
    let scope = staff.collection_write_scope()?;
    let run = run_in_scope(state.storage.as_ref(), &scope, run_no).await?;
    let summary = import_result(state.storage.as_ref(), &state.clock, run_no, bytes).await?;
    audit(
        state,
        staff,
        "debit_run.result",
        Some(run.region),
        run_no,
        serde_json::json!(summary),
    )
    .await?;
    Ok(summary)
}
