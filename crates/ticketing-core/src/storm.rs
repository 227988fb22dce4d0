//! Alert storms (issue #27): one ticket for an outbreak, not three hundred.
//!
//! A row with storm settings ([`StormSettings`], off by default) counts, per tenant, the tickets
//! it made within its window. Once it has made `threshold` of them, the next problem of that row
//! and tenant opens **one storm ticket** (the row's queue, priority and due time) and every later
//! problem of the row and tenant within the window is added to it instead of getting a ticket:
//! the problem's own ledger entry is recorded [`crate::ledger::TicketState::Stormed`] (so it is
//! never ticketed twice, and a status problem's clearing is seen) and the storm ticket's entry
//! collects it as a [`StormItem`]. Items are written to the ticket as notes, batched: at most
//! one note per `note_minutes` ([`due`]), each naming the new computers and events. When the
//! window passes with no new problem the storm ends: the next problem gets a ticket as usual.
//!
//! Everything here is a function of the ledger, the settings and the times given: the event's
//! own time for events (a late read decides as a timely one), the reconciliation's `now` for
//! status problems, the caller's `now` for notes. The storm ticket and its notes are ledger
//! work like any other ticket's: planned before the PSA call, looked up after an unknown
//! outcome, each note at most once by its marker (`<idempotency key>/storm/<n>`).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ledger::{Ledger, TicketState, Transition};
use crate::model::{Product, SourceEventId, TenantId};
use crate::rules::{DEFAULT_STORM_NOTE_MINUTES, RowId, Rule};
use crate::ticket::{TicketKey, TicketNote};

/// Security Center's virus outbreak event (detections on several computers passed the
/// server's threshold): with `outbreak_as_storm`, it opens the storm at once.
pub const OUTBREAK_EVENT_TYPE: &str = "GNRL_EV_VIRUS_OUTBREAK";

/// The start of a storm ticket's source id (the rest: the row and the storm's start).
pub const STORM_ID_PREFIX: &str = "storm:";

/// The most characters of items one note lists (the rest wait for the next note): keeps a note
/// within every backend's note length (Autotask's `TicketNotes.description` takes 32,000
/// characters; the note's head and marker line need the rest).
pub const NOTE_TEXT_BUDGET: usize = 30_000;

/// How many of `pending` (oldest first) the next note lists: as many as fit
/// [`NOTE_TEXT_BUDGET`], at least one.
pub fn note_batch(pending: &[StormItem]) -> usize {
    let mut used = 0;
    for (i, item) in pending.iter().enumerate() {
        // The item's line, and its computer's heading when it is the first of it.
        let len = item.what.len() + item.device.as_ref().map_or(0, String::len) + 16;
        if i > 0 && used + len > NOTE_TEXT_BUDGET {
            return i;
        }
        used += len;
    }
    pending.len()
}

/// A row's storm settings, when storms are on for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormSettings {
    /// Tickets within the window after which the row's problems go to a storm ticket.
    pub threshold: u32,
    /// The window, in minutes.
    pub window_minutes: u32,
    /// At most one note per this many minutes.
    pub note_minutes: u32,
    /// A Security Center outbreak event opens the storm at once.
    pub outbreak: bool,
}

impl StormSettings {
    /// The settings of `rule`, `None` when storms are off (threshold or window unset).
    pub fn of(rule: &Rule) -> Option<Self> {
        match (rule.storm_threshold, rule.storm_window_minutes) {
            (Some(threshold), Some(window_minutes)) => Some(Self {
                threshold,
                window_minutes,
                note_minutes: rule.storm_note_minutes.unwrap_or(DEFAULT_STORM_NOTE_MINUTES),
                outbreak: rule.outbreak_as_storm,
            }),
            _ => None,
        }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        Duration::minutes(i64::from(self.window_minutes))
    }

    /// The least time between two notes.
    pub fn note_every(&self) -> Duration {
        Duration::minutes(i64::from(self.note_minutes))
    }
}

/// What a ledger entry knows of storms (absent on every entry of a row without them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "storm", rename_all = "snake_case")]
pub enum StormPart {
    /// A ticket of its own, made by a row with storm settings: counts toward the threshold.
    Counted {
        /// The row.
        row: RowId,
        /// The problem's time (the event's, or when the status problem was ticketed).
        at: DateTime<Utc>,
    },
    /// The storm ticket itself.
    Ticket(Storm),
}

