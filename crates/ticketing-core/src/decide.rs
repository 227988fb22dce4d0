//! The decisions: an event in, a ticket draft or a typed skip out; a status snapshot and the
//! ledger in, create and close actions out. Time is a parameter; nothing here performs I/O.
//!
//! **Cost.** Decisions run for every event and every device of every poll, so they are written
//! to allocate only what they return. Each text is written once into a buffer of its exact
//! length (timestamps digit by digit, no format string parsed), the idempotency key hashes the
//! key's pieces as a stream (the fixed start of each kind hashed at compile time), nothing is
//! copied to be cut when it is short enough. A reconciliation reads the tenant's ledger entries
//! with one range query and indexes them by device id for the snapshot at hand, probing with
//! the snapshot's own borrowed strings: its cost per device does not grow with the ledger.
//! `benches/decisions.rs` measures both against the straightforward spelling of the same
//! decisions (`benches/naive/mod.rs`, checked to decide identically by `tests/naive.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::ledger::{Ledger, LedgerEntry, Recurrence, TicketState, Transition, UpdateReason, reopenable};
use crate::maintenance::{MaintenanceWindow, window_at};
use crate::model::{
    ActiveDescription, ComputerStatus, DESCRIPTIONS, DeviceStatus, Event, EventClass, Office365EventType, Product,
    PsaId, Severity, StatusDescription, StatusLevel, StatusSnapshot, TenantId,
};
use crate::ports::{Account, TicketUpdate};
use crate::rules::{
    ResolvedGeneral, ResolvedRule, RowId, Rule, RuleSet, ValidationError, resolve_general, resolve_rule,
};
use crate::template::{RowTemplates, Templates};
use crate::text::{self, FastMap, FastSet};
use crate::ticket::{
    EVENT_PREFIX, Fnv128, ISSUE_PREFIX, IdempotencyKey, InlineIdempotencyKey, KEY_LINE_PREFIX, STATUS_PREFIX,
    TicketDraft, TicketKey, TicketNote, TicketRef, Urgency, status_hash,
};

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
    /// A maintenance window covers the tenant (and device): no ticket now. A status problem
    /// still active when the window ends is ticketed by the first reconciliation after it.
    Maintenance {
        /// The window's id.
        window: String,
    },
    /// The flap guard: the status description has been active since `since`, and gets its
    /// ticket only if it still is at `until` (its row's creation delay).
    Pending {
        /// First seen active.
        since: DateTime<Utc>,
        /// When it qualifies.
        until: DateTime<Utc>,
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
            Self::Maintenance { .. } => "maintenance",
            Self::Pending { .. } => "pending",
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
            Self::Maintenance { window } => write!(f, "maintenance window \"{window}\""),
            Self::Pending { since, until } => {
                write!(f, "pending: active since {since}, ticketed at {until} if it persists")
            }
            other => f.write_str(other.label()),
        }
    }
}

/// Everything a decision depends on besides its input and the ledger: the saved rules resolved
/// against the PSA catalog, the tenant → account mapping and the accounts' active flags.
///
/// Build it once whenever one of those changes; decisions then only look things up (in dense
/// tables for the rows and a hash table for the tenants, so a lookup costs no tree walk).
#[derive(Debug, Clone)]
pub struct Context {
    general: Result<ResolvedGeneral, Vec<ValidationError>>,
    rules: BTreeMap<RowId, RuleResult>,
    /// Enabled event rows by [`event_slot`].
    event_rules: Vec<Option<RuleResult>>,
    /// Enabled rows of catalogued status descriptions by [`status_slot`].
    status_rules: Vec<Option<RuleResult>>,
    /// Each mapped tenant's account, whether that account is active, and its key hashes.
    tenants: FastMap<TenantId, MappedTenant>,
    /// Whether open status tickets follow severity, by `Product as usize`.
    follows_severity: [bool; 3],
    /// The enabled rows' title and description templates, compiled; `None` when no row has one
    /// (the hand-written texts, one branch).
    templates: Option<Arc<Templates>>,
}

#[derive(Debug, Clone)]
struct MappedTenant {
    account: PsaId,
    active: bool,
    /// The key hash over `event|<product>|<tenant>|`, by `Product as usize`, and over
    /// `issue|<tenant>|`: an event's idempotency key then hashes only its own id.
    event_hash: [Fnv128; 3],
    issue_hash: Fnv128,
    /// The tenant's maintenance windows (empty for almost every tenant: one length check).
    windows: Vec<MaintenanceWindow>,
}

impl MappedTenant {
    fn new(tenant: &TenantId, account: PsaId, active: bool, windows: Vec<MaintenanceWindow>) -> Self {
        let t = tenant.as_str().as_bytes();
        Self {
            account,
            active,
            windows,
            event_hash: Product::ALL.map(|p| EVENT_PREFIX[p as usize].write(t).write(b"|")),
            issue_hash: ISSUE_PREFIX.write(t).write(b"|"),
        }
    }

