//! 缴费查询: what a person owes and has paid, by ID number and name, without signing in.
//!
//! The answer is the channel protocol's search seen by a resident: each current payable in yuan
//! with its components, the fee year, the collection window, paid or not; a paid one with the day
//! and the kind of channel, an unpaid one with the kinds of channel that take it. An unknown ID
//! number and a name that does not match the record get the same page, word for word.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use chrono::NaiveDate;
use serde::Deserialize;
use yibao_domain::{IdNumber, PayableStatus, PersonName, RegionCode};
use yibao_server::services::accounts::CHANNEL_KINDS;
use yibao_server::services::collection;
use yibao_server::AppState;
use yibao_storage::collection::PayableView;

use crate::limiter::AddressLimiter;
use crate::{date_zh, error_page, render, yuan};

/// Longest ID number input read (18 characters plus spaces a phone keyboard may add).
pub const MAX_ID_INPUT_CHARS: usize = 32;
/// Longest name input read.
pub const MAX_NAME_INPUT_CHARS: usize = 64;

/// What the page says when nothing matches: the same for an unknown person and a wrong name.
pub const NOT_FOUND_MESSAGE: &str = "未查到与该身份证号码和姓名相符的缴费信息。请核对身份证号码和姓名\
     是否与户口簿或居住证上的一致；如尚未参保登记，请到户籍或居住地的乡镇（街道）劳动保障服务站办理。";

#[derive(Deserialize, Default)]
pub struct LookupForm {
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    name: String,
}

