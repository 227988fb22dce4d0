//! The Users page (admins only; the gate refuses the others): every user with its role and
//! API tokens, and the forms to add, remove, change the role, reset the password, make and
//! revoke tokens, over the same operations as the CLI and the API ([`crate::access::users`]).
//! A new token is shown once, on the page answering its creation.
//!
//! Also the Changes view ([`changes_view`]) the Activity page shows: who changed what.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use ticketing_core::secret::Secret;

use super::layout::{self, Frame};
use super::session::SessionView;
use super::{FormData, UiState, error, guard, ok, to_login};
use crate::access::users::{self, TokenView, UserView};
use crate::access::{ChangeQuery, Role};
use crate::store::Change;

pub(super) fn routes() -> Router<UiState> {
    Router::new()
        .route("/ui/users", get(page))
        .route("/ui/users/add", post(add))
        .route("/ui/users/remove", post(remove))
        .route("/ui/users/role", post(set_role))
        .route("/ui/users/password", post(set_password))
        .route("/ui/users/token", post(create_token))
        .route("/ui/users/revoke", post(revoke_token))
}

fn role_select(name: &str, current: Role) -> Markup {
    html! {
        select name=(name) {
            @for r in Role::ALL {
                option value=(r.code()) selected[r == current] { (r.code()) }
            }
        }
    }
}

