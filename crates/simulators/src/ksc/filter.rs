//! The subset of the RFC 2254-like host filter the simulator understands: `(&..)`, `(|..)`,
//! `(!..)` and `attr OP value` with `=` (`*` wildcards on strings), `<>`, `<`, `>`, `<=`, `>=`
//! on `KLHST_WKS_HOSTNAME`, `KLHST_WKS_DN`, `KLHST_WKS_STATUS_ID`, `KLHST_WKS_STATUS_MASK`,
//! `KLHST_WKS_GROUPID` and `KLHST_WKS_LAST_VISIBLE` (values quoted or bare; datetimes as
//! RFC 3339 or `CURTIME(<seconds offset>)`). Anything else is an error, never a match-all.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The fields a filter may name.
pub const FIELDS: [&str; 6] = [
    "KLHST_WKS_HOSTNAME",
    "KLHST_WKS_DN",
    "KLHST_WKS_STATUS_ID",
    "KLHST_WKS_STATUS_MASK",
    "KLHST_WKS_GROUPID",
    "KLHST_WKS_LAST_VISIBLE",
];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `(&(a)(b)...)`
    And(Vec<Self>),
    /// `(|(a)(b)...)`
    Or(Vec<Self>),
    /// `(!(a))`
    Not(Box<Self>),
    /// `(attr OP value)`
    Cmp {
        /// Field name.
        attr: String,
        /// Operator.
        op: Op,
        /// Value as written (quotes removed).
        value: String,
    },
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// Parses a filter; the error says what is not supported.
pub fn parse(text: &str) -> Result<Filter, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let f = p.filter()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text at {}", p.i));
    }
    Ok(f)
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn filter(&mut self) -> Result<Filter, String> {
        if !self.eat(b'(') {
            return Err(format!("expected '(' at {}", self.i));
        }
        self.ws();
        let f = match self.s.get(self.i) {
            Some(b'&') | Some(b'|') => {
                let and = self.s[self.i] == b'&';
                self.i += 1;
                let mut parts = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'(') {
                        break;
                    }
                    parts.push(self.filter()?);
                }
                if parts.is_empty() {
                    return Err("empty (&) or (|)".to_owned());
                }
                if and { Filter::And(parts) } else { Filter::Or(parts) }
            }
            Some(b'!') => {
                self.i += 1;
                Filter::Not(Box::new(self.filter()?))
            }
            _ => self.comparison()?,
        };
        if !self.eat(b')') {
            return Err(format!("expected ')' at {}", self.i));
        }
        Ok(f)
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        let attr = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if attr.is_empty() {
            return Err(format!("expected an attribute at {start}"));
        }
        if !FIELDS.contains(&attr.as_str()) {
            return Err(format!("attribute {attr} is not supported"));
        }
        self.ws();
        let rest = &self.s[self.i..];
        let (op, len) = if rest.starts_with(b"<>") {
            (Op::Ne, 2)
        } else if rest.starts_with(b"<=") {
            (Op::Le, 2)
        } else if rest.starts_with(b">=") {
            (Op::Ge, 2)
        } else if rest.starts_with(b"=") {
            (Op::Eq, 1)
        } else if rest.starts_with(b"<") {
            (Op::Lt, 1)
        } else if rest.starts_with(b">") {
            (Op::Gt, 1)
        } else {
            return Err(format!("unsupported operator after {attr}"));
        };
        self.i += len;
        self.ws();
        let value = if self.s.get(self.i) == Some(&b'"') {
            self.i += 1;
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' {
                self.i += 1;
            }
            if self.i == self.s.len() {
                return Err("unterminated string".to_owned());
            }
            let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            self.i += 1;
            v
        } else {
            let start = self.i;
            let mut depth = 0;
            while self.i < self.s.len() {
                match self.s[self.i] {
                    b'(' => depth += 1,
                    b')' if depth == 0 => break,
                    b')' => depth -= 1,
                    _ => {}
                }
                self.i += 1;
            }
            String::from_utf8_lossy(&self.s[start..self.i]).trim().to_owned()
        };
        Ok(Filter::Cmp { attr, op, value })
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern.eq_ignore_ascii_case(text);
    }
    let (text, pattern_parts) = (text.to_lowercase(), parts.iter().map(|p| p.to_lowercase()).collect::<Vec<_>>());
    let mut pos = 0;
    for (i, part) in pattern_parts.iter().enumerate() {
        if i == 0 {
            if !text.starts_with(part.as_str()) {
                return false;
            }
            pos = part.len();
        } else if i == pattern_parts.len() - 1 {
            return text.len() >= pos + part.len() && text[pos..].ends_with(part.as_str());
        } else {
            match text[pos..].find(part.as_str()) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    true
}

fn apply(op: Op, o: Ordering) -> bool {
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Gt => o == Ordering::Greater,
        Op::Le => o != Ordering::Greater,
        Op::Ge => o != Ordering::Less,
    }
}

fn curtime(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let inner = value.strip_prefix("CURTIME(")?.strip_suffix(')')?;
    let secs: i64 = inner.trim().parse().ok()?;
    Some(now + chrono::Duration::seconds(secs))
}

impl Filter {
    /// Evaluates the filter on a host row.
    pub fn eval(&self, row: &Map<String, Value>, now: DateTime<Utc>) -> Result<bool, String> {
        Ok(match self {
            Self::And(parts) => {
                for p in parts {
                    if !p.eval(row, now)? {
                        return Ok(false);
                    }
                }
                true
            }
            Self::Or(parts) => {
                for p in parts {
                    if p.eval(row, now)? {
                        return Ok(true);
                    }
                }
                false
            }
            Self::Not(f) => !f.eval(row, now)?,
            Self::Cmp { attr, op, value } => {
                let field = row.get(attr).map(super::untyped);
                match attr.as_str() {
                    "KLHST_WKS_HOSTNAME" | "KLHST_WKS_DN" => {
                        let text = field.and_then(Value::as_str).unwrap_or("");
                        match op {
                            Op::Eq => glob(value, text),
                            Op::Ne => !glob(value, text),
                            _ => apply(*op, text.cmp(value.as_str())),
                        }
                    }
                    "KLHST_WKS_LAST_VISIBLE" => {
                        let want = curtime(value, now)
                            .or_else(|| DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&Utc)))
                            .ok_or_else(|| format!("{value:?} is not a datetime"))?;
                        let have = field.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok());
                        match have {
                            Some(h) => apply(*op, h.with_timezone(&Utc).cmp(&want)),
                            None => false,
                        }
                    }
                    _ => {
                        let want: i64 = value.parse().map_err(|_| format!("{value:?} is not an integer"))?;
                        let have = field.and_then(Value::as_i64).unwrap_or(0);
                        apply(*op, have.cmp(&want))
                    }
                }
            }
        })
    }
}
