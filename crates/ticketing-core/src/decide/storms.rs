//! The decisions' side of alert storms ([`crate::storm`]): a problem of a row with storm
//! settings gets a ticket of its own (counted), joins the running storm, or opens one.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::storm::{PassStorms, Placement, Storm, StormChange, StormItem, StormPart, StormSettings};

/// A problem added to a storm ticket instead of getting its own ([`EventDecision::Storm`],
/// [`Action::Storm`]), or a stormed status problem that cleared ([`Action::StormCleared`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stormed {
    /// The problem's own key.
    pub key: TicketKey,
    /// The storm ticket's key.
    pub storm: TicketKey,
    /// The line the storm ticket's next note gets.
    pub item: StormItem,
}

impl Stormed {
    /// The transitions that record it: the problem's entry, then the storm ticket's change.
    pub fn transitions(&self) -> Vec<Transition> {
        match self.item.change {
            StormChange::Added => vec![
                Transition::Stormed { key: self.key.clone(), storm: self.storm.clone(), at: self.item.at },
                Transition::StormGrew { key: self.storm.clone(), item: self.item.clone() },
            ],
            StormChange::Cleared => vec![
                Transition::StormCleared { key: self.key.clone() },
                Transition::StormGrew { key: self.storm.clone(), item: self.item.clone() },
            ],
        }
    }
}

/// A storm opened by a problem ([`EventDecision::OpenStorm`], [`Action::OpenStorm`]): the storm
/// ticket to create, its record holding the opening problem, which gets no ticket of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormOpen {
    /// The storm ticket.
    pub create: Create,
    /// The opening problem's own key.
    pub member: TicketKey,
    /// The opening problem's time.
    pub at: DateTime<Utc>,
    /// Why it opened: the threshold was reached, or an outbreak event.
    pub outbreak: bool,
}

impl StormOpen {
    /// The transitions that record it: the storm ticket's plan, then the problem's entry.
    pub fn transitions(&self) -> Vec<Transition> {
        vec![
            self.create.transition(),
            Transition::Stormed { key: self.member.clone(), storm: self.create.key.clone(), at: self.at },
        ]
    }
}

/// The inputs of a storm ticket's texts.
pub(super) struct Opening<'a> {
    pub(super) product: Product,
    pub(super) tenant: &'a TenantId,
    pub(super) row: &'a RowId,
    pub(super) settings: StormSettings,
    pub(super) item: StormItem,
    pub(super) outbreak: bool,
    pub(super) urgency: Urgency,
}

