//! The engine: polls sources, feeds the core, persists every decision, then talks to the PSA.
//!
//! One task owns the in-memory [`Ledger`]; the store mirrors it transition by transition. The
//! order of every step is what makes delivery exactly-once:
//!
//! 1. read a batch (events after the stored cursor, or a status snapshot);
//! 2. decide (pure, `ticketing-core`) and apply the resulting `Plan` / `CloseRequested`
//!    transitions to the ledger;
//! 3. commit those transitions, the batch's events and the new cursor in **one** transaction;
//! 4. only then call the PSA, and record each answer as its own transition.
//!
//! A crash before 3 re-reads the batch (the cursor did not move); a crash between 3 and the PSA's
//! answer leaves `Planned` entries, which are looked up by idempotency key before any create
//! ([`Ledger::recovery`]); a crash after the answer but before its transition is the same case.
//! PSA outages, 429s and timeouts leave entries in `Planned`/`Closing` and are retried with
//! backoff; a create whose outcome is unknown is marked uncertain and looked up first.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, error, info, warn};

use tokio::task::JoinSet;

use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Context, EventDecision, SkipReason, decide_event, reconcile, replan};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry, Recovery, TicketState, Transition};
use ticketing_core::model::{Product, PsaId, Tenant, TenantId};
use ticketing_core::ports::{
    Account, EventBatch, EventSource, OwnedTicket, PortError, PortErrorKind, StatusSource, TicketSink,
};
use ticketing_core::rules::RowId;
use ticketing_core::ticket::{IDEMPOTENCY_PREFIX, TicketKey, TicketRef};

use crate::metrics::Metrics;
use crate::settings::{HaConfig, MappingEntry, PollingConfig};
use crate::store::{Commit, CursorKey, Store, StoreError};

/// An event source with the stable name its cursors are stored under.
#[derive(Clone)]
pub struct NamedEventSource {
    /// Stable name, e.g. `ksc:main/events`.
    pub name: String,
    /// The source.
    pub source: Arc<dyn EventSource>,
    /// Bound on one read (the source's configured timeout).
    pub timeout: Duration,
}

/// A status source with a stable name.
#[derive(Clone)]
pub struct NamedStatusSource {
    /// Stable name, e.g. `kbh/endpoint_cloud/statuses`.
    pub name: String,
    /// The source.
    pub source: Arc<dyn StatusSource>,
    /// Bound on one read (the source's configured timeout).
    pub timeout: Duration,
}

/// Something worth telling an operator (the demo prints these; logs carry them too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A ticket was created (or found already created after an uncertain attempt).
    Created {
        /// Key.
        key: TicketKey,
        /// The ticket.
        ticket: TicketRef,
        /// Its title.
        title: String,
    },
    /// A ticket was closed.
    Closed {
        /// Key.
        key: TicketKey,
        /// The ticket.
        ticket: TicketRef,
    },
    /// An event or condition was not ticketed.
    Skipped {
        /// Key.
        key: TicketKey,
        /// Why.
        reason: SkipReason,
    },
}

/// How a tenant maps to an account, as resolved against the PSA's accounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MappedTenant {
    /// Tenant id.
    pub tenant: String,
    /// Its name at the source, when a source listed it.
    pub tenant_name: Option<String>,
    /// The PSA account, when resolved.
    pub account_id: Option<PsaId>,
    /// The account's name.
    pub account_name: Option<String>,
    /// Whether the account is active.
    pub active: Option<bool>,
    /// What went wrong resolving it.
    pub problem: Option<String>,
}

