//! Payment reminders (缴费提醒, issue 19): in the days before a region's window closes, every
//! resident with the year's contribution unpaid, a mobile phone on record and reminders not turned
//! off gets a text message, at most once in the region's interval. The citizen site's sender
//! sends them ([`yibao_citizen`'s delivery round]); a payment made before sending cancels one.
//! A bank's answer to a debit run is told the same way (扣款结果通知, [`queue_debit_notices`]).

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use yibao_domain::reminders::{DebitNoticeKind, DebitNoticeText, ReminderText};
use yibao_domain::{FeePolicy, Fen, IdNumber, Phone};
use yibao_storage::citizen_accounts::{
    NewDebitNotice, NewReminder, DEBIT_NOTICE_PREFIX, REMINDER_PREFIX,
};
use yibao_storage::settlement::DebitRunRecord;
use yibao_storage::Storage;

use crate::clock::CHINA_STANDARD_TIME;
use crate::error::ServiceError;

/// Candidates read per statement.
pub const REMINDER_BATCH: i64 = 500;

/// What one reminder round did for a region and fee year.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ReminderRound {
    pub region: String,
    pub fee_year: u16,
    /// False outside the reminder days (nothing was looked at).
    pub due: bool,
    /// Reminders queued by this round.
    pub queued: u64,
    /// Residents due a reminder whose phone on record is not a mobile number.
    pub no_mobile: u64,
}

/// Queues the reminders of `policy`'s region and year due on `today` (`now`: unix seconds).
/// Idempotent within an interval: a round run again queues nothing twice.
pub async fn queue_reminders(
    storage: &dyn Storage,
    policy: &FeePolicy,
    today: NaiveDate,
    now: i64,
) -> Result<ReminderRound, ServiceError> {
    let rules = &policy.cover_rules().reminders;
    let closes = policy.window().closes();
    let mut round = ReminderRound {
        region: policy.region().to_string(),
        fee_year: policy.fee_year().get(),
        due: rules.due_on(closes, today),
        ..ReminderRound::default()
    };
    if !round.due {
        return Ok(round);
    }
    let day = today.signed_duration_since(NaiveDate::default()).num_days();
    let period = rules.period_of(day);
    let since = now - i64::from(rules.interval_days) * 86_400;
    // A reminder not sent by the end of the window's last day is given up.
    let send_before = closes
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(CHINA_STANDARD_TIME).single())
        .map_or(now + 86_400, |t| t.timestamp());
    let region = policy.region();
    let year = i32::from(policy.fee_year().get());
    let accounts = storage.citizen_accounts();
    let ways = super::accounts::ways_to_pay_zh(&storage.list_channels().await?, region.as_str());
    let mut after = String::new();
    loop {
        let candidates = accounts
            .reminder_candidates(region.as_str(), year, since, &after, REMINDER_BATCH)
            .await?;
        let Some(last) = candidates.last() else { break };
        after = last.payable_id.clone();
        // What is stored of the batch's persons, in one statement per MAX_STORED_COVERS.
        let ids: Vec<IdNumber> = candidates
            .iter()
            .filter_map(|c| IdNumber::parse(&c.id_number, today).ok())
            .map(|p| p.id_number)
            .collect();
        let mut stored = std::collections::HashMap::new();
        for chunk in ids.chunks(yibao_storage::cover_history::MAX_STORED_COVERS) {
            stored.extend(storage.stored_covers(region, chunk).await?);
        }
        let mut batch = Vec::with_capacity(candidates.len());
        for c in &candidates {
            let Ok(phone) = Phone::parse(&c.phone) else {
                round.no_mobile += 1;
                continue;
            };
            let Ok(id) = IdNumber::parse(&c.id_number, today).map(|p| p.id_number) else {
                continue;
            };
            let cover = super::cover::person_cover(
                policy,
                &id,
                stored.remove(&id).unwrap_or_default(),
                today,
            );
            let cover_text = match &cover.start {
                Ok(start) => format!("今天缴费，自{}起享受待遇", start.starts_on),
                Err(refusal) => refusal.to_string(),
            };
            let name = crate::receipts::masked_name(&c.name);
            let body = ReminderText {
                name_masked: &name,
                fee_year: policy.fee_year().get(),
                amount: Fen::new(c.amount_fen).unwrap_or(Fen::ZERO),
                closes,
                cover: Some(&cover_text),
                ways: &ways,
            }
            .render();
            batch.push(NewReminder {
                message_id: format!("{REMINDER_PREFIX}{}", uuid::Uuid::new_v4().simple()),
                payable_id: c.payable_id.clone(),
                phone: phone.as_str().to_owned(),
                body,
            });
        }
        round.queued += accounts
            .queue_reminders(region.as_str(), year, period, now, send_before, &batch)
            .await?;
        if candidates.len() < REMINDER_BATCH as usize {
            break;
        }
    }
    Ok(round)
}