    /// [`TicketKey::idempotency_key`] of `key`, one of this tenant's event or issue keys.
    fn idempotency_key(&self, key: &TicketKey, generation: u32) -> IdempotencyKey {
        let hash = match key {
            TicketKey::Event { product, source_id, .. } => {
                self.event_hash[*product as usize].write(source_id.as_str().as_bytes()).0
            }
            TicketKey::Issue { event_type, .. } => self.issue_hash.write(event_type.code().as_bytes()).0,
            TicketKey::Status { .. } => key.hash(),
        };
        IdempotencyKey(InlineIdempotencyKey::from_hash(hash, generation).as_str().to_owned())
    }
}

type RuleResult = Result<ResolvedRule, Vec<ValidationError>>;

const EVENT_CLASSES: usize = Severity::ALL.len() + Office365EventType::ALL.len();

fn event_slot(product: Product, class: EventClass) -> usize {
    let class = match class {
        EventClass::Severity(s) => s as usize,
        EventClass::Office365(t) => Severity::ALL.len() + t as usize,
    };
    product as usize * EVENT_CLASSES + class
}

/// The slot of a catalogued description's row, `None` for anything else.
fn status_slot(product: Product, level: StatusLevel, description: &StatusDescription) -> Option<usize> {
    let StatusDescription::Known(i) = description else { return None };
    let i = usize::from(*i);
    (i < DESCRIPTIONS.len())
        .then(|| (product as usize * StatusLevel::ALL.len() + level as usize) * DESCRIPTIONS.len() + i)
}

impl Context {
    /// Resolves the enabled rules of `rules` against `catalog`.
    pub fn new(
        rules: &RuleSet,
        catalog: &Catalog,
        mapping: impl IntoIterator<Item = (TenantId, PsaId)>,
        accounts: impl IntoIterator<Item = Account>,
    ) -> Self {
        let resolved: BTreeMap<RowId, RuleResult> = rules
            .rows
            .iter()
            .filter(|(_, r)| r.enabled)
            .map(|(row, rule)| (row.clone(), resolve_rule(row, rule, catalog)))
            .collect();
        let mut event_rules = vec![None; Product::ALL.len() * EVENT_CLASSES];
        let mut status_rules = vec![None; Product::ALL.len() * StatusLevel::ALL.len() * DESCRIPTIONS.len()];
        for (row, rule) in &resolved {
            let slot = match row {
                RowId::Event(product, class) => event_rules.get_mut(event_slot(*product, *class)),
                RowId::Status(product, level, d) => {
                    status_slot(*product, *level, d).and_then(|i| status_rules.get_mut(i))
                }
            };
            if let Some(slot) = slot {
                *slot = Some(rule.clone());
            }
        }
        let active: BTreeMap<PsaId, bool> = accounts.into_iter().map(|a| (a.id, a.active)).collect();
        let tenants = mapping
            .into_iter()
            .map(|(tenant, account)| {
                let windows = rules.maintenance.iter().filter(|w| w.tenant == tenant).cloned().collect();
                let mapped =
                    MappedTenant::new(&tenant, account, active.get(&account).copied().unwrap_or(false), windows);
                (tenant, mapped)
            })
            .collect();
        let follows_severity = Product::ALL.map(|p| p.has_statuses() && rules.priority_follows_severity.contains(&p));
        Self {
            general: resolve_general(&rules.general, catalog),
            rules: resolved,
            event_rules,
            status_rules,
            tenants,
            follows_severity,
            templates: Templates::compile(rules.rows.iter().filter(|(_, r)| r.enabled)).map(Arc::new),
        }
    }

