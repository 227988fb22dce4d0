//! The benches' inputs, shared with tests/naive.rs (which checks the naive baseline decides
//! exactly as the core does on them).
#![allow(dead_code, unreachable_pub, missing_docs)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Context, reconcile};
use ticketing_core::ledger::{Ledger, Transition};
use ticketing_core::model::*;
use ticketing_core::ports::Account;
use ticketing_core::rules::RuleSet;
use ticketing_core::ticket::TicketRef;

use super::naive::NaiveContext;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

pub fn tenant(t: usize) -> TenantId {
    TenantId::new(format!("ksc:main/vs:{t}"))
}

fn inputs(
    tenants: usize,
    inactive: bool,
) -> (RuleSet, impl Iterator<Item = (TenantId, PsaId)>, impl Iterator<Item = Account>) {
    let mut rules = RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    let mapping = (0..tenants).map(|t| (tenant(t), PsaId(1000 + t as i64)));
    let accounts = (0..tenants).map(move |t| Account {
        id: PsaId(1000 + t as i64),
        name: format!("c{t}"),
        active: !inactive || t % 37 != 36,
    });
    (rules, mapping, accounts)
}

/// Every row on, `tenants` tenants mapped to active accounts.
pub fn context(tenants: usize) -> Context {
    let (rules, mapping, accounts) = inputs(tenants, false);
    Context::new(&rules, &Catalog::example(), mapping, accounts)
}

/// Every row on, the 100 tenants of [`mixed_events`] mapped, every 37th to an inactive account.
pub fn event_context() -> Context {
    let (rules, mapping, accounts) = inputs(100, true);
    Context::new(&rules, &Catalog::example(), mapping, accounts)
}

/// [`event_context`] for the naive baseline.
pub fn naive_event_context() -> NaiveContext {
    let (rules, mapping, accounts) = inputs(100, true);
    NaiveContext::new(&rules, &Catalog::example(), mapping, accounts)
}

/// `n` events as the three products send them, over 100 tenants: about half are created, the
/// rest skip as rule off (Info), stale (older than the one-day lifetime), unmapped tenant or
/// inactive account. Security Center and Endpoint Security Cloud events name a computer,
/// Office 365 events a mailbox.
pub fn mixed_events(n: usize) -> Vec<Event> {
    let now = now();
    (0..n)
        .map(|i| {
            let product = match i % 10 {
                0..=5 => Product::SecurityCenter,
                6 | 7 => Product::EndpointCloud,
                _ => Product::Office365,
            };
            let class = match product {
                Product::Office365 => EventClass::Office365(Office365EventType::ALL[i % 5]),
                _ => EventClass::Severity(Severity::ALL[i % 4]),
            };
            let (device, mailbox) = match product {
                Product::Office365 => (None, Some(format!("user{}@acme{}.example", i % 300, i % 100))),
                _ => (Some(Device { id: DeviceId::new(format!("h{i:08x}")), name: format!("PC-{i}") }), None),
            };
            Event {
                source_id: SourceEventId::new(format!("{}", 1_000_000 + i)),
                tenant: if i % 50 == 49 { TenantId::new("ksc:main/vs:unmapped") } else { tenant(i % 100) },
                product,
                class,
                occurred_at: now - Duration::minutes((i % 2000) as i64) - Duration::seconds((i % 61) as i64),
                device,
                mailbox,
                event_type: "GNRL_EV_VIRUS_FOUND".into(),
                display_name: if i % 7 == 0 { String::new() } else { "Malicious object detected".into() },
                text: if i % 11 == 0 {
                    String::new()
                } else {
                    "Trojan.Win32.Agent detected in C:\\Users\\x\\a.exe".into()
                },
            }
        })
        .collect()
}

pub const PER_TENANT: usize = 10_000;

/// One tenant's complete snapshot of [`PER_TENANT`] devices: every tenth has the descriptions
/// `with` (Warning), the others are OK.
pub fn snapshot(t: usize, with: &[&str]) -> StatusSnapshot {
    StatusSnapshot {
        tenant: tenant(t),
        product: Product::SecurityCenter,
        devices: (0..PER_TENANT)
            .map(|d| {
                let active: Vec<ActiveDescription> = if d % 10 == 0 {
                    with.iter()
                        .map(|c| ActiveDescription {
                            description: StatusDescription::known_from_code(c).unwrap(),
                            level: StatusLevel::Warning,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                DeviceStatus {
                    device: Device {
                        id: DeviceId::new(format!("{:08x}-4e2a-11ef-9c1d-{d:012x}", t as u32 * 2_654_435_761)),
                        name: format!("PC-{t}-{d}"),
                    },
                    status: if active.is_empty() { ComputerStatus::Ok } else { ComputerStatus::Warning },
                    active,
                }
            })
            .collect(),
        issues: Vec::new(),
        unknown_descriptions: 0,
    }
}

/// The two descriptions every tenth device has in the steady state.
pub const BOTH: [&str; 2] = ["databases_out_of_date", "many_viruses_detected"];

/// `s` with every id in an allocation of its own, as a snapshot fetched in an earlier pass has:
/// ids are shared on clone, so a ledger built from the very snapshot it is then reconciled with
/// would compare its keys with themselves (one pointer), not with another pass's strings.
pub fn fetched_again(s: &StatusSnapshot) -> StatusSnapshot {
    let mut s = s.clone();
    s.tenant = TenantId::new(s.tenant.as_str());
    for d in &mut s.devices {
        d.device.id = DeviceId::new(d.device.id.as_str());
    }
    s
}

/// A ledger holding an open ticket for every active description of `snapshots`, built from
/// copies of them ([`fetched_again`]).
pub fn steady_ledger(ctx: &Context, snapshots: &[StatusSnapshot]) -> Ledger {
    let now = now();
    let mut ledger = Ledger::new();
    for s in snapshots {
        let s = &fetched_again(s);
        for a in reconcile(s, ctx, &ledger, now).actions {
            let Action::Create(cr) = a else { continue };
            ledger.apply(&cr.transition(), now).unwrap();
            let ticket = TicketRef { id: PsaId(1), number: None };
            ledger.apply(&Transition::Opened { key: cr.key, ticket }, now).unwrap();
        }
    }
    ledger
}
