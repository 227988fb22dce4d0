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
    /// A ticket of a row with storm settings (counted toward its threshold) or a storm ticket
    /// ([`crate::storm`]). `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<Box<crate::storm::StormPart>>,
}

impl Create {
    /// The ledger transition that records this decision (persist it before calling the PSA).
    pub fn transition(&self) -> Transition {
        Transition::Plan {
            key: self.key.clone(),
            generation: self.generation,
            draft: self.draft.clone(),
            recurrence: self.recurrence.clone(),
            storm: self.storm.clone(),
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
    /// Alert storms: the event joins its row's running storm ticket for the tenant (no ticket of
    /// its own; listed in the storm ticket's next note).
    Storm(Stormed),
    /// Alert storms: the row reached its threshold (or a Security Center outbreak event came):
    /// the event opens a storm ticket, and gets no ticket of its own.
    OpenStorm(StormOpen),
    /// Do nothing, for a reason.
    Skip {
        /// The key the event would have had.
        key: TicketKey,
        /// Why.
        reason: SkipReason,
    },
}

impl EventDecision {
    /// The ledger transitions that record the decision, in order (persist them in one
    /// transaction before any PSA call): none for a skip, two for a storm.
    pub fn transitions(&self) -> Vec<Transition> {
        match self {
            Self::Create(c) => vec![c.transition()],
            Self::Note(n) => vec![n.transition()],
            Self::Storm(s) => s.transitions(),
            Self::OpenStorm(o) => o.transitions(),
            Self::Skip { .. } => Vec::new(),
        }
    }
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
    let storm = match resolved.storm {
        Some(settings) => {
            match storms::place_event(event, &key, &row, settings, mapped, general, resolved, ledger, now) {
                Ok(mark) => Some(mark),
                Err(decision) => return decision,
            }
        }
        None => None,
    };
    let urgency = storms::draft_urgency(event);
    let (title, description) = match &templates {
        None => (event_title(event), event_description(event, &key)),
        Some(t) => event_texts(event, &key, Some(t), true),
    };
    let device_name = event.device.as_ref().map(|d| d.name.clone());
    let expires_at = resolved.lifetime_days.map(|d| event.occurred_at + Duration::days(i64::from(d)));
    let idempotency_key = mapped.idempotency_key(&key, generation);
    // Built where it is returned (a draft is a few hundred bytes: no copies on the way out).
    let texts = DraftTexts { title, description, idempotency_key, device_name };
    let draft = build_draft(mapped.account, general, resolved, texts, row, expires_at, urgency, now);
    EventDecision::Create(Create { key, generation, draft, recurrence, storm })
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
pub fn ordinal_suffix(n: u32) -> &'static str {
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

/// Writes `parts` one after the other into one string of exactly their length. Inlined, so
/// that the loop unrolls and the fixed pieces are copied by constant-length moves.
#[inline(always)]
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

/// `pieces!(a, b, …)`: the pieces' total length, and a closure that pushes them one after the
/// other. One list for both, so a buffer sized by it is exact; each piece is pushed on its own
/// (not from an array in a loop), so a fixed piece's length is a constant and its copy a few
/// moves instead of a call. The pieces are evaluated twice: give only plain borrows.
macro_rules! pieces {
    ($($piece:expr),+ $(,)?) => {
        (0 $(+ str::len($piece))+, |out: &mut String| { $(out.push_str($piece);)+ })
    };
}

fn event_description(event: &Event, key: &TicketKey) -> String {
    let what = event_what(event);
    let first = if event.text.is_empty() { what } else { &event.text };
    let (head_len, head) = pieces!(
        first,
        "\n\nProduct: ",
        event.product.display_name(),
        "\nCustomer (tenant): ",
        event.tenant.as_str(),
        "\nSeverity / type: ",
        class_name(event.class),
        "\nOccurred (UTC): ",
    );
    let (tail_len, tail) = pieces!("\nEvent type: ", &event.event_type, "\nEvent id: ", event.source_id.as_str(), "\n");
    let computer = event.device.as_ref().map(|d| pieces!("Computer: ", &d.name, " (", d.id.as_str(), ")\n"));
    let mailbox = event.mailbox.as_ref().map(|m| pieces!("Mailbox: ", m, "\n"));
    let body = head_len
        + text::UTC_LEN
        + tail_len
        + computer.as_ref().map_or(0, |c| c.0)
        + mailbox.as_ref().map_or(0, |m| m.0);
    // The body's last newline is trimmed by `finish_description`: not counted, so that the
    // buffer is exact and needs no shrinking.
    let mut out = String::with_capacity(body - 1 + key_line_room(key));
    head(&mut out);
    text::push_utc(&mut out, event.occurred_at);
    tail(&mut out);
    if let Some((_, push)) = computer {
        push(&mut out);
    }
    if let Some((_, push)) = mailbox {
        push(&mut out);
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

/// The texts of a draft, what differs from one create to the next besides its row.
struct DraftTexts {
    title: String,
    description: String,
    idempotency_key: IdempotencyKey,
    device_name: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one private constructor; a struct would only rename the list
#[inline]
fn build_draft(
    account: PsaId,
    general: &ResolvedGeneral,
    rule: &ResolvedRule,
    texts: DraftTexts,
    row: RowId,
    expires_at: Option<DateTime<Utc>>,
    urgency: Urgency,
    now: DateTime<Utc>,
) -> TicketDraft {
    let DraftTexts { title, description, idempotency_key, device_name } = texts;
    TicketDraft {
        account,
        title,
        description,
        status: general.new_status,
        priority: rule.priority,
        queue: rule.queue,
        due: now + Duration::hours(i64::from(rule.due_hours)),
        due_hours: Some(rule.due_hours),
        expires_at,
        row: Some(row),
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
                storm: None,
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

mod reconcile;
mod storms;
pub use storms::{StormOpen, Stormed};

use reconcile::StatusTexts;
pub use reconcile::{Action, Close, Reconciliation, Update, reconcile};
