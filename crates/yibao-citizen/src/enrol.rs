//! 参保登记 online: a signed-in resident submits a first enrolment (for themselves or somebody
//! else) or a newborn's, for a 参保地 and service station; the station approves or refuses it in
//! the console (`/console/applications`) and the resident sees where it stands in 我的.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_domain::{IdNumber, PersonName, Phone, RegionCode};
use yibao_server::services::applications;
use yibao_server::AppState;
use yibao_storage::enrolment_applications::EnrolmentApplication;

use crate::account::SignedIn;
use crate::limiter::AddressLimiter;
use crate::lookup::{MAX_ID_INPUT_CHARS, MAX_NAME_INPUT_CHARS};
use crate::{date_zh, error_page, render};

/// An application as 我的 lists it.
pub struct ApplicationRow {
    pub kind: &'static str,
    pub name_masked: String,
    pub region_name: String,
    pub station: String,
    pub submitted_on: String,
    /// `submitted`, `approved`, `refused`: the badge's class is derived from it.
    pub status: String,
    pub status_zh: &'static str,
    pub reason: Option<String>,
}

/// A place to enrol: a region and one of its service stations, as the form's select offers it.
pub struct Place {
    pub value: String,
    pub label: String,
}

#[derive(askama::Template, Default)]
#[template(path = "enrol.html")]
pub struct EnrolPage {
    places: Vec<Place>,
    place: String,
    kind: String,
    id_number: String,
    name: String,
    household: String,
    permit_since: String,
    phone: String,
    guardian_id_number: String,
    guardian_name: String,
    place_error: Option<String>,
    kind_error: Option<String>,
    id_error: Option<String>,
    name_error: Option<String>,
    household_error: Option<String>,
    permit_error: Option<String>,
    phone_error: Option<String>,
    guardian_id_error: Option<String>,
    guardian_name_error: Option<String>,
    declared_error: Option<String>,
    /// What the application as a whole was refused for (eligibility, already on record …).
    refusal: Option<String>,
}

/// Every region's stations as `region|station` choices.
async fn places(state: &AppState) -> Result<Vec<Place>, yibao_server::ServiceError> {
    let mut places = Vec::new();
    for region in state.storage.list_regions().await? {
        let code = region.code();
        for station in state
            .storage
            .enrolment_applications()
            .stations_of(code.as_str())
            .await?
        {
            places.push(Place {
                value: format!("{}|{station}", code.as_str()),
                label: format!("{} · 服务站 {station}", region.name()),
            });
        }
    }
    Ok(places)
}

async fn page(state: &AppState, mut page: EnrolPage, status: StatusCode) -> Response {
    match places(state).await {
        Ok(places) => {
            page.places = places;
            render(&page, status)
        }
        Err(err) => error_page(&err),
    }
}

