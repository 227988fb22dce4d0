//! ConnectWise PSA (Manage) REST client and the msp-ticketing
//! [`TicketSink`](ticketing_core::ports::TicketSink) backend.
//!
//! The wire protocol, call by call (request, answer, errors, and whether each fact is verified
//! in a public source, inferred or modelled), is written down in `docs/protocols/connectwise.md`
//! at the root of this repository; `cw-sim` (`simulators::connectwise`) answers the same calls.
//!
//! What it does:
//! - **Codebase discovery** through `GET {site}/login/companyinfo/{company}` (no credentials),
//!   API host `api-{region}.myconnectwise.net` for cloud sites, or a base URL override
//!   ([`ClientBuilder::base_url`]) for simulators and on-premises servers. Credentials go only to
//!   that one origin (also for `Link` header URLs).
//! - **Auth headers** on every call but discovery: `Authorization: Basic
//!   base64("{company}+{public}:{private}")` and `clientId`; the version pinned in `Accept`
//!   (`application/vnd.connectwise.com+json; version=2025.1`).
//! - **Conditions** with a typed builder ([`conditions`]), quoting and escaping included.
//! - **Paging**: forward-only (`pagination-type: forward-only`, `pageId`) or `page`/`pageSize`,
//!   following the `Link` header; long conditions through `POST …/search`.
//! - **Errors** ([`Error`]) that keep the HTTP status and the server's messages, are classified
//!   into the core's `PortErrorKind`, and record whether the request may have been processed.
//! - **Retries**: 429 waits out `Retry-After`, 5xx and transport failures back off; a ticket
//!   create is repeated only after looking its `externalXRef` up ([`retry`]).
//! - **Catalog** per board ([`catalog`]), flattened for the core, cached with a TTL.
//! - [`ConnectWiseSink`], the `TicketSink`, and [`connect`] for the daemon.
//!
//! What it does not do: persist anything, decide what to ticket (that is `ticketing-core`),
//! callbacks, time entries, configurations, attachments, PUT updates.
//!
//! ```no_run
//! # async fn run() -> Result<(), connectwise_client::Error> {
//! use connectwise_client::{ConnectWiseClient, ConnectWiseSink, Credentials, SinkOptions};
//! let client = ConnectWiseClient::builder(Credentials::new("simcompany", "simpublic", "simprivate"))
//!     .base_url("http://127.0.0.1:8080")
//!     .build()?;
//! let sink = ConnectWiseSink::new(client, SinkOptions::default());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod catalog;
mod client;
pub mod conditions;
pub mod config;
pub mod error;
pub mod models;
pub mod retry;
pub mod sink;

pub use client::{ConnectWiseClient, CreatedTicket, ListQuery, MAX_PAGE_SIZE, basic_auth_value, next_link, reference};
pub use config::{ApiRoot, ClientBuilder, ClientConfig, Credentials, PagingMode};
pub use error::{ApiError, Error, ErrorClass, Outcome};
pub use retry::{Classify, Idempotency, RetryAction, RetryPolicy};
pub use sink::{ConnectWiseSettings, ConnectWiseSink, NoteKind, PagingSetting, SinkOptions, connect, field_label};

/// A ticket `summary`'s length (connectwise-api.md, verified).
pub const SUMMARY_MAX: usize = 100;

/// `externalXRef`'s length (connectwise-api.md, verified): the idempotency key must fit.
pub const EXTERNAL_XREF_MAX: usize = 100;
