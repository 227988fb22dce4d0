//! The PSA's picklists, and resolution of the labels that rules hold into PSA ids.
//!
//! Rules store labels ("Monitoring Alert", "Critical", "New"), because that is what the guide's
//! defaults are and what a technician picks. A label resolves only to an **active** value of the
//! matching list, compared case-insensitively (Autotask's SQL Server collation is). A label the
//! PSA does not have resolves to blank, which is how the guide's "if one of these basic priority
//! values is deleted in Autotask, the default value is blank" comes out.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::PsaId;

/// One value of a picklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PicklistValue {
    /// The PSA's id.
    pub id: PsaId,
    /// What the technician sees.
    pub label: String,
    /// Inactive values cannot be used on new tickets.
    pub active: bool,
    /// For sub-issue types: the issue type they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<PsaId>,
}

impl PicklistValue {
    /// An active value without a parent.
    pub fn new(id: i64, label: impl Into<String>) -> Self {
        Self { id: PsaId(id), label: label.into(), active: true, parent: None }
    }

    /// Sets the parent (sub-issue types).
    pub fn with_parent(mut self, parent: i64) -> Self {
        self.parent = Some(PsaId(parent));
        self
    }

    /// Marks the value inactive.
    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }
}

/// Which picklist a rule field draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// General: ticket source.
    TicketSource,
    /// General: status of new tickets.
    NewStatus,
    /// General: status set when a ticket is closed.
    ClosedStatus,
    /// Rule: queue.
    Queue,
    /// Rule: priority.
    Priority,
    /// Rule: work type (Autotask billing code of use type 1).
    WorkType,
    /// Rule: issue type.
    IssueType,
    /// Rule: sub-issue type (must belong to the issue type).
    SubIssueType,
    /// Rule: lifetime in days.
    Lifetime,
    /// Rule: due in hours.
    DueHours,
    /// Status rule: minutes a description must stay active before it gets a ticket.
    CreateDelay,
    /// Status rule: hours after an automatic close within which a returning problem reopens it.
    ReopenHours,
    /// Event rule: hours within which the same event on the same computer is noted on its open
    /// ticket instead of getting a new one.
    RecurrenceHours,
    /// Rule: the title template.
    TitleTemplate,
    /// Rule: the description template.
    DescriptionTemplate,
    /// Rule: the storm threshold (tickets within the storm window).
    StormThreshold,
    /// Rule: the storm window, in minutes.
    StormWindow,
    /// Rule: at most one storm note per this many minutes.
    StormNote,
    /// Rule: a Security Center virus outbreak event opens the storm at once.
    OutbreakAsStorm,
    /// Rule set: a maintenance window.
    Maintenance,
    /// Rule set: priority follows severity.
    PriorityFollowsSeverity,
}

impl Field {
    /// Stable name, as used in config files, API bodies and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::TicketSource => "ticket_source",
            Self::NewStatus => "new_status",
            Self::ClosedStatus => "closed_status",
            Self::Queue => "queue",
            Self::Priority => "priority",
            Self::WorkType => "work_type",
            Self::IssueType => "issue_type",
            Self::SubIssueType => "sub_issue_type",
            Self::Lifetime => "lifetime_days",
            Self::DueHours => "due_hours",
            Self::CreateDelay => "create_delay_minutes",
            Self::ReopenHours => "reopen_hours",
            Self::RecurrenceHours => "recurrence_hours",
            Self::TitleTemplate => "title_template",
            Self::DescriptionTemplate => "description_template",
            Self::StormThreshold => "storm_threshold",
            Self::StormWindow => "storm_window_minutes",
            Self::StormNote => "storm_note_minutes",
            Self::OutbreakAsStorm => "outbreak_as_storm",
            Self::Maintenance => "maintenance",
            Self::PriorityFollowsSeverity => "priority_follows_severity",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The PSA's picklists that ticketing rules refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Ticket statuses (new and closed status).
    pub statuses: Vec<PicklistValue>,
    /// Ticket priorities.
    pub priorities: Vec<PicklistValue>,
    /// Queues.
    pub queues: Vec<PicklistValue>,
    /// Ticket sources.
    pub sources: Vec<PicklistValue>,
    /// Work types.
    pub work_types: Vec<PicklistValue>,
    /// Issue types.
    pub issue_types: Vec<PicklistValue>,
    /// Sub-issue types, each with its parent issue type.
    pub sub_issue_types: Vec<PicklistValue>,
}

impl Catalog {
    /// The list a field draws from (`None` for numeric fields).
    pub fn list(&self, field: Field) -> Option<&[PicklistValue]> {
        Some(match field {
            Field::TicketSource => &self.sources,
            Field::NewStatus | Field::ClosedStatus => &self.statuses,
            Field::Queue => &self.queues,
            Field::Priority => &self.priorities,
            Field::WorkType => &self.work_types,
            Field::IssueType => &self.issue_types,
            Field::SubIssueType => &self.sub_issue_types,
            Field::Lifetime
            | Field::DueHours
            | Field::CreateDelay
            | Field::ReopenHours
            | Field::RecurrenceHours
            | Field::TitleTemplate
            | Field::DescriptionTemplate
            | Field::StormThreshold
            | Field::StormWindow
            | Field::StormNote
            | Field::OutbreakAsStorm
            | Field::Maintenance
            | Field::PriorityFollowsSeverity => return None,
        })
    }

    /// The active value with this label, compared case-insensitively.
    pub fn find(&self, field: Field, label: &str) -> Option<&PicklistValue> {
        self.list(field)?.iter().find(|v| v.active && v.label.eq_ignore_ascii_case(label))
    }

    /// Resolves a label to an id; `None` when the PSA has no active value of that label.
    pub fn resolve(&self, field: Field, label: &str) -> Option<PsaId> {
        self.find(field, label).map(|v| v.id)
    }

    /// The label as the PSA spells it, or blank when the PSA no longer has it: what a UI shows.
    pub fn display(&self, field: Field, label: Option<&str>) -> Option<String> {
        label.and_then(|l| self.find(field, l)).map(|v| v.label.clone())
    }

    /// Active sub-issue types of an issue type (for a filtered drop-down).
    pub fn sub_issue_types_of(&self, issue_type: PsaId) -> impl Iterator<Item = &PicklistValue> {
        self.sub_issue_types.iter().filter(move |v| v.active && v.parent == Some(issue_type))
    }

    /// A catalog with the labels the guide's defaults use, handy for tests and examples.
    pub fn example() -> Self {
        Self {
            statuses: vec![
                PicklistValue::new(1, "New"),
                PicklistValue::new(5, "Complete"),
                PicklistValue::new(8, "In Progress"),
            ],
            priorities: vec![
                PicklistValue::new(1, "High"),
                PicklistValue::new(2, "Medium"),
                PicklistValue::new(3, "Low"),
                PicklistValue::new(4, "Critical"),
            ],
            queues: vec![PicklistValue::new(8, "Monitoring Alert"), PicklistValue::new(5, "Client Portal")],
            sources: vec![PicklistValue::new(8, "Monitoring Alert"), PicklistValue::new(2, "Phone")],
            work_types: vec![PicklistValue::new(29682801, "Remote Support")],
            issue_types: vec![PicklistValue::new(10, "Security"), PicklistValue::new(11, "Hardware")],
            sub_issue_types: vec![
                PicklistValue::new(101, "Malware").with_parent(10),
                PicklistValue::new(102, "Policy").with_parent(10),
                PicklistValue::new(111, "Disk").with_parent(11),
            ],
        }
    }
}
