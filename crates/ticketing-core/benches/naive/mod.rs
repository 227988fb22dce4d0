//! The naive baseline of `decide_event`: the straightforward version the core had before
//! issue 15, on the public API only. Every string is built with `format!`, timestamps go
//! through chrono's `strftime` (re-parsing its format each call), the idempotency key hashes a
//! `canonical()` string byte by byte, `truncate_chars` copies whatever it is given, lookups walk
//! `BTreeMap`s. It produces exactly the same decisions (tests/naive.rs checks), so the bench can
//! put the two side by side in one group and one run.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use ticketing_core::catalog::Catalog;
use ticketing_core::decide::{Action, Close, Create, EventDecision, Reconciliation, SkipReason, event_key, is_stale};
use ticketing_core::ledger::{Ledger, TicketState};
use ticketing_core::model::{
    DeviceId, Event, EventClass, Office365EventType, Product, PsaId, Severity, StatusDescription, StatusLevel,
    StatusSnapshot, TenantId,
};
use ticketing_core::ports::Account;
use ticketing_core::rules::{
    ResolvedGeneral, ResolvedRule, RowId, RuleSet, ValidationError, resolve_general, resolve_rule,
};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketKey, Urgency};

type RuleResult = Result<ResolvedRule, Vec<ValidationError>>;

/// The core's `Context` as it was: trees all the way.
pub struct NaiveContext {
    general: Result<ResolvedGeneral, Vec<ValidationError>>,
    rules: BTreeMap<RowId, RuleResult>,
    mapping: BTreeMap<TenantId, PsaId>,
    accounts: BTreeMap<PsaId, Account>,
}

impl NaiveContext {
    pub fn new(
        rules: &RuleSet,
        catalog: &Catalog,
        mapping: impl IntoIterator<Item = (TenantId, PsaId)>,
        accounts: impl IntoIterator<Item = Account>,
    ) -> Self {
        let resolved = rules
            .rows
            .iter()
            .filter(|(_, r)| r.enabled)
            .map(|(row, rule)| (row.clone(), resolve_rule(row, rule, catalog)))
            .collect();
        Self {
            general: resolve_general(&rules.general, catalog),
            rules: resolved,
            mapping: mapping.into_iter().collect(),
            accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
        }
    }

    fn admit(
        &self,
        tenant: &TenantId,
        rule: &RuleResult,
    ) -> Result<(PsaId, &ResolvedGeneral, ResolvedRule), SkipReason> {
        let account = self.mapping.get(tenant).copied().ok_or(SkipReason::TenantUnmapped)?;
        if !self.accounts.get(&account).is_some_and(|a| a.active) {
            return Err(SkipReason::AccountInactive { account });
        }
        let mut errors = self.general.as_ref().err().cloned().unwrap_or_default();
        if let Err(e) = rule {
            errors.extend(e.iter().cloned());
        }
        match (&self.general, rule) {
            (Ok(g), Ok(r)) => Ok((account, g, r.clone())),
            _ => Err(SkipReason::RuleInvalid { errors }),
        }
    }
}