    /// A row's compiled templates, when it has any.
    fn templates(&self, row: &RowId) -> Option<RowTemplates<'_>> {
        self.templates.as_deref().and_then(|t| t.row(row))
    }

    /// The maintenance window that suppresses a create for `tenant` and `device_name` at `now`.
    pub fn maintenance_window(&self, tenant: &TenantId, device_name: Option<&str>, now: DateTime<Utc>) -> Option<&str> {
        let mapped = self.tenants.get(tenant)?;
        window_at(&mapped.windows, tenant, device_name, now).map(|w| w.id.as_str())
    }

    /// The closed status to set, when the general settings resolve.
    pub fn closed_status(&self) -> Option<PsaId> {
        self.general.as_ref().ok().map(|g| g.closed_status)
    }

    /// The account a tenant is mapped to.
    pub fn account_of(&self, tenant: &TenantId) -> Option<PsaId> {
        self.tenants.get(tenant).map(|t| t.account)
    }

    fn enabled_rule(&self, row: &RowId) -> Option<&RuleResult> {
        let slot = match row {
            RowId::Event(product, class) => self.event_rules.get(event_slot(*product, *class)),
            RowId::Status(product, level, d) => match status_slot(*product, *level, d) {
                Some(i) => self.status_rules.get(i),
                None => return self.rules.get(row),
            },
        };
        slot.and_then(Option::as_ref)
    }

    /// The checks every create goes through after the rule is known to be on: mapping, active
    /// account, valid rule. Returns the account and resolved settings.
    fn admit<'a>(
        &'a self,
        tenant: &TenantId,
        rule: &'a RuleResult,
    ) -> Result<(PsaId, &'a ResolvedGeneral, &'a ResolvedRule), SkipReason> {
        self.admit_tenant(tenant, rule).map(|(t, g, r)| (t.account, g, r))
    }

    fn admit_tenant<'a>(
        &'a self,
        tenant: &TenantId,
        rule: &'a RuleResult,
    ) -> Result<(&'a MappedTenant, &'a ResolvedGeneral, &'a ResolvedRule), SkipReason> {
        let mapped = self.tenants.get(tenant).ok_or(SkipReason::TenantUnmapped)?;
        if !mapped.active {
            return Err(SkipReason::AccountInactive { account: mapped.account });
        }
        match (&self.general, rule) {
            (Ok(g), Ok(r)) => Ok((mapped, g, r)),
            (general, rule) => {
                let mut errors = general.as_ref().err().cloned().unwrap_or_default();
                if let Err(e) = rule {
                    errors.extend(e.iter().cloned());
                }
                Err(SkipReason::RuleInvalid { errors })
            }
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
    /// An event ticket on a row with a recurrence window: what makes a later event the same
    /// (recorded with the entry, so its recurrences are noted on this ticket). `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Box<Recurrence>>,
}

impl Create {
    /// The ledger transition that records this decision (persist it before calling the PSA).
    pub fn transition(&self) -> Transition {
        Transition::Plan {
            key: self.key.clone(),
            generation: self.generation,
            draft: self.draft.clone(),
            recurrence: self.recurrence.clone(),
        }
    }
}

/// A recurrence noted on an existing ticket instead of a new one ([`EventDecision::Note`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// The ticket's key: the event it was made for, planned or open.
    pub key: TicketKey,
    /// The recurring event's own key (for the audit; no entry is recorded for it).
    pub event: TicketKey,
    /// The note: "The event recurred (2nd time) at … UTC: <title>", marker
    /// `<ticket's idempotency key>/recurrence/<n>`.
    pub note: TicketNote,
}

impl Note {
    /// The ledger transition that counts the recurrence and queues its note (persist it; the
    /// note is then outbox work, [`crate::ledger::Recovery::AddRecurrenceNote`]).
    pub fn transition(&self) -> Transition {
        Transition::Recurred { key: self.key.clone(), note: self.note.clone() }
    }
}

/// The outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // short-lived values, most of them creates: boxing would only add an allocation each
pub enum EventDecision {
    /// Create a ticket.
    Create(Create),
    /// The same event recurred on the same computer within its row's recurrence window while
    /// its ticket is planned or open: count it and add a note to that ticket (no new ticket).
    Note(Note),
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
    let (mapped, general, resolved) = match ctx.admit_tenant(&event.tenant, rule) {
        Ok(x) => x,
        Err(reason) => return skip(key, reason),
    };
    let Some(generation) = ledger.next_generation(&key) else {
        return skip(key, SkipReason::AlreadyTicketed);
    };
    if !mapped.windows.is_empty() {
        // Suppressed when the window is open now (no create during it) or was when the event
        // occurred (a late arrival from inside the window is maintenance noise too).
        let device = event.device.as_ref().map(|d| d.name.as_str());
        let window = window_at(&mapped.windows, &event.tenant, device, now)
            .or_else(|| window_at(&mapped.windows, &event.tenant, device, event.occurred_at));
        if let Some(w) = window {
            return skip(key, SkipReason::Maintenance { window: w.id.clone() });
        }
    }
    let templates = ctx.templates(&row);
    let recurrence = match (resolved.recurrence_hours, &event.device) {
        (Some(hours), Some(device)) if matches!(key, TicketKey::Event { .. }) => {
            let open = ledger.recurrence_entry(event.product, &event.tenant, &device.id, &event.event_type);
            let title = || event_texts(event, &key, templates.as_ref(), false).0;
            if let Some(note) = open.and_then(|e| recurrence_note(e, event, hours, title)) {
                return EventDecision::Note(Note { key: note.0, event: key, note: note.1 });
            }
            Some(Box::new(Recurrence::new(device.id.clone(), event.event_type.clone(), event.occurred_at)))
        }
        _ => None,
    };
    let urgency = match event.class {
        EventClass::Severity(Severity::Critical) | EventClass::Office365(_) => Urgency::Critical,
        EventClass::Severity(_) => Urgency::Normal,
    };
    let (title, description) = match &templates {
        None => (event_title(event), event_description(event, &key)),
        Some(t) => event_texts(event, &key, Some(t), true),
    };
    let device_name = event.device.as_ref().map(|d| d.name.clone());
    let expires_at = resolved.lifetime_days.map(|d| event.occurred_at + Duration::days(i64::from(d)));
    let idempotency_key = mapped.idempotency_key(&key, generation);
    let mut draft =
        build_draft(mapped.account, general, resolved, title, description, idempotency_key, device_name, urgency, now);
    draft.expires_at = expires_at;
    draft.row = Some(row);
    EventDecision::Create(Create { key, generation, draft, recurrence })
}

