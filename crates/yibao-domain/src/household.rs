//! Households (户, issue 17): the household number (户号) of the household register, each
//! member's relation to the head of household (与户主关系), and what a change of membership
//! does. A person is in at most one household of a region at a time; a household has at most one
//! head (户主) at a time. Storage keeps every membership with when it began and ended, so the
//! history of a person and of a household can be read back.
//!
//! The decisions are here ([`plan_placements`]); storage reads the current memberships, asks this
//! module what changes and writes it, inside the transaction of the change. The database holds
//! both rules as unique indexes over the current memberships.

use std::collections::HashMap;
use std::fmt;

use crate::id_number::IdNumber;

/// Longest household number accepted, in characters.
pub const MAX_HOUSEHOLD_NUMBER_LEN: usize = 20;
/// Longest relation to the head accepted, in characters (`外孙子女`, `其他亲属`).
pub const MAX_RELATION_LEN: usize = 8;
/// The relation that makes a member the head of household.
pub const HEAD: &str = "户主";
/// The stable code of a household number or relation refused.
pub const INVALID_HOUSEHOLD: &str = "INVALID_HOUSEHOLD";

/// A household number (户号) as the household register prints it: 1 to
/// [`MAX_HOUSEHOLD_NUMBER_LEN`] digits, Latin letters or hyphens; letters are kept upper-case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HouseholdNumber(String);

impl HouseholdNumber {
    pub fn parse(text: &str) -> Result<HouseholdNumber, HouseholdError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(HouseholdError::NumberMissing);
        }
        if text.chars().count() > MAX_HOUSEHOLD_NUMBER_LEN {
            return Err(HouseholdError::NumberTooLong);
        }
        if !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(HouseholdError::NumberCharacters);
        }
        Ok(HouseholdNumber(text.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HouseholdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for HouseholdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HouseholdNumber({})", self.0)
    }
}

/// A member's relation to the head of household as the register or a clerk writes it (`户主`,
/// `配偶`, `子`, `长女`, `孙子`…): 1 to [`MAX_RELATION_LEN`] characters, Chinese or Latin
/// letters only. [`HEAD`] makes the member the head.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Relation(String);

impl Relation {
    /// The relations offered in the console's list; any other within the rules is accepted too.
    pub const COMMON: [&'static str; 10] = [
        "户主",
        "配偶",
        "子",
        "女",
        "父母",
        "孙子女",
        "兄弟姐妹",
        "祖父母",
        "儿媳",
        "其他",
    ];

    pub fn parse(text: &str) -> Result<Relation, HouseholdError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(HouseholdError::RelationMissing);
        }
        if text.chars().count() > MAX_RELATION_LEN {
            return Err(HouseholdError::RelationTooLong);
        }
        if !text.chars().all(|c| {
            c.is_ascii_alphabetic() || ('\u{4e00}'..='\u{9fff}').contains(&c) || c == '\u{3007}'
        }) {
            return Err(HouseholdError::RelationCharacters);
        }
        Ok(Relation(text.to_owned()))
    }

    pub fn head() -> Relation {
        Relation(HEAD.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_head(&self) -> bool {
        self.0 == HEAD
    }
}

/// Where a roster row or a clerk puts a person: a household, and their relation to its head when
/// known.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Placement {
    pub number: HouseholdNumber,
    pub relation: Option<Relation>,
}

impl Placement {
    /// From the two texts a roster row or form gives (either may be empty): `None` when both are
    /// empty; a relation without a number is refused.
    pub fn parse(number: &str, relation: &str) -> Result<Option<Placement>, Vec<HouseholdProblem>> {
        let (number, relation) = (number.trim(), relation.trim());
        if number.is_empty() && relation.is_empty() {
            return Ok(None);
        }
        let mut problems = Vec::new();
        let parsed_number = if number.is_empty() {
            problems.push(HouseholdProblem {
                field: HouseholdField::Number,
                error: HouseholdError::NumberWithRelation,
            });
            None
        } else {
            HouseholdNumber::parse(number)
                .map_err(|error| {
                    problems.push(HouseholdProblem {
                        field: HouseholdField::Number,
                        error,
                    })
                })
                .ok()
        };
        let parsed_relation = if relation.is_empty() {
            None
        } else {
            match Relation::parse(relation) {
                Ok(r) => Some(r),
                Err(error) => {
                    problems.push(HouseholdProblem {
                        field: HouseholdField::Relation,
                        error,
                    });
                    None
                }
            }
        };
        match parsed_number {
            Some(number) if problems.is_empty() => Ok(Some(Placement {
                number,
                relation: parsed_relation,
            })),
            _ => Err(problems),
        }
    }

