//! Ticketing rules: general settings, one rule per event severity / Office 365 event type, one
//! rule per status description under Warning and Critical; their defaults from the guide; and
//! validation against the PSA's [`Catalog`].
//!
//! Every rule, event or status, has the same shape ([`Rule`]): the guide's columns are the same
//! except that only Security Center and Endpoint Security Cloud event rules have a lifetime.
//! Rules are global: they apply to every mapped account (the guide: "Ticketing rules are
//! applicable to all accounts that are mapped").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Field};
use crate::model::{EventClass, Office365EventType, Product, PsaId, Severity, StatusDescription, StatusLevel};

/// The guide's default queue for every rule.
pub const DEFAULT_QUEUE: &str = "Monitoring Alert";
/// The guide's default status for new tickets.
pub const DEFAULT_NEW_STATUS: &str = "New";
/// The guide's default status for closed tickets.
pub const DEFAULT_CLOSED_STATUS: &str = "Complete";
/// The guide's default event lifetime, in days.
pub const DEFAULT_LIFETIME_DAYS: u32 = 1;
/// The guide's default due time for event tickets and Critical status tickets, in hours.
pub const DEFAULT_DUE_HOURS: u32 = 12;
/// The guide's default due time for Warning status tickets, in hours.
pub const DEFAULT_WARNING_STATUS_DUE_HOURS: u32 = 24;
/// Lifetime bounds accepted, in days.
pub const LIFETIME_RANGE: std::ops::RangeInclusive<u32> = 1..=365;
/// Due-time bounds accepted, in hours.
pub const DUE_HOURS_RANGE: std::ops::RangeInclusive<u32> = 1..=8760;
/// Creation-delay bounds accepted, in minutes (0 is the guide: no delay; at most a week).
pub const CREATE_DELAY_RANGE: std::ops::RangeInclusive<u32> = 0..=10_080;
/// Storm-threshold bounds accepted, in tickets.
pub const STORM_THRESHOLD_RANGE: std::ops::RangeInclusive<u32> = 2..=10_000;
/// Storm-window and storm-note bounds accepted, in minutes (at most a day).
pub const STORM_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 1..=1440;
/// The default storm-note interval, in minutes (the issue: at most one note per 5 minutes).
pub const DEFAULT_STORM_NOTE_MINUTES: u32 = 5;
/// Reopen- and recurrence-window bounds accepted, in hours (at most 90 days).
pub const WINDOW_HOURS_RANGE: std::ops::RangeInclusive<u32> = 1..=2160;

/// General ticketing settings: the initial values every automatic ticket gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralSettings {
    /// Ticket source (optional in the guide).
    #[serde(default)]
    pub ticket_source: Option<String>,
    /// Status of new tickets (required; default "New").
    #[serde(default)]
    pub new_status: Option<String>,
    /// Status set when a ticket is closed automatically (required; default "Complete").
    #[serde(default)]
    pub closed_status: Option<String>,
}

impl Default for GeneralSettings {
    fn default() -> Self {
        Self {
            ticket_source: None,
            new_status: Some(DEFAULT_NEW_STATUS.to_owned()),
            closed_status: Some(DEFAULT_CLOSED_STATUS.to_owned()),
        }
    }
}

