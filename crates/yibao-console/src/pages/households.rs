//! 家庭户 (issue 17): a person's household on their record page (the form that puts them in one
//! or takes them out), and a household's own page: who is in it now, who was, and since when.
//! Names and ID numbers on the household page are masked (a list); each links to the record,
//! whose read is audited.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use yibao_domain::household::{HouseholdField, HouseholdNumber, HouseholdProblem, Relation};
use yibao_domain::RegionCode;
use yibao_server::AppState;
use yibao_storage::households::MembershipRecord;

use crate::pages::persons::{parse_key, record_page, see_other};
use crate::session::{ConsoleUser, CsrfForm};
use crate::view::{beijing_minute, Chrome};
use crate::{html, render_with_status, PageError};

/// One membership as the pages list it.
#[derive(Clone)]
pub struct MembershipLine {
    pub number: String,
    /// The household page's link for the number.
    pub region: String,
    pub relation: String,
    pub joined: String,
    pub joined_by: String,
    pub source: String,
    pub left: String,
    pub left_by: String,
    pub current: bool,
    pub is_head: bool,
    pub name_masked: String,
    pub id_masked: String,
    /// The record's link (this session's sealed ID number).
    pub link: String,
}

impl MembershipLine {
    pub fn of(m: &MembershipRecord, region: RegionCode, user: &ConsoleUser) -> Self {
        MembershipLine {
            number: m.number.to_string(),
            region: region.to_string(),
            relation: m
                .relation
                .as_ref()
                .map_or_else(|| "未填".to_owned(), |r| r.as_str().to_owned()),
            joined: beijing_minute(m.joined_at_ms),
            joined_by: m.joined_by.clone(),
            source: source_zh(&m.joined_source),
            left: m.left_at_ms.map(beijing_minute).unwrap_or_default(),
            left_by: m.left_by.clone().unwrap_or_default(),
            current: m.is_current(),
            is_head: m.is_head(),
            name_masked: m
                .name
                .as_ref()
                .map_or_else(|| "（已转出）".to_owned(), |n| n.masked()),
            id_masked: m.id_number.masked(),
            link: user.person_ref(m.id_number.as_str()),
        }
    }
}

/// Where a membership came from, in words.
fn source_zh(source: &str) -> String {
    match source.strip_prefix("roster:") {
        Some(file) => format!("花名册 {file}"),
        None if source == "console" => "经办窗口".to_owned(),
        None => source.to_owned(),
    }
}

/// The household form's values and problems, kept when it comes back.
#[derive(Default)]
pub struct HouseholdForm {
    pub number: String,
    pub relation: String,
}

/// The two fields' names in the form, by the domain's field.
pub fn field_name(field: HouseholdField) -> &'static str {
    match field {
        HouseholdField::Number => "household_number",
        HouseholdField::Relation => "relation",
    }
}

#[derive(Deserialize)]
pub struct PlaceForm {
    #[serde(default)]
    household_number: String,
    #[serde(default)]
    relation: String,
    /// `leave`: out of the household.
    #[serde(default)]
    action: String,
}

/// `POST /console/persons/{region}/{id}/household`: puts the person in a household (户号,
/// 与户主关系) or takes them out of theirs; a refused field comes back beside itself.
pub async fn place(
    State(state): State<AppState>,
    Path((region, id)): Path<(String, String)>,
    CsrfForm(user, form): CsrfForm<PlaceForm>,
) -> Result<Response, PageError> {
    let (region, id) = parse_key(&state, &user, &region, &id)?;
    let number: String = form.household_number.chars().take(40).collect();
    let relation: String = form.relation.chars().take(40).collect();
    let leave = form.action == "leave";
    match yibao_server::services::persons::place_in_household(
        &state,
        &user.staff,
        region,
        &id,
        &number,
        &relation,
        leave,
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/console/persons/{region}/{}?done={}#household-h",
            user.person_ref(id.as_str()),
            if leave { "left_household" } else { "household" }
        ))),
        Err(Err(error)) => Err(error.into()),
        Err(Ok(problems)) => {
            let mut page = record_page(&state, &user, region, &id).await?;
            page.errors = problems_to_errors(&problems);
            page.household_form = HouseholdForm { number, relation };
            render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

fn problems_to_errors(problems: &[HouseholdProblem]) -> Vec<(String, String)> {
    problems
        .iter()
        .map(|p| (field_name(p.field).to_owned(), p.error.to_string()))
        .collect()
}

#[derive(Template)]
#[template(path = "persons/household.html")]
pub struct HouseholdPage {
    pub chrome: Chrome,
    pub region: String,
    pub regions: Vec<(String, String)>,
    pub may_choose_region: bool,
    pub number: String,
    pub number_error: Option<String>,
    pub searched: bool,
    pub current: Vec<MembershipLine>,
    pub former: Vec<MembershipLine>,
    /// The head now, masked, if the household has one.
    pub head: Option<String>,
}

#[derive(Deserialize)]
pub struct HouseholdQuery {
    region: Option<String>,
    number: Option<String>,
}

/// `GET /console/households?region=&number=`: find a household by its number (户号), and list
/// its members now and before.
pub async fn page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<HouseholdQuery>,
) -> Result<Response, PageError> {
    let (region, regions) =
        crate::pages::persons::region_for(&state, &user, query.region.as_deref()).await?;
    let account = user.account();
    let number_text: String = query
        .number
        .unwrap_or_default()
        .trim()
        .chars()
        .take(40)
        .collect();
    let mut page = HouseholdPage {
        chrome: Chrome::new(&user, "persons", "家庭户"),
        region: region.to_string(),
        regions,
        may_choose_region: account.region.is_none(),
        number: number_text.clone(),
        number_error: None,
        searched: !number_text.is_empty(),
        current: Vec::new(),
        former: Vec::new(),
        head: None,
    };
    if number_text.is_empty() {
        user.staff.may_read(region, account.station.as_ref())?;
        return html(&page);
    }
    let number = match HouseholdNumber::parse(&number_text) {
        Ok(n) => n,
        Err(e) => {
            page.number_error = Some(e.to_string());
            return render_with_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    page.number = number.to_string();
    page.chrome = Chrome::new(&user, "persons", &format!("家庭户 {number}"));
    let rows =
        yibao_server::services::persons::household(&state, &user.staff, region, &number).await?;
    for m in &rows {
        let line = MembershipLine::of(m, region, &user);
        if line.is_head {
            page.head = Some(line.name_masked.clone());
        }
        if line.current {
            page.current.push(line);
        } else {
            page.former.push(line);
        }
    }
    // The head first, then the latest to join (as read).
    page.current.sort_by_key(|l| !l.is_head);
    html(&page)
}

/// The relations offered in the form's list.
pub fn common_relations() -> Vec<&'static str> {
    Relation::COMMON.to_vec()
}
