//! Sans-IO core of msp-ticketing: every decision about Kaspersky events, computer statuses and
//! PSA tickets, as pure functions of their inputs and the current time.
//!
//! ```text
//!  Event ──────────▶ decide_event(event, ctx, ledger, now) ──▶ Create(draft) | Skip(reason)
//!  StatusSnapshot ─▶ reconcile(snapshot, ctx, ledger, now) ──▶ [Create | Close | Clear]
//!  Action/Create ──▶ .transition() ──▶ Ledger::apply (the caller persists it, then calls the PSA)
//! ```
//!
//! This crate does **no I/O**: it opens no socket or file, reads no clock (`now` is always a
//! parameter), spawns nothing and depends on no async runtime. The daemon (`msp-ticketd`) and the
//! adapters do the I/O; they implement the [`ports`] traits and feed what they read into
//! [`decide`]. That keeps every rule of the product guide testable as data, and deterministic
//! (same inputs and `now`, same decisions).
//!
//! Modules:
//! - [`model`]: products, tenants, devices, severities, status descriptions, events, snapshots;
//! - [`rules`]: general settings and rule rows with the guide's defaults, validation;
//! - [`edit`]: draft/saved rule sets, bulk edit, save, cancel, reset;
//! - [`catalog`]: the PSA's picklists and label → id resolution;
//! - [`decide`]: the decisions;
//! - [`ledger`]: the ticket state machine that makes creation exactly-once;
//! - [`mapping`]: tenants mapped to PSA accounts in the product, suggestions by name;
//! - [`maintenance`]: maintenance windows (no ticket is created during one);
//! - [`template`]: title and description templates of rule rows;
//! - [`ticket`]: keys, idempotency keys, drafts;
//! - [`ports`]: `EventSource`, `StatusSource`, `TicketSink`;
//! - [`secret`]: a string that never prints.
//!
//! # An event in, a draft out
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use ticketing_core::catalog::Catalog;
//! use ticketing_core::decide::{decide_event, Context, EventDecision};
//! use ticketing_core::ledger::Ledger;
//! use ticketing_core::model::*;
//! use ticketing_core::ports::Account;
//! use ticketing_core::rules::{RowId, RuleSet};
//!
//! // Turn on the Critical row of Security Center's event table (off by default).
//! let mut rules = RuleSet::default();
//! let row = RowId::Event(Product::SecurityCenter, EventClass::Severity(Severity::Critical));
//! rules.rows.get_mut(&row).unwrap().enabled = true;
//!
//! let tenant = TenantId::new("ksc:main/vs:1");
//! let ctx = Context::new(
//!     &rules,
//!     &Catalog::example(),
//!     [(tenant.clone(), PsaId(29683616))],
//!     [Account { id: PsaId(29683616), name: "Acme Corp".into(), active: true }],
//! );
//! let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
//! let event = Event {
//!     source_id: SourceEventId::new("1043"),
//!     tenant,
//!     product: Product::SecurityCenter,
//!     class: EventClass::Severity(Severity::Critical),
//!     occurred_at: now - chrono::Duration::hours(2),
//!     device: Some(Device { id: DeviceId::new("4328e16g"), name: "ACME-PC-01".into() }),
//!     mailbox: None,
//!     event_type: "GNRL_EV_VIRUS_FOUND".into(),
//!     display_name: "Malicious object detected".into(),
//!     text: "Trojan.Win32.Agent detected".into(),
//! };
//!
//! let EventDecision::Create(create) = decide_event(&event, &ctx, &Ledger::new(), now) else {
//!     panic!("a fresh critical event with its rule on is ticketed");
//! };
//! assert_eq!(create.draft.priority, PsaId(4)); // "Critical"
//! assert_eq!(create.draft.queue, PsaId(8)); // "Monitoring Alert"
//! assert_eq!(create.draft.status, PsaId(1)); // "New"
//! assert_eq!(create.draft.due, now + chrono::Duration::hours(12));
//! assert!(create.draft.title.contains("ACME-PC-01"));
//! ```
#![forbid(unsafe_code)]

pub mod catalog;
pub mod decide;
pub mod edit;
pub mod ledger;
pub mod maintenance;
pub mod mapping;
pub mod model;
pub mod ports;
pub mod retry;
pub mod rules;
pub mod secret;
pub mod storm;
pub mod template;
mod text;
pub mod ticket;

pub use decide::{Action, Context, EventDecision, Reconciliation, SkipReason, decide_event, reconcile};
pub use ledger::{Ledger, LedgerEntry, TicketState, Transition};
pub use model::{Event, Product, StatusSnapshot, TenantId};
pub use rules::{RowId, RuleSet, Section};
pub use ticket::{InlineIdempotencyKey, TicketDraft, TicketKey};
