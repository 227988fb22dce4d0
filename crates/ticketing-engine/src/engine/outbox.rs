//! The outbox: which PSA call each pending ledger entry waits for, the calls as tasks through the
//! lease guard, and what each answer does to the ledger (with the delivery backoff).

#[allow(clippy::wildcard_imports)]
use super::plan::{Delivery, NoteKind, OutboxPlan, OutboxView, plan_deliveries};
use super::*;

/// How long PSA deliveries wait after `failures` rounds of failed calls in a row: 1 s, doubling,
/// at most 60 s (the core's policy, without jitter: one engine, one queue), so once the PSA is
/// well again delivery resumes within one step.
pub(super) fn delivery_backoff(failures: u32) -> chrono::Duration {
    const DELIVERY: ticketing_core::retry::RetryPolicy = ticketing_core::retry::RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(3600),
    };
    chrono::Duration::from_std(DELIVERY.backoff(failures, 1.0)).unwrap_or(chrono::Duration::seconds(60))
}

/// The wait before the next catalog refresh or ledger rebuild after `failures` failed PSA
/// calls in a row (the core's `RetryPolicy` without jitter, as for source reads: 2 s, 4 s, …
/// up to `cap_secs`).
pub(super) fn backoff(failures: u32, cap_secs: u64) -> chrono::Duration {
    chrono::Duration::from_std(super::schedule::failed_read_backoff(failures, Duration::from_secs(cap_secs)))
        .unwrap_or(chrono::Duration::seconds(60))
}

/// The delivery task of a note: never sent once the lease may have moved on, and looked up
/// first (`look_up`) when an earlier attempt may have landed.
#[allow(clippy::too_many_arguments)]
pub(super) fn note_task(
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

pub(super) fn timed_out(what: &str, after: Duration) -> PortError {
    PortError::new(PortErrorKind::Transient, format!("{what} timed out after {} s", after.as_secs()))
}

/// The task of one planned call: through the lease guard (a write is never sent once the lease
/// may have moved on), bounded by `timeout`, its answer as an [`Outcome`].
pub(super) fn delivery_task(delivery: Delivery, sink: Arc<LeasedSink>, timeout: Duration) -> Task {
    match delivery {
        Delivery::Create { key, draft, look_up, expired } => Box::pin(async move {
            let call = async {
                if look_up {
                    match sink.reader().find_ticket(&draft.idempotency_key).await {
                        Ok(Some(t)) => return ("find", Outcome::Created(t, true)),
                        Ok(None) if expired => return ("find", Outcome::StaleNotFound),
                        Ok(None) => {}
                        Err(e) => return ("find", Outcome::Failed(e)),
                    }
                }
                // A create is never sent by an instance whose lease may have run out (paused,
                // partitioned): the new leader may be creating it already.
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
            Done::Delivered { key, op, outcome }
        }),
        Delivery::Close { key, ticket, status } => Box::pin(async move {
            // Never sent once the lease may have moved on: the new leader may have reopened the
            // ticket meanwhile.
            let Some(writer) = sink.writer("close") else {
                return Done::Delivered { key, op: "close", outcome: Outcome::NotLeading };
            };
            let outcome = match tokio::time::timeout(timeout, writer.close_ticket(&ticket, status)).await {
                Ok(Ok(())) => Outcome::Closed,
                // The ticket is gone from the PSA: nothing is left open.
                Ok(Err(e)) if e.kind == PortErrorKind::NotFound => Outcome::Closed,
                Ok(Err(e)) => Outcome::Failed(e),
                Err(_) => Outcome::Failed(timed_out("close", timeout)),
            };
            Done::Delivered { key, op: "close", outcome }
        }),
        Delivery::Note { key, ticket, note, kind, look_up } => {
            note_task(sink, key, ticket, note, kind, look_up, timeout)
        }
        Delivery::Update { key, ticket, update, note, look_up } => Box::pin(async move {
            // Like a note: never sent once the lease may have moved on.
            let Some(writer) = sink.writer("update") else {
                return Done::Delivered { key, op: "update", outcome: Outcome::NotLeading };
            };
            // The update sets absolute values (idempotent), so a retry sends it again; the note
            // after it is looked up first when an earlier one may have landed.
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
            Done::Delivered { key, op: "update", outcome }
        }),
    }
}

impl Engine {
    /// Starts the PSA calls the ledger waits for, most urgent first, while fewer than
    /// `deliver_concurrency` are in flight. A planned create whose event outlived its lifetime is
    /// dropped as stale instead (after a lookup, when an earlier attempt may have reached the
    /// PSA); a create is sent with its due time counted from now.
    pub(super) fn start_deliveries(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        // Only the leader delivers (a standby's catalog refresh also ends in the engine's loop).
        if self.epoch.is_none() || now < self.psa_not_before || !self.rebuilt {
            return Ok(());
        }
        let free = self.polling.deliver_concurrency.max(1).saturating_sub(self.delivering.len());
        let view = OutboxView {
            in_flight: &self.delivering,
            staged: &self.staged.keys,
            uncertain: &self.uncertain,
            uncertain_notes: &self.uncertain_notes,
            look_up_every_create: self.look_up_every_create,
            free,
            budget: self.budget.as_ref().map(|probe| {
                let b = probe();
                super::plan::BudgetLeft { remaining: b.effective.saturating_sub(b.used), limit: b.effective }
            }),
        };
        let OutboxPlan { calls: planned, stale, waiting_for_budget } = plan_deliveries(&self.ledger, view, now);
        if waiting_for_budget != self.budget_waiting {
            if waiting_for_budget > 0 {
                info!(
                    waiting = waiting_for_budget,
                    "the PSA request budget is short: notes and updates wait, Critical work first"
                );
            }
            self.budget_waiting = waiting_for_budget;
        }
        let timeout = self.psa_timeout;
        for delivery in planned {
            let key = delivery.key().clone();
            // From here on the call may reach the PSA: until its answer is applied, a create or
            // note counts as uncertain (looked up before it is tried again, also after a crash).
            match &delivery {
                Delivery::Create { .. } => {
                    self.uncertain.insert(key.clone());
                }
                Delivery::Note { .. } | Delivery::Update { .. } => {
                    self.uncertain_notes.insert(key.clone());
                }
                Delivery::Close { .. } => {}
            }
            let task = delivery_task(delivery, self.sink.clone(), timeout);
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
    pub(super) fn deliver_answers(
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
    pub(super) fn delivered(
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

    pub(super) fn log_delivery(&self, transition: &Transition, title: &str) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step per round of failed calls, doubling from 1 s, never more than 60 s: once the PSA
    /// is well again, delivery resumes within one step (it was up to 300 s, and the step rose per
    /// failed answer, so a handful of concurrent failures reached it at once).
    #[test]
    fn the_delivery_backoff_doubles_per_round_up_to_a_minute() {
        let steps: Vec<i64> = (1..=9).map(|n| delivery_backoff(n).num_seconds()).collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delivery_backoff(u32::MAX).num_seconds(), 60);
    }
}
