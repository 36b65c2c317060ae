//! Staff accounts, passwords (argon2id) and sessions, and the audit log they write to.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use sha2::{Digest, Sha256};
use yibao_domain::{RegionCode, StationCode};
use yibao_storage::records::{
    LoginAdmission, LoginThrottleKey, MAX_LOGIN_ATTEMPTS_PER_ACCOUNT,
    MAX_LOGIN_ATTEMPTS_PER_ADDRESS, MAX_LOGIN_KEY_CHARS, MAX_SESSION_SECONDS,
};
use yibao_storage::{AuditEntry, ConstraintKind, Role, StaffAccount, Storage, StorageError};

use crate::error::{ErrorCode, ServiceError};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;
/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 8 * 3600;
const _: () = assert!(SESSION_SECONDS <= MAX_SESSION_SECONDS);

/// A password: never in `Debug`, logs or argv.
pub struct Password(String);

impl Password {
    pub fn new(text: String) -> Result<Password, ServiceError> {
        let n = text.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                format!("密码长度应为{MIN_PASSWORD_CHARS}至{MAX_PASSWORD_CHARS}个字符"),
            ));
        }
        Ok(Password(text))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// An argon2id PHC string with a fresh random salt.
pub fn hash_password(password: &Password) -> Result<String, ServiceError> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| ServiceError::internal("salt", e))?;
    Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::internal("password hash", e))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The SHA-256 of a session token, as stored: a database dump does not reveal live tokens.
/// A new random session token: two UUID v4s, 64 hex characters (244 random bits). Staff
/// sessions and the citizen site's use it; only its [`token_hash`] is stored.
pub fn new_session_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// SHA-256 of a token, lowercase hex: what is stored of it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub struct NewStaff {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub region: Option<RegionCode>,
    pub station: Option<StationCode>,
    pub password: Password,
    /// Chosen by someone else (an administrator adding the account): the holder must replace it
    /// at the first sign-in.
    pub temporary_password: bool,
}

fn valid_username(name: &str) -> bool {
    (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Creates a staff account and audits it.
pub async fn create_staff(
    storage: &dyn Storage,
    new: NewStaff,
    actor: &str,
) -> Result<(), ServiceError> {
    if !valid_username(&new.username) {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "用户名应为2至32个字符，只能包含小写字母、数字、_、.和-",
        ));
    }
    match (new.role, &new.region, &new.station) {
        (Role::StationOperator, Some(_), Some(_)) => {}
        (Role::StationOperator, _, _) => {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "服务站经办人员须指定统筹区和服务站",
            ))
        }
        (Role::TaxCollector, None, _) => {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "税务征收人员须指定统筹区",
            ))
        }
        (_, _, Some(_)) => {
            return Err(ServiceError::new(
                ErrorCode::InvalidRequest,
                "只有服务站经办人员可以指定服务站",
            ))
        }
        _ => {}
    }
    let display_name = new.display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 40 {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            "姓名不能为空，且不超过40个字",
        ));
    }
    let account = StaffAccount {
        username: new.username.clone(),
        display_name: display_name.to_owned(),
        role: new.role,
        region: new.region,
        station: new.station,
        password_hash: hash_password(&new.password)?,
        disabled: false,
        must_change_password: new.temporary_password,
    };
    match storage.create_staff(&account).await {
        Ok(()) => {}
        Err(StorageError::Constraint {
            kind: ConstraintKind::Unique,
            ..
        }) => {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("用户名 {} 已存在", new.username),
            ))
        }
        Err(StorageError::Constraint {
            kind: ConstraintKind::ForeignKey,
            ..
        }) => {
            return Err(ServiceError::new(
                ErrorCode::NotFound,
                "指定的统筹区未在本系统登记",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    storage
        .append_audit(&AuditEntry {
            actor: actor.to_owned(),
            action: "staff.create".into(),
            region: account.region.map(|r| r.to_string()),
            target: account.username.clone(),
            detail: serde_json::json!({ "role": account.role.code(),
                "station": account.station.as_ref().map(|s| s.as_str()) }),
        })
        .await?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub username: String,
    pub role: Role,
}

/// Why a sign-in was refused: logged and audited, never told to the caller (who gets the same
/// `INVALID_CREDENTIALS` for each, so that user names cannot be probed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    UnknownUser,
    Disabled,
    WrongPassword,
}

impl LoginFailure {
    pub fn code(self) -> &'static str {
        match self {
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::Disabled => "disabled",
            LoginFailure::WrongPassword => "wrong_password",
        }
    }
}

