//! How each [`Transition`] changes the ledger's entries (the state machine of `ledger`).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Ledger {
    pub(super) fn apply_inner(&mut self, transition: &Transition, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let key = transition.key();
        let current = self.get(key);
        let err = |name| LedgerError {
            key: key.canonical(),
            state: current.map_or("absent", |e| e.state.name()),
            transition: name,
        };
        let next_state = match (transition, current.map(|e| &e.state)) {
            (Transition::Plan { generation, draft, recurrence, storm, .. }, _) => {
                if self.next_generation(key) != Some(*generation) {
                    return Err(err("plan"));
                }
                let entry = LedgerEntry {
                    key: key.clone(),
                    generation: *generation,
                    idempotency_key: key.inline_idempotency_key(*generation),
                    urgency: draft.urgency,
                    state: TicketState::Planned { draft: Box::new(draft.clone()) },
                    updated_at: now,
                    reopens: 0,
                    recurrence: recurrence.clone(),
                    storm: storm.clone(),
                };
                self.entries.replace(Stored(Box::new(entry)));
                return Ok(());
            }
            (Transition::Opened { ticket, .. }, Some(TicketState::Planned { .. })) => {
                TicketState::Open { ticket: ticket.clone() }
            }
            (Transition::Opened { .. }, _) => return Err(err("opened")),
            (Transition::Abandoned { reason, .. }, Some(TicketState::Planned { draft })) => {
                TicketState::Failed { reason: reason.clone(), draft: Some(draft.clone()) }
            }
            (Transition::Abandoned { .. }, _) => return Err(err("abandoned")),
            (Transition::Dropped { reason, .. }, Some(TicketState::Planned { .. })) => {
                TicketState::Dropped { reason: reason.clone() }
            }
            (Transition::Dropped { .. }, _) => return Err(err("dropped")),
            (Transition::Retry { draft, .. }, Some(TicketState::Failed { .. })) => {
                TicketState::Planned { draft: Box::new(draft.clone()) }
            }
            (Transition::Retry { .. }, _) => return Err(err("retry")),
            (
                Transition::NoteAdded { .. },
                Some(TicketState::Closed { ticket, by, cleared, note: Some(_), closed_at }),
            ) => TicketState::Closed {
                ticket: ticket.clone(),
                by: *by,
                cleared: *cleared,
                note: None,
                closed_at: *closed_at,
            },
            (Transition::NoteAdded { .. }, _) => return Err(err("note_added")),
            (Transition::Adopted { generation, ticket, open, .. }, _) => {
                if !self.adoptable(key, *generation) {
                    return Err(err("adopted"));
                }
                let state = if *open {
                    TicketState::Open { ticket: ticket.clone() }
                } else {
                    // Closed by whom, the listing cannot say: take it as a technician's close, so
                    // a persisting condition is not ticketed again (nothing twice); once it
                    // clears, the next occurrence gets a new generation as usual.
                    TicketState::Closed {
                        ticket: Some(ticket.clone()),
                        by: ClosedBy::Technician,
                        cleared: false,
                        note: None,
                        closed_at: None,
                    }
                };
                let urgency = current.map_or(Urgency::Normal, |e| e.urgency);
                // The same generation's recurrence identity, count and queued notes stay: the
                // adopted ticket is the one they belong to.
                let recurrence = current.filter(|e| e.generation == *generation).and_then(|e| e.recurrence.clone());
                let entry = LedgerEntry {
                    key: key.clone(),
                    generation: *generation,
                    idempotency_key: key.inline_idempotency_key(*generation),
                    urgency,
                    state,
                    updated_at: now,
                    reopens: 0,
                    recurrence,
                    storm: current.filter(|e| e.generation == *generation).and_then(|e| e.storm.clone()),
                };
                self.entries.replace(Stored(Box::new(entry)));
                return Ok(());
            }
            (Transition::CloseRequested { status, note, .. }, Some(TicketState::Open { ticket })) => {
                TicketState::Closing { ticket: ticket.clone(), status: *status, note: note.clone() }
            }
            (Transition::CloseRequested { .. }, _) => return Err(err("close_requested")),
            (Transition::Closed { .. }, Some(TicketState::Closing { ticket, note, .. })) => {
                let note = current
                    .filter(|_| !note.trim().is_empty())
                    .map(|e| Box::new(TicketNote { marker: e.note_marker("close"), text: note.clone() }));
                TicketState::Closed {
                    ticket: Some(ticket.clone()),
                    by: ClosedBy::Integration,
                    cleared: true,
                    note,
                    closed_at: Some(now),
                }
            }
            (Transition::Closed { .. }, _) => return Err(err("closed")),
            (
                Transition::ClosedByTechnician { .. },
                Some(
                    TicketState::Open { ticket }
                    | TicketState::Closing { ticket, .. }
                    | TicketState::Updating { ticket, .. },
                ),
            ) => TicketState::Closed {
                ticket: Some(ticket.clone()),
                by: ClosedBy::Technician,
                cleared: false,
                note: None,
                closed_at: Some(now),
            },
            (Transition::ClosedByTechnician { .. }, _) => return Err(err("closed_by_technician")),
            (Transition::Cleared { .. }, Some(TicketState::Closed { ticket, by, note, closed_at, .. })) => {
                TicketState::Closed {
                    ticket: ticket.clone(),
                    by: *by,
                    cleared: true,
                    note: note.clone(),
                    closed_at: *closed_at,
                }
            }
            (Transition::Cleared { .. }, _) => return Err(err("cleared")),
            (Transition::Delayed { since, .. }, _) => {
                if !matches!(key, TicketKey::Status { .. }) || self.next_generation(key).is_none() {
                    return Err(err("delayed"));
                }
                let entry = match self.entries.take(key) {
                    Some(Stored(mut e)) => {
                        let previous =
                            std::mem::replace(&mut e.state, TicketState::Delayed { since: *since, previous: None });
                        e.state = TicketState::Delayed { since: *since, previous: Some(Box::new(previous)) };
                        e.updated_at = now;
                        e
                    }
                    None => Box::new(LedgerEntry {
                        key: key.clone(),
                        generation: 0,
                        idempotency_key: key.inline_idempotency_key(0),
                        urgency: Urgency::Normal,
                        state: TicketState::Delayed { since: *since, previous: None },
                        updated_at: now,
                        reopens: 0,
                        recurrence: None,
                        storm: None,
                    }),
                };
                self.entries.insert(Stored(entry));
                return Ok(());
            }
            (Transition::DelayCleared { .. }, Some(TicketState::Delayed { previous, .. })) => match previous {
                Some(previous) => (**previous).clone(),
                None => {
                    self.entries.remove(key);
                    return Ok(());
                }
            },
            (Transition::DelayCleared { .. }, _) => return Err(err("delay_cleared")),
            (Transition::UpdateRequested { update, note, reason, urgency, .. }, Some(state)) => {
                let ticket = match (reason, state) {
                    (UpdateReason::Severity, TicketState::Open { ticket }) => ticket.clone(),
                    (UpdateReason::Reopen, state) => match reopenable(state) {
                        Some((ticket, _)) => ticket.clone(),
                        None => return Err(err("update_requested")),
                    },
                    _ => return Err(err("update_requested")),
                };
                if let Some(Stored(mut e)) = self.entries.take(key) {
                    if *reason == UpdateReason::Reopen {
                        e.reopens = e.reopens.saturating_add(1);
                    }
                    e.urgency = *urgency;
                    e.state = TicketState::Updating {
                        ticket,
                        update: Box::new(update.clone()),
                        note: Box::new(note.clone()),
                        reason: *reason,
                    };
                    e.updated_at = now;
                    self.entries.insert(Stored(e));
                }
                return Ok(());
            }
            (Transition::UpdateRequested { .. }, None) => return Err(err("update_requested")),
            (Transition::Updated { .. }, Some(TicketState::Updating { ticket, .. })) => {
                TicketState::Open { ticket: ticket.clone() }
            }
            (Transition::Updated { .. }, _) => return Err(err("updated")),
            (Transition::UpdateRefused { .. }, Some(TicketState::Updating { ticket, reason, .. })) => match reason {
                UpdateReason::Severity => TicketState::Open { ticket: ticket.clone() },
                // No `closed_at`: not reopenable again, so the next pass creates a new ticket.
                UpdateReason::Reopen => TicketState::Closed {
                    ticket: Some(ticket.clone()),
                    by: ClosedBy::Integration,
                    cleared: true,
                    note: None,
                    closed_at: None,
                },
            },
            (Transition::UpdateRefused { .. }, _) => return Err(err("update_refused")),
            (Transition::Recurred { note, .. }, Some(TicketState::Planned { .. } | TicketState::Open { .. }))
                if current.and_then(LedgerEntry::next_recurrence_marker).as_deref() == Some(note.marker.as_str()) =>
            {
                if let Some(Stored(mut e)) = self.entries.take(key) {
                    if let Some(r) = e.recurrence.as_deref_mut() {
                        r.count = r.count.saturating_add(1);
                        r.notes.push(note.clone());
                    }
                    e.updated_at = now;
                    self.entries.insert(Stored(e));
                }
                return Ok(());
            }
            (Transition::Recurred { .. }, _) => return Err(err("recurred")),
            // A storm ticket's note leaves its queue the same way.
            (Transition::RecurrenceNoted { marker, .. }, Some(_))
                if current
                    .and_then(|e| crate::storm::storm_of_entry(e))
                    .and_then(|s| s.notes.first())
                    .map(|n| &n.marker)
                    == Some(marker) =>
            {
                self.with_storm(key, now, |s| {
                    s.notes.remove(0);
                });
                return Ok(());
            }
            (Transition::RecurrenceNoted { marker, .. }, Some(_))
                if current.and_then(|e| e.recurrence.as_deref()).and_then(|r| r.notes.first()).map(|n| &n.marker)
                    == Some(marker) =>
            {
                if let Some(Stored(mut e)) = self.entries.take(key) {
                    if let Some(r) = e.recurrence.as_deref_mut() {
                        r.notes.remove(0);
                    }
                    e.updated_at = now;
                    self.entries.insert(Stored(e));
                }
                return Ok(());
            }
            (Transition::RecurrenceNoted { .. }, _) => return Err(err("recurrence_noted")),
            (Transition::Stormed { storm, at, .. }, state) => {
                if self.next_generation(key).is_none() && !matches!(state, Some(TicketState::Delayed { .. })) {
                    return Err(err("stormed"));
                }
                let state = TicketState::Stormed { storm: storm.clone(), at: *at };
                let entry = match self.entries.take(key) {
                    Some(Stored(mut e)) => {
                        e.state = state;
                        e.updated_at = now;
                        e
                    }
                    None => Box::new(LedgerEntry {
                        key: key.clone(),
                        generation: 0,
                        idempotency_key: key.inline_idempotency_key(0),
                        urgency: Urgency::Normal,
                        state,
                        updated_at: now,
                        reopens: 0,
                        recurrence: None,
                        storm: None,
                    }),
                };
                self.entries.insert(Stored(entry));
                return Ok(());
            }
            (Transition::StormCleared { .. }, Some(TicketState::Stormed { .. })) => TicketState::Closed {
                ticket: None,
                by: ClosedBy::Integration,
                cleared: true,
                note: None,
                closed_at: Some(now),
            },
            (Transition::StormCleared { .. }, _) => return Err(err("storm_cleared")),
            (Transition::StormGrew { item, .. }, Some(_))
                if current.and_then(crate::storm::storm_of_entry).is_some() =>
            {
                self.with_storm(key, now, |s| {
                    match item.change {
                        StormChange::Added => {
                            s.problems = s.problems.saturating_add(1);
                            if let Some(d) = &item.device {
                                if !s.devices.contains(d) {
                                    s.devices.insert(d.clone());
                                }
                            }
                            s.last_at = s.last_at.max(item.at);
                            s.started_at = s.started_at.min(item.at);
                            if s.row.is_status() {
                                s.open_members = s.open_members.saturating_add(1);
                            }
                        }
                        StormChange::Cleared => {
                            s.open_members = s.open_members.saturating_sub(1);
                            s.cleared = s.cleared.saturating_add(1);
                        }
                    }
                    s.pending.push(item.clone());
                });
                return Ok(());
            }
            (Transition::StormGrew { .. }, _) => return Err(err("storm_grew")),
            (Transition::StormNoteQueued { note, at, .. }, Some(_))
                if current.and_then(crate::storm::storm_of_entry).is_some_and(|s| {
                    !s.pending.is_empty()
                        && note.marker
                            == format!(
                                "{}/storm/{}",
                                current.map_or_else(String::new, |e| e.idempotency_key.to_string()),
                                s.noted + 1
                            )
                }) =>
            {
                self.with_storm(key, now, |s| {
                    let n = crate::storm::note_batch(&s.pending);
                    s.pending.drain(..n);
                    s.notes.push(note.clone());
                    s.noted += 1;
                    s.last_note_at = *at;
                });
                return Ok(());
            }
            (Transition::StormNoteQueued { .. }, _) => return Err(err("storm_note_queued")),
            (Transition::StormFinished { .. }, Some(_))
                if current.and_then(crate::storm::storm_of_entry).is_some_and(|s| s.pending.is_empty()) =>
            {
                self.with_storm(key, now, |s| s.finished = true);
                return Ok(());
            }
            (Transition::StormFinished { .. }, _) => return Err(err("storm_finished")),
        };
        // A set has no `get_mut`: take the entry out and put it back (two lookups, no copy of the
        // entry itself, which stays in its box).
        if let Some(Stored(mut entry)) = self.entries.take(key) {
            entry.state = next_state;
            entry.updated_at = now;
            self.entries.insert(Stored(entry));
        }
        Ok(())
    }

    /// Changes a storm ticket's record in place.
    fn with_storm(&mut self, key: &TicketKey, now: DateTime<Utc>, f: impl FnOnce(&mut crate::storm::Storm)) {
        if let Some(Stored(mut e)) = self.entries.take(key) {
            if let Some(StormPart::Ticket(s)) = e.storm.as_deref_mut() {
                f(s);
            }
            e.updated_at = now;
            self.entries.insert(Stored(e));
        }
    }
}
