//! A rule row's ticket text editor (issue 20): the title and description templates of the
//! tickets the row creates, with the fields the row's templates can use and a sample ticket.
//!
//! One small page per row (`/ui/text?row=…`) rather than a disclosure inside the rule table:
//! a section has up to 20 rows, and two prefilled textareas per row would make every section
//! page long and heavy (and every Save changes post 40 templates); a preview of a typed
//! template needs a server round trip, which without JavaScript means answering with a whole
//! page, and on a page of its own that answer keeps exactly what was typed next to its
//! problems (as the maintenance editor does) instead of re-rendering a table of inline edits.
//! The page also has an address of its own to come back to.
//!
//! - **Preview** (`POST /ui/text/preview`) renders the typed text's sample ticket with
//!   [`ticketing_core::decide::preview_texts`], exactly as the decisions would write it, the
//!   key line shown apart; nothing changes.
//! - **Put into the draft** (`POST /ui/text/apply`) writes the templates into the draft (a
//!   text equal to the default, or blank, is no template); **Use the default text**
//!   (`POST /ui/text/default`) clears both. Either way Save changes on the section page then
//!   saves them, as every other draft change.
//! - A template that does not compile or names a field the row does not have is refused: the
//!   page comes back (422) with the text as typed and the problem, in words with its line and
//!   column, next to its field. A page whose rules revision is outdated gets 409, the text
//!   still filled in.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use ticketing_core::catalog::Field;
use ticketing_core::edit::RulePatch;
use ticketing_core::rules::{Problem, RowId, Rule, Section, ValidationError};
use ticketing_core::template::{EVENT_FIELDS, STATUS_FIELDS, default_template};

use super::layout::{self, Frame, Tab};
use super::render::{self, DESCRIPTION, TITLE, section_href, template_set};
use super::session::{Flash, SessionView};
use super::{FormData, UiState, error, guard, ok, op_error, refused, to_login};
use crate::rules_ops::{self, OpError};

/// The editor's two fields: form name, label, the rule's template, its error's element id.
const FIELDS: [(Field, &str, &str); 2] = [
    (Field::TitleTemplate, "t_title", "t-error-title"),
    (Field::DescriptionTemplate, "t_description", "t-error-description"),
];

/// What the editor shows: the text (typed, or the draft's), problems per field, and the
/// sample ticket (or none while there are problems).
struct Editor {
    row: RowId,
    title: String,
    description: String,
    errors: [Option<String>; 2],
    sample: Option<(String, String)>,
}

impl Editor {
    /// The editor over `rule` (the draft's row, or it with the typed text): the sample, or each
    /// problem next to its field.
    fn new(row: RowId, title: String, description: String, rule: &Rule) -> Self {
        let mut editor = Self { row, title, description, errors: [None, None], sample: None };
        match ticketing_core::decide::preview_texts(&editor.row, rule) {
            Ok(texts) => editor.sample = Some(texts),
            Err(problems) => {
                for p in &problems {
                    let i = usize::from(p.field == Field::DescriptionTemplate);
                    let words = problem_words(p);
                    editor.errors[i] = Some(match editor.errors[i].take() {
                        Some(before) => format!("{before}; {words}"),
                        None => words,
                    });
                }
            }
        }
        editor
    }

    fn has_problems(&self) -> bool {
        self.errors.iter().any(Option::is_some)
    }
}

/// A template problem in words, for next to its field: line and column first.
fn problem_words(p: &ValidationError) -> String {
    match &p.problem {
        Problem::Template { line, column, message } => {
            let what = match message.strip_prefix("unknown field `").and_then(|m| m.strip_suffix('`')) {
                Some(name) => format!("\u{201c}{name}\u{201d} is not a field of this row (see the fields of this row)"),
                None => message.clone(),
            };
            format!("Line {line}, column {column}: {what}")
        }
        _ => render::problem_text(p, crate::backends::guide_label),
    }
}