/// The note for `event` recurring on `entry`'s ticket, when that ticket takes it: planned (the
/// note waits for the create) or open, and made for an event within `hours` of this one (either
/// way: a late arrival of an earlier occurrence counts too). A ticket closed by anyone, or whose
/// create failed or was dropped, does not: the event gets its own ticket, as without the feature.
#[cold]
fn recurrence_note(
    entry: &LedgerEntry,
    event: &Event,
    hours: u32,
    title: impl FnOnce() -> String,
) -> Option<(TicketKey, TicketNote)> {
    if !matches!(entry.state, TicketState::Planned { .. } | TicketState::Open { .. }) {
        return None;
    }
    let r = entry.recurrence.as_deref()?;
    if (event.occurred_at - r.first_at).abs() >= Duration::hours(i64::from(hours)) {
        return None;
    }
    let marker = entry.next_recurrence_marker()?;
    // The ticketed event was the first time; its n-th recurrence the (n + 1)-th.
    let time = r.count.saturating_add(2);
    let mut at = String::with_capacity(text::UTC_LEN);
    text::push_utc(&mut at, event.occurred_at);
    let text = format!(
        "The event recurred ({time}{} time) at {at} UTC: {}\nEvent id: {}",
        ordinal_suffix(time),
        title(),
        event.source_id.as_str(),
    );
    Some((entry.key.clone(), TicketNote { marker, text }))
}

/// An event's title and (when `description`) description: the row's templates where set and
/// rendering, the guide's texts otherwise; the description finished with its key line.
#[cold]
fn event_texts(
    event: &Event,
    key: &TicketKey,
    templates: Option<&RowTemplates<'_>>,
    description: bool,
) -> (String, String) {
    let values = templates.map(|_| crate::template::event_values(event));
    let rendered = |f: &dyn Fn(&RowTemplates<'_>, &minijinja::Value) -> Option<String>| {
        templates.zip(values.as_ref()).and_then(|(t, v)| f(t, v))
    };
    let title = rendered(&|t, v| t.title(v)).unwrap_or_else(|| event_title(event));
    if !description {
        return (title, String::new());
    }
    let description = rendered(&|t, v| t.description(v))
        .map_or_else(|| event_description(event, key), |d| finish_description(d, key));
    (title, description)
}

/// `st`, `nd`, `rd` or `th`, as English writes 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st.
fn ordinal_suffix(n: u32) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// The lifetime rule: stale when `now - occurred_at >= lifetime_days` days.
pub fn is_stale(occurred_at: DateTime<Utc>, lifetime_days: u32, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(occurred_at) >= Duration::days(i64::from(lifetime_days))
}

/// Writes `parts` one after the other into one string of exactly their length.
fn concat<const N: usize>(parts: [&str; N]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// The event's "what": its localised name, or its type code when the source gave no name.
fn event_what(event: &Event) -> &str {
    if event.display_name.is_empty() { &event.event_type } else { &event.display_name }
}

/// `(" on ", computer)`, `(" for ", mailbox)` or nothing.
fn event_subject(event: &Event) -> (&'static str, &str) {
    match (&event.device, &event.mailbox) {
        (Some(d), _) => (" on ", &d.name),
        (None, Some(m)) => (" for ", m),
        (None, None) => ("", ""),
    }
}

fn event_title(event: &Event) -> String {
    let (on, subject) = event_subject(event);
    let mut title = match event.class {
        EventClass::Severity(s) => {
            concat([short(event.product), " ", s.display_name(), " event: ", event_what(event), on, subject])
        }
        EventClass::Office365(t) => concat([short(event.product), ": ", t.display_name(), on, subject]),
    };
    text::truncate_in_place(&mut title, TicketDraft::TITLE_MAX);
    title.shrink_to_fit();
    title
}

fn class_name(class: EventClass) -> &'static str {
    match class {
        EventClass::Severity(s) => s.display_name(),
        EventClass::Office365(t) => t.display_name(),
    }
}

fn event_description(event: &Event, key: &TicketKey) -> String {
    let what = event_what(event);
    let first = if event.text.is_empty() { what } else { &event.text };
    let head = [
        first,
        "\n\nProduct: ",
        event.product.display_name(),
        "\nCustomer (tenant): ",
        event.tenant.as_str(),
        "\nSeverity / type: ",
        class_name(event.class),
        "\nOccurred (UTC): ",
    ];
    let tail = ["\nEvent type: ", &event.event_type, "\nEvent id: ", event.source_id.as_str(), "\n"];
    let computer = event.device.as_ref().map(|d| ["Computer: ", &d.name, " (", d.id.as_str(), ")\n"]);
    let mailbox = event.mailbox.as_ref().map(|m| ["Mailbox: ", m, "\n"]);
    let len = |parts: &[&str]| parts.iter().map(|p| p.len()).sum::<usize>();
    let body = len(&head)
        + text::UTC_LEN
        + len(&tail)
        + computer.as_ref().map_or(0, |c| len(c))
        + mailbox.as_ref().map_or(0, |m| len(m));
    let mut out = String::with_capacity(body + key_line_room(key));
    for p in head {
        out.push_str(p);
    }
    text::push_utc(&mut out, event.occurred_at);
    for p in tail.iter().chain(computer.iter().flatten()).chain(mailbox.iter().flatten()) {
        out.push_str(p);
    }
    finish_description(out, key)
}