    pub fn is_head(&self) -> bool {
        self.relation.as_ref().is_some_and(Relation::is_head)
    }
}

/// The two household fields of a roster row or form.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HouseholdField {
    /// 户号
    Number,
    /// 与户主关系
    Relation,
}

/// One refused household field.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HouseholdProblem {
    pub field: HouseholdField,
    pub error: HouseholdError,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HouseholdError {
    #[error("请填写户号")]
    NumberMissing,
    #[error("不能超过{MAX_HOUSEHOLD_NUMBER_LEN}位")]
    NumberTooLong,
    #[error("只能由数字、英文字母和连字符“-”组成，请按户口簿填写")]
    NumberCharacters,
    #[error("填写与户主关系时须填写户号")]
    NumberWithRelation,
    #[error("请填写与户主关系")]
    RelationMissing,
    #[error("不能超过{MAX_RELATION_LEN}个字")]
    RelationTooLong,
    #[error("只能填写汉字或英文字母，如：户主、配偶、子、女")]
    RelationCharacters,
    #[error("该户现户主属于其他服务站，不能在本站更换户主；请由其所在服务站或经办机构办理")]
    HeadElsewhere,
}

impl HouseholdError {
    pub const CODE: &'static str = INVALID_HOUSEHOLD;
}

/// A person's current membership of a household.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Membership {
    pub id_number: IdNumber,
    pub number: HouseholdNumber,
    pub relation: Option<Relation>,
}

/// What a set of placements changes in one region: the current memberships to end (by person)
/// and the memberships to begin. A person in both has moved, changed relation, or stopped being
/// the head.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HouseholdChanges {
    pub end: Vec<IdNumber>,
    pub begin: Vec<Membership>,
}

impl HouseholdChanges {
    pub fn is_empty(&self) -> bool {
        self.end.is_empty() && self.begin.is_empty()
    }
}

