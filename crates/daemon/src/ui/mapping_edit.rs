//! The Mapping page's edits: map a tenant (a suggestion's Map button, or the search box), unmap
//! it, and "Accept all suggestions above 90 %" behind a confirmation that lists exactly what it
//! maps. Each form carries the session's CSRF token and the mapping revision the page showed;
//! the operations are [`crate::mapping_ops`]'s, so a stale revision (409), a file entry (409,
//! naming the file) and an unknown account are refused the same way as through the API.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use ticketing_core::mapping::Accepted;
use ticketing_core::model::{PsaId, TenantId};
use ticketing_core::ports::Account;

use super::layout::{self, Frame, Tab};
use super::mapping::{account_choice, percent, render};
use super::session::{Flash, SessionView};
use super::{FormData, UiState, error, guard, ok, to_login};
use crate::admin::AdminState;
use crate::documents::{load_directory, load_mapping};
use crate::mapping_ops::{self, MappingOpError, build_view};

/// The score "Accept all suggestions above 90 %" takes.
pub(crate) const ACCEPT_SCORE: f64 = 0.9;

pub(crate) use crate::admin::file_mapping;

/// How many tenants are mapped and unmapped: the directory's tenants against the stored
/// mapping and the file's entries (no suggestions computed). `None` when the store fails.
pub(crate) fn counts(s: &AdminState) -> Option<(usize, usize)> {
    let store = &*s.shared.store;
    let directory = load_directory(store).map_err(|e| tracing::warn!(error = %e, "cannot read the directory")).ok()?;
    let set = load_mapping(store).map_err(|e| tracing::warn!(error = %e, "cannot read the mapping")).ok()?;
    let file = file_mapping(s);
    let is_mapped = |t: &TenantId| set.entries.contains_key(t) || file.entries.contains_key(t);
    let unmapped = directory.tenants.iter().filter(|l| !is_mapped(&l.tenant.id)).count();
    let mapped = set.entries.keys().chain(file.entries.keys()).collect::<std::collections::BTreeSet<_>>().len();
    Some((mapped, unmapped))
}

/// How many listed tenants are not mapped, for the banner on every page.
pub(crate) fn unmapped(s: &AdminState) -> usize {
    counts(s).map_or(0, |(_, n)| n)
}

/// What accepting the suggestions at [`ACCEPT_SCORE`] would map now, with the revision it was
/// computed at (nothing saved).
pub(crate) fn would_accept_at(s: &AdminState) -> Result<(u64, Vec<Accepted>), MappingOpError> {
    let store = &*s.shared.store;
    let directory = load_directory(store)?;
    let set = load_mapping(store)?;
    let file = file_mapping(s);
    let unmapped: Vec<(TenantId, String)> = build_view(&directory, &set, &file)
        .tenants
        .into_iter()
        .filter(|r| r.source.is_none())
        .filter_map(|r| r.tenant_name.map(|n| (r.tenant, n)))
        .collect();
    let (_, accepted) =
        set.accept(set.revision, ACCEPT_SCORE, &unmapped, &directory.accounts).map_err(MappingOpError::Refused)?;
    Ok((set.revision, accepted))
}

/// [`would_accept_at`] without the revision.
pub(crate) fn would_accept(s: &AdminState) -> Result<Vec<Accepted>, MappingOpError> {
    would_accept_at(s).map(|(_, a)| a)
}

/// A refused edit: the Mapping page as it is now, with the refusal, and its status.
fn refusal(s: &UiState, session: &SessionView, e: MappingOpError) -> Response {
    let (status, text) = match e {
        MappingOpError::Conflict { current } => (
            StatusCode::CONFLICT,
            format!(
                "Changed elsewhere: the mapping was changed meanwhile (now revision {current}), so nothing was changed. The page below shows it as it is now: reload it, check, and try again."
            ),
        ),
        MappingOpError::FromFile { tenant, file } => (
            StatusCode::CONFLICT,
            format!(
                "Tenant {tenant} is mapped in the configuration file {file}, so it cannot be changed here: change it in that file."
            ),
        ),
        MappingOpError::Refused(e) => (StatusCode::BAD_REQUEST, format!("Not changed: {e}.")),
        MappingOpError::NoAccounts => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The PSA's accounts are not known yet (they are read shortly after the daemon starts); try again shortly."
                .to_owned(),
        ),
        MappingOpError::Store(e) => {
            tracing::error!(error = %e, "ui mapping edit failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error: the store failed (see the daemon's log).".to_owned())
        }
    };
    render(s, session, &[error(text, Vec::new())], status)
}

fn bad(s: &UiState, session: &SessionView, text: &str) -> Response {
    render(s, session, &[error(text, Vec::new())], StatusCode::BAD_REQUEST)
}

