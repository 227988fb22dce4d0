//! Criterion benchmarks of the core's hot paths: deciding events, and reconciling status
//! snapshots of 100,000 devices against a ledger that already holds their open tickets.
//!
//! Run with `cargo bench -p ticketing-core --bench decisions`.
#![allow(missing_docs)]

use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Context, decide_event, reconcile};
use ticketing_core::ledger::{Ledger, Transition};
use ticketing_core::model::*;
use ticketing_core::ports::Account;
use ticketing_core::rules::RuleSet;
use ticketing_core::ticket::TicketRef;

fn context(tenants: usize) -> Context {
    let mut rules = RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    let mapping = (0..tenants).map(|t| (TenantId::new(format!("ksc:main/vs:{t}")), PsaId(1000 + t as i64)));
    let accounts = (0..tenants).map(|t| Account { id: PsaId(1000 + t as i64), name: format!("c{t}"), active: true });
    Context::new(&rules, &Catalog::example(), mapping, accounts)
}

fn events(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let ctx = context(100);
    let evs: Vec<Event> = (0..10_000)
        .map(|i| Event {
            source_id: SourceEventId::new(i.to_string()),
            tenant: TenantId::new(format!("ksc:main/vs:{}", i % 100)),
            product: Product::SecurityCenter,
            class: EventClass::Severity(Severity::ALL[i % 4]),
            occurred_at: now - Duration::minutes((i % 2000) as i64),
            device: Some(Device { id: DeviceId::new(format!("h{i}")), name: format!("PC-{i}") }),
            mailbox: None,
            event_type: "GNRL_EV_VIRUS_FOUND".into(),
            display_name: "Malicious object detected".into(),
            text: "Trojan.Win32.Agent detected in C:\\Users\\x\\a.exe".into(),
        })
        .collect();
    let ledger = Ledger::new();
    let mut g = c.benchmark_group("decide_event");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("10k_events", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(decide_event(e, &ctx, &ledger, now));
            }
        })
    });
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let tenants = 10;
    let per_tenant = 10_000; // 100,000 devices in all
    let ctx = context(tenants);
    let level = StatusLevel::Warning;
    let mk = |t: usize, with: &[&str]| StatusSnapshot {
        tenant: TenantId::new(format!("ksc:main/vs:{t}")),
        product: Product::SecurityCenter,
        devices: (0..per_tenant)
            .map(|d| DeviceStatus {
                device: Device { id: DeviceId::new(format!("host-{d:06}")), name: format!("PC-{d}") },
                status: if d % 10 == 0 { ComputerStatus::Warning } else { ComputerStatus::Ok },
                active: if d % 10 == 0 {
                    with.iter()
                        .map(|c| ActiveDescription {
                            description: StatusDescription::known_from_code(c).unwrap(),
                            level,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect(),
        issues: Vec::new(),
        unknown_descriptions: 0,
    };
    let both: Vec<StatusSnapshot> =
        (0..tenants).map(|t| mk(t, &["databases_out_of_date", "many_viruses_detected"])).collect();
    let one: Vec<StatusSnapshot> = (0..tenants).map(|t| mk(t, &["many_viruses_detected"])).collect();
    // A ledger holding an open ticket for every active description of `both`.
    let mut ledger = Ledger::new();
    for s in &both {
        for a in reconcile(s, &ctx, &ledger, now).actions {
            let Action::Create(cr) = a else { continue };
            ledger.apply(&cr.transition(), now).unwrap();
            ledger
                .apply(&Transition::Opened { key: cr.key, ticket: TicketRef { id: PsaId(1), number: None } }, now)
                .unwrap();
        }
    }
    let mut g = c.benchmark_group("reconcile_100k_devices");
    g.sample_size(10);
    g.throughput(Throughput::Elements((tenants * per_tenant) as u64));
    g.bench_function("steady_state", |b| {
        b.iter(|| {
            for s in &both {
                black_box(reconcile(s, &ctx, &ledger, now));
            }
        })
    });
    g.bench_function("one_description_clears_on_10pct", |b| {
        b.iter(|| {
            for s in &one {
                black_box(reconcile(s, &ctx, &ledger, now));
            }
        })
    });
    g.bench_function("first_sight_creates_on_10pct", |b| {
        let empty = Ledger::new();
        b.iter(|| {
            for s in &both {
                black_box(reconcile(s, &ctx, &empty, now));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, events, snapshots);
criterion_main!(benches);
