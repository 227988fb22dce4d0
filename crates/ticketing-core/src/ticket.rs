//! What the core asks the PSA to create: ticket keys, idempotency keys and ticket drafts.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{DeviceId, Office365EventType, Product, PsaId, SourceEventId, StatusDescription, TenantId};

/// The identity of a problem that deserves one ticket.
///
/// - a status ticket belongs to (product, tenant, device, description): it closes when that
///   description clears, whatever else keeps the computer Warning or Critical;
/// - a resolvable Office 365 ticket belongs to (tenant, event type): it closes on the resolved
///   signal;
/// - every other event ticket belongs to its source event.
///
/// At most one ticket per key is open at any time (invariant 2). A key can see several tickets
/// over time (a description clears, its ticket closes, it comes back): each is one *generation*.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TicketKey {
    /// A computer-status ticket.
    Status {
        /// Product.
        product: Product,
        /// Tenant.
        tenant: TenantId,
        /// Computer.
        device: DeviceId,
        /// Description that raised it.
        description: StatusDescription,
    },
    /// A resolvable Office 365 issue ticket.
    Issue {
        /// Tenant.
        tenant: TenantId,
        /// Issue type.
        event_type: Office365EventType,
    },
    /// A ticket for one event.
    Event {
        /// Product.
        product: Product,
        /// Tenant.
        tenant: TenantId,
        /// The source's event id.
        source_id: SourceEventId,
    },
}

impl TicketKey {
    /// The tenant the key belongs to.
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Status { tenant, .. } | Self::Issue { tenant, .. } | Self::Event { tenant, .. } => tenant,
        }
    }

    /// The product the key belongs to.
    pub fn product(&self) -> Product {
        match self {
            Self::Status { product, .. } | Self::Event { product, .. } => *product,
            Self::Issue { .. } => Product::Office365,
        }
    }

    /// A canonical one-line spelling, stable across versions (it feeds the idempotency key).
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(self.canonical_len());
        self.write_canonical(&mut out);
        out
    }

    /// Calls `f` with the pieces of [`TicketKey::canonical`] in order: written one after the
    /// other they are the canonical spelling. The key line streams them instead of building it.
    fn for_each_part(&self, mut f: impl FnMut(&str)) {
        match self {
            Self::Status { product, tenant, device, description } => {
                let (pre, code) = description.code_parts();
                for part in ["status|", product.code(), "|", tenant.as_str(), "|", device.as_str(), "|", pre, code] {
                    f(part);
                }
            }
            Self::Issue { tenant, event_type } => {
                for part in ["issue|", tenant.as_str(), "|", event_type.code()] {
                    f(part);
                }
            }
            Self::Event { product, tenant, source_id } => {
                for part in ["event|", product.code(), "|", tenant.as_str(), "|", source_id.as_str()] {
                    f(part);
                }
            }
        }
    }

    /// The length in bytes of [`TicketKey::canonical`].
    pub(crate) fn canonical_len(&self) -> usize {
        let mut len = 0;
        self.for_each_part(|p| len += p.len());
        len
    }

    /// Appends [`TicketKey::canonical`] to `out`.
    pub(crate) fn write_canonical(&self, out: &mut String) {
        self.for_each_part(|p| out.push_str(p));
    }

    /// The 128-bit FNV-1a hash of [`TicketKey::canonical`], streamed over its pieces; the fixed
    /// start of each kind (`status|security_center|`, …) is hashed at compile time.
    pub(crate) fn hash(&self) -> u128 {
        match self {
            Self::Status { product, tenant, device, description } => {
                status_hash(STATUS_PREFIX[*product as usize].write(tenant.as_str().as_bytes()), device, description)
            }
            Self::Issue { tenant, event_type } => {
                ISSUE_PREFIX.write(tenant.as_str().as_bytes()).write(b"|").write(event_type.code().as_bytes()).0
            }
            Self::Event { product, tenant, source_id } => {
                EVENT_PREFIX[*product as usize]
                    .write(tenant.as_str().as_bytes())
                    .write(b"|")
                    .write(source_id.as_str().as_bytes())
                    .0
            }
        }
    }

    /// The idempotency key of one generation of this key: `kmsp-<32 hex>-<generation>`, at most
    /// 50 characters, so it fits Autotask's `externalID` (50).
    ///
    /// The hash is 128-bit FNV-1a over [`TicketKey::canonical`]: no dependency, stable forever,
    /// and wide enough that collisions between an MSP's keys are not a practical concern.
    pub fn idempotency_key(&self, generation: u32) -> IdempotencyKey {
        IdempotencyKey(InlineIdempotencyKey::from_hash(self.hash(), generation).as_str().to_owned())
    }

    /// [`TicketKey::idempotency_key`] as a fixed-size value, without allocating.
    pub fn inline_idempotency_key(&self, generation: u32) -> InlineIdempotencyKey {
        InlineIdempotencyKey::from_hash(self.hash(), generation)
    }
}

