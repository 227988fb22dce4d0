//! The Activity page: recent decisions, newest first, from the audit ([`crate::audit::query`]),
//! each with its plain words, what became of its ticket since (read from the ledger now) and the
//! rules revision that decided it. A GET form filters by tenant, product, outcome and since; its
//! fields map one to one onto [`DecisionQuery`], and a value that does not parse is answered
//! with the page, the field named, and no table (400), never with an internal error.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use maud::{Markup, html};
use ticketing_core::model::Product;

use super::layout::{self, Frame, Tab};
use super::widgets;
use super::{UiState, to_login};
use crate::audit::Explained;
use crate::store::{DecisionQuery, Outcome};

/// At most this many decisions on the page (the newest); the page says when there are more.
pub(crate) const SHOWN: usize = 200;

/// The filter form as submitted (every field as typed, for echoing back).
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    tenant: String,
    product: String,
    outcome: String,
    since: String,
}

impl Filters {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| {
            pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default()
        };
        Self { tenant: get("tenant"), product: get("product"), outcome: get("outcome"), since: get("since") }
    }

    /// The query these filters ask, or each field that does not parse, named, in words.
    pub(crate) fn query(&self) -> Result<DecisionQuery, Vec<String>> {
        let mut problems = Vec::new();
        let product = match self.product.as_str() {
            "" => None,
            p => Product::from_code(p).or_else(|| {
                problems.push(format!(
                    "Product: there is no product \u{201c}{p}\u{201d}. Pick one from the list, or all products."
                ));
                None
            }),
        };
        let outcome = match self.outcome.as_str() {
            "" => None,
            o => o.parse::<Outcome>().ok().or_else(|| {
                problems.push(format!(
                    "Outcome: \u{201c}{o}\u{201d} is not an outcome. Pick Ticketed, Not ticketed or Closed, or all outcomes."
                ));
                None
            }),
        };
        let since = match self.since.as_str() {
            "" => None,
            t => parse_since(t).or_else(|| {
                problems.push(format!(
                    "Since: \u{201c}{t}\u{201d} is not a date and time. Write it like 2026-12-01 or 2026-12-01 14:30 (UTC)."
                ));
                None
            }),
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(DecisionQuery {
            tenant: (!self.tenant.is_empty()).then(|| self.tenant.clone()),
            product,
            since,
            outcome,
            // One more than shown: tells whether there are more.
            limit: SHOWN + 1,
            ..DecisionQuery::default()
        })
    }
}

/// A "since" value: RFC 3339, or a date with an optional time of day (UTC), with a space or a
/// `T` between them (what a `datetime-local` field sends).
pub(crate) fn parse_since(t: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Some(at.with_timezone(&Utc));
    }
    let t = t.replacen('T', " ", 1);
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(&t, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// An outcome in words.
pub(crate) fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::Ticketed => "Ticketed",
        Outcome::Skipped => "Not ticketed",
        Outcome::Closed => "Closed",
        Outcome::Noted => "Noted on its open ticket",
        Outcome::Stormed => "Added to a storm ticket",
    }
}

/// A sentence's first letter in upper case.
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The decision's words; a plain "ticketed" (all the audit records for a create) says what
/// that means.
fn why_words(d: &crate::store::Decision) -> String {
    match (d.outcome, d.detail.trim()) {
        (Outcome::Ticketed, "ticketed" | "") => "Its rule is on: a ticket was planned".to_owned(),
        (_, detail) => sentence(detail),
    }
}

/// What the page shows.
struct View<'a> {
    filters: &'a Filters,
    /// Tenant id → name, for the tenant drop-down and column.
    names: &'a BTreeMap<String, Option<String>>,
    /// The decisions, or the problems with the filters / why they cannot be read.
    found: Result<&'a [Explained], Vec<String>>,
    /// Whether there are more than [`SHOWN`].
    more: bool,
    /// The PSA request budget as last reported (what waits for it is shown).
    budget: crate::metrics::Budget,
}

