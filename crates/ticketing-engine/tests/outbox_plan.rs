//! The outbox's plan as a pure function: what is due, what waits (in flight, staged, no free
//! slot), what is looked up first, what is dropped as stale. No tokio, no store, no clock.

#[path = "../../ticketing-core/tests/support/mod.rs"]
mod support;

use std::collections::HashSet;

use chrono::Duration;
use support::*;
use ticketing_core::decide::{EventDecision, decide_event, reconcile};
use ticketing_core::ledger::{Ledger, Transition};
use ticketing_core::model::*;
use ticketing_core::ticket::{TicketKey, TicketRef};
use ticketing_engine::engine::plan::{BudgetLeft, BudgetTier, Delivery, NoteKind, OutboxView, plan_deliveries};

fn planned_event(age: Duration) -> (Ledger, TicketKey) {
    let rules = all_on();
    let e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), age);
    let mut ledger = Ledger::new();
    let EventDecision::Create(c) = decide_event(&e, &ctx(&rules), &ledger, now()) else { panic!("create") };
    ledger.apply(&c.transition(), now()).unwrap();
    (ledger, c.key)
}

struct Sets {
    in_flight: HashSet<TicketKey>,
    staged: HashSet<TicketKey>,
    uncertain: HashSet<TicketKey>,
    uncertain_notes: HashSet<TicketKey>,
}

impl Sets {
    fn none() -> Self {
        Self {
            in_flight: HashSet::new(),
            staged: HashSet::new(),
            uncertain: HashSet::new(),
            uncertain_notes: HashSet::new(),
        }
    }
    fn view(&self, free: usize) -> OutboxView<'_> {
        OutboxView {
            in_flight: &self.in_flight,
            staged: &self.staged,
            uncertain: &self.uncertain,
            uncertain_notes: &self.uncertain_notes,
            look_up_every_create: false,
            free,
            budget: None,
        }
    }
}

#[test]
fn a_planned_create_is_due_once_and_waits_while_in_flight_staged_or_without_a_slot() {
    let (ledger, key) = planned_event(Duration::hours(1));
    let sets = Sets::none();
    let plan = plan_deliveries(&ledger, sets.view(4), now());
    assert_eq!(plan.calls.len(), 1);
    let Delivery::Create { key: k, draft, look_up, expired } = &plan.calls[0] else { panic!("{plan:?}") };
    assert_eq!((k, *look_up, *expired), (&key, false, false));
    // The due time counts from the send.
    assert_eq!(draft.due, now() + Duration::hours(12));
    assert_eq!(plan.calls[0].op(), "create");

    assert!(plan_deliveries(&ledger, sets.view(0), now()).calls.is_empty(), "no free slot");
    let mut busy = Sets::none();
    busy.in_flight.insert(key.clone());
    assert!(plan_deliveries(&ledger, busy.view(4), now()).calls.is_empty(), "already in flight");
    let mut staged = Sets::none();
    staged.staged.insert(key);
    assert!(plan_deliveries(&ledger, staged.view(4), now()).calls.is_empty(), "plan not durable yet");
}

#[test]
fn an_uncertain_create_is_looked_up_first_and_an_expired_one_only_looked_up_or_dropped() {
    let (ledger, key) = planned_event(Duration::hours(1));
    let mut uncertain = Sets::none();
    uncertain.uncertain.insert(key.clone());
    let plan = plan_deliveries(&ledger, uncertain.view(4), now());
    assert!(matches!(&plan.calls[..], [Delivery::Create { look_up: true, expired: false, .. }]), "{plan:?}");

    // A day later the event outlived its lifetime: never sent blind; dropped unless an earlier
    // attempt may have landed, then only looked up.
    let later = now() + Duration::days(2);
    let plan = plan_deliveries(&ledger, Sets::none().view(4), later);
    assert!(plan.calls.is_empty());
    assert_eq!(plan.stale, vec![key]);
    let plan = plan_deliveries(&ledger, uncertain.view(4), later);
    assert!(plan.stale.is_empty());
    assert!(matches!(&plan.calls[..], [Delivery::Create { look_up: true, expired: true, .. }]), "{plan:?}");
}

