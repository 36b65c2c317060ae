//! The demo data set: pooling regions, their fee policies and holiday calendars.
//!
//! 南通市 fee year 2021 is the seed document as written. The fee year 2027 policies of 海口市, 三亚市,
//! 锦州市, 滁州市 and 南通市 are plausible figures for a demo (the national minimum individual
//! contribution was 400 元 in 2024), with a window open today so the demo shows live collection.
//! The holiday calendars are the State Council's notices shipped in `data/calendars/` (2020–2026);
//! an operator loads each new year's notice when it is published (`yibao calendar load`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use yibao_domain::cover_rules::{
    GapYearCount, InWindowAnchor, NewbornStart, NewbornTier, StartRule,
};
use yibao_domain::{
    CalendarYear, Category, CategoryAmount, CollectionWindow, Component, CoverRules, FeePolicy,
    FeePolicyInput, FeeYear, Fen, PoolingRegion, RegionCode,
};
use yibao_storage::Storage;

/// One line of the demo's fee table, amounts in whole yuan.
struct PolicyLine {
    region: &'static str,
    fee_year: i64,
    adult: (i64, i64, i64),
    minor: (i64, i64, i64),
    window: (&'static str, &'static str),
    age_reference: &'static str,
    late_payment_allowed: bool,
}

pub const REGIONS: [(&str, &str); 5] = [
    ("320600", "南通市"),
    ("460100", "海口市"),
    ("460200", "三亚市"),
    ("210700", "锦州市"),
    ("341100", "滁州市"),
];

/// (total, of which 大病保险, of which 照护保险), in yuan. Students and newborns pay the minors' amount.
const POLICIES: [PolicyLine; 6] = [
    // The seed document: 南通市 2021, adults 430 incl. 20 大病 and 30 照护; minors 300 incl. 20 大病.
    PolicyLine {
        region: "320600",
        fee_year: 2021,
        adult: (430, 20, 30),
        minor: (300, 20, 0),
        window: ("2020-11-01", "2020-12-20"),
        age_reference: "2021-01-01",
        late_payment_allowed: false,
    },
    PolicyLine {
        region: "320600",
        fee_year: 2027,
        adult: (460, 30, 30),
        minor: (420, 30, 0),
        window: ("2026-09-01", "2026-12-31"),
        age_reference: "2027-01-01",
        late_payment_allowed: false,
    },
    PolicyLine {
        region: "460100",
        fee_year: 2027,
        adult: (420, 25, 0),
        minor: (420, 25, 0),
        window: ("2026-09-01", "2026-12-31"),
        age_reference: "2027-01-01",
        late_payment_allowed: true,
    },
    PolicyLine {
        region: "460200",
        fee_year: 2027,
        adult: (420, 25, 0),
        minor: (420, 25, 0),
        window: ("2026-09-01", "2026-12-31"),
        age_reference: "2027-01-01",
        late_payment_allowed: true,
    },
    PolicyLine {
        region: "210700",
        fee_year: 2027,
        adult: (410, 30, 0),
        minor: (410, 30, 0),
        window: ("2026-10-01", "2027-02-28"),
        age_reference: "2027-01-01",
        late_payment_allowed: false,
    },
    PolicyLine {
        region: "341100",
        fee_year: 2027,
        adult: (415, 35, 0),
        minor: (415, 35, 0),
        window: ("2026-09-15", "2026-12-31"),
        age_reference: "2027-01-01",
        late_payment_allowed: false,
    },
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("演示数据有误：{0}")]
    Data(String),
    #[error(transparent)]
    Storage(#[from] yibao_storage::StorageError),
}

fn data_error(e: impl std::fmt::Display) -> DemoError {
    DemoError::Data(e.to_string())
}

fn date(text: &str) -> Result<NaiveDate, DemoError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| data_error(format!("{text}: {e}")))
}

fn amount((total, critical, care): (i64, i64, i64)) -> Result<CategoryAmount, DemoError> {
    let mut parts = vec![(
        Component::CriticalIllness,
        Fen::yuan(critical).map_err(data_error)?,
    )];
    if care > 0 {
        parts.push((
            Component::LongTermCare,
            Fen::yuan(care).map_err(data_error)?,
        ));
    }
    CategoryAmount::including(Fen::yuan(total).map_err(data_error)?, &parts).map_err(data_error)
}

