//! The daemon's durable state: the ticket ledger (whose `Planned` and `Closing` entries are the
//! outbox of PSA calls still to make), per-source cursors, the saved and draft rule sets, and a
//! bounded history of seen events (for the rules preview and for audit).
//!
//! [`Store`] is the seam: SQLite ([`SqliteStore`], the embedded default) implements it, and a
//! PostgreSQL store for multi-instance deployments can follow without touching the engine.
//! Every method is one transaction; [`Store::commit`] writes a batch of ledger transitions,
//! the events that caused them and the source cursor together, so a cursor never advances past
//! decisions that are not durable.

mod access;
mod postgres;
mod postgres_schema;
mod sqlite;

pub use access::{
    AccessStore, Change, ChangeKind, ChangeQuery, LockoutPolicy, LoginFailures, Role, SessionRecord, TokenRecord, User,
    UserChange,
};
pub use postgres::{PostgresStore, PostgresTimeouts};
pub use sqlite::SqliteStore;

use chrono::{DateTime, Utc};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry, Transition};
use ticketing_core::model::{Event, Product, TenantId};
use ticketing_core::ports::Cursor;

/// A store failure. The message never contains secrets (the store holds none).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Database(String),
    /// The store's file is gone or was replaced while the daemon ran: stop, never write on.
    #[error("{0}")]
    Lost(String),
    /// The writer's leader epoch is not the current one: another instance leads now.
    #[error("fenced: this instance no longer holds the leader lease (epoch {current} leads now)")]
    Fenced {
        /// The current epoch.
        current: u64,
    },
    /// A compare-and-swap write found a newer revision than the writer held.
    #[error("changed elsewhere (now revision {current})")]
    Conflict {
        /// The stored revision.
        current: u64,
    },
    /// A file-system error, naming the file.
    #[error("store I/O error: {0}")]
    Io(String),
    /// A stored row could not be read back.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl StoreError {
    /// The same error, naming the store's file.
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            Self::Database(m) => Self::Database(format!("{}: {m}", path.display())),
            Self::Corrupt { table, detail } => {
                Self::Corrupt { table, detail: format!("{} ({})", detail, path.display()) }
            }
            other => other,
        }
    }
}

/// Which source a cursor belongs to: the source's name (e.g. `ksc:main/events`) and the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CursorKey {
    /// The source's stable name.
    pub source: String,
    /// The tenant.
    pub tenant: TenantId,
}

/// One atomic write: ledger transitions with the entry each produced, the events that led to
/// them (for the history), and the cursors to store once all of it is durable.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// Each transition and the ledger entry after it (`None` when the entry was removed).
    pub transitions: Vec<(&'a Transition, Option<&'a LedgerEntry>)>,
    /// Events seen in this batch (kept in the bounded history).
    pub events: &'a [Event],
    /// The cursors to advance to, one per source and tenant whose read this commit carries
    /// (several when the engine commits a group of finished reads together).
    pub cursors: Vec<(&'a CursorKey, &'a Cursor)>,
    /// What was decided, and why, for the audit (`why`, `/api/decisions`, the Activity page).
    pub decisions: &'a [Decision],
    /// When the batch was handled.
    pub at: Option<DateTime<Utc>>,
    /// PSA answers only (`Opened`, `Closed`, `NoteAdded`, ...; no plan, event or cursor): the
    /// store may make the commit durable lazily, at the next full commit (SQLite
    /// `synchronous = NORMAL` for this transaction, PostgreSQL `synchronous_commit = off`).
    /// A power loss may then lose the answer but never reorders it, and a lost answer only
    /// leaves its entry planned, closing or noting: after a restart every such entry is looked
    /// up in the PSA before anything is sent again, so nothing is created or noted twice.
    /// Plans must be durable before their PSA call, so they are never relaxed.
    pub relaxed: bool,
    /// The leader epoch the writer holds (see [`Store::lease`]). The write is refused with
    /// [`StoreError::Fenced`] when the lease has moved on to a newer epoch, so a paused or
    /// partitioned ex-leader can never land a write after a new leader took over.
    pub epoch: Option<u64>,
}