/// `reconcile` as it was: a tree of every active condition, a tree probe per condition, and a
/// scan of the whole ledger for the tenant's entries (no range query to trust).
pub fn reconcile(snapshot: &StatusSnapshot, ctx: &NaiveContext, ledger: &Ledger, now: DateTime<Utc>) -> Reconciliation {
    let mut out = Reconciliation::default();
    let tenant = &snapshot.tenant;
    let product = snapshot.product;
    let mut active: BTreeSet<(&DeviceId, &StatusDescription)> = BTreeSet::new();
    for device in &snapshot.devices {
        for a in &device.active {
            if !active.insert((&device.device.id, &a.description)) || !a.description.is_known() {
                continue;
            }
            let row = RowId::Status(product, a.level, a.description.clone());
            let Some(rule) = ctx.rules.get(&row) else {
                continue;
            };
            let key = TicketKey::Status {
                product,
                tenant: tenant.clone(),
                device: device.device.id.clone(),
                description: a.description.clone(),
            };
            let Some(generation) = ledger.next_generation(&key) else {
                continue;
            };
            let (account, general, resolved) = match ctx.admit(tenant, rule) {
                Ok(x) => x,
                Err(reason) => {
                    out.skipped.push((key, reason));
                    continue;
                }
            };
            let text = a.description.text();
            let title = format!("{}: {text} ({} status)", device.device.name, a.level);
            let description = format!(
                "The computer {} ({}) has the status description \"{text}\", which puts it in {} status.\n\n\
                 Product: {product}\nCustomer (tenant): {tenant}\nComputer status: {:?}\nDetected (UTC): {}\n\n\
                 This ticket closes automatically when the status description no longer applies.",
                device.device.name,
                device.device.id,
                a.level,
                device.status,
                now.format("%Y-%m-%d %H:%M:%S"),
            );
            let urgency = if a.level == StatusLevel::Critical { Urgency::Critical } else { Urgency::Normal };
            let device_name = Some(device.device.name.clone());
            let mut draft = build_draft(
                account,
                general,
                &resolved,
                &key,
                generation,
                title,
                description,
                device_name,
                urgency,
                now,
            );
            draft.row = Some(row);
            out.actions.push(Action::Create(Create { key, generation, draft, recurrence: None, storm: None }));
        }
    }
    let closed_status = ctx.general.as_ref().ok().map(|g| g.closed_status);
    for entry in ledger.entries() {
        let TicketKey::Status { product: p, tenant: t, device, description } = &entry.key else {
            continue;
        };
        if *p != product || t != tenant || active.contains(&(device, description)) {
            continue;
        }
        match &entry.state {
            TicketState::Open { .. } => match closed_status {
                Some(status) => out.actions.push(Action::Close(Close {
                    key: entry.key.clone(),
                    status,
                    note: format!(
                        "The status description \"{}\" no longer applies to this computer; closed automatically.",
                        description.text()
                    ),
                })),
                None => out.skipped.push((
                    entry.key.clone(),
                    SkipReason::RuleInvalid { errors: ctx.general.clone().err().unwrap_or_default() },
                )),
            },
            TicketState::Closed { cleared: false, .. } => out.actions.push(Action::Clear { key: entry.key.clone() }),
            _ => {}
        }
    }
    if snapshot.issues.is_empty() {
        return out;
    }
    let active: BTreeSet<Office365EventType> =
        snapshot.issues.iter().filter(|i| i.active).map(|i| i.event_type).collect();
    let reported: BTreeSet<Office365EventType> = snapshot.issues.iter().map(|i| i.event_type).collect();
    for entry in ledger.entries() {
        let TicketKey::Issue { tenant: t, event_type } = &entry.key else {
            continue;
        };
        if t != tenant || active.contains(event_type) || !reported.contains(event_type) {
            continue;
        }
        match &entry.state {
            TicketState::Open { .. } => {
                if let Some(status) = closed_status {
                    out.actions.push(Action::Close(Close {
                        key: entry.key.clone(),
                        status,
                        note: format!(
                            "\"{event_type}\" was resolved in Kaspersky Security for Office 365; closed automatically."
                        ),
                    }));
                }
            }
            TicketState::Closed { cleared: false, .. } => out.actions.push(Action::Clear { key: entry.key.clone() }),
            _ => {}
        }
    }
    out
}

pub fn decide_event(event: &Event, ctx: &NaiveContext, ledger: &Ledger, now: DateTime<Utc>) -> EventDecision {
    let key = event_key(event);
    let skip = |key, reason| EventDecision::Skip { key, reason };
    let row = RowId::Event(event.product, event.class);
    let Some(rule) = ctx.rules.get(&row) else {
        return skip(key, SkipReason::RuleOff);
    };
    if let Some(days) = rule.as_ref().ok().and_then(|r| r.lifetime_days) {
        if is_stale(event.occurred_at, days, now) {
            return skip(key, SkipReason::Stale { lifetime_days: days });
        }
    }
    let (account, general, resolved) = match ctx.admit(&event.tenant, rule) {
        Ok(x) => x,
        Err(reason) => return skip(key, reason),
    };
    let Some(generation) = ledger.next_generation(&key) else {
        return skip(key, SkipReason::AlreadyTicketed);
    };
    let urgency = match event.class {
        EventClass::Severity(Severity::Critical) | EventClass::Office365(_) => Urgency::Critical,
        EventClass::Severity(_) => Urgency::Normal,
    };
    let (title, description) = event_text(event);
    let device_name = event.device.as_ref().map(|d| d.name.clone());
    let expires_at = resolved.lifetime_days.map(|d| event.occurred_at + Duration::days(i64::from(d)));
    let mut draft =
        build_draft(account, general, &resolved, &key, generation, title, description, device_name, urgency, now);
    draft.expires_at = expires_at;
    draft.row = Some(row);
    EventDecision::Create(Create { key, generation, draft, recurrence: None, storm: None })
}

