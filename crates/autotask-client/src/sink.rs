//! [`TicketSink`] for Autotask: one create call and one close call per ticket lifecycle.
//!
//! | Port call | Autotask calls |
//! |---|---|
//! | `create_ticket` | `POST /Tickets` (+ optional CI lookup, + lookup by `externalID` only after an ambiguous failure, + optional `GET /Tickets/{id}` for the number) |
//! | `find_ticket` | `POST /Tickets/query` `externalID eq`, `MaxRecords 1` |
//! | `ticket` | `GET /Tickets/{id}` (404 or `item: null` → `None`) |
//! | `close_ticket` | `PATCH /Tickets {"id","status"}` (Autotask stamps `completedDate` when the status is Complete) |
//! | `update_ticket` | `PATCH /Tickets {"id", + only the changed "status", "priority", "dueDateTime"}`; nothing when the update is empty; after a refusal, `GET /Tickets/{id}` tells `NotFound` from `Invalid` |
//! | `add_note` | with `look_up_first`: `POST /TicketNotes/query` (`ticketID eq`, `description contains` the marker); then `POST /Tickets/{id}/Notes` unless found; nothing at all when `note_on_close` is off |
//! | `owned_tickets` | one paged `POST /Tickets/query`: `externalID beginsWith` prefix AND (still open OR `lastActivityDate gte` closed_since) |
//! | `catalog` | cached `Tickets/entityInformation/fields` + BillingCodes work types |
//! | `accounts` | `POST /Companies/query` (`id`, `companyName`, `isActive`), paged |

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketing_core::catalog::Catalog;
use ticketing_core::model::PsaId;
use ticketing_core::ports::{Account, OwnedTicket, PortError, PortErrorKind, RemoteTicket, TicketSink, TicketUpdate};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote, TicketRef};
use tracing::warn;

use crate::client::AutotaskClient;
use crate::error::{Error, Outcome};
use crate::models::{self, Ticket};
use crate::query::{Filter, Query};

/// Autotask's `TicketNote.description` length (autotask-api.md §2.7, SOAP metadata).
pub const NOTE_DESCRIPTION_MAX: usize = 32_000;

/// Options of the sink (what extra calls it may spend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// Post the close note as a ticket note (default true).
    pub note_on_close: bool,
    /// The note's `title`.
    pub note_title: String,
    /// The note's `noteType` picklist id (default 1).
    pub note_type: i64,
    /// The note's `publish` picklist id (default 1).
    pub note_publish: i64,
    /// Link a configuration item found by `draft.device_name` within the company (default
    /// false: it costs a query per ticket).
    pub link_configuration_item: bool,
    /// Fetch the ticket number after a create (default false: it costs a GET per ticket).
    pub fetch_ticket_number: bool,
    /// The status id that means "closed" for [`TicketSink::owned_tickets`] (the daemon's
    /// configured closed status). `None` (default): the sink does not assume a status id and
    /// treats a ticket as open while Autotask has not stamped its `completedDate` (Autotask
    /// stamps it when a ticket reaches the system status Complete).
    pub closed_status: Option<i64>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            note_on_close: true,
            note_title: "Closed automatically".to_owned(),
            note_type: 1,
            note_publish: 1,
            link_configuration_item: false,
            fetch_ticket_number: false,
            closed_status: None,
        }
    }
}

/// The Autotask [`TicketSink`].
#[derive(Debug, Clone)]
pub struct AutotaskSink {
    client: AutotaskClient,
    options: SinkOptions,
}

