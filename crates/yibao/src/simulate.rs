//! `yibao simulate`: several channels playing against a server through the protocol only —
//! searches, family orders, payments, duplicate payments by another channel, reversals before and
//! after their reports, late reports, refund results and a statement upload at the end.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{FixedOffset, Utc};
use tokio::sync::Mutex;
use yibao_channel_client::types::{
    OpenOrderRequest, Payer, PaymentResult, RefundResultRequest, ReportPaymentRequest,
    SearchRequest, StatementEntryType, StatementLine,
};
use yibao_channel_client::{ChannelClient, ClientError};

/// Operations per run at most, and concurrent players at most.
pub const MAX_OPERATIONS: usize = 100_000;
pub const MAX_CONCURRENCY: usize = 64;

#[derive(Debug, Clone)]
pub struct SimulationPlan {
    pub base_url: String,
    /// (channel id, secret).
    pub channels: Vec<(String, String)>,
    /// (ID number, name) of residents to play with.
    pub residents: Vec<(String, String)>,
    pub operations: usize,
    pub concurrency: usize,
    pub seed: u64,
}

/// What happened, by kind.
#[derive(Debug, Default, Clone)]
pub struct SimulationTally {
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Statement lines per channel: (transaction, entry type, amount).
    pub reported: HashMap<String, Vec<(String, StatementEntryType, i64)>>,
}

impl SimulationTally {
    fn add(&mut self, what: &str) {
        *self.counts.entry(what.to_owned()).or_default() += 1;
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        usize::try_from((self.0 >> 33) % (bound.max(1) as u64)).unwrap_or(0)
    }
}

fn now_cst() -> chrono::DateTime<FixedOffset> {
    Utc::now().with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
}

