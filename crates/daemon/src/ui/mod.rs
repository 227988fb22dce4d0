//! The Ticketing tab in the browser, served on the admin listener.
//!
//! Server-rendered pages under a bar linking Ticketing rules, Activity and Mapping: the rules are
//! one page per [`Section`] with a left pane listing them all, over the same
//! operations as the admin API and the CLI ([`crate::rules_ops`]). Plain HTML forms that POST and
//! redirect, so everything works without JavaScript; a small embedded script only adds
//! conveniences: the Edit window as a modal `<dialog>` with the count of selected rows (without
//! JavaScript its fields show under the table), issue subtypes filtered by the chosen issue
//! type, a warning before leaving a section with unsaved inline edits, the left pane folding
//! behind a button on narrow screens.
//!
//! Save changes posts the page's inline edits with it: they go into the draft and the section
//! is saved in one request. A banner says when the PSA does not answer or its catalog is stale
//! (derived from the PSA-call counters, see [`psa`]), and Save changes is refused meanwhile.
//!
//! Routes (none clashes with the admin API's `/healthz`, `/metrics`, `/api/...`):
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `GET /ui` | redirect to the General section (or the login form) |
//! | `GET /ui/login`, `POST /ui/login` | log in with a user name and password (or, with no name, the admin token) |
//! | `POST /ui/logout` | end the session |
//! | `GET /ui/section?s=events/security_center&days=7` | a section's page, with the draft's preview |
//! | `POST /ui/rows`, `POST /ui/general` | inline edits of a section's rows / general settings into the draft only (API-style; the page itself has no such button) |
//! | `POST /ui/bulk-edit` | the Edit window: the page's inline edits, then one patch to every selected row |
//! | `POST /ui/save`, `POST /ui/cancel`, `POST /ui/reset` | Save changes (with the page's inline edits), Cancel changes, Reset to defaults |
//! | `POST /ui/maintenance/add`, `POST /ui/maintenance/remove` | General: add a maintenance window to the draft (with the page's inline edits; refused in words next to its fields, 422) / remove one ([`maintenance`]) |
//! | `GET /ui/activity?tenant=&product=&outcome=&since=` | recent decisions, newest first, filtered ([`activity`]) |
//! | `GET /ui/text?row=…` | a row's ticket text editor: title and description templates, the fields, a sample ticket ([`text`]) |
//! | `POST /ui/text/preview`, `/ui/text/apply`, `/ui/text/default` | render the typed text's sample ticket (nothing changes) / put it into the draft / back to the default text in the draft (refused in words next to its field, 422) |
//! | `GET /ui/mapping` | each tenant → PSA account, active, problem, last successful read, open tickets; per unmapped tenant its suggestions and a search over all accounts ([`mapping`]) |
//! | `POST /ui/mapping/set`, `/ui/mapping/unset` | map a tenant to an account / unmap it, at the page's mapping revision (stale: 409) ([`mapping_edit`]) |
//! | `GET /ui/mapping/accept`, `POST /ui/mapping/accept` | the confirmation listing what "Accept all suggestions above 90 %" maps / map exactly those |
//! | `GET /ui/setup` | the PSA and each source reached or not, tenants mapped/unmapped, rule rows on, each with where it is fixed ([`setup`]) |
//! | `GET /ui/users`; `POST /ui/users/{add,remove,role,password,token,revoke}` | admins only: users, roles, passwords, API tokens (a new token shown once) ([`users`]); the Activity page's Changes table is [`users::changes_view`] |
//! | `GET /ui/assets/ui.css`, `ui.js`, `nojs.css` | the embedded style sheets and script (`?v=` their version: cached for good; past the rate limit) |
//!
//! Login takes a user name and password (or the configured `admin.token` as the password with no
//! name) and starts a session kept in the store, whose random id goes into an
//! `HttpOnly; SameSite=Strict` cookie; no password or token is ever put in the cookie. Every
//! route's role is checked by [`crate::gate`] before its handler runs. Every POST other than the login carries the session's CSRF token in a hidden field
//! and is refused (403) without it.

mod activity;
mod assets;
mod edit_window;
mod layout;
mod maintenance;
mod mapping;
mod mapping_edit;
mod preview;
mod psa;
mod render;
mod rules_table;
mod session;
mod setup;
mod storm_fields;
mod text;
mod users;
mod widgets;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use serde::Deserialize;
use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::edit::{GeneralPatch, RulePatch};
use ticketing_core::model::{PsaId, TenantId};
use ticketing_core::rules::{RowId, Section};

