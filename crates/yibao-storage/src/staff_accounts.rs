//! Staff accounts, their sessions, the sign-in throttle, the audit log and the roster import
//! register, written once for both backends as ordinary generic code over sqlx (issue 13): a
//! trait with one blanket implementation for every backend's pool. The `Storage` methods of the
//! same names forward here (`storage_impl.rs`).
//!
//! Each write transaction starts with its write, so SQLite takes its write lock at the first
//! statement (no read snapshot to upgrade), and counts come back through `RETURNING`, which both
//! databases have, rather than a backend's own "rows affected".

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use crate::records::{
    AuditEntry, AuditFilter, AuditRecord, ImportSummary, LoginAdmission, LoginThrottleKey, Role,
    StaffAccount, LOGIN_WINDOW_SECONDS, MAX_SESSION_SECONDS,
};
use crate::StorageError;

/// The columns a staff account is read from.
const STAFF_COLUMNS: &str = "s.username, s.display_name, s.role, s.region_code, s.station_code, \
     s.password_hash, s.disabled, s.must_change_password";

/// Staff, sessions, sign-in throttle, audit log and import register on one database.
#[async_trait]
pub trait StaffAccounts: Send + Sync {
    async fn create_staff(&self, account: &StaffAccount) -> Result<(), StorageError>;
    async fn get_staff(&self, username: &str) -> Result<Option<StaffAccount>, StorageError>;
    async fn count_staff(&self) -> Result<i64, StorageError>;
    async fn list_staff(&self) -> Result<Vec<StaffAccount>, StorageError>;
    /// Disables or enables an account; disabling ends its sessions. Whether it exists.
    async fn set_staff_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, StorageError>;
    /// A new password hash; every session of the account ends. Whether it exists.
    async fn set_staff_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StorageError>;
    /// Stores a session (and forgets sessions that expired long ago).
    async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<(), StorageError>;
    async fn session_staff(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<StaffAccount>, StorageError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StorageError>;
    /// Counts a sign-in attempt against the account and the address (account first, then
    /// address, in every transaction: no lock-order deadlock); refused past either's limit.
    async fn admit_login_attempt(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<LoginAdmission, StorageError>;
    /// A successful sign-in clears the account's count and gives the address one back.
    async fn login_succeeded(&self, username: &str, address: &str) -> Result<(), StorageError>;
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StorageError>;
    /// Entries matching `filter`, newest first, at most `limit`.
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError>;
    async fn record_import(&self, summary: &ImportSummary, actor: &str)
        -> Result<(), StorageError>;
}

/// A `staff` row as stored ([`STAFF_COLUMNS`]).
#[derive(sqlx::FromRow)]
struct StaffRow {
    username: String,
    display_name: String,
    #[sqlx(try_from = "String")]
    role: Role,
    region_code: Option<String>,
    station_code: Option<String>,
    password_hash: String,
    disabled: bool,
    must_change_password: bool,
}

impl TryFrom<StaffRow> for StaffAccount {
    type Error = StorageError;
    /// Region and station checked again: stored data is never trusted blindly.
    fn try_from(row: StaffRow) -> Result<StaffAccount, StorageError> {
        Ok(StaffAccount {
            username: row.username,
            display_name: row.display_name,
            role: row.role,
            region: row
                .region_code
                .as_deref()
                .map(yibao_domain::RegionCode::parse)
                .transpose()
                .map_err(StorageError::corrupt)?,
            station: row
                .station_code
                .as_deref()
                .map(yibao_domain::StationCode::parse)
                .transpose()
                .map_err(StorageError::corrupt)?,
            password_hash: row.password_hash,
            disabled: row.disabled,
            must_change_password: row.must_change_password,
        })
    }
}

fn staff_from_row<R: Row>(r: &R) -> Result<StaffAccount, StorageError>
where
    for<'r> StaffRow: sqlx::FromRow<'r, R>,
{
    crate::rows::record::<StaffRow, R>(r)?.try_into()
}

/// An `audit_log` row as stored.
#[derive(sqlx::FromRow)]
struct AuditRow {
    audit_id: i64,
    occurred_at: String,
    actor: String,
    action: String,
    region_code: Option<String>,
    target: String,
    /// JSON.
    detail: String,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StorageError;
    fn try_from(row: AuditRow) -> Result<AuditRecord, StorageError> {
        Ok(AuditRecord {
            audit_id: row.audit_id,
            at: row.occurred_at,
            entry: AuditEntry {
                actor: row.actor,
                action: row.action,
                region: row.region_code,
                target: row.target,
                detail: serde_json::from_str(&row.detail).map_err(StorageError::corrupt)?,
            },
        })
    }
}

#[async_trait]
impl<DB> StaffAccounts for Pool<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB>,
    for<'r> bool: Decode<'r, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn create_staff(&self, account: &StaffAccount) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO staff (username, display_name, role, region_code, station_code, \
             password_hash, disabled, must_change_password) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(account.username.clone())
        .bind(account.display_name.clone())
        .bind(account.role.code().to_owned())
        .bind(account.region.map(|r| r.to_string()))
        .bind(account.station.as_ref().map(|s| s.as_str().to_owned()))
        .bind(account.password_hash.clone())
        .bind(account.disabled)
        .bind(account.must_change_password)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn get_staff(&self, username: &str) -> Result<Option<StaffAccount>, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff s WHERE s.username = $1"
        ))
        .bind(username.to_owned())
        .fetch_optional(self)
        .await?;
        row.as_ref().map(staff_from_row).transpose()
    }

    async fn count_staff(&self) -> Result<i64, StorageError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM staff")
            .fetch_one(self)
            .await?;
        Ok(n)
    }

    async fn list_staff(&self) -> Result<Vec<StaffAccount>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff s ORDER BY s.username"
        ))
        .fetch_all(self)
        .await?;
        rows.iter().map(staff_from_row).collect()
    }

    async fn set_staff_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<bool, StorageError> {
        let mut tx = self.begin().await?;
        let changed: Option<(String,)> =
            sqlx::query_as("UPDATE staff SET disabled = $1 WHERE username = $2 RETURNING username")
                .bind(disabled)
                .bind(username.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        if disabled {
            sqlx::query("DELETE FROM staff_sessions WHERE username = $1")
                .bind(username.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(changed.is_some())
    }

    async fn set_staff_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change: bool,
    ) -> Result<bool, StorageError> {
        let mut tx = self.begin().await?;
        let changed: Option<(String,)> = sqlx::query_as(
            "UPDATE staff SET password_hash = $1, must_change_password = $3 \
             WHERE username = $2 RETURNING username",
        )
        .bind(password_hash.to_owned())
        .bind(username.to_owned())
        .bind(must_change)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM staff_sessions WHERE username = $1")
            .bind(username.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(changed.is_some())
    }

    async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM staff_sessions WHERE expires_at < $1")
            .bind(expires_at - MAX_SESSION_SECONDS)
            .execute(self)
            .await?;
        sqlx::query(
            "INSERT INTO staff_sessions (token_hash, username, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash.to_owned())
        .bind(username.to_owned())
        .bind(expires_at)
        .execute(self)
        .await?;
        Ok(())
    }

    async fn session_staff(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<StaffAccount>, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff_sessions t JOIN staff s ON s.username = t.username \
             WHERE t.token_hash = $1 AND t.expires_at > $2"
        ))
        .bind(token_hash.to_owned())
        .bind(now)
        .fetch_optional(self)
        .await?;
        row.as_ref().map(staff_from_row).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(token_hash.to_owned())
            .execute(self)
            .await?;
        Ok(())
    }

    async fn admit_login_attempt(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<LoginAdmission, StorageError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM login_throttle WHERE window_started_at <= $1")
            .bind(now - LOGIN_WINDOW_SECONDS)
            .execute(&mut *tx)
            .await?;
        for (key, value) in [
            (LoginThrottleKey::Account, username),
            (LoginThrottleKey::Address, address),
        ] {
            let counted: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO login_throttle (key_kind, key_value, window_started_at, attempts) \
                 VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (key_kind, key_value) DO UPDATE SET attempts = login_throttle.attempts + 1 \
                 WHERE login_throttle.attempts < $4 RETURNING attempts",
            )
            .bind(key.code().to_owned())
            .bind(value.to_owned())
            .bind(now)
            .bind(key.limit())
            .fetch_optional(&mut *tx)
            .await?;
            if counted.is_none() {
                let (started,): (i64,) = sqlx::query_as(
                    "SELECT window_started_at FROM login_throttle \
                     WHERE key_kind = $1 AND key_value = $2",
                )
                .bind(key.code().to_owned())
                .bind(value.to_owned())
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                return Ok(LoginAdmission::Throttled {
                    key,
                    retry_after_seconds: (started + LOGIN_WINDOW_SECONDS - now).max(1),
                });
            }
        }
        tx.commit().await?;
        Ok(LoginAdmission::Admitted)
    }

    async fn login_succeeded(&self, username: &str, address: &str) -> Result<(), StorageError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM login_throttle WHERE key_kind = 'account' AND key_value = $1")
            .bind(username.to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE login_throttle SET attempts = attempts - 1 \
             WHERE key_kind = 'address' AND key_value = $1 AND attempts > 0",
        )
        .bind(address.to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO audit_log (actor, action, region_code, target, detail) \
             VALUES ($1, $2, COALESCE($3, '000000'), $4, $5)",
        )
        .bind(entry.actor.clone())
        .bind(entry.action.clone())
        .bind(entry.region.clone())
        .bind(entry.target.clone())
        .bind(entry.detail.to_string())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        // Only the conditions asked for, so each can use its index (actor, audit_id). Days
        // compare as text: both backends write the time as `YYYY-MM-DD…` in UTC.
        let mut conditions: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        if let Some(actor) = &filter.actor {
            texts.push(actor.clone());
            conditions.push(format!("actor = ${}", texts.len()));
        }
        if let Some(prefix) = &filter.action_prefix {
            texts.push(prefix.clone());
            let n = texts.len();
            conditions.push(format!("SUBSTR(action, 1, LENGTH(${n})) = ${n}"));
        }
        if let Some(from) = filter.from_day {
            texts.push(from.format("%Y-%m-%d").to_string());
            conditions.push(format!("CAST(occurred_at AS TEXT) >= ${}", texts.len()));
        }
        if let Some(to) = filter.to_day.and_then(|d| d.succ_opt()) {
            texts.push(to.format("%Y-%m-%d").to_string());
            conditions.push(format!("CAST(occurred_at AS TEXT) < ${}", texts.len()));
        }
        let mut n = texts.len();
        if filter.before_id.is_some() {
            n += 1;
            conditions.push(format!("audit_id < ${n}"));
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {} ", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT audit_id, CAST(occurred_at AS TEXT) AS occurred_at, actor, action, \
             NULLIF(region_code, '000000') AS region_code, target, detail \
             FROM audit_log {where_clause}ORDER BY audit_id DESC LIMIT ${}",
            n + 1
        );
        let mut query = sqlx::query(&sql);
        for t in &texts {
            query = query.bind(t.clone());
        }
        if let Some(before) = filter.before_id {
            query = query.bind(before);
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self)
            .await?;
        rows.iter()
            .map(|r| crate::rows::record::<AuditRow, _>(r)?.try_into())
            .collect()
    }

    async fn record_import(
        &self,
        summary: &ImportSummary,
        actor: &str,
    ) -> Result<(), StorageError> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO roster_imports (import_id, file_name, file_sha256, imported_by, rows_read, \
             enrolled, updated, unchanged, rejected) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(summary.import_id.clone())
        .bind(summary.file_name.clone())
        .bind(summary.file_sha256.clone())
        .bind(actor.to_owned())
        .bind(n(summary.rows_read))
        .bind(n(summary.enrolled))
        .bind(n(summary.updated))
        .bind(n(summary.unchanged))
        .bind(n(summary.rejected))
        .execute(self)
        .await?;
        Ok(())
    }
}