/// Runs the plan; returns the tally. Errors a channel should see (409, 422 …) are counted, not fatal.
pub async fn run(plan: SimulationPlan) -> anyhow::Result<SimulationTally> {
    anyhow::ensure!(!plan.channels.is_empty(), "at least one channel");
    anyhow::ensure!(!plan.residents.is_empty(), "at least one resident");
    anyhow::ensure!(
        (1..=MAX_OPERATIONS).contains(&plan.operations),
        "operations 1..={MAX_OPERATIONS}"
    );
    anyhow::ensure!(
        (1..=MAX_CONCURRENCY).contains(&plan.concurrency),
        "concurrency 1..={MAX_CONCURRENCY}"
    );
    let clients: Vec<ChannelClient> = plan
        .channels
        .iter()
        .map(|(id, secret)| {
            ChannelClient::new(&plan.base_url, id.clone(), secret.as_bytes().to_vec())
        })
        .collect::<Result<_, _>>()?;
    let clients = Arc::new(clients);
    let residents = Arc::new(plan.residents.clone());
    let tally = Arc::new(Mutex::new(SimulationTally::default()));
    let per_worker = plan.operations.div_ceil(plan.concurrency);
    let mut workers = Vec::new();
    for w in 0..plan.concurrency {
        let clients = clients.clone();
        let residents = residents.clone();
        let tally = tally.clone();
        let seed = plan.seed.wrapping_add(w as u64 * 7919);
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(seed);
            for op in 0..per_worker {
                let txn_prefix = format!("SIM{seed:x}-{w}-{op}");
                if let Err(err) =
                    one_operation(&clients, &residents, &mut rng, &txn_prefix, &tally).await
                {
                    tally
                        .lock()
                        .await
                        .add(&format!("error:{}", err.api_code().unwrap_or("transport")));
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    // Refund results: every channel reports its pending refunds as refunded.
    for client in clients.iter() {
        for refund in client.pending_refunds().await? {
            client
                .report_refund_result(
                    &refund.refund_no,
                    &RefundResultRequest::succeeded(format!("R-{}", refund.refund_no)),
                )
                .await?;
            tally.lock().await.add("refund_result");
        }
    }
    // Statements: each channel uploads today's payments as it saw them.
    let today = now_cst().date_naive();
    let reported = tally.lock().await.reported.clone();
    for client in clients.iter() {
        let lines: Vec<StatementLine> = reported
            .get(client.channel_id())
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|(txn, entry_type, amount)| StatementLine {
                channel_txn_id: txn.clone(),
                entry_type: entry_type.clone(),
                amount: *amount,
                occurred_at: now_cst(),
                refund_no: None,
            })
            .collect();
        let csv = yibao_channel_client::types::statement_csv(&lines);
        client.upload_statement(today, &csv).await?;
        tally.lock().await.add("statement");
    }
    let result = tally.lock().await.clone();
    Ok(result)
}

async fn one_operation(
    clients: &[ChannelClient],
    residents: &[(String, String)],
    rng: &mut Rng,
    txn: &str,
    tally: &Mutex<SimulationTally>,
) -> Result<(), ClientError> {
    let client = &clients[rng.next(clients.len())];
    let (id, name) = &residents[rng.next(residents.len())];
    let found = client
        .search(&SearchRequest {
            id_number: id.clone(),
            insured_number: None,
            name: Some(name.clone()),
            region: None,
            fee_year: None,
            agent_code: None,
        })
        .await;
    tally.lock().await.add("search");
    let found = match found {
        Ok(f) => f,
        Err(e) if e.api_code() == Some("NOT_FOUND") => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(payable) = found
        .payables
        .iter()
        // A channel takes no money for what the region keeps from its kind (not_collectable).
        .find(|p| p.status.as_str() == "unpaid" && p.not_collectable.is_none())
    else {
        return Ok(());
    };
    let ids = vec![payable.payable_id.clone()];
    let amount = payable.amount;
    let paid_at = now_cst();
    match rng.next(10) {
        // Order, then pay the order.
        0..=3 => {
            let order = client
                .open_order(&OpenOrderRequest {
                    channel_order_no: format!("{txn}-O"),
                    payable_ids: ids,
                    amount,
                    payer: Payer::default(),
                    family_account: None,
                    health_card: None,
                    agent_code: None,
                })
                .await;
            let order = match order {
                Ok(o) => o,
                Err(e) => {
                    tally
                        .lock()
                        .await
                        .add(&format!("order:{}", e.api_code().unwrap_or("transport")));
                    return Ok(());
                }
            };
            tally.lock().await.add("order");
            report(
                client,
                &ReportPaymentRequest::for_order(
                    format!("{txn}-P"),
                    order.order.order_no,
                    amount,
                    paid_at,
                ),
                tally,
            )
            .await?;
        }
        // Pay directly; sometimes a second channel pays too (a duplicate).
        4..=6 => {
            report(
                client,
                &ReportPaymentRequest::for_payables(
                    format!("{txn}-P"),
                    ids.clone(),
                    amount,
                    paid_at,
                ),
                tally,
            )
            .await?;
            if rng.next(2) == 0 {
                let other = &clients[rng.next(clients.len())];
                report(
                    other,
                    &ReportPaymentRequest::for_payables(format!("{txn}-D"), ids, amount, paid_at),
                    tally,
                )
                .await?;
            }
        }
        // Pay, then the same report again (a retry after a timeout).
        7 => {
            let r = ReportPaymentRequest::for_payables(format!("{txn}-P"), ids, amount, paid_at);
            let first = report(client, &r, tally).await?;
            let again = client.report_payment(&r).await?;
            tally.lock().await.add(if Some(&again) == first.as_ref() {
                "repeat_same_answer"
            } else {
                "repeat_DIFFERENT_answer"
            });
        }
        // Pay, then reverse (冲正).
        8 => {
            let r = ReportPaymentRequest::for_payables(format!("{txn}-P"), ids, amount, paid_at);
            report(client, &r, tally).await?;
            client
                .reverse_payment(&r.channel_txn_id, "模拟冲正")
                .await?;
            let mut t = tally.lock().await;
            t.add("reversal");
            t.reported
                .entry(client.channel_id().to_owned())
                .or_default()
                .push((
                    r.channel_txn_id.clone(),
                    StatementEntryType::Reversal,
                    amount,
                ));
        }
        // A reversal arriving before its (late) report.
        _ => {
            let r = ReportPaymentRequest::for_payables(format!("{txn}-L"), ids, amount, paid_at);
            client
                .reverse_payment(&r.channel_txn_id, "超时冲正")
                .await?;
            let late = client.report_payment(&r).await;
            tally.lock().await.add(match late {
                Err(e) if e.api_code() == Some("REVERSED") => "late_report_refused_reversed",
                Ok(_) => "late_report_accepted",
                Err(_) => "late_report_error",
            });
        }
    }
    Ok(())
}

async fn report(
    client: &ChannelClient,
    request: &ReportPaymentRequest,
    tally: &Mutex<SimulationTally>,
) -> Result<Option<yibao_channel_client::types::PaymentReport>, ClientError> {
    let r = client.report_payment(request).await?;
    let mut t = tally.lock().await;
    t.add(match r.result {
        PaymentResult::Paid => "paid",
        PaymentResult::PartiallyRefunded => "partially_refunded",
        PaymentResult::RefundPending => "refund_pending",
        _ => "other_result",
    });
    t.reported
        .entry(client.channel_id().to_owned())
        .or_default()
        .push((
            request.channel_txn_id.clone(),
            StatementEntryType::Payment,
            request.amount,
        ));
    Ok(Some(r))
}
