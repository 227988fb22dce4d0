//! The collecting deserializer.
//!
//! serde's derived `Deserialize` impls of the config structs are the one schema: they ask this
//! deserializer for each value, and for a table they hand it the struct's field list, which is
//! what unknown keys are checked against (with a "did you mean" from it). A value the impl
//! refuses is recorded at its path and the pass ends; the next pass gives that path a
//! placeholder (an empty string, zero, an empty table...) so the derive is satisfied and the
//! walk reaches the keys after it. A required key that is missing is recorded once and then
//! also given a placeholder. Every pass records at least one new path, so the passes end.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer as _, Unexpected, Visitor};
use toml_edit::{Item, TableLike, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Seg {
    /// A table's key.
    Key(String),
    /// An array's element.
    Index(usize),
}

/// `security_center[0].url`, `rules.rows."security_center/event/critical".enabled`.
pub(super) fn display_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    s.push_str(k);
                } else {
                    s.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The inverse of [`display_path`] (for the keys this crate writes).
pub(super) fn parse_path(s: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '.' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let key: String = chars.by_ref().take_while(|c| *c != '"').collect();
                out.push(Seg::Key(key));
            }
            '[' => {
                chars.next();
                let n: String = chars.by_ref().take_while(|c| *c != ']').collect();
                out.push(n.parse().map_or(Seg::Key(n), Seg::Index));
            }
            _ => {
                let mut key = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                out.push(Seg::Key(key));
            }
        }
    }
    out
}

/// One problem the walk found.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// Where.
    pub(super) path: Vec<Seg>,
    /// Whether it is about the key (unknown, malformed) rather than its value.
    pub(super) at_key: bool,
    /// What is wrong (never echoing the value).
    pub(super) message: String,
}

/// What a walk found.
pub(super) struct Walked<T> {
    /// The typed value (with placeholders under `tainted`), unless the walk got stuck.
    pub(super) value: Option<T>,
    /// Every problem, by path.
    pub(super) found: Vec<Found>,
    /// Paths whose value in `value` is not the file's.
    pub(super) tainted: Vec<Vec<Seg>>,
}

/// Walks `root` with `T`'s `Deserialize` impl, collecting every problem.
pub(super) fn walk<T: DeserializeOwned>(root: &dyn TableLike) -> Walked<T> {
    const MAX_PASSES: usize = 1000;
    let ctx = RefCell::new(Ctx::default());
    let mut value = None;
    for _ in 0..MAX_PASSES {
        match T::deserialize(De { node: Node::Table(root), path: Vec::new(), ctx: &ctx }) {
            Ok(v) => {
                value = Some(v);
                break;
            }
            Err(Error::Reported) if !ctx.borrow().stuck => {}
            Err(Error::Msg(m)) => {
                ctx.borrow_mut().report(Vec::new(), false, m);
                break;
            }
            Err(_) => break,
        }
    }
    let ctx = ctx.into_inner();
    let tainted = ctx.poisoned.into_iter().chain(ctx.hidden).collect();
    Walked { value, found: ctx.found.into_values().collect(), tainted }
}

#[derive(Default)]
struct Ctx {
    found: BTreeMap<Vec<Seg>, Found>,
    /// Paths given a placeholder: their value was refused, or they are missing.
    poisoned: BTreeSet<Vec<Seg>>,
    /// Map entries left out: their key was refused.
    hidden: BTreeSet<Vec<Seg>>,
    /// A placeholder itself was refused: no further pass can get further.
    stuck: bool,
}

impl Ctx {
    fn in_placeholder(&self, path: &[Seg]) -> bool {
        (0..=path.len()).any(|n| self.poisoned.contains(&path[..n]))
    }

    fn report(&mut self, path: Vec<Seg>, at_key: bool, message: String) {
        self.found.entry(path.clone()).or_insert(Found { path, at_key, message });
    }

    /// The value at `path` was refused. A refused placeholder (a `deserialize_with` that
    /// wants more than an empty string, say) is left out on the next pass instead, so the
    /// field's default applies.
    fn refuse(&mut self, path: Vec<Seg>, message: String) {
        if self.in_placeholder(&path) {
            if !self.hidden.insert(path) {
                self.stuck = true;
            }
            return;
        }
        self.report(path.clone(), false, message);
        self.poisoned.insert(path);
    }

