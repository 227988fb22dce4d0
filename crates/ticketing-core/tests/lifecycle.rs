//! Issue 20, the ticket lifecycle beyond the guide: table-driven scenarios per feature (flap
//! guard, reopen window, maintenance windows, priority follows severity), the pure maintenance
//! window function against a minute-by-minute reading of the wall clock, storage compatibility,
//! and the property that with every feature off the decisions are those of today (the frozen
//! naive reference of `benches/naive/mod.rs`).

mod support;

#[path = "../benches/naive/mod.rs"]
mod naive;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;
use support::*;
use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::decide::{Action, EventDecision, SkipReason, decide_event, reconcile};
use ticketing_core::ledger::{Ledger, LedgerEntry, Recovery, TicketState, Transition, UpdateReason};
use ticketing_core::maintenance::{MaintenanceWindow, Schedule, glob_match, window_at};
use ticketing_core::model::*;
use ticketing_core::ports::TicketUpdate;
use ticketing_core::rules::{Problem, RowId, Rule, RuleSet};
use ticketing_core::ticket::{TicketKey, TicketNote, TicketRef, Urgency};

const DB: &str = "databases_out_of_date";

fn row(level: StatusLevel) -> RowId {
    RowId::Status(Product::SecurityCenter, level, desc(DB))
}

/// One scenario's settings.
#[derive(Default, Clone)]
struct Cfg {
    delay: u32,
    reopen: Option<u32>,
    follows: bool,
    critical_row_off: bool,
    windows: Vec<MaintenanceWindow>,
}

impl Cfg {
    fn rules(&self) -> RuleSet {
        let mut rules = all_on();
        for level in StatusLevel::ALL {
            let r = rules.rows.get_mut(&row(level)).unwrap();
            r.create_delay_minutes = self.delay;
            r.reopen_hours = self.reopen;
        }
        if self.critical_row_off {
            rules.rows.get_mut(&row(StatusLevel::Critical)).unwrap().enabled = false;
        }
        if self.follows {
            rules.priority_follows_severity.insert(Product::SecurityCenter);
        }
        rules.maintenance = self.windows.clone();
        assert_eq!(rules.validate(&Catalog::example()), vec![], "scenario rules are valid");
        rules
    }
}

fn once(id: &str, tenant: &str, device: Option<&str>, from_min: i64, to_min: i64) -> MaintenanceWindow {
    MaintenanceWindow {
        id: id.into(),
        tenant: TenantId::new(tenant),
        device: device.map(Into::into),
        schedule: Schedule::Once { start: now() + Duration::minutes(from_min), end: now() + Duration::minutes(to_min) },
    }
}

fn nightly() -> Vec<MaintenanceWindow> {
    vec![once("nightly", "ksc:main/vs:1", None, 60, 120)]
}

