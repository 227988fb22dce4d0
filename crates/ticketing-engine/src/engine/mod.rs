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
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
use crate::published::cell;
pub use crate::published::{Publisher, View};
pub use crate::rules::RuleState;
use crate::settings::{HaConfig, MappingEntry, PollingConfig};
use crate::store::{Commit, CursorKey, Store, StoreError};

mod decide;
mod journal;
mod lease;
mod mapping;
mod outbox;
pub mod plan;
mod reads;
pub mod schedule;
mod storms;

use journal::*;
use lease::*;
use outbox::*;
use schedule::{ReadOutcome, ReadSchedule};

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
    /// Where its mapping comes from (none: unmapped).
    pub source: Option<ticketing_core::mapping::MappingSource>,
}

/// How the PSA names itself and its fields, and whether `/metrics` is guarded: what the
/// configuration says and a reload may change. Its one writer is whoever runs the
/// configuration (the daemon's reloader); the engine and the admin surface read it.
#[derive(Debug, Clone, Copy)]
pub struct Presentation {
    /// How the PSA backend names the rule fields (the UI shows "Board" for ConnectWise).
    pub labels: crate::labels::Labels,
    /// The PSA's name as users say it ("Autotask", "ConnectWise"), for the audit's words.
    pub psa_name: &'static str,
    /// Whether `/metrics` needs the token from a loopback peer too (`admin.metrics_auth`).
    pub metrics_auth: bool,
}

impl Default for Presentation {
    fn default() -> Self {
        Self { labels: crate::labels::guide_label, psa_name: "Autotask", metrics_auth: true }
    }
}

/// State shared between the engine and an admin surface, as narrow handles: every piece has
/// one writer, and everyone else reads it through a [`View`] (or, for the rules, through the
/// methods of [`RuleState`], whose compare-and-swap write is the only way in).
///
/// | piece | its one writer |
/// |---|---|
/// | `rules` | [`RuleState`] (its `sync` and `update`, called by the engine and rule editors) |
/// | `catalog`, `accounts`, `mapping` | the engine's PSA refresh ([`EngineWriters`]) |
/// | `role` | the engine's lease ([`EngineWriters`]) |
/// | `presentation` | the configuration's owner ([`Writers::presentation`]) |
/// | `metrics`, `health` | counters and gauges, each recorded by what it counts |
pub struct Shared {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Saved and draft rules with their store revision. The engine applies `saved`.
    pub rules: RuleState,
    /// The last catalog read from the PSA.
    pub catalog: View<Option<Catalog>>,
    /// The last accounts read from the PSA.
    pub accounts: View<Vec<Account>>,
    /// The mapping as resolved.
    pub mapping: View<Vec<MappedTenant>>,
    /// Counters.
    pub metrics: Metrics,
    /// What the probes (`/healthz`, `/readyz`) and the UI's banners report.
    pub health: crate::health::Health,
    /// Leader or standby, once the engine has asked the store.
    pub role: View<Option<RoleInfo>>,
    /// The PSA's names and the `/metrics` guard.
    pub presentation: View<Presentation>,
}

/// The writers of what the engine publishes in [`Shared`]: handed to [`Engine::new`].
#[derive(Debug)]
pub struct EngineWriters {
    /// The catalog (the PSA refresh).
    pub catalog: Publisher<Option<Catalog>>,
    /// The accounts (the PSA refresh).
    pub accounts: Publisher<Vec<Account>>,
    /// The resolved mapping (the PSA refresh).
    pub mapping: Publisher<Vec<MappedTenant>>,
    /// Leader or standby (the lease).
    pub role: Publisher<Option<RoleInfo>>,
}

/// Every writer of a new [`Shared`]: the engine's, and the configuration's.
#[derive(Debug)]
pub struct Writers {
    /// What the engine publishes.
    pub engine: EngineWriters,
    /// The PSA's names and the `/metrics` guard (the configuration's owner keeps it).
    pub presentation: Publisher<Presentation>,
}

