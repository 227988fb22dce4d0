//! The book of tickets this system owns, one entry per [`TicketKey`], and the state machine
//! every entry walks:
//!
//! ```text
//!             Plan                Opened               CloseRequested           Closed
//!   (none) ─────────▶ Planned ─────────────▶ Open ─────────────────▶ Closing ─────────▶ Closed{cleared}
//!      ▲                │  ▲ (crash: look the      │  ClosedByTechnician │                 │
//!      │                │  │  key up, then create) ▼                     ▼                 │
//!      │                │  └──────────────── Closed{by technician, not cleared} ◀──────────┘
//!      │                │ Abandoned                  │ Cleared (condition went away)
//!      │                ▼                            ▼
//!      └────────── Failed            Closed{cleared} ── Plan (next generation) ──▶ Planned
//! ```
//!
//! - `Planned` is written **before** the PSA is called, with the idempotency key the ticket
//!   will carry. After a crash, every `Planned` entry is looked up in the PSA by that key before
//!   anything is created again ([`Ledger::recovery`]): this is what makes creation exactly-once.
//! - `Closing` is written before the close call; after a crash it is simply retried (closing is
//!   idempotent).
//! - A ticket a technician closed stays closed while its condition persists; once the
//!   condition clears the entry is marked `cleared`, and the next occurrence plans a new
//!   generation (with a new idempotency key).
//!
//! The ledger is plain data; the daemon persists every [`Transition`] in one transaction.

use std::collections::BTreeMap;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{DeviceId, Office365EventType, Product, PsaId, StatusDescription, TenantId};
use crate::ticket::{IdempotencyKey, TicketDraft, TicketKey, TicketRef, Urgency};

/// Who closed a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// This system, because the condition cleared or the issue resolved.
    Integration,
    /// A person, in the PSA.
    Technician,
}

/// Where one ticket is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TicketState {
    /// Decided and recorded; the PSA may or may not have it yet.
    Planned {
        /// What to create.
        draft: TicketDraft,
    },
    /// The PSA has it, open.
    Open {
        /// The ticket.
        ticket: TicketRef,
    },
    /// The condition cleared; the close call is due (or in flight).
    Closing {
        /// The ticket.
        ticket: TicketRef,
        /// The closed status to set.
        status: PsaId,
        /// Why, for the ticket's note.
        note: String,
    },
    /// Closed.
    Closed {
        /// The ticket.
        ticket: Option<TicketRef>,
        /// Who closed it.
        by: ClosedBy,
        /// Whether the condition has cleared since (a new occurrence may then be ticketed).
        cleared: bool,
    },
    /// The PSA refused the ticket for good (for example a validation error); kept for audit.
    Failed {
        /// The PSA's reason.
        reason: String,
    },
}

impl TicketState {
    /// Short lowercase name (`planned`, `open`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Planned { .. } => "planned",
            Self::Open { .. } => "open",
            Self::Closing { .. } => "closing",
            Self::Closed { .. } => "closed",
            Self::Failed { .. } => "failed",
        }
    }

    /// Whether a ticket exists or may exist and is not closed: the state invariant 2 counts.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Planned { .. } | Self::Open { .. } | Self::Closing { .. })
    }
}

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The problem's identity.
    pub key: TicketKey,
    /// Which occurrence of the problem (1, 2, …).
    pub generation: u32,
    /// Sent with the ticket; derived from key and generation.
    pub idempotency_key: IdempotencyKey,
    /// Scheduling hint.
    pub urgency: Urgency,
    /// State.
    pub state: TicketState,
    /// Time of the last transition.
    pub updated_at: DateTime<Utc>,
}

impl LedgerEntry {
    /// The ticket, once the PSA has confirmed it.
    pub fn ticket(&self) -> Option<&TicketRef> {
        match &self.state {
            TicketState::Open { ticket } | TicketState::Closing { ticket, .. } => Some(ticket),
            TicketState::Closed { ticket, .. } => ticket.as_ref(),
            TicketState::Planned { .. } | TicketState::Failed { .. } => None,
        }
    }

    /// Whether a new occurrence of the key may be planned (a new generation).
    pub fn allows_new_generation(&self) -> bool {
        matches!(self.state, TicketState::Closed { cleared: true, .. } | TicketState::Failed { .. })
    }
}

