//! The outbox as data: which PSA calls the ledger waits for right now, as a function of the
//! ledger, what is in flight or staged, what is uncertain and `now`. No I/O, no clock, no tokio:
//! [`plan_deliveries`] is unit-tested on its own; the driver (`outbox.rs`) turns each
//! [`Delivery`] into a task through the lease guard.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use ticketing_core::ledger::{Ledger, Recovery, TicketState};
use ticketing_core::model::PsaId;
use ticketing_core::ports::TicketUpdate;
use ticketing_core::ticket::{TicketDraft, TicketKey, TicketNote, TicketRef};

/// Which note a [`Delivery::Note`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// The note of a close (after the close landed).
    Close,
    /// A recurrence note on an open (or since closed) ticket.
    Recurrence,
}

/// One PSA call to make now.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Create the ticket (`look_up`: first look it up by its idempotency key, since an earlier
    /// attempt may have landed; `expired`: the event outlived its lifetime, so only the look-up
    /// is made and a miss drops it). The draft's due time counts from `now`.
    Create { key: TicketKey, draft: TicketDraft, look_up: bool, expired: bool },
    /// Close the ticket with the closed status.
    Close { key: TicketKey, ticket: TicketRef, status: PsaId },
    /// Add a note (`look_up`: an earlier attempt may have landed).
    Note { key: TicketKey, ticket: TicketRef, note: TicketNote, kind: NoteKind, look_up: bool },
    /// Update the ticket (reopen, priority raise), then add its note.
    Update { key: TicketKey, ticket: TicketRef, update: TicketUpdate, note: TicketNote, look_up: bool },
}

impl Delivery {
    /// The ledger entry the call is for.
    pub fn key(&self) -> &TicketKey {
        match self {
            Self::Create { key, .. } | Self::Close { key, .. } | Self::Note { key, .. } | Self::Update { key, .. } => {
                key
            }
        }
    }

    /// The operation's name in metrics and logs.
    pub fn op(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Close { .. } => "close",
            Self::Note { .. } => "note",
            Self::Update { .. } => "update",
        }
    }
}

/// What the outbox knows besides the ledger.
#[derive(Debug, Clone, Copy)]
pub struct OutboxView<'a> {
    /// Entries whose call is in flight (never a second call for one).
    pub in_flight: &'a HashSet<TicketKey>,
    /// Entries whose plan is staged, not yet committed (a call waits for its plan to be durable).
    pub staged: &'a HashSet<TicketKey>,
    /// Planned creates that may have reached the PSA: looked up first.
    pub uncertain: &'a HashSet<TicketKey>,
    /// Notes and updates that may have reached the PSA: looked up first.
    pub uncertain_notes: &'a HashSet<TicketKey>,
    /// Look every create up first (after a takeover or a lost store).
    pub look_up_every_create: bool,
    /// How many more calls may start now.
    pub free: usize,
    /// The PSA request budget left, when the backend has one.
    pub budget: Option<BudgetLeft>,
}

/// The PSA's request budget as the outbox spends it (the budget share, issue #27): the
/// daemon's share of the PSA's hourly requests (Autotask's `ThresholdInformation` can only
/// tighten the configured one) and how much of it is left in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLeft {
    /// Requests left in the window.
    pub remaining: u64,
    /// The limit in force.
    pub limit: u64,
}

/// Which PSA work goes while the budget lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BudgetTier {
    /// Plenty left: everything, Critical first.
    All,
    /// Under a tenth of the window's budget left: notes and updates wait; creates and closes go
    /// (Critical first).
    Short,
    /// Under a fiftieth left: only Critical creates and closes.
    CriticalOnly,
    /// Nothing left: everything waits for the window.
    Spent,
}

impl BudgetLeft {
    /// The tier of work the budget allows now.
    pub fn tier(&self) -> BudgetTier {
        if self.limit == 0 {
            BudgetTier::All
        } else if self.remaining == 0 {
            BudgetTier::Spent
        } else if self.remaining.saturating_mul(50) < self.limit {
            BudgetTier::CriticalOnly
        } else if self.remaining.saturating_mul(10) < self.limit {
            BudgetTier::Short
        } else {
            BudgetTier::All
        }
    }
}

/// Whether `tier` lets a call of `kind` (`create`, `close`, `note`, `update`) of an entry of
/// `urgency` go now.
fn budget_allows(tier: BudgetTier, op: &str, urgency: ticketing_core::ticket::Urgency) -> bool {
    let essential = matches!(op, "create" | "close");
    match tier {
        BudgetTier::All => true,
        BudgetTier::Short => essential,
        BudgetTier::CriticalOnly => essential && urgency == ticketing_core::ticket::Urgency::Critical,
        BudgetTier::Spent => false,
    }
}

/// The calls to start, most urgent first (the ledger's order), and the planned creates to drop
/// as stale (their event outlived its lifetime and no earlier attempt can have landed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxPlan {
    /// Calls to start, at most `free`.
    pub calls: Vec<Delivery>,
    /// Planned creates to drop without a call.
    pub stale: Vec<TicketKey>,
    /// Calls held back because the request budget is short (they wait; nothing is dropped).
    pub waiting_for_budget: usize,
}

/// The PSA work due now.
pub fn plan_deliveries(ledger: &Ledger, view: OutboxView<'_>, now: DateTime<Utc>) -> OutboxPlan {
    let mut plan = OutboxPlan::default();
    let tier = view.budget.map_or(BudgetTier::All, |b| b.tier());
    for work in ledger.pending_work() {
        // With a short budget the whole outbox is looked at, to count what waits.
        if plan.calls.len() >= view.free && tier == BudgetTier::All {
            break;
        }
        let key = work.key().clone();
        if view.in_flight.contains(&key) || view.staged.contains(&key) {
            continue;
        }
        let Some(entry) = ledger.get(&key) else { continue };
        let note_look_up = view.uncertain_notes.contains(&key);
        let call = match (&work, &entry.state) {
            (Recovery::LookUpThenCreate(_), TicketState::Planned { draft }) => {
                let look_up = view.look_up_every_create || view.uncertain.contains(&key);
                let expired = draft.is_expired(now);
                if expired && !look_up {
                    plan.stale.push(key);
                    continue;
                }
                Delivery::Create { key, draft: draft.at(now), look_up, expired }
            }
            (Recovery::RetryClose(_), TicketState::Closing { ticket, status, .. }) => {
                Delivery::Close { key, ticket: ticket.clone(), status: *status }
            }
            (Recovery::AddRecurrenceNote(_), _) => {
                let (Some(ticket), Some(note)) = (entry.ticket().cloned(), entry.recurrence_note().cloned()) else {
                    continue;
                };
                Delivery::Note { key, ticket, note, kind: NoteKind::Recurrence, look_up: note_look_up }
            }
            (Recovery::Update(_), TicketState::Updating { ticket, update, note, .. }) => Delivery::Update {
                key,
                ticket: ticket.clone(),
                update: (**update).clone(),
                note: (**note).clone(),
                look_up: note_look_up,
            },
            (Recovery::AddNote(_), TicketState::Closed { ticket: Some(ticket), note: Some(note), .. }) => {
                Delivery::Note {
                    key,
                    ticket: ticket.clone(),
                    note: (**note).clone(),
                    kind: NoteKind::Close,
                    look_up: note_look_up,
                }
            }
            _ => continue,
        };
        if !budget_allows(tier, call.op(), entry.urgency) {
            plan.waiting_for_budget += 1;
            continue;
        }
        if plan.calls.len() < view.free {
            plan.calls.push(call);
        }
    }
    plan
}