pub fn fee_policies() -> Result<Vec<FeePolicy>, DemoError> {
    POLICIES
        .iter()
        .map(|line| {
            let adult = amount(line.adult)?;
            let minor = amount(line.minor)?;
            let amounts = BTreeMap::from([
                (Category::Adult, adult),
                (Category::MinorNotInSchool, minor.clone()),
                (Category::Student, minor.clone()),
                (Category::Newborn, minor),
            ]);
            FeePolicy::new(FeePolicyInput {
                region: RegionCode::parse(line.region).map_err(data_error)?,
                fee_year: FeeYear::new(line.fee_year).map_err(data_error)?,
                amounts,
                age_reference_date: date(line.age_reference)?,
                adult_age: 18,
                window: CollectionWindow::new(date(line.window.0)?, date(line.window.1)?)
                    .map_err(data_error)?,
                late_payment_allowed: line.late_payment_allowed,
                cover_rules: demo_cover_rules(line.region, line.fee_year)?,
            })
            .map_err(data_error)
        })
        .collect()
}

/// The 2025 rules of the demo's 2027 policies: 海口 and 锦州 set differently so the differences
/// can be seen side by side (docs/rules-2025.md), 三亚 with a late amount; the other regions keep
/// the national defaults.
fn demo_cover_rules(region: &str, fee_year: i64) -> Result<CoverRules, DemoError> {
    let mut rules = CoverRules::default();
    match (region, fee_year) {
        // Counting every gap year (N), in-window waits from 1 January, a window to 31 December
        // with an extension to the end of February whose payers are covered from the payment date.
        ("460100", 2027) => {
            rules.waiting.gap_year_count = GapYearCount::N;
            rules.waiting.in_window_anchor = InWindowAnchor::BenefitYearStart;
            rules.waiting.extension_until = Some(date("2027-02-28")?);
            rules.waiting.start_rule = StartRule::PaymentDate;
            rules.rewards.original_cap_fen = Some(30_000_000);
        }
        // N−1, a window to 28 February, newborns from birth within 90 days and from the next day
        // within 180, waits from the first day of the month after them; raises kept after a break.
        ("210700", 2027) => {
            rules.waiting.gap_year_count = GapYearCount::NMinus1;
            rules.waiting.in_window_anchor = InWindowAnchor::Payment;
            rules.waiting.start_rule = StartRule::FirstOfMonthAfterWait;
            rules.newborn_tiers = vec![
                NewbornTier {
                    within_days: 90,
                    cover_from: NewbornStart::Birth,
                },
                NewbornTier {
                    within_days: 180,
                    cover_from: NewbornStart::NextDay,
                },
            ];
            rules.rewards.continuous_raise_fen = 200_000;
            rules.rewards.keep_earned_after_break = true;
            // Still on the 2021 family-account scope: spouse, parents, children.
            rules.family_account.relationships =
                yibao_domain::family_account::Relationship::SCOPE_2021.to_vec();
            rules.rewards.original_cap_fen = Some(20_000_000);
        }
        // 三亚 takes late payers (after 31 December) at the full cost without the government's
        // subsidy, 1 090 元 for adults and minors not in school (420 个人 + 670 财政); students and
        // newborns keep their standard amount.
        // And, as Hainan's electronic channels do (issue 17), lets only the bank counter collect
        // subsidised people's contributions: the demo has none in 三亚, so they go to the station.
        ("460200", 2027) => {
            rules.late.amounts_fen = [
                (yibao_domain::Category::Adult, 109_000),
                (yibao_domain::Category::MinorNotInSchool, 109_000),
            ]
            .into_iter()
            .collect();
            rules.channels.subsidised = Some(vec!["bank_counter".to_owned()]);
        }
        _ => {}
    }
    Ok(rules)
}

/// The holiday calendars the demo loads: the State Council's notices shipped in `data/calendars/`.
pub fn calendar_years() -> Result<Vec<CalendarYear>, DemoError> {
    Ok(crate::setup_cli::shipped_notices()
        .map_err(data_error)?
        .into_iter()
        .map(|n| n.calendar)
        .collect())
}

/// What [`load`] wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub regions: usize,
    pub fee_policies: usize,
    pub calendar_years: usize,
}

