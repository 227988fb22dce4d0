//! The behaviour the daemon relies on from every PSA backend, as one generic suite.
//!
//! A backend's test implements [`Harness`] over its simulator (how to build a sink, a valid
//! draft, how a technician closes a ticket, how to inject faults, how to count what the PSA
//! holds) and calls [`run_contract`]. Each check is also public, so a failure names the
//! contract clause:
//!
//! | Check | Clause of `TicketSink` |
//! |---|---|
//! | [`check_create_and_find`] | `create_ticket` stores the key; `find_ticket` is exact |
//! | [`check_ambiguous_create`] | a create that may have happened is looked up, never doubled |
//! | [`check_close`] | `close_ticket` sets the closed status and is idempotent |
//! | [`check_closed_by_technician`] | `closed_among` reports tickets closed or removed in the PSA |
//! | [`check_catalog_and_accounts`] | catalog lists and account active flags are readable |
//! | [`check_note_at_most_once`] | `add_note` with `look_up_first` never adds a second note |
//! | [`check_owned_tickets`] | `owned_tickets` lists open and recently closed tickets with keys and descriptions |
//! | [`check_update_reopens`] | `update_ticket` sets a closed ticket's status back to the new status and the PSA shows it open |
//! | [`check_update_priority_and_due`] | `update_ticket` changes priority and due and leaves the rest |
//! | [`check_update_is_idempotent`] | repeating an update (or sending an empty one) succeeds and changes nothing more |
//! | [`check_update_unknown_ticket`] | updating a ticket the PSA does not have is `NotFound` |
//! | [`check_error_classes`] | 401/404/429/5xx/timeouts come back as `Auth`/`NotFound`/`RateLimited`/`Transient` |
//!
//! The suite does not know any wire format: only the harness does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketing_core::model::PsaId;
use ticketing_core::ports::{PortErrorKind, TicketSink, TicketUpdate};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, TicketNote};

/// Which requests an injected fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every API request.
    Any,
    /// Ticket creates only.
    Create,
}

/// An injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds when given) without processing.
    Status(u16, Option<u64>),
    /// Hold the request this long before serving it (longer than the sink's timeout).
    Delay(Duration),
}

/// A ticket as the PSA itself holds it (read by the harness from the simulator, not through the
/// sink under test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The status id the PSA stores.
    pub status: PsaId,
    /// The priority id.
    pub priority: PsaId,
    /// The due time.
    pub due: Option<DateTime<Utc>>,
    /// Whether the PSA counts the ticket as closed (Autotask `completedDate`, ConnectWise
    /// `closedFlag`).
    pub closed: bool,
}

/// One backend under test, over its simulator.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend's name (in failure messages).
    fn name(&self) -> &'static str;
    /// The sink under test. Its timeout must be below [`Harness::timeout_delay`] and its retry
    /// delays short, with `Retry-After` above 5 s not waited out.
    fn sink(&self) -> Arc<dyn TicketSink>;
    /// A draft the backend accepts, with this idempotency key.
    fn draft(&self, key: &str) -> TicketDraft;
    /// The status the daemon is configured to close with.
    fn closed_status(&self) -> PsaId;
    /// An active account and an inactive one.
    fn accounts(&self) -> (PsaId, PsaId);
    /// A priority above the draft's (what an escalation to Critical sets).
    fn raised_priority(&self) -> PsaId;
    /// A delay longer than the sink's timeout.
    fn timeout_delay(&self) -> Duration;
    /// Restores the simulator's seed.
    async fn reset(&self);
    /// A technician closes the ticket in the PSA.
    async fn close_as_technician(&self, ticket: PsaId);
    /// A technician deletes the ticket; `false` when the backend cannot delete tickets.
    async fn delete_ticket(&self, ticket: PsaId) -> bool;
    /// The next `count` matching requests get `fault`.
    async fn inject(&self, target: Target, fault: Fault, count: u32);
    /// The next ticket create is processed but its answer is lost; `false` when the simulator
    /// cannot do that.
    async fn lose_next_create_answer(&self) -> bool;
    /// Drops pending faults.
    async fn clear_faults(&self);
    /// How many tickets the PSA holds with this key.
    async fn tickets_with_key(&self, key: &str) -> usize;
    /// How many notes of the ticket contain `text`.
    async fn notes_containing(&self, ticket: PsaId, text: &str) -> usize;
    /// The ticket as the PSA holds it; `None` when it has no such ticket.
    async fn observe(&self, ticket: PsaId) -> Option<Observed>;
}