fn short(product: Product) -> &'static str {
    match product {
        Product::SecurityCenter => "Kaspersky Security Center:",
        Product::EndpointCloud => "Kaspersky Endpoint Security Cloud:",
        Product::Office365 => "Kaspersky Security for Office 365",
    }
}

/// Bytes [`finish_description`] adds: the blank line and the key line.
fn key_line_room(key: &TicketKey) -> usize {
    2 + KEY_LINE_PREFIX.len() + key.canonical_len()
}

/// Ends a description with its key line, so a listing of the PSA can tell whose ticket it is,
/// and keeps it within [`TicketDraft::DESCRIPTION_MAX`] characters: the text is cut first, so
/// the key line survives. In place, in the buffer the text was written to.
fn finish_description(mut description: String, key: &TicketKey) -> String {
    let kept = description.trim_end().len();
    description.truncate(kept);
    let room = key_line_room(key);
    // Text and key line within the limit in bytes are within it in characters: nothing to cut.
    if description.len() + room > TicketDraft::DESCRIPTION_MAX {
        let key_chars = KEY_LINE_PREFIX.chars().count() + key.canonical().chars().count();
        text::truncate_in_place(&mut description, TicketDraft::DESCRIPTION_MAX.saturating_sub(key_chars + 2));
    }
    description.push_str("\n\n");
    description.push_str(KEY_LINE_PREFIX);
    key.write_canonical(&mut description);
    text::truncate_in_place(&mut description, TicketDraft::DESCRIPTION_MAX);
    // Exact already unless something was cut (drafts may wait in the ledger: keep them tight).
    description.shrink_to_fit();
    description
}

#[allow(clippy::too_many_arguments)] // one private constructor; a struct would only rename the list
fn build_draft(
    account: PsaId,
    general: &ResolvedGeneral,
    rule: &ResolvedRule,
    title: String,
    description: String,
    idempotency_key: IdempotencyKey,
    device_name: Option<String>,
    urgency: Urgency,
    now: DateTime<Utc>,
) -> TicketDraft {
    TicketDraft {
        account,
        title,
        description,
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
        idempotency_key,
        device_name,
        urgency,
    }
}

/// What a ticket of `row` looks like with `rule`'s templates, for the row's sample event or
/// status problem (the preview of the editing tab): title and description exactly as the
/// decisions write them (templates rendered, the PSA's limits applied, the key line appended),
/// the guide's texts where the rule has no template. Refused with every template problem when a
/// template does not validate.
pub fn preview_texts(row: &RowId, rule: &Rule) -> Result<(String, String), Vec<ValidationError>> {
    let problems = crate::template::problems(row, rule);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|(field, problem)| ValidationError { row: Some(row.clone()), field, problem })
            .collect());
    }
    let compiled = Templates::compile([(row, rule)]);
    let templates = compiled.as_ref().and_then(|t| t.row(row));
    match crate::template::sample(row) {
        crate::template::Sample::Event(e) => {
            let key = event_key(&e);
            Ok(match &templates {
                None => (event_title(&e), event_description(&e, &key)),
                Some(t) => event_texts(&e, &key, Some(t), true),
            })
        }
        crate::template::Sample::Status(product, tenant, device, a) => {
            let at = crate::template::sample_time();
            let key = TicketKey::Status {
                product,
                tenant: tenant.clone(),
                device: device.device.id.clone(),
                description: a.description.clone(),
            };
            let snapshot =
                StatusSnapshot { tenant, product, devices: Vec::new(), issues: Vec::new(), unknown_descriptions: 0 };
            let general = ResolvedGeneral { source: None, new_status: PsaId(0), closed_status: PsaId(0) };
            let resolved = ResolvedRule {
                lifetime_days: None,
                queue: PsaId(0),
                priority: PsaId(0),
                due_hours: rule.due_hours,
                work_type: None,
                issue_type: None,
                sub_issue_type: None,
                create_delay_minutes: 0,
                reopen_hours: None,
                recurrence_hours: None,
            };
            let draft = StatusTexts::new(&snapshot, at).draft(
                &device,
                &a,
                &key,
                1,
                PsaId(0),
                &general,
                &resolved,
                templates,
                at,
            );
            Ok((draft.title, draft.description))
        }
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
    /// The flap guard: a status description seen active for the first time, on a row with a
    /// creation delay. Record `Delayed` (no PSA call); it is ticketed by the first
    /// reconciliation at or after `until` that still sees it.
    Delay {
        /// Key.
        key: TicketKey,
        /// First seen active (the reconciliation's `now`).
        since: DateTime<Utc>,
        /// When it qualifies.
        until: DateTime<Utc>,
    },
    /// A delayed description cleared before its delay ran out: record `DelayCleared` (no PSA
    /// call); it never gets a ticket.
    DelayCleared {
        /// Key.
        key: TicketKey,
    },
    /// The reopen window: a status problem returned soon after the integration closed its
    /// ticket. Record the transition, then update the ticket (status back to the new-ticket
    /// status, the row's priority, due time from now) and add the note.
    Reopen(Update),
    /// Priority follows severity: the open ticket's description became Critical. Record the
    /// transition, then update the ticket (the Critical row's priority and due time) and add
    /// the note.
    Update(Update),
}