#[test]
fn a_cleared_status_ticket_is_closed_then_noted() {
    let rules = all_on();
    let snap = snapshot(vec![device_status("d1", &[("databases_out_of_date", StatusLevel::Warning)])]);
    let mut ledger = Ledger::new();
    let rec = reconcile(&snap, &ctx(&rules), &ledger, now());
    let key = rec.actions[0].transition().key().clone();
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    ledger
        .apply(&Transition::Opened { key: key.clone(), ticket: TicketRef { id: PsaId(7), number: None } }, now())
        .unwrap();
    assert!(plan_deliveries(&ledger, Sets::none().view(4), now()).calls.is_empty(), "an open ticket waits for nothing");

    let rec = reconcile(&snapshot(vec![device_status("d1", &[])]), &ctx(&rules), &ledger, now());
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    let plan = plan_deliveries(&ledger, Sets::none().view(4), now());
    assert!(matches!(&plan.calls[..], [Delivery::Close { ticket, .. }] if ticket.id == PsaId(7)), "{plan:?}");

    ledger.apply(&Transition::Closed { key: key.clone() }, now()).unwrap();
    let mut noted = Sets::none();
    noted.uncertain_notes.insert(key);
    let plan = plan_deliveries(&ledger, noted.view(4), now());
    assert!(
        matches!(&plan.calls[..], [Delivery::Note { kind: NoteKind::Close, look_up: true, .. }]),
        "a note that may have landed is looked up first: {plan:?}"
    );
}

#[test]
fn at_most_free_calls_start_most_urgent_first() {
    let rules = all_on();
    let mut ledger = Ledger::new();
    for i in 0..5 {
        let mut e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::hours(1));
        e.source_id = SourceEventId::new(format!("e{i}"));
        let EventDecision::Create(c) = decide_event(&e, &ctx(&rules), &ledger, now()) else { panic!("create") };
        ledger.apply(&c.transition(), now()).unwrap();
    }
    let plan = plan_deliveries(&ledger, Sets::none().view(3), now());
    assert_eq!(plan.calls.len(), 3);
    let keys: HashSet<&TicketKey> = plan.calls.iter().map(Delivery::key).collect();
    assert_eq!(keys.len(), 3, "three different entries");
}

/// The budget share (issue #27): with a short budget notes and updates wait and creates go,
/// Critical first; nearly spent, only Critical work; spent, nothing. What waits is counted.
#[test]
fn a_short_budget_holds_notes_first_then_everything_but_critical() {
    assert_eq!(BudgetLeft { remaining: 500, limit: 1000 }.tier(), BudgetTier::All);
    assert_eq!(BudgetLeft { remaining: 99, limit: 1000 }.tier(), BudgetTier::Short);
    assert_eq!(BudgetLeft { remaining: 19, limit: 1000 }.tier(), BudgetTier::CriticalOnly);
    assert_eq!(BudgetLeft { remaining: 0, limit: 1000 }.tier(), BudgetTier::Spent);
    assert_eq!(BudgetLeft { remaining: 0, limit: 0 }.tier(), BudgetTier::All, "no limit known");
    // A Critical create, a Warning create and a close note (a cleared Warning status ticket).
    let rules = all_on();
    let (mut ledger, _) = planned_event(Duration::hours(1));
    let mut w = event(Product::SecurityCenter, EventClass::Severity(Severity::Warning), Duration::hours(1));
    w.source_id = SourceEventId::new("w-1");
    let EventDecision::Create(c) = decide_event(&w, &ctx(&rules), &ledger, now()) else { panic!("create") };
    ledger.apply(&c.transition(), now()).unwrap();
    let snap = snapshot(vec![device_status("d1", &[("databases_out_of_date", StatusLevel::Warning)])]);
    let rec = reconcile(&snap, &ctx(&rules), &ledger, now());
    let key = rec.actions[0].transition().key().clone();
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    ledger
        .apply(&Transition::Opened { key: key.clone(), ticket: TicketRef { id: PsaId(7), number: None } }, now())
        .unwrap();
    let rec = reconcile(&snapshot(vec![device_status("d1", &[])]), &ctx(&rules), &ledger, now());
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    ledger.apply(&Transition::Closed { key }, now()).unwrap();
    let sets = Sets::none();
    let with = |remaining: Option<u64>| {
        let mut v = sets.view(8);
        v.budget = remaining.map(|remaining| BudgetLeft { remaining, limit: 1000 });
        let plan = plan_deliveries(&ledger, v, now());
        let ops: Vec<&str> = plan.calls.iter().map(Delivery::op).collect();
        (ops.join(","), plan.waiting_for_budget)
    };
    assert_eq!(with(None), ("create,note,create".to_owned(), 0), "Critical first, then the ledger's order");
    assert_eq!(with(Some(500)), ("create,note,create".to_owned(), 0));
    assert_eq!(with(Some(99)), ("create,create".to_owned(), 1), "the note waits");
    assert_eq!(with(Some(19)), ("create".to_owned(), 2), "only the Critical create goes");
    assert_eq!(with(Some(0)), (String::new(), 3), "everything waits, nothing is dropped");
}
