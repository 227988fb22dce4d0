//! [`TicketSink`] for ConnectWise PSA.
//!
//! | Port call | ConnectWise calls |
//! |---|---|
//! | `create_ticket` | (cached catalog) `POST /service/tickets` with `externalXRef` = key; after an ambiguous failure `GET /service/tickets?conditions=externalXRef="key"` before anything is sent again |
//! | `find_ticket` | `GET /service/tickets?conditions=externalXRef="key"` (exact match re-checked) |
//! | `ticket` | `GET /service/tickets/{id}` (404 → `None`); the status is mapped to the catalog's id for its label |
//! | `close_ticket` | `GET /service/tickets/{id}`, then `PATCH` `[{"op":"replace","path":"status","value":{"id":N}}]` with the ticket board's closed status; the answer must show `N` |
//! | `update_ticket` | `GET /service/tickets/{id}` (404 → `NotFound`), then one `PATCH` of `replace` ops for the fields that differ: `status` `{"id"}` (retargeted to the ticket's board by label), `priority` `{"id"}`, `requiredDate`; the answer must show them; nothing is sent when nothing differs |
//! | `add_note` | with `look_up_first`: `GET …/{id}/notes?conditions=text contains "[marker]"`; then `POST …/{id}/notes` unless found |
//! | `closed_among` | `GET /service/tickets?conditions=id in (…)&fields=id,status,closedFlag` per 100 ids |
//! | `owned_tickets` | one paged `GET /service/tickets?conditions=externalXRef like "prefix%" AND (closedFlag = False OR closedDate >= [since])`, then each ticket's first discussion note (the initial description, which ConnectWise never returns on the ticket) |
//! | `catalog` | cached board catalog (see [`crate::catalog`]) |
//! | `accounts` | `GET /company/companies` + `GET /company/companies/statuses` |

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::model::PsaId;
use ticketing_core::ports::{Account, OwnedTicket, PortError, PortErrorKind, RemoteTicket, TicketSink, TicketUpdate};
use ticketing_core::secret::Secret;
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote, TicketRef, truncate_chars};
use tracing::warn;

use crate::catalog::{BoardCatalog, BoardList};
use crate::client::{ConnectWiseClient, ListQuery};
use crate::conditions::{Condition, like_prefix};
use crate::config::{Credentials, PagingMode};
use crate::error::{Error, Outcome};
use crate::models::{PatchOp, Reference, ServiceNote, Ticket};
use crate::{EXTERNAL_XREF_MAX, SUMMARY_MAX};

/// Ids per `closed_among` query (`id in (…)` stays well under the URL limit).
pub const CLOSED_AMONG_BATCH: usize = 100;

/// Which kind of note the sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// `internalAnalysisFlag` (technicians only). The default.
    #[default]
    Internal,
    /// `detailDescriptionFlag` (the discussion; may be visible to the customer).
    Discussion,
    /// `resolutionFlag`.
    Resolution,
}

/// Options of the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// Post the close note as a ticket note (default true).
    pub note_on_close: bool,
    /// Which kind of note.
    pub note_kind: NoteKind,
    /// `processNotifications` on notes (default false: no e-mails for automatic notes).
    pub note_notifications: bool,
    /// A rule's status/type/subtype/item that the ticket's board does not have (by label) makes
    /// the create fail as `Invalid` (true), or is left out so the board's default applies
    /// (false, the default; a warning is logged).
    pub strict_board_fields: bool,
    /// Company status names taken as inactive when `/company/companies/statuses` cannot be read
    /// (default `["Inactive"]`) [I].
    pub inactive_status_names: Vec<String>,
    /// Read each owned ticket's first discussion note to fill `OwnedTicket::description`
    /// (default true; it costs one call per ticket and runs only on a ledger rebuild).
    pub owned_descriptions: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            note_on_close: true,
            note_kind: NoteKind::default(),
            note_notifications: false,
            strict_board_fields: false,
            inactive_status_names: vec!["Inactive".to_owned()],
            owned_descriptions: true,
        }
    }
}

/// The ConnectWise [`TicketSink`].
#[derive(Debug, Clone)]
pub struct ConnectWiseSink {
    client: ConnectWiseClient,
    options: SinkOptions,
}

/// The summary for a title: cut to [`SUMMARY_MAX`] characters (with the core's cut marker).
pub fn summary_for(title: &str) -> String {
    truncate_chars(title.trim(), SUMMARY_MAX)
}

