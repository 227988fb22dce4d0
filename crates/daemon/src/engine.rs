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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, error, info, warn};

use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Context, EventDecision, SkipReason, decide_event, reconcile};
use ticketing_core::edit::RuleBook;
use ticketing_core::ledger::{Ledger, LedgerEntry, Recovery, TicketState, Transition};
use ticketing_core::model::{PsaId, Tenant, TenantId};
use ticketing_core::ports::{Account, EventBatch, EventSource, PortError, PortErrorKind, StatusSource, TicketSink};
use ticketing_core::ticket::{TicketKey, TicketRef};

use crate::config::{MappingEntry, PollingConfig};
use crate::metrics::Metrics;
use crate::store::{Commit, CursorKey, Store, StoreError};

/// An event source with the stable name its cursors are stored under.
#[derive(Clone)]
pub struct NamedEventSource {
    /// Stable name, e.g. `ksc:main/events`.
    pub name: String,
    /// The source.
    pub source: Arc<dyn EventSource>,
}

/// A status source with a stable name.
#[derive(Clone)]
pub struct NamedStatusSource {
    /// Stable name, e.g. `kbh/endpoint_cloud/statuses`.
    pub name: String,
    /// The source.
    pub source: Arc<dyn StatusSource>,
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
    /// The last catalog read from the PSA.
    pub catalog: RwLock<Option<Catalog>>,
    /// The last accounts read from the PSA.
    pub accounts: RwLock<Vec<Account>>,
    /// The mapping as resolved.
    pub mapping: RwLock<Vec<MappedTenant>>,
    /// Counters.
    pub metrics: Metrics,
}

