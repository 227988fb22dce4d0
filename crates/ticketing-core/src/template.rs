//! Title and description templates (issue 20): per rule row, a [`minijinja`] template over the
//! event's or the computer status's fields takes the place of the guide's text.
//!
//! - **Fields.** Every field is a string, present in every context of its kind (empty where the
//!   event has none: no computer, no mailbox), so a template that renders for the sample renders
//!   for every event: [`EVENT_FIELDS`], [`STATUS_FIELDS`].
//! - **Validated on save.** [`problems`] compiles each template and renders it against the
//!   row's sample with strict undefined behaviour: a syntax error or an unknown field is a
//!   [`Problem::Template`] naming the row, the field (`title_template`, `description_template`)
//!   and the line and column.
//! - **Compiled once** per [`crate::decide::Context::new`]; with no template set the decisions
//!   take their hand-written path, unchanged. A template that still fails when a ticket is
//!   made falls back to the guide's text (never a panic), as does a title that renders blank.
//! - **Limits after rendering.** A title is made one line and cut to
//!   [`crate::ticket::TicketDraft::TITLE_MAX`]; a description is cut so that its key line fits
//!   [`crate::ticket::TicketDraft::DESCRIPTION_MAX`] and the key line is always appended: no
//!   template can remove it.
//! - **Defaults.** The guide's current texts, written as templates ([`default_template`]), render
//!   exactly what the hand-written path writes (`tests/lifecycle.rs` checks it): a UI can start
//!   an edit from them.
//!
//! Each render has a work budget (minijinja's fuel), so no template can hold up the decisions.

use std::collections::BTreeMap;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, context};

use crate::catalog::Field;
use crate::model::{
    ActiveDescription, ComputerStatus, DeviceStatus, Event, EventClass, Product, StatusLevel, TenantId,
};
use crate::rules::{Problem, RowId, Rule};
use crate::text;
use crate::ticket::TicketDraft;

/// The work one render may do (minijinja's fuel: roughly instructions, or 64 bytes each).
const FUEL: u64 = 20_000;

/// The fields of an event row's templates, with what they hold.
pub const EVENT_FIELDS: [(&str, &str); 12] = [
    ("product", "the product as the guide names it (\"Kaspersky Security Center\")"),
    ("product_short", "the product as titles name it (\"Kaspersky Security for Office 365\")"),
    ("tenant", "the tenant (virtual server or Business Hub company) id"),
    ("severity", "the row: the severity (\"Critical\") or the Office 365 event type (\"Malware detected\")"),
    ("event_type", "the source's event type code (\"GNRL_EV_VIRUS_FOUND\")"),
    ("display_name", "the source's name of the event type (may be empty)"),
    ("what", "display_name, or event_type where the source gave no name"),
    ("text", "the event's text (may be empty)"),
    ("occurred_at", "when it occurred, UTC (\"2026-11-20 08:00:00\")"),
    ("event_id", "the source's event id"),
    ("device.name, device.id", "the computer (both empty when the event concerns none)"),
    ("mailbox", "the mailbox (Office 365; empty otherwise)"),
];

/// The fields of a status row's templates, with what they hold.
pub const STATUS_FIELDS: [(&str, &str); 8] = [
    ("product", "the product as the guide names it"),
    ("tenant", "the tenant id"),
    ("device.name", "the computer's name"),
    ("device.id", "the computer's id"),
    ("description", "the status description (\"Databases are out of date\")"),
    ("level", "the row's level: \"Critical\" or \"Warning\""),
    ("computer_status", "the computer's overall status: \"Ok\", \"Warning\" or \"Critical\""),
    ("detected_at", "when the reconciliation saw it, UTC"),
];

/// The guide's title of a severity event, as a template.
pub const EVENT_TITLE: &str = "{{ product_short }}: {{ severity }} event: {{ what }}\
    {% if device.id %} on {{ device.name }}{% elif mailbox %} for {{ mailbox }}{% endif %}";
/// The guide's title of an Office 365 event, as a template.
pub const OFFICE365_TITLE: &str = "{{ product_short }}: {{ severity }}\
    {% if device.id %} on {{ device.name }}{% elif mailbox %} for {{ mailbox }}{% endif %}";
/// The guide's description of an event, as a template (the key line follows it).
pub const EVENT_DESCRIPTION: &str = "{{ text or what }}

Product: {{ product }}
Customer (tenant): {{ tenant }}
Severity / type: {{ severity }}
Occurred (UTC): {{ occurred_at }}
Event type: {{ event_type }}
Event id: {{ event_id }}
{% if device.id %}Computer: {{ device.name }} ({{ device.id }})
{% endif %}{% if mailbox %}Mailbox: {{ mailbox }}
{% endif %}";
/// The guide's title of a status ticket, as a template.
pub const STATUS_TITLE: &str = "{{ device.name }}: {{ description }} ({{ level }} status)";
/// The guide's description of a status ticket, as a template (the key line follows it).
pub const STATUS_DESCRIPTION: &str = "The computer {{ device.name }} ({{ device.id }}) has the status description \
\"{{ description }}\", which puts it in {{ level }} status.

