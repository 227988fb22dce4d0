//! The benches' naive baseline (`benches/naive/mod.rs`) decides exactly as the core does: same
//! keys, same drafts to the byte. That is what makes the bench's ratio meaningful, and it is one
//! more check that the allocation-lean text building changed no output.

#[path = "../benches/naive/mod.rs"]
mod naive;
#[path = "../benches/workload/mod.rs"]
mod workload;

use chrono::Duration;
use proptest::prelude::*;
use ticketing_core::decide::{EventDecision, decide_event, reconcile};
use ticketing_core::ledger::{Ledger, Recovery, Transition};
use ticketing_core::model::*;
use ticketing_core::ticket::TicketRef;
use workload::*;

#[test]
fn the_naive_baseline_reconciles_the_bench_snapshots_as_the_core_does() {
    let (ctx, naive_ctx) = (
        context(2),
        naive::NaiveContext::new(
            &all_on(),
            &ticketing_core::catalog::Catalog::example(),
            (0..2).map(|t| (tenant(t), PsaId(1000 + t as i64))),
            (0..2).map(|t| ticketing_core::ports::Account {
                id: PsaId(1000 + t as i64),
                name: format!("c{t}"),
                active: true,
            }),
        ),
    );
    let both: Vec<StatusSnapshot> = (0..2).map(|t| snapshot(t, &BOTH)).collect();
    let ledger = steady_ledger(&ctx, &both);
    for s in both.iter().chain(&[snapshot(0, &BOTH[1..]), snapshot(1, &[])]) {
        for l in [&ledger, &Ledger::new()] {
            assert_eq!(reconcile(s, &ctx, l, now()), naive::reconcile(s, &naive_ctx, l, now()));
        }
    }
}

fn all_on() -> ticketing_core::rules::RuleSet {
    let mut rules = ticketing_core::rules::RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    rules
}

/// Tenants whose spellings are prefixes of one another (and one with a NUL), so that a
/// reconciliation that reads another tenant's entries shows.
const TENANTS: [&str; 4] = ["ksc:main/vs:1", "ksc:main/vs:1\0", "ksc:main/vs:10", "ksc:main/vs:"];
const CODES: [&str; 5] =
    ["databases_out_of_date", "many_viruses_detected", "license_expired", "unknown:77", "restart_required"];

fn arb_snapshot() -> impl Strategy<Value = StatusSnapshot> {
    let device = (0usize..5, proptest::collection::vec((0usize..5, any::<bool>()), 0..4));
    (
        0usize..4,
        prop_oneof![Just(Product::SecurityCenter), Just(Product::EndpointCloud)],
        proptest::collection::vec(device, 0..7),
    )
        .prop_map(|(t, product, devices)| StatusSnapshot {
            tenant: TenantId::new(TENANTS[t]),
            product,
            devices: devices
                .into_iter()
                .map(|(d, active)| {
                    let active: Vec<ActiveDescription> = active
                        .into_iter()
                        .map(|(c, critical)| ActiveDescription {
                            description: StatusDescription::from_code(CODES[c]),
                            level: if critical { StatusLevel::Critical } else { StatusLevel::Warning },
                        })
                        .collect();
                    DeviceStatus {
                        device: Device { id: DeviceId::new(["a", "ab", "b", "a|b", "é"][d]), name: format!("PC-{d}") },
                        status: if active.is_empty() { ComputerStatus::Ok } else { ComputerStatus::Warning },
                        active,
                    }
                })
                .collect(),
            issues: Vec::new(),
            unknown_descriptions: 0,
        })
}

#[test]
fn the_naive_baseline_decides_the_bench_events_as_the_core_does() {
    let (ctx, naive_ctx) = (event_context(), naive_event_context());
    let mut created = 0;
    let mut ledger = Ledger::new();
    for (i, e) in mixed_events(10_000).iter().enumerate() {
        let lean = decide_event(e, &ctx, &ledger, now());
        assert_eq!(lean, naive::decide_event(e, &naive_ctx, &ledger, now()), "event {i}");
        if let EventDecision::Create(c) = &lean {
            created += 1;
            // Ticket a few, so `already ticketed` is decided too.
            if i % 3 == 0 {
                ledger.apply(&c.transition(), now()).unwrap();
            }
        }
    }
    assert!((4_000..6_000).contains(&created), "about half are created: {created}");
    for e in mixed_events(300) {
        assert_eq!(decide_event(&e, &ctx, &ledger, now()), naive::decide_event(&e, &naive_ctx, &ledger, now()));
    }
}

