//! Property tests of the invariants in ARCHITECTURE.md.

mod support;

use std::collections::BTreeSet;

use chrono::Duration;
use proptest::prelude::*;
use support::*;
use ticketing_core::decide::{Action, EventDecision, SkipReason, decide_event, reconcile};
use ticketing_core::ledger::{Ledger, TicketState, Transition};
use ticketing_core::model::*;
use ticketing_core::rules::RowId;
use ticketing_core::ticket::{TicketKey, TicketRef};

const CODES: [&str; 5] = [
    "databases_out_of_date",
    "many_viruses_detected",
    "license_expired",
    "restart_required",
    "realtime_protection_not_running",
];

/// One device's state in a step: which descriptions are active, each with a level.
fn arb_device() -> impl Strategy<Value = Vec<(usize, bool)>> {
    proptest::collection::vec((0..CODES.len(), any::<bool>()), 0..4)
}

fn arb_snapshot() -> impl Strategy<Value = Vec<Vec<(usize, bool)>>> {
    proptest::collection::vec(arb_device(), 0..4)
}

fn build(devs: &[Vec<(usize, bool)>]) -> StatusSnapshot {
    let devices = devs
        .iter()
        .enumerate()
        .map(|(i, active)| {
            let mut seen = BTreeSet::new();
            let act: Vec<(&str, StatusLevel)> = active
                .iter()
                .filter(|(c, _)| seen.insert(*c))
                .map(|(c, crit)| (CODES[*c], if *crit { StatusLevel::Critical } else { StatusLevel::Warning }))
                .collect();
            device_status(&format!("d{i}"), &act)
        })
        .collect();
    snapshot(devices)
}

