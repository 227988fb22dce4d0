//! The decisions: an event in, a ticket draft or a typed skip out; a status snapshot and the
//! ledger in, create and close actions out. Time is a parameter; nothing here performs I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::ledger::{Ledger, TicketState, Transition};
use crate::model::{
    DeviceId, Event, EventClass, Office365EventType, Product, PsaId, Severity, StatusLevel, StatusSnapshot, TenantId,
};
use crate::ports::Account;
use crate::rules::{ResolvedGeneral, ResolvedRule, RowId, RuleSet, ValidationError, resolve_general, resolve_rule};
use crate::ticket::{TicketDraft, TicketKey, Urgency, truncate_chars};

/// Why no ticket was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// The row's "Create ticket" toggle is off (or the row does not exist, as for Info events).
    RuleOff,
    /// The event is older than the rule's lifetime.
    Stale {
        /// The lifetime in days.
        lifetime_days: u32,
    },
    /// The tenant is not mapped to a PSA account.
    TenantUnmapped,
    /// The mapped account is inactive, or the PSA does not have it.
    AccountInactive {
        /// The account.
        account: PsaId,
    },
    /// A ticket for this key exists (or a technician closed it and the condition persists).
    AlreadyTicketed,
    /// The rule or the general settings do not resolve against the PSA catalog.
    RuleInvalid {
        /// Every problem.
        errors: Vec<ValidationError>,
    },
}

impl SkipReason {
    /// Stable label, for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::RuleOff => "rule_off",
            Self::Stale { .. } => "stale",
            Self::TenantUnmapped => "tenant_unmapped",
            Self::AccountInactive { .. } => "account_inactive",
            Self::AlreadyTicketed => "already_ticketed",
            Self::RuleInvalid { .. } => "rule_invalid",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stale { lifetime_days } => {
                write!(f, "stale: older than the {lifetime_days}-day lifetime")
            }
            Self::AccountInactive { account } => {
                write!(f, "account {account} is inactive or unknown")
            }
            Self::RuleInvalid { errors } => {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                write!(f, "rule invalid: {}", all.join("; "))
            }
            other => f.write_str(other.label()),
        }
    }
}

/// Everything a decision depends on besides its input and the ledger: the saved rules resolved
/// against the PSA catalog, the tenant → account mapping and the accounts' active flags.
///
/// Build it once whenever one of those changes; decisions then only look things up.
#[derive(Debug, Clone)]
pub struct Context {
    general: Result<ResolvedGeneral, Vec<ValidationError>>,
    rules: BTreeMap<RowId, Result<ResolvedRule, Vec<ValidationError>>>,
    mapping: BTreeMap<TenantId, PsaId>,
    accounts: BTreeMap<PsaId, Account>,
}

impl Context {
    /// Resolves the enabled rules of `rules` against `catalog`.
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

    /// The closed status to set, when the general settings resolve.
    pub fn closed_status(&self) -> Option<PsaId> {
        self.general.as_ref().ok().map(|g| g.closed_status)
    }

    /// The account a tenant is mapped to.
    pub fn account_of(&self, tenant: &TenantId) -> Option<PsaId> {
        self.mapping.get(tenant).copied()
    }

    fn enabled_rule(&self, row: &RowId) -> Option<&Result<ResolvedRule, Vec<ValidationError>>> {
        self.rules.get(row)
    }