/// A change to an existing ticket ([`Action::Reopen`], [`Action::Update`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// The problem's identity.
    pub key: TicketKey,
    /// The ticket to change.
    pub ticket: TicketRef,
    /// The fields to change ([`crate::ports::TicketSink::update_ticket`]).
    pub update: TicketUpdate,
    /// The note to add (at most once: its marker is unique and stable across retries).
    pub note: TicketNote,
    /// The entry's urgency from now on (the problem's current level).
    pub urgency: Urgency,
}

impl Action {
    /// The ledger transition that records the action (persist it before any PSA call).
    pub fn transition(&self) -> Transition {
        match self {
            Self::Create(c) => c.transition(),
            Self::Close(c) => Transition::CloseRequested { key: c.key.clone(), status: c.status, note: c.note.clone() },
            Self::Clear { key } => Transition::Cleared { key: key.clone() },
            Self::Delay { key, since, .. } => Transition::Delayed { key: key.clone(), since: *since },
            Self::DelayCleared { key } => Transition::DelayCleared { key: key.clone() },
            Self::Reopen(u) => u.transition(UpdateReason::Reopen),
            Self::Update(u) => u.transition(UpdateReason::Severity),
        }
    }

    /// The key the action concerns.
    pub fn key(&self) -> &TicketKey {
        match self {
            Self::Create(Create { key, .. })
            | Self::Close(Close { key, .. })
            | Self::Clear { key }
            | Self::Delay { key, .. }
            | Self::DelayCleared { key }
            | Self::Reopen(Update { key, .. })
            | Self::Update(Update { key, .. }) => key,
        }
    }
}

