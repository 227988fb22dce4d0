//! The outbox beyond the first create: lifetime re-checked at the PSA call, due time counted from
//! the create, close notes as outbox work, refused creates re-planned, and a lost ledger rebuilt
//! from the PSA's own tickets.

mod support;

use chrono::Duration;
use proptest::prelude::*;
use support::*;
use ticketing_core::decide::{Action, EventDecision, decide_event, reconcile, replan};
use ticketing_core::ledger::{Ledger, Recovery, TicketState, Transition};
use ticketing_core::model::*;
use ticketing_core::ports::OwnedTicket;
use ticketing_core::rules::RuleSet;
use ticketing_core::ticket::{IdempotencyKey, TicketKey, TicketRef};

fn planned_event(age: Duration) -> (Ledger, TicketKey, ticketing_core::ticket::TicketDraft) {
    let rules = all_on();
    let e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), age);
    let mut ledger = Ledger::new();
    let EventDecision::Create(c) = decide_event(&e, &ctx(&rules), &ledger, now()) else { panic!("create") };
    ledger.apply(&c.transition(), now()).unwrap();
    (ledger, c.key, c.draft)
}

#[test]
fn a_create_sent_after_the_lifetime_is_stale_and_due_counts_from_the_send() {
    // Decided fresh (1 h old, lifetime 1 day): sent 22 h later it still qualifies, and its due
    // time is 12 h after the send, not after the first sight.
    let (_, _, draft) = planned_event(Duration::hours(1));
    let send = now() + Duration::hours(22);
    assert!(!draft.is_expired(send));
    assert_eq!(draft.at(send).due, send + Duration::hours(12));
    // At 23 h after the decision the event is 24 h old: stale, never created.
    assert!(draft.is_expired(now() + Duration::hours(23)));
    assert!(!draft.is_expired(now() + Duration::hours(23) - Duration::seconds(1)));
}

#[test]
fn a_dropped_create_leaves_the_outbox_and_is_not_ticketed_again() {
    let (mut ledger, key, _) = planned_event(Duration::hours(1));
    assert_eq!(ledger.pending_len(), 1);
    ledger.apply(&Transition::Dropped { key: key.clone(), reason: "stale".into() }, now()).unwrap();
    assert_eq!(ledger.pending_len(), 0);
    assert_eq!(ledger.get(&key).unwrap().state.name(), "dropped");
    assert_eq!(ledger.next_generation(&key), None, "an event is handled once");
}

#[test]
fn status_drafts_have_no_lifetime() {
    let snap = snapshot(vec![device_status("d1", &[("databases_out_of_date", StatusLevel::Warning)])]);
    let rec = reconcile(&snap, &ctx(&all_on()), &Ledger::new(), now());
    let Action::Create(c) = &rec.actions[0] else { panic!() };
    assert_eq!(c.draft.expires_at, None);
    assert!(!c.draft.is_expired(now() + Duration::days(3650)));
    assert_eq!(c.draft.at(now() + Duration::hours(5)).due, now() + Duration::hours(5 + 24));
}

#[test]
fn a_close_note_is_outbox_work_until_it_lands() {
    let snap = snapshot(vec![device_status("d1", &[("databases_out_of_date", StatusLevel::Warning)])]);
    let rules = all_on();
    let mut ledger = Ledger::new();
    let rec = reconcile(&snap, &ctx(&rules), &ledger, now());
    let key = rec.actions[0].transition().key().clone();
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    ledger
        .apply(&Transition::Opened { key: key.clone(), ticket: TicketRef { id: PsaId(7), number: None } }, now())
        .unwrap();
    let rec = reconcile(&snapshot(vec![device_status("d1", &[])]), &ctx(&rules), &ledger, now());
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    ledger.apply(&Transition::Closed { key: key.clone() }, now()).unwrap();
    assert_eq!(ledger.recovery(), vec![Recovery::AddNote(key.clone())]);
    let TicketState::Closed { note: Some(note), .. } = &ledger.get(&key).unwrap().state else { panic!() };
    assert!(note.marker.ends_with("/close") && note.marker.starts_with("kmsp-"));
    // While the note waits, the condition returning plans nothing (the entry holds the work).
    let again = snapshot(vec![device_status("d1", &[("databases_out_of_date", StatusLevel::Warning)])]);
    assert!(reconcile(&again, &ctx(&rules), &ledger, now()).actions.is_empty());
    ledger.apply(&Transition::NoteAdded { key: key.clone() }, now()).unwrap();
    assert!(ledger.recovery().is_empty());
    assert_eq!(reconcile(&again, &ctx(&rules), &ledger, now()).actions.len(), 1);
}

