//! Amounts on the receipt: yuan with two decimals (小写) and Chinese capital numerals (大写).
//! Integer fen throughout; no floats.

use crate::ReceiptPdfError;

/// Largest amount a receipt shows: 100 billion yuan, the same bound as `yibao_domain::MAX_ABS_FEN`.
/// Far above any real contribution, and below 1 万亿 yuan, the largest the capital-numeral
/// conversion spells.
pub const MAX_RECEIPT_FEN: i64 = 10_000_000_000_000;

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
/// Unit of a digit by its place within a group of four: ones, 拾, 佰, 仟.
const PLACE_UNITS: [&str; 4] = ["", "拾", "佰", "仟"];
/// Unit of a group of four digits: ones, 万, 亿.
const GROUP_UNITS: [&str; 3] = ["", "万", "亿"];

/// `430.00`, `0.05`, `-12.30`: yuan with exactly two decimals.
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The amount in Chinese capital numerals as written on receipts and bills (大写金额):
/// `肆佰叁拾元整`, `肆佰叁拾元伍角`, `壹仟零伍元零伍分`, `伍分`, `零元整`.
///
/// Rules (as in the People's Bank's rules for filling in bills): the highest digit is always
/// written, so 10 yuan is `壹拾元`; a run of zeros inside the yuan, also across 万/亿, is written as
/// one `零`, except zeros that end a written 万 or 亿 group (¥105000 is `壹拾万伍仟元整`, the
/// rules allow either); a group of zeros skipped entirely still leaves its `零`
/// (¥100005000 is `壹亿零伍仟元整`); zeros at the end of the yuan are not written; `整` follows `元` when there are no 角
/// or 分, and is not written after 角; when 角 is zero but 分 is not, `零` stands between 元 and
/// 分; an amount below one yuan starts at its first non-zero unit. Refuses negative amounts and
/// amounts above [`MAX_RECEIPT_FEN`].
pub fn capital_amount(fen: i64) -> Result<String, ReceiptPdfError> {
    if !(0..=MAX_RECEIPT_FEN).contains(&fen) {
        return Err(ReceiptPdfError::AmountOutOfRange {
            field: "金额", fen
        });
    }
    let yuan = fen / 100;
    let jiao = usize::try_from((fen / 10) % 10).unwrap_or(0);
    let fen_digit = usize::try_from(fen % 10).unwrap_or(0);

    let mut out = String::new();
    if yuan > 0 {
        out.push_str(&capital_yuan(yuan));
        out.push('元');
    }
    match (jiao, fen_digit) {
        (0, 0) if yuan == 0 => out.push_str("零元整"),
        (0, 0) => out.push('整'),
        (0, f) => {
            if yuan > 0 {
                out.push('零');
            }
            out.push(DIGITS[f]);
            out.push('分');
        }
        (j, f) => {
            out.push(DIGITS[j]);
            out.push('角');
            if f > 0 {
                out.push(DIGITS[f]);
                out.push('分');
            }
        }
    }
    Ok(out)
}

