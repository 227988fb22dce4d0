//! The traits adapters implement: where events and statuses come from, and where tickets go.
//!
//! They are async (`async-trait`, so they stay object-safe: the daemon holds
//! `Arc<dyn TicketSink>`) and small. The core itself never calls them; the daemon does, and feeds
//! what they return into the pure functions of [`crate::decide`].
//!
//! A new PSA backend is one crate implementing [`TicketSink`]; a new source is one crate
//! implementing [`EventSource`] and/or [`StatusSource`]. Nothing in the core changes.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::model::{Event, Product, PsaId, StatusSnapshot, Tenant, TenantId};
use crate::ticket::{IdempotencyKey, TicketDraft, TicketNote, TicketRef};

/// What went wrong in an adapter, classified so the daemon can decide what to do next without
/// knowing any wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortErrorKind {
    /// Credentials rejected: retrying will not help until the configuration changes.
    Auth,
    /// The request was throttled; wait (at least `retry_after`, when given) and try again.
    RateLimited,
    /// Connect failure, timeout, 5xx: worth retrying later. For a create this means the ticket
    /// MAY exist: look it up by idempotency key before creating again.
    Transient,
    /// The thing asked for does not exist.
    NotFound,
    /// The remote side rejected the request as invalid (a rule or mapping problem).
    Invalid,
    /// Anything else.
    Other,
}

/// An adapter's error, reduced to what the daemon needs: a kind, a message (never containing a
/// secret) and an optional wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind:?}: {message}")]
pub struct PortError {
    /// Classification.
    pub kind: PortErrorKind,
    /// Human-readable detail, including the remote side's own message where there is one.
    pub message: String,
    /// How long the remote side asked us to wait.
    pub retry_after: Option<Duration>,
}

impl PortError {
    /// Builds an error of a kind.
    pub fn new(kind: PortErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), retry_after: None }
    }

    /// Adds a wait hint.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, PortErrorKind::RateLimited | PortErrorKind::Transient)
    }
}

/// A source's position in its event stream. Opaque to everyone but the adapter that made it;
/// the daemon stores it and hands it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record the adapter could not turn into an [`Event`]: reported, skipped, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedRecord {
    /// The record's id as far as it could be read (or its position).
    pub id: String,
    /// What was wrong with it.
    pub reason: String,
}

/// One page of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    /// Events in source order.
    pub events: Vec<Event>,
    /// Records that were skipped.
    pub malformed: Vec<MalformedRecord>,
    /// The cursor after this batch; pass it to the next call once the batch is durably handled.
    pub next: Cursor,
    /// Whether more events are waiting right now.
    pub more: bool,
}

/// Where events come from.
///
/// # Guarantees an implementation gives
/// - **No hidden state.** `poll_events` is a pure read: the position lives in the [`Cursor`]
///   the caller passes, so the stream advances only when the caller stores `next` (its
///   acknowledgement) and survives restarts with the stored cursor.
/// - **Order and completeness.** Events come in source order; every event after `cursor` is
///   eventually returned; an event is returned again only if the caller re-polls with an older
///   cursor.
/// - **Bad records do not end the batch.** A record that cannot be converted goes into
///   [`EventBatch::malformed`] with its id.
/// - **Errors are classified.** Reads are retried inside the adapter only for transient failures.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// Which product these events belong to.
    fn product(&self) -> Product;

    /// The tenants this source serves (virtual servers, companies).
    async fn tenants(&self) -> Result<Vec<Tenant>, PortError>;

    /// Events of `tenant` that arrived after `cursor` (`None`: from the beginning the adapter
    /// allows), at most `limit` of them.
    ///
    /// `window_start` is the caller's promise that an event which *occurred* before it can never
    /// become a ticket (now minus the longest enabled lifetime): the adapter may leave such
    /// events out to bound its read. The cursor is about arrival order, never about event time:
    /// an event that arrives late (an offline laptop delivering hours later, with its original
    /// time) comes after the cursor and must be returned if it is inside the window.
    async fn poll_events(
        &self,
        tenant: &TenantId,
        cursor: Option<&Cursor>,
        limit: usize,
        window_start: Option<DateTime<Utc>>,
    ) -> Result<EventBatch, PortError>;
}

/// Where computer statuses (and Office 365 issue states) come from.
///
/// # Guarantees an implementation gives
/// - **Complete snapshots.** A snapshot lists every device of the tenant that has an active
///   description; a device left out is taken as having none, so its status tickets close. OK
///   devices may be listed or left out (Security Center leaves them out, except for a few
///   snapshots after one turns OK: its name goes into the records of the tickets it closes).
///   On any doubt (a page failed), return an error rather than a partial snapshot.
/// - **Nothing dropped.** Descriptions not in the catalogue are kept as
///   [`crate::model::StatusDescription::Unknown`] and counted.
#[async_trait]
pub trait StatusSource: Send + Sync {
    /// Which product these statuses belong to.
    fn product(&self) -> Product;

    /// The tenants this source serves.
    async fn tenants(&self) -> Result<Vec<Tenant>, PortError>;

    /// The current complete snapshot of `tenant`.
    async fn snapshot(&self, tenant: &TenantId) -> Result<StatusSnapshot, PortError>;
}