/// Residents per region in the demo roster.
pub const DEMO_RESIDENTS_PER_REGION: usize = 800;
/// Address codes (county level) used for the demo residents' ID numbers, per pooling region.
const DEMO_COUNTIES: [(&str, &str); 5] = [
    ("320600", "320602"),
    ("460100", "460105"),
    ("460200", "460202"),
    ("210700", "210703"),
    ("341100", "341102"),
];
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬燕彬鹏辉建国建华志强海燕雪梅晓东春梅丹丹";

/// A small deterministic generator, so the demo is the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

fn check_character(first17: &str) -> char {
    // Callers pass 17 digits they built; '0' never shows up for a real check character there.
    yibao_domain::id_number::check_character(first17).unwrap_or('0')
}

/// The demo roster as CSV text: every region's residents, with students, residence permits,
/// exemptions (valid and expired), subsidies, newborns, and a few who are refused (employee
/// insurance, a residence permit too recent).
pub fn demo_roster_csv(today: NaiveDate) -> String {
    let surnames: Vec<char> = SURNAMES.chars().collect();
    let given: Vec<char> = GIVEN.chars().collect();
    let mut rng = Lcg(20_201_101);
    let mut out = String::from(
        "姓名,身份证号码,参保地区,人员类别,户籍类型,居住证起始日期,学校名称,联系电话,服务站,职工医保,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额,户号,与户主关系\n",
    );
    for (region, county) in DEMO_COUNTIES {
        for i in 0..DEMO_RESIDENTS_PER_REGION {
            let kind = i % 40;
            let age_days = match kind {
                0 => 30 + rng.next(300),               // newborn-ish
                1..=6 => 6 * 365 + rng.next(12 * 365), // school age
                _ => 19 * 365 + rng.next(60 * 365),
            };
            let birth = today - chrono::Duration::days(i64::try_from(age_days).unwrap_or(0));
            let body = format!("{county}{}{:03}", birth.format("%Y%m%d"), i % 1000);
            let id = format!("{body}{}", check_character(&body));
            let mut name: String =
                surnames[usize::try_from(rng.next(surnames.len() as u64)).unwrap_or(0)].to_string();
            for _ in 0..(1 + rng.next(2)) {
                name.push(given[usize::try_from(rng.next(given.len() as u64)).unwrap_or(0)]);
            }
            let station = format!("ST-{:02}", 1 + i % 3);
            let phone = format!("13{:09}", rng.next(1_000_000_000));
            let (person_kind, school) = if (1..=6).contains(&kind) {
                ("在校学生", "第一实验小学")
            } else {
                ("居民", "")
            };
            let (household, permit) = match kind {
                7 => ("居住证", (today - chrono::Duration::days(400)).to_string()),
                8 => ("居住证", (today - chrono::Duration::days(30)).to_string()),
                _ => ("本地户籍", String::new()),
            };
            let employee = if kind == 9 { "是" } else { "" };
            let relief: [String; 5] = match kind {
                10 => [
                    "低保".into(),
                    "最低生活保障证".into(),
                    format!("DB{i:05}"),
                    "2027-12-31".into(),
                    String::new(),
                ],
                11 => [
                    "特困".into(),
                    "特困人员救助供养证".into(),
                    format!("TK{i:05}"),
                    "2026-06-30".into(),
                    String::new(),
                ],
                12 => [
                    "资助".into(),
                    "资助参保证明".into(),
                    format!("ZZ{i:05}"),
                    "2027-12-31".into(),
                    "120.00".into(),
                ],
                13 => [
                    "重残".into(),
                    "残疾人证".into(),
                    format!("CJ{i:05}"),
                    "2030-12-31".into(),
                    String::new(),
                ],
                _ => Default::default(),
            };
            // Households of four neighbours in the roster (户号: the county and a serial).
            let household_number = format!("{county}{:06}", i / 4);
            let relation = ["户主", "配偶", "子", "父母"][i % 4];
            out.push_str(&format!(
                "{name},{id},{region},{person_kind},{household},{permit},{school},{phone},{station},{employee},{},{household_number},{relation}\n",
                relief.join(",")
            ));
        }
    }
    out
}

