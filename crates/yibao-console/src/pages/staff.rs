//! 人员管理: staff accounts, administrators only, through the same services as the API
//! (`services::staff::create_staff`, `services::accounts`): list, add one with a temporary
//! password (the holder must choose their own at the first sign-in), reset a password (a new
//! temporary one), disable and enable. A password is shown once, when it was made, and never again.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use yibao_domain::{RegionCode, StationCode};
use yibao_server::services::accounts::{self, StaffSummary};
use yibao_server::services::staff::{create_staff, NewStaff, Password};
use yibao_server::{AppState, ErrorCode};
use yibao_storage::Role;

use crate::pages::desk;
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{role_label, Chrome};
use crate::{html, render_with_status, PageError};

/// Characters of a temporary password: no 0/o, 1/l/i to misread over the phone.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Length of a temporary password (about 69 bits).
pub const TEMPORARY_PASSWORD_CHARS: usize = 14;

/// A fresh temporary password from the operating system's random numbers (through UUIDv4).
pub fn temporary_password() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
        .iter()
        // 256 = 8 * 31 + 8: drop the top 8 values so every character is equally likely.
        .filter(|b| usize::from(**b) < PASSWORD_ALPHABET.len() * 8)
        .take(TEMPORARY_PASSWORD_CHARS)
        .map(|b| char::from(PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()]))
        .collect()
}

pub struct StaffLine {
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub region: String,
    pub station: String,
    pub disabled: bool,
    pub is_self: bool,
}

/// The fields of the add form, as typed.
#[derive(Default, Deserialize)]
pub struct NewStaffFields {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub station: String,
}

#[derive(Template)]
#[template(path = "desk/staff.html")]
pub struct StaffPage {
    pub chrome: Chrome,
    pub staff: Vec<StaffLine>,
    pub regions: Vec<(String, String)>,
    pub roles: Vec<(&'static str, &'static str)>,
    pub fields: NewStaffFields,
    pub errors: Vec<(&'static str, String)>,
    pub notice: Option<String>,
    /// (user name, temporary password): shown once, on the answer to the form that made it.
    pub issued: Option<(String, String)>,
}

impl StaffPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

async fn page(state: &AppState, user: &ConsoleUser) -> Result<StaffPage, PageError> {
    user.staff.require_admin()?;
    let me = user.staff.username().to_owned();
    let staff = accounts::list_staff(state.storage.as_ref())
        .await?
        .into_iter()
        .map(|s: StaffSummary| StaffLine {
            role: Role::from_code(&s.role).map_or("未知角色", role_label),
            is_self: s.username == me,
            username: s.username,
            display_name: s.display_name,
            region: s.region.unwrap_or_default(),
            station: s.station.unwrap_or_default(),
            disabled: s.disabled,
        })
        .collect();
    Ok(StaffPage {
        chrome: Chrome::new(user, "staff", "人员管理"),
        staff,
        regions: desk::regions(state).await?,
        roles: [
            Role::StationOperator,
            Role::TaxCollector,
            Role::Auditor,
            Role::Admin,
        ]
        .into_iter()
        .map(|r| (r.code(), role_label(r)))
        .collect(),
        fields: NewStaffFields::default(),
        errors: Vec::new(),
        notice: None,
        issued: None,
    })
}

/// `GET /console/staff`.
pub async fn list(State(state): State<AppState>, user: ConsoleUser) -> Result<Response, PageError> {
    html(&page(&state, &user).await?)
}

/// The form's fields as the service takes them; a message beside each field that is wrong.
fn new_staff(
    fields: &NewStaffFields,
    password: &str,
) -> Result<NewStaff, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let role = Role::from_code(fields.role.trim());
    if role.is_none() {
        errors.push(("role", "请选择角色".to_owned()));
    }
    let region = match fields.region.trim() {
        "" => None,
        text => match RegionCode::parse(text) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(("region", e.to_string()));
                None
            }
        },
    };
    let station = match fields.station.trim() {
        "" => None,
        text => match StationCode::parse(text) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(("station", e.to_string()));
                None
            }
        },
    };
    match (role, &region, &station) {
        (Some(Role::StationOperator), None, _) => {
            errors.push(("region", "服务站经办人员须指定统筹区".to_owned()))
        }
        (Some(Role::StationOperator), _, None) if fields.station.trim().is_empty() => {
            errors.push(("station", "服务站经办人员须指定服务站".to_owned()))
        }
        (Some(Role::TaxCollector), None, _) if fields.region.trim().is_empty() => {
            errors.push(("region", "税务征收人员须指定统筹区".to_owned()))
        }
        (Some(r), _, _) if r != Role::StationOperator && !fields.station.trim().is_empty() => {
            errors.push(("station", "只有服务站经办人员可以指定服务站".to_owned()))
        }
        _ => {}
    }
    let password = Password::new(password.to_owned()).map_err(|e| vec![("form", e.message)])?;
    match (errors.is_empty(), role) {
        (true, Some(role)) => Ok(NewStaff {
            username: fields.username.trim().to_owned(),
            display_name: fields.display_name.trim().to_owned(),
            role,
            region,
            station,
            password,
            temporary_password: true,
        }),
        _ => Err(errors),
    }
}