/// One step: minutes after `now()`, the state of "databases out of date" on computer `pc`
/// (`-` inactive, `W` Warning, `C` Critical, `T` a technician closes the open ticket and it
/// stays Warning), and what the reconciliation decides, summarised.
type Step = (i64, char, &'static str);

fn summary(rec: &ticketing_core::Reconciliation) -> String {
    let mut out: Vec<String> = rec
        .actions
        .iter()
        .map(|a| match a {
            Action::Create(c) => {
                format!("create:{}", if c.draft.urgency == Urgency::Critical { "critical" } else { "warning" })
            }
            Action::Close(_) => "close".into(),
            Action::Clear { .. } => "clear".into(),
            Action::Delay { .. } => "delay".into(),
            Action::DelayCleared { .. } => "delay_cleared".into(),
            Action::Reopen(_) => "reopen".into(),
            Action::Update(_) => "update".into(),
            Action::Storm(_) | Action::OpenStorm(_) | Action::StormCleared(_) => "storm".into(),
        })
        .collect();
    out.extend(rec.skipped.iter().map(|(_, r)| match r {
        SkipReason::Maintenance { window } => format!("maintenance:{window}"),
        r => r.label().to_owned(),
    }));
    out.join(",")
}

/// Runs a scenario: each step's reconciliation is persisted and answered as the engine would
/// (create → opened, close → closed and its note added, update → updated).
fn run(name: &str, cfg: &Cfg, steps: &[Step]) -> Ledger {
    let rules = cfg.rules();
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut ids = 0;
    for (i, (minute, state, expected)) in steps.iter().enumerate() {
        let at = now() + Duration::minutes(*minute);
        let key = TicketKey::Status {
            product: Product::SecurityCenter,
            tenant: tenant(),
            device: DeviceId::new("pc"),
            description: desc(DB),
        };
        if *state == 'T' {
            ledger.apply(&Transition::ClosedByTechnician { key: key.clone() }, at).unwrap();
        }
        let active: Vec<(&str, StatusLevel)> = match state {
            '-' => vec![],
            'C' => vec![(DB, StatusLevel::Critical)],
            _ => vec![(DB, StatusLevel::Warning)],
        };
        let rec = reconcile(&snapshot(vec![device_status("pc", &active)]), &c, &ledger, at);
        assert_eq!(summary(&rec), *expected, "{name}, step {} (minute {minute}, {state})", i + 1);
        for a in &rec.actions {
            ledger.apply(&a.transition(), at).unwrap_or_else(|e| panic!("{name}: {e}"));
            let key = a.key().clone();
            match a {
                Action::Create(_) => {
                    ids += 1;
                    ledger.apply(&Transition::Opened { key, ticket: TicketRef { id: PsaId(ids), number: None } }, at)
                }
                Action::Close(_) => ledger
                    .apply(&Transition::Closed { key: key.clone() }, at)
                    .and_then(|()| ledger.apply(&Transition::NoteAdded { key }, at)),
                Action::Reopen(_) | Action::Update(_) => ledger.apply(&Transition::Updated { key }, at),
                _ => Ok(()),
            }
            .unwrap();
        }
    }
    ledger
}

#[test]
fn flap_guard_scenarios() {
    let d10 = Cfg { delay: 10, ..Cfg::default() };
    let table: Vec<(&str, Cfg, Vec<Step>)> = vec![
        ("no delay is the guide: a ticket at first sight", Cfg::default(), vec![(0, 'W', "create:warning")]),
        (
            "clears during the delay: never a ticket",
            d10.clone(),
            vec![(0, 'W', "delay"), (5, '-', "delay_cleared"), (20, '-', ""), (30, '-', "")],
        ),
        (
            "persists past the delay",
            d10.clone(),
            vec![(0, 'W', "delay"), (5, 'W', "pending"), (10, 'W', "create:warning")],
        ),
        ("one minute short of the delay is still pending", d10.clone(), vec![(0, 'W', "delay"), (9, 'W', "pending")]),
        (
            "a ticket made after the delay closes as usual",
            d10.clone(),
            vec![(0, 'W', "delay"), (10, 'W', "create:warning"), (20, '-', "close"), (25, '-', "")],
        ),
        (
            "flapping: each return starts the delay again",
            d10.clone(),
            vec![
                (0, 'W', "delay"),
                (5, '-', "delay_cleared"),
                (6, 'W', "delay"),
                (11, '-', "delay_cleared"),
                (12, 'W', "delay"),
                (21, 'W', "pending"),
                (22, 'W', "create:warning"),
            ],
        ),
        (
            "a level change during the delay keeps the first sight",
            d10.clone(),
            vec![(0, 'W', "delay"), (5, 'C', "pending"), (10, 'C', "create:critical")],
        ),
        (
            "a second generation waits again",
            d10.clone(),
            vec![
                (0, 'W', "delay"),
                (10, 'W', "create:warning"),
                (20, '-', "close"),
                (30, 'W', "delay"),
                (40, 'W', "create:warning"),
            ],
        ),
        (
            "a technician-closed ticket is not re-created while it persists, then waits again",
            d10,
            vec![
                (0, 'W', "delay"),
                (10, 'W', "create:warning"),
                (15, 'T', ""),
                (20, '-', "clear"),
                (30, 'W', "delay"),
                (40, 'W', "create:warning"),
            ],
        ),
    ];
    for (name, cfg, steps) in &table {
        run(name, cfg, steps);
    }
    assert!(table.len() >= 9);
}

#[test]
fn reopen_scenarios() {
    let r2 = Cfg { reopen: Some(2), ..Cfg::default() };
    let table: Vec<(&str, Cfg, Vec<Step>)> = vec![
        (
            "returns within the window: the ticket is reopened",
            r2.clone(),
            vec![(0, 'W', "create:warning"), (10, '-', "close"), (30, 'W', "reopen"), (40, 'W', "")],
        ),
        (
            "returns after the reopen window: a new ticket",
            r2.clone(),
            vec![(0, 'W', "create:warning"), (10, '-', "close"), (130, 'W', "create:warning")],
        ),
        (
            "returns one minute inside the window",
            r2.clone(),
            vec![(0, 'W', "create:warning"), (10, '-', "close"), (129, 'W', "reopen")],
        ),
        (
            "a ticket closed by a technician is not reopened",
            r2.clone(),
            vec![(0, 'W', "create:warning"), (10, 'T', ""), (20, '-', "clear"), (30, 'W', "create:warning")],
        ),
        (
            "reopened, closed and reopened again",
            r2.clone(),
            vec![
                (0, 'W', "create:warning"),
                (10, '-', "close"),
                (20, 'W', "reopen"),
                (30, '-', "close"),
                (40, 'W', "reopen"),
            ],
        ),
        (
            "off (the guide): a new ticket",
            Cfg::default(),
            vec![(0, 'W', "create:warning"), (10, '-', "close"), (20, 'W', "create:warning")],
        ),
        ("returns at another level", r2, vec![(0, 'W', "create:warning"), (10, '-', "close"), (20, 'C', "reopen")]),
        (
            "with the flap guard: a flap does not reopen, a lasting return does",
            Cfg { delay: 10, reopen: Some(2), ..Cfg::default() },
            vec![
                (0, 'W', "delay"),
                (10, 'W', "create:warning"),
                (20, '-', "close"),
                (30, 'W', "delay"),
                (35, '-', "delay_cleared"),
                (40, 'W', "delay"),
                (50, 'W', "reopen"),
            ],
        ),
        (
            "the window counts to the return, not to the end of the delay",
            Cfg { delay: 30, reopen: Some(1), ..Cfg::default() },
            vec![
                (0, 'W', "delay"),
                (30, 'W', "create:warning"),
                (40, '-', "close"),
                (95, 'W', "delay"),
                (125, 'W', "reopen"),
            ],
        ),
    ];
    for (name, cfg, steps) in &table {
        run(name, cfg, steps);
    }
}

#[test]
fn maintenance_scenarios() {
    let table: Vec<(&str, Cfg, Vec<Step>)> = vec![
        (
            "clears during a maintenance window: its ticket still closes",
            Cfg { windows: nightly(), ..Cfg::default() },
            vec![(0, 'W', "create:warning"), (70, '-', "close")],
        ),
        (
            "window ends while active: the ticket comes with the first poll after it",
            Cfg { windows: nightly(), ..Cfg::default() },
            vec![(70, 'W', "maintenance:nightly"), (119, 'W', "maintenance:nightly"), (120, 'W', "create:warning")],
        ),
        (
            "a problem that starts and ends inside the window never gets a ticket",
            Cfg { windows: nightly(), ..Cfg::default() },
            vec![(70, 'W', "maintenance:nightly"), (80, '-', ""), (130, '-', "")],
        ),
        (
            "an open ticket stays open through the window",
            Cfg { windows: nightly(), ..Cfg::default() },
            vec![(0, 'W', "create:warning"), (70, 'W', ""), (130, 'W', "")],
        ),
        (
            "a device pattern that does not match",
            Cfg { windows: vec![once("srv", "ksc:main/vs:1", Some("SRV-*"), 60, 120)], ..Cfg::default() },
            vec![(70, 'W', "create:warning")],
        ),
        (
            "a device pattern that matches, whatever the case",
            Cfg { windows: vec![once("pcs", "ksc:main/vs:1", Some("pc-?*"), 60, 120)], ..Cfg::default() },
            vec![(70, 'W', "maintenance:pcs"), (120, 'W', "create:warning")],
        ),
        (
            "another tenant's window",
            Cfg { windows: vec![once("other", "ksc:main/vs:2", None, 60, 120)], ..Cfg::default() },
            vec![(70, 'W', "create:warning")],
        ),
        (
            "the flap guard keeps counting during the window",
            Cfg { delay: 10, windows: nightly(), ..Cfg::default() },
            vec![(55, 'W', "delay"), (65, 'W', "maintenance:nightly"), (120, 'W', "create:warning")],
        ),
        (
            "a reopen waits for the window's end",
            Cfg { reopen: Some(2), windows: nightly(), ..Cfg::default() },
            vec![
                (0, 'W', "create:warning"),
                (10, '-', "close"),
                (70, 'W', "maintenance:nightly"),
                (120, 'W', "reopen"),
            ],
        ),
    ];
    for (name, cfg, steps) in &table {
        run(name, cfg, steps);
    }
}

#[test]
fn priority_follows_severity_scenarios() {
    let on = Cfg { follows: true, ..Cfg::default() };
    let table: Vec<(&str, Cfg, Vec<Step>)> = vec![
        (
            "Warning to Critical raises the ticket",
            on.clone(),
            vec![(0, 'W', "create:warning"), (10, 'C', "update"), (20, 'C', "")],
        ),
        (
            "severity drops back: nothing changes, and no second raise",
            on.clone(),
            vec![(0, 'W', "create:warning"), (10, 'C', "update"), (20, 'W', ""), (30, 'C', "")],
        ),
        ("off (the guide): nothing", Cfg::default(), vec![(0, 'W', "create:warning"), (10, 'C', "")]),
        ("a ticket that started Critical", on.clone(), vec![(0, 'C', "create:critical"), (10, 'W', ""), (20, 'C', "")]),
        (
            "raised, then cleared: it closes",
            on,
            vec![(0, 'W', "create:warning"), (10, 'C', "update"), (20, '-', "close")],
        ),
        (
            "the Critical row is off: nothing to follow",
            Cfg { follows: true, critical_row_off: true, ..Cfg::default() },
            vec![(0, 'W', "create:warning"), (10, 'C', "")],
        ),
        (
            "a raise is not a create: it happens during maintenance",
            Cfg { follows: true, windows: nightly(), ..Cfg::default() },
            vec![(0, 'W', "create:warning"), (70, 'C', "update")],
        ),
        (
            "a reopened ticket can be raised again",
            Cfg { follows: true, reopen: Some(2), ..Cfg::default() },
            vec![
                (0, 'W', "create:warning"),
                (10, 'C', "update"),
                (20, '-', "close"),
                (30, 'W', "reopen"),
                (40, 'C', "update"),
            ],
        ),
    ];
    for (name, cfg, steps) in &table {
        run(name, cfg, steps);
    }
}

fn only_action(cfg: &Cfg, steps: &[(i64, char)]) -> (Ledger, Vec<Action>) {
    let rules = cfg.rules();
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut last = Vec::new();
    for (minute, state) in steps {
        let at = now() + Duration::minutes(*minute);
        let active: Vec<(&str, StatusLevel)> = match state {
            '-' => vec![],
            'C' => vec![(DB, StatusLevel::Critical)],
            _ => vec![(DB, StatusLevel::Warning)],
        };
        let rec = reconcile(&snapshot(vec![device_status("pc", &active)]), &c, &ledger, at);
        for a in &rec.actions {
            ledger.apply(&a.transition(), at).unwrap();
            let key = a.key().clone();
            let _ = match a {
                Action::Create(_) => {
                    ledger.apply(&Transition::Opened { key, ticket: TicketRef { id: PsaId(5), number: None } }, at)
                }
                Action::Close(_) => ledger
                    .apply(&Transition::Closed { key: key.clone() }, at)
                    .and_then(|()| ledger.apply(&Transition::NoteAdded { key }, at)),
                Action::Reopen(_) | Action::Update(_) => ledger.apply(&Transition::Updated { key }, at),
                _ => Ok(()),
            };
        }
        last = rec.actions;
    }
    (ledger, last)
}

#[test]
fn a_reopen_sets_the_new_status_the_rows_priority_and_a_due_time_from_now_with_a_unique_note() {
    let cfg = Cfg { reopen: Some(2), ..Cfg::default() };
    let (_, actions) = only_action(&cfg, &[(0, 'W'), (10, '-'), (30, 'C')]);
    let [Action::Reopen(u)] = actions.as_slice() else { panic!("{actions:?}") };
    let at = now() + Duration::minutes(30);
    assert_eq!(
        u.update,
        TicketUpdate { status: Some(PsaId(1)), priority: Some(PsaId(4)), due: Some(at + Duration::hours(12)) }
    );
    assert_eq!(u.ticket.id, PsaId(5));
    assert_eq!(u.urgency, Urgency::Critical);
    assert!(u.note.text.contains("20 minute(s) after this ticket was closed automatically"), "{}", u.note.text);
    assert!(u.note.marker.ends_with("/reopen/1"), "{}", u.note.marker);
    // A second cycle: the close and reopen markers differ from the first's.
    let (ledger, actions) = only_action(&cfg, &[(0, 'W'), (10, '-'), (20, 'W'), (30, '-'), (40, 'W')]);
    let [Action::Reopen(u2)] = actions.as_slice() else { panic!("{actions:?}") };
    assert!(u2.note.marker.ends_with("/reopen/2"), "{}", u2.note.marker);
    let e = ledger.entries().next().unwrap();
    assert_eq!(e.generation, 1, "a reopen keeps the ticket and its generation");
    assert_eq!(e.reopens, 2);
    assert_eq!(e.note_marker("close"), format!("{}/close/2", e.idempotency_key));
}

#[test]
fn a_raise_takes_the_critical_rows_priority_and_due_time() {
    let cfg = Cfg { follows: true, ..Cfg::default() };
    let (ledger, actions) = only_action(&cfg, &[(0, 'W'), (10, 'C')]);
    let [Action::Update(u)] = actions.as_slice() else { panic!("{actions:?}") };
    let at = now() + Duration::minutes(10);
    assert_eq!(u.update, TicketUpdate { status: None, priority: Some(PsaId(4)), due: Some(at + Duration::hours(12)) });
    assert!(u.note.text.contains("is now Critical (it was Warning)"), "{}", u.note.text);
    assert!(u.note.marker.ends_with("/severity"), "{}", u.note.marker);
    assert_eq!(ledger.entries().next().unwrap().urgency, Urgency::Critical);
}

#[test]
fn the_pending_skip_says_since_and_until() {
    let cfg = Cfg { delay: 15, ..Cfg::default() };
    let rules = cfg.rules();
    let c = ctx(&rules);
    let snap = snapshot(vec![device_status("pc", &[(DB, StatusLevel::Warning)])]);
    let mut ledger = Ledger::new();
    let rec = reconcile(&snap, &c, &ledger, now());
    let [Action::Delay { since, until, .. }] = rec.actions.as_slice() else { panic!("{rec:?}") };
    assert_eq!((*since, *until), (now(), now() + Duration::minutes(15)));
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    assert_eq!(ledger.get(rec.actions[0].key()).unwrap().state.name(), "delayed");
    assert!(!ledger.get(rec.actions[0].key()).unwrap().state.is_live());
    let rec = reconcile(&snap, &c, &ledger, now() + Duration::minutes(3));
    assert_eq!(rec.skipped[0].1, SkipReason::Pending { since: now(), until: now() + Duration::minutes(15) });
    // A delayed entry whose problem clears is removed: the ledger is as it was.
    ledger.apply(&Transition::DelayCleared { key: rec.skipped[0].0.clone() }, now()).unwrap();
    assert!(ledger.is_empty());
}

#[test]
fn a_refused_reopen_falls_back_to_a_new_ticket_and_a_refused_raise_to_open() {
    let cfg = Cfg { reopen: Some(2), follows: true, ..Cfg::default() };
    let rules = cfg.rules();
    let c = ctx(&rules);
    let snap = |s: &[(&str, StatusLevel)]| snapshot(vec![device_status("pc", s)]);
    let (mut ledger, _) = only_action(&cfg, &[(0, 'W'), (10, '-')]);
    let rec = reconcile(&snap(&[(DB, StatusLevel::Warning)]), &c, &ledger, now() + Duration::minutes(20));
    let key = rec.actions[0].key().clone();
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    assert_eq!(ledger.get(&key).unwrap().state.name(), "updating");
    assert!(ledger.recovery().iter().any(|r| matches!(r, ticketing_core::ledger::Recovery::Update(k) if *k == key)));
    ledger.apply(&Transition::UpdateRefused { key: key.clone(), reason: "cannot update".into() }, now()).unwrap();
    let rec = reconcile(&snap(&[(DB, StatusLevel::Warning)]), &c, &ledger, now() + Duration::minutes(21));
    assert_eq!(summary(&rec), "create:warning");
    // A refused raise: back to open, not raised again.
    let (mut ledger, actions) = only_action(&Cfg { follows: true, ..Cfg::default() }, &[(0, 'W')]);
    assert_eq!(actions.len(), 1);
    let rec = reconcile(&snap(&[(DB, StatusLevel::Critical)]), &c, &ledger, now());
    ledger.apply(&rec.actions[0].transition(), now()).unwrap();
    ledger.apply(&Transition::UpdateRefused { key: key.clone(), reason: "no".into() }, now()).unwrap();
    assert_eq!(ledger.get(&key).unwrap().state.name(), "open");
    assert_eq!(summary(&reconcile(&snap(&[(DB, StatusLevel::Critical)]), &c, &ledger, now())), "");
}

fn ev_at(minutes_ago: i64, device: Option<&str>) -> Event {
    let mut e =
        event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::minutes(minutes_ago));
    e.device = device.map(|n| Device { id: DeviceId::new("h"), name: n.into() });
    e
}