/// The note's text: the text, then a last line `[marker]` (a pure function).
pub fn note_text(note: &TicketNote) -> String {
    let tail = format!("[{}]", note.marker);
    let text = note.text.trim_end();
    if text.is_empty() { tail } else { format!("{text}\n{tail}") }
}

/// The `owned_tickets` condition (a pure function).
pub fn owned_tickets_condition(prefix: &str, closed_since: DateTime<Utc>) -> Condition {
    Condition::like("externalXRef", like_prefix(prefix))
        .and(Condition::or([Condition::eq("closedFlag", false), Condition::ge("closedDate", closed_since)]))
}

/// The JSON Patch for an update (a pure function): one `replace` of the whole value per field
/// that `update` sets and `current` does not already show. `status` is the id already retargeted
/// to the ticket's board. `requiredDate` is written as on create (RFC 3339, UTC `Z`). Reopening
/// is the status alone: ConnectWise itself clears `closedFlag`/`closedDate` when the status is
/// not a closed status (the client never writes those read-mostly fields).
pub fn update_ops(current: &Ticket, status: Option<i64>, update: &TicketUpdate) -> Vec<PatchOp> {
    let mut ops = Vec::new();
    if let Some(s) = status
        && current.status.as_ref().and_then(|r| r.id) != Some(s)
    {
        ops.push(PatchOp::replace("status", serde_json::json!({"id": s})));
    }
    if let Some(p) = update.priority
        && current.priority.as_ref().and_then(|r| r.id) != Some(p.0)
    {
        ops.push(PatchOp::replace("priority", serde_json::json!({"id": p.0})));
    }
    if let Some(due) = update.due
        && current.required_date != Some(due)
    {
        ops.push(PatchOp::replace("requiredDate", serde_json::json!(due)));
    }
    ops
}

/// What of `ops` the PATCH answer does not show (the "false 200"), or `None` when all of it.
pub fn update_not_applied(answer: &Ticket, ops: &[PatchOp]) -> Option<String> {
    let id_of = |r: &Option<Reference>| r.as_ref().and_then(|r| r.id);
    let missing: Vec<String> = ops
        .iter()
        .filter(|op| match op.path.as_str() {
            "status" => id_of(&answer.status) != op.value["id"].as_i64(),
            "priority" => id_of(&answer.priority) != op.value["id"].as_i64(),
            "requiredDate" => {
                let sent = op.value.as_str().and_then(|v| DateTime::parse_from_rfc3339(v).ok());
                answer.required_date.map(|d| d.fixed_offset()) != sent
            }
            _ => false,
        })
        .map(|op| op.path.clone())
        .collect();
    (!missing.is_empty()).then(|| format!("the answer does not show the new {}", missing.join(", ")))
}

/// The `closed_among` condition for one batch (a pure function).
pub fn closed_among_condition(ids: &[i64]) -> Condition {
    Condition::is_in("id", ids.iter().copied())
}

impl ConnectWiseSink {
    /// A sink over a client.
    pub fn new(client: ConnectWiseClient, options: SinkOptions) -> Self {
        Self { client, options }
    }

    /// The client underneath.
    pub fn client(&self) -> &ConnectWiseClient {
        &self.client
    }

    /// The options.
    pub fn options(&self) -> &SinkOptions {
        &self.options
    }

    /// Converts a client error, blanking the private key should the server ever echo it.
    fn port_error(&self, err: &Error) -> PortError {
        let mut p = PortError::from(err);
        let key = self.client.config().credentials.private_key.expose();
        if key.len() >= 4 {
            p.message = p.message.replace(key, "***");
        }
        p
    }

    async fn board_catalog(&self) -> Result<Arc<BoardCatalog>, PortError> {
        self.client.board_catalog().await.map_err(|e| self.port_error(&e))
    }

    /// The catalog, re-read once when it does not know `board` (a board added since).
    async fn catalog_with_board(&self, board: i64) -> Result<Arc<BoardCatalog>, PortError> {
        let c = self.board_catalog().await?;
        if c.board(board).is_some() {
            return Ok(c);
        }
        self.client.refresh_board_catalog().await.map_err(|e| self.port_error(&e))
    }

    fn board_field(
        &self,
        catalog: &BoardCatalog,
        list: BoardList,
        id: Option<PsaId>,
        board: i64,
        what: &str,
    ) -> Result<Option<Reference>, PortError> {
        let Some(id) = id else { return Ok(None) };
        match catalog.retarget(list, id.0, board) {
            Some(i) => Ok(Some(Reference::id(i))),
            None if self.options.strict_board_fields => Err(PortError::new(
                PortErrorKind::Invalid,
                format!("board {board} has no {what} like {} ({})", catalog.label(list, id.0).unwrap_or("?"), id.0),
            )),
            None => {
                warn!(board, what, id = id.0, "the board has no such value; left out so the board default applies");
                Ok(None)
            }
        }
    }