/// Loads regions, fee policies and calendars. Idempotent: loading twice leaves the same data.
pub async fn load(storage: &dyn Storage) -> Result<DemoSummary, DemoError> {
    let notices = crate::setup_cli::shipped_notices().map_err(data_error)?;
    let mut summary = DemoSummary::default();
    for (code, name) in REGIONS {
        let region = PoolingRegion::new(RegionCode::parse(code).map_err(data_error)?, name)
            .map_err(data_error)?;
        storage.upsert_region(&region).await?;
        summary.regions += 1;
        for notice in &notices {
            storage
                .put_national_calendar_year(region.code(), notice)
                .await?;
        }
    }
    summary.calendar_years = notices.len();
    for policy in fee_policies()? {
        storage.put_fee_policy(&policy).await?;
        summary.fee_policies += 1;
    }
    Ok(summary)
}

/// username, password, role, region, station.
pub type DemoStaff = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// The demo's cover history file (docs/rules-2025.md): for residents 14 to 21 of 南通, 海口 and
/// 锦州, four kinds of history in turn, so that the console and the citizen site show the 2025
/// rules at work and 海口 and 锦州 side by side: continuously insured since 2019 (a reward), lapsed
/// in 2025 and 2026 (a wait, years to buy back), lapsed since 2021 (a long break), and in employee
/// insurance from 2023 (continuous).
pub fn demo_cover_history_csv(today: NaiveDate) -> Vec<(RegionCode, String)> {
    let residents = demo_residents(today);
    let mut files = Vec::new();
    for (index, (region, _)) in DEMO_COUNTIES.iter().enumerate() {
        if !["320600", "460100", "210700"].contains(region) {
            continue;
        }
        let Ok(code) = RegionCode::parse(region) else {
            continue;
        };
        let mut csv = String::from("身份证号码,待遇年度,参保情况\n");
        // Plain adults: the residents before 14 are newborns, pupils, permit holders, employees
        // and the relieved.
        for i in 14..22 {
            let Some((id, _)) = residents.get(index * DEMO_RESIDENTS_PER_REGION + i) else {
                continue;
            };
            let years: Vec<(u16, &str)> = match i % 4 {
                0 => (2019..=2026).map(|y| (y, "居民医保")).collect(),
                1 => (2020..=2026)
                    .map(|y| {
                        (
                            y,
                            if y < 2025 {
                                "居民医保"
                            } else {
                                "未参保"
                            },
                        )
                    })
                    .collect(),
                2 => (2018..=2026)
                    .map(|y| {
                        (
                            y,
                            if y < 2021 {
                                "居民医保"
                            } else {
                                "未参保"
                            },
                        )
                    })
                    .collect(),
                _ => (2023..=2026).map(|y| (y, "职工医保")).collect(),
            };
            for (year, cover) in years {
                csv.push_str(&format!("{id},{year},{cover}\n"));
            }
        }
        files.push((code, csv));
    }
    files
}

/// Every resident of the demo roster as (ID number, name).
pub fn demo_residents(today: NaiveDate) -> Vec<(String, String)> {
    demo_roster_csv(today)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split(',');
            let name = cells.next()?.to_owned();
            let id = cells.next()?.to_owned();
            Some((id, name))
        })
        .collect()
}

/// A 海口 resident of the demo whose cover history lapsed in 2025 and 2026 (name, ID number), to see
/// the 2025 rules with: a waiting period, years to buy back.
pub fn lapsed_resident() -> (String, String) {
    let (id, name) = demo_residents(yibao_server::Clock::system().today())
        .into_iter()
        .nth(DEMO_RESIDENTS_PER_REGION + 17)
        .unwrap_or_default();
    (name, id)
}

/// A 海口 resident of the demo insured since 2019 without reimbursement in 2025 and 2026 (name, ID
/// number), to see the critical-illness reward with: continuous and zero-claim raises.
pub fn rewarded_resident() -> (String, String) {
    let (id, name) = demo_residents(yibao_server::Clock::system().today())
        .into_iter()
        .nth(DEMO_RESIDENTS_PER_REGION + 16)
        .unwrap_or_default();
    (name, id)
}

/// A 三亚 resident of the demo with a subsidy (资助) (name, ID number), whom 三亚's channel rules
/// send to the service station.
pub fn subsidised_resident() -> (String, String) {
    let (id, name) = demo_residents(yibao_server::Clock::system().today())
        .into_iter()
        .nth(2 * DEMO_RESIDENTS_PER_REGION + 12)
        .unwrap_or_default();
    (name, id)
}