    /// The required key at `path` is absent (reported unless a placeholder stands above).
    fn missing(&mut self, path: Vec<Seg>) {
        if self.poisoned.contains(&path) || self.hidden.contains(&path) {
            self.stuck = true;
            return;
        }
        if !self.in_placeholder(&path) {
            self.report(path.clone(), false, "is missing (expected this required key)".to_owned());
        }
        self.poisoned.insert(path);
    }
}

/// The walk's error. Messages never contain the refused value.
#[derive(Debug)]
pub(super) enum Error {
    /// Recorded deeper down; the pass ends.
    Reported,
    /// A required field is absent.
    Missing(&'static str),
    /// What is wrong with this value.
    Msg(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reported => f.write_str("reported"),
            Self::Missing(field) => write!(f, "missing key `{field}`"),
            Self::Msg(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Msg(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::Msg(format!("is {} ({})", kind(&unexp), expected(exp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let what = match unexp {
            Unexpected::Signed(n) if n < 0 => "a negative integer",
            Unexpected::Signed(_) | Unexpected::Unsigned(_) => "an integer out of range",
            Unexpected::Str(_) => "not valid",
            ref other => kind(other),
        };
        Self::Msg(format!("is {what} ({})", expected(exp)))
    }

    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Self::Msg(format!("has {len} elements ({})", expected(exp)))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Self::Msg(format!("is not an accepted value (expected one of {})", quoted(expected)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::Msg(unknown_key(field, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field)
    }

    fn duplicate_field(_field: &'static str) -> Self {
        Self::Msg("is given twice (expected once)".to_owned())
    }
}

fn kind<'u>(u: &Unexpected<'u>) -> &'u str {
    match u {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a float",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "empty",
        Unexpected::Seq => "an array",
        Unexpected::Map => "a table",
        Unexpected::Other(s) => s,
        _ => "of another type",
    }
}

fn expected(exp: &dyn de::Expected) -> String {
    let s = exp.to_string();
    let what = match s.as_str() {
        "u8" => "a non-negative integer up to 255",
        "u16" => "a non-negative integer up to 65535",
        "u32" => "a non-negative integer up to 4294967295",
        "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "a table",
        _ if s.starts_with("struct ") => "a table",
        _ => return format!("expected {s}"),
    };
    format!("expected {what}")
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// `unknown key (did you mean `x`?)` or the list of keys the table has.
fn unknown_key(key: &str, fields: &[&str]) -> String {
    match did_you_mean(key, fields) {
        Some(close) => format!("unknown key (did you mean `{close}`?)"),
        None if fields.is_empty() => "unknown key (expected no keys here)".to_owned(),
        None => format!("unknown key (expected one of {})", quoted(fields)),
    }
}

/// The one field close to `key` (optimal string alignment distance, [`strsim::osa_distance`]:
/// Levenshtein with adjacent transpositions counted as one edit; within a third of its length),
/// if there is exactly one closest.
pub(super) fn did_you_mean<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    let limit = key.chars().count().max(3) / 3;
    let mut scored: Vec<(usize, &'f str)> =
        fields.iter().map(|f| (strsim::osa_distance(key, f), *f)).filter(|(d, _)| (1..=limit).contains(d)).collect();
    scored.sort_unstable();
    match scored.as_slice() {
        [(_, f)] => Some(*f),
        [(d, f), (d2, _), ..] if d < d2 => Some(*f),
        _ => None,
    }
}

/// A place in the document, or a placeholder standing for a refused or missing value.
#[derive(Clone, Copy)]
enum Node<'a> {
    Scalar(&'a Value),
    Table(&'a dyn TableLike),
    Values(&'a toml_edit::Array),
    Tables(&'a toml_edit::ArrayOfTables),
    Placeholder,
}

fn of_value(v: &Value) -> Node<'_> {
    match v {
        Value::InlineTable(t) => Node::Table(t),
        Value::Array(a) => Node::Values(a),
        v => Node::Scalar(v),
    }
}

fn of_item(i: &Item) -> Node<'_> {
    match i {
        Item::None => Node::Placeholder,
        Item::Value(v) => of_value(v),
        Item::Table(t) => Node::Table(t),
        Item::ArrayOfTables(a) => Node::Tables(a),
    }
}

fn unexpected(node: Node<'_>) -> Unexpected<'static> {
    match node {
        Node::Scalar(Value::String(_)) => Unexpected::Other("a string"),
        Node::Scalar(Value::Integer(_)) => Unexpected::Other("an integer"),
        Node::Scalar(Value::Float(_)) => Unexpected::Other("a float"),
        Node::Scalar(Value::Boolean(_)) => Unexpected::Other("a boolean"),
        Node::Scalar(Value::Datetime(_)) => Unexpected::Other("a date-time"),
        Node::Table(_) | Node::Scalar(Value::InlineTable(_)) => Unexpected::Map,
        Node::Values(_) | Node::Tables(_) | Node::Scalar(Value::Array(_)) => Unexpected::Seq,
        Node::Placeholder => Unexpected::Unit,
    }
}

fn child(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

/// Deserializes one value; a refusal is recorded at `path`.
fn value<'de, S: DeserializeSeed<'de>>(
    seed: S,
    node: Node<'_>,
    path: Vec<Seg>,
    ctx: &RefCell<Ctx>,
) -> Result<S::Value, Error> {
    match seed.deserialize(De { node, path: path.clone(), ctx }) {
        Err(Error::Msg(m)) => {
            ctx.borrow_mut().refuse(path, m);
            Err(Error::Reported)
        }
        Err(Error::Missing(f)) => {
            ctx.borrow_mut().missing(child(&path, Seg::Key(f.to_owned())));
            Err(Error::Reported)
        }
        r => r,
    }
}

struct De<'a, 'c> {
    node: Node<'a>,
    path: Vec<Seg>,
    ctx: &'c RefCell<Ctx>,
}

macro_rules! hint {
    ($($method:ident => |$v:ident| $placeholder:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, Error> {
            if matches!(self.node, Node::Placeholder) { $placeholder } else { self.deserialize_any($v) }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Scalar(Value::String(s)) => v.visit_str(s.value()),
            Node::Scalar(Value::Integer(i)) => v.visit_i64(*i.value()),
            Node::Scalar(Value::Float(f)) => v.visit_f64(*f.value()),
            Node::Scalar(Value::Boolean(b)) => v.visit_bool(*b.value()),
            Node::Scalar(Value::InlineTable(t)) => v.visit_map(Entries::all(t, self.path, self.ctx)),
            Node::Scalar(Value::Array(a)) | Node::Values(a) => {
                v.visit_seq(Elems::new(a.iter().map(of_value).collect(), self.path, self.ctx))
            }
            Node::Tables(a) => v.visit_seq(Elems::new(a.iter().map(|t| Node::Table(t)).collect(), self.path, self.ctx)),
            Node::Table(t) => v.visit_map(Entries::all(t, self.path, self.ctx)),
            node @ (Node::Scalar(Value::Datetime(_)) | Node::Placeholder) => {
                Err(de::Error::invalid_type(unexpected(node), &v))
            }
        }
    }

    hint! {
        deserialize_bool => |v| v.visit_bool(false);
        deserialize_i8 => |v| v.visit_i64(0);
        deserialize_i16 => |v| v.visit_i64(0);
        deserialize_i32 => |v| v.visit_i64(0);
        deserialize_i64 => |v| v.visit_i64(0);
        deserialize_u8 => |v| v.visit_u64(0);
        deserialize_u16 => |v| v.visit_u64(0);
        deserialize_u32 => |v| v.visit_u64(0);
        deserialize_u64 => |v| v.visit_u64(0);
        deserialize_f32 => |v| v.visit_f64(0.0);
        deserialize_f64 => |v| v.visit_f64(0.0);
        deserialize_char => |v| v.visit_char(' ');
        deserialize_str => |v| v.visit_str("");
        deserialize_string => |v| v.visit_str("");
        deserialize_bytes => |v| v.visit_bytes(&[]);
        deserialize_byte_buf => |v| v.visit_bytes(&[]);
        deserialize_unit => |v| v.visit_unit();
        deserialize_identifier => |v| v.visit_str("");
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Placeholder => v.visit_seq(Elems::new(Vec::new(), self.path, self.ctx)),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Placeholder => {
                v.visit_map(Entries { items: Vec::new().into_iter(), pending: None, path: self.path, ctx: self.ctx })
            }
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Placeholder => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, v: V) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.node {
            Node::Scalar(Value::String(s)) => v.visit_enum(s.value().as_str().into_deserializer()),
            Node::Placeholder => v.visit_enum(variants.first().copied().unwrap_or_default().into_deserializer()),
            node => Err(de::Error::invalid_type(unexpected(node), &v)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let table = match self.node {
            Node::Table(t) => Some(t),
            Node::Placeholder => None,
            node => return Err(de::Error::invalid_type(unexpected(node), &v)),
        };
        let entries = Entries::fields(table, fields, self.path.clone(), self.ctx);
        match v.visit_map(entries) {
            Err(Error::Missing(f)) => {
                self.ctx.borrow_mut().missing(child(&self.path, Seg::Key(f.to_owned())));
                Err(Error::Reported)
            }
            r => r,
        }
    }

    serde::forward_to_deserialize_any! { i128 u128 unit_struct tuple tuple_struct }
}

/// A table's entries as a serde map.
struct Entries<'a, 'c> {
    items: std::vec::IntoIter<(String, Node<'a>)>,
    pending: Option<(Vec<Seg>, Node<'a>)>,
    path: Vec<Seg>,
    ctx: &'c RefCell<Ctx>,
}

impl<'a, 'c> Entries<'a, 'c> {
    /// Every entry (a map such as `rules.rows`), except those whose key was refused.
    fn all(table: &'a dyn TableLike, path: Vec<Seg>, ctx: &'c RefCell<Ctx>) -> Self {
        let c = ctx.borrow();
        let items: Vec<_> = table
            .iter()
            .filter(|(k, _)| !c.hidden.contains(&child(&path, Seg::Key((*k).to_owned()))))
            .map(|(k, item)| {
                let p = child(&path, Seg::Key(k.to_owned()));
                (k.to_owned(), if c.poisoned.contains(&p) { Node::Placeholder } else { of_item(item) })
            })
            .collect();
        drop(c);
        Self { items: items.into_iter(), pending: None, path, ctx }
    }

    /// A struct's entries: keys that are not among `fields` are reported and left out;
    /// refused values and missing required keys get placeholders.
    fn fields(
        table: Option<&'a dyn TableLike>,
        fields: &'static [&'static str],
        path: Vec<Seg>,
        ctx: &'c RefCell<Ctx>,
    ) -> Self {
        let mut c = ctx.borrow_mut();
        let mut items = Vec::new();
        for (k, item) in table.iter().flat_map(|t| t.iter()) {
            if path.is_empty() && k.starts_with(super::parse::RECOVERED) {
                continue;
            }
            let p = child(&path, Seg::Key(k.to_owned()));
            if !fields.contains(&k) {
                c.report(p, true, unknown_key(k, fields));
                continue;
            }
            if c.hidden.contains(&p) {
                continue;
            }
            items.push((k.to_owned(), if c.poisoned.contains(&p) { Node::Placeholder } else { of_item(item) }));
        }
        for f in fields {
            let p = child(&path, Seg::Key((*f).to_owned()));
            if !table.is_some_and(|t| t.contains_key(f)) && c.poisoned.contains(&p) && !c.hidden.contains(&p) {
                items.push(((*f).to_owned(), Node::Placeholder));
            }
        }
        drop(c);
        Self { items: items.into_iter(), pending: None, path, ctx }
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((k, node)) = self.items.next() else { return Ok(None) };
        let path = child(&self.path, Seg::Key(k.clone()));
        match seed.deserialize(k.as_str().into_deserializer()) {
            Ok(key) => {
                self.pending = Some((path, node));
                Ok(Some(key))
            }
            Err(Error::Msg(m)) => {
                let mut c = self.ctx.borrow_mut();
                c.report(path.clone(), true, m);
                c.hidden.insert(path);
                Err(Error::Reported)
            }
            Err(e) => Err(e),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (path, node) = self.pending.take().ok_or_else(|| Error::Msg("a value without a key".to_owned()))?;
        value(seed, node, path, self.ctx)
    }
}

/// An array's elements as a serde sequence.
struct Elems<'a, 'c> {
    items: std::iter::Enumerate<std::vec::IntoIter<Node<'a>>>,
    path: Vec<Seg>,
    ctx: &'c RefCell<Ctx>,
}

impl<'a, 'c> Elems<'a, 'c> {
    fn new(items: Vec<Node<'a>>, path: Vec<Seg>, ctx: &'c RefCell<Ctx>) -> Self {
        Self { items: items.into_iter().enumerate(), path, ctx }
    }
}

impl<'de> de::SeqAccess<'de> for Elems<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let (path, node) = loop {
            let Some((i, node)) = self.items.next() else { return Ok(None) };
            let path = child(&self.path, Seg::Index(i));
            if !self.ctx.borrow().hidden.contains(&path) {
                break (path, node);
            }
        };
        let node = if self.ctx.borrow().poisoned.contains(&path) { Node::Placeholder } else { node };
        value(seed, node, path, self.ctx).map(Some)
    }
}
