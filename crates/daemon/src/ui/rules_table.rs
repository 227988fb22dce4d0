//! The controls of a section's rules form: General's settings, the status sections' switch,
//! the toolbar above the rules table and the table itself, one row per rule.

use maud::{Markup, html};

use ticketing_core::catalog::Field;
use ticketing_core::model::Product;
use ticketing_core::rules::{RowId, Rule, Section};

use super::render::{
    CREATE_AFTER, FOLLOWS, RECUR_WITHIN, REOPEN_WITHIN, SectionView, TICKET_TEXT, dom_id, has_lifetime, has_recurrence,
    problem_id, template_set, text_href,
};
use super::widgets::{picklist_select, shown};

/// The status sections' switch for the product's priority-follows-severity (one setting, shown
/// on both of its status sections). The hidden field tells the handler the switch was on the
/// page, so an unticked box means "off" rather than "not shown".
pub(super) fn follows_switch(v: &SectionView<'_>, product: Product) -> Markup {
    let on = v.book.draft.priority_follows_severity.contains(&product);
    let priority = (v.labels)(Field::Priority).to_lowercase();
    let problem = v.problems.iter().position(|p| p.field == Field::PriorityFollowsSeverity).map(problem_id);
    html! {
        div.switch id="follows-switch" {
            input type="hidden" name="follows_shown" value="1";
            label.check for="follows" {
                input type="checkbox" id="follows" name="follows" value="on" data-inline checked[on]
                    aria-invalid=[problem.as_ref().map(|_| "true")] aria-describedby=[problem.as_deref()];
                " " strong { (FOLLOWS) }
            }
            p.hint {
                "When a computer's problem moves from Warning to Critical, its open ticket takes the Critical row's "
                (priority) " and due time, with a note. One setting for both status sections of "
                (product.display_name()) ", saved with either."
            }
        }
    }
}

pub(super) fn general_fields(v: &SectionView<'_>) -> Markup {
    let g = &v.book.draft.general;
    html! {
        div.general {
            @for (field, value, hint) in [
                (Field::TicketSource, &g.ticket_source, "Optional."),
                (Field::NewStatus, &g.new_status, "Required; by default New."),
                (Field::ClosedStatus, &g.closed_status, "Required; by default Complete."),
            ] {
                @let bad = v.problems.iter().position(|p| p.row.is_none() && p.field == field).map(problem_id);
                div.field.bad[bad.is_some()] {
                    (picklist_select(
                        v.catalog,
                        field,
                        &format!("general.{}", field.name()),
                        field.name(),
                        (v.labels)(field),
                        false,
                        shown(v.catalog, field, value.as_deref()).as_deref(),
                        bad.as_deref(),
                    ))
                    " "
                    span.hint { (hint) }
                }
            }
        }
    }
}

/// Above the table: the Edit button (enabled once rows are selected) and the selection count.
pub(super) fn toolbar() -> Markup {
    html! {
        div.toolbar id="toolbar" {
            button type="button" id="edit-open" aria-haspopup="dialog" aria-controls="edit-dialog" disabled { "Edit" }
            " "
            span id="selected-count" class="hint" aria-live="polite" {
                "No rows selected: tick rows, then Edit changes them all at once."
            }
        }
    }
}

pub(super) fn rule_table(v: &SectionView<'_>) -> Markup {
    let s = v.section;
    let lifetime = has_lifetime(s);
    let status = matches!(s, Section::Statuses(..));
    let recurrence = has_recurrence(s);
    let what = match s {
        Section::Events(Product::Office365) => "Event type",
        Section::Events(_) => "Event severity",
        _ => "Status description",
    };
    let l = v.labels;
    html! {
        div.table-wrap {
            table.rules id="rules-table" {
                caption.vh { (s.title()) }
                thead {
                    tr {
                        th scope="col" class="c-select" {
                            label.vh for="select-all" { "Select all rows" }
                            input type="checkbox" id="select-all" data-select-all;
                        }
                        th scope="col" { (what) }
                        th scope="col" { "Create ticket" }
                        @if lifetime {
                            th scope="col" { "Lifetime, days" }
                        }
                        th scope="col" { (l(Field::Queue)) }
                        th scope="col" { (l(Field::Priority)) }
                        th scope="col" { (l(Field::DueHours)) }
                        @if status {
                            th scope="col" { (CREATE_AFTER) span.sub { "0: at once" } }
                            th scope="col" { (REOPEN_WITHIN) span.sub { "blank: off" } }
                        }
                        @if recurrence {
                            th scope="col" id="recur-h" { (RECUR_WITHIN) span.sub { "blank: off" } }
                        }
                        @if super::storm_fields::has_storms(s) {
                            th scope="col" id="storm-h" { "Storm" span.sub { "after tickets / in minutes; blank: off" } }
                        }
                        th scope="col" id="details-h" {
                            (l(Field::WorkType)) " / " (l(Field::IssueType)) " / " (l(Field::SubIssueType))
                        }
                    }
                }
                tbody {
                    @for row in s.rows() {
                        @let rule = v.book.draft.rule(&row).cloned().unwrap_or_else(|| row.default_rule());
                        (rule_row(v, &row, &rule, lifetime, what))
                    }
                }
            }
        }
    }
}

