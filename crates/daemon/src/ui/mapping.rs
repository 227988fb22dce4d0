//! The Mapping page: each tenant → its PSA account (name and id), whether the account is active,
//! the mapping's problem if any (all from [`crate::engine::Shared::mapping`], as the engine
//! resolved it), the last successful read of the sources that read it, and its open tickets
//! (open or being closed, counted in the ledger).
//!
//! Sources are named per source, not per tenant ([`crate::health::Health::source_successes`]:
//! one time per source, its last successful read of any of its tenants). Which tenants an
//! *event* source reads is known from the store: it keeps a cursor per (source, tenant). A
//! *status* source keeps none, so which tenants it lists cannot be told here. The page therefore
//! shows per tenant the event sources that hold its cursor, and every source in a second table,
//! and says so.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use ticketing_core::ledger::TicketState;
use ticketing_core::model::TenantId;

use super::layout::{self, Frame, Tab};
use super::widgets;
use super::{UiState, to_login};
use crate::engine::{MappedTenant, Shared};
use crate::store::CursorKey;

/// Above this many (tenant, source) pairs the page does not look cursors up (one store read
/// each) and shows the sources' table only.
const MAX_CURSOR_LOOKUPS: usize = 5_000;

/// A source's name in words: `ksc:main/events` → Security Center “main”: events.
pub(crate) fn source_words(name: &str) -> String {
    let what = |kind: &str| match kind {
        "events" => "events".to_owned(),
        "statuses" => "computer statuses".to_owned(),
        "issues" => "issues".to_owned(),
        other => other.replace('_', " "),
    };
    if let Some(rest) = name.strip_prefix("ksc:") {
        if let Some((server, kind)) = rest.rsplit_once('/') {
            return format!("Security Center \u{201c}{server}\u{201d}: {}", what(kind));
        }
    }
    if let Some(rest) = name.strip_prefix("kbh/") {
        if let Some((product, kind)) = rest.split_once('/') {
            let product = ticketing_core::model::Product::from_code(product)
                .map(|p| p.display_name().trim_start_matches("Kaspersky ").to_owned())
                .unwrap_or_else(|| product.replace('_', " "));
            return format!("Business Hub: {product} {}", what(kind));
        }
    }
    name.replace('_', " ")
}

/// A time with its age, in words.
pub(crate) fn at_words(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds().max(0);
    let ago = match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    };
    format!("{} UTC ({ago})", at.format("%Y-%m-%d %H:%M:%S"))
}

/// One row of the tenants' table.
struct Row {
    mapped: MappedTenant,
    /// The event sources that hold a cursor for the tenant, with their last successful read.
    sources: Option<Vec<(String, Option<DateTime<Utc>>)>>,
    /// Open tickets (open or being closed), from the ledger; `None` when it cannot be read.
    open: Option<usize>,
}

fn open_tickets(shared: &Shared) -> Option<BTreeMap<String, usize>> {
    let ledger = shared
        .store
        .load_ledger()
        .map_err(|e| tracing::warn!(error = %e, "cannot read the ledger for the Mapping page"))
        .ok()?;
    let mut open = BTreeMap::new();
    for e in ledger.entries() {
        if matches!(e.state, TicketState::Open { .. } | TicketState::Closing { .. }) {
            *open.entry(e.key.tenant().to_string()).or_default() += 1;
        }
    }
    Some(open)
}

fn rows(shared: &Shared, successes: &BTreeMap<String, Option<DateTime<Utc>>>) -> (Vec<Row>, bool) {
    let mut mapped = shared.mapping();
    let open = open_tickets(shared);
    // A tenant with open tickets that the mapping no longer lists still shows.
    if let Some(open) = &open {
        for tenant in open.keys() {
            if !mapped.iter().any(|m| &m.tenant == tenant) {
                mapped.push(MappedTenant {
                    tenant: tenant.clone(),
                    tenant_name: None,
                    account_id: None,
                    account_name: None,
                    active: None,
                    problem: Some(
                        "no longer in the mapping or listed by a source; its open tickets stay in the ledger"
                            .to_owned(),
                    ),
                    source: None,
                });
            }
        }
    }
    mapped.sort_by(|a, b| {
        let key = |m: &MappedTenant| m.tenant_name.clone().unwrap_or_else(|| m.tenant.clone()).to_lowercase();
        key(a).cmp(&key(b)).then_with(|| a.tenant.cmp(&b.tenant))
    });
    let lookups = mapped.len() * successes.len() <= MAX_CURSOR_LOOKUPS;
    let rows = mapped
        .into_iter()
        .map(|m| {
            let sources = lookups.then(|| {
                successes
                    .iter()
                    .filter(|(source, _)| {
                        let key = CursorKey { source: (*source).clone(), tenant: TenantId::new(m.tenant.clone()) };
                        matches!(shared.store.cursor(&key), Ok(Some(_)))
                    })
                    .map(|(s, at)| (s.clone(), *at))
                    .collect()
            });
            let open = open.as_ref().map(|o| o.get(&m.tenant).copied().unwrap_or(0));
            Row { mapped: m, sources, open }
        })
        .collect();
    (rows, lookups)
}