Product: {{ product }}
Customer (tenant): {{ tenant }}
Computer status: {{ computer_status }}
Detected (UTC): {{ detected_at }}

This ticket closes automatically when the status description no longer applies.";

/// The guide's text of a row's title ([`Field::TitleTemplate`]) or description (any other
/// field), as a template.
pub fn default_template(row: &RowId, field: Field) -> &'static str {
    match (row, field) {
        (RowId::Event(_, EventClass::Severity(_)), Field::TitleTemplate) => EVENT_TITLE,
        (RowId::Event(_, EventClass::Office365(_)), Field::TitleTemplate) => OFFICE365_TITLE,
        (RowId::Event(..), _) => EVENT_DESCRIPTION,
        (RowId::Status(..), Field::TitleTemplate) => STATUS_TITLE,
        (RowId::Status(..), _) => STATUS_DESCRIPTION,
    }
}

/// A row's templates that are set (not blank), with their fields.
fn parts(rule: &Rule) -> [(Field, Option<&str>); 2] {
    fn set(t: &Option<String>) -> Option<&str> {
        t.as_deref().filter(|s| !s.trim().is_empty())
    }
    [(Field::TitleTemplate, set(&rule.title_template)), (Field::DescriptionTemplate, set(&rule.description_template))]
}

fn environment<'a>(debug: bool) -> Environment<'a> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_debug(debug);
    env.set_fuel(Some(FUEL));
    env
}

/// The template problems of one row: each set template compiled and rendered against the row's
/// sample, strictly. Shared by [`crate::rules::RuleSet::validate`] and the bulk edit.
pub(crate) fn problems(row: &RowId, rule: &Rule) -> Vec<(Field, Problem)> {
    let mut out = Vec::new();
    for (field, source) in parts(rule) {
        let Some(source) = source else { continue };
        let env = environment(true);
        let rendered = env.template_from_str(source).and_then(|t| t.render(sample_values(row)));
        if let Err(e) = rendered {
            out.push((field, problem(&e, source)));
        }
    }
    out
}

fn problem(err: &minijinja::Error, source: &str) -> Problem {
    let start = err.range().map(|r| r.start).filter(|s| source.is_char_boundary(*s));
    let (line, column) = match start {
        Some(start) => {
            let before = &source[..start];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
        }
        None => (err.line().unwrap_or(1), 1),
    };
    let message = match err.kind() {
        ErrorKind::UndefinedError => match err.range().and_then(|r| source.get(r)) {
            Some(expr) => format!("unknown field `{}`", expr.trim()),
            None => "unknown field".to_owned(),
        },
        kind => match err.detail() {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind.to_string(),
        },
    };
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Problem::Template { line: n(line), column: n(column), message }
}

/// The templates of a rule set's enabled rows, compiled once (per [`crate::decide::Context`]).
#[derive(Debug)]
pub(crate) struct Templates {
    env: Environment<'static>,
    /// Per row, the names of its title and description templates in `env`.
    rows: BTreeMap<RowId, [Option<String>; 2]>,
}

impl Templates {
    /// `None` when no enabled row has a template (the decisions' hand-written path). A template
    /// that does not compile (a rule set never saved through validation) is left out: its row
    /// keeps the guide's text.
    pub(crate) fn compile<'a>(rows: impl IntoIterator<Item = (&'a RowId, &'a Rule)>) -> Option<Self> {
        let mut env = environment(false);
        let mut names = BTreeMap::new();
        for (row, rule) in rows {
            let mut slots = [None, None];
            for (slot, (field, source)) in slots.iter_mut().zip(parts(rule)) {
                let Some(source) = source else { continue };
                let name = format!("{row}/{field}");
                if env.add_template_owned(name.clone(), source.to_owned()).is_ok() {
                    *slot = Some(name);
                }
            }
            if slots.iter().any(Option::is_some) {
                names.insert(row.clone(), slots);
            }
        }
        (!names.is_empty()).then_some(Self { env, rows: names })
    }

    /// The row's templates, when it has any.
    pub(crate) fn row(&self, row: &RowId) -> Option<RowTemplates<'_>> {
        self.rows.get(row).map(|names| RowTemplates { env: &self.env, names })
    }
}

/// One row's compiled templates.
pub(crate) struct RowTemplates<'a> {
    env: &'a Environment<'static>,
    names: &'a [Option<String>; 2],
}