fn rule_row(v: &SectionView<'_>, row: &RowId, rule: &Rule, lifetime: bool, what: &str) -> Markup {
    let label = row.label();
    let r = row.to_string();
    let problem_of =
        |field: Field| v.problems.iter().position(|p| p.row.as_ref() == Some(row) && p.field == field).map(problem_id);
    let bad = v.problems.iter().any(|p| p.row.as_ref() == Some(row));
    let sid = dom_id("select", row);
    let lifetime_problem = problem_of(Field::Lifetime);
    let due_problem = problem_of(Field::DueHours);
    let details = [
        (Field::WorkType, &rule.work_type),
        (Field::IssueType, &rule.issue_type),
        (Field::SubIssueType, &rule.sub_issue_type),
    ];
    html! {
        tr id=(dom_id("row", row)) data-row=(r) class=[bad.then_some("bad")] {
            td.c-select {
                input type="hidden" name="row" value=(r);
                label.vh for=(sid) { "Select " (label) }
                input type="checkbox" name="select" value=(r) id=(sid) data-label=(label);
            }
            // The row's ticket text editor is linked under its name: a page of its own per row
            // (see `text`), and no extra column, so the tables still fit at 768 px.
            @let custom = template_set(rule.title_template.as_deref()) || template_set(rule.description_template.as_deref());
            @let text_problem = problem_of(Field::TitleTemplate).or_else(|| problem_of(Field::DescriptionTemplate));
            th scope="row" data-label=(what) {
                (label)
                a.text-link href=(text_href(row)) id=(dom_id("text", row)) class=[text_problem.as_ref().map(|_| "bad-value")]
                    aria-describedby=[text_problem.as_deref()] {
                    (TICKET_TEXT) span.vh { " for " (label) } ": " (if custom { "custom" } else { "default" })
                }
            }
            td data-label="Create ticket" {
                label.toggle {
                    input type="checkbox" name={ "enabled." (r) } id=(dom_id("enabled", row)) value="on" data-inline checked[rule.enabled];
                    span.vh { "Create ticket for " (label) }
                }
            }
            @if lifetime {
                @let id = dom_id("lifetime", row);
                td data-label="Lifetime, days" {
                    label.vh for=(id) { "Lifetime in days for " (label) }
                    input type="number" min="1" max="365" name={ "lifetime." (r) } id=(id)
                        value=(rule.lifetime_days.map(|d| d.to_string()).unwrap_or_default()) data-inline
                        aria-invalid=[lifetime_problem.as_ref().map(|_| "true")] aria-describedby=[lifetime_problem.as_deref()];
                }
            }
            @for field in [Field::Queue, Field::Priority] {
                @let value = if field == Field::Queue { &rule.queue } else { &rule.priority };
                td data-label=((v.labels)(field)) {
                    (picklist_select(
                        v.catalog,
                        field,
                        &format!("{}.{r}", field.name()),
                        &dom_id(field.name(), row),
                        &format!("{} for {label}", (v.labels)(field)),
                        true,
                        shown(v.catalog, field, value.as_deref()).as_deref(),
                        problem_of(field).as_deref(),
                    ))
                }
            }
            @let id = dom_id("due", row);
            td data-label="Due, hours" {
                label.vh for=(id) { "Due in hours for " (label) }
                input type="number" min="1" max="8760" name={ "due." (r) } id=(id) value=(rule.due_hours) data-inline
                    aria-invalid=[due_problem.as_ref().map(|_| "true")] aria-describedby=[due_problem.as_deref()];
            }
            @if row.is_status() {
                @let id = dom_id("delay", row);
                @let delay_problem = problem_of(Field::CreateDelay);
                td data-label=(CREATE_AFTER) {
                    label.vh for=(id) { "Create a ticket after this many minutes for " (label) }
                    input type="number" min="0" max=(ticketing_core::rules::CREATE_DELAY_RANGE.end()) name={ "delay." (r) } id=(id)
                        value=(rule.create_delay_minutes) data-inline
                        aria-invalid=[delay_problem.as_ref().map(|_| "true")] aria-describedby=[delay_problem.as_deref()];
                }
                @let id = dom_id("reopen", row);
                @let reopen_problem = problem_of(Field::ReopenHours);
                td data-label=(REOPEN_WITHIN) {
                    label.vh for=(id) { "Reopen within this many hours for " (label) " (blank: off)" }
                    input type="number" min="1" max=(ticketing_core::rules::WINDOW_HOURS_RANGE.end()) name={ "reopen." (r) } id=(id)
                        value=(rule.reopen_hours.map(|h| h.to_string()).unwrap_or_default()) placeholder="off" data-inline
                        aria-invalid=[reopen_problem.as_ref().map(|_| "true")] aria-describedby=[reopen_problem.as_deref()];
                }
            }
            @if row.has_recurrence() {
                @let id = dom_id("recur", row);
                @let recur_problem = problem_of(Field::RecurrenceHours);
                td data-label=(RECUR_WITHIN) {
                    label.vh for=(id) { "Note recurrences within this many hours for " (label) " (blank: off, every event gets its own ticket)" }
                    input type="number" min="1" max=(ticketing_core::rules::WINDOW_HOURS_RANGE.end()) name={ "recur." (r) } id=(id)
                        value=(rule.recurrence_hours.map(|h| h.to_string()).unwrap_or_default()) placeholder="off" data-inline
                        aria-invalid=[recur_problem.as_ref().map(|_| "true")] aria-describedby=[recur_problem.as_deref()];
                }
            }
            @if row.has_storms() {
                @let id = dom_id("storm", row);
                @let win = dom_id("stormwin", row);
                @let storm_problem = problem_of(Field::StormThreshold).or_else(|| problem_of(Field::StormWindow));
                td.storm data-label=(super::storm_fields::STORM_AFTER) {
                    label.vh for=(id) { "Open a storm ticket after this many tickets for " (label) " (blank: off, every problem gets its own ticket)" }
                    input type="number" min=(ticketing_core::rules::STORM_THRESHOLD_RANGE.start()) max=(ticketing_core::rules::STORM_THRESHOLD_RANGE.end()) name={ "storm." (r) } id=(id)
                        value=(rule.storm_threshold.map(|n| n.to_string()).unwrap_or_default()) placeholder="off" data-inline
                        aria-invalid=[storm_problem.as_ref().map(|_| "true")] aria-describedby=[storm_problem.as_deref()];
                    " / "
                    label.vh for=(win) { "within this many minutes, for " (label) }
                    input type="number" min=(ticketing_core::rules::STORM_MINUTES_RANGE.start()) max=(ticketing_core::rules::STORM_MINUTES_RANGE.end()) name={ "stormwin." (r) } id=(win)
                        value=(rule.storm_window_minutes.map(|n| n.to_string()).unwrap_or_default()) placeholder="min" data-inline
                        aria-invalid=[storm_problem.as_ref().map(|_| "true")] aria-describedby=[storm_problem.as_deref()];
                }
            }
            td.details data-label="Work type / Issue type / Issue subtype" id=(dom_id("details", row)) {
                @for (i, (f, val)) in details.into_iter().enumerate() {
                    @if i > 0 { " / " }
                    @let text = shown(v.catalog, f, val.as_deref()).unwrap_or_else(|| "\u{2014}".to_owned());
                    @match problem_of(f) {
                        Some(p) => span.bad-value aria-describedby=(p) { (text) },
                        None => (text),
                    }
                }
            }
        }
    }
}
