//! HTML for the Ticketing tab, built as strings. Every value that comes from data (labels from
//! the PSA, rule values, messages) goes through [`esc`].

use std::fmt::Write as _;

use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::edit::RuleBook;
use ticketing_core::rules::{Problem, RowId, Rule, Section, ValidationError};

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

fn field_title(field: Field) -> &'static str {
    match field {
        Field::TicketSource => "Ticket source",
        Field::NewStatus => "New ticket status",
        Field::ClosedStatus => "Closed ticket status",
        Field::Queue => "Queue",
        Field::Priority => "Priority",
        Field::WorkType => "Work type",
        Field::IssueType => "Issue type",
        Field::SubIssueType => "Sub-issue type",
        Field::Lifetime => "Lifetime",
        Field::DueHours => "Due, hours",
    }
}

/// A problem in words, for next to its row (the row is already visible).
fn problem_short(e: &ValidationError) -> String {
    let f = field_title(e.field);
    match &e.problem {
        Problem::Blank => format!("{f} is blank but required"),
        Problem::NotInPsa { label } => format!("{f} \u{201c}{label}\u{201d} is no longer in the PSA (shown blank)"),
        Problem::NotOfIssueType => format!("{f} does not belong to the issue type"),
        Problem::OutOfRange { min, max } => format!("{f} must be between {min} and {max}"),
        Problem::NotApplicable => format!("{f} does not apply here"),
    }
}

fn labels(catalog: Option<&Catalog>, field: Field) -> Vec<String> {
    catalog
        .and_then(|c| c.list(field))
        .map(|l| l.iter().filter(|v| v.active).map(|v| v.label.clone()).collect())
        .unwrap_or_default()
}

