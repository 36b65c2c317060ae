//! A JSON extractor whose rejections are [`ServiceError`]s with Chinese messages.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ErrorCode, ServiceError};

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejection_to_error(&rejection)),
        }
    }
}

fn rejection_to_error(rejection: &JsonRejection) -> ServiceError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ServiceError::of(ErrorCode::UnsupportedMediaType)
        }
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ServiceError::of(ErrorCode::PayloadTooLarge)
        }
        JsonRejection::JsonDataError(e) => ServiceError::new(
            ErrorCode::InvalidRequest,
            translate_rejection(&e.body_text())
                .unwrap_or_else(|| "请求字段缺失或类型不对，请检查后重试".to_owned()),
        ),
        JsonRejection::JsonSyntaxError(e) => ServiceError::new(
            ErrorCode::InvalidRequest,
            translate_rejection(&e.body_text())
                .unwrap_or_else(|| "请求内容不是有效的 JSON，请检查格式".to_owned()),
        ),
        _ => ServiceError::of(ErrorCode::InvalidRequest),
    }
}

/// Reads a parsed file's or body's value as `T`, or says in Chinese which field of `location` is
/// wrong and how (an unknown key is refused with the keys allowed), never echoing the value.
pub fn from_value<T: DeserializeOwned>(
    location: &str,
    value: serde_json::Value,
) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| describe_serde(location, &e.to_string()))
}

/// Rewrites the text of an axum rejection (a JSON body, query string or path that did not
/// deserialize) as a Chinese message naming the field and what is wrong with it. `None` when the
/// text is not a rejection we know; the caller then answers its generic message. Never returns
/// serde's English, and never echoes the value sent (it may be personal data).
pub fn translate_rejection(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(rest) =
        text.strip_prefix("Failed to deserialize the JSON body into the target type: ")
    {
        return Some(describe_serde("请求内容", rest));
    }
    if let Some(rest) = text.strip_prefix("Failed to parse the request body as JSON: ") {
        return Some(match line_column(rest) {
            Some((line, column)) => {
                format!("请求内容不是有效的 JSON：第{line}行第{column}列附近有误，请检查格式")
            }
            None => "请求内容不是有效的 JSON，请检查格式".to_owned(),
        });
    }
    if let Some(rest) = text.strip_prefix("Failed to deserialize query string: ") {
        return Some(describe_serde("查询参数", rest));
    }
    if let Some(rest) = text.strip_prefix("Invalid URL: ") {
        return Some(describe_path(rest));
    }
    if text.starts_with("Wrong number of path arguments") || text.starts_with("Unsupported type") {
        return Some("请求地址格式不正确，请检查地址".to_owned());
    }
    None
}

/// `… at line 3 column 7` → (3, 7).
fn line_column(text: &str) -> Option<(u64, u64)> {
    let at = text.rfind(" at line ")?;
    let (line, column) = text[at + " at line ".len()..].split_once(" column ")?;
    Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
}

fn strip_position(text: &str) -> &str {
    match text.rfind(" at line ") {
        Some(at) if line_column(text).is_some() => &text[..at],
        _ => text,
    }
}

/// The names between backticks: "unknown variant `x`, expected one of `a`, `b`" → [x, a, b].
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn join_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// What serde says a value should have been, in Chinese.
fn expected_zh(expected: &str) -> &'static str {
    let e = expected.to_ascii_lowercase();
    if e.contains("date") {
        "YYYY-MM-DD 格式的日期"
    } else if e.contains("string") || e.contains("char") {
        "文本（字符串）"
    } else if e.contains("bool") {
        "true 或 false"
    } else if e.contains("f64") || e.contains("f32") || e.contains("float") {
        "数字"
    } else if [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize", "integer",
    ]
    .iter()
    .any(|t| e.contains(t))
    {
        "整数"
    } else if e.contains("sequence")
        || e.contains("tuple")
        || e.contains("array")
        || e.contains("vec")
    {
        "数组"
    } else if e.contains("struct") || e.contains("map") {
        "对象"
    } else {
        "正确的格式"
    }
}