/// A change to the ledger. Each is persisted atomically by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transition", rename_all = "snake_case")]
pub enum Transition {
    /// Record a ticket to create (before the PSA call).
    Plan {
        /// Key.
        key: TicketKey,
        /// Generation (previous + 1, or 1).
        generation: u32,
        /// What to create.
        draft: TicketDraft,
    },
    /// The PSA created the ticket, or already had it under the idempotency key.
    Opened {
        /// Key.
        key: TicketKey,
        /// The ticket.
        ticket: TicketRef,
    },
    /// The PSA refused the create for good.
    Abandoned {
        /// Key.
        key: TicketKey,
        /// The PSA's reason.
        reason: String,
    },
    /// Record a close to perform (before the PSA call).
    CloseRequested {
        /// Key.
        key: TicketKey,
        /// The closed status.
        status: PsaId,
        /// Why.
        note: String,
    },
    /// The PSA closed the ticket.
    Closed {
        /// Key.
        key: TicketKey,
    },
    /// The PSA shows the ticket closed by someone else.
    ClosedByTechnician {
        /// Key.
        key: TicketKey,
    },
    /// The condition of a technician-closed ticket went away.
    Cleared {
        /// Key.
        key: TicketKey,
    },
}

impl Transition {
    /// The key the transition concerns.
    pub fn key(&self) -> &TicketKey {
        match self {
            Self::Plan { key, .. }
            | Self::Opened { key, .. }
            | Self::Abandoned { key, .. }
            | Self::CloseRequested { key, .. }
            | Self::Closed { key }
            | Self::ClosedByTechnician { key }
            | Self::Cleared { key } => key,
        }
    }
}

/// A transition that does not fit the entry's state (a bug in the caller, or a stale retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {transition} to {key} in state {state}")]
pub struct LedgerError {
    /// The key.
    pub key: String,
    /// The entry's state (`absent` when there is none).
    pub state: &'static str,
    /// The transition's name.
    pub transition: &'static str,
}

/// What the daemon must do for an entry after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// A create may or may not have reached the PSA: look the idempotency key up; create only if
    /// it is not there.
    LookUpThenCreate(TicketKey),
    /// A close was due: do it again (closing is idempotent).
    RetryClose(TicketKey),
}

/// Every ticket this system owns. Serializes as the list of its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<LedgerEntry>", into = "Vec<LedgerEntry>")]
pub struct Ledger {
    entries: BTreeMap<TicketKey, LedgerEntry>,
}

impl From<Vec<LedgerEntry>> for Ledger {
    fn from(entries: Vec<LedgerEntry>) -> Self {
        Self::from_entries(entries)
    }
}

impl From<Ledger> for Vec<LedgerEntry> {
    fn from(ledger: Ledger) -> Self {
        ledger.entries.into_values().collect()
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a ledger from stored entries.
    pub fn from_entries(entries: impl IntoIterator<Item = LedgerEntry>) -> Self {
        Self { entries: entries.into_iter().map(|e| (e.key.clone(), e)).collect() }
    }

    /// The entry of a key.
    pub fn get(&self, key: &TicketKey) -> Option<&LedgerEntry> {
        self.entries.get(key)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Status-ticket entries of one tenant and product, in key order.
    pub fn status_entries<'a>(
        &'a self,
        product: Product,
        tenant: &'a TenantId,
    ) -> impl Iterator<Item = &'a LedgerEntry> + 'a {
        let start = TicketKey::Status {
            product,
            tenant: tenant.clone(),
            device: DeviceId::new(""),
            description: StatusDescription::MIN,
        };
        self.entries.range((Bound::Included(start), Bound::Unbounded)).map(|(_, e)| e).take_while(
            move |e| matches!(&e.key, TicketKey::Status { product: p, tenant: t, .. } if *p == product && t == tenant),
        )
    }

    /// Issue-ticket entries of one tenant.
    pub fn issue_entries<'a>(&'a self, tenant: &'a TenantId) -> impl Iterator<Item = &'a LedgerEntry> + 'a {
        let start = TicketKey::Issue { tenant: tenant.clone(), event_type: Office365EventType::ALL[0] };
        self.entries
            .range((Bound::Included(start), Bound::Unbounded))
            .map(|(_, e)| e)
            .take_while(move |e| matches!(&e.key, TicketKey::Issue { tenant: t, .. } if t == tenant))
    }