/// One row of a rule table: what to do for one severity, Office 365 event type or status
/// description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Create tickets (the "Create ticket" toggle). Off by default.
    pub enabled: bool,
    /// Events older than this many days are not ticketed. `None` where the guide has no lifetime
    /// (Office 365 event rules, status rules).
    #[serde(default)]
    pub lifetime_days: Option<u32>,
    /// Queue label (required).
    #[serde(default)]
    pub queue: Option<String>,
    /// Priority label (required).
    #[serde(default)]
    pub priority: Option<String>,
    /// Hours until the ticket is due.
    pub due_hours: u32,
    /// Work type label (optional).
    #[serde(default)]
    pub work_type: Option<String>,
    /// Issue type label (optional).
    #[serde(default)]
    pub issue_type: Option<String>,
    /// Sub-issue type label (optional; must belong to the issue type).
    #[serde(default)]
    pub sub_issue_type: Option<String>,
    // The lifecycle settings below (issue 20) are all opt-in: their "off" value is the guide's
    // behaviour, is what a rule book saved before them reads as (`default`), and is left out
    // when written (`skip_serializing_if`), so a rule book with every feature off serialises
    // exactly as before. They sit on the one `Rule` shape, as `lifetime_days` does, rather
    // than in per-kind row types: validation refuses each on a row kind that cannot use it.
    /// Status rows: minutes a description must have been active before it gets a ticket (the
    /// flap guard); one that clears sooner never gets one. 0 (the guide) creates at first sight.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_delay_minutes: u32,
    /// Status rows: a problem that returns within this many hours of the integration closing
    /// its ticket reopens that ticket instead of getting a new one. `None` (the guide): off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_hours: Option<u32>,
    /// Security Center and Endpoint Security Cloud event rows: an event of the same type on the
    /// same computer that recurs within this many hours of the event its open ticket was made
    /// for is added to that ticket as a note (count and time) instead of getting a ticket of its
    /// own. `None` (the guide): every event gets its own ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_hours: Option<u32>,
    /// Security Center and Endpoint Security Cloud event rows, status rows: alert storms. Once
    /// the row has made this many tickets for one tenant within `storm_window_minutes`, further
    /// problems of the row and tenant get no tickets of their own: one storm ticket is made
    /// and they are added to it as notes ([`crate::storm`]). `None` (the guide): off. Set
    /// together with `storm_window_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm_threshold: Option<u32>,
    /// The storm window, in minutes: the span the threshold counts over, and the quiet time
    /// that ends a storm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm_window_minutes: Option<u32>,
    /// At most one storm note per this many minutes (`None`: [`DEFAULT_STORM_NOTE_MINUTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm_note_minutes: Option<u32>,
    /// The Security Center Critical event row: a `GNRL_EV_VIRUS_OUTBREAK` event opens the
    /// storm ticket of its tenant at once (needs the storm settings).
    #[serde(default, skip_serializing_if = "is_false")]
    pub outbreak_as_storm: bool,
    /// Any row: a `minijinja` template for the ticket's title over the event's or the status's
    /// fields ([`crate::template::EVENT_FIELDS`], [`crate::template::STATUS_FIELDS`]). `None`
    /// (or blank): the guide's title ([`crate::template::default_template`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_template: Option<String>,
    /// Any row: the same for the description (the key line is appended after it, always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_template: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which table and row a rule sits in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowId {
    /// An event rule.
    Event(Product, EventClass),
    /// A status rule.
    Status(Product, StatusLevel, StatusDescription),
}

impl RowId {
    /// The row's product.
    pub fn product(&self) -> Product {
        match self {
            Self::Event(p, _) | Self::Status(p, _, _) => *p,
        }
    }

    /// The section the row is edited in.
    pub fn section(&self) -> Section {
        match self {
            Self::Event(p, _) => Section::Events(*p),
            Self::Status(p, l, _) => Section::Statuses(*p, *l),
        }
    }

    /// The guide's default rule for this row.
    pub fn default_rule(&self) -> Rule {
        let (lifetime_days, priority, due_hours) = match self {
            Self::Event(_, EventClass::Severity(s)) => (
                Some(DEFAULT_LIFETIME_DAYS),
                if *s == Severity::Critical { "Critical" } else { "Medium" },
                DEFAULT_DUE_HOURS,
            ),
            Self::Event(_, EventClass::Office365(_)) => (None, "Critical", DEFAULT_DUE_HOURS),
            Self::Status(_, StatusLevel::Critical, _) => (None, "Critical", DEFAULT_DUE_HOURS),
            Self::Status(_, StatusLevel::Warning, _) => (None, "Medium", DEFAULT_WARNING_STATUS_DUE_HOURS),
        };
        Rule {
            enabled: false,
            lifetime_days,
            queue: Some(DEFAULT_QUEUE.to_owned()),
            priority: Some(priority.to_owned()),
            due_hours,
            work_type: None,
            issue_type: None,
            sub_issue_type: None,
            create_delay_minutes: 0,
            reopen_hours: None,
            recurrence_hours: None,
            storm_threshold: None,
            storm_window_minutes: None,
            storm_note_minutes: None,
            outbreak_as_storm: false,
            title_template: None,
            description_template: None,
        }
    }

