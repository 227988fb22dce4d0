//! HTML for the Ticketing tab, built as strings. Every value that comes from data (labels from
//! the PSA, rule values, messages) goes through [`esc`].

use std::fmt::Write as _;

use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::edit::RuleBook;
use ticketing_core::model::{Product, StatusLevel};
use ticketing_core::rules::{Problem, RowId, Rule, Section, ValidationError};

use super::psa::PsaStatus;
use super::session::Flash;
use crate::rules_ops::Preview;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

/// What is wrong with a field, in words, without naming the row.
fn problem_words(e: &ValidationError, labels: crate::backends::Labels) -> String {
    let f = labels(e.field);
    match &e.problem {
        Problem::Blank => format!("{f} is blank, but it is required"),
        Problem::NotInPsa { label } => {
            format!("{f} \u{201c}{label}\u{201d} is no longer in the PSA (shown blank): pick another value")
        }
        Problem::NotOfIssueType => format!("{f} does not belong to the chosen issue type"),
        Problem::OutOfRange { min, max } => format!("{f} must be between {min} and {max}"),
        Problem::NotApplicable => format!("{f} does not apply here"),
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
fn row_noun(row: &RowId) -> &'static str {
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
        other => other.replace('_', " "),
    }
}

fn labels(catalog: Option<&Catalog>, field: Field) -> Vec<String> {
    catalog
        .and_then(|c| c.list(field))
        .map(|l| l.iter().filter(|v| v.active).map(|v| v.label.clone()).collect())
        .unwrap_or_default()
}