/// A storm ticket's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storm {
    /// The row.
    pub row: RowId,
    /// The row's threshold and window when the storm began (for the texts).
    pub threshold: u32,
    /// See [`Storm::threshold`].
    pub window_minutes: u32,
    /// At most one note per this many minutes.
    pub note_minutes: u32,
    /// The first problem's time.
    pub started_at: DateTime<Utc>,
    /// The latest problem's time: the storm ends `window` after it.
    pub last_at: DateTime<Utc>,
    /// Problems added (the one that opened it included).
    pub problems: u32,
    /// Their distinct computers, by name.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub devices: BTreeSet<String>,
    /// Status problems added that have not cleared yet.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub open_members: u32,
    /// Status problems added that cleared since.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cleared: u32,
    /// Items not yet in a note, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<StormItem>,
    /// Notes still to add, oldest first (outbox work once the ticket exists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<TicketNote>,
    /// Notes made so far (markers count from 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub noted: u32,
    /// When the last note was queued (or the storm ticket planned): the next waits
    /// `note_minutes` from it.
    pub last_note_at: DateTime<Utc>,
    /// The storm is over (ended, its last note queued): no further work.
    #[serde(default, skip_serializing_if = "is_false")]
    pub finished: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Storm {
    /// Whether a problem at `at` belongs to this storm: within the window of its span.
    pub fn takes(&self, at: DateTime<Utc>, window: Duration) -> bool {
        !self.finished && at <= self.last_at + window && at + window >= self.started_at
    }

    /// Whether the row is a status row (its storm ticket closes once every problem cleared).
    pub fn is_status(&self) -> bool {
        self.row.is_status()
    }
}

/// A change a storm ticket lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StormChange {
    /// A problem added to the storm.
    Added,
    /// A status problem of the storm that cleared.
    Cleared,
}

/// One line of a storm note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormItem {
    /// Added or cleared.
    pub change: StormChange,
    /// The computer's name, when the problem concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The problem in words (`event 1234 at 10:01:02 UTC: Malicious object detected`).
    pub what: String,
    /// The problem's time.
    pub at: DateTime<Utc>,
}

/// The key of a storm ticket: an event key of the row's product and the tenant, with a source
/// id naming the row and the storm's start (`storm:<row>:<unix seconds>`), so the machinery of
/// every other ticket (key line, idempotency key, look-up, adoption) serves it unchanged.
pub fn storm_key(product: Product, tenant: &TenantId, row: &RowId, at: DateTime<Utc>) -> TicketKey {
    TicketKey::Event {
        product,
        tenant: tenant.clone(),
        source_id: SourceEventId::new(format!("{STORM_ID_PREFIX}{row}:{}", at.timestamp())),
    }
}

/// Whether `key` is a storm ticket's.
pub fn is_storm_key(key: &TicketKey) -> bool {
    matches!(key, TicketKey::Event { source_id, .. } if source_id.as_str().starts_with(STORM_ID_PREFIX))
}

/// Where a new problem of a storm row goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A ticket of its own (it counts toward the threshold).
    Own,
    /// Into the running storm with this ticket key.
    Join(TicketKey),
    /// The threshold is reached: it opens a storm ticket.
    Open,
}

/// Where a problem of `row` and `tenant` at `at` goes, given the ledger and `extra`: tickets of
/// the row decided in the same pass, not yet in the ledger (their times), and a storm opened in
/// the same pass.
pub fn place(
    ledger: &Ledger,
    tenant: &TenantId,
    row: &RowId,
    settings: &StormSettings,
    at: DateTime<Utc>,
    extra: &PassStorms,
) -> Placement {
    let window = settings.window();
    if let Some(key) = extra.opened(tenant, row) {
        return Placement::Join(key.clone());
    }
    if let Some(key) = ledger.storm_of(tenant, row) {
        let takes = ledger.get(key).and_then(storm_of_entry).is_some_and(|s| s.takes(at, window));
        if takes {
            return Placement::Join(key.clone());
        }
    }
    let counted = ledger.storm_counted(tenant, row, at - window, at) + extra.counted(tenant, row, at - window, at);
    if counted >= settings.threshold as usize { Placement::Open } else { Placement::Own }
}

/// What one pass of decisions (a reconciliation) has placed so far, besides the ledger.
#[derive(Debug, Default, Clone)]
pub struct PassStorms {
    counted: Vec<(TenantId, RowId, DateTime<Utc>)>,
    opened: Vec<(TenantId, RowId, TicketKey)>,
}

impl PassStorms {
    /// Records a ticket of its own decided in this pass.
    pub fn count(&mut self, tenant: &TenantId, row: &RowId, at: DateTime<Utc>) {
        self.counted.push((tenant.clone(), row.clone(), at));
    }

    /// Records a storm opened in this pass.
    pub fn open(&mut self, tenant: &TenantId, row: &RowId, key: TicketKey) {
        self.opened.push((tenant.clone(), row.clone(), key));
    }