impl Shared {
    /// Shared state over a store and the rules found in it.
    pub fn new(store: Arc<dyn Store>, rules: RuleBook) -> Arc<Self> {
        Arc::new(Self {
            store,
            rules: Mutex::new(rules),
            rules_version: AtomicU64::new(0),
            catalog: RwLock::new(None),
            accounts: RwLock::new(Vec::new()),
            mapping: RwLock::new(Vec::new()),
            metrics: Metrics::default(),
        })
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

    /// The resolved mapping.
    pub fn mapping(&self) -> Vec<MappedTenant> {
        self.mapping.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Reads the PSA request budget (used, limit) from the backend, for metrics.
pub type BudgetProbe = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Everything that can go wrong in a tick that the engine cannot absorb.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    Events(usize),
    Statuses(usize),
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

/// The engine. Drive it with [`Engine::run`], or tick by tick with [`Engine::tick`].
pub struct Engine {
    shared: Arc<Shared>,
    sink: Arc<dyn TicketSink>,
    event_sources: Vec<NamedEventSource>,
    status_sources: Vec<NamedStatusSource>,
    mapping: Vec<MappingEntry>,
    polling: PollingConfig,
    ledger: Ledger,
    ctx: Option<Context>,
    catalog: Option<Catalog>,
    accounts: Vec<Account>,
    ctx_rules_version: u64,
    refresh_due: DateTime<Utc>,
    sync_due: DateTime<Utc>,
    tenants: HashMap<Job, Vec<Tenant>>,
    due: HashMap<(Job, TenantId), DateTime<Utc>>,
    failures: HashMap<(Job, TenantId), u32>,
    uncertain: HashSet<TicketKey>,
    condition_skips: HashMap<(ticketing_core::model::Product, TenantId), BTreeMap<String, u64>>,
    psa_not_before: DateTime<Utc>,
    psa_failures: u32,
    notices: Option<UnboundedSender<Notice>>,
    budget: Option<BudgetProbe>,
}

fn secs(n: u64) -> chrono::Duration {
    chrono::Duration::seconds(n as i64)
}

fn backoff(failures: u32, cap_secs: u64) -> chrono::Duration {
    let s = 1u64.checked_shl(failures.min(16)).unwrap_or(u64::MAX).min(cap_secs.max(1));
    secs(s)
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
        // Every create that was planned before a restart may or may not have reached the PSA.
        let uncertain = ledger
            .recovery()
            .into_iter()
            .filter_map(|r| match r {
                Recovery::LookUpThenCreate(k) => Some(k),
                Recovery::RetryClose(_) => None,
            })
            .collect();
        let epoch = DateTime::<Utc>::MIN_UTC;
        Ok(Self {
            shared,
            sink,
            event_sources,
            status_sources,
            mapping,
            polling,
            ledger,
            ctx: None,
            catalog: None,
            accounts: Vec::new(),
            ctx_rules_version: 0,
            refresh_due: epoch,
            sync_due: epoch,
            tenants: HashMap::new(),
            due: HashMap::new(),
            failures: HashMap::new(),
            uncertain,
            condition_skips: HashMap::new(),
            psa_not_before: epoch,
            psa_failures: 0,
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

    /// The in-memory ledger (mirrors the store).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Runs until `shutdown` resolves, ticking every `every`. The tick in progress finishes
    /// (every transition is durable as it happens, so stopping between ticks loses nothing).
    pub async fn run(
        mut self,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        loop {
            self.tick().await?;
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        info!(outbox = self.outbox_len(), "engine stopped; pending PSA work stays in the store's outbox");
        Ok(())
    }

    fn outbox_len(&self) -> usize {
        self.ledger
            .entries()
            .filter(|e| matches!(e.state, TicketState::Planned { .. } | TicketState::Closing { .. }))
            .count()
    }

    fn notice(&self, n: Notice) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(n);
        }
    }

    /// One pass: refresh the PSA context when due, poll every due tenant, deliver pending PSA
    /// work (Critical first), and check open tickets for technician closes when due.
    pub async fn tick(&mut self) -> Result<TickReport, EngineError> {
        let now = Utc::now();
        let mut report = TickReport::default();
        let rules_version = self.shared.rules_version.load(Ordering::SeqCst);
        if self.ctx.is_none() || now >= self.refresh_due {
            self.refresh(now).await;
        } else if rules_version != self.ctx_rules_version {
            self.rebuild_context(rules_version);
        }
        report.ready = self.ctx.is_some();
        if self.ctx.is_some() {
            self.poll(now, &mut report).await?;
            if self.polling.ticket_sync_secs > 0 && now >= self.sync_due {
                self.sync_technician_closes(now).await?;
                self.sync_due = now + secs(self.polling.ticket_sync_secs);
            }
        }
        report.transitions += self.deliver().await?;
        report.outbox = self.outbox_len();
        self.shared.metrics.outbox.store(report.outbox as u64, Ordering::Relaxed);
        if let Some(probe) = &self.budget {
            let (used, limit) = probe();
            self.shared.metrics.budget_used.store(used, Ordering::Relaxed);
            self.shared.metrics.budget_limit.store(limit, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// Reads catalog, accounts and tenant lists; rebuilds the decision context.
    async fn refresh(&mut self, now: DateTime<Utc>) {
        let catalog = self.sink.catalog().await;
        self.count_psa("catalog", &catalog);
        let accounts = self.sink.accounts().await;
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
        let mut listings = Vec::new();
        for (i, s) in self.event_sources.iter().enumerate() {
            listings.push((Job::Events(i), s.name.clone(), s.source.tenants().await));
        }
        for (i, s) in self.status_sources.iter().enumerate() {
            listings.push((Job::Statuses(i), s.name.clone(), s.source.tenants().await));
        }
        for (job, name, listed) in listings {
            match listed {
                Ok(t) => {
                    self.tenants.insert(job, t);
                }
                Err(e) => {
                    self.shared.metrics.source_error(&name);
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

    fn rebuild_context(&mut self, rules_version: u64) {
        let Some(catalog) = &self.catalog else { return };
        let mut mapped = Vec::new();
        let mut pairs = Vec::new();
        let names: BTreeMap<String, String> =
            self.tenants.values().flatten().map(|t| (t.id.to_string(), t.name.clone())).collect();
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
            if let Some(p) = &problem {
                warn!(tenant = %m.tenant, problem = %p, "mapping");
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
        let errors = saved.validate(catalog);
        for e in &errors {
            warn!(problem = %e, "saved rules do not resolve against the PSA catalog; affected rows skip with rule_invalid");
        }
        self.ctx = Some(Context::new(&saved, catalog, pairs, self.accounts.iter().cloned()));
        self.ctx_rules_version = rules_version;
    }

    fn count_psa<T>(&self, op: &str, r: &Result<T, PortError>) {
        let outcome = match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{:?}", e.kind).to_lowercase(),
        };
        self.shared.metrics.psa_call(op, &outcome);
    }

    /// Polls every due tenant. Reads run concurrently (a slow or failing tenant delays no one:
    /// each read has a timeout); results are then decided and committed one by one.
    async fn poll(&mut self, now: DateTime<Utc>, report: &mut TickReport) -> Result<(), EngineError> {
        let mut jobs: Vec<(Job, Tenant)> = Vec::new();
        for (job, tenants) in &self.tenants {
            for t in tenants {
                if self.due.get(&(*job, t.id.clone())).is_none_or(|d| now >= *d) {
                    jobs.push((*job, t.clone()));
                }
            }
        }
        jobs.sort_by(|a, b| (matches!(a.0, Job::Events(_)), &a.1.id).cmp(&(matches!(b.0, Job::Events(_)), &b.1.id)));
        enum Fetched {
            Events(Result<EventBatch, PortError>),
            Snapshot(Result<ticketing_core::model::StatusSnapshot, PortError>),
        }
        let timeout = Duration::from_secs(120);
        let limit = self.polling.batch_size;
        let mut fetches = Vec::new();
        for (job, tenant) in jobs {
            let fut: std::pin::Pin<Box<dyn std::future::Future<Output = Fetched> + Send>> = match job {
                Job::Events(i) => {
                    let src = self.event_sources[i].clone();
                    let ck = CursorKey { source: src.name.clone(), tenant: tenant.id.clone() };
                    let cursor = self.shared.store.cursor(&ck)?;
                    let tid = tenant.id.clone();
                    Box::pin(async move {
                        let r =
                            tokio::time::timeout(timeout, src.source.poll_events(&tid, cursor.as_ref(), limit)).await;
                        Fetched::Events(
                            r.unwrap_or_else(|_| Err(PortError::new(PortErrorKind::Transient, "timed out"))),
                        )
                    })
                }
                Job::Statuses(i) => {
                    let src = self.status_sources[i].clone();
                    let tid = tenant.id.clone();
                    Box::pin(async move {
                        let r = tokio::time::timeout(timeout, src.source.snapshot(&tid)).await;
                        Fetched::Snapshot(
                            r.unwrap_or_else(|_| Err(PortError::new(PortErrorKind::Transient, "timed out"))),
                        )
                    })
                }
            };
            fetches.push(async move { (job, tenant, fut.await) });
        }
        let results: Vec<(Job, Tenant, Fetched)> = futures::stream::iter(fetches).buffer_unordered(4).collect().await;
        let mut results = results;
        results.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        for (job, tenant, fetched) in results {
            let key = (job, tenant.id.clone());
            let (name, interval) = match job {
                Job::Events(i) => (self.event_sources[i].name.clone(), self.polling.events_secs),
                Job::Statuses(i) => (self.status_sources[i].name.clone(), self.polling.statuses_secs),
            };
            let outcome = match fetched {
                Fetched::Events(Ok(batch)) => {
                    report.events += batch.events.len();
                    let more = batch.more;
                    let n = self.handle_events(&name, &tenant.id, batch, now)?;
                    report.transitions += n;
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
                    self.failures.remove(&key);
                    let next = if more { now } else { now + secs(interval) };
                    self.due.insert(key, next);
                }
                Err(e) => {
                    self.shared.metrics.source_error(&name);
                    let n = self.failures.entry(key.clone()).or_default();
                    *n += 1;
                    let wait = backoff(*n, interval);
                    warn!(source = %name, tenant = %tenant.id, error = %e, retry_in_secs = wait.num_seconds(), "source read failed");
                    self.due.insert(key, now + wait);
                }
            }
        }
        Ok(())
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
        let entries: Vec<Option<LedgerEntry>> = transitions.iter().map(|t| self.ledger.get(t.key()).cloned()).collect();
        let pairs = transitions.iter().zip(entries.iter()).map(|(t, e)| (t, e.as_ref())).collect();
        let result = self.shared.store.commit(&Commit { transitions: pairs, events, cursor, at: Some(now) });
        if let Err(e) = result {
            error!(error = %e, "store commit failed; reloading the ledger from the store");
            self.ledger = self.shared.store.load_ledger()?;
            return Err(e.into());
        }
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
        for event in &batch.events {
            self.shared.metrics.event_seen(event.product.code(), 1);
            match decide_event(event, ctx, &self.ledger, now) {
                EventDecision::Create(c) => {
                    let t = c.transition();
                    if let Err(e) = self.ledger.apply(&t, now) {
                        error!(error = %e, "decision does not fit the ledger");
                        continue;
                    }
                    transitions.push(t);
                }
                EventDecision::Skip { key, reason } => skipped.push((key, reason)),
            }
        }
        for m in &batch.malformed {
            self.shared.metrics.malformed(source, 1);
            warn!(source, tenant = %tenant, record = %m.id, reason = %m.reason, "malformed record skipped");
        }
        let ck = CursorKey { source: source.to_owned(), tenant: tenant.clone() };
        self.commit(&transitions, &batch.events, Some((&ck, &batch.next)), now)?;
        for (key, reason) in skipped {
            self.shared.metrics.skip(reason.label());
            debug!(tenant = %tenant, key = %key, reason = %reason, "event not ticketed");
            self.notice(Notice::Skipped { key, reason });
        }
        Ok(transitions.len())
    }

    fn handle_snapshot(
        &mut self,
        snapshot: &ticketing_core::model::StatusSnapshot,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let ctx = self.ctx.as_ref().expect("poll runs only with a context");
        self.shared.metrics.unknown_descriptions.store(snapshot.unknown_descriptions, Ordering::Relaxed);
        let rec = reconcile(snapshot, ctx, &self.ledger, now);
        let mut transitions = Vec::new();
        for action in &rec.actions {
            let t = action.transition();
            if let Err(e) = self.ledger.apply(&t, now) {
                error!(error = %e, "reconciliation does not fit the ledger");
                continue;
            }
            if let Action::Close(c) = action {
                debug!(key = %c.key, "close planned");
            }
            transitions.push(t);
        }
        self.commit(&transitions, &[], None, now)?;
        // Conditions are re-reported by every snapshot, so they are a gauge per tenant, not a
        // counter (events, which come once, are counted in `msp_skips_total`).
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for (key, reason) in &rec.skipped {
            *reasons.entry(reason.label().to_owned()).or_default() += 1;
            debug!(key = %key, reason = %reason, "condition not ticketed");
        }
        self.condition_skips.insert((snapshot.product, snapshot.tenant.clone()), reasons);
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for (reason, n) in self.condition_skips.values().flatten() {
            *totals.entry(reason.clone()).or_default() += n;
        }
        self.shared.metrics.set_conditions_not_ticketed(totals);
        Ok(transitions.len())
    }

    /// Makes the PSA calls the ledger is waiting for, most urgent first, a few at a time. Each
    /// answer is committed as its own transition.
    async fn deliver(&mut self) -> Result<usize, EngineError> {
        let now = Utc::now();
        if now < self.psa_not_before {
            return Ok(0);
        }
        let work: Vec<Recovery> = self.ledger.recovery().into_iter().take(500).collect();
        if work.is_empty() {
            return Ok(0);
        }
        enum Outcome {
            Created(TicketRef, bool),
            Refused(String),
            Closed,
            Failed(PortError),
        }
        let mut calls = Vec::new();
        let mut titles: HashMap<TicketKey, String> = HashMap::new();
        // Creates that reached the point of calling the PSA. One that started and got no answer
        // recorded (the batch was cut short) is uncertain: looked up before the next create.
        let started: Arc<Mutex<HashSet<TicketKey>>> = Arc::default();
        for item in work {
            let sink = self.sink.clone();
            match item {
                Recovery::LookUpThenCreate(key) => {
                    let Some(entry) = self.ledger.get(&key) else { continue };
                    let TicketState::Planned { draft } = &entry.state else { continue };
                    let draft = draft.clone();
                    titles.insert(key.clone(), draft.title.clone());
                    let look_up = self.uncertain.contains(&key);
                    let started = started.clone();
                    calls.push(Box::pin(async move {
                        started.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.clone());
                        if look_up {
                            match sink.find_ticket(&draft.idempotency_key).await {
                                Ok(Some(t)) => return (key, "find", Outcome::Created(t, true)),
                                Ok(None) => {}
                                Err(e) => return (key, "find", Outcome::Failed(e)),
                            }
                        }
                        match sink.create_ticket(&draft).await {
                            Ok(t) => (key, "create", Outcome::Created(t, false)),
                            Err(e) if e.kind == PortErrorKind::Invalid => (key, "create", Outcome::Refused(e.message)),
                            Err(e) => (key, "create", Outcome::Failed(e)),
                        }
                    })
                        as std::pin::Pin<
                            Box<dyn std::future::Future<Output = (TicketKey, &'static str, Outcome)> + Send>,
                        >);
                }
                Recovery::RetryClose(key) => {
                    let Some(entry) = self.ledger.get(&key) else { continue };
                    let TicketState::Closing { ticket, status, note } = &entry.state else { continue };
                    let (ticket, status, note) = (ticket.clone(), *status, note.clone());
                    calls.push(Box::pin(async move {
                        match sink.close_ticket(&ticket, status, &note).await {
                            Ok(()) => (key, "close", Outcome::Closed),
                            // The ticket is gone from the PSA: nothing is left open.
                            Err(e) if e.kind == PortErrorKind::NotFound => (key, "close", Outcome::Closed),
                            Err(e) => (key, "close", Outcome::Failed(e)),
                        }
                    }));
                }
            }
        }
        let conc = self.polling.deliver_concurrency.max(1);
        let mut stream = futures::stream::iter(calls).buffered(conc);
        let mut applied = 0;
        let mut throttled: Option<PortError> = None;
        let mut answered: HashSet<TicketKey> = HashSet::new();
        while let Some((key, op, outcome)) = stream.next().await {
            let now = Utc::now();
            answered.insert(key.clone());
            let transition = match outcome {
                Outcome::Created(ticket, recovered) => {
                    self.shared.metrics.psa_call(op, "ok");
                    self.uncertain.remove(&key);
                    if recovered {
                        self.shared.metrics.tickets_recovered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.shared.metrics.tickets_created.fetch_add(1, Ordering::Relaxed);
                    }
                    Transition::Opened { key: key.clone(), ticket }
                }
                Outcome::Refused(reason) => {
                    self.uncertain.remove(&key);
                    self.shared.metrics.psa_call(op, "invalid");
                    error!(key = %key, reason = %reason, "the PSA refused the ticket; giving it up (see the ledger)");
                    Transition::Abandoned { key: key.clone(), reason }
                }
                Outcome::Closed => {
                    self.shared.metrics.psa_call(op, "ok");
                    self.shared.metrics.tickets_closed.fetch_add(1, Ordering::Relaxed);
                    Transition::Closed { key: key.clone() }
                }
                Outcome::Failed(e) => {
                    if op != "close" {
                        // The create MAY have happened: look the key up before trying again.
                        self.uncertain.insert(key.clone());
                    }
                    self.shared.metrics.psa_call(op, &format!("{:?}", e.kind).to_lowercase());
                    warn!(key = %key, op, error = %e, "PSA call failed; will retry");
                    if e.is_retryable() || e.kind == PortErrorKind::Auth || e.kind == PortErrorKind::Other {
                        throttled = Some(e);
                        break;
                    }
                    continue;
                }
            };
            if let Err(e) = self.ledger.apply(&transition, now) {
                error!(error = %e, "PSA answer does not fit the ledger");
                continue;
            }
            self.commit(std::slice::from_ref(&transition), &[], None, now)?;
            applied += 1;
            self.log_delivery(&transition, titles.get(&key).map(String::as_str).unwrap_or_default());
        }
        drop(stream);
        for key in started.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain() {
            if !answered.contains(&key) {
                self.uncertain.insert(key);
            }
        }
        match throttled {
            Some(e) => {
                self.psa_failures += 1;
                let mut wait = backoff(self.psa_failures, 300);
                if let Some(after) = e.retry_after {
                    wait = wait.max(chrono::Duration::from_std(after).unwrap_or(wait));
                }
                self.psa_not_before = Utc::now() + wait;
            }
            None => self.psa_failures = 0,
        }
        Ok(applied)
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
            _ => {}
        }
    }

    /// Notices tickets a technician closed: an open ticket whose PSA status is the closed
    /// status (or that the PSA no longer has) is marked closed by a technician, so it is not
    /// re-created while its condition persists. One batched PSA question per pass.
    async fn sync_technician_closes(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        let Some(closed) = self.ctx.as_ref().and_then(Context::closed_status) else { return Ok(()) };
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
            return Ok(());
        }
        let ids: Vec<PsaId> = open.keys().copied().collect();
        let r = self.sink.closed_among(&ids, closed).await;
        self.count_psa("closed_among", &r);
        let closed_ids = match r {
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
                self.shared.metrics.tickets_closed_by_technician.fetch_add(1, Ordering::Relaxed);
                info!(key = %key, ticket = %id, "ticket closed by a technician; not re-created while its condition persists");
            }
        }
        Ok(())
    }
}