#[test]
fn a_refused_create_keeps_its_draft_and_replans_with_the_fixed_rule() {
    let (mut ledger, key, draft) = planned_event(Duration::hours(1));
    ledger.apply(&Transition::Abandoned { key: key.clone(), reason: "issueType invalid".into() }, now()).unwrap();
    let TicketState::Failed { draft: Some(kept), .. } = &ledger.get(&key).unwrap().state else { panic!() };
    assert_eq!(**kept, draft);
    // The operator changes the row's due time; the re-planned draft takes it, keeps its key.
    let mut rules: RuleSet = all_on();
    let row = draft.row.clone().unwrap();
    rules.rows.get_mut(&row).unwrap().due_hours = 3;
    let later = now() + Duration::hours(2);
    let fixed = replan(kept, key.tenant(), &ctx(&rules), later).unwrap();
    assert_eq!(fixed.due, later + Duration::hours(3));
    assert_eq!(fixed.idempotency_key, draft.idempotency_key);
    assert_eq!(fixed.title, draft.title);
    ledger.apply(&Transition::Retry { key: key.clone(), draft: fixed }, later).unwrap();
    assert_eq!(ledger.recovery(), vec![Recovery::LookUpThenCreate(key)]);
}

fn owned(key: &TicketKey, generation: u32, id: i64, open: bool, description: String) -> OwnedTicket {
    OwnedTicket {
        ticket: TicketRef { id: PsaId(id), number: None },
        idempotency_key: key.idempotency_key(generation),
        description,
        open,
    }
}

#[test]
fn a_lost_ledger_is_rebuilt_from_the_tickets_key_lines() {
    let (_, key, draft) = planned_event(Duration::hours(1));
    let fresh = Ledger::new();
    let listing = vec![owned(&key, 1, 500, true, draft.description)];
    let (adopt, unreadable) = fresh.adoptions(&listing);
    assert_eq!(unreadable, 0);
    assert_eq!(adopt.len(), 1);
    let mut ledger = fresh;
    ledger.apply(&adopt[0], now()).unwrap();
    assert_eq!(ledger.get(&key).unwrap().state.name(), "open");
    // The same event read again is already ticketed.
    let e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::hours(1));
    assert!(matches!(decide_event(&e, &ctx(&all_on()), &ledger, now()), EventDecision::Skip { .. }));
    // A second rebuild changes nothing.
    assert!(ledger.adoptions(&listing).0.is_empty());
}

#[test]
fn a_planned_create_the_psa_already_has_is_adopted_not_created() {
    let (ledger, key, draft) = planned_event(Duration::hours(1));
    let (adopt, _) = ledger.adoptions(&[owned(&key, 1, 9, true, draft.description)]);
    let mut ledger = ledger;
    ledger.apply(&adopt[0], now()).unwrap();
    assert!(ledger.recovery().is_empty());
}

#[test]
fn foreign_or_edited_key_lines_are_not_trusted() {
    let (_, key, draft) = planned_event(Duration::hours(1));
    let other = TicketKey::Issue { tenant: "t".into(), event_type: Office365EventType::ALL[0] };
    // The line names another key than the idempotency key's hash.
    let forged =
        OwnedTicket { idempotency_key: other.idempotency_key(1), ..owned(&key, 1, 1, true, draft.description) };
    let (adopt, unreadable) = Ledger::new().adoptions(&[forged]);
    assert!(adopt.is_empty());
    assert_eq!(unreadable, 1);
}

