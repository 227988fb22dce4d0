//! A `ChunkAccessor.GetItemsChunk` answer read straight from its text into [`HostRecord`]s
//! (issue 15): no `serde_json::Value`, no [`Value`] tree, keys compared in place, only the
//! fields [`parse_host`](super::parse_host) reads are kept and the rest is checked without
//! being built.
//!
//! This is a fast path, not a second definition of the format. It accepts only answers for
//! which the general path ([`parse_chunk_via_value`](super::parse_chunk_via_value): envelope,
//! [`Value::from_json`], `parse_host`) succeeds, and then returns the same records; anything
//! else (a `PxgError`, a duplicate key, a typed value in an unusual order, a malformed
//! record, a value the general path would refuse) gives up with `None`, and the caller reads
//! the answer again the general way, which says what is wrong in its own words. So every
//! error, and every unusual answer, is exactly what it was before; only the common answer is
//! cheap.
//!
//! What "checked without being built" means: every member the general path would convert is
//! still validated as [`Value::from_json`] would (a typed wrapper's `type` word and value, a
//! datetime's text, a `long`'s range), because an invalid one anywhere makes the whole answer
//! malformed there.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use ticketing_core::model::ComputerStatus;

use super::{HostRecord, mask_bits};
use crate::value::{Value, parse_wire_datetime};

/// The records of a chunk answer's body, or `None` when the general path has to read it.
pub(super) fn read(body: &str) -> Option<Vec<HostRecord>> {
    serde_json::from_str::<Envelope>(body).ok().map(|e| e.0)
}

/// Gives up: the message is never shown (the general path explains).
fn give_up<E: de::Error>() -> E {
    E::custom("not the common shape")
}

/// A map key classified against a list of names: `Some(index)`, or `None` for another key.
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

const NO_KEYS: Key = Key(&[]);

/// `true` when the value is the string `self.0` (a typed wrapper's `type`).
struct Word(&'static str);

impl<'de> DeserializeSeed<'de> for Word {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Word {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a type word")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// The rest of a typed wrapper whose `"type"` key was just read: `"type": word` first, then
/// `"value"`, then nothing (exactly two members: what the general path takes for a wrapper).
fn typed_rest<'de, A: MapAccess<'de>, S: DeserializeSeed<'de>>(
    map: &mut A,
    word: &'static str,
    value: S,
) -> Result<S::Value, A::Error> {
    if !map.next_value_seed(Word(word))? || map.next_key_seed(Key(&["value"]))? != Some(Some(0)) {
        return Err(give_up());
    }
    let v = map.next_value_seed(value)?;
    match map.next_key_seed(NO_KEYS)? {
        None => Ok(v),
        Some(_) => Err(give_up()),
    }
}

/// A whole typed wrapper `{"type": word, "value": ...}`.
fn typed<'de, A: MapAccess<'de>, S: DeserializeSeed<'de>>(
    mut map: A,
    word: &'static str,
    value: S,
) -> Result<S::Value, A::Error> {
    if map.next_key_seed(Key(&["type"]))? != Some(Some(0)) {
        return Err(give_up());
    }
    typed_rest(&mut map, word, value)
}

/// The top level: `pChunk` read, every other member checked, a `PxgError` refused.
struct Envelope(Vec<HostRecord>);

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an answer object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut hosts = None;
        while let Some(key) = map.next_key_seed(Key(&["pChunk", "PxgError"]))? {
            match key {
                Some(0) if hosts.is_none() => hosts = Some(map.next_value_seed(Container)?),
                None => {
                    map.next_value::<Checked>()?;
                }
                _ => return Err(give_up()),
            }
        }
        hosts.map(Envelope).ok_or_else(give_up)
    }
}

/// `pChunk`: a bare container, or a `params` wrapper of one.
struct Container;

