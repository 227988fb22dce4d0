//! [`TicketSink`] for HaloPSA.
//!
//! | Port call | Halo calls |
//! |---|---|
//! | `create_ticket` | (cached catalog) `POST /api/Tickets` `[{summary, details_html, client_id, team, team_id, status_id, priority_id, tickettype_id, <due field>, customfields?}]`; the description ends with the reference line `msp-ticketing ref: <key>`; after an ambiguous failure `GET /api/Tickets?search=<key>` before anything is sent again |
//! | `find_ticket` | `GET /api/Tickets?search=<key>&includedetails=true`, matched exactly on the reference line (or the key's custom field) |
//! | `ticket` | `GET /api/Tickets/{id}` (404 → `None`) |
//! | `close_ticket` | `GET /api/Tickets/{id}`, then `POST /api/Tickets` `[{id, status_id}]` unless it already shows the status; the answer must show it |
//! | `update_ticket` | `GET /api/Tickets/{id}` (404 → `NotFound`), then one `POST /api/Tickets` `[{id, …}]` of the fields that differ (`status_id`, `priority_id`, the due field); the answer must show them; nothing is sent when nothing differs |
//! | `add_note` | with `look_up_first`: `GET /api/Actions?ticket_id=N`, a note carrying `[marker]` ends it; then `POST /api/Actions` `[{ticket_id, note_html, outcome_id or outcome, hiddenfromuser}]` |
//! | `closed_among` | `GET /api/Tickets/{id}` per ticket, four at a time (no verified multi-id filter) |
//! | `owned_tickets` | paged `GET /api/Tickets?search=<prefix>&includedetails=true`, the reference line's key checked to start with the prefix |
//! | `catalog` | cached catalog (see [`crate::catalog`]) |
//! | `accounts` | paged `GET /api/Client?includeinactive=true` (`inactive`) |

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, json};
use ticketing_core::catalog::Catalog;
use ticketing_core::model::PsaId;
use ticketing_core::ports::{Account, OwnedTicket, PortError, PortErrorKind, RemoteTicket, TicketSink, TicketUpdate};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote, TicketRef};
use tracing::warn;

use crate::catalog::HaloCatalog;
use crate::client::HaloClient;
use crate::error::{Error, Outcome};
use crate::models::{Action, CustomField, Ticket};
use crate::text::{description_of, details_with_ref, html_to_text, ref_of, text_to_html};

/// Halo's built-in "Closed" status (inferred from public scripts that close tickets with it).
pub const DEFAULT_CLOSED_STATUS: i64 = 9;

/// The due-date field written by default: `fixbydate`, the "fix by" target Halo answers on
/// every ticket (verified in a public create answer); `deadlinedate` and `targetdate` are the
/// alternatives (inferred).
pub const DEFAULT_DUE_FIELD: &str = "fixbydate";

/// Options of the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// Post the close note as an action (default true).
    pub note_on_close: bool,
    /// The note's `outcome_id` (default none: [`SinkOptions::note_outcome`] by name).
    pub note_outcome_id: Option<i64>,
    /// The note's `outcome` by name when no id is set (default `"Private Note"`, modelled).
    pub note_outcome: String,
    /// `hiddenfromuser` on notes (default true: a private note).
    pub note_hidden: bool,
    /// The ticket field the due time goes to (default [`DEFAULT_DUE_FIELD`]).
    pub due_field: String,
    /// A ticket custom field (`CFmspTicketingKey`) that also carries the idempotency key; the
    /// reference line is written either way.
    pub key_custom_field: Option<String>,
    /// Statuses that count as closed besides the one the daemon closes with (default `[9]`).
    pub closed_status_ids: Vec<i64>,
    /// Offer only this SLA's priorities (default: every SLA's, one per `priorityid`).
    pub sla_id: Option<i64>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            note_on_close: true,
            note_outcome_id: None,
            note_outcome: "Private Note".to_owned(),
            note_hidden: true,
            due_field: DEFAULT_DUE_FIELD.to_owned(),
            key_custom_field: None,
            closed_status_ids: vec![DEFAULT_CLOSED_STATUS],
            sla_id: None,
        }
    }
}

/// The HaloPSA [`TicketSink`].
#[derive(Debug)]
pub struct HaloSink {
    client: HaloClient,
    options: SinkOptions,
    /// Statuses this sink closed with (they count as closed for `owned_tickets`).
    closed_with: Mutex<BTreeSet<i64>>,
}

