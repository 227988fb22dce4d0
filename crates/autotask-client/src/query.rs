//! A typed builder for Autotask's query body (`QueryModel`, autotask-api.md §2.3).
//!
//! ```
//! use autotask_client::query::{Filter, Query};
//! let q = Query::new()
//!     .filter(Filter::eq("companyID", 175))
//!     .filter(Filter::or([Filter::eq("priority", 1), Filter::exist("assignedResourceID")]))
//!     .include_fields(["id", "title"])
//!     .max_records(50);
//! let body = serde_json::to_value(q.build().unwrap()).unwrap();
//! assert_eq!(body["filter"][0], serde_json::json!({"op":"eq","field":"companyID","value":175}));
//! ```
//!
//! [`Query::build`] enforces what the server would reject or silently get wrong: a non-empty
//! filter, at most one UDF condition, `MaxRecords` within 1..=500, array values for
//! `in`/`notIn`, no value for `exist`/`notExist`, non-empty `and`/`or` groups.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::error::Error;

/// Autotask's page size limit.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The 13 comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `eq`
    Eq,
    /// `noteq`
    NotEq,
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `beginsWith`
    BeginsWith,
    /// `endsWith`
    EndsWith,
    /// `contains`
    Contains,
    /// `exist` (no value)
    Exist,
    /// `notExist` (no value)
    NotExist,
    /// `in` (array value)
    In,
    /// `notIn` (array value)
    NotIn,
}

impl Op {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::NotEq => "noteq",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::BeginsWith => "beginsWith",
            Self::EndsWith => "endsWith",
            Self::Contains => "contains",
            Self::Exist => "exist",
            Self::NotExist => "notExist",
            Self::In => "in",
            Self::NotIn => "notIn",
        }
    }

    /// All 13 operators.
    pub const ALL: [Self; 13] = [
        Self::Eq,
        Self::NotEq,
        Self::Gt,
        Self::Gte,
        Self::Lt,
        Self::Lte,
        Self::BeginsWith,
        Self::EndsWith,
        Self::Contains,
        Self::Exist,
        Self::NotExist,
        Self::In,
        Self::NotIn,
    ];
}

/// One filter node: a condition or an `and`/`or` group.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `{"op":…, "field":…, "value":…, "udf":true?}`
    Condition {
        /// Operator.
        op: Op,
        /// Field name (the UDF's name when `udf`).
        field: String,
        /// Value; `None` for `exist`/`notExist`.
        value: Option<Value>,
        /// Whether `field` names a user-defined field.
        udf: bool,
    },
    /// `{"op":"and","items":[…]}`
    And(Vec<Self>),
    /// `{"op":"or","items":[…]}`
    Or(Vec<Self>),
}

impl Filter {
    /// A condition with a value.
    pub fn cond(op: Op, field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Condition { op, field: field.into(), value: Some(value.into()), udf: false }
    }
    /// `eq`
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::Eq, field, value)
    }
    /// `noteq`
    pub fn noteq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::NotEq, field, value)
    }
    /// `gt`
    pub fn gt(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::Gt, field, value)
    }
    /// `gte`
    pub fn gte(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::Gte, field, value)
    }
    /// `lt`
    pub fn lt(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::Lt, field, value)
    }
    /// `lte`
    pub fn lte(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::Lte, field, value)
    }
    /// `beginsWith`
    pub fn begins_with(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::BeginsWith, field, value)
    }
    /// `endsWith`
    pub fn ends_with(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::EndsWith, field, value)
    }
    /// `contains`
    pub fn contains(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::cond(Op::Contains, field, value)
    }
    /// `exist`
    pub fn exist(field: impl Into<String>) -> Self {
        Self::Condition { op: Op::Exist, field: field.into(), value: None, udf: false }
    }
    /// `notExist`
    pub fn not_exist(field: impl Into<String>) -> Self {
        Self::Condition { op: Op::NotExist, field: field.into(), value: None, udf: false }
    }
    /// `in`
    pub fn is_in<V: Into<Value>>(field: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        Self::cond(Op::In, field, Value::Array(values.into_iter().map(Into::into).collect()))
    }
    /// `notIn`
    pub fn not_in<V: Into<Value>>(field: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        Self::cond(Op::NotIn, field, Value::Array(values.into_iter().map(Into::into).collect()))
    }
    /// `and` group.
    pub fn and(items: impl IntoIterator<Item = Self>) -> Self {
        Self::And(items.into_iter().collect())
    }
    /// `or` group.
    pub fn or(items: impl IntoIterator<Item = Self>) -> Self {
        Self::Or(items.into_iter().collect())
    }
    /// Marks a condition as a user-defined-field condition (`"udf": true`); groups are unchanged.
    pub fn udf(mut self) -> Self {
        if let Self::Condition { udf, .. } = &mut self {
            *udf = true;
        }
        self
    }

    fn udf_count(&self) -> usize {
        match self {
            Self::Condition { udf, .. } => usize::from(*udf),
            Self::And(items) | Self::Or(items) => items.iter().map(Self::udf_count).sum(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Condition { op, field, value, .. } => {
                if field.is_empty() {
                    return Err(Error::InvalidRequest("filter condition without a field".into()));
                }
                match (op, value) {
                    (Op::Exist | Op::NotExist, Some(_)) => {
                        Err(Error::InvalidRequest(format!("{} on {field} takes no value", op.as_str())))
                    }
                    (Op::Exist | Op::NotExist, None) => Ok(()),
                    (Op::In | Op::NotIn, Some(Value::Array(_))) => Ok(()),
                    (Op::In | Op::NotIn, _) => {
                        Err(Error::InvalidRequest(format!("{} on {field} needs an array value", op.as_str())))
                    }
                    (_, None | Some(Value::Null)) => {
                        Err(Error::InvalidRequest(format!("{} on {field} needs a value", op.as_str())))
                    }
                    (_, Some(_)) => Ok(()),
                }
            }
            Self::And(items) | Self::Or(items) => {
                if items.is_empty() {
                    return Err(Error::InvalidRequest("empty and/or group".into()));
                }
                items.iter().try_for_each(Self::validate)
            }
        }
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Condition { op, field, value, udf } => {
                let len = 2 + usize::from(value.is_some()) + usize::from(*udf);
                let mut m = serializer.serialize_map(Some(len))?;
                m.serialize_entry("op", op.as_str())?;
                m.serialize_entry("field", field)?;
                if let Some(v) = value {
                    m.serialize_entry("value", v)?;
                }
                if *udf {
                    m.serialize_entry("udf", &true)?;
                }
                m.end()
            }
            Self::And(items) | Self::Or(items) => {
                let mut m = serializer.serialize_map(Some(2))?;
                m.serialize_entry("op", if matches!(self, Self::And(_)) { "and" } else { "or" })?;
                m.serialize_entry("items", items)?;
                m.end()
            }
        }
    }
}