/// FNV-1a, 128 bits, as a stream; `const` so the fixed starts of keys hash at compile time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv128(pub(crate) u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    /// The hash of nothing.
    pub(crate) const NEW: Self = Self(Self::OFFSET);

    /// The hash continued over `bytes`.
    #[inline]
    pub(crate) const fn write(self, bytes: &[u8]) -> Self {
        let mut h = self.0;
        let mut i = 0;
        while i < bytes.len() {
            h = (h ^ bytes[i] as u128).wrapping_mul(Self::PRIME);
            i += 1;
        }
        Self(h)
    }
}

const fn product_prefix(kind: &str, product: Product) -> Fnv128 {
    let code = match product {
        Product::SecurityCenter => "security_center",
        Product::EndpointCloud => "endpoint_cloud",
        Product::Office365 => "office365",
    };
    Fnv128::NEW.write(kind.as_bytes()).write(code.as_bytes()).write(b"|")
}

/// `status|<product>|` hashed, indexed by `Product as usize`.
pub(crate) const STATUS_PREFIX: [Fnv128; 3] = [
    product_prefix("status|", Product::ALL[0]),
    product_prefix("status|", Product::ALL[1]),
    product_prefix("status|", Product::ALL[2]),
];
/// `event|<product>|` hashed, indexed by `Product as usize`.
pub(crate) const EVENT_PREFIX: [Fnv128; 3] = [
    product_prefix("event|", Product::ALL[0]),
    product_prefix("event|", Product::ALL[1]),
    product_prefix("event|", Product::ALL[2]),
];
/// `issue|` hashed.
pub(crate) const ISSUE_PREFIX: Fnv128 = Fnv128::NEW.write(b"issue|");

/// Finishes a status key's hash from the state after `status|<product>|<tenant>`: a
/// reconciliation hashes that start once per snapshot and only the rest per key.
pub(crate) fn status_hash(after_tenant: Fnv128, device: &DeviceId, description: &StatusDescription) -> u128 {
    let (pre, code) = description.code_parts();
    after_tenant
        .write(b"|")
        .write(device.as_str().as_bytes())
        .write(b"|")
        .write(pre.as_bytes())
        .write(code.as_bytes())
        .0
}

/// Starts the last line of every ticket description this system writes; the rest of the line is
/// the problem's [`TicketKey::canonical`] spelling. A listing of the PSA can then tell which
/// problem each ticket belongs to (see [`TicketKey::from_description`]), which is how the daemon
/// rebuilds a lost ledger without creating anything twice.
pub const KEY_LINE_PREFIX: &str = "msp-ticketing key: ";

/// The prefix of every idempotency key this system makes.
pub const IDEMPOTENCY_PREFIX: &str = "kmsp-";

impl TicketKey {
    /// The description's last line naming this key.
    pub fn key_line(&self) -> String {
        let mut out = String::with_capacity(KEY_LINE_PREFIX.len() + self.canonical_len());
        out.push_str(KEY_LINE_PREFIX);
        self.write_canonical(&mut out);
        out
    }