/// `GET /account/enrol`.
pub async fn form(State(state): State<AppState>, SignedIn(_): SignedIn) -> Response {
    page(
        &state,
        EnrolPage {
            kind: "first".into(),
            household: "local_registration".into(),
            ..EnrolPage::default()
        },
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct EnrolForm {
    #[serde(default)]
    place: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    household: String,
    #[serde(default)]
    permit_since: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    guardian_id_number: String,
    #[serde(default)]
    guardian_name: String,
    #[serde(default)]
    declared: String,
}

fn cut(text: &str, max: usize) -> String {
    text.trim().chars().take(max).collect()
}

/// `POST /account/enrol`: checks each field beside itself, then the application as a whole, and
/// stores it for the station.
pub async fn submit(
    State(state): State<AppState>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    SignedIn(resident): SignedIn,
    Form(form): Form<EnrolForm>,
) -> Response {
    let today = state.clock.today();
    let mut p = EnrolPage {
        place: cut(&form.place, 64),
        kind: cut(&form.kind, 16),
        id_number: cut(&form.id_number, MAX_ID_INPUT_CHARS),
        name: cut(&form.name, MAX_NAME_INPUT_CHARS),
        household: cut(&form.household, 32),
        permit_since: cut(&form.permit_since, 16),
        phone: cut(&form.phone, 16),
        guardian_id_number: cut(&form.guardian_id_number, MAX_ID_INPUT_CHARS),
        guardian_name: cut(&form.guardian_name, MAX_NAME_INPUT_CHARS),
        ..EnrolPage::default()
    };
    let (region, station) = p
        .place
        .split_once('|')
        .map(|(r, s)| (r.to_owned(), s.to_owned()))
        .unwrap_or_default();
    let places = match places(&state).await {
        Ok(places) => places,
        Err(err) => return error_page(&err),
    };
    if region.is_empty() || !places.iter().any(|o| o.value == p.place) {
        p.place_error = Some("请选择参保地和服务站".into());
    }
    if !applications::KINDS.iter().any(|(k, _)| *k == p.kind) {
        p.kind_error = Some("请选择登记类型".into());
    }
    let id = match IdNumber::parse(&p.id_number, today) {
        _ if p.id_number.is_empty() => {
            p.id_error = Some("请输入参保人的身份证号码".into());
            None
        }
        Ok(parsed) => Some(parsed.id_number),
        Err(err) => {
            p.id_error = Some(yibao_server::ServiceError::from(err).message);
            None
        }
    };
    if p.name.is_empty() {
        p.name_error = Some("请输入参保人的姓名".into());
    } else if let Err(err) = PersonName::parse(&p.name) {
        p.name_error = Some(yibao_server::ServiceError::from(err).message);
    }
    let permit_since = match p.household.as_str() {
        "local_registration" => None,
        "residence_permit" => match NaiveDate::parse_from_str(&p.permit_since, "%Y-%m-%d") {
            Ok(d) if d <= today => Some(d),
            Ok(_) => {
                p.permit_error = Some("居住证办理日期不能晚于今天".into());
                None
            }
            Err(_) => {
                p.permit_error = Some("请填写居住证的办理日期，如 2026-03-01".into());
                None
            }
        },
        _ => {
            p.household_error = Some("请选择户籍类型".into());
            None
        }
    };
    if !p.phone.is_empty() {
        if let Err(err) = Phone::parse(&p.phone) {
            p.phone_error = Some(yibao_server::ServiceError::from(err).message);
        }
    }
    let newborn = p.kind == "newborn";
    // The phone is where sign-in codes go: only for oneself, or one's own newborn.
    let own = id.as_ref().is_some_and(|id| *id == resident.id)
        || (newborn
            && IdNumber::parse(&p.guardian_id_number, today)
                .is_ok_and(|g| g.id_number == resident.id));
    if !p.phone.is_empty() && !own {
        p.phone_error = Some(
            "为他人登记时请不要填写手机号码（登录验证码会发到这个号码）；本人可到服务站登记".into(),
        );
    }
    if newborn {
        if p.guardian_id_number.is_empty() {
            p.guardian_id_error = Some("新生儿参保请填写监护人（父亲或母亲）的身份证号码".into());
        } else if let Err(err) = IdNumber::parse(&p.guardian_id_number, today) {
            p.guardian_id_error = Some(yibao_server::ServiceError::from(err).message);
        }
        if p.guardian_name.is_empty() {
            p.guardian_name_error = Some("请输入监护人的姓名".into());
        } else if let Err(err) = PersonName::parse(&p.guardian_name) {
            p.guardian_name_error = Some(yibao_server::ServiceError::from(err).message);
        }
    }
    if form.declared != "yes" {
        p.declared_error =
            Some("参加了职工基本医疗保险的不能参加城乡居民医保；未参加的请勾选确认".into());
    }
    let has_error = [
        &p.place_error,
        &p.kind_error,
        &p.id_error,
        &p.name_error,
        &p.household_error,
        &p.permit_error,
        &p.phone_error,
        &p.guardian_id_error,
        &p.guardian_name_error,
        &p.declared_error,
    ]
    .iter()
    .any(|e| e.is_some());
    // The place was one of the offered choices, so its region code is well-formed.
    let (Some(id), Ok(region), false) = (id, RegionCode::parse(&region), has_error) else {
        return page(&state, p, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let application = EnrolmentApplication {
        region,
        application_no: format!(
            "SQ{}{}",
            today.format("%Y%m%d"),
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ),
        kind: p.kind.clone(),
        id_number: id,
        name: p.name.clone(),
        household: p.household.clone(),
        permit_since,
        station,
        phone: Some(p.phone.clone()).filter(|s| !s.is_empty()),
        guardian_id_number: newborn
            .then(|| IdNumber::parse(&p.guardian_id_number, today).ok())
            .flatten()
            .map(|g| g.id_number.as_str().to_owned()),
        guardian_name: newborn.then(|| p.guardian_name.clone()),
        submitted_by: resident.id.as_str().to_owned(),
        submitted_at: state.clock.now().timestamp(),
        status: yibao_domain::ApplicationStatus::Submitted,
        decided_by: None,
        decided_at: None,
        reason: None,
    };
    // An application tells whether an ID number and a name go together: it counts like a
    // look-up; and one resident has at most a few open at a time.
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    let open = match state
        .storage
        .enrolment_applications()
        .applications_submitted_by(resident.id.as_str())
        .await
    {
        Ok(mine) => mine
            .iter()
            .filter(|a| a.status == yibao_domain::ApplicationStatus::Submitted)
            .count(),
        Err(err) => return error_page(&err.into()),
    };
    if open >= applications::MAX_OPEN_PER_SUBMITTER {
        p.refusal = Some(format!(
            "您已有{open}份待审核的申请，请等服务站审核后再提交新的申请"
        ));
        return page(&state, p, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    if let Err(err) =
        applications::check_new(&state, &application, applications::Checker::Resident).await
    {
        p.refusal = Some(err.message);
        return page(&state, p, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    match state
        .storage
        .enrolment_applications()
        .submit_application(&application)
        .await
    {
        Ok(true) => {
            crate::account::notice_on_account(
                &state,
                &resident,
                "参保登记申请已提交，服务站审核后会在“参保登记”中显示结果",
            )
            .await
        }
        Ok(false) => {
            p.refusal = Some("该人员在所选参保地已有一份待审核的申请，请等待服务站审核".into());
            page(&state, p, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(err) => error_page(&err.into()),
    }
}

/// The resident's applications for 我的, newest first.
pub async fn rows_of(
    state: &AppState,
    submitted_by: &str,
) -> Result<Vec<ApplicationRow>, yibao_server::ServiceError> {
    let names: std::collections::BTreeMap<String, String> = state
        .storage
        .list_regions()
        .await?
        .iter()
        .map(|r| (r.code().as_str().to_owned(), r.name().to_owned()))
        .collect();
    Ok(state
        .storage
        .enrolment_applications()
        .applications_submitted_by(submitted_by)
        .await?
        .into_iter()
        .map(|a| ApplicationRow {
            kind: applications::kind_zh(&a.kind),
            name_masked: PersonName::parse(&a.name).map_or_else(|_| String::new(), |n| n.masked()),
            region_name: names
                .get(a.region.as_str())
                .cloned()
                .unwrap_or_else(|| a.region.as_str().to_owned()),
            station: a.station.clone(),
            submitted_on: chrono::DateTime::from_timestamp(a.submitted_at, 0)
                .map(|t| {
                    date_zh(
                        t.with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
                            .date_naive(),
                    )
                })
                .unwrap_or_default(),
            status_zh: a.status.name_zh(),
            status: a.status.code().to_owned(),
            reason: a.reason,
        })
        .collect())
}
