//! 参保人员: find a person, read their record (audited), change it, record an exemption,
//! re-assess, and (administrator) refund a paid payable.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use yibao_domain::settlement::RefundReason;
use yibao_domain::{
    FeeYear, Household, IdNumber, InsuredNumber, PayableStatus, Person, PersonName, RegionCode,
};
use yibao_server::admin::persons::person_or_problems;
use yibao_server::admin::persons::PersonInput;
use yibao_server::services::audit;
use yibao_server::services::persons::{
    load_person, read_person, reassess as reassess_payable, save_person,
};
use yibao_server::{AppState, ErrorCode, ServiceError};
use yibao_storage::records::PayableRecord;
use yibao_storage::Role;

use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{payable_status_zh, yuan, Chrome};
use crate::{html, render_with_status, PageError};

/// Most persons a name search lists.
pub const MAX_RESULTS: usize = 50;

/// One person in a result list: masked until revealed.
pub struct Found {
    pub region: String,
    /// The ID number sealed for this session's links.
    pub link: String,
    pub id_masked: String,
    pub name_masked: String,
    pub station: String,
}

#[derive(Template)]
#[template(path = "persons/search.html")]
pub struct SearchPage {
    pub chrome: Chrome,
    pub q: String,
    pub region: String,
    pub regions: Vec<(String, String)>,
    pub may_choose_region: bool,
    pub q_error: Option<String>,
    pub searched: bool,
    pub found: Vec<Found>,
    pub more: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    region: Option<String>,
}

/// The region a search or page works in: one's own, or (unbound roles) the one chosen, or the
/// first registered.
pub(crate) async fn region_for(
    state: &AppState,
    user: &ConsoleUser,
    requested: Option<&str>,
) -> Result<(RegionCode, Vec<(String, String)>), PageError> {
    let regions: Vec<(String, String)> = state
        .storage
        .list_regions()
        .await?
        .iter()
        .map(|r| (r.code().to_string(), r.name().to_owned()))
        .collect();
    let region = match (user.account().region, requested.filter(|r| !r.is_empty())) {
        (Some(own), _) => own,
        (None, Some(text)) => RegionCode::parse(text).map_err(ServiceError::from)?,
        (None, None) => match regions.first() {
            Some((code, _)) => RegionCode::parse(code).map_err(ServiceError::from)?,
            None => return Err(PageError::not_found("还没有登记统筹区")),
        },
    };
    Ok((region, regions))
}