    /// Whether the row is a status row (the flap guard and the reopen window apply to it).
    pub fn is_status(&self) -> bool {
        matches!(self, Self::Status(..))
    }

    /// Whether the row is an event row the recurrence note applies to: a severity row of
    /// Security Center or Endpoint Security Cloud. Office 365 rows are not: its resolvable
    /// issues already share one ticket per tenant and type, and its other events concern a
    /// mailbox, not a computer (each detected mail is its own item for a technician).
    pub fn has_recurrence(&self) -> bool {
        matches!(self, Self::Event(Product::SecurityCenter | Product::EndpointCloud, EventClass::Severity(_)))
    }

    /// Whether alert storms apply to the row: the rows that have the recurrence note, and every
    /// status row (Office 365 events concern mailboxes, and its resolvable issues already share
    /// one ticket per tenant and type).
    pub fn has_storms(&self) -> bool {
        self.has_recurrence() || self.is_status()
    }

    /// Whether the row takes `outbreak_as_storm`: the Security Center Critical event row (the
    /// row a `GNRL_EV_VIRUS_OUTBREAK` event falls in).
    pub fn has_outbreak(&self) -> bool {
        matches!(self, Self::Event(Product::SecurityCenter, EventClass::Severity(Severity::Critical)))
    }

    /// The row's label as the guide's tables show it.
    pub fn label(&self) -> String {
        match self {
            Self::Event(_, c) => c.to_string(),
            Self::Status(_, _, d) => d.text(),
        }
    }
}

/// Spelling used in config files, URLs and the CLI:
/// `security_center/event/critical`, `office365/event/malware_detected`,
/// `endpoint_cloud/status/warning/databases_out_of_date`.
impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Event(p, EventClass::Severity(s)) => write!(f, "{}/event/{}", p.code(), s.code()),
            Self::Event(p, EventClass::Office365(t)) => {
                write!(f, "{}/event/{}", p.code(), t.code())
            }
            Self::Status(p, l, d) => write!(f, "{}/status/{}/{}", p.code(), l.code(), d.code()),
        }
    }
}

/// A row id that does not name a row of the guide's tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown rule row `{0}` (expected e.g. security_center/event/critical or endpoint_cloud/status/warning/databases_out_of_date)"
)]
pub struct UnknownRow(pub String);

impl FromStr for RowId {
    type Err = UnknownRow;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UnknownRow(s.to_owned());
        let parts: Vec<&str> = s.split('/').collect();
        let product = Product::from_code(parts.first().copied().unwrap_or_default()).ok_or_else(err)?;
        let row = match (product, parts.as_slice()) {
            (Product::Office365, [_, "event", t]) => {
                Self::Event(product, EventClass::Office365(Office365EventType::from_code(t).ok_or_else(err)?))
            }
            (_, [_, "event", sev]) => {
                Self::Event(product, EventClass::Severity(Severity::from_code(sev).ok_or_else(err)?))
            }
            (_, [_, "status", level, code]) => Self::Status(
                product,
                StatusLevel::from_code(level).ok_or_else(err)?,
                StatusDescription::known_from_code(code).ok_or_else(err)?,
            ),
            _ => return Err(err()),
        };
        if row.section().rows().contains(&row) { Ok(row) } else { Err(err()) }
    }
}

impl Serialize for RowId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RowId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A page of the guide's Ticketing tab: the unit of save, cancel and reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// General settings.
    General,
    /// Event rules of a product.
    Events(Product),
    /// Status rules of a product at one level ("Warning status", "Critical status").
    Statuses(Product, StatusLevel),
}

impl Section {
    /// Every section, in the tab's order.
    pub fn all() -> Vec<Self> {
        let mut out = vec![Self::General];
        for p in Product::ALL {
            out.push(Self::Events(p));
            if p.has_statuses() {
                out.push(Self::Statuses(p, StatusLevel::Critical));
                out.push(Self::Statuses(p, StatusLevel::Warning));
            }
        }
        out
    }