#[test]
fn event_maintenance_scenarios() {
    // (name, windows relative to now(), event age in minutes, device, expected)
    type Row = (&'static str, Vec<MaintenanceWindow>, i64, Option<&'static str>, &'static str);
    let table: Vec<Row> = vec![
        ("no window: created", vec![], 5, Some("ACME-PC-01"), "create"),
        (
            "decided inside a window",
            vec![once("w", "ksc:main/vs:1", None, -30, 30)],
            5,
            Some("ACME-PC-01"),
            "maintenance:w",
        ),
        (
            "occurred inside a window, read after it",
            vec![once("w", "ksc:main/vs:1", None, -60, -30)],
            45,
            Some("ACME-PC-01"),
            "maintenance:w",
        ),
        (
            "occurred before a window, read after it",
            vec![once("w", "ksc:main/vs:1", None, -60, -30)],
            90,
            Some("ACME-PC-01"),
            "create",
        ),
        (
            "a device window and an event without a computer",
            vec![once("w", "ksc:main/vs:1", Some("ACME-*"), -30, 30)],
            5,
            None,
            "create",
        ),
        (
            "a device window that matches",
            vec![once("w", "ksc:main/vs:1", Some("acme-*"), -30, 30)],
            5,
            Some("ACME-PC-01"),
            "maintenance:w",
        ),
        ("another tenant's window", vec![once("w", "ksc:main/vs:9", None, -30, 30)], 5, Some("ACME-PC-01"), "create"),
    ];
    for (name, windows, age, device, expected) in table {
        let mut rules = all_on();
        rules.maintenance = windows;
        let got = match decide_event(&ev_at(age, device), &ctx(&rules), &Ledger::new(), now()) {
            EventDecision::Create(_) => "create".to_owned(),
            EventDecision::Note(_) => "note".to_owned(),
            EventDecision::Storm(_) | EventDecision::OpenStorm(_) => "storm".to_owned(),
            EventDecision::Skip { reason: SkipReason::Maintenance { window }, .. } => format!("maintenance:{window}"),
            EventDecision::Skip { reason, .. } => reason.label().to_owned(),
        };
        assert_eq!(got, expected, "{name}");
    }
}

// --- recurrence notes ------------------------------------------------------------------------

const VIRUS: &str = "GNRL_EV_VIRUS_FOUND";
const TASK: &str = "KLPRCI_TaskState";

/// One scenario's recurrence settings: the window of the Critical and Warning event rows of
/// Security Center, whether the PSA answers creates (a ticket stays planned otherwise), and
/// maintenance windows.
#[derive(Default, Clone)]
struct Rec {
    critical: Option<u32>,
    warning: Option<u32>,
    unanswered: bool,
    windows: Vec<MaintenanceWindow>,
}

impl Rec {
    fn rules(&self) -> RuleSet {
        let mut rules = all_on();
        rules.rows.get_mut(&sev(Product::SecurityCenter, Severity::Critical)).unwrap().recurrence_hours = self.critical;
        rules.rows.get_mut(&sev(Product::SecurityCenter, Severity::Warning)).unwrap().recurrence_hours = self.warning;
        rules.maintenance = self.windows.clone();
        assert_eq!(rules.validate(&Catalog::example()), vec![], "scenario rules are valid");
        rules
    }
}

/// One step: minutes after `now()` at which it is decided, minutes after `now()` at which the
/// event occurred, what happens, and the decision summarised (`create`, `note:<n>` for the n-th
/// recurrence, a skip's label). What happens: `A` a virus on pc1 (Critical), `B` another type
/// on pc1, `a` a virus on pc2, `W` a virus on pc1 at Warning, `X` a virus with no computer, `R`
/// the previous event read again, `T` a technician closes every open ticket (no decision).
type RecStep = (i64, i64, char, &'static str);

fn recurring_event(i: usize, occurred_min: i64, what: char) -> Event {
    let (severity, device, event_type) = match what {
        'B' => (Severity::Critical, Some("pc1"), TASK),
        'a' => (Severity::Critical, Some("pc2"), VIRUS),
        'W' => (Severity::Warning, Some("pc1"), VIRUS),
        'X' => (Severity::Critical, None, VIRUS),
        _ => (Severity::Critical, Some("pc1"), VIRUS),
    };
    let mut e = event(Product::SecurityCenter, EventClass::Severity(severity), Duration::zero());
    e.occurred_at = now() + Duration::minutes(occurred_min);
    e.source_id = SourceEventId::new(format!("e{i}"));
    e.device = device.map(|d| Device { id: DeviceId::new(d), name: d.to_uppercase() });
    e.event_type = event_type.into();
    e
}

/// Runs a recurrence scenario as the engine would: each decision's transition persisted, then
/// the outbox drained (creates answered unless `unanswered`, recurrence notes added). Returns
/// the ledger and every note added, in order.
fn run_recurrence(name: &str, cfg: &Rec, steps: &[RecStep]) -> (Ledger, Vec<TicketNote>) {
    let rules = cfg.rules();
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let mut added = Vec::new();
    let mut ids = 0;
    let mut last = None;
    for (i, (decided, occurred, what, expected)) in steps.iter().enumerate() {
        let at = now() + Duration::minutes(*decided);
        if *what == 'T' {
            let open: Vec<TicketKey> =
                ledger.entries().filter(|e| e.state.name() == "open").map(|e| e.key.clone()).collect();
            for key in open {
                ledger.apply(&Transition::ClosedByTechnician { key }, at).unwrap();
            }
            continue;
        }
        let e = if *what == 'R' { last.clone().unwrap() } else { recurring_event(i, *occurred, *what) };
        let got = match decide_event(&e, &c, &ledger, at) {
            EventDecision::Create(create) => {
                ledger.apply(&create.transition(), at).unwrap_or_else(|err| panic!("{name}: {err}"));
                "create".to_owned()
            }
            EventDecision::Note(n) => {
                assert_eq!(n.event, ticketing_core::decide::event_key(&e), "{name}");
                ledger.apply(&n.transition(), at).unwrap_or_else(|err| panic!("{name}: {err}"));
                format!("note:{}", n.note.marker.rsplit('/').next().unwrap())
            }
            EventDecision::Storm(_) | EventDecision::OpenStorm(_) => unreachable!("{name}: storms are off here"),
            EventDecision::Skip { reason, .. } => reason.label().to_owned(),
        };
        assert_eq!(got, *expected, "{name}, step {} (minute {decided}, {what})", i + 1);
        last = Some(e);
        // The outbox, as the engine drains it.
        for work in ledger.recovery() {
            let key = work.key().clone();
            let t = match work {
                Recovery::LookUpThenCreate(_) if cfg.unanswered => continue,
                Recovery::LookUpThenCreate(_) => {
                    ids += 1;
                    Transition::Opened { key, ticket: TicketRef { id: PsaId(ids), number: None } }
                }
                Recovery::AddRecurrenceNote(_) => {
                    let note = ledger.get(&key).and_then(LedgerEntry::recurrence_note).unwrap().clone();
                    added.push(note.clone());
                    Transition::RecurrenceNoted { key, marker: note.marker }
                }
                other => panic!("{name}: unexpected work {other:?}"),
            };
            ledger.apply(&t, at).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }
    (ledger, added)
}

#[test]
fn recurrence_scenarios() {
    let h2 = Rec { critical: Some(2), ..Rec::default() };
    let table: Vec<(&str, Rec, Vec<RecStep>)> = vec![
        (
            "off (the guide): every event its own ticket",
            Rec::default(),
            vec![(0, 0, 'A', "create"), (10, 10, 'A', "create")],
        ),
        (
            "recurs within the window: noted on the open ticket, counted",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (30, 30, 'A', "note:1"), (60, 60, 'A', "note:2"), (119, 119, 'A', "note:3")],
        ),
        (
            "recurs after the window: a new ticket, which takes the later recurrences",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (120, 120, 'A', "create"), (150, 150, 'A', "note:1")],
        ),
        (
            "recurs after the ticket was closed: a new ticket",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (10, 10, 'T', ""), (20, 20, 'A', "create"), (30, 30, 'A', "note:1")],
        ),
        (
            "another event type on the same computer: its own ticket",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (10, 10, 'B', "create"), (20, 20, 'B', "note:1"), (30, 30, 'A', "note:1")],
        ),
        (
            "the same type on another computer: its own ticket",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (10, 10, 'a', "create")],
        ),
        (
            "an event without a computer: its own ticket",
            h2.clone(),
            vec![(0, 0, 'X', "create"), (10, 10, 'X', "create")],
        ),
        (
            "while the ticket is still planned: counted, the note waits for the create",
            Rec { unanswered: true, ..h2.clone() },
            vec![(0, 0, 'A', "create"), (1, 1, 'A', "note:1"), (2, 2, 'A', "note:2")],
        ),
        (
            "a late arrival of an earlier occurrence counts (the events' own times)",
            h2.clone(),
            vec![(60, 60, 'A', "create"), (61, 0, 'A', "note:1")],
        ),
        (
            "the window counts in the events' times, not in when they are read",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (300, 60, 'A', "note:1"), (301, 150, 'A', "create")],
        ),
        (
            "the recurring event's row decides: its window off, its own ticket",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (10, 10, 'W', "create"), (20, 20, 'W', "create")],
        ),
        (
            "a window on the Warning row folds into the Critical ticket of the same type",
            Rec { warning: Some(2), ..h2.clone() },
            vec![(0, 0, 'A', "create"), (10, 10, 'W', "note:1")],
        ),
        (
            "the ticketed event read again is still one ticket",
            h2.clone(),
            vec![(0, 0, 'A', "create"), (5, 0, 'R', "already_ticketed"), (10, 10, 'A', "note:1")],
        ),
        (
            "during a maintenance window: neither a ticket nor a note",
            Rec { windows: vec![once("w", "ksc:main/vs:1", None, 20, 40)], ..h2 },
            vec![(0, 0, 'A', "create"), (30, 30, 'A', "maintenance"), (50, 50, 'A', "note:1")],
        ),
    ];
    for (name, cfg, steps) in &table {
        run_recurrence(name, cfg, steps);
    }
    assert!(table.len() >= 8);
}