impl<'de> DeserializeSeed<'de> for Container {
    type Value = Vec<HostRecord>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Container {
    type Value = Vec<HostRecord>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a container")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key_seed(Key(&["type", "value", "KLCSP_ITERATOR_ARRAY"]))? {
            Some(Some(0)) => typed_rest(&mut map, "params", Members),
            // A first key that is neither `type` nor `value`: certainly not a wrapper.
            Some(Some(2)) => container_members(true, map),
            Some(None) => {
                map.next_value::<Checked>()?;
                container_members(false, map)
            }
            _ => Err(give_up()),
        }
    }
}

/// The members of the chunk container.
struct Members;

impl<'de> DeserializeSeed<'de> for Members {
    type Value = Vec<HostRecord>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Members {
    type Value = Vec<HostRecord>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a container's members")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        container_members(false, map)
    }
}

/// The container's remaining members; `at_array` when the key just read is
/// `KLCSP_ITERATOR_ARRAY`.
fn container_members<'de, A: MapAccess<'de>>(at_array: bool, mut map: A) -> Result<Vec<HostRecord>, A::Error> {
    let mut hosts = if at_array { Some(map.next_value_seed(Items)?) } else { None };
    while let Some(key) = map.next_key_seed(Key(&["KLCSP_ITERATOR_ARRAY"]))? {
        match key {
            Some(_) if hosts.is_none() => hosts = Some(map.next_value_seed(Items)?),
            Some(_) => return Err(give_up()),
            None => {
                map.next_value::<Checked>()?;
            }
        }
    }
    // No array (or `null`): the general path reports the short chunk.
    hosts.ok_or_else(give_up)
}

/// `KLCSP_ITERATOR_ARRAY`.
struct Items;

impl<'de> DeserializeSeed<'de> for Items {
    type Value = Vec<HostRecord>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = Vec<HostRecord>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of hosts")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut hosts = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(host) = seq.next_element_seed(Item)? {
            hosts.push(host);
        }
        Ok(hosts)
    }
}

/// The keys of a host item: a wrapper's two, then the fields [`Fields`] keeps.
const ITEM_KEYS: &[&str] = &[
    "type",
    "value",
    "KLHST_WKS_HOSTNAME",
    "KLHST_WKS_DN",
    "KLHST_WKS_STATUS_ID",
    "KLHST_WKS_STATUS_MASK",
    "KLHST_WKS_GROUPID",
    "KLHST_WKS_LAST_VISIBLE",
];
const HOST_KEYS: Key = Key(ITEM_KEYS.split_at(2).1);

/// One item: `{"type":"params","value":{fields}}` (the server), or the bare fields (the
/// simulator).
struct Item;

impl<'de> DeserializeSeed<'de> for Item {
    type Value = HostRecord;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<HostRecord, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Item {
    type Value = HostRecord;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a host container")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HostRecord, A::Error> {
        match map.next_key_seed(Key(ITEM_KEYS))? {
            Some(Some(0)) => typed_rest(&mut map, "params", HostFields),
            Some(Some(1)) | None => Err(give_up()),
            Some(key) => {
                let mut fields = Fields::default();
                fields.take(key.map(|k| k - 2), &mut map)?;
                fields.rest(map)
            }
        }
    }
}

/// The fields of a `params` wrapper's value.
struct HostFields;

impl<'de> DeserializeSeed<'de> for HostFields {
    type Value = HostRecord;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<HostRecord, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HostFields {
    type Value = HostRecord;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("host fields")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HostRecord, A::Error> {
        Fields::default().rest(map)
    }
}

/// An integer as the general path sees it: a plain JSON integer (`int`) or a `long`.
#[derive(Clone, Copy)]
enum Int {
    Int(i64),
    Long(i64),
}

/// What [`Fields`] keeps; each `Some` once its key was seen (a second one gives up).
#[derive(Default)]
struct Fields {
    hostname: Option<String>,
    display_name: Option<Option<String>>,
    status: Option<Int>,
    mask: Option<Option<Int>>,
    group_id: Option<Option<i64>>,
    last_visible: Option<Option<DateTime<Utc>>>,
}

fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(give_up());
    }
    *slot = Some(value);
    Ok(())
}