/// `GET /console/persons?q=`: by ID number (18, 15 or 17 digits) or by name (or its beginning).
pub async fn search(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let (region, regions) = region_for(&state, &user, query.region.as_deref()).await?;
    let account = user.account();
    let station = match account.role {
        Role::StationOperator => account.station.clone(),
        _ => None,
    };
    user.staff
        .may_read(region, station.as_ref().or(account.station.as_ref()))?;
    let q = query.q.unwrap_or_default().trim().to_owned();
    let mut page = SearchPage {
        chrome: Chrome::new(&user, "persons", "参保人员"),
        q: q.clone(),
        region: region.to_string(),
        regions,
        may_choose_region: account.region.is_none(),
        q_error: None,
        searched: !q.is_empty(),
        found: Vec::new(),
        more: false,
    };
    if q.is_empty() {
        return html(&page);
    }
    if q.chars().count() > 40 {
        page.q_error = Some("请输入身份证号码、参保编号或姓名（不超过40个字）".into());
        return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let looks_like_number = q.chars().next().is_some_and(|c| c.is_ascii_digit());
    // Sixteen characters: an insured number (参保编号); ID numbers have 15, 17 or 18.
    if looks_like_number && q.chars().count() == yibao_domain::insured_number::INSURED_NUMBER_LEN {
        let number = match InsuredNumber::parse(&q) {
            Ok(number) => number,
            Err(e) => {
                page.q_error = Some(e.to_string());
                return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
            }
        };
        if number.region() != region {
            page.q_error = Some(format!(
                "参保编号 {number} 是统筹区 {} 的编号，当前查找的是统筹区 {region}，请先选择该统筹区",
                number.region()
            ));
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        if let Some(id) = state.storage.person_by_insured_number(&number).await? {
            if let Some((person, _)) = state.storage.get_person(region, &id).await? {
                if user.staff.may_read(region, person.station.as_ref()).is_ok() {
                    page.found.push(found_of(&user, &person));
                }
            }
        }
    } else if looks_like_number {
        match IdNumber::parse(&q, state.clock.today()) {
            Ok(parsed) => {
                if let Some((person, _)) =
                    state.storage.get_person(region, &parsed.id_number).await?
                {
                    if user.staff.may_read(region, person.station.as_ref()).is_ok() {
                        page.found.push(found_of(&user, &person));
                    }
                }
            }
            Err(e) => {
                page.q_error = Some(e.to_string());
                return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
            }
        }
    } else {
        // The name as typed, without variation selectors: the stored name is found whether or
        // not either carries them.
        let typed: String = q
            .chars()
            .filter(|c| !yibao_domain::person_name::is_variation_selector(*c))
            .collect();
        let base: String = typed.chars().take(1).collect();
        let candidates = state
            .storage
            .find_persons_by_name(region, &base, station.as_ref(), 2_000)
            .await?;
        for c in candidates {
            let plain: String = c
                .name
                .chars()
                .filter(|ch| !yibao_domain::person_name::is_variation_selector(*ch))
                .collect();
            if !plain.starts_with(&typed) {
                continue;
            }
            if page.found.len() == MAX_RESULTS {
                page.more = true;
                break;
            }
            page.found.push(Found {
                region: c.region.to_string(),
                id_masked: c.id_number.masked(),
                name_masked: mask_name(&c.name),
                link: user.person_ref(c.id_number.as_str()),
                station: c.station_code.unwrap_or_default(),
            });
        }
    }
    html(&page)
}

fn found_of(user: &ConsoleUser, person: &Person) -> Found {
    Found {
        region: person.region.to_string(),
        link: user.person_ref(person.id_number.as_str()),
        id_masked: person.id_number.masked(),
        name_masked: person.name.masked(),
        station: person
            .station
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    }
}

pub(crate) fn mask_name(name: &str) -> String {
    PersonName::parse(name).map_or_else(|_| "*".repeat(2), |n| n.masked())
}

#[derive(Template)]
#[template(path = "persons/revealed.html")]
pub struct Revealed {
    pub name: String,
    pub id_number: String,
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST /console/persons/{region}/{id}/reveal`: the full name and ID number of one list entry,
/// a deliberate click, audited as `read.person_reveal`.
pub async fn reveal(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, _): CsrfForm<EmptyForm>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let (person, _) = load_person(&state, &user.staff, region, &id).await?;
    audit(
        &state,
        &user.staff,
        "read.person_reveal",
        Some(region),
        &id.masked(),
        serde_json::json!({ "station": person.station.as_ref().map(|s| s.as_str()), "via": "console" }),
    )
    .await?;
    html(&Revealed {
        name: person.name.as_str().to_owned(),
        id_number: person.id_number.as_str().to_owned(),
    })
}

/// The region and ID number of a person link: the ID number sealed for this session
/// ([`ConsoleUser::person_ref`]), or typed in full.
pub(crate) fn parse_key(
    state: &AppState,
    user: &ConsoleUser,
    region: &str,
    id: &str,
) -> Result<(RegionCode, IdNumber), PageError> {
    let region = RegionCode::parse(region).map_err(ServiceError::from)?;
    let id = match id.strip_prefix(crate::session::REF_PREFIX) {
        Some(_) => user.resolve_ref(id).ok_or_else(|| {
            PageError::not_found("链接已失效（重新登录后旧链接不能再用），请重新查找此人")
        })?,
        None => id.to_owned(),
    };
    let id = IdNumber::parse(&id, state.clock.today())
        .map_err(ServiceError::from)?
        .id_number;
    Ok((region, id))
}

/// A payable as the record shows it.
pub struct PayableLine {
    pub payable_id: String,
    pub fee_year: i32,
    pub category: String,
    pub amount: String,
    pub components: String,
    pub status: &'static str,
    pub payable_from: String,
    pub current: bool,
    pub paid: bool,
    /// Unpaid or locked: money may still come.
    pub payable: bool,
    /// The gap year of a back-payment (补缴修复), which is never re-assessed.
    pub bought_back_year: Option<u16>,
}

impl PayableLine {
    fn of(p: &PayableRecord) -> PayableLine {
        let mut parts = vec![format!("基本医疗 {}", yuan(p.basic_fen.as_fen()))];
        if p.critical_illness_fen.as_fen() > 0 {
            parts.push(format!(
                "大病保险 {}",
                yuan(p.critical_illness_fen.as_fen())
            ));
        }
        if p.long_term_care_fen.as_fen() > 0 {
            parts.push(format!("长期护理 {}", yuan(p.long_term_care_fen.as_fen())));
        }
        PayableLine {
            payable_id: p.payable_id.clone(),
            fee_year: i32::from(p.fee_year.get()),
            category: match p.buys_back() {
                Some(year) => format!("补缴{year}年度"),
                None => yibao_domain::fee::Category::from_code(&p.category)
                    .map_or_else(|| p.category.clone(), |c| c.name_zh().to_owned()),
            },
            amount: yuan(p.amount_fen.as_fen()),
            components: parts.join("，"),
            status: payable_status_zh(p.status.code()),
            payable_from: p.payable_from.to_string(),
            current: !matches!(
                p.status,
                PayableStatus::Superseded | PayableStatus::Cancelled
            ),
            paid: matches!(p.status, PayableStatus::Paid | PayableStatus::Posted),
            payable: p.status.is_payable(),
            bought_back_year: p.buys_back(),
        }
    }
}

/// A receipt line.
pub struct ReceiptLine {
    pub number: String,
    pub fee_year: i32,
    pub amount: String,
    pub issued_on: String,
    pub voided: bool,
}

/// A version of the record.
pub struct HistoryLine {
    pub version: i64,
    pub changed_at: String,
    pub changed_by: String,
    pub source: String,
}

/// The values of the record's forms (as typed, or as stored).
#[derive(Default, Deserialize)]
pub struct PersonFields {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub station: String,
    #[serde(default)]
    pub household: String,
    #[serde(default)]
    pub permit_since: String,
    #[serde(default)]
    pub school: String,
    #[serde(default)]
    pub employee_insured: Option<String>,
    #[serde(default)]
    pub relief_kind: String,
    #[serde(default)]
    pub certificate_name: String,
    #[serde(default)]
    pub certificate_number: String,
    #[serde(default)]
    pub certificate_valid_until: String,
    #[serde(default)]
    pub subsidy_yuan: String,
}

impl PersonFields {
    fn of(p: &Person) -> PersonFields {
        let (household, permit_since) = match p.household {
            Household::LocalRegistration => ("本地户籍", String::new()),
            Household::ResidencePermit { since } => ("居住证", since.to_string()),
        };
        let relief = p.relief.as_ref();
        PersonFields {
            name: p.name.as_str().to_owned(),
            phone: p
                .phone
                .as_ref()
                .map(|x| x.as_str().to_owned())
                .unwrap_or_default(),
            station: p
                .station
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            household: household.to_owned(),
            permit_since,
            school: p.school.clone().unwrap_or_default(),
            employee_insured: p.employee_insured.then(|| "on".to_owned()),
            relief_kind: relief
                .map(|r| r.kind.name_zh().to_owned())
                .unwrap_or_default(),
            certificate_name: relief
                .map(|r| r.certificate_name.clone())
                .unwrap_or_default(),
            certificate_number: relief
                .map(|r| r.certificate_number.clone())
                .unwrap_or_default(),
            certificate_valid_until: relief
                .map(|r| r.valid_until.to_string())
                .unwrap_or_default(),
            subsidy_yuan: relief
                .and_then(|r| r.subsidy)
                .map(|f| yuan(f.as_fen()).replace(',', ""))
                .unwrap_or_default(),
        }
    }

    fn input(&self) -> PersonInput {
        let opt = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        };
        PersonInput {
            name: self.name.trim().to_owned(),
            person_kind: Some(
                if self.school.trim().is_empty() {
                    "居民"
                } else {
                    "在校学生"
                }
                .into(),
            ),
            household: opt(&self.household),
            permit_since: opt(&self.permit_since),
            school: opt(&self.school),
            phone: opt(&self.phone),
            station: opt(&self.station),
            employee_insured: Some(self.employee_insured.is_some()),
            relief_kind: opt(&self.relief_kind),
            certificate_name: opt(&self.certificate_name),
            certificate_number: opt(&self.certificate_number),
            certificate_valid_until: opt(&self.certificate_valid_until),
            subsidy_yuan: opt(&self.subsidy_yuan),
        }
    }
}

#[derive(Template)]
#[template(path = "persons/record.html")]
pub struct RecordPage {
    pub chrome: Chrome,
    pub region: String,
    pub id_number: String,
    /// 参保编号; empty only for a record the page could not read it of.
    pub insured_number: String,
    /// The ID number sealed for this page's forms and links.
    pub link: String,
    pub version: i64,
    pub fields: PersonFields,
    /// Field (roster column) → message, shown beside the field.
    pub errors: Vec<(String, String)>,
    pub notice: Option<String>,
    pub may_change: bool,
    pub is_admin: bool,
    pub payables: Vec<PayableLine>,
    pub receipts: Vec<ReceiptLine>,
    pub history: Vec<HistoryLine>,
    pub relief_kinds: Vec<&'static str>,
    /// The 2025 rules for the latest fee year with a policy: history, wait, back-payment, reward.
    pub cover: Option<CoverPanel>,
    /// The family-account bindings (个人账户家庭共济) of this person as the relative.
    pub bindings: Vec<BindingLine>,
    /// The binding form's values (kept when it comes back with errors).
    pub binding_form: yibao_server::services::cover::BindingInput,
    /// The Civil Code's eight close relatives, for the form's list.
    pub relationships: Vec<&'static str>,
    /// The household (户) the person is in now.
    pub household_now: Option<crate::pages::households::MembershipLine>,
    /// Every membership of the person in the region, latest first.
    pub household_history: Vec<crate::pages::households::MembershipLine>,
    /// The household form's values (kept when it comes back with errors).
    pub household_form: crate::pages::households::HouseholdForm,
    /// Relations offered in the household form's list.
    pub relations: Vec<&'static str>,
}

/// One binding as the record lists it: the employee masked.
pub struct BindingLine {
    pub employee_masked: String,
    pub employee_region: String,
    pub relationship: &'static str,
    pub valid_from: String,
    pub valid_until: String,
    /// 有效, 已终止 or 未生效, today.
    pub state: &'static str,
}

impl BindingLine {
    fn of(b: &yibao_domain::family_account::FamilyBinding, today: chrono::NaiveDate) -> Self {
        BindingLine {
            employee_masked: b.employee.masked(),
            employee_region: b.employee_region.clone(),
            relationship: b.relationship.name_zh(),
            valid_from: b.valid_from.to_string(),
            valid_until: b
                .valid_until
                .map_or_else(|| "长期".to_owned(), |d| d.to_string()),
            state: if b.in_force_on(today) {
                "有效"
            } else if b.valid_from > today {
                "未生效"
            } else {
                "已终止"
            },
        }
    }
}

/// What the 2025 rules say of the person for one fee year.
pub struct CoverPanel {
    pub fee_year: u16,
    /// (benefit year, how insured).
    pub history: Vec<(u16, String)>,
    /// Imported special situations (exempt groups, a move from employee insurance).
    pub situations: Vec<String>,
    pub start: String,
    pub back_payment: Option<String>,
    /// The gap years a back-payment may be created for now (the year's contribution unpaid).
    pub may_buy_back: Vec<u16>,
    /// Back-payments created and not paid yet, e.g. `2026年度`.
    pub open_back_payments: Option<String>,
    pub reward: String,
}

impl CoverPanel {
    async fn of(
        state: &AppState,
        region: RegionCode,
        id: &IdNumber,
        payables: &[PayableLine],
    ) -> Result<Option<CoverPanel>, PageError> {
        let mut years: Vec<i32> = payables.iter().map(|p| p.fee_year).collect();
        years.sort_unstable_by(|a, b| b.cmp(a));
        years.dedup();
        let mut policy = None;
        for year in years {
            let Ok(year) = yibao_domain::FeeYear::try_from(year) else {
                continue;
            };
            policy = state.storage.get_fee_policy(region, year).await?;
            if policy.is_some() {
                break;
            }
        }
        let Some(policy) = policy else {
            return Ok(None);
        };
        let today = state.clock.today();
        let cover = yibao_server::services::cover::read_person_cover(
            state.storage.as_ref(),
            &policy,
            id,
            today,
        )
        .await?;
        let history: Vec<(u16, String)> = cover
            .history
            .entries()
            .into_iter()
            .rev()
            .map(|(year, c, bought)| {
                let bought = if bought {
                    "（已补缴修复，该年度不享受待遇）"
                } else {
                    ""
                };
                (year, format!("{}{bought}", c.name_zh()))
            })
            .collect();
        let offer = &cover.offer;
        let fee_year = i32::from(policy.fee_year().get());
        let contribution_unpaid = payables
            .iter()
            .any(|p| p.fee_year == fee_year && p.bought_back_year.is_none() && p.payable);
        let open: Vec<u16> = payables
            .iter()
            .filter(|p| p.fee_year == fee_year && p.payable)
            .filter_map(|p| p.bought_back_year)
            .collect();
        let may_buy_back: Vec<u16> = if contribution_unpaid {
            offer
                .effective_years
                .iter()
                .copied()
                .filter(|y| !open.contains(y))
                .collect()
        } else {
            Vec::new()
        };
        let open_back_payments = (!open.is_empty()).then(|| {
            let years: Vec<String> = open.iter().map(|y| format!("{y}年度")).collect();
            format!(
                "{}待缴（须在{}年度保费之前或同时缴纳）",
                years.join("、"),
                policy.fee_year()
            )
        });
        Ok(Some(CoverPanel {
            may_buy_back,
            open_back_payments,
            fee_year: policy.fee_year().get(),
            history,
            situations: cover.situations_zh(),
            start: match &cover.start {
                Ok(start) => start.summary_zh(),
                Err(refusal) => refusal.to_string(),
            },
            back_payment: (!offer.gap_years.is_empty()).then(|| {
                let years: Vec<String> = offer.effective_years.iter().map(u16::to_string).collect();
                format!(
                    "断保{}年（{}），可补缴{}年{}，等待期由{}个月缩短为{}个月",
                    offer.gap_years.len(),
                    offer
                        .gap_years
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join("、"),
                    offer.effective_years.len(),
                    if years.is_empty() {
                        String::new()
                    } else {
                        format!("（{}）", years.join("、"))
                    },
                    offer.wait_now.total,
                    offer.wait_after.total
                )
            }),
            reward: cover.reward.summary_zh(),
        }))
    }
}

impl RecordPage {
    /// The message for a form field, if any.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

pub(crate) async fn record_page(
    state: &AppState,
    user: &ConsoleUser,
    region: RegionCode,
    id: &IdNumber,
) -> Result<RecordPage, PageError> {
    let record = read_person(state, &user.staff, region, id).await?;
    let history = state.storage.person_history(region, id).await?;
    let receipts = state
        .storage
        .receipts_of_person(id.as_str(), &[region.to_string()], None)
        .await?;
    let mut payables: Vec<PayableLine> = record.payables.iter().map(PayableLine::of).collect();
    payables.sort_by_key(|p| std::cmp::Reverse((p.fee_year, p.current)));
    let cover = CoverPanel::of(state, region, id, &payables).await?;
    let today = state.clock.today();
    let bindings =
        yibao_server::services::persons::family_bindings(state, &user.staff, region, id).await?;
    let memberships =
        yibao_server::services::persons::household_memberships(state, &user.staff, region, id)
            .await?;
    let household_history: Vec<crate::pages::households::MembershipLine> = memberships
        .iter()
        .map(|m| crate::pages::households::MembershipLine::of(m, region, user))
        .collect();
    let household_now = household_history.iter().find(|m| m.current).cloned();
    let household_form = crate::pages::households::HouseholdForm {
        number: household_now
            .as_ref()
            .map(|m| m.number.clone())
            .unwrap_or_default(),
        relation: household_now
            .as_ref()
            .filter(|m| m.relation != "未填")
            .map(|m| m.relation.clone())
            .unwrap_or_default(),
    };
    Ok(RecordPage {
        household_now,
        household_history,
        household_form,
        relations: crate::pages::households::common_relations(),
        cover,
        bindings: bindings.iter().map(|b| BindingLine::of(b, today)).collect(),
        binding_form: yibao_server::services::cover::BindingInput {
            valid_from: today.to_string(),
            ..Default::default()
        },
        relationships: yibao_domain::family_account::Relationship::ALL
            .iter()
            .map(|r| r.name_zh())
            .collect(),
        chrome: Chrome::new(
            user,
            "persons",
            &format!("参保人员 {}", record.person.name.masked()),
        ),
        region: region.to_string(),
        id_number: id.as_str().to_owned(),
        insured_number: record
            .insured_number
            .map(|n| n.to_string())
            .unwrap_or_default(),
        link: user.person_ref(id.as_str()),
        version: record.version,
        fields: PersonFields::of(&record.person),
        errors: Vec::new(),
        notice: None,
        may_change: user
            .staff
            .may_change(region, record.person.station.as_ref())
            .is_ok(),
        is_admin: user.account().role == Role::Admin,
        payables,
        receipts: receipts
            .iter()
            .map(|r| ReceiptLine {
                number: format!("{}-{}", r.receipt_code, r.receipt_number),
                fee_year: i32::from(r.fee_year.get()),
                amount: yuan(r.amount_fen.as_fen()),
                issued_on: r.issued_on.to_string(),
                voided: r.status == yibao_domain::ReceiptStatus::Voided,
            })
            .collect(),
        history: history
            .iter()
            .rev()
            .map(|h| HistoryLine {
                version: h.version,
                changed_at: crate::view::beijing_of_stored(&h.changed_at),
                changed_by: h.changed_by.clone(),
                source: h.source.clone(),
            })
            .collect(),
        relief_kinds: yibao_domain::ReliefKind::ALL
            .iter()
            .map(|k| k.name_zh())
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct RecordQuery {
    done: Option<String>,
}

/// `GET /console/persons/{region}/{id}`: the record (reading it is audited).
pub async fn record(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((region, id)): Path<(String, String)>,
    Query(query): Query<RecordQuery>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let mut page = record_page(&state, &user, region, &id).await?;
    page.notice = match query.done.as_deref() {
        Some("saved") => Some("登记信息已保存。".into()),
        Some("exemption") => Some("减免信息已保存。如已核定，请重新核定本年度应缴费。".into()),
        Some("reassessed") => Some("已重新核定，新的应缴费次日起可缴。".into()),
        Some("bought_back") => Some(
            "已核定补缴：补缴记录见“应缴记录”，可在任一渠道缴纳；须在本年度保费之前或同时缴纳才能缩短等待期。"
                .into(),
        ),
        Some("refunded") => Some("已发起退费，原票据作废；退费在2个工作日内经原渠道退回。".into()),
        Some("household") => Some("家庭户信息已保存。".into()),
        Some("left_household") => Some("已将此人移出家庭户，原记录保留在家庭户变更记录中。".into()),
        Some("bound") => Some(
            "家庭共济绑定已保存：绑定有效期内，该职工可用个人账户为此人缴费。".into(),
        ),
        _ => None,
    };
    html(&page)
}

/// Field names of the form, by the roster column a problem names.
fn field_of_column(column: &str) -> &'static str {
    use yibao_domain::roster::RosterColumn as C;
    for (c, field) in [
        (C::Name, "name"),
        (C::Phone, "phone"),
        (C::Station, "station"),
        (C::Household, "household"),
        (C::PermitSince, "permit_since"),
        (C::School, "school"),
        (C::EmployeeInsured, "employee_insured"),
        (C::ReliefKind, "relief_kind"),
        (C::CertificateName, "certificate_name"),
        (C::CertificateNumber, "certificate_number"),
        (C::CertificateValidUntil, "certificate_valid_until"),
        (C::Subsidy, "subsidy_yuan"),
    ] {
        if c.header() == column {
            return field;
        }
    }
    "form"
}

async fn save_fields(
    state: &AppState,
    user: &ConsoleUser,
    region: RegionCode,
    id: &IdNumber,
    fields: PersonFields,
    done: &str,
) -> Result<Response, PageError> {
    let input = fields.input();
    match person_or_problems(region.as_str(), id.as_str(), &input, state.clock.today()) {
        Ok(person) => {
            save_person(state, &user.staff, person, "console").await?;
            Ok(back_to_record(user, region, id, done))
        }
        Err(problems) => {
            let mut page = record_page(state, user, region, id).await?;
            page.errors = problems
                .iter()
                .map(|p| (field_of_column(p.column).to_owned(), p.reason.clone()))
                .collect();
            page.fields = fields;
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `POST /console/persons/{region}/{id}`: saves the reserved identity and details (the exemption
/// stays as stored).
pub async fn save(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<PersonFields>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let (stored, _) = load_person(&state, &user.staff, region, &id).await?;
    let kept = PersonFields::of(&stored);
    let fields = PersonFields {
        relief_kind: kept.relief_kind,
        certificate_name: kept.certificate_name,
        certificate_number: kept.certificate_number,
        certificate_valid_until: kept.certificate_valid_until,
        subsidy_yuan: kept.subsidy_yuan,
        ..form
    };
    save_fields(&state, &user, region, &id, fields, "saved").await
}

/// `POST /console/persons/{region}/{id}/exemption`: records (or clears) an exemption with its
/// certificate and validity; the rest of the record stays as stored.
pub async fn exemption(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<PersonFields>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let (stored, _) = load_person(&state, &user.staff, region, &id).await?;
    let fields = PersonFields {
        relief_kind: form.relief_kind,
        certificate_name: form.certificate_name,
        certificate_number: form.certificate_number,
        certificate_valid_until: form.certificate_valid_until,
        subsidy_yuan: form.subsidy_yuan,
        ..PersonFields::of(&stored)
    };
    save_fields(&state, &user, region, &id, fields, "exemption").await
}

#[derive(Deserialize)]
pub struct ReassessForm {
    fee_year: i64,
}

/// `POST /console/persons/{region}/{id}/buy-back`: back-payments (补缴修复) for the years ticked.
/// The form sends `fee_year` once and `years` once per box ticked, so it is read as pairs.
pub async fn buy_back(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let value = |key: &'static str| pairs.iter().filter(move |(k, _)| k == key).map(|(_, v)| v);
    let fee_year = value("fee_year")
        .next()
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| PageError::bad_form("表单内容不完整，请刷新页面后重新填写"))?;
    let fee_year = FeeYear::new(fee_year).map_err(ServiceError::from)?;
    let years: Vec<u16> = value("years")
        .map(|v| v.parse::<u16>())
        .collect::<Result<_, _>>()
        .map_err(|_| PageError::bad_form("补缴年度不正确，请刷新页面后重新勾选"))?;
    if years.is_empty() {
        return Err(ServiceError::new(ErrorCode::InvalidRequest, "请勾选要补缴的年度").into());
    }
    yibao_server::services::persons::buy_back(&state, &user.staff, region, fee_year, &id, &years)
        .await?;
    Ok(back_to_record(&user, region, &id, "bought_back"))
}

/// `POST /console/persons/{region}/{id}/family-bindings`: enters (or, for the same employee,
/// replaces) a family-account binding of this person; a refused field comes back beside itself.
pub async fn family_binding(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<yibao_server::services::cover::BindingInput>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    match yibao_server::services::persons::enter_family_binding(
        &state,
        &user.staff,
        region,
        &id,
        &form,
    )
    .await
    {
        Ok(_) => Ok(back_to_record(&user, region, &id, "bound")),
        Err(Err(error)) => Err(error.into()),
        Err(Ok(problem)) => {
            let mut page = record_page(&state, &user, region, &id).await?;
            let names = yibao_domain::family_account::BINDING_COLUMN_NAMES;
            let field = [
                "employee_id_number",
                "employee_region",
                "form",
                "relationship",
                "valid_from",
                "valid_until",
            ]
            .into_iter()
            .zip(names)
            .find(|(_, name)| *name == problem.column)
            .map_or("form", |(field, _)| field);
            page.errors = vec![(field.to_owned(), problem.reason)];
            page.binding_form = form;
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `POST /console/persons/{region}/{id}/reassess`.
pub async fn reassess(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<ReassessForm>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let fee_year = FeeYear::new(form.fee_year).map_err(ServiceError::from)?;
    reassess_payable(&state, &user.staff, region, fee_year, &id).await?;
    Ok(back_to_record(&user, region, &id, "reassessed"))
}

#[derive(Deserialize)]
pub struct RefundForm {
    payable_id: String,
    reason: String,
}

/// `POST /console/persons/{region}/{id}/refund`: the administrator refunds a paid payable of
/// this person through the channel that took the money.
pub async fn refund(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<RefundForm>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    user.staff.require_admin()?;
    let record = read_person(&state, &user.staff, region, &id).await?;
    if !record
        .payables
        .iter()
        .any(|p| p.payable_id == form.payable_id)
    {
        return Err(PageError::not_found("此人没有这条应缴记录"));
    }
    let reason = RefundReason::from_code(&form.reason)
        .ok_or_else(|| ServiceError::new(ErrorCode::InvalidRequest, "请选择退费原因"))?;
    let refund = yibao_server::services::refunds::refund_paid_payable(
        state.storage.as_ref(),
        &state.clock,
        &form.payable_id,
        reason,
    )
    .await?;
    audit(&state, &user.staff, "payable.refund", Some(region), &form.payable_id,
        serde_json::json!({"refund_no": refund.refund_no, "reason": reason.code(), "amount": refund.amount_fen, "via": "console"})).await?;
    Ok(back_to_record(&user, region, &id, "refunded"))
}

/// Back to the person's record (by this session's sealed link), saying what was done.
fn back_to_record(user: &ConsoleUser, region: RegionCode, id: &IdNumber, done: &str) -> Response {
    see_other(&format!(
        "/console/persons/{region}/{}?done={done}",
        user.person_ref(id.as_str())
    ))
}

pub(crate) fn see_other(location: &str) -> Response {
    use axum::response::IntoResponse;
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, v);
    }
    response
}
