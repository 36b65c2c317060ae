//! Migrations on a Citus cluster whose tables are already placed (an upgrade in place).
//!
//! Citus sends a DDL command's text to the shards and refuses a text holding several commands
//! ("cannot insert multiple commands into a prepared statement"), while sqlx runs each migration
//! file as one text. So on a coordinator whose tables are distributed, each pending migration is
//! run here command by command, in one transaction with Citus's sequential mode (DDL on a
//! reference table after DDL on a distributed one fails in parallel mode), and recorded in
//! `_sqlx_migrations` exactly as sqlx records it (same checksum), so that sqlx then finds it
//! applied. A fresh database, or plain PostgreSQL, is migrated by sqlx as before.

use std::time::Instant;

use sqlx::migrate::Migrator;
use sqlx::PgPool;
use yibao_storage::StorageError;

/// Applies, command by command, every migration of `migrator` not recorded yet. Assumes
/// `_sqlx_migrations` exists (the tables were placed after a first migration by sqlx).
pub(crate) async fn run_pending(pool: &PgPool, migrator: &Migrator) -> Result<usize, StorageError> {
    // One runner at a time, as sqlx's own lock does for its runs.
    let mut lock = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock(7467323101)")
        .execute(&mut *lock)
        .await?;
    let outcome = apply(pool, migrator).await;
    sqlx::query("SELECT pg_advisory_unlock(7467323101)")
        .execute(&mut *lock)
        .await?;
    outcome
}

async fn apply(pool: &PgPool, migrator: &Migrator) -> Result<usize, StorageError> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(pool)
        .await?;
    let mut count = 0;
    for m in migrator.iter() {
        if m.migration_type.is_down_migration() || applied.contains(&m.version) {
            continue;
        }
        let started = Instant::now();
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
            .execute(&mut *tx)
            .await?;
        for command in commands(&m.sql) {
            sqlx::raw_sql(command).execute(&mut *tx).await.map_err(|e| {
                StorageError::Other(format!(
                    "数据库迁移失败（migration failed）：while executing migration {} on the Citus cluster: {e}",
                    m.version
                ))
            })?;
        }
        let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, $4)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .bind(elapsed)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = m.version,
            "migration applied command by command on the Citus cluster"
        );
        count += 1;
    }
    Ok(count)
}

/// The commands of a migration's text, without the `;` between them: split outside comments,
/// quoted strings, quoted identifiers and dollar-quoted bodies (`DO $$ … $$`).
pub(crate) fn commands(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                // `$tag$` where tag is empty or an identifier; a positional `$1` is not one.
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(end)
                        if bytes[end] == b'$'
                            && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) =>
                    {
                        let tag = &sql[i..=end];
                        let body = end + 1;
                        i = sql[body..]
                            .find(tag)
                            .map_or(bytes.len(), |n| body + n + tag.len());
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                let command = sql[start..i].trim();
                if has_code(command) {
                    out.push(command);
                }
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    let rest = sql[start.min(sql.len())..].trim();
    if has_code(rest) {
        out.push(rest);
    }
    out
}

/// Whether a piece holds anything but comments and blanks.
fn has_code(piece: &str) -> bool {
    piece
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default().trim())
        .any(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::commands;

    #[test]
    fn commands_are_split_outside_strings_comments_and_dollar_bodies() {
        let sql = "-- a comment; not a command\n\
                   CREATE TABLE t (a TEXT CHECK (a <> ';'));\n\
                   DO $$\nBEGIN\n    EXECUTE 'ALTER TABLE t ADD COLUMN b TEXT';\n    EXECUTE 'SELECT 1';\nEND\n$$;\n\
                   UPDATE t SET a = 'it''s; fine' WHERE a = $tag$x;y$tag$;\n\
                   /* block; comment */ SELECT \"odd;name\" FROM t\n";
        let got = commands(sql);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].ends_with("CHECK (a <> ';'))"));
        assert!(got[1].starts_with("DO $$") && got[1].ends_with("$$"));
        assert!(got[2].ends_with("$tag$x;y$tag$"));
        assert!(got[3].ends_with("FROM t"));
    }

    #[test]
    fn every_shipped_migration_splits_into_commands_that_end_where_it_does() {
        for m in super::super::MIGRATOR.iter() {
            let got = commands(&m.sql);
            assert!(!got.is_empty(), "{}", m.version);
            // Nothing is lost: the commands, joined, hold every non-blank character of the text
            // outside comments but the separating semicolons.
            let last = got.last().map(|c| c.trim_end()).unwrap_or_default();
            assert!(!last.ends_with(';'), "{}: {last}", m.version);
        }
    }
}
