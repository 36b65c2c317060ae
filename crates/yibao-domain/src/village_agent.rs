//! Village agents (村代办员, issue 17): Jinzhou's villagers hand their money to an agent of their
//! village, who pays for them through the `village_agent` channel. Each agent is named by the
//! channel's code for them, belongs to one region and serves villages, given as the codes of the
//! villages' service stations (村/社区劳动保障服务站, the `服务站` of the roster). An agent finds and
//! pays only for residents of their villages; every order records its agent; the cash an agent
//! hands in (交款) for a day is compared with what their payments applied that day.

use std::fmt;

use crate::enrolment::StationCode;
use crate::money::Fen;
use crate::region::RegionCode;

/// The channel kind of village agents.
pub const VILLAGE_AGENT: &str = "village_agent";
/// Most villages (stations) one agent serves.
pub const MAX_AGENT_VILLAGES: usize = 50;
/// Longest agent code, in characters.
pub const MAX_AGENT_CODE_LEN: usize = 20;
/// Largest hand-in recorded for one agent and day, in fen (10 亿元; the database's bound).
pub const MAX_HAND_IN_FEN: i64 = 100_000_000_000;
/// Longest agent name, in characters.
pub const MAX_AGENT_NAME_LEN: usize = 20;

/// The channel's code for an agent: 1 to [`MAX_AGENT_CODE_LEN`] Latin letters, digits or `-`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct AgentCode(String);

impl AgentCode {
    pub fn parse(text: &str) -> Result<AgentCode, AgentError> {
        let text = text.trim();
        if text.is_empty()
            || text.chars().count() > MAX_AGENT_CODE_LEN
            || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AgentError::Code);
        }
        Ok(AgentCode(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A village agent as registered by staff.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VillageAgent {
    /// The `village_agent` channel the agent pays through.
    pub channel_id: String,
    pub code: AgentCode,
    pub region: RegionCode,
    pub name: String,
    /// The villages served, as their service stations' codes; never empty.
    pub villages: Vec<StationCode>,
    pub enabled: bool,
}

impl VillageAgent {
    /// A new agent from what staff typed: the villages separated by commas, spaces or 、.
    pub fn new(
        channel_id: &str,
        code: &str,
        region: RegionCode,
        name: &str,
        villages: &str,
    ) -> Result<VillageAgent, Vec<(AgentField, AgentError)>> {
        let mut problems = Vec::new();
        let code = AgentCode::parse(code)
            .map_err(|e| problems.push((AgentField::Code, e)))
            .ok();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_AGENT_NAME_LEN {
            problems.push((AgentField::Name, AgentError::Name));
        }
        let mut parsed: Vec<StationCode> = Vec::new();
        for part in villages
            .split(|c: char| c == ',' || c == '，' || c == '、' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            match StationCode::parse(part) {
                Ok(station) if !parsed.contains(&station) => parsed.push(station),
                Ok(_) => {}
                Err(_) => {
                    problems.push((
                        AgentField::Villages,
                        AgentError::Village(part.chars().take(20).collect()),
                    ));
                    break;
                }
            }
        }
        if parsed.is_empty() && !problems.iter().any(|(f, _)| *f == AgentField::Villages) {
            problems.push((AgentField::Villages, AgentError::NoVillages));
        }
        if parsed.len() > MAX_AGENT_VILLAGES {
            problems.push((AgentField::Villages, AgentError::TooManyVillages));
        }
        match code {
            Some(code) if problems.is_empty() => Ok(VillageAgent {
                channel_id: channel_id.to_owned(),
                code,
                region,
                name: name.to_owned(),
                villages: parsed,
                enabled: true,
            }),
            _ => Err(problems),
        }
    }

    /// Whether the agent serves a resident of `region` at `station`.
    pub fn serves(&self, region: RegionCode, station: Option<&StationCode>) -> bool {
        self.enabled && region == self.region && station.is_some_and(|s| self.villages.contains(s))
    }

    /// The villages as staff typed them, separated by 、.
    pub fn villages_text(&self) -> String {
        self.villages
            .iter()
            .map(StationCode::as_str)
            .collect::<Vec<_>>()
            .join("、")
    }
}

/// The fields of the agent form, for errors beside them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AgentField {
    Code,
    Name,
    Villages,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("代办员编号应为1至{MAX_AGENT_CODE_LEN}位英文字母、数字或“-”")]
    Code,
    #[error("请填写代办员姓名（不超过{MAX_AGENT_NAME_LEN}个字）")]
    Name,
    #[error("服务村（站）编码“{0}”不正确，应为服务站编码，多个用逗号分隔")]
    Village(String),
    #[error("请填写代办员服务的村（站）编码，多个用逗号分隔")]
    NoVillages,
    #[error("一名代办员最多服务{MAX_AGENT_VILLAGES}个村（站）")]
    TooManyVillages,
}

