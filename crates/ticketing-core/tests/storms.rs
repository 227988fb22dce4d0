//! Issue 27, alert storms: table tests of the pure decisions (below and at the threshold, the
//! storm's notes, a second storm after the window, two tenants at once, a status problem that
//! clears during a storm, the outbreak event), and the property that storm settings whose
//! threshold is never reached decide exactly as storms off (which `tests/naive.rs` checks
//! against the frozen reference).

mod support;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use support::*;
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Context, EventDecision, decide_event, reconcile};
use ticketing_core::ledger::{Ledger, TicketState, Transition};
use ticketing_core::model::*;
use ticketing_core::rules::{RowId, RuleSet};
use ticketing_core::storm::{self, StormPart};
use ticketing_core::ticket::{TicketKey, TicketRef};

const DB: &str = "databases_out_of_date";

fn critical() -> RowId {
    sev(Product::SecurityCenter, Severity::Critical)
}

fn status_row() -> RowId {
    RowId::Status(Product::SecurityCenter, StatusLevel::Warning, desc(DB))
}

/// Every row on; storms on the Security Center Critical event row and the "databases out of
/// date" Warning row: `threshold` tickets within `window` minutes, notes every 5 minutes.
fn rules(threshold: u32, window: u32) -> RuleSet {
    let mut rules = all_on();
    for row in [critical(), status_row()] {
        let r = rules.rows.get_mut(&row).unwrap();
        r.storm_threshold = Some(threshold);
        r.storm_window_minutes = Some(window);
    }
    assert_eq!(rules.validate(&Catalog::example()), vec![], "storm rules are valid");
    rules
}

fn ctx_two(rules: &RuleSet) -> Context {
    Context::new(rules, &Catalog::example(), [(tenant(), ACME), (other(), ACME)], accounts())
}

fn other() -> TenantId {
    TenantId::new("ksc:main/vs:2")
}

/// Critical event `id` on computer `host` of `tenant`, `minute` minutes after `now()`.
fn ev(tenant: &TenantId, id: u32, host: u32, minute: i64) -> Event {
    let mut e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::zero());
    e.tenant = tenant.clone();
    e.source_id = SourceEventId::new(format!("e{id}"));
    e.occurred_at = now() + Duration::minutes(minute);
    e.device = Some(Device { id: DeviceId::new(format!("h{host}")), name: format!("PC-{host}") });
    e
}

/// What the engine does: decide, apply every transition, and (for a test's PSA) open every
/// planned ticket at once. Answers a word per decision.
fn run(ledger: &mut Ledger, ctx: &Context, e: &Event, at: DateTime<Utc>, ids: &mut i64) -> String {
    let d = decide_event(e, ctx, ledger, at);
    let word = match &d {
        EventDecision::Create(c) => match c.storm.as_deref() {
            Some(StormPart::Counted { .. }) => "own".to_owned(),
            _ => "create".to_owned(),
        },
        EventDecision::Note(_) => "note".to_owned(),
        EventDecision::Storm(_) => "join".to_owned(),
        EventDecision::OpenStorm(o) => if o.outbreak { "outbreak" } else { "open" }.to_owned(),
        EventDecision::Skip { reason, .. } => reason.label().to_owned(),
    };
    for t in d.transitions() {
        ledger.apply(&t, at).unwrap();
    }
    open_planned(ledger, at, ids);
    word
}

fn open_planned(ledger: &mut Ledger, at: DateTime<Utc>, ids: &mut i64) {
    let planned: Vec<TicketKey> =
        ledger.entries().filter(|e| matches!(e.state, TicketState::Planned { .. })).map(|e| e.key.clone()).collect();
    for key in planned {
        *ids += 1;
        ledger.apply(&Transition::Opened { key, ticket: TicketRef { id: PsaId(*ids), number: None } }, at).unwrap();
    }
}

/// The storm work due at `at`, applied; the queued notes' texts, and any storm note delivered.
fn storm_work(ledger: &mut Ledger, ctx: &Context, at: DateTime<Utc>) -> Vec<Transition> {
    let work = storm::due(ledger, at, ctx.closed_status());
    for t in &work {
        ledger.apply(t, at).unwrap();
    }
    work
}

fn storms_of(ledger: &Ledger) -> Vec<&storm::Storm> {
    ledger.entries().filter_map(storm::storm_of_entry).collect()
}

