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
//!
//! The page also edits the stored mapping ([`crate::mapping_ops`], handlers in
//! [`super::mapping_edit`]): an unmapped tenant's suggestions each with a Map button, a search
//! box over every account (a `<datalist>`, so a typed name or id works without JavaScript),
//! Unmap for a stored entry, and "from the file" (read-only) for the configuration file's
//! entries. Every form carries the mapping's revision; a stale one is refused (409).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use ticketing_core::ledger::TicketState;
use ticketing_core::mapping::{MappingSource, Suggestion};
use ticketing_core::model::TenantId;
use ticketing_core::ports::Account;

use super::layout::{self, Frame, Tab};
use super::session::{Flash, SessionView};
use super::widgets;
use super::{UiState, to_login};
use crate::engine::{MappedTenant, Shared};
use crate::mapping_ops::{self, MappingView, TenantRow};
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

/// One row of the tenants' table: what the engine resolved, merged with the stored mapping
/// (the edits, which the engine takes within a tick) and the directory's listing.
struct Row {
    mapped: MappedTenant,
    /// The source that listed it.
    listed_by: Option<String>,
    /// Where its mapping comes from, as stored (none: unmapped).
    source: Option<MappingSource>,
    /// Whether the tenant is in the stored directory or mapping (so it can be edited here).
    editable: bool,
    /// For an unmapped tenant, accounts with alike names.
    suggestions: Vec<Suggestion>,
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

/// The engine's tenants, with the view's rows laid over them (the view is the stored mapping,
/// newer than what the engine last took).
fn merged<'v>(shared: &Shared, view: Option<&'v MappingView>) -> Vec<(MappedTenant, Option<&'v TenantRow>)> {
    let mut by_id: BTreeMap<String, (MappedTenant, Option<&'v TenantRow>)> =
        shared.mapping().into_iter().map(|m| (m.tenant.clone(), (m, None))).collect();
    for row in view.map(|v| v.tenants.as_slice()).unwrap_or_default() {
        let id = row.tenant.to_string();
        let entry = by_id.entry(id.clone()).or_insert_with(|| {
            (
                MappedTenant {
                    tenant: id,
                    tenant_name: None,
                    account_id: None,
                    account_name: None,
                    active: None,
                    problem: None,
                    source: None,
                },
                None,
            )
        });
        let m = &mut entry.0;
        if m.tenant_name.is_none() {
            m.tenant_name.clone_from(&row.tenant_name);
        }
        if row.source != m.source {
            // Edited since the engine's last tick: the stored mapping is what it will take.
            m.problem = None;
            m.source = row.source;
        }
        match &row.account {
            // The file's entries are the engine's to resolve; it knows their accounts.
            Some(_) if row.source == Some(MappingSource::File) && m.source == row.source => {}
            Some(a) => {
                let known = !a.account_name.is_empty();
                if m.account_id != Some(a.account_id) || known {
                    m.account_name = known.then(|| a.account_name.clone());
                    m.active = known.then_some(a.active);
                }
                m.account_id = Some(a.account_id);
            }
            None if row.source.is_none() => {
                m.account_id = None;
                m.account_name = None;
                m.active = None;
            }
            None => {}
        }
        entry.1 = Some(row);
    }
    by_id.into_values().collect()
}

fn rows(
    shared: &Shared,
    view: Option<&MappingView>,
    successes: &BTreeMap<String, Option<DateTime<Utc>>>,
) -> (Vec<Row>, bool) {
    let mut mapped = merged(shared, view);
    let open = open_tickets(shared);
    // A tenant with open tickets that the mapping no longer lists still shows.
    if let Some(open) = &open {
        for tenant in open.keys() {
            if !mapped.iter().any(|(m, _)| &m.tenant == tenant) {
                mapped.push((
                    MappedTenant {
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
                    },
                    None,
                ));
            }
        }
    }
    mapped.sort_by(|(a, _), (b, _)| {
        let key = |m: &MappedTenant| m.tenant_name.clone().unwrap_or_else(|| m.tenant.clone()).to_lowercase();
        key(a).cmp(&key(b)).then_with(|| a.tenant.cmp(&b.tenant))
    });
    let lookups = mapped.len() * successes.len() <= MAX_CURSOR_LOOKUPS;
    let rows = mapped
        .into_iter()
        .map(|(m, row)| {
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
            Row {
                listed_by: row.and_then(|r| r.listed_by.clone()),
                source: m.source,
                editable: row.is_some(),
                suggestions: row.map(|r| r.suggestions.clone()).unwrap_or_default(),
                mapped: m,
                sources,
                open,
            }
        })
        .collect();
    (rows, lookups)
}

pub(crate) async fn page(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    let flash = s.sessions.take_flash(&session.id);
    render(&s, &session, &flash, StatusCode::OK)
}

/// The Mapping page with `flash`, answered with `status` (a refused edit shows the page as it
/// is now, with the refusal).
pub(crate) fn render(s: &UiState, session: &SessionView, flash: &[Flash], status: StatusCode) -> Response {
    let shared = &s.admin.shared;
    let now = Utc::now();
    let successes = shared.health.source_successes();
    let view = mapping_ops::view(&*shared.store, &super::mapping_edit::file_mapping(&s.admin))
        .map_err(|e| tracing::warn!(error = %e, "cannot read the mapping for the Mapping page"))
        .ok();
    let (rows, lookups) = rows(shared, view.as_ref(), &successes);
    let psa = super::psa::check(shared);
    let sources = super::psa::check_sources(shared);
    let psa_name = shared.presentation.with(|p| p.psa_name);
    let qualifying = super::mapping_edit::would_accept(&s.admin).map(|a| a.len()).unwrap_or(0);
    let edit = view.as_ref().map(|v| Edit { csrf: &session.csrf, revision: v.revision });
    let body = html! {
        (widgets::psa_banner(&psa, shared.catalog().is_some()))
        (widgets::source_banner(&sources))
        h1 id="page-title" { "Mapping" }
        p.state { "Each tenant, the " (psa_name) " account its tickets go to, and how it is doing. Map an unmapped tenant to one of its suggestions or to any account; its held events are decided once the daemon takes the mapping (within a few seconds)." }
        @if view.is_none() {
            div.flash.error role="alert" id="mapping-unreadable" { p { "The stored mapping cannot be read now (see the daemon's log), so nothing can be changed here." } }
        }
        @if let Some(v) = &view {
            @if v.unmapped > 0 {
                form method="get" action="/ui/mapping/accept" class="accept-all" id="accept-all-form" {
                    button type="submit" id="accept-all" { "Accept all suggestions above 90 %" }
                    " "
                    span.hint id="accept-all-count" {
                        @match qualifying {
                            0 => "No unmapped tenant has an active, unambiguous suggestion of 90 % or more.",
                            1 => "1 tenant has an active, unambiguous suggestion of 90 % or more; you confirm the list first.",
                            n => { (n) " tenants have an active, unambiguous suggestion of 90 % or more; you confirm the list first." }
                        }
                    }
                }
            }
            (accounts_list(&v.accounts))
        }
        (tenants_table(&rows, psa_name, now, lookups, edit.as_ref()))
        (sources_table(&successes, now))
    };
    let html = layout::page(
        &Frame {
            title: "Mapping",
            tab: Some(Tab::Mapping),
            current: None,
            dirty: &[],
            csrf: Some(&session.csrf),
            flash,
            unmapped: view.as_ref().map_or(0, |v| v.unmapped),
        },
        body,
    );
    (status, Html(html)).into_response()
}

/// What the editing controls need.
struct Edit<'a> {
    csrf: &'a str,
    revision: u64,
}