pub(crate) async fn page(
    State(s): State<UiState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    let shared = &s.admin.shared;
    let filters = Filters::from_pairs(&pairs);
    let mut names: BTreeMap<String, Option<String>> =
        shared.mapping().into_iter().map(|m| (m.tenant, m.tenant_name)).collect();
    let (status, found) = match filters.query() {
        Err(problems) => (StatusCode::BAD_REQUEST, Err(problems)),
        Ok(q) => match crate::audit::query(shared.store.as_ref(), &q) {
            Ok(found) => (StatusCode::OK, Ok(found)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the decisions for the Activity page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Err(vec!["The decisions cannot be read now: the store failed (see the daemon's log).".to_owned()]),
                )
            }
        },
    };
    let (found, more) = match &found {
        Ok(f) => {
            for e in f {
                names.entry(e.decision.tenant.to_string()).or_default();
            }
            (Ok(&f[..f.len().min(SHOWN)]), f.len() > SHOWN)
        }
        Err(p) => (Err(p.clone()), false),
    };
    if !filters.tenant.is_empty() {
        names.entry(filters.tenant.clone()).or_default();
    }
    let psa = super::psa::check(shared);
    let sources = super::psa::check_sources(shared);
    let flash = s.sessions.take_flash(&session.id);
    let body = html! {
        (widgets::psa_banner(&psa, shared.catalog().is_some()))
        (widgets::source_banner(&sources))
        (body(&View { filters: &filters, names: &names, found, more, budget: shared.metrics.budget() }))
        (super::users::changes_view(&s))
    };
    let html = layout::page(
        &Frame {
            title: "Activity",
            tab: Some(Tab::Activity),
            current: None,
            dirty: &[],
            csrf: Some(&session.csrf),
            flash: &flash,
            unmapped: super::mapping_edit::unmapped(&s.admin),
        },
        body,
    );
    (status, Html(html)).into_response()
}

fn tenant_label(id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) if n != id => format!("{n} ({id})"),
        _ => id.to_owned(),
    }
}

fn filter_form(v: &View<'_>) -> Markup {
    let f = v.filters;
    html! {
        form.filters method="get" action="/ui/activity" id="activity-filters" role="search" aria-label="Filter the decisions" {
            div.field {
                label for="f-tenant" { "Tenant" }
                select id="f-tenant" name="tenant" {
                    option value="" selected[f.tenant.is_empty()] { "All tenants" }
                    @for (id, name) in v.names {
                        option value=(id) selected[*id == f.tenant] { (tenant_label(id, name.as_deref())) }
                    }
                }
            }
            div.field {
                label for="f-product" { "Product" }
                select id="f-product" name="product" {
                    option value="" selected[f.product.is_empty()] { "All products" }
                    @for p in Product::ALL {
                        option value=(p.code()) selected[p.code() == f.product] { (p.display_name()) }
                    }
                }
            }
            div.field {
                label for="f-outcome" { "Outcome" }
                select id="f-outcome" name="outcome" {
                    option value="" selected[f.outcome.is_empty()] { "All outcomes" }
                    @for o in [Outcome::Ticketed, Outcome::Skipped, Outcome::Closed, Outcome::Noted, Outcome::Stormed] {
                        option value=(o.code()) selected[o.code() == f.outcome] { (outcome_words(o)) }
                    }
                }
            }
            div.field {
                label for="f-since" { "Since (UTC)" }
                input type="text" id="f-since" name="since" value=(f.since) placeholder="2026-12-01 14:30" autocomplete="off";
            }
            div.filter-actions {
                button type="submit" id="filter-apply" class="primary" { "Show" }
                a href="/ui/activity" id="filter-clear" { "Clear filters" }
            }
        }
    }
}

fn subject(e: &Explained) -> Markup {
    let d = &e.decision;
    let computer = d.device_name.as_deref().or(d.device.as_deref());
    html! {
        @if let Some(c) = computer { "Computer " (c) }
        @if let Some(ev) = &d.event_id {
            @if computer.is_some() { span.sub { "Event " (ev) } } @else { "Event " (ev) }
        }
        @if computer.is_none() && d.event_id.is_none() { "\u{2014}" }
    }
}