    /// The rows of the section (empty for General).
    pub fn rows(self) -> Vec<RowId> {
        match self {
            Self::General => Vec::new(),
            Self::Events(Product::Office365) => Office365EventType::ALL
                .into_iter()
                .map(|t| RowId::Event(Product::Office365, EventClass::Office365(t)))
                .collect(),
            Self::Events(p) => {
                Severity::RULE_ROWS.into_iter().map(|s| RowId::Event(p, EventClass::Severity(s))).collect()
            }
            Self::Statuses(p, l) => StatusDescription::for_product(p).map(|d| RowId::Status(p, l, d)).collect(),
        }
    }

    /// Title as the tab shows it.
    pub fn title(self) -> String {
        match self {
            Self::General => "General".to_owned(),
            Self::Events(p) => format!("{p}: events"),
            Self::Statuses(p, l) => format!("{p}: {l} status"),
        }
    }
}

/// `general`, `events/security_center`, `statuses/endpoint_cloud/warning`.
impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::General => f.write_str("general"),
            Self::Events(p) => write!(f, "events/{}", p.code()),
            Self::Statuses(p, l) => write!(f, "statuses/{}/{}", p.code(), l.code()),
        }
    }
}

/// A section name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown section `{0}` (expected general, events/<product> or statuses/<product>/<critical|warning>)")]
pub struct UnknownSection(pub String);

impl FromStr for Section {
    type Err = UnknownSection;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::all().into_iter().find(|x| x.to_string() == s).ok_or_else(|| UnknownSection(s.to_owned()))
    }
}

impl Serialize for Section {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Section {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The whole rule set: general settings and every row of every table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// General settings.
    #[serde(default)]
    pub general: GeneralSettings,
    /// Every row. Missing rows (in a partial config file) take their defaults.
    #[serde(default)]
    pub rows: BTreeMap<RowId, Rule>,
    /// Maintenance windows (per tenant): no ticket is created during one. Saved with the
    /// General section (they are tenant-wide, not a row of any table). Empty: the guide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<crate::maintenance::MaintenanceWindow>,
    /// Products whose open status tickets follow their problem's severity: when a description
    /// moves from Warning to Critical on the same computer, the ticket takes the Critical row's
    /// priority and due time, with a note. Saved with that product's status sections (either
    /// of them). Empty: the guide. Office 365 is refused: its issues carry no severity.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub priority_follows_severity: BTreeSet<Product>,
}

impl Default for RuleSet {
    /// The guide's defaults: every row present and off.
    fn default() -> Self {
        let rows = Section::all().into_iter().flat_map(Section::rows).map(|r| {
            let rule = r.default_rule();
            (r, rule)
        });
        Self {
            general: GeneralSettings::default(),
            rows: rows.collect(),
            maintenance: Vec::new(),
            priority_follows_severity: BTreeSet::new(),
        }
    }
}

impl RuleSet {
    /// The rule of a row (a complete rule set has every row).
    pub fn rule(&self, row: &RowId) -> Option<&Rule> {
        self.rows.get(row)
    }

    /// How far back an event of `product` can still become a ticket: the longest lifetime of
    /// its enabled event rows, in days. `None` when an enabled row has no lifetime (Office 365),
    /// so no event is too old. With no row enabled, the guide's default lifetime: a row turned on
    /// later still sees the last day's events.
    pub fn longest_lifetime_days(&self, product: Product) -> Option<u32> {
        let mut longest = None;
        for (row, rule) in &self.rows {
            if !rule.enabled || !matches!(row, RowId::Event(p, _) if *p == product) {
                continue;
            }
            let days = rule.lifetime_days?;
            longest = Some(longest.map_or(days, |l: u32| l.max(days)));
        }
        Some(longest.unwrap_or(DEFAULT_LIFETIME_DAYS))
    }

    /// Fills rows a partial rule set lacks with their defaults.
    pub fn complete(mut self) -> Self {
        for row in Section::all().into_iter().flat_map(Section::rows) {
            self.rows.entry(row.clone()).or_insert_with(|| row.default_rule());
        }
        self
    }

