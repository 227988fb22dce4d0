//! The HA lease: the only code that changes the epoch (`lead`, `become_leader`, `step_down`), and
//! the guard every PSA write goes through ([`LeasedSink`]): a writer only while the lease holds.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Until when (by this machine's clock) this instance may write to the PSA: shortly before its
/// lease would run out without a renewal. Checked by each delivery task right before it sends,
/// so an instance that was paused past its lease sends nothing when it wakes up.
#[derive(Debug, Default)]
pub(super) struct LeaseGuard(std::sync::atomic::AtomicI64);

/// The PSA sink as the engine holds it: reads through [`LeasedSink::reader`], and writes
/// (create, update, close, note) only through [`LeasedSink::writer`], which hands the sink out
/// only while the lease guard holds. So no write can skip the lease check: a paused ex-leader
/// that wakes after its lease ran out sends nothing (the new leader may have reopened or
/// created the ticket meanwhile); every refusal is counted by operation.
pub(super) struct LeasedSink {
    pub(super) sink: Arc<dyn TicketSink>,
    pub(super) guard: Arc<LeaseGuard>,
    pub(super) shared: Arc<Shared>,
}

/// The reading half of the PSA port (never changes anything in the PSA).
pub(super) struct Reader<'a>(pub(super) &'a dyn TicketSink);

/// The writing half of the PSA port, handed out only while the lease holds.
pub(super) struct Writer<'a>(pub(super) &'a dyn TicketSink);

impl LeasedSink {
    pub(super) fn reader(&self) -> Reader<'_> {
        Reader(self.sink.as_ref())
    }

    /// The writer while this instance may write to the PSA; `None` (counted as refused for
    /// `op`) once its lease may have run out.
    pub(super) fn writer(&self, op: &'static str) -> Option<Writer<'_>> {
        if self.guard.holds() {
            Some(Writer(self.sink.as_ref()))
        } else {
            self.shared.metrics.write_refused(op, "not_leading");
            None
        }
    }
}

impl Reader<'_> {
    pub(super) async fn catalog(&self) -> Result<Catalog, PortError> {
        self.0.catalog().await
    }
    pub(super) async fn accounts(&self) -> Result<Vec<Account>, PortError> {
        self.0.accounts().await
    }
    pub(super) async fn find_ticket(
        &self,
        key: &ticketing_core::ticket::IdempotencyKey,
    ) -> Result<Option<TicketRef>, PortError> {
        self.0.find_ticket(key).await
    }
    pub(super) async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: DateTime<Utc>,
    ) -> Result<Option<Vec<ticketing_core::ports::OwnedTicket>>, PortError> {
        self.0.owned_tickets(prefix, closed_since).await
    }
    pub(super) async fn closed_among(&self, ids: &[PsaId], closed: PsaId) -> Result<Vec<PsaId>, PortError> {
        self.0.closed_among(ids, closed).await
    }
}

impl Writer<'_> {
    pub(super) async fn create_ticket(
        &self,
        draft: &ticketing_core::ticket::TicketDraft,
    ) -> Result<TicketRef, PortError> {
        self.0.create_ticket(draft).await
    }
    pub(super) async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        self.0.close_ticket(ticket, status).await
    }
    pub(super) async fn update_ticket(
        &self,
        ticket: &TicketRef,
        update: &ticketing_core::ports::TicketUpdate,
    ) -> Result<(), PortError> {
        self.0.update_ticket(ticket, update).await
    }
    pub(super) async fn add_note(
        &self,
        ticket: &TicketRef,
        note: &ticketing_core::ticket::TicketNote,
        look_up_first: bool,
    ) -> Result<(), PortError> {
        self.0.add_note(ticket, note, look_up_first).await
    }
}

impl LeaseGuard {
    pub(super) fn set(&self, until: Option<DateTime<Utc>>) {
        self.0.store(until.map_or(i64::MIN, |t| t.timestamp_millis()), Ordering::SeqCst);
    }

    pub(super) fn holds(&self) -> bool {
        Utc::now().timestamp_millis() < self.0.load(Ordering::SeqCst)
    }
}

impl Engine {
    /// Takes, renews or loses the leader lease when due. Returns whether this instance leads.
    pub(super) fn lead(&mut self, now: DateTime<Utc>) -> bool {
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
    pub(super) fn become_leader(&mut self, epoch: u64) {
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
        self.read_schedule.restart(self.listed.keys());
        self.epoch = Some(epoch);
        self.psa_not_before = DateTime::<Utc>::MIN_UTC;
        info!(instance = %self.instance, epoch, outbox = self.ledger.pending_len(), "leading: polling sources and delivering to the PSA");
        self.publish_role();
    }

    /// Stops leading: every call in flight is abandoned as a crash would (its entry stays in
    /// the outbox; the next leader looks it up before anything is created again).
    pub(super) fn step_down(&mut self, why: &str) {
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
        self.read_schedule.abandon();
        self.refreshing = false;
        self.syncing = false;
        self.rebuilding = false;
        self.lease_due = DateTime::<Utc>::MIN_UTC;
        self.publish_role();
    }

    pub(super) fn publish_role(&self) {
        let info = RoleInfo {
            role: if self.epoch.is_some() { "leader" } else { "standby" },
            instance: self.instance.clone(),
            epoch: self.epoch,
        };
        self.shared.metrics.set_leader(&self.instance, self.epoch.is_some());
        self.shared.health.set_standby(self.epoch.is_none());
        self.writers.role.publish(Some(info));
    }
}
