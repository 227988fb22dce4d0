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
//!
//! **Memory.** A ledger holds every ticket an MSP's integration ever owned, so an entry is kept
//! small (under 300 bytes at a million open tickets, `benches/ledger_memory.rs`): the key is
//! stored once (the entries form a set ordered by their own key, not a map from a copy of it),
//! each entry is boxed so the tree's nodes hold pointers rather than half-empty slots of large
//! values, the planned draft and the close note are boxed (only entries in those states pay for
//! them), and the idempotency key is an [`InlineIdempotencyKey`], a fixed-size value. The JSON of
//! entries is unchanged (`tests/compat.rs` reads entries stored by earlier versions).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{DeviceId, Office365EventType, Product, PsaId, StatusDescription, TenantId};
use crate::ports::{OwnedTicket, TicketUpdate};
use crate::rules::RowId;
use crate::storm::{StormChange, StormItem, StormPart};
use crate::text::FastMap;
mod apply;
mod storms;

use crate::ticket::{EVENT_PREFIX, InlineIdempotencyKey, TicketDraft, TicketKey, TicketNote, TicketRef, Urgency};

/// Who closed a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// This system, because the condition cleared or the issue resolved.
    Integration,
    /// A person, in the PSA.
    Technician,
}

/// Why an open (or automatically closed) ticket is being changed ([`TicketState::Updating`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateReason {
    /// A status problem returned within its row's reopen window after the integration closed
    /// its ticket: the ticket is reopened instead of a new one being created.
    Reopen,
    /// The problem became more severe (Warning to Critical): priority and due time follow.
    Severity,
}

/// Where one ticket is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TicketState {
    /// Decided and recorded; the PSA may or may not have it yet.
    Planned {
        /// What to create (boxed: most entries are in other states, and a draft is large).
        draft: Box<TicketDraft>,
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
        /// The close note still to add (outbox work: retried until it lands).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<Box<TicketNote>>,
        /// When the close was recorded (absent in entries stored by older versions, and for
        /// adopted tickets): the reopen window counts from it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed_at: Option<DateTime<Utc>>,
    },
    /// A status problem seen active, waiting for its row's creation delay (the flap guard)
    /// before it gets a ticket. Not live: no ticket exists. Removed (or the previous state put
    /// back) when the problem clears first ([`Transition::DelayCleared`]).
    Delayed {
        /// When the problem was first seen active.
        since: DateTime<Utc>,
        /// The state of the key's previous generation (a closed ticket, which a reopen may take
        /// back), `None` when the key had no entry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<Box<Self>>,
    },
    /// The PSA ticket is to be changed ([`crate::ports::TicketSink::update_ticket`]) and a note
    /// added (at most once, by its marker): a reopen or a priority raise. Live; outbox work
    /// ([`Recovery::Update`]) until [`Transition::Updated`] or [`Transition::UpdateRefused`].
    Updating {
        /// The ticket.
        ticket: TicketRef,
        /// The fields to change.
        update: Box<TicketUpdate>,
        /// The note saying why (its marker is unique and stable across retries).
        note: Box<TicketNote>,
        /// Reopen or priority raise.
        reason: UpdateReason,
    },
    /// The PSA refused the ticket (for example a validation error). Kept with its draft so an
    /// operator can re-plan it once the rule is fixed ([`Transition::Retry`]).
    Failed {
        /// The PSA's reason.
        reason: String,
        /// What was refused (absent in entries stored by older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        draft: Option<Box<TicketDraft>>,
    },
    /// Alert storms: a problem added to a storm ticket instead of getting its own. Not live: no
    /// ticket of its own exists or will. An event stays so; a status problem stays so while it
    /// persists (no ticket of its own then either) and is closed without a call once it clears
    /// ([`Transition::StormCleared`]).
    Stormed {
        /// The storm ticket's key.
        storm: TicketKey,
        /// When it was added.
        at: DateTime<Utc>,
    },
    /// The planned create was never sent, for a reason (today: `stale`, its event outlived its
    /// lifetime before the PSA could be reached).
    Dropped {
        /// Why (a [`crate::decide::SkipReason`] label).
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
            Self::Dropped { .. } => "dropped",
            Self::Delayed { .. } => "delayed",
            Self::Updating { .. } => "updating",
            Self::Stormed { .. } => "stormed",
        }
    }

    /// Whether a ticket exists or may exist and is not closed: the state invariant 2 counts.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Planned { .. } | Self::Open { .. } | Self::Closing { .. } | Self::Updating { .. })
    }
}

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The problem's identity.
    pub key: TicketKey,
    /// Which occurrence of the problem (1, 2, …).
    pub generation: u32,
    /// Sent with the ticket; derived from key and generation. Held inline (fixed size).
    pub idempotency_key: InlineIdempotencyKey,
    /// Scheduling hint.
    pub urgency: Urgency,
    /// State.
    pub state: TicketState,
    /// Time of the last transition.
    pub updated_at: DateTime<Utc>,
    /// How often this generation's ticket was reopened (the reopen window): makes the markers
    /// of its later close, reopen and priority notes unique. Absent (0) in older entries.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopens: u32,
    /// An event ticket made on a row with a recurrence window: what makes a later event "the
    /// same" (its computer and event type), how often it recurred and the notes still to add.
    /// Absent for every other entry, and in entries stored by older versions (boxed: only the
    /// entries that have one pay for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Box<Recurrence>>,
    /// Alert storms (issue #27): a ticket of a row with storm settings (it counts toward the
    /// threshold), or a storm ticket with its record. Absent for every other entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<Box<StormPart>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The recurrence note (issue 20): an event ticket remembers what makes a later event the same
