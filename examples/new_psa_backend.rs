//! Writing a new PSA backend: one type implementing `TicketSink`, no change to the core.
//!
//! Run with `cargo run --example new_psa_backend`.
//!
//! The backend here keeps tickets in memory (a stand-in for another PSA's REST API). What it must
//! guarantee is in the trait's documentation; the two that matter most:
//! - store the draft's idempotency key with the ticket, and find tickets by it;
//! - never create twice after an ambiguous failure: look the key up first.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use msp_ticketing::catalog::{Catalog, PicklistValue};
use msp_ticketing::decide::{Context, EventDecision, decide_event};
use msp_ticketing::ledger::{Ledger, Transition};
use msp_ticketing::model::*;
use msp_ticketing::ports::{Account, OwnedTicket, PortError, PortErrorKind, RemoteTicket, TicketSink, TicketUpdate};
use msp_ticketing::rules::{RowId, RuleSet};
use msp_ticketing::ticket::{IdempotencyKey, TicketDraft, TicketRef};

/// A PSA that keeps its tickets in memory.
#[derive(Default)]
struct MemoryPsa {
    tickets: Mutex<BTreeMap<i64, (TicketDraft, PsaId)>>,
}

#[async_trait]
impl TicketSink for MemoryPsa {
    async fn catalog(&self) -> Result<Catalog, PortError> {
        // Label → id lists as this PSA names them; the core resolves the rules' labels.
        Ok(Catalog {
            statuses: vec![PicklistValue::new(1, "New"), PicklistValue::new(9, "Complete")],
            priorities: vec![PicklistValue::new(1, "Critical"), PicklistValue::new(3, "Medium")],
            queues: vec![PicklistValue::new(77, "Monitoring Alert")],
            ..Catalog::default()
        })
    }

    async fn accounts(&self) -> Result<Vec<Account>, PortError> {
        Ok(vec![Account { id: PsaId(500), name: "Acme Corp".into(), active: true }])
    }

    async fn create_ticket(&self, draft: &TicketDraft) -> Result<TicketRef, PortError> {
        // A real backend: POST the ticket with the idempotency key; on a timeout, look the key
        // up (find_ticket) before trying again.
        if let Some(existing) = self.find_ticket(&draft.idempotency_key).await? {
            return Ok(existing);
        }
        let mut tickets = self.tickets.lock().map_err(|_| PortError::new(PortErrorKind::Other, "poisoned"))?;
        let id = tickets.len() as i64 + 1;
        tickets.insert(id, (draft.clone(), draft.status));
        Ok(TicketRef { id: PsaId(id), number: Some(format!("MEM-{id:04}")) })
    }

    async fn find_ticket(&self, key: &IdempotencyKey) -> Result<Option<TicketRef>, PortError> {
        let tickets = self.tickets.lock().map_err(|_| PortError::new(PortErrorKind::Other, "poisoned"))?;
        Ok(tickets
            .iter()
            .find(|(_, (d, _))| &d.idempotency_key == key)
            .map(|(id, _)| TicketRef { id: PsaId(*id), number: Some(format!("MEM-{id:04}")) }))
    }

    async fn ticket(&self, ticket: PsaId) -> Result<Option<RemoteTicket>, PortError> {
        let tickets = self.tickets.lock().map_err(|_| PortError::new(PortErrorKind::Other, "poisoned"))?;
        Ok(tickets
            .get(&ticket.0)
            .map(|(_, status)| RemoteTicket { ticket: TicketRef { id: ticket, number: None }, status: *status }))
    }

    async fn close_ticket(&self, ticket: &TicketRef, status: PsaId) -> Result<(), PortError> {
        let mut tickets = self.tickets.lock().map_err(|_| PortError::new(PortErrorKind::Other, "poisoned"))?;
        let entry =
            tickets.get_mut(&ticket.id.0).ok_or_else(|| PortError::new(PortErrorKind::NotFound, "no such ticket"))?;
        entry.1 = status;
        Ok(())
    }

