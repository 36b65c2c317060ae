//! Which Han blocks a chain of receipt fonts can draw: counted per block over the code points
//! that Unicode 15.1 assigns there, so that `yibao` can say at start which names would not print.

use std::ops::RangeInclusive;

/// One Unicode block of Han ideographs, with the code points assigned in it (Unicode 15.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HanBlock {
    /// English block name, e.g. `CJK Unified Ideographs Extension B`.
    pub name: &'static str,
    /// Short name used in docs and logs, e.g. `Ext B`.
    pub short: &'static str,
    /// The assigned code points (one or two ranges).
    pub assigned: &'static [RangeInclusive<u32>],
}

impl HanBlock {
    /// How many code points the block assigns.
    pub fn assigned_count(&self) -> usize {
        self.assigned
            .iter()
            .map(|r| (r.end() - r.start() + 1) as usize)
            .sum()
    }

    /// The assigned code points, in order.
    pub fn chars(&self) -> impl Iterator<Item = char> + '_ {
        self.assigned
            .iter()
            .flat_map(|r| r.clone())
            .filter_map(char::from_u32)
    }
}

/// Every Han block whose characters the registry accepts in a name
/// (`yibao_domain::person_name`): the unified ideographs, extensions A to I and the two
/// compatibility blocks.
pub const HAN_BLOCKS: &[HanBlock] = &[
    HanBlock {
        name: "CJK Unified Ideographs",
        short: "URO",
        assigned: &[0x4E00..=0x9FFF],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension A",
        short: "Ext A",
        assigned: &[0x3400..=0x4DBF],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension B",
        short: "Ext B",
        assigned: &[0x20000..=0x2A6DF],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension C",
        short: "Ext C",
        assigned: &[0x2A700..=0x2B739],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension D",
        short: "Ext D",
        assigned: &[0x2B740..=0x2B81D],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension E",
        short: "Ext E",
        assigned: &[0x2B820..=0x2CEA1],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension F",
        short: "Ext F",
        assigned: &[0x2CEB0..=0x2EBE0],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension G",
        short: "Ext G",
        assigned: &[0x30000..=0x3134A],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension H",
        short: "Ext H",
        assigned: &[0x31350..=0x323AF],
    },
    HanBlock {
        name: "CJK Unified Ideographs Extension I",
        short: "Ext I",
        assigned: &[0x2EBF0..=0x2EE5D],
    },
    HanBlock {
        name: "CJK Compatibility Ideographs",
        short: "Compat",
        assigned: &[0xF900..=0xFA6D, 0xFA70..=0xFAD9],
    },
    HanBlock {
        name: "CJK Compatibility Ideographs Supplement",
        short: "Compat Sup",
        assigned: &[0x2F800..=0x2FA1D],
    },
];

/// How many of a block's assigned code points a font (or a chain of fonts) draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCoverage {
    pub block: HanBlock,
    /// Code points with a glyph.
    pub covered: usize,
    /// The first few code points without one (at most [`MISSING_EXAMPLES`]).
    pub missing_examples: Vec<char>,
}

/// How many missing code points [`BlockCoverage::missing_examples`] keeps.
pub const MISSING_EXAMPLES: usize = 3;

impl BlockCoverage {
    /// Code points of the block without a glyph.
    pub fn missing(&self) -> usize {
        self.block.assigned_count() - self.covered
    }
}

/// Coverage of every block of [`HAN_BLOCKS`] by `has_glyph`.
pub(crate) fn han_coverage(has_glyph: impl Fn(char) -> bool) -> Vec<BlockCoverage> {
    HAN_BLOCKS
        .iter()
        .map(|block| {
            let mut covered = 0;
            let mut missing_examples = Vec::new();
            for ch in block.chars() {
                if has_glyph(ch) {
                    covered += 1;
                } else if missing_examples.len() < MISSING_EXAMPLES {
                    missing_examples.push(ch);
                }
            }
            BlockCoverage {
                block: *block,
                covered,
                missing_examples,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_are_those_of_unicode_15_1() {
        let size = |short: &str| {
            HAN_BLOCKS
                .iter()
                .find(|b| b.short == short)
                .map(HanBlock::assigned_count)
        };
        assert_eq!(size("URO"), Some(20_992));
        assert_eq!(size("Ext A"), Some(6_592));
        assert_eq!(size("Ext B"), Some(42_720));
        assert_eq!(size("Ext C"), Some(4_154));
        assert_eq!(size("Ext D"), Some(222));
        assert_eq!(size("Ext E"), Some(5_762));
        assert_eq!(size("Ext F"), Some(7_473));
        assert_eq!(size("Ext G"), Some(4_939));
        assert_eq!(size("Ext H"), Some(4_192));
        assert_eq!(size("Ext I"), Some(622));
        assert_eq!(size("Compat"), Some(472));
        assert_eq!(size("Compat Sup"), Some(542));
    }

    #[test]
    fn counts_covered_and_names_the_first_missing() {
        let cov = han_coverage(|c| c != '\u{3400}');
        let ext_a = cov.iter().find(|c| c.block.short == "Ext A").unwrap();
        assert_eq!(ext_a.missing(), 1);
        assert_eq!(ext_a.missing_examples, vec!['\u{3400}']);
    }
}