/// A PSA account (Autotask company): tickets go only to active ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The PSA's id.
    pub id: PsaId,
    /// Name.
    pub name: String,
    /// The guide: tickets are created only for active accounts.
    pub active: bool,
}

/// What the PSA says about a ticket we created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTicket {
    /// Identity.
    pub ticket: TicketRef,
    /// Current status id.
    pub status: PsaId,
}

/// A ticket this system created, as a listing of the PSA shows it (see
/// [`TicketSink::owned_tickets`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedTicket {
    /// Identity.
    pub ticket: TicketRef,
    /// The idempotency key the ticket carries (Autotask `externalID`).
    pub idempotency_key: IdempotencyKey,
    /// The ticket's description: its last line names the problem's key (see
    /// [`crate::ticket::TicketKey::from_description`]).
    pub description: String,
    /// Whether the ticket is open (its status is not the closed status).
    pub open: bool,
}

/// Fields of an existing ticket to change (see [`TicketSink::update_ticket`]): `None` leaves a
/// field as it is. The ticket lifecycle uses it to reopen a closed ticket (status back to the
/// new-ticket status) and to raise an open ticket's priority and due time when its problem
/// becomes more severe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUpdate {
    /// New status.
    pub status: Option<PsaId>,
    /// New priority.
    pub priority: Option<PsaId>,
    /// New due time.
    pub due: Option<DateTime<Utc>>,
}

impl TicketUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.priority.is_none() && self.due.is_none()
    }
}

/// Where tickets go: one PSA.
///
/// # Guarantees an implementation gives
/// - **`create_ticket` stores the idempotency key** with the ticket (Autotask `externalID`) so
///   that [`TicketSink::find_ticket`] finds it. It never retries a create blindly: after an
///   ambiguous failure (timeout, connection lost after sending) it looks the key up first and
///   returns the existing ticket if there is one.
/// - **`find_ticket` is exact**: it returns the ticket whose key equals the given one, or `None`.
/// - **`close_ticket` is idempotent**: closing a closed ticket succeeds.
/// - **`add_note` adds a note at most once**: with `look_up_first` (the previous attempt's
///   outcome is unknown) it first looks for a note carrying [`TicketNote::marker`] on the
///   ticket and does nothing when there is one.
/// - Errors are [`PortError`]s; a create that ends in `Transient` MAY have happened.
#[async_trait]
pub trait TicketSink: Send + Sync {
    /// The picklists rules are resolved against.
    async fn catalog(&self) -> Result<Catalog, PortError>;

    /// Every account with its active flag.
    async fn accounts(&self) -> Result<Vec<Account>, PortError>;

    /// Creates a ticket from a draft.
    async fn create_ticket(&self, draft: &TicketDraft) -> Result<TicketRef, PortError>;

    /// Finds the ticket created with this idempotency key.
    async fn find_ticket(&self, key: &IdempotencyKey) -> Result<Option<TicketRef>, PortError>;

    /// Reads a ticket's current status (to notice tickets a technician closed).
    async fn ticket(&self, ticket: PsaId) -> Result<Option<RemoteTicket>, PortError>;

    /// Sets the ticket's status to `status` (the configured closed status). The note saying why
    /// is a separate piece of outbox work ([`TicketSink::add_note`]), so a note that fails is
    /// retried on its own and never re-closes or doubles anything.
    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError>;

    /// Changes the given fields of a ticket. Idempotent: setting a field to the value it has
    /// succeeds. The default refuses (`Invalid`): a backend that cannot update tickets simply
    /// never gets the lifecycle features that need it (reopen, priority follows severity).
    async fn update_ticket(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), PortError> {
        let _ = update;
        Err(PortError::new(PortErrorKind::Invalid, format!("this PSA backend cannot update ticket {}", ticket.id)))
    }

    /// Adds a note to a ticket. The default adds nothing: a backend without notes (or with
    /// notes turned off) simply succeeds.
    async fn add_note(&self, ticket: &TicketRef, note: &TicketNote, look_up_first: bool) -> Result<(), PortError> {
        let _ = (ticket, note, look_up_first);
        Ok(())
    }

    /// Every ticket this system created, found by listing the PSA: the open ones whose
    /// idempotency key starts with `prefix`, plus those closed at or after `closed_since` where
    /// the backend can tell. The daemon uses it to rebuild its ledger on an empty, lost or
    /// replaced store, so that nothing is created twice. `Ok(None)` means the backend cannot
    /// list (the default); the daemon then says so and falls back to looking each create up.
    async fn owned_tickets(
        &self,
        prefix: &str,
        closed_since: DateTime<Utc>,
    ) -> Result<Option<Vec<OwnedTicket>>, PortError> {
        let _ = (prefix, closed_since);
        Ok(None)
    }

    /// Of `tickets`, those the PSA shows with status `closed` or no longer has: the ones a
    /// technician closed. The default asks [`TicketSink::ticket`] one by one; a backend with a
    /// query language should answer in a few calls (this runs for every open ticket).
    async fn closed_among(&self, tickets: &[PsaId], closed: PsaId) -> Result<Vec<PsaId>, PortError> {
        let mut out = Vec::new();
        for id in tickets {
            match self.ticket(*id).await? {
                Some(t) if t.status != closed => {}
                _ => out.push(*id),
            }
        }
        Ok(out)
    }
}