/// A due time as Halo spells dates (`2030-01-15T17:00:00Z`).
pub fn halo_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A date Halo answered: RFC 3339, or without an offset (taken as UTC).
pub fn parse_halo_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
    })
}

/// The note's text: the text, then a last line `[marker]` (a pure function).
pub fn note_text(note: &TicketNote) -> String {
    let tail = format!("[{}]", note.marker);
    let text = note.text.trim_end();
    if text.is_empty() { tail } else { format!("{text}\n{tail}") }
}

/// The update body (a pure function): `id` and each field `update` sets that `current` does
/// not already show; `None` when nothing differs.
pub fn update_body(current: &Ticket, update: &TicketUpdate, due_field: &str) -> Option<Ticket> {
    let id = current.id?;
    let mut body = Ticket { id: Some(id), ..Ticket::default() };
    let mut any = false;
    if let Some(s) = update.status
        && current.status_id != Some(s.0)
    {
        body.status_id = Some(s.0);
        any = true;
    }
    if let Some(p) = update.priority
        && current.priority_id != Some(p.0)
    {
        body.priority_id = Some(p.0);
        any = true;
    }
    if let Some(due) = update.due
        && current.extra_str(due_field).and_then(parse_halo_time) != Some(due)
    {
        body.extra.insert(due_field.to_owned(), json!(halo_time(due)));
        any = true;
    }
    any.then_some(body)
}

/// What of `sent` the answer does not show, or `None` when all of it.
pub fn not_applied(answer: &Ticket, sent: &Ticket, due_field: &str) -> Option<String> {
    let mut missing = Vec::new();
    if sent.status_id.is_some() && answer.status_id != sent.status_id {
        missing.push("status_id");
    }
    if sent.priority_id.is_some() && answer.priority_id != sent.priority_id {
        missing.push("priority_id");
    }
    if let Some(due) = sent.extra_str(due_field).and_then(parse_halo_time)
        && answer.extra_str(due_field).and_then(parse_halo_time) != Some(due)
    {
        missing.push(due_field);
    }
    (!missing.is_empty()).then(|| format!("the answer does not show the new {}", missing.join(", ")))
}

fn ticket_ref(id: i64) -> TicketRef {
    // Halo shows the ticket id itself as the number technicians see
    TicketRef { id: PsaId(id), number: Some(id.to_string()) }
}

fn not_found(id: i64) -> PortError {
    PortError::new(PortErrorKind::NotFound, format!("ticket {id} does not exist"))
}

impl HaloSink {
    /// A sink over a client.
    pub fn new(client: HaloClient, options: SinkOptions) -> Self {
        Self { client, options, closed_with: Mutex::new(BTreeSet::new()) }
    }

    /// The client underneath.
    pub fn client(&self) -> &HaloClient {
        &self.client
    }

    /// The options.
    pub fn options(&self) -> &SinkOptions {
        &self.options
    }

    /// Converts a client error, blanking the client secret should the server ever echo it.
    fn port_error(&self, err: &Error) -> PortError {
        let mut p = PortError::from(err);
        let secret = self.client.config().credentials.client_secret.expose();
        if secret.len() >= 4 {
            p.message = p.message.replace(secret, "***");
        }
        p
    }