/// The demo's family account (个人账户家庭共济): an employee insured in 海口 whose personal
/// account may pay for two 海口 residents (a parent or a child each), through the demo's
/// `medical_account` channel.
pub fn family_account_employee() -> String {
    let first17 = "46010619780512031";
    let check = yibao_domain::id_number::check_character(first17).unwrap_or('0');
    format!("{first17}{check}")
}

/// The 海口 residents bound to [`family_account_employee`] (born 1978) as (name, ID number,
/// relationship): residents 22 and 23, each a parent or a child by their age and sex.
pub fn family_account_relatives(today: NaiveDate) -> Vec<(String, String, &'static str)> {
    use chrono::Datelike;
    let residents = demo_residents(today);
    [22, 23]
        .into_iter()
        .filter_map(|i| {
            let (id, name) = residents.get(DEMO_RESIDENTS_PER_REGION + i)?.clone();
            let parsed = yibao_domain::IdNumber::parse(&id, today).ok()?.id_number;
            let male = parsed.sex() == yibao_domain::Sex::Male;
            let relationship = match (parsed.birth_date().year() < 1978, male) {
                (true, true) => "父亲",
                (true, false) => "母亲",
                (false, true) => "儿子",
                (false, false) => "女儿",
            };
            Some((name, id, relationship))
        })
        .collect()
}

/// The demo's claims file (报销情况, docs/rules-2025.md) for 海口: its continuously insured plain
/// adults (residents 16 and 20) had no reimbursement in 2025 and 2026, so their 2027 cap carries
/// the zero-claim raise beside the continuous one.
pub fn demo_claims_csv(today: NaiveDate) -> String {
    let residents = demo_residents(today);
    let mut csv = String::from("身份证号码,待遇年度,基金报销,使用大病激励\n");
    for i in [16, 20] {
        if let Some((id, _)) = residents.get(DEMO_RESIDENTS_PER_REGION + i) {
            csv.push_str(&format!("{id},2024,是,\n{id},2025,否,\n{id},2026,否,\n"));
        }
    }
    csv
}

/// The demo's binding file (docs/rules-2025.md) for 海口.
pub fn demo_family_bindings_csv(today: NaiveDate) -> String {
    let employee = family_account_employee();
    let mut csv =
        String::from("职工公民身份号码,职工参保地,亲属公民身份号码,关系,生效日期,终止日期\n");
    for (_, id, relationship) in family_account_relatives(today) {
        csv.push_str(&format!(
            "{employee},460100,{id},{relationship},2025-01-01,\n"
        ));
    }
    csv
}

/// The demo's family-account channel: the medical-insurance account system of 海口.
pub const DEMO_ACCOUNT_CHANNEL: (&str, &str, &str, &[&str]) = (
    "hainan-medical-account",
    "medical_account",
    "demo-secret-medical-account",
    &["460100"],
);

/// The demo's health card channel (居民健康卡) of 海口: agent points and self-service machines.
pub const DEMO_HEALTH_CARD_CHANNEL: (&str, &str, &str, &[&str]) = (
    "hainan-health-card",
    "health_card",
    "demo-secret-health-card-0000",
    &["460100"],
);

/// The demo's auto-debit bank (委托扣款) of 南通: the console's 银行扣费 signs agreements with it
/// and writes its debit runs' files.
pub const DEMO_DEBIT_CHANNEL: (&str, &str, &str, &[&str]) = (
    "icbc-nantong-debit",
    "auto_debit",
    "demo-secret-icbc-nantong-debit",
    &["320600"],
);

/// The demo's village agents' channel (村级代办) of 锦州, and its agent serving the villages of
/// station ST-01 (code, name, villages).
pub const DEMO_AGENT_CHANNEL: (&str, &str, &str, &[&str]) = (
    "jinzhou-village-agents",
    "village_agent",
    "demo-secret-village-agents-00",
    &["210700"],
);
pub const DEMO_AGENT: (&str, &str, &str) = ("A-001", "王代办", "ST-01");

/// The demo's test channel (接入测试): a bank trying the protocol on the sandbox's test residents.
pub const DEMO_TEST_CHANNEL: (&str, &str, &str) = (
    "sandbox-bank",
    "mobile_banking",
    "demo-secret-sandbox-bank-0000",
);