/// Which field a refusal of the service is about.
fn field_of(code: ErrorCode, message: &str) -> &'static str {
    match code {
        ErrorCode::AlreadyExists => "username",
        ErrorCode::NotFound => "region",
        _ if message.starts_with("用户名") => "username",
        _ if message.starts_with("姓名") => "display_name",
        _ if message.contains("服务站") => "station",
        _ if message.contains("统筹区") => "region",
        _ => "form",
    }
}

/// `POST /console/staff`: adds an account with a temporary password, shown once on the answer.
pub async fn create(
    State(state): State<AppState>,
    CsrfForm(user, fields): CsrfForm<NewStaffFields>,
) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    let password = temporary_password();
    let outcome = match new_staff(&fields, &password) {
        Ok(new) => create_staff(state.storage.as_ref(), new, user.staff.username())
            .await
            .map_err(|e| match e.code {
                ErrorCode::InternalError | ErrorCode::ServiceUnavailable => Err(e),
                code => Ok(vec![(field_of(code, &e.message), e.message.clone())]),
            }),
        Err(errors) => Err(Ok(errors)),
    };
    let mut view = page(&state, &user).await?;
    match outcome {
        Ok(()) => {
            view.notice = Some(format!(
                "已新增账号 {}。请把下面的临时密码当面或电话告知本人：首次登录须修改密码；本页关闭后不再显示。",
                fields.username.trim()
            ));
            view.issued = Some((fields.username.trim().to_owned(), password));
            html(&view)
        }
        Err(Err(api)) => Err(api.into()),
        Err(Ok(errors)) => {
            view.fields = fields;
            view.errors = errors;
            render_with_status(&view, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST /console/staff/{username}/password`: a new temporary password, shown once; the
/// account's sessions end and it must choose its own at the next sign-in.
pub async fn reset_password(
    State(state): State<AppState>,
    Path(username): Path<String>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    let password = temporary_password();
    accounts::reset_staff_password(
        state.storage.as_ref(),
        &username,
        Password::new(password.clone())?,
        user.staff.username(),
    )
    .await?;
    let mut view = page(&state, &user).await?;
    view.notice = Some(format!(
        "已重置 {username} 的密码，其登录已全部退出。请把下面的临时密码告知本人：下次登录须修改密码；本页关闭后不再显示。"
    ));
    view.issued = Some((username, password));
    html(&view)
}

async fn set_disabled(
    state: AppState,
    username: String,
    user: ConsoleUser,
    disabled: bool,
) -> Result<Response, PageError> {
    user.staff.require_admin()?;
    accounts::set_staff_disabled(
        state.storage.as_ref(),
        &username,
        disabled,
        user.staff.username(),
    )
    .await?;
    Ok(desk::see_other("/console/staff"))
}

/// `POST /console/staff/{username}/disable`: also ends the account's sessions; not one's own.
pub async fn disable(
    State(state): State<AppState>,
    Path(username): Path<String>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    set_disabled(state, username, user, true).await
}

/// `POST /console/staff/{username}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(username): Path<String>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    set_disabled(state, username, user, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_are_long_fresh_and_unambiguous() {
        let a = temporary_password();
        assert_eq!(a.chars().count(), TEMPORARY_PASSWORD_CHARS);
        assert!(a.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)), "{a}");
        assert_ne!(a, temporary_password());
        assert!(Password::new(a).is_ok());
    }
}