pub(crate) async fn page(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    let shared = &s.admin.shared;
    let now = Utc::now();
    let successes = shared.health.source_successes();
    let (rows, lookups) = rows(shared, &successes);
    let psa = super::psa::check(shared);
    let sources = super::psa::check_sources(shared);
    let flash = s.sessions.take_flash(&session.id);
    let psa_name = shared.presentation.with(|p| p.psa_name);
    let body = html! {
        (widgets::psa_banner(&psa, shared.catalog().is_some()))
        (widgets::source_banner(&sources))
        h1 id="page-title" { "Mapping" }
        p.state { "Each tenant, the " (psa_name) " account its tickets go to, and how it is doing." }
        (tenants_table(&rows, psa_name, now, lookups))
        (sources_table(&successes, now))
    };
    Html(layout::page(
        &Frame {
            title: "Mapping",
            tab: Some(Tab::Mapping),
            current: None,
            dirty: &[],
            csrf: Some(&session.csrf),
            flash: &flash,
        },
        body,
    ))
    .into_response()
}

fn active_words(m: &MappedTenant) -> &'static str {
    match m.active {
        Some(true) => "Active",
        Some(false) => "Inactive: no tickets",
        None => "No account",
    }
}

fn tenants_table(rows: &[Row], psa: &str, now: DateTime<Utc>, lookups: bool) -> Markup {
    html! {
        h2 id="tenants-h" { "Tenants" }
        @if rows.is_empty() {
            p.note id="mapping-empty" {
                "No tenant is mapped or listed yet: the mapping is resolved once the PSA's accounts and the sources' tenants have been read."
            }
        } @else {
            div.table-wrap {
                table.data.cards id="mapping-table" aria-labelledby="tenants-h" {
                    thead {
                        tr {
                            th scope="col" { "Tenant" }
                            th scope="col" { (psa) " account" }
                            th scope="col" { "Active" }
                            th scope="col" { "Problem" }
                            th scope="col" { "Last successful read" }
                            th scope="col" { "Open tickets" }
                        }
                    }
                    tbody {
                        @for r in rows {
                            @let m = &r.mapped;
                            tr data-tenant=(m.tenant) class=[m.problem.is_some().then_some("bad")] {
                                th scope="row" data-label="Tenant" {
                                    @match &m.tenant_name {
                                        Some(n) if *n != m.tenant => { (n) span.sub { (m.tenant) } }
                                        _ => (m.tenant),
                                    }
                                }
                                td data-label={ (psa) " account" } {
                                    @match (&m.account_name, m.account_id) {
                                        (Some(n), Some(id)) => { (n) span.sub { "id " (id) } }
                                        (None, Some(id)) => { "id " (id) }
                                        (Some(n), None) => (n),
                                        (None, None) => "None",
                                    }
                                }
                                td data-label="Active" { (active_words(m)) }
                                td data-label="Problem" {
                                    @match &m.problem {
                                        Some(p) => { (sentence(p)) }
                                        None => "None",
                                    }
                                }
                                td data-label="Last successful read" {
                                    @match &r.sources {
                                        None => "Not looked up (see the sources below)",
                                        Some(s) if s.is_empty() => "No event source has read it yet (see the sources below)",
                                        Some(s) => {
                                            @for (name, at) in s {
                                                span.sub {
                                                    (source_words(name)) ": "
                                                    @match at { Some(at) => (at_words(*at, now)), None => "no successful read yet" }
                                                }
                                            }
                                        }
                                    }
                                }
                                td data-label="Open tickets" {
                                    @match r.open { Some(n) => (n), None => "Unknown (the ledger cannot be read)" }
                                }
                            }
                        }
                    }
                }
            }
            p.hint id="mapping-read-note" {
                "Last successful read: the event sources that have read the tenant (each keeps a position per tenant), with the time of the source's last successful read of any of its tenants; the sources do not record a time per tenant. Which tenants a computer status source lists is not recorded, so those sources are in the table below only."
                @if !lookups { " There are too many tenants and sources to look them up on this page." }
            }
        }
    }
}

fn sources_table(successes: &BTreeMap<String, Option<DateTime<Utc>>>, now: DateTime<Utc>) -> Markup {
    html! {
        h2 id="sources-h" { "Sources" }
        @if successes.is_empty() {
            p.note id="sources-empty" { "No source is configured (or the engine has not started yet)." }
        } @else {
            div.table-wrap {
                table.data.small id="sources-table" aria-labelledby="sources-h" {
                    thead { tr { th scope="col" { "Source" } th scope="col" { "Last successful read (any tenant)" } } }
                    tbody {
                        @for (name, at) in successes {
                            tr {
                                th scope="row" { (source_words(name)) }
                                td { @match at { Some(at) => (at_words(*at, now)), None => "No successful read yet" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_in_words() {
        assert_eq!(source_words("ksc:main/events"), "Security Center \u{201c}main\u{201d}: events");
        assert_eq!(source_words("ksc:main/statuses"), "Security Center \u{201c}main\u{201d}: computer statuses");
        assert_eq!(source_words("kbh/endpoint_cloud/events"), "Business Hub: Endpoint Security Cloud events");
        assert_eq!(source_words("kbh/office365/issues"), "Business Hub: Security for Microsoft Office 365 issues");
        assert_eq!(source_words("odd_name"), "odd name");
    }
}
