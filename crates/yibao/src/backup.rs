//! `yibao backup`: an online copy of a SQLite database while the server keeps serving, by
//! `VACUUM INTO` (a consistent snapshot read in one transaction; writers go on meanwhile in WAL),
//! checked with `PRAGMA integrity_check` before it is reported done. PostgreSQL is backed up with
//! its own tools (`pg_dump`, or base backups with WAL archiving for point-in-time recovery): the
//! command says so and docs/operations.md gives the procedures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use yibao_storage::DatabaseUrl;

/// How long the copy waits for a lock the server holds before failing.
pub const BACKUP_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub seconds: f64,
}

/// Copies the database at `url` to `target`, which must not exist yet.
pub async fn backup(url: &DatabaseUrl, target: &Path) -> anyhow::Result<BackupReport> {
    let Some(source) = url.sqlite_file() else {
        anyhow::bail!(
            "yibao backup 只用于 SQLite。PostgreSQL 请用 pg_dump（逻辑备份）或 pg_basebackup 加 WAL 归档\
             （可按时间点恢复），步骤见 docs/operations.md 的“备份与恢复”"
        );
    };
    anyhow::ensure!(
        source.exists(),
        "数据库文件 {} 不存在，没有可备份的数据",
        source.display()
    );
    anyhow::ensure!(
        !target.exists(),
        "备份文件 {} 已存在：不覆盖已有文件，请换一个文件名",
        target.display()
    );
    let target_text = target
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("备份文件路径 {} 不是有效的 UTF-8", target.display()))?;
    let started = Instant::now();
    let mut source_connection = SqliteConnectOptions::new()
        .filename(&source)
        .read_only(true)
        .busy_timeout(BACKUP_BUSY_TIMEOUT)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("无法打开数据库 {}：{e}", source.display()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(target_text)
        .execute(&mut source_connection)
        .await
        .map_err(|e| anyhow::anyhow!("备份到 {} 失败：{e}", target.display()))?;
    source_connection.close().await?;
    let mut copy = SqliteConnectOptions::new()
        .filename(target)
        .read_only(true)
        .connect()
        .await?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut copy)
        .await?;
    copy.close().await?;
    anyhow::ensure!(
        verdict == "ok",
        "备份文件 {} 未通过完整性检查：{verdict}",
        target.display()
    );
    Ok(BackupReport {
        file: target.to_owned(),
        bytes: std::fs::metadata(target)?.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
