//! Administrative division codes (GB/T 2260) and pooling regions (统筹区).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// First two digits of every province-level division in GB/T 2260, including 71 (台湾), 81 (香港) and 82 (澳门).
pub const PROVINCE_PREFIXES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

const PROVINCE_NAMES: [&str; 34] = [
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
    "台湾省",
    "香港特别行政区",
    "澳门特别行政区",
];

pub fn is_province_prefix(prefix: &str) -> bool {
    PROVINCE_PREFIXES.contains(&prefix)
}

/// The province-level division a region belongs to (`江苏省` for `320600`).
pub fn province_name(code: RegionCode) -> &'static str {
    PROVINCE_PREFIXES
        .iter()
        .position(|p| *p == &code.as_str()[..2])
        .map_or("", |i| PROVINCE_NAMES[i])
}

/// A 6-digit GB/T 2260 administrative division code, such as `320600` (南通市).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode([u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionCodeError {
    #[error("地区代码应为6位数字（如 320600），当前为“{0}”")]
    NotSixDigits(String),
    #[error("地区代码“{0}”的前两位不是有效的省级行政区划代码")]
    UnknownProvince(String),
}

impl RegionCodeError {
    pub const CODE: &'static str = "INVALID_REGION";
}

impl RegionCode {
    pub fn parse(input: &str) -> Result<Self, RegionCodeError> {
        let s = input.trim();
        let shown: String = s.chars().take(20).collect();
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegionCodeError::NotSixDigits(shown));
        }
        if !is_province_prefix(&s[..2]) {
            return Err(RegionCodeError::UnknownProvince(shown));
        }
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(s.as_bytes());
        Ok(RegionCode(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Invariant: six ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The province-level code (`320000` for `320600`).
    pub fn province(&self) -> RegionCode {
        let mut bytes = *b"000000";
        bytes[..2].copy_from_slice(&self.0[..2]);
        RegionCode(bytes)
    }
}

impl FromStr for RegionCode {
    type Err = RegionCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// How a stored column becomes a region code (checked again: stored data is never trusted blindly).
impl TryFrom<String> for RegionCode {
    type Error = RegionCodeError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        RegionCode::parse(&code)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.as_str())
    }
}

impl Serialize for RegionCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        RegionCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Longest pooling region name accepted, in characters.
pub const MAX_REGION_NAME_CHARS: usize = 32;

/// A pooling region (统筹区): the unit that sets fee policies and holds residents' data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolingRegion {
    code: RegionCode,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolingRegionError {
    #[error("统筹区名称不能为空，且不超过{MAX_REGION_NAME_CHARS}个字符")]
    BadName,
}

impl PoolingRegion {
    pub fn new(code: RegionCode, name: &str) -> Result<Self, PoolingRegionError> {
        let name = name.trim();
        let count = name.chars().count();
        if count == 0 || count > MAX_REGION_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(PoolingRegionError::BadName);
        }
        Ok(PoolingRegion {
            code,
            name: name.to_owned(),
        })
    }

    pub fn code(&self) -> RegionCode {
        self.code
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        let nantong = RegionCode::parse("320600").unwrap();
        assert_eq!(nantong.as_str(), "320600");
        assert_eq!(nantong.province().as_str(), "320000");
        assert_eq!(province_name(nantong), "江苏省");
        assert_eq!(
            province_name(RegionCode::parse("820000").unwrap()),
            "澳门特别行政区"
        );
        assert!(matches!(
            RegionCode::parse("32060"),
            Err(RegionCodeError::NotSixDigits(_))
        ));
        assert!(matches!(
            RegionCode::parse("32060a"),
            Err(RegionCodeError::NotSixDigits(_))
        ));
        assert!(matches!(
            RegionCode::parse("990100"),
            Err(RegionCodeError::UnknownProvince(_))
        ));
        assert!(matches!(
            RegionCode::parse("３２０６００"),
            Err(RegionCodeError::NotSixDigits(_))
        ));
    }

    #[test]
    fn pooling_region_names_are_bounded() {
        let code = RegionCode::parse("460100").unwrap();
        assert_eq!(
            PoolingRegion::new(code, " 海口市 ").unwrap().name(),
            "海口市"
        );
        assert!(PoolingRegion::new(code, "").is_err());
        assert!(PoolingRegion::new(code, &"市".repeat(33)).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(prefix in proptest::sample::select(PROVINCE_PREFIXES.to_vec()), rest in 0u32..10_000) {
            let s = format!("{prefix}{rest:04}");
            let code = RegionCode::parse(&s).unwrap();
            prop_assert_eq!(code.to_string(), s);
            prop_assert_eq!(RegionCode::parse(&code.to_string()).unwrap(), code);
        }
    }
}
