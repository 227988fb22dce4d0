//! The Edit window: one patch to every selected row of a section.

use maud::{Markup, html};

use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::rules::Section;

use super::render::{CREATE_AFTER, RECUR_WITHIN, REOPEN_WITHIN, SectionView, has_lifetime, has_recurrence};
use super::widgets::labels;

/// The Edit window's title, as the guide names it.
pub(crate) fn edit_title(section: Section) -> &'static str {
    match section {
        Section::Statuses(..) => "Ticketing settings for computer status change",
        _ => "Ticketing settings for events",
    }
}

/// A drop-down of the Edit window: keep (default), clear, or a value.
fn bulk_select(catalog: Option<&Catalog>, field: Field, name: &str, names: crate::backends::Labels) -> Markup {
    html! {
        div.field {
            label for=(name) { (names(field)) }
            select id=(name) name=(name) data-issue-select=[(field == Field::IssueType).then_some("b_sub_issue_type")] {
                option value="" selected { "(keep as is)" }
                option value="!clear" { "(blank)" }
                @if field == Field::SubIssueType {
                    @if let Some(c) = catalog {
                        @for it in c.issue_types.iter().filter(|v| v.active) {
                            optgroup label=(it.label) {
                                @for s in c.sub_issue_types_of(it.id) {
                                    option value={ "=" (s.label) } data-parent=(it.label) { (s.label) }
                                }
                            }
                        }
                    }
                } @else {
                    @for o in labels(catalog, field) {
                        option value={ "=" (o) } { (o) }
                    }
                }
            }
        }
    }
}

/// The Edit window: a native modal `<dialog>` opened by the Edit button above the table. Its
/// fields belong to the section's form, so "Apply" posts them with the selected rows (and the
/// page's inline edits). Without JavaScript (`nojs.css`) the same fields show under the table.
pub(super) fn edit_window(v: &SectionView<'_>) -> Markup {
    html! {
        dialog.edit-window id="edit-dialog" aria-labelledby="edit-title" {
            h2 id="edit-title" { (edit_title(v.section)) }
            p id="edit-count" class="count" { "Applies to the rows ticked in the table." }
            p.hint { "Fields left at “(keep as is)” do not change." }
            div.fields {
                div.field {
                    label for="b_enabled" { "On / Off" }
                    select id="b_enabled" name="b_enabled" {
                        option value="" selected { "(keep as is)" }
                        option value="on" { "On" }
                        option value="off" { "Off" }
                    }
                }
                @if has_lifetime(v.section) {
                    div.field {
                        label for="b_lifetime" { "Lifetime, days" }
                        input type="number" min="1" max="365" id="b_lifetime" name="b_lifetime" placeholder="keep as is";
                    }
                }
                (bulk_select(v.catalog, Field::Queue, "b_queue", v.labels))
                (bulk_select(v.catalog, Field::Priority, "b_priority", v.labels))
                div.field {
                    label for="b_due" { "Due, hours" }
                    input type="number" min="1" max="8760" id="b_due" name="b_due" placeholder="keep as is";
                }
                @if matches!(v.section, Section::Statuses(..)) {
                    div.field {
                        label for="b_delay" { (CREATE_AFTER) }
                        input type="number" min="0" max=(ticketing_core::rules::CREATE_DELAY_RANGE.end()) id="b_delay" name="b_delay" placeholder="keep as is";
                    }
                    div.field {
                        label for="b_reopen" { (REOPEN_WITHIN) }
                        input type="number" min="1" max=(ticketing_core::rules::WINDOW_HOURS_RANGE.end()) id="b_reopen" name="b_reopen" placeholder="keep as is";
                        label.check for="b_reopen_off" {
                            input type="checkbox" id="b_reopen_off" name="b_reopen_off" value="on";
                            " Turn reopening off"
                        }
                    }
                }
                @if has_recurrence(v.section) {
                    div.field {
                        label for="b_recur" { (RECUR_WITHIN) }
                        input type="number" min="1" max=(ticketing_core::rules::WINDOW_HOURS_RANGE.end()) id="b_recur" name="b_recur" placeholder="keep as is";
                        label.check for="b_recur_off" {
                            input type="checkbox" id="b_recur_off" name="b_recur_off" value="on";
                            " Turn recurrence notes off"
                        }
                    }
                }
                @if super::storm_fields::has_storms(v.section) {
                    div.field {
                        label for="b_storm" { (super::storm_fields::STORM_AFTER) }
                        input type="number" min=(ticketing_core::rules::STORM_THRESHOLD_RANGE.start()) max=(ticketing_core::rules::STORM_THRESHOLD_RANGE.end()) id="b_storm" name="b_storm" placeholder="keep as is";
                        label for="b_stormwin" { (super::storm_fields::STORM_WINDOW) }
                        input type="number" min="1" max=(ticketing_core::rules::STORM_MINUTES_RANGE.end()) id="b_stormwin" name="b_stormwin" placeholder="keep as is";
                        label for="b_stormnote" { (super::storm_fields::STORM_NOTES) }
                        input type="number" min="1" max=(ticketing_core::rules::STORM_MINUTES_RANGE.end()) id="b_stormnote" name="b_stormnote" placeholder="keep as is (default 5)";
                        label.check for="b_storm_off" {
                            input type="checkbox" id="b_storm_off" name="b_storm_off" value="on";
                            " Turn storms off"
                        }
                        p.hint { "Once a row has made this many tickets for one customer within the window, further problems of the row go to one storm ticket, listed in a note at most every few minutes; the storm ends when the window passes without a new problem." }
                    }
                }
                @if v.section.rows().iter().any(ticketing_core::rules::RowId::has_outbreak) {
                    div.field {
                        label for="b_outbreak" { (super::storm_fields::OUTBREAK) }
                        select id="b_outbreak" name="b_outbreak" {
                            option value="" selected { "(keep as is)" }
                            option value="on" { "On (for the Critical row)" }
                            option value="off" { "Off" }
                        }
                    }
                }
                (bulk_select(v.catalog, Field::WorkType, "b_work_type", v.labels))
                (bulk_select(v.catalog, Field::IssueType, "b_issue_type", v.labels))
                (bulk_select(v.catalog, Field::SubIssueType, "b_sub_issue_type", v.labels))
            }
            p.dialog-actions {
                button type="submit" id="bulk-apply" class="primary" formaction="/ui/bulk-edit" { "Apply to selected rows" }
                " "
                button type="button" id="edit-close" { "Close" }
            }
            p.hint { "Apply puts the values into the draft; Save changes then saves them." }
        }
    }
}