/// The answer to a throttled sign-in: 429 `LOGIN_THROTTLED`, saying how long to wait.
pub fn throttled_error(key: LoginThrottleKey, retry_after_seconds: i64) -> ServiceError {
    let minutes = (retry_after_seconds + 59) / 60;
    let (what, limit) = match key {
        LoginThrottleKey::Account => ("该账号", MAX_LOGIN_ATTEMPTS_PER_ACCOUNT),
        LoginThrottleKey::Address => ("本机地址", MAX_LOGIN_ATTEMPTS_PER_ADDRESS),
    };
    ServiceError::new(
        ErrorCode::LoginThrottled,
        format!(
            "{what}15分钟内登录失败已达{limit}次，为保护账号暂停登录，请{minutes}分钟后再试；\
             忘记密码请联系中心管理员重置"
        ),
    )
}

/// A refused sign-in: the answer, and for a throttled one how long to wait (`Retry-After`).
#[derive(Debug)]
pub struct LoginError {
    pub error: ServiceError,
    pub retry_after_seconds: Option<i64>,
}

impl From<ServiceError> for LoginError {
    fn from(error: ServiceError) -> Self {
        LoginError {
            error,
            retry_after_seconds: None,
        }
    }
}

impl From<StorageError> for LoginError {
    fn from(error: StorageError) -> Self {
        ServiceError::from(error).into()
    }
}

/// Checks a password and opens a session. Unknown user and wrong password get the same answer.
///
/// Throttled per account and per client `address` ([`Storage::admit_login_attempt`]): the attempt
/// is counted in the database before the password is checked, so concurrent attempts and other
/// servers on the same database count too, and a throttled attempt is refused without checking
/// (429 `LOGIN_THROTTLED`). Every failure is logged and audited (`staff.login_failed`, with the
/// user name, address and reason; never the password).
pub async fn login(
    storage: &dyn Storage,
    username: &str,
    password: &str,
    address: &str,
    now: i64,
) -> Result<Session, LoginError> {
    let username: String = username.trim().chars().take(MAX_LOGIN_KEY_CHARS).collect();
    let username = username.as_str();
    if username.is_empty() {
        // No account has an empty name (2 to 32 characters); nothing to count it against.
        return Err(
            ServiceError::new(ErrorCode::InvalidRequest, "请输入用户名（username）").into(),
        );
    }
    let address: String = address.trim().chars().take(MAX_LOGIN_KEY_CHARS).collect();
    let address = if address.is_empty() {
        "unknown"
    } else {
        address.as_str()
    };
    if let LoginAdmission::Throttled {
        key,
        retry_after_seconds,
    } = storage.admit_login_attempt(username, address, now).await?
    {
        tracing::warn!(
            username = ?username,
            address,
            by = key.code(),
            retry_after_seconds,
            "staff sign-in throttled"
        );
        return Err(LoginError {
            error: throttled_error(key, retry_after_seconds),
            retry_after_seconds: Some(retry_after_seconds),
        });
    }
    let account = storage.get_staff(username).await?;
    let failure = match &account {
        Some(a) if a.disabled => {
            verify_password(DUMMY_HASH, password);
            Some(LoginFailure::Disabled)
        }
        Some(a) if !verify_password(&a.password_hash, password) => {
            Some(LoginFailure::WrongPassword)
        }
        Some(_) => None,
        None => {
            // Spend the same time as a real check so a username cannot be probed by timing.
            verify_password(DUMMY_HASH, password);
            Some(LoginFailure::UnknownUser)
        }
    };
    if let Some(reason) = failure {
        tracing::warn!(
            username = ?username,
            address,
            reason = reason.code(),
            "staff sign-in failed"
        );
        storage
            .append_audit(&AuditEntry {
                actor: username.to_owned(),
                action: "staff.login_failed".into(),
                region: account
                    .as_ref()
                    .and_then(|a| a.region.map(|r| r.to_string())),
                target: username.to_owned(),
                detail: serde_json::json!({ "address": address, "reason": reason.code() }),
            })
            .await?;
        return Err(ServiceError::of(ErrorCode::InvalidCredentials).into());
    }
    let Some(account) = account else {
        return Err(ServiceError::of(ErrorCode::InvalidCredentials).into());
    };
    storage.login_succeeded(username, address).await?;
    let token = open_session(storage, &account.username, now).await?;
    let expires_at = now + SESSION_SECONDS;
    storage
        .append_audit(&AuditEntry {
            actor: account.username.clone(),
            action: "staff.login".into(),
            region: account.region.map(|r| r.to_string()),
            target: account.username.clone(),
            detail: serde_json::json!({ "address": address }),
        })
        .await?;
    tracing::info!(username = %account.username, address, "staff signed in");
    Ok(Session {
        token,
        expires_at,
        username: account.username,
        role: account.role,
    })
}

