//! Read scheduling: catalog, accounts and tenant lists (refresh), the per-tenant read queue of
//! event polls and status snapshots, the ledger rebuild after a lost store, and the check for
//! tickets a technician closed.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    /// Reads catalog, accounts and tenant lists in the background.
    pub(super) fn start_refresh(&mut self) {
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
    pub(super) fn track_read(&mut self, read: tokio::task::AbortHandle) {
        self.reads.retain(|r| !r.is_finished());
        self.reads.push(read);
    }

    pub(super) fn refreshed(
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
                self.writers.catalog.publish(Some(catalog));
                self.writers.accounts.publish(accounts);
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
                    // Listing is a read: a source that answers with no tenants is reached (a
                    // fresh setup, a product not used yet), not failing.
                    if t.is_empty() {
                        let relist = Duration::from_secs(self.polling.catalog_secs.max(1));
                        self.shared.source_listed_no_tenants(&name, relist, now);
                    }
                    let ids: HashSet<&TenantId> = t.iter().map(|x| &x.id).collect();
                    self.listed.retain(|(j, id), _| *j != job || ids.contains(id));
                    for tenant in t {
                        let key = (job, tenant.id.clone());
                        // A tenant new to the list (or back on it) is queued: at once, or when it
                        // was due anyway.
                        if self.listed.insert(key.clone(), tenant).is_none() {
                            self.read_schedule.listed(key.0, key.1);
                        }
                    }
                }
                Err(e) => {
                    self.shared.source_failed(&name, &e.to_string());
                    warn!(source = %name, error = %e, "cannot list tenants; keeping the last list");
                }
            }
        }
        self.write_directory(now);
        let version = self.shared.rules.version();
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
    pub(super) fn start_rebuild(&mut self, now: DateTime<Utc>) {
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

    pub(super) fn rebuilt(
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
    pub(super) fn take_retry_requests(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
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

    pub(super) fn rebuild_context(&mut self, rules_version: u64) {
        let Some(catalog) = &self.catalog else { return };
        let mut mapped = Vec::new();
        let mut pairs = Vec::new();
        let names: BTreeMap<String, String> =
            self.listed.values().map(|t| (t.id.to_string(), t.name.clone())).collect();
        for (m, source) in self.mapping_entries() {
            let m = &m;
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
                source: Some(source),
            });
        }
        let mut unmapped = 0;
        // One lookup per listed tenant (10,000 tenants: not 10,000 scans of the mapping).
        let mapped_ids: HashSet<String> = mapped.iter().map(|m| m.tenant.clone()).collect();
        for (id, name) in &names {
            if !mapped_ids.contains(id) {
                unmapped += 1;
                mapped.push(MappedTenant {
                    tenant: id.clone(),
                    tenant_name: Some(name.clone()),
                    account_id: None,
                    account_name: None,
                    active: None,
                    problem: Some("not mapped: its events are held until it is".to_owned()),
                    source: None,
                });
            }
        }
        self.writers.mapping.publish(mapped);
        let mapped_tenants: HashSet<TenantId> = pairs.iter().map(|(t, _)| t.clone()).collect();
        let first = self.ctx.is_none();
        let saved = self.shared.rules.with(|b| b.saved.clone());
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
        self.ctx_revision = self.shared.rules.revision();
        self.mapped_now(mapped_tenants, unmapped, first);
    }

    pub(super) fn count_psa<T>(&self, op: &str, r: &Result<T, PortError>) {
        self.shared.psa_answered(op, r.as_ref().map(|_| ()).map_err(|e| e.kind));
    }

    /// Starts a read of every due tenant not already being read. Each read has its source's
    /// timeout; a slow or failing tenant delays no one.
    pub(super) fn start_polls(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        // At most `read_concurrency` reads per source at once: 10,000 tenants of one Security
        // Center are read a few at a time, not with 10,000 connections. Which ones is the
        // schedule's (pure) answer; it runs every tick and whenever a read finishes.
        let staged = &self.staged.reads;
        let listed = &self.listed;
        let jobs: Vec<(Job, Tenant)> = self
            .read_schedule
            .take_due(
                now,
                self.polling.read_concurrency,
                // Read, with its writes still staged: read again once they are committed.
                |job, id| staged.contains(&(job, id.clone())),
                |job, id| listed.contains_key(&(job, id.clone())),
            )
            .into_iter()
            .filter_map(|key| listed.get(&key).map(|tenant| (key.0, tenant.clone())))
            .collect();
        let limit = self.polling.batch_size;
        let generation = self.generation;
        for (job, tenant) in jobs {
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

    pub(super) fn fetched(
        &mut self,
        job: Job,
        tenant: Tenant,
        fetched: Fetched,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), EngineError> {
        let key = (job, tenant.id.clone());
        let (name, interval) = match job {
            Job::Events(i) => (self.event_sources[i].name.clone(), self.polling.events_secs),
            Job::Statuses(i) => (self.status_sources[i].name.clone(), self.polling.statuses_secs),
        };
        if self.ctx.is_none() {
            // Dropped unread: due again at once.
            self.read_schedule.finished(job, tenant.id, ReadOutcome::Read { more: true }, now, secs_std(interval));
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
                self.read_schedule.finished(key.0, key.1, ReadOutcome::Read { more }, now, secs_std(interval));
            }
            Err(e) => {
                self.shared.source_failed(&name, &e.to_string());
                let (_, wait) = self.read_schedule.finished(key.0, key.1, ReadOutcome::Failed, now, secs_std(interval));
                let retry_in_secs = wait.unwrap_or_default().as_secs();
                warn!(source = %name, tenant = %tenant.id, error = %e, retry_in_secs, "source read failed");
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

    /// Notices tickets a technician closed: an open ticket whose PSA status is the closed
    /// status (or that the PSA no longer has) is marked closed by a technician, so it is not
    /// re-created while its condition persists. One batched PSA question per pass, in the
    /// background.
    pub(super) fn start_sync(&mut self) {
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

    pub(super) fn synced(
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
