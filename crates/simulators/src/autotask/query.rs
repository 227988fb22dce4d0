//! The Autotask query language (`filter` with 13 operators, `and`/`or` groups, one UDF),
//! `MaxRecords`, `IncludeFields` and id-keyed paging.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

/// Largest page Autotask serves.
pub(crate) const MAX_PAGE: usize = 500;

/// Looks up `key` in a JSON object case-insensitively.
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A parsed query body.
#[derive(Debug, Clone)]
pub(crate) struct QuerySpec {
    pub(crate) filter: Vec<Value>,
    pub(crate) max_records: Option<usize>,
    pub(crate) include_fields: Option<Vec<String>>,
}

impl QuerySpec {
    pub(crate) fn page_size(&self) -> usize {
        self.max_records.unwrap_or(MAX_PAGE)
    }
}

/// What the query validator knows about an entity's fields.
#[derive(Debug, Default)]
pub(crate) struct FieldRules {
    /// lower-case field name -> queryable; `None` = accept any field.
    pub(crate) fields: Option<HashMap<String, bool>>,
    /// Entity name for error texts (singular, e.g. "Ticket").
    pub(crate) entity: &'static str,
}

/// Parses and validates a QueryModel body.
pub(crate) fn parse_query(body: &Value, rules: &FieldRules) -> Result<QuerySpec, String> {
    let Some(obj) = body.as_object() else {
        return Err("Invalid query: the query body must be a JSON object.".into());
    };
    let filter = match get_ci(obj, "filter") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        _ => return Err("Invalid query: filter is required.".into()),
    };
    let max_records = match get_ci(obj, "MaxRecords") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_PAGE as u64).contains(&n) => Some(n as usize),
            _ => return Err("MaxRecords must be between 1 and 500.".into()),
        },
    };
    let include_fields = match get_ci(obj, "IncludeFields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.is_empty() => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("IncludeFields must be an array of field names.")?,
        ),
        Some(_) => return Err("IncludeFields must be an array of field names.".into()),
    };
    let mut udfs = 0;
    for c in &filter {
        validate_condition(c, rules, &mut udfs)?;
    }
    if udfs > 1 {
        return Err("Only one user-defined field may be queried at a time.".into());
    }
    Ok(QuerySpec { filter, max_records, include_fields })
}

const OPS: [&str; 13] =
    ["eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains", "exist", "notexist", "in", "notin"];

fn validate_condition(c: &Value, rules: &FieldRules, udfs: &mut usize) -> Result<(), String> {
    let Some(obj) = c.as_object() else {
        return Err("Invalid query: each filter item must be an object.".into());
    };
    let op = get_ci(obj, "op").and_then(Value::as_str).unwrap_or("");
    let lop = op.to_ascii_lowercase();
    if lop == "and" || lop == "or" {
        let Some(Value::Array(items)) = get_ci(obj, "items") else {
            return Err(format!("Invalid query: '{op}' requires items."));
        };
        for i in items {
            validate_condition(i, rules, udfs)?;
        }
        return Ok(());
    }
    if !OPS.contains(&lop.as_str()) {
        return Err(format!("Invalid operator: {op}"));
    }
    let Some(field) = get_ci(obj, "field").and_then(Value::as_str) else {
        return Err("Invalid query: field is required.".into());
    };
    let udf = get_ci(obj, "udf").and_then(Value::as_bool).unwrap_or(false);
    if udf {
        *udfs += 1;
    } else if let Some(fields) = &rules.fields {
        match fields.get(&field.to_ascii_lowercase()) {
            None => {
                return Err(format!("Unable to find {field} in the {} entity.", rules.entity));
            }
            Some(false) => return Err(format!("Field {field} is not queryable.")),
            Some(true) => {}
        }
    }
    let value = get_ci(obj, "value");
    match lop.as_str() {
        "exist" | "notexist" => {}
        "in" | "notin" => {
            if !matches!(value, Some(Value::Array(_))) {
                return Err(format!("Invalid query: '{op}' requires an array value."));
            }
        }
        _ => {
            if value.is_none() {
                return Err(format!("Invalid query: '{op}' requires a value."));
            }
        }
    }
    Ok(())
}

/// Evaluates the top-level filter (ANDed) against one entity.
pub(crate) fn matches_all(item: &Value, filter: &[Value]) -> bool {
    filter.iter().all(|c| matches(item, c))
}

