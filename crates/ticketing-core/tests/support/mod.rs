//! Builders shared by the core's integration tests.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::Context;
use ticketing_core::model::*;
use ticketing_core::ports::Account;
use ticketing_core::rules::{RowId, RuleSet};

pub const ACME: PsaId = PsaId(29683616);
pub const OLD_CO: PsaId = PsaId(29683617);

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

pub fn tenant() -> TenantId {
    TenantId::new("ksc:main/vs:1")
}

pub fn accounts() -> Vec<Account> {
    vec![
        Account { id: ACME, name: "Acme Corp".into(), active: true },
        Account { id: OLD_CO, name: "Old Co".into(), active: false },
    ]
}

/// Every row on.
pub fn all_on() -> RuleSet {
    let mut rules = RuleSet::default();
    for r in rules.rows.values_mut() {
        r.enabled = true;
    }
    rules
}

pub fn ctx(rules: &RuleSet) -> Context {
    ctx_with(rules, &Catalog::example())
}

pub fn ctx_with(rules: &RuleSet, catalog: &Catalog) -> Context {
    Context::new(
        rules,
        catalog,
        [(tenant(), ACME), (TenantId::new("kbh:c-1"), ACME), (TenantId::new("ksc:main/vs:9"), OLD_CO)],
        accounts(),
    )
}

pub fn event(product: Product, class: EventClass, age: Duration) -> Event {
    Event {
        source_id: SourceEventId::new("1043"),
        tenant: if product == Product::SecurityCenter { tenant() } else { TenantId::new("kbh:c-1") },
        product,
        class,
        occurred_at: now() - age,
        device: Some(Device { id: DeviceId::new("host-1"), name: "ACME-PC-01".into() }),
        mailbox: None,
        event_type: "GNRL_EV_VIRUS_FOUND".into(),
        display_name: "Malicious object detected".into(),
        text: "Trojan.Win32.Agent detected".into(),
    }
}

pub fn sev(product: Product, s: Severity) -> RowId {
    RowId::Event(product, EventClass::Severity(s))
}

pub fn desc(code: &str) -> StatusDescription {
    StatusDescription::known_from_code(code).unwrap()
}

pub fn device_status(id: &str, active: &[(&str, StatusLevel)]) -> DeviceStatus {
    let active: Vec<ActiveDescription> =
        active.iter().map(|(c, l)| ActiveDescription { description: desc(c), level: *l }).collect();
    let status = if active.iter().any(|a| a.level == StatusLevel::Critical) {
        ComputerStatus::Critical
    } else if active.is_empty() {
        ComputerStatus::Ok
    } else {
        ComputerStatus::Warning
    };
    DeviceStatus { device: Device { id: DeviceId::new(id), name: format!("PC-{id}") }, status, active }
}

pub fn snapshot(devices: Vec<DeviceStatus>) -> StatusSnapshot {
    StatusSnapshot {
        tenant: tenant(),
        product: Product::SecurityCenter,
        devices,
        issues: Vec::new(),
        unknown_descriptions: 0,
    }
}