/// one, so that its recurrences are added to it as notes instead of becoming tickets.
///
/// "The same" is (product, tenant, computer, event type): the event type (`GNRL_EV_VIRUS_FOUND`)
/// names the problem, where a severity is only the row it falls in (a detected virus and a
/// failed update task can both be Critical: folding by severity would hide one problem in the
/// other's ticket). The product and tenant come from the entry's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// The computer.
    pub device: DeviceId,
    /// The source's event type code.
    pub event_type: String,
    /// When the ticketed event occurred: the recurrence window counts from it, in the events'
    /// own times (a late read decides as a timely one).
    pub first_at: DateTime<Utc>,
    /// How often the event recurred (and was noted, or is to be) so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u32,
    /// The notes still to add, oldest first: outbox work ([`Recovery::AddRecurrenceNote`]) once
    /// the ticket exists, each at most once (its marker, `<idempotency key>/recurrence/<n>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<TicketNote>,
}

impl Recurrence {
    /// A fresh recurrence identity (no recurrence yet).
    pub fn new(device: DeviceId, event_type: String, first_at: DateTime<Utc>) -> Self {
        Self { device, event_type, first_at, count: 0, notes: Vec::new() }
    }
}

/// The recurrence index's hash of (product, tenant, computer, event type). A collision only
/// hides a recurrence (the event gets its own ticket, as without the feature): every lookup
/// checks the entry it finds.
fn recurrence_hash(product: Product, tenant: &TenantId, device: &DeviceId, event_type: &str) -> u128 {
    EVENT_PREFIX[product as usize]
        .write(tenant.as_str().as_bytes())
        .write(b"\0")
        .write(device.as_str().as_bytes())
        .write(b"\0")
        .write(event_type.as_bytes())
        .0
}

/// The key of an entry in the recurrence index, when it has a recurrence identity.
fn recurrence_slot(entry: &LedgerEntry) -> Option<u128> {
    let r = entry.recurrence.as_deref()?;
    Some(recurrence_hash(entry.key.product(), entry.key.tenant(), &r.device, &r.event_type))
}

impl LedgerEntry {
    /// The ticket, once the PSA has confirmed it.
    pub fn ticket(&self) -> Option<&TicketRef> {
        match &self.state {
            TicketState::Open { ticket }
            | TicketState::Closing { ticket, .. }
            | TicketState::Updating { ticket, .. } => Some(ticket),
            TicketState::Closed { ticket, .. } => ticket.as_ref(),
            TicketState::Planned { .. }
            | TicketState::Failed { .. }
            | TicketState::Dropped { .. }
            | TicketState::Stormed { .. }
            | TicketState::Delayed { .. } => None,
        }
    }

    /// Whether a new occurrence of the key may be planned (a new generation). Not while a close
    /// note is still to be added: the entry holds that outbox work.
    pub fn allows_new_generation(&self) -> bool {
        matches!(
            self.state,
            TicketState::Closed { cleared: true, note: None, .. }
                | TicketState::Failed { .. }
                | TicketState::Dropped { .. }
                | TicketState::Delayed { .. }
        )
    }

