//! What a read becomes: events and status snapshots handed to the core's decisions, their
//! transitions staged for the journal and their decisions for the audit.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Builds the audit's records of one snapshot's conditions (the computer's name and the row
/// are looked up in the snapshot, once a record needs them).
pub(super) struct ConditionAudit<'a> {
    pub(super) snapshot: &'a ticketing_core::model::StatusSnapshot,
    pub(super) devices: std::cell::OnceCell<HashMap<&'a str, &'a ticketing_core::model::DeviceStatus>>,
    pub(super) now: DateTime<Utc>,
    pub(super) revision: u64,
}

impl<'a> ConditionAudit<'a> {
    pub(super) fn new(snapshot: &'a ticketing_core::model::StatusSnapshot, now: DateTime<Utc>, revision: u64) -> Self {
        Self { snapshot, devices: std::cell::OnceCell::new(), now, revision }
    }

    pub(super) fn device(&self, key: &TicketKey) -> Option<&'a ticketing_core::model::DeviceStatus> {
        let TicketKey::Status { device, .. } = key else { return None };
        let devices =
            self.devices.get_or_init(|| self.snapshot.devices.iter().map(|d| (d.device.id.as_str(), d)).collect());
        devices.get(device.as_str()).copied()
    }

    /// The rule row a condition falls under (its level as the snapshot reports it).
    pub(super) fn row(&self, key: &TicketKey) -> Option<RowId> {
        let TicketKey::Status { description, .. } = key else { return None };
        let level = self.device(key)?.active.iter().find(|a| &a.description == description)?.level;
        Some(RowId::Status(self.snapshot.product, level, description.clone()))
    }

    pub(super) fn record(
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

/// Applies a decision's `transitions` to the ledger in order and answers those that fit (to be
/// staged: the journal holds exactly what the ledger applied). A decision's transitions are
/// made to fit together (a storm's two); a misfit is a bug, logged, and stops the rest.
pub(super) fn apply_each(ledger: &mut Ledger, transitions: Vec<Transition>, now: DateTime<Utc>) -> Vec<Transition> {
    let mut applied = Vec::with_capacity(transitions.len());
    for t in transitions {
        if let Err(e) = ledger.apply(&t, now) {
            error!(error = %e, "decision does not fit the ledger");
            break;
        }
        applied.push(t);
    }
    applied
}

impl Engine {
    /// The core's decision for each event, applied to the ledger: the transitions to commit,
    /// the audit's records, and what was skipped. `replay`: events decided before (held while
    /// their tenant was unmapped), so they are not counted as seen again, and a skip that
    /// changes nothing (already ticketed, still unmapped) is not recorded again.
    #[allow(clippy::type_complexity)]
    pub(super) fn decide_events(
        &mut self,
        events: &[ticketing_core::model::Event],
        now: DateTime<Utc>,
        replay: bool,
    ) -> (Vec<Transition>, Vec<crate::store::Decision>, Vec<(TicketKey, SkipReason)>) {
        let ctx = self.ctx.as_ref().expect("decisions run only with a context");
        let mut transitions = Vec::new();
        let mut skipped = Vec::new();
        let mut decisions = Vec::with_capacity(events.len());
        let psa = self.shared.presentation.with(|p| p.psa_name);
        let names = crate::audit::Names { psa, accounts: &self.accounts };
        for event in events {
            if !replay {
                self.shared.metrics.event_seen(event.product.code(), 1);
            }
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
                // Alert storms: the event goes to its row's storm ticket (joins it or opens it);
                // the problem's entry and the storm's change commit together.
                EventDecision::Storm(st) => {
                    let ts = apply_each(&mut self.ledger, st.transitions(), now);
                    if ts.is_empty() {
                        continue;
                    }
                    let n = self
                        .ledger
                        .get(&st.storm)
                        .and_then(ticketing_core::storm::storm_of_entry)
                        .map_or(0, |s| s.problems);
                    let words = format!(
                        "not ticketed on its own: added to the storm ticket of its rule ({n}{} problem of the storm); listed in the ticket's next note",
                        ticketing_core::decide::ordinal_suffix(n)
                    );
                    let mut d = decided(&st.key, crate::store::Outcome::Stormed, None, words);
                    d.key = st.storm.canonical();
                    decisions.push(d);
                    transitions.extend(ts);
                }
                EventDecision::OpenStorm(open) => {
                    let ts = apply_each(&mut self.ledger, open.transitions(), now);
                    if ts.is_empty() {
                        continue;
                    }
                    let words = if open.outbreak {
                        "not ticketed on its own: a virus outbreak; opened the storm ticket of its rule".to_owned()
                    } else {
                        "not ticketed on its own: its rule reached the storm threshold; opened the storm ticket of its rule (1st problem of the storm)".to_owned()
                    };
                    let mut d = decided(&open.member, crate::store::Outcome::Stormed, None, words);
                    d.key = open.create.key.canonical();
                    decisions.push(d);
                    transitions.extend(ts);
                }
                // A replay of held events: only what it changes is recorded.
                EventDecision::Skip { reason: SkipReason::AlreadyTicketed | SkipReason::TenantUnmapped, .. }
                    if replay => {}
                EventDecision::Skip { key, reason } => {
                    let row = RowId::Event(event.product, event.class);
                    let words = crate::audit::explain(&reason, Some(&row), &event.tenant, names);
                    decisions.push(decided(&key, crate::store::Outcome::Skipped, Some(&reason), words));
                    skipped.push((key, reason));
                }
            }
        }
        (transitions, decisions, skipped)
    }

    pub(super) fn handle_events(
        &mut self,
        source: &str,
        tenant: &TenantId,
        batch: EventBatch,
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let (transitions, decisions, skipped) = self.decide_events(&batch.events, now, false);
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

    pub(super) fn handle_snapshot(
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
            let ts = apply_each(&mut self.ledger, action.transitions(), now);
            if ts.is_empty() {
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
                Action::Storm(st) => {
                    let mut d = audit.record(
                        &st.key,
                        crate::store::Outcome::Stormed,
                        None,
                        "not ticketed on its own: added to the storm ticket of its rule; listed in the ticket's next note"
                            .to_owned(),
                    );
                    d.key = st.storm.canonical();
                    decisions.push(d);
                }
                Action::OpenStorm(open) => {
                    let mut d = audit.record(
                        &open.member,
                        crate::store::Outcome::Stormed,
                        None,
                        "not ticketed on its own: its rule reached the storm threshold; opened the storm ticket of its rule"
                            .to_owned(),
                    );
                    d.key = open.create.key.canonical();
                    decisions.push(d);
                }
                _ => {}
            }
            transitions.extend(ts);
        }
        // A condition's reason not to ticket is recorded when it changes (snapshots repeat it).
        let psa = self.shared.presentation.with(|p| p.psa_name);
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
}