/// Who holds the leader lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaderInfo {
    /// The instance.
    pub holder: String,
    /// The fencing epoch (grows by one each time the lease changes hands).
    pub epoch: u64,
    /// Until when, by the store's clock.
    pub expires_at: DateTime<Utc>,
}

/// What became of one event or condition: the audit's record, kept as long as the event
/// history (`polling.history_days`). Written in the same transaction as the ledger transitions
/// it led to, so the audit never claims a ticket the ledger does not have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// The product.
    pub product: Product,
    /// The tenant.
    pub tenant: TenantId,
    /// The event's id at its source; `None` for a status description or an Office 365 issue.
    pub event_id: Option<String>,
    /// The computer's id, when the decision is about one.
    pub device: Option<String>,
    /// The computer's name.
    pub device_name: Option<String>,
    /// The ticket key (canonical form, as the ledger shows it).
    pub key: String,
    /// What was decided.
    pub outcome: Outcome,
    /// The skip reason's stable label (`rule_off`, `stale`, ...), when skipped.
    pub reason: Option<String>,
    /// The decision in plain words ("not ticketed: the Warning events rule is off").
    pub detail: String,
    /// The rules revision that decided it.
    pub revision: u64,
}

/// What a [`Decision`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A ticket was planned (see the ledger for what became of it).
    Ticketed,
    /// No ticket, for the recorded reason.
    Skipped,
    /// The ticket's problem went away: its close was planned.
    Closed,
    /// The event recurred while its ticket was open: a note was queued on that ticket instead
    /// of a new one (the recurrence note, issue 20).
    Noted,
    /// Alert storms (issue 27): the problem went to its row's storm ticket (joined it, or
    /// opened it) instead of getting a ticket of its own. The decision's key is the storm
    /// ticket's, so `why` shows that ticket.
    Stormed,
}

impl Outcome {
    /// The spelling in the API and the store.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ticketed => "ticketed",
            Self::Skipped => "skipped",
            Self::Closed => "closed",
            Self::Noted => "noted",
            Self::Stormed => "stormed",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ticketed" => Ok(Self::Ticketed),
            "skipped" => Ok(Self::Skipped),
            "closed" => Ok(Self::Closed),
            "noted" => Ok(Self::Noted),
            "stormed" => Ok(Self::Stormed),
            other => Err(format!("unknown outcome `{other}` (expected ticketed, skipped, closed or noted)")),
        }
    }
}

/// Which decisions to list (every field narrows; newest first, at most `limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionQuery {
    /// One tenant.
    pub tenant: Option<String>,
    /// One product.
    pub product: Option<Product>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// One outcome.
    pub outcome: Option<Outcome>,
    /// One event (its source id).
    pub event_id: Option<String>,
    /// One computer, by id or name.
    pub device: Option<String>,
    /// At most this many (0: the default, 200).
    pub limit: usize,
}

impl DecisionQuery {
    /// The row limit in force.
    pub fn limit(&self) -> usize {
        if self.limit == 0 { 200 } else { self.limit.min(10_000) }
    }

    /// Whether `d` is one of the decisions asked for (the stores filter in SQL; this is the
    /// same filter, for tests and in-memory callers).
    pub fn matches(&self, d: &Decision) -> bool {
        self.tenant.as_ref().is_none_or(|t| d.tenant.as_str() == t)
            && self.product.is_none_or(|p| d.product == p)
            && self.since.is_none_or(|s| d.at >= s)
            && self.outcome.is_none_or(|o| d.outcome == o)
            && self.event_id.as_ref().is_none_or(|e| d.event_id.as_ref() == Some(e))
            && self.device.as_ref().is_none_or(|x| d.device.as_ref() == Some(x) || d.device_name.as_ref() == Some(x))
    }
}

/// A stored event with the time the daemon saw it (preview decides as of that time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// The event.
    pub event: Event,
    /// When the daemon handled it.
    pub seen_at: DateTime<Utc>,
}

/// The daemon's durable state.
pub trait Store: Send + Sync {
    /// Every ledger entry.
    fn load_ledger(&self) -> Result<Ledger, StoreError>;