fn key(n: &str) -> IdempotencyKey {
    IdempotencyKey(format!("kmsp-contract-{n}"))
}

/// Create, then find by key; a different key finds nothing.
pub async fn check_create_and_find(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let k = key("a");
    let created = sink.create_ticket(&h.draft(k.as_str())).await.unwrap_or_else(|e| panic!("{name}: create: {e}"));
    let found = sink.find_ticket(&k).await.unwrap_or_else(|e| panic!("{name}: find: {e}"));
    assert_eq!(found.map(|t| t.id), Some(created.id), "{name}: find_ticket returns the created ticket");
    assert_eq!(sink.find_ticket(&key("nope")).await.unwrap(), None, "{name}: unknown key");
    assert_eq!(sink.find_ticket(&key("A")).await.unwrap(), None, "{name}: keys are exact");
    assert_eq!(h.tickets_with_key(k.as_str()).await, 1, "{name}: one ticket");
    let remote = sink.ticket(created.id).await.unwrap().unwrap_or_else(|| panic!("{name}: ticket readable"));
    assert_eq!(remote.ticket.id, created.id);
    assert_eq!(sink.ticket(PsaId(987_654_321)).await.unwrap(), None, "{name}: unknown ticket is None");
}

/// A create failing with a 5xx (and, where the simulator can, one whose answer is lost after it
/// was processed) ends with exactly one ticket.
pub async fn check_ambiguous_create(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let k = key("ambiguous");
    h.inject(Target::Create, Fault::Status(503, None), 1).await;
    let t = sink.create_ticket(&h.draft(k.as_str())).await.unwrap_or_else(|e| panic!("{name}: create after 503: {e}"));
    assert_eq!(h.tickets_with_key(k.as_str()).await, 1, "{name}: a refused create is sent again once");
    if h.lose_next_create_answer().await {
        let k2 = key("lost");
        let t2 = sink.create_ticket(&h.draft(k2.as_str())).await.unwrap_or_else(|e| panic!("{name}: lost answer: {e}"));
        assert_eq!(h.tickets_with_key(k2.as_str()).await, 1, "{name}: a processed create is found, not doubled");
        assert_ne!(t2.id, t.id);
    }
    h.clear_faults().await;
}

/// Close sets the closed status; closing again succeeds.
pub async fn check_close(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let closed = h.closed_status();
    let t = sink.create_ticket(&h.draft(key("close").as_str())).await.unwrap();
    let before = sink.closed_among(&[t.id], closed).await.unwrap();
    assert!(before.is_empty(), "{name}: a new ticket is open");
    sink.close_ticket(&t, closed).await.unwrap_or_else(|e| panic!("{name}: close: {e}"));
    let remote = sink.ticket(t.id).await.unwrap().unwrap();
    assert_eq!(remote.status, closed, "{name}: status after close");
    sink.close_ticket(&t, closed).await.unwrap_or_else(|e| panic!("{name}: close is idempotent: {e}"));
    assert_eq!(sink.closed_among(&[t.id], closed).await.unwrap(), vec![t.id], "{name}");
}

/// `closed_among` names the tickets a technician closed (or deleted), and unknown ids.
pub async fn check_closed_by_technician(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let closed = h.closed_status();
    let a = sink.create_ticket(&h.draft(key("tech-a").as_str())).await.unwrap();
    let b = sink.create_ticket(&h.draft(key("tech-b").as_str())).await.unwrap();
    let c = sink.create_ticket(&h.draft(key("tech-c").as_str())).await.unwrap();
    h.close_as_technician(a.id).await;
    let mut expect = vec![a.id];
    if h.delete_ticket(c.id).await {
        expect.push(c.id);
    }
    let gone = PsaId(987_654_321);
    expect.push(gone);
    let got = sink.closed_among(&[a.id, b.id, c.id, gone], closed).await.unwrap();
    assert_eq!(got, expect, "{name}: closed_among");
}

