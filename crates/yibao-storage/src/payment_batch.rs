//! Group commit's fast path (issue 14): the payment reports of one batch decided together
//! ([`yibao_domain::decide_batch`]) and written set-based, a fixed number of statements per
//! channel and region of the batch instead of about twelve per report.
//!
//! Every answer and every row is what the reports, stored one after another in the batch's
//! order, would have given (`PaymentStore::report_payments`'s savepoint path, which stays the
//! reference). Whatever that path does differently is left to it: a batch that names one
//! transaction twice, meets a reversal recorded first, a key without its payment, a statement's
//! own booking, or fails in any statement, is rolled back whole and reported one by one.
//!
//! The statements, each once per channel or region of the batch (one shard each on Citus):
//! claim the transactions' keys (per channel); read the answers of those reported before (per
//! region); look for reversals that came first (per channel); lock the orders, then the
//! payables, in payable order (per region); then decide; then per region take the receipt
//! numbers, insert the payments with their answers, pay the payables with their applications,
//! issue the receipts, queue the postings, record the refunds owed and mark the orders paid.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use yibao_domain::{decide_batch, BatchPayable, PayableAtReport, PaymentDecision, PaymentReport};

use crate::collection::{
    NewPayment, PayableView, PaymentOutcome, PaymentReportOutcome, ReceiptRef,
};
use crate::dialect::{Dialect, Statement};
use crate::payments::{
    apply_to_payables, insert_receipts_and_postings, insert_refunds, receipt_code, receipt_refs,
    refund_ref, take_receipt_numbers, AppliedPayable,
};
use crate::rows::{record, PAYABLE_VIEW_SELECT};
use crate::status_moves::order;
use crate::StorageError;

/// Batches this process reported one by one after the fast path declined or failed.
static ONE_BY_ONE: AtomicU64 = AtomicU64::new(0);

/// How many group-commit batches (and batches of a bank's debit results) this process has
/// reported one by one instead of batch-wide:
/// rare by design (a reversal first, a transaction twice in one batch), so a count that climbs
/// under ordinary load says the fast path is not being taken.
pub fn batches_reported_one_by_one() -> u64 {
    ONE_BY_ONE.load(Ordering::Relaxed)
}

pub(crate) fn count_one_by_one() {
    ONE_BY_ONE.fetch_add(1, Ordering::Relaxed);
}

/// What a report's key said when the batch claimed it.
enum Claim {
    /// The key is this report's, inserted now: a new payment.
    New,
    /// Reported before: the payment stored under that key.
    Repeat { region: String, payment_no: String },
}