/// State shared between the engine and the admin API.
pub struct Shared {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Saved and draft rules. The engine applies `saved`.
    pub rules: Mutex<RuleBook>,
    /// Bumped whenever `rules.saved` changes, so the engine rebuilds its context.
    pub rules_version: AtomicU64,
    /// The store revision `rules` corresponds to (compare-and-swap writes, see `rules_ops`).
    pub rules_revision: AtomicU64,
    /// The last catalog read from the PSA.
    pub catalog: RwLock<Option<Catalog>>,
    /// The last accounts read from the PSA.
    pub accounts: RwLock<Vec<Account>>,
    /// The mapping as resolved.
    pub mapping: RwLock<Vec<MappedTenant>>,
    /// Counters.
    pub metrics: Metrics,
    /// What the probes (`/healthz`, `/readyz`) and the UI's banners report.
    pub health: crate::health::Health,
    /// Leader or standby, once the engine has asked the store.
    pub role: RwLock<Option<RoleInfo>>,
    /// How the PSA backend names the rule fields (the UI shows "Board" for ConnectWise).
    pub psa_labels: RwLock<crate::labels::Labels>,
    /// The PSA's name as users say it ("Autotask", "ConnectWise"), for the audit's words.
    pub psa_name: RwLock<&'static str>,
    /// Whether `/metrics` needs the token from a loopback peer too (`admin.metrics_auth`).
    pub metrics_auth: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Shared state over a store and the rules found in it.
    pub fn new(store: Arc<dyn Store>, rules: RuleBook) -> Arc<Self> {
        // A store that cannot say starts this process behind: the first write syncs first.
        let revision = store.rules_revision().unwrap_or(0);
        Arc::new(Self {
            store,
            rules: Mutex::new(rules),
            rules_version: AtomicU64::new(0),
            rules_revision: AtomicU64::new(revision),
            catalog: RwLock::new(None),
            accounts: RwLock::new(Vec::new()),
            mapping: RwLock::new(Vec::new()),
            metrics: Metrics::default(),
            health: crate::health::Health::default(),
            role: RwLock::new(None),
            psa_labels: RwLock::new(crate::labels::guide_label),
            psa_name: RwLock::new("Autotask"),
            metrics_auth: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Records a PSA answer (`ok`, or the lower-cased error kind): counted in the metrics and
    /// told to the health checks, which `/readyz` and the UI's banner read.
    pub fn psa_answered(&self, op: &str, outcome: Result<(), PortErrorKind>) {
        self.metrics.psa_call(op, crate::health::outcome_label(outcome));
        self.health.psa_answered(op, outcome, Utc::now());
    }

    /// Records a failed source read (metrics and health).
    pub fn source_failed(&self, source: &str, error: &str) {
        self.metrics.source_error(source);
        self.health.source_read(source, Err(error.to_owned()), Utc::now());
    }

    /// Records a successful source read (metrics and health).
    pub fn source_succeeded(&self, source: &str, at: DateTime<Utc>) {
        self.metrics.source_success(source, at);
        self.health.source_read(source, Ok(()), at);
    }

    /// The rules, locked.
    pub fn rules(&self) -> std::sync::MutexGuard<'_, RuleBook> {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last catalog.
    pub fn catalog(&self) -> Option<Catalog> {
        self.catalog.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The last accounts.
    pub fn accounts(&self) -> Vec<Account> {
        self.accounts.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The PSA's names for the rule fields.
    pub fn labels(&self) -> crate::labels::Labels {
        *self.psa_labels.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The resolved mapping.
    pub fn mapping(&self) -> Vec<MappedTenant> {
        self.mapping.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Reads the PSA request budget from the backend, for metrics.
pub type BudgetProbe = Arc<dyn Fn() -> crate::metrics::Budget + Send + Sync>;

/// Everything that can go wrong in a tick that the engine cannot absorb.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    fn is_fenced(&self) -> bool {
        matches!(self, Self::Store(StoreError::Fenced { .. }))
    }
}

/// Whether this instance leads (polls sources, writes to the PSA) or stands by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleInfo {
    /// `leader` or `standby`.
    pub role: &'static str,
    /// This instance's name.
    pub instance: String,
    /// The epoch it leads under, when it leads.
    pub epoch: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Job {
    Events(usize),
    Statuses(usize),
}

/// A new configuration's adapters and settings, handed to the running engine by a reload
/// (`SIGHUP`, `POST /api/reload`). The ledger, the outbox and the stored cursors carry over.
pub struct Reload {
    /// The PSA sink.
    pub sink: Arc<dyn TicketSink>,
    /// Event sources.
    pub event_sources: Vec<NamedEventSource>,
    /// Status sources.
    pub status_sources: Vec<NamedStatusSource>,
    /// Tenant → account mapping.
    pub mapping: Vec<MappingEntry>,
    /// Intervals and sizes.
    pub polling: PollingConfig,
    /// Bound on one PSA call.
    pub psa_timeout: Duration,
    /// The new backend's budget, for metrics.
    pub budget: Option<BudgetProbe>,
}

/// What one tick did (tests and the demo wait on these).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Events read.
    pub events: usize,
    /// Snapshots read.
    pub snapshots: usize,
    /// Transitions committed.
    pub transitions: usize,
    /// Entries still waiting for the PSA afterwards.
    pub outbox: usize,
    /// Whether the PSA context (catalog, accounts, rules) is loaded.
    pub ready: bool,
}

/// What a source read brought back.
enum Fetched {
    Events(Result<EventBatch, PortError>),
    Snapshot(Result<ticketing_core::model::StatusSnapshot, PortError>),
}

/// What a PSA call brought back.
enum Outcome {
    /// Created now, or found by its idempotency key (`true`).
    Created(TicketRef, bool),
    /// Looked up before a stale create and not found: drop it.
    StaleNotFound,
    /// The PSA refused the create.
    Refused(String),
    /// Closed (or gone from the PSA).
    Closed,
    /// The close note landed.
    Noted,
    /// The PSA refused the note.
    NoteRefused(String),
    /// The update (reopen, priority raise) and its note landed.
    Updated,
    /// A recurrence note landed (or the PSA refused it: it is not offered again).
    RecurrenceNoted(String),
    /// The PSA refused the update (or no longer has the ticket).
    UpdateRefused(String),
    /// Not sent: this instance's lease may have run out (the entry stays pending, for whoever
    /// leads now).
    NotLeading,
    /// Anything to retry later.
    Failed(PortError),
}

/// A finished background task of the engine. Every task only talks to a port; its result is
/// applied to the ledger by the engine's own loop, so the ledger keeps one owner.
enum Done {
    Refreshed {
        generation: u64,
        catalog: Result<Catalog, PortError>,
        accounts: Result<Vec<Account>, PortError>,
        listings: Vec<(Job, String, Result<Vec<Tenant>, PortError>)>,
    },
    Rebuilt(Result<Option<Vec<OwnedTicket>>, PortError>),
    Fetched {
        generation: u64,
        job: Job,
        tenant: Tenant,
        fetched: Fetched,
    },
    Delivered {
        key: TicketKey,
        op: &'static str,
        outcome: Outcome,
    },
    Synced {
        open: BTreeMap<PsaId, TicketKey>,
        result: Result<Vec<PsaId>, PortError>,
    },
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = Done> + Send>>;

/// The engine. Drive it with [`Engine::run`], or tick by tick with [`Engine::tick`].
///
/// Every port call (catalog, source reads, PSA creates, closes and notes, the technician-close
/// check, the ledger rebuild) runs as its own task; the engine's loop applies each result as it
/// comes. So one hung call holds up only its own ticket or tenant: everything else keeps
/// flowing, and at most `deliver_concurrency` PSA deliveries are in flight at once.
pub struct Engine {
    shared: Arc<Shared>,
    sink: Arc<LeasedSink>,
    event_sources: Vec<NamedEventSource>,
    status_sources: Vec<NamedStatusSource>,
    mapping: Vec<MappingEntry>,
    polling: PollingConfig,
    psa_timeout: Duration,
    ledger: Ledger,
    ctx: Option<Context>,
    catalog: Option<Catalog>,
    accounts: Vec<Account>,
    ctx_rules_version: u64,
    windows: HashMap<Product, Option<chrono::Duration>>,
    refresh_due: DateTime<Utc>,
    refreshing: bool,
    sync_due: DateTime<Utc>,
    syncing: bool,
    /// Whether the ledger has been checked against the PSA's own tickets since the start.
    rebuilt: bool,
    rebuilding: bool,
    rebuild_due: DateTime<Utc>,
    /// The backend cannot list its tickets: look every create up first.
    look_up_every_create: bool,
    /// Every listed tenant by source, as the sources' last listings gave them.
    listed: HashMap<(Job, TenantId), Tenant>,
    /// The reads to start, soonest first (see `start_polls`). An entry is current while its
    /// time equals the tenant's `due` time; older ones are skipped when they come up.
    queues: HashMap<Job, ReadQueue>,
    due: HashMap<(Job, TenantId), DateTime<Utc>>,
    failures: HashMap<(Job, TenantId), u32>,
    polling_now: HashSet<(Job, TenantId)>,
    delivering: HashSet<TicketKey>,
    uncertain: HashSet<TicketKey>,
    uncertain_notes: HashSet<TicketKey>,
    condition_skips: HashMap<(Product, TenantId), BTreeMap<String, u64>>,
    /// Each tenant's conditions not ticketed, with the reason last recorded in the audit: a
    /// reason is recorded when it changes, not on every snapshot.
    condition_reasons: HashMap<(Product, TenantId), HashMap<TicketKey, &'static str>>,
    /// The rules revision the context was built from (recorded with every decision).
    ctx_revision: u64,
    /// The mapping problems last logged, by tenant: a problem is logged when it appears,
    /// changes or goes away, not on every refresh.
    mapping_problems: HashMap<String, String>,
    /// PSA answers applied to the ledger and not yet committed (see `flush_answers`).
    pending_answers: Vec<Transition>,
    /// Reads' writes held for one commit (see [`Staged`]).
    staged: Staged,
    /// The rule problems last logged (logged again only when they change).
    rule_problems: Vec<String>,
    condition_totals: BTreeMap<String, u64>,
    /// Stored cursors, read once per source and tenant and kept in step with every commit (the
    /// engine is their only writer).
    cursors: HashMap<CursorKey, Option<ticketing_core::ports::Cursor>>,
    psa_not_before: DateTime<Utc>,
    psa_failures: u32,
    tasks: JoinSet<Done>,
    /// Reads (refresh, polls) in flight through the current adapters: a reload ends them, so
    /// the previous adapters (clients, sessions, connections) go at once.
    reads: Vec<tokio::task::AbortHandle>,
    /// Bumped by every configuration reload: results of reads started before it are dropped.
    generation: u64,
    reloads: Option<tokio::sync::mpsc::UnboundedReceiver<Reload>>,
    /// Leadership among daemons sharing the store.
    ha: HaConfig,
    instance: String,
    /// The fencing epoch while this instance leads; every state write carries it.
    epoch: Option<u64>,
    lease_due: DateTime<Utc>,
    lease_valid_until: DateTime<Utc>,
    lease_guard: Arc<LeaseGuard>,
    notices: Option<UnboundedSender<Notice>>,
    budget: Option<BudgetProbe>,
}

fn secs(n: u64) -> chrono::Duration {
    chrono::Duration::seconds(n as i64)
}

/// How long PSA deliveries wait after `failures` rounds of failed calls in a row: 1 s, doubling,
/// at most 60 s (the core's policy, without jitter: one engine, one queue), so once the PSA is
/// well again delivery resumes within one step.
fn delivery_backoff(failures: u32) -> chrono::Duration {
    const DELIVERY: ticketing_core::retry::RetryPolicy = ticketing_core::retry::RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(3600),
    };
    chrono::Duration::from_std(DELIVERY.backoff(failures, 1.0)).unwrap_or(chrono::Duration::seconds(60))
}

fn backoff(failures: u32, cap_secs: u64) -> chrono::Duration {
    let s = 1u64.checked_shl(failures.min(16)).unwrap_or(u64::MAX).min(cap_secs.max(1));
    secs(s)
}

/// Until when (by this machine's clock) this instance may write to the PSA: shortly before its
/// lease would run out without a renewal. Checked by each delivery task right before it sends,
/// so an instance that was paused past its lease sends nothing when it wakes up.
#[derive(Debug, Default)]
struct LeaseGuard(std::sync::atomic::AtomicI64);

/// The PSA sink as the engine holds it: reads through [`LeasedSink::reader`], and writes
/// (create, update, close, note) only through [`LeasedSink::writer`], which hands the sink out
/// only while the lease guard holds. So no write can skip the lease check: a paused ex-leader
/// that wakes after its lease ran out sends nothing (the new leader may have reopened or
/// created the ticket meanwhile); every refusal is counted by operation.
struct LeasedSink {
    sink: Arc<dyn TicketSink>,
    guard: Arc<LeaseGuard>,
    metrics: Arc<Shared>,
}

/// The reading half of the PSA port (never changes anything in the PSA).
struct Reader<'a>(&'a dyn TicketSink);

/// The writing half of the PSA port, handed out only while the lease holds.
struct Writer<'a>(&'a dyn TicketSink);

impl LeasedSink {
    fn reader(&self) -> Reader<'_> {
        Reader(self.sink.as_ref())
    }

    /// The writer while this instance may write to the PSA; `None` (counted as refused for
    /// `op`) once its lease may have run out.
    fn writer(&self, op: &'static str) -> Option<Writer<'_>> {
        if self.guard.holds() {
            Some(Writer(self.sink.as_ref()))
        } else {
            self.metrics.metrics.write_refused(op, "not_leading");
            None
        }
    }
}

impl Reader<'_> {
    async fn catalog(&self) -> Result<Catalog, PortError> {
        self.0.catalog().await
    }
    async fn accounts(&self) -> Result<Vec<Account>, PortError> {
        self.0.accounts().await
    }
    async fn find_ticket(&self, key: &ticketing_core::ticket::IdempotencyKey) -> Result<Option<TicketRef>, PortError> {
        self.0.find_ticket(key).await
    }
    async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: DateTime<Utc>,
    ) -> Result<Option<Vec<ticketing_core::ports::OwnedTicket>>, PortError> {
        self.0.owned_tickets(prefix, closed_since).await
    }
    async fn closed_among(&self, ids: &[PsaId], closed: PsaId) -> Result<Vec<PsaId>, PortError> {
        self.0.closed_among(ids, closed).await
    }
}

impl Writer<'_> {
    async fn create_ticket(&self, draft: &ticketing_core::ticket::TicketDraft) -> Result<TicketRef, PortError> {
        self.0.create_ticket(draft).await
    }
    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        self.0.close_ticket(ticket, status).await
    }
    async fn update_ticket(
        &self,
        ticket: &TicketRef,
        update: &ticketing_core::ports::TicketUpdate,
    ) -> Result<(), PortError> {
        self.0.update_ticket(ticket, update).await
    }
    async fn add_note(
        &self,
        ticket: &TicketRef,
        note: &ticketing_core::ticket::TicketNote,
        look_up_first: bool,
    ) -> Result<(), PortError> {
        self.0.add_note(ticket, note, look_up_first).await
    }
}

impl LeaseGuard {
    fn set(&self, until: Option<DateTime<Utc>>) {
        self.0.store(until.map_or(i64::MIN, |t| t.timestamp_millis()), Ordering::SeqCst);
    }

    fn holds(&self) -> bool {
        Utc::now().timestamp_millis() < self.0.load(Ordering::SeqCst)
    }
}

/// Builds the audit's records of one snapshot's conditions (the computer's name and the row
/// are looked up in the snapshot, once a record needs them).
struct ConditionAudit<'a> {
    snapshot: &'a ticketing_core::model::StatusSnapshot,
    devices: std::cell::OnceCell<HashMap<&'a str, &'a ticketing_core::model::DeviceStatus>>,
    now: DateTime<Utc>,
    revision: u64,
}

impl<'a> ConditionAudit<'a> {
    fn new(snapshot: &'a ticketing_core::model::StatusSnapshot, now: DateTime<Utc>, revision: u64) -> Self {
        Self { snapshot, devices: std::cell::OnceCell::new(), now, revision }
    }

    fn device(&self, key: &TicketKey) -> Option<&'a ticketing_core::model::DeviceStatus> {
        let TicketKey::Status { device, .. } = key else { return None };
        let devices =
            self.devices.get_or_init(|| self.snapshot.devices.iter().map(|d| (d.device.id.as_str(), d)).collect());
        devices.get(device.as_str()).copied()
    }

    /// The rule row a condition falls under (its level as the snapshot reports it).
    fn row(&self, key: &TicketKey) -> Option<RowId> {
        let TicketKey::Status { description, .. } = key else { return None };
        let level = self.device(key)?.active.iter().find(|a| &a.description == description)?.level;
        Some(RowId::Status(self.snapshot.product, level, description.clone()))
    }

    fn record(
        &self,
        key: &TicketKey,
        outcome: crate::store::Outcome,
        reason: Option<&SkipReason>,
        detail: String,
    ) -> crate::store::Decision {
        let device = match key {
            TicketKey::Status { device, .. } => {
                let name = self.device(key).map_or(device.as_str(), |d| d.device.name.as_str());
                Some((device.as_str(), name))
            }
            _ => None,
        };
        crate::audit::decision(
            self.now,
            self.snapshot.product,
            key,
            None,
            device,
            outcome,
            reason,
            detail,
            self.revision,
        )
    }
}

/// Tells readiness which sources there are, how often each is read, and how often the PSA is.
fn publish_sources(
    shared: &Shared,
    events: &[NamedEventSource],
    statuses: &[NamedStatusSource],
    polling: &PollingConfig,
) {
    let every = |secs: u64| Duration::from_secs(secs.max(1));
    shared.health.set_sources(
        events
            .iter()
            .map(|s| (s.name.clone(), every(polling.events_secs)))
            .chain(statuses.iter().map(|s| (s.name.clone(), every(polling.statuses_secs)))),
    );
    shared.health.set_psa_interval(every(polling.catalog_secs));
}

