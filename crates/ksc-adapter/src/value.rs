//! KSC "params" values: plain JSON for strings, booleans, integers and arrays, and typed
//! wrappers `{"type": "...", "value": ...}` for everything JSON cannot say on its own
//! (`ksc-api.md` §2).
//!
//! [`Value::from_json`] reads any JSON the server sends; [`Value::to_json`] writes the same
//! encoding back, so request bodies use it too (a filter's datetime, a `long`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value as Json, json};

/// The exact datetime wire format: `%Y-%m-%dT%H:%M:%SZ`, UTC, no fractional seconds.
pub const DATETIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// One KSC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null` (allowed inside arrays).
    Null,
    /// A boolean.
    Bool(bool),
    /// A plain JSON integer (KSC `int`).
    Int(i64),
    /// A plain JSON number with a fraction.
    Number(f64),
    /// A string.
    String(String),
    /// `{"type":"long","value":N}`: a 64-bit integer.
    Long(i64),
    /// `{"type":"datetime","value":"...Z"}`; `None` for the empty datetime `""`.
    DateTime(Option<DateTime<Utc>>),
    /// `{"type":"date","value":"..."}`, kept as the server wrote it.
    Date(String),
    /// `{"type":"binary","value":"<base64>"}`, decoded.
    Binary(Vec<u8>),
    /// `{"type":"float"|"double","value":x}`.
    Float(f64),
    /// A container: `{"type":"params","value":{...}}`, or a bare JSON object.
    Params(Params),
    /// A plain JSON array.
    Array(Vec<Self>),
}

/// The fields of a container, by name.
pub type Params = BTreeMap<String, Value>;

/// Why a JSON value is not a valid KSC value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} value: {detail}")]
pub struct ValueError {
    /// The typed wrapper's `type` word.
    pub kind: String,
    /// What was wrong.
    pub detail: String,
}

fn verr(kind: &str, detail: impl Into<String>) -> ValueError {
    ValueError { kind: kind.to_owned(), detail: detail.into() }
}

/// Parses a KSC datetime string (`2019-10-26T23:17:09Z`); tolerates fractional seconds and
/// offsets, which the server does not send but other tools might.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, DATETIME_FORMAT)
        .map(|n| n.and_utc())
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc)))
}

/// [`parse_datetime`] with a fast path for the exact wire format (`2019-10-26T23:17:09Z`,
/// 20 bytes): read digit by digit instead of through chrono's format interpreter. Anything
/// else (a leap second, fractions, offsets, whitespace, an invalid date) goes to
/// [`parse_datetime`], so the answer is always the same as its.
pub fn parse_wire_datetime(s: &str) -> Option<DateTime<Utc>> {
    strict_wire_datetime(s.as_bytes()).or_else(|| parse_datetime(s))
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a valid date and seconds below 60, else `None`.
fn strict_wire_datetime(b: &[u8]) -> Option<DateTime<Utc>> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1, b'Z'] = *b else {
        return None;
    };
    let digit = |c: u8| if c.is_ascii_digit() { Some(u32::from(c - b'0')) } else { None };
    let two = |a, b| Some(digit(a)? * 10 + digit(b)?);
    let year = two(y0, y1)? * 100 + two(y2, y3)?;
    let (month, day) = (two(m0, m1)?, two(d0, d1)?);
    let (hour, min, sec) = (two(h0, h1)?, two(i0, i1)?, two(s0, s1)?);
    if sec >= 60 {
        // chrono reads `60` as a leap second; leave that to it.
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(date.and_hms_opt(hour, min, sec)?.and_utc())
}

/// Formats a datetime in the exact wire format.
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    t.format(DATETIME_FORMAT).to_string()
}