#[test]
fn below_and_at_the_threshold_then_joined_and_noted_in_batches() {
    let rules = rules(3, 30);
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    let words: Vec<String> = (0..6).map(|i| run(&mut ledger, &c, &ev(&tenant(), i, i, 0), now(), &mut ids)).collect();
    assert_eq!(words, ["own", "own", "own", "open", "join", "join"]);
    // 3 tickets of their own and one storm ticket: 4 tickets for 6 events.
    assert_eq!(ledger.entries().filter(|e| e.ticket().is_some()).count(), 4);
    let storm_entry = ledger.entries().find(|e| storm::storm_of_entry(e).is_some()).unwrap();
    let TicketState::Open { .. } = storm_entry.state else { panic!("the storm ticket is open") };
    let s = storm::storm_of_entry(storm_entry).unwrap();
    assert_eq!((s.problems, s.devices.len(), s.pending.len()), (3, 3, 2));
    // The members have no tickets of their own, and are never ticketed again.
    for id in 3..6 {
        let key = ticketing_core::decide::event_key(&ev(&tenant(), id, id, 0));
        assert!(matches!(ledger.get(&key).unwrap().state, TicketState::Stormed { .. }));
        assert_eq!(run(&mut ledger, &c, &ev(&tenant(), id, id, 0), now(), &mut ids), "already_ticketed");
    }
    // No note before 5 minutes; one at 5 naming both new events; none while nothing is new.
    assert!(storm_work(&mut ledger, &c, now() + Duration::minutes(4)).is_empty());
    let work = storm_work(&mut ledger, &c, now() + Duration::minutes(5));
    let [Transition::StormNoteQueued { note, .. }] = work.as_slice() else { panic!("{work:?}") };
    assert!(note.text.contains("e4") && note.text.contains("e5") && note.text.contains("PC-4"), "{}", note.text);
    assert!(note.text.starts_with("Alert storm: 3 problems so far on 3 computers."), "{}", note.text);
    assert!(note.marker.ends_with("/storm/1"), "{}", note.marker);
    assert!(storm_work(&mut ledger, &c, now() + Duration::minutes(20)).is_empty());
    // The note is outbox work on the storm ticket, delivered once.
    let storm_key = storm_entry_key(&ledger);
    let entry = ledger.get(&storm_key).unwrap();
    assert_eq!(entry.recurrence_note().map(|n| n.marker.clone()), Some(note.marker.clone()));
    ledger.apply(&Transition::RecurrenceNoted { key: storm_key.clone(), marker: note.marker.clone() }, now()).unwrap();
    assert!(ledger.get(&storm_key).unwrap().recurrence_note().is_none());
    assert!(ledger.apply(&Transition::RecurrenceNoted { key: storm_key, marker: note.marker.clone() }, now()).is_err());
}

fn storm_entry_key(ledger: &Ledger) -> TicketKey {
    ledger.entries().find(|e| storm::storm_of_entry(e).is_some()).unwrap().key.clone()
}

#[test]
fn a_second_storm_after_the_window() {
    let rules = rules(2, 30);
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    let mut words = Vec::new();
    for (i, minute) in [0, 1, 2, 20].into_iter().enumerate() {
        words.push(run(&mut ledger, &c, &ev(&tenant(), i as u32, i as u32, minute), now(), &mut ids));
    }
    // 20 minutes after the storm's last problem: still the storm (the window is 30).
    assert_eq!(words, ["own", "own", "open", "join"]);
    storm_work(&mut ledger, &c, now() + Duration::minutes(25));
    // The window passes with no new problem: the storm ends, nothing pending.
    let work = storm_work(&mut ledger, &c, now() + Duration::minutes(51));
    assert!(matches!(work.as_slice(), [Transition::StormFinished { .. }]), "{work:?}");
    assert_eq!(ledger.live_storms().count(), 0);
    // The next problem gets a ticket as usual (the earlier tickets are out of the window); a new
    // storm begins after two more.
    let at = now() + Duration::minutes(60);
    let words: Vec<String> = (10..14).map(|i| run(&mut ledger, &c, &ev(&tenant(), i, i, 60), at, &mut ids)).collect();
    assert_eq!(words, ["own", "own", "open", "join"]);
    assert_eq!(storms_of(&ledger).len(), 2, "two storm tickets, one per storm");
}

