//! HTML for the Ticketing tab, built with [`maud`] templates: every spliced value (labels from
//! the PSA, rule values, messages) is escaped by the template itself, so no page builds markup
//! by hand and nothing needs to remember to escape.
//!
//! This module holds the section page's body and the words and helpers the pages share; the
//! page frame is in [`super::layout`], the shared controls and banners in [`super::widgets`],
//! the rules form's controls in [`super::rules_table`], the Edit window in
//! [`super::edit_window`] and the preview in [`super::preview`].

use maud::{Markup, html};

use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::edit::RuleBook;
use ticketing_core::model::Product;
use ticketing_core::rules::{Problem, RowId, Section, ValidationError};

use super::edit_window::edit_window;
use super::preview::preview_box;
use super::psa::{PsaStatus, SourceStatus};
use super::rules_table::{follows_switch, general_fields, rule_table, toolbar};
use super::widgets::{psa_banner, source_banner};
use crate::rules_ops::Preview;

/// What a query value keeps unescaped: RFC 3986's unreserved characters and `/` (section and
/// row ids read as paths).
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Percent-encodes a query value (`percent-encoding`, the `url` crate's own encoder).
pub(crate) fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// The page address of a section.
pub(crate) fn section_href(section: Section) -> String {
    format!("/ui/section?s={}", url_encode(&section.to_string()))
}

/// An id-safe spelling of a row id.
pub(crate) fn dom_id(prefix: &str, row: &RowId) -> String {
    format!("{prefix}-{}", row.to_string().replace('/', "-"))
}

/// How the page labels a field (the lifecycle columns as the status tables head them).
pub(crate) fn field_label(field: Field, labels: crate::backends::Labels) -> &'static str {
    match field {
        Field::CreateDelay => CREATE_AFTER,
        Field::ReopenHours => REOPEN_WITHIN,
        Field::RecurrenceHours => RECUR_WITHIN,
        Field::StormThreshold => super::storm_fields::STORM_AFTER,
        Field::StormWindow => super::storm_fields::STORM_WINDOW,
        Field::StormNote => super::storm_fields::STORM_NOTES,
        Field::OutbreakAsStorm => super::storm_fields::OUTBREAK,
        Field::TitleTemplate => TITLE,
        Field::DescriptionTemplate => DESCRIPTION,
        Field::PriorityFollowsSeverity => FOLLOWS,
        f => labels(f),
    }
}

/// The status tables' lifecycle columns and the section switch, as the page names them.
pub(crate) const CREATE_AFTER: &str = "Create ticket after (minutes)";
/// See [`CREATE_AFTER`].
pub(crate) const REOPEN_WITHIN: &str = "Reopen within (hours)";
/// See [`CREATE_AFTER`].
pub(crate) const FOLLOWS: &str = "Raise priority when the computer becomes Critical";
/// The Security Center and Endpoint Security Cloud event tables' recurrence column.
pub(crate) const RECUR_WITHIN: &str = "Note recurrences within (hours)";
/// The link under each rule row's name to its ticket text editor.
pub(crate) const TICKET_TEXT: &str = "Ticket text";
/// The ticket text editor's title field (the row's title template).
pub(crate) const TITLE: &str = "Ticket title";
/// The ticket text editor's description field (the row's description template).
pub(crate) const DESCRIPTION: &str = "Ticket description";

/// What is wrong with a field, in words, without naming the row.
pub(super) fn problem_words(e: &ValidationError, labels: crate::backends::Labels) -> String {
    let f = field_label(e.field, labels);
    match &e.problem {
        Problem::Blank => format!("{f} is blank, but it is required"),
        Problem::NotInPsa { label } => {
            format!("{f} \u{201c}{label}\u{201d} is no longer in the PSA (shown blank): pick another value")
        }
        Problem::NotOfIssueType => format!("{f} does not belong to the chosen issue type"),
        Problem::OutOfRange { min, max } => format!("{f} must be between {min} and {max}"),
        Problem::NotApplicable => format!("{f} does not apply here"),
        Problem::InvalidWindow { window, message } => super::maintenance::problem_words(f, window, message),
        Problem::Template { line, column, message } => format!("{f}, line {line}, column {column}: {message}"),
    }
}

/// A problem in words, naming the row by its label (never by its internal id).
pub(crate) fn problem_text(e: &ValidationError, labels: crate::backends::Labels) -> String {
    match &e.row {
        Some(r) => format!("{} \u{201c}{}\u{201d}: {}", row_noun(r), r.label(), problem_words(e, labels)),
        None => problem_words(e, labels),
    }
}

/// What a row of a section is called ("Event severity", "Status description", …).
pub(crate) fn row_noun(row: &RowId) -> &'static str {
    match row {
        RowId::Event(Product::Office365, _) => "Event type",
        RowId::Event(..) => "Event severity",
        RowId::Status(..) => "Status description",
    }
}

/// A skip reason's stable code (as the preview and the metrics count them) in words.
pub(crate) fn skip_words(code: &str) -> String {
    match code {
        "rule_off" => "Create ticket is off for their row (or they have no row)".to_owned(),
        "stale" => "older than their row's lifetime".to_owned(),
        "tenant_unmapped" => "their customer is not mapped to an Autotask account".to_owned(),
        "account_inactive" => "the mapped Autotask account is inactive or unknown".to_owned(),
        "already_ticketed" => "a ticket for the same problem exists already".to_owned(),
        "rule_invalid" => "their row's settings do not match the PSA's current lists".to_owned(),
        "maintenance" => "a maintenance window of the draft covered their customer or computer".to_owned(),
        "pending" => "their row's creation delay had not passed yet".to_owned(),
        "recurrence_note" => {
            "noted on an open ticket: the same event on the same computer again within its row's recurrence window"
                .to_owned()
        }
        "storm" => "added to their row's storm ticket: the row had made its storm threshold of tickets for that customer within the storm window".to_owned(),
        other => other.replace('_', " "),
    }
}