    /// The `POST /service/tickets` body for a draft, with board-scoped ids retargeted to the
    /// draft's board.
    pub fn draft_to_ticket(&self, draft: &TicketDraft, catalog: &BoardCatalog) -> Result<Ticket, PortError> {
        let board = draft.queue.0;
        if catalog.board(board).is_none() {
            return Err(PortError::new(PortErrorKind::Invalid, format!("board {board} does not exist")));
        }
        Ok(Ticket {
            summary: Some(summary_for(&draft.title)),
            company: Some(Reference::id(draft.account.0)),
            board: Some(Reference::id(board)),
            status: self.board_field(catalog, BoardList::Status, Some(draft.status), board, "status")?,
            priority: Some(Reference::id(draft.priority.0)),
            kind: self.board_field(catalog, BoardList::Type, draft.issue_type, board, "type")?,
            sub_type: self.board_field(catalog, BoardList::SubType, draft.sub_issue_type, board, "subtype")?,
            item: self.board_field(catalog, BoardList::Item, draft.work_type, board, "item")?,
            source: draft.source.map(|s| Reference::id(s.0)),
            required_date: Some(draft.due),
            initial_description: Some(draft.description.clone()),
            external_x_ref: Some(draft.idempotency_key.as_str().to_owned()),
            ..Ticket::default()
        })
    }

    async fn first_discussion(&self, id: i64) -> Result<String, Error> {
        let q = ListQuery::matching(Condition::eq("detailDescriptionFlag", true)).limit(1);
        let notes = self.client.ticket_notes(id, &q).await?;
        Ok(notes.into_iter().next().and_then(|n| n.text).unwrap_or_default())
    }
}

fn ticket_ref(t: &Ticket, fallback: i64) -> TicketRef {
    let id = t.id.unwrap_or(fallback);
    // ConnectWise shows the ticket id itself as the number technicians see
    TicketRef { id: PsaId(id), number: Some(id.to_string()) }
}

#[async_trait]
impl TicketSink for ConnectWiseSink {
    async fn catalog(&self) -> Result<Catalog, PortError> {
        Ok(self.board_catalog().await?.to_catalog())
    }

    async fn accounts(&self) -> Result<Vec<Account>, PortError> {
        let companies = self.client.companies().await.map_err(|e| self.port_error(&e))?;
        let inactive: Option<Vec<i64>> = match self.client.company_statuses().await {
            Ok(s) => Some(s.into_iter().filter(|s| s.inactive_flag).map(|s| s.id).collect()),
            Err(e) if e.outcome() == Outcome::Rejected && !matches!(e.class(), crate::ErrorClass::RateLimited) => {
                warn!(error = %e, "company statuses not readable; inactive by status name");
                None
            }
            Err(e) => return Err(self.port_error(&e)),
        };
        Ok(companies
            .into_iter()
            .map(|c| {
                let status_inactive = c.status.as_ref().is_some_and(|s| match &inactive {
                    Some(ids) => s.id.is_some_and(|i| ids.contains(&i)),
                    None => s
                        .name
                        .as_deref()
                        .is_some_and(|n| self.options.inactive_status_names.iter().any(|x| x.eq_ignore_ascii_case(n))),
                });
                Account {
                    id: PsaId(c.id),
                    name: c.name.unwrap_or_default(),
                    active: !c.deleted_flag.unwrap_or(false) && !status_inactive,
                }
            })
            .collect())
    }

    async fn create_ticket(&self, draft: &TicketDraft) -> Result<TicketRef, PortError> {
        let key = draft.idempotency_key.as_str();
        if key.is_empty() || key.chars().count() > EXTERNAL_XREF_MAX {
            return Err(PortError::new(
                PortErrorKind::Invalid,
                format!("idempotency key must be 1..={EXTERNAL_XREF_MAX} characters"),
            ));
        }
        let catalog = self.catalog_with_board(draft.queue.0).await?;
        let ticket = self.draft_to_ticket(draft, &catalog)?;
        let created = self.client.create_ticket(&ticket).await.map_err(|e| {
            if e.outcome() == Outcome::Unknown {
                warn!(idempotency_key = %draft.idempotency_key, error = %e, "ticket create outcome unknown");
            }
            self.port_error(&e)
        })?;
        Ok(ticket_ref(&created.ticket, 0))
    }