fn table(v: &View<'_>, found: &[Explained]) -> Markup {
    html! {
        div.table-wrap {
            table.data.cards id="activity-table" {
                caption.vh { "Decisions, newest first" }
                thead {
                    tr {
                        th scope="col" { "Time (UTC)" }
                        th scope="col" { "Product" }
                        th scope="col" { "Tenant" }
                        th scope="col" { "Computer / event" }
                        th scope="col" { "Outcome" }
                        th scope="col" { "Why" }
                        th scope="col" { "Ticket now" }
                        th scope="col" { "Rules revision" }
                    }
                }
                tbody {
                    @for e in found {
                        @let d = &e.decision;
                        @let tenant = d.tenant.to_string();
                        @let name = v.names.get(&tenant).cloned().flatten();
                        tr data-outcome=(d.outcome.code()) {
                            td data-label="Time (UTC)" { time datetime=(d.at.to_rfc3339()) { (d.at.format("%Y-%m-%d %H:%M:%S")) } }
                            td data-label="Product" { (d.product.display_name()) }
                            td data-label="Tenant" {
                                @match &name {
                                    Some(n) if *n != tenant => { (n) span.sub { (tenant) } }
                                    _ => (tenant),
                                }
                            }
                            td data-label="Computer / event" { (subject(e)) }
                            td data-label="Outcome" class={ "outcome-" (d.outcome.code()) } { (outcome_words(d.outcome)) }
                            td data-label="Why" { (why_words(d)) }
                            td data-label="Ticket now" {
                                @match &e.ticket { Some(t) => (sentence(t)), None => "No ticket" }
                            }
                            td data-label="Rules revision" { (d.revision) }
                        }
                    }
                }
            }
        }
    }
}

fn body(v: &View<'_>) -> Markup {
    let filtered = !(v.filters.tenant.is_empty()
        && v.filters.product.is_empty()
        && v.filters.outcome.is_empty()
        && v.filters.since.is_empty());
    html! {
        h1 id="page-title" { "Activity" }
        p.state { "What the integration decided about each event and each change of a computer's status, newest first, in words, with what became of the ticket since." }
        @if v.budget.waiting > 0 {
            p.flash.warning id="budget-waiting" role="status" {
                (v.budget.waiting) " PSA calls wait for the request budget ("
                (v.budget.used) " of " (v.budget.effective) " requests used this hour). Notes and updates wait first and Critical tickets go first; nothing is dropped: they are sent as the hour frees requests."
            }
        }
        (filter_form(v))
        @match &v.found {
            Err(problems) => {
                div.flash.error role="alert" id="filter-error" {
                    p { "No decisions shown: fix the filter above." }
                    ul { @for p in problems { li { (p) } } }
                }
            }
            Ok(found) if found.is_empty() => {
                p.note id="activity-count" {
                    @if filtered { "No decision matches these filters." }
                    @else { "No decision recorded yet: one is recorded for every event read and every change of a computer's status." }
                }
            }
            Ok(found) => {
                p.note id="activity-count" {
                    @if v.more {
                        "Showing the newest " (SHOWN) " decisions; there are more. Narrow the filters (a tenant, a product, an outcome or a later since) to see older ones."
                    } @else if found.len() == 1 {
                        "1 decision"
                        @if filtered { " matches these filters" }
                        "."
                    } @else {
                        (found.len()) " decisions"
                        @if filtered { " match these filters" }
                        ", newest first."
                    }
                }
                (table(v, found))
                p.hint { "Decisions are kept as long as the event history. The ticket's state is read from the ledger now; the words were written when it was decided." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_times_and_rfc3339() {
        let at = |s: &str| parse_since(s).map(|t| t.to_rfc3339());
        assert_eq!(at("2026-12-01").as_deref(), Some("2026-12-01T00:00:00+00:00"));
        assert_eq!(at("2026-12-01 14:30").as_deref(), Some("2026-12-01T14:30:00+00:00"));
        assert_eq!(at("2026-12-01T14:30").as_deref(), Some("2026-12-01T14:30:00+00:00"));
        assert_eq!(at("2026-12-01T14:30:00+01:00").as_deref(), Some("2026-12-01T13:30:00+00:00"));
        assert_eq!(at("yesterday"), None);
        assert_eq!(at("2026-13-01"), None);
    }

    #[test]
    fn each_bad_field_is_named() {
        let f = Filters { product: "nope".into(), outcome: "maybe".into(), since: "soon".into(), ..Filters::default() };
        let e = f.query().unwrap_err();
        assert_eq!(e.len(), 3);
        assert!(e[0].starts_with("Product:") && e[1].starts_with("Outcome:") && e[2].starts_with("Since:"), "{e:?}");
        let f = Filters {
            tenant: "t1".into(),
            product: "office365".into(),
            outcome: "skipped".into(),
            since: String::new(),
        };
        let q = f.query().unwrap();
        assert_eq!(
            (q.tenant.as_deref(), q.product, q.outcome),
            (Some("t1"), Some(Product::Office365), Some(Outcome::Skipped))
        );
    }
}