impl RowTemplates<'_> {
    fn render(&self, i: usize, values: &Value) -> Option<String> {
        let name = self.names[i].as_deref()?;
        self.env.get_template(name).and_then(|t| t.render(values.clone())).ok()
    }

    /// The rendered title: one line, within the PSA's limit; `None` (the guide's title) when
    /// the row has no title template, it fails, or it renders blank.
    pub(crate) fn title(&self, values: &Value) -> Option<String> {
        let rendered = self.render(0, values)?;
        let mut title: String = rendered.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if title.trim().is_empty() {
            return None;
        }
        text::truncate_in_place(&mut title, TicketDraft::TITLE_MAX);
        title.shrink_to_fit();
        Some(title)
    }

    /// The rendered description, before its key line; `None` (the guide's description) when the
    /// row has no description template or it fails.
    pub(crate) fn description(&self, values: &Value) -> Option<String> {
        self.render(1, values)
    }
}

fn product_short(product: Product) -> &'static str {
    match product {
        Product::Office365 => "Kaspersky Security for Office 365",
        p => p.display_name(),
    }
}

fn class_name(class: EventClass) -> &'static str {
    match class {
        EventClass::Severity(s) => s.display_name(),
        EventClass::Office365(t) => t.display_name(),
    }
}

/// An event's fields ([`EVENT_FIELDS`]).
pub(crate) fn event_values(event: &Event) -> Value {
    let mut occurred_at = String::with_capacity(text::UTC_LEN);
    text::push_utc(&mut occurred_at, event.occurred_at);
    let what = if event.display_name.is_empty() { &event.event_type } else { &event.display_name };
    let (name, id) = event.device.as_ref().map_or(("", ""), |d| (d.name.as_str(), d.id.as_str()));
    context! {
        product => event.product.display_name(),
        product_short => product_short(event.product),
        tenant => event.tenant.as_str(),
        severity => class_name(event.class),
        event_type => event.event_type.as_str(),
        display_name => event.display_name.as_str(),
        what => what.as_str(),
        text => event.text.as_str(),
        occurred_at => occurred_at,
        event_id => event.source_id.as_str(),
        device => context! { name => name, id => id },
        mailbox => event.mailbox.as_deref().unwrap_or(""),
    }
}

/// A status problem's fields ([`STATUS_FIELDS`]).
pub(crate) fn status_values(
    product: Product,
    tenant: &TenantId,
    device: &DeviceStatus,
    a: &ActiveDescription,
    detected_at: &str,
) -> Value {
    let level = match a.level {
        StatusLevel::Critical => "Critical",
        StatusLevel::Warning => "Warning",
    };
    let computer_status = match device.status {
        ComputerStatus::Ok => "Ok",
        ComputerStatus::Warning => "Warning",
        ComputerStatus::Critical => "Critical",
    };
    context! {
        product => product.display_name(),
        tenant => tenant.as_str(),
        device => context! { name => device.device.name.as_str(), id => device.device.id.as_str() },
        description => a.description.text(),
        level => level,
        computer_status => computer_status,
        detected_at => detected_at,
    }
}

/// The sample a row's templates are checked against, and previewed with.
pub(crate) enum Sample {
    /// An event of the row.
    Event(Box<Event>),
    /// A status problem of the row: product, tenant, computer, description.
    Status(Product, TenantId, DeviceStatus, ActiveDescription),
}

/// When the samples happen.
pub(crate) fn sample_time() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).single().unwrap_or_default()
}

/// A typical event or status problem of `row`.
pub(crate) fn sample(row: &RowId) -> Sample {
    use crate::model::{Device, DeviceId, SourceEventId};
    let device = Device { id: DeviceId::new("4328e16g"), name: "ACME-PC-01".to_owned() };
    match row {
        RowId::Event(product, class) => {
            let o365 = *product == Product::Office365;
            Sample::Event(Box::new(Event {
                source_id: SourceEventId::new("1043"),
                tenant: TenantId::new(if o365 { "kbh:company-1" } else { "ksc:main/vs:1" }),
                product: *product,
                class: *class,
                occurred_at: sample_time(),
                device: (!o365).then_some(device),
                mailbox: o365.then(|| "j.doe@acme.example".to_owned()),
                event_type: if o365 { "malware_detected" } else { "GNRL_EV_VIRUS_FOUND" }.to_owned(),
                display_name: if o365 { "" } else { "Malicious object detected" }.to_owned(),
                text: if o365 { "" } else { "Trojan.Win32.Agent detected" }.to_owned(),
            }))
        }
        RowId::Status(product, level, description) => {
            let status = match level {
                StatusLevel::Critical => ComputerStatus::Critical,
                StatusLevel::Warning => ComputerStatus::Warning,
            };
            let a = ActiveDescription { description: description.clone(), level: *level };
            let tenant =
                TenantId::new(if *product == Product::SecurityCenter { "ksc:main/vs:1" } else { "kbh:company-1" });
            Sample::Status(*product, tenant, DeviceStatus { device, status, active: vec![a.clone()] }, a)
        }
    }
}

fn sample_values(row: &RowId) -> Value {
    match sample(row) {
        Sample::Event(e) => event_values(&e),
        Sample::Status(product, tenant, device, a) => {
            let mut at = String::with_capacity(text::UTC_LEN);
            text::push_utc(&mut at, sample_time());
            status_values(product, &tenant, &device, &a, &at)
        }
    }
}