/// Reports the batch, or answers `None` when it must go one by one (see the module's
/// documentation); the caller then rolls back what this wrote. The outcomes are in the
/// batch's order.
pub(crate) async fn report_batch<S>(
    tx: &mut sqlx::Transaction<'static, S::DB>,
    payments: &[NewPayment],
) -> Result<Option<Vec<PaymentReportOutcome>>, StorageError>
where
    S: Dialect,
    for<'c> &'c mut <S::DB as Database>::Connection: Executor<'c, Database = S::DB>,
    for<'q> <S::DB as Database>::Arguments<'q>: IntoArguments<'q, S::DB>,
    for<'q> String: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> &'q str: Encode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<String>: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> Option<i32>: Encode<'q, S::DB>,
    for<'q> Option<NaiveDate>: Encode<'q, S::DB>,
    for<'q> Option<i64>: Encode<'q, S::DB>,
    for<'q> bool: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i64: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> i32: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'q> NaiveDate: Encode<'q, S::DB> + Decode<'q, S::DB> + Type<S::DB>,
    for<'a> &'a str: ColumnIndex<<S::DB as Database>::Row>,
    usize: ColumnIndex<<S::DB as Database>::Row>,
{
    use sqlx::Row as _;
    // A transaction named twice: the second must see the first's answer.
    let mut named = HashSet::new();
    if !payments
        .iter()
        .all(|p| named.insert((p.channel_id.as_str(), p.channel_txn_id.as_str())))
    {
        return Ok(None);
    }
    let by_channel = group(payments, |p| p.channel_id.as_str());
    let by_region = group(payments, |p| p.region.as_str());

    // Claim each transaction's key, a new one already pointing at this report's payment: the
    // key's row serialises everything about the transaction (a repeat or a reversal waits on
    // it). Per channel, in key order, so two writers lock keys in one order.
    let mut claims: Vec<Option<Claim>> = payments.iter().map(|_| None).collect();
    for (channel, mut reports) in by_channel.clone() {
        reports.sort_by(|&a, &b| payments[a].channel_txn_id.cmp(&payments[b].channel_txn_id));
        let mut q = Statement::<S::DB>::new(
            "INSERT INTO channel_keys (channel_id, key, touches, region_code, target)",
        );
        q.push_values(&reports, |row, &i| {
            let p = &payments[i];
            row.push_bind(channel.to_owned())
                .push_bind(format!("txn:{}", p.channel_txn_id))
                .push_bind(1_i64)
                .push_bind(p.region.as_str().to_owned())
                .push_bind(p.payment_no.clone());
        });
        q.push(
            " ON CONFLICT (channel_id, key) DO UPDATE SET touches = channel_keys.touches + 1 \
             RETURNING key, touches, region_code, target",
        );
        let (sql, args) = q.into_parts()?;
        for r in sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut **tx)
            .await?
        {
            let key: String = r.try_get("key")?;
            let region: Option<String> = r.try_get("region_code")?;
            let target: Option<String> = r.try_get("target")?;
            // Inserted now (touched once), or there before (touched again now).
            let touches: i64 = r.try_get("touches")?;
            let Some(&i) = reports
                .iter()
                .find(|&&i| key.strip_prefix("txn:") == Some(payments[i].channel_txn_id.as_str()))
            else {
                continue;
            };
            claims[i] = match (region, target) {
                (Some(_), Some(target)) if touches == 1 && target == payments[i].payment_no => {
                    Some(Claim::New)
                }
                (Some(region), Some(payment_no)) if touches > 1 => {
                    Some(Claim::Repeat { region, payment_no })
                }
                // A key without a payment: a reversal came first.
                _ => return Ok(None),
            };
        }
    }
    let Some(claims) = claims.into_iter().collect::<Option<Vec<Claim>>>() else {
        return Ok(None);
    };

    // The answers of transactions reported before, from the region their payment is in.
    let mut outcomes: Vec<Option<PaymentReportOutcome>> = payments.iter().map(|_| None).collect();
    let mut repeats: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    for (i, claim) in claims.iter().enumerate() {
        if let Claim::Repeat { region, payment_no } = claim {
            repeats
                .entry(region.as_str())
                .or_default()
                .push((i, payment_no.as_str()));
        }
    }
    for (region, reports) in &repeats {
        let mut q = Statement::<S::DB>::new(
            "SELECT payment_no, fingerprint, response FROM payments WHERE region_code = ",
        );
        q.push_bind((*region).to_owned()).push(" AND payment_no");
        let numbers: Vec<String> = reports.iter().map(|(_, no)| (*no).to_owned()).collect();
        S::push_id_list(&mut q, &numbers);
        let (sql, args) = q.into_parts()?;
        let rows = sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut **tx)
            .await?;
        for &(i, payment_no) in reports {
            let Some(r) = rows
                .iter()
                .find(|r| r.try_get::<String, _>("payment_no").ok().as_deref() == Some(payment_no))
            else {
                return Ok(None);
            };
            let fingerprint: String = r.try_get("fingerprint")?;
            let response: String = r.try_get("response")?;
            let booked_from_statement = fingerprint.starts_with("statement:");
            if booked_from_statement && !payments[i].fingerprint.starts_with("statement:") {
                // The channel's own report of a statement's booking: its fingerprint is taken over.
                return Ok(None);
            }
            let outcome: PaymentOutcome =
                serde_json::from_str(&response).map_err(StorageError::corrupt)?;
            outcomes[i] = Some(PaymentReportOutcome::Existing {
                outcome,
                same_request: booked_from_statement || fingerprint == payments[i].fingerprint,
            });
        }
    }
    let is_new = |i: usize| matches!(claims[i], Claim::New);

    // A reversal recorded before its payment: the one-by-one path decides what it does.
    for (channel, reports) in &by_channel {
        let fresh: Vec<usize> = reports.iter().copied().filter(|&i| is_new(i)).collect();
        if fresh.is_empty() {
            continue;
        }
        let mut q = Statement::<S::DB>::new("SELECT COUNT(*) FROM reversals WHERE channel_id = ");
        q.push_bind((*channel).to_owned())
            .push(" AND channel_txn_id");
        let txn_ids: Vec<String> = fresh
            .iter()
            .map(|&i| payments[i].channel_txn_id.clone())
            .collect();
        S::push_id_list(&mut q, &txn_ids);
        let (sql, args) = q.into_parts()?;
        let reversed: i64 = sqlx::query_scalar_with(&sql, S::arguments(args))
            .fetch_one(&mut **tx)
            .await?;
        if reversed > 0 {
            return Ok(None);
        }
    }

    // Per region: the orders' rows, then the payables named, locked in payable order (bytewise,
    // as orders and debit runs lock theirs) until the transaction ends.
    let mut views: Vec<PayableView> = Vec::new();
    for (region, reports) in &by_region {
        let fresh: Vec<usize> = reports.iter().copied().filter(|&i| is_new(i)).collect();
        let mut orders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for &i in &fresh {
            if let Some(order_no) = &payments[i].order_no {
                orders
                    .entry(payments[i].channel_id.as_str())
                    .or_default()
                    .push(order_no.as_str());
            }
        }
        for (channel, order_nos) in &orders {
            let mut q =
                Statement::<S::DB>::new("UPDATE orders SET status = status WHERE region_code = ");
            q.push_bind((*region).to_owned())
                .push(" AND channel_id = ")
                .push_bind((*channel).to_owned())
                .push(" AND order_no");
            let order_nos: Vec<String> = order_nos.iter().map(|o| (*o).to_owned()).collect();
            S::push_id_list(&mut q, &order_nos);
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, S::arguments(args))
                .execute(&mut **tx)
                .await?;
        }
        let ids: std::collections::BTreeSet<&str> = fresh
            .iter()
            .flat_map(|&i| payments[i].payable_ids.iter().map(String::as_str))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut q = Statement::<S::DB>::new(PAYABLE_VIEW_SELECT);
        q.push("WHERE y.region_code = ")
            .push_bind((*region).to_owned())
            .push(" AND y.payable_id");
        let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        S::push_id_list(&mut q, &ids);
        q.push(" ORDER BY y.payable_id ");
        q.push(S::BYTE_ORDER);
        q.push(S::LOCK_PAYABLES);
        let (sql, args) = q.into_parts()?;
        for r in sqlx::query_with(&sql, S::arguments(args))
            .fetch_all(&mut **tx)
            .await?
        {
            views.push(record::<PayableView, _>(&r)?);
        }
    }

    // Decide, in the batch's order.
    let holders: Vec<String> = payments
        .iter()
        .map(|p| {
            p.lock_holder
                .clone()
                .or_else(|| p.order_no.clone())
                .unwrap_or_default()
        })
        .collect();
    let fresh: Vec<usize> = (0..payments.len()).filter(|&i| is_new(i)).collect();
    let reports: Vec<(&str, PaymentReport<'_>)> = fresh
        .iter()
        .map(|&i| {
            let p = &payments[i];
            (
                p.region.as_str(),
                PaymentReport {
                    payable_ids: &p.payable_ids,
                    amount: p.amount_fen,
                    refund_all: p.refund_all,
                    earlier_reversal: None,
                    holder: &holders[i],
                    now: p.now,
                },
            )
        })
        .collect();
    let mut found: Vec<BatchPayable<'_>> = views
        .iter()
        .map(|v| BatchPayable {
            region: v.payable.region.as_str(),
            at: PayableAtReport {
                payable_id: &v.payable.payable_id,
                amount: v.payable.amount_fen,
                status: v.payable.status,
                locked_by: v.payable.locked_by.as_deref(),
                locked_until: v.payable.locked_until,
            },
        })
        .collect();
    let decisions = decide_batch(&reports, &mut found);

    // What each new report pays, in payable order (the order receipts are numbered in).
    struct Decided<'a> {
        index: usize,
        applied: Vec<AppliedPayable<'a>>,
        application: yibao_domain::PaymentApplication,
    }
    let mut decided: Vec<Decided<'_>> = Vec::with_capacity(fresh.len());
    for (&i, decision) in fresh.iter().zip(decisions) {
        let PaymentDecision::Stored(application) = decision else {
            // No reversal came first, so nothing is withdrawn; should it be, go one by one.
            return Ok(None);
        };
        let payment = &payments[i];
        let mut applied = application
            .applied
            .iter()
            .map(|&k| {
                let id = &payment.payable_ids[k];
                views
                    .iter()
                    .find(|v| v.payable.region == payment.region && &v.payable.payable_id == id)
                    .map(|view| AppliedPayable {
                        payment,
                        index: k,
                        view,
                    })
                    .ok_or_else(|| {
                        StorageError::Other(format!("payable {id} decided but not read"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        applied.sort_by(|a, b| a.view.payable.payable_id.cmp(&b.view.payable.payable_id));
        decided.push(Decided {
            index: i,
            applied,
            application,
        });
    }

    // Write, region by region.
    for (region, reports) in &by_region {
        let here: Vec<&Decided<'_>> = decided
            .iter()
            .filter(|d| reports.contains(&d.index))
            .collect();
        if here.is_empty() {
            continue;
        }
        // Receipt numbers: each code's counter advanced once for the whole batch, numbers
        // handed out in the batch's order, so they are what one-by-one would have given.
        let mut needed: BTreeMap<String, i64> = BTreeMap::new();
        for d in &here {
            if !d.applied.is_empty() {
                *needed.entry(receipt_code(&payments[d.index])).or_default() +=
                    d.applied.len() as i64;
            }
        }
        let mut next: BTreeMap<String, i64> = BTreeMap::new();
        for (code, count) in &needed {
            let first = take_receipt_numbers::<S>(tx, region, code, *count).await?;
            next.insert(code.clone(), first);
        }
        let mut all_applied: Vec<AppliedPayable<'_>> = Vec::new();
        let mut all_receipts: Vec<ReceiptRef> = Vec::new();
        let mut refunds = Vec::new();
        let mut stored = Vec::with_capacity(here.len());
        for d in &here {
            let payment = &payments[d.index];
            let code = receipt_code(payment);
            let first = next.get(&code).copied().unwrap_or(1);
            next.insert(code.clone(), first + d.applied.len() as i64);
            let receipts = receipt_refs(&d.applied, &code, first);
            let refund = d.application.owed_back.map(|owed| {
                refunds.push((payment, owed));
                refund_ref(payment, owed)
            });
            let outcome = PaymentOutcome {
                payment_no: payment.payment_no.clone(),
                result: d.application.status,
                receipts: receipts.clone(),
                refund,
            };
            let response = serde_json::to_string(&outcome).map_err(StorageError::corrupt)?;
            stored.push((payment, outcome, response));
            all_applied.extend(d.applied.iter().cloned());
            all_receipts.extend(receipts);
        }
        let mut q = Statement::<S::DB>::new(
            "INSERT INTO payments (payment_no, channel_id, channel_txn_id, order_no, region_code, \
             amount_fen, paid_at, paid_on, status, fingerprint, response)",
        );
        q.push_values(&stored, |row, (payment, outcome, response)| {
            row.push_bind(payment.payment_no.clone())
                .push_bind(payment.channel_id.clone())
                .push_bind(payment.channel_txn_id.clone())
                .push_bind(payment.order_no.clone())
                .push_bind((*region).to_owned())
                .push_bind(payment.amount_fen.as_fen())
                .push_bind(payment.paid_at.clone())
                .push_bind(payment.paid_on)
                .push_bind(outcome.result.code().to_owned())
                .push_bind(payment.fingerprint.clone())
                .push_bind(response.clone());
        });
        let (sql, args) = q.into_parts()?;
        sqlx::query_with(&sql, S::arguments(args))
            .execute(&mut **tx)
            .await?;
        if !all_applied.is_empty() {
            apply_to_payables::<S>(tx, region, &all_applied).await?;
            insert_receipts_and_postings::<S>(tx, &all_applied, &all_receipts).await?;
        }
        insert_refunds::<S>(tx, &refunds).await?;
        // The orders that paid something are paid.
        let mut paid_orders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in &here {
            let payment = &payments[d.index];
            if let (Some(order_no), false) = (&payment.order_no, d.applied.is_empty()) {
                paid_orders
                    .entry(payment.channel_id.as_str())
                    .or_default()
                    .push(order_no.as_str());
            }
        }
        for (channel, order_nos) in &paid_orders {
            let mut q = Statement::<S::DB>::new(format!(
                "UPDATE orders SET {} WHERE {} AND region_code = ",
                order::PAY.set(),
                order::PAY.guard()
            ));
            q.push_bind((*region).to_owned())
                .push(" AND channel_id = ")
                .push_bind((*channel).to_owned())
                .push(" AND order_no");
            let order_nos: Vec<String> = order_nos.iter().map(|o| (*o).to_owned()).collect();
            S::push_id_list(&mut q, &order_nos);
            let (sql, args) = q.into_parts()?;
            sqlx::query_with(&sql, S::arguments(args))
                .execute(&mut **tx)
                .await?;
        }
        for (payment, outcome, _) in stored {
            let i = payments
                .iter()
                .position(|p| std::ptr::eq(p, payment))
                .ok_or_else(|| StorageError::Other("a report lost in its batch".into()))?;
            outcomes[i] = Some(PaymentReportOutcome::Stored(outcome));
        }
    }
    Ok(outcomes.into_iter().collect())
}

/// The batch's reports by a key (channel or region), each key's in the batch's order.
fn group<'a>(
    payments: &'a [NewPayment],
    key: impl Fn(&'a NewPayment) -> &'a str,
) -> BTreeMap<&'a str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in payments.iter().enumerate() {
        groups.entry(key(p)).or_default().push(i);
    }
    groups
}
