//! The names a PSA gives the rule fields (its Ticketing tab's words), for the UI and messages:
//! a backend supplies its [`Labels`]; [`guide_label`] is the product guide's (Autotask's).

use ticketing_core::catalog::Field;

/// A backend's names for the rule fields.
pub type Labels = fn(Field) -> &'static str;

/// The guide's (Autotask's) names for the rule fields, as its Ticketing tab shows them.
pub fn guide_label(field: Field) -> &'static str {
    match field {
        Field::TicketSource => "Ticket source",
        Field::NewStatus => "New ticket status",
        Field::ClosedStatus => "Closed ticket status",
        Field::Queue => "Queue",
        Field::Priority => "Priority",
        Field::WorkType => "Work type",
        Field::IssueType => "Issue type",
        Field::SubIssueType => "Issue subtype",
        Field::Lifetime => "Lifetime, days",
        Field::DueHours => "Due, hours",
        // lifecycle: handled in the engine integration (labels of the issue-20 settings)
        Field::CreateDelay => "Creation delay, minutes",
        Field::ReopenHours => "Reopen window, hours",
        Field::RecurrenceHours => "Recurrence window, hours",
        Field::TitleTemplate => "Title template",
        Field::DescriptionTemplate => "Description template",
        Field::StormThreshold => "Storm after, tickets",
        Field::StormWindow => "Storm window, minutes",
        Field::StormNote => "Storm notes every, minutes",
        Field::OutbreakAsStorm => "Outbreak opens a storm",
        Field::Maintenance => "Maintenance window",
        Field::PriorityFollowsSeverity => "Priority follows severity",
    }
}