    /// Replaces one section with its counterpart from `other`.
    pub fn copy_section_from(&mut self, section: Section, other: &Self) {
        match section {
            Section::General => {
                self.general = other.general.clone();
                self.maintenance = other.maintenance.clone();
            }
            s => {
                if let Section::Statuses(p, _) = s {
                    if other.priority_follows_severity.contains(&p) {
                        self.priority_follows_severity.insert(p);
                    } else {
                        self.priority_follows_severity.remove(&p);
                    }
                }
                for row in s.rows() {
                    let rule = other.rows.get(&row).cloned().unwrap_or_else(|| row.default_rule());
                    self.rows.insert(row, rule);
                }
            }
        }
    }

    /// Every problem that would stop the rule set from producing correct tickets.
    ///
    /// General settings are always checked; a rule only when it is enabled (the guide's
    /// required fields only matter for rows that create tickets).
    pub fn validate(&self, catalog: &Catalog) -> Vec<ValidationError> {
        let mut errors = resolve_general(&self.general, catalog).err().unwrap_or_default();
        errors.extend(crate::maintenance::validate_windows(&self.maintenance));
        if self.priority_follows_severity.contains(&Product::Office365) {
            errors.push(ValidationError {
                row: None,
                field: Field::PriorityFollowsSeverity,
                problem: Problem::NotApplicable,
            });
        }
        for (row, rule) in &self.rows {
            if rule.enabled {
                if let Err(e) = resolve_rule(row, rule, catalog) {
                    errors.extend(e);
                }
                // Templates are checked on save, not when a context is built: one that fails
                // later only falls back to the guide's text, it never stops a ticket.
                errors.extend(
                    crate::template::problems(row, rule).into_iter().map(|(field, problem)| ValidationError {
                        row: Some(row.clone()),
                        field,
                        problem,
                    }),
                );
            }
        }
        errors
    }

    /// [`RuleSet::validate`] restricted to one section.
    pub fn validate_section(&self, section: Section, catalog: &Catalog) -> Vec<ValidationError> {
        self.validate(catalog).into_iter().filter(|e| e.section() == section).collect()
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A required field is blank.
    Blank,
    /// The label names no active value of the PSA (shown as blank).
    NotInPsa {
        /// The label that no longer resolves.
        label: String,
    },
    /// The sub-issue type does not belong to the chosen issue type.
    NotOfIssueType,
    /// A number outside the accepted range.
    OutOfRange {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// The field does not exist for this row (lifetime on an Office 365 or status rule).
    NotApplicable,
    /// A title or description template that does not compile, or names a field its row does
    /// not have (checked by rendering it against the row's sample, strictly).
    Template {
        /// Line in the template (from 1).
        line: u32,
        /// Column in that line, in characters (from 1).
        column: u32,
        /// What is wrong (`unknown field `devce.name``, `syntax error: …`).
        message: String,
    },
    /// A maintenance window that cannot be used.
    InvalidWindow {
        /// The window's id.
        window: String,
        /// What is wrong.
        message: String,
    },
}

/// One validation problem, naming product, row and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// The row (`None` for general settings).
    pub row: Option<RowId>,
    /// The field.
    pub field: Field,
    /// What is wrong.
    pub problem: Problem,
}

impl ValidationError {
    /// The section the problem is in.
    pub fn section(&self) -> Section {
        self.row.as_ref().map_or(Section::General, RowId::section)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.row {
            None => write!(f, "general settings: ")?,
            Some(r) => write!(f, "{}, row \"{}\" ({r}): ", r.section().title(), r.label())?,
        }
        match &self.problem {
            Problem::Blank => write!(f, "{} is blank but required", self.field),
            Problem::NotInPsa { label } => {
                write!(f, "{} \"{label}\" is not an active value in the PSA (shown as blank)", self.field)
            }
            Problem::NotOfIssueType => {
                write!(f, "{} does not belong to the chosen issue_type", self.field)
            }
            Problem::OutOfRange { min, max } => {
                write!(f, "{} must be between {min} and {max}", self.field)
            }
            Problem::NotApplicable => write!(f, "{} does not apply to this row", self.field),
            Problem::InvalidWindow { window, message } => {
                write!(f, "{} window \"{window}\": {message}", self.field)
            }
            Problem::Template { line, column, message } => {
                write!(f, "{} line {line}, column {column}: {message}", self.field)
            }
        }
    }
}

impl std::error::Error for ValidationError {}

/// General settings with every label resolved to a PSA id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedGeneral {
    /// Ticket source.
    pub source: Option<PsaId>,
    /// New-ticket status.
    pub new_status: PsaId,
    /// Closed-ticket status.
    pub closed_status: PsaId,
}

/// A rule with every label resolved to a PSA id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRule {
    /// Lifetime in days, where the row has one.
    pub lifetime_days: Option<u32>,
    /// Queue.
    pub queue: PsaId,
    /// Priority.
    pub priority: PsaId,
    /// Due in hours.
    pub due_hours: u32,
    /// Work type.
    pub work_type: Option<PsaId>,
    /// Issue type.
    pub issue_type: Option<PsaId>,
    /// Sub-issue type.
    pub sub_issue_type: Option<PsaId>,
    /// Creation delay in minutes (status rows; 0: off).
    pub create_delay_minutes: u32,
    /// Reopen window in hours (status rows).
    pub reopen_hours: Option<u32>,
    /// Recurrence window in hours (Security Center and Endpoint Security Cloud event rows).
    pub recurrence_hours: Option<u32>,
    /// Alert storms on the row, when on.
    pub storm: Option<crate::storm::StormSettings>,
}