/// The text a template field shows: the rule's template, or the default one when it has none.
fn shown_text(row: &RowId, field: Field, template: Option<&str>) -> String {
    match template {
        Some(t) if template_set(Some(t)) => t.to_owned(),
        _ => default_template(row, field).to_owned(),
    }
}

/// A typed text as a template: none when blank or the default text itself (so "unchanged"
/// keeps following the guide), else the text with the browser's line ends made `\n`.
fn as_template(row: &RowId, field: Field, typed: &str) -> Option<String> {
    let text = typed.replace("\r\n", "\n");
    (!text.trim().is_empty() && text.trim() != default_template(row, field).trim()).then_some(text)
}

fn current_rule(s: &UiState, row: &RowId) -> Rule {
    s.admin.shared.rules.with(|b| b.draft.rule(row).cloned()).unwrap_or_else(|| row.default_rule())
}

/// The row named by a query or form value, or the refusal page.
fn parse_row(value: Option<&str>) -> Result<RowId, Box<Response>> {
    let name = value.unwrap_or_default();
    name.parse::<RowId>().map_err(|_| {
        Box::new(refused(
            StatusCode::NOT_FOUND,
            &format!("There is no rule row \u{201c}{name}\u{201d} (the link below leads back to the sections)."),
        ))
    })
}

#[derive(Deserialize)]
pub(crate) struct TextQuery {
    row: Option<String>,
}

/// `GET /ui/text?row=…`: the draft's text of the row (the default text where it has none).
pub(crate) async fn page(State(s): State<UiState>, headers: HeaderMap, Query(q): Query<TextQuery>) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    let row = match parse_row(q.row.as_deref()) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if let Err(e) = rules_ops::sync_from_store(&s.admin.shared) {
        tracing::warn!(error = %e, "cannot read the rules' revision");
    }
    let rule = current_rule(&s, &row);
    let title = shown_text(&row, Field::TitleTemplate, rule.title_template.as_deref());
    let description = shown_text(&row, Field::DescriptionTemplate, rule.description_template.as_deref());
    let editor = Editor::new(row, title, description, &rule);
    let flash = s.sessions.take_flash(&session.id);
    let revision = s.admin.shared.rules.revision();
    respond(&s, &session, &editor, &flash, revision, StatusCode::OK)
}

/// A submitted editor: its session, row, typed text, the revision its page showed.
struct Submitted {
    session: SessionView,
    row: RowId,
    title: String,
    description: String,
    revision: Option<u64>,
}