impl Fields {
    /// The value of the key just read (an index into [`HOST_KEYS`], `None` for another key).
    fn take<'de, A: MapAccess<'de>>(&mut self, key: Option<usize>, map: &mut A) -> Result<(), A::Error> {
        match key {
            Some(0) => once(&mut self.hostname, map.next_value::<String>()?),
            Some(1) => once(&mut self.display_name, map.next_value_seed(Scalar::<MaybeStr>::new())?),
            Some(2) => once(&mut self.status, map.next_value_seed(IntSeed { null: false })?.ok_or_else(give_up)?),
            Some(3) => once(&mut self.mask, map.next_value_seed(IntSeed { null: true })?),
            Some(4) => once(&mut self.group_id, map.next_value_seed(Scalar::<MaybeInt>::new())?),
            Some(5) => once(&mut self.last_visible, map.next_value_seed(Scalar::<MaybeDateTime>::new())?),
            _ => map.next_value::<Checked>().map(drop),
        }
    }

    /// The remaining members, then the record [`parse_host`](super::parse_host) would make.
    fn rest<'de, A: MapAccess<'de>>(mut self, mut map: A) -> Result<HostRecord, A::Error> {
        while let Some(key) = map.next_key_seed(HOST_KEYS)? {
            self.take(key, &mut map)?;
        }
        let hostname = self.hostname.filter(|h| !h.is_empty()).ok_or_else(give_up)?;
        let display_name = match self.display_name.flatten() {
            Some(dn) if !dn.is_empty() => dn,
            _ => hostname.clone(),
        };
        let status = match self.status {
            Some(Int::Int(0) | Int::Long(0)) => ComputerStatus::Ok,
            Some(Int::Int(1) | Int::Long(1)) => ComputerStatus::Critical,
            Some(Int::Int(2) | Int::Long(2)) => ComputerStatus::Warning,
            _ => return Err(give_up()),
        };
        let mask = match self.mask.flatten() {
            None => 0,
            Some(Int::Int(i)) => mask_bits(&Value::Int(i)).ok_or_else(give_up)?,
            Some(Int::Long(i)) => mask_bits(&Value::Long(i)).ok_or_else(give_up)?,
        };
        Ok(HostRecord {
            hostname,
            display_name,
            status,
            mask,
            group_id: self.group_id.flatten(),
            last_visible: self.last_visible.flatten(),
        })
    }
}

/// `KLHST_WKS_STATUS_ID` and `KLHST_WKS_STATUS_MASK`: an `int` or a `long` (`null` too when
/// `null` is set: an absent mask).
struct IntSeed {
    null: bool,
}

impl<'de> DeserializeSeed<'de> for IntSeed {
    type Value = Option<Int>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IntSeed {
    type Value = Option<Int>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Int::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v).map(|v| Some(Int::Int(v))).map_err(|_| give_up())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.null { Ok(None) } else { Err(give_up()) }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        typed(map, "long", LongValue).map(|v| Some(Int::Long(v)))
    }
}

/// A `long` wrapper's value: a JSON integer that fits 64 bits.
struct LongValue;

impl<'de> DeserializeSeed<'de> for LongValue {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for LongValue {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| give_up())
    }
}

/// A field the general path reads with `as_str`, `as_i64` or `as_datetime`: a scalar of
/// another kind is `None` there (not an error), a typed wrapper of the expected kind is read,
/// anything else gives up.
trait ScalarKind {
    type Out;
    /// A JSON object: the expected typed wrapper, or give up.
    fn typed<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self::Out>, A::Error>;
    /// A JSON string.
    fn of_str(_: &str) -> Option<Self::Out> {
        None
    }
    /// A JSON integer that fits 64 bits.
    fn of_int(_: i64) -> Option<Self::Out> {
        None
    }
}

struct Scalar<K>(std::marker::PhantomData<K>);