/// The catalog has the lists rules need; accounts carry their active flag.
pub async fn check_catalog_and_accounts(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let catalog = sink.catalog().await.unwrap_or_else(|e| panic!("{name}: catalog: {e}"));
    let draft = h.draft("x");
    assert!(catalog.queues.iter().any(|q| q.id == draft.queue), "{name}: the draft's queue is listed");
    assert!(catalog.priorities.iter().any(|q| q.id == draft.priority), "{name}: the draft's priority is listed");
    assert!(catalog.statuses.iter().any(|q| q.id == draft.status), "{name}: the new status is listed");
    assert!(catalog.statuses.iter().any(|q| q.id == h.closed_status()), "{name}: the closed status is listed");
    let (active, inactive) = h.accounts();
    let accounts = sink.accounts().await.unwrap_or_else(|e| panic!("{name}: accounts: {e}"));
    let flag = |id| accounts.iter().find(|a| a.id == id).map(|a| a.active);
    assert_eq!(flag(active), Some(true), "{name}: active account");
    assert_eq!(flag(inactive), Some(false), "{name}: inactive account");
}

/// `add_note` with `look_up_first` after a note landed adds nothing.
pub async fn check_note_at_most_once(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let t = sink.create_ticket(&h.draft(key("note").as_str())).await.unwrap();
    let note = TicketNote { marker: format!("{}/close", key("note")), text: "Closed: the problem is gone.".into() };
    sink.add_note(&t, &note, true).await.unwrap_or_else(|e| panic!("{name}: note: {e}"));
    sink.add_note(&t, &note, true).await.unwrap_or_else(|e| panic!("{name}: note again: {e}"));
    assert_eq!(h.notes_containing(t.id, &note.marker).await, 1, "{name}: at most once");
}

/// `owned_tickets` lists open and recently closed tickets of the prefix, with keys, open flags
/// and descriptions.
pub async fn check_owned_tickets(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let open = sink.create_ticket(&h.draft(key("own-open").as_str())).await.unwrap();
    let done = sink.create_ticket(&h.draft(key("own-done").as_str())).await.unwrap();
    sink.close_ticket(&done, h.closed_status()).await.unwrap();
    let mut foreign = h.draft("other-1");
    foreign.idempotency_key = IdempotencyKey("other-1".into());
    sink.create_ticket(&foreign).await.unwrap();
    let since = Utc::now() - chrono::Duration::hours(1);
    let Some(owned) = sink.owned_tickets("kmsp-contract-own", since).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    else {
        panic!("{name}: owned_tickets must list")
    };
    let find = |id| owned.iter().find(|o| o.ticket.id == id).unwrap_or_else(|| panic!("{name}: {id} listed"));
    assert!(find(open.id).open, "{name}");
    assert!(!find(done.id).open, "{name}");
    assert_eq!(find(open.id).idempotency_key, key("own-open"));
    assert!(find(open.id).description.contains("contract description"), "{name}: {:?}", find(open.id).description);
    assert_eq!(owned.len(), 2, "{name}: only the prefix");
}

async fn observe(h: &dyn Harness, ticket: PsaId) -> Observed {
    h.observe(ticket).await.unwrap_or_else(|| panic!("{}: ticket {ticket} is in the PSA", h.name()))
}

/// Reopen: a closed ticket's status goes back to the new status; the PSA shows it open again.
pub async fn check_update_reopens(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let closed = h.closed_status();
    let draft = h.draft(key("reopen").as_str());
    let t = sink.create_ticket(&draft).await.unwrap();
    sink.close_ticket(&t, closed).await.unwrap();
    assert!(observe(h, t.id).await.closed, "{name}: closed before the reopen");
    let reopen = TicketUpdate { status: Some(draft.status), ..TicketUpdate::default() };
    sink.update_ticket(&t, &reopen).await.unwrap_or_else(|e| panic!("{name}: reopen: {e}"));
    assert_eq!(sink.ticket(t.id).await.unwrap().unwrap().status, draft.status, "{name}: status after reopen");
    let o = observe(h, t.id).await;
    assert!(!o.closed, "{name}: the PSA no longer counts it closed: {o:?}");
    assert_eq!((o.priority, o.due), (draft.priority, Some(draft.due)), "{name}: the rest unchanged");
    assert!(sink.closed_among(&[t.id], closed).await.unwrap().is_empty(), "{name}: open for closed_among");
}

/// Escalation: priority and due change together; the status stays.
pub async fn check_update_priority_and_due(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let draft = h.draft(key("escalate").as_str());
    let t = sink.create_ticket(&draft).await.unwrap();
    let before = observe(h, t.id).await;
    let due = draft.due - chrono::Duration::hours(3);
    let up = TicketUpdate { status: None, priority: Some(h.raised_priority()), due: Some(due) };
    sink.update_ticket(&t, &up).await.unwrap_or_else(|e| panic!("{name}: escalate: {e}"));
    let o = observe(h, t.id).await;
    assert_eq!((o.priority, o.due), (h.raised_priority(), Some(due)), "{name}: priority and due");
    assert_eq!((o.status, o.closed), (before.status, false), "{name}: the status is left alone");
    // the due time alone
    let later = due + chrono::Duration::minutes(30);
    sink.update_ticket(&t, &TicketUpdate { due: Some(later), ..TicketUpdate::default() }).await.unwrap();
    let o = observe(h, t.id).await;
    assert_eq!((o.priority, o.due), (h.raised_priority(), Some(later)), "{name}: due alone");
}