fn revision_of(form: &FormData) -> Option<u64> {
    form.get("revision").and_then(|r| r.trim().parse().ok())
}

/// The account a search box names: "Name (id N)" as the list offers it, an id, or a name
/// (case-insensitive, when one account has it).
pub(crate) fn account_from_search(text: &str, accounts: &[Account]) -> Result<PsaId, String> {
    let t = text.trim();
    if let Some(a) = accounts.iter().find(|a| account_choice(a) == t) {
        return Ok(a.id);
    }
    if let Ok(id) = t.parse::<i64>() {
        return Ok(PsaId(id));
    }
    let named: Vec<&Account> = accounts.iter().filter(|a| a.name.trim().eq_ignore_ascii_case(t)).collect();
    match named.as_slice() {
        [one] => Ok(one.id),
        [] => Err(format!("No account is named \u{201c}{t}\u{201d}: pick one from the list, or type its id.")),
        _ => Err(format!(
            "More than one account is named \u{201c}{t}\u{201d}: pick one from the list (it names the id)."
        )),
    }
}

fn name_of(s: &AdminState, tenant: &TenantId) -> String {
    load_directory(&*s.shared.store)
        .ok()
        .and_then(|d| d.tenants.into_iter().find(|l| &l.tenant.id == tenant).map(|l| l.tenant.name))
        .map_or_else(|| tenant.to_string(), |n| format!("\u{201c}{n}\u{201d}"))
}

fn account_words(s: &AdminState, id: PsaId) -> String {
    load_directory(&*s.shared.store)
        .ok()
        .and_then(|d| d.accounts.into_iter().find(|a| a.id == id))
        .map_or_else(|| format!("account id {id}"), |a| format!("\u{201c}{}\u{201d} (id {id})", a.name))
}