    /// The key and generation of a ticket this system wrote, read back from its description's
    /// key line and checked against its idempotency key (so an edited or foreign line is never
    /// trusted). `None` when the description has no key line or it does not match.
    ///
    /// Tenant, device and event ids may themselves contain `|`; every way of splitting the line
    /// is tried and only the one whose idempotency key matches is taken.
    pub fn from_description(description: &str, idempotency_key: &IdempotencyKey) -> Option<(Self, u32)> {
        let generation: u32 = idempotency_key.as_str().rsplit('-').next()?.parse().ok()?;
        let line = description.lines().rev().find_map(|l| l.trim_start().strip_prefix(KEY_LINE_PREFIX))?;
        Self::candidates(line).find(|k| k.idempotency_key(generation) == *idempotency_key).map(|k| (k, generation))
    }

    fn candidates(line: &str) -> Box<dyn Iterator<Item = Self> + '_> {
        let mut head = line.splitn(3, '|');
        let (Some(kind), Some(second), Some(rest)) = (head.next(), head.next(), head.next()) else {
            return Box::new(std::iter::empty());
        };
        match kind {
            "issue" => {
                // issue|tenant…|type: the type is the last field.
                let Some((tenant, ty)) = line["issue|".len()..].rsplit_once('|') else {
                    return Box::new(std::iter::empty());
                };
                let key = Office365EventType::from_code(ty)
                    .map(|event_type| Self::Issue { tenant: TenantId::new(tenant), event_type });
                Box::new(key.into_iter())
            }
            "event" => {
                let Some(product) = Product::from_code(second) else { return Box::new(std::iter::empty()) };
                let splits = rest.match_indices('|').map(|(i, _)| i).collect::<Vec<_>>();
                Box::new(splits.into_iter().map(move |i| Self::Event {
                    product,
                    tenant: TenantId::new(&rest[..i]),
                    source_id: SourceEventId::new(&rest[i + 1..]),
                }))
            }
            "status" => {
                let Some(product) = Product::from_code(second) else { return Box::new(std::iter::empty()) };
                let Some((ids, code)) = rest.rsplit_once('|') else { return Box::new(std::iter::empty()) };
                let description = StatusDescription::from_code(code);
                let splits = ids.match_indices('|').map(|(i, _)| i).collect::<Vec<_>>();
                Box::new(splits.into_iter().map(move |i| Self::Status {
                    product,
                    tenant: TenantId::new(&ids[..i]),
                    device: DeviceId::new(&ids[i + 1..]),
                    description: description.clone(),
                }))
            }
            _ => Box::new(std::iter::empty()),
        }
    }
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.for_each_part(|p| {
            if result.is_ok() {
                result = f.write_str(p);
            }
        });
        result
    }
}

/// The key the PSA stores with a ticket so that a create can be looked up after a crash or an
/// ambiguous failure (Autotask `externalID`). At most [`IdempotencyKey::MAX_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    /// Autotask's `externalID` length.
    pub const MAX_LEN: usize = 50;

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<InlineIdempotencyKey> for IdempotencyKey {
    fn eq(&self, other: &InlineIdempotencyKey) -> bool {
        self.as_str() == other.as_str()
    }
}

/// An [`IdempotencyKey`] held inline in a fixed-size value (no allocation, `Copy`): the ledger
/// keeps one per entry. Serializes as the same string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InlineIdempotencyKey {
    len: u8,
    bytes: [u8; IdempotencyKey::MAX_LEN],
}

/// A key longer than [`IdempotencyKey::MAX_LEN`] bytes cannot be held inline (nor sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotency key longer than {} bytes", IdempotencyKey::MAX_LEN)]
pub struct KeyTooLong;

