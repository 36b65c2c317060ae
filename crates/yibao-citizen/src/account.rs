//! 登录 and 我的: a resident signs in with their ID number, name and a one-time code sent to the
//! phone on the agency's record, then sees what they and their family owe and have paid, pays
//! for several at once, keeps their receipts and says whether they want payment reminders.
//!
//! The code: 6 digits, valid [`CODE_SECONDS`], [`yibao_storage::citizen_accounts::SIGN_IN_CODE_TRIES`]
//! tries, a new one not sooner than [`RESEND_SECONDS`] and at most [`CODES_PER_DAY`] a day; only
//! its SHA-256 is stored, and its message goes through the outbox ([`crate::messages`]). The
//! session: a random token in an `HttpOnly`, `SameSite=Strict` cookie (with the region of the
//! record), stored as its SHA-256, for [`SESSION_SECONDS`]. An unknown ID number and a name that
//! does not match the record are answered alike, as on the look-up page.

use std::collections::BTreeSet;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use yibao_domain::{IdNumber, Person, PersonName, RegionCode};
use yibao_server::services::staff::{new_session_token, token_hash};
use yibao_server::{AppState, ErrorCode, ServiceError};
use yibao_storage::citizen_accounts::{
    CodeChecked, CodeIssued, CodeTry, FamilyAdded, FamilyMember, Message, SignInCode,
    MAX_FAMILY_MEMBERS,
};

use crate::limiter::AddressLimiter;
use crate::lookup::{Found, MAX_ID_INPUT_CHARS, MAX_NAME_INPUT_CHARS, NOT_FOUND_MESSAGE};
use crate::{date_zh, error_page, ours, render, yuan, Site};

/// The session cookie's name.
pub const COOKIE: &str = "yibao_resident";
/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 30 * 60;
/// How long a code works.
pub const CODE_SECONDS: i64 = 5 * 60;
/// Shortest time between two codes for one person.
pub const RESEND_SECONDS: i64 = 60;
/// Most codes a person is sent a day.
pub const CODES_PER_DAY: i32 = 10;
/// Most receipts the account page lists.
pub const MAX_RECEIPTS_LISTED: usize = 50;
/// Most payables paid together in one order: the protocol's bound on an order.
pub const MAX_PAYABLES_TOGETHER: usize = yibao_storage::collection::MAX_PAYABLES_PER_REQUEST;

/// A signed-in resident.
#[derive(Clone)]
pub struct Resident {
    pub region: RegionCode,
    pub id: IdNumber,
    /// As the agency's record has it.
    pub name: PersonName,
    token_hash: String,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn code_hash(region: &str, id: &str, code: &str) -> String {
    token_hash(&format!(
        "yibao-sign-in-code\u{0}{region}\u{0}{id}\u{0}{code}"
    ))
}

fn random_digits() -> String {
    let bytes = uuid::Uuid::new_v4();
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes.as_bytes()[..8]);
    format!("{:06}", u64::from_le_bytes(n) % 1_000_000)
}

/// The region and token in the cookie, if well formed.
fn session_cookie_value(headers: &HeaderMap) -> Option<(RegionCode, String)> {
    let value = yibao_server::middleware::cookie(headers, COOKIE)?;
    let (region, token) = value.trim().split_once('.')?;
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((RegionCode::parse(region).ok()?, token.to_owned()))
}