/// A reminder round for every region's fee years whose reminder days include `today`: what the
/// background round and `yibao reminders queue` run. Regions and policies are few; each policy
/// not due costs nothing more.
pub async fn queue_due_reminders(
    storage: &dyn Storage,
    today: NaiveDate,
    now: i64,
) -> Result<Vec<ReminderRound>, ServiceError> {
    let mut rounds = Vec::new();
    for region in storage.list_regions().await? {
        for policy in storage.list_fee_policies(region.code()).await? {
            let rules = &policy.cover_rules().reminders;
            if rules.due_on(policy.window().closes(), today) {
                rounds.push(queue_reminders(storage, &policy, today, now).await?);
            }
        }
    }
    Ok(rounds)
}

/// How long a debit-run outcome's message may wait for the sender: three days.
pub const DEBIT_NOTICE_SEND_WITHIN_SECONDS: i64 = 3 * 86_400;

/// Tells each resident a debit run debited, or tried to, what the bank did (扣款结果通知): one
/// text message per answered item to the phone on record, unless reminders are turned off; a
/// failure says why, until when and how else to pay. Idempotent: an item told already is skipped
/// (a result file imported again queues nothing twice). Two statements and one transaction
/// whatever the run's size. Returns how many were queued.
pub async fn queue_debit_notices(
    storage: &dyn Storage,
    run: &DebitRunRecord,
    now: i64,
) -> Result<u64, ServiceError> {
    let accounts = storage.citizen_accounts();
    let candidates = accounts
        .debit_notice_candidates(run.region.as_str(), &run.run_no)
        .await?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let pay_by = storage
        .get_fee_policy(run.region, run.fee_year)
        .await?
        .map_or(run.debit_date, |p| p.pay_by_after(run.debit_date));
    let ways =
        super::accounts::ways_to_pay_zh(&storage.list_channels().await?, run.region.as_str());
    let mut notices = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let Ok(phone) = Phone::parse(&c.phone) else {
            continue;
        };
        let kind = DebitNoticeKind::of(c.succeeded, c.failure_code.as_deref());
        let label = c
            .failure_code
            .as_deref()
            .map(|code| yibao_statement_file::DebitFailure::from_code(code).label_zh());
        let reason = c
            .failure_reason
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .or(label);
        let name = crate::receipts::masked_name(&c.name);
        let body = DebitNoticeText {
            name_masked: &name,
            fee_year: run.fee_year.get(),
            amount: Fen::new(c.amount_fen).unwrap_or(Fen::ZERO),
            kind,
            debit_date: run.debit_date,
            pay_by,
            reason,
            ways: &ways,
        }
        .render();
        notices.push(NewDebitNotice {
            seq: c.seq,
            message_id: format!("{DEBIT_NOTICE_PREFIX}{}", uuid::Uuid::new_v4().simple()),
            phone: phone.as_str().to_owned(),
            body,
            kind: kind.code(),
        });
    }
    Ok(accounts
        .queue_debit_notices(
            run.region.as_str(),
            &run.run_no,
            i32::from(run.fee_year.get()),
            now,
            now + DEBIT_NOTICE_SEND_WITHIN_SECONDS,
            &notices,
        )
        .await?)
}