    /// Writes a batch atomically (one transaction).
    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError>;

    /// The stored cursor of a source and tenant.
    fn cursor(&self, key: &CursorKey) -> Result<Option<Cursor>, StoreError>;

    /// The saved and draft rule sets with their revision, if any were stored.
    fn rulebook(&self) -> Result<Option<(RuleBook, u64)>, StoreError>;

    /// The rule book's revision (`0`: none stored yet). Cheap: the engine asks every tick, so a
    /// change written by another process (the CLI, another daemon) takes effect within one.
    fn rules_revision(&self) -> Result<u64, StoreError>;

    /// Stores the rule sets if the stored revision is still `expected` (compare-and-swap), and
    /// returns the new revision; otherwise [`StoreError::Conflict`] with the current one. No
    /// writer ever overwrites a change it has not seen.
    fn save_rulebook(&self, book: &RuleBook, expected: u64) -> Result<u64, StoreError>;

    /// A named document (JSON) with its revision, if one was stored: the tenant mapping edited
    /// in the product (`mapping`), the tenants and accounts the leader last read
    /// (`directory`). See [`crate::documents`] for the typed ones.
    fn document(&self, name: &str) -> Result<Option<(String, u64)>, StoreError>;

    /// A document's revision (`0`: none stored yet). Cheap: the engine asks every tick.
    fn document_revision(&self, name: &str) -> Result<u64, StoreError>;

    /// Stores a document and returns its new revision. With `expected`, only if the stored
    /// revision is still that (compare-and-swap; otherwise [`StoreError::Conflict`] with the
    /// current one); without, unconditionally (a document with one writer).
    fn save_document(&self, name: &str, body: &str, expected: Option<u64>) -> Result<u64, StoreError>;

    /// Events seen at or after `since`, oldest first.
    fn events_since(&self, since: DateTime<Utc>) -> Result<Vec<SeenEvent>, StoreError>;

    /// Recorded decisions, newest first (see [`DecisionQuery`]).
    fn decisions(&self, query: &DecisionQuery) -> Result<Vec<Decision>, StoreError>;

    /// Whether the store takes writes now (readiness): a small real write, never a ledger
    /// change. `Err` names what is wrong (file gone, read-only, a database in recovery).
    fn probe_writable(&self) -> Result<(), StoreError>;

    /// Drops history (events and decisions) older than `before`; returns how many rows went.
    fn prune_history(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Checks that the store is still the one opened (its file not removed or replaced).
    fn verify(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Asks the engine to re-plan refused creates: `target` is a ticket key (canonical or
    /// idempotency key) or `*` for every failed entry. Durable, so the CLI can ask while the
    /// daemon runs; the engine takes requests on its next tick.
    fn request_retry(&self, target: &str) -> Result<(), StoreError>;

    /// Takes (and removes) the pending retry requests.
    fn take_retry_requests(&self) -> Result<Vec<String>, StoreError>;

    /// Takes or renews the leader lease for `holder` (an instance id) for `lease`, by the
    /// store's clock: `Some(epoch)` while `holder` leads (the epoch grows by one each time the
    /// lease changes hands; a renewal keeps it), `None` while another holder's lease is live.
    fn lease(&self, holder: &str, lease: std::time::Duration) -> Result<Option<u64>, StoreError>;

    /// Gives the lease up (a clean stop), so a standby can take over at once.
    fn release(&self, holder: &str, epoch: u64) -> Result<(), StoreError>;

    /// The current lease, if any.
    fn leader(&self) -> Result<Option<LeaderInfo>, StoreError>;

    /// The last `limit` ledger transitions, newest first, as (time, key, transition JSON).
    fn recent_transitions(&self, limit: usize) -> Result<Vec<(DateTime<Utc>, String, String)>, StoreError>;

    /// Users, sessions, API tokens and the change log ([`AccessStore`]), when this store keeps
    /// them (the SQLite and PostgreSQL stores do; a test double may not).
    fn access(&self) -> Option<&dyn AccessStore> {
        None
    }
}
