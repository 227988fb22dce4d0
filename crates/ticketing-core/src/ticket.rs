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
        match self {
            Self::Status { product, tenant, device, description } => {
                format!("status|{}|{}|{}|{}", product.code(), tenant, device, description.code())
            }
            Self::Issue { tenant, event_type } => format!("issue|{}|{}", tenant, event_type.code()),
            Self::Event { product, tenant, source_id } => {
                format!("event|{}|{}|{}", product.code(), tenant, source_id)
            }
        }
    }

    /// The idempotency key of one generation of this key: `kmsp-<32 hex>-<generation>`, at most
    /// 50 characters, so it fits Autotask's `externalID` (50).
    ///
    /// The hash is 128-bit FNV-1a over [`TicketKey::canonical`]: no dependency, stable forever,
    /// and wide enough that collisions between an MSP's keys are not a practical concern.
    pub fn idempotency_key(&self, generation: u32) -> IdempotencyKey {
        IdempotencyKey(format!("{IDEMPOTENCY_PREFIX}{:032x}-{}", fnv1a_128(self.canonical().as_bytes()), generation))
    }
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
        format!("{KEY_LINE_PREFIX}{}", self.canonical())
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
        f.write_str(&self.canonical())
    }
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes.iter().fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
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
    if text.chars().count() <= max {
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
