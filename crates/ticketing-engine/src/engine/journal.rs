//! The journal: the only writer of the ledger and the only caller of `Store::commit`. Reads are
//! staged and committed in groups; PSA answers are committed relaxed, in batches.

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) struct Staged {
    pub(super) transitions: Vec<Transition>,
    pub(super) events: Vec<ticketing_core::model::Event>,
    pub(super) cursors: Vec<(CursorKey, ticketing_core::ports::Cursor)>,
    pub(super) decisions: Vec<crate::store::Decision>,
    /// The keys of the staged transitions: nothing is sent for them until the commit.
    pub(super) keys: HashSet<TicketKey>,
    /// The reads whose results these are: not read again until the commit (and read again
    /// at once when it fails).
    pub(super) reads: HashSet<(Job, TenantId)>,
}

impl Staged {
    pub(super) fn is_empty(&self) -> bool {
        self.reads.is_empty()
            && self.transitions.is_empty()
            && self.events.is_empty()
            && self.cursors.is_empty()
            && self.decisions.is_empty()
    }
}

impl Engine {
    /// Commits the staged group (see [`Staged`]) with the pending answers, and starts what
    /// waited for it.
    pub(super) fn flush_staged(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.write(&[], &[], Vec::new(), &[], false, now)?;
        self.start_polls(now)?;
        self.start_deliveries(now)
    }

    /// Stages a read's writes for the group's commit (see [`Staged`]).
    pub(super) fn stage_read(
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
    pub(super) fn commit(
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
    pub(super) fn flush_answers(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.pending_answers.is_empty() {
            return Ok(());
        }
        self.write(&[], &[], Vec::new(), &[], true, now)
    }

    /// Writes one transaction: the pending PSA answers first, then the staged reads (see
    /// [`Staged`]), then `transitions` with the ledger entries they left. On a store failure
    /// the in-memory ledger is reloaded and the staged reads are undone (read again at once).
    pub(super) fn write(
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
                self.read_schedule.schedule(read.0, read.1, now);
            }
            self.ledger = self.shared.store.load_ledger()?;
            return Err(e.into());
        }
        self.shared.metrics.store_committed();
        Ok(())
    }
}