/// What serde says it found instead, in Chinese (never the value itself).
fn found_zh(found: &str) -> &'static str {
    let f = found.trim_start();
    if f.starts_with("integer") {
        "整数"
    } else if f.starts_with("floating point") {
        "小数"
    } else if f.starts_with("string") || f.starts_with("char") {
        "文本"
    } else if f.starts_with("boolean") {
        "true/false"
    } else if f.starts_with("null") || f.starts_with("unit") {
        "空值 null"
    } else if f.starts_with("sequence") {
        "数组"
    } else if f.starts_with("map") {
        "对象"
    } else {
        "无法识别的值"
    }
}

/// One deserialization error (serde, serde_path_to_error, integer and chrono parsing) in Chinese.
fn describe_serde(location: &str, text: &str) -> String {
    let text = strip_position(text);
    // serde_path_to_error puts "path: " first unless the error is at the top level.
    let (path, message) = match text.split_once(": ") {
        Some((path, message))
            if !path.is_empty()
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.[]?-".contains(c)) =>
        {
            (path.trim_start_matches('.'), message)
        }
        _ => ("", text),
    };
    let field = |p: &str| {
        if p.is_empty() {
            location.to_owned()
        } else {
            format!("{location}中的字段 {p} ")
        }
    };
    let names = quoted(message);
    if message.starts_with("missing field") {
        let name = join_path(path, names.first().copied().unwrap_or("?"));
        return format!("{location}缺少必填字段 {name}");
    }
    if message.starts_with("unknown field") {
        let name = join_path(path, names.first().copied().unwrap_or("?"));
        let allowed = names.get(1..).unwrap_or_default().join("、");
        return if allowed.is_empty() {
            format!("{location}含有不认识的字段 {name}")
        } else {
            format!("{location}含有不认识的字段 {name}（可用的字段：{allowed}）")
        };
    }
    if message.starts_with("duplicate field") {
        let name = join_path(path, names.first().copied().unwrap_or("?"));
        return format!("{location}中的字段 {name} 出现了不止一次");
    }
    if message.starts_with("unknown variant") {
        let allowed = names.get(1..).unwrap_or_default().join("、");
        return format!("{}的取值不在可选范围内，可选：{allowed}", field(path));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return format!(
            "{}类型不对：应为{}，收到的是{}",
            field(path),
            expected_zh(expected),
            found_zh(found)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        return format!("{}的值不合要求：应为{}", field(path), expected_zh(expected));
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        return format!(
            "{}的元素个数不对：应为{}",
            field(path),
            expected_zh(expected)
        );
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("number too large") || lower.contains("number too small") {
        return format!("{}超出整数的范围", field(path));
    }
    if lower.contains("invalid digit") || lower.contains("cannot parse integer") {
        return format!("{}应为整数", field(path));
    }
    if lower.contains("invalid float") {
        return format!("{}应为数字", field(path));
    }
    if lower.contains("`true` or `false`") {
        return format!("{}应为 true 或 false", field(path));
    }
    if [
        "input contains invalid characters",
        "premature end of input",
        "input is out of range",
        "trailing input",
        "input is not enough",
        "no possible date",
        "impossible",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return format!(
            "{}不是有效的日期，应为 YYYY-MM-DD 格式的真实日期",
            field(path)
        );
    }
    if lower.contains("eof while parsing") {
        return format!("{location}不完整，请检查格式");
    }
    format!("{}无法识别，请检查格式", field(path))
}

/// A path parameter that did not parse (axum's `Invalid URL: …`).
fn describe_path(text: &str) -> String {
    let names = quoted(text);
    if let Some(rest) = text.strip_prefix("Cannot parse value at index ") {
        let index: usize = rest
            .split_whitespace()
            .next()
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let expected = names.last().copied().unwrap_or_default();
        return format!(
            "请求地址中的第 {} 个参数应为{}",
            index + 1,
            expected_zh(expected)
        );
    }
    if text.starts_with("Cannot parse `") {
        if text.contains("` with value `") {
            let key = names.first().copied().unwrap_or("?");
            if text.contains("` to a `") {
                let expected = names.last().copied().unwrap_or_default();
                return format!("请求地址中的参数 {key} 应为{}", expected_zh(expected));
            }
            return format!("请求地址中的参数 {key} 无法识别");
        }
        let expected = names.last().copied().unwrap_or_default();
        return format!("请求地址中的参数应为{}", expected_zh(expected));
    }
    if text.starts_with("Invalid UTF-8 in `") {
        let key = names.first().copied().unwrap_or("?");
        return format!("请求地址中的参数 {key} 含有无效的字符编码");
    }
    "请求地址格式不正确，请检查地址".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        username: String,
        count: Option<u32>,
        kind: Option<Kind>,
        day: Option<chrono::NaiveDate>,
        items: Option<Vec<Item>>,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Payment,
        Refund,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    struct Item {
        amount: i64,
    }

    /// The rejection text axum makes of `json` sent for `Body`: serde's own message, after the
    /// field's path as serde_path_to_error writes it (given here, "" at the top level).
    fn rejection_of(path: &str, json: &str) -> String {
        let serde = serde_json::from_str::<Body>(json).unwrap_err().to_string();
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        format!("Failed to deserialize the JSON body into the target type: {prefix}{serde}")
    }

    fn translated(text: &str) -> String {
        let out = translate_rejection(text).expect("a known rejection");
        assert!(
            !out.contains("Failed") && !out.contains("expected") && !out.contains("invalid"),
            "English left in {out:?}"
        );
        out
    }

    #[test]
    fn every_kind_of_body_error_is_chinese_and_names_the_field() {
        let t = translated(&rejection_of("", r#"{"count": 1}"#));
        assert_eq!(t, "请求内容缺少必填字段 username");
        let t = translated(&rejection_of("", r#"{"username": "a", "passwrd": 1}"#));
        assert!(
            t.starts_with("请求内容含有不认识的字段 passwrd（可用的字段：username、"),
            "{t}"
        );
        let t = translated(&rejection_of("count", r#"{"username": "a", "count": "x"}"#));
        assert_eq!(t, "请求内容中的字段 count 类型不对：应为整数，收到的是文本");
        let t = translated(&rejection_of(
            "kind",
            r#"{"username": "a", "kind": "cash"}"#,
        ));
        assert_eq!(
            t,
            "请求内容中的字段 kind 的取值不在可选范围内，可选：payment、refund"
        );
        let t = translated(&rejection_of(
            "day",
            r#"{"username": "a", "day": "2025-02-30"}"#,
        ));
        assert_eq!(
            t,
            "请求内容中的字段 day 不是有效的日期，应为 YYYY-MM-DD 格式的真实日期"
        );
        let t = translated(&rejection_of(
            "items[0]",
            r#"{"username": "a", "items": [{}]}"#,
        ));
        assert_eq!(t, "请求内容缺少必填字段 items[0].amount");
        let t = translated(&rejection_of("count", r#"{"username": "a", "count": -1}"#));
        assert_eq!(t, "请求内容中的字段 count 的值不合要求：应为整数");
        let t = translated(&rejection_of("", r#""x""#));
        assert_eq!(t, "请求内容类型不对：应为对象，收到的是文本");
        let t = translated(
            "Failed to parse the request body as JSON: expected value at line 1 column 5",
        );
        assert_eq!(t, "请求内容不是有效的 JSON：第1行第5列附近有误，请检查格式");
    }

    #[test]
    fn query_and_path_errors_are_chinese_and_name_the_parameter() {
        assert_eq!(
            translated(
                "Failed to deserialize query string: fee_year: invalid digit found in string"
            ),
            "查询参数中的字段 fee_year 应为整数"
        );
        assert_eq!(
            translated("Failed to deserialize query string: missing field `check_code`"),
            "查询参数缺少必填字段 check_code"
        );
        assert_eq!(
            translated(
                "Failed to deserialize query string: from: input contains invalid characters"
            ),
            "查询参数中的字段 from 不是有效的日期，应为 YYYY-MM-DD 格式的真实日期"
        );
        assert_eq!(
            translated("Invalid URL: Cannot parse `fee_year` with value `abc` to a `i64`"),
            "请求地址中的参数 fee_year 应为整数"
        );
        assert_eq!(
            translated("Invalid URL: Cannot parse value at index 1 with value `abc` to a `i64`"),
            "请求地址中的第 2 个参数应为整数"
        );
        assert_eq!(translate_rejection("something else"), None);
    }
}