/// An account as the search box offers it: its name and id (and "inactive").
pub(crate) fn account_choice(a: &Account) -> String {
    if a.active { format!("{} (id {})", a.name, a.id) } else { format!("{} (id {}, inactive)", a.name, a.id) }
}

/// One list of every account, for every search box on the page.
fn accounts_list(accounts: &[Account]) -> Markup {
    html! {
        datalist id="accounts-list" {
            @for a in accounts {
                option value=(account_choice(a)) {}
            }
        }
    }
}

fn active_words(m: &MappedTenant) -> &'static str {
    match m.active {
        Some(true) => "Active",
        Some(false) => "Inactive: no tickets",
        None => "No account",
    }
}

fn hidden(edit: &Edit<'_>, tenant: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(edit.csrf);
        input type="hidden" name="revision" value=(edit.revision);
        input type="hidden" name="tenant" value=(tenant);
    }
}

/// A score as a whole percentage (rounded down, so 89.6 % does not read as 90 %).
pub(crate) fn percent(score: f64) -> String {
    format!("{} %", (score * 100.0).floor() as u32)
}

/// The controls of one row: read-only for a file entry, Unmap for a stored one, the suggestions
/// and the search box for an unmapped one.
fn change_cell(r: &Row, edit: Option<&Edit<'_>>, index: usize) -> Markup {
    let tenant = &r.mapped.tenant;
    html! {
        @match (r.source, edit) {
            (Some(MappingSource::File), _) => {
                span.readonly.from-file { "From the file" }
                span.sub { "Read-only here: change it in the configuration file." }
            }
            (_, None) => { "Cannot be changed now" }
            (_, Some(_)) if !r.editable => { "Not listed by a source" }
            (Some(MappingSource::Store), Some(edit)) => {
                form method="post" action="/ui/mapping/unset" class="inline-form" {
                    (hidden(edit, tenant))
                    button type="submit" class="unmap" { "Unmap" }
                }
            }
            (None, Some(edit)) => {
                @if r.suggestions.is_empty() {
                    span.sub { "No account has an alike name." }
                } @else {
                    ul.suggestions aria-label="Suggestions" {
                        @for sug in &r.suggestions {
                            li data-account=(sug.account_id) {
                                form method="post" action="/ui/mapping/set" class="inline-form" {
                                    (hidden(edit, tenant))
                                    input type="hidden" name="account" value=(sug.account_id);
                                    span.suggestion {
                                        (sug.account_name) " "
                                        span.score { (percent(sug.score)) }
                                        @if !sug.active { " " span.inactive { "inactive" } }
                                    }
                                    " "
                                    button type="submit" class="map" { "Map" }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/ui/mapping/set" class="inline-form search" {
                    (hidden(edit, tenant))
                    label for={ "search-" (index) } { "Any account" }
                    input type="text" id={ "search-" (index) } name="account_search" list="accounts-list" autocomplete="off" placeholder="Type a name or id" required;
                    button type="submit" class="map-search" { "Map" }
                }
            }
        }
    }
}

fn tenants_table(rows: &[Row], psa: &str, now: DateTime<Utc>, lookups: bool, edit: Option<&Edit<'_>>) -> Markup {
    html! {
        h2 id="tenants-h" { "Tenants" }
        @if rows.is_empty() {
            p.note id="mapping-empty" {
                "No tenant is mapped or listed yet: the mapping is resolved once the PSA's accounts and the sources' tenants have been read."
            }
        } @else {
            div.table-wrap {
                table.data.cards.mapping id="mapping-table" aria-labelledby="tenants-h" {
                    thead {
                        tr {
                            th scope="col" { "Tenant" }
                            th scope="col" { "Listed by" }
                            th scope="col" { (psa) " account" }
                            th scope="col" { "Active" }
                            th scope="col" { "Problem" }
                            th scope="col" { "Last successful read" }
                            th scope="col" { "Open tickets" }
                            th scope="col" { "Change" }
                        }
                    }
                    tbody {
                        @for (i, r) in rows.iter().enumerate() {
                            @let m = &r.mapped;
                            tr data-tenant=(m.tenant) class=[m.problem.is_some().then_some("bad")] {
                                th scope="row" data-label="Tenant" {
                                    @match &m.tenant_name {
                                        Some(n) if *n != m.tenant => { (n) span.sub { (m.tenant) } }
                                        _ => (m.tenant),
                                    }
                                }
                                td data-label="Listed by" {
                                    @match &r.listed_by { Some(s) => (source_words(s)), None => "Not listed now" }
                                }
                                td data-label={ (psa) " account" } {
                                    @match (&m.account_name, m.account_id) {
                                        (Some(n), Some(id)) => { (n) span.sub { "id " (id) } }
                                        (None, Some(id)) => { "id " (id) }
                                        (Some(n), None) => (n),
                                        (None, None) => "None",
                                    }
                                    @if r.source == Some(MappingSource::File) {
                                        span.sub.from-file { "from the file" }
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
                                td data-label="Change" { (change_cell(r, edit, i)) }
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
