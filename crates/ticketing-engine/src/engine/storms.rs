//! Alert storms' timed work (issue #27): the core decides ([`ticketing_core::storm::due`]);
//! the engine commits what is due each pass, as the leader, before deliveries. A storm note is
//! then outbox work like a recurrence note (looked up by its marker after an unknown outcome).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Engine {
    /// Queues the storm notes that are due, finishes storms that are over and plans the close
    /// of a status storm whose problems all cleared: one commit, before the PSA is called.
    pub(super) fn storm_work(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.ledger.live_storms().next().is_none() {
            return Ok(());
        }
        let closed = self.ctx.as_ref().and_then(Context::closed_status);
        let work = ticketing_core::storm::due(&self.ledger, now, closed);
        if work.is_empty() {
            return Ok(());
        }
        let applied = decide::apply_each(&mut self.ledger, work, now);
        for t in &applied {
            match t {
                Transition::StormNoteQueued { key, .. } => debug!(key = %key, "storm note queued"),
                Transition::CloseRequested { key, .. } => {
                    info!(key = %key, "storm over, every problem cleared: closing its ticket")
                }
                Transition::StormFinished { key } => info!(key = %key, "storm over"),
                _ => {}
            }
        }
        self.commit(&applied, &[], None, now)
    }
}