/// The `POST /Tickets` body for a draft (a pure function; `None` fields are omitted,
/// `dueDateTime` is written as UTC `…Z`, `externalID` is the idempotency key).
pub fn draft_to_ticket(draft: &TicketDraft) -> Ticket {
    Ticket {
        company_id: Some(draft.account.0),
        title: Some(draft.title.clone()),
        description: Some(draft.description.clone()),
        status: Some(draft.status.0),
        priority: Some(draft.priority.0),
        queue_id: Some(draft.queue.0),
        due_date_time: Some(draft.due),
        source: draft.source.map(|p| p.0),
        issue_type: draft.issue_type.map(|p| p.0),
        sub_issue_type: draft.sub_issue_type.map(|p| p.0),
        billing_code_id: draft.work_type.map(|p| p.0),
        external_id: Some(draft.idempotency_key.as_str().to_owned()),
        ..Ticket::default()
    }
}

/// The `PATCH /Tickets` body for an update (a pure function): `id` plus only the fields the
/// update changes (`status`, `priority`, `dueDateTime` written as UTC `…Z`, as on create).
///
/// Reopening needs nothing more than the status: `completedDate` and `completedByResourceID`
/// are read-only and stamped by Autotask itself (autotask-api.md §3.3, §3.6), which clears them
/// when a ticket leaves Complete (§7.10, inferred), so they are never sent.
pub fn update_to_patch(ticket_id: i64, update: &TicketUpdate) -> Ticket {
    Ticket {
        id: Some(ticket_id),
        status: update.status.map(|p| p.0),
        priority: update.priority.map(|p| p.0),
        due_date_time: update.due,
        ..Ticket::default()
    }
}

/// The note's `description`: the text, then a last line `[marker]`, cut (text first, on a char
/// boundary) to [`NOTE_DESCRIPTION_MAX`] characters so the marker always survives.
pub fn note_description(note: &TicketNote) -> String {
    let tail = format!("[{}]", note.marker);
    let room = NOTE_DESCRIPTION_MAX.saturating_sub(tail.chars().count() + 1);
    let text = note.text.trim_end();
    let text: String = if text.chars().count() > room { text.chars().take(room).collect() } else { text.to_owned() };
    if text.is_empty() { tail } else { format!("{text}\n{tail}") }
}

/// The `owned_tickets` query (a pure function): `externalID beginsWith prefix` AND (open OR
/// `lastActivityDate >= closed_since`). Open is `status noteq closed_status`, or, without a
/// closed status, `completedDate notExist`. Closing a ticket is an update, and every update
/// bumps `lastActivityDate`, so a ticket closed at or after `closed_since` always matches.
pub fn owned_tickets_query(prefix: &str, closed_since: DateTime<Utc>, closed_status: Option<i64>) -> Query {
    let open = match closed_status {
        Some(s) => Filter::noteq("status", s),
        None => Filter::not_exist("completedDate"),
    };
    let since = closed_since.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    Query::new()
        .filter(Filter::begins_with("externalID", prefix))
        .filter(Filter::or([open, Filter::gte("lastActivityDate", since)]))
        .include_fields(["id", "ticketNumber", "externalID", "description", "status", "completedDate"])
        .max_records(crate::query::MAX_PAGE_SIZE)
}

impl AutotaskSink {
    /// A sink over a client.
    pub fn new(client: AutotaskClient, options: SinkOptions) -> Self {
        Self { client, options }
    }

    /// The client underneath.
    pub fn client(&self) -> &AutotaskClient {
        &self.client
    }

    /// The options.
    pub fn options(&self) -> &SinkOptions {
        &self.options
    }

    /// Converts a client error, blanking the secret and integration code should the server ever
    /// echo one back in a message.
    fn port_error(&self, err: &Error) -> PortError {
        let mut p = PortError::from(err);
        let creds = &self.client.config().credentials;
        for s in [creds.secret.expose(), creds.integration_code.expose()] {
            if s.len() >= 4 {
                p.message = p.message.replace(s, "***");
            }
        }
        p
    }

    fn is_open(&self, t: &Ticket) -> bool {
        match self.options.closed_status {
            Some(closed) => t.status != Some(closed),
            None => t.completed_date.is_none(),
        }
    }
}