/// What a status page can say about the computers behind its rows.
pub(crate) struct StatusCounts {
    /// Computers with a live (planned, open or closing) ticket, per status description label,
    /// from the ledger (which does not record the status level).
    pub(crate) open_by_description: Vec<(String, usize)>,
}

/// Everything a section page shows.
pub(crate) struct SectionView<'a> {
    /// The section.
    pub(crate) section: Section,
    /// Saved and draft rules.
    pub(crate) book: &'a RuleBook,
    /// The live catalog, once read.
    pub(crate) catalog: Option<&'a Catalog>,
    /// The CSRF token.
    pub(crate) csrf: &'a str,
    /// The rules revision the page shows: every form sends it back, so a change based on a page
    /// that another writer has since outdated is refused rather than applied blindly.
    pub(crate) revision: u64,
    /// How the PSA names the fields ("Queue" for Autotask, "Board" for ConnectWise).
    pub(crate) labels: crate::backends::Labels,
    /// The draft's problems in this section.
    pub(crate) problems: &'a [ValidationError],
    /// Preview of the draft (and of the saved rules), or why there is none (event pages).
    pub(crate) preview: Result<(Preview, Option<Preview>), String>,
    /// What the ledger says about status tickets (status pages), or why it cannot say.
    pub(crate) status: Result<StatusCounts, String>,
    /// Whether the PSA answers, as far as the UI can tell.
    pub(crate) psa: &'a PsaStatus,
    /// Which sources (KSC, KBH servers) fail, as far as the UI can tell.
    pub(crate) sources: &'a SourceStatus,
    /// The mapped tenants (id, label) the maintenance editor offers (General).
    pub(crate) tenants: &'a [(String, String)],
    /// A refused "add a maintenance window" form, its fields as typed (General).
    pub(crate) window_form: Option<&'a super::maintenance::WindowForm>,
    /// The time the page is rendered (for "open now").
    pub(crate) now: chrono::DateTime<chrono::Utc>,
}

/// The hidden fields every form of a section page carries.
pub(crate) fn hidden(csrf: &str, section: Section, revision: u64) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="section" value=(section.to_string());
        input type="hidden" name="revision" value=(revision);
    }
}

pub(super) fn problem_id(i: usize) -> String {
    format!("problem-{i}")
}

/// The body of a section page.
pub(crate) fn section_body(v: &SectionView<'_>) -> Markup {
    let s = v.section;
    let n = v.problems.len();
    html! {
        (psa_banner(v.psa, v.catalog.is_some()))
        (source_banner(v.sources))
        h1 id="section-title" { (s.title()) }
        p.state id="section-state" {
            (if v.book.is_dirty(s) { "The draft has unsaved changes." } else { "The draft equals the saved rules." })
        }
        @if n > 0 {
            section.problems aria-labelledby="problems-h" id="problems" {
                h2 id="problems-h" {
                    (plural(n, "problem", "problems")) " (Save changes is refused until "
                    (if n == 1 { "it is" } else { "they are" }) " fixed)"
                }
                ul {
                    @for (i, p) in v.problems.iter().enumerate() {
                        li id=(problem_id(i)) { (problem_text(p, v.labels)) }
                    }
                }
            }
        }
        // Forms that the action buttons below submit: cancel and reset discard edits, so they
        // carry nothing but the section.
        form id="cancel-form" method="post" action="/ui/cancel" data-discards { (hidden(v.csrf, s, v.revision)) }
        form id="reset-form" method="post" action="/ui/reset" data-discards { (hidden(v.csrf, s, v.revision)) }
        @if s == Section::General {
            (super::maintenance::remove_forms(v))
        }
        // The form's own action is Save changes: the page's edits go into the draft and the
        // section is saved, in one request (Enter in a field does the same).
        form id="rules-form" method="post" action="/ui/save" {
            (hidden(v.csrf, s, v.revision))
            @if s == Section::General {
                (general_fields(v))
                (super::maintenance::editor(v))
            } @else {
                @if let Section::Statuses(p, _) = s {
                    (follows_switch(v, p))
                }
                (toolbar())
                (rule_table(v))
            }
            div.actions id="actions" {
                button type="submit" id="save" class="primary" { "Save changes" }
                "\n"
                button type="submit" id="cancel" form="cancel-form" { "Cancel changes" }
                "\n"
                button type="submit" id="reset" form="reset-form" class="link" { "Reset to defaults" }
                span.hint id="edits-hint" { "Save changes saves the edits on this page too." }
            }
            @if s != Section::General {
                (edit_window(v))
            }
        }
        (preview_box(v))
    }
}

pub(super) fn has_lifetime(section: Section) -> bool {
    section.rows().first().is_some_and(|r| r.default_rule().lifetime_days.is_some())
}

/// Whether the section's rows take a recurrence window (Security Center and Endpoint Security
/// Cloud events).
pub(super) fn has_recurrence(section: Section) -> bool {
    section.rows().first().is_some_and(RowId::has_recurrence)
}

/// The address of a row's ticket text editor.
pub(crate) fn text_href(row: &RowId) -> String {
    format!("/ui/text?row={}", url_encode(&row.to_string()))
}

/// Whether a template is set (a blank one is the guide's text).
pub(crate) fn template_set(t: Option<&str>) -> bool {
    t.is_some_and(|t| !t.trim().is_empty())
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}