fn matches(item: &Value, cond: &Value) -> bool {
    let Some(obj) = cond.as_object() else {
        return false;
    };
    let op = get_ci(obj, "op").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    let items = || get_ci(obj, "items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    match op.as_str() {
        "and" => return items().iter().all(|c| matches(item, c)),
        "or" => return items().iter().any(|c| matches(item, c)),
        _ => {}
    }
    let field = get_ci(obj, "field").and_then(Value::as_str).unwrap_or("");
    let udf = get_ci(obj, "udf").and_then(Value::as_bool).unwrap_or(false);
    let actual = if udf {
        udf_value(item, field)
    } else {
        item.as_object().and_then(|o| get_ci(o, field)).cloned().unwrap_or(Value::Null)
    };
    let expected = get_ci(obj, "value").cloned().unwrap_or(Value::Null);
    eval(&op, &actual, &expected)
}

fn udf_value(item: &Value, name: &str) -> Value {
    item.as_object()
        .and_then(|o| get_ci(o, "userDefinedFields"))
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter().find(|u| {
                u.as_object()
                    .and_then(|o| get_ci(o, "name"))
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        })
        .and_then(|u| u.as_object().and_then(|o| get_ci(o, "value")).cloned())
        .unwrap_or(Value::Null)
}

fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// SQL-like semantics: a null field fails every comparison except `notExist`.
fn eval(op: &str, actual: &Value, expected: &Value) -> bool {
    match op {
        "exist" => !is_absent(actual),
        "notexist" => is_absent(actual),
        _ if actual.is_null() => false,
        "eq" => compare(actual, expected) == Some(Ordering::Equal),
        "noteq" => compare(actual, expected).is_some_and(|o| o != Ordering::Equal),
        "gt" => compare(actual, expected) == Some(Ordering::Greater),
        "gte" => compare(actual, expected).is_some_and(|o| o != Ordering::Less),
        "lt" => compare(actual, expected) == Some(Ordering::Less),
        "lte" => compare(actual, expected).is_some_and(|o| o != Ordering::Greater),
        "beginswith" => text(actual).starts_with(&text(expected)),
        "endswith" => text(actual).ends_with(&text(expected)),
        "contains" => text(actual).contains(&text(expected)),
        "in" => expected.as_array().is_some_and(|a| a.iter().any(|e| compare(actual, e) == Some(Ordering::Equal))),
        "notin" => expected.as_array().is_some_and(|a| a.iter().all(|e| compare(actual, e) != Some(Ordering::Equal))),
        _ => false,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        Value::Null => String::new(),
        other => other.to_string().to_lowercase(),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Parses ISO 8601 leniently: optional `Z`/offset, optional fraction; naive = UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

fn compare(actual: &Value, expected: &Value) -> Option<Ordering> {
    match actual {
        Value::Null => None,
        Value::Bool(a) => as_bool(expected).map(|b| a.cmp(&b)),
        Value::Number(_) => {
            let (a, b) = (as_f64(actual)?, as_f64(expected)?);
            a.partial_cmp(&b)
        }
        Value::String(a) => {
            if let Value::Number(_) = expected {
                let (a, b) = (as_f64(actual)?, as_f64(expected)?);
                return a.partial_cmp(&b);
            }
            if let Value::Bool(b) = expected {
                return as_bool(actual).map(|a| a.cmp(b));
            }
            let b = expected.as_str()?;
            if let (Some(x), Some(y)) = (parse_datetime(a), parse_datetime(b))
                && a.len() >= 10
                && b.len() >= 10
            {
                return Some(x.cmp(&y));
            }
            Some(a.to_lowercase().cmp(&b.to_lowercase()))
        }
        _ => None,
    }
}

/// The `id` of an entity (-1 when missing).
pub(crate) fn id_of(v: &Value) -> i64 {
    v.get("id").and_then(Value::as_i64).unwrap_or(-1)
}

/// Applies `IncludeFields`: the listed fields (entity casing), `id`, and `"userDefinedFields":[]`.
pub(crate) fn project(item: &Value, include: Option<&[String]>) -> Value {
    let Some(fields) = include else {
        return item.clone();
    };
    let Some(obj) = item.as_object() else {
        return item.clone();
    };
    let mut out = Map::new();
    if let Some(id) = obj.get("id") {
        out.insert("id".into(), id.clone());
    }
    for f in fields {
        if let Some((k, v)) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(f)) {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("userDefinedFields".into(), json!([]));
    Value::Object(out)
}

/// Paging state carried in `nextPageUrl`'s `paging` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) page_size: usize,
    /// Cursors of earlier pages (for `prevPageUrl`).
    pub(crate) previous: Vec<i64>,
    /// This page serves ids strictly greater than this cursor.
    pub(crate) cursor: i64,
}

impl Paging {
    pub(crate) fn first(page_size: usize) -> Self {
        Self { page_size, previous: Vec::new(), cursor: -1 }
    }

    pub(crate) fn to_json(&self) -> String {
        json!({"pageSize": self.page_size, "previousIds": self.previous, "nextIds": [self.cursor]}).to_string()
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(s).ok()?;
        let o = v.as_object()?;
        let page_size = get_ci(o, "pageSize")?.as_u64()? as usize;
        let previous = get_ci(o, "previousIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let cursor = get_ci(o, "nextIds")?.as_array()?.first()?.as_i64()?;
        Some(Self { page_size: page_size.clamp(1, MAX_PAGE), previous, cursor })
    }
}

/// One page of results plus the paging states of its neighbours.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) items: Vec<Value>,
    pub(crate) next: Option<Paging>,
    pub(crate) prev: Option<Paging>,
    pub(crate) page_size: usize,
}

/// Filters `rows` (any order), sorts by id and cuts the page described by `paging`.
pub(crate) fn run_page<'a>(rows: impl Iterator<Item = &'a Value>, spec: &QuerySpec, paging: &Paging) -> Page {
    let mut hits: Vec<&Value> = rows.filter(|r| id_of(r) > paging.cursor && matches_all(r, &spec.filter)).collect();
    hits.sort_by_key(|r| id_of(r));
    let size = paging.page_size;
    let more = hits.len() > size;
    hits.truncate(size);
    let items: Vec<Value> = hits.iter().map(|r| project(r, spec.include_fields.as_deref())).collect();
    let next = if more {
        let mut previous = paging.previous.clone();
        previous.push(paging.cursor);
        Some(Paging { page_size: size, previous, cursor: hits.last().map_or(paging.cursor, |r| id_of(r)) })
    } else {
        None
    };
    let prev = paging.previous.last().map(|c| Paging {
        page_size: size,
        previous: paging.previous[..paging.previous.len() - 1].to_vec(),
        cursor: *c,
    });
    Page { items, next, prev, page_size: size }
}

/// Counts matching rows.
pub(crate) fn count<'a>(rows: impl Iterator<Item = &'a Value>, spec: &QuerySpec) -> usize {
    rows.filter(|r| matches_all(r, &spec.filter)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(op: &str, a: Value, e: Value) -> bool {
        eval(op, &a, &e)
    }

    #[test]
    fn operators() {
        assert!(t("eq", json!(5), json!(5)));
        assert!(t("eq", json!(5), json!("5")));
        assert!(t("eq", json!("Acme"), json!("acme")));
        assert!(t("noteq", json!(1), json!(5)));
        assert!(!t("noteq", Value::Null, json!(5)));
        assert!(t("gt", json!(6), json!(5)));
        assert!(t("gte", json!(5), json!(5)));
        assert!(t("lt", json!(4), json!(5)));
        assert!(t("lte", json!(5), json!(5)));
        assert!(t("beginswith", json!("Acme Corp"), json!("acme")));
        assert!(t("endswith", json!("Acme Corp"), json!("CORP")));
        assert!(t("contains", json!("Acme Corp"), json!("e c")));
        assert!(t("exist", json!(1), Value::Null));
        assert!(!t("exist", json!(""), Value::Null));
        assert!(t("notexist", Value::Null, Value::Null));
        assert!(t("in", json!(2), json!([1, 2])));
        assert!(t("notin", json!(3), json!([1, 2])));
        assert!(t("eq", json!(true), json!(true)));
        assert!(!t("eq", json!(true), json!(false)));
        assert!(t("gt", json!("2030-01-15T17:00:00.000Z"), json!("2030-01-15T16:00:00")));
    }

    #[test]
    fn paging_roundtrip() {
        let p = Paging { page_size: 500, previous: vec![-1, 500], cursor: 1000 };
        assert_eq!(Paging::parse(&p.to_json()), Some(p));
    }
}