fn event_text(event: &Event) -> (String, String) {
    let what = if event.display_name.is_empty() { &event.event_type } else { &event.display_name };
    let subject = match (&event.device, &event.mailbox) {
        (Some(d), _) => format!(" on {}", d.name),
        (None, Some(m)) => format!(" for {m}"),
        (None, None) => String::new(),
    };
    let title = match event.class {
        EventClass::Severity(s) => format!("{} {s} event: {what}{subject}", short(event.product)),
        EventClass::Office365(t) => format!("{}: {t}{subject}", short(event.product)),
    };
    let mut description = format!(
        "{}\n\nProduct: {}\nCustomer (tenant): {}\nSeverity / type: {}\nOccurred (UTC): {}\nEvent type: {}\nEvent id: {}\n",
        if event.text.is_empty() { what } else { &event.text },
        event.product,
        event.tenant,
        event.class,
        event.occurred_at.format("%Y-%m-%d %H:%M:%S"),
        event.event_type,
        event.source_id,
    );
    if let Some(d) = &event.device {
        description.push_str(&format!("Computer: {} ({})\n", d.name, d.id));
    }
    if let Some(m) = &event.mailbox {
        description.push_str(&format!("Mailbox: {m}\n"));
    }
    (title, description)
}

fn short(product: Product) -> &'static str {
    match product {
        Product::SecurityCenter => "Kaspersky Security Center:",
        Product::EndpointCloud => "Kaspersky Endpoint Security Cloud:",
        Product::Office365 => "Kaspersky Security for Office 365",
    }
}

#[allow(clippy::too_many_arguments)]
fn build_draft(
    account: PsaId,
    general: &ResolvedGeneral,
    rule: &ResolvedRule,
    key: &TicketKey,
    generation: u32,
    title: String,
    description: String,
    device_name: Option<String>,
    urgency: Urgency,
    now: DateTime<Utc>,
) -> TicketDraft {
    let key_line = format!("msp-ticketing key: {}", canonical(key));
    let room = TicketDraft::DESCRIPTION_MAX.saturating_sub(key_line.chars().count() + 2);
    let description = format!("{}\n\n{key_line}", truncate_chars(description.trim_end(), room));
    TicketDraft {
        account,
        title: truncate_chars(&title, TicketDraft::TITLE_MAX),
        description: truncate_chars(&description, TicketDraft::DESCRIPTION_MAX),
        status: general.new_status,
        priority: rule.priority,
        queue: rule.queue,
        due: now + Duration::hours(i64::from(rule.due_hours)),
        due_hours: Some(rule.due_hours),
        expires_at: None,
        row: None,
        source: general.source,
        work_type: rule.work_type,
        issue_type: rule.issue_type,
        sub_issue_type: rule.sub_issue_type,
        idempotency_key: idempotency_key(key, generation),
        device_name,
        urgency,
    }
}

pub fn canonical(key: &TicketKey) -> String {
    match key {
        TicketKey::Status { product, tenant, device, description } => {
            format!("status|{}|{}|{}|{}", product.code(), tenant, device, description.code())
        }
        TicketKey::Issue { tenant, event_type } => format!("issue|{}|{}", tenant, event_type.code()),
        TicketKey::Event { product, tenant, source_id } => {
            format!("event|{}|{}|{}", product.code(), tenant, source_id)
        }
    }
}

pub fn idempotency_key(key: &TicketKey, generation: u32) -> IdempotencyKey {
    IdempotencyKey(format!("kmsp-{:032x}-{}", fnv1a_128(canonical(key).as_bytes()), generation))
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes.iter().fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let marker = TicketDraft::CUT_MARKER;
    let keep = max.saturating_sub(marker.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(marker);
    out
}
