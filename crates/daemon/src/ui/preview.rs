//! A section page's preview of the draft: the replayed events (event sections), the
//! settings in words (status sections), the sample tickets of rows with their own text.

use maud::{Markup, html};

use ticketing_core::model::{Product, StatusLevel};
use ticketing_core::rules::{RowId, Rule, Section};

use super::render::{FOLLOWS, SectionView, dom_id, has_recurrence, plural, problem_words, skip_words, text_href};
use super::widgets::sample_ticket;

pub(super) fn preview_box(v: &SectionView<'_>) -> Markup {
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
                @if draft.stormed > 0 || saved.as_ref().is_some_and(|p| p.stormed > 0) {
                    p id="preview-storms" {
                        "Alert storms: "
                        strong id="preview-storm-events" { (draft.stormed) }
                        " event(s) would go to "
                        strong id="preview-storm-tickets" { (draft.storm_tickets) }
                        " storm ticket(s) (counted above) instead of tickets of their own, listed in "
                        strong id="preview-storm-notes" { (draft.storm_notes) }
                        " storm note(s)"
                        @if let Some(p) = saved {
                            " (the saved rules: " (p.stormed) " event(s), " (p.storm_tickets) " storm ticket(s), " (p.storm_notes) " note(s))"
                        }
                        "."
                    }
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
