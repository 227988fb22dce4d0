//! The exactly-once runtime of msp-ticketing: it drives the pure decisions of `ticketing-core`
//! against any [`EventSource`](ticketing_core::ports::EventSource) /
//! [`StatusSource`](ticketing_core::ports::StatusSource) and any
//! [`TicketSink`](ticketing_core::ports::TicketSink), with a durable [`store::Store`] (SQLite or
//! PostgreSQL), so that every problem worth a ticket gets exactly one, across crashes, PSA
//! outages, lost answers and failover between instances.
//!
//! - [`engine`]: the [`Engine`](engine::Engine) (its journal is the only writer of the ledger,
//!   its lease the only code that changes the epoch, every PSA write goes through the lease
//!   guard) and the narrow state it shares with an admin surface ([`engine::Shared`]);
//! - [`store`]: the durable state, [`store::SqliteStore`] and [`store::PostgresStore`];
//! - [`settings`]: what the runner tells the engine (HA lease, polling, mapping);
//! - [`metrics`], [`health`], [`audit`]: what it did and why, for `/metrics`, `/readyz` and the
//!   audit trail; [`rules`]: the rule book taken from the store; [`labels`]: the PSA's field
//!   names; [`published`]: one writer, many readers (what [`engine::Shared`] is made of).
//!
//! No HTTP server, UI or CLI here: the reference daemon `msp-ticketd` adds those on top.

pub mod audit;
pub mod documents;
pub mod engine;
pub mod health;
pub mod labels;
pub mod metrics;
pub mod published;
pub mod rules;
pub mod settings;
pub mod store;