    async fn find_ticket(&self, key: &IdempotencyKey) -> Result<Option<TicketRef>, PortError> {
        let found = self.client.find_ticket_by_xref(key.as_str()).await.map_err(|e| self.port_error(&e))?;
        Ok(found.filter(|t| t.id.is_some()).map(|t| ticket_ref(&t, 0)))
    }

    async fn ticket(&self, ticket: PsaId) -> Result<Option<RemoteTicket>, PortError> {
        let Some(t) = self.client.get_ticket(ticket.0).await.map_err(|e| self.port_error(&e))? else {
            return Ok(None);
        };
        let status = t.status.as_ref().and_then(|s| s.id).ok_or_else(|| {
            PortError::new(PortErrorKind::Other, format!("ticket {ticket} came back without a status"))
        })?;
        let status = match self.client.board_catalog().await {
            Ok(c) => c.canonical_status(status),
            Err(e) => {
                warn!(error = %e, "catalog not readable; ticket status left as the board's id");
                status
            }
        };
        Ok(Some(RemoteTicket { ticket: ticket_ref(&t, ticket.0), status: PsaId(status) }))
    }

    /// One query per [`CLOSED_AMONG_BATCH`] tickets. A ticket counts as closed when ConnectWise
    /// no longer has it, shows `closedFlag`, or shows the status `closed` itself.
    async fn closed_among(&self, tickets: &[PsaId], closed: PsaId) -> Result<Vec<PsaId>, PortError> {
        let mut out = Vec::new();
        for chunk in tickets.chunks(CLOSED_AMONG_BATCH) {
            let ids: Vec<i64> = chunk.iter().map(|p| p.0).collect();
            let q = ListQuery::matching(closed_among_condition(&ids)).fields(["id", "status", "closedFlag"]);
            let found: Vec<Ticket> = self.client.list("service/tickets", &q).await.map_err(|e| self.port_error(&e))?;
            for id in &ids {
                match found.iter().find(|t| t.id == Some(*id)) {
                    Some(t)
                        if !t.closed_flag.unwrap_or(false)
                            && t.status.as_ref().and_then(|s| s.id) != Some(closed.0) => {}
                    _ => out.push(PsaId(*id)),
                }
            }
        }
        Ok(out)
    }

    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        let id = ticket.id.0;
        let Some(current) = self.client.get_ticket(id).await.map_err(|e| self.port_error(&e))? else {
            return Err(PortError::new(PortErrorKind::NotFound, format!("ticket {id} does not exist")));
        };
        if current.closed_flag == Some(true) {
            return Ok(());
        }
        let board =
            current.board.as_ref().and_then(|b| b.id).ok_or_else(|| {
                PortError::new(PortErrorKind::Other, format!("ticket {id} came back without a board"))
            })?;
        let catalog = self.catalog_with_board(board).await?;
        let Some(target) = catalog.closed_status_for(status.0, board) else {
            return Err(PortError::new(PortErrorKind::Invalid, format!("board {board} has no closed status")));
        };
        if current.status.as_ref().and_then(|s| s.id) == Some(target) {
            return Ok(());
        }
        match self.client.set_ticket_status(id, target).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.outcome() == Outcome::Unknown {
                    warn!(ticket_id = id, status = target, error = %e, "ticket close outcome unknown");
                }
                Err(self.port_error(&e))
            }
        }
    }

    /// Reads the ticket first (its board scopes the status; a missing ticket is `NotFound`),
    /// then patches only what differs, so a repeat sends nothing. The PATCH sets absolute values
    /// and is retried like a close.
    async fn update_ticket(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), PortError> {
        if update.is_empty() {
            return Ok(());
        }
        let id = ticket.id.0;
        let Some(current) = self.client.get_ticket(id).await.map_err(|e| self.port_error(&e))? else {
            return Err(PortError::new(PortErrorKind::NotFound, format!("ticket {id} does not exist")));
        };
        let status = match update.status {
            None => None,
            Some(wanted) => {
                let board = current.board.as_ref().and_then(|b| b.id).ok_or_else(|| {
                    PortError::new(PortErrorKind::Other, format!("ticket {id} came back without a board"))
                })?;
                let catalog = self.catalog_with_board(board).await?;
                let target = catalog.retarget(BoardList::Status, wanted.0, board).ok_or_else(|| {
                    PortError::new(
                        PortErrorKind::Invalid,
                        format!(
                            "board {board} has no status like {} ({})",
                            catalog.label(BoardList::Status, wanted.0).unwrap_or("?"),
                            wanted.0
                        ),
                    )
                })?;
                Some(target)
            }
        };
        let ops = update_ops(&current, status, update);
        if ops.is_empty() {
            return Ok(());
        }
        let answer = self.client.patch_ticket(id, &ops).await.map_err(|e| {
            if e.outcome() == Outcome::Unknown {
                warn!(ticket_id = id, error = %e, "ticket update outcome unknown");
            }
            self.port_error(&e)
        })?;
        match update_not_applied(&answer, &ops) {
            None => Ok(()),
            Some(detail) => Err(self.port_error(&Error::NotApplied { what: format!("ticket {id} update"), detail })),
        }
    }

    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote, look_up_first: bool) -> Result<(), PortError> {
        if !self.options.note_on_close {
            return Ok(());
        }
        let marker = format!("[{}]", note.marker);
        if look_up_first {
            let q = ListQuery::matching(Condition::contains("text", marker.clone())).fields(["id", "text"]);
            let found = self.client.ticket_notes(ticket.id.0, &q).await.map_err(|e| {
                warn!(ticket_id = ticket.id.0, marker = %note.marker, error = %e, "ticket note lookup failed");
                self.port_error(&e)
            })?;
            // the server compares case-insensitively; the marker is exact
            if found.iter().any(|n| n.text.as_deref().is_some_and(|t| t.contains(&marker))) {
                return Ok(());
            }
        }
        let kind = self.options.note_kind;
        let n = ServiceNote {
            text: Some(note_text(note)),
            detail_description_flag: Some(kind == NoteKind::Discussion),
            internal_analysis_flag: Some(kind == NoteKind::Internal),
            resolution_flag: Some(kind == NoteKind::Resolution),
            internal_flag: Some(kind == NoteKind::Internal),
            process_notifications: Some(self.options.note_notifications),
            ..ServiceNote::default()
        };
        match self.client.add_ticket_note(ticket.id.0, &n).await {
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
        let q = ListQuery::matching(owned_tickets_condition(prefix, closed_since)).fields([
            "id",
            "externalXRef",
            "closedFlag",
            "status",
        ]);
        let rows: Vec<Ticket> = self.client.list("service/tickets", &q).await.map_err(|e| self.port_error(&e))?;
        // like is case-insensitive and treats `_`/`%` in the prefix as wildcards: check exactly
        let rows: Vec<(i64, String, bool)> = rows
            .into_iter()
            .filter_map(|t| {
                let key = t.external_x_ref.filter(|k| k.starts_with(prefix))?;
                Some((t.id?, key, !t.closed_flag.unwrap_or(false)))
            })
            .collect();
        let with_descriptions = self.options.owned_descriptions;
        let out: Vec<OwnedTicket> = futures::stream::iter(rows)
            .map(|(id, key, open)| async move {
                let description = if with_descriptions { self.first_discussion(id).await? } else { String::new() };
                Ok::<_, Error>(OwnedTicket {
                    ticket: TicketRef { id: PsaId(id), number: Some(id.to_string()) },
                    idempotency_key: IdempotencyKey(key),
                    description,
                    open,
                })
            })
            .buffered(4)
            .try_collect()
            .await
            .map_err(|e| self.port_error(&e))?;
        Ok(Some(out))
    }
}