#[async_trait]
impl TicketSink for AutotaskSink {
    async fn catalog(&self) -> Result<Catalog, PortError> {
        self.client.catalog().await.map_err(|e| self.port_error(&e))
    }

    async fn accounts(&self) -> Result<Vec<Account>, PortError> {
        let companies = self.client.companies().await.map_err(|e| self.port_error(&e))?;
        Ok(companies
            .into_iter()
            .filter_map(|c| {
                Some(Account {
                    id: PsaId(c.id?),
                    name: c.company_name.unwrap_or_default(),
                    active: c.is_active.unwrap_or(false),
                })
            })
            .collect())
    }

    async fn create_ticket(&self, draft: &TicketDraft) -> Result<TicketRef, PortError> {
        if draft.idempotency_key.as_str().is_empty() || draft.idempotency_key.as_str().len() > IdempotencyKey::MAX_LEN {
            return Err(PortError::new(PortErrorKind::Invalid, "idempotency key must be 1..=50 characters"));
        }
        let mut ticket = draft_to_ticket(draft);
        if self.options.link_configuration_item
            && let Some(device) = draft.device_name.as_deref().filter(|d| !d.is_empty())
        {
            match self.client.find_configuration_item(draft.account.0, device).await {
                Ok(Some(ci)) => ticket.configuration_item_id = ci.id,
                Ok(None) => {}
                // linking is a nicety: a failed lookup does not stop the ticket
                Err(e) => warn!(error = %e, "configuration item lookup failed"),
            }
        }
        let created = self.client.create_ticket(&ticket).await.map_err(|e| {
            if e.outcome() == Outcome::Unknown {
                warn!(idempotency_key = %draft.idempotency_key, error = %e, "ticket create outcome unknown");
            }
            self.port_error(&e)
        })?;
        let mut number = created.ticket_number;
        if number.is_none() && self.options.fetch_ticket_number {
            match self.client.get_ticket(created.id).await {
                Ok(Some(t)) => number = t.ticket_number,
                Ok(None) => {}
                Err(e) => warn!(error = %e, ticket = created.id, "could not read the new ticket's number"),
            }
        }
        Ok(TicketRef { id: PsaId(created.id), number })
    }

    async fn find_ticket(&self, key: &IdempotencyKey) -> Result<Option<TicketRef>, PortError> {
        let found = self.client.find_ticket_by_external_id(key.as_str()).await.map_err(|e| self.port_error(&e))?;
        Ok(found.and_then(|t| Some(TicketRef { id: PsaId(t.id?), number: t.ticket_number })))
    }

    async fn ticket(&self, ticket: PsaId) -> Result<Option<RemoteTicket>, PortError> {
        let Some(t) = self.client.get_ticket(ticket.0).await.map_err(|e| self.port_error(&e))? else {
            return Ok(None);
        };
        let status = t.status.ok_or_else(|| {
            PortError::new(PortErrorKind::Other, format!("ticket {} came back without a status", ticket))
        })?;
        Ok(Some(RemoteTicket {
            ticket: TicketRef { id: PsaId(t.id.unwrap_or(ticket.0)), number: t.ticket_number },
            status: PsaId(status),
        }))
    }