impl InlineIdempotencyKey {
    /// `kmsp-<hash as 32 hex digits>-<generation>`.
    pub(crate) fn from_hash(hash: u128, generation: u32) -> Self {
        /// Each byte's two lowercase hex digits.
        const HEX_PAIRS: [[u8; 2]; 256] = {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut table = [[0u8; 2]; 256];
            let mut i = 0;
            while i < 256 {
                table[i] = [HEX[i >> 4], HEX[i & 0xf]];
                i += 1;
            }
            table
        };
        let mut bytes = [0u8; IdempotencyKey::MAX_LEN];
        let prefix = IDEMPOTENCY_PREFIX.as_bytes();
        bytes[..prefix.len()].copy_from_slice(prefix);
        let hex = &mut bytes[prefix.len()..prefix.len() + 32];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(hash.to_be_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        let dash = prefix.len() + 32;
        bytes[dash] = b'-';
        let mut buf = [0u8; 10];
        let digits = crate::text::u32_digits(generation, &mut buf);
        bytes[dash + 1..dash + 1 + digits.len()].copy_from_slice(digits);
        Self { len: (dash + 1 + digits.len()) as u8, bytes }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        // Built only from whole `str`s or ASCII, so always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The key as an owned [`IdempotencyKey`].
    pub fn to_key(&self) -> IdempotencyKey {
        IdempotencyKey(self.as_str().to_owned())
    }
}

impl TryFrom<&str> for InlineIdempotencyKey {
    type Error = KeyTooLong;

    fn try_from(s: &str) -> Result<Self, KeyTooLong> {
        let mut bytes = [0u8; IdempotencyKey::MAX_LEN];
        bytes.get_mut(..s.len()).ok_or(KeyTooLong)?.copy_from_slice(s.as_bytes());
        Ok(Self { len: s.len() as u8, bytes })
    }
}

impl TryFrom<&IdempotencyKey> for InlineIdempotencyKey {
    type Error = KeyTooLong;

    fn try_from(key: &IdempotencyKey) -> Result<Self, KeyTooLong> {
        Self::try_from(key.as_str())
    }
}

impl From<InlineIdempotencyKey> for IdempotencyKey {
    fn from(key: InlineIdempotencyKey) -> Self {
        key.to_key()
    }
}

impl PartialEq<IdempotencyKey> for InlineIdempotencyKey {
    fn eq(&self, other: &IdempotencyKey) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for InlineIdempotencyKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InlineIdempotencyKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for InlineIdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InlineIdempotencyKey").field(&self.as_str()).finish()
    }
}

impl fmt::Display for InlineIdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InlineIdempotencyKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InlineIdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s.as_str()).map_err(serde::de::Error::custom)
    }
}

/// A note for a ticket (today: why it was closed). Part of the outbox: retried until it lands,
/// never added twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketNote {
    /// Unique per note and stable across retries (`<idempotency key>/close`): a backend stores
    /// it with the note so that a retry after an unknown outcome can look the note up.
    pub marker: String,
    /// The note's text.
    pub text: String,
}

/// A ticket as the PSA knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// The PSA's id.
    pub id: PsaId,
    /// The number technicians see (Autotask `T20301115.0001`), when known.
    pub number: Option<String>,
}

/// How urgent a piece of PSA work is; the daemon spends its request budget on lower ranks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Critical events and Critical statuses, Office 365 issues.
    Critical,
    /// Everything else.
    Normal,
}