/// Attributes marking a control whose value has a problem: `aria-invalid` and a reference to
/// the problem's text in the list above the table.
fn invalid_attrs(problem_id: Option<&str>) -> String {
    problem_id.map(|p| format!(r#" aria-invalid="true" aria-describedby="{}""#, esc(p))).unwrap_or_default()
}

/// A labelled drop-down of a picklist: a blank option, then the PSA's active values (plus
/// the current value when there is no catalog to check it against).
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
) -> String {
    let mut opts = labels(catalog, field);
    if let Some(c) = current {
        if !opts.iter().any(|o| o == c) {
            opts.push(c.to_owned());
        }
    }
    let mut out = format!(
        r#"<label for="{id}"{cls}>{label}</label><select id="{id}" name="{name}" data-inline{inv}><option value=""{sel}>(blank)</option>"#,
        id = esc(id),
        cls = if label_hidden { r#" class="vh""# } else { "" },
        label = esc(label),
        name = esc(name),
        inv = invalid_attrs(problem_id),
        sel = if current.is_none() { " selected" } else { "" },
    );
    for o in opts {
        let sel = if Some(o.as_str()) == current { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{v}"{sel}>{v}</option>"#, v = esc(&o));
    }
    out.push_str("</select>");
    out
}

/// A drop-down of the Edit window: keep (default), clear, or a value.
fn bulk_select(catalog: Option<&Catalog>, field: Field, name: &str, names: crate::backends::Labels) -> String {
    let mut out = format!(
        r#"<div class="field"><label for="{name}">{label}</label><select id="{name}" name="{name}"{extra}><option value="" selected>(keep as is)</option><option value="!clear">(blank)</option>"#,
        name = esc(name),
        label = esc(names(field)),
        extra = if field == Field::IssueType { r#" data-issue-select="b_sub_issue_type""# } else { "" },
    );
    if field == Field::SubIssueType {
        if let Some(c) = catalog {
            for it in c.issue_types.iter().filter(|v| v.active) {
                let _ = write!(out, r#"<optgroup label="{}">"#, esc(&it.label));
                for s in c.sub_issue_types_of(it.id) {
                    let _ = write!(
                        out,
                        r#"<option value="={v}" data-parent="{p}">{v}</option>"#,
                        v = esc(&s.label),
                        p = esc(&it.label)
                    );
                }
                out.push_str("</optgroup>");
            }
        }
    } else {
        for o in labels(catalog, field) {
            let _ = write!(out, r#"<option value="={v}">{v}</option>"#, v = esc(&o));
        }
    }
    out.push_str("</select></div>");
    out
}

/// What every page's frame needs.
pub(crate) struct Frame<'a> {
    /// The page's title.
    pub(crate) title: &'a str,
    /// The current section (for the navigation), if any.
    pub(crate) current: Option<Section>,
    /// Sections with unsaved changes.
    pub(crate) dirty: &'a [Section],
    /// The session's CSRF token (None on the login page).
    pub(crate) csrf: Option<&'a str>,
    /// Messages to show once.
    pub(crate) flash: &'a [Flash],
}

fn nav_link(frame: &Frame<'_>, s: Section, text: &str) -> String {
    let cur = if Some(s) == frame.current { r#" aria-current="page""# } else { "" };
    let dirty =
        if frame.dirty.contains(&s) { r#" <span class="dirty" title="unsaved changes">(unsaved)</span>"# } else { "" };
    format!(r#"<li><a href="{}"{cur}>{}</a>{dirty}</li>"#, esc(&section_href(s)), esc(text))
}

/// The left pane: General, then each product with its sections, as the guide groups them.
fn nav(frame: &Frame<'_>) -> String {
    let mut out = String::from(r#"<nav id="nav" aria-label="Ticketing sections"><ul class="tree">"#);
    out.push_str(&nav_link(frame, Section::General, "General"));
    for p in Product::ALL {
        let _ = write!(out, r#"<li class="product"><span class="product-name">{}</span><ul>"#, esc(p.display_name()));
        out.push_str(&nav_link(frame, Section::Events(p), "Events"));
        if p.has_statuses() {
            out.push_str(r#"<li><span class="group-name">Computer status</span><ul>"#);
            for l in [StatusLevel::Critical, StatusLevel::Warning] {
                out.push_str(&nav_link(frame, Section::Statuses(p, l), &l.to_string()));
            }
            out.push_str("</ul></li>");
        }
        out.push_str("</ul></li>");
    }
    out.push_str("</ul></nav>");
    out
}

/// Wraps a page body in the document, header, navigation and messages.
pub(crate) fn page(frame: &Frame<'_>, body: &str) -> String {
    let mut out = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Ticketing · msp-ticketd</title><link rel="stylesheet" href="/ui/assets/ui.css"><noscript><link rel="stylesheet" href="/ui/assets/nojs.css"></noscript><script src="/ui/assets/ui.js" defer></script></head>
<body><header class="top">"#,
        title = esc(frame.title)
    );
    if frame.csrf.is_some() {
        out.push_str(r#"<button type="button" id="nav-toggle" class="nav-toggle" aria-controls="nav" aria-expanded="false">Sections</button>"#);
    }
    out.push_str(r#"<span class="brand">msp-ticketd · Ticketing</span>"#);
    if let Some(csrf) = frame.csrf {
        let _ = write!(
            out,
            r#"<form method="post" action="/ui/logout" class="logout" data-leaves><input type="hidden" name="csrf" value="{}"><button type="submit">Log out</button></form>"#,
            esc(csrf)
        );
    }
    out.push_str("</header><div class=\"layout\">");
    if frame.csrf.is_some() {
        out.push_str(&nav(frame));
    }
    out.push_str(r#"<main id="main">"#);
    for f in frame.flash {
        let role = if f.kind == "error" { "alert" } else { "status" };
        let _ = write!(
            out,
            r#"<div class="flash {kind}" role="{role}" id="flash-{kind}"><p>{}</p>"#,
            esc(&f.text),
            kind = f.kind
        );
        if !f.details.is_empty() {
            out.push_str("<ul>");
            for d in &f.details {
                let _ = write!(out, "<li>{}</li>", esc(d));
            }
            out.push_str("</ul>");
        }
        out.push_str("</div>");
    }
    out.push_str(body);
    out.push_str("</main></div></body></html>\n");
    out
}

/// The login form.
pub(crate) fn login(error: Option<&str>) -> String {
    let err =
        error.map(|e| format!(r#"<div class="flash error" role="alert"><p>{}</p></div>"#, esc(e))).unwrap_or_default();
    let body = format!(
        r#"<h1>Log in</h1>{err}<form method="post" action="/ui/login" class="login">
<p><label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus></p>
<p><button type="submit">Log in</button></p></form><p class="hint">Use the admin API's bearer token (<code>admin.token</code> in the configuration).</p>"#
    );
    page(&Frame { title: "Log in", current: None, dirty: &[], csrf: None, flash: &[] }, &body)
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
}

/// The hidden fields every form of a section page carries.
pub(crate) fn hidden(csrf: &str, section: Section, revision: u64) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}"><input type="hidden" name="section" value="{}"><input type="hidden" name="revision" value="{revision}">"#,
        esc(csrf),
        esc(&section.to_string())
    )
}

/// The banner shown while the PSA does not answer or the catalog may be outdated.
pub(crate) fn psa_banner(psa: &PsaStatus, has_catalog: bool) -> String {
    let Some(text) = psa.problem(has_catalog) else { return String::new() };
    format!(
        r#"<div class="banner error" role="alert" id="psa-banner"><p><strong>{}</strong></p><p>{}</p></div>"#,
        esc(&text.0),
        esc(&text.1)
    )
}

fn problem_id(i: usize) -> String {
    format!("problem-{i}")
}

/// The body of a section page.
pub(crate) fn section_body(v: &SectionView<'_>) -> String {
    let s = v.section;
    let dirty = v.book.is_dirty(s);
    let mut out = psa_banner(v.psa, v.catalog.is_some());
    let _ = write!(
        out,
        r#"<h1 id="section-title">{}</h1><p class="state" id="section-state">{}</p>"#,
        esc(&s.title()),
        if dirty { "The draft has unsaved changes." } else { "The draft equals the saved rules." }
    );
    if !v.problems.is_empty() {
        let _ = write!(
            out,
            r#"<section class="problems" aria-labelledby="problems-h" id="problems"><h2 id="problems-h">{} (Save changes is refused until {} fixed)</h2><ul>"#,
            if v.problems.len() == 1 { "1 problem".to_owned() } else { format!("{} problems", v.problems.len()) },
            if v.problems.len() == 1 { "it is" } else { "they are" },
        );
        for (i, p) in v.problems.iter().enumerate() {
            let _ = write!(out, r#"<li id="{}">{}</li>"#, problem_id(i), esc(&problem_text(p, v.labels)));
        }
        out.push_str("</ul></section>");
    }
    // Forms that the action buttons below submit: cancel and reset discard edits, so they carry
    // nothing but the section.
    let _ = write!(
        out,
        r#"<form id="cancel-form" method="post" action="/ui/cancel" data-discards>{h}</form><form id="reset-form" method="post" action="/ui/reset" data-discards>{h}</form>"#,
        h = hidden(v.csrf, s, v.revision)
    );
    // The form's own action is Save changes: the page's edits go into the draft and the
    // section is saved, in one request (Enter in a field does the same).
    let _ = write!(out, r#"<form id="rules-form" method="post" action="/ui/save">{}"#, hidden(v.csrf, s, v.revision));
    if s == Section::General {
        out.push_str(&general_fields(v));
    } else {
        out.push_str(&toolbar(v));
        out.push_str(&rule_table(v));
    }
    out.push_str(
        r#"<div class="actions" id="actions"><button type="submit" id="save" class="primary">Save changes</button>
<button type="submit" id="cancel" form="cancel-form">Cancel changes</button>
<button type="submit" id="reset" form="reset-form" class="link">Reset to defaults</button><span class="hint" id="edits-hint">Save changes saves the edits on this page too.</span></div>"#,
    );
    if s != Section::General {
        out.push_str(&edit_window(v));
    }
    out.push_str("</form>");
    out.push_str(&preview_box(v));
    out
}

fn general_fields(v: &SectionView<'_>) -> String {
    let g = &v.book.draft.general;
    let mut out = String::from(r#"<div class="general">"#);
    for (field, value, hint) in [
        (Field::TicketSource, &g.ticket_source, "Optional."),
        (Field::NewStatus, &g.new_status, "Required; by default New."),
        (Field::ClosedStatus, &g.closed_status, "Required; by default Complete."),
    ] {
        let bad = v.problems.iter().position(|p| p.row.is_none() && p.field == field).map(problem_id);
        let _ = write!(out, r#"<div class="field{}">"#, if bad.is_none() { "" } else { " bad" });
        out.push_str(&picklist_select(
            v.catalog,
            field,
            &format!("general.{}", field.name()),
            field.name(),
            (v.labels)(field),
            false,
            shown(v.catalog, field, value.as_deref()).as_deref(),
            bad.as_deref(),
        ));
        let _ = write!(out, r#" <span class="hint">{}</span></div>"#, esc(hint));
    }
    out.push_str("</div>");
    out
}

fn has_lifetime(section: Section) -> bool {
    section.rows().first().is_some_and(|r| r.default_rule().lifetime_days.is_some())
}

/// The Edit window's title, as the guide names it.
pub(crate) fn edit_title(section: Section) -> &'static str {
    match section {
        Section::Statuses(..) => "Ticketing settings for computer status change",
        _ => "Ticketing settings for events",
    }
}

/// Above the table: the Edit button (enabled once rows are selected) and the selection count.
fn toolbar(_v: &SectionView<'_>) -> String {
    String::from(
        r#"<div class="toolbar" id="toolbar"><button type="button" id="edit-open" aria-haspopup="dialog" aria-controls="edit-dialog" disabled>Edit</button> <span id="selected-count" class="hint" aria-live="polite">No rows selected: tick rows, then Edit changes them all at once.</span></div>"#,
    )
}

fn rule_table(v: &SectionView<'_>) -> String {
    let s = v.section;
    let lifetime = has_lifetime(s);
    let what = match s {
        Section::Events(Product::Office365) => "Event type",
        Section::Events(_) => "Event severity",
        _ => "Status description",
    };
    let mut out = format!(
        r#"<div class="table-wrap"><table class="rules" id="rules-table"><caption class="vh">{}</caption><thead><tr><th scope="col" class="c-select"><label class="vh" for="select-all">Select all rows</label><input type="checkbox" id="select-all" data-select-all></th><th scope="col">{what}</th><th scope="col">Create ticket</th>{lt}<th scope="col">{queue}</th><th scope="col">{priority}</th><th scope="col">{due}</th><th scope="col" id="details-h">{work} / {issue} / {sub}</th></tr></thead><tbody>"#,
        esc(&s.title()),
        lt = if lifetime { r#"<th scope="col">Lifetime, days</th>"# } else { "" },
        queue = esc((v.labels)(Field::Queue)),
        priority = esc((v.labels)(Field::Priority)),
        due = esc((v.labels)(Field::DueHours)),
        work = esc((v.labels)(Field::WorkType)),
        issue = esc((v.labels)(Field::IssueType)),
        sub = esc((v.labels)(Field::SubIssueType)),
    );
    for row in s.rows() {
        let rule = v.book.draft.rule(&row).cloned().unwrap_or_else(|| row.default_rule());
        out.push_str(&rule_row(v, &row, &rule, lifetime, what));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn rule_row(v: &SectionView<'_>, row: &RowId, rule: &Rule, lifetime: bool, what: &str) -> String {
    let label = row.label();
    let r = row.to_string();
    let problem_of =
        |field: Field| v.problems.iter().position(|p| p.row.as_ref() == Some(row) && p.field == field).map(problem_id);
    let bad = v.problems.iter().any(|p| p.row.as_ref() == Some(row));
    let mut out = format!(
        r#"<tr id="{rid}" data-row="{r}"{cls}><td class="c-select"><input type="hidden" name="row" value="{r}"><label class="vh" for="{sid}">Select {l}</label><input type="checkbox" name="select" value="{r}" id="{sid}" data-label="{l}"></td><th scope="row" data-label="{what}">{l}</th>"#,
        rid = esc(&dom_id("row", row)),
        r = esc(&r),
        cls = if bad { r#" class="bad""# } else { "" },
        sid = esc(&dom_id("select", row)),
        l = esc(&label),
        what = esc(what),
    );
    let _ = write!(
        out,
        r#"<td data-label="Create ticket"><label class="toggle"><input type="checkbox" name="enabled.{r}" id="{id}" value="on" data-inline{c}><span class="vh">Create ticket for {l}</span></label></td>"#,
        r = esc(&r),
        id = esc(&dom_id("enabled", row)),
        c = if rule.enabled { " checked" } else { "" },
        l = esc(&label),
    );
    if lifetime {
        let _ = write!(
            out,
            r#"<td data-label="Lifetime, days"><label class="vh" for="{id}">Lifetime in days for {l}</label><input type="number" min="1" max="365" name="lifetime.{r}" id="{id}" value="{val}" data-inline{inv}></td>"#,
            id = esc(&dom_id("lifetime", row)),
            l = esc(&label),
            r = esc(&r),
            val = rule.lifetime_days.map(|d| d.to_string()).unwrap_or_default(),
            inv = invalid_attrs(problem_of(Field::Lifetime).as_deref()),
        );
    }
    for field in [Field::Queue, Field::Priority] {
        let value = if field == Field::Queue { &rule.queue } else { &rule.priority };
        let _ = write!(out, r#"<td data-label="{}">"#, (v.labels)(field));
        out.push_str(&picklist_select(
            v.catalog,
            field,
            &format!("{}.{r}", field.name()),
            &dom_id(field.name(), row),
            &format!("{} for {label}", (v.labels)(field)),
            true,
            shown(v.catalog, field, value.as_deref()).as_deref(),
            problem_of(field).as_deref(),
        ));
        out.push_str("</td>");
    }
    let _ = write!(
        out,
        r#"<td data-label="Due, hours"><label class="vh" for="{id}">Due in hours for {l}</label><input type="number" min="1" max="8760" name="due.{r}" id="{id}" value="{val}" data-inline{inv}></td>"#,
        id = esc(&dom_id("due", row)),
        l = esc(&label),
        r = esc(&r),
        val = rule.due_hours,
        inv = invalid_attrs(problem_of(Field::DueHours).as_deref()),
    );
    let details: Vec<String> = [
        (Field::WorkType, &rule.work_type),
        (Field::IssueType, &rule.issue_type),
        (Field::SubIssueType, &rule.sub_issue_type),
    ]
    .into_iter()
    .map(|(f, val)| {
        let text = shown(v.catalog, f, val.as_deref()).unwrap_or_else(|| "\u{2014}".to_owned());
        match problem_of(f) {
            Some(p) => format!(r#"<span class="bad-value" aria-describedby="{}">{}</span>"#, esc(&p), esc(&text)),
            None => esc(&text),
        }
    })
    .collect();
    let _ = write!(
        out,
        r#"<td class="details" data-label="Work type / Issue type / Issue subtype" id="{}">{}</td></tr>"#,
        esc(&dom_id("details", row)),
        details.join(" / ")
    );
    out
}

/// The Edit window: a native modal `<dialog>` opened by the Edit button above the table. Its
/// fields belong to the section's form, so "Apply" posts them with the selected rows (and the
/// page's inline edits). Without JavaScript (`nojs.css`) the same fields show under the table.
fn edit_window(v: &SectionView<'_>) -> String {
    let title = edit_title(v.section);
    let mut out = format!(
        r#"<dialog class="edit-window" id="edit-dialog" aria-labelledby="edit-title"><h2 id="edit-title">{t}</h2><p id="edit-count" class="count">Applies to the rows ticked in the table.</p><p class="hint">Fields left at “(keep as is)” do not change.</p><div class="fields">
<div class="field"><label for="b_enabled">On / Off</label><select id="b_enabled" name="b_enabled"><option value="" selected>(keep as is)</option><option value="on">On</option><option value="off">Off</option></select></div>"#,
        t = esc(title)
    );
    if has_lifetime(v.section) {
        out.push_str(r#"<div class="field"><label for="b_lifetime">Lifetime, days</label><input type="number" min="1" max="365" id="b_lifetime" name="b_lifetime" placeholder="keep as is"></div>"#);
    }
    out.push_str(&bulk_select(v.catalog, Field::Queue, "b_queue", v.labels));
    out.push_str(&bulk_select(v.catalog, Field::Priority, "b_priority", v.labels));
    out.push_str(r#"<div class="field"><label for="b_due">Due, hours</label><input type="number" min="1" max="8760" id="b_due" name="b_due" placeholder="keep as is"></div>"#);
    out.push_str(&bulk_select(v.catalog, Field::WorkType, "b_work_type", v.labels));
    out.push_str(&bulk_select(v.catalog, Field::IssueType, "b_issue_type", v.labels));
    out.push_str(&bulk_select(v.catalog, Field::SubIssueType, "b_sub_issue_type", v.labels));
    out.push_str(r#"</div><p class="dialog-actions"><button type="submit" id="bulk-apply" class="primary" formaction="/ui/bulk-edit">Apply to selected rows</button> <button type="button" id="edit-close">Close</button></p><p class="hint">Apply puts the values into the draft; Save changes then saves them.</p></dialog>"#);
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn preview_box(v: &SectionView<'_>) -> String {
    let mut out = String::from(r#"<section class="preview" aria-labelledby="preview-h" id="preview">"#);
    match v.section {
        Section::General => {}
        Section::Statuses(p, l) => {
            out.push_str(&status_preview(v, p, l));
            out.push_str("</section>");
            return out;
        }
        Section::Events(_) => {}
    }
    out.push_str(r#"<h2 id="preview-h">Preview the draft</h2>"#);
    let days = v.preview.as_ref().map(|(p, _)| p.days).unwrap_or(7);
    let _ = write!(
        out,
        r#"<form method="get" action="/ui/section" id="preview-form" data-leaves><input type="hidden" name="s" value="{}"><label for="days">What would this draft have ticketed over the last</label> <input type="number" min="1" max="365" id="days" name="days" value="{days}"> days? <button type="submit" id="preview-run">Preview</button></form>"#,
        esc(&v.section.to_string())
    );
    match &v.preview {
        Err(e) => {
            let _ = write!(out, r#"<p id="preview-result">{}</p>"#, esc(e));
        }
        Ok((draft, saved)) => {
            let _ = write!(
                out,
                r#"<p id="preview-result">Over the last {d}, {e} seen (all products); this draft would have created <strong id="preview-count">{n}</strong> ticket(s){s}.</p>"#,
                d = plural(draft.days as usize, "day", "days"),
                e = plural(draft.events, "event was", "events were"),
                n = draft.would_create,
                s = saved.as_ref().map(|p| format!(" (the saved rules: {})", p.would_create)).unwrap_or_default(),
            );
            if !draft.by_row.is_empty() {
                out.push_str(r#"<table class="small" id="preview-rows"><caption>Tickets per row</caption><thead><tr><th scope="col">Row</th><th scope="col">Tickets</th></tr></thead><tbody>"#);
                for (row, n) in &draft.by_row {
                    let name = row
                        .parse::<RowId>()
                        .map(|r| format!("{}: {}", r.section().title(), r.label()))
                        .unwrap_or_else(|_| "another row".to_owned());
                    let _ = write!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(&name));
                }
                out.push_str("</tbody></table>");
            }
            if !draft.skipped.is_empty() {
                out.push_str(r#"<p>Not ticketed:</p><ul id="preview-skipped">"#);
                for (reason, n) in &draft.skipped {
                    let _ = write!(out, "<li>{}: {}</li>", plural(*n, "event", "events"), esc(&skip_words(reason)));
                }
                out.push_str("</ul>");
            }
        }
    }
    out
}

/// A status page's preview counts status descriptions, not events: how many of this level's
/// descriptions the draft (and the saved rules) ticket, and, from the ledger, the computers
/// with an open ticket per description. The latest status snapshots themselves are not kept
/// where the UI can read them, and the page says so.
fn status_preview(v: &SectionView<'_>, product: Product, level: StatusLevel) -> String {
    let rows = v.section.rows();
    let on = |set: &ticketing_core::rules::RuleSet| {
        rows.iter().filter(|r| set.rule(r).cloned().unwrap_or_else(|| r.default_rule()).enabled).count()
    };
    let (draft_on, saved_on) = (on(&v.book.draft), on(&v.book.saved));
    let mut out = format!(
        r#"<h2 id="preview-h">Preview the draft</h2><p id="preview-result">This draft creates tickets for <strong id="preview-count">{draft_on}</strong> of the {total} status descriptions when a computer's status changes to {level} (the saved rules: {saved_on}).</p>"#,
        total = rows.len(),
    );
    let _ = write!(
        out,
        r#"<p class="hint" id="preview-limits">How many computers each description would ticket cannot be previewed here: the latest status snapshots of {} are not kept where this page can read them. Below are the status tickets the integration owns now, from its ledger (it does not record the status level).</p>"#,
        esc(product.display_name())
    );
    match &v.status {
        Err(e) => {
            let _ = write!(out, r#"<p id="preview-ledger">{}</p>"#, esc(e));
        }
        Ok(c) if c.open_by_description.is_empty() => {
            out.push_str(r#"<p id="preview-ledger">No computer has an open status ticket now.</p>"#);
        }
        Ok(c) => {
            out.push_str(r#"<table class="small" id="preview-ledger"><caption>Computers with an open ticket, per status description</caption><thead><tr><th scope="col">Status description</th><th scope="col">Computers</th></tr></thead><tbody>"#);
            for (d, n) in &c.open_by_description {
                let _ = write!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(d));
            }
            out.push_str("</tbody></table>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn catalog_labels_are_escaped_in_drop_downs() {
        let mut c = Catalog::example();
        c.queues.push(ticketing_core::catalog::PicklistValue::new(99, "<b>Evil\" queue</b>"));
        let html = picklist_select(Some(&c), Field::Queue, "q", "q", "Queue", false, Some("<b>Evil\" queue</b>"), None);
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;b&gt;Evil&quot; queue&lt;/b&gt;"));
    }

    #[test]
    fn a_label_the_psa_lost_shows_blank() {
        let mut c = Catalog::example();
        c.priorities.retain(|p| p.label != "Critical");
        assert_eq!(shown(Some(&c), Field::Priority, Some("Critical")), None);
        assert_eq!(shown(Some(&c), Field::Priority, Some("medium")).as_deref(), Some("Medium"));
        let html = picklist_select(Some(&c), Field::Priority, "p", "p", "Priority", true, None, None);
        assert!(html.contains(r#"<option value="" selected>(blank)</option>"#));
    }
}
