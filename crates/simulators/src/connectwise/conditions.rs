//! ConnectWise `conditions`: a parser for the subset the client sends, and its evaluation against
//! JSON records. Anything outside the subset (unknown fields, operators, malformed literals) is
//! an error that the API answers with 400 — never a match-all.
//!
//! Grammar (keywords case-insensitive; `AND` binds tighter than `OR`):
//!
//! ```text
//! expr    := and ("OR" and)*
//! and     := atom ("AND" atom)*
//! atom    := "(" expr ")" | path cmp
//! cmp     := ("=" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "like" | "not contains" | "not like") literal
//!          | ["not"] "in" "(" literal ("," literal)* ")"
//! literal := "string" (\" and \\ escapes) | integer | [datetime] | True | False | null
//! path    := [A-Za-z0-9_]+ ("/" [A-Za-z0-9_]+)*
//! ```

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(i64),
    Time(DateTime<Utc>),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Like,
    NotLike,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Cmp(String, Op, Lit),
    In(String, Vec<Lit>, bool),
    And(Vec<Self>),
    Or(Vec<Self>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(i64),
    Time(DateTime<Utc>),
    Sym(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '"' => {
                i += 1;
                let mut v = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(e @ ('"' | '\\')) => v.push(*e),
                                _ => return Err("bad escape in string".into()),
                            }
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']').ok_or("unterminated datetime")? + i;
                let text: String = chars[i + 1..end].iter().collect();
                let t = DateTime::parse_from_rfc3339(text.trim())
                    .map_err(|e| format!("bad datetime [{text}]: {e}"))?
                    .with_timezone(&Utc);
                out.push(Tok::Time(t));
                i = end + 1;
            }
            '=' => {
                out.push(Tok::Sym("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Sym("!="));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                out.push(Tok::Sym(match (c, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            '-' | '0'..='9' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Tok::Num(text.parse().map_err(|_| format!("bad number {text}"))?));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '/' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '/') {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    fields: &'a [&'a str],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if let Some(Tok::Ident(s)) = self.peek()
            && s.eq_ignore_ascii_case(kw)
        {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expr(&mut self) -> Result<Cond, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Cond::Or(parts) })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut parts = vec![self.atom()?];
        while self.keyword("and") {
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Cond::And(parts) })
    }

    fn atom(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Ident(field)) => {
                if !self.fields.iter().any(|f| f.eq_ignore_ascii_case(&field)) {
                    return Err(format!("Cannot find column '{field}'"));
                }
                let negated = self.keyword("not");
                if self.keyword("in") {
                    if self.next() != Some(Tok::LParen) {
                        return Err("in needs (".into());
                    }
                    let mut list = vec![self.literal()?];
                    loop {
                        match self.next() {
                            Some(Tok::Comma) => list.push(self.literal()?),
                            Some(Tok::RParen) => break,
                            _ => return Err("bad in list".into()),
                        }
                    }
                    return Ok(Cond::In(field, list, negated));
                }
                let op = if self.keyword("contains") {
                    if negated { Op::NotContains } else { Op::Contains }
                } else if self.keyword("like") {
                    if negated { Op::NotLike } else { Op::Like }
                } else if negated {
                    return Err("not must be followed by in, like or contains".into());
                } else {
                    match self.next() {
                        Some(Tok::Sym("=")) => Op::Eq,
                        Some(Tok::Sym("!=")) => Op::Ne,
                        Some(Tok::Sym("<")) => Op::Lt,
                        Some(Tok::Sym("<=")) => Op::Le,
                        Some(Tok::Sym(">")) => Op::Gt,
                        Some(Tok::Sym(">=")) => Op::Ge,
                        other => return Err(format!("unknown operator after {field}: {other:?}")),
                    }
                };
                let lit = self.literal()?;
                if matches!(op, Op::Contains | Op::NotContains | Op::Like | Op::NotLike) && !matches!(lit, Lit::Str(_))
                {
                    return Err(format!("{field}: contains/like need a string"));
                }
                Ok(Cond::Cmp(field, op, lit))
            }
            other => Err(format!("expected a field, got {other:?}")),
        }
    }

    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Time(t)) => Ok(Lit::Time(t)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            other => Err(format!("expected a value, got {other:?}")),
        }
    }
}

/// Parses `text`, allowing only `fields` (paths, case-insensitive).
pub(crate) fn parse(text: &str, fields: &[&str]) -> Result<Cond, String> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err("empty conditions".into());
    }
    let mut p = Parser { toks, pos: 0, fields };
    let c = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    Ok(c)
}

/// The value at a `/`-separated path (keys case-insensitive).
pub(crate) fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('/') {
        let obj = cur.as_object()?;
        cur = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(seg)).map(|(_, v)| v)?;
    }
    Some(cur)
}