    /// One `Tickets/query` per 500 tickets (`id in [...]`, only `id` and `status` returned)
    /// instead of a GET per ticket.
    async fn closed_among(&self, tickets: &[PsaId], closed: PsaId) -> Result<Vec<PsaId>, PortError> {
        let mut out = Vec::new();
        for chunk in tickets.chunks(500) {
            let ids: Vec<i64> = chunk.iter().map(|p| p.0).collect();
            let query = crate::query::Query::new()
                .filter(crate::query::Filter::is_in("id", ids.iter().copied()))
                .include_fields(["id", "status"]);
            let found: Vec<Ticket> = self.client.query_all(query).await.map_err(|e| self.port_error(&e))?;
            for id in &ids {
                match found.iter().find(|t| t.id == Some(*id)) {
                    Some(t) if t.status != Some(closed.0) => {}
                    _ => out.push(PsaId(*id)),
                }
            }
        }
        Ok(out)
    }

    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        match self.client.set_ticket_status(ticket.id.0, status.0).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.outcome() == Outcome::Unknown {
                    warn!(ticket_id = ticket.id.0, status = status.0, error = %e, "ticket close outcome unknown");
                }
                Err(self.port_error(&e))
            }
        }
    }

    /// A PATCH of absolute values, so retried like a close (idempotent). Autotask answers an
    /// unknown id with a 500 refusal (`Ticket with id N not found.`, modelled), not a 404: after
    /// a refusal the ticket is read back, and a ticket that is not there is `NotFound`.
    async fn update_ticket(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), PortError> {
        if update.is_empty() {
            return Ok(());
        }
        let id = ticket.id.0;
        let Err(err) = self.client.update_ticket(&update_to_patch(id, update)).await else {
            return Ok(());
        };
        if err.outcome() == Outcome::Unknown {
            warn!(ticket_id = id, error = %err, "ticket update outcome unknown");
        }
        let mut port = self.port_error(&err);
        if err.outcome() == Outcome::Rejected && port.kind == PortErrorKind::Invalid {
            match self.client.get_ticket(id).await {
                Ok(None) => port.kind = PortErrorKind::NotFound,
                Ok(Some(_)) => {}
                Err(e) => warn!(ticket_id = id, error = %e, "could not read the ticket after a refused update"),
            }
        }
        Err(port)
    }

    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote, look_up_first: bool) -> Result<(), PortError> {
        if !self.options.note_on_close {
            return Ok(());
        }
        let description = note_description(note);
        if look_up_first {
            let marker = format!("[{}]", note.marker);
            let q = Query::new()
                .filter(Filter::eq("ticketID", ticket.id.0))
                .filter(Filter::contains("description", marker.clone()))
                .include_fields(["id", "ticketID", "description"]);
            let found: Vec<models::TicketNote> = self.client.query_all(q).await.map_err(|e| {
                warn!(ticket_id = ticket.id.0, marker = %note.marker, error = %e, "ticket note lookup failed");
                self.port_error(&e)
            })?;
            // the server compares case-insensitively; the marker is exact
            if found.iter().any(|n| n.description.as_deref().is_some_and(|d| d.contains(&marker))) {
                return Ok(());
            }
        }
        let n = models::TicketNote {
            title: Some(self.options.note_title.clone()),
            description: Some(description),
            note_type: Some(self.options.note_type),
            publish: Some(self.options.note_publish),
            ..models::TicketNote::default()
        };
        match self.client.create_ticket_note(ticket.id.0, &n).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.outcome() == Outcome::Unknown {
                    warn!(ticket_id = ticket.id.0, marker = %note.marker, error = %e, "ticket note outcome unknown");
                }
                Err(self.port_error(&e))
            }
        }
    }

    async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: DateTime<Utc>,
    ) -> Result<Option<Vec<OwnedTicket>>, PortError> {
        if prefix.is_empty() {
            return Err(PortError::new(PortErrorKind::Invalid, "owned_tickets needs a non-empty prefix"));
        }
        let q = owned_tickets_query(prefix, closed_since, self.options.closed_status);
        let rows: Vec<Ticket> = self.client.query_all(q).await.map_err(|e| self.port_error(&e))?;
        let out = rows
            .into_iter()
            .filter_map(|t| {
                let id = t.id?;
                // beginsWith is case-insensitive on the server; the prefix is exact
                let key = t.external_id.clone().filter(|k| k.starts_with(prefix))?;
                let open = self.is_open(&t);
                Some(OwnedTicket {
                    ticket: TicketRef { id: PsaId(id), number: t.ticket_number },
                    idempotency_key: IdempotencyKey(key),
                    description: t.description.unwrap_or_default(),
                    open,
                })
            })
            .collect();
        Ok(Some(out))
    }
}