impl Update {
    fn transition(&self, reason: UpdateReason) -> Transition {
        Transition::UpdateRequested {
            key: self.key.clone(),
            update: self.update.clone(),
            note: self.note.clone(),
            reason,
            urgency: self.urgency,
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
    // The tenant's status entries in key order (so grouped by device), and a per-snapshot index
    // from device id to its run of entries: every probe below borrows the snapshot's own
    // strings, and costs one hash per device with descriptions, whatever the ledger's size.
    let entries: Vec<&LedgerEntry> = ledger.status_entries(product, tenant).collect();
    // Two passes, so that each is a tight loop of independent loads (the entries, then their
    // device ids): on a ledger larger than the caches, the misses overlap instead of queueing.
    let devices: Vec<&str> = entries.iter().map(|e| status_device(e)).collect();
    let mut by_device: FastMap<&str, (usize, usize)> = FastMap::default();
    by_device.reserve(entries.len());
    let mut start = 0;
    while start < devices.len() {
        let device = devices[start];
        let end = start + devices[start..].iter().take_while(|d| **d == device).count();
        by_device.insert(device, (start, end));
        start = end;
    }
    // Whether each entry's condition is active in the snapshot (its ticket stays open).
    let mut seen = vec![false; entries.len()];
    // Active conditions the ledger does not know, each considered once.
    let mut fresh: FastSet<(&str, &StatusDescription)> = FastSet::default();
    let mut texts: Option<StatusTexts> = None;
    let follows = ctx.follows_severity[product as usize];
    for device in &snapshot.devices {
        if device.active.is_empty() {
            continue;
        }
        let id = device.device.id.as_str();
        let run = by_device.get(id).map_or(0..0, |&(s, e)| s..e);
        for a in &device.active {
            let known = run.clone().find(|&i| status_description(entries[i]) == &a.description);
            let generation = match known {
                Some(i) if seen[i] => continue,
                Some(i) => {
                    seen[i] = true;
                    crate::ledger::next_generation(&entries[i].key, Some(entries[i]))
                }
                None if !fresh.insert((id, &a.description)) => continue,
                None => Some(1),
            };
            let entry = known.map(|i| entries[i]);
            let Some(generation) = generation else {
                // Open already. Priority follows severity: a Warning ticket whose description is
                // now Critical (never the other way: a severity that drops back changes nothing).
                if let Some(e) = entry {
                    if follows && a.level == StatusLevel::Critical && e.urgency == Urgency::Normal {
                        out.actions.extend(severity_update(e, device, a, ctx, now));
                    }
                }
                continue;
            };
            let Some(slot) = status_slot(product, a.level, &a.description) else {
                // Not catalogued: no rule row.
                continue;
            };
            let Some(rule) = ctx.status_rules.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            let key = TicketKey::Status {
                product,
                tenant: tenant.clone(),
                device: device.device.id.clone(),
                description: a.description.clone(),
            };
            let (mapped, general, resolved) = match ctx.admit_tenant(tenant, rule) {
                Ok(x) => x,
                Err(reason) => {
                    out.skipped.push((key, reason));
                    continue;
                }
            };
            let delayed = entry.and_then(|e| match &e.state {
                TicketState::Delayed { since, .. } => Some(*since),
                _ => None,
            });
            let since = delayed.unwrap_or(now);
            if resolved.create_delay_minutes > 0 {
                let until = since + Duration::minutes(i64::from(resolved.create_delay_minutes));
                if now < until {
                    match delayed {
                        Some(since) => out.skipped.push((key, SkipReason::Pending { since, until })),
                        None => out.actions.push(Action::Delay { key, since: now, until }),
                    }
                    continue;
                }
            }
            if !mapped.windows.is_empty() {
                if let Some(w) = window_at(&mapped.windows, tenant, Some(&device.device.name), now) {
                    out.skipped.push((key, SkipReason::Maintenance { window: w.id.clone() }));
                    continue;
                }
            }
            if let (Some(hours), Some(e)) = (resolved.reopen_hours, entry) {
                if let Some((ticket, closed_at)) = reopenable(&e.state) {
                    if since.signed_duration_since(closed_at) < Duration::hours(i64::from(hours)) {
                        out.actions
                            .push(Action::Reopen(reopen(e, key, ticket, a, general, resolved, since, closed_at, now)));
                        continue;
                    }
                }
            }
            let texts = texts.get_or_insert_with(|| StatusTexts::new(snapshot, now));
            let templates =
                ctx.templates.as_deref().and_then(|t| t.row(&RowId::Status(product, a.level, a.description.clone())));
            let draft = texts.draft(device, a, &key, generation, mapped.account, general, resolved, templates, now);
            out.actions.push(Action::Create(Create { key, generation, draft, recurrence: None }));
        }
    }
    for (entry, _) in entries.iter().zip(&seen).filter(|(_, seen)| !**seen) {
        let TicketKey::Status { description, .. } = &entry.key else {
            continue;
        };
        match &entry.state {
            TicketState::Open { .. } => match ctx.closed_status() {
                Some(status) => {
                    let (pre, text) = description.text_parts();
                    let note = concat([
                        "The status description \"",
                        pre,
                        text,
                        "\" no longer applies to this computer; closed automatically.",
                    ]);
                    out.actions.push(Action::Close(Close { key: entry.key.clone(), status, note }));
                }
                None => out.skipped.push((
                    entry.key.clone(),
                    SkipReason::RuleInvalid { errors: ctx.general.clone().err().unwrap_or_default() },
                )),
            },
            TicketState::Closed { cleared: false, .. } => out.actions.push(Action::Clear { key: entry.key.clone() }),
            TicketState::Delayed { .. } => out.actions.push(Action::DelayCleared { key: entry.key.clone() }),
            _ => {}
        }
    }
}

fn level_name(level: StatusLevel) -> &'static str {
    match level {
        StatusLevel::Critical => "Critical",
        StatusLevel::Warning => "Warning",
    }
}

fn urgency_of(level: StatusLevel) -> Urgency {
    if level == StatusLevel::Critical { Urgency::Critical } else { Urgency::Normal }
}

/// The reopen of a ticket the integration closed at `closed_at`, for a problem active again
/// since `since`: status back to the new-ticket status, the row's priority, due time from now.
#[allow(clippy::too_many_arguments)] // one private helper; a struct would only rename the list
fn reopen(
    entry: &LedgerEntry,
    key: TicketKey,
    ticket: &TicketRef,
    a: &ActiveDescription,
    general: &ResolvedGeneral,
    rule: &ResolvedRule,
    since: DateTime<Utc>,
    closed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Update {
    let minutes = since.signed_duration_since(closed_at).num_minutes().max(0);
    let text = format!(
        "The status description \"{}\" ({} status) is active again {minutes} minute(s) after this ticket was closed \
         automatically; reopened instead of creating a new ticket.",
        a.description.text(),
        level_name(a.level),
    );
    // The transition counts this reopen: the marker names the count it will have.
    let marker = format!("{}/reopen/{}", entry.idempotency_key, entry.reopens.saturating_add(1));
    Update {
        key,
        ticket: ticket.clone(),
        update: TicketUpdate {
            status: Some(general.new_status),
            priority: Some(rule.priority),
            due: Some(now + Duration::hours(i64::from(rule.due_hours))),
        },
        note: TicketNote { marker, text },
        urgency: urgency_of(a.level),
    }
}

/// Priority follows severity for an open Warning ticket whose description is now Critical: the
/// Critical row's priority and due time, when that row is on and resolves for the tenant.
#[cold]
fn severity_update(
    entry: &LedgerEntry,
    device: &DeviceStatus,
    a: &ActiveDescription,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Option<Action> {
    let TicketState::Open { ticket } = &entry.state else { return None };
    let TicketKey::Status { product, tenant, .. } = &entry.key else { return None };
    let slot = status_slot(*product, StatusLevel::Critical, &a.description)?;
    let rule = ctx.status_rules.get(slot).and_then(Option::as_ref)?;
    let (_, _, critical) = ctx.admit_tenant(tenant, rule).ok()?;
    let text = format!(
        "The status description \"{}\" on {} is now Critical (it was Warning): priority and due time follow the \
         Critical status rule.",
        a.description.text(),
        device.device.name,
    );
    Some(Action::Update(Update {
        key: entry.key.clone(),
        ticket: ticket.clone(),
        update: TicketUpdate {
            status: None,
            priority: Some(critical.priority),
            due: Some(now + Duration::hours(i64::from(critical.due_hours))),
        },
        note: TicketNote { marker: entry.note_marker("severity"), text },
        urgency: Urgency::Critical,
    }))
}

fn status_device(entry: &LedgerEntry) -> &str {
    match &entry.key {
        TicketKey::Status { device, .. } => device.as_str(),
        _ => "",
    }
}

fn status_description(entry: &LedgerEntry) -> &StatusDescription {
    match &entry.key {
        TicketKey::Status { description, .. } => description,
        _ => &StatusDescription::MIN,
    }
}

/// What every status create of one snapshot shares: the detection time as text, and the key
/// hash over `status|<product>|<tenant>`.
struct StatusTexts {
    detected: String,
    hash_after_tenant: Fnv128,
}

impl StatusTexts {
    fn new(snapshot: &StatusSnapshot, now: DateTime<Utc>) -> Self {
        let mut detected = String::with_capacity(text::UTC_LEN);
        text::push_utc(&mut detected, now);
        let hash_after_tenant = STATUS_PREFIX[snapshot.product as usize].write(snapshot.tenant.as_str().as_bytes());
        Self { detected, hash_after_tenant }
    }

    #[allow(clippy::too_many_arguments)] // one private helper; a struct would only rename the list
    fn draft(
        &self,
        device: &DeviceStatus,
        a: &ActiveDescription,
        key: &TicketKey,
        generation: u32,
        account: PsaId,
        general: &ResolvedGeneral,
        rule: &ResolvedRule,
        templates: Option<RowTemplates<'_>>,
        now: DateTime<Utc>,
    ) -> TicketDraft {
        let TicketKey::Status { product, tenant, .. } = key else {
            unreachable!("status drafts are built for status keys")
        };
        let (pre, text) = a.description.text_parts();
        let level = match a.level {
            StatusLevel::Critical => "Critical",
            StatusLevel::Warning => "Warning",
        };
        let name = device.device.name.as_str();
        let values =
            templates.as_ref().map(|_| crate::template::status_values(*product, tenant, device, a, &self.detected));
        let rendered = templates.as_ref().zip(values.as_ref());
        let title = rendered.and_then(|(t, v)| t.title(v)).unwrap_or_else(|| {
            let mut title = concat([name, ": ", pre, text, " (", level, " status)"]);
            text::truncate_in_place(&mut title, TicketDraft::TITLE_MAX);
            title.shrink_to_fit();
            title
        });
        if let Some(d) = rendered.and_then(|(t, v)| t.description(v)) {
            return self.finish(
                device,
                a,
                key,
                generation,
                account,
                general,
                rule,
                title,
                finish_description(d, key),
                now,
            );
        }
        let status = match device.status {
            ComputerStatus::Ok => "Ok",
            ComputerStatus::Warning => "Warning",
            ComputerStatus::Critical => "Critical",
        };
        let parts = [
            "The computer ",
            name,
            " (",
            device.device.id.as_str(),
            ") has the status description \"",
            pre,
            text,
            "\", which puts it in ",
            level,
            " status.\n\nProduct: ",
            product.display_name(),
            "\nCustomer (tenant): ",
            tenant.as_str(),
            "\nComputer status: ",
            status,
            "\nDetected (UTC): ",
            &self.detected,
            "\n\nThis ticket closes automatically when the status description no longer applies.",
        ];
        let mut description = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + key_line_room(key));
        for p in parts {
            description.push_str(p);
        }
        let description = finish_description(description, key);
        self.finish(device, a, key, generation, account, general, rule, title, description, now)
    }

    #[allow(clippy::too_many_arguments)] // one private helper; a struct would only rename the list
    fn finish(
        &self,
        device: &DeviceStatus,
        a: &ActiveDescription,
        key: &TicketKey,
        generation: u32,
        account: PsaId,
        general: &ResolvedGeneral,
        rule: &ResolvedRule,
        title: String,
        description: String,
        now: DateTime<Utc>,
    ) -> TicketDraft {
        let TicketKey::Status { product, .. } = key else { unreachable!("status drafts are built for status keys") };
        let hash = status_hash(self.hash_after_tenant, &device.device.id, &a.description);
        let idempotency_key = IdempotencyKey(InlineIdempotencyKey::from_hash(hash, generation).as_str().to_owned());
        let urgency = if a.level == StatusLevel::Critical { Urgency::Critical } else { Urgency::Normal };
        let device_name = Some(device.device.name.clone());
        let mut draft =
            build_draft(account, general, rule, title, description, idempotency_key, device_name, urgency, now);
        draft.row = Some(RowId::Status(*product, a.level, a.description.clone()));
        draft
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