/// A 海口 household of the demo (residents 24 to 27, 户号 460105000006) as (name, ID number,
/// relation), the head first: a health card of any of them pays for the four at an agent point.
pub fn health_card_household(today: NaiveDate) -> Vec<(String, String, &'static str)> {
    let residents = demo_residents(today);
    (24..28)
        .filter_map(|i| {
            let (id, name) = residents.get(DEMO_RESIDENTS_PER_REGION + i)?.clone();
            Some((name, id, ["户主", "配偶", "子", "父母"][i % 4]))
        })
        .collect()
}

/// The first resident of the demo roster (name, ID number), to try searches with.
pub fn sample_resident() -> (String, String) {
    let (id, name) = demo_residents(yibao_server::Clock::system().today())
        .into_iter()
        .next()
        .unwrap_or_default();
    (name, id)
}

/// The demo's staff accounts and their passwords, printed by `yibao demo` (demo only!).
pub const DEMO_STAFF: [DemoStaff; 4] = [
    ("admin", "yibao-demo-admin", "admin", None, None),
    (
        "nt-tax",
        "yibao-demo-tax",
        "tax_collector",
        Some("320600"),
        None,
    ),
    (
        "nt-st01",
        "yibao-demo-station",
        "station_operator",
        Some("320600"),
        Some("ST-01"),
    ),
    ("auditor", "yibao-demo-auditor", "auditor", None, None),
];

/// The demo's channels: id, kind, secret (printed by `yibao demo`; demo only!), regions.
pub const DEMO_CHANNELS: [(&str, &str, &str, &[&str]); 3] = [
    (
        "icbc-nantong",
        "bank_counter",
        "demo-secret-icbc-nantong",
        &["320600"],
    ),
    (
        "wechat",
        "wechat",
        "demo-secret-wechat-pay-000",
        &["320600", "460100", "460200", "210700", "341100"],
    ),
    (
        "alipay",
        "alipay",
        "demo-secret-alipay-00000000",
        &["320600", "460100", "460200", "210700", "341100"],
    ),
];

/// The fee year being collected around `today` in the demo: from September on, next year's.
pub fn collecting_fee_year(today: NaiveDate) -> i64 {
    use chrono::Datelike;
    if today.month() >= 9 {
        i64::from(today.year()) + 1
    } else {
        i64::from(today.year())
    }
}

/// A policy's 2025 rules for a fee year `years` later (or earlier) whose window closes on
/// `closes`: its dates (extension, last date) moved as many years, and dropped where they no longer
/// fall between the new window's end and the new fee year's end.
fn rules_moved_on(
    rules: &CoverRules,
    years: i64,
    closes: NaiveDate,
    fee_year: FeeYear,
) -> CoverRules {
    let mut rules = rules.clone();
    let months = chrono::Months::new(u32::try_from(years.unsigned_abs() * 12).unwrap_or(0));
    let year_end = yibao_domain::cover_rules::year_end(fee_year);
    let on = |d: Option<NaiveDate>| {
        d.and_then(|d| {
            if years >= 0 {
                d.checked_add_months(months)
            } else {
                d.checked_sub_months(months)
            }
        })
        .filter(|d| *d > closes && *d <= year_end)
    };
    rules.waiting.extension_until = on(rules.waiting.extension_until);
    rules.waiting.last_date = on(rules.waiting.last_date);
    rules
}

/// Makes sure every demo region has a fee policy whose window is open on `today`, so the demo
/// (and the benchmarks built on it) keep working after the fixed demo windows have closed. A region
/// with an open window is left alone; otherwise the collecting fee year gets a copy of the region's
/// latest policy with the window from 1 September before the fee year to its 31 December.
pub async fn ensure_open_policies(
    storage: &dyn Storage,
    today: NaiveDate,
) -> Result<(), DemoError> {
    for (code, _) in REGIONS {
        let region = RegionCode::parse(code).map_err(data_error)?;
        let policies = storage.list_fee_policies(region).await?;
        if policies.iter().any(|p| p.window().contains(today)) {
            continue;
        }
        let Some(latest) = policies.iter().max_by_key(|p| p.fee_year()) else {
            continue;
        };
        let fee_year = collecting_fee_year(today);
        let year = i32::try_from(fee_year).map_err(data_error)?;
        let opens = NaiveDate::from_ymd_opt(year - 1, 9, 1).ok_or_else(|| data_error("date"))?;
        let closes = NaiveDate::from_ymd_opt(year, 12, 31).ok_or_else(|| data_error("date"))?;
        let policy = FeePolicy::new(FeePolicyInput {
            region,
            fee_year: FeeYear::new(fee_year).map_err(data_error)?,
            amounts: latest.amounts().map(|(c, a)| (c, a.clone())).collect(),
            age_reference_date: NaiveDate::from_ymd_opt(year, 1, 1)
                .ok_or_else(|| data_error("date"))?,
            adult_age: latest.adult_age(),
            window: CollectionWindow::new(opens, closes).map_err(data_error)?,
            late_payment_allowed: latest.late_payment_allowed(),
            cover_rules: rules_moved_on(
                latest.cover_rules(),
                fee_year - i64::from(latest.fee_year().get()),
                closes,
                FeeYear::new(fee_year).map_err(data_error)?,
            ),
        })
        .map_err(data_error)?;
        storage.put_fee_policy(&policy).await?;
    }
    Ok(())
}

