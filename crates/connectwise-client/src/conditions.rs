//! A typed builder for ConnectWise's `conditions` query language.
//!
//! ```
//! use connectwise_client::conditions::Condition;
//! let c = Condition::eq("externalXRef", "kmsp-1")
//!     .and(Condition::or([Condition::eq("closedFlag", false), Condition::is_in("id", [1, 2])]));
//! assert_eq!(c.build().unwrap(), r#"externalXRef = "kmsp-1" AND (closedFlag = False OR id in (1,2))"#);
//! ```
//!
//! The syntax (connectwise-api.md, verified): strings in double quotes, datetimes in brackets
//! `[2016-08-20T18:04:26Z]`, booleans `True`/`False`, references by path (`board/id`), operators
//! `= != < <= > >= contains like in not`, `AND`/`OR`, parentheses. Inferred and documented in
//! `docs/protocols/connectwise.md`: a `"` or `\` inside a string is escaped with a backslash;
//! `like` takes `%` as its wildcard ([`like_prefix`] escapes nothing, so the caller must check
//! results exactly, which the sink does).
//!
//! [`Condition::build`] refuses what would be misread rather than sent: field names outside
//! `[A-Za-z0-9_/]`, strings with control characters (a newline would end the condition), empty
//! `in` lists and empty groups.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::Error;

/// A literal on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `"text"`, escaped.
    Str(String),
    /// An integer.
    Int(i64),
    /// `True` / `False`.
    Bool(bool),
    /// `[2016-08-20T18:04:26Z]`.
    DateTime(DateTime<Utc>),
    /// `null`.
    Null,
}

impl From<&str> for Literal {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}
impl From<String> for Literal {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}
impl From<i64> for Literal {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for Literal {
    fn from(v: i32) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<DateTime<Utc>> for Literal {
    fn from(v: DateTime<Utc>) -> Self {
        Self::DateTime(v)
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `like` (`%` wildcard)
    Like,
}

impl Op {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Contains => "contains",
            Self::Like => "like",
        }
    }
}

/// A condition tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `field op literal`
    Cmp {
        /// Field path (`summary`, `board/id`).
        field: String,
        /// Operator.
        op: Op,
        /// Right-hand side.
        value: Literal,
    },
    /// `field in (a,b)` / `field not in (a,b)`
    In {
        /// Field path.
        field: String,
        /// The set.
        values: Vec<Literal>,
        /// `not in`.
        negated: bool,
    },
    /// Every child holds.
    And(Vec<Self>),
    /// Some child holds.
    Or(Vec<Self>),
}

impl Condition {
    /// `field op value`.
    pub fn cmp(field: impl Into<String>, op: Op, value: impl Into<Literal>) -> Self {
        Self::Cmp { field: field.into(), op, value: value.into() }
    }
    /// `field = value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Literal>) -> Self {
        Self::cmp(field, Op::Eq, value)
    }
    /// `field != value`.
    pub fn ne(field: impl Into<String>, value: impl Into<Literal>) -> Self {
        Self::cmp(field, Op::Ne, value)
    }
    /// `field >= value`.
    pub fn ge(field: impl Into<String>, value: impl Into<Literal>) -> Self {
        Self::cmp(field, Op::Ge, value)
    }
    /// `field > value`.
    pub fn gt(field: impl Into<String>, value: impl Into<Literal>) -> Self {
        Self::cmp(field, Op::Gt, value)
    }
    /// `field contains "value"`.
    pub fn contains(field: impl Into<String>, value: impl Into<String>) -> Self {
        Self::cmp(field, Op::Contains, Literal::Str(value.into()))
    }
    /// `field like "pattern"` (the caller writes the `%`).
    pub fn like(field: impl Into<String>, pattern: impl Into<String>) -> Self {
        Self::cmp(field, Op::Like, Literal::Str(pattern.into()))
    }
    /// `field in (v, …)`.
    pub fn is_in<V: Into<Literal>>(field: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        Self::In { field: field.into(), values: values.into_iter().map(Into::into).collect(), negated: false }
    }
    /// `field not in (v, …)`.
    pub fn not_in<V: Into<Literal>>(field: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        Self::In { field: field.into(), values: values.into_iter().map(Into::into).collect(), negated: true }
    }
    /// Every one of `parts`.
    pub fn all(parts: impl IntoIterator<Item = Self>) -> Self {
        Self::And(parts.into_iter().collect())
    }
    /// Any one of `parts`.
    pub fn or(parts: impl IntoIterator<Item = Self>) -> Self {
        Self::Or(parts.into_iter().collect())
    }
    /// `self AND other` (flattening).
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        match self {
            Self::And(mut v) => {
                v.push(other);
                Self::And(v)
            }
            c => Self::And(vec![c, other]),
        }
    }

    /// The condition string, or why it cannot be sent.
    pub fn build(&self) -> Result<String, Error> {
        let mut out = String::new();
        self.write(&mut out, false)?;
        Ok(out)
    }

    fn write(&self, out: &mut String, nested: bool) -> Result<(), Error> {
        match self {
            Self::Cmp { field, op, value } => {
                check_field(field)?;
                let _ = write!(out, "{field} {} ", op.as_str());
                write_literal(out, value)?;
            }
            Self::In { field, values, negated } => {
                check_field(field)?;
                if values.is_empty() {
                    return Err(Error::InvalidRequest(format!("empty `in` list for {field}")));
                }
                let _ = write!(out, "{field} {}in (", if *negated { "not " } else { "" });
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_literal(out, v)?;
                }
                out.push(')');
            }
            Self::And(parts) | Self::Or(parts) => {
                let joiner = if matches!(self, Self::And(_)) { " AND " } else { " OR " };
                if parts.is_empty() {
                    return Err(Error::InvalidRequest("empty condition group".into()));
                }
                if parts.len() == 1 {
                    return parts[0].write(out, nested);
                }
                if nested {
                    out.push('(');
                }
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(joiner);
                    }
                    p.write(out, true)?;
                }
                if nested {
                    out.push(')');
                }
            }
        }
        Ok(())
    }
}

fn check_field(field: &str) -> Result<(), Error> {
    let ok = !field.is_empty()
        && !field.starts_with('/')
        && !field.ends_with('/')
        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/');
    if ok { Ok(()) } else { Err(Error::InvalidRequest(format!("bad condition field name {field:?}"))) }
}

/// Escapes a string literal: `\` → `\\`, `"` → `\"`, in double quotes. Control characters are
/// refused.
pub fn quote(s: &str) -> Result<String, Error> {
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidRequest("condition strings cannot hold control characters".into()));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

fn write_literal(out: &mut String, v: &Literal) -> Result<(), Error> {
    match v {
        Literal::Str(s) => out.push_str(&quote(s)?),
        Literal::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Literal::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Literal::DateTime(t) => {
            let _ = write!(out, "[{}]", t.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        Literal::Null => out.push_str("null"),
    }
    Ok(())
}

/// `like` pattern for "starts with `prefix`": `prefix%`. SQL wildcards inside the prefix (`%`,
/// `_`) are left alone, so the server may return more: callers filter exactly.
pub fn like_prefix(prefix: &str) -> String {
    format!("{prefix}%")
}