/// Why a village agent's request is refused. One code, `AGENT_NOT_ALLOWED` (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentRefusal {
    #[error("代办员编号 {0} 未在本渠道登记，请联系医保经办机构")]
    Unknown(String),
    #[error("代办员 {0} 已停用，请联系医保经办机构")]
    Disabled(String),
    #[error("{person_masked} 不在代办员服务的村（站），代办员只能为本村居民缴费")]
    OutsideVillages { person_masked: String },
}

impl AgentRefusal {
    pub const CODE: &'static str = "AGENT_NOT_ALLOWED";
}

/// What an agent's cash for a day comes to against what their payments applied that day.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HandIn {
    /// Nothing handed in yet (and something is owed).
    NotHandedIn {
        owed: Fen,
    },
    Balanced,
    /// Less handed in than owed: 短款.
    Short(Fen),
    /// More handed in than owed: 长款.
    Over(Fen),
}

impl HandIn {
    /// `owed`: what the agent's payments applied that day; `handed_in`: the cash recorded, if any.
    pub fn of(owed: Fen, handed_in: Option<Fen>) -> HandIn {
        match handed_in {
            None if owed == Fen::ZERO => HandIn::Balanced,
            None => HandIn::NotHandedIn { owed },
            Some(cash) if cash == owed => HandIn::Balanced,
            Some(cash) if cash < owed => HandIn::Short(
                Fen::new_non_negative(owed.as_fen() - cash.as_fen()).unwrap_or(Fen::ZERO),
            ),
            Some(cash) => HandIn::Over(
                Fen::new_non_negative(cash.as_fen() - owed.as_fen()).unwrap_or(Fen::ZERO),
            ),
        }
    }

    /// 相符, 短款 X 元, 长款 X 元, 未交款.
    pub fn label_zh(self) -> String {
        match self {
            HandIn::NotHandedIn { .. } => "未交款".to_owned(),
            HandIn::Balanced => "相符".to_owned(),
            HandIn::Short(f) => format!("短款 {} 元", f.to_yuan_string()),
            HandIn::Over(f) => format!("长款 {} 元", f.to_yuan_string()),
        }
    }

    pub fn is_flagged(self) -> bool {
        !matches!(self, HandIn::Balanced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> RegionCode {
        RegionCode::parse("210700").unwrap()
    }

    #[test]
    fn an_agent_serves_only_their_villages_of_their_region() {
        let agent = VillageAgent::new(
            "jz-agents",
            "A-01",
            region(),
            "张代办",
            "JZ-01, JZ-02、JZ-02",
        )
        .unwrap();
        assert_eq!(agent.villages.len(), 2);
        let jz1 = StationCode::parse("JZ-01").unwrap();
        let jz3 = StationCode::parse("JZ-03").unwrap();
        assert!(agent.serves(region(), Some(&jz1)));
        assert!(!agent.serves(region(), Some(&jz3)));
        assert!(!agent.serves(region(), None));
        assert!(!agent.serves(RegionCode::parse("460100").unwrap(), Some(&jz1)));
        let mut off = agent.clone();
        off.enabled = false;
        assert!(!off.serves(region(), Some(&jz1)));
    }

    #[test]
    fn the_form_is_checked_field_by_field() {
        let problems = VillageAgent::new("c", "A 1", region(), "", "").unwrap_err();
        let fields: Vec<AgentField> = problems.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            vec![AgentField::Code, AgentField::Name, AgentField::Villages]
        );
    }

    #[test]
    fn hand_ins_are_balanced_short_or_over() {
        let f = |n| Fen::new_non_negative(n).unwrap();
        assert_eq!(HandIn::of(f(0), None), HandIn::Balanced);
        assert_eq!(
            HandIn::of(f(38000), None),
            HandIn::NotHandedIn { owed: f(38000) }
        );
        assert_eq!(HandIn::of(f(38000), Some(f(38000))), HandIn::Balanced);
        assert_eq!(HandIn::of(f(38000), Some(f(37000))), HandIn::Short(f(1000)));
        assert_eq!(HandIn::of(f(38000), Some(f(38050))), HandIn::Over(f(50)));
        assert_eq!(HandIn::Short(f(1000)).label_zh(), "短款 10.00 元");
        assert!(!HandIn::Balanced.is_flagged());
    }
}
