//! `yibao-lab reconcile`: a channel's statement of N lines (the protocol's CSV) reconciled against
//! N payments of one day, timed, with the process's peak memory. The payments are written straight
//! into the database (reporting a million through the API would measure something else); the
//! statement differs from them in a few lines of every class, so the whole path runs.

use std::time::Instant;

use chrono::NaiveDate;
use yibao_server::services::reconciliation::{reconcile, StatementUpload};
use yibao_server::Clock;
use yibao_statement_file::StatementFormat;
use yibao_storage::{DatabaseUrl, Storage};

const CHANNEL: &str = "bench-reconcile";
/// Lines of each difference class in the statement.
const DIFFERENCES: usize = 10;

pub struct ReconcileFigures {
    pub lines: usize,
    pub seconds: f64,
    pub summary: yibao_server::channel::answers::StatementSummary,
}

fn txn(i: usize) -> String {
    format!("T{i:010}")
}

/// Raw SQL, deliberately: a million payments of one day in one statement; through the payment
/// path (which `yibao-lab payments` measures) seeding would take longer than what is timed.
async fn seed_payments(url: &DatabaseUrl, day: NaiveDate, rows: usize) -> anyhow::Result<()> {
    let n = i64::try_from(rows)?;
    let paid_at = format!("{day}T10:00:00+08:00");
    // The same rows on both databases: payment_no P…, channel_txn_id T…, 43000 fen, paid that day.
    match url {
        DatabaseUrl::Postgres(u) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(u)
                .await?;
            sqlx::query("DELETE FROM payments WHERE channel_id = $1")
                .bind(CHANNEL)
                .execute(&pool)
                .await?;
            sqlx::query(
                "INSERT INTO payments (payment_no, channel_id, channel_txn_id, region_code, amount_fen, paid_at, paid_on, status, fingerprint, response) \
                 SELECT 'P' || lpad(g::text, 10, '0'), $1, 'T' || lpad(g::text, 10, '0'), '320600', 43000, $2, $3, 'paid', '', '{}' \
                 FROM generate_series(0, $4 - 1) g",
            )
            .bind(CHANNEL)
            .bind(&paid_at)
            .bind(day)
            .bind(n)
            .execute(&pool)
            .await?;
        }
        DatabaseUrl::Sqlite(u) => {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(u)?
                .busy_timeout(std::time::Duration::from_secs(30));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            sqlx::query("DELETE FROM payments WHERE channel_id = $1")
                .bind(CHANNEL)
                .execute(&pool)
                .await?;
            sqlx::query(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < $4 - 1) \
                 INSERT INTO payments (payment_no, channel_id, channel_txn_id, region_code, amount_fen, paid_at, paid_on, status, fingerprint, response) \
                 SELECT 'P' || printf('%010d', i), $1, 'T' || printf('%010d', i), '320600', 43000, $2, $3, 'paid', '', '{}' FROM g",
            )
            .bind(CHANNEL)
            .bind(&paid_at)
            .bind(day)
            .bind(n)
            .execute(&pool)
            .await?;
        }
    }
    Ok(())
}

/// The statement: every payment but the last `DIFFERENCES` (短款), `DIFFERENCES` of them with
/// another amount and `DIFFERENCES` listed twice, and `DIFFERENCES` lines yibao never saw (长款).
fn statement(rows: usize) -> Vec<u8> {
    let mut csv = String::with_capacity(rows * 54 + 64);
    csv.push_str("channel_txn_id,type,amount,occurred_at,refund_no\n");
    let listed = rows.saturating_sub(DIFFERENCES);
    for i in 0..listed {
        let amount = if i < DIFFERENCES { 42000 } else { 43000 };
        csv.push_str(&txn(i));
        csv.push_str(",payment,");
        csv.push_str(&amount.to_string());
        csv.push_str(",2020-11-02T10:00:00+08:00,\n");
        if (DIFFERENCES..2 * DIFFERENCES).contains(&i) {
            csv.push_str(&format!(
                "{},payment,43000,2020-11-02T10:00:00+08:00,\n",
                txn(i)
            ));
        }
    }
    for i in 0..DIFFERENCES {
        csv.push_str(&format!(
            "X{i:010},payment,100,2020-11-02T10:00:00+08:00,\n"
        ));
    }
    csv.into_bytes()
}

pub async fn reconcile_statement(
    url: &DatabaseUrl,
    storage: &dyn Storage,
    rows: usize,
) -> anyhow::Result<ReconcileFigures> {
    anyhow::ensure!(
        rows > 3 * DIFFERENCES,
        "--rows must be more than {}",
        3 * DIFFERENCES
    );
    yibao::demo::load(storage).await?;
    if storage.channel_only_policy(CHANNEL).await?.is_none() {
        yibao::operator::channel_add(
            storage,
            None,
            CHANNEL,
            "wechat",
            &["320600".to_owned()],
            1000,
            "bench-reconcile-secret-0123".to_owned(),
        )
        .await?;
    }
    let day = NaiveDate::from_ymd_opt(2020, 11, 2).ok_or_else(|| anyhow::anyhow!("date"))?;
    let started = Instant::now();
    seed_payments(url, day, rows).await?;
    eprintln!(
        "seeded {rows} payments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The peak from here on: the statement and its reconciliation, not the seeding (Linux;
    // elsewhere the peak is the whole run's).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let bytes = statement(rows);
    let started = Instant::now();
    let summary = reconcile(
        storage,
        &Clock::system(),
        StatementUpload {
            channel_id: CHANNEL,
            day,
            format: StatementFormat::Protocol,
            bytes: &bytes,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {}", e.code.as_str(), e.message))?;
    Ok(ReconcileFigures {
        lines: usize::try_from(summary.lines).unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
        summary,
    })
}
