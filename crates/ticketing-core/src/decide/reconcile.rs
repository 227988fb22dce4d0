//! Status reconciliation: a tenant's complete status snapshot and the ledger in, create, close,
//! delay, reopen and priority actions out (split from the event decisions in `decide`).

use super::storms::{self, StormOpen, Stormed};
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::storm::{PassStorms, Placement, StormChange, StormPart};

/// The computer's name of a status entry, from the snapshot (a cleared problem's computer may
/// be gone from it: then its id).
fn snapshot_device_name<'a>(snapshot: &'a StatusSnapshot, entry: &'a LedgerEntry) -> Option<&'a str> {
    let TicketKey::Status { device, .. } = &entry.key else { return None };
    Some(snapshot.devices.iter().find(|d| d.device.id == *device).map_or(device.as_str(), |d| d.device.name.as_str()))
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
    /// Alert storms: the problem joins its row's running storm ticket (no ticket of its own).
    Storm(Stormed),
    /// Alert storms: the row reached its threshold; the problem opens a storm ticket.
    OpenStorm(StormOpen),
    /// Alert storms: a stormed problem cleared; its entry closes (no call) and the storm
    /// ticket's next note says so.
    StormCleared(Stormed),
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
    /// The ledger transitions that record the action, in order (persist them, in one
    /// transaction, before any PSA call): one for every action but the storms' two.
    pub fn transitions(&self) -> Vec<Transition> {
        match self {
            Self::Storm(s) | Self::StormCleared(s) => s.transitions(),
            Self::OpenStorm(o) => o.transitions(),
            other => vec![other.transition()],
        }
    }

    /// The ledger transition that records the action: for a storm action, the one of the
    /// problem's own entry ([`Action::transitions`] has all).
    pub fn transition(&self) -> Transition {
        match self {
            Self::Storm(s) | Self::StormCleared(s) => s.transitions().swap_remove(0),
            Self::OpenStorm(o) => o.transitions().swap_remove(1),
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
            | Self::Update(Update { key, .. })
            | Self::Storm(Stormed { key, .. })
            | Self::StormCleared(Stormed { key, .. }) => key,
            Self::OpenStorm(o) => &o.member,
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
    // Storm placements of this pass not yet in the ledger (tickets counted, storms opened).
    let mut pass = PassStorms::default();
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
            let row = RowId::Status(product, a.level, a.description.clone());
            let mut storm = None;
            if let Some(settings) = resolved.storm {
                let item = || {
                    storms::status_item(
                        StormChange::Added,
                        Some(&device.device.name),
                        Some(a.level),
                        &a.description,
                        now,
                    )
                };
                match crate::storm::place(ledger, tenant, &row, &settings, now, &pass) {
                    Placement::Join(storm) => {
                        out.actions.push(Action::Storm(Stormed { key, storm, item: item() }));
                        continue;
                    }
                    Placement::Open => {
                        let opening = storms::Opening {
                            product,
                            tenant,
                            row: &row,
                            settings,
                            item: item(),
                            outbreak: false,
                            urgency: urgency_of(a.level),
                        };
                        if let Some(open) =
                            storms::open_storm(opening, key.clone(), mapped, general, resolved, ledger, now)
                        {
                            pass.open(tenant, &row, open.create.key.clone());
                            out.actions.push(Action::OpenStorm(open));
                            continue;
                        }
                    }
                    Placement::Own => {}
                }
                pass.count(tenant, &row, now);
                storm = Some(Box::new(StormPart::Counted { row: row.clone(), at: now }));
            }
            let texts = texts.get_or_insert_with(|| StatusTexts::new(snapshot, now));
            let templates = ctx.templates.as_deref().and_then(|t| t.row(&row));
            let draft = texts.draft(device, a, &key, generation, mapped.account, general, resolved, templates, now);
            out.actions.push(Action::Create(Create { key, generation, draft, recurrence: None, storm }));
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
            TicketState::Stormed { storm, .. } => {
                let item = storms::status_item(
                    StormChange::Cleared,
                    snapshot_device_name(snapshot, entry),
                    None,
                    description,
                    now,
                );
                out.actions.push(Action::StormCleared(Stormed { key: entry.key.clone(), storm: storm.clone(), item }));
            }
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
pub(super) struct StatusTexts {
    detected: String,
    hash_after_tenant: Fnv128,
}

impl StatusTexts {
    pub(super) fn new(snapshot: &StatusSnapshot, now: DateTime<Utc>) -> Self {
        let mut detected = String::with_capacity(text::UTC_LEN);
        text::push_utc(&mut detected, now);
        let hash_after_tenant = STATUS_PREFIX[snapshot.product as usize].write(snapshot.tenant.as_str().as_bytes());
        Self { detected, hash_after_tenant }
    }

    #[allow(clippy::too_many_arguments)] // one private helper; a struct would only rename the list
    pub(super) fn draft(
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
        let texts = DraftTexts { title, description, idempotency_key, device_name: Some(device.device.name.clone()) };
        let row = RowId::Status(*product, a.level, a.description.clone());
        build_draft(account, general, rule, texts, row, None, urgency, now)
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