// ------------------------------------------------------------------------------------------------
// What the daemon wires
// ------------------------------------------------------------------------------------------------

/// How lists are paged, as configuration spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PagingSetting {
    /// `pagination-type: forward-only` (the default).
    #[default]
    ForwardOnly,
    /// `page`/`pageSize`.
    Numbered,
}

/// The `[psa.connectwise]` settings, serde-friendly. `Debug` never shows the private key.
///
/// ```
/// let s: connectwise_client::ConnectWiseSettings = serde_json::from_value(serde_json::json!({
///     "site": "na.myconnectwise.net", "company_id": "mycompany",
///     "public_key": "PUB", "private_key": "PRIV"
/// })).unwrap();
/// assert!(!format!("{s:?}").contains("PRIV"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectWiseSettings {
    /// The site to discover the codebase from (`na.myconnectwise.net`); not needed with `base_url`.
    #[serde(default)]
    pub site: Option<String>,
    /// The login company id.
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The API member's private key.
    pub private_key: Secret,
    /// The integration's `clientId` (default: the project's).
    #[serde(default)]
    pub client_id: Option<String>,
    /// API root override (skips discovery): `https://host/v4_6_release/apis/3.0/`, or a host for
    /// the simulator.
    #[serde(default)]
    pub base_url: Option<String>,
    /// API host override after discovery.
    #[serde(default)]
    pub api_host: Option<String>,
    /// The version pinned in `Accept` (default 2025.1).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Whole-request timeout in seconds (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Rows per page (default 500, at most 1000).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Paging mode.
    #[serde(default)]
    pub paging: PagingSetting,
    /// Concurrent requests (default 4).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Catalog cache in seconds (default 900).
    #[serde(default)]
    pub catalog_ttl_secs: Option<u64>,
    /// Post close notes (default true).
    #[serde(default)]
    pub note_on_close: Option<bool>,
    /// Which kind of note (default internal).
    #[serde(default)]
    pub note_kind: NoteKind,
    /// See [`SinkOptions::strict_board_fields`].
    #[serde(default)]
    pub strict_board_fields: bool,
}