struct Resolver<'a> {
    catalog: &'a Catalog,
    row: Option<&'a RowId>,
    errors: Vec<ValidationError>,
}

impl Resolver<'_> {
    fn push(&mut self, field: Field, problem: Problem) {
        self.errors.push(ValidationError { row: self.row.cloned(), field, problem });
    }

    fn optional(&mut self, field: Field, label: Option<&str>) -> Option<PsaId> {
        let label = label.filter(|l| !l.trim().is_empty())?;
        let id = self.catalog.resolve(field, label);
        if id.is_none() {
            self.push(field, Problem::NotInPsa { label: label.to_owned() });
        }
        id
    }

    fn required(&mut self, field: Field, label: Option<&str>) -> Option<PsaId> {
        if label.is_none_or(|l| l.trim().is_empty()) {
            self.push(field, Problem::Blank);
            return None;
        }
        self.optional(field, label)
    }

    fn range(&mut self, field: Field, value: u32, range: &std::ops::RangeInclusive<u32>) {
        if !range.contains(&value) {
            self.push(field, Problem::OutOfRange { min: *range.start(), max: *range.end() });
        }
    }
}

/// Resolves general settings against the catalog.
pub fn resolve_general(general: &GeneralSettings, catalog: &Catalog) -> Result<ResolvedGeneral, Vec<ValidationError>> {
    let mut r = Resolver { catalog, row: None, errors: Vec::new() };
    let source = r.optional(Field::TicketSource, general.ticket_source.as_deref());
    let new_status = r.required(Field::NewStatus, general.new_status.as_deref());
    let closed_status = r.required(Field::ClosedStatus, general.closed_status.as_deref());
    match (new_status, closed_status, r.errors.is_empty()) {
        (Some(new_status), Some(closed_status), true) => Ok(ResolvedGeneral { source, new_status, closed_status }),
        _ => Err(r.errors),
    }
}