    fn opened(&self, tenant: &TenantId, row: &RowId) -> Option<&TicketKey> {
        self.opened.iter().find(|(t, r, _)| t == tenant && r == row).map(|(_, _, k)| k)
    }

    fn counted(&self, tenant: &TenantId, row: &RowId, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
        self.counted.iter().filter(|(t, r, at)| t == tenant && r == row && *at > from && *at <= to).count()
    }
}

/// The storm record of an entry, when it is a storm ticket's.
pub fn storm_of_entry(entry: &crate::ledger::LedgerEntry) -> Option<&Storm> {
    match entry.storm.as_deref() {
        Some(StormPart::Ticket(s)) => Some(s),
        _ => None,
    }
}

/// The storm work due at `now`: for each running storm, its pending items as one note once
/// `note_minutes` have passed since the last (at most [`NOTE_TEXT_BUDGET`] of items a note); a
/// storm whose window passed with no new problem and nothing pending is finished (its last note
/// says so) and, for a status row, its ticket closed once every problem in it cleared
/// (`closed_status`: the general settings' closed status, when they resolve).
pub fn due(ledger: &Ledger, now: DateTime<Utc>, closed_status: Option<crate::model::PsaId>) -> Vec<Transition> {
    let mut out = Vec::new();
    for key in ledger.live_storms() {
        let Some(entry) = ledger.get(key) else { continue };
        let Some(storm) = storm_of_entry(entry) else { continue };
        let every = Duration::minutes(i64::from(storm.note_minutes));
        let window = Duration::minutes(i64::from(storm.window_minutes));
        let ended = now > storm.last_at + window;
        if !storm.pending.is_empty() {
            if now >= storm.last_note_at + every {
                let marker = format!("{}/storm/{}", entry.idempotency_key, storm.noted + 1);
                out.push(Transition::StormNoteQueued {
                    key: key.clone(),
                    note: TicketNote { marker, text: note_text(storm, ended) },
                    at: now,
                });
            }
            continue;
        }
        if !ended {
            continue;
        }
        if !storm.is_status() {
            out.push(Transition::StormFinished { key: key.clone() });
            continue;
        }
        // A status storm is over for new problems; its ticket stays open until its computers
        // cleared, then closes (once it is open and the closed status resolves), and the storm
        // is finished once the ticket is closed.
        match (&entry.state, closed_status) {
            _ if storm.open_members > 0 => {}
            (TicketState::Open { .. }, Some(status)) => out.push(Transition::CloseRequested {
                key: key.clone(),
                status,
                note: format!(
                    "The storm is over: every one of its {} problems on {} computers cleared; closed automatically.",
                    storm.problems,
                    storm.devices.len()
                ),
            }),
            (state, _) if !state.is_live() => out.push(Transition::StormFinished { key: key.clone() }),
            _ => {}
        }
    }
    out
}

/// The text of a note listing `storm`'s pending items (the first [`note_batch`]), grouped
/// by computer, with the storm's running totals.
pub fn note_text(storm: &Storm, ended: bool) -> String {
    let items = &storm.pending[..note_batch(&storm.pending)];
    let added = items.iter().filter(|i| i.change == StormChange::Added).count();
    let cleared = items.len() - added;
    let mut out = String::new();
    let _ = write!(
        out,
        "Alert storm: {} so far on {}.",
        plural(storm.problems as usize, "problem", "problems"),
        plural(storm.devices.len(), "computer", "computers"),
    );
    if added > 0 {
        let _ = write!(out, " New since the last note: {added}.");
    }
    if cleared > 0 {
        let _ = write!(out, " Cleared: {cleared}.");
    }
    out.push('\n');
    // Grouped by computer, in the order each computer first appears.
    let mut order: Vec<&str> = Vec::new();
    for i in items {
        let d = i.device.as_deref().unwrap_or("");
        if !order.contains(&d) {
            order.push(d);
        }
    }
    for d in order {
        out.push('\n');
        out.push_str(if d.is_empty() { "(no computer)" } else { d });
        out.push(':');
        for i in items.iter().filter(|i| i.device.as_deref().unwrap_or("") == d) {
            out.push_str("\n  ");
            if i.change == StormChange::Cleared {
                out.push_str("cleared: ");
            }
            out.push_str(&i.what);
        }
    }
    if storm.pending.len() > items.len() {
        let _ = write!(out, "\n\n{} more in the next note.", storm.pending.len() - items.len());
    } else if ended {
        let _ = write!(
            out,
            "\n\nThe storm is over: no new problem for {} minutes. The next one gets a ticket of its own.",
            storm.window_minutes
        );
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