/// A query under construction. Top-level filters are ANDed by the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    filters: Vec<Filter>,
    include_fields: Vec<String>,
    max_records: Option<u32>,
}

impl Query {
    /// An empty query (add at least one filter before building).
    pub fn new() -> Self {
        Self::default()
    }

    /// The fetch-everything idiom: `{"op":"gte","field":"id","value":0}`.
    pub fn all() -> Self {
        Self::new().filter(Filter::gte("id", 0))
    }

    /// Adds a top-level filter.
    pub fn filter(mut self, f: Filter) -> Self {
        self.filters.push(f);
        self
    }

    /// Restricts the returned fields (`IncludeFields`).
    pub fn include_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.include_fields.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Caps the page size (`MaxRecords`, 1..=500).
    pub fn max_records(mut self, n: u32) -> Self {
        self.max_records = Some(n);
        self
    }

    /// The requested page size, if any.
    pub fn page_size(&self) -> Option<u32> {
        self.max_records
    }

    /// Validates and freezes the query into its wire body.
    pub fn build(self) -> Result<QueryBody, Error> {
        if self.filters.is_empty() {
            return Err(Error::InvalidRequest("a query needs at least one filter (use Query::all())".into()));
        }
        self.filters.iter().try_for_each(Filter::validate)?;
        let udfs: usize = self.filters.iter().map(Filter::udf_count).sum();
        if udfs > 1 {
            return Err(Error::InvalidRequest(format!(
                "autotask allows one user-defined field condition per query, got {udfs}"
            )));
        }
        if let Some(n) = self.max_records
            && !(1..=MAX_PAGE_SIZE).contains(&n)
        {
            return Err(Error::InvalidRequest(format!("MaxRecords must be within 1..=500, got {n}")));
        }
        Ok(QueryBody { filter: self.filters, include_fields: self.include_fields, max_records: self.max_records })
    }
}

/// A validated query body, serialised as `{"filter":[…],"IncludeFields":[…],"MaxRecords":n}`
/// (the last two omitted when unset).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryBody {
    pub(crate) filter: Vec<Filter>,
    pub(crate) include_fields: Vec<String>,
    pub(crate) max_records: Option<u32>,
}

impl QueryBody {
    /// The page size the server will use (`MaxRecords`, else 500).
    pub fn page_size(&self) -> u32 {
        self.max_records.unwrap_or(MAX_PAGE_SIZE)
    }

    /// The same body with one more top-level filter (keyset paging adds `id > last`), and `id`
    /// added to `IncludeFields` when fields are restricted.
    pub(crate) fn and_also(&self, extra: Filter) -> Self {
        let mut next = self.clone();
        next.filter.push(extra);
        next
    }

    /// Makes sure `id` is returned (keyset paging and result sets over 500 rows need it).
    pub(crate) fn ensure_id(&mut self) {
        if !self.include_fields.is_empty() && !self.include_fields.iter().any(|f| f.eq_ignore_ascii_case("id")) {
            self.include_fields.insert(0, "id".to_owned());
        }
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // serialising a Vec of our own enums and strings cannot fail
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Serialize for QueryBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 1 + usize::from(!self.include_fields.is_empty()) + usize::from(self.max_records.is_some());
        let mut m = serializer.serialize_map(Some(len))?;
        m.serialize_entry("filter", &self.filter)?;
        if !self.include_fields.is_empty() {
            m.serialize_entry("IncludeFields", &self.include_fields)?;
        }
        if let Some(n) = self.max_records {
            m.serialize_entry("MaxRecords", &n)?;
        }
        m.end()
    }
}