#[test]
fn a_closed_listed_ticket_blocks_a_persisting_condition_until_it_clears() {
    let snap = snapshot(vec![device_status("d1", &[("databases_out_of_date", StatusLevel::Warning)])]);
    let rules = all_on();
    let rec = reconcile(&snap, &ctx(&rules), &Ledger::new(), now());
    let Action::Create(c) = &rec.actions[0] else { panic!() };
    let mut ledger = Ledger::new();
    let (adopt, _) = ledger.adoptions(&[owned(&c.key, 1, 3, false, c.draft.description.clone())]);
    ledger.apply(&adopt[0], now()).unwrap();
    assert!(reconcile(&snap, &ctx(&rules), &ledger, now()).actions.is_empty());
    // Once it clears and returns, generation 2 (a new idempotency key, never the closed one's).
    let gone = reconcile(&snapshot(vec![device_status("d1", &[])]), &ctx(&rules), &ledger, now());
    for a in &gone.actions {
        ledger.apply(&a.transition(), now()).unwrap();
    }
    let back = reconcile(&snap, &ctx(&rules), &ledger, now());
    let Action::Create(c2) = &back.actions[0] else { panic!() };
    assert_eq!(c2.generation, 2);
}

/// Ids as the sources make them. (An id containing `|` makes the canonical spelling itself
/// ambiguous, `a|b` + `c` against `a` + `b|c`, so no reader could tell them apart.)
fn arb_id() -> impl Strategy<Value = String> {
    "[a-z:/ 0-9.-]{1,12}"
}

proptest! {
    /// Every key spelling reads back from its key line.
    #[test]
    fn key_lines_read_back(tenant in arb_id(), device in arb_id(), generation in 1u32..9, kind in 0..3u8) {
        let key = match kind {
            0 => TicketKey::Status {
                product: Product::EndpointCloud,
                tenant: TenantId::new(tenant),
                device: DeviceId::new(device),
                description: StatusDescription::known_from_code("databases_out_of_date").unwrap(),
            },
            1 => TicketKey::Event { product: Product::SecurityCenter, tenant: TenantId::new(tenant), source_id: SourceEventId::new(device) },
            _ => TicketKey::Issue { tenant: TenantId::new(tenant), event_type: Office365EventType::ALL[1] },
        };
        let description = format!("text\nmore text\n\n{}", key.key_line());
        let idem: IdempotencyKey = key.idempotency_key(generation);
        prop_assert_eq!(TicketKey::from_description(&description, &idem), Some((key, generation)));
    }

    /// The outbox index always equals a scan of the ledger.
    #[test]
    fn the_outbox_index_matches_a_scan(steps in proptest::collection::vec(0u8..9, 1..40)) {
        let mut rules = all_on();
        // Recurrence notes are outbox work too (steps 6 to 8: the same event again).
        rules.rows.get_mut(&sev(Product::SecurityCenter, Severity::Critical)).unwrap().recurrence_hours = Some(2);
        let mut ledger = Ledger::new();
        let mut id = 0;
        for (i, step) in steps.iter().enumerate() {
            if *step >= 6 {
                let mut e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::minutes(5));
                e.source_id = SourceEventId::new(format!("e{i}"));
                for t in decide_event(&e, &ctx(&rules), &ledger, now()).transitions() {
                    ledger.apply(&t, now()).unwrap();
                }
            }
            let active: &[(&str, StatusLevel)] = if step % 2 == 0 { &[("databases_out_of_date", StatusLevel::Warning)] } else { &[] };
            let rec = reconcile(&snapshot(vec![device_status("d1", active)]), &ctx(&rules), &ledger, now());
            for a in &rec.actions {
                ledger.apply(&a.transition(), now()).unwrap();
            }
            let work = ledger.recovery();
            if let Some(w) = work.first() {
                let key = w.key().clone();
                id += 1;
                let t = match (w, i % 3) {
                    (Recovery::LookUpThenCreate(_), 0) => Transition::Abandoned { key, reason: "x".into() },
                    (Recovery::LookUpThenCreate(_), _) => Transition::Opened { key, ticket: TicketRef { id: PsaId(id), number: None } },
                    (Recovery::RetryClose(_), _) => Transition::Closed { key },
                    (Recovery::AddNote(_), _) => Transition::NoteAdded { key },
                    (Recovery::Update(_), _) => Transition::Updated { key },
                    (Recovery::AddRecurrenceNote(_), _) => {
                        let marker = ledger.get(&key).and_then(|e| e.recurrence_note()).unwrap().marker.clone();
                        Transition::RecurrenceNoted { key, marker }
                    }
                };
                ledger.apply(&t, now()).unwrap();
            }
            let scan: Vec<Recovery> = ledger.entries().filter_map(|e| e.pending()).collect();
            let mut index = ledger.recovery();
            index.sort_by(|a, b| a.key().cmp(b.key()));
            prop_assert_eq!(index, scan);
        }
    }
}
