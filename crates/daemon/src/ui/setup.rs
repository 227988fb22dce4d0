//! The Setup page: whether the daemon is set up to make tickets, in one place. The PSA and each
//! source reached or not (from [`crate::health::Health`], as the banners tell it), how many
//! tenants are mapped and unmapped (the stored directory and mapping), how many rule rows are
//! on (the saved rules), each with where it is fixed. "Check now" reads it all again.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{Markup, html};
use ticketing_core::rules::Section;

use super::UiState;
use super::layout::{self, Frame, Tab};
use super::mapping::{at_words, source_words};
use super::mapping_edit::counts;
use super::render::section_href;

/// One line of the page: what, whether it is fine, in words, and where it is fixed.
struct Check {
    id: &'static str,
    what: String,
    good: bool,
    state: String,
    fix: Markup,
}

fn config_file(s: &UiState) -> String {
    s.admin.reloader.as_ref().map_or_else(|| "of this daemon".to_owned(), |r| r.path.display().to_string())
}

/// Where a source is configured, in words.
fn source_settings(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("ksc:") {
        let server = rest.rsplit_once('/').map_or(rest, |(s, _)| s);
        return format!("The Security Center \u{201c}{server}\u{201d} settings (address, user, password)");
    }
    if name.starts_with("kbh") {
        return "The Business Hub settings (address, token)".to_owned();
    }
    "Its settings".to_owned()
}

fn checks(s: &UiState) -> Vec<Check> {
    let shared = &s.admin.shared;
    let now = Utc::now();
    let file = config_file(s);
    let mut out = Vec::new();
    let psa_name = shared.presentation.with(|p| p.psa_name);
    let psa = super::psa::check(shared);
    let has_catalog = shared.catalog().is_some();
    let (good, state) = match (&psa.failing, has_catalog, psa.catalog_stale) {
        (Some((since, _, n)), _, _) => (
            false,
            format!(
                "Not reached: {n} call(s) failed and none was answered since {} UTC.",
                since.format("%Y-%m-%d %H:%M:%S")
            ),
        ),
        (None, false, _) => (false, "Not read yet: its lists (queues, statuses, ...) have not been read.".to_owned()),
        (None, true, true) => (false, "Reached, but the last refresh of its lists failed.".to_owned()),
        (None, true, false) => (
            true,
            match psa.catalog_read_at {
                Some(at) => format!("Reached: lists read {}.", at_words(at, now)),
                None => "Reached.".to_owned(),
            },
        ),
    };
    out.push(Check {
        id: "setup-psa",
        what: format!("The PSA ({psa_name})"),
        good,
        state,
        fix: html! { "The PSA settings (address, credentials) in the configuration file " (file) "; the daemon's log names each failed call." },
    });
    let failing = shared.health.failing_sources();
    let successes = shared.health.source_successes();
    let empty = shared.health.sources_without_tenants();
    if successes.is_empty() {
        out.push(Check {
            id: "setup-sources",
            what: "Sources".to_owned(),
            good: false,
            state: "No source is configured (or the engine has not started yet).".to_owned(),
            fix: html! { "Add a Security Center or the Business Hub to the configuration file " (file) "." },
        });
    }
    for (i, (name, at)) in successes.iter().enumerate() {
        let (good, state) = match (failing.get(name), at) {
            (Some(n), _) => (false, format!("Not reached: {n} failed read(s) since its last successful read.")),
            (None, Some(at)) if empty.contains(name) => (
                true,
                format!(
                    "Reached, no tenants yet: it listed no customer, last at {} (nothing to ticket until one exists).",
                    at_words(*at, now)
                ),
            ),
            (None, Some(at)) => (true, format!("Reached: last successful read {}.", at_words(*at, now))),
            (None, None) => (false, "Not read yet.".to_owned()),
        };
        let id = if i == 0 { "setup-source-first" } else { "setup-source" };
        out.push(Check {
            id,
            what: source_words(name),
            good,
            state,
            fix: html! { (source_settings(name)) " in the configuration file " (file) "." },
        });
    }
    let (good, state) = match counts(&s.admin) {
        None => (false, "Cannot be read now (see the daemon's log).".to_owned()),
        Some((mapped, 0)) => (mapped > 0, format!("{mapped} mapped, none unmapped.")),
        Some((mapped, unmapped)) => {
            (false, format!("{mapped} mapped, {unmapped} not mapped: their events are held until they are."))
        }
    };
    out.push(Check {
        id: "setup-mapping",
        what: "Tenants mapped to PSA accounts".to_owned(),
        good,
        state,
        fix: html! { a href="/ui/mapping" id="setup-mapping-link" { "The Mapping page" } },
    });
    let book = shared.rules();
    let mut on: BTreeMap<Section, usize> = BTreeMap::new();
    for (row, rule) in &book.saved.rows {
        if rule.enabled {
            *on.entry(row.section()).or_default() += 1;
        }
    }
    let total: usize = on.values().sum();
    out.push(Check {
        id: "setup-rules",
        what: "Rule rows on".to_owned(),
        good: total > 0,
        state: match total {
            0 => "None: no ticket is made until a rule row is on and saved.".to_owned(),
            1 => "1 rule row is on (saved).".to_owned(),
            n => format!("{n} rule rows are on (saved)."),
        },
        fix: html! {
            a href=(section_href(Section::General)) id="setup-rules-link" { "The Ticketing rules" }
            @if !on.is_empty() {
                ul.sub {
                    @for (section, n) in &on {
                        li { a href=(section_href(*section)) { (section.title()) } ": " (n) " on" }
                    }
                }
            }
        },
    });
    out
}

/// `GET /ui/setup`.
pub(crate) async fn page(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else {
        return Redirect::to("/ui/login?next=setup").into_response();
    };
    let flash = s.sessions.take_flash(&session.id);
    let checks = checks(&s);
    let body = html! {
        h1 id="page-title" { "Setup" }
        p.state { "Whether the daemon reaches the PSA and the sources, and is set up to make tickets, with where each is fixed." }
        form method="get" action="/ui/setup" class="check-now" {
            button type="submit" id="check-now" { "Check now" }
            " " span.hint { "Checked " (Utc::now().format("%H:%M:%S")) " UTC." }
        }
        div.table-wrap {
            table.data.cards id="setup-table" {
                thead { tr { th scope="col" { "Check" } th scope="col" { "State" } th scope="col" { "Where it is fixed" } } }
                tbody {
                    @for c in &checks {
                        tr id=(c.id) class=(if c.good { "good" } else { "bad" }) {
                            th scope="row" data-label="Check" { (c.what) }
                            td data-label="State" {
                                span class=(if c.good { "ok-mark" } else { "bad-mark" }) { (if c.good { "OK" } else { "To fix" }) }
                                " " (c.state)
                            }
                            td data-label="Where it is fixed" { (c.fix) }
                        }
                    }
                }
            }
        }
    };
    let html = layout::page(
        &Frame {
            title: "Setup",
            tab: Some(Tab::Setup),
            current: None,
            dirty: &[],
            csrf: Some(&session.csrf),
            flash: &flash,
            unmapped: super::mapping_edit::unmapped(&s.admin),
        },
        body,
    );
    Html(html).into_response()
}