/// Repeating an update (the daemon retries until one lands) succeeds and changes nothing more;
/// an empty update succeeds.
pub async fn check_update_is_idempotent(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let draft = h.draft(key("repeat").as_str());
    let t = sink.create_ticket(&draft).await.unwrap();
    sink.close_ticket(&t, h.closed_status()).await.unwrap();
    let all = TicketUpdate {
        status: Some(draft.status),
        priority: Some(h.raised_priority()),
        due: Some(draft.due - chrono::Duration::hours(1)),
    };
    sink.update_ticket(&t, &all).await.unwrap_or_else(|e| panic!("{name}: update: {e}"));
    let once = observe(h, t.id).await;
    sink.update_ticket(&t, &all).await.unwrap_or_else(|e| panic!("{name}: the same update again: {e}"));
    assert_eq!(observe(h, t.id).await, once, "{name}: a repeat changes nothing");
    sink.update_ticket(&t, &TicketUpdate::default()).await.unwrap_or_else(|e| panic!("{name}: empty update: {e}"));
    assert_eq!(observe(h, t.id).await, once, "{name}: an empty update changes nothing");
    assert!(!once.closed, "{name}: reopened");
}

/// An update of a ticket the PSA does not have is `NotFound`.
pub async fn check_update_unknown_ticket(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let gone = ticketing_core::ticket::TicketRef { id: PsaId(987_654_321), number: None };
    for up in [
        TicketUpdate { status: Some(h.draft("x").status), ..TicketUpdate::default() },
        TicketUpdate { priority: Some(h.raised_priority()), ..TicketUpdate::default() },
    ] {
        let err = sink.update_ticket(&gone, &up).await.expect_err(&format!("{name}: unknown ticket must fail"));
        assert_eq!(err.kind, PortErrorKind::NotFound, "{name}: {err}");
    }
}

/// Failures come back classified.
pub async fn check_error_classes(h: &dyn Harness) {
    let name = h.name();
    let sink = h.sink();
    let cases: [(Fault, PortErrorKind); 6] = [
        (Fault::Status(401, None), PortErrorKind::Auth),
        (Fault::Status(404, None), PortErrorKind::NotFound),
        (Fault::Status(429, Some(30)), PortErrorKind::RateLimited),
        (Fault::Status(503, None), PortErrorKind::Transient),
        (Fault::Status(500, None), PortErrorKind::Transient),
        (Fault::Delay(h.timeout_delay()), PortErrorKind::Transient),
    ];
    for (fault, kind) in cases {
        h.inject(Target::Any, fault, 20).await;
        let err = sink.accounts().await.expect_err(&format!("{name}: {fault:?} must fail"));
        h.clear_faults().await;
        assert_eq!(err.kind, kind, "{name}: {fault:?}: {err}");
        if let Fault::Status(429, Some(secs)) = fault {
            assert_eq!(err.retry_after, Some(Duration::from_secs(secs)), "{name}: Retry-After is kept");
            assert!(err.is_retryable());
        }
    }
    sink.accounts().await.unwrap_or_else(|e| panic!("{name}: healthy again: {e}"));
}

/// Runs every check, resetting the simulator before each.
pub async fn run_contract(h: &dyn Harness) {
    check_create_and_find(h).await;
    h.reset().await;
    check_ambiguous_create(h).await;
    h.reset().await;
    check_close(h).await;
    h.reset().await;
    check_closed_by_technician(h).await;
    h.reset().await;
    check_catalog_and_accounts(h).await;
    h.reset().await;
    check_note_at_most_once(h).await;
    h.reset().await;
    check_owned_tickets(h).await;
    h.reset().await;
    check_update_reopens(h).await;
    h.reset().await;
    check_update_priority_and_due(h).await;
    h.reset().await;
    check_update_is_idempotent(h).await;
    h.reset().await;
    check_update_unknown_ticket(h).await;
    h.reset().await;
    check_error_classes(h).await;
}