    /// The marker of this generation's note of `kind` (`close`, `reopen`, `severity`): unique
    /// per note and stable across retries. A ticket never reopened keeps the marker earlier
    /// versions wrote (`<idempotency key>/close`).
    pub fn note_marker(&self, kind: &str) -> String {
        if self.reopens == 0 {
            format!("{}/{kind}", self.idempotency_key)
        } else {
            format!("{}/{kind}/{}", self.idempotency_key, self.reopens)
        }
    }

    /// Whether [`LedgerEntry::pending`] has work (without cloning the key).
    fn is_pending(&self) -> bool {
        matches!(
            self.state,
            TicketState::Planned { .. }
                | TicketState::Closing { .. }
                | TicketState::Closed { note: Some(_), .. }
                | TicketState::Updating { .. }
        ) || self.recurrence_note().is_some()
    }

    /// The storm note to add now: a storm ticket's oldest queued note, once the ticket exists.
    pub fn storm_note(&self) -> Option<&TicketNote> {
        let Some(StormPart::Ticket(storm)) = self.storm.as_deref() else { return None };
        let note = storm.notes.first()?;
        matches!(
            self.state,
            TicketState::Open { .. } | TicketState::Closing { .. } | TicketState::Closed { ticket: Some(_), .. }
        )
        .then_some(note)
    }

    /// The PSA work this entry waits for, if any. The state's own work comes first; then the
    /// oldest recurrence note, once the ticket exists (a note for a planned ticket waits for
    /// its create).
    pub fn pending(&self) -> Option<Recovery> {
        match &self.state {
            TicketState::Planned { .. } => Some(Recovery::LookUpThenCreate(self.key.clone())),
            TicketState::Closing { .. } => Some(Recovery::RetryClose(self.key.clone())),
            TicketState::Closed { note: Some(_), .. } => Some(Recovery::AddNote(self.key.clone())),
            TicketState::Updating { .. } => Some(Recovery::Update(self.key.clone())),
            _ => self.recurrence_note().map(|_| Recovery::AddRecurrenceNote(self.key.clone())),
        }
    }

    /// The recurrence note to add now: the oldest pending one, when the ticket exists (open, or
    /// closed since: the note still belongs in its history).
    pub fn recurrence_note(&self) -> Option<&TicketNote> {
        if self.storm.is_some() {
            if let Some(note) = self.storm_note() {
                return Some(note);
            }
        }
        let note = self.recurrence.as_deref()?.notes.first()?;
        matches!(self.state, TicketState::Open { .. } | TicketState::Closed { ticket: Some(_), .. }).then_some(note)
    }

    /// The marker the next recurrence note of this ticket gets (`<idempotency key>/recurrence/
    /// <n>`, n counting from 1), `None` for an entry without a recurrence identity.
    pub fn next_recurrence_marker(&self) -> Option<String> {
        let r = self.recurrence.as_deref()?;
        Some(format!("{}/recurrence/{}", self.idempotency_key, r.count.saturating_add(1)))
    }
}

/// [`Ledger::next_generation`] given the key's entry.
pub(crate) fn next_generation(key: &TicketKey, entry: Option<&LedgerEntry>) -> Option<u32> {
    match entry {
        None => Some(1),
        Some(_) if matches!(key, TicketKey::Event { .. }) => None,
        Some(e) if e.allows_new_generation() => Some(e.generation + 1),
        Some(_) => None,
    }
}