impl Value {
    /// Reads a value from the server's JSON.
    pub fn from_json(json: &Json) -> Result<Self, ValueError> {
        Ok(match json {
            Json::Null => Self::Null,
            Json::Bool(b) => Self::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Self::Int(i),
                None => Self::Number(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Self::String(s.clone()),
            Json::Array(items) => Self::Array(items.iter().map(Self::from_json).collect::<Result<_, _>>()?),
            Json::Object(map) => {
                let typed = match (map.get("type"), map.get("value")) {
                    (Some(Json::String(t)), Some(v)) if map.len() == 2 => Some((t.as_str(), v)),
                    _ => None,
                };
                match typed {
                    Some((t, v)) => Self::from_typed(t, v)?,
                    None => Self::Params(parse_params(map)?),
                }
            }
        })
    }

    fn from_typed(kind: &str, v: &Json) -> Result<Self, ValueError> {
        Ok(match kind {
            "params" => match v {
                Json::Object(map) => Self::Params(parse_params(map)?),
                Json::Null => Self::Params(Params::new()),
                other => return Err(verr(kind, format!("expected an object, got {other}"))),
            },
            "long" => Self::Long(match v {
                Json::Number(n) => n.as_i64().ok_or_else(|| verr(kind, format!("{n} is not a 64-bit integer")))?,
                Json::String(s) => s.parse().map_err(|_| verr(kind, format!("{s:?} is not an integer")))?,
                other => return Err(verr(kind, format!("expected an integer, got {other}"))),
            }),
            "datetime" => match v {
                Json::String(s) if s.is_empty() => Self::DateTime(None),
                Json::Null => Self::DateTime(None),
                Json::String(s) => Self::DateTime(Some(
                    parse_datetime(s).ok_or_else(|| verr(kind, format!("{s:?} is not a datetime")))?,
                )),
                other => return Err(verr(kind, format!("expected a string, got {other}"))),
            },
            "date" => match v {
                Json::String(s) => Self::Date(s.clone()),
                other => return Err(verr(kind, format!("expected a string, got {other}"))),
            },
            "binary" => match v {
                Json::String(s) => Self::Binary(B64.decode(s).map_err(|e| verr(kind, e.to_string()))?),
                other => return Err(verr(kind, format!("expected base64 text, got {other}"))),
            },
            "float" | "double" => match v {
                Json::Number(n) => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
                other => return Err(verr(kind, format!("expected a number, got {other}"))),
            },
            other => return Err(verr(other, "unknown value type")),
        })
    }

    /// Writes the value in the server's encoding.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(*b),
            Self::Int(i) => json!(i),
            Self::Number(f) => json!(f),
            Self::String(s) => Json::String(s.clone()),
            Self::Long(i) => json!({"type": "long", "value": i}),
            Self::DateTime(t) => json!({
                "type": "datetime",
                "value": t.as_ref().map(format_datetime).unwrap_or_default(),
            }),
            Self::Date(s) => json!({"type": "date", "value": s}),
            Self::Binary(b) => json!({"type": "binary", "value": B64.encode(b)}),
            Self::Float(f) => json!({"type": "double", "value": f}),
            Self::Params(p) => json!({"type": "params", "value": params_to_json(p)}),
            Self::Array(items) => Json::Array(items.iter().map(Self::to_json).collect()),
        }
    }

    /// An integer, whether plain (`int`) or `long`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) | Self::Long(i) => Some(*i),
            _ => None,
        }
    }

    /// A string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// A boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A non-empty datetime.
    pub fn as_datetime(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::DateTime(t) => *t,
            _ => None,
        }
    }

    /// A container.
    pub fn as_params(&self) -> Option<&Params> {
        match self {
            Self::Params(p) => Some(p),
            _ => None,
        }
    }

    /// An array.
    pub fn as_array(&self) -> Option<&[Self]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The type word used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Number(_) => "number",
            Self::String(_) => "string",
            Self::Long(_) => "long",
            Self::DateTime(_) => "datetime",
            Self::Date(_) => "date",
            Self::Binary(_) => "binary",
            Self::Float(_) => "double",
            Self::Params(_) => "params",
            Self::Array(_) => "array",
        }
    }
}

/// Reads the members of a JSON object as a container.
pub fn parse_params(map: &serde_json::Map<String, Json>) -> Result<Params, ValueError> {
    map.iter().map(|(k, v)| Ok((k.clone(), Value::from_json(v)?))).collect()
}

/// Writes a container's members as a bare JSON object (the `value` of a `params` wrapper, or
/// a method's top-level input).
pub fn params_to_json(p: &Params) -> Json {
    Json::Object(p.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let src = json!([
            null, true, 7, 1.5, "x",
            {"type": "long", "value": 9007199254740993_i64},
            {"type": "datetime", "value": "2019-10-26T23:17:09Z"},
            {"type": "datetime", "value": ""},
            {"type": "date", "value": "2020-01-02"},
            {"type": "binary", "value": "AAEC"},
            {"type": "double", "value": 0.25},
            {"type": "params", "value": {"a": 1}}
        ]);
        let v = Value::from_json(&src).unwrap();
        assert_eq!(v.to_json(), src);
    }

    #[test]
    fn the_wire_datetime_fast_path_answers_as_chrono_does() {
        let mut cases = vec![
            String::new(),
            "2019-10-26T23:17:09Z".into(),
            "2019-10-26T23:17:09z".into(),
            "2019-10-26t23:17:09Z".into(),
            " 2019-10-26T23:17:09Z".into(),
            "2019-10-26T23:17:09Z ".into(),
            "2019-10-26T23:17:09.5Z".into(),
            "2019-10-26T23:17:09+02:00".into(),
            "+2019-10-26T23:17:09Z".into(),
            "2019-1-26T23:17:09Z".into(),
            "2019-10-26T23:17:6Z".into(),
            "201a-10-26T23:17:09Z".into(),
            "2019-10-26 23:17:09Z".into(),
            "yesterday".into(),
            "２019-10-26T23:17:09Z".into(),
        ];
        for year in ["0000", "0001", "1900", "1970", "2000", "2023", "2024", "9999"] {
            for month in 0..=13 {
                for day in [0, 1, 28, 29, 30, 31, 32] {
                    cases.push(format!("{year}-{month:02}-{day:02}T12:00:00Z"));
                }
            }
        }
        for (h, m, sec) in [(0, 0, 0), (23, 59, 59), (23, 59, 60), (24, 0, 0), (12, 60, 0), (12, 0, 61), (99, 99, 99)] {
            cases.push(format!("2016-12-31T{h:02}:{m:02}:{sec:02}Z"));
        }
        for s in &cases {
            assert_eq!(parse_wire_datetime(s), parse_datetime(s), "{s:?}");
        }
        assert!(strict_wire_datetime(b"2024-02-29T23:59:59Z").is_some(), "the fast path is taken");
        assert_eq!(strict_wire_datetime(b"2016-12-31T23:59:60Z"), None, "a leap second goes to chrono");
    }

    #[test]
    fn rejects_bad_typed_values() {
        assert!(Value::from_json(&json!({"type": "datetime", "value": "yesterday"})).is_err());
        assert!(Value::from_json(&json!({"type": "long", "value": "x"})).is_err());
        assert!(Value::from_json(&json!({"type": "weird", "value": 1})).is_err());
    }
}