    // The ticket lifecycle (reopen, priority following severity) needs updates; a backend that
    // leaves this out keeps the default, which refuses, and never gets those features. Setting
    // absolute values makes a repeat harmless.
    async fn update_ticket(&self, ticket: &TicketRef, update: &TicketUpdate) -> Result<(), PortError> {
        let mut tickets = self.tickets.lock().map_err(|_| PortError::new(PortErrorKind::Other, "poisoned"))?;
        let (draft, status) =
            tickets.get_mut(&ticket.id.0).ok_or_else(|| PortError::new(PortErrorKind::NotFound, "no such ticket"))?;
        if let Some(s) = update.status {
            *status = s;
        }
        if let Some(p) = update.priority {
            draft.priority = p;
        }
        if let Some(d) = update.due {
            draft.due = d;
        }
        Ok(())
    }

    // `add_note` keeps its default (this backend has no notes). `owned_tickets` lets the daemon
    // rebuild a lost ledger from the PSA instead of creating tickets twice: list every ticket
    // carrying an idempotency key with the prefix (a real backend: one paged query).
    async fn owned_tickets(
        &self,
        prefix: &str,
        _closed_since: chrono::DateTime<Utc>,
    ) -> Result<Option<Vec<OwnedTicket>>, PortError> {
        let tickets = self.tickets.lock().map_err(|_| PortError::new(PortErrorKind::Other, "poisoned"))?;
        Ok(Some(
            tickets
                .iter()
                .filter(|(_, (d, _))| d.idempotency_key.as_str().starts_with(prefix))
                .map(|(id, (d, status))| OwnedTicket {
                    ticket: TicketRef { id: PsaId(*id), number: Some(format!("MEM-{id:04}")) },
                    idempotency_key: d.idempotency_key.clone(),
                    description: d.description.clone(),
                    open: *status != PsaId(5),
                })
                .collect(),
        ))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), PortError> {
    let psa = MemoryPsa::default();
    let mut rules = RuleSet::default();
    rules.general.closed_status = Some("Complete".into());
    let row = RowId::Event(Product::SecurityCenter, EventClass::Severity(Severity::Critical));
    rules.rows.get_mut(&row).expect("every row exists").enabled = true;
    let tenant = TenantId::new("ksc:main/vs:1");
    let ctx = Context::new(&rules, &psa.catalog().await?, [(tenant.clone(), PsaId(500))], psa.accounts().await?);

    let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).single().expect("a valid time");
    let event = Event {
        source_id: SourceEventId::new("42"),
        tenant,
        product: Product::SecurityCenter,
        class: EventClass::Severity(Severity::Critical),
        occurred_at: now - Duration::minutes(3),
        device: Some(Device { id: DeviceId::new("guid-1"), name: "FRONTDESK-PC".into() }),
        mailbox: None,
        event_type: "GNRL_EV_VIRUS_FOUND".into(),
        display_name: "Malicious object detected".into(),
        text: "EICAR test file detected".into(),
    };
    let mut ledger = Ledger::new();
    let EventDecision::Create(create) = decide_event(&event, &ctx, &ledger, now) else {
        return Err(PortError::new(PortErrorKind::Other, "expected a ticket"));
    };
    // Persist this transition before calling the PSA (here the ledger lives in memory).
    ledger.apply(&create.transition(), now).expect("a fresh key plans");
    let ticket = psa.create_ticket(&create.draft).await?;
    ledger.apply(&Transition::Opened { key: create.key.clone(), ticket: ticket.clone() }, now).expect("planned opens");
    // A retry after an ambiguous failure finds the same ticket instead of creating another.
    let again = psa.create_ticket(&create.draft).await?;
    assert_eq!(again, ticket);
    println!(
        "created {} for {:?} (priority id {}, queue id {})",
        ticket.number.as_deref().unwrap_or("?"),
        create.draft.title,
        create.draft.priority,
        create.draft.queue
    );
    Ok(())
}