    /// The checks every create goes through after the rule is known to be on: mapping, active
    /// account, valid rule. Returns the account and resolved settings.
    fn admit(
        &self,
        tenant: &TenantId,
        rule: &Result<ResolvedRule, Vec<ValidationError>>,
    ) -> Result<(PsaId, &ResolvedGeneral, ResolvedRule), SkipReason> {
        let account = self.account_of(tenant).ok_or(SkipReason::TenantUnmapped)?;
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

/// A create decided for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Create {
    /// The problem's identity.
    pub key: TicketKey,
    /// Which occurrence.
    pub generation: u32,
    /// The ticket.
    pub draft: TicketDraft,
}

impl Create {
    /// The ledger transition that records this decision (persist it before calling the PSA).
    pub fn transition(&self) -> Transition {
        Transition::Plan { key: self.key.clone(), generation: self.generation, draft: self.draft.clone() }
    }
}

/// The outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // short-lived values, most of them creates: boxing would only add an allocation each
pub enum EventDecision {
    /// Create a ticket.
    Create(Create),
    /// Do nothing, for a reason.
    Skip {
        /// The key the event would have had.
        key: TicketKey,
        /// Why.
        reason: SkipReason,
    },
}

/// The ticket key an event belongs to: resolvable Office 365 types share one key per tenant and
/// type (their ticket closes on the resolved signal); every other event is its own key.
pub fn event_key(event: &Event) -> TicketKey {
    match event.class {
        EventClass::Office365(t) if t.is_resolvable() => {
            TicketKey::Issue { tenant: event.tenant.clone(), event_type: t }
        }
        _ => TicketKey::Event {
            product: event.product,
            tenant: event.tenant.clone(),
            source_id: event.source_id.clone(),
        },
    }
}

/// Decides what to do with one event at time `now`.
///
/// Checks, in order: the row's toggle (rule off), the lifetime (an event is ticketed only while
/// `now - occurred_at` is strictly less than the lifetime: "only events more recent than the
/// specified period are sent"), the tenant's mapping, the account's active flag, the ledger
/// (already ticketed), and the rule's validity against the catalog.
pub fn decide_event(event: &Event, ctx: &Context, ledger: &Ledger, now: DateTime<Utc>) -> EventDecision {
    let key = event_key(event);
    let skip = |key, reason| EventDecision::Skip { key, reason };
    let row = RowId::Event(event.product, event.class);
    let Some(rule) = ctx.enabled_rule(&row) else {
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
    EventDecision::Create(Create { key, generation, draft })
}

/// The lifetime rule: stale when `now - occurred_at >= lifetime_days` days.
pub fn is_stale(occurred_at: DateTime<Utc>, lifetime_days: u32, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(occurred_at) >= Duration::days(i64::from(lifetime_days))
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

#[allow(clippy::too_many_arguments)] // one private constructor; a struct would only rename the list
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
    // The key line ends every description, so a listing of the PSA can tell whose ticket it is.
    let key_line = key.key_line();
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
        idempotency_key: key.idempotency_key(generation),
        device_name,
        urgency,
    }
}

/// Re-plans a create the PSA refused, once an operator has fixed its rule: the draft keeps its
/// text, key and lifetime, and takes queue, priority, due time, work, issue and sub-issue type,
/// statuses, source and account from the row's current settings as of `now`. A draft stored by
/// an older version (no row) is sent as it was.
pub fn replan(
    draft: &TicketDraft,
    tenant: &TenantId,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<TicketDraft, SkipReason> {
    let Some(row) = &draft.row else { return Ok(draft.at(now)) };
    let rule = ctx.enabled_rule(row).ok_or(SkipReason::RuleOff)?;
    let (account, general, resolved) = ctx.admit(tenant, rule)?;
    Ok(TicketDraft {
        account,
        status: general.new_status,
        priority: resolved.priority,
        queue: resolved.queue,
        due: now + Duration::hours(i64::from(resolved.due_hours)),
        due_hours: Some(resolved.due_hours),
        source: general.source,
        work_type: resolved.work_type,
        issue_type: resolved.issue_type,
        sub_issue_type: resolved.sub_issue_type,
        ..draft.clone()
    })
}

/// A close decided for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    /// The problem's identity.
    pub key: TicketKey,
    /// The closed status.
    pub status: PsaId,
    /// Why, for the ticket's note.
    pub note: String,
}

/// One thing to do after a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // as for EventDecision
pub enum Action {
    /// Record `Planned`, then create.
    Create(Create),
    /// Record `Closing`, then close.
    Close(Close),
    /// A technician-closed ticket's condition went away: mark it cleared.
    Clear {
        /// Key.
        key: TicketKey,
    },
}

impl Action {
    /// The ledger transition that records the action (persist it before any PSA call).
    pub fn transition(&self) -> Transition {
        match self {
            Self::Create(c) => c.transition(),
            Self::Close(c) => Transition::CloseRequested { key: c.key.clone(), status: c.status, note: c.note.clone() },
            Self::Clear { key } => Transition::Cleared { key: key.clone() },
        }
    }
}

/// The outcome of reconciling one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// What to do, in key order.
    pub actions: Vec<Action>,
    /// Active conditions with an enabled rule that were not ticketed, and why (rule-off rows and
    /// conditions already ticketed are not listed: they are the normal case).
    pub skipped: Vec<(TicketKey, SkipReason)>,
}