    /// The generation a new ticket for `key` gets, or `None` when the key must not be ticketed
    /// again now (a live ticket exists, a technician closed it and the condition persists, or
    /// it is an event that was already handled).
    pub fn next_generation(&self, key: &TicketKey) -> Option<u32> {
        match self.entries.get(key) {
            None => Some(1),
            Some(_) if matches!(key, TicketKey::Event { .. }) => None,
            Some(e) if e.allows_new_generation() => Some(e.generation + 1),
            Some(_) => None,
        }
    }

    /// Applies a transition, or says why it does not fit.
    pub fn apply(&mut self, transition: &Transition, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let key = transition.key();
        let current = self.entries.get(key);
        let err = |name| LedgerError {
            key: key.canonical(),
            state: current.map_or("absent", |e| e.state.name()),
            transition: name,
        };
        let next_state = match (transition, current.map(|e| &e.state)) {
            (Transition::Plan { generation, draft, .. }, _) => {
                if self.next_generation(key) != Some(*generation) {
                    return Err(err("plan"));
                }
                let entry = LedgerEntry {
                    key: key.clone(),
                    generation: *generation,
                    idempotency_key: key.idempotency_key(*generation),
                    urgency: draft.urgency,
                    state: TicketState::Planned { draft: draft.clone() },
                    updated_at: now,
                };
                self.entries.insert(key.clone(), entry);
                return Ok(());
            }
            (Transition::Opened { ticket, .. }, Some(TicketState::Planned { .. })) => {
                TicketState::Open { ticket: ticket.clone() }
            }
            (Transition::Opened { .. }, _) => return Err(err("opened")),
            (Transition::Abandoned { reason, .. }, Some(TicketState::Planned { .. })) => {
                TicketState::Failed { reason: reason.clone() }
            }
            (Transition::Abandoned { .. }, _) => return Err(err("abandoned")),
            (Transition::CloseRequested { status, note, .. }, Some(TicketState::Open { ticket })) => {
                TicketState::Closing { ticket: ticket.clone(), status: *status, note: note.clone() }
            }
            (Transition::CloseRequested { .. }, _) => return Err(err("close_requested")),
            (Transition::Closed { .. }, Some(TicketState::Closing { ticket, .. })) => {
                TicketState::Closed { ticket: Some(ticket.clone()), by: ClosedBy::Integration, cleared: true }
            }
            (Transition::Closed { .. }, _) => return Err(err("closed")),
            (
                Transition::ClosedByTechnician { .. },
                Some(TicketState::Open { ticket } | TicketState::Closing { ticket, .. }),
            ) => TicketState::Closed { ticket: Some(ticket.clone()), by: ClosedBy::Technician, cleared: false },
            (Transition::ClosedByTechnician { .. }, _) => return Err(err("closed_by_technician")),
            (Transition::Cleared { .. }, Some(TicketState::Closed { ticket, by, .. })) => {
                TicketState::Closed { ticket: ticket.clone(), by: *by, cleared: true }
            }
            (Transition::Cleared { .. }, _) => return Err(err("cleared")),
        };
        if let Some(entry) = self.entries.get_mut(key) {
            entry.state = next_state;
            entry.updated_at = now;
        }
        Ok(())
    }

    /// What to do after a restart, most urgent first: every `Planned` entry is looked up before
    /// it is created, every `Closing` entry is closed again.
    pub fn recovery(&self) -> Vec<Recovery> {
        let mut out: Vec<(Urgency, Recovery)> = self
            .entries
            .values()
            .filter_map(|e| match e.state {
                TicketState::Planned { .. } => Some((e.urgency, Recovery::LookUpThenCreate(e.key.clone()))),
                TicketState::Closing { .. } => Some((e.urgency, Recovery::RetryClose(e.key.clone()))),
                _ => None,
            })
            .collect();
        out.sort_by_key(|(u, _)| *u);
        out.into_iter().map(|(_, r)| r).collect()
    }
}
