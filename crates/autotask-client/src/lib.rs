//! Autotask PSA REST client and the msp-ticketing [`TicketSink`](ticketing_core::ports::TicketSink)
//! backend.
//!
//! The wire protocol, call by call (request, answer, errors, and whether each fact is verified
//! in a public source or modelled), is written down in `docs/protocols/autotask.md` at the root
//! of this repository (next to the workspace `Cargo.toml`); autotask-sim answers the same calls.
//!
//! What it does:
//! - **Zone discovery** (`zoneInformation`, no credentials) from
//!   [`ClientBuilder::discovery_url`] (default `https://webservices.autotask.net/atservicesrest`),
//!   URL normalisation, a per-user cache owned by the client ([`zone::ZoneCache`], shared only
//!   on request) and a host allow-list checked before credentials are attached (also for
//!   `nextPageUrl`); or an explicit base URL ([`ClientBuilder::base_url`]) for simulators and
//!   tests.
//! - **Auth headers** on every call but zone discovery: `ApiIntegrationCode`, `UserName`,
//!   `Secret`, optional `ImpersonationResourceId`, held in [`Secret`](ticketing_core::secret::Secret)s.
//! - **Queries** with a typed builder ([`query`]), always POST, paged by `id > last` or by
//!   `nextPageUrl` re-POST, as a stream or a `Vec`.
//! - **Entities**: tickets (create, PATCH, get, query, count), ticket notes, companies, work types
//!   (BillingCodes), configuration items, `ThresholdInformation`, ticket field metadata.
//! - **Catalog** of picklists for the core ([`catalog`]), cached with a TTL.
//! - **Errors** ([`Error`]) that keep the HTTP status and the server's own messages, are
//!   classified, and record whether the request may have been processed.
//! - **Throttling**: per-entity concurrency caps, an hourly budget with pacing whose configured
//!   limit the server's `ThresholdInformation` can only tighten ([`AutotaskClient::budget_usage`]
//!   shows both), and a pure retry policy ([`retry`]) that never repeats a create blindly.
//! - [`AutotaskSink`], the `TicketSink` implementation.
//!
//! What it does not do: persist anything (the zone and catalog caches are in memory), decide
//! what to ticket (that is `ticketing-core`), SOAP, attachments, webhooks, or PUT updates.
//!
//! ```no_run
//! # async fn run() -> Result<(), autotask_client::Error> {
//! use autotask_client::{AutotaskClient, AutotaskSink, Credentials, SinkOptions};
//! let client = AutotaskClient::builder(Credentials::new("api@sim.local", "sim-secret", "SIMINTEGRATIONCODE000000000"))
//!     .base_url("http://127.0.0.1:8080")
//!     .build()?;
//! let sink = AutotaskSink::new(client, SinkOptions::default());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod catalog;
mod client;
pub mod config;
pub mod error;
pub mod models;
pub mod query;
pub mod retry;
pub mod sink;
pub mod throttle;
pub mod zone;

pub use client::{AutotaskClient, CreatedTicket, parse_ticket_page, ticket_body};
pub use config::{ClientBuilder, ClientConfig, Credentials, PagingMode, ZoneSource};
pub use error::{ApiError, Error, ErrorClass, Outcome};
pub use query::{Filter, Op, Query};
pub use retry::{Classify, Idempotency, RetryAction, RetryPolicy};
pub use sink::{AutotaskSink, SinkOptions};
pub use throttle::{BudgetUsage, Pacing, RequestBudget};