fn body(csrf: &str, list: &[UserView], tokens: &[TokenView], new_token: Option<(&str, &str)>) -> Markup {
    html! {
        h1 { "Users" }
        p.hint {
            "viewer: reads every page and API. operator: also edits rules, the mapping and maintenance windows and retries failed tickets. admin: also users, tokens and reloads."
        }
        @if let Some((id, token)) = new_token {
            div.flash.ok role="status" id="new-token" {
                p { "API token " code { (id) } " made. Copy it now: it is not shown again." }
                p { code id="new-token-value" { (token) } }
            }
        }
        div.table-wrap { table.users id="users" {
            thead { tr { th { "User" } th { "Role" } th { "Password set" } th { "Locked" } th { "Actions" } } }
            tbody {
                @for u in list {
                    tr data-user=(u.name) {
                        td { (u.name) }
                        td {
                            form method="post" action="/ui/users/role" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="name" value=(u.name);
                                (role_select("role", u.role))
                                " " button type="submit" { "Change role" }
                            }
                        }
                        td { (u.password_changed_at.format("%Y-%m-%d %H:%M UTC")) }
                        td { @if let Some(t) = u.locked_until { "until " (t.format("%H:%M:%S UTC")) } @else { "no" } }
                        td {
                            form method="post" action="/ui/users/password" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="name" value=(u.name);
                                input type="password" name="password" autocomplete="new-password" aria-label={ "New password for " (u.name) } required;
                                " " button type="submit" { "Reset password" }
                            }
                            form method="post" action="/ui/users/token" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="name" value=(u.name);
                                input type="text" name="label" placeholder="label" aria-label={ "Token label for " (u.name) };
                                " " button type="submit" { "Make API token" }
                            }
                            form method="post" action="/ui/users/remove" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="name" value=(u.name);
                                button type="submit" { "Remove" }
                            }
                        }
                    }
                }
            }
        }
        }
        h2 { "Add a user" }
        form method="post" action="/ui/users/add" id="add-user" {
            input type="hidden" name="csrf" value=(csrf);
            p { label for="new-name" { "User name" } input id="new-name" name="name" type="text" required; }
            p { label for="new-role" { "Role" } (role_select("role", Role::Viewer)) }
            p { label for="new-password" { "Password (at least 12 characters)" } input id="new-password" name="password" type="password" autocomplete="new-password" required; }
            p { button type="submit" { "Add user" } }
        }
        h2 { "API tokens" }
        @if tokens.is_empty() {
            p { "No API tokens." }
        } @else {
            div.table-wrap { table id="tokens" {
                thead { tr { th { "Id" } th { "User" } th { "Label" } th { "Made" } th { "Last used" } th {} } }
                tbody {
                    @for t in tokens {
                        tr {
                            td { code { (t.id) } }
                            td { (t.user) }
                            td { (t.label) }
                            td { (t.created_at.format("%Y-%m-%d %H:%M UTC")) }
                            td { @if let Some(u) = t.last_used_at { (u.format("%Y-%m-%d %H:%M UTC")) } @else { "never" } }
                            td {
                                form method="post" action="/ui/users/revoke" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="id" value=(t.id);
                                    button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

fn render(s: &UiState, session: &SessionView, new_token: Option<(&str, &str)>) -> Response {
    let Some(store) = s.admin.shared.store.access() else {
        return super::refused(StatusCode::SERVICE_UNAVAILABLE, "This store keeps no users.");
    };
    let now = s.admin.access.clock.now();
    let (list, tokens) = match (users::list(store, now), users::tokens(store)) {
        (Ok(l), Ok(t)) => (l, t),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot list users");
            return super::refused(StatusCode::INTERNAL_SERVER_ERROR, "The users cannot be read now (see the log).");
        }
    };
    let flash = s.sessions.take_flash(&session.id);
    let html = layout::page(
        &Frame {
            title: "Users",
            tab: Some(layout::Tab::Users),
            current: None,
            dirty: &[],
            csrf: Some(&session.csrf),
            flash: &flash,
            unmapped: 0,
        },
        body(&session.csrf, &list, &tokens, new_token),
    );
    Html(html).into_response()
}

async fn page(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    render(&s, &session, None)
}

/// Guard, then `op` on the store; its outcome as the page's message.
fn act(
    s: &UiState,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    op: impl FnOnce(&dyn crate::access::AccessStore, &crate::access::Actor, &FormData) -> Result<String, users::UserError>,
) -> Response {
    let form = FormData(pairs);
    let session = match guard(s, headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(store) = s.admin.shared.store.access() else {
        return super::refused(StatusCode::SERVICE_UNAVAILABLE, "This store keeps no users.");
    };
    let flash = match op(store, &session.principal.actor, &form) {
        Ok(text) => ok(text),
        Err(e) => error(format!("Not done: {e}."), Vec::new()),
    };
    s.sessions.flash(&session.id, flash);
    Redirect::to("/ui/users").into_response()
}

fn role_of(form: &FormData) -> Result<Role, users::UserError> {
    form.get("role")
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| users::UserError::InvalidName(format!("role: {e}")))
}

async fn add(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let now = s.admin.access.clock.now();
    act(&s, &headers, pairs, |store, actor, form| {
        let name = form.get("name").unwrap_or_default().trim().to_owned();
        let role = role_of(form)?;
        let password = Secret::new(form.get("password").unwrap_or_default());
        users::add(store, actor, &name, role, &password, now).map(|()| format!("User {name} added ({role})."))
    })
}

async fn remove(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let now = s.admin.access.clock.now();
    act(&s, &headers, pairs, |store, actor, form| {
        let name = form.get("name").unwrap_or_default().to_owned();
        users::remove(store, actor, &name, now).map(|()| format!("User {name} removed; its sessions and tokens ended."))
    })
}

async fn set_role(State(s): State<UiState>, headers: HeaderMap, Form(pairs): Form<Vec<(String, String)>>) -> Response {
    let now = s.admin.access.clock.now();
    act(&s, &headers, pairs, |store, actor, form| {
        let name = form.get("name").unwrap_or_default().to_owned();
        let role = role_of(form)?;
        users::set_role(store, actor, &name, role, now).map(|()| format!("{name} now has the {role} role."))
    })
}

async fn set_password(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let now = s.admin.access.clock.now();
    act(&s, &headers, pairs, |store, actor, form| {
        let name = form.get("name").unwrap_or_default().to_owned();
        let password = Secret::new(form.get("password").unwrap_or_default());
        users::reset_password(store, actor, &name, &password, now)
            .map(|()| format!("New password for {name}; every session of {name} ended."))
    })
}

async fn create_token(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let session = match guard(&s, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(store) = s.admin.shared.store.access() else {
        return super::refused(StatusCode::SERVICE_UNAVAILABLE, "This store keeps no users.");
    };
    let name = form.get("name").unwrap_or_default();
    let label = form.get("label").unwrap_or_default();
    match users::create_token(store, &session.principal.actor, name, label, s.admin.access.clock.now()) {
        // Answered at once, not through a redirect: the token is shown on this page only.
        Ok(t) => render(&s, &session, Some((&t.id, t.token.expose()))),
        Err(e) => {
            s.sessions.flash(&session.id, error(format!("Not done: {e}."), Vec::new()));
            Redirect::to("/ui/users").into_response()
        }
    }
}

async fn revoke_token(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let now = s.admin.access.clock.now();
    act(&s, &headers, pairs, |store, actor, form| {
        let id = form.get("id").unwrap_or_default().to_owned();
        users::revoke_token(store, actor, &id, now).map(|()| format!("API token {id} revoked."))
    })
}

/// Where a change was, in words: a section's or row's title, else the name as recorded.
fn where_words(section: &str) -> String {
    if let Ok(s) = section.parse::<ticketing_core::rules::Section>() {
        return s.title();
    }
    section.parse::<ticketing_core::rules::RowId>().map_or_else(|_| section.to_owned(), |r| r.label())
}

/// The Activity page's Changes view: the newest changes, who made them, the revisions.
pub(super) fn changes_view(s: &UiState) -> Markup {
    let found: Result<Vec<Change>, String> = match s.admin.shared.store.access() {
        None => Ok(Vec::new()),
        Some(store) => store.changes(&ChangeQuery { since: None, limit: 50 }).map_err(|e| {
            tracing::warn!(error = %e, "cannot read the change log");
            "The change log cannot be read now (see the daemon's log).".to_owned()
        }),
    };
    html! {
        section id="changes" {
            h2 { "Changes" }
            p.hint { "Who changed what: the newest 50 changes (all of them: " code { "GET /api/changes" } ", " code { "msp-ticketd changes" } ")." }
            @match found {
                Err(e) => p.error { (e) },
                Ok(list) if list.is_empty() => p { "No changes recorded yet." },
                Ok(list) => div.table-wrap { table.data id="changes-table" {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Where" } th { "Revision" } } }
                    tbody {
                        @for c in &list {
                            tr data-kind=(c.kind.code()) {
                                td { (c.at.format("%Y-%m-%d %H:%M:%S UTC")) }
                                td.who { (c.actor) }
                                td { (c.kind.words()) }
                                td { (c.section.as_deref().map(where_words).unwrap_or_default()) }
                                td {
                                    @match (c.revision_before, c.revision_after) {
                                        (Some(b), Some(a)) => { (b) " \u{2192} " (a) }
                                        _ => {}
                                    }
                                }
                            }
                        }
                    }
                } },
            }
        }
    }
}