/// `POST /ui/mapping/set`: `tenant`, `revision`, and `account` (an id, from a suggestion) or
/// `account_search` (the search box).
pub(crate) async fn set(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let session = match guard(&s, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(revision) = revision_of(&form) else { return bad(&s, &session, "The form has no mapping revision.") };
    let tenant = TenantId::new(form.get("tenant").unwrap_or_default().trim());
    let account = match (form.get("account"), form.get("account_search")) {
        (Some(a), _) if !a.trim().is_empty() => match a.trim().parse::<i64>() {
            Ok(id) => PsaId(id),
            Err(_) => return bad(&s, &session, "The account is not an id."),
        },
        (_, Some(text)) if !text.trim().is_empty() => {
            let accounts = load_directory(&*s.admin.shared.store).map(|d| d.accounts).unwrap_or_default();
            match account_from_search(text, &accounts) {
                Ok(id) => id,
                Err(e) => return bad(&s, &session, &e),
            }
        }
        _ => return bad(&s, &session, "Pick an account first."),
    };
    let file = file_mapping(&s.admin);
    match mapping_ops::set(&*s.admin.shared.store, &file, &tenant, account, Some(revision)) {
        Ok(_) => {
            let text = format!("{} is mapped to {}.", name_of(&s.admin, &tenant), account_words(&s.admin, account));
            s.sessions.flash(&session.id, ok(text));
            Redirect::to("/ui/mapping").into_response()
        }
        Err(e) => refusal(&s, &session, e),
    }
}

/// `POST /ui/mapping/unset`: `tenant`, `revision`.
pub(crate) async fn unset(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let session = match guard(&s, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(revision) = revision_of(&form) else { return bad(&s, &session, "The form has no mapping revision.") };
    let tenant = TenantId::new(form.get("tenant").unwrap_or_default().trim());
    let file = file_mapping(&s.admin);
    match mapping_ops::unset(&*s.admin.shared.store, &file, &tenant, Some(revision)) {
        Ok(_) => {
            s.sessions.flash(&session.id, ok(format!("{} is no longer mapped.", name_of(&s.admin, &tenant))));
            Redirect::to("/ui/mapping").into_response()
        }
        Err(e) => refusal(&s, &session, e),
    }
}

/// The confirmation: exactly what accepting would map, and the button that does it.
fn confirmation(s: &UiState, session: &SessionView, flash: &[Flash], status: StatusCode) -> Response {
    let body = match would_accept_at(&s.admin) {
        Err(e) => return refusal(s, session, e),
        Ok((revision, accepted)) => html! {
            h1 id="page-title" { "Accept all suggestions above 90 %" }
            @if accepted.is_empty() {
                p.note id="accept-none" { "No unmapped tenant has an active, unambiguous suggestion of 90 % or more, so there is nothing to accept." }
            } @else {
                p.state { "These tenants would be mapped to their best suggestion (active accounts only, and only where no other account scores the same). Nothing is changed until you confirm." }
                div.table-wrap {
                    table.data.cards id="accept-table" {
                        thead { tr { th scope="col" { "Tenant" } th scope="col" { "Account" } th scope="col" { "Score" } } }
                        tbody {
                            @for a in &accepted {
                                tr data-tenant=(a.tenant) {
                                    th scope="row" data-label="Tenant" { (name_of(&s.admin, &a.tenant)) span.sub { (a.tenant) } }
                                    td data-label="Account" { (a.account_name) span.sub { "id " (a.account_id) } }
                                    td data-label="Score" { (percent(a.score)) }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/ui/mapping/accept" class="confirm" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="revision" value=(revision);
                    @for a in &accepted {
                        input type="hidden" name="tenant" value=(a.tenant);
                    }
                    button type="submit" id="accept-confirm" {
                        @if accepted.len() == 1 { "Map this tenant" } @else { "Map these " (accepted.len()) " tenants" }
                    }
                }
            }
            p { a href="/ui/mapping" id="accept-back" { "Back to the Mapping page" } }
        },
    };
    let html = layout::page(
        &Frame {
            title: "Accept suggestions",
            tab: Some(Tab::Mapping),
            current: None,
            dirty: &[],
            csrf: Some(&session.csrf),
            flash,
            unmapped: unmapped(&s.admin),
        },
        body,
    );
    (status, Html(html)).into_response()
}

/// `GET /ui/mapping/accept`: the confirmation.
pub(crate) async fn confirm_accept(State(s): State<UiState>, headers: HeaderMap) -> Response {
    let Some(session) = s.sessions.lookup(&headers) else { return to_login() };
    confirmation(&s, &session, &[], StatusCode::OK)
}

/// `POST /ui/mapping/accept`: `revision` and the confirmed `tenant`s. Refused (409, the
/// confirmation again) when what would be mapped is no longer exactly what was confirmed.
pub(crate) async fn accept(
    State(s): State<UiState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let form = FormData(pairs);
    let session = match guard(&s, &headers, &form) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(revision) = revision_of(&form) else { return bad(&s, &session, "The form has no mapping revision.") };
    let mut confirmed: Vec<&str> = form.all("tenant").collect();
    confirmed.sort_unstable();
    let now = match would_accept_at(&s.admin) {
        Ok((current, _)) if current != revision => return refusal(&s, &session, MappingOpError::Conflict { current }),
        Ok((_, a)) => a,
        Err(e) => return refusal(&s, &session, e),
    };
    let mut would: Vec<&str> = now.iter().map(|a| a.tenant.as_str()).collect();
    would.sort_unstable();
    if would != confirmed {
        let text = "The suggestions changed since you reviewed them (tenants or accounts were read again), so nothing was mapped. Review the list below again.";
        return confirmation(&s, &session, &[error(text, Vec::new())], StatusCode::CONFLICT);
    }
    let file = file_mapping(&s.admin);
    match mapping_ops::accept(&*s.admin.shared.store, &file, ACCEPT_SCORE, Some(revision)) {
        Ok((_, made)) => {
            let text = match made.len() {
                0 => "Nothing to accept: no suggestion qualified.".to_owned(),
                1 => "1 tenant is mapped to its suggestion.".to_owned(),
                n => format!("{n} tenants are mapped to their suggestions."),
            };
            let details = made
                .iter()
                .map(|a| format!("{} \u{2192} {} ({})", name_of(&s.admin, &a.tenant), a.account_name, percent(a.score)))
                .collect();
            s.sessions.flash(&session.id, Flash { kind: "ok", text, details });
            Redirect::to("/ui/mapping").into_response()
        }
        Err(e) => refusal(&s, &session, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_names_an_account_by_choice_id_or_unique_name() {
        let accounts = vec![
            Account { id: PsaId(7), name: "Acme Corp".to_owned(), active: true },
            Account { id: PsaId(8), name: "Twin".to_owned(), active: true },
            Account { id: PsaId(9), name: "twin".to_owned(), active: false },
        ];
        assert_eq!(account_from_search("Acme Corp (id 7)", &accounts), Ok(PsaId(7)));
        assert_eq!(account_from_search("twin (id 9, inactive)", &accounts), Ok(PsaId(9)));
        assert_eq!(account_from_search(" 8 ", &accounts), Ok(PsaId(8)));
        assert_eq!(account_from_search("acme corp", &accounts), Ok(PsaId(7)));
        assert!(account_from_search("Twin", &accounts).unwrap_err().contains("More than one"));
        assert!(account_from_search("Nobody", &accounts).unwrap_err().contains("No account is named"));
        assert_eq!(percent(0.899), "89 %");
        assert_eq!(percent(1.0), "100 %");
    }
}