fn submitted(s: &UiState, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Result<Submitted, Box<Response>> {
    let form = FormData(pairs);
    let session = guard(s, headers, &form)?;
    let row = parse_row(form.get("row"))?;
    Ok(Submitted {
        session,
        row,
        title: form.get("t_title").unwrap_or_default().to_owned(),
        description: form.get("t_description").unwrap_or_default().to_owned(),
        revision: form.get("revision").and_then(|r| r.parse().ok()),
    })
}

impl Submitted {
    /// The draft's rule of the row with the typed templates.
    fn patched(&self, s: &UiState) -> Rule {
        let mut rule = current_rule(s, &self.row);
        rule.title_template = as_template(&self.row, Field::TitleTemplate, &self.title);
        rule.description_template = as_template(&self.row, Field::DescriptionTemplate, &self.description);
        rule
    }

    fn editor(&self, rule: &Rule) -> Editor {
        Editor::new(self.row.clone(), self.title.clone(), self.description.clone(), rule)
    }
}

/// `POST /ui/text/preview`: the typed text's sample ticket; nothing changes.
pub(crate) async fn preview(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let sub = match submitted(&s, &headers, pairs) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let editor = sub.editor(&sub.patched(&s));
    let status = if editor.has_problems() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let revision = sub.revision.unwrap_or_else(|| s.admin.shared.rules.revision());
    respond(&s, &sub.session, &editor, &[], revision, status)
}

/// `POST /ui/text/apply`: the typed text into the draft, unless a template has a problem.
pub(crate) async fn apply(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let sub = match submitted(&s, &headers, pairs) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let rule = sub.patched(&s);
    let editor = sub.editor(&rule);
    if editor.has_problems() {
        let flash = [error(
            "The ticket text was not put into the draft: see the problems marked next to its fields.",
            Vec::new(),
        )];
        let revision = sub.revision.unwrap_or_else(|| s.admin.shared.rules.revision());
        return respond(&s, &sub.session, &editor, &flash, revision, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let before = current_rule(&s, &sub.row);
    let mut patch = RulePatch::default();
    if rule.title_template != before.title_template {
        patch.title_template = Some(rule.title_template.clone());
    }
    if rule.description_template != before.description_template {
        patch.description_template = Some(rule.description_template);
    }
    let label = sub.row.label();
    if patch == RulePatch::default() {
        s.sessions.flash(
            &sub.session.id,
            ok(format!("Nothing changed: the draft already has this ticket text for \u{201c}{label}\u{201d}.")),
        );
        return Redirect::to(&render::text_href(&sub.row)).into_response();
    }
    write(
        &s,
        &sub,
        &editor,
        &patch,
        format!("Ticket text of \u{201c}{label}\u{201d} put into the draft. Save changes to make it the rules in use."),
    )
}

/// `POST /ui/text/default`: both templates out of the draft: the guide's text again.
pub(crate) async fn use_default(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let sub = match submitted(&s, &headers, pairs) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let before = current_rule(&s, &sub.row);
    let label = sub.row.label();
    let mut patch = RulePatch::default();
    if before.title_template.is_some() {
        patch.title_template = Some(None);
    }
    if before.description_template.is_some() {
        patch.description_template = Some(None);
    }
    if patch == RulePatch::default() {
        s.sessions.flash(
            &sub.session.id,
            ok(format!("Nothing changed: \u{201c}{label}\u{201d} already uses the default text in the draft.")),
        );
        return Redirect::to(&render::text_href(&sub.row)).into_response();
    }
    let editor = sub.editor(&sub.patched(&s));
    write(
        &s,
        &sub,
        &editor,
        &patch,
        format!(
            "\u{201c}{label}\u{201d} is back to the default ticket text in the draft. Save changes to make it the rules in use."
        ),
    )
}

/// Writes `patch` into the draft as of the page's revision: back to the section page with
/// `done`, or the editor again (409) when the rules changed elsewhere meanwhile.
fn write(s: &UiState, sub: &Submitted, editor: &Editor, patch: &RulePatch, done: String) -> Response {
    let shared = &s.admin.shared;
    match rules_ops::bulk_edit(shared, std::slice::from_ref(&sub.row), patch, sub.revision) {
        Ok(_) => {
            s.sessions.flash(&sub.session.id, ok(done));
            Redirect::to(&section_href(sub.row.section())).into_response()
        }
        Err(OpError::Conflict { revision, .. }) => {
            let flash = [error(
                format!(
                    "Changed elsewhere: the rules were saved by someone else meanwhile (now revision {revision}). Nothing was applied. Your text is still filled in below; check it against the newest rules (reload to drop it), then submit again."
                ),
                Vec::new(),
            )];
            respond(s, &sub.session, editor, &flash, revision, StatusCode::CONFLICT)
        }
        Err(e) => {
            s.sessions.flash(&sub.session.id, op_error(e));
            Redirect::to(&render::text_href(&sub.row)).into_response()
        }
    }
}

fn respond(
    s: &UiState,
    session: &SessionView,
    editor: &Editor,
    flash: &[Flash],
    revision: u64,
    status: StatusCode,
) -> Response {
    let book = s.admin.shared.rules();
    let dirty: Vec<Section> = Section::all().into_iter().filter(|x| book.is_dirty(*x)).collect();
    let draft = book.draft.rule(&editor.row).cloned().unwrap_or_else(|| editor.row.default_rule());
    let saved = book.saved.rule(&editor.row).cloned().unwrap_or_else(|| editor.row.default_rule());
    let title = format!("Ticket text: {}", editor.row.label());
    let body = body(editor, &draft, &saved, &session.csrf, revision);
    let html = layout::page(
        &Frame {
            title: &title,
            tab: Some(Tab::Rules),
            current: Some(editor.row.section()),
            dirty: &dirty,
            csrf: Some(&session.csrf),
            flash,
            unmapped: super::mapping_edit::unmapped(&s.admin),
        },
        body,
    );
    (status, Html(html)).into_response()
}

/// What the draft's row uses, and whether that is saved, in words.
fn state_words(draft: &Rule, saved: &Rule) -> String {
    let own = (template_set(draft.title_template.as_deref()), template_set(draft.description_template.as_deref()));
    let uses = match own {
        (false, false) => "The draft uses the default title and description for this row.",
        (true, false) => "The draft has this row's own title and the default description.",
        (false, true) => "The draft has the default title and this row's own description.",
        (true, true) => "The draft has this row's own title and description.",
    };
    let unsaved =
        draft.title_template != saved.title_template || draft.description_template != saved.description_template;
    if unsaved {
        format!("{uses} Not saved yet: Save changes on the section page makes it the rules in use.")
    } else {
        format!("{uses} The saved rules use the same.")
    }
}

/// Whether the page shows text other than the draft's (typed and previewed, or refused).
fn pending(editor: &Editor, draft: &Rule) -> bool {
    as_template(&editor.row, Field::TitleTemplate, &editor.title)
        != draft.title_template.clone().filter(|t| template_set(Some(t)))
        || as_template(&editor.row, Field::DescriptionTemplate, &editor.description)
            != draft.description_template.clone().filter(|t| template_set(Some(t)))
}

/// A field's description with the field names in it set as code (they are what one types).
fn described(words: &str, names: &[&str]) -> Markup {
    html! {
        @for piece in words.split_inclusive(' ') {
            @let core = piece.trim_end_matches([' ', ',', '.', ')', ';', ':']);
            @let core = core.trim_start_matches('(');
            @match names.iter().find(|n| **n == core) {
                Some(name) => {
                    @let start = piece.find(name).unwrap_or(0);
                    (&piece[..start]) code { (name) } (&piece[start + name.len()..])
                }
                None => (piece),
            }
        }
    }
}

/// A textarea's content: the HTML parser drops one newline right after `<textarea>`, so a
/// text starting with one gets another in front.
fn textarea_text(text: &str) -> String {
    if text.starts_with('\n') { format!("\n{text}") } else { text.to_owned() }
}

fn body(editor: &Editor, draft: &Rule, saved: &Rule, csrf: &str, revision: u64) -> Markup {
    let row = &editor.row;
    let section = row.section();
    let fields: &[(&str, &str)] = if row.is_status() { &STATUS_FIELDS } else { &EVENT_FIELDS };
    // Only the names that cannot be read as plain words ("the product", "the event's text").
    let names: Vec<&str> = fields.iter().flat_map(|(n, _)| n.split(", ")).filter(|n| n.contains(['_', '.'])).collect();
    let texts = [(&editor.title, 3), (&editor.description, 14)];
    html! {
        p.back { a href=(section_href(section)) id="text-back" { "Back to " (section.title()) } }
        h1 id="text-title" { "Ticket text: " (render::row_noun(row)) " \u{201c}" (row.label()) "\u{201d}" }
        p.state id="text-state" {
            (section.title()) ". " (state_words(draft, saved))
            @if pending(editor, draft) {
                " " strong id="text-pending" { "The text on this page is not in the draft yet: Put into the draft keeps it." }
            }
        }
        form id="text-form" method="post" action="/ui/text/preview" {
            (render::hidden(csrf, section, revision))
            input type="hidden" name="row" value=(row.to_string());
            div.text-layout {
                div.text-fields {
                    @for (i, (field, name, error_id)) in FIELDS.iter().enumerate() {
                        @let (text, rows) = texts[i];
                        @let problem = editor.errors[i].as_deref();
                        div.field.bad[problem.is_some()] {
                            label for=(name) { (if *field == Field::TitleTemplate { TITLE } else { DESCRIPTION }) }
                            textarea id=(name) name=(name) rows=(rows) spellcheck="false" data-inline
                                aria-invalid=[problem.map(|_| "true")] aria-describedby=[problem.map(|_| *error_id)] {
                                (textarea_text(text))
                            }
                            @if let Some(p) = problem {
                                span.field-error id=(error_id) { (p) }
                            }
                        }
                    }
                    p.hint {
                        "The key line is added after the description, always: the integration finds its own tickets by it. A title is one line, cut to the PSA's length."
                    }
                    div.text-actions {
                        button type="submit" id="text-preview" { "Preview" }
                        button type="submit" id="text-apply" class="primary" formaction="/ui/text/apply" { "Put into the draft" }
                        button type="submit" id="text-default" formaction="/ui/text/default" { "Use the default text" }
                    }
                    p.hint {
                        "Preview shows the sample ticket and changes nothing. Put into the draft, then Save changes on the section page, makes it the rules in use; Use the default text goes back to the guide's title and description."
                    }
                }
                section.preview.text-sample id="text-sample" aria-labelledby="sample-h" {
                    h2 id="sample-h" { "Sample ticket" }
                    p.hint {
                        "For a typical " (if row.is_status() { "computer with this status description" } else { "event of this row" })
                        " (sample values), written exactly as the decisions would write it with the text on this page."
                    }
                    @match &editor.sample {
                        Some((title, description)) => (super::widgets::sample_ticket(title, description, Some("sample"))),
                        None => p id="sample-none" { "No sample: fix the problems marked next to the fields first." },
                    }
                }
                section.text-help id="text-fields-help" aria-labelledby="fields-h" {
                    h2 id="fields-h" { "Fields of this row" }
                    p.hint {
                        "Write a field in double braces, as in " code { "{{ device.name }}" } "; a part only some tickets need between "
                        code { (if row.is_status() { "{% if device.name %}" } else { "{% if mailbox %}" }) } " and " code { "{% endif %}" } ". Every field is text, empty where the "
                        (if row.is_status() { "problem" } else { "event" }) " has none."
                    }
                    dl.fields-list id="fields-list" {
                        @for (name, words) in fields {
                            dt {
                                @for (j, n) in name.split(", ").enumerate() {
                                    @if j > 0 { ", " }
                                    code { (n) }
                                }
                            }
                            dd { (described(words, &names)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit() -> RowId {
        "security_center/event/critical".parse().unwrap()
    }

    #[test]
    fn the_default_text_or_a_blank_one_is_no_template() {
        let row = crit();
        let default = default_template(&row, Field::TitleTemplate);
        assert_eq!(as_template(&row, Field::TitleTemplate, default), None);
        assert_eq!(as_template(&row, Field::TitleTemplate, &format!(" {default}\r\n")), None);
        assert_eq!(as_template(&row, Field::TitleTemplate, "  \r\n"), None);
        assert_eq!(as_template(&row, Field::DescriptionTemplate, "a\r\nb").as_deref(), Some("a\nb"));
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line_and_column() {
        let p = ValidationError {
            row: Some(crit()),
            field: Field::TitleTemplate,
            problem: Problem::Template { line: 2, column: 4, message: "unknown field `devce.name`".into() },
        };
        assert_eq!(
            problem_words(&p),
            "Line 2, column 4: \u{201c}devce.name\u{201d} is not a field of this row (see the fields of this row)"
        );
    }

    #[test]
    fn field_names_in_descriptions_are_code() {
        let html = described("display_name, or event_type where", &["display_name", "event_type"]).into_string();
        assert_eq!(html, "<code>display_name</code>, or <code>event_type</code> where");
    }

    #[test]
    fn a_leading_newline_survives_the_textarea() {
        assert_eq!(textarea_text("\nx"), "\n\nx");
        assert_eq!(textarea_text("x"), "x");
    }
}
