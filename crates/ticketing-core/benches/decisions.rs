//! Criterion benchmarks of the core's hot paths:
//!
//! - `decide_event`: 10,000 mixed events (three products, every outcome: created, rule off,
//!   stale, unmapped, inactive account), the core against the naive baseline of
//!   `benches/naive/mod.rs` (the same decisions, built the straightforward way) in one group, so
//!   the ratio comes from one run;
//! - `reconcile_{10k,100k,1m}_devices`: complete snapshots of tenants of 10,000 devices each (1,
//!   10 and 100 tenants), every tenth device with two status descriptions: `steady_state`
//!   against a ledger that already holds their open tickets (nothing to do),
//!   `steady_state_one_tenant` (one tenant's snapshot against that whole ledger), and
//!   `first_sight_creates_on_10pct` against an empty one (a create per description); at 100k
//!   also `one_description_clears_on_10pct` (a close per device with descriptions), and
//!   `snapshot_scan_floor`, which only reads the snapshots (the memory traffic every
//!   reconciliation pays whatever it does).
//!
//! Throughput is per event or per device. Run with
//! `cargo bench -p ticketing-core --bench decisions -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

mod naive;
mod workload;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ticketing_core::decide::{decide_event, reconcile};
use ticketing_core::ledger::Ledger;
use ticketing_core::model::StatusSnapshot;
use workload::*;

fn events(c: &mut Criterion) {
    let now = now();
    let ctx = event_context();
    let naive_ctx = naive_event_context();
    let evs = mixed_events(10_000);
    let ledger = Ledger::new();
    let mut g = c.benchmark_group("decide_event");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("10k_events", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(decide_event(black_box(e), &ctx, &ledger, now));
            }
        })
    });
    g.bench_function("naive_10k_events", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(naive::decide_event(black_box(e), &naive_ctx, &ledger, now));
            }
        })
    });
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let now = now();
    for (name, tenants) in [("10k", 1), ("100k", 10), ("1m", 100)] {
        let ctx = context(tenants);
        let both: Vec<StatusSnapshot> = (0..tenants).map(|t| snapshot(t, &BOTH)).collect();
        let ledger = steady_ledger(&ctx, &both);
        let mut g = c.benchmark_group(format!("reconcile_{name}_devices"));
        g.sample_size(10);
        g.throughput(Throughput::Elements((tenants * PER_TENANT) as u64));
        g.bench_function("steady_state", |b| {
            b.iter(|| {
                for s in &both {
                    black_box(reconcile(s, &ctx, &ledger, now));
                }
            })
        });
        // One tenant of 10,000 devices against the whole ledger: what a reconciliation costs when
        // the ledger is large but the tenant's own data is warm (as after its snapshot's fetch).
        g.throughput(Throughput::Elements(PER_TENANT as u64));
        g.bench_function("steady_state_one_tenant", |b| b.iter(|| black_box(reconcile(&both[0], &ctx, &ledger, now))));
        g.throughput(Throughput::Elements((tenants * PER_TENANT) as u64));
        // The floor: only reading the snapshots (every device, and the descriptions of the tenth
        // that has some), to tell memory traffic from the reconciliation's own work.
        g.bench_function("snapshot_scan_floor", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for s in &both {
                    for d in &s.devices {
                        n += d
                            .active
                            .iter()
                            .map(|a| a.description.is_known() as usize + d.device.id.as_str().len())
                            .sum::<usize>();
                    }
                }
                black_box(n)
            })
        });
        if tenants == 10 {
            let one: Vec<StatusSnapshot> = (0..tenants).map(|t| snapshot(t, &BOTH[1..])).collect();
            g.bench_function("one_description_clears_on_10pct", |b| {
                b.iter(|| {
                    for s in &one {
                        black_box(reconcile(s, &ctx, &ledger, now));
                    }
                })
            });
        }
        let empty = Ledger::new();
        g.bench_function("first_sight_creates_on_10pct", |b| {
            b.iter(|| {
                for s in &both {
                    black_box(reconcile(s, &ctx, &empty, now));
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, events, snapshots);
criterion_main!(benches);