/// Opens a session for `username` lasting [`SESSION_SECONDS`]; the token is returned once and
/// stored only as its hash.
pub async fn open_session(
    storage: &dyn Storage,
    username: &str,
    now: i64,
) -> Result<String, ServiceError> {
    let token = new_session_token();
    storage
        .create_session(&token_hash(&token), username, now + SESSION_SECONDS)
        .await?;
    Ok(token)
}

/// Why a holder's own password change was refused, by the field to correct.
#[derive(Debug)]
pub enum PasswordChangeError {
    /// The current password is wrong (`current_password`).
    WrongCurrent,
    /// The new password is unacceptable (`new_password`): too short, too long, or the same.
    BadNew(ServiceError),
    Other(ServiceError),
}

impl From<StorageError> for PasswordChangeError {
    fn from(error: StorageError) -> Self {
        PasswordChangeError::Other(error.into())
    }
}

/// The holder replaces their own password (a temporary one must be replaced at the first
/// sign-in): the current password must be right and the new one acceptable and different. Every
/// session of the account ends; the caller opens a new one. Audited as `staff.password_changed`.
pub async fn change_own_password(
    storage: &dyn Storage,
    account: &StaffAccount,
    current: &str,
    new: &str,
) -> Result<(), PasswordChangeError> {
    if !verify_password(&account.password_hash, current) {
        return Err(PasswordChangeError::WrongCurrent);
    }
    if new == current {
        return Err(PasswordChangeError::BadNew(ServiceError::new(
            ErrorCode::InvalidRequest,
            "新密码不能与当前密码相同",
        )));
    }
    let new = Password::new(new.to_owned()).map_err(PasswordChangeError::BadNew)?;
    let hash = hash_password(&new).map_err(PasswordChangeError::Other)?;
    if !storage
        .set_staff_password(&account.username, &hash, false)
        .await?
    {
        return Err(PasswordChangeError::Other(ServiceError::of(
            ErrorCode::AuthRequired,
        )));
    }
    storage
        .append_audit(&AuditEntry {
            actor: account.username.clone(),
            action: "staff.password_changed".into(),
            region: account.region.map(|r| r.to_string()),
            target: account.username.clone(),
            detail: serde_json::json!({ "was_temporary": account.must_change_password }),
        })
        .await?;
    Ok(())
}

/// An argon2id hash of a random string, verified against when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2d1bq0mxrvCvDt0Hqsb3xmjEfIJwb8HnpxaHN2u7rLs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let p = Password::new("correct horse battery".into()).unwrap();
        let h = hash_password(&p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert!(Password::new("short".into()).is_err());
        assert!(Password::new("x".repeat(129)).is_err());
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn usernames() {
        assert!(valid_username("admin"));
        assert!(valid_username("zhang.san-01"));
        assert!(!valid_username("Admin"));
        assert!(!valid_username("a"));
        assert!(!valid_username("张三"));
    }
}