/// A ticket ready to be created: every PSA field already resolved to an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDraft {
    /// The PSA account (Autotask `companyID`).
    pub account: PsaId,
    /// Title, at most [`TicketDraft::TITLE_MAX`] characters.
    pub title: String,
    /// Description, at most [`TicketDraft::DESCRIPTION_MAX`] characters.
    pub description: String,
    /// New-ticket status.
    pub status: PsaId,
    /// Priority.
    pub priority: PsaId,
    /// Queue.
    pub queue: PsaId,
    /// Due time, UTC. Set again from [`TicketDraft::due_hours`] at the moment of the PSA call
    /// ([`TicketDraft::at`]): the due time counts from the ticket, not from the first sight.
    pub due: DateTime<Utc>,
    /// The rule's due time in hours (absent in drafts stored by older versions: `due` stands).
    #[serde(default)]
    pub due_hours: Option<u32>,
    /// When the event stops qualifying (its time plus the rule's lifetime): a create not sent by
    /// then is dropped as stale, never made (the guide: after a broken connection "only events
    /// more recent than the specified period are sent"). `None` for rows without a lifetime.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The rule row the draft was built from, so a refused create can be re-planned with the
    /// row's fixed settings ([`crate::decide::replan`]).
    #[serde(default)]
    pub row: Option<crate::rules::RowId>,
    /// Ticket source (optional in the guide).
    pub source: Option<PsaId>,
    /// Work type (Autotask `billingCodeID`).
    pub work_type: Option<PsaId>,
    /// Issue type.
    pub issue_type: Option<PsaId>,
    /// Sub-issue type.
    pub sub_issue_type: Option<PsaId>,
    /// Sent with the ticket (Autotask `externalID`) so it can be found again.
    pub idempotency_key: IdempotencyKey,
    /// The computer's name, for backends that link a configuration item.
    pub device_name: Option<String>,
    /// Scheduling hint.
    pub urgency: Urgency,
}

impl TicketDraft {
    /// Autotask's title length.
    pub const TITLE_MAX: usize = 255;
    /// Autotask's description length.
    pub const DESCRIPTION_MAX: usize = 8000;
    /// Appended to text that had to be cut.
    pub const CUT_MARKER: &'static str = " […]";

    /// Whether the draft no longer qualifies at `now` (stale: at or past [`Self::expires_at`]).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// The draft as sent at `now`: its due time counts from `now`.
    pub fn at(&self, now: DateTime<Utc>) -> Self {
        let mut out = self.clone();
        if let Some(h) = self.due_hours {
            out.due = now + chrono::Duration::hours(i64::from(h));
        }
        out
    }
}

/// Cuts `text` to at most `max` characters on a char boundary, ending with
/// [`TicketDraft::CUT_MARKER`] when something was cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    // At most `max` bytes is at most `max` characters: no counting needed.
    if text.len() <= max || text.chars().count() <= max {
        return text.to_owned();
    }
    let marker = TicketDraft::CUT_MARKER;
    let keep = max.saturating_sub(marker.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(marker);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let text = "é".repeat(300);
        let cut = truncate_chars(&text, 255);
        assert_eq!(cut.chars().count(), 255);
        assert!(cut.ends_with(TicketDraft::CUT_MARKER));
        assert_eq!(truncate_chars("short", 255), "short");
        let exact = "x".repeat(255);
        assert_eq!(truncate_chars(&exact, 255), exact);
    }

    #[test]
    fn idempotency_key_is_short_stable_and_distinct() {
        let a = TicketKey::Event {
            product: Product::SecurityCenter,
            tenant: "ksc:main/vs:1".into(),
            source_id: "1043".into(),
        };
        let b = TicketKey::Event {
            product: Product::SecurityCenter,
            tenant: "ksc:main/vs:1".into(),
            source_id: "1044".into(),
        };
        let ka = a.idempotency_key(1);
        assert!(ka.as_str().len() <= IdempotencyKey::MAX_LEN);
        assert_eq!(a.idempotency_key(1), ka);
        assert_ne!(a.idempotency_key(2), ka);
        assert_ne!(b.idempotency_key(1), ka);
        let long = TicketKey::Status {
            product: Product::EndpointCloud,
            tenant: TenantId::new("x".repeat(500)),
            device: DeviceId::new("y".repeat(500)),
            description: StatusDescription::Unknown("z".repeat(500)),
        };
        assert!(long.idempotency_key(u32::MAX).as_str().len() <= IdempotencyKey::MAX_LEN);
    }
}
