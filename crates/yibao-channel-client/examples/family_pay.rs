//! Pays a relative's unpaid payables from an employee's personal medical account, as a channel of
//! kind `medical_account` (个人账户家庭共济) would: search, open an order naming the account and
//! its balance, report the payment against the order. Prints each answer, or the refusal's code
//! and message (`NOT_BOUND`, `INSUFFICIENT_BALANCE` …).
//!
//! Usage: `cargo run -p yibao-channel-client --example family_pay -- BASE_URL CHANNEL BALANCE_FEN`
//! with the channel's secret in `YIBAO_CHANNEL_SECRET`, the employee's ID number in
//! `YIBAO_EMPLOYEE_ID_NUMBER` and the relative's in `YIBAO_ID_NUMBER` (personal data and secrets
//! stay off the command line).

use chrono::Utc;
use yibao_channel_client::types::{
    FamilyAccount, OpenOrderRequest, PayableStatus, Payer, ReportPaymentRequest, SearchRequest,
};
use yibao_channel_client::ChannelClient;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set");
        std::process::exit(2);
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, channel, balance] = args.as_slice() else {
        eprintln!("usage: family_pay BASE_URL CHANNEL BALANCE_FEN (secret and ID numbers from the environment)");
        std::process::exit(2);
    };
    let balance: i64 = balance.parse()?;
    let client = ChannelClient::new(
        base,
        channel.clone(),
        env("YIBAO_CHANNEL_SECRET").into_bytes(),
    )?;
    let fail = |err: &dyn std::fmt::Display| -> ! {
        eprintln!("{err}");
        std::process::exit(1)
    };
    let found = client
        .search(&SearchRequest {
            id_number: env("YIBAO_ID_NUMBER"),
            insured_number: None,
            name: None,
            region: None,
            fee_year: None,
            agent_code: None,
        })
        .await
        .unwrap_or_else(|e| fail(&e));
    let unpaid: Vec<_> = found
        .payables
        .iter()
        .filter(|p| p.status == PayableStatus::Unpaid)
        .collect();
    if unpaid.is_empty() {
        println!("nothing to pay");
        return Ok(());
    }
    let amount: i64 = unpaid.iter().map(|p| p.amount).sum();
    let stamp = Utc::now().timestamp_millis();
    let opened = client
        .open_order(&OpenOrderRequest {
            channel_order_no: format!("FA{stamp}"),
            payable_ids: unpaid.iter().map(|p| p.payable_id.clone()).collect(),
            amount,
            payer: Payer::default(),
            family_account: Some(FamilyAccount {
                employee_id_number: env("YIBAO_EMPLOYEE_ID_NUMBER"),
                balance,
            }),
            health_card: None,
            agent_code: None,
        })
        .await
        .unwrap_or_else(|e| fail(&e));
    println!(
        "order {} for {} fen opened",
        opened.order.order_no, opened.order.amount
    );
    let paid = client
        .report_payment(&ReportPaymentRequest {
            channel_txn_id: format!("FT{stamp}"),
            order_no: Some(opened.order.order_no.clone()),
            payable_ids: None,
            amount,
            paid_at: Utc::now().fixed_offset(),
        })
        .await
        .unwrap_or_else(|e| fail(&e));
    println!("{}", serde_json::to_string_pretty(&paid)?);
    Ok(())
}
