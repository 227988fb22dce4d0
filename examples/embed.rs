//! Embedding msp-ticketing in another MSP tool: your tool already has the data (events and
//! computer statuses it collected its own way); the core tells it which tickets to open and
//! close. No daemon, no database, no HTTP: the caller owns all I/O.
//!
//! Run with `cargo run --example embed`.

use chrono::{Duration, TimeZone, Utc};
use msp_ticketing::catalog::Catalog;
use msp_ticketing::decide::{Action, Context, reconcile};
use msp_ticketing::ledger::{Ledger, Transition};
use msp_ticketing::model::*;
use msp_ticketing::ports::Account;
use msp_ticketing::rules::{RowId, RuleSet};
use msp_ticketing::ticket::TicketRef;

fn main() {
    // Rules as the guide's defaults, with two Warning-status rows turned on.
    let mut rules = RuleSet::default();
    for code in ["databases_out_of_date", "many_viruses_detected"] {
        let row = RowId::Status(
            Product::SecurityCenter,
            StatusLevel::Warning,
            StatusDescription::known_from_code(code).expect("a catalogued description"),
        );
        rules.rows.get_mut(&row).expect("every row exists").enabled = true;
    }
    let tenant = TenantId::new("ksc:main/vs:1");
    // Your tool's PSA picklists and accounts (here the example catalog).
    let ctx = Context::new(
        &rules,
        &Catalog::example(),
        [(tenant.clone(), PsaId(29683616))],
        [Account { id: PsaId(29683616), name: "Acme Corp".into(), active: true }],
    );

    let warn = |code: &str| ActiveDescription {
        description: StatusDescription::known_from_code(code).expect("catalogued"),
        level: StatusLevel::Warning,
    };
    let snapshot = |active: Vec<ActiveDescription>| StatusSnapshot {
        tenant: tenant.clone(),
        product: Product::SecurityCenter,
        devices: vec![DeviceStatus {
            device: Device { id: DeviceId::new("guid-1"), name: "ACME-PC-01".into() },
            status: if active.is_empty() { ComputerStatus::Ok } else { ComputerStatus::Warning },
            active,
        }],
        issues: Vec::new(),
        unknown_descriptions: 0,
    };

    let mut ledger = Ledger::new();
    let mut now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).single().expect("a valid time");
    let steps = [
        (
            "the computer turns Warning for two reasons",
            vec![warn("databases_out_of_date"), warn("many_viruses_detected")],
        ),
        ("the databases are updated; viruses keep it Warning", vec![warn("many_viruses_detected")]),
        ("the viruses are cleaned up", vec![]),
    ];
    let mut next_id = 1000;
    for (what, active) in steps {
        println!("{what}:");
        for action in reconcile(&snapshot(active), &ctx, &ledger, now).actions {
            // 1. persist the transition (your database), 2. call your PSA, 3. record its answer.
            for t in action.transitions() {
                ledger.apply(&t, now).expect("actions fit the ledger");
            }
            let answer = match &action {
                Action::Create(c) => {
                    next_id += 1;
                    println!("  create {:?} (priority id {}, due {})", c.draft.title, c.draft.priority, c.draft.due);
                    Transition::Opened { key: c.key.clone(), ticket: TicketRef { id: PsaId(next_id), number: None } }
                }
                Action::Close(c) => {
                    println!("  close {} with status id {}", c.key, c.status);
                    Transition::Closed { key: c.key.clone() }
                }
                Action::Clear { .. } => continue,
                // lifecycle: the flap guard only records; a reopen or priority raise is one
                // `update_ticket` plus a note, then `Updated`
                Action::Delay { .. } | Action::DelayCleared { .. } => continue,
                Action::Reopen(u) | Action::Update(u) => {
                    println!("  update {} ({:?})", u.key, u.update);
                    Transition::Updated { key: u.key.clone() }
                }
                // alert storms (off in this example): a storm ticket is created like any
                // other (`OpenStorm`); joining or clearing only records
                Action::Storm(_) | Action::StormCleared(_) => continue,
                Action::OpenStorm(o) => {
                    next_id += 1;
                    Transition::Opened {
                        key: o.create.key.clone(),
                        ticket: TicketRef { id: PsaId(next_id), number: None },
                    }
                }
            };
            ledger.apply(&answer, now).expect("answers fit the ledger");
        }
        now += Duration::minutes(5);
    }
}
