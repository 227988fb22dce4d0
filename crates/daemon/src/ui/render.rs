//! HTML for the Ticketing tab, built with [`maud`] templates: every spliced value (labels from
//! the PSA, rule values, messages) is escaped by the template itself, so no page builds markup
//! by hand and nothing needs to remember to escape.

use maud::{DOCTYPE, Markup, html};

use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::edit::RuleBook;
use ticketing_core::model::{Product, StatusLevel};
use ticketing_core::rules::{Problem, RowId, Rule, Section, ValidationError};

use super::psa::{PsaStatus, SourceStatus};
use super::session::Flash;
use crate::rules_ops::Preview;

/// Percent-encodes a query value.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The page address of a section.
pub(crate) fn section_href(section: Section) -> String {
    format!("/ui/section?s={}", url_encode(&section.to_string()))
}

/// The value a drop-down shows for a stored label: the PSA's spelling, or blank when the PSA
/// no longer has it. Without a catalog (not read yet) the stored label is shown as is.
pub(crate) fn shown(catalog: Option<&Catalog>, field: Field, label: Option<&str>) -> Option<String> {
    match catalog {
        Some(c) => c.display(field, label),
        None => label.map(str::to_owned),
    }
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
fn problem_words(e: &ValidationError, labels: crate::backends::Labels) -> String {
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
        other => other.replace('_', " "),
    }
}

fn labels(catalog: Option<&Catalog>, field: Field) -> Vec<String> {
    catalog
        .and_then(|c| c.list(field))
        .map(|l| l.iter().filter(|v| v.active).map(|v| v.label.clone()).collect())
        .unwrap_or_default()
}

/// A labelled drop-down of a picklist: a blank option, then the PSA's active values (plus
/// the current value when there is no catalog to check it against). A control whose value has
/// a problem carries `aria-invalid` and a reference to the problem's text in the list above
/// the table.
#[allow(clippy::too_many_arguments)] // one private helper, called with named locals
fn picklist_select(
    catalog: Option<&Catalog>,
    field: Field,
    name: &str,
    id: &str,
    label: &str,
    label_hidden: bool,
    current: Option<&str>,
    problem_id: Option<&str>,
) -> Markup {
    let mut opts = labels(catalog, field);
    if let Some(c) = current {
        if !opts.iter().any(|o| o == c) {
            opts.push(c.to_owned());
        }
    }
    html! {
        label for=(id) class=[label_hidden.then_some("vh")] { (label) }
        select id=(id) name=(name) data-inline aria-invalid=[problem_id.map(|_| "true")] aria-describedby=[problem_id] {
            option value="" selected[current.is_none()] { "(blank)" }
            @for o in &opts {
                option value=(o) selected[Some(o.as_str()) == current] { (o) }
            }
        }
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

/// The pages the bar under the header links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    /// The Ticketing rules (the sections, with the left pane).
    Rules,
    /// Recent decisions.
    Activity,
    /// Tenants and their PSA accounts.
    Mapping,
}

impl Tab {
    const ALL: [Self; 3] = [Self::Rules, Self::Activity, Self::Mapping];

    fn href(self) -> String {
        match self {
            Self::Rules => section_href(Section::General),
            Self::Activity => "/ui/activity".to_owned(),
            Self::Mapping => "/ui/mapping".to_owned(),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Rules => "Ticketing rules",
            Self::Activity => "Activity",
            Self::Mapping => "Mapping",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Self::Rules => "tab-rules",
            Self::Activity => "tab-activity",
            Self::Mapping => "tab-mapping",
        }
    }
}

/// What every page's frame needs.
pub(crate) struct Frame<'a> {
    /// The page's title.
    pub(crate) title: &'a str,
    /// Which page of the bar under the header this is (None: login, refusals).
    pub(crate) tab: Option<Tab>,
    /// The current section (for the navigation), if any.
    pub(crate) current: Option<Section>,
    /// Sections with unsaved changes.
    pub(crate) dirty: &'a [Section],
    /// The session's CSRF token (None on the login page).
    pub(crate) csrf: Option<&'a str>,
    /// Messages to show once.
    pub(crate) flash: &'a [Flash],
}