use crate::admin::{AdminState, constant_time_eq};
use crate::engine::Shared;
use crate::rules_ops::{self, OpError, Preview};
use layout::{Frame, Tab};
use render::{SectionView, StatusCounts, section_href};
use session::{Flash, SessionView, Sessions};
use widgets::shown;

#[derive(Clone)]
struct UiState {
    admin: AdminState,
    sessions: Arc<Sessions>,
    /// Password logins and their lockout.
    logins: Arc<crate::access::login::Logins>,
}

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = session::COOKIE;

/// A page refusing a request, with its reason.
pub(crate) fn refused_page(text: &str) -> String {
    layout::refused(text)
}

/// The UI's routes, merged into the admin listener's router.
pub fn router(state: AdminState) -> Router {
    let gate = axum::middleware::from_fn_with_state(state.clone(), crate::gate::ui);
    let sessions = Arc::new(Sessions::new(state.shared.store.clone(), state.access.clone()));
    let ui = UiState { admin: state, sessions, logins: Arc::default() };
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/section", get(section_page))
        .route("/ui/activity", get(activity::page))
        .route("/ui/mapping", get(mapping::page))
        .route("/ui/mapping/set", post(mapping_edit::set))
        .route("/ui/mapping/unset", post(mapping_edit::unset))
        .route("/ui/mapping/accept", get(mapping_edit::confirm_accept).post(mapping_edit::accept))
        .route("/ui/setup", get(setup::page))
        .route("/ui/rows", post(rows))
        .route("/ui/general", post(rows))
        .route("/ui/bulk-edit", post(bulk_edit))
        .route("/ui/save", post(save))
        .route("/ui/cancel", post(cancel))
        .route("/ui/reset", post(reset))
        .route("/ui/maintenance/add", post(window_add))
        .route("/ui/maintenance/remove", post(window_remove))
        .route("/ui/text", get(text::page))
        .route("/ui/text/preview", post(text::preview))
        .route("/ui/text/apply", post(text::apply))
        .route("/ui/text/default", post(text::use_default))
        .route(assets::CSS.path, assets::route(&assets::CSS))
        .route(assets::NOJS_CSS.path, assets::route(&assets::NOJS_CSS))
        .route(assets::JS.path, assets::route(&assets::JS))
        .merge(users::routes())
        .route_layer(gate)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(ui)
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages are never kept; an asset says itself how long it may be (see `assets`).
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

async fn home(State(s): State<UiState>, headers: HeaderMap) -> Response {
    match s.sessions.lookup(&headers) {
        Some(_) => Redirect::to(&section_href(Section::General)).into_response(),
        None => to_login(),
    }
}

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Where a login goes: the Setup page when it asked (`next=setup`), else the General section.
/// Only known names, so a link cannot send the login elsewhere.
fn after_login(next: &str) -> (Option<&'static str>, String) {
    match next {
        "setup" => (Some("setup"), "/ui/setup".to_owned()),
        _ => (None, section_href(Section::General)),
    }
}

async fn login_page(State(s): State<UiState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let (next, to) = after_login(&q.next);
    if s.sessions.lookup(&headers).is_some() {
        return Redirect::to(&to).into_response();
    }
    Html(layout::login(None, next)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    /// The admin token under its former field name (scripts that log in the old way).
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// A user name and password, or (no name) the admin token. A refusal says what happened
/// (no match, locked for a while) without saying whether the user exists.
async fn login(State(s): State<UiState>, Form(f): Form<LoginForm>) -> Response {
    let (next, to) = after_login(&f.next);
    let settings = &s.admin.access;
    let user = f.user.trim();
    let secret = if f.password.is_empty() { f.token.as_str() } else { f.password.as_str() };
    let admin_token = s.admin.token.expose();
    let outcome = if user.is_empty() {
        if !admin_token.is_empty() && constant_time_eq(secret.as_bytes(), admin_token.as_bytes()) {
            Ok(None)
        } else {
            Err(crate::access::login::Refused::Invalid)
        }
    } else {
        match s.admin.shared.store.access() {
            Some(store) => s.logins.password(store, settings, user, secret).map(|u| Some(u.name)),
            None => Err(crate::access::login::Refused::Invalid),
        }
    };
    let refused = match outcome {
        Ok(who) => match s.sessions.create(who.as_deref()) {
            Some(id) => return ([(header::SET_COOKIE, session::set_cookie(&id))], Redirect::to(&to)).into_response(),
            None => crate::access::login::Refused::Unavailable,
        },
        Err(r) => r,
    };
    let code = match refused {
        crate::access::login::Refused::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        crate::access::login::Refused::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        crate::access::login::Refused::Invalid => StatusCode::UNAUTHORIZED,
    };
    let page = Html(layout::login(Some(&refused.message(settings.clock.now())), next));
    match refused {
        crate::access::login::Refused::Locked { until } => {
            let wait = (until - settings.clock.now()).num_seconds().max(1);
            (code, [(header::RETRY_AFTER, wait.to_string())], page).into_response()
        }
        _ => (code, page).into_response(),
    }
}

/// The submitted form, as name/value pairs (names repeat: `row`, `select`).
struct FormData(Vec<(String, String)>);

impl FormData {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn refused(status: StatusCode, text: &str) -> Response {
    (status, Html(layout::refused(text))).into_response()
}

/// A logged-in session whose form carries its CSRF token, or the response refusing the request.
fn guard(s: &UiState, headers: &HeaderMap, form: &FormData) -> Result<SessionView, Box<Response>> {
    let Some(session) = s.sessions.lookup(headers) else {
        return Err(Box::new(refused(
            StatusCode::UNAUTHORIZED,
            "You are not logged in (or the session expired). Log in again.",
        )));
    };
    let sent = form.get("csrf").unwrap_or_default();
    if sent.is_empty() || !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
        return Err(Box::new(refused(
            StatusCode::FORBIDDEN,
            "The form's CSRF token is missing or wrong, so nothing was changed. Reload the page and try again.",
        )));
    }
    Ok(session)
}

fn form_section(form: &FormData) -> Result<Section, Box<Response>> {
    form.get("section")
        .unwrap_or_default()
        .parse::<Section>()
        .map_err(|e| Box::new(refused(StatusCode::BAD_REQUEST, &e.to_string())))
}

async fn logout(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let form = FormData(pairs);
    let session = match guard(&s, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    s.sessions.remove(&session.id);
    ([(header::SET_COOKIE, session::clear_cookie())], Redirect::to("/ui/login")).into_response()
}

fn ok(text: impl Into<String>) -> Flash {
    Flash { kind: "ok", text: text.into(), details: Vec::new() }
}

fn error(text: impl Into<String>, details: Vec<String>) -> Flash {
    Flash { kind: "error", text: text.into(), details }
}

/// An operation's failure in words. A refused save names its count only: each problem is listed
/// once, in the page's problem list (which is the same validation of the same draft).
fn op_error(e: OpError) -> Flash {
    match e {
        OpError::Refused { section, problems } => error(
            format!(
                "Save refused: {} in {}, listed under \u{201c}Problems\u{201d} below. Nothing was saved.",
                if problems.len() == 1 { "1 problem".to_owned() } else { format!("{} problems", problems.len()) },
                section.title()
            ),
            Vec::new(),
        ),
        OpError::Store(e) => {
            tracing::error!(error = %e, "ui request failed");
            error("Internal error: the store failed (see the daemon's log).", Vec::new())
        }
        OpError::NoCatalog => error(
            "The PSA catalog has not been read yet, so values cannot be checked. Nothing was saved; try again shortly.",
            Vec::new(),
        ),
        OpError::Conflict { revision, .. } => error(
            format!(
                "Changed elsewhere: the rules were saved by someone else meanwhile (now revision {revision}). Reload the page, then try again."
            ),
            Vec::new(),
        ),
        OpError::Problems { problems, .. } => error(
            "Not applied:",
            problems
                .iter()
                .map(|p| match &p.problem {
                    ticketing_core::rules::Problem::InvalidWindow { window, message } => {
                        maintenance::problem_words("Maintenance window", window, message)
                    }
                    _ => render::problem_text(p, crate::backends::guide_label),
                })
                .collect(),
        ),
        OpError::Invalid(text) => {
            tracing::warn!(error = %text, "ui edit refused");
            error("The edit was not applied: a value is out of range or does not apply to a selected row.", Vec::new())
        }
    }
}

/// A submitted drop-down value: blank means no value.
fn label_value(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// A whole number within `range`, or the reason in words.
fn whole(v: &str, what: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{what} must be a whole number from {} to {}, not \u{201c}{}\u{201d}",
            range.start(),
            range.end(),
            v.trim()
        )),
    }
}

fn number(v: &str, what: &str, row: &RowId, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    whole(v, what, range).map_err(|e| format!("\u{201c}{}\u{201d}: {e}", row.label()))
}

/// Applies the inline fields of the form (the table's row controls, or the general settings)
/// to the draft. Only fields whose submitted value differs from what the page showed count as
/// changes, so a value the PSA lost (shown blank) stays as stored unless the user picks one.
/// Returns how many rows (or settings) changed, and the edits refused.
fn apply_inline(shared: &Shared, section: Section, form: &FormData) -> (usize, Vec<String>) {
    let draft = shared.rules.with(|b| b.draft.clone());
    inline_edits(shared, &draft, section, form, &mut |edit| match edit {
        Edit::General(patch) => rules_ops::edit_general(shared, &patch, None).map(drop),
        Edit::Row(row, patch) => rules_ops::bulk_edit(shared, std::slice::from_ref(&row), &patch, None).map(drop),
        Edit::Follows(product, on) => rules_ops::set_priority_follows_severity(shared, product, on, None).map(drop),
    })
}

/// One inline edit of a section page.
enum Edit {
    General(GeneralPatch),
    Row(RowId, RulePatch),
    /// A status section's priority-follows-severity switch.
    Follows(ticketing_core::model::Product, bool),
}

/// Turns the inline edits of a section's form into [`Edit`]s against `draft` and hands each to
/// `write` (the store, or a scratch copy to show a refused page with the user's edits kept).
fn inline_edits(
    shared: &Shared,
    draft: &ticketing_core::rules::RuleSet,
    section: Section,
    form: &FormData,
    write: &mut dyn FnMut(Edit) -> Result<(), OpError>,
) -> (usize, Vec<String>) {
    let catalog = shared.catalog();
    let cat = catalog.as_ref();
    let mut errors = Vec::new();
    if section == Section::General {
        let g = &draft.general;
        let mut patch = GeneralPatch::default();
        let mut changed = 0;
        for (field, current, target) in [
            (Field::TicketSource, &g.ticket_source, &mut patch.ticket_source),
            (Field::NewStatus, &g.new_status, &mut patch.new_status),
            (Field::ClosedStatus, &g.closed_status, &mut patch.closed_status),
        ] {
            if let Some(v) = form.get(&format!("general.{}", field.name())) {
                let v = label_value(v);
                if v != shown(cat, field, current.as_deref()) {
                    *target = Some(v);
                    changed += 1;
                }
            }
        }
        if changed > 0 {
            if let Err(e) = write(Edit::General(patch)) {
                errors.push(op_error(e).text);
            }
        }
        return (changed, errors);
    }
    let listed: BTreeSet<&str> = form.all("row").collect();
    let mut changed = 0;
    for row in section.rows() {
        let r = row.to_string();
        if !listed.contains(r.as_str()) {
            continue;
        }
        let rule = draft.rule(&row).cloned().unwrap_or_else(|| row.default_rule());
        let mut patch = RulePatch::default();
        let enabled = form.get(&format!("enabled.{r}")).is_some();
        if enabled != rule.enabled {
            patch.enabled = Some(enabled);
        }
        let mut bad = false;
        if rule.lifetime_days.is_some() {
            if let Some(v) = form.get(&format!("lifetime.{r}")) {
                match number(v, "Lifetime, days", &row, ticketing_core::rules::LIFETIME_RANGE) {
                    Ok(d) if Some(d) != rule.lifetime_days => patch.lifetime_days = Some(d),
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(e);
                        bad = true;
                    }
                }
            }
        }
        if let Some(v) = form.get(&format!("due.{r}")) {
            match number(v, "Due, hours", &row, ticketing_core::rules::DUE_HOURS_RANGE) {
                Ok(h) if h != rule.due_hours => patch.due_hours = Some(h),
                Ok(_) => {}
                Err(e) => {
                    errors.push(e);
                    bad = true;
                }
            }
        }
        if row.is_status() {
            if let Some(v) = form.get(&format!("delay.{r}")) {
                let parsed = match v.trim() {
                    "" => Ok(0),
                    v => number(v, render::CREATE_AFTER, &row, ticketing_core::rules::CREATE_DELAY_RANGE),
                };
                match parsed {
                    Ok(m) if m != rule.create_delay_minutes => patch.create_delay_minutes = Some(m),
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(e);
                        bad = true;
                    }
                }
            }
            if let Some(v) = form.get(&format!("reopen.{r}")) {
                let parsed = match v.trim() {
                    "" => Ok(None),
                    v => number(v, render::REOPEN_WITHIN, &row, ticketing_core::rules::WINDOW_HOURS_RANGE).map(Some),
                };
                match parsed {
                    Ok(h) if h != rule.reopen_hours => patch.reopen_hours = Some(h),
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(e);
                        bad = true;
                    }
                }
            }
        }
        if row.has_storms() {
            let storm_errors = storm_fields::inline(form, &row, &rule, &mut patch);
            bad |= !storm_errors.is_empty();
            errors.extend(storm_errors);
        }
        if row.has_recurrence() {
            if let Some(v) = form.get(&format!("recur.{r}")) {
                let parsed = match v.trim() {
                    "" => Ok(None),
                    v => number(v, render::RECUR_WITHIN, &row, ticketing_core::rules::WINDOW_HOURS_RANGE).map(Some),
                };
                match parsed {
                    Ok(h) if h != rule.recurrence_hours => patch.recurrence_hours = Some(h),
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(e);
                        bad = true;
                    }
                }
            }
        }
        for (field, current, target) in
            [(Field::Queue, &rule.queue, &mut patch.queue), (Field::Priority, &rule.priority, &mut patch.priority)]
        {
            if let Some(v) = form.get(&format!("{}.{r}", field.name())) {
                let v = label_value(v);
                if v != shown(cat, field, current.as_deref()) {
                    *target = Some(v);
                }
            }
        }
        if bad || patch == RulePatch::default() {
            continue;
        }
        match write(Edit::Row(row, patch)) {
            Ok(()) => changed += 1,
            Err(e) => errors.push(op_error(e).text),
        }
    }
    if let (Section::Statuses(product, _), Some(_)) = (section, form.get("follows_shown")) {
        let on = form.get("follows").is_some();
        if on != draft.priority_follows_severity.contains(&product) {
            match write(Edit::Follows(product, on)) {
                Ok(()) => changed += 1,
                Err(e) => errors.push(op_error(e).text),
            }
        }
    }
    (changed, errors)
}

