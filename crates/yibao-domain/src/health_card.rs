//! The resident health card (居民健康卡, issue 17): Hainan's contributions are paid with the card,
//! at an agent point (代征点), where a card may pay only for its holder's household (户), or at a
//! self-service machine, where it may pay for anyone. A channel of kind [`HEALTH_CARD`] names the
//! holder and the terminal on every order; the order is refused before any money is taken when an
//! agent point asks for someone outside the holder's household.

use std::fmt;

use crate::id_number::IdNumber;

/// The channel kind of the health card.
pub const HEALTH_CARD: &str = "health_card";

/// Where the card was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Terminal {
    /// 代征点: an agent's card reader; only the holder's household.
    AgentPoint,
    /// 自助服务机: anyone.
    SelfService,
}

impl Terminal {
    pub const ALL: [Terminal; 2] = [Terminal::AgentPoint, Terminal::SelfService];

    pub fn code(self) -> &'static str {
        match self {
            Terminal::AgentPoint => "agent_point",
            Terminal::SelfService => "self_service",
        }
    }

    pub fn from_code(code: &str) -> Option<Terminal> {
        Terminal::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Terminal::AgentPoint => "代征点",
            Terminal::SelfService => "自助服务机",
        }
    }
}

/// A payment with the card: whose card, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardPayment {
    pub holder: IdNumber,
    pub terminal: Terminal,
}

/// An agent point asked to pay for someone outside the card holder's household.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("居民健康卡在代征点只能为持卡人本户成员缴费：{person_masked} 不是持卡人户内成员（以经办机构登记的户号为准）；请到自助服务机、银行网点或其他渠道缴费")]
pub struct NotHouseholdMember {
    pub person_masked: String,
}

impl NotHouseholdMember {
    pub const CODE: &'static str = "NOT_HOUSEHOLD_MEMBER";
}

/// Whether `card` may pay for every one of `persons`: at a self-service machine always; at an
/// agent point only for the holder and the current members of the holder's household
/// (`household`, as stored for the payables' region; empty when the holder is in none). The first
/// person refused is named, masked.
pub fn agent_point_refusal(
    card: &CardPayment,
    household: &[IdNumber],
    persons: &[IdNumber],
) -> Option<NotHouseholdMember> {
    if card.terminal == Terminal::SelfService {
        return None;
    }
    persons
        .iter()
        .find(|p| **p != card.holder && !household.contains(p))
        .map(|p| NotHouseholdMember {
            person_masked: p.masked(),
        })
}

impl fmt::Display for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> IdNumber {
        let base = format!("46010019800101{n:03}");
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = base
            .chars()
            .zip(weights)
            .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
            .sum();
        let check = b"10X98765432"[(sum % 11) as usize] as char;
        IdNumber::try_from(format!("{base}{check}")).expect("valid test ID")
    }

    #[test]
    fn an_agent_point_pays_only_for_the_holders_household() {
        let card = CardPayment {
            holder: id(1),
            terminal: Terminal::AgentPoint,
        };
        let household = [id(1), id(2), id(3)];
        assert_eq!(
            agent_point_refusal(&card, &household, &[id(1), id(2)]),
            None
        );
        let refused = agent_point_refusal(&card, &household, &[id(2), id(9)]).unwrap();
        assert_eq!(refused.person_masked, id(9).masked());
        assert!(refused.to_string().contains("不是持卡人户内成员"));
        // A holder in no household pays for themselves only.
        assert_eq!(agent_point_refusal(&card, &[], &[id(1)]), None);
        assert!(agent_point_refusal(&card, &[], &[id(2)]).is_some());
    }

    #[test]
    fn a_self_service_machine_pays_for_anyone() {
        let card = CardPayment {
            holder: id(1),
            terminal: Terminal::SelfService,
        };
        assert_eq!(agent_point_refusal(&card, &[], &[id(7), id(8)]), None);
    }

    #[test]
    fn terminals_round_trip() {
        for t in Terminal::ALL {
            assert_eq!(Terminal::from_code(t.code()), Some(t));
        }
        assert_eq!(Terminal::from_code("pos"), None);
    }
}