impl<K> Scalar<K> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<'de, K: ScalarKind> DeserializeSeed<'de> for Scalar<K> {
    type Value = Option<K::Out>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, K: ScalarKind> Visitor<'de> for Scalar<K> {
    type Value = Option<K::Out>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(K::of_int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        // Above `i64::MAX` the general path holds a float: not an integer.
        Ok(i64::try_from(v).ok().and_then(K::of_int))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(K::of_str(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        K::typed(map)
    }
}

/// `KLHST_WKS_DN`: a string.
struct MaybeStr;

impl ScalarKind for MaybeStr {
    type Out = String;
    fn typed<'de, A: MapAccess<'de>>(_: A) -> Result<Option<String>, A::Error> {
        Err(give_up())
    }
    fn of_str(s: &str) -> Option<String> {
        Some(s.to_owned())
    }
}

/// `KLHST_WKS_GROUPID`: an `int` or a `long`.
struct MaybeInt;

impl ScalarKind for MaybeInt {
    type Out = i64;
    fn typed<'de, A: MapAccess<'de>>(map: A) -> Result<Option<i64>, A::Error> {
        typed(map, "long", LongValue).map(Some)
    }
    fn of_int(i: i64) -> Option<i64> {
        Some(i)
    }
}

/// `KLHST_WKS_LAST_VISIBLE`: a `datetime` wrapper.
struct MaybeDateTime;

impl ScalarKind for MaybeDateTime {
    type Out = DateTime<Utc>;
    fn typed<'de, A: MapAccess<'de>>(map: A) -> Result<Option<DateTime<Utc>>, A::Error> {
        typed(map, "datetime", Typed(Kind::DateTime)).map(|t| t.datetime)
    }
}

/// Checks any value as [`Value::from_json`] would convert it, and builds nothing.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        match map.next_key_seed(Key(&["type", "value"]))? {
            None => Ok(Checked),
            // A wrapper: exactly `type` (a known word), then `value`.
            Some(Some(0)) => {
                let kind = map.next_value_seed(KindSeed)?;
                if map.next_key_seed(Key(&["value"]))? != Some(Some(0)) {
                    return Err(give_up());
                }
                map.next_value_seed(Typed(kind))?;
                match map.next_key_seed(NO_KEYS)? {
                    None => Ok(Checked),
                    Some(_) => Err(give_up()),
                }
            }
            Some(Some(_)) => Err(give_up()),
            // Another first key: a bare container, every member a value of its own.
            Some(None) => {
                map.next_value::<Checked>()?;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
    }
}

/// The typed wrapper words [`Value::from_json`] knows.
#[derive(Clone, Copy)]
enum Kind {
    Params,
    Long,
    DateTime,
    Date,
    Binary,
    Float,
}

struct KindSeed;

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KindSeed {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a type word")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(match v {
            "params" => Kind::Params,
            "long" => Kind::Long,
            "datetime" => Kind::DateTime,
            "date" => Kind::Date,
            "binary" => Kind::Binary,
            "float" | "double" => Kind::Float,
            _ => return Err(give_up()),
        })
    }
}

/// A typed wrapper's value, checked as `Value::from_typed` reads it; a datetime is kept.
struct Typed(Kind);

struct TypedValue {
    datetime: Option<DateTime<Utc>>,
}

const NOTHING: TypedValue = TypedValue { datetime: None };