fn after_inline(s: &UiState, session: &SessionView, changed: usize, errors: Vec<String>, say_ok: bool) {
    if !errors.is_empty() {
        s.sessions.flash(&session.id, error("Some edits were not applied to the draft:", errors));
    } else if say_ok {
        let text = if changed == 0 {
            "Nothing changed.".to_owned()
        } else {
            format!("Draft updated ({changed} change(s)). Save changes to apply them.")
        };
        s.sessions.flash(&session.id, ok(text));
    }
}

fn back_to(section: Section) -> Response {
    Redirect::to(&section_href(section)).into_response()
}

/// Guard, section, then the operation.
async fn with_section(
    s: &UiState,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    op: impl FnOnce(&UiState, &SessionView, Section, &FormData),
) -> Response {
    let form = FormData(pairs);
    let session = match guard(s, headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let section = match form_section(&form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Some(page) = stale_page(s, &session, section, &form) {
        return page;
    }
    op(s, &session, section, &form);
    back_to(section)
}

/// When the page the form came from shows an older rules revision than the store has (another
/// writer saved meanwhile), nothing is applied: the answer is the section as it is now, with
/// the user's inline edits still filled in, and a "changed elsewhere, reload" message.
fn stale_page(s: &UiState, session: &SessionView, section: Section, form: &FormData) -> Option<Response> {
    let shown: u64 = form.get("revision")?.parse().ok()?;
    let shared = &s.admin.shared;
    if let Err(e) = rules_ops::sync_from_store(shared) {
        tracing::warn!(error = %e, "cannot read the rules' revision");
    }
    let current = shared.rules.revision();
    if shown == current {
        return None;
    }
    let mut book = shared.rules();
    let mut scratch = book.draft.clone();
    let draft = book.draft.clone();
    let _ = inline_edits(shared, &draft, section, form, &mut |edit| {
        match edit {
            Edit::General(p) => p.apply(&mut scratch.general),
            Edit::Row(row, p) => {
                if let Some(rule) = scratch.rows.get_mut(&row) {
                    p.apply(rule);
                }
            }
            Edit::Follows(product, true) => {
                scratch.priority_follows_severity.insert(product);
            }
            Edit::Follows(product, false) => {
                scratch.priority_follows_severity.remove(&product);
            }
        }
        Ok(())
    });
    book.draft = scratch;
    let flash = vec![error(
        format!(
            "Changed elsewhere: the rules were saved by someone else meanwhile (now revision {current}). Nothing was applied. Your edits are still filled in below; check them against the newest rules (reload to drop them), then submit again."
        ),
        Vec::new(),
    )];
    let mut page = section_response(s, session, section, &book, &flash, 7, None);
    *page.status_mut() = StatusCode::CONFLICT;
    Some(page)
}

async fn rows(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    with_section(&s, &headers, pairs, |s, session, section, form| {
        let (changed, errors) = apply_inline(&s.admin.shared, section, form);
        after_inline(s, session, changed, errors, true);
    })
    .await
}

/// The Edit window's value for a picklist field: keep (absent), clear, or a label.
fn bulk_label(form: &FormData, name: &str) -> Option<Option<String>> {
    match form.get(name).unwrap_or_default() {
        "" => None,
        "!clear" => Some(None),
        v => Some(label_value(v.strip_prefix('=').unwrap_or(v))),
    }
}

fn bulk_patch(form: &FormData) -> Result<RulePatch, String> {
    let num = |name: &str, what: &str, range| -> Result<Option<u32>, String> {
        match form.get(name).map(str::trim).unwrap_or_default() {
            "" => Ok(None),
            v => whole(v, what, range).map(Some),
        }
    };
    // A window in hours with its "turn off" tick box: keep (neither), off (the box), or hours.
    let window = |name: &str, off: &str, what: &str, off_words: &str| -> Result<Option<Option<u32>>, String> {
        match (form.get(off).is_some(), num(name, what, ticketing_core::rules::WINDOW_HOURS_RANGE)?) {
            (true, Some(_)) => {
                Err(format!("{what}: give a number of hours or tick \u{201c}{off_words}\u{201d}, not both"))
            }
            (true, None) => Ok(Some(None)),
            (false, hours) => Ok(hours.map(Some)),
        }
    };
    let mut patch = RulePatch {
        enabled: match form.get("b_enabled").unwrap_or_default() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        queue: bulk_label(form, "b_queue"),
        priority: bulk_label(form, "b_priority"),
        due_hours: num("b_due", "Due, hours", ticketing_core::rules::DUE_HOURS_RANGE)?,
        work_type: bulk_label(form, "b_work_type"),
        issue_type: bulk_label(form, "b_issue_type"),
        sub_issue_type: bulk_label(form, "b_sub_issue_type"),
        create_delay_minutes: num("b_delay", render::CREATE_AFTER, ticketing_core::rules::CREATE_DELAY_RANGE)?,
        reopen_hours: window("b_reopen", "b_reopen_off", render::REOPEN_WITHIN, "Turn reopening off")?,
        recurrence_hours: window("b_recur", "b_recur_off", render::RECUR_WITHIN, "Turn recurrence notes off")?,
        lifetime_days: num("b_lifetime", "Lifetime, days", ticketing_core::rules::LIFETIME_RANGE)?,
        // Templates are edited per row (the ticket text editor, [`text`]), not in bulk.
        ..RulePatch::default()
    };
    storm_fields::bulk(form, &mut patch)?;
    Ok(patch)
}

async fn bulk_edit(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    with_section(&s, &headers, pairs, |s, session, section, form| {
        let shared = &s.admin.shared;
        let (changed, errors) = apply_inline(shared, section, form);
        after_inline(s, session, changed, errors, false);
        let in_section = section.rows();
        let selected: Vec<RowId> =
            form.all("select").filter_map(|r| r.parse::<RowId>().ok()).filter(|r| in_section.contains(r)).collect();
        let flash = match bulk_patch(form) {
            Err(e) => error("The Edit window was not applied:", vec![e]),
            Ok(_) if selected.is_empty() => error("Select at least one row, then use Edit.", Vec::new()),
            Ok(p) if p == RulePatch::default() => error(
                "The Edit window changes nothing: every field was left at \u{201c}keep as is\u{201d}.",
                Vec::new(),
            ),
            Ok(p) => match rules_ops::bulk_edit(shared, &selected, &p, None) {
                Ok(_) => ok(format!(
                    "Applied to {} row(s): {}. Save changes to make them the rules in use.",
                    selected.len(),
                    selected.iter().map(RowId::label).collect::<Vec<_>>().join(", ")
                )),
                Err(e) => op_error(e),
            },
        };
        s.sessions.flash(&session.id, flash);
    })
    .await
}

async fn save(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    with_section(&s, &headers, pairs, |s, session, section, form| {
        let shared = &s.admin.shared;
        let (changed, errors) = apply_inline(shared, section, form);
        if !errors.is_empty() {
            after_inline(s, session, changed, errors, false);
            s.sessions.flash(&session.id, error("Not saved: fix the edits above first.", Vec::new()));
            return;
        }
        // A save is checked against the catalog: not against one the PSA may have changed since.
        let psa = psa::check(shared);
        if psa.blocks_save(shared.catalog().is_some()) {
            let why = psa.problem(shared.catalog().is_some()).map(|p| p.0).unwrap_or_default();
            let kept = if changed > 0 { " Your edits are kept in the draft (not saved)." } else { "" };
            s.sessions.flash(
                &session.id,
                error(
                    format!("Not saved: {why} The values cannot be checked against the PSA's current lists, so Save changes waits until the PSA answers again.{kept}"),
                    Vec::new(),
                ),
            );
            return;
        }
        let flash = match rules_ops::save(shared, section, None) {
            Ok(_) if changed > 0 => ok(format!(
                "Saved: your edits ({changed} change(s)) are in the draft and {} now uses these rules.",
                section.title()
            )),
            Ok(_) => ok(format!("Saved: {} now uses these rules.", section.title())),
            Err(e) => op_error(e),
        };
        s.sessions.flash(&session.id, flash);
    })
    .await
}

async fn cancel(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    with_section(&s, &headers, pairs, |s, session, section, _| {
        let flash = match rules_ops::cancel(&s.admin.shared, section, None) {
            Ok(_) => ok("Changes cancelled: the section is back to the last saved rules."),
            Err(e) => op_error(e),
        };
        s.sessions.flash(&session.id, flash);
    })
    .await
}

async fn reset(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    with_section(&s, &headers, pairs, |s, session, section, _| {
        let flash = match rules_ops::reset(&s.admin.shared, section, None) {
            Ok(_) => ok("Defaults put into the draft: Save changes to apply them, or Cancel changes to undo."),
            Err(e) => op_error(e),
        };
        s.sessions.flash(&session.id, flash);
    })
    .await
}

/// "Add to the draft" of the General page's maintenance editor: the page's inline edits, then
/// the window. A window the fields cannot describe, or that the rules refuse, is not added:
/// the page comes back (422) with the fields as typed and each problem next to its field.
async fn window_add(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let session = match guard(&s, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let section = Section::General;
    if let Some(page) = stale_page(&s, &session, section, &form) {
        return page;
    }
    let shared = &s.admin.shared;
    let (changed, errors) = apply_inline(shared, section, &form);
    after_inline(&s, &session, changed, errors, false);
    let mut typed = maintenance::WindowForm::from_form(&form);
    let existing = shared.rules.with(|b| b.draft.maintenance.clone());
    if let Some(window) = typed.parse(&existing) {
        let id = window.id.clone();
        match rules_ops::add_window(shared, window, None) {
            Ok(_) => {
                s.sessions.flash(
                    &session.id,
                    ok(format!(
                        "Maintenance window \u{201c}{id}\u{201d} added to the draft. Save changes to make it the rules in use."
                    )),
                );
                return back_to(section);
            }
            Err(OpError::Problems { problems, .. }) => typed.take_problems(&problems, &id),
            Err(e) => {
                s.sessions.flash(&session.id, op_error(e));
                return back_to(section);
            }
        }
    }
    let mut flash = s.sessions.take_flash(&session.id);
    flash.push(error(
        "The maintenance window was not added: see the fields marked under \u{201c}Add a maintenance window\u{201d}.",
        typed.errors.values().cloned().collect(),
    ));
    let book = shared.rules();
    let mut page = section_response(&s, &session, section, &book, &flash, 7, Some(&typed));
    *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    page
}

/// A maintenance window's Remove button: out of the draft (Save changes then applies it).
async fn window_remove(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    with_section(&s, &headers, pairs, |s, session, _, form| {
        let id = form.get("remove").unwrap_or_default();
        let flash = match rules_ops::remove_window(&s.admin.shared, id, None) {
            Ok(_) => ok(format!(
                "Maintenance window \u{201c}{id}\u{201d} removed from the draft. Save changes to apply it, or Cancel changes to undo."
            )),
            Err(OpError::Invalid(_)) => {
                error(format!("There is no maintenance window \u{201c}{id}\u{201d} in the draft (any more)."), Vec::new())
            }
            Err(e) => op_error(e),
        };
        s.sessions.flash(&session.id, flash);
    })
    .await
}

#[derive(Deserialize)]
struct SectionQuery {
    s: Option<String>,
    days: Option<u32>,
}

/// The saved rules' preview, for comparison with the draft's.
fn preview_saved(shared: &Shared, catalog: &Catalog, days: u32) -> Option<Preview> {
    let saved = shared.rules.with(|b| b.saved.clone());
    let mapping: Vec<(TenantId, PsaId)> =
        shared.mapping().into_iter().filter_map(|m| m.account_id.map(|a| (TenantId::new(m.tenant), a))).collect();
    rules_ops::preview(shared.store.as_ref(), &saved, catalog, &mapping, &shared.accounts(), days, Utc::now()).ok()
}

async fn section_page(State(s): State<UiState>, headers: HeaderMap, Query(q): Query<SectionQuery>) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    // A parse error names the ids' syntax; the page says it in words, echoing the name.
    let Ok(section) = q.s.as_deref().unwrap_or("general").parse::<Section>() else {
        let name = q.s.as_deref().unwrap_or_default();
        return refused(
            StatusCode::NOT_FOUND,
            &format!("There is no section \u{201c}{name}\u{201d} (the link below leads back to the sections)."),
        );
    };
    let shared = &s.admin.shared;
    if let Err(e) = rules_ops::sync_from_store(shared) {
        tracing::warn!(error = %e, "cannot read the rules' revision");
    }
    let book = shared.rules();
    let flash = s.sessions.take_flash(&session.id);
    section_response(&s, &session, section, &book, &flash, q.days.unwrap_or(7).clamp(1, 365), None)
}

/// A section page showing `book` (the stored one, or a copy with a refused form's edits).
fn section_response(
    s: &UiState,
    session: &SessionView,
    section: Section,
    book: &ticketing_core::edit::RuleBook,
    flash: &[Flash],
    days: u32,
    window_form: Option<&maintenance::WindowForm>,
) -> Response {
    let shared = &s.admin.shared;
    let tenants = if section == Section::General { maintenance::tenant_choices(shared) } else { Vec::new() };
    let catalog = shared.catalog();
    let preview = match rules_ops::preview_draft(shared, days) {
        Ok(p) => Ok((p, catalog.as_ref().and_then(|c| preview_saved(shared, c, days)))),
        Err(e) => Err(format!("No preview: {e}")),
    };
    let problems = catalog.as_ref().map(|c| book.draft.validate_section(section, c)).unwrap_or_default();
    let psa = psa::check(shared);
    let sources = psa::check_sources(shared);
    let status = match section {
        Section::Statuses(product, _) => status_counts(shared, product),
        _ => Err(String::new()),
    };
    let dirty: Vec<Section> = Section::all().into_iter().filter(|x| book.is_dirty(*x)).collect();
    let body = render::section_body(&SectionView {
        section,
        book,
        catalog: catalog.as_ref(),
        csrf: &session.csrf,
        revision: shared.rules.revision(),
        labels: shared.labels(),
        problems: &problems,
        preview,
        status,
        psa: &psa,
        sources: &sources,
        tenants: &tenants,
        window_form,
        now: Utc::now(),
    });
    let title = section.title();
    Html(layout::page(
        &Frame {
            title: &title,
            tab: Some(Tab::Rules),
            current: Some(section),
            dirty: &dirty,
            csrf: Some(&session.csrf),
            flash,
            unmapped: mapping_edit::unmapped(&s.admin),
        },
        body,
    ))
    .into_response()
}

/// Computers with a live status ticket per status description of `product`, from the ledger.
fn status_counts(shared: &Shared, product: ticketing_core::model::Product) -> Result<StatusCounts, String> {
    let ledger = shared.store.load_ledger().map_err(|e| {
        tracing::warn!(error = %e, "cannot read the ledger for the status preview");
        "The ledger cannot be read now (see the daemon's log).".to_owned()
    })?;
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for e in ledger.entries() {
        if let ticketing_core::ticket::TicketKey::Status { product: p, description, .. } = &e.key {
            if *p == product && e.state.is_live() {
                *counts.entry(description.text()).or_default() += 1;
            }
        }
    }
    Ok(StatusCounts { open_by_description: counts.into_iter().collect() })
}
