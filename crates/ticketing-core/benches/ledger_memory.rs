//! Heap bytes per ledger entry, measured with a counting global allocator (requested bytes, not
//! the allocator's rounding): a ledger of 1,000,000 open status tickets, built the way the
//! engine builds it (reconcile, Plan, Opened) and the way a restart loads it (from stored
//! entries), plus one of 1,000,000 planned creates (each keeps its draft until the PSA has it).
//!
//! Run with `cargo bench -p ticketing-core --bench ledger_memory`; `-- N` sets the entry count.
#![allow(missing_docs)]
// The counting allocator needs `unsafe impl GlobalAlloc`; the library itself forbids unsafe
// code in lib.rs, this measurement binary is the one exception.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use chrono::{TimeZone, Utc};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Context, reconcile};
use ticketing_core::ledger::{Ledger, LedgerEntry, Transition};
use ticketing_core::model::*;
use ticketing_core::ports::Account;
use ticketing_core::rules::RuleSet;
use ticketing_core::ticket::TicketRef;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

const PER_TENANT: usize = 10_000;

fn context(tenants: usize) -> Context {
    let mut rules = RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    let mapping = (0..tenants).map(|t| (TenantId::new(format!("ksc:main/vs:{t}")), PsaId(1000 + t as i64)));
    let accounts = (0..tenants).map(|t| Account { id: PsaId(1000 + t as i64), name: format!("c{t}"), active: true });
    Context::new(&rules, &Catalog::example(), mapping, accounts)
}

/// One tenant's snapshot: every device has both descriptions, two keys per device. Device ids
/// are short (`host-000042`) or GUIDs as Security Center spells them (36 characters).
fn snapshot(t: usize, guid: bool) -> StatusSnapshot {
    let active = ["databases_out_of_date", "many_viruses_detected"]
        .map(|c| ActiveDescription {
            description: StatusDescription::known_from_code(c).unwrap(),
            level: StatusLevel::Warning,
        })
        .to_vec();
    StatusSnapshot {
        tenant: TenantId::new(format!("ksc:main/vs:{t}")),
        product: Product::SecurityCenter,
        devices: (0..PER_TENANT / 2)
            .map(|d| DeviceStatus {
                device: Device {
                    id: DeviceId::new(if guid {
                        format!("{:08x}-4e2a-11ef-9c1d-{d:012x}", t as u32 * 2_654_435_761)
                    } else {
                        format!("host-{d:06}")
                    }),
                    name: format!("PC-{d}"),
                },
                status: ComputerStatus::Warning,
                active: active.clone(),
            })
            .collect(),
        issues: Vec::new(),
        unknown_descriptions: 0,
    }
}

/// Builds a ledger of `n` entries, opening them when `open`; returns it and the bytes it holds.
fn build(n: usize, open: bool, guid: bool) -> (Ledger, isize) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let tenants = n.div_ceil(PER_TENANT);
    let ctx = context(tenants);
    let before = live();
    let mut ledger = Ledger::new();
    for t in 0..tenants {
        let snap = snapshot(t, guid);
        for a in reconcile(&snap, &ctx, &ledger, now).actions {
            let Action::Create(cr) = a else { continue };
            ledger.apply(&cr.transition(), now).unwrap();
            if open {
                let ticket = TicketRef { id: PsaId(1), number: None };
                ledger.apply(&Transition::Opened { key: cr.key, ticket }, now).unwrap();
            }
        }
    }
    let bytes = live() - before;
    (ledger, bytes)
}

fn report(what: &str, bytes: isize, n: usize) {
    println!("{what:<58} {n:>9} entries {:>12} bytes {:>8.1} bytes/entry", bytes, bytes as f64 / n as f64);
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    for guid in [false, true] {
        let ids = if guid { "GUID device ids" } else { "short device ids" };
        let (ledger, bytes) = build(n, true, guid);
        report(&format!("open status tickets, {ids}, built by apply"), bytes, ledger.len());
        let before = live();
        let stored: Vec<LedgerEntry> = ledger.entries().cloned().collect();
        let reloaded = Ledger::from_entries(stored);
        report(&format!("open status tickets, {ids}, loaded by from_entries"), live() - before, reloaded.len());
        drop(reloaded);
        drop(ledger);
    }
    let (ledger, bytes) = build(n, false, false);
    report("planned creates, short ids (each keeps its draft)", bytes, ledger.len());
    println!(
        "size_of: LedgerEntry {} B, TicketState {} B, TicketKey {} B, TicketDraft {} B (boxed in Planned)",
        std::mem::size_of::<LedgerEntry>(),
        std::mem::size_of::<ticketing_core::ledger::TicketState>(),
        std::mem::size_of::<ticketing_core::ticket::TicketKey>(),
        std::mem::size_of::<ticketing_core::ticket::TicketDraft>(),
    );
}