impl ConnectWiseSettings {
    /// The client these settings describe.
    pub fn client(&self) -> Result<ConnectWiseClient, Error> {
        let mut creds = Credentials::new(&self.company_id, &self.public_key, self.private_key.clone());
        if let Some(id) = &self.client_id {
            creds = creds.client_id(id);
        }
        let mut b = ConnectWiseClient::builder(creds).paging(match self.paging {
            PagingSetting::ForwardOnly => PagingMode::ForwardOnly,
            PagingSetting::Numbered => PagingMode::Numbered,
        });
        if let Some(u) = &self.base_url {
            b = b.base_url(u);
        }
        if let Some(s) = &self.site {
            b = b.site(s);
        }
        if let Some(h) = &self.api_host {
            b = b.api_host(h);
        }
        if let Some(v) = &self.api_version {
            b = b.api_version(v);
        }
        if let Some(t) = self.timeout_secs {
            b = b.timeout(Duration::from_secs(t.max(1)));
        }
        if let Some(n) = self.page_size {
            b = b.page_size(n);
        }
        if let Some(n) = self.max_concurrency {
            b = b.max_concurrency(n);
        }
        if let Some(t) = self.catalog_ttl_secs {
            b = b.catalog_ttl(Duration::from_secs(t));
        }
        b.retry(crate::retry::default_policy()).build()
    }

    /// The sink options these settings describe.
    pub fn sink_options(&self) -> SinkOptions {
        SinkOptions {
            note_on_close: self.note_on_close.unwrap_or(true),
            note_kind: self.note_kind,
            strict_board_fields: self.strict_board_fields,
            ..SinkOptions::default()
        }
    }
}

/// Builds the sink the daemon holds (`Arc<dyn TicketSink>`). Fails only on configuration
/// mistakes (`Invalid`); nothing is sent until the first call.
pub fn connect(settings: &ConnectWiseSettings) -> Result<Arc<dyn TicketSink>, PortError> {
    let client = settings.client().map_err(|e| PortError::from(&e))?;
    Ok(Arc::new(ConnectWiseSink::new(client, settings.sink_options())))
}

/// How ConnectWise names the core's rule fields (the UI says "Board" where Autotask says
/// "Queue"); rules keep their labels, resolved per backend.
pub fn field_label(field: Field) -> &'static str {
    match field {
        Field::TicketSource => "Source",
        Field::NewStatus => "New status (of the board)",
        Field::ClosedStatus => "Closed status (of the board)",
        Field::Queue => "Board",
        Field::Priority => "Priority",
        Field::WorkType => "Item",
        Field::IssueType => "Type",
        Field::SubIssueType => "Subtype",
        Field::Lifetime => "Lifetime (days)",
        Field::DueHours => "Due (hours)",
        // lifecycle: handled in the engine integration (labels of the issue-20 settings)
        Field::CreateDelay => "Creation delay, minutes",
        Field::ReopenHours => "Reopen window, hours",
        Field::RecurrenceHours => "Recurrence window, hours",
        Field::TitleTemplate => "Title template",
        Field::DescriptionTemplate => "Description template",
        Field::StormThreshold => "Storm after, tickets",
        Field::StormWindow => "Storm window, minutes",
        Field::StormNote => "Storm notes every, minutes",
        Field::OutbreakAsStorm => "Outbreak opens a storm",
        Field::Maintenance => "Maintenance window",
        Field::PriorityFollowsSeverity => "Priority follows severity",
    }
}