/// What the daemon does with an action; `progress` says how far the PSA call got before the
/// next poll (0: still planned / closing, 1: done).
fn drive(ledger: &mut Ledger, actions: &[Action], progress: &[bool], ticket_ids: &mut i64) {
    for (i, a) in actions.iter().enumerate() {
        ledger.apply(&a.transition(), now()).expect("every action fits the ledger");
        if !progress.get(i).copied().unwrap_or(true) {
            continue;
        }
        let key = a.transition().key().clone();
        let follow = match a {
            Action::Create(_) => {
                *ticket_ids += 1;
                Transition::Opened { key: key.clone(), ticket: TicketRef { id: PsaId(*ticket_ids), number: None } }
            }
            Action::Close(_) => Transition::Closed { key: key.clone() },
            Action::Clear { .. } | Action::Delay { .. } | Action::DelayCleared { .. } => continue,
            Action::Reopen(_) | Action::Update(_) => Transition::Updated { key: key.clone() },
            Action::Storm(_) | Action::OpenStorm(_) | Action::StormCleared(_) => unreachable!("storms are off here"),
        };
        ledger.apply(&follow, now()).unwrap();
        if matches!(a, Action::Close(_)) {
            ledger.apply(&Transition::NoteAdded { key }, now()).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Invariant 1: same inputs and `now`, same decisions.
    #[test]
    fn decisions_are_deterministic(steps in proptest::collection::vec(arb_snapshot(), 1..5), age_min in 0i64..3000) {
        let rules = all_on();
        let mut ledger = Ledger::new();
        let mut ids = 0;
        for s in &steps {
            let snap = build(s);
            let a = reconcile(&snap, &ctx(&rules), &ledger, now());
            let b = reconcile(&snap, &ctx(&rules), &ledger.clone(), now());
            prop_assert_eq!(&a, &b);
            drive(&mut ledger, &a.actions, &[], &mut ids);
        }
        let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Warning), Duration::minutes(age_min));
        prop_assert_eq!(decide_event(&ev, &ctx(&rules), &ledger, now()), decide_event(&ev, &ctx(&rules), &ledger, now()));
    }

    /// Invariants 2 and 4: whatever the sequence of snapshots, PSA progress and technician
    /// closes, no key ever gets a second live ticket; every open ticket whose description
    /// cleared is closed; every active enabled description gets a ticket unless a technician
    /// closed it.
    #[test]
    fn no_sequence_of_snapshots_yields_two_open_tickets_for_one_key(
        steps in proptest::collection::vec(
            (arb_snapshot(), proptest::collection::vec(any::<bool>(), 0..12), proptest::collection::vec(any::<bool>(), 0..12)),
            1..8,
        ),
    ) {
        let rules = all_on();
        let c = ctx(&rules);
        let mut ledger = Ledger::new();
        let mut ids = 0;
        for (s, progress, tech) in &steps {
            // A technician closes some open tickets in the PSA; the daemon notices.
            let open: Vec<TicketKey> = ledger.entries().filter(|e| matches!(e.state, TicketState::Open { .. })).map(|e| e.key.clone()).collect();
            for (k, close) in open.iter().zip(tech) {
                if *close {
                    ledger.apply(&Transition::ClosedByTechnician { key: k.clone() }, now()).unwrap();
                }
            }
            let snap = build(s);
            let rec = reconcile(&snap, &c, &ledger, now());
            let mut created = BTreeSet::new();
            for a in &rec.actions {
                if let Action::Create(cr) = a {
                    prop_assert!(created.insert(cr.key.clone()), "two creates for one key in one step");
                    let live = ledger.get(&cr.key).is_some_and(|e| e.state.is_live());
                    prop_assert!(!live, "create for a key with a live ticket: {}", cr.key);
                }
            }
            let active: BTreeSet<(DeviceId, StatusDescription)> = snap.devices.iter()
                .flat_map(|d| d.active.iter().map(move |a| (d.device.id.clone(), a.description.clone())))
                .collect();
            for e in ledger.entries() {
                let TicketKey::Status { device, description, .. } = &e.key else { continue };
                let is_active = active.contains(&(device.clone(), description.clone()));
                let acted = rec.actions.iter().any(|a| a.transition().key() == &e.key);
                match &e.state {
                    TicketState::Open { .. } if !is_active => prop_assert!(acted, "cleared but not closed: {}", e.key),
                    TicketState::Closed { cleared: true, .. } if is_active => prop_assert!(acted, "active again but not re-ticketed: {}", e.key),
                    _ => {}
                }
            }
            for (dev, d) in &active {
                let key = TicketKey::Status { product: Product::SecurityCenter, tenant: tenant(), device: dev.clone(), description: d.clone() };
                let ticketed = ledger.get(&key).is_some_and(|e| e.state.is_live() || matches!(e.state, TicketState::Closed { cleared: false, .. }));
                let created_now = rec.actions.iter().any(|a| matches!(a, Action::Create(c) if c.key == key));
                prop_assert!(ticketed || created_now, "active description without a ticket: {}", key);
            }
            drive(&mut ledger, &rec.actions, progress, &mut ids);
        }
    }

    /// The lifetime boundary is exact: an event exactly `lifetime` days old is stale, one second
    /// younger is ticketed.
    #[test]
    fn lifetime_boundary_is_exact(days in 1u32..=365, offset_secs in -5i64..5) {
        let mut rules = all_on();
        let row = sev(Product::SecurityCenter, Severity::Warning);
        rules.rows.get_mut(&row).unwrap().lifetime_days = Some(days);
        let age = Duration::days(i64::from(days)) + Duration::seconds(offset_secs);
        let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Warning), age);
        let d = decide_event(&ev, &ctx(&rules), &Ledger::new(), now());
        if offset_secs >= 0 {
            prop_assert!(matches!(d, EventDecision::Skip { reason: SkipReason::Stale { lifetime_days }, .. } if lifetime_days == days), "{d:?}");
        } else {
            prop_assert!(matches!(d, EventDecision::Create(_)), "{d:?}");
        }
    }

    /// The guide's example, generalised: whatever else keeps the computer Warning, the
    /// "Databases are out of date" ticket closes when that description clears, and only it.
    #[test]
    fn databases_clear_closes_only_their_ticket(others in proptest::collection::btree_set(1..CODES.len(), 1..4)) {
        let rules = all_on();
        let c = ctx(&rules);
        let warn = |codes: &[&'static str]| snapshot(vec![device_status("pc", &codes.iter().map(|c| (*c, StatusLevel::Warning)).collect::<Vec<_>>())]);
        let mut with: Vec<&'static str> = vec![CODES[0]];
        with.extend(others.iter().map(|i| CODES[*i]));
        let mut ledger = Ledger::new();
        let mut ids = 0;
        let rec = reconcile(&warn(&with), &c, &ledger, now());
        prop_assert_eq!(rec.actions.len(), with.len());
        drive(&mut ledger, &rec.actions, &[], &mut ids);
        let without = &with[1..];
        let snap = warn(without);
        prop_assert_eq!(snap.devices[0].status, ComputerStatus::Warning);
        let rec = reconcile(&snap, &c, &ledger, now());
        prop_assert_eq!(rec.actions.len(), 1);
        let Action::Close(close) = &rec.actions[0] else { panic!("{rec:?}") };
        let TicketKey::Status { description, .. } = &close.key else { panic!() };
        prop_assert_eq!(description, &desc("databases_out_of_date"));
        drive(&mut ledger, &rec.actions, &[], &mut ids);
        let open = ledger.entries().filter(|e| matches!(e.state, TicketState::Open { .. })).count();
        prop_assert_eq!(open, without.len());
    }

    /// Rules per row: a disabled row never tickets, whatever the event.
    #[test]
    fn disabled_rows_never_ticket(sev_i in 0usize..4, age_min in 0i64..100_000) {
        let s = Severity::ALL[sev_i];
        let mut rules = all_on();
        if let Some(r) = rules.rows.get_mut(&RowId::Event(Product::SecurityCenter, EventClass::Severity(s))) {
            r.enabled = false;
        }
        let ev = event(Product::SecurityCenter, EventClass::Severity(s), Duration::minutes(age_min));
        let d = decide_event(&ev, &ctx(&rules), &Ledger::new(), now());
        prop_assert!(matches!(d, EventDecision::Skip { reason: SkipReason::RuleOff, .. }), "{d:?}");
    }
}