impl Shared {
    /// Shared state over a store and the rules found in it, and the writers of its parts.
    pub fn new(store: Arc<dyn Store>, rules: RuleBook) -> (Arc<Self>, Writers) {
        // A store that cannot say starts this process behind: the first write syncs first.
        let revision = store.rules_revision().unwrap_or(0);
        let (catalog_w, catalog) = cell(None);
        let (accounts_w, accounts) = cell(Vec::new());
        let (mapping_w, mapping) = cell(Vec::new());
        let (role_w, role) = cell(None);
        let (presentation_w, presentation) = cell(Presentation::default());
        let shared = Arc::new(Self {
            store,
            rules: RuleState::new(rules, revision),
            catalog,
            accounts,
            mapping,
            metrics: Metrics::default(),
            health: crate::health::Health::default(),
            role,
            presentation,
        });
        let writers = Writers {
            engine: EngineWriters { catalog: catalog_w, accounts: accounts_w, mapping: mapping_w, role: role_w },
            presentation: presentation_w,
        };
        (shared, writers)
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

    /// Records a successful listing of a source's tenants that found none (metrics and health:
    /// the source is reached, just has no tenants yet).
    pub fn source_listed_no_tenants(&self, source: &str, relist_every: Duration, at: DateTime<Utc>) {
        self.metrics.source_success(source, at);
        self.health.source_listed_no_tenants(source, relist_every, at);
    }

    /// A copy of the rule book (draft and saved).
    pub fn rules(&self) -> RuleBook {
        self.rules.book()
    }

    /// The last catalog.
    pub fn catalog(&self) -> Option<Catalog> {
        self.catalog.get()
    }

    /// The last accounts.
    pub fn accounts(&self) -> Vec<Account> {
        self.accounts.get()
    }

    /// The PSA's names for the rule fields.
    pub fn labels(&self) -> crate::labels::Labels {
        self.presentation.with(|p| p.labels)
    }

    /// The resolved mapping.
    pub fn mapping(&self) -> Vec<MappedTenant> {
        self.mapping.get()
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
    /// The only writers of the catalog, accounts, mapping and role others see in `shared`.
    writers: EngineWriters,
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
    /// Which tenant of which source is read when (pure: `schedule.rs`).
    read_schedule: ReadSchedule<Job>,
    /// The mapping edited in the product, as last taken from the store, and its revision
    /// (`None`: not read yet).
    store_mapping: ticketing_core::mapping::MappingSet,
    mapping_revision: Option<u64>,
    /// The tenants mapped in the current context, and those whose held events wait to be
    /// decided again (`mapping.rs`).
    mapped_tenants: HashSet<TenantId>,
    release: HashSet<TenantId>,
    /// The directory last written to the store (without its time).
    directory_written: Option<crate::documents::Directory>,
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
    /// PSA calls the last delivery plan held back for the request budget.
    budget_waiting: usize,
}

fn secs_std(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn secs(n: u64) -> chrono::Duration {
    chrono::Duration::seconds(n as i64)
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

/// PSA answers committed together at most (see `Engine::flush_answers`).
const ANSWER_BATCH: usize = 256;

/// Reads staged together at most before their commit (see [`Staged`]).
const STAGE_BATCH: usize = 256;

impl Engine {
    /// An engine over a store (whose ledger it loads), a PSA sink and the sources.
    pub fn new(
        shared: Arc<Shared>,
        writers: EngineWriters,
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
        let sink = Arc::new(LeasedSink { sink, guard: lease_guard.clone(), shared: shared.clone() });
        Ok(Self {
            shared,
            writers,
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
            read_schedule: ReadSchedule::default(),
            store_mapping: ticketing_core::mapping::MappingSet::default(),
            mapping_revision: None,
            mapped_tenants: HashSet::new(),
            release: HashSet::new(),
            directory_written: None,
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
            budget_waiting: 0,
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
        self.sink = Arc::new(LeasedSink { sink: r.sink, guard: self.lease_guard.clone(), shared: self.shared.clone() });
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
        self.read_schedule.clear();
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
        // So does a mapping edited in the product.
        let mapping_changed = self.sync_mapping();
        let rules_version = self.shared.rules.version();
        if !self.refreshing && (self.ctx.is_none() || now >= self.refresh_due) {
            self.start_refresh();
        } else if self.ctx.is_some() && (rules_version != self.ctx_rules_version || mapping_changed) {
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
            self.release_held(now)?;
            self.storm_work(now)?;
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
        self.shared.metrics.set_storms_active(self.ledger.live_storms().count() as u64);
        if let Some(probe) = &self.budget {
            let mut b = probe();
            b.waiting = self.budget_waiting as u64;
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
}