impl<'de> DeserializeSeed<'de> for Typed {
    type Value = TypedValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TypedValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Typed {
    type Value = TypedValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a typed value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<TypedValue, E> {
        match self.0 {
            Kind::Params | Kind::DateTime => Ok(NOTHING),
            _ => Err(give_up()),
        }
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<TypedValue, E> {
        match self.0 {
            Kind::Long | Kind::Float => Ok(NOTHING),
            _ => Err(give_up()),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TypedValue, E> {
        match self.0 {
            Kind::Long if i64::try_from(v).is_ok() => Ok(NOTHING),
            Kind::Float => Ok(NOTHING),
            _ => Err(give_up()),
        }
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<TypedValue, E> {
        match self.0 {
            Kind::Float => Ok(NOTHING),
            _ => Err(give_up()),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TypedValue, E> {
        let ok = match self.0 {
            Kind::DateTime if v.is_empty() => return Ok(NOTHING),
            Kind::DateTime => {
                return parse_wire_datetime(v).map(|t| TypedValue { datetime: Some(t) }).ok_or_else(give_up);
            }
            Kind::Long => v.parse::<i64>().is_ok(),
            Kind::Date => true,
            Kind::Binary => B64.decode(v).is_ok(),
            Kind::Params | Kind::Float => false,
        };
        if ok { Ok(NOTHING) } else { Err(give_up()) }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypedValue, A::Error> {
        match self.0 {
            // A `params` value is a container: its members are values, it is no wrapper itself.
            Kind::Params => {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<Checked>()?;
                }
                Ok(NOTHING)
            }
            _ => Err(give_up()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng as _, SeedableRng as _};

    use super::read;
    use crate::hosts::{parse_chunk, parse_chunk_via_value};

    /// Both readings of `body` agree (records, or the error in every detail); returns whether
    /// the fast path took it.
    fn same(status: u16, body: &str) -> bool {
        let fast = parse_chunk(status, body);
        let general = parse_chunk_via_value(status, body);
        match (&fast, &general) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
            (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}"),
            _ => panic!("{body}\nfast: {fast:?}\ngeneral: {general:?}"),
        }
        status == 200 && read(body).is_some()
    }

    fn error(body: &str) -> String {
        parse_chunk(200, body).unwrap_err().to_string()
    }

    const HOST: &str = r#"{"KLHST_WKS_DN":"PC-1","KLHST_WKS_GROUPID":5,"KLHST_WKS_HOSTNAME":"h-1",
        "KLHST_WKS_LAST_VISIBLE":{"type":"datetime","value":"2024-05-01T10:00:00Z"},"KLHST_WKS_RTP_STATE":4,
        "KLHST_WKS_STATUS":29,"KLHST_WKS_STATUS_ID":2,"KLHST_WKS_STATUS_MASK":128}"#;

    fn chunk(items: &str) -> String {
        format!(r#"{{"pChunk":{{"KLCSP_ITERATOR_ARRAY":[{items}]}},"PxgRetVal":1}}"#)
    }

    #[test]
    fn the_common_shapes_take_the_fast_path_and_read_the_same() {
        let typed = format!(r#"{{"type":"params","value":{HOST}}}"#);
        for body in [
            chunk(HOST),
            chunk(&typed),
            chunk(&format!("{typed},{HOST}")),
            format!(r#"{{"PxgRetVal":1,"pChunk":{{"type":"params","value":{{"KLCSP_ITERATOR_ARRAY":[{typed}]}}}}}}"#),
            chunk(""),
            // The notes' §8 A sample, with a status id.
            chunk(
                r#"{"type":"params","value":{
   "KLHST_INSTANCEID":"025ed284-389b-44c5-a9ef-6e723f7d9466","KLHST_WKS_CPU_ARCH":2,
   "KLHST_WKS_CREATED":{"type":"datetime","value":"2021-02-23T10:14:33Z"},"KLHST_WKS_CTYPE":36871,
   "KLHST_WKS_DN":"EC2AMAZ-U66K3JL","KLHST_WKS_DNSDOMAIN":"eu-west-2.compute.internal","KLHST_WKS_DNSNAME":"ip-172-32-34-237",
   "KLHST_WKS_EDR_STATUS":0,"KLHST_WKS_FQDN":"ip-172-32-34-237.eu-west-2.compute.internal","KLHST_WKS_GROUPID":0,
   "KLHST_WKS_HOSTNAME":"4328e16g-bf83-47c3-8d0b-0fdf79f9d673",
   "KLHST_WKS_LAST_VISIBLE":{"type":"datetime","value":"2021-03-19T16:18:53Z"},"KLHST_WKS_NAG_VERSION":"12.2.0.4376",
   "KLHST_WKS_OS_NAME":"Microsoft Windows Server 2016","KLHST_WKS_RBT_REQUIRED":false,
   "KLHST_WKS_RTP_AV_BASES_TIME":{"type":"datetime","value":"2021-03-19T12:30:00Z"},"KLHST_WKS_RTP_AV_VERSION":"11.5.0.590",
   "KLHST_WKS_STATUS":29,"KLHST_WKS_STATUS_ID":1,"KLHST_WKS_STATUS_MASK":{"type":"long","value":2147483648}}}"#,
            ),
        ] {
            assert!(same(200, &body), "{body}");
        }
    }

    #[test]
    fn malformed_records_keep_their_reasons() {
        let cases = [
            (chunk(r#"{"KLHST_WKS_STATUS_ID":1}"#), "KLHST_WKS_HOSTNAME missing"),
            (chunk(r#"{"KLHST_WKS_HOSTNAME":"","KLHST_WKS_STATUS_ID":1}"#), "KLHST_WKS_HOSTNAME missing"),
            (chunk(r#"{"KLHST_WKS_HOSTNAME":7,"KLHST_WKS_STATUS_ID":1}"#), "KLHST_WKS_HOSTNAME missing"),
            (chunk(r#"{"KLHST_WKS_HOSTNAME":"h"}"#), "host h: KLHST_WKS_STATUS_ID missing"),
            (chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1.0}"#), "host h: KLHST_WKS_STATUS_ID missing"),
            (
                chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":7}"#),
                "host h: KLHST_WKS_STATUS_ID 7 is not 0, 1 or 2",
            ),
            (
                chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1,"KLHST_WKS_STATUS_MASK":"x"}"#),
                "host h: KLHST_WKS_STATUS_MASK is not an integer",
            ),
            (
                chunk(
                    r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1,"KLHST_WKS_STATUS_MASK":{"type":"long","value":-1}}"#,
                ),
                "host h: KLHST_WKS_STATUS_MASK is not an integer",
            ),
            (
                chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1,"KLHST_WKS_STATUS_MASK":-2147483649}"#),
                "host h: KLHST_WKS_STATUS_MASK is not an integer",
            ),
            (
                chunk(
                    r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1,"KLHST_WKS_LAST_VISIBLE":{"type":"datetime","value":"2021-02-30T00:00:00Z"}}"#,
                ),
                r#"invalid datetime value: "2021-02-30T00:00:00Z" is not a datetime"#,
            ),
            (
                chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1,"X":{"type":"long","value":"x"}}"#),
                r#"invalid long value: "x" is not an integer"#,
            ),
            (chunk("null"), "host item is not a container"),
            (chunk(r#"{"type":"long","value":3}"#), "host item is not a container"),
            (r#"{"pChunk":{"KLCSP_ITERATOR_ARRAY":{}}}"#.to_owned(), "KLCSP_ITERATOR_ARRAY is not an array"),
            (r#"{"pChunk":[]}"#.to_owned(), "pChunk is not a container"),
            (r#"{"PxgRetVal":0}"#.to_owned(), "pChunk missing"),
        ];
        for (body, reason) in cases {
            assert!(!same(200, &body), "{body}");
            let e = error(&body);
            assert_eq!(e, format!("malformed answer to ChunkAccessor.GetItemsChunk: {reason}"), "{body}");
        }
        // Not a chunk at all: the envelope's errors, whatever the status.
        for (status, body) in
            [(200, "nope"), (200, "[1]"), (500, r#"{"PxgError":{"code":1,"message":"m"}}"#), (503, "")]
        {
            assert!(!same(status, body));
        }
        assert!(!same(200, r#"{"PxgError":{"code":1,"module":"KLSTD","message":"busy"},"pChunk":{}}"#));
        // Valid, but not the common shape: read the general way.
        for body in [
            chunk(r#"{"value":{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":0},"type":"params"}"#),
            chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":0,"KLHST_WKS_STATUS_ID":2}"#),
            chunk(r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":0,"X":{"type":"long","value":"x","value":5}}"#),
            chunk(
                r#"{"KLHST_WKS_HOSTNAME":"h","KLHST_WKS_STATUS_ID":1,"KLHST_WKS_LAST_VISIBLE":{"type":"datetime","value":"2016-12-31T23:59:60Z"}}"#,
            ),
        ] {
            same(200, &body);
        }
    }

    /// Random chunks built from pieces that are valid, invalid, typed, untyped, duplicated
    /// and reordered: the two readings agree on every one.
    #[test]
    fn random_chunks_read_the_same_both_ways() {
        const VALUES: &[&str] = &[
            r#""h1""#,
            r#""""#,
            r#""h\u00e9""#,
            "null",
            "true",
            "0",
            "1",
            "2",
            "3",
            "-1",
            "-2147483648",
            "-2147483649",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "1.5",
            "1e3",
            "[]",
            r#"[1,{"type":"long","value":"x"}]"#,
            r#"[null,"a",{"type":"long","value":1}]"#,
            "{}",
            r#"{"type":"long","value":7}"#,
            r#"{"type":"long","value":-7}"#,
            r#"{"type":"long","value":"12"}"#,
            r#"{"type":"long","value":"x"}"#,
            r#"{"type":"long","value":1.5}"#,
            r#"{"type":"long","value":9223372036854775808}"#,
            r#"{"value":7,"type":"long"}"#,
            r#"{"type":"long","value":7,"x":1}"#,
            r#"{"type":"long","value":"x","value":5}"#,
            r#"{"type":"datetime","value":"2021-03-19T16:18:53Z"}"#,
            r#"{"type":"datetime","value":""}"#,
            r#"{"type":"datetime","value":null}"#,
            r#"{"type":"datetime","value":"2016-12-31T23:59:60Z"}"#,
            r#"{"type":"datetime","value":"2021-02-30T00:00:00Z"}"#,
            r#"{"type":"datetime","value":"2021-03-19T16:18:53+01:00"}"#,
            r#"{"type":"datetime","value":"2021-03-19T16:18:53.25Z"}"#,
            r#"{"type":"datetime","value":"yesterday"}"#,
            r#"{"type":"datetime","value":5}"#,
            r#"{"type":"params","value":{"a":{"type":"long","value":"x"}}}"#,
            r#"{"type":"params","value":{"type":"long","value":"x"}}"#,
            r#"{"type":"params","value":null}"#,
            r#"{"type":"params","value":3}"#,
            r#"{"type":"binary","value":"AAEC"}"#,
            r#"{"type":"binary","value":"!!"}"#,
            r#"{"type":"date","value":"2020-01-02"}"#,
            r#"{"type":"date","value":1}"#,
            r#"{"type":"double","value":0.25}"#,
            r#"{"type":"float","value":3}"#,
            r#"{"type":"float","value":"x"}"#,
            r#"{"type":"weird","value":1}"#,
            r#"{"type":"weird","value":"s"}"#,
            r#"{"type":"params","value":{}}"#,
            r#"{"type":"long","value":"+5"}"#,
            r#"{"type":"Long","value":5}"#,
            r#"{"type":5,"value":1}"#,
            r#"{"type":"long"}"#,
            r#"{"a":1,"type":"long","value":"x"}"#,
            r#"{"a":{"type":"date","value":[]}}"#,
        ];
        const KEYS: &[&str] = &[
            "KLHST_WKS_HOSTNAME",
            "KLHST_WKS_DN",
            "KLHST_WKS_STATUS_ID",
            "KLHST_WKS_STATUS_MASK",
            "KLHST_WKS_GROUPID",
            "KLHST_WKS_LAST_VISIBLE",
        ];
        const GOOD: &[&str] = &[
            r#""guid-1""#,
            r#""PC \"one\"""#,
            "1",
            r#"{"type":"long","value":4294967295}"#,
            "7",
            r#"{"type":"datetime","value":"2024-02-29T23:59:59Z"}"#,
        ];
        let mut rng = StdRng::seed_from_u64(15);
        let mut fast = 0;
        let total = 20_000;
        for _ in 0..total {
            let mut items = Vec::new();
            for _ in 0..rng.gen_range(0..3) {
                let mut fields: Vec<String> = Vec::new();
                for (key, good) in KEYS.iter().zip(GOOD) {
                    match rng.gen_range(0..40) {
                        0 => {}
                        1 => fields.push(format!(r#""{key}":{}"#, VALUES[rng.gen_range(0..VALUES.len())])),
                        2 => {
                            fields.push(format!(r#""{key}":{good}"#));
                            fields.push(format!(r#""{key}":{}"#, VALUES[rng.gen_range(0..VALUES.len())]));
                        }
                        _ => fields.push(format!(r#""{key}":{good}"#)),
                    }
                }
                for _ in 0..rng.gen_range(0..3) {
                    let key = ["X", "type", "value", "KLHST_WKS_STATUS"][rng.gen_range(0..4)];
                    let value = if rng.gen_bool(0.5) { "29" } else { VALUES[rng.gen_range(0..VALUES.len())] };
                    fields.insert(rng.gen_range(0..=fields.len()), format!(r#""{key}":{value}"#));
                }
                if rng.gen_bool(0.1) {
                    let (i, j) = (rng.gen_range(0..fields.len().max(1)), rng.gen_range(0..fields.len().max(1)));
                    if i < fields.len() && j < fields.len() {
                        fields.swap(i, j);
                    }
                }
                let fields = fields.join(",");
                items.push(match rng.gen_range(0..10) {
                    0..=5 => format!(r#"{{"type":"params","value":{{{fields}}}}}"#),
                    6..=8 => format!("{{{fields}}}"),
                    _ => VALUES[rng.gen_range(0..VALUES.len())].to_owned(),
                });
            }
            let array = format!("[{}]", items.join(","));
            let array = if rng.gen_range(0..30) == 0 { VALUES[rng.gen_range(0..VALUES.len())] } else { &array };
            let extra = if rng.gen_range(0..5) == 0 {
                format!(r#","X":{}"#, VALUES[rng.gen_range(0..VALUES.len())])
            } else {
                String::new()
            };
            let container = match rng.gen_range(0..10) {
                0..=5 => format!(r#"{{"KLCSP_ITERATOR_ARRAY":{array}{extra}}}"#),
                6..=8 => format!(r#"{{"type":"params","value":{{"KLCSP_ITERATOR_ARRAY":{array}{extra}}}}}"#),
                _ => VALUES[rng.gen_range(0..VALUES.len())].to_owned(),
            };
            let envelope = match rng.gen_range(0..20) {
                0 => format!(r#"{{"PxgError":{{"code":1}},"pChunk":{container}}}"#),
                1 => format!(r#"{{"pChunk":{container},"pChunk":{container}}}"#),
                2 => format!(r#"{{"PxgRetVal":{}}}"#, VALUES[rng.gen_range(0..VALUES.len())]),
                3 => format!(r#"{{"pChunk":{container},"PxgRetVal":{}}}"#, VALUES[rng.gen_range(0..VALUES.len())]),
                _ => format!(r#"{{"pChunk":{container},"PxgRetVal":{}}}"#, items.len()),
            };
            let status = if rng.gen_range(0..50) == 0 { 500 } else { 200 };
            if same(status, &envelope) {
                fast += 1;
            }
        }
        // Most of them are the common shape (the fast path is exercised, not only the fallback).
        assert!(fast > total / 4, "{fast} of {total} read fast");
    }
}