#[test]
fn a_recurrence_note_says_how_many_times_and_when_with_a_stable_unique_marker() {
    let cfg = Rec { critical: Some(24), ..Rec::default() };
    let steps: Vec<RecStep> = (0..12).map(|i| (i * 10, i * 10, 'A', "")).collect();
    let rules = cfg.rules();
    let c = ctx(&rules);
    let (mut ledger, _) = run_recurrence("first", &cfg, &[(0, 0, 'A', "create")]);
    let mut texts = Vec::new();
    for (i, (decided, occurred, what, _)) in steps.iter().enumerate().skip(1) {
        let e = recurring_event(i, *occurred, *what);
        let at = now() + Duration::minutes(*decided);
        let EventDecision::Note(n) = decide_event(&e, &c, &ledger, at) else { panic!("step {i}") };
        // Deciding again before it is recorded names the same marker (stable across retries).
        let EventDecision::Note(again) = decide_event(&e, &c, &ledger, at) else { panic!() };
        assert_eq!(again, n);
        ledger.apply(&n.transition(), at).unwrap();
        // Recorded once: the same transition again does not fit (counted once).
        assert!(ledger.apply(&n.transition(), at).is_err());
        texts.push(n.note);
    }
    let ik = ledger.entries().next().unwrap().idempotency_key;
    assert_eq!(texts[0].marker, format!("{ik}/recurrence/1"));
    assert_eq!(
        texts[0].text,
        "The event recurred (2nd time) at 2026-11-20 10:10:00 UTC: Kaspersky Security Center: Critical event: \
         Malicious object detected on PC1\nEvent id: e1"
    );
    let ordinals: Vec<&str> =
        texts.iter().map(|n| n.text.split(['(', ')']).nth(1).unwrap().trim_end_matches(" time")).collect();
    assert_eq!(ordinals, ["2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "11th", "12th"]);
    let markers: std::collections::BTreeSet<&str> = texts.iter().map(|n| n.marker.as_str()).collect();
    assert_eq!(markers.len(), texts.len(), "every marker unique");
    let r = ledger.entries().next().unwrap().recurrence.as_deref().unwrap();
    assert_eq!((r.count, r.notes.len()), (11, 11));
}

#[test]
fn a_note_for_a_planned_ticket_waits_for_its_create_then_each_lands_once_in_order() {
    let cfg = Rec { critical: Some(2), unanswered: true, ..Rec::default() };
    let (mut ledger, added) =
        run_recurrence("planned", &cfg, &[(0, 0, 'A', "create"), (1, 1, 'A', "note:1"), (2, 2, 'A', "note:2")]);
    assert!(added.is_empty());
    let key = ledger.entries().next().unwrap().key.clone();
    assert_eq!(ledger.recovery(), vec![Recovery::LookUpThenCreate(key.clone())], "the create first, alone");
    ledger
        .apply(&Transition::Opened { key: key.clone(), ticket: TicketRef { id: PsaId(9), number: None } }, now())
        .unwrap();
    assert_eq!(ledger.recovery(), vec![Recovery::AddRecurrenceNote(key.clone())]);
    let first = ledger.get(&key).unwrap().recurrence_note().unwrap().clone();
    assert!(first.marker.ends_with("/recurrence/1"), "{}", first.marker);
    // A stale answer (the wrong marker) does not pop a note.
    let wrong = Transition::RecurrenceNoted { key: key.clone(), marker: "kmsp-x/recurrence/2".into() };
    assert!(ledger.apply(&wrong, now()).is_err());
    ledger.apply(&Transition::RecurrenceNoted { key: key.clone(), marker: first.marker }, now()).unwrap();
    let second = ledger.get(&key).unwrap().recurrence_note().unwrap().clone();
    assert!(second.marker.ends_with("/recurrence/2"), "{}", second.marker);
    // Closed by a technician meanwhile: the note still belongs in the ticket's history.
    ledger.apply(&Transition::ClosedByTechnician { key: key.clone() }, now()).unwrap();
    assert_eq!(ledger.recovery(), vec![Recovery::AddRecurrenceNote(key.clone())]);
    ledger.apply(&Transition::RecurrenceNoted { key: key.clone(), marker: second.marker }, now()).unwrap();
    assert!(ledger.recovery().is_empty());
    assert_eq!(ledger.get(&key).unwrap().recurrence.as_deref().unwrap().count, 2);
    // A create the PSA refuses keeps its notes waiting (no ticket to add them to); the next
    // recurrence gets its own ticket.
    let (mut ledger, _) = run_recurrence("refused", &cfg, &[(0, 0, 'A', "create"), (1, 1, 'A', "note:1")]);
    let key = ledger.entries().next().unwrap().key.clone();
    ledger.apply(&Transition::Abandoned { key, reason: "invalid".into() }, now()).unwrap();
    assert!(ledger.recovery().is_empty());
    let rules = cfg.rules();
    let e = recurring_event(7, 2, 'A');
    assert!(matches!(decide_event(&e, &ctx(&rules), &ledger, now()), EventDecision::Create(_)));
}

#[test]
fn the_count_and_the_queued_notes_survive_a_restart_and_old_entries_load() {
    let cfg = Rec { critical: Some(2), unanswered: true, ..Rec::default() };
    let (ledger, _) = run_recurrence("before", &cfg, &[(0, 0, 'A', "create"), (1, 1, 'A', "note:1")]);
    let json = serde_json::to_string(&ledger).unwrap();
    assert!(json.contains(r#""recurrence":{"device":"pc1","event_type":"GNRL_EV_VIRUS_FOUND","first_at":"#), "{json}");
    let restored: Ledger = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, ledger);
    // The index is rebuilt: the next recurrence is the second, on the same ticket.
    let rules = cfg.rules();
    let EventDecision::Note(n) = decide_event(&recurring_event(5, 3, 'A'), &ctx(&rules), &restored, now()) else {
        panic!("noted after a restart")
    };
    assert!(n.note.marker.ends_with("/recurrence/2") && n.note.text.contains("(3rd time)"), "{n:?}");
    // An event entry stored before the feature has no recurrence: it loads, writes back the same,
    // and its event's recurrences get tickets of their own (it cannot say which computer it was).
    let old = r#"{"key":{"kind":"event","product":"security_center","tenant":"ksc:main/vs:1","source_id":"e0"},"generation":1,"idempotency_key":"kmsp-5","urgency":"critical","state":{"state":"open","ticket":{"id":3,"number":null}},"updated_at":"2026-11-20T10:00:00Z"}"#;
    let entry: LedgerEntry = serde_json::from_str(old).unwrap();
    assert_eq!(serde_json::to_string(&entry).unwrap(), old);
    let old_ledger = Ledger::from_entries([entry]);
    assert!(matches!(
        decide_event(&recurring_event(1, 1, 'A'), &ctx(&rules), &old_ledger, now()),
        EventDecision::Create(_)
    ));
    // A plan transition as older versions wrote it reads (no recurrence).
    let plan = serde_json::to_string(&Transition::Plan {
        key: ledger.entries().next().unwrap().key.clone(),
        generation: 1,
        draft: match ledger.entries().next().unwrap().state.clone() {
            TicketState::Planned { draft } => *draft,
            _ => unreachable!(),
        },
        recurrence: None,
        storm: None,
    })
    .unwrap();
    assert!(!plan.contains("recurrence"));
    assert!(matches!(serde_json::from_str::<Transition>(&plan).unwrap(), Transition::Plan { recurrence: None, .. }));
}

#[test]
fn the_recurrence_window_is_refused_where_it_does_not_apply() {
    use ticketing_core::edit::{EditError, RuleBook, RulePatch};
    let mut rules = all_on();
    let o365 = RowId::Event(Product::Office365, EventClass::Office365(Office365EventType::MalwareDetected));
    rules.rows.get_mut(&o365).unwrap().recurrence_hours = Some(2);
    rules.rows.get_mut(&row(StatusLevel::Warning)).unwrap().recurrence_hours = Some(2);
    rules.rows.get_mut(&sev(Product::EndpointCloud, Severity::Warning)).unwrap().recurrence_hours = Some(0);
    let got: Vec<(Option<RowId>, Field, Problem)> =
        rules.validate(&Catalog::example()).into_iter().map(|e| (e.row, e.field, e.problem)).collect();
    assert!(got.contains(&(Some(o365.clone()), Field::RecurrenceHours, Problem::NotApplicable)), "{got:?}");
    assert!(got.contains(&(Some(row(StatusLevel::Warning)), Field::RecurrenceHours, Problem::NotApplicable)));
    assert!(got.contains(&(
        Some(sev(Product::EndpointCloud, Severity::Warning)),
        Field::RecurrenceHours,
        Problem::OutOfRange { min: 1, max: 2160 }
    )));
    let mut book = RuleBook::new(RuleSet::default());
    let patch: RulePatch = serde_json::from_str(r#"{"recurrence_hours": 6}"#).unwrap();
    book.bulk_edit(&[sev(Product::SecurityCenter, Severity::Critical)], &patch).unwrap();
    assert_eq!(book.draft.rows[&sev(Product::SecurityCenter, Severity::Critical)].recurrence_hours, Some(6));
    let err = book.bulk_edit(&[o365], &patch).unwrap_err();
    assert!(matches!(err, EditError::Invalid(ref e) if e.field == Field::RecurrenceHours), "{err}");
    let off: RulePatch = serde_json::from_str(r#"{"recurrence_hours": null}"#).unwrap();
    book.bulk_edit(&[sev(Product::SecurityCenter, Severity::Critical)], &off).unwrap();
    assert_eq!(book.draft, RuleSet::default());
}

// --- title and description templates -----------------------------------------------------------

fn critical() -> RowId {
    sev(Product::SecurityCenter, Severity::Critical)
}

fn with_templates(row: &RowId, title: Option<&str>, description: Option<&str>) -> RuleSet {
    let mut rules = all_on();
    let r = rules.rows.get_mut(row).unwrap();
    r.title_template = title.map(Into::into);
    r.description_template = description.map(Into::into);
    rules
}

#[test]
fn template_validation_scenarios() {
    let status = row(StatusLevel::Warning);
    let o365 = RowId::Event(Product::Office365, EventClass::Office365(Office365EventType::PhishingDetected));
    // (name, row, field the template is in, template, expected problem: line, column, message)
    type Row = (&'static str, RowId, Field, &'static str, Option<(u32, u32, &'static str)>);
    let table: Vec<Row> = vec![
        ("fields of the row", critical(), Field::TitleTemplate, "{{ device.name }}: {{ what }} ({{ tenant }})", None),
        (
            "template with an unknown field",
            critical(),
            Field::TitleTemplate,
            "{{ devce.name }}",
            Some((1, 4, "unknown field `devce.name`")),
        ),
        (
            "an unknown attribute of a known field",
            critical(),
            Field::TitleTemplate,
            "{{ device.nme }}",
            Some((1, 4, "unknown field `device.nme`")),
        ),
        (
            "an unknown field on a later line, column in characters",
            critical(),
            Field::DescriptionTemplate,
            "Gerät:\n  é {{ nope }}",
            Some((2, 8, "unknown field `nope`")),
        ),
        (
            "a syntax error",
            critical(),
            Field::TitleTemplate,
            "{{ device.name ",
            Some((1, 11, "syntax error: unexpected end of input, expected end of variable block")),
        ),
        (
            "an unclosed block",
            critical(),
            Field::DescriptionTemplate,
            "{% if mailbox %}x",
            Some((1, 17, "syntax error: unexpected end of input, expected end of block")),
        ),
        (
            "an unknown filter",
            critical(),
            Field::TitleTemplate,
            "{{ tenant | nosuch }}",
            Some((1, 13, "unknown filter: filter nosuch is unknown")),
        ),
        (
            "a built-in filter",
            critical(),
            Field::TitleTemplate,
            "{{ device.name | upper }} {{ text | replace(\"Trojan\", \"T\") | lower | default(what) }}",
            None,
        ),
        (
            "a status field on an event row",
            critical(),
            Field::TitleTemplate,
            "{{ description }}",
            Some((1, 4, "unknown field `description`")),
        ),
        (
            "an event field on a status row",
            status.clone(),
            Field::TitleTemplate,
            "{{ event_type }}",
            Some((1, 4, "unknown field `event_type`")),
        ),
        (
            "a status row's own fields",
            status,
            Field::DescriptionTemplate,
            "{{ description }} on {{ device.name }} ({{ computer_status }}, {{ level }})",
            None,
        ),
        ("an Office 365 row: the mailbox", o365, Field::TitleTemplate, "{{ severity }} for {{ mailbox }}", None),
        (
            "a runaway loop runs out of its budget",
            critical(),
            Field::DescriptionTemplate,
            "{% for i in range(100000) %}x{% endfor %}",
            Some((1, 13, "engine ran out of fuel")),
        ),
        ("blank: the guide's text", critical(), Field::TitleTemplate, "  ", None),
    ];
    for (name, row, field, template, expected) in &table {
        let (title, description) =
            if *field == Field::TitleTemplate { (Some(*template), None) } else { (None, Some(*template)) };
        let errors = with_templates(row, title, description).validate(&Catalog::example());
        let got: Vec<(Option<RowId>, Field, Problem)> =
            errors.into_iter().map(|e| (e.row, e.field, e.problem)).collect();
        let want: Vec<(Option<RowId>, Field, Problem)> = expected
            .iter()
            .map(|(line, column, message)| {
                (
                    Some(row.clone()),
                    *field,
                    Problem::Template { line: *line, column: *column, message: (*message).into() },
                )
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
    assert!(table.len() >= 8);
    // The message names section, row, field and position.
    let errors = with_templates(&critical(), Some("{{ devce.name }}"), None).validate(&Catalog::example());
    assert_eq!(
        errors[0].to_string(),
        "Kaspersky Security Center: events, row \"Critical\" (security_center/event/critical): title_template line 1, \
         column 4: unknown field `devce.name`"
    );
}

#[test]
fn templates_are_refused_on_save_and_in_the_bulk_edit_and_shown_in_the_preview() {
    use ticketing_core::decide::preview_texts;
    use ticketing_core::edit::{EditError, RuleBook, RulePatch};
    let mut book = RuleBook::new(all_on());
    let bad: RulePatch = serde_json::from_str(r#"{"title_template": "{{ devce.name }}"}"#).unwrap();
    let err = book.bulk_edit(&[critical()], &bad).unwrap_err();
    assert!(
        matches!(&err, EditError::Invalid(e) if e.field == Field::TitleTemplate && matches!(e.problem, Problem::Template { line: 1, column: 4, .. })),
        "{err}"
    );
    // The same template on an event row and a status row: one of them cannot have it.
    let event_only: RulePatch = serde_json::from_str(r#"{"title_template": "{{ event_type }}"}"#).unwrap();
    assert!(book.bulk_edit(&[critical(), row(StatusLevel::Warning)], &event_only).is_err());
    assert!(!book.is_dirty(ticketing_core::Section::Events(Product::SecurityCenter)), "all or nothing");
    let good: RulePatch =
        serde_json::from_str(r#"{"title_template": "[{{ tenant }}] {{ what }} on {{ device.name }}"}"#).unwrap();
    book.bulk_edit(&[critical()], &good).unwrap();
    book.save(ticketing_core::Section::Events(Product::SecurityCenter), &Catalog::example()).unwrap();
    // A rule set written by hand (not through the edit) is refused on save too.
    book.draft.rows.get_mut(&critical()).unwrap().description_template = Some("{% if %}".into());
    let err = book.save(ticketing_core::Section::Events(Product::SecurityCenter), &Catalog::example()).unwrap_err();
    assert!(err.to_string().contains("description_template line 1, column 7: syntax error"), "{err}");
    // The preview: the row's sample as a ticket shows it.
    let rule = &book.saved.rows[&critical()];
    let (title, description) = preview_texts(&critical(), rule).unwrap();
    assert_eq!(title, "[ksc:main/vs:1] Malicious object detected on ACME-PC-01");
    assert!(
        description.starts_with("Trojan.Win32.Agent detected\n\nProduct: Kaspersky Security Center\n"),
        "{description}"
    );
    assert!(description.ends_with("\n\nmsp-ticketing key: event|security_center|ksc:main/vs:1|1043"), "{description}");
    let status_rule = Rule {
        title_template: Some("{{ level }}: {{ description }} on {{ device.name }}".into()),
        ..row(StatusLevel::Warning).default_rule()
    };
    assert_eq!(
        preview_texts(&row(StatusLevel::Warning), &status_rule).unwrap().0,
        "Warning: Databases are out of date on ACME-PC-01"
    );
    assert!(
        preview_texts(&critical(), &Rule { title_template: Some("{{ x }}".into()), ..critical().default_rule() })
            .is_err()
    );
    // No template: the guide's texts.
    let (title, _) = preview_texts(&critical(), &critical().default_rule()).unwrap();
    assert_eq!(title, "Kaspersky Security Center: Critical event: Malicious object detected on ACME-PC-01");
}

fn created(rules: &RuleSet, e: &Event) -> ticketing_core::ticket::TicketDraft {
    match decide_event(e, &ctx(rules), &Ledger::new(), now()) {
        EventDecision::Create(c) => c.draft,
        other => panic!("{other:?}"),
    }
}

#[test]
fn template_rendering_scenarios() {
    let e = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::minutes(5));
    let key_line = "msp-ticketing key: event|security_center|ksc:main/vs:1|1043";
    let guide = created(&all_on(), &e);
    let long = "x".repeat(300);
    // (name, title template, description template, expected title, check on the description)
    type Row = (&'static str, Option<String>, Option<String>, String, fn(&str) -> bool);
    let table: Vec<Row> = vec![
        ("no template: the guide's texts", None, None, guide.title.clone(), |d| {
            d.contains("Severity / type: Critical")
        }),
        (
            "the event's and the computer's fields",
            Some("{{ severity }} {{ event_type }} on {{ device.name }} ({{ device.id }}) at {{ occurred_at }}".into()),
            None,
            "Critical GNRL_EV_VIRUS_FOUND on ACME-PC-01 (host-1) at 2026-11-20 09:55:00".into(),
            |d| d.starts_with("Trojan.Win32.Agent detected\n"),
        ),
        (
            "a description template, the key line appended",
            None,
            Some("{{ text }} ({{ event_id }})".into()),
            guide.title.clone(),
            |d| {
                d == "Trojan.Win32.Agent detected (1043)\n\nmsp-ticketing key: event|security_center|ksc:main/vs:1|1043"
            },
        ),
        (
            "a template cannot remove the key line, nor fake one",
            None,
            Some("msp-ticketing key: event|security_center|x|y\n\n\n".into()),
            guide.title.clone(),
            |d| d.ends_with("\n\nmsp-ticketing key: event|security_center|ksc:main/vs:1|1043"),
        ),
        (
            "a title over the PSA's limit is cut after rendering",
            Some(format!("{long}{{{{ what }}}}")),
            None,
            format!("{}{}", "x".repeat(255 - 4), " […]"),
            |_| true,
        ),
        (
            "a description over the limit is cut, its key line kept",
            None,
            Some("{% for i in range(900) %}0123456789{% endfor %}".into()),
            guide.title.clone(),
            |d| {
                d.chars().count() == 8000
                    && d.ends_with("\n\nmsp-ticketing key: event|security_center|ksc:main/vs:1|1043")
                    && d.contains(" […]")
            },
        ),
        (
            "a multi-line title is made one line",
            Some("{{ what }}\n  on {{ device.name }}\n".into()),
            None,
            "Malicious object detected   on ACME-PC-01".into(),
            |_| true,
        ),
        (
            "a title that renders blank falls back to the guide's",
            Some("{% if mailbox %}{{ mailbox }}{% endif %}".into()),
            None,
            guide.title.clone(),
            |_| true,
        ),
        (
            "a template failing when the ticket is made falls back (never saved: not validated)",
            Some("{{ devce.name }}".into()),
            Some("{{ nope }}".into()),
            guide.title.clone(),
            |d| d.contains("Severity / type: Critical"),
        ),
        (
            "a template failing on this event only falls back",
            Some("{{ 10 // (event_id | int - 1043) }}".into()),
            None,
            guide.title.clone(),
            |_| true,
        ),
    ];
    for (name, title, description, want_title, check) in &table {
        let rules = with_templates(&critical(), title.as_deref(), description.as_deref());
        let draft = created(&rules, &e);
        assert_eq!(draft.title, *want_title, "{name}");
        assert!(check(&draft.description), "{name}: {:?}", draft.description);
        assert!(draft.description.ends_with(key_line), "{name}");
        assert!(draft.title.chars().count() <= 255 && draft.description.chars().count() <= 8000, "{name}");
        // Everything but the texts is the guide's.
        assert_eq!(
            ticketing_core::ticket::TicketDraft {
                title: guide.title.clone(),
                description: guide.description.clone(),
                ..draft
            },
            guide,
            "{name}"
        );
    }
    assert!(table.len() >= 8);
    // A status row's template; another row's template changes nothing here.
    let mut rules =
        with_templates(&row(StatusLevel::Warning), Some("{{ level }}: {{ description }} on {{ device.name }}"), None);
    rules.rows.get_mut(&critical()).unwrap().title_template = Some("{{ what }}".into());
    let rec = reconcile(
        &snapshot(vec![device_status(
            "pc",
            &[(DB, StatusLevel::Warning), ("many_viruses_detected", StatusLevel::Critical)],
        )]),
        &ctx(&rules),
        &Ledger::new(),
        now(),
    );
    let titles: Vec<&str> = rec
        .actions
        .iter()
        .map(|a| match a {
            Action::Create(c) => c.draft.title.as_str(),
            _ => "",
        })
        .collect();
    assert!(titles.contains(&"Warning: Databases are out of date on PC-pc"), "{titles:?}");
    assert!(titles.iter().any(|t| t.starts_with("PC-pc: ") && t.ends_with("(Critical status)")), "{titles:?}");
    // A recurrence note quotes the ticket's (templated) title.
    rules.rows.get_mut(&critical()).unwrap().recurrence_hours = Some(2);
    let c = ctx(&rules);
    let mut ledger = Ledger::new();
    let EventDecision::Create(first) = decide_event(&e, &c, &ledger, now()) else { panic!() };
    ledger.apply(&first.transition(), now()).unwrap();
    let mut again = e;
    again.source_id = SourceEventId::new("1044");
    let EventDecision::Note(n) = decide_event(&again, &c, &ledger, now()) else { panic!() };
    assert!(n.note.text.ends_with(": Malicious object detected\nEvent id: 1044"), "{}", n.note.text);
}

fn arb_words() -> impl Strategy<Value = String> {
    "[a-zA-Zé0-9]{1,8}( [a-zA-Zé0-9.:/{}]{1,8}){0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The guide's texts written as templates (the defaults a UI starts from) render exactly
    /// what the hand-written path writes, for every product and row, with or without computer,
    /// mailbox, name and text, and texts long enough to be cut.
    #[test]
    fn the_default_templates_render_the_guides_texts(
        product_i in 0usize..3,
        class_i in 0usize..5,
        device in proptest::option::of(arb_words()),
        mailbox in proptest::option::of(arb_words()),
        display_name in proptest::option::of(arb_words()),
        text in proptest::option::of(arb_words()),
        repeat in prop_oneof![Just(1usize), Just(40), Just(700)],
        status in proptest::collection::vec((0usize..4, any::<bool>()), 1..3),
    ) {
        let product = Product::ALL[product_i];
        let class = if product == Product::Office365 {
            EventClass::Office365(Office365EventType::ALL[class_i])
        } else {
            EventClass::Severity(Severity::ALL[class_i % 3])
        };
        let mut e = event(product, class, Duration::minutes(5));
        e.device = device.map(|d| Device { id: DeviceId::new(format!("id-{}", d.len())), name: d });
        e.mailbox = mailbox;
        e.display_name = display_name.map(|d| d.repeat(repeat)).unwrap_or_default();
        e.text = text.map(|t| format!("{t}\n").repeat(repeat)).unwrap_or_default();
        let mut templated = all_on();
        for (row, rule) in templated.rows.iter_mut() {
            rule.title_template = Some(ticketing_core::template::default_template(row, Field::TitleTemplate).into());
            rule.description_template = Some(ticketing_core::template::default_template(row, Field::DescriptionTemplate).into());
        }
        prop_assert_eq!(templated.validate(&Catalog::example()), vec![]);
        let (plain, with) = (ctx(&all_on()), ctx(&templated));
        prop_assert_eq!(decide_event(&e, &with, &Ledger::new(), now()), decide_event(&e, &plain, &Ledger::new(), now()));
        let snap = snapshot(vec![device_status("pc", &status.iter().map(|(c, crit)| (CODES[*c], if *crit { StatusLevel::Critical } else { StatusLevel::Warning })).collect::<Vec<_>>())]);
        prop_assert_eq!(reconcile(&snap, &with, &Ledger::new(), now()), reconcile(&snap, &plain, &Ledger::new(), now()));
    }
}

// --- maintenance windows as a pure function ---------------------------------------------------

fn recurring(weekdays: &[Weekday], start: (u32, u32), minutes: u32, tz: &str, nth: Option<u8>) -> MaintenanceWindow {
    MaintenanceWindow {
        id: "r".into(),
        tenant: tenant(),
        device: None,
        schedule: Schedule::Recurring {
            weekdays: weekdays.to_vec(),
            start: NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
            duration_minutes: minutes,
            time_zone: tz.into(),
            nth_of_month: nth,
        },
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

#[test]
fn recurring_windows_are_dst_correct() {
    let berlin = |wd| recurring(&[wd], (2, 30), 60, "Europe/Berlin", None);
    // 2026-03-29 (Sunday): the clocks jump from 02:00 to 03:00; 02:30 never shows, so the
    // window starts at the jump (01:00 UTC) and lasts an hour.
    let w = berlin(Weekday::Sun);
    assert_eq!(w.occurrence_at(utc(2026, 3, 29, 1, 30)), Some((utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))));
    assert!(!w.contains(utc(2026, 3, 29, 0, 59)));
    // 2026-10-25 (Sunday): 02:30 shows twice; the first (00:30 UTC, CEST) starts it.
    assert_eq!(w.occurrence_at(utc(2026, 10, 25, 1, 0)), Some((utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))));
    assert!(!w.contains(utc(2026, 10, 25, 1, 30)));
    // The property's reference reads these instants the same way (so it is not vacuous).
    for (at, inside) in [
        (utc(2026, 3, 29, 1, 0), true),
        (utc(2026, 3, 29, 0, 59), false),
        (utc(2026, 10, 25, 1, 29), true),
        (utc(2026, 10, 25, 1, 30), false),
    ] {
        assert_eq!((w.contains(at), reference_contains(&w, at)), (inside, inside), "{at}");
    }
    // An ordinary Sunday in winter: 02:30 CET is 01:30 UTC.
    assert!(w.contains(utc(2026, 11, 22, 1, 30)) && !w.contains(utc(2026, 11, 22, 1, 29)));
    // A window across midnight belongs to the day it starts on.
    let late = recurring(&[Weekday::Fri], (23, 0), 180, "America/New_York", None);
    assert!(late.contains(utc(2026, 11, 21, 5, 59))); // Sat 00:59 EST
    assert!(!late.contains(utc(2026, 11, 21, 7, 0))); // Sat 02:00 EST
    // Every 3rd Tuesday: 2026-11-17 is one, 2026-11-10 and 2026-11-24 are not.
    let third = recurring(&[Weekday::Tue], (22, 0), 120, "Europe/London", Some(3));
    assert!(third.contains(utc(2026, 11, 17, 22, 30)));
    assert!(!third.contains(utc(2026, 11, 10, 22, 30)) && !third.contains(utc(2026, 11, 24, 22, 30)));
    // window_at honours tenant and device.
    let windows = vec![MaintenanceWindow { device: Some("SRV-?".into()), ..third }];
    assert!(window_at(&windows, &tenant(), Some("srv-1"), utc(2026, 11, 17, 22, 30)).is_some());
    assert!(window_at(&windows, &tenant(), Some("srv-10"), utc(2026, 11, 17, 22, 30)).is_none());
    assert!(window_at(&windows, &TenantId::new("x"), Some("srv-1"), utc(2026, 11, 17, 22, 30)).is_none());
    assert!(glob_match("*", "") && glob_match("a*b*c", "aXbYc") && !glob_match("a*b", "ac") && glob_match("É*", "é1"));
}

/// The reference reading of a recurring window: minute by minute, an occurrence starts at the
/// first minute on a matching local date at which the wall clock reaches the start time (a
/// second passage the same date, after the clocks fall back, is not a start).
fn reference_contains(w: &MaintenanceWindow, at: DateTime<Utc>) -> bool {
    let Schedule::Recurring { weekdays, start, duration_minutes, time_zone, nth_of_month } = &w.schedule else {
        unreachable!()
    };
    let tz: Tz = time_zone.parse().unwrap();
    let local = |u: DateTime<Utc>| u.with_timezone(&tz).naive_local();
    let matches = |d: NaiveDate| {
        use chrono::Datelike;
        weekdays.contains(&d.weekday()) && nth_of_month.is_none_or(|n| u32::from(n) == (d.day() - 1) / 7 + 1)
    };
    let passage = |u: DateTime<Utc>| {
        let (now, before) = (local(u), local(u - Duration::minutes(1)));
        let t = now.date().and_time(*start);
        before < t && t <= now && matches(now.date())
    };
    let is_start = |u: DateTime<Utc>| {
        passage(u)
            && !(1..=180).any(|m| {
                let v = u - Duration::minutes(m);
                passage(v) && local(v).date() == local(u).date()
            })
    };
    let floor = at.with_second(0).unwrap();
    (0..i64::from(*duration_minutes))
        .map(|m| floor - Duration::minutes(m))
        .filter(|u| *u > at - Duration::minutes(i64::from(*duration_minutes)))
        .any(is_start)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A recurring window contains exactly the instants its local-time definition says, across
    /// DST changes (the instants are drawn around them), in zones east and west, with and
    /// without "nth of the month".
    #[test]
    fn recurring_windows_contain_exactly_their_local_instants(
        tz in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Sydney"), Just("Asia/Kolkata"), Just("UTC")],
        days in proptest::collection::btree_set(0usize..7, 1..4),
        hour in 0u32..24,
        minute in prop_oneof![Just(0u32), Just(30), 0u32..60],
        duration in 1u32..300,
        nth in proptest::option::of(1u8..=5),
        base in prop_oneof![Just(utc(2026, 3, 8, 0, 0)), Just(utc(2026, 3, 28, 0, 0)), Just(utc(2026, 10, 24, 0, 0)), Just(utc(2026, 11, 1, 0, 0)), Just(utc(2026, 4, 4, 0, 0))],
        offset_secs in 0i64..(3 * 24 * 3600),
    ) {
        let weekdays: Vec<Weekday> = days.into_iter().map(|d| Weekday::try_from(d as u8).unwrap()).collect();
        let w = recurring(&weekdays, (hour, minute), duration, tz, nth);
        let at = base + Duration::seconds(offset_secs);
        prop_assert_eq!(w.contains(at), reference_contains(&w, at), "{:?} at {}", w.schedule, at);
    }
}

// --- settings: validation, editing, storage -----------------------------------------------------

#[test]
fn validation_refuses_a_lifecycle_field_on_a_row_that_cannot_use_it() {
    let mut rules = all_on();
    let event_row = sev(Product::SecurityCenter, Severity::Critical);
    rules.rows.get_mut(&event_row).unwrap().create_delay_minutes = 5;
    rules.rows.get_mut(&event_row).unwrap().reopen_hours = Some(2);
    rules.rows.get_mut(&row(StatusLevel::Warning)).unwrap().lifetime_days = Some(2);
    rules.rows.get_mut(&row(StatusLevel::Critical)).unwrap().reopen_hours = Some(0);
    rules.priority_follows_severity.insert(Product::Office365);
    let errors = rules.validate(&Catalog::example());
    let got: Vec<(Option<RowId>, Field, Problem)> =
        errors.iter().map(|e| (e.row.clone(), e.field, e.problem.clone())).collect();
    assert!(got.contains(&(Some(event_row.clone()), Field::CreateDelay, Problem::NotApplicable)));
    assert!(got.contains(&(Some(event_row.clone()), Field::ReopenHours, Problem::NotApplicable)));
    assert!(got.contains(&(Some(row(StatusLevel::Warning)), Field::Lifetime, Problem::NotApplicable)));
    assert!(got.contains(&(
        Some(row(StatusLevel::Critical)),
        Field::ReopenHours,
        Problem::OutOfRange { min: 1, max: 2160 }
    )));
    assert!(got.contains(&(None, Field::PriorityFollowsSeverity, Problem::NotApplicable)));
    let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
    assert!(
        text.contains(
            "row \"Critical\" (security_center/event/critical): create_delay_minutes does not apply to this row"
        ),
        "{text}"
    );
}

#[test]
fn validation_refuses_unusable_windows() {
    let rules = RuleSet {
        maintenance: vec![
            recurring(&[], (1, 0), 0, "Mars/Olympus", Some(6)),
            MaintenanceWindow { id: "r".into(), ..once("x", "t", Some(" "), 10, 5) },
        ],
        ..RuleSet::default()
    };
    let text: Vec<String> = rules.validate(&Catalog::example()).iter().map(ToString::to_string).collect();
    for needle in [
        "no weekday",
        "duration_minutes must be between 1 and 10080",
        "unknown time zone \"Mars/Olympus\"",
        "nth_of_month",
        "same id",
        "ends before it starts",
        "device pattern is blank",
    ] {
        assert!(text.iter().any(|t| t.contains(needle)), "{needle} in {text:?}");
    }
}

#[test]
fn the_bulk_edit_sets_lifecycle_fields_and_refuses_them_where_they_do_not_apply() {
    use ticketing_core::edit::{EditError, RuleBook, RulePatch};
    let mut book = RuleBook::new(RuleSet::default());
    let patch: RulePatch = serde_json::from_str(r#"{"create_delay_minutes": 10, "reopen_hours": 4}"#).unwrap();
    book.bulk_edit(&[row(StatusLevel::Warning)], &patch).unwrap();
    let r = &book.draft.rows[&row(StatusLevel::Warning)];
    assert_eq!((r.create_delay_minutes, r.reopen_hours), (10, Some(4)));
    let err = book.bulk_edit(&[sev(Product::SecurityCenter, Severity::Warning)], &patch).unwrap_err();
    assert!(
        matches!(err, EditError::Invalid(ref e) if e.field == Field::CreateDelay && e.problem == Problem::NotApplicable),
        "{err}"
    );
    let off: RulePatch = serde_json::from_str(r#"{"reopen_hours": null}"#).unwrap();
    book.bulk_edit(&[row(StatusLevel::Warning)], &off).unwrap();
    assert_eq!(book.draft.rows[&row(StatusLevel::Warning)].reopen_hours, None);
    // Priority follows severity and maintenance windows save with their sections.
    book.set_priority_follows_severity(Product::SecurityCenter, true);
    book.set_maintenance(nightly());
    assert!(book.is_dirty(ticketing_core::Section::Statuses(Product::SecurityCenter, StatusLevel::Critical)));
    assert!(book.is_dirty(ticketing_core::Section::General));
    book.save(ticketing_core::Section::General, &Catalog::example()).unwrap();
    book.save(ticketing_core::Section::Statuses(Product::SecurityCenter, StatusLevel::Warning), &Catalog::example())
        .unwrap();
    assert_eq!(book.saved.maintenance, nightly());
    assert!(book.saved.priority_follows_severity.contains(&Product::SecurityCenter));
}

#[test]
fn a_rule_book_with_every_feature_off_serialises_as_before_and_old_ones_load() {
    // What a rule and a rule set looked like before issue 20 (field for field).
    let old_rule = r#"{"enabled":true,"lifetime_days":null,"queue":"Monitoring Alert","priority":"Medium","due_hours":24,"work_type":null,"issue_type":null,"sub_issue_type":null}"#;
    let rule: Rule = serde_json::from_str(old_rule).unwrap();
    assert_eq!(serde_json::to_string(&rule).unwrap(), old_rule);
    assert_eq!((rule.create_delay_minutes, rule.reopen_hours), (0, None));
    let json = serde_json::to_string(&RuleSet::default()).unwrap();
    for new in ["create_delay", "reopen", "recurrence", "template", "maintenance", "priority_follows"] {
        assert!(!json.contains(new), "{new} appears in a rule set with every feature off");
    }
    assert!(json.starts_with(r#"{"general":{"#) && json.contains(r#"},"rows":{"#));
    assert_eq!(serde_json::from_str::<RuleSet>(&json).unwrap(), RuleSet::default());
    // With the features on, it round-trips, and unknown fields are still refused.
    let on = Cfg {
        delay: 5,
        reopen: Some(3),
        follows: true,
        windows: vec![recurring(&[Weekday::Tue], (22, 0), 120, "Europe/Berlin", Some(3))],
        ..Cfg::default()
    }
    .rules();
    let json = serde_json::to_string(&on).unwrap();
    assert_eq!(serde_json::from_str::<RuleSet>(&json).unwrap(), on);
    assert!(json.contains(r#""schedule":{"kind":"recurring","weekdays":["Tue"],"start":"22:00:00""#), "{json}");
    assert!(serde_json::from_str::<Rule>(&old_rule.replace("}", r#","flap":1}"#)).is_err());
}

#[test]
fn new_transitions_and_states_round_trip_and_old_closed_entries_read() {
    let key = TicketKey::Status {
        product: Product::SecurityCenter,
        tenant: tenant(),
        device: DeviceId::new("pc"),
        description: desc(DB),
    };
    let note = TicketNote { marker: "kmsp-x-1/reopen/1".into(), text: "reopened".into() };
    let update = TicketUpdate { status: Some(PsaId(1)), priority: Some(PsaId(4)), due: Some(now()) };
    let transitions = vec![
        Transition::Delayed { key: key.clone(), since: now() },
        Transition::DelayCleared { key: key.clone() },
        Transition::UpdateRequested {
            key: key.clone(),
            update,
            note,
            reason: UpdateReason::Reopen,
            urgency: Urgency::Critical,
        },
        Transition::Updated { key: key.clone() },
        Transition::UpdateRefused { key, reason: "no".into() },
    ];
    for t in &transitions {
        let json = serde_json::to_string(t).unwrap();
        assert_eq!(&serde_json::from_str::<Transition>(&json).unwrap(), t, "{json}");
    }
    assert!(serde_json::to_string(&transitions[0]).unwrap().starts_with(r#"{"transition":"delayed","#));
    // A delayed entry over a closed one, and an updating entry, as stored.
    let mut ledger = Ledger::new();
    let (l, _) = only_action(
        &Cfg { delay: 10, reopen: Some(2), ..Cfg::default() },
        &[(0, 'W'), (10, 'W'), (20, '-'), (30, 'W')],
    );
    ledger = Ledger::from_entries(l.entries().cloned().chain(ledger.entries().cloned()));
    let json = serde_json::to_string(&ledger).unwrap();
    assert!(json.contains(r#""state":"delayed""#) && json.contains(r#""previous":{"state":"closed""#), "{json}");
    assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);
    // An entry closed by an earlier version has no `closed_at`: it reads, and is not reopened.
    let old = r#"{"key":{"kind":"status","product":"security_center","tenant":"ksc:main/vs:1","device":"pc","description":"databases_out_of_date"},"generation":1,"idempotency_key":"kmsp-5","urgency":"normal","state":{"state":"closed","ticket":{"id":3,"number":null},"by":"integration","cleared":true},"updated_at":"2026-11-20T10:00:00Z"}"#;
    let entry: LedgerEntry = serde_json::from_str(old).unwrap();
    assert_eq!(serde_json::to_string(&entry).unwrap(), old);
    let rules = Cfg { reopen: Some(2), ..Cfg::default() }.rules();
    let rec = reconcile(
        &snapshot(vec![device_status("pc", &[(DB, StatusLevel::Warning)])]),
        &ctx(&rules),
        &Ledger::from_entries([entry]),
        now(),
    );
    assert_eq!(summary(&rec), "create:warning");
    assert!(matches!(TicketState::Delayed { since: now(), previous: None }.name(), "delayed"));
}

// --- every feature off: the decisions of today ----------------------------------------------

fn naive_ctx(rules: &RuleSet) -> naive::NaiveContext {
    naive::NaiveContext::new(
        rules,
        &Catalog::example(),
        [(tenant(), ACME), (TenantId::new("kbh:c-1"), ACME), (TenantId::new("ksc:main/vs:9"), OLD_CO)],
        accounts(),
    )
}

const CODES: [&str; 4] = [DB, "many_viruses_detected", "license_expired", "restart_required"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// With every lifecycle feature off (and windows only for other tenants), a sequence of
    /// snapshots hours apart, with PSA answers and technician closes, is reconciled exactly as
    /// today's reference does; and events are decided as today's reference does.
    #[test]
    fn with_every_feature_off_the_decisions_are_todays(
        steps in proptest::collection::vec((
            proptest::collection::vec(proptest::collection::vec((0usize..4, any::<bool>()), 0..3), 0..3),
            0i64..600,
            any::<bool>(),
            any::<bool>(),
        ), 1..10),
        age in 0i64..3000,
        sev_i in 0usize..4,
        events in proptest::collection::vec((0usize..3, 0usize..2, 0usize..2, 0usize..4), 1..4),
    ) {
        let mut rules = all_on();
        rules.maintenance = vec![once("elsewhere", "ksc:main/vs:2", None, -10_000, 10_000)];
        // Recurrence windows on the rows of another product: the Security Center events below,
        // the same type on the same computer again and again, are each their own ticket.
        for s in Severity::ALL {
            if let Some(r) = rules.rows.get_mut(&sev(Product::EndpointCloud, s)) {
                r.recurrence_hours = Some(24);
            }
        }
        // Templates on other products' rows: the context compiles them, these inputs take the
        // hand-written texts.
        for (row, r) in rules.rows.iter_mut().filter(|(row, _)| row.product() != Product::SecurityCenter) {
            r.title_template = Some(format!("{{{{ tenant }}}}: {row}"));
            r.description_template = Some("{{ product }}".into());
        }
        prop_assert_eq!(rules.validate(&Catalog::example()), vec![]);
        let (c, n) = (ctx(&rules), naive_ctx(&rules));
        let mut ledger = Ledger::new();
        let mut at = now();
        let mut ids = 0;
        for (devices, gap, answer, tech) in &steps {
            at += Duration::minutes(*gap);
            let snap = snapshot(devices.iter().enumerate().map(|(i, act)| {
                let mut seen = std::collections::BTreeSet::new();
                let act: Vec<(&str, StatusLevel)> = act.iter().filter(|(c, _)| seen.insert(*c)).map(|(c, crit)| (CODES[*c], if *crit { StatusLevel::Critical } else { StatusLevel::Warning })).collect();
                device_status(&format!("d{i}"), &act)
            }).collect());
            let lean = reconcile(&snap, &c, &ledger, at);
            prop_assert_eq!(&lean, &naive::reconcile(&snap, &n, &ledger, at));
            for a in &lean.actions {
                ledger.apply(&a.transition(), at).unwrap();
                let key = a.key().clone();
                match (a, answer) {
                    (Action::Create(_), true) => { ids += 1; ledger.apply(&Transition::Opened { key, ticket: TicketRef { id: PsaId(ids), number: None } }, at).unwrap() }
                    (Action::Close(_), _) => { ledger.apply(&Transition::Closed { key: key.clone() }, at).unwrap(); if *answer { ledger.apply(&Transition::NoteAdded { key }, at).unwrap() } }
                    _ => {}
                }
            }
            if *tech {
                let open: Vec<TicketKey> = ledger.entries().filter(|e| e.state.name() == "open").map(|e| e.key.clone()).take(1).collect();
                for key in open { ledger.apply(&Transition::ClosedByTechnician { key }, at).unwrap(); }
            }
            let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::ALL[sev_i]), Duration::minutes(age));
            prop_assert_eq!(decide_event(&ev, &c, &ledger, at), naive::decide_event(&ev, &n, &ledger, at));
            // Events recorded as the engine records them (some answered), so that a recurrence,
            // were it on, would find their tickets.
            for (source, device, ty, s) in &events {
                let mut ev = event(Product::SecurityCenter, EventClass::Severity(Severity::ALL[*s]), Duration::minutes(5));
                ev.source_id = SourceEventId::new(format!("s{source}"));
                ev.device = Some(Device { id: DeviceId::new(format!("h{device}")), name: format!("H{device}") });
                ev.event_type = ["GNRL_EV_VIRUS_FOUND", "KLPRCI_TaskState"][*ty].into();
                let lean = decide_event(&ev, &c, &ledger, at);
                prop_assert_eq!(&lean, &naive::decide_event(&ev, &n, &ledger, at));
                if let EventDecision::Create(create) = lean {
                    prop_assert!(create.recurrence.is_none());
                    ledger.apply(&create.transition(), at).unwrap();
                    if *answer {
                        ids += 1;
                        ledger.apply(&Transition::Opened { key: create.key, ticket: TicketRef { id: PsaId(ids), number: None } }, at).unwrap();
                    }
                }
            }
        }
    }
}