/// The storm ticket a problem opens, or `None` when the key is taken (a storm of the same row
/// and tenant began in the same second: the problem then gets its own ticket).
pub(super) fn open_storm(
    o: Opening<'_>,
    member: TicketKey,
    mapped: &MappedTenant,
    general: &ResolvedGeneral,
    resolved: &ResolvedRule,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Option<StormOpen> {
    let key = crate::storm::storm_key(o.product, o.tenant, o.row, o.item.at);
    let generation = ledger.next_generation(&key)?;
    let s = o.settings;
    let kind = if o.row.is_status() { "status" } else { "event" };
    let label = o.row.label();
    let why = if o.outbreak {
        format!("virus outbreak ({})", crate::storm::OUTBREAK_EVENT_TYPE)
    } else {
        format!("alert storm ({} tickets within {} minutes)", s.threshold, s.window_minutes)
    };
    let mut title = format!("{} {label} {kind}: {why}; further problems are added here", short(o.product));
    text::truncate_in_place(&mut title, TicketDraft::TITLE_MAX);
    let opened = if o.outbreak {
        "Security Center reported a virus outbreak".to_owned()
    } else {
        format!(
            "The rule \"{label}\" made {} tickets for this customer within {} minutes",
            s.threshold, s.window_minutes
        )
    };
    let device = o.item.device.as_deref().map_or(String::new(), |d| format!(" on {d}"));
    let description = format!(
        "{opened}, so further problems of this rule are collected on this ticket instead of getting tickets of \
         their own: at most one note every {} minutes names the new computers and problems. The storm ends \
         when {} minutes pass without a new problem; the next one gets a ticket of its own again.\n\n\
         Product: {}\nCustomer (tenant): {}\nRule: {label} ({kind})\nFirst problem{device}: {}",
        s.note_minutes,
        s.window_minutes,
        o.product.display_name(),
        o.tenant.as_str(),
        o.item.what,
    );
    let description = finish_description(description, &key);
    let idempotency_key = mapped.idempotency_key(&key, generation);
    let texts = DraftTexts { title, description, idempotency_key, device_name: o.item.device.clone() };
    let draft = build_draft(mapped.account, general, resolved, texts, o.row.clone(), None, o.urgency, now);
    let storm = Storm {
        row: o.row.clone(),
        threshold: s.threshold,
        window_minutes: s.window_minutes,
        note_minutes: s.note_minutes,
        started_at: o.item.at,
        last_at: o.item.at,
        problems: 1,
        devices: o.item.device.iter().cloned().collect(),
        open_members: u32::from(o.row.is_status()),
        cleared: 0,
        pending: Vec::new(),
        notes: Vec::new(),
        noted: 0,
        last_note_at: now,
        finished: false,
    };
    Some(StormOpen {
        create: Create { key, generation, draft, recurrence: None, storm: Some(Box::new(StormPart::Ticket(storm))) },
        member,
        at: o.item.at,
        outbreak: o.outbreak,
    })
}

/// The storm line of an event: `event <id> at <time> UTC: <what>`.
pub(super) fn event_item(event: &Event) -> StormItem {
    let mut what = String::with_capacity(48 + event.source_id.as_str().len() + event_what(event).len());
    what.push_str("event ");
    what.push_str(event.source_id.as_str());
    what.push_str(" at ");
    text::push_utc(&mut what, event.occurred_at);
    what.push_str(": ");
    what.push_str(event_what(event));
    if event.event_type != event_what(event) {
        what.push_str(" (");
        what.push_str(&event.event_type);
        what.push(')');
    }
    StormItem {
        change: StormChange::Added,
        device: event.device.as_ref().map(|d| d.name.clone()),
        what,
        at: event.occurred_at,
    }
}

/// The storm line of a status problem: `<level> status: <description>`.
pub(super) fn status_item(
    change: StormChange,
    device: Option<&str>,
    level: Option<StatusLevel>,
    description: &StatusDescription,
    at: DateTime<Utc>,
) -> StormItem {
    let (pre, text) = description.text_parts();
    let level = level.map_or("", |l| match l {
        StatusLevel::Critical => "Critical status: ",
        StatusLevel::Warning => "Warning status: ",
    });
    StormItem { change, device: device.map(str::to_owned), what: concat([level, pre, text]), at }
}

/// Where an event of a row with storm settings goes ([`decide_event`]): `Ok(mark)` for a
/// ticket of its own (with the mark that counts it), `Err(decision)` when it joins or opens a
/// storm.
#[allow(clippy::too_many_arguments, clippy::result_large_err)] // one private step of decide_event, whose answer it is
pub(super) fn place_event(
    event: &Event,
    key: &TicketKey,
    row: &RowId,
    settings: StormSettings,
    mapped: &MappedTenant,
    general: &ResolvedGeneral,
    resolved: &ResolvedRule,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<Box<StormPart>, EventDecision> {
    let at = event.occurred_at;
    let outbreak = settings.outbreak
        && event.product == Product::SecurityCenter
        && event.event_type == crate::storm::OUTBREAK_EVENT_TYPE;
    let placement = crate::storm::place(ledger, &event.tenant, row, &settings, at, &PassStorms::default());
    let counted = || Box::new(StormPart::Counted { row: row.clone(), at });
    match placement {
        Placement::Join(storm) => {
            Err(EventDecision::Storm(Stormed { key: key.clone(), storm, item: event_item(event) }))
        }
        Placement::Own if !outbreak => Ok(counted()),
        Placement::Open | Placement::Own => {
            let opening = Opening {
                product: event.product,
                tenant: &event.tenant,
                row,
                settings,
                item: event_item(event),
                outbreak: outbreak && placement == Placement::Own,
                urgency: draft_urgency(event),
            };
            match open_storm(opening, key.clone(), mapped, general, resolved, ledger, now) {
                Some(open) => Err(EventDecision::OpenStorm(open)),
                None => Ok(counted()),
            }
        }
    }
}

/// An event's urgency (Critical events and Office 365 first).
pub(super) fn draft_urgency(event: &Event) -> Urgency {
    match event.class {
        EventClass::Severity(Severity::Critical) | EventClass::Office365(_) => Urgency::Critical,
        EventClass::Severity(_) => Urgency::Normal,
    }
}