/// Spells a positive whole number of yuan below 1 万亿 (without the `元`).
fn capital_yuan(yuan: i64) -> String {
    let digits: Vec<usize> = yuan
        .to_string()
        .bytes()
        .map(|b| usize::from(b.saturating_sub(b'0')))
        .collect();
    let count = digits.len();
    let mut out = String::new();
    let mut pending_zero = false;
    for (i, &digit) in digits.iter().enumerate() {
        let place = count - 1 - i;
        if digit == 0 {
            pending_zero = true;
        } else {
            if pending_zero && !out.is_empty() {
                out.push('零');
            }
            pending_zero = false;
            out.push(DIGITS[digit]);
            out.push_str(PLACE_UNITS[place % 4]);
        }
        if place.is_multiple_of(4) && place > 0 {
            let group = place / 4;
            let group_value = (yuan / 10_000_i64.pow(group as u32)) % 10_000;
            if group_value != 0 {
                out.push_str(GROUP_UNITS.get(group).copied().unwrap_or(""));
                // Zeros that end a 万 or 亿 group are not written when the group is written:
                // 10 5000 is 壹拾万伍仟 (the rules allow either form; this is the shorter).
                pending_zero = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(fen: i64) -> String {
        capital_amount(fen).unwrap()
    }

    #[test]
    fn formats_yuan_with_two_decimals() {
        assert_eq!(format_yuan(0), "0.00");
        assert_eq!(format_yuan(5), "0.05");
        assert_eq!(format_yuan(10), "0.10");
        assert_eq!(format_yuan(43000), "430.00");
        assert_eq!(format_yuan(43050), "430.50");
        assert_eq!(format_yuan(100005), "1000.05");
        assert_eq!(format_yuan(1_000_000_000), "10000000.00");
        assert_eq!(format_yuan(-1230), "-12.30");
        assert_eq!(format_yuan(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn spells_the_examples() {
        assert_eq!(cap(43000), "肆佰叁拾元整");
        assert_eq!(cap(43050), "肆佰叁拾元伍角");
        assert_eq!(cap(100505), "壹仟零伍元零伍分");
        assert_eq!(cap(38000), "叁佰捌拾元整");
    }

    #[test]
    fn spells_small_amounts() {
        assert_eq!(cap(0), "零元整");
        assert_eq!(cap(5), "伍分");
        assert_eq!(cap(10), "壹角");
        assert_eq!(cap(15), "壹角伍分");
        assert_eq!(cap(100), "壹元整");
        assert_eq!(cap(105), "壹元零伍分");
        assert_eq!(cap(110), "壹元壹角");
        assert_eq!(cap(1000), "壹拾元整");
        assert_eq!(cap(1580), "壹拾伍元捌角");
        assert_eq!(cap(1999), "壹拾玖元玖角玖分");
    }

    #[test]
    fn collapses_zeros_inside_the_yuan() {
        assert_eq!(cap(100005), "壹仟元零伍分");
        assert_eq!(cap(100500), "壹仟零伍元整");
        assert_eq!(cap(105000), "壹仟零伍拾元整");
        assert_eq!(cap(100100), "壹仟零壹元整");
        assert_eq!(cap(150000), "壹仟伍佰元整");
        assert_eq!(cap(10_100), "壹佰零壹元整");
        assert_eq!(cap(10_000_000), "壹拾万元整");
        assert_eq!(cap(11_000_000), "壹拾壹万元整");
        assert_eq!(cap(10_500_000), "壹拾万伍仟元整");
        assert_eq!(cap(10_050_000), "壹拾万零伍佰元整");
        assert_eq!(cap(100_000_000), "壹佰万元整");
        assert_eq!(cap(1_000_000_000), "壹仟万元整");
        assert_eq!(cap(1_000_500_000), "壹仟万伍仟元整");
        // The rules' own examples (¥107000.53, ¥1680.32), in the forms without the optional 零.
        assert_eq!(cap(10_700_053), "壹拾万柒仟元伍角叁分");
        assert_eq!(cap(168_032), "壹仟陆佰捌拾元叁角贰分");
        assert_eq!(cap(1_000_000_500), "壹仟万零伍元整");
        assert_eq!(cap(1_234_567_890), "壹仟贰佰叁拾肆万伍仟陆佰柒拾捌元玖角");
    }

    #[test]
    fn crosses_the_yi_group() {
        assert_eq!(cap(10_000_000_000), "壹亿元整");
        assert_eq!(cap(10_000_000_500), "壹亿零伍元整");
        assert_eq!(cap(10_000_500_000), "壹亿零伍仟元整");
        assert_eq!(cap(10_500_000_000), "壹亿零伍佰万元整");
        assert_eq!(cap(10_001_000_000), "壹亿零壹万元整");
        assert_eq!(cap(10_010_000_000), "壹亿零壹拾万元整");
        assert_eq!(cap(12_000_000_000), "壹亿贰仟万元整");
        assert_eq!(cap(10_000_010_001), "壹亿零壹佰元零壹分");
        assert_eq!(
            cap(MAX_RECEIPT_FEN - 1),
            "玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"
        );
        assert_eq!(cap(MAX_RECEIPT_FEN), "壹仟亿元整");
    }

    #[test]
    fn refuses_amounts_out_of_range() {
        assert!(matches!(
            capital_amount(-1),
            Err(ReceiptPdfError::AmountOutOfRange { fen: -1, .. })
        ));
        assert!(capital_amount(MAX_RECEIPT_FEN + 1).is_err());
        assert!(capital_amount(i64::MAX).is_err());
        assert!(capital_amount(i64::MIN).is_err());
    }

    /// Every amount up to 10 000 yuan in steps that hit every digit pattern spells without a
    /// doubled 零, never ends in 零, and uses 整 exactly when there are no 角 and 分.
    #[test]
    fn spelling_is_well_formed_across_a_range() {
        for fen in (0..1_000_000_i64).step_by(7) {
            let s = cap(fen);
            assert!(!s.contains("零零"), "{fen}: {s}");
            assert!(!s.starts_with('零') || fen == 0, "{fen}: {s}");
            assert_eq!(s.ends_with('整'), fen % 100 == 0, "{fen}: {s}");
            assert!(!s.contains("零元") || fen == 0, "{fen}: {s}");
            assert!(!s.contains("零万") && !s.contains("零亿"), "{fen}: {s}");
        }
    }
}