/// What [`load_people`] did.
#[derive(Debug, Default)]
pub struct PeopleSummary {
    pub import: Option<yibao_server::services::roster_import::ImportReport>,
    pub payables_created: u64,
}

/// Imports the demo roster through the same path as any roster, assesses every region's open fee
/// year, and creates the demo staff accounts. Idempotent.
pub async fn load_people(
    storage: &dyn Storage,
    today: NaiveDate,
) -> Result<PeopleSummary, DemoError> {
    use yibao_server::services::{assessment, roster_import, staff};
    ensure_open_policies(storage, today).await?;
    let dir = tempfile::tempdir().map_err(data_error)?;
    let path = dir.path().join("demo-roster.csv");
    std::fs::write(&path, demo_roster_csv(today)).map_err(data_error)?;
    let scope = roster_import::ImportScope::unrestricted("demo");
    let report = roster_import::import_roster(
        storage,
        &path,
        "demo-roster.csv",
        &scope,
        today,
        None,
        yibao_roster_file::Limits::default(),
        &|_| {},
    )
    .await
    .map_err(|e| DemoError::Data(e.message))?;
    let mut summary = PeopleSummary {
        import: Some(report),
        payables_created: 0,
    };
    for (region, csv) in demo_cover_history_csv(today) {
        let path = dir.path().join(format!("demo-cover-{region}.csv"));
        std::fs::write(&path, csv).map_err(data_error)?;
        yibao_server::services::cover::import_cover_history(
            storage,
            "demo",
            region,
            &path,
            today,
            yibao_roster_file::Limits::default(),
        )
        .await
        .map_err(|e| DemoError::Data(e.message))?;
    }
    for (name, csv) in [
        ("demo-family-bindings.csv", demo_family_bindings_csv(today)),
        ("demo-claims.csv", demo_claims_csv(today)),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, csv).map_err(data_error)?;
        yibao_server::services::cover::import_cover_history(
            storage,
            "demo",
            RegionCode::parse("460100").map_err(data_error)?,
            &path,
            today,
            yibao_roster_file::Limits::default(),
        )
        .await
        .map_err(|e| DemoError::Data(e.message))?;
    }
    for (code, _) in REGIONS {
        let region = RegionCode::parse(code).map_err(data_error)?;
        let policies = storage.list_fee_policies(region).await?;
        if let Some(policy) = yibao_domain::enrolment_fee_year(&policies, today) {
            let r = assessment::assess_region(
                storage,
                region,
                policy.fee_year(),
                "demo",
                today,
                &|_| {},
            )
            .await
            .map_err(|e| DemoError::Data(e.message))?;
            summary.payables_created += r.created;
        }
    }
    let channels = DEMO_CHANNELS.into_iter().chain([
        DEMO_ACCOUNT_CHANNEL,
        DEMO_HEALTH_CARD_CHANNEL,
        DEMO_AGENT_CHANNEL,
        DEMO_DEBIT_CHANNEL,
    ]);
    for (id, kind, secret, regions) in channels {
        if storage.get_channel(id).await?.is_some() {
            continue;
        }
        let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
        crate::operator::channel_add(storage, None, id, kind, &regions, 500, secret.to_owned())
            .await
            .map_err(data_error)?;
    }
    let (test_id, test_kind, test_secret) = DEMO_TEST_CHANNEL;
    if storage.get_channel(test_id).await?.is_none() {
        crate::operator::channel_add_in_mode(
            storage,
            None,
            test_id,
            test_kind,
            &[],
            500,
            test_secret.to_owned(),
            true,
        )
        .await
        .map_err(data_error)?;
    }
    let (code, name, village) = DEMO_AGENT;
    if let Ok(region) = RegionCode::parse(DEMO_AGENT_CHANNEL.3[0]) {
        let agent = yibao_domain::village_agent::VillageAgent::new(
            DEMO_AGENT_CHANNEL.0,
            code,
            region,
            name,
            village,
        )
        .map_err(|e| DemoError::Data(format!("{e:?}")))?;
        storage.put_village_agent(&agent, "demo").await?;
    }
    // The citizen site's own channel (a `gov_app` channel for every demo region), so that the
    // demo takes payments on the site through the simulated cashier. The site never signs a
    // request; the secret is the record's only.
    if storage
        .get_channel(yibao_citizen::pay::SITE_CHANNEL_ID)
        .await?
        .is_none()
    {
        let regions: Vec<String> = DEMO_CHANNELS[1].3.iter().map(|r| r.to_string()).collect();
        crate::operator::channel_add(
            storage,
            None,
            yibao_citizen::pay::SITE_CHANNEL_ID,
            "gov_app",
            &regions,
            500,
            "demo-secret-citizen-site-unused".to_owned(),
        )
        .await
        .map_err(data_error)?;
    }
    for (username, password, role, region, station) in DEMO_STAFF {
        if storage.get_staff(username).await?.is_some() {
            continue;
        }
        let new = staff::NewStaff {
            temporary_password: false,
            username: username.into(),
            display_name: username.into(),
            role: yibao_storage::Role::from_code(role).ok_or_else(|| data_error(role))?,
            region: region
                .map(RegionCode::parse)
                .transpose()
                .map_err(data_error)?,
            station: station
                .map(yibao_domain::StationCode::parse)
                .transpose()
                .map_err(data_error)?,
            password: staff::Password::new(password.into())
                .map_err(|e| DemoError::Data(e.message))?,
        };
        staff::create_staff(storage, new, "demo")
            .await
            .map_err(|e| DemoError::Data(e.message))?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yibao_domain::WorkingCalendar;

    #[test]
    fn demo_data_is_valid() {
        assert_eq!(fee_policies().unwrap().len(), POLICIES.len());
        assert_eq!(
            calendar_years().unwrap().len(),
            crate::setup_cli::SHIPPED_CALENDARS.len()
        );
    }

    #[test]
    fn seed_policy_is_as_written() {
        let policies = fee_policies().unwrap();
        let nantong = policies
            .iter()
            .find(|p| p.region().as_str() == "320600" && p.fee_year().get() == 2021)
            .unwrap();
        let adult = nantong.amount_for(Category::Adult);
        assert_eq!(adult.total().as_fen(), 43000);
        assert_eq!(adult.component(Component::CriticalIllness).as_fen(), 2000);
        assert_eq!(adult.component(Component::LongTermCare).as_fen(), 3000);
        let minor = nantong.amount_for(Category::MinorNotInSchool);
        assert_eq!(minor.total().as_fen(), 30000);
        assert_eq!(minor.component(Component::CriticalIllness).as_fen(), 2000);
        assert_eq!(nantong.window().opens(), date("2020-11-01").unwrap());
        assert_eq!(nantong.window().closes(), date("2020-12-20").unwrap());
    }

    #[test]
    fn the_collecting_fee_year_follows_the_autumn() {
        assert_eq!(collecting_fee_year(date("2026-11-22").unwrap()), 2027);
        assert_eq!(collecting_fee_year(date("2027-03-01").unwrap()), 2027);
        assert_eq!(collecting_fee_year(date("2027-09-01").unwrap()), 2028);
    }

    #[test]
    fn national_day_2020_refunds_fall_after_the_holiday() {
        let cal = WorkingCalendar::new(calendar_years().unwrap());
        // A payment on Wednesday 30 September 2020 owes its refund by Saturday 10 October (调休).
        assert_eq!(
            cal.add_working_days(date("2020-09-30").unwrap(), 2)
                .unwrap()
                .date,
            date("2020-10-10").unwrap()
        );
    }
}