fn set_cookie(site: &Site, value: &str, max_age: i64) -> HeaderValue {
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if site.secure_cookie { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The signed-in resident of the request, if any.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Resident>, ServiceError> {
    let Some((region, token)) = session_cookie_value(headers) else {
        return Ok(None);
    };
    let token_hash = token_hash(&token);
    let now = state.clock.now().timestamp();
    let Some(session) = state
        .storage
        .citizen_accounts()
        .citizen_session(region.as_str(), &token_hash, now)
        .await?
    else {
        return Ok(None);
    };
    let id = session.id_number;
    let Some((person, _)) = state.storage.get_person(region, &id).await? else {
        return Ok(None);
    };
    Ok(Some(Resident {
        region,
        id,
        name: person.name,
        token_hash,
    }))
}

/// The agency's record of `id` whose name matches `name`, preferring one with a phone (a person
/// may be on record in more than one region).
pub async fn record_of(
    state: &AppState,
    id: &IdNumber,
    name: &str,
) -> Result<Option<Person>, ServiceError> {
    let mut found: Option<Person> = None;
    for region in state.storage.list_regions().await? {
        let Some((person, _)) = state.storage.get_person(region.code(), id).await? else {
            continue;
        };
        if !person.name.matches(name) {
            continue;
        }
        if found
            .as_ref()
            .is_none_or(|f| f.phone.is_none() && person.phone.is_some())
        {
            found = Some(person);
        }
    }
    Ok(found)
}

fn trimmed(text: &str, max: usize) -> String {
    text.trim().chars().take(max).collect()
}

/// The ID number and name fields checked as the look-up page checks them.
fn check_person_fields(
    state: &AppState,
    id_text: &str,
    name: &str,
    id_error: &mut Option<String>,
    name_error: &mut Option<String>,
) -> Option<IdNumber> {
    let id = if id_text.is_empty() {
        *id_error = Some("请输入身份证号码".into());
        None
    } else {
        match IdNumber::parse(id_text, state.clock.today()) {
            Ok(parsed) => Some(parsed.id_number),
            Err(err) => {
                *id_error = Some(ServiceError::from(err).message);
                None
            }
        }
    };
    if name.is_empty() {
        *name_error = Some("请输入姓名".into());
    } else if let Err(err) = PersonName::parse(name) {
        *name_error = Some(ServiceError::from(err).message);
    }
    id.filter(|_| name_error.is_none())
}

fn refused_cross_site() -> Response {
    error_page(&ServiceError::new(
        ErrorCode::Forbidden,
        "请求不是从本站页面发出，请回到本站页面重新操作",
    ))
}

fn see_other(to: &str) -> Response {
    ours((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response())
}

// --- Signing in ---

#[derive(askama::Template, Default)]
#[template(path = "signin.html")]
pub struct SignInPage {
    id_number: String,
    name: String,
    id_error: Option<String>,
    name_error: Option<String>,
    /// Above the form: not found, no phone, too many codes.
    notice: Option<String>,
    /// The second step: the code was sent (or is still valid).
    code_step: Option<CodeStep>,
    code_error: Option<String>,
}

/// The second step's hidden fields and what it says.
pub struct CodeStep {
    pub region: String,
    pub id_number: String,
    /// The token the code is checked with (its SHA-256 is stored with the code): only this
    /// page, which the ID number and name opened, may try codes.
    pub ticket: String,
    pub phone_masked: String,
    pub sent_note: String,
}

/// `GET /signin`.
pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(Some(_)) => see_other("/account"),
        _ => render(&SignInPage::default(), StatusCode::OK),
    }
}

#[derive(Deserialize, Default)]
pub struct SignInForm {
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    name: String,
}

/// `POST /signin`: checks the ID number and name against the record and sends a code to its
/// phone.
pub async fn request_code(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if yibao_server::auth::cross_site(&headers) {
        return refused_cross_site();
    }
    let mut page = SignInPage {
        id_number: trimmed(&form.id_number, MAX_ID_INPUT_CHARS),
        name: trimmed(&form.name, MAX_NAME_INPUT_CHARS),
        ..SignInPage::default()
    };
    if site.sender.is_none() {
        page.notice = Some(
            "本站暂未开通短信验证码，暂时不能登录；不登录也可以在首页查询缴费信息和缴费。".into(),
        );
        return render(&page, StatusCode::SERVICE_UNAVAILABLE);
    }
    let Some(id) = check_person_fields(
        &state,
        &page.id_number,
        &page.name,
        &mut page.id_error,
        &mut page.name_error,
    ) else {
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    let person = match record_of(&state, &id, &page.name).await {
        Ok(Some(person)) => person,
        Ok(None) => {
            page.notice = Some(NOT_FOUND_MESSAGE.to_owned());
            return render(&page, StatusCode::OK);
        }
        Err(err) => return error_page(&err),
    };
    let Some(phone) = person.phone.clone() else {
        page.notice = Some(
            "登记信息中没有您的手机号码，无法发送验证码。请带身份证到户籍或居住地的乡镇（街道）\
             劳动保障服务站登记手机号码；不登录也可以在首页查询缴费信息和缴费。"
                .to_owned(),
        );
        return render(&page, StatusCode::OK);
    };
    let now = state.clock.now();
    let code = random_digits();
    let body = format!(
        "【城乡居民医保】您的登录验证码是{code}，{}分钟内有效。请勿告诉他人，工作人员不会向您索要验证码。",
        CODE_SECONDS / 60
    );
    let message_id = format!("SMS{}", uuid::Uuid::new_v4().simple());
    let region = person.region.as_str().to_owned();
    let hash = code_hash(&region, id.as_str(), &code);
    let ticket = new_session_token();
    let step_hash = token_hash(&ticket);
    let day = now
        .with_timezone(&yibao_server::clock::CHINA_STANDARD_TIME)
        .date_naive()
        .signed_duration_since(chrono::NaiveDate::default())
        .num_days();
    let issued = state
        .storage
        .citizen_accounts()
        .issue_sign_in_code(&SignInCode {
            region: &region,
            id_number: id.as_str(),
            code_hash: &hash,
            step_hash: &step_hash,
            now: now.timestamp(),
            expires_at: now.timestamp() + CODE_SECONDS,
            resend_not_before: now.timestamp() - RESEND_SECONDS,
            day,
            max_per_day: CODES_PER_DAY,
            message: Message {
                message_id: &message_id,
                phone: phone.as_str(),
                body: &body,
                send_before: now.timestamp() + CODE_SECONDS,
            },
        })
        .await;
    let sent_note = match issued {
        Ok(CodeIssued::Sent) => format!(
            "验证码已发送到登记的手机号码，{}分钟内有效。",
            CODE_SECONDS / 60
        ),
        Ok(CodeIssued::TooSoon) => {
            format!("验证码刚刚已发送，请查看短信；{RESEND_SECONDS}秒后才能重新获取。")
        }
        Ok(CodeIssued::TooManyToday) => {
            page.notice = Some(format!(
                "今天获取验证码的次数已达上限（{CODES_PER_DAY}次），请明天再试；不登录也可以在首页查询和缴费。"
            ));
            return render(&page, StatusCode::TOO_MANY_REQUESTS);
        }
        Err(err) => return error_page(&err.into()),
    };
    page.code_step = Some(CodeStep {
        region,
        id_number: id.as_str().to_owned(),
        ticket,
        phone_masked: phone.masked(),
        sent_note,
    });
    page.id_number.clear();
    page.name.clear();
    render(&page, StatusCode::OK)
}

#[derive(Deserialize, Default)]
pub struct CodeForm {
    #[serde(default)]
    region: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    code: String,
}

/// `POST /signin/verify`: the code typed; right opens the session and goes to 我的.
pub async fn verify_code(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    if yibao_server::auth::cross_site(&headers) {
        return refused_cross_site();
    }
    let start_again = || {
        render(
            &SignInPage {
                notice: Some(
                    "验证码已失效（超过有效时间、输错次数过多或页面已过期），请重新获取验证码"
                        .into(),
                ),
                ..SignInPage::default()
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let ticket = form.ticket.trim();
    let (Ok(region), Ok(id), true) = (
        RegionCode::parse(form.region.trim()),
        IdNumber::parse(form.id_number.trim(), state.clock.today()),
        ticket.len() == 64 && ticket.bytes().all(|b| b.is_ascii_hexdigit()),
    ) else {
        return start_again();
    };
    // Every try counts against the address, like a look-up.
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    let id = id.id_number;
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    let mut page = SignInPage {
        code_step: Some(CodeStep {
            region: region.as_str().to_owned(),
            id_number: id.as_str().to_owned(),
            ticket: ticket.to_owned(),
            phone_masked: String::new(),
            sent_note: String::new(),
        }),
        ..SignInPage::default()
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        page.code_error = Some("验证码是短信中的6位数字".into());
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let token = new_session_token();
    let now = state.clock.now().timestamp();
    let checked = state
        .storage
        .citizen_accounts()
        .redeem_sign_in_code(&CodeTry {
            region: region.as_str(),
            id_number: id.as_str(),
            code_hash: &code_hash(region.as_str(), id.as_str(), &code),
            step_hash: &token_hash(ticket),
            now,
            session_token_hash: &token_hash(&token),
            session_expires_at: now + SESSION_SECONDS,
        })
        .await;
    match checked {
        Ok(CodeChecked::SignedIn) => {
            let mut response = see_other("/account");
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    &site,
                    &format!("{}.{token}", region.as_str()),
                    SESSION_SECONDS,
                ),
            );
            response
        }
        Ok(CodeChecked::Wrong { tries_left }) if tries_left > 0 => {
            // The page's token matched: it was opened with this ID number and name.
            if let (Ok(Some((p, _))), Some(step)) = (
                state.storage.get_person(region, &id).await,
                page.code_step.as_mut(),
            ) {
                step.phone_masked = p.phone.map(|p| p.masked()).unwrap_or_default();
            }
            page.code_error = Some(format!("验证码不正确，还可以再试{tries_left}次"));
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Ok(_) => start_again(),
        Err(err) => error_page(&err.into()),
    }
}

/// `POST /signout`.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    headers: HeaderMap,
) -> Response {
    if yibao_server::auth::cross_site(&headers) {
        return refused_cross_site();
    }
    if let Some((region, token)) = session_cookie_value(&headers) {
        if let Err(err) = state
            .storage
            .citizen_accounts()
            .end_citizen_session(region.as_str(), &token_hash(&token))
            .await
        {
            return error_page(&err.into());
        }
    }
    let mut response = see_other("/");
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&site, "", 0));
    response
}

// --- 我的 ---

/// One person of the account (the resident or a family member) with their payables.
pub struct PersonPanel {
    pub label: String,
    pub found: Option<Found>,
    /// For a family member: their ID number sealed for the remove button (never in full).
    pub member_ref: Option<String>,
}

/// A payable that can be paid online, as a checkbox of the pay-together form.
pub struct Payable {
    pub value: String,
    pub label: String,
}

/// A receipt of the account's persons.
pub struct ReceiptRow {
    /// (issued on, receipt code, number): the list's order.
    sort_key: (chrono::NaiveDate, String, String),
    pub person: String,
    pub fee_year: i32,
    pub amount: String,
    pub issued_on: String,
    pub number: String,
    pub valid: bool,
    pub verify_href: String,
    pub pdf_href: String,
}

#[derive(askama::Template, Default)]
#[template(path = "account.html")]
pub struct AccountPage {
    name_masked: String,
    id_masked: String,
    panels: Vec<PersonPanel>,
    payable: Vec<Payable>,
    receipts: Vec<ReceiptRow>,
    reminders: bool,
    members: usize,
    max_members: i64,
    /// The add-member form.
    member_id: String,
    member_name: String,
    member_id_error: Option<String>,
    member_name_error: Option<String>,
    notice: Option<String>,
    pay_error: Option<String>,
    /// 参保登记 the resident submitted.
    applications: Vec<crate::enrol::ApplicationRow>,
    /// A refused 补缴修复 request: the contribution's payable id and why, shown beside its form.
    buy_back_error: Option<(String, String)>,
}

async fn account_page(
    state: &AppState,
    resident: &Resident,
    page: AccountPage,
    status: StatusCode,
) -> Response {
    match fill_account(state, resident, page).await {
        Ok(page) => render(&page, status),
        Err(err) => error_page(&err),
    }
}

/// A family member's ID number as the page carries it: HMAC-tagged with the session's token
/// hash, so a changed one is refused, and not the number itself (the page never shows it).
fn member_ref(resident: &Resident, member_id: &IdNumber) -> String {
    let tag = token_hash(&format!(
        "{}\u{0}{}",
        resident.token_hash,
        member_id.as_str()
    ));
    tag[..32].to_owned()
}

async fn fill_account(
    state: &AppState,
    resident: &Resident,
    mut page: AccountPage,
) -> Result<AccountPage, ServiceError> {
    let accounts = state.storage.citizen_accounts();
    let members = accounts
        .family_members(resident.region.as_str(), resident.id.as_str())
        .await?;
    page.name_masked = resident.name.masked();
    page.id_masked = resident.id.masked();
    page.members = members.len();
    page.max_members = MAX_FAMILY_MEMBERS;
    page.reminders = accounts
        .wants_reminders(resident.region.as_str(), resident.id.as_str())
        .await?;
    let mut persons: Vec<(String, IdNumber, String, Option<String>)> = vec![(
        format!("本人 {}", resident.name.masked()),
        resident.id,
        resident.name.as_str().to_owned(),
        None,
    )];
    for m in &members {
        let masked_name = PersonName::parse(&m.name).map_or_else(|_| String::new(), |n| n.masked());
        persons.push((
            format!("家人 {masked_name}"),
            m.id_number,
            m.name.clone(),
            Some(member_ref(resident, &m.id_number)),
        ));
    }
    let regions = yibao_server::services::collection::region_codes(state).await?;
    let mut receipts = Vec::new();
    for (label, id, name, member_ref) in persons {
        let mut found = crate::lookup::find(state, &id, &name).await?;
        if let Some(found) = &mut found {
            for p in &mut found.payables {
                p.buy_back_person = Some(member_ref.clone().unwrap_or_else(|| SELF_REF.to_owned()));
                if let Some((payable, message)) = &page.buy_back_error {
                    if *payable == p.payable_id {
                        p.buy_back_error = Some(message.clone());
                    }
                }
            }
        }
        if let Some(found) = &found {
            for p in found.payables.iter().filter(|p| p.pay_online) {
                let what = match p.bought_back_year {
                    Some(year) => format!("补缴{year}年度"),
                    None => format!("{}年度", p.fee_year),
                };
                page.payable.push(Payable {
                    value: format!("{}:{}", p.payable_id, p.amount_fen),
                    label: format!(
                        "{} {what} {} {}",
                        found.name_masked, p.region_name, p.amount
                    ),
                });
            }
        }
        for r in state
            .storage
            .receipts_of_person(id.as_str(), &regions, None)
            .await?
        {
            receipts.push(ReceiptRow {
                sort_key: (
                    r.issued_on,
                    r.receipt_code.clone(),
                    r.receipt_number.clone(),
                ),
                person: yibao_server::receipts::masked_name(&r.payer_name),
                fee_year: i32::from(r.fee_year.get()),
                amount: yuan(r.amount_fen.as_fen()),
                issued_on: date_zh(r.issued_on),
                number: r.receipt_number.clone(),
                valid: r.status == yibao_domain::ReceiptStatus::Valid,
                verify_href: format!(
                    "/receipts/verify?code={}&number={}&check_code={}",
                    r.receipt_code, r.receipt_number, r.check_code
                ),
                pdf_href: format!(
                    "/account/receipts/pdf?code={}&number={}",
                    r.receipt_code, r.receipt_number
                ),
            });
        }
        page.panels.push(PersonPanel {
            label,
            found,
            member_ref,
        });
    }
    page.applications = crate::enrol::rows_of(state, resident.id.as_str()).await?;
    // Newest first: by day, then by number within a receipt book.
    receipts.sort_by(|a, b| b.sort_key.cmp(&a.sort_key));
    receipts.truncate(MAX_RECEIPTS_LISTED);
    page.receipts = receipts;
    Ok(page)
}

/// The signed-in resident of a request to 我的. A request without a live session goes to sign in;
/// one that changes something and comes from another site is refused.
pub struct SignedIn(pub Resident);

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        if !parts.method.is_safe() && yibao_server::auth::cross_site(&parts.headers) {
            return Err(refused_cross_site());
        }
        match signed_in(state, &parts.headers).await {
            Ok(Some(resident)) => Ok(SignedIn(resident)),
            Ok(None) => Err(see_other("/signin")),
            Err(err) => Err(error_page(&err)),
        }
    }
}