#[test]
fn two_tenants_at_once_are_independent() {
    let rules = rules(2, 30);
    let c = ctx_two(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..5 {
        a.push(run(&mut ledger, &c, &ev(&tenant(), i, i, 0), now(), &mut ids));
        if i < 2 {
            b.push(run(&mut ledger, &c, &ev(&other(), 100 + i, i, 0), now(), &mut ids));
        }
    }
    assert_eq!(a, ["own", "own", "open", "join", "join"]);
    assert_eq!(b, ["own", "own"], "the other tenant's events still get their own tickets");
    // Another row of the same tenant is not in the storm either (Warning events have no storm).
    let mut w = ev(&tenant(), 50, 50, 0);
    w.class = EventClass::Severity(Severity::Warning);
    assert_eq!(run(&mut ledger, &c, &w, now(), &mut ids), "create");
}

#[test]
fn status_problems_clear_during_a_storm_and_the_storm_ticket_closes_when_all_did() {
    let rules = rules(2, 30);
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    let warn = |ids: &[u32]| {
        let devices = (1..=4)
            .map(|d| {
                let active: &[(&str, StatusLevel)] = if ids.contains(&d) { &[(DB, StatusLevel::Warning)] } else { &[] };
                device_status(&format!("d{d}"), active)
            })
            .collect();
        snapshot(devices)
    };
    let mut pass = |ledger: &mut Ledger, active: &[u32], at: DateTime<Utc>| -> Vec<&'static str> {
        let rec = reconcile(&warn(active), &c, ledger, at);
        let words = rec
            .actions
            .iter()
            .map(|a| match a {
                Action::Create(_) => "own",
                Action::OpenStorm(_) => "open",
                Action::Storm(_) => "join",
                Action::StormCleared(_) => "cleared",
                Action::Close(_) => "close",
                _ => "other",
            })
            .collect();
        for a in &rec.actions {
            for t in a.transitions() {
                ledger.apply(&t, at).unwrap();
            }
        }
        open_planned(ledger, at, &mut ids);
        words
    };
    // Four computers at once: two tickets, the third opens the storm, the fourth joins it.
    assert_eq!(pass(&mut ledger, &[1, 2, 3, 4], now()), ["own", "own", "open", "join"]);
    // The same problems persisting change nothing.
    assert!(pass(&mut ledger, &[1, 2, 3, 4], now() + Duration::minutes(1)).is_empty());
    // Computer 1 (its own ticket) and computer 3 (in the storm) clear.
    let mut words = pass(&mut ledger, &[2, 4], now() + Duration::minutes(2));
    words.sort_unstable();
    assert_eq!(words, ["cleared", "close"]);
    let s = storms_of(&ledger)[0].clone();
    assert_eq!((s.problems, s.open_members, s.cleared), (2, 1, 1));
    // The note says which cleared.
    let work = storm_work(&mut ledger, &c, now() + Duration::minutes(5));
    let [Transition::StormNoteQueued { note, .. }] = work.as_slice() else { panic!("{work:?}") };
    assert!(note.text.contains("PC-d4:\n  Warning status: Databases are out of date"), "{}", note.text);
    assert!(note.text.contains("PC-d3:\n  cleared: Databases are out of date"), "{}", note.text);
    // The storm's window passes; one of its problems persists: the storm ticket stays open.
    assert!(storm_work(&mut ledger, &c, now() + Duration::minutes(40)).is_empty());
    // The last clears: noted, then the storm ticket closes.
    let mut words = pass(&mut ledger, &[2], now() + Duration::minutes(41));
    words.sort_unstable();
    assert_eq!(words, ["cleared"]);
    let work = storm_work(&mut ledger, &c, now() + Duration::minutes(46));
    let [Transition::StormNoteQueued { note, .. }] = work.as_slice() else { panic!("{work:?}") };
    assert!(note.text.contains("The storm is over"), "{}", note.text);
    let work = storm_work(&mut ledger, &c, now() + Duration::minutes(47));
    assert!(matches!(work.as_slice(), [Transition::CloseRequested { .. }]), "{work:?}");
    // A cleared storm member is ticketed like any problem when it returns, once the storm is over.
    ledger.apply(&Transition::Closed { key: storm_entry_key(&ledger) }, now() + Duration::minutes(47)).unwrap();
    let at = now() + Duration::minutes(120);
    assert_eq!(pass(&mut ledger, &[2, 3], at), ["own"], "computer 2 keeps its ticket; computer 3 gets one");
}

#[test]
fn an_outbreak_event_opens_the_storm_at_once() {
    let mut rules = rules(50, 30);
    rules.rows.get_mut(&critical()).unwrap().outbreak_as_storm = true;
    assert_eq!(rules.validate(&Catalog::example()), vec![]);
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    assert_eq!(run(&mut ledger, &c, &ev(&tenant(), 1, 1, 0), now(), &mut ids), "own");
    let mut outbreak = ev(&tenant(), 2, 2, 1);
    outbreak.event_type = storm::OUTBREAK_EVENT_TYPE.to_owned();
    outbreak.display_name = "Virus outbreak".into();
    assert_eq!(run(&mut ledger, &c, &outbreak, now(), &mut ids), "outbreak");
    assert_eq!(run(&mut ledger, &c, &ev(&tenant(), 3, 3, 2), now(), &mut ids), "join");
    let storm_entry = ledger.get(&storm_entry_key(&ledger)).unwrap();
    let TicketState::Open { .. } = storm_entry.state else { panic!() };
    // Without the setting an outbreak event is an event like any other.
    let rules = self::rules(50, 30);
    let mut ledger = Ledger::new();
    assert_eq!(run(&mut ledger, &ctx(&rules), &outbreak, now(), &mut ids), "own");
    // The setting belongs to the Security Center Critical row only, and needs the storm settings.
    let mut bad = all_on();
    bad.rows.get_mut(&sev(Product::SecurityCenter, Severity::Warning)).unwrap().outbreak_as_storm = true;
    bad.rows.get_mut(&critical()).unwrap().outbreak_as_storm = true;
    let fields: Vec<String> = bad.validate(&Catalog::example()).iter().map(|e| e.field.to_string()).collect();
    assert_eq!(fields, ["storm_threshold", "outbreak_as_storm"], "{fields:?}");
}

