//! Kaspersky Business Hub client: Endpoint Security Cloud and Security for Office 365 as
//! msp-ticketing sources.
//!
//! Business Hub publishes no REST reference, so the wire format is the project's model
//! (`business-hub-api.md` §2, **\[M\]**); every path and field name of it lives in one private
//! module so a real API can replace it in one place.
//!
//! **The protocol, call by call** (request, answer, errors, and for each fact whether it is
//! verified in a named public source or modelled) is
//! `docs/protocols/business-hub.md` at the root of this repository (next to the workspace
//! `Cargo.toml`). Check a real capture against it line by line; `kbh-sim` answers exactly that
//! model.
//!
//! # What it does
//! - talks HTTP(S) to Business Hub with a static API token or an e-mail/password login
//!   (re-login once on 401), TLS verification always on: system roots, or a pinned server
//!   certificate (`ca_pem`, `CA:TRUE` self-signed accepted) or SHA-256 fingerprint
//!   (`cert_sha256`), host names checked unless `accept_invalid_hostnames`; connect and request
//!   timeouts; paging (`limit`/`cursor`); retries of reads on throttling (429 + `Retry-After`)
//!   and transient failures ([`KbhClient`], [`KbhConfig`], [`RetryPolicy`]);
//! - lists companies for mapping; one company is one tenant `kbh:<company id>` for both
//!   products ([`CompanyId`], [`Company`]);
//! - implements the core ports ([`KbhEventSource`], [`KbhStatusSource`]) for both products,
//!   sharing one client. The event cursor is the decimal `seq` of the last event handed on:
//!   the service's **arrival order**, never the event's own time, so events a device delivers
//!   late are not lost; `window_start` is sent as `occurred_after` (and enforced here) to bound
//!   the read;
//! - keeps the server's own error (`{"error":{"code","message"}}`) and HTTP status in
//!   [`KbhError`], classified into [`ticketing_core::ports::PortError`].
//!
//! # What it does not do
//! It keeps no position and no state besides the login token: event cursors belong to the
//! daemon, which stores [`ticketing_core::ports::EventBatch::next`] once a batch is durably
//! handled. It makes no decisions about tickets.
//!
//! # Wiring
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kbh_adapter::{KbhAuth, KbhClient, KbhConfig, KbhEventSource, KbhStatusSource};
//! use ticketing_core::ports::EventSource;
//! use ticketing_core::secret::Secret;
//!
//! let config = KbhConfig::new("http://127.0.0.1:8443", KbhAuth::Token(Secret::new("sim-token")))?
//!     .with_timeout(std::time::Duration::from_secs(30)); // business_hub.timeout_secs
//! // https: .with_ca_pem(pem) / .with_cert_sha256("AB:CD:…") / .with_accept_invalid_hostnames(true)
//! let client = KbhClient::new(config)?;
//! let esc_events = KbhEventSource::endpoint_cloud(client.clone());
//! let o365_events = KbhEventSource::office365(client.clone());
//! let esc_status = KbhStatusSource::endpoint_cloud(client.clone());
//! let o365_issues = KbhStatusSource::office365(client);
//! for tenant in esc_events.tenants().await? {
//!     // now minus the longest enabled lifetime: older events can never become tickets
//!     let window_start = chrono::Utc::now() - chrono::Duration::days(7);
//!     let batch = esc_events.poll_events(&tenant.id, None, 100, Some(window_start)).await?;
//!     // handle batch.events durably, then store batch.next for this tenant
//! #   let _ = batch;
//! }
//! # let _ = (o365_events, esc_status, o365_issues);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod api;
mod client;
mod config;
mod convert;
mod error;
mod sources;
mod tenant;

pub use client::{DeviceList, DeviceRecord, EventPage, IssueList, KbhClient};
pub use config::{KbhAuth, KbhConfig, RetryAction, RetryPolicy};
pub use error::KbhError;
pub use sources::{KbhEventSource, KbhStatusSource, TenantResult, cursor_seq, seq_cursor};
pub use tenant::{Company, CompanyId, TENANT_PREFIX};
