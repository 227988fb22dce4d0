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
        IdempotencyKey(format!("kmsp-{:032x}-{}", fnv1a_128(self.canonical().as_bytes()), generation))
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
    /// Due time, UTC.
    pub due: DateTime<Utc>,
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