/// The first line of a text.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// A source's tenants by the time their next read is due, soonest first.
type ReadQueue = std::collections::BinaryHeap<std::cmp::Reverse<(DateTime<Utc>, TenantId)>>;

/// PSA answers committed together at most (see `Engine::flush_answers`).
const ANSWER_BATCH: usize = 256;

/// Reads staged together at most before their commit (see [`Staged`]).
const STAGE_BATCH: usize = 256;

/// The writes of finished reads, held for one commit: one transaction (one fsync) for up to
/// [`STAGE_BATCH`] reads instead of one per read, so 10,000 tenants with one new problem each
/// cost about a hundred commits instead of 20,000. The group is committed at the next tick, when it
/// is full, or before any other commit (which carries it first, so the store sees every write
/// in the order it was applied). Until then no call is sent for a staged plan (a plan is
/// durable before its PSA call) and a staged tenant is not read again (no read starts from a
/// cursor the store does not have yet); everything else goes on. A failed commit reloads the
/// ledger, forgets the staged cursors (they are read again from the store) and reads the
/// staged tenants again at once.
#[derive(Default)]
struct Staged {
    transitions: Vec<Transition>,
    events: Vec<ticketing_core::model::Event>,
    cursors: Vec<(CursorKey, ticketing_core::ports::Cursor)>,
    decisions: Vec<crate::store::Decision>,
    /// The keys of the staged transitions: nothing is sent for them until the commit.
    keys: HashSet<TicketKey>,
    /// The reads whose results these are: not read again until the commit (and read again
    /// at once when it fails).
    reads: HashSet<(Job, TenantId)>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.reads.is_empty()
            && self.transitions.is_empty()
            && self.events.is_empty()
            && self.cursors.is_empty()
            && self.decisions.is_empty()
    }
}

/// Which note a note task adds (see [`note_task`]).
#[derive(Clone, Copy)]
enum NoteKind {
    /// A close note: a refusal is kept as `NoteRefused`, visible and retried by hand.
    Close,
    /// A recurrence note: a refusal is logged and the note not offered again.
    Recurrence,
}

/// The delivery task of a note: never sent once the lease may have moved on, and looked up
/// first (`look_up`) when an earlier attempt may have landed.
#[allow(clippy::too_many_arguments)]
fn note_task(
    sink: Arc<LeasedSink>,
    key: TicketKey,
    ticket: TicketRef,
    note: ticketing_core::ticket::TicketNote,
    kind: NoteKind,
    look_up: bool,
    timeout: Duration,
) -> Task {
    Box::pin(async move {
        let Some(writer) = sink.writer("note") else {
            return Done::Delivered { key, op: "note", outcome: Outcome::NotLeading };
        };
        let outcome = match tokio::time::timeout(timeout, writer.add_note(&ticket, &note, look_up)).await {
            Ok(Ok(())) => match kind {
                NoteKind::Close => Outcome::Noted,
                NoteKind::Recurrence => Outcome::RecurrenceNoted(note.marker.clone()),
            },
            Ok(Err(e)) if matches!(e.kind, PortErrorKind::Invalid | PortErrorKind::NotFound) => match kind {
                NoteKind::Close => Outcome::NoteRefused(e.message),
                NoteKind::Recurrence => {
                    warn!(ticket = %ticket.id, error = %e, "the PSA refused the recurrence note; not offered again");
                    Outcome::RecurrenceNoted(note.marker.clone())
                }
            },
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::Failed(timed_out("note", timeout)),
        };
        Done::Delivered { key, op: "note", outcome }
    })
}

fn timed_out(what: &str, after: Duration) -> PortError {
    PortError::new(PortErrorKind::Transient, format!("{what} timed out after {} s", after.as_secs()))
}

impl Engine {
    /// An engine over a store (whose ledger it loads), a PSA sink and the sources.
    pub fn new(
        shared: Arc<Shared>,
        sink: Arc<dyn TicketSink>,
        event_sources: Vec<NamedEventSource>,
        status_sources: Vec<NamedStatusSource>,
        mapping: Vec<MappingEntry>,
        polling: PollingConfig,
    ) -> Result<Self, EngineError> {
        let ledger = shared.store.load_ledger()?;
        let epoch = DateTime::<Utc>::MIN_UTC;
        publish_sources(&shared, &event_sources, &status_sources, &polling);
        let lease_guard: Arc<LeaseGuard> = Arc::default();
        let sink = Arc::new(LeasedSink { sink, guard: lease_guard.clone(), metrics: shared.clone() });
        Ok(Self {
            shared,
            sink,
            event_sources,
            status_sources,
            mapping,
            polling,
            psa_timeout: Duration::from_secs(120),
            ledger,
            ctx: None,
            catalog: None,
            accounts: Vec::new(),
            ctx_rules_version: 0,
            windows: HashMap::new(),
            refresh_due: epoch,
            refreshing: false,
            sync_due: epoch,
            syncing: false,
            rebuilt: false,
            rebuilding: false,
            rebuild_due: epoch,
            look_up_every_create: false,
            listed: HashMap::new(),
            queues: HashMap::new(),
            due: HashMap::new(),
            failures: HashMap::new(),
            polling_now: HashSet::new(),
            delivering: HashSet::new(),
            // Filled when this instance takes the lease (`become_leader`), before any delivery:
            // every planned create and pending note of the store's ledger is looked up first.
            uncertain: HashSet::new(),
            uncertain_notes: HashSet::new(),
            condition_skips: HashMap::new(),
            condition_reasons: HashMap::new(),
            ctx_revision: 0,
            mapping_problems: HashMap::new(),
            pending_answers: Vec::new(),
            staged: Staged::default(),
            rule_problems: Vec::new(),
            condition_totals: BTreeMap::new(),
            cursors: HashMap::new(),
            psa_not_before: epoch,
            psa_failures: 0,
            tasks: JoinSet::new(),
            reads: Vec::new(),
            generation: 0,
            reloads: None,
            ha: HaConfig::default(),
            instance: HaConfig::default().instance_name(),
            epoch: None,
            lease_due: epoch,
            lease_valid_until: epoch,
            lease_guard,
            notices: None,
            budget: None,
        })
    }

    /// Sends notices (tickets created, closed, skipped) to a channel.
    pub fn with_notices(mut self, tx: UnboundedSender<Notice>) -> Self {
        self.notices = Some(tx);
        self
    }

    /// Reads the PSA request budget for metrics.
    pub fn with_budget_probe(mut self, probe: BudgetProbe) -> Self {
        self.budget = Some(probe);
        self
    }

    /// Leadership settings and this instance's name.
    pub fn with_ha(mut self, ha: &HaConfig) -> Self {
        self.instance = ha.instance_name();
        self.ha = ha.clone();
        self
    }

    /// Takes configuration reloads from a channel (applied at the start of the next pass).
    pub fn with_reloads(mut self, rx: tokio::sync::mpsc::UnboundedReceiver<Reload>) -> Self {
        self.reloads = Some(rx);
        self
    }

    /// Switches to a reloaded configuration. Calls in flight finish against the old adapters
    /// (PSA answers still apply: the ledger keys are the same); reads in flight are dropped and
    /// redone, so a removed source stops cleanly and a new one starts from its stored cursor.
    fn apply_reload(&mut self, r: Reload) {
        let names = |e: &[NamedEventSource], s: &[NamedStatusSource]| -> BTreeSet<String> {
            e.iter().map(|x| x.name.clone()).chain(s.iter().map(|x| x.name.clone())).collect()
        };
        let before = names(&self.event_sources, &self.status_sources);
        let after = names(&r.event_sources, &r.status_sources);
        for gone in before.difference(&after) {
            info!(source = %gone, "source removed by the reload: stopped (its cursors stay in the store)");
        }
        for new in after.difference(&before) {
            info!(source = %new, "source added by the reload: starts from its stored or initial cursor");
        }
        publish_sources(&self.shared, &r.event_sources, &r.status_sources, &r.polling);
        self.sink =
            Arc::new(LeasedSink { sink: r.sink, guard: self.lease_guard.clone(), metrics: self.shared.clone() });
        self.event_sources = r.event_sources;
        self.status_sources = r.status_sources;
        self.mapping = r.mapping;
        self.polling = r.polling;
        self.psa_timeout = r.psa_timeout;
        if r.budget.is_some() {
            self.budget = r.budget;
        }
        self.generation += 1;
        // Their results would be dropped (a past generation); ending them frees the old adapters.
        for read in self.reads.drain(..) {
            read.abort();
        }
        self.listed.clear();
        self.queues.clear();
        self.due.clear();
        self.failures.clear();
        self.polling_now.clear();
        self.condition_skips.clear();
        self.condition_reasons.clear();
        self.condition_totals.clear();
        // Read catalog, accounts and tenant lists through the new adapters right away.
        self.refreshing = false;
        self.refresh_due = DateTime::<Utc>::MIN_UTC;
    }

    /// Bounds every PSA call (default 120 s; the client's own timeout should be shorter).
    pub fn with_psa_timeout(mut self, timeout: Duration) -> Self {
        self.psa_timeout = timeout;
        self
    }