/// Reconciles one tenant's complete status snapshot with the ledger at time `now`.
///
/// - For each active, catalogued description whose row is enabled and that has no live ticket
///   (and no technician-closed ticket while it persists): create.
/// - For each open status ticket whose description is no longer active on its device (or whose
///   device is gone): close with the configured closed status, whatever the device's overall
///   status still is (the guide's "Databases are out of date" example).
/// - For each resolvable Office 365 issue that is no longer active: close its open ticket.
/// - Technician-closed tickets whose condition went away are marked cleared.
pub fn reconcile(snapshot: &StatusSnapshot, ctx: &Context, ledger: &Ledger, now: DateTime<Utc>) -> Reconciliation {
    let mut out = Reconciliation::default();
    reconcile_devices(snapshot, ctx, ledger, now, &mut out);
    reconcile_issues(snapshot, ctx, ledger, &mut out);
    out
}

fn reconcile_devices(
    snapshot: &StatusSnapshot,
    ctx: &Context,
    ledger: &Ledger,
    now: DateTime<Utc>,
    out: &mut Reconciliation,
) {
    let tenant = &snapshot.tenant;
    let product = snapshot.product;
    let mut active: BTreeSet<(&DeviceId, &crate::model::StatusDescription)> = BTreeSet::new();
    for device in &snapshot.devices {
        for a in &device.active {
            if !active.insert((&device.device.id, &a.description)) || !a.description.is_known() {
                continue;
            }
            let row = RowId::Status(product, a.level, a.description.clone());
            let Some(rule) = ctx.enabled_rule(&row) else {
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
            out.actions.push(Action::Create(Create { key, generation, draft }));
        }
    }
    for entry in ledger.status_entries(product, tenant) {
        let TicketKey::Status { device, description, .. } = &entry.key else {
            continue;
        };
        if active.contains(&(device, description)) {
            continue;
        }
        match &entry.state {
            TicketState::Open { .. } => match ctx.closed_status() {
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
}

fn reconcile_issues(snapshot: &StatusSnapshot, ctx: &Context, ledger: &Ledger, out: &mut Reconciliation) {
    if snapshot.issues.is_empty() {
        return;
    }
    let active: BTreeSet<Office365EventType> =
        snapshot.issues.iter().filter(|i| i.active).map(|i| i.event_type).collect();
    let reported: BTreeSet<Office365EventType> = snapshot.issues.iter().map(|i| i.event_type).collect();
    for entry in ledger.issue_entries(&snapshot.tenant) {
        let TicketKey::Issue { event_type, .. } = &entry.key else {
            continue;
        };
        // Only a reported, inactive issue is resolved: silence is not a resolved signal.
        if active.contains(event_type) || !reported.contains(event_type) {
            continue;
        }
        match &entry.state {
            TicketState::Open { .. } => {
                if let Some(status) = ctx.closed_status() {
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
}