    fn is_closed_status(&self, status: i64) -> bool {
        self.options.closed_status_ids.contains(&status)
            || self.closed_with.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&status)
    }

    async fn catalog_with_team(&self, team: i64) -> Result<Arc<HaloCatalog>, PortError> {
        let c = self.client.halo_catalog().await.map_err(|e| self.port_error(&e))?;
        if c.team(team).is_some() {
            return Ok(c);
        }
        self.client.refresh_halo_catalog().await.map_err(|e| self.port_error(&e))
    }

    /// The `POST /api/Tickets` element for a draft.
    pub fn draft_to_ticket(&self, draft: &TicketDraft, catalog: &HaloCatalog) -> Result<Ticket, PortError> {
        let team = catalog.team(draft.queue.0).and_then(|t| t.name.clone()).ok_or_else(|| {
            PortError::new(PortErrorKind::Invalid, format!("team {} (the rule's queue) does not exist", draft.queue))
        })?;
        let key = &draft.idempotency_key;
        let mut extra = Map::new();
        extra.insert(self.options.due_field.clone(), json!(halo_time(draft.due)));
        Ok(Ticket {
            summary: Some(draft.title.trim().to_owned()),
            details_html: Some(text_to_html(&details_with_ref(&draft.description, key))),
            client_id: Some(draft.account.0),
            tickettype_id: draft.issue_type.map(|t| t.0),
            status_id: Some(draft.status.0),
            priority_id: Some(draft.priority.0),
            team: Some(team),
            team_id: Some(draft.queue.0),
            customfields: self
                .options
                .key_custom_field
                .as_ref()
                .map(|f| vec![CustomField { id: None, name: Some(f.clone()), value: Some(json!(key.as_str())) }]),
            extra,
            ..Ticket::default()
        })
    }

    async fn current(&self, id: i64) -> Result<Ticket, PortError> {
        self.client.get_ticket(id).await.map_err(|e| self.port_error(&e))?.ok_or_else(|| not_found(id))
    }

    async fn send_update(&self, id: i64, body: &Ticket, what: &str) -> Result<(), PortError> {
        let answer = self.client.update_ticket(body).await.map_err(|e| {
            if e.outcome() == Outcome::Unknown {
                warn!(ticket_id = id, error = %e, "halopsa ticket {what} outcome unknown");
            }
            self.port_error(&e)
        })?;
        match not_applied(&answer, body, &self.options.due_field) {
            None => Ok(()),
            Some(detail) => Err(self.port_error(&Error::NotApplied { what: format!("ticket {id} {what}"), detail })),
        }
    }
}

#[async_trait]
impl TicketSink for HaloSink {
    async fn catalog(&self) -> Result<Catalog, PortError> {
        let c = self.client.halo_catalog().await.map_err(|e| self.port_error(&e))?;
        Ok(c.to_catalog(self.options.sla_id))
    }

    async fn accounts(&self) -> Result<Vec<Account>, PortError> {
        let clients = self.client.clients().await.map_err(|e| self.port_error(&e))?;
        Ok(clients
            .into_iter()
            .filter_map(|c| {
                Some(Account {
                    id: PsaId(c.id?),
                    name: c.name.unwrap_or_default(),
                    active: !c.inactive.unwrap_or(false),
                })
            })
            .collect())
    }

    async fn create_ticket(&self, draft: &TicketDraft) -> Result<TicketRef, PortError> {
        let key = draft.idempotency_key.as_str();
        if key.is_empty() || key.chars().count() > IdempotencyKey::MAX_LEN || key.chars().any(char::is_whitespace) {
            return Err(PortError::new(
                PortErrorKind::Invalid,
                format!("idempotency key must be 1..={} characters without spaces", IdempotencyKey::MAX_LEN),
            ));
        }
        let catalog = self.catalog_with_team(draft.queue.0).await?;
        let ticket = self.draft_to_ticket(draft, &catalog)?;
        let created =
            self.client.create_ticket(&ticket, key, self.options.key_custom_field.as_deref()).await.map_err(|e| {
                if e.outcome() == Outcome::Unknown {
                    warn!(idempotency_key = %draft.idempotency_key, error = %e, "halopsa ticket create outcome unknown");
                }
                self.port_error(&e)
            })?;
        Ok(ticket_ref(created.ticket.id.unwrap_or_default()))
    }

    async fn find_ticket(&self, key: &IdempotencyKey) -> Result<Option<TicketRef>, PortError> {
        let found = self
            .client
            .find_ticket_by_key(key.as_str(), self.options.key_custom_field.as_deref())
            .await
            .map_err(|e| self.port_error(&e))?;
        Ok(found.and_then(|t| t.id).map(ticket_ref))
    }

    async fn ticket(&self, ticket: PsaId) -> Result<Option<RemoteTicket>, PortError> {
        let Some(t) = self.client.get_ticket(ticket.0).await.map_err(|e| self.port_error(&e))? else {
            return Ok(None);
        };
        let status = t.status_id.ok_or_else(|| {
            PortError::new(PortErrorKind::Other, format!("ticket {ticket} came back without status_id"))
        })?;
        Ok(Some(RemoteTicket { ticket: ticket_ref(ticket.0), status: PsaId(status) }))
    }