/// The ticket a reopen may take back, and when it was closed: a ticket this system closed
/// (never one a technician closed), whose close note has landed, either as the key's state or
/// as the state a delayed entry waits on.
pub fn reopenable(state: &TicketState) -> Option<(&TicketRef, DateTime<Utc>)> {
    match state {
        TicketState::Closed {
            ticket: Some(ticket),
            by: ClosedBy::Integration,
            cleared: true,
            note: None,
            closed_at: Some(at),
        } => Some((ticket, *at)),
        TicketState::Delayed { previous: Some(previous), .. } => reopenable(previous),
        _ => None,
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
        /// An event ticket on a row with a recurrence window: what makes a later event the
        /// same (absent otherwise, and in transitions stored by older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recurrence: Option<Box<Recurrence>>,
        /// A ticket of a row with storm settings, or a storm ticket (absent otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storm: Option<Box<StormPart>>,
    },
    /// The PSA created the ticket, or already had it under the idempotency key.
    Opened {
        /// Key.
        key: TicketKey,
        /// The ticket.
        ticket: TicketRef,
    },
    /// The PSA refused the create.
    Abandoned {
        /// Key.
        key: TicketKey,
        /// The PSA's reason.
        reason: String,
    },
    /// The planned create is not sent (its event went stale before the PSA could be reached).
    Dropped {
        /// Key.
        key: TicketKey,
        /// Why (`stale`).
        reason: String,
    },
    /// An operator re-plans a refused create (same generation and idempotency key).
    Retry {
        /// Key.
        key: TicketKey,
        /// The draft to create, rebuilt from the row's current settings.
        draft: TicketDraft,
    },
    /// The close note landed.
    NoteAdded {
        /// Key.
        key: TicketKey,
    },
    /// A listing of the PSA shows a ticket this system made that the ledger does not know
    /// (a lost, replaced or restored store): take it over instead of creating it again.
    Adopted {
        /// Key (read back from the ticket's key line).
        key: TicketKey,
        /// Generation (from its idempotency key).
        generation: u32,
        /// The ticket.
        ticket: TicketRef,
        /// Whether the PSA shows it open.
        open: bool,
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
    /// A status problem was first seen active and waits for its row's creation delay (the
    /// flap guard): no ticket yet. Allowed wherever a new generation may be planned.
    Delayed {
        /// Key.
        key: TicketKey,
        /// When it was first seen active.
        since: DateTime<Utc>,
    },
    /// A delayed problem cleared before its delay ran out: it never gets a ticket. The entry
    /// goes back to its previous state, or is removed when it had none.
    DelayCleared {
        /// Key.
        key: TicketKey,
    },
    /// Record a ticket update to perform (before the PSA call): a reopen (from an automatic
    /// close, possibly after a delay) or a priority raise (from open).
    UpdateRequested {
        /// Key.
        key: TicketKey,
        /// Fields to change.
        update: TicketUpdate,
        /// The note to add (marker from [`LedgerEntry::note_marker`]).
        note: TicketNote,
        /// Why.
        reason: UpdateReason,
        /// The entry's urgency from now on (the problem's current level).
        urgency: Urgency,
    },
    /// The PSA took the update and the note: the ticket is open.
    Updated {
        /// Key.
        key: TicketKey,
    },
    /// The PSA refused the update (for example a backend that cannot update tickets). A refused
    /// reopen leaves the ticket closed and no longer reopenable (the next pass creates a new
    /// ticket, as without the feature); a refused priority raise leaves it open as it was.
    UpdateRefused {
        /// Key.
        key: TicketKey,
        /// The PSA's reason.
        reason: String,
    },
    /// The same event recurred on the same computer within its row's recurrence window, while
    /// this ticket is planned or open: count it and queue its note (marker from
    /// [`LedgerEntry::next_recurrence_marker`]; any other marker is refused, so a transition
    /// applied twice counts once).
    Recurred {
        /// The ticket's key (not the recurring event's).
        key: TicketKey,
        /// The note to add.
        note: TicketNote,
    },
    /// Alert storms: a problem goes to a storm ticket instead of getting its own (allowed where
    /// a new generation may be planned). Recorded with [`Transition::StormGrew`] on the storm.
    Stormed {
        /// The problem's key.
        key: TicketKey,
        /// The storm ticket's key.
        storm: TicketKey,
        /// When.
        at: DateTime<Utc>,
    },
    /// A storm ticket takes a change: a problem added, or a status problem of it cleared.
    StormGrew {
        /// The storm ticket's key.
        key: TicketKey,
        /// The change.
        item: StormItem,
    },
    /// A stormed status problem cleared: its entry is closed (no ticket of its own, no call).
    StormCleared {
        /// The problem's key.
        key: TicketKey,
    },
    /// A storm ticket's pending items become one note (outbox work; marker
    /// `<idempotency key>/storm/<n>`, n counting from 1; any other marker is refused).
    StormNoteQueued {
        /// The storm ticket's key.
        key: TicketKey,
        /// The note.
        note: TicketNote,
        /// When (the next note waits `note_minutes` from it).
        at: DateTime<Utc>,
    },
    /// The storm is over and its last note queued: no further storm work.
    StormFinished {
        /// The storm ticket's key.
        key: TicketKey,
    },
    /// The PSA took the oldest recurrence note (or refused it for good): it leaves the queue.
    RecurrenceNoted {
        /// Key.
        key: TicketKey,
        /// The note's marker (must be the oldest's).
        marker: String,
    },
}

impl Transition {
    /// The key the transition concerns.
    pub fn key(&self) -> &TicketKey {
        match self {
            Self::Plan { key, .. }
            | Self::Opened { key, .. }
            | Self::Abandoned { key, .. }
            | Self::Dropped { key, .. }
            | Self::Retry { key, .. }
            | Self::NoteAdded { key }
            | Self::Adopted { key, .. }
            | Self::CloseRequested { key, .. }
            | Self::Closed { key }
            | Self::ClosedByTechnician { key }
            | Self::Cleared { key }
            | Self::Delayed { key, .. }
            | Self::DelayCleared { key }
            | Self::UpdateRequested { key, .. }
            | Self::Updated { key }
            | Self::UpdateRefused { key, .. }
            | Self::Recurred { key, .. }
            | Self::RecurrenceNoted { key, .. }
            | Self::Stormed { key, .. }
            | Self::StormGrew { key, .. }
            | Self::StormCleared { key }
            | Self::StormNoteQueued { key, .. }
            | Self::StormFinished { key } => key,
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
    /// The ticket is closed but its close note is still to be added.
    AddNote(TicketKey),
    /// A ticket update (reopen or priority raise) was due: send it again (idempotent), then add
    /// its note looking its marker up first.
    Update(TicketKey),
    /// The ticket's oldest recurrence note ([`LedgerEntry::recurrence_note`]) is to be added
    /// (looking its marker up first after an unknown outcome), then
    /// [`Transition::RecurrenceNoted`] recorded.
    AddRecurrenceNote(TicketKey),
}

impl Recovery {
    /// The key the work is for.
    pub fn key(&self) -> &TicketKey {
        match self {
            Self::LookUpThenCreate(k)
            | Self::RetryClose(k)
            | Self::AddNote(k)
            | Self::Update(k)
            | Self::AddRecurrenceNote(k) => k,
        }
    }
}

/// Every ticket this system owns. Serializes as the list of its entries.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<LedgerEntry>", into = "Vec<LedgerEntry>")]
pub struct Ledger {
    /// Each entry once, ordered by its key: the entry holds the only copy of the key (a set, not
    /// a map from key to entry), boxed so the tree's nodes stay small whatever the entry's size.
    entries: BTreeSet<Stored>,
    /// The outbox: entries waiting for PSA work, most urgent first. Kept in step with
    /// `entries` by every change, so finding work costs the work, not the ledger's size.
    pending: BTreeSet<(Urgency, TicketKey)>,
    /// The recurrence index: from the hash of (product, tenant, computer, event type) to the
    /// event entry that a recurrence of it is noted on, the one whose event is the latest (ties:
    /// the greatest key), whatever its state. Derived from `entries`: kept in step by
    /// [`Ledger::apply`], rebuilt by [`Ledger::from_entries`], never compared.
    recurring: FastMap<u128, TicketKey>,
    /// The storm index, per tenant and row with storm settings: the times of the tickets of
    /// their own (sorted) and the latest storm ticket. Derived from `entries` like `recurring`.
    storms: BTreeMap<(TenantId, RowId), RowStorms>,
    /// Storm tickets not finished: [`crate::storm::due`] looks at these only.
    live_storms: BTreeSet<TicketKey>,
}

/// The storm index's record of one tenant and row.
#[derive(Clone, Default)]
struct RowStorms {
    counted: Vec<DateTime<Utc>>,
    current: Option<(DateTime<Utc>, TicketKey)>,
}

/// A ledger entry as the ledger's set holds it: compared, ordered and looked up by its key alone.
#[derive(Clone)]
struct Stored(Box<LedgerEntry>);

impl Borrow<TicketKey> for Stored {
    fn borrow(&self) -> &TicketKey {
        &self.0.key
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for Stored {}

impl PartialOrd for Stored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

impl PartialEq for Ledger {
    fn eq(&self, other: &Self) -> bool {
        // Whole entries, not just keys (the set's own equality compares keys).
        self.len() == other.len() && self.entries().eq(other.entries()) && self.pending == other.pending
    }
}

impl Eq for Ledger {}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("entries", &self.entries().collect::<Vec<_>>())
            .field("pending", &self.pending)
            .finish()
    }
}

impl From<Vec<LedgerEntry>> for Ledger {
    fn from(entries: Vec<LedgerEntry>) -> Self {
        Self::from_entries(entries)
    }
}

impl From<Ledger> for Vec<LedgerEntry> {
    fn from(ledger: Ledger) -> Self {
        ledger.entries.into_iter().map(|s| *s.0).collect()
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a ledger from stored entries.
    ///
    /// Of entries with the same key, the last one stands.
    pub fn from_entries(entries: impl IntoIterator<Item = LedgerEntry>) -> Self {
        let entries: BTreeSet<Stored> = entries.into_iter().map(|e| Stored(Box::new(e))).collect();
        let pending =
            entries.iter().map(|s| &*s.0).filter(|e| e.is_pending()).map(|e| (e.urgency, e.key.clone())).collect();
        let mut ledger = Self {
            entries,
            pending,
            recurring: FastMap::default(),
            storms: BTreeMap::new(),
            live_storms: BTreeSet::new(),
        };
        let keys: Vec<TicketKey> = ledger.entries().filter(|e| e.recurrence.is_some()).map(|e| e.key.clone()).collect();
        for key in keys {
            ledger.index_recurrence(&key);
        }
        let storms: Vec<TicketKey> = ledger.entries().filter(|e| e.storm.is_some()).map(|e| e.key.clone()).collect();
        for key in storms {
            ledger.index_storm(&key);
        }
        ledger
    }

    /// Makes `key`'s entry the recurrence index's choice for its identity, unless the entry
    /// there now is of a later event (or of the same time and a greater key).
    fn index_recurrence(&mut self, key: &TicketKey) {
        let Some(entry) = self.get(key) else { return };
        let (Some(slot), Some(r)) = (recurrence_slot(entry), entry.recurrence.as_deref()) else { return };
        let rank = (r.first_at, key);
        let keep = self.recurring.get(&slot).and_then(|k| self.get(k)).is_some_and(|held| {
            recurrence_slot(held) == Some(slot)
                && held.recurrence.as_deref().is_some_and(|h| (h.first_at, &held.key) > rank)
        });
        if !keep {
            self.recurring.insert(slot, key.clone());
        }
    }

    /// The event entry a recurrence of (product, tenant, computer, event type) is noted on, if
    /// the ledger has one: the latest such event's ticket, in whatever state (the caller checks
    /// that it is planned or open and within the window). One hash probe, whatever the size of
    /// the ledger.
    pub fn recurrence_entry(
        &self,
        product: Product,
        tenant: &TenantId,
        device: &DeviceId,
        event_type: &str,
    ) -> Option<&LedgerEntry> {
        if self.recurring.is_empty() {
            return None;
        }
        let key = self.recurring.get(&recurrence_hash(product, tenant, device, event_type))?;
        let entry = self.get(key)?;
        let r = entry.recurrence.as_deref()?;
        (entry.key.product() == product
            && entry.key.tenant() == tenant
            && r.device == *device
            && r.event_type == event_type)
            .then_some(entry)
    }

    fn reindex(&mut self, key: &TicketKey, before: Option<Urgency>) {
        let after = self.get(key).filter(|e| e.is_pending()).map(|e| e.urgency);
        if before == after {
            return;
        }
        if let Some(u) = before {
            self.pending.remove(&(u, key.clone()));
        }
        if let Some(u) = after {
            self.pending.insert((u, key.clone()));
        }
    }

    /// Number of entries waiting for PSA work.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The entry of a key.
    pub fn get(&self, key: &TicketKey) -> Option<&LedgerEntry> {
        self.entries.get(key).map(|s| &*s.0)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().map(|s| &*s.0)
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
        let at = |tenant: TenantId| TicketKey::Status {
            product,
            tenant,
            device: DeviceId::new(""),
            description: StatusDescription::MIN,
        };
        // `tenant + "\0"` is the least string after `tenant`: every status key of this tenant
        // and product lies in [start, end), so the scan compares no key per entry. The start
        // shares the tenant's id; only the end's is built.
        let start = at(tenant.clone());
        let end = at(TenantId::new(format!("{tenant}\0")));
        self.entries.range::<TicketKey, _>((Bound::Included(&start), Bound::Excluded(&end))).map(|s| &*s.0)
    }

    /// Issue-ticket entries of one tenant.
    pub fn issue_entries<'a>(&'a self, tenant: &'a TenantId) -> impl Iterator<Item = &'a LedgerEntry> + 'a {
        let start = TicketKey::Issue { tenant: tenant.clone(), event_type: Office365EventType::ALL[0] };
        self.entries
            .range::<TicketKey, _>((Bound::Included(&start), Bound::Unbounded))
            .map(|s| &*s.0)
            .take_while(move |e| matches!(&e.key, TicketKey::Issue { tenant: t, .. } if t == tenant))
    }

    /// The generation a new ticket for `key` gets, or `None` when the key must not be ticketed
    /// again now (a live ticket exists, a technician closed it and the condition persists, or
    /// it is an event that was already handled).
    pub fn next_generation(&self, key: &TicketKey) -> Option<u32> {
        next_generation(key, self.get(key))
    }

    /// Applies a transition, or says why it does not fit.
    pub fn apply(&mut self, transition: &Transition, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let key = transition.key();
        let before = self.get(key).filter(|e| e.is_pending()).map(|e| e.urgency);
        let result = self.apply_inner(transition, now);
        if result.is_ok() {
            self.reindex(key, before);
            if let Transition::Plan { recurrence: Some(_), .. } = transition {
                self.index_recurrence(key);
            }
            if matches!(
                transition,
                Transition::Plan { storm: Some(_), .. } | Transition::StormFinished { .. } | Transition::Adopted { .. }
            ) {
                self.index_storm(key);
            }
        }
        result
    }

    /// The PSA work the ledger waits for, most urgent first: every `Planned` entry is looked up
    /// (when uncertain) before it is created, every `Closing` entry is closed again, every
    /// pending close note is added. Costs the outbox's size, not the ledger's.
    pub fn recovery(&self) -> Vec<Recovery> {
        self.pending_work().collect()
    }

    /// [`Ledger::recovery`] as an iterator.
    pub fn pending_work(&self) -> impl Iterator<Item = Recovery> + '_ {
        self.pending.iter().filter_map(|(_, k)| self.get(k).and_then(LedgerEntry::pending))
    }

    /// Whether a listed ticket of `generation` may take over the entry of `key`: the ledger
    /// does not know the key, knows only an older generation, or knows this generation only as
    /// a create not yet confirmed (planned, refused, dropped).
    fn adoptable(&self, key: &TicketKey, generation: u32) -> bool {
        match self.get(key) {
            None => true,
            Some(e) if e.generation < generation => true,
            Some(e) if e.generation == generation => {
                matches!(
                    e.state,
                    TicketState::Planned { .. } | TicketState::Failed { .. } | TicketState::Dropped { .. }
                )
            }
            Some(_) => false,
        }
    }

    /// What a listing of the PSA's own tickets ([`crate::ports::TicketSink::owned_tickets`])
    /// changes in this ledger: one [`Transition::Adopted`] per ticket whose key line checks out
    /// and that the ledger does not already know as well or better. Tickets without a readable
    /// key line (edited, or made by an older version) are counted in the second value.
    pub fn adoptions(&self, owned: &[OwnedTicket]) -> (Vec<Transition>, usize) {
        let mut best: BTreeMap<TicketKey, (u32, &OwnedTicket)> = BTreeMap::new();
        let mut unreadable = 0;
        for t in owned {
            match TicketKey::from_description(&t.description, &t.idempotency_key) {
                Some((key, generation)) => {
                    let slot = best.entry(key).or_insert((generation, t));
                    // The newest generation wins; within one, an open ticket wins.
                    if (generation, t.open) > (slot.0, slot.1.open) {
                        *slot = (generation, t);
                    }
                }
                None => unreadable += 1,
            }
        }
        let transitions = best
            .into_iter()
            .filter(|(key, (generation, _))| self.adoptable(key, *generation))
            .map(|(key, (generation, t))| Transition::Adopted {
                key,
                generation,
                ticket: t.ticket.clone(),
                open: t.open,
            })
            .collect();
        (transitions, unreadable)
    }
}