#[test]
fn storm_settings_are_checked() {
    let mut r = all_on();
    let office = RowId::Event(Product::Office365, EventClass::Office365(Office365EventType::ALL[0]));
    r.rows.get_mut(&office).unwrap().storm_threshold = Some(5);
    r.rows.get_mut(&critical()).unwrap().storm_threshold = Some(1);
    r.rows.get_mut(&critical()).unwrap().storm_window_minutes = Some(30);
    r.rows.get_mut(&status_row()).unwrap().storm_window_minutes = Some(30);
    let got: Vec<String> =
        r.validate(&Catalog::example()).iter().map(|e| format!("{}: {}", e.row.as_ref().unwrap(), e.field)).collect();
    assert!(got.contains(&format!("{office}: storm_threshold")), "{got:?}");
    assert!(got.contains(&format!("{}: storm_threshold", critical())), "{got:?}");
    assert!(got.contains(&format!("{}: storm_threshold", status_row())), "{got:?}");
    // A rule book without storm settings serialises as before (nothing new written).
    let json = serde_json::to_string(&all_on()).unwrap();
    assert!(!json.contains("storm"), "{json}");
}

#[test]
fn a_storm_transition_applied_twice_does_not_fit() {
    let rules = rules(2, 30);
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    run(&mut ledger, &c, &ev(&tenant(), 0, 0, 0), now(), &mut ids);
    run(&mut ledger, &c, &ev(&tenant(), 1, 1, 0), now(), &mut ids);
    let d = decide_event(&ev(&tenant(), 2, 2, 0), &c, &ledger, now());
    let EventDecision::OpenStorm(open) = &d else { panic!("{d:?}") };
    for t in open.transitions() {
        ledger.apply(&t, now()).unwrap();
    }
    for t in open.transitions() {
        assert!(ledger.apply(&t, now()).is_err(), "{t:?} twice");
    }
    // The storm index is rebuilt from stored entries alike.
    let stored: Vec<_> = ledger.entries().cloned().collect();
    let mut rebuilt = Ledger::from_entries(stored);
    assert_eq!(rebuilt.live_storms().count(), 1);
    assert_eq!(run(&mut rebuilt, &c, &ev(&tenant(), 3, 3, 0), now(), &mut ids), "join");
}

proptest! {
    /// Storm settings whose threshold is never reached decide as storms off (events of one
    /// tenant and row, in any order and spacing, fewer than the threshold within any window).
    #[test]
    fn a_threshold_never_reached_decides_as_storms_off(
        minutes in proptest::collection::vec(0i64..600, 1..20),
        window in 1u32..120,
    ) {
        let mut on = all_on();
        let r = on.rows.get_mut(&critical()).unwrap();
        r.storm_threshold = Some(1000);
        r.storm_window_minutes = Some(window);
        let off = all_on();
        let (c_on, c_off) = (ctx(&on), ctx(&off));
        let (mut l_on, mut l_off) = (Ledger::new(), Ledger::new());
        for (i, m) in minutes.iter().enumerate() {
            let e = ev(&tenant(), i as u32, i as u32 % 3, *m);
            let at = now() + Duration::minutes(600);
            let a = decide_event(&e, &c_on, &l_on, at);
            let b = decide_event(&e, &c_off, &l_off, at);
            match (&a, &b) {
                (EventDecision::Create(x), EventDecision::Create(y)) => {
                    prop_assert_eq!(&x.draft, &y.draft);
                    let counted = matches!(x.storm.as_deref(), Some(StormPart::Counted { .. }));
                    prop_assert!(counted, "a ticket of a storm row is counted");
                }
                _ => prop_assert_eq!(&a, &b),
            }
            for t in a.transitions() { l_on.apply(&t, at).unwrap(); }
            for t in b.transitions() { l_off.apply(&t, at).unwrap(); }
        }
    }
}