    /// One read per ticket, four at a time. A ticket counts as closed when Halo no longer has
    /// it or shows `closed` (or another closed status) as its status.
    async fn closed_among(&self, tickets: &[PsaId], closed: PsaId) -> Result<Vec<PsaId>, PortError> {
        let reads: Vec<(PsaId, Option<Ticket>)> = futures::stream::iter(tickets.iter().copied())
            .map(|id| async move { self.client.get_ticket(id.0).await.map(|t| (id, t)) })
            .buffered(4)
            .try_collect()
            .await
            .map_err(|e| self.port_error(&e))?;
        Ok(reads
            .into_iter()
            .filter(|(_, t)| match t.as_ref().and_then(|t| t.status_id) {
                None => true,
                Some(s) => s == closed.0 || self.is_closed_status(s),
            })
            .map(|(id, _)| id)
            .collect())
    }

    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        let id = ticket.id.0;
        self.closed_with.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(status.0);
        let current = self.current(id).await?;
        if current.status_id == Some(status.0) {
            return Ok(());
        }
        let body = Ticket { id: Some(id), status_id: Some(status.0), ..Ticket::default() };
        self.send_update(id, &body, "close").await
    }

    /// Reads the ticket first (a missing ticket is `NotFound`), then sends only what differs,
    /// so a repeat sends nothing.
    async fn update_ticket(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), PortError> {
        if update.is_empty() {
            return Ok(());
        }
        let id = ticket.id.0;
        let current = self.current(id).await?;
        match update_body(&current, update, &self.options.due_field) {
            None => Ok(()),
            Some(body) => self.send_update(id, &body, "update").await,
        }
    }

    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote, look_up_first: bool) -> Result<(), PortError> {
        if !self.options.note_on_close {
            return Ok(());
        }
        let id = ticket.id.0;
        let marker = format!("[{}]", note.marker);
        if look_up_first {
            let actions = self.client.actions(id).await.map_err(|e| {
                warn!(ticket_id = id, marker = %note.marker, error = %e, "halopsa note lookup failed");
                self.port_error(&e)
            })?;
            let carries = |a: &Action| {
                [a.note.as_deref(), a.note_html.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|t| html_to_text(t).contains(&marker))
            };
            if actions.iter().any(carries) {
                return Ok(());
            }
        }
        let action = Action {
            ticket_id: Some(id),
            note_html: Some(text_to_html(&note_text(note))),
            outcome_id: self.options.note_outcome_id,
            outcome: self.options.note_outcome_id.is_none().then(|| self.options.note_outcome.clone()),
            hiddenfromuser: Some(self.options.note_hidden),
            ..Action::default()
        };
        self.client.add_action(&action).await.map(|_| ()).map_err(|e| {
            if e.outcome() == Outcome::Unknown {
                warn!(ticket_id = id, marker = %note.marker, error = %e, "halopsa note outcome unknown");
            }
            self.port_error(&e)
        })
    }

    async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: DateTime<Utc>,
    ) -> Result<Option<Vec<OwnedTicket>>, PortError> {
        if prefix.is_empty() {
            return Err(PortError::new(PortErrorKind::Invalid, "owned_tickets needs a non-empty prefix"));
        }
        let params = [("search", prefix.to_owned()), ("includedetails", "true".to_owned())];
        let rows: Vec<Ticket> =
            self.client.list_paged("Tickets", "tickets", &params).await.map_err(|e| self.port_error(&e))?;
        let mut out = Vec::new();
        for t in rows {
            let Some(id) = t.id else { continue };
            let details = match &t.details {
                Some(d) => d.clone(),
                None => match self.client.get_ticket(id).await.map_err(|e| self.port_error(&e))? {
                    Some(full) => full.details.unwrap_or_default(),
                    None => continue,
                },
            };
            let key = self
                .options
                .key_custom_field
                .as_deref()
                .and_then(|f| t.custom_field(f))
                .or_else(|| ref_of(&details))
                .filter(|k| k.starts_with(prefix));
            let Some(key) = key else { continue };
            let open = !t.status_id.is_some_and(|s| self.is_closed_status(s));
            if !open {
                let closed_at =
                    t.extra_str("dateclosed").or_else(|| t.extra_str("datecleared")).and_then(parse_halo_time);
                if closed_at.is_some_and(|at| at < closed_since) {
                    continue;
                }
            }
            out.push(OwnedTicket {
                ticket: ticket_ref(id),
                idempotency_key: IdempotencyKey(key),
                description: description_of(&details),
                open,
            });
        }
        Ok(Some(out))
    }
}