/// 我的 with `notice` above it.
pub async fn notice_on_account(state: &AppState, resident: &Resident, notice: &str) -> Response {
    let page = AccountPage {
        notice: Some(notice.to_owned()),
        ..AccountPage::default()
    };
    account_page(state, resident, page, StatusCode::OK).await
}

/// `GET /account`: 我的.
pub async fn home(State(state): State<AppState>, SignedIn(resident): SignedIn) -> Response {
    account_page(&state, &resident, AccountPage::default(), StatusCode::OK).await
}

/// `POST /account/family`: adds a member whose ID number and name match the agency's record.
pub async fn add_member(
    State(state): State<AppState>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    SignedIn(resident): SignedIn,
    Form(form): Form<SignInForm>,
) -> Response {
    let mut page = AccountPage {
        member_id: trimmed(&form.id_number, MAX_ID_INPUT_CHARS),
        member_name: trimmed(&form.name, MAX_NAME_INPUT_CHARS),
        ..AccountPage::default()
    };
    let Some(id) = check_person_fields(
        &state,
        &page.member_id,
        &page.member_name,
        &mut page.member_id_error,
        &mut page.member_name_error,
    ) else {
        return account_page(&state, &resident, page, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    if id == resident.id {
        page.member_id_error = Some("这是您本人的身份证号码，本人的缴费信息已在上方列出".into());
        return account_page(&state, &resident, page, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // Adding tells whether an ID number and a name go together: it counts like a look-up.
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    let person = match record_of(&state, &id, &page.member_name).await {
        Ok(Some(person)) => person,
        Ok(None) => {
            page.member_id_error =
                Some("未查到与该身份证号码和姓名相符的参保登记信息，请核对后再添加".into());
            return account_page(&state, &resident, page, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(err) => return error_page(&err),
    };
    let added = state
        .storage
        .citizen_accounts()
        .add_family_member(
            resident.region.as_str(),
            resident.id.as_str(),
            &FamilyMember {
                id_number: id,
                name: person.name.as_str().to_owned(),
                added_at: state.clock.now().timestamp(),
            },
        )
        .await;
    match added {
        Ok(FamilyAdded::Added) => {
            page.notice = Some(format!("已添加家庭成员 {}", person.name.masked()));
            page.member_id.clear();
            page.member_name.clear();
            account_page(&state, &resident, page, StatusCode::OK).await
        }
        Ok(FamilyAdded::AlreadyThere) => {
            page.member_id_error = Some("该成员已在您的家庭中".into());
            account_page(&state, &resident, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Ok(FamilyAdded::Full) => {
            page.member_id_error = Some(format!(
                "最多可添加{MAX_FAMILY_MEMBERS}位家庭成员，请先删除不再代缴的成员"
            ));
            account_page(&state, &resident, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(err) => error_page(&err.into()),
    }
}

#[derive(Deserialize, Default)]
pub struct RemoveForm {
    #[serde(default)]
    member: String,
}

/// `POST /account/family/remove`.
pub async fn remove_member(
    State(state): State<AppState>,
    SignedIn(resident): SignedIn,
    Form(form): Form<RemoveForm>,
) -> Response {
    let accounts = state.storage.citizen_accounts();
    let members = match accounts
        .family_members(resident.region.as_str(), resident.id.as_str())
        .await
    {
        Ok(m) => m,
        Err(err) => return error_page(&err.into()),
    };
    let Some(member) = members
        .iter()
        .find(|m| member_ref(&resident, &m.id_number) == form.member)
    else {
        return see_other("/account");
    };
    if let Err(err) = accounts
        .remove_family_member(
            resident.region.as_str(),
            resident.id.as_str(),
            member.id_number.as_str(),
        )
        .await
    {
        return error_page(&err.into());
    }
    let page = AccountPage {
        notice: Some(format!(
            "已删除家庭成员 {}",
            PersonName::parse(&member.name).map_or_else(|_| String::new(), |n| n.masked())
        )),
        ..AccountPage::default()
    };
    account_page(&state, &resident, page, StatusCode::OK).await
}

/// `POST /account/pay`: one order for the payables ticked (the resident's and their family's,
/// of one region), then the payment provider.
pub async fn pay_selected(
    State(state): State<AppState>,
    Extension(site): Extension<Site>,
    SignedIn(resident): SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut chosen: BTreeSet<(String, i64)> = BTreeSet::new();
    for (_, value) in pairs.iter().filter(|(k, _)| k == "item") {
        if let Some((payable, amount)) = value.split_once(':') {
            if let Ok(amount) = amount.parse::<i64>() {
                chosen.insert((payable.to_owned(), amount));
            }
        }
    }
    let page_with = |message: &str| AccountPage {
        pay_error: Some(message.to_owned()),
        ..AccountPage::default()
    };
    if chosen.len() > MAX_PAYABLES_TOGETHER {
        return account_page(
            &state,
            &resident,
            page_with(&format!(
                "一次最多缴纳{MAX_PAYABLES_TOGETHER}项费用，请少勾选几项，分几次缴纳"
            )),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    if chosen.is_empty() {
        return account_page(
            &state,
            &resident,
            page_with("请勾选要缴纳的费用"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    // Only payables the account may see: its own and its family's, payable online now.
    let allowed: BTreeSet<String> =
        match fill_account(&state, &resident, AccountPage::default()).await {
            Ok(page) => page
                .payable
                .iter()
                .filter_map(|p| p.value.split_once(':').map(|(id, _)| id.to_owned()))
                .collect(),
            Err(err) => return error_page(&err),
        };
    if chosen.iter().any(|(id, _)| !allowed.contains(id)) {
        return account_page(
            &state,
            &resident,
            page_with("所选费用已缴纳或暂不能在线缴纳，请刷新后重新勾选"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let amount = chosen.iter().map(|(_, a)| a).sum();
    let ids = chosen.into_iter().map(|(id, _)| id).collect();
    match crate::pay::open_order(&state, &site.provider, ids, amount).await {
        Ok(to) => see_other(&to),
        Err(err) => {
            account_page(
                &state,
                &resident,
                page_with(&err.message),
                err.code.status(),
            )
            .await
        }
    }
}

/// The 补缴修复 form's reference to the signed-in resident themself (a family member's is sealed,
/// [`member_ref`]).
const SELF_REF: &str = "self";

/// `POST /account/back-payments`: back-payments (补缴修复) for the resident or a family member,
/// for the gap years ticked on a contribution's card ([`yibao_server::services::cover::create_back_payments`]
/// decides and audits; the years offered are only those that shorten the wait). The new
/// payables then show on 我的, to be paid with the year's contribution.
pub async fn buy_back(
    State(state): State<AppState>,
    SignedIn(resident): SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (person, payable_id) = (field("person"), field("payable_id"));
    let years: Result<Vec<u16>, _> = pairs
        .iter()
        .filter(|(k, _)| k == "year")
        .take(yibao_server::services::cover::MAX_BACK_PAYMENT_YEARS + 1)
        .map(|(_, v)| v.trim().parse::<u16>())
        .collect();
    let refused = |message: &str| AccountPage {
        buy_back_error: Some((payable_id.clone(), message.to_owned())),
        ..AccountPage::default()
    };
    // Whose: the resident, or one of their family (by the sealed reference the page carries).
    let id = if person == SELF_REF {
        resident.id
    } else {
        let members = match state
            .storage
            .citizen_accounts()
            .family_members(resident.region.as_str(), resident.id.as_str())
            .await
        {
            Ok(m) => m,
            Err(err) => return error_page(&err.into()),
        };
        match members
            .iter()
            .find(|m| member_ref(&resident, &m.id_number) == person)
        {
            Some(m) => m.id_number,
            None => return see_other("/account"),
        }
    };
    let Ok(years) = years else {
        return account_page(
            &state,
            &resident,
            refused("补缴年度有误，请刷新页面后重新勾选"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if years.is_empty() {
        return account_page(
            &state,
            &resident,
            refused("请勾选要补缴的年度"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    // The contribution the card showed: this person's, of a year with a policy.
    let views = match state
        .storage
        .payables_by_id(std::slice::from_ref(&payable_id))
        .await
    {
        Ok(v) => v,
        Err(err) => return error_page(&err.into()),
    };
    let Some(contribution) = views
        .iter()
        .map(|v| &v.payable)
        .find(|p| p.id_number == id && p.buys_back_year.is_none())
    else {
        return account_page(
            &state,
            &resident,
            refused("这项费用已经变化，请刷新页面后再办理"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let policy = match state
        .storage
        .get_fee_policy(contribution.region, contribution.fee_year)
        .await
    {
        Ok(Some(policy)) => policy,
        Ok(None) => {
            return account_page(
                &state,
                &resident,
                refused("参保地尚未公布本年度缴费政策，暂不能办理补缴，请到服务站咨询"),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(err) => return error_page(&err.into()),
    };
    let made = yibao_server::services::cover::create_back_payments(
        state.storage.as_ref(),
        &policy,
        &id,
        &years,
        &format!("citizen:{}", resident.id.masked()),
        state.clock.today(),
    )
    .await;
    match made {
        Ok(made) => {
            let total: i64 = made.open.iter().map(|p| p.amount_fen).sum();
            let years: Vec<String> = made
                .open
                .iter()
                .map(|p| p.buys_back_year.to_string())
                .collect();
            let page = AccountPage {
                notice: Some(format!(
                    "待缴的补缴费用：{}年度，共{}。与本年度费用一起缴纳后，等待期由{}个月缩短为{}个月；请在“一起缴费”中缴纳。",
                    years.join("、"),
                    yuan(total),
                    made.wait_now,
                    made.wait_after
                )),
                ..AccountPage::default()
            };
            account_page(&state, &resident, page, StatusCode::OK).await
        }
        Err(err) if err.code.status() == StatusCode::INTERNAL_SERVER_ERROR => error_page(&err),
        Err(err) => {
            let status = err.code.status();
            account_page(&state, &resident, refused(&err.message), status).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ReceiptQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    number: String,
}

/// `GET /account/receipts/pdf`: the payer's copy (the name in full) of a receipt of the
/// resident or one of their family.
pub async fn receipt_pdf(
    State(state): State<AppState>,
    SignedIn(resident): SignedIn,
    Query(q): Query<ReceiptQuery>,
) -> Response {
    let not_yours = || {
        error_page(&ServiceError::new(
            ErrorCode::NotFound,
            "未找到这张票据，或它不是您或您家庭成员的票据",
        ))
    };
    let receipt = match state
        .storage
        .get_receipt(q.code.trim(), q.number.trim())
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => return not_yours(),
        Err(err) => return error_page(&err.into()),
    };
    let mine = receipt.id_number.as_str() == resident.id.as_str()
        || match state
            .storage
            .citizen_accounts()
            .family_members(resident.region.as_str(), resident.id.as_str())
            .await
        {
            Ok(members) => members.iter().any(|m| m.id_number == receipt.id_number),
            Err(err) => return error_page(&err.into()),
        };
    if !mine {
        return not_yours();
    }
    crate::verify::payer_copy_pdf(&state, &receipt).await
}

#[derive(Deserialize, Default)]
pub struct RemindersForm {
    #[serde(default)]
    reminders: String,
}

/// `POST /account/reminders`: payment reminders on (`reminders=on`) or off.
pub async fn set_reminders(
    State(state): State<AppState>,
    SignedIn(resident): SignedIn,
    Form(form): Form<RemindersForm>,
) -> Response {
    let wanted = form.reminders == "on";
    if let Err(err) = state
        .storage
        .citizen_accounts()
        .set_reminders(
            resident.region.as_str(),
            resident.id.as_str(),
            wanted,
            state.clock.now().timestamp(),
        )
        .await
    {
        return error_page(&err.into());
    }
    let page = AccountPage {
        notice: Some(if wanted {
            "已开启缴费提醒：缴费期开始和快结束时会发短信提醒您".into()
        } else {
            "已关闭缴费提醒，不会再收到缴费提醒短信".into()
        }),
        ..AccountPage::default()
    };
    account_page(&state, &resident, page, StatusCode::OK).await
}