proptest! {
    /// Snapshot after snapshot, with the PSA answering every way, the core's reconciliation
    /// (per-snapshot device index, range query) decides exactly as the naive one (trees, full
    /// scans), and its range query returns exactly the tenant's entries.
    #[test]
    fn reconciliations_match_the_naive_baseline(steps in proptest::collection::vec((arb_snapshot(), 0u8..4), 1..12)) {
        let mapping = || TENANTS.iter().enumerate().map(|(i, t)| (TenantId::new(*t), PsaId(1 + (i as i64 % 2))));
        let accounts = || [true, true].into_iter().enumerate().map(|(i, active)| ticketing_core::ports::Account { id: PsaId(1 + i as i64), name: String::new(), active });
        let catalog = ticketing_core::catalog::Catalog::example();
        let ctx = ticketing_core::decide::Context::new(&all_on(), &catalog, mapping(), accounts());
        let naive_ctx = naive::NaiveContext::new(&all_on(), &catalog, mapping(), accounts());
        let mut ledger = Ledger::new();
        for (i, (snap, answer)) in steps.iter().enumerate() {
            let at = now() + Duration::minutes(i as i64);
            let lean = reconcile(snap, &ctx, &ledger, at);
            prop_assert_eq!(&lean, &naive::reconcile(snap, &naive_ctx, &ledger, at));
            for t in [Product::SecurityCenter, Product::EndpointCloud] {
                for tenant in TENANTS.map(TenantId::new) {
                    let range: Vec<_> = ledger.status_entries(t, &tenant).collect();
                    let scan: Vec<_> = ledger.entries().filter(|e| matches!(&e.key, ticketing_core::ticket::TicketKey::Status { product, tenant: k, .. } if *product == t && *k == tenant)).collect();
                    prop_assert_eq!(range, scan);
                }
            }
            for a in &lean.actions {
                ledger.apply(&a.transition(), at).unwrap();
            }
            // The PSA's answers to the outbox: open, refuse, close, or a technician closes.
            for w in ledger.recovery() {
                let key = w.key().clone();
                let t = match (w, *answer) {
                    (Recovery::LookUpThenCreate(_), 0) => Transition::Abandoned { key, reason: "no".into() },
                    (Recovery::LookUpThenCreate(_), _) => Transition::Opened { key, ticket: TicketRef { id: PsaId(9), number: None } },
                    (Recovery::RetryClose(_), 1) => Transition::ClosedByTechnician { key },
                    (Recovery::RetryClose(_), _) => Transition::Closed { key },
                    (Recovery::AddNote(_), _) => Transition::NoteAdded { key },
                    (Recovery::Update(_), _) => Transition::Updated { key },
                    (Recovery::AddRecurrenceNote(_), _) => unreachable!("no row has a recurrence window here"),
                };
                ledger.apply(&t, at).unwrap();
            }
            if *answer == 3 {
                let open: Vec<_> = ledger.entries().filter(|e| e.state.name() == "open").map(|e| e.key.clone()).take(1).collect();
                for key in open {
                    ledger.apply(&Transition::ClosedByTechnician { key }, at).unwrap();
                }
            }
        }
    }

    /// Any texts (long, multi-byte, trailing blanks, empty) cut and spell the same.
    #[test]
    fn any_text_is_written_and_cut_as_the_naive_baseline_does(
        text in "(\\PC|\\s){0,40}",
        long in 0usize..3,
        name in "\\PC{0,300}",
        device in "[a-z0-9é|-]{0,20}",
        tenant in "[a-z:/0-9ü|]{1,20}",
        mailbox in proptest::option::of("\\PC{0,20}"),
        minutes in 0i64..1400,
        pick in 0usize..10,
    ) {
        let (ctx, naive_ctx) = (event_context(), naive_event_context());
        let mut e = mixed_events(10).swap_remove(pick);
        e.text = text.repeat([1, 150, 400][long]);
        e.display_name = name;
        e.tenant = if pick == 9 { TenantId::new(tenant) } else { e.tenant };
        if let Some(d) = &mut e.device {
            d.id = DeviceId::new(device);
        }
        e.mailbox = mailbox.or(e.mailbox);
        e.occurred_at = now() - Duration::minutes(minutes);
        let ledger = Ledger::new();
        prop_assert_eq!(decide_event(&e, &ctx, &ledger, now()), naive::decide_event(&e, &naive_ctx, &ledger, now()));
    }
}