/// Decides what `placements` (in order: a later one wins) change, given `current`: the current
/// memberships of the persons placed and of the heads of the households named. For each person:
/// - the same household and relation as now: nothing;
/// - `None`: they leave their household (if any);
/// - otherwise their current membership ends and the new one begins;
/// - a new head (`户主`) of a household whose head is someone else ends that head's membership
///   and begins it again without a relation: they stay a member, and the clerk is shown that the
///   relation is no longer known.
pub fn plan_placements(
    placements: &[(IdNumber, Option<Placement>)],
    current: &[Membership],
) -> HouseholdChanges {
    let stored: HashMap<IdNumber, &Membership> = current.iter().map(|m| (m.id_number, m)).collect();
    // The memberships as the placements leave them, and who changed.
    let mut now: HashMap<IdNumber, Membership> =
        current.iter().map(|m| (m.id_number, m.clone())).collect();
    let mut changed: Vec<IdNumber> = Vec::new();
    let mark = |id: IdNumber, changed: &mut Vec<IdNumber>| {
        if !changed.contains(&id) {
            changed.push(id);
        }
    };
    for (id, placement) in placements {
        let Some(placement) = placement else {
            if now.remove(id).is_some() {
                mark(*id, &mut changed);
            }
            continue;
        };
        let same = now
            .get(id)
            .is_some_and(|m| m.number == placement.number && m.relation == placement.relation);
        if same {
            continue;
        }
        if placement.is_head() {
            let old_head = now
                .values()
                .find(|m| {
                    m.id_number != *id
                        && m.number == placement.number
                        && m.relation.as_ref().is_some_and(Relation::is_head)
                })
                .map(|m| m.id_number);
            if let Some(old_head) = old_head {
                if let Some(m) = now.get_mut(&old_head) {
                    m.relation = None;
                }
                mark(old_head, &mut changed);
            }
        }
        now.insert(
            *id,
            Membership {
                id_number: *id,
                number: placement.number.clone(),
                relation: placement.relation.clone(),
            },
        );
        mark(*id, &mut changed);
    }
    let mut changes = HouseholdChanges::default();
    for id in changed {
        let after = now.get(&id);
        let before = stored.get(&id).copied();
        if before == after {
            continue;
        }
        if before.is_some() {
            changes.end.push(id);
        }
        if let Some(after) = after {
            changes.begin.push(after.clone());
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> IdNumber {
        let base = format!("46010019900101{:03}", n);
        let digits: Vec<u32> = base.chars().map(|c| c.to_digit(10).unwrap_or(0)).collect();
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
        let check = b"10X98765432"[(sum % 11) as usize] as char;
        IdNumber::try_from(format!("{base}{check}")).expect("valid test ID")
    }

    fn member(n: u32, number: &str, relation: Option<&str>) -> Membership {
        Membership {
            id_number: id(n),
            number: HouseholdNumber::parse(number).unwrap(),
            relation: relation.map(|r| Relation::parse(r).unwrap()),
        }
    }

    fn place(number: &str, relation: Option<&str>) -> Option<Placement> {
        Some(Placement {
            number: HouseholdNumber::parse(number).unwrap(),
            relation: relation.map(|r| Relation::parse(r).unwrap()),
        })
    }

    #[test]
    fn numbers_and_relations_are_checked() {
        assert_eq!(
            HouseholdNumber::parse(" h-0012 ").unwrap().as_str(),
            "H-0012"
        );
        assert_eq!(
            HouseholdNumber::parse("123456789012345678901"),
            Err(HouseholdError::NumberTooLong)
        );
        assert_eq!(
            HouseholdNumber::parse("12 34"),
            Err(HouseholdError::NumberCharacters)
        );
        assert_eq!(
            HouseholdNumber::parse("１２３"),
            Err(HouseholdError::NumberCharacters)
        );
        assert!(Relation::parse("户主").unwrap().is_head());
        assert!(!Relation::parse("配偶").unwrap().is_head());
        assert_eq!(
            Relation::parse("配偶/子"),
            Err(HouseholdError::RelationCharacters)
        );
        assert_eq!(
            Relation::parse("一二三四五六七八九"),
            Err(HouseholdError::RelationTooLong)
        );
    }

    #[test]
    fn a_relation_without_a_number_is_refused_and_two_empties_are_nothing() {
        assert_eq!(Placement::parse("", ""), Ok(None));
        let problems = Placement::parse("", "配偶").unwrap_err();
        assert_eq!(problems[0].field, HouseholdField::Number);
        assert_eq!(problems[0].error, HouseholdError::NumberWithRelation);
        let both = Placement::parse("a b", "x/y").unwrap_err();
        assert_eq!(both.len(), 2);
        let placed = Placement::parse("0012", "").unwrap().unwrap();
        assert_eq!(placed.relation, None);
    }

    #[test]
    fn the_same_placement_changes_nothing() {
        let current = [member(1, "A1", Some("户主"))];
        let changes = plan_placements(&[(id(1), place("A1", Some("户主")))], &current);
        assert!(changes.is_empty());
    }

    #[test]
    fn moving_ends_the_old_membership_and_begins_the_new() {
        let current = [member(1, "A1", Some("子"))];
        let changes = plan_placements(&[(id(1), place("B2", Some("户主")))], &current);
        assert_eq!(changes.end, vec![id(1)]);
        assert_eq!(changes.begin, vec![member(1, "B2", Some("户主"))]);
    }

    #[test]
    fn a_new_head_keeps_the_old_one_as_a_member_without_a_relation() {
        let current = [member(1, "A1", Some("户主"))];
        let changes = plan_placements(&[(id(2), place("A1", Some("户主")))], &current);
        assert_eq!(changes.end, vec![id(1)]);
        assert_eq!(
            changes.begin,
            vec![member(1, "A1", None), member(2, "A1", Some("户主"))]
        );
    }

    #[test]
    fn two_heads_in_one_batch_the_later_wins() {
        let changes = plan_placements(
            &[
                (id(1), place("A1", Some("户主"))),
                (id(2), place("A1", Some("户主"))),
            ],
            &[],
        );
        assert!(changes.end.is_empty());
        assert_eq!(
            changes.begin,
            vec![member(1, "A1", None), member(2, "A1", Some("户主"))]
        );
    }

    #[test]
    fn leaving_ends_the_membership_and_leaving_nothing_is_nothing() {
        let current = [member(1, "A1", Some("配偶"))];
        let changes = plan_placements(&[(id(1), None), (id(2), None)], &current);
        assert_eq!(changes.end, vec![id(1)]);
        assert!(changes.begin.is_empty());
    }

    #[test]
    fn moved_and_moved_back_in_one_batch_is_nothing() {
        let current = [member(1, "A1", Some("子"))];
        let changes = plan_placements(
            &[(id(1), place("B2", None)), (id(1), place("A1", Some("子")))],
            &current,
        );
        assert!(changes.is_empty());
    }
}