/// Resolves one rule against the catalog (whether or not it is enabled).
pub fn resolve_rule(row: &RowId, rule: &Rule, catalog: &Catalog) -> Result<ResolvedRule, Vec<ValidationError>> {
    let mut r = Resolver { catalog, row: Some(row), errors: Vec::new() };
    let has_lifetime = row.default_rule().lifetime_days.is_some();
    match (has_lifetime, rule.lifetime_days) {
        (true, Some(days)) => r.range(Field::Lifetime, days, &LIFETIME_RANGE),
        (true, None) => r.push(Field::Lifetime, Problem::Blank),
        (false, Some(_)) => r.push(Field::Lifetime, Problem::NotApplicable),
        (false, None) => {}
    }
    r.range(Field::DueHours, rule.due_hours, &DUE_HOURS_RANGE);
    for (field, problem) in lifecycle_problems(row, rule) {
        r.push(field, problem);
    }
    let queue = r.required(Field::Queue, rule.queue.as_deref());
    let priority = r.required(Field::Priority, rule.priority.as_deref());
    let work_type = r.optional(Field::WorkType, rule.work_type.as_deref());
    let issue_type = r.optional(Field::IssueType, rule.issue_type.as_deref());
    let sub_issue_type = r.optional(Field::SubIssueType, rule.sub_issue_type.as_deref());
    if let Some(sub) = sub_issue_type {
        let parent = catalog.sub_issue_types.iter().find(|v| v.id == sub).and_then(|v| v.parent);
        if issue_type.is_none() || parent != issue_type {
            r.push(Field::SubIssueType, Problem::NotOfIssueType);
        }
    }
    match (queue, priority, r.errors.is_empty()) {
        (Some(queue), Some(priority), true) => Ok(ResolvedRule {
            lifetime_days: rule.lifetime_days,
            queue,
            priority,
            due_hours: rule.due_hours,
            work_type,
            issue_type,
            sub_issue_type,
            create_delay_minutes: rule.create_delay_minutes,
            reopen_hours: rule.reopen_hours,
            recurrence_hours: rule.recurrence_hours,
            storm: crate::storm::StormSettings::of(rule),
        }),
        _ => Err(r.errors),
    }
}

/// The lifecycle settings' problems on one row: each refused on a row kind that cannot use it,
/// and out of its range. Shared by [`resolve_rule`] and the bulk edit's up-front check.
pub(crate) fn lifecycle_problems(row: &RowId, rule: &Rule) -> Vec<(Field, Problem)> {
    let mut out = Vec::new();
    let range = |field, value: u32, range: &std::ops::RangeInclusive<u32>| {
        (!range.contains(&value)).then(|| (field, Problem::OutOfRange { min: *range.start(), max: *range.end() }))
    };
    let status = row.is_status();
    if rule.create_delay_minutes != 0 && !status {
        out.push((Field::CreateDelay, Problem::NotApplicable));
    } else {
        out.extend(range(Field::CreateDelay, rule.create_delay_minutes, &CREATE_DELAY_RANGE));
    }
    match rule.reopen_hours {
        Some(_) if !status => out.push((Field::ReopenHours, Problem::NotApplicable)),
        Some(h) => out.extend(range(Field::ReopenHours, h, &WINDOW_HOURS_RANGE)),
        None => {}
    }
    match rule.recurrence_hours {
        Some(_) if !row.has_recurrence() => out.push((Field::RecurrenceHours, Problem::NotApplicable)),
        Some(h) => out.extend(range(Field::RecurrenceHours, h, &WINDOW_HOURS_RANGE)),
        None => {}
    }
    let storms = row.has_storms();
    let mut storm = |field, value: Option<u32>, bounds: &std::ops::RangeInclusive<u32>| match value {
        Some(_) if !storms => out.push((field, Problem::NotApplicable)),
        Some(v) => out.extend(range(field, v, bounds)),
        None => {}
    };
    storm(Field::StormThreshold, rule.storm_threshold, &STORM_THRESHOLD_RANGE);
    storm(Field::StormWindow, rule.storm_window_minutes, &STORM_MINUTES_RANGE);
    storm(Field::StormNote, rule.storm_note_minutes, &STORM_MINUTES_RANGE);
    if storms {
        // The threshold and the window only mean something together.
        match (rule.storm_threshold, rule.storm_window_minutes) {
            (Some(_), None) => out.push((Field::StormWindow, Problem::Blank)),
            (None, Some(_)) => out.push((Field::StormThreshold, Problem::Blank)),
            _ => {}
        }
    }
    if rule.outbreak_as_storm {
        if !row.has_outbreak() {
            out.push((Field::OutbreakAsStorm, Problem::NotApplicable));
        } else if rule.storm_threshold.is_none() {
            out.push((Field::StormThreshold, Problem::Blank));
        }
    }
    out
}