/// One payable as the page shows it.
pub struct PayableCard {
    pub fee_year: i32,
    pub region_name: String,
    /// 参保编号 in the card's region: shown on 我的 only, to the signed-in resident (the
    /// public look-up clears it).
    pub insured_number: Option<String>,
    pub amount: String,
    pub components: Vec<(&'static str, String)>,
    /// `paid`, `unpaid`, `locked`, `exempt`: the badge's class.
    pub status: &'static str,
    pub status_label: &'static str,
    /// 缴费期, when the region's fee policy for the year is known.
    pub window: Option<String>,
    /// Whether the window is open today, not yet, or over.
    pub window_state: Option<&'static str>,
    /// For a paid payable: the day and the kind of channel.
    pub paid_on: Option<String>,
    pub paid_through: Option<&'static str>,
    /// For an unpaid one: the kinds of channel serving its region.
    pub where_to_pay: Vec<&'static str>,
    /// Whether the site itself takes the payment (its channel serves the region and the window
    /// is open today): the card then has a 在线缴费 button for `payable_id` and `amount_fen`.
    pub pay_online: bool,
    /// What the region's channel rules keep from some channels (or the site), and where to go.
    pub not_here: Option<String>,
    pub payable_id: String,
    pub amount_fen: i64,
    /// For one that can still be paid: when cover would start if paid today (the 2025 rules), and
    /// whether that is a wait (shown as a warning) rather than the whole year.
    pub cover: Option<(String, bool)>,
    /// What buying back gap years would do (补缴修复), when any would shorten the wait.
    pub back_payment: Option<String>,
    /// The year's raise of the critical-illness cap (大病保险最高支付限额) and how it was reached,
    /// for a contribution paid or still to pay, when there is one.
    pub reward: Option<String>,
    /// A back-payment (补缴修复) of this gap year, not the year's contribution.
    pub bought_back_year: Option<u16>,
    /// The gap years still worth buying back that have no back-payment open yet, and what each
    /// costs: what 我的's 补缴修复 form offers.
    pub buy_back_years: Vec<u16>,
    pub buy_back_each: String,
    /// On 我的: whose card this is (`self`, or a family member's sealed reference), for the
    /// 补缴修复 form; `None` on the look-up page, which only says where to ask.
    pub buy_back_person: Option<String>,
    /// Why the form's last request was refused, beside it.
    pub buy_back_error: Option<String>,
}

/// The answer to a lookup that matched.
pub struct Found {
    pub name_masked: String,
    pub id_masked: String,
    pub payables: Vec<PayableCard>,
}

#[derive(askama::Template, Default)]
#[template(path = "lookup.html")]
pub struct LookupPage {
    id_number: String,
    name: String,
    id_error: Option<String>,
    name_error: Option<String>,
    not_found: bool,
    found: Option<Found>,
}

/// `GET /`: the form.
pub async fn form() -> Response {
    render(&LookupPage::default(), StatusCode::OK)
}

/// `POST /lookup`: the form again with errors beside its fields, or the answer below it.
pub async fn submit(
    State(state): State<AppState>,
    Extension(limiter): Extension<AddressLimiter>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LookupForm>,
) -> Response {
    let mut page = LookupPage {
        id_number: form
            .id_number
            .trim()
            .chars()
            .take(MAX_ID_INPUT_CHARS)
            .collect(),
        name: form
            .name
            .trim()
            .chars()
            .take(MAX_NAME_INPUT_CHARS)
            .collect(),
        ..LookupPage::default()
    };
    let id = if page.id_number.is_empty() {
        page.id_error = Some("请输入身份证号码".into());
        None
    } else {
        match IdNumber::parse(&page.id_number, state.clock.today()) {
            Ok(parsed) => Some(parsed.id_number),
            Err(err) => {
                page.id_error = Some(yibao_server::ServiceError::from(err).message);
                None
            }
        }
    };
    if page.name.is_empty() {
        page.name_error = Some("请输入姓名".into());
    } else if let Err(err) = PersonName::parse(&page.name) {
        page.name_error = Some(yibao_server::ServiceError::from(err).message);
    }
    let Some(id) = id.filter(|_| page.name_error.is_none()) else {
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let address = crate::client_address(&state, peer, &headers);
    if let Some(refusal) = crate::refusal_over_limit(&state, &limiter, &address) {
        return refusal;
    }
    match find(&state, &id, &page.name).await {
        Ok(Some(mut found)) => {
            // The answer shows them masked; the form does not repeat them in full.
            page.id_number.clear();
            page.name.clear();
            for card in &mut found.payables {
                card.insured_number = None;
            }
            page.found = Some(found);
        }
        Ok(None) => page.not_found = true,
        Err(err) => return error_page(&err),
    }
    render(&page, StatusCode::OK)
}

/// The person's current payables under `name`, with how the paid ones were paid and where the
/// unpaid ones can be: `None` when the ID number is unknown or the name does not match.
pub(crate) async fn find(
    state: &AppState,
    id: &IdNumber,
    name: &str,
) -> Result<Option<Found>, yibao_server::ServiceError> {
    let views = collection::payables_under_name(state, id, name, None).await?;
    let Some(first) = views.first() else {
        return Ok(None);
    };
    let name_masked = yibao_server::receipts::masked_name(&first.name);
    let policies = collection::policies_for(state, &views).await?;
    let mut paid = BTreeMap::new();
    let paid_regions: BTreeSet<&str> = views
        .iter()
        .filter(|v| {
            matches!(
                v.payable.status,
                PayableStatus::Paid | PayableStatus::Posted
            )
        })
        .map(|v| v.payable.region.as_str())
        .collect();
    for region in paid_regions {
        for p in state
            .storage
            .paid_by(RegionCode::parse(region)?, id)
            .await?
        {
            paid.insert(p.payable_id.clone(), p);
        }
    }
    let unpaid_regions: BTreeSet<&str> = views
        .iter()
        .filter(|v| v.payable.status.is_payable())
        .map(|v| v.payable.region.as_str())
        .collect();
    let mut channel_kinds: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut site_regions: BTreeSet<String> = BTreeSet::new();
    if !unpaid_regions.is_empty() {
        let channels = state.storage.list_channels().await?;
        for channel in channels.iter().filter(|c| crate::pay::is_site_channel(c)) {
            site_regions.extend(channel.regions.iter().cloned());
        }
        for region in &unpaid_regions {
            channel_kinds.insert(
                region,
                yibao_server::services::accounts::kinds_to_pay_at(&channels, region)
                    .into_iter()
                    .collect(),
            );
        }
    }
    let today = state.clock.today();
    let now = state.clock.now().timestamp();
    // The 2025 rules: when cover would start, for what can still be paid, and the year's reward
    // for every contribution (one read of what is stored per region either way).
    let covers = yibao_server::services::cover::covers_for(
        state.storage.as_ref(),
        &views,
        &policies,
        today,
        yibao_server::services::cover::BackPaymentsWith::Offered,
        |v| v.payable.buys_back_year.is_none(),
    )
    .await?;
    let mut payables: Vec<PayableCard> = views
        .iter()
        .map(|v| {
            let policy = policies.get(&(v.payable.region, v.payable.fee_year));
            let paid = paid.get(&v.payable.payable_id);
            // The region's channel rules (issue 17): the kinds that may not collect this one are
            // not offered, and the card says where to go instead.
            let refused = |kind: &str| {
                collection::channel_refusal(policy, kind, &v.payable, today)
            };
            let mut not_here: Vec<usize> = Vec::new();
            let mut first_refusal = None;
            let kinds: Option<BTreeSet<usize>> =
                channel_kinds.get(v.payable.region.as_str()).map(|kinds| {
                    kinds
                        .iter()
                        .copied()
                        .filter(|i| match refused(CHANNEL_KINDS[*i].0) {
                            Some(refusal) => {
                                not_here.push(*i);
                                first_refusal.get_or_insert(refusal);
                                false
                            }
                            None => true,
                        })
                        .collect()
                });
            let mut card = card(v, now, today, policy, paid, kinds.as_ref());
            let site_refusal = refused(crate::pay::SITE_CHANNEL_KIND);
            card.pay_online = card.status == "unpaid"
                && site_regions.iter().any(|r| r == v.payable.region.as_str())
                && policy.is_some_and(|p| p.takes_payment_on(today))
                && site_refusal.is_none();
            if card.status == "unpaid" {
                card.not_here = first_refusal.or(site_refusal).map(|refusal| {
                    let names: Vec<&str> = not_here.iter().map(|i| CHANNEL_KINDS[*i].1).collect();
                    if names.is_empty() {
                        refusal.to_string()
                    } else {
                        format!(
                            "{}不能通过{}办理，{}",
                            refusal.class.name_zh(),
                            names.join("、"),
                            refusal.where_to_pay
                        )
                    }
                });
            }
            card.reward = covers.get(&v.payable.payable_id).and_then(|cover| {
                let reward = &cover.reward;
                if reward.total == yibao_domain::Fen::ZERO {
                    return None;
                }
                match card.status {
                    "paid" | "exempt" => Some(format!("{}年度{}", card.fee_year, reward.summary_zh())),
                    _ if cover.start.is_ok() => Some(format!(
                        "缴费后，{}年度{}",
                        card.fee_year,
                        reward.summary_zh()
                    )),
                    _ => None,
                }
            });
            if let Some(cover) = covers
                .get(&v.payable.payable_id)
                .filter(|_| matches!(card.status, "unpaid" | "locked"))
            {
                card.cover = Some(match &cover.start {
                    Ok(start) => (
                        format!("今天缴费，{}", start.summary_zh()),
                        start.wait.total > 0 || !start.covered_this_year,
                    ),
                    Err(refusal) => (refusal.to_string(), true),
                });
                let offer = &cover.offer;
                // Years whose back-payment is already open are to be paid, not asked for again.
                let open: Vec<u16> = views
                    .iter()
                    .filter(|b| {
                        b.payable.region == v.payable.region
                            && b.payable.fee_year == v.payable.fee_year
                            && b.payable.status.is_payable()
                    })
                    .filter_map(|b| b.payable.buys_back())
                    .collect();
                card.buy_back_years = offer
                    .effective_years
                    .iter()
                    .copied()
                    .filter(|y| !open.contains(y))
                    .collect();
                if let (Some(policy), Some(category)) = (
                    policy,
                    yibao_domain::Category::from_code(&v.payable.category),
                ) {
                    card.buy_back_each = yuan(
                        yibao_domain::back_payment_assessment(policy, category)
                            .amount
                            .as_fen(),
                    );
                }
                if !offer.effective_years.is_empty() {
                    let years: Vec<String> =
                        offer.effective_years.iter().map(u16::to_string).collect();
                    let mut text = format!(
                        "断保{}年。补缴{}年度（按当年个人缴费标准、不享受政府补助）可将等待期由{}个月缩短为{}个月；补缴的年度本身不享受医保待遇。",
                        offer.gap_years.len(),
                        years.join("、"),
                        offer.wait_now.total,
                        offer.wait_after.total
                    );
                    let generated: Vec<String> = offer
                        .effective_years
                        .iter()
                        .filter(|y| open.contains(y))
                        .map(u16::to_string)
                        .collect();
                    if !generated.is_empty() {
                        text.push_str(&format!(
                            "其中{}年度的补缴费用已生成，待缴纳。",
                            generated.join("、")
                        ));
                    }
                    card.back_payment = Some(text);
                }
            }
            card
        })
        .collect();
    payables.sort_by(|a, b| {
        b.fee_year
            .cmp(&a.fee_year)
            .then(a.region_name.cmp(&b.region_name))
    });
    Ok(Some(Found {
        name_masked,
        id_masked: id.masked(),
        payables,
    }))
}

fn card(
    v: &PayableView,
    now: i64,
    today: NaiveDate,
    policy: Option<&yibao_domain::FeePolicy>,
    paid: Option<&yibao_storage::citizen_reads::PaidBy>,
    kinds: Option<&BTreeSet<usize>>,
) -> PayableCard {
    let status = match v.payable.channel_status(now) {
        "paid" => "paid",
        "locked" => "locked",
        "exempt" => "exempt",
        _ => "unpaid",
    };
    let status_label = match status {
        "paid" => "已缴费",
        "locked" => "缴费处理中",
        "exempt" => "免缴",
        _ => "未缴费",
    };
    let mut components = vec![("基本医疗保险", yuan(v.payable.basic_fen.as_fen()))];
    if v.payable.critical_illness_fen.as_fen() > 0 {
        components.push(("大病保险", yuan(v.payable.critical_illness_fen.as_fen())));
    }
    if v.payable.long_term_care_fen.as_fen() > 0 {
        components.push(("长期照护保险", yuan(v.payable.long_term_care_fen.as_fen())));
    }
    PayableCard {
        fee_year: i32::from(v.payable.fee_year.get()),
        region_name: v.region_name.clone(),
        insured_number: v.insured_number.clone(),
        amount: yuan(v.payable.amount_fen.as_fen()),
        components,
        status,
        status_label,
        window: policy.map(|p| {
            let w = p.window();
            let mut text = format!("{} 至 {}", date_zh(w.opens()), date_zh(w.closes()));
            if let Some(until) = p.cover_rules().waiting.extension_until {
                text.push_str(&format!("，延长至 {}", date_zh(until)));
            }
            text
        }),
        window_state: policy.map(|p| {
            let w = p.window();
            if today < w.opens() {
                "尚未开始"
            } else if today <= w.closes() {
                "正在缴费"
            } else if today <= p.in_time_until() {
                "延长期内"
            } else if p.takes_payment_on(today) {
                "已结束，可逾期缴费"
            } else {
                "已结束"
            }
        }),
        paid_on: paid.map(|p| date_zh(p.paid_on)),
        paid_through: paid.map(|p| yibao_server::export::channel_kind_zh(&p.channel_kind)),
        where_to_pay: if status == "unpaid" {
            kinds
                .map(|k| k.iter().map(|i| CHANNEL_KINDS[*i].1).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        },
        pay_online: false,
        not_here: None,
        payable_id: v.payable.payable_id.clone(),
        amount_fen: v.payable.amount_fen.as_fen(),
        cover: None,
        reward: None,
        back_payment: v
            .payable
            .buys_back()
            .map(|year| yibao_domain::back_payment_text_zh(year, v.payable.fee_year.get())),
        bought_back_year: v.payable.buys_back(),
        buy_back_years: Vec::new(),
        buy_back_each: String::new(),
        buy_back_person: None,
        buy_back_error: None,
    }
}
