//! HaloPSA REST client and the msp-ticketing [`TicketSink`](ticketing_core::ports::TicketSink)
//! backend.
//!
//! The wire protocol, call by call (request, answer, errors, and whether each fact is verified
//! in a public source, inferred or modelled), is written down in `docs/protocols/halopsa.md` at
//! the root of this repository; `halo-sim` (`simulators::halo`) answers the same calls.
//!
//! What it does:
//! - **OAuth2 client credentials**: `POST {auth}/token` (form: `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope=all`; `?tenant=` for hosted instances), the token
//!   cached and renewed before its `expires_in` passes, and once more on a 401.
//! - **A request budget** ([`RateLimit`], default 500 requests per 3 minutes) and backoff on
//!   429 with `Retry-After`.
//! - **Errors** ([`Error`]) that keep the HTTP status, the call and the server's messages, are
//!   classified into the core's `PortErrorKind`, and record whether the request may have been
//!   processed. The client secret and tokens never appear in errors, logs or `Debug` output.
//! - **Exactly once** without an external-reference field: every description ends with a
//!   reference line carrying the idempotency key ([`text::REF_LINE_PREFIX`]); after an
//!   ambiguous create the key is searched (`GET /api/Tickets?search=`) before anything is sent
//!   again. A custom field can carry the key as well (a setting).
//! - [`HaloSink`], the `TicketSink`; [`HaloSettings`] and [`connect`] for the daemon;
//!   [`field_label`] for the UI's names.
//!
//! What it does not do: persist anything, decide what to ticket (that is `ticketing-core`),
//! webhooks, time entries, assets, attachments, ticket deletes.
//!
//! ```no_run
//! # async fn run() -> Result<(), halopsa_client::Error> {
//! use halopsa_client::{Credentials, HaloClient, HaloSink, SinkOptions};
//! let client = HaloClient::builder(Credentials::new("CLIENT-ID", "CLIENT-SECRET"))
//!     .base_url("http://127.0.0.1:8080")
//!     .build()?;
//! let sink = HaloSink::new(client, SinkOptions::default());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod catalog;
mod client;
pub mod config;
pub mod error;
pub mod models;
mod settings;
pub mod sink;
pub mod text;

pub use client::{CreatedTicket, HaloClient};
pub use config::{ClientBuilder, ClientConfig, Credentials, DEFAULT_RATE_LIMIT, RateLimit};
pub use error::{ApiError, Error, ErrorClass, Outcome};
pub use settings::{HaloSettings, connect, field_label};
pub use sink::{HaloSink, SinkOptions};
pub use ticketing_core::retry::RetryPolicy;