    /// The in-memory ledger (mirrors the store).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Runs until `shutdown` resolves: starts due work every `every`, and applies each result
    /// as it arrives. On shutdown, calls still in flight get a short grace period; one that does
    /// not finish is abandoned exactly as a crash would (its entry stays in the outbox and is
    /// looked up before anything is created again).
    pub async fn run(
        mut self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        let mut pace = tokio::time::interval(every);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = pace.tick() => {
                    self.shared.health.beat(Utc::now(), every);
                    let r = self
                        .flush_staged(Utc::now())
                        .and_then(|()| self.flush_answers(Utc::now()))
                        .and_then(|()| self.start_due_work(Utc::now()));
                    self.survive(r)?;
                }
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    // Take every result that is ready now: PSA answers among them are committed
                    // together (one fsync for the lot), the rest one by one.
                    let mut answers = Vec::new();
                    let mut others = Vec::new();
                    for done in std::iter::once(done).chain(std::iter::from_fn(|| self.tasks.try_join_next())) {
                        match done {
                            Ok(Done::Delivered { key, op, outcome }) => answers.push((key, op, outcome)),
                            Ok(other) => others.push(other),
                            Err(_) => {}
                        }
                    }
                    let mut r = self.deliver_answers(answers, Utc::now()).map(drop);
                    for done in others {
                        r = r.and_then(|()| self.finish(done, &mut TickReport::default()));
                    }
                    if self.staged.reads.len() >= STAGE_BATCH {
                        r = r.and_then(|()| self.flush_staged(Utc::now()));
                    }
                    let r = r.and_then(|()| self.start_deliveries(Utc::now()));
                    self.survive(r)?;
                }
            }
        }
        let grace = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                () = &mut grace => break,
                done = self.tasks.join_next() => match done {
                    Some(Ok(done)) => {
                        let r = self.finish(done, &mut TickReport::default());
                        self.survive(r)?;
                    }
                    Some(Err(_)) => {}
                    None => break,
                },
            }
        }
        self.tasks.abort_all();
        if let Err(e) = self.flush_staged(Utc::now()) {
            warn!(error = %e, "cannot commit the last reads; they are read again after the restart");
        }
        if let Err(e) = self.flush_answers(Utc::now()) {
            warn!(error = %e, "cannot commit the last PSA answers; they are looked up after the restart");
        }
        if let Some(epoch) = self.epoch {
            // A clean stop hands the lease over at once instead of after its expiry.
            if let Err(e) = self.shared.store.release(&self.instance, epoch) {
                warn!(error = %e, "cannot release the leader lease");
            }
        }
        info!(outbox = self.ledger.pending_len(), "engine stopped; pending PSA work stays in the store's outbox");
        Ok(())
    }

    fn notice(&self, n: Notice) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(n);
        }
    }

    /// One pass: starts everything that is due (PSA context refresh, the ledger check against
    /// the PSA after a start, polls of due tenants, PSA deliveries Critical first, the
    /// technician-close check) and waits until all of it, and the deliveries it leads to, is
    /// done.
    pub async fn tick(&mut self) -> Result<TickReport, EngineError> {
        let mut report = TickReport::default();
        self.shared.health.beat(Utc::now(), Duration::from_secs(1));
        let r = self.start_due_work(Utc::now());
        self.survive(r)?;
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(done) = done {
                let r = self.finish(done, &mut report).and_then(|()| self.flush_staged(Utc::now()));
                self.survive(r)?;
            }
            // A refreshed context or a finished rebuild lets polls start; answers free slots.
            let r = self.start_due_work(Utc::now());
            self.survive(r)?;
        }
        let r = self.flush_answers(Utc::now());
        self.survive(r)?;
        report.ready = self.ctx.is_some() && self.rebuilt;
        report.outbox = self.ledger.pending_len();
        Ok(report)
    }

    /// A fenced write means another instance leads now: stand by instead of stopping.
    fn survive(&mut self, r: Result<(), EngineError>) -> Result<(), EngineError> {
        match r {
            Err(e) if e.is_fenced() => {
                self.step_down(&e.to_string());
                Ok(())
            }
            other => other,
        }
    }

    /// Takes, renews or loses the leader lease when due. Returns whether this instance leads.
    fn lead(&mut self, now: DateTime<Utc>) -> bool {
        if now < self.lease_due {
            return self.epoch.is_some();
        }
        let lease = Duration::from_secs(self.ha.lease_secs.max(1));
        match self.shared.store.lease(&self.instance, lease) {
            Ok(Some(epoch)) => {
                if self.epoch != Some(epoch) {
                    self.become_leader(epoch);
                }
                self.lease_valid_until = now + secs(self.ha.lease_secs);
                // Writes stop a second before the lease could run out.
                self.lease_guard.set(Some(self.lease_valid_until - chrono::Duration::seconds(1)));
                self.lease_due = now + secs(self.ha.renew_secs.max(1));
            }
            Ok(None) => {
                if self.epoch.is_some() {
                    self.step_down("another instance holds the lease");
                }
                self.lease_due = now + secs(self.ha.takeover_secs.max(1));
            }
            Err(e) => {
                warn!(error = %e, "cannot reach the store for the leader lease");
                // Without a renewal this instance must assume it lost the lease once it runs out.
                if self.epoch.is_some() && now >= self.lease_valid_until {
                    self.step_down("the lease ran out while the store was unreachable");
                }
                self.lease_due = now + secs(1);
            }
        }
        self.epoch.is_some()
    }

    /// Takes over: the ledger as the store has it (the previous leader's), every planned
    /// create and pending note looked up before it is tried, the outbox resumed.
    fn become_leader(&mut self, epoch: u64) {
        match self.shared.store.load_ledger() {
            Ok(ledger) => {
                self.ledger = ledger;
                self.pending_answers.clear();
                self.staged = Staged::default();
            }
            Err(e) => {
                warn!(error = %e, "cannot load the ledger to take over; trying again");
                return;
            }
        }
        self.uncertain = self
            .ledger
            .pending_work()
            .filter_map(|r| matches!(r, Recovery::LookUpThenCreate(_)).then(|| r.key().clone()))
            .collect();
        self.uncertain_notes = self
            .ledger
            .pending_work()
            // A close note, or an update's note (reopen, priority raise): looked up first.
            .filter_map(|r| {
                matches!(r, Recovery::AddNote(_) | Recovery::Update(_) | Recovery::AddRecurrenceNote(_))
                    .then(|| r.key().clone())
            })
            .collect();
        self.cursors.clear();
        self.due.clear();
        self.failures.clear();
        self.queues.clear();
        for (job, id) in self.listed.keys() {
            self.queues.entry(*job).or_default().push(std::cmp::Reverse((DateTime::<Utc>::MIN_UTC, id.clone())));
        }
        self.epoch = Some(epoch);
        self.psa_not_before = DateTime::<Utc>::MIN_UTC;
        info!(instance = %self.instance, epoch, outbox = self.ledger.pending_len(), "leading: polling sources and delivering to the PSA");
        self.publish_role();
    }

    /// Stops leading: every call in flight is abandoned as a crash would (its entry stays in
    /// the outbox; the next leader looks it up before anything is created again).
    fn step_down(&mut self, why: &str) {
        if self.epoch.take().is_none() {
            return;
        }
        warn!(instance = %self.instance, reason = why, "standing by: no longer the leader");
        self.lease_guard.set(None);
        self.tasks.abort_all();
        self.generation += 1;
        self.delivering.clear();
        // Answers not committed are the new leader's to look up (it looks every planned,
        // closing and updating entry up); this instance reloads its ledger when it leads again.
        self.pending_answers.clear();
        self.staged = Staged::default();
        self.polling_now.clear();
        self.refreshing = false;
        self.syncing = false;
        self.rebuilding = false;
        self.lease_due = DateTime::<Utc>::MIN_UTC;
        self.publish_role();
    }

    fn publish_role(&self) {
        let info = RoleInfo {
            role: if self.epoch.is_some() { "leader" } else { "standby" },
            instance: self.instance.clone(),
            epoch: self.epoch,
        };
        self.shared.metrics.set_leader(&self.instance, self.epoch.is_some());
        self.shared.health.set_standby(self.epoch.is_none());
        *self.shared.role.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(info);
    }

    /// Starts whatever is due and not already running.
    fn start_due_work(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        self.shared.store.verify()?;
        let leads = self.lead(now);
        while let Some(r) = self.reloads.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.apply_reload(r);
        }
        // A save made elsewhere (the CLI on the store, another daemon) takes effect here.
        match crate::rules::sync_from_store(&self.shared) {
            Ok(Some((revision, sections))) if !sections.is_empty() => {
                let sections: Vec<String> = sections.iter().map(ToString::to_string).collect();
                info!(sections = %sections.join(", "), revision, "saved rules changed elsewhere; applying them");
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot read the rules' revision from the store"),
        }
        let rules_version = self.shared.rules_version.load(Ordering::SeqCst);
        if !self.refreshing && (self.ctx.is_none() || now >= self.refresh_due) {
            self.start_refresh();
        } else if self.ctx.is_some() && rules_version != self.ctx_rules_version {
            self.rebuild_context(rules_version);
        }
        if !leads {
            // A standby keeps rules, catalog and mapping current (its admin API and UI serve
            // them; reading the PSA's picklists changes nothing there) and nothing else: no
            // polls, no PSA writes.
            self.publish_role();
            return Ok(());
        }
        if self.ctx.is_some() && !self.rebuilt && !self.rebuilding && now >= self.rebuild_due {
            self.start_rebuild(now);
        }
        if self.ctx.is_some() && self.rebuilt {
            self.take_retry_requests(now)?;
            self.start_polls(now)?;
            if self.polling.ticket_sync_secs > 0 && !self.syncing && now >= self.sync_due {
                self.start_sync();
            }
            self.start_deliveries(now)?;
        }
        self.publish_gauges();
        Ok(())
    }

    fn publish_gauges(&self) {
        let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
        for work in self.ledger.pending_work() {
            let state = match work {
                Recovery::LookUpThenCreate(_) => "planned",
                Recovery::RetryClose(_) => "closing",
                Recovery::AddNote(_) => "closed",
                Recovery::Update(_) => "updating",
                Recovery::AddRecurrenceNote(_) => "recurrence",
            };
            *by_state.entry(state).or_default() += 1;
        }
        self.shared.metrics.set_outbox(&by_state);
        if let Some(probe) = &self.budget {
            let b = probe();
            self.shared.metrics.set_budget(b);
        }
    }

    /// Applies one finished task.
    fn finish(&mut self, done: Done, report: &mut TickReport) -> Result<(), EngineError> {
        let now = Utc::now();
        match done {
            // Reads started before a configuration reload came from sources (or a sink) that may
            // be gone: dropped unapplied. Nothing was committed for them, so they are redone.
            Done::Refreshed { generation, .. } | Done::Fetched { generation, .. } if generation != self.generation => {}
            Done::Refreshed { catalog, accounts, listings, .. } => self.refreshed(catalog, accounts, listings, now),
            Done::Rebuilt(result) => self.rebuilt(result, now)?,
            Done::Fetched { job, tenant, fetched, .. } => self.fetched(job, tenant, fetched, now, report)?,
            Done::Delivered { key, op, outcome } => {
                report.transitions += self.deliver_answers(vec![(key, op, outcome)], now)?;
            }
            Done::Synced { open, result } => {
                self.syncing = false;
                self.sync_due = now + secs(self.polling.ticket_sync_secs);
                self.synced(&open, result, now)?;
            }
        }
        Ok(())
    }

    /// Reads catalog, accounts and tenant lists in the background.
    fn start_refresh(&mut self) {
        self.refreshing = true;
        let generation = self.generation;
        let sink = self.sink.clone();
        let timeout = self.psa_timeout;
        let events: Vec<(Job, NamedEventSource)> =
            self.event_sources.iter().cloned().enumerate().map(|(i, s)| (Job::Events(i), s)).collect();
        let statuses: Vec<(Job, NamedStatusSource)> =
            self.status_sources.iter().cloned().enumerate().map(|(i, s)| (Job::Statuses(i), s)).collect();
        let shared = self.shared.clone();
        let read = self.tasks.spawn(async move {
            let started = std::time::Instant::now();
            let catalog = tokio::time::timeout(timeout, sink.reader().catalog())
                .await
                .unwrap_or_else(|_| Err(timed_out("catalog", timeout)));
            shared.metrics.psa_duration("catalog", started.elapsed());
            let started = std::time::Instant::now();
            let accounts = tokio::time::timeout(timeout, sink.reader().accounts())
                .await
                .unwrap_or_else(|_| Err(timed_out("accounts", timeout)));
            shared.metrics.psa_duration("accounts", started.elapsed());
            let mut listings = Vec::new();
            for (job, s) in events {
                let r = tokio::time::timeout(s.timeout, s.source.tenants())
                    .await
                    .unwrap_or_else(|_| Err(timed_out("listing tenants", s.timeout)));
                listings.push((job, s.name.clone(), r));
            }
            for (job, s) in statuses {
                let r = tokio::time::timeout(s.timeout, s.source.tenants())
                    .await
                    .unwrap_or_else(|_| Err(timed_out("listing tenants", s.timeout)));
                listings.push((job, s.name.clone(), r));
            }
            Done::Refreshed { generation, catalog, accounts, listings }
        });
        self.track_read(read);
    }

    /// Keeps the handle of a read through the current adapters, so a reload can end it.
    fn track_read(&mut self, read: tokio::task::AbortHandle) {
        self.reads.retain(|r| !r.is_finished());
        self.reads.push(read);
    }

    fn refreshed(
        &mut self,
        catalog: Result<Catalog, PortError>,
        accounts: Result<Vec<Account>, PortError>,
        listings: Vec<(Job, String, Result<Vec<Tenant>, PortError>)>,
        now: DateTime<Utc>,
    ) {
        self.refreshing = false;
        self.count_psa("catalog", &catalog);
        self.count_psa("accounts", &accounts);
        match (catalog, accounts) {
            (Ok(catalog), Ok(accounts)) => {
                self.catalog = Some(catalog.clone());
                self.accounts = accounts.clone();
                *self.shared.catalog.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(catalog);
                *self.shared.accounts.write().unwrap_or_else(std::sync::PoisonError::into_inner) = accounts;
                self.refresh_due = now + secs(self.polling.catalog_secs);
            }
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "cannot read the PSA catalog or accounts; retrying soon");
                self.refresh_due = now + backoff(self.psa_failures + 2, 60);
            }
        }
        for (job, name, listed) in listings {
            match listed {
                Ok(t) => {
                    let ids: HashSet<&TenantId> = t.iter().map(|x| &x.id).collect();
                    self.listed.retain(|(j, id), _| *j != job || ids.contains(id));
                    for tenant in t {
                        let key = (job, tenant.id.clone());
                        // A tenant new to the list (or back on it) is queued: at once, or when it
                        // was due anyway.
                        if self.listed.insert(key.clone(), tenant).is_none() && !self.polling_now.contains(&key) {
                            let at = self.due.get(&key).copied().unwrap_or(DateTime::<Utc>::MIN_UTC);
                            self.schedule(key, at);
                        }
                    }
                }
                Err(e) => {
                    self.shared.source_failed(&name, &e.to_string());
                    warn!(source = %name, error = %e, "cannot list tenants; keeping the last list");
                }
            }
        }
        let version = self.shared.rules_version.load(Ordering::SeqCst);
        self.rebuild_context(version);
        let keep = chrono::Duration::days(i64::from(self.polling.history_days));
        match self.shared.store.prune_history(now - keep) {
            Ok(0) => {}
            Ok(n) => debug!(rows = n, "pruned event history"),
            Err(e) => warn!(error = %e, "cannot prune the event history"),
        }
    }

    /// Asks the PSA for every ticket this system made (open, or closed within the longest
    /// lifetime) so that a ledger that lost them (an empty, replaced or restored store) takes
    /// them over instead of creating them again. Runs once per start, before any poll.
    fn start_rebuild(&mut self, now: DateTime<Utc>) {
        self.rebuilding = true;
        let longest = self.windows.values().map(|w| w.unwrap_or(chrono::Duration::days(1))).max();
        let closed_since = now - longest.unwrap_or(chrono::Duration::days(1)) - chrono::Duration::days(1);
        let sink = self.sink.clone();
        let timeout = self.psa_timeout;
        self.tasks.spawn(async move {
            let r = tokio::time::timeout(timeout * 4, sink.reader().owned_tickets(IDEMPOTENCY_PREFIX, closed_since))
                .await
                .unwrap_or_else(|_| Err(timed_out("listing the PSA's tickets", timeout * 4)));
            Done::Rebuilt(r)
        });
    }

    fn rebuilt(
        &mut self,
        result: Result<Option<Vec<OwnedTicket>>, PortError>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.rebuilding = false;
        self.count_psa("owned_tickets", &result);
        match result {
            Ok(Some(owned)) => {
                let (adoptions, unreadable) = self.ledger.adoptions(&owned);
                let mut applied = Vec::new();
                for t in adoptions {
                    if self.ledger.apply(&t, now).is_ok() {
                        if let Transition::Adopted { key, .. } = &t {
                            self.uncertain.remove(key);
                        }
                        applied.push(t);
                    }
                }
                self.commit(&applied, &[], None, now)?;
                self.shared.metrics.tickets_adopted(applied.len() as u64);
                if applied.is_empty() {
                    info!(listed = owned.len(), "ledger matches the PSA's tickets");
                } else {
                    warn!(
                        listed = owned.len(),
                        adopted = applied.len(),
                        "the ledger lacked tickets the PSA has (a new, lost or restored store): took them over instead of creating them again"
                    );
                }
                if unreadable > 0 {
                    warn!(
                        unreadable,
                        "PSA tickets with this system's idempotency prefix but no readable key line (edited, or made by an older version)"
                    );
                }
                self.rebuilt = true;
            }
            Ok(None) => {
                warn!("the PSA backend cannot list its tickets: every create is looked up by idempotency key first");
                self.look_up_every_create = true;
                self.rebuilt = true;
            }
            Err(e) => {
                warn!(error = %e, "cannot list the PSA's tickets to check the ledger; nothing is polled or created until it succeeds");
                self.rebuild_due = now + backoff(self.psa_failures + 2, 60);
            }
        }
        Ok(())
    }

    /// Re-plans refused creates an operator asked to retry (`msp-ticketd ledger retry`, the API).
    fn take_retry_requests(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let requests = self.shared.store.take_retry_requests()?;
        if requests.is_empty() {
            return Ok(());
        }
        let Some(ctx) = self.ctx.as_ref() else { return Ok(()) };
        let mut transitions = Vec::new();
        for entry in self.ledger.entries() {
            let TicketState::Failed { draft, .. } = &entry.state else { continue };
            let wanted = requests
                .iter()
                .any(|r| r == "*" || *r == entry.key.canonical() || *r == entry.idempotency_key.as_str());
            if !wanted {
                continue;
            }
            let Some(draft) = draft else {
                warn!(key = %entry.key, "cannot retry: the refused draft was stored by an older version");
                continue;
            };
            match replan(draft, entry.key.tenant(), ctx, now) {
                Ok(draft) => transitions.push(Transition::Retry { key: entry.key.clone(), draft }),
                Err(reason) => warn!(key = %entry.key, reason = %reason, "cannot retry the refused ticket yet"),
            }
        }
        let mut applied = Vec::new();
        for t in transitions {
            if self.ledger.apply(&t, now).is_ok() {
                info!(key = %t.key(), "refused ticket re-planned by an operator");
                applied.push(t);
            }
        }
        self.commit(&applied, &[], None, now)
    }

    fn rebuild_context(&mut self, rules_version: u64) {
        let Some(catalog) = &self.catalog else { return };
        let mut mapped = Vec::new();
        let mut pairs = Vec::new();
        let names: BTreeMap<String, String> =
            self.listed.values().map(|t| (t.id.to_string(), t.name.clone())).collect();
        for m in &self.mapping {
            let account = m.account_in(&self.accounts);
            let problem = match (account, m.account_id) {
                (Some(a), _) if !a.active => Some("account is inactive: no tickets".to_owned()),
                (Some(_), _) => None,
                (None, Some(id)) => Some(format!("the PSA has no account {id}")),
                (None, None) => {
                    Some(format!("the PSA has no account named {:?}", m.account_name.as_deref().unwrap_or("")))
                }
            };
            match (&problem, self.mapping_problems.get(&m.tenant)) {
                (Some(p), Some(old)) if p == old => {}
                (Some(p), _) => {
                    warn!(tenant = %m.tenant, problem = %p, "mapping");
                    self.mapping_problems.insert(m.tenant.clone(), p.clone());
                }
                (None, Some(_)) => {
                    info!(tenant = %m.tenant, "mapping problem resolved: tickets go to the account again");
                    self.mapping_problems.remove(&m.tenant);
                }
                (None, None) => {}
            }
            // An account id the PSA lacks still maps (decisions then skip as account_inactive).
            if let Some(id) = account.map(|a| a.id).or(m.account_id.map(PsaId)) {
                pairs.push((TenantId::new(m.tenant.clone()), id));
            }
            mapped.push(MappedTenant {
                tenant: m.tenant.clone(),
                tenant_name: names.get(&m.tenant).cloned(),
                account_id: account.map(|a| a.id),
                account_name: account.map(|a| a.name.clone()),
                active: account.map(|a| a.active),
                problem,
            });
        }
        for (id, name) in &names {
            if !self.mapping.iter().any(|m| &m.tenant == id) {
                mapped.push(MappedTenant {
                    tenant: id.clone(),
                    tenant_name: Some(name.clone()),
                    account_id: None,
                    account_name: None,
                    active: None,
                    problem: Some("not mapped: no tickets".to_owned()),
                });
            }
        }
        *self.shared.mapping.write().unwrap_or_else(std::sync::PoisonError::into_inner) = mapped;
        let saved = self.shared.rules().saved.clone();
        let errors: Vec<String> = saved.validate(catalog).iter().map(ToString::to_string).collect();
        // Logged when the set of problems changes (every refresh rebuilds the context).
        if errors != self.rule_problems {
            for e in errors.iter().filter(|e| !self.rule_problems.contains(e)) {
                warn!(problem = %e, "saved rules do not resolve against the PSA catalog; affected rows skip with rule_invalid");
            }
            if errors.is_empty() {
                info!("saved rules resolve against the PSA catalog again");
            }
            self.rule_problems = errors;
        }
        self.windows = [Product::SecurityCenter, Product::EndpointCloud, Product::Office365]
            .into_iter()
            .map(|p| (p, saved.longest_lifetime_days(p).map(|d| chrono::Duration::days(i64::from(d)))))
            .collect();
        self.ctx = Some(Context::new(&saved, catalog, pairs, self.accounts.iter().cloned()));
        self.ctx_rules_version = rules_version;
        self.ctx_revision = self.shared.rules_revision.load(Ordering::SeqCst);
    }

    fn count_psa<T>(&self, op: &str, r: &Result<T, PortError>) {
        self.shared.psa_answered(op, r.as_ref().map(|_| ()).map_err(|e| e.kind));
    }

    /// Sets when a tenant is read next.
    fn schedule(&mut self, key: (Job, TenantId), at: DateTime<Utc>) {
        self.queues.entry(key.0).or_default().push(std::cmp::Reverse((at, key.1.clone())));
        self.due.insert(key, at);
    }

    /// Starts a read of every due tenant not already being read. Each read has its source's
    /// timeout; a slow or failing tenant delays no one.
    fn start_polls(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        // At most `read_concurrency` reads per source at once: 10,000 tenants of one Security
        // Center are read a few at a time, not with 10,000 connections. Each source keeps its
        // tenants in a queue by due time, so a call costs the reads it starts, not a pass over
        // every tenant. It runs every tick and whenever a read finishes (a slot frees up).
        let mut in_flight: HashMap<Job, usize> = HashMap::new();
        for (job, _) in &self.polling_now {
            *in_flight.entry(*job).or_default() += 1;
        }
        let bound = self.polling.read_concurrency.max(1);
        let mut jobs: Vec<(Job, Tenant)> = Vec::new();
        let mut staged_again = Vec::new();
        for (job, queue) in &mut self.queues {
            let mut free = bound.saturating_sub(in_flight.get(job).copied().unwrap_or(0));
            while free > 0 {
                let Some(std::cmp::Reverse((at, _))) = queue.peek() else { break };
                if *at > now {
                    break;
                }
                let std::cmp::Reverse((at, id)) = queue.pop().expect("peeked");
                let key = (*job, id);
                // Stale (rescheduled since), already being read, or no longer listed: skip.
                if self.due.get(&key).is_some_and(|d| *d != at) || self.polling_now.contains(&key) {
                    continue;
                }
                // Read, with its writes still staged: read again once they are committed.
                if self.staged.reads.contains(&key) {
                    staged_again.push((at, key.1));
                    continue;
                }
                let Some(tenant) = self.listed.get(&key) else { continue };
                jobs.push((*job, tenant.clone()));
                free -= 1;
            }
            for (at, id) in staged_again.drain(..) {
                queue.push(std::cmp::Reverse((at, id)));
            }
        }
        let limit = self.polling.batch_size;
        let generation = self.generation;
        for (job, tenant) in jobs {
            self.polling_now.insert((job, tenant.id.clone()));
            let task: Task = match job {
                Job::Events(i) => {
                    let src = self.event_sources[i].clone();
                    let ck = CursorKey { source: src.name.clone(), tenant: tenant.id.clone() };
                    let cursor = match self.cursors.get(&ck) {
                        Some(c) => c.clone(),
                        None => {
                            let c = self.shared.store.cursor(&ck)?;
                            self.cursors.insert(ck, c.clone());
                            c
                        }
                    };
                    let window_start = self
                        .windows
                        .get(&src.source.product())
                        .copied()
                        .unwrap_or(Some(chrono::Duration::days(1)))
                        .map(|w| now - w);
                    Box::pin(async move {
                        let r = tokio::time::timeout(
                            src.timeout,
                            src.source.poll_events(&tenant.id, cursor.as_ref(), limit, window_start),
                        )
                        .await
                        .unwrap_or_else(|_| Err(timed_out("reading events", src.timeout)));
                        Done::Fetched { generation, job, tenant, fetched: Fetched::Events(r) }
                    })
                }
                Job::Statuses(i) => {
                    let src = self.status_sources[i].clone();
                    Box::pin(async move {
                        let r = tokio::time::timeout(src.timeout, src.source.snapshot(&tenant.id))
                            .await
                            .unwrap_or_else(|_| Err(timed_out("reading statuses", src.timeout)));
                        Done::Fetched { generation, job, tenant, fetched: Fetched::Snapshot(r) }
                    })
                }
            };
            let read = self.tasks.spawn(task);
            self.track_read(read);
        }
        Ok(())
    }

    fn fetched(
        &mut self,
        job: Job,
        tenant: Tenant,
        fetched: Fetched,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), EngineError> {
        let key = (job, tenant.id.clone());
        self.polling_now.remove(&key);
        let (name, interval) = match job {
            Job::Events(i) => (self.event_sources[i].name.clone(), self.polling.events_secs),
            Job::Statuses(i) => (self.status_sources[i].name.clone(), self.polling.statuses_secs),
        };
        if self.ctx.is_none() {
            return Ok(());
        }
        let outcome = match fetched {
            Fetched::Events(Ok(batch)) => {
                report.events += batch.events.len();
                let more = batch.more;
                report.transitions += self.handle_events(&name, &tenant.id, batch, now)?;
                Ok(more)
            }
            Fetched::Snapshot(Ok(snapshot)) => {
                report.snapshots += 1;
                report.transitions += self.handle_snapshot(&snapshot, now)?;
                Ok(false)
            }
            Fetched::Events(Err(e)) | Fetched::Snapshot(Err(e)) => Err(e),
        };
        match outcome {
            Ok(more) => {
                self.shared.source_succeeded(&name, now);
                self.failures.remove(&key);
                let next = if more { now } else { now + secs(interval) };
                self.schedule(key, next);
            }
            Err(e) => {
                self.shared.source_failed(&name, &e.to_string());
                let n = self.failures.entry(key.clone()).or_default();
                *n += 1;
                let wait = backoff(*n, interval);
                warn!(source = %name, tenant = %tenant.id, error = %e, retry_in_secs = wait.num_seconds(), "source read failed");
                self.schedule(key, now + wait);
            }
        }
        // Its writes wait in the group; a slot is free: the next due tenant's read starts
        // now, not at the next tick.
        self.staged.reads.insert((job, tenant.id));
        if self.epoch.is_some() && self.rebuilt {
            self.start_polls(now)?;
        }
        Ok(())
    }

    /// Commits the staged group (see [`Staged`]) with the pending answers, and starts what
    /// waited for it.
    fn flush_staged(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.write(&[], &[], Vec::new(), &[], false, now)?;
        self.start_polls(now)?;
        self.start_deliveries(now)
    }

    /// Stages a read's writes for the group's commit (see [`Staged`]).
    fn stage_read(
        &mut self,
        transitions: Vec<Transition>,
        events: &[ticketing_core::model::Event],
        cursor: Option<(CursorKey, ticketing_core::ports::Cursor)>,
        decisions: Vec<crate::store::Decision>,
    ) {
        let staged = &mut self.staged;
        staged.keys.extend(transitions.iter().map(|t| t.key().clone()));
        staged.transitions.extend(transitions);
        staged.events.extend_from_slice(events);
        staged.cursors.extend(cursor);
        staged.decisions.extend(decisions);
    }

    /// Applies transitions to the ledger and commits them with the batch's events and cursor.
    /// On a store failure the in-memory ledger is reloaded (nothing half-done survives).
    fn commit(
        &mut self,
        transitions: &[Transition],
        events: &[ticketing_core::model::Event],
        cursor: Option<(&CursorKey, &ticketing_core::ports::Cursor)>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.write(transitions, events, cursor.into_iter().collect(), &[], false, now)
    }

    /// Commits the PSA answers applied since the last commit, relaxed (see
    /// [`Commit::relaxed`]). Answers wait for the next commit of any kind, at most one tick or
    /// [`ANSWER_BATCH`] answers: a lost answer only means its call is looked up again after a
    /// restart (every planned, closing and updating entry is, by a new leader), so batching
    /// them loses nothing and saves a write per answer.
    fn flush_answers(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.pending_answers.is_empty() {
            return Ok(());
        }
        self.write(&[], &[], Vec::new(), &[], true, now)
    }

    /// Writes one transaction: the pending PSA answers first, then the staged reads (see
    /// [`Staged`]), then `transitions` with the ledger entries they left. On a store failure
    /// the in-memory ledger is reloaded and the staged reads are undone (read again at once).
    fn write(
        &mut self,
        transitions: &[Transition],
        events: &[ticketing_core::model::Event],
        cursors: Vec<(&CursorKey, &ticketing_core::ports::Cursor)>,
        decisions: &[crate::store::Decision],
        relaxed: bool,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let answers = std::mem::take(&mut self.pending_answers);
        let staged = std::mem::take(&mut self.staged);
        let relaxed = relaxed && staged.is_empty() && transitions.is_empty() && events.is_empty() && cursors.is_empty();
        let transitions: Vec<&Transition> = answers.iter().chain(&staged.transitions).chain(transitions).collect();
        // The staged events and decisions are this commit's own: moved, not copied.
        let mut all_events = staged.events;
        all_events.extend_from_slice(events);
        let events = all_events;
        let mut all_decisions = staged.decisions;
        all_decisions.extend_from_slice(decisions);
        let decisions = all_decisions;
        let cursors: Vec<_> = staged.cursors.iter().map(|(k, c)| (k, c)).chain(cursors).collect();
        if transitions.is_empty() && events.is_empty() && cursors.is_empty() && decisions.is_empty() {
            return Ok(());
        }
        let entries: Vec<Option<LedgerEntry>> = transitions.iter().map(|t| self.ledger.get(t.key()).cloned()).collect();
        let pairs = transitions.iter().zip(entries.iter()).map(|(t, e)| (*t, e.as_ref())).collect();
        let result = self.shared.store.commit(&Commit {
            transitions: pairs,
            events: &events,
            cursors,
            decisions: &decisions,
            relaxed,
            at: Some(now),
            epoch: self.epoch,
        });
        if let Err(e) = result {
            error!(error = %e, "store commit failed; reloading the ledger from the store");
            for (key, _) in &staged.cursors {
                self.cursors.remove(key);
            }
            for read in staged.reads {
                self.schedule(read, now);
            }
            self.ledger = self.shared.store.load_ledger()?;
            return Err(e.into());
        }
        self.shared.metrics.store_committed();
        Ok(())
    }

    fn handle_events(
        &mut self,
        source: &str,
        tenant: &TenantId,
        batch: EventBatch,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let ctx = self.ctx.as_ref().expect("poll runs only with a context");
        let mut transitions = Vec::new();
        let mut skipped = Vec::new();
        let mut decisions = Vec::with_capacity(batch.events.len());
        let psa = *self.shared.psa_name.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = crate::audit::Names { psa, accounts: &self.accounts };
        for event in &batch.events {
            self.shared.metrics.event_seen(event.product.code(), 1);
            let device = event.device.as_ref().map(|d| (d.id.as_str(), d.name.as_str()));
            let decided = |key: &TicketKey, outcome, reason: Option<&SkipReason>, detail| {
                crate::audit::decision(
                    now,
                    event.product,
                    key,
                    Some(event.source_id.as_str()),
                    device,
                    outcome,
                    reason,
                    detail,
                    self.ctx_revision,
                )
            };
            match decide_event(event, ctx, &self.ledger, now) {
                EventDecision::Create(c) => {
                    let t = c.transition();
                    if let Err(e) = self.ledger.apply(&t, now) {
                        error!(error = %e, "decision does not fit the ledger");
                        continue;
                    }
                    decisions.push(decided(&c.key, crate::store::Outcome::Ticketed, None, "ticketed".to_owned()));
                    transitions.push(t);
                }
                // A recurrence: counted, and its note queued on the open ticket (outbox work).
                EventDecision::Note(n) => {
                    let t = n.transition();
                    if let Err(e) = self.ledger.apply(&t, now) {
                        error!(error = %e, "recurrence does not fit the ledger");
                        continue;
                    }
                    let words = format!("not ticketed again: {}; noted on its open ticket", first_line(&n.note.text));
                    let mut d = decided(&n.event, crate::store::Outcome::Noted, None, words);
                    // The ticket is the open one's: `why` shows its state.
                    d.key = n.key.canonical();
                    decisions.push(d);
                    transitions.push(t);
                }
                EventDecision::Skip { key, reason } => {
                    let row = RowId::Event(event.product, event.class);
                    let words = crate::audit::explain(&reason, Some(&row), &event.tenant, names);
                    decisions.push(decided(&key, crate::store::Outcome::Skipped, Some(&reason), words));
                    skipped.push((key, reason));
                }
            }
        }
        for m in &batch.malformed {
            self.shared.metrics.malformed(source, 1);
            warn!(source, tenant = %tenant, record = %m.id, reason = %m.reason, "malformed record skipped");
        }
        let ck = CursorKey { source: source.to_owned(), tenant: tenant.clone() };
        // An idle poll (nothing read, cursor unchanged) writes nothing: no fsync per tenant per
        // pass when nothing happens.
        let unchanged = self.cursors.get(&ck).is_some_and(|c| c.as_ref() == Some(&batch.next));
        let planned = transitions.len();
        if !(transitions.is_empty() && batch.events.is_empty() && unchanged) {
            self.stage_read(transitions, &batch.events, Some((ck.clone(), batch.next.clone())), decisions);
            self.cursors.insert(ck, Some(batch.next.clone()));
        }
        for (key, reason) in skipped {
            self.shared.metrics.skip(reason.label());
            debug!(tenant = %tenant, key = %key, reason = %reason, "event not ticketed");
            self.notice(Notice::Skipped { key, reason });
        }
        Ok(planned)
    }

    fn handle_snapshot(
        &mut self,
        snapshot: &ticketing_core::model::StatusSnapshot,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let ctx = self.ctx.as_ref().expect("poll runs only with a context");
        self.shared.metrics.set_unknown_descriptions(snapshot.unknown_descriptions);
        let rec = reconcile(snapshot, ctx, &self.ledger, now);
        let mut transitions = Vec::new();
        let mut decisions = Vec::new();
        let audit = ConditionAudit::new(snapshot, now, self.ctx_revision);
        for action in &rec.actions {
            let t = action.transition();
            if let Err(e) = self.ledger.apply(&t, now) {
                error!(error = %e, "reconciliation does not fit the ledger");
                continue;
            }
            match action {
                Action::Close(c) => {
                    debug!(key = %c.key, "close planned");
                    decisions.push(audit.record(&c.key, crate::store::Outcome::Closed, None, c.note.clone()));
                }
                Action::Create(c) => {
                    decisions.push(audit.record(&c.key, crate::store::Outcome::Ticketed, None, "ticketed".to_owned()));
                }
                _ => {}
            }
            transitions.push(t);
        }
        // A condition's reason not to ticket is recorded when it changes (snapshots repeat it).
        let psa = *self.shared.psa_name.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = crate::audit::Names { psa, accounts: &self.accounts };
        let tenant_key = (snapshot.product, snapshot.tenant.clone());
        let before = self.condition_reasons.remove(&tenant_key).unwrap_or_default();
        let mut after = HashMap::with_capacity(rec.skipped.len());
        for (key, reason) in &rec.skipped {
            let label = reason.label();
            if before.get(key) != Some(&label) {
                let row = audit.row(key);
                let words = crate::audit::explain(reason, row.as_ref(), &snapshot.tenant, names);
                decisions.push(audit.record(key, crate::store::Outcome::Skipped, Some(reason), words));
            }
            after.insert(key.clone(), label);
        }
        if !after.is_empty() {
            self.condition_reasons.insert(tenant_key, after);
        }
        let planned = transitions.len();
        self.stage_read(transitions, &[], None, decisions);
        // Conditions are re-reported by every snapshot, so they are a gauge per tenant, not a
        // counter (events, which come once, are counted in `msp_skips_total`).
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for (key, reason) in &rec.skipped {
            *reasons.entry(reason.label().to_owned()).or_default() += 1;
            debug!(key = %key, reason = %reason, "condition not ticketed");
        }
        // The gauge's totals change by this tenant's difference only (no pass over every tenant).
        let key = (snapshot.product, snapshot.tenant.clone());
        let old = self.condition_skips.get(&key);
        if old != Some(&reasons) {
            for (reason, n) in old.into_iter().flatten() {
                if let Some(t) = self.condition_totals.get_mut(reason) {
                    *t = t.saturating_sub(*n);
                }
            }
            for (reason, n) in &reasons {
                *self.condition_totals.entry(reason.clone()).or_default() += n;
            }
            self.condition_totals.retain(|_, n| *n > 0);
            self.shared.metrics.set_conditions_not_ticketed(self.condition_totals.clone());
            self.condition_skips.insert(key, reasons);
        }
        Ok(planned)
    }

    /// Starts the PSA calls the ledger waits for, most urgent first, while fewer than
    /// `deliver_concurrency` are in flight. A planned create whose event outlived its lifetime is
    /// dropped as stale instead (after a lookup, when an earlier attempt may have reached the
    /// PSA); a create is sent with its due time counted from now.
    fn start_deliveries(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        // Only the leader delivers (a standby's catalog refresh also ends in the engine's loop).
        if self.epoch.is_none() || now < self.psa_not_before || !self.rebuilt {
            return Ok(());
        }
        let free = self.polling.deliver_concurrency.max(1).saturating_sub(self.delivering.len());
        let mut calls: Vec<(TicketKey, &'static str, Task)> = Vec::new();
        let mut stale = Vec::new();
        let timeout = self.psa_timeout;
        for work in self.ledger.pending_work() {
            if calls.len() >= free {
                break;
            }
            let key = work.key().clone();
            // A staged plan is not durable yet: its call waits for the group's commit.
            if self.delivering.contains(&key) || self.staged.keys.contains(&key) {
                continue;
            }
            let Some(entry) = self.ledger.get(&key) else { continue };
            let sink = self.sink.clone();
            match (&work, &entry.state) {
                (Recovery::LookUpThenCreate(_), TicketState::Planned { draft }) => {
                    let look_up = self.look_up_every_create || self.uncertain.contains(&key);
                    let expired = draft.is_expired(now);
                    if expired && !look_up {
                        stale.push(key);
                        continue;
                    }
                    let draft = draft.at(now);
                    let k = key.clone();
                    let task: Task = Box::pin(async move {
                        let call = async {
                            if look_up {
                                match sink.reader().find_ticket(&draft.idempotency_key).await {
                                    Ok(Some(t)) => return ("find", Outcome::Created(t, true)),
                                    Ok(None) if expired => return ("find", Outcome::StaleNotFound),
                                    Ok(None) => {}
                                    Err(e) => return ("find", Outcome::Failed(e)),
                                }
                            }
                            // A create is never sent by an instance whose lease may have run out
                            // (paused, partitioned): the new leader may be creating it already.
                            let Some(writer) = sink.writer("create") else {
                                return ("create", Outcome::NotLeading);
                            };
                            match writer.create_ticket(&draft).await {
                                Ok(t) => ("create", Outcome::Created(t, false)),
                                Err(e) if e.kind == PortErrorKind::Invalid => ("create", Outcome::Refused(e.message)),
                                Err(e) => ("create", Outcome::Failed(e)),
                            }
                        };
                        let (op, outcome) = tokio::time::timeout(timeout, call)
                            .await
                            .unwrap_or_else(|_| ("create", Outcome::Failed(timed_out("create", timeout))));
                        Done::Delivered { key: k, op, outcome }
                    });
                    calls.push((key, "create", task));
                }
                (Recovery::RetryClose(_), TicketState::Closing { ticket, status, .. }) => {
                    let (ticket, status) = (ticket.clone(), *status);
                    let k = key.clone();
                    let task: Task = Box::pin(async move {
                        // Never sent once the lease may have moved on: the new leader may have
                        // reopened the ticket meanwhile.
                        let Some(writer) = sink.writer("close") else {
                            return Done::Delivered { key: k, op: "close", outcome: Outcome::NotLeading };
                        };
                        let outcome = match tokio::time::timeout(timeout, writer.close_ticket(&ticket, status)).await {
                            Ok(Ok(())) => Outcome::Closed,
                            // The ticket is gone from the PSA: nothing is left open.
                            Ok(Err(e)) if e.kind == PortErrorKind::NotFound => Outcome::Closed,
                            Ok(Err(e)) => Outcome::Failed(e),
                            Err(_) => Outcome::Failed(timed_out("close", timeout)),
                        };
                        Done::Delivered { key: k, op: "close", outcome }
                    });
                    calls.push((key, "close", task));
                }
                (Recovery::AddRecurrenceNote(_), _) => {
                    let (Some(ticket), Some(note)) = (entry.ticket().cloned(), entry.recurrence_note().cloned()) else {
                        continue;
                    };
                    let look_up = self.uncertain_notes.contains(&key);
                    let task = note_task(sink, key.clone(), ticket, note, NoteKind::Recurrence, look_up, timeout);
                    calls.push((key, "note", task));
                }
                (Recovery::Update(_), TicketState::Updating { ticket, update, note, .. }) => {
                    let (ticket, update, note) = (ticket.clone(), (**update).clone(), (**note).clone());
                    let look_up = self.uncertain_notes.contains(&key);
                    let k = key.clone();
                    let task: Task = Box::pin(async move {
                        // Like a note: never sent once the lease may have moved on.
                        let Some(writer) = sink.writer("update") else {
                            return Done::Delivered { key: k, op: "update", outcome: Outcome::NotLeading };
                        };
                        // The update sets absolute values (idempotent), so a retry sends it again;
                        // the note after it is looked up first when an earlier one may have landed.
                        let call = async {
                            match writer.update_ticket(&ticket, &update).await {
                                Ok(()) => {}
                                Err(e) if matches!(e.kind, PortErrorKind::Invalid | PortErrorKind::NotFound) => {
                                    return Outcome::UpdateRefused(e.message);
                                }
                                Err(e) => return Outcome::Failed(e),
                            }
                            match writer.add_note(&ticket, &note, look_up).await {
                                Ok(()) => Outcome::Updated,
                                Err(e) if matches!(e.kind, PortErrorKind::Invalid | PortErrorKind::NotFound) => {
                                    warn!(ticket = %ticket.id, error = %e, "the PSA refused the update's note; the update stands");
                                    Outcome::Updated
                                }
                                Err(e) => Outcome::Failed(e),
                            }
                        };
                        let outcome = tokio::time::timeout(timeout, call)
                            .await
                            .unwrap_or_else(|_| Outcome::Failed(timed_out("update", timeout)));
                        Done::Delivered { key: k, op: "update", outcome }
                    });
                    calls.push((key, "update", task));
                }
                (Recovery::AddNote(_), TicketState::Closed { ticket: Some(ticket), note: Some(note), .. }) => {
                    let (ticket, note) = (ticket.clone(), (**note).clone());
                    let look_up = self.uncertain_notes.contains(&key);
                    let task = note_task(sink, key.clone(), ticket, note, NoteKind::Close, look_up, timeout);
                    calls.push((key, "note", task));
                }
                _ => {}
            }
        }
        for (key, op, task) in calls {
            // From here on the call may reach the PSA: until its answer is applied, a create or
            // note counts as uncertain (looked up before it is tried again, also after a crash).
            match op {
                "create" => {
                    self.uncertain.insert(key.clone());
                }
                "note" | "update" => {
                    self.uncertain_notes.insert(key.clone());
                }
                _ => {}
            }
            self.delivering.insert(key);
            let shared = self.shared.clone();
            let started = std::time::Instant::now();
            self.tasks.spawn(async move {
                let done = task.await;
                if let Done::Delivered { op, .. } = &done {
                    shared.metrics.psa_duration(op, started.elapsed());
                }
                done
            });
        }
        if !stale.is_empty() {
            let transitions: Vec<Transition> =
                stale.into_iter().map(|key| Transition::Dropped { key, reason: "stale".to_owned() }).collect();
            let mut applied = Vec::new();
            for t in transitions {
                if self.ledger.apply(&t, now).is_ok() {
                    self.shared.metrics.skip("stale");
                    info!(key = %t.key(), "planned ticket dropped: its event outlived its lifetime before the PSA could be reached");
                    applied.push(t);
                }
            }
            self.commit(&applied, &[], None, now)?;
        }
        Ok(())
    }

    /// Applies PSA answers to the ledger and commits them in one transaction (answers that
    /// arrive together share one fsync), then logs them.
    fn deliver_answers(
        &mut self,
        answers: Vec<(TicketKey, &'static str, Outcome)>,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let mut applied = Vec::with_capacity(answers.len());
        for (key, op, outcome) in answers {
            self.delivering.remove(&key);
            if let Some(t) = self.delivered(key, op, outcome, now) {
                applied.push(t);
            }
        }
        if applied.is_empty() {
            return Ok(0);
        }
        // The next calls go out before this commit: the answers are in the ledger (so nothing is
        // sent twice), and a crash before the commit only means those creates are looked up.
        self.start_deliveries(now)?;
        self.pending_answers.extend(applied.iter().map(|(t, _)| t.clone()));
        if self.pending_answers.len() >= ANSWER_BATCH {
            self.flush_answers(now)?;
        }
        for (t, title) in &applied {
            self.log_delivery(t, title);
        }
        Ok(applied.len())
    }

    /// Applies one PSA answer to the ledger; the transition to commit, with the ticket's title.
    fn delivered(
        &mut self,
        key: TicketKey,
        op: &'static str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Option<(Transition, String)> {
        let title = match self.ledger.get(&key).map(|e| &e.state) {
            Some(TicketState::Planned { draft }) => draft.title.clone(),
            _ => String::new(),
        };
        let transition = match outcome {
            Outcome::Created(ticket, recovered) => {
                self.shared.psa_answered(op, Ok(()));
                self.uncertain.remove(&key);
                if recovered {
                    self.shared.metrics.ticket_recovered();
                } else {
                    self.shared.metrics.ticket_created();
                }
                Transition::Opened { key: key.clone(), ticket }
            }
            Outcome::StaleNotFound => {
                self.shared.psa_answered(op, Ok(()));
                self.uncertain.remove(&key);
                self.shared.metrics.skip("stale");
                info!(key = %key, "planned ticket dropped: its event outlived its lifetime before the PSA could be reached");
                Transition::Dropped { key: key.clone(), reason: "stale".to_owned() }
            }
            Outcome::Refused(reason) => {
                self.uncertain.remove(&key);
                self.shared.psa_answered(op, Err(PortErrorKind::Invalid));
                self.shared.metrics.ticket_failed("invalid");
                error!(key = %key, reason = %reason, "the PSA refused the ticket; kept as failed (fix the rule, then `msp-ticketd ledger retry`)");
                Transition::Abandoned { key: key.clone(), reason }
            }
            Outcome::Closed => {
                self.shared.psa_answered(op, Ok(()));
                self.shared.metrics.ticket_closed();
                Transition::Closed { key: key.clone() }
            }
            Outcome::Noted => {
                self.shared.psa_answered(op, Ok(()));
                self.uncertain_notes.remove(&key);
                Transition::NoteAdded { key: key.clone() }
            }
            Outcome::NoteRefused(reason) => {
                self.shared.psa_answered(op, Err(PortErrorKind::Invalid));
                self.uncertain_notes.remove(&key);
                error!(key = %key, reason = %reason, "the PSA refused the close note; the ticket is closed without it");
                Transition::NoteAdded { key: key.clone() }
            }
            Outcome::RecurrenceNoted(marker) => {
                self.shared.psa_answered(op, Ok(()));
                self.uncertain_notes.remove(&key);
                Transition::RecurrenceNoted { key: key.clone(), marker }
            }
            Outcome::Updated => {
                self.shared.psa_answered(op, Ok(()));
                self.uncertain_notes.remove(&key);
                self.shared.metrics.ticket_updated();
                Transition::Updated { key: key.clone() }
            }
            Outcome::UpdateRefused(reason) => {
                self.shared.psa_answered(op, Err(PortErrorKind::Invalid));
                self.uncertain_notes.remove(&key);
                warn!(key = %key, reason = %reason, "the PSA refused the ticket update; a refused reopen makes a new ticket next time");
                Transition::UpdateRefused { key: key.clone(), reason }
            }
            Outcome::NotLeading => {
                // Counted where it was refused; the entry stays pending for whoever leads now.
                info!(key = %key, op, "PSA call not sent: this instance's leader lease may have run out");
                return None;
            }
            Outcome::Failed(e) => {
                self.shared.psa_answered(op, Err(e.kind));
                let ticket = self.ledger.get(&key).and_then(LedgerEntry::ticket).map(|t| t.id.to_string());
                warn!(key = %key, ticket = ticket.as_deref().unwrap_or("-"), op, error = %e, "PSA call failed; will retry");
                if e.is_retryable() || e.kind == PortErrorKind::Auth || e.kind == PortErrorKind::Other {
                    // One step per round of calls: answers of calls that were already in flight
                    // when the PSA started failing do not raise the wait again (with several
                    // deliveries in flight they would reach the cap at once, and delivery would
                    // resume minutes after the PSA recovered).
                    if now >= self.psa_not_before {
                        self.psa_failures += 1;
                    }
                    let mut wait = delivery_backoff(self.psa_failures);
                    if let Some(after) = e.retry_after {
                        wait = wait.max(chrono::Duration::from_std(after).unwrap_or(wait));
                    }
                    self.psa_not_before = self.psa_not_before.max(now + wait);
                }
                return None;
            }
        };
        self.psa_failures = 0;
        if let Err(e) = self.ledger.apply(&transition, now) {
            error!(error = %e, "PSA answer does not fit the ledger");
            return None;
        }
        Some((transition, title))
    }

    fn log_delivery(&self, transition: &Transition, title: &str) {
        let Some(entry) = self.ledger.get(transition.key()) else { return };
        let tenant = entry.key.tenant();
        let Some(ticket) = entry.ticket().cloned() else { return };
        let number = ticket.number.clone().unwrap_or_else(|| format!("id {}", ticket.id));
        match transition {
            Transition::Opened { .. } => {
                info!(tenant = %tenant, key = %entry.key, idempotency_key = %entry.idempotency_key, ticket = %number, title, "ticket created");
                self.notice(Notice::Created { key: entry.key.clone(), ticket, title: title.to_owned() });
            }
            Transition::Closed { .. } => {
                info!(tenant = %tenant, key = %entry.key, ticket = %number, "ticket closed");
                self.notice(Notice::Closed { key: entry.key.clone(), ticket });
            }
            Transition::Updated { .. } => {
                info!(tenant = %tenant, key = %entry.key, ticket = %number, "ticket updated (reopened, or its priority raised)");
            }
            _ => {}
        }
    }

    /// Notices tickets a technician closed: an open ticket whose PSA status is the closed
    /// status (or that the PSA no longer has) is marked closed by a technician, so it is not
    /// re-created while its condition persists. One batched PSA question per pass, in the
    /// background.
    fn start_sync(&mut self) {
        let Some(closed) = self.ctx.as_ref().and_then(Context::closed_status) else { return };
        // Only condition tickets matter: an event ticket is never re-created anyway.
        let open: BTreeMap<PsaId, TicketKey> = self
            .ledger
            .entries()
            .filter(|e| !matches!(e.key, TicketKey::Event { .. }))
            .filter_map(|e| match &e.state {
                TicketState::Open { ticket } => Some((ticket.id, e.key.clone())),
                _ => None,
            })
            .collect();
        if open.is_empty() {
            self.sync_due = Utc::now() + secs(self.polling.ticket_sync_secs);
            return;
        }
        self.syncing = true;
        let sink = self.sink.clone();
        let timeout = self.psa_timeout;
        self.tasks.spawn(async move {
            let ids: Vec<PsaId> = open.keys().copied().collect();
            let result = tokio::time::timeout(timeout, sink.reader().closed_among(&ids, closed))
                .await
                .unwrap_or_else(|_| Err(timed_out("reading tickets", timeout)));
            Done::Synced { open, result }
        });
    }

    fn synced(
        &mut self,
        open: &BTreeMap<PsaId, TicketKey>,
        result: Result<Vec<PsaId>, PortError>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.count_psa("closed_among", &result);
        let closed_ids = match result {
            Ok(ids) => ids,
            Err(e) => {
                warn!(error = %e, "cannot read tickets for technician closes; trying later");
                return Ok(());
            }
        };
        for id in closed_ids {
            let Some(key) = open.get(&id) else { continue };
            let t = Transition::ClosedByTechnician { key: key.clone() };
            if self.ledger.apply(&t, now).is_ok() {
                self.commit(std::slice::from_ref(&t), &[], None, now)?;
                self.shared.metrics.ticket_closed_by_technician(1);
                info!(key = %key, ticket = %id, "ticket closed by a technician; not re-created while its condition persists");
            }
        }
        Ok(())
    }
}