/// A labelled drop-down of a picklist: a blank option, then the PSA's active values (plus
/// the current value when there is no catalog to check it against).
fn picklist_select(
    catalog: Option<&Catalog>,
    field: Field,
    name: &str,
    id: &str,
    label: &str,
    label_hidden: bool,
    current: Option<&str>,
) -> String {
    let mut opts = labels(catalog, field);
    if let Some(c) = current {
        if !opts.iter().any(|o| o == c) {
            opts.push(c.to_owned());
        }
    }
    let mut out = format!(
        r#"<label for="{id}"{cls}>{label}</label><select id="{id}" name="{name}"><option value=""{sel}>(blank)</option>"#,
        id = esc(id),
        cls = if label_hidden { r#" class="vh""# } else { "" },
        label = esc(label),
        name = esc(name),
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
fn bulk_select(catalog: Option<&Catalog>, field: Field, name: &str, label: &str) -> String {
    let mut out = format!(
        r#"<div class="field"><label for="{name}">{label}</label><select id="{name}" name="{name}"{extra}><option value="" selected>(keep as is)</option><option value="!clear">(blank)</option>"#,
        name = esc(name),
        label = esc(label),
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

/// Wraps a page body in the document, header, navigation and messages.
pub(crate) fn page(frame: &Frame<'_>, body: &str) -> String {
    let mut out = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Ticketing · msp-ticketd</title><link rel="stylesheet" href="/ui/assets/ui.css"><script src="/ui/assets/ui.js" defer></script></head>
<body><header class="top"><span class="brand">msp-ticketd · Ticketing</span>"#,
        title = esc(frame.title)
    );
    if let Some(csrf) = frame.csrf {
        let _ = write!(
            out,
            r#"<form method="post" action="/ui/logout" class="logout"><input type="hidden" name="csrf" value="{}"><button type="submit">Log out</button></form>"#,
            esc(csrf)
        );
    }
    out.push_str("</header><div class=\"layout\">");
    if frame.csrf.is_some() {
        out.push_str(r#"<nav aria-label="Ticketing sections"><ul>"#);
        for s in Section::all() {
            let cur = if Some(s) == frame.current { r#" aria-current="page""# } else { "" };
            let dirty = if frame.dirty.contains(&s) {
                r#" <span class="dirty" title="unsaved changes">(unsaved)</span>"#
            } else {
                ""
            };
            let _ = write!(out, r#"<li><a href="{}"{cur}>{}</a>{dirty}</li>"#, esc(&section_href(s)), esc(&s.title()));
        }
        out.push_str("</ul></nav>");
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
    /// The draft's problems in this section.
    pub(crate) problems: &'a [ValidationError],
    /// Preview of the draft (and of the saved rules), or why there is none.
    pub(crate) preview: Result<(Preview, Option<Preview>), String>,
}

fn hidden(csrf: &str, section: Section, revision: u64) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}"><input type="hidden" name="section" value="{}"><input type="hidden" name="revision" value="{revision}">"#,
        esc(csrf),
        esc(&section.to_string())
    )
}

/// The body of a section page.
pub(crate) fn section_body(v: &SectionView<'_>) -> String {
    let s = v.section;
    let dirty = v.book.is_dirty(s);
    let mut out = format!(
        r#"<h1 id="section-title">{}</h1><p class="state" id="section-state">{}</p>"#,
        esc(&s.title()),
        if dirty { "The draft has unsaved changes." } else { "The draft equals the saved rules." }
    );
    if v.catalog.is_none() {
        out.push_str(r#"<div class="flash error" role="status"><p>The PSA catalog has not been read yet: drop-downs show the stored values, and saving waits for it.</p></div>"#);
    }
    if !v.problems.is_empty() {
        out.push_str(r#"<section class="problems" aria-labelledby="problems-h" id="problems"><h2 id="problems-h">Problems in this draft (Save changes is refused until they are fixed)</h2><ul>"#);
        for p in v.problems {
            let _ = write!(out, "<li>{}</li>", esc(&p.to_string()));
        }
        out.push_str("</ul></section>");
    }
    // Forms that the action buttons below submit: cancel and reset discard edits, so they carry
    // nothing but the section.
    let _ = write!(
        out,
        r#"<form id="cancel-form" method="post" action="/ui/cancel">{h}</form><form id="reset-form" method="post" action="/ui/reset">{h}</form>"#,
        h = hidden(v.csrf, s, v.revision)
    );
    let _ = write!(
        out,
        r#"<form id="rules-form" method="post" action="{}">{}"#,
        if s == Section::General { "/ui/general" } else { "/ui/rows" },
        hidden(v.csrf, s, v.revision)
    );
    if s == Section::General {
        out.push_str(&general_fields(v));
    } else {
        out.push_str(&rule_table(v));
        out.push_str(&edit_window(v));
    }
    let _ = write!(
        out,
        r#"<div class="actions"><button type="submit" id="apply" formaction="{apply}">Apply edits to draft</button>
<button type="submit" id="save" class="primary" formaction="/ui/save">Save changes</button>
<button type="submit" id="cancel" form="cancel-form">Cancel changes</button>
<button type="submit" id="reset" form="reset-form" class="link">Reset to defaults</button></div></form>"#,
        apply = if s == Section::General { "/ui/general" } else { "/ui/rows" }
    );
    out.push_str(&preview_box(v));
    out
}

fn general_fields(v: &SectionView<'_>) -> String {
    let g = &v.book.draft.general;
    let mut out = String::from(r#"<div class="general">"#);
    for (field, value, hint) in [
        (Field::TicketSource, &g.ticket_source, "Optional."),
        (Field::NewStatus, &g.new_status, "Required; the guide's default is New."),
        (Field::ClosedStatus, &g.closed_status, "Required; the guide's default is Complete."),
    ] {
        let bad: Vec<&ValidationError> = v.problems.iter().filter(|p| p.field == field).collect();
        let _ = write!(out, r#"<div class="field{}">"#, if bad.is_empty() { "" } else { " bad" });
        out.push_str(&picklist_select(
            v.catalog,
            field,
            &format!("general.{}", field.name()),
            field.name(),
            field_title(field),
            false,
            shown(v.catalog, field, value.as_deref()).as_deref(),
        ));
        let _ = write!(out, r#" <span class="hint">{}</span>"#, esc(hint));
        for p in bad {
            let _ = write!(out, r#" <span class="problem">{}</span>"#, esc(&problem_short(p)));
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
    out
}

fn has_lifetime(section: Section) -> bool {
    section.rows().first().is_some_and(|r| r.default_rule().lifetime_days.is_some())
}

fn rule_table(v: &SectionView<'_>) -> String {
    let s = v.section;
    let lifetime = has_lifetime(s);
    let what = match s {
        Section::Events(ticketing_core::model::Product::Office365) => "Event",
        Section::Events(_) => "Event severity",
        _ => "Status description",
    };
    let mut out = format!(
        r#"<table class="rules" id="rules-table"><caption>{}</caption><thead><tr><th scope="col"><label class="vh" for="select-all">Select all rows</label><input type="checkbox" id="select-all" data-select-all></th><th scope="col">{what}</th><th scope="col">Create ticket</th>{lt}<th scope="col">Queue</th><th scope="col">Priority</th><th scope="col">Due, hours</th><th scope="col">Work type / issue type / sub-issue type</th><th scope="col">Problems</th></tr></thead><tbody>"#,
        esc(&s.title()),
        lt = if lifetime { r#"<th scope="col">Lifetime, days</th>"# } else { "" },
    );
    for row in s.rows() {
        let rule = v.book.draft.rule(&row).cloned().unwrap_or_else(|| row.default_rule());
        out.push_str(&rule_row(v, &row, &rule, lifetime));
    }
    out.push_str("</tbody></table>");
    out
}

fn rule_row(v: &SectionView<'_>, row: &RowId, rule: &Rule, lifetime: bool) -> String {
    let label = row.label();
    let r = row.to_string();
    let problems: Vec<&ValidationError> = v.problems.iter().filter(|p| p.row.as_ref() == Some(row)).collect();
    let mut out = format!(
        r#"<tr id="{rid}" data-row="{r}"{cls}><td><input type="hidden" name="row" value="{r}"><label class="vh" for="{sid}">Select {l}</label><input type="checkbox" name="select" value="{r}" id="{sid}"></td><th scope="row">{l}</th>"#,
        rid = esc(&dom_id("row", row)),
        r = esc(&r),
        cls = if problems.is_empty() { "" } else { r#" class="bad""# },
        sid = esc(&dom_id("select", row)),
        l = esc(&label),
    );
    let _ = write!(
        out,
        r#"<td><label class="toggle"><input type="checkbox" name="enabled.{r}" id="{id}" value="on"{c}><span class="vh">Create ticket for {l}</span></label></td>"#,
        r = esc(&r),
        id = esc(&dom_id("enabled", row)),
        c = if rule.enabled { " checked" } else { "" },
        l = esc(&label),
    );
    if lifetime {
        let _ = write!(
            out,
            r#"<td><label class="vh" for="{id}">Lifetime in days for {l}</label><input type="number" min="1" max="365" name="lifetime.{r}" id="{id}" value="{val}"></td>"#,
            id = esc(&dom_id("lifetime", row)),
            l = esc(&label),
            r = esc(&r),
            val = rule.lifetime_days.map(|d| d.to_string()).unwrap_or_default(),
        );
    }
    for field in [Field::Queue, Field::Priority] {
        let value = if field == Field::Queue { &rule.queue } else { &rule.priority };
        out.push_str("<td>");
        out.push_str(&picklist_select(
            v.catalog,
            field,
            &format!("{}.{r}", field.name()),
            &dom_id(field.name(), row),
            &format!("{} for {label}", field_title(field)),
            true,
            shown(v.catalog, field, value.as_deref()).as_deref(),
        ));
        out.push_str("</td>");
    }
    let _ = write!(
        out,
        r#"<td><label class="vh" for="{id}">Due in hours for {l}</label><input type="number" min="1" max="8760" name="due.{r}" id="{id}" value="{val}"></td>"#,
        id = esc(&dom_id("due", row)),
        l = esc(&label),
        r = esc(&r),
        val = rule.due_hours,
    );
    let details: Vec<String> = [
        (Field::WorkType, &rule.work_type),
        (Field::IssueType, &rule.issue_type),
        (Field::SubIssueType, &rule.sub_issue_type),
    ]
    .into_iter()
    .map(|(f, val)| shown(v.catalog, f, val.as_deref()).unwrap_or_else(|| "\u{2014}".to_owned()))
    .collect();
    let _ =
        write!(out, r#"<td class="details" id="{}">{}</td>"#, esc(&dom_id("details", row)), esc(&details.join(" / ")));
    let _ = write!(out, r#"<td class="problem" id="{}">"#, esc(&dom_id("problems", row)));
    for p in problems {
        let _ = write!(out, "<div>{}</div>", esc(&problem_short(p)));
    }
    out.push_str("</td></tr>");
    out
}

fn edit_window(v: &SectionView<'_>) -> String {
    let mut out = String::from(
        r#"<details class="edit-window" id="edit-window"><summary id="edit-open">Edit selected rows…</summary><fieldset><legend>Ticketing settings for the selected rows (fields left at “keep as is” do not change)</legend>
<div class="field"><label for="b_enabled">Create ticket</label><select id="b_enabled" name="b_enabled"><option value="" selected>(keep as is)</option><option value="on">On</option><option value="off">Off</option></select></div>"#,
    );
    if has_lifetime(v.section) {
        out.push_str(r#"<div class="field"><label for="b_lifetime">Lifetime, days</label><input type="number" min="1" max="365" id="b_lifetime" name="b_lifetime" placeholder="keep"></div>"#);
    }
    out.push_str(&bulk_select(v.catalog, Field::Queue, "b_queue", "Queue"));
    out.push_str(&bulk_select(v.catalog, Field::Priority, "b_priority", "Priority"));
    out.push_str(r#"<div class="field"><label for="b_due">Due, hours</label><input type="number" min="1" max="8760" id="b_due" name="b_due" placeholder="keep"></div>"#);
    out.push_str(&bulk_select(v.catalog, Field::WorkType, "b_work_type", "Work type"));
    out.push_str(&bulk_select(v.catalog, Field::IssueType, "b_issue_type", "Issue type"));
    out.push_str(&bulk_select(v.catalog, Field::SubIssueType, "b_sub_issue_type", "Sub-issue type"));
    out.push_str(r#"<p><button type="submit" id="bulk-apply" formaction="/ui/bulk-edit">Apply to selected rows</button></p></fieldset></details>"#);
    out
}

fn preview_box(v: &SectionView<'_>) -> String {
    let mut out = String::from(
        r#"<section class="preview" aria-labelledby="preview-h" id="preview"><h2 id="preview-h">Preview the draft</h2>"#,
    );
    let days = v.preview.as_ref().map(|(p, _)| p.days).unwrap_or(7);
    let _ = write!(
        out,
        r#"<form method="get" action="/ui/section"><input type="hidden" name="s" value="{}"><label for="days">What would this draft have ticketed over the last</label> <input type="number" min="1" max="365" id="days" name="days" value="{days}"> days? <button type="submit" id="preview-run">Preview</button></form>"#,
        esc(&v.section.to_string())
    );
    match &v.preview {
        Err(e) => {
            let _ = write!(out, r#"<p id="preview-result">{}</p>"#, esc(e));
        }
        Ok((draft, saved)) => {
            let _ = write!(
                out,
                r#"<p id="preview-result">Over the last {d} day(s), {e} event(s) were seen; this draft would have created <strong id="preview-count">{n}</strong> ticket(s){s}.</p>"#,
                d = draft.days,
                e = draft.events,
                n = draft.would_create,
                s = saved.as_ref().map(|p| format!(" (the saved rules: {})", p.would_create)).unwrap_or_default(),
            );
            if !draft.by_row.is_empty() {
                out.push_str(r#"<table class="small" id="preview-rows"><caption>Tickets per rule</caption><thead><tr><th scope="col">Rule</th><th scope="col">Tickets</th></tr></thead><tbody>"#);
                for (row, n) in &draft.by_row {
                    let name = row
                        .parse::<RowId>()
                        .map(|r| format!("{}: {}", r.section().title(), r.label()))
                        .unwrap_or_else(|_| row.clone());
                    let _ = write!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(&name));
                }
                out.push_str("</tbody></table>");
            }
            if !draft.skipped.is_empty() {
                out.push_str(r#"<p>Not ticketed:</p><ul id="preview-skipped">"#);
                for (reason, n) in &draft.skipped {
                    let _ = write!(out, "<li>{}: {n}</li>", esc(reason));
                }
                out.push_str("</ul>");
            }
        }
    }
    out.push_str("</section>");
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
        let html = picklist_select(Some(&c), Field::Queue, "q", "q", "Queue", false, Some("<b>Evil\" queue</b>"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;b&gt;Evil&quot; queue&lt;/b&gt;"));
    }

    #[test]
    fn a_label_the_psa_lost_shows_blank() {
        let mut c = Catalog::example();
        c.priorities.retain(|p| p.label != "Critical");
        assert_eq!(shown(Some(&c), Field::Priority, Some("Critical")), None);
        assert_eq!(shown(Some(&c), Field::Priority, Some("medium")).as_deref(), Some("Medium"));
        let html = picklist_select(Some(&c), Field::Priority, "p", "p", "Priority", true, None);
        assert!(html.contains(r#"<option value="" selected>(blank)</option>"#));
    }
}