/// SQL `LIKE` with `%` and `_`, case-insensitive.
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    fn rec(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| rec(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && rec(&t[1..], &p[1..]),
            Some(c) => t.first().is_some_and(|x| x == c) && rec(&t[1..], &p[1..]),
        }
    }
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    rec(&t, &p)
}

fn compare(field: &str, v: &Value, lit: &Lit) -> Result<Option<std::cmp::Ordering>, String> {
    use std::cmp::Ordering;
    Ok(match (v, lit) {
        (Value::Null, _) | (_, Lit::Null) => None,
        (Value::String(s), Lit::Str(l)) => Some(s.to_lowercase().cmp(&l.to_lowercase())),
        (Value::String(s), Lit::Time(t)) => {
            let got = DateTime::parse_from_rfc3339(s).map_err(|_| format!("{field} is not a datetime"))?;
            Some(got.with_timezone(&Utc).cmp(t))
        }
        (Value::Number(n), Lit::Num(l)) => n.as_i64().map(|x| x.cmp(l)),
        (Value::Bool(b), Lit::Bool(l)) => Some(if b == l { Ordering::Equal } else { Ordering::Less }),
        (Value::Object(_), _) => return Err(format!("{field} is a reference; compare {field}/id or {field}/name")),
        _ => return Err(format!("Cannot convert the value for {field}")),
    })
}

/// Whether `row` satisfies `c`; a type mismatch is an error (a 400).
pub(crate) fn matches(c: &Cond, row: &Value) -> Result<bool, String> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    Ok(match c {
        Cond::And(parts) => {
            for p in parts {
                if !matches(p, row)? {
                    return Ok(false);
                }
            }
            true
        }
        Cond::Or(parts) => {
            for p in parts {
                if matches(p, row)? {
                    return Ok(true);
                }
            }
            false
        }
        Cond::In(field, list, negated) => {
            let v = lookup(row, field).unwrap_or(&Value::Null);
            if v.is_null() {
                return Ok(false);
            }
            let mut hit = false;
            for l in list {
                if compare(field, v, l)? == Some(Equal) {
                    hit = true;
                }
            }
            hit != *negated
        }
        Cond::Cmp(field, op, lit) => {
            let v = lookup(row, field).unwrap_or(&Value::Null);
            match (op, lit) {
                (Op::Eq, Lit::Null) => return Ok(v.is_null()),
                (Op::Ne, Lit::Null) => return Ok(!v.is_null()),
                _ => {}
            }
            match op {
                Op::Contains | Op::NotContains | Op::Like | Op::NotLike => {
                    let Lit::Str(pat) = lit else { return Err("contains/like need a string".into()) };
                    let Some(text) = v.as_str() else {
                        if v.is_null() {
                            return Ok(false);
                        }
                        return Err(format!("{field} is not a string"));
                    };
                    match op {
                        Op::Contains => text.to_lowercase().contains(&pat.to_lowercase()),
                        Op::NotContains => !text.to_lowercase().contains(&pat.to_lowercase()),
                        Op::Like => like(text, pat),
                        _ => !like(text, pat),
                    }
                }
                _ => {
                    let Some(ord) = compare(field, v, lit)? else { return Ok(false) };
                    match op {
                        Op::Eq => ord == Equal,
                        Op::Ne => ord != Equal,
                        Op::Lt => ord == Less,
                        Op::Le => ord != Greater,
                        Op::Gt => ord == Greater,
                        _ => ord != Less,
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const F: &[&str] = &["id", "summary", "externalXRef", "closedFlag", "closedDate", "board/id", "text"];

    #[test]
    fn parses_and_evaluates_what_the_client_sends() {
        let row = json!({"id":5,"summary":"A \"quoted\" one","externalXRef":"kmsp-ab","closedFlag":false,
            "closedDate":null,"board":{"id":1}});
        for (text, want) in [
            (r#"externalXRef = "KMSP-AB""#, true),
            (r#"externalXRef like "kmsp-%" AND (closedFlag = False OR closedDate >= [2024-01-01T00:00:00Z])"#, true),
            ("id in (1,2,5)", true),
            ("id not in (5)", false),
            (r#"summary contains "\"quoted\"""#, true),
            ("board/id = 1 AND closedFlag = True", false),
            ("closedDate = null", true),
        ] {
            let c = parse(text, F).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(matches(&c, &row).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for text in ["nope = 1", "id ~ 1", "id = ", r#"summary = "open"#, "id in ()", "(id = 1", "id = 1 id = 2", ""] {
            assert!(parse(text, F).is_err(), "{text}");
        }
        let c = parse(r#"closedFlag = "yes""#, F).unwrap();
        assert!(matches(&c, &json!({"closedFlag":false})).is_err());
    }
}
