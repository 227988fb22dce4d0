//! The daemon's durable state: the ticket ledger (whose `Planned` and `Closing` entries are the
//! outbox of PSA calls still to make), per-source cursors, the saved and draft rule sets, and a
//! bounded history of seen events (for the rules preview and for audit).
//!
//! [`Store`] is the seam: SQLite ([`SqliteStore`], the embedded default) implements it, and a
//! PostgreSQL store for multi-instance deployments can follow without touching the engine.
//! Every method is one transaction; [`Store::commit`] writes a batch of ledger transitions,
//! the events that caused them and the source cursor together, so a cursor never advances past
//! decisions that are not durable.

mod postgres;
mod sqlite;

pub use postgres::{PostgresStore, PostgresTimeouts};
pub use sqlite::SqliteStore;

use chrono::{DateTime, Utc};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry, Transition};
use ticketing_core::model::{Event, TenantId};
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
    #[error("the rules changed elsewhere (now revision {current})")]
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
/// them (for the history), and the cursor to store once all of it is durable.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// Each transition and the ledger entry after it (`None` when the entry was removed).
    pub transitions: Vec<(&'a Transition, Option<&'a LedgerEntry>)>,
    /// Events seen in this batch (kept in the bounded history).
    pub events: &'a [Event],
    /// The cursor to advance to.
    pub cursor: Option<(&'a CursorKey, &'a Cursor)>,
    /// When the batch was handled.
    pub at: Option<DateTime<Utc>>,
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

    /// Events seen at or after `since`, oldest first.
    fn events_since(&self, since: DateTime<Utc>) -> Result<Vec<SeenEvent>, StoreError>;

    /// Drops history older than `before`; returns how many rows went.
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
}