fn nav_link(frame: &Frame<'_>, s: Section, text: &str) -> Markup {
    html! {
        li {
            a href=(section_href(s)) aria-current=[(Some(s) == frame.current).then_some("page")] { (text) }
            @if frame.dirty.contains(&s) {
                " " span.dirty title="unsaved changes" { "(unsaved)" }
            }
        }
    }
}

/// The left pane: General, then each product with its sections, as the guide groups them.
fn nav(frame: &Frame<'_>) -> Markup {
    html! {
        nav id="nav" aria-label="Ticketing sections" {
            ul.tree {
                (nav_link(frame, Section::General, "General"))
                @for p in Product::ALL {
                    li.product {
                        span.product-name { (p.display_name()) }
                        ul {
                            (nav_link(frame, Section::Events(p), "Events"))
                            @if p.has_statuses() {
                                li {
                                    span.group-name { "Computer status" }
                                    ul {
                                        @for l in [StatusLevel::Critical, StatusLevel::Warning] {
                                            (nav_link(frame, Section::Statuses(p, l), &l.to_string()))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The bar under the header: Ticketing rules, Activity, Mapping.
fn tabs(frame: &Frame<'_>) -> Markup {
    html! {
        nav.tabs id="tabs" aria-label="Pages" {
            @for t in Tab::ALL {
                a href=(t.href()) id=(t.id()) aria-current=[(Some(t) == frame.tab).then_some("page")] { (t.text()) }
            }
        }
    }
}

/// Wraps a page body in the document, header, navigation and messages. Logged-in pages get the
/// bar of pages; the rules pages also get the left pane of sections.
pub(crate) fn page(frame: &Frame<'_>, body: Markup) -> String {
    let logged_in = frame.csrf.is_some();
    let sections = logged_in && frame.tab == Some(Tab::Rules);
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · Ticketing · msp-ticketd" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                noscript { link rel="stylesheet" href="/ui/assets/nojs.css"; }
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header.top {
                    @if sections {
                        button type="button" id="nav-toggle" class="nav-toggle" aria-controls="nav" aria-expanded="false" { "Sections" }
                    }
                    span.brand { "msp-ticketd · Ticketing" }
                    @if let Some(csrf) = frame.csrf {
                        form method="post" action="/ui/logout" class="logout" data-leaves {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                @if logged_in {
                    (tabs(frame))
                }
                div.layout {
                    @if sections {
                        (nav(frame))
                    }
                    main id="main" {
                        @for f in frame.flash {
                            div class={ "flash " (f.kind) } role=(if f.kind == "error" { "alert" } else { "status" }) id={ "flash-" (f.kind) } {
                                p { (f.text) }
                                @if !f.details.is_empty() {
                                    ul {
                                        @for d in &f.details {
                                            li { (d) }
                                        }
                                    }
                                }
                            }
                        }
                        (body)
                    }
                }
            }
        }
    };
    let mut out = doc.into_string();
    out.push('\n');
    out
}

/// The login form.
pub(crate) fn login(error: Option<&str>) -> String {
    let body = html! {
        h1 { "Log in" }
        @if let Some(e) = error {
            div.flash.error role="alert" { p { (e) } }
        }
        form method="post" action="/ui/login" class="login" {
            p {
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
            }
            p { button type="submit" { "Log in" } }
        }
        p.hint { "Use the admin API's bearer token (" code { "admin.token" } " in the configuration)." }
    };
    page(&Frame { title: "Log in", tab: None, current: None, dirty: &[], csrf: None, flash: &[] }, body)
}

/// A page refusing a request, with its reason.
pub(crate) fn refused(text: &str) -> String {
    let body = html! {
        h1 { "Refused" }
        div.flash.error role="alert" { p { (text) } }
        p { a href="/ui" { "Back to the Ticketing tab" } }
    };
    page(&Frame { title: "Refused", tab: None, current: None, dirty: &[], csrf: None, flash: &[] }, body)
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

/// The banner shown while the PSA does not answer or the catalog may be outdated.
pub(crate) fn psa_banner(psa: &PsaStatus, has_catalog: bool) -> Markup {
    html! {
        @if let Some((head, text)) = psa.problem(has_catalog) {
            div.banner.error role="alert" id="psa-banner" {
                p { strong { (head) } }
                p { (text) }
            }
        }
    }
}

/// The banner shown while a source's calls fail (see [`SourceStatus`] for how that is told).
pub(crate) fn source_banner(sources: &SourceStatus) -> Markup {
    html! {
        @if let Some((head, text)) = sources.problem() {
            div.banner.error role="alert" id="source-banner" {
                p { strong { (head) } }
                p { (text) }
            }
        }
    }
}

fn problem_id(i: usize) -> String {
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

/// The status sections' switch for the product's priority-follows-severity (one setting, shown
/// on both of its status sections). The hidden field tells the handler the switch was on the
/// page, so an unticked box means "off" rather than "not shown".
fn follows_switch(v: &SectionView<'_>, product: Product) -> Markup {
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

fn general_fields(v: &SectionView<'_>) -> Markup {
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

fn has_lifetime(section: Section) -> bool {
    section.rows().first().is_some_and(|r| r.default_rule().lifetime_days.is_some())
}

/// Whether the section's rows take a recurrence window (Security Center and Endpoint Security
/// Cloud events).
fn has_recurrence(section: Section) -> bool {
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

/// The Edit window's title, as the guide names it.
pub(crate) fn edit_title(section: Section) -> &'static str {
    match section {
        Section::Statuses(..) => "Ticketing settings for computer status change",
        _ => "Ticketing settings for events",
    }
}

/// Above the table: the Edit button (enabled once rows are selected) and the selection count.
fn toolbar() -> Markup {
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

fn rule_table(v: &SectionView<'_>) -> Markup {
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

/// The Edit window: a native modal `<dialog>` opened by the Edit button above the table. Its
/// fields belong to the section's form, so "Apply" posts them with the selected rows (and the
/// page's inline edits). Without JavaScript (`nojs.css`) the same fields show under the table.
fn edit_window(v: &SectionView<'_>) -> Markup {
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

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn preview_box(v: &SectionView<'_>) -> Markup {
    html! {
        section.preview aria-labelledby="preview-h" id="preview" {
            @if let Section::Statuses(p, l) = v.section {
                (status_preview(v, p, l))
            } @else {
                (event_preview(v))
            }
        }
    }
}

fn event_preview(v: &SectionView<'_>) -> Markup {
    let days = v.preview.as_ref().map(|(p, _)| p.days).unwrap_or(7);
    html! {
        h2 id="preview-h" { "Preview the draft" }
        form method="get" action="/ui/section" id="preview-form" data-leaves {
            input type="hidden" name="s" value=(v.section.to_string());
            label for="days" { "What would this draft have ticketed over the last" }
            " "
            input type="number" min="1" max="365" id="days" name="days" value=(days);
            " days? "
            button type="submit" id="preview-run" { "Preview" }
        }
        @match &v.preview {
            Err(e) => p id="preview-result" { (e) },
            Ok((draft, saved)) => {
                p.hint id="preview-how" {
                    "The stored events are replayed through the draft, each as of the time it was seen, including the draft's maintenance windows. Computer statuses are not replayed (see a status section)."
                }
                p id="preview-result" {
                    "Over the last " (plural(draft.days as usize, "day", "days")) ", "
                    (plural(draft.events, "event was", "events were"))
                    " seen (all products); this draft would have created "
                    strong id="preview-count" { (draft.would_create) }
                    " ticket(s)"
                    @if let Some(p) = saved { " (the saved rules: " (p.would_create) ")" }
                    @if draft.recurrence_notes > 0 || saved.as_ref().is_some_and(|p| p.recurrence_notes > 0) {
                        ", and noted "
                        strong id="preview-notes" { (draft.recurrence_notes) }
                        " recurrence(s) on an open ticket instead of a new one"
                        @if let Some(p) = saved { " (the saved rules: " (p.recurrence_notes) ")" }
                    }
                    "."
                }
                @let rows: std::collections::BTreeSet<&String> = draft.by_row.keys().chain(draft.notes_by_row.keys()).collect();
                @if !rows.is_empty() {
                    table.small id="preview-rows" {
                        caption { "Tickets per row" }
                        thead {
                            tr {
                                th scope="col" { "Row" }
                                th scope="col" { "Tickets" }
                                @if draft.recurrence_notes > 0 { th scope="col" { "Noted on an open ticket" } }
                            }
                        }
                        tbody {
                            @for row in rows {
                                @let name = row
                                    .parse::<RowId>()
                                    .map(|r| format!("{}: {}", r.section().title(), r.label()))
                                    .unwrap_or_else(|_| "another row".to_owned());
                                tr {
                                    td { (name) }
                                    td { (draft.by_row.get(row).copied().unwrap_or_default()) }
                                    @if draft.recurrence_notes > 0 { td { (draft.notes_by_row.get(row).copied().unwrap_or_default()) } }
                                }
                            }
                        }
                    }
                }
                @if !draft.skipped.is_empty() {
                    p { "Not ticketed:" }
                    ul id="preview-skipped" {
                        @for (reason, n) in &draft.skipped {
                            li {
                                (plural(*n, "event", "events")) ": " (skip_words(reason))
                                @if reason == "recurrence_note" { " (counted above, not as tickets)" }
                                @if reason == "maintenance" && !draft.maintenance.is_empty() {
                                    ul id="preview-maintenance" {
                                        @for (window, n) in &draft.maintenance {
                                            li { "maintenance window \u{201c}" (window) "\u{201d}: " (plural(*n, "event", "events")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if has_recurrence(v.section) {
            (recurrence_notes(v))
        }
        (sample_texts(v))
    }
}

/// A status page's preview counts status descriptions, not events: how many of this level's
/// descriptions the draft (and the saved rules) ticket, and, from the ledger, the computers
/// with an open ticket per description. The latest status snapshots themselves are not kept
/// where the UI can read them, and the page says so.
fn status_preview(v: &SectionView<'_>, product: Product, level: StatusLevel) -> Markup {
    let rows = v.section.rows();
    let on = |set: &ticketing_core::rules::RuleSet| {
        rows.iter().filter(|r| set.rule(r).cloned().unwrap_or_else(|| r.default_rule()).enabled).count()
    };
    let (draft_on, saved_on) = (on(&v.book.draft), on(&v.book.saved));
    html! {
        h2 id="preview-h" { "Preview the draft" }
        p id="preview-result" {
            "This draft creates tickets for " strong id="preview-count" { (draft_on) } " of the " (rows.len())
            " status descriptions when a computer's status changes to " (level) " (the saved rules: " (saved_on) ")."
        }
        p.hint id="preview-limits" {
            "How many computers each description would ticket cannot be previewed here: the latest status snapshots of "
            (product.display_name())
            " are not kept where this page can read them. Below are the status tickets the integration owns now, from its ledger (it does not record the status level)."
        }
        (lifecycle_notes(v, product, level))
        (sample_texts(v))
        @match &v.status {
            Err(e) => p id="preview-ledger" { (e) },
            Ok(c) if c.open_by_description.is_empty() => p id="preview-ledger" { "No computer has an open status ticket now." },
            Ok(c) => table.small id="preview-ledger" {
                caption { "Computers with an open ticket, per status description" }
                thead { tr { th scope="col" { "Status description" } th scope="col" { "Computers" } } }
                tbody {
                    @for (d, n) in &c.open_by_description {
                        tr { td { (d) } td { (n) } }
                    }
                }
            },
        }
    }
}

/// The status section's lifecycle settings in words: which enabled rows wait or reopen, and
/// whether priority follows severity. Settings, not a replay: the page says so.
fn lifecycle_notes(v: &SectionView<'_>, product: Product, level: StatusLevel) -> Markup {
    let draft = &v.book.draft;
    let rows: Vec<(RowId, Rule)> = v
        .section
        .rows()
        .into_iter()
        .map(|r| {
            let rule = draft.rule(&r).cloned().unwrap_or_else(|| r.default_rule());
            (r, rule)
        })
        .filter(|(_, rule)| rule.enabled)
        .collect();
    let delayed: Vec<&(RowId, Rule)> = rows.iter().filter(|(_, r)| r.create_delay_minutes > 0).collect();
    let reopening: Vec<&(RowId, Rule)> = rows.iter().filter(|(_, r)| r.reopen_hours.is_some()).collect();
    let follows = draft.priority_follows_severity.contains(&product);
    html! {
        div id="preview-lifecycle" {
            @if delayed.is_empty() && reopening.is_empty() {
                p { "Every ticketed description here gets its ticket at first sight, and a problem that comes back gets a new ticket." }
            } @else {
                ul {
                    @for (row, rule) in &delayed {
                        li {
                            "\u{201c}" (row.label()) "\u{201d}: a ticket only once the problem has lasted "
                            (plural(rule.create_delay_minutes as usize, "minute", "minutes"))
                            "; one that clears sooner gets none."
                        }
                    }
                    @for (row, rule) in &reopening {
                        li {
                            "\u{201c}" (row.label()) "\u{201d}: a problem back within "
                            (plural(rule.reopen_hours.unwrap_or_default() as usize, "hour", "hours"))
                            " of the integration closing its ticket reopens that ticket."
                        }
                    }
                }
            }
            p {
                (FOLLOWS) ": "
                @if follows {
                    strong { "on" } " for " (product.display_name())
                    @if level == StatusLevel::Warning { " (an open Warning ticket is raised when its computer becomes Critical)" }
                    "."
                } @else {
                    strong { "off" } "."
                }
            }
            p.hint {
                "These are the settings as the draft has them; the preview cannot replay them (computer statuses are not stored), and a maintenance window also holds back creates and reopens here."
            }
        }
    }
}

/// An event section's recurrence windows in words: which enabled rows note a recurrence on
/// the open ticket instead of making a new one.
fn recurrence_notes(v: &SectionView<'_>) -> Markup {
    let rows: Vec<(RowId, u32)> = v
        .section
        .rows()
        .into_iter()
        .filter_map(|r| {
            let rule = v.book.draft.rule(&r).cloned().unwrap_or_else(|| r.default_rule());
            let hours = rule.recurrence_hours.filter(|_| rule.enabled)?;
            Some((r, hours))
        })
        .collect();
    html! {
        div id="preview-recurrence" {
            @if rows.is_empty() {
                p { "Every ticketed event here gets its own ticket (no row notes recurrences)." }
            } @else {
                ul {
                    @for (row, hours) in &rows {
                        li {
                            "\u{201c}" (row.label()) "\u{201d}: an event of the same type on the same computer within "
                            (plural(*hours as usize, "hour", "hours"))
                            " of the event its still open ticket was made for is noted on that ticket instead of getting a ticket of its own."
                        }
                    }
                }
            }
        }
    }
}

/// The sample ticket of each enabled row of the section with its own title or description:
/// what the draft's templates write for a typical event or problem of the row.
fn sample_texts(v: &SectionView<'_>) -> Markup {
    let rows = v.section.rows();
    let texts: Vec<crate::rules_ops::RowTexts> =
        crate::rules_ops::row_texts(&v.book.draft).into_iter().filter(|t| rows.contains(&t.row)).collect();
    html! {
        @if !texts.is_empty() {
            div id="preview-texts" {
                h3 { "Sample tickets of the rows with their own text" }
                @for t in &texts {
                    div.sample id=(dom_id("sample", &t.row)) {
                        p {
                            strong { "\u{201c}" (t.row.label()) "\u{201d}" }
                            " ("
                            (match (t.custom_title, t.custom_description) {
                                (true, true) => "its own title and description",
                                (true, false) => "its own title, the default description",
                                _ => "the default title, its own description",
                            })
                            "): "
                            a href=(text_href(&t.row)) { "edit the ticket text" }
                        }
                        @if t.problems.is_empty() {
                            (sample_ticket(t.title.as_deref().unwrap_or_default(), t.description.as_deref().unwrap_or_default(), None))
                        } @else {
                            ul.field-error {
                                @for p in &t.problems {
                                    li { (problem_words(p, v.labels)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A sample ticket: its title, its description and, apart, the key line every description
/// ends with (the integration recognises its tickets by it; no template can remove it). The
/// editor shows the key line itself (`id_prefix` set); a section page's preview only says it
/// follows, so the section pages stay free of internal spellings.
pub(crate) fn sample_ticket(title: &str, description: &str, id_prefix: Option<&str>) -> Markup {
    let key_start = description
        .rfind(ticketing_core::ticket::KEY_LINE_PREFIX)
        .filter(|i| *i == 0 || description[..*i].ends_with('\n'));
    let (body, key) = match key_start {
        Some(i) => (description[..i].trim_end(), Some(&description[i..])),
        None => (description, None),
    };
    let id = |what: &str| id_prefix.map(|p| format!("{p}-{what}"));
    html! {
        dl.ticket {
            dt { "Title" }
            dd.ticket-title id=[id("title")] { (title) }
            dt { "Description" }
            dd { pre.ticket-description id=[id("description")] { (body) } }
            @if let Some(key) = key {
                dt { "Key line, always added last" }
                dd {
                    @if id_prefix.is_some() {
                        code.key-line id=[id("key")] { (key) }
                    }
                    span.sub { "The integration finds its own tickets by this line; no template can remove it." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_labels_are_escaped_in_drop_downs() {
        let mut c = Catalog::example();
        c.queues.push(ticketing_core::catalog::PicklistValue::new(99, "<b>Evil\" queue</b>"));
        let html = picklist_select(Some(&c), Field::Queue, "q", "q", "Queue", false, Some("<b>Evil\" queue</b>"), None)
            .into_string();
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;b&gt;Evil&quot; queue&lt;/b&gt;"));
    }

    #[test]
    fn a_label_the_psa_lost_shows_blank() {
        let mut c = Catalog::example();
        c.priorities.retain(|p| p.label != "Critical");
        assert_eq!(shown(Some(&c), Field::Priority, Some("Critical")), None);
        assert_eq!(shown(Some(&c), Field::Priority, Some("medium")).as_deref(), Some("Medium"));
        let html = picklist_select(Some(&c), Field::Priority, "p", "p", "Priority", true, None, None).into_string();
        assert!(html.contains(r#"<option value="" selected>(blank)</option>"#));
    }

    #[test]
    fn a_problem_marks_its_control() {
        let html = picklist_select(None, Field::Queue, "q", "q", "Queue", true, None, Some("problem-3")).into_string();
        assert!(html.contains(r#"<label for="q" class="vh">Queue</label>"#), "{html}");
        assert!(html.contains(r#"data-inline aria-invalid="true" aria-describedby="problem-3""#), "{html}");
    }
}
